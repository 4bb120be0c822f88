/* opt: the shared argument loop of the qeval commands (see opt.h). */
#include "opt.h"

#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"

const char *const qe_opt_scorers[] = {"lmeval", "math", NULL};

int qe_opt_init(qe_opt *o, const qe_opt_cmd *cmd, int argc, char **argv, int first)
{
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->argc = argc;
    o->argv = argv;
    o->i = first;
    o->exit = -1;
    if (cmd->flags & QE_OPT_COLLECT) {
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

void qe_opt_fail(qe_opt *o)
{
    o->exit = QE_EXIT_USAGE;
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
    for (size_t s = 0; s < o->cmd->n_specs; s++) {
        const char *name = o->cmd->specs[s].name;
        if (name[0] == '-') {
            if (!strcmp(a, name)) {
                *tail = "";
                return &o->cmd->specs[s];
            }
        } else if (a[0] == '-' && a[1] == '-' && (*tail = spells(a + 2, name))) {
            return &o->cmd->specs[s];
        }
    }
    return NULL;
}

/* One argument: a spec id or a QE_OPT_* code. */
static int next_arg(qe_opt *o)
{
    const int collect = o->cmd->flags & QE_OPT_COLLECT;
    for (;;) {
        if (o->i >= o->argc)
            return QE_OPT_END;
        const char *a = o->argv[o->i++];
        o->arg = a;
        o->val = NULL;
        int is_opt = !o->rest && a[0] == '-' && a[1];
        if (is_opt && collect && !strcmp(a, "--")) {
            o->rest = 1;
            continue;
        }
        if (!is_opt) {
            if (!collect)
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
                fprintf(stderr, "qeval %s: %s needs a value\n", o->cmd->name, a);
                return QE_OPT_MISSING;
            }
            o->val = o->argv[o->i++];
        }
        return s->id;
    }
}

int qe_opt_next(qe_opt *o)
{
    const qe_opt_cmd *c = o->cmd;
    if (!c->usage)
        return next_arg(o);
    if (o->exit >= 0)
        return QE_OPT_END;
    int id = next_arg(o);
    switch (id) {
    case QE_OPT_HELP:
        c->usage(stdout);
        o->exit = QE_EXIT_OK;
        return QE_OPT_END;
    case QE_OPT_UNKNOWN:
    case QE_OPT_POS:
        fprintf(stderr, "qeval %s: unknown option '%s'\n", c->name, o->arg);
        c->usage(stderr);
        o->exit = QE_EXIT_USAGE;
        return QE_OPT_END;
    case QE_OPT_MISSING:
        o->exit = QE_EXIT_USAGE;
        return QE_OPT_END;
    case QE_OPT_END:
        if (o->n_pos < c->min_pos) {
            c->usage(stderr);
            o->exit = QE_EXIT_USAGE;
        }
        return QE_OPT_END;
    default:
        return id;
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

size_t qe_opt_add_paths(const qe_opt *o, qe_paths *in, qe_paths_want_fn want)
{
    size_t errors = 0;
    for (size_t i = 0; i < o->n_pos; i++) {
        qe_err e = {0};
        size_t seen = in->n_errors;
        int rc = qe_paths_add(in, o->pos[i], want, &e);
        for (size_t k = seen; k < in->n_errors; k++, errors++)
            fprintf(stderr, "qeval: %s\n", in->errors[k]);
        if (rc) {
            fprintf(stderr, "qeval: %s\n", e.msg);
            errors++;
            break;
        }
    }
    return errors;
}

int qe_opt_pick(const char *v, const char *const *names, const int *values, int *out)
{
    for (int k = 0; names[k]; k++)
        if (!strcmp(v, names[k])) {
            *out = values ? values[k] : k;
            return 0;
        }
    return -1;
}
