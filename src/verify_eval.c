/* verify_eval: values of expression trees.
 *
 * Three evaluators, tried in this order by verify.c:
 *  - exact: Gaussian rationals (re, im as GMP mpq) for trees built from
 *    numbers, i, + - * /, integer powers, perfect roots, factorials, binomials;
 *  - poly: sparse multivariate polynomials with rational coefficients (up to
 *    8 variables, exponents < 256), for symbolic answers such as 2x^2+3xy;
 *  - numeric: MPFR complex numbers at VQ_PREC bits, for everything with pi,
 *    e, roots, trig and logs; variables get fixed irrational test values.
 * All work is charged to s->budget; every slot comes from a fixed pool that
 * is reset per pair, so nothing here allocates once the pools are warm. */
#include "verify_int.h"

#include <stdlib.h>
#include <string.h>

#define BUDGET(s)                                                                                  \
    do {                                                                                           \
        if (--(s)->budget < 0) {                                                                   \
            (s)->eerr = "evaluation budget exhausted";                                             \
            return VQ_LIMIT;                                                                       \
        }                                                                                          \
    } while (0)

int qe_verify_eval_init(qe_verify_scratch *s)
{
    for (int i = 0; i < VQ_MAX_Q; i++) {
        mpq_init(s->q[i][0]);
        mpq_init(s->q[i][1]);
    }
    for (int i = 0; i < VQ_MAX_F; i++) {
        mpfr_init2(s->f[i][0], VQ_PREC);
        mpfr_init2(s->f[i][1], VQ_PREC);
    }
    for (int i = 0; i < 6; i++)
        mpfr_init2(s->tmp[i], VQ_PREC);
    for (int p = 0; p < VQ_MAX_POLY; p++)
        for (int t = 0; t < VQ_MAX_TERMS; t++)
            mpq_init(s->polyq[p][t]);
    return 0;
}

void qe_verify_eval_free(qe_verify_scratch *s)
{
    for (int i = 0; i < VQ_MAX_Q; i++) {
        mpq_clear(s->q[i][0]);
        mpq_clear(s->q[i][1]);
    }
    for (int i = 0; i < VQ_MAX_F; i++) {
        mpfr_clear(s->f[i][0]);
        mpfr_clear(s->f[i][1]);
    }
    for (int i = 0; i < 6; i++)
        mpfr_clear(s->tmp[i]);
    for (int p = 0; p < VQ_MAX_POLY; p++)
        for (int t = 0; t < VQ_MAX_TERMS; t++)
            mpq_clear(s->polyq[p][t]);
    mpfr_free_cache();
}

void qe_verify_eval_reset(qe_verify_scratch *s)
{
    s->nq = 0;
    s->nf = 0;
    s->npoly = 0;
    s->eerr = NULL;
}

/* ---------- variables ---------- */

static int var_index(qe_verify_scratch *s, const char *name, int len)
{
    for (int i = 0; i < s->nvar; i++)
        if (s->varlen[i] == len && !memcmp(s->var[i], name, (size_t)len))
            return i;
    return -1;
}

int qe_verify_collect_vars(qe_verify_scratch *s, int n)
{
    if (n < 0)
        return 0;
    vq_node *d = &s->node[n];
    if (d->k == N_SYM) {
        if (var_index(s, d->s, d->len) >= 0)
            return 0;
        if (s->nvar >= VQ_MAX_VARS)
            return -1;
        s->var[s->nvar] = d->s;
        s->varlen[s->nvar++] = d->len;
        return 0;
    }
    if (d->k == N_TUPLE || d->k == N_SET || d->k == N_LIST || d->k == N_UNION || d->k == N_MATRIX) {
        for (int i = 0; i < d->n; i++)
            if (qe_verify_collect_vars(s, s->kids[d->a + i]))
                return -1;
        return 0;
    }
    if (d->k == N_NUM || d->k == N_TEXT)
        return 0;
    if (qe_verify_collect_vars(s, d->a))
        return -1;
    return d->k == N_BASE ? 0 : qe_verify_collect_vars(s, d->b);
}

/* ---------- exact ---------- */

static int qslot(qe_verify_scratch *s, int *out)
{
    if (s->nq >= VQ_MAX_Q) {
        s->eerr = "too many intermediate values";
        return VQ_LIMIT;
    }
    *out = s->nq++;
    mpq_set_ui(s->q[*out][1], 0, 1);
    return VQ_OK;
}

static int set_decimal(mpq_t q, const char *str, int len)
{
    char buf[520];
    int n = 0, frac = -1;
    if (len <= 0 || len > 510)
        return VQ_FAIL;
    for (int i = 0; i < len; i++) {
        if (str[i] == '.')
            frac = 0;
        else {
            buf[n++] = str[i];
            if (frac >= 0)
                frac++;
        }
    }
    buf[n] = 0;
    if (mpz_set_str(mpq_numref(q), buf, 10))
        return VQ_FAIL;
    if (frac > 0)
        mpz_ui_pow_ui(mpq_denref(q), 10, (unsigned long)frac);
    else
        mpz_set_ui(mpq_denref(q), 1);
    mpq_canonicalize(q);
    return VQ_OK;
}

static int q_is_int(mpq_t q)
{
    return mpz_cmp_ui(mpq_denref(q), 1) == 0;
}

