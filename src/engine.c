/* engine: spawn, watch and stop `vllm serve` (see engine.h, docs/vllm.md).
 *
 * Everything that can go wrong with a GPU server at 2 a.m. is turned into a
 * failure struct rather than a hang: the child runs in its own process group
 * (so tensor-parallel workers die with it), readiness is polled with short
 * HTTP timeouts while waitpid(WNOHANG) watches for an early exit, and the log
 * tail plus a cause classification explain why it died. All allocation for
 * the child (argv, envp, binary path) happens before fork. */
#include "engine.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "proc.h"

struct qe_engine {
    pid_t pid;        /* main process; also the process group id */
    bool reaped;
    int wait_status;
    int port;
    char base_url[128];
    char *log_path;
    double stop_grace;
    double started_s;
    bool check_gpu;
    long gpu_mib_before;
    char *quant[QE_ENGINE_MAX_QUANT_LINES];
    size_t n_quant;
};

/* ---- small helpers ----------------------------------------------------- */

void qe_engine_strv_free(char **v)
{
    qe_proc_strv_free(v);
}

static void sv_pushf(qe_proc_strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sv_pushf(qe_proc_strv *s, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    qe_proc_strv_push(s, tmp);
}

char *qe_engine_which(const char *name, const char *path)
{
    if (!name || !*name)
        return NULL;
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? strdup(name) : NULL;
    if (!path)
        path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    const char *p = path;
    while (1) {
        const char *e = strchr(p, ':');
        size_t dl = e ? (size_t)(e - p) : strlen(p);
        qe_buf b = QE_BUF_INIT;
        if (dl == 0)
            qe_buf_puts(&b, ".");
        else
            qe_buf_append(&b, p, dl);
        qe_buf_printf(&b, "/%s", name);
        struct stat st;
        if (b.data && stat(b.data, &st) == 0 && S_ISREG(st.st_mode) && access(b.data, X_OK) == 0)
            return qe_buf_detach(&b);
        qe_buf_free(&b);
        if (!e)
            break;
        p = e + 1;
    }
    return NULL;
}

/* port < 0: "--port AUTO" (dry run: the free port is chosen at start). */
static int build_argv(const qe_engine_spec *spec, int port, char ***argv_out, qe_err *err)
{
    *argv_out = NULL;
    if (!spec->model || !*spec->model)
        return qe_err_set(err, QE_EINVAL, "engine: no model given");
    const qe_plan_engine_args *a = spec->args;
    qe_proc_strv s = {0};
    qe_proc_strv_push(&s, spec->binary ? spec->binary : "vllm");
    qe_proc_strv_push(&s, "serve");
    qe_proc_strv_push(&s, spec->model);
    if (a && a->tensor_parallel_size) {
        qe_proc_strv_push(&s, "--tensor-parallel-size");
        sv_pushf(&s, "%d", a->tensor_parallel_size);
    }
    if (a && a->gpu_memory_utilization > 0) {
        char d[40];
        qe_proc_fmt_double(d, sizeof d, a->gpu_memory_utilization);
        qe_proc_strv_push(&s, "--gpu-memory-utilization");
        qe_proc_strv_push(&s, d);
    }
    if (a && a->max_model_len) {
        qe_proc_strv_push(&s, "--max-model-len");
        sv_pushf(&s, "%d", a->max_model_len);
    }
    if (a && a->max_num_seqs) {
        qe_proc_strv_push(&s, "--max-num-seqs");
        sv_pushf(&s, "%d", a->max_num_seqs);
    }
    if (a && a->download_dir) {
        qe_proc_strv_push(&s, "--download-dir");
        qe_proc_strv_push(&s, a->download_dir);
    }
    int p = port > 0 ? port : a ? a->port : 0;
    if (p > 0) {
        qe_proc_strv_push(&s, "--port");
        sv_pushf(&s, "%d", p);
    } else if (port < 0) {
        qe_proc_strv_push(&s, "--port");
        qe_proc_strv_push(&s, "AUTO");
    }
    qe_proc_strv_push(&s, "--served-model-name");
    qe_proc_strv_push(&s, spec->served_name ? spec->served_name : spec->model);
    for (size_t i = 0; a && i < a->n_extra_args; i++)
        qe_proc_strv_push(&s, a->extra_args[i]);
    if (s.oom) {
        qe_engine_strv_free(s.v);
        return qe_err_set(err, QE_ENOMEM, "out of memory");
    }
    *argv_out = s.v;
    return 0;
}

int qe_engine_build_argv(const qe_engine_spec *spec, int port, char ***argv_out, qe_err *err)
{
    return build_argv(spec, port < 0 ? 0 : port, argv_out, err);
}

int qe_engine_dry_run_cmd(const qe_engine_spec *spec, qe_buf *out, qe_err *err)
{
    char **argv;
    int rc = build_argv(spec, -1, &argv, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < spec->n_env; i++) {
        qe_buf_puts(out, "env ");
        qe_buf_printf(out, "%s=", spec->env[i].key);
        qe_proc_shell_quote(out, spec->env[i].value);
        qe_buf_putc(out, '\n');
    }
    for (size_t i = 0; argv[i]; i++) {
        if (i)
            qe_buf_putc(out, ' ');
        qe_proc_shell_quote(out, argv[i]);
    }
    rc = qe_buf_putc(out, '\n') ? qe_err_set(err, QE_ENOMEM, "out of memory") : 0;
    qe_engine_strv_free(argv);
    return rc;
}

void qe_engine_spec_from_plan(qe_engine_spec *spec, const qe_plan *plan, size_t mi)
{
    const qe_plan_model *m = &plan->models[mi];
    memset(spec, 0, sizeof *spec);
    spec->binary = plan->engine.binary;
    spec->model = m->model;
    spec->served_name = m->served_model_name;
    spec->args = &m->args;
    spec->env = plan->env;
    spec->n_env = plan->n_env;
    spec->stop_grace = plan->engine.stop_grace;
    spec->startup_timeout = m->args.startup_timeout;
    spec->check_gpu_memory = true;
}

/* ---- ports ------------------------------------------------------------- */

bool qe_engine_port_is_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    /* Like uvicorn: TIME_WAIT from the last server does not count as busy. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

static int pick_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* ---- HTTP -------------------------------------------------------------- */

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
    qe_buf *b = ud;
    if (b->len + sz * n > (1u << 20))
        return 0; /* bounded: /v1/models is small */
    return qe_buf_append(b, p, sz * n) ? 0 : sz * n;
}

