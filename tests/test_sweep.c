/* Tests for src/sweep.c, src/lmeval_engine.c and `qeval sweep`.
 *
 * Three layers:
 *  - the scheduler as a pure function (plan order, budget, high priority
 *    first, measured rates, skipped pairs and their reasons);
 *  - qe_sweep_run in-process with tests/fake_vllm as `vllm` and a fake
 *    evaluation callback (server crash mid-task -> one restart; crash twice
 *    -> model failed; budget with a fake clock);
 *  - the CLI end to end with fake_vllm + fake_server (scripted answers) and
 *    the real runner: full 3 x 2 sweep (order, flags, env, files, accuracy,
 *    rerun sends nothing), OOM at the second model's start, priority under
 *    a tight budget, kill -9 then resume, SIGINT then resume, dry run,
 *    invalid plan, and the lm-eval engine with tests/fake_lm_eval.sh as
 *    `python`.
 * After every test that starts servers, every process group fake_vllm
 * recorded must be gone (no orphans). Needs QEVAL_BUILD (make test sets it);
 * without it the server tests are skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "file_util.h"
#include "lmeval_engine.h"
#include "plan.h"
#include "proc.h"
#include "sweep.h"
#include "task.h"

/* ---- helpers ----------------------------------------------------------- */

static bool task_exists(const char *name)
{
    return qe_task_find(name) != NULL;
}

static qe_plan *plan_from(const char *yaml)
{
    qe_plan *p = NULL;
    qe_err e = {0};
    int rc = qe_plan_parse(yaml, strlen(yaml), "test.yaml", task_exists, &p, &e);
    if (rc)
        fprintf(stderr, "plan: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return p;
}

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) && errno == EINTR) {
    }
}

/* The whole file, "" when it cannot be read. */
static char *slurp_text(const char *path)
{
    char *s = slurp(path, NULL);
    return s ? s : strdup("");
}

static size_t count_sub(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- scheduler (pure) --------------------------------------------------- */

static const char *PLAN3 =
    "name: t\n"
    "engine: {kind: vllm, tensor_parallel_size: 2}\n"
    "models:\n"
    "  - {name: nvfp4, model: RedHatAI/Qwen3-32B-NVFP4}\n"
    "  - {name: fp8, model: Qwen/Qwen3-32B-FP8}\n"
    "  - {name: bf16, model: Qwen/Qwen3-32B}\n"
    "tasks:\n"
    "  - {task: hendrycks_math500, limit: 100}\n"
    "  - {task: aime24, limit: 50, priority: high}\n";

static void test_count_limits(void **state)
{
    (void)state;
    qe_plan *p = plan_from(PLAN3);
    qe_sweep_count c;
    assert_int_equal(qe_sweep_count_task(p, 1, &c, NULL), 0);
    assert_int_equal(c.dataset_size, 30); /* AIME 2024 has 30 problems */
    assert_int_equal(c.docs, 30);
    assert_true(c.clamped);
    assert_int_equal(c.requests, 30);
    assert_int_equal(qe_sweep_count_task(p, 0, &c, NULL), 0);
    assert_int_equal(c.docs, 100);
    assert_false(c.clamped);
    assert_int_equal(c.dataset_size, 500);
    qe_plan_free(p);

    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y, "%sgeneration: {repeats: 3}\n", PLAN3);
    p = plan_from(qe_buf_str(&y));
    assert_int_equal(qe_sweep_count_task(p, 0, &c, NULL), 0);
    assert_int_equal(c.requests, 300);
    qe_plan_free(p);
    qe_buf_free(&y);
}

static const size_t REQ3[6] = {100, 30, 100, 30, 100, 30};

static void test_schedule_plan_order(void **state)
{
    (void)state;
    qe_plan *p = plan_from(PLAN3);
    qe_sweep_sched_in in = {.requests = REQ3, .default_rate = 1, .default_startup = 10,
                            .running_model = (size_t)-1, .kind = QE_PLAN_ENGINE_VLLM};
    qe_sweep_schedule s;
    assert_int_equal(qe_sweep_schedule_make(p, &in, &s, NULL), 0);
    assert_int_equal(s.n_steps, 6);
    assert_int_equal(s.n_skipped, 0);
    assert_false(s.priority_mode);
    static const size_t want[6][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {2, 0}, {2, 1}};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(s.steps[i].model, want[i][0]);
        assert_int_equal(s.steps[i].task, want[i][1]);
        assert_int_equal(s.steps[i].new_server, i % 2 == 0);
    }
    assert_int_equal(s.server_starts, 3);
    assert_true(fabs(s.est_plain_s - 3 * (10 + 100 + 30)) < 1e-9);
    qe_sweep_schedule_free(&s);

    /* a budget that fits with the 10% margin keeps the plan order; one that
     * fits only exactly does not */
    in.has_budget = true;
    in.budget_left = 463;
    assert_int_equal(qe_sweep_schedule_make(p, &in, &s, NULL), 0);
    assert_false(s.priority_mode);
    assert_int_equal(s.n_steps, 6);
    qe_sweep_schedule_free(&s);
    in.budget_left = 420;
    assert_int_equal(qe_sweep_schedule_make(p, &in, &s, NULL), 0);
    assert_true(s.priority_mode);
    assert_int_equal(s.steps[0].task, 1);
    qe_sweep_schedule_free(&s);

    /* the server already running for fp8 costs no start */
    enum qe_sweep_status st[6] = {QE_SWEEP_DONE, QE_SWEEP_DONE, 0, 0, 0, 0};
    in.status = st;
    in.running_model = 1;
    in.has_budget = false;
    assert_int_equal(qe_sweep_schedule_make(p, &in, &s, NULL), 0);
    assert_int_equal(s.n_steps, 4);
    assert_int_equal(s.steps[0].model, 1);
    assert_false(s.steps[0].new_server);
    assert_true(fabs(s.steps[0].est_s - 100) < 1e-9);
    assert_int_equal(s.server_starts, 1);
    qe_sweep_schedule_free(&s);

    /* --only-model */
    bool sel[3] = {false, false, true};
    in.selected = sel;
    assert_int_equal(qe_sweep_schedule_make(p, &in, &s, NULL), 0);
    assert_int_equal(s.n_steps, 2);
    assert_int_equal(s.steps[0].model, 2);
    assert_int_equal(s.steps[1].model, 2);
    qe_sweep_schedule_free(&s);
    qe_plan_free(p);
}

static void test_schedule_priority_under_budget(void **state)
{
    (void)state;
    qe_plan *p = plan_from(PLAN3);
    /* plan order needs 3 x (10 + 100 + 30) = 420 s; 240 s left */
    qe_sweep_sched_in in = {.requests = REQ3, .default_rate = 1, .default_startup = 10, .has_budget = true,
                            .budget_left = 240, .running_model = (size_t)-1, .kind = QE_PLAN_ENGINE_VLLM};
    qe_sweep_schedule s;
    assert_int_equal(qe_sweep_schedule_make(p, &in, &s, NULL), 0);
    assert_true(s.priority_mode);
    /* AIME24 for all three first (3 x 40 s), then MATH-500 as time allows:
     * nvfp4's (110 s with a new start) fits the 120 s left, the others not */
    assert_int_equal(s.n_steps, 4);
    static const size_t want[4][2] = {{0, 1}, {1, 1}, {2, 1}, {0, 0}};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(s.steps[i].model, want[i][0]);
        assert_int_equal(s.steps[i].task, want[i][1]);
        assert_true(s.steps[i].new_server); /* nvfp4 is started a second time */
    }
    assert_int_equal(s.server_starts, 4);
    assert_int_equal(s.n_skipped, 2);
    assert_int_equal(s.skipped[0].model, 1);
    assert_int_equal(s.skipped[0].task, 0);
    assert_int_equal(s.skipped[1].model, 2);
    assert_non_null(strstr(s.skipped[0].reason, "does not fit the budget"));
    assert_true(fabs(s.est_s - 230) < 1e-9);
    qe_sweep_schedule_free(&s);

    /* high priority is never dropped by an estimate, even if it alone is too long */
    in.budget_left = 50;
    assert_int_equal(qe_sweep_schedule_make(p, &in, &s, NULL), 0);
    assert_int_equal(s.n_steps, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(s.steps[i].task, 1);
    assert_int_equal(s.n_skipped, 3);
    qe_sweep_schedule_free(&s);

    /* the budget is used up: nothing runs, everything pending is skipped */
    in.budget_left = -1;
    assert_int_equal(qe_sweep_schedule_make(p, &in, &s, NULL), 0);
    assert_int_equal(s.n_steps, 0);
    assert_int_equal(s.n_skipped, 6);
    assert_non_null(strstr(s.skipped[0].reason, "used up"));
    qe_sweep_schedule_free(&s);
    qe_plan_free(p);
}

static void test_schedule_measured_rates(void **state)
{
    (void)state;
    qe_plan *p = plan_from(PLAN3);
    /* MATH-500 measured at 10 req/s on nvfp4: the other models use that
     * rate for it; AIME24 unmeasured stays at the default 1 req/s */
    double rate[6] = {10, 0, 0, 0, 0, 0};
    enum qe_sweep_status st[6] = {QE_SWEEP_DONE, 0, 0, 0, 0, 0};
    qe_sweep_sched_in in = {.requests = REQ3, .rate = rate, .status = st, .default_rate = 1,
                            .default_startup = 10, .startup_s = 2, .running_model = 0,
                            .kind = QE_PLAN_ENGINE_VLLM};
    qe_sweep_schedule s;
    assert_int_equal(qe_sweep_schedule_make(p, &in, &s, NULL), 0);
    assert_int_equal(s.n_steps, 5);
    assert_int_equal(s.steps[0].model, 0); /* nvfp4 aime24 on the running server */
    assert_true(fabs(s.steps[0].est_s - 30) < 1e-9);
    assert_false(s.steps[0].rate_measured);
    assert_int_equal(s.steps[1].model, 1); /* fp8 math500: measured start 2 s + 100/10 */
    assert_true(fabs(s.steps[1].est_s - 12) < 1e-9);
    assert_true(s.steps[1].rate_measured);
    qe_sweep_schedule_free(&s);

    /* endpoint: no start cost; lm-eval: a start for every step */
    in.kind = QE_PLAN_ENGINE_ENDPOINT;
    assert_int_equal(qe_sweep_schedule_make(p, &in, &s, NULL), 0);
    assert_true(fabs(s.steps[1].est_s - 10) < 1e-9);
    assert_int_equal(s.server_starts, 0);
    qe_sweep_schedule_free(&s);
    in.kind = QE_PLAN_ENGINE_LMEVAL;
    assert_int_equal(qe_sweep_schedule_make(p, &in, &s, NULL), 0);
    assert_true(fabs(s.steps[0].est_s - 32) < 1e-9);
    assert_int_equal(s.server_starts, 5);
    qe_sweep_schedule_free(&s);
    qe_plan_free(p);
}

static void test_pair_config_changes(void **state)
{
    (void)state;
    qe_plan *a = plan_from(PLAN3);
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y, "%sgeneration: {max_gen_toks: 2048}\n", PLAN3);
    qe_plan *b = plan_from(qe_buf_str(&y));
    qe_buf ca = QE_BUF_INIT, cb = QE_BUF_INIT, cc = QE_BUF_INIT;
    qe_sweep_pair_config(a, 0, 0, &ca);
    qe_sweep_pair_config(b, 0, 0, &cb);
    qe_sweep_pair_config(a, 1, 0, &cc);
    assert_string_not_equal(qe_buf_str(&ca), qe_buf_str(&cb)); /* settings matter */
    assert_string_not_equal(qe_buf_str(&ca), qe_buf_str(&cc)); /* so does the model */
    qe_buf_free(&ca);
    qe_buf_free(&cb);
    qe_buf_free(&cc);
    qe_buf_free(&y);
    qe_plan_free(a);
    qe_plan_free(b);
}

