/* Tests of rescore (library) and `qeval rescore` ($QEVAL_BUILD/qeval) on
 * genuine lm-eval output files (tests/fixtures/lmeval-real, provenance in
 * its README): every recorded verdict must be reproduced, a flipped verdict
 * must be reported with exactly its doc id, the JSON contract holds, bad
 * lines are reported as FILE:LINE and skipped. Also `qeval summarize` on the
 * genuine results files must print the recorded values and stderr.
 *
 * Set QEVAL_REAL_LMEVAL_DIR to a directory of more genuine lm-eval outputs
 * (not redistributable, so not committed) to run the reproduction test on
 * them too. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "cli_run.h"
#include "file_util.h"
#include "lmeval_io.h"
#include "paths.h"
#include "rescore.h"

#define REAL "tests/fixtures/lmeval-real"

typedef cli_result result;

/* Runs `qeval ARGS...`; captures exit status, stdout and stderr. */
#define run(r, ...) assert_int_equal(CLI_QEVAL((r), __VA_ARGS__), 0)
#define done cli_done

static int want_samples(const char *path)
{
    const char *b = qe_paths_base(path);
    return !strncmp(b, "samples_", 8) && qe_paths_ends_with(b, ".jsonl");
}

static int want_results(const char *path)
{
    const char *b = qe_paths_base(path);
    return qe_paths_ends_with(b, ".json") && qe_lmeval_results_name_date(b) != NULL;
}

/* Lines per filter and recorded mean, read here with jansson alone. */
typedef struct {
    char filter[32];
    size_t n;
    double sum;
} tally;

static size_t tally_file(const char *path, tally *t, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t nt = 0;
    json_error_t je;
    json_t *o;
    while ((o = json_loadf(f, JSON_DISABLE_EOF_CHECK, &je))) {
        const char *flt = json_string_value(json_object_get(o, "filter"));
        json_t *v = json_object_get(o, "exact_match");
        size_t i;
        for (i = 0; i < nt && strcmp(t[i].filter, flt); i++)
            ;
        if (i == nt) {
            assert_true(nt < cap);
            snprintf(t[nt].filter, sizeof t[nt].filter, "%s", flt);
            t[nt].n = 0, t[nt].sum = 0;
            nt++;
        }
        t[i].n++;
        t[i].sum += json_number_value(v);
        json_decref(o);
        int c;
        while ((c = fgetc(f)) == '\n' || c == ' ')
            ;
        if (c == EOF)
            break;
        ungetc(c, f);
    }
    fclose(f);
    return nt;
}

/* Every genuine samples file under dir: nothing changes, n = line count
 * per filter, new mean = recorded mean; and through the CLI's JSON. */
static size_t check_reproduces(const char *dir)
{
    qe_paths ps = {0};
    qe_err e = {0};
    assert_int_equal(qe_paths_add(&ps, dir, want_samples, &e), 0);
    for (size_t i = 0; i < ps.n_files; i++) {
        const char *path = ps.files[i];
        tally t[4];
        size_t nt = tally_file(path, t, 4);
        assert_true(nt >= 1);
        qe_rescore_opts o = {0};
        qe_rescore_result *r = NULL;
        if (qe_rescore_file(path, &o, &r, &e))
            fail_msg("%s", e.msg);
        assert_int_equal(r->n_bad, 0);
        assert_int_equal(r->n_groups, nt);
        for (size_t k = 0; k < nt; k++) {
            const qe_rescore_group *g = &r->groups[k];
            assert_string_equal(g->filter, t[k].filter);
            if (g->n_changed)
                fail_msg("%s %s: %zu verdicts differ from lm-eval's", path, g->filter, g->n_changed);
            assert_int_equal(g->n, t[k].n);
            assert_int_equal(g->n_recorded, t[k].n);
            assert_true(fabs(g->score - t[k].sum / (double)t[k].n) < 1e-12);
            assert_true(g->score == g->recorded_score);
        }
        qe_rescore_result_free(r);

        result cr;
        run(&cr, "rescore", "--scorer", "lmeval", "--format", "json", path);
        assert_int_equal(cr.status, 0);
        json_t *a = json_loads(qe_buf_str(&cr.out), 0, NULL);
        assert_non_null(a);
        assert_int_equal(json_array_size(a), nt);
        for (size_t k = 0; k < nt; k++) {
            json_t *el = json_array_get(a, k);
            assert_int_equal(json_array_size(json_object_get(el, "changed")), 0);
            assert_int_equal(json_integer_value(json_object_get(el, "n")), t[k].n);
        }
        json_decref(a);
        done(&cr);
    }
    size_t n = ps.n_files;
    qe_paths_free(&ps);
    return n;
}

