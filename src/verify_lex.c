/* verify_lex: LaTeX / plain-math answer text to tokens.
 *
 * Formatting is dropped here ($, \left, \right, spacing commands, \text{} and
 * similar wrappers become transparent), numbers lose their thousands
 * separators, and letter runs become either single-letter variables (for
 * implicit products like 2ab) or words (units, text answers). */
#include "verify_int.h"

#include <string.h>
#include <strings.h>

typedef struct {
    qe_verify_scratch *s;
    const char *p, *end;
    char *out;     /* text buffer */
    size_t olen, ocap;
    int brace[VQ_MAX_DEPTH]; /* 1 = transparent brace, 2 = of a text wrapper (\text{}, \mathrm{}) */
    int nbrace;
    int nest;      /* ( [ \{ nesting, for the thousands rule */
    int in_matrix; /* inside \begin{...matrix} */
} lexer;

static const char *save(lexer *L, const char *t, size_t n)
{
    if (L->olen + n + 1 > L->ocap)
        return NULL;
    char *d = L->out + L->olen;
    memcpy(d, t, n);
    d[n] = 0;
    L->olen += n + 1;
    return d;
}

static int emit(lexer *L, int k, int sub, const char *t, size_t n)
{
    qe_verify_scratch *s = L->s;
    if (s->ntok >= VQ_MAX_TOK - 1) {
        s->perr = "too many tokens";
        return -1;
    }
    vq_tok *tk = &s->tok[s->ntok++];
    tk->k = (uint8_t)k;
    tk->sub = (uint8_t)sub;
    tk->s = NULL;
    tk->len = 0;
    if (t) {
        tk->s = save(L, t, n);
        if (!tk->s) {
            s->perr = "answer too long";
            return -1;
        }
        tk->len = (uint16_t)n;
    }
    return 0;
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_dig(int c)
{
    return c >= '0' && c <= '9';
}

struct cmd {
    const char *name;
    int tok, sub;
};

enum { X_SKIP = 100, X_WRAP, X_LEFT, X_BEGIN, X_END, X_SKIPARG };

static const struct cmd cmds[] = {
    {"frac", T_FRAC, 0}, {"dfrac", T_FRAC, 0}, {"tfrac", T_FRAC, 0}, {"cfrac", T_FRAC, 0},
    {"sqrt", T_SQRT, 0}, {"binom", T_BINOM, 0}, {"dbinom", T_BINOM, 0}, {"tbinom", T_BINOM, 0},
    {"choose", T_BAD, 0},
    {"pi", T_PI, 0}, {"infty", T_INF, 0}, {"infinity", T_INF, 0}, {"cdot", T_MUL, 0},
    {"times", T_MUL, 0}, {"ast", T_MUL, 0}, {"div", T_DIV, 0}, {"pm", T_PM, 0}, {"mp", T_MP, 0},
    {"le", T_LE, 0}, {"leq", T_LE, 0}, {"leqslant", T_LE, 0}, {"ge", T_GE, 0}, {"geq", T_GE, 0},
    {"geqslant", T_GE, 0}, {"ne", T_NE, 0}, {"neq", T_NE, 0}, {"lt", T_LT, 0}, {"gt", T_GT, 0},
    {"cup", T_CUP, 0}, {"in", T_IN, 0}, {"circ", T_CIRC, 0}, {"degree", T_CIRC, 0},
    {"lvert", T_BAR, 0}, {"rvert", T_BAR, 0}, {"vert", T_BAR, 0}, {"lbrace", T_LSET, 0},
    {"rbrace", T_RSET, 0}, {"colon", T_COLON, 0},
    {"sin", T_FUNC, F_SIN}, {"cos", T_FUNC, F_COS}, {"tan", T_FUNC, F_TAN}, {"sec", T_FUNC, F_SEC},
    {"csc", T_FUNC, F_CSC}, {"cot", T_FUNC, F_COT}, {"arcsin", T_FUNC, F_ASIN},
    {"arccos", T_FUNC, F_ACOS}, {"arctan", T_FUNC, F_ATAN}, {"sinh", T_FUNC, F_SINH},
    {"cosh", T_FUNC, F_COSH}, {"tanh", T_FUNC, F_TANH}, {"ln", T_FUNC, F_LN},
    {"log", T_FUNC, F_LOG}, {"lg", T_FUNC, F_LOG}, {"exp", T_FUNC, F_EXP},
    {"left", X_LEFT, 0}, {"right", X_LEFT, 0}, {"bigl", X_LEFT, 0}, {"bigr", X_LEFT, 0},
    {"Bigl", X_LEFT, 0}, {"Bigr", X_LEFT, 0}, {"big", X_LEFT, 0}, {"Big", X_LEFT, 0},
    {"biggl", X_LEFT, 0}, {"biggr", X_LEFT, 0}, {"displaystyle", X_SKIP, 0},
    {"textstyle", X_SKIP, 0}, {"quad", X_SKIP, 0}, {"qquad", X_SKIP, 0}, {"limits", X_SKIP, 0},
    {"text", X_WRAP, 1}, {"textbf", X_WRAP, 1}, {"textit", X_WRAP, 1}, {"textrm", X_WRAP, 1},
    {"textnormal", X_WRAP, 1}, {"mathrm", X_WRAP, 1}, {"mathbf", X_WRAP, 0},
    {"mathit", X_WRAP, 0}, {"mathsf", X_WRAP, 0}, {"mbox", X_WRAP, 1}, {"hbox", X_WRAP, 1},
    {"emph", X_WRAP, 1}, {"bm", X_WRAP, 0}, {"boldsymbol", X_WRAP, 0}, {"boxed", X_WRAP, 0},
    {"fbox", X_WRAP, 0}, {"operatorname", X_WRAP, 0}, {"mathbb", X_WRAP, 0},
    {"begin", X_BEGIN, 0}, {"end", X_END, 0}, {"dots", T_BAD, 0}, {"ldots", T_BAD, 0},
    {"cdots", T_BAD, 0}, {"approx", T_BAD, 0}, {"mid", T_BAD, 0}, {"sum", T_BAD, 0},
    {"int", T_BAD, 0}, {"prod", T_BAD, 0}, {"lim", T_BAD, 0}, {"overline", T_BAD, 0},
    {"cap", T_BAD, 0}, {"setminus", T_BAD, 0}, {"sim", T_BAD, 0}, {"equiv", T_BAD, 0},
    {"pmod", T_BAD, 0}, {"bmod", T_BAD, 0}, {"mod", T_BAD, 0}, {"to", T_BAD, 0},
    {"rightarrow", T_BAD, 0}, {"Rightarrow", T_BAD, 0}, {"implies", T_BAD, 0},
    {"iff", T_BAD, 0}, {"subset", T_BAD, 0}, {"subseteq", T_BAD, 0}, {"emptyset", T_BAD, 0},
    {"varnothing", T_BAD, 0}, {"angle", T_BAD, 0}, {"triangle", T_BAD, 0},
    {"prime", T_BAD, 0}, {"partial", T_BAD, 0}, {"nabla", T_BAD, 0}, {"forall", T_BAD, 0},
    {"exists", T_BAD, 0}, {"neg", T_BAD, 0}, {"land", T_BAD, 0}, {"lor", T_BAD, 0},
    {"wedge", T_BAD, 0}, {"vee", T_BAD, 0}, {"perp", T_BAD, 0}, {"parallel", T_BAD, 0},
    {"cong", T_BAD, 0}, {"propto", T_BAD, 0}, {"hat", T_BAD, 0}, {"vec", T_BAD, 0},
    {"bar", T_BAD, 0}, {"dot", T_BAD, 0}, {"tilde", T_BAD, 0}, {"widehat", T_BAD, 0},
    {"overrightarrow", T_BAD, 0}, {"underline", T_BAD, 0}, {"not", T_BAD, 0},
    {"lfloor", T_BAD, 0}, {"rfloor", T_BAD, 0}, {"lceil", T_BAD, 0}, {"rceil", T_BAD, 0},
    {"gcd", T_BAD, 0}, {"max", T_BAD, 0}, {"min", T_BAD, 0}, {"det", T_BAD, 0},
    {"arg", T_BAD, 0}, {"deg", T_BAD, 0}, {"dim", T_BAD, 0}, {"ker", T_BAD, 0},
    {"Re", T_BAD, 0}, {"Im", T_BAD, 0}, {"cdotp", T_MUL, 0}, {"over", T_BAD, 0},
    {"hline", X_SKIP, 0}, {"phantom", X_SKIPARG, 0}, {"label", X_SKIPARG, 0},
    {"tag", X_SKIPARG, 0}, {"color", X_SKIPARG, 0}, {"textcolor", X_SKIPARG, 0},
};

/* Short letter runs that are words, not products of variables. */
static const char *const words[] = {
    "or", "and", "cm", "mm", "km", "in", "ft", "kg", "mg", "ml", "hr", "hrs", "min", "sec", "yd",
    "mi", "lb", "lbs", "oz", "no", "yes", "odd", "all", "not", "the", "is", "of", "are", "per",
    "sq", "mph", "cc", "am", "pm", "at", "to", "for", "on", "by", "it", "be", "as", "an", "th",
    "nd", "rd", "st", "inf", "nan", "und", "dne", "has", "two", "one", "six", "ten", "cup",
    "day", "sum", "way", "max", "mod", "gcd", "lcm", "det", "let", "so", "we", "get", "its",
    "feet", "cents", NULL,
};

static const struct {
    const char *name;
    int tok, sub;
} plainfn[] = {
    {"sin", T_FUNC, F_SIN}, {"cos", T_FUNC, F_COS}, {"tan", T_FUNC, F_TAN}, {"sec", T_FUNC, F_SEC},
    {"csc", T_FUNC, F_CSC}, {"cot", T_FUNC, F_COT}, {"ln", T_FUNC, F_LN}, {"log", T_FUNC, F_LOG},
    {"exp", T_FUNC, F_EXP}, {"sqrt", T_SQRT, 0}, {"pi", T_PI, 0}, {"arcsin", T_FUNC, F_ASIN},
    {"arccos", T_FUNC, F_ACOS}, {"arctan", T_FUNC, F_ATAN}, {"infty", T_INF, 0},
    {"infinity", T_INF, 0},
};

static int push_brace(lexer *L, int transparent)
{
    if (L->nbrace >= VQ_MAX_DEPTH) {
        L->s->perr = "braces nested too deeply";
        return -1;
    }
    L->brace[L->nbrace++] = transparent;
    return 0;
}

static void skip_space(lexer *L)
{
    while (L->p < L->end && (*L->p == ' ' || *L->p == '\t' || *L->p == '\n' || *L->p == '\r'))
        L->p++;
}

/* Reads {name} after \begin / \end into buf. */
static int read_env(lexer *L, char *buf, size_t cap)
{
    skip_space(L);
    if (L->p >= L->end || *L->p != '{')
        return -1;
    L->p++;
    size_t n = 0;
    while (L->p < L->end && *L->p != '}') {
        if (n + 1 < cap)
            buf[n++] = *L->p;
        L->p++;
    }
    buf[n] = 0;
    if (L->p < L->end)
        L->p++;
    return 0;
}

static int lex_command(lexer *L);

static int lex_command(lexer *L)
{
    const char *p = L->p + 1; /* after the backslash */
    if (p >= L->end) {
        L->p = L->end; /* a trailing lone backslash */
        return 0;
    }
    if (!is_alpha((unsigned char)*p)) {
        L->p = p + 1;
        switch (*p) {
        case '{': L->nest++; return emit(L, T_LSET, 0, NULL, 0);
        case '}': L->nest--; return emit(L, T_RSET, 0, NULL, 0);
        case '\\':
            /* "\\frac" outside a matrix is a doubly escaped \frac */
            if (!L->in_matrix && L->p < L->end && is_alpha((unsigned char)*L->p)) {
                L->p--;
                return lex_command(L);
            }
            return emit(L, T_ROWSEP, 0, NULL, 0);
        case '%': return emit(L, T_PCT, 0, NULL, 0);
        case '|': return emit(L, T_BAR, 0, NULL, 0);
        case '#': case '&': case '_': return emit(L, T_BAD, 0, NULL, 0);
        default: return 0; /* \! \, \; \: \  \$ \( \) \[ \] */
        }
    }
    const char *q = p;
    while (q < L->end && is_alpha((unsigned char)*q))
        q++;
    size_t n = (size_t)(q - p);
    L->p = q;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strlen(cmds[i].name) != n || memcmp(cmds[i].name, p, n))
            continue;
        switch (cmds[i].tok) {
        case X_SKIP: return 0;
        case X_LEFT:
            skip_space(L);
            if (L->p < L->end && *L->p == '.')
                L->p++;
            return 0;
        case X_WRAP:
            skip_space(L);
            if (L->p < L->end && *L->p == '{') {
                L->p++;
                return push_brace(L, cmds[i].sub ? 2 : 1);
            }
            return 0;
        case X_SKIPARG:
            skip_space(L);
            if (L->p < L->end && *L->p == '{') {
                int d = 0;
                while (L->p < L->end) {
                    if (*L->p == '{')
                        d++;
                    else if (*L->p == '}' && --d == 0) {
                        L->p++;
                        break;
                    }
                    L->p++;
                }
            }
            return 0;
        case X_BEGIN:
        case X_END: {
            char env[32];
            if (read_env(L, env, sizeof env))
                return emit(L, T_BAD, 0, NULL, 0);
            int is_mat = strstr(env, "matrix") != NULL;
            if (!strcmp(env, "array")) {
                is_mat = 1;
                if (cmds[i].tok == X_BEGIN) {
                    char spec[32];
                    read_env(L, spec, sizeof spec);
                }
            }
            if (!is_mat)
                return emit(L, T_BAD, 0, NULL, 0);
            L->in_matrix += cmds[i].tok == X_BEGIN ? 1 : -1;
            return emit(L, cmds[i].tok == X_BEGIN ? T_BEGIN : T_END, 1, NULL, 0);
        }
        default:
            return emit(L, cmds[i].tok, cmds[i].sub, NULL, 0);
        }
    }
    /* unknown command: a named symbol (\alpha, \theta, ...) */
    return emit(L, T_ID, 0, p - 1, n + 1);
}

