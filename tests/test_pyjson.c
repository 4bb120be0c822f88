/* Tests for src/pyjson.c against golden outputs of Python's json module
 * (tests/cases/pyjson.jsonl, pyjson_floats.jsonl; generator in
 * tests/fixtures/lmeval/gen/gen_pyjson_cases.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl_cases.h"
#include "pyjson.h"

static void check_mode(const json_t *v, const json_t *rec, const char *field, int indent, int ea,
                       int line)
{
    qe_buf b = QE_BUF_INIT;
    qe_err e = {0};
    assert_int_equal(qe_pyjson_dump(&b, v, indent, ea, &e), 0);
    const char *want = json_string_value(json_object_get(rec, field));
    assert_non_null(want);
    if (strcmp(qe_buf_str(&b), want) != 0)
        fail_msg("pyjson.jsonl:%d %s: got [%s] want [%s]", line, field, qe_buf_str(&b), want);
    qe_buf_free(&b);
}

static void golden_case(json_t *rec, int n)
{
    json_error_t je;
    json_t *v = json_loads(json_string_value(json_object_get(rec, "input")),
                           JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        fail_msg("pyjson.jsonl:%d: input does not parse: %s", n, je.text);
    check_mode(v, rec, "compact", QE_PYJSON_COMPACT, 0, n);
    check_mode(v, rec, "indent2", 2, 0, n);
    check_mode(v, rec, "ascii", QE_PYJSON_COMPACT, 1, n);
    check_mode(v, rec, "indent1_ascii", 1, 1, n);
    json_decref(v);
}

static void test_golden_cases(void **state)
{
    (void)state;
    assert_true(each_case("tests/cases/pyjson.jsonl", golden_case) >= 40);
}

static void test_float_repr(void **state)
{
    (void)state;
    FILE *f = fopen("tests/cases/pyjson_floats.jsonl", "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0) {
        n++;
        /* bits are read as text: jansson integers are signed 64-bit. */
        const char *p = strstr(line, "\"bits\": ");
        assert_non_null(p);
        unsigned long long bits = strtoull(p + 8, NULL, 10);
        double x;
        memcpy(&x, &bits, sizeof x);
        json_t *rec = json_loads(line, JSON_DECODE_INT_AS_REAL, NULL);
        assert_non_null(rec);
        qe_buf b = QE_BUF_INIT;
        assert_int_equal(qe_pyjson_float(&b, x), 0);
        const char *want = json_string_value(json_object_get(rec, "repr"));
        if (strcmp(qe_buf_str(&b), want) != 0)
            fail_msg("pyjson_floats.jsonl:%d: got %s want %s", n, qe_buf_str(&b), want);
        qe_buf_free(&b);
        json_decref(rec);
    }
    free(line);
    fclose(f);
    assert_true(n > 900);
}

static void test_special_values_and_nul(void **state)
{
    (void)state;
    qe_buf b = QE_BUF_INIT;
    /* jansson cannot hold inf/nan reals, so the float formatter is checked
     * directly. */
    assert_int_equal(qe_pyjson_float(&b, 1.0 / 0.0), 0);
    assert_int_equal(qe_pyjson_float(&b, -1.0 / 0.0), 0);
    assert_int_equal(qe_pyjson_float(&b, 0.0 / 0.0), 0);
    json_t *a = json_array();
    json_array_append_new(a, json_stringn("a\0b", 3));
    assert_int_equal(qe_pyjson_dump(&b, a, QE_PYJSON_COMPACT, 0, NULL), 0);
    assert_string_equal(qe_buf_str(&b), "Infinity-InfinityNaN[\"a\\u0000b\"]");
    json_decref(a);
    qe_buf_free(&b);
}

static void test_depth_limit(void **state)
{
    (void)state;
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < QE_PYJSON_MAX_DEPTH + 5; i++) {
        json_t *n = json_array();
        json_array_append_new(cur, n);
        cur = n;
    }
    qe_buf b = QE_BUF_INIT;
    qe_err e = {0};
    assert_int_equal(qe_pyjson_dump(&b, root, 2, 0, &e), QE_ELIMIT);
    assert_non_null(strstr(e.msg, "deeper"));
    qe_buf_free(&b);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_cases),
        cmocka_unit_test(test_float_repr),
        cmocka_unit_test(test_special_values_and_nul),
        cmocka_unit_test(test_depth_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
