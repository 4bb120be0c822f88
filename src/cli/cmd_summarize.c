/* qeval summarize: the main metric of every model × task × filter found in
 * lm-eval/qeval results JSONs (directories searched recursively, globs
 * expanded here too, '**' included) and in verdicts / samples JSONL files
 * (aggregated with lm-eval's mean and stderr), as a table, CSV, JSON or
 * Markdown. Decisions (latest file wins, groups, CI clipping) are in
 * docs/lmeval-io.md. */
#include "cli.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "lmeval_io.h"
#include "opt.h"
#include "paths.h"
#include "pyjson.h"
#include "records.h"
#include "stats.h"

#define MAX_SETTINGS 32

enum fmt { FMT_TABLE, FMT_CSV, FMT_JSON, FMT_MD };

typedef struct {
    char *key, *val;
} setting;

typedef struct {
    char *model, *task, *filter, *metric, *file;
    double value;
    int has_stderr;
    double se;
    long n, n_orig;
    int has_limit;
    double limit;
    int is_group;
    double when; /* results "date", else file mtime: newest wins */
    char *dir;      /* the file's directory (resolved): one run's home */
    char *shown_as; /* scratch of label_dirs */
    int latest;
    int from_records;
    char *run_key; /* directory + date id of the run, or NULL */
    size_t n_settings;
    setting settings[MAX_SETTINGS];
} row;

typedef struct {
    qe_paths in;
    row *rows;
    size_t n_rows, cap_rows;
    int errors;
} ctx;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qeval summarize [options] FILE|DIR|GLOB...\n"
            "\n"
            "Prints the main metric of every model x task x filter with its lm-eval\n"
            "stderr and 95%% CI: Wilson's for exact_match and acc (k of n right, as\n"
            "qeval run prints it), else value +- 1.96*stderr clipped to [0,1].\n"
            "\n"
            "Inputs: lm-eval/qeval results JSON (results_<date>.json or <name>_<date>.json),\n"
            "lm-eval samples_<task>_<date>.jsonl and qeval verdicts JSONL files (aggregated\n"
            "here). Directories are searched recursively for results JSONs and\n"
            "*.verdicts.jsonl; globs (quoted, '**' allowed) are expanded by qeval.\n"
            "\n"
            "options:\n"
            "  --format table|csv|json|md   output format (default table)\n"
            "  --all                        keep results superseded by newer files\n"
            "                               (default: newest file per model x task x filter\n"
            "                               in one directory; one model name in two\n"
            "                               directories is two rows, NAME@DIR)\n"
            "  --neumaier                   aggregate JSONL with Python >=3.12 sum()\n"
            "  -h, --help                   this help\n"
            "\n"
            "Exit: 0 ok, 1 some inputs unreadable (listed on stderr), 2 usage, 3 nothing usable.\n");
}

/* What a directory walk collects: results JSONs and verdicts files. */
static int wanted_in_dir(const char *path)
{
    const char *b = qe_paths_base(path);
    if (qe_paths_ends_with(b, ".json"))
        return !strncmp(b, "results_", 8) || qe_lmeval_results_name_date(b) != NULL;
    return qe_paths_ends_with(b, ".verdicts.jsonl");
}

static row *new_row(ctx *c)
{
    if (c->n_rows == c->cap_rows) {
        size_t nc = c->cap_rows ? c->cap_rows * 2 : 16;
        row *nr = realloc(c->rows, nc * sizeof *nr);
        if (!nr)
            return NULL;
        c->rows = nr;
        c->cap_rows = nc;
    }
    row *r = &c->rows[c->n_rows++];
    memset(r, 0, sizeof *r);
    r->n = r->n_orig = -1;
    r->latest = 1;
    return r;
}

static void add_setting(row *r, const char *key, const json_t *v, const char *text)
{
    if (r->n_settings >= MAX_SETTINGS)
        return;
    qe_buf b = QE_BUF_INIT;
    if (text)
        qe_buf_puts(&b, text);
    else if (json_is_string(v))
        qe_buf_puts(&b, json_string_value(v));
    else if (v)
        qe_pyjson_dump(&b, v, QE_PYJSON_COMPACT, 0, NULL);
    else
        return;
    r->settings[r->n_settings].key = strdup(key);
    r->settings[r->n_settings].val = qe_buf_detach(&b);
    r->n_settings++;
}