static void test_genuine_reproduced(void **state)
{
    (void)state;
    assert_true(check_reproduces(REAL) >= 1);
    const char *extra = getenv("QEVAL_REAL_LMEVAL_DIR");
    if (extra && *extra)
        print_message("rescore: %zu extra genuine files reproduced\n", check_reproduces(extra));
}

/* Copies src to dir/name with the recorded exact_match of the line
 * (doc_id, filter) flipped; everything else byte-identical. */
static void write_flipped(const char *src, const char *dst, long long doc_id, const char *filter)
{
    FILE *in = fopen(src, "r"), *out = fopen(dst, "w");
    assert_non_null(in);
    assert_non_null(out);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int flipped = 0;
    while ((len = getline(&line, &cap, in)) > 0) {
        json_t *o = json_loadb(line, (size_t)len, 0, NULL);
        assert_non_null(o);
        if (json_integer_value(json_object_get(o, "doc_id")) == doc_id &&
            !strcmp(json_string_value(json_object_get(o, "filter")), filter)) {
            json_t *v = json_object_get(o, "exact_match");
            double nv = json_number_value(v) != 0 ? 0 : 1;
            json_object_set_new(o, "exact_match", json_is_integer(v) ? json_integer((json_int_t)nv) : json_real(nv));
            qe_buf b = QE_BUF_INIT;
            assert_int_equal(qe_lmeval_sample_format(&b, o, NULL), 0);
            fputs(qe_buf_str(&b), out);
            qe_buf_free(&b);
            flipped = 1;
        } else {
            fwrite(line, 1, (size_t)len, out);
        }
        json_decref(o);
    }
    free(line);
    fclose(in);
    fclose(out);
    assert_true(flipped);
}

