/* Tests for src/pyrandom.c against golden values produced by CPython's own
 * random module (tests/cases/pyrandom.jsonl, generator gen_pyrandom.py). */
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
#include "pyrandom.h"

static uint64_t u64_of(json_t *v)
{
    return (uint64_t)json_integer_value(v);
}

static void check_case(json_t *c, size_t line)
{
    const char *op = json_string_value(json_object_get(c, "op"));
    const char *seed_s = json_string_value(json_object_get(c, "seed"));
    json_t *out = json_object_get(c, "out");
    assert_non_null(op);
    assert_non_null(seed_s);
    assert_non_null(out);
    qe_pyrandom r;
    qe_pyrandom_seed(&r, strtoull(seed_s, NULL, 10));
    size_t i;
    json_t *v;
    if (!strcmp(op, "u32")) {
        json_array_foreach(out, i, v) assert_int_equal(qe_pyrandom_u32(&r), u64_of(v));
    } else if (!strcmp(op, "random")) {
        json_array_foreach(out, i, v)
        {
            double got = qe_pyrandom_random(&r);
            if (got != json_real_value(v))
                fail_msg("line %zu: random()[%zu] = %.17g, want %.17g", line, i, got,
                         json_real_value(v));
        }
    } else if (!strcmp(op, "getrandbits")) {
        unsigned k = (unsigned)json_integer_value(json_object_get(c, "k"));
        json_array_foreach(out, i, v) assert_int_equal(qe_pyrandom_getrandbits(&r, k), u64_of(v));
    } else if (!strcmp(op, "randbelow")) {
        uint64_t n = u64_of(json_object_get(c, "n"));
        json_array_foreach(out, i, v) assert_int_equal(qe_pyrandom_randbelow(&r, n), u64_of(v));
    } else if (!strcmp(op, "shuffle")) {
        size_t n = (size_t)json_integer_value(json_object_get(c, "n"));
        size_t *x = malloc((n + 1) * sizeof *x);
        for (size_t j = 0; j < n; j++)
            x[j] = j;
        qe_pyrandom_shuffle(&r, x, n);
        assert_int_equal(json_array_size(out), n);
        json_array_foreach(out, i, v) assert_int_equal(x[i], u64_of(v));
        free(x);
    } else if (!strcmp(op, "sample")) {
        size_t n = (size_t)json_integer_value(json_object_get(c, "n"));
        size_t k = (size_t)json_integer_value(json_object_get(c, "k"));
        size_t *x = malloc((k + 1) * sizeof *x);
        json_array_foreach(out, i, v)
        {
            assert_int_equal(qe_pyrandom_sample(&r, n, k, x), 0);
            assert_int_equal(json_array_size(v), k);
            for (size_t j = 0; j < k; j++)
                if (x[j] != u64_of(json_array_get(v, j)))
                    fail_msg("line %zu: sample(%zu,%zu) draw %zu[%zu] = %zu", line, n, k, i, j,
                             x[j]);
        }
        free(x);
    } else {
        fail_msg("line %zu: unknown op %s", line, op);
    }
}

static void golden_case(json_t *c, int line)
{
    check_case(c, (size_t)line);
}

static void test_golden(void **state)
{
    (void)state;
    assert_true(each_case("tests/cases/pyrandom.jsonl", golden_case) >= 100);
}

static void test_sample_rejects_k_above_n(void **state)
{
    (void)state;
    qe_pyrandom r;
    size_t out[4];
    qe_pyrandom_seed(&r, 1);
    assert_true(qe_pyrandom_sample(&r, 3, 4, out) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_sample_rejects_k_above_n),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