/* "<dir>|<date id>": a results file and its samples files share it. */
static char *run_key_of(const char *path, const char *date_id)
{
    if (!date_id)
        return NULL;
    const char *slash = strrchr(path, '/');
    qe_buf b = QE_BUF_INIT;
    qe_buf_printf(&b, "%.*s|%s", slash ? (int)(slash - path) : 1, slash ? path : ".", date_id);
    return qe_buf_detach(&b);
}

/* Date id (YYYY-MM-DDTHH-MM-SS[.ffffff]) as seconds, read as UTC. */
static double date_id_seconds(const char *d)
{
    struct tm tm = {0};
    double frac = 0;
    if (sscanf(d, "%4d-%2d-%2dT%2d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    const char *dot = strchr(d, '.');
    if (dot)
        frac = strtod(dot, NULL);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) + frac;
}

static double file_mtime(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_mtime : 0;
}

static int read_results(ctx *c, const char *path)
{
    qe_lmeval_results *res;
    qe_err e = {0};
    if (qe_lmeval_results_read(path, &res, &e)) {
        fprintf(stderr, "qeval: %s\n", e.msg);
        return -1;
    }
    int added = 0;
    for (size_t i = 0; i < res->n_tasks; i++) {
        const qe_lmeval_task *t = &res->tasks[i];
        for (size_t j = 0; j < t->n_metrics; j++) {
            const qe_lmeval_metric *m = &t->metrics[j];
            if (!m->has_value)
                continue; /* groups without an aggregate (null) */
            int seen = 0; /* first metric per filter is the main one */
            for (size_t k = 0; k < j; k++)
                if (t->metrics[k].has_value && !strcmp(t->metrics[k].filter, m->filter))
                    seen = 1;
            if (seen)
                continue;
            row *r = new_row(c);
            if (!r)
                break;
            r->model = strdup(res->model_name ? res->model_name : "?");
            r->task = strdup(t->name);
            r->filter = strdup(m->filter);
            r->metric = strdup(m->metric);
            r->file = strdup(path);
            r->value = m->value;
            r->has_stderr = m->stderr_kind == 1;
            r->se = m->stderr_val;
            r->n = t->n_effective;
            r->n_orig = t->n_original;
            r->has_limit = res->has_limit;
            r->limit = res->limit;
            r->is_group = t->is_group;
            r->when = res->has_date ? res->date : file_mtime(path);
            r->run_key = run_key_of(path, res->date_id);
            if (json_is_object(t->generation_kwargs)) {
                const char *k;
                json_t *v;
                json_object_foreach((json_t *)t->generation_kwargs, k, v)
                    add_setting(r, k, v, NULL);
            }
            if (t->n_shot >= 0) {
                char ns[32];
                snprintf(ns, sizeof ns, "%ld", t->n_shot);
                add_setting(r, "num_fewshot", NULL, ns);
            }
            add_setting(r, "chat_template", NULL, res->has_chat_template ? "yes" : "no");
            json_t *th = qe_lmeval_thinking(res);
            add_setting(r, "thinking", th, th ? NULL : "default");
            json_decref(th);
            add_setting(r, "system_instruction", NULL,
                        res->system_instruction ? res->system_instruction : "-");
            if (res->gen_kwargs && !json_is_null(res->gen_kwargs))
                add_setting(r, "gen_kwargs", res->gen_kwargs, NULL);
            added++;
        }
    }
    qe_lmeval_results_free(res);
    return added;
}

typedef struct {
    char *model, *task, *filter, *metric;
    double *v;
    size_t n, cap;
} group;

static int read_records(ctx *c, const char *path, int neumaier)
{
    qe_records *rs;
    qe_err e = {0};
    if (qe_records_open(path, &rs, &e)) {
        fprintf(stderr, "qeval: %s\n", e.msg);
        return -1;
    }
    group *g = NULL;
    size_t ng = 0;
    qe_record rec;
    int rc, bad = 0;
    while ((rc = qe_records_next(rs, &rec, &e)) != 0) {
        if (rc < 0) {
            fprintf(stderr, "qeval: %s\n", e.msg);
            bad++;
            if (rc != QE_EINVAL && rc != QE_ELIMIT)
                break;
            continue;
        }
        size_t i;
        for (i = 0; i < ng; i++)
            if (!strcmp(g[i].model, rec.model) && !strcmp(g[i].task, rec.task) &&
                !strcmp(g[i].filter, rec.filter) && !strcmp(g[i].metric, rec.metric))
                break;
        if (i == ng) {
            group *ngp = realloc(g, (ng + 1) * sizeof *g);
            if (!ngp)
                break;
            g = ngp;
            memset(&g[ng], 0, sizeof g[ng]);
            g[ng].model = strdup(rec.model);
            g[ng].task = strdup(rec.task);
            g[ng].filter = strdup(rec.filter);
            g[ng].metric = strdup(rec.metric);
            ng++;
        }
        if (g[i].n == g[i].cap) {
            size_t nc = g[i].cap ? g[i].cap * 2 : 64;
            double *nv = realloc(g[i].v, nc * sizeof *nv);
            if (!nv)
                break;
            g[i].v = nv;
            g[i].cap = nc;
        }
        g[i].v[g[i].n++] = rec.value;
    }
    qe_records_close(rs);
    double when = file_mtime(path);
    char *date_id = NULL, *key = NULL;
    if (qe_lmeval_parse_samples_name(path, NULL, &date_id)) {
        when = date_id_seconds(date_id);
        key = run_key_of(path, date_id);
        free(date_id);
    }
    enum qe_lmeval_sum kind = neumaier ? QE_LMEVAL_SUM_NEUMAIER : QE_LMEVAL_SUM_FOLD;
    for (size_t i = 0; i < ng; i++) {
        row *r = new_row(c);
        if (r) {
            r->model = g[i].model;
            r->task = g[i].task;
            r->filter = g[i].filter;
            r->metric = g[i].metric;
            r->file = strdup(path);
            r->value = qe_lmeval_mean(g[i].v, g[i].n, kind);
            r->has_stderr = qe_lmeval_mean_stderr(g[i].v, g[i].n, kind, &r->se) == 0;
            r->n = (long)g[i].n;
            r->when = when;
            r->from_records = 1;
            r->run_key = key ? strdup(key) : NULL;
        } else {
            free(g[i].model);
            free(g[i].task);
            free(g[i].filter);
            free(g[i].metric);
        }
        free(g[i].v);
    }
    free(g);
    free(key);
    if (bad)
        c->errors++;
    return (int)ng;
}

static const char *setting_of(const row *r, const char *key)
{
    for (size_t i = 0; i < r->n_settings; i++)
        if (!strcmp(r->settings[i].key, key))
            return r->settings[i].val;
    return NULL;
}

static const char *dir_or(const row *r)
{
    return r->dir ? r->dir : ""; /* NULL only when out of memory (counted) */
}

/* Files of the same model in different directories are different runs,
 * even under one model name (one served name, several precisions): only
 * files of the same directory (reruns into one output path) supersede each
 * other. */
static int same_group(const row *a, const row *b)
{
    return !strcmp(a->model, b->model) && !strcmp(dir_or(a), dir_or(b)) && !strcmp(a->task, b->task) &&
           !strcmp(a->filter, b->filter);
}

static int row_cmp(const void *pa, const void *pb)
{
    const row *a = pa, *b = pb;
    int d = strcmp(a->model, b->model);
    if (!d)
        d = strcmp(dir_or(a), dir_or(b));
    if (!d)
        d = strcmp(a->task, b->task);
    if (!d)
        d = strcmp(a->filter, b->filter);
    if (!d)
        d = (a->when > b->when) - (a->when < b->when);
    if (!d)
        d = strcmp(a->file, b->file);
    return d;
}

/* Settings keys whose values differ between shown rows of the same task
 * (rows lacking the key, e.g. verdicts files, do not count). */
static size_t differing_keys(const row *rows, size_t n, const char **keys, size_t cap)
{
    size_t nk = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t s = 0; s < rows[i].n_settings; s++) {
            const char *k = rows[i].settings[s].key, *v0 = rows[i].settings[s].val;
            int have = 0;
            for (size_t j = 0; j < nk; j++)
                if (!strcmp(keys[j], k))
                    have = 1;
            if (have || nk >= cap)
                continue;
            for (size_t j = i + 1; j < n && !have; j++) {
                const char *v = setting_of(&rows[j], k);
                if (v && !strcmp(rows[j].task, rows[i].task) && strcmp(v, v0))
                    have = 1;
            }
            if (have)
                keys[nk++] = k;
        }
    return nk;
}