static void test_lmeval_argv_matches_document(void **state)
{
    (void)state;
    /* the experiment document's §6.1 command, with our output name */
    const char *yaml =
        "name: t\n"
        "env: {HF_HOME: /data/bench/hf}\n"
        "engine: {kind: lm-eval, binary: /data/venv/bin/python, tensor_parallel_size: 2, "
        "gpu_memory_utilization: 0.90, max_model_len: 4096, max_num_seqs: 32, download_dir: /data/bench/hf}\n"
        "models: [{name: bf16, model: Qwen/Qwen3-32B}]\n"
        "tasks: [{task: aime24, limit: 50}]\n"
        "generation: {apply_chat_template: true, max_gen_toks: 1024, temperature: 0}\n";
    qe_plan *p = plan_from(yaml);
    qe_buf out = QE_BUF_INIT;
    assert_int_equal(qe_lmeval_dry_run_cmd(p, 0, 0, "/r/lmeval_tp2_bf16_aime24_limit50.json", &out, NULL), 0);
    assert_string_equal(qe_buf_str(&out),
                        "env HF_HOME=/data/bench/hf\n"
                        "/data/venv/bin/python -m lm_eval --model vllm --model_args "
                        "pretrained=Qwen/Qwen3-32B,tensor_parallel_size=2,gpu_memory_utilization=0.90,"
                        "max_model_len=4096,max_num_seqs=32,download_dir=/data/bench/hf --tasks aime24 "
                        "--batch_size 1 --limit 50 --apply_chat_template --gen_kwargs max_gen_toks=1024 "
                        "--log_samples --output_path /r/lmeval_tp2_bf16_aime24_limit50.json\n");
    qe_buf_free(&out);
    qe_plan_free(p);

    /* think: off reaches lm-eval's vllm backend as enable_thinking=False;
     * a sampling temperature and a system instruction are passed too */
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y, "%.*sgeneration: {apply_chat_template: true, max_gen_toks: 1024, temperature: 0.6, think: off, "
                      "system_instruction: \"Be brief.\"}\n",
                  (int)(strstr(yaml, "generation:") - yaml), yaml);
    p = plan_from(qe_buf_str(&y));
    char **argv;
    assert_int_equal(qe_lmeval_build_argv(p, 0, 0, "/r/x.json", &argv, NULL), 0);
    assert_string_equal(argv[0], "/data/venv/bin/python");
    assert_non_null(strstr(argv[6], ",download_dir=/data/bench/hf,enable_thinking=False"));
    bool sys = false, gk = false;
    for (size_t i = 0; argv[i]; i++) {
        if (!strcmp(argv[i], "--system_instruction"))
            sys = argv[i + 1] && !strcmp(argv[i + 1], "Be brief.");
        if (!strcmp(argv[i], "--gen_kwargs"))
            gk = argv[i + 1] && !strcmp(argv[i + 1], "max_gen_toks=1024,temperature=0.60");
    }
    assert_true(sys);
    assert_true(gk);
    qe_lmeval_strv_free(argv);
    qe_buf_free(&y);
    qe_plan_free(p);
}

static void test_lmeval_locate_and_read(void **state)
{
    (void)state;
    char dir[] = "/tmp/qe_sweep_loc_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/x_2025-12-24T00-52-25.664596.json", dir);
    write_file(path, "{\"results\":{\"aime24\":{\"alias\":\"aime24\",\"exact_match,none\":0.1,"
                     "\"exact_match_stderr,none\":0.05}},\"n-samples\":{\"aime24\":{\"original\":30,\"effective\":30}}}");
    char *old[] = {strdup("x_2025-12-24T00-52-25.664596.json")};
    char *r = NULL, *s = NULL;
    /* the file that existed before is not taken for a new one */
    assert_int_equal(qe_lmeval_locate(dir, "x", "aime24", old, 1, &r, &s, NULL), QE_EINVAL);
    snprintf(path, sizeof path, "%s/x_2025-12-24T01-00-00.000001.json", dir);
    write_file(path, "{\"results\":{\"aime24\":{\"exact_match,none\":0.2,\"exact_match_stderr,none\":0.07}},"
                     "\"n-samples\":{\"aime24\":{\"effective\":30}}}");
    snprintf(path, sizeof path, "%s/samples_aime24_2025-12-24T01-00-00.000001.jsonl", dir);
    write_file(path, "{}\n");
    snprintf(path, sizeof path, "%s/xy_2025-12-24T02-00-00.000001.json", dir); /* other stem */
    write_file(path, "{}");
    assert_int_equal(qe_lmeval_locate(dir, "x", "aime24", old, 1, &r, &s, NULL), 0);
    assert_non_null(strstr(r, "/x_2025-12-24T01-00-00.000001.json"));
    assert_non_null(s);
    assert_non_null(strstr(s, "/samples_aime24_2025-12-24T01-00-00.000001.jsonl"));
    double acc, se;
    size_t n;
    assert_int_equal(qe_lmeval_read_metric(r, "aime24", &acc, &se, &n, NULL), 0);
    assert_true(acc == 0.2 && se == 0.07 && n == 30);
    /* gsm8k: strict-match (the first filter, named in the sweep's table)
     * whatever the order of the keys */
    snprintf(path, sizeof path, "%s/g.json", dir);
    write_file(path, "{\"results\":{\"gsm8k\":{\"exact_match,flexible-extract\":0.9,"
                     "\"exact_match_stderr,flexible-extract\":0.01,\"exact_match,strict-match\":0.8,"
                     "\"exact_match_stderr,strict-match\":0.02}},\"n-samples\":{\"gsm8k\":{\"effective\":5}}}");
    assert_int_equal(qe_lmeval_read_metric(path, "gsm8k", &acc, &se, &n, NULL), 0);
    assert_true(acc == 0.8 && se == 0.02 && n == 5);
    free(r);
    free(s);
    free(old[0]);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- fixtures with fake_vllm -------------------------------------------- */

typedef struct {
    char dir[256];
    char bin[300];
    char path_env[4096];
    char record[320];  /* FAKE_VLLM_RECORD */
    char reqlog[320];  /* FAKE_SERVER_REQUEST_LOG */
    char script[320];  /* FAKE_SERVER_SCRIPT */
    char out[320];     /* plan output dir */
    char plan[320];
    char so[320], se[320]; /* qeval stdout / stderr */
} fx;

