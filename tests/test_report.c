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
    /* the Inputs section shows untrusted paths and settings too */
    qe_report_input ins[1] = {{"<b>evil</b> model", "in<put", "<i>task</i>", "fil<ter",
                               "/runs/<img src=x onerror=alert(3)>.jsonl",
                               "{\"system_instruction\":\"</code><img src=x>\"}"}};
    qe_report_opts op = {.title = "<script>title</script>", .inputs = ins, .n_inputs = 1,
                         .verdicts = "as <recorded>"};
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
    assert_non_null(strstr(h, "<h2>Inputs</h2>\n<p>Verdicts: as &lt;recorded&gt;.</p>"));
    assert_non_null(strstr(h, "<code>/runs/&lt;img src=x onerror=alert(3)&gt;.jsonl</code>"));
    assert_non_null(strstr(h, "&lt;/code&gt;&lt;img src=x&gt;"));
    /* the hostile model truncated both problems: unclosed <think>, length */
    assert_int_equal(count(h, "data-trunc=\"1\""), 2);
    qe_buf_free(&out);

    qe_buf b2 = QE_BUF_INIT;
    assert_int_equal(qe_report_escape(&b2, "<a href='x'>&</a>"), 0);
    assert_string_equal(qe_buf_str(&b2), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
    /* bidirectional controls are shown, not obeyed: an RLO in a response
     * must not reverse what follows it on the page; other non-ASCII stays */
    qe_buf_reset(&b2);
    assert_int_equal(qe_report_escape(&b2, "a\xe2\x80\xae"
                                           "3 = x\xe2\x81\xa6"
                                           "b\xe2\x80\x8f\xd8\x9c \xc3\xa9\xe2\x80\x94\xd7\x90"),
                     0);
    assert_string_equal(qe_buf_str(&b2), "a[U+202E]3 = x[U+2066]b[U+200F][U+061C] "
                                         "\xc3\xa9\xe2\x80\x94\xd7\x90");
    /* a sequence cut by the end of the text is kept, never read past
     * (fuzz/corpus/fuzz_report/crash-bidi-truncated-utf8 under ASan) */
    qe_buf_reset(&b2);
    assert_int_equal(qe_report_escape(&b2, " \xe2"), 0);
    assert_string_equal(qe_buf_str(&b2), " \xe2");
    qe_buf_reset(&b2);
    assert_int_equal(qe_report_escape(&b2, "\xe2\x80"), 0);
    assert_string_equal(qe_buf_str(&b2), "\xe2\x80");
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
    qe_report_opts op = {.title = "R1 distill: BF16 vs quantized"};
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
    assert_int_equal(count(mem, "<td class=v colspan="), 10);
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
    qe_report_opts op = {.max_response_chars = 2000};
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

/* The findings box: the demo's headline, one line per model vs baseline,
 * sorted by task then delta, colored by significance. Numbers from the
 * issue's own statement of the example (AWQ w3 about -32 points with p far
 * below 0.001; kv4 -0.8 not distinguishable) and compare's table, which is
 * checked against tests/cases/stats_r1_example.jsonl. */
static void test_findings_real_example(void **st)
{
    (void)st;
    fixture_example x;
    assert_int_equal(fixture_example_load(&x), 0);
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(x.in, 2, NULL, &r, &e), 0);
    qe_buf out = QE_BUF_INIT;
    assert_int_equal(qe_report_render(r, NULL, &out, &e), 0);
    const char *h = qe_buf_str(&out);
    const char *box = strstr(h, "<section class=findings>");
    const char *summary = strstr(h, "<h2>Summary</h2>");
    assert_non_null(box);
    assert_non_null(summary);
    assert_true(box < summary); /* at the top */
    assert_int_equal(count(h, "<li class=\"f "), 10);
    /* awq/gptq w3 on both tasks are real losses, the rest noise */
    assert_int_equal(count(h, "<li class=\"f loss\">"), 4);
    assert_int_equal(count(h, "<li class=\"f noise\">"), 6);
    assert_int_equal(count(h, "<li class=\"f gain\">"), 0);
    const char *awq = strstr(h, "<span class=t>math500</span>: awq-w3g128 <span "
                                "class=k>\xe2\x88\x92" "32.4 points</span> (p &lt; 0.001) "
                                "\xe2\x80\x94 <b>real loss</b>");
    const char *kv = strstr(h, "<span class=t>math500</span>: kvquant-kv4 <span "
                               "class=k>\xe2\x88\x92" "0.8 points</span> (p = 0.71) \xe2\x80\x94 "
                               "not distinguishable from noise; 500 problems detect "
                               "\xe2\x89\xa5 4.5 points");
    assert_non_null(awq);
    assert_non_null(kv);
    /* order: aime90 before math500; within math500 by delta, largest loss
     * first: awq-w3 -32.4, gptq-w3 -13.6, gptq-w4 -2.0, awq-w4 -1.6, kv4 -0.8 */
    const char *aime_last = strstr(h, "<span class=t>aime90</span>: awq-w4g128");
    const char *gw3 = strstr(h, "<span class=t>math500</span>: gptq-w3g128");
    const char *gw4 = strstr(h, "<span class=t>math500</span>: gptq-w4g128");
    const char *aw4 = strstr(h, "<span class=t>math500</span>: awq-w4g128");
    assert_non_null(aime_last);
    assert_non_null(gw3);
    assert_non_null(gw4);
    assert_non_null(aw4);
    assert_true(box < aime_last && aime_last < awq);
    assert_true(awq < gw3 && gw3 < gw4 && gw4 < aw4 && aw4 < kv && kv < summary);
    /* aime90: awq-w3 -18.9 first, kv4 -5.6 and awq-w4 -5.6 after gptq-w4 -6.7 */
    assert_true(strstr(h, "<span class=t>aime90</span>: awq-w3g128") <
                strstr(h, "<span class=t>aime90</span>: gptq-w4g128"));
    assert_true(strstr(h, "<span class=t>aime90</span>: gptq-w4g128") < aime_last);
    assert_non_null(strstr(h, "the baseline <b>bf16</b>"));
    /* no responses in the example: no thinking-budget table */
    assert_null(strstr(h, "Thinking budget"));
    qe_buf_free(&out);
    qe_compare_result_free(r);
    fixture_example_free(&x);
}

