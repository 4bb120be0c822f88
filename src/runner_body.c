/* runner_body: request bodies from per-task pieces (see runner_body.h).
 *
 * Why not jansson per request: building a tree (an object, a string copy of
 * the prompt, deep copies of every gen kwarg) and dumping it was ~3 us of
 * CPU per answer, as much as the rest of the runner's own work. The pieces
 * are made BY jansson (the whole body with placeholders, dumped once), so
 * key order, number formatting and the gen kwargs' own escaping are
 * jansson's by construction; only the per-request strings are escaped here,
 * with jansson's rules for json_dumps without JSON_ENSURE_ASCII and
 * JSON_ESCAPE_SLASH: '"' and '\\' and bytes < 0x20 escaped (\b \f \n \r \t
 * short, others \u00XX upper-case hex), everything else (UTF-8 included)
 * copied. jansson refuses strings that are not valid UTF-8 (json_string
 * returns NULL and the reference body then lacks the field): such a string
 * sends the request through the reference builder, so even that case is
 * identical. */
#include "runner_body.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genkw.h"

/* Placeholders in the template; a template in which either does not occur
 * exactly once (a gen kwarg replaced the prompt, or happens to contain the
 * same text) is not used: every body then goes the reference way. */
#define VALUE_SENTINEL "\x01qeval-runner-body-value\x01"
#define SEED_SENTINEL (-7777777777777777771LL)
#define MAX_MSG_DEPTH 16

enum hole { HOLE_VALUE, HOLE_SEED };

struct qe_runner_body {
    qe_runner_body_spec spec;
    bool fast;
    char *tpl;            /* the body with both placeholders */
    size_t len;
    size_t at[2], cut[2]; /* holes in position order: offset, bytes replaced */
    enum hole kind[2];
};

char *qe_runner_body_reference(const qe_runner_body_spec *s, const char *prompt,
                               const json_t *msgs, long long seed, qe_err *e)
{
    json_t *b = json_object();
    if (!b) {
        qe_err_set(e, QE_ENOMEM, "out of memory building a request");
        return NULL;
    }
    json_object_set_new(b, "model", json_string(s->model));
    if (s->chat)
        json_object_set(b, "messages", (json_t *)msgs);
    else
        json_object_set_new(b, "prompt", json_string(prompt));
    if (qe_genkw_request(s->merged, seed, b, e)) {
        json_decref(b);
        return NULL;
    }
    if (s->ctk) {
        json_t *have = json_object_get(b, "chat_template_kwargs");
        if (json_is_object(have))
            json_object_update(have, (json_t *)s->ctk);
        else
            json_object_set_new(b, "chat_template_kwargs", json_deep_copy(s->ctk));
    }
    char *out = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    if (!out)
        qe_err_set(e, QE_ENOMEM, "out of memory building a request");
    return out;
}

/* Occurrences of needle in hay (counted up to 2); *at = the first. */
static int count_of(const char *hay, const char *needle, size_t *at)
{
    int n = 0;
    size_t nl = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)) && n < 2; p += nl) {
        if (n == 0)
            *at = (size_t)(p - hay);
        n++;
    }
    return n;
}

int qe_runner_body_new(const qe_runner_body_spec *s, qe_runner_body **out, qe_err *e)
{
    *out = NULL;
    qe_runner_body *b = calloc(1, sizeof *b);
    if (!b)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    b->spec = *s;
    json_t *val = json_string(VALUE_SENTINEL);
    char *needle = val ? json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    b->tpl = needle ? qe_runner_body_reference(s, VALUE_SENTINEL, val, SEED_SENTINEL, e) : NULL;
    json_decref(val);
    if (!b->tpl) {
        int rc = needle ? (e && e->code ? e->code : QE_ENOMEM)
                        : qe_err_set(e, QE_ENOMEM, "out of memory");
        free(needle);
        qe_runner_body_free(b);
        return rc;
    }
    b->len = strlen(b->tpl);
    char seed[32];
    snprintf(seed, sizeof seed, "%lld", SEED_SENTINEL);
    size_t va = 0, sa = 0;
    if (count_of(b->tpl, needle, &va) == 1 && count_of(b->tpl, seed, &sa) == 1) {
        size_t vl = strlen(needle), sl = strlen(seed);
        bool v_first = va < sa;
        b->at[0] = v_first ? va : sa;
        b->cut[0] = v_first ? vl : sl;
        b->kind[0] = v_first ? HOLE_VALUE : HOLE_SEED;
        b->at[1] = v_first ? sa : va;
        b->cut[1] = v_first ? sl : vl;
        b->kind[1] = v_first ? HOLE_SEED : HOLE_VALUE;
        /* the two never overlap: one is inside a string, the other a number */
        b->fast = b->at[0] + b->cut[0] <= b->at[1];
    }
    free(needle);
    *out = b;
    return 0;
}

void qe_runner_body_free(qe_runner_body *b)
{
    if (!b)
        return;
    free(b->tpl);
    free(b);
}

bool qe_runner_body_is_fast(const qe_runner_body *b)
{
    return b && b->fast;
}

/* Length of the valid UTF-8 sequence at p (jansson's rules: no overlong
 * forms, no surrogates, nothing above U+10FFFF), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    uint32_t v;
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        n = 2;
        v = c & 0x1F;
    } else if (c < 0xF0) {
        n = 3;
        v = c & 0x0F;
    } else if (c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || (v >= 0xD800 && v <= 0xDFFF) ||
        v > 0x10FFFF)
        return 0;
    return n;
}

bool qe_runner_body_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        /* ASCII runs (nearly all of a prompt) 8 bytes at a time */
        while (end - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            if (v & 0x8080808080808080ull)
                break;
            p += 8;
        }
        if (p >= end)
            break;
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_seq(p, end);
        if (!k)
            return false;
        p += k;
    }
    return true;
}