static int fx_setup(void **state)
{
    const char *build = getenv("QEVAL_BUILD");
    fx *f = calloc(1, sizeof *f);
    *state = f;
    if (!build)
        return 0;
    snprintf(f->dir, sizeof f->dir, "/tmp/qe_sweep_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->bin, sizeof f->bin, "%s/bin", f->dir);
    mkdir(f->bin, 0755);
    char target[2048], link[400];
    snprintf(target, sizeof target, "%s/tests/fake_vllm", build);
    snprintf(link, sizeof link, "%s/vllm", f->bin);
    if (symlink(target, link))
        return -1;
    char cwd[1024];
    if (!getcwd(cwd, sizeof cwd))
        return -1;
    snprintf(target, sizeof target, "%s/tests/fake_lm_eval.sh", cwd);
    snprintf(link, sizeof link, "%s/python", f->bin);
    if (symlink(target, link))
        return -1;
    const char *path = getenv("PATH");
    snprintf(f->path_env, sizeof f->path_env, "%s:%s", f->bin, path ? path : "/usr/bin:/bin");
    snprintf(f->record, sizeof f->record, "%s/record.jsonl", f->dir);
    snprintf(f->reqlog, sizeof f->reqlog, "%s/requests.jsonl", f->dir);
    snprintf(f->script, sizeof f->script, "%s/script.jsonl", f->dir);
    snprintf(f->out, sizeof f->out, "%s/out", f->dir);
    snprintf(f->plan, sizeof f->plan, "%s/plan.yaml", f->dir);
    snprintf(f->so, sizeof f->so, "%s/stdout.txt", f->dir);
    snprintf(f->se, sizeof f->se, "%s/stderr.txt", f->dir);
    write_file(f->script, "");
    return 0;
}

/* Every process group fake_vllm recorded must be gone. */
static void assert_no_orphans(const fx *f)
{
    char *rec = slurp_text(f->record);
    size_t starts = 0;
    for (char *line = rec; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        json_t *j = json_loads(line, 0, NULL);
        if (j) {
            pid_t pg = (pid_t)json_integer_value(json_object_get(j, "pgid"));
            starts++;
            errno = 0;
            /* zombies do not count: this machine's PID 1 may never reap
             * the children of a killed qeval */
            int alive = pg > 1 && !qe_proc_group_gone(pg);
            if (alive) {
                char cmd[512];
                qe_proc_cmdline(pg, cmd, sizeof cmd);
                fprintf(stderr, "orphan process group %d left running: %s (start record %zu: %s)\n",
                        (int)pg, cmd, starts, line);
                kill(-pg, SIGKILL);
            }
            assert_false(alive);
            json_decref(j);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(rec);
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    if (f && f->dir[0]) {
        assert_no_orphans(f);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
        if (system(cmd)) {
        }
    }
    free(f);
    return 0;
}

#define NEED_BUILD(f)                                                                                           \
    do {                                                                                                        \
        if (!(f)->dir[0]) {                                                                                     \
            skip();                                                                                             \
        }                                                                                                       \
    } while (0)

/* The plan of the tests: 3 models x 2 tasks, small limits. */
static void write_plan(fx *f, const char *budget, const char *extra_gen, const char *engine_kind, int math_limit)
{
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y,
                  "name: sweep-test\n"
                  "%s%s%s"
                  "output: %s\n"
                  "env: {CUDA_VISIBLE_DEVICES: \"0,1\", HF_HOME: %s/hf, VLLM_ATTENTION_BACKEND: TRITON_ATTN}\n"
                  "engine: {kind: %s, tensor_parallel_size: 2, gpu_memory_utilization: 0.90, max_model_len: 4096,"
                  " max_num_seqs: 4, download_dir: %s/hf, stop_grace: 5s, startup_timeout: 30s}\n"
                  "models:\n"
                  "  - {name: nvfp4, model: RedHatAI/Qwen3-32B-NVFP4}\n"
                  "  - {name: fp8, model: Qwen/Qwen3-32B-FP8}\n"
                  "  - {name: bf16, model: Qwen/Qwen3-32B}\n"
                  "tasks:\n"
                  "  - {task: hendrycks_math500, limit: %d}\n"
                  "  - {task: aime24, limit: 2, priority: high}\n"
                  "generation: {apply_chat_template: true, max_gen_toks: 1024, temperature: 0%s}\n",
                  budget ? "budget: " : "", budget ? budget : "", budget ? "\n" : "", f->out, f->dir, engine_kind,
                  f->dir, math_limit, extra_gen ? extra_gen : "");
    write_file(f->plan, qe_buf_str(&y));
    qe_buf_free(&y);
}

/* Scripted answers: aime24 doc 0 right, doc 1 wrong; everything else "I do
 * not know." (wrong), after latency_ms. */
static void write_script(fx *f, long latency_ms)
{
    const qe_task *t = qe_task_find("aime24");
    assert_non_null(t);
    qe_buf text = QE_BUF_INIT, gold = QE_BUF_INIT, out = QE_BUF_INIT;
    assert_int_equal(qe_task_doc_text(t, 0, &text, NULL), 0);
    assert_int_equal(qe_task_target(t, 0, &gold, NULL), 0);
    /* a distinctive piece of the problem statement */
    char match[61];
    snprintf(match, sizeof match, "%s", qe_buf_str(&text) + 10);
    qe_buf ans = QE_BUF_INIT;
    qe_buf_printf(&ans, "So the answer is $\\boxed{%s}$.", qe_buf_str(&gold));
    json_t *r1 = json_pack("{s:s,s:s,s:i}", "match", match, "content", qe_buf_str(&ans), "latency_ms", (int)latency_ms);
    json_t *r2 = json_pack("{s:s,s:i}", "content", "I do not know.", "latency_ms", (int)latency_ms);
    char *a = json_dumps(r1, JSON_COMPACT), *b = json_dumps(r2, JSON_COMPACT);
    qe_buf_printf(&out, "%s\n%s\n", a, b);
    write_file(f->script, qe_buf_str(&out));
    free(a);
    free(b);
    json_decref(r1);
    json_decref(r2);
    qe_buf_free(&text);
    qe_buf_free(&gold);
    qe_buf_free(&out);
    qe_buf_free(&ans);
}

/* Starts qeval with args (NULL-terminated) and extra env "K=V" (NULL-terminated). */
static pid_t qeval_spawn(const fx *f, const char *const *args, const char *const *env)
{
    pid_t pid = fork();
    if (pid == 0) {
        char qe[1024];
        snprintf(qe, sizeof qe, "%s/qeval", getenv("QEVAL_BUILD"));
        setenv("PATH", f->path_env, 1);
        setenv("FAKE_VLLM_RECORD", f->record, 1);
        setenv("FAKE_SERVER_REQUEST_LOG", f->reqlog, 1);
        setenv("FAKE_SERVER_SCRIPT", f->script, 1);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        freopen(f->so, "w", stdout);
        freopen(f->se, "w", stderr);
        const char *av[32];
        size_t n = 0;
        av[n++] = qe;
        for (size_t i = 0; args[i] && n < 31; i++)
            av[n++] = args[i];
        av[n] = NULL;
        execv(qe, (char *const *)av);
        _exit(127);
    }
    return pid;
}

/* Waits up to timeout seconds; returns the exit code (or 128 + signal). */
static int qeval_wait(pid_t pid, double timeout)
{
    double t0 = mono();
    int st;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (mono() - t0 > timeout) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("qeval did not finish within %.0f s", timeout);
        }
        sleep_ms(20);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int qeval_run(const fx *f, const char *const *args, const char *const *env)
{
    return qeval_wait(qeval_spawn(f, args, env), 120);
}

/* answered completion requests in the request log, and whether any
 * (model, prompt) pair was answered twice */
static size_t answered_requests(const fx *f, bool *dup)
{
    char *log = slurp_text(f->reqlog);
    size_t n = 0, cap = 0;
    char **seen = NULL;
    *dup = false;
    for (char *line = log; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        json_t *j = json_loads(line, 0, NULL);
        const char *path = json_string_value(json_object_get(j, "path"));
        if (j && path && strstr(path, "completions") && json_is_true(json_object_get(j, "answered"))) {
            char key[512];
            snprintf(key, sizeof key, "%s|%s", json_string_value(json_object_get(j, "model")),
                     json_string_value(json_object_get(j, "prompt_sha256")));
            for (size_t i = 0; i < n; i++)
                if (!strcmp(seen[i], key))
                    *dup = true;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                seen = realloc(seen, cap * sizeof *seen);
            }
            seen[n++] = strdup(key);
        }
        json_decref(j);
        line = nl ? nl + 1 : NULL;
    }
    for (size_t i = 0; i < n; i++)
        free(seen[i]);
    free(seen);
    free(log);
    return n;
}

/* (model, prompt) keys of answered completion requests, in log order.
 * Returns the count; *keys is a malloc'd array of malloc'd strings. */
static size_t answered_keys(const fx *f, char ***keys)
{
    char *log = slurp_text(f->reqlog);
    size_t n = 0, cap = 0;
    *keys = NULL;
    for (char *line = log; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        json_t *j = json_loads(line, 0, NULL);
        const char *path = json_string_value(json_object_get(j, "path"));
        if (j && path && strstr(path, "completions") && json_is_true(json_object_get(j, "answered"))) {
            char key[512];
            snprintf(key, sizeof key, "%s|%s", json_string_value(json_object_get(j, "model")),
                     json_string_value(json_object_get(j, "prompt_sha256")));
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                *keys = realloc(*keys, cap * sizeof **keys);
            }
            (*keys)[n++] = strdup(key);
        }
        json_decref(j);
        line = nl ? nl + 1 : NULL;
    }
    free(log);
    return n;
}

static void keys_free(char **k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(k[i]);
    free(k);
}

/* After an interruption at n1 answered requests (num_concurrent 1) and a
 * rerun: every (model, prompt) answered, and nothing asked again except the
 * one request that was in flight when qeval died (answered by the server
 * after the client was gone, so never stored: asking it again is right). */
static void assert_resumed_without_repeats(const fx *f, size_t n1, size_t want_total)
{
    char **k;
    size_t n = answered_keys(f, &k);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(k[i], k[j]);
        if (!seen) {
            distinct++;
            continue;
        }
        /* a repeat: only the last request answered in the first run may be */
        assert_true(i >= n1);
        assert_true(n1 > 0);
        if (strcmp(k[i], k[n1 - 1]))
            fail_msg("request %s was answered in the first run and asked again", k[i]);
    }
    assert_int_equal(distinct, want_total);
    assert_true(n <= want_total + 1);
    keys_free(k, n);
}

/* models (argv[2] of each start) in the order fake_vllm was started */
static void started_models(const fx *f, char *out, size_t n)
{
    char *rec = slurp_text(f->record);
    out[0] = '\0';
    for (char *line = rec; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        json_t *j = json_loads(line, 0, NULL);
        const char *m = json_string_value(json_array_get(json_object_get(j, "argv"), 2));
        if (m) {
            size_t l = strlen(out);
            snprintf(out + l, n - l, "%s%s", l ? "," : "", m);
        }
        json_decref(j);
        line = nl ? nl + 1 : NULL;
    }
    free(rec);
}

static pid_t last_pgid(const fx *f);

/* ---- CLI end to end ----------------------------------------------------- */

static void test_cli_full_sweep(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    write_plan(f, NULL, NULL, "vllm", 3);
    write_script(f, 0);
    const char *args[] = {"sweep", f->plan, NULL};
    int rc = qeval_run(f, args, NULL);
    char *so = slurp_text(f->so), *se = slurp_text(f->se);
    if (rc)
        fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", so, se);
    assert_int_equal(rc, 0);

    /* order: one server per model, in plan order */
    char models[1024];
    started_models(f, models, sizeof models);
    assert_string_equal(models, "RedHatAI/Qwen3-32B-NVFP4,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B");
    /* flags and env as the plan says */
    char *rec = slurp_text(f->record);
    assert_int_equal(count_sub(rec, "\"--tensor-parallel-size\", \"2\"") + count_sub(rec, "\"--tensor-parallel-size\",\"2\""), 3);
    assert_int_equal(count_sub(rec, "\"0.90\""), 3);
    assert_int_equal(count_sub(rec, "\"--served-model-name\""), 3);
    assert_int_equal(count_sub(rec, "\"CUDA_VISIBLE_DEVICES\": \"0,1\"") + count_sub(rec, "\"CUDA_VISIBLE_DEVICES\":\"0,1\""), 3);
    assert_int_equal(count_sub(rec, "TRITON_ATTN"), 3);
    free(rec);

    /* outputs under <output>/<name>/ with the plan's naming */
    static const char *const names[] = {"nvfp4", "fp8", "bf16"};
    for (size_t i = 0; i < 3; i++) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "ls %s/%s/lmeval_tp2_%s_aime24_limit2_*.json %s/%s/lmeval_tp2_%s_hendrycks_math500_limit3_*.json "
                 "%s/%s/samples_aime24_*.jsonl %s/%s/vllm_serve.log >/dev/null 2>&1",
                 f->out, names[i], names[i], f->out, names[i], names[i], f->out, names[i], f->out, names[i]);
        assert_int_equal(system(cmd), 0);
    }
    /* the table: aime24 1 of 2 right by the script, math500 all wrong */
    assert_int_equal(count_sub(so, "aime24             exact_match    0.5000"), 3);
    assert_int_equal(count_sub(so, "hendrycks_math500  exact_match    0.0000"), 3);
    assert_int_equal(count_sub(so, "  done"), 6);
    assert_non_null(strstr(so, "Marlin")); /* NVFP4's kernel line labels its results */
    bool dup;
    assert_int_equal(answered_requests(f, &dup), 15);
    assert_false(dup);
    free(so);
    free(se);

    /* rerun: nothing is redone, no server started, no request sent */
    rc = qeval_run(f, args, NULL);
    assert_int_equal(rc, 0);
    started_models(f, models, sizeof models);
    assert_int_equal(count_sub(models, ","), 2);
    assert_int_equal(answered_requests(f, &dup), 15);
    so = slurp_text(f->so);
    assert_int_equal(count_sub(so, "from an earlier run"), 6);
    free(so);

    /* --force --only-model fp8 redoes fp8 only (its server starts again) */
    const char *fargs[] = {"sweep", f->plan, "--force", "--only-model", "fp8", NULL};
    rc = qeval_run(f, fargs, NULL);
    assert_int_equal(rc, 0);
    started_models(f, models, sizeof models);
    assert_string_equal(models, "RedHatAI/Qwen3-32B-NVFP4,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B,Qwen/Qwen3-32B-FP8");
}

static void test_cli_oom_second_model(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    /* per-model failure: a vllm wrapper that runs out of memory for FP8 only */
    char wrapper[400], body[1200];
    snprintf(wrapper, sizeof wrapper, "%s/vllm", f->bin);
    unlink(wrapper);
    snprintf(body, sizeof body,
             "#!/bin/sh\ncase \"$2\" in *FP8*) FAKE_VLLM_MODE=oom; export FAKE_VLLM_MODE;; esac\n"
             "exec %s/tests/fake_vllm \"$@\"\n", getenv("QEVAL_BUILD"));
    write_file(wrapper, body);
    chmod(wrapper, 0755);
    write_plan(f, NULL, NULL, "vllm", 2);
    write_script(f, 0);
    const char *args[] = {"sweep", f->plan, NULL};
    int rc = qeval_run(f, args, NULL);
    char *so = slurp_text(f->so), *se = slurp_text(f->se);
    assert_int_equal(rc, 1); /* partial: the other models are done */
    char models[1024];
    started_models(f, models, sizeof models);
    assert_string_equal(models, "RedHatAI/Qwen3-32B-NVFP4,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B");
    assert_int_equal(count_sub(so, "  done"), 4);
    assert_int_equal(count_sub(so, "failed: server did not start (CUDA out of memory)"), 2);
    assert_non_null(strstr(se, "torch.OutOfMemoryError")); /* the log tail is shown */
    free(so);
    free(se);
}

