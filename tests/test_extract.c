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
    /* a sentence that opens with math states its answer first */
    assert_string_equal(X("The answer is $6$ because $2 \\times 3 = 6$ and not $7$", NULL), "6");
    assert_string_equal(X("So the answer is \\(6\\) since \\(2 \\cdot 3 = 6\\).", NULL), "6");
    /* prose first: cut before because / since / not / but, then the last */
    assert_string_equal(X("The answer is therefore $6$ because $2 \\times 3 = 6$ and not $7$", NULL), "6");
    assert_string_equal(X("Final Answer: the total is $12$, not $15$ as I first thought.", NULL), "12");
    assert_string_equal(X("reasoning\nAnswer: 42\n", &m), "42");
    assert_int_equal(m, QE_EXTRACT_ANSWER_COLON);
    assert_string_equal(X("So $x = 3$ and we get $70$", &m), "70");
    assert_int_equal(m, QE_EXTRACT_MATH_SPAN);
    assert_string_equal(X("thus \\[ \\frac{1}{2} \\] done", NULL), "\\frac{1}{2}");
    assert_string_equal(X("$$\n\\sqrt{51}\n$$", NULL), "\\sqrt{51}");
    assert_string_equal(X("costs \\$5 in total", &m), "5");
    assert_int_equal(m, QE_EXTRACT_LAST_NUMBER);
}

/* Extracted text with one method only, or "<none>". */
static const char *X1(const char *method, const char *text)
{
    static char buf[512];
    qe_extract_opts o;
    assert_int_equal(qe_extract_opts_parse(&o, method), 0);
    size_t s = 0, l = 0;
    if (!qe_extract_answer(text, strlen(text), &o, &s, &l))
        return "<none>";
    snprintf(buf, sizeof buf, "%.*s", (int)l, text + s);
    return buf;
}

static void test_last_number(void **state)
{
    (void)state;
    assert_string_equal(X("there are 3 red and 1,000.5 blue", NULL), "1,000.5");
    assert_string_equal(X("the value is -7.", NULL), "-7");
    assert_string_equal(X1("number", "AZYUK2A"), "<none>");
    assert_string_equal(X("it is 5cm long", NULL), "5");
    assert_string_equal(X1("number", "no digits here"), "<none>");
    assert_string_equal(X("x=-5", NULL), "-5");
    assert_string_equal(X("The result, in bold: **5**", NULL), "5");
}

static void test_last_number_whole_simple_number(void **state)
{
    (void)state;
    int m;
    /* issue 7: a bare 3/2 was read as 2 */
    assert_string_equal(X("3/2", &m), "3/2");
    assert_int_equal(m, QE_EXTRACT_LAST_NUMBER);
    assert_string_equal(X("so x = -3/2.", NULL), "-3/2");
    assert_string_equal(X("P(A) = 2/3 therefore", NULL), "2/3");
    assert_string_equal(X("1/2 of 6 is 3", NULL), "3");
    /* a mixed number is one number (the verifier reads 3 1/2 as 7/2), so
     * 1/2 alone is never compared */
    assert_string_equal(X("He walked 3 1/2 miles", NULL), "3 1/2");
    assert_string_equal(X("a loss of -3 1/2 points", NULL), "-3 1/2");
    assert_string_equal(X("items 3, 1/2", NULL), "1/2");
    assert_string_equal(X("The price rose by 25%", NULL), "25%");
    assert_string_equal(X("a rise of 12.5\\% in all", NULL), "12.5\\%");
    assert_string_equal(X("The total is 1,234,567 dollars", NULL), "1,234,567");
    assert_string_equal(X("x equals -0.75", NULL), "-0.75");
    /* scientific notation is one number, as the verifier reads it */
    assert_string_equal(X("The speed is about 3e8 m/s", NULL), "3e8");
    assert_string_equal(X("we get 1.5E-3.", NULL), "1.5E-3");
    assert_string_equal(X("so it is 1.0e+3", NULL), "1.0e+3");
    assert_string_equal(X1("number", "it is 2e^3"), "<none>");    /* a scale word belongs to the number (the verifier reads 1 million as 10^6) */
    assert_string_equal(X("The company earned 1.5 million dollars", NULL), "1.5 million");
    assert_string_equal(X("about 3 Thousand people", NULL), "3 Thousand");
    assert_string_equal(X("Thus about $1$ million people", NULL), "1$ million");
    assert_string_equal(X("there are 7 millionaires", NULL), "7");
}

