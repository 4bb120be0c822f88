/* records: per-sample verdict stream over lm-eval samples or qeval verdicts
 * JSONL (see records.h for both formats and the naming rules). */
#include "records.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "lmeval_io.h"

struct qe_records {
    enum qe_records_kind kind;
    char *path;
    char *model;   /* from path / sibling results file */
    char *task;    /* from the file name */
    qe_lmeval_samples *s;
    qe_buf gold, id; /* text of numeric gold / doc_id for the current record */
    qe_buf resp, ext; /* response / extracted with NUL replaced (qe_lmeval_text) */
};

static const char *sv(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* Name of the directory containing path (resolving "." and relative). */
static char *parent_dir_name(const char *path)
{
    char buf[PATH_MAX];
    const char *p = realpath(path, buf) ? buf : path;
    const char *slash = strrchr(p, '/');
    if (!slash)
        return strdup(".");
    const char *end = slash, *start = slash;
    while (start > p && start[-1] != '/')
        start--;
    if (start == end)
        return strdup("/");
    return strndup(start, (size_t)(end - start));
}

/* model_name from a results file next to a samples file with the same date
 * id: results_<date>.json or <stem>_<date>.json. */
static char *sibling_model(const char *path, const char *date_id)
{
    char *dir = strdup(path);
    if (!dir)
        return NULL;
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    DIR *d = opendir(slash ? dir : ".");
    char *model = NULL;
    if (d) {
        struct dirent *de;
        size_t dl = strlen(date_id);
        while (!model && (de = readdir(d))) {
            size_t n = strlen(de->d_name);
            if (n < dl + 6 || strncmp(de->d_name, "samples_", 8) == 0 ||
                strcmp(de->d_name + n - 5, ".json") || strncmp(de->d_name + n - 5 - dl, date_id, dl) ||
                de->d_name[n - 6 - dl] != '_')
                continue;
            qe_buf rp = QE_BUF_INIT;
            qe_buf_printf(&rp, "%s/%s", slash ? dir : ".", de->d_name);
            qe_lmeval_results *r;
            if (qe_lmeval_results_read(qe_buf_str(&rp), &r, NULL) == 0) {
                if (r->model_name && *r->model_name)
                    model = strdup(r->model_name);
                qe_lmeval_results_free(r);
            }
            qe_buf_free(&rp);
        }
        closedir(d);
    }
    free(dir);
    return model;
}

int qe_records_name_matches(const char *path)
{
    size_t n = strlen(path);
    return n > 6 && !strcmp(path + n - 6, ".jsonl");
}

static int detect_by_content(const char *path, enum qe_records_kind *kind, qe_err *e)
{
    qe_lmeval_samples *s;
    int rc = qe_lmeval_samples_open(path, &s, e);
    if (rc)
        return rc;
    qe_lmeval_sample x;
    for (int tries = 0; tries < 100; tries++) {
        rc = qe_lmeval_samples_next(s, &x, e);
        if (rc == 1) {
            if (json_object_get(x.obj, "correct"))
                *kind = QE_RECORDS_VERDICTS;
            else if (json_object_get(x.obj, "filtered_resps") || json_object_get(x.obj, "doc_hash"))
                *kind = QE_RECORDS_SAMPLES;
            else
                rc = qe_err_set(e, QE_EINVAL,
                                "%s:%ld: neither a verdicts line (no \"correct\") nor an lm-eval "
                                "sample (no \"filtered_resps\")",
                                path, x.line);
            break;
        }
        if (rc == 0) {
            rc = qe_err_set(e, QE_EINVAL, "%s: no records", path);
            break;
        }
        if (rc != QE_EINVAL && rc != QE_ELIMIT)
            break;
    }
    qe_lmeval_samples_close(s);
    return rc == 1 ? 0 : (rc ? rc : QE_EINVAL);
}

int qe_records_open(const char *path, qe_records **out, qe_err *e)
{
    *out = NULL;
    qe_records *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    char *task = NULL, *date = NULL;
    int rc = 0;
    if (qe_lmeval_parse_samples_name(path, &task, &date)) {
        r->kind = QE_RECORDS_SAMPLES;
        r->task = task;
        r->model = sibling_model(path, date);
        free(date);
    } else if ((rc = detect_by_content(path, &r->kind, e))) {
        goto fail;
    }
    if (!r->task) { /* file name up to its first '.' */
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        const char *dot = strchr(b, '.');
        r->task = strndup(b, dot ? (size_t)(dot - b) : strlen(b));
    }
    if (!r->model)
        r->model = parent_dir_name(path);
    if (!r->task || !r->model) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = qe_lmeval_samples_open(path, &r->s, e)))
        goto fail;
    *out = r;
    return 0;
