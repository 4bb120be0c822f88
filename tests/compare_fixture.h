/* Test helper for test_compare.c and test_report.c: loads a verdicts JSONL
 * file (the shared contract: doc_id, correct, optional response, gold,
 * extracted, finish_reason, completion_tokens, word_count) into
 * qe_compare_record's through qe_compare_record_from_json. Test-only: the
 * real file reader belongs to the CLI. */
#ifndef QE_TEST_COMPARE_FIXTURE_H
#define QE_TEST_COMPARE_FIXTURE_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"

typedef struct {
    qe_compare_record *recs;
    size_t n;
    json_t **lines; /* keep the JSON alive: records borrow its strings */
    char **keys;
} fixture_model;

/* Returns 0, or -1 if the file cannot be read. */
static inline int fixture_load(const char *path, fixture_model *m)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    memset(m, 0, sizeof *m);
    size_t cap = 0, lcap = 0;
    char *line = NULL;
    while (getline(&line, &lcap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o)
            continue;
        if (m->n == cap) {
            cap = cap ? 2 * cap : 64;
            m->recs = realloc(m->recs, cap * sizeof *m->recs);
            m->lines = realloc(m->lines, cap * sizeof *m->lines);
            m->keys = realloc(m->keys, cap * sizeof *m->keys);
        }
        qe_compare_record *r = &m->recs[m->n];
        m->keys[m->n] = malloc(32);
        qe_err e = {0};
        if (qe_compare_record_from_json(o, 0, r, m->keys[m->n], 32, &e) < 0) {
            fprintf(stderr, "%s:%zu: %s\n", path, m->n + 1, e.msg);
            free(m->keys[m->n]);
            json_decref(o);
            free(line);
            fclose(f);
            return -1;
        }
        m->lines[m->n] = o;
        m->n++;
    }
    free(line);
    fclose(f);
    return 0;
}

static inline void fixture_free(fixture_model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        json_decref(m->lines[i]);
        free(m->keys[i]);
    }
    free(m->recs);
    free(m->lines);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

#define FX_NSETTINGS 6
static const char *const FX_SETTINGS[FX_NSETTINGS] = {
    "bf16", "awq-w3g128", "awq-w4g128", "gptq-w3g128", "gptq-w4g128", "kvquant-kv4"};
static const char *const FX_TASKS[2] = {"math500", "aime90"};

/* The shipped example: 2 tasks x (bf16 baseline + 5 settings). */
typedef struct {
    fixture_model data[2][FX_NSETTINGS];
    qe_compare_model models[2][FX_NSETTINGS];
    qe_compare_input in[2];
} fixture_example;

static inline int fixture_example_load(fixture_example *x)
{
    memset(x, 0, sizeof *x);
    for (int t = 0; t < 2; t++) {
        for (int s = 0; s < FX_NSETTINGS; s++) {
            char path[256];
            snprintf(path, sizeof path, "examples/r1-distill-1.5b-quant/%s/%s.verdicts.jsonl",
                     FX_SETTINGS[s], FX_TASKS[t]);
            if (fixture_load(path, &x->data[t][s]) < 0)
                return -1;
            x->models[t][s] = (qe_compare_model){FX_SETTINGS[s], x->data[t][s].recs,
                                                 x->data[t][s].n};
        }
        x->in[t].task = FX_TASKS[t];
        x->in[t].filter = "none";
        x->in[t].baseline = x->models[t][0];
        x->in[t].models = &x->models[t][1];
        x->in[t].n_models = FX_NSETTINGS - 1;
    }
    return 0;
}

static inline void fixture_example_free(fixture_example *x)
{
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < FX_NSETTINGS; s++)
            fixture_free(&x->data[t][s]);
}

#endif