/* (a+bi)(c+di) into slot r (distinct from x, y). */
static void cmul(qe_verify_scratch *s, int r, int x, int y, mpq_t t)
{
    mpq_mul(s->q[r][0], s->q[x][0], s->q[y][0]);
    mpq_mul(t, s->q[x][1], s->q[y][1]);
    mpq_sub(s->q[r][0], s->q[r][0], t);
    mpq_mul(s->q[r][1], s->q[x][0], s->q[y][1]);
    mpq_mul(t, s->q[x][1], s->q[y][0]);
    mpq_add(s->q[r][1], s->q[r][1], t);
}

/* Exact root: x^(1/k) for rational x >= 0, 1 if exact. */
static int q_root(mpq_t r, mpq_t x, unsigned long k)
{
    if (mpq_sgn(x) < 0)
        return 0;
    mpz_t a, b;
    mpz_init(a);
    mpz_init(b);
    int ok = mpz_root(a, mpq_numref(x), k) && mpz_root(b, mpq_denref(x), k);
    if (ok) {
        mpz_set(mpq_numref(r), a);
        mpz_set(mpq_denref(r), b);
        mpq_canonicalize(r);
    }
    mpz_clear(a);
    mpz_clear(b);
    return ok;
}

static int exact_pow(qe_verify_scratch *s, int b, int e, int *out)
{
    /* exponent: real rational */
    if (mpq_sgn(s->q[e][1]) != 0)
        return VQ_NOTEXACT;
    mpq_ptr ex = s->q[e][0];
    int r;
    if ((r = qslot(s, out)))
        return r;
    int o = *out;
    if (!q_is_int(ex)) {
        /* rational exponent p/q on a positive real rational: exact if perfect */
        if (mpq_sgn(s->q[b][1]) != 0 || mpq_sgn(s->q[b][0]) < 0)
            return VQ_NOTEXACT;
        if (mpz_cmp_ui(mpq_denref(ex), 64) > 0 || !mpz_fits_slong_p(mpq_numref(ex)))
            return VQ_NOTEXACT;
        unsigned long qd = mpz_get_ui(mpq_denref(ex));
        if (!q_root(s->q[o][0], s->q[b][0], qd))
            return VQ_NOTEXACT;
        int e2;
        if ((r = qslot(s, &e2)))
            return r;
        mpz_set(mpq_numref(s->q[e2][0]), mpq_numref(ex));
        mpz_set_ui(mpq_denref(s->q[e2][0]), 1);
        int b2 = o;
        return exact_pow(s, b2, e2, out);
    }
    if (!mpz_fits_slong_p(mpq_numref(ex)))
        return s->eerr = "exponent too large", VQ_LIMIT;
    long n = mpz_get_si(mpq_numref(ex));
    long an = labs(n);
    int complex = mpq_sgn(s->q[b][1]) != 0;
    if (!complex) {
        size_t bits = mpz_sizeinbase(mpq_numref(s->q[b][0]), 2) + mpz_sizeinbase(mpq_denref(s->q[b][0]), 2);
        if (bits > 2 && (double)bits * (double)an > VQ_MAX_EXP_BITS)
            return s->eerr = "exponent too large", VQ_LIMIT;
        if (mpq_sgn(s->q[b][0]) == 0 && n < 0)
            return s->eerr = "division by zero", VQ_FAIL;
        mpz_pow_ui(mpq_numref(s->q[o][0]), mpq_numref(s->q[b][0]), (unsigned long)an);
        mpz_pow_ui(mpq_denref(s->q[o][0]), mpq_denref(s->q[b][0]), (unsigned long)an);
        if (n < 0)
            mpq_inv(s->q[o][0], s->q[o][0]);
        s->budget -= an / 64;
        return VQ_OK;
    }
    if (an > 256)
        return s->eerr = "exponent too large", VQ_LIMIT;
    /* complex base: repeated multiplication */
    int acc, tmp;
    if ((r = qslot(s, &acc)) || (r = qslot(s, &tmp)))
        return r;
    mpq_set_ui(s->q[acc][0], 1, 1);
    for (long i = 0; i < an; i++) {
        BUDGET(s);
        cmul(s, tmp, acc, b, s->q[o][0]);
        mpq_swap(s->q[acc][0], s->q[tmp][0]);
        mpq_swap(s->q[acc][1], s->q[tmp][1]);
    }
    if (n < 0) {
        /* 1/(a+bi) = (a-bi)/(a^2+b^2) */
        mpq_mul(s->q[tmp][0], s->q[acc][0], s->q[acc][0]);
        mpq_mul(s->q[tmp][1], s->q[acc][1], s->q[acc][1]);
        mpq_add(s->q[tmp][0], s->q[tmp][0], s->q[tmp][1]);
        if (mpq_sgn(s->q[tmp][0]) == 0)
            return s->eerr = "division by zero", VQ_FAIL;
        mpq_div(s->q[o][0], s->q[acc][0], s->q[tmp][0]);
        mpq_div(s->q[o][1], s->q[acc][1], s->q[tmp][0]);
        mpq_neg(s->q[o][1], s->q[o][1]);
    } else {
        mpq_set(s->q[o][0], s->q[acc][0]);
        mpq_set(s->q[o][1], s->q[acc][1]);
    }
    return VQ_OK;
}