/* GET url; returns HTTP status (0 = no answer). body may be NULL. */
static long http_get(const char *url, const char *api_key, qe_buf *body)
{
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    qe_buf sink = QE_BUF_INIT;
    struct curl_slist *h = NULL;
    if (api_key && *api_key) {
        qe_buf auth = QE_BUF_INIT;
        qe_buf_printf(&auth, "Authorization: Bearer %s", api_key);
        h = curl_slist_append(h, qe_buf_str(&auth));
        qe_buf_free(&auth);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body ? body : &sink);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    qe_buf_free(&sink);
    return code;
}

/* The URL of path on the server at base_url, mapped exactly as the client
 * maps it (qe_client_url): a base URL with or without "/v1" and trailing
 * '/' names the same server; /health is at its root, /v1/models under /v1. */
static int server_url(const char *base_url, const char *path, char *buf, size_t cap, qe_err *err)
{
    qe_client_opts o;
    qe_client_opts_default(&o);
    o.base_url = base_url;
    int rc = qe_client_url(&o, path, buf, cap);
    char shown[1024];
    if (rc)
        qe_client_redact_url(base_url, shown, sizeof shown);
    if (rc == QE_EINVAL)
        return qe_err_set(err, rc, "base URL must start with http:// or https:// (got '%.100s')", shown);
    if (rc)
        return qe_err_set(err, rc, "base URL too long (%.100s...)", shown);
    return 0;
}

int qe_engine_probe_urls(const char *base_url, char *health, char *models, size_t cap, qe_err *err)
{
    int rc = server_url(base_url, "/health", health, cap, err);
    return rc ? rc : server_url(base_url, "/v1/models", models, cap, err);
}

