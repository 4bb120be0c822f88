/* buf: growable, always NUL-terminated byte buffer (git's strbuf habit).
 *
 * Used everywhere text is built: JSON serialization, prompts, HTTP bodies.
 * A zeroed qe_buf (QE_BUF_INIT) is a valid empty buffer. Functions return 0
 * or -1 on allocation failure (the buffer is then left unchanged). Ownership:
 * the buffer owns data; qe_buf_free releases it, qe_buf_detach hands it to the
 * caller (who must free() it). */
#ifndef QE_BUF_H
#define QE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data; /* NULL or NUL-terminated, len bytes before the NUL */
    size_t len;
    size_t cap;
} qe_buf;

#define QE_BUF_INIT {0, 0, 0}

int qe_buf_reserve(qe_buf *b, size_t extra);
int qe_buf_append(qe_buf *b, const void *p, size_t n);
int qe_buf_puts(qe_buf *b, const char *s);
int qe_buf_putc(qe_buf *b, char c);
int qe_buf_printf(qe_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int qe_buf_vprintf(qe_buf *b, const char *fmt, va_list ap);
/* Text as a C string: "" for an empty buffer, never NULL. */
const char *qe_buf_str(const qe_buf *b);
void qe_buf_reset(qe_buf *b);
void qe_buf_free(qe_buf *b);
/* Returns the malloc'd string (never NULL unless out of memory); b is reset. */
char *qe_buf_detach(qe_buf *b);

#endif
