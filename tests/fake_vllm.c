/* fake_vllm: stands in for the `vllm` executable in tests (tests put a
 * directory with a `vllm` symlink to this binary first on PATH).
 *
 * `vllm serve MODEL [flags]` checks the flags the way vLLM's argparse does
 * for the ones qeval uses (unknown flag → "vllm serve: error: unrecognized
 * arguments: --foo", exit 2; bad int/float/choice → "error: argument ...",
 * exit 2), prints vLLM-like startup lines (with a quantization line for
 * NVFP4/FP8 model names), appends one JSON line per start to
 * $FAKE_VLLM_RECORD (argv, selected env, pid, pgid), sleeps
 * $FAKE_VLLM_STARTUP_MS, then serves: it execs `fake_server --port P --model
 * NAME` found next to its own binary (/proc/self/exe), or, when that is not
 * built, a minimal built-in server (GET /health, GET /v1/models).
 *
 * $FAKE_VLLM_MODE: oom (CUDA OOM traceback, exit 1), badflag (reject the last
 * flag given as unknown), notfound (HF "Repository Not Found", exit 1),
 * crash-after:MS (serve, then die with exit 1), ignore-sigterm (the main
 * process survives SIGTERM; only SIGKILL ends it), slow-health:MS (/health
 * answers 503 for MS milliseconds after startup). */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum ftype { T_INT, T_HINT, T_FLOAT, T_STR, T_STRS, T_BOOL, T_CHOICE };

typedef struct {
    const char *name;
    const char *alias;
    enum ftype type;
    const char *choices; /* T_CHOICE: space separated */
} flag;

/* The subset of `vllm serve --help` (v0.11) that qeval and its users pass. */
static const flag flags[] = {
    {"--tensor-parallel-size", "-tp", T_INT, NULL},
    {"--pipeline-parallel-size", "-pp", T_INT, NULL},
    {"--data-parallel-size", "-dp", T_INT, NULL},
    {"--gpu-memory-utilization", NULL, T_FLOAT, NULL},
    {"--max-model-len", NULL, T_HINT, NULL},
    {"--max-num-seqs", NULL, T_INT, NULL},
    {"--max-num-batched-tokens", NULL, T_HINT, NULL},
    {"--download-dir", NULL, T_STR, NULL},
    {"--port", NULL, T_INT, NULL},
    {"--host", NULL, T_STR, NULL},
    {"--served-model-name", NULL, T_STRS, NULL},
    {"--seed", NULL, T_INT, NULL},
    {"--swap-space", NULL, T_FLOAT, NULL},
    {"--tokenizer", NULL, T_STR, NULL},
    {"--revision", NULL, T_STR, NULL},
    {"--api-key", NULL, T_STR, NULL},
    {"--chat-template", NULL, T_STR, NULL},
    {"--reasoning-parser", NULL, T_STR, NULL},
    {"--generation-config", NULL, T_STR, NULL},
    {"--quantization", "-q", T_STR, NULL},
    {"--attention-backend", NULL, T_STR, NULL},
    {"--load-format", NULL, T_STR, NULL},
    {"--dtype", NULL, T_CHOICE, "auto half float16 bfloat16 float float32"},
    {"--kv-cache-dtype", NULL, T_CHOICE, "auto bfloat16 fp8 fp8_e4m3 fp8_e5m2 fp8_inc"},
    {"--enforce-eager", NULL, T_BOOL, NULL},
    {"--trust-remote-code", NULL, T_BOOL, NULL},
    {"--disable-log-requests", NULL, T_BOOL, NULL},
    {"--disable-log-stats", NULL, T_BOOL, NULL},
    {"--enable-prefix-caching", NULL, T_BOOL, NULL},
    {"--no-enable-prefix-caching", NULL, T_BOOL, NULL},
    {"--enable-chunked-prefill", NULL, T_BOOL, NULL},
};

static void ts(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, n, "%m-%d %H:%M:%S", &tm);
}

#define LOG(file, fmt, ...)                                                                   \
    do {                                                                                      \
        char t_[32];                                                                          \
        ts(t_, sizeof t_);                                                                    \
        printf("INFO %s [%s] " fmt "\n", t_, file, __VA_ARGS__);                             \
        fflush(stdout);                                                                       \
    } while (0)

static void sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) && errno == EINTR) {
    }
}

static _Noreturn void arg_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "usage: vllm serve [model_tag] [options]\nvllm serve: error: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(2);
}

static bool parse_int(const char *s, long *out, bool human)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || errno)
        return false;
    if (human && *end) { /* vLLM's human_readable_int: 4k, 1m, 2K (binary) */
        long mul = *end == 'k' ? 1000 : *end == 'K' ? 1024 : *end == 'm' ? 1000000 : *end == 'M' ? 1048576 : 0;
        if (!mul || end[1])
            return false;
        v *= mul;
        end++;
    }
    if (*end)
        return false;
    *out = v;
    return true;
}

