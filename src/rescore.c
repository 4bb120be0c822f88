/* rescore: re-score lm-eval samples files with score_lmeval or the math
 * verifier (see rescore.h and docs/rescore.md). */
#include "rescore.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "score_lmeval.h"
#include "task.h"
#include "verify.h"

static const char *const supported[] = {"hendrycks_math500", "aime24", "aime25", "gsm8k"};

int qe_rescore_task_supported(const char *task)
{
    for (size_t i = 0; task && i < sizeof supported / sizeof supported[0]; i++)
        if (!strcmp(task, supported[i]))
            return 1;
    return 0;
}

char *qe_rescore_task_of(const char *path, const char *fallback)
{
    char *task = NULL, *date = NULL;
    if (qe_lmeval_parse_samples_name(path, &task, &date)) {
        free(date);
        /* a name like samples_aime24_custom_<date> is not ours: --task wins */
        if (qe_rescore_task_supported(task) || !fallback)
            return task;
        free(task);
    }
    return fallback ? strdup(fallback) : NULL;
}

void qe_rescore_result_free(qe_rescore_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_groups; i++) {
        free(r->groups[i].filter);
        free(r->groups[i].recorded_filter);
        free(r->groups[i].values);
        json_decref(r->groups[i].changed);
        json_decref(r->groups[i].accepted_not_recorded);
        json_decref(r->groups[i].rejected_but_recorded);
        json_decref(r->groups[i].undecided);
    }
    free(r->groups);
    free(r->file);
    free(r->task);
    free(r->date_id);
    qe_buf_free(&r->samples);
    free(r);
}

/* Per-group scratch kept beside the public struct: recorded values. */
typedef struct {
    double *rec;
    size_t n_rec, cap_rec;
} group_extra;

/* The group named filter, created on first use; recorded is the lm-eval
 * filter its recorded verdicts come from. */
static qe_rescore_group *group_for(qe_rescore_result *r, group_extra **extra, const char *filter,
                                   const char *recorded)
{
    for (size_t i = 0; i < r->n_groups; i++)
        if (!strcmp(r->groups[i].filter, filter))
            return &r->groups[i];
    if (r->n_groups >= 8)
        return NULL; /* score_lmeval has at most 2 filters per task */
    qe_rescore_group *ng = realloc(r->groups, (r->n_groups + 1) * sizeof *ng);
    if (!ng)
        return NULL;
    r->groups = ng;
    group_extra *ne = realloc(*extra, (r->n_groups + 1) * sizeof *ne);
    if (!ne)
        return NULL;
    *extra = ne;
    qe_rescore_group *g = &r->groups[r->n_groups];
    memset(g, 0, sizeof *g);
    memset(&ne[r->n_groups], 0, sizeof *ne);
    g->filter = strdup(filter);
    g->recorded_filter = strdup(recorded);
    g->changed = json_array();
    g->accepted_not_recorded = json_array();
    g->rejected_but_recorded = json_array();
    g->undecided = json_array();
    g->metric = "exact_match";
    if (!g->filter || !g->recorded_filter || !g->changed || !g->accepted_not_recorded ||
        !g->rejected_but_recorded || !g->undecided) {
        free(g->filter);
        free(g->recorded_filter);
        json_decref(g->changed);
        json_decref(g->accepted_not_recorded);
        json_decref(g->rejected_but_recorded);
        json_decref(g->undecided);
        return NULL;
    }
    r->n_groups++;
    return g;
}

static int push_value(double **v, size_t *n, size_t *cap, double x)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        double *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return QE_ENOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static json_t *doc_id_json(const qe_lmeval_sample *s)
{
    return s->doc_id_is_int ? json_integer((json_int_t)s->doc_id) : json_string(s->doc_id_text);
}

/* The new metric value, in the JSON type lm-eval recorded (int for the
 * math tasks' exact_match, float for gsm8k's). */
static json_t *metric_json(const json_t *old, const char *task, int v)
{
    if (json_is_integer(old))
        return json_integer(v);
    if (json_is_real(old))
        return json_real(v);
    if (json_is_boolean(old))
        return json_boolean(v);
    return strcmp(task, "gsm8k") ? json_integer(v) : json_real(v);
}

