/* Tests for src/report.c: hostile model text renders as text, the page has
 * its parts (title, charts, per-problem rows), it makes no external
 * requests, and a large comparison (10 models x 1,000 problems) renders
 * within a bounded size. A headless-browser test is separate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "compare_fixture.h"
#include "report.h"

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0, l = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += l)
        n++;
    return n;
}

#define HOSTILE "</script><img src=x onerror=alert(1)>"

static void test_hostile_text_is_escaped(void **st)
{
    (void)st;
    qe_compare_record b[2], m[2];
    for (int i = 0; i < 2; i++) {
        qe_compare_record_init(&b[i]);
        qe_compare_record_init(&m[i]);
    }
    b[0].key = m[0].key = "k1\"><script>alert(2)</script>";
    b[1].key = m[1].key = "k2";
    b[0].correct = 1;
    b[0].response = "fine \\boxed{1}";
    m[0].response = "<think>" HOSTILE;
    m[0].extracted = HOSTILE;
    m[0].gold = HOSTILE;
    b[1].gold = "'&\"";
    m[1].correct = 1;
    m[1].response = HOSTILE "</details></pre><style>body{display:none}</style>";
    m[1].finish_reason = "length";
    qe_compare_model model = {"<b>evil</b> model", m, 2};
    qe_compare_input in = {"<i>task</i>", "fil<ter", {"base\"line", b, 2}, &model, 1};
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(&in, 1, NULL, &r, &e), 0);
    qe_buf out = QE_BUF_INIT;
    qe_report_opts op = {"<script>title</script>", 0, 0, 0};
    assert_int_equal(qe_report_render(r, &op, &out, &e), 0);
    const char *h = qe_buf_str(&out);
    /* the payload is visible as text ... */
    assert_true(count(h, "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;") >= 3);
    /* ... and never live markup */
    assert_null(strstr(h, "<img"));
    assert_null(strstr(h, "<b>evil"));
    assert_null(strstr(h, "<i>task"));
    assert_null(strstr(h, "alert(2)</script>"));
    assert_null(strstr(h, "<style>body{display:none}"));
    /* exactly one script and one style element: ours */
    assert_int_equal(count(h, "<script"), 1);
    assert_int_equal(count(h, "</script"), 1);
    assert_int_equal(count(h, "<style"), 1);
    assert_int_equal(count(h, "</details>"), 3); /* one per embedded response */
    assert_non_null(strstr(h, "&#39;&amp;&quot;"));
    assert_non_null(strstr(h, "<title>&lt;script&gt;title&lt;/script&gt;</title>"));
    /* the hostile model truncated both problems: unclosed <think>, length */
    assert_int_equal(count(h, "data-trunc=\"1\""), 2);
    qe_buf_free(&out);

    qe_buf b2 = QE_BUF_INIT;
    assert_int_equal(qe_report_escape(&b2, "<a href='x'>&</a>"), 0);
    assert_string_equal(qe_buf_str(&b2), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
    qe_buf_free(&b2);
    qe_compare_result_free(r);
}

static void test_real_example_structure(void **st)
{
    (void)st;
    fixture_example x;
    assert_int_equal(fixture_example_load(&x), 0);
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(x.in, 2, NULL, &r, &e), 0);
    char *mem = NULL;
    size_t memlen = 0, written = 0;
    FILE *f = open_memstream(&mem, &memlen);
    assert_non_null(f);
    qe_report_opts op = {"R1 distill: BF16 vs quantized", 0, 0, 0};
    assert_int_equal(qe_report_write_html(f, r, &op, &written, &e), 0);
    fclose(f);
    assert_int_equal(written, memlen);
    assert_true(strncmp(mem, "<!DOCTYPE html>", 15) == 0);
    assert_non_null(strstr(mem, "<title>R1 distill: BF16 vs quantized</title>"));
    assert_int_equal(count(mem, "<svg class=dots"), 1);
    assert_int_equal(count(mem, "<svg class=flips"), 1);
    /* one dot per model x task: 6 settings x 2 tasks */
    assert_int_equal(count(mem, "<circle class=dot"), 12);
    /* one lost and one gained bar per model-vs-baseline: 5 x 2 */
    assert_int_equal(count(mem, "<rect class=lost"), 10);
    /* word counts exist: a length histogram per model x task */
    assert_int_equal(count(mem, "<svg class=hist"), 12);
    /* summary: 10 rows; per problem: 500 + 90 */
    assert_int_equal(count(mem, "<td class=v>"), 10);
    assert_int_equal(count(mem, "<tr data-flip="), 590);
    /* problems where the six settings disagree: 255 + 34 (python3 from
     * the source JSON files) */
    assert_int_equal(count(mem, "<tr data-flip=\"1\""), 255 + 34);
    assert_non_null(strstr(mem, "a real loss"));
    assert_non_null(strstr(mem, "data-mode=flip"));
    assert_non_null(strstr(mem, "data-mode=trunc"));
    /* self-contained: no external resources */
    assert_null(strstr(mem, "https://"));
    assert_null(strstr(mem, " src="));
    assert_null(strstr(mem, " href="));
    assert_null(strstr(mem, "@import"));
    assert_true(count(mem, "http://") == count(mem, "xmlns=\"http://www.w3.org/2000/svg\""));
    print_message("real example report: %zu bytes\n", written);
    free(mem);
    qe_compare_result_free(r);
    fixture_example_free(&x);
}

