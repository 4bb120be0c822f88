/* lmeval_io: lm-eval 0.4.x results JSON / samples JSONL reading and writing
 * (see lmeval_io.h; formats in docs/lmeval-io.md). */
#include "lmeval_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "pyjson.h"

/* ---------- aggregation ---------- */

static double py_sum(const double *x, size_t n, enum qe_lmeval_sum kind)
{
    double s = 0.0;
    if (kind == QE_LMEVAL_SUM_FOLD) {
        for (size_t i = 0; i < n; i++)
            s += x[i];
        return s;
    }
    /* CPython >= 3.12 builtin sum() over floats (Neumaier compensation). */
    double c = 0.0;
    for (size_t i = 0; i < n; i++) {
        double t = s + x[i];
        if (fabs(s) >= fabs(x[i]))
            c += (s - t) + x[i];
        else
            c += (x[i] - t) + s;
        s = t;
    }
    return c != 0.0 ? s + c : s;
}

double qe_lmeval_mean(const double *x, size_t n, enum qe_lmeval_sum kind)
{
    return py_sum(x, n, kind) / (double)n;
}

int qe_lmeval_mean_stderr(const double *x, size_t n, enum qe_lmeval_sum kind, double *out)
{
    if (n <= 1)
        return 1;
    double mu = qe_lmeval_mean(x, n, kind);
    double s = 0.0, c = 0.0;
    for (size_t i = 0; i < n; i++) {
        double t = pow(x[i] - mu, 2.0); /* Python's ** is libm pow, not d*d */
        if (kind == QE_LMEVAL_SUM_FOLD) {
            s += t;
        } else {
            double u = s + t;
            c += fabs(s) >= fabs(t) ? (s - u) + t : (t - u) + s;
            s = u;
        }
    }
    if (kind == QE_LMEVAL_SUM_NEUMAIER && c != 0.0)
        s += c;
    *out = sqrt(s / (double)(n - 1)) / sqrt((double)n);
    return 0;
}

/* ---------- names and paths ---------- */

static int is_date_id(const char *s, size_t n)
{
    /* YYYY-MM-DDTHH-MM-SS with optional .ffffff (isoformat drops it at 0 us) */
    static const char pat[] = "dddd-dd-ddTdd-dd-dd.dddddd";
    if (n != 19 && n != 26)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
            return 0;
    }
    return 1;
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

const char *qe_lmeval_results_name_date(const char *path)
{
    const char *b = base_name(path);
    size_t n = strlen(b);
    if (n < 6 || strcmp(b + n - 5, ".json") != 0 || !strncmp(b, "samples_", 8))
        return NULL;
    const char *us = NULL;
    for (const char *p = b; p < b + n - 5; p++)
        if (*p == '_')
            us = p;
    if (!us || !is_date_id(us + 1, (size_t)(b + n - 5 - (us + 1))))
        return NULL;
    return us + 1;
}

int qe_lmeval_parse_samples_name(const char *path, char **task, char **date_id)
{
    const char *b = base_name(path);
    size_t n = strlen(b);
    if (n < 8 + 6 || strncmp(b, "samples_", 8) != 0 || strcmp(b + n - 6, ".jsonl") != 0)
        return 0;
    const char *end = b + n - 6, *us = NULL;
    for (const char *p = b + 8; p < end; p++)
        if (*p == '_')
            us = p;
    if (!us || us == b + 8 || !is_date_id(us + 1, (size_t)(end - us - 1)))
        return 0;
    if (task)
        *task = strndup(b + 8, (size_t)(us - b - 8));
    if (date_id)
        *date_id = strndup(us + 1, (size_t)(end - us - 1));
    return 1;
}

/* enable_thinking as written in model_args ("...,enable_thinking=False"),
 * a model_args object or gen_kwargs.chat_template_kwargs; NULL if absent. */
json_t *qe_lmeval_thinking(const qe_lmeval_results *r)
{
    const char *ma = r->model_args;
    if (ma) {
        const char *k = strstr(ma, "enable_thinking=");
        if (k) {
            k += strlen("enable_thinking=");
            size_t n = strcspn(k, ",");
            return json_stringn(k, n);
        }
    }
    if (json_is_object(r->model_args_json)) {
        json_t *v = json_object_get(r->model_args_json, "enable_thinking");
        if (v)
            return json_deep_copy(v);
    }
    if (json_is_object(r->gen_kwargs)) {
        json_t *c = json_object_get(r->gen_kwargs, "chat_template_kwargs");
        json_t *v = json_object_get(c, "enable_thinking");
        if (v)
            return json_deep_copy(v);
    }
    return NULL;
}

