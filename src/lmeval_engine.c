/* lmeval_engine: run lm-evaluation-harness itself as a subprocess per
 * model x task and pick up the files it wrote (see lmeval_engine.h). */
#include "lmeval_engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "lmeval_io.h"
#include "paths.h"
#include "proc.h"
#include "task.h"

#define MAX_ARGS 64
#define MAX_LOG_SUFFIX 1000
#define MAX_DIR_ENTRIES 100000

void qe_lmeval_strv_free(char **v)
{
    qe_proc_strv_free(v);
}

int qe_lmeval_build_argv(const qe_plan *p, size_t mi, size_t ti, const char *out_json, char ***argv, qe_err *err)
{
    *argv = NULL;
    if (mi >= p->n_models || ti >= p->n_tasks)
        return qe_err_set(err, QE_EINVAL, "lm-eval: pair out of range");
    const qe_plan_model *m = &p->models[mi];
    const qe_plan_engine_args *a = &m->args;
    const qe_plan_task *t = &p->tasks[ti];
    const qe_plan_generation *g = &p->generation;
    qe_proc_strv s = {0};
    char num[64];
    qe_buf b = QE_BUF_INIT;

    qe_proc_strv_push(&s, p->engine.binary ? p->engine.binary : "python");
    qe_proc_strv_push(&s, "-m");
    qe_proc_strv_push(&s, "lm_eval");
    qe_proc_strv_push(&s, "--model");
    qe_proc_strv_push(&s, "vllm");
    /* model_args in the document's order */
    qe_buf_printf(&b, "pretrained=%s", m->model);
    if (a->tensor_parallel_size > 0)
        qe_buf_printf(&b, ",tensor_parallel_size=%d", a->tensor_parallel_size);
    if (a->gpu_memory_utilization > 0) {
        qe_proc_fmt_double(num, sizeof num, a->gpu_memory_utilization);
        qe_buf_printf(&b, ",gpu_memory_utilization=%s", num);
    }
    if (a->max_model_len > 0)
        qe_buf_printf(&b, ",max_model_len=%d", a->max_model_len);
    if (a->max_num_seqs > 0)
        qe_buf_printf(&b, ",max_num_seqs=%d", a->max_num_seqs);
    if (a->download_dir)
        qe_buf_printf(&b, ",download_dir=%s", a->download_dir);
    /* lm-eval's vllm backend takes enable_thinking (>= 0.4.9; its default
     * moved False -> True -> template default across versions, so say it) */
    if (g->think == QE_PLAN_THINK_OFF)
        qe_buf_puts(&b, ",enable_thinking=False");
    else if (g->think == QE_PLAN_THINK_ON)
        qe_buf_puts(&b, ",enable_thinking=True");
    qe_proc_strv_push(&s, "--model_args");
    qe_proc_strv_push(&s, qe_buf_str(&b));
    qe_proc_strv_push(&s, "--tasks");
    qe_proc_strv_push(&s, t->task);
    qe_proc_strv_push(&s, "--batch_size");
    qe_proc_strv_push(&s, "1");
    if (t->limit > 0) {
        qe_proc_strv_push(&s, "--limit");
        snprintf(num, sizeof num, "%d", t->limit);
        qe_proc_strv_push(&s, num);
    }
    if (g->apply_chat_template)
        qe_proc_strv_push(&s, "--apply_chat_template");
    if (g->system_instruction) {
        qe_proc_strv_push(&s, "--system_instruction");
        qe_proc_strv_push(&s, g->system_instruction);
    }
    /* Only what the plan sets; greedy (temperature 0) is lm-eval's default
     * for these tasks, so it is not written out (the document does not). */
    qe_buf_reset(&b);
    if (g->max_gen_toks > 0)
        qe_buf_printf(&b, "max_gen_toks=%d", g->max_gen_toks);
    if (g->has_temperature && g->temperature != 0) {
        qe_proc_fmt_double(num, sizeof num, g->temperature);
        qe_buf_printf(&b, "%stemperature=%s", b.len ? "," : "", num);
    }
    if (g->has_top_p) {
        qe_proc_fmt_double(num, sizeof num, g->top_p);
        qe_buf_printf(&b, "%stop_p=%s", b.len ? "," : "", num);
    }
    if (b.len) {
        qe_proc_strv_push(&s, "--gen_kwargs");
        qe_proc_strv_push(&s, qe_buf_str(&b));
    }
    if (g->has_seed) {
        qe_proc_strv_push(&s, "--seed");
        snprintf(num, sizeof num, "%ld", g->seed);
        qe_proc_strv_push(&s, num);
    }
    qe_proc_strv_push(&s, "--log_samples");
    qe_proc_strv_push(&s, "--output_path");
    qe_proc_strv_push(&s, out_json);
    qe_buf_free(&b);
    if (s.oom || s.n > MAX_ARGS) {
        qe_lmeval_strv_free(s.v);
        return qe_err_set(err, QE_ENOMEM, "out of memory building the lm-eval command");
    }
    *argv = s.v;
    return 0;
}

