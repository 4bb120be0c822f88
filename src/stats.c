/* stats: see stats.h. Formulas are documented with sources in
 * docs/statistics.md; this file cares about numerical stability. */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double qe_stats_mean(const double *x, size_t n)
{
    if (n == 0)
        return NAN;
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s / (double)n;
}

double qe_stats_stderr(const double *x, size_t n)
{
    if (n <= 1)
        return NAN;
    /* lm-eval: mu = mean(arr); sqrt(sum([(x - mu) ** 2 for x in arr]) /
     * (len(arr) - 1)) / sqrt(len(arr)); python's sum is a left fold. */
    double mu = qe_stats_mean(x, n);
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += pow(x[i] - mu, 2.0);
    return sqrt(s / (double)(n - 1)) / sqrt((double)n);
}

static double normal_cdf(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

double qe_stats_normal_quantile(double p)
{
    if (!(p > 0.0 && p < 1.0))
        return NAN;
    double lo = -40.0, hi = 40.0;
    for (int i = 0; i < 200 && hi - lo > 0.0; i++) {
        double mid = 0.5 * (lo + hi);
        if (mid == lo || mid == hi)
            break;
        if (normal_cdf(mid) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

int qe_stats_wilson(uint64_t k, uint64_t n, double z, double *lo, double *hi)
{
    if (n == 0 || k > n || !(z > 0.0))
        return QE_EINVAL;
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double denom = 1.0 + z2 / nn;
    double centre = p + z2 / (2.0 * nn);
    double half = z * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn));
    double l = (centre - half) / denom, h = (centre + half) / denom;
    /* Exact limits at the edges (rounding could leave 1e-17 off). */
    *lo = k == 0 ? 0.0 : (l < 0.0 ? 0.0 : l);
    *hi = k == n ? 1.0 : (h > 1.0 ? 1.0 : h);
    return 0;
}

double qe_stats_mcnemar_exact(uint64_t b, uint64_t c)
{
    uint64_t N = b + c;
    if (N == 0)
        return 1.0;
    uint64_t m = b < c ? b : c;
    if (2 * m >= N) /* m is the median or above: P(X<=m) >= 1/2 */
        return 1.0;
    double Nd = (double)N;
    /* log pmf(m) = log C(N,m) - N log 2 */
    double logpm = lgamma(Nd + 1.0) - lgamma((double)m + 1.0) - lgamma(Nd - (double)m + 1.0) -
                   Nd * log(2.0);
    /* Sum pmf(i)/pmf(m) for i = m, m-1, ..., 0 with the ratio
     * pmf(i-1)/pmf(i) = i/(N-i+1) < 1 below the median: terms shrink fast
     * so we stop once they no longer change the sum. */
    double sum = 1.0, term = 1.0;
    for (uint64_t i = m; i >= 1; i--) {
        term *= (double)i / (Nd - (double)i + 1.0);
        double before = sum;
        sum += term;
        if (sum == before)
            break;
    }
    double p = 2.0 * exp(logpm + log(sum));
    return p > 1.0 ? 1.0 : p;
}

static int paired_n(const qe_stats_paired *t, double *n)
{
    *n = (double)t->both + (double)t->x_only + (double)t->y_only + (double)t->neither;
    return *n > 0.0 ? 0 : QE_EINVAL;
}

int qe_stats_newcombe_paired(const qe_stats_paired *t, double z, double *lo, double *hi)
{
    double n;
    if (paired_n(t, &n) < 0 || !(z > 0.0))
        return QE_EINVAL;
    uint64_t nx = t->both + t->x_only, ny = t->both + t->y_only, nu = (uint64_t)n;
    double p1 = (double)nx / n, p2 = (double)ny / n, d = p1 - p2;
    double l1, u1, l2, u2;
    qe_stats_wilson(nx, nu, z, &l1, &u1);
    qe_stats_wilson(ny, nu, z, &l2, &u2);
    /* phi: correlation of the 2x2 table; 0 when a margin is empty. */
    double e = (double)t->both, f = (double)t->x_only, g = (double)t->y_only,
           h = (double)t->neither;
    double den = (e + f) * (g + h) * (e + g) * (f + h);
    double phi = den > 0.0 ? (e * h - f * g) / sqrt(den) : 0.0;
    double dl = (p1 - l1) * (p1 - l1) - 2.0 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) * (u2 - p2);
    double du = (u1 - p1) * (u1 - p1) - 2.0 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) * (p2 - l2);
    *lo = d - sqrt(dl > 0.0 ? dl : 0.0);
    *hi = d + sqrt(du > 0.0 ? du : 0.0);
    if (*lo < -1.0)
        *lo = -1.0;
    if (*hi > 1.0)
        *hi = 1.0;
    return 0;
}

