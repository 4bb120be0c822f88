/* Tests for src/engine.c: argv/env building, log classification, and the
 * whole lifecycle against tests/fake_vllm (healthy start/stop, OOM, bad flag,
 * model not found, startup timeout, SIGTERM ignored, crash after start, port
 * in use, log rotation, process group gone and port free afterwards). The
 * fake is found through $QEVAL_BUILD/tests/fake_vllm and reached through a
 * `vllm` symlink put first on the PATH given in the plan env. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

typedef struct {
    char dir[256];     /* temp dir: bin/vllm symlink, logs, record file */
    char path_env[4096];
    char record[300];
    char log[300];
    qe_plan_kv env[8];
    size_t n_env;
    qe_plan_engine_args args;
    qe_engine_spec spec;
} fx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fx_env(fx *f, const char *k, const char *v)
{
    for (size_t i = 0; i < f->n_env; i++)
        if (!strcmp(f->env[i].key, k)) {
            f->env[i].value = (char *)v;
            return;
        }
    f->env[f->n_env].key = (char *)k;
    f->env[f->n_env].value = (char *)v;
    f->n_env++;
    f->spec.n_env = f->n_env;
}

static int setup(void **state)
{
    const char *build = getenv("QEVAL_BUILD");
    if (!build)
        return 0;
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/qe_engine_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char bin[300], target[1024], link[320];
    snprintf(bin, sizeof bin, "%s/bin", f->dir);
    mkdir(bin, 0755);
    snprintf(target, sizeof target, "%s/tests/fake_vllm", build);
    snprintf(link, sizeof link, "%s/vllm", bin);
    if (symlink(target, link))
        return -1;
    const char *path = getenv("PATH");
    snprintf(f->path_env, sizeof f->path_env, "%s:%s", bin, path ? path : "/usr/bin:/bin");
    snprintf(f->record, sizeof f->record, "%s/record.jsonl", f->dir);
    snprintf(f->log, sizeof f->log, "%s/model.log", f->dir);
    f->args.max_model_len = 4096;
    f->args.max_num_seqs = 32;
    f->args.gpu_memory_utilization = 0.90;
    f->spec.model = "RedHatAI/Qwen3-32B-NVFP4";
    f->spec.served_name = "nvfp4";
    f->spec.args = &f->args;
    f->spec.env = f->env;
    f->spec.log_path = f->log;
    f->spec.startup_timeout = 10;
    f->spec.stop_grace = 3;
    f->spec.poll_interval = 0.05;
    f->spec.check_gpu_memory = true;
    fx_env(f, "PATH", f->path_env);
    fx_env(f, "FAKE_VLLM_RECORD", f->record);
    fx_env(f, "HF_HOME", "/data/bench/hf");
    fx_env(f, "VLLM_ATTENTION_BACKEND", "TRITON_ATTN");
    fx_env(f, "CUDA_VISIBLE_DEVICES", "0,1");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
        if (system(cmd)) {
        }
        free(f);
    }
    return 0;
}

#define NEED_FAKE()                                                                      \
    fx *f = *state;                                                                      \
    if (!f) {                                                                            \
        skip(); /* QEVAL_BUILD unset: run through `make test` */                         \
        return;                                                                          \
    }

static bool group_gone(pid_t pgid)
{
    return kill(-pgid, 0) < 0 && errno == ESRCH;
}

/* Last line of the record file as JSON (caller decrefs), NULL if none. */
static json_t *last_record(const fx *f, int *count)
{
    FILE *in = fopen(f->record, "r");
    *count = 0;
    if (!in)
        return NULL;
    char line[8192], last[8192] = "";
    while (fgets(line, sizeof line, in)) {
        snprintf(last, sizeof last, "%s", line);
        (*count)++;
    }
    fclose(in);
    return *count ? json_loads(last, 0, NULL) : NULL;
}

/* ---- pure functions ---------------------------------------------------- */

