/* lmeval_io: read and write lm-evaluation-harness 0.4.x files.
 *
 * Results JSON (results_<date>.json) and samples JSONL
 * (samples_<task>_<date>.jsonl) are lm-eval's interchange format; qeval
 * reads lm-eval's and writes its own byte-compatibly (key order, Python
 * json.dumps formatting via pyjson, hashes via hash), so either tool can
 * read the other's output. Layout and recipes: docs/lmeval-io.md and
 * notes/lmeval-parity.md §3.5–3.7.
 *
 * Ownership: every struct returned by a _read or _open function is freed with the
 * matching *_free. String and json_t pointers inside them are borrowed from
 * the parsed document and live until that free (or, for samples, until the
 * next qe_lmeval_samples_next call). */
#ifndef QE_LMEVAL_IO_H
#define QE_LMEVAL_IO_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "buf.h"
#include "err.h"

/* ---------- aggregation (api/metrics.py) ---------- */

enum qe_lmeval_sum { QE_LMEVAL_SUM_FOLD = 0, /* Python <= 3.11 sum() */
                     QE_LMEVAL_SUM_NEUMAIER = 1 /* Python >= 3.12 sum() */ };

/* sum(x)/n with Python's sum() of the given kind. n must be > 0. */
double qe_lmeval_mean(const double *x, size_t n, enum qe_lmeval_sum kind);
/* mean_stderr: sqrt(sum(pow(x-mu,2))/(n-1))/sqrt(n), summed in array order.
 * Returns 0 and sets *out, or 1 when n <= 1 (lm-eval writes "N/A"). */
int qe_lmeval_mean_stderr(const double *x, size_t n, enum qe_lmeval_sum kind, double *out);

/* ---------- results JSON ---------- */

typedef struct {
    const char *key;     /* "exact_match,none" */
    char *metric;        /* "exact_match" (owned by the results struct) */
    char *filter;        /* "none" */
    int has_value;       /* value is a number */
    double value;
    int stderr_kind;     /* 0 absent/null, 1 number, 2 "N/A" */
    double stderr_val;
} qe_lmeval_metric;

typedef struct {
    const char *name;    /* key in "results" */
    const char *alias;   /* may be NULL */
    int is_group;        /* listed with subtasks in group_subtasks */
    size_t n_metrics;
    qe_lmeval_metric *metrics; /* in file order */
    long n_original, n_effective; /* -1 when absent */
    long n_shot;         /* -1 when absent */
    const json_t *version;    /* versions[task] or NULL */
    const json_t *higher_is_better; /* or NULL */
    const json_t *config;     /* configs[task] or NULL */
    const json_t *generation_kwargs; /* configs[task].generation_kwargs or NULL */
    const char *task_hash;    /* task_hashes[task] or NULL */
} qe_lmeval_task;

typedef struct {
    char *path;
    json_t *root;
    const char *model_name;  /* top-level model_name, else from model_args */
    const char *model;       /* config.model ("vllm", "local-chat-completions") */
    const char *model_args;  /* config.model_args when a string, else NULL */
    const json_t *model_args_json; /* config.model_args as given */
    int has_limit;
    double limit;            /* config.limit */
    const json_t *gen_kwargs;    /* config.gen_kwargs (string, object or NULL) */
    int has_date;
    double date;             /* top-level "date" (unix seconds) */
    const char *date_id;     /* from the file name, e.g. 2025-12-24T00-52-25.664596, or NULL */
    const char *lm_eval_version;
    const char *chat_template_sha;
    int has_chat_template;   /* chat_template is a string, or config.model is
                              * local-chat-completions */
    const char *system_instruction;
    size_t n_tasks;
    qe_lmeval_task *tasks;   /* in file order */
    char *owned_model_name;  /* private: model_name parsed from model_args */
    char *owned_date_id;     /* private */
} qe_lmeval_results;

/* Reads any lm-eval 0.4.x results file. Errors name the file and, for bad
 * JSON, line:column. *out is NULL on failure. */
/* A results file larger than this is refused before it is parsed (lm-eval's
 * are kilobytes; the cap keeps a wrong path from loading gigabytes). */