/* Appends s (n bytes) as jansson dumps a string. 0, 1 = not valid UTF-8
 * (jansson would refuse it), QE_ENOMEM. */
static int put_string(qe_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    /* worst case every byte becomes \u00XX */
    if (qe_buf_reserve(out, n * 6 + 2))
        return QE_ENOMEM;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    char *w = out->data + out->len;
    *w++ = '"';
    while (p < end) {
        unsigned c = *p;
        if (c >= 0x20 && c != '"' && c != '\\') {
            if (c < 0x80) {
                *w++ = (char)c;
                p++;
                continue;
            }
            size_t k = utf8_seq(p, end);
            if (!k)
                return 1;
            memcpy(w, p, k);
            w += k;
            p += k;
            continue;
        }
        *w++ = '\\';
        switch (c) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '\b': *w++ = 'b'; break;
        case '\f': *w++ = 'f'; break;
        case '\n': *w++ = 'n'; break;
        case '\r': *w++ = 'r'; break;
        case '\t': *w++ = 't'; break;
        default:
            *w++ = 'u';
            *w++ = '0';
            *w++ = '0';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        }
        p++;
    }
    *w++ = '"';
    out->len = (size_t)(w - out->data);
    out->data[out->len] = '\0';
    return 0;
}

/* Appends v as json_dumps(JSON_COMPACT) would, for the values messages are
 * made of. 0, 1 = a value this does not reproduce (a real, too deep, bad
 * UTF-8), QE_ENOMEM. */
static int put_value(qe_buf *out, const json_t *v, int depth)
{
    if (depth > MAX_MSG_DEPTH)
        return 1;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return put_string(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return qe_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) ? QE_ENOMEM : 0;
    case JSON_TRUE:
        return qe_buf_puts(out, "true") ? QE_ENOMEM : 0;
    case JSON_FALSE:
        return qe_buf_puts(out, "false") ? QE_ENOMEM : 0;
    case JSON_NULL:
        return qe_buf_puts(out, "null") ? QE_ENOMEM : 0;
    case JSON_ARRAY: {
        if (qe_buf_putc(out, '['))
            return QE_ENOMEM;
        for (size_t i = 0; i < json_array_size(v); i++) {
            int rc;
            if ((i && qe_buf_putc(out, ',')))
                return QE_ENOMEM;
            if ((rc = put_value(out, json_array_get(v, i), depth + 1)))
                return rc;
        }
        return qe_buf_putc(out, ']') ? QE_ENOMEM : 0;
    }
    case JSON_OBJECT: {
        if (qe_buf_putc(out, '{'))
            return QE_ENOMEM;
        const char *k;
        json_t *x;
        bool first = true;
        json_object_foreach((json_t *)v, k, x) {
            int rc;
            if (!first && qe_buf_putc(out, ','))
                return QE_ENOMEM;
            first = false;
            if ((rc = put_string(out, k, strlen(k))))
                return rc;
            if (qe_buf_putc(out, ':'))
                return QE_ENOMEM;
            if ((rc = put_value(out, x, depth + 1)))
                return rc;
        }
        return qe_buf_putc(out, '}') ? QE_ENOMEM : 0;
    }
    default:
        return 1; /* reals: jansson's own formatting, via the reference */
    }
}

int qe_runner_body_prepare(const qe_runner_body *b, const char *prompt, const json_t *msgs,
                           qe_buf *value)
{
    qe_buf_reset(value);
    if (!b->fast || (b->spec.chat ? !msgs : !prompt))
        return 1;
    return b->spec.chat ? put_value(value, msgs, 0) : put_string(value, prompt, strlen(prompt));
}

char *qe_runner_body_finish(const qe_runner_body *b, const qe_buf *value, long long seed,
                            qe_err *e)
{
    char sd[32];
    int sl = snprintf(sd, sizeof sd, "%lld", seed);
    const char *fill[2];
    size_t flen[2];
    for (int i = 0; i < 2; i++) {
        fill[i] = b->kind[i] == HOLE_VALUE ? value->data : sd;
        flen[i] = b->kind[i] == HOLE_VALUE ? value->len : (size_t)sl;
    }
    size_t total = b->len - b->cut[0] - b->cut[1] + flen[0] + flen[1];
    char *out = malloc(total + 1);
    if (!out) {
        qe_err_set(e, QE_ENOMEM, "out of memory building a request");
        return NULL;
    }
    char *w = out;
    size_t from = 0;
    for (int i = 0; i < 2; i++) {
        memcpy(w, b->tpl + from, b->at[i] - from);
        w += b->at[i] - from;
        memcpy(w, fill[i], flen[i]);
        w += flen[i];
        from = b->at[i] + b->cut[i];
    }
    memcpy(w, b->tpl + from, b->len - from);
    w += b->len - from;
    *w = '\0';
    return out;
}

char *qe_runner_body_build(const qe_runner_body *b, const char *prompt, const json_t *msgs,
                           long long seed, qe_buf *scratch, qe_err *e)
{
    int rc = qe_runner_body_prepare(b, prompt, msgs, scratch);
    if (rc == 1)
        return qe_runner_body_reference(&b->spec, prompt, msgs, seed, e);
    if (rc) {
        qe_err_set(e, QE_ENOMEM, "out of memory building a request");
        return NULL;
    }
    return qe_runner_body_finish(b, scratch, seed, e);
}