static int small_uint(qe_verify_scratch *s, int x, unsigned long max, unsigned long *v)
{
    if (mpq_sgn(s->q[x][1]) || !q_is_int(s->q[x][0]) || mpq_sgn(s->q[x][0]) < 0 ||
        mpz_cmp_ui(mpq_numref(s->q[x][0]), max) > 0)
        return 0;
    *v = mpz_get_ui(mpq_numref(s->q[x][0]));
    return 1;
}

/* Bounds the size of every exact intermediate (a product of huge powers). */
static int exact_checked(qe_verify_scratch *s, int n, int *out);

int qe_verify_exact(qe_verify_scratch *s, int n, int *out)
{
    int r = exact_checked(s, n, out);
    if (r == VQ_OK) {
        size_t bits = 0;
        for (int part = 0; part < 2; part++)
            bits += mpz_sizeinbase(mpq_numref(s->q[*out][part]), 2) +
                    mpz_sizeinbase(mpq_denref(s->q[*out][part]), 2);
        if (bits > 2 * VQ_MAX_EXP_BITS) {
            s->eerr = "number too large";
            return VQ_LIMIT;
        }
        s->budget -= (long)(bits / 4096);
    }
    return r;
}

static int exact_checked(qe_verify_scratch *s, int n, int *out)
{
    BUDGET(s);
    vq_node *d = &s->node[n];
    int r, x, y, o;
    switch (d->k) {
    case N_NUM:
        if ((r = qslot(s, out)))
            return r;
        return set_decimal(s->q[*out][0], d->s, d->len);
    case N_I:
        if ((r = qslot(s, out)))
            return r;
        mpq_set_ui(s->q[*out][0], 0, 1);
        mpq_set_ui(s->q[*out][1], 1, 1);
        return VQ_OK;
    case N_DEG:
        return qe_verify_exact(s, d->a, out);
    case N_PCT: /* inside an expression 3\% is 3/100 (a whole answer's % is dropped in verify.c) */
        if ((r = qe_verify_exact(s, d->a, out)))
            return r;
        mpz_mul_ui(mpq_denref(s->q[*out][0]), mpq_denref(s->q[*out][0]), 100);
        mpz_mul_ui(mpq_denref(s->q[*out][1]), mpq_denref(s->q[*out][1]), 100);
        mpq_canonicalize(s->q[*out][0]);
        mpq_canonicalize(s->q[*out][1]);
        return VQ_OK;
    case N_NEG:
        if ((r = qe_verify_exact(s, d->a, out)))
            return r;
        mpq_neg(s->q[*out][0], s->q[*out][0]);
        mpq_neg(s->q[*out][1], s->q[*out][1]);
        return VQ_OK;
    case N_ADD:
    case N_MUL:
    case N_DIV:
        if ((r = qe_verify_exact(s, d->a, &x)) || (r = qe_verify_exact(s, d->b, &y)))
            return r;
        if ((r = qslot(s, out)))
            return r;
        o = *out;
        if (d->k == N_ADD) {
            mpq_add(s->q[o][0], s->q[x][0], s->q[y][0]);
            mpq_add(s->q[o][1], s->q[x][1], s->q[y][1]);
            return VQ_OK;
        }
        if (d->k == N_MUL) {
            int t;
            if ((r = qslot(s, &t)))
                return r;
            cmul(s, o, x, y, s->q[t][0]);
            return VQ_OK;
        }
        if (mpq_sgn(s->q[y][1]) == 0) {
            if (mpq_sgn(s->q[y][0]) == 0)
                return s->eerr = "division by zero", VQ_FAIL;
            mpq_div(s->q[o][0], s->q[x][0], s->q[y][0]);
            mpq_div(s->q[o][1], s->q[x][1], s->q[y][0]);
            return VQ_OK;
        } else {
            /* x / y = x * conj(y) / |y|^2 */
            int c, t;
            if ((r = qslot(s, &c)) || (r = qslot(s, &t)))
                return r;
            mpq_set(s->q[c][0], s->q[y][0]);
            mpq_neg(s->q[c][1], s->q[y][1]);
            cmul(s, o, x, c, s->q[t][0]);
            mpq_mul(s->q[t][0], s->q[y][0], s->q[y][0]);
            mpq_mul(s->q[t][1], s->q[y][1], s->q[y][1]);
            mpq_add(s->q[t][0], s->q[t][0], s->q[t][1]);
            mpq_div(s->q[o][0], s->q[o][0], s->q[t][0]);
            mpq_div(s->q[o][1], s->q[o][1], s->q[t][0]);
            return VQ_OK;
        }
    case N_POW:
        if ((r = qe_verify_exact(s, d->a, &x)) || (r = qe_verify_exact(s, d->b, &y)))
            return r;
        return exact_pow(s, x, y, out);
    case N_ROOT: {
        unsigned long k = 2;
        if (d->b >= 0) {
            if ((r = qe_verify_exact(s, d->b, &y)))
                return r;
            if (!small_uint(s, y, 64, &k) || k < 1)
                return VQ_NOTEXACT;
        }
        if ((r = qe_verify_exact(s, d->a, &x)))
            return r;
        if (mpq_sgn(s->q[x][1]))
            return VQ_NOTEXACT;
        if ((r = qslot(s, out)))
            return r;
        o = *out;
        if (mpq_sgn(s->q[x][0]) >= 0)
            return q_root(s->q[o][0], s->q[x][0], k) ? VQ_OK : VQ_NOTEXACT;
        mpq_neg(s->q[x][0], s->q[x][0]);
        if (!q_root(s->q[o][0], s->q[x][0], k))
            return VQ_NOTEXACT;
        if (k % 2) {
            mpq_neg(s->q[o][0], s->q[o][0]);
            return VQ_OK;
        }
        if (k == 2) {
            mpq_swap(s->q[o][0], s->q[o][1]);
            return VQ_OK;
        }
        return VQ_NOTEXACT;
    }
    case N_FACT: {
        unsigned long v;
        if ((r = qe_verify_exact(s, d->a, &x)))
            return r;
        if (!small_uint(s, x, 2000, &v))
            return VQ_NOTEXACT;
        if ((r = qslot(s, out)))
            return r;
        mpz_fac_ui(mpq_numref(s->q[*out][0]), v);
        mpz_set_ui(mpq_denref(s->q[*out][0]), 1);
        s->budget -= (long)v;
        return VQ_OK;
    }
    case N_BINOM: {
        unsigned long nn, kk;
        if ((r = qe_verify_exact(s, d->a, &x)) || (r = qe_verify_exact(s, d->b, &y)))
            return r;
        if (!small_uint(s, x, 100000, &nn) || !small_uint(s, y, 100000, &kk))
            return VQ_NOTEXACT;
        if ((r = qslot(s, out)))
            return r;
        mpz_bin_uiui(mpq_numref(s->q[*out][0]), nn, kk);
        mpz_set_ui(mpq_denref(s->q[*out][0]), 1);
        s->budget -= (long)(kk < nn - kk ? kk : nn - kk);
        return VQ_OK;
    }
    case N_ABS:
        if ((r = qe_verify_exact(s, d->a, out)))
            return r;
        if (mpq_sgn(s->q[*out][1]))
            return VQ_NOTEXACT;
        mpq_abs(s->q[*out][0], s->q[*out][0]);
        return VQ_OK;
    case N_BASE: {
        unsigned long base;
        if ((r = qe_verify_exact(s, d->b, &y)))
            return r;
        if (!small_uint(s, y, 36, &base) || base < 2)
            return s->eerr = "bad base", VQ_FAIL;
        vq_node *num = &s->node[d->a];
        for (int i = 0; i < num->len; i++)
            if ((unsigned long)(num->s[i] - '0') >= base)
                return s->eerr = "digit out of range for base", VQ_FAIL;
        if ((r = qslot(s, out)))
            return r;
        char buf[520];
        if (num->len > 510)
            return VQ_FAIL;
        memcpy(buf, num->s, (size_t)num->len);
        buf[num->len] = 0;
        if (mpz_set_str(mpq_numref(s->q[*out][0]), buf, (int)base))
            return VQ_FAIL;
        mpz_set_ui(mpq_denref(s->q[*out][0]), 1);
        return VQ_OK;
    }
    case N_SYM:
    case N_PI:
    case N_E:
    case N_FUNC:
        return VQ_NOTEXACT;
    default:
        return VQ_FAIL;
    }
}

