/* inputs: turn the paths given to `qeval compare` / `qeval report` into
 * paired-comparison inputs (compare.h).
 *
 * Each path is a file or a directory of qeval's or lm-eval's outputs
 * (results_<date>.json + samples_<task>_<date>.jsonl, searched recursively)
 * or of verdicts JSONL (*.verdicts.jsonl, records.h). Per-problem records
 * come from the samples / verdicts files; run configs (gen kwargs, limit,
 * chat template, system instruction, thinking, task prompt template) come
 * from the results file with the samples' date id, so mismatched runs can
 * be refused (qe_inputs_mismatches).
 *
 * Models: a record's model is its file's model_name (results), its line's
 * "model" (verdicts), else the name of the directory holding the file.
 * Usually one path = one model, but a directory holding several models'
 * outputs yields all of them. The same name from two different paths is
 * disambiguated as "name@<dir>" (then "name#2"). When one model has several
 * files for the same task (re-runs), the newest (date id, else mtime) wins,
 * with a warning.
 *
 * Pairing: per task x filter, by doc_hash when every record in the group has
 * one, else by doc_id with a warning. Keys shown to users are doc ids even
 * when pairing by hash (the baseline's doc id for a hash; "id#hash8" if two
 * hashes would share an id).
 *
 * Errors: a malformed line or a duplicate problem in one model's file fails
 * the whole load with QE_EINVAL and "file:line: what"; missing paths fail
 * with QE_EIO. Softer problems (skipped files, pairing fallback, superseded
 * runs, tasks a model lacks) are collected in `warnings` for the CLI to print.
 *
 * Ownership: everything reachable from a qe_inputs belongs to it, including
 * the compare inputs in `cmp`; release it with qe_inputs_free, after
 * freeing any qe_compare_result built from `cmp`. Records may be modified
 * in place (e.g. re-scoring `correct`) before running the comparison. */
#ifndef QE_INPUTS_H
#define QE_INPUTS_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "compare.h"
#include "err.h"

#define QE_INPUTS_MAX_FILES 100000
#define QE_INPUTS_MAX_DEPTH 32
#define QE_INPUTS_MAX_RECORDS 10000000

typedef struct {
    char *name;   /* display name, unique */
    char *raw;    /* name as found in the files */
    char *source; /* the path it came from, as given */
    char *dir;    /* the directory of its files (resolved): one model = one
                     name in one directory, so two precisions served under
                     one name in two output paths are two models */
} qe_inputs_model;

/* One model's records on one task x filter (n may be 0: model lacks it). */
typedef struct {
    qe_compare_record *recs;   /* keys owned here; other strings borrowed */
    size_t n;
    const char **prompt_hash;  /* [n], NULL entries when unknown */
    const char **doc_hash;     /* [n], NULL entries when unknown */
    long *line;                /* [n], 1-based line in `file` */
    char *file;                /* the file the records came from */
    json_t *config;            /* run config for this task, NULL = unknown */
} qe_inputs_side;

typedef struct {
    char *task, *filter;
    int by_hash;               /* 1 = paired by doc_hash, 0 = by doc_id */
    qe_inputs_side *sides;     /* [n_models], index = model index */
} qe_inputs_group;

typedef struct {
    const char *baseline; /* display name, raw name or input path; NULL = first model */
    const char *task;     /* only this task; NULL = all */
    int *arg_refused;     /* may be NULL; set to 1 when the load failed because
                           * baseline or task names nothing in the inputs */
} qe_inputs_opts;

typedef struct {
    qe_inputs_model *models;
    size_t n_models;
    size_t baseline; /* index into models */
    qe_inputs_group *groups;
    size_t n_groups;
    /* Ready for qe_compare_run: groups where the baseline and at least one
     * other model have records. cmp_group[i] = index into groups. */
    qe_compare_input *cmp;
    size_t n_cmp;
    size_t *cmp_group;
    char **warnings;
    size_t n_warnings;
    void *priv; /* private storage */
} qe_inputs;

/* Loads n_paths paths. opts may be NULL. On success *out is new (free with
 * qe_inputs_free). Fails (QE_EINVAL) when nothing comparable remains: fewer
 * than two models, an unknown baseline, or no task shared with the baseline. */
int qe_inputs_load(const char *const *paths, size_t n_paths, const qe_inputs_opts *opts,
                   qe_inputs **out, qe_err *e);
void qe_inputs_free(qe_inputs *in);

/* Config mismatches of every compared model against the baseline, one line
 * each ("math500/none fp8 vs bf16: gen_kwargs.temperature: 0 vs 0.6"), plus
 * one line per pair whose prompts (prompt_hash of paired problems) differ.
 * Appends to out; returns the number of lines, or a negative qe_status.
 * Models whose config is unknown (verdicts files) are not checked; one
 * line naming them is appended to notes (may be NULL). */
int qe_inputs_mismatches(const qe_inputs *in, qe_buf *out, qe_buf *notes, qe_err *e);

/* Index of group's side for the model named in cmp input i, j-th model
 * (j = 0 baseline, 1.. models): the model index. */
size_t qe_inputs_cmp_model(const qe_inputs *in, size_t i, size_t j);

#endif
