/* End-to-end tests of `qeval summarize` ($QEVAL_BUILD/qeval) on the lm-eval
 * fixtures: every output format, globs, latest-wins, error exits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "buf.h"
#include "cli_run.h"
#include "file_util.h"

#define FX "tests/fixtures/lmeval/"

typedef cli_result result;

/* Runs `qeval summarize ARGS...`; captures exit status, stdout and stderr. */
#define run(r, ...) assert_int_equal(CLI_QEVAL((r), "summarize", __VA_ARGS__), 0)
#define done cli_done

static json_t *find_row(json_t *a, const char *model, const char *task)
{
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        if (!strcmp(json_string_value(json_object_get(o, "model")), model) &&
            !strcmp(json_string_value(json_object_get(o, "task")), task))
            return o;
    }
    return NULL;
}

static void test_json_contract(void **state)
{
    (void)state;
    result r;
    run(&r, "--format", "json", FX "runs", FX "verdicts", FX "flat/run_*.json");
    assert_int_equal(r.status, 0);
    json_error_t je;
    json_t *a = json_loads(qe_buf_str(&r.out), 0, &je);
    assert_non_null(a);
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), 5);
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        static const char *keys[] = {"model", "task", "filter", "metric", "value", "stderr", "n", "file"};
        for (size_t k = 0; k < 8; k++)
            assert_non_null(json_object_get(o, keys[k]));
    }
    o = find_row(a, "Qwen/Qwen3-32B", "hendrycks_math500");
    assert_non_null(o);
    assert_true(json_real_value(json_object_get(o, "value")) == 0.27);
    assert_true(json_real_value(json_object_get(o, "stderr")) == strtod("0.04461960433384739", NULL));
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 100);
    assert_int_equal(json_integer_value(json_object_get(o, "n_original")), 500);
    assert_string_equal(json_string_value(json_object_get(o, "filter")), "none");
    assert_string_equal(json_string_value(json_object_get(o, "metric")), "exact_match");
    assert_non_null(strstr(json_string_value(json_object_get(o, "file")), "results_2025-12-24T00-52-25.664596.json"));
    /* newest FP8 file wins over the older one */
    o = find_row(a, "Qwen/Qwen3-32B-FP8", "hendrycks_math500");
    assert_true(json_real_value(json_object_get(o, "value")) == 0.25);
    assert_non_null(strstr(qe_buf_str(&r.err), "1 older result(s) superseded"));
    /* verdicts: model/task from the path, lm-eval stderr over the lines */
    o = find_row(a, "bf16", "aime24");
    assert_non_null(o);
    assert_true(json_real_value(json_object_get(o, "value")) == 0.4);
    assert_true(json_real_value(json_object_get(o, "stderr")) == strtod("0.09097176522946843", NULL));
    assert_string_equal(json_string_value(json_object_get(o, "metric")), "correct");
    /* exact_match, 0 of 30: Wilson's interval, not the degenerate [0, 0]
     * that value +- 1.96 stderr gives (stderr 0) */
    o = find_row(a, "Qwen/Qwen3-32B", "aime24");
    assert_true(json_real_value(json_object_get(o, "value")) == 0.0);
    assert_true(json_real_value(json_object_get(o, "ci_low")) == 0.0);
    assert_true(fabs(json_real_value(json_object_get(o, "ci_high")) - 0.11351339317396876) < 1e-12);
    /* the verdicts' "correct" is not known to be 0/1: normal interval */
    o = find_row(a, "bf16", "aime24");
    assert_true(fabs(json_real_value(json_object_get(o, "ci_low")) -
                     (0.4 - 1.96 * 0.09097176522946843)) < 1e-12);
    json_decref(a);
    done(&r);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_table_csv_md(void **state)
{
    (void)state;
    result r;
    run(&r, FX "runs");
    assert_int_equal(r.status, 0);
    const char *t = qe_buf_str(&r.out);
    assert_non_null(strstr(t, "0.2700"));
    assert_non_null(strstr(t, "[0.1927, 0.3643]")); /* Wilson, 27 of 100 */
    assert_non_null(strstr(t, "100/500"));
    assert_non_null(strstr(t, "max_gen_toks")); /* 1024 vs 2048 differ */
    assert_null(strstr(t, "until"));            /* same per task: hidden */
    assert_null(strstr(t, "0.5000"));           /* older FP8 run hidden */
    done(&r);

    run(&r, "--format", "csv", "--all", FX "runs");
    assert_int_equal(r.status, 0);
    t = qe_buf_str(&r.out);
    assert_int_equal(strncmp(t, "model,task,filter,metric,value,stderr,ci_low,ci_high,n,n_original,limit,max_gen_toks,gen_kwargs,latest,file\n", 107), 0);
    assert_int_equal(count_lines(t), 5);
    assert_non_null(strstr(t, "Qwen/Qwen3-32B,hendrycks_math500,none,exact_match,0.27,0.04461960433384739,"));
    assert_non_null(strstr(t, "\"{\"\"max_gen_toks\"\": 2048, \"\"temperature\"\": 0.0}\""));
    assert_non_null(strstr(t, ",no,"));
    done(&r);

    run(&r, "--format", "md", FX "runs");
    assert_int_equal(r.status, 0);
    t = qe_buf_str(&r.out);
    assert_int_equal(strncmp(t, "| model | task | filter | metric | value | stderr | 95% CI | n |", 62), 0);
    assert_int_equal(count_lines(t), 5);
    assert_non_null(strstr(t, "| Qwen/Qwen3-32B-FP8 | hendrycks_math500 | none | exact_match | 0.2500 |"));
    done(&r);
}