int qe_lmeval_dry_run_cmd(const qe_plan *p, size_t mi, size_t ti, const char *out_json, qe_buf *out, qe_err *err)
{
    char **argv;
    int rc = qe_lmeval_build_argv(p, mi, ti, out_json, &argv, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < p->n_env; i++) {
        qe_buf_printf(out, "env %s=", p->env[i].key);
        qe_proc_shell_quote(out, p->env[i].value);
        qe_buf_putc(out, '\n');
    }
    for (size_t i = 0; argv[i]; i++) {
        if (i)
            qe_buf_putc(out, ' ');
        qe_proc_shell_quote(out, argv[i]);
    }
    qe_lmeval_strv_free(argv);
    return qe_buf_putc(out, '\n') ? qe_err_set(err, QE_ENOMEM, "out of memory") : 0;
}

static void read_tail(const char *path, char *out, size_t outsz, int max_lines)
{
    out[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    char buf[16384];
    long start = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        start = sz > (long)sizeof buf - 1 ? sz - (long)sizeof buf + 1 : 0;
    }
    fseek(f, start, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    int lines = 0;
    size_t i = n;
    while (i > 0) {
        if (buf[i - 1] == '\n' && ++lines >= max_lines)
            break;
        i--;
    }
    size_t len = strlen(buf + i);
    if (len >= outsz) { /* keep the end: the cause is usually on the last lines */
        i += len - (outsz - 1);
        len = outsz - 1;
    }
    memcpy(out, buf + i, len);
    out[len] = '\0';
}

/* Names in dir starting with prefix and ending with suffix (malloc'd list). */
static int list_matching(const char *dir, const char *prefix, const char *suffix, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    qe_proc_strv s = {0};
    size_t pl = strlen(prefix), xl = strlen(suffix), seen = 0;
    struct dirent *de;
    while ((de = readdir(d)) && seen++ < MAX_DIR_ENTRIES) {
        size_t l = strlen(de->d_name);
        if (l >= pl + xl && !strncmp(de->d_name, prefix, pl) && !strcmp(de->d_name + l - xl, suffix))
            qe_proc_strv_push(&s, de->d_name);
    }
    closedir(d);
    if (s.oom) {
        qe_lmeval_strv_free(s.v);
        return -1;
    }
    *out = s.v;
    *n = s.n;
    return 0;
}

int qe_lmeval_locate(const char *dir, const char *stem, const char *task, char *const *before, size_t n_before,
                     char **results_path, char **samples_path, qe_err *err)
{
    *results_path = *samples_path = NULL;
    qe_buf pre = QE_BUF_INIT;
    qe_buf_printf(&pre, "%s_", stem);
    char **names;
    size_t n;
    if (list_matching(dir, qe_buf_str(&pre), ".json", &names, &n)) {
        qe_buf_free(&pre);
        return qe_err_set(err, QE_EIO, "%s: cannot list: %s", dir, strerror(errno));
    }
    const char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        bool old = false;
        for (size_t j = 0; j < n_before && !old; j++)
            old = !strcmp(names[i], before[j]);
        /* the date id is what follows "<stem>_": ISO text, so the greatest is the newest */
        if (!old && (!best || strcmp(names[i], best) > 0))
            best = names[i];
    }
    int rc = 0;
    if (!best) {
        rc = qe_err_set(err, QE_EINVAL, "%s: no new %s<date>.json written by lm-eval", dir, qe_buf_str(&pre));
    } else {
        qe_buf b = QE_BUF_INIT;
        qe_buf_printf(&b, "%s/%s", dir, best);
        *results_path = qe_buf_detach(&b);
        size_t bl = strlen(best);
        qe_buf_printf(&b, "%s/samples_%s_%.*s.jsonl", dir, task, (int)(bl - pre.len - 5), best + pre.len);
        if (access(qe_buf_str(&b), R_OK) == 0)
            *samples_path = qe_buf_detach(&b);
        qe_buf_free(&b);
    }
    qe_lmeval_strv_free(names);
    qe_buf_free(&pre);
    return rc;
}

