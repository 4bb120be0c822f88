/* client: OpenAI-compatible HTTP client (vLLM and friends).
 *
 * One thread drives up to num_concurrent requests truly in flight, each on
 * its own keep-alive connection, so a slow answer never holds up a fast one.
 * Two transports, one behavior: plain http:// base URLs go through a native
 * non-blocking HTTP/1.1 engine (src/http.h + epoll, several times cheaper per
 * request than libcurl); https://, user:password@ URLs, any proxy variable
 * in the environment, or opts.force_curl use libcurl multi. The synchronous
 * helpers always use libcurl. Requests that fail transiently
 * (connection errors, timeouts, resets, 429, 5xx) are retried with
 * exponential backoff and seeded jitter, honoring Retry-After, up to
 * max_attempts; other 4xx fail at once with the server's own message.
 * Replies are parsed at the edge into qe_reply (content, reasoning,
 * finish_reason, usage, model id); malformed replies become a failed outcome
 * with a clear reason, never a crash.
 *
 * The API key goes into one Authorization header and nowhere else: it is
 * scrubbed ("***") from every error message and returned string.
 *
 * Usage:
 *   qe_client_opts o; qe_client_opts_default(&o); o.base_url = ...;
 *   qe_client *c; qe_client_new(&o, &c, &err);
 *   qe_client_add(c, id, "/chat/completions", json_body, &err);  ... more
 *   qe_client_run(c, on_done, ud, &stop_flag, &err);  // on_done once per id
 *   qe_client_free(c);
 * See docs/client.md. */
#ifndef QE_CLIENT_H
#define QE_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct {
    /* "http://host:port", "http://host:port/v1" or with a trailing '/'; a
     * trailing "/v1" is removed to get the server root (see qe_client_url). */
    const char *base_url;
    const char *api_key;       /* NULL or "" = no Authorization header; copied */
    int num_concurrent;        /* requests in flight, 1..4096 (default 1) */
    long timeout_ms;           /* whole attempt, default 600000 (10 min) */
    long connect_timeout_ms;   /* default 10000 */
    int max_attempts;          /* per request incl. the first, 1..100 (default 5) */
    long backoff_base_ms;      /* first retry waits ~base (default 500) */
    long backoff_cap_ms;       /* backoff never exceeds this (default 30000) */
    long retry_after_cap_ms;   /* a Retry-After longer than this is cut (default 60000) */
    size_t max_body_bytes;     /* reply bodies above this fail (default 64 MB) */
    uint64_t seed;             /* jitter PRNG seed (runs are reproducible) */
    bool force_curl;           /* qe_client_run uses libcurl even where the
                                * native transport would serve (tests and
                                * benchmarks compare the two); default false */
} qe_client_opts;

/* Fills defaults; base_url is left NULL and must be set. */
void qe_client_opts_default(qe_client_opts *o);

/* A completion reply parsed into fields. Strings are NUL-terminated UTF-8
 * (never NULL once parsed: absent text is ""). */
typedef struct {
    char *content;          /* message.content or text; "" when null */
    size_t content_len;
    bool content_was_null;  /* the server sent "content": null */
    char *reasoning;        /* reasoning_content or reasoning; "" if absent */
    char *finish_reason;    /* "" if absent/null */
    char *model;            /* the server's model id; "" if absent */
    long prompt_tokens;     /* -1 when usage is absent */
    long completion_tokens; /* -1 when usage is absent */
    bool utf8_repaired;     /* invalid UTF-8 was replaced by U+FFFD */
    bool nul_replaced;      /* a \u0000 in content/reasoning was replaced by
                             * U+FFFD, so no text is cut at a NUL */
} qe_reply;

/* Parses a chat.completion or text_completion body. 0 or QE_ESERVER /
 * QE_EINVAL with a message. On success the caller frees with qe_reply_free;
 * on failure *out is left zeroed. */
int qe_client_parse_reply(const char *body, size_t len, qe_reply *out, qe_err *e);
void qe_reply_free(qe_reply *r);

/* Extracts the human message from an error body: nested
 * {"error":{"message":…}} (vLLM >= 0.10.1, OpenAI), flat {"message":…} /
 * {"object":"error","message":…} (older vLLM), {"detail":…} (FastAPI);
 * otherwise the first bytes of the body, made printable. Always writes a
 * NUL-terminated string into buf (cap >= 1). */
void qe_client_error_message(const char *body, size_t len, char *buf, size_t cap);

/* The final outcome of one queued request, passed to the done callback.
 * Valid only during the callback: copy what you keep. */
typedef struct {
    uint64_t id;
    bool ok;              /* true: 2xx with a well-formed reply */
    int status;           /* 0 or the negative qe_status of the failure */
    long http_status;     /* of the last attempt; 0 if no HTTP reply */
    int attempts;         /* attempts made, >= 1 */
    double latency_ms;    /* duration of the last attempt */
    double total_ms;      /* first attempt start to the end, backoff included */
    qe_reply reply;       /* parsed reply when ok (zeroed otherwise) */
    const char *body;     /* raw body of the last attempt ("" if none) */
    size_t body_len;
    char error[1024];     /* why it failed ("" when ok); never holds the key */
} qe_result;

