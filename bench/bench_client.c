/* bench_client: requests/s the qe_client sustains against tests/fake_server
 * (zero latency) at concurrency 1, 8, 64, 256, as a ratio to the same
 * server's capacity measured in the same run by a plain load generator:
 * wrk when installed, else a minimal keep-alive raw-socket loop of our own.
 * Also prints the client's CPU time per request (user+sys of this process,
 * which does not include the server).
 *
 * Usage: bench_client [seconds-per-point (default 1)]
 * Finds the server at $QEVAL_BUILD/tests/fake_server, else next to this
 * binary (../tests/fake_server). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
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

static const char BODY[] =
    "{\"model\":\"fake-model\",\"messages\":[{\"role\":\"user\",\"content\":"
    "\"Problem: What is 1+1?\\nAnswer:\"}],\"max_tokens\":64,\"temperature\":0}";

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

/* wrk's requests/s; *cpu_us = wrk's CPU time per request. */
static double wrk_rps(const char *base, int conc, int secs, double *cpu_us)
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
    int threads = conc < 2 ? 1 : 2;
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

static int count_ok(void *ud, const qe_result *r)
{
    long *n = ud;
    if (r->ok)
        n[0]++;
    else
        n[1]++;
    return 0;
}

static int client_rps(const char *base, int conc, double secs, double *rps, double *cpu_us)
{
    /* calibrate: size the batch to last about secs seconds */
    long n = 200;
    for (int round = 0; round < 2; round++) {
        qe_client_opts o;
        qe_client_opts_default(&o);
        o.base_url = base;
        o.num_concurrent = conc;
        o.max_attempts = 1;
        qe_client *c;
        qe_err e = {0, ""};
        if (qe_client_new(&o, &c, &e)) {
            fprintf(stderr, "bench_client: %s\n", e.msg);
            return -1;
        }
        for (long i = 0; i < n; i++)
            qe_client_add(c, (uint64_t)i, "/chat/completions", BODY, &e);
        long cnt[2] = {0, 0};
        double c0 = cpu_s(), t0 = now_s();
        int rc = qe_client_run(c, count_ok, cnt, NULL, &e);
        double el = now_s() - t0, cpu = cpu_s() - c0;
        qe_client_free(c);
        if (rc || cnt[1]) {
            fprintf(stderr, "bench_client: %ld failed (%s)\n", cnt[1], e.msg);
            return -1;
        }
        *rps = (double)n / el;
        *cpu_us = cpu / (double)n * 1e6;
        n = (long)(*rps * secs);
        if (n < 200)
            n = 200;
    }
    return 0;
}

int main(int argc, char **argv)
{
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
    const char *args[] = {NULL};
    if (fs_start(&s, args) != 0)
        return 1;
    int wrk = have_wrk();
    printf("bench_client: qe_client vs %s against fake_server (zero latency), %d s per point\n",
           wrk ? "wrk" : "raw keep-alive loop", secs);
    printf("(the machine may be shared: each point is the best of %d alternating rounds)\n",
           ROUNDS);
    printf("%6s %12s %12s %12s %7s %12s %12s\n", "conc", "baseline/s", "raw-loop/s", "client/s",
           "ratio", "client-cpu", "wrk-cpu");
    int levels[] = {1, 8, 64, 256};
    int rc = 0;
    for (size_t i = 0; i < sizeof levels / sizeof *levels && !rc; i++) {
        int conc = levels[i];
        double best_base = 0, best_raw = 0, best_cli = 0, cli_cpu = 0, wrk_cpu = 0;
        for (int round = 0; round < ROUNDS; round++) {
            double raw = raw_rps(s.port, conc, secs), wcpu = 0;
            double base = wrk ? wrk_rps(s.base_url, conc, secs, &wcpu) : raw;
            double rps = 0, cpu_us = 0;
            if (client_rps(s.base_url, conc, secs, &rps, &cpu_us) != 0 || base <= 0) {
                rc = 1;
                break;
            }
            if (raw > best_raw)
                best_raw = raw;
            if (base > best_base) {
                best_base = base;
                wrk_cpu = wcpu;
            }
            if (rps > best_cli) {
                best_cli = rps;
                cli_cpu = cpu_us;
            }
        }
        if (rc)
            break;
        printf("%6d %12.0f %12.0f %12.0f %7.2f %9.1f us %9.1f us\n", conc, best_base, best_raw,
               best_cli, best_cli / best_base, cli_cpu, wrk_cpu);
        fflush(stdout);
    }
    fs_stop(&s);
    return rc;
}
