/* runner: evaluate one model on one or more OpenAI-compatible endpoints.
 *
 * This is the engine behind `qeval run` and each model x task step of
 * `qeval sweep`. It ties the modules together: task (docs, prompts),
 * client (requests in flight), store (every answer committed as it arrives,
 * resume by fingerprint), score_lmeval (verdicts) and lmeval_io (results and
 * samples files in lm-eval's layout).
 *
 * Contract: nothing already answered in the store is sent again; a request
 * that keeps failing is stored as failed (retried on the next call); the
 * result files are written only when every request of a task succeeded,
 * atomically, never overwriting an earlier file. The API key is never
 * written anywhere. */
#ifndef QE_RUNNER_H
#define QE_RUNNER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct {
    const char *const *base_urls; /* one or more endpoints; docs are sharded */
    size_t n_base_urls;
    const char *model;            /* "model" field sent; names the output dir */
    const char *api_key;          /* NULL = none; never logged or stored */
    const char *const *tasks;     /* built-in task names */
    size_t n_tasks;
    double limit;                 /* <= 0: all docs; lm-eval --limit rules */
    bool apply_chat_template;     /* true: /v1/chat/completions; false: /v1/completions */
    const char *system_instruction; /* NULL = none */
    int think;                    /* -1 = server default, 0 = off, 1 = on (enable_thinking) */
    const char *gen_kwargs;       /* lm-eval syntax "k=v,k=v" or JSON; over task defaults */
    int num_concurrent;           /* requests in flight per endpoint (>= 1) */
    int repeats;                  /* samples per doc (>= 1) */
    uint64_t seed;                /* sent as "seed"; lm-eval default 1234 */
    const char *output_path;      /* directory, or X.json like lm-eval */
    const char *output_name;      /* NULL: lm-eval naming; else file stem (sweep):
                                   * like lm-eval's --output_path DIR/<stem>.json, i.e.
                                   * DIR/<stem>_<date>.json + DIR/samples_<task>_<date>.jsonl */
    bool log_samples;             /* write samples_<task>_<date>.jsonl */
    int max_attempts;             /* per request, >= 1 */
    double timeout_s;             /* per attempt */
    volatile sig_atomic_t *stop;  /* set asynchronously: stop sending, keep all */
    bool progress;                /* progress line on stderr (caller checks isatty) */
    double deadline;              /* epoch seconds after which no new request starts; 0 = none */
    /* added after the first contract (append-only; zero = default): */
    double server_wait_s;         /* server stopped answering (connection refused/reset and
                                   * /health down): wait this long for it, polling /health,
                                   * then re-ask; 0 = 60 s; < 0 = do not wait */
} qe_run_opts;

typedef struct {
    char *task;
    size_t requested;   /* docs x repeats asked for */
    size_t from_store;  /* answered in an earlier run */
    size_t sent;        /* requests sent in this call */
    size_t ok, failed;  /* final state in the store */
    size_t limit_clamped_from; /* nonzero: the limit asked for was above the size */
    double accuracy;    /* main metric, NaN if not all answered */
    double seconds;     /* wall time spent on this task in this call */
    double completion_tokens; /* sum over requests sent in this call */
    char *results_path; /* NULL if not written */
    char *samples_path;
    /* added after the first contract (append-only): */
    size_t truncated;   /* answers cut at max_tokens or inside an unclosed <think> */
    bool results_reused; /* identical files already existed: paths point to them */
} qe_run_task_summary;

typedef struct {
    qe_run_task_summary *tasks;
    size_t n_tasks;
    char *first_failure; /* reason of one failed request, for the final message */
    /* added after the first contract (append-only): */
    char **failures;     /* up to 20 "task doc N repeat R: reason" lines */
    size_t n_failures;
    char *notices;       /* NULL or newline-terminated lines to show the user once
                          * (config changed -> new run, prompt rendering fallback) */
    char *store_path;    /* <output dir>/qeval.sqlite */
    bool all_from_store; /* nothing had to be sent */
} qe_run_summary;

/* Runs every task; fills s (caller frees with qe_run_summary_free).
 * Returns 0 when every request succeeded, QE_ESERVER when some failed
 * (stored as failed, listed in s), QE_EINTR when stopped, other negatives
 * for errors that stopped the run (store, output, bad options). */
int qe_runner_run(const qe_run_opts *o, qe_run_summary *s, qe_err *e);
void qe_run_summary_free(qe_run_summary *s);

#endif