int qe_stats_wald_paired(const qe_stats_paired *t, double z, double *lo, double *hi)
{
    double n;
    if (paired_n(t, &n) < 0 || !(z > 0.0))
        return QE_EINVAL;
    double b = (double)t->x_only, c = (double)t->y_only;
    double d = (b - c) / n;
    double v = (b + c) / n - d * d;
    double half = z * sqrt(v > 0.0 ? v : 0.0) / sqrt(n);
    *lo = d - half < -1.0 ? -1.0 : d - half;
    *hi = d + half > 1.0 ? 1.0 : d + half;
    return 0;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void qe_stats_rng_seed(qe_stats_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t qe_stats_rng_next(qe_stats_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t qe_stats_rng_below(qe_stats_rng *r, uint64_t bound)
{
    /* Rejection: accept only values below the largest multiple of bound. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    for (;;) {
        uint64_t v = qe_stats_rng_next(r);
        if (v < limit)
            return v % bound;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile_sorted(const double *v, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t i = (size_t)floor(h);
    if (i + 1 >= n)
        return v[n - 1];
    return v[i] + (h - (double)i) * (v[i + 1] - v[i]);
}

int qe_stats_bootstrap_paired(const double *x, const double *y, size_t n, size_t iters,
                              uint64_t seed, double conf, double *lo, double *hi, qe_err *err)
{
    if (n == 0 || iters < 10 || iters > 1000000 || !(conf > 0.0 && conf < 1.0))
        return qe_err_set(err, QE_EINVAL, "bootstrap: need n >= 1, 10 <= iters <= 1e6, 0 < conf < 1");
    double *diff = malloc(iters * sizeof *diff);
    if (!diff)
        return qe_err_set(err, QE_ENOMEM, "bootstrap: out of memory for %zu iterations", iters);
    qe_stats_rng r;
    qe_stats_rng_seed(&r, seed);
    for (size_t it = 0; it < iters; it++) {
        double s = 0.0;
        for (size_t j = 0; j < n; j++) {
            size_t k = (size_t)qe_stats_rng_below(&r, n);
            s += x[k] - y[k];
        }
        diff[it] = s / (double)n;
    }
    qsort(diff, iters, sizeof *diff, cmp_double);
    *lo = quantile_sorted(diff, iters, (1.0 - conf) / 2.0);
    *hi = quantile_sorted(diff, iters, (1.0 + conf) / 2.0);
    free(diff);
    return 0;
}

double qe_stats_pass_at_k(uint64_t n, uint64_t c, uint64_t k)
{
    if (k == 0 || k > n || c > n)
        return NAN;
    if (n - c < k)
        return 1.0;
    double prod = 1.0;
    for (uint64_t i = n - c + 1; i <= n; i++)
        prod *= 1.0 - (double)k / (double)i;
    return 1.0 - prod;
}

int qe_stats_maj_at_k(const char *const *answers, const int *correct, size_t k)
{
    if (k == 0)
        return -1;
    size_t best = k, best_count = 0;
    for (size_t i = 0; i < k; i++) {
        if (!answers[i])
            continue;
        size_t seen_before = 0, count = 0;
        for (size_t j = 0; j < k; j++) {
            if (answers[j] && strcmp(answers[i], answers[j]) == 0) {
                count++;
                if (j < i)
                    seen_before = 1;
            }
        }
        if (!seen_before && count > best_count) {
            best = i;
            best_count = count;
        }
    }
    return best == k ? 0 : (correct[best] ? 1 : 0);
}

double qe_stats_paired_n_needed(double delta, double psi, double alpha, double power)
{
    if (!(delta > 0.0))
        return INFINITY;
    if (psi < delta)
        psi = delta;
    double za = qe_stats_normal_quantile(1.0 - alpha / 2.0);
    double zb = qe_stats_normal_quantile(power);
    double v = psi - delta * delta;
    double t = za * sqrt(psi) + zb * sqrt(v > 0.0 ? v : 0.0);
    return t * t / (delta * delta);
}

double qe_stats_paired_mdd(double n, double psi, double alpha, double power)
{
    if (!(n > 0.0) || !(psi >= 0.0))
        return NAN;
    if (psi > 1.0)
        psi = 1.0;
    /* n_needed(delta) decreases in delta (psi raised to delta when
     * smaller), so the smallest detectable delta is found by bisection. */
    if (qe_stats_paired_n_needed(1.0, psi, alpha, power) > n)
        return NAN;
    double lo = 0.0, hi = 1.0;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (mid == lo || mid == hi)
            break;
        if (qe_stats_paired_n_needed(mid, psi, alpha, power) > n)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}