/* k when the value is k right out of n for a metric lm-eval scores 0 or 1
 * per problem (exact_match, acc); -1 otherwise. */
static long long binary_k(const row *r)
{
    if ((strcmp(r->metric, "exact_match") && strcmp(r->metric, "acc")) || r->n <= 0 ||
        !(r->value >= 0 && r->value <= 1))
        return -1;
    double k = r->value * (double)r->n;
    return fabs(k - nearbyint(k)) < 1e-6 ? (long long)nearbyint(k) : -1;
}

/* 95% CI: Wilson's for k of n right (not degenerate at 0 or n: 0 of 20 is
 * [0, 0.161], as qeval run prints it); otherwise value +- 1.96 stderr
 * clipped to [0, 1]. 0 when there is none. */
static int ci_of(const row *r, double *lo, double *hi)
{
    long long k = binary_k(r);
    if (k >= 0)
        return qe_stats_wilson((uint64_t)k, (uint64_t)r->n, 1.959963984540054, lo, hi) == 0;
    if (!r->has_stderr)
        return 0;
    *lo = r->value - 1.96 * r->se;
    *hi = r->value + 1.96 * r->se;
    if (*lo < 0)
        *lo = 0;
    if (*hi > 1)
        *hi = 1;
    return 1;
}

static char *repr(double x)
{
    qe_buf b = QE_BUF_INIT;
    qe_pyjson_float(&b, x);
    return qe_buf_detach(&b);
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Cells of one row as text for table / md / csv. full: repr precision. */
static void row_cells(const row *r, int full, const char **keys, size_t nk, int show_latest,
                      char cells[][256], size_t *nc)
{
    size_t k = 0;
    snprintf(cells[k++], 256, "%s", r->model);
    snprintf(cells[k++], 256, "%s%s", r->task, r->is_group && !full ? " (group)" : "");
    snprintf(cells[k++], 256, "%s", r->filter);
    snprintf(cells[k++], 256, "%s", r->metric);
    double lo = 0, hi = 0;
    int has_ci = ci_of(r, &lo, &hi);
    if (full) {
        char *v = repr(r->value), *s = r->has_stderr ? repr(r->se) : NULL;
        char *l = has_ci ? repr(lo) : NULL, *h = has_ci ? repr(hi) : NULL;
        snprintf(cells[k++], 256, "%s", v);
        snprintf(cells[k++], 256, "%s", s ? s : "");
        snprintf(cells[k++], 256, "%s", l ? l : "");
        snprintf(cells[k++], 256, "%s", h ? h : "");
        free(v), free(s), free(l), free(h);
        snprintf(cells[k++], 256, "%ld", r->n);
        if (r->n_orig >= 0)
            snprintf(cells[k++], 256, "%ld", r->n_orig);
        else
            cells[k++][0] = '\0';
    } else {
        snprintf(cells[k++], 256, "%.4f", r->value);
        if (r->has_stderr)
            snprintf(cells[k++], 256, "%.4f", r->se);
        else
            snprintf(cells[k++], 256, "N/A");
        if (has_ci)
            snprintf(cells[k++], 256, "[%.4f, %.4f]", lo, hi);
        else
            snprintf(cells[k++], 256, "-");
        if (r->n_orig >= 0)
            snprintf(cells[k++], 256, "%ld/%ld", r->n, r->n_orig);
        else
            snprintf(cells[k++], 256, "%ld", r->n);
    }
    if (r->has_limit)
        snprintf(cells[k++], 256, "%g", r->limit);
    else
        snprintf(cells[k++], 256, full ? "" : "-");
    for (size_t i = 0; i < nk; i++) {
        const char *v = setting_of(r, keys[i]);
        snprintf(cells[k++], 256, "%s", v ? v : (full ? "" : "-"));
    }
    if (show_latest)
        snprintf(cells[k++], 256, "%s", r->latest ? "yes" : "no");
    if (full)
        snprintf(cells[k++], 256, "%s", r->file);
    *nc = k;
}

static void header_cells(int full, const char **keys, size_t nk, int show_latest, const char **h,
                         size_t *nh)
{
    size_t k = 0;
    static const char *const brief[] = {"model", "task", "filter", "metric", "value", "stderr", "95% CI", "n"};
    static const char *const wide[] = {"model", "task", "filter", "metric", "value", "stderr", "ci_low", "ci_high", "n", "n_original"};
    if (full)
        for (size_t i = 0; i < 10; i++)
            h[k++] = wide[i];
    else
        for (size_t i = 0; i < 8; i++)
            h[k++] = brief[i];
    h[k++] = "limit";
    for (size_t i = 0; i < nk; i++)
        h[k++] = keys[i];
    if (show_latest)
        h[k++] = "latest";
    if (full)
        h[k++] = "file";
    *nh = k;
}

#define MAXCOLS (16 + MAX_SETTINGS)

static void print_text(const row *rows, size_t n, enum fmt fmt, const char **keys, size_t nk,
                       int show_latest)
{
    int full = fmt == FMT_CSV;
    const char *h[MAXCOLS];
    size_t nh;
    header_cells(full, keys, nk, show_latest, h, &nh);
    char(*cells)[MAXCOLS][256] = calloc(n ? n : 1, sizeof *cells);
    if (!cells)
        return;
    size_t nc = 0;
    for (size_t i = 0; i < n; i++)
        row_cells(&rows[i], full, keys, nk, show_latest, cells[i], &nc);
    if (fmt == FMT_CSV) {
        for (size_t j = 0; j < nh; j++) {
            if (j)
                fputc(',', stdout);
            csv_field(stdout, h[j]);
        }
        fputc('\n', stdout);
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < nh; j++) {
                if (j)
                    fputc(',', stdout);
                csv_field(stdout, cells[i][j]);
            }
            fputc('\n', stdout);
        }
    } else if (fmt == FMT_MD) {
        printf("|");
        for (size_t j = 0; j < nh; j++)
            printf(" %s |", h[j]);
        printf("\n|");
        for (size_t j = 0; j < nh; j++)
            printf(j >= 4 && j <= 7 ? "---:|" : "---|");
        printf("\n");
        for (size_t i = 0; i < n; i++) {
            printf("|");
            for (size_t j = 0; j < nh; j++) {
                fputc(' ', stdout);
                for (const char *p = cells[i][j]; *p; p++) {
                    if (*p == '|')
                        fputs("\\|", stdout);
                    else if (*p == '\n')
                        fputc(' ', stdout);
                    else
                        fputc(*p, stdout);
                }
                printf(" |");
            }
            printf("\n");
        }
    } else {
        size_t w[MAXCOLS];
        for (size_t j = 0; j < nh; j++) {
            w[j] = strlen(h[j]);
            for (size_t i = 0; i < n; i++)
                if (strlen(cells[i][j]) > w[j])
                    w[j] = strlen(cells[i][j]);
        }
        for (size_t j = 0; j < nh; j++)
            printf("%-*s%s", (int)w[j], h[j], j + 1 < nh ? "  " : "\n");
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < nh; j++) {
                int right = j >= 4 && j <= 7;
                printf(right ? "%*s%s" : "%-*s%s", (int)w[j], cells[i][j], j + 1 < nh ? "  " : "\n");
            }
        printf("\nCI: Wilson's for exact_match and acc (k of n right), else value +- 1.96 x "
               "stderr clipped to [0, 1].\n");
    }
    free(cells);
}

