/* bench_client: requests/s the qe_client sustains against tests/fake_server
 * (zero latency, a fixed SERVER_THREADS threads) at concurrency 1, 8, 64,
 * 256, as a ratio to the same server's capacity measured in the same run by
 * plain load generators: wrk -t1 (one thread, like the client), wrk -t2, and
 * a minimal keep-alive raw-socket loop of our own (one thread). Capacity is
 * the best of those; every point is the best of ROUNDS rounds, and the order
 * of the four runs rotates each round so none always runs first or last.
 * The client runs twice per round, over its native HTTP/1.1 transport and
 * over libcurl (opts.force_curl), so both are measured in the same run.
 * Also prints each client's CPU time per request (user+sys of this process
 * during qe_client_run, which excludes queuing and the server) and wrk -t1's.
 * What the ratio means: docs/client.md, "Performance".
 *
 * Usage: bench_client [seconds-per-point (default 1)]
 *        bench_client --client-only CONC N [native|curl|both] [BASE_URL [MODEL]]
 *            just the client (for profilers: perf record / valgrind
 *            --tool=callgrind; prints CPU user/sys split); with BASE_URL it
 *            uses that server instead of starting one (e.g. a fake_server
 *            pinned to another CPU with taskset) and asks for MODEL (default
 *            fake-model, the name fake_server serves without --model)
 * Finds the server at $QEVAL_BUILD/tests/fake_server, else next to this
 * binary (../tests/fake_server). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "../tests/fake_server_util.h"

#define ROUNDS 3
#define SERVER_THREADS 2 /* fixed for every run; the VM has 2 cores */

#define BODY_FMT                                                                                   \
    "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":"                                \
    "\"Problem: What is 1+1?\\nAnswer:\"}],\"max_tokens\":64,\"temperature\":0}"
static char BODY[512];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- baseline 1: wrk ---- */

static int have_wrk(void)
{
    return system("command -v wrk >/dev/null 2>&1") == 0;
}

static double children_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* wrk's requests/s with `threads` threads; *cpu_us = wrk's CPU time per
 * request. */
static double wrk_rps(const char *base, int threads, int conc, int secs, double *cpu_us)
{
    char lua[] = "/tmp/bench_client_XXXXXX";
    int fd = mkstemp(lua);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    fprintf(f, "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
               "wrk.body = [[%s]]\n", BODY);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "wrk -t%d -c%d -d%ds -s %s %s/v1/chat/completions 2>&1", threads,
             conc, secs, lua, base);
    double c0 = children_cpu_s();
    FILE *p = popen(cmd, "r");
    double rps = -1;
    char line[512];
    while (p && fgets(line, sizeof line, p)) {
        if (!strncmp(line, "Requests/sec:", 13))
            rps = atof(line + 13);
        if (strstr(line, "Non-2xx"))
            fprintf(stderr, "wrk: %s", line);
    }
    if (p)
        pclose(p);
    unlink(lua);
    *cpu_us = rps > 0 ? (children_cpu_s() - c0) / (rps * secs) * 1e6 : 0;
    return rps;
}

/* ---- baseline 2: raw keep-alive sockets, one request in flight each ---- */

struct conn {
    int fd;
    char buf[8192];
    size_t len;
};

/* Returns 1 when buf holds a whole response (headers + Content-Length body). */
static int response_done(struct conn *c, size_t *used)
{
    c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = 0;
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return 0;
    char *cl = strcasestr(c->buf, "Content-Length:");
    size_t body = cl && cl < end ? (size_t)atol(cl + 15) : 0;
    size_t total = (size_t)(end + 4 - c->buf) + body;
    if (c->len < total)
        return 0;
    *used = total;
    return 1;
}

