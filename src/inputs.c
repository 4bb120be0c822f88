/* inputs: paths -> per task x filter paired-comparison inputs (inputs.h). */
#include "inputs.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lmeval_io.h"
#include "paths.h"
#include "score_lmeval.h"

enum kind { K_UNKNOWN = 0, K_SAMPLES, K_VERDICTS };

typedef struct {
    char *path;
    enum kind kind;
    char *task;    /* samples: from the name */
    char *date_id; /* samples: from the name */
    double when;
} file_ent;

typedef struct {
    char *path;
    qe_lmeval_results *res; /* NULL when unreadable */
} res_cache;

typedef struct {
    size_t model;
    char *task, *filter;
    qe_inputs_side side;
    size_t cap;
    double when;
} bucket;

typedef struct {
    json_t **objs; /* kept lines: records borrow their strings */
    size_t n_objs, cap_objs;
    char **owned; /* extracted answers and other owned strings */
    size_t n_owned, cap_owned;
    res_cache *rc;
    size_t n_rc;
    qe_compare_model *cmp_models; /* all cmp inputs' model arrays, one block */
    size_t *cmp_idx;              /* [n_cmp][1 + n_models] model indexes */
    size_t cmp_stride;
} priv;

typedef struct {
    qe_inputs *in;
    priv *p;
    bucket *b;
    size_t nb, capb;
    size_t model_input[4096]; /* input index of each model (bounded below) */
} loader;

#define MAX_MODELS 4096

/* ---- small helpers ---------------------------------------------------- */

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

static const char *base_of(const char *p)
{
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

static char *dir_of(const char *path)
{
    const char *s = strrchr(path, '/');
    if (!s)
        return strdup(".");
    if (s == path)
        return strdup("/");
    return strndup(path, (size_t)(s - path));
}

/* Name of the directory holding path ("." resolved). */
static char *parent_name(const char *path)
{
    char *abs = realpath(path, NULL);
    const char *p = abs ? abs : path;
    char *d = dir_of(p);
    char *r = d ? strdup(base_of(d)) : NULL;
    if (r && (!*r || !strcmp(r, ".")))
        r = (free(r), strdup("."));
    free(d);
    free(abs);
    return r;
}

static int same_path(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    while (na > 1 && a[na - 1] == '/')
        na--;
    while (nb > 1 && b[nb - 1] == '/')
        nb--;
    return na == nb && !strncmp(a, b, na);
}

static int warn(qe_inputs *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int warn(qe_inputs *in, const char *fmt, ...)
{
    qe_buf b = QE_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    qe_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < in->n_warnings; i++)
        if (!strcmp(in->warnings[i], qe_buf_str(&b))) {
            qe_buf_free(&b);
            return 0;
        }
    if (in->n_warnings >= 1000) {
        qe_buf_free(&b);
        return 0;
    }
    char **nw = realloc(in->warnings, (in->n_warnings + 1) * sizeof *nw);
    if (!nw) {
        qe_buf_free(&b);
        return QE_ENOMEM;
    }
    in->warnings = nw;
    in->warnings[in->n_warnings++] = qe_buf_detach(&b);
    return 0;
}

static int keep_obj(priv *p, json_t *o)
{
    if (p->n_objs == p->cap_objs) {
        size_t nc = p->cap_objs ? 2 * p->cap_objs : 256;
        json_t **n = realloc(p->objs, nc * sizeof *n);
        if (!n)
            return QE_ENOMEM;
        p->objs = n;
        p->cap_objs = nc;
    }
    p->objs[p->n_objs++] = json_incref(o);
    return 0;
}

static char *keep_str(priv *p, char *s)
{
    if (!s)
        return NULL;
    if (p->n_owned == p->cap_owned) {
        size_t nc = p->cap_owned ? 2 * p->cap_owned : 256;
        char **n = realloc(p->owned, nc * sizeof *n);
        if (!n) {
            free(s);
            return NULL;
        }
        p->owned = n;
        p->cap_owned = nc;
    }
    return p->owned[p->n_owned++] = s;
}

/* Date id (YYYY-MM-DDTHH-MM-SS[.ffffff]) as seconds (UTC; only ordering matters). */
static double date_seconds(const char *d)
{
    struct tm tm = {0};
    if (!d || sscanf(d, "%4d-%2d-%2dT%2d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    const char *dot = strchr(d, '.');
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) + (dot ? strtod(dot, NULL) : 0);
}

static double mtime_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_mtime : 0;
}

/* ---- collecting files --------------------------------------------------- */

typedef struct {
    file_ent *f;
    size_t n, cap;
} file_list;

static int add_file(file_list *l, const char *path, enum kind k)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->f[i].path, path))
            return 0;
    if (l->n >= QE_INPUTS_MAX_FILES)
        return QE_ELIMIT;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 16;
        file_ent *n = realloc(l->f, nc * sizeof *n);
        if (!n)
            return QE_ENOMEM;
        l->f = n;
        l->cap = nc;
    }
    file_ent *e = &l->f[l->n];
    memset(e, 0, sizeof *e);
    e->kind = k;
    if (!(e->path = strdup(path)))
        return QE_ENOMEM;
    if (qe_lmeval_parse_samples_name(path, &e->task, &e->date_id)) {
        e->kind = K_SAMPLES;
        e->when = date_seconds(e->date_id);
    } else {
        e->when = mtime_of(path);
    }
    l->n++;
    return 0;
}

