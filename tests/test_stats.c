/* Tests for src/stats.c against golden values in tests/cases/stats_*.jsonl
 * (computed independently: hand-worked, published tables, or python3 with
 * exact rationals; each line names its source). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl_cases.h"
#include "stats.h"

#define Z95 1.959963984540054

static double num(json_t *c, const char *k)
{
    json_t *v = json_object_get(c, k);
    if (!v || !json_is_number(v))
        fail_msg("case lacks number '%s'", k);
    return json_number_value(v);
}

static void near(double got, double want, double tol, int line, const char *what)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("line %d %s: got %.17g want %.17g (tol %g)", line, what, got, want, tol);
}

static void near_rel(double got, double want, double rel, int line, const char *what)
{
    double tol = rel * fabs(want);
    if (tol < 1e-300)
        tol = 1e-300;
    near(got, want, tol, line, what);
}

static void mcnemar_case(json_t *c, int line)
{
    double p = qe_stats_mcnemar_exact((uint64_t)num(c, "b"), (uint64_t)num(c, "c"));
    near_rel(p, num(c, "p"), 1e-9, line, "mcnemar p");
    /* symmetric in b and c */
    double q = qe_stats_mcnemar_exact((uint64_t)num(c, "c"), (uint64_t)num(c, "b"));
    near_rel(q, p, 1e-15, line, "mcnemar symmetry");
}

static void test_mcnemar(void **s)
{
    (void)s;
    assert_true(each_case("tests/cases/stats_mcnemar.jsonl", mcnemar_case) >= 15);
}

static void wilson_case(json_t *c, int line)
{
    double lo, hi;
    assert_int_equal(qe_stats_wilson((uint64_t)num(c, "k"), (uint64_t)num(c, "n"), Z95, &lo, &hi),
                     0);
    near(lo, num(c, "lo"), num(c, "tol"), line, "wilson lo");
    near(hi, num(c, "hi"), num(c, "tol"), line, "wilson hi");
}

static void test_wilson(void **s)
{
    (void)s;
    assert_true(each_case("tests/cases/stats_wilson.jsonl", wilson_case) >= 10);
    double lo, hi;
    assert_int_equal(qe_stats_wilson(1, 0, Z95, &lo, &hi), QE_EINVAL);
    assert_int_equal(qe_stats_wilson(3, 2, Z95, &lo, &hi), QE_EINVAL);
}

static void newcombe_case(json_t *c, int line)
{
    qe_stats_paired t = {(uint64_t)num(c, "both"), (uint64_t)num(c, "x_only"),
                         (uint64_t)num(c, "y_only"), (uint64_t)num(c, "neither")};
    double lo, hi, tol = num(c, "tol");
    assert_int_equal(qe_stats_newcombe_paired(&t, Z95, &lo, &hi), 0);
    near(lo, num(c, "lo"), tol, line, "newcombe lo");
    near(hi, num(c, "hi"), tol, line, "newcombe hi");
    assert_int_equal(qe_stats_wald_paired(&t, Z95, &lo, &hi), 0);
    near(lo, num(c, "wald_lo"), tol, line, "wald lo");
    near(hi, num(c, "wald_hi"), tol, line, "wald hi");
}

static void test_newcombe(void **s)
{
    (void)s;
    assert_true(each_case("tests/cases/stats_newcombe.jsonl", newcombe_case) >= 8);
    qe_stats_paired empty = {0, 0, 0, 0};
    double lo, hi;
    assert_int_equal(qe_stats_newcombe_paired(&empty, Z95, &lo, &hi), QE_EINVAL);
    /* the interval contains the point estimate */
    qe_stats_paired t = {254, 9, 171, 66};
    assert_int_equal(qe_stats_newcombe_paired(&t, Z95, &lo, &hi), 0);
    assert_true(lo < -0.324 && -0.324 < hi && hi < 0);
}

static void passk_case(json_t *c, int line)
{
    double v = qe_stats_pass_at_k((uint64_t)num(c, "n"), (uint64_t)num(c, "c"),
                                  (uint64_t)num(c, "k"));
    near(v, num(c, "v"), 1e-12, line, "pass@k");
}

static void test_pass_at_k(void **s)
{
    (void)s;
    assert_true(each_case("tests/cases/stats_passk.jsonl", passk_case) >= 10);
    assert_true(isnan(qe_stats_pass_at_k(5, 1, 0)));
    assert_true(isnan(qe_stats_pass_at_k(5, 1, 6)));
    assert_true(isnan(qe_stats_pass_at_k(5, 6, 1)));
}

static void stderr_case(json_t *c, int line)
{
    json_t *x = json_object_get(c, "x");
    size_t n = json_array_size(x);
    double *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_number_value(json_array_get(x, i));
    near(qe_stats_mean(v, n), num(c, "mean"), 1e-15, line, "mean");
    json_t *se = json_object_get(c, "stderr");
    if (json_is_null(se))
        assert_true(isnan(qe_stats_stderr(v, n)));
    else
        near(qe_stats_stderr(v, n), json_number_value(se), 1e-15, line, "stderr");
    free(v);
}

static void test_mean_stderr(void **s)
{
    (void)s;
    assert_true(each_case("tests/cases/stats_stderr.jsonl", stderr_case) >= 7);
    assert_true(isnan(qe_stats_mean(NULL, 0)));
    assert_true(isnan(qe_stats_stderr(NULL, 0)));
}

