/* pyjson: Python json.dumps-identical serialization of jansson values
 * (see pyjson.h for the rules and why they matter). */
#include "pyjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qe_pyjson_float(qe_buf *out, double x)
{
    if (isnan(x))
        return qe_buf_puts(out, "NaN");
    if (isinf(x))
        return qe_buf_puts(out, x < 0 ? "-Infinity" : "Infinity");
    if (x == 0)
        return qe_buf_puts(out, signbit(x) ? "-0.0" : "0.0");

    /* Shortest digit count that round-trips; glibc's printf rounds
     * correctly, so the p-digit form is the nearest p-digit decimal. */
    char tmp[48];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, x);
        if (strtod(tmp, NULL) == x)
            break;
    }
    /* tmp = [-]d[.ddd]e±XX: split into digits and decimal exponent. */
    char digits[24];
    size_t nd = 0;
    const char *s = tmp;
    int neg = 0;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    while (*s && *s != 'e') {
        if (*s != '.' && nd < sizeof digits - 1)
            digits[nd++] = *s;
        s++;
    }
    digits[nd] = '\0';
    int exp10 = (*s == 'e') ? atoi(s + 1) : 0;
    int decpt = exp10 + 1; /* digits are 0.DDDD × 10^decpt */

    char res[64];
    size_t r = 0;
    if (neg)
        res[r++] = '-';
    if (decpt <= -4 || decpt > 16) {
        res[r++] = digits[0];
        if (nd > 1) {
            res[r++] = '.';
            memcpy(res + r, digits + 1, nd - 1);
            r += nd - 1;
        }
        r += (size_t)snprintf(res + r, sizeof res - r, "e%c%02d", exp10 < 0 ? '-' : '+',
                              exp10 < 0 ? -exp10 : exp10);
    } else if (decpt <= 0) {
        res[r++] = '0';
        res[r++] = '.';
        for (int i = 0; i < -decpt; i++)
            res[r++] = '0';
        memcpy(res + r, digits, nd);
        r += nd;
    } else if ((size_t)decpt >= nd) {
        memcpy(res + r, digits, nd);
        r += nd;
        for (size_t i = nd; i < (size_t)decpt; i++)
            res[r++] = '0';
        res[r++] = '.';
        res[r++] = '0';
    } else {
        memcpy(res + r, digits, (size_t)decpt);
        r += (size_t)decpt;
        res[r++] = '.';
        memcpy(res + r, digits + decpt, nd - (size_t)decpt);
        r += nd - (size_t)decpt;
    }
    return qe_buf_append(out, res, r);
}

/* Decodes one UTF-8 sequence at s (n bytes left); returns its length and
 * stores the code point, or returns 1 with the raw byte for invalid input. */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n) {
        *cp = c;
        return 1;
    }
    unsigned v = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *cp = c;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3f);
    }
    *cp = v;
    return len;
}

int qe_pyjson_string(qe_buf *out, const char *str, size_t n, int ensure_ascii)
{
    const unsigned char *s = (const unsigned char *)str;
    if (qe_buf_reserve(out, n + 2))
        return QE_ENOMEM;
    if (qe_buf_putc(out, '"'))
        return QE_ENOMEM;
    size_t i = 0;
    while (i < n) {
        /* Copy the longest run that needs no escaping in one append. */
        size_t j = i;
        while (j < n && s[j] >= 0x20 && s[j] != '"' && s[j] != '\\' &&
               (!ensure_ascii || s[j] < 0x7f))
            j++;
        if (j > i && qe_buf_append(out, s + i, j - i))
            return QE_ENOMEM;
        i = j;
        if (i >= n)
            break;
        unsigned char c = s[i];
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default: break;
        }
        int rc;
        if (esc) {
            rc = qe_buf_puts(out, esc);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            rc = qe_buf_printf(out, "\\u%04x", c);
            i++;
        } else { /* ensure_ascii and a non-ASCII sequence */
            unsigned cp;
            i += utf8_next(s + i, n - i, &cp);
            if (cp >= 0x10000) {
                unsigned v = cp - 0x10000;
                rc = qe_buf_printf(out, "\\u%04x\\u%04x", 0xd800 | (v >> 10), 0xdc00 | (v & 0x3ff));
            } else {
                rc = qe_buf_printf(out, "\\u%04x", cp);
            }
        }
        if (rc)
            return QE_ENOMEM;
    }
    return qe_buf_putc(out, '"') ? QE_ENOMEM : 0;
}

