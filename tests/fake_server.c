/* fake_server: an OpenAI-compatible HTTP server for tests and benchmarks.
 *
 * Speaks enough of vLLM's API for qeval to be tested end to end without a
 * GPU: GET /health, GET /v1/models, POST /v1/chat/completions,
 * POST /v1/completions, POST /tokenize, POST /detokenize. Answers come from a
 * JSONL script (rules matched on a substring of the prompt), from
 * --default-answer, or echo the prompt. Faults (500, 429 + Retry-After,
 * stalls, resets, garbage, truncation, huge bodies, trickle, crash) are
 * injected globally (--fault) or per script rule. Every request can be
 * appended to a JSONL request log so tests can prove what was (not) sent.
 *
 * The CLI is a contract other tests depend on: docs/fake-server.md.
 *
 * Concurrency: libmicrohttpd with an epoll thread pool; artificial latency
 * suspends the connection and a timer thread resumes it, so 256 slow requests
 * need no 256 threads. Only "trickle" sleeps inside a pool thread.
 * Tokens are bytes: token i is the byte value, so /tokenize and /detokenize
 * are exactly reversible and prompt_tokens == bytes of the rendered prompt. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "buf.h"

#define MAX_BODY (64u << 20)   /* request bodies above this get 413 */
#define MAX_FAULTS 16
#define MAX_PENDING 65536

enum fault_kind {
    F_NONE, F_500, F_429, F_STALL, F_RESET, F_GARBAGE, F_TRUNCATED, F_HUGE,
    F_TRICKLE, F_DIE_AFTER, F_BADUTF8, F_CLOSE,
};

struct fault {
    enum fault_kind kind;
    long n;          /* how many requests it applies to; <0 = all */
    long arg;        /* 429: Retry-After seconds; stall: ms; huge: bytes; trickle: ms */
    atomic_long fired;
};

struct rule {
    char *match;            /* substring of the last user message / prompt; NULL = any */
    char *content;          /* NULL with content_null */
    size_t content_len;
    bool content_null;
    char *reasoning_content;
    char *reasoning;
    char *finish_reason;
    long prompt_tokens, completion_tokens;  /* -1 = computed */
    long latency_ms;
    int status;             /* nonzero: answer with this HTTP error */
    char *error;
    struct fault fault;
    bool has_fault;
};

struct pending {
    struct timespec due;
    struct MHD_Connection *conn;
};

struct server {
    const char *model;
    const char *default_answer;
    const char *api_key;        /* NULL: no auth; else "Bearer KEY" required */
    long max_model_len; /* 0: no limit, and none reported (as a server that is not vLLM) */
    bool flat_errors;
    long latency_ms;            /* global extra latency */
    struct fault faults[MAX_FAULTS];
    int nfaults;
    long die_after;             /* <0 off */
    atomic_long answered;
    atomic_long seq;
    struct rule *rules;
    size_t nrules;
    FILE *log;
    pthread_mutex_t log_mu;
    /* timer for artificial latency */
    pthread_mutex_t tmu;
    pthread_cond_t tcv;
    struct pending *pend;
    size_t npend;
};

/* Per-request state, MHD's con_cls. */
struct req {
    qe_buf body;
    bool too_big;
    bool generation;            /* a completion endpoint (counted by faults) */
    struct MHD_Response *resp;  /* ready, waiting for latency to pass */
    unsigned status;
    long seq;
    char *path;
    char *log_model;
    char *prompt;               /* rendered prompt text (for log) */
    const char *fault;          /* name of the fault applied, or NULL */
    bool logged;
    int client_port;            /* peer's TCP port: tells connections apart */
};

/* ---------- small helpers ---------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fake_server: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void ts_add_ms(struct timespec *t, long ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static int ts_cmp(const struct timespec *a, const struct timespec *b)
{
    if (a->tv_sec != b->tv_sec)
        return a->tv_sec < b->tv_sec ? -1 : 1;
    return (a->tv_nsec > b->tv_nsec) - (a->tv_nsec < b->tv_nsec);
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* JSON string literal of arbitrary bytes (invalid UTF-8 passes through raw:
 * that is the point of the badutf8 fault). */
static void json_str(qe_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    qe_buf_putc(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        qe_buf_append(b, s + start, i - start);
        start = i + 1;
        switch (c) {
        case '"': qe_buf_puts(b, "\\\""); break;
        case '\\': qe_buf_puts(b, "\\\\"); break;
        case '\n': qe_buf_puts(b, "\\n"); break;
        case '\r': qe_buf_puts(b, "\\r"); break;
        case '\t': qe_buf_puts(b, "\\t"); break;
        default: {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            qe_buf_puts(b, u);
        }
        }
    }
    qe_buf_append(b, s + start, n - start);
    qe_buf_putc(b, '"');
}