static int is_results_name(const char *path)
{
    return ends_with(path, ".json") && qe_lmeval_results_name_date(path) != NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Samples files next to a results file with its date id. */
static int add_sibling_samples(file_list *l, const char *results_path)
{
    const char *d = qe_lmeval_results_name_date(results_path);
    size_t dl = strlen(d) - 5; /* without ".json" */
    char *dir = dir_of(results_path);
    if (!dir)
        return QE_ENOMEM;
    DIR *dd = opendir(dir);
    int found = 0, rc = 0;
    if (dd) {
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;
        while ((de = readdir(dd)) && !rc) {
            char *t = NULL, *dt = NULL;
            if (qe_lmeval_parse_samples_name(de->d_name, &t, &dt) && strlen(dt) == dl &&
                !strncmp(dt, d, dl)) {
                char **nn = realloc(names, (n + 1) * sizeof *nn);
                if (nn) {
                    names = nn;
                    names[n++] = strdup(de->d_name);
                } else
                    rc = QE_ENOMEM;
            }
            free(t);
            free(dt);
        }
        closedir(dd);
        if (n)
            qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++) {
            if (!rc && names[i]) {
                qe_buf p = QE_BUF_INIT;
                qe_buf_printf(&p, "%s/%s", dir, names[i]);
                rc = add_file(l, qe_buf_str(&p), K_SAMPLES);
                qe_buf_free(&p);
                found++;
            }
            free(names[i]);
        }
        free(names);
    }
    free(dir);
    return rc ? rc : found;
}

static int want_in_dir(const char *path)
{
    char *t = NULL, *dt = NULL;
    int ok = qe_lmeval_parse_samples_name(path, &t, &dt) || ends_with(path, ".verdicts.jsonl") ||
             is_results_name(path);
    free(t);
    free(dt);
    return ok;
}

/* The data files one command-line path names: a directory (walked), a glob,
 * a samples / verdicts file, or a results file (its samples are used). */
static int collect(qe_inputs *in, file_list *fl, const char *path, qe_err *e)
{
    qe_paths ps = {0};
    size_t skipped = 0, no_samples = 0;
    int rc = qe_paths_add(&ps, path, want_in_dir, e);
    struct stat st;
    if (!rc && ps.n_errors)
        rc = qe_err_set(e, QE_EINVAL, "%s", ps.errors[0]);
    else if (!rc && ps.n_files == 1 && !strcmp(ps.files[0], path) && stat(path, &st) != 0)
        rc = qe_err_set(e, QE_EIO, "%s: no such file or directory", path);
    for (size_t i = 0; i < ps.n_files && !rc; i++) {
        const char *f = ps.files[i];
        if (is_results_name(f)) {
            int got = add_sibling_samples(fl, f);
            if (got < 0)
                rc = qe_err_set(e, got, "out of memory");
            else if (got == 0) {
                rc = warn(in, "%s: results without samples_<task>_<date>.jsonl beside it "
                              "(per-problem records need --log-samples); skipped",
                          f);
                no_samples++;
            }
        } else if (ends_with(f, ".jsonl")) {
            if ((rc = add_file(fl, f, K_UNKNOWN)))
                rc = qe_err_set(e, rc, rc == QE_ELIMIT ? "too many files" : "out of memory");
        } else {
            rc = warn(in, "%s: not a results, samples or verdicts file; skipped", f);
            skipped++;
        }
    }
    /* a path naming only non-data files (a README caught by a shell glob)
     * is skipped with its warning; an empty directory is an error */
    if (!rc && fl->n == 0 && !(skipped && skipped == ps.n_files))
        rc = qe_err_set(e, QE_EINVAL,
                        "%s: no per-problem records (samples_*.jsonl or *.verdicts.jsonl) found%s",
                        path,
                        no_samples ? "; rerun the same `qeval run` command with --log-samples: it "
                                     "writes them from its store without asking the server "
                                     "again (lm_eval needs --log_samples)"
                                   : "");
    qe_paths_free(&ps);
    return rc;
}

/* ---- results (configs) ---------------------------------------------------- */

static const qe_lmeval_results *results_for(priv *p, const char *samples_path,
                                            const char *date_id)
{
    char *dir = dir_of(samples_path);
    if (!dir)
        return NULL;
    const qe_lmeval_results *found = NULL;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char *best = NULL;
        while ((de = readdir(d))) {
            const char *dt = qe_lmeval_results_name_date(de->d_name);
            if (!dt || strlen(dt) != strlen(date_id) + 5 || strncmp(dt, date_id, strlen(date_id)))
                continue;
            if (!best || strcmp(de->d_name, best) < 0) {
                free(best);
                best = strdup(de->d_name);
            }
        }
        closedir(d);
        if (best) {
            qe_buf path = QE_BUF_INIT;
            qe_buf_printf(&path, "%s/%s", dir, best);
            for (size_t i = 0; i < p->n_rc; i++)
                if (!strcmp(p->rc[i].path, qe_buf_str(&path)))
                    found = p->rc[i].res;
            int cached = 0;
            for (size_t i = 0; i < p->n_rc; i++)
                cached |= !strcmp(p->rc[i].path, qe_buf_str(&path));
            if (!cached) {
                res_cache *n = realloc(p->rc, (p->n_rc + 1) * sizeof *n);
                if (n) {
                    p->rc = n;
                    qe_lmeval_results *r = NULL;
                    if (qe_lmeval_results_read(qe_buf_str(&path), &r, NULL))
                        r = NULL;
                    p->rc[p->n_rc].path = qe_buf_detach(&path);
                    p->rc[p->n_rc].res = r;
                    p->n_rc++;
                    found = r;
                }
            }
            qe_buf_free(&path);
            free(best);
        }
    }
    free(dir);
    return found;
}

static void set_copy(json_t *o, const char *k, const json_t *v)
{
    json_object_set_new(o, k, v ? json_deep_copy(v) : json_null());
}

/* What makes answers differ, for mismatch detection (docs/compare.md).
 * Not --limit (which problems, not their answers: only paired problems are
 * compared) nor repeats (the verdict is the first answer's, take_first;
 * a voting filter shows in filter_list). */
