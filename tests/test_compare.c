/* Tests for src/compare.c: scripted data with known flips, diagnostics,
 * repeats, the writers, config diff, and the shipped real example checked
 * against counts derived independently from the source files
 * (tests/cases/stats_r1_example.jsonl). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "compare_fixture.h"

#define NP 100

typedef struct {
    qe_compare_record b[NP], m[NP];
    char keys[NP][8];
} scripted;

/* Baseline right on problems 0..59. Model = baseline with 10 known flips:
 * loses 0..6, gains 60..62. */
static void make_scripted(scripted *s)
{
    for (int i = 0; i < NP; i++) {
        snprintf(s->keys[i], sizeof s->keys[i], "d%d", i);
        qe_compare_record_init(&s->b[i]);
        qe_compare_record_init(&s->m[i]);
        s->b[i].key = s->m[i].key = s->keys[i];
        s->b[i].correct = i < 60;
        s->m[i].correct = (i < 60 && i > 6) || (i >= 60 && i <= 62);
    }
}

static void test_known_flips(void **st)
{
    (void)st;
    scripted s;
    make_scripted(&s);
    /* the model's records in another order: pairing must be by key */
    qe_compare_record rev[NP];
    for (int i = 0; i < NP; i++)
        rev[i] = s.m[NP - 1 - i];
    qe_compare_model model = {"A", rev, NP};
    qe_compare_input in = {"math", NULL, {"base", s.b, NP}, &model, 1};
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(&in, 1, NULL, &r, &e), 0);
    const qe_compare_row *w = &r->groups[0].rows[0];
    assert_int_equal(w->n_paired, NP);
    assert_int_equal(w->unpaired_model, 0);
    assert_string_equal(w->filter, "none");
    assert_true(fabs(w->m.accuracy - 0.56) < 1e-12);
    assert_true(fabs(w->b.accuracy - 0.60) < 1e-12);
    assert_true(fabs(w->delta + 0.04) < 1e-12);
    assert_int_equal(w->gained_n, 3);
    assert_int_equal(w->lost_n, 7);
    assert_int_equal(w->both, 53);
    assert_int_equal(w->neither, 37);
    assert_string_equal(w->gained[0], "d60");
    assert_string_equal(w->gained[2], "d62");
    assert_string_equal(w->lost[0], "d0");
    assert_string_equal(w->lost[6], "d6");
    /* hand: 2*(1+10+45+120)/1024 */
    assert_true(fabs(w->mcnemar_p - 0.34375) < 1e-12);
    /* python3 Newcombe method 10 on (53,3,7,37) */
    assert_string_equal(w->ci_method, "newcombe");
    assert_true(fabs(w->ci_low - -0.10026218499038833) < 1e-12);
    assert_true(fabs(w->ci_high - 0.0209881991710964) < 1e-12);
    assert_true(fabs(w->psi - 0.10) < 1e-12);
    assert_non_null(strstr(w->verdict, "-4.0 points, p = 0.34: not distinguishable from noise"));
    assert_non_null(strstr(w->verdict, "100 problems can only detect"));
    /* 1 point needs more problems than 2 points */
    assert_true(w->n_for_1pt > w->n_for_2pt && w->n_for_2pt > NP);
    assert_true(isnan(w->m.truncation_rate)); /* no responses, no finish reasons */
    qe_compare_result_free(r);
}

static void test_identical(void **st)
{
    (void)st;
    scripted s;
    make_scripted(&s);
    qe_compare_model model = {"same", s.b, NP};
    qe_compare_input in = {"math", NULL, {"base", s.b, NP}, &model, 1};
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(&in, 1, NULL, &r, &e), 0);
    const qe_compare_row *w = &r->groups[0].rows[0];
    assert_true(w->mcnemar_p == 1.0 && w->delta == 0.0);
    assert_true(w->ci_low < 0.0 && w->ci_high > 0.0); /* Newcombe is not degenerate */
    assert_string_equal(w->verdict, "+0.0 points: identical verdicts on all 100 paired problems");
    assert_true(w->mdd > 0.0 && isfinite(w->mdd));
    qe_compare_result_free(r);
    /* one problem: singular */
    qe_compare_model one = {"same", s.b, 1};
    qe_compare_input in1 = {"math", NULL, {"base", s.b, 1}, &one, 1};
    assert_int_equal(qe_compare_run(&in1, 1, NULL, &r, &e), 0);
    assert_string_equal(r->groups[0].rows[0].verdict,
                        "+0.0 points: identical verdicts on all 1 paired problem");
    qe_compare_result_free(r);
}

