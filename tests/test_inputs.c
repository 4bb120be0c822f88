/* Tests of src/inputs: loading compare inputs from lm-eval-layout directories
 * and verdicts JSONL (tests/fixtures/compare/, scripted by
 * gen/gen_compare_fixtures.py; the shipped real example): model naming,
 * doc_hash pairing with ids shown, doc_id fallback warning, configs and
 * mismatches, superseded re-runs, file:line errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_util.h"
#include "inputs.h"

#define FX "tests/fixtures/compare/"
#define EX "examples/r1-distill-1.5b-quant"

static int has_warning(const qe_inputs *in, const char *needle)
{
    for (size_t i = 0; i < in->n_warnings; i++)
        if (strstr(in->warnings[i], needle))
            return 1;
    return 0;
}

static const qe_compare_record *rec_with_key(const qe_inputs_side *s, const char *key,
                                             long *line)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->recs[i].key, key)) {
            if (line)
                *line = s->line[i];
            return &s->recs[i];
        }
    return NULL;
}

static void test_hash_pairing_shows_baseline_ids(void **state)
{
    (void)state;
    const char *paths[] = {FX "lmeval/org__model-a", FX "lmeval/org__model-d"};
    qe_inputs *in;
    qe_err e = {0};
    assert_int_equal(qe_inputs_load(paths, 2, NULL, &in, &e), 0);
    assert_int_equal(in->n_models, 2);
    assert_string_equal(in->models[0].name, "org/model-a");
    assert_string_equal(in->models[1].name, "org/model-d");
    assert_int_equal(in->baseline, 0);
    assert_int_equal(in->n_groups, 1);
    assert_int_equal(in->n_cmp, 1);
    const qe_inputs_group *g = &in->groups[0];
    assert_string_equal(g->task, "hendrycks_math500");
    assert_string_equal(g->filter, "none");
    assert_int_equal(g->by_hash, 1);
    assert_int_equal(in->n_warnings, 0);
    /* D stores doc 0 as doc_id 39 (file line 40, sorted by id); its key is the
     * baseline's id "0", and it is the truncated, wrong answer. */
    long line = 0;
    const qe_compare_record *r = rec_with_key(&g->sides[1], "0", &line);
    assert_non_null(r);
    assert_int_equal(line, 40);
    assert_true(r->correct == 0.0);
    assert_string_equal(r->finish_reason, "length");
    assert_non_null(strstr(r->response, "<think>"));
    /* extracted with lm-eval's hendrycks_math500 $-slice */
    r = rec_with_key(&g->sides[1], "3", NULL);
    assert_string_equal(r->extracted, "6");
    assert_string_equal(r->gold, "6");
    assert_true(r->correct == 1.0);
    assert_non_null(g->sides[0].config);
    assert_non_null(g->sides[1].config);
    assert_int_equal(in->cmp[0].n_models, 1);
    assert_int_equal(in->cmp[0].baseline.n, 40);
    assert_int_equal(qe_inputs_cmp_model(in, 0, 0), 0);
    assert_int_equal(qe_inputs_cmp_model(in, 0, 1), 1);
    qe_buf mm = QE_BUF_INIT, notes = QE_BUF_INIT;
    assert_int_equal(qe_inputs_mismatches(in, &mm, &notes, &e), 0);
    assert_int_equal(mm.len, 0);
    assert_int_equal(notes.len, 0);
    qe_buf_free(&mm);
    qe_buf_free(&notes);
    qe_inputs_free(in);
}