static void test_cli_crash_mid_task_restarts(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    /* FP8's first server dies after answering 3 requests (fake_server
     * die-after:3); the sweep restarts it once and the task resumes */
    char wrapper[400], body[1500];
    snprintf(wrapper, sizeof wrapper, "%s/vllm", f->bin);
    unlink(wrapper);
    snprintf(body, sizeof body,
             "#!/bin/sh\ncase \"$2\" in *FP8*) if [ ! -e %s/crashed ]; then : > %s/crashed; "
             "FAKE_SERVER_FAULT=die-after:3; export FAKE_SERVER_FAULT; fi;; esac\n"
             "exec %s/tests/fake_vllm \"$@\"\n", f->dir, f->dir, getenv("QEVAL_BUILD"));
    write_file(wrapper, body);
    chmod(wrapper, 0755);
    write_plan(f, NULL, ", num_concurrent: 1", "vllm", 6);
    write_script(f, 0);
    const char *args[] = {"sweep", f->plan, NULL};
    int rc = qeval_run(f, args, NULL);
    char *so = slurp_text(f->so), *se = slurp_text(f->se);
    if (rc)
        fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", so, se);
    assert_int_equal(rc, 0);
    char models[1024];
    started_models(f, models, sizeof models);
    assert_string_equal(models, "RedHatAI/Qwen3-32B-NVFP4,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B");
    assert_non_null(strstr(se, "fp8: restarting the server once"));
    assert_int_equal(count_sub(so, "  done"), 6);
    /* the 3 answers before the crash were kept: 3 x 8 problems, each once */
    assert_resumed_without_repeats(f, 0, 24);
    free(so);
    free(se);
}

static void test_cli_gpu_memory_not_released(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    /* a fake nvidia-smi: 1000 MiB used before the start, 90000 afterwards */
    char smi[400], body[800];
    snprintf(smi, sizeof smi, "%s/nvidia-smi", f->bin);
    snprintf(body, sizeof body,
             "#!/bin/sh\nif [ -e %s/smi1 ]; then echo 45000; echo 45000; else : > %s/smi1; echo 500; echo 500; fi\n",
             f->dir, f->dir);
    write_file(smi, body);
    chmod(smi, 0755);
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y,
                  "name: gpu\noutput: %s\nengine: {kind: vllm, tensor_parallel_size: 2, stop_grace: 5s}\n"
                  "models: [{name: bf16, model: Qwen/Qwen3-32B}]\ntasks: [{task: aime24, limit: 1}]\n"
                  "generation: {apply_chat_template: true, max_gen_toks: 64, temperature: 0}\n",
                  f->out);
    write_file(f->plan, qe_buf_str(&y));
    qe_buf_free(&y);
    write_script(f, 0);
    const char *args[] = {"sweep", f->plan, NULL};
    assert_int_equal(qeval_run(f, args, NULL), 0); /* a warning, not a failure */
    char *se = slurp_text(f->se);
    assert_non_null(strstr(se, "bf16: warning: GPU memory not released: 90000 MiB used after stop, 1000 MiB before start"));
    free(se);
}

static void test_cli_priority_tight_budget(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    /* 30 MATH-500 problems at an assumed 1 request/s do not fit in 20 s */
    write_plan(f, "20s", NULL, "vllm", 30);
    write_script(f, 0);
    const char *args[] = {"sweep", f->plan, "--assume-rate", "1", "--assume-startup", "1", NULL};
    int rc = qeval_run(f, args, NULL);
    char *so = slurp_text(f->so), *se = slurp_text(f->se);
    assert_int_equal(rc, 1);
    char models[1024];
    started_models(f, models, sizeof models);
    assert_string_equal(models, "RedHatAI/Qwen3-32B-NVFP4,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B");
    assert_int_equal(count_sub(so, "aime24             exact_match    0.5000"), 3);
    assert_int_equal(count_sub(so, "skipped: does not fit the budget"), 3);
    assert_non_null(strstr(se, "high-priority tasks of every model first"));
    assert_int_equal(count_sub(se, "hendrycks_math500: skipped"), 3);
    char *req = slurp_text(f->reqlog);
    assert_null(strstr(req, "Problem:")); /* no MATH-500 request was sent */
    free(req);
    free(so);
    free(se);
}

/* waits until at least n completion requests were answered */
static void wait_answered(const fx *f, size_t n, double timeout)
{
    double t0 = mono();
    bool dup;
    while (answered_requests(f, &dup) < n) {
        if (mono() - t0 > timeout)
            fail_msg("fewer than %zu answers after %.0f s", n, timeout);
        sleep_ms(50);
    }
}

static void test_cli_resume_after_kill9(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    write_plan(f, NULL, ", num_concurrent: 1", "vllm", 8);
    write_script(f, 150);
    const char *args[] = {"sweep", f->plan, NULL};
    pid_t pid = qeval_spawn(f, args, NULL);
    wait_answered(f, 12, 60); /* nvfp4 done (10), fp8 under way */
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    sleep_ms(400); /* the request in flight is answered into a closed socket */
    char **k1;
    size_t before = answered_keys(f, &k1);
    keys_free(k1, before);
    write_script(f, 0);
    int rc = qeval_run(f, args, NULL);
    char *so = slurp_text(f->so), *se = slurp_text(f->se);
    if (rc)
        fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", so, se);
    assert_int_equal(rc, 0);
    /* the orphaned server of the killed run was stopped by the rerun */
    assert_non_null(strstr(se, "left running by an interrupted sweep"));
    /* nvfp4 was finished before the kill: not redone, its server not restarted */
    char models[1024];
    started_models(f, models, sizeof models);
    assert_string_equal(models, "RedHatAI/Qwen3-32B-NVFP4,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B");
    assert_int_equal(count_sub(so, "nvfp4  aime24             exact_match    0.5000"), 1);
    assert_int_equal(count_sub(so, "from an earlier run"), 2);
    /* every problem answered once over both runs (but the one in flight) */
    assert_true(before >= 12);
    assert_resumed_without_repeats(f, before, 30);
    free(so);
    free(se);
}

/* kill -9 at 20 random points of one sweep, one after the other: each
 * rerun resumes (the orphaned server stopped, finished pairs not redone);
 * after the 20th kill (or when a run finished before its kill) a last run
 * completes the sweep. In the end every problem of every model was
 * answered, a problem answered twice only when it was among the last ones
 * answered before a kill (the request in flight and, at most, the one whose
 * commit the kill cut short), the results are those of an uninterrupted
 * sweep and no server is left running. QE_KILL_SEED=N replays. */
#define SWEEP_KILLS 20
static void test_cli_kill9_random_points(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    write_plan(f, NULL, ", num_concurrent: 1", "vllm", 8);
    write_script(f, 25);
    const char *args[] = {"sweep", f->plan, NULL};
    const char *env = getenv("QE_KILL_SEED");
    uint64_t rng = env ? strtoull(env, NULL, 10) : 20261125u;
    print_message("sweep kill -9 at random points: seed %llu (QE_KILL_SEED)\n",
                  (unsigned long long)rng);
    size_t marks[SWEEP_KILLS]; /* answers in the log at each kill */
    int kills = 0, rc = -1;
    for (int trial = 0; kills < SWEEP_KILLS; trial++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        long delay = 50 + (long)((rng >> 33) % 700); /* ms */
        pid_t pid = qeval_spawn(f, args, NULL);
        sleep_ms(delay);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) { /* finished (or failed) before the kill */
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            if (rc != 0) {
                char *se = slurp_text(f->se);
                fail_msg("trial %d: sweep exited %d:\n%s", trial, rc, se);
            }
            break;
        }
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        sleep_ms(150); /* the request in flight is answered into a closed socket */
        char **k;
        marks[kills++] = answered_keys(f, &k);
        keys_free(k, marks[kills - 1]);
    }
    if (rc != 0) /* the 20 kills are done: one last run without a kill */
        rc = qeval_run(f, args, NULL);
    char *so = slurp_text(f->so);
    if (rc)
        fprintf(stderr, "stdout:\n%s\n", so);
    assert_int_equal(rc, 0);
    print_message("%d kills landed mid-sweep\n", kills);
    assert_true(kills >= SWEEP_KILLS / 2); /* most landed before the sweep could finish */
    /* the last run reports all three models, from the store or fresh */
    assert_int_equal(count_sub(so, "aime24             exact_match    0.5000"), 3);
    assert_int_equal(count_sub(so, "hendrycks_math500  exact_match    0.0000"), 3);
    free(so);
    assert_no_orphans(f);
    /* every (model, problem) answered; a repeat only right before a kill */
    char **k;
    size_t n = answered_keys(f, &k);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        size_t first = i;
        for (size_t j = 0; j < i && first == i; j++)
            if (!strcmp(k[i], k[j]))
                first = j;
        if (first == i) {
            distinct++;
            continue;
        }
        bool excused = false; /* first answered among the last 2 before a kill after it */
        for (int m = 0; m < kills && !excused; m++)
            excused = first < marks[m] && first + 2 >= marks[m] && marks[m] <= i;
        if (!excused)
            fail_msg("%s answered at %zu and asked again at %zu", k[i], first, i);
    }
    assert_int_equal(distinct, 30);
    keys_free(k, n);
}

static void test_cli_sigint_then_resume(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    write_plan(f, NULL, ", num_concurrent: 1", "vllm", 8);
    write_script(f, 150);
    const char *args[] = {"sweep", f->plan, NULL};
    pid_t pid = qeval_spawn(f, args, NULL);
    wait_answered(f, 3, 60);
    kill(pid, SIGINT);
    int rc = qeval_wait(pid, 60);
    assert_int_equal(rc, 130);
    /* the server was stopped: its process group is gone */
    assert_no_orphans(f);
    char *state_path = NULL;
    qe_buf b = QE_BUF_INIT;
    qe_buf_printf(&b, "%s/sweep_state.json", f->out);
    state_path = qe_buf_detach(&b);
    char *st = slurp_text(state_path);
    assert_non_null(strstr(st, "\"server\": null"));
    free(st);
    free(state_path);
    sleep_ms(400);
    char **k1;
    size_t before = answered_keys(f, &k1);
    keys_free(k1, before);
    write_script(f, 0);
    rc = qeval_run(f, args, NULL);
    assert_int_equal(rc, 0);
    assert_resumed_without_repeats(f, before, 30);
}

static void test_cli_sigint_during_server_start(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    write_plan(f, NULL, NULL, "vllm", 2);
    write_script(f, 0);
    const char *args[] = {"sweep", f->plan, NULL};
    const char *env[] = {"FAKE_VLLM_STARTUP_MS=20000", NULL};
    pid_t pid = qeval_spawn(f, args, env);
    double t0 = mono();
    struct stat sb;
    while (stat(f->record, &sb) != 0 || sb.st_size == 0) { /* vllm serve has been spawned */
        assert_true(mono() - t0 < 30);
        sleep_ms(20);
    }
    sleep_ms(300);
    double t1 = mono();
    kill(pid, SIGINT);
    assert_int_equal(qeval_wait(pid, 30), 130);
    assert_true(mono() - t1 < 10); /* not the 20 s the start would take */
    assert_no_orphans(f);
    char *se = slurp_text(f->se);
    assert_non_null(strstr(se, "interrupted while the server was starting"));
    free(se);
}

