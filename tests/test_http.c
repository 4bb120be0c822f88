/* Tests for src/http.c (the HTTP/1.1 response parser and request
 * formatter) and for the native transport of src/client.c over real
 * sockets against a raw scripted server (forked from this test), for the
 * framing fake_server cannot produce: chunked replies, Connection: close,
 * close-delimited bodies, replies split into tiny writes, a server that
 * closes kept-alive connections, replies cut mid-body, oversized headers,
 * refused and never-accepted connections, IPv6 loopback, and which
 * transport a client picks.
 *
 * Golden parser cases: tests/cases/http_responses.jsonl (one response per
 * line as latin-1 strings in pieces, with the expected outcome); each is
 * also fed in every two-way split and one byte at a time, and must give the
 * same outcome. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "jsonl_cases.h"

#include "client.h"
#include "err.h"
#include "http.h"

/* ---------- golden parser cases ---------- */

/* A JSON string of code points < 256 as bytes (latin-1). */
static char *latin1(json_t *s, size_t *n)
{
    const unsigned char *u = (const unsigned char *)json_string_value(s);
    size_t len = json_string_length(s);
    char *out = malloc(len + 1);
    assert_non_null(out);
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        if (u[i] < 0x80) {
            out[k++] = (char)u[i++];
        } else {
            assert_true((u[i] & 0xE0) == 0xC0); /* U+0080..U+00FF only */
            out[k++] = (char)(((u[i] & 0x1F) << 6) | (u[i + 1] & 0x3F));
            i += 2;
        }
    }
    out[k] = 0;
    *n = k;
    return out;
}

struct outcome {
    int rc;          /* 1 done, 0 incomplete, < 0 error */
    long status;
    bool keep_alive, over_cap;
    long retry_after;
    size_t extra;    /* bytes not consumed */
    qe_buf body;
    char err[256];
};

/* Feeds the pieces (cuts[] split the whole input) and EOF if asked. */
static void run_parser(const char *all, size_t n, const size_t *cuts, size_t ncuts, size_t cap,
                       bool eof, struct outcome *o)
{
    qe_http_parser p;
    qe_http_parser_init(&p, cap);
    memset(o, 0, sizeof *o);
    size_t from = 0;
    int rc = 0;
    for (size_t k = 0; k <= ncuts && rc == 0; k++) {
        size_t to = k < ncuts ? cuts[k] : n;
        size_t used = 0;
        rc = qe_http_feed(&p, all + from, to - from, &used, &o->body);
        assert_true(used <= to - from);
        if (rc != 0)
            o->extra = (n - from) - used;
        else
            assert_int_equal(used, to - from); /* "need more" consumed everything */
        from = to;
    }
    if (rc == 0 && eof)
        rc = qe_http_finish(&p, &o->body);
    o->rc = rc;
    o->status = p.status;
    o->keep_alive = p.keep_alive;
    o->over_cap = p.body_over_cap;
    o->retry_after = p.retry_after_s;
    snprintf(o->err, sizeof o->err, "%s", p.err);
    if (rc < 0) {
        assert_true(p.err[0] != 0);
        /* sticky: feeding more changes nothing */
        size_t used = 99;
        assert_int_equal(qe_http_feed(&p, "x", 1, &used, &o->body), rc);
        assert_int_equal(used, 0);
    }
    qe_http_parser_free(&p);
}

static int code_of(const char *name)
{
    if (!strcmp(name, "QE_ELIMIT"))
        return QE_ELIMIT;
    if (!strcmp(name, "QE_ESERVER"))
        return QE_ESERVER;
    fail_msg("unknown code %s", name);
    return 0;
}

