/* sweep: orchestration of `qeval sweep PLAN` -- the whole precision
 * experiment from one plan file (DESIGN.md §1, §6; docs/sweep.md).
 *
 * Given a parsed plan (plan.h) this module decides the order of the
 * model x task steps under the time budget (a pure function, so it can be
 * tested without servers), prints the dry run, and runs the steps: for
 * engine kind vllm it starts one `vllm serve` per model (engine.h), evaluates
 * that model's tasks against it through an evaluation callback (in production
 * qe_runner_run, runner.h), stops the server and goes on; a server that dies
 * mid-task is restarted once and the task resumed (the runner's store skips
 * what is answered); a server that cannot start fails only its model. Kind
 * endpoint evaluates against the plan's base_urls; kind lm-eval runs the
 * reference harness itself per step (lmeval_engine.h).
 *
 * Resume: finished pairs are recorded in <output>/sweep_state.json, written
 * atomically (tmp + fsync + rename) after every step, keyed by a config
 * string so a changed plan does not count old results as done. The file also
 * remembers the process group of a running server, so a rerun after kill -9
 * of qeval stops the orphan before starting anything. One sweep at a time
 * per output directory (flock on sweep_state.json.lock).
 *
 * Library rules: nothing is printed; progress lines go to a callback.
 * Ownership: results/reports/schedules are freed with their *_free. */
#ifndef QE_SWEEP_H
#define QE_SWEEP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "plan.h"
#include "runner.h"

#define QE_SWEEP_STATE_FILE "sweep_state.json"
/* Conservative estimates used before anything was measured (docs/sweep.md):
 * 0.2 requests/s is a 32B model answering 1024-token requests on 2 GPUs
 * with a few in flight; 600 s covers loading 60 GB of weights plus CUDA graph
 * capture. Both are replaced by measurements as soon as they exist. */
#define QE_SWEEP_DEFAULT_RATE 0.2
#define QE_SWEEP_DEFAULT_STARTUP 600.0
#define QE_SWEEP_MAX_RESTARTS 1 /* per model and server session */
/* Plan order is kept under a budget only when its estimate x this margin
 * fits: estimates are rough, and being wrong the other way costs the
 * high-priority results the budget rule exists to protect. */
#define QE_SWEEP_PLAIN_MARGIN 1.1

enum qe_sweep_status {
    QE_SWEEP_PENDING = 0,
    QE_SWEEP_DONE,
    QE_SWEEP_FAILED,
    QE_SWEEP_SKIPPED,
};
const char *qe_sweep_status_name(enum qe_sweep_status s);

/* Request count of plan->tasks[ti]: docs after the limit x repeats. */
typedef struct {
    size_t docs;         /* after the limit */
    size_t dataset_size; /* docs in the dataset's test split */
    bool clamped;        /* the limit asked for more than the dataset has */
    size_t repeats;
    size_t requests;     /* docs x repeats */
} qe_sweep_count;
int qe_sweep_count_task(const qe_plan *p, size_t ti, qe_sweep_count *out, qe_err *err);

/* ---- scheduling (pure) ------------------------------------------------- */

/* Everything the scheduler looks at. Arrays are indexed by pair
 * mi * n_tasks + ti and borrowed. */
typedef struct {
    double budget_left;      /* seconds; <= 0 together with has_budget false: no budget */
    bool has_budget;
    const enum qe_sweep_status *status; /* PENDING pairs are scheduled; NULL = all pending */
    const bool *selected;    /* NULL = every model; else per model (--only-model) */
    const size_t *requests;  /* remaining requests per pair */
    const double *rate;      /* measured requests/s per pair, 0 = unknown; NULL = none */
    double default_rate;     /* 0 = QE_SWEEP_DEFAULT_RATE */
    double startup_s;        /* measured server start, 0 = unknown */
    double default_startup;  /* 0 = QE_SWEEP_DEFAULT_STARTUP */
    size_t running_model;    /* model whose server is up now, or (size_t)-1 */
    enum qe_plan_engine_kind kind; /* endpoint: no start cost; lm-eval: one start per step */
} qe_sweep_sched_in;

typedef struct {
    size_t model, task;
    double est_s;      /* estimated seconds, start cost included */
    bool new_server;   /* a server start precedes this step */
    bool rate_measured;/* est_s is from a measured rate */
} qe_sweep_step;

typedef struct {
    size_t model, task;
    double est_s;
    char reason[192];
} qe_sweep_skip;

typedef struct {
    qe_sweep_step *steps;   /* in run order */
    size_t n_steps;
    qe_sweep_skip *skipped; /* normal-priority pairs that do not fit */
    size_t n_skipped;
    bool priority_mode;     /* plan order would not fit: high-priority first */
    double est_plain_s;     /* estimate of everything pending, in plan order */
    double est_s;           /* estimate of the chosen steps */
    size_t server_starts;   /* in the chosen order */
} qe_sweep_schedule;

