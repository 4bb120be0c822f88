/* Tests for src/plan.c: the shipped example plan, good plans, and the golden
 * error cases of tests/cases/plan_errors.jsonl (file → message + line). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

static bool known_task(const char *t)
{
    static const char *const known[] = {"hendrycks_math500", "aime24", "aime25", "gsm8k"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(t, known[i]))
            return true;
    return false;
}

static const char *env_of(const qe_plan *p, const char *k)
{
    for (size_t i = 0; i < p->n_env; i++)
        if (!strcmp(p->env[i].key, k))
            return p->env[i].value;
    return NULL;
}

static void test_example_is_the_experiment(void **state)
{
    (void)state;
    qe_plan *p = NULL;
    qe_err err = {0};
    int rc = qe_plan_load("examples/qwen3-32b-precision.yaml", known_task, &p, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_string_equal(p->name, "qwen3-32b-precision");
    assert_true(fabs(p->budget - 3 * 3600) < 1e-9);
    assert_string_equal(p->output, "/data/bench/qwen3_32b_vllm_tp2_acc_20251224/results/");
    assert_int_equal(p->engine.kind, QE_PLAN_ENGINE_VLLM);
    /* §1 models in the order of §7 */
    assert_int_equal(p->n_models, 3);
    assert_string_equal(p->models[0].model, "RedHatAI/Qwen3-32B-NVFP4");
    assert_string_equal(p->models[1].model, "Qwen/Qwen3-32B-FP8");
    assert_string_equal(p->models[2].model, "Qwen/Qwen3-32B");
    assert_string_equal(p->models[0].name, "nvfp4");
    assert_string_equal(p->models[2].name, "bf16");
    for (size_t i = 0; i < 3; i++) {
        const qe_plan_engine_args *a = &p->models[i].args;
        assert_int_equal(a->tensor_parallel_size, 2);
        assert_true(fabs(a->gpu_memory_utilization - 0.90) < 1e-12);
        assert_int_equal(a->max_model_len, 4096);
        assert_int_equal(a->max_num_seqs, 32);
        assert_string_equal(a->download_dir, "/data/bench/hf");
        assert_string_equal(p->models[i].served_model_name, p->models[i].model);
    }
    /* §3 env, all nine variables */
    assert_int_equal(p->n_env, 9);
    assert_string_equal(env_of(p, "CUDA_VISIBLE_DEVICES"), "0,1");
    assert_string_equal(env_of(p, "HOME"), "/data/bench/home/azureuser");
    assert_string_equal(env_of(p, "HF_HOME"), "/data/bench/hf");
    assert_string_equal(env_of(p, "XDG_CACHE_HOME"), "/data/bench/hf");
    assert_string_equal(env_of(p, "TMPDIR"), "/data/bench/tmp");
    assert_string_equal(env_of(p, "VLLM_ATTENTION_BACKEND"), "TRITON_ATTN");
    assert_string_equal(env_of(p, "TRITON_CACHE_DIR"), "/data/bench/cache/triton");
    assert_string_equal(env_of(p, "TORCHINDUCTOR_CACHE_DIR"), "/data/bench/cache/torchinductor");
    assert_string_equal(env_of(p, "CUDA_CACHE_PATH"), "/data/bench/cache/nv");
    /* §7 task order and priority */
    assert_int_equal(p->n_tasks, 2);
    assert_string_equal(p->tasks[0].task, "hendrycks_math500");
    assert_int_equal(p->tasks[0].limit, 100);
    assert_int_equal(p->tasks[0].priority, QE_PLAN_PRIO_NORMAL);
    assert_string_equal(p->tasks[1].task, "aime24");
    assert_int_equal(p->tasks[1].limit, 50);
    assert_int_equal(p->tasks[1].priority, QE_PLAN_PRIO_HIGH);
    assert_true(p->generation.apply_chat_template);
    assert_int_equal(p->generation.max_gen_toks, 1024);
    assert_true(p->generation.has_temperature);
    assert_true(p->generation.temperature == 0.0);
    /* §6/§8 file names */
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_plan_output_name(p, 2, 1, &b), 0);
    assert_string_equal(qe_buf_str(&b), "lmeval_tp2_bf16_aime24_limit50");
    qe_buf_reset(&b);
    assert_int_equal(qe_plan_output_name(p, 0, 0, &b), 0);
    assert_string_equal(qe_buf_str(&b), "lmeval_tp2_nvfp4_hendrycks_math500_limit100");
    qe_buf_free(&b);
    qe_plan_free(p);
}