static void test_cli_kill9_during_server_start(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    write_plan(f, NULL, NULL, "vllm", 2);
    write_script(f, 0);
    const char *args[] = {"sweep", f->plan, NULL};
    const char *env[] = {"FAKE_VLLM_STARTUP_MS=60000", NULL};
    pid_t pid = qeval_spawn(f, args, env);
    double t0 = mono();
    struct stat sb;
    char sp[400];
    snprintf(sp, sizeof sp, "%s/sweep_state.json", f->out);
    for (;;) { /* the server is spawned and its process group recorded */
        char *st = slurp_text(sp);
        bool rec = strstr(st, "\"pgid\"") != NULL;
        free(st);
        if (rec && stat(f->record, &sb) == 0 && sb.st_size > 0)
            break;
        assert_true(mono() - t0 < 30);
        sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    pid_t orphan = last_pgid(f);
    assert_true(orphan > 1 && kill(-orphan, 0) == 0); /* still starting, on its own */
    assert_int_equal(qeval_run(f, args, NULL), 0);
    char *se = slurp_text(f->se);
    if (!strstr(se, "left running by an interrupted sweep"))
        fprintf(stderr, "stderr:\n%s\n", se);
    assert_non_null(strstr(se, "left running by an interrupted sweep"));
    free(se);
    /* gone, zombies aside: the killed qeval's children are reaped by PID 1,
     * later or (here) never; kill(-pgid, 0) still finds a zombie */
    assert_true(qe_proc_group_gone(orphan));
    assert_no_orphans(f);
}

static void test_cli_dry_run(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y,
                  "name: dry\nbudget: 3h\noutput: %s\nenv: {HF_HOME: /data/bench/hf}\n"
                  "engine: {kind: vllm, tensor_parallel_size: 2, gpu_memory_utilization: 0.90, max_model_len: 4096,"
                  " max_num_seqs: 32, download_dir: /data/bench/hf}\n"
                  "models:\n  - {name: nvfp4, model: RedHatAI/Qwen3-32B-NVFP4}\n  - {name: bf16, model: Qwen/Qwen3-32B}\n"
                  "tasks:\n  - {task: hendrycks_math500, limit: 100}\n  - {task: aime24, limit: 50, priority: high}\n"
                  "generation: {apply_chat_template: true, max_gen_toks: 1024}\n",
                  f->out);
    write_file(f->plan, qe_buf_str(&y));
    qe_buf_free(&y);
    const char *args[] = {"sweep", "--dry-run", f->plan, NULL};
    assert_int_equal(qeval_run(f, args, NULL), 0);
    char *so = slurp_text(f->so);
    assert_non_null(strstr(so, "30 docs (limit 50 exceeds the dataset: 30 problems)"));
    assert_non_null(strstr(so, "env HF_HOME=/data/bench/hf"));
    assert_non_null(strstr(so, "vllm serve RedHatAI/Qwen3-32B-NVFP4 --tensor-parallel-size 2 "
                               "--gpu-memory-utilization 0.90 --max-model-len 4096 --max-num-seqs 32 "
                               "--download-dir /data/bench/hf --port AUTO --served-model-name RedHatAI/Qwen3-32B-NVFP4"));
    assert_non_null(strstr(so, "total: 260 requests, 2 server starts"));
    assert_non_null(strstr(so, "budget plan: fits in 3h00m"));
    /* what every request carries, and DESIGN's trap: thinking on in 1024 tokens */
    assert_non_null(strstr(so, "\ngeneration: chat template applied, think default (the template's: "
                               "Qwen3 thinks), max_gen_toks 1024, seed 1234, requests in flight: "
                               "each model's max_num_seqs (else 8)\n"));
    assert_non_null(strstr(so, "note: with thinking on, 1024 tokens often end inside <think>"));
    /* plan order: nvfp4 math500, nvfp4 aime24, bf16 math500, bf16 aime24 */
    const char *a = strstr(so, "1. nvfp4 x hendrycks_math500"), *b2 = strstr(so, "2. nvfp4 x aime24"),
               *c = strstr(so, "3. bf16 x hendrycks_math500");
    assert_true(a && b2 && c && a < b2 && b2 < c);
    free(so);
    /* nothing ran, nothing was written */
    struct stat sb;
    assert_int_not_equal(stat(f->out, &sb), 0);

    /* a budget too small: the priority plan, with the second start said.
     * At 1 request/s and 10 s per start: plan order 2 x 140 s > 200 s;
     * AIME24 twice (80 s), then nvfp4's MATH-500 with a new start (110 s). */
    const char *args2[] = {"sweep", "--dry-run", f->plan, "--assume-rate", "1", "--assume-startup", "10", NULL};
    char *text = slurp_text(f->plan);
    char *p = strstr(text, "budget: 3h\n");
    assert_non_null(p);
    qe_buf nt = QE_BUF_INIT;
    qe_buf_printf(&nt, "%.*sbudget: 200s\n%s", (int)(p - text), text, p + strlen("budget: 3h\n"));
    write_file(f->plan, qe_buf_str(&nt));
    qe_buf_free(&nt);
    free(text);
    assert_int_equal(qeval_run(f, args2, NULL), 0);
    so = slurp_text(f->so);
    assert_non_null(strstr(so, "high-priority tasks of every model first"));
    assert_non_null(strstr(so, "start vllm serve again"));
    const char *s1 = strstr(so, "1. nvfp4 x aime24"), *s2 = strstr(so, "2. bf16 x aime24"),
               *s3 = strstr(so, "3. nvfp4 x hendrycks_math500");
    assert_true(s1 && s2 && s3 && s1 < s2 && s2 < s3);
    assert_non_null(strstr(so, "would skip bf16 x hendrycks_math500: does not fit the budget"));
    /* the totals say what the skip leaves out, the rates say whose they are */
    assert_non_null(strstr(so, "total: 260 requests (100 of them in pairs the budget plan below would skip)"));
    assert_non_null(strstr(so, "(as assumed by --assume-rate/--assume-startup until measured;"));
    assert_null(strstr(so, "warning: the high-priority tasks alone"));
    free(so);

    /* a budget below the high-priority work itself (2 x (10 + 30) s): said */
    text = slurp_text(f->plan);
    p = strstr(text, "budget: 200s\n");
    assert_non_null(p);
    qe_buf_printf(&nt, "%.*sbudget: 50s\n%s", (int)(p - text), text, p + strlen("budget: 200s\n"));
    write_file(f->plan, qe_buf_str(&nt));
    qe_buf_free(&nt);
    free(text);
    assert_int_equal(qeval_run(f, args2, NULL), 0);
    so = slurp_text(f->so);
    if (!strstr(so, "warning: the high-priority tasks alone need ~1m20s, more than 50s"))
        fail_msg("no warning:\n%s", so);
    free(so);
}

/* Every option that takes a value takes it as "--name value" and as
 * "--name=value" (and spelled with '_'), like every other command (opt.h);
 * --help lists them all. */
static void test_cli_option_spellings(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    write_plan(f, "200s", NULL, "vllm", 3);
    const char *sep[] = {"sweep", f->plan, "--dry-run", "--assume-rate", "2", "--assume-startup", "10",
                         "--only-model", "fp8", NULL};
    assert_int_equal(qeval_run(f, sep, NULL), 0);
    char *a = slurp_text(f->so);
    assert_non_null(strstr(a, "at 2.00 requests/s and 10s per server start"));
    assert_non_null(strstr(a, "1. fp8 x "));
    assert_null(strstr(a, "nvfp4 x "));
    const char *eq[] = {"sweep", "--dry-run", "--assume-rate=2", "--assume_startup=10", "--only-model=fp8", f->plan,
                        NULL};
    int rc = qeval_run(f, eq, NULL);
    char *b = slurp_text(f->so), *se = slurp_text(f->se);
    if (rc)
        fprintf(stderr, "stderr:\n%s\n", se);
    assert_int_equal(rc, 0);
    assert_string_equal(a, b);
    free(a);
    free(b);
    free(se);

    /* bad and missing values, flags with a value: usage errors */
    const char *bad[] = {"sweep", f->plan, "--dry-run", "--assume-rate=0", NULL};
    assert_int_equal(qeval_run(f, bad, NULL), 2);
    se = slurp_text(f->se);
    assert_non_null(strstr(se, "--assume-rate needs a positive number"));
    free(se);
    const char *missing[] = {"sweep", f->plan, "--dry-run", "--assume-startup", NULL};
    assert_int_equal(qeval_run(f, missing, NULL), 2);
    se = slurp_text(f->se);
    assert_non_null(strstr(se, "qeval sweep: --assume-startup needs a value"));
    free(se);
    const char *flagval[] = {"sweep", f->plan, "--dry-run=yes", NULL};
    assert_int_equal(qeval_run(f, flagval, NULL), 2);
    const char *two[] = {"sweep", f->plan, f->plan, "--dry-run", NULL};
    assert_int_equal(qeval_run(f, two, NULL), 2);

    /* --help: every option, in the usage line too */
    const char *help[] = {"sweep", "--help", NULL};
    assert_int_equal(qeval_run(f, help, NULL), 0);
    char *h = slurp_text(f->so);
    const char *first_nl = strchr(h, '\n'), *usage_end = strstr(h, "\n\n");
    assert_non_null(first_nl);
    assert_non_null(usage_end);
    static const char *const opts[] = {"--dry-run", "--force", "--only-model", "--assume-rate", "--assume-startup"};
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++) {
        const char *at = strstr(h, opts[i]);
        if (!at || at > usage_end)
            fail_msg("usage line lacks %s:\n%s", opts[i], h);
        assert_non_null(strstr(usage_end, opts[i])); /* and is explained below */
    }
    assert_non_null(strstr(usage_end, "--help"));
    free(h);
}

static void test_cli_invalid_plan(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    write_file(f->plan, "name: x\nengine: {kind: vllm}\nmodels: [{name: a, model: m}]\n"
                        "tasks:\n  - {task: aime24}\n  - {task: no_such_task}\n");
    const char *args[] = {"sweep", f->plan, NULL};
    assert_int_equal(qeval_run(f, args, NULL), 3);
    char *se = slurp_text(f->se);
    char want[400];
    snprintf(want, sizeof want, "%s:6:", f->plan);
    assert_non_null(strstr(se, want));
    assert_non_null(strstr(se, "no_such_task"));
    free(se);
    struct stat sb;
    assert_int_not_equal(stat(f->record, &sb), 0); /* no server was started */
    const char *bad[] = {"sweep", "--bogus", f->plan, NULL};
    assert_int_equal(qeval_run(f, bad, NULL), 2);
}

static void test_cli_lmeval_engine(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    write_plan(f, NULL, NULL, "lm-eval", 4);
    char rec[400], env_rec[420], env_fail[64];
    snprintf(rec, sizeof rec, "%s/lmeval.txt", f->dir);
    snprintf(env_rec, sizeof env_rec, "FAKE_LMEVAL_RECORD=%s", rec);
    const char *env[] = {env_rec, NULL};
    const char *args[] = {"sweep", f->plan, NULL};
    int rc = qeval_run(f, args, env);
    char *so = slurp_text(f->so), *se = slurp_text(f->se);
    if (rc)
        fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", so, se);
    assert_int_equal(rc, 0);
    char *r = slurp_text(rec);
    /* six runs in plan order, each exactly the document's command */
    assert_int_equal(count_sub(r, "\n"), 6);
    qe_buf want = QE_BUF_INIT;
    qe_buf_printf(&want,
                  "--model|vllm|--model_args|pretrained=RedHatAI/Qwen3-32B-NVFP4,tensor_parallel_size=2,"
                  "gpu_memory_utilization=0.90,max_model_len=4096,max_num_seqs=4,download_dir=%s/hf|--tasks|"
                  "hendrycks_math500|--batch_size|1|--limit|4|--apply_chat_template|--gen_kwargs|max_gen_toks=1024|"
                  "--log_samples|--output_path|%s/nvfp4/lmeval_tp2_nvfp4_hendrycks_math500_limit4.json HF_HOME=%s/hf\n",
                  f->dir, f->out, f->dir);
    assert_memory_equal(r, qe_buf_str(&want), want.len);
    const char *p1 = strstr(r, "RedHatAI"), *p2 = strstr(r, "Qwen3-32B-FP8"), *p3 = strstr(r, "Qwen/Qwen3-32B,");
    assert_true(p1 && p2 && p3 && p1 < p2 && p2 < p3);
    qe_buf_free(&want);
    free(r);
    /* outputs found and read back */
    assert_int_equal(count_sub(so, "exact_match    0.5000    0.1000"), 6);
    free(so);
    free(se);

    /* a failing harness run: that pair fails with the cause, the rest are resumed */
    snprintf(env_fail, sizeof env_fail, "FAKE_LMEVAL_FAIL=aime24");
    const char *env2[] = {env_rec, env_fail, NULL};
    const char *fargs[] = {"sweep", f->plan, "--force", NULL};
    rc = qeval_run(f, fargs, env2);
    so = slurp_text(f->so);
    assert_int_equal(rc, 1);
    assert_int_equal(count_sub(so, "failed: lm-eval for"), 3);
    assert_int_equal(count_sub(so, "likely cause: CUDA out of memory"), 3);
    free(so);
}

