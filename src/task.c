/* task: built-in lm-eval tasks (see task.h). The registry is a static table
 * of facts read off lm-eval v0.4.9.2's YAML files; the datasets come from
 * the embedded JSONL files under data/, parsed once per file on first use. */
#include "task.h"

#include "embedded_data.h"
#include "pyrandom.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum text_kind { TEXT_PROBLEM, TEXT_QUESTION };

/* One parsed embedded JSONL file; filled once under its pthread_once. */
typedef struct {
    const char *file;
    pthread_once_t once;
    json_t *docs; /* array, or NULL if parsing failed */
    char err[256];
} dataset;

struct qe_task {
    const char *name, *version, *path, *ds_name, *train_split, *test_split, *fewshot_split;
    const char *text_tpl, *target_tpl;
    const char *text_prefix, *text_field, *target_field;
    int num_fewshot;     /* YAML value, -1 = unset (lm-eval then uses 0) */
    int max_gen_toks;    /* 0 = absent */
    const char *until[4];
    size_t n_until;
    const char *filters[2];
    size_t n_filters;
    const char *process_docs, *process_results;
    /* Where few-shot examples come from. hendrycks_math500 has no training
     * or fewshot split, so lm-eval falls back to the test docs; since its
     * fewshot_split (None) differs from test_split, it draws exactly k and
     * may then drop the evaluated doc (fewer than k examples). */
    dataset *test, *train;
};

static dataset ds_math500 = {"hendrycks_math500.jsonl", PTHREAD_ONCE_INIT, NULL, ""};
static dataset ds_aime24 = {"aime24.jsonl", PTHREAD_ONCE_INIT, NULL, ""};
static dataset ds_aime25 = {"aime25.jsonl", PTHREAD_ONCE_INIT, NULL, ""};
static dataset ds_gsm_test = {"gsm8k_test.jsonl", PTHREAD_ONCE_INIT, NULL, ""};
static dataset ds_gsm_train = {"gsm8k_train.jsonl", PTHREAD_ONCE_INIT, NULL, ""};

static const qe_task tasks[] = {
    {"hendrycks_math500", "1.0", "HuggingFaceH4/MATH-500", "default", NULL, "test", NULL,
     "Problem: {{problem}}\nAnswer:", "{{answer}}", "Problem: ", "problem", "answer", -1, 0,
     {"Problem:"}, 1, {"none"}, 1, "utils.process_docs", "utils.process_results", &ds_math500,
     &ds_math500},
    {"aime24", "0.0", "Maxwell-Jia/AIME_2024", NULL, "train", "train", "train",
     "Question: {{Problem}}\nAnswer:", "{{Answer}}", "Question: ", "Problem", "Answer", 0, 32768,
     {"Question:", "</s>", "<|im_end|>", "<|eot_id|>"}, 4, {"none"}, 1, NULL,
     "utils.process_results", &ds_aime24, &ds_aime24},
    {"aime25", "0.0", "math-ai/aime25", NULL, "test", "test", "test",
     "Question: {{problem}}\nAnswer:", "{{answer}}", "Question: ", "problem", "answer", 0, 32768,
     {"Question:", "</s>", "<|im_end|>", "<|eot_id|>"}, 4, {"none"}, 1, NULL,
     "utils.process_results", &ds_aime25, &ds_aime25},
    {"gsm8k", "3.0", "gsm8k", "main", "train", "test", "train", "Question: {{question}}\nAnswer:",
     "{{answer}}", "Question: ", "question", "answer", 5, 0,
     {"Question:", "</s>", "<|im_end|>"}, 3, {"strict-match", "flexible-extract"}, 2, NULL, NULL,
     &ds_gsm_test, &ds_gsm_train},
};
#define N_TASKS (sizeof tasks / sizeof tasks[0])

/* Guards qe_task_fewshot's work: the replay is O(doc_id) draws. */
#define MAX_FEWSHOT 64

const qe_task *qe_task_find(const char *name)
{
    for (size_t i = 0; name && i < N_TASKS; i++)
        if (!strcmp(tasks[i].name, name))
            return &tasks[i];
    return NULL;
}