static json_t *num_or_null(int has, double v)
{
    return has ? json_real(v) : json_null();
}

static void print_json(const row *rows, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        const row *r = &rows[i];
        double lo = 0, hi = 0;
        int has_ci = ci_of(r, &lo, &hi);
        json_t *o = json_object(), *s = json_object();
        json_object_set_new(o, "model", json_string(r->model));
        json_object_set_new(o, "task", json_string(r->task));
        json_object_set_new(o, "filter", json_string(r->filter));
        json_object_set_new(o, "metric", json_string(r->metric));
        json_object_set_new(o, "value", json_real(r->value));
        json_object_set_new(o, "stderr", num_or_null(r->has_stderr, r->se));
        json_object_set_new(o, "ci_low", num_or_null(has_ci, lo));
        json_object_set_new(o, "ci_high", num_or_null(has_ci, hi));
        json_object_set_new(o, "n", json_integer(r->n));
        json_object_set_new(o, "n_original", r->n_orig >= 0 ? json_integer(r->n_orig) : json_null());
        json_object_set_new(o, "limit", num_or_null(r->has_limit, r->limit));
        json_object_set_new(o, "group", json_boolean(r->is_group));
        json_object_set_new(o, "latest", json_boolean(r->latest));
        json_object_set_new(o, "file", json_string(r->file));
        for (size_t k = 0; k < r->n_settings; k++)
            json_object_set_new(s, r->settings[k].key, json_string(r->settings[k].val));
        json_object_set_new(o, "settings", s);
        json_array_append_new(a, o);
    }
    qe_buf b = QE_BUF_INIT;
    if (qe_pyjson_dump(&b, a, 2, 0, NULL) == 0)
        printf("%s\n", qe_buf_str(&b));
    qe_buf_free(&b);
    json_decref(a);
}