/* fake_server on a free port; returns its pid and fills *port */
static pid_t start_fake_server(const char *model, const char *reqlog, int *port)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        char bin[1024];
        snprintf(bin, sizeof bin, "%s/tests/fake_server", getenv("QEVAL_BUILD"));
        dup2(fds[1], 1);
        close(fds[0]);
        execl(bin, bin, "--port", "0", "--model", model, "--request-log", reqlog, "--latency-ms", "50",
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[128];
    *port = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "PORT %d", port) == 1)
            break;
    fclose(f);
    assert_true(*port > 0);
    return pid;
}

static void test_cli_endpoint_single(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    char log1[400];
    snprintf(log1, sizeof log1, "%s/req1.jsonl", f->dir);
    int p1;
    pid_t s1 = start_fake_server("Qwen/Qwen3-32B", log1, &p1);
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y,
                  "name: ep\noutput: %s\n"
                  "engine: {kind: endpoint, base_urls: [\"http://127.0.0.1:%d\"], startup_timeout: 2s}\n"
                  "models: [{name: bf16, model: Qwen/Qwen3-32B}, {name: other, model: not/served}]\n"
                  "tasks: [{task: hendrycks_math500, limit: 5}]\n"
                  "generation: {apply_chat_template: true, max_gen_toks: 64, temperature: 0}\n",
                  f->out, p1);
    write_file(f->plan, qe_buf_str(&y));
    qe_buf_free(&y);
    const char *args[] = {"sweep", f->plan, NULL};
    int rc = qeval_run(f, args, NULL);
    kill(s1, SIGTERM);
    waitpid(s1, NULL, 0);
    char *so = slurp_text(f->so);
    /* the served model is evaluated; a model the endpoint does not list fails */
    assert_int_equal(rc, 1);
    assert_non_null(strstr(so, "bf16   hendrycks_math500  exact_match    0.0000"));
    assert_non_null(strstr(so, "other  hendrycks_math500  exact_match         -         -      -  failed: endpoint"));
    char *a = slurp_text(log1);
    assert_int_equal(count_sub(a, "\"/v1/chat/completions\""), 5);
    free(a);
    free(so);
}

/* Base URLs as `qeval run` takes them: with "/v1" and a trailing '/'.
 * vLLM serves /health at the root, /v1/models and the completions under
 * /v1: every use maps the URL as the client does (qe_client_url). */
static void test_cli_endpoint_v1_base_url(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    char log1[400];
    snprintf(log1, sizeof log1, "%s/req1.jsonl", f->dir);
    int p1;
    pid_t s1 = start_fake_server("Qwen/Qwen3-32B", log1, &p1);
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y,
                  "name: ep\noutput: %s\n"
                  "engine: {kind: endpoint, base_urls: [\"http://127.0.0.1:%d/v1/\"], startup_timeout: 2s}\n"
                  "models: [{name: bf16, model: Qwen/Qwen3-32B}]\n"
                  "tasks: [{task: hendrycks_math500, limit: 3}]\n"
                  "generation: {apply_chat_template: true, max_gen_toks: 64, temperature: 0}\n",
                  f->out, p1);
    write_file(f->plan, qe_buf_str(&y));
    qe_buf_free(&y);
    /* the dry run shows what will be asked, at the right URLs */
    const char *dargs[] = {"sweep", "--dry-run", f->plan, NULL};
    int drc = qeval_run(f, dargs, NULL);
    char *dry = slurp_text(f->so);
    const char *args[] = {"sweep", f->plan, NULL};
    int rc = qeval_run(f, args, NULL);
    kill(s1, SIGTERM);
    waitpid(s1, NULL, 0);
    char *so = slurp_text(f->so), *se = slurp_text(f->se);
    assert_int_equal(drc, 0);
    char want[300];
    snprintf(want, sizeof want, "wait for GET http://127.0.0.1:%d/health = 200 and http://127.0.0.1:%d/v1/models "
             "listing 'Qwen/Qwen3-32B'", p1, p1);
    if (!strstr(dry, want))
        fail_msg("dry run lacks '%s':\n%s", want, dry);
    free(dry);
    if (rc)
        fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", so, se);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(so, "bf16   hendrycks_math500  exact_match    0.0000"));
    char *a = slurp_text(log1);
    /* /health is not logged by fake_server; the sweep passed it, and the
     * model list was found at /v1/models, not /v1/v1/models */
    assert_true(count_sub(a, "\"/v1/models\"") >= 1);
    assert_int_equal(count_sub(a, "\"/v1/chat/completions\""), 3);
    assert_int_equal(count_sub(a, "/v1/v1/"), 0);
    free(a);
    /* the wait was announced; stderr is no terminal: no "still waiting" */
    snprintf(want, sizeof want, "qeval sweep: bf16: waiting up to 2.0s for endpoint http://127.0.0.1:%d/v1/: "
             "GET http://127.0.0.1:%d/health = 200, then /v1/models listing 'Qwen/Qwen3-32B'\n", p1, p1);
    assert_non_null(strstr(se, want));
    assert_null(strstr(se, "still waiting"));
    free(so);
    free(se);
}

/* A password in an endpoint's URL (http://user:password@host) is used to
 * connect but never shown: not in the dry run, the notes, the output
 * files or the store. */
static void test_cli_endpoint_url_password_hidden(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    char log1[400];
    snprintf(log1, sizeof log1, "%s/req1.jsonl", f->dir);
    int p1;
    pid_t s1 = start_fake_server("Qwen/Qwen3-32B", log1, &p1);
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y,
                  "name: ep\noutput: %s\n"
                  "engine: {kind: endpoint, base_urls: [\"http://qe:Pw-s3cret@127.0.0.1:%d/v1\"], "
                  "startup_timeout: 2s}\n"
                  "models: [{name: bf16, model: Qwen/Qwen3-32B}]\n"
                  "tasks: [{task: hendrycks_math500, limit: 2}]\n"
                  "generation: {apply_chat_template: true, max_gen_toks: 64, temperature: 0}\n",
                  f->out, p1);
    write_file(f->plan, qe_buf_str(&y));
    qe_buf_free(&y);
    const char *dargs[] = {"sweep", "--dry-run", f->plan, NULL};
    assert_int_equal(qeval_run(f, dargs, NULL), 0);
    char *dry = slurp_text(f->so), *dse = slurp_text(f->se);
    const char *args[] = {"sweep", f->plan, NULL};
    int rc = qeval_run(f, args, NULL);
    char *so = slurp_text(f->so), *se = slurp_text(f->se);
    /* and an endpoint that is down: its failure names it without the password */
    kill(s1, SIGTERM);
    waitpid(s1, NULL, 0);
    const char *fargs[] = {"sweep", "--force", f->plan, NULL};
    int frc = qeval_run(f, fargs, NULL);
    char *fse = slurp_text(f->se);
    if (rc)
        fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", so, se);
    assert_int_equal(rc, 0);
    assert_int_not_equal(frc, 0);
    char want[200];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/health", p1);
    assert_non_null(strstr(dry, want)); /* the URL is shown, without qe:Pw-s3cret@ */
    assert_non_null(strstr(fse, want));
    const char *texts[] = {dry, dse, so, se, fse};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        if (strstr(texts[i], "s3cret"))
            fail_msg("password shown in output %zu:\n%s", i, texts[i]);
    assert_false(tree_contains(f->out, "s3cret"));
    free(dry), free(dse), free(so), free(se), free(fse);
}

/* The per-pair output: gsm8k has two filters (strict-match,
 * flexible-extract) and the value is strict-match's, so the table has a
 * filter column; the diagnostics are one note per line, each naming the
 * pair (no bare "bf16 x gsm8k:" header, no empty line). */
static void test_cli_endpoint_filters(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    char log1[400];
    snprintf(log1, sizeof log1, "%s/req1.jsonl", f->dir);
    int p1;
    pid_t s1 = start_fake_server("Qwen/Qwen3-32B", log1, &p1);
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y,
                  "name: ep\noutput: %s\n"
                  "engine: {kind: endpoint, base_urls: [\"http://127.0.0.1:%d\"]}\n"
                  "models: [{name: bf16, model: Qwen/Qwen3-32B}]\n"
                  "tasks: [{task: hendrycks_math500, limit: 3}, {task: gsm8k, limit: 3}]\n"
                  "generation: {apply_chat_template: true, max_gen_toks: 64, temperature: 0}\n",
                  f->out, p1);
    write_file(f->plan, qe_buf_str(&y));
    qe_buf_free(&y);
    const char *args[] = {"sweep", f->plan, NULL};
    int rc = qeval_run(f, args, NULL);
    kill(s1, SIGTERM);
    waitpid(s1, NULL, 0);
    char *so = slurp_text(f->so), *se = slurp_text(f->se);
    if (rc)
        fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", so, se);
    assert_int_equal(rc, 0);
    if (!strstr(so, "model  task               filter        metric          value    stderr      n  status\n"
                    "bf16   hendrycks_math500  none          exact_match    0.0000    0.0000      3  done\n"
                    "bf16   gsm8k              strict-match  exact_match    0.0000    0.0000      3  done\n"))
        fail_msg("table without the filter column:\n%s", so);
    /* every note line says which pair it is about and has content */
    for (const char *l = se; *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        if (len == 0 || l[len - 1] == ':' || strncmp(l, "qeval sweep: ", 13))
            fail_msg("stderr line %.*s is empty, a bare header or not a note:\n%s", (int)len, l, se);
        l += len + (nl ? 1 : 0);
    }
    assert_non_null(strstr(se, "qeval sweep: bf16 x hendrycks_math500: n=3: the 95% CI"));
    assert_non_null(strstr(se, "qeval sweep: bf16 x gsm8k (strict-match): n=3: the 95% CI"));
    free(so);
    free(se);
}

