/* http: a strict, incremental HTTP/1.1 response parser and request
 * formatter, with no I/O of its own.
 *
 * The native transport of src/client.c feeds it whatever recv() returned;
 * tests and the fuzzer feed it bytes split anywhere. It understands what an
 * OpenAI-compatible server can send to a POST: a status line, headers (size
 * capped), a body delimited by Content-Length, by `Transfer-Encoding:
 * chunked` (chunk extensions and trailers skipped) or by the connection
 * closing (HTTP/1.0, or no length at all), interim 1xx responses (skipped),
 * `Connection: close` / `keep-alive`, and `Retry-After`. The body is capped
 * (max_body_bytes): a bigger one fails with QE_ELIMIT, never grows memory
 * past the cap. See docs/client.md, "Transports".
 *
 * Usage:
 *   qe_http_parser p; qe_http_parser_init(&p, cap);
 *   for each read: rc = qe_http_feed(&p, buf, n, &used, &body);
 *       rc 0: need more; 1: complete (bytes after `used` are not ours);
 *       < 0: error (qe_status), message in p.err
 *   on EOF: rc = qe_http_finish(&p, &body)   (1, or < 0: cut short)
 *   qe_http_parser_free(&p);
 * The body bytes are appended to the caller's qe_buf. */
#ifndef QE_HTTP_H
#define QE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define QE_HTTP_MAX_HEADER_BYTES 65536 /* status line + headers (+ trailers) */
#define QE_HTTP_MAX_LINE 8192          /* one header line or chunk-size line */

typedef struct {
    int state;               /* private */
    int errc;                /* private: the sticky error, 0 if none */
    bool conn_close, conn_ka;/* private: Connection tokens seen */
    long status;             /* status code of the final (non-1xx) response */
    int minor;               /* HTTP/1.<minor> */
    bool keep_alive;         /* the connection may carry another request */
    bool chunked;
    bool has_length;
    uint64_t content_length;
    uint64_t left;           /* private: bytes left in body or chunk */
    long retry_after_s;      /* -1: absent or not the seconds form */
    size_t cap;              /* body limit */
    size_t header_bytes;     /* private */
    size_t body_bytes;       /* body bytes delivered so far */
    bool body_over_cap;      /* the error is the body cap (QE_ELIMIT) */
    size_t total_bytes;      /* every byte consumed so far */
    qe_buf line;             /* private: a line split across reads */
    char err[256];           /* why it failed (when feed/finish < 0) */
} qe_http_parser;

/* Ready to read one response whose body may hold up to body_cap bytes. */
void qe_http_parser_init(qe_http_parser *p, size_t body_cap);
/* Ready for the next response on the same connection (keeps the buffer). */
void qe_http_parser_reset(qe_http_parser *p, size_t body_cap);
void qe_http_parser_free(qe_http_parser *p);

/* Consumes bytes of data[0..n): returns 0 (all consumed, need more),
 * 1 (the response is complete; *used = bytes of data it took, the rest is
 * not part of it) or a negative qe_status with p->err set: QE_ESERVER for a
 * malformed response, QE_ELIMIT for headers or body over their caps,
 * QE_ENOMEM. Body bytes are appended to *body. After 1 or an error, feeding
 * again returns the same result without consuming. */
int qe_http_feed(qe_http_parser *p, const char *data, size_t n, size_t *used, qe_buf *body);

/* The peer closed the connection: 1 when that completes the response (a
 * body delimited by the close), else QE_ESERVER with p->err saying what was
 * cut (no status line, headers, body with k of n bytes, chunk...). */
int qe_http_finish(qe_http_parser *p, qe_buf *body);

/* True when nothing of a response has been received yet. */
bool qe_http_parser_untouched(const qe_http_parser *p);

/* The seconds form of a Retry-After value (optional surrounding blanks):
 * its value, or -1 (empty, negative, an HTTP-date, trailing junk, overflow).
 * Shared by both transports so they honor exactly the same values. */
long qe_http_retry_after(const char *v, size_t n);

/* Appends one POST request: request line, Host, Content-Type:
 * application/json, `Authorization: Bearer <key>` when key is non-NULL and
 * non-empty, Content-Length, blank line, body. host and target must hold no
 * CR/LF (the caller validated them). Returns 0 or -1 (out of memory). */
int qe_http_format_post(qe_buf *out, const char *host, const char *target, const char *key,
                        const char *body, size_t body_len);

#endif