/* A chunk of h from the n-th (0-based) occurrence of start to the next end. */
static char *nth_chunk(const char *h, const char *start, const char *end, size_t n)
{
    const char *p = h;
    for (size_t i = 0; p && i <= n; i++) {
        p = strstr(i ? p + 1 : p, start);
    }
    if (!p)
        return NULL;
    const char *q = strstr(p, end);
    if (!q)
        return NULL;
    return strndup(p, (size_t)(q - p) + strlen(end));
}

/* Units per model: a model with only word counts keeps its chart beside
 * models with responses or tokens; each chart says its unit; a model with
 * no length data gets a note instead of an empty chart. */
static void test_length_units_per_model(void **st)
{
    (void)st;
    enum { N = 4 };
    static const char *const keys[N] = {"a", "b", "c", "d"};
    qe_compare_record b[N], m1[N], m2[N], m3[N];
    for (int i = 0; i < N; i++) {
        qe_compare_record *all[] = {b, m1, m2, m3};
        for (int j = 0; j < 4; j++) {
            qe_compare_record_init(&all[j][i]);
            all[j][i].key = keys[i];
            all[j][i].correct = i % 2;
        }
        b[i].word_count = 100 * (i + 1); /* words only: 100..400 */
        m1[i].response = i == 3 ? "0123456789" : "01234";
        m2[i].response = "ignored for length: tokens win";
        m2[i].completion_tokens = 1000 + i;
    }
    qe_compare_model models[] = {{"chars-model", m1, N}, {"token-model", m2, N},
                                 {"no-length-model", m3, N}};
    qe_compare_input in = {"t", NULL, {"words-base", b, N}, models, 3};
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(&in, 1, NULL, &r, &e), 0);
    qe_buf out = QE_BUF_INIT;
    assert_int_equal(qe_report_render(r, NULL, &out, &e), 0);
    const char *h = qe_buf_str(&out);
    assert_int_equal(count(h, "<svg class=hist"), 3);
    assert_int_equal(count(h, "data-unit=\"words\""), 1);
    assert_int_equal(count(h, "data-unit=\"characters\""), 1);
    assert_int_equal(count(h, "data-unit=\"completion tokens\""), 1);
    assert_non_null(strstr(h, "No length data (no tokens, response or word count) for: "
                              "no-length-model."));
    /* every chart drawn has data: the peak bin reaches the full 80 px, and
     * the axis ends at the longest value in that unit */
    static const char *const want[3][3] = {
        {"words-base", "4 responses, in words", ">400</text>"},
        {"chars-model", "4 responses, in characters", ">10</text>"},
        {"token-model", "4 responses, in completion tokens", ">1003</text>"},
    };
    for (size_t i = 0; i < 3; i++) {
        char *c = nth_chunk(h, "<svg class=hist", "</svg>", i);
        assert_non_null(c);
        assert_non_null(strstr(c, want[i][0]));
        assert_non_null(strstr(c, want[i][1]));
        assert_non_null(strstr(c, want[i][2]));
        assert_non_null(strstr(c, "height=\"80.0\" fill=\"#9ecae1\""));
        free(c);
    }
    qe_buf_free(&out);
    qe_compare_result_free(r);
}

/* Thinking budget: per model the share stopped by length, with an unclosed
 * <think>, either, and of those truncated the share with no answer. Counts
 * worked out by hand for the ten records below. */