static json_t *build_config(const qe_lmeval_results *r, const char *task)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    /* none given: lm-eval writes null, qeval before 2026-11-26 wrote {} */
    const json_t *gk = r->gen_kwargs;
    if ((json_is_object(gk) && json_object_size(gk) == 0) ||
        (json_is_string(gk) && !*json_string_value(gk)))
        gk = NULL;
    set_copy(o, "gen_kwargs", gk);
    json_object_set_new(o, "chat_template",
                        r->has_chat_template
                            ? json_string(r->chat_template_sha ? r->chat_template_sha : "(applied)")
                            : json_null());
    json_object_set_new(o, "system_instruction",
                        r->system_instruction ? json_string(r->system_instruction) : json_null());
    set_copy(o, "fewshot_as_multiturn", json_object_get(r->root, "fewshot_as_multiturn"));
    json_t *th = qe_lmeval_thinking(r);
    json_object_set_new(o, "thinking", th ? th : json_null());
    const qe_lmeval_task *t = qe_lmeval_results_task(r, task);
    if (t) {
        json_t *tc = json_object();
        static const char *const keys[] = {"dataset_path", "dataset_name", "test_split",
                                           "doc_to_text", "doc_to_target", "description",
                                           "target_delimiter", "fewshot_delimiter",
                                           "num_fewshot", "generation_kwargs", "filter_list",
                                           NULL};
        for (size_t i = 0; keys[i] && json_is_object(t->config); i++) {
            json_t *v = json_object_get(t->config, keys[i]);
            if (v)
                set_copy(tc, keys[i], v);
        }
        if (t->n_shot >= 0)
            json_object_set_new(tc, "n_shot", json_integer(t->n_shot));
        json_object_set_new(o, "task", tc);
    }
    return o;
}

/* ---- buckets ------------------------------------------------------------ */

static int model_index(loader *L, size_t input, const char *raw, const char *dir, size_t *out)
{
    qe_inputs *in = L->in;
    for (size_t i = 0; i < in->n_models; i++)
        if (!strcmp(in->models[i].dir, dir) && !strcmp(in->models[i].raw, raw)) {
            *out = i;
            return 0;
        }
    if (in->n_models >= MAX_MODELS)
        return QE_ELIMIT;
    qe_inputs_model *n = realloc(in->models, (in->n_models + 1) * sizeof *n);
    if (!n)
        return QE_ENOMEM;
    in->models = n;
    qe_inputs_model *m = &in->models[in->n_models];
    memset(m, 0, sizeof *m);
    m->raw = strdup(raw);
    m->dir = strdup(dir);
    if (!m->raw || !m->dir) {
        free(m->raw);
        free(m->dir);
        return QE_ENOMEM;
    }
    L->model_input[in->n_models] = input;
    *out = in->n_models++;
    return 0;
}

static void side_clear(qe_inputs_side *s)
{
    for (size_t i = 0; i < s->n; i++)
        free((char *)s->recs[i].key);
    s->n = 0;
}

static void side_free(qe_inputs_side *s)
{
    side_clear(s);
    free(s->recs);
    free(s->prompt_hash);
    free(s->doc_hash);
    free(s->line);
    free(s->file);
    json_decref(s->config);
    memset(s, 0, sizeof *s);
}

/* The bucket for model x task x filter that file f may fill; NULL with
 * *skip = 1 when a newer file already filled it. */
static bucket *bucket_for(loader *L, size_t model, const char *task, const char *filter,
                          const file_ent *f, int *skip, int *rc)
{
    *skip = 0;
    *rc = 0;
    for (size_t i = 0; i < L->nb; i++) {
        bucket *b = &L->b[i];
        if (b->model != model || strcmp(b->task, task) || strcmp(b->filter, filter))
            continue;
        if (!strcmp(b->side.file, f->path))
            return b;
        const char *name = L->in->models[model].raw;
        if (b->when > f->when) {
            *skip = 1;
            *rc = warn(L->in, "%s: %s/%s of %s superseded by newer %s", f->path, task, filter,
                       name, b->side.file);
            return NULL;
        }
        *rc = warn(L->in, "%s: %s/%s of %s superseded by newer %s", b->side.file, task, filter,
                   name, f->path);
        side_clear(&b->side);
        free(b->side.file);
        json_decref(b->side.config);
        b->side.config = NULL;
        b->side.file = strdup(f->path);
        b->when = f->when;
        if (!b->side.file)
            *rc = QE_ENOMEM;
        return *rc ? NULL : b;
    }
    if (L->nb == L->capb) {
        size_t nc = L->capb ? 2 * L->capb : 16;
        bucket *n = realloc(L->b, nc * sizeof *n);
        if (!n) {
            *rc = QE_ENOMEM;
            return NULL;
        }
        L->b = n;
        L->capb = nc;
    }
    bucket *b = &L->b[L->nb];
    memset(b, 0, sizeof *b);
    b->model = model;
    b->task = strdup(task);
    b->filter = strdup(filter);
    b->side.file = strdup(f->path);
    b->when = f->when;
    L->nb++;
    if (!b->task || !b->filter || !b->side.file)
        *rc = QE_ENOMEM;
    return b;
}

static int bucket_push(bucket *b, size_t total)
{
    qe_inputs_side *s = &b->side;
    if (total >= QE_INPUTS_MAX_RECORDS)
        return QE_ELIMIT;
    if (s->n < b->cap)
        return 0;
    size_t nc = b->cap ? 2 * b->cap : 64;
    qe_compare_record *r = realloc(s->recs, nc * sizeof *r);
    if (r)
        s->recs = r;
    const char **ph = realloc(s->prompt_hash, nc * sizeof *ph);
    if (ph)
        s->prompt_hash = ph;
    const char **dh = realloc(s->doc_hash, nc * sizeof *dh);
    if (dh)
        s->doc_hash = dh;
    long *ln = realloc(s->line, nc * sizeof *ln);
    if (ln)
        s->line = ln;
    if (!r || !ph || !dh || !ln)
        return QE_ENOMEM;
    b->cap = nc;
    return 0;
}