/* The plain decimal of mantissa buf[0..n) (digits, at most one '.') times
 * 10^ex, written back into buf: 1.5e3 -> 1500, 1e-2 -> 0.01. Returns the
 * new length, or 0 if it does not fit in cap bytes. */
static size_t sci_to_decimal(char *buf, size_t n, size_t cap, long ex)
{
    char dig[512];
    size_t nd = 0, before = n;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '.')
            before = nd;
        else
            dig[nd++] = buf[i];
    }
    long point = (long)before + ex; /* digits before the point */
    long lead = point < 1 ? 1 - point : 0, trail = point > (long)nd ? point - (long)nd : 0;
    if (ex > 100000 || ex < -100000 || (size_t)((long)nd + lead + trail + 2) > cap || nd > sizeof dig)
        return 0;
    size_t o = 0;
    for (long i = 0; i < lead; i++) { /* 0.0…: the zeros before the digits */
        buf[o++] = '0';
        if (i == 0)
            buf[o++] = '.';
    }
    for (size_t i = 0; i < nd; i++) {
        if (lead == 0 && (long)i == point && i > 0)
            buf[o++] = '.';
        buf[o++] = dig[i];
    }
    for (long i = 0; i < trail; i++)
        buf[o++] = '0';
    buf[o] = 0;
    /* 0.5e1 -> "05" -> "5" */
    size_t z = 0;
    while (z + 1 < o && buf[z] == '0' && buf[z + 1] != '.')
        z++;
    memmove(buf, buf + z, o - z + 1);
    return o - z;
}