static char *tmpdir_new(void)
{
    char *d = strdup("/tmp/qeval-rescore-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

#define GSM8K_REAL REAL "/olot-gsm8k/samples_gsm8k_2025-04-30T18-24-41.082644.jsonl"

static void test_flipped_verdict_reported(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    qe_buf dst = QE_BUF_INIT;
    qe_buf_printf(&dst, "%s/samples_gsm8k_2025-04-30T18-24-41.082644.jsonl", d);
    write_flipped(GSM8K_REAL, qe_buf_str(&dst), 1, "strict-match");

    result r;
    run(&r, "rescore", "--format", "json", qe_buf_str(&dst));
    assert_int_equal(r.status, 0);
    json_t *a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_non_null(a);
    json_t *el = json_array_get(a, 0);
    assert_string_equal(json_string_value(json_object_get(el, "filter")), "strict-match");
    json_t *ch = json_object_get(el, "changed");
    assert_int_equal(json_array_size(ch), 1);
    assert_true(json_is_integer(json_array_get(ch, 0)));
    assert_int_equal(json_integer_value(json_array_get(ch, 0)), 1);
    /* the recorded mean now includes the flipped 1, the new one does not */
    assert_true(json_number_value(json_object_get(el, "recorded_score")) !=
                json_number_value(json_object_get(el, "score")));
    json_decref(a);
    done(&r);

    /* table output names the changed doc id too */
    run(&r, "rescore", qe_buf_str(&dst));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(qe_buf_str(&r.out), "changed verdicts (doc ids):"));
    assert_non_null(strstr(qe_buf_str(&r.out), "gsm8k strict-match: 1\n"));
    done(&r);
    qe_buf_free(&dst);
    rm_rf(d);
    free(d);
}

static void test_json_contract(void **state)
{
    (void)state;
    result r;
    run(&r, "rescore", "--format=json", REAL "/**/samples_*.jsonl");
    assert_int_equal(r.status, 0);
    json_error_t je;
    json_t *a = json_loads(qe_buf_str(&r.out), 0, &je);
    assert_non_null(a);
    assert_true(json_is_array(a));
    assert_true(json_array_size(a) >= 1);
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        assert_true(json_is_string(json_object_get(o, "file")));
        assert_true(json_is_string(json_object_get(o, "task")));
        assert_true(json_is_string(json_object_get(o, "filter")));
        assert_true(json_is_integer(json_object_get(o, "n")));
        assert_true(json_is_number(json_object_get(o, "score")));
        json_t *rs = json_object_get(o, "recorded_score");
        assert_true(json_is_number(rs) || json_is_null(rs));
        assert_true(json_is_array(json_object_get(o, "changed")));
    }
    json_decref(a);
    done(&r);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *first_line(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    assert_true(getline(&line, &cap, f) > 0);
    fclose(f);
    return line;
}

static void test_bad_lines_and_files(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    char *good = first_line(GSM8K_REAL);
    qe_buf p = QE_BUF_INIT, text = QE_BUF_INIT;
    qe_buf_printf(&p, "%s/samples_gsm8k_2025-01-01T00-00-00.000000.jsonl", d);
    /* line 2: bad JSON; 3: not an object; 4: no doc; 5: unknown filter;
     * 6: blank (ignored); 7: good */
    qe_buf_printf(&text, "%s{\"doc_id\": 5, oops\n[1]\n{\"doc_id\": 6, \"resps\": [[\"x\"]]}\n", good);
    json_t *o = json_loads(good, 0, NULL);
    json_object_set_new(o, "filter", json_string("majority-vote"));
    char *s = json_dumps(o, 0);
    qe_buf_printf(&text, "%s\n\n%s", s, good);
    free(s);
    json_decref(o);
    write_text(qe_buf_str(&p), qe_buf_str(&text));

    result r;
    run(&r, "rescore", "--format", "json", qe_buf_str(&p), "/nonexistent/samples_gsm8k_x.jsonl");
    assert_int_equal(r.status, 1);
    const char *err = qe_buf_str(&r.err);
    qe_buf want = QE_BUF_INIT;
    qe_buf_printf(&want, "qeval: %s:2: malformed JSON", qe_buf_str(&p));
    assert_non_null(strstr(err, qe_buf_str(&want)));
    qe_buf_reset(&want);
    qe_buf_printf(&want, "qeval: %s:3: line is not a JSON object", qe_buf_str(&p));
    assert_non_null(strstr(err, qe_buf_str(&want)));
    qe_buf_reset(&want);
    qe_buf_printf(&want, "qeval: %s:4: no doc object", qe_buf_str(&p));
    assert_non_null(strstr(err, qe_buf_str(&want)));
    qe_buf_reset(&want);
    qe_buf_printf(&want, "qeval: %s:5: filter 'majority-vote' is not a filter of gsm8k", qe_buf_str(&p));
    assert_non_null(strstr(err, qe_buf_str(&want)));
    assert_non_null(strstr(err, "qeval: /nonexistent/samples_gsm8k_x.jsonl: "));
    json_t *a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "n")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "bad_lines")), 4);
    json_decref(a);
    done(&r);

    /* only unusable inputs: exit 3 */
    run(&r, "rescore", "/nonexistent/samples_gsm8k_x.jsonl");
    assert_int_equal(r.status, 3);
    done(&r);

    /* a name that does not say the task: error, unless --task says it */
    qe_buf_reset(&p);
    qe_buf_printf(&p, "%s/dump.jsonl", d);
    write_text(qe_buf_str(&p), good);
    run(&r, "rescore", qe_buf_str(&p));
    assert_int_equal(r.status, 3);
    assert_non_null(strstr(qe_buf_str(&r.err), "--task"));
    done(&r);
    run(&r, "rescore", "--task", "gsm8k", "--format", "json", qe_buf_str(&p));
    assert_int_equal(r.status, 0);
    a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "task")), "gsm8k");
    json_decref(a);
    done(&r);

    /* a task score_lmeval does not know */
    qe_buf_reset(&p);
    qe_buf_printf(&p, "%s/samples_mmlu_2025-01-01T00-00-00.jsonl", d);
    write_text(qe_buf_str(&p), good);
    run(&r, "rescore", qe_buf_str(&p));
    assert_int_equal(r.status, 3);
    assert_non_null(strstr(qe_buf_str(&r.err), "task 'mmlu' has no lm-eval scorer"));
    done(&r);

    qe_buf_free(&want);
    qe_buf_free(&p);
    qe_buf_free(&text);
    free(good);
    rm_rf(d);
    free(d);
}

