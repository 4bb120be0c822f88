/* compare: the paired-comparison engine behind `qeval compare` and
 * `qeval report`.
 *
 * Pure: no file I/O. The caller (the CLI, after reading results/samples or
 * verdicts JSONL) hands in, per task x filter, a baseline model and other
 * models, each a list of per-problem records. The engine pairs problems by
 * key, computes accuracies, the paired difference with Newcombe's 95% CI,
 * the exact McNemar p-value, flips, truncation/extraction diagnostics and
 * power, and writes the result as a table, JSON, Markdown or CSV.
 * Statistics: src/stats.h, docs/statistics.md. */
#ifndef QE_COMPARE_H
#define QE_COMPARE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* One model's verdict on one problem. All pointers are borrowed (the engine
 * never frees them) and may be NULL when unknown. */
typedef struct {
    const char *key;           /* doc_hash, or doc_id as text; required */
    double correct;            /* 0/1, or fraction correct over repeats */
    int repeats;               /* samples behind `correct`; 0 or 1 = single */
    int maj_correct;           /* maj@k verdict with repeats, -1 unknown */
    const char *response;      /* full model text (hostile) */
    const char *extracted;     /* extracted answer; "" = none extractable */
    const char *gold;          /* reference answer */
    const char *finish_reason; /* "length" = truncated */
    long completion_tokens;    /* -1 unknown */
    long word_count;           /* -1 unknown (source data sometimes has it) */
} qe_compare_record;

/* Fills defaults: correct 0, repeats 1, maj_correct -1, tokens/words -1. */
void qe_compare_record_init(qe_compare_record *r);

/* Fills r from one line of the verdicts JSONL contract (`doc_id` int or
 * string and `correct` bool or 0/1 required; optional `response`, `gold`,
 * `extracted`, `finish_reason`, `doc_hash`, `completion_tokens`,
 * `word_count`; fractional `correct` with `repeats` k and `maj_correct` for
 * repeated sampling). The key is `doc_hash` when use_hash is set (error if
 * absent), else `doc_id`; an integer id is printed into keybuf (keycap >=
 * 24), a string id is borrowed. All strings are borrowed from `line`: keep it
 * (and keybuf) alive as long as the record. QE_EINVAL names the bad field. */
int qe_compare_record_from_json(const json_t *line, int use_hash, qe_compare_record *r,
                                char *keybuf, size_t keycap, qe_err *err);

typedef struct {
    const char *name;              /* model / setting label; borrowed */
    const qe_compare_record *recs; /* borrowed, keys unique */
    size_t n;
} qe_compare_model;

/* One task x filter: the baseline and the models compared against it. */
typedef struct {
    const char *task;   /* borrowed */
    const char *filter; /* borrowed; NULL = "none" */
    qe_compare_model baseline;
    const qe_compare_model *models; /* borrowed, n_models >= 1 */
    size_t n_models;
} qe_compare_input;

/* Per-model diagnostics; NaN = not known from the data. */
typedef struct {
    double accuracy;          /* mean of `correct` over paired problems */
    double truncation_rate;   /* finish_reason "length" or unclosed <think> */
    double empty_rate;        /* empty response or extracted == "" */
    double mean_response_chars;
    double mean_completion_tokens;
    double mean_word_count;
    /* with repeats (k > 1 on every paired problem), else NaN / 0 */
    int k;
    double avg_at_k, pass_at_k, maj_at_k, agreement;
} qe_compare_side;

/* One model against the baseline on one task x filter. Strings owned. */
typedef struct {
    char *task, *filter, *model, *baseline;
    size_t n_paired, unpaired_model, unpaired_baseline;
    qe_compare_side m, b; /* model and baseline, over paired problems */
    double delta;         /* m.accuracy - b.accuracy */
    double ci_low, ci_high;     /* 95%: Newcombe (single) or bootstrap (repeats) */
    const char *ci_method;      /* "newcombe" or "bootstrap"; static */
    double wald_low, wald_high; /* secondary */
    double mcnemar_p;           /* exact, on the binary verdicts */
    uint64_t both, gained_n, lost_n, neither;
    char **gained; /* keys right only in model, baseline order */
    char **lost;   /* keys right only in baseline */
    double psi;    /* discordance rate (gained+lost)/n_paired */
    double mdd;    /* min detectable |delta|, 80% power, 5% two-sided */
    double n_for_1pt, n_for_2pt; /* problems needed to detect 1 / 2 points */
    char *verdict; /* plain-language sentence */
} qe_compare_row;

/* Per task x filter: rows per model and the union of problem keys for the
 * per-problem drill-down. idx[j][i] indexes the record of key i in model j
 * (j = 0 the baseline, j = 1.. the models), SIZE_MAX when missing. The
 * group borrows the input's models: keep the input alive. */
typedef struct {
    const qe_compare_input *in;
    qe_compare_row *rows; /* in->n_models rows */
    size_t n_keys;
    const char **keys;    /* borrowed from records */
    size_t **idx;         /* [1 + n_models][n_keys] */
} qe_compare_group;

typedef struct {
    qe_compare_group *groups;
    size_t n_groups;
} qe_compare_result;

typedef struct {
    uint64_t bootstrap_seed;  /* default 20240901 */
    size_t bootstrap_iters;   /* default 2000 */
} qe_compare_opts;

/* Runs the comparison on n_in groups. opts may be NULL (defaults).
 * On success *out is a new result: free with qe_compare_result_free.
 * Errors: QE_EINVAL for a NULL key, a duplicate key within a model, or a
 * model with no paired problems (message names task/model/key). */
int qe_compare_run(const qe_compare_input *in, size_t n_in, const qe_compare_opts *opts,
                   qe_compare_result **out, qe_err *err);
void qe_compare_result_free(qe_compare_result *r);

/* The whole comparison as text, appended to out. */
enum qe_compare_format {
    QE_COMPARE_TABLE = 0, /* aligned columns + verdict lines (default) */
    QE_COMPARE_JSON,      /* one JSON array, one object per row */
    QE_COMPARE_MD,
    QE_COMPARE_CSV,
};
/* "table", "json", "md"/"markdown", "csv" -> format; -1 if unknown. */
int qe_compare_format_parse(const char *name);
int qe_compare_write(const qe_compare_result *r, int format, qe_buf *out, qe_err *err);
/* Flipped problems of every row, for the table output: up to max_per_row
 * keys per direction, each with short previews (extracted answer, else the
 * response's last 60 bytes) of the model and the baseline. */
int qe_compare_write_flips(const qe_compare_result *r, size_t max_per_row, qe_buf *out,
                           qe_err *err);
/* The JSON array as a jansson value (new reference; caller json_decref). */
json_t *qe_compare_to_json(const qe_compare_result *r);
/* A McNemar p as the mcnemar_p column prints it (report's table too, so
 * both agree): "-" when not finite, %.1e below 1e-4, else %.4f. */
void qe_compare_format_p_cell(char *out, size_t cap, double p);

/* Config mismatch: differences between two run configs (JSON objects with
 * gen kwargs, limit, chat template sha, system instruction, thinking,
 * prompt hashes...), compared recursively. Appends one line per difference
 * ("gen_kwargs.temperature: 0 vs 0.6", "limit: 100 vs (missing)") to out and
 * returns the number of differences (0 = same), or a negative qe_status.
 * Keys listed in `ignore` (NULL-terminated, may be NULL) are skipped at the
 * top level (e.g. "model", "timestamp"). */
int qe_compare_config_diff(const json_t *a, const json_t *b, const char *const *ignore,
                           qe_buf *out, qe_err *err);

#endif
