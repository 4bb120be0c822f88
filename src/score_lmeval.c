/* score_lmeval: lm-evaluation-harness math scoring, re-implemented exactly.
 *
 * Mirrors lm_eval/tasks/hendrycks_math/utils.py and aime/utils.py (whose
 * helpers are identical), gsm8k.yaml's regex filters (filters/extraction.py)
 * and api/metrics.py exact_match. Every Python operation whose result depends
 * on code points rather than bytes (len(), s[0], int()) goes through the
 * UTF-8 helpers below; everything matching ASCII literals works on bytes,
 * which is equivalent for UTF-8. See docs/scoring-lmeval.md for the traps. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "score_lmeval.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

const char *qe_lm_raise_name(int rc)
{
    switch (rc) {
    case QE_LM_ASSERTION_ERROR: return "AssertionError";
    case QE_LM_INDEX_ERROR: return "IndexError";
    case QE_LM_VALUE_ERROR: return "ValueError";
    default: return qe_status_name(rc);
    }
}

/* ---- UTF-8 as Python sees it (surrogateescape for invalid bytes) ---- */

/* Byte length of the code point starting at s (n bytes available, n > 0):
 * a strictly valid UTF-8 sequence, else 1 (one escaped byte). *cp receives
 * the code point, or 0xDC00+byte for an invalid byte. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2; v = c & 0x1F; min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3; v = c & 0x0F; min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4; v = c & 0x07; min = 0x10000;
    } else {
        *cp = 0xDC00u + c;
        return 1;
    }
    if (n < len) {
        *cp = 0xDC00u + c;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xDC00u + c;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xDC00u + c;
        return 1;
    }
    *cp = v;
    return len;
}

/* Number of code points in s[0..n), stopping once it exceeds limit. */
static size_t cp_count_upto(const char *s, size_t n, size_t limit)
{
    size_t k = 0, i = 0;
    uint32_t cp;
    while (i < n && k <= limit) {
        i += utf8_next((const unsigned char *)s + i, n - i, &cp);
        k++;
    }
    return k;
}

/* ---- small string helpers on qe_buf ---- */

/* Makes b->data a valid C string even when b is empty (qe_buf_reserve alone
 * allocates without writing the NUL). */
static int buf_terminate(qe_buf *b)
{
    if (qe_buf_reserve(b, 0) < 0)
        return -1;
    b->data[b->len] = '\0';
    return 0;
}

/* memmem for the short literals used here: memchr on the first byte is much
 * faster than glibc's memmem on text where the literal is rare; needles are
 * at most 9 bytes, so the worst case stays linear. */
static const char *find(const char *h, size_t hn, const char *needle, size_t nn)
{
    if (nn == 0)
        return h;
    const char *p = h, *end = h + hn;
    while ((size_t)(end - p) >= nn) {
        p = memchr(p, needle[0], (size_t)(end - p) - nn + 1);
        if (!p)
            return NULL;
        if (memcmp(p + 1, needle + 1, nn - 1) == 0)
            return p;
        p++;
    }
    return NULL;
}

/* Python str.replace(from, to): every non-overlapping occurrence, left to
 * right. In place when it does not grow. Returns 0 or QE_ENOMEM. */
static int buf_replace(qe_buf *b, const char *from, const char *to)
{
    size_t fn = strlen(from), tn = strlen(to);
    if (b->len < fn || !find(b->data, b->len, from, fn))
        return 0;
    if (tn <= fn) {
        size_t r = 0, w = 0;
        while (r < b->len) {
            const char *hit = find(b->data + r, b->len - r, from, fn);
            size_t upto = hit ? (size_t)(hit - b->data) : b->len;
            memmove(b->data + w, b->data + r, upto - r);
            w += upto - r;
            r = upto;
            if (!hit)
                break;
            memcpy(b->data + w, to, tn);
            w += tn;
            r += fn;
        }
        b->len = w;
        b->data[w] = '\0';
        return 0;
    }
    qe_buf o = QE_BUF_INIT;
    size_t r = 0;
    while (r <= b->len) {
        const char *hit = find(b->data + r, b->len - r, from, fn);
        size_t upto = hit ? (size_t)(hit - b->data) : b->len;
        if (qe_buf_append(&o, b->data + r, upto - r) < 0)
            goto oom;
        if (!hit)
            break;
        if (qe_buf_append(&o, to, tn) < 0)
            goto oom;
        r = upto + fn;
    }
    if (buf_terminate(&o) < 0)
        goto oom;
    qe_buf_free(b);
    *b = o;
    return 0;
oom:
    qe_buf_free(&o);
    return QE_ENOMEM;
}