static void check_outcome(json_t *c, const struct outcome *o, const char *how)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *err = json_object_get(c, "error");
    if (json_is_true(json_object_get(c, "incomplete"))) {
        if (o->rc != 0)
            fail_msg("%s (%s): expected incomplete, got rc %d (%s)", name, how, o->rc, o->err);
        return;
    }
    if (err) {
        int want = code_of(json_string_value(json_object_get(c, "code")));
        if (o->rc != want || !strstr(o->err, json_string_value(err)))
            fail_msg("%s (%s): expected error %d '%s', got rc %d '%s'", name, how, want,
                     json_string_value(err), o->rc, o->err);
        if (json_is_true(json_object_get(c, "over_cap")) != o->over_cap)
            fail_msg("%s (%s): over_cap %d", name, how, o->over_cap);
        return;
    }
    if (o->rc != 1)
        fail_msg("%s (%s): expected a complete reply, got rc %d (%s)", name, how, o->rc, o->err);
    size_t blen;
    char *body = latin1(json_object_get(c, "body"), &blen);
    if (o->status != json_integer_value(json_object_get(c, "status")) ||
        o->keep_alive != json_is_true(json_object_get(c, "keep_alive")) ||
        o->body.len != blen || (blen && memcmp(o->body.data, body, blen) != 0))
        fail_msg("%s (%s): got status %ld keep_alive %d body(%zu) '%s'", name, how, o->status,
                 o->keep_alive, o->body.len, qe_buf_str(&o->body));
    json_t *ra = json_object_get(c, "retry_after");
    if (ra && o->retry_after != json_integer_value(ra))
        fail_msg("%s (%s): retry_after %ld", name, how, o->retry_after);
    json_t *ex = json_object_get(c, "extra");
    if ((size_t)json_integer_value(ex) != o->extra)
        fail_msg("%s (%s): %zu bytes left unconsumed, expected %lld", name, how, o->extra,
                 (long long)json_integer_value(ex));
    free(body);
}

/* One case of http_responses.jsonl: the bytes as given, in one piece, in
 * every two-way split and byte by byte all parse to its outcome. */
static void golden_response_case(json_t *c, int line, void *arg)
{
    (void)line;
    (void)arg;
    json_t *pieces = json_object_get(c, "pieces");
    size_t cap = json_object_get(c, "cap") ? (size_t)json_integer_value(json_object_get(c, "cap"))
                                           : (size_t)1 << 20;
    bool eof = json_is_true(json_object_get(c, "eof"));
    qe_buf all = QE_BUF_INIT;
    size_t cuts[4096], ncuts = 0;
    for (size_t i = 0; i < json_array_size(pieces); i++) {
        size_t n;
        char *b = latin1(json_array_get(pieces, i), &n);
        assert_int_equal(qe_buf_append(&all, b, n), 0);
        free(b);
        if (i + 1 < json_array_size(pieces) && ncuts < 4096)
            cuts[ncuts++] = all.len;
    }
    struct outcome o;
    run_parser(qe_buf_str(&all), all.len, cuts, ncuts, cap, eof, &o);
    check_outcome(c, &o, "as given");
    qe_buf_free(&o.body);
    /* the same bytes in one piece, in every two-way split, byte by byte */
    run_parser(qe_buf_str(&all), all.len, NULL, 0, cap, eof, &o);
    check_outcome(c, &o, "one piece");
    qe_buf_free(&o.body);
    if (all.len < 3000) {
        for (size_t at = 1; at < all.len; at++) {
            size_t cut = at;
            run_parser(qe_buf_str(&all), all.len, &cut, 1, cap, eof, &o);
            check_outcome(c, &o, "two pieces");
            qe_buf_free(&o.body);
        }
        size_t *every = malloc((all.len + 1) * sizeof *every);
        for (size_t i = 1; i < all.len; i++)
            every[i - 1] = i;
        run_parser(qe_buf_str(&all), all.len, every, all.len ? all.len - 1 : 0, cap, eof, &o);
        check_outcome(c, &o, "byte by byte");
        qe_buf_free(&o.body);
        free(every);
    }
    qe_buf_free(&all);
}

static void test_golden_responses(void **state)
{
    (void)state;
    assert_true(each_case_arg("tests/cases/http_responses.jsonl", JSON_ALLOW_NUL,
                              golden_response_case, NULL) >= 50);
}

/* The parser is reusable for the next response on the same connection. */
static void test_parser_reset_reuse(void **state)
{
    (void)state;
    const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 500 X\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n";
    qe_http_parser p;
    qe_http_parser_init(&p, 100);
    qe_buf b = QE_BUF_INIT;
    size_t used;
    assert_int_equal(qe_http_feed(&p, two, strlen(two), &used, &b), 1);
    assert_int_equal(p.status, 200);
    assert_string_equal(qe_buf_str(&b), "a");
    assert_false(qe_http_parser_untouched(&p));
    qe_http_parser_reset(&p, 100);
    assert_true(qe_http_parser_untouched(&p));
    qe_buf_reset(&b);
    size_t used2;
    assert_int_equal(qe_http_feed(&p, two + used, strlen(two) - used, &used2, &b), 1);
    assert_int_equal(used + used2, strlen(two));
    assert_int_equal(p.status, 500);
    assert_true(p.chunked);
    assert_string_equal(qe_buf_str(&b), "b");
    qe_buf_free(&b);
    qe_http_parser_free(&p);
}