static void test_argv_and_dry_run(void **state)
{
    (void)state;
    char *extra[] = {"--enforce-eager", "--kv-cache-dtype", "fp8"};
    qe_plan_engine_args a = {.tensor_parallel_size = 2, .gpu_memory_utilization = 0.90, .max_model_len = 4096,
                             .max_num_seqs = 32, .download_dir = "/data/bench/hf", .port = 8000,
                             .extra_args = extra, .n_extra_args = 3};
    qe_plan_kv env[] = {{"HF_HOME", "/data/bench/hf"}, {"CUDA_VISIBLE_DEVICES", "0,1"}, {"X", "a b'c"}};
    qe_engine_spec s = {.model = "Qwen/Qwen3-32B", .served_name = "bf16", .args = &a, .env = env, .n_env = 3};
    char **argv = NULL;
    qe_err err = {0};
    assert_int_equal(qe_engine_build_argv(&s, 0, &argv, &err), 0);
    const char *want[] = {"vllm", "serve", "Qwen/Qwen3-32B", "--tensor-parallel-size", "2",
                          "--gpu-memory-utilization", "0.90", "--max-model-len", "4096", "--max-num-seqs", "32",
                          "--download-dir", "/data/bench/hf", "--port", "8000", "--served-model-name", "bf16",
                          "--enforce-eager", "--kv-cache-dtype", "fp8", NULL};
    for (size_t i = 0; want[i] || argv[i]; i++) {
        assert_non_null(argv[i]);
        assert_non_null(want[i]);
        assert_string_equal(argv[i], want[i]);
    }
    qe_engine_strv_free(argv);
    /* explicit port wins; an odd fraction keeps full precision */
    a.gpu_memory_utilization = 0.875;
    assert_int_equal(qe_engine_build_argv(&s, 9001, &argv, &err), 0);
    assert_float_equal(strtod(argv[6], NULL), 0.875, 0);
    assert_string_equal(argv[14], "9001");
    qe_engine_strv_free(argv);

    qe_buf b = QE_BUF_INIT;
    a.gpu_memory_utilization = 0.90;
    assert_int_equal(qe_engine_dry_run_cmd(&s, &b, &err), 0);
    assert_string_equal(qe_buf_str(&b),
                        "env HF_HOME=/data/bench/hf\n"
                        "env CUDA_VISIBLE_DEVICES=0,1\n"
                        "env X='a b'\\''c'\n"
                        "vllm serve Qwen/Qwen3-32B --tensor-parallel-size 2 --gpu-memory-utilization 0.90 "
                        "--max-model-len 4096 --max-num-seqs 32 --download-dir /data/bench/hf --port 8000 "
                        "--served-model-name bf16 --enforce-eager --kv-cache-dtype fp8\n");
    qe_buf_reset(&b);
    a.port = 0;
    a.n_extra_args = 0;
    s.served_name = NULL;
    s.n_env = 0;
    assert_int_equal(qe_engine_dry_run_cmd(&s, &b, &err), 0);
    assert_non_null(strstr(qe_buf_str(&b), "--port AUTO --served-model-name Qwen/Qwen3-32B\n"));
    qe_buf_free(&b);
}

