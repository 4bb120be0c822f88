/* Tests for src/score_lmeval.c: every line of tests/cases/lmeval_*.jsonl
 * (verdicts produced by lm-eval's own code, see tools/lmeval_oracle.py) plus
 * unit tests of each helper. A failing golden line is reported as file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "score_lmeval.h"

/* ---- golden files ---- */

/* Text of field k: "k" (string/null) or "k_hex" (raw bytes). Sets *present. */
static char *field_text(json_t *d, const char *k, int *present)
{
    char hk[64];
    snprintf(hk, sizeof hk, "%s_hex", k);
    json_t *h = json_object_get(d, hk);
    *present = 1;
    if (json_is_string(h)) {
        const char *x = json_string_value(h);
        size_t n = strlen(x) / 2;
        char *o = malloc(n + 1);
        for (size_t i = 0; i < n; i++) {
            unsigned v;
            sscanf(x + 2 * i, "%2x", &v);
            o[i] = (char)v;
        }
        o[n] = '\0';
        return o;
    }
    json_t *v = json_object_get(d, k);
    if (json_is_string(v))
        return strdup(json_string_value(v));
    *present = v != NULL;
    return NULL;
}

/* Compare a C result (rc, s) with an oracle value: a string, {"hex":...},
 * null, or "EXCEPTION:Name". Returns 1 when they agree. */
static int agrees(json_t *want, int rc, const char *s, char *why, size_t whyn)
{
    if (json_is_null(want)) {
        snprintf(why, whyn, "want None, got %s", s ? s : "(raise)");
        return rc == 0 && s == NULL;
    }
    if (json_is_object(want)) {
        const char *hx = json_string_value(json_object_get(want, "hex"));
        char buf[4096] = "";
        for (size_t i = 0; s && s[i] && 2 * i + 3 < sizeof buf; i++)
            snprintf(buf + 2 * i, 3, "%02x", (unsigned char)s[i]);
        snprintf(why, whyn, "want hex %s, got hex %s", hx, buf);
        return rc == 0 && s && hx && strcmp(buf, hx) == 0;
    }
    const char *w = json_string_value(want);
    if (!w) {
        snprintf(why, whyn, "bad expected value");
        return 0;
    }
    if (strncmp(w, "EXCEPTION:", 10) == 0) {
        snprintf(why, whyn, "want %s, got rc %d (%s) '%s'", w, rc, qe_lm_raise_name(rc), s ? s : "");
        return rc < 0 && strcmp(w + 10, qe_lm_raise_name(rc)) == 0;
    }
    snprintf(why, whyn, "want '%s', got rc %d '%s'", w, rc, s ? s : "(null)");
    return rc == 0 && s && strcmp(s, w) == 0;
}

static int check_strip(json_t *want, const char *in, char *why, size_t whyn)
{
    if (!in)
        return json_is_null(want);
    char *s = NULL;
    int rc = qe_lm_strip_string(in, &s);
    int ok = agrees(want, rc, s, why, whyn);
    free(s);
    return ok;
}

