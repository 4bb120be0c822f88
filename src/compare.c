/* compare: see compare.h. Pairing is by key with sorted index arrays
 * (O(n log n)); every number is computed over the paired problems only, so
 * the baseline's accuracy in a row is over the same problems as the
 * model's. */
#include "compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

#define Z95 1.959963984540054

void qe_compare_record_init(qe_compare_record *r)
{
    memset(r, 0, sizeof *r);
    r->repeats = 1;
    r->maj_correct = -1;
    r->completion_tokens = -1;
    r->word_count = -1;
}

static const char *opt_str(const json_t *o, const char *k, int *bad)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        *bad = 1;
        return NULL;
    }
    return json_string_value(v);
}

static int opt_long(const json_t *o, const char *k, long *out)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (long)json_integer_value(v);
    return 0;
}

int qe_compare_record_from_json(const json_t *line, int use_hash, qe_compare_record *r,
                                char *keybuf, size_t keycap, qe_err *err)
{
    qe_compare_record_init(r);
    if (!json_is_object(line))
        return qe_err_set(err, QE_EINVAL, "verdict line is not a JSON object");
    json_t *id = json_object_get(line, use_hash ? "doc_hash" : "doc_id");
    if (json_is_string(id)) {
        r->key = json_string_value(id);
    } else if (!use_hash && json_is_integer(id)) {
        if (!keybuf || keycap < 24)
            return qe_err_set(err, QE_EINVAL, "verdict: key buffer too small");
        snprintf(keybuf, keycap, "%lld", (long long)json_integer_value(id));
        r->key = keybuf;
    } else {
        return qe_err_set(err, QE_EINVAL, "field %s: missing or not %s",
                          use_hash ? "doc_hash" : "doc_id",
                          use_hash ? "a string" : "an integer or string");
    }
    json_t *c = json_object_get(line, "correct");
    if (json_is_boolean(c))
        r->correct = json_is_true(c);
    else if (json_is_number(c) && json_number_value(c) >= 0.0 && json_number_value(c) <= 1.0)
        r->correct = json_number_value(c);
    else
        return qe_err_set(err, QE_EINVAL, "field correct: missing or not a bool/0..1");
    int bad = 0;
    r->response = opt_str(line, "response", &bad);
    r->gold = opt_str(line, "gold", &bad);
    r->extracted = opt_str(line, "extracted", &bad);
    r->finish_reason = opt_str(line, "finish_reason", &bad);
    if (bad)
        return qe_err_set(err, QE_EINVAL,
                          "fields response/gold/extracted/finish_reason must be strings");
    if (opt_long(line, "completion_tokens", &r->completion_tokens) < 0)
        return qe_err_set(err, QE_EINVAL, "field completion_tokens: not a non-negative integer");
    if (opt_long(line, "word_count", &r->word_count) < 0)
        return qe_err_set(err, QE_EINVAL, "field word_count: not a non-negative integer");
    long k = 1;
    if (opt_long(line, "repeats", &k) < 0 || k < 1 || k > 1000000)
        return qe_err_set(err, QE_EINVAL, "field repeats: not an integer in 1..1e6");
    r->repeats = (int)k;
    json_t *mj = json_object_get(line, "maj_correct");
    if (json_is_boolean(mj))
        r->maj_correct = json_is_true(mj);
    else if (json_is_integer(mj) && (json_integer_value(mj) == 0 || json_integer_value(mj) == 1))
        r->maj_correct = (int)json_integer_value(mj);
    else if (mj && !json_is_null(mj))
        return qe_err_set(err, QE_EINVAL, "field maj_correct: not a bool or 0/1");
    return 0;
}

/* ---- pairing ---------------------------------------------------------- */

typedef struct {
    const qe_compare_record *recs;
    size_t *order; /* record indices sorted by key */
    size_t n;
} sorted_model;


static int cmp_idx_key(const void *a, const void *b, void *ctx)
{
    const qe_compare_record *r = ctx;
    return strcmp(r[*(const size_t *)a].key, r[*(const size_t *)b].key);
}

static int sort_model(const qe_compare_model *m, const char *task, sorted_model *s, qe_err *err)
{
    s->recs = m->recs;
    s->n = m->n;
    s->order = malloc((m->n ? m->n : 1) * sizeof *s->order);
    if (!s->order)
        return qe_err_set(err, QE_ENOMEM, "compare: out of memory");
    for (size_t i = 0; i < m->n; i++) {
        if (!m->recs[i].key) {
            free(s->order);
            s->order = NULL;
            return qe_err_set(err, QE_EINVAL, "compare: task %s, model %s: record %zu has no key",
                              task, m->name ? m->name : "?", i);
        }
        s->order[i] = i;
    }
    qsort_r(s->order, m->n, sizeof *s->order, cmp_idx_key, (void *)m->recs);
    for (size_t i = 1; i < m->n; i++) {
        const char *k = m->recs[s->order[i]].key;
        if (strcmp(m->recs[s->order[i - 1]].key, k) == 0) {
            free(s->order);
            s->order = NULL;
            return qe_err_set(err, QE_EINVAL, "compare: task %s, model %s: duplicate key '%.80s'",
                              task, m->name ? m->name : "?", k);
        }
    }
    return 0;
}

