/* rescore: re-score existing lm-eval samples files with lm-eval's own
 * scoring (score_lmeval) or with qeval's math verifier (verify, --scorer
 * math), and say which recorded verdicts the new scorer disagrees with.
 *
 * A samples_<task>_<date>.jsonl file holds one line per document and
 * filter. For each line, the raw response (resps[0][0]) and the doc are
 * scored with qe_lm_score_doc for the task; the verdict of the line's filter
 * (gsm8k lines name "strict-match" or "flexible-extract", math tasks "none")
 * is compared with the metric value lm-eval recorded on the line. Results
 * come out per filter, in order of first appearance in the file. The file
 * is streamed (memory bounded by the longest line plus 16 bytes per line),
 * unless re-scored lines are asked for (keep_samples), which are built in
 * memory.
 *
 * With the math scorer (QE_RESCORE_MATH) each document gets one verdict:
 * qe_verify_response(gold, resps[0][0]) where gold is the task's gold
 * answer (qe_lm_gold; gsm8k: the text after the last "####"). Undecided
 * counts as wrong and is counted in n_undecided. The result has a single
 * group whose filter is QE_RESCORE_MATH_FILTER; only the lines of the
 * first lm-eval filter seen in the file are scored (gsm8k logs each
 * response twice) and compared with that filter's recorded verdicts
 * (recorded_filter); lines of the task's other filter are counted in
 * n_other_filter and skipped.
 *
 * Bad lines (malformed JSON, no doc, a doc the scorer rejects, an unknown
 * filter) are reported through a callback as "file:line: reason" and
 * skipped; the rest of the file is still scored. Nothing here prints.
 *
 * Ownership: qe_rescore_file returns a result freed with
 * qe_rescore_result_free; all strings and json_t inside belong to it. */
#ifndef QE_RESCORE_H
#define QE_RESCORE_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "lmeval_io.h"
#include "verify.h"

/* Largest number of lines scored per file (memory bound of the verdicts). */
#define QE_RESCORE_MAX_LINES (50u * 1000u * 1000u)

/* Which scorer re-scores the responses. */
enum qe_rescore_scorer {
    QE_RESCORE_LMEVAL = 0, /* score_lmeval: lm-eval's exact verdicts */
    QE_RESCORE_MATH = 1,   /* verify: qe_verify_response against the gold answer */
};

/* Filter name of the math scorer's group, in the output and in the
 * samples/results files it writes (so they never pass for lm-eval's). */
#define QE_RESCORE_MATH_FILTER "math-verify"

typedef struct {
    char *filter;          /* "none", "strict-match", "flexible-extract", or
                              QE_RESCORE_MATH_FILTER */
    char *recorded_filter; /* lm-eval filter whose recorded verdicts are compared
                              (== filter for the lmeval scorer) */
    const char *metric;    /* "exact_match" (static) */
    size_t n;              /* lines scored under this filter */
    double score;          /* mean of the new verdicts (lm-eval mean), 0 if n == 0 */
    int stderr_kind;       /* 1 stderr_val valid, 2 "N/A" (n <= 1), 0 none */
    double stderr_val;     /* lm-eval mean_stderr of the new verdicts */
    size_t n_recorded;     /* lines that carried a recorded metric value */
    double recorded_score; /* mean of the recorded values (valid if n_recorded) */
    size_t n_changed;
    json_t *changed;       /* array of doc ids (integers or strings) whose verdict differs */
    json_t *accepted_not_recorded; /* doc ids: new verdict 1, recorded 0 (subset of changed) */
    json_t *rejected_but_recorded; /* doc ids: new verdict 0, recorded 1 (the rest of changed) */
    size_t n_undecided;    /* math scorer: verdicts the verifier left undecided (scored 0) */
    json_t *undecided;     /* their doc ids */
    double *values;        /* the n new verdicts, in file order */
    size_t cap_values;
} qe_rescore_group;

typedef struct {
    char *file;
    char *task;
    char *date_id;          /* from the file name, or NULL */
    size_t n_lines;         /* non-empty lines read */
    size_t n_bad;           /* lines skipped (reported through on_bad_line) */
    int scorer;             /* enum qe_rescore_scorer used */
    size_t n_other_filter;  /* math scorer: lines of a second lm-eval filter, skipped */
    size_t n_groups;
    qe_rescore_group *groups;
    qe_buf samples;         /* re-scored lines, when keep_samples was set */
} qe_rescore_result;

typedef struct {
    const char *task;       /* task to use when the file name does not say; NULL: none */
    int keep_samples;       /* build re-scored samples lines into result->samples */
    int scorer;             /* enum qe_rescore_scorer; 0 = lmeval */
    enum qe_lmeval_sum sum_kind; /* Python sum() used for mean/stderr */
    /* Called once per skipped line with e->msg = "file:line: reason". */
    void (*on_bad_line)(void *arg, const qe_err *e);
    void *arg;
} qe_rescore_opts;

/* The tasks score_lmeval can score: 1 for hendrycks_math500, aime24, aime25,
 * gsm8k, else 0. */
int qe_rescore_task_supported(const char *task);

/* Task named by a samples file name (samples_<task>_<date>.jsonl), else
 * fallback (may be NULL). Returns a malloc'd name or NULL. */
char *qe_rescore_task_of(const char *path, const char *fallback);

/* Re-scores one samples file. Returns 0 with *out set (even if some lines
 * were bad), or a negative status with e = "file: reason" when the file
 * cannot be used at all (unreadable, no task known, unsupported task, read
 * error); *out is then NULL. */
int qe_rescore_file(const char *path, const qe_rescore_opts *o, qe_rescore_result **out, qe_err *e);
void qe_rescore_result_free(qe_rescore_result *r);

/* Writes r (which needs keep_samples) in lm-eval's layout under dir:
 * (math scorer: lines and results carry filter QE_RESCORE_MATH_FILTER,
 * each line a "math_verify" object with verdict/reason/gold/extracted,
 * and lm_eval_version "qeval rescore --scorer math")
 * <dir>/<model_sanitized>/samples_<task>_<date_id>.jsonl and
 * results_<date_id>.json, the results holding the new mean and stderr per
 * filter. Model, configs and n-samples come from the results file next to
 * the input (same date id) when there is one, else the model is the input's
 * parent directory name. Never overwrites (QE_EIO "exists"). The paths
 * written are returned malloc'd in *samples_path / *results_path (either
 * may be NULL if not wanted). */
/* The gold answer the math scorer compares with for task: qe_lm_gold, and
 * for gsm8k (whose gold is the whole worked answer) the text after the last
 * "####", trimmed. 0 and *out malloc'd (caller frees), or an error with e
 * filled. Shared with the runner's diagnostics (qeval run --scorer math). */
int qe_rescore_math_gold(const char *task, const json_t *doc, char **out, qe_err *e);

/* The math scorer's verdict of one response: qe_verify_response(gold,
 * response, vo, vr), except that for gsm8k a response containing "####"
 * is cut to the rest of that line first. Returns the verdict (1, 0, -1
 * undecided) or QE_ENOMEM. response NULL counts as "". */
int qe_rescore_math_verify(const char *task, const char *gold, const char *response,
                           const qe_verify_opts *vo, qe_verify_result *vr);

int qe_rescore_write(const qe_rescore_result *r, const char *dir, const char *date_id,
                     char **samples_path, char **results_path, qe_err *e);

#endif