static void test_globs_groups_samples(void **state)
{
    (void)state;
    result r;
    run(&r, "--format", "json", FX "**/results_*.json");
    /* bad/ matches too: one unreadable file → exit 1, the rest shown */
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(qe_buf_str(&r.err), "bad/results_2025-01-01T00-00-00.000000.json:4:3: malformed JSON"));
    json_t *a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_non_null(a);
    /* group "aime" has null values: skipped. Its aime24 subtask and the
     * Qwen3-32B aime24 of runs/ are in different directories, so both are
     * shown, each named by its output directory; newest-wins is only
     * within a directory (FP8's two files in runs/) */
    assert_null(find_row(a, "Qwen/Qwen3-32B@group", "aime"));
    assert_null(find_row(a, "Qwen/Qwen3-32B", "aime24"));
    json_t *o = find_row(a, "Qwen/Qwen3-32B@group", "aime24");
    assert_non_null(o);
    assert_true(json_real_value(json_object_get(o, "value")) == strtod("0.3333333333333333", NULL));
    o = find_row(a, "Qwen/Qwen3-32B@runs", "aime24");
    assert_non_null(o);
    assert_true(json_real_value(json_object_get(o, "value")) == 0.0);
    assert_non_null(find_row(a, "Qwen/Qwen3-32B@runs", "hendrycks_math500"));
    o = find_row(a, "Qwen/Qwen3-32B-FP8", "hendrycks_math500");
    assert_true(json_real_value(json_object_get(o, "value")) == 0.25);
    assert_non_null(strstr(qe_buf_str(&r.err), "1 older result(s) superseded"));
    assert_int_equal(json_array_size(a), 4);
    json_decref(a);
    done(&r);

    /* samples JSONL next to its results file: one row, the results one */
    run(&r, "--format", "json", FX "runs/Qwen__Qwen3-32B/results_2025-12-24T00-52-25.664596.json",
        FX "runs/Qwen__Qwen3-32B/samples_*.jsonl",
        FX "flat/samples_hendrycks_math500_2025-12-25T08-30-00.500000.jsonl");
    assert_int_equal(r.status, 0);
    a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_int_equal(json_array_size(a), 3);
    o = find_row(a, "RedHatAI/Qwen3-32B-NVFP4", "hendrycks_math500");
    assert_non_null(o);
    assert_true(json_real_value(json_object_get(o, "value")) == 0.25);
    json_decref(a);
    done(&r);
}

/* One served model name, two output directories (two precisions behind
 * `--served-model-name`): two rows, never one "superseded" by the other.
 * Directories with the same name are told apart by their whole path. */