static void power_case(json_t *c, int line)
{
    const char *fn = json_string_value(json_object_get(c, "fn"));
    double v;
    if (strcmp(fn, "n_needed") == 0)
        v = qe_stats_paired_n_needed(num(c, "delta"), num(c, "psi"), 0.05, 0.80);
    else
        v = qe_stats_paired_mdd(num(c, "n"), num(c, "psi"), 0.05, 0.80);
    near_rel(v, num(c, "v"), num(c, "tol_rel"), line, fn);
}

static void test_power(void **s)
{
    (void)s;
    assert_true(each_case("tests/cases/stats_power.jsonl", power_case) >= 12);
    /* round trip: the n needed for the mdd at n is n */
    double d = qe_stats_paired_mdd(500, 0.1, 0.05, 0.8);
    near_rel(qe_stats_paired_n_needed(d, 0.1, 0.05, 0.8), 500, 1e-9, 0, "roundtrip");
    /* no discordance observed: still a finite floor, below the psi=0.1 one */
    assert_true(qe_stats_paired_mdd(500, 0.0, 0.05, 0.8) > 0.0);
    assert_true(qe_stats_paired_mdd(500, 0.0, 0.05, 0.8) < d);
    assert_true(isnan(qe_stats_paired_mdd(3, 0.5, 0.05, 0.8))); /* too few to detect 100% */
    assert_true(isinf(qe_stats_paired_n_needed(0.0, 0.1, 0.05, 0.8)));
    /* more problems detect smaller differences */
    assert_true(qe_stats_paired_mdd(1000, 0.1, 0.05, 0.8) < d);
}

static void quantile_case(json_t *c, int line)
{
    near(qe_stats_normal_quantile(num(c, "p")), num(c, "z"), 1e-12, line, "quantile");
}

static void test_quantile(void **s)
{
    (void)s;
    assert_true(each_case("tests/cases/stats_quantile.jsonl", quantile_case) >= 9);
    assert_true(isnan(qe_stats_normal_quantile(0.0)));
    assert_true(isnan(qe_stats_normal_quantile(1.0)));
}

static void boot_case(json_t *c, int line)
{
    const char *fn = json_string_value(json_object_get(c, "fn"));
    if (strcmp(fn, "rng") == 0) {
        qe_stats_rng r;
        qe_stats_rng_seed(&r, (uint64_t)num(c, "seed"));
        json_t *first = json_object_get(c, "first");
        for (size_t i = 0; i < json_array_size(first); i++) {
            uint64_t want = strtoull(json_string_value(json_array_get(first, i)), NULL, 10);
            uint64_t got = qe_stats_rng_next(&r);
            if (got != want)
                fail_msg("line %d rng[%zu]: got %llu want %llu", line, i,
                         (unsigned long long)got, (unsigned long long)want);
        }
        return;
    }
    json_t *xj = json_object_get(c, "x"), *yj = json_object_get(c, "y");
    size_t n = json_array_size(xj);
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        x[i] = json_number_value(json_array_get(xj, i));
        y[i] = json_number_value(json_array_get(yj, i));
    }
    double lo, hi, lo2, hi2;
    qe_err e = {0};
    assert_int_equal(qe_stats_bootstrap_paired(x, y, n, (size_t)num(c, "iters"),
                                               (uint64_t)num(c, "seed"), num(c, "conf"), &lo,
                                               &hi, &e),
                     0);
    near(lo, num(c, "lo"), 1e-12, line, "bootstrap lo");
    near(hi, num(c, "hi"), 1e-12, line, "bootstrap hi");
    /* deterministic */
    qe_stats_bootstrap_paired(x, y, n, (size_t)num(c, "iters"), (uint64_t)num(c, "seed"),
                              num(c, "conf"), &lo2, &hi2, &e);
    assert_true(lo == lo2 && hi == hi2);
    free(x);
    free(y);
}

static void test_bootstrap(void **s)
{
    (void)s;
    assert_true(each_case("tests/cases/stats_bootstrap.jsonl", boot_case) >= 4);
    double x = 1, y = 0, lo, hi;
    qe_err e = {0};
    assert_int_equal(qe_stats_bootstrap_paired(&x, &y, 1, 5, 1, 0.95, &lo, &hi, &e), QE_EINVAL);
    assert_true(strlen(e.msg) > 0);
    qe_stats_rng r;
    qe_stats_rng_seed(&r, 3);
    for (int i = 0; i < 1000; i++)
        assert_true(qe_stats_rng_below(&r, 7) < 7);
}

static void test_maj_at_k(void **s)
{
    (void)s;
    const char *a1[] = {"5", "3", "5", "7"};
    int c1[] = {1, 0, 1, 0};
    assert_int_equal(qe_stats_maj_at_k(a1, c1, 4), 1);
    const char *a2[] = {"3", "5", "3", "5"}; /* tie: first seen (3) wins */
    int c2[] = {0, 1, 0, 1};
    assert_int_equal(qe_stats_maj_at_k(a2, c2, 4), 0);
    const char *a3[] = {NULL, NULL, "9"}; /* missing answers never vote */
    int c3[] = {0, 0, 1};
    assert_int_equal(qe_stats_maj_at_k(a3, c3, 3), 1);
    const char *a4[] = {NULL, NULL};
    int c4[] = {0, 0};
    assert_int_equal(qe_stats_maj_at_k(a4, c4, 2), 0);
    assert_int_equal(qe_stats_maj_at_k(a4, c4, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mcnemar),    cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_newcombe),   cmocka_unit_test(test_pass_at_k),
        cmocka_unit_test(test_mean_stderr), cmocka_unit_test(test_power),
        cmocka_unit_test(test_quantile),   cmocka_unit_test(test_bootstrap),
        cmocka_unit_test(test_maj_at_k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