static void sha256_hex(const char *s, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(s, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
    out[64] = 0;
}

/* ---------- faults ---------- */

/* KIND[:ARG...]; returns false if malformed. */
static bool parse_fault(const char *spec, struct fault *f)
{
    char kind[32];
    long a = -1, b = -1;
    memset(f, 0, sizeof *f);
    const char *colon = strchr(spec, ':');
    size_t kl = colon ? (size_t)(colon - spec) : strlen(spec);
    if (kl == 0 || kl >= sizeof kind)
        return false;
    memcpy(kind, spec, kl);
    kind[kl] = 0;
    if (colon) {
        char *end;
        a = strtol(colon + 1, &end, 10);
        if (end == colon + 1)
            return false;
        if (*end == ':') {
            const char *p = end + 1;
            b = strtol(p, &end, 10);
            if (end == p)
                return false;
        }
        if (*end)
            return false;
    }
    f->n = -1;
    f->arg = 0;
    if (!strcmp(kind, "500")) {
        f->kind = F_500; f->n = a;
    } else if (!strcmp(kind, "429")) {
        f->kind = F_429; f->n = a; f->arg = b >= 0 ? b : 1;
    } else if (!strcmp(kind, "stall")) {
        f->kind = F_STALL; f->arg = a >= 0 ? a : 60000; f->n = b;
    } else if (!strcmp(kind, "reset")) {
        f->kind = F_RESET; f->n = a;
    } else if (!strcmp(kind, "close")) {
        f->kind = F_CLOSE; f->n = a;
    } else if (!strcmp(kind, "garbage")) {
        f->kind = F_GARBAGE; f->n = a;
    } else if (!strcmp(kind, "truncated")) {
        f->kind = F_TRUNCATED; f->n = a;
    } else if (!strcmp(kind, "badutf8")) {
        f->kind = F_BADUTF8; f->n = a;
    } else if (!strcmp(kind, "huge")) {
        f->kind = F_HUGE; f->arg = a >= 0 ? a : (50L << 20); f->n = b;
    } else if (!strcmp(kind, "trickle")) {
        f->kind = F_TRICKLE; f->arg = a >= 0 ? a : 20; f->n = b;
    } else if (!strcmp(kind, "die-after")) {
        f->kind = F_DIE_AFTER; f->n = a;
    } else {
        return false;
    }
    return true;
}

static const char *fault_name(enum fault_kind k)
{
    switch (k) {
    case F_500: return "500";
    case F_429: return "429";
    case F_STALL: return "stall";
    case F_RESET: return "reset";
    case F_CLOSE: return "close";
    case F_GARBAGE: return "garbage";
    case F_TRUNCATED: return "truncated";
    case F_HUGE: return "huge";
    case F_TRICKLE: return "trickle";
    case F_BADUTF8: return "badutf8";
    case F_DIE_AFTER: return "die-after";
    default: return NULL;
    }
}

/* Claims one firing of f if it has some left. */
static bool fault_claim(struct fault *f)
{
    if (f->n < 0) {
        atomic_fetch_add(&f->fired, 1);
        return true;
    }
    long cur = atomic_load(&f->fired);
    while (cur < f->n) {
        if (atomic_compare_exchange_weak(&f->fired, &cur, cur + 1))
            return true;
    }
    return false;
}

/* ---------- script ---------- */

static char *jstr_dup(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static long jint(json_t *o, const char *k, long dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (long)json_integer_value(v) : dflt;
}

static void load_script(struct server *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot open script %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t i = 0;
        while (i < (size_t)n && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == (size_t)n || line[i] == '\n' || line[i] == '#')
            continue;
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        if (!json_is_object(o))
            die("%s:%d: not a JSON object (%s)", path, lineno, jerr.text);
        s->rules = realloc(s->rules, (s->nrules + 1) * sizeof *s->rules);
        if (!s->rules)
            die("out of memory");
        struct rule *r = &s->rules[s->nrules++];
        memset(r, 0, sizeof *r);
        r->match = jstr_dup(o, "match");
        json_t *c = json_object_get(o, "content");
        json_t *ch = json_object_get(o, "content_hex");
        if (json_is_null(c)) {
            r->content_null = true;
        } else if (json_is_string(c)) {
            r->content_len = json_string_length(c);
            r->content = malloc(r->content_len + 1);
            memcpy(r->content, json_string_value(c), r->content_len + 1);
        } else if (json_is_string(ch)) {
            const char *h = json_string_value(ch);
            size_t hl = strlen(h);
            r->content = malloc(hl / 2 + 1);
            for (size_t k = 0; k < hl / 2; k++) {
                unsigned v;
                if (sscanf(h + 2 * k, "%2x", &v) != 1)
                    die("%s:%d: bad content_hex", path, lineno);
                r->content[r->content_len++] = (char)v;
            }
            r->content[r->content_len] = 0;
        }
        r->reasoning_content = jstr_dup(o, "reasoning_content");
        r->reasoning = jstr_dup(o, "reasoning");
        r->finish_reason = jstr_dup(o, "finish_reason");
        r->prompt_tokens = jint(o, "prompt_tokens", -1);
        r->completion_tokens = jint(o, "completion_tokens", -1);
        r->latency_ms = jint(o, "latency_ms", 0);
        r->status = (int)jint(o, "status", 0);
        r->error = jstr_dup(o, "error");
        char *fs = jstr_dup(o, "fault");
        if (fs) {
            if (!parse_fault(fs, &r->fault))
                die("%s:%d: bad fault '%s'", path, lineno, fs);
            r->has_fault = true;
            free(fs);
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
}

/* ---------- latency timer ---------- */

static void *timer_main(void *arg)
{
    struct server *s = arg;
    pthread_mutex_lock(&s->tmu);
    for (;;) {
        if (s->npend == 0) {
            pthread_cond_wait(&s->tcv, &s->tmu);
            continue;
        }
        /* earliest deadline (linear scan; pending count is small) */
        size_t best = 0;
        for (size_t i = 1; i < s->npend; i++)
            if (ts_cmp(&s->pend[i].due, &s->pend[best].due) < 0)
                best = i;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (ts_cmp(&s->pend[best].due, &now) > 0) {
            pthread_cond_timedwait(&s->tcv, &s->tmu, &s->pend[best].due);
            continue;
        }
        struct MHD_Connection *c = s->pend[best].conn;
        s->pend[best] = s->pend[--s->npend];
        pthread_mutex_unlock(&s->tmu);
        MHD_resume_connection(c);
        pthread_mutex_lock(&s->tmu);
    }
    return NULL;
}

static bool schedule(struct server *s, struct MHD_Connection *c, long ms)
{
    pthread_mutex_lock(&s->tmu);
    if (s->npend >= MAX_PENDING) {
        pthread_mutex_unlock(&s->tmu);
        return false;
    }
    struct pending *p = &s->pend[s->npend++];
    clock_gettime(CLOCK_REALTIME, &p->due);
    ts_add_ms(&p->due, ms);
    p->conn = c;
    pthread_cond_signal(&s->tcv);
    pthread_mutex_unlock(&s->tmu);
    return true;
}

/* ---------- prompt rendering ---------- */

/* Text of a message's content: a string, or an array of {type:text,text}. */
static void content_text(json_t *content, qe_buf *out)
{
    if (json_is_string(content)) {
        qe_buf_append(out, json_string_value(content), json_string_length(content));
    } else if (json_is_array(content)) {
        size_t i;
        json_t *part;
        json_array_foreach(content, i, part) {
            json_t *t = json_object_get(part, "text");
            if (json_is_string(t))
                qe_buf_append(out, json_string_value(t), json_string_length(t));
        }
    }
}

/* ChatML as Qwen3's template renders it for plain text messages. */
static bool render_chat(json_t *req, qe_buf *out, qe_buf *last_user)
{
    json_t *msgs = json_object_get(req, "messages");
    if (!json_is_array(msgs))
        return false;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *role = json_object_get(m, "role");
        if (!json_is_string(role))
            return false;
        qe_buf_puts(out, "<|im_start|>");
        qe_buf_puts(out, json_string_value(role));
        qe_buf_putc(out, '\n');
        content_text(json_object_get(m, "content"), out);
        qe_buf_puts(out, "<|im_end|>\n");
        if (last_user && !strcmp(json_string_value(role), "user")) {
            qe_buf_reset(last_user);
            content_text(json_object_get(m, "content"), last_user);
        }
    }
    json_t *agp = json_object_get(req, "add_generation_prompt");
    if (!agp || json_is_true(agp)) {
        qe_buf_puts(out, "<|im_start|>assistant\n");
        json_t *kw = json_object_get(req, "chat_template_kwargs");
        json_t *et = json_object_get(kw, "enable_thinking");
        if (json_is_false(et))
            qe_buf_puts(out, "<think>\n\n</think>\n\n");
    }
    return true;
}

/* ---------- responses ---------- */

static struct MHD_Response *resp_buf(qe_buf *b, const char *ctype)
{
    size_t n = b->len;
    char *d = qe_buf_detach(b);
    struct MHD_Response *r = MHD_create_response_from_buffer(n, d, MHD_RESPMEM_MUST_FREE);
    if (ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    return r;
}

static struct MHD_Response *error_resp(struct server *s, int status, const char *type,
                                       const char *msg)
{
    qe_buf b = QE_BUF_INIT;
    if (s->flat_errors) {
        qe_buf_puts(&b, "{\"object\":\"error\",\"message\":");
        json_str(&b, msg, strlen(msg));
        qe_buf_printf(&b, ",\"type\":\"%s\",\"param\":null,\"code\":%d}", type, status);
    } else {
        qe_buf_puts(&b, "{\"error\":{\"message\":");
        json_str(&b, msg, strlen(msg));
        qe_buf_printf(&b, ",\"type\":\"%s\",\"param\":null,\"code\":%d}}", type, status);
    }
    return resp_buf(&b, "application/json");
}

/* Content reader for reset/trickle: serves `data`, optionally in small
 * slices with a sleep between, optionally aborting at `cut`. */
struct stream {
    char *data;
    size_t len;
    size_t cut;      /* abort the connection once this many bytes were sent */
    long trickle_ms; /* >0: sleep this long before each small slice */
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *st = cls;
    if (pos >= st->cut)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = st->cut - (size_t)pos;
    if (st->trickle_ms > 0) {
        sleep_ms(st->trickle_ms);
        if (n > 16)
            n = 16;
    }
    if (n > max)
        n = max;
    memcpy(buf, st->data + pos, n);
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream *st = cls;
    free(st->data);
    free(st);
}

static struct MHD_Response *resp_stream(qe_buf *b, size_t cut, long trickle_ms)
{
    struct stream *st = calloc(1, sizeof *st);
    st->len = b->len;
    st->data = qe_buf_detach(b);
    st->cut = cut > st->len ? st->len : cut;
    st->trickle_ms = trickle_ms;
    if (st->cut == st->len && trickle_ms <= 0)
        st->cut = st->len + 1; /* never abort */
    struct MHD_Response *r = MHD_create_response_from_callback(st->len, 4096, stream_read, st,
                                                               stream_free);
    MHD_add_response_header(r, "Content-Type", "application/json");
    return r;
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Handles the two completion endpoints. */
static struct MHD_Response *handle_generation(struct server *s, struct req *rq, bool chat,
                                              long *delay_ms)
{
    json_error_t jerr;
    json_t *j = json_loadb(rq->body.data ? rq->body.data : "", rq->body.len, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        rq->status = 400;
        char msg[300];
        snprintf(msg, sizeof msg, "Invalid JSON body: %s", jerr.text);
        return error_resp(s, 400, "BadRequestError", msg);
    }
    qe_buf prompt = QE_BUF_INIT, user = QE_BUF_INIT;
    const char *model = json_string_value(json_object_get(j, "model"));
    rq->log_model = model ? strdup(model) : NULL;
    bool ok;
    if (chat) {
        ok = render_chat(j, &prompt, &user);
    } else {
        json_t *p = json_object_get(j, "prompt");
        ok = json_is_string(p);
        if (ok) {
            qe_buf_append(&prompt, json_string_value(p), json_string_length(p));
            qe_buf_append(&user, json_string_value(p), json_string_length(p));
        }
    }
    rq->prompt = strdup(qe_buf_str(&prompt));
    struct MHD_Response *r = NULL;
    if (!ok) {
        rq->status = 400;
        r = error_resp(s, 400, "BadRequestError",
                       chat ? "messages: field required (a list of {role, content})"
                            : "prompt: field required (a string)");
        goto out;
    }
    if (!model || strcmp(model, s->model) != 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "The model `%.200s` does not exist.", model ? model : "");
        rq->status = 404;
        r = error_resp(s, 404, "NotFoundError", msg);
        goto out;
    }
    json_t *mt = json_object_get(j, "max_tokens");
    if (!mt)
        mt = json_object_get(j, "max_completion_tokens");
    long max_tokens = json_is_integer(mt) ? (long)json_integer_value(mt) : (chat ? -1 : 16);
    long ptoks = (long)prompt.len;
    if (s->max_model_len > 0 && max_tokens >= 0 && ptoks + max_tokens > s->max_model_len) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "This model's maximum context length is %ld tokens. However, you requested "
                 "%ld tokens (%ld in the messages, %ld in the completion). Please reduce the "
                 "length of the messages or completion.",
                 s->max_model_len, ptoks + max_tokens, ptoks, max_tokens);
        rq->status = 400;
        r = error_resp(s, 400, "BadRequestError", msg);
        goto out;
    }

    /* pick the rule */
    struct rule *rule = NULL;
    for (size_t i = 0; i < s->nrules; i++) {
        if (!s->rules[i].match || strstr(qe_buf_str(&user), s->rules[i].match)) {
            rule = &s->rules[i];
            break;
        }
    }
    /* pick the fault: the rule's first, then global ones in order */
    struct fault *f = NULL;
    if (rule && rule->has_fault && fault_claim(&rule->fault))
        f = &rule->fault;
    for (int i = 0; !f && i < s->nfaults; i++)
        if (s->faults[i].kind != F_DIE_AFTER && fault_claim(&s->faults[i]))
            f = &s->faults[i];
    enum fault_kind fk = f ? f->kind : F_NONE;
    rq->fault = fault_name(fk);
    *delay_ms = s->latency_ms + (rule ? rule->latency_ms : 0);

    if (rule && rule->status) {
        rq->status = (unsigned)rule->status;
        r = error_resp(s, rule->status, rule->status == 429 ? "RateLimitError" : "BadRequestError",
                       rule->error ? rule->error : "scripted error");
        goto out;
    }
    if (fk == F_500) {
        rq->status = 500;
        r = error_resp(s, 500, "InternalServerError", "injected fault: internal server error");
        goto out;
    }
    if (fk == F_429) {
        rq->status = 429;
        r = error_resp(s, 429, "RateLimitError", "injected fault: too many requests");
        char ra[32];
        snprintf(ra, sizeof ra, "%ld", f->arg);
        MHD_add_response_header(r, "Retry-After", ra);
        goto out;
    }
    if (fk == F_STALL)
        *delay_ms += f->arg;
    if (fk == F_CLOSE) {
        rq->status = 0;
        goto out; /* NULL response: the caller closes the connection */
    }

    /* the answer */
    const char *content = NULL;
    size_t clen = 0;
    char *owned = NULL;
    bool cnull = false;
    if (rule && (rule->content || rule->content_null)) {
        content = rule->content;
        clen = rule->content_len;
        cnull = rule->content_null;
    } else if (s->default_answer) {
        content = s->default_answer;
        clen = strlen(content);
    } else {
        qe_buf e = QE_BUF_INIT;
        qe_buf_puts(&e, "ECHO: ");
        qe_buf_append(&e, user.data ? user.data : "", user.len);
        clen = e.len;
        owned = qe_buf_detach(&e);
        content = owned;
    }
    if (fk == F_HUGE) {
        free(owned);
        owned = malloc((size_t)f->arg + 1);
        memset(owned, 'x', (size_t)f->arg);
        owned[f->arg] = 0;
        content = owned;
        clen = (size_t)f->arg;
        cnull = false;
    }
    if (fk == F_BADUTF8) {
        free(owned);
        owned = strdup("bad \xff\xfe utf8 \xc3( here");
        content = owned;
        clen = strlen(owned);
        cnull = false;
    }
    const char *finish = "stop";
    /* stop sequences, then max_tokens (tokens are bytes) */
    json_t *stop = json_object_get(j, "stop");
    if (content && !cnull && fk != F_HUGE) {
        json_t *one = json_is_string(stop) ? stop : NULL;
        size_t ns = json_is_array(stop) ? json_array_size(stop) : (one ? 1 : 0);
        for (size_t i = 0; i < ns; i++) {
            json_t *sv = one ? one : json_array_get(stop, i);
            if (!json_is_string(sv) || json_string_length(sv) == 0)
                continue;
            const char *hit = memmem(content, clen, json_string_value(sv), json_string_length(sv));
            if (hit)
                clen = (size_t)(hit - content);
        }
        if (max_tokens >= 0 && clen > (size_t)max_tokens) {
            clen = utf8_cut(content, clen, (size_t)max_tokens);
            finish = "length";
        }
    }
    if (rule && rule->finish_reason)
        finish = rule->finish_reason;
    long ctoks = rule && rule->completion_tokens >= 0 ? rule->completion_tokens : (long)clen;
    if (rule && rule->prompt_tokens >= 0)
        ptoks = rule->prompt_tokens;

    long seq = rq->seq;
    qe_buf b = QE_BUF_INIT;
    if (chat) {
        qe_buf_printf(&b, "{\"id\":\"chatcmpl-%ld\",\"object\":\"chat.completion\",\"created\":%ld,"
                          "\"model\":", seq, (long)time(NULL));
        json_str(&b, s->model, strlen(s->model));
        qe_buf_puts(&b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        if (cnull)
            qe_buf_puts(&b, "null");
        else
            json_str(&b, content, clen);
        if (rule && rule->reasoning_content) {
            qe_buf_puts(&b, ",\"reasoning_content\":");
            json_str(&b, rule->reasoning_content, strlen(rule->reasoning_content));
        }
        if (rule && rule->reasoning) {
            qe_buf_puts(&b, ",\"reasoning\":");
            json_str(&b, rule->reasoning, strlen(rule->reasoning));
        }
        qe_buf_puts(&b, ",\"tool_calls\":[]},\"logprobs\":null,\"finish_reason\":");
    } else {
        qe_buf_printf(&b, "{\"id\":\"cmpl-%ld\",\"object\":\"text_completion\",\"created\":%ld,"
                          "\"model\":", seq, (long)time(NULL));
        json_str(&b, s->model, strlen(s->model));
        qe_buf_puts(&b, ",\"choices\":[{\"index\":0,\"text\":");
        if (cnull)
            qe_buf_puts(&b, "null");
        else
            json_str(&b, content, clen);
        qe_buf_puts(&b, ",\"logprobs\":null,\"finish_reason\":");
    }
    json_str(&b, finish, strlen(finish));
    qe_buf_printf(&b, ",\"stop_reason\":null}],\"usage\":{\"prompt_tokens\":%ld,"
                      "\"total_tokens\":%ld,\"completion_tokens\":%ld}}",
                  ptoks, ptoks + ctoks, ctoks);
    free(owned);
    rq->status = 200;
    if (fk == F_GARBAGE) {
        qe_buf_reset(&b);
        qe_buf_puts(&b, "<html><body>502 Bad Gateway (injected garbage)</body></html>\n");
        r = resp_buf(&b, "text/html");
    } else if (fk == F_TRUNCATED) {
        b.len /= 2; /* well-framed HTTP, half a JSON document */
        b.data[b.len] = 0;
        r = resp_buf(&b, "application/json");
    } else if (fk == F_RESET) {
        r = resp_stream(&b, b.len / 2, 0);
    } else if (fk == F_TRICKLE) {
        r = resp_stream(&b, b.len, f->arg);
    } else {
        r = resp_buf(&b, "application/json");
    }
out:
    json_decref(j);
    qe_buf_free(&prompt);
    qe_buf_free(&user);
    return r;
}

static struct MHD_Response *handle_tokenize(struct server *s, struct req *rq)
{
    json_error_t jerr;
    json_t *j = json_loadb(rq->body.data ? rq->body.data : "", rq->body.len, 0, &jerr);
    qe_buf p = QE_BUF_INIT;
    struct MHD_Response *r;
    bool ok = json_is_object(j);
    if (ok) {
        const char *model = json_string_value(json_object_get(j, "model"));
        rq->log_model = model ? strdup(model) : NULL;
        if (json_object_get(j, "messages"))
            ok = render_chat(j, &p, NULL);
        else if (json_is_string(json_object_get(j, "prompt")))
            qe_buf_puts(&p, json_string_value(json_object_get(j, "prompt")));
        else
            ok = false;
    }
    if (!ok) {
        rq->status = 400;
        r = error_resp(s, 400, "BadRequestError", "tokenize: need messages or prompt");
    } else {
        rq->prompt = strdup(qe_buf_str(&p));
        qe_buf b = QE_BUF_INIT;
        qe_buf_printf(&b, "{\"count\":%zu,", p.len);
        if (s->max_model_len > 0)
            qe_buf_printf(&b, "\"max_model_len\":%ld,", s->max_model_len);
        qe_buf_puts(&b, "\"tokens\":[");
        for (size_t i = 0; i < p.len; i++)
            qe_buf_printf(&b, i ? ",%u" : "%u", (unsigned char)p.data[i]);
        qe_buf_puts(&b, "],\"token_strs\":null}");
        rq->status = 200;
        r = resp_buf(&b, "application/json");
    }
    json_decref(j);
    qe_buf_free(&p);
    return r;
}

static struct MHD_Response *handle_detokenize(struct server *s, struct req *rq)
{
    json_error_t jerr;
    json_t *j = json_loadb(rq->body.data ? rq->body.data : "", rq->body.len, 0, &jerr);
    json_t *toks = json_object_get(j, "tokens");
    qe_buf p = QE_BUF_INIT;
    bool ok = json_is_array(toks);
    size_t i;
    json_t *t;
    if (ok) {
        json_array_foreach(toks, i, t) {
            if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > 255) {
                ok = false;
                break;
            }
            qe_buf_putc(&p, (char)json_integer_value(t));
        }
    }
    struct MHD_Response *r;
    if (!ok) {
        rq->status = 400;
        r = error_resp(s, 400, "BadRequestError", "detokenize: tokens must be ints in 0..255");
    } else {
        qe_buf b = QE_BUF_INIT;
        qe_buf_puts(&b, "{\"prompt\":");
        json_str(&b, p.data ? p.data : "", p.len);
        qe_buf_puts(&b, "}");
        rq->status = 200;
        r = resp_buf(&b, "application/json");
    }
    json_decref(j);
    qe_buf_free(&p);
    return r;
}

static struct MHD_Response *handle_models(struct server *s)
{
    qe_buf b = QE_BUF_INIT;
    qe_buf_puts(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
    json_str(&b, s->model, strlen(s->model));
    qe_buf_printf(&b, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"vllm\",\"root\":",
                  (long)time(NULL));
    json_str(&b, s->model, strlen(s->model));
    qe_buf_puts(&b, ",\"parent\":null");
    if (s->max_model_len > 0)
        qe_buf_printf(&b, ",\"max_model_len\":%ld", s->max_model_len);
    qe_buf_puts(&b, "}]}");
    return resp_buf(&b, "application/json");
}

/* ---------- MHD glue ---------- */

static void log_request(struct server *s, struct req *rq, bool answered)
{
    if (!s->log)
        return;
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer(rq->seq));
    json_object_set_new(o, "path", json_string(rq->path ? rq->path : ""));
    json_object_set_new(o, "model", rq->log_model ? json_string(rq->log_model) : json_null());
    if (rq->prompt) {
        char h[65];
        sha256_hex(rq->prompt, strlen(rq->prompt), h);
        json_object_set_new(o, "prompt_sha256", json_string(h));
        json_object_set_new(o, "prompt", json_string(rq->prompt));
    }
    json_object_set_new(o, "status", json_integer(rq->status));
    json_object_set_new(o, "answered", json_boolean(answered));
    json_object_set_new(o, "fault", rq->fault ? json_string(rq->fault) : json_null());
    json_object_set_new(o, "client_port", json_integer(rq->client_port));
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!line)
        return;
    pthread_mutex_lock(&s->log_mu);
    fprintf(s->log, "%s\n", line);
    fflush(s->log);
    pthread_mutex_unlock(&s->log_mu);
    free(line);
}

