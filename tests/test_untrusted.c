/* test_untrusted: hostile model text through every entry point that reads it.
 *
 * Model outputs are the least trusted input qeval has: they can hold NUL
 * bytes, invalid UTF-8, megabytes of text, 100k-deep nested braces, or
 * "</script>" aimed at the HTML report. Each case below sends one such text
 * through one entry point and asserts the documented outcome (a verdict, a
 * clear error, an escaped string), never just "did not crash"; the crash,
 * leak and UB checks come from running this under ASan+UBSan (make check)
 * and valgrind. docs/reliability.md lists which case covers which fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "score_lmeval.h"

#define MB10 (10u * 1024u * 1024u)
#define DEEP 100000u

/* ---- hostile texts ---- */

/* n bytes of filler, then tail (malloc'd). */
static char *big_text(size_t n, const char *tail)
{
    size_t t = strlen(tail);
    char *s = malloc(n + t + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (i % 64 == 63) ? '\n' : "lorem ipsum "[i % 12];
    memcpy(s + n, tail, t + 1);
    return s;
}

/* head, then depth copies of open, mid, depth copies of close, then tail. */
static char *nested(const char *head, const char *open, size_t depth, const char *mid,
                    const char *close, size_t close_depth, const char *tail)
{
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_buf_puts(&b, head), 0);
    for (size_t i = 0; i < depth; i++)
        assert_int_equal(qe_buf_puts(&b, open), 0);
    assert_int_equal(qe_buf_puts(&b, mid), 0);
    for (size_t i = 0; i < close_depth; i++)
        assert_int_equal(qe_buf_puts(&b, close), 0);
    assert_int_equal(qe_buf_puts(&b, tail), 0);
    return qe_buf_detach(&b);
}

/* ---- scorer (score_lmeval): the exact lm-eval verdict ---- */

/* Scores response for task against a doc whose answer/solution is gold;
 * returns the verdict of the first filter and copies its extracted answer. */
static int lm_score(const char *task, const char *gold, const char *response, char **extracted)
{
    json_t *doc;
    if (strcmp(task, "hendrycks_math500") == 0) {
        char sol[256];
        snprintf(sol, sizeof sol, "So it is \\boxed{%s}.", gold);
        doc = json_pack("{s:s, s:s, s:s}", "problem", "p", "solution", sol, "answer", gold);
    } else if (strcmp(task, "gsm8k") == 0) {
        char ans[256];
        snprintf(ans, sizeof ans, "steps\n#### %s", gold);
        doc = json_pack("{s:s, s:s}", "question", "q", "answer", ans);
    } else {
        doc = json_pack("{s:s, s:s}", "problem", "p", "answer", gold);
    }
    assert_non_null(doc);
    qe_lm_score sc;
    qe_err e = {0};
    int rc = qe_lm_score_doc(task, doc, response, &sc, &e);
    json_decref(doc);
    if (rc != 0)
        fail_msg("score_doc(%s) failed: %s", task, e.msg);
    int v = sc.f[sc.n - 1].value; /* gsm8k: flexible-extract */
    if (extracted)
        *extracted = strdup(sc.f[sc.n - 1].extracted ? sc.f[sc.n - 1].extracted : "");
    qe_lm_score_free(&sc);
    return v;
}

/* A NUL inside a C string ends it: the scorer sees only what precedes it.
 * (Replies carrying NUL are refused earlier, by the client: see the client
 * cases below.) Here the answer after the NUL is not seen. */
static void test_lm_nul_ends_text(void **state)
{
    (void)state;
    static const char resp[] = "The answer is \\boxed{7}\0 no, \\boxed{8}";
    assert_int_equal(lm_score("aime24", "7", resp, NULL), 1);
    assert_int_equal(lm_score("aime24", "8", resp, NULL), 0);
}

/* Invalid UTF-8 is scored like Python's surrogateescape: every bad byte is
 * one code point of its own, never a digit, so it neither crashes nor
 * matches a digit. */
