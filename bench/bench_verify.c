/* bench_verify: pairs per second of the math verifier on the labeled corpus
 * (tests/cases/verify_*.jsonl), single core, median of several runs, against
 * a baseline measured in the same run: plain strcmp over the same pairs.
 * Also reports the slowest single pair (the "never hangs" bound).
 * Run from the repository root: build/bench/bench_verify [RUNS]. */
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "verify.h"

struct pair {
    char *gold, *pred;
    int extract;
    int parsed; /* not decided by the formatting-insensitive text check */
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    if (runs < 1 || runs > 99)
        runs = 7;
    glob_t g;
    if (glob("tests/cases/verify_*.jsonl", 0, NULL, &g) || g.gl_pathc == 0) {
        fprintf(stderr, "bench_verify: no tests/cases/verify_*.jsonl (run from the repo root)\n");
        return 1;
    }
    size_t n = 0, cap = 0;
    struct pair *P = NULL;
    for (size_t f = 0; f < g.gl_pathc; f++) {
        FILE *in = fopen(g.gl_pathv[f], "r");
        if (!in)
            continue;
        char *line = NULL;
        size_t lc = 0;
        while (getline(&line, &lc, in) >= 0) {
            json_t *d = json_loads(line, 0, NULL);
            if (!d)
                continue;
            const char *gold = json_string_value(json_object_get(d, "gold"));
            const char *pred = json_string_value(json_object_get(d, "pred"));
            if (gold && pred) {
                if (n == cap) {
                    cap = cap ? 2 * cap : 1024;
                    P = realloc(P, cap * sizeof *P);
                    if (!P)
                        return 1;
                }
                P[n].gold = strdup(gold);
                P[n].pred = strdup(pred);
                P[n].extract = json_is_true(json_object_get(d, "extract"));
                n++;
            }
            json_decref(d);
        }
        free(line);
        fclose(in);
    }
    globfree(&g);
    qe_verify_opts o;
    qe_verify_opts_init(&o);
    o.scratch = qe_verify_scratch_new();
    o.no_canon = 1;
    double *tv = calloc((size_t)runs, sizeof *tv), *tb = calloc((size_t)runs, sizeof *tb);
    double worst = 0;
    size_t nparsed = 0;
    double *tp = calloc((size_t)runs, sizeof *tp);
    size_t worst_i = 0;
    long sink = 0, counts[3] = {0, 0, 0};
    qe_verify_result r;
    for (size_t i = 0; i < n; i++) /* warm the scratch pools */
        P[i].extract ? qe_verify_response(P[i].gold, P[i].pred, &o, &r) : qe_verify_pair(P[i].gold, P[i].pred, &o, &r);
    /* pass 1: time every pair on its own (slowest pair, 99.9th percentile) */
    double *each = calloc(n, sizeof *each);
    for (size_t i = 0; i < n; i++) {
        double a = now();
        int v;
        if (P[i].extract)
            v = qe_verify_response(P[i].gold, P[i].pred, &o, &r);
        else {
            qe_verify_pair(P[i].gold, P[i].pred, &o, &r);
            v = r.verdict;
        }
        each[i] = now() - a;
        if (each[i] > worst) {
            worst = each[i];
            worst_i = i;
        }
        counts[v + 1]++;
        P[i].parsed = strncmp(r.reason, "identical after", 15) != 0;
        nparsed += P[i].parsed;
    }
    /* pass 2: whole-corpus throughput, baseline and verifier alternating */
    int (*volatile cmpfn)(const char *, const char *) = strcmp;
    for (int k = 0; k < runs; k++) {
        double t0 = now();
        for (size_t i = 0; i < n; i++)
            sink += cmpfn(P[i].gold, P[i].pred) == 0;
        tb[k] = now() - t0;
        t0 = now();
        for (size_t i = 0; i < n; i++) {
            if (P[i].extract)
                qe_verify_response(P[i].gold, P[i].pred, &o, &r);
            else
                qe_verify_pair(P[i].gold, P[i].pred, &o, &r);
        }
        tv[k] = now() - t0;
        t0 = now();
        for (size_t i = 0; i < n; i++) {
            if (!P[i].parsed)
                continue;
            if (P[i].extract)
                qe_verify_response(P[i].gold, P[i].pred, &o, &r);
            else
                qe_verify_pair(P[i].gold, P[i].pred, &o, &r);
        }
        tp[k] = now() - t0;
    }
    qsort(tp, (size_t)runs, sizeof *tp, cmp_double);
    qsort(tv, (size_t)runs, sizeof *tv, cmp_double);
    qsort(tb, (size_t)runs, sizeof *tb, cmp_double);
    qsort(each, n, sizeof *each, cmp_double);
    int valid = runs;
    double mv = tv[runs / 2], mb = tb[runs / 2];
    printf("pairs: %zu (true %ld, false %ld, undecided %ld)\n", n, counts[2], counts[1], counts[0]);
    printf("verifier: %.0f pairs/s (median of %d runs, %.2f us/pair; best run %.0f pairs/s)\n", (double)n / mv, valid,
           1e6 * mv / (double)n, (double)n / tv[0]);
    printf("verifier, only the %zu pairs that need parsing: %.0f pairs/s\n", nparsed, (double)nparsed / tp[runs / 2]);
    printf("baseline strcmp: %.0f pairs/s (median of %d runs)\n", (double)n / mb, runs);
    printf("ratio verifier/strcmp time: %.1fx slower\n", mv / mb);
    printf("per pair: median %.2f us, 99.9th percentile %.1f us, slowest %.3f ms (gold %.40s | pred %.40s)\n",
           1e6 * each[n / 2], 1e6 * each[n - 1 - n / 1000], worst * 1e3, P[worst_i].gold, P[worst_i].pred);
    printf("target >= 100000 pairs/s: %s\n", (double)n / mv >= 100000 ? "met" : "NOT met");
    for (size_t i = 0; i < n; i++) {
        free(P[i].gold);
        free(P[i].pred);
    }
    free(P);
    free(tv);
    free(tb);
    free(each);
    free(tp);
    qe_verify_scratch_free(o.scratch);
    return sink < 0;
}