static const flag *find_flag(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
        if ((strlen(flags[i].name) == n && !strncmp(flags[i].name, name, n)) ||
            (flags[i].alias && strlen(flags[i].alias) == n && !strncmp(flags[i].alias, name, n)))
            return &flags[i];
    return NULL;
}

static void check_value(const flag *f, const char *v)
{
    long l;
    char *end;
    switch (f->type) {
    case T_INT:
    case T_HINT:
        if (!parse_int(v, &l, f->type == T_HINT))
            arg_error("argument %s: invalid int value: '%s'", f->name, v);
        break;
    case T_FLOAT:
        errno = 0;
        strtod(v, &end);
        if (end == v || *end)
            arg_error("argument %s: invalid float value: '%s'", f->name, v);
        break;
    case T_CHOICE: {
        char buf[256];
        snprintf(buf, sizeof buf, " %s ", f->choices);
        char needle[128];
        snprintf(needle, sizeof needle, " %s ", v);
        if (!strstr(buf, needle)) {
            /* python's wording: (choose from 'auto', 'half', ...) */
            char msg[512] = "argument %s: invalid choice: '%s' (choose from '";
            for (const char *c = f->choices; *c; c++) {
                size_t m = strlen(msg);
                if (m + 8 >= sizeof msg)
                    break;
                if (*c == ' ')
                    strcat(msg, "', '");
                else
                    msg[m] = *c, msg[m + 1] = '\0';
            }
            strcat(msg, "')");
            arg_error(msg, f->name, v);
        }
        break;
    }
    default:
        break;
    }
}

typedef struct {
    const char *model;
    const char *served;
    int port;
    long max_model_len;
    const char *last_flag;
} parsed;

static void parse_args(int argc, char **argv, parsed *p)
{
    char unknown[1024] = "";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            if (p->model) {
                size_t u = strlen(unknown);
                snprintf(unknown + u, sizeof unknown - u, "%s%s", u ? " " : "", a);
            } else {
                p->model = a;
            }
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        const flag *f = find_flag(a, n);
        if (!f) {
            size_t u = strlen(unknown);
            snprintf(unknown + u, sizeof unknown - u, "%s%s", u ? " " : "", a);
            continue;
        }
        p->last_flag = f->name;
        if (f->type == T_BOOL) {
            if (eq)
                arg_error("argument %s: ignored explicit argument '%s'", f->name, eq + 1);
            continue;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 >= argc || (argv[i + 1][0] == '-' && argv[i + 1][1] == '-'))
                arg_error("argument %s: expected %s", f->name, f->type == T_STRS ? "at least one argument" : "one argument");
            v = argv[++i];
        }
        check_value(f, v);
        if (!strcmp(f->name, "--port")) {
            long l;
            parse_int(v, &l, false);
            p->port = (int)l;
        } else if (!strcmp(f->name, "--served-model-name")) {
            p->served = v;
            while (!eq && i + 1 < argc && argv[i + 1][0] != '-')
                i++; /* nargs='+': further names are aliases; the first is reported */
        } else if (!strcmp(f->name, "--max-model-len")) {
            parse_int(v, &p->max_model_len, true);
        }
    }
    if (unknown[0])
        arg_error("unrecognized arguments: %s%s", unknown, "");
    if (!p->model)
        arg_error("the following arguments are required: %s%s", "model_tag", "");
}

static void record_start(int argc, char **argv, const char *mode)
{
    const char *path = getenv("FAKE_VLLM_RECORD");
    if (!path || !*path)
        return;
    json_t *j = json_object(), *av = json_array(), *env = json_object();
    for (int i = 0; i < argc; i++)
        json_array_append_new(av, json_string(argv[i]));
    static const char *const keys[] = {"CUDA_VISIBLE_DEVICES", "HOME", "HF_HOME", "XDG_CACHE_HOME", "TMPDIR",
                                       "VLLM_ATTENTION_BACKEND", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR",
                                       "CUDA_CACHE_PATH", "HF_HUB_OFFLINE", "VLLM_USE_V1"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *v = getenv(keys[i]);
        if (v)
            json_object_set_new(env, keys[i], json_string(v));
    }
    const char *extra = getenv("FAKE_VLLM_RECORD_ENV"); /* comma-separated names */
    if (extra) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", extra);
        char *save = NULL;
        for (char *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save))
            if (getenv(k))
                json_object_set_new(env, k, json_string(getenv(k)));
    }
    json_object_set_new(j, "argv", av);
    json_object_set_new(j, "env", env);
    json_object_set_new(j, "pid", json_integer(getpid()));
    json_object_set_new(j, "pgid", json_integer(getpgrp()));
    json_object_set_new(j, "mode", json_string(mode));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    FILE *f = fopen(path, "a");
    if (f && s) {
        fprintf(f, "%s\n", s); /* one short line, one append */
        fclose(f);
    } else if (f) {
        fclose(f);
    }
    free(s);
}

