/* verify_parse: tokens to expression tree (recursive descent, depth-bounded).
 *
 * Precedence, loosest first: list separators (, ; "or" "and"), set union
 * \cup, relations (= < \le ...), sums with +, -, \pm, products (explicit or
 * implicit), unary minus, powers (right-associative), postfix !, \%, ^\circ,
 * base subscripts, then primaries. LaTeX arguments without braces take one
 * character (\frac12), as TeX does. A mixed number is an integer directly
 * followed by \frac of two integers. */
#include "verify_int.h"

#include <string.h>

typedef qe_verify_scratch P;

static int list_until(P *s, int close1, int close2, int *closed);
static int parse_union(P *s);
static int parse_unary(P *s);
static int parse_power(P *s);

static vq_tok *cur(P *s)
{
    return &s->tok[s->pos];
}

static int fail(P *s, const char *why)
{
    if (!s->perr)
        s->perr = why;
    return -1;
}

static int mk(P *s, int k, int a, int b)
{
    if (s->nnode >= VQ_MAX_NODE)
        return fail(s, "expression too large");
    vq_node *n = &s->node[s->nnode];
    memset(n, 0, sizeof *n);
    n->k = (uint8_t)k;
    n->a = a;
    n->b = b;
    n->c = 0;
    return s->nnode++;
}

static int mk_list(P *s, int k, const int *el, int n)
{
    if (s->nkids + n > VQ_MAX_KIDS)
        return fail(s, "expression too large");
    int id = mk(s, k, s->nkids, -1);
    if (id < 0)
        return -1;
    if (n > 0)
        memcpy(&s->kids[s->nkids], el, (size_t)n * sizeof *el);
    s->nkids += n;
    s->node[id].n = (uint16_t)n;
    return id;
}

static int is_int_num(P *s, int n)
{
    return n >= 0 && s->node[n].k == N_NUM && !memchr(s->node[n].s, '.', (size_t)s->node[n].len);
}

static int enter(P *s)
{
    if (++s->depth > VQ_MAX_DEPTH)
        return fail(s, "expression nested too deeply");
    return 0;
}

/* Appends text to the scratch text buffer (for composed names). */
static const char *keep(P *s, const char *a, size_t n)
{
    char *buf = s->text[s->side];
    if ((size_t)s->tpos + n + 1 > sizeof s->text[0])
        return NULL;
    char *d = buf + s->tpos;
    memcpy(d, a, n);
    d[n] = 0;
    s->tpos += (int)n + 1;
    return d;
}

/* One TeX argument: {...} or a single character/token. */
static int parse_arg(P *s)
{
    vq_tok *t = cur(s);
    if (t->k == T_LBR) {
        s->pos++;
        int closed = 0;
        int r = list_until(s, T_RBR, T_RBR, &closed);
        if (r < 0 || !closed)
            return fail(s, "unbalanced braces");
        return r;
    }
    if (t->k == T_NUM && t->len > 1) {
        int id = mk(s, N_NUM, -1, -1);
        if (id < 0)
            return -1;
        s->node[id].s = t->s;
        s->node[id].len = 1;
        t->s++;
        t->len--;
        if (t->s[0] == '.')
            return fail(s, "bad number argument");
        return id;
    }
    if (t->k == T_NUM || t->k == T_ID || t->k == T_PI) {
        s->pos++;
        int id = mk(s, t->k == T_NUM ? N_NUM : t->k == T_PI ? N_PI : N_SYM, -1, -1);
        if (id < 0)
            return -1;
        s->node[id].s = t->s;
        s->node[id].len = t->len;
        if (t->k == T_ID && t->len == 1 && t->s[0] == 'i')
            s->node[id].k = N_I;
        return id;
    }
    return fail(s, "missing argument");
}

static int starts_factor(int k)
{
    return k == T_NUM || k == T_ID || k == T_PI || k == T_FUNC || k == T_FRAC || k == T_SQRT ||
           k == T_BINOM || k == T_LP || k == T_LBR || k == T_BEGIN;
}

