/* Tests for src/client.c against tests/fake_server: concurrency, every
 * fault the server can inject, error bodies, reply parsing, key hygiene and
 * the synchronous helpers. Each test starts its own server and stops it.
 * Every test of the async loop runs twice, once per transport (the native
 * HTTP/1.1 engine, then libcurl forced with opts.force_curl): both must
 * behave identically. Native-only cases (raw HTTP framing) are in
 * test_http.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "client.h"
#include "fake_server_util.h"

#define SCRIPT "tests/cases/fake_server_client.jsonl"

/* The transport under test, set by the group setup (main). */
static bool g_force_curl;
#define KEY "sk-test-SECRET-4242"

struct got {
    uint64_t id;
    bool ok;
    int status;
    long http;
    int attempts;
    double latency_ms, total_ms;
    char *content;
    size_t content_len;
    bool was_null, repaired;
    char reasoning[256], finish[32], model[64];
    long pt, ct;
    char error[1024];
};

struct capture {
    int n;
    struct got g[300];
};

static int on_done(void *ud, const qe_result *r)
{
    struct capture *cap = ud;
    assert_true(cap->n < 300);
    struct got *g = &cap->g[cap->n++];
    g->id = r->id;
    g->ok = r->ok;
    g->status = r->status;
    g->http = r->http_status;
    g->attempts = r->attempts;
    g->latency_ms = r->latency_ms;
    g->total_ms = r->total_ms;
    snprintf(g->error, sizeof g->error, "%s", r->error);
    if (r->ok) {
        g->content = malloc(r->reply.content_len + 1);
        memcpy(g->content, r->reply.content, r->reply.content_len + 1);
        g->content_len = r->reply.content_len;
        g->was_null = r->reply.content_was_null;
        g->repaired = r->reply.utf8_repaired;
        snprintf(g->reasoning, sizeof g->reasoning, "%s", r->reply.reasoning);
        snprintf(g->finish, sizeof g->finish, "%s", r->reply.finish_reason);
        snprintf(g->model, sizeof g->model, "%s", r->reply.model);
        g->pt = r->reply.prompt_tokens;
        g->ct = r->reply.completion_tokens;
    }
    return 0;
}

static void capture_free(struct capture *cap)
{
    for (int i = 0; i < cap->n; i++)
        free(cap->g[i].content);
}

static double wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

/* Options for fast tests: short backoff, tight timeouts. */
static void test_opts(qe_client_opts *o, const struct fs *s)
{
    qe_client_opts_default(o);
    o->base_url = s ? s->base_url : NULL;
    o->backoff_base_ms = 10;
    o->backoff_cap_ms = 50;
    o->timeout_ms = 5000;
    o->connect_timeout_ms = 2000;
    o->force_curl = g_force_curl;
}

/* The client really uses the transport this group is testing. */
static void check_transport(const qe_client *c)
{
    assert_string_equal(qe_client_transport(c), g_force_curl ? "curl" : "native");
}

static char *chat_body(const char *user, int max_tokens)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"model\":\"fake-model\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],"
             "\"max_tokens\":%d,\"temperature\":0}",
             user, max_tokens);
    return buf;
}

/* Starts a server with args, sends one chat request, fills *g. */
static void one_request(const char *const *args, qe_client_opts *tweak, const char *user,
                        int max_tokens, struct capture *cap)
{
    struct fs s;
    assert_int_equal(fs_start(&s, args), 0);
    qe_client_opts o;
    test_opts(&o, &s);
    if (tweak) {
        tweak->base_url = s.base_url;
        o = *tweak;
    }
    qe_client *c;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    check_transport(c);
    assert_int_equal(qe_client_add(c, 7, "/chat/completions", chat_body(user, max_tokens), &e), 0);
    int rc = qe_client_run(c, on_done, cap, NULL, &e);
    qe_client_free(c);
    fs_stop(&s);
    assert_int_equal(rc, 0);
    assert_int_equal(cap->n, 1);
    assert_int_equal(cap->g[0].id, 7);
}

static void test_concurrency_32_in_flight(void **state)
{
    (void)state;
    const char *args[] = {"--script", SCRIPT, NULL};
    struct fs s;
    assert_int_equal(fs_start(&s, args), 0);
    qe_client_opts o;
    test_opts(&o, &s);
    o.num_concurrent = 32;
    qe_client *c;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    check_transport(c);
    for (int i = 0; i < 32; i++) {
        char u[64];
        snprintf(u, sizeof u, "slow-q %d", i);
        assert_int_equal(qe_client_add(c, (uint64_t)i, "/chat/completions", chat_body(u, 100), &e), 0);
    }
    struct capture cap = {0};
    double t0 = wall_ms();
    assert_int_equal(qe_client_run(c, on_done, &cap, NULL, &e), 0);
    double took = wall_ms() - t0;
    qe_client_free(c);
    fs_stop(&s);
    assert_int_equal(cap.n, 32);
    bool seen[32] = {0};
    for (int i = 0; i < 32; i++) {
        struct got *g = &cap.g[i];
        assert_true(g->ok);
        assert_int_equal(g->attempts, 1);
        assert_true(g->latency_ms >= 195);
        char want[64];
        snprintf(want, sizeof want, "ECHO: slow-q %d", (int)g->id);
        assert_string_equal(g->content, want);
        assert_false(seen[g->id]);
        seen[g->id] = true;
    }
    /* serial would take 32 x 200 ms = 6.4 s; in flight together about 200 ms */
    assert_true(took >= 195);
    assert_true(took < 800);
    capture_free(&cap);
}

