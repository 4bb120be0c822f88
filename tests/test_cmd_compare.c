/* End-to-end tests of `qeval compare` and `qeval report` ($QEVAL_BUILD/qeval):
 * golden cases in tests/cases/compare_cli.jsonl on the scripted lm-eval-layout
 * fixtures (tests/fixtures/compare/, true flips known by construction), the
 * shipped real example against tests/cases/stats_r1_example.jsonl (derived
 * from the source data independently of qeval), the JSON contract, the table's
 * flips and power sentence, mismatch refusal, error exits, and report writing
 * (size printed, never overwriting without --force, atomic). */
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
#include <sys/stat.h>
#include <unistd.h>

#include "cli_run.h"
#include "file_util.h"
#include "jsonl_cases.h"

#define EX "examples/r1-distill-1.5b-quant/"

static const char *const CONTRACT[] = {
    "task", "filter", "model", "baseline", "n_paired", "accuracy", "baseline_accuracy", "delta",
    "ci_low", "ci_high", "mcnemar_p", "gained", "lost", "truncation_rate",
    "baseline_truncation_rate", NULL};

static int run_compare(const char *const *args, size_t n, int json, cli_result *r)
{
    char *argv[64];
    size_t k = 0;
    argv[k++] = (char *)cli_qeval();
    argv[k++] = "compare";
    for (size_t i = 0; i < n && k < 60; i++)
        argv[k++] = (char *)args[i];
    if (json) {
        argv[k++] = "--format";
        argv[k++] = "json";
    }
    argv[k] = NULL;
    assert_int_equal(cli_run(argv, r), 0);
    return r->status;
}

static json_t *find_row(json_t *a, const char *task, const char *model)
{
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o)
    {
        if (!strcmp(json_string_value(json_object_get(o, "task")), task) &&
            !strcmp(json_string_value(json_object_get(o, "model")), model))
            return o;
    }
    return NULL;
}

static void assert_near(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol)) {
        fail_msg("%s: got %.17g, want %.17g", what, got, want);
    }
}