#define BIG_MODELS 10
#define BIG_N 1000

static void test_large_input(void **st)
{
    (void)st;
    static qe_compare_record recs[BIG_MODELS][BIG_N];
    static char keys[BIG_N][16];
    static char names[BIG_MODELS][16];
    char *resp = malloc(3001);
    for (int i = 0; i < 3000; i++)
        resp[i] = (char)('a' + i % 26);
    resp[3000] = '\0';
    /* a multi-byte character straddling the 2000-byte cut */
    memcpy(resp + 1999, "\xc3\xa9", 2);
    qe_compare_model models[BIG_MODELS];
    for (int j = 0; j < BIG_MODELS; j++) {
        snprintf(names[j], sizeof names[j], "m%d", j);
        for (int i = 0; i < BIG_N; i++) {
            if (j == 0)
                snprintf(keys[i], sizeof keys[i], "doc%d", i);
            qe_compare_record *rc = &recs[j][i];
            qe_compare_record_init(rc);
            rc->key = keys[i];
            rc->correct = ((i * 7 + j * 13) % 10) < 6;
            rc->response = resp;
            rc->extracted = "42";
            rc->gold = "42";
            rc->finish_reason = (i + j) % 17 == 0 ? "length" : "stop";
            rc->completion_tokens = (i * 31 + j) % 1024;
        }
        models[j] = (qe_compare_model){names[j], recs[j], BIG_N};
    }
    qe_compare_input in = {"big", NULL, models[0], &models[1], BIG_MODELS - 1};
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(&in, 1, NULL, &r, &e), 0);
    qe_buf out = QE_BUF_INIT;
    qe_report_opts op = {NULL, 2000, 0, 0};
    assert_int_equal(qe_report_render(r, &op, &out, &e), 0);
    assert_int_equal(count(qe_buf_str(&out), "<tr data-flip="), BIG_N);
    assert_int_equal(count(qe_buf_str(&out), "<details>"), BIG_N * BIG_MODELS);
    assert_non_null(strstr(qe_buf_str(&out), "data-page-size=\"100\""));
    /* each response cut at 1999 bytes (before the 2-byte character) */
    assert_non_null(strstr(qe_buf_str(&out), "[... 1001 more characters not embedded]"));
    /* 10,000 responses of 2,000 bytes: about 20 MB, not more than 30 */
    assert_true(out.len < (size_t)30 << 20);
    print_message("10 models x 1000 problems: %zu bytes\n", out.len);
    qe_buf_reset(&out);
    /* a total budget keeps the file small and says so */
    op.max_total_response = (size_t)1 << 20;
    assert_int_equal(qe_report_render(r, &op, &out, &e), 0);
    assert_true(out.len < (size_t)4 << 20);
    assert_non_null(strstr(qe_buf_str(&out), "responses were not embedded"));
    print_message("with a 1 MiB response budget: %zu bytes\n", out.len);
    qe_buf_free(&out);
    qe_compare_result_free(r);
    free(resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_text_is_escaped),
        cmocka_unit_test(test_real_example_structure),
        cmocka_unit_test(test_large_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
