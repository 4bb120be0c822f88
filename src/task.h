/* task: the built-in benchmark tasks, exactly as lm-eval v0.4.9.2 defines
 * them (hendrycks_math500, aime24, aime25, gsm8k; their YAML/utils are
 * identical from v0.4.9.2 through lm-eval HEAD 4e7e0d4, see docs/tasks.md).
 *
 * A task knows its dataset (compiled into the binary from the JSONL files under data/),
 * its prompt (doc_to_text), target, stop sequences, generation kwargs as
 * lm-eval logs them, metric/filter names, and gsm8k's seeded 5-shot
 * context. Documents are parsed from the embedded data once, on first use
 * (thread-safe, pthread_once), and stay alive for the life of the process:
 * every json_t handed out by this module is BORROWED unless stated. This
 * lazily-filled, afterwards-immutable cache is the module's only state. */
#ifndef QE_TASK_H
#define QE_TASK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

typedef struct qe_task qe_task;

/* How a prompt is built (lm-eval's CLI flags). Zero-init = lm-eval default. */
typedef struct {
    const char *system_instruction; /* NULL or "" = none */
    int num_fewshot;                /* <0 or QE_TASK_FEWSHOT_DEFAULT: task default */
    bool fewshot_as_multiturn;      /* chat form only; lm-eval 0.4.9.2 default false */
} qe_prompt_opts;
#define QE_TASK_FEWSHOT_DEFAULT (-1)
#define QE_PROMPT_OPTS_INIT {NULL, QE_TASK_FEWSHOT_DEFAULT, false}

/* Registry. Returns NULL for an unknown name. */
const qe_task *qe_task_find(const char *name);
size_t qe_task_count(void);
const qe_task *qe_task_at(size_t i); /* NULL if i >= count */

/* Static facts (strings are static, never NULL unless stated). */
const char *qe_task_name(const qe_task *t);
const char *qe_task_version(const qe_task *t);      /* "1.0", "0.0", "3.0" */
double qe_task_version_number(const qe_task *t);    /* as lm-eval's `versions` */
const char *qe_task_dataset_path(const qe_task *t); /* HF id, e.g. "Maxwell-Jia/AIME_2024" */
const char *qe_task_dataset_name(const qe_task *t); /* NULL when lm-eval has none */
const char *qe_task_test_split(const qe_task *t);
const char *qe_task_data_file(const qe_task *t);    /* embedded file name */
int qe_task_num_fewshot(const qe_task *t);          /* effective default: 0 or 5 */
/* max_gen_toks from the YAML, or 0 when the YAML has none (the backend
 * default, 256 in lm-eval, applies). */
int qe_task_max_gen_toks(const qe_task *t);
size_t qe_task_until_count(const qe_task *t);
const char *qe_task_until(const qe_task *t, size_t i);
const char *qe_task_metric(const qe_task *t);        /* "exact_match" */
size_t qe_task_filter_count(const qe_task *t);       /* 1 ("none") or 2 (gsm8k) */
const char *qe_task_filter(const qe_task *t, size_t i);
const char *qe_task_doc_to_text_template(const qe_task *t);   /* Jinja source */
const char *qe_task_doc_to_target_template(const qe_task *t); /* Jinja source */

/* Generation kwargs exactly as logged in arguments.gen_args_0.arg_1
 * (key order and types). NEW reference: caller json_decref()s. */
json_t *qe_task_gen_kwargs(const qe_task *t);
/* The task's `configs` entry as lm-eval dumps it (best effort: function
 * bodies are replaced by their YAML reference). NEW reference. */
json_t *qe_task_config(const qe_task *t);

/* Documents (parsed on first use; errors only if embedded data is bad). */
int qe_task_size(const qe_task *t, size_t *n, qe_err *e);
/* Borrowed doc object (keys in dataset column order), or NULL + error. */
json_t *qe_task_doc(const qe_task *t, size_t i, qe_err *e);
/* target = str(doc_to_target(doc)); appended to out. */
int qe_task_target(const qe_task *t, size_t i, qe_buf *out, qe_err *e);
/* doc_to_text(doc) alone (no fewshot, no system). Appended to out. */
int qe_task_doc_text(const qe_task *t, size_t i, qe_buf *out, qe_err *e);

/* Training-doc indices lm-eval's sampler gives doc i (rnd = Random(1234)
 * shared by all docs and advanced once per doc in doc order, which is also
 * what `--limit` does). Writes up to cap indices, *n = count (0 for
 * zero-shot tasks). num_fewshot < 0 = task default. */
int qe_task_fewshot(const qe_task *t, size_t i, int num_fewshot, size_t *idx, size_t cap,
                    size_t *n, qe_err *e);
/* Borrowed training (fewshot split) doc. */
json_t *qe_task_fewshot_doc(const qe_task *t, size_t j, qe_err *e);

/* Raw prompt (no chat template), appended to out:
 * system_instruction + fewshot examples + doc_to_text(doc). */
int qe_task_context(const qe_task *t, size_t i, const qe_prompt_opts *o, qe_buf *out, qe_err *e);
/* Chat form: NEW json array of {"role","content"} messages (system if
 * given, then the user turn(s)); caller json_decref()s *messages. */
int qe_task_messages(const qe_task *t, size_t i, const qe_prompt_opts *o, json_t **messages,
                     qe_err *e);

/* lm-eval --limit: limit < 1.0 -> ceil(size*limit), else (size_t)limit;
 * result above the dataset size is clamped to it and *clamped set.
 * limit <= 0 is an error (lm-eval finds no docs). */
int qe_task_limit(const qe_task *t, double limit, size_t *n, bool *clamped, qe_err *e);

#endif