static void check_case(json_t *c, int line)
{
    (void)line;
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *args = json_object_get(c, "args");
    const char *argv[48];
    size_t n = 0, i;
    json_t *v;
    json_array_foreach(args, i, v) argv[n++] = json_string_value(v);
    int want_exit = (int)json_integer_value(json_object_get(c, "exit"));
    cli_result r;
    int st = run_compare(argv, n, want_exit == 0, &r);
    if (st != want_exit)
        fail_msg("%s: exit %d, want %d; stderr: %s", name, st, want_exit, qe_buf_str(&r.err));
    const char *has = json_string_value(json_object_get(c, "stderr_has"));
    const char *lacks = json_string_value(json_object_get(c, "stderr_lacks"));
    if (has && *has && !strstr(qe_buf_str(&r.err), has))
        fail_msg("%s: stderr lacks '%s': %s", name, has, qe_buf_str(&r.err));
    if (lacks && *lacks && strstr(qe_buf_str(&r.err), lacks))
        fail_msg("%s: stderr has '%s': %s", name, lacks, qe_buf_str(&r.err));
    if (want_exit == 0) {
        json_error_t je;
        json_t *a = json_loads(qe_buf_str(&r.out), 0, &je);
        if (!json_is_array(a))
            fail_msg("%s: stdout is not one JSON array: %s", name, je.text);
        const char *model = json_string_value(json_object_get(c, "model"));
        const char *task = json_string_value(json_object_get(c, "task"));
        json_t *o = find_row(a, task, model);
        if (!o)
            fail_msg("%s: no row for %s/%s", name, task, model);
        for (size_t k = 0; CONTRACT[k]; k++)
            if (!json_object_get(o, CONTRACT[k]))
                fail_msg("%s: contract field %s missing", name, CONTRACT[k]);
        assert_string_equal(json_string_value(json_object_get(o, "filter")),
                            json_string_value(json_object_get(c, "filter")));
        assert_string_equal(json_string_value(json_object_get(o, "baseline")),
                            json_string_value(json_object_get(c, "baseline")));
        assert_int_equal(json_integer_value(json_object_get(o, "n_paired")),
                         json_integer_value(json_object_get(c, "n_paired")));
        static const char *const nums[] = {"accuracy", "baseline_accuracy", "delta",
                                           "truncation_rate", "baseline_truncation_rate", NULL};
        for (size_t k = 0; nums[k]; k++) {
            json_t *w = json_object_get(c, nums[k]), *g = json_object_get(o, nums[k]);
            if (json_is_null(w)) {
                if (!json_is_null(g))
                    fail_msg("%s: %s should be null", name, nums[k]);
                continue;
            }
            if (!json_is_number(g))
                fail_msg("%s: %s is not a number", name, nums[k]);
            assert_near(json_number_value(g), json_number_value(w), 1e-12, nums[k]);
        }
        double wp = json_number_value(json_object_get(c, "mcnemar_p"));
        assert_near(json_number_value(json_object_get(o, "mcnemar_p")), wp, 1e-9 * wp,
                    "mcnemar_p");
        if (!json_equal(json_object_get(o, "gained"), json_object_get(c, "gained")) ||
            !json_equal(json_object_get(o, "lost"), json_object_get(c, "lost"))) {
            char *g = json_dumps(json_object_get(o, "gained"), 0);
            char *l = json_dumps(json_object_get(o, "lost"), 0);
            fail_msg("%s: gained %s lost %s differ from the script", name, g, l);
        }
        json_t *mh = json_object_get(c, "mismatch_has");
        if (mh) {
            char *all = json_dumps(json_object_get(o, "config_mismatches"), 0);
            json_array_foreach(mh, i, v)
            {
                if (!strstr(all, json_string_value(v)))
                    fail_msg("%s: config_mismatches lack '%s': %s", name, json_string_value(v),
                             all);
            }
            free(all);
        } else {
            assert_int_equal(json_array_size(json_object_get(o, "config_mismatches")), 0);
        }
        json_decref(a);
    }
    cli_done(&r);
}

static void test_golden_cases(void **state)
{
    (void)state;
    assert_true(each_case("tests/cases/compare_cli.jsonl", check_case) >= 10);
}

/* One line of stats_r1_example.jsonl against the row of compare's JSON
 * array a for the same task and model. */
static void r1_example_row(json_t *c, int line, void *arg)
{
    (void)line;
    json_t *a = arg;
    const char *task = json_string_value(json_object_get(c, "task"));
    const char *model = json_string_value(json_object_get(c, "model"));
    json_t *o = find_row(a, task, model);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "baseline")), "bf16");
    assert_int_equal(json_integer_value(json_object_get(o, "n_paired")),
                     json_integer_value(json_object_get(c, "n_paired")));
    assert_int_equal(json_array_size(json_object_get(o, "gained")),
                     json_integer_value(json_object_get(c, "gained")));
    assert_int_equal(json_array_size(json_object_get(o, "lost")),
                     json_integer_value(json_object_get(c, "lost")));
    assert_near(json_number_value(json_object_get(o, "accuracy")),
                json_number_value(json_object_get(c, "accuracy")), 1e-12, "accuracy");
    assert_near(100 * json_number_value(json_object_get(o, "delta")),
                json_number_value(json_object_get(c, "delta_points")), 1e-9, "delta");
    double p = json_number_value(json_object_get(c, "mcnemar_p"));
    assert_near(json_number_value(json_object_get(o, "mcnemar_p")), p, 1e-6 * p, "p");
}

