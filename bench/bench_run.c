/* bench_run: requests/s that a whole `qeval run` sustains against
 * tests/fake_server (zero latency) at concurrency 1, 8, 64, 256, as a ratio to
 * the same server's capacity measured in the same run by a plain load
 * generator (wrk when installed, else the qe_client library alone).
 *
 * The qeval figure is end to end: process start, GET /v1/models, the store
 * (group commit, see docs/run.md), scoring and writing the samples and
 * results files are all inside the measured wall time; requests/s =
 * answers / wall. Also printed: qeval's CPU time per request (user+sys of
 * the child), the number that says whether qeval could ever keep a
 * 32-way vLLM waiting.
 *
 * Two layouts, because a zero-latency server makes every number a CPU
 * budget and this may be a 2-core machine:
 *   pinned  the server (2 threads) on one CPU, the load generator (wrk -t1,
 *           or qeval) on another. Capacity is what the server's CPU can
 *           answer; the ratio says whether qeval keeps that server busy
 *           when it has a core of its own, as it has beside a real vLLM.
 *   shared  nothing pinned: server (4 threads), wrk -t2 or qeval compete for
 *           all CPUs. The ratio then mixes qeval's cost with the server's.
 * Each point runs the store on /tmp (fsync per commit) and on /dev/shm
 * (fsync free), to separate qeval's CPU from the disk's fsync latency.
 *
 * Two rates per point: e2e = answers / wall time of one run of n answers;
 * sustained = the marginal rate between that run and one of 5n answers,
 * (5n - n) / (t(5n) - t(n)): what qeval keeps up once running, without the
 * costs a run pays once (exec, dynamic linking, /v1/models, opening the
 * store: ~15 ms). cpu/req is marginal the same way. Ratios are to the
 * capacity at that concurrency. Every number is the best of 3 rounds
 * (lowest for CPU).
 *
 * Usage: bench_run [repeats (default 20): runs of 500 x repeats and 5 times that]
 * Binaries: $QEVAL_BUILD/{qeval,tests/fake_server}, else next to this one. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../tests/fake_server_util.h"
#include "client.h"

static char g_build[PATH_MAX];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double children_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* In a child before exec: run on cpu only (cpu < 0: anywhere allowed). */
static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set))
        _exit(126);
}

/* The fake server, its threads on cpu (< 0: anywhere): the affinity is set
 * on this process around fs_start, and the child inherits it. */
static int start_server(struct fs *srv, int cpu, const char *threads)
{
    cpu_set_t old;
    bool pinned = false;
    if (cpu >= 0 && sched_getaffinity(0, sizeof old, &old) == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        pinned = sched_setaffinity(0, sizeof set, &set) == 0;
    }
    const char *args[] = {"--model", "bench", "--threads", threads, "--default-answer",
                          "The answer is $\\boxed{5}$.", NULL};
    int rc = fs_start(srv, args);
    if (pinned)
        sched_setaffinity(0, sizeof old, &old);
    return rc;
}

static const char BODY[] =
    "{\"model\":\"bench\",\"prompt\":\"Problem: How many vertical asymptotes does the graph "
    "of $y=\\\\frac{2}{x^2+x-6}$ have?\\nAnswer:\",\"max_tokens\":256,\"temperature\":0,"
    "\"stop\":[\"Problem:\"],\"seed\":1234}";

/* Server capacity through wrk (threads 1 when pinned to a cpu or at
 * concurrency 1, else 2); -1 when wrk is missing or failed. */
static double wrk_rps(const char *base, int conc, int secs, int cpu)
{
    char lua[] = "/tmp/bench_run_lua_XXXXXX";
    int fd = mkstemp(lua);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    fprintf(f, "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
               "wrk.body = [==[%s]==]\n", BODY);
    fclose(f);
    char t[8], c[16], d[16], url[128];
    snprintf(t, sizeof t, "-t%d", conc < 2 || cpu >= 0 ? 1 : 2);
    snprintf(c, sizeof c, "-c%d", conc);
    snprintf(d, sizeof d, "-d%ds", secs);
    snprintf(url, sizeof url, "%s/v1/completions", base);
    int p[2];
    double rps = -1;
    if (pipe(p) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            dup2(p[1], 1);
            dup2(p[1], 2);
            close(p[0]);
            close(p[1]);
            pin(cpu);
            execlp("wrk", "wrk", t, c, d, "-s", lua, url, (char *)NULL);
            _exit(127);
        }
        close(p[1]);
        FILE *out = fdopen(p[0], "r");
        char line[512];
        while (out && fgets(line, sizeof line, out))
            if (!strncmp(line, "Requests/sec:", 13))
                rps = atof(line + 13);
        if (out)
            fclose(out);
        else
            close(p[0]);
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    unlink(lua);
    return rps;
}

/* Fallback capacity: the qe_client library alone, n requests, this process
 * pinned to cpu for the measurement. */
static int count_cb(void *ud, const qe_result *r)
{
    (void)r;
    (*(long *)ud)++;
    return 0;
}

