/* file_util: file helpers the end-to-end tests share (read a whole file,
 * load a JSONL file, find the one output file with a prefix, remove a
 * tree, search a tree for a string, link a fixture into a directory).
 * Test-only.
 *
 * Header-only; include after <cmocka.h> (a failed allocation fails the
 * test), with tests/ on the include path ("file_util.h"). */
#ifndef QE_TEST_FILE_UTIL_H
#define QE_TEST_FILE_UTIL_H

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

/* The whole file, NUL-terminated (malloc'd, never NULL for a file that
 * opens: "" when empty); NULL when it cannot be opened. len (may be NULL)
 * receives its length (0 when NULL), which NUL bytes inside do not cut. */
static inline char *slurp(const char *path, size_t *len)
{
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    qe_buf b = QE_BUF_INIT;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        assert_int_equal(qe_buf_append(&b, tmp, n), 0);
    fclose(f);
    if (len)
        *len = b.len;
    char *s = qe_buf_detach(&b);
    if (!s)
        s = strdup("");
    assert_non_null(s);
    return s;
}

/* slurp, failing the test when the file cannot be opened. */
static inline char *slurp_must(const char *path, size_t *len)
{
    char *s = slurp(path, len);
    if (!s)
        fail_msg("%s: cannot open", path);
    return s;
}

/* A JSONL file as an array of its lines' values (new reference); fails the
 * test when the file cannot be read or a line is not JSON. Empty lines are
 * skipped. */
static inline json_t *load_jsonl(const char *path)
{
    char *s = slurp(path, NULL);
    if (!s)
        fail_msg("%s: cannot read", path);
    json_t *a = json_array();
    assert_non_null(a);
    char *save = NULL;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o)
            fail_msg("%s: bad JSON line: %s", path, je.text);
        assert_int_equal(json_array_append_new(a, o), 0);
    }
    free(s);
    return a;
}

/* Path (malloc'd) of the single file in dir whose name starts with prefix,
 * or NULL when there is none or more than one. Names with ".tmp." in them
 * (temporary files) are not counted. */
static inline char *find_one(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char *found = NULL;
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 && !strstr(de->d_name, ".tmp.")) {
            count++;
            free(found);
            qe_buf b = QE_BUF_INIT;
            assert_int_equal(qe_buf_printf(&b, "%s/%s", dir, de->d_name), 0);
            found = qe_buf_detach(&b);
        }
    }
    closedir(d);
    if (count != 1) {
        free(found);
        return NULL;
    }
    return found;
}

/* rm -rf path, also below directories a test made read-only (they are
 * made writable first). Links are removed, not followed. Best effort:
 * what cannot be removed stays. */
static inline void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        chmod(path, st.st_mode | S_IRWXU);
        DIR *d = opendir(path);
        if (d) {
            struct dirent *de;
            while ((de = readdir(d)) != NULL) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                    continue;
                qe_buf p = QE_BUF_INIT;
                assert_int_equal(qe_buf_printf(&p, "%s/%s", path, de->d_name), 0);
                rm_rf(qe_buf_str(&p));
                qe_buf_free(&p);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Does file at path contain needle (binary-safe)? */
static inline int file_contains(const char *path, const char *needle)
{
    size_t n;
    char *s = slurp(path, &n);
    if (!s)
        return 0;
    int hit = memmem(s, n, needle, strlen(needle)) != NULL;
    free(s);
    return hit;
}

/* Does any file below dir (symlinks not followed) contain needle? */
static inline int tree_contains(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int hit = 0;
    struct dirent *de;
    while (!hit && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        qe_buf p = QE_BUF_INIT;
        assert_int_equal(qe_buf_printf(&p, "%s/%s", dir, de->d_name), 0);
        struct stat st;
        if (lstat(p.data, &st) == 0)
            hit = S_ISDIR(st.st_mode) ? tree_contains(p.data, needle) : file_contains(p.data, needle);
        qe_buf_free(&p);
    }
    closedir(d);
    return hit;
}

/* dir/<last component of target> as a symlink to target, a path relative
 * to the working directory (the repository root), made absolute. */
static inline void link_file(const char *dir, const char *target)
{
    char cwd[4096], from[8300], to[8300];
    assert_non_null(getcwd(cwd, sizeof cwd));
    const char *base = strrchr(target, '/');
    snprintf(from, sizeof from, "%s/%s", cwd, target);
    snprintf(to, sizeof to, "%s/%s", dir, base ? base + 1 : target);
    assert_int_equal(symlink(from, to), 0);
}

#endif