size_t qe_task_count(void) { return N_TASKS; }
const qe_task *qe_task_at(size_t i) { return i < N_TASKS ? &tasks[i] : NULL; }
const char *qe_task_name(const qe_task *t) { return t->name; }
const char *qe_task_version(const qe_task *t) { return t->version; }
double qe_task_version_number(const qe_task *t) { return strtod(t->version, NULL); }
const char *qe_task_dataset_path(const qe_task *t) { return t->path; }
const char *qe_task_dataset_name(const qe_task *t) { return t->ds_name; }
const char *qe_task_test_split(const qe_task *t) { return t->test_split; }
const char *qe_task_data_file(const qe_task *t) { return t->test->file; }
int qe_task_num_fewshot(const qe_task *t) { return t->num_fewshot < 0 ? 0 : t->num_fewshot; }
int qe_task_max_gen_toks(const qe_task *t) { return t->max_gen_toks; }
size_t qe_task_until_count(const qe_task *t) { return t->n_until; }
const char *qe_task_until(const qe_task *t, size_t i) { return i < t->n_until ? t->until[i] : NULL; }
const char *qe_task_metric(const qe_task *t) { (void)t; return "exact_match"; }
size_t qe_task_filter_count(const qe_task *t) { return t->n_filters; }
const char *qe_task_filter(const qe_task *t, size_t i)
{
    return i < t->n_filters ? t->filters[i] : NULL;
}
const char *qe_task_doc_to_text_template(const qe_task *t) { return t->text_tpl; }
const char *qe_task_doc_to_target_template(const qe_task *t) { return t->target_tpl; }

/* ---- datasets ---------------------------------------------------------- */

static void parse_dataset(dataset *d)
{
    const struct qe_embedded *f = NULL;
    size_t flen = 0;
    for (size_t i = 0; i < qe_embedded_count; i++)
        if (!strcmp(qe_embedded_files[i].name, d->file)) {
            f = &qe_embedded_files[i];
            flen = qe_embedded_len(i);
        }
    if (!f) {
        snprintf(d->err, sizeof d->err, "%s: not embedded in this binary", d->file);
        return;
    }
    json_t *arr = json_array();
    if (!arr) {
        snprintf(d->err, sizeof d->err, "%s: out of memory", d->file);
        return;
    }
    const char *p = f->data, *end = f->data + flen;
    size_t line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        if (len > 0) {
            json_error_t je;
            json_t *doc = json_loadb(p, len, 0, &je);
            if (!doc || !json_is_object(doc)) {
                snprintf(d->err, sizeof d->err, "%s:%zu: %s", d->file, line,
                         doc ? "not a JSON object" : je.text);
                json_decref(doc);
                json_decref(arr);
                return;
            }
            json_array_append_new(arr, doc);
        }
        p += len + (nl ? 1 : 0);
    }
    d->docs = arr;
}

/* pthread_once takes no argument: one trampoline per dataset. */
#define DS_INIT(var) \
    static void init_##var(void) { parse_dataset(&var); }
DS_INIT(ds_math500)
DS_INIT(ds_aime24)
DS_INIT(ds_aime25)
DS_INIT(ds_gsm_test)
DS_INIT(ds_gsm_train)

static json_t *dataset_docs(dataset *d, qe_err *e)
{
    void (*init)(void) = d == &ds_math500     ? init_ds_math500
                         : d == &ds_aime24    ? init_ds_aime24
                         : d == &ds_aime25    ? init_ds_aime25
                         : d == &ds_gsm_test  ? init_ds_gsm_test
                                              : init_ds_gsm_train;
    pthread_once(&d->once, init);
    if (!d->docs)
        qe_err_set(e, QE_EINVAL, "%s", d->err);
    return d->docs;
}

int qe_task_size(const qe_task *t, size_t *n, qe_err *e)
{
    json_t *docs = dataset_docs(t->test, e);
    if (!docs)
        return QE_EINVAL;
    *n = json_array_size(docs);
    return 0;
}

static json_t *doc_at(dataset *d, const char *task, size_t i, qe_err *e)
{
    json_t *docs = dataset_docs(d, e);
    if (!docs)
        return NULL;
    if (i >= json_array_size(docs)) {
        qe_err_set(e, QE_EINVAL, "%s: doc %zu out of range (%s has %zu docs)", task, i, d->file,
                   json_array_size(docs));
        return NULL;
    }
    return json_array_get(docs, i);
}

