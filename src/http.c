/* http: incremental HTTP/1.1 response parser and request formatter (see
 * http.h). A small state machine over lines (status, headers, chunk sizes,
 * trailers) and counted byte runs (bodies, chunks). A line that arrives in
 * one piece is parsed where it lies; only a line split across reads is
 * copied, into p->line. Every limit is checked before memory grows. */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"

enum {
    S_STATUS,     /* the status line */
    S_HEADERS,    /* header lines up to the blank line */
    S_BODY,       /* Content-Length body: p->left bytes to go */
    S_CLOSE,      /* body delimited by the connection closing */
    S_CHUNK_SIZE, /* a chunk-size line */
    S_CHUNK_DATA, /* p->left bytes of chunk data */
    S_CHUNK_END,  /* the CRLF after chunk data */
    S_TRAILER,    /* trailer lines after the last chunk */
    S_DONE,
    S_ERROR,
};

void qe_http_parser_init(qe_http_parser *p, size_t body_cap)
{
    memset(p, 0, sizeof *p);
    qe_http_parser_reset(p, body_cap);
}

void qe_http_parser_reset(qe_http_parser *p, size_t body_cap)
{
    qe_buf line = p->line;
    memset(p, 0, sizeof *p);
    p->line = line;
    qe_buf_reset(&p->line);
    p->state = S_STATUS;
    p->retry_after_s = -1;
    p->cap = body_cap;
}

void qe_http_parser_free(qe_http_parser *p)
{
    qe_buf_free(&p->line);
}

bool qe_http_parser_untouched(const qe_http_parser *p)
{
    return p->state == S_STATUS && p->total_bytes == 0;
}

static int fail(qe_http_parser *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(qe_http_parser *p, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    p->state = S_ERROR;
    p->errc = code;
    return code;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

long qe_http_retry_after(const char *v, size_t n)
{
    size_t i = 0;
    while (i < n && (is_blank(v[i]) || v[i] == '\r' || v[i] == '\n'))
        i++;
    size_t d0 = i;
    long x = 0;
    while (i < n && v[i] >= '0' && v[i] <= '9') {
        if (i - d0 >= 12)
            return -1; /* absurd; and keeps x far from overflow */
        x = x * 10 + (v[i] - '0');
        i++;
    }
    if (i == d0)
        return -1;
    while (i < n && (is_blank(v[i]) || v[i] == '\r' || v[i] == '\n'))
        i++;
    return i == n ? x : -1;
}

/* Printable excerpt of untrusted bytes for a message. */
static void show(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    if (k + 4 >= cap && n > k && cap > 4) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = 0;
}

static int parse_status(qe_http_parser *p, const char *s, size_t n)
{
    char ex[64];
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ' ||
        s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9' ||
        (n > 12 && s[12] != ' ')) {
        show(s, n, ex, sizeof ex);
        return fail(p, QE_ESERVER, "malformed HTTP status line: %s", ex);
    }
    p->minor = s[7] - '0';
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    p->state = S_HEADERS;
    return 0;
}

/* RFC 9110 tchar: what a header name may hold (a table: this runs per byte
 * of every header name). */
static bool token_char(unsigned char c)
{
    static const unsigned char sep[128] = {['"'] = 1, ['('] = 1, [')'] = 1, [','] = 1,
                                           ['/'] = 1, [':'] = 1, [';'] = 1, ['<'] = 1,
                                           ['='] = 1, ['>'] = 1, ['?'] = 1, ['@'] = 1,
                                           ['['] = 1, ['\\'] = 1, [']'] = 1, ['{'] = 1,
                                           ['}'] = 1};
    return c > 0x20 && c < 0x7F && !sep[c];
}

/* Does the comma-separated list v contain tok (case-insensitive)? */
static bool has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (is_blank(v[i]) || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && is_blank(v[e - 1]))
            e--;
        if (e - s == tl && !strncasecmp(v + s, tok, tl))
            return true;
    }
    return false;
}

