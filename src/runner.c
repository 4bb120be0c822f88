/* runner: `qeval run` (and each step of `qeval sweep`): ask a server every
 * question of every task, store each answer the moment it arrives, score
 * like lm-eval and write lm-eval's files. Contract in runner.h; decisions
 * (fingerprint, prompt recording, result-file reuse) in docs/run.md.
 *
 * Flow: options -> server check (GET /v1/models) -> per task: merged
 * gen_kwargs, fingerprint, store run, done-set -> prompts rendered by the
 * server (/tokenize + /detokenize) for what is still to ask -> one client
 * multi loop over all tasks, fed a window at a time, every outcome copied
 * from the done callback and committed with the rest of its loop turn by
 * the committer thread (group commit, see gc_commit) -> per complete task:
 * rows read back in doc order, scored, samples + results written (or
 * reused). */
#include "runner.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "client.h"
#include "genkw.h"
#include "hash.h"
#include "lmeval_io.h"
#include "pyjson.h"
#include "rescore.h"
#include "runner_body.h"
#include "runner_sample.h"
#include "score_lmeval.h"
#include "stats.h"
#include "store.h"
#include "task.h"
#include "verify.h"

#define MAX_FAILURES_LISTED 20
#define RUNNER_VERSION "0.1.0"

/* One (task, doc, repeat) still to ask. */
struct rq {
    uint32_t task, doc, repeat;
    int attempts; /* attempts of earlier rounds (bad 2xx bodies re-asked) */
    int server_waits; /* times re-asked after the server came back */
    char *body;   /* request JSON while in flight */
};

/* One stored row read back for output. */
struct row {
    bool have;
    char *mem; /* owns the strings below */
    char *content, *reasoning, *finish, *prompt; /* prompt: repeat 0 only */
    long long ptok, ctok;
    double latency;
    int attempts;
};

struct tstate {
    const qe_task *t;
    const char *name;
    size_t size, n_docs;
    bool clamped;
    json_t *merged;      /* gen kwargs as lm-eval logs them (arg_1) */
    long long seed;      /* base seed; repeat r sends seed + r */
    char fingerprint[65];
    int64_t run_id;
    char **prompts;      /* per doc, rendered prompt for docs still to ask */
    json_t *ctk;         /* chat_template_kwargs sent, NULL = none */
    qe_runner_body *body; /* the pieces of this task's request bodies */
    bool queued;         /* the done-set was read and the queue built */
    bool all_ok;         /* every (doc, repeat) was read back 'ok' for the output */
    size_t todo, sent, ok_now, failed_now, done_now;
    double ctokens;
    double t_start;
};

/* Group commit (docs/run.md): an answer is copied here from the done
 * callback and committed with the others of its event-loop turn, in one
 * transaction per task, from the client's idle hook (just before the loop
 * waits), when the buffer is full, and before any blocking wait of ours. */
#define GC_MAX_ROWS 512
#define GC_MAX_BYTES (8u << 20)
/* The committer gathers: it takes the buffer once GC_GATHER_ROWS answers
 * wait, or the oldest has waited GC_GATHER_S, or someone waits for it (a
 * sync, a full buffer, the end). So a fast server pays one fsync per
 * ~2 ms, not one per answer that happened to arrive alone; a slow one
 * (a real vLLM: an answer every few ms or more) sees each answer stored
 * at most 2 ms later. */
#define GC_GATHER_ROWS 128
#define GC_GATHER_S 0.002
/* Who commits. While commits are cheap (a store on tmpfs or a fast disk:
 * COMMIT takes ~10-20 us), the loop commits each turn's answers itself at
 * its idle hook: handing them to another thread costs more than that in
 * wake-ups and context switches. Once GC_SLOW_RUN commits in a row each
 * took more than GC_SLOW_S (an fsync that reaches a disk), the committer
 * thread takes over, gathering, for the rest of the run, so that the loop
 * never waits for a disk. */
#define GC_SLOW_S 100e-6
#define GC_SLOW_RUN 3

struct gc_row {
    uint32_t id;   /* index in ctx.q; its body is the request_json */
    bool ok;
    long long ptok, ctok;
    double latency;
    int attempts;
    char *strs;    /* one allocation holding the five strings below */
    const char *content, *reasoning, *finish, *model, *error;
};

struct gc_buf {
    struct gc_row *rows;
    qe_store_response *scratch; /* one task's rows, as the store takes them */
    size_t n, cap, bytes;
};

struct ctx;

/* One endpoint: its own client, driven by its own thread when there are
 * several; all endpoints take work from the same queue. */
struct ep {
    struct ctx *c;
    qe_client_opts copts;
    qe_client *client;
    bool gone;           /* waited for it in vain: it takes no more work */
    char gone_why[1200];
    int rc;
    qe_err err;
    pthread_t th;
};

struct ctx {
    const qe_run_opts *o;
    qe_client_opts copts; /* endpoint 0: server checks, prompt rendering */
    struct ep *eps;
    size_t neps;
    pthread_mutex_t mu;   /* guards everything below and the store, when threads run */
    bool threads;         /* several endpoints, or the committer: mu is taken */
    bool cm_on, cm_busy, cm_quit; /* committer thread running / committing / asked to end */
    bool cm_inline;       /* commits are cheap: the loop commits itself (GC_SLOW_S) */
    bool cm_fixed;        /* QEVAL_COMMITTER chose it: no switching */
    int gc_slow;          /* consecutive slow commits of the loop's own */
    int cm_urgent;        /* threads waiting for the committer: no gathering */
    double gc_first;      /* monotonic time the oldest buffered answer arrived */
    pthread_t cm_th;
    pthread_cond_t cm_kick; /* answers buffered for the committer, or quit */
    pthread_cond_t cm_done; /* the committer took the buffer, or finished a batch */
    int cm_rc;            /* first commit failure */
    struct gc_buf gc_busy; /* the batch the committer is writing (its own) */
    bool abort;           /* a fatal error in one endpoint's loop: all stop */
    uint32_t *requeue;    /* ids given back by an endpoint that went away */
    size_t nrequeue;
    size_t inflight;
    qe_store *store;
    struct gc_buf gc;     /* answers received, not committed yet */
    bool chat;
    char *server_id, *server_root;
    long long max_model_len; /* smallest reported by the endpoints, 0 = unknown */
    bool offline;        /* server unreachable: only stored answers can be used */
    char offline_why[1100];
    struct tstate *ts;
    size_t nts;
    struct rq *q;
    size_t nq, qpos, window;
    bool deadline_hit;
    bool noted_back;
    int render_mode; /* 0 undecided, 1 server /tokenize, 2 JSON dump fallback */
    qe_buf body_scratch; /* reused by every build_body (under mu) */
    bool val_valid, val_fast; /* body_scratch holds the escaped prompt (or messages)
                               * of (val_task, val_doc); !val_fast: reference path */
    uint32_t val_task, val_doc;
    json_t *msgs_cache;  /* chat: the messages of (val_task, val_doc) */
    qe_buf notices;
    char **failures;
    size_t n_failures;
    char *first_failure;
    qe_err fatal;
    /* progress */
    double t0, last_print;
    size_t total, done;
    double ctokens;
    bool printed;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void note(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qe_buf_vprintf(&c->notices, fmt, ap);
    va_end(ap);
    qe_buf_putc(&c->notices, '\n');
}

/* mkdir -p; 0 or QE_EIO naming the directory. */
static int mkdir_p(const char *path, qe_err *e)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0)
        return 0;
    if (n >= sizeof buf)
        return qe_err_set(e, QE_EIO, "%s: path too long", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char save = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) && errno != EEXIST)
                return qe_err_set(e, QE_EIO, "cannot create directory %s: %s", buf,
                                  strerror(errno));
            buf[i] = save;
        }
    }
    struct stat st;
    if (stat(path, &st) || !S_ISDIR(st.st_mode))
        return qe_err_set(e, QE_EIO, "%s: not a directory", path);
    if (access(path, W_OK))
        return qe_err_set(e, QE_EIO, "output directory %s is not writable: %s", path,
                          strerror(errno));
    return 0;
}

/* The directory that holds the store: output_path, or its parent for X.json. */
static char *store_dir(const char *out)
{
    size_t n = strlen(out);
    if (n > 5 && !strcmp(out + n - 5, ".json")) {
        const char *slash = strrchr(out, '/');
        if (!slash)
            return strdup(".");
        return strndup(out, slash == out ? 1 : (size_t)(slash - out));
    }
    return strdup(out);
}

/* ---------- server facts ---------- */

static int server_check(struct ctx *c, qe_err *e)
{
    long http = 0;
    char *body = NULL;
    size_t len = 0;
    int rc = qe_client_request(&c->copts, "/v1/models", NULL, &http, &body, &len, e);
    if (rc) {
        qe_err_prefix(e, "cannot reach the server");
        return rc;
    }
    if (http != 200) {
        char m[700];
        qe_client_error_message(body, len, m, sizeof m);
        free(body);
        return qe_err_set(e, QE_ESERVER, "GET /v1/models: HTTP %ld: %s", http, m);
    }
    json_error_t je;
    json_t *j = json_loadb(body ? body : "", len, 0, &je);
    free(body);
    json_t *data = json_object_get(j, "data");
    if (!json_is_array(data)) {
        json_decref(j);
        return qe_err_set(e, QE_ESERVER, "GET /v1/models: reply has no data array");
    }
    qe_buf ids = QE_BUF_INIT;
    size_t i;
    json_t *m;
    json_array_foreach(data, i, m) {
        const char *id = json_string_value(json_object_get(m, "id"));
        if (!id)
            continue;
        qe_buf_printf(&ids, "%s%s", ids.len ? ", " : "", id);
        if (!strcmp(id, c->o->model) && !c->server_id) {
            c->server_id = strdup(id);
            const char *root = json_string_value(json_object_get(m, "root"));
            c->server_root = xstrdup(root);
            /* vLLM's model card carries max_model_len (prompt + completion) */
            json_t *mml = json_object_get(m, "max_model_len");
            if (json_is_integer(mml) && json_integer_value(mml) > 0 &&
                (!c->max_model_len || json_integer_value(mml) < c->max_model_len))
                c->max_model_len = (long long)json_integer_value(mml);
        }
    }
    json_decref(j);
    if (!c->server_id) {
        rc = qe_err_set(e, QE_ESERVER, "the server does not serve model '%s' (it serves: %s)",
                        c->o->model, ids.len ? qe_buf_str(&ids) : "nothing");
        qe_buf_free(&ids);
        return rc;
    }
    qe_buf_free(&ids);
    return 0;
}

/* ---------- per-task setup ---------- */

static json_t *chat_template_kwargs(const struct ctx *c)
{
    if (!c->chat || c->o->think < 0)
        return NULL;
    return json_pack("{s:b}", "enable_thinking", c->o->think > 0);
}

/* The chat_template_kwargs a chat request carries: --gen-kwargs' object
 * (in merged) with --think's enable_thinking over it, as the body builder
 * merges them; NULL when none (new reference). The prompt rendered for
 * the samples file must use the same. */
static json_t *request_ctk(const struct ctx *c, const json_t *merged)
{
    if (!c->chat)
        return NULL;
    json_t *g = json_object_get(merged, "chat_template_kwargs");
    json_t *r = json_is_object(g) ? json_deep_copy(g) : NULL;
    json_t *t = chat_template_kwargs(c);
    if (t && r) {
        json_object_update(r, t);
        json_decref(t);
    } else if (t) {
        r = t;
    }
    return r;
}

/* Canonical JSON of everything that changes answers (sorted keys). */
static json_t *fingerprint_config(struct ctx *c, struct tstate *ts)
{
    json_t *o = json_object();
    json_t *ctk = chat_template_kwargs(c);
    json_object_set_new(o, "fingerprint_version", json_integer(1));
    json_object_set_new(o, "model", json_string(c->o->model));
    json_object_set_new(o, "server_model", c->server_id ? json_string(c->server_id) : json_null());
    json_object_set_new(o, "server_root", c->server_root ? json_string(c->server_root) : json_null());
    json_object_set_new(o, "task", json_string(ts->name));
    json_object_set_new(o, "task_version", json_string(qe_task_version(ts->t)));
    json_object_set_new(o, "doc_to_text", json_string(qe_task_doc_to_text_template(ts->t)));
    json_object_set_new(o, "num_fewshot", json_integer(qe_task_num_fewshot(ts->t)));
    const char *si = c->o->system_instruction;
    json_object_set_new(o, "system_instruction", si && *si ? json_string(si) : json_null());
    json_object_set_new(o, "endpoint", json_string(c->chat ? "chat" : "completions"));
    json_object_set_new(o, "gen_kwargs", json_deep_copy(ts->merged));
    json_object_set_new(o, "chat_template_kwargs", ctk ? ctk : json_null());
    json_object_set_new(o, "seed", json_integer((json_int_t)ts->seed));
    return o;
}

/* One value of a config diff, cut to 60 bytes with "..." when longer. */
static void diff_value(qe_buf *out, const json_t *v)
{
    if (!v) {
        qe_buf_puts(out, "(absent)");
        return;
    }
    char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    size_t n = d ? strlen(d) : 0;
    if (!d)
        qe_buf_puts(out, "?");
    else if (n <= 60)
        qe_buf_puts(out, d);
    else
        qe_buf_printf(out, "%.57s...", d);
    free(d);
}

/* "gen_kwargs.max_gen_toks: 1024 -> 2048; system_instruction: ..." for every
 * key, at any depth of objects, whose value differs between old and cur. */