static void test_unpaired_and_errors(void **st)
{
    (void)st;
    scripted s;
    make_scripted(&s);
    /* model misses d99 and has an extra key */
    qe_compare_record extra[NP];
    memcpy(extra, s.m, sizeof extra);
    extra[NP - 1].key = "zz-extra";
    qe_compare_model model = {"A", extra, NP};
    qe_compare_input in = {"math", "strict", {"base", s.b, NP}, &model, 1};
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(&in, 1, NULL, &r, &e), 0);
    const qe_compare_row *w = &r->groups[0].rows[0];
    assert_int_equal(w->n_paired, NP - 1);
    assert_int_equal(w->unpaired_model, 1);
    assert_int_equal(w->unpaired_baseline, 1);
    assert_int_equal(r->groups[0].n_keys, NP + 1);
    /* d99 has no model record; zz-extra no baseline record */
    assert_true(r->groups[0].idx[1][NP - 1] == SIZE_MAX);
    assert_true(r->groups[0].idx[0][NP] == SIZE_MAX);
    qe_compare_result_free(r);

    extra[5].key = "d4"; /* duplicate */
    assert_int_equal(qe_compare_run(&in, 1, NULL, &r, &e), QE_EINVAL);
    assert_null(r);
    assert_non_null(strstr(e.msg, "duplicate key 'd4'"));

    qe_compare_record other[1];
    qe_compare_record_init(&other[0]);
    other[0].key = "nope";
    qe_compare_model m2 = {"B", other, 1};
    qe_compare_input in2 = {"math", NULL, {"base", s.b, NP}, &m2, 1};
    assert_int_equal(qe_compare_run(&in2, 1, NULL, &r, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "share no problem keys"));
}

static void test_diagnostics(void **st)
{
    (void)st;
    qe_compare_record b[4], m[4];
    const char *keys[4] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        qe_compare_record_init(&b[i]);
        qe_compare_record_init(&m[i]);
        b[i].key = m[i].key = keys[i];
        b[i].correct = 1;
        b[i].response = "<think>ok</think> \\boxed{1}";
        b[i].extracted = "1";
        b[i].finish_reason = "stop";
        b[i].completion_tokens = 10;
    }
    m[0].response = "<think>never closed";       /* truncated by think */
    m[0].finish_reason = "stop";
    m[1].response = "x";
    m[1].finish_reason = "length";                /* truncated by length */
    m[2].response = "   \n";                      /* empty */
    m[3].response = "<think>a</think><think>b";   /* re-opened, not closed */
    m[3].extracted = "";                          /* unextractable */
    m[3].completion_tokens = 30;
    m[3].correct = 1;
    qe_compare_model model = {"M", m, 4};
    qe_compare_input in = {"t", NULL, {"B", b, 4}, &model, 1};
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(&in, 1, NULL, &r, &e), 0);
    const qe_compare_row *w = &r->groups[0].rows[0];
    assert_true(fabs(w->m.truncation_rate - 0.75) < 1e-12);
    assert_true(fabs(w->b.truncation_rate - 0.0) < 1e-12);
    assert_true(fabs(w->m.empty_rate - 0.5) < 1e-12);
    assert_true(fabs(w->b.empty_rate - 0.0) < 1e-12);
    assert_true(fabs(w->m.mean_response_chars - (19 + 1 + 4 + 24) / 4.0) < 1e-12);
    assert_true(fabs(w->m.mean_completion_tokens - 30) < 1e-12);
    assert_true(fabs(w->b.mean_completion_tokens - 10) < 1e-12);
    assert_int_equal(w->lost_n, 3);
    /* hand: b=0,c=3 -> 2/8 */
    assert_true(fabs(w->mcnemar_p - 0.25) < 1e-12);
    qe_compare_result_free(r);
}

