/* proc: process plumbing shared by engine.c and lmeval_engine.c
 * (see proc.h). */
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

void qe_proc_strv_push(qe_proc_strv *s, const char *x)
{
    if (s->oom)
        return;
    if (s->n + 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        char **nv = realloc(s->v, nc * sizeof *nv);
        if (!nv) {
            s->oom = true;
            return;
        }
        s->v = nv;
        s->cap = nc;
    }
    if (!(s->v[s->n] = strdup(x))) {
        s->oom = true;
        return;
    }
    s->v[++s->n] = NULL;
}

void qe_proc_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static bool names_var(const char *entry, const char *key)
{
    size_t kl = strlen(key);
    return !strncmp(entry, key, kl) && entry[kl] == '=';
}

char **qe_proc_envp_merge(const qe_plan_kv *env, size_t n_env)
{
    qe_proc_strv s = {0};
    for (char **e = environ; e && *e; e++) {
        bool overridden = false;
        for (size_t i = 0; i < n_env; i++)
            if (names_var(*e, env[i].key))
                overridden = true;
        if (!overridden)
            qe_proc_strv_push(&s, *e);
    }
    qe_buf b = QE_BUF_INIT;
    for (size_t i = 0; i < n_env; i++) {
        qe_buf_reset(&b);
        qe_buf_printf(&b, "%s=%s", env[i].key, env[i].value);
        qe_proc_strv_push(&s, qe_buf_str(&b));
    }
    qe_buf_free(&b);
    if (!s.v && !s.oom) {
        s.v = calloc(1, sizeof *s.v);
        s.oom = !s.v;
    }
    if (s.oom) {
        qe_proc_strv_free(s.v);
        return NULL;
    }
    return s.v;
}

const char *qe_proc_envp_get(char *const *envp, const char *key)
{
    for (char *const *e = envp; *e; e++)
        if (names_var(*e, key))
            return *e + strlen(key) + 1;
    return NULL;
}

void qe_proc_shell_quote(qe_buf *b, const char *s)
{
    bool plain = *s != '\0';
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("-_./:=,@%+", *c)))
            plain = false;
    if (plain) {
        qe_buf_puts(b, s);
        return;
    }
    qe_buf_putc(b, '\'');
    for (const char *c = s; *c; c++) {
        if (*c == '\'')
            qe_buf_puts(b, "'\\''");
        else
            qe_buf_putc(b, *c);
    }
    qe_buf_putc(b, '\'');
}

int qe_proc_open_new_log(const char *path, int max_suffix, int extra_flags, char **actual)
{
    qe_buf b = QE_BUF_INIT;
    for (int i = 0; i <= max_suffix; i++) {
        qe_buf_reset(&b);
        if (i ? qe_buf_printf(&b, "%s.%d", path, i) : qe_buf_puts(&b, path))
            break;
        int fd = open(qe_buf_str(&b), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | extra_flags, 0644);
        if (fd >= 0) {
            *actual = qe_buf_detach(&b);
            return fd;
        }
        if (errno != EEXIST)
            break;
    }
    qe_buf_free(&b);
    return -1;
}

void qe_proc_fmt_double(char *out, size_t n, double v)
{
    snprintf(out, n, "%.2f", v);
    if (strtod(out, NULL) != v)
        snprintf(out, n, "%.17g", v);
}

void qe_proc_log_cmdline(int fd, char *const *argv)
{
    qe_buf h = QE_BUF_INIT;
    qe_buf_puts(&h, "# qeval: starting:");
    for (size_t i = 0; argv[i]; i++) {
        qe_buf_putc(&h, ' ');
        qe_proc_shell_quote(&h, argv[i]);
    }
    qe_buf_putc(&h, '\n');
    if (h.data && write(fd, h.data, h.len) < 0) {
        /* the log is best effort; the child writes its own lines */
    }
    qe_buf_free(&h);
}

pid_t qe_proc_spawn_group(const char *path, char *const *argv, char *const *envp, int in_fd, int out_fd,
                          const char *exec_fail_msg, qe_proc_gate_fn gate, void *gate_ud)
{
    int g[2] = {-1, -1};
    if (gate && pipe2(g, O_CLOEXEC))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        /* child: only async-signal-safe calls from here on */
        setpgid(0, 0);
        if (gate) {
            close(g[1]);
            char go = 0;
            ssize_t r;
            do
                r = read(g[0], &go, 1);
            while (r < 0 && errno == EINTR);
            if (r != 1) /* the gate said no, or the parent is gone */
                _exit(125);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (in_fd >= 0)
            dup2(in_fd, 0);
        dup2(out_fd, 1);
        dup2(out_fd, 2);
        execve(path, argv, envp);
        if (write(2, exec_fail_msg, strlen(exec_fail_msg)) < 0) {
        }
        _exit(127);
    }
    int saved = errno;
    if (pid > 0)
        setpgid(pid, pid); /* also from the parent: no race with a first kill(-pgid) */
    if (gate) {
        close(g[0]);
        bool go = pid > 0 && gate(gate_ud, pid) == 0;
        if (go && write(g[1], "g", 1) != 1)
            go = false;
        close(g[1]);
        if (pid > 0 && !go) {
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
            pid = -1;
            saved = ECANCELED;
        }
    }
    errno = saved;
    return pid;
}

/* The state letter and process group of /proc/<pid>/stat ("pid (comm) S
 * ppid pgrp ..."; comm may hold spaces and ')'). 0 when unreadable. */
static int stat_of(const char *pid, char *state, long *pgrp)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    long ppid;
    return rp && sscanf(rp + 1, " %c %ld %ld", state, &ppid, pgrp) == 3;
}

int qe_proc_cmdline(pid_t pid, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    if (cap)
        buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || cap == 0) {
        if (fd >= 0)
            close(fd);
        return fd < 0 ? -1 : 0;
    }
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        n = 0;
    for (ssize_t i = 0; i < n; i++)
        if (!buf[i])
            buf[i] = ' ';
    buf[n] = '\0';
    return (int)n;
}

bool qe_proc_group_gone(pid_t pgid)
{
    if (kill(-pgid, 0) && errno == ESRCH)
        return true;
    DIR *d = opendir("/proc");
    if (!d)
        return false;
    bool live = false;
    struct dirent *de;
    while (!live && (de = readdir(d))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        char st;
        long pg;
        if (stat_of(de->d_name, &st, &pg) && pg == (long)pgid && st != 'Z' && st != 'X')
            live = true;
    }
    closedir(d);
    return !live;
}

double qe_proc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void qe_proc_sleep(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}