static void config_diff_at(const json_t *old, const json_t *cur, const char *path, qe_buf *out)
{
    if (json_is_object(old) && json_is_object(cur)) {
        const char *k;
        json_t *v;
        const json_t *sides[2] = {cur, old};
        for (int side = 0; side < 2; side++) {
            json_object_foreach((json_t *)sides[side], k, v) {
                json_t *o = json_object_get(old, k), *c = json_object_get(cur, k);
                if ((side == 1 && c) || (o && c && json_equal(o, c)))
                    continue; /* compared on the first pass, or equal */
                qe_buf p = QE_BUF_INIT;
                qe_buf_printf(&p, "%s%s%s", path, *path ? "." : "", k);
                config_diff_at(o, c, qe_buf_str(&p), out);
                qe_buf_free(&p);
            }
        }
        return;
    }
    qe_buf_printf(out, "%s%s: ", out->len ? "; " : "", path);
    diff_value(out, old);
    qe_buf_puts(out, " -> ");
    diff_value(out, cur);
}

static void config_diff(const json_t *old, const json_t *cur, qe_buf *out)
{
    config_diff_at(old, cur, "", out);
}

/* Equal JSON, numbers compared by value: 0 and 0.0 are the same setting
 * (lm-eval parses temperature=0 as an int, tasks write 0.0). */
