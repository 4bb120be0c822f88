/* verify: public entry points and the structural comparison of two trees.
 *
 * Order of decisions for a pair (first that applies wins):
 *  1. the answers are identical after formatting is removed -> true;
 *  2. both parse; "x = 3" and "(a,b) = (1,2)" lose their variable left side
 *     when the other answer is not an equation; \pm becomes a two-element set;
 *  3. collections compare structurally: sets and bare lists unordered,
 *     tuples, intervals and matrices ordered (bracket kinds must agree),
 *     inequalities in one variable become intervals;
 *  4. scalars compare by value: exact rationals, then polynomials, then MPFR.
 * Anything the verifier cannot establish is undecided, never true. */
#include "verify_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

qe_verify_scratch *qe_verify_scratch_new(void)
{
    qe_verify_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    qe_verify_eval_init(s);
    return s;
}

void qe_verify_scratch_free(qe_verify_scratch *s)
{
    if (!s)
        return;
    qe_verify_eval_free(s);
    free(s);
}

void qe_verify_opts_init(qe_verify_opts *o)
{
    memset(o, 0, sizeof *o);
    qe_extract_opts_init(&o->extract);
}

typedef struct {
    qe_verify_scratch *s;
    const char *reason;
} cmpctx;

static int cmp(cmpctx *c, int g, int p, int depth);
static int combine(int acc, int r);

static void set_reason(cmpctx *c, const char *r)
{
    c->reason = r;
}

/* ---------- formatting-insensitive text ---------- */

static int is_alnum(int ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Removes $, spacing commands, \left/\right, \displaystyle, and whitespace
 * that does not separate two alphanumerics; \dfrac/\tfrac -> \frac. */
static size_t norm_text(const char *in, char *out, size_t cap)
{
    static const char *const drop[] = {"\\left", "\\right", "\\displaystyle", "\\!", "\\,", "\\;",
                                       "\\:", "\\ ", "$", NULL};
    size_t n = 0;
    int pend_space = 0;
    for (const char *p = in; *p && n + 8 < cap;) {
        int skipped = 0;
        for (int i = 0; drop[i]; i++) {
            size_t l = strlen(drop[i]);
            if (!strncmp(p, drop[i], l) && !(l > 2 && is_alnum((unsigned char)p[l]) && drop[i][1] != 0 && (p[l] >= 'a' && p[l] <= 'z'))) {
                p += l;
                skipped = 1;
                break;
            }
        }
        if (skipped)
            continue;
        if (!strncmp(p, "\\dfrac", 6) || !strncmp(p, "\\tfrac", 6)) {
            memcpy(out + n, "\\frac", 5);
            n += 5;
            p += 6;
            continue;
        }
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '~') {
            pend_space = 1;
            p++;
            continue;
        }
        if (pend_space && n > 0 && is_alnum((unsigned char)out[n - 1]) && is_alnum((unsigned char)*p))
            out[n++] = ' ';
        pend_space = 0;
        out[n++] = *p++;
    }
    while (n > 0 && out[n - 1] == '.')
        n--;
    out[n] = 0;
    return n;
}

/* ---------- tree helpers ---------- */

static int mk(qe_verify_scratch *s, int k, int a, int b)
{
    if (s->nnode >= VQ_MAX_NODE)
        return -1;
    vq_node *n = &s->node[s->nnode];
    memset(n, 0, sizeof *n);
    n->k = (uint8_t)k;
    n->a = a;
    n->b = b;
    return s->nnode++;
}

static int kid(qe_verify_scratch *s, int n, int i)
{
    return s->kids[s->node[n].a + i];
}

/* Only names: x, x_1, (a,b), or a function-call shape f(x), p(a,b). */
static int all_syms(qe_verify_scratch *s, int n)
{
    vq_node *d = &s->node[n];
    if (d->k == N_SYM)
        return 1;
    if (d->k == N_MUL && d->f == VQ_CALL)
        return s->node[d->a].k == N_SYM && all_syms(s, d->b);
    if (d->k == N_TUPLE || d->k == N_LIST) {
        for (int i = 0; i < d->n; i++)
            if (s->node[kid(s, n, i)].k != N_SYM)
                return 0;
        return 1;
    }
    return 0;
}

/* "x = 3" -> "3", "(a,b) = (1,2)" -> "(1,2)", "5 = x" -> "5": a side made
 * only of variable names is dropped. */
static int strip_eq(qe_verify_scratch *s, int n)
{
    /* x = a = b: the chain's leftmost side decides, the last side is the value */
    int left = n;
    while (left >= 0 && s->node[left].k == N_EQ)
        left = s->node[left].a;
    if (n >= 0 && s->node[n].k == N_EQ && left >= 0 && all_syms(s, left))
        return s->node[n].b;
    /* "5 = x" */
    if (n >= 0 && s->node[n].k == N_EQ && s->node[s->node[n].a].k != N_EQ && all_syms(s, s->node[n].b) &&
        !all_syms(s, s->node[n].a))
        return s->node[n].a;
    return n;
}