static void test_retry_after_values(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        long want;
    } cases[] = {
        {"0", 0}, {"7", 7}, {"  12  ", 12}, {"3\r\n", 3}, {"\t5", 5}, {"", -1}, {"  ", -1},
        {"-1", -1}, {"+3", -1}, {"1.5", -1}, {"3 s", -1}, {"Wed, 21 Oct 2015 07:28:00 GMT", -1},
        {"999999999999", 999999999999L}, {"9999999999999", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        long got = qe_http_retry_after(cases[i].v, strlen(cases[i].v));
        if (got != cases[i].want)
            fail_msg("Retry-After '%s': got %ld, want %ld", cases[i].v, got, cases[i].want);
    }
}

static void test_format_post(void **state)
{
    (void)state;
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_http_format_post(&b, "127.0.0.1:8000", "/v1/chat/completions", "sk-1",
                                         "{\"a\":1}", 7), 0);
    assert_string_equal(qe_buf_str(&b), "POST /v1/chat/completions HTTP/1.1\r\n"
                                        "Host: 127.0.0.1:8000\r\n"
                                        "Content-Type: application/json\r\n"
                                        "Authorization: Bearer sk-1\r\n"
                                        "Content-Length: 7\r\n"
                                        "\r\n"
                                        "{\"a\":1}");
    qe_buf_reset(&b);
    assert_int_equal(qe_http_format_post(&b, "[::1]", "/x", "", "", 0), 0);
    assert_string_equal(qe_buf_str(&b), "POST /x HTTP/1.1\r\nHost: [::1]\r\n"
                                        "Content-Type: application/json\r\n"
                                        "Content-Length: 0\r\n\r\n");
    qe_buf_reset(&b);
    char big[12346];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(qe_http_format_post(&b, "h", "/p", NULL, big, 12345), 0);
    assert_non_null(strstr(qe_buf_str(&b), "\r\nContent-Length: 12345\r\n\r\nzzz"));
    assert_int_equal(b.len, strlen(strstr(b.data, "\r\n\r\n")) - 4 + (size_t)(strstr(b.data, "\r\n\r\n") - b.data) + 4);
    qe_buf_free(&b);
}

/* ---------- a raw scripted server ---------- */

#define CHAT "{\"choices\":[{\"message\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}],\"model\":\"m\"}"
#define OK_REPLY "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 77\r\n\r\n" CHAT

enum mode {
    M_KEEP,      /* reply, keep reading requests on this connection */
    M_CLOSE,     /* reply, then close the connection */
    M_TRICKLE,   /* reply one byte per write with 1 ms pauses, keep */
    M_NEVER,     /* read the request, never answer, keep it open */
};

struct act {
    const char *reply; /* NULL: none (with M_CLOSE: hang up without a reply) */
    enum mode mode;
};

struct shared {        /* in shared memory: what the server saw */
    int connections;
    int requests;
    char last_request[2048];
};

struct rawsrv {
    pid_t pid;
    int port;
    struct shared *sh;
    char url[96];
};

/* Reads one request (headers + Content-Length body). 1, or 0 on EOF/error. */
static int read_request(int fd, struct shared *sh)
{
    char buf[65536];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            return 0;
        n += (size_t)r;
        buf[n] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        size_t hl = (size_t)(end - buf) + 4;
        char *cl = strcasestr(buf, "\r\nContent-Length:");
        size_t want = cl ? (size_t)atol(cl + 17) : 0;
        if (n >= hl + want) {
            size_t k = n < sizeof sh->last_request - 1 ? n : sizeof sh->last_request - 1;
            memcpy(sh->last_request, buf, k);
            sh->last_request[k] = 0;
            return 1;
        }
    }
}

