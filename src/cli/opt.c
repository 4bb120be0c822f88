/* opt: the shared argument loop of the qeval commands (see opt.h). */
#include "opt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qe_opt_init(qe_opt *o, const char *cmd, const qe_opt_spec *specs, size_t n_specs, int argc,
                char **argv, int first, int flags)
{
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->specs = specs;
    o->n_specs = n_specs;
    o->argc = argc;
    o->argv = argv;
    o->i = first;
    o->flags = flags;
    if (flags & QE_OPT_COLLECT) {
        o->pos = calloc((size_t)(argc > 0 ? argc : 0) + 1, sizeof *o->pos);
        if (!o->pos)
            return -1;
    }
    return 0;
}

void qe_opt_free(qe_opt *o)
{
    free(o->pos);
    o->pos = NULL;
    o->n_pos = 0;
}

/* Does arg ("--" stripped) spell name, '_' standing for '-'? Returns the
 * rest of arg after the name ("" or "=value"), or NULL. */
static const char *spells(const char *arg, const char *name)
{
    size_t k = 0;
    for (; name[k]; k++) {
        char c = arg[k] == '_' ? '-' : arg[k];
        if (c != name[k])
            return NULL;
    }
    return arg[k] == 0 || arg[k] == '=' ? arg + k : NULL;
}

static const qe_opt_spec *lookup(const qe_opt *o, const char *a, const char **tail)
{
    for (size_t s = 0; s < o->n_specs; s++) {
        const char *name = o->specs[s].name;
        if (name[0] == '-') {
            if (!strcmp(a, name)) {
                *tail = "";
                return &o->specs[s];
            }
        } else if (a[0] == '-' && a[1] == '-' && (*tail = spells(a + 2, name))) {
            return &o->specs[s];
        }
    }
    return NULL;
}

int qe_opt_next(qe_opt *o)
{
    for (;;) {
        if (o->i >= o->argc)
            return QE_OPT_END;
        const char *a = o->argv[o->i++];
        o->arg = a;
        o->val = NULL;
        int is_opt = !o->rest && a[0] == '-' && a[1];
        if (is_opt && (o->flags & QE_OPT_COLLECT) && !strcmp(a, "--")) {
            o->rest = 1;
            continue;
        }
        if (!is_opt) {
            if (!(o->flags & QE_OPT_COLLECT))
                return QE_OPT_POS;
            o->pos[o->n_pos++] = a;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return QE_OPT_HELP;
        const char *tail = NULL;
        const qe_opt_spec *s = lookup(o, a, &tail);
        if (!s || (s->kind == QE_OPT_FLAG && *tail))
            return QE_OPT_UNKNOWN;
        if (*tail) {
            o->val = tail + 1;
        } else if (s->kind == QE_OPT_VALUE) {
            if (o->i >= o->argc) {
                fprintf(stderr, "qeval %s: %s needs a value\n", o->cmd, a);
                return QE_OPT_MISSING;
            }
            o->val = o->argv[o->i++];
        }
        return s->id;
    }
}

const char *qe_opt_take_optional(qe_opt *o)
{
    if (o->i < o->argc) {
        const char *n = o->argv[o->i];
        if (n[0] != '-' || !strcmp(n, "-")) {
            o->i++;
            return n;
        }
    }
    return NULL;
}
