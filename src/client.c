/* client: OpenAI-compatible HTTP client on two transports (see client.h).
 *
 * Everything above the wire is shared: request queue, retry classification,
 * backoff with jitter, Retry-After, reply parsing, key scrubbing, the result
 * callback and the idle hook. Below it, either libcurl multi or the native
 * HTTP/1.1 engine (section "native transport") moves the bytes.
 *
 * Shape of the libcurl engine: a FIFO of requests not yet started, a list of
 * requests waiting out a backoff, and at most num_concurrent easy handles
 * attached to one multi handle. Each loop turn starts what may start (due
 * retries first, so a retried request is not starved by fresh ones), lets
 * curl move bytes, classifies every finished transfer (done / retry / fail)
 * and sleeps in curl_multi_poll until a socket or a backoff deadline needs
 * us. The multi handle's connection cache (sized num_concurrent, and the same
 * per host) keeps connections alive between requests. */
#include "client.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#include "buf.h"
#include "http.h"

#define MAX_CONCURRENT 4096
#define POLL_SLICE_MS 100
#define URL_CACHE 8         /* distinct request URLs kept pre-parsed */
#define RBUF_SIZE 65536     /* native transport: one recv() at most */
#define MAX_ADDRS 16        /* native transport: resolved addresses tried */

/* What every transfer shares: where to go, how long to wait, what to send. */
struct conf {
    char *root;                  /* base URL without trailing "/v1" or '/' */
    char *key;                   /* for scrubbing only; NULL if none */
    size_t key_len;
    struct curl_slist *headers;  /* Content-Type, Expect:, Authorization */
    long timeout_ms, connect_timeout_ms;
    size_t cap;
};

/* Reply collected from one attempt. */
struct sink {
    qe_buf body;
    size_t cap;
    bool over_cap;
    bool oom;
    long retry_after_s; /* -1 when absent */
};

struct hconn;

struct creq {
    uint64_t id;
    char *url;
    char *req;            /* native: the whole request (headers + body) */
    size_t req_len, req_hdr; /* its length, and where the body starts */
    struct hconn *hc;     /* native: the connection while running */
    int xerr;             /* transport failure of the attempt: 0, QE_ENET,
                           * QE_ELIMIT, QE_ENOMEM */
    bool xperm;           /* ... that a retry cannot fix */
    char xmsg[512];       /* ... and its wording (without the URL) */
    CURLU *uh;            /* pre-parsed url (borrowed from qe_client.urls) or NULL */
    char *body;
    size_t body_len;
    int attempts;
    double t_first, t_attempt, due;
    struct sink sink;
    char errbuf[CURL_ERROR_SIZE];
    char last_error[1024];
    int last_status;
    long last_http;
    CURL *easy;
    size_t slot;          /* index in qe_client.act while running */
    struct creq *next;
};

struct qe_client {
    qe_client_opts o;
    struct conf conf;
    CURLM *multi;
    CURL **idle;          /* easy handles ready for reuse */
    struct creq **act;    /* running requests, nactive of them */
    size_t nidle;
    struct creq *qhead, *qtail;   /* not started */
    struct creq *waiting;         /* backoff, unordered */
    size_t nqueued, nwaiting, nactive, ndone, nretries;
    uint64_t rng;
    int epfd;             /* sockets curl asked us to watch */
    unsigned char *fdst;  /* per fd: events registered in epfd (FD_*) */
    struct {              /* URLs parsed once (curl would re-parse per request) */
        char *url;
        CURLU *uh;
    } urls[URL_CACHE];
    int nurls;
    size_t nfdst;
    double timer_due;     /* when curl wants control back; < 0: no timer */
    qe_client_idle_fn idle_fn; /* called before each blocking wait (group commit) */
    void *idle_ud;
    /* native transport (NULL/0 when libcurl is used) */
    bool native;
    char *host;           /* Host header: the URL's authority */
    char *hostname, *port;/* for getaddrinfo and messages */
    char *prefix;         /* path part of the root URL ("" or "/x/y") */
    struct hconn *hcs;    /* num_concurrent connections */
    struct hconn **hidle; /* open, kept alive, no request (LIFO) */
    struct hconn **hclosed; /* no socket */
    size_t nhidle, nhclosed;
    char *rbuf;           /* RBUF_SIZE bytes every recv() goes to */
    struct sockaddr_storage addrs[MAX_ADDRS];
    socklen_t addrlen[MAX_ADDRS];
    size_t naddrs, good_addr;
};

/* ---------- small helpers ---------- */

/* snprintf into a fixed buffer where truncation is fine (messages). */
static void say(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: tiny, good enough for jitter, reproducible from the seed */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Replaces every occurrence of the key in s (length *len) by "***" (or as
 * many '*' as the key is long, if shorter), in place. */
static void scrub(const struct conf *cf, char *s, size_t *len)
{
    if (!cf->key || cf->key_len == 0 || !s)
        return;
    size_t n = len ? *len : strlen(s);
    size_t rl = cf->key_len < 3 ? cf->key_len : 3;
    char *p = s;
    for (;;) {
        char *hit = memmem(p, n - (size_t)(p - s), cf->key, cf->key_len);
        if (!hit)
            break;
        memset(hit, '*', rl);
        memmove(hit + rl, hit + cf->key_len, n - (size_t)(hit - s) - cf->key_len + 1);
        n -= cf->key_len - rl;
        p = hit + rl;
    }
    if (len)
        *len = n;
}

/* URL for messages: drops any user:password@. */
static void redact_url(const char *url, char *out, size_t cap)
{
    const char *sch = strstr(url, "://");
    const char *host = sch ? sch + 3 : url;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');
    if (at && (!slash || at < slash))
        snprintf(out, cap, "%.*s%s", (int)(host - url), url, at + 1);
    else
        snprintf(out, cap, "%s", url);
}

void qe_client_redact_url(const char *url, char *out, size_t cap)
{
    redact_url(url, out, cap);
}

/* Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF)? */
static bool utf8_valid(const unsigned char *s, size_t n, size_t *bad_at)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII runs (almost all of a reply) a word at a time */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; }
        else goto bad;
        if (need > n - i - 1)
            goto bad;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            goto bad;
        i += need + 1;
        continue;
    bad:
        if (bad_at)
            *bad_at = i;
        return false;
    }
    return true;
}

/* Copy of s with each invalid byte replaced by U+FFFD. */
static int utf8_repair(const char *s, size_t n, qe_buf *out)
{
    size_t i = 0;
    while (i < n) {
        size_t bad;
        if (utf8_valid((const unsigned char *)s + i, n - i, &bad)) {
            return qe_buf_append(out, s + i, n - i);
        }
        if (qe_buf_append(out, s + i, bad) || qe_buf_puts(out, "\xEF\xBF\xBD"))
            return -1;
        i += bad + 1;
    }
    return 0;
}

/* ---------- reply parsing ---------- */

/* malloc'd copy of a string value ("" when not a string) with each NUL
 * replaced by U+FFFD, so C-string code downstream sees the whole text;
 * *len gets the copy's length, *nul is set when a NUL was replaced. */
static char *dup_str(json_t *v, size_t *len, bool *nul)
{
    if (len)
        *len = 0;
    if (!json_is_string(v))
        return strdup("");
    size_t n = json_string_length(v);
    const char *src = json_string_value(v);
    size_t nnul = 0;
    for (const char *p = src; (p = memchr(p, 0, (size_t)(src + n - p))) != NULL; p++)
        nnul++;
    char *s = malloc(n + 2 * nnul + 1);
    if (!s)
        return NULL;
    char *q = s;
    for (size_t i = 0; i < n; i++) {
        if (src[i]) {
            *q++ = src[i];
        } else {
            memcpy(q, "\xef\xbf\xbd", 3);
            q += 3;
        }
    }
    *q = 0;
    if (nnul && nul)
        *nul = true;
    if (len)
        *len = (size_t)(q - s);
    return s;
}

static const char *json_kind(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Printable one-line excerpt of untrusted bytes. */
static void excerpt(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    if (n > 0 && k + 4 >= cap && cap > 4) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = 0;
}

void qe_reply_free(qe_reply *r)
{
    if (!r)
        return;
    free(r->content);
    free(r->reasoning);
    free(r->finish_reason);
    free(r->model);
    memset(r, 0, sizeof *r);
}

void qe_client_error_message(const char *body, size_t len, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    buf[0] = 0;
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *m = NULL;
    if (json_is_object(j)) {
        json_t *err = json_object_get(j, "error");
        if (json_is_object(err))
            m = json_object_get(err, "message");
        else if (json_is_string(err))
            m = err;
        if (!json_is_string(m))
            m = json_object_get(j, "message");
        if (!json_is_string(m))
            m = json_object_get(j, "detail");
    }
    if (json_is_string(m)) {
        excerpt(json_string_value(m), json_string_length(m), buf, cap);
    } else if (body && len) {
        char tmp[200];
        excerpt(body, len, tmp, sizeof tmp);
        snprintf(buf, cap, "unparsed body: %s", tmp);
    } else {
        snprintf(buf, cap, "empty body");
    }
    json_decref(j);
}

/* ---------- fast path for well-formed replies ----------
 *
 * jansson builds a full tree (a malloc per value and key, a hash table per
 * object) and lexes byte by byte; for a typical reply that is most of the
 * client's user CPU. fast_parse() is a strict single-pass scanner that
 * validates the whole document and captures only the fields qe_reply needs.
 * It accepts a subset of what jansson accepts and, for that subset, yields
 * exactly what the jansson path yields (tested differentially). Anything
 * outside the subset -- an error shape, a duplicate key we read, an escaped
 * key, \u0000, lone surrogates, numbers that could overflow jansson, deep
 * nesting, any syntax error -- returns FAST_NO and the jansson path decides
 * (and words the error). */

enum { FAST_OK = 0, FAST_NO = 1, FAST_OOM = 2 };
enum { JT_NONE = 0, JT_OBJ, JT_ARR, JT_STR, JT_INT, JT_REAL, JT_TRUE, JT_FALSE, JT_NULL };
#define FAST_MAX_DEPTH 32

struct jval {
    int type;           /* JT_NONE: key absent */
    const char *s;      /* JT_STR: raw bytes between the quotes */
    size_t n;
    bool esc;           /* the raw string has escapes */
    long long i;        /* JT_INT */
};

/* the fields qe_reply is made of */
enum { F_CHOICES, F_MODEL, F_USAGE, F_C0, F_MESSAGE, F_TEXT, F_FINISH, F_CONTENT, F_RC,
       F_REASONING, F_PT, F_CT, F_N };

struct scan {
    const char *p, *end;
    int depth;
    struct jval f[F_N];
};

/* which object we are in, for capturing */
enum { CTX_NONE, CTX_TOP, CTX_C0, CTX_MSG, CTX_USAGE };

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Bytes that end a plain run inside a string: '"', '\\', control chars. */
static const unsigned char str_stop[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0A] = 1, [0x0B] = 1, [0x0C] = 1, [0x0D] = 1,
    [0x0E] = 1, [0x0F] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1A] = 1, [0x1B] = 1,
    [0x1C] = 1, [0x1D] = 1, [0x1E] = 1, [0x1F] = 1, ['"'] = 1, ['\\'] = 1};