static int lex_number(lexer *L)
{
    char buf[512];
    size_t n = 0;
    const char *p = L->p;
    int ndig = 0, seen_dot = 0;
    while (p < L->end) {
        char c = *p;
        if (is_dig(c)) {
            if (n + 2 >= sizeof buf) {
                L->s->perr = "number too long";
                return -1;
            }
            buf[n++] = c;
            ndig++;
            p++;
            continue;
        }
        if (c == '.' && !seen_dot && p + 1 < L->end && is_dig(p[1])) {
            seen_dot = 1;
            buf[n++] = '.';
            p++;
            continue;
        }
        /* thousands separators: "1,234" (top level only) and "1{,}234" */
        if (!seen_dot && ndig >= 1) {
            const char *g = NULL;
            if (c == ',' && L->nest == 0) {
                g = p + 1;
                if (g + 1 < L->end && g[0] == '\\' && g[1] == '!') {
                    g += 2;
                    while (g < L->end && *g == ' ')
                        g++;
                }
            }
            else if (c == '{' && p + 2 < L->end && p[1] == ',' && p[2] == '}')
                g = p + 3;
            else if (c == '\\' && p + 1 < L->end && p[1] == '!' && p + 2 < L->end && p[2] == ',')
                g = p + 3;
            if (g && g + 3 <= L->end && is_dig(g[0]) && is_dig(g[1]) && is_dig(g[2]) &&
                (g + 3 == L->end || !is_dig(g[3])) && (ndig <= 3 || (c != ','))) {
                p = g;
                ndig = 0;
                continue;
            }
        }
        break;
    }
    /* scientific notation glued to the number: 1.5e3, 1E-2, 1.0e+3 (not 2e,
     * e^2, 2e^{3}, 3e+x, 2e3x: those keep e as Euler's number) */
    if (p < L->end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        int neg = 0;
        if (q < L->end && (*q == '+' || *q == '-'))
            neg = *q++ == '-';
        const char *d = q;
        long ex = 0;
        while (q < L->end && is_dig(*q)) {
            if (ex < 100000)
                ex = ex * 10 + (*q - '0');
            q++;
        }
        if (q > d && !(q < L->end && (is_alpha(*q) || (*q == '.' && q + 1 < L->end && is_dig(q[1]))))) {
            n = sci_to_decimal(buf, n, sizeof buf, neg ? -ex : ex);
            if (!n) {
                L->s->perr = "number too long";
                return -1;
            }
            p = q;
        }
    }
    L->p = p;
    return emit(L, T_NUM, 0, buf, n);
}

