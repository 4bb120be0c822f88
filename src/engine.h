/* engine: lifecycle of one inference server for `qeval sweep`.
 *
 * For engine kind vllm, one qe_engine is one `vllm serve MODEL ...` process:
 * spawned in its own process group with the plan's environment, its output
 * appended to a per-model log file, ready when GET /health answers 200 and
 * GET /v1/models lists the served name. If it exits first or never gets
 * ready, the start fails with the last lines of its log and a likely cause
 * (CUDA OOM, unknown flag, model not found, port in use). Stopping sends
 * SIGTERM to the whole group, waits a grace period, SIGKILLs the group, reaps
 * it and checks the port is free again. For engine kind endpoint (servers
 * already running) only the readiness wait applies: qe_engine_wait_endpoint.
 *
 * Library rules: nothing is printed; diagnostics land in the structs below.
 * Ownership: qe_engine_start returns an engine the caller must end with
 * qe_engine_free (which stops it if still running). Strings returned by
 * getters belong to the engine. */
#ifndef QE_ENGINE_H
#define QE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"
#include "plan.h"

#define QE_ENGINE_TAIL_LINES 30
#define QE_ENGINE_MAX_QUANT_LINES 32

/* Likely cause of a failed start, from the log text and what happened. */
enum qe_engine_cause {
    QE_ENGINE_CAUSE_NONE = 0,
    QE_ENGINE_CAUSE_OOM,         /* "CUDA out of memory" */
    QE_ENGINE_CAUSE_BAD_FLAG,    /* argparse rejected a flag */
    QE_ENGINE_CAUSE_NOT_FOUND,   /* model id / path does not exist */
    QE_ENGINE_CAUSE_PORT_IN_USE, /* port taken (checked before spawning too) */
    QE_ENGINE_CAUSE_TIMEOUT,     /* /health never answered 200 in time */
    QE_ENGINE_CAUSE_NAME,        /* /v1/models does not list the served name */
    QE_ENGINE_CAUSE_EXEC,        /* the binary could not be found or run */
    QE_ENGINE_CAUSE_UNKNOWN,
};

/* Told how a wait for readiness goes (the library never prints): once when
 * it starts (waited 0), then about every `every` seconds while the server
 * has not answered GET /health with 200. url is the /health URL polled;
 * waited and timeout are seconds. fn NULL: not told. */
typedef struct {
    void (*fn)(void *ud, const char *url, double waited, double timeout);
    void *ud;
    double every; /* <= 0: only the call at the start */
} qe_engine_wait_report;

/* What to run. Pointers are borrowed for the duration of each call. */
typedef struct {
    const char *binary;      /* vllm executable; NULL = "vllm" looked up on PATH */
    const char *model;       /* positional MODEL */
    const char *served_name; /* --served-model-name; NULL = model */
    const qe_plan_engine_args *args; /* flags; args->port 0 = pick a free port */
    const qe_plan_kv *env;   /* added to (and overriding) the current environment */
    size_t n_env;
    const char *log_path;    /* per-model log; an existing file is never touched:
                                the new log goes to "<log_path>.1", ".2", ... */
    const char *host;        /* host to probe; NULL = 127.0.0.1 */
    double startup_timeout;  /* seconds; 0 = args->startup_timeout, else 1200 */
    double stop_grace;       /* seconds between SIGTERM and SIGKILL; 0 = 30 */
    double poll_interval;    /* seconds between /health probes; 0 = 0.5 */
    bool check_gpu_memory;   /* query nvidia-smi before start / after stop if on PATH */
    /* NULL, or called with the server's process group after fork and
     * before exec; the server runs only if it returns 0. Record the pgid
     * durably here: a kill -9 of qeval then never leaves a server that the
     * next run cannot find (see qe_proc_spawn_group's gate). */
    int (*on_spawn)(void *ud, pid_t pgid);
    void *on_spawn_ud;
    /* the wait for /health after the spawn; called on the thread that
     * called qe_engine_start */
    qe_engine_wait_report wait_report;
} qe_engine_spec;

/* Filled when qe_engine_start fails (and the group is already cleaned up). */
typedef struct {
    enum qe_engine_cause cause;
    bool exited;          /* the process exited before getting ready */
    int wait_status;      /* raw waitpid status when exited */
    char log_path[1024];  /* log actually written */
    char log_tail[8192];  /* last QE_ENGINE_TAIL_LINES lines of the log */
} qe_engine_failure;