static void test_usage(void **state)
{
    (void)state;
    result r;
    run(&r, "rescore", "--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(qe_buf_str(&r.out), "usage: qeval rescore"));
    done(&r);
    run(&r, "rescore");
    assert_int_equal(r.status, 2);
    done(&r);
    run(&r, "rescore", "--format", "csv", GSM8K_REAL);
    assert_int_equal(r.status, 2);
    done(&r);
    run(&r, "rescore", "--scorer", "nope", GSM8K_REAL);
    assert_int_equal(r.status, 2);
    done(&r);
    run(&r, "rescore", "--scorer");
    assert_int_equal(r.status, 2);
    done(&r);
    /* the math scorer is in this build and says so in --help */
    run(&r, "rescore", "--help");
    assert_non_null(strstr(qe_buf_str(&r.out), "math-verify"));
    done(&r);
}

/* --write-dir: re-scored samples of a genuine file with nothing changed
 * are byte-identical to it; the results file carries the new scores and
 * summarize reads it; a flipped verdict is corrected in the output. */
static void test_write_dir(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    qe_buf args = QE_BUF_INIT, in = QE_BUF_INIT;
    qe_buf_printf(&in, "%s/in", d);
    assert_int_equal(mkdir(qe_buf_str(&in), 0777), 0);
    qe_buf_printf(&args, "cp " REAL "/olot-gsm8k/results_2025-04-30T18-24-41.082644.json %s/",
                  qe_buf_str(&in));
    assert_int_equal(system(qe_buf_str(&args)), 0); /* the model name comes from it */
    qe_buf_reset(&args);
    qe_buf_puts(&in, "/samples_gsm8k_2025-04-30T18-24-41.082644.jsonl");
    write_flipped(GSM8K_REAL, qe_buf_str(&in), 2, "strict-match");

    result r;
    qe_buf_printf(&args, "%s/out", d);
    run(&r, "rescore", "--write-dir", qe_buf_str(&args), GSM8K_REAL, qe_buf_str(&in));
    assert_int_equal(r.status, 0);
    done(&r);

    qe_paths ps = {0};
    qe_buf out = QE_BUF_INIT;
    qe_buf_printf(&out, "%s/out", d);
    assert_int_equal(qe_paths_add(&ps, qe_buf_str(&out), NULL, NULL), 0);
    assert_int_equal(ps.n_files, 4); /* 2 x (samples + results) */
    size_t n0, n1;
    char *orig = slurp_must(GSM8K_REAL, &n0);
    int same = 0;
    for (size_t i = 0; i < ps.n_files; i++) {
        /* model dir from the genuine sibling results file's model_name */
        assert_non_null(strstr(ps.files[i], "/out/tinyllama/"));
        if (!want_samples(ps.files[i]))
            continue;
        char *w = slurp_must(ps.files[i], &n1);
        same += n1 == n0 && !memcmp(w, orig, n0); /* the flipped copy is corrected too */
        free(w);
    }
    assert_int_equal(same, 2);
    free(orig);

    run(&r, "summarize", "--format", "json", qe_buf_str(&args));
    assert_int_equal(r.status, 0);
    json_t *a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), 1); /* newest of the two wins */
    json_t *o = json_array_get(a, 0);
    assert_string_equal(json_string_value(json_object_get(o, "model")), "tinyllama");
    assert_string_equal(json_string_value(json_object_get(o, "filter")), "strict-match");
    assert_true(json_real_value(json_object_get(o, "value")) == 0.0);
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 3);
    json_decref(a);
    done(&r);

    qe_paths_free(&ps);
    qe_buf_free(&out);
    qe_buf_free(&args);
    qe_buf_free(&in);
    rm_rf(d);
    free(d);
}

/* ---------- --scorer math ---------- */

#define MATH_FIX "tests/fixtures/rescore-math/samples_hendrycks_math500_2026-01-01T00-00-00.000000.jsonl"