#define NAME_IS(lit) (nl == sizeof lit - 1 && !strncasecmp(s, lit, nl))

static int parse_header(qe_http_parser *p, const char *s, size_t n, bool trailer)
{
    char ex[64];
    if (n > 0 && is_blank(s[0]))
        return fail(p, QE_ESERVER, "obsolete folded header line in HTTP reply");
    size_t nl = 0;
    while (nl < n && token_char((unsigned char)s[nl]))
        nl++;
    if (nl == 0 || nl == n || s[nl] != ':') {
        show(s, n, ex, sizeof ex);
        return fail(p, QE_ESERVER, "malformed HTTP header line: %s", ex);
    }
    const char *v = s + nl + 1;
    size_t vn = n - nl - 1;
    while (vn > 0 && is_blank(*v)) {
        v++;
        vn--;
    }
    while (vn > 0 && is_blank(v[vn - 1]))
        vn--;
    if (trailer)
        return 0; /* trailers carry nothing we use */
    if (NAME_IS("content-length")) {
        uint64_t x = 0;
        if (vn == 0 || vn > 18)
            goto bad_cl;
        for (size_t i = 0; i < vn; i++) {
            if (v[i] < '0' || v[i] > '9')
                goto bad_cl;
            x = x * 10 + (uint64_t)(v[i] - '0');
        }
        if (p->has_length && x != p->content_length)
            return fail(p, QE_ESERVER, "conflicting Content-Length headers in HTTP reply");
        p->has_length = true;
        p->content_length = x;
        return 0;
    bad_cl:
        show(v, vn, ex, sizeof ex);
        return fail(p, QE_ESERVER, "bad Content-Length in HTTP reply: %s", ex);
    }
    if (NAME_IS("transfer-encoding")) {
        if (p->chunked || !(vn == 7 && !strncasecmp(v, "chunked", 7))) {
            show(v, vn, ex, sizeof ex);
            return fail(p, QE_ESERVER, "unsupported Transfer-Encoding in HTTP reply: %s", ex);
        }
        p->chunked = true;
        return 0;
    }
    if (NAME_IS("connection")) {
        if (has_token(v, vn, "close"))
            p->conn_close = true;
        if (has_token(v, vn, "keep-alive"))
            p->conn_ka = true;
        return 0;
    }
    if (NAME_IS("retry-after")) {
        p->retry_after_s = qe_http_retry_after(v, vn);
        return 0;
    }
    return 0;
}

/* The blank line after the headers: decide how the body is delimited. */
static int headers_done(qe_http_parser *p, qe_buf *body)
{
    if (p->status < 200) {
        if (p->status == 101)
            return fail(p, QE_ESERVER, "unexpected HTTP 101 (protocol switch) in reply");
        /* interim response (100 Continue, 103 Early Hints): the real one follows */
        size_t hb = p->header_bytes, tb = p->total_bytes;
        qe_http_parser_reset(p, p->cap);
        p->header_bytes = hb;
        p->total_bytes = tb;
        return 0;
    }
    p->keep_alive = p->minor >= 1 ? !p->conn_close : (p->conn_ka && !p->conn_close);
    if (p->status == 204 || p->status == 304) {
        p->state = S_DONE;
        return 0;
    }
    if (p->chunked) {
        if (p->has_length)
            p->keep_alive = false; /* both: chunked wins, connection not trusted */
        p->state = S_CHUNK_SIZE;
        return 0;
    }
    if (p->has_length) {
        if (p->content_length > p->cap) {
            p->body_over_cap = true;
            return fail(p, QE_ELIMIT, "reply body of %llu bytes exceeds the %zu-byte limit",
                        (unsigned long long)p->content_length, p->cap);
        }
        if (p->content_length == 0) {
            p->state = S_DONE;
            return 0;
        }
        if (qe_buf_reserve(body, (size_t)p->content_length))
            return fail(p, QE_ENOMEM, "out of memory for a %llu-byte reply",
                        (unsigned long long)p->content_length);
        p->left = p->content_length;
        p->state = S_BODY;
        return 0;
    }
    p->keep_alive = false;
    p->state = S_CLOSE;
    return 0;
}

