/* extract: final-answer extraction from full model responses (see extract.h).
 *
 * Every method scans the text once and returns a span; nothing is copied, so
 * the verifier can extract from megabyte responses without allocating. */
#include "extract.h"
#include "err.h"

#include <string.h>
#include <strings.h>

void qe_extract_opts_init(qe_extract_opts *o)
{
    memset(o, 0, sizeof *o);
    o->order[0] = QE_EXTRACT_BOXED;
    o->order[1] = QE_EXTRACT_FINAL_ANSWER;
    o->order[2] = QE_EXTRACT_ANSWER_COLON;
    o->order[3] = QE_EXTRACT_MATH_SPAN;
    o->order[4] = QE_EXTRACT_LAST_NUMBER;
    o->order[5] = QE_EXTRACT_SHORT;
}

static const char *const method_names[] = {"none", "boxed", "final", "answer", "math", "number", "whole", "short"};

const char *qe_extract_method_name(int method)
{
    if (method < 0 || method > QE_EXTRACT_LAST_METHOD)
        return "?";
    return method_names[method];
}

int qe_extract_opts_parse(qe_extract_opts *o, const char *list)
{
    memset(o, 0, sizeof *o);
    int n = 0;
    const char *p = list;
    while (*p) {
        const char *q = strchr(p, ',');
        size_t l = q ? (size_t)(q - p) : strlen(p);
        int found = 0;
        for (int m = 1; m <= QE_EXTRACT_LAST_METHOD; m++)
            if (strlen(method_names[m]) == l && !strncmp(method_names[m], p, l)) {
                if (n >= QE_EXTRACT_MAX_METHODS)
                    return QE_EINVAL;
                o->order[n++] = (unsigned char)m;
                found = 1;
            }
        if (!found)
            return QE_EINVAL;
        p += l;
        if (*p == ',')
            p++;
    }
    return n ? 0 : QE_EINVAL;
}

/* Case-insensitive search for the last occurrence of needle in [s, s+n). */
static const char *rfind_ci(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    if (m > n)
        return NULL;
    for (size_t i = n - m + 1; i-- > 0;)
        if (!strncasecmp(s + i, needle, m))
            return s + i;
    return NULL;
}