/* Leftmost side of an equation chain. */
static int eq_left(qe_verify_scratch *s, int n)
{
    while (s->node[n].k == N_EQ)
        n = s->node[n].a;
    return n;
}

/* 1 if poly(ga - gb) = c * poly(pa - pb) for a rational c (c > 0 when
 * positive is set), 0 if not, -1 if not polynomials or too large. */
static int proportional(qe_verify_scratch *s, int ga, int gb, int pa, int pb, int positive)
{
    int ng = mk(s, N_NEG, gb, -1), np = mk(s, N_NEG, pb, -1);
    int dg = ng < 0 ? -1 : mk(s, N_ADD, ga, ng), dp = np < 0 ? -1 : mk(s, N_ADD, pa, np);
    if (dg < 0 || dp < 0)
        return -1;
    qe_verify_eval_reset(s);
    s->nvar = 0;
    if (qe_verify_collect_vars(s, dg) || qe_verify_collect_vars(s, dp))
        return -1;
    int x, y;
    if (qe_verify_poly(s, dg, &x) || qe_verify_poly(s, dp, &y))
        return -1;
    struct vq_poly *P = &s->poly[x], *Q = &s->poly[y];
    if (P->n != Q->n || P->n == 0)
        return 0;
    mpq_t c, t;
    mpq_init(c);
    mpq_init(t);
    mpq_div(c, s->polyq[x][0], s->polyq[y][0]);
    int ok = !positive || mpq_sgn(c) > 0;
    for (int i = 0; ok && i < P->n; i++) {
        mpq_mul(t, c, s->polyq[y][i]);
        ok = P->mono[i] == Q->mono[i] && mpq_equal(t, s->polyq[x][i]);
    }
    mpq_clear(c);
    mpq_clear(t);
    return ok;
}

/* a < b, a <= b, a > b, a >= b as (big - small, strict); 0 if not such. */
static int rel_parts(qe_verify_scratch *s, int n, int *big, int *small, int *strict)
{
    vq_node *d = &s->node[n];
    if (d->k != N_REL || s->node[d->a].k == N_REL)
        return 0;
    switch (d->f) {
    case T_LT: *big = d->b; *small = d->a; *strict = 1; return 1;
    case T_LE: *big = d->b; *small = d->a; *strict = 0; return 1;
    case T_GT: *big = d->a; *small = d->b; *strict = 1; return 1;
    case T_GE: *big = d->a; *small = d->b; *strict = 0; return 1;
    default: return 0;
    }
}

static int strip_unit(qe_verify_scratch *s, int n)
{
    while (n >= 0 && (s->node[n].k == N_PCT || s->node[n].k == N_DEG))
        n = s->node[n].a;
    return n;
}

/* a \pm b -> set {a+b, a-b}; returns n unchanged if no \pm at the top. */
static int expand_pm(qe_verify_scratch *s, int n)
{
    if (n < 0 || s->node[n].k != N_PM)
        return n;
    vq_node d = s->node[n];
    if (d.a >= 0 && s->node[d.a].k == N_PM)
        return n; /* nested: left as is (compares as undecided) */
    int nb = mk(s, N_NEG, d.b, -1);
    int x = d.a >= 0 ? mk(s, N_ADD, d.a, d.b) : d.b;
    int y = d.a >= 0 ? mk(s, N_ADD, d.a, nb) : nb;
    if (nb < 0 || x < 0 || y < 0 || s->nkids + 2 > VQ_MAX_KIDS)
        return n;
    int id = mk(s, N_SET, s->nkids, -1);
    if (id < 0)
        return n;
    s->kids[s->nkids++] = x;
    s->kids[s->nkids++] = y;
    s->node[id].n = 2;
    return id;
}

static int is_inf(qe_verify_scratch *s, int n, int *sign)
{
    int neg = 0;
    while (s->node[n].k == N_NEG) {
        neg ^= 1;
        n = s->node[n].a;
    }
    if (s->node[n].k != N_INF)
        return 0;
    *sign = neg ? -1 : 1;
    return 1;
}

