/* Tests for src/paths.c's run-directory helpers: qe_paths_run_name against
 * tests/cases/paths_run_name.jsonl, qe_paths_run_dir on a real tree with a
 * symbolic link, qe_paths_mkdirs. (Expansion of paths and globs is tested through the
 * commands that use it: test_cmd_summarize, test_rescore.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonl_cases.h"
#include "paths.h"

static void run_name_case(json_t *c, int line)
{
    const char *dir = json_string_value(json_object_get(c, "dir"));
    const char *model = json_string_value(json_object_get(c, "model"));
    const char *want = json_string_value(json_object_get(c, "name"));
    assert_non_null(dir);
    assert_non_null(model);
    assert_non_null(want);
    size_t len = 99;
    const char *got = qe_paths_run_name(dir, model, &len);
    assert_true(got >= dir && got + len <= dir + strlen(dir));
    if (len != strlen(want) || strncmp(got, want, len))
        fail_msg("line %d: %s with model %s: named '%.*s', want '%s' (%s)", line, dir, model,
                 (int)len, got, want, json_string_value(json_object_get(c, "why")));
}

static void test_run_name_cases(void **state)
{
    (void)state;
    assert_true(each_case("tests/cases/paths_run_name.jsonl", run_name_case) >= 12);
}

static void test_run_dir(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/qe_paths_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char *real = realpath(d, NULL);
    assert_non_null(real);
    char sub[300], link[300], file[400], want[400];
    snprintf(sub, sizeof sub, "%s/out", d);
    snprintf(link, sizeof link, "%s/alias", d);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(symlink(sub, link), 0);
    snprintf(want, sizeof want, "%s/out", real);
    /* through the link, with "." and "..", and a file that need not exist */
    snprintf(file, sizeof file, "%s/alias/results_x.json", d);
    char *got = qe_paths_run_dir(file);
    assert_string_equal(got, want);
    free(got);
    snprintf(file, sizeof file, "%s/out/./../out/results_x.json", d);
    got = qe_paths_run_dir(file);
    assert_string_equal(got, want);
    free(got);
    /* a directory that does not exist: kept as written */
    got = qe_paths_run_dir("/nonexistent-qeval/x/results.json");
    assert_string_equal(got, "/nonexistent-qeval/x");
    free(got);
    got = qe_paths_run_dir("/results.json");
    assert_string_equal(got, "/");
    free(got);
    got = qe_paths_run_dir("results.json"); /* the working directory */
    char *cwd = getcwd(NULL, 0);
    assert_non_null(cwd);
    assert_string_equal(got, cwd);
    free(cwd);
    free(got);
    unlink(link);
    rmdir(sub);
    rmdir(d);
    free(real);
}

/* mkdir -p: every missing level, existing ones accepted, a file in the
 * way and an over-long path refused with errno. */
static void test_mkdirs(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/qe_paths_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char deep[100], mid[100], top[100], file[200];
    snprintf(top, sizeof top, "%s/a", d);
    snprintf(mid, sizeof mid, "%s/a/b", d);
    snprintf(deep, sizeof deep, "%s/a/b/c", d);
    assert_int_equal(qe_paths_mkdirs(deep), 0);
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(qe_paths_mkdirs(deep), 0);
    snprintf(file, sizeof file, "%s/f", deep);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    char under[300];
    snprintf(under, sizeof under, "%s/x", file);
    assert_int_equal(qe_paths_mkdirs(under), -1);
    assert_int_equal(errno, ENOTDIR);
    char lng[5000];
    memset(lng, 'a', sizeof lng - 1);
    lng[0] = '/';
    lng[sizeof lng - 1] = '\0';
    errno = 0;
    assert_int_equal(qe_paths_mkdirs(lng), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    unlink(file);
    rmdir(deep);
    rmdir(mid);
    rmdir(top);
    rmdir(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_name_cases),
        cmocka_unit_test(test_run_dir),
        cmocka_unit_test(test_mkdirs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
