/* test_runner_sample: a streamed sample line (runner_sample) is byte for
 * byte the line the runner used to make -- qe_lmeval_sample_build over the
 * runner's extras, "resps" replaced by every repeat, dumped with
 * qe_lmeval_sample_format -- for docs of every built-in task and for values
 * picked to hit every branch (nulls, empty reasoning, rounding of the
 * latency, escapes, repeats); and a string that is not valid UTF-8 is
 * refused with the buffer left as it was. */
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

#include "buf.h"
#include "genkw.h"
#include "hash.h"
#include "lmeval_io.h"
#include "pyjson.h"
#include "runner_sample.h"
#include "score_lmeval.h"
#include "task.h"

/* The runner's former tree path, written out again from its description:
 * extras in order finish_reason, prompt_tokens, completion_tokens,
 * latency_ms (rounded to 3 decimals), attempts, truncated, reasoning (if
 * non-empty), qeval_repeats (repeats > 1); with repeats, resps = [[all]]. */
static char *tree_line(const qe_runner_sample *s, const json_t *doc, const json_t *merged)
{
    json_t *x = json_object();
    json_object_set_new(x, "finish_reason",
                        s->finish_reason ? json_string(s->finish_reason) : json_null());
    json_object_set_new(x, "prompt_tokens",
                        s->prompt_tokens >= 0 ? json_integer(s->prompt_tokens) : json_null());
    json_object_set_new(x, "completion_tokens",
                        s->completion_tokens >= 0 ? json_integer(s->completion_tokens) : json_null());
    json_object_set_new(x, "latency_ms", s->latency_ms >= 0
                                             ? json_real(round(s->latency_ms * 1000) / 1000)
                                             : json_null());
    json_object_set_new(x, "attempts", json_integer(s->attempts));
    json_object_set_new(x, "truncated", json_boolean(s->truncated));
    if (s->reasoning && *s->reasoning)
        json_object_set_new(x, "reasoning", json_string(s->reasoning));
    if (s->n_repeats > 1) {
        json_t *rep = json_array();
        for (size_t r = 0; r < s->n_repeats; r++)
            json_array_append_new(
                rep, json_pack("{s:i,s:o,s:o}", "exact_match", s->rep_value[r], "finish_reason",
                               s->rep_finish[r] ? json_string(s->rep_finish[r]) : json_null(),
                               "completion_tokens",
                               s->rep_ctok[r] >= 0 ? json_integer(s->rep_ctok[r]) : json_null()));
        json_object_set_new(x, "qeval_repeats", rep);
    }
    double v = s->value;
    qe_lmeval_sample_in in;
    memset(&in, 0, sizeof in);
    in.doc_id = s->doc_id;
    in.doc = doc;
    in.target = s->target;
    in.prompt = s->prompt;
    in.gen_kwargs = merged;
    in.response = s->resps[0];
    in.filtered = s->filtered;
    in.filter = s->filter;
    in.n_metrics = 1;
    in.metric_names = &s->metric;
    in.metric_values = &v;
    in.int_metrics = 1;
    in.extras = x;
    json_t *smp = qe_lmeval_sample_build(&in, NULL);
    json_decref(x);
    assert_non_null(smp);
    if (s->n_resps > 1) {
        json_t *inner = json_array();
        for (size_t r = 0; r < s->n_resps; r++)
            json_array_append_new(inner, json_string(s->resps[r] ? s->resps[r] : ""));
        json_object_set_new(smp, "resps", json_pack("[o]", inner));
    }
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_lmeval_sample_format(&b, smp, NULL), 0);
    json_decref(smp);
    return qe_buf_detach(&b);
}

/* Writes s (with doc's dump and hashes filled in) both ways and compares. */
static void same_line(qe_runner_sample *s, const json_t *doc, const json_t *merged)
{
    qe_buf dj = QE_BUF_INIT, kj = QE_BUF_INIT, out = QE_BUF_INIT;
    assert_int_equal(qe_pyjson_dump(&dj, doc, QE_PYJSON_COMPACT, 0, NULL), 0);
    assert_int_equal(qe_pyjson_dump(&kj, merged, QE_PYJSON_COMPACT, 0, NULL), 0);
    char h[3][65];
    assert_int_equal(qe_hash_doc(doc, h[0], NULL), 0);
    const char *p = s->prompt ? s->prompt : "", *t = s->target ? s->target : "";
    qe_hash_text(p, strlen(p), h[1]);
    qe_hash_text(t, strlen(t), h[2]);
    s->doc_json = qe_buf_str(&dj);
    s->gen_kwargs_json = qe_buf_str(&kj);
    s->doc_hash = h[0];
    s->prompt_hash = h[1];
    s->target_hash = h[2];
    assert_int_equal(qe_buf_puts(&out, "previous line\n"), 0);
    assert_int_equal(qe_runner_sample_write(&out, s), 0);
    char *want = tree_line(s, doc, merged);
    if (strcmp(out.data + 14, want)) {
        fprintf(stderr, "tree:   %s\nstream: %s\n", want, out.data + 14);
        fail();
    }
    free(want);
    qe_buf_free(&dj);
    qe_buf_free(&kj);
    qe_buf_free(&out);
}

