/* runner_body: the JSON body of one generation request, built fast.
 *
 * Part of the runner (runner.c). Every request of a task has the same body
 * but for the prompt (raw completions) or the messages (chat) and the seed
 * (base seed + repeat). The reference builder makes a jansson tree and
 * dumps it with json_dumps(JSON_COMPACT), as the runner always did; the fast
 * builder dumps that tree once per task with placeholders, cuts it into
 * pieces and per request only escapes the prompt (or the messages) between
 * them, byte-identical to the reference (tests/test_runner_body.c checks
 * every body of every built-in task). Whatever the fast path cannot
 * reproduce exactly (a gen kwarg that replaces the prompt, a string that is
 * not valid UTF-8, a real number inside the messages) goes through the
 * reference builder instead. See docs/run.md "Performance". */
#ifndef QE_RUNNER_BODY_H
#define QE_RUNNER_BODY_H

#include <jansson.h>
#include <stdbool.h>

#include "buf.h"
#include "err.h"

/* What every body of one task shares. The pointers are borrowed: they must
 * outlive every template made from the spec. */
typedef struct {
    const char *model;   /* "model" field */
    bool chat;           /* true: "messages" (chat); false: "prompt" */
    const json_t *merged; /* gen kwargs (qe_genkw_merge), mapped by qe_genkw_request */
    const json_t *ctk;   /* chat_template_kwargs merged into the body, NULL = none */
} qe_runner_body_spec;

/* The reference: builds the body as a jansson tree and returns
 * json_dumps(JSON_COMPACT) of it (malloc'd; caller frees), or NULL with e
 * set. prompt is used when !s->chat, msgs (a messages array) when s->chat. */
char *qe_runner_body_reference(const qe_runner_body_spec *s, const char *prompt,
                               const json_t *msgs, long long seed, qe_err *e);

typedef struct qe_runner_body qe_runner_body;

/* Prepares the pieces of one task's bodies. *out is freed with
 * qe_runner_body_free. Fails (QE_EINVAL, QE_ENOMEM) as the reference would
 * for bad gen kwargs. */
int qe_runner_body_new(const qe_runner_body_spec *s, qe_runner_body **out, qe_err *e);
void qe_runner_body_free(qe_runner_body *b);

/* The body for one request: byte-identical to qe_runner_body_reference with
 * the same arguments. Returns a malloc'd string (caller frees) or NULL with
 * e set. scratch is a buffer the caller keeps across calls (reused, never
 * shrunk; freed by the caller), so the hot path allocates only the result. */
char *qe_runner_body_build(const qe_runner_body *b, const char *prompt, const json_t *msgs,
                           long long seed, qe_buf *scratch, qe_err *e);

/* The two halves of qe_runner_body_build, for a caller that sends several
 * bodies with the same prompt (the repeats of a doc) and escapes it once:
 * _prepare puts the escaped prompt (or messages) in value (reset first)
 * and returns 0, or 1 when this body must come from the reference builder,
 * or QE_ENOMEM; _finish assembles the body from a value _prepare returned 0
 * for (malloc'd; NULL with e set). */
int qe_runner_body_prepare(const qe_runner_body *b, const char *prompt, const json_t *msgs,
                           qe_buf *value);
char *qe_runner_body_finish(const qe_runner_body *b, const qe_buf *value, long long seed,
                            qe_err *e);

/* True when the fast path applies to every body of this task (false: every
 * body goes through the reference builder). For tests and benchmarks. */
bool qe_runner_body_is_fast(const qe_runner_body *b);

/* True when s (n bytes) is UTF-8 that jansson's json_string accepts (no
 * overlong forms, surrogates or code points above U+10FFFF). */
bool qe_runner_body_utf8_valid(const char *s, size_t n);

#endif