static void test_last_number_not_inside_expressions(void **state)
{
    (void)state;
    /* the last number is part of something larger: the rule finds nothing
     * rather than a piece (each of these used to give a false positive) */
    static const char *const texts[] = {
        "It happened on 3/4/2021",    /* date */
        "on 2023-12-25",              /* date */
        "The ratio of boys to girls is 1:2",
        "The train leaves at 10:30",  /* time */
        "The difference is 10-7",     /* binary minus */
        "it is 2x+3",
        "it is 2*3",
        "The angle is \\pi/2",
        "it is x/2",
        "it is 2/x",
        "it is 1.5/2",
        "The area is x^2",
        "It equals 2^{10}",
        "Then \\frac{3}{2}",
        "is \\sqrt{2}",
        "In binary it is 1011_2",
        "truncated \\boxed{70",
        /* the same operators with spaces */
        "The difference is 10 - 7",
        "it is 3 + 4",
        "it is 2 * 5",
        "it is 6 \xc3\x97 7",
        "it is 6 \\times 7",
        "it is 6 \\cdot 7",
        "it is 7 \\times 2",
        "it is 10 \xe2\x88\x92 7",
        "the ratio is 3 : 7",
        "The result is x - 7",
        "it is \\pi - 7",
        "it is 7 + x",
        "It happened on 3 / 4 / 2021",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const char *got = X1("number", texts[i]);
        if (strcmp(got, "<none>"))
            fail_msg("%s -> %s", texts[i], got);
    }
    /* a spaced a / b is one number, like a glued one */
    assert_string_equal(X1("number", "The probability is 1 / 2."), "1 / 2");
    /* a sentence dash, = and a label colon are no operators */
    assert_string_equal(X1("number", "Here is the answer - 7"), "7");
    assert_string_equal(X1("number", "It is 7 - that is all"), "7");
    assert_string_equal(X1("number", "so x = 7"), "7");
    assert_string_equal(X1("number", "Case 2: 7 ways"), "7");
    assert_string_equal(X1("number", "The answer is 7 + more"), "7");
    /* a hyphenated word after the number is not an operator */
    assert_string_equal(X1("number", "there are 9 5-digit numbers"), "5");
}

static void test_last_number_not_an_element(void **state)
{
    (void)state;
    /* an element of a bracketed group with a comma is a piece of a tuple,
     * interval or set: nothing, and the short rule takes the group whole */
    static const char *const groups[] = {
        "(3,-1)", "[0,\\infty)", "(1,2]", "[1,2)", "\\{1,2,3\\}", "(a, 5)", "(5, f(3))",
        "\\left( 3, -1 \\right)", "We get 7 (since 3, 4 add up)",
    };
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        const char *got = X1("number", groups[i]);
        if (strcmp(got, "<none>"))
            fail_msg("%s -> %s", groups[i], got);
    }
    int m;
    assert_string_equal(X("(1,2]", &m), "(1,2]");
    assert_int_equal(m, QE_EXTRACT_SHORT);
    /* no comma in the brackets, brackets closed before it, prose commas,
     * thousands separators: a number as before */
    assert_string_equal(X("(5)", &m), "5");
    assert_int_equal(m, QE_EXTRACT_LAST_NUMBER);
    assert_string_equal(X1("number", "[5]"), "5");
    assert_string_equal(X1("number", "f(3)"), "3");
    assert_string_equal(X1("number", "the points (1,2) and (3,4) give 7"), "7");
    assert_string_equal(X1("number", "I had 3, so now I have 7"), "7");
    assert_string_equal(X1("number", "The total is 1,234 dollars"), "1,234");
}

