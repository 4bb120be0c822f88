/* verify: decides whether a predicted math answer equals a gold answer.
 *
 * Both answers are parsed (LaTeX or plain math) into an expression tree and
 * compared by value: exactly with GMP (Gaussian) rationals when both sides are
 * rational, by expansion into sparse multivariate polynomials with rational
 * coefficients when they contain variables, and otherwise numerically with
 * MPFR (320-bit) within a relative tolerance of 2^-128 (docs/verifier.md).
 * Sets, tuples, intervals, matrices, equations, inequalities, \pm, choice
 * letters and plain text answers are compared structurally.
 *
 * Accepting a wrong answer is worse than rejecting a right one: whenever the
 * verifier cannot decide safely it says "undecided" (verdict -1) with the
 * reason, and it never does unbounded work (input size, node count, recursion
 * depth, exponent size and an evaluation budget are all capped).
 *
 * Hot loops should create one qe_verify_scratch and pass it in the options:
 * it holds every arena the verifier needs, so a pair costs no allocation once
 * the scratch is warm. A scratch is not thread-safe; use one per thread. */
#ifndef QE_VERIFY_H
#define QE_VERIFY_H

#include <stddef.h>

#include "err.h"
#include "extract.h"

typedef struct qe_verify_scratch qe_verify_scratch;

/* Allocates a scratch (NULL on allocation failure). Free with
 * qe_verify_scratch_free (NULL is accepted). */
qe_verify_scratch *qe_verify_scratch_new(void);
void qe_verify_scratch_free(qe_verify_scratch *s);

enum qe_verdict {
    QE_VERDICT_FALSE = 0,
    QE_VERDICT_TRUE = 1,
    QE_VERDICT_UNDECIDED = -1,
};

typedef struct {
    qe_verify_scratch *scratch; /* reused arenas; NULL = a temporary one per call */
    int no_canon;               /* 1: skip filling canon_gold/canon_pred (faster) */
    qe_extract_opts extract;    /* used by qe_verify_response only */
} qe_verify_opts;

/* Defaults: no scratch, canonical forms on, default extraction order. */
void qe_verify_opts_init(qe_verify_opts *o);

typedef struct {
    int verdict;           /* enum qe_verdict */
    char reason[160];      /* why: "equal as rationals", "budget: exponent too large", ... */
    char canon_gold[256];  /* canonical forms compared (truncated with "..."), "" if none */
    char canon_pred[256];
    char extracted[256];   /* qe_verify_response: the extracted answer (truncated) */
    int extract_method;    /* qe_verify_response: enum qe_extract_method */
} qe_verify_result;

/* Compares two final answers. Returns 0 (verdict in out->verdict, which may be
 * undecided) or QE_ENOMEM when no scratch could be made. gold and pred are
 * NUL-terminated and only read; they may carry $...$, \boxed{}, \text{}
 * wrappers. out (not NULL) is filled entirely; it holds no pointers. */
int qe_verify_pair(const char *gold, const char *pred, const qe_verify_opts *opts,
                   qe_verify_result *out);

/* The --scorer math entry point. Extracts the final answer from a full model
 * response (qe_extract_answer with opts->extract; <think> blocks ignored); a
 * gold containing \boxed{} is reduced to its last box (a whole reference
 * solution works as gold); then compares as qe_verify_pair. Returns the
 * verdict (1 true, 0 false, -1 undecided: also when no answer could be
 * extracted) and fills out if it is not NULL. opts may be NULL (defaults,
 * temporary scratch: slow, for one-off calls). */
int qe_verify_response(const char *gold, const char *response, const qe_verify_opts *opts,
                       qe_verify_result *out);

#endif