static int rescored_line(qe_rescore_result *r, const qe_lmeval_sample *s, const qe_lm_filter_score *f,
                         qe_err *e)
{
    json_t *o = s->obj;
    const char *name = s->has_metric ? s->metric_name : f->metric;
    int rc = json_object_set_new(o, "filtered_resps", json_pack("[s]", f->filtered_resp));
    rc |= json_object_set_new(o, name, metric_json(json_object_get(o, name), r->task, f->value));
    if (!json_object_get(o, "metrics"))
        rc |= json_object_set_new(o, "metrics", json_pack("[s]", name));
    if (rc)
        return qe_err_set(e, QE_ENOMEM, "%s:%ld: out of memory", r->file, s->line);
    return qe_lmeval_sample_format(&r->samples, o, e);
}

static void report(const qe_rescore_opts *o, qe_rescore_result *r, const qe_err *le)
{
    r->n_bad++;
    if (o && o->on_bad_line)
        o->on_bad_line(o->arg, le);
}

/* The raw response of a line (NULL for a null response), each NUL replaced
 * by U+FFFD (in nul) so the text after it is scored, as lm-eval does.
 * Returns 0, 1 with le filled when the line is not usable, or QE_ENOMEM. */
static int line_response(const qe_rescore_result *r, const qe_lmeval_sample *s, qe_buf *nul,
                         const char **resp, qe_err *le)
{
    *resp = NULL;
    if (!json_is_object(s->doc))
        return qe_err_set(le, QE_EINVAL, "%s:%ld: no doc object", r->file, s->line), 1;
    const json_t *first = json_array_get(s->resps, 0);
    if (!json_is_array(first))
        return qe_err_set(le, QE_EINVAL, "%s:%ld: resps is not [[response]]", r->file, s->line), 1;
    const json_t *j = json_array_get(first, 0);
    if (j && !json_is_string(j) && !json_is_null(j))
        return qe_err_set(le, QE_EINVAL, "%s:%ld: resps[0][0] is not a string", r->file, s->line), 1;
    if (qe_lmeval_text(j, nul, resp))
        return qe_err_set(le, QE_ENOMEM, "%s:%ld: out of memory", r->file, s->line);
    return 0;
}

/* Adds one new verdict to g and compares it with the line's recorded one.
 * Returns 0 or QE_ENOMEM (le filled). */
static int record_verdict(qe_rescore_result *r, group_extra *x, qe_rescore_group *g,
                          const qe_lmeval_sample *s, int value, qe_err *le)
{
    if (push_value(&g->values, &g->n, &g->cap_values, value))
        return qe_err_set(le, QE_ENOMEM, "%s:%ld: out of memory", r->file, s->line);
    if (!s->has_metric)
        return 0;
    if (push_value(&x->rec, &x->n_rec, &x->cap_rec, s->metric_value))
        return qe_err_set(le, QE_ENOMEM, "%s:%ld: out of memory", r->file, s->line);
    if (fabs(s->metric_value - (double)value) <= 1e-9)
        return 0;
    g->n_changed++;
    json_t *side = (double)value > s->metric_value ? g->accepted_not_recorded : g->rejected_but_recorded;
    if (json_array_append_new(g->changed, doc_id_json(s)) || json_array_append_new(side, doc_id_json(s)))
        return qe_err_set(le, QE_ENOMEM, "%s:%ld: out of memory", r->file, s->line);
    return 0;
}

/* Scores one parsed line with score_lmeval. Returns 0 (scored), 1 (bad
 * line, le filled) or a negative status that stops the file. */