static void test_doc_id_fallback_and_unknown_config(void **state)
{
    (void)state;
    const char *paths[] = {FX "lmeval/org__model-a", FX "verdicts/model-b/"};
    qe_inputs *in;
    qe_err e = {0};
    assert_int_equal(qe_inputs_load(paths, 2, NULL, &in, &e), 0);
    assert_int_equal(in->groups[0].by_hash, 0);
    assert_true(has_warning(in, "hendrycks_math500/none: pairing problems by doc_id: model-b has no doc_hash"));
    assert_string_equal(in->models[1].name, "model-b");
    assert_null(in->groups[0].sides[1].config);
    qe_buf mm = QE_BUF_INIT, notes = QE_BUF_INIT;
    assert_int_equal(qe_inputs_mismatches(in, &mm, &notes, &e), 0);
    assert_non_null(strstr(qe_buf_str(&notes), "run config unknown for model-b"));
    assert_null(strstr(qe_buf_str(&notes), "org/model-a"));
    qe_buf_free(&mm);
    qe_buf_free(&notes);
    qe_inputs_free(in);
}

static void test_mismatches_listed(void **state)
{
    (void)state;
    const char *paths[] = {FX "lmeval/org__model-a", FX "lmeval/org__model-c"};
    qe_inputs *in;
    qe_err e = {0};
    assert_int_equal(qe_inputs_load(paths, 2, NULL, &in, &e), 0);
    qe_buf mm = QE_BUF_INIT;
    int n = qe_inputs_mismatches(in, &mm, NULL, &e);
    const char *s = qe_buf_str(&mm);
    /* CLI temperature, task temperature, system instruction, prompt hashes */
    assert_int_equal(n, 4);
    assert_non_null(strstr(s, "hendrycks_math500/none org/model-c vs org/model-a: gen_kwargs.temperature: 0.6 vs 0.0\n"));
    assert_non_null(strstr(s, "task.generation_kwargs.temperature: 0.6 vs 0.0"));
    assert_non_null(strstr(s, "system_instruction: \"Think step by step.\" vs null"));
    assert_non_null(strstr(s, "prompts differ on 40 of 40 paired problems"));
    qe_buf_free(&mm);
    qe_inputs_free(in);
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_non_null(a);
    assert_non_null(b);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

/* model-a's run again, but with thinking switched off in model_args, a
 * different --limit and repeats: only thinking is listed (limit picks
 * problems, repeats adds answers after the first, which is the verdict);
 * prompts are identical here (the samples are copied), so only the
 * settings speak. */
static void test_thinking_and_limit_mismatch(void **state)
{
    (void)state;
    char dir[] = "/tmp/qeval-inputs-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[64], res[160], smp[200];
    snprintf(sub, sizeof sub, "%s/org__model-t", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    const char *date = "2025-01-02T03-04-05.000001";
    snprintf(smp, sizeof smp, "%s/samples_hendrycks_math500_%s.jsonl", sub, date);
    copy_file(FX "lmeval/org__model-a/samples_hendrycks_math500_2025-01-02T03-04-05.000001.jsonl",
              smp);
    json_t *r = json_load_file(FX "lmeval/org__model-a/results_2025-01-02T03-04-05.000001.json", 0,
                               NULL);
    assert_non_null(r);
    json_t *cfg = json_object_get(r, "config");
    json_object_set_new(cfg, "model_args",
                        json_string("model=org/model-t,enable_thinking=False,base_url=x"));
    json_object_set_new(cfg, "limit", json_real(100));
    json_object_set_new(json_object_get(json_object_get(r, "configs"), "hendrycks_math500"),
                        "repeats", json_integer(3));
    json_object_set_new(r, "model_name", json_string("org/model-t"));
    snprintf(res, sizeof res, "%s/results_%s.json", sub, date);
    assert_int_equal(json_dump_file(r, res, JSON_INDENT(2)), 0);
    json_decref(r);

    const char *paths[] = {FX "lmeval/org__model-a", sub};
    qe_inputs *in;
    qe_err e = {0};
    assert_int_equal(qe_inputs_load(paths, 2, NULL, &in, &e), 0);
    assert_string_equal(in->models[1].name, "org/model-t");
    qe_buf mm = QE_BUF_INIT;
    assert_int_equal(qe_inputs_mismatches(in, &mm, NULL, &e), 1);
    assert_null(strstr(qe_buf_str(&mm), "limit"));
    assert_null(strstr(qe_buf_str(&mm), "repeats"));
    assert_non_null(strstr(qe_buf_str(&mm), "org/model-t vs org/model-a: thinking: \"False\" vs null\n"));
    qe_buf_free(&mm);
    qe_inputs_free(in);
    unlink(smp);
    unlink(res);
    rmdir(sub);
    rmdir(dir);
}

/* No --gen-kwargs: lm-eval writes config.gen_kwargs null (`if not
 * gen_kwargs: gen_kwargs = None`), qeval wrote {} until 2026-11-26. The
 * same settings, so no mismatch: compare refused genuine lm-eval output
 * against a qeval run over it. */
static void test_empty_gen_kwargs_is_none(void **state)
{
    (void)state;
    const char *olot = "tests/fixtures/lmeval-real/olot-gsm8k";
    const char *date = "2025-04-30T18-24-41.082644";
    char dir[] = "/tmp/qeval-inputs-gk-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char res[300], src[300];
    snprintf(src, sizeof src, "%s/results_%s.json", olot, date);
    json_t *r = json_load_file(src, 0, NULL);
    assert_non_null(r);
    assert_true(json_is_null(json_object_get(json_object_get(r, "config"), "gen_kwargs")));
    json_object_set_new(json_object_get(r, "config"), "gen_kwargs", json_object());
    json_object_set_new(r, "model_name", json_string("qeval-twin"));
    snprintf(res, sizeof res, "%s/results_%s.json", dir, date);
    assert_int_equal(json_dump_file(r, res, JSON_INDENT(2)), 0);
    json_decref(r);
    char smp[300];
    snprintf(smp, sizeof smp, "%s/samples_gsm8k_%s.jsonl", olot, date);
    link_file(dir, smp);
    const char *paths[] = {olot, dir};
    qe_inputs *in;
    qe_err e = {0};
    assert_int_equal(qe_inputs_load(paths, 2, NULL, &in, &e), 0);
    qe_buf mm = QE_BUF_INIT;
    int n = qe_inputs_mismatches(in, &mm, NULL, &e);
    if (n != 0)
        fail_msg("mismatches: %s", qe_buf_str(&mm));
    qe_buf_free(&mm);
    qe_inputs_free(in);
    rm_rf(dir);
}

/* Genuine lm-eval gsm8k output: gold is the final answer after "####",
 * extracted the strict-match filter's answer. */
static void test_genuine_gsm8k_fields(void **state)
{
    (void)state;
    const char *paths[] = {"tests/fixtures/lmeval-real/pyfade-gsm8k"};
    qe_inputs *in;
    qe_err e = {0};
    assert_int_equal(qe_inputs_load(paths, 1, NULL, &in, &e), 0);
    assert_int_equal(in->n_models, 2);
    assert_string_equal(in->groups[0].filter, "strict-match");
    assert_int_equal(in->groups[0].by_hash, 1);
    const qe_compare_record *r = rec_with_key(&in->groups[0].sides[0], "17", NULL);
    assert_non_null(r);
    assert_string_equal(r->gold, "57500");
    assert_string_equal(r->extracted, "59800");
    assert_true(r->correct == 0.0);
    r = rec_with_key(&in->groups[0].sides[0], "16", NULL);
    assert_string_equal(r->gold, "230");
    assert_true(r->correct == 1.0);
    qe_inputs_free(in);
}

static void test_one_directory_many_models(void **state)
{
    (void)state;
    const char *paths[] = {FX "lmeval"};
    qe_inputs *in;
    qe_err e = {0};
    assert_int_equal(qe_inputs_load(paths, 1, NULL, &in, &e), 0);
    /* a, b, c, d, e, and b again in rerun/: one model name in two
     * directories is two models (two precisions served under one name look
     * just like this), named by their output directories; nothing is
     * superseded across directories */
    assert_int_equal(in->n_models, 6);
    assert_false(has_warning(in, "superseded"));
    int seen_b = 0;
    for (size_t m = 0; m < in->n_models; m++) {
        if (strcmp(in->models[m].raw, "org/model-b"))
            continue;
        seen_b++;
        int rerun = strstr(in->models[m].dir, "/rerun/") != NULL;
        assert_string_equal(in->models[m].name, rerun ? "org/model-b@rerun" : "org/model-b@lmeval");
        assert_int_equal(strstr(in->groups[0].sides[m].file, "rerun/") != NULL, rerun);
        assert_int_equal(in->groups[0].sides[m].n, 40);
    }
    assert_int_equal(seen_b, 2);
    qe_inputs_free(in);
    /* --baseline by what follows '@' */
    qe_inputs_opts by_label = {"rerun", NULL, NULL};
    assert_int_equal(qe_inputs_load(paths, 1, &by_label, &in, &e), 0);
    assert_string_equal(in->models[in->baseline].name, "org/model-b@rerun");
    qe_inputs_free(in);

    const char *ex[] = {EX};
    qe_inputs_opts o = {"bf16", NULL, NULL};
    assert_int_equal(qe_inputs_load(ex, 1, &o, &in, &e), 0);
    assert_int_equal(in->n_models, 6);
    assert_string_equal(in->models[in->baseline].name, "bf16");
    assert_int_equal(in->n_cmp, 2);
    assert_int_equal(in->cmp[0].n_models, 5);
    assert_int_equal(in->cmp[0].baseline.n, in->cmp[0].baseline.n == 90 ? 90 : 500);
    assert_true(has_warning(in, "README.md") == 0); /* directories only take data files */
    qe_inputs_free(in);
}

/* Reruns into one output path (one directory, two date ids): the newer
 * run is the model's, the older one is named in a warning. */
static void test_rerun_in_one_directory(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/qe_inputs_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/out/org__model-b && cp " FX "lmeval/org__model-b/* " FX
             "lmeval/rerun/org__model-b/* %s/out/org__model-b/",
             d, d);
    assert_int_equal(system(cmd), 0);
    char out[300];
    snprintf(out, sizeof out, "%s/out", d);
    const char *paths[] = {FX "lmeval/org__model-a", out};
    qe_inputs *in;
    qe_err e = {0};
    assert_int_equal(qe_inputs_load(paths, 2, NULL, &in, &e), 0);
    assert_int_equal(in->n_models, 2);
    assert_string_equal(in->models[1].name, "org/model-b");
    assert_true(has_warning(in, "samples_hendrycks_math500_2025-01-03T03-04-05.000001.jsonl: "
                                "hendrycks_math500/none of org/model-b superseded by newer"));
    assert_non_null(strstr(in->groups[0].sides[1].file, "2025-01-06T03-04-05"));
    assert_int_equal(in->groups[0].sides[1].n, 40);
    qe_inputs_free(in);
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    assert_int_equal(system(cmd), 0);
}

static void test_baseline_and_task_selection(void **state)
{
    (void)state;
    const char *paths[] = {FX "lmeval/org__model-a", FX "lmeval/org__model-b/"};
    qe_inputs *in;
    qe_err e = {0};
    qe_inputs_opts by_path = {FX "lmeval/org__model-b", NULL, NULL};
    assert_int_equal(qe_inputs_load(paths, 2, &by_path, &in, &e), 0);
    assert_int_equal(in->baseline, 1);
    assert_string_equal(in->cmp[0].baseline.name, "org/model-b");
    assert_string_equal(in->cmp[0].models[0].name, "org/model-a");
    qe_inputs_free(in);

    int refused = 0;
    qe_inputs_opts nope = {"org/model-z", NULL, &refused};
    assert_int_equal(qe_inputs_load(paths, 2, &nope, &in, &e), QE_EINVAL);
    assert_null(in);
    assert_non_null(strstr(e.msg, "--baseline org/model-z: no such model; models: org/model-a, org/model-b"));
    assert_int_equal(refused, 1);

    refused = 0;
    qe_inputs_opts task = {NULL, "aime24", &refused};
    assert_int_equal(qe_inputs_load(paths, 2, &task, &in, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "--task aime24"));
    assert_int_equal(refused, 1); /* the CLI's usage error */

    const char *ex[] = {EX "/bf16", EX "/awq-w3g128"};
    qe_inputs_opts t2 = {NULL, "aime90", NULL};
    assert_int_equal(qe_inputs_load(ex, 2, &t2, &in, &e), 0);
    assert_int_equal(in->n_groups, 1);
    assert_string_equal(in->groups[0].task, "aime90");
    qe_inputs_free(in);
}

static void test_errors_name_file_and_line(void **state)
{
    (void)state;
    qe_inputs *in;
    qe_err e = {0};
    const char *bad[] = {FX "lmeval/org__model-a", FX "bad/model-x"};
    assert_int_equal(qe_inputs_load(bad, 2, NULL, &in, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, FX "bad/model-x/hendrycks_math500.verdicts.jsonl:3: "));
    const char *dup[] = {FX "lmeval/org__model-a", FX "bad/model-dup"};
    assert_int_equal(qe_inputs_load(dup, 2, NULL, &in, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "model-dup/hendrycks_math500.verdicts.jsonl:2: duplicate doc_id 0 (first at line 1)"));
    const char *missing[] = {FX "lmeval/org__model-a", FX "nope"};
    assert_int_equal(qe_inputs_load(missing, 2, NULL, &in, &e), QE_EIO);
    const char *one[] = {FX "lmeval/org__model-a"};
    assert_int_equal(qe_inputs_load(one, 1, NULL, &in, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "need at least two models"));
    const char *empty[] = {FX "lmeval/org__model-a", FX "gen"};
    int refused = 0;
    qe_inputs_opts o = {NULL, NULL, &refused};
    assert_int_equal(qe_inputs_load(empty, 2, &o, &in, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "no per-problem records"));
    assert_null(strstr(e.msg, "--log-samples"));
    assert_int_equal(refused, 0); /* bad input, not a bad argument */
    /* a run without --log-samples: results only, and the way to get samples */
    char dir[] = "/tmp/qeval-inputs-nos-XXXXXX";
    assert_non_null(mkdtemp(dir));
    link_file(dir, FX "lmeval/org__model-b/results_2025-01-03T03-04-05.000001.json");
    const char *nos[] = {FX "lmeval/org__model-a", dir};
    assert_int_equal(qe_inputs_load(nos, 2, NULL, &in, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "no per-problem records"));
    assert_non_null(strstr(e.msg, "rerun the same `qeval run` command with --log-samples"));
    rm_rf(dir);
    /* an explicit non-data file is skipped with a warning */
    const char *readme[] = {EX "/bf16", EX "/README.md", EX "/awq-w3g128"};
    assert_int_equal(qe_inputs_load(readme, 3, NULL, &in, &e), 0);
    assert_true(has_warning(in, "README.md: not a results, samples or verdicts file; skipped"));
    qe_inputs_free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_pairing_shows_baseline_ids),
        cmocka_unit_test(test_doc_id_fallback_and_unknown_config),
        cmocka_unit_test(test_mismatches_listed),
        cmocka_unit_test(test_thinking_and_limit_mismatch),
        cmocka_unit_test(test_genuine_gsm8k_fields),
        cmocka_unit_test(test_empty_gen_kwargs_is_none),
        cmocka_unit_test(test_one_directory_many_models),
        cmocka_unit_test(test_rerun_in_one_directory),
        cmocka_unit_test(test_baseline_and_task_selection),
        cmocka_unit_test(test_errors_name_file_and_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