/* At the opening quote. Validates; leaves p after the closing quote. */
static int scan_string(struct scan *s, struct jval *v)
{
    const char *p = s->p + 1, *end = s->end;
    bool esc = false;
    for (;;) {
        /* the body is valid UTF-8 already; only quotes, escapes and control
         * characters matter here */
        while (p < end && !str_stop[(unsigned char)*p])
            p++;
        if (p >= end || (unsigned char)*p < 0x20)
            return FAST_NO;
        if (*p == '"')
            break;
        esc = true;
        if (end - p < 2)
            return FAST_NO;
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            break;
        case 'u': {
            if (end - p < 6)
                return FAST_NO;
            int u = hex4(p + 2);
            if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF))
                return FAST_NO; /* bad hex, lone low surrogate */
            p += 6;
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
                    return FAST_NO;
                int lo = hex4(p + 2);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return FAST_NO;
                p += 6;
            }
            break;
        }
        default:
            return FAST_NO;
        }
    }
    if (v) {
        v->type = JT_STR;
        v->s = s->p + 1;
        v->n = (size_t)(p - v->s);
        v->esc = esc;
    }
    s->p = p + 1;
    return FAST_OK;
}

static int scan_number(struct scan *s, struct jval *v)
{
    const char *p = s->p, *end = s->end;
    bool neg = false, real = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    const char *d0 = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    size_t nint = (size_t)(p - d0);
    if (nint == 0 || (nint > 1 && *d0 == '0'))
        return FAST_NO;
    if (p < end && *p == '.') {
        real = true;
        const char *f0 = ++p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == f0)
            return FAST_NO;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *e0 = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == e0 || p - e0 > 2)
            return FAST_NO; /* |exponent| < 100 cannot overflow a double */
    }
    /* keep far from jansson's range errors: it rejects an integer outside
     * long long and a real that overflows a double */
    if ((!real && nint > 18) || (real && nint > 200))
        return FAST_NO;
    if (v) {
        v->type = real ? JT_REAL : JT_INT;
        if (!real) {
            long long x = 0;
            for (const char *q = d0; q < d0 + nint; q++)
                x = x * 10 + (*q - '0');
            v->i = neg ? -x : x;
        }
    }
    s->p = p;
    return FAST_OK;
}

static int scan_value(struct scan *s, struct jval *v, int ctx);

/* Maps a key in an object of kind ctx to a field slot (-1: not captured) and
 * the context of its value. */
static int key_slot(int ctx, const char *k, size_t n, int *sub)
{
    *sub = CTX_NONE;
#define KEY(lit) (n == sizeof lit - 1 && !memcmp(k, lit, n))
    switch (ctx) {
    case CTX_TOP:
        if (KEY("choices")) return F_CHOICES;
        if (KEY("model")) return F_MODEL;
        if (KEY("usage")) { *sub = CTX_USAGE; return F_USAGE; }
        break;
    case CTX_C0:
        if (KEY("message")) { *sub = CTX_MSG; return F_MESSAGE; }
        if (KEY("text")) return F_TEXT;
        if (KEY("finish_reason")) return F_FINISH;
        break;
    case CTX_MSG:
        if (KEY("content")) return F_CONTENT;
        if (KEY("reasoning_content")) return F_RC;
        if (KEY("reasoning")) return F_REASONING;
        break;
    case CTX_USAGE:
        if (KEY("prompt_tokens")) return F_PT;
        if (KEY("completion_tokens")) return F_CT;
        break;
    }
#undef KEY
    return -1;
}

static int scan_object(struct scan *s, int ctx)
{
    s->p++; /* '{' */
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return FAST_OK;
    }
    for (;;) {
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"')
            return FAST_NO;
        struct jval key = {0};
        if (scan_string(s, &key) || key.esc)
            return FAST_NO; /* an escaped key could spell one we read */
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return FAST_NO;
        s->p++;
        int sub;
        int slot = ctx == CTX_NONE ? -1 : key_slot(ctx, key.s, key.n, &sub);
        if (slot >= 0 && s->f[slot].type != JT_NONE)
            return FAST_NO; /* duplicate: jansson keeps the last, leave it to it */
        if (slot == F_CHOICES)
            sub = CTX_NONE; /* arrays: element 0 handled in scan_array */
        int rc = scan_value(s, slot >= 0 ? &s->f[slot] : NULL, slot >= 0 ? sub : CTX_NONE);
        if (rc)
            return rc;
        skip_ws(s);
        if (s->p >= s->end)
            return FAST_NO;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p == '}') {
            s->p++;
            return FAST_OK;
        }
        return FAST_NO;
    }
}

/* first_ctx: context of element 0 (CTX_C0 for choices), others CTX_NONE */
static int scan_array(struct scan *s, struct jval *first, int first_ctx)
{
    s->p++; /* '[' */
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return FAST_OK;
    }
    for (size_t i = 0;; i++) {
        int rc = scan_value(s, i == 0 ? first : NULL, i == 0 ? first_ctx : CTX_NONE);
        if (rc)
            return rc;
        skip_ws(s);
        if (s->p >= s->end)
            return FAST_NO;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p == ']') {
            s->p++;
            return FAST_OK;
        }
        return FAST_NO;
    }
}

static int scan_lit(struct scan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n))
        return FAST_NO;
    s->p += n;
    return FAST_OK;
}

/* v: where to record the value's type (NULL: validate only); ctx: the
 * capture context if the value is an object. */
static int scan_value(struct scan *s, struct jval *v, int ctx)
{
    skip_ws(s);
    if (s->p >= s->end)
        return FAST_NO;
    int rc, type;
    switch (*s->p) {
    case '{':
        if (++s->depth > FAST_MAX_DEPTH)
            return FAST_NO;
        rc = scan_object(s, ctx);
        s->depth--;
        type = JT_OBJ;
        break;
    case '[':
        if (++s->depth > FAST_MAX_DEPTH)
            return FAST_NO;
        /* only the top-level "choices" array captures its element 0 */
        rc = scan_array(s, v == &s->f[F_CHOICES] ? &s->f[F_C0] : NULL,
                        v == &s->f[F_CHOICES] ? CTX_C0 : CTX_NONE);
        s->depth--;
        type = JT_ARR;
        break;
    case '"':
        return scan_string(s, v);
    case 't': rc = scan_lit(s, "true", 4); type = JT_TRUE; break;
    case 'f': rc = scan_lit(s, "false", 5); type = JT_FALSE; break;
    case 'n': rc = scan_lit(s, "null", 4); type = JT_NULL; break;
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return scan_number(s, v);
        return FAST_NO;
    }
    if (!rc && v)
        v->type = type;
    return rc;
}

static void put_utf8(char **o, unsigned cp)
{
    char *q = *o;
    if (cp < 0x80) {
        *q++ = (char)cp;
    } else if (cp < 0x800) {
        *q++ = (char)(0xC0 | (cp >> 6));
        *q++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *q++ = (char)(0xE0 | (cp >> 12));
        *q++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *q++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *q++ = (char)(0xF0 | (cp >> 18));
        *q++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *q++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *q++ = (char)(0x80 | (cp & 0x3F));
    }
    *o = q;
}

/* malloc'd decoded copy of a captured string ("" when not a string);
 * \u0000 becomes U+FFFD (3 bytes, shorter than the escape) and sets *nul. */
static char *fast_str(const struct jval *v, size_t *len, bool *nul)
{
    if (v->type != JT_STR) {
        if (len)
            *len = 0;
        return strdup("");
    }
    char *out = malloc(v->n + 1); /* decoding never grows the text */
    if (!out)
        return NULL;
    if (!v->esc) {
        memcpy(out, v->s, v->n);
        out[v->n] = 0;
        if (len)
            *len = v->n;
        return out;
    }
    const char *p = v->s, *e = v->s + v->n;
    char *q = out;
    while (p < e) {
        if (*p != '\\') {
            *q++ = *p++;
            continue;
        }
        char c = p[1];
        p += 2;
        switch (c) {
        case 'b': *q++ = '\b'; break;
        case 'f': *q++ = '\f'; break;
        case 'n': *q++ = '\n'; break;
        case 'r': *q++ = '\r'; break;
        case 't': *q++ = '\t'; break;
        case 'u': {
            unsigned cp = (unsigned)hex4(p);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo = (unsigned)hex4(p + 2);
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) {
                cp = 0xFFFD;
                if (nul)
                    *nul = true;
            }
            put_utf8(&q, cp);
            break;
        }
        default: *q++ = c; break; /* " \ / */
        }
    }
    *q = 0;
    if (len)
        *len = (size_t)(q - out);
    return out;
}