static void free_row(row *r)
{
    free(r->model), free(r->task), free(r->filter), free(r->metric), free(r->file);
    free(r->run_key);
    free(r->dir);
    for (size_t i = 0; i < r->n_settings; i++)
        free(r->settings[i].key), free(r->settings[i].val);
}

enum { O_FORMAT, O_ALL, O_NEUMAIER };

static const qe_opt_spec options[] = {
    {"format", O_FORMAT, QE_OPT_VALUE},
    {"all", O_ALL, QE_OPT_FLAG},
    {"neumaier", O_NEUMAIER, QE_OPT_FLAG},
};
static const qe_opt_cmd cli = {"summarize", options, sizeof options / sizeof *options, QE_OPT_COLLECT, usage, 1};

/* A model name found in several directories becomes "name@dir" on each
 * row (qe_paths_run_name, or the whole directory when two share that
 * name), as qeval compare names its models. */
static int label_dirs(ctx *c)
{
    int rc = 0;
    for (size_t i = 0; i < c->n_rows; i++) {
        row *r = &c->rows[i];
        int several = 0, clash = 0;
        size_t bl;
        const char *b = qe_paths_run_name(dir_or(r), r->model, &bl);
        for (size_t j = 0; j < c->n_rows; j++) {
            const row *o = &c->rows[j];
            if (!strcmp(dir_or(o), dir_or(r)) || strcmp(o->model, r->model))
                continue;
            several = 1;
            size_t ol;
            const char *ob = qe_paths_run_name(dir_or(o), o->model, &ol);
            clash |= ol == bl && !memcmp(ob, b, bl);
        }
        if (!several)
            continue;
        qe_buf lb = QE_BUF_INIT;
        if (clash ? qe_buf_printf(&lb, "%s@%.*s", r->model, (int)(b + bl - dir_or(r)), dir_or(r))
                  : qe_buf_printf(&lb, "%s@%.*s", r->model, (int)bl, b))
            rc = -1;
        r->shown_as = qe_buf_detach(&lb);
    }
    for (size_t i = 0; i < c->n_rows; i++) {
        row *r = &c->rows[i];
        if (r->shown_as) {
            free(r->model);
            r->model = r->shown_as;
            r->shown_as = NULL;
        }
    }
    return rc;
}