#define QE_LMEVAL_RESULTS_MAX ((long long)64 << 20)

int qe_lmeval_results_read(const char *path, qe_lmeval_results **out, qe_err *e);
void qe_lmeval_results_free(qe_lmeval_results *r);
const qe_lmeval_task *qe_lmeval_results_task(const qe_lmeval_results *r, const char *name);

/* ---------- samples JSONL (streaming) ---------- */

#define QE_LMEVAL_MAX_LINE (256u << 20) /* longer lines are rejected */

typedef struct {
    long line;                  /* 1-based line number in the file */
    json_t *obj;                /* the whole line (borrowed, see above) */
    int doc_id_is_int;
    long long doc_id;
    const char *doc_id_text;    /* when doc_id is a string */
    const json_t *doc, *arguments, *resps, *filtered_resps;
    const char *target;         /* NULL when absent; numbers stay in obj */
    const char *filter;         /* "none" when absent */
    const json_t *metrics;      /* array of names or NULL */
    const char *doc_hash, *prompt_hash, *target_hash; /* NULL when absent */
    const char *prompt;         /* arguments.gen_args_0.arg_0 if a string */
    const char *response;       /* filtered_resps[0] or resps[0][0] if strings */
    int has_metric;
    const char *metric_name;    /* first name of metrics present as a number */
    double metric_value;        /* its value (bools as 0/1) */
} qe_lmeval_sample;

/* The text of a JSON string value for C-string code: the value itself when
 * it holds no NUL, else a copy in scratch with each NUL (U+0000) replaced
 * by U+FFFD, so nothing after a NUL is lost (docs/reliability.md). *out is
 * NULL when v is not a string; it lives as long as v and scratch. 0 or
 * QE_ENOMEM. */
int qe_lmeval_text(const json_t *v, qe_buf *scratch, const char **out);

/* The completion token count a samples or verdicts line records:
 * "completion_tokens", else "tokens": {"completion"} or
 * {"completion_tokens"}; -1 when absent or not an integer. */
long qe_lmeval_completion_tokens(const json_t *line);

typedef struct qe_lmeval_samples qe_lmeval_samples;

/* Opens for streaming; memory is bounded by the longest line. */
int qe_lmeval_samples_open(const char *path, qe_lmeval_samples **out, qe_err *e);
/* Reads the next non-empty line into *s. Returns 1 with a sample, 0 at end
 * of file, or a negative status with e = "file:line: what is wrong"; after
 * a QE_EINVAL line the caller may call next again to skip it. QE_EIO and
 * QE_ELIMIT (line above QE_LMEVAL_MAX_LINE, skipped too) can also occur. */
int qe_lmeval_samples_next(qe_lmeval_samples *r, qe_lmeval_sample *s, qe_err *e);
void qe_lmeval_samples_close(qe_lmeval_samples *r);
/* Lowers (or raises) the line cap of this reader, default QE_LMEVAL_MAX_LINE. */
void qe_lmeval_samples_set_max_line(qe_lmeval_samples *r, size_t max_bytes);

/* ---------- writers ---------- */

/* Builds a sample object in lm-eval's key order and computes its hashes.
 * doc, arguments: borrowed (the result holds its own references).
 * metric_names/values: n_metrics pairs (values written as ints when they
 * are integral and int_metrics is set, as lm-eval does for exact_match).
 * extras: object of qeval-only fields appended last (may be NULL).
 * Returns a new reference or NULL (e says why). */
typedef struct {
    long long doc_id;
    const json_t *doc;
    const char *target;
    const char *prompt;        /* arguments.gen_args_0.arg_0 */
    const json_t *gen_kwargs;  /* arguments.gen_args_0.arg_1 */
    const char *response;      /* resps [[response]] */
    const char *filtered;      /* filtered_resps [filtered] (NULL: response) */
    const char *filter;        /* NULL: "none" */
    size_t n_metrics;
    const char *const *metric_names;
    const double *metric_values;
    int int_metrics;
    const json_t *extras;
} qe_lmeval_sample_in;

