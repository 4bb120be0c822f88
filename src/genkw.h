/* genkw: lm-eval's --gen_kwargs, parsed, merged and mapped to a request.
 *
 * lm-eval (v0.4.9.2) reads `--gen_kwargs max_gen_toks=1024,temperature=0`
 * with simple_parse_args_string: split on ',', drop empty items, split each
 * on '=' (key = first part, value = the rest joined by '='), then type the
 * value: "true"/"false" (any case) -> bool, all ASCII digits -> int, a
 * Python float literal -> float, anything else -> string. A JSON object
 * ('{' first) is taken as is. The result is a shallow update of the task's
 * generation_kwargs (so `until` from the CLI replaces the YAML list); that
 * merged dict is what lm-eval logs as arguments.gen_args_0.arg_1.
 *
 * qe_genkw_request then does what lm-eval's API backends do with it:
 * max_tokens (if given) wins over max_gen_toks, else the task/CLI
 * max_gen_toks, else 256; until -> stop; do_sample dropped; temperature
 * default 0; every other key copied verbatim (top_p, top_k, min_p,
 * chat_template_kwargs, ...). See docs/run.md. */
#ifndef QE_GENKW_H
#define QE_GENKW_H

#include <jansson.h>

#include "err.h"

/* lm-eval's backend default when neither max_tokens nor max_gen_toks is set. */
#define QE_GENKW_DEFAULT_MAX_TOKENS 256
/* Longest --gen_kwargs text accepted. */
#define QE_GENKW_MAX_TEXT (64u * 1024u)

/* Parses text (NULL or blank = {}) into a NEW object (caller json_decref()s),
 * keys in the order given; a repeated key keeps its first position and the
 * last value (Python dict semantics). QE_EINVAL with a message naming the
 * bad item; *out is NULL on failure. */
int qe_genkw_parse(const char *text, json_t **out, qe_err *e);

/* Python handle_arg_string for one value: NEW reference. */
json_t *qe_genkw_typed_value(const char *v);

/* dict(task_defaults) updated by cli (either may be NULL): NEW object.
 * Values are deep copies; key order: defaults first, new keys appended. */
json_t *qe_genkw_merge(const json_t *task_defaults, const json_t *cli);

/* Adds the sampling fields of merged kwargs to a request body object:
 * "max_tokens" (integer), "temperature" (default 0), "stop" (list) and the
 * other keys verbatim; "seed" is set to the seed given (a "seed" in merged
 * is ignored here: the caller decides, see qe_genkw_seed).
 * Existing keys in body (model, messages/prompt) are kept unless merged
 * overrides them. Returns 0 or QE_EINVAL (e.g. max_gen_toks not a positive
 * integer, until not a string or list of strings). */
int qe_genkw_request(const json_t *merged, long long seed, json_t *body, qe_err *e);

/* The base seed: merged["seed"] when it is an integer, else dflt. */
long long qe_genkw_seed(const json_t *merged, long long dflt);

#endif
