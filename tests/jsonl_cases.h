/* jsonl_cases: iterate a golden-cases file (tests/cases/NAME.jsonl) from a
 * cmocka test. Header-only; include after <cmocka.h> and <jansson.h>.
 * each_case_arg also passes the caller's context and jansson flags.
 * Blank lines and lines starting with '#' are skipped; a line that is not
 * JSON fails the test with file:line. */
#ifndef QE_JSONL_CASES_H
#define QE_JSONL_CASES_H

#include <stdio.h>
#include <stdlib.h>

typedef void (*case_fn)(json_t *c, int line);
typedef void (*case_arg_fn)(json_t *c, int line, void *arg);

/* Calls fn(case, line, arg) on every case of path (relative to the
 * repository root), each line parsed with jansson's json_loads flags;
 * returns how many. */
static inline int each_case_arg(const char *path, size_t flags, case_arg_fn fn, void *arg)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", path);
    char *line = NULL;
    size_t cap = 0;
    int n = 0, lineno = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        if (line[0] == '\n' || line[0] == '#')
            continue;
        json_error_t je;
        json_t *c = json_loads(line, flags, &je);
        if (!c)
            fail_msg("%s:%d: bad JSON: %s", path, lineno, je.text);
        fn(c, lineno, arg);
        json_decref(c);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

struct each_case_fn {
    case_fn fn;
};

static inline void each_case_call(json_t *c, int line, void *arg)
{
    ((const struct each_case_fn *)arg)->fn(c, line);
}

/* Calls fn on every case of path (relative to the repository root);
 * returns how many. */
static inline int each_case(const char *path, case_fn fn)
{
    struct each_case_fn w = {fn};
    return each_case_arg(path, 0, each_case_call, &w);
}

#endif