/* 1 if /v1/models lists name, 0 if not, -1 if it could not be read. */
static int models_lists(const char *url, const char *api_key, const char *name, qe_buf *seen)
{
    qe_buf body = QE_BUF_INIT;
    long code = http_get(url, api_key, &body);
    int found = -1;
    json_t *j = code == 200 ? json_loadb(body.data ? body.data : "", body.len, 0, NULL) : NULL;
    json_t *data = j ? json_object_get(j, "data") : NULL;
    if (json_is_array(data)) {
        found = 0;
        size_t i;
        json_t *m;
        json_array_foreach(data, i, m) {
            const char *id = json_string_value(json_object_get(m, "id"));
            if (!id)
                continue;
            if (seen)
                qe_buf_printf(seen, "%s%s", seen->len ? ", " : "", id);
            if (!strcmp(id, name))
                found = 1;
        }
    }
    json_decref(j);
    qe_buf_free(&body);
    return found;
}

/* Tells rep how long the wait has lasted when its interval has passed
 * since *told (the start counts as told at t0). */
static void report_wait(const qe_engine_wait_report *rep, const char *url, double t0, double *told, double timeout)
{
    double now = qe_proc_now();
    if (rep && rep->fn && rep->every > 0 && now - *told >= rep->every) {
        rep->fn(rep->ud, url, now - t0, timeout);
        *told = now;
    }
}

int qe_engine_wait_endpoint(const char *base_url, const char *api_key, const char *expect_model, double timeout,
                            qe_err *err)
{
    return qe_engine_wait_endpoint_reporting(base_url, api_key, expect_model, timeout, NULL, err);
}

int qe_engine_wait_endpoint_reporting(const char *base_url, const char *api_key, const char *expect_model,
                                      double timeout, const qe_engine_wait_report *rep, qe_err *err)
{
    char health[1024], models[1024];
    int rc = qe_engine_probe_urls(base_url, health, models, sizeof health, err);
    if (rc)
        return rc;
    /* what messages show: no user:password@ */
    char health_shown[1024], models_shown[1024];
    qe_client_redact_url(health, health_shown, sizeof health_shown);
    qe_client_redact_url(models, models_shown, sizeof models_shown);
    double t0 = qe_proc_now(), told = t0;
    if (rep && rep->fn)
        rep->fn(rep->ud, health_shown, 0, timeout);
    long code = 0;
    for (;;) {
        code = http_get(health, api_key, NULL);
        if (code == 200 || qe_proc_now() - t0 >= timeout)
            break;
        report_wait(rep, health_shown, t0, &told, timeout);
        qe_proc_sleep(0.5);
    }
    if (code != 200)
        return qe_err_set(err, QE_ENET, "%s: %s after %.0f s", health_shown, code ? "not 200" : "no answer",
                          timeout);
    if (expect_model) {
        qe_buf seen = QE_BUF_INIT;
        int f = models_lists(models, api_key, expect_model, &seen);
        if (f < 0)
            rc = qe_err_set(err, QE_ESERVER, "%s: no valid model list", models_shown);
        else if (f == 0)
            rc = qe_err_set(err, QE_ESERVER, "%s does not list '%s' (it serves: %s)", models_shown, expect_model,
                            qe_buf_str(&seen));
        qe_buf_free(&seen);
    }
    return rc;
}

/* ---- logs -------------------------------------------------------------- */

/* Reads up to the last max bytes of a file. */
static int read_tail_bytes(const char *path, size_t max, qe_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)max ? size - (off_t)max : 0;
    lseek(fd, from, SEEK_SET);
    char chunk[8192];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        qe_buf_append(out, chunk, (size_t)n);
    close(fd);
    return 0;
}

static void log_tail(const char *path, char *out, size_t outsz)
{
    qe_buf b = QE_BUF_INIT;
    out[0] = '\0';
    if (read_tail_bytes(path, 1u << 16, &b) || !b.len) {
        qe_buf_free(&b);
        return;
    }
    size_t end = b.len;
    while (end > 0 && b.data[end - 1] == '\n')
        end--;
    size_t start = end;
    int lines = 0;
    while (start > 0) {
        if (b.data[start - 1] == '\n' && ++lines == QE_ENGINE_TAIL_LINES)
            break;
        start--;
    }
    size_t len = end - start;
    if (len >= outsz) { /* keep the end, which holds the error */
        start = end - (outsz - 1);
        len = outsz - 1;
    }
    memcpy(out, b.data + start, len);
    out[len] = '\0';
    qe_buf_free(&b);
}

