/* buf: growable byte buffer; see buf.h. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qe_buf_reserve(qe_buf *b, size_t extra)
{
    if (extra > (size_t)-1 / 2 - b->len)
        return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int qe_buf_append(qe_buf *b, const void *p, size_t n)
{
    if (qe_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int qe_buf_puts(qe_buf *b, const char *s)
{
    return qe_buf_append(b, s, strlen(s));
}

int qe_buf_putc(qe_buf *b, char c)
{
    return qe_buf_append(b, &c, 1);
}

int qe_buf_vprintf(qe_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0 || qe_buf_reserve(b, (size_t)n) < 0)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int qe_buf_printf(qe_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = qe_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

const char *qe_buf_str(const qe_buf *b)
{
    return b->data ? b->data : "";
}

void qe_buf_reset(qe_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void qe_buf_free(qe_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *qe_buf_detach(qe_buf *b)
{
    char *p = b->data;
    if (!p) {
        p = malloc(1);
        if (p)
            *p = '\0';
    }
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
