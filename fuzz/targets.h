/* fuzz/targets.h: the body of every fuzz target, shared by the libFuzzer
 * drivers (fuzz/fuzz_<name>.c, one per parser of outside input) and by
 * tests/test_fuzz_regress.c, which replays every file of fuzz/corpus/<name>/
 * through the same function in `make check` (ASan+UBSan) and under valgrind.
 *
 * Each qe_fuzz_<name>(data, size) feeds one input to the parser and to
 * everything downstream that consumes what the parser produced, checks the
 * module's own promises (a failure always carries a message that names the
 * input; outputs are NUL-terminated) and aborts when one is broken, so
 * libFuzzer reports it as a crash. Everything is freed before returning:
 * a leak is a finding too. Functions are static inline so that a driver
 * using one of them compiles without unused-function warnings. */
#ifndef QE_FUZZ_TARGETS_H
#define QE_FUZZ_TARGETS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "engine.h"
#include "err.h"
#include "plan.h"
#include "score_lmeval.h"
#include "task.h"

/* A broken promise: print what and abort (libFuzzer saves the input). */
#define QE_FUZZ_CHECK(cond)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A NUL-terminated copy of the input (interior NULs kept: C APIs stop at the
 * first one, which is exactly what they would see from a file). */
static inline char *qe_fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    QE_FUZZ_CHECK(s != NULL);
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Splits the input at its first NUL into two strings a and b (b = "" when
 * there is no NUL); both are copies the caller frees. */
static inline void qe_fuzz_split(const uint8_t *data, size_t size, char **a, char **b)
{
    const uint8_t *nul = size ? memchr(data, 0, size) : NULL;
    size_t na = nul ? (size_t)(nul - data) : size;
    *a = qe_fuzz_cstr(data, na);
    *b = nul ? qe_fuzz_cstr(nul + 1, size - na - 1) : qe_fuzz_cstr(data, 0);
}

/* An error message must be a non-empty line. */
static inline void qe_fuzz_check_err(const qe_err *e, int rc)
{
    QE_FUZZ_CHECK(rc < 0);
    QE_FUZZ_CHECK(e->msg[0] != '\0');
    QE_FUZZ_CHECK(memchr(e->msg, '\0', sizeof e->msg) != NULL);
}

/* ---- fuzz_plan: the YAML sweep plan (src/plan.c, libyaml) ---- */

static inline bool qe_fuzz_task_exists(const char *task)
{
    return qe_task_find(task) != NULL;
}

static inline int qe_fuzz_plan(const uint8_t *data, size_t size)
{
    qe_plan *p = NULL;
    qe_err e = {0};
    int rc = qe_plan_parse((const char *)data, size, "fuzz.yaml", qe_fuzz_task_exists, &p, &e);
    if (rc < 0) {
        qe_fuzz_check_err(&e, rc);
        QE_FUZZ_CHECK(p == NULL);
        /* every plan error names the file */
        QE_FUZZ_CHECK(strstr(e.msg, "fuzz.yaml") != NULL);
        return 0;
    }
    QE_FUZZ_CHECK(p != NULL && p->n_models > 0 && p->n_tasks > 0);
    /* downstream consumers of a valid plan: file names and vllm command lines */
    for (size_t mi = 0; mi < p->n_models; mi++) {
        for (size_t ti = 0; ti < p->n_tasks; ti++) {
            qe_buf b = QE_BUF_INIT;
            rc = qe_plan_output_name(p, mi, ti, &b);
            QE_FUZZ_CHECK(rc < 0 || strlen(qe_buf_str(&b)) == b.len);
            qe_buf_free(&b);
        }
        qe_engine_spec spec;
        memset(&spec, 0, sizeof spec);
        qe_engine_spec_from_plan(&spec, p, mi);
        char **argv = NULL;
        if (qe_engine_build_argv(&spec, 0, &argv, &e) == 0) {
            QE_FUZZ_CHECK(argv != NULL && argv[0] != NULL);
            qe_engine_strv_free(argv);
        }
        qe_buf cmd = QE_BUF_INIT;
        (void)qe_engine_dry_run_cmd(&spec, &cmd, &e);
        qe_buf_free(&cmd);
    }
    qe_plan_free(p);
    return 0;
}