/* Called once per request with its final outcome. Return 0 to go on, or a
 * negative qe_status to stop the run (qe_client_run returns it). The
 * callback may call qe_client_add to queue more work. */
typedef int (*qe_client_done_fn)(void *userdata, const qe_result *r);

typedef struct qe_client qe_client;

/* Creates a client; *out freed with qe_client_free. The opts strings are
 * copied. QE_EINVAL for a bad option (message names it). */
int qe_client_new(const qe_client_opts *o, qe_client **out, qe_err *e);
void qe_client_free(qe_client *c);

/* Queues a POST of json_body (copied) to path, e.g. "/chat/completions"
 * (see qe_client_url for how paths map to URLs). id is echoed in the
 * result; ids need not be unique but should be. */
int qe_client_add(qe_client *c, uint64_t id, const char *path, const char *json_body, qe_err *e);

/* "native" or "curl": the transport qe_client_run uses (see the top). */
const char *qe_client_transport(const qe_client *c);

/* Number of queued requests not yet reported. */
size_t qe_client_pending(const qe_client *c);

/* Runs until every queued request is reported, *stop becomes non-zero
 * (returns QE_EINTR; unfinished requests are dropped without callback), or
 * the callback returns non-zero (returns that). stop may be NULL. */
int qe_client_run(qe_client *c, qe_client_done_fn done, void *userdata,
                  const volatile sig_atomic_t *stop, qe_err *e);

/* Idle hook for batching work across answers (the runner's group commit):
 * called once per event-loop turn just before the loop blocks waiting for
 * the network or a backoff (not on turns that go straight on because
 * something is already due), and once more when qe_client_run ends for any
 * reason other than this hook's own failure -- all requests reported, *stop,
 * a done callback's error. Every done callback of a turn runs before that
 * turn's idle call, so "all answers reported so far" is a consistent batch.
 * Return 0 to go on; non-zero stops the run like the done callback does
 * (qe_client_run returns it; at the final call it replaces a 0 or QE_EINTR
 * status). It may call qe_client_add. fn NULL removes the hook. Call before
 * qe_client_run, not from inside it. */
typedef int (*qe_client_idle_fn)(void *userdata);
void qe_client_set_idle(qe_client *c, qe_client_idle_fn fn, void *userdata);

/* Live counters, e.g. for a progress line drawn from the callback. */
typedef struct {
    size_t in_flight, queued, waiting_retry, done, retries;
} qe_client_stats;
void qe_client_get_stats(const qe_client *c, qe_client_stats *s);

/* 0 when base is a base URL the client takes (http:// or https://, with or
 * without /v1 and trailing slashes); else QE_EINVAL and why. */
int qe_client_check_base_url(const char *base, qe_err *e);

/* The URL a path goes to, in buf, credentials included: to request, not to
 * show (qe_client_redact_url). Paths starting with "/v1/" and the
 * server-root endpoints /health, /tokenize, /detokenize, /version,
 * /metrics, /ping go to root + path; anything else to root + "/v1" + path.
 * Returns 0, QE_EINVAL (not http(s)) or QE_ELIMIT. */
int qe_client_url(const qe_client_opts *o, const char *path, char *buf, size_t cap);
/* url without any user:password@, for messages and logs. */
void qe_client_redact_url(const char *url, char *out, size_t cap);

/* ---- synchronous helpers (one attempt each, same timeouts and cap) ---- */

/* GET or POST (json_body non-NULL) path; fills *http_status and *body
 * (caller frees; may be NULL on transport error). Returns 0 when the server
 * answered anything, QE_ENET/QE_ELIMIT otherwise. An HTTP error status is
 * not a failure here: check *http_status. */
int qe_client_request(const qe_client_opts *o, const char *path, const char *json_body,
                      long *http_status, char **body, size_t *body_len, qe_err *e);
/* 0 when GET /health answers 200; QE_ENET (no answer) or QE_ESERVER. */
int qe_client_health(const qe_client_opts *o, qe_err *e);
/* GET /v1/models: *ids is a malloc'd array of *n malloc'd strings; free
 * with qe_client_free_strings. */
int qe_client_models(const qe_client_opts *o, char ***ids, size_t *n, qe_err *e);
void qe_client_free_strings(char **v, size_t n);
/* POST /tokenize with a caller-built body ({"model","messages",
 * "add_generation_prompt","chat_template_kwargs"} or {"model","prompt"});
 * *tokens malloc'd (caller frees). */
int qe_client_tokenize(const qe_client_opts *o, const char *json_body, long **tokens,
                       size_t *n, qe_err *e);
/* POST /detokenize {"model","tokens"}; *text malloc'd (caller frees). */
int qe_client_detokenize(const qe_client_opts *o, const char *model, const long *tokens,
                         size_t n, char **text, qe_err *e);
/* /tokenize then /detokenize: the exact prompt text the server renders for
 * that request body. *text malloc'd; *n_tokens may be NULL. */
int qe_client_render_prompt(const qe_client_opts *o, const char *model,
                            const char *tokenize_body, char **text, size_t *n_tokens,
                            qe_err *e);

#endif
