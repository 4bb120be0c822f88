/* test_genkw: lm-eval --gen_kwargs parsing (golden lines from Python in
 * tests/cases/genkw.jsonl, types checked), merge over task defaults, and the
 * mapping to request fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genkw.h"
#include "task.h"

/* json_equal, but int and real never equal and object key order counts. */
static int same(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
        for (; ia && ib; ia = json_object_iter_next((json_t *)a, ia),
                         ib = json_object_iter_next((json_t *)b, ib)) {
            if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)))
                return 0;
            if (!same(json_object_iter_value(ia), json_object_iter_value(ib)))
                return 0;
        }
        return 1;
    }
    return json_equal(a, b);
}

static void golden_parse(void **state)
{
    (void)state;
    FILE *f = fopen("tests/cases/genkw.jsonl", "r");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *c = json_loads(line, 0, &je);
        assert_non_null(c);
        const char *text = json_string_value(json_object_get(c, "text"));
        json_t *got = NULL;
        qe_err e = {0, ""};
        assert_int_equal(qe_genkw_parse(text, &got, &e), 0);
        if (!same(got, json_object_get(c, "expect"))) {
            char *g = json_dumps(got, JSON_ENCODE_ANY);
            fail_msg("'%s': got %s, expected %s", text, g, line);
        }
        json_decref(got);
        json_decref(c);
        n++;
    }
    fclose(f);
    assert_true(n >= 30);
}

static void parse_json_object(void **state)
{
    (void)state;
    json_t *o = NULL;
    qe_err e = {0, ""};
    assert_int_equal(qe_genkw_parse(" {\"chat_template_kwargs\":{\"enable_thinking\":false},"
                                    "\"temperature\":0.6}",
                                    &o, &e),
                     0);
    assert_true(json_is_false(
        json_object_get(json_object_get(o, "chat_template_kwargs"), "enable_thinking")));
    assert_true(json_is_real(json_object_get(o, "temperature")));
    json_decref(o);
    assert_int_equal(qe_genkw_parse("{\"a\":", &o, &e), QE_EINVAL);
    assert_null(o);
    assert_int_equal(qe_genkw_parse("{\"a\":1,\"a\":2}", &o, &e), QE_EINVAL);
    assert_int_equal(qe_genkw_parse(NULL, &o, &e), 0);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
}

static void merge_replaces_until(void **state)
{
    (void)state;
    const qe_task *t = qe_task_find("aime24");
    assert_non_null(t);
    json_t *def = qe_task_gen_kwargs(t);
    json_t *cli = NULL;
    qe_err e = {0, ""};
    assert_int_equal(qe_genkw_parse("until=STOP,max_gen_toks=1024,top_p=0.9", &cli, &e), 0);
    json_t *m = qe_genkw_merge(def, cli);
    /* shallow update: until replaced, default order kept, new keys appended */
    assert_string_equal(json_string_value(json_object_get(m, "until")), "STOP");
    assert_int_equal(json_integer_value(json_object_get(m, "max_gen_toks")), 1024);
    const char *first = json_object_iter_key(json_object_iter(m));
    assert_string_equal(first, json_object_iter_key(json_object_iter(def)));
    /* the task defaults were not modified */
    assert_true(json_is_array(json_object_get(def, "until")));
    assert_int_equal(json_integer_value(json_object_get(def, "max_gen_toks")), 32768);

    json_t *body = json_pack("{s:s}", "model", "m");
    assert_int_equal(qe_genkw_request(m, 77, body, &e), 0);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 1024);
    json_t *stop = json_object_get(body, "stop");
    assert_int_equal(json_array_size(stop), 1);
    assert_string_equal(json_string_value(json_array_get(stop, 0)), "STOP");
    assert_null(json_object_get(body, "do_sample"));
    assert_null(json_object_get(body, "until"));
    assert_null(json_object_get(body, "max_gen_toks"));
    assert_int_equal(json_integer_value(json_object_get(body, "seed")), 77);
    assert_true(json_is_real(json_object_get(body, "top_p")));
    assert_string_equal(json_string_value(json_object_get(body, "model")), "m");
    json_decref(body);
    json_decref(m);
    json_decref(cli);
    json_decref(def);
}

static void request_defaults_and_priority(void **state)
{
    (void)state;
    qe_err e = {0, ""};
    /* hendrycks has no max_gen_toks: lm-eval's backend default 256 */
    json_t *def = qe_task_gen_kwargs(qe_task_find("hendrycks_math500"));
    json_t *m = qe_genkw_merge(def, NULL);
    json_t *body = json_object();
    assert_int_equal(qe_genkw_request(m, 1234, body, &e), 0);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 256);
    assert_string_equal(json_string_value(json_array_get(json_object_get(body, "stop"), 0)),
                        "Problem:");
    assert_non_null(json_object_get(body, "temperature"));
    json_decref(body);
    json_decref(m);
    /* API backends: max_tokens wins over max_gen_toks */
    json_t *cli = NULL;
    assert_int_equal(qe_genkw_parse("max_gen_toks=100,max_tokens=50", &cli, &e), 0);
    m = qe_genkw_merge(def, cli);
    body = json_object();
    assert_int_equal(qe_genkw_request(m, 1, body, &e), 0);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 50);
    json_decref(body);
    json_decref(m);
    json_decref(cli);
    /* seed from gen_kwargs is the base seed */
    assert_int_equal(qe_genkw_parse("seed=42", &cli, &e), 0);
    assert_int_equal(qe_genkw_seed(cli, 1234), 42);
    assert_int_equal(qe_genkw_seed(def, 1234), 1234);
    json_decref(cli);
    /* bad values fail before any request */
    const char *bad[] = {"max_gen_toks=0", "max_gen_toks=abc", "max_gen_toks=1.5",
                         "{\"until\":[1]}", "{\"until\":{}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(qe_genkw_parse(bad[i], &cli, &e), 0);
        m = qe_genkw_merge(def, cli);
        body = json_object();
        assert_int_equal(qe_genkw_request(m, 1, body, &e), QE_EINVAL);
        json_decref(body);
        json_decref(m);
        json_decref(cli);
    }
    json_decref(def);
}

static void typed_values(void **state)
{
    (void)state;
    json_t *v = qe_genkw_typed_value("1024");
    assert_true(json_is_integer(v));
    json_decref(v);
    v = qe_genkw_typed_value("-1");
    assert_true(json_is_real(v)); /* "-1".isnumeric() is False in Python */
    json_decref(v);
    v = qe_genkw_typed_value("tRuE");
    assert_true(json_is_true(v));
    json_decref(v);
    v = qe_genkw_typed_value("inf"); /* Python float('inf'); no JSON form: kept as text */
    assert_true(json_is_string(v));
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_parse),
        cmocka_unit_test(parse_json_object),
        cmocka_unit_test(merge_replaces_until),
        cmocka_unit_test(request_defaults_and_priority),
        cmocka_unit_test(typed_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