static size_t count_occ(const char *s, size_t n, const char *needle)
{
    size_t nn = strlen(needle), k = 0;
    const char *p = s, *end = s + n;
    while ((size_t)(end - p) >= nn && (p = find(p, (size_t)(end - p), needle, nn)) != NULL) {
        k++;
        p += nn;
    }
    return k;
}

static int buf_set(qe_buf *b, const char *s, size_t n)
{
    qe_buf_reset(b);
    if (qe_buf_append(b, s, n) < 0)
        return QE_ENOMEM;
    return buf_terminate(b) < 0 ? QE_ENOMEM : 0;
}

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* ---- last_boxed_only_string / remove_boxed ---- */

static const char *rfind(const char *s, size_t n, const char *needle)
{
    size_t nn = strlen(needle);
    const char *last = NULL, *p = s, *end = s + n;
    while ((size_t)(end - p) >= nn && (p = find(p, (size_t)(end - p), needle, nn)) != NULL) {
        last = p;
        p++;
    }
    return last;
}

char *qe_lm_last_boxed_only_string(const char *s)
{
    size_t n = strlen(s);
    const char *sp = rfind(s, n, "\\boxed ");
    if (sp) {
        /* "\boxed " + split("\boxed ")[-1].split("$")[0] */
        const char *rest = sp + 7;
        const char *dollar = strchr(rest, '$');
        size_t rn = dollar ? (size_t)(dollar - rest) : strlen(rest);
        char *o = malloc(7 + rn + 1);
        if (!o)
            return NULL;
        memcpy(o, "\\boxed ", 7);
        memcpy(o + 7, rest, rn);
        o[7 + rn] = '\0';
        return o;
    }
    const char *idx = rfind(s, n, "\\boxed");
    if (!idx)
        idx = rfind(s, n, "\\fbox");
    if (!idx)
        return NULL;
    long open = 0;
    for (const char *p = idx; *p; p++) {
        if (*p == '{')
            open++;
        if (*p == '}') {
            open--;
            if (open == 0)
                return dupn(idx, (size_t)(p - idx) + 1);
        }
    }
    return NULL;
}

int qe_lm_remove_boxed(const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return QE_EINVAL;
    size_t n = strlen(s);
    if (strstr(s, "\\boxed ")) {
        if (strncmp(s, "\\boxed ", 7) != 0)
            return QE_LM_ASSERTION_ERROR;
        *out = dupn(s + 7, n - 7);
    } else {
        if (strncmp(s, "\\boxed{", 7) != 0 || s[n - 1] != '}')
            return QE_LM_ASSERTION_ERROR;
        *out = dupn(s + 7, n - 8);
    }
    return *out ? 0 : QE_ENOMEM;
}

/* ---- Python int() ---- */

static const uint32_t decimal_zero[] = {
    /* Code points whose Unicode decimal value is 0; the 9 after each are
     * 1..9. From Python 3.11's unicodedata (Unicode 14.0.0). */
    0x660,  0x6f0,  0x7c0,   0x966,   0x9e6,   0xa66,   0xae6,   0xb66,   0xbe6,
    0xc66,  0xce6,  0xd66,   0xde6,   0xe50,   0xed0,   0xf20,   0x1040,  0x1090,
    0x17e0, 0x1810, 0x1946,  0x19d0,  0x1a80,  0x1a90,  0x1b50,  0x1bb0,  0x1c40,
    0x1c50, 0xa620, 0xa8d0,  0xa900,  0xa9d0,  0xa9f0,  0xaa50,  0xabf0,  0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0,
    0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60,
    0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0,
    0x1e950, 0x1fbf0,
};