static bool same_by_value(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v) {
            const json_t *w = json_object_get(b, k);
            if (!w || !same_by_value(v, w))
                return false;
        }
        return true;
    }
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same_by_value(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

/* Server unreachable: the newest stored run whose config equals cfg (by
 * value) in everything but what only the server can tell (its model id
 * and root). */
static int find_offline_run(struct ctx *c, struct tstate *ts, const json_t *cfg, qe_err *e)
{
    qe_store_run *runs = NULL;
    size_t nr = 0;
    int rc = qe_store_runs_list(c->store, &runs, &nr, e);
    if (rc)
        return rc;
    json_t *want = json_deep_copy(cfg);
    json_object_del(want, "server_model");
    json_object_del(want, "server_root");
    bool found = false;
    for (size_t i = nr; i-- > 0 && !found;) {
        json_t *old = runs[i].config_json ? json_loads(runs[i].config_json, 0, NULL) : NULL;
        if (json_is_object(old)) {
            json_object_del(old, "server_model");
            json_object_del(old, "server_root");
            if (same_by_value(old, want)) {
                found = true;
                ts->run_id = runs[i].id;
                snprintf(ts->fingerprint, sizeof ts->fingerprint, "%s", runs[i].fingerprint);
            }
        }
        json_decref(old);
    }
    json_decref(want);
    qe_store_runs_free(runs, nr);
    if (!found)
        return qe_err_set(e, QE_ENET, "%s; and the store has no run of %s with this "
                                      "configuration to use instead",
                          c->offline_why, ts->name);
    return 0;
}

/* The max_tokens a request with these merged gen kwargs carries, -1 if none. */
static long long kw_max_tokens(const json_t *merged, long long seed)
{
    json_t *probe = json_object();
    long long v = -1;
    if (probe && !qe_genkw_request(merged, seed, probe, NULL)) {
        json_t *m = json_object_get(probe, "max_tokens");
        if (json_is_integer(m))
            v = (long long)json_integer_value(m);
    }
    json_decref(probe);
    return v;
}

/* The task's gen kwargs merged with --gen-kwargs, its base seed, and the
 * mapping checked once, so a bad max_gen_toks fails before any request.
 * *merged is the caller's (NULL on error). */
static int task_genkw(const qe_task *t, const json_t *cli_kw, long long base_seed,
                      json_t **merged, long long *seed, qe_err *e)
{
    json_t *defaults = qe_task_gen_kwargs(t);
    *merged = qe_genkw_merge(defaults, cli_kw);
    json_decref(defaults);
    if (!*merged)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    *seed = qe_genkw_seed(*merged, base_seed);
    json_t *probe = json_object();
    int rc = probe ? qe_genkw_request(*merged, *seed, probe, e)
                   : qe_err_set(e, QE_ENOMEM, "out of memory");
    json_decref(probe);
    if (rc) {
        qe_err_prefix(e, "%s", qe_task_name(t));
        json_decref(*merged);
        *merged = NULL;
    }
    return rc;
}

/* A max_tokens that does not fit in the server's max_model_len with any
 * prompt makes vLLM refuse every request (HTTP 400, "This model's maximum
 * context length is N tokens. However, you requested X tokens (P in the
 * messages, M in the completion)", its input validation in
 * serving_engine.py; e.g. vllm-project/vllm#20409): say so before asking
 * anything. Prompts that overflow a max_tokens below it still fail one by
 * one, with that message. */
static int check_room(const struct ctx *c, const json_t *cli_kw, qe_err *e)
{
    if (c->max_model_len <= 0)
        return 0;
    for (size_t i = 0; i < c->o->n_tasks; i++) {
        const qe_task *t = qe_task_find(c->o->tasks[i]);
        json_t *merged = NULL;
        long long seed = 0;
        int rc = task_genkw(t, cli_kw, (long long)c->o->seed, &merged, &seed, e);
        long long mt = rc ? -1 : kw_max_tokens(merged, seed);
        json_decref(merged);
        if (rc)
            return rc;
        if (mt >= c->max_model_len)
            return qe_err_set(e, QE_EINVAL,
                              "%s: max_gen_toks %lld does not fit in the server's max_model_len "
                              "%lld (GET /v1/models): every request would be refused; the "
                              "prompt's tokens plus max_gen_toks must fit, e.g. --gen-kwargs "
                              "max_gen_toks=%lld, or serve a longer max_model_len",
                              qe_task_name(t), mt, c->max_model_len, c->max_model_len / 2);
    }
    return 0;
}

/* No run has ts's exact fingerprint: the newest stored run whose config
 * differs from cfg only in how numbers are written is the same run (its
 * answers were asked with the same settings). true and ts->run_id,
 * ts->fingerprint set, with a note saying so. */
static bool reuse_same_by_value(struct ctx *c, struct tstate *ts, const json_t *cfg)
{
    int64_t id;
    if (qe_store_run_find(c->store, ts->fingerprint, &id, NULL) == 0)
        return false; /* the exact one exists */
    qe_store_run *runs = NULL;
    size_t nr = 0;
    bool found = false;
    if (qe_store_runs_list(c->store, &runs, &nr, NULL))
        return false;
    for (size_t i = nr; i-- > 0 && !found;) {
        json_t *old = runs[i].config_json ? json_loads(runs[i].config_json, 0, NULL) : NULL;
        if (json_is_object(old) && same_by_value(old, cfg)) {
            found = true;
            ts->run_id = runs[i].id;
            snprintf(ts->fingerprint, sizeof ts->fingerprint, "%s", runs[i].fingerprint);
            qe_buf d = QE_BUF_INIT;
            config_diff(old, cfg, &d);
            note(c, "%s: continuing the stored run %lld: its settings differ only in how numbers "
                    "are written (%s)",
                 ts->name, (long long)runs[i].id, qe_buf_str(&d));
            qe_buf_free(&d);
        }
        json_decref(old);
    }
    qe_store_runs_free(runs, nr);
    return found;
}

static int setup_task(struct ctx *c, struct tstate *ts, const json_t *cli_kw, qe_err *e)
{
    int rc = qe_task_size(ts->t, &ts->size, e);
    if (rc)
        return rc;
    if (c->o->limit > 0) {
        rc = qe_task_limit(ts->t, c->o->limit, &ts->n_docs, &ts->clamped, e);
        if (rc)
            return rc;
    } else {
        ts->n_docs = ts->size;
    }
    if ((rc = task_genkw(ts->t, cli_kw, (long long)c->o->seed, &ts->merged, &ts->seed, e)))
        return rc;
    ts->ctk = chat_template_kwargs(c);
    qe_runner_body_spec bs = {c->o->model, c->chat, ts->merged, ts->ctk};
    if ((rc = qe_runner_body_new(&bs, &ts->body, e))) {
        qe_err_prefix(e, "%s", ts->name);
        return rc;
    }
    json_t *cfg = fingerprint_config(c, ts);
    char *canon = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
    if (!canon) {
        json_decref(cfg);
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    qe_sha256_hex(canon, strlen(canon), ts->fingerprint);
    if (c->offline) {
        rc = find_offline_run(c, ts, cfg, e);
        free(canon);
        json_decref(cfg);
        return rc;
    }
    if (reuse_same_by_value(c, ts, cfg)) {
        free(canon);
        json_decref(cfg);
        return 0;
    }
    int created = 0;
    rc = qe_store_run_get_or_create(c->store, ts->fingerprint, canon, c->o->model, &ts->run_id,
                                    &created, e);
    if (!rc && created) {
        /* a stored run for the same model and task with another config? */
        qe_store_run *runs = NULL;
        size_t nr = 0;
        if (qe_store_runs_list(c->store, &runs, &nr, NULL) == 0) {
            for (size_t i = nr; i-- > 0;) {
                if (runs[i].id == ts->run_id || !runs[i].config_json)
                    continue;
                json_t *old = json_loads(runs[i].config_json, 0, NULL);
                const char *ot = json_string_value(json_object_get(old, "task"));
                const char *om = json_string_value(json_object_get(old, "model"));
                if (ot && om && !strcmp(ot, ts->name) && !strcmp(om, c->o->model)) {
                    qe_buf d = QE_BUF_INIT;
                    config_diff(old, cfg, &d);
                    note(c,
                         "%s: configuration differs from the stored run %lld (%s): starting a "
                         "new run",
                         ts->name, (long long)runs[i].id, qe_buf_str(&d));
                    qe_buf_free(&d);
                    json_decref(old);
                    break;
                }
                json_decref(old);
            }
            qe_store_runs_free(runs, nr);
        }
    }
    free(canon);
    json_decref(cfg);
    return rc;
}

/* ---------- prompts ---------- */

static int build_messages(struct ctx *c, struct tstate *ts, size_t doc, json_t **msgs, qe_err *e)
{
    qe_prompt_opts po = QE_PROMPT_OPTS_INIT;
    po.system_instruction = c->o->system_instruction;
    return qe_task_messages(ts->t, doc, &po, msgs, e);
}

/* lm-eval <= 0.4.11 local-chat-completions logs
 * json.dumps([{**m, "type": "text"} for m in msgs], ensure_ascii=False). */
static char *messages_dump(const json_t *msgs)
{
    json_t *copy = json_deep_copy(msgs);
    size_t i;
    json_t *m;
    json_array_foreach(copy, i, m) json_object_set_new(m, "type", json_string("text"));
    qe_buf b = QE_BUF_INIT;
    char *out = NULL;
    if (qe_pyjson_dump(&b, copy, QE_PYJSON_COMPACT, 0, NULL) == 0)
        out = qe_buf_detach(&b);
    qe_buf_free(&b);
    json_decref(copy);
    return out;
}

static int render_prompt(struct ctx *c, struct tstate *ts, size_t doc, char **out, qe_err *e)
{
    *out = NULL;
    qe_prompt_opts po = QE_PROMPT_OPTS_INIT;
    po.system_instruction = c->o->system_instruction;
    if (!c->chat) {
        qe_buf b = QE_BUF_INIT;
        int rc = qe_task_context(ts->t, doc, &po, &b, e);
        if (rc) {
            qe_buf_free(&b);
            return rc;
        }
        *out = qe_buf_detach(&b);
        return *out ? 0 : qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    json_t *msgs;
    int rc = build_messages(c, ts, doc, &msgs, e);
    if (rc)
        return rc;
    if (c->render_mode != 2) {
        json_t *tb = json_pack("{s:s,s:O,s:b}", "model", c->o->model, "messages", msgs,
                               "add_generation_prompt", 1);
        json_t *ctk = request_ctk(c, ts->merged);
        if (ctk)
            json_object_set_new(tb, "chat_template_kwargs", ctk);
        char *body = json_dumps(tb, JSON_COMPACT);
        json_decref(tb);
        qe_err re = {0, ""};
        rc = body ? qe_client_render_prompt(&c->copts, c->o->model, body, out, NULL, &re)
                  : QE_ENOMEM;
        free(body);
        if (rc == 0) {
            if (c->render_mode == 0)
                c->render_mode = 1; /* decided on the first doc, before any thread */
        } else if (c->render_mode == 0 && rc == QE_ESERVER) {
            c->render_mode = 2;
            note(c,
                 "the server cannot render prompts (%s): prompts are recorded as the JSON of "
                 "the chat messages, as lm-eval's local-chat-completions logs them",
                 re.msg);
        } else {
            json_decref(msgs);
            return qe_err_set(e, rc ? rc : QE_ENOMEM, "rendering the prompt of %s doc %zu: %s",
                              ts->name, doc, re.msg);
        }
    }
    if (c->render_mode == 2)
        *out = messages_dump(msgs);
    json_decref(msgs);
    return *out ? 0 : qe_err_set(e, QE_ENOMEM, "out of memory");
}

/* ---------- sending ---------- */

/* The request JSON (runner_body.c: byte-identical to dumping a jansson
 * tree, without building one). The repeats of a doc are adjacent in the
 * queue: its messages are built and its prompt escaped once for all of
 * them. Caller holds c->mu. */
static char *build_body(struct ctx *c, const struct rq *q, qe_err *e)
{
    struct tstate *ts = &c->ts[q->task];
    if (!c->val_valid || c->val_task != q->task || c->val_doc != q->doc) {
        c->val_valid = false;
        json_decref(c->msgs_cache);
        c->msgs_cache = NULL;
        if (c->chat && build_messages(c, ts, q->doc, &c->msgs_cache, e))
            return NULL;
        int rc = qe_runner_body_prepare(ts->body, ts->prompts[q->doc], c->msgs_cache,
                                        &c->body_scratch);
        if (rc > 1 || rc < 0) {
            qe_err_set(e, QE_ENOMEM, "out of memory building a request");
            return NULL;
        }
        c->val_fast = rc == 0;
        c->val_valid = true;
        c->val_task = q->task;
        c->val_doc = q->doc;
    }
    long long seed = ts->seed + q->repeat;
    if (!c->val_fast) {
        qe_runner_body_spec bs = {c->o->model, c->chat, ts->merged, ts->ctk};
        return qe_runner_body_reference(&bs, ts->prompts[q->doc], c->msgs_cache, seed, e);
    }
    return qe_runner_body_finish(ts->body, &c->body_scratch, seed, e);
}

static bool stopping(const struct ctx *c)
{
    return c->o->stop && *c->o->stop;
}

static const char *endpoint_path(const struct ctx *c)
{
    return c->chat ? "/v1/chat/completions" : "/v1/completions";
}

/* Tops up ep's client from the shared queue (requests given back by a lost
 * endpoint first). Caller holds c->mu. */
static int feed(struct ep *ep, qe_err *e)
{
    struct ctx *c = ep->c;
    while ((c->nrequeue || c->qpos < c->nq) && qe_client_pending(ep->client) < c->window) {
        if (stopping(c) || ep->gone || c->abort)
            return 0;
        if (c->o->deadline > 0 && now_s() >= c->o->deadline) {
            c->deadline_hit = true;
            return 0;
        }
        uint32_t id;
        bool fresh = c->nrequeue == 0;
        if (fresh)
            id = (uint32_t)c->qpos;
        else
            id = c->requeue[--c->nrequeue];
        struct rq *q = &c->q[id];
        if (!q->body)
            q->body = build_body(c, q, e);
        if (!q->body)
            return e && e->code ? e->code : QE_ENOMEM;
        int rc = qe_client_add(ep->client, id, endpoint_path(c), q->body, e);
        if (rc)
            return rc;
        if (fresh) {
            c->ts[q->task].sent++;
            c->qpos++;
        }
        c->inflight++;
    }
    return 0;
}

static void fmt_dur(char *b, size_t n, double s)
{
    if (!(s >= 0) || s > 360000)
        snprintf(b, n, "?");
    else if (s >= 3600)
        snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)(fmod(s, 3600) / 60));
    else if (s >= 60)
        snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(b, n, "%ds", (int)s);
}

static void progress(struct ctx *c, bool final)
{
    if (!c->o->progress)
        return;
    double t = now_s();
    if (!final && t - c->last_print < 0.25)
        return;
    c->last_print = t;
    qe_buf line = QE_BUF_INIT;
    for (size_t i = 0; i < c->nts; i++) {
        struct tstate *ts = &c->ts[i];
        size_t req = ts->n_docs * (size_t)c->o->repeats;
        size_t have = req - ts->todo + ts->done_now;
        qe_buf_printf(&line, "%s %zu/%zu | ", ts->name, have, req);
    }
    double el = t - c->t0;
    double tps = el > 0 ? c->ctokens / el : 0;
    char eta[32] = "?";
    if (c->done > 0 && el > 0)
        fmt_dur(eta, sizeof eta, (double)(c->total - c->done) * el / (double)c->done);
    qe_buf_printf(&line, "in flight %zu | %.0f tok/s | ETA %s", c->inflight, tps, eta);
    fprintf(stderr, "\r\033[K%s%s", qe_buf_str(&line), final ? "\n" : "");
    fflush(stderr);
    c->printed = true;
    qe_buf_free(&line);
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* After a connection-level failure: 1 if the server is (back) up and the
 * request should be asked again, 0 if it is up anyway (a plain failure) or
 * gone for good, -1 if the user stopped the run while waiting. Blocks the
 * event loop while waiting: with the server down nothing else can finish. */
static int server_back(struct ep *ep, const char *why)
{
    struct ctx *c = ep->c;
    qe_client_opts h = ep->copts;
    h.timeout_ms = 5000;
    h.connect_timeout_ms = 2000;
    if (qe_client_health(&h, NULL) == 0)
        return 0; /* alive: this request failed on its own */
    if (ep->gone || c->o->server_wait_s < 0) {
        ep->gone = true;
        snprintf(ep->gone_why, sizeof ep->gone_why, "the server stopped answering (%s)", why);
        return 0;
    }
    double limit = c->o->server_wait_s > 0 ? c->o->server_wait_s : 60.0;
    double t0 = now_s(), pause = 0.25;
    if (c->o->progress && c->printed)
        fprintf(stderr, "\n");
    if (c->o->progress) {
        char shown[1024]; /* no password on the terminal either */
        qe_client_redact_url(ep->copts.base_url, shown, sizeof shown);
        fprintf(stderr, "qeval: %s stopped answering (%s); waiting up to %.0f s\n", shown, why,
                limit);
    }
    while (now_s() - t0 < limit) {
        if (stopping(c))
            return -1;
        sleep_s(pause);
        if (pause < 2.0)
            pause *= 2;
        if (qe_client_health(&h, NULL) == 0)
            return 1;
    }
    ep->gone = true;
    snprintf(ep->gone_why, sizeof ep->gone_why, "the server stopped answering for %.0f s (%s)",
             limit, why);
    return 0;
}

static void lock(struct ctx *c)
{
    if (c->threads)
        pthread_mutex_lock(&c->mu);
}

static void unlock(struct ctx *c)
{
    if (c->threads)
        pthread_mutex_unlock(&c->mu);
}

/* ---------- group commit ---------- */

/* Copies what the store needs from r (valid only during the callback).
 * Caller holds c->mu. */
static int gc_add(struct ctx *c, uint32_t id, const qe_result *r)
{
    struct gc_buf *g = &c->gc;
    if (g->n == 0)
        c->gc_first = mono_s();
    if (g->n == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 64;
        struct gc_row *nr = realloc(g->rows, nc * sizeof *nr);
        if (!nr)
            return QE_ENOMEM;
        g->rows = nr;
        qe_store_response *ns = realloc(g->scratch, nc * sizeof *ns);
        if (!ns)
            return QE_ENOMEM;
        g->scratch = ns;
        g->cap = nc;
    }
    const char *src[5] = {NULL, NULL, NULL, NULL, NULL};
    if (r->ok) {
        src[0] = r->reply.content;
        src[1] = r->reply.reasoning && *r->reply.reasoning ? r->reply.reasoning : NULL;
        src[2] = r->reply.finish_reason;
        src[3] = r->reply.model;
    } else {
        src[4] = r->error[0] ? r->error : "failed";
    }
    size_t len[5], total = 0;
    for (int i = 0; i < 5; i++) {
        len[i] = src[i] ? strlen(src[i]) + 1 : 0;
        total += len[i];
    }
    struct gc_row *w = &g->rows[g->n];
    memset(w, 0, sizeof *w);
    w->strs = malloc(total ? total : 1);
    if (!w->strs)
        return QE_ENOMEM;
    const char **dst[5] = {&w->content, &w->reasoning, &w->finish, &w->model, &w->error};
    char *p = w->strs;
    for (int i = 0; i < 5; i++) {
        if (!src[i])
            continue;
        memcpy(p, src[i], len[i]);
        *dst[i] = p;
        p += len[i];
    }
    struct rq *q = &c->q[id];
    w->id = id;
    w->ok = r->ok;
    w->ptok = r->ok ? r->reply.prompt_tokens : -1;
    w->ctok = r->ok ? r->reply.completion_tokens : -1;
    w->latency = r->latency_ms;
    w->attempts = q->attempts + r->attempts;
    g->n++;
    g->bytes += total + (q->body ? strlen(q->body) : 0) + sizeof *w;
    return 0;
}

/* The bookkeeping of one answer that has just been committed. */
static void gc_account(struct ctx *c, const struct gc_row *w)
{
    struct rq *q = &c->q[w->id];
    struct tstate *ts = &c->ts[q->task];
    ts->done_now++;
    c->done++;
    if (w->ok) {
        ts->ok_now++;
        if (w->ctok > 0) {
            ts->ctokens += (double)w->ctok;
            c->ctokens += (double)w->ctok;
        }
    } else {
        ts->failed_now++;
        if (!c->first_failure) {
            char buf[1200];
            snprintf(buf, sizeof buf, "%s doc %u repeat %u: %s", ts->name, q->doc, q->repeat,
                     w->error);
            c->first_failure = strdup(buf);
        }
    }
    free(q->body);
    q->body = NULL;
}

/* Writes g's answers to the store: one transaction (one fsync) per task
 * present, in task order, stopping at the first failure. *upto = the
 * number of leading tasks whose rows are committed (all on success).
 * Reads only what does not change while requests are in flight (the
 * queue's keys and bodies of finished requests, prompts, run ids), so the
 * committer thread runs it without c->mu. */
static int gc_commit(struct ctx *c, struct gc_buf *g, size_t *upto, double *slowest,
                     qe_err *err)
{
    *upto = c->nts;
    *slowest = 0;
    for (size_t t = 0; t < c->nts && g->n; t++) {
        struct tstate *ts = &c->ts[t];
        size_t k = 0;
        for (size_t i = 0; i < g->n; i++) {
            const struct gc_row *w = &g->rows[i];
            const struct rq *q = &c->q[w->id];
            if (q->task != t)
                continue;
            qe_store_response *row = &g->scratch[k++];
            memset(row, 0, sizeof *row);
            row->task = ts->name;
            row->doc_id = q->doc;
            row->repeat = (int)q->repeat;
            row->ok = w->ok;
            row->prompt = ts->prompts[q->doc];
            row->request_json = q->body;
            row->content = w->content;
            row->reasoning = w->reasoning;
            row->finish_reason = w->finish;
            row->prompt_tokens = w->ptok;
            row->completion_tokens = w->ctok;
            row->latency_ms = w->latency;
            row->attempts = w->attempts;
            row->error = w->error;
            row->server_model = w->model;
        }
        if (k == 0)
            continue;
        int rc = qe_store_put_responses(c->store, ts->run_id, g->scratch, k, NULL, err);
        double took = qe_store_last_commit_s(c->store);
        if (took > *slowest)
            *slowest = took;
        if (rc) {
            *upto = t;
            return rc;
        }
    }
    return 0;
}

/* After gc_commit: the answers of the first upto tasks are stored and
 * counted; the others (only after a failure) are dropped, to be asked
 * again on the next run. Empties g. Caller holds c->mu. */
static void gc_settle(struct ctx *c, struct gc_buf *g, size_t upto)
{
    for (size_t t = 0; t < upto; t++)
        for (size_t i = 0; i < g->n; i++)
            if (c->q[g->rows[i].id].task == t)
                gc_account(c, &g->rows[i]);
    for (size_t i = 0; i < g->n; i++)
        free(g->rows[i].strs);
    g->n = 0;
    g->bytes = 0;
}

/* A commit failure stops the run: the first error is kept. Caller holds c->mu. */
static void gc_failed(struct ctx *c, int rc, const qe_err *err)
{
    if (!c->fatal.code) {
        if (err && err->code)
            c->fatal = *err;
        else
            qe_err_set(&c->fatal, rc, "%s", qe_status_name(rc));
    }
    c->abort = true;
    if (!c->cm_rc)
        c->cm_rc = rc;
}

/* The loop commits itself: commits are cheap, or there is no committer
 * thread (it could not start). */
static bool loop_commits(const struct ctx *c)
{
    return !c->cm_on || c->cm_inline;
}

/* Commits every buffered answer, here and now (loop_commits). Only then is
 * an answer counted as stored. Caller holds c->mu. */
static int gc_flush(struct ctx *c)
{
    size_t upto = 0;
    double slowest = 0;
    qe_err err = {0, ""};
    int rc = gc_commit(c, &c->gc, &upto, &slowest, &err);
    if (slowest <= GC_SLOW_S)
        c->gc_slow = 0;
    else if (++c->gc_slow >= GC_SLOW_RUN && c->cm_inline && !c->cm_fixed) {
        c->cm_inline = false; /* the committer thread from now on */
    }
    gc_settle(c, &c->gc, upto);
    if (rc)
        gc_failed(c, rc, &err);
    else
        progress(c, false);
    return rc;
}

/* ---------- the committer thread ----------
 *
 * With it, the answers buffered in a loop turn are committed while the
 * loop goes on waiting for the next ones, instead of the loop stopping for
 * the transaction (and its fsync). An answer still counts as stored only
 * once its transaction committed (gc_settle). The loop hands a batch over
 * at its idle hook; when the buffer is full it waits for the committer to
 * take it (bounded memory); before any blocking wait of ours, and at the
 * end, it waits until everything received is committed. */

static void *committer_main(void *arg)
{
    struct ctx *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->gc.n && !c->cm_quit)
            pthread_cond_wait(&c->cm_kick, &c->mu);
        if (!c->gc.n)
            break; /* quit, and nothing left */
        double due = c->gc_first + GC_GATHER_S;
        if (!c->cm_quit && !c->cm_urgent && c->gc.n < GC_GATHER_ROWS && mono_s() < due) {
            struct timespec ts = {(time_t)due, (long)((due - (double)(time_t)due) * 1e9)};
            pthread_cond_timedwait(&c->cm_kick, &c->mu, &ts);
            continue; /* look again: more answers, urgency, or the time is up */
        }
        struct gc_buf t = c->gc_busy; /* empty, keeps its capacity */
        c->gc_busy = c->gc;
        c->gc = t;
        c->cm_busy = true;
        pthread_cond_broadcast(&c->cm_done); /* the buffer has room again */
        pthread_mutex_unlock(&c->mu);
        size_t upto = 0;
        double slowest = 0;
        qe_err err = {0, ""};
        /* slowest is not looked at: once the thread commits, it stays */
        int rc = gc_commit(c, &c->gc_busy, &upto, &slowest, &err);
        pthread_mutex_lock(&c->mu);
        gc_settle(c, &c->gc_busy, upto);
        if (rc)
            gc_failed(c, rc, &err);
        /* no progress line from here: the loop's thread prints it (and
         * its other messages) without two threads writing to stderr */
        c->cm_busy = false;
        pthread_cond_broadcast(&c->cm_done);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Everything received so far is committed (or failed) when this returns
 * 0 (or the commit error). Caller holds c->mu. */
static int gc_sync(struct ctx *c)
{
    if (loop_commits(c))
        return c->gc.n ? gc_flush(c) : c->cm_rc;
    c->cm_urgent++;
    while (c->gc.n || c->cm_busy) {
        pthread_cond_signal(&c->cm_kick);
        pthread_cond_wait(&c->cm_done, &c->mu);
    }
    c->cm_urgent--;
    return c->cm_rc;
}

/* The buffer is full: hand it over (wait until the committer took it), or
 * commit it here without a committer. Caller holds c->mu. */
static int gc_full(struct ctx *c)
{
    if (loop_commits(c))
        return gc_flush(c);
    c->cm_urgent++;
    while (c->gc.n >= GC_MAX_ROWS || c->gc.bytes >= GC_MAX_BYTES) {
        pthread_cond_signal(&c->cm_kick);
        pthread_cond_wait(&c->cm_done, &c->mu);
    }
    c->cm_urgent--;
    return c->cm_rc;
}

static int gc_flush_locking(struct ctx *c)
{
    lock(c);
    int rc = gc_sync(c);
    unlock(c);
    return rc;
}

/* The client's idle hook: the turn's answers go to the committer (or are
 * committed here) before the loop waits again. */
static int on_idle(void *ud)
{
    struct ep *ep = ud;
    struct ctx *c = ep->c;
    lock(c);
    int rc;
    if (!loop_commits(c)) {
        if (c->gc.n)
            pthread_cond_signal(&c->cm_kick);
        rc = c->cm_rc;
    } else {
        rc = c->gc.n ? gc_flush(c) : 0;
    }
    unlock(c);
    return rc;
}

static void gc_free(struct gc_buf *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->rows[i].strs);
    free(g->rows);
    free(g->scratch);
    memset(g, 0, sizeof *g);
}

static int on_done_locked(struct ep *ep, const qe_result *r);

static int on_done(void *ud, const qe_result *r)
{
    struct ep *ep = ud;
    struct ctx *c = ep->c;
    struct rq *q = &c->q[r->id];
    /* a connection-level failure: is the server gone? (waits unlocked) */
    int back = 0;
    if (!r->ok && r->status == QE_ENET && q->server_waits < 3) {
        /* what already arrived is committed before we may wait a minute */
        int frc = gc_flush_locking(c);
        if (frc)
            return frc;
        back = server_back(ep, r->error) + 2; /* 1 stopping, 2 alive/gone, 3 back */
    }
    lock(c);
    int rc;
    if (c->abort) {
        rc = c->fatal.code ? c->fatal.code : QE_EINTR;
    } else if (back == 1) {
        c->inflight--;
        rc = 0; /* stopping: not stored, asked on the next run */
    } else if (back == 3) {
        if (q->server_waits == 0 && !c->noted_back) {
            c->noted_back = true;
            note(c, "the server stopped answering during the run and came back; the "
                    "requests it dropped were asked again");
        }
        q->server_waits++;
        q->attempts += r->attempts;
        rc = qe_client_add(ep->client, r->id, endpoint_path(c), q->body, &c->fatal);
    } else if (back == 2 && ep->gone) {
        /* this endpoint is gone: the request goes back to the queue for
         * another endpoint (or the next run); it is not a failed answer */
        c->requeue[c->nrequeue++] = (uint32_t)r->id;
        c->inflight--;
        rc = 0; /* the other endpoints pick it up when they next feed */
    } else {
        rc = on_done_locked(ep, r);
    }
    if (rc && !c->fatal.code)
        qe_err_set(&c->fatal, rc, "%s", qe_status_name(rc));
    if (rc)
        c->abort = true;
    unlock(c);
    return rc;
}

static int on_done_locked(struct ep *ep, const qe_result *r)
{
    struct ctx *c = ep->c;
    struct rq *q = &c->q[r->id];
    /* The client does not retry a 2xx whose body is garbage or cut short
     * (a proxy hiccup, a server bug); ask again within the same budget. */
    if (!r->ok && r->http_status >= 200 && r->http_status < 300 &&
        q->attempts + r->attempts < c->o->max_attempts && !stopping(c)) {
        q->attempts += r->attempts;
        return qe_client_add(ep->client, r->id, endpoint_path(c), q->body, &c->fatal);
    }
    /* not stored yet: buffered until this turn's commit (gc_flush), which
     * does the bookkeeping of a stored answer */
    int rc = gc_add(c, (uint32_t)r->id, r);
    if (rc)
        return qe_err_set(&c->fatal, rc, "out of memory buffering an answer");
    c->inflight--;
    if (c->gc.n >= GC_MAX_ROWS || c->gc.bytes >= GC_MAX_BYTES) {
        if ((rc = gc_full(c)))
            return rc;
    }
    rc = feed(ep, &c->fatal);
    if (rc)
        return rc;
    progress(c, false);
    return 0;
}

/* ---------- reading back, scoring, writing ---------- */

struct rows_ctx {
    struct row *rows;
    size_t n_docs;
    int repeats;
};

/* One allocation per row for its strings; the prompt is kept for the first
 * repeat only (the one a sample line logs). */
static int row_cb(const qe_store_response *r, void *vctx)
{
    struct rows_ctx *x = vctx;
    if (r->doc_id < 0 || (size_t)r->doc_id >= x->n_docs || r->repeat < 0 || r->repeat >= x->repeats)
        return 0;
    struct row *w = &x->rows[(size_t)r->doc_id * (size_t)x->repeats + (size_t)r->repeat];
    const char *src[4] = {r->content ? r->content : "", r->reasoning, r->finish_reason,
                          r->repeat == 0 ? (r->prompt ? r->prompt : "") : NULL};
    size_t len[4], total = 0;
    for (int i = 0; i < 4; i++) {
        len[i] = src[i] ? strlen(src[i]) + 1 : 0;
        total += len[i];
    }
    free(w->mem); /* a row seen twice (cannot happen: primary key) keeps the last */
    w->mem = malloc(total);
    if (!w->mem)
        return QE_ENOMEM;
    char **dst[4] = {&w->content, &w->reasoning, &w->finish, &w->prompt};
    char *p = w->mem;
    for (int i = 0; i < 4; i++) {
        *dst[i] = NULL;
        if (!src[i])
            continue;
        memcpy(p, src[i], len[i]);
        *dst[i] = p;
        p += len[i];
    }
    w->have = true;
    w->ptok = r->prompt_tokens;
    w->ctok = r->completion_tokens;
    w->latency = r->latency_ms;
    w->attempts = r->attempts;
    return 0;
}

static void rows_free(struct row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        free(rows[i].mem);
    free(rows);
}

static bool cut_at_length(const struct row *w)
{
    return w->finish && !strcmp(w->finish, "length");
}

/* The last <think> of the answer is never closed, or (reasoning parser on)
 * the answer stopped at max_tokens with only reasoning and no content. */
static bool in_think(const struct row *w)
{
    if (cut_at_length(w) && w->reasoning && *w->reasoning && !*w->content)
        return true;
    const char *open = NULL, *p = w->content;
    while ((p = strstr(p, "<think>"))) {
        open = p;
        p += 7;
    }
    return open && !strstr(open, "</think>");
}

/* Unclosed <think> or cut at max_tokens: the answer was truncated. */
static bool is_truncated(const struct row *w)
{
    return cut_at_length(w) || in_think(w);
}

static json_t *sample_extras(const struct row *w, const qe_lm_score *per_repeat, int repeats,
                             const struct row *all)
{
    json_t *x = json_object();
    json_object_set_new(x, "finish_reason", w->finish ? json_string(w->finish) : json_null());
    json_object_set_new(x, "prompt_tokens", w->ptok >= 0 ? json_integer(w->ptok) : json_null());
    json_object_set_new(x, "completion_tokens",
                        w->ctok >= 0 ? json_integer(w->ctok) : json_null());
    json_object_set_new(x, "latency_ms", w->latency >= 0 ? json_real(round(w->latency * 1000) / 1000)
                                                         : json_null());
    json_object_set_new(x, "attempts", json_integer(w->attempts));
    json_object_set_new(x, "truncated", json_boolean(is_truncated(w)));
    if (w->reasoning && *w->reasoning)
        json_object_set_new(x, "reasoning", json_string(w->reasoning));
    if (repeats > 1 && per_repeat) {
        json_t *rep = json_array();
        for (int r = 0; r < repeats; r++) {
            json_t *e = json_object();
            json_object_set_new(e, "exact_match", json_integer(per_repeat[r].f[0].value));
            json_object_set_new(e, "finish_reason",
                                all[r].finish ? json_string(all[r].finish) : json_null());
            json_object_set_new(e, "completion_tokens",
                                all[r].ctok >= 0 ? json_integer(all[r].ctok) : json_null());
            json_array_append_new(rep, e);
        }
        json_object_set_new(x, "qeval_repeats", rep);
    }
    return x;
}

/* Per-task output built in memory. */
struct tout {
    bool complete;
    qe_buf samples;         /* samples JSONL bytes */
    size_t n_filters;       /* lm-eval's filters, plus "math-verify" with --scorer math */
    char filter[3][24];
    double value[3], stderr_v[3];
    int stderr_na[3];
    char task_hash[65];
    size_t truncated;
    /* diagnostics (first answer of each doc) */
    size_t n_correct, cut_length, cut_in_think;
    long long max_tokens;
    size_t math_correct, math_undecided, verifier_only;
    long long vo_doc;
    char *vo_resp, *vo_gold; /* owned until moved to the summary */
};

/* The max_tokens a request of ts carries, -1 if none. */
static long long sent_max_tokens(const struct tstate *ts)
{
    return kw_max_tokens(ts->merged, ts->seed);
}

char *qe_run_example_text(const char *s)
{
    qe_buf b = QE_BUF_INIT;
    bool sp = false, in_math = false, after_open = false;
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') {
            sp = b.len > 0;
            continue;
        }
        bool delim = *p == '$';
        size_t dl = delim && p[1] == '$' ? 2 : 1; /* $$ is one delimiter */
        /* a space goes out unless it is just inside a math span: after its
         * opening $ or before its closing one */
        if (sp && !after_open && !(delim && in_math))
            qe_buf_putc(&b, ' ');
        sp = false;
        if (delim) {
            qe_buf_append(&b, p, dl);
            p += dl - 1;
            in_math = !in_math;
            after_open = in_math;
        } else {
            qe_buf_putc(&b, *p);
            after_open = false;
        }
    }
    char *t = qe_buf_detach(&b);
    size_t n = t ? strlen(t) : 0;
    if (n > 160) {
        size_t cut = n - 157;
        while (cut < n && ((unsigned char)t[cut] & 0xC0) == 0x80)
            cut++; /* not inside a UTF-8 sequence */
        memmove(t + 3, t + cut, n - cut + 1);
        memcpy(t, "...", 3);
    }
    return t;
}