static void test_overrides_and_endpoint(void **state)
{
    (void)state;
    qe_plan *p = NULL;
    qe_err err = {0};
    int rc = qe_plan_load("tests/cases/plans/good_overrides.yaml", known_task, &p, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_true(fabs(p->budget - 45) < 1e-9);
    assert_string_equal(p->engine.binary, "/opt/vllm/bin/vllm");
    assert_true(fabs(p->engine.stop_grace - 20) < 1e-9);
    assert_string_equal(p->output, "results/"); /* default */
    assert_string_equal(p->naming, QE_PLAN_DEFAULT_NAMING);
    const qe_plan_model *big = &p->models[0], *small = &p->models[1];
    assert_int_equal(big->args.tensor_parallel_size, 4);         /* overridden */
    assert_int_equal(big->args.max_model_len, 4096);             /* inherited */
    assert_true(fabs(big->args.startup_timeout - 900) < 1e-9);   /* 15m */
    assert_int_equal(big->args.n_extra_args, 2);                 /* replaced, not merged */
    assert_string_equal(big->args.extra_args[0], "--dtype");
    assert_int_equal(small->args.tensor_parallel_size, 2);
    assert_int_equal(small->args.port, 8200);
    assert_int_equal(big->args.port, 8100);
    assert_int_equal(small->args.n_extra_args, 3);
    assert_string_equal(small->args.extra_args[2], "fp8");
    assert_int_equal(p->tasks[0].priority, QE_PLAN_PRIO_NORMAL);
    qe_plan_free(p);

    rc = qe_plan_load("tests/cases/plans/good_endpoint.yaml", known_task, &p, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(p->engine.kind, QE_PLAN_ENGINE_ENDPOINT);
    assert_int_equal(p->engine.n_base_urls, 2);
    assert_string_equal(p->engine.base_urls[1], "http://10.0.0.2:8000");
    assert_string_equal(p->engine.api_key_env, "MY_KEY");
    assert_true(fabs(p->budget - 5400) < 1e-9);
    assert_string_equal(p->models[0].served_model_name, "qwen3");
    assert_int_equal(p->tasks[0].limit, 0);
    assert_int_equal(p->generation.think, QE_PLAN_THINK_OFF);
    assert_string_equal(p->generation.system_instruction, "Put the final answer in \\boxed{}.");
    assert_int_equal(p->generation.num_concurrent, 64);
    assert_int_equal(p->generation.repeats, 4);
    assert_true(p->generation.has_seed && p->generation.seed == 1234);
    assert_true(fabs(p->generation.top_p - 0.95) < 1e-12);
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_plan_output_name(p, 0, 0, &b), 0);
    assert_string_equal(qe_buf_str(&b), "lmeval_tp1_q_aime25_limitall");
    qe_buf_free(&b);
    qe_plan_free(p);
}

/* Every good_*.yaml parses; every bad_*.yaml has a line in plan_errors.jsonl
 * and fails with that message at that line. */
static void test_golden_errors(void **state)
{
    (void)state;
    json_error_t je;
    FILE *f = fopen("tests/cases/plan_errors.jsonl", "r");
    assert_non_null(f);
    char line[4096];
    int cases = 0;
    char listed[64][128];
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, &je);
        if (!j)
            fail_msg("plan_errors.jsonl: %s", je.text);
        const char *file = json_string_value(json_object_get(j, "file"));
        const char *want = json_string_value(json_object_get(j, "error"));
        json_int_t want_line = json_integer_value(json_object_get(j, "line"));
        assert_non_null(file);
        assert_non_null(want);
        assert_true(cases < 64);
        snprintf(listed[cases], sizeof listed[cases], "%s", file);
        char path[512], prefix[600];
        snprintf(path, sizeof path, "tests/cases/plans/%s", file);
        qe_plan *p = NULL;
        qe_err err = {0};
        int rc = qe_plan_load(path, known_task, &p, &err);
        if (rc == 0)
            fail_msg("%s: parsed, expected error '%s'", file, want);
        assert_null(p);
        if (!strstr(err.msg, want))
            fail_msg("%s: got '%s', want substring '%s'", file, err.msg, want);
        snprintf(prefix, sizeof prefix, "%s:%lld:", path, (long long)want_line);
        if (strncmp(err.msg, prefix, strlen(prefix)))
            fail_msg("%s: got '%s', want it to start with '%s'", file, err.msg, prefix);
        json_decref(j);
        cases++;
    }
    fclose(f);
    assert_true(cases >= 25);
    /* a key pasted as api_key_env is refused without being echoed */
    qe_plan *kp = NULL;
    qe_err ke = {0};
    assert_int_equal(qe_plan_load("tests/cases/plans/bad_api_key_pasted.yaml", known_task, &kp, &ke),
                     QE_EINVAL);
    assert_null(strstr(ke.msg, "abc123"));

    DIR *d = opendir("tests/cases/plans");
    assert_non_null(d);
    struct dirent *de;
    int good = 0;
    while ((de = readdir(d))) {
        if (!strncmp(de->d_name, "bad_", 4)) {
            bool found = false;
            for (int i = 0; i < cases; i++)
                found |= !strcmp(listed[i], de->d_name);
            if (!found)
                fail_msg("%s has no line in plan_errors.jsonl", de->d_name);
        } else if (!strncmp(de->d_name, "good_", 5)) {
            char path[512];
            snprintf(path, sizeof path, "tests/cases/plans/%s", de->d_name);
            qe_plan *p = NULL;
            qe_err err = {0};
            if (qe_plan_load(path, known_task, &p, &err))
                fail_msg("%s", err.msg);
            assert_true(p->n_models >= 1 && p->n_tasks >= 1);
            qe_plan_free(p);
            good++;
        }
    }
    closedir(d);
    assert_true(good >= 3);
}