static bool contains_ci(const char *hay, const char *needle)
{
    return strcasestr(hay, needle) != NULL;
}

enum qe_engine_cause qe_engine_classify_log(const char *t)
{
    if (!t)
        return QE_ENGINE_CAUSE_UNKNOWN;
    if (strstr(t, "CUDA out of memory") || strstr(t, "torch.OutOfMemoryError") ||
        strstr(t, "No available memory for the cache blocks") || strstr(t, "torch.cuda.OutOfMemoryError"))
        return QE_ENGINE_CAUSE_OOM;
    if (strstr(t, "unrecognized arguments") || strstr(t, "error: argument"))
        return QE_ENGINE_CAUSE_BAD_FLAG;
    if (strstr(t, "Repository Not Found") || strstr(t, "is not a local folder and is not a valid model identifier") ||
        strstr(t, "404 Client Error"))
        return QE_ENGINE_CAUSE_NOT_FOUND;
    if (strstr(t, "Address already in use"))
        return QE_ENGINE_CAUSE_PORT_IN_USE;
    return QE_ENGINE_CAUSE_UNKNOWN;
}

const char *qe_engine_cause_name(enum qe_engine_cause c)
{
    switch (c) {
    case QE_ENGINE_CAUSE_NONE: return "none";
    case QE_ENGINE_CAUSE_OOM: return "CUDA out of memory";
    case QE_ENGINE_CAUSE_BAD_FLAG: return "unknown or invalid flag";
    case QE_ENGINE_CAUSE_NOT_FOUND: return "model not found";
    case QE_ENGINE_CAUSE_PORT_IN_USE: return "port in use";
    case QE_ENGINE_CAUSE_TIMEOUT: return "startup timeout";
    case QE_ENGINE_CAUSE_NAME: return "served model name not listed";
    case QE_ENGINE_CAUSE_EXEC: return "cannot run the vllm binary";
    case QE_ENGINE_CAUSE_UNKNOWN: return "unknown";
    }
    return "unknown";
}

/* Lines worth keeping to label results with the kernels vLLM really used. */
static void scan_quant_lines(qe_engine *e)
{
    static const char *const keys[] = {"quantiz", "nvfp4", "fp8", "marlin", "cutlass", "fp4",
                                       "kv cache dtype", "kv_cache_dtype", "compressed-tensors", "modelopt"};
    qe_buf b = QE_BUF_INIT;
    if (read_tail_bytes(e->log_path, 4u << 20, &b) || !b.data) {
        qe_buf_free(&b);
        return;
    }
    char *save = NULL;
    for (char *line = strtok_r(b.data, "\n", &save); line && e->n_quant < QE_ENGINE_MAX_QUANT_LINES;
         line = strtok_r(NULL, "\n", &save)) {
        bool hit = false;
        for (size_t k = 0; k < sizeof keys / sizeof *keys && !hit; k++)
            hit = contains_ci(line, keys[k]);
        if (!hit)
            continue;
        size_t n = strlen(line);
        if (n > 512)
            n = 512;
        char *copy = strndup(line, n);
        if (copy)
            e->quant[e->n_quant++] = copy;
    }
    qe_buf_free(&b);
}

/* ---- GPU memory (optional) -------------------------------------------- */

/* Sum of memory.used over all GPUs in MiB, or -1. */
static long gpu_mib_used(void)
{
    char *smi = qe_engine_which("nvidia-smi", NULL);
    if (!smi)
        return -1;
    qe_buf cmd = QE_BUF_INIT;
    qe_proc_shell_quote(&cmd, smi);
    qe_buf_puts(&cmd, " --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null");
    free(smi);
    FILE *f = popen(qe_buf_str(&cmd), "r");
    qe_buf_free(&cmd);
    if (!f)
        return -1;
    long total = 0;
    int rows = 0;
    char line[128];
    while (fgets(line, sizeof line, f) && rows < 64) {
        char *end;
        long v = strtol(line, &end, 10);
        if (end != line && v >= 0) {
            total += v;
            rows++;
        }
    }
    int st = pclose(f);
    return rows && st == 0 ? total : -1;
}