static double raw_rps(int port, int conc, int secs)
{
    char req[1024];
    int rl = snprintf(req, sizeof req,
                      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      strlen(BODY), BODY);
    struct conn *cs = calloc((size_t)conc, sizeof *cs);
    struct pollfd *pf = calloc((size_t)conc, sizeof *pf);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    for (int i = 0; i < conc; i++) {
        cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(cs[i].fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            return -1;
        if (write(cs[i].fd, req, (size_t)rl) != rl)
            return -1;
        pf[i].fd = cs[i].fd;
        pf[i].events = POLLIN;
    }
    long done = 0;
    double t0 = now_s(), t1 = t0 + secs;
    while (now_s() < t1) {
        if (poll(pf, (nfds_t)conc, 1000) <= 0)
            continue;
        for (int i = 0; i < conc; i++) {
            if (!(pf[i].revents & POLLIN))
                continue;
            struct conn *c = &cs[i];
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
            if (r <= 0)
                return -1;
            c->len += (size_t)r;
            size_t used;
            if (response_done(c, &used)) {
                memmove(c->buf, c->buf + used, c->len - used);
                c->len -= used;
                done++;
                if (write(c->fd, req, (size_t)rl) != rl)
                    return -1;
            }
        }
    }
    double el = now_s() - t0;
    for (int i = 0; i < conc; i++)
        close(cs[i].fd);
    free(cs);
    free(pf);
    return (double)done / el;
}

/* ---- the client under test ---- */

struct tally {
    long ok, failed;
    char first_error[256];
};

static int count_ok(void *ud, const qe_result *r)
{
    struct tally *t = ud;
    if (r->ok) {
        t->ok++;
    } else if (t->failed++ == 0) {
        snprintf(t->first_error, sizeof t->first_error, "%.200s", r->error);
    }
    return 0;
}

/* One qe_client run of n requests at concurrency conc, over libcurl when
 * curl is set, else the native transport. */
static int client_run_n(const char *base, int conc, long n, bool curl, double *rps,
                        double *cpu_us)
{
    qe_client_opts o;
    qe_client_opts_default(&o);
    o.base_url = base;
    o.force_curl = curl;
    o.num_concurrent = conc;
    o.max_attempts = 1;
    /* a zero-latency server answers in microseconds; fail loudly instead of
     * waiting the 10-minute default if it ever stalls */
    o.timeout_ms = 10000;
    qe_client *c;
    qe_err e = {0, ""};
    if (qe_client_new(&o, &c, &e)) {
        fprintf(stderr, "bench_client: %s\n", e.msg);
        return -1;
    }
    for (long i = 0; i < n; i++)
        qe_client_add(c, (uint64_t)i, "/chat/completions", BODY, &e);
    struct tally t = {0, 0, ""};
    double c0 = cpu_s(), t0 = now_s();
    int rc = qe_client_run(c, count_ok, &t, NULL, &e);
    double el = now_s() - t0, cpu = cpu_s() - c0;
    qe_client_free(c);
    if (rc || t.failed) {
        /* seen once: libmicrohttpd 0.9.75 (epoll + thread pool) stopped
         * reading its sockets at 256 connections until a signal woke it */
        fprintf(stderr, "bench_client: %ld of %ld requests failed (%s%s)\n", t.failed, n,
                rc ? e.msg : "", t.first_error);
        return -1;
    }
    *rps = (double)n / el;
    *cpu_us = cpu / (double)n * 1e6;
    return 0;
}

static int client_rps(const char *base, int conc, double secs, bool curl, double *rps,
                      double *cpu_us)
{
    /* calibrate on a short batch, then size the measured one to last about
     * secs seconds */
    long n = 200;
    for (int round = 0; round < 2; round++) {
        if (client_run_n(base, conc, n, curl, rps, cpu_us) != 0)
            return -1;
        n = (long)(*rps * secs);
        if (n < 200)
            n = 200;
    }
    return 0;
}

static void keep_best(double *best, double v)
{
    if (v > *best)
        *best = v;
}

int main(int argc, char **argv)
{
    snprintf(BODY, sizeof BODY, BODY_FMT,
             argc > 6 && !strcmp(argv[1], "--client-only") ? argv[6] : "fake-model");
    int secs = argc > 1 ? atoi(argv[1]) : 1;
    if (secs < 1)
        secs = 1;
    if (!getenv("QEVAL_BUILD")) {
        char exe[PATH_MAX];
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (k > 0) {
            exe[k] = 0;
            char *d = dirname(dirname(exe));
            setenv("QEVAL_BUILD", d, 1);
        }
    }
    struct fs s;
    char thr[16];
    snprintf(thr, sizeof thr, "%d", SERVER_THREADS);
    const char *args[] = {"--threads", thr, NULL};
    bool own_server = !(argc > 5 && !strcmp(argv[1], "--client-only"));
    if (own_server && fs_start(&s, args) != 0)
        return 1;
    if (argc > 3 && !strcmp(argv[1], "--client-only")) {
        /* for profilers: just the client, CONC in flight, N requests */
        int conc = atoi(argv[2]);
        long n = atol(argv[3]);
        const char *which = argc > 4 ? argv[4] : "both";
        const char *base = own_server ? s.base_url : argv[5];
        int rc = 0;
        for (int k = 0; k < 2 && !rc; k++) {
            bool curl = k == 1;
            if (strcmp(which, "both") && strcmp(which, curl ? "curl" : "native"))
                continue;
            double rps = 0, cpu_us = 0;
            struct rusage r0, r1;
            getrusage(RUSAGE_SELF, &r0);
            rc = client_run_n(base, conc, n, curl, &rps, &cpu_us);
            getrusage(RUSAGE_SELF, &r1);
            double us = ((double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e6 +
                         (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec)) / (double)n;
            printf("client-only %-6s: conc %d, %ld requests, %.0f req/s, %.1f us CPU/request "
                   "(%.1f user, %.1f sys)\n", curl ? "curl" : "native", conc, n, rps, cpu_us, us,
                   cpu_us - us);
        }
        if (own_server)
            fs_stop(&s);
        return rc ? 1 : 0;
    }
    int wrk = have_wrk();
    printf("bench_client: qe_client (1 thread) against fake_server (zero latency, %d threads), "
           "%d s per point\n", SERVER_THREADS, secs);
    printf("baselines: %s; every point is the best of %d rounds, the order of the runs "
           "rotating each round\n",
           wrk ? "wrk -t1 (one thread, like the client), wrk -t2, raw loop (one thread)"
               : "raw keep-alive loop (wrk not installed; it stands in for capacity)",
           ROUNDS);
    printf("capacity = best of wrk -t2 / wrk -t1 / raw loop; ratio = client / capacity; "
           "ratio-t1 = client / wrk -t1; client = native transport, curl = the same client "
           "over libcurl; cpu = CPU per request\n");
    printf("%5s %10s %10s %10s %10s %10s %10s %6s %6s %8s %10s %10s %10s %9s\n", "conc",
           "capacity/s", "wrk-t2/s", "wrk-t1/s", "raw/s", "client/s", "curl/s", "ratio",
           "r-curl", "ratio-t1", "client-cpu", "curl-cpu", "wrk-t1-cpu", "cpu-gain");
    int levels[] = {1, 8, 64, 256};
    int rc = 0;
    for (size_t i = 0; i < sizeof levels / sizeof *levels && !rc; i++) {
        int conc = levels[i];
        double b_w2 = 0, b_w1 = 0, b_raw = 0, b_cli = 0, cli_cpu = 0, w1_cpu = 0;
        double b_curl = 0, curl_cpu = 0;
        for (int round = 0; round < ROUNDS && !rc; round++) {
            for (int step = 0; step < 5 && !rc; step++) {
                double v = 0, cpu = 0;
                switch ((step + round) % 5) {
                case 0:
                    if (wrk && conc >= 2) /* wrk needs connections >= threads */
                        keep_best(&b_w2, wrk_rps(s.base_url, 2, conc, secs, &cpu));
                    break;
                case 1:
                    if (wrk) {
                        v = wrk_rps(s.base_url, 1, conc, secs, &cpu);
                        if (v > b_w1) {
                            b_w1 = v;
                            w1_cpu = cpu;
                        }
                    }
                    break;
                case 2:
                    keep_best(&b_raw, raw_rps(s.port, conc, secs));
                    break;
                case 3:
                    if (client_rps(s.base_url, conc, secs, true, &v, &cpu) != 0)
                        rc = 1;
                    else if (v > b_curl) {
                        b_curl = v;
                        curl_cpu = cpu;
                    }
                    break;
                default:
                    if (client_rps(s.base_url, conc, secs, false, &v, &cpu) != 0)
                        rc = 1;
                    else if (v > b_cli) {
                        b_cli = v;
                        cli_cpu = cpu;
                    }
                    break;
                }
            }
        }
        double cap = b_w2 > b_w1 ? b_w2 : b_w1;
        if (b_raw > cap)
            cap = b_raw;
        if (rc || cap <= 0) {
            rc = 1;
            break;
        }
        printf("%5d %10.0f %10.0f %10.0f %10.0f %10.0f %10.0f %6.2f %6.2f %8.2f %7.1f us "
               "%7.1f us %7.1f us %8.2fx\n",
               conc, cap, b_w2, b_w1, b_raw, b_cli, b_curl, b_cli / cap, b_curl / cap,
               b_w1 > 0 ? b_cli / b_w1 : 0, cli_cpu, curl_cpu, w1_cpu,
               cli_cpu > 0 ? curl_cpu / cli_cpu : 0);
        fflush(stdout);
    }
    fs_stop(&s);
    return rc;
}