static void test_no_head_of_line_blocking(void **state)
{
    (void)state;
    /* one slow (200 ms) request and 20 fast ones at concurrency 2: the fast
     * ones must all finish before the slow one */
    const char *args[] = {"--script", SCRIPT, NULL};
    struct fs s;
    assert_int_equal(fs_start(&s, args), 0);
    qe_client_opts o;
    test_opts(&o, &s);
    o.num_concurrent = 2;
    qe_client *c;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    check_transport(c);
    assert_int_equal(qe_client_add(c, 100, "/chat/completions", chat_body("slow-q x", 100), &e), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(qe_client_add(c, (uint64_t)i, "/chat/completions", chat_body("fast", 100), &e), 0);
    struct capture cap = {0};
    assert_int_equal(qe_client_run(c, on_done, &cap, NULL, &e), 0);
    qe_client_free(c);
    fs_stop(&s);
    assert_int_equal(cap.n, 21);
    assert_int_equal(cap.g[20].id, 100);
    capture_free(&cap);
}

static void test_500_then_success(void **state)
{
    (void)state;
    const char *args[] = {"--fault", "500:2", NULL};
    struct capture cap = {0};
    one_request(args, NULL, "hello", 100, &cap);
    assert_true(cap.g[0].ok);
    assert_int_equal(cap.g[0].attempts, 3);
    assert_int_equal(cap.g[0].http, 200);
    assert_string_equal(cap.g[0].content, "ECHO: hello");
    capture_free(&cap);
}

static void test_rule_fault_then_success(void **state)
{
    (void)state;
    const char *args[] = {"--script", SCRIPT, NULL};
    struct capture cap = {0};
    one_request(args, NULL, "flaky-rule", 100, &cap);
    assert_true(cap.g[0].ok);
    assert_int_equal(cap.g[0].attempts, 3);
    assert_string_equal(cap.g[0].content, "finally");
    capture_free(&cap);
}

static void test_retries_exhausted(void **state)
{
    (void)state;
    const char *args[] = {"--fault", "500:100", NULL};
    qe_client_opts o;
    test_opts(&o, NULL);
    o.max_attempts = 3;
    struct capture cap = {0};
    one_request(args, &o, "hello", 100, &cap);
    assert_false(cap.g[0].ok);
    assert_int_equal(cap.g[0].attempts, 3);
    assert_int_equal(cap.g[0].http, 500);
    assert_int_equal(cap.g[0].status, QE_ESERVER);
    assert_non_null(strstr(cap.g[0].error, "gave up after 3 attempts"));
    assert_non_null(strstr(cap.g[0].error, "internal server error"));
    capture_free(&cap);
}

static void test_429_retry_after_honored(void **state)
{
    (void)state;
    const char *args[] = {"--fault", "429:1:1", NULL};
    struct capture cap = {0};
    one_request(args, NULL, "hello", 100, &cap);
    assert_true(cap.g[0].ok);
    assert_int_equal(cap.g[0].attempts, 2);
    /* backoff alone would wait <= 50 ms; Retry-After says 1 s */
    assert_true(cap.g[0].total_ms >= 1000);
    assert_true(cap.g[0].total_ms < 4000);
    capture_free(&cap);
}

static void test_retry_after_capped(void **state)
{
    (void)state;
    const char *args[] = {"--fault", "429:1:3600", NULL};
    qe_client_opts o;
    test_opts(&o, NULL);
    o.retry_after_cap_ms = 300;
    struct capture cap = {0};
    one_request(args, &o, "hello", 100, &cap);
    assert_true(cap.g[0].ok);
    assert_int_equal(cap.g[0].attempts, 2);
    assert_true(cap.g[0].total_ms >= 290);
    assert_true(cap.g[0].total_ms < 3000);
    capture_free(&cap);
}

static void test_stall_beyond_timeout_retried(void **state)
{
    (void)state;
    const char *args[] = {"--fault", "stall:3000:1", NULL};
    qe_client_opts o;
    test_opts(&o, NULL);
    o.timeout_ms = 400;
    struct capture cap = {0};
    one_request(args, &o, "hello", 100, &cap);
    assert_true(cap.g[0].ok);
    assert_int_equal(cap.g[0].attempts, 2);
    assert_true(cap.g[0].total_ms >= 390);
    assert_true(cap.g[0].total_ms < 2500);
    capture_free(&cap);
}

static void test_reset_and_close_retried(void **state)
{
    (void)state;
    const char *a1[] = {"--fault", "reset:1", NULL};
    struct capture cap = {0};
    one_request(a1, NULL, "hello", 100, &cap);
    assert_true(cap.g[0].ok);
    assert_int_equal(cap.g[0].attempts, 2);
    assert_string_equal(cap.g[0].content, "ECHO: hello");
    capture_free(&cap);

    const char *a2[] = {"--fault", "close:2", NULL};
    struct capture cap2 = {0};
    one_request(a2, NULL, "hello", 100, &cap2);
    assert_true(cap2.g[0].ok);
    assert_int_equal(cap2.g[0].attempts, 3);
    capture_free(&cap2);
}

static void test_garbage_and_truncated_fail_clearly(void **state)
{
    (void)state;
    const char *a1[] = {"--fault", "garbage:1", NULL};
    struct capture cap = {0};
    one_request(a1, NULL, "hello", 100, &cap);
    assert_false(cap.g[0].ok);
    assert_int_equal(cap.g[0].status, QE_ESERVER);
    assert_int_equal(cap.g[0].http, 200);
    assert_int_equal(cap.g[0].attempts, 1);
    assert_non_null(strstr(cap.g[0].error, "not valid JSON"));
    assert_non_null(strstr(cap.g[0].error, "<html>"));
    capture_free(&cap);

    const char *a2[] = {"--fault", "truncated:1", NULL};
    struct capture cap2 = {0};
    one_request(a2, NULL, "hello", 100, &cap2);
    assert_false(cap2.g[0].ok);
    assert_int_equal(cap2.g[0].status, QE_ESERVER);
    assert_non_null(strstr(cap2.g[0].error, "not valid JSON"));
    capture_free(&cap2);
}

static void test_huge_body_over_cap(void **state)
{
    (void)state;
    const char *args[] = {"--fault", "huge:3000000:1", NULL};
    qe_client_opts o;
    test_opts(&o, NULL);
    o.max_body_bytes = 1 << 20;
    struct capture cap = {0};
    one_request(args, &o, "hello", 100, &cap);
    assert_false(cap.g[0].ok);
    assert_int_equal(cap.g[0].status, QE_ELIMIT);
    assert_int_equal(cap.g[0].attempts, 1);
    assert_non_null(strstr(cap.g[0].error, "1048576-byte limit"));
    capture_free(&cap);
}

static void test_50mb_body_under_default_cap(void **state)
{
    (void)state;
    const char *args[] = {"--fault", "huge:52428800:1", NULL};
    qe_client_opts o;
    test_opts(&o, NULL);
    o.timeout_ms = 60000;
    struct capture cap = {0};
    one_request(args, &o, "hello", 100, &cap);
    assert_true(cap.g[0].ok);
    assert_int_equal(cap.g[0].content_len, 52428800);
    assert_int_equal(cap.g[0].content[52428799], 'x');
    capture_free(&cap);
}

static void test_400_fails_fast_with_server_message(void **state)
{
    (void)state;
    const char *args[] = {"--max-model-len", "100", NULL};
    struct capture cap = {0};
    one_request(args, NULL, "hello", 1000, &cap);
    assert_false(cap.g[0].ok);
    assert_int_equal(cap.g[0].attempts, 1);
    assert_int_equal(cap.g[0].http, 400);
    assert_int_equal(cap.g[0].status, QE_ESERVER);
    assert_non_null(strstr(cap.g[0].error, "maximum context length is 100 tokens"));
    capture_free(&cap);

    /* the same through the pre-0.10.1 flat error body */
    const char *a2[] = {"--max-model-len", "100", "--flat-errors", NULL};
    struct capture cap2 = {0};
    one_request(a2, NULL, "hello", 1000, &cap2);
    assert_false(cap2.g[0].ok);
    assert_int_equal(cap2.g[0].attempts, 1);
    assert_non_null(strstr(cap2.g[0].error, "maximum context length is 100 tokens"));
    capture_free(&cap2);
}

static void test_wrong_model_404(void **state)
{
    (void)state;
    const char *args[] = {"--model", "other-model", NULL};
    struct capture cap = {0};
    one_request(args, NULL, "hello", 10, &cap);
    assert_false(cap.g[0].ok);
    assert_int_equal(cap.g[0].http, 404);
    assert_int_equal(cap.g[0].attempts, 1);
    assert_non_null(strstr(cap.g[0].error, "`fake-model` does not exist"));
    capture_free(&cap);
}

static void test_api_key_sent_and_never_leaked(void **state)
{
    (void)state;
    /* right key: accepted (so the header really is sent) */
    const char *args[] = {"--api-key", KEY, "--script", SCRIPT, NULL};
    struct fs s;
    assert_int_equal(fs_start(&s, args), 0);
    qe_client_opts o;
    test_opts(&o, &s);
    o.api_key = KEY;
    struct capture cap = {0};
    one_request(args, &o, "hello", 100, &cap);
    assert_true(cap.g[0].ok);
    capture_free(&cap);

    /* the server echoes the key in its error: scrubbed */
    struct capture cap2 = {0};
    one_request(args, &o, "echo-key", 100, &cap2);
    assert_false(cap2.g[0].ok);
    assert_int_equal(cap2.g[0].http, 401);
    assert_non_null(strstr(cap2.g[0].error, "Unauthorized"));
    assert_null(strstr(cap2.g[0].error, "SECRET"));
    capture_free(&cap2);

    /* wrong key: the server echoes the header it got */
    const char *a3[] = {"--api-key", "other-key", NULL};
    struct capture cap3 = {0};
    one_request(a3, &o, "hello", 100, &cap3);
    assert_false(cap3.g[0].ok);
    assert_int_equal(cap3.g[0].http, 401);
    assert_non_null(strstr(cap3.g[0].error, "bad key"));
    assert_null(strstr(cap3.g[0].error, "SECRET"));
    capture_free(&cap3);

    /* nobody listening: the connection error carries no key either */
    int port = s.port;
    fs_stop(&s);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", port);
    o.base_url = url;
    o.max_attempts = 2;
    qe_client *c;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    check_transport(c);
    assert_int_equal(qe_client_add(c, 1, "/chat/completions", chat_body("x", 1), &e), 0);
    struct capture cap4 = {0};
    assert_int_equal(qe_client_run(c, on_done, &cap4, NULL, &e), 0);
    qe_client_free(c);
    assert_false(cap4.g[0].ok);
    assert_int_equal(cap4.g[0].status, QE_ENET);
    assert_int_equal(cap4.g[0].attempts, 2);
    assert_null(strstr(cap4.g[0].error, "SECRET"));
    assert_non_null(strstr(cap4.g[0].error, "gave up after 2 attempts"));
    qe_err e2 = {0, ""};
    assert_int_not_equal(qe_client_health(&o, &e2), 0);
    assert_null(strstr(e2.msg, "SECRET"));
    capture_free(&cap4);
}

static void test_content_null_with_reasoning(void **state)
{
    (void)state;
    const char *args[] = {"--script", SCRIPT, NULL};
    struct capture cap = {0};
    one_request(args, NULL, "think-null", 100, &cap);
    struct got *g = &cap.g[0];
    assert_true(g->ok);
    assert_string_equal(g->content, "");
    assert_true(g->was_null);
    assert_string_equal(g->reasoning, "Let me think.");
    assert_string_equal(g->finish, "length");
    assert_int_equal(g->pt, 12);
    assert_int_equal(g->ct, 1024);
    assert_string_equal(g->model, "fake-model");
    capture_free(&cap);

    struct capture cap2 = {0};
    one_request(args, NULL, "reasoning-new", 100, &cap2);
    assert_true(cap2.g[0].ok);
    assert_true(cap2.g[0].was_null);
    assert_string_equal(cap2.g[0].reasoning, "New-style field.");
    capture_free(&cap2);
}

static void test_invalid_utf8_repaired(void **state)
{
    (void)state;
    const char *args[] = {"--fault", "badutf8:1", NULL};
    struct capture cap = {0};
    one_request(args, NULL, "hello", 100, &cap);
    assert_true(cap.g[0].ok);
    assert_true(cap.g[0].repaired);
    assert_non_null(strstr(cap.g[0].content, "bad \xEF\xBF\xBD\xEF\xBF\xBD utf8"));
    capture_free(&cap);
}

static void test_trickle_ok(void **state)
{
    (void)state;
    const char *args[] = {"--fault", "trickle:5:1", NULL};
    struct capture cap = {0};
    one_request(args, NULL, "hello", 100, &cap);
    assert_true(cap.g[0].ok);
    assert_int_equal(cap.g[0].attempts, 1);
    assert_string_equal(cap.g[0].content, "ECHO: hello");
    capture_free(&cap);
}

static void test_server_crash_reported(void **state)
{
    (void)state;
    const char *args[] = {"--fault", "die-after:1", NULL};
    struct fs s;
    assert_int_equal(fs_start(&s, args), 0);
    qe_client_opts o;
    test_opts(&o, &s);
    o.max_attempts = 2;
    qe_client *c;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    check_transport(c);
    for (int i = 0; i < 3; i++)
        assert_int_equal(qe_client_add(c, (uint64_t)i, "/chat/completions", chat_body("q", 10), &e), 0);
    struct capture cap = {0};
    assert_int_equal(qe_client_run(c, on_done, &cap, NULL, &e), 0);
    qe_client_free(c);
    int st = fs_stop(&s);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    assert_int_equal(cap.n, 3);
    int ok = 0;
    for (int i = 0; i < 3; i++) {
        if (cap.g[i].ok)
            ok++;
        else
            assert_int_equal(cap.g[i].status, QE_ENET);
    }
    assert_int_equal(ok, 1);
    capture_free(&cap);
}

static int stop_after_first(void *ud, const qe_result *r)
{
    (void)r;
    (*(int *)ud)++;
    return QE_EIO;
}

static void test_callback_stops_run(void **state)
{
    (void)state;
    struct fs s;
    assert_int_equal(fs_start(&s, NULL), 0);
    qe_client_opts o;
    test_opts(&o, &s);
    qe_client *c;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    check_transport(c);
    for (int i = 0; i < 5; i++)
        assert_int_equal(qe_client_add(c, (uint64_t)i, "/chat/completions", chat_body("q", 10), &e), 0);
    int calls = 0;
    assert_int_equal(qe_client_run(c, stop_after_first, &calls, NULL, &e), QE_EIO);
    assert_int_equal(calls, 1);
    assert_int_equal(qe_client_pending(c), 0);
    qe_client_free(c);
    fs_stop(&s);
}

/* ---- idle hook (group commit) ---- */

struct idle_rec {
    int done;          /* done callbacks so far */
    int calls;         /* idle calls so far */
    int seen[64];      /* done count seen by each idle call */
    int fail_at;       /* idle call number (1-based) that returns QE_EIO; 0 never */
    volatile sig_atomic_t stop;
    int stop_at_done;  /* set the stop flag at this done count; 0 never */
};

static int idle_count_done(void *ud, const qe_result *r)
{
    struct idle_rec *x = ud;
    (void)r;
    x->done++;
    if (x->stop_at_done && x->done == x->stop_at_done)
        x->stop = 1;
    return 0;
}

static int idle_hook(void *ud)
{
    struct idle_rec *x = ud;
    if (x->calls < 64)
        x->seen[x->calls] = x->done;
    x->calls++;
    return x->fail_at && x->calls == x->fail_at ? QE_EIO : 0;
}

static void test_idle_hook(void **state)
{
    (void)state;
    /* 100 ms per answer, one in flight: the loop waits before every
     * answer, so each answer is followed by an idle call before the next
     * answer arrives, and one more comes at the end */
    const char *args[] = {"--latency-ms", "100", NULL};
    struct fs s;
    assert_int_equal(fs_start(&s, args), 0);
    qe_client_opts o;
    test_opts(&o, &s);
    qe_client *c;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    check_transport(c);
    for (int i = 0; i < 4; i++)
        assert_int_equal(qe_client_add(c, (uint64_t)i, "/chat/completions", chat_body("q", 5), &e),
                         0);
    struct idle_rec x;
    memset(&x, 0, sizeof x);
    qe_client_set_idle(c, idle_hook, &x);
    assert_int_equal(qe_client_run(c, idle_count_done, &x, NULL, &e), 0);
    assert_int_equal(x.done, 4);
    assert_true(x.calls >= 5 && x.calls <= 64);
    for (int k = 1; k <= 4; k++) { /* some idle call saw exactly k answers */
        bool found = false;
        for (int i = 0; i < x.calls; i++)
            found = found || x.seen[i] == k;
        if (!found)
            fail_msg("no idle call between answer %d and the next one", k);
    }
    for (int i = 1; i < x.calls; i++) /* never sees fewer answers than before */
        assert_true(x.seen[i] >= x.seen[i - 1]);
    assert_int_equal(x.seen[x.calls - 1], 4); /* the final call sees them all */

    /* a failing hook stops the run with its status; no answer is reported
     * after it and it is not called again at the end */
    for (int i = 0; i < 4; i++)
        assert_int_equal(qe_client_add(c, (uint64_t)i, "/chat/completions", chat_body("q", 5), &e),
                         0);
    memset(&x, 0, sizeof x);
    x.fail_at = 3;
    memset(&e, 0, sizeof e);
    assert_int_equal(qe_client_run(c, idle_count_done, &x, NULL, &e), QE_EIO);
    assert_int_equal(x.calls, 3);
    assert_int_equal(x.done, x.seen[2]);
    assert_true(x.done < 4);
    assert_int_equal(qe_client_pending(c), 0);
    assert_non_null(strstr(e.msg, "idle callback"));

    /* a stop still gets the final call, which sees every reported answer;
     * without a hook nothing is called */
    for (int i = 0; i < 4; i++)
        assert_int_equal(qe_client_add(c, (uint64_t)i, "/chat/completions", chat_body("q", 5), &e),
                         0);
    memset(&x, 0, sizeof x);
    x.stop_at_done = 2;
    assert_int_equal(qe_client_run(c, idle_count_done, &x, &x.stop, &e), QE_EINTR);
    assert_int_equal(x.done, 2);
    assert_true(x.calls >= 1);
    assert_int_equal(x.seen[x.calls - 1], 2);
    qe_client_set_idle(c, NULL, NULL);
    assert_int_equal(qe_client_add(c, 9, "/chat/completions", chat_body("q", 5), &e), 0);
    int calls_before = x.calls;
    assert_int_equal(qe_client_run(c, idle_count_done, &x, NULL, &e), 0);
    assert_int_equal(x.calls, calls_before);
    qe_client_free(c);
    fs_stop(&s);
}

static void test_sync_helpers(void **state)
{
    (void)state;
    const char *args[] = {"--model", "Qwen/Qwen3-32B", NULL};
    struct fs s;
    assert_int_equal(fs_start(&s, args), 0);
    qe_client_opts o;
    test_opts(&o, &s);
    char v1[80];
    snprintf(v1, sizeof v1, "%s/v1/", s.base_url);
    o.base_url = v1; /* trailing /v1/ is normalized away */
    qe_err e = {0, ""};
    assert_int_equal(qe_client_health(&o, &e), 0);
    char **ids;
    size_t n;
    assert_int_equal(qe_client_models(&o, &ids, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "Qwen/Qwen3-32B");
    qe_client_free_strings(ids, n);

    char *text = NULL;
    size_t ntok = 0;
    const char *body = "{\"model\":\"Qwen/Qwen3-32B\",\"messages\":[{\"role\":\"system\","
                       "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Problem: 1+1\\nAnswer:\"}],"
                       "\"add_generation_prompt\":true,\"chat_template_kwargs\":{\"enable_thinking\":false}}";
    assert_int_equal(qe_client_render_prompt(&o, "Qwen/Qwen3-32B", body, &text, &ntok, &e), 0);
    const char *want = "<|im_start|>system\nBe brief.<|im_end|>\n"
                       "<|im_start|>user\nProblem: 1+1\nAnswer:<|im_end|>\n"
                       "<|im_start|>assistant\n<think>\n\n</think>\n\n";
    assert_string_equal(text, want);
    assert_int_equal(ntok, strlen(want));
    free(text);

    /* 4xx from a sync helper carries the server's message */
    assert_int_not_equal(qe_client_tokenize(&o, "{\"model\":\"x\"}", (long **)&text, &n, &e), 0);
    assert_int_equal(e.code, QE_ESERVER);
    assert_non_null(strstr(e.msg, "need messages or prompt"));
    fs_stop(&s);
    /* server gone */
    assert_int_equal(qe_client_health(&o, &e), QE_ENET);
}

static void test_completions_default_max_tokens_trap(void **state)
{
    (void)state;
    struct fs s;
    assert_int_equal(fs_start(&s, NULL), 0);
    qe_client_opts o;
    test_opts(&o, &s);
    qe_client *c;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    check_transport(c);
    assert_int_equal(qe_client_add(c, 1, "/completions",
                                   "{\"model\":\"fake-model\",\"prompt\":\"Question: a long question here\\nAnswer:\"}",
                                   &e), 0);
    struct capture cap = {0};
    assert_int_equal(qe_client_run(c, on_done, &cap, NULL, &e), 0);
    qe_client_free(c);
    fs_stop(&s);
    assert_true(cap.g[0].ok);
    assert_string_equal(cap.g[0].finish, "length");
    assert_int_equal(cap.g[0].content_len, 16);
    assert_int_equal(cap.g[0].ct, 16);
    capture_free(&cap);
}

static void test_url_normalization(void **state)
{
    (void)state;
    qe_client_opts o;
    qe_client_opts_default(&o);
    char buf[256];
    const char *bases[] = {"http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/"};
    for (int i = 0; i < 4; i++) {
        o.base_url = bases[i];
        assert_int_equal(qe_client_url(&o, "/chat/completions", buf, sizeof buf), 0);
        assert_string_equal(buf, "http://h:1/v1/chat/completions");
        assert_int_equal(qe_client_url(&o, "/tokenize", buf, sizeof buf), 0);
        assert_string_equal(buf, "http://h:1/tokenize");
        assert_int_equal(qe_client_url(&o, "/v1/models", buf, sizeof buf), 0);
        assert_string_equal(buf, "http://h:1/v1/models");
    }
    o.base_url = "https://x.example/proxy/v1";
    assert_int_equal(qe_client_url(&o, "/health", buf, sizeof buf), 0);
    assert_string_equal(buf, "https://x.example/proxy/health");
    o.base_url = "ftp://h";
    assert_int_equal(qe_client_url(&o, "/health", buf, sizeof buf), QE_EINVAL);
    qe_client *c;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(&o, &c, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "base_url"));
    o.base_url = "http://h";
    o.num_concurrent = 0;
    assert_int_equal(qe_client_new(&o, &c, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "num_concurrent"));
}

static void test_error_message_forms(void **state)
{
    (void)state;
    char m[256];
    const char *nested = "{\"error\":{\"message\":\"nested msg\",\"type\":\"BadRequestError\",\"code\":400}}";
    qe_client_error_message(nested, strlen(nested), m, sizeof m);
    assert_string_equal(m, "nested msg");
    const char *flat = "{\"object\":\"error\",\"message\":\"flat msg\",\"type\":\"BadRequestError\",\"code\":400}";
    qe_client_error_message(flat, strlen(flat), m, sizeof m);
    assert_string_equal(m, "flat msg");
    const char *detail = "{\"detail\":\"Not Found\"}";
    qe_client_error_message(detail, strlen(detail), m, sizeof m);
    assert_string_equal(m, "Not Found");
    const char *str = "{\"error\":\"Unauthorized\"}";
    qe_client_error_message(str, strlen(str), m, sizeof m);
    assert_string_equal(m, "Unauthorized");
    const char *html = "<h1>Bad\nGateway</h1>";
    qe_client_error_message(html, strlen(html), m, sizeof m);
    assert_string_equal(m, "unparsed body: <h1>Bad?Gateway</h1>");
    qe_client_error_message(NULL, 0, m, sizeof m);
    assert_string_equal(m, "empty body");
}

/* Golden cases in tests/cases/client_replies.jsonl: one reply body per line
 * ("body", or "body_hex" for bytes JSON cannot hold) and what parsing must
 * give. Add a line to add a case. */
static void test_parse_reply_cases(void **state)
{
    (void)state;
    FILE *f = fopen("tests/cases/client_replies.jsonl", "r");
    assert_non_null(f);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t jerr;
        json_t *c = json_loads(line, 0, &jerr);
        if (!c)
            fail_msg("client_replies.jsonl:%d: %s", n + 1, jerr.text);
        n++;
        const char *name = json_string_value(json_object_get(c, "name"));
        char body[4096];
        size_t blen;
        json_t *hex = json_object_get(c, "body_hex");
        if (json_is_string(hex)) {
            const char *h = json_string_value(hex);
            blen = strlen(h) / 2;
            for (size_t i = 0; i < blen; i++) {
                unsigned v;
                sscanf(h + 2 * i, "%2x", &v);
                body[i] = (char)v;
            }
        } else {
            blen = json_string_length(json_object_get(c, "body"));
            memcpy(body, json_string_value(json_object_get(c, "body")), blen);
        }
        body[blen] = 0;
        qe_reply r;
        qe_err e = {0, ""};
        int rc = qe_client_parse_reply(body, blen, &r, &e);
        bool want_ok = json_is_true(json_object_get(c, "ok"));
        if (want_ok != (rc == 0))
            fail_msg("case '%s': rc %d (%s)", name, rc, e.msg);
        if (!want_ok) {
            const char *sub = json_string_value(json_object_get(c, "error_contains"));
            if (rc != QE_ESERVER || !strstr(e.msg, sub))
                fail_msg("case '%s': error '%s' lacks '%s'", name, e.msg, sub);
            assert_null(r.content);
            json_decref(c);
            continue;
        }
        const char *k;
        json_t *v;
        json_object_foreach(c, k, v) {
            const char *got = NULL;
            if (!strcmp(k, "content"))
                got = r.content;
            else if (!strcmp(k, "reasoning"))
                got = r.reasoning;
            else if (!strcmp(k, "finish_reason"))
                got = r.finish_reason;
            else if (!strcmp(k, "model"))
                got = r.model;
            if (got && strcmp(got, json_string_value(v)) != 0)
                fail_msg("case '%s': %s is '%s', want '%s'", name, k, got, json_string_value(v));
            if (!strcmp(k, "prompt_tokens"))
                assert_int_equal(r.prompt_tokens, json_integer_value(v));
            if (!strcmp(k, "completion_tokens"))
                assert_int_equal(r.completion_tokens, json_integer_value(v));
            if (!strcmp(k, "content_was_null"))
                assert_int_equal(r.content_was_null, json_is_true(v));
            if (!strcmp(k, "utf8_repaired"))
                assert_int_equal(r.utf8_repaired, json_is_true(v));
            if (!strcmp(k, "nul_replaced"))
                assert_int_equal(r.nul_replaced, json_is_true(v));
        }
        if (!json_object_get(c, "nul_replaced"))
            assert_false(r.nul_replaced);
        if (!json_object_get(c, "utf8_repaired"))
            assert_false(r.utf8_repaired);
        assert_int_equal(r.content_len, strlen(r.content));
        qe_reply_free(&r);
        json_decref(c);
    }
    fclose(f);
    assert_true(n >= 20);
}

