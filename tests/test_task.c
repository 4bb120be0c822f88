/* Tests for src/task.c: registry facts read off lm-eval's YAML, embedded
 * dataset sizes and known ids, prompts and few-shot contexts byte-exact
 * against Python-generated golden files, and lm-eval's --limit rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cli_run.h"
#include "file_util.h"
#include "task.h"

static void sha_hex(const char *s, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, n, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static const qe_task *must_find(const char *name)
{
    const qe_task *t = qe_task_find(name);
    if (!t)
        fail_msg("task %s not found", name);
    return t;
}

static void test_registry_and_sizes(void **state)
{
    (void)state;
    static const struct { const char *name; size_t size; int shots; int mgt; size_t n_until; } w[] = {
        {"hendrycks_math500", 500, 0, 0, 1},
        {"aime24", 30, 0, 32768, 4},
        {"aime25", 30, 0, 32768, 4},
        {"gsm8k", 1319, 5, 0, 3},
    };
    assert_int_equal(qe_task_count(), 4);
    assert_null(qe_task_find("nope"));
    assert_null(qe_task_at(4));
    for (size_t i = 0; i < 4; i++) {
        const qe_task *t = must_find(w[i].name);
        size_t n = 0;
        qe_err e = {0};
        assert_int_equal(qe_task_size(t, &n, &e), 0);
        assert_int_equal(n, w[i].size);
        assert_int_equal(qe_task_num_fewshot(t), w[i].shots);
        assert_int_equal(qe_task_max_gen_toks(t), w[i].mgt);
        assert_int_equal(qe_task_until_count(t), w[i].n_until);
    }
    assert_string_equal(qe_task_until(must_find("hendrycks_math500"), 0), "Problem:");
    assert_string_equal(qe_task_until(must_find("aime24"), 3), "<|eot_id|>");
    assert_string_equal(qe_task_filter(must_find("gsm8k"), 1), "flexible-extract");
    assert_string_equal(qe_task_filter(must_find("aime25"), 0), "none");
    assert_string_equal(qe_task_version(must_find("gsm8k")), "3.0");
}

static void test_known_docs(void **state)
{
    (void)state;
    qe_err e = {0};
    json_t *d = qe_task_doc(must_find("hendrycks_math500"), 7, &e);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "unique_id")), "test/precalculus/927.json");
    assert_string_equal(json_string_value(json_object_get(d, "answer")), "90^\\circ");
    const char *keys[] = {"problem", "solution", "answer", "subject", "level", "unique_id"};
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(d, key, v) assert_string_equal(key, keys[k++]);
    assert_int_equal(k, 6);

    const qe_task *a24 = must_find("aime24");
    const char *ids[] = {"2024-II-4", "2024-II-12", "2024-I-4"};
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_object_get(qe_task_doc(a24, i, &e), "ID")), ids[i]);
    assert_true(json_is_integer(json_object_get(qe_task_doc(a24, 0, &e), "Answer")));
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_task_target(a24, 0, &b, &e), 0);
    assert_string_equal(qe_buf_str(&b), "33");
    qe_buf_reset(&b);
    json_t *a = qe_task_doc(must_find("aime25"), 0, &e);
    assert_string_equal(json_string_value(json_object_get(a, "id")), "0");
    assert_int_equal(qe_task_target(must_find("aime25"), 0, &b, &e), 0);
    assert_string_equal(qe_buf_str(&b), "70");
    qe_buf_free(&b);

    assert_null(qe_task_doc(a24, 30, &e));
    assert_int_equal(e.code, QE_EINVAL);
    assert_non_null(strstr(e.msg, "out of range"));
}

static void test_prompts_golden(void **state)
{
    (void)state;
    json_t *cases = load_jsonl("tests/cases/task_prompts.jsonl");
    size_t n = json_array_size(cases);
    assert_true(n >= 20);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const qe_task *t = must_find(json_string_value(json_object_get(c, "task")));
        size_t doc = (size_t)json_integer_value(json_object_get(c, "doc_id"));
        qe_prompt_opts o = QE_PROMPT_OPTS_INIT;
        o.system_instruction = json_string_value(json_object_get(c, "system_instruction"));
        if (json_object_get(c, "num_fewshot"))
            o.num_fewshot = (int)json_integer_value(json_object_get(c, "num_fewshot"));
        qe_buf b = QE_BUF_INIT;
        qe_err e = {0};
        assert_int_equal(qe_task_context(t, doc, &o, &b, &e), 0);
        char hex[65];
        sha_hex(b.data, b.len, hex);
        if (strcmp(hex, json_string_value(json_object_get(c, "prompt_sha256"))))
            fail_msg("case %zu (%s doc %zu): prompt hash differs:\n%s", i, qe_task_name(t), doc,
                     qe_buf_str(&b));
        qe_buf_reset(&b);
        assert_int_equal(qe_task_target(t, doc, &b, &e), 0);
        assert_string_equal(qe_buf_str(&b), json_string_value(json_object_get(c, "target")));
        qe_buf_free(&b);
    }
    json_decref(cases);
}

static void test_gsm8k_fewshot_golden(void **state)
{
    (void)state;
    json_t *cases = load_jsonl("tests/cases/task_gsm8k_fewshot.jsonl");
    size_t n = json_array_size(cases);
    assert_true(n >= 50);
    const qe_task *t = must_find("gsm8k");
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        size_t doc = (size_t)json_integer_value(json_object_get(c, "doc_id"));
        json_t *want = json_object_get(c, "fewshot");
        size_t idx[8], k = 0;
        qe_err e = {0};
        assert_int_equal(qe_task_fewshot(t, doc, -1, idx, 8, &k, &e), 0);
        assert_int_equal(k, json_array_size(want));
        for (size_t j = 0; j < k; j++)
            assert_int_equal(idx[j], json_integer_value(json_array_get(want, j)));
        qe_buf b = QE_BUF_INIT;
        assert_int_equal(qe_task_context(t, doc, NULL, &b, &e), 0);
        char hex[65];
        sha_hex(b.data, b.len, hex);
        assert_string_equal(hex, json_string_value(json_object_get(c, "prompt_sha256")));
        /* Chat, single turn (0.4.9.2 default): one user message = raw prompt. */
        json_t *msgs = NULL;
        assert_int_equal(qe_task_messages(t, doc, NULL, &msgs, &e), 0);
        assert_int_equal(json_array_size(msgs), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "content")),
                            qe_buf_str(&b));
        json_decref(msgs);
        qe_buf_free(&b);
    }
    json_decref(cases);
}