/* FAST_OK with *out filled, FAST_NO (let jansson decide), FAST_OOM. */
static int fast_parse(const char *body, size_t len, qe_reply *out)
{
    struct scan s;
    memset(&s, 0, sizeof s);
    s.p = body;
    s.end = body + len;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return FAST_NO;
    s.depth = 1;
    if (scan_object(&s, CTX_TOP))
        return FAST_NO;
    skip_ws(&s);
    if (s.p != s.end)
        return FAST_NO;
    const struct jval *f = s.f;
    if (f[F_CHOICES].type != JT_ARR || f[F_C0].type != JT_OBJ)
        return FAST_NO;
    const struct jval *content, *reasoning = NULL;
    if (f[F_MESSAGE].type == JT_OBJ) {
        content = &f[F_CONTENT];
        reasoning = f[F_RC].type == JT_STR ? &f[F_RC] : &f[F_REASONING];
    } else if (f[F_TEXT].type != JT_NONE) {
        content = &f[F_TEXT];
    } else {
        return FAST_NO;
    }
    if (content->type != JT_NONE && content->type != JT_STR && content->type != JT_NULL)
        return FAST_NO;
    if (reasoning && reasoning->type != JT_NONE && reasoning->type != JT_STR &&
        reasoning->type != JT_NULL)
        return FAST_NO;
    out->content_was_null = content->type != JT_STR;
    out->content = fast_str(content, &out->content_len, &out->nul_replaced);
    out->reasoning = reasoning ? fast_str(reasoning, NULL, &out->nul_replaced) : strdup("");
    out->finish_reason = fast_str(&f[F_FINISH], NULL, NULL);
    out->model = fast_str(&f[F_MODEL], NULL, NULL);
    if (f[F_USAGE].type == JT_OBJ) {
        if (f[F_PT].type == JT_INT)
            out->prompt_tokens = (long)f[F_PT].i;
        if (f[F_CT].type == JT_INT)
            out->completion_tokens = (long)f[F_CT].i;
    }
    if (!out->content || !out->reasoning || !out->finish_reason || !out->model)
        return FAST_OOM;
    return FAST_OK;
}

int qe_client_parse_reply(const char *body, size_t len, qe_reply *out, qe_err *e)
{
    memset(out, 0, sizeof *out);
    out->prompt_tokens = out->completion_tokens = -1;
    qe_buf fixed = QE_BUF_INIT;
    bool repaired = false;
    if (!body)
        body = "";
    if (!utf8_valid((const unsigned char *)body, len, NULL)) {
        if (utf8_repair(body, len, &fixed))
            return qe_err_set(e, QE_ENOMEM, "out of memory repairing UTF-8 in reply");
        body = qe_buf_str(&fixed);
        len = fixed.len;
        repaired = true;
    }
    int fr = fast_parse(body, len, out);
    if (fr == FAST_OK) {
        out->utf8_repaired = repaired;
        qe_buf_free(&fixed);
        return 0;
    }
    if (fr == FAST_OOM) {
        qe_reply_free(out);
        qe_buf_free(&fixed);
        return qe_err_set(e, QE_ENOMEM, "out of memory copying reply");
    }
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
    int rc = 0;
    if (!j) {
        char ex[120];
        excerpt(body, len, ex, sizeof ex);
        rc = qe_err_set(e, QE_ESERVER, "reply is not valid JSON (%zu bytes, at byte %d: %s): %s",
                        len, jerr.position, jerr.text, ex);
        goto out;
    }
    if (!json_is_object(j)) {
        rc = qe_err_set(e, QE_ESERVER, "reply is %s, expected a JSON object", json_kind(j));
        goto out;
    }
    json_t *choices = json_object_get(j, "choices");
    if (!json_is_array(choices) || json_array_size(choices) == 0) {
        json_t *err = json_object_get(j, "error");
        if (err || json_is_string(json_object_get(j, "message"))) {
            char m[512];
            qe_client_error_message(body, len, m, sizeof m);
            rc = qe_err_set(e, QE_ESERVER, "server error in reply: %s", m);
        } else {
            rc = qe_err_set(e, QE_ESERVER, "reply has no choices[0] (choices is %s)",
                            choices ? json_kind(choices) : "missing");
        }
        goto out;
    }
    json_t *c0 = json_array_get(choices, 0);
    if (!json_is_object(c0)) {
        rc = qe_err_set(e, QE_ESERVER, "reply choices[0] is %s, expected an object", json_kind(c0));
        goto out;
    }
    json_t *msg = json_object_get(c0, "message");
    json_t *content, *reasoning = NULL;
    const char *where;
    if (json_is_object(msg)) {
        content = json_object_get(msg, "content");
        reasoning = json_object_get(msg, "reasoning_content");
        if (!json_is_string(reasoning))
            reasoning = json_object_get(msg, "reasoning");
        where = "choices[0].message.content";
    } else if (json_object_get(c0, "text")) {
        content = json_object_get(c0, "text");
        where = "choices[0].text";
    } else {
        rc = qe_err_set(e, QE_ESERVER, "reply choices[0] has neither message nor text");
        goto out;
    }
    if (content && !json_is_string(content) && !json_is_null(content)) {
        rc = qe_err_set(e, QE_ESERVER, "reply %s is %s, expected a string or null", where,
                        json_kind(content));
        goto out;
    }
    if (reasoning && !json_is_string(reasoning) && !json_is_null(reasoning)) {
        rc = qe_err_set(e, QE_ESERVER, "reply reasoning is %s, expected a string",
                        json_kind(reasoning));
        goto out;
    }
    out->content_was_null = !json_is_string(content);
    out->content = dup_str(content, &out->content_len, &out->nul_replaced);
    out->reasoning = dup_str(reasoning, NULL, &out->nul_replaced);
    out->finish_reason = dup_str(json_object_get(c0, "finish_reason"), NULL, NULL);
    out->model = dup_str(json_object_get(j, "model"), NULL, NULL);
    json_t *usage = json_object_get(j, "usage");
    if (json_is_object(usage)) {
        json_t *pt = json_object_get(usage, "prompt_tokens");
        json_t *ct = json_object_get(usage, "completion_tokens");
        if (json_is_integer(pt))
            out->prompt_tokens = (long)json_integer_value(pt);
        if (json_is_integer(ct))
            out->completion_tokens = (long)json_integer_value(ct);
    }
    out->utf8_repaired = repaired;
    if (!out->content || !out->reasoning || !out->finish_reason || !out->model) {
        qe_reply_free(out);
        rc = qe_err_set(e, QE_ENOMEM, "out of memory copying reply");
    }
out:
    json_decref(j);
    qe_buf_free(&fixed);
    return rc;
}

/* ---------- configuration ---------- */

void qe_client_opts_default(qe_client_opts *o)
{
    memset(o, 0, sizeof *o);
    o->num_concurrent = 1;
    o->timeout_ms = 600000;
    o->connect_timeout_ms = 10000;
    o->max_attempts = 5;
    o->backoff_base_ms = 500;
    o->backoff_cap_ms = 30000;
    o->retry_after_cap_ms = 60000;
    o->max_body_bytes = (size_t)64 << 20;
    o->seed = 0x5eed;
}

/* base_url without a trailing '/' or "/v1"; malloc'd or NULL. */
static char *root_of(const char *base, qe_err *e)
{
    if (!base || (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)) {
        qe_err_set(e, QE_EINVAL, "base_url must start with http:// or https:// (got '%.100s')",
                   base ? base : "(null)");
        return NULL;
    }
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (n >= 3 && !strncmp(base + n - 3, "/v1", 3))
        n -= 3;
    while (n > 0 && base[n - 1] == '/')
        n--;
    char *r = strndup(base, n);
    if (!r)
        qe_err_set(e, QE_ENOMEM, "out of memory");
    return r;
}

int qe_client_check_base_url(const char *base, qe_err *e)
{
    char *r = root_of(base, e);
    bool ok = r != NULL;
    free(r);
    return ok ? 0 : e && e->code ? e->code : QE_EINVAL;
}

static bool is_root_path(const char *p)
{
    static const char *const roots[] = {"/health", "/tokenize", "/detokenize", "/version",
                                        "/metrics", "/ping"};
    if (!strncmp(p, "/v1/", 4))
        return true;
    for (size_t i = 0; i < sizeof roots / sizeof *roots; i++)
        if (!strcmp(p, roots[i]))
            return true;
    return false;
}

static char *make_url(const char *root, const char *path)
{
    qe_buf b = QE_BUF_INIT;
    qe_buf_puts(&b, root);
    if (!is_root_path(path))
        qe_buf_puts(&b, "/v1");
    if (path[0] != '/')
        qe_buf_putc(&b, '/');
    qe_buf_puts(&b, path);
    return qe_buf_detach(&b);
}

int qe_client_url(const qe_client_opts *o, const char *path, char *buf, size_t cap)
{
    char *root = root_of(o->base_url, NULL);
    if (!root)
        return QE_EINVAL;
    char *u = make_url(root, path);
    free(root);
    if (!u)
        return QE_ENOMEM;
    int rc = strlen(u) < cap ? 0 : QE_ELIMIT;
    if (cap)
        snprintf(buf, cap, "%s", u);
    free(u);
    return rc;
}

static void conf_free(struct conf *cf)
{
    free(cf->root);
    if (cf->key) {
        memset(cf->key, 0, cf->key_len);
        free(cf->key);
    }
    curl_slist_free_all(cf->headers);
    memset(cf, 0, sizeof *cf);
}

static int conf_init(struct conf *cf, const qe_client_opts *o, qe_err *e)
{
    memset(cf, 0, sizeof *cf);
    if (o->timeout_ms <= 0 || o->connect_timeout_ms <= 0)
        return qe_err_set(e, QE_EINVAL, "timeouts must be > 0 ms");
    if (o->max_body_bytes == 0)
        return qe_err_set(e, QE_EINVAL, "max_body_bytes must be > 0");
    cf->root = root_of(o->base_url, e);
    if (!cf->root)
        return e ? e->code : QE_EINVAL;
    cf->timeout_ms = o->timeout_ms;
    cf->connect_timeout_ms = o->connect_timeout_ms;
    cf->cap = o->max_body_bytes;
    struct curl_slist *h = NULL, *t;
    /* "Expect:" off: curl would otherwise wait for 100-continue on big bodies */
    h = curl_slist_append(h, "Content-Type: application/json");
    if (h && (t = curl_slist_append(h, "Expect:")))
        h = t;
    else
        goto oom;
    if (o->api_key && o->api_key[0]) {
        if (strpbrk(o->api_key, "\r\n")) {
            curl_slist_free_all(h);
            conf_free(cf);
            return qe_err_set(e, QE_EINVAL, "api_key contains a line break");
        }
        cf->key = strdup(o->api_key);
        if (!cf->key)
            goto oom;
        cf->key_len = strlen(cf->key);
        qe_buf a = QE_BUF_INIT;
        qe_buf_puts(&a, "Authorization: Bearer ");
        qe_buf_puts(&a, cf->key);
        t = curl_slist_append(h, qe_buf_str(&a));
        memset(a.data, 0, a.len);
        qe_buf_free(&a);
        if (!t)
            goto oom;
        h = t;
    }
    cf->headers = h;
    return 0;
oom:
    curl_slist_free_all(h);
    conf_free(cf);
    return qe_err_set(e, QE_ENOMEM, "out of memory");
}