static int stop_flag_cb(void *ud, const qe_result *r)
{
    struct capture *cap = ud;
    on_done(cap, r);
    return 0;
}

static volatile sig_atomic_t g_stop_unused;

struct stopper {
    struct capture cap;
    volatile sig_atomic_t stop;
    qe_client *c;
    int added;
};

static int stop_on_third(void *ud, const qe_result *r)
{
    struct stopper *st = ud;
    stop_flag_cb(&st->cap, r);
    if (st->added == 0) {
        /* work queued from inside the callback runs in the same run */
        qe_err e = {0, ""};
        assert_int_equal(qe_client_add(st->c, 999, "/chat/completions", chat_body("late", 50), &e), 0);
        st->added = 1;
    }
    if (st->cap.n == 3)
        st->stop = 1;
    return 0;
}

static void test_stop_flag_and_add_from_callback(void **state)
{
    (void)state;
    (void)g_stop_unused;
    struct fs s;
    assert_int_equal(fs_start(&s, NULL), 0);
    qe_client_opts o;
    test_opts(&o, &s);
    struct stopper st;
    memset(&st, 0, sizeof st);
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(&o, &st.c, &e), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(qe_client_add(st.c, (uint64_t)i, "/chat/completions", chat_body("q", 5), &e), 0);
    for (int i = 2; i < 50; i++)
        assert_int_equal(qe_client_add(st.c, (uint64_t)i, "/chat/completions", chat_body("q", 5), &e), 0);
    assert_int_equal(qe_client_run(st.c, stop_on_third, &st, &st.stop, &e), QE_EINTR);
    assert_int_equal(st.cap.n, 3);
    assert_int_equal(qe_client_pending(st.c), 0);
    assert_non_null(strstr(e.msg, "interrupted"));
    qe_client_free(st.c);
    capture_free(&st.cap);

    /* the late request is served when the queue drains (FIFO) */
    qe_client *c;
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    check_transport(c);
    struct stopper st2;
    memset(&st2, 0, sizeof st2);
    st2.c = c;
    assert_int_equal(qe_client_add(c, 1, "/chat/completions", chat_body("q", 5), &e), 0);
    assert_int_equal(qe_client_run(c, stop_on_third, &st2, NULL, &e), 0);
    assert_int_equal(st2.cap.n, 2);
    assert_int_equal(st2.cap.g[1].id, 999);
    assert_string_equal(st2.cap.g[1].content, "ECHO: late");
    qe_client_free(c);
    capture_free(&st2.cap);
    fs_stop(&s);
}