/* ---------- polynomials ---------- */

static int pslot(qe_verify_scratch *s, int *out)
{
    if (s->npoly >= VQ_MAX_POLY) {
        s->eerr = "too many intermediate polynomials";
        return VQ_LIMIT;
    }
    *out = s->npoly++;
    s->poly[*out].n = 0;
    return VQ_OK;
}

/* Adds c * mono into poly p (kept sorted by mono, no zero terms). */
static int padd_term(qe_verify_scratch *s, int p, uint64_t mono, mpq_t c)
{
    struct vq_poly *P = &s->poly[p];
    int lo = 0, hi = P->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (P->mono[mid] < mono)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < P->n && P->mono[lo] == mono) {
        mpq_add(s->polyq[p][lo], s->polyq[p][lo], c);
        if (mpq_sgn(s->polyq[p][lo]) == 0) {
            for (int i = lo; i + 1 < P->n; i++) {
                P->mono[i] = P->mono[i + 1];
                mpq_swap(s->polyq[p][i], s->polyq[p][i + 1]);
            }
            P->n--;
        }
        return VQ_OK;
    }
    if (mpq_sgn(c) == 0)
        return VQ_OK;
    if (P->n >= VQ_MAX_TERMS) {
        s->eerr = "polynomial too large";
        return VQ_LIMIT;
    }
    for (int i = P->n; i > lo; i--) {
        P->mono[i] = P->mono[i - 1];
        mpq_swap(s->polyq[p][i], s->polyq[p][i - 1]);
    }
    P->mono[lo] = mono;
    mpq_set(s->polyq[p][lo], c);
    P->n++;
    return VQ_OK;
}

static int mono_mul(uint64_t a, uint64_t b, uint64_t *r)
{
    uint64_t out = 0;
    for (int v = 0; v < VQ_MAX_VARS; v++) {
        unsigned ea = (unsigned)(a >> (8 * v)) & 255, eb = (unsigned)(b >> (8 * v)) & 255;
        if (ea + eb > 255)
            return -1;
        out |= (uint64_t)(ea + eb) << (8 * v);
    }
    *r = out;
    return 0;
}