static void test_repeats(void **st)
{
    (void)st;
    /* k = 4 samples per problem; c correct of 4 */
    int cm[5] = {4, 0, 2, 1, 3}, cb[5] = {4, 4, 0, 1, 4};
    int mm[5] = {1, 0, 1, 0, 1}, mb[5] = {1, 1, 0, 0, 1};
    qe_compare_record b[5], m[5];
    const char *keys[5] = {"p0", "p1", "p2", "p3", "p4"};
    for (int i = 0; i < 5; i++) {
        qe_compare_record_init(&b[i]);
        qe_compare_record_init(&m[i]);
        b[i].key = m[i].key = keys[i];
        m[i].repeats = b[i].repeats = 4;
        m[i].correct = cm[i] / 4.0;
        b[i].correct = cb[i] / 4.0;
        m[i].maj_correct = mm[i];
        b[i].maj_correct = mb[i];
    }
    qe_compare_model model = {"M", m, 5};
    qe_compare_input in = {"t", NULL, {"B", b, 5}, &model, 1};
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(&in, 1, NULL, &r, &e), 0);
    const qe_compare_row *w = &r->groups[0].rows[0];
    assert_int_equal(w->m.k, 4);
    assert_true(fabs(w->m.avg_at_k - 10.0 / 20) < 1e-12);
    assert_true(fabs(w->b.avg_at_k - 13.0 / 20) < 1e-12);
    /* pass@4 with n = 4: any correct -> 4 of 5 */
    assert_true(fabs(w->m.pass_at_k - 0.8) < 1e-12);
    assert_true(fabs(w->m.maj_at_k - 0.6) < 1e-12);
    /* all 4 agree on p0, p1 for the model; p0, p1, p2, p4 for baseline */
    assert_true(fabs(w->m.agreement - 0.4) < 1e-12);
    assert_true(fabs(w->b.agreement - 0.8) < 1e-12);
    assert_string_equal(w->ci_method, "bootstrap");
    assert_true(w->ci_low <= w->delta && w->delta <= w->ci_high);
    /* McNemar on maj verdicts: gained p2, lost p1 */
    assert_int_equal(w->gained_n, 1);
    assert_int_equal(w->lost_n, 1);
    qe_compare_result_free(r);
}

typedef struct {
    char task[32], model[32];
    uint64_t both, gained, lost, neither, n;
    double delta_points, p;
} expect;