char *qe_lmeval_sanitize_model_name(const char *name)
{
    qe_buf b = QE_BUF_INIT;
    int in_run = 0;
    for (const char *p = name; *p; p++) {
        if (strchr("\"<>:/|\\?*[]", *p)) {
            if (!in_run && qe_buf_puts(&b, "__"))
                goto oom;
            in_run = 1;
        } else {
            in_run = 0;
            if (qe_buf_putc(&b, *p))
                goto oom;
        }
    }
    return qe_buf_detach(&b);
oom:
    qe_buf_free(&b);
    return NULL;
}

void qe_lmeval_date_id(double unix_time, char out[32])
{
    time_t sec = (time_t)floor(unix_time);
    long usec = (long)llround((unix_time - (double)sec) * 1e6);
    if (usec >= 1000000) {
        sec++;
        usec -= 1000000;
    }
    struct tm tm;
    localtime_r(&sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H-%M-%S", &tm);
    if (usec) /* Python's isoformat omits microseconds when they are 0 */
        snprintf(out + n, 32 - n, ".%06ld", usec);
}

int qe_lmeval_paths(const char *output_path, const char *model_name, const char *date_id,
                    const char *task, char **results_path, char **samples_path, qe_err *e)
{
    qe_buf r = QE_BUF_INIT, s = QE_BUF_INIT;
    size_t n = strlen(output_path);
    int rc = 0;
    if (n > 5 && !strcmp(output_path + n - 5, ".json")) {
        const char *slash = strrchr(output_path, '/');
        size_t dirlen = slash ? (size_t)(slash - output_path) : 0;
        const char *stem = slash ? slash + 1 : output_path;
        size_t stemlen = (size_t)(output_path + n - 5 - stem);
        const char *dir = slash ? output_path : ".";
        if (!slash)
            dirlen = 1;
        rc |= qe_buf_printf(&r, "%.*s/%.*s_%s.json", (int)dirlen, dir, (int)stemlen, stem, date_id);
        if (task)
            rc |= qe_buf_printf(&s, "%.*s/samples_%s_%s.jsonl", (int)dirlen, dir, task, date_id);
    } else {
        char *san = qe_lmeval_sanitize_model_name(model_name ? model_name : "");
        if (!san)
            return qe_err_set(e, QE_ENOMEM, "out of memory");
        while (n > 1 && output_path[n - 1] == '/')
            n--;
        rc |= qe_buf_printf(&r, "%.*s/%s/results_%s.json", (int)n, output_path, san, date_id);
        if (task)
            rc |= qe_buf_printf(&s, "%.*s/%s/samples_%s_%s.jsonl", (int)n, output_path, san, task,
                                date_id);
        free(san);
    }
    if (rc) {
        qe_buf_free(&r);
        qe_buf_free(&s);
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    *results_path = qe_buf_detach(&r);
    if (samples_path)
        *samples_path = task ? qe_buf_detach(&s) : NULL;
    qe_buf_free(&s);
    return 0;
}

/* ---------- results reader ---------- */

static const char *str_or_null(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int qe_lmeval_text(const json_t *v, qe_buf *scratch, const char **out)
{
    *out = NULL;
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) == n) {
        *out = s;
        return 0;
    }
    qe_buf_reset(scratch);
    for (size_t i = 0; i < n; i++) {
        int rc = s[i] ? qe_buf_putc(scratch, s[i]) : qe_buf_append(scratch, "\xef\xbf\xbd", 3);
        if (rc)
            return QE_ENOMEM;
    }
    *out = qe_buf_str(scratch);
    return 0;
}

long qe_lmeval_completion_tokens(const json_t *o)
{
    const json_t *v = json_object_get(o, "completion_tokens");
    if (!v) {
        v = json_object_get(o, "tokens");
        if (json_is_object(v)) {
            const json_t *c = json_object_get(v, "completion");
            v = c ? c : json_object_get(v, "completion_tokens");
        }
    }
    return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static long int_or(const json_t *v, long dflt)
{
    if (json_is_integer(v))
        return (long)json_integer_value(v);
    if (json_is_real(v))
        return (long)json_real_value(v);
    return dflt;
}

/* model_name from model_args the way lm-eval's tracker does: first of
 * peft, delta, pretrained, model, path, engine. */
static char *model_from_args(const json_t *args)
{
    static const char *keys[] = {"peft", "delta", "pretrained", "model", "path", "engine"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        if (json_is_object(args)) {
            const char *v = str_or_null(json_object_get(args, keys[k]));
            if (v)
                return strdup(v);
        } else if (json_is_string(args)) {
            const char *s = json_string_value(args);
            size_t kl = strlen(keys[k]);
            for (const char *p = s; p && *p;) {
                if (!strncmp(p, keys[k], kl) && p[kl] == '=') {
                    const char *v = p + kl + 1, *end = strchr(v, ',');
                    return strndup(v, end ? (size_t)(end - v) : strlen(v));
                }
                p = strchr(p, ',');
                if (p)
                    p++;
            }
        }
    }
    return NULL;
}

static int parse_task(qe_lmeval_results *r, qe_lmeval_task *t, const char *name, json_t *entry,
                      qe_err *e)
{
    t->name = name;
    t->n_original = t->n_effective = t->n_shot = -1;
    if (!json_is_object(entry))
        return qe_err_set(e, QE_EINVAL, "%s: results.%s is not an object", r->path, name);
    t->alias = str_or_null(json_object_get(entry, "alias"));
    size_t cap = json_object_size(entry);
    t->metrics = calloc(cap ? cap : 1, sizeof *t->metrics);
    if (!t->metrics)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(entry, key, val) {
        const char *comma = strchr(key, ',');
        if (!comma)
            continue; /* alias, name, sample_len */
        size_t mlen = (size_t)(comma - key);
        if (mlen >= 7 && !strncmp(comma - 7, "_stderr", 7))
            continue; /* read with its partner below */
        qe_lmeval_metric *m = &t->metrics[t->n_metrics++];
        m->key = key;
        m->metric = strndup(key, mlen);
        m->filter = strdup(comma + 1);
        if (!m->metric || !m->filter)
            return qe_err_set(e, QE_ENOMEM, "out of memory");
        if (json_is_number(val)) {
            m->has_value = 1;
            m->value = json_number_value(val);
        } else if (json_is_boolean(val)) {
            m->has_value = 1;
            m->value = json_is_true(val);
        } else if (!json_is_null(val) && !json_is_string(val)) {
            return qe_err_set(e, QE_EINVAL, "%s: results.%s.%s is not a number", r->path, name,
                              key);
        }
        qe_buf sk = QE_BUF_INIT;
        if (qe_buf_printf(&sk, "%s_stderr,%s", m->metric, m->filter))
            return qe_err_set(e, QE_ENOMEM, "out of memory");
        json_t *se = json_object_get(entry, qe_buf_str(&sk));
        qe_buf_free(&sk);
        if (json_is_number(se)) {
            m->stderr_kind = 1;
            m->stderr_val = json_number_value(se);
        } else if (json_is_string(se)) {
            m->stderr_kind = 2;
        }
    }
    json_t *ns = json_object_get(json_object_get(r->root, "n-samples"), name);
    t->n_original = int_or(json_object_get(ns, "original"), -1);
    t->n_effective = int_or(json_object_get(ns, "effective"), -1);
    t->n_shot = int_or(json_object_get(json_object_get(r->root, "n-shot"), name), -1);
    t->version = json_object_get(json_object_get(r->root, "versions"), name);
    t->higher_is_better = json_object_get(json_object_get(r->root, "higher_is_better"), name);
    t->config = json_object_get(json_object_get(r->root, "configs"), name);
    t->generation_kwargs = json_object_get(t->config, "generation_kwargs");
    t->task_hash = str_or_null(json_object_get(json_object_get(r->root, "task_hashes"), name));
    json_t *subs = json_object_get(json_object_get(r->root, "group_subtasks"), name);
    t->is_group = json_is_array(subs) && json_array_size(subs) > 0;
    return 0;
}

int qe_lmeval_results_read(const char *path, qe_lmeval_results **out, qe_err *e)
{
    *out = NULL;
    qe_lmeval_results *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    json_error_t je;
    FILE *f = fopen(path, "rb");
    if (!f) {
        qe_err_set(e, QE_EIO, "%s: %s", path, strerror(errno));
        qe_lmeval_results_free(r);
        return QE_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (long long)st.st_size > QE_LMEVAL_RESULTS_MAX) {
        fclose(f);
        qe_err_set(e, QE_ELIMIT, "%s: %lld bytes, more than a results file can be (%lld MB cap)",
                   path, (long long)st.st_size, QE_LMEVAL_RESULTS_MAX >> 20);
        qe_lmeval_results_free(r);
        return QE_ELIMIT;
    }
    r->root = json_loadf(f, JSON_ALLOW_NUL, &je);
    fclose(f);
    int rc = 0;
    if (!r->root) {
        rc = qe_err_set(e, QE_EINVAL, "%s:%d:%d: malformed JSON: %s", path, je.line, je.column,
                        je.text);
        goto fail;
    }
    json_t *results = json_object_get(r->root, "results");
    if (!json_is_object(r->root) || !json_is_object(results)) {
        rc = qe_err_set(e, QE_EINVAL, "%s: not an lm-eval results file (no \"results\" object)",
                        path);
        goto fail;
    }
    json_t *config = json_object_get(r->root, "config");
    r->model = str_or_null(json_object_get(config, "model"));
    r->model_args_json = json_object_get(config, "model_args");
    r->model_args = str_or_null(r->model_args_json);
    json_t *lim = json_object_get(config, "limit");
    if (json_is_number(lim)) {
        r->has_limit = 1;
        r->limit = json_number_value(lim);
    }
    r->gen_kwargs = json_object_get(config, "gen_kwargs");
    json_t *date = json_object_get(r->root, "date");
    if (json_is_number(date)) {
        r->has_date = 1;
        r->date = json_number_value(date);
    }
    const char *d = qe_lmeval_results_name_date(path);
    if (d && !(r->owned_date_id = strndup(d, strlen(d) - 5))) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto fail;
    }
    r->date_id = r->owned_date_id;
    r->lm_eval_version = str_or_null(json_object_get(r->root, "lm_eval_version"));
    r->chat_template_sha = str_or_null(json_object_get(r->root, "chat_template_sha"));
    /* a chat-completions run always used the server's template, also in
     * files written before qeval recorded it (chat_template null) */
    r->has_chat_template = json_is_string(json_object_get(r->root, "chat_template")) ||
                           (r->model && !strcmp(r->model, "local-chat-completions"));
    r->system_instruction = str_or_null(json_object_get(r->root, "system_instruction"));
    r->model_name = str_or_null(json_object_get(r->root, "model_name"));
    if (!r->model_name || !*r->model_name) {
        r->owned_model_name = model_from_args(r->model_args_json);
        r->model_name = r->owned_model_name;
    }
    size_t n = json_object_size(results);
    r->tasks = calloc(n ? n : 1, sizeof *r->tasks);
    if (!r->tasks) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(results, key, val) {
        if ((rc = parse_task(r, &r->tasks[r->n_tasks++], key, val, e)))
            goto fail;
    }
    *out = r;
    return 0;
fail:
    qe_lmeval_results_free(r);
    return rc;
}

const qe_lmeval_task *qe_lmeval_results_task(const qe_lmeval_results *r, const char *name)
{
    for (size_t i = 0; i < r->n_tasks; i++)
        if (!strcmp(r->tasks[i].name, name))
            return &r->tasks[i];
    return NULL;
}

void qe_lmeval_results_free(qe_lmeval_results *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_tasks; i++) {
        for (size_t j = 0; j < r->tasks[i].n_metrics; j++) {
            free(r->tasks[i].metrics[j].metric);
            free(r->tasks[i].metrics[j].filter);
        }
        free(r->tasks[i].metrics);
    }
    free(r->tasks);
    free(r->owned_model_name);
    free(r->owned_date_id);
    json_decref(r->root);
    free(r->path);
    free(r);
}

