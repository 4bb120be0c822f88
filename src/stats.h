/* stats: the numbers behind every comparison qeval prints.
 *
 * Means and lm-eval's standard error, the Wilson interval for one
 * proportion, the exact McNemar test and Newcombe's hybrid score interval
 * for two correlated proportions (the paired design: same problems, two
 * models), a deterministic paired bootstrap, the unbiased pass@k estimator,
 * maj@k, and power / sample-size formulas for a paired binary design.
 * Pure functions, no allocation except where stated, no global state.
 * Formulas and sources: docs/statistics.md. */
#ifndef QE_STATS_H
#define QE_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Arithmetic mean, left fold in order. NaN when n == 0. */
double qe_stats_mean(const double *x, size_t n);

/* lm-eval's stderr for mean metrics: sqrt(sum((x-mu)^2)/(n-1))/sqrt(n),
 * summed left to right in input order. NaN when n <= 1 (lm-eval: "N/A"). */
double qe_stats_stderr(const double *x, size_t n);

/* Two-sided standard normal quantile: z such that Phi(z) = p, 0<p<1.
 * NaN outside (0,1). Accurate to ~1e-15 (bisection on erfc). */
double qe_stats_normal_quantile(double p);

/* Wilson score interval for k successes in n, at critical value z
 * (1.959963984540054 for 95%). Returns QE_EINVAL if n == 0 or k > n. */
int qe_stats_wilson(uint64_t k, uint64_t n, double z, double *lo, double *hi);

/* Exact two-sided McNemar p-value from the discordant counts b and c:
 * min(1, 2 * P(X <= min(b,c))), X ~ Bin(b+c, 1/2). 1.0 when b+c == 0.
 * Log-space pmf plus ratio recurrence; checked against exact rational
 * arithmetic up to b+c = 100,000. */
double qe_stats_mcnemar_exact(uint64_t b, uint64_t c);

/* Paired 2x2 table over n problems, "x" the model, "y" the baseline:
 *   both = right in both, x_only = right only in x (gained),
 *   y_only = right only in y (lost), neither = wrong in both.
 * Difference is p_x - p_y = (x_only - y_only)/n. */
typedef struct {
    uint64_t both, x_only, y_only, neither;
} qe_stats_paired;

/* Newcombe (1998) method 10: hybrid score interval for the difference of
 * two paired proportions, with the phi correlation term (no continuity
 * correction). QE_EINVAL when the table is empty. */
int qe_stats_newcombe_paired(const qe_stats_paired *t, double z, double *lo, double *hi);

/* Wald interval for the paired difference:
 * d +- z * sqrt((b+c)/n - d^2)/sqrt(n), with b,c the discordant counts.
 * Secondary (known to undercover for small n); clipped to [-1,1]. */
int qe_stats_wald_paired(const qe_stats_paired *t, double z, double *lo, double *hi);

/* Deterministic PRNG: xoshiro256** seeded through splitmix64.
 * Same seed, same stream, on every platform. */
typedef struct {
    uint64_t s[4];
} qe_stats_rng;
void qe_stats_rng_seed(qe_stats_rng *r, uint64_t seed);
uint64_t qe_stats_rng_next(qe_stats_rng *r);
/* Uniform integer in [0, bound), bound > 0, without modulo bias. */
uint64_t qe_stats_rng_below(qe_stats_rng *r, uint64_t bound);

/* Paired percentile bootstrap for mean(x) - mean(y) over n pairs: resample
 * pair indices with replacement `iters` times (seeded, deterministic), and
 * return the (1-conf)/2 and (1+conf)/2 percentiles (type-7 interpolation) of
 * the resampled differences. Allocates iters doubles internally (freed).
 * Bounds: 1 <= n, 10 <= iters <= 1e6, 0 < conf < 1; else QE_EINVAL. */
int qe_stats_bootstrap_paired(const double *x, const double *y, size_t n, size_t iters,
                              uint64_t seed, double conf, double *lo, double *hi, qe_err *err);

/* Unbiased pass@k (Chen et al. 2021) for n samples of which c are correct:
 * 1 - C(n-c,k)/C(n,k) computed as 1 - prod_{i=n-c+1..n} (1 - k/i).
 * NaN when k == 0, k > n or c > n. */
double qe_stats_pass_at_k(uint64_t n, uint64_t c, uint64_t k);

/* maj@k for one problem: the most frequent answer among k (ties: the one
 * seen first) decides; returns its verdict (1/0), or -1 when k == 0.
 * answers[i] may be NULL (no answer extracted: never wins a vote unless all
 * are NULL, then the result is 0). correct[i] is the verdict of answers[i]. */
int qe_stats_maj_at_k(const char *const *answers, const int *correct, size_t k);

/* Power for a paired binary design (Connor 1987, the usual McNemar sample
 * size formula): with psi = discordance rate (b+c)/n and delta = |p_x-p_y|,
 *   n = (z_a * sqrt(psi) + z_b * sqrt(psi - delta^2))^2 / delta^2,
 * z_a = z(1 - alpha/2), z_b = z(power).
 * qe_stats_paired_n_needed: n for a given delta; psi is raised to delta when
 * smaller (delta cannot exceed the discordance). Returns +inf for delta <= 0.
 * qe_stats_paired_mdd: the smallest delta with n_needed(delta, psi) <= n
 * (bisection on (0,1]; n_needed decreases in delta). Finite even for
 * psi = 0 (then psi is taken as delta itself). NaN when n is too small to
 * detect even delta = 1, or n <= 0. */
double qe_stats_paired_n_needed(double delta, double psi, double alpha, double power);
double qe_stats_paired_mdd(double n, double psi, double alpha, double power);

#endif