static size_t load_expectations(expect *x, size_t cap)
{
    FILE *f = fopen("tests/cases/stats_r1_example.jsonl", "r");
    assert_non_null(f);
    char *line = NULL;
    size_t lcap = 0, n = 0;
    while (n < cap && getline(&line, &lcap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        snprintf(x[n].task, sizeof x[n].task, "%s", json_string_value(json_object_get(o, "task")));
        snprintf(x[n].model, sizeof x[n].model, "%s",
                 json_string_value(json_object_get(o, "model")));
        x[n].both = (uint64_t)json_integer_value(json_object_get(o, "both"));
        x[n].gained = (uint64_t)json_integer_value(json_object_get(o, "gained"));
        x[n].lost = (uint64_t)json_integer_value(json_object_get(o, "lost"));
        x[n].neither = (uint64_t)json_integer_value(json_object_get(o, "neither"));
        x[n].n = (uint64_t)json_integer_value(json_object_get(o, "n_paired"));
        x[n].delta_points = json_number_value(json_object_get(o, "delta_points"));
        x[n].p = json_number_value(json_object_get(o, "mcnemar_p"));
        json_decref(o);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

static const qe_compare_row *find_row(const qe_compare_result *r, const char *task,
                                      const char *model)
{
    for (size_t g = 0; g < r->n_groups; g++)
        for (size_t j = 0; j < r->groups[g].in->n_models; j++)
            if (strcmp(r->groups[g].rows[j].task, task) == 0 &&
                strcmp(r->groups[g].rows[j].model, model) == 0)
                return &r->groups[g].rows[j];
    return NULL;
}

static void test_real_example(void **st)
{
    (void)st;
    fixture_example x;
    assert_int_equal(fixture_example_load(&x), 0);
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(x.in, 2, NULL, &r, &e), 0);
    expect ex[16];
    size_t ne = load_expectations(ex, 16);
    assert_int_equal(ne, 10);
    for (size_t i = 0; i < ne; i++) {
        const qe_compare_row *w = find_row(r, ex[i].task, ex[i].model);
        assert_non_null(w);
        assert_int_equal(w->n_paired, ex[i].n);
        assert_int_equal(w->both, ex[i].both);
        assert_int_equal(w->gained_n, ex[i].gained);
        assert_int_equal(w->lost_n, ex[i].lost);
        assert_int_equal(w->neither, ex[i].neither);
        assert_true(fabs(100.0 * w->delta - ex[i].delta_points) < 1e-9);
        assert_true(fabs(w->mcnemar_p - ex[i].p) <= 1e-9 * ex[i].p);
        assert_true(w->ci_low <= w->delta && w->delta <= w->ci_high);
    }
    /* the headline findings */
    const qe_compare_row *awq3 = find_row(r, "math500", "awq-w3g128");
    assert_true(fabs(awq3->m.accuracy - 0.526) < 1e-12 && fabs(awq3->b.accuracy - 0.85) < 1e-12);
    assert_true(awq3->mcnemar_p < 1e-10);
    assert_true(awq3->ci_high < -0.25);
    assert_non_null(strstr(awq3->verdict, "-32.4 points, p < 0.001: a real loss"));
    const qe_compare_row *kv4 = find_row(r, "math500", "kvquant-kv4");
    assert_true(kv4->mcnemar_p > 0.05);
    assert_true(kv4->ci_low < 0 && kv4->ci_high > 0);
    assert_non_null(strstr(kv4->verdict, "-0.8 points, p = 0.71: not distinguishable from noise; "
                                         "500 problems can only detect >= "));
    assert_true(kv4->mdd > 0.02 && kv4->mdd < 0.06);
    assert_true(fabs(kv4->m.mean_word_count - 1988) > 0); /* word counts carried */
    assert_true(isfinite(kv4->m.mean_word_count));

    /* JSON contract: one array, one element per task x filter x model */
    qe_buf out = QE_BUF_INIT;
    assert_int_equal(qe_compare_write(r, QE_COMPARE_JSON, &out, &e), 0);
    json_t *j = json_loads(qe_buf_str(&out), 0, NULL);
    assert_non_null(j);
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 10);
    static const char *const req[] = {"task", "filter", "model", "baseline", "n_paired",
                                      "accuracy", "baseline_accuracy", "delta", "ci_low",
                                      "ci_high", "mcnemar_p", "gained", "lost",
                                      "truncation_rate", "baseline_truncation_rate"};
    for (size_t i = 0; i < json_array_size(j); i++)
        for (size_t k = 0; k < sizeof req / sizeof *req; k++)
            if (!json_object_get(json_array_get(j, i), req[k]))
                fail_msg("JSON element %zu lacks %s", i, req[k]);
    json_t *first = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(first, "model")), "awq-w3g128");
    assert_int_equal(json_array_size(json_object_get(first, "lost")), 171);
    assert_true(json_is_null(json_object_get(first, "truncation_rate")));
    json_decref(j);

    qe_buf_reset(&out);
    assert_int_equal(qe_compare_write(r, QE_COMPARE_TABLE, &out, &e), 0);
    assert_non_null(strstr(qe_buf_str(&out), "kvquant-kv4"));
    assert_non_null(strstr(qe_buf_str(&out), "a real loss"));
    qe_buf_reset(&out);
    assert_int_equal(qe_compare_write(r, QE_COMPARE_CSV, &out, &e), 0);
    size_t lines = 0;
    for (const char *p = qe_buf_str(&out); *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 11);
    assert_non_null(strstr(qe_buf_str(&out), "\"-32.4 points, p < 0.001: a real loss\""));
    qe_buf_reset(&out);
    assert_int_equal(qe_compare_write(r, QE_COMPARE_MD, &out, &e), 0);
    assert_true(strncmp(qe_buf_str(&out), "| task |", 8) == 0);
    qe_buf_free(&out);
    assert_int_equal(qe_compare_format_parse("markdown"), QE_COMPARE_MD);
    assert_int_equal(qe_compare_format_parse("xml"), -1);
    qe_compare_result_free(r);
    fixture_example_free(&x);
}