/* A short known word, in lower case or capitalised ("No"); all-capital runs
 * such as "AM" or "NO" stay products of point names. */
static int is_word(const char *p, size_t n)
{
    int upper = 0;
    for (size_t i = 1; i < n; i++)
        upper |= p[i] >= 'A' && p[i] <= 'Z';
    if (upper)
        return 0;
    for (int i = 0; words[i]; i++)
        if (strlen(words[i]) == n && !strncasecmp(words[i], p, n))
            return 1;
    return 0;
}

static int lex_letters(lexer *L)
{
    const char *p = L->p, *q = p;
    while (q < L->end && is_alpha((unsigned char)*q))
        q++;
    size_t n = (size_t)(q - p);
    L->p = q;
    if (n == 1) /* sub 1: a letter in \text{} or \mathrm{}, maybe a unit */
        return emit(L, T_ID, L->nbrace > 0 && L->brace[L->nbrace - 1] == 2, p, 1);
    for (size_t i = 0; i < sizeof plainfn / sizeof plainfn[0]; i++)
        if (strlen(plainfn[i].name) == n && !memcmp(plainfn[i].name, p, n))
            return emit(L, plainfn[i].tok, plainfn[i].sub, NULL, 0);
    if ((n == 3 && !memcmp(p, "pct", 3)) || (n == 7 && !memcmp(p, "percent", 7)))
        return emit(L, T_PCT, 0, NULL, 0);
    if (n >= 4 || is_word(p, n)) {
        char low[64];
        size_t m = n < sizeof low ? n : sizeof low;
        for (size_t i = 0; i < m; i++)
            low[i] = (char)(p[i] | 0x20);
        return emit(L, T_WORD, 0, low, m);
    }
    for (size_t i = 0; i < n; i++)
        if (emit(L, T_ID, 0, p + i, 1))
            return -1;
    return 0;
}