/* ---------- per-transfer callbacks ---------- */

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    struct sink *s = ud;
    size_t n = sz * nm;
    if (s->body.len + n > s->cap) {
        s->over_cap = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (qe_buf_append(&s->body, p, n)) {
        s->oom = true;
        return 0;
    }
    return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    struct sink *s = ud;
    size_t n = sz * nm;
    if (n > 12 && !strncasecmp(p, "Retry-After:", 12)) {
        /* seconds form only; an HTTP-date is ignored (normal backoff) */
        long v = qe_http_retry_after(p + 12, n - 12);
        if (v >= 0)
            s->retry_after_s = v;
    } else if (n > 15 && !strncasecmp(p, "Content-Length:", 15)) {
        unsigned long long cl = strtoull(p + 15, NULL, 10);
        if (cl > 0 && cl <= s->cap && cl > s->body.len)
            qe_buf_reserve(&s->body, (size_t)cl - s->body.len);
    }
    return n;
}

static void sink_reset(struct sink *s, size_t cap)
{
    qe_buf_reset(&s->body);
    s->cap = cap;
    s->over_cap = s->oom = false;
    s->retry_after_s = -1;
}

static void easy_setup(CURL *h, const struct conf *cf)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, cf->headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cf->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cf->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cf->cap);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
}

/* Curl failures that a retry cannot fix. */
static bool curl_permanent(CURLcode cc)
{
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_WRITE_ERROR:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_NOT_BUILT_IN:
        return true;
    default:
        return false;
    }
}

/* ---------- client lifecycle ---------- */

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp);
static curl_socket_t on_opensocket(void *userp, curlsocktype purpose, struct curl_sockaddr *a);
static int on_timer(CURLM *m, long timeout_ms, void *userp);
static int native_setup(qe_client *c, const qe_client_opts *o, qe_err *e);
static void native_free(qe_client *c);
static int native_request(qe_client *c, struct creq *r, const char *path, const char *body,
                          qe_err *e);
static int resolve(qe_client *c, char *msg, size_t cap);
static void hc_release(qe_client *c, struct hconn *h, bool keep);

int qe_client_new(const qe_client_opts *o, qe_client **out, qe_err *e)
{
    *out = NULL;
    if (o->num_concurrent < 1 || o->num_concurrent > MAX_CONCURRENT)
        return qe_err_set(e, QE_EINVAL, "num_concurrent must be 1..%d (got %d)", MAX_CONCURRENT,
                          o->num_concurrent);
    if (o->max_attempts < 1 || o->max_attempts > 100)
        return qe_err_set(e, QE_EINVAL, "max_attempts must be 1..100 (got %d)", o->max_attempts);
    if (o->backoff_base_ms < 0 || o->backoff_cap_ms < 0 || o->retry_after_cap_ms < 0)
        return qe_err_set(e, QE_EINVAL, "backoff times must be >= 0");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return qe_err_set(e, QE_ENET, "libcurl initialization failed");
    qe_client *c = calloc(1, sizeof *c);
    if (!c) {
        curl_global_cleanup();
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    c->epfd = -1;
    c->o = *o;
    c->o.api_key = NULL; /* lives only in conf */
    c->o.base_url = NULL;
    int rc = conf_init(&c->conf, o, e);
    if (rc) {
        free(c);
        curl_global_cleanup();
        return rc;
    }
    c->rng = o->seed ? o->seed : 0x5eed;
    c->timer_due = -1.0;
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (c->epfd < 0) {
        c->epfd = -1;
        qe_client_free(c);
        return qe_err_set(e, QE_ENET, "epoll_create1 failed: %s", strerror(errno));
    }
    c->idle = calloc((size_t)o->num_concurrent, sizeof *c->idle);
    c->act = calloc((size_t)o->num_concurrent, sizeof *c->act);
    c->multi = curl_multi_init();
    if (!c->idle || !c->act || !c->multi) {
        qe_client_free(c);
        return qe_err_set(e, QE_ENOMEM, "out of memory creating the HTTP client");
    }
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o->num_concurrent);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)o->num_concurrent);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)o->num_concurrent);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    if ((rc = native_setup(c, o, e)) != 0) {
        qe_client_free(c);
        return rc;
    }
    if (c->native) {
        char msg[300];
        (void)resolve(c, msg, sizeof msg); /* on failure: again at each connect */
    }
    *out = c;
    return 0;
}

static void creq_free(struct creq *r)
{
    if (!r)
        return;
    free(r->url);
    free(r->body);
    if (r->req) {
        memset(r->req, 0, r->req_hdr); /* the headers hold the API key */
        free(r->req);
    }
    qe_buf_free(&r->sink.body);
    free(r);
}

static void free_list(struct creq *r)
{
    while (r) {
        struct creq *n = r->next;
        creq_free(r);
        r = n;
    }
}

/* Detaches every running transfer and frees it (stop, error, free). */
static void abort_active(qe_client *c)
{
    if (!c->multi)
        return;
    for (size_t i = 0; i < c->nactive; i++) {
        struct creq *r = c->act[i];
        if (r->hc) {
            hc_release(c, r->hc, false); /* reply not read: never reused */
        } else {
            curl_multi_remove_handle(c->multi, r->easy);
            c->idle[c->nidle++] = r->easy;
        }
        creq_free(r);
    }
    c->nactive = 0;
}

void qe_client_free(qe_client *c)
{
    if (!c)
        return;
    abort_active(c);
    free_list(c->qhead);
    free_list(c->waiting);
    for (size_t i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    free(c->idle);
    free(c->act);
    free(c->fdst);
    for (int i = 0; i < c->nurls; i++) {
        free(c->urls[i].url);
        curl_url_cleanup(c->urls[i].uh);
    }
    if (c->multi)
        curl_multi_cleanup(c->multi);
    native_free(c);
    conf_free(&c->conf);
    if (c->epfd >= 0)
        close(c->epfd);
    free(c);
    curl_global_cleanup();
}

/* The pre-parsed form of url, parsed on first sight; NULL when the cache is
 * full or curl cannot parse it (then the plain string is used). */
static CURLU *parsed_url(qe_client *c, const char *url)
{
    for (int i = 0; i < c->nurls; i++)
        if (!strcmp(c->urls[i].url, url))
            return c->urls[i].uh;
    if (c->nurls == URL_CACHE)
        return NULL;
    CURLU *uh = curl_url();
    char *copy = strdup(url);
    if (!uh || !copy || curl_url_set(uh, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(uh);
        free(copy);
        return NULL;
    }
    c->urls[c->nurls].url = copy;
    c->urls[c->nurls].uh = uh;
    c->nurls++;
    return uh;
}

int qe_client_add(qe_client *c, uint64_t id, const char *path, const char *json_body, qe_err *e)
{
    if (!path || !json_body)
        return qe_err_set(e, QE_EINVAL, "request %llu: path and body are required",
                          (unsigned long long)id);
    struct creq *r = calloc(1, sizeof *r);
    if (!r)
        return qe_err_set(e, QE_ENOMEM, "out of memory queuing request");
    r->id = id;
    r->url = make_url(c->conf.root, path);
    if (!r->url) {
        creq_free(r);
        return qe_err_set(e, QE_ENOMEM, "out of memory queuing request");
    }
    if (c->native) {
        int rc = native_request(c, r, path, json_body, e);
        if (rc) {
            creq_free(r);
            return rc;
        }
    } else {
        r->body_len = strlen(json_body);
        r->body = strdup(json_body);
        if (!r->body) {
            creq_free(r);
            return qe_err_set(e, QE_ENOMEM, "out of memory queuing request");
        }
        r->uh = parsed_url(c, r->url);
    }
    if (c->qtail)
        c->qtail->next = r;
    else
        c->qhead = r;
    c->qtail = r;
    c->nqueued++;
    return 0;
}

size_t qe_client_pending(const qe_client *c)
{
    return c->nqueued + c->nwaiting + c->nactive;
}

void qe_client_get_stats(const qe_client *c, qe_client_stats *s)
{
    s->in_flight = c->nactive;
    s->queued = c->nqueued;
    s->waiting_retry = c->nwaiting;
    s->done = c->ndone;
    s->retries = c->nretries;
}

/* ---------- the engine ---------- */

static int start_native(qe_client *c, struct creq *r, qe_err *e);

static int start(qe_client *c, struct creq *r, qe_err *e)
{
    if (c->native)
        return start_native(c, r, e);
    CURL *h = c->nidle ? c->idle[--c->nidle] : NULL;
    if (!h) {
        h = curl_easy_init();
        if (!h)
            return qe_err_set(e, QE_ENOMEM, "out of memory creating a transfer");
        easy_setup(h, &c->conf);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, c);
    }
    sink_reset(&r->sink, c->conf.cap);
    r->errbuf[0] = 0;
    curl_easy_setopt(h, CURLOPT_CURLU, r->uh); /* takes precedence when set */
    if (!r->uh)
        curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->sink);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->sink);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)r);
    r->easy = h;
    r->attempts++;
    r->t_attempt = now_ms();
    if (r->attempts == 1)
        r->t_first = r->t_attempt;
    if (curl_multi_add_handle(c->multi, h) != CURLM_OK) {
        c->idle[c->nidle++] = h;
        return qe_err_set(e, QE_ENET, "curl_multi_add_handle failed");
    }
    r->slot = c->nactive;
    c->act[c->nactive++] = r;
    return 0;
}

static long backoff_ms(qe_client *c, int attempts)
{
    double d = (double)c->o.backoff_base_ms;
    for (int i = 1; i < attempts && d < (double)c->o.backoff_cap_ms; i++)
        d *= 2;
    if (d > (double)c->o.backoff_cap_ms)
        d = (double)c->o.backoff_cap_ms;
    long full = (long)d;
    /* "equal jitter": half fixed, half random, so retries spread out */
    long half = full / 2;
    return half + (half > 0 ? (long)(rng_next(&c->rng) % (uint64_t)(full - half + 1)) : 0);
}

