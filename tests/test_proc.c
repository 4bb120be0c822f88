/* Tests for proc: the spawn gate (nothing runs before the parent has
 * recorded the process group; a refusal or a dead parent means the program
 * never runs), qe_proc_group_gone (zombies are gone) and qe_proc_cmdline. Real processes:
 * /bin/sh and sleep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

static char g_mark[256];

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) && errno == EINTR) {
    }
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_mark, sizeof g_mark, "%s/qe_proc_mark_%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    unlink(g_mark);
    return 0;
}

static bool exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* sh -c 'echo > MARK' in its own group, gated by fn */
static pid_t spawn_marker(qe_proc_gate_fn fn, void *ud)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "echo ran > '%s'", g_mark);
    char *argv[] = {"sh", "-c", cmd, NULL};
    extern char **environ;
    int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert_true(nul >= 0);
    pid_t pid = qe_proc_spawn_group("/bin/sh", argv, environ, -1, nul, "exec failed\n", fn, ud);
    close(nul);
    return pid;
}

struct seen {
    pid_t pgid;
    bool mark_before; /* the program had run when the gate was called */
};

static int gate_ok(void *ud, pid_t pgid)
{
    struct seen *s = ud;
    s->pgid = pgid;
    sleep_ms(200); /* a program that did not wait would have written by now */
    s->mark_before = exists(g_mark);
    return 0;
}

static int gate_no(void *ud, pid_t pgid)
{
    struct seen *s = ud;
    s->pgid = pgid;
    return -1;
}

static void test_gate_runs_after_record(void **state)
{
    (void)state;
    struct seen s = {0, true};
    pid_t pid = spawn_marker(gate_ok, &s);
    assert_true(pid > 0);
    assert_int_equal(s.pgid, pid);
    assert_false(s.mark_before);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(exists(g_mark));
    unlink(g_mark);
}

static void test_gate_refused_never_runs(void **state)
{
    (void)state;
    struct seen s = {0, false};
    errno = 0;
    pid_t pid = spawn_marker(gate_no, &s);
    assert_int_equal(pid, -1);
    assert_int_equal(errno, ECANCELED);
    assert_true(s.pgid > 1);
    sleep_ms(100);
    assert_false(exists(g_mark));
    /* the child was reaped by the spawn: nothing of it is left */
    assert_true(kill(s.pgid, 0) != 0);
}

/* A parent killed between fork and its gate's answer: the child must not
 * run the program. The parent here is a forked copy of this test that
 * spawns with a gate that never returns, and is SIGKILLed. */
static int gate_hang(void *ud, pid_t pgid)
{
    int fd = *(int *)ud;
    if (write(fd, &pgid, sizeof pgid) != sizeof pgid)
        _exit(3);
    for (;;)
        pause();
    return 0;
}

static void test_gate_parent_killed(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t parent = fork();
    assert_true(parent >= 0);
    if (parent == 0) {
        close(p[0]);
        spawn_marker(gate_hang, &p[1]);
        _exit(4);
    }
    close(p[1]);
    pid_t child = 0;
    assert_int_equal(read(p[0], &child, sizeof child), (ssize_t)sizeof child);
    close(p[0]);
    kill(parent, SIGKILL);
    waitpid(parent, NULL, 0);
    /* the child sees EOF on the gate and exits without exec'ing */
    for (int i = 0; i < 100 && !qe_proc_group_gone(child); i++)
        sleep_ms(20);
    assert_true(qe_proc_group_gone(child));
    sleep_ms(100);
    assert_false(exists(g_mark));
}

static void test_group_gone_zombie(void **state)
{
    (void)state;
    char *argv[] = {"sleep", "30", NULL};
    extern char **environ;
    pid_t pid = qe_proc_spawn_group("/bin/sleep", argv, environ, -1, 2, "exec failed\n", NULL, NULL);
    if (pid < 0) { /* no /bin/sleep: try the usr path */
        pid = qe_proc_spawn_group("/usr/bin/sleep", argv, environ, -1, 2, "exec failed\n", NULL, NULL);
    }
    assert_true(pid > 0);
    sleep_ms(50);
    assert_false(qe_proc_group_gone(pid));
    char cmd[64];
    assert_true(qe_proc_cmdline(pid, cmd, sizeof cmd) > 0);
    assert_non_null(strstr(cmd, "sleep 30"));
    kill(-pid, SIGKILL);
    /* not reaped yet: a zombie, still a member for kill(-pid, 0) ... */
    for (int i = 0; i < 100 && !qe_proc_group_gone(pid); i++)
        sleep_ms(10);
    assert_int_equal(kill(-pid, 0), 0);
    /* ... but gone for qe_proc_group_gone, and without a command line */
    assert_true(qe_proc_group_gone(pid));
    assert_int_equal(qe_proc_cmdline(pid, cmd, sizeof cmd), 0);
    assert_string_equal(cmd, "");
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_true(qe_proc_group_gone(pid));
    assert_int_equal(qe_proc_cmdline(pid, cmd, sizeof cmd), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_gate_runs_after_record, setup),
        cmocka_unit_test_setup(test_gate_refused_never_runs, setup),
        cmocka_unit_test_setup(test_gate_parent_killed, setup),
        cmocka_unit_test_setup(test_group_gone_zombie, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