static int parse_subscript_name(P *s, const char *name, size_t nlen)
{
    /* name _ {tokens} -> one symbol "name_tokens" */
    char buf[96];
    size_t n = 0;
    if (nlen + 2 > sizeof buf)
        return fail(s, "name too long");
    memcpy(buf, name, nlen);
    n = nlen;
    buf[n++] = '_';
    vq_tok *t = cur(s);
    if (t->k == T_LBR) {
        s->pos++;
        while (cur(s)->k == T_NUM || cur(s)->k == T_ID || cur(s)->k == T_WORD ||
               cur(s)->k == T_COMMA) {
            t = cur(s);
            size_t l = t->k == T_COMMA ? 1 : t->len;
            if (n + l + 1 > sizeof buf)
                return fail(s, "name too long");
            memcpy(buf + n, t->k == T_COMMA ? "," : t->s, l);
            n += l;
            s->pos++;
        }
        if (cur(s)->k != T_RBR)
            return fail(s, "bad subscript");
        s->pos++;
    } else if (t->k == T_NUM || t->k == T_ID || t->k == T_WORD) {
        size_t l = t->k == T_NUM ? 1 : t->len;
        if (n + l + 1 > sizeof buf)
            return fail(s, "name too long");
        memcpy(buf + n, t->s, l);
        n += l;
        if (t->k == T_NUM && t->len > 1) {
            t->s++;
            t->len--;
        } else
            s->pos++;
    } else
        return fail(s, "bad subscript");
    int id = mk(s, N_SYM, -1, -1);
    if (id < 0)
        return -1;
    s->node[id].s = keep(s, buf, n);
    s->node[id].len = (int32_t)n;
    if (!s->node[id].s)
        return fail(s, "answer too long");
    return id;
}

static int parse_matrix(P *s)
{
    int el[VQ_MAX_LIST];
    int n = 0, cols = -1, c = 0;
    for (;;) {
        int k = cur(s)->k;
        if (k == T_END) {
            s->pos++;
            break;
        }
        if (k == T_EOF)
            return fail(s, "unterminated matrix");
        if (k == T_ROWSEP && c == 0) { /* trailing \\ */
            s->pos++;
            continue;
        }
        int e = parse_union(s);
        if (e < 0)
            return -1;
        if (n >= VQ_MAX_LIST)
            return fail(s, "matrix too large");
        el[n++] = e;
        c++;
        k = cur(s)->k;
        if (k == T_AMP) {
            s->pos++;
        } else if (k == T_ROWSEP || k == T_END) {
            if (k == T_ROWSEP)
                s->pos++;
            if (cols < 0)
                cols = c;
            else if (cols != c)
                return fail(s, "ragged matrix");
            c = 0;
        } else
            return fail(s, "bad matrix entry");
    }
    if (n == 0 || cols <= 0)
        return fail(s, "empty matrix");
    int id = mk_list(s, N_MATRIX, el, n);
    if (id >= 0)
        s->node[id].c = cols;
    return id;
}

