/* opt: the one argument loop of the qeval commands.
 *
 * A command lists its options in a table (name without the leading "--",
 * spelled with dashes) and switches on the id qe_opt_next returns. The
 * iterator accepts "--name value", "--name=value" and the underscore
 * spelling ("--name_value" for "--name-value", docs/cli.md), answers -h and
 * --help, reports a missing value uniformly ("qeval CMD: --name needs a
 * value") and, when asked to, collects positionals (everything after "--"
 * included) so the command only sees options. A command that gives its
 * usage printer also leaves help, unknown options ("qeval CMD: unknown
 * option '-x'" and the usage) and too few positionals to the iterator, which
 * then stops with the exit code in .exit; the others keep their own
 * messages, part of their interface. */
#ifndef QE_CLI_OPT_H
#define QE_CLI_OPT_H

#include <stddef.h>
#include <stdio.h>

#include "paths.h"

enum qe_opt_kind {
    QE_OPT_FLAG,   /* --name only; "--name=x" is an unknown option */
    QE_OPT_VALUE,  /* --name VALUE or --name=VALUE; missing value is an error */
    QE_OPT_INLINE, /* --name or --name=VALUE (val NULL when not given) */
};

typedef struct {
    const char *name; /* "format" matches --format; "-o" matches -o literally */
    int id;           /* returned by qe_opt_next; must be >= 0 */
    enum qe_opt_kind kind;
} qe_opt_spec;

/* What qe_opt_next returns besides a spec id. */
enum {
    QE_OPT_END = -1,     /* no more arguments */
    QE_OPT_HELP = -2,    /* -h or --help */
    QE_OPT_UNKNOWN = -3, /* an option not in the table (arg holds it) */
    QE_OPT_MISSING = -4, /* a value option was last with no value; reported */
    QE_OPT_POS = -5,     /* a positional (only without QE_OPT_COLLECT) */
};

/* Flags for qe_opt_init. */
enum {
    QE_OPT_COLLECT = 1, /* keep positionals in pos[]; "--" ends the options */
};

/* One command's options. */
typedef struct {
    const char *name; /* for messages, e.g. "summarize" */
    const qe_opt_spec *specs;
    size_t n_specs;
    int flags;
    /* NULL: qe_opt_next returns the QE_OPT_* codes. Else it prints usage
     * (to stdout for --help), ends the loop and sets .exit (cli.h). */
    void (*usage)(FILE *f);
    size_t min_pos; /* with usage and QE_OPT_COLLECT: fewer is a usage error */
} qe_opt_cmd;

typedef struct {
    const qe_opt_cmd *cmd;
    int argc, i, rest;
    int exit; /* -1 while going on; the exit code once the loop stopped */
    char **argv;
    const char *arg; /* the argument just returned, as given */
    const char *val; /* its value (QE_OPT_VALUE always, QE_OPT_INLINE maybe) */
    const char **pos; /* positionals in order (QE_OPT_COLLECT), owned here */
    size_t n_pos;
} qe_opt;

/* Starts at argv[first]. Returns 0, or -1 when out of memory (nothing to
 * free then). Free with qe_opt_free; cmd and argv must outlive it. */
int qe_opt_init(qe_opt *o, const qe_opt_cmd *cmd, int argc, char **argv, int first);
void qe_opt_free(qe_opt *o);

/* The next option's id (or one of the QE_OPT_* codes above; only
 * QE_OPT_END when cmd->usage is set); prints the missing-value message
 * itself. */
int qe_opt_next(qe_opt *o);

/* A command found a bad value (and said so): the loop ends, exit 2. */
void qe_opt_fail(qe_opt *o);

/* Takes the following argument as an optional value when it does not look
 * like an option ("-" counts as a value); NULL when there is none. */
const char *qe_opt_take_optional(qe_opt *o);

/* Looks v up in names (NULL-terminated): sets *out to the matching entry of
 * values (its index when values is NULL) and returns 0; -1 when absent. */
int qe_opt_pick(const char *v, const char *const *names, const int *values, int *out);

/* "lmeval", "math": the --scorer names of rescore, compare, report and run,
 * in the order of their scorer enums. */
extern const char *const qe_opt_scorers[];

/* Adds every collected positional to *in (qe_paths_add: files, directories
 * searched with want, globs), printing each problem as "qeval: ..." and
 * stopping at the first hard one. Returns how many problems were printed. */
size_t qe_opt_add_paths(const qe_opt *o, qe_paths *in, qe_paths_want_fn want);

#endif
