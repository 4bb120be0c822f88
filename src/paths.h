/* paths: turn command-line FILE|DIR|GLOB arguments into a list of files.
 *
 * Shared by the commands that read many result/sample files (summarize,
 * rescore). Directories are walked recursively (sorted, hidden entries
 * skipped, depth bounded) keeping the files a caller-given predicate wants;
 * globs are expanded here, so quoted patterns work, '**' included ('*' and
 * '**' both cross '/', and "**" + "/" also matches zero directories). A
 * name that exists, or has no glob character, is kept as given even if it
 * cannot be read: the reader reports it then.
 *
 * Problems (a directory that cannot be opened, a glob matching nothing) do
 * not stop the expansion: they are collected as one-line messages for the
 * caller to print. Nothing here prints or exits.
 *
 * Ownership: everything in a qe_paths belongs to it; qe_paths_free
 * releases it (a zeroed struct is a valid empty list). */
#ifndef QE_PATHS_H
#define QE_PATHS_H

#include <stddef.h>

#include "err.h"

#define QE_PATHS_MAX_FILES 100000
#define QE_PATHS_MAX_DEPTH 64

/* Returns non-zero when a file met during a directory walk should be kept. */
typedef int (*qe_paths_want_fn)(const char *path);

typedef struct {
    char **files; /* in the order found, without duplicates */
    size_t n_files, cap_files;
    char **errors; /* "DIR: cannot open directory", "GLOB: no file matches" */
    size_t n_errors, cap_errors;
} qe_paths;

/* Adds the files arg names: a directory (walked, keeping files for which
 * want returns non-zero; want NULL keeps all), a glob, or a file. Returns
 * 0, or QE_ENOMEM / QE_ELIMIT (more than QE_PATHS_MAX_FILES files) with e
 * filled; problems with the input itself go to p->errors instead. */
int qe_paths_add(qe_paths *p, const char *arg, qe_paths_want_fn want, qe_err *e);
void qe_paths_free(qe_paths *p);

/* Small helpers the callers share. */
int qe_paths_ends_with(const char *s, const char *suffix);
const char *qe_paths_base(const char *path); /* after the last '/' */

/* mkdir -p with mode 0755 (existing directories are fine). 0, or -1 with
 * errno set (ENAMETOOLONG for a path of 4096 bytes or more). */
int qe_paths_mkdirs(const char *path);

/* The resolved directory of a file (malloc'd; the path's own directory
 * part when it cannot be resolved; NULL when out of memory). A run's
 * files share it: lm-eval writes OUT/<model with '/' as "__">/. */
char *qe_paths_run_dir(const char *file);
/* What names such a directory for people: its last component, or the one
 * above it when that is lm-eval's per-model directory of `model` (so
 * "OUT" for OUT/Qwen__Qwen3-32B). Points into dir; *len is its length, and
 * dir[0 .. returned + *len) is the directory it names. */
const char *qe_paths_run_name(const char *dir, const char *model, size_t *len);

#endif