static int lex_utf8(lexer *L)
{
    const unsigned char *u = (const unsigned char *)L->p;
    size_t left = (size_t)(L->end - L->p);
    static const struct {
        const char *seq;
        int tok;
    } map[] = {
        {"\xc2\xb0", T_CIRC}, {"\xc3\x97", T_MUL}, {"\xc3\xb7", T_DIV}, {"\xcf\x80", T_PI},
 {"\xe2\x88\x92", T_MINUS}, {"\xe2\x89\xa4", T_LE},
        {"\xe2\x89\xa5", T_GE}, {"\xe2\x89\xa0", T_NE}, {"\xe2\x88\x9e", T_INF},
        {"\xc2\xb1", T_PM}, {"\xe2\x88\xaa", T_CUP}, {"\xe2\x8b\x85", T_MUL},
        {"\xc2\xb7", T_MUL}, {"\xe2\x80\x93", T_MINUS},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        size_t m = strlen(map[i].seq);
        if (m <= left && !memcmp(u, map[i].seq, m)) {
            L->p += m;
            return emit(L, map[i].tok, 0, NULL, 0);
        }
    }
    if (left >= 3 && !memcmp(u, "\xe2\x88\x9a", 3)) {
        L->p += 3; /* unicode root: takes a whole number, unlike \sqrt12 */
        return emit(L, T_SQRT, 1, NULL, 0);
    }
    if (left >= 2 && u[0] == 0xc2 && (u[1] == 0xb2 || u[1] == 0xb3)) {
        L->p += 2;
        if (emit(L, T_POW, 0, NULL, 0))
            return -1;
        return emit(L, T_NUM, 0, u[1] == 0xb2 ? "2" : "3", 1);
    }
    /* any other character (currency signs, letters of other scripts) */
    size_t m = 1;
    if (u[0] >= 0xc0) {
        while (m < left && (u[m] & 0xc0) == 0x80)
            m++;
    }
    L->p += m;
    return u[0] >= 0xc0 ? emit(L, T_WORD, 0, "?", 1) : 0;
}