static int newline_indent(qe_buf *out, int indent, int level)
{
    if (qe_buf_putc(out, '\n'))
        return QE_ENOMEM;
    for (long i = 0; i < (long)indent * level; i++)
        if (qe_buf_putc(out, ' '))
            return QE_ENOMEM;
    return 0;
}

static int dump(qe_buf *out, const json_t *v, int indent, int ea, int level, qe_err *e)
{
    if (level > QE_PYJSON_MAX_DEPTH)
        return qe_err_set(e, QE_ELIMIT, "JSON nested deeper than %d levels", QE_PYJSON_MAX_DEPTH);
    const char *item_sep = indent < 0 ? ", " : ",";
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_NULL: return qe_buf_puts(out, "null") ? QE_ENOMEM : 0;
    case JSON_TRUE: return qe_buf_puts(out, "true") ? QE_ENOMEM : 0;
    case JSON_FALSE: return qe_buf_puts(out, "false") ? QE_ENOMEM : 0;
    case JSON_INTEGER:
        return qe_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) ? QE_ENOMEM : 0;
    case JSON_REAL: return qe_pyjson_float(out, json_real_value(v)) ? QE_ENOMEM : 0;
    case JSON_STRING:
        return qe_pyjson_string(out, json_string_value(v), json_string_length(v), ea);
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (n == 0)
            return qe_buf_puts(out, "[]") ? QE_ENOMEM : 0;
        if (qe_buf_putc(out, '['))
            return QE_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            if (i && qe_buf_puts(out, item_sep))
                return QE_ENOMEM;
            if (indent >= 0 && (rc = newline_indent(out, indent, level + 1)))
                return rc;
            if ((rc = dump(out, json_array_get(v, i), indent, ea, level + 1, e)))
                return rc;
        }
        if (indent >= 0 && (rc = newline_indent(out, indent, level)))
            return rc;
        return qe_buf_putc(out, ']') ? QE_ENOMEM : 0;
    }
    case JSON_OBJECT: {
        if (json_object_size(v) == 0)
            return qe_buf_puts(out, "{}") ? QE_ENOMEM : 0;
        if (qe_buf_putc(out, '{'))
            return QE_ENOMEM;
        const char *key;
        json_t *val;
        int first = 1;
        /* json_object_foreach needs a non-const object; iteration does not
         * modify it. */
        json_t *obj = (json_t *)v;
        json_object_foreach(obj, key, val) {
            if (!first && qe_buf_puts(out, item_sep))
                return QE_ENOMEM;
            first = 0;
            if (indent >= 0 && (rc = newline_indent(out, indent, level + 1)))
                return rc;
            if ((rc = qe_pyjson_string(out, key, strlen(key), ea)))
                return rc;
            if (qe_buf_puts(out, ": "))
                return QE_ENOMEM;
            if ((rc = dump(out, val, indent, ea, level + 1, e)))
                return rc;
        }
        if (indent >= 0 && (rc = newline_indent(out, indent, level)))
            return rc;
        return qe_buf_putc(out, '}') ? QE_ENOMEM : 0;
    }
    }
    return qe_err_set(e, QE_EINVAL, "unsupported JSON value type");
}

int qe_pyjson_dump(qe_buf *out, const json_t *v, int indent, int ensure_ascii, qe_err *e)
{
    if (!v)
        return qe_err_set(e, QE_EINVAL, "no JSON value to serialize");
    int rc = dump(out, v, indent, ensure_ascii, 0, e);
    if (rc == QE_ENOMEM)
        qe_err_set(e, QE_ENOMEM, "out of memory serializing JSON");
    return rc;
}