static void test_messages_forms(void **state)
{
    (void)state;
    qe_err e = {0};
    json_t *m = NULL;
    qe_prompt_opts o = QE_PROMPT_OPTS_INIT;
    o.system_instruction = "Be brief.";
    assert_int_equal(qe_task_messages(must_find("aime24"), 0, &o, &m, &e), 0);
    assert_int_equal(json_array_size(m), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "role")), "system");
    const char *u = json_string_value(json_object_get(json_array_get(m, 1), "content"));
    assert_true(!strncmp(u, "Question: Let $x,y$ and $z$", 27));
    assert_string_equal(u + strlen(u) - 8, "\nAnswer:");
    json_decref(m);

    o.system_instruction = NULL;
    o.fewshot_as_multiturn = true;
    assert_int_equal(qe_task_messages(must_find("gsm8k"), 3, &o, &m, &e), 0);
    assert_int_equal(json_array_size(m), 11); /* 5 x (user, assistant) + question */
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "role")), "assistant");
    json_decref(m);

    /* aime's YAML num_fewshot 0 is never overridden; math500 has no split. */
    o.fewshot_as_multiturn = false;
    o.num_fewshot = 3;
    size_t idx[4], k = 9;
    assert_int_equal(qe_task_fewshot(must_find("aime24"), 0, 3, idx, 4, &k, &e), 0);
    assert_int_equal(k, 0);
    o.num_fewshot = 65;
    qe_buf b = QE_BUF_INIT;
    assert_true(qe_task_context(must_find("gsm8k"), 0, &o, &b, &e) < 0);
    assert_int_equal(e.code, QE_ELIMIT);
    qe_buf_free(&b);
}

static void test_limit_rules(void **state)
{
    (void)state;
    const qe_task *m = must_find("hendrycks_math500"), *a = must_find("aime24");
    size_t n = 0;
    bool cl = true;
    qe_err e = {0};
    assert_int_equal(qe_task_limit(m, 100, &n, &cl, &e), 0);
    assert_int_equal(n, 100);
    assert_false(cl);
    assert_int_equal(qe_task_limit(m, 0.1, &n, &cl, &e), 0);
    assert_int_equal(n, 50);
    assert_int_equal(qe_task_limit(m, 0.001, &n, &cl, &e), 0); /* ceil(0.5) */
    assert_int_equal(n, 1);
    assert_int_equal(qe_task_limit(m, 1.0, &n, &cl, &e), 0); /* 1 doc, not 100% */
    assert_int_equal(n, 1);
    assert_int_equal(qe_task_limit(m, 2.9, &n, &cl, &e), 0); /* int() truncates */
    assert_int_equal(n, 2);
    assert_int_equal(qe_task_limit(a, 50, &n, &cl, &e), 0);
    assert_int_equal(n, 30);
    assert_true(cl);
    assert_true(qe_task_limit(a, 0, &n, &cl, &e) < 0);
}

