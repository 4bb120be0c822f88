/* test_fuzz_regress: replays the fuzz regression corpus without libFuzzer.
 *
 * Every file in fuzz/corpus/<target>/ (seeds from the test cases plus every
 * input a fuzzer ever crashed, leaked, hung or hit UB on) goes through the
 * same function the libFuzzer driver calls (fuzz/targets.h), so `make check`
 * re-checks all of them under ASan+UBSan and `make valgrind` under memcheck.
 * Also checks the bookkeeping: every fuzz/fuzz_*.c driver is listed here and
 * has a non-empty corpus, and every corpus directory belongs to a target. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>

#include "../fuzz/targets.h"

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

typedef struct {
    const char *name; /* driver fuzz/<name>.c and corpus fuzz/corpus/<name>/ */
    fuzz_fn fn;
} target;

static const target targets[] = {
    {"fuzz_plan", qe_fuzz_plan},
    {"fuzz_lmeval_score", qe_fuzz_lmeval_score},
    {"fuzz_engine_log", qe_fuzz_engine_log},
    {"fuzz_pyjson", qe_fuzz_pyjson},
    {"fuzz_lmeval_results", qe_fuzz_lmeval_results},
    {"fuzz_lmeval_samples", qe_fuzz_lmeval_samples},
    {"fuzz_report", qe_fuzz_report},
    {"fuzz_verify", qe_fuzz_verify},
    {"fuzz_client_reply", qe_fuzz_client_reply},
    {"fuzz_http", qe_fuzz_http},
};
#define N_TARGETS (sizeof targets / sizeof *targets)

static const target *find_target(const char *name)
{
    for (size_t i = 0; i < N_TARGETS; i++)
        if (strcmp(targets[i].name, name) == 0)
            return &targets[i];
    return NULL;
}

/* Reads a whole file into an exactly sized buffer (so ASan sees reads past
 * the end, as under libFuzzer). */
static uint8_t *read_exact(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *d = malloc(n ? n : 1);
    if (d && n && fread(d, 1, n, f) != n) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *size = n;
    return d;
}

static int is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Replays every regular file of fuzz/corpus/<name>/ through t; returns the count. */
static size_t replay_dir(const target *t)
{
    char dir[512];
    snprintf(dir, sizeof dir, "fuzz/corpus/%s", t->name);
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("%s: cannot open (run tests from the repository root)", dir);
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (de->d_name[0] == '.' || !is_regular(path))
            continue;
        size_t n = 0;
        uint8_t *data = read_exact(path, &n);
        if (!data)
            fail_msg("%s: cannot read", path);
        /* The target aborts on a broken promise; sanitizers and valgrind
         * report the rest. Print the name first so a crash points at it. */
        if (getenv("QEVAL_FUZZ_VERBOSE"))
            fprintf(stderr, "replay %s\n", path);
        assert_int_equal(t->fn(data, n), 0);
        free(data);
        count++;
    }
    closedir(d);
    return count;
}

static void test_replay(void **state)
{
    const target *t = *state;
    size_t n = replay_dir(t);
    print_message("%s: %zu inputs replayed\n", t->name, n);
    assert_true(n > 0); /* an empty corpus would prove nothing */
}

/* Every driver in fuzz/ must be replayed here. */
static void test_every_driver_listed(void **state)
{
    (void)state;
    DIR *d = opendir("fuzz");
    assert_non_null(d);
    size_t drivers = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "fuzz_", 5) != 0 || len < 3 || strcmp(de->d_name + len - 2, ".c") != 0)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len - 2), de->d_name);
        if (!find_target(name))
            fail_msg("fuzz/%s has no entry in tests/test_fuzz_regress.c", de->d_name);
        drivers++;
    }
    closedir(d);
    assert_int_equal(drivers, N_TARGETS);
}

/* Every corpus directory must belong to a target (a typo would go unreplayed). */
static void test_every_corpus_dir_is_a_target(void **state)
{
    (void)state;
    DIR *d = opendir("fuzz/corpus");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (!find_target(de->d_name))
            fail_msg("fuzz/corpus/%s: no such fuzz target", de->d_name);
    }
    closedir(d);
}

int main(void)
{
    struct CMUnitTest tests[N_TARGETS + 2];
    size_t n = 0;
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_every_driver_listed);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_every_corpus_dir_is_a_target);
    for (size_t i = 0; i < N_TARGETS; i++) {
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_replay, (void *)&targets[i]);
        tests[n].name = targets[i].name;
        n++;
    }
    return _cmocka_run_group_tests("fuzz_regress", tests, n, NULL, NULL);
}