static int parse_primary(P *s)
{
    if (enter(s))
        return -1;
    vq_tok *t = cur(s);
    int id = -1;
    switch (t->k) {
    case T_NUM:
        s->pos++;
        id = mk(s, N_NUM, -1, -1);
        if (id >= 0) {
            s->node[id].s = t->s;
            s->node[id].len = t->len;
        }
        break;
    case T_ID:
        s->pos++;
        if (cur(s)->k == T_SUB) {
            s->pos++;
            id = parse_subscript_name(s, t->s, t->len);
            break;
        }
        id = mk(s, N_SYM, -1, -1);
        if (id >= 0) {
            s->node[id].s = t->s;
            s->node[id].len = t->len;
            if (t->len == 1 && t->s[0] == 'i')
                s->node[id].k = N_I;
            else if (t->len == 1 && t->s[0] == 'e')
                s->node[id].k = N_E;
        }
        break;
    case T_PI: s->pos++; id = mk(s, N_PI, -1, -1); break;
    case T_INF: s->pos++; id = mk(s, N_INF, -1, -1); break;
    case T_LP:
    case T_LB: {
        int open = t->k;
        s->pos++;
        int closed = 0;
        int el = list_until(s, T_RP, T_RB, &closed);
        if (el < 0)
            return -1;
        if (!closed)
            return fail(s, "unbalanced brackets");
        int close = s->tok[s->pos - 1].k;
        int flags = (open == T_LP ? VQ_LOPEN : 0) | (close == T_RP ? VQ_ROPEN : 0);
        vq_node *e = &s->node[el];
        if (e->k == N_LIST && e->n >= 2) {
            e->k = N_TUPLE;
            e->f = (uint8_t)flags;
            id = el;
        } else if (flags == (VQ_LOPEN | VQ_ROPEN) || (flags == 0 && e->k != N_LIST)) {
            id = el; /* grouping */
        } else
            return fail(s, "bad interval");
        break;
    }
    case T_LBR: {
        s->pos++;
        int closed = 0;
        id = list_until(s, T_RBR, T_RBR, &closed);
        if (id >= 0 && !closed)
            return fail(s, "unbalanced braces");
        break;
    }
    case T_LSET: {
        s->pos++;
        if (cur(s)->k == T_RSET) {
            s->pos++;
            id = mk_list(s, N_SET, NULL, 0);
            break;
        }
        int closed = 0;
        int el = list_until(s, T_RSET, T_RSET, &closed);
        if (el < 0)
            return -1;
        if (!closed)
            return fail(s, "unbalanced set braces");
        if (s->node[el].k == N_LIST)
            s->node[el].k = N_SET;
        else
            el = mk_list(s, N_SET, &el, 1);
        id = el;
        break;
    }
    case T_BAR: {
        s->pos++;
        int e = parse_union(s);
        if (e < 0)
            return -1;
        if (cur(s)->k != T_BAR)
            return fail(s, "unbalanced |");
        s->pos++;
        id = mk(s, N_ABS, e, -1);
        break;
    }
    case T_FRAC: {
        s->pos++;
        int a = parse_arg(s);
        if (a < 0)
            return -1;
        int b = parse_arg(s);
        if (b < 0)
            return -1;
        id = mk(s, N_DIV, a, b);
        break;
    }
    case T_BINOM: {
        s->pos++;
        int a = parse_arg(s);
        if (a < 0)
            return -1;
        int b = parse_arg(s);
        if (b < 0)
            return -1;
        id = mk(s, N_BINOM, a, b);
        break;
    }
    case T_SQRT: {
        s->pos++;
        int idx = -1;
        if (cur(s)->k == T_LB) {
            s->pos++;
            int closed = 0;
            idx = list_until(s, T_RB, T_RB, &closed);
            if (idx < 0 || !closed)
                return fail(s, "bad root index");
        }
        int a;
        if (cur(s)->k == T_LP || (t->sub == 1 && cur(s)->k != T_LBR)) /* sqrt(2), unicode root */
            a = parse_primary(s);
        else
            a = parse_arg(s);
        if (a < 0)
            return -1;
        id = mk(s, N_ROOT, a, idx);
        break;
    }
    case T_FUNC: {
        int fid = t->sub;
        s->pos++;
        int base = -1, pw = -1;
        if (cur(s)->k == T_SUB && fid == F_LOG) {
            s->pos++;
            base = parse_arg(s);
            if (base < 0)
                return -1;
        }
        if (cur(s)->k == T_POW) {
            s->pos++;
            pw = cur(s)->k == T_LBR ? parse_arg(s) : parse_primary(s);
            if (pw < 0)
                return -1;
        }
        int a;
        if (cur(s)->k == T_LP)
            a = parse_primary(s);
        else {
            /* \sin 2x is sin(2x): absorb directly following letters and pi */
            a = parse_unary(s);
            while (a >= 0 && (cur(s)->k == T_ID || cur(s)->k == T_PI)) {
                int b = parse_power(s);
                a = b < 0 ? -1 : mk(s, N_MUL, a, b);
            }
        }
        if (a < 0)
            return -1;
        id = mk(s, N_FUNC, a, base);
        if (id < 0)
            return -1;
        s->node[id].f = (uint8_t)fid;
        if (pw >= 0)
            id = mk(s, N_POW, id, pw);
        break;
    }
    case T_BEGIN:
        s->pos++;
        id = parse_matrix(s);
        break;
    case T_WORD: {
        /* a text answer: consecutive words (and letters) joined by spaces */
        char buf[256];
        size_t n = 0;
        while (cur(s)->k == T_WORD || cur(s)->k == T_ID) {
            vq_tok *w = cur(s);
            if (w->k == T_WORD && (!strcmp(w->s, "or") || !strcmp(w->s, "and")) && n)
                break;
            size_t l = w->len;
            if (n + l + 2 > sizeof buf)
                return fail(s, "text too long");
            if (n)
                buf[n++] = ' ';
            for (size_t i = 0; i < l; i++)
                buf[n++] = (char)(w->s[i] | (w->k == T_ID ? 0x20 : 0));
            s->pos++;
        }
        id = mk(s, N_TEXT, -1, -1);
        if (id >= 0) {
            s->node[id].s = keep(s, buf, n);
            s->node[id].len = (int32_t)n;
            if (!s->node[id].s)
                return fail(s, "answer too long");
        }
        break;
    }
    default:
        return fail(s, t->k == T_EOF ? "unexpected end" : "unexpected token");
    }
    s->depth--;
    return id;
}

