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

#include "buf.h"
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
    int scorer;                   /* enum qe_run_scorer: QE_RUN_SCORER_MATH adds the math
                                   * verifier's verdicts to the files under filter
                                   * "math-verify" (docs/run.md) */
} qe_run_opts;

enum qe_run_scorer {
    QE_RUN_SCORER_LMEVAL = 0, /* lm-eval's verdicts only (files identical to lm-eval's) */
    QE_RUN_SCORER_MATH = 1,   /* plus filter "math-verify" (qe_rescore_math_verify) */
};

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
    /* diagnostics, filled when every answer is in (first answer of each doc,
     * the one the accuracy is computed from; qe_run_task_diagnose explains them): */
    size_t n_scored;      /* docs scored: the n of the accuracy */
    size_t n_correct;     /* right by lm-eval's scorer (main filter) */
    size_t cut_length;    /* finish_reason "length": stopped at max_tokens */
    size_t cut_in_think;  /* <think> opened and never closed */
    long long max_tokens; /* max_tokens sent (max_gen_toks), -1 if none */
    double math_accuracy; /* math verifier's mean (undecided counts wrong), NaN if not scored */
    size_t math_correct;
    size_t math_undecided;
    size_t verifier_only; /* right by the math verifier, wrong by lm-eval's scorer */
    long long verifier_only_doc;  /* first such doc id, -1 if none */
    char *verifier_only_response; /* its response (malloc'd, at most ~200 bytes, may be NULL) */
    char *verifier_only_gold;     /* the gold it was compared with (malloc'd, may be NULL) */
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
    bool bad_options;    /* the options were refused before anything was done */
} qe_run_summary;

/* Runs every task; fills s (caller frees with qe_run_summary_free).
 * Returns 0 when every request succeeded, QE_ESERVER when some failed
 * (stored as failed, listed in s), QE_EINTR when stopped, other negatives
 * for errors that stopped the run (store, output, bad options). */
int qe_runner_run(const qe_run_opts *o, qe_run_summary *s, qe_err *e);
void qe_run_summary_free(qe_run_summary *s);

/* Assumptions of the sample-size line (docs/run.md): 95% two-sided,
 * power 80%, and a discordance rate (share of problems two precisions of the
 * same model answer differently) of 10%. */
#define QE_RUN_DIAG_PSI 0.10
#define QE_RUN_DIAG_POWER 0.80

/* Appends to out the explanation lines for t (each ending in "\n"; nothing
 * when t was not scored): the answers cut inside <think> (when most are),
 * the answers lm-eval's scorer rejects although the math verifier accepts
 * them, and what the sample size can tell (Wilson 95% CI half-width of the
 * accuracy; smallest paired difference detectable, qe_stats_paired_mdd
 * with QE_RUN_DIAG_PSI). Returns 0 or QE_ENOMEM. */
int qe_run_task_diagnose(const qe_run_task_summary *t, qe_buf *out);

/* A model answer on one line, for messages (malloc'd; NULL only when out
 * of memory): every whitespace run becomes one space, except just inside a
 * math span ("$ x $" -> "$x$"; "is $x$" keeps its space; "$$" is one
 * delimiter); when longer than 160 bytes, "..." and the last 157 bytes
 * (never splitting a UTF-8 sequence). */
char *qe_run_example_text(const char *s);

#endif