static int ids_equal(const json_t *a, const long long *want, size_t n)
{
    if (!json_is_array(a) || json_array_size(a) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(a, i)) != want[i])
            return 0;
    return 1;
}

/* The fixture's recorded values are lm-eval's (hand-derived, see
 * gen_fixture.py): the lmeval scorer must reproduce them all. */
static void test_math_fixture_recorded_is_lmeval(void **state)
{
    (void)state;
    qe_rescore_opts o = {0};
    qe_rescore_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_rescore_file(MATH_FIX, &o, &r, &e), 0);
    assert_int_equal(r->n_bad, 0);
    assert_int_equal(r->n_groups, 1);
    assert_string_equal(r->groups[0].filter, "none");
    assert_int_equal(r->groups[0].n, 5);
    assert_int_equal(r->groups[0].n_changed, 0);
    assert_int_equal(r->groups[0].n_undecided, 0);
    qe_rescore_result_free(r);
}

/* Hand-checked verdicts of the fixture (doc: lm-eval recorded -> verifier):
 * 7 "$$\n\boxed{90^\circ}\n$$" vs 90^\circ: 0 -> 1; 0 right: 1 -> 1;
 * 1 "p + q" vs p - q: 0 -> 0; 2 no answer: 0 -> undecided (0);
 * 3 "$9$ ... \boxed{10}" vs 9: 1 -> 0. */
static void test_math_scorer_library(void **state)
{
    (void)state;
    qe_rescore_opts o = {.scorer = QE_RESCORE_MATH};
    qe_rescore_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_rescore_file(MATH_FIX, &o, &r, &e), 0);
    assert_int_equal(r->scorer, QE_RESCORE_MATH);
    assert_int_equal(r->n_bad, 0);
    assert_int_equal(r->n_groups, 1);
    const qe_rescore_group *g = &r->groups[0];
    assert_string_equal(g->filter, QE_RESCORE_MATH_FILTER);
    assert_string_equal(g->filter, "math-verify");
    assert_string_equal(g->recorded_filter, "none");
    assert_int_equal(g->n, 5);
    const double want[5] = {1, 1, 0, 0, 0}; /* file order: docs 7 0 1 2 3 */
    for (size_t i = 0; i < 5; i++)
        assert_true(g->values[i] == want[i]);
    assert_true(fabs(g->score - 0.4) < 1e-12);
    assert_true(fabs(g->recorded_score - 0.4) < 1e-12);
    const long long ch[] = {7, 3}, acc[] = {7}, rej[] = {3}, und[] = {2};
    assert_int_equal(g->n_changed, 2);
    assert_true(ids_equal(g->changed, ch, 2));
    assert_true(ids_equal(g->accepted_not_recorded, acc, 1));
    assert_true(ids_equal(g->rejected_but_recorded, rej, 1));
    assert_int_equal(g->n_undecided, 1);
    assert_true(ids_equal(g->undecided, und, 1));
    qe_rescore_result_free(r);
}