static void test_connections_reused(void **state)
{
    (void)state;
    char path[] = "/tmp/client_reuse_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    const char *args[] = {"--request-log", path, NULL};
    struct fs s;
    assert_int_equal(fs_start(&s, args), 0);
    qe_client_opts o;
    test_opts(&o, &s);
    o.num_concurrent = 3;
    qe_client *c;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    check_transport(c);
    for (int i = 0; i < 60; i++)
        assert_int_equal(qe_client_add(c, (uint64_t)i, "/chat/completions", chat_body("q", 5), &e), 0);
    struct capture cap = {0};
    assert_int_equal(qe_client_run(c, on_done, &cap, NULL, &e), 0);
    qe_client_free(c);
    fs_stop(&s);
    assert_int_equal(cap.n, 60);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    long ports[64];
    int nports = 0, lines = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        long p = (long)json_integer_value(json_object_get(j, "client_port"));
        assert_true(p > 0);
        bool seen = false;
        for (int i = 0; i < nports; i++)
            seen |= ports[i] == p;
        if (!seen && nports < 64)
            ports[nports++] = p;
        lines++;
        json_decref(j);
    }
    fclose(f);
    unlink(path);
    assert_int_equal(lines, 60);
    /* 60 requests over at most 3 keep-alive connections */
    assert_true(nports >= 1 && nports <= 3);
    capture_free(&cap);
}