static double client_rps(const char *base, int conc, long n, int cpu)
{
    cpu_set_t old;
    bool pinned = cpu >= 0 && sched_getaffinity(0, sizeof old, &old) == 0;
    if (pinned) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        pinned = sched_setaffinity(0, sizeof set, &set) == 0;
    }
    qe_client_opts o;
    qe_client_opts_default(&o);
    o.base_url = base;
    o.num_concurrent = conc;
    qe_client *cl;
    qe_err e = {0, ""};
    double rps = -1;
    if (qe_client_new(&o, &cl, &e) == 0) {
        for (long i = 0; i < n; i++)
            qe_client_add(cl, (uint64_t)i, "/v1/completions", BODY, &e);
        long done = 0;
        double t0 = now_s();
        qe_client_run(cl, count_cb, &done, NULL, &e);
        rps = done / (now_s() - t0);
        qe_client_free(cl);
    }
    if (pinned)
        sched_setaffinity(0, sizeof old, &old);
    return rps;
}

/* One whole qeval run (on cpu, or anywhere when cpu < 0); returns its wall
 * seconds (-1 on failure) and *cpu_s, qeval's user+sys seconds. */
static double qeval_run(const char *tmpdir, const char *base, int conc, int repeats, int chat,
                        int cpu, double *cpu_s)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/bench_run_out_XXXXXX", tmpdir);
    if (!mkdtemp(dir))
        return -1;
    char exe[PATH_MAX + 16], conc_s[16], rep_s[16];
    snprintf(exe, sizeof exe, "%s/qeval", g_build);
    snprintf(conc_s, sizeof conc_s, "%d", conc);
    snprintf(rep_s, sizeof rep_s, "%d", repeats);
    double c0 = children_cpu(), t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        pin(cpu);
        /* --timeout 10: libmicrohttpd 0.9.75's epoll thread pool can lose a
         * wakeup with hundreds of connections (docs/client.md) and leave
         * requests unread; a stalled round then costs 10 s, not 10 minutes,
         * and best-of-3 drops it */
        execl(exe, exe, "run", "--base-url", base, "--model", "bench", "--tasks",
              "hendrycks_math500", "--repeats", rep_s, "--num-concurrent", conc_s, "--timeout", "10",
              "--output-path", dir, "--log-samples", chat ? "--apply-chat-template" : "--no-chat",
              (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    double dt = now_s() - t0, used = children_cpu() - c0;
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "qeval run failed (status %d)\n", st);
        return -1;
    }
    *cpu_s = used;
    return dt;
}

/* qeval at one point: end to end over n = 500 x repeats answers, and
 * sustained: the marginal rate between that run and one 5 times as long,
 * (5n - n) / (t5 - t1), which leaves out what a run pays once (process
 * start, /v1/models, opening the store) and keeps all per-answer work
 * (store, scoring, output files). */
typedef struct {
    double e2e, sustained; /* answers/s; -1 on failure */
    double cpu_us;         /* marginal CPU per answer */
    int stalls;            /* rounds whose short run took longer than the long one */
} point;

static point qeval_point(const char *tmpdir, const char *base, int conc, int repeats, int chat,
                         int cpu)
{
    point pt = {-1, -1, 0, 0};
    double c1 = 0, c5 = 0;
    double t1 = qeval_run(tmpdir, base, conc, repeats, chat, cpu, &c1);
    double t5 = qeval_run(tmpdir, base, conc, 5 * repeats, chat, cpu, &c5);
    if (t1 <= 0 || t5 <= 0)
        return pt;
    double n = 500.0 * repeats;
    pt.e2e = n / t1;
    if (t5 <= t1) { /* both runs answered everything, but the timing says nothing */
        pt.stalls = 1;
        return pt;
    }
    pt.sustained = 4 * n / (t5 - t1);
    pt.cpu_us = (c5 - c1) / (4 * n) * 1e6;
    return pt;
}

#define ROUNDS 3

static void best(point *b, point p)
{
    if (p.stalls) {
        /* the short run stalled (libmicrohttpd, see docs/run.md): both runs
         * answered everything, so the round is dropped, not the point */
        b->stalls++;
        return;
    }
    if (p.e2e < 0 || p.sustained < 0) { /* a failed run fails the point */
        b->e2e = b->sustained = -2;
        return;
    }
    if (b->e2e < -1)
        return;
    b->e2e = p.e2e > b->e2e ? p.e2e : b->e2e;
    b->sustained = p.sustained > b->sustained ? p.sustained : b->sustained;
    b->cpu_us = p.cpu_us < b->cpu_us ? p.cpu_us : b->cpu_us;
}

/* One table: a fresh server (on server_cpu, or unpinned when < 0), then
 * capacity and qeval at each concurrency. Returns 0, or 1 when a qeval run
 * failed. */
