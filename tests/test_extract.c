/* Tests for src/extract.c: which span of a full response is the answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "extract.h"

/* Extracted text with the default order, or "<none>". */
static const char *X(const char *text, int *method)
{
    static char buf[512];
    size_t s = 0, l = 0;
    int m = qe_extract_answer(text, strlen(text), NULL, &s, &l);
    if (method)
        *method = m;
    if (!m)
        return "<none>";
    snprintf(buf, sizeof buf, "%.*s", (int)l, text + s);
    return buf;
}

static void test_boxed_last_and_balanced(void **state)
{
    (void)state;
    int m;
    assert_string_equal(X("a \\boxed{1} then \\boxed{\\frac{1}{2}}.", &m), "\\frac{1}{2}");
    assert_int_equal(m, QE_EXTRACT_BOXED);
    assert_string_equal(X("\\fbox{7}", &m), "7");
    assert_string_equal(X("$\\boxed{ {a}+{b} }$", NULL), "{a}+{b}");
    assert_string_equal(X("\\boxed 70", NULL), "70");
    /* an unclosed box is skipped: the earlier closed one wins */
    assert_string_equal(X("\\boxed{3} and then \\boxed{4", NULL), "3");
    /* escaped braces do not count */
    assert_string_equal(X("\\boxed{\\{1,2\\}}", NULL), "\\{1,2\\}");
}

static void test_several_boxes_joined(void **state)
{
    (void)state;
    assert_string_equal(X("so \\boxed{-2} and \\boxed{1}.", NULL), "\\boxed{-2} and \\boxed{1}");
    assert_string_equal(X("\\boxed{1},\\boxed{2}", NULL), "\\boxed{1},\\boxed{2}");
    /* "or" gives alternatives, not a list: the last box wins */
    assert_string_equal(X("$\\boxed{15\\frac{39}{40}}$ or $\\boxed{\\frac{639}{40}}$", NULL), "\\frac{639}{40}");
    /* boxes separated by prose are not joined */
    assert_string_equal(X("\\boxed{1} is wrong, the answer is \\boxed{2}", NULL), "2");
}

static void test_think_blocks_ignored(void **state)
{
    (void)state;
    assert_string_equal(X("<think>\\boxed{12}</think> so \\boxed{70}", NULL), "70");
    assert_string_equal(X("<think>a</think><think>\\boxed{5}</think>The answer is 6.", NULL), "6");
    /* unclosed: only the text before <think> counts */
    assert_string_equal(X("\\boxed{70} <think>wait \\boxed{12}", NULL), "70");
    assert_string_equal(X("<think>\\boxed{12} and more", NULL), "<none>");
}

static void test_marker_and_spans(void **state)
{
    (void)state;
    int m;
    assert_string_equal(X("We get $x=2$. The final answer is $5$. I hope it is correct.", &m), "5");
    assert_int_equal(m, QE_EXTRACT_FINAL_ANSWER);
    assert_string_equal(X("Final Answer: The largest $n$ is 34.", NULL), "34");
    assert_string_equal(X("The final answer is $\\frac{1}{2}$", NULL), "\\frac{1}{2}");
    assert_string_equal(X("The final answer is: even", NULL), "even");
    assert_string_equal(X("So the answer is $5$. This needs $x>2$.", &m), "5");
    assert_int_equal(m, QE_EXTRACT_FINAL_ANSWER);
    assert_string_equal(X("reasoning\nAnswer: 42\n", &m), "42");
    assert_int_equal(m, QE_EXTRACT_ANSWER_COLON);
    assert_string_equal(X("So $x = 3$ and we get $70$", &m), "70");
    assert_int_equal(m, QE_EXTRACT_MATH_SPAN);
    assert_string_equal(X("thus \\[ \\frac{1}{2} \\] done", NULL), "\\frac{1}{2}");
    assert_string_equal(X("$$\n\\sqrt{51}\n$$", NULL), "\\sqrt{51}");
    assert_string_equal(X("costs \\$5 in total", &m), "5");
    assert_int_equal(m, QE_EXTRACT_LAST_NUMBER);
}

static void test_last_number(void **state)
{
    (void)state;
    assert_string_equal(X("there are 3 red and 1,000.5 blue", NULL), "1,000.5");
    assert_string_equal(X("the value is -7.", NULL), "-7");
    assert_string_equal(X("AZYUK2A", NULL), "<none>");
    assert_string_equal(X("it is 5cm long", NULL), "5");
    assert_string_equal(X("no digits here", NULL), "<none>");
}

static void test_configurable_order(void **state)
{
    (void)state;
    qe_extract_opts o;
    assert_int_equal(qe_extract_opts_parse(&o, "number"), 0);
    const char *t = "\\boxed{7} then 9";
    size_t s, l;
    assert_int_equal(qe_extract_answer(t, strlen(t), &o, &s, &l), QE_EXTRACT_LAST_NUMBER);
    assert_int_equal(l, 1);
    assert_int_equal(t[s], '9');
    assert_int_equal(qe_extract_opts_parse(&o, "whole"), 0);
    assert_int_equal(qe_extract_answer(t, strlen(t), &o, &s, &l), QE_EXTRACT_WHOLE);
    assert_int_equal(l, strlen(t));
    assert_int_equal(qe_extract_opts_parse(&o, "boxed,bogus"), QE_EINVAL);
    assert_int_equal(qe_extract_opts_parse(&o, ""), QE_EINVAL);
    assert_string_equal(qe_extract_method_name(QE_EXTRACT_MATH_SPAN), "math");
}

static void test_hostile_input(void **state)
{
    (void)state;
    /* long runs of openers and markers: linear time, no crash */
    size_t n = 200000;
    char *t = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        t[i] = "{\\boxed$<"[i % 9];
    t[n] = 0;
    size_t s, l;
    (void)qe_extract_answer(t, n, NULL, &s, &l);
    memset(t, '$', n);
    (void)qe_extract_answer(t, n, NULL, &s, &l);
    free(t);
    assert_int_equal(qe_extract_answer("", 0, NULL, &s, &l), QE_EXTRACT_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boxed_last_and_balanced), cmocka_unit_test(test_several_boxes_joined),
        cmocka_unit_test(test_think_blocks_ignored),    cmocka_unit_test(test_marker_and_spans),
        cmocka_unit_test(test_last_number),             cmocka_unit_test(test_configurable_order),
        cmocka_unit_test(test_hostile_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