json_t *qe_lmeval_sample_build(const qe_lmeval_sample_in *in, qe_err *e);
/* Appends json.dumps(sample, ensure_ascii=False) + "\n" to out. */
int qe_lmeval_sample_format(qe_buf *out, const json_t *sample, qe_err *e);

/* A results document with lm-eval 0.4.x top-level keys in order, filled
 * from info; tasks are added with qe_lmeval_results_add_task. */
typedef struct {
    const char *model;           /* config.model, e.g. "local-chat-completions" */
    const char *model_args;      /* config.model_args */
    const char *model_name;
    int has_limit;
    double limit;
    const json_t *gen_kwargs;    /* config.gen_kwargs (NULL: null) */
    double date;                 /* unix seconds */
    const char *system_instruction;  /* NULL: null */
    const char *chat_template;       /* NULL: null */
    int fewshot_as_multiturn;
    double start_time, end_time;
    const char *version;         /* qeval version, lm_eval_version = "qeval <version>" */
} qe_lmeval_results_info;

json_t *qe_lmeval_results_new(const qe_lmeval_results_info *info, qe_err *e);
/* enable_thinking as a results file records it: in model_args
 * ("...,enable_thinking=False", lm-eval's vllm and qeval), a model_args
 * object, or gen_kwargs.chat_template_kwargs; NULL if absent (new ref). */
json_t *qe_lmeval_thinking(const qe_lmeval_results *r);
typedef struct {
    const char *task;
    const char *metric;        /* "exact_match" */
    const char *filter;        /* "none" */
    double value;
    int stderr_na;             /* write "N/A" */
    double stderr_val;
    long n_original, n_effective;
    long n_shot;
    double version;
    const json_t *config;      /* configs[task] (borrowed; NULL: {}) */
    const char *task_hash;     /* NULL: omitted */
} qe_lmeval_task_in;
int qe_lmeval_results_add_task(json_t *results, const qe_lmeval_task_in *t, qe_err *e);
/* Serializes with json.dumps(indent=2, ensure_ascii=False). */
int qe_lmeval_results_format(qe_buf *out, const json_t *results, qe_err *e);

/* Writes data to path atomically (temp file, fsync, link into place, fsync
 * of the directory). Never replaces an existing file: QE_EIO "exists". */
int qe_lmeval_write_file(const char *path, const void *data, size_t n, qe_err *e);

/* The temp file of qe_lmeval_write_file(".../name") is
 * ".../.name" QE_LMEVAL_TMP_TAG "<pid>.XXXXXX"; it is unlinked on every
 * return, so one is only left by a process killed while writing. */
#define QE_LMEVAL_TMP_TAG ".qeval-tmp."
/* Removes the temp files of that pattern in path's directory whose writer
 * (pid) no longer exists (kill(pid, 0) fails with ESRCH). Best effort:
 * returns how many were removed; never touches any other file. */
size_t qe_lmeval_remove_stale_temps(const char *path);

/* ---------- paths ---------- */

/* re.sub(r"[\"<>:/\|\\?\*\[\]]+", "__", name). Returns malloc'd text. */
char *qe_lmeval_sanitize_model_name(const char *name);
/* datetime.fromtimestamp(t).isoformat().replace(":", "-") in local time,
 * e.g. 2025-12-24T00-52-25.664596. out must hold 32 bytes. */
void qe_lmeval_date_id(double unix_time, char out[32]);
/* Output paths as lm-eval chooses them. output_path ending in ".json":
 * <parent>/<stem>_<date>.json and <parent>/samples_<task>_<date>.jsonl;
 * otherwise <output_path>/<sanitized>/results_<date>.json etc. task may be
 * NULL to get only the results path. Results are malloc'd. */
int qe_lmeval_paths(const char *output_path, const char *model_name, const char *date_id,
                    const char *task, char **results_path, char **samples_path, qe_err *e);
/* Recognizes "samples_<task>_<date>.jsonl" (basename); fills task/date
 * (malloc'd) and returns 1, else 0. */
int qe_lmeval_parse_samples_name(const char *path, char **task, char **date_id);
/* Returns the date id at the end of "<stem>_<date>.json", or NULL. The
 * pointer is into path. */
const char *qe_lmeval_results_name_date(const char *path);

#endif