static void test_cli_endpoint_sharded(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    char log1[400], log2[400];
    snprintf(log1, sizeof log1, "%s/req1.jsonl", f->dir);
    snprintf(log2, sizeof log2, "%s/req2.jsonl", f->dir);
    int p1, p2;
    pid_t s1 = start_fake_server("Qwen/Qwen3-32B", log1, &p1);
    pid_t s2 = start_fake_server("Qwen/Qwen3-32B", log2, &p2);
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y,
                  "name: ep\noutput: %s\n"
                  "engine: {kind: endpoint, base_urls: [\"http://127.0.0.1:%d\", \"http://127.0.0.1:%d\"]}\n"
                  "models: [{name: bf16, model: Qwen/Qwen3-32B}]\n"
                  "tasks: [{task: hendrycks_math500, limit: 12}]\n"
                  "generation: {apply_chat_template: true, max_gen_toks: 64, temperature: 0, num_concurrent: 2}\n",
                  f->out, p1, p2);
    write_file(f->plan, qe_buf_str(&y));
    qe_buf_free(&y);
    const char *args[] = {"sweep", f->plan, NULL};
    int rc = qeval_run(f, args, NULL);
    kill(s1, SIGTERM);
    kill(s2, SIGTERM);
    waitpid(s1, NULL, 0);
    waitpid(s2, NULL, 0);
    char *so = slurp_text(f->so), *se = slurp_text(f->se);
    if (rc)
        fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", so, se);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(so, "bf16   hendrycks_math500  exact_match"));
    /* the 12 problems were shared by the two servers (2 in flight each,
     * 50 ms per answer: one server alone cannot take them all first) */
    char *a = slurp_text(log1), *b = slurp_text(log2);
    size_t na = count_sub(a, "\"/v1/chat/completions\""), nb = count_sub(b, "\"/v1/chat/completions\"");
    assert_true(na > 0 && nb > 0);
    assert_int_equal(na + nb, 12);
    free(a);
    free(b);
    free(so);
    free(se);
}

static void test_cli_state_refused_and_locked(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    write_plan(f, NULL, NULL, "vllm", 2);
    mkdir(f->out, 0755);
    char sp[400];
    snprintf(sp, sizeof sp, "%s/sweep_state.json", f->out);
    write_file(sp, "{\"version\": 1, \"pairs\": {");
    const char *args[] = {"sweep", f->plan, NULL};
    assert_int_equal(qeval_run(f, args, NULL), 6);
    char *se = slurp_text(f->se), *st = slurp_text(sp);
    assert_non_null(strstr(se, "not a valid sweep state file"));
    assert_string_equal(st, "{\"version\": 1, \"pairs\": {"); /* never overwritten */
    free(se);
    free(st);
    unlink(sp);

    /* a second sweep on the same output while one runs is refused */
    write_script(f, 300);
    pid_t pid = qeval_spawn(f, args, NULL);
    wait_answered(f, 1, 60);
    fx g = *f;
    snprintf(g.so, sizeof g.so, "%s/stdout2.txt", f->dir);
    snprintf(g.se, sizeof g.se, "%s/stderr2.txt", f->dir);
    assert_int_equal(qeval_run(&g, args, NULL), 6);
    se = slurp_text(g.se);
    assert_non_null(strstr(se, "another qeval sweep is running"));
    free(se);
    kill(pid, SIGTERM);
    assert_int_equal(qeval_wait(pid, 60), 130);
}

static void test_cli_bad_flag_one_model(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    /* a model's own extra_args: vllm rejects the flag, only that model fails */
    write_plan(f, NULL, NULL, "vllm", 2);
    char *text = slurp_text(f->plan);
    const char *m = "  - {name: fp8, model: Qwen/Qwen3-32B-FP8}";
    char *at = strstr(text, m);
    assert_non_null(at);
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y, "%.*s  - {name: fp8, model: Qwen/Qwen3-32B-FP8, extra_args: [\"--no-such-flag\"]}%s",
                  (int)(at - text), text, at + strlen(m));
    write_file(f->plan, qe_buf_str(&y));
    qe_buf_free(&y);
    free(text);
    write_script(f, 0);
    const char *args[] = {"sweep", f->plan, NULL};
    assert_int_equal(qeval_run(f, args, NULL), 1);
    char *so = slurp_text(f->so), *se = slurp_text(f->se);
    assert_int_equal(count_sub(so, "failed: server did not start (unknown or invalid flag)"), 2);
    assert_int_equal(count_sub(so, "  done"), 4);
    assert_non_null(strstr(se, "unrecognized arguments: --no-such-flag"));
    free(so);
    free(se);
}

static void test_cli_lmeval_sigint(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    write_plan(f, NULL, NULL, "lm-eval", 2);
    char rec[400], env_rec[420];
    snprintf(rec, sizeof rec, "%s/lmeval.txt", f->dir);
    snprintf(env_rec, sizeof env_rec, "FAKE_LMEVAL_RECORD=%s", rec);
    const char *env[] = {env_rec, "FAKE_LMEVAL_SLEEP=31.7", NULL};
    const char *args[] = {"sweep", f->plan, NULL};
    pid_t pid = qeval_spawn(f, args, env);
    double t0 = mono();
    struct stat sb;
    while (stat(rec, &sb) != 0) { /* the harness has started */
        assert_true(mono() - t0 < 30);
        sleep_ms(20);
    }
    kill(pid, SIGINT);
    assert_int_equal(qeval_wait(pid, 40), 130);
    assert_true(mono() - t0 < 25); /* did not wait for the 31.7 s harness */
    /* the harness's whole group is gone: no `sleep 31.7` left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ps -eo args | grep -v grep | grep -q '^sleep 31.7$'");
    assert_int_not_equal(system(cmd), 0);
    /* rerun finishes everything */
    const char *env2[] = {env_rec, NULL};
    assert_int_equal(qeval_run(f, args, env2), 0);
}

/* ---- in-process: crashes with a fake evaluation ------------------------- */

typedef struct {
    const fx *f;
    const char *kill_model; /* served name whose server is killed on eval */
    int kills_left;
    char calls[2048];       /* "model:task," per call */
    double *clock;          /* fake clock advanced by the eval, or NULL */
    bool deadline_hit;      /* answer like the runner at its deadline */
} fake_eval;

static pid_t last_pgid(const fx *f)
{
    char *rec = slurp_text(f->record);
    char *last = NULL;
    for (char *p = strstr(rec, "\"pgid\""); p; p = strstr(p + 1, "\"pgid\""))
        last = p;
    pid_t pg = last ? (pid_t)atol(last + 7 + (last[7] == ' ')) : 0;
    free(rec);
    return pg;
}

static int fake_eval_fn(void *ud, const qe_run_opts *o, qe_run_summary *s, qe_err *e)
{
    fake_eval *fe = ud;
    size_t l = strlen(fe->calls);
    snprintf(fe->calls + l, sizeof fe->calls - l, "%s:%s,", o->model, o->tasks[0]);
    memset(s, 0, sizeof *s);
    if (fe->kill_model && !strcmp(fe->kill_model, o->model) && fe->kills_left > 0) {
        fe->kills_left--;
        pid_t pg = last_pgid(fe->f);
        assert_true(pg > 1);
        kill(-pg, SIGKILL);
        sleep_ms(100);
        return qe_err_set(e, QE_ENET, "connection refused");
    }
    if (fe->deadline_hit) { /* 10 of 30 answered, then the deadline passed */
        s->tasks = calloc(1, sizeof *s->tasks);
        s->n_tasks = 1;
        s->tasks[0].task = strdup(o->tasks[0]);
        s->tasks[0].requested = 30;
        s->tasks[0].sent = s->tasks[0].ok = 10;
        s->tasks[0].accuracy = NAN;
        s->tasks[0].seconds = 60;
        assert_true(o->deadline > 0 && *fe->clock + 60 > o->deadline);
        *fe->clock += 60;
        return qe_err_set(e, QE_ELIMIT, "deadline reached: 20 requests not sent");
    }
    /* the server is really there and serves this name */
    assert_int_equal(o->n_base_urls, 1);
    assert_non_null(strstr(o->base_urls[0], "http://127.0.0.1:"));
    s->tasks = calloc(1, sizeof *s->tasks);
    s->n_tasks = 1;
    s->tasks[0].task = strdup(o->tasks[0]);
    size_t n = strcmp(o->tasks[0], "aime24") ? 100 : 30;
    s->tasks[0].requested = s->tasks[0].sent = s->tasks[0].ok = n;
    s->tasks[0].accuracy = 0.25;
    s->tasks[0].seconds = (double)n; /* 1 request/s */
    if (fe->clock)
        *fe->clock += (double)n;
    qe_buf p = QE_BUF_INIT;
    qe_buf_printf(&p, "%s/%s_x.json", o->output_path, o->output_name);
    mkdir(o->output_path, 0755);
    write_file(qe_buf_str(&p), "{}");
    s->tasks[0].results_path = qe_buf_detach(&p);
    return 0;
}

static void fake_free(qe_run_summary *s)
{
    for (size_t i = 0; i < s->n_tasks; i++) {
        free(s->tasks[i].task);
        free(s->tasks[i].results_path);
        free(s->tasks[i].samples_path);
    }
    free(s->tasks);
    free(s->first_failure);
    memset(s, 0, sizeof *s);
}

static double fake_now(void *ud)
{
    return *(double *)ud;
}

static qe_plan *lib_plan(fx *f, const char *budget)
{
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y,
                  "name: lib\n%s%s%soutput: %s\nenv: {PATH: \"%s\"}\n"
                  "engine: {kind: vllm, tensor_parallel_size: 2, stop_grace: 5s, startup_timeout: 30s}\n"
                  "models:\n  - {name: nvfp4, model: RedHatAI/Qwen3-32B-NVFP4}\n"
                  "  - {name: fp8, model: Qwen/Qwen3-32B-FP8}\n  - {name: bf16, model: Qwen/Qwen3-32B}\n"
                  "tasks:\n  - {task: hendrycks_math500, limit: 100}\n  - {task: aime24, limit: 30, priority: high}\n",
                  budget ? "budget: " : "", budget ? budget : "", budget ? "\n" : "", f->out, f->path_env);
    qe_plan *p = plan_from(qe_buf_str(&y));
    qe_buf_free(&y);
    return p;
}

static qe_buf *lib_notes; /* run_lib collects the sweep's notes here when set */

static void lib_note(void *ud, const char *line)
{
    qe_buf_printf(ud, "%s\n", line);
}

static void run_lib(fx *f, qe_plan *p, fake_eval *fe, qe_sweep_report *r, int want_rc, double *clock)
{
    setenv("FAKE_VLLM_RECORD", f->record, 1);
    qe_sweep_opts o;
    memset(&o, 0, sizeof o);
    o.eval = fake_eval_fn;
    o.eval_ud = fe;
    o.free_summary = fake_free;
    o.poll_interval = 0.05;
    o.default_rate = 1;
    o.default_startup = 10;
    if (lib_notes) {
        o.note = lib_note;
        o.note_ud = lib_notes;
    }
    if (clock) {
        o.now = fake_now;
        o.now_ud = clock;
    }
    qe_err e = {0};
    int rc = qe_sweep_run(p, &o, r, &e);
    if (rc != want_rc)
        fprintf(stderr, "sweep: %s\n", e.msg);
    assert_int_equal(rc, want_rc);
    unsetenv("FAKE_VLLM_RECORD");
}