/* The math verifier's sample line: lm-eval's line for the first filter,
 * renamed "math-verify", with the extracted answer as filtered_resps, the
 * verdict as the metric and a "math_verify" object saying why (the layout
 * of qeval rescore --scorer math --write-dir). */
static json_t *math_sample(const json_t *lm, const char *metric, const char *gold,
                           const qe_verify_result *vr, int value)
{
    json_t *o = json_deep_copy(lm);
    if (!o)
        return NULL;
    json_t *why = json_pack("{s:o, s:s, s:s, s:s, s:s}", "verdict",
                            vr->verdict == QE_VERDICT_UNDECIDED ? json_null()
                                                                : json_boolean(vr->verdict == 1),
                            "reason", vr->reason, "gold", gold, "extracted", vr->extracted,
                            "method", qe_extract_method_name(vr->extract_method));
    int rc = why ? 0 : -1;
    rc |= json_object_set_new(o, "filtered_resps", json_pack("[s]", vr->extracted));
    rc |= json_object_set_new(o, "filter", json_string(QE_RESCORE_MATH_FILTER));
    rc |= json_object_set_new(o, metric, json_integer(value));
    rc |= json_object_set_new(o, "math_verify", why);
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Per-task scratch of the streamed sample lines. */
struct str_arrays {
    char (*hashes)[3][65]; /* per doc: doc, prompt, target hashes */
    const char **resps, **finish;
    int *value;
    long long *ctok;
};

/* Scores the K answers of one doc into sc[0..K). The first fully; the
 * others only need their verdicts (sample_extras), and an answer identical
 * to one of the last few scored gets that one's verdicts without scoring
 * again (scoring is a pure function of task, doc and response; greedy
 * repeats are often identical). */
#define SCORE_MEMO 4
static int score_repeats(const struct tstate *ts, const json_t *doc, const struct row *all, int K,
                         qe_lm_score *sc, qe_err *e)
{
    int memo[SCORE_MEMO], nmemo = 0;
    for (int r = 0; r < K; r++) {
        int hit = -1;
        for (int j = 0; r > 0 && j < nmemo && hit < 0; j++)
            if (!strcmp(all[memo[j]].content, all[r].content))
                hit = memo[j];
        if (hit >= 0) {
            memset(&sc[r], 0, sizeof sc[r]);
            sc[r].n = sc[hit].n;
            for (size_t f = 0; f < sc[hit].n; f++) {
                memcpy(sc[r].f[f].filter, sc[hit].f[f].filter, sizeof sc[r].f[f].filter);
                sc[r].f[f].metric = sc[hit].f[f].metric;
                sc[r].f[f].value = sc[hit].f[f].value;
            }
            continue;
        }
        int rc = qe_lm_score_doc(ts->name, doc, all[r].content, &sc[r], e);
        if (rc)
            return rc;
        memo[nmemo < SCORE_MEMO ? nmemo++ : r % SCORE_MEMO] = r;
    }
    return 0;
}

static int build_task_output(struct ctx *c, struct tstate *ts, struct tout *out, qe_err *e)
{
    int K = c->o->repeats;
    size_t n = ts->n_docs * (size_t)K;
    struct rows_ctx rx = {calloc(n ? n : 1, sizeof(struct row)), ts->n_docs, K};
    if (!rx.rows)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    int rc = qe_store_foreach_answers(c->store, ts->run_id, ts->name, row_cb, &rx, e);
    if (rc) {
        rows_free(rx.rows, n);
        return rc == QE_ENOMEM ? qe_err_set(e, rc, "out of memory") : rc;
    }
    for (size_t i = 0; i < n; i++)
        if (!rx.rows[i].have) {
            rows_free(rx.rows, n);
            out->complete = false;
            return 0;
        }
    out->complete = true;
    qe_lm_score *sc = calloc((size_t)K * (ts->n_docs ? ts->n_docs : 1), sizeof *sc);
    double *vals[3];
    json_t **samples[3];
    bool oom = !sc;
    for (int f = 0; f < 3; f++) {
        vals[f] = calloc(ts->n_docs + 1, sizeof(double));
        samples[f] = calloc(ts->n_docs + 1, sizeof(json_t *));
        oom |= !vals[f] || !samples[f];
    }
    bool math_files = c->o->scorer == QE_RUN_SCORER_MATH;
    qe_verify_scratch *vs = NULL;
    /* lines streamed into per-filter buffers (runner_sample), except with
     * --scorer math, whose extra lines are edited copies of the trees */
    bool stream = !math_files;
    struct str_arrays sa;
    memset(&sa, 0, sizeof sa);
    qe_buf fbuf[3] = {QE_BUF_INIT, QE_BUF_INIT, QE_BUF_INIT}, docj = QE_BUF_INIT,
           kwj = QE_BUF_INIT;
    if (stream) {
        sa.hashes = calloc(ts->n_docs + 1, sizeof *sa.hashes);
        sa.resps = calloc((size_t)K, sizeof *sa.resps);
        sa.finish = calloc((size_t)K, sizeof *sa.finish);
        sa.value = calloc((size_t)K, sizeof *sa.value);
        sa.ctok = calloc((size_t)K, sizeof *sa.ctok);
        oom |= !sa.hashes || !sa.resps || !sa.finish || !sa.value || !sa.ctok;
        if (!oom && qe_pyjson_dump(&kwj, ts->merged, QE_PYJSON_COMPACT, 0, e)) {
            rc = e && e->code ? e->code : QE_ENOMEM;
            goto done;
        }
    }
    vs = qe_verify_scratch_new();
    if (oom || !vs) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto done;
    }
    out->max_tokens = sent_max_tokens(ts);
    out->vo_doc = -1;
    const char *metric = qe_task_metric(ts->t);
    for (size_t d = 0; d < ts->n_docs && !rc; d++) {
        json_t *doc = qe_task_doc(ts->t, d, e);
        if (!doc) {
            rc = e && e->code ? e->code : QE_EINVAL;
            break;
        }
        const struct row *all = &rx.rows[d * (size_t)K];
        if ((rc = score_repeats(ts, doc, all, K, &sc[d * (size_t)K], e)))
            break;
        const qe_lm_score *s0 = &sc[d * (size_t)K];
        if (is_truncated(&all[0]))
            out->truncated++;
        out->cut_length += cut_at_length(&all[0]);
        out->cut_in_think += in_think(&all[0]);
        out->n_correct += s0->n && s0->f[0].value;
        /* the math verifier's verdict, for the diagnostics and --scorer math */
        char *gold = NULL;
        qe_err ge = {0, ""};
        qe_verify_result vr;
        memset(&vr, 0, sizeof vr);
        int mv = QE_VERDICT_UNDECIDED;
        if (qe_rescore_math_gold(ts->name, doc, &gold, &ge) == 0) {
            qe_verify_opts vo;
            qe_verify_opts_init(&vo);
            vo.scratch = vs;
            vo.no_canon = 1;
            mv = qe_rescore_math_verify(ts->name, gold, all[0].content, &vo, &vr);
            if (mv == QE_ENOMEM) {
                free(gold);
                rc = qe_err_set(e, QE_ENOMEM, "out of memory");
                break;
            }
        } else if (ge.code == QE_ENOMEM) {
            rc = qe_err_set(e, QE_ENOMEM, "out of memory");
            break;
        } else {
            snprintf(vr.reason, sizeof vr.reason, "no gold: %.*s", (int)(sizeof vr.reason - 16), ge.msg);
        }
        out->math_correct += mv == QE_VERDICT_TRUE;
        out->math_undecided += mv == QE_VERDICT_UNDECIDED;
        if (mv == QE_VERDICT_TRUE && s0->n && !s0->f[0].value) {
            if (!out->verifier_only++) {
                out->vo_doc = (long long)d;
                out->vo_resp = qe_run_example_text(all[0].content);
                out->vo_gold = xstrdup(gold);
            }
        }
        out->n_filters = s0->n;
        /* the same for every filter: made once per doc */
        json_t *extras = NULL;
        qe_runner_sample rs;
        if (stream) {
            qe_buf_reset(&docj);
            if ((rc = qe_pyjson_dump(&docj, doc, QE_PYJSON_COMPACT, 0, e))) {
                free(gold);
                break;
            }
            char(*h)[65] = sa.hashes[d];
            const char *pr = all[0].prompt ? all[0].prompt : "";
            const char *tg = s0->target ? s0->target : "";
            if ((rc = qe_hash_doc(doc, h[0], e))) {
                free(gold);
                break;
            }
            qe_hash_text(pr, strlen(pr), h[1]);
            qe_hash_text(tg, strlen(tg), h[2]);
            for (int r = 0; r < K; r++) {
                sa.resps[r] = all[r].content;
                sa.finish[r] = all[r].finish;
                sa.value[r] = sc[d * (size_t)K + (size_t)r].f[0].value;
                sa.ctok[r] = all[r].ctok;
            }
            memset(&rs, 0, sizeof rs);
            rs.doc_id = (long long)d;
            rs.doc_json = qe_buf_str(&docj);
            rs.target = s0->target;
            rs.prompt = all[0].prompt;
            rs.gen_kwargs_json = qe_buf_str(&kwj);
            rs.resps = sa.resps;
            rs.n_resps = (size_t)K;
            rs.metric = metric;
            rs.doc_hash = h[0];
            rs.prompt_hash = h[1];
            rs.target_hash = h[2];
            rs.finish_reason = all[0].finish;
            rs.prompt_tokens = all[0].ptok;
            rs.completion_tokens = all[0].ctok;
            rs.latency_ms = all[0].latency;
            rs.attempts = all[0].attempts;
            rs.truncated = is_truncated(&all[0]);
            rs.reasoning = all[0].reasoning;
            rs.n_repeats = (size_t)K;
            rs.rep_value = sa.value;
            rs.rep_finish = sa.finish;
            rs.rep_ctok = sa.ctok;
        }
        for (size_t f = 0; f < s0->n && !rc; f++) {
            snprintf(out->filter[f], sizeof out->filter[f], "%s", s0->f[f].filter);
            double v = s0->f[f].value;
            vals[f][d] = v;
            if (stream) {
                rs.filtered = s0->f[f].filtered_resp;
                rs.filter = s0->f[f].filter;
                rs.value = s0->f[f].value;
                int w = qe_runner_sample_write(&fbuf[f], &rs);
                if (w == 0)
                    continue;
                if (w != 1) {
                    rc = qe_err_set(e, QE_ENOMEM, "out of memory");
                    break;
                }
                /* not valid UTF-8: the tree path below, which refuses it */
            }
            if (!extras)
                extras = sample_extras(&all[0], &sc[d * (size_t)K], K, all);
            qe_lmeval_sample_in in;
            memset(&in, 0, sizeof in);
            in.doc_id = (long long)d;
            in.doc = doc;
            in.target = s0->target;
            in.prompt = all[0].prompt;
            in.gen_kwargs = ts->merged;
            in.response = all[0].content;
            in.filtered = s0->f[f].filtered_resp;
            in.filter = s0->f[f].filter;
            in.n_metrics = 1;
            in.metric_names = &metric;
            in.metric_values = &v;
            in.int_metrics = 1;
            in.extras = extras;
            json_t *smp = qe_lmeval_sample_build(&in, e);
            if (!smp) {
                rc = e && e->code ? e->code : QE_ENOMEM;
                break;
            }
            if (K > 1) { /* lm-eval: resps [[r0, r1, ...]], filtered take_first */
                json_t *inner = json_array();
                for (int r = 0; r < K; r++)
                    json_array_append_new(inner, json_string(all[r].content));
                json_object_set_new(smp, "resps", json_pack("[o]", inner));
            }
            if (stream) {
                rc = qe_lmeval_sample_format(&fbuf[f], smp, e);
                json_decref(smp);
            } else {
                samples[f][d] = smp;
            }
        }
        json_decref(extras);
        if (!rc && math_files && s0->n) {
            size_t f = s0->n;
            snprintf(out->filter[f], sizeof out->filter[f], "%s", QE_RESCORE_MATH_FILTER);
            vals[f][d] = mv == QE_VERDICT_TRUE;
            samples[f][d] = math_sample(samples[0][d], metric, gold ? gold : "", &vr,
                                        mv == QE_VERDICT_TRUE);
            if (!samples[f][d])
                rc = qe_err_set(e, QE_ENOMEM, "out of memory");
            out->n_filters = s0->n + 1;
        }
        free(gold);
    }
    if (rc)
        goto done;
    /* lm-eval logs filter-major: every doc for the first filter, then the next */
    qe_hash_task *th = qe_hash_task_new();
    if (!th) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t f = 0; f < out->n_filters && !rc; f++) {
        if (stream && !out->samples.len) { /* the first filter's lines: moved, not copied */
            qe_buf_free(&out->samples);
            out->samples = fbuf[f];
            fbuf[f] = (qe_buf)QE_BUF_INIT;
        } else if (stream && fbuf[f].len &&
                   qe_buf_append(&out->samples, fbuf[f].data, fbuf[f].len)) {
            rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        }
        for (size_t d = 0; d < ts->n_docs && !rc; d++) {
            if (stream) {
                rc = qe_hash_task_add(th, sa.hashes[d][0], sa.hashes[d][1], sa.hashes[d][2]);
                continue;
            }
            json_t *smp = samples[f][d];
            rc = qe_lmeval_sample_format(&out->samples, smp, e);
            if (!rc)
                rc = qe_hash_task_add(th, json_string_value(json_object_get(smp, "doc_hash")),
                                      json_string_value(json_object_get(smp, "prompt_hash")),
                                      json_string_value(json_object_get(smp, "target_hash")));
        }
        if (ts->n_docs > 0) {
            out->value[f] = qe_lmeval_mean(vals[f], ts->n_docs, QE_LMEVAL_SUM_FOLD);
            out->stderr_na[f] =
                qe_lmeval_mean_stderr(vals[f], ts->n_docs, QE_LMEVAL_SUM_FOLD, &out->stderr_v[f]) != 0;
        } else {
            out->value[f] = NAN;
            out->stderr_na[f] = 1;
        }
    }
    if (!rc)
        rc = qe_hash_task_final(th, out->task_hash);
    qe_hash_task_free(th);
