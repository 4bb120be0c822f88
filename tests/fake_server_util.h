/* fake_server_util: start and stop tests/fake_server from a C test.
 *
 * Header-only so any tests/test_*.c can include it ("fake_server_util.h",
 * tests/ is on the include path). fs_start forks/execs
 * $QEVAL_BUILD/tests/fake_server --port 0 <args...>, waits (<= 10 s) for its
 * "PORT <n>" line and fills base_url; fs_stop sends SIGTERM and reaps it
 * (call it in every test, also after the server crashed on purpose). The
 * server gets SIGKILL if the test process dies first (PR_SET_PDEATHSIG). */
#ifndef QE_FAKE_SERVER_UTIL_H
#define QE_FAKE_SERVER_UTIL_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

struct fs {
    pid_t pid;
    int port;
    int out_fd;          /* server's stdout (kept open until fs_stop) */
    char base_url[64];   /* http://127.0.0.1:<port> */
};

/* fs_start on a given port ("0": any free one), e.g. to bring a server
 * back on the address it had. */
static inline int fs_start_port(struct fs *s, const char *port, const char *const *args);

/* args: NULL-terminated extra arguments. Returns 0 or -1 (message on stderr). */
static inline int fs_start(struct fs *s, const char *const *args)
{
    return fs_start_port(s, "0", args);
}

static inline int fs_start_port(struct fs *s, const char *port, const char *const *args)
{
    const char *build = getenv("QEVAL_BUILD");
    char exe[4096];
    snprintf(exe, sizeof exe, "%s/tests/fake_server", build ? build : "build");
    memset(s, 0, sizeof *s);
    int p[2];
    if (pipe(p) != 0)
        return -1;
    const char *argv[64];
    int n = 0;
    argv[n++] = exe;
    argv[n++] = "--port";
    argv[n++] = port;
    for (int i = 0; args && args[i] && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* never outlive the test, even when an assertion aborts it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(127);
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(exe, (char *const *)argv);
        fprintf(stderr, "fs_start: exec %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    s->pid = pid;
    s->out_fd = p[0];
    char line[256];
    size_t len = 0;
    for (;;) {
        struct pollfd pfd = {p[0], POLLIN, 0};
        if (poll(&pfd, 1, 10000) <= 0)
            break;
        ssize_t r = read(p[0], line + len, sizeof line - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        line[len] = 0;
        char *at = strstr(line, "PORT ");
        if (at && strchr(at, '\n')) {
            s->port = atoi(at + 5);
            snprintf(s->base_url, sizeof s->base_url, "http://127.0.0.1:%d", s->port);
            return 0;
        }
        if (len >= sizeof line - 1)
            break;
    }
    fprintf(stderr, "fs_start: %s printed no PORT line\n", exe);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(p[0]);
    s->pid = 0;
    return -1;
}

/* Stops the server; returns its wait status (or -1). */
static inline int fs_stop(struct fs *s)
{
    int st = -1;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, &st, 0);
        s->pid = 0;
    }
    if (s->out_fd > 0) {
        close(s->out_fd);
        s->out_fd = 0;
    }
    return st;
}

#endif