static void test_real_example(void **state)
{
    (void)state;
    const char *args[] = {EX "bf16", EX "awq-w3g128", EX "awq-w4g128", EX "gptq-w3g128",
                          EX "gptq-w4g128", EX "kvquant-kv4"};
    cli_result r;
    assert_int_equal(run_compare(args, 6, 1, &r), 0);
    json_t *a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), 10);
    /* pairing by doc_id is announced: the example has no doc_hash */
    assert_non_null(strstr(qe_buf_str(&r.err), "pairing problems by doc_id"));
    assert_int_equal(each_case_arg("tests/cases/stats_r1_example.jsonl", 0, r1_example_row, a), 10);
    /* the headline findings */
    json_t *w3 = find_row(a, "math500", "awq-w3g128"), *kv = find_row(a, "math500", "kvquant-kv4");
    assert_near(100 * json_number_value(json_object_get(w3, "delta")), -32.4, 1e-9, "w3");
    assert_true(json_number_value(json_object_get(w3, "mcnemar_p")) < 0.001);
    assert_near(100 * json_number_value(json_object_get(kv, "delta")), -0.8, 1e-9, "kv4");
    assert_true(json_number_value(json_object_get(kv, "mcnemar_p")) > 0.05);
    json_decref(a);
    cli_done(&r);
}

static void test_table_and_formats(void **state)
{
    (void)state;
    const char *args[] = {EX "bf16", EX "awq-w3g128", EX "kvquant-kv4", "--task", "math500",
                          "--flips", "2"};
    cli_result r;
    assert_int_equal(run_compare(args, 7, 0, &r), 0);
    const char *o = qe_buf_str(&r.out);
    assert_non_null(strstr(o, "math500/none awq-w3g128 vs bf16: -32.4 points, p < 0.001: a real loss"));
    assert_non_null(strstr(o, "math500/none kvquant-kv4 vs bf16: -0.8 points, p = 0.71: not "
                              "distinguishable from noise"));
    assert_non_null(strstr(o, "500 problems cannot tell 2 points from noise"));
    assert_non_null(strstr(o, "math500/none awq-w3g128 vs bf16, lost (171):"));
    assert_non_null(strstr(o, "... and 169 more"));
    assert_null(strstr(o, "aime90")); /* --task */
    cli_done(&r);

    const char *noflips[] = {EX "bf16", EX "awq-w3g128", "--flips", "0"};
    assert_int_equal(run_compare(noflips, 4, 0, &r), 0);
    assert_null(strstr(qe_buf_str(&r.out), "Flipped problems"));
    cli_done(&r);

    const char *md[] = {EX "bf16", EX "awq-w3g128", "--format", "md"};
    assert_int_equal(run_compare(md, 4, 0, &r), 0);
    assert_non_null(strstr(qe_buf_str(&r.out), "| math500 |"));
    assert_null(strstr(qe_buf_str(&r.out), "Power ("));
    cli_done(&r);

    const char *csv[] = {EX "bf16", EX "awq-w3g128", "--format=csv"};
    assert_int_equal(run_compare(csv, 3, 0, &r), 0);
    assert_non_null(strstr(qe_buf_str(&r.out), "math500,none,awq-w3g128,bf16,500,"));
    /* one value per column: the CI's ends and both truncation rates apart */
    assert_non_null(strstr(qe_buf_str(&r.out), "delta,ci95_low,ci95_high,mcnemar_p,gained,lost,"
                                               "trunc%,base_trunc%,mdd,verdict\n"));
    assert_non_null(strstr(qe_buf_str(&r.out), ",-32.4,-36.7,-27.9,6.1e-40,9,171,-,-,7.5,"));
    cli_done(&r);

    const char *base[] = {EX "awq-w3g128", EX "bf16", "--baseline", "bf16", "--task=aime90"};
    assert_int_equal(run_compare(base, 5, 1, &r), 0);
    json_t *a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "baseline")),
                        "bf16");
    json_decref(a);
    cli_done(&r);

    const char *usage[] = {EX "bf16", "--bogus"};
    assert_int_equal(run_compare(usage, 2, 0, &r), 2);
    cli_done(&r);
    /* an argument naming nothing in the inputs is a usage error */
    const char *notask[] = {EX "bf16", EX "awq-w3g128", "--task", "gsm8k"};
    assert_int_equal(run_compare(notask, 4, 0, &r), 2);
    assert_non_null(strstr(qe_buf_str(&r.err), "--task gsm8k"));
    cli_done(&r);
    const char *nobase[] = {EX "bf16", EX "awq-w3g128", "--baseline", "fp8"};
    assert_int_equal(run_compare(nobase, 4, 0, &r), 2);
    assert_non_null(strstr(qe_buf_str(&r.err), "--baseline fp8: no such model; models: bf16, "
                                                "awq-w3g128"));
    cli_done(&r);
}