done:
    for (size_t i = 0; sc && i < (size_t)K * ts->n_docs; i++)
        qe_lm_score_free(&sc[i]);
    free(sc);
    for (int f = 0; f < 3; f++) {
        for (size_t d = 0; samples[f] && d < ts->n_docs; d++)
            json_decref(samples[f][d]);
        free(samples[f]);
        free(vals[f]);
    }
    qe_verify_scratch_free(vs);
    rows_free(rx.rows, n);
    for (int f = 0; f < 3; f++)
        qe_buf_free(&fbuf[f]);
    qe_buf_free(&docj);
    qe_buf_free(&kwj);
    free(sa.hashes);
    free(sa.resps);
    free(sa.finish);
    free(sa.value);
    free(sa.ctok);
    return rc;
}

static char *model_args_string(struct ctx *c, const json_t *cli_kw)
{
    char full[600], url[600];
    const char *path = c->chat ? "/v1/chat/completions" : "/v1/completions";
    if (qe_client_url(&c->copts, path, full, sizeof full))
        snprintf(url, sizeof url, "?");
    else
        qe_client_redact_url(full, url, sizeof url); /* results files: no password */
    qe_buf b = QE_BUF_INIT;
    qe_buf_printf(&b, "model=%s,base_url=%s,num_concurrent=%d,max_retries=%d,timeout=%g",
                  c->o->model, url, c->o->num_concurrent, c->o->max_attempts, c->o->timeout_s);
    /* the thinking switch, as lm-eval's vllm model_args carry it
     * (enable_thinking=False), so summarize and compare can tell a
     * think-off run from a think-on one */
    json_t *ctk = request_ctk(c, cli_kw);
    json_t *th = json_object_get(ctk, "enable_thinking");
    if (json_is_boolean(th))
        qe_buf_printf(&b, ",enable_thinking=%s", json_is_true(th) ? "True" : "False");
    json_decref(ctk);
    return qe_buf_detach(&b);
}

/* The output record of a digest: the files an earlier run of the same
 * evaluation wrote, or was about to write. The record is committed before
 * the files are written, so a kill -9 between them leaves a record whose
 * files are (partly) missing, and the next run completes it at the same
 * paths with the same clock fields: byte-identical files, never a second
 * results file. Records of older versions carry no clock fields; those
 * only count when all their files exist. */
struct written {
    bool found;    /* a usable record */
    bool complete; /* every file it names exists */
    bool timed;    /* t_start/t_end recorded */
    double t_start, t_end;
    char date_id[32];
    char *results;
    json_t *samples; /* task -> path */
};

static void written_free(struct written *w)
{
    free(w->results);
    json_decref(w->samples);
    memset(w, 0, sizeof *w);
}