/* x < a, a <= x < b ... -> interval tuple; -1 if not of that form. */
static int rel_to_interval(qe_verify_scratch *s, int n)
{
    vq_node *d = &s->node[n];
    if (d->k != N_REL)
        return -1;
    int lo = -1, hi = -1, lo_open = 1, hi_open = 1;
    int op = d->f;
    int l = d->a, r = d->b;
    if (s->node[l].k == N_REL) { /* a < x < b */
        vq_node *e = &s->node[l];
        int op1 = e->f;
        if (s->node[e->b].k != N_SYM)
            return -1;
        int up1 = op1 == T_LT || op1 == T_LE, up2 = op == T_LT || op == T_LE;
        if (up1 != up2 || op1 == T_NE || op == T_NE)
            return -1;
        if (up1) {
            lo = e->a;
            lo_open = op1 == T_LT;
            hi = r;
            hi_open = op == T_LT;
        } else {
            hi = e->a;
            hi_open = op1 == T_GT;
            lo = r;
            lo_open = op == T_GT;
        }
    } else if (s->node[l].k == N_SYM) {
        if (op == T_LT || op == T_LE) {
            hi = r;
            hi_open = op == T_LT;
        } else if (op == T_GT || op == T_GE) {
            lo = r;
            lo_open = op == T_GT;
        } else
            return -1;
    } else if (s->node[r].k == N_SYM) {
        if (op == T_LT || op == T_LE) {
            lo = l;
            lo_open = op == T_LT;
        } else if (op == T_GT || op == T_GE) {
            hi = l;
            hi_open = op == T_GT;
        } else
            return -1;
    } else
        return -1;
    if (lo < 0) {
        int inf = mk(s, N_INF, -1, -1);
        lo = inf < 0 ? -1 : mk(s, N_NEG, inf, -1);
    }
    if (hi < 0)
        hi = mk(s, N_INF, -1, -1);
    if (lo < 0 || hi < 0 || s->nkids + 2 > VQ_MAX_KIDS)
        return -1;
    int id = mk(s, N_TUPLE, s->nkids, -1);
    if (id < 0)
        return -1;
    s->kids[s->nkids++] = lo;
    s->kids[s->nkids++] = hi;
    s->node[id].n = 2;
    s->node[id].f = (uint8_t)((lo_open ? VQ_LOPEN : 0) | (hi_open ? VQ_ROPEN : 0));
    return id;
}

/* ---------- scalar comparison ---------- */

static int cmp_scalar(cmpctx *c, int g, int p)
{
    qe_verify_scratch *s = c->s;
    int ug = s->node[g].k, up = s->node[p].k;
    if ((ug == N_PCT && up == N_DEG) || (ug == N_DEG && up == N_PCT)) {
        set_reason(c, "different unit marks (% and degrees)");
        return 0;
    }
    /* a whole answer's % or degree mark is a unit: 10\% = 10, 90^\circ = 90 */
    g = strip_unit(s, g);
    p = strip_unit(s, p);
    int sg = 0, sp = 0;
    int ig = is_inf(s, g, &sg), ip = is_inf(s, p, &sp);
    if (ig || ip) {
        set_reason(c, "infinities");
        return ig && ip && sg == sp;
    }
    qe_verify_eval_reset(s);
    s->nvar = 0;
    if (qe_verify_collect_vars(s, g) || qe_verify_collect_vars(s, p)) {
        set_reason(c, "undecided: too many variables");
        return -1;
    }
    int x, y, r1, r2;
    if (s->nvar == 0) {
        r1 = qe_verify_exact(s, g, &x);
        r2 = r1 == VQ_OK || r1 == VQ_NOTEXACT ? qe_verify_exact(s, p, &y) : r1;
        if (r1 == VQ_OK && r2 == VQ_OK) {
            int eq = mpq_equal(s->q[x][0], s->q[y][0]) && mpq_equal(s->q[x][1], s->q[y][1]);
            set_reason(c, eq ? "equal as exact rationals" : "different exact rationals");
            return eq;
        }
        if (r1 == VQ_LIMIT || r2 == VQ_LIMIT || r1 == VQ_FAIL || r2 == VQ_FAIL) {
            set_reason(c, s->eerr ? s->eerr : "not a number");
            return -1;
        }
    } else {
        r1 = qe_verify_poly(s, g, &x);
        r2 = r1 == VQ_OK || r1 == VQ_NOTEXACT ? qe_verify_poly(s, p, &y) : r1;
        if (r1 == VQ_OK && r2 == VQ_OK) {
            int eq = qe_verify_poly_equal(s, x, y);
            set_reason(c, eq ? "equal as polynomials" : "different polynomials");
            return eq;
        }
        if (r1 == VQ_LIMIT || r2 == VQ_LIMIT) {
            set_reason(c, s->eerr ? s->eerr : "budget");
            return -1;
        }
    }
    /* numeric, at one point (constants) or three points (variables) */
    int npts = s->nvar ? 3 : 1, good = 0;
    for (int pt = 0; pt < npts; pt++) {
        s->nf = 0;
        s->nq = 0;
        s->eerr = NULL;
        s->point = pt;
        r1 = qe_verify_num(s, g, &x);
        r2 = r1 == VQ_OK ? qe_verify_num(s, p, &y) : r1;
        if (r1 == VQ_LIMIT || r2 == VQ_LIMIT) {
            set_reason(c, s->eerr ? s->eerr : "budget");
            return -1;
        }
        if (r1 != VQ_OK || r2 != VQ_OK)
            continue;
        good++;
        if (!qe_verify_num_close(s, x, y)) {
            set_reason(c, s->nvar ? "different values at a test point" : "different numeric values");
            return 0;
        }
    }
    if (good == 0 || (s->nvar && good < 2)) {
        set_reason(c, s->eerr ? s->eerr : "could not evaluate");
        return -1;
    }
    set_reason(c, s->nvar ? "equal numerically at 3 test points" : "equal numerically (MPFR 320 bits)");
    return 1;
}