static int table(const char *title, int server_cpu, int gen_cpu, const char *threads,
                 int repeats, bool have_wrk, bool shm)
{
    struct fs srv;
    if (start_server(&srv, server_cpu, threads)) {
        fprintf(stderr, "bench_run: cannot start %s/tests/fake_server\n", g_build);
        return 1;
    }
    const char *base = srv.base_url;
    printf("\n%s\n", title);
    printf("%6s %9s | %-38s | %-38s\n", "", "", "store on /tmp (fsync per commit)",
           shm ? "store on /dev/shm (no fsync cost)" : "(no /dev/shm)");
    printf("%6s %9s | %8s %5s %8s %5s %7s | %8s %5s %8s %5s %7s\n", "conc", "capacity", "e2e",
           "ratio", "sustain", "ratio", "cpu/req", "e2e", "ratio", "sustain", "ratio", "cpu/req");
    const int concs[] = {1, 8, 64, 256};
    int rc = 0;
    for (size_t i = 0; i < 4; i++) {
        int c = concs[i];
        /* best of ROUNDS, capacity and qeval alike: on a shared machine
         * noise only ever slows a measurement down */
        double cap = 0;
        point d = {-1, -1, 1e9, 0}, m = {shm ? -1 : 0, shm ? -1 : 0, shm ? 1e9 : 0, 0};
        for (int r = 0; r < ROUNDS; r++) {
            double k = have_wrk ? wrk_rps(base, c, 2, gen_cpu)
                                : client_rps(base, c, 500L * repeats, gen_cpu);
            cap = k > cap ? k : cap;
            best(&d, qeval_point("/tmp", base, c, repeats, 0, gen_cpu));
            if (shm)
                best(&m, qeval_point("/dev/shm", base, c, repeats, 0, gen_cpu));
        }
        /* a point whose every round stalled stays at -1: no number */
        if (d.e2e < -1 || m.e2e < -1)
            rc = 1;
        printf("%6d %9.0f | %8.0f %5.2f %8.0f %5.2f %5.1fus | %8.0f %5.2f %8.0f %5.2f %5.1fus\n", c,
               cap, d.e2e, cap > 0 ? d.e2e / cap : 0, d.sustained, cap > 0 ? d.sustained / cap : 0,
               d.cpu_us, m.e2e, cap > 0 ? m.e2e / cap : 0, m.sustained,
               cap > 0 ? m.sustained / cap : 0, m.cpu_us);
        if (d.stalls || m.stalls)
            printf("%6s (conc %d: %d of %d rounds on /tmp and %d on /dev/shm dropped: the "
                   "%d-answer run took longer than the %d-answer one, a server stall)\n",
                   "", c, d.stalls, ROUNDS, m.stalls, 500 * repeats, 2500 * repeats);
        fflush(stdout);
    }
    /* chat mode adds the server-side prompt rendering (/tokenize + /detokenize per doc) */
    point ch = qeval_point(shm ? "/dev/shm" : "/tmp", base, 64, repeats, 1, gen_cpu);
    printf("chat mode, conc 64, store on %s (prompts rendered by the server first): %.0f e2e, "
           "%.0f sustained answers/s, %.1f us cpu/answer\n",
           shm ? "/dev/shm" : "/tmp", ch.e2e, ch.sustained, ch.cpu_us);
    if (ch.e2e < 0)
        rc = 1;
    fs_stop(&srv);
    return rc;
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 20;
    if (repeats < 1)
        repeats = 1;
    const char *b = getenv("QEVAL_BUILD");
    if (b) {
        snprintf(g_build, sizeof g_build, "%s", b);
    } else {
        char self[PATH_MAX];
        snprintf(self, sizeof self, "%s", argv[0]);
        snprintf(g_build, sizeof g_build, "%s/..", dirname(self));
        setenv("QEVAL_BUILD", g_build, 1); /* where fs_start finds tests/fake_server */
    }
    bool have_wrk = system("command -v wrk >/dev/null 2>&1") == 0;
    bool shm = access("/dev/shm", W_OK) == 0;
    printf("bench_run: qeval runs of %d and %d answers (hendrycks_math500 x %d and x %d, raw "
           "completions), capacity measured by %s\n",
           500 * repeats, 2500 * repeats, repeats, 5 * repeats,
           have_wrk ? "wrk" : "qe_client alone (no wrk)");
    /* the first two CPUs this process may use */
    int cpus[2] = {-1, -1}, ncpu = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int i = 0; i < CPU_SETSIZE && ncpu < 2; i++)
            if (CPU_ISSET(i, &set))
                cpus[ncpu++] = i;
    int rc = 0;
    if (ncpu == 2) {
        char title[160];
        snprintf(title, sizeof title,
                 "pinned: server (2 threads) on CPU %d; %s and qeval on CPU %d", cpus[0],
                 have_wrk ? "wrk -t1" : "qe_client", cpus[1]);
        rc |= table(title, cpus[0], cpus[1], "2", repeats, have_wrk, shm);
    } else {
        printf("\npinned: skipped (fewer than 2 CPUs allowed)\n");
    }
    rc |= table(have_wrk ? "shared: nothing pinned; server 4 threads, wrk -t2 (-t1 at conc 1)"
                         : "shared: nothing pinned; server 4 threads",
                -1, -1, "4", repeats, have_wrk, shm);
    return rc;
}