static size_t find_key(const sorted_model *s, const char *key)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->recs[s->order[mid]].key, key);
        if (c == 0)
            return s->order[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

/* ---- per-record diagnostics ------------------------------------------ */

static int is_truncated(const qe_compare_record *r)
{
    if (r->finish_reason && strcmp(r->finish_reason, "length") == 0)
        return 1;
    if (r->response) {
        /* a <think> opened after the last </think> was never closed */
        const char *open = NULL, *close = NULL, *p = r->response;
        while ((p = strstr(p, "<think>")) != NULL)
            open = p++;
        p = r->response;
        while ((p = strstr(p, "</think>")) != NULL)
            close = p++;
        if (open && (!close || close < open))
            return 1;
    }
    return 0;
}

static int is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return 0;
    return 1;
}

static int binary_verdict(const qe_compare_record *r)
{
    if (r->repeats > 1 && r->maj_correct >= 0)
        return r->maj_correct;
    return r->correct >= 0.5;
}

typedef struct {
    size_t n, n_trunc_known, n_trunc, n_empty_known, n_empty, n_resp, n_tok, n_words, n_maj;
    double sum_correct, sum_chars, sum_tok, sum_words, sum_pass, sum_maj, n_agree;
    int k; /* common repeats, 0 = mixed, -1 = none seen yet */
} side_acc;

static void side_add(side_acc *a, const qe_compare_record *r)
{
    a->n++;
    a->sum_correct += r->correct;
    if (r->finish_reason || r->response) {
        a->n_trunc_known++;
        a->n_trunc += (size_t)is_truncated(r);
    }
    if (r->response || r->extracted) {
        a->n_empty_known++;
        a->n_empty += (size_t)((r->response && is_blank(r->response)) ||
                               (r->extracted && r->extracted[0] == '\0'));
    }
    if (r->response) {
        a->n_resp++;
        a->sum_chars += (double)strlen(r->response);
    }
    if (r->completion_tokens >= 0) {
        a->n_tok++;
        a->sum_tok += (double)r->completion_tokens;
    }
    if (r->word_count >= 0) {
        a->n_words++;
        a->sum_words += (double)r->word_count;
    }
    int k = r->repeats > 1 ? r->repeats : 1;
    if (a->k == -1)
        a->k = k;
    else if (a->k != k)
        a->k = 0;
    if (k > 1) {
        uint64_t c = (uint64_t)llround(r->correct * k);
        a->sum_pass += qe_stats_pass_at_k((uint64_t)k, c, (uint64_t)k);
        a->n_agree += (c == 0 || c == (uint64_t)k);
        if (r->maj_correct >= 0) {
            a->n_maj++;
            a->sum_maj += r->maj_correct;
        }
    }
}

static double ratio(double num, size_t den)
{
    return den ? num / (double)den : NAN;
}

static void side_finish(const side_acc *a, qe_compare_side *s)
{
    s->accuracy = ratio(a->sum_correct, a->n);
    s->truncation_rate = ratio((double)a->n_trunc, a->n_trunc_known);
    s->empty_rate = ratio((double)a->n_empty, a->n_empty_known);
    s->mean_response_chars = ratio(a->sum_chars, a->n_resp);
    s->mean_completion_tokens = ratio(a->sum_tok, a->n_tok);
    s->mean_word_count = ratio(a->sum_words, a->n_words);
    s->k = a->k > 1 ? a->k : 0;
    if (s->k) {
        s->avg_at_k = s->accuracy;
        s->pass_at_k = ratio(a->sum_pass, a->n);
        s->maj_at_k = a->n_maj == a->n ? ratio(a->sum_maj, a->n) : NAN;
        s->agreement = ratio(a->n_agree, a->n);
    } else {
        s->avg_at_k = s->pass_at_k = s->maj_at_k = s->agreement = NAN;
    }
}

/* ---- verdict sentence ------------------------------------------------- */

static void format_p(char *out, size_t cap, double p)
{
    if (p < 0.001)
        snprintf(out, cap, "p < 0.001");
    else if (p < 0.01)
        snprintf(out, cap, "p = %.3f", p);
    else
        snprintf(out, cap, "p = %.2f", p);
}