/* ---------- structural comparison ---------- */

static int combine(int acc, int r)
{
    if (acc == 0 || r == 0)
        return 0;
    if (acc < 0 || r < 0)
        return -1;
    return 1;
}

static int cmp_ordered(cmpctx *c, int g, int p, int n, int depth)
{
    int acc = 1;
    for (int i = 0; i < n && acc != 0; i++)
        acc = combine(acc, cmp(c, kid(c->s, g, i), kid(c->s, p, i), depth + 1));
    return acc;
}

/* Set equality: every element of each side equals some element of the other
 * (duplicates do not matter, order does not matter). */
static int cover(cmpctx *c, int a, int b, int depth)
{
    qe_verify_scratch *s = c->s;
    int n = s->node[a].n, m = s->node[b].n, acc = 1;
    for (int i = 0; i < n; i++) {
        int found = 0, unsure = 0;
        for (int j = 0; j < m && !found; j++) {
            int r = cmp(c, kid(s, a, i), kid(s, b, j), depth + 1);
            if (r == 1)
                found = 1;
            else if (r < 0)
                unsure = 1;
        }
        if (!found) {
            if (!unsure)
                return 0;
            acc = -1;
        }
    }
    return acc;
}

/* A list or set with \pm elements expanded: {1 \pm 2, 5} -> {1+2, 1-2, 5}. */
static int flatten_pm(qe_verify_scratch *s, int n)
{
    vq_node d = s->node[n];
    int has = 0;
    for (int i = 0; i < d.n; i++)
        if (s->node[kid(s, n, i)].k == N_PM)
            has = 1;
    if (!has || s->nkids + 2 * d.n > VQ_MAX_KIDS)
        return n;
    int start = s->nkids;
    for (int i = 0; i < d.n; i++) {
        int e = kid(s, n, i);
        int x = expand_pm(s, e);
        if (x != e && s->node[x].k == N_SET) {
            s->kids[s->nkids++] = kid(s, x, 0);
            s->kids[s->nkids++] = kid(s, x, 1);
        } else
            s->kids[s->nkids++] = e;
    }
    int id = mk(s, d.k, start, -1);
    if (id < 0)
        return n;
    s->node[id].n = (uint16_t)(s->nkids - start);
    return id;
}

static int cmp_unordered(cmpctx *c, int g, int p, int depth)
{
    g = flatten_pm(c->s, g);
    p = flatten_pm(c->s, p);
    int r = cover(c, g, p, depth);
    if (r == 1)
        r = cover(c, p, g, depth);
    set_reason(c, r == 1 ? "same elements" : r == 0 ? "an element has no equal in the other collection"
                                                  : "undecided: some elements could not be compared");
    return r;
}

static int is_coll(int k)
{
    return k == N_TUPLE || k == N_SET || k == N_LIST || k == N_UNION || k == N_MATRIX;
}

static int choice_letter(qe_verify_scratch *s, int n)
{
    vq_node *d = &s->node[n];
    if (d->k == N_SYM && d->len == 1 && d->s[0] >= 'A' && d->s[0] <= 'E')
        return d->s[0];
    return 0;
}

/* Set st (one or more elements) against the single value v: equal when
 * every element equals v. The gold stays the first argument of cmp. */
static int set_of_one(cmpctx *c, int st, int v, int depth, int gold_is_set)
{
    qe_verify_scratch *s = c->s;
    int acc = 1, n = s->node[st].n;
    for (int i = 0; i < n && acc != 0; i++) {
        int e = kid(s, st, i);
        acc = combine(acc, gold_is_set ? cmp(c, e, v, depth + 1) : cmp(c, v, e, depth + 1));
    }
    if (n > 1 && acc == 0)
        set_reason(c, "a set element differs from the single value");
    else if (n > 1 && acc == 1)
        set_reason(c, "every set element equals the single value");
    return acc;
}

