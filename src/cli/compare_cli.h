/* compare_cli: what `qeval compare` and `qeval report` share (implemented in
 * cmd_compare.c): loading the inputs, refusing mismatched runs, optional
 * re-scoring with the math verifier, and running the comparison. */
#ifndef QE_COMPARE_CLI_H
#define QE_COMPARE_CLI_H

#include <stddef.h>

#include "compare.h"
#include "inputs.h"
#include "opt.h"

enum { QE_SCORER_LMEVAL = 0, QE_SCORER_MATH = 1 };

typedef struct {
    const char *cmd; /* "compare" / "report", for messages */
    const char *baseline, *task;
    int allow_mismatch;
    int scorer;
} qe_cmpcli_opts;

/* Per model x group counts from --scorer math. */
typedef struct {
    size_t rescored;        /* records with a response and gold */
    size_t accepts_not_lm;  /* verifier right, lm-eval wrong */
    size_t rejects_lm;      /* verifier wrong (or undecided), lm-eval right */
    const char **accepted;  /* keys of the accepts_not_lm records (borrowed) */
} qe_cmpcli_math;

typedef struct {
    qe_inputs *in;
    qe_compare_result *res;
    char **mismatches; /* lines, also printed to stderr */
    size_t n_mismatches;
    qe_cmpcli_math *math; /* [n_groups * n_models] or NULL */
    char **owned;         /* verifier-extracted answers the records point to */
    size_t n_owned;
} qe_cmpcli_run;

/* Options both commands take, for their qe_opt tables (opt.h): ids from
 * QE_CMPCLI_O_BASELINE up are handled by qe_cmpcli_option. */
enum {
    QE_CMPCLI_O_BASELINE = 100,
    QE_CMPCLI_O_TASK,
    QE_CMPCLI_O_SCORER,
    QE_CMPCLI_O_ALLOW_MISMATCH,
};
#define QE_CMPCLI_OPTIONS                                                                    \
    {"baseline", QE_CMPCLI_O_BASELINE, QE_OPT_VALUE}, {"task", QE_CMPCLI_O_TASK, QE_OPT_VALUE}, \
        {"tasks", QE_CMPCLI_O_TASK, QE_OPT_VALUE}, {"scorer", QE_CMPCLI_O_SCORER, QE_OPT_VALUE}, \
        {"allow-mismatch", QE_CMPCLI_O_ALLOW_MISMATCH, QE_OPT_FLAG}

/* Applies shared option id (value v, argument arg as given) to *o. Returns
 * -1 when id is not a shared option, else an exit code (0 = carry on). */
int qe_cmpcli_option(qe_cmpcli_opts *o, int id, const char *arg, const char *v);

/* Loads, checks and compares; prints warnings/errors to stderr. Returns an
 * exit code (cli.h); on 0, *run is filled (free with qe_cmpcli_free). */
int qe_cmpcli_prepare(const char *const *paths, size_t n_paths, const qe_cmpcli_opts *o,
                      qe_cmpcli_run *run);
void qe_cmpcli_free(qe_cmpcli_run *run);
/* 1 when this build has the math verifier (src/verify.h). */
int qe_cmpcli_have_math(void);

#endif