/* ---- fuzz_lmeval_score: lm-eval's string normalizer and extractors on
 * model text (src/score_lmeval.c). Input: "response\0gold". ---- */

static inline void qe_fuzz_free_ok(int rc, char *s)
{
    QE_FUZZ_CHECK(rc < 0 ? s == NULL : s != NULL);
    free(s);
}

static inline int qe_fuzz_lmeval_score(const uint8_t *data, size_t size)
{
    char *a, *b, *s = NULL;
    qe_fuzz_split(data, size, &a, &b);

    char *boxed = qe_lm_last_boxed_only_string(a);
    if (boxed) {
        int rc = qe_lm_remove_boxed(boxed, &s);
        qe_fuzz_free_ok(rc, s);
        free(boxed);
    }
    int rc = qe_lm_remove_boxed(a, &s);
    qe_fuzz_free_ok(rc, s);
    rc = qe_lm_strip_string(a, &s);
    QE_FUZZ_CHECK(rc == 0 || rc == QE_LM_ASSERTION_ERROR || rc == QE_LM_INDEX_ERROR ||
                  rc == QE_LM_VALUE_ERROR);
    qe_fuzz_free_ok(rc, s);
    (void)qe_lm_is_equiv(a, b);
    QE_FUZZ_CHECK(qe_lm_is_equiv(a, a)); /* reflexive, raise or not */

    static const char *const tasks[] = {"hendrycks_math500", "aime24", "aime25", "gsm8k"};
    for (size_t t = 0; t < 3; t++) {
        rc = qe_lm_extract_answer(tasks[t], a, &s);
        QE_FUZZ_CHECK(rc == 0);
        qe_fuzz_free_ok(rc, s);
    }
    qe_err e = {0};
    static const char *const filters[] = {"strict-match", "flexible-extract"};
    for (size_t f = 0; f < 2; f++) {
        rc = qe_lm_gsm8k_filter(filters[f], a, &s, &e);
        QE_FUZZ_CHECK(rc == 0);
        qe_fuzz_free_ok(rc, s);
    }
    char *np = NULL, *nr = NULL;
    rc = qe_lm_gsm8k_exact_match(a, b, &np, &nr);
    QE_FUZZ_CHECK(rc == 0 || rc == 1);
    free(np);
    free(nr);

    /* score_doc with the second string as every kind of gold */
    json_t *doc = json_pack("{s:s, s:s, s:s}", "problem", "p", "solution", b, "answer", b);
    if (doc) { /* NULL when b is not valid UTF-8 (jansson refuses it) */
        for (size_t t = 0; t < 4; t++) {
            qe_lm_score sc;
            rc = qe_lm_score_doc(tasks[t], doc, a, &sc, &e);
            if (rc == 0) {
                QE_FUZZ_CHECK(sc.n == 1 || sc.n == 2);
                for (size_t i = 0; i < sc.n; i++)
                    QE_FUZZ_CHECK(sc.f[i].value == 0 || sc.f[i].value == 1);
                qe_lm_score_free(&sc);
            } else {
                qe_fuzz_check_err(&e, rc);
            }
        }
        json_decref(doc);
    }
    free(a);
    free(b);
    return 0;
}

/* ---- fuzz_engine_log: cause classification of a vLLM log tail ---- */

static inline int qe_fuzz_engine_log(const uint8_t *data, size_t size)
{
    char *s = qe_fuzz_cstr(data, size);
    enum qe_engine_cause c = qe_engine_classify_log(s);
    QE_FUZZ_CHECK(qe_engine_cause_name(c) != NULL);
    free(s);
    return 0;
}

#endif