static int cmp(cmpctx *c, int g, int p, int depth)
{
    qe_verify_scratch *s = c->s;
    if (depth > VQ_MAX_DEPTH) {
        set_reason(c, "undecided: nested too deeply");
        return -1;
    }
    if (--s->budget < 0) {
        set_reason(c, "evaluation budget exhausted");
        return -1;
    }
    /* equations */
    vq_node *G = &s->node[g], *Pn = &s->node[p];
    if (G->k == N_EQ && Pn->k == N_EQ) {
        int gl = eq_left(s, g), pl = eq_left(s, p);
        if (all_syms(s, gl) && all_syms(s, pl) && (G->a != gl || Pn->a != pl)) {
            /* chains "x = 5+5+1 = 11": same variable(s), same final value */
            int r = combine(cmp(c, gl, pl, depth + 1), cmp(c, G->b, Pn->b, depth + 1));
            if (r != 1)
                set_reason(c, "different equations");
            return r;
        }
        int a = combine(cmp(c, G->a, Pn->a, depth + 1), cmp(c, G->b, Pn->b, depth + 1));
        if (a == 1)
            return 1;
        int b = combine(cmp(c, G->a, Pn->b, depth + 1), cmp(c, G->b, Pn->a, depth + 1));
        if (b == 1)
            return 1;
        if (s->node[G->a].k != N_EQ && s->node[Pn->a].k != N_EQ) {
            int r = proportional(s, G->a, G->b, Pn->a, Pn->b, 0);
            if (r == 1) {
                set_reason(c, "equivalent equations (proportional polynomials)");
                return 1;
            }
        }
        set_reason(c, "different equations");
        return a < 0 || b < 0 ? -1 : 0;
    }
    if (G->k == N_EQ || Pn->k == N_EQ) {
        int g2 = strip_eq(s, g), p2 = strip_eq(s, p);
        if (g2 == g && p2 == p) {
            set_reason(c, "equation against a non-equation");
            return 0;
        }
        return cmp(c, g2, p2, depth + 1);
    }
    g = expand_pm(s, g);
    p = expand_pm(s, p);
    G = &s->node[g];
    Pn = &s->node[p];
    if (G->k == N_PM || Pn->k == N_PM) {
        set_reason(c, "undecided: nested \\pm");
        return -1;
    }
    {
        int gb, gs, gst, pb, ps, pst;
        if (rel_parts(s, g, &gb, &gs, &gst) && rel_parts(s, p, &pb, &ps, &pst)) {
            int r = gst == pst ? proportional(s, gb, gs, pb, ps, 1) : 0;
            if (r == 1) {
                set_reason(c, "equivalent inequalities");
                return 1;
            }
        }
    }
    if (G->k == N_REL) {
        int t = rel_to_interval(s, g);
        if (t >= 0)
            g = t;
    }
    if (Pn->k == N_REL) {
        int t = rel_to_interval(s, p);
        if (t >= 0)
            p = t;
    }
    G = &s->node[g];
    Pn = &s->node[p];
    if (G->k == N_REL || Pn->k == N_REL) {
        if (G->k == N_REL && Pn->k == N_REL && G->f == Pn->f) {
            int r = combine(cmp(c, G->a, Pn->a, depth + 1), cmp(c, G->b, Pn->b, depth + 1));
            if (r != 1)
                set_reason(c, "different relations");
            return r;
        }
        set_reason(c, "relation against a different kind");
        return 0;
    }
    /* text and choices */
    int cg = choice_letter(s, g);
    if (cg) {
        int cp = 0;
        if (Pn->k == N_SYM && Pn->len == 1)
            cp = Pn->s[0] & ~0x20;
        else if (Pn->k == N_TEXT && Pn->len == 1)
            cp = Pn->s[0] & ~0x20;
        set_reason(c, cp == cg ? "same choice letter" : "different choice letter");
        return cp == cg;
    }
    if (G->k == N_TEXT || Pn->k == N_TEXT) {
        int eq = G->k == N_TEXT && Pn->k == N_TEXT && G->len == Pn->len && !memcmp(G->s, Pn->s, (size_t)G->len);
        set_reason(c, eq ? "same text" : "different text");
        return eq;
    }
    /* base-b numerals: digits must match */
    if (G->k == N_BASE) {
        vq_node *gd = &s->node[G->a];
        const char *gb = s->node[G->b].s;
        int gbl = s->node[G->b].len;
        vq_node *pd = NULL;
        if (Pn->k == N_BASE) {
            if (s->node[Pn->b].len != gbl || memcmp(s->node[Pn->b].s, gb, (size_t)gbl)) {
                int r = cmp_scalar(c, g, p); /* different bases: compare values */
                return r;
            }
            pd = &s->node[Pn->a];
        } else if (Pn->k == N_NUM)
            pd = Pn;
        if (!pd) {
            set_reason(c, "base numeral against a non-numeral");
            return 0;
        }
        const char *a = gd->s, *b = pd->s;
        int la = gd->len, lb = pd->len;
        while (la > 1 && *a == '0') { a++; la--; }
        while (lb > 1 && *b == '0') { b++; lb--; }
        int eq = la == lb && !memcmp(a, b, (size_t)la);
        set_reason(c, eq ? "same base numeral" : "different base numeral");
        return eq;
    }
    /* collections */
    int kg = G->k, kp = Pn->k;
    /* a set against one value: \{3\} = 3 and, repetition ignored, \{3,3\} = 3 */
    if (kg == N_SET && G->n >= 1 && !is_coll(kp))
        return set_of_one(c, g, p, depth, 1);
    if (kp == N_SET && Pn->n >= 1 && !is_coll(kg))
        return set_of_one(c, p, g, depth, 0);
    if (is_coll(kg) || is_coll(kp)) {
        if (!is_coll(kg) || !is_coll(kp)) {
            set_reason(c, "collection against a single value");
            return 0;
        }
        if ((kg == N_SET || kg == N_LIST) && (kp == N_SET || kp == N_LIST))
            return cmp_unordered(c, g, p, depth);
        if (kg == N_UNION && kp == N_UNION)
            return cmp_unordered(c, g, p, depth);
        if (kg == N_TUPLE && (kp == N_TUPLE || kp == N_LIST)) {
            int pf = kp == N_LIST ? (VQ_LOPEN | VQ_ROPEN) : Pn->f;
            if (G->n != Pn->n || G->f != pf) {
                set_reason(c, G->n != Pn->n ? "different lengths" : "different brackets");
                return 0;
            }
            int r = cmp_ordered(c, g, p, G->n, depth);
            if (r == 1)
                set_reason(c, "same tuple");
            return r;
        }
        if (kg == N_MATRIX || kp == N_MATRIX) {
            int gn = G->n, pn = Pn->n;
            int gc = kg == N_MATRIX ? G->c : 1, pc = kp == N_MATRIX ? Pn->c : 1;
            int vec = (kg != N_MATRIX && kg == N_TUPLE && G->f == (VQ_LOPEN | VQ_ROPEN) && (pc == 1 || pc == pn)) ||
                      (kp != N_MATRIX && kp == N_TUPLE && Pn->f == (VQ_LOPEN | VQ_ROPEN) && (gc == 1 || gc == gn));
            if (gn != pn || (kg == N_MATRIX && kp == N_MATRIX && gc != pc) ||
                (!(kg == N_MATRIX && kp == N_MATRIX) && !vec)) {
                set_reason(c, "different shapes");
                return 0;
            }
            int r = cmp_ordered(c, g, p, gn, depth);
            if (r == 1)
                set_reason(c, "same matrix");
            return r;
        }
        set_reason(c, "different kinds of collection");
        return 0;
    }
    return cmp_scalar(c, g, p);
}