static char *make_verdict(const qe_compare_row *r)
{
    qe_buf b = QE_BUF_INIT;
    char p[32];
    format_p(p, sizeof p, r->mcnemar_p);
    double pts = 100.0 * r->delta;
    if (r->gained_n + r->lost_n == 0) {
        qe_buf_printf(&b, "%+.1f points: identical verdicts on all %zu paired problem%s", pts,
                      r->n_paired, r->n_paired == 1 ? "" : "s");
    } else if (r->mcnemar_p < 0.05) {
        qe_buf_printf(&b, "%+.1f points, %s: a real %s", pts, p, r->delta < 0 ? "loss" : "gain");
        if (r->delta == 0.0)
            qe_buf_printf(&b, " (discordant pairs disagree, accuracy does not move)");
    } else {
        qe_buf_printf(&b, "%+.1f points, %s: not distinguishable from noise; ", pts, p);
        if (isnan(r->mdd))
            qe_buf_printf(&b, "%zu problem%s cannot estimate the detectable difference",
                          r->n_paired, r->n_paired == 1 ? "" : "s");
        else
            qe_buf_printf(&b, "%zu problem%s can only detect >= %.1f points", r->n_paired,
                          r->n_paired == 1 ? "" : "s", 100.0 * r->mdd);
    }
    return qe_buf_detach(&b);
}

/* ---- the engine ------------------------------------------------------- */

static char *dup_or(const char *s, const char *dflt)
{
    return strdup(s ? s : dflt);
}