/* ---- process group ----------------------------------------------------- */

static bool reap(qe_engine *e, bool block)
{
    if (e->reaped)
        return true;
    int st;
    pid_t r;
    do
        r = waitpid(e->pid, &st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == e->pid || (r < 0 && errno == ECHILD)) {
        e->reaped = true;
        e->wait_status = r == e->pid ? st : -1;
    }
    return e->reaped;
}

static bool group_gone(pid_t pgid)
{
    return qe_proc_group_gone(pgid);
}

/* SIGTERM, grace, SIGKILL; returns true when SIGKILL was needed. */
static bool kill_group(qe_engine *e, double grace)
{
    bool killed = false;
    if (!group_gone(e->pid) || !e->reaped) {
        kill(-e->pid, SIGTERM);
        double t0 = qe_proc_now();
        while (qe_proc_now() - t0 < grace) {
            reap(e, false);
            if (e->reaped && group_gone(e->pid))
                break;
            qe_proc_sleep(0.05);
        }
        if (!(e->reaped && group_gone(e->pid))) {
            kill(-e->pid, SIGKILL);
            killed = true;
        }
    }
    reap(e, true);
    /* Workers reparented to init are reaped by it shortly after SIGKILL
     * (or never, under a PID 1 that does not reap: zombies count as gone). */
    double t0 = qe_proc_now();
    while (!group_gone(e->pid) && qe_proc_now() - t0 < 10) {
        kill(-e->pid, SIGKILL);
        qe_proc_sleep(0.02);
    }
    return killed;
}

static void engine_release(qe_engine *e)
{
    for (size_t i = 0; i < e->n_quant; i++)
        free(e->quant[i]);
    free(e->log_path);
    free(e);
}

static int start_failed(qe_engine *e, qe_engine_failure *fail, enum qe_engine_cause cause, bool exited,
                        double grace, qe_err *err, const char *what)
{
    if (!exited || !group_gone(e->pid))
        kill_group(e, grace);
    qe_engine_failure local;
    qe_engine_failure *f = fail ? fail : &local;
    memset(f, 0, sizeof *f);
    f->exited = exited;
    f->wait_status = e->wait_status;
    snprintf(f->log_path, sizeof f->log_path, "%s", e->log_path);
    log_tail(e->log_path, f->log_tail, sizeof f->log_tail);
    if (cause == QE_ENGINE_CAUSE_UNKNOWN || (cause == QE_ENGINE_CAUSE_TIMEOUT && f->log_tail[0])) {
        enum qe_engine_cause c = qe_engine_classify_log(f->log_tail);
        if (c != QE_ENGINE_CAUSE_UNKNOWN)
            cause = c;
    }
    f->cause = cause;
    char status[64] = "";
    if (exited && WIFEXITED(e->wait_status))
        snprintf(status, sizeof status, " (exit status %d)", WEXITSTATUS(e->wait_status));
    else if (exited && WIFSIGNALED(e->wait_status))
        snprintf(status, sizeof status, " (killed by signal %d)", WTERMSIG(e->wait_status));
    int code = cause == QE_ENGINE_CAUSE_TIMEOUT ? QE_ENET : QE_ESERVER;
    qe_err_set(err, code, "vllm serve %s%s; likely cause: %s; log: %s", what, status, qe_engine_cause_name(cause),
               e->log_path);
    engine_release(e);
    return code;
}

