/* runner_sample: one line of a samples_<task>.jsonl file written by the
 * runner, streamed straight into a buffer.
 *
 * Part of the runner (runner.c). The line is the one the runner used to
 * build as a jansson tree -- qe_lmeval_sample_build with the runner's
 * extras (finish_reason, prompt_tokens, completion_tokens, latency_ms,
 * attempts, truncated, reasoning, qeval_repeats) and, with repeats, "resps"
 * holding every repeat -- and dump with qe_lmeval_sample_format
 * (json.dumps(ensure_ascii=False) bytes). Building and freeing that tree
 * per doc cost more than dumping it; here only the dump is left, with the
 * doc and the gen kwargs dumped once by the caller. tests/test_runner_sample.c
 * checks the bytes against the tree path. See docs/run.md "Performance". */
#ifndef QE_RUNNER_SAMPLE_H
#define QE_RUNNER_SAMPLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

typedef struct {
    long long doc_id;
    const char *doc_json;        /* qe_pyjson_dump(doc, QE_PYJSON_COMPACT, 0) */
    const char *target;          /* NULL = "" */
    const char *prompt;          /* arguments.gen_args_0.arg_0; NULL = "" */
    const char *gen_kwargs_json; /* qe_pyjson_dump(merged gen kwargs, COMPACT, 0) */
    const char *const *resps;    /* n_resps >= 1 responses (NULL = ""): resps [[...]] */
    size_t n_resps;
    const char *filtered;        /* filtered_resps[0]; NULL = resps[0] */
    const char *filter;          /* NULL = "none" */
    const char *metric;          /* metric name; its value below, an integer */
    int value;
    const char *doc_hash, *prompt_hash, *target_hash; /* 64 hex digits each */
    /* the runner's extras, in this order */
    const char *finish_reason;   /* NULL = null */
    long long prompt_tokens, completion_tokens; /* < 0 = null */
    double latency_ms;           /* < 0 = null; written rounded to 3 decimals */
    int attempts;
    bool truncated;
    const char *reasoning;       /* written only when non-empty */
    /* qeval_repeats, written only when n_repeats > 1 */
    size_t n_repeats;
    const int *rep_value;
    const char *const *rep_finish;    /* NULL entries = null */
    const long long *rep_ctok;        /* < 0 = null */
} qe_runner_sample;

/* Appends the line (with its "\n") to out. Returns 0; 1 when a string is
 * not valid UTF-8 (the tree path refuses it: the caller uses that path, so
 * the error is the same), out then back at its length on entry; or
 * QE_ENOMEM. */
int qe_runner_sample_write(qe_buf *out, const qe_runner_sample *s);

#endif