static int parse_chunk_size(qe_http_parser *p, const char *s, size_t n)
{
    char ex[64];
    size_t i = 0;
    uint64_t x = 0;
    while (i < n) {
        int h;
        char c = s[i];
        if (c >= '0' && c <= '9') h = c - '0';
        else if (c >= 'a' && c <= 'f') h = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') h = c - 'A' + 10;
        else break;
        if (i >= 15)
            goto bad;
        x = x * 16 + (uint64_t)h;
        i++;
    }
    if (i == 0 || (i < n && !is_blank(s[i]) && s[i] != ';'))
        goto bad;
    /* chunk extensions (";name=value") are ignored */
    if (x == 0) {
        p->state = S_TRAILER;
        return 0;
    }
    if (x > p->cap - p->body_bytes) {
        p->body_over_cap = true;
        return fail(p, QE_ELIMIT, "reply body exceeds the %zu-byte limit", p->cap);
    }
    p->left = x;
    p->state = S_CHUNK_DATA;
    return 0;
bad:
    show(s, n, ex, sizeof ex);
    return fail(p, QE_ESERVER, "bad chunk size line in HTTP reply: %s", ex);
}

/* Gets the next line from data[*i..n) (CRLF or LF stripped), zero-copy when
 * it lies whole in data. 1: line and len set; 0: partial line kept, need
 * more; < 0: error. */
static int take_line(qe_http_parser *p, const char *data, size_t n, size_t *i, const char **line,
                     size_t *len, size_t limit)
{
    const char *s = data + *i;
    size_t avail = n - *i;
    const char *nl = memchr(s, '\n', avail);
    size_t k = nl ? (size_t)(nl - s) + 1 : avail;
    if (p->line.len + k > limit + 2)
        return fail(p, QE_ELIMIT, "HTTP reply line longer than %zu bytes", limit);
    *i += k;
    p->total_bytes += k;
    if (!nl) {
        if (qe_buf_append(&p->line, s, k))
            return fail(p, QE_ENOMEM, "out of memory reading an HTTP reply");
        return 0;
    }
    if (p->line.len) {
        if (qe_buf_append(&p->line, s, k))
            return fail(p, QE_ENOMEM, "out of memory reading an HTTP reply");
        s = p->line.data;
        k = p->line.len;
    }
    k--; /* '\n' */
    if (k > 0 && s[k - 1] == '\r')
        k--;
    *line = s;
    *len = k;
    return 1;
}

