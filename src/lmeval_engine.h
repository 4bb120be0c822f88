/* lmeval_engine: engine kind `lm-eval` of `qeval sweep` -- run the
 * reference harness itself, exactly as the experiment document writes it:
 *
 *   python -m lm_eval --model vllm \
 *     --model_args pretrained=M,tensor_parallel_size=2,gpu_memory_utilization=0.90,
 *                  max_model_len=4096,max_num_seqs=32,download_dir=D \
 *     --tasks T --batch_size 1 --limit N --apply_chat_template \
 *     --gen_kwargs max_gen_toks=1024 --log_samples \
 *     --output_path <output>/<name>/<naming>.json
 *
 * one subprocess per model x task (own process group, plan env, output to a
 * log file), then find what it wrote: with an output path ending in .json,
 * lm-eval (>= 0.4.3) writes <dir>/<stem>_<date_id>.json and
 * <dir>/samples_<task>_<date_id>.jsonl (notes/lmeval-parity.md §3.5), and
 * read the main metric back from the results file.
 *
 * Library rules: nothing printed. Ownership: qe_lmeval_result strings are
 * freed by qe_lmeval_result_free; argv by qe_lmeval_strv_free. */
#ifndef QE_LMEVAL_ENGINE_H
#define QE_LMEVAL_ENGINE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "plan.h"

typedef struct {
    char *results_path;  /* <dir>/<stem>_<date>.json */
    char *samples_path;  /* <dir>/samples_<task>_<date>.jsonl, NULL if not found */
    char *log_path;      /* the subprocess's stdout+stderr */
    double accuracy;     /* results.<task>["exact_match,<the task's first filter>"] (gsm8k:
                            strict-match; else "none"), or the first metric; NaN if absent */
    double stderr_;      /* its _stderr, NaN if absent or "N/A" */
    size_t n;            /* n-samples.<task>.effective, 0 if absent */
    double seconds;      /* wall time of the subprocess */
    int exit_status;     /* raw waitpid status */
    char log_tail[4096]; /* last lines of the log when it failed */
} qe_lmeval_result;

/* argv for plan->models[mi] x plan->tasks[ti] with output stem path
 * out_json (".../<naming>.json"). argv[0] is engine.binary or "python".
 * NULL-terminated; free with qe_lmeval_strv_free. */
int qe_lmeval_build_argv(const qe_plan *p, size_t mi, size_t ti, const char *out_json, char ***argv,
                         qe_err *err);
void qe_lmeval_strv_free(char **v);

/* Dry-run text: "env K=V" lines then the shell-quoted command, appended. */
int qe_lmeval_dry_run_cmd(const qe_plan *p, size_t mi, size_t ti, const char *out_json, qe_buf *out,
                          qe_err *err);

/* Runs the harness for one pair, waits for it (polling stop: on a stop
 * request the group gets SIGTERM, then SIGKILL after grace seconds, and
 * QE_EINTR is returned), then locates and reads its outputs. log_path gets
 * the subprocess output (an existing file is kept: ".1", ".2", ... used).
 * Returns 0 with res filled, QE_ESERVER when the harness failed (res->log_tail
 * says why), QE_EINVAL when it exited 0 but no results file appeared. */
int qe_lmeval_run(const qe_plan *p, size_t mi, size_t ti, const char *out_json, const char *log_path,
                  volatile sig_atomic_t *stop, double grace, qe_lmeval_result *res, qe_err *err);
void qe_lmeval_result_free(qe_lmeval_result *r);

/* Finds the newest "<stem>_*.json" in dir whose name is not in `before`
 * (names present before the run, NULL = none) and the matching
 * "samples_<task>_<date>.jsonl". Paths are malloc'd. */
int qe_lmeval_locate(const char *dir, const char *stem, const char *task, char *const *before, size_t n_before,
                     char **results_path, char **samples_path, qe_err *err);

/* Reads the main metric of `task` from an lm-eval results JSON: the
 * registry task's metric with its first filter (the value the sweep's table
 * names), else "exact_match,none", else the first metric found. */
int qe_lmeval_read_metric(const char *results_path, const char *task, double *acc, double *stderr_, size_t *n,
                          qe_err *err);

#endif
