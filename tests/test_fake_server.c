/* Tests for tests/fake_server itself: the parts of its contract other tests
 * rely on (request log, env vars, --lenient, stop/max_tokens handling,
 * tokenize round trip). HTTP goes through src/client's sync helper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "fake_server_util.h"

static void opts_for(qe_client_opts *o, const struct fs *s)
{
    qe_client_opts_default(o);
    o->base_url = s->base_url;
    o->timeout_ms = 5000;
    o->backoff_base_ms = 5;
    o->backoff_cap_ms = 10;
}

static long post(const struct fs *s, const char *path, const char *body, json_t **out)
{
    qe_client_opts o;
    opts_for(&o, s);
    long http = 0;
    char *resp = NULL;
    size_t n = 0;
    qe_err e = {0, ""};
    assert_int_equal(qe_client_request(&o, path, body, &http, &resp, &n, &e), 0);
    if (out) {
        *out = json_loadb(resp ? resp : "", n, 0, NULL);
        assert_non_null(*out);
    }
    free(resp);
    return http;
}

static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static void test_request_log(void **state)
{
    (void)state;
    char path[] = "/tmp/fake_server_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    const char *args[] = {"--request-log", path, "--fault", "500:1", NULL};
    struct fs s;
    assert_int_equal(fs_start(&s, args), 0);
    const char *body = "{\"model\":\"fake-model\",\"messages\":[{\"role\":\"user\",\"content\":\"Q1\"}],"
                       "\"max_tokens\":50}";
    assert_int_equal(post(&s, "/v1/chat/completions", body, NULL), 500);
    assert_int_equal(post(&s, "/v1/chat/completions", body, NULL), 200);
    assert_int_equal(post(&s, "/v1/completions", "{\"model\":\"fake-model\",\"prompt\":\"P2\"}", NULL), 200);
    fs_stop(&s);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    json_t *rows[8];
    int n = 0;
    while (n < 8 && fgets(line, sizeof line, f))
        assert_non_null(rows[n++] = json_loads(line, 0, NULL));
    fclose(f);
    unlink(path);
    assert_int_equal(n, 3);
    char want[65];
    sha256_hex("<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n", want);
    assert_string_equal(json_string_value(json_object_get(rows[0], "prompt_sha256")), want);
    assert_string_equal(json_string_value(json_object_get(rows[0], "fault")), "500");
    assert_int_equal(json_integer_value(json_object_get(rows[0], "status")), 500);
    assert_int_equal(json_integer_value(json_object_get(rows[0], "seq")), 1);
    assert_true(json_is_null(json_object_get(rows[1], "fault")));
    assert_int_equal(json_integer_value(json_object_get(rows[1], "status")), 200);
    assert_true(json_is_true(json_object_get(rows[1], "answered")));
    assert_string_equal(json_string_value(json_object_get(rows[1], "prompt_sha256")), want);
    assert_string_equal(json_string_value(json_object_get(rows[2], "path")), "/v1/completions");
    assert_string_equal(json_string_value(json_object_get(rows[2], "prompt")), "P2");
    assert_string_equal(json_string_value(json_object_get(rows[2], "model")), "fake-model");
    for (int i = 0; i < n; i++)
        json_decref(rows[i]);
}

static void test_env_fault_and_lenient(void **state)
{
    (void)state;
    setenv("FAKE_SERVER_FAULT", "429:1:7,500:1", 1);
    const char *args[] = {"serve", "Qwen/Qwen3-32B", "--lenient", "--tensor-parallel-size", "2",
                          "--enforce-eager", "--gpu-memory-utilization", "0.90",
                          "--host", "localhost", NULL};
    struct fs s;
    int rc = fs_start(&s, args);
    unsetenv("FAKE_SERVER_FAULT");
    assert_int_equal(rc, 0);
    qe_client_opts o;
    opts_for(&o, &s);
    long http;
    char *resp;
    size_t n;
    qe_err e = {0, ""};
    char **ids;
    size_t nids;
    assert_int_equal(qe_client_models(&o, &ids, &nids, &e), 0);
    assert_int_equal(nids, 1);
    assert_string_equal(ids[0], "Qwen/Qwen3-32B"); /* from the positional */
    qe_client_free_strings(ids, nids);
    const char *body = "{\"model\":\"Qwen/Qwen3-32B\",\"prompt\":\"x\"}";
    assert_int_equal(qe_client_request(&o, "/completions", body, &http, &resp, &n, &e), 0);
    assert_int_equal(http, 429);
    free(resp);
    assert_int_equal(qe_client_request(&o, "/completions", body, &http, &resp, &n, &e), 0);
    assert_int_equal(http, 500);
    free(resp);
    assert_int_equal(qe_client_request(&o, "/completions", body, &http, &resp, &n, &e), 0);
    assert_int_equal(http, 200);
    free(resp);
    fs_stop(&s);

    /* without --lenient an unknown flag is a usage error: no PORT line */
    const char *strict[] = {"--tensor-parallel-size", "2", NULL};
    assert_int_equal(fs_start(&s, strict), -1);
}

static void test_stop_and_max_tokens(void **state)
{
    (void)state;
    const char *args[] = {"--default-answer", "The answer is 42.\nProblem: next one", NULL};
    struct fs s;
    assert_int_equal(fs_start(&s, args), 0);
    json_t *j;
    assert_int_equal(post(&s, "/v1/completions",
                          "{\"model\":\"fake-model\",\"prompt\":\"x\",\"max_tokens\":100,"
                          "\"stop\":[\"Problem:\"]}", &j), 200);
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "text")), "The answer is 42.\n");
    assert_string_equal(json_string_value(json_object_get(c0, "finish_reason")), "stop");
    json_decref(j);
    assert_int_equal(post(&s, "/v1/chat/completions",
                          "{\"model\":\"fake-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                          "\"max_tokens\":6}", &j), 200);
    c0 = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c0, "message"), "content")),
                        "The an");
    assert_string_equal(json_string_value(json_object_get(c0, "finish_reason")), "length");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 6);
    json_decref(j);
    fs_stop(&s);
}

static void test_tokenize_round_trip(void **state)
{
    (void)state;
    const char *args[] = {"--max-model-len", "2048", NULL};
    struct fs s;
    assert_int_equal(fs_start(&s, args), 0);
    json_t *j;
    assert_int_equal(post(&s, "/tokenize", "{\"model\":\"fake-model\",\"prompt\":\"h\\u00e9\"}", &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 3);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "tokens"), 0)), 'h');
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "tokens"), 1)), 0xC3);
    assert_int_equal(json_integer_value(json_object_get(j, "max_model_len")), 2048);
    json_decref(j);
    assert_int_equal(post(&s, "/detokenize", "{\"model\":\"fake-model\",\"tokens\":[104,195,169]}", &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "prompt")), "h\xC3\xA9");
    json_decref(j);
    assert_int_equal(post(&s, "/detokenize", "{\"model\":\"fake-model\",\"tokens\":[300]}", &j), 400);
    json_decref(j);
    assert_int_equal(post(&s, "/nope", "{}", &j), 404);
    json_decref(j);
    fs_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_log),
        cmocka_unit_test(test_env_fault_and_lenient),
        cmocka_unit_test(test_stop_and_max_tokens),
        cmocka_unit_test(test_tokenize_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