/* Transport-independent verdict on one finished attempt (r->xerr says how
 * the transfer itself went, http is the status if a reply came). Sets
 * r->last_error/last_status; returns true when a retry may help. */
static bool classify(qe_client *c, struct creq *r, long http, qe_reply *reply)
{
    char url[512];
    r->last_http = http;
    qe_err pe = {0, ""};
    if (r->xerr == 0 && http >= 200 && http < 300 &&
        qe_client_parse_reply(r->sink.body.data, r->sink.body.len, reply, &pe) == 0) {
        r->last_status = 0; /* the hot path: no message to build */
        r->last_error[0] = 0;
        return false;
    }
    redact_url(r->url, url, sizeof url);
    if (r->xerr) {
        if (r->sink.over_cap) {
            r->last_status = QE_ELIMIT;
            say(r->last_error, sizeof r->last_error,
                     "reply body from %s exceeds the %zu-byte limit (max_body_bytes)", url,
                     c->conf.cap);
            return false;
        }
        if (r->sink.oom || r->xerr == QE_ENOMEM) {
            r->last_status = QE_ENOMEM;
            say(r->last_error, sizeof r->last_error, "out of memory reading reply from %s",
                     url);
            return false;
        }
        r->last_status = r->xerr;
        say(r->last_error, sizeof r->last_error, "%s: %s", url, r->xmsg);
        return !r->xperm && r->xerr == QE_ENET;
    }
    if (http >= 200 && http < 300) { /* parsed above, and failed */
        r->last_status = pe.code ? pe.code : QE_ESERVER;
        say(r->last_error, sizeof r->last_error, "bad reply from %s (HTTP %ld): %s", url,
                 http, pe.msg);
        return false;
    }
    char m[700];
    qe_client_error_message(r->sink.body.data, r->sink.body.len, m, sizeof m);
    r->last_status = QE_ESERVER;
    say(r->last_error, sizeof r->last_error, "HTTP %ld from %s: %s", http, url, m);
    return http == 429 || http == 408 || http >= 500;
}

static int finish(qe_client *c, struct creq *r, qe_reply *reply, qe_client_done_fn done,
                  void *ud)
{
    qe_result res;
    memset(&res, 0, sizeof res);
    res.id = r->id;
    res.ok = r->last_status == 0;
    res.status = r->last_status;
    res.http_status = r->last_http;
    res.attempts = r->attempts;
    double t = now_ms();
    res.latency_ms = t - r->t_attempt;
    res.total_ms = t - r->t_first;
    res.body = qe_buf_str(&r->sink.body);
    res.body_len = r->sink.body.len;
    if (res.ok) {
        res.reply = *reply;
        scrub(&c->conf, res.reply.content, &res.reply.content_len);
        scrub(&c->conf, res.reply.reasoning, NULL);
    } else {
        say(res.error, sizeof res.error, "%s", r->last_error);
        scrub(&c->conf, res.error, NULL);
    }
    scrub(&c->conf, r->sink.body.data, &r->sink.body.len);
    res.body_len = r->sink.body.len;
    c->ndone++;
    int rc = done ? done(ud, &res) : 0;
    qe_reply_free(reply);
    creq_free(r);
    return rc;
}

/* r's attempt is over (r->xerr, the sink and http say how): schedule a
 * retry or report the final outcome. Returns the callback's value. */
static int settle(qe_client *c, struct creq *r, long http, qe_client_done_fn done, void *ud)
{
    qe_reply reply;
    memset(&reply, 0, sizeof reply);
    bool retry = classify(c, r, http, &reply);
    if (retry && r->attempts < c->o.max_attempts) {
        long d = backoff_ms(c, r->attempts);
        if (r->sink.retry_after_s >= 0) {
            double ra = (double)r->sink.retry_after_s * 1000.0;
            d = ra > (double)c->o.retry_after_cap_ms ? c->o.retry_after_cap_ms : (long)ra;
        }
        r->due = now_ms() + (double)d;
        r->next = c->waiting;
        c->waiting = r;
        c->nwaiting++;
        c->nretries++;
        return 0;
    }
    if (retry) {
        char tmp[sizeof r->last_error];
        say(tmp, sizeof tmp, "gave up after %d attempts: %s", r->attempts, r->last_error);
        memcpy(r->last_error, tmp, sizeof tmp);
    }
    return finish(c, r, &reply, done, ud);
}

/* Removes r from the running set (act[]). */
static void unlist(qe_client *c, struct creq *r)
{
    c->act[r->slot] = c->act[--c->nactive];
    c->act[r->slot]->slot = r->slot;
}

/* Handles every transfer curl reports finished. Returns the callback's
 * non-zero value to stop, else 0; *progress counts finished transfers. */
static int drain(qe_client *c, qe_client_done_fn done, void *ud, int *progress)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *h = msg->easy_handle;
        CURLcode cc = msg->data.result;
        struct creq *r = NULL;
        long http = 0;
        curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&r);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
        curl_multi_remove_handle(c->multi, h);
        c->idle[c->nidle++] = h;
        unlist(c, r);
        r->easy = NULL;
        (*progress)++;
        r->xerr = 0;
        r->xperm = false;
        if (cc != CURLE_OK) {
            if (cc == CURLE_FILESIZE_EXCEEDED)
                r->sink.over_cap = true;
            r->xerr = r->sink.over_cap ? QE_ELIMIT : r->sink.oom ? QE_ENOMEM : QE_ENET;
            r->xperm = curl_permanent(cc);
            say(r->xmsg, sizeof r->xmsg, "%s%s%s (curl error %d)", curl_easy_strerror(cc),
                r->errbuf[0] ? ": " : "", r->errbuf, (int)cc);
        }
        int rc = settle(c, r, http, done, ud);
        if (rc)
            return rc;
    }
    return 0;
}

/* Starts due retries, then fresh requests, while slots are free. */
static int fill(qe_client *c, double now, qe_err *e)
{
    while (c->nactive < (size_t)c->o.num_concurrent) {
        struct creq *r = NULL;
        struct creq **pp, **best = NULL;
        for (pp = &c->waiting; *pp; pp = &(*pp)->next)
            if ((*pp)->due <= now && (!best || (*pp)->due < (*best)->due))
                best = pp;
        if (best) {
            r = *best;
            *best = r->next;
            c->nwaiting--;
        } else if (c->qhead) {
            r = c->qhead;
            c->qhead = r->next;
            if (!c->qhead)
                c->qtail = NULL;
            c->nqueued--;
        } else {
            break;
        }
        r->next = NULL;
        int rc = start(c, r, e);
        if (rc) {
            creq_free(r);
            return rc;
        }
    }
    return 0;
}

/* curl tells us which sockets to watch (socket_action API), so each wakeup
 * costs O(ready sockets), not O(connections) as curl_multi_poll would.
 *
 * Registrations are cached: c->fdst[fd] holds what epfd has for fd, and a
 * syscall is made only when that changes. When curl says REMOVE (every
 * finished transfer does, for its keep-alive socket) the fd stays
 * registered, marked unwanted, so the next request on that connection costs
 * no epoll_ctl at all; if an unwanted fd reports an event (say the server
 * closed an idle connection) it is deleted then. A closed fd leaves epfd by
 * itself; curl opens every socket through on_opensocket, which forgets any
 * stale state for a reused fd number. */
enum { FD_IN = 1, FD_OUT = 2, FD_REG = 4, FD_WANT = 8 };

static int fdst_room(qe_client *c, curl_socket_t fd)
{
    if (fd < 0)
        return -1;
    if ((size_t)fd < c->nfdst)
        return 0;
    size_t n = c->nfdst ? c->nfdst : 64;
    while (n <= (size_t)fd)
        n *= 2;
    unsigned char *t = realloc(c->fdst, n);
    if (!t)
        return -1;
    memset(t + c->nfdst, 0, n - c->nfdst);
    c->fdst = t;
    c->nfdst = n;
    return 0;
}

static curl_socket_t on_opensocket(void *userp, curlsocktype purpose, struct curl_sockaddr *a)
{
    qe_client *c = userp;
    (void)purpose;
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd != CURL_SOCKET_BAD && fdst_room(c, fd) != 0) {
        close(fd); /* cannot track it */
        return CURL_SOCKET_BAD;
    }
    if (fd != CURL_SOCKET_BAD)
        c->fdst[fd] = 0; /* a new socket is in no epoll set */
    return fd;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    qe_client *c = userp;
    if (fdst_room(c, fd) != 0)
        return -1;
    unsigned char *st = &c->fdst[fd];
    if (what == CURL_POLL_REMOVE) {
        *st &= (unsigned char)~FD_WANT;
        return 0;
    }
    unsigned char want = (unsigned char)(((what & CURL_POLL_IN) ? FD_IN : 0) |
                                         ((what & CURL_POLL_OUT) ? FD_OUT : 0));
    if ((*st & FD_REG) && (*st & (FD_IN | FD_OUT)) == want) {
        *st |= FD_WANT;
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.data.fd = fd;
    ev.events = ((want & FD_IN) ? EPOLLIN : 0u) | ((want & FD_OUT) ? EPOLLOUT : 0u);
    int rc;
    if (*st & FD_REG) {
        rc = epoll_ctl(c->epfd, EPOLL_CTL_MOD, fd, &ev);
        if (rc != 0 && errno == ENOENT)
            rc = epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev);
    } else {
        rc = epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev);
        if (rc != 0 && errno == EEXIST)
            rc = epoll_ctl(c->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    *st = rc == 0 ? (unsigned char)(want | FD_REG | FD_WANT) : 0;
    return rc == 0 ? 0 : -1;
}

/* An event on an fd curl no longer watches: drop it from epfd. */
static bool fd_unwanted(qe_client *c, int fd)
{
    if (fd < 0 || (size_t)fd >= c->nfdst || (c->fdst[fd] & FD_WANT))
        return false;
    if (c->fdst[fd] & FD_REG)
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, fd, NULL);
    c->fdst[fd] = 0;
    return true;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    qe_client *c = userp;
    c->timer_due = timeout_ms < 0 ? -1.0 : now_ms() + (double)timeout_ms;
    return 0;
}