static void test_math_scorer_cli(void **state)
{
    (void)state;
    result r;
    run(&r, "rescore", "--scorer", "math", "--format", "json", MATH_FIX);
    assert_int_equal(r.status, 0);
    json_t *a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), 1);
    json_t *o = json_array_get(a, 0);
    /* the json contract of issue 3, plus the math fields */
    assert_string_equal(json_string_value(json_object_get(o, "file")), MATH_FIX);
    assert_string_equal(json_string_value(json_object_get(o, "task")), "hendrycks_math500");
    assert_string_equal(json_string_value(json_object_get(o, "filter")), "math-verify");
    assert_string_equal(json_string_value(json_object_get(o, "scorer")), "math");
    assert_string_equal(json_string_value(json_object_get(o, "recorded_filter")), "none");
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 5);
    assert_true(fabs(json_number_value(json_object_get(o, "score")) - 0.4) < 1e-12);
    assert_true(fabs(json_number_value(json_object_get(o, "recorded_score")) - 0.4) < 1e-12);
    const long long ch[] = {7, 3}, acc[] = {7}, rej[] = {3}, und[] = {2};
    assert_true(ids_equal(json_object_get(o, "changed"), ch, 2));
    assert_true(ids_equal(json_object_get(o, "accepted_not_recorded"), acc, 1));
    assert_true(ids_equal(json_object_get(o, "rejected_but_recorded"), rej, 1));
    assert_int_equal(json_integer_value(json_object_get(o, "undecided")), 1);
    assert_true(ids_equal(json_object_get(o, "undecided_ids"), und, 1));
    json_decref(a);
    done(&r);

    /* the lmeval scorer's json has the same fields (nothing changed here) */
    run(&r, "rescore", "--format", "json", MATH_FIX);
    assert_int_equal(r.status, 0);
    a = json_loads(qe_buf_str(&r.out), 0, NULL);
    o = json_array_get(a, 0);
    assert_string_equal(json_string_value(json_object_get(o, "scorer")), "lmeval");
    assert_string_equal(json_string_value(json_object_get(o, "filter")), "none");
    assert_int_equal(json_array_size(json_object_get(o, "accepted_not_recorded")), 0);
    assert_int_equal(json_array_size(json_object_get(o, "rejected_but_recorded")), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "undecided")), 0);
    json_decref(a);
    done(&r);

    /* table: undecided column and the two directions of change */
    run(&r, "rescore", "--scorer", "math", MATH_FIX);
    assert_int_equal(r.status, 0);
    const char *out = qe_buf_str(&r.out);
    assert_non_null(strstr(out, "undecided"));
    assert_non_null(strstr(out, "math-verify: 7 3\n"));
    assert_non_null(strstr(out, "math-verify (verifier accepts, lm-eval rejected): 7\n"));
    assert_non_null(strstr(out, "math-verify (verifier rejects, lm-eval accepted): 3\n"));
    done(&r);
}

/* The lmeval scorer fills the two directions too: a recorded 0 flipped to
 * 1 is "rejected but recorded". */
static void test_lmeval_directions(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    qe_buf dst = QE_BUF_INIT;
    qe_buf_printf(&dst, "%s/samples_gsm8k_2025-04-30T18-24-41.082644.jsonl", d);
    write_flipped(GSM8K_REAL, qe_buf_str(&dst), 1, "strict-match"); /* recorded 0 -> 1 */
    qe_rescore_opts o = {0};
    qe_rescore_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_rescore_file(qe_buf_str(&dst), &o, &r, &e), 0);
    const long long one[] = {1};
    assert_true(ids_equal(r->groups[0].rejected_but_recorded, one, 1));
    assert_int_equal(json_array_size(r->groups[0].accepted_not_recorded), 0);
    qe_rescore_result_free(r);
    qe_buf_free(&dst);
    rm_rf(d);
    free(d);
}

/* gsm8k logs each response under two filters: the math scorer gives one
 * verdict per doc, compared with the first filter's recorded verdicts. */
static void test_math_gsm8k_one_verdict_per_doc(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    qe_buf p = QE_BUF_INIT, text = QE_BUF_INIT;
    FILE *in = fopen(GSM8K_REAL, "r");
    assert_non_null(in);
    char *line = NULL;
    size_t cap = 0, nl = 0;
    qe_buf second = QE_BUF_INIT;
    while (getline(&line, &cap, in) > 0) {
        qe_buf_puts(&text, line);
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        json_object_set_new(o, "filter", json_string("flexible-extract"));
        assert_int_equal(qe_lmeval_sample_format(&second, o, NULL), 0);
        json_decref(o);
        nl++;
    }
    free(line);
    fclose(in);
    qe_buf_append(&text, second.data, second.len);
    qe_buf_printf(&p, "%s/samples_gsm8k_2025-01-01T00-00-00.000000.jsonl", d);
    write_text(qe_buf_str(&p), qe_buf_str(&text));

    qe_rescore_opts o = {.scorer = QE_RESCORE_MATH};
    qe_rescore_result *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_rescore_file(qe_buf_str(&p), &o, &r, &e), 0);
    assert_int_equal(r->n_bad, 0);
    assert_int_equal(r->n_groups, 1);
    assert_int_equal(r->groups[0].n, nl);
    assert_int_equal(r->n_other_filter, nl);
    assert_string_equal(r->groups[0].recorded_filter, "strict-match");
    qe_rescore_result_free(r);

    /* a genuine gsm8k file (hand-checked: "#### 230" vs 230 right, "####
     * 59800" vs 57500 wrong, "#### 3.5" vs 7 wrong): the "####" answer is
     * what the verifier sees, so nothing is undecided (doc 17 writes
     * "$23400 + $36400" before it, which the $-span extraction would take) */
    const char *pf = REAL "/pyfade-gsm8k/samples_gsm8k_2025-09-09T13-31-53.431753.jsonl";
    assert_int_equal(qe_rescore_file(pf, &o, &r, &e), 0);
    assert_int_equal(r->groups[0].n, 3);
    assert_true(r->groups[0].values[0] == 1 && r->groups[0].values[1] == 0 && r->groups[0].values[2] == 0);
    assert_int_equal(r->groups[0].n_undecided, 0);
    qe_rescore_result_free(r);

    qe_buf_free(&second);
    qe_buf_free(&p);
    qe_buf_free(&text);
    rm_rf(d);
    free(d);
}