/* ---------- canonical form printing ---------- */

typedef struct {
    char *b;
    size_t n, cap;
} pbuf;

static void pput(pbuf *o, const char *t, size_t l)
{
    if (o->n + l + 1 >= o->cap) {
        l = o->n + 1 < o->cap ? o->cap - o->n - 1 : 0;
    }
    memcpy(o->b + o->n, t, l);
    o->n += l;
    o->b[o->n] = 0;
}

static void pstr(pbuf *o, const char *t)
{
    pput(o, t, strlen(t));
}

static const char *const fnames[] = {"?", "sin", "cos", "tan", "sec", "csc", "cot", "arcsin",
                                     "arccos", "arctan", "sinh", "cosh", "tanh", "ln", "log", "exp"};

static void print_node(qe_verify_scratch *s, int n, pbuf *o, int depth);

/* An operand of a binary operator: a negation gets parentheses, (-8)^2. */
static void print_operand(qe_verify_scratch *s, int n, pbuf *o, int depth)
{
    int neg = n >= 0 && s->node[n].k == N_NEG;
    if (neg)
        pstr(o, "(");
    print_node(s, n, o, depth);
    if (neg)
        pstr(o, ")");
}

static void print_node(qe_verify_scratch *s, int n, pbuf *o, int depth)
{
    if (n < 0 || depth > 40 || o->n + 8 >= o->cap) {
        pstr(o, "...");
        return;
    }
    vq_node *d = &s->node[n];
    switch (d->k) {
    case N_NUM:
    case N_SYM: pput(o, d->s, (size_t)d->len); break;
    case N_TEXT: pstr(o, "\""); pput(o, d->s, (size_t)d->len); pstr(o, "\""); break;
    case N_PI: pstr(o, "pi"); break;
    case N_E: pstr(o, "e"); break;
    case N_I: pstr(o, "i"); break;
    case N_INF: pstr(o, "oo"); break;
    case N_ADD:
    case N_MUL:
    case N_DIV:
    case N_POW:
    case N_EQ:
    case N_PM: {
        const char *op = d->k == N_ADD ? "+" : d->k == N_MUL ? "*" : d->k == N_DIV ? "/" : d->k == N_POW ? "^" : d->k == N_EQ ? "=" : "+-";
        pstr(o, "(");
        if (d->a >= 0)
            print_operand(s, d->a, o, depth + 1);
        pstr(o, op);
        print_operand(s, d->b, o, depth + 1);
        pstr(o, ")");
        break;
    }
    case N_REL: {
        const char *op = d->f == T_LT ? "<" : d->f == T_LE ? "<=" : d->f == T_GT ? ">" : d->f == T_GE ? ">=" : "!=";
        print_node(s, d->a, o, depth + 1);
        pstr(o, op);
        print_node(s, d->b, o, depth + 1);
        break;
    }
    case N_NEG: pstr(o, "-"); print_node(s, d->a, o, depth + 1); break;
    case N_FUNC:
        pstr(o, fnames[d->f < 16 ? d->f : 0]);
        if (d->b >= 0) {
            pstr(o, "_");
            print_node(s, d->b, o, depth + 1);
        }
        pstr(o, "(");
        print_node(s, d->a, o, depth + 1);
        pstr(o, ")");
        break;
    case N_ROOT:
        pstr(o, "root(");
        print_node(s, d->a, o, depth + 1);
        if (d->b >= 0) {
            pstr(o, ",");
            print_node(s, d->b, o, depth + 1);
        }
        pstr(o, ")");
        break;
    case N_FACT: print_node(s, d->a, o, depth + 1); pstr(o, "!"); break;
    case N_BINOM:
        pstr(o, "binom(");
        print_node(s, d->a, o, depth + 1);
        pstr(o, ",");
        print_node(s, d->b, o, depth + 1);
        pstr(o, ")");
        break;
    case N_PCT: print_node(s, d->a, o, depth + 1); pstr(o, "%"); break;
    case N_DEG: print_node(s, d->a, o, depth + 1); pstr(o, "deg"); break;
    case N_ABS: pstr(o, "|"); print_node(s, d->a, o, depth + 1); pstr(o, "|"); break;
    case N_BASE:
        print_node(s, d->a, o, depth + 1);
        pstr(o, "_");
        print_node(s, d->b, o, depth + 1);
        break;
    default: {
        const char *l = "[", *r = "]", *sep = ",";
        if (d->k == N_SET) { l = "{"; r = "}"; }
        else if (d->k == N_LIST) { l = "list("; r = ")"; }
        else if (d->k == N_UNION) { l = "union("; r = ")"; }
        else if (d->k == N_MATRIX) { l = "matrix("; r = ")"; }
        else if (d->k == N_TUPLE) {
            l = (d->f & VQ_LOPEN) ? "(" : "[";
            r = (d->f & VQ_ROPEN) ? ")" : "]";
        }
        pstr(o, l);
        for (int i = 0; i < d->n; i++) {
            if (i) {
                if (d->k == N_MATRIX && d->c > 0 && i % d->c == 0)
                    pstr(o, ";");
                else
                    pstr(o, sep);
            }
            print_node(s, kid(s, n, i), o, depth + 1);
        }
        pstr(o, r);
    }
    }
}