static void test_gen_kwargs_and_config(void **state)
{
    (void)state;
    json_t *g = qe_task_gen_kwargs(must_find("aime24"));
    char *s = json_dumps(g, JSON_PRESERVE_ORDER | JSON_COMPACT);
    assert_string_equal(s, "{\"until\":[\"Question:\",\"</s>\",\"<|im_end|>\",\"<|eot_id|>\"],"
                           "\"do_sample\":false,\"temperature\":0.0,\"max_gen_toks\":32768}");
    free(s);
    json_decref(g);
    g = qe_task_gen_kwargs(must_find("hendrycks_math500"));
    s = json_dumps(g, JSON_PRESERVE_ORDER | JSON_COMPACT);
    assert_string_equal(s, "{\"until\":[\"Problem:\"],\"do_sample\":false,\"temperature\":0.0}");
    free(s);
    json_decref(g);
    json_t *c = qe_task_config(must_find("gsm8k"));
    assert_string_equal(json_string_value(json_object_get(c, "dataset_name")), "main");
    assert_int_equal(json_integer_value(json_object_get(c, "num_fewshot")), 5);
    assert_int_equal(json_array_size(json_object_get(c, "filter_list")), 2);
    json_decref(c);
}

/* End to end: `qeval tasks` exit codes and the shown prompt (needs
 * QEVAL_BUILD, set by `make test`; skipped otherwise). */
static int run_cli_args(const char *const *args, qe_buf *out)
{
    cli_result r;
    assert_int_equal(cli_qeval_opts(args, NULL, &r), 0);
    qe_buf_append(out, r.out.data ? r.out.data : "", r.out.len);
    int status = r.status;
    cli_done(&r);
    return status;
}
#define run_cli(out, ...) run_cli_args((const char *const[]){"tasks", __VA_ARGS__, NULL}, (out))

static void test_cli(void **state)
{
    (void)state;
    if (!getenv("QEVAL_BUILD"))
        skip();
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(run_cli(&b, NULL), 0);
    assert_non_null(strstr(qe_buf_str(&b), "aime24"));
    assert_non_null(strstr(qe_buf_str(&b), "32768"));
    /* every task row's stop sequences start in the header's column */
    const char *hdr = qe_buf_str(&b);
    const char *col = strstr(hdr, "stop sequences");
    assert_non_null(col);
    size_t at = (size_t)(col - hdr), rows = 0;
    for (const char *l = strchr(hdr, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
        if (l[1] == ' ')
            continue; /* a source line */
        const char *q = strchr(l + 1, '"');
        assert_non_null(q);
        assert_int_equal((size_t)(q - (l + 1)), at);
        rows++;
    }
    assert_int_equal(rows, qe_task_count());
    qe_buf_reset(&b);
    assert_int_equal(run_cli(&b, "show", "nosuchtask"), 2);
    assert_int_equal(run_cli(&b, "show", "aime24", "--doc", "30"), 2);
    assert_int_equal(run_cli(&b, "show", "aime24", "--doc", "x"), 2);
    assert_int_equal(run_cli(&b, "show", "aime24", "--think", "maybe"), 2);
    assert_int_equal(run_cli(&b, "--help"), 0);
    qe_buf_reset(&b);
    /* Same bytes as qe_task_context (golden-checked above). */
    assert_int_equal(run_cli(&b, "show", "gsm8k", "--doc", "5"), 0);
    qe_buf want = QE_BUF_INIT;
    qe_err e = {0};
    assert_int_equal(qe_task_context(must_find("gsm8k"), 5, NULL, &want, &e), 0);
    assert_int_equal(b.len, want.len);
    assert_memory_equal(b.data, want.data, want.len);
    qe_buf_reset(&b);
    assert_int_equal(run_cli(&b, "show", "hendrycks_math500", "--doc", "7", "--chat", "--think", "off"), 0);
    assert_non_null(strstr(qe_buf_str(&b), "<|im_start|>user\nProblem: The set of points"));
    assert_non_null(strstr(qe_buf_str(&b), "<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    qe_buf_free(&want);
    qe_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_and_sizes),
        cmocka_unit_test(test_known_docs),
        cmocka_unit_test(test_prompts_golden),
        cmocka_unit_test(test_gsm8k_fewshot_golden),
        cmocka_unit_test(test_messages_forms),
        cmocka_unit_test(test_limit_rules),
        cmocka_unit_test(test_gen_kwargs_and_config),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