json_t *qe_task_doc(const qe_task *t, size_t i, qe_err *e) { return doc_at(t->test, t->name, i, e); }

json_t *qe_task_fewshot_doc(const qe_task *t, size_t j, qe_err *e)
{
    if (!t->train) {
        qe_err_set(e, QE_EINVAL, "%s: task has no few-shot split", t->name);
        return NULL;
    }
    return doc_at(t->train, t->name, j, e);
}

/* Jinja "{{field}}" of a str renders it; of an int, its decimal form. */
static int render_field(const qe_task *t, json_t *doc, const char *field, qe_buf *out, qe_err *e)
{
    json_t *v = json_object_get(doc, field);
    int rc;
    if (json_is_string(v))
        rc = qe_buf_append(out, json_string_value(v), json_string_length(v));
    else if (json_is_integer(v))
        rc = qe_buf_printf(out, "%lld", (long long)json_integer_value(v));
    else
        return qe_err_set(e, QE_EINVAL, "%s: doc field '%s' missing or not a string/int", t->name,
                          field);
    return rc ? qe_err_set(e, QE_ENOMEM, "out of memory") : 0;
}

static int text_of(const qe_task *t, json_t *doc, qe_buf *out, qe_err *e)
{
    if (qe_buf_puts(out, t->text_prefix))
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    int rc = render_field(t, doc, t->text_field, out, e);
    if (rc)
        return rc;
    return qe_buf_puts(out, "\nAnswer:") ? qe_err_set(e, QE_ENOMEM, "out of memory") : 0;
}

int qe_task_doc_text(const qe_task *t, size_t i, qe_buf *out, qe_err *e)
{
    json_t *doc = qe_task_doc(t, i, e);
    return doc ? text_of(t, doc, out, e) : QE_EINVAL;
}

int qe_task_target(const qe_task *t, size_t i, qe_buf *out, qe_err *e)
{
    json_t *doc = qe_task_doc(t, i, e);
    return doc ? render_field(t, doc, t->target_field, out, e) : QE_EINVAL;
}

/* ---- few-shot ---------------------------------------------------------- */

static int effective_fewshot(const qe_task *t, int requested, int *k, qe_err *e)
{
    /* lm-eval: an explicit YAML num_fewshot of 0 is never overridden. */
    if (requested < 0 || t->num_fewshot == 0) {
        *k = qe_task_num_fewshot(t);
        return 0;
    }
    if (requested > MAX_FEWSHOT)
        return qe_err_set(e, QE_ELIMIT, "%s: num_fewshot %d above the limit %d", t->name,
                          requested, MAX_FEWSHOT);
    *k = requested;
    return 0;
}

int qe_task_fewshot(const qe_task *t, size_t i, int num_fewshot, size_t *idx, size_t cap,
                    size_t *n, qe_err *e)
{
    int k = 0;
    int rc = effective_fewshot(t, num_fewshot, &k, e);
    if (rc)
        return rc;
    *n = 0;
    json_t *doc = qe_task_doc(t, i, e);
    if (!doc)
        return QE_EINVAL;
    if (k == 0)
        return 0;
    json_t *train = dataset_docs(t->train, e);
    if (!train)
        return QE_EINVAL;
    /* Same split for fewshot and test: lm-eval draws one extra. */
    size_t draw = (size_t)k + (t->fewshot_split && !strcmp(t->fewshot_split, t->test_split));
    size_t ntrain = json_array_size(train);
    if (draw > ntrain)
        return qe_err_set(e, QE_EINVAL, "%s: %zu few-shot docs requested, split has %zu", t->name,
                          draw, ntrain);
    size_t picks[MAX_FEWSHOT + 1];
    qe_pyrandom r;
    qe_pyrandom_seed(&r, 1234);
    /* One Random(1234) serves every doc in order: replay docs 0..i. */
    for (size_t d = 0; d <= i; d++) {
        rc = qe_pyrandom_sample(&r, ntrain, draw, picks);
        if (rc)
            return qe_err_set(e, rc, "%s: few-shot sampling failed", t->name);
    }
    for (size_t j = 0; j < draw && *n < (size_t)k; j++) {
        if (json_equal(json_array_get(train, picks[j]), doc))
            continue; /* lm-eval drops the evaluated doc itself */
        if (*n >= cap)
            return qe_err_set(e, QE_ELIMIT, "%s: few-shot index buffer too small", t->name);
        idx[(*n)++] = picks[j];
    }
    return 0;
}

