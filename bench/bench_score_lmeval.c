/* bench_score_lmeval: verdicts per second of the lm-eval scorer, over the
 * golden is_equiv pairs and over 200k synthetic model responses, each with
 * the ratio to a plain strcmp pass over the same pairs, measured in the same
 * run. Run from the repository root (reads tests/cases/lmeval_*.jsonl). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "score_lmeval.h"

#define N_SYNTH 200000

typedef struct {
    char **a, **b;
    size_t n, cap;
} pairs;

static void pairs_add(pairs *p, const char *a, const char *b)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 1024;
        p->a = realloc(p->a, p->cap * sizeof *p->a);
        p->b = realloc(p->b, p->cap * sizeof *p->b);
        if (!p->a || !p->b)
            abort();
    }
    p->a[p->n] = strdup(a);
    p->b[p->n] = strdup(b);
    p->n++;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void load_equiv(const char *path, pairs *p)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s (run from the repo root)\n", path);
        exit(1);
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *d = json_loads(line, 0, NULL);
        const char *fn = json_string_value(json_object_get(d, "fn"));
        const char *a = json_string_value(json_object_get(d, "pred"));
        const char *b = json_string_value(json_object_get(d, "gold"));
        if (fn && !strcmp(fn, "is_equiv") && a && b)
            pairs_add(p, a, b);
        json_decref(d);
    }
    free(line);
    fclose(f);
}

/* Deterministic synthetic responses: reasoning text then an answer in one of
 * the forms models produce (boxed, $..$, display math, "#### n", bare). */
static void make_synth(pairs *p)
{
    static const char *const filler[] = {
        "Let x be the number. ", "Then 3x + 5 = 20, so ", "We compute \\frac{a}{b} here. ",
        "Note that $n^2 - 1 = (n-1)(n+1)$. ", "Hence the total is 12,345.6 units. ", "中文 π ",
    };
    uint64_t s = 0x9E3779B97F4A7C15ull;
    qe_buf r = QE_BUF_INIT;
    char ans[32];
    for (size_t i = 0; i < N_SYNTH; i++) {
        qe_buf_reset(&r);
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int words = (int)(s >> 59) + 4;
        for (int w = 0; w < words; w++)
            qe_buf_puts(&r, filler[(s >> (3 * w % 48)) % 6]);
        snprintf(ans, sizeof ans, "%d", (int)((s >> 20) % 1000));
        switch ((s >> 40) % 5) {
        case 0: qe_buf_printf(&r, "The answer is $\\boxed{%s}$.", ans); break;
        case 1: qe_buf_printf(&r, "$%s$", ans); break;
        case 2: qe_buf_printf(&r, "$$\n\\boxed{%s^\\circ}\n$$", ans); break;
        case 3: qe_buf_printf(&r, "\n#### %s", ans); break;
        default: qe_buf_printf(&r, "%s/2", ans); break;
        }
        pairs_add(p, qe_buf_str(&r), ans);
    }
    qe_buf_free(&r);
}

static double time_strcmp(const pairs *p, int reps, size_t *sink)
{
    double t = now();
    for (int k = 0; k < reps; k++)
        for (size_t i = 0; i < p->n; i++)
            *sink += strcmp(p->a[i], p->b[i]) == 0;
    return now() - t;
}

static double time_equiv(const pairs *p, int reps, size_t *sink)
{
    double t = now();
    for (int k = 0; k < reps; k++)
        for (size_t i = 0; i < p->n; i++)
            *sink += qe_lm_is_equiv(p->a[i], p->b[i]);
    return now() - t;
}

static double time_score(const char *task, const pairs *p, size_t *sink)
{
    json_t *docs = json_array();
    for (size_t i = 0; i < p->n; i++) {
        json_t *d;
        if (!strcmp(task, "hendrycks_math500")) {
            char sol[64];
            snprintf(sol, sizeof sol, "so $\\boxed{%s}$", p->b[i]);
            d = json_pack("{s:s, s:s}", "solution", sol, "answer", p->b[i]);
        } else if (!strcmp(task, "gsm8k")) {
            char a[64];
            snprintf(a, sizeof a, "work\n#### %s", p->b[i]);
            d = json_pack("{s:s}", "answer", a);
        } else {
            d = json_pack("{s:s}", "answer", p->b[i]);
        }
        json_array_append_new(docs, d);
    }
    qe_err err;
    double t = now();
    for (size_t i = 0; i < p->n; i++) {
        qe_lm_score sc;
        if (qe_lm_score_doc(task, json_array_get(docs, i), p->a[i], &sc, &err) == 0) {
            *sink += (size_t)sc.f[0].value;
            qe_lm_score_free(&sc);
        }
    }
    t = now() - t;
    json_decref(docs);
    return t;
}

static void report(const char *what, size_t n, double t, double base)
{
    printf("%-40s %9zu verdicts %8.3f s %12.0f /s   ratio to strcmp %.1fx slower\n", what, n, t,
           (double)n / t, t / base);
}

int main(void)
{
    pairs g = {0}, s = {0};
    load_equiv("tests/cases/lmeval_equiv.jsonl", &g);
    load_equiv("tests/cases/lmeval_fuzz.jsonl", &g);
    make_synth(&s);
    size_t sink = 0;
    int reps = 200;
    double bg = time_strcmp(&g, reps, &sink);
    double tg = time_equiv(&g, reps, &sink);
    report("is_equiv, golden pairs", g.n * (size_t)reps, tg, bg);

    double bs = time_strcmp(&s, 1, &sink);
    double ts = time_equiv(&s, 1, &sink);
    report("is_equiv, synthetic responses", s.n, ts, bs);
    static const char *const tasks[] = {"hendrycks_math500", "aime24", "gsm8k"};
    for (size_t k = 0; k < 3; k++) {
        char label[64];
        snprintf(label, sizeof label, "score_doc %s, synthetic", tasks[k]);
        report(label, s.n, time_score(tasks[k], &s, &sink), bs);
    }
    printf("(sink %zu)\n", sink);
    for (size_t i = 0; i < g.n; i++) {
        free(g.a[i]);
        free(g.b[i]);
    }
    for (size_t i = 0; i < s.n; i++) {
        free(s.a[i]);
        free(s.b[i]);
    }
    free(g.a);
    free(g.b);
    free(s.a);
    free(s.b);
    return 0;
}