static void test_same_name_two_dirs(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/qe_summ_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/bf16/Qwen__Qwen3-32B %s/a/fp8/Qwen__Qwen3-32B %s/b/fp8/Qwen__Qwen3-32B && "
             "cp " FX "runs/Qwen__Qwen3-32B/results_2025-12-24T00-52-25.664596.json "
             "%s/bf16/Qwen__Qwen3-32B/ && "
             "cp " FX "group/Qwen__Qwen3-32B/results_2025-12-26T00-00-00.000000.json "
             "%s/a/fp8/Qwen__Qwen3-32B/ && "
             "cp " FX "group/Qwen__Qwen3-32B/results_2025-12-26T00-00-00.000000.json "
             "%s/b/fp8/Qwen__Qwen3-32B/",
             d, d, d, d, d, d);
    assert_int_equal(system(cmd), 0);
    char bf16[256], fp8[256], a_fp8[256], b_fp8[256];
    snprintf(bf16, sizeof bf16, "%s/bf16", d);
    snprintf(fp8, sizeof fp8, "%s/a/fp8/", d);
    result r;
    run(&r, "--format", "json", bf16, fp8);
    assert_int_equal(r.status, 0);
    assert_null(strstr(qe_buf_str(&r.err), "superseded"));
    json_t *a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), 3);
    json_t *o = find_row(a, "Qwen/Qwen3-32B@bf16", "aime24");
    assert_non_null(o);
    assert_true(json_real_value(json_object_get(o, "value")) == 0.0);
    o = find_row(a, "Qwen/Qwen3-32B@fp8", "aime24");
    assert_non_null(o);
    assert_true(json_real_value(json_object_get(o, "value")) == strtod("0.3333333333333333", NULL));
    json_decref(a);
    done(&r);

    /* a/fp8 and b/fp8: the same last name, so the whole directory */
    char *real = realpath(d, NULL);
    assert_non_null(real);
    snprintf(a_fp8, sizeof a_fp8, "Qwen/Qwen3-32B@%s/a/fp8", real);
    snprintf(b_fp8, sizeof b_fp8, "Qwen/Qwen3-32B@%s/b/fp8", real);
    snprintf(fp8, sizeof fp8, "%s/*/fp8", d);
    run(&r, "--format", "json", fp8);
    assert_int_equal(r.status, 0);
    a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), 2);
    assert_non_null(find_row(a, a_fp8, "aime24"));
    assert_non_null(find_row(a, b_fp8, "aime24"));
    json_decref(a);
    done(&r);
    free(real);
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    assert_int_equal(system(cmd), 0);
}

static void test_errors_and_usage(void **state)
{
    (void)state;
    result r;
    run(&r, FX "runs", "/nonexistent/x.json", FX "bad");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(qe_buf_str(&r.err), "qeval: /nonexistent/x.json: "));
    assert_non_null(strstr(qe_buf_str(&r.out), "0.2700"));
    done(&r);
    run(&r, FX "bad/samples_aime24_2025-01-01T00-00-00.000000.jsonl");
    assert_int_equal(r.status, 1); /* two bad lines reported, two good lines summarized */
    assert_non_null(strstr(qe_buf_str(&r.err), ".jsonl:2: malformed JSON"));
    assert_non_null(strstr(qe_buf_str(&r.err), ".jsonl:3: line is not a JSON object"));
    done(&r);
    run(&r, FX "bad/results_2025-01-01T00-00-00.000000.json");
    assert_int_equal(r.status, 3);
    done(&r);
    assert_int_equal(CLI_QEVAL(&r, "summarize"), 0);
    assert_int_equal(r.status, 2);
    done(&r);
    run(&r, "--format", "xml", FX "runs");
    assert_int_equal(r.status, 2);
    done(&r);
    run(&r, "--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(qe_buf_str(&r.out), "usage: qeval summarize"));
    done(&r);
}

/* Two runs of one task that differ only in Qwen3's thinking switch, as
 * model_args record it (lm-eval's vllm and qeval: enable_thinking=False):
 * summarize shows a thinking column, so they do not look identical. */
static void test_thinking_column(void **state)
{
    (void)state;
    char top[] = "/tmp/qeval-sum-think-XXXXXX";
    assert_non_null(mkdtemp(top));
    const char *src = FX "runs/Qwen__Qwen3-32B/results_2025-12-24T00-52-25.664596.json";
    const char *names[] = {"off", "default"};
    for (int i = 0; i < 2; i++) {
        char d[200], f[300];
        snprintf(d, sizeof d, "%s/%s", top, names[i]);
        assert_int_equal(mkdir(d, 0755), 0);
        json_t *r = json_load_file(src, 0, NULL);
        assert_non_null(r);
        if (i == 0)
            json_object_set_new(json_object_get(r, "config"), "model_args",
                                json_string("model=Qwen/Qwen3-32B,enable_thinking=False"));
        snprintf(f, sizeof f, "%s/results_2025-12-24T00-52-25.664596.json", d);
        assert_int_equal(json_dump_file(r, f, JSON_INDENT(2)), 0);
        json_decref(r);
    }
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/off", top);
    snprintf(b, sizeof b, "%s/default", top);
    result r;
    run(&r, "--format", "json", "--all", a, b);
    assert_int_equal(r.status, 0);
    json_t *rows = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_non_null(rows);
    int off = 0, dflt = 0;
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o) {
        const char *th = json_string_value(json_object_get(json_object_get(o, "settings"), "thinking"));
        assert_non_null(th);
        off += !strcmp(th, "False");
        dflt += !strcmp(th, "default");
    }
    assert_true(off > 0 && dflt > 0);
    json_decref(rows);
    done(&r);
    rm_rf(top);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thinking_column),
        cmocka_unit_test(test_json_contract),
        cmocka_unit_test(test_table_csv_md),
        cmocka_unit_test(test_globs_groups_samples),
        cmocka_unit_test(test_same_name_two_dirs),
        cmocka_unit_test(test_errors_and_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