/* *out = a * b; *out is a fresh slot unless reuse >= 0 (then it is reused). */
static int pmul(qe_verify_scratch *s, int a, int b, int *out, int reuse)
{
    int r, t;
    if (reuse >= 0) {
        *out = reuse;
        s->poly[reuse].n = 0;
    } else if ((r = pslot(s, out)))
        return r;
    if ((r = qslot(s, &t)))
        return r;
    s->nq--; /* scratch value only: give the slot back */
    for (int i = 0; i < s->poly[a].n; i++)
        for (int j = 0; j < s->poly[b].n; j++) {
            BUDGET(s);
            uint64_t m;
            if (mono_mul(s->poly[a].mono[i], s->poly[b].mono[j], &m))
                return s->eerr = "exponent too large", VQ_LIMIT;
            mpq_mul(s->q[t][0], s->polyq[a][i], s->polyq[b][j]);
            size_t bits = mpz_sizeinbase(mpq_numref(s->q[t][0]), 2) + mpz_sizeinbase(mpq_denref(s->q[t][0]), 2);
            if (bits > 2 * VQ_MAX_EXP_BITS)
                return s->eerr = "coefficient too large", VQ_LIMIT;
            s->budget -= (long)(bits / 4096);
            if ((r = padd_term(s, *out, m, s->q[t][0])))
                return r;
        }
    return VQ_OK;
}

static int pconst(qe_verify_scratch *s, int p)
{
    return s->poly[p].n == 0 || (s->poly[p].n == 1 && s->poly[p].mono[0] == 0);
}

int qe_verify_poly(qe_verify_scratch *s, int n, int *out)
{
    BUDGET(s);
    vq_node *d = &s->node[n];
    int r, x, y;
    switch (d->k) {
    case N_SYM: {
        int v = var_index(s, d->s, d->len);
        if (v < 0)
            return VQ_FAIL;
        if ((r = pslot(s, out)) || (r = qslot(s, &x)))
            return r;
        mpq_set_ui(s->q[x][0], 1, 1);
        return padd_term(s, *out, (uint64_t)1 << (8 * v), s->q[x][0]);
    }
    case N_ADD:
        if ((r = qe_verify_poly(s, d->a, &x)) || (r = qe_verify_poly(s, d->b, &y)))
            return r;
        for (int i = 0; i < s->poly[y].n; i++)
            if ((r = padd_term(s, x, s->poly[y].mono[i], s->polyq[y][i])))
                return r;
        *out = x;
        return VQ_OK;
    case N_NEG:
        if ((r = qe_verify_poly(s, d->a, out)))
            return r;
        for (int i = 0; i < s->poly[*out].n; i++)
            mpq_neg(s->polyq[*out][i], s->polyq[*out][i]);
        return VQ_OK;
    case N_MUL:
        if ((r = qe_verify_poly(s, d->a, &x)) || (r = qe_verify_poly(s, d->b, &y)))
            return r;
        return pmul(s, x, y, out, -1);
    case N_DIV:
        if ((r = qe_verify_poly(s, d->a, &x)) || (r = qe_verify_poly(s, d->b, &y)))
            return r;
        if (!pconst(s, y))
            return VQ_NOTEXACT;
        if (s->poly[y].n == 0)
            return s->eerr = "division by zero", VQ_FAIL;
        for (int i = 0; i < s->poly[x].n; i++)
            mpq_div(s->polyq[x][i], s->polyq[x][i], s->polyq[y][0]);
        *out = x;
        return VQ_OK;
    case N_POW: {
        int e;
        if ((r = qe_verify_poly(s, d->a, &x)) || (r = qe_verify_poly(s, d->b, &y)))
            return r;
        if (!pconst(s, y))
            return VQ_NOTEXACT;
        unsigned long k = 0;
        if (s->poly[y].n) {
            mpq_ptr c = s->polyq[y][0];
            if (!q_is_int(c) || mpq_sgn(c) < 0 || mpz_cmp_ui(mpq_numref(c), 64) > 0)
                return VQ_NOTEXACT;
            k = mpz_get_ui(mpq_numref(c));
        }
        if ((r = pslot(s, &e)) || (r = qslot(s, &y)))
            return r;
        mpq_set_ui(s->q[y][0], 1, 1);
        if ((r = padd_term(s, e, 0, s->q[y][0])))
            return r;
        int other;
        if ((r = pslot(s, &other)))
            return r;
        for (unsigned long i = 0; i < k; i++) {
            int nx;
            if ((r = pmul(s, e, x, &nx, other)))
                return r;
            other = e;
            e = nx;
        }
        *out = e;
        return VQ_OK;
    }
    case N_NUM:
    case N_PCT:
    case N_DEG:
    case N_FACT:
    case N_BINOM:
    case N_BASE:
        if ((r = qe_verify_exact(s, n, &x)))
            return r;
        if (mpq_sgn(s->q[x][1]))
            return VQ_NOTEXACT;
        if ((r = pslot(s, out)))
            return r;
        return padd_term(s, *out, 0, s->q[x][0]);
    case N_I:
    case N_PI:
    case N_E:
    case N_FUNC:
    case N_ROOT:
    case N_ABS:
        return VQ_NOTEXACT;
    default:
        return VQ_FAIL;
    }
}

