/* pyjson: serialize a jansson value byte-for-byte like Python's json.dumps.
 *
 * lm-eval writes samples with json.dumps(x, ensure_ascii=False) and results
 * with json.dumps(x, indent=2, ensure_ascii=False); its doc_hash is the
 * sha256 of the indent=2 form. Reproducing those bytes exactly is what makes
 * our files and hashes interchangeable with lm-eval's. Rules reproduced:
 *  - compact: separators ", " and ": "; indent>=0: "," + newline + indent
 *    spaces and ": "; empty containers stay "[]" / "{}";
 *  - strings: only '"', '\\' and bytes < 0x20 are escaped (\n \r \t \b \f
 *    short forms, others \u00xx lowercase); with ensure_ascii every code
 *    point >= 0x7f becomes \uxxxx (surrogate pairs above U+FFFF);
 *  - integers bare, reals as Python repr(float) (shortest round-trip,
 *    "0.0", "1e-05", "1e+16", "Infinity", "-Infinity", "NaN");
 *  - object keys in jansson's insertion order (= the order read from a file).
 * Strings must be valid UTF-8 for ensure_ascii mode (jansson guarantees it
 * for parsed input); strings may contain NUL (JSON_ALLOW_NUL). */
#ifndef QE_PYJSON_H
#define QE_PYJSON_H

#include <jansson.h>

#include "buf.h"
#include "err.h"

#define QE_PYJSON_COMPACT (-1)  /* indent value for json.dumps(x) */
#define QE_PYJSON_MAX_DEPTH 512 /* deeper values fail with QE_ELIMIT */

/* Appends the serialization of v to out. indent: QE_PYJSON_COMPACT or the
 * number of spaces (json.dumps(indent=N)). Returns 0, QE_ENOMEM, QE_ELIMIT
 * or QE_EINVAL (unsupported value); on failure out may hold a partial text. */
int qe_pyjson_dump(qe_buf *out, const json_t *v, int indent, int ensure_ascii, qe_err *e);

/* Appends Python's repr(float(x)) (the form json.dumps uses for floats). */
int qe_pyjson_float(qe_buf *out, double x);

/* Appends s (n bytes) as a JSON string literal with Python's escaping. */
int qe_pyjson_string(qe_buf *out, const char *s, size_t n, int ensure_ascii);

#endif