static void test_thinking_budget_table(void **st)
{
    (void)st;
    enum { N = 10 };
    static const char *const keys[N] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    qe_compare_record b[N], m[N];
    for (int i = 0; i < N; i++) {
        qe_compare_record_init(&b[i]);
        qe_compare_record_init(&m[i]);
        b[i].key = m[i].key = keys[i];
        b[i].correct = 1;
        m[i].finish_reason = "stop";
        m[i].response = "<think>ok</think> so \\boxed{1}";
    }
    /* length + unclosed think, nothing before <think>: no answer */
    m[0].finish_reason = "length";
    m[0].response = "<think>abc";
    /* length, think closed, boxed answer: an answer */
    m[1].finish_reason = "length";
    m[1].response = "<think>a</think> so \\boxed{5}";
    /* stop but the think never closed: no answer */
    m[2].response = "<think>never closed 42";
    /* length, the data says nothing was extracted */
    m[3].finish_reason = "length";
    m[3].response = "xyz 7";
    m[3].extracted = "";
    qe_compare_model model = {"thinker", m, N};
    qe_compare_input in = {"t", NULL, {"silent-base", b, N}, &model, 1};
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(&in, 1, NULL, &r, &e), 0);
    /* compare.c computes the combined rate on its own: the same 4 of 10 */
    assert_true(r->groups[0].rows[0].m.truncation_rate == 0.4);
    qe_buf out = QE_BUF_INIT;
    assert_int_equal(qe_report_render(r, NULL, &out, &e), 0);
    const char *h = qe_buf_str(&out);
    assert_non_null(strstr(h, "<h2>Thinking budget</h2>"));
    char *t = nth_chunk(h, "<table class=think>", "</table>", 0);
    assert_non_null(t);
    assert_int_equal(count(t, "<tr><td>"), 1); /* the baseline has no responses */
    assert_null(strstr(t, "silent-base"));
    assert_non_null(strstr(t, "thinker"));
    assert_non_null(strstr(t, "<td class=n>10</td>"
                              "<td class=n>30.0% <span class=muted>(3)</span></td>"
                              "<td class=n>20.0% <span class=muted>(2)</span></td>"
                              "<td class=n>40.0% <span class=muted>(4)</span></td>"
                              "<td class=n>75.0% <span class=muted>(3)</span></td>"));
    free(t);
    qe_buf_free(&out);
    qe_compare_result_free(r);
}

/* Long and hostile names: wrapped in the tables with the full name in an
 * escaped title attribute; cut in SVG labels (which cannot wrap) at a
 * character boundary, with an ellipsis and the full text as <title>. */
static void test_long_names(void **st)
{
    (void)st;
    char longname[2 * 50 + 1];
    for (int i = 0; i < 50; i++)
        memcpy(longname + 2 * i, "\xc3\xa9", 2); /* 50 x U+00E9 */
    longname[100] = '\0';
    qe_compare_record b[2], m1[2], m2[2];
    static const char *const keys[2] = {"x", "y"};
    for (int i = 0; i < 2; i++) {
        qe_compare_record_init(&b[i]);
        qe_compare_record_init(&m1[i]);
        qe_compare_record_init(&m2[i]);
        b[i].key = m1[i].key = m2[i].key = keys[i];
        m1[i].correct = i;
    }
    qe_compare_model models[] = {{longname, m1, 2}, {"q\"uo<te>", m2, 2}};
    qe_compare_input in = {"t", NULL, {"base", b, 2}, models, 2};
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(&in, 1, NULL, &r, &e), 0);
    qe_buf out = QE_BUF_INIT;
    assert_int_equal(qe_report_render(r, NULL, &out, &e), 0);
    const char *h = qe_buf_str(&out);
    assert_non_null(strstr(h, "<span class=nm title=\"q&quot;uo&lt;te&gt;\">q&quot;uo&lt;te&gt;"
                              "</span>"));
    assert_null(strstr(h, "q\"uo"));
    /* the SVG label "t · " + name: 38 characters = 4 + 34 x U+00E9, then … */
    qe_buf want = QE_BUF_INIT;
    qe_buf_printf(&want, "<title>t \xc2\xb7 %s</title>t \xc2\xb7 ", longname);
    qe_buf_append(&want, longname, 2 * 34);
    qe_buf_puts(&want, "\xe2\x80\xa6</text>");
    /* dot chart and flip chart */
    assert_int_equal(count(h, qe_buf_str(&want)), 2);
    qe_buf_free(&want);
    qe_buf_free(&out);
    qe_compare_result_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_text_is_escaped),
        cmocka_unit_test(test_real_example_structure),
        cmocka_unit_test(test_large_input),
        cmocka_unit_test(test_findings_real_example),
        cmocka_unit_test(test_length_units_per_model),
        cmocka_unit_test(test_thinking_budget_table),
        cmocka_unit_test(test_long_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
