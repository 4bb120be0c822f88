/* sweep: order, budget, resume and server lifecycle of `qeval sweep`
 * (see sweep.h and docs/sweep.md). */
#include "sweep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "engine.h"
#include "lmeval_engine.h"
#include "paths.h"
#include "proc.h"
#include "task.h"

#define NO_MODEL ((size_t)-1)
#define STATE_VERSION 1
#define STATE_MAX_BYTES (8u << 20)

const char *qe_sweep_status_name(enum qe_sweep_status s)
{
    switch (s) {
    case QE_SWEEP_PENDING: return "pending";
    case QE_SWEEP_DONE: return "done";
    case QE_SWEEP_FAILED: return "failed";
    case QE_SWEEP_SKIPPED: return "skipped";
    }
    return "?";
}

void qe_sweep_format_duration(double s, char *out, size_t n)
{
    if (!(s >= 0) || s > 1e9) {
        snprintf(out, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%ldh%02ldm", t / 3600, (t % 3600 + 30) / 60 > 59 ? 59 : (t % 3600 + 30) / 60);
    else if (t >= 60)
        snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
    else if (s < 10 && s > 0)
        snprintf(out, n, "%.1fs", s);
    else
        snprintf(out, n, "%lds", t);
}

int qe_sweep_count_task(const qe_plan *p, size_t ti, qe_sweep_count *out, qe_err *err)
{
    memset(out, 0, sizeof *out);
    if (ti >= p->n_tasks)
        return qe_err_set(err, QE_EINVAL, "task index out of range");
    const qe_task *t = qe_task_find(p->tasks[ti].task);
    if (!t)
        return qe_err_set(err, QE_EINVAL, "%s:%d: unknown task '%s'", p->path ? p->path : "plan", p->tasks[ti].line,
                          p->tasks[ti].task);
    int rc = qe_task_size(t, &out->dataset_size, err);
    if (rc)
        return rc;
    out->docs = out->dataset_size;
    if (p->tasks[ti].limit > 0) {
        rc = qe_task_limit(t, (double)p->tasks[ti].limit, &out->docs, &out->clamped, err);
        if (rc)
            return rc;
    }
    out->repeats = p->generation.repeats > 0 ? (size_t)p->generation.repeats : 1;
    out->requests = out->docs * out->repeats;
    return 0;
}

/* ---- scheduling -------------------------------------------------------- */

static double pair_rate(const qe_plan *p, const qe_sweep_sched_in *in, size_t mi, size_t ti, bool *measured)
{
    size_t nt = p->n_tasks;
    *measured = true;
    if (in->rate && in->rate[mi * nt + ti] > 0)
        return in->rate[mi * nt + ti];
    /* same task measured on other models (precisions of one model run at
     * similar speed; tasks differ a lot in answer length) */
    if (in->rate) {
        double sum = 0;
        size_t k = 0;
        for (size_t m = 0; m < p->n_models; m++)
            if (in->rate[m * nt + ti] > 0)
                sum += in->rate[m * nt + ti], k++;
        if (k)
            return sum / (double)k;
    }
    *measured = false;
    return in->default_rate > 0 ? in->default_rate : QE_SWEEP_DEFAULT_RATE;
}

static double start_cost(const qe_sweep_sched_in *in)
{
    if (in->kind == QE_PLAN_ENGINE_ENDPOINT)
        return 0;
    if (in->startup_s > 0)
        return in->startup_s;
    return in->default_startup > 0 ? in->default_startup : QE_SWEEP_DEFAULT_STARTUP;
}

static bool pending(const qe_plan *p, const qe_sweep_sched_in *in, size_t mi, size_t ti)
{
    if (in->selected && !in->selected[mi])
        return false;
    return !in->status || in->status[mi * p->n_tasks + ti] == QE_SWEEP_PENDING;
}

typedef struct {
    qe_sweep_schedule *s;
    size_t cap_steps, cap_skips;
    size_t last_model;
    bool oom;
} sched_build;

static void add_step(sched_build *b, const qe_plan *p, const qe_sweep_sched_in *in, size_t mi, size_t ti)
{
    if (b->oom)
        return;
    if (b->s->n_steps == b->cap_steps) {
        size_t cap = b->cap_steps ? b->cap_steps * 2 : 16;
        qe_sweep_step *n = realloc(b->s->steps, cap * sizeof *n);
        if (!n) {
            b->oom = true;
            return;
        }
        b->s->steps = n;
        b->cap_steps = cap;
    }
    bool measured;
    double rate = pair_rate(p, in, mi, ti, &measured);
    bool fresh = in->kind == QE_PLAN_ENGINE_LMEVAL || b->last_model != mi;
    double est = (double)in->requests[mi * p->n_tasks + ti] / rate + (fresh ? start_cost(in) : 0);
    qe_sweep_step *st = &b->s->steps[b->s->n_steps++];
    *st = (qe_sweep_step){mi, ti, est, fresh && in->kind != QE_PLAN_ENGINE_ENDPOINT, measured};
    if (st->new_server)
        b->s->server_starts++;
    b->s->est_s += est;
    b->last_model = mi;
}

static void add_skip(sched_build *b, size_t mi, size_t ti, double est, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void add_skip(sched_build *b, size_t mi, size_t ti, double est, const char *fmt, ...)
{
    if (b->oom)
        return;
    if (b->s->n_skipped == b->cap_skips) {
        size_t cap = b->cap_skips ? b->cap_skips * 2 : 16;
        qe_sweep_skip *n = realloc(b->s->skipped, cap * sizeof *n);
        if (!n) {
            b->oom = true;
            return;
        }
        b->s->skipped = n;
        b->cap_skips = cap;
    }
    qe_sweep_skip *k = &b->s->skipped[b->s->n_skipped++];
    k->model = mi;
    k->task = ti;
    k->est_s = est;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->reason, sizeof k->reason, fmt, ap);
    va_end(ap);
}

/* Estimate of a pair if run after the server of `last` (start cost when the
 * model changes). */
static double pair_est(const qe_plan *p, const qe_sweep_sched_in *in, size_t last, size_t mi, size_t ti)
{
    bool measured;
    double rate = pair_rate(p, in, mi, ti, &measured);
    bool fresh = in->kind == QE_PLAN_ENGINE_LMEVAL || last != mi;
    return (double)in->requests[mi * p->n_tasks + ti] / rate + (fresh ? start_cost(in) : 0);
}

int qe_sweep_schedule_make(const qe_plan *p, const qe_sweep_sched_in *in, qe_sweep_schedule *out, qe_err *err)
{
    memset(out, 0, sizeof *out);
    sched_build b = {.s = out, .last_model = in->running_model};
    size_t nm = p->n_models, nt = p->n_tasks;

    /* the plan order and its estimate */
    size_t last = in->running_model;
    for (size_t mi = 0; mi < nm; mi++)
        for (size_t ti = 0; ti < nt; ti++)
            if (pending(p, in, mi, ti)) {
                out->est_plain_s += pair_est(p, in, last, mi, ti);
                last = mi;
            }
    char left[32], need[32];
    qe_sweep_format_duration(in->budget_left, left, sizeof left);
    if (in->has_budget && in->budget_left <= 0) {
        for (size_t mi = 0; mi < nm; mi++)
            for (size_t ti = 0; ti < nt; ti++)
                if (pending(p, in, mi, ti))
                    add_skip(&b, mi, ti, pair_est(p, in, NO_MODEL, mi, ti), "the time budget is used up");
    } else if (!in->has_budget || out->est_plain_s * QE_SWEEP_PLAIN_MARGIN <= in->budget_left) {
        for (size_t mi = 0; mi < nm; mi++)
            for (size_t ti = 0; ti < nt; ti++)
                if (pending(p, in, mi, ti))
                    add_step(&b, p, in, mi, ti);
    } else {
        out->priority_mode = true;
        for (size_t mi = 0; mi < nm; mi++)
            for (size_t ti = 0; ti < nt; ti++)
                if (pending(p, in, mi, ti) && p->tasks[ti].priority == QE_PLAN_PRIO_HIGH)
                    add_step(&b, p, in, mi, ti);
        for (size_t mi = 0; mi < nm; mi++)
            for (size_t ti = 0; ti < nt; ti++) {
                if (!pending(p, in, mi, ti) || p->tasks[ti].priority == QE_PLAN_PRIO_HIGH)
                    continue;
                double est = pair_est(p, in, b.last_model, mi, ti);
                double rem = in->budget_left - out->est_s;
                if (est <= rem) {
                    add_step(&b, p, in, mi, ti);
                } else {
                    qe_sweep_format_duration(est, need, sizeof need);
                    char rems[32];
                    qe_sweep_format_duration(rem > 0 ? rem : 0, rems, sizeof rems);
                    add_skip(&b, mi, ti, est,
                             "does not fit the budget: needs ~%s, ~%s left after the high-priority tasks "
                             "(%s left in all)", need, rems, left);
                }
            }
    }
    if (b.oom) {
        qe_sweep_schedule_free(out);
        return qe_err_set(err, QE_ENOMEM, "out of memory");
    }
    return 0;
}

void qe_sweep_schedule_free(qe_sweep_schedule *s)
{
    if (!s)
        return;
    free(s->steps);
    free(s->skipped);
    memset(s, 0, sizeof *s);
}

/* ---- configuration identity ------------------------------------------- */

int qe_sweep_pair_config(const qe_plan *p, size_t mi, size_t ti, qe_buf *out)
{
    const qe_plan_model *m = &p->models[mi];
    const qe_plan_task *t = &p->tasks[ti];
    const qe_plan_generation *g = &p->generation;
    qe_buf name = QE_BUF_INIT;
    qe_plan_output_name(p, mi, ti, &name);
    int rc = qe_buf_printf(out,
                           "engine=%s model=%s served=%s task=%s limit=%d chat=%d max_gen_toks=%d temp=%s%.17g "
                           "top_p=%s%.17g seed=%s%ld think=%d sys=%s repeats=%d tp=%d max_model_len=%d name=%s",
                           qe_plan_engine_kind_name(p->engine.kind), m->model,
                           m->served_model_name ? m->served_model_name : m->model, t->task, t->limit,
                           g->apply_chat_template, g->max_gen_toks, g->has_temperature ? "" : "unset:",
                           g->temperature, g->has_top_p ? "" : "unset:", g->top_p, g->has_seed ? "" : "unset:",
                           g->seed, (int)g->think, g->system_instruction ? g->system_instruction : "", g->repeats,
                           m->args.tensor_parallel_size, m->args.max_model_len, qe_buf_str(&name));
    qe_buf_free(&name);
    return rc ? QE_ENOMEM : 0;
}

/* ---- the sweep's working state ---------------------------------------- */

typedef struct {
    const qe_plan *p;
    const qe_sweep_opts *o;
    qe_sweep_report *r;
    qe_err *err;
    char *out_dir;
    char *state_path;
    int lock_fd;
    json_t *state;          /* {"version","plan","pairs":{key:{...}},"server":{...}|null} */
    enum qe_sweep_status *status;
    size_t *requests;
    double *rate;
    bool *selected;
    bool *dead;             /* model failed to start or crashed too often */
    int *restarts;
    double startup_s;
    bool has_budget;
    double deadline;        /* in the opts clock */
    qe_engine *eng;
    size_t eng_model;
} sweep;

static double clock_now(const sweep *s)
{
    if (s->o->now)
        return s->o->now(s->o->now_ud);
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void note(const sweep *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const sweep *s, const char *fmt, ...)
{
    if (!s->o->note)
        return;
    char line[12288]; /* room for a 30-line log tail */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->o->note(s->o->note_ud, line);
}

static bool stopping(const sweep *s)
{
    return s->o->stop && *s->o->stop;
}

static char *join_path(const char *a, const char *b)
{
    qe_buf x = QE_BUF_INIT;
    qe_buf_printf(&x, "%s/%s", a, b);
    return qe_buf_detach(&x);
}

static char *pair_key(const qe_plan *p, size_t mi, size_t ti)
{
    qe_buf b = QE_BUF_INIT;
    qe_buf_printf(&b, "%s/%s", p->models[mi].name, p->tasks[ti].task);
    return qe_buf_detach(&b);
}

static void iso_now(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Writes the state atomically: tmp file, fsync, rename, fsync of the dir. */
static int state_save(sweep *s)
{
    char *text = json_dumps(s->state, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (!text)
        return qe_err_set(s->err, QE_ENOMEM, "out of memory");
    qe_buf tmp = QE_BUF_INIT;
    qe_buf_printf(&tmp, "%s.tmp", s->state_path);
    int rc = 0;
    int fd = open(qe_buf_str(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd)) {
        rc = qe_err_set(s->err, QE_EIO, "%s: cannot write: %s", qe_buf_str(&tmp), strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    if (!rc && rename(qe_buf_str(&tmp), s->state_path))
        rc = qe_err_set(s->err, QE_EIO, "%s: cannot rename into place: %s", s->state_path, strerror(errno));
    if (!rc) {
        int dfd = open(s->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    } else {
        unlink(qe_buf_str(&tmp));
    }
    qe_buf_free(&tmp);
    free(text);
    return rc;
}

static int state_load(sweep *s)
{
    struct stat st;
    if (stat(s->state_path, &st)) {
        if (errno != ENOENT)
            return qe_err_set(s->err, QE_EIO, "%s: %s", s->state_path, strerror(errno));
        s->state = json_pack("{s:i,s:s,s:{},s:n}", "version", STATE_VERSION, "plan", s->p->name, "pairs", "server");
        return s->state ? 0 : qe_err_set(s->err, QE_ENOMEM, "out of memory");
    }
    if ((size_t)st.st_size > STATE_MAX_BYTES)
        return qe_err_set(s->err, QE_ESTATE, "%s: larger than %u bytes; not a sweep state file?", s->state_path,
                          STATE_MAX_BYTES);
    json_error_t je;
    json_t *j = json_load_file(s->state_path, 0, &je);
    if (!j)
        return qe_err_set(s->err, QE_ESTATE, "%s:%d:%d: not a valid sweep state file (%s); move it away to start over",
                          s->state_path, je.line, je.column, je.text);
    if (!json_is_object(j) || json_integer_value(json_object_get(j, "version")) != STATE_VERSION ||
        !json_is_object(json_object_get(j, "pairs"))) {
        json_decref(j);
        return qe_err_set(s->err, QE_ESTATE, "%s: unknown sweep state version or layout; move it away to start over",
                          s->state_path);
    }
    s->state = j;
    return 0;
}

static json_t *state_pair(sweep *s, size_t mi, size_t ti)
{
    char *k = pair_key(s->p, mi, ti);
    json_t *v = k ? json_object_get(json_object_get(s->state, "pairs"), k) : NULL;
    free(k);
    return json_is_object(v) ? v : NULL;
}

static double jnum(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static char *jstrdup(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? strdup(v) : NULL;
}

/* A server started by an earlier qeval that was killed (-9) may still run:
 * stop its process group if it still looks like ours. */
static void reap_orphan_server(sweep *s)
{
    json_t *srv = json_object_get(s->state, "server");
    if (!json_is_object(srv))
        return;
    json_int_t pg = json_integer_value(json_object_get(srv, "pgid"));
    const char *model = json_string_value(json_object_get(srv, "model"));
    const char *served = json_string_value(json_object_get(srv, "served"));
    if (pg > 1 && model && !qe_proc_group_gone((pid_t)pg)) {
        char cmd[4096];
        int n = qe_proc_cmdline((pid_t)pg, cmd, sizeof cmd);
        /* the group leader is ours if it still runs our command line (a
         * reused pid would not); with /proc missing, trust the record. A
         * leader that is gone or a zombie (empty cmdline) cannot have had
         * its pid reused while its group lives on: the group is ours. */
        if (n <= 0 || strstr(cmd, model) || (served && strstr(cmd, served))) {
            note(s, "stopping the server left running by an interrupted sweep (process group %lld, %s)",
                 (long long)pg, model);
            kill(-(pid_t)pg, SIGTERM);
            for (int i = 0; i < 100 && !qe_proc_group_gone((pid_t)pg); i++) {
                struct timespec t = {0, 100000000L};
                nanosleep(&t, NULL);
            }
            if (!qe_proc_group_gone((pid_t)pg))
                kill(-(pid_t)pg, SIGKILL);
        }
    }
    json_object_set_new(s->state, "server", json_null());
}

static void pair_free_strings(qe_sweep_pair *q)
{
    free(q->results_path);
    free(q->samples_path);
    q->results_path = q->samples_path = NULL;
}

static void set_pair(sweep *s, size_t mi, size_t ti, enum qe_sweep_status st, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void set_pair(sweep *s, size_t mi, size_t ti, enum qe_sweep_status st, const char *fmt, ...)
{
    size_t i = mi * s->p->n_tasks + ti;
    s->status[i] = st;
    qe_sweep_pair *q = &s->r->pairs[i];
    q->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->reason, sizeof q->reason, fmt, ap);
    va_end(ap);
}

/* Records a finished or failed pair in the state file. */
static int record_pair(sweep *s, size_t mi, size_t ti)
{
    size_t i = mi * s->p->n_tasks + ti;
    qe_sweep_pair *q = &s->r->pairs[i];
    qe_buf cfg = QE_BUF_INIT;
    qe_sweep_pair_config(s->p, mi, ti, &cfg);
    char when[32];
    iso_now(when, sizeof when);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:f,s:f}", "config", qe_buf_str(&cfg), "status",
                          qe_sweep_status_name(q->status), "reason", q->reason, "finished_at", when, "n",
                          (json_int_t)q->n, "sent", (json_int_t)q->sent, "seconds", q->seconds, "rate",
                          s->rate[i]);
    qe_buf_free(&cfg);
    if (!o)
        return qe_err_set(s->err, QE_ENOMEM, "out of memory");
    if (isfinite(q->accuracy))
        json_object_set_new(o, "accuracy", json_real(q->accuracy));
    if (isfinite(q->stderr_))
        json_object_set_new(o, "stderr", json_real(q->stderr_));
    if (q->results_path)
        json_object_set_new(o, "results", json_string(q->results_path));
    if (q->samples_path)
        json_object_set_new(o, "samples", json_string(q->samples_path));
    /* a --force redo that failed or was skipped keeps the earlier finished
     * record of the same configuration: that result is still valid */
    json_t *old = state_pair(s, mi, ti);
    if (old && q->status != QE_SWEEP_DONE &&
        !strcmp(json_string_value(json_object_get(old, "status")) ? json_string_value(json_object_get(old, "status")) : "", "done") &&
        json_equal(json_object_get(old, "config"), json_object_get(o, "config"))) {
        json_decref(o);
        return 0;
    }
    char *k = pair_key(s->p, mi, ti);
    json_object_set_new(json_object_get(s->state, "pairs"), k, o);
    free(k);
    return state_save(s);
}

static int report_alloc(const qe_plan *p, qe_sweep_report *r)
{
    memset(r, 0, sizeof *r);
    r->n_models = p->n_models;
    r->n_tasks = p->n_tasks;
    r->pairs = calloc(p->n_models * p->n_tasks, sizeof *r->pairs);
    r->quant_label = calloc(p->n_models, sizeof *r->quant_label);
    if (!r->pairs || !r->quant_label)
        return QE_ENOMEM;
    for (size_t i = 0; i < p->n_models * p->n_tasks; i++)
        r->pairs[i].accuracy = r->pairs[i].stderr_ = NAN;
    return 0;
}

void qe_sweep_report_free(qe_sweep_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->pairs && i < r->n_models * r->n_tasks; i++)
        pair_free_strings(&r->pairs[i]);
    for (size_t i = 0; r->quant_label && i < r->n_models; i++)
        free(r->quant_label[i]);
    free(r->pairs);
    free(r->quant_label);
    memset(r, 0, sizeof *r);
}

/* ---- servers ----------------------------------------------------------- */

static const char *served_name(const qe_plan_model *m)
{
    return m->served_model_name ? m->served_model_name : m->model;
}

static void fail_model(sweep *s, size_t mi, const char *why)
{
    s->dead[mi] = true;
    for (size_t ti = 0; ti < s->p->n_tasks; ti++)
        if (s->status[mi * s->p->n_tasks + ti] == QE_SWEEP_PENDING && s->selected[mi]) {
            set_pair(s, mi, ti, QE_SWEEP_FAILED, "%s", why);
            record_pair(s, mi, ti);
        }
}

static void stop_engine(sweep *s)
{
    if (!s->eng)
        return;
    const char *name = s->p->models[s->eng_model].name;
    qe_engine_stop_report rep;
    qe_err e = {0};
    int rc = qe_engine_stop(s->eng, &rep, &e);
    if (rc)
        note(s, "%s: %s", name, e.msg);
    else
        note(s, "%s: server stopped%s; port %d free", name, rep.sigkilled ? " (needed SIGKILL)" : "",
             qe_engine_port(s->eng));
    if (rep.gpu_checked && !rep.gpu_released)
        note(s, "%s: warning: %s", name, rep.note);
    qe_engine_free(s->eng);
    s->eng = NULL;
    s->eng_model = NO_MODEL;
    json_object_set_new(s->state, "server", json_null());
    state_save(s);
}

/* The engine keeps every log line naming fp8/fp4/...; model names do too.
 * Only lines about quantization or kernels label results. */
static bool is_quant_line(const char *l)
{
    if (!strncmp(l, "# qeval:", 8) || strstr(l, "non-default args") || strstr(l, "model_tag"))
        return false;
    return strcasestr(l, "quantiz") || strcasestr(l, "kernel") || strcasestr(l, "marlin") ||
           strcasestr(l, "kv cache dtype") || strcasestr(l, "kv_cache_dtype");
}

/* ---- a server start that Ctrl-C can cut short ---------------------------
 * qe_engine_start blocks until the server is ready (minutes for a 32B
 * model) and takes no stop flag. It runs in a thread; on a stop request the
 * main thread signals every child of ours that leads its own process group
 * (during a start that is only the server being started: the runner is not
 * running), SIGTERM first and SIGKILL after the grace period, so the start
 * fails quickly and nothing is left behind. Linux: children found in /proc. */

typedef struct {
    const qe_engine_spec *spec;
    qe_engine *eng;
    qe_engine_failure fail;
    qe_err err;
    int rc;
    atomic_int done;
} start_job;

static void *start_thread(void *ud)
{
    start_job *j = ud;
    j->rc = qe_engine_start(j->spec, &j->eng, &j->fail, &j->err);
    atomic_store(&j->done, 1);
    return NULL;
}

/* Children of ours that lead their own process group; returns the count. */
static size_t child_groups(pid_t *out, size_t cap)
{
    pid_t me = getpid();
    size_t n_out = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) && n_out < cap) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 1)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *rp = strrchr(buf, ')'); /* comm may hold spaces and parens */
        char state;
        int ppid, pgrp;
        if (rp && sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 && ppid == me && pgrp == pid)
            out[n_out++] = (pid_t)pid;
    }
    closedir(d);
    return n_out;
}

static int record_server(sweep *s, size_t mi, pid_t pgid, int port)
{
    const qe_plan_model *m = &s->p->models[mi];
    json_object_set_new(s->state, "server",
                        json_pack("{s:I,s:s,s:s,s:s,s:i}", "pgid", (json_int_t)pgid, "model", m->model, "served",
                                  m->served_model_name ? m->served_model_name : m->model, "name", m->name, "port",
                                  port));
    return state_save(s);
}

typedef struct {
    sweep *s;
    size_t mi;
    int port;
} spawn_rec;

/* The engine's on_spawn: the server's process group is in the state file
 * (fsync'd) before vllm serve runs, so no kill -9 of ours can leave a
 * server the next run does not know of. Runs on the start thread while the
 * main thread only watches for a stop. */
static int record_spawned(void *ud, pid_t pgid)
{
    spawn_rec *r = ud;
    return record_server(r->s, r->mi, pgid, r->port);
}

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int start_interruptible(sweep *s, size_t mi, const qe_engine_spec *spec, qe_engine **out,
                               qe_engine_failure *fail, qe_err *e)
{
    start_job *j = calloc(1, sizeof *j);
    if (!j)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    spawn_rec rec = {s, mi, spec->args && spec->args->port > 0 ? spec->args->port : 0};
    qe_engine_spec sp = *spec;
    sp.on_spawn = record_spawned;
    sp.on_spawn_ud = &rec;
    j->spec = &sp;
    atomic_init(&j->done, 0);
    pthread_t th;
    if (pthread_create(&th, NULL, start_thread, j)) {
        free(j);
        return qe_engine_start(&sp, out, fail, e);
    }
    double grace = spec->stop_grace > 0 ? spec->stop_grace : 30, t_stop = 0;
    while (!atomic_load(&j->done)) {
        pid_t kids[8];
        size_t nk = child_groups(kids, 8);
        if (stopping(s)) {
            if (t_stop == 0)
                t_stop = mono_s();
            for (size_t k = 0; k < nk; k++)
                kill(-kids[k], mono_s() - t_stop > grace ? SIGKILL : SIGTERM);
        }
        struct timespec ts = {0, 50000000L};
        nanosleep(&ts, NULL);
    }
    pthread_join(th, NULL);
    int rc = j->rc;
    *out = j->eng;
    *fail = j->fail;
    *e = j->err;
    free(j);
    if (t_stop > 0) {
        if (*out) {
            qe_engine_free(*out);
            *out = NULL;
        }
        return qe_err_set(e, QE_EINTR, "interrupted while the server was starting");
    }
    return rc;
}

/* Notes while a server (vllm) or an endpoint gets ready: what is waited
 * for and for how long, then "still waiting" every opts.wait_report_s. */
typedef struct {
    const sweep *s;
    const char *name;   /* models[].name */
    const char *what;   /* "the server" or "endpoint URL" as written in the plan */
    const char *served; /* the name /v1/models must list */
} wait_note;

static void note_wait(void *ud, const char *url, double waited, double timeout)
{
    const wait_note *w = ud;
    char tw[32], tt[32];
    qe_sweep_format_duration(timeout, tt, sizeof tt);
    if (waited <= 0) {
        note(w->s, "%s: waiting up to %s for %s: GET %s = 200, then /v1/models listing '%s'", w->name, tt, w->what,
             url, w->served);
        return;
    }
    qe_sweep_format_duration(waited, tw, sizeof tw);
    note(w->s, "%s: still waiting for %s (%s of %s)", w->name, url, tw, tt);
}

/* Ensures a healthy server for model mi. Returns 0, or -1 when the model
 * cannot be served (marked failed), or QE_EINTR. */
static int ensure_server(sweep *s, size_t mi)
{
    const qe_plan *p = s->p;
    const qe_plan_model *m = &p->models[mi];
    if (p->engine.kind == QE_PLAN_ENGINE_LMEVAL)
        return 0;
    if (p->engine.kind == QE_PLAN_ENGINE_ENDPOINT) {
        if (s->eng_model == mi)
            return 0;
        const char *key = p->engine.api_key_env ? getenv(p->engine.api_key_env) : NULL;
        double timeout = s->o->startup_timeout > 0 ? s->o->startup_timeout
                         : m->args.startup_timeout > 0 ? m->args.startup_timeout : 60;
        for (size_t i = 0; i < p->engine.n_base_urls; i++) {
            qe_err e = {0};
            char what[1100], shown[1024];
            qe_client_redact_url(p->engine.base_urls[i], shown, sizeof shown); /* no password */
            snprintf(what, sizeof what, "endpoint %s", shown);
            wait_note wn = {s, m->name, what, served_name(m)};
            qe_engine_wait_report rep = {note_wait, &wn, s->o->wait_report_s};
            if (qe_engine_wait_endpoint_reporting(p->engine.base_urls[i], key, served_name(m), timeout, &rep, &e)) {
                note(s, "%s: endpoint %s not ready: %s", m->name, shown, e.msg);
                char why[2200];
                snprintf(why, sizeof why, "endpoint %s not ready: %s", shown, e.msg);
                fail_model(s, mi, why);
                return -1;
            }
        }
        s->eng_model = mi;
        return 0;
    }
    if (s->eng && s->eng_model == mi && qe_engine_alive(s->eng))
        return 0;
    stop_engine(s);
    if (stopping(s))
        return QE_EINTR;

    char *dir = join_path(s->out_dir, m->name);
    char *log = dir ? join_path(dir, "vllm_serve.log") : NULL;
    if (!log || qe_paths_mkdirs(dir)) {
        char why[512];
        snprintf(why, sizeof why, "cannot create %s: %s", dir ? dir : "output dir", strerror(errno));
        free(dir);
        free(log);
        fail_model(s, mi, why);
        return -1;
    }
    qe_engine_spec spec;
    qe_engine_spec_from_plan(&spec, p, mi);
    spec.log_path = log;
    if (s->o->startup_timeout > 0)
        spec.startup_timeout = s->o->startup_timeout;
    spec.poll_interval = s->o->poll_interval;
    wait_note wn = {s, m->name, "the server", served_name(m)};
    spec.wait_report = (qe_engine_wait_report){note_wait, &wn, s->o->wait_report_s};
    /* the log is named once opened: vllm_serve.log, or .1, .2 ... when an
     * earlier start left one (never overwritten) */
    note(s, "%s: starting vllm serve %s", m->name, m->model);
    qe_engine_failure fail;
    qe_err e = {0};
    qe_engine *eng = NULL;
    int rc = start_interruptible(s, mi, &spec, &eng, &fail, &e);
    free(dir);
    free(log);
    if (rc) { /* nothing is left running */
        json_object_set_new(s->state, "server", json_null());
        state_save(s);
    }
    if (rc == QE_EINTR) {
        note(s, "%s: %s", m->name, e.msg);
        return QE_EINTR;
    }
    if (rc) {
        note(s, "%s: server failed to start: %s", m->name, e.msg);
        if (fail.log_tail[0])
            note(s, "%s: last lines of %s:\n%s", m->name, fail.log_path, fail.log_tail);
        s->r->any_start_failed = true;
        char why[2200];
        if (fail.log_path[0] && fail.cause != QE_ENGINE_CAUSE_NONE && fail.cause != QE_ENGINE_CAUSE_UNKNOWN)
            snprintf(why, sizeof why, "server did not start (%s); log: %s", qe_engine_cause_name(fail.cause),
                     fail.log_path);
        else
            snprintf(why, sizeof why, "server did not start (%s): %s", qe_engine_cause_name(fail.cause), e.msg);
        fail_model(s, mi, why);
        return -1;
    }
    s->eng = eng;
    s->eng_model = mi;
    s->startup_s = qe_engine_startup_seconds(eng);
    /* remembered, as rates are: the next invocation plans with it */
    json_object_set_new(s->state, "startup_s", json_real(s->startup_s));
    record_server(s, mi, qe_engine_pgid(eng), qe_engine_port(eng));
    char d[32];
    qe_sweep_format_duration(s->startup_s, d, sizeof d);
    note(s, "%s: server ready at %s in %s (log %s)", m->name, qe_engine_base_url(eng), d,
         qe_engine_log_path(eng));
    size_t nq;
    const char *const *q = qe_engine_quant_lines(eng, &nq);
    const char *label = NULL;
    for (size_t i = 0; i < nq; i++) {
        if (!is_quant_line(q[i]))
            continue;
        note(s, "%s: quantization: %s", m->name, q[i]);
        /* a kernel line says what really ran (FP4 weights on Marlin, ...) */
        if (!label || strcasestr(q[i], "kernel") || strcasestr(q[i], "marlin"))
            label = q[i];
    }
    if (label && !s->r->quant_label[mi])
        s->r->quant_label[mi] = strdup(label);
    return 0;
}

/* True when the server of the current model is no longer usable. */
static bool server_crashed(sweep *s)
{
    if (s->p->engine.kind != QE_PLAN_ENGINE_VLLM || !s->eng)
        return false;
    if (!qe_engine_alive(s->eng))
        return true;
    qe_err e = {0};
    return qe_engine_wait_endpoint(qe_engine_base_url(s->eng), NULL, served_name(&s->p->models[s->eng_model]), 3.0,
                                   &e) != 0;
}

/* ---- one step ---------------------------------------------------------- */

static double binary_stderr(double acc, size_t n)
{
    if (n < 2 || !isfinite(acc))
        return NAN;
    return sqrt(acc * (1 - acc) / (double)(n - 1));
}

static void build_gen_kwargs(const qe_plan *p, qe_buf *b)
{
    const qe_plan_generation *g = &p->generation;
    char num[64];
    if (g->max_gen_toks > 0)
        qe_buf_printf(b, "max_gen_toks=%d", g->max_gen_toks);
    if (g->has_temperature) {
        snprintf(num, sizeof num, "%.17g", g->temperature);
        qe_buf_printf(b, "%stemperature=%s", b->len ? "," : "", num);
    }
    if (g->has_top_p) {
        snprintf(num, sizeof num, "%.17g", g->top_p);
        qe_buf_printf(b, "%stop_p=%s", b->len ? "," : "", num);
    }
}

static int run_lmeval_step(sweep *s, size_t mi, size_t ti)
{
    const qe_plan *p = s->p;
    size_t i = mi * p->n_tasks + ti;
    qe_sweep_pair *q = &s->r->pairs[i];
    char *dir = join_path(s->out_dir, p->models[mi].name);
    qe_buf name = QE_BUF_INIT, out = QE_BUF_INIT, log = QE_BUF_INIT;
    qe_plan_output_name(p, mi, ti, &name);
    qe_buf_printf(&out, "%s/%s.json", dir, qe_buf_str(&name));
    qe_buf_printf(&log, "%s/lm_eval_%s.log", dir, p->tasks[ti].task);
    free(dir);
    note(s, "%s x %s: running lm-eval (log %s)", p->models[mi].name, p->tasks[ti].task, qe_buf_str(&log));
    qe_lmeval_result res;
    qe_err e = {0};
    int rc = qe_lmeval_run(p, mi, ti, qe_buf_str(&out), qe_buf_str(&log), s->o->stop, p->engine.stop_grace, &res,
                           &e);
    qe_buf_free(&name);
    qe_buf_free(&out);
    qe_buf_free(&log);
    q->seconds += res.seconds;
    if (rc == QE_EINTR || stopping(s)) {
        qe_lmeval_result_free(&res);
        return QE_EINTR;
    }
    if (rc) {
        if (res.log_tail[0])
            note(s, "%s x %s: last lines of %s:\n%s", p->models[mi].name, p->tasks[ti].task,
                 res.log_path ? res.log_path : "the log", res.log_tail);
        set_pair(s, mi, ti, QE_SWEEP_FAILED, "%s", e.msg);
    } else {
        q->accuracy = res.accuracy;
        q->stderr_ = res.stderr_;
        q->n = res.n;
        q->sent = res.n;
        pair_free_strings(q);
        q->results_path = res.results_path;
        q->samples_path = res.samples_path;
        res.results_path = res.samples_path = NULL;
        if (res.n && res.seconds > 0)
            s->rate[i] = (double)res.n / res.seconds;
        set_pair(s, mi, ti, QE_SWEEP_DONE, "%s", "");
    }
    qe_lmeval_result_free(&res);
    return record_pair(s, mi, ti);
}

static const char *main_filter_if_several(const char *task);

/* qe_run_task_diagnose's lines ("TASK: text\n" each), one note per line
 * under the pair's name instead of a bare "model x task:" header followed
 * by the block. The accuracy they talk about is the main filter's: named
 * when the task has several (gsm8k). */
static void note_diagnosis(const sweep *s, const char *model, const char *task, const char *diag)
{
    const char *fl = main_filter_if_several(task);
    size_t tl = strlen(task);
    for (const char *line = diag; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *text = line;
        if (len > tl + 2 && !strncmp(text, task, tl) && !strncmp(text + tl, ": ", 2))
            text += tl + 2;
        if (line + len > text)
            note(s, "%s x %s%s%s%s: %.*s", model, task, fl ? " (" : "", fl ? fl : "", fl ? ")" : "",
                 (int)(line + len - text), text);
        line += len + (nl ? 1 : 0);
    }
}

/* Runs pair (mi, ti) on the current server. Returns QE_EINTR when stopped,
 * 1 when the server crashed (caller restarts), else 0 (pair recorded). */
static int run_eval_step(sweep *s, size_t mi, size_t ti)
{
    const qe_plan *p = s->p;
    const qe_plan_model *m = &p->models[mi];
    const qe_plan_generation *g = &p->generation;
    size_t i = mi * p->n_tasks + ti;
    qe_sweep_pair *q = &s->r->pairs[i];

    const char *one_url[1];
    qe_run_opts ro;
    memset(&ro, 0, sizeof ro);
    if (p->engine.kind == QE_PLAN_ENGINE_VLLM) {
        one_url[0] = qe_engine_base_url(s->eng);
        ro.base_urls = one_url;
        ro.n_base_urls = 1;
    } else {
        ro.base_urls = (const char *const *)p->engine.base_urls;
        ro.n_base_urls = p->engine.n_base_urls;
        ro.api_key = p->engine.api_key_env ? getenv(p->engine.api_key_env) : NULL;
    }
    const char *task = p->tasks[ti].task;
    char *dir = join_path(s->out_dir, m->name);
    qe_buf name = QE_BUF_INIT, gk = QE_BUF_INIT;
    qe_plan_output_name(p, mi, ti, &name);
    build_gen_kwargs(p, &gk);
    ro.model = served_name(m);
    ro.tasks = &task;
    ro.n_tasks = 1;
    ro.limit = p->tasks[ti].limit > 0 ? p->tasks[ti].limit : 0;
    ro.apply_chat_template = g->apply_chat_template;
    ro.system_instruction = g->system_instruction;
    ro.think = g->think == QE_PLAN_THINK_ON ? 1 : g->think == QE_PLAN_THINK_OFF ? 0 : -1;
    ro.gen_kwargs = gk.len ? qe_buf_str(&gk) : NULL;
    ro.num_concurrent = g->num_concurrent > 0 ? g->num_concurrent
                        : m->args.max_num_seqs > 0 ? m->args.max_num_seqs : 8;
    ro.repeats = g->repeats > 0 ? g->repeats : 1;
    ro.seed = g->has_seed ? (uint64_t)g->seed : 1234;
    ro.output_path = dir;
    ro.output_name = qe_buf_str(&name);
    ro.log_samples = true;
    ro.max_attempts = s->o->max_attempts > 0 ? s->o->max_attempts : 4;
    ro.timeout_s = s->o->request_timeout > 0 ? s->o->request_timeout : 1800;
    ro.stop = s->o->stop;
    ro.progress = s->o->progress;
    ro.deadline = s->has_budget ? s->deadline : 0;
    /* our own server does not come back by itself: fail fast, the sweep
     * restarts it; a shared endpoint may, so the runner waits for it */
    ro.server_wait_s = p->engine.kind == QE_PLAN_ENGINE_VLLM ? -1 : 0;

    note(s, "%s x %s: evaluating (%zu requests)", m->name, task, s->requests[i]);
    qe_run_summary sum;
    memset(&sum, 0, sizeof sum);
    qe_err e = {0};
    double t0 = clock_now(s);
    int rc = s->o->eval(s->o->eval_ud, &ro, &sum, &e);
    double dt = clock_now(s) - t0;
    q->seconds += dt;
    free(dir);
    qe_buf_free(&name);
    qe_buf_free(&gk);

    if (sum.notices) { /* config changed -> new run, prompt rendering fallback, ... */
        for (char *line = sum.notices; *line;) {
            char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            note(s, "%s x %s: %.*s", m->name, task, (int)len, line);
            line += len + (nl ? 1 : 0);
        }
    }
    for (size_t k = 0; rc && k < sum.n_failures && k < 5; k++)
        note(s, "%s x %s: %s", m->name, task, sum.failures[k]);
    qe_run_task_summary *ts = sum.n_tasks ? &sum.tasks[0] : NULL;
    if (ts) {
        q->sent += ts->sent;
        double secs = ts->seconds > 0 ? ts->seconds : dt;
        if (ts->sent > 0 && secs > 0)
            s->rate[i] = (double)ts->sent / secs;
    }
    int ret = 0;
    if (rc == QE_EINTR || stopping(s)) {
        ret = QE_EINTR;
    } else if (rc && server_crashed(s)) {
        /* its own last words, as for a failed start */
        qe_engine_failure pm;
        qe_engine_post_mortem(s->eng, &pm);
        note(s, "%s x %s: the server died during the task (%s)%s%s", m->name, task, e.msg[0] ? e.msg : "no reply",
             pm.cause != QE_ENGINE_CAUSE_UNKNOWN ? "; likely cause: " : "",
             pm.cause != QE_ENGINE_CAUSE_UNKNOWN ? qe_engine_cause_name(pm.cause) : "");
        if (pm.log_tail[0])
            note(s, "%s: last lines of %s:\n%s", m->name, pm.log_path, pm.log_tail);
        ret = 1;
    } else if (rc == 0 && ts) {
        q->accuracy = ts->accuracy;
        q->n = ts->ok;
        q->stderr_ = binary_stderr(ts->accuracy, ts->ok);
        pair_free_strings(q);
        q->results_path = ts->results_path ? strdup(ts->results_path) : NULL;
        q->samples_path = ts->samples_path ? strdup(ts->samples_path) : NULL;
        /* notes worth a glance in the table: the limit was clamped, answers
         * were cut (Qwen3 thinking inside max_gen_toks scores 0) */
        qe_buf why = QE_BUF_INIT;
        if (ts->limit_clamped_from) {
            qe_sweep_count c;
            if (qe_sweep_count_task(p, ti, &c, NULL) == 0)
                qe_buf_printf(&why, "limit %zu > %zu problems", ts->limit_clamped_from, c.dataset_size);
        }
        if (ts->truncated)
            qe_buf_printf(&why, "%s%zu of %zu answers cut at max_gen_toks or inside <think>", why.len ? "; " : "",
                          ts->truncated, ts->ok);
        set_pair(s, mi, ti, QE_SWEEP_DONE, "%s", qe_buf_str(&why));
        qe_buf_free(&why);
        /* the same explanations `qeval run` prints: thinking cut off,
         * scorer disagreement, what the sample size can detect */
        qe_buf diag = QE_BUF_INIT;
        if (qe_run_task_diagnose(ts, &diag) == 0 && diag.len)
            note_diagnosis(s, m->name, task, qe_buf_str(&diag));
        qe_buf_free(&diag);
        ret = record_pair(s, mi, ti);
    } else if (s->has_budget && clock_now(s) >= s->deadline) {
        set_pair(s, mi, ti, QE_SWEEP_SKIPPED, "the time budget ran out during the task (%zu of %zu answered; a rerun "
                 "resumes)", ts ? ts->ok : 0, ts ? ts->requested : s->requests[i]);
        ret = record_pair(s, mi, ti);
    } else {
        if (rc == QE_ESERVER && ts)
            set_pair(s, mi, ti, QE_SWEEP_FAILED, "%zu of %zu requests failed%s%s", ts->failed, ts->requested,
                     sum.first_failure ? ": " : "", sum.first_failure ? sum.first_failure : "");
        else
            set_pair(s, mi, ti, QE_SWEEP_FAILED, "%s", e.msg[0] ? e.msg : qe_status_name(rc));
        ret = record_pair(s, mi, ti);
    }
    if (s->o->free_summary)
        s->o->free_summary(&sum);
    return ret;
}

/* Plan settings the lm-eval command line cannot carry, or NULL. */
static const char *lmeval_ignored(const qe_plan *p)
{
    bool extra = false;
    for (size_t mi = 0; mi < p->n_models; mi++)
        extra |= p->models[mi].args.n_extra_args > 0;
    if (p->generation.repeats > 1)
        return "generation.repeats (set repeats in the task YAML instead)";
    if (extra)
        return "engine extra_args (vllm serve flags)";
    if (p->generation.num_concurrent > 0)
        return "generation.num_concurrent (lm-eval's vllm backend batches itself)";
    return NULL;
}

/* ---- the sweep --------------------------------------------------------- */

static int sweep_init(sweep *s, const qe_plan *p, const qe_sweep_opts *o, qe_sweep_report *r, qe_err *err)
{
    memset(s, 0, sizeof *s);
    s->p = p;
    s->o = o;
    s->r = r;
    s->err = err;
    s->lock_fd = -1;
    s->eng_model = NO_MODEL;
    size_t np = p->n_models * p->n_tasks;
    if (report_alloc(p, r))
        return qe_err_set(err, QE_ENOMEM, "out of memory");
    s->status = calloc(np, sizeof *s->status);
    s->requests = calloc(np, sizeof *s->requests);
    s->rate = calloc(np, sizeof *s->rate);
    s->selected = calloc(p->n_models, sizeof *s->selected);
    s->dead = calloc(p->n_models, sizeof *s->dead);
    s->restarts = calloc(p->n_models, sizeof *s->restarts);
    const char *outp = p->output ? p->output : "results/";
    size_t ol = strlen(outp);
    while (ol > 1 && outp[ol - 1] == '/')
        ol--;
    qe_buf od = QE_BUF_INIT;
    qe_buf_append(&od, outp, ol);
    s->out_dir = qe_buf_detach(&od);
    if (!s->status || !s->requests || !s->rate || !s->selected || !s->dead || !s->restarts || !s->out_dir)
        return qe_err_set(err, QE_ENOMEM, "out of memory");
    bool any = false;
    for (size_t mi = 0; mi < p->n_models; mi++) {
        s->selected[mi] = !o->only_model || !strcmp(o->only_model, p->models[mi].name);
        any |= s->selected[mi];
    }
    if (!any)
        return qe_err_set(err, QE_EINVAL, "--only-model %s: no model of that name in %s", o->only_model,
                          p->path ? p->path : "the plan");
    for (size_t ti = 0; ti < p->n_tasks; ti++) {
        qe_sweep_count c;
        int rc = qe_sweep_count_task(p, ti, &c, err);
        if (rc)
            return rc;
        for (size_t mi = 0; mi < p->n_models; mi++)
            s->requests[mi * p->n_tasks + ti] = c.requests;
    }
    return 0;
}

static void sweep_release(sweep *s)
{
    if (s->eng)
        stop_engine(s);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    json_decref(s->state);
    free(s->out_dir);
    free(s->state_path);
    free(s->status);
    free(s->requests);
    free(s->rate);
    free(s->selected);
    free(s->dead);
    free(s->restarts);
}

/* Loads state: done pairs (same config) become DONE unless --force; the
 * last measured server start. */
static void apply_state(sweep *s)
{
    const qe_plan *p = s->p;
    double started = jnum(s->state, "startup_s");
    if (started > 0) /* NaN when absent */
        s->startup_s = started;
    for (size_t mi = 0; mi < p->n_models; mi++)
        for (size_t ti = 0; ti < p->n_tasks; ti++) {
            size_t i = mi * p->n_tasks + ti;
            json_t *o = state_pair(s, mi, ti);
            if (!o)
                continue;
            qe_buf cfg = QE_BUF_INIT;
            qe_sweep_pair_config(p, mi, ti, &cfg);
            bool same = !strcmp(qe_buf_str(&cfg), json_string_value(json_object_get(o, "config")) ? json_string_value(json_object_get(o, "config")) : "");
            qe_buf_free(&cfg);
            double rate = jnum(o, "rate");
            if (same && rate > 0)
                s->rate[i] = rate;
            const char *st = json_string_value(json_object_get(o, "status"));
            if (!same || !st || strcmp(st, "done"))
                continue;
            if (s->o->force) {
                note(s, "%s x %s: finished earlier; --force: running it again", p->models[mi].name, p->tasks[ti].task);
                continue;
            }
            qe_sweep_pair *q = &s->r->pairs[i];
            s->status[i] = q->status = QE_SWEEP_DONE;
            q->from_state = true;
            q->accuracy = jnum(o, "accuracy");
            q->stderr_ = jnum(o, "stderr");
            double n = jnum(o, "n");
            q->n = n > 0 ? (size_t)n : 0;
            q->results_path = jstrdup(o, "results");
            q->samples_path = jstrdup(o, "samples");
            snprintf(q->reason, sizeof q->reason, "from an earlier run");
        }
}

static int take_lock(sweep *s)
{
    char *lp = join_path(s->out_dir, QE_SWEEP_STATE_FILE ".lock");
    if (!lp)
        return qe_err_set(s->err, QE_ENOMEM, "out of memory");
    s->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int rc = 0;
    if (s->lock_fd < 0)
        rc = qe_err_set(s->err, QE_EIO, "%s: %s", lp, strerror(errno));
    else if (flock(s->lock_fd, LOCK_EX | LOCK_NB))
        rc = qe_err_set(s->err, QE_ESTATE, "another qeval sweep is running on %s (lock %s)", s->out_dir, lp);
    free(lp);
    return rc;
}

int qe_sweep_run(const qe_plan *p, const qe_sweep_opts *o, qe_sweep_report *r, qe_err *err)
{
    sweep s;
    int rc = sweep_init(&s, p, o, r, err);
    if (!rc && p->engine.kind != QE_PLAN_ENGINE_LMEVAL && (!o->eval || !o->free_summary))
        rc = qe_err_set(err, QE_EINVAL, "sweep: no evaluation function (runner) given");
    if (!rc && qe_paths_mkdirs(s.out_dir))
        rc = qe_err_set(err, QE_EIO, "%s: cannot create output directory: %s", s.out_dir, strerror(errno));
    if (!rc && !(s.state_path = join_path(s.out_dir, QE_SWEEP_STATE_FILE)))
        rc = qe_err_set(err, QE_ENOMEM, "out of memory");
    if (!rc)
        rc = take_lock(&s);
    if (!rc)
        rc = state_load(&s);
    if (rc) {
        sweep_release(&s);
        return rc;
    }
    reap_orphan_server(&s);
    apply_state(&s);
    if ((rc = state_save(&s))) {
        sweep_release(&s);
        return rc;
    }
    if (p->engine.kind == QE_PLAN_ENGINE_LMEVAL && lmeval_ignored(p))
        note(&s, "note: lm-eval has no flag for %s; not passed", lmeval_ignored(p));
    double t_start = clock_now(&s);
    s.has_budget = p->budget > 0;
    s.deadline = t_start + p->budget;

    bool announced = false, was_priority = false;
    int ret = 0;
    for (;;) {
        if (stopping(&s)) {
            ret = QE_EINTR;
            break;
        }
        qe_sweep_sched_in in = {
            .budget_left = s.deadline - clock_now(&s),
            .has_budget = s.has_budget,
            .status = s.status,
            .selected = s.selected,
            .requests = s.requests,
            .rate = s.rate,
            .default_rate = o->default_rate,
            .startup_s = s.startup_s,
            .default_startup = o->default_startup,
            .running_model = s.eng ? s.eng_model : NO_MODEL,
            .kind = p->engine.kind,
        };
        qe_sweep_schedule sch;
        if ((rc = qe_sweep_schedule_make(p, &in, &sch, err))) {
            ret = rc;
            break;
        }
        if (!announced || sch.priority_mode != was_priority) {
            char a[32], b[32];
            qe_sweep_format_duration(sch.est_plain_s, a, sizeof a);
            qe_sweep_format_duration(in.budget_left, b, sizeof b);
            if (s.has_budget && !(in.budget_left > 0))
                note(&s, "budget: the time budget is used up; everything left (~%s) is skipped, and a rerun "
                     "with a larger budget does it", a);
            else if (sch.priority_mode)
                note(&s, "budget: everything left needs ~%s but ~%s remain: high-priority tasks of every model "
                     "first, the rest as time allows", a, b);
            else if (s.has_budget)
                note(&s, "budget: everything left needs ~%s, ~%s remain: plan order", a, b);
            announced = true;
            was_priority = sch.priority_mode;
        }
        if (sch.n_steps == 0) {
            for (size_t k = 0; k < sch.n_skipped; k++) {
                qe_sweep_skip *sk = &sch.skipped[k];
                set_pair(&s, sk->model, sk->task, QE_SWEEP_SKIPPED, "%s", sk->reason);
                note(&s, "%s x %s: skipped: %s", p->models[sk->model].name, p->tasks[sk->task].task, sk->reason);
                record_pair(&s, sk->model, sk->task);
            }
            qe_sweep_schedule_free(&sch);
            break;
        }
        size_t mi = sch.steps[0].model, ti = sch.steps[0].task;
        qe_sweep_schedule_free(&sch);

        if (p->engine.kind == QE_PLAN_ENGINE_LMEVAL) { /* the harness loads the model itself */
            rc = run_lmeval_step(&s, mi, ti);
            if (rc == QE_EINTR) {
                ret = QE_EINTR;
                break;
            }
            continue;
        }
        rc = ensure_server(&s, mi);
        if (rc == QE_EINTR) {
            ret = QE_EINTR;
            break;
        }
        if (rc)
            continue; /* model marked failed; next */
        if (stopping(&s)) { /* Ctrl-C while the server was starting */
            ret = QE_EINTR;
            break;
        }
        rc = run_eval_step(&s, mi, ti);
        if (rc == QE_EINTR) {
            ret = QE_EINTR;
            break;
        }
        if (rc == 1) { /* crashed */
            char crash_log[1100] = "";
            if (s.eng && qe_engine_log_path(s.eng))
                snprintf(crash_log, sizeof crash_log, "%s", qe_engine_log_path(s.eng));
            if (s.eng) { /* clean up what is left of the group */
                qe_engine_free(s.eng);
                s.eng = NULL;
                s.eng_model = NO_MODEL;
                json_object_set_new(s.state, "server", json_null());
                state_save(&s);
            }
            if (++s.restarts[mi] > QE_SWEEP_MAX_RESTARTS) {
                note(&s, "%s: the server crashed again; giving up on this model", p->models[mi].name);
                char why[1300];
                snprintf(why, sizeof why, "the server crashed twice during this model's tasks; log: %s",
                         crash_log[0] ? crash_log : "(none)");
                fail_model(&s, mi, why);
            } else {
                note(&s, "%s: restarting the server once; answered requests are kept", p->models[mi].name);
            }
        }
    }
    if (s.eng)
        stop_engine(&s);
    if (ret == QE_EINTR) {
        r->interrupted = true;
        qe_err_set(err, QE_EINTR, "interrupted; everything answered is kept and a rerun resumes");
    }
    for (size_t i = 0; i < p->n_models * p->n_tasks; i++) {
        if (!s.selected[i / p->n_tasks] && s.status[i] == QE_SWEEP_PENDING)
            continue;
        switch (s.status[i]) {
        case QE_SWEEP_DONE: r->n_done++; break;
        case QE_SWEEP_FAILED: r->n_failed++; break;
        case QE_SWEEP_SKIPPED: r->n_skipped++; break;
        case QE_SWEEP_PENDING: r->n_pending++; break;
        }
    }
    sweep_release(&s);
    if (ret)
        return ret;
    if (r->n_failed || r->n_skipped)
        return qe_err_set(err, QE_ESERVER, "%zu of the model x task pairs failed, %zu skipped", r->n_failed,
                          r->n_skipped);
    return 0;
}

/* ---- dry run ----------------------------------------------------------- */


/* What every request of the plan carries (the settings qeval run gets),
 * and the one trap DESIGN names: Qwen3 thinks by default, and a small
 * max_gen_toks cuts the answer inside <think>. */
static void dry_run_generation(const qe_plan *p, qe_buf *out)
{
    const qe_plan_generation *g = &p->generation;
    qe_buf_printf(out, "\ngeneration: %s",
                  g->apply_chat_template ? "chat template applied" : "raw prompts, no chat template");
    if (g->apply_chat_template)
        qe_buf_printf(out, ", think %s", g->think == QE_PLAN_THINK_ON    ? "on"
                                        : g->think == QE_PLAN_THINK_OFF ? "off"
                                                                        : "default (the template's: Qwen3 thinks)");
    if (g->max_gen_toks > 0)
        qe_buf_printf(out, ", max_gen_toks %d", g->max_gen_toks);
    else
        qe_buf_puts(out, ", max_gen_toks per task");
    if (g->has_temperature)
        qe_buf_printf(out, ", temperature %g", g->temperature);
    if (g->has_top_p)
        qe_buf_printf(out, ", top_p %g", g->top_p);
    qe_buf_printf(out, ", seed %ld", g->has_seed ? g->seed : 1234L);
    if (g->repeats > 1)
        qe_buf_printf(out, ", %d repeats", g->repeats);
    if (g->system_instruction)
        qe_buf_puts(out, ", a system instruction");
    if (p->engine.kind == QE_PLAN_ENGINE_LMEVAL)
        ; /* lm-eval's vllm backend batches by itself */
    else if (g->num_concurrent > 0)
        qe_buf_printf(out, ", %d requests in flight", g->num_concurrent);
    else
        qe_buf_puts(out, ", requests in flight: each model's max_num_seqs (else 8)");
    qe_buf_putc(out, '\n');
    if (g->apply_chat_template && g->think != QE_PLAN_THINK_OFF && g->max_gen_toks > 0 &&
        g->max_gen_toks <= 4096)
        qe_buf_printf(out, "  note: with thinking on, %d tokens often end inside <think> on AIME and "
                           "MATH (the answer is then cut and scored wrong); generation.think: \"off\" "
                           "or a larger max_gen_toks if that is not what you measure\n",
                      g->max_gen_toks);
}

int qe_sweep_dry_run(const qe_plan *p, const qe_sweep_opts *o, qe_buf *out, qe_err *err)
{
    sweep s;
    qe_sweep_report r;
    int rc = sweep_init(&s, p, o, &r, err);
    /* a dry run reads the state (if any) to show what a rerun would skip, but never writes */
    if (!rc && (s.state_path = join_path(s.out_dir, QE_SWEEP_STATE_FILE)) && access(s.state_path, F_OK) == 0) {
        if (state_load(&s) == 0)
            apply_state(&s);
    }
    if (rc) {
        sweep_release(&s);
        qe_sweep_report_free(&r);
        return rc;
    }
    const char *kind = qe_plan_engine_kind_name(p->engine.kind);
    char d[32];
    qe_buf_printf(out, "plan %s (%s): engine %s, %zu model%s x %zu task%s, output %s/\n", p->name,
                  p->path ? p->path : "-", kind, p->n_models, p->n_models == 1 ? "" : "s", p->n_tasks,
                  p->n_tasks == 1 ? "" : "s", s.out_dir);
    if (p->engine.kind == QE_PLAN_ENGINE_LMEVAL) {
        const char *ign = lmeval_ignored(p);
        if (ign)
            qe_buf_printf(out, "note: lm-eval has no flag for %s; not passed\n", ign);
    }
    if (p->budget > 0) {
        qe_sweep_format_duration(p->budget, d, sizeof d);
        qe_buf_printf(out, "budget: %s (%.0f s), counted from the start of each invocation\n", d, p->budget);
    } else {
        qe_buf_printf(out, "budget: none\n");
    }
    qe_buf_printf(out, "\ntasks:\n");
    size_t total = 0;
    for (size_t ti = 0; ti < p->n_tasks; ti++) {
        qe_sweep_count c;
        qe_sweep_count_task(p, ti, &c, NULL);
        char lim[32];
        if (p->tasks[ti].limit > 0)
            snprintf(lim, sizeof lim, "%d", p->tasks[ti].limit);
        else
            snprintf(lim, sizeof lim, "all");
        qe_buf_printf(out, "  %-20s limit %-4s -> %zu docs", p->tasks[ti].task, lim, c.docs);
        if (c.clamped)
            qe_buf_printf(out, " (limit %d exceeds the dataset: %zu problems)", p->tasks[ti].limit, c.dataset_size);
        qe_buf_printf(out, " x %zu repeat%s = %zu requests per model%s\n", c.repeats, c.repeats == 1 ? "" : "s",
                      c.requests, p->tasks[ti].priority == QE_PLAN_PRIO_HIGH ? ", high priority" : "");
    }
    for (size_t mi = 0; mi < p->n_models; mi++)
        for (size_t ti = 0; ti < p->n_tasks; ti++)
            if (s.selected[mi] && s.status[mi * p->n_tasks + ti] == QE_SWEEP_PENDING)
                total += s.requests[mi * p->n_tasks + ti];

    qe_sweep_sched_in in = {
        .budget_left = p->budget,
        .has_budget = p->budget > 0,
        .status = s.status,
        .selected = s.selected,
        .requests = s.requests,
        .rate = s.rate,
        .default_rate = o->default_rate,
        .default_startup = o->default_startup,
        .running_model = NO_MODEL,
        .kind = p->engine.kind,
    };
    qe_sweep_schedule sch;
    if ((rc = qe_sweep_schedule_make(p, &in, &sch, err))) {
        sweep_release(&s);
        qe_sweep_report_free(&r);
        return rc;
    }
    double rate = o->default_rate > 0 ? o->default_rate : QE_SWEEP_DEFAULT_RATE;
    double start = o->default_startup > 0 ? o->default_startup : QE_SWEEP_DEFAULT_STARTUP;
    dry_run_generation(p, out);
    qe_buf_printf(out, "\nrun order:\n");
    size_t *starts = calloc(p->n_models, sizeof *starts);
    size_t last = NO_MODEL;
    for (size_t k = 0; k < sch.n_steps && starts; k++) {
        const qe_sweep_step *st = &sch.steps[k];
        const qe_plan_model *m = &p->models[st->model];
        qe_buf name = QE_BUF_INIT;
        qe_plan_output_name(p, st->model, st->task, &name);
        if (p->engine.kind == QE_PLAN_ENGINE_VLLM && st->model != last) {
            starts[st->model]++;
            qe_buf_printf(out, "\n[%s] %s: start vllm serve%s; log %s/%s/vllm_serve.log\n", m->name, m->model,
                          starts[st->model] > 1 ? " again (its normal-priority tasks run after every model's "
                                                  "high-priority ones)" : "",
                          s.out_dir, m->name);
            if (starts[st->model] == 1) {
                qe_engine_spec spec;
                qe_engine_spec_from_plan(&spec, p, st->model);
                qe_buf cmd = QE_BUF_INIT;
                if (qe_engine_dry_run_cmd(&spec, &cmd, err) == 0) {
                    for (const char *line = qe_buf_str(&cmd); *line;) {
                        const char *nl = strchr(line, '\n');
                        size_t len = nl ? (size_t)(nl - line) : strlen(line);
                        qe_buf_printf(out, "    %.*s\n", (int)len, line);
                        line += len + (nl ? 1 : 0);
                    }
                }
                qe_buf_free(&cmd);
                qe_buf_printf(out, "    wait for GET /health = 200 and /v1/models listing '%s'\n", served_name(m));
            }
        } else if (p->engine.kind == QE_PLAN_ENGINE_ENDPOINT && st->model != last) {
            qe_buf_printf(out, "\n[%s] model '%s' on %zu endpoint%s:", m->name, served_name(m), p->engine.n_base_urls,
                          p->engine.n_base_urls == 1 ? "" : "s (problems sharded across them)");
            char shown[1024];
            for (size_t u = 0; u < p->engine.n_base_urls; u++) {
                qe_client_redact_url(p->engine.base_urls[u], shown, sizeof shown); /* no password */
                qe_buf_printf(out, " %s", shown);
            }
            qe_buf_putc(out, '\n');
            for (size_t u = 0; u < p->engine.n_base_urls; u++) {
                char health[1024], models[1024];
                qe_err ue = {0};
                qe_client_redact_url(p->engine.base_urls[u], shown, sizeof shown);
                if (qe_engine_probe_urls(shown, health, models, sizeof health, &ue))
                    qe_buf_printf(out, "    %s: %s\n", shown, ue.msg);
                else
                    qe_buf_printf(out, "    wait for GET %s = 200 and %s listing '%s'\n", health, models,
                                  served_name(m));
            }
        }
        qe_sweep_format_duration(st->est_s, d, sizeof d);
        qe_buf_printf(out, "  %zu. %s x %s: %zu requests -> %s/%s/%s.json (~%s%s)\n", k + 1, m->name,
                      p->tasks[st->task].task, s.requests[st->model * p->n_tasks + st->task], s.out_dir, m->name,
                      qe_buf_str(&name), d,
                      !st->new_server ? "" : p->engine.kind == QE_PLAN_ENGINE_LMEVAL ? " incl. model load"
                                                                                      : " incl. server start");
        if (p->engine.kind == QE_PLAN_ENGINE_LMEVAL) {
            qe_buf j = QE_BUF_INIT, cmd = QE_BUF_INIT;
            qe_buf_printf(&j, "%s/%s/%s.json", s.out_dir, m->name, qe_buf_str(&name));
            if (qe_lmeval_dry_run_cmd(p, st->model, st->task, qe_buf_str(&j), &cmd, err) == 0) {
                for (const char *line = qe_buf_str(&cmd); *line;) {
                    const char *nl = strchr(line, '\n');
                    size_t len = nl ? (size_t)(nl - line) : strlen(line);
                    qe_buf_printf(out, "      %.*s\n", (int)len, line);
                    line += len + (nl ? 1 : 0);
                }
            }
            qe_buf_free(&j);
            qe_buf_free(&cmd);
        }
        qe_buf_free(&name);
        last = st->model;
    }
    for (size_t mi = 0; mi < p->n_models; mi++)
        for (size_t ti = 0; ti < p->n_tasks; ti++) {
            size_t i = mi * p->n_tasks + ti;
            if (s.status[i] == QE_SWEEP_DONE)
                qe_buf_printf(out, "  already done: %s x %s (%s)%s\n", p->models[mi].name, p->tasks[ti].task,
                              r.pairs[i].results_path ? r.pairs[i].results_path : "no file",
                              o->force ? "" : "; --force redoes it");
        }
    size_t skipped_req = 0;
    for (size_t k = 0; k < sch.n_skipped; k++)
        skipped_req += s.requests[sch.skipped[k].model * p->n_tasks + sch.skipped[k].task];
    qe_buf_printf(out, "\ntotal: %zu requests", total);
    if (skipped_req)
        qe_buf_printf(out, " (%zu of them in pairs the budget plan below would skip)", skipped_req);
    if (p->engine.kind != QE_PLAN_ENGINE_ENDPOINT)
        qe_buf_printf(out, ", %zu server start%s in the order above", sch.server_starts,
                      sch.server_starts == 1 ? "" : "s");
    qe_sweep_format_duration(sch.est_plain_s, d, sizeof d);
    qe_buf_printf(out, "\nestimate: ~%s in plan order at %.2f requests/s", d, rate);
    if (p->engine.kind != QE_PLAN_ENGINE_ENDPOINT) {
        char st[32];
        qe_sweep_format_duration(start, st, sizeof st);
        qe_buf_printf(out, " and %s per server start", st);
    }
    qe_buf_printf(out, " (%s until measured; the plan is re-made after every task)\n",
                  o->default_rate > 0 || o->default_startup > 0 ? "as assumed by --assume-rate/--assume-startup"
                                                                : "conservative defaults");
    if (p->budget <= 0) {
        qe_buf_printf(out, "budget plan: no budget; plan order\n");
    } else if (!sch.priority_mode) {
        qe_sweep_format_duration(p->budget, d, sizeof d);
        qe_buf_printf(out, "budget plan: fits in %s; plan order\n", d);
    } else {
        qe_sweep_format_duration(p->budget, d, sizeof d);
        qe_buf_printf(out, "budget plan: does not fit in %s at these rates: high-priority tasks of every "
                      "model first, then the rest as time allows", d);
        bool twice = false;
        for (size_t mi = 0; starts && mi < p->n_models; mi++)
            twice |= starts[mi] > 1;
        qe_buf_printf(out, "%s\n", twice ? "; servers of some models start twice" : "");
        if (sch.est_s > p->budget) { /* the high-priority work alone does not fit */
            char need[32];
            qe_sweep_format_duration(sch.est_s, need, sizeof need);
            qe_buf_printf(out, "  warning: the high-priority tasks alone need ~%s, more than %s: the deadline "
                          "will cut them (answers kept; a rerun resumes), and servers may be started for "
                          "too little time to use them\n",
                          need, d);
        }
        for (size_t k = 0; k < sch.n_skipped; k++)
            qe_buf_printf(out, "  would skip %s x %s: %s\n", p->models[sch.skipped[k].model].name,
                          p->tasks[sch.skipped[k].task].task, sch.skipped[k].reason);
    }
    free(starts);
    qe_sweep_schedule_free(&sch);
    sweep_release(&s);
    qe_sweep_report_free(&r);
    return out->data ? 0 : qe_err_set(err, QE_ENOMEM, "out of memory");
}

/* ---- final table ------------------------------------------------------- */

/* The filter a task's value is taken from (lm-eval's first: the runner's
 * main value, and the key qe_lmeval_read_metric prefers), or NULL when the
 * task has only one, so there is nothing to tell apart. */
static const char *main_filter_if_several(const char *task)
{
    const qe_task *t = qe_task_find(task);
    return t && qe_task_filter_count(t) > 1 ? qe_task_filter(t, 0) : NULL;
}

int qe_sweep_format_table(const qe_plan *p, const qe_sweep_report *r, qe_buf *out)
{
    /* a filter column only when some task has several (gsm8k: strict-match
     * and flexible-extract); single-filter tasks show lm-eval's "none" */
    size_t wm = 5, wt = 4, wf = 0, wx = strlen("exact_match");
    for (size_t mi = 0; mi < p->n_models; mi++)
        wm = strlen(p->models[mi].name) > wm ? strlen(p->models[mi].name) : wm;
    for (size_t ti = 0; ti < p->n_tasks; ti++) {
        wt = strlen(p->tasks[ti].task) > wt ? strlen(p->tasks[ti].task) : wt;
        const char *fl = main_filter_if_several(p->tasks[ti].task);
        if (fl && strlen(fl) > wf)
            wf = strlen(fl) > strlen("filter") ? strlen(fl) : strlen("filter");
    }
    qe_buf_printf(out, "%-*s  %-*s  ", (int)wm, "model", (int)wt, "task");
    if (wf)
        qe_buf_printf(out, "%-*s  ", (int)wf, "filter");
    qe_buf_printf(out, "%-*s  %8s  %8s  %5s  %s\n", (int)wx, "metric", "value", "stderr", "n", "status");
    for (size_t mi = 0; mi < p->n_models; mi++)
        for (size_t ti = 0; ti < p->n_tasks; ti++) {
            const qe_sweep_pair *q = &r->pairs[mi * p->n_tasks + ti];
            char v[32] = "-", e[32] = "-", n[32] = "-";
            if (isfinite(q->accuracy))
                snprintf(v, sizeof v, "%.4f", q->accuracy);
            if (isfinite(q->stderr_))
                snprintf(e, sizeof e, "%.4f", q->stderr_);
            if (q->n)
                snprintf(n, sizeof n, "%zu", q->n);
            qe_buf_printf(out, "%-*s  %-*s  ", (int)wm, p->models[mi].name, (int)wt, p->tasks[ti].task);
            if (wf) {
                const char *fl = main_filter_if_several(p->tasks[ti].task);
                qe_buf_printf(out, "%-*s  ", (int)wf, fl ? fl : "none");
            }
            qe_buf_printf(out, "%-*s  %8s  %8s  %5s  %s%s%s\n", (int)wx, "exact_match", v, e, n,
                          qe_sweep_status_name(q->status), q->reason[0] ? ": " : "", q->reason);
        }
    return out->data ? 0 : QE_ENOMEM;
}