int cmd_summarize(int argc, char **argv)
{
    int fmt = FMT_TABLE, all = 0, neumaier = 0;
    ctx c = {0};
    qe_opt p;
    if (qe_opt_init(&p, &cli, argc, argv, 1))
        return QE_EXIT_IO;
    for (int id; (id = qe_opt_next(&p)) != QE_OPT_END;) {
        const char *v = p.val;
        if (id == O_FORMAT) {
            static const char *const names[] = {"table", "csv", "json", "md", "markdown", NULL};
            static const int values[] = {FMT_TABLE, FMT_CSV, FMT_JSON, FMT_MD, FMT_MD};
            if (qe_opt_pick(v, names, values, &fmt)) {
                fprintf(stderr, "qeval summarize: --format wants table, csv, json or md\n");
                qe_opt_fail(&p);
            }
        } else if (id == O_ALL) {
            all = 1;
        } else if (id == O_NEUMAIER) {
            neumaier = 1;
        }
    }
    if (p.exit >= 0) {
        qe_opt_free(&p);
        return p.exit;
    }
    c.errors += (int)qe_opt_add_paths(&p, &c.in, wanted_in_dir);
    qe_opt_free(&p);

    for (size_t i = 0; i < c.in.n_files; i++) {
        const char *f = c.in.files[i];
        size_t first = c.n_rows;
        int got = qe_paths_ends_with(f, ".jsonl") ? read_records(&c, f, neumaier) : read_results(&c, f);
        if (got < 0)
            c.errors++;
        for (size_t k = first; k < c.n_rows; k++)
            if (!(c.rows[k].dir = qe_paths_run_dir(f)))
                c.errors++;
    }

    /* A samples file given next to its own results file repeats it: keep
     * the results row (it knows n original, limit and settings). */
    size_t dups = 0;
    for (size_t i = 0; i < c.n_rows; i++) {
        row *r = &c.rows[i];
        if (!r->from_records || !r->run_key)
            continue;
        for (size_t j = 0; j < c.n_rows; j++) {
            const row *o = &c.rows[j];
            if (!o->from_records && o->run_key && !strcmp(o->run_key, r->run_key) &&
                !strcmp(o->model, r->model) && !strcmp(o->task, r->task) &&
                !strcmp(o->filter, r->filter)) {
                free_row(r);
                *r = c.rows[--c.n_rows];
                i--;
                dups++;
                break;
            }
        }
    }
    (void)dups;
    if (label_dirs(&c)) {
        fprintf(stderr, "qeval: out of memory\n");
        c.errors++;
    }
    if (c.n_rows)
        qsort(c.rows, c.n_rows, sizeof *c.rows, row_cmp);
    /* Newest (last after sorting) per model x task x filter is "latest". */
    size_t superseded = 0;
    for (size_t i = 0; i + 1 < c.n_rows; i++)
        if (same_group(&c.rows[i], &c.rows[i + 1])) {
            c.rows[i].latest = 0;
            superseded++;
        }
    row *shown = malloc((c.n_rows ? c.n_rows : 1) * sizeof *shown);
    size_t ns = 0;
    for (size_t i = 0; shown && i < c.n_rows; i++)
        if (all || c.rows[i].latest)
            shown[ns++] = c.rows[i];

    int rc;
    if (ns == 0) {
        fprintf(stderr, "qeval: nothing usable: no results found in the inputs\n");
        rc = QE_EXIT_INPUT;
    } else {
        if (fmt == FMT_JSON) {
            print_json(shown, ns);
        } else {
            const char *keys[MAX_SETTINGS];
            size_t nk = differing_keys(shown, ns, keys, MAX_SETTINGS);
            print_text(shown, ns, fmt, keys, nk, all && superseded);
        }
        if (superseded && !all)
            fprintf(stderr, "qeval: note: %zu older result(s) superseded by newer files (--all shows them)\n",
                    superseded);
        rc = c.errors ? QE_EXIT_PARTIAL : QE_EXIT_OK;
    }
    fflush(stdout);
    if (ferror(stdout))
        rc = QE_EXIT_IO;
    free(shown);
    for (size_t i = 0; i < c.n_rows; i++)
        free_row(&c.rows[i]);
    free(c.rows);
    qe_paths_free(&c.in);
    return rc;
}