int qe_engine_start(const qe_engine_spec *spec, qe_engine **out, qe_engine_failure *fail, qe_err *err)
{
    *out = NULL;
    if (fail)
        memset(fail, 0, sizeof *fail);
    if (!spec->log_path)
        return qe_err_set(err, QE_EINVAL, "engine: no log path given");
    const qe_plan_engine_args *a = spec->args;
    double timeout = spec->startup_timeout > 0 ? spec->startup_timeout
                     : a && a->startup_timeout > 0 ? a->startup_timeout : 1200;
    double grace = spec->stop_grace > 0 ? spec->stop_grace : 30;
    double poll = spec->poll_interval > 0 ? spec->poll_interval : 0.5;
    const char *host = spec->host ? spec->host : "127.0.0.1";
    const char *served = spec->served_name ? spec->served_name : spec->model;

    int port = a && a->port > 0 ? a->port : pick_free_port();
    if (port <= 0)
        return qe_err_set(err, QE_ENET, "engine: could not find a free port");
    if (!qe_engine_port_is_free(port)) {
        if (fail)
            fail->cause = QE_ENGINE_CAUSE_PORT_IN_USE;
        return qe_err_set(err, QE_ESERVER,
                          "port %d is already in use; a server still running there would answer our health "
                          "checks (likely cause: port in use)", port);
    }

    char **envp = qe_proc_envp_merge(spec->env, spec->n_env);
    if (!envp)
        return qe_err_set(err, QE_ENOMEM, "out of memory");
    const char *bin = spec->binary ? spec->binary : "vllm";
    char *path = qe_engine_which(bin, qe_proc_envp_get(envp, "PATH"));
    if (!path) {
        qe_engine_strv_free(envp);
        if (fail)
            fail->cause = QE_ENGINE_CAUSE_EXEC;
        return qe_err_set(err, QE_EINVAL, "'%s' not found on PATH or not executable (set engine.binary)", bin);
    }
    char **argv = NULL;
    int rc = qe_engine_build_argv(spec, port, &argv, err);
    qe_engine *e = rc ? NULL : calloc(1, sizeof *e);
    int logfd = -1;
    if (!rc && !e)
        rc = qe_err_set(err, QE_ENOMEM, "out of memory");
    if (!rc && (logfd = qe_proc_open_new_log(spec->log_path, 9999, O_APPEND, &e->log_path)) < 0)
        rc = qe_err_set(err, QE_EIO, "%s: cannot create log: %s", spec->log_path, strerror(errno));
    int nullfd = rc ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (rc) {
        free(path);
        qe_engine_strv_free(argv);
        qe_engine_strv_free(envp);
        if (e)
            engine_release(e);
        return rc;
    }
    e->port = port;
    e->stop_grace = grace;
    e->check_gpu = spec->check_gpu_memory;
    e->gpu_mib_before = e->check_gpu ? gpu_mib_used() : -1;
    snprintf(e->base_url, sizeof e->base_url, "http://%s:%d", host, port);

    qe_proc_log_cmdline(logfd, argv);
    double t0 = qe_proc_now();
    pid_t pid = qe_proc_spawn_group(path, argv, envp, nullfd, logfd, "qeval: exec of the vllm binary failed\n",
                                    spec->on_spawn, spec->on_spawn_ud);
    int fork_errno = errno;
    close(logfd);
    if (nullfd >= 0)
        close(nullfd);
    free(path);
    qe_engine_strv_free(argv);
    qe_engine_strv_free(envp);
    if (pid < 0 && fork_errno == ECANCELED) {
        rc = qe_err_set(err, QE_EIO, "not started: its process group could not be recorded");
        engine_release(e);
        return rc;
    }
    if (pid < 0) {
        rc = qe_err_set(err, QE_EIO, "fork: %s", strerror(fork_errno));
        engine_release(e);
        return rc;
    }
    e->pid = pid;

    /* e->base_url is the server root: cannot fail */
    char health_url[1024], models_url[1024];
    qe_engine_probe_urls(e->base_url, health_url, models_url, sizeof health_url, NULL);
    const qe_engine_wait_report *rep = &spec->wait_report;
    double told = qe_proc_now();
    if (rep->fn)
        rep->fn(rep->ud, health_url, 0, timeout);
    bool ready = false;
    for (;;) {
        if (reap(e, false))
            break;
        if (http_get(health_url, NULL, NULL) == 200) {
            ready = true;
            break;
        }
        if (qe_proc_now() - t0 >= timeout)
            break;
        report_wait(rep, health_url, t0, &told, timeout);
        qe_proc_sleep(poll);
    }
    if (!ready && e->reaped) {
        enum qe_engine_cause c = WIFEXITED(e->wait_status) && WEXITSTATUS(e->wait_status) == 127
                                     ? QE_ENGINE_CAUSE_EXEC : QE_ENGINE_CAUSE_UNKNOWN;
        return start_failed(e, fail, c, true, grace, err, "exited before /health answered 200");
    }
    if (!ready) {
        char what[96];
        snprintf(what, sizeof what, "did not answer GET /health with 200 within %.0f s", timeout);
        return start_failed(e, fail, QE_ENGINE_CAUSE_TIMEOUT, false, grace, err, what);
    }
    qe_buf seen = QE_BUF_INIT;
    int listed = models_lists(models_url, NULL, served, &seen);
    if (listed != 1) {
        char what[600];
        snprintf(what, sizeof what, "is healthy but /v1/models %s '%s'%s%.300s%s",
                 listed < 0 ? "could not be read to confirm" : "does not list", served,
                 listed == 0 ? " (it serves: " : "", listed == 0 ? qe_buf_str(&seen) : "", listed == 0 ? ")" : "");
        qe_buf_free(&seen);
        return start_failed(e, fail, QE_ENGINE_CAUSE_NAME, false, grace, err, what);
    }
    qe_buf_free(&seen);
    e->started_s = qe_proc_now() - t0;
    scan_quant_lines(e);
    *out = e;
    return 0;
}