/* Logs the request once its answer is decided (before any latency), so the
 * log holds every request received even if the server is killed right
 * after; "answered" = a complete response was queued. */
static void log_decided(struct server *s, struct req *rq)
{
    if (rq->logged || (rq->path && !strcmp(rq->path, "/health")))
        return;
    rq->logged = true;
    bool broken = rq->fault && (!strcmp(rq->fault, "reset") || !strcmp(rq->fault, "close"));
    log_request(s, rq, rq->resp != NULL && !broken);
}

static enum MHD_Result queue(struct server *s, struct MHD_Connection *c, struct req *rq)
{
    log_decided(s, rq);
    struct MHD_Response *r = rq->resp;
    rq->resp = NULL;
    if (!r)
        return MHD_NO; /* "close" fault: drop the connection, no reply */
    enum MHD_Result ret = MHD_queue_response(c, rq->status ? rq->status : 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    struct server *s = cls;
    struct req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        rq->path = strdup(url);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
            rq->client_port = ntohs(((const struct sockaddr_in *)ci->client_addr)->sin_port);
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        if (rq->body.len + *upload_size > MAX_BODY)
            rq->too_big = true;
        else
            qe_buf_append(&rq->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->resp || rq->status) /* resumed after artificial latency */
        return queue(s, c, rq);

    long delay = 0;
    bool post = !strcmp(method, "POST");
    if (s->api_key && strcmp(url, "/health") != 0) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (!auth || strncmp(auth, "Bearer ", 7) != 0 || strcmp(auth + 7, s->api_key) != 0) {
            /* vLLM answers 401 {"error": "Unauthorized"}; we echo the key
             * given, so tests can prove the client scrubs it */
            qe_buf b = QE_BUF_INIT;
            qe_buf_puts(&b, "{\"error\":");
            char msg[300];
            snprintf(msg, sizeof msg, "Unauthorized: bad key '%.200s'", auth ? auth : "(none)");
            json_str(&b, msg, strlen(msg));
            qe_buf_puts(&b, "}");
            rq->status = 401;
            rq->resp = resp_buf(&b, "application/json");
            return queue(s, c, rq);
        }
    }
    bool get = !strcmp(method, "GET");
    if (rq->too_big) {
        rq->status = 413;
        rq->resp = error_resp(s, 413, "BadRequestError", "request body too large");
    } else if (get && !strcmp(url, "/health")) {
        rq->status = 200;
        rq->resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    } else if (get && (!strcmp(url, "/v1/models") || !strcmp(url, "/models"))) {
        rq->status = 200;
        rq->resp = handle_models(s);
    } else if (post && !strcmp(url, "/v1/chat/completions")) {
        rq->generation = true;
        rq->seq = atomic_fetch_add(&s->seq, 1) + 1;
        rq->resp = handle_generation(s, rq, true, &delay);
    } else if (post && !strcmp(url, "/v1/completions")) {
        rq->generation = true;
        rq->seq = atomic_fetch_add(&s->seq, 1) + 1;
        rq->resp = handle_generation(s, rq, false, &delay);
    } else if (post && !strcmp(url, "/tokenize")) {
        rq->resp = handle_tokenize(s, rq);
    } else if (post && !strcmp(url, "/detokenize")) {
        rq->resp = handle_detokenize(s, rq);
    } else {
        char msg[300];
        snprintf(msg, sizeof msg, "Not Found: %s %.200s", method, url);
        rq->status = 404;
        rq->resp = error_resp(s, 404, "NotFoundError", msg);
    }
    if (!rq->resp && rq->status == 0) {
        log_decided(s, rq);
        return MHD_NO; /* "close" fault */
    }
    log_decided(s, rq);
    if (delay > 0 && schedule(s, c, delay)) {
        MHD_suspend_connection(c);
        return MHD_YES;
    }
    return queue(s, c, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct server *s = cls;
    struct req *rq = *con_cls;
    if (!rq)
        return;
    bool answered = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    if (rq->generation && answered && rq->status == 200 && s->die_after >= 0) {
        long n = atomic_fetch_add(&s->answered, 1) + 1;
        if (n >= s->die_after) {
            fprintf(stderr, "fake_server: die-after %ld reached, exiting\n", n);
            _exit(3);
        }
    }
    if (rq->resp)
        MHD_destroy_response(rq->resp);
    qe_buf_free(&rq->body);
    free(rq->path);
    free(rq->log_model);
    free(rq->prompt);
    free(rq);
    *con_cls = NULL;
}

/* ---------- main ---------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: fake_server [--port P] [--host ADDR] [--model NAME] [--script FILE.jsonl]\n"
            "       [--request-log FILE] [--default-answer TEXT] [--fault KIND[:ARG]]...\n"
            "       [--api-key KEY] [--latency-ms MS] [--max-model-len N] [--flat-errors] [--threads N]\n"
            "       [--lenient]\n"
            "faults: 500:N 429:N:RETRY_AFTER stall:MS[:N] reset:N close:N garbage:N\n"
            "        truncated:N badutf8:N huge:BYTES[:N] trickle[:MS[:N]] die-after:N\n"
            "env: FAKE_SERVER_SCRIPT, FAKE_SERVER_FAULT (comma-separated),\n"
            "     FAKE_SERVER_REQUEST_LOG, FAKE_SERVER_DEFAULT_ANSWER\n"
            "see docs/fake-server.md\n");
    exit(2);
}

static void add_fault(struct server *s, const char *spec)
{
    if (s->nfaults >= MAX_FAULTS)
        die("too many --fault");
    struct fault *f = &s->faults[s->nfaults];
    if (!parse_fault(spec, f))
        die("bad --fault '%s' (see --help)", spec);
    if (f->kind == F_DIE_AFTER)
        s->die_after = f->n;
    s->nfaults++;
}

static void add_faults_csv(struct server *s, const char *csv)
{
    char *dup = strdup(csv), *save = NULL;
    for (char *t = strtok_r(dup, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
        add_fault(s, t);
    free(dup);
}

static long parse_long(const char *flag, const char *v)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < 0)
        die("%s wants a non-negative integer, got '%s'", flag, v);
    return x;
}

int main(int argc, char **argv)
{
    static struct server srv;
    struct server *s = &srv;
    s->model = "fake-model";
    s->die_after = -1;
    pthread_mutex_init(&s->log_mu, NULL);
    pthread_mutex_init(&s->tmu, NULL);
    pthread_cond_init(&s->tcv, NULL);
    s->pend = calloc(MAX_PENDING, sizeof *s->pend);

    long port = 8000, threads = 4;
    const char *host = "127.0.0.1";
    const char *script = getenv("FAKE_SERVER_SCRIPT");
    const char *logpath = getenv("FAKE_SERVER_REQUEST_LOG");
    const char *envfault = getenv("FAKE_SERVER_FAULT");
    s->default_answer = getenv("FAKE_SERVER_DEFAULT_ANSWER");
    bool lenient = false;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--lenient"))
            lenient = true;
    bool cli_faults = false, model_flag = false;
    const char *positional_model = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) die("%s needs a value", a); i++; } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
        } else if (!strcmp(a, "--lenient")) {
        } else if (!strcmp(a, "--port")) {
            NEEDV(); port = parse_long(a, v);
        } else if (!strcmp(a, "--host")) {
            NEEDV(); host = v;
        } else if (!strcmp(a, "--model") || !strcmp(a, "--served-model-name")) {
            NEEDV(); s->model = v; model_flag = true;
        } else if (!strcmp(a, "--script")) {
            NEEDV(); script = v;
        } else if (!strcmp(a, "--request-log")) {
            NEEDV(); logpath = v;
        } else if (!strcmp(a, "--api-key")) {
            NEEDV(); s->api_key = v;
        } else if (!strcmp(a, "--default-answer")) {
            NEEDV(); s->default_answer = v;
        } else if (!strcmp(a, "--fault")) {
            NEEDV();
            cli_faults = true; /* CLI faults replace the env ones */
            add_fault(s, v);
        } else if (!strcmp(a, "--latency-ms")) {
            NEEDV(); s->latency_ms = parse_long(a, v);
        } else if (!strcmp(a, "--max-model-len")) {
            NEEDV(); s->max_model_len = parse_long(a, v);
        } else if (!strcmp(a, "--threads")) {
            NEEDV(); threads = parse_long(a, v);
            if (threads < 1 || threads > 256)
                die("--threads must be 1..256");
        } else if (!strcmp(a, "--flat-errors")) {
            s->flat_errors = true;
        } else if (lenient) {
            /* unknown flag from a launcher: skip it and its value. A
             * positional (vllm serve MODEL) names the model, as in vLLM,
             * unless --model/--served-model-name says otherwise. */
            if (!strncmp(a, "--", 2)) {
                if (!strchr(a, '=') && v && strncmp(v, "--", 2) != 0)
                    i++;
            } else if (strcmp(a, "serve") != 0 && !positional_model) {
                positional_model = a;
            }
        } else {
            fprintf(stderr, "fake_server: unknown argument '%s'\n", a);
            usage();
        }
#undef NEEDV
    }
    if (!model_flag && positional_model)
        s->model = positional_model;
    if (!strcmp(host, "localhost"))
        host = "127.0.0.1";
    if (!cli_faults && envfault && *envfault)
        add_faults_csv(s, envfault);
    if (script)
        load_script(s, script);
    if (logpath) {
        s->log = fopen(logpath, "a");
        if (!s->log)
            die("cannot open request log %s: %s", logpath, strerror(errno));
    }
    signal(SIGPIPE, SIG_IGN);
    /* block before any thread starts, so sigwait below receives them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    pthread_t timer;
    if (pthread_create(&timer, NULL, timer_main, s) != 0)
        die("cannot start timer thread");
    pthread_detach(timer);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("--host must be an IPv4 address, got '%s'", host);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600,
        MHD_OPTION_END);
    if (!d)
        die("cannot listen on %s:%ld", host, port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("PORT %u\n", info ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    /* Suspended connections make MHD_stop_daemon abort; a test tool can just go. */
    if (s->log)
        fflush(s->log);
    _exit(0);
}