/* --write-dir with the math scorer: lines carry filter math-verify, the
 * verifier's verdict as exact_match and a math_verify object; the results
 * file is marked and summarize shows it under filter math-verify. */
static void test_math_write_dir(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    qe_buf args = QE_BUF_INIT;
    result r;
    qe_buf_printf(&args, "%s/out", d);
    run(&r, "rescore", "--scorer", "math", "--write-dir", qe_buf_str(&args), MATH_FIX);
    assert_int_equal(r.status, 0);
    done(&r);
    qe_paths ps = {0};
    qe_buf out = QE_BUF_INIT;
    qe_buf_printf(&out, "%s/out", d);
    assert_int_equal(qe_paths_add(&ps, qe_buf_str(&out), NULL, NULL), 0);
    assert_int_equal(ps.n_files, 2);
    for (size_t i = 0; i < ps.n_files; i++) {
        if (want_samples(ps.files[i])) {
            FILE *f = fopen(ps.files[i], "r");
            assert_non_null(f);
            char *line = NULL;
            size_t cap = 0, n = 0;
            while (getline(&line, &cap, f) > 0) {
                json_t *o = json_loads(line, 0, NULL);
                assert_non_null(o);
                assert_string_equal(json_string_value(json_object_get(o, "filter")), "math-verify");
                long long id = json_integer_value(json_object_get(o, "doc_id"));
                json_t *em = json_object_get(o, "exact_match");
                assert_true(json_is_integer(em)); /* type kept: int for math tasks */
                assert_int_equal(json_integer_value(em), id == 7 || id == 0);
                json_t *mv = json_object_get(o, "math_verify");
                assert_true(json_is_object(mv));
                if (id == 2)
                    assert_true(json_is_null(json_object_get(mv, "verdict")));
                if (id == 7) {
                    assert_true(json_is_true(json_object_get(mv, "verdict")));
                    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "filtered_resps"), 0)),
                                        "90^\\circ");
                }
                json_decref(o);
                n++;
            }
            free(line);
            fclose(f);
            assert_int_equal(n, 5);
        } else {
            json_t *root = json_load_file(ps.files[i], 0, NULL);
            assert_non_null(root);
            json_t *t = json_object_get(json_object_get(root, "results"), "hendrycks_math500");
            assert_true(fabs(json_number_value(json_object_get(t, "exact_match,math-verify")) - 0.4) < 1e-12);
            assert_null(json_object_get(t, "exact_match,none"));
            assert_string_equal(json_string_value(json_object_get(root, "lm_eval_version")),
                                "qeval rescore --scorer math");
            json_decref(root);
        }
    }
    run(&r, "summarize", "--format", "json", qe_buf_str(&args));
    assert_int_equal(r.status, 0);
    json_t *a = json_loads(qe_buf_str(&r.out), 0, NULL);
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "filter")), "math-verify");
    json_decref(a);
    done(&r);
    qe_paths_free(&ps);
    qe_buf_free(&out);
    qe_buf_free(&args);
    rm_rf(d);
    free(d);
}

/* A response holding \u0000: both scorers see the text after the NUL (read
 * as U+FFFD), so \boxed{7}\u0000\boxed{8} is scored 8 like lm-eval; were the
 * text cut at the NUL, doc 0 would score 0 and doc 1 (the answer 7 before
 * the NUL, gold 7) would score 1. */