/* ---------- native transport ----------
 *
 * Plain http:// only. Up to num_concurrent connections, each carrying at
 * most one request at a time (no pipelining), kept alive between requests:
 * a finished request leaves its connection on a LIFO of idle ones, the next
 * request takes the most recently used. Every socket stays registered in
 * the one epoll set for EPOLLIN from connect to close (EPOLLOUT only while
 * connecting or while a send is partial), so steady state costs no
 * epoll_ctl: per request one send(), one or two recv(), a share of one
 * epoll_wait. An idle connection that becomes readable was closed by the
 * server (or sent bytes nobody asked for): it is closed at once. A request
 * sent on a kept-alive connection that turns out dead (EOF, reset or EPIPE
 * before any byte of the reply) goes again at once on a fresh connection,
 * without counting an attempt, as libcurl does. Deadlines (connect timeout
 * while connecting, then the attempt timeout) are checked when c->timer_due,
 * the earliest of them, passes. */

enum { HC_CLOSED, HC_IDLE, HC_CONNECTING, HC_SENDING, HC_RECEIVING, HC_FAILED };

struct hconn {
    int fd;               /* -1 when closed */
    int state;
    bool reused;          /* this attempt rides a connection kept from before */
    bool out;             /* EPOLLOUT is registered */
    size_t addr, tried;   /* address being tried, how many tried this connect */
    size_t sent;          /* request bytes sent */
    double deadline;      /* when the current phase times out */
    qe_http_parser p;
    struct creq *r;       /* the request it carries, NULL when idle/closed */
};

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

/* Decides the transport and, for the native one, splits the root URL and
 * sets up the connection pool. 0, or QE_ENOMEM. */
static int native_setup(qe_client *c, const qe_client_opts *o, qe_err *e)
{
    static const char *const proxies[] = {"http_proxy", "HTTPS_PROXY", "https_proxy",
                                          "ALL_PROXY", "all_proxy"};
    if (o->force_curl)
        return 0;
    for (size_t i = 0; i < sizeof proxies / sizeof *proxies; i++)
        if (env_set(proxies[i]))
            return 0;
    const char *root = c->conf.root;
    if (strncmp(root, "http://", 7) != 0)
        return 0;
    const char *a = root + 7;
    for (const char *q = a; *q; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7F || *q == '?' || *q == '#' || *q == '\\')
            return 0; /* unusual URL: libcurl decides what it means */
    size_t alen = strcspn(a, "/");
    if (alen == 0 || memchr(a, '@', alen))
        return 0;
    const char *hs = a, *he, *ps = NULL, *pe = a + alen;
    if (a[0] == '[') {
        const char *cl = memchr(a, ']', alen);
        if (!cl || cl == a + 1)
            return 0;
        hs = a + 1;
        he = cl;
        if (cl + 1 < pe) {
            if (cl[1] != ':')
                return 0;
            ps = cl + 2;
        }
    } else {
        const char *colon = memchr(a, ':', alen);
        he = colon ? colon : pe;
        if (colon)
            ps = colon + 1;
        if (he == hs)
            return 0;
    }
    long port = 80;
    if (ps) {
        if (ps == pe || pe - ps > 5)
            return 0;
        port = 0;
        for (const char *q = ps; q < pe; q++) {
            if (*q < '0' || *q > '9')
                return 0;
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535)
            return 0;
    }
    char pbuf[8];
    snprintf(pbuf, sizeof pbuf, "%ld", port);
    size_t n = (size_t)o->num_concurrent;
    c->host = strndup(a, alen);
    c->hostname = strndup(hs, (size_t)(he - hs));
    c->port = strdup(pbuf);
    c->prefix = strdup(a + alen);
    c->hcs = calloc(n, sizeof *c->hcs);
    c->hidle = calloc(n, sizeof *c->hidle);
    c->hclosed = calloc(n, sizeof *c->hclosed);
    c->rbuf = malloc(RBUF_SIZE);
    if (!c->host || !c->hostname || !c->port || !c->prefix || !c->hcs || !c->hidle ||
        !c->hclosed || !c->rbuf)
        return qe_err_set(e, QE_ENOMEM, "out of memory creating the HTTP client");
    for (size_t i = 0; i < n; i++) {
        struct hconn *h = &c->hcs[n - 1 - i];
        h->fd = -1;
        qe_http_parser_init(&h->p, c->conf.cap);
        c->hclosed[c->nhclosed++] = h;
    }
    c->native = true;
    return 0;
}

static void native_free(qe_client *c)
{
    if (c->hcs) {
        for (int i = 0; i < c->o.num_concurrent; i++) {
            if (c->hcs[i].fd >= 0)
                close(c->hcs[i].fd);
            qe_http_parser_free(&c->hcs[i].p);
        }
    }
    free(c->hcs);
    free(c->hidle);
    free(c->hclosed);
    free(c->rbuf);
    free(c->host);
    free(c->hostname);
    free(c->port);
    free(c->prefix);
}

const char *qe_client_transport(const qe_client *c)
{
    return c->native ? "native" : "curl";
}

/* The request bytes for path: request line, headers, body (one buffer). */
static int native_request(qe_client *c, struct creq *r, const char *path, const char *body,
                          qe_err *e)
{
    for (const char *q = path; *q; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7F)
            return qe_err_set(e, QE_EINVAL, "request path '%.100s' contains a space or control "
                              "character", path);
    qe_buf t = QE_BUF_INIT, req = QE_BUF_INIT;
    qe_buf_puts(&t, c->prefix);
    if (!is_root_path(path))
        qe_buf_puts(&t, "/v1");
    if (path[0] != '/')
        qe_buf_putc(&t, '/');
    if (qe_buf_puts(&t, path) ||
        qe_http_format_post(&req, c->host, qe_buf_str(&t), c->conf.key, body, strlen(body))) {
        qe_buf_free(&t);
        qe_buf_free(&req);
        return qe_err_set(e, QE_ENOMEM, "out of memory queuing request");
    }
    qe_buf_free(&t);
    r->req_len = req.len;
    r->req_hdr = req.len - strlen(body);
    r->req = qe_buf_detach(&req);
    return 0;
}

/* Resolves the host (at qe_client_new, and again at a connect while no
 * address is known). 0 or -1 with msg. */
static int resolve(qe_client *c, char *msg, size_t cap)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV;
    int g = getaddrinfo(c->hostname, c->port, &hints, &res);
    if (g) {
        say(msg, cap, "could not resolve host %s: %s", c->hostname,
            g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
        return -1;
    }
    c->naddrs = 0;
    for (struct addrinfo *ai = res; ai && c->naddrs < MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof c->addrs[0])
            continue;
        memcpy(&c->addrs[c->naddrs], ai->ai_addr, ai->ai_addrlen);
        c->addrlen[c->naddrs++] = ai->ai_addrlen;
    }
    freeaddrinfo(res);
    c->good_addr = 0;
    if (!c->naddrs) {
        say(msg, cap, "could not resolve host %s: no usable address", c->hostname);
        return -1;
    }
    return 0;
}

/* "127.0.0.1 port 8000" for address i, into buf. */
static void addr_name(qe_client *c, size_t i, char *buf, size_t cap)
{
    char h[INET6_ADDRSTRLEN + 2];
    if (getnameinfo((struct sockaddr *)&c->addrs[i], c->addrlen[i], h, sizeof h, NULL, 0,
                    NI_NUMERICHOST) != 0)
        snprintf(h, sizeof h, "%s", c->hostname);
    snprintf(buf, cap, "%s port %s", h, c->port);
}

static int hc_watch(qe_client *c, struct hconn *h, bool out, bool add)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | (out ? EPOLLOUT : 0u);
    ev.data.ptr = h;
    if (epoll_ctl(c->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, h->fd, &ev) != 0)
        return -1;
    h->out = out;
    return 0;
}

static void hc_close_fd(struct hconn *h)
{
    if (h->fd >= 0)
        close(h->fd); /* also leaves the epoll set */
    h->fd = -1;
    h->out = false;
    h->state = HC_CLOSED;
}

/* A connection's request is done with it: back on the idle LIFO (keep) or
 * closed. */
static void hc_release(qe_client *c, struct hconn *h, bool keep)
{
    h->r = NULL;
    if (keep && h->fd >= 0) {
        h->state = HC_IDLE;
        c->hidle[c->nhidle++] = h;
    } else {
        hc_close_fd(h);
        c->hclosed[c->nhclosed++] = h;
    }
}

/* Starts connecting h to the next untried address. 0: connecting (or
 * connected); -1: every address failed at once (msg says why). */
static int hc_connect(qe_client *c, struct hconn *h, char *msg, size_t cap)
{
    if (c->naddrs == 0 && resolve(c, msg, cap) != 0)
        return -1;
    while (h->tried < c->naddrs) {
        size_t i = h->addr % c->naddrs;
        struct sockaddr *sa = (struct sockaddr *)&c->addrs[i];
        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
            say(msg, cap, "socket() failed: %s", strerror(errno));
            return -1;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        h->fd = fd;
        int rc = connect(fd, sa, c->addrlen[i]);
        if (rc == 0 || errno == EINPROGRESS) {
            h->state = rc == 0 ? HC_SENDING : HC_CONNECTING;
            if (rc == 0)
                c->good_addr = i;
            if (hc_watch(c, h, true, true) == 0)
                return 0;
            say(msg, cap, "epoll_ctl failed: %s", strerror(errno));
            hc_close_fd(h);
            return -1;
        }
        char an[128];
        addr_name(c, i, an, sizeof an);
        say(msg, cap, "could not connect to %s: %s", an, strerror(errno));
        hc_close_fd(h);
        h->tried++;
        h->addr = i + 1;
    }
    return -1;
}

/* Sends what is left of the request. 0 (all sent, or waiting for
 * EPOLLOUT) or the errno of a failed send. */