int qe_verify_poly_equal(qe_verify_scratch *s, int a, int b)
{
    if (s->poly[a].n != s->poly[b].n)
        return 0;
    for (int i = 0; i < s->poly[a].n; i++)
        if (s->poly[a].mono[i] != s->poly[b].mono[i] || !mpq_equal(s->polyq[a][i], s->polyq[b][i]))
            return 0;
    return 1;
}

/* ---------- numeric ---------- */

#define RE(i) s->f[i][0]
#define IM(i) s->f[i][1]
#define RND MPFR_RNDN

static int fslot(qe_verify_scratch *s, int *out)
{
    if (s->nf >= VQ_MAX_F) {
        s->eerr = "too many intermediate values";
        return VQ_LIMIT;
    }
    *out = s->nf++;
    mpfr_set_zero(IM(*out), 1);
    return VQ_OK;
}

static int is_real(qe_verify_scratch *s, int x)
{
    return mpfr_zero_p(IM(x));
}

/* r = x * y (complex); r may alias neither. */
static void fmul(qe_verify_scratch *s, int r, int x, int y)
{
    mpfr_mul(s->tmp[0], RE(x), RE(y), RND);
    mpfr_mul(s->tmp[1], IM(x), IM(y), RND);
    mpfr_mul(s->tmp[2], RE(x), IM(y), RND);
    mpfr_mul(s->tmp[3], IM(x), RE(y), RND);
    mpfr_sub(RE(r), s->tmp[0], s->tmp[1], RND);
    mpfr_add(IM(r), s->tmp[2], s->tmp[3], RND);
}

static int fdiv(qe_verify_scratch *s, int r, int x, int y)
{
    if (is_real(s, y)) {
        if (mpfr_zero_p(RE(y)))
            return s->eerr = "division by zero", VQ_FAIL;
        mpfr_div(RE(r), RE(x), RE(y), RND);
        mpfr_div(IM(r), IM(x), RE(y), RND);
        return VQ_OK;
    }
    mpfr_sqr(s->tmp[4], RE(y), RND);
    mpfr_sqr(s->tmp[5], IM(y), RND);
    mpfr_add(s->tmp[4], s->tmp[4], s->tmp[5], RND);
    mpfr_neg(IM(y), IM(y), RND);
    fmul(s, r, x, y);
    mpfr_neg(IM(y), IM(y), RND);
    mpfr_div(RE(r), RE(r), s->tmp[4], RND);
    mpfr_div(IM(r), IM(r), s->tmp[4], RND);
    return VQ_OK;
}

/* principal log into r */
static void flog(qe_verify_scratch *s, int r, int x)
{
    mpfr_hypot(s->tmp[4], RE(x), IM(x), RND);
    if (mpfr_zero_p(IM(x))) /* -0 from a negation must not give arg -pi */
        mpfr_set_zero(IM(x), 1);
    mpfr_atan2(IM(r), IM(x), RE(x), RND);
    mpfr_log(RE(r), s->tmp[4], RND);
}

static void fexp(qe_verify_scratch *s, int r, int x)
{
    mpfr_exp(s->tmp[4], RE(x), RND);
    mpfr_sin_cos(s->tmp[0], s->tmp[1], IM(x), RND);
    mpfr_mul(RE(r), s->tmp[4], s->tmp[1], RND);
    mpfr_mul(IM(r), s->tmp[4], s->tmp[0], RND);
}

static int fpow(qe_verify_scratch *s, int r, int b, int e)
{
    if (is_real(s, e) && mpfr_integer_p(RE(e)) && mpfr_cmpabs_ui(RE(e), 4096) <= 0) {
        long n = mpfr_get_si(RE(e), RND);
        if (is_real(s, b)) {
            if (mpfr_zero_p(RE(b)) && n < 0)
                return s->eerr = "division by zero", VQ_FAIL;
            mpfr_pow_si(RE(r), RE(b), n, RND);
            return VQ_OK;
        }
        int acc, t;
        int rc;
        if ((rc = fslot(s, &acc)) || (rc = fslot(s, &t)))
            return rc;
        mpfr_set_ui(RE(acc), 1, RND);
        for (long i = 0; i < labs(n); i++) {
            BUDGET(s);
            fmul(s, t, acc, b);
            mpfr_swap(RE(acc), RE(t));
            mpfr_swap(IM(acc), IM(t));
        }
        if (n < 0) {
            mpfr_set_ui(RE(t), 1, RND);
            mpfr_set_zero(IM(t), 1);
            return fdiv(s, r, t, acc);
        }
        mpfr_set(RE(r), RE(acc), RND);
        mpfr_set(IM(r), IM(acc), RND);
        return VQ_OK;
    }
    if (is_real(s, b) && is_real(s, e) && mpfr_sgn(RE(b)) > 0) {
        mpfr_pow(RE(r), RE(b), RE(e), RND);
        return VQ_OK;
    }
    if (is_real(s, b) && mpfr_zero_p(RE(b)))
        return s->eerr = "0 to a non-integer power", VQ_FAIL;
    if (is_real(s, b) && is_real(s, e)) {
        /* negative base, exponent p/q with q odd: the real root, as for
         * \sqrt[3]{-8} (x^{2/3} = (\sqrt[3]{x})^2 for real x) */
        for (unsigned long q = 3; q <= 15; q += 2) {
            mpfr_mul_ui(s->tmp[0], RE(e), q, RND);
            mpfr_round(s->tmp[1], s->tmp[0]);
            mpfr_sub(s->tmp[2], s->tmp[0], s->tmp[1], RND);
            if ((mpfr_zero_p(s->tmp[2]) || mpfr_get_exp(s->tmp[2]) < -200) &&
                mpfr_cmpabs_ui(s->tmp[1], 1u << 20) < 0) {
                long pnum = mpfr_get_si(s->tmp[1], RND);
                mpfr_neg(s->tmp[3], RE(b), RND);
                mpfr_pow(RE(r), s->tmp[3], RE(e), RND);
                if (pnum % 2)
                    mpfr_neg(RE(r), RE(r), RND);
                return VQ_OK;
            }
        }
    }
    /* principal value exp(e log b) */
    int l, t, rc;
    if ((rc = fslot(s, &l)) || (rc = fslot(s, &t)))
        return rc;
    flog(s, l, b);
    fmul(s, t, e, l);
    fexp(s, r, t);
    return VQ_OK;
}