static int parse_postfix(P *s, int e)
{
    for (;;) {
        int k = cur(s)->k;
        if (k == T_BANG)
            e = mk(s, N_FACT, e, -1);
        else if (k == T_PCT)
            e = mk(s, N_PCT, e, -1);
        else if (k == T_CIRC)
            e = mk(s, N_DEG, e, -1);
        else if (k == T_SUB && is_int_num(s, e)) {
            /* base subscript: 1011_2, 1011_{2}, 25_{\text{eight}}? (digits only) */
            s->pos++;
            int b = parse_arg(s);
            if (b < 0 || !is_int_num(s, b))
                return fail(s, "bad base subscript");
            e = mk(s, N_BASE, e, b);
            continue;
        } else
            return e;
        if (e < 0)
            return -1;
        s->pos++;
    }
}

static int parse_power(P *s)
{
    int b = parse_primary(s);
    if (b < 0)
        return -1;
    b = parse_postfix(s, b);
    while (b >= 0 && cur(s)->k == T_POW) {
        s->pos++;
        if (cur(s)->k == T_CIRC) {
            s->pos++;
            b = mk(s, N_DEG, b, -1);
        } else if (cur(s)->k == T_LBR && s->tok[s->pos + 1].k == T_CIRC &&
                   s->tok[s->pos + 2].k == T_RBR) {
            s->pos += 3;
            b = mk(s, N_DEG, b, -1);
        } else {
            int e;
            if (cur(s)->k == T_LBR)
                e = parse_arg(s);
            else
                e = parse_unary(s);
            if (e < 0)
                return -1;
            b = mk(s, N_POW, b, e);
        }
        if (b >= 0)
            b = parse_postfix(s, b);
    }
    return b;
}

static int parse_unary(P *s)
{
    if (enter(s))
        return -1;
    int r;
    if (cur(s)->k == T_MINUS) {
        s->pos++;
        int e = parse_unary(s);
        r = e < 0 ? -1 : mk(s, N_NEG, e, -1);
    } else if (cur(s)->k == T_PLUS) {
        s->pos++;
        r = parse_unary(s);
    } else
        r = parse_power(s);
    s->depth--;
    return r;
}