static int hc_send(qe_client *c, struct hconn *h)
{
    struct creq *r = h->r;
    while (h->sent < r->req_len) {
        ssize_t n = send(h->fd, r->req + h->sent, r->req_len - h->sent, MSG_NOSIGNAL);
        if (n > 0) {
            h->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!h->out && hc_watch(c, h, true, false) != 0)
                return errno;
            return 0;
        }
        return n < 0 ? errno : EPIPE;
    }
    h->state = HC_RECEIVING;
    if (h->out && hc_watch(c, h, false, false) != 0)
        return errno;
    return 0;
}

static void timer_at(qe_client *c, double t)
{
    if (c->timer_due < 0 || t < c->timer_due)
        c->timer_due = t;
}

/* Fails the attempt on h without settling it now (we may be inside fill()):
 * the deadline scan reports it on this loop turn. */
static void hc_defer_fail(qe_client *c, struct hconn *h, const char *msg)
{
    hc_close_fd(h);
    h->state = HC_FAILED;
    say(h->r->xmsg, sizeof h->r->xmsg, "%s", msg);
    h->deadline = 0;
    timer_at(c, 0);
}

/* A fresh connection for h's request after the kept-alive one died. */
static int hc_reconnect(qe_client *c, struct hconn *h, char *msg, size_t cap)
{
    hc_close_fd(h);
    h->reused = false;
    h->sent = 0;
    h->tried = 0;
    h->addr = c->good_addr;
    qe_http_parser_reset(&h->p, c->conf.cap);
    qe_buf_reset(&h->r->sink.body);
    h->r->sink.retry_after_s = -1;
    double t = now_ms();
    long ct = c->o.connect_timeout_ms < c->o.timeout_ms ? c->o.connect_timeout_ms : c->o.timeout_ms;
    h->deadline = t + (double)ct;
    timer_at(c, h->deadline);
    return hc_connect(c, h, msg, cap);
}

/* The attempt on h failed (xerr, msg). A dead kept-alive connection
 * (stale: EOF/reset/EPIPE) with nothing of the reply received is replaced
 * once, transparently; otherwise the attempt is settled as failed. */
static int hc_fail(qe_client *c, struct hconn *h, int xerr, bool perm, bool stale,
                   const char *msg, qe_client_done_fn done, void *ud)
{
    struct creq *r = h->r;
    char m2[sizeof r->xmsg];
    if (stale && h->reused && h->p.total_bytes == 0) {
        if (hc_reconnect(c, h, m2, sizeof m2) == 0)
            return 0;
        msg = m2;
    }
    if (msg != r->xmsg)
        say(r->xmsg, sizeof r->xmsg, "%s", msg);
    r->xerr = xerr;
    r->xperm = perm;
    if (h->p.body_over_cap)
        r->sink.over_cap = true;
    long http = h->p.status; /* 0 until a status line came */
    unlist(c, r);
    r->hc = NULL;
    hc_release(c, h, false);
    return settle(c, r, http, done, ud);
}

static int hc_complete(qe_client *c, struct hconn *h, bool extra, qe_client_done_fn done,
                       void *ud)
{
    struct creq *r = h->r;
    long http = h->p.status;
    r->sink.retry_after_s = h->p.retry_after_s;
    r->xerr = 0;
    r->xperm = false;
    unlist(c, r);
    r->hc = NULL;
    hc_release(c, h, h->p.keep_alive && !extra);
    return settle(c, r, http, done, ud);
}

static int hc_read(qe_client *c, struct hconn *h, qe_client_done_fn done, void *ud)
{
    char msg[300];
    for (;;) {
        ssize_t n = recv(h->fd, c->rbuf, RBUF_SIZE, 0);
        if (n > 0) {
            size_t used;
            int rc = qe_http_feed(&h->p, c->rbuf, (size_t)n, &used, &h->r->sink.body);
            if (rc == 1)
                return hc_complete(c, h, used < (size_t)n, done, ud);
            if (rc < 0) /* malformed HTTP is a transport error (libcurl: retried) */
                return hc_fail(c, h, rc == QE_ESERVER ? QE_ENET : rc, rc != QE_ESERVER, false,
                               h->p.err, done, ud);
            if ((size_t)n < RBUF_SIZE)
                return 0; /* level-triggered: more data wakes us again */
            continue;
        }
        if (n == 0) {
            int rc = qe_http_finish(&h->p, &h->r->sink.body);
            if (rc == 1)
                return hc_complete(c, h, false, done, ud);
            return hc_fail(c, h, QE_ENET, false, true, h->p.err, done, ud);
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        int er = errno;
        say(msg, sizeof msg, "recv failed: %s", strerror(er));
        return hc_fail(c, h, QE_ENET, false, er == ECONNRESET, msg, done, ud);
    }
}

/* Removes an idle connection from the LIFO and closes it. */
static void hc_drop_idle(qe_client *c, struct hconn *h)
{
    for (size_t i = 0; i < c->nhidle; i++) {
        if (c->hidle[i] == h) {
            memmove(&c->hidle[i], &c->hidle[i + 1], (c->nhidle - i - 1) * sizeof *c->hidle);
            c->nhidle--;
            break;
        }
    }
    hc_close_fd(h);
    c->hclosed[c->nhclosed++] = h;
}

static int hc_event(qe_client *c, struct hconn *h, uint32_t ev, qe_client_done_fn done,
                    void *ud)
{
    char msg[300];
    if (!h->r) {
        if (h->state == HC_IDLE)
            hc_drop_idle(c, h); /* the server closed it, or sent unasked bytes */
        return 0;
    }
    if (h->state == HC_FAILED)
        return 0;
    if (h->state == HC_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return 0;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err == 0 && (ev & (EPOLLERR | EPOLLHUP)))
            err = ECONNREFUSED;
        size_t i = h->addr % c->naddrs;
        if (err) {
            char an[128];
            addr_name(c, i, an, sizeof an);
            say(msg, sizeof msg, "could not connect to %s: %s", an, strerror(err));
            hc_close_fd(h);
            h->tried++;
            h->addr = i + 1;
            if (h->tried < c->naddrs && hc_connect(c, h, msg, sizeof msg) == 0)
                return 0;
            return hc_fail(c, h, QE_ENET, false, false, msg, done, ud);
        }
        c->good_addr = i;
        h->state = HC_SENDING;
        h->deadline = h->r->t_attempt + (double)c->o.timeout_ms;
    }
    if (h->state == HC_SENDING && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int er = hc_send(c, h);
        if (er) {
            say(msg, sizeof msg, "send failed: %s", strerror(er));
            return hc_fail(c, h, QE_ENET, false, er == EPIPE || er == ECONNRESET, msg, done, ud);
        }
    }
    if ((h->state == HC_SENDING || h->state == HC_RECEIVING) &&
        (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return hc_read(c, h, done, ud);
    return 0;
}

static int start_native(qe_client *c, struct creq *r, qe_err *e)
{
    (void)e;
    char msg[300];
    sink_reset(&r->sink, c->conf.cap);
    r->attempts++;
    r->t_attempt = now_ms();
    if (r->attempts == 1)
        r->t_first = r->t_attempt;
    r->slot = c->nactive;
    c->act[c->nactive++] = r;
    struct hconn *h;
    if (c->nhidle) {
        h = c->hidle[--c->nhidle];
        h->reused = true;
        h->state = HC_SENDING;
    } else {
        h = c->hclosed[--c->nhclosed];
        h->reused = false;
    }
    h->r = r;
    r->hc = h;
    h->sent = 0;
    qe_http_parser_reset(&h->p, c->conf.cap);
    h->deadline = r->t_attempt + (double)c->o.timeout_ms;
    if (!h->reused) {
        long ct = c->o.connect_timeout_ms < c->o.timeout_ms ? c->o.connect_timeout_ms
                                                            : c->o.timeout_ms;
        h->deadline = r->t_attempt + (double)ct;
        h->tried = 0;
        h->addr = c->good_addr;
        if (hc_connect(c, h, msg, sizeof msg) != 0) {
            hc_defer_fail(c, h, msg);
            return 0;
        }
    }
    timer_at(c, h->deadline);
    if (h->state == HC_SENDING) {
        int er = hc_send(c, h);
        if (er && h->reused && (er == EPIPE || er == ECONNRESET)) {
            if (hc_reconnect(c, h, msg, sizeof msg) != 0)
                hc_defer_fail(c, h, msg);
        } else if (er) {
            say(msg, sizeof msg, "send failed: %s", strerror(er));
            hc_defer_fail(c, h, msg);
        }
    }
    return 0;
}

/* Settles every attempt past its deadline (or failed at start) and sets
 * the timer to the earliest deadline left. */
static int hc_scan(qe_client *c, qe_client_done_fn done, void *ud)
{
    double now = now_ms();
    c->timer_due = -1.0;
    char msg[300];
    /* backwards: settling one swaps the last (already seen) into its slot */
    for (size_t i = c->nactive; i-- > 0;) {
        if (i >= c->nactive)
            continue;
        struct creq *r = c->act[i];
        struct hconn *h = r->hc;
        if (h->deadline > now) {
            timer_at(c, h->deadline);
            continue;
        }
        int rc;
        if (h->state == HC_FAILED) {
            rc = hc_fail(c, h, QE_ENET, false, false, r->xmsg, done, ud);
        } else if (h->state == HC_CONNECTING) {
            char an[128];
            addr_name(c, h->addr % c->naddrs, an, sizeof an);
            say(msg, sizeof msg, "connection timed out after %.0f ms (connecting to %s)",
                now - r->t_attempt, an);
            rc = hc_fail(c, h, QE_ENET, false, false, msg, done, ud);
        } else {
            say(msg, sizeof msg, "operation timed out after %.0f ms with %zu bytes received",
                now - r->t_attempt, h->p.total_bytes);
            rc = hc_fail(c, h, QE_ENET, false, false, msg, done, ud);
        }
        if (rc)
            return rc;
    }
    return 0;
}

void qe_client_set_idle(qe_client *c, qe_client_idle_fn fn, void *userdata)
{
    c->idle_fn = fn;
    c->idle_ud = userdata;
}

/* Calls the idle hook; its non-zero return becomes the run's status. */
static int call_idle(qe_client *c, qe_err *e)
{
    if (!c->idle_fn)
        return 0;
    int rc = c->idle_fn(c->idle_ud);
    if (rc && e && e->code != rc)
        qe_err_set(e, rc, "stopped by the idle callback (status %s)", qe_status_name(rc));
    return rc;
}

int qe_client_run(qe_client *c, qe_client_done_fn done, void *ud,
                  const volatile sig_atomic_t *stop, qe_err *e)
{
    int rc = 0;
    bool idle_failed = false;
    struct epoll_event evs[64];
    for (;;) {
        if (stop && *stop) {
            rc = qe_err_set(e, QE_EINTR, "interrupted; %zu requests unfinished",
                            qe_client_pending(c));
            break;
        }
        double now = now_ms();
        if ((rc = fill(c, now, e)))
            break;
        if (c->nactive == 0 && c->nwaiting == 0 && !c->qhead)
            break;
        now = now_ms(); /* after fill: adding a handle sets a zero timer */
        double wait = POLL_SLICE_MS;
        if (c->timer_due >= 0 && c->timer_due - now < wait)
            wait = c->timer_due - now;
        if (c->nactive < (size_t)c->o.num_concurrent)
            for (struct creq *r = c->waiting; r; r = r->next)
                if (r->due - now < wait)
                    wait = r->due - now;
        int ms = wait <= 0 ? 0 : (int)wait + (wait > (int)wait);
        /* about to block: the moment for the caller's batched work (the
         * runner commits the answers of this turn here) */
        if (ms > 0 && (rc = call_idle(c, e))) {
            idle_failed = true;
            break;
        }
        int n = epoll_wait(c->epfd, evs, (int)(sizeof evs / sizeof *evs), ms);
        if (n < 0 && errno != EINTR) {
            rc = qe_err_set(e, QE_ENET, "epoll_wait failed: %s", strerror(errno));
            break;
        }
        if (c->native) {
            for (int i = 0; i < n && !rc; i++)
                rc = hc_event(c, evs[i].data.ptr, evs[i].events, done, ud);
            if (!rc && c->timer_due >= 0 && c->timer_due <= now_ms())
                rc = hc_scan(c, done, ud);
            if (rc) {
                if (e && e->code != rc)
                    qe_err_set(e, rc, "stopped by the result callback (status %s)",
                               qe_status_name(rc));
                break;
            }
            continue;
        }
        int running = 0;
        for (int i = 0; i < n; i++) {
            if (fd_unwanted(c, evs[i].data.fd))
                continue;
            int fl = ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                     ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                     ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(c->multi, evs[i].data.fd, fl, &running);
        }
        if (c->timer_due >= 0 && c->timer_due <= now_ms()) {
            c->timer_due = -1.0;
            curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        int progress = 0;
        if ((rc = drain(c, done, ud, &progress))) {
            if (e && e->code != rc)
                qe_err_set(e, rc, "stopped by the result callback (status %s)",
                           qe_status_name(rc));
            break;
        }
    }
    /* and once at the end, whatever ended the loop (not when the hook
     * itself stopped it): a stop or a callback's error still lets the
     * caller commit what it already has */
    if (!idle_failed) {
        qe_err e2 = {0, ""};
        int irc = call_idle(c, &e2);
        if (irc && (rc == 0 || rc == QE_EINTR)) {
            rc = irc;
            if (e)
                *e = e2;
        }
    }
    if (rc) {
        /* whatever did not finish is dropped (callers re-queue on resume) */
        abort_active(c);
        free_list(c->qhead);
        free_list(c->waiting);
        c->qhead = c->qtail = c->waiting = NULL;
        c->nqueued = c->nwaiting = 0;
    }
    return rc;
}

/* ---------- synchronous helpers ---------- */

int qe_client_request(const qe_client_opts *o, const char *path, const char *json_body,
                      long *http_status, char **body, size_t *body_len, qe_err *e)
{
    *http_status = 0;
    if (body)
        *body = NULL;
    if (body_len)
        *body_len = 0;
    struct conf cf;
    int rc = conf_init(&cf, o, e);
    if (rc)
        return rc;
    char *url = make_url(cf.root, path);
    CURL *h = curl_easy_init();
    struct sink s;
    memset(&s, 0, sizeof s);
    sink_reset(&s, cf.cap);
    char errbuf[CURL_ERROR_SIZE] = "";
    if (!url || !h) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto out;
    }
    easy_setup(h, &cf);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (json_body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json_body));
    }
    CURLcode cc = curl_easy_perform(h);
    char ru[512];
    redact_url(url, ru, sizeof ru);
    if (cc != CURLE_OK) {
        if (s.over_cap || cc == CURLE_FILESIZE_EXCEEDED)
            rc = qe_err_set(e, QE_ELIMIT, "reply from %s exceeds the %zu-byte limit", ru, cf.cap);
        else
            rc = qe_err_set(e, QE_ENET, "%s %s: %s%s%s (curl error %d)",
                            json_body ? "POST" : "GET", ru, curl_easy_strerror(cc),
                            errbuf[0] ? ": " : "", errbuf, (int)cc);
        if (e)
            scrub(&cf, e->msg, NULL);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, http_status);
    scrub(&cf, s.body.data, &s.body.len);
    if (body_len)
        *body_len = s.body.len;
    if (body) {
        *body = qe_buf_detach(&s.body);
        if (!*body)
            rc = qe_err_set(e, QE_ENOMEM, "out of memory");
    }
out:
    if (h)
        curl_easy_cleanup(h);
    free(url);
    qe_buf_free(&s.body);
    conf_free(&cf);
    return rc;
}

