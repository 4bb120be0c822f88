/* test_runner_body: the fast request-body builder is byte-identical to
 * dumping the jansson tree (the runner's former build_body, kept as
 * qe_runner_body_reference), for every doc of every built-in task, raw and
 * chat, under several gen kwargs (reals, until lists, chat_template_kwargs,
 * keys the template does not know), with and without a system instruction;
 * and for strings chosen to hit every escaping rule and invalid UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "genkw.h"
#include "runner_body.h"
#include "task.h"

/* gen kwargs given on the command line in the variants (lm-eval syntax). */
static const char *const cli_variants[] = {
    NULL,
    "max_gen_toks=1024,temperature=0",
    "temperature=0.7,top_p=0.95,top_k=20,min_p=0.0,max_gen_toks=4096",
    "until=Problem:,do_sample=false,temperature=1e-05,seed=99",
    "{\"until\": [\"</s>\", \"\\n\\n\", \"a/b\", \"\\u00e9\\\"q\\\\\"], \"max_tokens\": 77, "
    "\"chat_template_kwargs\": {\"x\": 1, \"enable_thinking\": true}, "
    "\"presence_penalty\": 1.5, \"repetition_penalty\": 1.05, \"logit_bias\": null}",
};

/* Compares fast and reference for one (spec, prompt/messages): three seeds. */
static void same_bodies(const qe_runner_body *b, const qe_runner_body_spec *s, const char *prompt,
                        const json_t *msgs, qe_buf *scratch, long long base, const char *what)
{
    for (long long r = 0; r < 3; r++) {
        long long seed = base + r * 1000003;
        qe_err e1 = {0, ""}, e2 = {0, ""};
        char *ref = qe_runner_body_reference(s, prompt, msgs, seed, &e1);
        char *fast = qe_runner_body_build(b, prompt, msgs, seed, scratch, &e2);
        /* both NULL: jansson cannot dump it (bad UTF-8 inside messages) */
        assert_true(!ref == !fast);
        if (ref && strcmp(ref, fast)) {
            fprintf(stderr, "%s seed %lld:\n ref  %s\n fast %s\n", what, seed, ref, fast);
            fail();
        }
        free(ref);
        free(fast);
    }
}

static void every_task_every_doc(void **state)
{
    (void)state;
    qe_buf scratch = QE_BUF_INIT;
    size_t bodies = 0;
    for (size_t ti = 0; ti < qe_task_count(); ti++) {
        const qe_task *t = qe_task_at(ti);
        size_t n = 0;
        assert_int_equal(qe_task_size(t, &n, NULL), 0);
        for (size_t v = 0; v < sizeof cli_variants / sizeof *cli_variants; v++) {
            json_t *cli = NULL;
            assert_int_equal(qe_genkw_parse(cli_variants[v], &cli, NULL), 0);
            json_t *defaults = qe_task_gen_kwargs(t);
            json_t *merged = qe_genkw_merge(defaults, cli);
            json_decref(defaults);
            json_decref(cli);
            long long seed = qe_genkw_seed(merged, 1234);
            for (int mode = 0; mode < 4; mode++) {
                bool chat = mode >= 1;
                const char *sys = mode == 2 ? "You are \"careful\".\n\tAnswer in \\boxed{}." : NULL;
                json_t *ctk = mode == 3 ? json_pack("{s:b}", "enable_thinking", 0) : NULL;
                qe_runner_body_spec s = {"Qwen/Qwen3-32B \u00e9", chat, merged, ctk};
                qe_runner_body *b = NULL;
                assert_int_equal(qe_runner_body_new(&s, &b, NULL), 0);
                assert_true(qe_runner_body_is_fast(b));
                qe_prompt_opts po = QE_PROMPT_OPTS_INIT;
                po.system_instruction = sys;
                /* every doc for the plainest variants, a stride otherwise */
                size_t step = (v == 0 || v == 1) && mode <= 1 ? 1 : 7;
                for (size_t d = 0; d < n; d += step) {
                    char what[160];
                    snprintf(what, sizeof what, "%s doc %zu variant %zu mode %d", qe_task_name(t),
                             d, v, mode);
                    if (!chat) {
                        qe_buf p = QE_BUF_INIT;
                        assert_int_equal(qe_task_context(t, d, &po, &p, NULL), 0);
                        same_bodies(b, &s, qe_buf_str(&p), NULL, &scratch, seed, what);
                        qe_buf_free(&p);
                    } else {
                        json_t *msgs = NULL;
                        assert_int_equal(qe_task_messages(t, d, &po, &msgs, NULL), 0);
                        same_bodies(b, &s, NULL, msgs, &scratch, seed, what);
                        json_decref(msgs);
                    }
                    bodies += 3;
                }
                qe_runner_body_free(b);
                json_decref(ctk);
            }
            json_decref(merged);
        }
    }
    assert_true(bodies > 10000);
    qe_buf_free(&scratch);
}

static json_t *merged_of(const char *cli)
{
    json_t *c = NULL;
    assert_int_equal(qe_genkw_parse(cli, &c, NULL), 0);
    json_t *defaults = qe_task_gen_kwargs(qe_task_find("hendrycks_math500"));
    json_t *m = qe_genkw_merge(defaults, c);
    json_decref(defaults);
    json_decref(c);
    return m;
}