/* ---- built-in minimal server ------------------------------------------ */

typedef struct {
    const char *name;
    long max_model_len;
    struct timespec healthy_at;
} srv;

static bool past(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *size, void **con_cls)
{
    srv *s = cls;
    if (!*con_cls) { /* first call: headers only */
        *con_cls = (void *)1;
        return MHD_YES;
    }
    if (*size) { /* swallow request bodies */
        *size = 0;
        return MHD_YES;
    }
    if (!strcmp(url, "/health"))
        return reply(c, past(&s->healthy_at) ? 200 : 503, "");
    if (!strcmp(url, "/v1/models") && !strcmp(method, "GET")) {
        char *b = NULL;
        json_t *j = json_pack("{s:s,s:[{s:s,s:s,s:s,s:I}]}", "object", "list", "data", "id", s->name, "object",
                              "model", "owned_by", "vllm", "max_model_len", (json_int_t)s->max_model_len);
        b = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        enum MHD_Result r = reply(c, 200, b ? b : "{}");
        free(b);
        return r;
    }
    if (!strcmp(url, "/v1/chat/completions") && !strcmp(method, "POST")) {
        char *b = NULL;
        json_t *j = json_pack("{s:s,s:s,s:s,s:[{s:i,s:{s:s,s:s},s:s}],s:{s:i,s:i,s:i}}", "id", "chatcmpl-fake",
                              "object", "chat.completion", "model", s->name, "choices", "index", 0, "message", "role",
                              "assistant", "content", "The answer is $\\boxed{0}$.", "finish_reason", "stop", "usage",
                              "prompt_tokens", 10, "completion_tokens", 8, "total_tokens", 18);
        b = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        enum MHD_Result r = reply(c, 200, b ? b : "{}");
        free(b);
        return r;
    }
    return reply(c, 404, "{\"detail\":\"Not Found\"}");
}

static struct MHD_Daemon *serve_builtin(srv *s, int port)
{
    return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, handle,
                            s, MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_END);
}

/* Path of fake_server next to the real binary, or NULL. */
static char *fake_server_path(void)
{
    static char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash || (size_t)(slash - exe) + sizeof "/fake_server" > sizeof exe)
        return NULL;
    strcpy(slash, "/fake_server");
    if (getenv("FAKE_VLLM_BUILTIN") || access(exe, X_OK))
        return NULL;
    return exe;
}

/* Serves until killed; never returns. */
static _Noreturn void serve(const parsed *p, const char *name, long slow_ms)
{
    srv s = {.name = name, .max_model_len = p->max_model_len ? p->max_model_len : 40960};
    clock_gettime(CLOCK_MONOTONIC, &s.healthy_at);
    s.healthy_at.tv_sec += slow_ms / 1000;
    s.healthy_at.tv_nsec += (slow_ms % 1000) * 1000000L;
    if (s.healthy_at.tv_nsec >= 1000000000L) {
        s.healthy_at.tv_sec++;
        s.healthy_at.tv_nsec -= 1000000000L;
    }
    char *fs = fake_server_path();
    struct MHD_Daemon *d = NULL;
    if (slow_ms > 0 || !fs) {
        d = serve_builtin(&s, p->port);
        if (!d) {
            fprintf(stderr, "ERROR: [Errno 98] error while attempting to bind on address ('0.0.0.0', %d): "
                            "Address already in use\n", p->port);
            exit(1);
        }
        LOG("launcher.py:28", "Starting vLLM API server on http://0.0.0.0:%d", p->port);
    }
    if (fs) {
        if (d) {
            sleep_ms(slow_ms);
            MHD_stop_daemon(d);
        }
        char port[16], mml[24];
        snprintf(port, sizeof port, "%d", p->port);
        snprintf(mml, sizeof mml, "%ld", s.max_model_len);
        fflush(stdout);
        /* FAKE_SERVER_* variables (script, faults, request log) pass through the environment. */
        execl(fs, fs, "--port", port, "--model", name, "--max-model-len", mml, (char *)NULL);
        fprintf(stderr, "fake_vllm: exec %s: %s\n", fs, strerror(errno));
        exit(1);
    }
    LOG("launcher.py:36", "Available routes are: %s", "/health, /v1/models, /v1/chat/completions");
    for (;;)
        pause();
}