static int check_line(json_t *d, char *why, size_t whyn)
{
    const char *fn = json_string_value(json_object_get(d, "fn"));
    json_t *want = json_object_get(d, "expected");
    int hp, hg, ok = 0;
    char *p = field_text(d, "pred", &hp), *g = field_text(d, "gold", &hg);
    char *s = NULL;
    if (!fn || !want) {
        snprintf(why, whyn, "line lacks fn/expected");
    } else if (!strcmp(fn, "is_equiv")) {
        int got = qe_lm_is_equiv(p, g);
        snprintf(why, whyn, "is_equiv: want %d got %d", json_is_true(want), got);
        ok = got == json_is_true(want);
        if (ok && json_object_get(d, "ss_pred"))
            ok = check_strip(json_object_get(d, "ss_pred"), p, why, whyn);
        if (ok && json_object_get(d, "ss_gold"))
            ok = check_strip(json_object_get(d, "ss_gold"), g, why, whyn);
    } else if (!strcmp(fn, "strip_string")) {
        ok = check_strip(want, p, why, whyn);
    } else if (!strcmp(fn, "last_boxed_only_string")) {
        s = qe_lm_last_boxed_only_string(p);
        ok = agrees(want, 0, s, why, whyn);
    } else if (!strcmp(fn, "remove_boxed")) {
        int rc = qe_lm_remove_boxed(p, &s);
        ok = agrees(want, rc, s, why, whyn);
    } else if (!strcmp(fn, "gsm8k.exact_match")) {
        int got = qe_lm_gsm8k_exact_match(p, g, NULL, NULL);
        snprintf(why, whyn, "exact_match: want %lld got %d", json_integer_value(want), got);
        ok = got == json_integer_value(want);
    } else {
        char task[32];
        const char *dot = strchr(fn, '.');
        size_t tn = dot ? (size_t)(dot - fn) : strlen(fn);
        snprintf(task, sizeof task, "%.*s", (int)tn, fn);
        qe_lm_score sc;
        qe_err err = {0};
        int rc = qe_lm_score_doc(task, json_object_get(d, "doc"), p ? p : "", &sc, &err);
        if (rc < 0) {
            snprintf(why, whyn, "score_doc failed: %s", err.msg);
        } else if (!strcmp(task, "gsm8k")) {
            ok = sc.n == 2;
            for (size_t i = 0; ok && i < 2; i++) {
                json_t *w = json_object_get(want, sc.f[i].filter);
                const char *wf = json_string_value(json_array_get(w, 0));
                long long wv = json_integer_value(json_array_get(w, 1));
                snprintf(why, whyn, "%s: want ['%s', %lld] got ['%s', %d] (compared '%s' vs '%s')",
                         sc.f[i].filter, wf ? wf : "?", wv, sc.f[i].filtered_resp, sc.f[i].value,
                         sc.f[i].extracted, sc.f[i].gold);
                ok = wf && strcmp(wf, sc.f[i].filtered_resp) == 0 && wv == sc.f[i].value;
            }
        } else {
            snprintf(why, whyn, "exact_match: want %lld got %d (compared '%s' vs '%s')",
                     json_integer_value(want), sc.f[0].value, sc.f[0].extracted, sc.f[0].gold);
            ok = sc.n == 1 && sc.f[0].value == json_integer_value(want) &&
                 strcmp(sc.f[0].filtered_resp, p ? p : "") == 0;
        }
        if (rc == 0)
            qe_lm_score_free(&sc);
    }
    free(s);
    free(p);
    free(g);
    return ok;
}

static size_t run_golden(const char *path, size_t *failed)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        n++;
        json_error_t je;
        json_t *d = json_loads(line, 0, &je);
        char why[8192] = "";
        if (!d) {
            fprintf(stderr, "%s:%zu: bad JSON: %s\n", path, n, je.text);
            (*failed)++;
            continue;
        }
        if (!check_line(d, why, sizeof why)) {
            fprintf(stderr, "%s:%zu: %s: %s\n", path, n,
                    json_string_value(json_object_get(d, "fn")), why);
            (*failed)++;
        }
        json_decref(d);
    }
    free(line);
    fclose(f);
    return n;
}

static void test_golden_equiv(void **state)
{
    (void)state;
    size_t failed = 0, n = run_golden("tests/cases/lmeval_equiv.jsonl", &failed);
    assert_true(n >= 200);
    assert_int_equal(failed, 0);
}

static void test_golden_fuzz(void **state)
{
    (void)state;
    size_t failed = 0, n = run_golden("tests/cases/lmeval_fuzz.jsonl", &failed);
    assert_true(n >= 1000);
    assert_int_equal(failed, 0);
}

/* ---- unit tests ---- */

static void expect_strip(const char *in, const char *want)
{
    char *s = NULL;
    int rc = qe_lm_strip_string(in, &s);
    if (rc != 0)
        fail_msg("strip_string(%s) raised %s", in, qe_lm_raise_name(rc));
    assert_string_equal(s, want);
    free(s);
}

static void expect_raise(const char *in, int code)
{
    char *s = (char *)1;
    assert_int_equal(qe_lm_strip_string(in, &s), code);
    assert_null(s);
}

static void test_strip_string_steps(void **state)
{
    (void)state;
    expect_strip("0.5", "\\frac{1}{2}");
    expect_strip(".5", "\\frac{1}{2}");
    expect_strip("0.50", "0.50");
    expect_strip("1/2", "\\frac{1}{2}");
    expect_strip("-1/2", "\\frac{-1}{2}");
    expect_strip("01/2", "01/2");
    expect_strip("\\dfrac12", "\\frac{1}{2}");
    expect_strip("\\frac1{72}", "\\frac{1}{72}");
    expect_strip("\\frac{72}1", "\\frac{72}1");
    expect_strip("\\frac12+\\frac3", "\\frac12+\\frac3");
    expect_strip("\\sqrt 3", "\\sqrt{}3");
    expect_strip("5\\text{ cm}", "5");
    expect_strip("a=b=5", "a=b=5");
    expect_strip("x = 5", "5");
    expect_strip("xy = 5", "xy=5");
    expect_strip("\xcf\x80 = 3", "3");        /* π: 1 code point, 2 bytes */
    expect_strip("\xcf\x80\xcf\x80 = 3", "\xcf\x80\xcf\x80=3");
    expect_strip("\\\\\\%%", "");             /* second "\%" pass */
    expect_strip("\\leftarrow", "arrow");
    expect_strip("", "");
    expect_strip("\n", "");
    expect_strip("\xd9\xa3/\xd9\xa4", "\xd9\xa3/\xd9\xa4"); /* Arabic-Indic 3/4: int ok, not canonical */
    expect_raise("x/2", QE_LM_VALUE_ERROR);
    expect_raise("1__0/2", QE_LM_VALUE_ERROR);
    expect_raise("3\x1c/4", QE_LM_VALUE_ERROR);
    expect_raise("\\sqrt", QE_LM_INDEX_ERROR);
    expect_raise("\\frac12+\\frac", QE_LM_INDEX_ERROR);
    expect_raise("\\text{ a}\\text{ b}", QE_LM_ASSERTION_ERROR);
    expect_strip("3\xe2\x80\x83/4", "3\xe2\x80\x83/4"); /* EM SPACE: int() accepts */
}

