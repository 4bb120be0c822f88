/* proc: process plumbing shared by the engines that spawn subprocesses
 * (engine.c for vllm serve, lmeval_engine.c for lm_eval): NULL-terminated
 * string vectors, environment merging, shell quoting for dry-run output,
 * never-reused log files and monotonic time helpers. */
#ifndef QE_PROC_H
#define QE_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "plan.h"

/* Growable NULL-terminated vector of owned strings. Start with {0}. After a
 * failed allocation oom is set and further pushes do nothing; the caller
 * checks oom once at the end. v (when non-NULL) is always NULL-terminated
 * and is freed with qe_proc_strv_free. */
typedef struct {
    char **v;
    size_t n, cap;
    bool oom;
} qe_proc_strv;

/* Appends a copy of x. */
void qe_proc_strv_push(qe_proc_strv *s, const char *x);

/* Frees a NULL-terminated vector and every string in it; NULL is a no-op. */
void qe_proc_strv_free(char **v);

/* The current environment with env[0..n_env) added, replacing any variable
 * of the same name. Returns a new vector (free with qe_proc_strv_free), or
 * NULL when out of memory. */
char **qe_proc_envp_merge(const qe_plan_kv *env, size_t n_env);

/* Value of key in an envp vector (borrowed from it), or NULL. */
const char *qe_proc_envp_get(char *const *envp, const char *key);

/* Appends s to b, single-quoted for POSIX sh unless it is non-empty and made
 * only of ASCII letters, digits and -_./:=,@%+ . */
void qe_proc_shell_quote(qe_buf *b, const char *s);

/* Creates a log file that did not exist: path, else path.1 .. path.max_suffix.
 * Opened O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC|extra_flags, mode 0644. Returns
 * the fd and sets *actual to the name used (caller frees), or -1 (errno set
 * by the failing open when it was not EEXIST). */
int qe_proc_open_new_log(const char *path, int max_suffix, int extra_flags, char **actual);

/* Formats a number for a command-line argument: "%.2f" (0.90, as people
 * write it) when that reads back as the same double, else "%.17g". */
void qe_proc_fmt_double(char *out, size_t n, double v);

/* Writes "# qeval: starting: <argv, shell-quoted>\n" to fd so a reader of
 * the log knows what ran. Best effort: write errors are ignored. */
void qe_proc_log_cmdline(int fd, char *const *argv);

/* Called in the parent between fork and the child's exec, with the new
 * process group; 0 lets the child exec, anything else makes it exit. */
typedef int (*qe_proc_gate_fn)(void *ud, pid_t pgid);

/* Forks a child in its own process group (pgid = its pid, set from both
 * sides so a kill(-pid) right after cannot miss it) with default signal
 * dispositions and an empty mask, stdin from in_fd (kept when < 0), stdout
 * and stderr to out_fd, and execve(path, argv, envp). If exec fails the
 * child writes exec_fail_msg (a static string) to stderr and exits 127.
 *
 * gate (may be NULL): the child waits, before exec, until gate(gate_ud,
 * pgid) has returned in the parent. If it returns non-zero, or the parent
 * dies first (a kill -9), the child exits without exec'ing: so what gate
 * records (e.g. the pgid, durably) always exists before the program runs.
 *
 * Returns the pid, or -1 with errno from fork (ECANCELED: the gate said
 * no; the child is reaped). Does not allocate after fork; the caller still
 * owns and closes its fds. */
pid_t qe_proc_spawn_group(const char *path, char *const *argv, char *const *envp, int in_fd, int out_fd,
                          const char *exec_fail_msg, qe_proc_gate_fn gate, void *gate_ud);

/* The command line of process pid, its arguments joined by spaces, in buf
 * (always NUL-terminated). Returns its length; 0 for a zombie or a kernel
 * thread (no command line), -1 when /proc has no such process. */
int qe_proc_cmdline(pid_t pid, char *buf, size_t cap);

/* Whether process group pgid has no process left that runs: zombies (dead,
 * waiting for a parent that may never reap them, as under a container's
 * PID 1 that does not reap) do not count. Scans /proc; without /proc, any
 * member at all counts (kill(-pgid, 0)). */
bool qe_proc_group_gone(pid_t pgid);

/* Seconds on the monotonic clock. */
double qe_proc_now(void);

/* Sleeps s seconds (resuming after signals); s <= 0 returns at once. */
void qe_proc_sleep(double s);

#endif