/* ---------- samples reader ---------- */

struct qe_lmeval_samples {
    FILE *f;
    char *path;
    long line;
    qe_buf cur;      /* current line */
    json_t *obj;     /* current parsed line */
    qe_buf nul[3];   /* target, prompt, response with NUL replaced */
    char chunk[65536];
    size_t pos, len; /* unread bytes of chunk */
    int eof;
    size_t max_line;
};

void qe_lmeval_samples_set_max_line(qe_lmeval_samples *r, size_t max_bytes)
{
    r->max_line = max_bytes;
}

int qe_lmeval_samples_open(const char *path, qe_lmeval_samples **out, qe_err *e)
{
    *out = NULL;
    qe_lmeval_samples *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    r->f = fopen(path, "rb");
    if (!r->f) {
        qe_err_set(e, QE_EIO, "%s: %s", path, strerror(errno));
        qe_lmeval_samples_close(r);
        return QE_EIO;
    }
    r->max_line = QE_LMEVAL_MAX_LINE;
    *out = r;
    return 0;
}

/* Reads one line into r->cur (without '\n'). Returns 1, 0 at EOF, QE_EIO,
 * or QE_ELIMIT when the line exceeds the cap (the rest is skipped). */
static int read_line(qe_lmeval_samples *r)
{
    qe_buf_reset(&r->cur);
    int any = 0, too_long = 0;
    for (;;) {
        if (r->pos == r->len) {
            if (r->eof)
                break;
            r->len = fread(r->chunk, 1, sizeof r->chunk, r->f);
            r->pos = 0;
            if (r->len == 0) {
                if (ferror(r->f))
                    return QE_EIO;
                r->eof = 1;
                break;
            }
        }
        any = 1;
        char *nl = memchr(r->chunk + r->pos, '\n', r->len - r->pos);
        size_t take = nl ? (size_t)(nl - (r->chunk + r->pos)) : r->len - r->pos;
        if (!too_long && r->cur.len + take > r->max_line) {
            too_long = 1;
            qe_buf_reset(&r->cur);
        }
        if (!too_long && qe_buf_append(&r->cur, r->chunk + r->pos, take))
            return QE_ENOMEM;
        r->pos += take;
        if (nl) {
            r->pos++;
            break;
        }
    }
    if (!any)
        return 0;
    r->line++;
    return too_long ? QE_ELIMIT : 1;
}