static json_t *merged_for(const qe_task *t, const char *cli)
{
    json_t *c = NULL;
    assert_int_equal(qe_genkw_parse(cli, &c, NULL), 0);
    json_t *d = qe_task_gen_kwargs(t);
    json_t *m = qe_genkw_merge(d, c);
    json_decref(d);
    json_decref(c);
    return m;
}

static void every_task(void **state)
{
    (void)state;
    const char *resps[3] = {"The answer is $\\boxed{5}$.\n\"q\"\t\\", "<think>\u00e9\u2211",
                            ""};
    const char *fin[3] = {"stop", NULL, "length"};
    int val[3] = {1, 0, 1};
    long long ctok[3] = {12, -1, 0};
    size_t lines = 0;
    for (size_t ti = 0; ti < qe_task_count(); ti++) {
        const qe_task *t = qe_task_at(ti);
        size_t n = 0;
        assert_int_equal(qe_task_size(t, &n, NULL), 0);
        json_t *merged = merged_for(t, ti % 2 ? "temperature=0.7,max_gen_toks=1024" : NULL);
        for (size_t d = 0; d < n; d += 13) {
            json_t *doc = qe_task_doc(t, d, NULL);
            assert_non_null(doc);
            qe_buf prompt = QE_BUF_INIT;
            qe_prompt_opts po = QE_PROMPT_OPTS_INIT;
            assert_int_equal(qe_task_context(t, d, &po, &prompt, NULL), 0);
            char *target = NULL;
            assert_int_equal(qe_lm_target(qe_task_name(t), doc, &target, NULL), 0);
            for (int variant = 0; variant < 4; variant++) {
                qe_runner_sample s;
                memset(&s, 0, sizeof s);
                s.doc_id = (long long)d;
                s.target = target;
                s.prompt = qe_buf_str(&prompt);
                s.resps = resps;
                s.n_resps = variant == 1 ? 3 : 1;
                s.filtered = variant == 2 ? NULL : "5";
                s.filter = variant == 3 ? NULL : "strict-match";
                s.metric = "exact_match";
                s.value = variant & 1;
                s.finish_reason = variant == 2 ? NULL : "stop";
                s.prompt_tokens = variant == 3 ? -1 : 210;
                s.completion_tokens = variant == 3 ? -1 : 7;
                s.latency_ms = variant == 0 ? 12.3456789 : variant == 1 ? 0.0005 : variant == 2 ? 0 : -1;
                s.attempts = variant + 1;
                s.truncated = variant == 1;
                s.reasoning = variant == 0 ? "why \"so\"\n" : variant == 1 ? "" : NULL;
                s.n_repeats = variant == 1 ? 3 : 1;
                s.rep_value = val;
                s.rep_finish = fin;
                s.rep_ctok = ctok;
                same_line(&s, doc, merged);
                lines++;
            }
            free(target);
            qe_buf_free(&prompt);
        }
        json_decref(merged);
    }
    assert_true(lines > 500);
}

static void bad_utf8_refused(void **state)
{
    (void)state;
    const qe_task *t = qe_task_find("hendrycks_math500");
    json_t *doc = qe_task_doc(t, 0, NULL);
    json_t *merged = merged_for(t, NULL);
    qe_buf dj = QE_BUF_INIT, kj = QE_BUF_INIT, out = QE_BUF_INIT;
    assert_int_equal(qe_pyjson_dump(&dj, doc, QE_PYJSON_COMPACT, 0, NULL), 0);
    assert_int_equal(qe_pyjson_dump(&kj, merged, QE_PYJSON_COMPACT, 0, NULL), 0);
    const char *bad[] = {"x \xff", "\xc0\xaf", "\xed\xa0\x80"};
    for (size_t i = 0; i < 3; i++) {
        for (int where = 0; where < 3; where++) {
            const char *resps[1] = {where == 0 ? bad[i] : "ok"};
            qe_runner_sample s;
            memset(&s, 0, sizeof s);
            s.doc_json = qe_buf_str(&dj);
            s.gen_kwargs_json = qe_buf_str(&kj);
            s.resps = resps;
            s.n_resps = 1;
            s.metric = "exact_match";
            s.doc_hash = s.prompt_hash = s.target_hash = "00";
            s.prompt = where == 1 ? bad[i] : "p";
            s.reasoning = where == 2 ? bad[i] : NULL;
            qe_buf_reset(&out);
            assert_int_equal(qe_buf_puts(&out, "kept"), 0);
            assert_int_equal(qe_runner_sample_write(&out, &s), 1);
            assert_string_equal(out.data, "kept");
            /* the tree path refuses a bad response or prompt too (a bad
             * reasoning it silently drops: the runner then takes the tree
             * path for that line, so its output stays what it was) */
            double v = 0;
            qe_lmeval_sample_in in;
            memset(&in, 0, sizeof in);
            in.doc = doc;
            in.prompt = s.prompt;
            in.response = resps[0];
            in.n_metrics = 1;
            in.metric_names = &s.metric;
            in.metric_values = &v;
            json_t *smp = qe_lmeval_sample_build(&in, NULL);
            if (where < 2)
                assert_null(smp);
            json_decref(smp);
        }
    }
    qe_buf_free(&dj);
    qe_buf_free(&kj);
    qe_buf_free(&out);
    json_decref(merged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_task),
        cmocka_unit_test(bad_utf8_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