/* POST/GET expecting 200 + a JSON object; *out owned by the caller. */
static int request_json(const qe_client_opts *o, const char *path, const char *body,
                        json_t **out, qe_err *e)
{
    long http;
    char *resp = NULL;
    size_t n = 0;
    *out = NULL;
    int rc = qe_client_request(o, path, body, &http, &resp, &n, e);
    if (rc)
        return rc;
    if (http != 200) {
        char m[700];
        qe_client_error_message(resp, n, m, sizeof m);
        free(resp);
        return qe_err_set(e, QE_ESERVER, "%s %s: HTTP %ld: %s", body ? "POST" : "GET", path, http,
                          m);
    }
    json_error_t jerr;
    json_t *j = json_loadb(resp ? resp : "", n, 0, &jerr);
    free(resp);
    if (!json_is_object(j)) {
        json_decref(j);
        return qe_err_set(e, QE_ESERVER, "%s: reply is not a JSON object (%s)", path, jerr.text);
    }
    *out = j;
    return 0;
}

int qe_client_health(const qe_client_opts *o, qe_err *e)
{
    long http;
    int rc = qe_client_request(o, "/health", NULL, &http, NULL, NULL, e);
    if (rc)
        return rc;
    if (http != 200)
        return qe_err_set(e, QE_ESERVER, "GET /health: HTTP %ld (server not ready)", http);
    return 0;
}

void qe_client_free_strings(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int qe_client_models(const qe_client_opts *o, char ***ids, size_t *n, qe_err *e)
{
    *ids = NULL;
    *n = 0;
    json_t *j;
    int rc = request_json(o, "/v1/models", NULL, &j, e);
    if (rc)
        return rc;
    json_t *data = json_object_get(j, "data");
    if (!json_is_array(data)) {
        json_decref(j);
        return qe_err_set(e, QE_ESERVER, "GET /v1/models: reply has no data array");
    }
    size_t cnt = json_array_size(data);
    char **v = calloc(cnt ? cnt : 1, sizeof *v);
    size_t k = 0;
    for (size_t i = 0; v && i < cnt; i++) {
        json_t *id = json_object_get(json_array_get(data, i), "id");
        if (json_is_string(id) && !(v[k++] = dup_str(id, NULL, NULL))) {
            qe_client_free_strings(v, k);
            v = NULL;
        }
    }
    json_decref(j);
    if (!v)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    *ids = v;
    *n = k;
    return 0;
}

int qe_client_tokenize(const qe_client_opts *o, const char *json_body, long **tokens, size_t *n,
                       qe_err *e)
{
    *tokens = NULL;
    *n = 0;
    json_t *j;
    int rc = request_json(o, "/tokenize", json_body, &j, e);
    if (rc)
        return rc;
    json_t *t = json_object_get(j, "tokens");
    if (!json_is_array(t)) {
        json_decref(j);
        return qe_err_set(e, QE_ESERVER, "POST /tokenize: reply has no tokens array");
    }
    size_t cnt = json_array_size(t);
    long *v = malloc((cnt ? cnt : 1) * sizeof *v);
    if (!v) {
        json_decref(j);
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < cnt; i++) {
        json_t *x = json_array_get(t, i);
        if (!json_is_integer(x)) {
            free(v);
            json_decref(j);
            return qe_err_set(e, QE_ESERVER, "POST /tokenize: tokens[%zu] is %s, expected an integer",
                              i, json_kind(x));
        }
        v[i] = (long)json_integer_value(x);
    }
    json_decref(j);
    *tokens = v;
    *n = cnt;
    return 0;
}

int qe_client_detokenize(const qe_client_opts *o, const char *model, const long *tokens,
                         size_t n, char **text, qe_err *e)
{
    *text = NULL;
    json_t *req = json_object();
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_integer(tokens[i]));
    json_object_set_new(req, "model", json_string(model ? model : ""));
    json_object_set_new(req, "tokens", arr);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body)
        return qe_err_set(e, QE_ENOMEM, "out of memory (or model name is not UTF-8)");
    json_t *j;
    int rc = request_json(o, "/detokenize", body, &j, e);
    free(body);
    if (rc)
        return rc;
    json_t *p = json_object_get(j, "prompt");
    if (!json_is_string(p)) {
        json_decref(j);
        return qe_err_set(e, QE_ESERVER, "POST /detokenize: reply has no prompt string");
    }
    *text = dup_str(p, NULL, NULL);
    json_decref(j);
    return *text ? 0 : qe_err_set(e, QE_ENOMEM, "out of memory");
}

int qe_client_render_prompt(const qe_client_opts *o, const char *model, const char *tokenize_body,
                            char **text, size_t *n_tokens, qe_err *e)
{
    long *toks;
    size_t n;
    *text = NULL;
    int rc = qe_client_tokenize(o, tokenize_body, &toks, &n, e);
    if (rc)
        return rc;
    rc = qe_client_detokenize(o, model, toks, n, text, e);
    free(toks);
    if (!rc && n_tokens)
        *n_tokens = n;
    return rc;
}
