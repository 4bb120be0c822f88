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
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "client.h"
#include "compare.h"
#include "engine.h"
#include "err.h"
#include "extract.h"
#include "http.h"
#include "inputs.h"
#include "lmeval_io.h"
#include "pyjson.h"
#include "records.h"
#include "report.h"
#include "rescore.h"
#include "plan.h"
#include "score_lmeval.h"
#include "task.h"
#include "verify.h"

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

/* ---- files: the lm-eval readers take paths, so inputs go through a file ---- */

/* Writes the input to dir/name under a per-process directory in $TMPDIR (or
 * /tmp), creating subdirectories of name; returns the path (malloc'd). The
 * directory is qe_fuzz_<pid>: replaying never collides with another run. */
static inline char *qe_fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    qe_buf p = QE_BUF_INIT;
    QE_FUZZ_CHECK(qe_buf_printf(&p, "%s/qe_fuzz_%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid()) == 0);
    (void)mkdir(qe_buf_str(&p), 0700);
    for (const char *s = name, *slash; (slash = strchr(s, '/')) != NULL; s = slash + 1) {
        QE_FUZZ_CHECK(qe_buf_printf(&p, "/%.*s", (int)(slash - s), s) == 0);
        (void)mkdir(qe_buf_str(&p), 0700);
        name = slash + 1;
    }
    QE_FUZZ_CHECK(qe_buf_printf(&p, "/%s", name) == 0);
    FILE *f = fopen(qe_buf_str(&p), "wb");
    QE_FUZZ_CHECK(f != NULL);
    QE_FUZZ_CHECK(size == 0 || fwrite(data, 1, size, f) == size);
    QE_FUZZ_CHECK(fclose(f) == 0);
    return qe_buf_detach(&p);
}

/* Removes a file written by qe_fuzz_write_file and its parent directories
 * as they become empty, up to and including the per-process directory. */
static inline void qe_fuzz_remove_file(char *path)
{
    (void)unlink(path);
    char *slash;
    while ((slash = strrchr(path, '/')) != NULL) {
        *slash = '\0';
        const char *base = strrchr(path, '/');
        bool top = base && strncmp(base + 1, "qe_fuzz_", 8) == 0;
        if (rmdir(path) != 0 || top)
            break;
    }
    free(path);
}

/* ---- Python json.dumps of a parsed value: must parse back to the same
 * value, in all four modes lm-eval uses or could ---- */

static inline void qe_fuzz_pyjson_roundtrip(const json_t *v)
{
    static const int indents[] = {QE_PYJSON_COMPACT, 2};
    for (int ii = 0; ii < 2; ii++) {
        for (int ascii = 0; ascii <= 1; ascii++) {
            qe_buf b = QE_BUF_INIT;
            qe_err e = {0};
            int rc = qe_pyjson_dump(&b, v, indents[ii], ascii, &e);
            if (rc == 0) {
                json_error_t je;
                json_t *back = json_loadb(b.data ? b.data : "", b.len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
                if (!back)
                    fprintf(stderr, "pyjson output does not parse (%s): %.200s\n", je.text, qe_buf_str(&b));
                QE_FUZZ_CHECK(back != NULL);
                QE_FUZZ_CHECK(json_equal(back, (json_t *)v));
                json_decref(back);
            } else {
                QE_FUZZ_CHECK(rc == QE_ELIMIT); /* only depth may refuse a parsed value */
                qe_fuzz_check_err(&e, rc);
            }
            qe_buf_free(&b);
        }
    }
}

/* ---- fuzz_pyjson: any JSON text parsed by jansson, dumped the Python way;
 * raw bytes as a Python string literal ---- */

static inline int qe_fuzz_pyjson(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *v = json_loadb((const char *)data, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    if (v) {
        qe_fuzz_pyjson_roundtrip(v);
        json_decref(v);
    }
    /* the string escaper on the raw bytes; valid UTF-8 must round-trip */
    qe_buf b = QE_BUF_INIT;
    QE_FUZZ_CHECK(qe_pyjson_string(&b, (const char *)data, size, 0) == 0);
    json_t *s = json_loadb(b.data, b.len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    if (s) {
        QE_FUZZ_CHECK(json_is_string(s) && json_string_length(s) == size &&
                      (size == 0 || memcmp(json_string_value(s), data, size) == 0));
        json_decref(s);
        qe_buf_reset(&b);
        QE_FUZZ_CHECK(qe_pyjson_string(&b, (const char *)data, size, 1) == 0);
        for (size_t i = 0; i < b.len; i++)
            QE_FUZZ_CHECK((unsigned char)b.data[i] < 0x80); /* ensure_ascii output is ASCII */
        s = json_loadb(b.data, b.len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
        QE_FUZZ_CHECK(s && json_is_string(s) && json_string_length(s) == size &&
                      (size == 0 || memcmp(json_string_value(s), data, size) == 0));
        json_decref(s);
    }
    qe_buf_free(&b);
    return 0;
}

/* ---- fuzz_lmeval_results: lm-eval results JSON (src/lmeval_io.c) ---- */

static inline int qe_fuzz_lmeval_results(const uint8_t *data, size_t size)
{
    char *path = qe_fuzz_write_file("results_2025-01-01T00-00-00.000000.json", data, size);
    qe_lmeval_results *r = NULL;
    qe_err e = {0};
    int rc = qe_lmeval_results_read(path, &r, &e);
    if (rc == 0) {
        QE_FUZZ_CHECK(r != NULL && r->root != NULL);
        for (size_t i = 0; i < r->n_tasks; i++) {
            const qe_lmeval_task *t = &r->tasks[i];
            QE_FUZZ_CHECK(t->name != NULL);
            QE_FUZZ_CHECK(qe_lmeval_results_task(r, t->name) != NULL);
            for (size_t m = 0; m < t->n_metrics; m++)
                QE_FUZZ_CHECK(t->metrics[m].metric != NULL && t->metrics[m].filter != NULL);
        }
        qe_fuzz_pyjson_roundtrip(r->root);
        qe_buf b = QE_BUF_INIT;
        rc = qe_lmeval_results_format(&b, r->root, &e);
        QE_FUZZ_CHECK(rc == 0 || rc == QE_ELIMIT);
        qe_buf_free(&b);
        qe_lmeval_results_free(r);
    } else {
        qe_fuzz_check_err(&e, rc);
        QE_FUZZ_CHECK(r == NULL);
        QE_FUZZ_CHECK(strstr(e.msg, "results_2025") != NULL); /* names the file */
    }
    qe_fuzz_remove_file(path);
    return 0;
}

/* A bad line reported by rescore names the file and a line. */
static inline void qe_fuzz_on_bad_line(void *arg, const qe_err *e)
{
    QE_FUZZ_CHECK(e->msg[0] != '\0' && strstr(e->msg, (const char *)arg) == e->msg);
}

/* ---- fuzz_lmeval_samples: samples JSONL through the streaming reader (each
 * sample dumped back and its response rescored like `qeval rescore`) and
 * through rescore (`qeval rescore`, lm-eval and math scorers), and through records, both as lm-eval
 * samples and as qeval verdicts ---- */

static inline int qe_fuzz_lmeval_samples(const uint8_t *data, size_t size)
{
    char *path = qe_fuzz_write_file("samples_aime24_2025-01-01T00-00-00.000000.jsonl", data, size);
    qe_lmeval_samples *r = NULL;
    qe_err e = {0};
    QE_FUZZ_CHECK(qe_lmeval_samples_open(path, &r, &e) == 0);
    long last = 0;
    for (int guard = 0; guard < 100000; guard++) {
        qe_lmeval_sample s;
        int rc = qe_lmeval_samples_next(r, &s, &e);
        if (rc == 0)
            break;
        if (rc < 0) {
            qe_fuzz_check_err(&e, rc);
            QE_FUZZ_CHECK(rc == QE_EINVAL || rc == QE_ELIMIT);
            QE_FUZZ_CHECK(strstr(e.msg, "samples_aime24") != NULL);
            continue;
        }
        QE_FUZZ_CHECK(s.line > last && s.obj != NULL && s.filter != NULL);
        last = s.line;
        qe_fuzz_pyjson_roundtrip(s.obj);
        qe_buf line = QE_BUF_INIT;
        rc = qe_lmeval_sample_format(&line, s.obj, &e);
        QE_FUZZ_CHECK(rc == 0 || rc == QE_ELIMIT);
        QE_FUZZ_CHECK(rc != 0 || (line.len > 0 && line.data[line.len - 1] == '\n'));
        qe_buf_free(&line);
        if (s.response && json_is_object(s.doc)) {
            qe_lm_score sc;
            if (qe_lm_score_doc("aime24", s.doc, s.response, &sc, &e) == 0)
                qe_lm_score_free(&sc);
        }
    }
    qe_lmeval_samples_close(r);

    /* rescore (qeval rescore), both scorers: every line scored, reported as
     * bad, or (math scorer) skipped as a second filter's copy */
    for (int scorer = QE_RESCORE_LMEVAL; scorer <= QE_RESCORE_MATH; scorer++) {
        qe_rescore_opts ro = {.keep_samples = 1, .scorer = scorer, .on_bad_line = qe_fuzz_on_bad_line,
                              .arg = path};
        qe_rescore_result *rr = NULL;
        int rrc = qe_rescore_file(path, &ro, &rr, &e);
        if (rrc == 0) {
            QE_FUZZ_CHECK(rr != NULL && rr->n_bad <= rr->n_lines);
            size_t scored = 0;
            for (size_t g = 0; g < rr->n_groups; g++) {
                QE_FUZZ_CHECK(rr->groups[g].score >= 0 && rr->groups[g].score <= 1);
                scored += rr->groups[g].n;
            }
            QE_FUZZ_CHECK(scored + rr->n_bad + rr->n_other_filter == rr->n_lines);
            qe_rescore_result_free(rr);
        } else {
            qe_fuzz_check_err(&e, rrc);
        }
    }

    /* records: lm-eval samples by name, then the same bytes as verdicts JSONL */
    char *vpath = qe_fuzz_write_file("bf16/aime24.verdicts.jsonl", data, size);
    const char *paths[2] = {path, vpath};
    for (int k = 0; k < 2; k++) {
        qe_records *rec = NULL;
        int rc = qe_records_open(paths[k], &rec, &e);
        if (rc < 0) {
            qe_fuzz_check_err(&e, rc);
            continue;
        }
        for (int guard = 0; guard < 100000; guard++) {
            qe_record x;
            rc = qe_records_next(rec, &x, &e);
            if (rc == 0)
                break;
            if (rc < 0) {
                qe_fuzz_check_err(&e, rc);
                continue;
            }
            QE_FUZZ_CHECK(x.model && x.task && x.filter && x.doc_id_text && x.response && x.gold &&
                          x.extracted && x.finish_reason && x.doc_hash && x.metric);
            if (k == 1 && qe_records_kind(rec) == QE_RECORDS_VERDICTS)
                QE_FUZZ_CHECK(x.value == 0 || x.value == 1);
        }
        qe_records_close(rec);
    }
    qe_fuzz_remove_file(vpath);
    qe_fuzz_remove_file(path);
    return 0;
}

/* ---- fuzz_report: verdict JSONL lines into the comparison engine and the
 * HTML report (src/compare.c, src/report.c), directly and through the
 * path loader of `qeval compare`/`report` (src/inputs.c). Lines alternate between the
 * baseline and the model; every string is hostile and must come out
 * escaped: the page's own script is its only "<script". ---- */

static inline size_t qe_fuzz_count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static inline int qe_fuzz_report(const uint8_t *data, size_t size)
{
    enum { MAXR = 64 };
    qe_compare_record recs[2][MAXR];
    char keys[2][MAXR][32];
    json_t *lines[2 * MAXR];
    size_t n[2] = {0, 0}, nl = 0;
    qe_err e = {0};
    const char *p = (const char *)data, *end = p + size;
    int side = 0;
    while (p < end && nl < 2 * MAXR) {
        const char *nlp = memchr(p, '\n', (size_t)(end - p));
        size_t len = nlp ? (size_t)(nlp - p) : (size_t)(end - p);
        json_t *j = json_loadb(p, len, 0, NULL);
        p += len + (nlp ? 1 : 0);
        if (!j)
            continue;
        lines[nl++] = j;
        qe_compare_record *r = &recs[side][n[side]];
        if (qe_compare_record_from_json(j, 0, r, keys[side][n[side]], sizeof keys[side][n[side]], &e) == 0) {
            bool dup = false; /* the engine requires unique keys per model */
            for (size_t i = 0; i < n[side]; i++)
                dup = dup || strcmp(recs[side][i].key, r->key) == 0;
            if (!dup && n[side] < MAXR) {
                n[side]++;
                side ^= 1;
            }
        } else {
            qe_fuzz_check_err(&e, -1);
        }
    }
    qe_compare_model model = {.name = "m<script>", .recs = recs[1], .n = n[1]};
    qe_compare_input in = {.task = "t</script>", .filter = NULL,
                           .baseline = {.name = "b\"'&", .recs = recs[0], .n = n[0]},
                           .models = &model, .n_models = 1};
    qe_compare_opts co = {.bootstrap_seed = 1, .bootstrap_iters = 20};
    qe_compare_result *res = NULL;
    int rc = qe_compare_run(&in, 1, &co, &res, &e);
    if (rc == 0) {
        for (int f = QE_COMPARE_TABLE; f <= QE_COMPARE_CSV; f++) {
            qe_buf b = QE_BUF_INIT;
            QE_FUZZ_CHECK(qe_compare_write(res, f, &b, &e) == 0);
            qe_buf_free(&b);
        }
        qe_buf html = QE_BUF_INIT;
        QE_FUZZ_CHECK(qe_report_render(res, NULL, &html, &e) == 0);
        QE_FUZZ_CHECK(qe_fuzz_count(qe_buf_str(&html), "<script") == 1);
        QE_FUZZ_CHECK(qe_fuzz_count(qe_buf_str(&html), "</script") == 1);
        qe_buf_free(&html);
        qe_compare_result_free(res);
    } else {
        qe_fuzz_check_err(&e, rc);
    }
    for (size_t i = 0; i < nl; i++)
        json_decref(lines[i]);
    /* the same lines as two models' verdicts files, loaded the way `qeval
     * compare`/`report` load paths (inputs.c), then compared and rendered */
    qe_buf fa = QE_BUF_INIT, fb = QE_BUF_INIT;
    p = (const char *)data;
    for (int k = 0; p < end; k ^= 1) {
        const char *nlp = memchr(p, '\n', (size_t)(end - p));
        size_t len = nlp ? (size_t)(nlp - p) + 1 : (size_t)(end - p);
        QE_FUZZ_CHECK(qe_buf_append(k ? &fb : &fa, p, len) == 0);
        p += len;
    }
    char *pa = qe_fuzz_write_file("bf16/aime24.verdicts.jsonl", (const uint8_t *)qe_buf_str(&fa), fa.len);
    char *pb = qe_fuzz_write_file("fp8/aime24.verdicts.jsonl", (const uint8_t *)qe_buf_str(&fb), fb.len);
    qe_buf_free(&fa);
    qe_buf_free(&fb);
    char *da = strdup(pa), *db = strdup(pb);
    QE_FUZZ_CHECK(da && db);
    *strrchr(da, '/') = '\0';
    *strrchr(db, '/') = '\0';
    const char *paths[2] = {da, db};
    qe_inputs *in2 = NULL;
    rc = qe_inputs_load(paths, 2, NULL, &in2, &e);
    if (rc == 0) {
        qe_compare_result *r2 = NULL;
        if (qe_compare_run(in2->cmp, in2->n_cmp, &co, &r2, &e) == 0) {
            qe_buf html = QE_BUF_INIT;
            QE_FUZZ_CHECK(qe_report_render(r2, NULL, &html, &e) == 0);
            QE_FUZZ_CHECK(qe_fuzz_count(qe_buf_str(&html), "<script") == 1);
            qe_buf_free(&html);
            qe_compare_result_free(r2);
        }
        qe_buf mm = QE_BUF_INIT, notes = QE_BUF_INIT;
        QE_FUZZ_CHECK(qe_inputs_mismatches(in2, &mm, &notes, &e) >= 0);
        qe_buf_free(&mm);
        qe_buf_free(&notes);
        qe_inputs_free(in2);
    } else {
        qe_fuzz_check_err(&e, rc);
    }
    free(da);
    free(db);
    qe_fuzz_remove_file(pb);
    qe_fuzz_remove_file(pa);

    /* the escaper alone: nothing that could open a tag or attribute survives */
    char *s = qe_fuzz_cstr(data, size);
    qe_buf b = QE_BUF_INIT;
    QE_FUZZ_CHECK(qe_report_escape(&b, s) == 0);
    QE_FUZZ_CHECK(strpbrk(qe_buf_str(&b), "<>\"'") == NULL);
    qe_buf_free(&b);
    free(s);
    return 0;
}

/* ---- fuzz_verify: our LaTeX / plain-math answer parser, verifier and
 * answer extractor (src/verify*.c, src/extract.c). Input: "pred\0gold". ---- */

static inline void qe_fuzz_check_verdict(const qe_verify_result *r)
{
    QE_FUZZ_CHECK(r->verdict == QE_VERDICT_TRUE || r->verdict == QE_VERDICT_FALSE ||
                  r->verdict == QE_VERDICT_UNDECIDED);
    QE_FUZZ_CHECK(memchr(r->reason, '\0', sizeof r->reason) && memchr(r->canon_gold, '\0', sizeof r->canon_gold) &&
                  memchr(r->canon_pred, '\0', sizeof r->canon_pred) &&
                  memchr(r->extracted, '\0', sizeof r->extracted));
}

static inline int qe_fuzz_verify(const uint8_t *data, size_t size)
{
    char *a, *b;
    qe_fuzz_split(data, size, &a, &b);
    /* one scratch per process, as a hot loop would use it (reuse across
     * inputs is part of what is tested); reachable until exit */
    static qe_verify_scratch *scratch;
    if (!scratch)
        scratch = qe_verify_scratch_new();
    QE_FUZZ_CHECK(scratch != NULL);
    qe_verify_opts o;
    qe_verify_opts_init(&o);
    o.scratch = scratch;
    qe_verify_result r;
    memset(&r, 0, sizeof r);
    QE_FUZZ_CHECK(qe_verify_pair(b, a, &o, &r) == 0);
    qe_fuzz_check_verdict(&r);
    /* an answer is never judged different from itself */
    QE_FUZZ_CHECK(qe_verify_pair(a, a, &o, &r) == 0);
    qe_fuzz_check_verdict(&r);
    if (r.verdict == QE_VERDICT_FALSE)
        fprintf(stderr, "verify(x, x) is false: %s\n", r.reason);
    QE_FUZZ_CHECK(r.verdict != QE_VERDICT_FALSE);
    int v = qe_verify_response(b, a, &o, &r);
    QE_FUZZ_CHECK(v == r.verdict);
    qe_fuzz_check_verdict(&r);

    size_t start = 0, alen = 0, n = strlen(a);
    qe_extract_opts eo;
    qe_extract_opts_init(&eo);
    int m = qe_extract_answer(a, n, &eo, &start, &alen);
    QE_FUZZ_CHECK(m >= 0);
    QE_FUZZ_CHECK(m == 0 || (start <= n && alen <= n - start));
    QE_FUZZ_CHECK(qe_extract_method_name(m) != NULL);
    if (qe_extract_opts_parse(&eo, "whole") == 0) {
        m = qe_extract_answer(a, n, &eo, &start, &alen);
        QE_FUZZ_CHECK(m == 0 || (start <= n && alen <= n - start));
    }
    free(a);
    free(b);
    return 0;
}

/* ---- fuzz_client_reply: an OpenAI-compatible server's reply body and
 * error body (src/client.c) ---- */

static inline int qe_fuzz_client_reply(const uint8_t *data, size_t size)
{
    qe_reply r;
    qe_err e = {0};
    int rc = qe_client_parse_reply((const char *)data, size, &r, &e);
    if (rc == 0) {
        QE_FUZZ_CHECK(r.content && r.reasoning && r.finish_reason && r.model);
        QE_FUZZ_CHECK(strlen(r.content) == r.content_len); /* no hidden NUL */
        QE_FUZZ_CHECK(!r.content_was_null || r.content_len == 0);
        qe_reply_free(&r);
    } else {
        qe_fuzz_check_err(&e, rc);
        QE_FUZZ_CHECK(r.content == NULL);
    }
    static const size_t caps[] = {1, 2, 17, 512};
    for (size_t i = 0; i < 4; i++) {
        char buf[512];
        memset(buf, 'x', sizeof buf);
        qe_client_error_message((const char *)data, size, buf, caps[i]);
        QE_FUZZ_CHECK(memchr(buf, '\0', caps[i]) != NULL);
    }
    return 0;
}

/* ---- fuzz_http: the HTTP/1.1 response parser (src/http.c). Byte 0 picks
 * the body cap and the read sizes; the rest is what the server sent. The
 * outcome must not depend on how the bytes were split across reads. ---- */

struct qe_fuzz_http_out {
    int rc;
    long status, retry_after;
    bool keep_alive;
    size_t used;
    qe_buf body;
};

static inline void qe_fuzz_http_run(const char *in, size_t n, size_t cap, unsigned seed,
                                    struct qe_fuzz_http_out *o)
{
    qe_http_parser p;
    qe_http_parser_init(&p, cap);
    memset(o, 0, sizeof *o);
    size_t at = 0;
    int rc = 0;
    while (rc == 0 && at < n) {
        size_t k = n - at;
        if (seed) { /* piece sizes 1..16 from a tiny LCG */
            seed = seed * 1103515245u + 12345u;
            size_t want = 1 + ((seed >> 16) & 15);
            if (want < k)
                k = want;
        }
        size_t used = 0;
        rc = qe_http_feed(&p, in + at, k, &used, &o->body);
        QE_FUZZ_CHECK(used <= k);
        QE_FUZZ_CHECK(rc != 0 || used == k);
        at += rc == 1 ? used : k;
    }
    if (rc == 0)
        rc = qe_http_finish(&p, &o->body);
    QE_FUZZ_CHECK(rc == 1 || rc == 0 || rc == QE_ESERVER || rc == QE_ELIMIT || rc == QE_ENOMEM);
    if (rc < 0) {
        QE_FUZZ_CHECK(p.err[0] != '\0' && memchr(p.err, '\0', sizeof p.err) != NULL);
    } else {
        QE_FUZZ_CHECK(rc == 1);
        QE_FUZZ_CHECK(p.status >= 200 && p.status <= 599);
        QE_FUZZ_CHECK(o->body.len == p.body_bytes);
    }
    QE_FUZZ_CHECK(o->body.len <= cap);
    o->rc = rc;
    o->status = p.status;
    o->retry_after = p.retry_after_s;
    o->keep_alive = p.keep_alive;
    o->used = at;
    qe_http_parser_free(&p);
}

static inline int qe_fuzz_http(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned seed = data[0] | 1u;
    size_t cap = (data[0] & 0x80) ? 64 : (size_t)1 << 20;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    struct qe_fuzz_http_out whole, split;
    qe_fuzz_http_run(in, n, cap, 0, &whole);
    qe_fuzz_http_run(in, n, cap, seed, &split);
    QE_FUZZ_CHECK(whole.rc == split.rc);
    if (whole.rc == 1) {
        QE_FUZZ_CHECK(whole.status == split.status && whole.keep_alive == split.keep_alive &&
                      whole.retry_after == split.retry_after && whole.used == split.used);
        QE_FUZZ_CHECK(whole.body.len == split.body.len &&
                      (whole.body.len == 0 || memcmp(whole.body.data, split.body.data, whole.body.len) == 0));
    }
    qe_buf_free(&whole.body);
    qe_buf_free(&split.body);
    (void)qe_http_retry_after(in, n > 64 ? 64 : n);
    return 0;
}

#endif