static int score_line(qe_rescore_result *r, group_extra **extra, const qe_rescore_opts *o,
                      qe_buf *nul, const qe_lmeval_sample *s, qe_err *le)
{
    const char *resp;
    int lr = line_response(r, s, nul, &resp, le);
    if (lr)
        return lr;
    qe_lm_score sc;
    qe_err se = {0};
    if (qe_lm_score_doc(r->task, s->doc, resp, &sc, &se)) {
        if (se.code == QE_ENOMEM)
            return qe_err_set(le, QE_ENOMEM, "%s:%ld: out of memory", r->file, s->line);
        return qe_err_set(le, QE_EINVAL, "%s:%ld: %s", r->file, s->line, se.msg), 1;
    }
    const qe_lm_filter_score *f = NULL;
    for (size_t i = 0; i < sc.n; i++)
        if (!strcmp(sc.f[i].filter, s->filter))
            f = &sc.f[i];
    int rc = 0;
    if (!f) {
        rc = 1;
        qe_err_set(le, QE_EINVAL, "%s:%ld: filter '%s' is not a filter of %s", r->file, s->line,
                   s->filter, r->task);
        goto out;
    }
    qe_rescore_group *g = group_for(r, extra, s->filter, s->filter);
    if (!g) {
        rc = qe_err_set(le, QE_ENOMEM, "%s:%ld: out of memory", r->file, s->line);
        goto out;
    }
    if ((rc = record_verdict(r, &(*extra)[g - r->groups], g, s, f->value, le)))
        goto out;
    if (o && o->keep_samples)
        rc = rescored_line(r, s, f, le);
out:
    qe_lm_score_free(&sc);
    return rc;
}

/* The lm-eval filters a task logs (score_lmeval's filter_list). */
static int task_has_filter(const char *task, const char *filter)
{
    if (!strcmp(task, "gsm8k"))
        return !strcmp(filter, "strict-match") || !strcmp(filter, "flexible-extract");
    return !strcmp(filter, "none");
}

/* A re-scored line of the math scorer: filter renamed, filtered_resps the
 * extracted answer, the metric value the verifier's verdict, and a
 * "math_verify" object saying why. */
static int rescored_line_math(qe_rescore_result *r, const qe_lmeval_sample *s, const char *gold,
                              const qe_verify_result *vr, int value, qe_err *e)
{
    json_t *o = s->obj;
    const char *name = s->has_metric ? s->metric_name : "exact_match";
    json_t *why = json_pack("{s:o, s:s, s:s, s:s, s:s}", "verdict",
                            vr->verdict == QE_VERDICT_UNDECIDED ? json_null() : json_boolean(vr->verdict == 1),
                            "reason", vr->reason, "gold", gold, "extracted", vr->extracted, "method",
                            qe_extract_method_name(vr->extract_method));
    int rc = why ? 0 : -1;
    rc |= json_object_set_new(o, "filtered_resps", json_pack("[s]", vr->extracted));
    rc |= json_object_set_new(o, "filter", json_string(QE_RESCORE_MATH_FILTER));
    rc |= json_object_set_new(o, name, metric_json(json_object_get(o, name), r->task, value));
    if (!json_object_get(o, "metrics"))
        rc |= json_object_set_new(o, "metrics", json_pack("[s]", name));
    rc |= json_object_set_new(o, "math_verify", why);
    if (rc)
        return qe_err_set(e, QE_ENOMEM, "%s:%ld: out of memory", r->file, s->line);
    return qe_lmeval_sample_format(&r->samples, o, e);
}

/* Scores one parsed line with the math verifier; same returns as
 * score_line. Only the lines of the first lm-eval filter seen are scored. */
