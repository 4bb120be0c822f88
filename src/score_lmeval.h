/* score_lmeval: exact re-implementation of lm-evaluation-harness math scoring.
 *
 * Same per-sample verdict as lm-eval (v0.4.9.2 .. v0.4.12+, see
 * docs/scoring-lmeval.md) for hendrycks_math500, aime24, aime25 and gsm8k,
 * traps included: hendrycks never reads \boxed from the response, aime's
 * "\boxed " hijack, is_equiv's silent fallback to raw equality when
 * strip_string raises, code-point (not byte) counting, Python int() rules.
 *
 * Strings are UTF-8. Invalid UTF-8 is handled as Python would handle
 * bytes.decode("utf-8", "surrogateescape"): every byte that is not part of a
 * valid sequence counts as one code point of its own (a lone surrogate, which
 * is never a digit, space or brace). Nothing here prints, exits or keeps
 * global state; all functions are thread-safe. */
#ifndef QE_SCORE_LMEVAL_H
#define QE_SCORE_LMEVAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* "Python raised" return codes (negative, distinct from enum qe_status). */
enum qe_lm_raise {
    QE_LM_ASSERTION_ERROR = -101,
    QE_LM_INDEX_ERROR = -102,
    QE_LM_VALUE_ERROR = -103,
};
/* "AssertionError", "IndexError", "ValueError", else qe_status_name(rc). */
const char *qe_lm_raise_name(int rc);

/* Largest response/doc string score_doc accepts (bytes); larger gives
 * QE_ELIMIT. The helpers themselves are linear and take any size. */
#define QE_LM_MAX_INPUT (64u * 1024u * 1024u)

/* lm-eval last_boxed_only_string. Returns a malloc'd string (caller frees)
 * or NULL when Python returns None (or on allocation failure). */
char *qe_lm_last_boxed_only_string(const char *s);

/* lm-eval remove_boxed. 0 and *out = malloc'd inner text (caller frees), or
 * QE_LM_ASSERTION_ERROR (*out = NULL) where Python's assert fails, or
 * QE_ENOMEM. s == NULL gives QE_EINVAL (Python: TypeError). */
int qe_lm_remove_boxed(const char *s, char **out);

/* lm-eval strip_string. 0 and *out = malloc'd result (caller frees), or
 * QE_LM_ASSERTION_ERROR (two "\text{ "), QE_LM_INDEX_ERROR (trailing \sqrt or
 * \frac), QE_LM_VALUE_ERROR (int() of a non-integer in a/b), QE_ENOMEM;
 * *out is NULL on any error. */
int qe_lm_strip_string(const char *s, char **out);

/* lm-eval is_equiv: strip both and compare; if strip_string raises on either
 * side, compare the raw strings. NULL stands for None (both None: true). On
 * allocation failure falls back to the raw comparison. */
bool qe_lm_is_equiv(const char *a, const char *b);

/* The answer lm-eval's process_results compares for a math task:
 * hendrycks_math500: the $-slice; aime24/aime25: last \boxed{} content, else
 * the $-slice. 0 and *out malloc'd, or QE_EINVAL for an unknown task. */
int qe_lm_extract_answer(const char *task, const char *response, char **out);

/* gsm8k filters. which: "strict-match" or "flexible-extract". 0 and *out =
 * malloc'd filtered response ("[invalid]" when nothing matches). */
int qe_lm_gsm8k_filter(const char *which, const char *response, char **out, qe_err *err);

/* gsm8k's final answer in a worked answer: rewrites s in place to the text
 * after its last "####", spaces, tabs and line ends trimmed. 0, or -1 with
 * s unchanged when s has no "####". */
int qe_lm_gsm8k_final_answer(char *s);

/* gsm8k exact_match (HF-evaluate style, regexes_to_ignore "," "\$"
 * "(?s).*#### " "\.$", ignore_case, numpy <U width truncation) of pred vs
 * ref. If norm_pred/norm_ref are non-NULL they receive the malloc'd
 * normalized strings. Returns 1 (match), 0, or negative qe_status.
 * Case folding is Python str.lower for ASCII, U+0130 and U+212A (the only
 * code points whose lowercase contains ASCII); other non-ASCII is kept as is,
 * which is exact whenever one side is ASCII (always true for filter output). */
int qe_lm_gsm8k_exact_match(const char *pred, const char *ref, char **norm_pred, char **norm_ref);

/* The target string lm-eval logs for doc (doc_to_target / str(answer)).
 * 0 and *out malloc'd, or QE_EINVAL with err filled. */
int qe_lm_target(const char *task, const json_t *doc, char **out, qe_err *err);

/* The gold string lm-eval compares against: hendrycks_math500
 * remove_boxed(last_boxed_only_string(solution)); aime str(doc[answer key]);
 * gsm8k the target. A solution without \boxed is QE_EINVAL (lm-eval would
 * crash with TypeError/AssertionError). */
int qe_lm_gold(const char *task, const json_t *doc, char **out, qe_err *err);

typedef struct {
    char filter[24];     /* "none", "strict-match", "flexible-extract" */
    char *filtered_resp; /* what lm-eval logs in filtered_resps (malloc'd) */
    char *extracted;     /* answer actually compared, after extraction/normalization (malloc'd) */
    char *gold;          /* gold actually compared (malloc'd) */
    const char *metric;  /* "exact_match" (static) */
    int value;           /* 0 or 1 */
} qe_lm_filter_score;

typedef struct {
    size_t n;                /* 1 (math tasks) or 2 (gsm8k) */
    qe_lm_filter_score f[2]; /* in lm-eval's filter_list order */
    char *target;            /* logged target (malloc'd) */
} qe_lm_score;

/* Scores one response like lm-eval's process_results/metrics for task
 * (hendrycks_math500, aime24, aime25, gsm8k). doc uses lm-eval's field names.
 * On success (0) out owns malloc'd strings: release with qe_lm_score_free.
 * response NULL is scored as "" (what lm-eval 0.4.9.2+ makes of a null chat
 * content). On error out is zeroed and err says why. */
int qe_lm_score_doc(const char *task, const json_t *doc, const char *response, qe_lm_score *out,
                    qe_err *err);
void qe_lm_score_free(qe_lm_score *s);

#endif