int qe_verify_lex(qe_verify_scratch *s, int side, const char *src, size_t len)
{
    lexer L;
    memset(&L, 0, sizeof L);
    L.s = s;
    L.p = src;
    L.end = src + len;
    L.out = s->text[side];
    L.ocap = sizeof s->text[side];
    s->ntok = 0;
    s->pos = 0;
    s->perr = NULL;
    if (len > VQ_MAX_INPUT) {
        s->perr = "answer too long";
        return -1;
    }
    while (L.p < L.end) {
        unsigned char c = (unsigned char)*L.p;
        int r = 0;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '~' || c == '$' || c == '"' || c == '`') {
            L.p++;
            continue;
        }
        if (c == '\\')
            r = lex_command(&L);
        else if (is_dig(c) || (c == '.' && L.p + 1 < L.end && is_dig((unsigned char)L.p[1])))
            r = lex_number(&L);
        else if (is_alpha(c))
            r = lex_letters(&L);
        else if (c >= 0x80)
            r = lex_utf8(&L);
        else {
            int k = T_BAD;
            L.p++;
            char nx = L.p < L.end ? *L.p : 0;
            switch (c) {
            case '+': k = T_PLUS; break;
            case '-': k = T_MINUS; break;
            case '*': k = T_MUL; if (nx == '*') { L.p++; k = T_POW; } break;
            case '/': k = T_DIV; break;
            case '^': k = T_POW; break;
            case '_': k = T_SUB; break;
            case '!': k = T_BANG; if (nx == '=') { L.p++; k = T_NE; } break;
            case '=': k = T_EQ; if (nx == '=') L.p++; break;
            case '<': k = T_LT; if (nx == '=') { L.p++; k = T_LE; } break;
            case '>': k = T_GT; if (nx == '=') { L.p++; k = T_GE; } break;
            case '(': k = T_LP; L.nest++; break;
            case ')': k = T_RP; L.nest--; break;
            case '[': k = T_LB; L.nest++; break;
            case ']': k = T_RB; L.nest--; break;
            case '{':
                if (push_brace(&L, 0))
                    return -1;
                k = T_LBR;
                break;
            case '}':
                if (L.nbrace > 0 && L.brace[--L.nbrace])
                    continue; /* end of a transparent wrapper */
                k = T_RBR;
                break;
            case ',': k = T_COMMA; break;
            case ';': k = T_SEMI; break;
            case '&': k = T_AMP; break;
            case ':': k = T_COLON; break;
            case '|': k = T_BAR; break;
            case '%': k = T_PCT; break;
            case '.': continue; /* sentence punctuation */
            default: k = T_BAD; break;
            }
            r = emit(&L, k, 0, NULL, 0);
        }
        if (r)
            return -1;
    }
    s->tpos = (int)L.olen;
    s->side = side;
    return emit(&L, T_EOF, 0, NULL, 0);
}