/* ---- differential test of reply parsing ----
 * qe_client_parse_reply has a fast scanner for well-formed replies and the
 * jansson path for everything else. This oracle restates the documented
 * rules (docs/client.md, "Malformed replies") directly on a jansson tree;
 * thousands of mutated replies must give the same verdict and fields. */

static uint64_t diff_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

struct oracle_reply {
    bool ok, was_null, nul;
    char *content;
    size_t content_len;
    char *reasoning, *finish, *model; /* malloc'd (oracle_free) */
    long pt, ct;
};

/* malloc'd text of a string value ("" otherwise), each NUL written as
 * U+FFFD; *nul set when there was one. */
static char *ostr(json_t *v, size_t *len, bool *nul)
{
    const char *t = json_is_string(v) ? json_string_value(v) : "";
    size_t n = json_is_string(v) ? json_string_length(v) : 0, k = 0;
    char *out = malloc(3 * n + 1);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        if (t[i]) {
            out[k++] = t[i];
        } else {
            out[k++] = (char)0xEF, out[k++] = (char)0xBF, out[k++] = (char)0xBD;
            if (nul)
                *nul = true;
        }
    }
    out[k] = 0;
    if (len)
        *len = k;
    return out;
}

static void oracle_free(struct oracle_reply *o)
{
    free(o->content);
    free(o->reasoning);
    free(o->finish);
    free(o->model);
}