static const char *sv(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static char *text_of(const json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    return s;
}

/* gsm8k's gold is the whole worked answer; its final answer follows the
 * last "####" (as in rescore). Rewrites s in place; other tasks unchanged. */
static char *gsm8k_final(const char *task, char *s)
{
    if (!strcmp(task, "gsm8k"))
        qe_lm_gsm8k_final_answer(s);
    return s;
}

/* Reads one samples or verdicts file into buckets. */
static int read_file(loader *L, size_t input, file_ent *f, size_t *total, qe_err *e)
{
    priv *p = L->p;
    qe_lmeval_samples *s;
    int rc = qe_lmeval_samples_open(f->path, &s, e);
    if (rc)
        return rc;
    char *dirname = parent_name(f->path);
    char *rundir = qe_paths_run_dir(f->path);
    char *stem = strdup(base_of(f->path));
    if (stem)
        stem[strcspn(stem, ".")] = '\0';
    const qe_lmeval_results *res = NULL;
    if (f->kind == K_SAMPLES && f->date_id)
        res = results_for(p, f->path, f->date_id);
    const char *file_model = res && res->model_name && *res->model_name ? res->model_name : NULL;
    json_t *config = res ? build_config(res, f->task) : NULL;
    qe_lmeval_sample x;
    size_t got = 0;
    if (!dirname || !stem || !rundir) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto out;
    }
    while ((rc = qe_lmeval_samples_next(s, &x, e)) == 1) {
        json_t *o = x.obj;
        if (f->kind == K_UNKNOWN) {
            if (json_object_get(o, "correct"))
                f->kind = K_VERDICTS;
            else if (json_object_get(o, "filtered_resps") || json_object_get(o, "resps"))
                f->kind = K_SAMPLES;
            else {
                rc = qe_err_set(e, QE_EINVAL,
                                "%s:%ld: neither a verdicts line (no \"correct\") nor an lm-eval "
                                "sample (no \"resps\")",
                                f->path, x.line);
                goto out;
            }
        }
        qe_compare_record r;
        const char *model, *task, *filter = x.filter;
        char keybuf[32];
        if (f->kind == K_VERDICTS) {
            qe_err le = {0};
            if (qe_compare_record_from_json(o, 0, &r, keybuf, sizeof keybuf, &le) < 0) {
                rc = qe_err_set(e, QE_EINVAL, "%s:%ld: %s", f->path, x.line, le.msg);
                goto out;
            }
            model = sv(json_object_get(o, "model"));
            task = sv(json_object_get(o, "task"));
            model = model && *model ? model : dirname;
            task = task && *task ? task : stem;
        } else {
            qe_compare_record_init(&r);
            if (!x.has_metric) {
                rc = qe_err_set(e, QE_EINVAL,
                                "%s:%ld: no metric value (none of \"metrics\" is a number)",
                                f->path, x.line);
                goto out;
            }
            if (x.doc_id_is_int) {
                snprintf(keybuf, sizeof keybuf, "%lld", x.doc_id);
                r.key = keybuf;
            } else {
                r.key = x.doc_id_text;
            }
            r.correct = x.metric_value;
            if (r.correct < 0 || r.correct > 1) {
                rc = qe_err_set(e, QE_EINVAL, "%s:%ld: metric %s = %g is not in [0, 1]", f->path,
                                x.line, x.metric_name, x.metric_value);
                goto out;
            }
            model = file_model ? file_model : dirname;
            task = f->task ? f->task : stem;
            const char *resp = sv(json_array_get(json_array_get(x.resps, 0), 0));
            const char *filt = sv(json_array_get(x.filtered_resps, 0));
            r.response = resp;
            if (filt && resp && strcmp(filt, resp)) {
                r.extracted = strcmp(filt, "[invalid]") ? filt : "";
            } else if (resp) {
                char *ex = NULL;
                if (qe_lm_extract_answer(task, resp, &ex) == 0)
                    r.extracted = keep_str(p, ex);
            }
            /* the task's gold answer (gsm8k: after "####"), else the target */
            char *gold = NULL;
            if (x.doc && qe_lm_gold(task, x.doc, &gold, NULL) == 0 && gold)
                r.gold = keep_str(p, gsm8k_final(task, gold));
            else
                r.gold = x.target;
            if (!r.gold && json_object_get(o, "target"))
                r.gold = keep_str(p, text_of(json_object_get(o, "target")));
            r.finish_reason = sv(json_object_get(o, "finish_reason"));
            r.completion_tokens = qe_lmeval_completion_tokens(o);
        }
        /* lines may carry their own filter in verdicts files too */
        if (!filter || !*filter)
            filter = "none";
        size_t mi;
        if ((rc = model_index(L, input, model, rundir, &mi))) {
            rc = qe_err_set(e, rc, rc == QE_ELIMIT ? "more than %d models" : "out of memory",
                            MAX_MODELS);
            goto out;
        }
        int skip;
        bucket *b = bucket_for(L, mi, task, filter, f, &skip, &rc);
        if (rc) {
            rc = qe_err_set(e, rc, "out of memory");
            goto out;
        }
        if (skip)
            continue;
        if (!b->side.config && config)
            b->side.config = json_deep_copy(config);
        if ((rc = bucket_push(b, *total))) {
            rc = qe_err_set(e, rc, rc == QE_ELIMIT ? "%s: more than %d records in all" : "%s: out of memory",
                            f->path, QE_INPUTS_MAX_RECORDS);
            goto out;
        }
        /* records borrow only top-level strings and resps: drop the rest */
        json_object_del(o, "doc");
        json_object_del(o, "arguments");
        if ((rc = keep_obj(p, o))) {
            rc = qe_err_set(e, rc, "out of memory");
            goto out;
        }
        char *key = strdup(r.key);
        if (!key) {
            rc = qe_err_set(e, QE_ENOMEM, "out of memory");
            goto out;
        }
        r.key = key;
        qe_inputs_side *sd = &b->side;
        sd->recs[sd->n] = r;
        sd->prompt_hash[sd->n] = x.prompt_hash;
        const char *dh = sv(json_object_get(o, "doc_hash"));
        sd->doc_hash[sd->n] = dh && *dh ? dh : NULL;
        sd->line[sd->n] = x.line;
        sd->n++;
        (*total)++;
        got++;
    }
    if (rc < 0)
        goto out;
    rc = 0;
    if (!got)
        rc = warn(L->in, "%s: no records", f->path);
out:
    json_decref(config);
    qe_lmeval_samples_close(s);
    free(dirname);
    free(rundir);
    free(stem);
    return rc;
}