static int bad(qe_lmeval_samples *r, qe_err *e, const char *what)
{
    return qe_err_set(e, QE_EINVAL, "%s:%ld: %s", r->path, r->line, what);
}

int qe_lmeval_samples_next(qe_lmeval_samples *r, qe_lmeval_sample *s, qe_err *e)
{
    memset(s, 0, sizeof *s);
    json_decref(r->obj);
    r->obj = NULL;
    int rc;
    for (;;) {
        rc = read_line(r);
        if (rc == 0)
            return 0;
        if (rc == QE_EIO)
            return qe_err_set(e, QE_EIO, "%s:%ld: read error: %s", r->path, r->line + 1,
                              strerror(errno));
        if (rc == QE_ENOMEM)
            return qe_err_set(e, QE_ENOMEM, "%s:%ld: out of memory", r->path, r->line + 1);
        if (rc == QE_ELIMIT)
            return qe_err_set(e, QE_ELIMIT, "%s:%ld: line longer than %zu bytes, skipped", r->path,
                              r->line, r->max_line);
        size_t n = r->cur.len;
        while (n && (r->cur.data[n - 1] == '\r' || r->cur.data[n - 1] == ' ' ||
                     r->cur.data[n - 1] == '\t'))
            n--;
        if (n)
            break; /* blank lines are ignored */
    }
    json_error_t je;
    r->obj = json_loadb(r->cur.data, r->cur.len, JSON_ALLOW_NUL, &je);
    if (!r->obj) {
        char what[300];
        snprintf(what, sizeof what, "malformed JSON at column %d: %s", je.column, je.text);
        return bad(r, e, what);
    }
    if (!json_is_object(r->obj))
        return bad(r, e, "line is not a JSON object");
    s->line = r->line;
    s->obj = r->obj;
    json_t *id = json_object_get(r->obj, "doc_id");
    if (json_is_integer(id)) {
        s->doc_id_is_int = 1;
        s->doc_id = json_integer_value(id);
    } else if (json_is_string(id)) {
        s->doc_id_text = json_string_value(id);
    } else {
        return bad(r, e, id ? "doc_id is neither an integer nor a string" : "no doc_id");
    }
    s->doc = json_object_get(r->obj, "doc");
    s->arguments = json_object_get(r->obj, "arguments");
    s->resps = json_object_get(r->obj, "resps");
    s->filtered_resps = json_object_get(r->obj, "filtered_resps");
    if (qe_lmeval_text(json_object_get(r->obj, "target"), &r->nul[0], &s->target))
        return qe_err_set(e, QE_ENOMEM, "%s:%ld: out of memory", r->path, r->line);
    s->filter = str_or_null(json_object_get(r->obj, "filter"));
    if (!s->filter)
        s->filter = "none";
    s->metrics = json_object_get(r->obj, "metrics");
    if (s->metrics && !json_is_array(s->metrics))
        return bad(r, e, "metrics is not a list");
    s->doc_hash = str_or_null(json_object_get(r->obj, "doc_hash"));
    s->prompt_hash = str_or_null(json_object_get(r->obj, "prompt_hash"));
    s->target_hash = str_or_null(json_object_get(r->obj, "target_hash"));
    const json_t *resp = json_array_get(s->filtered_resps, 0);
    if (!json_is_string(resp))
        resp = json_array_get(json_array_get(s->resps, 0), 0);
    if (qe_lmeval_text(json_object_get(json_object_get(s->arguments, "gen_args_0"), "arg_0"),
                       &r->nul[1], &s->prompt) ||
        qe_lmeval_text(resp, &r->nul[2], &s->response))
        return qe_err_set(e, QE_ENOMEM, "%s:%ld: out of memory", r->path, r->line);
    /* The metric: first listed name with a numeric value, else the usual
     * names lm-eval's math tasks use. */
    size_t nm = json_array_size(s->metrics);
    static const char *fallback[] = {"exact_match", "acc", "math_verify"};
    for (size_t i = 0; i < nm + 3 && !s->has_metric; i++) {
        const char *name = i < nm ? str_or_null(json_array_get(s->metrics, i)) : fallback[i - nm];
        json_t *v = name ? json_object_get(r->obj, name) : NULL;
        if (json_is_number(v) || json_is_boolean(v)) {
            s->has_metric = 1;
            s->metric_name = name;
            s->metric_value = json_is_number(v) ? json_number_value(v) : json_is_true(v);
        }
    }
    return 1;
}