static void find_written(struct ctx *c, const char *digest, struct written *w)
{
    qe_store_run *runs = NULL;
    size_t nr = 0;
    memset(w, 0, sizeof *w);
    if (qe_store_runs_list(c->store, &runs, &nr, NULL))
        return;
    char prefix[80];
    snprintf(prefix, sizeof prefix, "results:%s:", digest);
    size_t plen = strlen(prefix);
    for (size_t i = nr; i-- > 0 && !w->found;) {
        if (strncmp(runs[i].fingerprint, prefix, plen) || !runs[i].config_json)
            continue;
        json_t *j = json_loads(runs[i].config_json, 0, NULL);
        const char *rp = json_string_value(json_object_get(j, "results"));
        json_t *sp = json_object_get(j, "samples");
        json_t *ts = json_object_get(j, "t_start"), *te = json_object_get(j, "t_end");
        const char *date = runs[i].fingerprint + plen;
        bool complete = rp && json_is_object(sp) && access(rp, F_OK) == 0;
        bool ok = rp && json_is_object(sp) && strlen(date) < sizeof w->date_id;
        const char *k;
        json_t *v;
        json_object_foreach(sp, k, v) {
            if (!json_is_string(v))
                ok = false;
            else if (access(json_string_value(v), F_OK))
                complete = false;
        }
        bool timed = json_is_real(ts) && json_is_real(te);
        if (ok && (complete || timed)) {
            w->found = true;
            w->complete = complete;
            w->timed = timed;
            w->t_start = timed ? json_real_value(ts) : 0;
            w->t_end = timed ? json_real_value(te) : 0;
            snprintf(w->date_id, sizeof w->date_id, "%s", date);
            w->results = strdup(rp);
            w->samples = json_incref(sp);
            if (!w->results)
                written_free(w);
        }
        json_decref(j);
    }
    qe_store_runs_free(runs, nr);
}

/* The lm-eval results object of the complete tasks, clock fields from
 * t_start and t_end; NULL and e on failure. */
static json_t *build_results(struct ctx *c, struct tout *outs, double t_start, double t_end,
                             qe_err *e)
{
    json_t *cli_kw = NULL;
    qe_genkw_parse(c->o->gen_kwargs, &cli_kw, NULL);
    char *margs = model_args_string(c, cli_kw);
    qe_lmeval_results_info info;
    memset(&info, 0, sizeof info);
    info.model = c->chat ? "local-chat-completions" : "local-completions";
    info.model_args = margs;
    info.model_name = c->o->model;
    info.has_limit = c->o->limit > 0;
    info.limit = c->o->limit;
    /* lm-eval: `if not gen_kwargs: gen_kwargs = None`, so none given is null */
    info.gen_kwargs = json_object_size(cli_kw) ? cli_kw : NULL;
    info.date = t_start;
    info.system_instruction =
        c->o->system_instruction && *c->o->system_instruction ? c->o->system_instruction : NULL;
    /* lm-eval's local-chat-completions has no tokenizer, so its
     * chat_template() is "" (the server renders the template); raw
     * completions without a template: null. */
    info.chat_template = c->chat ? "" : NULL;
    info.start_time = t_start;
    info.end_time = t_end;
    info.version = RUNNER_VERSION;
    json_t *res = qe_lmeval_results_new(&info, e);
    free(margs);
    json_decref(cli_kw);
    if (!res) {
        if (e && !e->code)
            qe_err_set(e, QE_ENOMEM, "out of memory");
        return NULL;
    }
    int rc = 0;
    for (size_t i = 0; i < c->nts && !rc; i++) {
        struct tstate *ts = &c->ts[i];
        struct tout *to = &outs[i];
        if (!to->complete)
            continue;
        json_t *cfg = qe_task_config(ts->t);
        if (json_is_object(cfg) && json_object_get(cfg, "generation_kwargs"))
            json_object_set(cfg, "generation_kwargs", ts->merged);
        /* each sample's resps holds --repeats answers, as a lm-eval task
         * with `repeats: K` writes them */
        if (json_is_object(cfg) &&
            json_object_set_new(cfg, "repeats", json_integer(c->o->repeats)) != 0)
            rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        for (size_t f = 0; f < to->n_filters && !rc; f++) {
            qe_lmeval_task_in ti;
            memset(&ti, 0, sizeof ti);
            ti.task = ts->name;
            ti.metric = qe_task_metric(ts->t);
            ti.filter = to->filter[f];
            ti.value = to->value[f];
            ti.stderr_na = to->stderr_na[f];
            ti.stderr_val = to->stderr_v[f];
            ti.n_original = (long)ts->size;
            ti.n_effective = (long)ts->n_docs;
            ti.n_shot = qe_task_num_fewshot(ts->t);
            ti.version = qe_task_version_number(ts->t);
            ti.config = cfg;
            ti.task_hash = c->o->log_samples ? to->task_hash : NULL;
            rc = qe_lmeval_results_add_task(res, &ti, e);
        }
        json_decref(cfg);
    }
    if (rc) {
        json_decref(res);
        return NULL;
    }
    return res;
}

/* Digest of everything in the outputs but the clock: identical digest =
 * identical files. */
static int results_digest(struct ctx *c, struct tout *outs, json_t *res, char digest[65], qe_err *e)
{
    json_t *stable = json_deep_copy(res);
    if (!stable)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    json_object_del(stable, "date");
    json_object_del(stable, "start_time");
    json_object_del(stable, "end_time");
    json_object_del(stable, "total_evaluation_time_seconds");
    qe_buf d = QE_BUF_INIT;
    int rc = qe_pyjson_dump(&d, stable, 2, 0, e);
    qe_buf_printf(&d, "\nlog_samples=%d output=%s name=%s\n", c->o->log_samples, c->o->output_path,
                  c->o->output_name ? c->o->output_name : "");
    for (size_t i = 0; i < c->nts; i++)
        if (outs[i].complete && c->o->log_samples)
            qe_buf_append(&d, outs[i].samples.data ? outs[i].samples.data : "", outs[i].samples.len);
    qe_sha256_hex(d.data ? d.data : "", d.len, digest);
    qe_buf_free(&d);
    json_decref(stable);
    return rc;
}

/* Writes path unless it exists: an existing file was renamed into place
 * whole by the atomic writer, from the same content. */
static int write_missing(const char *path, const char *data, size_t n, qe_err *e)
{
    if (access(path, F_OK) == 0)
        return 0;
    return qe_lmeval_write_file(path, data ? data : "", n, e);
}

static int write_outputs(struct ctx *c, struct tout *outs, double t_start, qe_run_summary *s,
                         qe_err *e)
{
    size_t ncomplete = 0;
    for (size_t i = 0; i < c->nts; i++)
        ncomplete += outs[i].complete;
    if (!ncomplete)
        return 0;
    double t_end = now_s();
    json_t *res = build_results(c, outs, t_start, t_end, e);
    if (!res)
        return e && e->code ? e->code : QE_ENOMEM;
    char digest[65] = "";
    int rc = results_digest(c, outs, res, digest, e);
    qe_buf base = QE_BUF_INIT;
    if (c->o->output_name)
        qe_buf_printf(&base, "%s/%s.json", c->o->output_path, c->o->output_name);
    else
        qe_buf_puts(&base, c->o->output_path);
    char now_id[32];
    qe_lmeval_date_id(t_end, now_id);
    /* the atomic writer's temp files left in the output directory by a run
     * killed while writing: removed when their writer is gone (never any
     * results or samples file) */
    for (size_t i = 0; i < c->nts && !rc; i++) {
        if (!outs[i].complete)
            continue;
        char *rp0 = NULL, *sp0 = NULL;
        qe_err pe = {0, ""};
        if (!qe_lmeval_paths(qe_buf_str(&base), c->o->model, now_id, c->ts[i].name, &rp0, &sp0, &pe))
            qe_lmeval_remove_stale_temps(rp0);
        free(rp0);
        free(sp0);
        break;
    }
    struct written w;
    memset(&w, 0, sizeof w);
    if (!rc)
        find_written(c, digest, &w);
    if (!rc && w.found && w.complete) {
        for (size_t i = 0; i < c->nts; i++) {
            if (!outs[i].complete)
                continue;
            s->tasks[i].results_path = strdup(w.results);
            const char *sp = json_string_value(json_object_get(w.samples, c->ts[i].name));
            s->tasks[i].samples_path = xstrdup(sp);
            s->tasks[i].results_reused = true;
        }
        written_free(&w);
        json_decref(res);
        qe_buf_free(&base);
        return 0;
    }
    char date_id[32];
    if (!rc && w.found) {
        /* an earlier run recorded these files and was killed writing them:
         * the same paths, the same clock, so the same bytes */
        snprintf(date_id, sizeof date_id, "%s", w.date_id);
        json_decref(res);
        res = build_results(c, outs, w.t_start, w.t_end, e);
        if (!res)
            rc = e && e->code ? e->code : QE_ENOMEM;
    } else {
        memcpy(date_id, now_id, sizeof date_id);
    }
    /* every path, recorded (committed) before any file is written */
    char *rpath = NULL;
    char **spaths = calloc(c->nts, sizeof *spaths);
    if (!spaths && !rc)
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
    json_t *wsamples = json_object();
    for (size_t i = 0; i < c->nts && !rc; i++) {
        if (!outs[i].complete)
            continue;
        free(rpath);
        rpath = NULL;
        rc = qe_lmeval_paths(qe_buf_str(&base), c->o->model, date_id, c->ts[i].name, &rpath,
                             &spaths[i], e);
        if (!rc && c->o->log_samples)
            json_object_set_new(wsamples, c->ts[i].name, json_string(spaths[i]));
    }
    if (!rc && !w.found) {
        json_t *rec = json_pack("{s:s, s:O, s:f, s:f}", "results", rpath, "samples", wsamples,
                                "t_start", t_start, "t_end", t_end);
        char *cj = rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        char fp[200];
        snprintf(fp, sizeof fp, "results:%s:%s", digest, date_id);
        int64_t rid;
        rc = cj ? qe_store_run_get_or_create(c->store, fp, cj, c->o->model, &rid, NULL, e)
                : qe_err_set(e, QE_ENOMEM, "out of memory");
        free(cj);
        json_decref(rec);
    }
    for (size_t i = 0; i < c->nts && !rc; i++) {
        if (!outs[i].complete || !c->o->log_samples)
            continue;
        rc = write_missing(spaths[i], outs[i].samples.data, outs[i].samples.len, e);
        if (!rc) {
            s->tasks[i].samples_path = spaths[i];
            spaths[i] = NULL;
        }
    }
    if (!rc) {
        qe_buf txt = QE_BUF_INIT;
        rc = qe_lmeval_results_format(&txt, res, e);
        if (!rc)
            rc = write_missing(rpath, txt.data, txt.len, e);
        qe_buf_free(&txt);
    }
    if (!rc)
        for (size_t i = 0; i < c->nts; i++)
            if (outs[i].complete)
                s->tasks[i].results_path = strdup(rpath);
    for (size_t i = 0; spaths && i < c->nts; i++)
        free(spaths[i]);
    free(spaths);
    free(rpath);
    json_decref(wsamples);
    written_free(&w);
    qe_buf_free(&base);
    json_decref(res);
    return rc;
}

/* ---------- rendering every prompt still needed ---------- */

struct render_pool {
    struct ctx *c;
    struct rq *todo;   /* one entry per distinct (task, doc) */
    size_t n, next, done;
    pthread_mutex_t mu;
    int rc;
    qe_err err;
};

static void *render_worker(void *arg)
{
    struct render_pool *p = arg;
    struct ctx *c = p->c;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        if (p->rc || p->next >= p->n) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        size_t j = p->next++;
        pthread_mutex_unlock(&p->mu);
        struct tstate *ts = &c->ts[p->todo[j].task];
        qe_err e = {0, ""};
        char *out = NULL;
        int rc = stopping(c) ? qe_err_set(&e, QE_EINTR, "interrupted before any request was sent")
                             : render_prompt(c, ts, p->todo[j].doc, &out, &e);
        pthread_mutex_lock(&p->mu);
        if (rc && !p->rc) {
            p->rc = rc;
            p->err = e;
        }
        ts->prompts[p->todo[j].doc] = out; /* distinct docs: no two threads share a slot */
        p->done++;
        pthread_mutex_unlock(&p->mu);
    }
}

/* Renders the prompt of every doc still to ask: the first one alone (it
 * decides between /tokenize and the JSON fallback), the rest on up to 8
 * threads, since each render is two short round trips to the server. */
static int render_all(struct ctx *c, qe_err *e)
{
    struct render_pool p;
    memset(&p, 0, sizeof p);
    p.c = c;
    p.todo = calloc(c->nq + 1, sizeof *p.todo);
    if (!p.todo)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    for (size_t j = 0; j < c->nq; j++) {
        const struct rq *q = &c->q[j];
        if (p.n && p.todo[p.n - 1].task == q->task && p.todo[p.n - 1].doc == q->doc)
            continue; /* repeats of one doc are adjacent in the queue */
        p.todo[p.n++] = *q;
    }
    int rc = 0;
    if (p.n) {
        struct tstate *ts = &c->ts[p.todo[0].task];
        rc = stopping(c) ? qe_err_set(e, QE_EINTR, "interrupted before any request was sent")
                         : render_prompt(c, ts, p.todo[0].doc, &ts->prompts[p.todo[0].doc], e);
        p.next = p.done = 1;
    }
    if (!rc && p.n > 1) {
        pthread_mutex_init(&p.mu, NULL);
        size_t nt = (size_t)c->o->num_concurrent;
        if (nt > 8)
            nt = 8;
        if (nt > p.n - 1)
            nt = p.n - 1;
        pthread_t th[8];
        size_t started = 0;
        for (; started < nt; started++)
            if (pthread_create(&th[started], NULL, render_worker, &p))
                break;
        if (started == 0)
            render_worker(&p); /* no threads: do it here */
        while (started) {
            pthread_mutex_lock(&p.mu);
            size_t done = p.done, n = p.n;
            bool finished = p.next >= p.n || p.rc;
            pthread_mutex_unlock(&p.mu);
            if (c->o->progress && c->chat && now_s() - c->last_print > 0.25) {
                c->last_print = now_s();
                fprintf(stderr, "\r\033[Krendering prompts on the server: %zu/%zu", done, n);
                c->printed = true;
            }
            if (finished)
                break;
            sleep_s(0.02);
        }
        for (size_t i = 0; i < started; i++)
            pthread_join(th[i], NULL);
        pthread_mutex_destroy(&p.mu);
        if (p.rc) {
            rc = p.rc;
            if (e)
                *e = p.err;
        }
    }
    free(p.todo);
    return rc;
}

