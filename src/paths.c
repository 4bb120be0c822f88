/* paths: expansion of FILE|DIR|GLOB arguments into files (see paths.h). */
#include "paths.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"

typedef struct {
    qe_paths *p;
    qe_paths_want_fn want;
    const char *pattern; /* '**' walks: the whole pattern */
    int rc;              /* first hard failure (ENOMEM, ELIMIT) */
    qe_err *e;
} walker;

int qe_paths_mkdirs(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *c = tmp + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(tmp, 0755) && errno != EEXIST)
            return -1;
        *c = '/';
    }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

int qe_paths_ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

const char *qe_paths_base(const char *p)
{
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

static int push(char ***v, size_t *n, size_t *cap, char *s)
{
    if (!s)
        return QE_ENOMEM;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char **nv = realloc(*v, nc * sizeof *nv);
        if (!nv) {
            free(s);
            return QE_ENOMEM;
        }
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = s;
    return 0;
}

static void note(walker *w, const char *what, const char *path)
{
    qe_buf b = QE_BUF_INIT;
    qe_buf_printf(&b, "%s: %s", path, what);
    int rc = push(&w->p->errors, &w->p->n_errors, &w->p->cap_errors, qe_buf_detach(&b));
    if (rc && !w->rc)
        w->rc = qe_err_set(w->e, rc, "out of memory");
}

static void add_file(walker *w, const char *path)
{
    qe_paths *p = w->p;
    if (w->rc)
        return;
    for (size_t i = 0; i < p->n_files; i++)
        if (!strcmp(p->files[i], path))
            return;
    if (p->n_files >= QE_PATHS_MAX_FILES) {
        w->rc = qe_err_set(w->e, QE_ELIMIT, "more than %d input files", QE_PATHS_MAX_FILES);
        return;
    }
    if (push(&p->files, &p->n_files, &p->cap_files, strdup(path)))
        w->rc = qe_err_set(w->e, QE_ENOMEM, "out of memory");
}

typedef void (*visit_fn)(walker *w, const char *path);

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk(walker *w, const char *dir, int depth, visit_fn fn, int strip_dot)
{
    if (depth > QE_PATHS_MAX_DEPTH || w->rc)
        return;
    DIR *d = opendir(dir);
    if (!d) {
        note(w, "cannot open directory", dir);
        return;
    }
    struct dirent *de;
    /* sorted order keeps output deterministic across filesystems */
    char **names = NULL;
    size_t n = 0, cap = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (push(&names, &n, &cap, strdup(de->d_name))) {
            w->rc = qe_err_set(w->e, QE_ENOMEM, "out of memory");
            break;
        }
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        qe_buf p = QE_BUF_INIT;
        if (strip_dot)
            qe_buf_puts(&p, names[i]);
        else
            qe_buf_printf(&p, "%s/%s", dir, names[i]);
        struct stat st;
        if (!w->rc && stat(qe_buf_str(&p), &st) == 0) {
            if (S_ISDIR(st.st_mode))
                walk(w, qe_buf_str(&p), depth + 1, fn, 0);
            else if (S_ISREG(st.st_mode))
                fn(w, qe_buf_str(&p));
        }
        qe_buf_free(&p);
        free(names[i]);
    }
    free(names);
}

static void visit_dir_file(walker *w, const char *path)
{
    if (!w->want || w->want(path))
        add_file(w, path);
}

/* '**' patterns: match whole paths with fnmatch without FNM_PATHNAME, so
 * '*' and '**' both cross '/'; "**" followed by '/' also matches zero
 * directories. */
static void visit_glob_file(walker *w, const char *path)
{
    const char *pat = w->pattern;
    if (fnmatch(pat, path, 0) == 0) {
        add_file(w, path);
        return;
    }
    const char *dd = strstr(pat, "**/");
    if (dd) {
        qe_buf alt = QE_BUF_INIT;
        qe_buf_append(&alt, pat, (size_t)(dd - pat));
        qe_buf_puts(&alt, dd + 3);
        int m = fnmatch(qe_buf_str(&alt), path, 0) == 0;
        qe_buf_free(&alt);
        if (m)
            add_file(w, path);
    }
}

static void add_path(walker *w, const char *arg, int explicit_file)
{
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        char *d = strdup(arg);
        if (!d) {
            w->rc = qe_err_set(w->e, QE_ENOMEM, "out of memory");
            return;
        }
        size_t n = strlen(d);
        while (n > 1 && d[n - 1] == '/')
            d[--n] = '\0';
        walk(w, d, 0, visit_dir_file, 0);
        free(d);
        return;
    }
    if (explicit_file || stat(arg, &st) == 0 || !strpbrk(arg, "*?[")) {
        add_file(w, arg); /* unreadable files are reported when read */
        return;
    }
    const char *dd = strstr(arg, "**");
    if (dd) {
        qe_buf base = QE_BUF_INIT;
        const char *slash = NULL;
        for (const char *p = arg; p < dd; p++)
            if (*p == '/')
                slash = p;
        size_t before = w->p->n_files;
        if (slash)
            qe_buf_append(&base, arg, (size_t)(slash - arg));
        w->pattern = arg;
        walk(w, slash ? qe_buf_str(&base) : ".", 0, visit_glob_file, !slash);
        qe_buf_free(&base);
        if (w->p->n_files == before && !w->rc)
            note(w, "no file matches", arg);
        return;
    }
    glob_t g;
    int rc = glob(arg, 0, NULL, &g);
    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
        note(w, "no file matches", arg);
    } else if (rc == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            add_path(w, g.gl_pathv[i], 1);
    } else {
        note(w, "cannot expand pattern", arg);
    }
    if (rc == 0)
        globfree(&g);
}

int qe_paths_add(qe_paths *p, const char *arg, qe_paths_want_fn want, qe_err *e)
{
    walker w = {p, want, NULL, 0, e};
    add_path(&w, arg, 0);
    return w.rc;
}

void qe_paths_free(qe_paths *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_files; i++)
        free(p->files[i]);
    for (size_t i = 0; i < p->n_errors; i++)
        free(p->errors[i]);
    free(p->files);
    free(p->errors);
    memset(p, 0, sizeof *p);
}

char *qe_paths_run_dir(const char *file)
{
    const char *slash = strrchr(file, '/');
    char *d = !slash ? strdup(".") : slash == file ? strdup("/") : strndup(file, (size_t)(slash - file));
    char *real = d ? realpath(d, NULL) : NULL;
    if (real) {
        free(d);
        return real;
    }
    return d;
}

const char *qe_paths_run_name(const char *dir, const char *model, size_t *len)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t i = n;
    while (i > 0 && dir[i - 1] != '/')
        i--;
    /* the last component against model as lm-eval's sanitize_model_name
     * writes it: each run of "<>:/|\?*[] as "__" (Qwen/Qwen3-32B ->
     * Qwen__Qwen3-32B, gemma3:12b -> gemma3__12b) */
    static const char special[] = "\"<>:/|\\?*[]";
    size_t k = i;
    const char *m = model;
    while (*m && k < n) {
        if (strchr(special, *m)) {
            if (n - k < 2 || dir[k] != '_' || dir[k + 1] != '_')
                break;
            k += 2;
            while (m[1] && strchr(special, m[1]))
                m++;
        } else if (dir[k] == *m) {
            k++;
        } else {
            break;
        }
        m++;
    }
    if (!*m && k == n && i > 1) { /* lm-eval's per-model directory: the one above */
        n = i - 1;
        i = n;
        while (i > 0 && dir[i - 1] != '/')
            i--;
    }
    *len = n - i;
    return dir + i;
}