static int unicode_decimal(uint32_t cp)
{
    if (cp >= '0' && cp <= '9')
        return (int)(cp - '0');
    size_t lo = 0, hi = sizeof decimal_zero / sizeof decimal_zero[0];
    while (lo < hi) { /* last zero <= cp */
        size_t mid = (lo + hi) / 2;
        if (decimal_zero[mid] <= cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    uint32_t z = decimal_zero[lo - 1];
    return cp - z < 10 ? (int)(cp - z) : -1;
}

/* str.isspace() for code points >= 128 (Python 3.11). */
static bool unicode_space_hi(uint32_t cp)
{
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static bool ascii_space(int c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Whether Python's int(s) (base 10) succeeds, including the 4300-digit limit
 * of CPython >= 3.11 (and 3.10.7+). Mirrors _PyUnicode_TransformDecimalAndSpaceToASCII
 * followed by PyLong_FromString. */
static bool py_int_ok(const char *s, size_t n)
{
    /* Transform to ASCII: < 127 kept, Unicode space -> ' ', decimal -> digit,
     * anything else -> '?' (parse fails). Work on the fly. */
    size_t i = 0;
    uint32_t cp;
    enum { LEAD, SIGNED, DIGITS, TRAIL } st = LEAD;
    int prev = 0;
    size_t digits = 0;
    while (i < n) {
        i += utf8_next((const unsigned char *)s + i, n - i, &cp);
        int c;
        if (cp < 127)
            c = (int)cp;
        else if (unicode_space_hi(cp))
            c = ' ';
        else {
            int d = unicode_decimal(cp);
            if (d < 0)
                return false;
            c = '0' + d;
        }
        switch (st) {
        case LEAD:
            if (ascii_space(c))
                break;
            if (c == '+' || c == '-') {
                st = SIGNED;
                break;
            }
            /* fall through */
        case SIGNED:
            if (c >= '0' && c <= '9') {
                st = DIGITS;
                digits = 1;
                prev = c;
                break;
            }
            return false; /* includes a leading '_' */
        case DIGITS:
            if (c >= '0' && c <= '9') {
                digits++;
                prev = c;
                break;
            }
            if (c == '_') {
                if (prev == '_')
                    return false;
                prev = c;
                break;
            }
            if (prev == '_')
                return false;
            if (ascii_space(c)) {
                st = TRAIL;
                break;
            }
            return false;
        case TRAIL:
            if (!ascii_space(c))
                return false;
            break;
        }
    }
    if (st == DIGITS && prev == '_')
        return false;
    if (st != DIGITS && st != TRAIL)
        return false;
    return digits <= 4300;
}

/* "{a}/{b}".format(int(a), int(b)) == half: the canonical decimal form. */
static bool canonical_int(const char *s, size_t n)
{
    if (n && s[0] == '-') {
        s++;
        n--;
        if (n == 1 && s[0] == '0')
            return false; /* int("-0") prints as "0" */
    }
    if (n == 0 || n > 4300)
        return false;
    if (s[0] == '0')
        return n == 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* ---- strip_string helpers ---- */

static int fix_sqrt(qe_buf *b)
{
    if (!find(b->data, b->len, "\\sqrt", 5))
        return 0;
    qe_buf o = QE_BUF_INIT;
    const char *p = b->data, *end = b->data + b->len;
    const char *hit = find(p, b->len, "\\sqrt", 5);
    int rc = QE_ENOMEM;
    if (qe_buf_append(&o, p, (size_t)(hit - p)) < 0)
        goto out;
    while (hit) {
        const char *piece = hit + 5;
        const char *next = find(piece, (size_t)(end - piece), "\\sqrt", 5);
        const char *pend = next ? next : end;
        if (piece == pend) {
            rc = QE_LM_INDEX_ERROR;
            goto out;
        }
        if (*piece != '{') {
            uint32_t cp;
            size_t l = utf8_next((const unsigned char *)piece, (size_t)(pend - piece), &cp);
            if (qe_buf_puts(&o, "\\sqrt{") < 0 || qe_buf_append(&o, piece, l) < 0 ||
                qe_buf_putc(&o, '}') < 0 || qe_buf_append(&o, piece + l, (size_t)(pend - piece) - l) < 0)
                goto out;
        } else {
            if (qe_buf_puts(&o, "\\sqrt") < 0 || qe_buf_append(&o, piece, (size_t)(pend - piece)) < 0)
                goto out;
        }
        hit = next;
    }
    if (buf_terminate(&o) < 0)
        goto out;
    qe_buf_free(b);
    *b = o;
    return 0;
out:
    qe_buf_free(&o);
    return rc;
}

static int fix_fracs(qe_buf *b)
{
    const char *hit = find(b->data, b->len, "\\frac", 5);
    if (!hit)
        return 0;
    qe_buf o = QE_BUF_INIT;
    const char *p = b->data, *end = b->data + b->len;
    int rc = QE_ENOMEM;
    if (qe_buf_append(&o, p, (size_t)(hit - p)) < 0)
        goto out;
    while (hit) {
        const char *piece = hit + 5;
        const char *next = find(piece, (size_t)(end - piece), "\\frac", 5);
        const char *pend = next ? next : end;
        size_t pn = (size_t)(pend - piece);
        if (qe_buf_puts(&o, "\\frac") < 0)
            goto out;
        if (pn == 0) {
            rc = QE_LM_INDEX_ERROR; /* substr[0] on "" */
            goto out;
        }
        if (piece[0] == '{') {
            if (qe_buf_append(&o, piece, pn) < 0)
                goto out;
        } else {
            uint32_t cp;
            size_t la = utf8_next((const unsigned char *)piece, pn, &cp);
            if (la == pn) { /* len(substr) < 2: give back the input unchanged */
                qe_buf_free(&o);
                return 0;
            }
            size_t lb = utf8_next((const unsigned char *)piece + la, pn - la, &cp);
            const char *a = piece, *bb = piece + la, *post = piece + la + lb;
            if (qe_buf_putc(&o, '{') < 0 || qe_buf_append(&o, a, la) < 0 || qe_buf_putc(&o, '}') < 0)
                goto out;
            if (!(lb == 1 && *bb == '{')) {
                if (qe_buf_putc(&o, '{') < 0 || qe_buf_append(&o, bb, lb) < 0 || qe_buf_putc(&o, '}') < 0)
                    goto out;
            } else if (qe_buf_append(&o, bb, lb) < 0) {
                goto out;
            }
            if (qe_buf_append(&o, post, (size_t)(pend - post)) < 0)
                goto out;
        }
        hit = next;
    }
    if (buf_terminate(&o) < 0)
        goto out;
    qe_buf_free(b);
    *b = o;
    return 0;
out:
    qe_buf_free(&o);
    return rc;
}

static int fix_a_slash_b(qe_buf *b)
{
    const char *slash = memchr(b->data, '/', b->len);
    if (!slash || memchr(slash + 1, '/', b->len - (size_t)(slash + 1 - b->data)))
        return 0;
    size_t an = (size_t)(slash - b->data), bn = b->len - an - 1;
    if (!py_int_ok(b->data, an) || !py_int_ok(slash + 1, bn))
        return QE_LM_VALUE_ERROR;
    if (!canonical_int(b->data, an) || !canonical_int(slash + 1, bn))
        return 0; /* the assert fails and is caught: string unchanged */
    qe_buf o = QE_BUF_INIT;
    if (qe_buf_puts(&o, "\\frac{") < 0 || qe_buf_append(&o, b->data, an) < 0 || qe_buf_puts(&o, "}{") < 0 ||
        qe_buf_append(&o, slash + 1, bn) < 0 || qe_buf_putc(&o, '}') < 0) {
        qe_buf_free(&o);
        return QE_ENOMEM;
    }
    qe_buf_free(b);
    *b = o;
    return 0;
}

static int strip_steps(qe_buf *b)
{
    int rc;
    static const char *const rm1[][2] = {
        {"\n", ""},          {"\\!", ""},        {"\\\\", "\\"},      {"tfrac", "frac"},
        {"dfrac", "frac"},   {"\\left", ""},     {"\\right", ""},     {"^{\\circ}", ""},
        {"^\\circ", ""},     {"\\$", ""},
    };
    for (size_t i = 0; i < sizeof rm1 / sizeof rm1[0]; i++)
        if ((rc = buf_replace(b, rm1[i][0], rm1[i][1])) < 0)
            return rc;
    /* remove_right_units */
    const char *t = find(b->data, b->len, "\\text{ ", 7);
    if (t) {
        if (count_occ(b->data, b->len, "\\text{ ") != 1)
            return QE_LM_ASSERTION_ERROR;
        b->len = (size_t)(t - b->data);
        b->data[b->len] = '\0';
    }
    /* lm-eval removes "\\%" twice (its second literal is the same two
     * characters); the second pass matters for "\\\\\\%%" */
    if ((rc = buf_replace(b, "\\%", "")) < 0 || (rc = buf_replace(b, "\\%", "")) < 0 ||
        (rc = buf_replace(b, " .", " 0.")) < 0 ||
        (rc = buf_replace(b, "{.", "{0.")) < 0)
        return rc;
    if (b->len == 0)
        return 0;
    if (b->data[0] == '.') {
        qe_buf o = QE_BUF_INIT;
        if (qe_buf_putc(&o, '0') < 0 || qe_buf_append(&o, b->data, b->len) < 0) {
            qe_buf_free(&o);
            return QE_ENOMEM;
        }
        qe_buf_free(b);
        *b = o;
    }
    /* exactly one '=' and at most 2 code points on its left: keep the right */
    const char *eq = memchr(b->data, '=', b->len);
    if (eq && !memchr(eq + 1, '=', b->len - (size_t)(eq + 1 - b->data)) &&
        cp_count_upto(b->data, (size_t)(eq - b->data), 2) <= 2) {
        size_t off = (size_t)(eq + 1 - b->data);
        memmove(b->data, eq + 1, b->len - off);
        b->len -= off;
        b->data[b->len] = '\0';
    }
    if ((rc = fix_sqrt(b)) < 0 || (rc = buf_replace(b, " ", "")) < 0 || (rc = fix_fracs(b)) < 0)
        return rc;
    if (b->len == 3 && memcmp(b->data, "0.5", 3) == 0 && (rc = buf_set(b, "\\frac{1}{2}", 11)) < 0)
        return rc;
    return fix_a_slash_b(b);
}

int qe_lm_strip_string(const char *s, char **out)
{
    *out = NULL;
    qe_buf b = QE_BUF_INIT;
    int rc = buf_set(&b, s, strlen(s));
    if (rc == 0)
        rc = strip_steps(&b);
    if (rc < 0) {
        qe_buf_free(&b);
        return rc;
    }
    *out = qe_buf_detach(&b);
    return *out ? 0 : QE_ENOMEM;
}

bool qe_lm_is_equiv(const char *a, const char *b)
{
    if (!a || !b)
        return !a && !b;
    char *sa = NULL, *sb = NULL;
    bool eq;
    if (qe_lm_strip_string(a, &sa) == 0 && qe_lm_strip_string(b, &sb) == 0)
        eq = strcmp(sa, sb) == 0;
    else
        eq = strcmp(a, b) == 0;
    free(sa);
    free(sb);
    return eq;
}

/* ---- process_results ---- */

static char *dollar_slice(const char *r)
{
    const char *first = strchr(r, '$'), *last = strrchr(r, '$');
    if (!first || first == last)
        return strdup(r);
    return dupn(first + 1, (size_t)(last - first - 1));
}

enum task_kind { T_NONE, T_MATH500, T_AIME24, T_AIME25, T_GSM8K };

static enum task_kind task_kind(const char *task)
{
    if (!task)
        return T_NONE;
    if (!strcmp(task, "hendrycks_math500"))
        return T_MATH500;
    if (!strcmp(task, "aime24"))
        return T_AIME24;
    if (!strcmp(task, "aime25"))
        return T_AIME25;
    if (!strcmp(task, "gsm8k"))
        return T_GSM8K;
    return T_NONE;
}

int qe_lm_extract_answer(const char *task, const char *response, char **out)
{
    *out = NULL;
    enum task_kind k = task_kind(task);
    if (k != T_MATH500 && k != T_AIME24 && k != T_AIME25)
        return QE_EINVAL;
    char *ans = dollar_slice(response);
    if (!ans)
        return QE_ENOMEM;
    if (k != T_MATH500) {
        char *boxed = qe_lm_last_boxed_only_string(response);
        if (boxed) {
            char *inner = NULL;
            int rc = qe_lm_remove_boxed(boxed, &inner);
            free(boxed);
            if (rc == QE_ENOMEM) {
                free(ans);
                return rc;
            }
            if (rc == 0) {
                free(ans);
                ans = inner;
            }
        }
    }
    *out = ans;
    return 0;
}

/* ---- gsm8k ---- */

int qe_lm_gsm8k_filter(const char *which, const char *response, char **out, qe_err *err)
{
    *out = NULL;
    const char *pat;
    bool last;
    if (which && !strcmp(which, "strict-match")) {
        pat = "#### (\\-?[0-9\\.\\,]+)";
        last = false;
    } else if (which && !strcmp(which, "flexible-extract")) {
        pat = "(-?[$0-9.,]{2,})|(-?[0-9]+)";
        last = true;
    } else {
        return qe_err_set(err, QE_EINVAL, "gsm8k filter: unknown filter '%s'", which ? which : "(null)");
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    if (!re)
        return qe_err_set(err, QE_ENOMEM, "gsm8k filter: pcre2_compile failed (%d)", ec);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        pcre2_code_free(re);
        return qe_err_set(err, QE_ENOMEM, "gsm8k filter: out of memory");
    }
    size_t n = strlen(response), pos = 0;
    size_t bs = 0, bl = 0;
    bool found = false;
    int rc = 0;
    /* findall: non-overlapping matches left to right; strict takes the first,
     * flexible the last; a tuple match yields its first non-empty group. */
    while (pos <= n) {
        int m = pcre2_match(re, (PCRE2_SPTR)response, n, pos, 0, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH)
            break;
        if (m < 0) {
            rc = qe_err_set(err, QE_ELIMIT, "gsm8k filter: pcre2_match error %d", m);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        found = true;
        bs = bl = 0;
        for (int g = 1; g < m; g++) {
            if (ov[2 * g] != PCRE2_UNSET && ov[2 * g + 1] > ov[2 * g]) {
                bs = ov[2 * g];
                bl = ov[2 * g + 1] - ov[2 * g];
                break;
            }
        }
        if (!last)
            break;
        pos = ov[1] > ov[0] ? ov[1] : ov[1] + 1; /* patterns never match empty */
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (rc < 0)
        return rc;
    /* Group text is digits/.,$- only, so Python's .strip() never changes it;
     * an all-empty tuple would give the fallback, which cannot happen here. */
    *out = (found && bl) ? dupn(response + bs, bl) : strdup("[invalid]");
    if (!*out)
        return qe_err_set(err, QE_ENOMEM, "gsm8k filter: out of memory");
    return 0;
}

/* regexes_to_ignore, in order: ",", "\$", "(?s).*#### ", "\.$" (Python's $
 * also matches before a final newline); then str.lower with numpy's <U
 * width: the lowered text is cut back to the pre-lowering code-point count. */
static char *gsm8k_normalize(const char *s)
{
    qe_buf b = QE_BUF_INIT;
    if (buf_set(&b, s, strlen(s)) < 0 || buf_replace(&b, ",", "") < 0 || buf_replace(&b, "$", "") < 0)
        goto oom;
    const char *h = rfind(b.data, b.len, "#### ");
    if (h) {
        size_t off = (size_t)(h + 5 - b.data);
        memmove(b.data, h + 5, b.len - off);
        b.len -= off;
        b.data[b.len] = '\0';
    }
    if (b.len >= 1 && b.data[b.len - 1] == '.') {
        b.data[--b.len] = '\0';
    } else if (b.len >= 2 && b.data[b.len - 1] == '\n' && b.data[b.len - 2] == '.') {
        b.data[b.len - 2] = '\n';
        b.data[--b.len] = '\0';
    }
    size_t width = cp_count_upto(b.data, b.len, SIZE_MAX - 1);
    qe_buf o = QE_BUF_INIT;
    size_t i = 0, k = 0;
    while (i < b.len && k < width) {
        uint32_t cp;
        size_t l = utf8_next((const unsigned char *)b.data + i, b.len - i, &cp);
        int r = 0;
        if (cp >= 'A' && cp <= 'Z')
            r = qe_buf_putc(&o, (char)(cp + 32));
        else if (cp == 0x212A) /* KELVIN SIGN */
            r = qe_buf_putc(&o, 'k');
        else if (cp == 0x130) { /* I WITH DOT ABOVE -> i + COMBINING DOT ABOVE */
            r = qe_buf_putc(&o, 'i');
            if (r == 0 && ++k < width)
                r = qe_buf_puts(&o, "\xcc\x87");
        } else
            r = qe_buf_append(&o, b.data + i, l);
        if (r < 0) {
            qe_buf_free(&o);
            goto oom;
        }
        k++;
        i += l;
    }
    qe_buf_free(&b);
    if (buf_terminate(&o) < 0) {
        qe_buf_free(&o);
        return NULL;
    }
    return qe_buf_detach(&o);
oom:
    qe_buf_free(&b);
    return NULL;
}

int qe_lm_gsm8k_final_answer(char *s)
{
    char *h = NULL;
    for (char *q = s; (q = strstr(q, "####")); q += 4)
        h = q;
    if (!h)
        return -1;
    h += 4;
    while (*h == ' ' || *h == '\t' || *h == '\n' || *h == '\r')
        h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t' || h[n - 1] == '\n' || h[n - 1] == '\r'))
        n--;
    memmove(s, h, n);
    s[n] = '\0';
    return 0;
}

int qe_lm_gsm8k_exact_match(const char *pred, const char *ref, char **norm_pred, char **norm_ref)
{
    char *p = gsm8k_normalize(pred), *r = gsm8k_normalize(ref);
    int rc = (p && r) ? strcmp(p, r) == 0 : QE_ENOMEM;
    if (norm_pred && rc >= 0) {
        *norm_pred = p;
        p = NULL;
    }
    if (norm_ref && rc >= 0) {
        *norm_ref = r;
        r = NULL;
    }
    free(p);
    free(r);
    return rc;
}

/* ---- docs, targets ---- */

/* Python str(x) of a JSON scalar; arrays/objects are refused. */
static int py_str(const json_t *v, char **out, const char *field, qe_err *err)
{
    char tmp[64];
    *out = NULL;
    if (json_is_string(v)) {
        *out = dupn(json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *out = strdup(tmp);
    } else if (json_is_true(v)) {
        *out = strdup("True");
    } else if (json_is_false(v)) {
        *out = strdup("False");
    } else if (json_is_null(v)) {
        *out = strdup("None");
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        for (int prec = 1; prec <= 17; prec++) { /* shortest round trip, like repr() */
            snprintf(tmp, sizeof tmp, "%.*g", prec, d);
            if (strtod(tmp, NULL) == d)
                break;
        }
        if (!strpbrk(tmp, ".eni")) /* repr(33.0) is "33.0" */
            strcat(tmp, ".0");
        *out = strdup(tmp);
    } else {
        return qe_err_set(err, QE_EINVAL, "doc field '%s': arrays/objects are not supported", field);
    }
    if (json_is_string(v) && memchr(json_string_value(v), 0, json_string_length(v))) {
        free(*out);
        *out = NULL;
        return qe_err_set(err, QE_EINVAL, "doc field '%s': contains NUL", field);
    }
    return *out ? 0 : qe_err_set(err, QE_ENOMEM, "doc field '%s': out of memory", field);
}

/* First key whose ASCII-lowered form is "answer", in doc order. */
static const json_t *answer_field(const json_t *doc, const char **name)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)doc, key, val) {
        if (strcasecmp(key, "answer") == 0) {
            *name = key;
            return val;
        }
    }
    return NULL;
}

static int gold_math500(const json_t *doc, char **out, qe_err *err)
{
    const json_t *sol = json_object_get(doc, "solution");
    if (!json_is_string(sol))
        return qe_err_set(err, QE_EINVAL, "hendrycks_math500 doc: 'solution' missing or not a string");
    char *boxed = qe_lm_last_boxed_only_string(json_string_value(sol));
    if (!boxed)
        return qe_err_set(err, QE_EINVAL, "hendrycks_math500 doc: solution has no closed \\boxed{} "
                                          "(lm-eval raises TypeError)");
    int rc = qe_lm_remove_boxed(boxed, out);
    free(boxed);
    if (rc < 0)
        return qe_err_set(err, rc == QE_ENOMEM ? QE_ENOMEM : QE_EINVAL,
                          "hendrycks_math500 doc: remove_boxed on the solution raises %s",
                          qe_lm_raise_name(rc));
    return 0;
}

int qe_lm_gold(const char *task, const json_t *doc, char **out, qe_err *err)
{
    *out = NULL;
    if (!json_is_object(doc))
        return qe_err_set(err, QE_EINVAL, "doc is not a JSON object");
    switch (task_kind(task)) {
    case T_MATH500: return gold_math500(doc, out, err);
    case T_AIME24:
    case T_AIME25: {
        const char *name = "answer";
        const json_t *a = answer_field(doc, &name);
        if (!a)
            return qe_err_set(err, QE_EINVAL, "%s doc: no 'answer' field (any case)", task);
        return py_str(a, out, name, err);
    }
    case T_GSM8K: return qe_lm_target(task, doc, out, err);
    default: return qe_err_set(err, QE_EINVAL, "unknown lm-eval task '%s'", task ? task : "(null)");
    }
}

int qe_lm_target(const char *task, const json_t *doc, char **out, qe_err *err)
{
    *out = NULL;
    if (!json_is_object(doc))
        return qe_err_set(err, QE_EINVAL, "doc is not a JSON object");
    switch (task_kind(task)) {
    case T_MATH500: {
        const json_t *a = json_object_get(doc, "answer");
        if (a) /* doc_to_target "{{answer}}", the process_docs answer */
            return py_str(a, out, "answer", err);
        return gold_math500(doc, out, err);
    }
    case T_AIME24:
    case T_AIME25: return qe_lm_gold(task, doc, out, err);
    case T_GSM8K: {
        const json_t *a = json_object_get(doc, "answer");
        if (!a)
            return qe_err_set(err, QE_EINVAL, "gsm8k doc: 'answer' missing");
        return py_str(a, out, "answer", err);
    }
    default: return qe_err_set(err, QE_EINVAL, "unknown lm-eval task '%s'", task ? task : "(null)");
    }
}

void qe_lm_score_free(qe_lm_score *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < 2; i++) {
        free(s->f[i].filtered_resp);
        free(s->f[i].extracted);
        free(s->f[i].gold);
    }
    free(s->target);
    memset(s, 0, sizeof *s);
}

int qe_lm_score_doc(const char *task, const json_t *doc, const char *response, qe_lm_score *out,
                    qe_err *err)
{
    memset(out, 0, sizeof *out);
    enum task_kind k = task_kind(task);
    if (k == T_NONE)
        return qe_err_set(err, QE_EINVAL, "unknown lm-eval task '%s'", task ? task : "(null)");
    if (!response)
        response = ""; /* lm-eval: non-str responses become "" in the regex filter; None content is "" */
    if (strlen(response) > QE_LM_MAX_INPUT)
        return qe_err_set(err, QE_ELIMIT, "response longer than %u bytes", QE_LM_MAX_INPUT);
    int rc = qe_lm_target(task, doc, &out->target, err);
    if (rc < 0)
        goto fail;
    if (k == T_GSM8K) {
        static const char *const names[2] = {"strict-match", "flexible-extract"};
        out->n = 2;
        for (size_t i = 0; i < 2; i++) {
            qe_lm_filter_score *f = &out->f[i];
            snprintf(f->filter, sizeof f->filter, "%s", names[i]);
            f->metric = "exact_match";
            if ((rc = qe_lm_gsm8k_filter(names[i], response, &f->filtered_resp, err)) < 0)
                goto fail;
            rc = qe_lm_gsm8k_exact_match(f->filtered_resp, out->target, &f->extracted, &f->gold);
            if (rc < 0) {
                qe_err_set(err, rc, "gsm8k exact_match: out of memory");
                goto fail;
            }
            f->value = rc;
        }
        return 0;
    }
    qe_lm_filter_score *f = &out->f[0];
    out->n = 1;
    snprintf(f->filter, sizeof f->filter, "none");
    f->metric = "exact_match";
    if (!(f->filtered_resp = strdup(response))) {
        rc = qe_err_set(err, QE_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = qe_lm_gold(task, doc, &f->gold, err)) < 0)
        goto fail;
    if ((rc = qe_lm_extract_answer(task, response, &f->extracted)) < 0) {
        qe_err_set(err, rc, "%s: answer extraction failed", task);
        goto fail;
    }
    f->value = qe_lm_is_equiv(f->extracted, f->gold) ? 1 : 0;
    return 0;
fail:
    qe_lm_score_free(out);
    return rc;
}