static void print_oom(void)
{
    printf("ERROR %s [core.py:700] EngineCore failed to start.\n", "11-25 19:00:00");
    printf("Traceback (most recent call last):\n");
    printf("  File \"/usr/lib/python3/site-packages/vllm/v1/engine/core.py\", line 691, in run_engine_core\n");
    printf("    engine_core = EngineCoreProc(*args, **kwargs)\n");
    printf("  File \"/usr/lib/python3/site-packages/vllm/v1/worker/gpu_model_runner.py\", line 2100, in load_model\n");
    printf("    self.model = model_loader.load_model(\n");
    printf("  File \"/usr/lib/python3/site-packages/torch/nn/modules/module.py\", line 1340, in convert\n");
    printf("    return t.to(device, dtype if t.is_floating_point() else None, non_blocking)\n");
    printf("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.25 GiB. GPU 0 has a total capacity of "
           "94.97 GiB of which 612.00 MiB is free. Including non-PyTorch memory, this process has 94.35 GiB memory "
           "in use. Of the allocated memory 93.10 GiB is allocated by PyTorch.\n");
    printf("RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = getenv("FAKE_VLLM_MODE");
    mode = mode ? mode : "";
    if (argc < 2 || strcmp(argv[1], "serve")) {
        fprintf(stderr, "usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...\n");
        if (argc >= 2)
            fprintf(stderr, "vllm: error: argument subparser: invalid choice: '%s'\n", argv[1]);
        return 2;
    }
    record_start(argc, argv, mode);
    parsed p = {.port = 8000};
    parse_args(argc, argv, &p);
    if (!strcmp(mode, "badflag"))
        arg_error("unrecognized arguments: %s%s", p.last_flag ? p.last_flag : "--bad-flag", "");
    const char *name = p.served ? p.served : p.model;

    LOG("api_server.py:1839", "vLLM API server version %s", "0.11.0 (qeval fake_vllm)");
    LOG("utils.py:233", "non-default args: {'model_tag': '%s', 'port': %d}", p.model, p.port);
    if (!strcmp(mode, "notfound")) {
        printf("huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error. (Request ID: Root=1-fake)\n\n"
               "Repository Not Found for url: https://huggingface.co/api/models/%s/revision/main.\n", p.model);
        printf("OSError: %s is not a local folder and is not a valid model identifier listed on "
               "'https://huggingface.co/models'\n", p.model);
        return 1;
    }
    LOG("model.py:547", "Resolved architecture: %s", "Qwen3ForCausalLM");
    LOG("model.py:1510", "Using max model len %ld", p.max_model_len ? p.max_model_len : 40960L);
    if (strstr(p.model, "NVFP4") || strstr(p.model, "nvfp4")) {
        LOG("modelopt.py:612", "Detected ModelOpt NVFP4 checkpoint. quantization=%s", "modelopt_fp4");
        printf("WARNING 11-25 19:00:00 [marlin_utils_fp4.py:196] Your GPU does not have native support for FP4 "
               "computation but FP4 quantization is being used. Weight-only FP4 compression will be used "
               "leveraging the Marlin kernel. This may degrade performance for compute-heavy workloads.\n");
    } else if (strstr(p.model, "FP8") || strstr(p.model, "fp8")) {
        LOG("fp8.py:112", "Using %s for FP8 quantization (quantization=fp8)", "CutlassFP8ScaledMMLinearKernel");
    }
    LOG("gpu_model_runner.py:2007", "Model loading took %.4f GiB and %.6f seconds", 30.5, 42.0);
    long startup = getenv("FAKE_VLLM_STARTUP_MS") ? atol(getenv("FAKE_VLLM_STARTUP_MS")) : 0;
    sleep_ms(startup);
    if (!strcmp(mode, "oom")) {
        print_oom();
        return 1;
    }
    LOG("kv_cache_utils.py:1087", "GPU KV cache size: %d tokens", 345678);
    long slow = !strncmp(mode, "slow-health:", 12) ? atol(mode + 12) : 0;
    bool crash = !strncmp(mode, "crash-after:", 12);
    bool stubborn = !strcmp(mode, "ignore-sigterm");
    if (!crash && !stubborn)
        serve(&p, name, slow);

    /* Modes that need a supervising main process: the server runs in a
     * child (same process group), the parent misbehaves. */
    pid_t child = fork();
    if (child == 0)
        serve(&p, name, slow);
    if (child < 0)
        return 1;
    if (stubborn) {
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        for (;;) {
            int st;
            if (waitpid(child, &st, 0) == child)
                LOG("launcher.py:80", "%s", "Shutting down FastAPI HTTP server. (main process keeps running)");
            pause();
        }
    }
    sleep_ms(atol(mode + 12));
    printf("ERROR 11-25 19:00:00 [core.py:710] EngineCore encountered a fatal error.\n"
           "RuntimeError: CUDA error: an illegal memory access was encountered\n");
    fflush(stdout);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 1;
}
