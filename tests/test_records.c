/* Tests for src/records.c: verdicts JSONL and lm-eval samples as one
 * record stream, with model/task naming rules from records.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmeval_io.h"
#include "records.h"

#define FX "tests/fixtures/lmeval/"

static void test_verdicts_fixture(void **state)
{
    (void)state;
    qe_records *r;
    qe_err e = {0};
    assert_int_equal(qe_records_open(FX "verdicts/bf16/aime24.verdicts.jsonl", &r, &e), 0);
    assert_int_equal(qe_records_kind(r), QE_RECORDS_VERDICTS);
    qe_record rec;
    double v[64];
    int n = 0, rc;
    while ((rc = qe_records_next(r, &rec, &e)) == 1) {
        assert_string_equal(rec.model, "bf16");
        assert_string_equal(rec.task, "aime24");
        assert_string_equal(rec.filter, "none");
        assert_true(rec.doc_id_is_int);
        assert_int_equal(rec.doc_id, n);
        assert_string_equal(rec.metric, "correct");
        if (rec.value == 0) {
            assert_string_equal(rec.finish_reason, "length");
            assert_int_equal(rec.completion_tokens, 1024);
        }
        char id[16];
        snprintf(id, sizeof id, "%d", n);
        assert_string_equal(rec.doc_id_text, id);
        assert_string_equal(rec.gold, id);
        v[n++] = rec.value;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 30);
    qe_records_close(r);
    /* expected.json, computed by Python's statistics of lm-eval */
    double se;
    assert_true(qe_lmeval_mean(v, 30, QE_LMEVAL_SUM_FOLD) == 0.4);
    assert_int_equal(qe_lmeval_mean_stderr(v, 30, QE_LMEVAL_SUM_FOLD, &se), 0);
    assert_true(se == strtod("0.09097176522946843", NULL));
}

static void count_samples(const char *path, const char *model, const char *task, int want_n,
                          int want_k)
{
    qe_records *r;
    qe_err e = {0};
    if (qe_records_open(path, &r, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(qe_records_kind(r), QE_RECORDS_SAMPLES);
    qe_record rec;
    int n = 0, k = 0, rc;
    while ((rc = qe_records_next(r, &rec, &e)) == 1) {
        assert_string_equal(rec.model, model);
        assert_string_equal(rec.task, task);
        assert_string_equal(rec.metric, "exact_match");
        assert_int_equal(strlen(rec.doc_hash), 64);
        assert_int_equal(rec.completion_tokens, -1);
        assert_true(rec.gold[0] != '\0');
        n++;
        k += rec.value == 1;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, want_n);
    assert_int_equal(k, want_k);
    qe_records_close(r);
}

static void test_samples_fixtures(void **state)
{
    (void)state;
    count_samples(FX "runs/Qwen__Qwen3-32B/samples_hendrycks_math500_2025-12-24T00-52-25.664596.jsonl",
                  "Qwen/Qwen3-32B", "hendrycks_math500", 100, 27);
    count_samples(FX "flat/samples_hendrycks_math500_2025-12-25T08-30-00.500000.jsonl",
                  "RedHatAI/Qwen3-32B-NVFP4", "hendrycks_math500", 100, 25);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_detection_and_errors(void **state)
{
    (void)state;
    char dir[] = "/tmp/qeval-rec-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[128], p1[160], p2[160];
    snprintf(sub, sizeof sub, "%s/mymodel", dir);
    mkdir(sub, 0777);
    snprintf(p1, sizeof p1, "%s/gsm8k.run1.jsonl", sub);
    write_file(p1, "{\"doc_id\": \"a-1\", \"correct\": 1, \"gold\": 42, \"filter\": \"strict-match\"}\n"
                   "\n"
                   "{\"doc_id\": \"a-2\", \"correct\": 2}\n"
                   "{\"doc_id\": 3, \"correct\": false, \"model\": \"other\", \"task\": \"t2\", \"tokens\": {\"completion\": 9}}\n");
    qe_records *r;
    qe_err e = {0};
    assert_int_equal(qe_records_open(p1, &r, &e), 0);
    assert_int_equal(qe_records_kind(r), QE_RECORDS_VERDICTS);
    qe_record rec;
    assert_int_equal(qe_records_next(r, &rec, &e), 1);
    assert_string_equal(rec.model, "mymodel");
    assert_string_equal(rec.task, "gsm8k");
    assert_string_equal(rec.filter, "strict-match");
    assert_false(rec.doc_id_is_int);
    assert_string_equal(rec.doc_id_text, "a-1");
    assert_string_equal(rec.gold, "42");
    assert_true(rec.value == 1.0);
    assert_int_equal(qe_records_next(r, &rec, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "gsm8k.run1.jsonl:3: \"correct\" must be"));
    assert_int_equal(qe_records_next(r, &rec, &e), 1);
    assert_string_equal(rec.model, "other");
    assert_string_equal(rec.task, "t2");
    assert_int_equal(rec.completion_tokens, 9);
    assert_int_equal(qe_records_next(r, &rec, &e), 0);
    qe_records_close(r);

    snprintf(p2, sizeof p2, "%s/x.jsonl", sub);
    write_file(p2, "{\"doc_id\": 1, \"foo\": 2}\n");
    assert_int_equal(qe_records_open(p2, &r, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "x.jsonl:1: neither"));
    unlink(p1);
    unlink(p2);
    rmdir(sub);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts_fixture),
        cmocka_unit_test(test_samples_fixtures),
        cmocka_unit_test(test_detection_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
