/* opt: the one argument loop every qeval command shares.
 *
 * A command lists its options in a table (name without the leading "--",
 * spelled with dashes) and switches on the id qe_opt_next returns. The
 * iterator accepts "--name value", "--name=value" and the underscore
 * spelling ("--name_value" for "--name-value", docs/cli.md), answers -h and
 * --help, reports a missing value uniformly ("qeval CMD: --name needs a
 * value") and, when asked to, collects positionals (everything after "--"
 * included) so the command only sees options. Messages for bad values and
 * unknown options stay with each command: they are part of its interface. */
#ifndef QE_CLI_OPT_H
#define QE_CLI_OPT_H

#include <stddef.h>

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

typedef struct {
    const char *cmd; /* command name for messages, e.g. "summarize" */
    const qe_opt_spec *specs;
    size_t n_specs;
    int argc, i, flags, rest;
    char **argv;
    const char *arg; /* the argument just returned, as given */
    const char *val; /* its value (QE_OPT_VALUE always, QE_OPT_INLINE maybe) */
    const char **pos; /* positionals in order (QE_OPT_COLLECT), owned here */
    size_t n_pos;
} qe_opt;

/* Starts at argv[first]. Returns 0, or -1 when out of memory (nothing to
 * free then). Free with qe_opt_free; argv must outlive the iterator. */
int qe_opt_init(qe_opt *o, const char *cmd, const qe_opt_spec *specs, size_t n_specs, int argc,
                char **argv, int first, int flags);
void qe_opt_free(qe_opt *o);

/* The next option's id (or one of the QE_OPT_* codes above); prints the
 * missing-value message itself. */
int qe_opt_next(qe_opt *o);

/* Takes the following argument as an optional value when it does not look
 * like an option ("-" counts as a value); NULL when there is none. */
const char *qe_opt_take_optional(qe_opt *o);

#endif
