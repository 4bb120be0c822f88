/* jsonl_cases: iterate a golden-cases file (tests/cases/NAME.jsonl) from a
 * cmocka test. Header-only; include after <cmocka.h> and <jansson.h>.
 * Blank lines and lines starting with '#' are skipped; a line that is not
 * JSON fails the test with file:line. */
#ifndef QE_JSONL_CASES_H
#define QE_JSONL_CASES_H

#include <stdio.h>
#include <stdlib.h>

typedef void (*case_fn)(json_t *c, int line);

/* Calls fn on every case of path (relative to the repository root);
 * returns how many. */
static inline int each_case(const char *path, case_fn fn)
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
        json_t *c = json_loads(line, 0, &je);
        if (!c)
            fail_msg("%s:%d: bad JSON: %s", path, lineno, je.text);
        fn(c, lineno);
        json_decref(c);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

#endif