void qe_lmeval_samples_close(qe_lmeval_samples *r)
{
    if (!r)
        return;
    if (r->f)
        fclose(r->f);
    json_decref(r->obj);
    qe_buf_free(&r->cur);
    for (size_t i = 0; i < sizeof r->nul / sizeof *r->nul; i++)
        qe_buf_free(&r->nul[i]);
    free(r->path);
    free(r);
}

/* ---------- writers ---------- */

static int set_new(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

json_t *qe_lmeval_sample_build(const qe_lmeval_sample_in *in, qe_err *e)
{
    char dh[65], ph[65], th[65];
    const char *target = in->target ? in->target : "";
    const char *prompt = in->prompt ? in->prompt : "";
    if (!in->doc || qe_hash_doc(in->doc, dh, e)) {
        if (!in->doc)
            qe_err_set(e, QE_EINVAL, "sample %lld has no doc", in->doc_id);
        return NULL;
    }
    qe_hash_text(prompt, strlen(prompt), ph);
    qe_hash_text(target, strlen(target), th);
    const char *resp = in->response ? in->response : "";
    const char *filt = in->filtered ? in->filtered : resp;
    json_t *o = json_object();
    json_t *args = json_object(), *g0 = json_object();
    int rc = 0;
    rc |= set_new(g0, "arg_0", json_string(prompt));
    rc |= set_new(g0, "arg_1", in->gen_kwargs ? json_deep_copy(in->gen_kwargs) : json_object());
    rc |= set_new(args, "gen_args_0", g0);
    rc |= set_new(o, "doc_id", json_integer(in->doc_id));
    rc |= set_new(o, "doc", json_deep_copy(in->doc));
    rc |= set_new(o, "target", json_string(target));
    rc |= set_new(o, "arguments", args);
    rc |= set_new(o, "resps", json_pack("[[s]]", resp));
    rc |= set_new(o, "filtered_resps", json_pack("[s]", filt));
    rc |= set_new(o, "filter", json_string(in->filter ? in->filter : "none"));
    json_t *names = json_array();
    for (size_t i = 0; i < in->n_metrics; i++)
        rc |= json_array_append_new(names, json_string(in->metric_names[i]));
    rc |= set_new(o, "metrics", names);
    rc |= set_new(o, "doc_hash", json_string(dh));
    rc |= set_new(o, "prompt_hash", json_string(ph));
    rc |= set_new(o, "target_hash", json_string(th));
    for (size_t i = 0; i < in->n_metrics; i++) {
        double v = in->metric_values[i];
        json_t *jv = (in->int_metrics && v == floor(v) && fabs(v) < 1e15) ? json_integer((json_int_t)v)
                                                                           : json_real(v);
        rc |= set_new(o, in->metric_names[i], jv);
    }
    if (in->extras) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)in->extras, k, v) {
            if (json_object_get(o, k)) {
                json_decref(o);
                qe_err_set(e, QE_EINVAL, "extra field '%s' would replace an lm-eval field", k);
                return NULL;
            }
            rc |= json_object_set(o, k, v);
        }
    }
    if (rc || !o) {
        json_decref(o);
        qe_err_set(e, QE_ENOMEM, "out of memory building a sample (or invalid UTF-8 text)");
        return NULL;
    }
    return o;
}

