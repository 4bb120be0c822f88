/* extract: finds the final answer inside a full model response.
 *
 * Everything inside a <think> block is ignored: after a closing </think> only
 * the text after the last one counts; with an unclosed <think> only the text
 * before it. Then the answer is looked for with a configurable list of
 * methods tried in order (default: last \boxed{}/\fbox{} with balanced
 * braces, "final answer is ..." (or, without it, "answer is ..."), "Answer: ...", the last $...$ / $$...$$ /
 * \[...\] / \(...\) span, the last simple number, and as a last resort the
 * whole text when it is short: at most QE_EXTRACT_SHORT_MAX bytes on one
 * line). Extraction never allocates: the result is a span of the input. Work
 * is linear in the response length. */
#ifndef QE_EXTRACT_H
#define QE_EXTRACT_H

#include <stddef.h>

enum qe_extract_method {
    QE_EXTRACT_NONE = 0,
    QE_EXTRACT_BOXED,        /* last \boxed{...} or \fbox{...} */
    QE_EXTRACT_FINAL_ANSWER, /* "final answer is ...", else "answer is ..." */
    QE_EXTRACT_ANSWER_COLON, /* "Answer: ..." */
    QE_EXTRACT_MATH_SPAN,    /* last $...$, $$...$$, \[...\] or \(...\) */
    QE_EXTRACT_LAST_NUMBER,  /* last simple number: -1,234.5, 3/2, -3/2, 3 1/2, 10% */
    QE_EXTRACT_WHOLE,        /* the whole (think-stripped) text, trimmed */
    QE_EXTRACT_SHORT,        /* the same, only if short: <= QE_EXTRACT_SHORT_MAX bytes, one line */
    QE_EXTRACT_LAST_METHOD = QE_EXTRACT_SHORT
};

/* Longest text (after removing <think> blocks and trimming) that the short
 * method takes as an answer. */
#define QE_EXTRACT_SHORT_MAX 64

#define QE_EXTRACT_MAX_METHODS 8

typedef struct {
    /* methods tried in order, terminated by QE_EXTRACT_NONE or the array end */
    unsigned char order[QE_EXTRACT_MAX_METHODS];
} qe_extract_opts;

/* Default order: boxed, final answer, Answer:, math span, last number, short. */
void qe_extract_opts_init(qe_extract_opts *o);

/* Parses a comma list such as "boxed,final,answer,math,number,short" (names:
 * qe_extract_method_name; also "whole") into o.
 * Returns 0, or QE_EINVAL for an unknown name. */
int qe_extract_opts_parse(qe_extract_opts *o, const char *list);

const char *qe_extract_method_name(int method);

/* Finds the answer in text[0..len). On success returns the method used (> 0)
 * and sets *start and *alen to the answer span inside text (wrapping $ and
 * surrounding space trimmed); returns QE_EXTRACT_NONE (0) when nothing fits. */
int qe_extract_answer(const char *text, size_t len, const qe_extract_opts *o,
                      size_t *start, size_t *alen);

#endif