/* Filled by qe_engine_stop. */
typedef struct {
    bool sigkilled;        /* the group ignored SIGTERM for the grace period */
    int wait_status;       /* raw status of the main process (or -1) */
    bool port_free;        /* the port could be bound again afterwards */
    bool gpu_checked;      /* nvidia-smi was found and queried */
    bool gpu_released;     /* memory used after stop <= before start + slack */
    long gpu_mib_before, gpu_mib_after; /* summed over GPUs, -1 unknown */
    char note[512];        /* debug line, e.g. why GPU memory was not checked */
} qe_engine_stop_report;

typedef struct qe_engine qe_engine;

/* Fills spec for plan->models[mi] (binary, model, served name, effective
 * args, plan env, stop grace, GPU check on). log_path and timeouts not set by
 * the plan stay for the caller. The spec borrows from the plan. */
void qe_engine_spec_from_plan(qe_engine_spec *spec, const qe_plan *plan, size_t mi);

/* Builds the argv (NULL-terminated; argv[0] is the binary as given or "vllm").
 * port overrides args->port when > 0. Free with qe_engine_strv_free. */
int qe_engine_build_argv(const qe_engine_spec *spec, int port, char ***argv_out, qe_err *err);
void qe_engine_strv_free(char **v);

/* Appends to out the exact command the engine would run, for `sweep --dry-run`:
 * one "env KEY=VALUE" line per plan variable, then the shell-quoted command
 * line, e.g. "vllm serve Qwen/Qwen3-32B --tensor-parallel-size 2 ...". A port of
 * 0 is shown as "--port AUTO". */
int qe_engine_dry_run_cmd(const qe_engine_spec *spec, qe_buf *out, qe_err *err);

/* Spawns the server and waits until it is ready. On success *out is the
 * running engine. On failure returns a negative status, err names the cause
 * and the log, and fail (if not NULL) holds the details; nothing is left
 * running. */
int qe_engine_start(const qe_engine_spec *spec, qe_engine **out, qe_engine_failure *fail, qe_err *err);

/* Stops the process group (SIGTERM, grace, SIGKILL), reaps it, checks the
 * port. Safe to call twice. report may be NULL. */
int qe_engine_stop(qe_engine *e, qe_engine_stop_report *report, qe_err *err);

/* Stops if needed and frees. NULL is fine. */
void qe_engine_free(qe_engine *e);

/* True while the main process has not exited (reaps it if it has). */
bool qe_engine_alive(qe_engine *e);

const char *qe_engine_base_url(const qe_engine *e); /* "http://127.0.0.1:PORT" */
int qe_engine_port(const qe_engine *e);
pid_t qe_engine_pgid(const qe_engine *e);
const char *qe_engine_log_path(const qe_engine *e);
/* A server that died (or stopped answering) while in use: its log's path,
 * last lines and the likely cause read from them, as for a failed start.
 * exited and wait_status are left 0. */
void qe_engine_post_mortem(const qe_engine *e, qe_engine_failure *f);
double qe_engine_startup_seconds(const qe_engine *e);
/* Log lines about quantization/kernels seen up to readiness, for labelling
 * results (e.g. "Using NVFP4 ... Marlin"). */
const char *const *qe_engine_quant_lines(const qe_engine *e, size_t *n);

/* The two URLs readiness is probed at, mapped as the client maps a base URL
 * (qe_client_url: "http://h:p", "http://h:p/v1" and trailing '/' are the
 * same server): GET /health at the server root, GET /v1/models. Each buffer
 * holds cap bytes. 0, or QE_EINVAL (not http:// or https://) / QE_ELIMIT. */
int qe_engine_probe_urls(const char *base_url, char *health, char *models, size_t cap, qe_err *err);

/* Waits until GET /health is 200 (and, when expect_model is not NULL,
 * GET /v1/models lists it), up to timeout seconds, at the URLs of
 * qe_engine_probe_urls. api_key may be NULL. Used for engine kind endpoint. */
int qe_engine_wait_endpoint(const char *base_url, const char *api_key, const char *expect_model, double timeout,
                            qe_err *err);
/* The same, telling rep (may be NULL) how the wait goes. */
int qe_engine_wait_endpoint_reporting(const char *base_url, const char *api_key, const char *expect_model,
                                      double timeout, const qe_engine_wait_report *rep, qe_err *err);

/* Classifies a log text into a likely cause (OOM, BAD_FLAG, NOT_FOUND,
 * PORT_IN_USE or UNKNOWN). */
enum qe_engine_cause qe_engine_classify_log(const char *text);
const char *qe_engine_cause_name(enum qe_engine_cause c);

/* True when a TCP listener could bind 127.0.0.1:port right now. */
bool qe_engine_port_is_free(int port);

/* Finds name on the PATH given (NULL = getenv("PATH")); name with a '/' is
 * checked as is. Returns a malloc'd path or NULL. */
char *qe_engine_which(const char *name, const char *path);

#endif