static int is_sep_word(vq_tok *t)
{
    return t->k == T_WORD && (!strcmp(t->s, "or") || !strcmp(t->s, "and"));
}

/* Scale words read as factors after a number ("1 million" = 1000000,
 * "3 tenths" = 3/10). */
static const struct {
    const char *word, *value;
    int divide;
} scales[] = {
    {"hundred", "100", 0}, {"hundreds", "100", 0}, {"thousand", "1000", 0}, {"thousands", "1000", 0},
    {"million", "1000000", 0}, {"millions", "1000000", 0}, {"billion", "1000000000", 0},
    {"billions", "1000000000", 0}, {"trillion", "1000000000000", 0}, {"trillions", "1000000000000", 0},
    {"dozen", "12", 0}, {"dozens", "12", 0}, {"tenths", "10", 1}, {"hundredths", "100", 1},
    {"thousandths", "1000", 1}, {"millionths", "1000000", 1},
};

/* Words that make a number a fraction of unknown reading ("3 quarters" of
 * a dollar or 3/4, "2 thirds"): the answer is undecided. */
static const char *const fraction_words[] = {
    "half", "halves", "third", "thirds", "quarter", "quarters", "fourth", "fourths", "fifth",
    "fifths", "sixth", "sixths", "seventh", "sevenths", "eighth", "eighths", "ninth", "ninths",
    "tenth", "hundredth", "thousandth", "millionth", NULL,
};

/* 1 + index into scales for a scale word, -1 for a fraction word, else 0. */
static int scale_word(const char *w)
{
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++)
        if (!strcmp(w, scales[i].word))
            return (int)i + 1;
    for (int i = 0; fraction_words[i]; i++)
        if (!strcmp(w, fraction_words[i]))
            return -1;
    return 0;
}

/* A single letter inside \text{} or \mathrm{} ("5\text{ m}", "3
 * \mathrm{m}^2"): a unit after a number, except e and i, which stay
 * constants (\mathrm{e}). */
static int wrapped_unit(const vq_tok *t)
{
    return t->k == T_ID && t->sub == 1 && t->s[0] != 'e' && t->s[0] != 'i';
}