/* ---- pairing -------------------------------------------------------------- */

typedef struct {
    const char *k;
    size_t i;
} kidx;

static int kidx_cmp(const void *a, const void *b)
{
    const kidx *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

static int check_duplicates(const qe_inputs_side *s, qe_err *e)
{
    if (s->n < 2)
        return 0;
    kidx *v = malloc(s->n * sizeof *v);
    if (!v)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->n; i++)
        v[i] = (kidx){s->recs[i].key, i};
    qsort(v, s->n, sizeof *v, kidx_cmp);
    int rc = 0;
    for (size_t i = 1; i < s->n && !rc; i++)
        if (!strcmp(v[i].k, v[i - 1].k))
            rc = qe_err_set(e, QE_EINVAL, "%s:%ld: duplicate doc_id %s (first at line %ld)",
                            s->file, s->line[v[i].i], v[i].k, s->line[v[i - 1].i]);
    free(v);
    return rc;
}

static int hashes_unique(const qe_inputs_side *s)
{
    kidx *v = malloc((s->n ? s->n : 1) * sizeof *v);
    if (!v)
        return 0;
    for (size_t i = 0; i < s->n; i++)
        v[i] = (kidx){s->doc_hash[i], i};
    qsort(v, s->n, sizeof *v, kidx_cmp);
    int ok = 1;
    for (size_t i = 1; i < s->n && ok; i++)
        ok = strcmp(v[i].k, v[i - 1].k) != 0;
    free(v);
    return ok;
}

typedef struct {
    const char *hash;
    size_t ord; /* side order: baseline first */
    size_t side, rec;
} hentry;

static int hentry_cmp(const void *a, const void *b)
{
    const hentry *x = a, *y = b;
    int c = strcmp(x->hash, y->hash);
    if (c)
        return c;
    if (x->ord != y->ord)
        return x->ord < y->ord ? -1 : 1;
    return (x->rec > y->rec) - (x->rec < y->rec);
}

typedef struct {
    const char *key;
    size_t first; /* index into entries of its hash run */
} canon;

static int canon_cmp(const void *a, const void *b)
{
    const canon *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->first > y->first) - (x->first < y->first);
}

/* Rewrites every key of the group to the doc id of the first record (baseline
 * first) with the same doc_hash, so pairing is by hash but users see ids. */