static void test_record_from_json(void **st)
{
    (void)st;
    char kb[32];
    qe_compare_record r;
    qe_err e = {0};
    json_t *o = json_loads("{\"doc_id\": 17, \"correct\": true, \"response\": \"r\", "
                           "\"finish_reason\": \"length\", \"completion_tokens\": 1024, "
                           "\"doc_hash\": \"ab12\", \"gold\": \"5\", \"extracted\": \"\"}",
                           0, NULL);
    assert_int_equal(qe_compare_record_from_json(o, 0, &r, kb, sizeof kb, &e), 0);
    assert_string_equal(r.key, "17");
    assert_true(r.correct == 1.0);
    assert_string_equal(r.finish_reason, "length");
    assert_int_equal(r.completion_tokens, 1024);
    assert_string_equal(r.extracted, "");
    assert_int_equal(r.repeats, 1);
    assert_int_equal(r.word_count, -1);
    assert_int_equal(qe_compare_record_from_json(o, 1, &r, kb, sizeof kb, &e), 0);
    assert_string_equal(r.key, "ab12");
    json_decref(o);
    static const char *const bad[] = {
        "{\"correct\": 1}", "{\"doc_id\": 1}", "{\"doc_id\": 1, \"correct\": 2}",
        "{\"doc_id\": 1.5, \"correct\": 1}", "{\"doc_id\": 1, \"correct\": \"yes\"}",
        "{\"doc_id\": 1, \"correct\": 1, \"response\": 5}",
        "{\"doc_id\": 1, \"correct\": 1, \"completion_tokens\": -3}", "[1]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        assert_non_null(b);
        e.msg[0] = '\0';
        if (qe_compare_record_from_json(b, 0, &r, kb, sizeof kb, &e) != QE_EINVAL)
            fail_msg("accepted bad line %s", bad[i]);
        assert_true(strlen(e.msg) > 0);
        json_decref(b);
    }
    o = json_loads("{\"doc_id\": 1, \"correct\": 1}", 0, NULL);
    assert_int_equal(qe_compare_record_from_json(o, 1, &r, kb, sizeof kb, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "doc_hash"));
    json_decref(o);
}

static void test_flips_listing(void **st)
{
    (void)st;
    scripted s;
    make_scripted(&s);
    s.m[0].extracted = "7";
    s.b[0].extracted = "8";
    s.m[1].response = "long reasoning ... so the answer is \\boxed{3}";
    qe_compare_model model = {"A", s.m, NP};
    qe_compare_input in = {"math", NULL, {"base", s.b, NP}, &model, 1};
    qe_compare_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(&in, 1, NULL, &r, &e), 0);
    qe_buf out = QE_BUF_INIT;
    assert_int_equal(qe_compare_write_flips(r, 5, &out, &e), 0);
    const char *t = qe_buf_str(&out);
    assert_non_null(strstr(t, "math/none A vs base, lost (7):\n  d0: A \"7\" | base \"8\"\n"));
    assert_non_null(strstr(t, "  d1: A ...\"long reasoning ... so the answer is \\boxed{3}\" | base right\n"));
    assert_non_null(strstr(t, "... and 2 more"));
    assert_non_null(strstr(t, "gained (3):\n  d60: A right | base wrong\n"));
    assert_null(strstr(t, "d5:")); /* only 5 of the 7 listed */
    qe_buf_free(&out);
    qe_compare_result_free(r);
}

static void test_config_diff(void **st)
{
    (void)st;
    json_t *a = json_loads("{\"model\":\"x\",\"limit\":100,\"gen_kwargs\":{\"max_gen_toks\":1024,"
                           "\"temperature\":0},\"chat_template_sha\":\"abc\",\"thinking\":true}",
                           0, NULL);
    json_t *b = json_loads("{\"model\":\"y\",\"limit\":100,\"gen_kwargs\":{\"max_gen_toks\":1024,"
                           "\"temperature\":0.0,\"top_p\":0.95},\"chat_template_sha\":\"abd\","
                           "\"system_instruction\":\"Be brief\"}",
                           0, NULL);
    qe_buf out = QE_BUF_INIT;
    qe_err e = {0};
    const char *ignore[] = {"model", NULL};
    int n = qe_compare_config_diff(a, b, ignore, &out, &e);
    assert_int_equal(n, 4);
    const char *s = qe_buf_str(&out);
    assert_non_null(strstr(s, "gen_kwargs.top_p: (missing) vs 0.95\n"));
    assert_non_null(strstr(s, "chat_template_sha: \"abc\" vs \"abd\"\n"));
    assert_non_null(strstr(s, "thinking: true vs (missing)\n"));
    assert_non_null(strstr(s, "system_instruction: (missing) vs \"Be brief\"\n"));
    assert_null(strstr(s, "temperature")); /* 0 and 0.0 are the same */
    assert_null(strstr(s, "model"));
    qe_buf_reset(&out);
    assert_int_equal(qe_compare_config_diff(a, a, NULL, &out, &e), 0);
    assert_int_equal(out.len, 0);
    qe_buf_free(&out);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_flips), cmocka_unit_test(test_unpaired_and_errors),
        cmocka_unit_test(test_identical),
        cmocka_unit_test(test_diagnostics), cmocka_unit_test(test_repeats),
        cmocka_unit_test(test_real_example), cmocka_unit_test(test_config_diff),
        cmocka_unit_test(test_record_from_json), cmocka_unit_test(test_flips_listing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