/* Rule (the experiment document's §7): without a budget, or when the
 * estimate of every pending pair in plan order (models outer, tasks inner)
 * fits the budget, that order. Otherwise every high-priority pair of every
 * model first (plan order), then the normal ones in plan order, each kept
 * only if its estimate still fits what is left; high-priority pairs are never
 * dropped by an estimate (only the real deadline stops them). A model may
 * then be started twice. Fills *out (free with qe_sweep_schedule_free). */
int qe_sweep_schedule_make(const qe_plan *p, const qe_sweep_sched_in *in, qe_sweep_schedule *out, qe_err *err);
void qe_sweep_schedule_free(qe_sweep_schedule *s);

/* ---- running ----------------------------------------------------------- */

/* Evaluates one model x task against running servers; qe_runner_run fits. */
typedef int (*qe_sweep_eval_fn)(void *ud, const qe_run_opts *o, qe_run_summary *s, qe_err *e);

typedef struct {
    qe_sweep_eval_fn eval;   /* required for kinds vllm and endpoint */
    void *eval_ud;
    void (*free_summary)(qe_run_summary *s); /* frees what eval filled; qe_run_summary_free fits */
    bool force;              /* redo finished pairs */
    const char *only_model;  /* NULL = all */
    volatile sig_atomic_t *stop; /* set by a signal handler: stop cleanly */
    double (*now)(void *ud); /* clock in seconds; NULL = wall clock */
    void *now_ud;
    void (*note)(void *ud, const char *line); /* progress lines; NULL = silent */
    void *note_ud;
    double default_rate;     /* 0 = QE_SWEEP_DEFAULT_RATE */
    double default_startup;  /* 0 = QE_SWEEP_DEFAULT_STARTUP */
    double startup_timeout;  /* 0 = plan's / engine default */
    double poll_interval;    /* /health poll, 0 = engine default */
    /* While waiting for a server or endpoint to get ready, a note says so
     * when the wait starts (what, the URL, the timeout); then one every
     * wait_report_s seconds ("still waiting"). 0 = only the first. */
    double wait_report_s;
    bool progress;           /* passed to the runner */
    int max_attempts;        /* per request, 0 = 4 */
    double request_timeout;  /* per attempt, 0 = 1800 s */
} qe_sweep_opts;

typedef struct {
    enum qe_sweep_status status;
    char reason[1024];       /* failed/skipped: why; done: "" or a note */
    double accuracy;         /* NaN unless done */
    double stderr_;          /* NaN unless done */
    size_t n;                /* requests scored */
    size_t sent;             /* requests sent by this invocation */
    double seconds;          /* time spent by this invocation */
    char *results_path;      /* NULL if none */
    char *samples_path;
    bool from_state;         /* finished by an earlier invocation */
} qe_sweep_pair;

typedef struct {
    qe_sweep_pair *pairs;    /* n_models * n_tasks, pair mi * n_tasks + ti */
    size_t n_models, n_tasks;
    char **quant_label;      /* per model: first quantization/kernel log line, or NULL */
    size_t n_done, n_failed, n_skipped, n_pending;
    bool interrupted;
    bool any_start_failed;
} qe_sweep_report;

/* Runs the sweep. Returns 0 when every selected pair is done, QE_ESERVER
 * when some failed or were skipped (see the report), QE_EINTR when stopped
 * (state saved; a rerun resumes), other negatives when the sweep could not
 * run at all (output not writable, state file corrupt, another sweep running).
 * The report is filled in every case once allocated (free with
 * qe_sweep_report_free). */
int qe_sweep_run(const qe_plan *p, const qe_sweep_opts *o, qe_sweep_report *r, qe_err *err);
void qe_sweep_report_free(qe_sweep_report *r);

/* The dry run: run order, each server's exact command and env, each task's
 * request count, totals and the budget plan, appended to out. */
int qe_sweep_dry_run(const qe_plan *p, const qe_sweep_opts *o, qe_buf *out, qe_err *err);

/* The end-of-sweep table (every model x task: accuracy, stderr, n, status). */
int qe_sweep_format_table(const qe_plan *p, const qe_sweep_report *r, qe_buf *out);

/* The config string recorded with a finished pair; a pair counts as done on
 * resume only when it matches. Appended to out. */
int qe_sweep_pair_config(const qe_plan *p, size_t mi, size_t ti, qe_buf *out);

/* "1h02m", "3m05s", "12s" */
void qe_sweep_format_duration(double s, char *out, size_t n);

#endif