int qe_lmeval_read_metric(const char *results_path, const char *task, double *acc, double *stderr_, size_t *n,
                          qe_err *err)
{
    *acc = *stderr_ = NAN;
    *n = 0;
    struct stat st;
    if (stat(results_path, &st) == 0 && (long long)st.st_size > QE_LMEVAL_RESULTS_MAX)
        return qe_err_set(err, QE_ELIMIT, "%s: %lld bytes, more than a results file can be",
                          results_path, (long long)st.st_size);
    json_error_t je;
    json_t *root = json_load_file(results_path, JSON_DECODE_ANY, &je);
    if (!root)
        return qe_err_set(err, QE_EINVAL, "%s:%d: %s", results_path, je.line, je.text);
    json_t *r = json_object_get(json_object_get(root, "results"), task);
    if (!json_is_object(r)) {
        json_decref(root);
        return qe_err_set(err, QE_EINVAL, "%s: no results.%s object", results_path, task);
    }
    /* the task's first filter (gsm8k: strict-match, what qeval run and the
     * sweep's table report), then "none", then any metric */
    const qe_task *t = qe_task_find(task);
    char main_key[128] = "";
    if (t)
        snprintf(main_key, sizeof main_key, "%s,%s", qe_task_metric(t), qe_task_filter(t, 0));
    const char *key = main_key[0] && json_object_get(r, main_key) ? main_key
                      : json_object_get(r, "exact_match,none") ? "exact_match,none" : NULL;
    const char *k;
    json_t *v;
    if (!key)
        json_object_foreach(r, k, v) {
            if (json_is_number(v) && !strstr(k, "_stderr") && strchr(k, ',') && strcmp(k, "sample_len")) {
                key = k;
                break;
            }
        }
    if (key) {
        *acc = json_number_value(json_object_get(r, key));
        const char *comma = strchr(key, ',');
        char skey[256];
        snprintf(skey, sizeof skey, "%.*s_stderr%s", (int)(comma - key), key, comma);
        json_t *sv = json_object_get(r, skey);
        if (json_is_number(sv))
            *stderr_ = json_number_value(sv);
    }
    json_t *ns = json_object_get(json_object_get(json_object_get(root, "n-samples"), task), "effective");
    if (json_is_integer(ns) && json_integer_value(ns) >= 0)
        *n = (size_t)json_integer_value(ns);
    json_decref(root);
    if (!key)
        return qe_err_set(err, QE_EINVAL, "%s: results.%s has no metric", results_path, task);
    return 0;
}

void qe_lmeval_result_free(qe_lmeval_result *r)
{
    if (!r)
        return;
    free(r->results_path);
    free(r->samples_path);
    free(r->log_path);
    r->results_path = r->samples_path = r->log_path = NULL;
}

static void kill_group(pid_t pgid, double grace)
{
    if (kill(-pgid, SIGTERM) && errno == ESRCH)
        return;
    double t0 = qe_proc_now();
    while (qe_proc_now() - t0 < grace) {
        if (qe_proc_group_gone(pgid))
            return;
        int st;
        waitpid(pgid, &st, WNOHANG); /* reap the leader so the group can vanish */
        qe_proc_sleep(0.05);
    }
    kill(-pgid, SIGKILL);
}