/* Writes q as "p/q" (or "p") if it fits; returns 0 if it does not. */
static int put_q(pbuf *o, mpq_srcptr q)
{
    size_t need = mpz_sizeinbase(mpq_numref(q), 10) + mpz_sizeinbase(mpq_denref(q), 10) + 4;
    if (o->n + need + 8 >= o->cap)
        return 0;
    mpq_get_str(o->b + o->n, 10, q);
    o->n += strlen(o->b + o->n);
    return 1;
}

/* The canonical form of an answer: its exact value when it has one
 * ("1/2" for 0.5, "3+4i"), else the normalised tree. */
static void canon(qe_verify_scratch *s, int n, char *out, size_t cap)
{
    pbuf o = {out, 0, cap};
    out[0] = 0;
    int v = strip_eq(s, n), x;
    vq_node *d = &s->node[v];
    if (d->k != N_NUM || memchr(d->s, '.', (size_t)d->len) || (d->len > 1 && d->s[0] == '0')) {
        long budget = s->budget;
        qe_verify_eval_reset(s);
        s->nvar = 0;
        int u = strip_unit(s, v);
        if (u >= 0 && qe_verify_collect_vars(s, u) == 0 && s->nvar == 0 && qe_verify_exact(s, u, &x) == VQ_OK) {
            int im = mpq_sgn(s->q[x][1]) != 0, ok = 1;
            if (!im || mpq_sgn(s->q[x][0]))
                ok = put_q(&o, s->q[x][0]);
            if (ok && im) {
                if (mpq_sgn(s->q[x][1]) > 0 && mpq_sgn(s->q[x][0]))
                    pstr(&o, "+");
                if (mpq_cmp_si(s->q[x][1], -1, 1) == 0)
                    pstr(&o, "-");
                else if (mpq_cmp_si(s->q[x][1], 1, 1) != 0)
                    ok = put_q(&o, s->q[x][1]);
                pstr(&o, "i");
            }
            s->budget = budget;
            if (ok)
                return;
            o.n = 0;
            out[0] = 0;
        }
        s->budget = budget;
    }
    print_node(s, n, &o, 0);
    if (o.n + 1 >= cap && cap > 4)
        memcpy(out + cap - 4, "...", 4);
}

/* ---------- entry points ---------- */

static void copy_trunc(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap) {
        memcpy(dst, src, cap - 4);
        memcpy(dst + cap - 4, "...", 4);
        return;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}

