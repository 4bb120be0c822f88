/* client: OpenAI-compatible HTTP client on libcurl multi (see client.h).
 *
 * Shape of the engine: a FIFO of requests not yet started, a list of
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
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <time.h>

#include "buf.h"

#define MAX_CONCURRENT 4096
#define POLL_SLICE_MS 100   /* how often the stop flag is looked at, at most */

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

struct creq {
    uint64_t id;
    char *url;
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
    double timer_due;     /* when curl wants control back; < 0: no timer */
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

/* Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF)? */
static bool utf8_valid(const unsigned char *s, size_t n, size_t *bad_at)
{
    size_t i = 0;
    while (i < n) {
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

static char *dup_str(json_t *v)
{
    if (!json_is_string(v))
        return strdup("");
    size_t n = json_string_length(v);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, json_string_value(v), n);
        s[n] = 0;
    }
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
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);
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
    out->content = dup_str(content);
    out->content_len = json_is_string(content) ? json_string_length(content) : 0;
    out->reasoning = dup_str(reasoning);
    out->finish_reason = dup_str(json_object_get(c0, "finish_reason"));
    out->model = dup_str(json_object_get(j, "model"));
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
        char tmp[64];
        size_t k = n - 12 < sizeof tmp - 1 ? n - 12 : sizeof tmp - 1;
        memcpy(tmp, p + 12, k);
        tmp[k] = 0;
        char *end;
        errno = 0;
        long v = strtol(tmp, &end, 10);
        while (*end == ' ' || *end == '\r' || *end == '\n' || *end == '\t')
            end++;
        /* seconds form only; an HTTP-date is ignored (normal backoff) */
        if (!errno && end != tmp && !*end && v >= 0)
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
static int on_timer(CURLM *m, long timeout_ms, void *userp);

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
    *out = c;
    return 0;
}

static void creq_free(struct creq *r)
{
    if (!r)
        return;
    free(r->url);
    free(r->body);
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
        curl_multi_remove_handle(c->multi, r->easy);
        c->idle[c->nidle++] = r->easy;
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
    if (c->multi)
        curl_multi_cleanup(c->multi);
    conf_free(&c->conf);
    if (c->epfd >= 0)
        close(c->epfd);
    free(c);
    curl_global_cleanup();
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
    r->body_len = strlen(json_body);
    r->body = strdup(json_body);
    if (!r->url || !r->body) {
        creq_free(r);
        return qe_err_set(e, QE_ENOMEM, "out of memory queuing request");
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

static int start(qe_client *c, struct creq *r, qe_err *e)
{
    CURL *h = c->nidle ? c->idle[--c->nidle] : NULL;
    if (!h) {
        h = curl_easy_init();
        if (!h)
            return qe_err_set(e, QE_ENOMEM, "out of memory creating a transfer");
        easy_setup(h, &c->conf);
    }
    sink_reset(&r->sink, c->conf.cap);
    r->errbuf[0] = 0;
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

/* Sets r->last_error/last_status; returns true when a retry may help. */
static bool classify(qe_client *c, struct creq *r, CURLcode cc, long http, qe_reply *reply)
{
    char url[512];
    redact_url(r->url, url, sizeof url);
    r->last_http = http;
    qe_err pe = {0, ""};
    if (cc != CURLE_OK) {
        if (r->sink.over_cap || cc == CURLE_FILESIZE_EXCEEDED) {
            r->last_status = QE_ELIMIT;
            say(r->last_error, sizeof r->last_error,
                     "reply body from %s exceeds the %zu-byte limit (max_body_bytes)", url,
                     c->conf.cap);
            return false;
        }
        if (r->sink.oom) {
            r->last_status = QE_ENOMEM;
            say(r->last_error, sizeof r->last_error, "out of memory reading reply from %s",
                     url);
            return false;
        }
        r->last_status = QE_ENET;
        say(r->last_error, sizeof r->last_error, "%s: %s%s%s (curl error %d)", url,
                 curl_easy_strerror(cc), r->errbuf[0] ? ": " : "", r->errbuf, (int)cc);
        return !curl_permanent(cc);
    }
    if (http >= 200 && http < 300) {
        if (qe_client_parse_reply(r->sink.body.data, r->sink.body.len, reply, &pe) == 0) {
            r->last_status = 0;
            r->last_error[0] = 0;
            return false;
        }
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
        c->act[r->slot] = c->act[--c->nactive];
        c->act[r->slot]->slot = r->slot;
        r->easy = NULL;
        (*progress)++;
        qe_reply reply;
        memset(&reply, 0, sizeof reply);
        bool retry = classify(c, r, cc, http, &reply);
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
            continue;
        }
        if (retry) {
            char tmp[sizeof r->last_error];
            say(tmp, sizeof tmp, "gave up after %d attempts: %s", r->attempts, r->last_error);
            memcpy(r->last_error, tmp, sizeof tmp);
        }
        int rc = finish(c, r, &reply, done, ud);
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
 * costs O(ready sockets), not O(connections) as curl_multi_poll would. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    qe_client *c = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.data.fd = fd;
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
        epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    qe_client *c = userp;
    c->timer_due = timeout_ms < 0 ? -1.0 : now_ms() + (double)timeout_ms;
    return 0;
}

int qe_client_run(qe_client *c, qe_client_done_fn done, void *ud,
                  const volatile sig_atomic_t *stop, qe_err *e)
{
    int rc = 0;
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
        int n = epoll_wait(c->epfd, evs, (int)(sizeof evs / sizeof *evs), ms);
        if (n < 0 && errno != EINTR) {
            rc = qe_err_set(e, QE_ENET, "epoll_wait failed: %s", strerror(errno));
            break;
        }
        int running = 0;
        for (int i = 0; i < n; i++) {
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
        if (json_is_string(id) && !(v[k++] = dup_str(id))) {
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
    *text = dup_str(p);
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