/* The plan of the experiment document gives exactly its command lines. */
static void test_spec_from_example_plan(void **state)
{
    (void)state;
    qe_plan *p = NULL;
    qe_err err = {0};
    if (qe_plan_load("examples/qwen3-32b-precision.yaml", NULL, &p, &err))
        fail_msg("%s", err.msg);
    const char *want[] = {
        "vllm serve RedHatAI/Qwen3-32B-NVFP4 --tensor-parallel-size 2 --gpu-memory-utilization 0.90 "
        "--max-model-len 4096 --max-num-seqs 32 --download-dir /data/bench/hf --port AUTO "
        "--served-model-name RedHatAI/Qwen3-32B-NVFP4\n",
        "vllm serve Qwen/Qwen3-32B-FP8 --tensor-parallel-size 2 --gpu-memory-utilization 0.90 "
        "--max-model-len 4096 --max-num-seqs 32 --download-dir /data/bench/hf --port AUTO "
        "--served-model-name Qwen/Qwen3-32B-FP8\n",
        "vllm serve Qwen/Qwen3-32B --tensor-parallel-size 2 --gpu-memory-utilization 0.90 "
        "--max-model-len 4096 --max-num-seqs 32 --download-dir /data/bench/hf --port AUTO "
        "--served-model-name Qwen/Qwen3-32B\n",
    };
    for (size_t i = 0; i < 3; i++) {
        qe_engine_spec s;
        qe_engine_spec_from_plan(&s, p, i);
        qe_buf b = QE_BUF_INIT;
        assert_int_equal(qe_engine_dry_run_cmd(&s, &b, &err), 0);
        const char *cmd = strstr(qe_buf_str(&b), "vllm serve");
        assert_non_null(cmd);
        assert_string_equal(cmd, want[i]);
        assert_non_null(strstr(qe_buf_str(&b), "env CUDA_VISIBLE_DEVICES=0,1\n"));
        assert_non_null(strstr(qe_buf_str(&b), "env VLLM_ATTENTION_BACKEND=TRITON_ATTN\n"));
        qe_buf_free(&b);
    }
    qe_plan_free(p);
}

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        const char *log;
        enum qe_engine_cause want;
    } cases[] = {
        {"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", QE_ENGINE_CAUSE_OOM},
        {"ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`",
         QE_ENGINE_CAUSE_OOM},
        {"vllm serve: error: unrecognized arguments: --foo", QE_ENGINE_CAUSE_BAD_FLAG},
        {"vllm serve: error: argument --port: invalid int value: 'x'", QE_ENGINE_CAUSE_BAD_FLAG},
        {"Repository Not Found for url: https://huggingface.co/api/models/x/y", QE_ENGINE_CAUSE_NOT_FOUND},
        {"OSError: x/y is not a local folder and is not a valid model identifier listed on", QE_ENGINE_CAUSE_NOT_FOUND},
        {"requests.exceptions.HTTPError: 404 Client Error: Not Found for url", QE_ENGINE_CAUSE_NOT_FOUND},
        {"OSError: [Errno 98] Address already in use", QE_ENGINE_CAUSE_PORT_IN_USE},
        {"Segmentation fault (core dumped)", QE_ENGINE_CAUSE_UNKNOWN},
        {"", QE_ENGINE_CAUSE_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (qe_engine_classify_log(cases[i].log) != cases[i].want)
            fail_msg("case %zu '%s': got %s", i, cases[i].log, qe_engine_cause_name(qe_engine_classify_log(cases[i].log)));
    assert_string_equal(qe_engine_cause_name(QE_ENGINE_CAUSE_OOM), "CUDA out of memory");
}

static void test_which(void **state)
{
    (void)state;
    char *p = qe_engine_which("sh", "/nonexistent:/bin:/usr/bin");
    assert_non_null(p);
    assert_true(strstr(p, "/sh") != NULL);
    free(p);
    assert_null(qe_engine_which("surely-not-a-binary-qe", "/bin:/usr/bin"));
    assert_null(qe_engine_which("/nonexistent/vllm", NULL));
}

/* ---- lifecycle against fake_vllm -------------------------------------- */

static void test_healthy_start_stop(void **state)
{
    NEED_FAKE();
    fx_env(f, "FAKE_VLLM_MODE", "");
    qe_engine *e = NULL;
    qe_engine_failure fail;
    qe_err err = {0};
    int rc = qe_engine_start(&f->spec, &e, &fail, &err);
    if (rc)
        fail_msg("start: %s\n%s", err.msg, fail.log_tail);
    assert_true(qe_engine_alive(e));
    pid_t pgid = qe_engine_pgid(e);
    int port = qe_engine_port(e);
    assert_false(group_gone(pgid));
    assert_false(qe_engine_port_is_free(port));
    assert_string_equal(qe_engine_log_path(e), f->log);

    /* the endpoint readiness check agrees, and rejects a wrong name */
    assert_int_equal(qe_engine_wait_endpoint(qe_engine_base_url(e), NULL, "nvfp4", 5, &err), 0);
    assert_int_equal(qe_engine_wait_endpoint(qe_engine_base_url(e), NULL, "fp8", 5, &err), QE_ESERVER);
    assert_non_null(strstr(err.msg, "does not list 'fp8'"));

    /* flags, order and env as fake_vllm saw them */
    int n;
    json_t *r = last_record(f, &n);
    assert_int_equal(n, 1);
    assert_non_null(r);
    json_t *av = json_object_get(r, "argv");
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *want[] = {"vllm", "serve", "RedHatAI/Qwen3-32B-NVFP4", "--gpu-memory-utilization", "0.90",
                          "--max-model-len", "4096", "--max-num-seqs", "32", "--port", portstr,
                          "--served-model-name", "nvfp4"};
    assert_int_equal(json_array_size(av), sizeof want / sizeof *want);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        assert_string_equal(json_string_value(json_array_get(av, i)), want[i]);
    json_t *env = json_object_get(r, "env");
    assert_string_equal(json_string_value(json_object_get(env, "HF_HOME")), "/data/bench/hf");
    assert_string_equal(json_string_value(json_object_get(env, "VLLM_ATTENTION_BACKEND")), "TRITON_ATTN");
    assert_string_equal(json_string_value(json_object_get(env, "CUDA_VISIBLE_DEVICES")), "0,1");
    /* own process group: the server leads it */
    assert_int_equal(json_integer_value(json_object_get(r, "pgid")), pgid);
    assert_int_equal(json_integer_value(json_object_get(r, "pid")), pgid);
    assert_int_not_equal(pgid, getpgrp());
    json_decref(r);

    /* the NVFP4 kernel line was captured for labelling */
    size_t nq;
    const char *const *q = qe_engine_quant_lines(e, &nq);
    bool saw_fp4 = false;
    for (size_t i = 0; i < nq; i++)
        saw_fp4 |= strstr(q[i], "Marlin") != NULL;
    assert_true(saw_fp4);

    /* with fake_server built, fake_vllm became it (same pid): it prints "PORT n" */
    char fs[512];
    snprintf(fs, sizeof fs, "%s/tests/fake_server", getenv("QEVAL_BUILD"));
    if (access(fs, X_OK) == 0) {
        char want_line[32], buf[65536];
        snprintf(want_line, sizeof want_line, "PORT %d\n", port);
        FILE *lf = fopen(qe_engine_log_path(e), "r");
        assert_non_null(lf);
        size_t got = fread(buf, 1, sizeof buf - 1, lf);
        buf[got] = '\0';
        fclose(lf);
        assert_non_null(strstr(buf, want_line));
    }

    qe_engine_stop_report rep;
    double t0 = now_s();
    assert_int_equal(qe_engine_stop(e, &rep, &err), 0);
    assert_true(now_s() - t0 < 2.5); /* SIGTERM was enough */
    assert_false(rep.sigkilled);
    assert_true(rep.port_free);
    assert_true(group_gone(pgid));
    assert_true(qe_engine_port_is_free(port));
    assert_false(qe_engine_alive(e));
    if (!rep.gpu_checked) /* no nvidia-smi here: said so, not silently */
        assert_non_null(strstr(rep.note, "nvidia-smi"));
    qe_engine_free(e);
}

static void expect_start_failure(fx *f, enum qe_engine_cause want, const char *tail_has, bool exited)
{
    qe_engine *e = NULL;
    qe_engine_failure fail;
    qe_err err = {0};
    int rc = qe_engine_start(&f->spec, &e, &fail, &err);
    assert_int_not_equal(rc, 0);
    assert_null(e);
    if (fail.cause != want)
        fail_msg("cause %s, want %s; err: %s\ntail:\n%s", qe_engine_cause_name(fail.cause), qe_engine_cause_name(want),
                 err.msg, fail.log_tail);
    assert_non_null(strstr(err.msg, qe_engine_cause_name(want)));
    assert_int_equal(fail.exited, exited);
    if (tail_has && !strstr(fail.log_tail, tail_has))
        fail_msg("log tail lacks '%s':\n%s", tail_has, fail.log_tail);
    /* at most QE_ENGINE_TAIL_LINES lines */
    int lines = 1;
    for (const char *p = fail.log_tail; *p; p++)
        lines += *p == '\n';
    assert_true(lines <= QE_ENGINE_TAIL_LINES);
    int n;
    json_t *r = last_record(f, &n);
    if (r) { /* whatever ran is gone, with its whole group */
        pid_t pgid = (pid_t)json_integer_value(json_object_get(r, "pgid"));
        assert_true(group_gone(pgid));
        json_decref(r);
    }
}

static void test_oom_at_start(void **state)
{
    NEED_FAKE();
    fx_env(f, "FAKE_VLLM_MODE", "oom");
    expect_start_failure(f, QE_ENGINE_CAUSE_OOM, "torch.OutOfMemoryError: CUDA out of memory", true);
    /* the tail ends with the last line the server printed */
    qe_engine_failure fail;
    qe_engine *e = NULL;
    qe_err err = {0};
    assert_int_not_equal(qe_engine_start(&f->spec, &e, &fail, &err), 0);
    const char *last = strrchr(fail.log_tail, '\n');
    assert_non_null(last);
    assert_non_null(strstr(last, "Engine core initialization failed"));
    assert_non_null(strstr(fail.log_path, "model.log."));  /* second start: a new log file */
}

static void test_bad_flag(void **state)
{
    NEED_FAKE();
    fx_env(f, "FAKE_VLLM_MODE", "");
    char *extra[] = {"--foo"};
    f->args.extra_args = extra;
    f->args.n_extra_args = 1;
    expect_start_failure(f, QE_ENGINE_CAUSE_BAD_FLAG, "vllm serve: error: unrecognized arguments: --foo", true);
    char *extra2[] = {"--max-num-batched-tokens", "lots"};
    f->args.extra_args = extra2;
    f->args.n_extra_args = 2;
    expect_start_failure(f, QE_ENGINE_CAUSE_BAD_FLAG, "argument --max-num-batched-tokens: invalid int value", true);
    f->args.n_extra_args = 0;
    fx_env(f, "FAKE_VLLM_MODE", "badflag");
    expect_start_failure(f, QE_ENGINE_CAUSE_BAD_FLAG, "unrecognized arguments: --served-model-name", true);
}

static void test_model_not_found(void **state)
{
    NEED_FAKE();
    fx_env(f, "FAKE_VLLM_MODE", "notfound");
    expect_start_failure(f, QE_ENGINE_CAUSE_NOT_FOUND, "Repository Not Found", true);
}

static void test_startup_timeout(void **state)
{
    NEED_FAKE();
    fx_env(f, "FAKE_VLLM_MODE", "");
    fx_env(f, "FAKE_VLLM_STARTUP_MS", "30000");
    f->spec.startup_timeout = 1;
    double t0 = now_s();
    expect_start_failure(f, QE_ENGINE_CAUSE_TIMEOUT, "Model loading took", false);
    assert_true(now_s() - t0 < 6);
}

static void test_slow_health(void **state)
{
    NEED_FAKE();
    fx_env(f, "FAKE_VLLM_MODE", "slow-health:1200");
    qe_engine *e = NULL;
    qe_engine_failure fail;
    qe_err err = {0};
    if (qe_engine_start(&f->spec, &e, &fail, &err))
        fail_msg("start: %s\n%s", err.msg, fail.log_tail);
    assert_true(qe_engine_startup_seconds(e) >= 1.1); /* waited through the 503s */
    pid_t pgid = qe_engine_pgid(e);
    qe_engine_free(e); /* free stops too */
    assert_true(group_gone(pgid));
}

static void test_ignore_sigterm_needs_sigkill(void **state)
{
    NEED_FAKE();
    fx_env(f, "FAKE_VLLM_MODE", "ignore-sigterm");
    f->spec.stop_grace = 0.7;
    qe_engine *e = NULL;
    qe_engine_failure fail;
    qe_err err = {0};
    if (qe_engine_start(&f->spec, &e, &fail, &err))
        fail_msg("start: %s\n%s", err.msg, fail.log_tail);
    pid_t pgid = qe_engine_pgid(e);
    int port = qe_engine_port(e);
    qe_engine_stop_report rep;
    double t0 = now_s();
    assert_int_equal(qe_engine_stop(e, &rep, &err), 0);
    assert_true(now_s() - t0 >= 0.6); /* waited the grace period first */
    assert_true(rep.sigkilled);
    assert_true(WIFSIGNALED(rep.wait_status) && WTERMSIG(rep.wait_status) == SIGKILL);
    assert_true(group_gone(pgid));
    assert_true(rep.port_free);
    assert_true(qe_engine_port_is_free(port));
    /* a second stop is harmless */
    assert_int_equal(qe_engine_stop(e, &rep, &err), 0);
    qe_engine_free(e);
}

static void test_crash_after_start(void **state)
{
    NEED_FAKE();
    fx_env(f, "FAKE_VLLM_MODE", "crash-after:600");
    qe_engine *e = NULL;
    qe_engine_failure fail;
    qe_err err = {0};
    if (qe_engine_start(&f->spec, &e, &fail, &err))
        fail_msg("start: %s\n%s", err.msg, fail.log_tail);
    assert_true(qe_engine_alive(e));
    double t0 = now_s();
    while (qe_engine_alive(e) && now_s() - t0 < 5)
        usleep(50000);
    assert_false(qe_engine_alive(e));
    pid_t pgid = qe_engine_pgid(e);
    qe_engine_stop_report rep;
    assert_int_equal(qe_engine_stop(e, &rep, &err), 0);
    assert_true(WIFEXITED(rep.wait_status) && WEXITSTATUS(rep.wait_status) == 1);
    assert_true(group_gone(pgid));
    qe_engine_free(e);
}

static void test_port_in_use_and_missing_binary(void **state)
{
    NEED_FAKE();
    fx_env(f, "FAKE_VLLM_MODE", "");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    f->args.port = ntohs(sa.sin_port);
    assert_false(qe_engine_port_is_free(f->args.port));
    int before, after;
    json_decref(last_record(f, &before));
    expect_start_failure(f, QE_ENGINE_CAUSE_PORT_IN_USE, NULL, false);
    json_decref(last_record(f, &after));
    assert_int_equal(after, before); /* refused before spawning anything */
    close(fd);
    f->args.port = 0;

    f->spec.binary = "/nonexistent/vllm";
    qe_engine *e = NULL;
    qe_engine_failure fail;
    qe_err err = {0};
    assert_int_equal(qe_engine_start(&f->spec, &e, &fail, &err), QE_EINVAL);
    assert_int_equal(fail.cause, QE_ENGINE_CAUSE_EXEC);
    assert_non_null(strstr(err.msg, "/nonexistent/vllm"));
    f->spec.binary = NULL;
}

static void test_endpoint_down(void **state)
{
    (void)state;
    qe_err err = {0};
    double t0 = now_s();
    /* port 9 (discard) on loopback: nothing listens in the test sandbox */
    assert_int_equal(qe_engine_wait_endpoint("http://127.0.0.1:9", NULL, NULL, 0.6, &err), QE_ENET);
    assert_true(now_s() - t0 < 5);
    assert_non_null(strstr(err.msg, "127.0.0.1:9/health"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_and_dry_run),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_spec_from_example_plan),
        cmocka_unit_test(test_which),
        cmocka_unit_test(test_endpoint_down),
        cmocka_unit_test_setup_teardown(test_healthy_start_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oom_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_startup_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignore_sigterm_needs_sigkill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_in_use_and_missing_binary, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