static void serve(int lfd, const struct act *acts, int nacts, struct shared *sh)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        sh->connections++;
        while (read_request(fd, sh)) {
            const struct act *a = &acts[sh->requests < nacts ? sh->requests : nacts - 1];
            sh->requests++;
            if (a->mode == M_NEVER) {
                pause();
                continue;
            }
            if (a->reply && a->mode == M_TRICKLE) {
                for (const char *p = a->reply; *p; p++) {
                    (void)!write(fd, p, 1);
                    usleep(1000);
                }
            } else if (a->reply) {
                (void)!write(fd, a->reply, strlen(a->reply));
            }
            if (a->mode == M_CLOSE)
                break;
        }
        close(fd);
    }
}

/* Starts the server on 127.0.0.1 (or ::1 with v6); false if that family
 * is unavailable (v6 only). */
static bool raw_start(struct rawsrv *s, const struct act *acts, int nacts, bool v6)
{
    memset(s, 0, sizeof *s);
    s->sh = mmap(NULL, sizeof *s->sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(s->sh != MAP_FAILED);
    memset(s->sh, 0, sizeof *s->sh);
    int lfd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 && v6)
        return false;
    assert_true(lfd >= 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof *a;
    }
    if (bind(lfd, (struct sockaddr *)&ss, sl) != 0) {
        close(lfd);
        if (v6)
            return false;
        fail_msg("bind: %s", strerror(errno));
    }
    assert_int_equal(listen(lfd, 64), 0);
    sl = sizeof ss;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &sl), 0);
    s->port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    snprintf(s->url, sizeof s->url, v6 ? "http://[::1]:%d/v1" : "http://127.0.0.1:%d/v1", s->port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGPIPE, SIG_IGN);
        serve(lfd, acts, nacts, s->sh);
        _exit(0);
    }
    close(lfd);
    s->pid = pid;
    return true;
}

static void raw_stop(struct rawsrv *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    munmap(s->sh, sizeof *s->sh);
}

struct res {
    int n;
    bool ok[16];
    int status[16];
    long http[16];
    int attempts[16];
    char content[16][64];
    char error[16][1024];
};

static int collect(void *ud, const qe_result *r)
{
    struct res *x = ud;
    assert_true(x->n < 16);
    int i = x->n++;
    x->ok[i] = r->ok;
    x->status[i] = r->status;
    x->http[i] = r->http_status;
    x->attempts[i] = r->attempts;
    snprintf(x->content[i], sizeof x->content[i], "%s", r->ok ? r->reply.content : "");
    snprintf(x->error[i], sizeof x->error[i], "%s", r->error);
    return 0;
}

static void opts_for(qe_client_opts *o, const char *url)
{
    qe_client_opts_default(o);
    o->base_url = url;
    o->backoff_base_ms = 5;
    o->backoff_cap_ms = 20;
    o->timeout_ms = 3000;
    o->connect_timeout_ms = 1000;
}

/* n sequential requests (one in flight) against the server. */
static void run_n(const qe_client_opts *o, int n, struct res *x)
{
    qe_client *c;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(o, &c, &e), 0);
    assert_string_equal(qe_client_transport(c), "native");
    for (int i = 0; i < n; i++)
        assert_int_equal(qe_client_add(c, (uint64_t)i, "/chat/completions", "{\"q\":1}", &e), 0);
    memset(x, 0, sizeof *x);
    assert_int_equal(qe_client_run(c, collect, x, NULL, &e), 0);
    qe_client_free(c);
    assert_int_equal(x->n, n);
}

static void test_native_keepalive_and_request_bytes(void **state)
{
    (void)state;
    static const struct act acts[] = {{OK_REPLY, M_KEEP}};
    struct rawsrv s;
    raw_start(&s, acts, 1, false);
    qe_client_opts o;
    opts_for(&o, s.url);
    o.api_key = "sk-native";
    struct res x;
    run_n(&o, 5, &x);
    for (int i = 0; i < 5; i++) {
        assert_true(x.ok[i]);
        assert_int_equal(x.attempts[i], 1);
        assert_string_equal(x.content[i], "hi");
    }
    assert_int_equal(s.sh->requests, 5);
    assert_int_equal(s.sh->connections, 1); /* one kept-alive connection */
    char want[256];
    snprintf(want, sizeof want,
             "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Type: application/json\r\nAuthorization: Bearer sk-native\r\n"
             "Content-Length: 7\r\n\r\n{\"q\":1}",
             s.port);
    assert_string_equal(s.sh->last_request, want);
    raw_stop(&s);
}