static int rekey_by_hash(qe_inputs_group *g, size_t n_models, size_t baseline, qe_err *e)
{
    size_t total = 0;
    for (size_t m = 0; m < n_models; m++)
        total += g->sides[m].n;
    hentry *h = malloc((total ? total : 1) * sizeof *h);
    canon *c = malloc((total ? total : 1) * sizeof *c);
    char **newkey = calloc(total ? total : 1, sizeof *newkey);
    int rc = 0;
    if (!h || !c || !newkey) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t m = 0; m < n_models; m++)
        for (size_t i = 0; i < g->sides[m].n; i++)
            h[k++] = (hentry){g->sides[m].doc_hash[i], m == baseline ? 0 : m + 1, m, i};
    qsort(h, total, sizeof *h, hentry_cmp);
    size_t nc = 0;
    for (size_t i = 0; i < total; i++)
        if (i == 0 || strcmp(h[i].hash, h[i - 1].hash))
            c[nc++] = (canon){g->sides[h[i].side].recs[h[i].rec].key, i};
    qsort(c, nc, sizeof *c, canon_cmp);
    /* canonical key text per hash run, indexed by the run's first entry */
    char **runkey = calloc(total ? total : 1, sizeof *runkey);
    if (!runkey) {
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nc && !rc; i++) {
        qe_buf b = QE_BUF_INIT;
        if (i > 0 && !strcmp(c[i].key, c[i - 1].key))
            qe_buf_printf(&b, "%s#%.8s", c[i].key, h[c[i].first].hash);
        else
            qe_buf_puts(&b, c[i].key);
        runkey[c[i].first] = qe_buf_detach(&b);
        if (!runkey[c[i].first])
            rc = qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    size_t run = 0;
    for (size_t i = 0; i < total && !rc; i++) {
        if (i == 0 || strcmp(h[i].hash, h[i - 1].hash))
            run = i;
        newkey[i] = strdup(runkey[run]);
        if (!newkey[i])
            rc = qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    if (!rc)
        for (size_t i = 0; i < total; i++) {
            qe_compare_record *r = &g->sides[h[i].side].recs[h[i].rec];
            free((char *)r->key);
            r->key = newkey[i];
            newkey[i] = NULL;
        }
    for (size_t i = 0; i < total; i++)
        free(runkey[i]);
    free(runkey);
out:
    if (newkey)
        for (size_t i = 0; i < total; i++)
            free(newkey[i]);
    free(newkey);
    free(h);
    free(c);
    return rc;
}

/* ---- assembling ------------------------------------------------------------ */

static int name_models(qe_inputs *in, const char *const *paths, const loader *L)
{
    for (size_t i = 0; i < in->n_models; i++) {
        qe_inputs_model *m = &in->models[i];
        m->source = strdup(paths[L->model_input[i]]);
        size_t same = 0;
        for (size_t j = 0; j < in->n_models; j++)
            same += !strcmp(in->models[j].raw, m->raw);
        qe_buf b = QE_BUF_INIT;
        if (same > 1) {
            /* by its output directory's name (lm-eval's per-model directory
             * skipped), or the whole directory when that name is shared too */
            size_t bl, ol;
            const char *base = qe_paths_run_name(m->dir, m->raw, &bl);
            int clash = 0;
            for (size_t j = 0; j < in->n_models; j++) {
                if (j == i || strcmp(in->models[j].raw, m->raw))
                    continue;
                const char *ob = qe_paths_run_name(in->models[j].dir, m->raw, &ol);
                clash |= ol == bl && !memcmp(ob, base, bl);
            }
            if (clash)
                qe_buf_printf(&b, "%s@%.*s", m->raw, (int)(base + bl - m->dir), m->dir);
            else
                qe_buf_printf(&b, "%s@%.*s", m->raw, (int)bl, base);
        } else {
            qe_buf_puts(&b, m->raw);
        }
        m->name = qe_buf_detach(&b);
        if (!m->name || !m->source)
            return QE_ENOMEM;
    }
    for (size_t i = 0; i < in->n_models; i++) { /* still equal: number them */
        int k = 1;
        for (size_t j = i + 1; j < in->n_models; j++)
            if (!strcmp(in->models[i].name, in->models[j].name)) {
                qe_buf b = QE_BUF_INIT;
                qe_buf_printf(&b, "%s#%d", in->models[j].name, ++k);
                free(in->models[j].name);
                in->models[j].name = qe_buf_detach(&b);
                if (!in->models[j].name)
                    return QE_ENOMEM;
            }
    }
    return 0;
}

static int find_baseline(qe_inputs *in, const char *want, qe_err *e)
{
    if (!want) {
        in->baseline = 0;
        return 0;
    }
    for (size_t i = 0; i < in->n_models; i++)
        if (!strcmp(in->models[i].name, want)) {
            in->baseline = i;
            return 0;
        }
    /* a name as found, the part after '@' of a shown name, the name of its
     * run directory, or a directory: the input as given, the model's own
     * directory or the output directory naming it */
    size_t hit = SIZE_MAX, n = 0;
    char *real = realpath(want, NULL);
    for (size_t i = 0; i < in->n_models; i++) {
        const qe_inputs_model *m = &in->models[i];
        size_t bl;
        const char *base = qe_paths_run_name(m->dir, m->raw, &bl);
        size_t out_len = (size_t)(base + bl - m->dir);
        int by_dir = real && (same_path(m->dir, real) ||
                              (strlen(real) == out_len && !strncmp(real, m->dir, out_len)));
        const char *at = strrchr(m->name, '@');
        int by_label = at && at != m->name && !strcmp(at + 1, want); /* "bf16" for "x@bf16" */
        /* "fp8" for results/fp8/org__M-FP8: a sweep's per-model directory */
        int by_run = bl == strlen(want) && !strncmp(base, want, bl);
        if (!strcmp(m->raw, want) || by_dir || by_label || by_run || same_path(m->source, want)) {
            hit = i;
            n++;
        }
    }
    free(real);
    if (n == 1) {
        in->baseline = hit;
        return 0;
    }
    qe_buf b = QE_BUF_INIT;
    for (size_t i = 0; i < in->n_models; i++)
        qe_buf_printf(&b, "%s%s", i ? ", " : "", in->models[i].name);
    qe_err_set(e, QE_EINVAL, "--baseline %s: %s; models: %s", want,
               n ? "names more than one model" : "no such model", qe_buf_str(&b));
    qe_buf_free(&b);
    return QE_EINVAL;
}

static int build_groups(qe_inputs *in, loader *L, qe_err *e)
{
    for (size_t i = 0; i < L->nb; i++) {
        bucket *b = &L->b[i];
        size_t g;
        for (g = 0; g < in->n_groups; g++)
            if (!strcmp(in->groups[g].task, b->task) && !strcmp(in->groups[g].filter, b->filter))
                break;
        if (g == in->n_groups) {
            qe_inputs_group *n = realloc(in->groups, (g + 1) * sizeof *n);
            if (!n)
                return qe_err_set(e, QE_ENOMEM, "out of memory");
            in->groups = n;
            memset(&n[g], 0, sizeof n[g]);
            n[g].task = b->task;
            n[g].filter = b->filter;
            b->task = b->filter = NULL;
            n[g].sides = calloc(in->n_models ? in->n_models : 1, sizeof *n[g].sides);
            in->n_groups++;
            if (!n[g].sides)
                return qe_err_set(e, QE_ENOMEM, "out of memory");
        }
        in->groups[g].sides[b->model] = b->side;
        memset(&b->side, 0, sizeof b->side);
    }
    return 0;
}

static int pair_groups(qe_inputs *in, qe_err *e)
{
    for (size_t g = 0; g < in->n_groups; g++) {
        qe_inputs_group *gr = &in->groups[g];
        const char *nohash = NULL, *nohash_model = NULL;
        int dup = 0;
        for (size_t m = 0; m < in->n_models; m++) {
            qe_inputs_side *s = &gr->sides[m];
            int rc = check_duplicates(s, e);
            if (rc)
                return rc;
            for (size_t i = 0; i < s->n && !nohash; i++)
                if (!s->doc_hash[i]) {
                    nohash = s->file;
                    nohash_model = in->models[m].name;
                }
            if (!nohash && s->n && !hashes_unique(s))
                dup = 1;
        }
        if (nohash) {
            if (warn(in, "%s/%s: pairing problems by doc_id: %s has no doc_hash (%s)", gr->task,
                     gr->filter, nohash_model, nohash))
                return qe_err_set(e, QE_ENOMEM, "out of memory");
        } else if (dup) {
            if (warn(in, "%s/%s: pairing problems by doc_id: the same doc_hash occurs twice in one model",
                     gr->task, gr->filter))
                return qe_err_set(e, QE_ENOMEM, "out of memory");
        } else {
            gr->by_hash = 1;
            int rc = rekey_by_hash(gr, in->n_models, in->baseline, e);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int build_cmp(qe_inputs *in, priv *p, qe_err *e)
{
    size_t nm = in->n_models;
    in->cmp = calloc(in->n_groups ? in->n_groups : 1, sizeof *in->cmp);
    in->cmp_group = calloc(in->n_groups ? in->n_groups : 1, sizeof *in->cmp_group);
    p->cmp_models = calloc((in->n_groups ? in->n_groups : 1) * nm, sizeof *p->cmp_models);
    p->cmp_idx = calloc((in->n_groups ? in->n_groups : 1) * (nm + 1), sizeof *p->cmp_idx);
    p->cmp_stride = nm + 1;
    if (!in->cmp || !in->cmp_group || !p->cmp_models || !p->cmp_idx)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    const char *bname = in->models[in->baseline].name;
    for (size_t g = 0; g < in->n_groups; g++) {
        qe_inputs_group *gr = &in->groups[g];
        qe_inputs_side *bs = &gr->sides[in->baseline];
        int rc = 0;
        if (!bs->n) {
            rc = warn(in, "%s/%s: the baseline %s has no records; not compared", gr->task,
                      gr->filter, bname);
            if (rc)
                return qe_err_set(e, rc, "out of memory");
            continue;
        }
        size_t i = in->n_cmp;
        qe_compare_model *ms = &p->cmp_models[i * nm];
        size_t *ix = &p->cmp_idx[i * (nm + 1)];
        size_t k = 0;
        ix[0] = in->baseline;
        for (size_t m = 0; m < nm; m++) {
            if (m == in->baseline)
                continue;
            if (!gr->sides[m].n) {
                rc = warn(in, "%s/%s: no records from %s", gr->task, gr->filter,
                          in->models[m].name);
                if (rc)
                    return qe_err_set(e, rc, "out of memory");
                continue;
            }
            ms[k] = (qe_compare_model){in->models[m].name, gr->sides[m].recs, gr->sides[m].n};
            ix[1 + k] = m;
            k++;
        }
        if (!k)
            continue;
        in->cmp[i] = (qe_compare_input){gr->task, gr->filter,
                                        (qe_compare_model){bname, bs->recs, bs->n}, ms, k};
        in->cmp_group[i] = g;
        in->n_cmp++;
    }
    return 0;
}

size_t qe_inputs_cmp_model(const qe_inputs *in, size_t i, size_t j)
{
    const priv *p = in->priv;
    return p->cmp_idx[i * p->cmp_stride + j];
}

int qe_inputs_load(const char *const *paths, size_t n_paths, const qe_inputs_opts *opts,
                   qe_inputs **out, qe_err *e)
{
    *out = NULL;
    qe_inputs_opts dflt = {0};
    if (!opts)
        opts = &dflt;
    qe_inputs *in = calloc(1, sizeof *in);
    priv *p = calloc(1, sizeof *p);
    loader *L = calloc(1, sizeof *L);
    if (!in || !p || !L) {
        free(in);
        free(p);
        free(L);
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    in->priv = p;
    L->in = in;
    L->p = p;
    int rc = 0;
    size_t total = 0;
    for (size_t i = 0; i < n_paths && !rc; i++) {
        const char *path = paths[i];
        file_list fl = {0};
        rc = collect(in, &fl, path, e);
        for (size_t k = 0; k < fl.n && !rc; k++) {
            if (opts->task && fl.f[k].task && strcmp(fl.f[k].task, opts->task))
                continue;
            rc = read_file(L, i, &fl.f[k], &total, e);
        }
        for (size_t k = 0; k < fl.n; k++) {
            free(fl.f[k].path);
            free(fl.f[k].task);
            free(fl.f[k].date_id);
        }
        free(fl.f);
    }
    if (!rc && opts->task) { /* verdicts carry their task per line */
        size_t w = 0;
        for (size_t i = 0; i < L->nb; i++) {
            if (!strcmp(L->b[i].task, opts->task)) {
                L->b[w++] = L->b[i];
            } else {
                side_free(&L->b[i].side);
                free(L->b[i].task);
                free(L->b[i].filter);
            }
        }
        L->nb = w;
        if (!w) {
            rc = qe_err_set(e, QE_EINVAL, "--task %s: no records for this task in the inputs",
                            opts->task);
            if (opts->arg_refused)
                *opts->arg_refused = 1;
        }
    }
    if (!rc && in->n_models < 2) {
        rc = qe_err_set(e, QE_EINVAL,
                        "need at least two models to compare; found %zu%s%s", in->n_models,
                        in->n_models ? ": " : "", in->n_models ? in->models[0].raw : "");
    }
    if (!rc && name_models(in, paths, L))
        rc = qe_err_set(e, QE_ENOMEM, "out of memory");
    if (!rc && (rc = find_baseline(in, opts->baseline, e)) == QE_EINVAL && opts->arg_refused)
        *opts->arg_refused = 1;
    if (!rc)
        rc = build_groups(in, L, e);
    if (!rc)
        rc = pair_groups(in, e);
    if (!rc)
        rc = build_cmp(in, p, e);
    if (!rc && !in->n_cmp)
        rc = qe_err_set(e, QE_EINVAL, "nothing to compare: no task x filter has records from "
                                      "the baseline %s and another model",
                        in->models[in->baseline].name);
    for (size_t i = 0; i < L->nb; i++) {
        side_free(&L->b[i].side);
        free(L->b[i].task);
        free(L->b[i].filter);
    }
    free(L->b);
    free(L);
    for (size_t i = 0; i < p->n_rc; i++) {
        free(p->rc[i].path);
        qe_lmeval_results_free(p->rc[i].res);
    }
    free(p->rc);
    p->rc = NULL;
    p->n_rc = 0;
    if (rc) {
        qe_inputs_free(in);
        return rc;
    }
    *out = in;
    return 0;
}

void qe_inputs_free(qe_inputs *in)
{
    if (!in)
        return;
    for (size_t g = 0; g < in->n_groups; g++) {
        for (size_t m = 0; m < in->n_models && in->groups[g].sides; m++)
            side_free(&in->groups[g].sides[m]);
        free(in->groups[g].sides);
        free(in->groups[g].task);
        free(in->groups[g].filter);
    }
    free(in->groups);
    for (size_t i = 0; i < in->n_models; i++) {
        free(in->models[i].name);
        free(in->models[i].raw);
        free(in->models[i].source);
        free(in->models[i].dir);
    }
    free(in->models);
    for (size_t i = 0; i < in->n_warnings; i++)
        free(in->warnings[i]);
    free(in->warnings);
    free(in->cmp);
    free(in->cmp_group);
    priv *p = in->priv;
    if (p) {
        for (size_t i = 0; i < p->n_objs; i++)
            json_decref(p->objs[i]);
        free(p->objs);
        for (size_t i = 0; i < p->n_owned; i++)
            free(p->owned[i]);
        free(p->owned);
        free(p->cmp_models);
        free(p->cmp_idx);
        free(p);
    }
    free(in);
}

/* ---- mismatches ------------------------------------------------------------ */

static int prompt_diff(const qe_inputs_side *b, const qe_inputs_side *m, int by_hash, size_t *n_prompt,
                       size_t *n_known, size_t *n_hash, const char **first)
{
    kidx *v = malloc((b->n ? b->n : 1) * sizeof *v);
    if (!v)
        return QE_ENOMEM;
    for (size_t i = 0; i < b->n; i++)
        v[i] = (kidx){b->recs[i].key, i};
    qsort(v, b->n, sizeof *v, kidx_cmp);
    *n_prompt = *n_known = *n_hash = 0;
    *first = NULL;
    for (size_t i = 0; i < m->n; i++) {
        kidx q = {m->recs[i].key, 0};
        size_t lo = 0, hi = b->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (strcmp(v[mid].k, q.k) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == b->n || strcmp(v[lo].k, q.k))
            continue;
        size_t bi = v[lo].i;
        if (b->prompt_hash[bi] && m->prompt_hash[i]) {
            (*n_known)++;
            if (strcmp(b->prompt_hash[bi], m->prompt_hash[i])) {
                if (!*n_prompt)
                    *first = m->recs[i].key;
                (*n_prompt)++;
            }
        }
        if (!by_hash && b->doc_hash[bi] && m->doc_hash[i] && strcmp(b->doc_hash[bi], m->doc_hash[i]))
            (*n_hash)++;
    }
    free(v);
    return 0;
}

int qe_inputs_mismatches(const qe_inputs *in, qe_buf *out, qe_buf *notes, qe_err *e)
{
    int count = 0;
    const char *bname = in->models[in->baseline].name;
    unsigned char *noted = calloc(in->n_models ? in->n_models : 1, 1);
    if (!noted)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    for (size_t i = 0; i < in->n_cmp; i++) {
        const qe_inputs_group *g = &in->groups[in->cmp_group[i]];
        const qe_inputs_side *bs = &g->sides[in->baseline];
        for (size_t j = 0; j < in->cmp[i].n_models; j++) {
            size_t m = qe_inputs_cmp_model(in, i, j + 1);
            const qe_inputs_side *ms = &g->sides[m];
            const char *mname = in->models[m].name;
            if (bs->config && ms->config) {
                qe_buf d = QE_BUF_INIT;
                int n = qe_compare_config_diff(ms->config, bs->config, NULL, &d, e);
                if (n < 0) {
                    qe_buf_free(&d);
                    free(noted);
                    return n;
                }
                const char *s = qe_buf_str(&d);
                while (*s) {
                    size_t l = strcspn(s, "\n");
                    qe_buf_printf(out, "%s/%s %s vs %s: %.*s\n", g->task, g->filter, mname, bname,
                                  (int)l, s);
                    s += l + (s[l] == '\n');
                }
                count += n;
                qe_buf_free(&d);
            } else {
                noted[m] |= !ms->config;
                noted[in->baseline] |= !bs->config;
            }
            size_t np, nk, nh;
            const char *first;
            if (prompt_diff(bs, ms, g->by_hash, &np, &nk, &nh, &first)) {
                free(noted);
                return qe_err_set(e, QE_ENOMEM, "out of memory");
            }
            if (np) {
                qe_buf_printf(out,
                              "%s/%s %s vs %s: prompts differ on %zu of %zu paired problem%s "
                              "(prompt_hash; first: doc %s)\n",
                              g->task, g->filter, mname, bname, np, nk, nk == 1 ? "" : "s",
                              first);
                count++;
            }
            if (nh) {
                qe_buf_printf(out,
                              "%s/%s %s vs %s: %zu paired doc ids hold different problems "
                              "(doc_hash differs)\n",
                              g->task, g->filter, mname, bname, nh);
                count++;
            }
        }
    }
    size_t nn = 0;
    for (size_t m = 0; m < in->n_models; m++)
        if (noted[m] && notes)
            qe_buf_printf(notes, "%s%s", nn++ ? ", " : "note: run config unknown for ",
                          in->models[m].name);
    if (nn)
        qe_buf_puts(notes, " (no results file beside the records): settings not checked for "
                           "mismatches\n");
    free(noted);
    return count;
}
