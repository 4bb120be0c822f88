/* err: error reporting helpers; see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int qe_err_set(qe_err *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

void qe_err_prefix(qe_err *e, const char *fmt, ...)
{
    if (!e)
        return;
    char out[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, sizeof out, fmt, ap);
    va_end(ap);
    size_t used = n < 0 ? 0 : (size_t)n < sizeof out ? (size_t)n : sizeof out - 1;
    /* append ": " + old message, truncating at the buffer end */
    const char *parts[2] = {": ", e->msg};
    for (int k = 0; k < 2; k++)
        for (const char *p = parts[k]; *p && used + 1 < sizeof out; p++)
            out[used++] = *p;
    out[used] = '\0';
    memcpy(e->msg, out, sizeof out);
}

const char *qe_status_name(int code)
{
    switch (code) {
    case QE_OK: return "ok";
    case QE_EINVAL: return "invalid input";
    case QE_EIO: return "I/O error";
    case QE_ENOMEM: return "out of memory";
    case QE_ENET: return "network error";
    case QE_ESERVER: return "server error";
    case QE_ESTATE: return "inconsistent state";
    case QE_ELIMIT: return "limit exceeded";
    case QE_EINTR: return "interrupted";
    default: return "unknown error";
    }
}