static const char *rfind(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    if (m > n)
        return NULL;
    for (size_t i = n - m + 1; i-- > 0;)
        if (s[i] == needle[0] && !memcmp(s + i, needle, m))
            return s + i;
    return NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Trims space, wrapping $ signs, a trailing period and \boxed / \[ wrappers. */
static int trim_span(const char *t, size_t *s, size_t *l)
{
    size_t a = *s, b = *s + *l;
    for (int round = 0; round < 4; round++) {
        while (a < b && (is_space(t[a]) || t[a] == '$'))
            a++;
        while (b > a && (is_space(t[b - 1]) || (t[b - 1] == '$' && (b - 1 == a || t[b - 2] != '\\'))))
            b--;
        if (b > a && t[b - 1] == '.' && !(b - 1 > a && t[b - 2] >= '0' && t[b - 2] <= '9' && b < *s + *l && t[b] >= '0' && t[b] <= '9'))
            b--;
        if (b - a >= 4 && !memcmp(t + a, "\\[", 2) && !memcmp(t + b - 2, "\\]", 2)) {
            a += 2;
            b -= 2;
        } else if (b - a >= 4 && !memcmp(t + a, "\\(", 2) && !memcmp(t + b - 2, "\\)", 2)) {
            a += 2;
            b -= 2;
        }
    }
    if (b <= a)
        return 0;
    *s = a;
    *l = b - a;
    return 1;
}

/* Index just past the '}' matching the '{' at t[i], or 0 if unbalanced. */
static size_t match_brace(const char *t, size_t n, size_t i)
{
    int depth = 0;
    for (size_t j = i; j < n; j++) {
        if (t[j] == '\\' && j + 1 < n && (t[j + 1] == '{' || t[j + 1] == '}')) {
            j++;
            continue;
        }
        if (t[j] == '{')
            depth++;
        else if (t[j] == '}' && --depth == 0)
            return j + 1;
    }
    return 0;
}

/* Start of a \boxed{...} or \fbox{...} whose closing brace is t[close-1],
 * or (size_t)-1. */
static size_t box_start(const char *t, size_t close)
{
    int depth = 0;
    for (size_t j = close; j-- > 0;) {
        if (t[j] == '}')
            depth++;
        else if (t[j] == '{' && --depth == 0) {
            size_t k = j;
            while (k > 0 && is_space(t[k - 1]))
                k--;
            if (k >= 6 && !memcmp(t + k - 6, "\\boxed", 6))
                return k - 6;
            if (k >= 5 && !memcmp(t + k - 5, "\\fbox", 5))
                return k - 5;
            return (size_t)-1;
        }
    }
    return (size_t)-1;
}

/* "\boxed{1}, \boxed{2} and \boxed{3}": extends the span of the last box
 * back over earlier boxes joined only by commas, "and", \quad, $. */
static size_t merge_boxes(const char *t, size_t start)
{
    /* not "or": "\\boxed{15\\frac{39}{40}} or \\boxed{\\frac{639}{40}}" are alternatives */
    static const char *const joins[] = {",", ";", "and", "\\quad", "\\qquad", "\\text{and}",
                                        "\\text{ and }", "$", "\\,", "\\;", "\\)", "\\(", NULL};
    for (int boxes = 0; boxes < 32; boxes++) {
        size_t k = start;
        int moved = 1, joined = 0;
        while (moved && k > 0) {
            moved = 0;
            while (k > 0 && is_space(t[k - 1])) {
                k--;
                moved = 1;
            }
            for (int i = 0; joins[i]; i++) {
                size_t jl = strlen(joins[i]);
                if (k >= jl && !memcmp(t + k - jl, joins[i], jl)) {
                    k -= jl;
                    moved = joined = 1;
                    break;
                }
            }
        }
        if (k == 0 || t[k - 1] != '}')
            return start;
        size_t b = box_start(t, k);
        if (b == (size_t)-1)
            return start;
        (void)joined;
        start = b;
    }
    return start;
}

static int find_boxed(const char *t, size_t n, size_t *s, size_t *l)
{
    size_t end = n;
    for (int tries = 0; tries < 64; tries++) {
        const char *b1 = rfind(t, end, "\\boxed");
        const char *b2 = rfind(t, end, "\\fbox");
        const char *b = b1 > b2 ? b1 : b2;
        if (!b)
            return 0;
        size_t i = (size_t)(b - t) + (b == b1 ? 6 : 5);
        size_t k = i;
        while (k < n && is_space(t[k]))
            k++;
        if (k < n && t[k] == '{') {
            size_t close = match_brace(t, n, k);
            if (close) {
                size_t first = merge_boxes(t, (size_t)(b - t));
                if (first < (size_t)(b - t)) {
                    *s = first; /* several boxes: the verifier reads \boxed as a wrapper */
                    *l = close - first;
                } else {
                    *s = k + 1;
                    *l = close - 1 - (k + 1);
                }
                if (trim_span(t, s, l))
                    return 1;
            }
        } else if (k > i && k < n) {
            /* "\boxed 5": up to the next $ or end of line */
            size_t e = k;
            while (e < n && t[e] != '$' && t[e] != '\n')
                e++;
            *s = k;
            *l = e - k;
            if (trim_span(t, s, l))
                return 1;
        }
        end = (size_t)(b - t);
    }
    return 0;
}

/* The rest of the line after a marker, cut at a sentence end; *raw gets
 * its bounds before trimming. */
static int after_marker(const char *t, size_t n, size_t i, size_t *s, size_t *l, size_t raw[2])
{
    while (i < n && (is_space(t[i]) || t[i] == ':' || t[i] == '*'))
        i++;
    size_t e = i;
    int dollars = 0;
    while (e < n && t[e] != '\n') {
        if (t[e] == '$' && (e == 0 || t[e - 1] != '\\'))
            dollars++;
        if (t[e] == '.' && !(dollars & 1) && (e + 1 == n || is_space(t[e + 1])))
            break;
        e++;
    }
    while (e > i && t[e - 1] == '*')
        e--;
    raw[0] = i;
    raw[1] = e;
    *s = i;
    *l = e - i;
    return trim_span(t, s, l);
}

static int find_final(const char *t, size_t n, size_t *s, size_t *l, size_t raw[2])
{
    const char *m = rfind_ci(t, n, "final answer is");
    size_t skip = 15;
    const char *m2 = rfind_ci(t, n, "final answer:");
    if (m2 > m) {
        m = m2;
        skip = 12;
    }
    if (!m) {
        /* "so the answer is 5" when no "final answer" marker exists */
        m = rfind_ci(t, n, "answer is");
        skip = 9;
    }
    if (!m)
        return 0;
    return after_marker(t, n, (size_t)(m - t) + skip, s, l, raw);
}

static int find_answer_colon(const char *t, size_t n, size_t *s, size_t *l, size_t raw[2])
{
    const char *m = rfind_ci(t, n, "answer:");
    if (!m)
        return 0;
    return after_marker(t, n, (size_t)(m - t) + 7, s, l, raw);
}

static size_t scale_word_end(const char *t, size_t n, size_t e);

static int find_math_span_at(const char *t, size_t n, size_t *s, size_t *l, int first);

static int find_math_span(const char *t, size_t n, size_t *s, size_t *l)
{
    return find_math_span_at(t, n, s, l, 0);
}

/* The last $...$, $$...$$, \[...\], \(...\) of t[0..n), or with first set
 * the first one. */
static int find_math_span_at(const char *t, size_t n, size_t *s, size_t *l, int first)
{
    int found = 0;
    size_t i = 0;
    while (i < n) {
        const char *close = NULL;
        size_t open_len = 0;
        if (t[i] == '\\' && i + 1 < n && (t[i + 1] == '[' || t[i + 1] == '(')) {
            close = t[i + 1] == '[' ? "\\]" : "\\)";
            open_len = 2;
        } else if (t[i] == '\\') {
            i += 2;
            continue;
        } else if (t[i] == '$') {
            close = (i + 1 < n && t[i + 1] == '$') ? "$$" : "$";
            open_len = strlen(close);
        }
        if (!close) {
            i++;
            continue;
        }
        size_t cl = strlen(close), j = i + open_len;
        while (j + cl <= n && !(memcmp(t + j, close, cl) == 0 && (close[0] != '$' || t[j - 1] != '\\')))
            j++;
        if (j + cl > n)
            break; /* unclosed: stop */
        size_t ss = i + open_len, ll = j - ss;
        if (trim_span(t, &ss, &ll)) {
            /* "$1$ million": the scale word belongs to the answer (the
             * verifier reads the closing $ as space) */
            size_t w = scale_word_end(t, n, j + cl);
            if (w > j + cl)
                ll = w - ss;
            *s = ss;
            *l = ll;
            found = 1;
            if (first)
                break;
        }
        i = j + cl;
    }
    return found;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha_c(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum_c(char c)
{
    return is_digit(c) || is_alpha_c(c);
}

/* Start of the number (digits with '.' / ',' between digits) whose last
 * digit is t[e-1]. */
static size_t number_start(const char *t, size_t e)
{
    size_t b = e;
    while (b > 0 && (is_digit(t[b - 1]) || ((t[b - 1] == '.' || t[b - 1] == ',') && b >= 2 && is_digit(t[b - 2]))))
        b--;
    return b;
}

/* When the digits t[b..e) are the exponent of scientific notation glued to
 * a number (1.5e3, 1E-2, 1.0e+3; not 2e^3, 3e+x, 2e3x), the end of its
 * mantissa (the index of the e), else 0. */
static size_t sci_mantissa_end(const char *t, size_t n, size_t b, size_t e)
{
    size_t i = b;
    if (i > 0 && (t[i - 1] == '+' || t[i - 1] == '-'))
        i--;
    if (i < 2 || (t[i - 1] != 'e' && t[i - 1] != 'E') || !is_digit(t[i - 2]))
        return 0;
    for (size_t k = b; k < e; k++)
        if (!is_digit(t[k]))
            return 0; /* the verifier reads only an integer exponent */
    if (e < n && (is_alpha_c(t[e]) || (t[e] == '.' && e + 1 < n && is_digit(t[e + 1]))))
        return 0;
    return i - 1;
}

static int all_digits(const char *t, size_t b, size_t e)
{
    for (size_t i = b; i < e; i++)
        if (!is_digit(t[i]))
            return 0;
    return b < e;
}

static int is_opener(char c);
static int is_closer(char c);

/* 1 if the letter run ending at t[k-1] is a command name (\pi, \infty). */
static int letters_after_backslash(const char *t, size_t k)
{
    while (k > 0 && is_alpha_c(t[k - 1]))
        k--;
    return k > 0 && t[k - 1] == '\\';
}

enum { OP_NONE, OP_MUL, OP_ADD, OP_COLON };

/* The binary operator ending just before t[i]: its kind, *start its first
 * byte. * / ^ \cdot \times \div \ast × ÷ · ⋅ multiply, + - − – add. */
static int op_ending_at(const char *t, size_t i, size_t *start)
{
    static const struct {
        const char *s;
        int kind;
    } ops[] = {
        {"\\cdot", OP_MUL}, {"\\times", OP_MUL}, {"\\div", OP_MUL}, {"\\ast", OP_MUL},
        {"\xc3\x97", OP_MUL}, {"\xc3\xb7", OP_MUL}, {"\xc2\xb7", OP_MUL}, {"\xe2\x8b\x85", OP_MUL},
        {"\xe2\x88\x92", OP_ADD}, {"\xe2\x80\x93", OP_ADD}, {"*", OP_MUL}, {"/", OP_MUL},
        {"^", OP_MUL}, {"+", OP_ADD}, {"-", OP_ADD}, {":", OP_COLON},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        size_t m = strlen(ops[k].s);
        if (i >= m && !memcmp(t + i - m, ops[k].s, m)) {
            *start = i - m;
            return ops[k].kind;
        }
    }
    return OP_NONE;
}

/* The binary operator starting at t[i], as op_ending_at; *end past it. A
 * command must not go on with letters (\timesx is not \times). */
static int op_starting_at(const char *t, size_t n, size_t i, size_t *end)
{
    for (size_t j = i; j < n && j < i + 8; j++) {
        size_t st;
        int k = op_ending_at(t, j + 1, &st);
        if (k && st == i && !(t[i] == '\\' && j + 1 < n && is_alpha_c(t[j + 1]))) {
            *end = j + 1;
            return k;
        }
    }
    return OP_NONE;
}

/* A number with a space on one side of a binary operator is as much an
 * operand as a glued one: "10 - 7", "1 / 2" (when not taken whole as a
 * fraction), "2 \times 5", "6 × 7", "x + 3". For + and - the other operand
 * must be a digit, a bracket, a command or a single letter, so a sentence
 * dash ("the answer - 7", "7 - that is all") is no operator. b and e bound
 * the number in t[0..n). */
static int operand_spaced(const char *t, size_t n, size_t b, size_t e)
{
    size_t i = b, st;
    while (i > 0 && t[i - 1] == ' ')
        i--;
    int kind = op_ending_at(t, i, &st);
    if (kind && (i < b || (st > 0 && t[st - 1] == ' '))) {
        size_t k = st;
        while (k > 0 && t[k - 1] == ' ')
            k--;
        char c = k > 0 ? t[k - 1] : ' ';
        if (kind == OP_MUL && (is_alnum_c(c) || is_closer(c)))
            return 1;
        if (kind == OP_COLON && is_digit(c) && i < b && st > 0 && t[st - 1] == ' ') /* 3 : 4 */
            return 1;
        if (kind == OP_ADD && (is_digit(c) || is_closer(c) || c == '|' ||
                               (is_alpha_c(c) && !(k >= 2 && is_alpha_c(t[k - 2]))) ||
                               (is_alpha_c(c) && letters_after_backslash(t, k))))
            return 1;
    }
    i = e;
    while (i < n && t[i] == ' ')
        i++;
    size_t oe;
    kind = op_starting_at(t, n, i, &oe);
    if (kind && (i > e || (oe < n && t[oe] == ' '))) {
        size_t k = oe;
        while (k < n && t[k] == ' ')
            k++;
        char c = k < n ? t[k] : ' ';
        if (kind == OP_MUL && (is_alnum_c(c) || is_opener(c) || c == '\\'))
            return 1;
        if (kind == OP_COLON && is_digit(c) && i > e && oe < n && t[oe] == ' ')
            return 1;
        if (kind == OP_ADD && (is_digit(c) || is_opener(c) || c == '\\' ||
                               (is_alpha_c(c) && !(k + 1 < n && is_alpha_c(t[k + 1])))))
            return 1;
    }
    return 0;
}

/* An operator glued to a number makes it an operand of a larger expression
 * ("x/2", "2^{10}", "1:2", "3-5", "\frac{3}{2}", "1011_2"), not an answer.
 * b is the start of the number (its sign included), e its end (its percent
 * sign included); the text around it is t[0..n). */
static int operand_of_expression(const char *t, size_t n, size_t b, size_t e)
{
    char p = b > 0 ? t[b - 1] : ' ', pp = b > 1 ? t[b - 2] : ' ';
    char q = e < n ? t[e] : ' ', qq = e + 1 < n ? t[e + 1] : ' ';
    int pp_operand = is_alnum_c(pp) || pp == ')' || pp == ']' || pp == '}';
    if (p == '/' || p == '^' || p == '_')
        return 1;
    if (p == ':' && is_digit(pp)) /* ratio or time 1:2, 10:30 */
        return 1;
    if ((p == '-' || p == '+' || p == '*') && pp_operand) /* 10-7, 2x+3, 2*3; not **5** */
        return 1;
    if (p == '{' && (pp == '}' || pp == '^' || pp == '_' || is_alpha_c(pp))) /* \frac{3}{2}, \sqrt{2} */
        return 1;
    if (q == '/' || q == '^' || q == '_' || (q == ':' && is_digit(qq)))
        return 1;
    return operand_spaced(t, n, b, e);
}

static int is_opener(char c)
{
    return c == '(' || c == '[' || c == '{';
}

static int is_closer(char c)
{
    return c == ')' || c == ']' || c == '}';
}

/* Walks from t[i] in direction dir (-1 leftwards, +1 rightwards) to the end
 * of the line, stepping over balanced brackets, until it has crossed `want`
 * brackets that enclose the start point (openers going left, closers going
 * right; any kinds, mixed as in [0,1)). Returns how many it crossed; *commas
 * counts the commas passed up to the last one. */
static size_t scan_enclosing(const char *t, size_t n, size_t i, int dir, size_t want, size_t *commas)
{
    size_t depth = 0, crossed = 0, seen = 0;
    *commas = 0;
    while (crossed < want && (dir < 0 ? i > 0 : i < n)) {
        char c = dir < 0 ? t[--i] : t[i++];
        if (c == '\n')
            break;
        if (c == ',')
            seen++;
        else if (dir < 0 ? is_closer(c) : is_opener(c))
            depth++;
        else if (dir < 0 ? is_opener(c) : is_closer(c)) {
            if (depth)
                depth--;
            else {
                crossed++;
                *commas = seen;
            }
        }
    }
    return crossed;
}

/* A number inside brackets that open and close on its line, where the
 * outermost such pair holds a comma, is an element (or a piece of one) of a
 * tuple, interval or set: (3,-1), [0,\infty), (1,2], \{1,2,3\}, (a, 5).
 * Commas inside the number count: in brackets they separate elements, as
 * the verifier reads them. A number in brackets without a comma, (5) or [5],
 * is not a collection. b and e bound the number in t[0..n). */
static int element_of_group(const char *t, size_t n, size_t b, size_t e)
{
    size_t lc, rc;
    /* the openers before it, the closers after it that match them (and the
     * commas up to the outermost), then the commas back to that opener */
    size_t levels = scan_enclosing(t, n, b, -1, (size_t)-1, &lc);
    levels = scan_enclosing(t, n, e, +1, levels, &rc);
    if (!levels)
        return 0;
    scan_enclosing(t, n, b, -1, levels, &lc);
    return lc || rc || memchr(t + b, ',', e - b) != NULL;
}

/* Words that scale the number before them ("1 million", "3 tenths", "2
 * thirds"): the verifier reads them (verify_parse.c), so they belong to the
 * number; the number alone would be a false positive. */
static const char *const scale_words[] = {
    "hundred", "hundreds", "thousand", "thousands", "million", "millions", "billion", "billions",
    "trillion", "trillions", "dozen", "dozens", "tenths", "hundredths", "thousandths", "millionths",
    "half", "halves", "third", "thirds", "quarter", "quarters", "fourth", "fourths", "fifth",
    "fifths", "sixth", "sixths", "seventh", "sevenths", "eighth", "eighths", "ninth", "ninths",
    "tenth", "hundredth", "thousandth", "millionth", NULL,
};

/* The end of a scale word after the number ending at t[e] ("1 million"),
 * or e itself. */
static size_t scale_word_end(const char *t, size_t n, size_t e)
{
    size_t i = e;
    while (i < n && t[i] == ' ')
        i++;
    if (i == e)
        return e;
    size_t w = i;
    while (w < n && is_alpha_c(t[w]))
        w++;
    for (int k = 0; scale_words[k]; k++)
        if (strlen(scale_words[k]) == w - i && !strncasecmp(scale_words[k], t + i, w - i))
            return w;
    return e;
}

/* The last simple number not glued to a preceding letter ("AZ2A" holds none,
 * "5cm" is 5): an optionally signed integer or decimal with thousands
 * separators, an integer fraction a/b, a mixed number "3 1/2", each with an
 * optional trailing % or \%. When that number is an operand of a larger
 * expression (see operand_of_expression; also a date 3/4/2021) or an element
 * of a tuple, interval or set (element_of_group) the rule finds nothing
 * rather than a piece of the expression. */
static int find_last_number(const char *t, size_t n, size_t *s, size_t *l)
{
    size_t e = n;
    while (e > 0) {
        while (e > 0 && !is_digit(t[e - 1]))
            e--;
        if (!e)
            return 0;
        size_t b = number_start(t, e);
        size_t x = sci_mantissa_end(t, n, b, e);
        if (x)
            b = number_start(t, x); /* 1.5e3, 1E-2: one number, as the verifier reads it */
        if (b > 0 && is_alpha_c(t[b - 1])) { /* "K2", "x2": part of a word */
            e = b;
            continue;
        }
        size_t sl = b; /* the slash of a/b, spaces allowed around it: 1 / 2 */
        while (sl > 0 && t[sl - 1] == ' ')
            sl--;
        size_t de = sl > 0 && t[sl - 1] == '/' ? sl - 1 : 0;
        while (de > 0 && t[de - 1] == ' ')
            de--;
        if (de > 0 && is_digit(t[de - 1])) {
            /* a/b: both plain integers; anything else (1.5/2, a chain 3/4/2021)
             * is left to operand_of_expression */
            size_t nb = number_start(t, de);
            int glued = de == b - 1;
            if (all_digits(t, b, e) && all_digits(t, nb, de) && !(nb > 0 && is_alpha_c(t[nb - 1])) &&
                !(nb > 0 && t[nb - 1] == '/')) {
                b = nb;
                /* mixed number "3 1/2" (read as 7/2 by the verifier) */
                if (glued && b >= 2 && t[b - 1] == ' ' && is_digit(t[b - 2])) {
                    size_t wb = number_start(t, b - 1);
                    if (all_digits(t, wb, b - 1) && !(wb > 0 && (is_alnum_c(t[wb - 1]) || t[wb - 1] == '/' ||
                                                                 t[wb - 1] == '.' || t[wb - 1] == ',')))
                        b = wb;
                }
            }
        }
        /* a '-' is a sign unless it follows an operand (then 10-7 is an expression) */
        if (b > 0 && t[b - 1] == '-' &&
            !(b >= 2 && (is_alnum_c(t[b - 2]) || t[b - 2] == ')' || t[b - 2] == ']' || t[b - 2] == '}')))
            b--;
        if (e < n && t[e] == '%')
            e++;
        else if (e + 1 < n && t[e] == '\\' && t[e + 1] == '%')
            e += 2;
        if (operand_of_expression(t, n, b, e) || element_of_group(t, n, b, e))
            return 0;
        e = scale_word_end(t, n, e);
        *s = b;
        *l = e - b;
        return 1;
    }
    return 0;
}

/* Shortens the span t[s..s+*l) to end before the first "because", "since",
 * "not" or "but" outside $...$ (whole words), trailing space and commas
 * dropped. */
static void cut_at_clause(const char *t, size_t s, size_t *l)
{
    static const char *const words[] = {"because", "since", "not", "but", NULL};
    int dollars = 0;
    for (size_t i = s; i < s + *l; i++) {
        if (t[i] == '$' && (i == 0 || t[i - 1] != '\\'))
            dollars++;
        if ((dollars & 1) || !is_alpha_c(t[i]) || (i > 0 && (is_alpha_c(t[i - 1]) || t[i - 1] == '\\')))
            continue;
        for (int k = 0; words[k]; k++) {
            size_t m = strlen(words[k]);
            if (i + m <= s + *l && !strncasecmp(t + i, words[k], m) && !(i + m < s + *l && is_alpha_c(t[i + m]))) {
                size_t e = i;
                while (e > s && (is_space(t[e - 1]) || t[e - 1] == ','))
                    e--;
                if (e > s)
                    *l = e - s;
                return;
            }
        }
    }
}

/* After "final answer is" / "Answer:": whichever comes last of the last
 * $...$ inside the span and, for a sentence, its last number ("The largest
 * $n$ is 34" -> 34, "is $\\frac{1}{2}$" -> \\frac{1}{2}). */
static int refine_marker_span(const char *t, const size_t raw[2], size_t *s, size_t *l)
{
    size_t ms = 0, ml = 0, ns = 0, nl = 0;
    const char *r = t + raw[0];
    if (raw[1] > raw[0] && (r[0] == '$' || (raw[1] - raw[0] >= 2 && r[0] == '\\' && (r[1] == '(' || r[1] == '[')))) {
        /* "The answer is $6$ because $2 \times 3 = 6$ and not $7$": what the
         * sentence states first is the answer; the rest argues for it */
        if (find_math_span_at(r, raw[1] - raw[0], &ms, &ml, 1)) {
            *s = raw[0] + ms;
            *l = ml;
            return 1;
        }
    }
    /* a clause that argues or contrasts ("... because $x=6$", "... and not
     * $7$") is not the answer: the span ends before it */
    cut_at_clause(t, *s, l);
    int has_math = find_math_span(t + *s, *l, &ms, &ml);
    int words = 0, run = 0;
    for (size_t i = *s; i < *s + *l; i++) {
        if (t[i] == '\\') {
            while (i + 1 < *s + *l && is_alpha_c(t[i + 1]))
                i++;
            run = 0;
            continue;
        }
        if (is_alpha_c(t[i])) {
            if (++run == 3)
                words++;
        } else
            run = 0;
    }
    int has_num = (words >= 2 || has_math) && find_last_number(t + *s, *l, &ns, &nl);
    if (has_num && (!has_math || ns >= ms + ml)) {
        *s += ns;
        *l = nl;
    } else if (has_math) {
        *s += ms;
        *l = ml;
    }
    return 1;
}

int qe_extract_answer(const char *text, size_t len, const qe_extract_opts *o, size_t *start,
                      size_t *alen)
{
    qe_extract_opts def;
    if (!o) {
        qe_extract_opts_init(&def);
        o = &def;
    }
    size_t base = 0, n = len;
    const char *close = rfind(text, len, "</think>");
    if (close) {
        base = (size_t)(close - text) + 8;
        n = len - base;
    } else {
        const char *open = strstr(text, "<think>");
        if (open && (size_t)(open - text) < len)
            n = (size_t)(open - text);
    }
    const char *t = text + base;
    for (int k = 0; k < QE_EXTRACT_MAX_METHODS && o->order[k]; k++) {
        size_t s = 0, l = 0, raw[2] = {0, 0};
        int ok = 0;
        switch (o->order[k]) {
        case QE_EXTRACT_BOXED: ok = find_boxed(t, n, &s, &l); break;
        case QE_EXTRACT_FINAL_ANSWER:
            ok = find_final(t, n, &s, &l, raw) && refine_marker_span(t, raw, &s, &l);
            break;
        case QE_EXTRACT_ANSWER_COLON:
            ok = find_answer_colon(t, n, &s, &l, raw) && refine_marker_span(t, raw, &s, &l);
            break;
        case QE_EXTRACT_MATH_SPAN: ok = find_math_span(t, n, &s, &l); break;
        case QE_EXTRACT_LAST_NUMBER: ok = find_last_number(t, n, &s, &l); break;
        case QE_EXTRACT_WHOLE:
            s = 0;
            l = n;
            ok = trim_span(t, &s, &l);
            break;
        case QE_EXTRACT_SHORT:
            /* a bare short answer ("Carla", "\\text{Monday}") is its own
             * answer; a paragraph never is (it may mention the gold while
             * answering something else) */
            s = 0;
            l = n;
            ok = trim_span(t, &s, &l) && l <= QE_EXTRACT_SHORT_MAX && !memchr(t + s, '\n', l) &&
                 !memchr(t + s, '\r', l);
            break;
        default: break;
        }
        if (ok) {
            *start = base + s;
            *alen = l;
            return o->order[k];
        }
    }
    return QE_EXTRACT_NONE;
}