static void free_keys(char **v, uint64_t n)
{
    if (!v)
        return;
    for (uint64_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void row_free(qe_compare_row *r)
{
    free(r->task);
    free(r->filter);
    free(r->model);
    free(r->baseline);
    free_keys(r->gained, r->gained_n);
    free_keys(r->lost, r->lost_n);
    free(r->verdict);
}

static int compute_row(const qe_compare_input *in, size_t j, const sorted_model *bs,
                       const sorted_model *ms, const qe_compare_opts *o, qe_compare_row *row,
                       qe_err *err)
{
    const qe_compare_model *m = &in->models[j];
    const char *task = in->task ? in->task : "?";
    memset(row, 0, sizeof *row);
    row->task = dup_or(in->task, "?");
    row->filter = dup_or(in->filter, "none");
    row->model = dup_or(m->name, "?");
    row->baseline = dup_or(in->baseline.name, "?");
    if (!row->task || !row->filter || !row->model || !row->baseline)
        return qe_err_set(err, QE_ENOMEM, "compare: out of memory");
    side_acc am = {0}, ab = {0};
    am.k = ab.k = -1;
    size_t n = 0;
    double *xs = malloc((in->baseline.n ? in->baseline.n : 1) * sizeof *xs);
    double *ys = malloc((in->baseline.n ? in->baseline.n : 1) * sizeof *ys);
    row->gained = calloc(in->baseline.n ? in->baseline.n : 1, sizeof *row->gained);
    row->lost = calloc(in->baseline.n ? in->baseline.n : 1, sizeof *row->lost);
    int rc = 0;
    if (!xs || !ys || !row->gained || !row->lost) {
        rc = qe_err_set(err, QE_ENOMEM, "compare: out of memory");
        goto out;
    }
    for (size_t i = 0; i < in->baseline.n; i++) {
        const qe_compare_record *rb = &in->baseline.recs[i];
        size_t mi = find_key(ms, rb->key);
        if (mi == SIZE_MAX)
            continue;
        const qe_compare_record *rm = &m->recs[mi];
        xs[n] = rm->correct;
        ys[n] = rb->correct;
        n++;
        side_add(&am, rm);
        side_add(&ab, rb);
        int vm = binary_verdict(rm), vb = binary_verdict(rb);
        if (vm && vb)
            row->both++;
        else if (!vm && !vb)
            row->neither++;
        else {
            char *k = strdup(rb->key);
            if (!k) {
                rc = qe_err_set(err, QE_ENOMEM, "compare: out of memory");
                goto out;
            }
            if (vm)
                row->gained[row->gained_n++] = k;
            else
                row->lost[row->lost_n++] = k;
        }
    }
    row->n_paired = n;
    row->unpaired_baseline = in->baseline.n - n;
    row->unpaired_model = m->n - n;
    (void)bs;
    if (n == 0) {
        rc = qe_err_set(err, QE_EINVAL,
                        "compare: task %s: model %s and baseline %s share no problem keys", task,
                        row->model, row->baseline);
        goto out;
    }
    side_finish(&am, &row->m);
    side_finish(&ab, &row->b);
    row->delta = row->m.accuracy - row->b.accuracy;
    qe_stats_paired t = {row->both, row->gained_n, row->lost_n, row->neither};
    qe_stats_wald_paired(&t, Z95, &row->wald_low, &row->wald_high);
    row->mcnemar_p = qe_stats_mcnemar_exact(row->gained_n, row->lost_n);
    if (row->m.k || row->b.k || am.k == 0 || ab.k == 0) {
        row->ci_method = "bootstrap";
        rc = qe_stats_bootstrap_paired(xs, ys, n, o->bootstrap_iters, o->bootstrap_seed, 0.95,
                                       &row->ci_low, &row->ci_high, err);
        if (rc < 0)
            goto out;
    } else {
        row->ci_method = "newcombe";
        qe_stats_newcombe_paired(&t, Z95, &row->ci_low, &row->ci_high);
    }
    row->psi = (double)(row->gained_n + row->lost_n) / (double)n;
    row->mdd = qe_stats_paired_mdd((double)n, row->psi, 0.05, 0.80);
    row->n_for_1pt = ceil(qe_stats_paired_n_needed(0.01, row->psi, 0.05, 0.80));
    row->n_for_2pt = ceil(qe_stats_paired_n_needed(0.02, row->psi, 0.05, 0.80));
    row->verdict = make_verdict(row);
    if (!row->verdict)
        rc = qe_err_set(err, QE_ENOMEM, "compare: out of memory");
out:
    free(xs);
    free(ys);
    return rc;
}

static void group_free(qe_compare_group *g)
{
    if (!g->in)
        return;
    if (g->rows)
        for (size_t j = 0; j < g->in->n_models; j++)
            row_free(&g->rows[j]);
    free(g->rows);
    if (g->idx)
        for (size_t j = 0; j <= g->in->n_models; j++)
            free(g->idx[j]);
    free(g->idx);
    free(g->keys);
}

static int build_group(const qe_compare_input *in, const qe_compare_opts *o, qe_compare_group *g,
                       qe_err *err)
{
    g->in = in;
    size_t nm = in->n_models, total = in->baseline.n;
    const char *task = in->task ? in->task : "?";
    if (nm == 0)
        return qe_err_set(err, QE_EINVAL, "compare: task %s: no model to compare", task);
    for (size_t j = 0; j < nm; j++)
        total += in->models[j].n;
    sorted_model *s = calloc(nm + 1, sizeof *s);
    g->rows = calloc(nm, sizeof *g->rows);
    g->idx = calloc(nm + 1, sizeof *g->idx);
    g->keys = malloc((total ? total : 1) * sizeof *g->keys);
    int rc = 0;
    if (!s || !g->rows || !g->idx || !g->keys) {
        rc = qe_err_set(err, QE_ENOMEM, "compare: out of memory");
        goto out;
    }
    for (size_t j = 0; j <= nm; j++) {
        rc = sort_model(j == 0 ? &in->baseline : &in->models[j - 1], task, &s[j], err);
        if (rc < 0)
            goto out;
    }
    /* union of keys: baseline order, then keys only in later models */
    for (size_t j = 0; j <= nm; j++) {
        const qe_compare_model *m = j == 0 ? &in->baseline : &in->models[j - 1];
        for (size_t i = 0; i < m->n; i++) {
            int seen = 0;
            for (size_t q = 0; q < j && !seen; q++)
                seen = find_key(&s[q], m->recs[i].key) != SIZE_MAX;
            if (!seen)
                g->keys[g->n_keys++] = m->recs[i].key;
        }
    }
    for (size_t j = 0; j <= nm; j++) {
        g->idx[j] = malloc((g->n_keys ? g->n_keys : 1) * sizeof *g->idx[j]);
        if (!g->idx[j]) {
            rc = qe_err_set(err, QE_ENOMEM, "compare: out of memory");
            goto out;
        }
        for (size_t i = 0; i < g->n_keys; i++)
            g->idx[j][i] = find_key(&s[j], g->keys[i]);
    }
    for (size_t j = 0; j < nm; j++) {
        rc = compute_row(in, j, &s[0], &s[j + 1], o, &g->rows[j], err);
        if (rc < 0)
            goto out;
    }
out:
    if (s)
        for (size_t j = 0; j <= nm; j++)
            free(s[j].order);
    free(s);
    return rc;
}

int qe_compare_run(const qe_compare_input *in, size_t n_in, const qe_compare_opts *opts,
                   qe_compare_result **out, qe_err *err)
{
    qe_compare_opts o = {20240901u, 2000};
    if (opts) {
        o = *opts;
        if (o.bootstrap_iters == 0)
            o.bootstrap_iters = 2000;
    }
    *out = NULL;
    qe_compare_result *r = calloc(1, sizeof *r);
    if (!r || !(r->groups = calloc(n_in ? n_in : 1, sizeof *r->groups))) {
        free(r);
        return qe_err_set(err, QE_ENOMEM, "compare: out of memory");
    }
    r->n_groups = n_in;
    for (size_t i = 0; i < n_in; i++) {
        int rc = build_group(&in[i], &o, &r->groups[i], err);
        if (rc < 0) {
            qe_compare_result_free(r);
            return rc;
        }
    }
    *out = r;
    return 0;
}

void qe_compare_result_free(qe_compare_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_groups; i++)
        group_free(&r->groups[i]);
    free(r->groups);
    free(r);
}

/* ---- writers ---------------------------------------------------------- */

int qe_compare_format_parse(const char *name)
{
    if (!name || strcmp(name, "table") == 0)
        return QE_COMPARE_TABLE;
    if (strcmp(name, "json") == 0)
        return QE_COMPARE_JSON;
    if (strcmp(name, "md") == 0 || strcmp(name, "markdown") == 0)
        return QE_COMPARE_MD;
    if (strcmp(name, "csv") == 0)
        return QE_COMPARE_CSV;
    return -1;
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *keys_json(char **v, uint64_t n)
{
    json_t *a = json_array();
    for (uint64_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *qe_compare_to_json(const qe_compare_result *r)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (size_t g = 0; g < r->n_groups; g++) {
        const qe_compare_group *gr = &r->groups[g];
        for (size_t j = 0; j < gr->in->n_models; j++) {
            const qe_compare_row *w = &gr->rows[j];
            json_t *o = json_object();
            if (!o) {
                json_decref(arr);
                return NULL;
            }
            json_object_set_new(o, "task", json_string(w->task));
            json_object_set_new(o, "filter", json_string(w->filter));
            json_object_set_new(o, "model", json_string(w->model));
            json_object_set_new(o, "baseline", json_string(w->baseline));
            json_object_set_new(o, "n_paired", json_integer((json_int_t)w->n_paired));
            json_object_set_new(o, "unpaired_model", json_integer((json_int_t)w->unpaired_model));
            json_object_set_new(o, "unpaired_baseline",
                                json_integer((json_int_t)w->unpaired_baseline));
            json_object_set_new(o, "accuracy", num_or_null(w->m.accuracy));
            json_object_set_new(o, "baseline_accuracy", num_or_null(w->b.accuracy));
            json_object_set_new(o, "delta", num_or_null(w->delta));
            json_object_set_new(o, "ci_low", num_or_null(w->ci_low));
            json_object_set_new(o, "ci_high", num_or_null(w->ci_high));
            json_object_set_new(o, "ci_method", json_string(w->ci_method));
            json_object_set_new(o, "wald_low", num_or_null(w->wald_low));
            json_object_set_new(o, "wald_high", num_or_null(w->wald_high));
            json_object_set_new(o, "mcnemar_p", num_or_null(w->mcnemar_p));
            json_object_set_new(o, "gained", keys_json(w->gained, w->gained_n));
            json_object_set_new(o, "lost", keys_json(w->lost, w->lost_n));
            json_object_set_new(o, "both_correct", json_integer((json_int_t)w->both));
            json_object_set_new(o, "both_wrong", json_integer((json_int_t)w->neither));
            json_object_set_new(o, "truncation_rate", num_or_null(w->m.truncation_rate));
            json_object_set_new(o, "baseline_truncation_rate", num_or_null(w->b.truncation_rate));
            json_object_set_new(o, "empty_rate", num_or_null(w->m.empty_rate));
            json_object_set_new(o, "baseline_empty_rate", num_or_null(w->b.empty_rate));
            json_object_set_new(o, "mean_response_chars", num_or_null(w->m.mean_response_chars));
            json_object_set_new(o, "baseline_mean_response_chars",
                                num_or_null(w->b.mean_response_chars));
            json_object_set_new(o, "mean_completion_tokens",
                                num_or_null(w->m.mean_completion_tokens));
            json_object_set_new(o, "baseline_mean_completion_tokens",
                                num_or_null(w->b.mean_completion_tokens));
            json_object_set_new(o, "mean_word_count", num_or_null(w->m.mean_word_count));
            json_object_set_new(o, "baseline_mean_word_count", num_or_null(w->b.mean_word_count));
            json_object_set_new(o, "min_detectable_delta", num_or_null(w->mdd));
            json_object_set_new(o, "n_for_1pt", num_or_null(w->n_for_1pt));
            json_object_set_new(o, "n_for_2pt", num_or_null(w->n_for_2pt));
            if (w->m.k || w->b.k) {
                json_object_set_new(o, "k", json_integer(w->m.k));
                json_object_set_new(o, "avg_at_k", num_or_null(w->m.avg_at_k));
                json_object_set_new(o, "pass_at_k", num_or_null(w->m.pass_at_k));
                json_object_set_new(o, "maj_at_k", num_or_null(w->m.maj_at_k));
                json_object_set_new(o, "agreement", num_or_null(w->m.agreement));
                json_object_set_new(o, "baseline_k", json_integer(w->b.k));
                json_object_set_new(o, "baseline_avg_at_k", num_or_null(w->b.avg_at_k));
                json_object_set_new(o, "baseline_pass_at_k", num_or_null(w->b.pass_at_k));
                json_object_set_new(o, "baseline_maj_at_k", num_or_null(w->b.maj_at_k));
                json_object_set_new(o, "baseline_agreement", num_or_null(w->b.agreement));
            }
            json_object_set_new(o, "verdict", json_string(w->verdict));
            json_array_append_new(arr, o);
        }
    }
    return arr;
}

static void pct(char *out, size_t cap, double v)
{
    if (isfinite(v))
        snprintf(out, cap, "%.1f", 100.0 * v);
    else
        snprintf(out, cap, "-");
}

void qe_compare_format_p_cell(char *out, size_t cap, double p)
{
    if (!isfinite(p))
        snprintf(out, cap, "-");
    else if (p < 1e-4)
        snprintf(out, cap, "%.1e", p);
    else
        snprintf(out, cap, "%.4f", p);
}

/* The columns shared by table, Markdown and CSV, as strings. */
enum { NCOL = 14 };
static const char *const COLS[NCOL] = {"task",   "filter",   "model", "baseline", "n",
                                       "acc%",   "base%",    "delta", "ci95",     "mcnemar_p",
                                       "gained", "lost",     "trunc%", "mdd"};

static void row_cells(const qe_compare_row *w, char cells[NCOL][96], int csv)
{
    char a[32], b[32];
    snprintf(cells[0], 96, "%s", w->task);
    snprintf(cells[1], 96, "%s", w->filter);
    snprintf(cells[2], 96, "%s", w->model);
    snprintf(cells[3], 96, "%s", w->baseline);
    snprintf(cells[4], 96, "%zu", w->n_paired);
    pct(cells[5], 96, w->m.accuracy);
    pct(cells[6], 96, w->b.accuracy);
    snprintf(cells[7], 96, "%+.1f", 100.0 * w->delta);
    snprintf(a, sizeof a, "%+.1f", 100.0 * w->ci_low);
    snprintf(b, sizeof b, "%+.1f", 100.0 * w->ci_high);
    snprintf(cells[8], 96, csv ? "%s;%s" : "[%s, %s]", a, b);
    qe_compare_format_p_cell(cells[9], 96, w->mcnemar_p);
    snprintf(cells[10], 96, "%llu", (unsigned long long)w->gained_n);
    snprintf(cells[11], 96, "%llu", (unsigned long long)w->lost_n);
    pct(a, sizeof a, w->m.truncation_rate);
    pct(b, sizeof b, w->b.truncation_rate);
    snprintf(cells[12], 96, csv ? "%s;%s" : "%s/%s", a, b);
    pct(cells[13], 96, w->mdd);
}

static void csv_cell(qe_buf *out, const char *s)
{
    if (strpbrk(s, ",\"\n\r")) {
        qe_buf_putc(out, '"');
        for (; *s; s++) {
            if (*s == '"')
                qe_buf_putc(out, '"');
            qe_buf_putc(out, *s);
        }
        qe_buf_putc(out, '"');
    } else {
        qe_buf_puts(out, s);
    }
}

static void md_cell(qe_buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            qe_buf_puts(out, "\\|");
        else if (*s == '\n' || *s == '\r')
            qe_buf_putc(out, ' ');
        else
            qe_buf_putc(out, *s);
    }
}

static size_t n_rows(const qe_compare_result *r)
{
    size_t n = 0;
    for (size_t g = 0; g < r->n_groups; g++)
        n += r->groups[g].in->n_models;
    return n;
}

static const qe_compare_row *row_at(const qe_compare_result *r, size_t k)
{
    for (size_t g = 0; g < r->n_groups; g++) {
        if (k < r->groups[g].in->n_models)
            return &r->groups[g].rows[k];
        k -= r->groups[g].in->n_models;
    }
    return NULL;
}

int qe_compare_write(const qe_compare_result *r, int format, qe_buf *out, qe_err *err)
{
    size_t nr = n_rows(r);
    if (format == QE_COMPARE_JSON) {
        json_t *j = qe_compare_to_json(r);
        char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : NULL;
        json_decref(j);
        if (!s)
            return qe_err_set(err, QE_ENOMEM, "compare: out of memory writing JSON");
        int rc = qe_buf_puts(out, s) | qe_buf_putc(out, '\n');
        free(s);
        return rc ? qe_err_set(err, QE_ENOMEM, "compare: out of memory") : 0;
    }
    char(*cells)[NCOL][96] = calloc(nr ? nr : 1, sizeof *cells);
    if (!cells)
        return qe_err_set(err, QE_ENOMEM, "compare: out of memory");
    for (size_t k = 0; k < nr; k++)
        row_cells(row_at(r, k), cells[k], format == QE_COMPARE_CSV);
    if (format == QE_COMPARE_CSV) {
        /* the two-value cells (CI, truncation) are two columns each */
        for (int c = 0; c < NCOL; c++) {
            qe_buf_puts(out, c ? "," : "");
            qe_buf_puts(out, c == 8    ? "ci95_low,ci95_high"
                             : c == 12 ? "trunc%,base_trunc%"
                                       : COLS[c]);
        }
        qe_buf_puts(out, ",verdict\n");
        for (size_t k = 0; k < nr; k++) {
            for (int c = 0; c < NCOL; c++) {
                qe_buf_puts(out, c ? "," : "");
                char *semi = c == 8 || c == 12 ? strchr(cells[k][c], ';') : NULL;
                if (semi) {
                    *semi = '\0';
                    csv_cell(out, cells[k][c]);
                    qe_buf_putc(out, ',');
                    csv_cell(out, semi + 1);
                } else {
                    csv_cell(out, cells[k][c]);
                }
            }
            qe_buf_putc(out, ',');
            csv_cell(out, row_at(r, k)->verdict);
            qe_buf_putc(out, '\n');
        }
    } else if (format == QE_COMPARE_MD) {
        qe_buf_puts(out, "|");
        for (int c = 0; c < NCOL; c++)
            qe_buf_printf(out, " %s |", COLS[c]);
        qe_buf_puts(out, " verdict |\n|");
        for (int c = 0; c <= NCOL; c++)
            qe_buf_puts(out, c >= 4 && c < NCOL ? "---:|" : "---|");
        qe_buf_putc(out, '\n');
        for (size_t k = 0; k < nr; k++) {
            qe_buf_puts(out, "|");
            for (int c = 0; c < NCOL; c++) {
                qe_buf_putc(out, ' ');
                md_cell(out, cells[k][c]);
                qe_buf_puts(out, " |");
            }
            qe_buf_putc(out, ' ');
            md_cell(out, row_at(r, k)->verdict);
            qe_buf_puts(out, " |\n");
        }
    } else {
        size_t wdt[NCOL];
        for (int c = 0; c < NCOL; c++) {
            wdt[c] = strlen(COLS[c]);
            for (size_t k = 0; k < nr; k++)
                if (strlen(cells[k][c]) > wdt[c])
                    wdt[c] = strlen(cells[k][c]);
        }
        for (int c = 0; c < NCOL; c++)
            qe_buf_printf(out, c < 4 ? "%-*s%s" : "%*s%s", (int)wdt[c], COLS[c],
                          c + 1 < NCOL ? "  " : "\n");
        for (size_t k = 0; k < nr; k++)
            for (int c = 0; c < NCOL; c++)
                qe_buf_printf(out, c < 4 ? "%-*s%s" : "%*s%s", (int)wdt[c], cells[k][c],
                              c + 1 < NCOL ? "  " : "\n");
        qe_buf_putc(out, '\n');
        for (size_t k = 0; k < nr; k++) {
            const qe_compare_row *w = row_at(r, k);
            qe_buf_printf(out, "%s/%s %s vs %s: %s.", w->task, w->filter, w->model, w->baseline,
                          w->verdict);
            if (w->unpaired_model || w->unpaired_baseline)
                qe_buf_printf(out, " (unpaired: %zu only in %s, %zu only in %s)",
                              w->unpaired_model, w->model, w->unpaired_baseline, w->baseline);
            qe_buf_printf(out, " Needed to detect 1 / 2 points: %.0f / %.0f problems.\n",
                          w->n_for_1pt, w->n_for_2pt);
        }
    }
    free(cells);
    return out->data || nr == 0 ? 0 : qe_err_set(err, QE_ENOMEM, "compare: out of memory");
}

static void preview(qe_buf *out, const qe_compare_record *r)
{
    if (!r) {
        qe_buf_puts(out, "(missing)");
        return;
    }
    const char *s = r->extracted;
    if (!s && r->response) {
        size_t l = strlen(r->response);
        s = r->response + (l > 60 ? l - 60 : 0);
        while ((*s & 0xC0) == 0x80) /* do not start inside a UTF-8 sequence */
            s++;
        qe_buf_puts(out, "...");
    }
    if (!s) {
        qe_buf_puts(out, r->correct >= 0.5 ? "right" : "wrong");
        return;
    }
    qe_buf_putc(out, '"');
    for (size_t i = 0; s[i] && i < 60; i++)
        qe_buf_putc(out, s[i] == '\n' || s[i] == '\r' || s[i] == '\t' ? ' ' : s[i]);
    qe_buf_putc(out, '"');
}

static const qe_compare_record *rec_by_key(const qe_compare_group *g, size_t j, const char *key)
{
    const qe_compare_model *m = j == 0 ? &g->in->baseline : &g->in->models[j - 1];
    for (size_t i = 0; i < g->n_keys; i++)
        if (strcmp(g->keys[i], key) == 0)
            return g->idx[j][i] == SIZE_MAX ? NULL : &m->recs[g->idx[j][i]];
    return NULL;
}

int qe_compare_write_flips(const qe_compare_result *r, size_t max_per_row, qe_buf *out,
                           qe_err *err)
{
    int bad = 0; /* writes nothing when nothing flipped */
    for (size_t g = 0; g < r->n_groups; g++) {
        const qe_compare_group *gr = &r->groups[g];
        for (size_t j = 0; j < gr->in->n_models; j++) {
            const qe_compare_row *w = &gr->rows[j];
            for (int dir = 0; dir < 2; dir++) {
                char **keys = dir ? w->gained : w->lost;
                uint64_t n = dir ? w->gained_n : w->lost_n;
                if (n == 0)
                    continue;
                bad |= qe_buf_printf(out, "%s/%s %s vs %s, %s (%llu):\n", w->task, w->filter,
                                     w->model, w->baseline, dir ? "gained" : "lost",
                                     (unsigned long long)n);
                for (uint64_t i = 0; i < n && i < max_per_row; i++) {
                    bad |= qe_buf_printf(out, "  %s: %s ", keys[i], w->model);
                    preview(out, rec_by_key(gr, j + 1, keys[i]));
                    bad |= qe_buf_printf(out, " | %s ", w->baseline);
                    preview(out, rec_by_key(gr, 0, keys[i]));
                    bad |= qe_buf_putc(out, '\n');
                }
                if (n > max_per_row)
                    bad |= qe_buf_printf(out, "  ... and %llu more (see --format json)\n",
                                         (unsigned long long)(n - max_per_row));
            }
        }
    }
    return bad ? qe_err_set(err, QE_ENOMEM, "compare: out of memory") : 0;
}

/* ---- config mismatch -------------------------------------------------- */

static void value_text(qe_buf *out, const json_t *v)
{
    if (!v) {
        qe_buf_puts(out, "(missing)");
        return;
    }
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (!s) {
        qe_buf_puts(out, "?");
        return;
    }
    if (strlen(s) > 120)
        qe_buf_printf(out, "%.117s...", s);
    else
        qe_buf_puts(out, s);
    free(s);
}

static int diff_rec(const json_t *a, const json_t *b, const char *path, int depth,
                    const char *const *ignore, qe_buf *out)
{
    if (depth > 32)
        return QE_ELIMIT;
    if (a && b && json_is_object(a) && json_is_object(b)) {
        int n = 0;
        const char *k;
        json_t *v;
        /* keys of a (in a's order), then keys only in b */
        for (int pass = 0; pass < 2; pass++) {
            const json_t *x = pass ? b : a, *y = pass ? a : b;
            json_object_foreach((json_t *)x, k, v)
            {
                if (pass && json_object_get(y, k))
                    continue;
                int skip = 0;
                for (size_t i = 0; depth == 0 && ignore && ignore[i]; i++)
                    skip |= strcmp(ignore[i], k) == 0;
                if (skip)
                    continue;
                qe_buf p = QE_BUF_INIT;
                if (*path)
                    qe_buf_printf(&p, "%s.%s", path, k);
                else
                    qe_buf_puts(&p, k);
                const json_t *av = json_object_get(a, k), *bv = json_object_get(b, k);
                int rc = diff_rec(av, bv, qe_buf_str(&p), depth + 1, ignore, out);
                qe_buf_free(&p);
                if (rc < 0)
                    return rc;
                n += rc;
            }
        }
        return n;
    }
    if (a && b && json_equal((json_t *)a, (json_t *)b))
        return 0;
    /* 0 vs 0.0 are the same setting */
    if (a && b && json_is_number(a) && json_is_number(b) &&
        json_number_value(a) == json_number_value(b))
        return 0;
    qe_buf_printf(out, "%s: ", *path ? path : "(root)");
    value_text(out, a);
    qe_buf_puts(out, " vs ");
    value_text(out, b);
    qe_buf_putc(out, '\n');
    return 1;
}

int qe_compare_config_diff(const json_t *a, const json_t *b, const char *const *ignore,
                           qe_buf *out, qe_err *err)
{
    int rc = diff_rec(a, b, "", 0, ignore, out);
    if (rc == QE_ELIMIT)
        return qe_err_set(err, rc, "config diff: nesting deeper than 32 levels");
    return rc;
}
