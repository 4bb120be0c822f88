/* err: how library functions report failure.
 *
 * Library functions never print and never exit: they return a negative
 * qe_status and, when given a qe_err, fill it with a one-line message that
 * names the file/line/field or server reply at fault. Only the CLI decides
 * what to print and which exit code to use (src/cli/cli.h). */
#ifndef QE_ERR_H
#define QE_ERR_H

enum qe_status {
    QE_OK = 0,
    QE_EINVAL = -1,   /* malformed input: file, flag, plan, server reply */
    QE_EIO = -2,      /* filesystem: open/read/write/fsync failed, disk full */
    QE_ENOMEM = -3,   /* allocation failed */
    QE_ENET = -4,     /* connection, timeout, HTTP-level failure */
    QE_ESERVER = -5,  /* the server answered, but with an error */
    QE_ESTATE = -6,   /* stored state is inconsistent or from another config */
    QE_ELIMIT = -7,   /* a bound was hit (size, depth, work budget) */
    QE_EINTR = -8,    /* interrupted by the user (SIGINT/SIGTERM) */
};

typedef struct {
    int code;       /* the qe_status last set, 0 if none */
    char msg[1024]; /* NUL-terminated one-line message */
} qe_err;

/* Formats msg, stores code, returns code (so `return qe_err_set(...)`).
 * e may be NULL: then only the code is returned. */
int qe_err_set(qe_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prepends "prefix: " to an existing message (e.g. a file name). */
void qe_err_prefix(qe_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *qe_status_name(int code);

#endif