static int score_line_math(qe_rescore_result *r, group_extra **extra, const qe_rescore_opts *o,
                           qe_verify_scratch *vs, qe_buf *nul, const qe_lmeval_sample *s,
                           qe_err *le)
{
    const char *resp;
    int lr = line_response(r, s, nul, &resp, le);
    if (lr)
        return lr;
    if (!task_has_filter(r->task, s->filter))
        return qe_err_set(le, QE_EINVAL, "%s:%ld: filter '%s' is not a filter of %s", r->file, s->line,
                          s->filter, r->task), 1;
    if (r->n_groups && strcmp(r->groups[0].recorded_filter, s->filter)) {
        r->n_other_filter++; /* the same response again, under gsm8k's other filter */
        return 0;
    }
    char *gold = NULL;
    qe_err se = {0};
    if (qe_rescore_math_gold(r->task, s->doc, &gold, &se)) {
        if (se.code == QE_ENOMEM)
            return qe_err_set(le, QE_ENOMEM, "%s:%ld: out of memory", r->file, s->line);
        return qe_err_set(le, QE_EINVAL, "%s:%ld: %s", r->file, s->line, se.msg), 1;
    }
    qe_verify_opts vo;
    qe_verify_opts_init(&vo);
    vo.scratch = vs;
    vo.no_canon = 1;
    qe_verify_result vr;
    int v = qe_rescore_math_verify(r->task, gold, resp, &vo, &vr);
    if (v == QE_ENOMEM) {
        free(gold);
        return qe_err_set(le, QE_ENOMEM, "%s:%ld: out of memory", r->file, s->line);
    }
    int value = v == QE_VERDICT_TRUE;
    int rc;
    qe_rescore_group *g = group_for(r, extra, QE_RESCORE_MATH_FILTER, s->filter);
    if (!g) {
        rc = qe_err_set(le, QE_ENOMEM, "%s:%ld: out of memory", r->file, s->line);
        goto out;
    }
    if ((rc = record_verdict(r, &(*extra)[g - r->groups], g, s, value, le)))
        goto out;
    if (v == QE_VERDICT_UNDECIDED) {
        g->n_undecided++;
        if (json_array_append_new(g->undecided, doc_id_json(s))) {
            rc = qe_err_set(le, QE_ENOMEM, "%s:%ld: out of memory", r->file, s->line);
            goto out;
        }
    }
    if (o && o->keep_samples)
        rc = rescored_line_math(r, s, gold, &vr, value, le);
out:
    free(gold);
    return rc;
}

int qe_rescore_math_gold(const char *task, const json_t *doc, char **out, qe_err *se)
{
    int rc = qe_lm_gold(task, doc, out, se);
    if (rc || strcmp(task, "gsm8k"))
        return rc;
    if (qe_lm_gsm8k_final_answer(*out)) {
        free(*out);
        *out = NULL;
        return qe_err_set(se, QE_EINVAL, "gsm8k doc: the answer has no '####'");
    }
    return 0;
}

int qe_rescore_math_verify(const char *task, const char *gold, const char *response,
                           const qe_verify_opts *vo, qe_verify_result *vr)
{
    /* gsm8k's format (its few-shot answers and strict-match) puts the final
     * answer after "####": when the response has one, only the rest of
     * that line (first "####", as strict-match) is given to the verifier. */
    const char *text = response ? response : "";
    char *cut = NULL;
    const char *hash = strcmp(task, "gsm8k") ? NULL : strstr(text, "####");
    if (hash) {
        hash += 4;
        if (!(cut = strndup(hash, strcspn(hash, "\n"))))
            return QE_ENOMEM;
        text = cut;
    }
    int v = qe_verify_response(gold, text, vo, vr);
    free(cut);
    return v;
}

