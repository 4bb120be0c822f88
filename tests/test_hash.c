/* Tests for src/hash.c: SHA-256 vectors and lm-eval's doc/task hashes
 * (expected values from Python's hashlib/json, the calls lm-eval makes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "hash.h"

static void test_sha256_vectors(void **state)
{
    (void)state;
    char h[65];
    qe_sha256_hex("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    qe_sha256_hex("abc", 3, h); /* FIPS 180-2 example */
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_doc_hash_python_rules(void **state)
{
    (void)state;
    /* non-ASCII and U+2028 raw, control characters escaped, indent=2,
     * empty containers compact, ints bare */
    const char *doc = "{\"problem\": \"Find $x$ \\u2014 \\u03c0 \\u2248 3.14\\n\\\"quoted\\\"\\tand \\u2028 sep\", "
                      "\"level\": 3, \"ok\": true, \"nested\": {\"a\": [1, 2.5, null], \"b\": {}}, \"empty\": []}";
    json_t *d = json_loads(doc, 0, NULL);
    assert_non_null(d);
    char h[65];
    assert_int_equal(qe_hash_doc(d, h, NULL), 0);
    assert_string_equal(h, "82c657ba3d71d4b8245f6aa507ed52104c1bfdf67cbee32bfa5009ce368132fe");
    json_decref(d);
}

static void test_task_hash_concatenation(void **state)
{
    (void)state;
    char a[65], b[65], c[65], d[65], e[65], f[65], out[65];
    memset(a, 'a', 64), memset(b, 'b', 64), memset(c, 'c', 64);
    memset(d, 'd', 64), memset(e, 'e', 64), memset(f, 'f', 64);
    a[64] = b[64] = c[64] = d[64] = e[64] = f[64] = '\0';
    qe_hash_task *t = qe_hash_task_new();
    assert_non_null(t);
    assert_int_equal(qe_hash_task_add(t, a, b, c), 0);
    assert_int_equal(qe_hash_task_add(t, d, e, f), 0);
    assert_int_equal(qe_hash_task_final(t, out), 0);
    qe_hash_task_free(t);
    assert_string_equal(out, "cd5bfe32d8c0d5e2d7b5c5dde3fd7f2ab96f545995175ea871db1e1e03b027d1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_doc_hash_python_rules),
        cmocka_unit_test(test_task_hash_concatenation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