static void test_value(qe_verify_scratch *s, mpfr_t x, int v)
{
    /* irrational, point-dependent, distinct per variable */
    mpfr_set_ui(x, (unsigned long)(2 * v + 3), RND);
    mpfr_sqrt(x, x, RND);
    mpfr_mul_ui(x, x, (unsigned long)(s->point * 7 + 3), RND);
    mpfr_div_ui(x, x, (unsigned long)(v + 5), RND);
    mpfr_add_d(x, x, 0.1 * (double)(s->point + 1), RND);
    if (s->point == 1) /* one negative point: \sqrt{x^2} is not x */
        mpfr_neg(x, x, RND);
}

int qe_verify_num(qe_verify_scratch *s, int n, int *out)
{
    BUDGET(s);
    vq_node *d = &s->node[n];
    int r, x, y, o;
    if ((r = fslot(s, out)))
        return r;
    o = *out;
    switch (d->k) {
    case N_NUM: {
        char buf[520];
        if (d->len > 510)
            return VQ_FAIL;
        memcpy(buf, d->s, (size_t)d->len);
        buf[d->len] = 0;
        mpfr_set_str(RE(o), buf, 10, RND);
        return VQ_OK;
    }
    case N_SYM: {
        int v = var_index(s, d->s, d->len);
        if (v < 0)
            return VQ_FAIL;
        test_value(s, RE(o), v);
        return VQ_OK;
    }
    case N_PI: mpfr_const_pi(RE(o), RND); return VQ_OK;
    case N_E: mpfr_set_ui(RE(o), 1, RND); mpfr_exp(RE(o), RE(o), RND); return VQ_OK;
    case N_I: mpfr_set_zero(RE(o), 1); mpfr_set_ui(IM(o), 1, RND); return VQ_OK;
    case N_PCT:
    case N_DEG:
        if ((r = qe_verify_num(s, d->a, &x)))
            return r;
        mpfr_set(RE(o), RE(x), RND);
        mpfr_set(IM(o), IM(x), RND);
        if (d->k == N_PCT) {
            mpfr_div_ui(RE(o), RE(o), 100, RND);
            mpfr_div_ui(IM(o), IM(o), 100, RND);
        }
        return VQ_OK;
    case N_NEG:
        if ((r = qe_verify_num(s, d->a, &x)))
            return r;
        mpfr_neg(RE(o), RE(x), RND);
        mpfr_neg(IM(o), IM(x), RND);
        return VQ_OK;
    case N_ADD:
    case N_MUL:
    case N_DIV:
    case N_POW:
        if ((r = qe_verify_num(s, d->a, &x)) || (r = qe_verify_num(s, d->b, &y)))
            return r;
        if (d->k == N_ADD) {
            mpfr_add(RE(o), RE(x), RE(y), RND);
            mpfr_add(IM(o), IM(x), IM(y), RND);
            return VQ_OK;
        }
        if (d->k == N_MUL) {
            fmul(s, o, x, y);
            return VQ_OK;
        }
        if (d->k == N_DIV)
            return fdiv(s, o, x, y);
        return fpow(s, o, x, y);
    case N_ROOT: {
        long k = 2;
        if (d->b >= 0) {
            if ((r = qe_verify_num(s, d->b, &y)))
                return r;
            if (!is_real(s, y) || !mpfr_integer_p(RE(y)) || mpfr_cmp_ui(RE(y), 1) < 0 ||
                mpfr_cmp_ui(RE(y), 64) > 0)
                return s->eerr = "bad root index", VQ_FAIL;
            k = mpfr_get_si(RE(y), RND);
        }
        if ((r = qe_verify_num(s, d->a, &x)))
            return r;
        if (is_real(s, x) && mpfr_sgn(RE(x)) >= 0) {
            mpfr_rootn_ui(RE(o), RE(x), (unsigned long)k, RND);
            return VQ_OK;
        }
        if (is_real(s, x) && (k % 2)) {
            mpfr_neg(RE(x), RE(x), RND);
            mpfr_rootn_ui(RE(o), RE(x), (unsigned long)k, RND);
            mpfr_neg(RE(o), RE(o), RND);
            return VQ_OK;
        }
        if (is_real(s, x) && k == 2) {
            mpfr_neg(RE(x), RE(x), RND);
            mpfr_sqrt(IM(o), RE(x), RND);
            mpfr_set_zero(RE(o), 1);
            return VQ_OK;
        }
        int l;
        if ((r = fslot(s, &l)))
            return r;
        flog(s, l, x);
        mpfr_div_si(RE(l), RE(l), k, RND);
        mpfr_div_si(IM(l), IM(l), k, RND);
        fexp(s, o, l);
        return VQ_OK;
    }
    case N_FUNC: {
        int arg = d->a, deg = 0;
        if (s->node[arg].k == N_DEG) {
            deg = 1;
            arg = s->node[arg].a;
        }
        if ((r = qe_verify_num(s, arg, &x)))
            return r;
        if (deg) {
            mpfr_const_pi(s->tmp[0], RND);
            mpfr_mul(RE(x), RE(x), s->tmp[0], RND);
            mpfr_div_ui(RE(x), RE(x), 180, RND);
        }
        int f = d->f;
        if (f == F_EXP) {
            fexp(s, o, x);
            return VQ_OK;
        }
        if (f == F_LN || f == F_LOG) {
            if (is_real(s, x) && mpfr_zero_p(RE(x)))
                return s->eerr = "log of zero", VQ_FAIL;
            flog(s, o, x);
            if (d->b >= 0) {
                if ((r = qe_verify_num(s, d->b, &y)))
                    return r;
                int l;
                if ((r = fslot(s, &l)))
                    return r;
                if (is_real(s, y) && mpfr_cmp_ui(RE(y), 1) == 0)
                    return s->eerr = "log base 1", VQ_FAIL;
                if (is_real(s, y) && mpfr_zero_p(RE(y)))
                    return s->eerr = "log base 0", VQ_FAIL;
                flog(s, l, y);
                mpfr_set(RE(y), RE(o), RND);
                mpfr_set(IM(y), IM(o), RND);
                return fdiv(s, o, y, l);
            }
            return VQ_OK;
        }
        if (!is_real(s, x))
            return s->eerr = "trigonometric function of a complex number", VQ_FAIL;
        mpfr_ptr a = RE(x), v = RE(o);
        switch (f) {
        case F_SIN: mpfr_sin(v, a, RND); break;
        case F_COS: mpfr_cos(v, a, RND); break;
        case F_TAN: mpfr_tan(v, a, RND); break;
        case F_SEC: mpfr_sec(v, a, RND); break;
        case F_CSC: mpfr_csc(v, a, RND); break;
        case F_COT: mpfr_cot(v, a, RND); break;
        case F_ASIN:
        case F_ACOS:
            if (mpfr_cmpabs_ui(a, 1) > 0)
                return s->eerr = "arcsin/arccos outside [-1,1]", VQ_FAIL;
            if (f == F_ASIN)
                mpfr_asin(v, a, RND);
            else
                mpfr_acos(v, a, RND);
            break;
        case F_ATAN: mpfr_atan(v, a, RND); break;
        case F_SINH: mpfr_sinh(v, a, RND); break;
        case F_COSH: mpfr_cosh(v, a, RND); break;
        case F_TANH: mpfr_tanh(v, a, RND); break;
        default: return VQ_FAIL;
        }
        if (!mpfr_number_p(v))
            return s->eerr = "function pole", VQ_FAIL;
        return VQ_OK;
    }
    case N_ABS:
        if ((r = qe_verify_num(s, d->a, &x)))
            return r;
        mpfr_hypot(RE(o), RE(x), IM(x), RND);
        return VQ_OK;
    case N_FACT:
    case N_BINOM:
    case N_BASE: {
        int q;
        if ((r = qe_verify_exact(s, n, &q)))
            return r == VQ_NOTEXACT ? VQ_FAIL : r;
        mpfr_set_q(RE(o), s->q[q][0], RND);
        mpfr_set_q(IM(o), s->q[q][1], RND);
        return VQ_OK;
    }
    default:
        return VQ_FAIL;
    }
}

int qe_verify_num_close(qe_verify_scratch *s, int a, int b)
{
    for (int part = 0; part < 2; part++) {
        mpfr_ptr x = s->f[a][part], y = s->f[b][part];
        if (!mpfr_number_p(x) || !mpfr_number_p(y))
            return 0;
        mpfr_sub(s->tmp[0], x, y, RND);
        mpfr_abs(s->tmp[0], s->tmp[0], RND);
        /* tol = 2^-128 * max(|x|,|y|) + 2^-250 */
        mpfr_abs(s->tmp[1], x, RND);
        mpfr_abs(s->tmp[2], y, RND);
        mpfr_max(s->tmp[1], s->tmp[1], s->tmp[2], RND);
        mpfr_mul_2si(s->tmp[1], s->tmp[1], -128, RND);
        mpfr_set_ui_2exp(s->tmp[2], 1, -250, RND);
        mpfr_add(s->tmp[1], s->tmp[1], s->tmp[2], RND);
        if (mpfr_cmp(s->tmp[0], s->tmp[1]) > 0)
            return 0;
    }
    return 1;
}
