/* plan: the sweep plan file (YAML, DESIGN.md §6) parsed into typed structs.
 *
 * `qeval sweep PLAN` runs a whole precision experiment from one file: models,
 * the engine that serves them, environment, tasks with limits and priority,
 * generation settings, a time budget and the output layout. This module only
 * parses and validates; it never starts anything. Every problem (unknown key,
 * wrong type, duplicate key, bad budget, unknown engine kind, unknown task,
 * empty model list) is reported as "FILE:LINE:COL: what is wrong" before any
 * server is started. Task names are checked through a predicate the caller
 * passes, so this module does not depend on the task registry.
 *
 * Ownership: qe_plan_load/qe_plan_parse return a plan the caller frees with
 * qe_plan_free; every string inside is owned by the plan. */
#ifndef QE_PLAN_H
#define QE_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

/* Bounds on hostile input. */
#define QE_PLAN_MAX_BYTES (1u << 20)  /* plan file size */
#define QE_PLAN_MAX_DEPTH 8           /* nesting of mappings/sequences */
#define QE_PLAN_MAX_MODELS 64
#define QE_PLAN_MAX_TASKS 256
#define QE_PLAN_MAX_ENV 256
#define QE_PLAN_MAX_LIST 256          /* extra_args, base_urls */
#define QE_PLAN_MAX_STR 4096          /* any single scalar */

enum qe_plan_engine_kind {
    QE_PLAN_ENGINE_VLLM = 0,
    QE_PLAN_ENGINE_ENDPOINT,
    QE_PLAN_ENGINE_LMEVAL,
};

enum qe_plan_priority { QE_PLAN_PRIO_NORMAL = 0, QE_PLAN_PRIO_HIGH };
enum qe_plan_think { QE_PLAN_THINK_DEFAULT = 0, QE_PLAN_THINK_ON, QE_PLAN_THINK_OFF };

typedef struct {
    char *key;
    char *value;
} qe_plan_kv;

/* vLLM engine arguments; each set one becomes its `vllm serve` flag.
 * Zero / NULL means "not set" (vLLM's own default applies). */
typedef struct {
    int tensor_parallel_size;      /* --tensor-parallel-size */
    double gpu_memory_utilization; /* --gpu-memory-utilization, (0, 1] */
    int max_model_len;             /* --max-model-len */
    int max_num_seqs;              /* --max-num-seqs */
    char *download_dir;            /* --download-dir */
    int port;                      /* --port; 0 = pick a free port */
    double startup_timeout;        /* seconds to wait for /health (not a flag) */
    char **extra_args;             /* appended verbatim after our flags */
    size_t n_extra_args;
} qe_plan_engine_args;

typedef struct {
    enum qe_plan_engine_kind kind;
    qe_plan_engine_args args; /* defaults for every model */
    char *binary;             /* `binary:` vllm executable (vllm) or python (lm-eval); NULL = look up on PATH */
    double stop_grace;        /* `stop_grace:` seconds between SIGTERM and SIGKILL; 0 = default */
    char **base_urls;         /* endpoint: one or more OpenAI-compatible servers */
    size_t n_base_urls;
    char *api_key_env;        /* endpoint: name of the env var holding the API key */
} qe_plan_engine;

typedef struct {
    char *name;              /* output directory name (nvfp4, fp8, ...) */
    char *model;             /* HF id or path passed to `vllm serve` */
    char *served_model_name; /* defaults to model */
    qe_plan_engine_args args; /* effective: engine args overlaid by the model's own */
    int line;                /* 1-based line of the model entry, for messages */
} qe_plan_model;

typedef struct {
    char *task;
    int limit; /* 0 = whole dataset */
    enum qe_plan_priority priority;
    int line;
} qe_plan_task;

typedef struct {
    bool apply_chat_template;
    int max_gen_toks;          /* 0 = task default */
    bool has_temperature;
    double temperature;
    bool has_top_p;
    double top_p;
    bool has_seed;
    long seed;
    enum qe_plan_think think;
    char *system_instruction;  /* NULL = none */
    int num_concurrent;        /* 0 = default */
    int repeats;               /* 0 = 1 */
} qe_plan_generation;

typedef struct {
    char *path;    /* file the plan came from (for messages) */
    char *name;
    double budget; /* seconds; 0 = no budget */
    char *output;  /* output directory, default "results/" */
    char *naming;  /* output file name template, see qe_plan_output_name */
    qe_plan_kv *env;
    size_t n_env;
    qe_plan_engine engine;
    qe_plan_model *models;
    size_t n_models;
    qe_plan_task *tasks;
    size_t n_tasks;
    qe_plan_generation generation;
} qe_plan;

/* Default naming template: the experiment document's result file names
 * (lmeval_tp2_bf16_aime24_limit50). */
#define QE_PLAN_DEFAULT_NAMING "lmeval_tp{tp}_{model}_{task}_limit{limit}"

typedef bool (*qe_plan_task_exists_fn)(const char *task);

/* Reads and parses the file at path. task_exists may be NULL (no check).
 * On success *out is a new plan (free with qe_plan_free). On failure returns
 * QE_EINVAL / QE_EIO / QE_ELIMIT with err = "PATH:LINE:COL: message". */
int qe_plan_load(const char *path, qe_plan_task_exists_fn task_exists, qe_plan **out, qe_err *err);
/* Same from memory; name is used in messages as the file name. */
int qe_plan_parse(const char *text, size_t len, const char *name,
                  qe_plan_task_exists_fn task_exists, qe_plan **out, qe_err *err);
void qe_plan_free(qe_plan *p);

/* Parses a duration: "3h", "90m", "45s", "1h30m", "2.5h" or plain seconds.
 * Returns 0 and *seconds > 0, or QE_EINVAL. */
int qe_plan_parse_duration(const char *s, double *seconds);

/* Expands the naming template for models[mi] × tasks[ti] into out (appends).
 * Placeholders: {model} models[].name, {task}, {limit} (the number, or "all"),
 * {tp} tensor_parallel_size (1 if unset), {plan} the plan name,
 * {served} served_model_name. */
int qe_plan_output_name(const qe_plan *p, size_t mi, size_t ti, qe_buf *out);

const char *qe_plan_engine_kind_name(enum qe_plan_engine_kind k);

#endif