int qe_rescore_file(const char *path, const qe_rescore_opts *o, qe_rescore_result **out, qe_err *e)
{
    *out = NULL;
    qe_rescore_result *r = calloc(1, sizeof *r);
    group_extra *extra = NULL;
    qe_verify_scratch *vs = NULL;
    qe_buf nul = QE_BUF_INIT; /* a response with NUL replaced */
    if (!r || !(r->file = strdup(path))) {
        free(r);
        return qe_err_set(e, QE_ENOMEM, "%s: out of memory", path);
    }
    char *t = NULL;
    if (qe_lmeval_parse_samples_name(path, &t, &r->date_id))
        free(t);
    r->task = qe_rescore_task_of(path, o ? o->task : NULL);
    int rc = 0;
    if (!r->task) {
        rc = qe_err_set(e, QE_EINVAL,
                        "%s: cannot tell the task: the name is not samples_<task>_<date>.jsonl (use --task)",
                        path);
        goto fail;
    }
    if (!qe_rescore_task_supported(r->task)) {
        rc = qe_err_set(e, QE_EINVAL,
                        "%s: task '%s' has no lm-eval scorer here (hendrycks_math500, aime24, aime25, gsm8k)",
                        path, r->task);
        goto fail;
    }
    r->scorer = o && o->scorer == QE_RESCORE_MATH ? QE_RESCORE_MATH : QE_RESCORE_LMEVAL;
    if (r->scorer == QE_RESCORE_MATH && !(vs = qe_verify_scratch_new())) {
        rc = qe_err_set(e, QE_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    qe_lmeval_samples *rd;
    if ((rc = qe_lmeval_samples_open(path, &rd, e)))
        goto fail;
    qe_lmeval_sample s;
    for (;;) {
        qe_err le = {0};
        int got = qe_lmeval_samples_next(rd, &s, &le);
        if (got == 0)
            break;
        if (got == QE_EINVAL || got == QE_ELIMIT) {
            r->n_lines++;
            report(o, r, &le);
            continue;
        }
        if (got < 0) {
            rc = got;
            qe_err_set(e, got, "%s", le.msg);
            break;
        }
        if (++r->n_lines > QE_RESCORE_MAX_LINES) {
            rc = qe_err_set(e, QE_ELIMIT, "%s: more than %u lines", path, QE_RESCORE_MAX_LINES);
            break;
        }
        int sr = r->scorer == QE_RESCORE_MATH ? score_line_math(r, &extra, o, vs, &nul, &s, &le)
                                              : score_line(r, &extra, o, &nul, &s, &le);
        if (sr == 1) {
            report(o, r, &le);
        } else if (sr < 0) {
            rc = sr;
            qe_err_set(e, sr, "%s", le.msg);
            break;
        }
    }
    qe_lmeval_samples_close(rd);
    if (rc)
        goto fail;
    enum qe_lmeval_sum kind = o ? o->sum_kind : QE_LMEVAL_SUM_FOLD;
    for (size_t i = 0; i < r->n_groups; i++) {
        qe_rescore_group *g = &r->groups[i];
        group_extra *x = &extra[i];
        if (g->n) {
            g->score = qe_lmeval_mean(g->values, g->n, kind);
            g->stderr_kind = qe_lmeval_mean_stderr(g->values, g->n, kind, &g->stderr_val) ? 2 : 1;
        }
        g->n_recorded = x->n_rec;
        if (x->n_rec)
            g->recorded_score = qe_lmeval_mean(x->rec, x->n_rec, kind);
    }
    for (size_t i = 0; i < r->n_groups; i++)
        free(extra[i].rec);
    free(extra);
    qe_verify_scratch_free(vs);
    qe_buf_free(&nul);
    *out = r;
    return 0;
fail:
    qe_verify_scratch_free(vs);
    qe_buf_free(&nul);
    if (extra)
        for (size_t i = 0; i < r->n_groups; i++)
            free(extra[i].rec);
    free(extra);
    qe_rescore_result_free(r);
    return rc;
}

/* ---------- writing ---------- */

/* The results file next to a samples file with the same date id. */
static qe_lmeval_results *sibling_results(const char *path, const char *date_id)
{
    if (!date_id)
        return NULL;
    char *dir = strdup(path);
    if (!dir)
        return NULL;
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    const char *dname = slash ? (*dir ? dir : "/") : ".";
    DIR *d = opendir(dname);
    qe_lmeval_results *found = NULL;
    size_t dl = strlen(date_id);
    struct dirent *de;
    while (d && !found && (de = readdir(d))) {
        const char *nm = de->d_name;
        size_t n = strlen(nm);
        if (n < dl + 6 || !strncmp(nm, "samples_", 8) || strcmp(nm + n - 5, ".json") ||
            strncmp(nm + n - 5 - dl, date_id, dl) || nm[n - 6 - dl] != '_')
            continue;
        qe_buf rp = QE_BUF_INIT;
        qe_buf_printf(&rp, "%s/%s", dname, nm);
        if (qe_lmeval_results_read(qe_buf_str(&rp), &found, NULL))
            found = NULL;
        qe_buf_free(&rp);
    }
    if (d)
        closedir(d);
    free(dir);
    return found;
}

static char *parent_name(const char *path)
{
    const char *end = strrchr(path, '/');
    if (!end)
        return NULL;
    const char *start = end;
    while (start > path && start[-1] != '/')
        start--;
    return end > start ? strndup(start, (size_t)(end - start)) : NULL;
}

int qe_rescore_write(const qe_rescore_result *r, const char *dir, const char *date_id,
                     char **samples_path, char **results_path, qe_err *e)
{
    if (samples_path)
        *samples_path = NULL;
    if (results_path)
        *results_path = NULL;
    qe_lmeval_results *sib = sibling_results(r->file, r->date_id);
    const qe_lmeval_task *st = sib ? qe_lmeval_results_task(sib, r->task) : NULL;
    char *parent = parent_name(r->file);
    const char *model_name = sib && sib->model_name && *sib->model_name ? sib->model_name
                             : parent ? parent : "unknown";
    char *rp = NULL, *sp = NULL;
    json_t *res = NULL;
    qe_buf body = QE_BUF_INIT;
    int rc = qe_lmeval_paths(dir, model_name, date_id, r->task, &rp, &sp, e);
    if (rc)
        goto out;
    if (!r->samples.len) {
        rc = qe_err_set(e, QE_EINVAL, "%s: no line could be re-scored, nothing to write", r->file);
        goto out;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    double now = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
    const json_t *root = sib ? sib->root : NULL;
    qe_lmeval_results_info info = {
        .model = sib && sib->model ? sib->model : "unknown",
        .model_args = sib ? sib->model_args : NULL,
        .model_name = model_name,
        .has_limit = sib ? sib->has_limit : 0,
        .limit = sib ? sib->limit : 0,
        .gen_kwargs = sib ? sib->gen_kwargs : NULL,
        .date = now,
        .system_instruction = sib ? sib->system_instruction : NULL,
        .chat_template = json_string_value(json_object_get(root, "chat_template")),
        .fewshot_as_multiturn = json_is_true(json_object_get(root, "fewshot_as_multiturn")),
        .start_time = now,
        .end_time = now,
        .version = r->scorer == QE_RESCORE_MATH ? "rescore --scorer math" : "rescore",
    };
    res = qe_lmeval_results_new(&info, e);
    if (!res) {
        rc = e && e->code ? e->code : QE_ENOMEM;
        goto out;
    }
    const qe_task *tk = qe_task_find(r->task);
    for (size_t i = 0; i < r->n_groups; i++) {
        const qe_rescore_group *g = &r->groups[i];
        if (!g->n)
            continue;
        qe_lmeval_task_in ti = {
            .task = r->task,
            .metric = g->metric,
            .filter = g->filter,
            .value = g->score,
            .stderr_na = g->stderr_kind != 1,
            .stderr_val = g->stderr_val,
            .n_original = st && st->n_original >= 0 ? st->n_original : (long)g->n,
            .n_effective = (long)g->n,
            .n_shot = st && st->n_shot >= 0 ? st->n_shot : (tk ? qe_task_num_fewshot(tk) : 0),
            .version = st && json_is_number(st->version) ? json_number_value(st->version)
                       : tk ? qe_task_version_number(tk) : 0,
            .config = st ? st->config : NULL,
            .task_hash = NULL,
        };
        if ((rc = qe_lmeval_results_add_task(res, &ti, e)))
            goto out;
    }
    if ((rc = qe_lmeval_results_format(&body, res, e)))
        goto out;
    if ((rc = qe_lmeval_write_file(sp, r->samples.data, r->samples.len, e)))
        goto out;
    if ((rc = qe_lmeval_write_file(rp, body.data, body.len, e)))
        goto out;
    if (samples_path)
        *samples_path = sp, sp = NULL;
    if (results_path)
        *results_path = rp, rp = NULL;
out:
    qe_buf_free(&body);
    json_decref(res);
    free(rp);
    free(sp);
    free(parent);
    qe_lmeval_results_free(sib);
    return rc;
}