static void test_native_chunked_and_close_delimited(void **state)
{
    (void)state;
    static const struct act acts[] = {
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "10;ext=1\r\n{\"choices\":[{\"me\r\n"
         "3d\r\nssage\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}],\"model\":\"m\"}\r\n"
         "0\r\nX-T: 1\r\n\r\n",
         M_KEEP},
        {"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" CHAT, M_CLOSE},
        {OK_REPLY, M_KEEP},
    };
    struct rawsrv s;
    raw_start(&s, acts, 3, false);
    qe_client_opts o;
    opts_for(&o, s.url);
    o.max_attempts = 1;
    struct res x;
    run_n(&o, 3, &x);
    for (int i = 0; i < 3; i++) {
        if (!x.ok[i])
            fail_msg("request %d: %s", i, x.error[i]);
        assert_string_equal(x.content[i], "hi");
    }
    /* chunked kept the connection; the close-delimited body ended it */
    assert_int_equal(s.sh->connections, 2);
    raw_stop(&s);
}

static void test_native_connection_close_not_reused(void **state)
{
    (void)state;
    static const struct act acts[] = {
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 77\r\n\r\n" CHAT, M_KEEP}};
    struct rawsrv s;
    raw_start(&s, acts, 1, false);
    qe_client_opts o;
    opts_for(&o, s.url);
    o.max_attempts = 1;
    struct res x;
    run_n(&o, 3, &x);
    for (int i = 0; i < 3; i++)
        assert_true(x.ok[i]);
    /* the server left each connection open, but the client obeyed the header */
    assert_int_equal(s.sh->connections, 3);
    raw_stop(&s);
}

static void test_native_split_writes(void **state)
{
    (void)state;
    static const struct act acts[] = {{OK_REPLY, M_TRICKLE}};
    struct rawsrv s;
    raw_start(&s, acts, 1, false);
    qe_client_opts o;
    opts_for(&o, s.url);
    o.max_attempts = 1;
    struct res x;
    run_n(&o, 2, &x);
    assert_true(x.ok[0] && x.ok[1]);
    assert_string_equal(x.content[1], "hi");
    assert_int_equal(s.sh->connections, 1);
    raw_stop(&s);
}

/* The server closes every connection right after its reply, without
 * saying so: each next request finds its kept-alive connection dead and
 * goes again on a fresh one, without counting an attempt (max_attempts 1
 * would otherwise fail it). */
static void test_native_server_closes_idle_connections(void **state)
{
    (void)state;
    static const struct act acts[] = {{OK_REPLY, M_CLOSE}};
    struct rawsrv s;
    raw_start(&s, acts, 1, false);
    qe_client_opts o;
    opts_for(&o, s.url);
    o.max_attempts = 1;
    struct res x;
    run_n(&o, 6, &x);
    for (int i = 0; i < 6; i++) {
        if (!x.ok[i])
            fail_msg("request %d: %s", i, x.error[i]);
        assert_int_equal(x.attempts[i], 1);
    }
    assert_int_equal(s.sh->requests, 6);
    assert_int_equal(s.sh->connections, 6);
    raw_stop(&s);
}

static void test_native_cut_mid_body(void **state)
{
    (void)state;
    static const struct act acts[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 77\r\n\r\n{\"choices\":[", M_CLOSE},
        {OK_REPLY, M_KEEP},
    };
    struct rawsrv s;
    raw_start(&s, acts, 2, false);
    qe_client_opts o;
    opts_for(&o, s.url);
    struct res x;
    run_n(&o, 1, &x); /* retried, then fine */
    assert_true(x.ok[0]);
    assert_int_equal(x.attempts[0], 2);
    raw_stop(&s);

    raw_start(&s, acts, 1, false);
    opts_for(&o, s.url);
    o.max_attempts = 2;
    run_n(&o, 1, &x); /* always cut: a clear error */
    assert_false(x.ok[0]);
    assert_int_equal(x.status[0], QE_ENET);
    assert_int_equal(x.attempts[0], 2);
    assert_int_equal(x.http[0], 200);
    assert_non_null(strstr(x.error[0], "gave up after 2 attempts"));
    assert_non_null(strstr(x.error[0], "after 12 of 77 body bytes"));
    assert_non_null(strstr(x.error[0], "/v1/chat/completions"));
    raw_stop(&s);
}

static void test_native_hangup_and_bad_http(void **state)
{
    (void)state;
    static const struct act hang[] = {{NULL, M_CLOSE}};
    struct rawsrv s;
    raw_start(&s, hang, 1, false);
    qe_client_opts o;
    opts_for(&o, s.url);
    o.max_attempts = 3;
    struct res x;
    run_n(&o, 1, &x);
    assert_false(x.ok[0]);
    assert_int_equal(x.attempts[0], 3); /* fresh connections: every one counts */
    assert_non_null(strstr(x.error[0], "empty reply"));
    raw_stop(&s);

    static const struct act junk[] = {{"SSH-2.0-OpenSSH\r\n", M_CLOSE}};
    raw_start(&s, junk, 1, false);
    opts_for(&o, s.url);
    o.max_attempts = 2;
    run_n(&o, 1, &x);
    assert_false(x.ok[0]);
    assert_int_equal(x.status[0], QE_ENET);
    assert_int_equal(x.attempts[0], 2);
    assert_non_null(strstr(x.error[0], "malformed HTTP status line: SSH-2.0"));
    raw_stop(&s);
}

static void test_native_oversized_headers(void **state)
{
    (void)state;
    static char big[80000];
    if (!big[0]) {
        qe_buf b = QE_BUF_INIT;
        qe_buf_puts(&b, "HTTP/1.1 200 OK\r\n");
        for (int i = 0; i < 100; i++)
            qe_buf_printf(&b, "X-Pad-%d: %0700d\r\n", i, 0);
        qe_buf_puts(&b, "Content-Length: 2\r\n\r\n{}");
        assert_true(b.len < sizeof big);
        memcpy(big, b.data, b.len + 1);
        qe_buf_free(&b);
    }
    struct act acts[] = {{big, M_KEEP}};
    struct rawsrv s;
    raw_start(&s, acts, 1, false);
    qe_client_opts o;
    opts_for(&o, s.url);
    struct res x;
    run_n(&o, 1, &x);
    assert_false(x.ok[0]);
    assert_int_equal(x.status[0], QE_ELIMIT);
    assert_int_equal(x.attempts[0], 1); /* a retry would get the same */
    assert_non_null(strstr(x.error[0], "headers exceed 65536 bytes"));
    raw_stop(&s);
}

static void test_native_attempt_timeout(void **state)
{
    (void)state;
    static const struct act acts[] = {{NULL, M_NEVER}};
    struct rawsrv s;
    raw_start(&s, acts, 1, false);
    qe_client_opts o;
    opts_for(&o, s.url);
    o.timeout_ms = 200;
    o.max_attempts = 2;
    struct res x;
    run_n(&o, 1, &x);
    assert_false(x.ok[0]);
    assert_int_equal(x.status[0], QE_ENET);
    assert_int_equal(x.attempts[0], 2);
    assert_non_null(strstr(x.error[0], "timed out after"));
    raw_stop(&s);
}

static void test_native_connection_refused(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t sl = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
    close(fd); /* nobody listens there now */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    qe_client_opts o;
    opts_for(&o, url);
    o.max_attempts = 2;
    struct res x;
    run_n(&o, 1, &x);
    assert_false(x.ok[0]);
    assert_int_equal(x.status[0], QE_ENET);
    assert_int_equal(x.http[0], 0);
    assert_int_equal(x.attempts[0], 2);
    assert_non_null(strstr(x.error[0], "could not connect to 127.0.0.1 port"));
    assert_non_null(strstr(x.error[0], "refused"));
}

/* A listening socket whose accept queue is full and that never accepts:
 * the kernel drops further SYNs, so connect() hangs until the connect
 * timeout. */
static void test_native_connect_timeout(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 0), 0);
    socklen_t sl = sizeof a;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &sl), 0);
    int fill[4];
    for (int i = 0; i < 4; i++) { /* fill the accept queue (and then some) */
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(50000);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    qe_client_opts o;
    opts_for(&o, url);
    o.connect_timeout_ms = 300;
    o.max_attempts = 1;
    struct res x;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_n(&o, 1, &x);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_false(x.ok[0]);
    assert_int_equal(x.status[0], QE_ENET);
    assert_non_null(strstr(x.error[0], "connection timed out after"));
    assert_true(ms >= 290 && ms < 2500);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(lfd);
}