/* ---------- driving the endpoints ---------- */

static void *endpoint_main(void *arg)
{
    struct ep *ep = arg;
    struct ctx *c = ep->c;
    lock(c);
    ep->rc = feed(ep, &ep->err);
    unlock(c);
    if (!ep->rc)
        ep->rc = qe_client_run(ep->client, on_done, ep, c->o->stop, &ep->err);
    if (ep->rc && ep->rc != QE_EINTR) {
        lock(c);
        c->abort = true; /* the others stop at their next answer */
        unlock(c);
    }
    return NULL;
}

/* Asks everything in c->q over all endpoints; 0 or the first fatal error. */
static int run_endpoints(struct ctx *c, qe_err *e)
{
    int rc = 0;
    c->window = (size_t)c->o->num_concurrent * 2;
    c->requeue = calloc(c->nq + 1, sizeof *c->requeue);
    if (!c->requeue)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->neps; i++) {
        if ((rc = qe_client_new(&c->eps[i].copts, &c->eps[i].client, e)))
            return rc;
        qe_client_set_idle(c->eps[i].client, on_idle, &c->eps[i]);
    }
    /* the committer; without it (no thread) commits happen in the loop.
     * It starts with every signal blocked, so Ctrl-C / SIGTERM reach the
     * thread that runs the event loop and interrupt its wait. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    c->cm_on = pthread_create(&c->cm_th, NULL, committer_main, c) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    c->threads = c->cm_on || c->neps > 1;
    c->t0 = now_s();
    for (int round = 0; round < 8; round++) {
    if (c->neps == 1) {
        endpoint_main(&c->eps[0]);
    } else {
        size_t started = 0;
        for (; started < c->neps; started++)
            if (pthread_create(&c->eps[started].th, NULL, endpoint_main, &c->eps[started]))
                break;
        if (started < c->neps) {
            lock(c);
            c->abort = true;
            unlock(c);
        }
        for (size_t i = 0; i < started; i++)
            pthread_join(c->eps[i].th, NULL);
        if (started < c->neps && !c->fatal.code)
            qe_err_set(&c->fatal, QE_ENOMEM, "cannot start a thread per endpoint");
    }
    /* an endpoint that went away gave work back after the others had
     * finished: go round again with those still alive */
    bool alive = false;
    for (size_t i = 0; i < c->neps; i++)
        alive = alive || !c->eps[i].gone;
    bool errors = false;
    for (size_t i = 0; i < c->neps; i++)
        errors = errors || (c->eps[i].rc && c->eps[i].rc != QE_EINTR);
    if (!c->nrequeue || !alive || errors || c->abort || stopping(c) || c->deadline_hit)
        break;
    }
    /* every client committed at its end (idle hook); this only guards
     * against an answer ever being left uncommitted */
    int gc_rc = gc_flush_locking(c);
    if (c->cm_on) {
        lock(c);
        c->cm_quit = true;
        pthread_cond_signal(&c->cm_kick);
        unlock(c);
        pthread_join(c->cm_th, NULL);
        c->cm_on = false;
        c->threads = c->neps > 1;
        gc_rc = gc_rc ? gc_rc : c->cm_rc;
    }
    gc_free(&c->gc);
    gc_free(&c->gc_busy);
    progress(c, true);
    /* the first real error wins: a callback's (store, disk) over the loop's */
    for (size_t i = 0; i < c->neps && !rc; i++) {
        struct ep *ep = &c->eps[i];
        if (ep->rc && ep->rc != QE_EINTR) {
            rc = ep->rc;
            if (e)
                *e = c->fatal.code ? c->fatal : ep->err;
        }
    }
    if (!rc && gc_rc) {
        rc = gc_rc;
        if (e)
            *e = c->fatal;
    }
    if (!rc && stopping(c))
        rc = qe_err_set(e, QE_EINTR, "interrupted: %zu answers stored, the rest is asked on the "
                                     "next run", c->done);
    /* an endpoint lost while others went on: said once, also when no
     * terminal showed the progress line's message (threads are done) */
    size_t n_gone = 0;
    for (size_t i = 0; i < c->neps; i++)
        n_gone += c->eps[i].gone;
    for (size_t i = 0; c->neps > 1 && n_gone < c->neps && i < c->neps; i++) {
        if (!c->eps[i].gone)
            continue;
        char shown[1024];
        qe_client_redact_url(c->eps[i].copts.base_url, shown, sizeof shown);
        note(c, "endpoint %s was dropped: %s; the other endpoint%s asked its requests", shown,
             c->eps[i].gone_why, c->neps - n_gone == 1 ? "" : "s");
    }
    size_t unsent = c->nq - c->qpos + c->nrequeue;
    if (!rc && unsent) {
        bool all_gone = true;
        const char *why = "";
        for (size_t i = 0; i < c->neps; i++) {
            all_gone = all_gone && c->eps[i].gone;
            if (c->eps[i].gone)
                why = c->eps[i].gone_why;
        }
        if (all_gone)
            rc = qe_err_set(e, QE_ENET, "%s: %zu requests not sent; rerun the same command to "
                                        "resume", why, unsent);
        else if (c->deadline_hit)
            rc = qe_err_set(e, QE_ELIMIT, "deadline reached: %zu requests not sent", unsent);
    }
    return rc;
}

/* ---------- the whole run ---------- */

static int check_opts(const qe_run_opts *o, qe_err *e)
{
    if (!o->n_base_urls || !o->base_urls || !o->base_urls[0])
        return qe_err_set(e, QE_EINVAL, "no --base-url given");
    if (o->n_base_urls > 64)
        return qe_err_set(e, QE_EINVAL, "at most 64 endpoints");
    for (size_t i = 0; i < o->n_base_urls; i++) {
        if (!o->base_urls[i] || !*o->base_urls[i])
            return qe_err_set(e, QE_EINVAL, "empty base URL #%zu", i + 1);
        qe_err why = {0};
        if (qe_client_check_base_url(o->base_urls[i], &why))
            return qe_err_set(e, QE_EINVAL, "--base-url: %s", why.msg);
        /* one server twice (":8000" and ":8000/v1/") would double the
         * requests in flight on it */
        qe_client_opts a, b;
        qe_client_opts_default(&a);
        qe_client_opts_default(&b);
        a.base_url = o->base_urls[i];
        char ua[1024], ub[1024];
        for (size_t j = 0; j < i; j++) {
            b.base_url = o->base_urls[j];
            if (!qe_client_url(&a, "/v1/models", ua, sizeof ua) &&
                !qe_client_url(&b, "/v1/models", ub, sizeof ub) && !strcmp(ua, ub)) {
                qe_client_redact_url(o->base_urls[i], ua, sizeof ua);
                return qe_err_set(e, QE_EINVAL, "--base-url %s names the same server as --base-url "
                                                "#%zu; give each server once",
                                  ua, j + 1);
            }
        }
    }
    if (!o->model || !*o->model)
        return qe_err_set(e, QE_EINVAL, "no --model given");
    if (!o->n_tasks)
        return qe_err_set(e, QE_EINVAL, "no --tasks given");
    if (!o->output_path || !*o->output_path)
        return qe_err_set(e, QE_EINVAL, "no --output-path given (the answer store lives there)");
    if (o->num_concurrent < 1 || o->num_concurrent > 4096)
        return qe_err_set(e, QE_EINVAL, "--num-concurrent must be 1..4096");
    if (o->repeats < 1 || o->repeats > 1000)
        return qe_err_set(e, QE_EINVAL, "--repeats must be 1..1000");
    if (o->max_attempts < 1 || o->max_attempts > 100)
        return qe_err_set(e, QE_EINVAL, "--max-attempts must be 1..100");
    if (!o->apply_chat_template && o->think >= 0)
        return qe_err_set(e, QE_EINVAL, "--think needs the chat template (--apply-chat-template)");
    if (o->limit < 0 || isnan(o->limit))
        return qe_err_set(e, QE_EINVAL, "--limit must be positive");
    for (size_t i = 0; i < o->n_tasks; i++) {
        if (!qe_task_find(o->tasks[i]))
            return qe_err_set(e, QE_EINVAL, "unknown task '%s' (see qeval tasks)", o->tasks[i]);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(o->tasks[i], o->tasks[j]))
                return qe_err_set(e, QE_EINVAL, "task '%s' given twice", o->tasks[i]);
    }
    return 0;
}

static void fill_summary(struct ctx *c, qe_run_summary *s)
{
    for (size_t i = 0; i < c->nts; i++) {
        struct tstate *ts = &c->ts[i];
        qe_run_task_summary *t = &s->tasks[i];
        if (!ts->queued)
            continue;
        size_t req = ts->n_docs * (size_t)c->o->repeats;
        t->requested = req;
        t->from_store = req - ts->todo;
        t->sent = ts->sent;
        t->completion_tokens = ts->ctokens;
        t->seconds = now_s() - ts->t_start;
        if (ts->clamped)
            t->limit_clamped_from = (size_t)c->o->limit;
        if (ts->all_ok) {
            /* the output phase read an 'ok' row for every (doc, repeat) */
            t->ok = req;
            t->failed = 0;
        } else if (c->store && ts->run_id) {
            qe_store_keys k = {0};
            if (qe_store_done_keys(c->store, ts->run_id, ts->name, &k, NULL) == 0) {
                size_t ok = 0;
                for (size_t j = 0; j < k.n; j++)
                    if ((size_t)k.keys[j].doc_id < ts->n_docs && k.keys[j].repeat < c->o->repeats)
                        ok++;
                t->ok = ok;
                t->failed = req - ok;
                qe_store_keys_free(&k);
            }
        }
    }
}

static int list_failures_cb(const qe_store_response *r, void *vctx)
{
    void **x = vctx;
    struct ctx *c = x[0];
    struct tstate *ts = x[1];
    if ((size_t)r->doc_id >= ts->n_docs || r->repeat >= c->o->repeats)
        return 0;
    if (c->n_failures >= MAX_FAILURES_LISTED)
        return 0;
    char buf[1200];
    snprintf(buf, sizeof buf, "%s doc %lld repeat %d: %s", ts->name, (long long)r->doc_id,
             r->repeat, r->error ? r->error : "failed");
    char **nf = realloc(c->failures, (c->n_failures + 1) * sizeof *nf);
    if (!nf)
        return 0;
    c->failures = nf;
    c->failures[c->n_failures++] = strdup(buf);
    return 0;
}

/* QEVAL_COMMITTER=loop|thread fixes who commits (see GC_SLOW_S; for
 * tests, and for anyone who wants one behaviour); unset, empty or auto:
 * the loop until its commits prove slow. */
static int committer_choice(struct ctx *c, qe_err *e)
{
    const char *how = getenv("QEVAL_COMMITTER");
    if (!how || !*how || !strcmp(how, "auto")) {
        c->cm_inline = true;
        return 0;
    }
    if (strcmp(how, "loop") && strcmp(how, "thread"))
        return qe_err_set(e, QE_EINVAL,
                          "QEVAL_COMMITTER must be auto, loop or thread (it is \"%.40s\")", how);
    c->cm_fixed = true;
    c->cm_inline = !strcmp(how, "loop");
    return 0;
}