static void escaping_and_bad_utf8(void **state)
{
    (void)state;
    /* every byte 0x01..0x7f, then UTF-8 of 2, 3 and 4 bytes, U+2028, U+FFFF */
    char all[256];
    size_t k = 0;
    for (int c = 1; c < 0x80; c++)
        all[k++] = (char)c;
    all[k] = 0;
    const char *cases[] = {
        "", all, "caf\u00e9 \u2211 \U0001F600 \u2028 \uffff", "a/b\\/c\"\"", "\x7f\x1f\x0b\x0c",
        /* not valid UTF-8: jansson refuses these, both sides must agree */
        "bad \xff byte", "overlong \xc0\xaf", "surrogate \xed\xa0\x80", "cut \xe2\x82",
        "too big \xf4\x90\x80\x80", "stray \x80 continuation",
    };
    json_t *merged = merged_of("temperature=0.5,until=\\boxed");
    qe_buf scratch = QE_BUF_INIT;
    for (int chat = 0; chat < 2; chat++) {
        qe_runner_body_spec s = {"m", chat, merged, NULL};
        qe_runner_body *b = NULL;
        assert_int_equal(qe_runner_body_new(&s, &b, NULL), 0);
        assert_true(qe_runner_body_is_fast(b));
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            json_t *msgs = NULL;
            if (chat) {
                /* json_string refuses bad UTF-8: build those with stringn_nocheck */
                msgs = json_pack("[{s:s,s:o}]", "role", "user", "content",
                                 json_stringn_nocheck(cases[i], strlen(cases[i])));
                assert_non_null(msgs);
            }
            same_bodies(b, &s, chat ? NULL : cases[i], msgs, &scratch, 5, cases[i]);
            json_decref(msgs);
        }
        /* messages holding other kinds of values: ints, bools, null, nesting,
         * a real (reference path), escaped keys */
        json_t *odd = json_loads("[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
                                 "\"x\"}],\"n\":-3,\"t\":true,\"f\":false,\"z\":null,"
                                 "\"k\\\"ey\\n\":{},\"e\":[]},{\"r\":0.1}]",
                                 0, NULL);
        assert_non_null(odd);
        if (chat)
            same_bodies(b, &s, NULL, odd, &scratch, 5, "odd messages");
        json_decref(odd);
        qe_runner_body_free(b);
    }
    qe_buf_free(&scratch);
    json_decref(merged);
}

/* The bytes themselves, written out by hand for one request. */
static void known_body(void **state)
{
    (void)state;
    json_t *merged = merged_of("max_gen_toks=1024,temperature=0");
    qe_runner_body_spec s = {"bench", false, merged, NULL};
    qe_runner_body *b = NULL;
    assert_int_equal(qe_runner_body_new(&s, &b, NULL), 0);
    qe_buf scratch = QE_BUF_INIT;
    char *got = qe_runner_body_build(b, "Problem: 1/2\t\"x\"\x01\nAnswer:", NULL, 1241, &scratch,
                                     NULL);
    assert_string_equal(got, "{\"model\":\"bench\",\"prompt\":\"Problem: 1/2\\t\\\"x\\\"\\u0001\\n"
                             "Answer:\",\"max_tokens\":1024,\"temperature\":0,\"stop\":"
                             "[\"Problem:\"],\"seed\":1241}");
    free(got);
    qe_runner_body_free(b);
    json_decref(merged);
    /* chat with thinking off */
    merged = merged_of("max_gen_toks=8");
    json_t *ctk = json_pack("{s:b}", "enable_thinking", 0);
    qe_runner_body_spec c = {"q", true, merged, ctk};
    assert_int_equal(qe_runner_body_new(&c, &b, NULL), 0);
    json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", "\u00e9?");
    got = qe_runner_body_build(b, NULL, msgs, -2, &scratch, NULL);
    assert_string_equal(got, "{\"model\":\"q\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"\u00e9?\"}],\"max_tokens\":8,\"temperature\":0.0,\"stop\":"
                             "[\"Problem:\"],\"seed\":-2,\"chat_template_kwargs\":"
                             "{\"enable_thinking\":false}}");
    free(got);
    json_decref(msgs);
    json_decref(ctk);
    qe_runner_body_free(b);
    json_decref(merged);
    qe_buf_free(&scratch);
}

/* A gen kwarg that replaces the prompt, or that contains the placeholder
 * seed: the template is not used, every body comes from the reference. */
static void template_not_used_when_ambiguous(void **state)
{
    (void)state;
    const char *clis[] = {"{\"prompt\": \"override\"}", "{\"messages\": []}",
                          "{\"x\": -7777777777777777771}"};
    qe_buf scratch = QE_BUF_INIT;
    for (size_t i = 0; i < 3; i++) {
        json_t *merged = merged_of(clis[i]);
        qe_runner_body_spec s = {"m", i == 1, merged, NULL};
        qe_runner_body *b = NULL;
        assert_int_equal(qe_runner_body_new(&s, &b, NULL), 0);
        assert_false(qe_runner_body_is_fast(b));
        json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", "hi");
        same_bodies(b, &s, "hi", msgs, &scratch, 1, clis[i]);
        json_decref(msgs);
        qe_runner_body_free(b);
        json_decref(merged);
    }
    /* bad gen kwargs fail like the reference does */
    json_t *bad = merged_of("max_gen_toks=0");
    qe_runner_body_spec s = {"m", false, bad, NULL};
    qe_runner_body *b = (qe_runner_body *)&s; /* must be reset to NULL */
    qe_err e = {0, ""};
    assert_int_not_equal(qe_runner_body_new(&s, &b, &e), 0);
    assert_null(b);
    assert_non_null(strstr(e.msg, "max_gen_toks"));
    json_decref(bad);
    qe_buf_free(&scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_task_every_doc),
        cmocka_unit_test(escaping_and_bad_utf8),
        cmocka_unit_test(known_body),
        cmocka_unit_test(template_not_used_when_ambiguous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