#define RUNS "tests/fixtures/lmeval/runs/"

/* A sweep writes OUT/<plan name>/<model with / as __>/: --baseline takes
 * the plan name (the run directory's name), not only the served model's. */
/* The same answers in two places: nothing flipped, and the table says so
 * instead of an empty "Flipped problems" list. */
static void test_no_flips(void **state)
{
    (void)state;
    char top[] = "/tmp/qeval-cmpsame-XXXXXX";
    assert_non_null(mkdtemp(top));
    char d[200];
    snprintf(d, sizeof d, "%s/org__model-a", top);
    assert_int_equal(mkdir(d, 0755), 0);
    link_file(d, "tests/fixtures/compare/lmeval/org__model-a/results_2025-01-02T03-04-05.000001.json");
    link_file(d, "tests/fixtures/compare/lmeval/org__model-a/"
                 "samples_hendrycks_math500_2025-01-02T03-04-05.000001.jsonl");
    const char *args[] = {"tests/fixtures/compare/lmeval/org__model-a", d};
    cli_result r;
    assert_int_equal(run_compare(args, 2, 0, &r), 0);
    const char *o = qe_buf_str(&r.out);
    assert_non_null(strstr(o, "identical verdicts on all 40 paired problems"));
    assert_non_null(strstr(o, "No problem flipped"));
    assert_null(strstr(o, "Flipped problems"));
    cli_done(&r);
    rm_rf(top);
}

static void test_baseline_by_run_dir(void **state)
{
    (void)state;
    char top[] = "/tmp/qeval-cmpdir-XXXXXX";
    assert_non_null(mkdtemp(top));
    char bf[200], bfm[300], fp[200], fpm[300];
    snprintf(bf, sizeof bf, "%s/bf16", top);
    snprintf(bfm, sizeof bfm, "%s/Qwen__Qwen3-32B", bf);
    snprintf(fp, sizeof fp, "%s/fp8", top);
    snprintf(fpm, sizeof fpm, "%s/Qwen__Qwen3-32B-FP8", fp);
    assert_int_equal(mkdir(bf, 0755) | mkdir(bfm, 0755) | mkdir(fp, 0755) | mkdir(fpm, 0755), 0);
    link_file(bfm, RUNS "Qwen__Qwen3-32B/results_2025-12-24T00-52-25.664596.json");
    link_file(bfm, RUNS "Qwen__Qwen3-32B/samples_hendrycks_math500_2025-12-24T00-52-25.664596.jsonl");
    link_file(fpm, RUNS "Qwen__Qwen3-32B-FP8/results_2025-12-23T10-00-00.000001.json");
    link_file(fpm, RUNS "Qwen__Qwen3-32B-FP8/samples_hendrycks_math500_2025-12-23T10-00-00.000001.jsonl");
    const char *args[] = {fp, bf, "--baseline", "bf16", "--allow-mismatch"};
    cli_result r;
    assert_int_equal(run_compare(args, 5, 1, &r), 0);
    json_t *a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "baseline")),
                        "Qwen/Qwen3-32B");
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "model")),
                        "Qwen/Qwen3-32B-FP8");
    json_decref(a);
    cli_done(&r);
    const char *args2[] = {bf, fp, "--baseline", "fp8", "--allow-mismatch"};
    assert_int_equal(run_compare(args2, 5, 1, &r), 0);
    a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "baseline")),
                        "Qwen/Qwen3-32B-FP8");
    json_decref(a);
    cli_done(&r);
    rm_rf(top);
}

/* Model e answers A's misses 3, 7, 11 as $$\boxed{n}$$: lm-eval's scorer
 * rejected them (same verdicts as A), the math verifier accepts them. */
