/* cli_run: test helper that runs a program (normally $QEVAL_BUILD/qeval)
 * with an argv, no shell in between, and captures its exit status, stdout
 * and stderr; optionally feeds it stdin text and adds environment
 * variables. Shared by every test of a qeval command. Test-only. */
#ifndef QE_TEST_CLI_RUN_H
#define QE_TEST_CLI_RUN_H

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

typedef struct {
    int status; /* exit code, or -1 when killed by a signal */
    qe_buf out, err;
} cli_result;

typedef struct {
    const char *stdin_text;  /* fed to the program; NULL = /dev/null */
    const char *const *env;  /* "NAME=value" additions, NULL-terminated; or NULL */
    int timeout_s;           /* > 0: run in its own process group, kill the
                                group after this long (status -2) */
} cli_opts;

static inline void cli_slurp(const char *path, qe_buf *b)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        qe_buf_append(b, buf, n);
    fclose(f);
}

/* Temp file holding text (for stdin); returns an fd at offset 0, or -1. */
static inline int cli_text_fd(const char *text)
{
    char inf[] = "/tmp/qeval-cli-in-XXXXXX";
    int fd = mkstemp(inf);
    if (fd < 0)
        return -1;
    unlink(inf);
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

/* argv[0] is the program path; argv is NULL-terminated; o may be NULL.
 * Fills *r (free with cli_done). Returns 0, or -1 when the program could not
 * be started. */
static inline int cli_run_opts(char *const *argv, const cli_opts *o, cli_result *r)
{
    memset(r, 0, sizeof *r);
    char outf[] = "/tmp/qeval-cli-out-XXXXXX", errf[] = "/tmp/qeval-cli-err-XXXXXX";
    int fo = mkstemp(outf), fe = mkstemp(errf);
    int fi = o && o->stdin_text ? cli_text_fd(o->stdin_text) : open("/dev/null", O_RDONLY);
    if (fo < 0 || fe < 0 || fi < 0) {
        if (fo >= 0)
            close(fo), unlink(outf);
        if (fe >= 0)
            close(fe), unlink(errf);
        if (fi >= 0)
            close(fi);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    int limit = o ? o->timeout_s : 0;
    if (pid == 0) {
        if (limit > 0)
            setpgid(0, 0);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        for (size_t i = 0; o && o->env && o->env[i]; i++)
            putenv((char *)o->env[i]); /* the child's own copy of environ */
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0, done = 1;
    if (pid > 0 && limit > 0) {
        setpgid(pid, pid);
        done = 0;
        for (int i = 0; i < limit * 20 && !done; i++) {
            if (waitpid(pid, &st, WNOHANG) == pid)
                done = 1;
            else
                nanosleep(&(struct timespec){0, 50000000}, NULL);
        }
        if (!done) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        kill(-pid, SIGKILL); /* helpers it left behind (browsers do), if any */
    } else if (pid > 0) {
        waitpid(pid, &st, 0);
    }
    close(fi);
    close(fo);
    close(fe);
    r->status = pid < 0 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
    if (!done)
        r->status = -2;
    cli_slurp(outf, &r->out);
    cli_slurp(errf, &r->err);
    unlink(outf);
    unlink(errf);
    return pid < 0 ? -1 : 0;
}

static inline int cli_run(char *const *argv, cli_result *r)
{
    return cli_run_opts(argv, NULL, r);
}

static inline void cli_done(cli_result *r)
{
    qe_buf_free(&r->out);
    qe_buf_free(&r->err);
}

/* $QEVAL_BUILD/qeval, or build/qeval. Static storage. */
static inline const char *cli_qeval(void)
{
    static char path[4096];
    const char *b = getenv("QEVAL_BUILD");
    snprintf(path, sizeof path, "%s/qeval", b && *b ? b : "build");
    return path;
}

/* Runs qeval with args (NULL-terminated, at most 62), o may be NULL. */
static inline int cli_qeval_opts(const char *const *args, const cli_opts *o, cli_result *r)
{
    const char *argv[64] = {cli_qeval()};
    size_t n = 1;
    for (; args[n - 1]; n++) {
        if (n + 1 >= sizeof argv / sizeof *argv) {
            memset(r, 0, sizeof *r);
            return -1;
        }
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    return cli_run_opts((char *const *)argv, o, r);
}

/* CLI_QEVAL(&r, "summarize", "--format", "json", path): runs qeval with
 * those arguments; evaluates to 0, or -1 when it could not be started. */
#define CLI_QEVAL(r, ...) cli_qeval_opts((const char *const[]){__VA_ARGS__, NULL}, NULL, (r))

#endif