static int parse_term(P *s)
{
    int first_tok = s->pos;
    int f = parse_unary(s);
    if (f < 0)
        return -1;
    int nf = 1;
    for (;;) {
        vq_tok *t = cur(s);
        if (t->k == T_MUL || t->k == T_DIV || t->k == T_COLON) {
            s->pos++;
            int g = parse_unary(s);
            if (g < 0)
                return -1;
            f = mk(s, t->k == T_MUL ? N_MUL : N_DIV, f, g);
            nf++;
        } else if ((t->k == T_WORD && !is_sep_word(t)) || (wrapped_unit(t) && s->tok[s->pos - 1].k == T_NUM)) {
            /* a scale word right after the term multiplies it: "1 million" */
            int sc = t->k == T_WORD ? scale_word(t->s) : 0;
            if (sc < 0)
                return fail(s, "fraction word after a number");
            if (sc > 0) {
                int m = mk(s, N_NUM, -1, -1);
                if (m < 0)
                    return -1;
                s->node[m].s = scales[sc - 1].value;
                s->node[m].len = (int32_t)strlen(scales[sc - 1].value);
                f = mk(s, scales[sc - 1].divide ? N_DIV : N_MUL, f, m);
                s->pos++;
                if (f < 0)
                    return -1;
                continue;
            }
            /* trailing units: "5 cm", "12 \text{ inches}^2"; never "5 is not" */
            while ((cur(s)->k == T_WORD && !is_sep_word(cur(s))) || wrapped_unit(cur(s))) {
                const char *w = cur(s)->k == T_WORD ? cur(s)->s : "";
                if (scale_word(w))
                    return fail(s, "scale word after a unit");
                if (!strcmp(w, "not") || !strcmp(w, "no") || !strcmp(w, "never") || !strcmp(w, "wrong") ||
                    !strcmp(w, "incorrect") || !strcmp(w, "impossible") || !strcmp(w, "none") ||
                    !strcmp(w, "except") || !strcmp(w, "than") || !strcmp(w, "approximately") ||
                    !strcmp(w, "about") || !strcmp(w, "maybe"))
                    return fail(s, "qualifying words after the answer");
                s->pos++;
                if (cur(s)->k == T_POW && s->tok[s->pos + 1].k == T_NUM)
                    s->pos += 2;
            }
            /* "dollars", "cm" etc. end the term */
        } else if (starts_factor(t->k)) {
            /* implicit product; a number right after a number is an error */
            int prevnum = s->node[f].k == N_NUM || (s->node[f].k == N_NEG && s->node[s->node[f].a].k == N_NUM);
            if (t->k == T_NUM && (prevnum || s->tok[s->pos - 1].k == T_NUM)) {
                /* plain mixed number "137 1/2": integer, then integer/integer */
                vq_tok *t2 = &s->tok[s->pos + 1], *t3 = t2->k == T_DIV ? &s->tok[s->pos + 2] : t2;
                int whole = s->node[f].k == N_NEG ? s->node[f].a : f;
                if (nf == 1 && is_int_num(s, whole) && t2->k == T_DIV && t3->k == T_NUM &&
                    !memchr(t->s, '.', t->len) && !memchr(t3->s, '.', t3->len) &&
                    !starts_factor(s->tok[s->pos + 3].k) && s->tok[s->pos + 3].k != T_POW &&
                    s->tok[s->pos + 3].k != T_MUL && s->tok[s->pos + 3].k != T_DIV) {
                    int a = mk(s, N_NUM, -1, -1), b = mk(s, N_NUM, -1, -1);
                    if (a < 0 || b < 0)
                        return -1;
                    s->node[a].s = t->s;
                    s->node[a].len = t->len;
                    s->node[b].s = t3->s;
                    s->node[b].len = t3->len;
                    s->pos += 3;
                    int fr = mk(s, N_DIV, a, b);
                    int sum = fr < 0 ? -1 : mk(s, N_ADD, whole, fr);
                    f = sum < 0 || whole == f ? sum : mk(s, N_NEG, sum, -1);
                    if (f < 0)
                        return -1;
                    nf++;
                    continue;
                }
                return fail(s, "two numbers in a row");
            }
            if (t->k == T_FRAC && nf == 1 && s->pos > first_tok && prevnum) {
                /* mixed number 2\frac{1}{2} */
                int neg = s->node[f].k == N_NEG;
                int whole = neg ? s->node[f].a : f;
                int g = parse_unary(s);
                if (g < 0)
                    return -1;
                if (is_int_num(s, whole) && s->node[g].k == N_DIV && is_int_num(s, s->node[g].a) &&
                    is_int_num(s, s->node[g].b)) {
                    f = mk(s, N_ADD, whole, g);
                    if (neg && f >= 0)
                        f = mk(s, N_NEG, f, -1);
                } else
                    f = mk(s, N_MUL, f, g);
                nf++;
                if (f < 0)
                    return -1;
                continue;
            }
            /* f(x), p(a,b): a one-letter name right before a parenthesis */
            int call = t->k == T_LP && s->node[f].k == N_SYM && s->node[f].len == 1;
            int g = parse_unary(s);
            if (g < 0)
                return -1;
            f = mk(s, N_MUL, f, g);
            if (f >= 0 && call)
                s->node[f].f = VQ_CALL;
            nf++;
        } else
            return f;
        if (f < 0)
            return -1;
    }
}