int qe_runner_run(const qe_run_opts *o, qe_run_summary *s, qe_err *e)
{
    memset(s, 0, sizeof *s);
    struct ctx c;
    memset(&c, 0, sizeof c);
    int rc = check_opts(o, e);
    if (!rc)
        rc = committer_choice(&c, e);
    if (rc) {
        s->bad_options = true;
        return rc;
    }
    c.o = o;
    c.chat = o->apply_chat_template;
    c.t0 = now_s();
    double t_start = c.t0;
    json_t *cli_kw = NULL;
    char *sdir = NULL;
    struct tout *outs = NULL;
    rc = qe_genkw_parse(o->gen_kwargs, &cli_kw, e);
    if (!rc && o->think >= 0) {
        /* --think would silently win over the JSON's own value */
        json_t *th = json_object_get(json_object_get(cli_kw, "chat_template_kwargs"),
                                     "enable_thinking");
        if (json_is_boolean(th) && json_is_true(th) != (o->think > 0))
            rc = qe_err_set(e, QE_EINVAL,
                            "--think %s contradicts chat_template_kwargs.enable_thinking=%s in "
                            "--gen-kwargs; give one of them",
                            o->think > 0 ? "on" : "off", json_is_true(th) ? "true" : "false");
    }
    for (size_t i = 0; !rc && i < o->n_tasks; i++) {
        json_t *merged = NULL;
        long long seed = 0;
        rc = task_genkw(qe_task_find(o->tasks[i]), cli_kw, (long long)o->seed, &merged, &seed, e);
        json_decref(merged);
    }
    if (rc) {
        json_decref(cli_kw);
        s->bad_options = rc == QE_EINVAL; /* not when out of memory */
        return rc;
    }
    s->tasks = calloc(o->n_tasks, sizeof *s->tasks);
    c.ts = calloc(o->n_tasks, sizeof *c.ts);
    if (!s->tasks || !c.ts) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto out;
    }
    s->n_tasks = o->n_tasks;
    c.nts = o->n_tasks;
    for (size_t i = 0; i < o->n_tasks; i++) {
        c.ts[i].t = qe_task_find(o->tasks[i]);
        c.ts[i].name = qe_task_name(c.ts[i].t);
        c.ts[i].t_start = c.t0;
        s->tasks[i].task = strdup(c.ts[i].name);
        s->tasks[i].accuracy = NAN;
        s->tasks[i].math_accuracy = NAN;
        s->tasks[i].max_tokens = -1;
        s->tasks[i].verifier_only_doc = -1;
    }
    qe_client_opts_default(&c.copts);
    c.copts.base_url = o->base_urls[0];
    c.copts.api_key = o->api_key;
    c.copts.num_concurrent = o->num_concurrent;
    c.copts.max_attempts = o->max_attempts;
    if (o->timeout_s > 0)
        c.copts.timeout_ms = (long)(o->timeout_s * 1000.0);
    c.copts.seed = o->seed;
    c.neps = o->n_base_urls;
    c.eps = calloc(c.neps, sizeof *c.eps);
    if (!c.eps) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < c.neps; i++) {
        c.eps[i].c = &c;
        c.eps[i].copts = c.copts;
        c.eps[i].copts.base_url = o->base_urls[i];
        c.eps[i].copts.seed = o->seed + i;
    }
    pthread_mutex_init(&c.mu, NULL);
    {
        /* the committer's gathering deadline is on the monotonic clock */
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&c.cm_kick, &ca);
        pthread_condattr_destroy(&ca);
    }
    pthread_cond_init(&c.cm_done, NULL);
    c.threads = c.neps > 1;

    /* the servers first (GET /v1/models only): a wrong URL or model leaves
     * no output directory or empty store behind */
    for (size_t i = 0; i < c.neps; i++) {
        char *id0 = c.server_id, *root0 = c.server_root;
        c.server_id = c.server_root = NULL;
        c.copts.base_url = o->base_urls[i];
        rc = server_check(&c, e);
        if (rc == QE_ENET && c.neps == 1) {
            /* no server: a finished run can still be scored and written */
            c.offline = true;
            snprintf(c.offline_why, sizeof c.offline_why, "%s", e ? e->msg : "cannot reach the server");
            rc = 0;
            if (e)
                *e = (qe_err){0, ""};
            break;
        }
        if (rc) {
            if (c.neps > 1) {
                char shown[1024]; /* no password in the message */
                qe_client_redact_url(o->base_urls[i], shown, sizeof shown);
                qe_err_prefix(e, "%s", shown);
            }
            free(id0);
            free(root0);
            goto out;
        }
        if (i > 0 && (!root0 != !c.server_root ||
                      (root0 && strcmp(root0, c.server_root)))) {
            char u0[1024], ui[1024]; /* no password in the message */
            qe_client_redact_url(o->base_urls[0], u0, sizeof u0);
            qe_client_redact_url(o->base_urls[i], ui, sizeof ui);
            rc = qe_err_set(e, QE_ESERVER, "endpoints serve different models: %s has %s, %s has %s",
                            u0, root0 ? root0 : "?", ui, c.server_root ? c.server_root : "?");
            free(id0);
            free(root0);
            goto out;
        }
        if (i > 0) {
            free(c.server_id);
            free(c.server_root);
            c.server_id = id0;
            c.server_root = root0;
        }
    }
    c.copts.base_url = o->base_urls[0];
    if (!c.offline && (rc = check_room(&c, cli_kw, e))) {
        s->bad_options = rc == QE_EINVAL;
        goto out;
    }
    /* then the output directory and the store: an unwritable path, or a
     * store another qeval holds, fails before any question is asked */
    sdir = store_dir(o->output_path);
    if (!sdir) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto out;
    }
    {
        qe_buf sp = QE_BUF_INIT;
        qe_buf_printf(&sp, "%s/qeval.sqlite", sdir);
        s->store_path = qe_buf_detach(&sp);
        if (!s->store_path) {
            rc = qe_err_set(e, QE_ENOMEM, "out of memory");
            goto out;
        }
        /* no server and no store: nothing to use instead, nothing to create */
        struct stat st;
        if (c.offline && stat(s->store_path, &st) != 0) {
            rc = qe_err_set(e, QE_ENET, "%s; and there is no store in %s to use instead",
                            c.offline_why, sdir);
            goto out;
        }
        if ((rc = mkdir_p(sdir, e)))
            goto out;
        rc = qe_store_open(s->store_path, 0, &c.store, e);
        if (rc)
            goto out;
    }
    for (size_t i = 0; i < c.nts; i++)
        if ((rc = setup_task(&c, &c.ts[i], cli_kw, e)))
            goto out;

    /* what is still to ask */
    for (size_t i = 0; i < c.nts; i++) {
        struct tstate *ts = &c.ts[i];
        qe_store_keys k = {0};
        if ((rc = qe_store_done_keys(c.store, ts->run_id, ts->name, &k, e)))
            goto out;
        size_t K = (size_t)o->repeats;
        struct rq *nq = realloc(c.q, (c.nq + ts->n_docs * K + 1) * sizeof *nq);
        if (!nq) {
            qe_store_keys_free(&k);
            rc = qe_err_set(e, QE_ENOMEM, "out of memory");
            goto out;
        }
        c.q = nq;
        ts->prompts = calloc(ts->n_docs + 1, sizeof(char *));
        if (!ts->prompts) {
            qe_store_keys_free(&k);
            rc = qe_err_set(e, QE_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t d = 0; d < ts->n_docs; d++)
            for (size_t r = 0; r < K; r++)
                if (!qe_store_keys_contains(&k, (int64_t)d, (int)r)) {
                    c.q[c.nq++] = (struct rq){.task = (uint32_t)i, .doc = (uint32_t)d, .repeat = (uint32_t)r};
                    ts->todo++;
                }
        qe_store_keys_free(&k);
        ts->queued = true;
    }
    c.total = c.nq;
    s->all_from_store = c.nq == 0;
    if (c.offline && c.nq) {
        rc = qe_err_set(e, QE_ENET, "%s: %zu answers still to ask", c.offline_why, c.nq);
        goto out;
    }

    /* prompts the server renders, for what will be sent */
    if ((rc = render_all(&c, e)))
        goto out;

    if (c.nq) {
        if ((rc = run_endpoints(&c, e)))
            goto out;
    }

    /* score and write every task whose answers are all in */
    outs = calloc(c.nts, sizeof *outs);
    if (!outs) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < c.nts && !rc; i++) {
        rc = build_task_output(&c, &c.ts[i], &outs[i], e);
        c.ts[i].all_ok = !rc && outs[i].complete;
        if (!rc && outs[i].complete) {
            qe_run_task_summary *t = &s->tasks[i];
            struct tout *to = &outs[i];
            t->accuracy = to->value[0];
            t->truncated = to->truncated;
            t->n_scored = c.ts[i].n_docs;
            t->n_correct = to->n_correct;
            t->cut_length = to->cut_length;
            t->cut_in_think = to->cut_in_think;
            t->max_tokens = to->max_tokens;
            t->math_correct = to->math_correct;
            t->math_undecided = to->math_undecided;
            t->math_accuracy =
                t->n_scored ? (double)to->math_correct / (double)t->n_scored : NAN;
            t->verifier_only = to->verifier_only;
            t->verifier_only_doc = to->vo_doc;
            t->verifier_only_response = to->vo_resp;
            t->verifier_only_gold = to->vo_gold;
            to->vo_resp = to->vo_gold = NULL;
        }
    }
    if (!rc)
        rc = write_outputs(&c, outs, t_start, s, e);
    if (!rc) {
        bool all = true;
        for (size_t i = 0; i < c.nts; i++) {
            if (outs[i].complete)
                qe_store_run_finish(c.store, c.ts[i].run_id, NULL);
            else
                all = false;
        }
        if (!all) {
            rc = qe_err_set(e, QE_ESERVER, "some requests failed: %s",
                            c.first_failure ? c.first_failure : "see the list");
        }
    }
out:
    if (c.store) {
        fill_summary(&c, s);
        for (size_t i = 0; i < c.nts; i++) {
            if (!c.ts[i].run_id || s->tasks[i].failed == 0)
                continue;
            void *x[2] = {&c, &c.ts[i]};
            qe_store_foreach(c.store, c.ts[i].run_id, c.ts[i].name, QE_STORE_FAILED,
                             list_failures_cb, x, NULL);
        }
    }
    s->failures = c.failures;
    s->n_failures = c.n_failures;
    s->first_failure = c.first_failure;
    if (!s->first_failure && c.n_failures)
        s->first_failure = strdup(c.failures[0]);
    s->notices = c.notices.len ? qe_buf_detach(&c.notices) : NULL;
    qe_buf_free(&c.notices);
    for (size_t i = 0; c.eps && i < c.neps; i++)
        qe_client_free(c.eps[i].client);
    free(c.eps);
    free(c.requeue);
    pthread_cond_destroy(&c.cm_kick);
    pthread_cond_destroy(&c.cm_done);
    pthread_mutex_destroy(&c.mu);
    qe_store_close(c.store);
    for (size_t j = 0; j < c.nq; j++)
        free(c.q[j].body);
    free(c.q);
    for (size_t i = 0; c.ts && i < c.nts; i++) {
        for (size_t d = 0; c.ts[i].prompts && d < c.ts[i].n_docs; d++)
            free(c.ts[i].prompts[d]);
        free(c.ts[i].prompts);
        qe_runner_body_free(c.ts[i].body);
        json_decref(c.ts[i].ctk);
        json_decref(c.ts[i].merged);
        if (outs) {
            qe_buf_free(&outs[i].samples);
            free(outs[i].vo_resp);
            free(outs[i].vo_gold);
        }
    }
    free(outs);
    free(c.ts);
    qe_buf_free(&c.body_scratch);
    json_decref(c.msgs_cache);
    free(c.server_id);
    free(c.server_root);
    free(sdir);
    json_decref(cli_kw);
    return rc;
}

void qe_run_summary_free(qe_run_summary *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->tasks && i < s->n_tasks; i++) {
        free(s->tasks[i].task);
        free(s->tasks[i].results_path);
        free(s->tasks[i].samples_path);
        free(s->tasks[i].verifier_only_response);
        free(s->tasks[i].verifier_only_gold);
    }
    free(s->tasks);
    free(s->first_failure);
    for (size_t i = 0; i < s->n_failures; i++)
        free(s->failures[i]);
    free(s->failures);
    free(s->notices);
    free(s->store_path);
    memset(s, 0, sizeof *s);
}

/* ---------- diagnostics ---------- */

int qe_run_task_diagnose(const qe_run_task_summary *t, qe_buf *out)
{
    int rc = 0;
    size_t n = t->n_scored;
    if (!n || isnan(t->accuracy))
        return 0;
    /* (a) cut off while thinking: most answers never left <think> */
    if (t->cut_in_think * 2 > n) {
        qe_buf lim = QE_BUF_INIT;
        if (t->max_tokens >= 0)
            qe_buf_printf(&lim, "max_gen_toks=%lld", t->max_tokens);
        else
            qe_buf_puts(&lim, "the server's default max_tokens");
        rc |= qe_buf_printf(out,
                            "%s: %zu/%zu answers were cut off inside <think> at %s: the model is "
                            "thinking (Qwen3's chat template enables thinking by default) and "
                            "never reached an answer, so they score 0. Use --think off, or raise "
                            "max_gen_toks (and the server's max_model_len).\n",
                            t->task, t->cut_in_think, n, qe_buf_str(&lim));
        qe_buf_free(&lim);
    } else if (t->cut_length * 2 > n) {
        rc |= qe_buf_printf(out,
                            "%s: %zu/%zu answers stopped at max_tokens (%lld) before finishing; "
                            "raise max_gen_toks (and the server's max_model_len).\n",
                            t->task, t->cut_length, n, t->max_tokens);
    }
    /* (b) right by the verifier, wrong by lm-eval's scorer */
    if (t->verifier_only) {
        const char *how = !strcmp(t->task, "hendrycks_math500")
                              ? " (it reads the text between the first and last `$` and ignores "
                                "\\boxed)"
                              : "";
        rc |= qe_buf_printf(out,
                            "%s: %zu answer%s right by the math verifier but wrong by lm-eval's "
                            "scorer%s",
                            t->task, t->verifier_only, t->verifier_only == 1 ? " is" : "s are",
                            how);
        if (t->verifier_only_doc >= 0)
            rc |= qe_buf_printf(out, "; e.g. doc %lld: `%s` vs gold `%s`", t->verifier_only_doc,
                                t->verifier_only_response ? t->verifier_only_response : "",
                                t->verifier_only_gold ? t->verifier_only_gold : "");
        rc |= qe_buf_printf(out, ". `qeval rescore --scorer math FILE` lists them.\n");
    }
    /* (c) what n problems can tell */
    double lo, hi;
    uint64_t k = t->n_correct <= n ? t->n_correct : n;
    if (qe_stats_wilson(k, n, 1.959963984540054, &lo, &hi) == 0) {
        double mdd = qe_stats_paired_mdd((double)n, QE_RUN_DIAG_PSI, 0.05, QE_RUN_DIAG_POWER);
        rc |= qe_buf_printf(out,
                            "%s: n=%zu: the 95%% CI of this accuracy is \u00b1%.1f points "
                            "(Wilson: %.1f to %.1f)",
                            t->task, n, (hi - lo) / 2 * 100, lo > 0 ? lo * 100 : 0.0,
                            hi < 1 ? hi * 100 : 100.0);
        if (isnan(mdd))
            rc |= qe_buf_printf(out, "; a paired comparison of two precisions on %zu problem%s "
                                     "cannot detect any difference (qeval compare)\n",
                                n, n == 1 ? "" : "s");
        else
            rc |= qe_buf_printf(out,
                                "; a paired comparison of two precisions on these problems can "
                                "only detect differences of about %.0f points (qeval compare)\n",
                                mdd * 100);
    }
    return rc ? QE_ENOMEM : 0;
}