int qe_engine_stop(qe_engine *e, qe_engine_stop_report *report, qe_err *err)
{
    qe_engine_stop_report local;
    qe_engine_stop_report *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    r->gpu_mib_before = r->gpu_mib_after = -1;
    if (!e)
        return 0;
    r->sigkilled = kill_group(e, e->stop_grace);
    r->wait_status = e->wait_status;
    /* The listening socket may take a moment to close after the last exit. */
    double t0 = qe_proc_now();
    while (!(r->port_free = qe_engine_port_is_free(e->port)) && qe_proc_now() - t0 < 5)
        qe_proc_sleep(0.1);
    if (e->check_gpu) {
        r->gpu_mib_before = e->gpu_mib_before;
        if (e->gpu_mib_before < 0) {
            snprintf(r->note, sizeof r->note, "nvidia-smi not on PATH or failed; GPU memory release not checked");
        } else {
            r->gpu_checked = true;
            /* The driver frees memory a little after the process dies. */
            for (int i = 0; i < 10; i++) {
                r->gpu_mib_after = gpu_mib_used();
                if (r->gpu_mib_after >= 0 && r->gpu_mib_after <= e->gpu_mib_before + 512)
                    break;
                qe_proc_sleep(1);
            }
            r->gpu_released = r->gpu_mib_after >= 0 && r->gpu_mib_after <= e->gpu_mib_before + 512;
            if (!r->gpu_released)
                snprintf(r->note, sizeof r->note,
                         "GPU memory not released: %ld MiB used after stop, %ld MiB before start",
                         r->gpu_mib_after, r->gpu_mib_before);
        }
    }
    if (!r->port_free)
        return qe_err_set(err, QE_ESTATE, "port %d still in use after stopping vllm serve (log: %s)", e->port,
                          e->log_path);
    return 0;
}

void qe_engine_free(qe_engine *e)
{
    if (!e)
        return;
    if (!e->reaped || !group_gone(e->pid))
        kill_group(e, e->stop_grace);
    engine_release(e);
}

bool qe_engine_alive(qe_engine *e)
{
    return e && !reap(e, false);
}

const char *qe_engine_base_url(const qe_engine *e)
{
    return e->base_url;
}

int qe_engine_port(const qe_engine *e)
{
    return e->port;
}

pid_t qe_engine_pgid(const qe_engine *e)
{
    return e->pid;
}

void qe_engine_post_mortem(const qe_engine *e, qe_engine_failure *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->log_path, sizeof f->log_path, "%s", e->log_path ? e->log_path : "");
    if (e->log_path)
        log_tail(e->log_path, f->log_tail, sizeof f->log_tail);
    f->cause = f->log_tail[0] ? qe_engine_classify_log(f->log_tail) : QE_ENGINE_CAUSE_UNKNOWN;
}

const char *qe_engine_log_path(const qe_engine *e)
{
    return e->log_path;
}

double qe_engine_startup_seconds(const qe_engine *e)
{
    return e->started_s;
}

const char *const *qe_engine_quant_lines(const qe_engine *e, size_t *n)
{
    *n = e->n_quant;
    return (const char *const *)e->quant;
}