int qe_lmeval_run(const qe_plan *p, size_t mi, size_t ti, const char *out_json, const char *log_path,
                  volatile sig_atomic_t *stop, double grace, qe_lmeval_result *res, qe_err *err)
{
    memset(res, 0, sizeof *res);
    res->accuracy = res->stderr_ = NAN;
    if (grace <= 0)
        grace = 30;
    const char *task = p->tasks[ti].task;
    /* directory and stem of the output path */
    const char *slash = strrchr(out_json, '/');
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - out_json) : 1, slash ? out_json : ".");
    const char *base = slash ? slash + 1 : out_json;
    size_t bl = strlen(base);
    char stem[1024];
    snprintf(stem, sizeof stem, "%.*s", (int)(bl > 5 && !strcmp(base + bl - 5, ".json") ? bl - 5 : bl), base);
    if (qe_paths_mkdirs(dir))
        return qe_err_set(err, QE_EIO, "%s: cannot create directory: %s", dir, strerror(errno));

    char **before;
    size_t n_before;
    qe_buf pre = QE_BUF_INIT;
    qe_buf_printf(&pre, "%s_", stem);
    int lrc = list_matching(dir, qe_buf_str(&pre), ".json", &before, &n_before);
    qe_buf_free(&pre);
    if (lrc)
        return qe_err_set(err, QE_EIO, "%s: cannot list: %s", dir, strerror(errno));

    char **argv = NULL, **envp = NULL;
    char *bin = NULL;
    int rc = qe_lmeval_build_argv(p, mi, ti, out_json, &argv, err);
    if (!rc && !(envp = qe_proc_envp_merge(p->env, p->n_env)))
        rc = qe_err_set(err, QE_ENOMEM, "out of memory");
    if (!rc && !(bin = qe_engine_which(argv[0], qe_proc_envp_get(envp, "PATH"))))
        rc = qe_err_set(err, QE_EINVAL, "'%s' not found on PATH or not executable (set engine.binary)", argv[0]);
    int logfd = -1;
    if (!rc && (logfd = qe_proc_open_new_log(log_path, MAX_LOG_SUFFIX, 0, &res->log_path)) < 0)
        rc = qe_err_set(err, QE_EIO, "%s: cannot create log: %s", log_path, strerror(errno));
    int nullfd = rc ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = -1;
    if (!rc) {
        qe_proc_log_cmdline(logfd, argv);
        pid = qe_proc_spawn_group(bin, argv, envp, nullfd, logfd, "qeval: exec of the lm-eval python failed\n", NULL, NULL);
        if (pid < 0)
            rc = qe_err_set(err, QE_EIO, "fork: %s", strerror(errno));
    }
    if (logfd >= 0)
        close(logfd);
    if (nullfd >= 0)
        close(nullfd);
    free(bin);
    qe_lmeval_strv_free(argv);
    qe_lmeval_strv_free(envp);
    if (rc) {
        qe_lmeval_strv_free(before);
        return rc;
    }

    double t0 = qe_proc_now();
    int st = 0;
    bool stopped = false;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            st = -1;
            break;
        }
        if (stop && *stop) {
            kill_group(pid, grace);
            waitpid(pid, &st, 0);
            stopped = true;
            break;
        }
        qe_proc_sleep(0.05);
    }
    res->seconds = qe_proc_now() - t0;
    res->exit_status = st;
    /* Leftover workers (vLLM's in-process engine) must not outlive the run. */
    if (!qe_proc_group_gone(pid))
        kill_group(pid, grace);
    if (stopped) {
        qe_lmeval_strv_free(before);
        return qe_err_set(err, QE_EINTR, "lm-eval for %s x %s stopped by the user (log: %s)",
                          p->models[mi].name, task, res->log_path);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        read_tail(res->log_path, res->log_tail, sizeof res->log_tail, 30);
        enum qe_engine_cause c = qe_engine_classify_log(res->log_tail);
        char how[64];
        if (WIFEXITED(st))
            snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(st));
        else
            snprintf(how, sizeof how, "was killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        qe_lmeval_strv_free(before);
        return qe_err_set(err, QE_ESERVER, "lm-eval for %s x %s %s%s%s (log: %s)", p->models[mi].name, task, how,
                          c != QE_ENGINE_CAUSE_UNKNOWN && c != QE_ENGINE_CAUSE_NONE ? "; likely cause: " : "",
                          c != QE_ENGINE_CAUSE_UNKNOWN && c != QE_ENGINE_CAUSE_NONE ? qe_engine_cause_name(c) : "",
                          res->log_path);
    }
    rc = qe_lmeval_locate(dir, stem, task, before, n_before, &res->results_path, &res->samples_path, err);
    qe_lmeval_strv_free(before);
    if (rc)
        return rc;
    return qe_lmeval_read_metric(res->results_path, task, &res->accuracy, &res->stderr_, &res->n, err);
}