static int fewshot_block(const qe_task *t, const size_t *idx, size_t n, qe_buf *out, qe_err *e)
{
    for (size_t j = 0; j < n; j++) {
        json_t *d = json_array_get(t->train->docs, idx[j]);
        int rc = text_of(t, d, out, e);
        if (rc)
            return rc;
        if (qe_buf_puts(out, " ")) /* target_delimiter */
            return qe_err_set(e, QE_ENOMEM, "out of memory");
        if ((rc = render_field(t, d, t->target_field, out, e)))
            return rc;
        if (qe_buf_puts(out, "\n\n")) /* fewshot_delimiter */
            return qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    return 0;
}

int qe_task_context(const qe_task *t, size_t i, const qe_prompt_opts *o, qe_buf *out, qe_err *e)
{
    qe_prompt_opts def = QE_PROMPT_OPTS_INIT;
    if (!o)
        o = &def;
    size_t idx[MAX_FEWSHOT], n = 0;
    int rc = qe_task_fewshot(t, i, o->num_fewshot, idx, MAX_FEWSHOT, &n, e);
    if (rc)
        return rc;
    if (o->system_instruction && qe_buf_puts(out, o->system_instruction))
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    if ((rc = fewshot_block(t, idx, n, out, e)))
        return rc;
    return text_of(t, qe_task_doc(t, i, e), out, e);
}

static int push_msg(json_t *arr, const char *role, const char *content, qe_err *e)
{
    json_t *m = json_pack("{s:s, s:s}", "role", role, "content", content);
    if (!m || json_array_append_new(arr, m))
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    return 0;
}

int qe_task_messages(const qe_task *t, size_t i, const qe_prompt_opts *o, json_t **messages,
                     qe_err *e)
{
    qe_prompt_opts def = QE_PROMPT_OPTS_INIT;
    if (!o)
        o = &def;
    *messages = NULL;
    size_t idx[MAX_FEWSHOT], n = 0;
    int rc = qe_task_fewshot(t, i, o->num_fewshot, idx, MAX_FEWSHOT, &n, e);
    if (rc)
        return rc;
    json_t *arr = json_array();
    qe_buf b = QE_BUF_INIT;
    if (!arr)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    if (o->system_instruction && o->system_instruction[0] &&
        (rc = push_msg(arr, "system", o->system_instruction, e)))
        goto fail;
    if (o->fewshot_as_multiturn) {
        for (size_t j = 0; j < n; j++) {
            json_t *d = json_array_get(t->train->docs, idx[j]);
            qe_buf_reset(&b);
            if ((rc = text_of(t, d, &b, e)) || (rc = push_msg(arr, "user", qe_buf_str(&b), e)))
                goto fail;
            qe_buf_reset(&b);
            if ((rc = render_field(t, d, t->target_field, &b, e)) ||
                (rc = push_msg(arr, "assistant", qe_buf_str(&b), e)))
                goto fail;
        }
    } else if ((rc = fewshot_block(t, idx, n, &b, e))) {
        goto fail;
    }
    /* Single-turn: the question joins the few-shot user turn; multi-turn:
     * it is a user turn of its own. */
    if (o->fewshot_as_multiturn)
        qe_buf_reset(&b);
    if ((rc = text_of(t, qe_task_doc(t, i, e), &b, e)) ||
        (rc = push_msg(arr, "user", qe_buf_str(&b), e)))
        goto fail;
    qe_buf_free(&b);
    *messages = arr;
    return 0;
fail:
    qe_buf_free(&b);
    json_decref(arr);
    return rc;
}

int qe_task_limit(const qe_task *t, double limit, size_t *n, bool *clamped, qe_err *e)
{
    size_t size;
    int rc = qe_task_size(t, &size, e);
    if (rc)
        return rc;
    if (!(limit > 0) || isnan(limit))
        return qe_err_set(e, QE_EINVAL, "--limit %g: must be > 0", limit);
    double want = limit < 1.0 ? ceil((double)size * limit) : floor(limit);
    *clamped = want > (double)size;
    *n = *clamped ? size : (size_t)want;
    return 0;
}

/* ---- lm-eval dumps ------------------------------------------------------ */

json_t *qe_task_gen_kwargs(const qe_task *t)
{
    json_t *until = json_array();
    for (size_t i = 0; i < t->n_until; i++)
        json_array_append_new(until, json_string(t->until[i]));
    json_t *g = json_object();
    json_object_set_new(g, "until", until);
    json_object_set_new(g, "do_sample", json_false());
    json_object_set_new(g, "temperature", json_real(0.0));
    if (t->max_gen_toks)
        json_object_set_new(g, "max_gen_toks", json_integer(t->max_gen_toks));
    return g;
}

static json_t *gsm8k_filters(void)
{
    return json_pack(
        "[{s:s, s:[{s:s, s:s}, {s:s}]}, {s:s, s:[{s:s, s:i, s:s}, {s:s}]}]", "name",
        "strict-match", "filter", "function", "regex", "regex_pattern", "#### (\\-?[0-9\\.\\,]+)",
        "function", "take_first", "name", "flexible-extract", "filter", "function", "regex",
        "group_select", -1, "regex_pattern", "(-?[$0-9.,]{2,})|(-?[0-9]+)", "function",
        "take_first");
}

json_t *qe_task_config(const qe_task *t)
{
    json_t *c = json_object();
    if (!c)
        return NULL;
    json_object_set_new(c, "task", json_string(t->name));
    json_object_set_new(c, "tag", json_pack("[s]", "math_word_problems"));
    json_object_set_new(c, "dataset_path", json_string(t->path));
    if (t->ds_name)
        json_object_set_new(c, "dataset_name", json_string(t->ds_name));
    if (t->train_split)
        json_object_set_new(c, "training_split", json_string(t->train_split));
    json_object_set_new(c, "test_split", json_string(t->test_split));
    if (t->fewshot_split)
        json_object_set_new(c, "fewshot_split", json_string(t->fewshot_split));
    if (t->process_docs)
        json_object_set_new(c, "process_docs", json_string(t->process_docs));
    json_object_set_new(c, "doc_to_text", json_string(t->text_tpl));
    json_object_set_new(c, "doc_to_target", json_string(t->target_tpl));
    json_object_set_new(c, "unsafe_code", json_false());
    if (t->process_results)
        json_object_set_new(c, "process_results", json_string(t->process_results));
    json_object_set_new(c, "description", json_string(""));
    json_object_set_new(c, "target_delimiter", json_string(" "));
    json_object_set_new(c, "fewshot_delimiter", json_string("\n\n"));
    json_object_set_new(c, "num_fewshot", json_integer(qe_task_num_fewshot(t)));
    json_t *metric = json_pack("{s:s, s:s, s:b}", "metric", "exact_match", "aggregation", "mean",
                               "higher_is_better", 1);
    if (!strcmp(t->name, "gsm8k")) {
        json_object_set_new(metric, "ignore_case", json_true());
        json_object_set_new(metric, "ignore_punctuation", json_false());
        json_object_set_new(metric, "regexes_to_ignore",
                            json_pack("[s,s,s,s]", ",", "\\$", "(?s).*#### ", "\\.$"));
    }
    json_object_set_new(c, "metric_list", json_pack("[o]", metric));
    json_object_set_new(c, "output_type", json_string("generate_until"));
    json_object_set_new(c, "generation_kwargs", qe_task_gen_kwargs(t));
    json_object_set_new(c, "repeats", json_integer(1));
    if (t->n_filters == 2)
        json_object_set_new(c, "filter_list", gsm8k_filters());
    json_object_set_new(c, "should_decontaminate", json_false());
    json_object_set_new(c, "metadata", json_pack("{s:f}", "version", qe_task_version_number(t)));
    return c;
}