int qe_http_feed(qe_http_parser *p, const char *data, size_t n, size_t *used, qe_buf *body)
{
    size_t i = 0;
    int rc = 0;
    while (rc == 0 && p->state != S_DONE && p->state != S_ERROR && i < n) {
        switch (p->state) {
        case S_STATUS:
        case S_HEADERS:
        case S_TRAILER:
        case S_CHUNK_SIZE:
        case S_CHUNK_END: {
            const char *s = NULL;
            size_t len = 0;
            bool head = p->state != S_CHUNK_SIZE && p->state != S_CHUNK_END;
            size_t before = i;
            int t = take_line(p, data, n, &i, &s, &len, QE_HTTP_MAX_LINE);
            if (head) {
                p->header_bytes += i - before;
                if (p->header_bytes > QE_HTTP_MAX_HEADER_BYTES) {
                    rc = fail(p, QE_ELIMIT, "HTTP reply headers exceed %d bytes",
                              QE_HTTP_MAX_HEADER_BYTES);
                    break;
                }
            }
            if (t <= 0) {
                rc = t;
                break;
            }
            switch (p->state) {
            case S_STATUS:
                rc = parse_status(p, s, len);
                break;
            case S_HEADERS:
                rc = len == 0 ? headers_done(p, body) : parse_header(p, s, len, false);
                break;
            case S_TRAILER:
                if (len == 0)
                    p->state = S_DONE;
                else
                    rc = parse_header(p, s, len, true);
                break;
            case S_CHUNK_SIZE:
                rc = parse_chunk_size(p, s, len);
                break;
            default: /* S_CHUNK_END */
                if (len != 0)
                    rc = fail(p, QE_ESERVER, "chunk data longer than its size in HTTP reply");
                else
                    p->state = S_CHUNK_SIZE;
                break;
            }
            qe_buf_reset(&p->line);
            break;
        }
        case S_BODY:
        case S_CHUNK_DATA:
        case S_CLOSE: {
            size_t k = n - i;
            if (p->state != S_CLOSE && k > p->left)
                k = (size_t)p->left;
            if (p->state == S_CLOSE && k > p->cap - p->body_bytes) {
                p->body_over_cap = true;
                rc = fail(p, QE_ELIMIT, "reply body exceeds the %zu-byte limit", p->cap);
                break;
            }
            if (qe_buf_append(body, data + i, k)) {
                rc = fail(p, QE_ENOMEM, "out of memory reading an HTTP reply body");
                break;
            }
            i += k;
            p->total_bytes += k;
            p->body_bytes += k;
            if (p->state != S_CLOSE) {
                p->left -= k;
                if (p->left == 0)
                    p->state = p->state == S_BODY ? S_DONE : S_CHUNK_END;
            }
            break;
        }
        default:
            break;
        }
    }
    *used = i;
    if (p->state == S_ERROR)
        return p->errc;
    return p->state == S_DONE ? 1 : 0;
}

int qe_http_finish(qe_http_parser *p, qe_buf *body)
{
    (void)body;
    switch (p->state) {
    case S_DONE:
    case S_CLOSE:
        p->state = S_DONE;
        return 1;
    case S_ERROR:
        return p->errc;
    case S_STATUS:
        if (p->total_bytes == 0)
            return fail(p, QE_ESERVER, "empty reply (connection closed before any byte)");
        return fail(p, QE_ESERVER, "connection closed inside the HTTP status line");
    case S_HEADERS:
        return fail(p, QE_ESERVER, "connection closed inside the HTTP headers (HTTP %ld)",
                    p->status);
    case S_BODY:
        return fail(p, QE_ESERVER,
                    "connection closed after %zu of %llu body bytes (partial reply, HTTP %ld)",
                    p->body_bytes, (unsigned long long)p->content_length, p->status);
    default:
        return fail(p, QE_ESERVER,
                    "connection closed inside the chunked body after %zu bytes (partial reply, "
                    "HTTP %ld)",
                    p->body_bytes, p->status);
    }
}

static void put_dec(qe_buf *b, size_t v)
{
    char d[24];
    int k = 0;
    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    char o[24];
    for (int j = 0; j < k; j++)
        o[j] = d[k - 1 - j];
    qe_buf_append(b, o, (size_t)k);
}

int qe_http_format_post(qe_buf *out, const char *host, const char *target, const char *key,
                        const char *body, size_t body_len)
{
    size_t hl = strlen(host), tl = strlen(target), kl = key ? strlen(key) : 0;
    if (qe_buf_reserve(out, 160 + hl + tl + kl + body_len))
        return -1;
    /* with the room reserved, none of these appends can fail */
    qe_buf_puts(out, "POST ");
    qe_buf_append(out, target, tl);
    qe_buf_puts(out, " HTTP/1.1\r\nHost: ");
    qe_buf_append(out, host, hl);
    qe_buf_puts(out, "\r\nContent-Type: application/json\r\n");
    if (kl) {
        qe_buf_puts(out, "Authorization: Bearer ");
        qe_buf_append(out, key, kl);
        qe_buf_puts(out, "\r\n");
    }
    qe_buf_puts(out, "Content-Length: ");
    put_dec(out, body_len);
    qe_buf_puts(out, "\r\n\r\n");
    qe_buf_append(out, body, body_len);
    return 0;
}