/* The rules, on a jansson tree. j is borrowed and must outlive *o. */
static void oracle(json_t *j, struct oracle_reply *o)
{
    memset(o, 0, sizeof *o);
    o->pt = o->ct = -1;
    if (!json_is_object(j))
        return;
    json_t *choices = json_object_get(j, "choices");
    json_t *c0 = json_array_get(choices, 0); /* NULL unless a non-empty array */
    if (!json_is_object(c0))
        return;
    json_t *msg = json_object_get(c0, "message"), *content, *reasoning = NULL;
    if (json_is_object(msg)) {
        content = json_object_get(msg, "content");
        reasoning = json_object_get(msg, "reasoning_content");
        if (!json_is_string(reasoning))
            reasoning = json_object_get(msg, "reasoning");
    } else if (json_object_get(c0, "text")) {
        content = json_object_get(c0, "text");
    } else {
        return;
    }
    if (content && !json_is_string(content) && !json_is_null(content))
        return;
    if (reasoning && !json_is_string(reasoning) && !json_is_null(reasoning))
        return;
    o->ok = true;
    o->was_null = !json_is_string(content);
    o->content = ostr(content, &o->content_len, &o->nul);
    o->reasoning = ostr(reasoning, NULL, &o->nul);
    o->finish = ostr(json_object_get(c0, "finish_reason"), NULL, NULL);
    o->model = ostr(json_object_get(j, "model"), NULL, NULL);
    json_t *u = json_object_get(j, "usage");
    if (json_is_object(u)) {
        if (json_is_integer(json_object_get(u, "prompt_tokens")))
            o->pt = (long)json_integer_value(json_object_get(u, "prompt_tokens"));
        if (json_is_integer(json_object_get(u, "completion_tokens")))
            o->ct = (long)json_integer_value(json_object_get(u, "completion_tokens"));
    }
}

/* Replaces [at, at+del) of b (length *n, capacity cap) by ins. */
static void splice(char *b, size_t *n, size_t cap, size_t at, size_t del, const char *ins)
{
    size_t il = strlen(ins);
    if (at > *n || at + del > *n || *n - del + il >= cap)
        return;
    memmove(b + at + il, b + at + del, *n - at - del);
    memcpy(b + at, ins, il);
    *n = *n - del + il;
    b[*n] = 0;
}

/* A random position in b that is not inside a UTF-8 sequence. */
static size_t char_pos(const char *b, size_t n, uint64_t *rng)
{
    size_t at = (size_t)(diff_rng(rng) % (n + 1));
    while (at < n && ((unsigned char)b[at] & 0xC0) == 0x80)
        at++;
    return at;
}