static void test_int_digit_limit(void **state)
{
    (void)state;
    char big[4400];
    memset(big, '9', 4301);
    strcpy(big + 4301, "/2");
    expect_raise(big, QE_LM_VALUE_ERROR);
    big[4300] = '/';
    big[4301] = '2';
    big[4302] = '\0';
    char *s = NULL;
    assert_int_equal(qe_lm_strip_string(big, &s), 0);
    assert_int_equal(strncmp(s, "\\frac{999", 9), 0);
    free(s);
}

static void test_is_equiv_fallback(void **state)
{
    (void)state;
    assert_true(qe_lm_is_equiv("x/2", "x/2"));
    assert_false(qe_lm_is_equiv("x/2", "\\frac{x}{2}"));
    assert_true(qe_lm_is_equiv(NULL, NULL));
    assert_false(qe_lm_is_equiv(NULL, "5"));
    assert_false(qe_lm_is_equiv("5", NULL));
    assert_true(qe_lm_is_equiv("\\$5", "5"));
    assert_false(qe_lm_is_equiv("070", "70"));
}

static void test_boxed(void **state)
{
    (void)state;
    char *s = qe_lm_last_boxed_only_string("a \\boxed{1} b \\boxed{\\frac{1}{2}} c");
    assert_string_equal(s, "\\boxed{\\frac{1}{2}}");
    free(s);
    s = qe_lm_last_boxed_only_string("\\boxed 5$ and \\boxed{7}");
    assert_string_equal(s, "\\boxed 5");
    free(s);
    assert_null(qe_lm_last_boxed_only_string("\\boxed{5"));
    assert_null(qe_lm_last_boxed_only_string("nothing"));
    s = qe_lm_last_boxed_only_string("\\fbox{3}");
    assert_string_equal(s, "\\fbox{3}");
    char *in = NULL;
    assert_int_equal(qe_lm_remove_boxed(s, &in), QE_LM_ASSERTION_ERROR);
    assert_null(in);
    free(s);
    assert_int_equal(qe_lm_remove_boxed("\\boxed{42}", &in), 0);
    assert_string_equal(in, "42");
    free(in);
    assert_int_equal(qe_lm_remove_boxed("\\boxed 42", &in), 0);
    assert_string_equal(in, "42");
    free(in);
    assert_int_equal(qe_lm_remove_boxed(NULL, &in), QE_EINVAL);
}

static void test_extract_answer(void **state)
{
    (void)state;
    char *a = NULL;
    assert_int_equal(qe_lm_extract_answer("hendrycks_math500", "$$\n\\boxed{90^\\circ}\n$$", &a), 0);
    assert_string_equal(a, "$\n\\boxed{90^\\circ}\n$");
    free(a);
    assert_int_equal(qe_lm_extract_answer("aime24", "$$\n\\boxed{90^\\circ}\n$$", &a), 0);
    assert_string_equal(a, "90^\\circ");
    free(a);
    assert_int_equal(qe_lm_extract_answer("aime25", "x $1$ \\fbox{2}", &a), 0);
    assert_string_equal(a, "1");
    free(a);
    assert_int_equal(qe_lm_extract_answer("nope", "x", &a), QE_EINVAL);
}