static void test_native_ipv6_loopback(void **state)
{
    (void)state;
    static const struct act acts[] = {{OK_REPLY, M_KEEP}};
    struct rawsrv s;
    if (!raw_start(&s, acts, 1, true)) {
        munmap(s.sh, sizeof *s.sh);
        skip(); /* no IPv6 here */
    }
    qe_client_opts o;
    opts_for(&o, s.url);
    struct res x;
    run_n(&o, 2, &x);
    assert_true(x.ok[0] && x.ok[1]);
    assert_string_equal(x.content[0], "hi");
    char want[64];
    snprintf(want, sizeof want, "Host: [::1]:%d\r\n", s.port);
    assert_non_null(strstr(s.sh->last_request, want));
    raw_stop(&s);
}

/* Which transport a client picks. */
static void test_transport_choice(void **state)
{
    (void)state;
    static const char *const proxies[] = {"http_proxy", "HTTPS_PROXY", "https_proxy",
                                          "ALL_PROXY", "all_proxy"};
    char *saved[5];
    for (int i = 0; i < 5; i++) {
        const char *v = getenv(proxies[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(proxies[i]);
    }
    static const struct {
        const char *url;
        const char *want;
    } cases[] = {
        {"http://127.0.0.1:8000/v1", "native"},
        {"http://localhost:8000", "native"},
        {"http://[::1]:8000/", "native"},
        {"http://example.com/prefix/v1", "native"},
        {"http://example.com", "native"},
        {"https://127.0.0.1:8000/v1", "curl"},
        {"http://user:pw@127.0.0.1:8000/v1", "curl"},
        {"http://127.0.0.1:8000/v1?x=1", "curl"},
        {"http://127.0.0.1:99999", "curl"},
        {"http://127.0.0.1:/v1", "curl"},
    };
    qe_client_opts o;
    qe_client *c;
    qe_err e = {0, ""};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        opts_for(&o, cases[i].url);
        assert_int_equal(qe_client_new(&o, &c, &e), 0);
        if (strcmp(qe_client_transport(c), cases[i].want))
            fail_msg("%s: got %s, want %s", cases[i].url, qe_client_transport(c), cases[i].want);
        qe_client_free(c);
    }
    opts_for(&o, "http://127.0.0.1:8000");
    o.force_curl = true;
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    assert_string_equal(qe_client_transport(c), "curl");
    qe_client_free(c);
    o.force_curl = false;
    for (int i = 0; i < 5; i++) {
        setenv(proxies[i], "http://proxy:3128", 1);
        assert_int_equal(qe_client_new(&o, &c, &e), 0);
        assert_string_equal(qe_client_transport(c), "curl");
        qe_client_free(c);
        setenv(proxies[i], "", 1); /* empty = not set */
        assert_int_equal(qe_client_new(&o, &c, &e), 0);
        assert_string_equal(qe_client_transport(c), "native");
        qe_client_free(c);
        unsetenv(proxies[i]);
    }
    for (int i = 0; i < 5; i++) {
        if (saved[i])
            setenv(proxies[i], saved[i], 1);
        free(saved[i]);
    }
    /* a path that would break the request line is refused at add */
    opts_for(&o, "http://127.0.0.1:8000");
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    assert_int_equal(qe_client_add(c, 1, "/chat completions", "{}", &e), QE_EINVAL);
    assert_int_equal(qe_client_add(c, 1, "/x\r\nEvil: 1", "{}", &e), QE_EINVAL);
    assert_int_equal(qe_client_pending(c), 0);
    qe_client_free(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_responses),
        cmocka_unit_test(test_parser_reset_reuse),
        cmocka_unit_test(test_retry_after_values),
        cmocka_unit_test(test_format_post),
        cmocka_unit_test(test_transport_choice),
        cmocka_unit_test(test_native_keepalive_and_request_bytes),
        cmocka_unit_test(test_native_chunked_and_close_delimited),
        cmocka_unit_test(test_native_connection_close_not_reused),
        cmocka_unit_test(test_native_split_writes),
        cmocka_unit_test(test_native_server_closes_idle_connections),
        cmocka_unit_test(test_native_cut_mid_body),
        cmocka_unit_test(test_native_hangup_and_bad_http),
        cmocka_unit_test(test_native_oversized_headers),
        cmocka_unit_test(test_native_attempt_timeout),
        cmocka_unit_test(test_native_connection_refused),
        cmocka_unit_test(test_native_connect_timeout),
        cmocka_unit_test(test_native_ipv6_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