/* Finds the k-th occurrence (mod count) of c in b; n when none. */
static size_t nth_char(const char *b, size_t n, char c, uint64_t k)
{
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++)
        cnt += b[i] == c;
    if (!cnt)
        return n;
    k %= cnt;
    for (size_t i = 0; i < n; i++)
        if (b[i] == c && k-- == 0)
            return i;
    return n;
}

static void mutate(char *b, size_t *n, size_t cap, uint64_t *rng)
{
    static const char *const strs[] = {
        "\\u0000", "\\ud83d\\ude00", "\\ud83d", "\\udc00x", "\\ud83dx", "a\\\"b",
        "\\/\\b\\f\\n\\r\\t\\\\", "\xc3\xa9", "\\u00E9\\u00e9", "\\uZZZZ", "\x01", "\\x",
        "\\u12", "", "\\u2202 $\\\\boxed{90^\\\\circ}$", "\x7f", "\\uDBFF\\uDFFF", "\\ud800\\u0041"};
    static const char *const nums[] = {
        "0", "-0", "01", "1.5", "1e5", "1E+400", "123456789012345678901",
        "9223372036854775807", "-9223372036854775808", "-", "1.", ".5", "1e999", "-1",
        "123456789012345678", "1234567890123456789", "0.0e-0", "2E2", "+1", "1e-400",
        "00", "-01", "5x"};
    static const char *const keys[] = {
        "choices", "model", "usage", "message", "content", "text", "finish_reason",
        "reasoning", "reasoning_content", "prompt_tokens", "completion_tokens", "error",
        "message", "index"};
    static const char *const vals[] = {
        "null", "true", "false", "[]", "{}", "\"s\"", "5", "5.0", "[1,2]",
        "{\"content\":\"x\"}", "[{\"text\":\"t\"}]", "{\"message\":{\"content\":\"m\"}}",
        "\"\\u00e9\"", "-7", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "{\"prompt_tokens\":1,\"completion_tokens\":2}", "\"stop\"", "tru", "nul"};
    static const char *const esc_keys[][2] = {
        {"\"content\"", "\"con\\u0074ent\""}, {"\"choices\"", "\"choice\\u0073\""},
        {"\"text\"", "\"\\u0074ext\""}, {"\"model\"", "\"mod\\/el\""}};
    static const char junk[] = "{}[],:\"\\ 0a-.etrufnlE+";
    static const char *const ws[] = {" ", "\t", "\n", "\r", "\f", "\v", "  \n "};
    uint64_t k = diff_rng(rng);
    switch (k % 9) {
    case 0: { /* a string's text */
        size_t q = nth_char(b, *n, '"', diff_rng(rng) * 2); /* an opening quote, mostly */
        if (q < *n)
            splice(b, n, cap, q + 1, 0, strs[diff_rng(rng) % (sizeof strs / sizeof *strs)]);
        break;
    }
    case 1: { /* a number */
        size_t q = nth_char(b, *n, ':', diff_rng(rng));
        if (q < *n && q + 1 < *n && ((b[q + 1] >= '0' && b[q + 1] <= '9') || b[q + 1] == '-')) {
            size_t e = q + 1;
            while (e < *n && strchr("0123456789-+.eE", b[e]))
                e++;
            splice(b, n, cap, q + 1, e - q - 1, nums[diff_rng(rng) % (sizeof nums / sizeof *nums)]);
        }
        break;
    }
    case 2: { /* a (maybe duplicate) key right after an opening brace */
        size_t q = nth_char(b, *n, '{', diff_rng(rng));
        char ins[256];
        snprintf(ins, sizeof ins, "\"%s\":%s,", keys[diff_rng(rng) % (sizeof keys / sizeof *keys)],
                 vals[diff_rng(rng) % (sizeof vals / sizeof *vals)]);
        if (q < *n)
            splice(b, n, cap, q + 1, 0, ins);
        break;
    }
    case 3: { /* a key spelled with an escape */
        const char *const *ek = esc_keys[diff_rng(rng) % (sizeof esc_keys / sizeof *esc_keys)];
        char *hit = strstr(b, ek[0]);
        if (hit)
            splice(b, n, cap, (size_t)(hit - b), strlen(ek[0]), ek[1]);
        break;
    }
    case 4: /* whitespace anywhere */
        splice(b, n, cap, char_pos(b, *n, rng), 0, ws[diff_rng(rng) % (sizeof ws / sizeof *ws)]);
        break;
    case 5: /* truncation */
        *n = char_pos(b, *n, rng);
        b[*n] = 0;
        break;
    case 6: { /* one byte replaced by JSON punctuation */
        size_t at = (size_t)(diff_rng(rng) % (*n ? *n : 1));
        if (at < *n && (unsigned char)b[at] < 0x80) {
            char ins[2] = {junk[diff_rng(rng) % (sizeof junk - 1)], 0};
            splice(b, n, cap, at, 1, ins);
        }
        break;
    }
    case 7: { /* a value after a key replaced */
        size_t q = nth_char(b, *n, ':', diff_rng(rng));
        if (q < *n)
            splice(b, n, cap, q + 1, 0, vals[diff_rng(rng) % (sizeof vals / sizeof *vals)]);
        /* the old value now follows: usually a syntax error, sometimes not */
        break;
    }
    default: /* trailing bytes */
        splice(b, n, cap, *n, 0, diff_rng(rng) % 2 ? " \n" : " x");
        break;
    }
}