static int parse_sum(P *s)
{
    int e;
    if (cur(s)->k == T_PM || cur(s)->k == T_MP) {
        s->pos++;
        int t = parse_term(s);
        if (t < 0)
            return -1;
        e = mk(s, N_PM, -1, t);
    } else
        e = parse_term(s);
    while (e >= 0) {
        int k = cur(s)->k;
        if (k != T_PLUS && k != T_MINUS && k != T_PM && k != T_MP)
            break;
        s->pos++;
        int t = parse_term(s);
        if (t < 0)
            return -1;
        if (k == T_PLUS)
            e = mk(s, N_ADD, e, t);
        else if (k == T_MINUS) {
            int n = mk(s, N_NEG, t, -1);
            e = n < 0 ? -1 : mk(s, N_ADD, e, n);
        } else
            e = mk(s, N_PM, e, t);
    }
    return e;
}

static int is_rel(int k)
{
    return k == T_EQ || k == T_LT || k == T_LE || k == T_GT || k == T_GE || k == T_NE || k == T_IN;
}

static int parse_rel(P *s)
{
    int e = parse_sum(s);
    while (e >= 0 && is_rel(cur(s)->k)) {
        int k = cur(s)->k;
        s->pos++;
        int r = parse_sum(s);
        if (r < 0)
            return -1;
        if (k == T_EQ || k == T_IN)
            e = mk(s, N_EQ, e, r);
        else {
            e = mk(s, N_REL, e, r);
            if (e >= 0)
                s->node[e].f = (uint8_t)k;
        }
    }
    return e;
}

static int parse_union(P *s)
{
    int e = parse_rel(s);
    if (e < 0 || cur(s)->k != T_CUP)
        return e;
    int el[VQ_MAX_LIST];
    int n = 0;
    el[n++] = e;
    while (cur(s)->k == T_CUP) {
        s->pos++;
        if (n >= VQ_MAX_LIST)
            return fail(s, "union too long");
        e = parse_rel(s);
        if (e < 0)
            return -1;
        el[n++] = e;
    }
    return mk_list(s, N_UNION, el, n);
}

/* Elements separated by , ; "or" "and" up to close1/close2 (consumed, *closed
 * set) or the end. One element without separators is returned as itself. */
static int list_until(P *s, int close1, int close2, int *closed)
{
    if (enter(s))
        return -1;
    int el[VQ_MAX_LIST];
    int n = 0, seps = 0;
    *closed = 0;
    for (;;) {
        int k = cur(s)->k;
        if (k == close1 || k == close2) {
            if (k != T_EOF)
                s->pos++;
            *closed = 1;
            break;
        }
        if (k == T_EOF || k == T_RP || k == T_RB || k == T_RBR || k == T_RSET) {
            if (close1 == T_EOF && k == T_EOF)
                break;
            return fail(s, "unbalanced brackets");
        }
        if (k == T_COMMA || k == T_SEMI || is_sep_word(cur(s))) {
            s->pos++;
            seps++;
            continue;
        }
        if (n >= VQ_MAX_LIST)
            return fail(s, "list too long");
        int e = parse_union(s);
        if (e < 0)
            return -1;
        el[n++] = e;
        k = cur(s)->k;
        if (!(k == close1 || k == close2 || k == T_EOF || k == T_COMMA || k == T_SEMI ||
              is_sep_word(cur(s)) || k == T_RP || k == T_RB || k == T_RBR || k == T_RSET))
            return fail(s, "unexpected token");
    }
    s->depth--;
    if (n == 0)
        return fail(s, "empty");
    if (n == 1 && seps == 0)
        return el[0];
    return mk_list(s, N_LIST, el, n);
}

int qe_verify_parse(qe_verify_scratch *s)
{
    s->depth = 0;
    s->pos = 0;
    int closed = 0;
    int r = list_until(s, T_EOF, T_EOF, &closed);
    if (r >= 0 && cur(s)->k != T_EOF)
        return fail(s, "trailing tokens");
    return r;
}