static void test_scorer_math(void **state)
{
    (void)state;
    const char *lm[] = {"tests/fixtures/compare/lmeval/org__model-a",
                        "tests/fixtures/compare/lmeval/org__model-e"};
    cli_result r;
    assert_int_equal(run_compare(lm, 2, 1, &r), 0);
    json_t *a = json_loads(qe_buf_str(&r.out), 0, NULL);
    json_t *o = json_array_get(a, 0);
    assert_int_equal(json_array_size(json_object_get(o, "gained")), 0);
    assert_string_equal(json_string_value(json_object_get(o, "scorer")), "lmeval");
    assert_null(json_object_get(o, "verifier_accepts_lmeval_rejected"));
    json_decref(a);
    cli_done(&r);

    const char *args[] = {"tests/fixtures/compare/lmeval/org__model-a",
                          "tests/fixtures/compare/lmeval/org__model-e", "--scorer", "math"};
    int st = run_compare(args, 4, 1, &r);
    if (st == 2) {
        assert_non_null(strstr(qe_buf_str(&r.err), "not available in this build"));
        assert_int_equal(r.out.len, 0);
        printf("# --scorer math: not in this build (verifier not compiled in)\n");
    } else {
        /* built with the verifier */
        assert_int_equal(st, 0);
        a = json_loads(qe_buf_str(&r.out), 0, NULL);
        o = json_array_get(a, 0);
        assert_string_equal(json_string_value(json_object_get(o, "scorer")), "math");
        assert_int_equal(json_integer_value(json_object_get(o, "verifier_accepts_lmeval_rejected")), 3);
        assert_int_equal(json_integer_value(json_object_get(o, "verifier_rejects_lmeval_accepted")), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "baseline_verifier_accepts_lmeval_rejected")), 0);
        json_t *g = json_pack("[sss]", "3", "7", "11");
        assert_true(json_equal(json_object_get(o, "gained"), g));
        assert_true(json_equal(json_object_get(o, "verifier_accepts_lmeval_rejected_ids"), g));
        json_decref(g);
        assert_int_equal(json_array_size(json_object_get(o, "lost")), 0);
        assert_near(json_number_value(json_object_get(o, "accuracy")), 33.0 / 40, 1e-12, "acc");
        assert_near(json_number_value(json_object_get(o, "mcnemar_p")), 0.25, 1e-12, "p");
        json_decref(a);
        cli_done(&r);
        const char *tbl[] = {"tests/fixtures/compare/lmeval/org__model-a",
                             "tests/fixtures/compare/lmeval/org__model-e", "--scorer", "math"};
        assert_int_equal(run_compare(tbl, 4, 0, &r), 0);
        assert_non_null(strstr(qe_buf_str(&r.out), "hendrycks_math500/none org/model-e: 3 answers "
                                                   "the verifier accepts but lm-eval rejected"));
        assert_non_null(strstr(qe_buf_str(&r.out), "accepted only by the verifier: 3, 7, 11\n"));
        /* flip previews show the verifier's extracted answer */
        assert_non_null(strstr(qe_buf_str(&r.out), "3: org/model-e \"6\" | org/model-a \"7\""));
    }
    cli_done(&r);
    /* genuine gsm8k output: the verifier agrees with every lm-eval verdict
     * (as `qeval rescore --scorer math` finds on the same files) */
    const char *real[] = {"tests/fixtures/lmeval-real/pyfade-gsm8k", "--baseline", "gemma3:12b-u1",
                          "--scorer", "math"};
    if (run_compare(real, 5, 1, &r) == 0) {
        a = json_loads(qe_buf_str(&r.out), 0, NULL);
        o = json_array_get(a, 0);
        assert_int_equal(json_integer_value(json_object_get(o, "verifier_accepts_lmeval_rejected")), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "verifier_rejects_lmeval_accepted")), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "baseline_verifier_rejects_lmeval_accepted")), 0);
        json_t *g = json_pack("[s]", "18");
        assert_true(json_equal(json_object_get(o, "gained"), g));
        json_decref(g);
        json_decref(a);
    } else {
        assert_int_equal(r.status, 2);
    }
    cli_done(&r);
    const char *bad[] = {"x", "y", "--scorer", "sympy"};
    assert_int_equal(run_compare(bad, 4, 0, &r), 2);
    cli_done(&r);
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static int count_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strstr(de->d_name, ".tmp") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void test_report_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/qeval-report-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char out[256];
    snprintf(out, sizeof out, "%s/r1.html", dir);
    char *argv[] = {(char *)cli_qeval(), "report", out, EX "bf16", EX "awq-w3g128",
                    EX "kvquant-kv4", "--title", "R1 <quant>", NULL, NULL};
    cli_result r;
    assert_int_equal(cli_run(argv, &r), 0);
    assert_int_equal(r.status, 0);
    long sz = file_size(out);
    assert_true(sz > 10000);
    char want[512];
    snprintf(want, sizeof want, "wrote %s (%ld bytes", out, sz);
    assert_non_null(strstr(qe_buf_str(&r.out), want));
    cli_done(&r);
    qe_buf html = QE_BUF_INIT;
    cli_slurp(out, &html);
    assert_non_null(strstr(qe_buf_str(&html), "<title>R1 &lt;quant&gt;</title>"));
    assert_non_null(strstr(qe_buf_str(&html), "awq-w3g128"));
    /* it says what it compares: each model's files, settings, the scorer */
    assert_non_null(strstr(qe_buf_str(&html), "<h2>Inputs</h2>\n<p>Verdicts: as recorded"));
    assert_non_null(strstr(qe_buf_str(&html), "<td>kvquant-kv4</td><td>math500 / none</td><td><code>"
                                              EX "kvquant-kv4/math500.verdicts.jsonl</code></td>"));
    assert_non_null(strstr(qe_buf_str(&html), "unknown (no results file beside the records)"));
    qe_buf_free(&html);

    /* exists: refused, file untouched */
    FILE *f = fopen(out, "w");
    fputs("keep me", f);
    fclose(f);
    assert_int_equal(cli_run(argv, &r), 0);
    assert_int_equal(r.status, 4);
    assert_non_null(strstr(qe_buf_str(&r.err), "exists; --force replaces it"));
    assert_int_equal(file_size(out), 7);
    cli_done(&r);
    /* --force replaces */
    argv[8] = "--force";
    assert_int_equal(cli_run(argv, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(file_size(out), sz);
    cli_done(&r);
    assert_int_equal(count_tmp(dir), 0);

    /* output name must be .html; missing directory is an I/O error */
    char *bad[] = {(char *)cli_qeval(), "report", EX "bf16", EX "awq-w3g128", NULL};
    assert_int_equal(cli_run(bad, &r), 0);
    assert_int_equal(r.status, 2);
    cli_done(&r);
    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.html", dir);
    char *nd[] = {(char *)cli_qeval(), "report", nodir, EX "bf16", EX "awq-w3g128", NULL};
    assert_int_equal(cli_run(nd, &r), 0);
    assert_int_equal(r.status, 4);
    cli_done(&r);
    /* a bad input is reported with file:line before anything is written */
    char out2[300];
    snprintf(out2, sizeof out2, "%s/bad.html", dir);
    char *bi[] = {(char *)cli_qeval(), "report", out2, "tests/fixtures/compare/lmeval/org__model-a",
                  "tests/fixtures/compare/bad/model-x", NULL};
    assert_int_equal(cli_run(bi, &r), 0);
    assert_int_equal(r.status, 3);
    assert_non_null(strstr(qe_buf_str(&r.err), "hendrycks_math500.verdicts.jsonl:3:"));
    assert_int_equal(file_size(out2), -1);
    cli_done(&r);
    assert_int_equal(count_tmp(dir), 0);
    unlink(out);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_cases),
        cmocka_unit_test(test_real_example),
        cmocka_unit_test(test_table_and_formats),
        cmocka_unit_test(test_baseline_by_run_dir),
        cmocka_unit_test(test_no_flips),
        cmocka_unit_test(test_scorer_math),
        cmocka_unit_test(test_report_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