fail:
    qe_records_close(r);
    return rc;
}

enum qe_records_kind qe_records_kind(const qe_records *r)
{
    return r->kind;
}

static int bad(qe_records *r, long line, qe_err *e, const char *what)
{
    return qe_err_set(e, QE_EINVAL, "%s:%ld: %s", r->path, line, what);
}

/* Text of a string field with each NUL replaced by U+FFFD (see
 * qe_lmeval_text), or NULL when v is not a string or memory ran out. */
static const char *nul_free(const json_t *v, qe_buf *b)
{
    const char *t = NULL;
    return qe_lmeval_text(v, b, &t) ? NULL : t;
}

/* Text of a string or number field (numbers via their JSON text). */
static const char *text_of(const json_t *v, qe_buf *b)
{
    if (json_is_string(v))
        return or_empty(nul_free(v, b));
    qe_buf_reset(b);
    if (json_is_integer(v))
        qe_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        qe_buf_printf(b, "%.17g", json_real_value(v));
    else
        return "";
    return qe_buf_str(b);
}

int qe_records_next(qe_records *r, qe_record *rec, qe_err *e)
{
    memset(rec, 0, sizeof *rec);
    qe_lmeval_sample s;
    int rc = qe_lmeval_samples_next(r->s, &s, e);
    if (rc != 1)
        return rc;
    json_t *o = s.obj;
    rec->line = s.line;
    rec->doc_id_is_int = s.doc_id_is_int;
    rec->doc_id = s.doc_id;
    rec->doc_id_text = s.doc_id_is_int ? text_of(json_object_get(o, "doc_id"), &r->id) : s.doc_id_text;
    rec->doc_hash = or_empty(s.doc_hash);
    rec->finish_reason = or_empty(sv(json_object_get(o, "finish_reason")));
    rec->completion_tokens = qe_lmeval_completion_tokens(o);
    if (r->kind == QE_RECORDS_VERDICTS) {
        json_t *c = json_object_get(o, "correct");
        if (json_is_boolean(c))
            rec->value = json_is_true(c);
        else if (json_is_integer(c) && (json_integer_value(c) == 0 || json_integer_value(c) == 1))
            rec->value = (double)json_integer_value(c);
        else
            return bad(r, s.line, e, c ? "\"correct\" must be true/false or 0/1" : "no \"correct\"");
        const char *m = sv(json_object_get(o, "model")), *t = sv(json_object_get(o, "task"));
        rec->model = m ? m : r->model;
        rec->task = t ? t : r->task;
        rec->filter = s.filter;
        rec->metric = "correct";
        rec->response = or_empty(nul_free(json_object_get(o, "response"), &r->resp));
        rec->extracted = or_empty(nul_free(json_object_get(o, "extracted"), &r->ext));
        rec->gold = text_of(json_object_get(o, "gold"), &r->gold);
        return 1;
    }
    if (!s.has_metric)
        return bad(r, s.line, e, "no metric value (none of \"metrics\" is a number)");
    rec->model = r->model;
    rec->task = r->task;
    rec->filter = s.filter;
    rec->metric = s.metric_name;
    rec->value = s.metric_value;
    rec->response = or_empty(nul_free(json_array_get(json_array_get(s.resps, 0), 0), &r->resp));
    rec->extracted = or_empty(s.response);
    rec->gold = s.target ? s.target : text_of(json_object_get(o, "target"), &r->gold);
    return 1;
}

void qe_records_close(qe_records *r)
{
    if (!r)
        return;
    qe_lmeval_samples_close(r->s);
    qe_buf_free(&r->gold);
    qe_buf_free(&r->id);
    qe_buf_free(&r->resp);
    qe_buf_free(&r->ext);
    free(r->model);
    free(r->task);
    free(r->path);
    free(r);
}