static void test_gsm8k(void **state)
{
    (void)state;
    char *f = NULL;
    qe_err err = {0};
    assert_int_equal(qe_lm_gsm8k_filter("strict-match", "x #### 1,234.\nmore #### 5", &f, &err), 0);
    assert_string_equal(f, "1,234.");
    free(f);
    assert_int_equal(qe_lm_gsm8k_filter("flexible-extract", "is $1,234. then 7 and 8", &f, &err), 0);
    assert_string_equal(f, "8");
    free(f);
    assert_int_equal(qe_lm_gsm8k_filter("flexible-extract", "none here", &f, &err), 0);
    assert_string_equal(f, "[invalid]");
    free(f);
    assert_int_equal(qe_lm_gsm8k_filter("other", "x", &f, &err), QE_EINVAL);
    assert_int_equal(qe_lm_gsm8k_exact_match("1,234.", "a\n#### 1234", NULL, NULL), 1);
    assert_int_equal(qe_lm_gsm8k_exact_match("$18", "#### 18\n", NULL, NULL), 0);
    assert_int_equal(qe_lm_gsm8k_exact_match("[invalid]", "[INVALID]", NULL, NULL), 1);

    json_t *doc = json_pack("{s:s, s:s}", "question", "Q", "answer", "so 2+2\n#### 4");
    qe_lm_score sc;
    assert_int_equal(qe_lm_score_doc("gsm8k", doc, "Thus 4.\n#### 4", &sc, &err), 0);
    assert_int_equal(sc.n, 2);
    assert_string_equal(sc.target, "so 2+2\n#### 4");
    assert_string_equal(sc.f[0].filter, "strict-match");
    assert_string_equal(sc.f[0].filtered_resp, "4");
    assert_int_equal(sc.f[0].value, 1);
    assert_string_equal(sc.f[1].filter, "flexible-extract");
    assert_string_equal(sc.f[1].metric, "exact_match");
    qe_lm_score_free(&sc);
    json_decref(doc);
}

/* The final answer after the last "####", trimmed; no "####": untouched. */
static void test_gsm8k_final_answer(void **state)
{
    (void)state;
    char a[] = "3 + 4 = 7\n#### 1 ####\t 1,234 \r\n";
    assert_int_equal(qe_lm_gsm8k_final_answer(a), 0);
    assert_string_equal(a, "1,234");
    char b[] = "no marker ## here\n";
    assert_int_equal(qe_lm_gsm8k_final_answer(b), -1);
    assert_string_equal(b, "no marker ## here\n");
    char c[] = "####";
    assert_int_equal(qe_lm_gsm8k_final_answer(c), 0);
    assert_string_equal(c, "");
}

static void test_score_doc_math(void **state)
{
    (void)state;
    qe_err err = {0};
    qe_lm_score sc;
    json_t *doc = json_pack("{s:s, s:s, s:s}", "problem", "P", "solution", "so $\\boxed{5}$", "answer", "5");
    assert_int_equal(qe_lm_score_doc("hendrycks_math500", doc, "The answer is $\\boxed{5}$", &sc, &err), 0);
    assert_int_equal(sc.f[0].value, 0); /* hendrycks never unboxes the response */
    assert_string_equal(sc.f[0].filter, "none");
    assert_string_equal(sc.f[0].gold, "5");
    qe_lm_score_free(&sc);
    json_decref(doc);

    doc = json_pack("{s:s, s:s}", "problem", "P", "solution", "no box");
    assert_int_equal(qe_lm_score_doc("hendrycks_math500", doc, "5", &sc, &err), QE_EINVAL);
    json_decref(doc);

    doc = json_pack("{s:s, s:i}", "ID", "2024-I-1", "Answer", 33);
    assert_int_equal(qe_lm_score_doc("aime24", doc, "\\boxed{33}", &sc, &err), 0);
    assert_string_equal(sc.target, "33");
    assert_int_equal(sc.f[0].value, 1);
    qe_lm_score_free(&sc);
    assert_int_equal(qe_lm_score_doc("aime25", doc, "\\boxed{033}", &sc, &err), 0);
    assert_int_equal(sc.f[0].value, 0);
    qe_lm_score_free(&sc);
    assert_int_equal(qe_lm_score_doc("mmlu", doc, "x", &sc, &err), QE_EINVAL);
    assert_non_null(strstr(err.msg, "mmlu"));
    json_decref(doc);

    doc = json_pack("{s:s}", "problem", "P");
    assert_int_equal(qe_lm_score_doc("aime25", doc, "x", &sc, &err), QE_EINVAL);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_equiv),    cmocka_unit_test(test_golden_fuzz),
        cmocka_unit_test(test_strip_string_steps), cmocka_unit_test(test_int_digit_limit),
        cmocka_unit_test(test_is_equiv_fallback), cmocka_unit_test(test_boxed),
        cmocka_unit_test(test_extract_answer),  cmocka_unit_test(test_gsm8k),
        cmocka_unit_test(test_gsm8k_final_answer), cmocka_unit_test(test_score_doc_math),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