static void test_nul_in_response(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[700];
    snprintf(dir, sizeof dir, "%s/qe_rescore_nul_%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/samples_aime24_2025-01-01T00-00-00.000000.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 2; i++)
        fprintf(f, "{\"doc_id\": %d, \"doc\": {\"ID\": \"x-%d\", \"Problem\": \"p\", \"Answer\": %d}, "
                   "\"target\": \"%d\", \"resps\": [[\"\\\\boxed{7}\\u0000\\\\boxed{8}\"]], "
                   "\"filtered_resps\": [\"\\\\boxed{7}\\u0000\\\\boxed{8}\"], \"filter\": \"none\", "
                   "\"metrics\": [\"exact_match\"], \"exact_match\": %d}\n",
                i, i, i ? 7 : 8, i ? 7 : 8, i ? 0 : 1);
    assert_int_equal(fclose(f), 0);
    for (int sc = 0; sc < 2; sc++) {
        qe_rescore_opts o = {.scorer = sc ? QE_RESCORE_MATH : QE_RESCORE_LMEVAL};
        qe_rescore_result *r = NULL;
        qe_err e = {0};
        assert_int_equal(qe_rescore_file(path, &o, &r, &e), 0);
        assert_int_equal(r->n_bad, 0);
        assert_true(r->n_groups >= 1);
        const qe_rescore_group *g = &r->groups[0];
        assert_int_equal(g->n, 2);
        assert_true(g->values[0] == 1);
        assert_true(g->values[1] == 0);
        assert_int_equal(g->n_changed, 0);
        qe_rescore_result_free(r);
    }
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

/* summarize on every genuine results file prints the recorded value and
 * stderr of each task x filter (read here straight from the JSON). */
static void test_summarize_genuine_results(void **state)
{
    (void)state;
    qe_paths ps = {0};
    assert_int_equal(qe_paths_add(&ps, REAL, want_results, NULL), 0);
    assert_true(ps.n_files >= 1);
    for (size_t i = 0; i < ps.n_files; i++) {
        json_t *root = json_load_file(ps.files[i], 0, NULL);
        assert_non_null(root);
        result r;
        run(&r, "summarize", "--format", "json", "--all", ps.files[i]);
        assert_int_equal(r.status, 0);
        json_t *a = json_loads(qe_buf_str(&r.out), 0, NULL);
        assert_non_null(a);
        size_t checked = 0, k;
        json_t *row;
        json_array_foreach(a, k, row) {
            const char *task = json_string_value(json_object_get(row, "task"));
            const char *flt = json_string_value(json_object_get(row, "filter"));
            const char *metric = json_string_value(json_object_get(row, "metric"));
            qe_buf key = QE_BUF_INIT, skey = QE_BUF_INIT;
            qe_buf_printf(&key, "%s,%s", metric, flt);
            qe_buf_printf(&skey, "%s_stderr,%s", metric, flt);
            json_t *entry = json_object_get(json_object_get(root, "results"), task);
            json_t *v = json_object_get(entry, qe_buf_str(&key));
            json_t *se = json_object_get(entry, qe_buf_str(&skey));
            assert_non_null(v);
            assert_true(json_number_value(json_object_get(row, "value")) == json_number_value(v));
            if (json_is_number(se))
                assert_true(json_number_value(json_object_get(row, "stderr")) == json_number_value(se));
            else
                assert_true(json_is_null(json_object_get(row, "stderr")));
            qe_buf_free(&key);
            qe_buf_free(&skey);
            checked++;
        }
        assert_true(checked >= 1);
        json_decref(a);
        json_decref(root);
        done(&r);
    }
    qe_paths_free(&ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_genuine_reproduced),
        cmocka_unit_test(test_flipped_verdict_reported),
        cmocka_unit_test(test_json_contract),
        cmocka_unit_test(test_bad_lines_and_files),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_write_dir),
        cmocka_unit_test(test_summarize_genuine_results),
        cmocka_unit_test(test_math_fixture_recorded_is_lmeval),
        cmocka_unit_test(test_math_scorer_library),
        cmocka_unit_test(test_math_scorer_cli),
        cmocka_unit_test(test_lmeval_directions),
        cmocka_unit_test(test_math_gsm8k_one_verdict_per_doc),
        cmocka_unit_test(test_math_write_dir),
        cmocka_unit_test(test_nul_in_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