static void test_duration(void **state)
{
    (void)state;
    double s = 0;
    assert_int_equal(qe_plan_parse_duration("3h", &s), 0);
    assert_true(s == 10800);
    assert_int_equal(qe_plan_parse_duration("90m", &s), 0);
    assert_true(s == 5400);
    assert_int_equal(qe_plan_parse_duration("45s", &s), 0);
    assert_true(s == 45);
    assert_int_equal(qe_plan_parse_duration("1h30m15s", &s), 0);
    assert_true(s == 5415);
    assert_int_equal(qe_plan_parse_duration("2.5h", &s), 0);
    assert_true(s == 9000);
    assert_int_equal(qe_plan_parse_duration("600", &s), 0);
    assert_true(s == 600);
    const char *bad[] = {"", "h", "3x", "-1h", "30m1h", "3 hours", "0", "1h1h", "10 s", "1e400", "3hh", "600m5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (qe_plan_parse_duration(bad[i], &s) == 0)
            fail_msg("'%s' accepted as %g s", bad[i], s);
}

static void test_no_task_check_and_limits(void **state)
{
    (void)state;
    const char *y = "name: t\nengine: {kind: lm-eval}\nmodels: [{name: a, model: m}]\ntasks: [{task: whatever}]\n";
    qe_plan *p = NULL;
    qe_err err = {0};
    assert_int_equal(qe_plan_parse(y, strlen(y), "mem.yaml", NULL, &p, &err), 0);
    assert_int_equal(p->engine.kind, QE_PLAN_ENGINE_LMEVAL);
    qe_plan_free(p);
    /* the same plan with the predicate: task rejected, message names the file */
    assert_int_equal(qe_plan_parse(y, strlen(y), "mem.yaml", known_task, &p, &err), QE_EINVAL);
    assert_non_null(strstr(err.msg, "mem.yaml:4:"));
    assert_non_null(strstr(err.msg, "unknown task 'whatever'"));

    /* too many models: bounded */
    qe_buf b = QE_BUF_INIT;
    qe_buf_puts(&b, "name: t\nengine: {kind: vllm}\ntasks: [{task: aime24}]\nmodels:\n");
    for (int i = 0; i < QE_PLAN_MAX_MODELS + 1; i++)
        qe_buf_printf(&b, "  - {name: m%d, model: x}\n", i);
    assert_int_equal(qe_plan_parse(b.data, b.len, "big.yaml", known_task, &p, &err), QE_EINVAL);
    assert_non_null(strstr(err.msg, "more than 64 models"));
    qe_buf_free(&b);

    /* oversized input refused before parsing */
    size_t n = QE_PLAN_MAX_BYTES + 1;
    char *huge = malloc(n);
    assert_non_null(huge);
    memset(huge, '#', n);
    assert_int_equal(qe_plan_parse(huge, n, "huge.yaml", NULL, &p, &err), QE_ELIMIT);
    free(huge);

    /* a NUL byte inside the text */
    const char nul[] = "name: t\0x\n";
    assert_int_equal(qe_plan_parse(nul, sizeof nul - 1, "nul.yaml", NULL, &p, &err), QE_EINVAL);
    assert_null(p);
}

/* Mutated copies of the example plan: never a crash, and every failure is a
 * one-line message naming the file (bounded, so ASan sees every access). */
static void test_mutations_never_crash(void **state)
{
    (void)state;
    FILE *f = fopen("examples/qwen3-32b-precision.yaml", "rb");
    assert_non_null(f);
    char orig[16384];
    size_t n = fread(orig, 1, sizeof orig, f);
    fclose(f);
    assert_true(n > 100 && n < sizeof orig);
    static const char alphabet[] = ":-{}[],'\"&*!|>#\n\t 0a.%@`";
    unsigned seed = 12345;
    int ok = 0, failed = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char buf[16384];
        memcpy(buf, orig, n);
        size_t len = n;
        int edits = 1 + iter % 4;
        for (int k = 0; k < edits; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            int op = (int)((seed >> 8) % 3);
            char c = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
            if (op == 0)
                buf[pos] = c;
            else if (op == 1 && len > 1) {
                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                len--;
            } else if (len + 1 < sizeof buf) {
                memmove(buf + pos + 1, buf + pos, len - pos);
                buf[pos] = c;
                len++;
            }
        }
        qe_plan *p = NULL;
        qe_err err = {0};
        int rc = qe_plan_parse(buf, len, "m.yaml", known_task, &p, &err);
        if (rc == 0) {
            assert_non_null(p);
            assert_true(p->n_models >= 1 && p->n_tasks >= 1);
            qe_plan_free(p);
            ok++;
        } else {
            assert_null(p);
            assert_int_equal(strncmp(err.msg, "m.yaml:", 7), 0);
            assert_null(strchr(err.msg, '\n'));
            failed++;
        }
    }
    assert_true(ok > 0 && failed > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_is_the_experiment),
        cmocka_unit_test(test_overrides_and_endpoint),
        cmocka_unit_test(test_golden_errors),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_no_task_check_and_limits),
        cmocka_unit_test(test_mutations_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