int qe_lmeval_sample_format(qe_buf *out, const json_t *sample, qe_err *e)
{
    int rc = qe_pyjson_dump(out, sample, QE_PYJSON_COMPACT, 0, e);
    if (rc)
        return rc;
    return qe_buf_putc(out, '\n') ? qe_err_set(e, QE_ENOMEM, "out of memory") : 0;
}

static json_t *str_or_jnull(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* lm-eval: hash_string(x) if x else None, so "" has no hash either. */
static json_t *sha_or_null(const char *s)
{
    if (!s || !*s)
        return json_null();
    char h[65];
    qe_hash_text(s, strlen(s), h);
    return json_string(h);
}

json_t *qe_lmeval_results_new(const qe_lmeval_results_info *in, qe_err *e)
{
    json_t *o = json_object(), *cfg = json_object();
    int rc = 0;
    char *san = qe_lmeval_sanitize_model_name(in->model_name ? in->model_name : "");
    qe_buf ver = QE_BUF_INIT, total = QE_BUF_INIT;
    rc |= qe_buf_printf(&ver, "qeval %s", in->version ? in->version : "unknown");
    rc |= qe_pyjson_float(&total, in->end_time - in->start_time);
    rc |= set_new(cfg, "model", str_or_jnull(in->model));
    rc |= set_new(cfg, "model_args", str_or_jnull(in->model_args));
    rc |= set_new(cfg, "limit", in->has_limit ? json_real(in->limit) : json_null());
    rc |= set_new(cfg, "gen_kwargs", in->gen_kwargs ? json_deep_copy(in->gen_kwargs) : json_null());
    rc |= set_new(o, "results", json_object());
    rc |= set_new(o, "group_subtasks", json_object());
    rc |= set_new(o, "configs", json_object());
    rc |= set_new(o, "versions", json_object());
    rc |= set_new(o, "n-shot", json_object());
    rc |= set_new(o, "higher_is_better", json_object());
    rc |= set_new(o, "n-samples", json_object());
    rc |= set_new(o, "config", cfg);
    rc |= set_new(o, "git_hash", json_null());
    rc |= set_new(o, "date", json_real(in->date));
    rc |= set_new(o, "lm_eval_version", json_string(qe_buf_str(&ver)));
    rc |= set_new(o, "task_hashes", json_object());
    rc |= set_new(o, "model_source", json_string("qeval"));
    rc |= set_new(o, "model_name", str_or_jnull(in->model_name));
    rc |= set_new(o, "model_name_sanitized", str_or_jnull(san));
    rc |= set_new(o, "system_instruction", str_or_jnull(in->system_instruction));
    rc |= set_new(o, "system_instruction_sha", sha_or_null(in->system_instruction));
    rc |= set_new(o, "fewshot_as_multiturn", json_boolean(in->fewshot_as_multiturn));
    rc |= set_new(o, "chat_template", str_or_jnull(in->chat_template));
    rc |= set_new(o, "chat_template_sha", sha_or_null(in->chat_template));
    rc |= set_new(o, "start_time", json_real(in->start_time));
    rc |= set_new(o, "end_time", json_real(in->end_time));
    rc |= set_new(o, "total_evaluation_time_seconds", json_string(qe_buf_str(&total)));
    free(san);
    qe_buf_free(&ver);
    qe_buf_free(&total);
    if (rc || !o) {
        json_decref(o);
        qe_err_set(e, QE_ENOMEM, "out of memory building results (or invalid UTF-8 text)");
        return NULL;
    }
    return o;
}

int qe_lmeval_results_add_task(json_t *res, const qe_lmeval_task_in *t, qe_err *e)
{
    const char *metric = t->metric ? t->metric : "exact_match";
    const char *filter = t->filter ? t->filter : "none";
    qe_buf k = QE_BUF_INIT, ks = QE_BUF_INIT;
    int rc = qe_buf_printf(&k, "%s,%s", metric, filter) |
             qe_buf_printf(&ks, "%s_stderr,%s", metric, filter);
    json_t *entry = json_object_get(json_object_get(res, "results"), t->task);
    if (!entry) {
        entry = json_object();
        rc |= json_object_set_new(entry, "alias", json_string(t->task));
        rc |= json_object_set_new(json_object_get(res, "results"), t->task, entry);
    }
    rc |= set_new(entry, qe_buf_str(&k), json_real(t->value));
    rc |= set_new(entry, qe_buf_str(&ks), t->stderr_na ? json_string("N/A") : json_real(t->stderr_val));
    rc |= set_new(json_object_get(res, "group_subtasks"), t->task, json_array());
    rc |= set_new(json_object_get(res, "configs"), t->task,
                  t->config ? json_deep_copy(t->config) : json_object());
    rc |= set_new(json_object_get(res, "versions"), t->task, json_real(t->version));
    rc |= set_new(json_object_get(res, "n-shot"), t->task, json_integer(t->n_shot));
    json_t *hib = json_object_get(json_object_get(res, "higher_is_better"), t->task);
    if (!hib) {
        hib = json_object();
        rc |= set_new(json_object_get(res, "higher_is_better"), t->task, hib);
    }
    rc |= set_new(hib, metric, json_true());
    rc |= set_new(json_object_get(res, "n-samples"), t->task,
                  json_pack("{s:I,s:I}", "original", (json_int_t)t->n_original, "effective",
                            (json_int_t)t->n_effective));
    if (t->task_hash)
        rc |= set_new(json_object_get(res, "task_hashes"), t->task, json_string(t->task_hash));
    qe_buf_free(&k);
    qe_buf_free(&ks);
    return rc ? qe_err_set(e, QE_ENOMEM, "out of memory adding task %s", t->task) : 0;
}

int qe_lmeval_results_format(qe_buf *out, const json_t *results, qe_err *e)
{
    return qe_pyjson_dump(out, results, 2, 0, e);
}

static int mkdir_p(char *dir, qe_err *e)
{
    struct stat st;
    if (!*dir || stat(dir, &st) == 0)
        return 0;
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int rc = mkdir_p(dir, e);
        *slash = '/';
        if (rc)
            return rc;
    }
    if (mkdir(dir, 0777) && errno != EEXIST)
        return qe_err_set(e, QE_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
    return 0;
}

int qe_lmeval_write_file(const char *path, const void *data, size_t n, qe_err *e)
{
    char *dcopy = strdup(path);
    qe_buf tmp = QE_BUF_INIT;
    /* "<dir>/.<name>.qeval-tmp.<pid>.XXXXXX": hidden, and recognisable by
     * qe_lmeval_remove_stale_temps after a kill -9 */
    const char *slash = strrchr(path, '/');
    if (!dcopy || qe_buf_printf(&tmp, "%.*s.%s" QE_LMEVAL_TMP_TAG "%ld.XXXXXX",
                                slash ? (int)(slash + 1 - path) : 0, path,
                                slash ? slash + 1 : path, (long)getpid())) {
        free(dcopy);
        qe_buf_free(&tmp);
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    char *dir = dirname(dcopy);
    int rc = mkdir_p(dir, e);
    int fd = -1, made_tmp = 0;
    if (rc)
        goto out;
    if (access(path, F_OK) == 0) {
        rc = qe_err_set(e, QE_EIO, "%s: exists, not overwriting", path);
        goto out;
    }
    fd = mkstemp(tmp.data);
    if (fd < 0) {
        rc = qe_err_set(e, QE_EIO, "%s: cannot create temp file: %s", path, strerror(errno));
        goto out;
    }
    made_tmp = 1;
    fchmod(fd, 0644);
    const char *p = data;
    size_t left = n;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = qe_err_set(e, QE_EIO, "%s: write failed: %s", tmp.data, strerror(errno));
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd)) {
        rc = qe_err_set(e, QE_EIO, "%s: fsync failed: %s", tmp.data, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    /* link() fails with EEXIST instead of replacing: never overwrites. */
    if (link(tmp.data, path)) {
        rc = qe_err_set(e, QE_EIO, "%s: %s", path,
                        errno == EEXIST ? "exists, not overwriting" : strerror(errno));
        goto out;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    if (fd >= 0)
        close(fd);
    if (made_tmp)
        unlink(tmp.data);
    qe_buf_free(&tmp);
    free(dcopy);
    return rc;
}

size_t qe_lmeval_remove_stale_temps(const char *path)
{
    char *dcopy = strdup(path);
    if (!dcopy)
        return 0;
    const char *dir = dirname(dcopy);
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        const char *tag = de->d_name[0] == '.' ? strstr(de->d_name, QE_LMEVAL_TMP_TAG) : NULL;
        if (!tag)
            continue;
        char *end;
        errno = 0;
        long pid = strtol(tag + strlen(QE_LMEVAL_TMP_TAG), &end, 10);
        if (errno || pid <= 0 || *end != '.' || (pid_t)pid != pid)
            continue;
        /* alive (or not ours to signal): maybe still writing, leave it */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char full[PATH_MAX];
        if (snprintf(full, sizeof full, "%s/%s", dir, de->d_name) >= (int)sizeof full)
            continue;
        if (unlink(full) == 0)
            n++;
    }
    if (d)
        closedir(d);
    free(dcopy);
    return n;
}