static void test_short_response_whole(void **state)
{
    (void)state;
    int m;
    assert_string_equal(X("Carla", &m), "Carla");
    assert_int_equal(m, QE_EXTRACT_SHORT);
    assert_string_equal(X("  North.\n", NULL), "North");
    assert_string_equal(X("\\text{Monday}", &m), "\\text{Monday}");
    assert_int_equal(m, QE_EXTRACT_SHORT);
    assert_string_equal(X("<think>maybe south, long long thinking</think>\nnorth", NULL), "north");
    /* LaTeX without $ is taken whole rather than by its last digit */
    assert_string_equal(X("\\frac{3}{2}", NULL), "\\frac{3}{2}");
    assert_string_equal(X("AZYUK2A", &m), "AZYUK2A");
    assert_int_equal(m, QE_EXTRACT_SHORT);
    /* earlier methods still win */
    assert_string_equal(X("The answer is north", &m), "north");
    assert_int_equal(m, QE_EXTRACT_FINAL_ANSWER);
    /* at most QE_EXTRACT_SHORT_MAX bytes after trimming, one line */
    char t[QE_EXTRACT_SHORT_MAX + 8];
    memset(t, 'a', sizeof t);
    t[0] = ' ';
    t[QE_EXTRACT_SHORT_MAX + 1] = ' ';
    t[QE_EXTRACT_SHORT_MAX + 2] = 0;
    assert_int_equal(strlen(X(t, &m)), QE_EXTRACT_SHORT_MAX);
    assert_int_equal(m, QE_EXTRACT_SHORT);
    t[QE_EXTRACT_SHORT_MAX + 1] = 'a';
    assert_string_equal(X(t, NULL), "<none>");
    assert_string_equal(X("north\nsouth", NULL), "<none>");
    assert_string_equal(X("north\r\nsouth", NULL), "<none>");
    /* long prose mentioning the gold is never taken whole */
    assert_string_equal(X("She starts facing north. After turning around twice and then once more, she "
                          "ends up facing south.",
                          NULL),
                        "<none>");
    /* cut off inside <think>: nothing before it */
    assert_string_equal(X("<think>It must be Carla", NULL), "<none>");
    /* "whole" stays unconditional when asked for */
    assert_string_equal(X1("whole", "north\nsouth"), "north\nsouth");
    assert_string_equal(X1("short", "north\nsouth"), "<none>");
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
    assert_string_equal(qe_extract_method_name(QE_EXTRACT_SHORT), "short");
    assert_string_equal(qe_extract_method_name(QE_EXTRACT_LAST_METHOD + 1), "?");
    assert_int_equal(qe_extract_opts_parse(&o, "boxed,short"), 0);
    assert_int_equal(o.order[1], QE_EXTRACT_SHORT);
    /* the default order ends with the short-response rule */
    qe_extract_opts d;
    qe_extract_opts_init(&d);
    static const unsigned char want[] = {QE_EXTRACT_BOXED,      QE_EXTRACT_FINAL_ANSWER, QE_EXTRACT_ANSWER_COLON,
                                         QE_EXTRACT_MATH_SPAN,  QE_EXTRACT_LAST_NUMBER,  QE_EXTRACT_SHORT,
                                         QE_EXTRACT_NONE};
    assert_memory_equal(d.order, want, sizeof want);
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
    /* one line of deeply nested groups, "(1,(1,...))": the bracket scans
     * stay linear, and the last 1 is an element */
    for (size_t i = 0; i < n; i++)
        t[i] = i < n / 2 ? "(1,"[i % 3] : ')';
    assert_int_equal(qe_extract_answer(t, n, NULL, &s, &l), QE_EXTRACT_NONE);
    free(t);
    assert_int_equal(qe_extract_answer("", 0, NULL, &s, &l), QE_EXTRACT_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boxed_last_and_balanced), cmocka_unit_test(test_several_boxes_joined),
        cmocka_unit_test(test_think_blocks_ignored),    cmocka_unit_test(test_marker_and_spans),
        cmocka_unit_test(test_last_number),             cmocka_unit_test(test_last_number_whole_simple_number),
        cmocka_unit_test(test_last_number_not_inside_expressions),
        cmocka_unit_test(test_last_number_not_an_element),
        cmocka_unit_test(test_short_response_whole),    cmocka_unit_test(test_configurable_order),
        cmocka_unit_test(test_hostile_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