static void test_lib_crash_restart_once(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    qe_plan *p = lib_plan(f, NULL);
    fake_eval fe = {.f = f, .kill_model = "Qwen/Qwen3-32B-FP8", .kills_left = 1};
    qe_sweep_report r;
    run_lib(f, p, &fe, &r, 0, NULL);
    assert_int_equal(r.n_done, 6);
    /* fp8 math500 was asked again on the restarted server */
    assert_string_equal(fe.calls, "RedHatAI/Qwen3-32B-NVFP4:hendrycks_math500,RedHatAI/Qwen3-32B-NVFP4:aime24,"
                                  "Qwen/Qwen3-32B-FP8:hendrycks_math500,Qwen/Qwen3-32B-FP8:hendrycks_math500,"
                                  "Qwen/Qwen3-32B-FP8:aime24,Qwen/Qwen3-32B:hendrycks_math500,Qwen/Qwen3-32B:aime24,");
    char models[1024];
    started_models(f, models, sizeof models);
    assert_string_equal(models, "RedHatAI/Qwen3-32B-NVFP4,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B");
    qe_sweep_report_free(&r);
    qe_plan_free(p);
}

static void test_lib_crash_twice_fails_model(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    qe_plan *p = lib_plan(f, NULL);
    fake_eval fe = {.f = f, .kill_model = "Qwen/Qwen3-32B-FP8", .kills_left = 2};
    qe_sweep_report r;
    run_lib(f, p, &fe, &r, QE_ESERVER, NULL);
    assert_int_equal(r.n_done, 4);
    assert_int_equal(r.n_failed, 2);
    assert_int_equal(r.pairs[2].status, QE_SWEEP_FAILED);
    assert_int_equal(r.pairs[3].status, QE_SWEEP_FAILED);
    assert_non_null(strstr(r.pairs[2].reason, "crashed twice"));
    /* which log: the restarted server's, never the first one overwritten */
    if (!strstr(r.pairs[2].reason, "; log: ") || !strstr(r.pairs[2].reason, "/fp8/vllm_serve.log.1"))
        fail_msg("reason does not name the log: %s", r.pairs[2].reason);
    assert_int_equal(r.pairs[4].status, QE_SWEEP_DONE); /* bf16 went on */
    char models[1024];
    started_models(f, models, sizeof models);
    assert_string_equal(models, "RedHatAI/Qwen3-32B-NVFP4,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B");
    qe_sweep_report_free(&r);
    qe_plan_free(p);
}

static void test_lib_budget_fake_clock(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    /* 3 x (10 + 100 + 30) = 420 s > 250 s: AIME24 for all three (90 s plus
     * starts), then nvfp4's MATH-500 (100 s) fits, then the measured 1 req/s
     * says the next does not */
    qe_plan *p = lib_plan(f, "250s");
    double clock = 1000;
    fake_eval fe = {.f = f, .clock = &clock};
    qe_sweep_report r;
    run_lib(f, p, &fe, &r, QE_ESERVER, &clock);
    assert_string_equal(fe.calls, "RedHatAI/Qwen3-32B-NVFP4:aime24,Qwen/Qwen3-32B-FP8:aime24,Qwen/Qwen3-32B:aime24,"
                                  "RedHatAI/Qwen3-32B-NVFP4:hendrycks_math500,");
    assert_int_equal(r.n_done, 4);
    assert_int_equal(r.n_skipped, 2);
    assert_int_equal(r.pairs[2].status, QE_SWEEP_SKIPPED);
    assert_non_null(strstr(r.pairs[2].reason, "does not fit the budget"));
    char models[1024];
    started_models(f, models, sizeof models);
    assert_string_equal(models, "RedHatAI/Qwen3-32B-NVFP4,Qwen/Qwen3-32B-FP8,Qwen/Qwen3-32B,RedHatAI/Qwen3-32B-NVFP4");
    qe_sweep_report_free(&r);
    /* the measured server start is remembered like the rates, so a rerun
     * does not plan with the 600 s default again */
    char sp[600];
    snprintf(sp, sizeof sp, "%s/sweep_state.json", f->out);
    json_t *saved = json_load_file(sp, 0, NULL);
    assert_non_null(saved);
    assert_true(json_is_real(json_object_get(saved, "startup_s")));
    assert_true(json_real_value(json_object_get(saved, "startup_s")) > 0);
    json_decref(saved);

    /* a second invocation with a fresh budget: only the two skipped pairs run */
    fake_eval fe2 = {.f = f, .clock = &clock};
    run_lib(f, p, &fe2, &r, 0, &clock);
    assert_string_equal(fe2.calls, "Qwen/Qwen3-32B-FP8:hendrycks_math500,Qwen/Qwen3-32B:hendrycks_math500,");
    assert_int_equal(r.n_done, 6);
    qe_sweep_report_free(&r);
    qe_plan_free(p);
}

static void test_lib_deadline_during_task(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    /* 50 s budget; the first (high-priority) task hits the deadline midway */
    qe_plan *p = lib_plan(f, "50s");
    double clock = 1000;
    fake_eval fe = {.f = f, .clock = &clock, .deadline_hit = true};
    qe_sweep_report r;
    qe_buf notes = QE_BUF_INIT;
    lib_notes = &notes;
    run_lib(f, p, &fe, &r, QE_ESERVER, &clock);
    lib_notes = NULL;
    /* past the deadline the budget note says so (it said "~? remain: plan order") */
    if (strstr(qe_buf_str(&notes), "~?") || !strstr(qe_buf_str(&notes), "budget: the time budget is used up"))
        fail_msg("budget notes:\n%s", qe_buf_str(&notes));
    qe_buf_free(&notes);
    assert_string_equal(fe.calls, "RedHatAI/Qwen3-32B-NVFP4:aime24,");
    assert_int_equal(r.n_done, 0);
    assert_int_equal(r.n_skipped, 6);
    assert_non_null(strstr(r.pairs[1].reason, "ran out during the task (10 of 30 answered"));
    assert_non_null(strstr(r.pairs[0].reason, "used up"));
    assert_non_null(strstr(r.pairs[3].reason, "used up"));
    qe_sweep_report_free(&r);
    qe_plan_free(p);
}

/* Notes collected from qe_sweep_run, one per line. */
static void collect_note(void *ud, const char *line)
{
    qe_buf *b = ud;
    qe_buf_printf(b, "%s\n", line);
}

static qe_sweep_opts wait_opts(fake_eval *fe, qe_buf *notes, double every)
{
    qe_sweep_opts o;
    memset(&o, 0, sizeof o);
    o.eval = fake_eval_fn;
    o.eval_ud = fe;
    o.free_summary = fake_free;
    o.poll_interval = 0.05;
    o.note = collect_note;
    o.note_ud = notes;
    o.wait_report_s = every;
    return o;
}

/* A port nothing listens on (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Waiting for a server or an endpoint is never silent: a note says what is
 * waited for (URL, timeout) when the wait starts, then "still waiting"
 * every wait_report_s (the CLI: 10 s on a terminal, none otherwise). */
static void test_lib_wait_notes(void **state)
{
    fx *f = *state;
    NEED_BUILD(f);
    /* vllm: the server answers /health after 1.2 s */
    qe_plan *p = lib_plan(f, NULL);
    qe_buf notes = QE_BUF_INIT;
    fake_eval fe = {.f = f};
    qe_sweep_opts o = wait_opts(&fe, &notes, 0.3);
    o.only_model = "nvfp4";
    setenv("FAKE_VLLM_RECORD", f->record, 1);
    setenv("FAKE_VLLM_STARTUP_MS", "1200", 1);
    qe_sweep_report r;
    qe_err e = {0};
    int rc = qe_sweep_run(p, &o, &r, &e);
    unsetenv("FAKE_VLLM_STARTUP_MS");
    unsetenv("FAKE_VLLM_RECORD");
    const char *n = qe_buf_str(&notes);
    if (rc)
        fprintf(stderr, "sweep: %s\nnotes:\n%s", e.msg, n);
    assert_int_equal(rc, 0);
    qe_sweep_report_free(&r);
    qe_plan_free(p);
    const char *w = strstr(n, "nvfp4: waiting up to 30s for the server: GET http://127.0.0.1:");
    const char *ready = strstr(n, "nvfp4: server ready at");
    if (!w || !ready || w > ready || !strstr(w, "/health = 200, then /v1/models listing 'RedHatAI/Qwen3-32B-NVFP4'"))
        fail_msg("no wait note before 'server ready':\n%s", n);
    size_t still = count_sub(n, "nvfp4: still waiting for http://127.0.0.1:");
    if (still < 2 || !strstr(n, "/health (") || !strstr(n, " of 30s)"))
        fail_msg("expected 'still waiting' notes every 0.3 s over 1.2 s:\n%s", n);
    qe_buf_free(&notes);

    /* endpoint given with /v1 that never answers: told, then still waiting */
    int port = closed_port();
    qe_buf y = QE_BUF_INIT;
    qe_buf_printf(&y,
                  "name: ep\noutput: %s\n"
                  "engine: {kind: endpoint, base_urls: [\"http://127.0.0.1:%d/v1\"], startup_timeout: 1s}\n"
                  "models: [{name: bf16, model: Qwen/Qwen3-32B}]\n"
                  "tasks: [{task: aime24, limit: 2}]\n",
                  f->out, port);
    p = plan_from(qe_buf_str(&y));
    qe_buf_free(&y);
    fake_eval fe2 = {.f = f};
    for (int every = 0; every < 2; every++) {
        qe_buf nb = QE_BUF_INIT;
        o = wait_opts(&fe2, &nb, every ? 0.2 : 0);
        assert_int_equal(qe_sweep_run(p, &o, &r, &e), QE_ESERVER);
        qe_sweep_report_free(&r);
        n = qe_buf_str(&nb);
        char want[300];
        snprintf(want, sizeof want,
                 "bf16: waiting up to 1.0s for endpoint http://127.0.0.1:%d/v1: GET http://127.0.0.1:%d/health = "
                 "200, then /v1/models listing 'Qwen/Qwen3-32B'\n", port, port);
        if (count_sub(n, want) != 1)
            fail_msg("want one '%s' in:\n%s", want, n);
        snprintf(want, sizeof want, "bf16: still waiting for http://127.0.0.1:%d/health (", port);
        if (every ? count_sub(n, want) < 1 : count_sub(n, "still waiting") != 0)
            fail_msg("'still waiting' notes with wait_report_s %s:\n%s", every ? "0.2" : "0", n);
        assert_int_equal(fe2.calls[0], '\0'); /* nothing was evaluated */
        qe_buf_free(&nb);
    }
    qe_plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_limits),
        cmocka_unit_test(test_schedule_plan_order),
        cmocka_unit_test(test_schedule_priority_under_budget),
        cmocka_unit_test(test_schedule_measured_rates),
        cmocka_unit_test(test_pair_config_changes),
        cmocka_unit_test(test_lmeval_argv_matches_document),
        cmocka_unit_test(test_lmeval_locate_and_read),
        cmocka_unit_test_setup_teardown(test_lib_crash_restart_once, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_lib_crash_twice_fails_model, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_lib_budget_fake_clock, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_lib_deadline_during_task, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_lib_wait_notes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_full_sweep, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_oom_second_model, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_gpu_memory_not_released, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_crash_mid_task_restarts, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_priority_tight_budget, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_resume_after_kill9, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_kill9_random_points, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_sigint_then_resume, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_sigint_during_server_start, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_kill9_during_server_start, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_dry_run, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_invalid_plan, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_option_spellings, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_lmeval_engine, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_endpoint_single, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_state_refused_and_locked, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_bad_flag_one_model, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_lmeval_sigint, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_endpoint_sharded, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_endpoint_url_password_hidden, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_endpoint_v1_base_url, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli_endpoint_filters, fx_setup, fx_teardown),
    };
    if (getenv("QE_TEST_FILTER")) /* e.g. QE_TEST_FILTER='*kill9*' */
        cmocka_set_test_filter(getenv("QE_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
