/* Test helper for test_cmd_compare.c and test_report_browser.c: runs a
 * program with an argv (no shell) and captures its exit status, stdout and
 * stderr. Test-only. */
#ifndef QE_TEST_COMPARE_CLI_HELPER_H
#define QE_TEST_COMPARE_CLI_HELPER_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"

typedef struct {
    int status; /* exit code, or -1 when killed by a signal */
    qe_buf out, err;
} cli_result;

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

/* argv[0] is the program path; argv is NULL-terminated. Returns 0, or -1
 * when the program could not be started. */
static inline int cli_run(char *const *argv, cli_result *r)
{
    memset(r, 0, sizeof *r);
    char outf[] = "/tmp/qeval-cli-out-XXXXXX", errf[] = "/tmp/qeval-cli-err-XXXXXX";
    int fo = mkstemp(outf), fe = mkstemp(errf);
    if (fo < 0 || fe < 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        int dn = open("/dev/null", O_RDONLY);
        if (dn >= 0)
            dup2(dn, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    if (pid > 0)
        waitpid(pid, &st, 0);
    close(fo);
    close(fe);
    r->status = pid < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    cli_slurp(outf, &r->out);
    cli_slurp(errf, &r->err);
    unlink(outf);
    unlink(errf);
    return pid < 0 ? -1 : 0;
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

#endif