int qe_verify_pair(const char *gold, const char *pred, const qe_verify_opts *opts,
                   qe_verify_result *out)
{
    qe_verify_opts def;
    if (!opts) {
        qe_verify_opts_init(&def);
        opts = &def;
    }
    qe_verify_scratch *s = opts->scratch, *own = NULL;
    if (!s) {
        s = own = qe_verify_scratch_new();
        if (!s)
            return QE_ENOMEM;
    }
    out->verdict = QE_VERDICT_UNDECIDED;
    out->reason[0] = out->canon_gold[0] = out->canon_pred[0] = 0;
    size_t lg = strlen(gold), lp = strlen(pred);
    if (lg > VQ_MAX_INPUT || lp > VQ_MAX_INPUT) {
        snprintf(out->reason, sizeof out->reason, "undecided: answer longer than %d bytes", VQ_MAX_INPUT);
        goto done;
    }
    {
        char ng[VQ_MAX_INPUT + 16], np[VQ_MAX_INPUT + 16];
        size_t a = norm_text(gold, ng, sizeof ng), b = norm_text(pred, np, sizeof np);
        if (a > 0 && a == b && !memcmp(ng, np, a)) {
            out->verdict = QE_VERDICT_TRUE;
            snprintf(out->reason, sizeof out->reason, "identical after removing formatting");
            if (!opts->no_canon) {
                copy_trunc(out->canon_gold, sizeof out->canon_gold, ng, a);
                copy_trunc(out->canon_pred, sizeof out->canon_pred, np, b);
            }
            goto done;
        }
        if (a == 0 || b == 0) {
            out->verdict = a == b ? QE_VERDICT_UNDECIDED : QE_VERDICT_FALSE;
            snprintf(out->reason, sizeof out->reason, "%s", a == b ? "undecided: both answers empty" : "one answer is empty");
            goto done;
        }
    }
    s->nnode = 0;
    s->nkids = 0;
    s->budget = VQ_BUDGET;
    qe_verify_eval_reset(s);
    int g = -1, p = -1;
    if (qe_verify_lex(s, 0, gold, lg) == 0)
        g = qe_verify_parse(s);
    if (g < 0) {
        snprintf(out->reason, sizeof out->reason, "undecided: gold not parsed: %s", s->perr ? s->perr : "?");
        goto done;
    }
    if (qe_verify_lex(s, 1, pred, lp) == 0)
        p = qe_verify_parse(s);
    if (p < 0) {
        snprintf(out->reason, sizeof out->reason, "undecided: answer not parsed: %s", s->perr ? s->perr : "?");
        if (!opts->no_canon)
            canon(s, g, out->canon_gold, sizeof out->canon_gold);
        goto done;
    }
    cmpctx c = {s, NULL};
    int r = cmp(&c, g, p, 0);
    out->verdict = r;
    snprintf(out->reason, sizeof out->reason, "%s", c.reason ? c.reason : "?");
    if (r < 0 && strncmp(out->reason, "undecided", 9)) {
        char tmp[sizeof out->reason];
        memcpy(tmp, out->reason, sizeof tmp);
        memcpy(out->reason, "undecided: ", 11);
        memcpy(out->reason + 11, tmp, sizeof tmp - 12);
        out->reason[sizeof out->reason - 1] = 0;
    }
    if (!opts->no_canon) {
        canon(s, g, out->canon_gold, sizeof out->canon_gold);
        canon(s, p, out->canon_pred, sizeof out->canon_pred);
    }
done:
    qe_verify_scratch_free(own);
    return 0;
}

int qe_verify_response(const char *gold, const char *response, const qe_verify_opts *opts,
                       qe_verify_result *out)
{
    qe_verify_result local;
    if (!out)
        out = &local;
    qe_verify_opts def;
    if (!opts) {
        qe_verify_opts_init(&def);
        opts = &def;
    }
    size_t st = 0, l = 0;
    int m = qe_extract_answer(response, strlen(response), &opts->extract, &st, &l);
    out->extract_method = m;
    if (m == QE_EXTRACT_NONE) {
        out->verdict = QE_VERDICT_UNDECIDED;
        snprintf(out->reason, sizeof out->reason, "undecided: no answer found in the response");
        out->canon_gold[0] = out->canon_pred[0] = out->extracted[0] = 0;
        return out->verdict;
    }
    /* the gold may itself be a solution with \boxed{} */
    char ans[VQ_MAX_INPUT + 1];
    if (l > VQ_MAX_INPUT) {
        out->verdict = QE_VERDICT_UNDECIDED;
        snprintf(out->reason, sizeof out->reason, "undecided: extracted answer too long");
        copy_trunc(out->extracted, sizeof out->extracted, response + st, l);
        return out->verdict;
    }
    memcpy(ans, response + st, l);
    ans[l] = 0;
    /* a gold that is a whole solution: its last \boxed{} is the answer */
    char gbuf[VQ_MAX_INPUT + 1];
    if (strstr(gold, "\\boxed") || strstr(gold, "\\fbox")) {
        qe_extract_opts bo;
        memset(&bo, 0, sizeof bo);
        bo.order[0] = QE_EXTRACT_BOXED;
        size_t gs = 0, gl = 0;
        if (qe_extract_answer(gold, strlen(gold), &bo, &gs, &gl) && gl <= VQ_MAX_INPUT) {
            memcpy(gbuf, gold + gs, gl);
            gbuf[gl] = 0;
            gold = gbuf;
        }
    }
    int rc = qe_verify_pair(gold, ans, opts, out);
    out->extract_method = m;
    copy_trunc(out->extracted, sizeof out->extracted, ans, l);
    if (rc)
        out->verdict = QE_VERDICT_UNDECIDED;
    return out->verdict;
}