static void test_lm_invalid_utf8(void **state)
{
    (void)state;
    char *x = NULL;
    assert_int_equal(lm_score("aime24", "7", "\xff\xfe junk \xc3 \\boxed{7} \xed\xa0\x80", &x), 1);
    assert_string_equal(x, "7");
    free(x);
    /* the bad bytes inside the answer stay part of it: not equal to 7 */
    assert_int_equal(lm_score("aime24", "7", "\\boxed{7\xff}", &x), 0);
    assert_string_equal(x, "7\xff");
    free(x);
    assert_int_equal(lm_score("hendrycks_math500", "5", "so $\xc0\xaf 5$ ok", NULL), 0);
    assert_int_equal(lm_score("gsm8k", "12", "\x80\x80 #### 12 \xf8", NULL), 1);
    /* a lone invalid byte vs the same byte: equal (raw comparison) */
    assert_true(qe_lm_is_equiv("\xff", "\xff"));
    assert_false(qe_lm_is_equiv("\xff", "\xfe"));
}

/* 10 MB responses: the answer at the very end is found, for every task. */
static void test_lm_10mb(void **state)
{
    (void)state;
    char *s = big_text(MB10, " so the answer is \\boxed{42}. $42$ #### 42");
    char *x = NULL;
    assert_int_equal(lm_score("aime24", "42", s, &x), 1);
    assert_string_equal(x, "42");
    free(x);
    assert_int_equal(lm_score("hendrycks_math500", "42", s, NULL), 1);
    assert_int_equal(lm_score("gsm8k", "42", s, NULL), 1);
    free(s);
    /* one 10 MB number: gsm8k flexible-extract takes it whole, and it is not 42 */
    s = malloc(MB10 + 1);
    assert_non_null(s);
    memset(s, '4', MB10);
    s[MB10] = '\0';
    assert_int_equal(lm_score("gsm8k", "42", s, &x), 0);
    assert_int_equal(strlen(x), MB10);
    free(x);
    free(s);
}

/* 100k-deep nested braces: balanced ones are one (wrong) answer, unbalanced
 * ones are "no closed \boxed", which lm-eval's aime scorer answers by
 * falling back to the $-slice (no '$' at all: the whole response). */
static void test_lm_deep_braces(void **state)
{
    (void)state;
    char *x = NULL;
    char *s = nested("\\boxed{", "{", DEEP, "7", "}", DEEP, "}");
    assert_int_equal(lm_score("aime24", "7", s, &x), 0);
    assert_int_equal(strlen(x), 2 * DEEP + 1); /* the braces are kept */
    free(x);
    free(s);
    s = nested("\\boxed{", "{", DEEP, "7", "}", 0, "");
    assert_int_equal(lm_score("aime24", "7", s, &x), 0);
    assert_true(strcmp(x, s) == 0);
    free(x);
    char *b = qe_lm_last_boxed_only_string(s);
    assert_null(b);
    free(s);
    /* the answer after a deep but closed structure is still the last one */
    s = nested("", "{", DEEP, "x", "}", DEEP, " \\boxed{7}");
    assert_int_equal(lm_score("aime24", "7", s, NULL), 1);
    free(s);
    /* strip_string on deep \frac nesting: a result or lm-eval's own error */
    s = nested("", "\\frac{", DEEP, "1", "}{2}", DEEP, "");
    char *out = NULL;
    int rc = qe_lm_strip_string(s, &out);
    assert_true(rc == 0 || rc == QE_LM_INDEX_ERROR || rc == QE_LM_VALUE_ERROR);
    free(out);
    free(s);
}

/* "</script>" in an answer is just text to the scorer. */
static void test_lm_script_tag(void **state)
{
    (void)state;
    char *x = NULL;
    assert_int_equal(lm_score("aime24", "7", "</script><script>alert(1)</script> \\boxed{7}", &x), 1);
    assert_string_equal(x, "7");
    free(x);
    assert_int_equal(lm_score("aime24", "7", "\\boxed{</script>}", &x), 0);
    assert_string_equal(x, "</script>");
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lm_nul_ends_text),
        cmocka_unit_test(test_lm_invalid_utf8),
        cmocka_unit_test(test_lm_10mb),
        cmocka_unit_test(test_lm_deep_braces),
        cmocka_unit_test(test_lm_script_tag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