static void test_parse_reply_differential(void **state)
{
    (void)state;
    static const char *const bases[] = {
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1795635757,"
        "\"model\":\"fake-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":\"ECHO: Problem: What is 1+1?\\nAnswer:\",\"tool_calls\":[]},"
        "\"logprobs\":null,\"finish_reason\":\"stop\",\"stop_reason\":null}],"
        "\"usage\":{\"prompt_tokens\":79,\"total_tokens\":114,\"completion_tokens\":35}}",
        "{\"choices\":[{\"message\":{\"content\":null,\"reasoning_content\":\"think \\u00e9\"},"
        "\"finish_reason\":\"length\"},{\"message\":{\"content\":\"second\"}}],\"model\":\"m\"}",
        "{\"choices\":[{\"text\":\" 42\",\"finish_reason\":null,\"logprobs\":{\"a\":[1.5,-2e3]}}],"
        "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":-0}}",
        " {\"model\":\"q\",\"choices\":[{\"message\":{\"reasoning\":\"r\",\"content\":\"$\\\\frac{1}{2}$\"}}],"
        "\"usage\":{\"prompt_tokens\":1.0,\"completion_tokens\":true}} ",
        "{\"error\":{\"message\":\"boom\"},\"choices\":[]}",
        "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"reasoning\":\"r\"},"
        "\"finish_reason\":\"stop\"}],\"usage\":{\"total_tokens\":3}}",
    };
    uint64_t rng = 42;
    int agree_ok = 0, agree_fail = 0;
    char b[4096];
    for (int it = 0; it < 30000; it++) {
        const char *base = bases[it % (sizeof bases / sizeof *bases)];
        size_t n = strlen(base);
        memcpy(b, base, n + 1);
        int muts = (int)(diff_rng(&rng) % 4); /* 0..3; 0 checks the bases themselves */
        for (int m = 0; m < muts; m++)
            mutate(b, &n, sizeof b, &rng);
        json_t *j = json_loadb(b, n, JSON_ALLOW_NUL, NULL);
        struct oracle_reply o;
        oracle(j, &o);
        qe_reply r;
        qe_err e = {0, ""};
        int rc = qe_client_parse_reply(b, n, &r, &e);
        if ((rc == 0) != o.ok)
            fail_msg("verdicts differ (client %s, oracle %s) on: %s", rc ? e.msg : "ok",
                     o.ok ? "ok" : "fail", b);
        if (rc == 0) {
            if (r.content_len != o.content_len || memcmp(r.content, o.content, o.content_len) ||
                r.content[r.content_len] != 0 || r.content_was_null != o.was_null ||
                strcmp(r.reasoning, o.reasoning) || strcmp(r.finish_reason, o.finish) ||
                strcmp(r.model, o.model) || r.prompt_tokens != o.pt ||
                r.completion_tokens != o.ct || r.utf8_repaired || r.nul_replaced != o.nul)
                fail_msg("fields differ on: %s (content '%s' vs '%s', reasoning '%s' vs '%s', "
                         "pt %ld vs %ld, ct %ld vs %ld)", b, r.content, o.content, r.reasoning,
                         o.reasoning, r.prompt_tokens, o.pt, r.completion_tokens, o.ct);
            agree_ok++;
            qe_reply_free(&r);
        } else {
            agree_fail++;
        }
        oracle_free(&o);
        json_decref(j);
    }
    /* both verdicts must be well represented, or the test proves little */
    assert_true(agree_ok > 3000);
    assert_true(agree_fail > 3000);
}

/* Request URLs are parsed once and cached (a handful of them); more distinct
 * paths than the cache holds must still each reach their own URL. */
static void test_many_distinct_paths(void **state)
{
    (void)state;
    char path[] = "/tmp/client_paths_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    const char *args[] = {"--request-log", path, NULL};
    struct fs s;
    assert_int_equal(fs_start(&s, args), 0);
    qe_client_opts o;
    test_opts(&o, &s);
    o.num_concurrent = 4;
    o.max_attempts = 1;
    qe_client *c;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_new(&o, &c, &e), 0);
    check_transport(c);
    enum { N = 16 };
    char want[N][64];
    for (int i = 0; i < N; i++) {
        char p[64];
        const char *body = chat_body("q", 5);
        if (i < 4) {
            snprintf(p, sizeof p, "%s", i % 2 ? "/v1/chat/completions" : "/chat/completions");
            snprintf(want[i], sizeof want[i], "/v1/chat/completions");
        } else if (i < 6) {
            snprintf(p, sizeof p, "/completions");
            snprintf(want[i], sizeof want[i], "/v1/completions");
            body = "{\"model\":\"fake-model\",\"prompt\":\"q\",\"max_tokens\":5}";
        } else {
            snprintf(p, sizeof p, "/nope%d", i);
            snprintf(want[i], sizeof want[i], "/v1/nope%d", i);
        }
        assert_int_equal(qe_client_add(c, (uint64_t)i, p, body, &e), 0);
    }
    struct capture cap = {0};
    assert_int_equal(qe_client_run(c, on_done, &cap, NULL, &e), 0);
    qe_client_free(c);
    fs_stop(&s);
    assert_int_equal(cap.n, N);
    for (int k = 0; k < N; k++) {
        struct got *g = &cap.g[k];
        if (g->id < 6) {
            assert_true(g->ok);
        } else {
            assert_false(g->ok);
            assert_int_equal(g->http, 404);
            assert_non_null(strstr(g->error, want[g->id]));
        }
    }
    /* the server saw each path exactly as often as it was sent */
    int seen[N] = {0};
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        const char *got = json_string_value(json_object_get(j, "path"));
        assert_non_null(got);
        int match = -1;
        for (int i = 0; i < N && match < 0; i++)
            if (!strcmp(got, want[i]) && !seen[i])
                match = i;
        if (match < 0)
            fail_msg("unexpected or repeated path in the server log: %s", got);
        seen[match] = 1;
        lines++;
        json_decref(j);
    }
    fclose(f);
    unlink(path);
    assert_int_equal(lines, N);
    capture_free(&cap);
}

static int use_native(void **state)
{
    (void)state;
    g_force_curl = false;
    return 0;
}

static int use_curl(void **state)
{
    (void)state;
    g_force_curl = true;
    return 0;
}

int main(void)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(test_url_normalization),
        cmocka_unit_test(test_error_message_forms),
        cmocka_unit_test(test_parse_reply_cases),
        cmocka_unit_test(test_parse_reply_differential),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_flag_and_add_from_callback),
        cmocka_unit_test(test_connections_reused),
        cmocka_unit_test(test_many_distinct_paths),
        cmocka_unit_test(test_concurrency_32_in_flight),
        cmocka_unit_test(test_no_head_of_line_blocking),
        cmocka_unit_test(test_500_then_success),
        cmocka_unit_test(test_rule_fault_then_success),
        cmocka_unit_test(test_retries_exhausted),
        cmocka_unit_test(test_429_retry_after_honored),
        cmocka_unit_test(test_retry_after_capped),
        cmocka_unit_test(test_stall_beyond_timeout_retried),
        cmocka_unit_test(test_reset_and_close_retried),
        cmocka_unit_test(test_garbage_and_truncated_fail_clearly),
        cmocka_unit_test(test_huge_body_over_cap),
        cmocka_unit_test(test_50mb_body_under_default_cap),
        cmocka_unit_test(test_400_fails_fast_with_server_message),
        cmocka_unit_test(test_wrong_model_404),
        cmocka_unit_test(test_api_key_sent_and_never_leaked),
        cmocka_unit_test(test_content_null_with_reasoning),
        cmocka_unit_test(test_invalid_utf8_repaired),
        cmocka_unit_test(test_trickle_ok),
        cmocka_unit_test(test_server_crash_reported),
        cmocka_unit_test(test_callback_stops_run),
        cmocka_unit_test(test_idle_hook),
        cmocka_unit_test(test_sync_helpers),
        cmocka_unit_test(test_completions_default_max_tokens_trap),
    };
    int fails = cmocka_run_group_tests_name("client unit", unit, NULL, NULL);
    fails += cmocka_run_group_tests_name("client over the native transport", tests, use_native, NULL);
    fails += cmocka_run_group_tests_name("client over libcurl", tests, use_curl, NULL);
    return fails;
}
