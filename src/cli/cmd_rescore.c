/* qeval rescore: re-score lm-eval samples files with lm-eval's own scoring
 * (src/rescore.h over src/score_lmeval.h) or qeval's math verifier
 * (--scorer math, src/verify.h) and show, per file x task x filter, the new mean, the recorded one and which doc ids changed verdict;
 * optionally write re-scored samples + results files in lm-eval's layout.
 * Decisions: docs/rescore.md. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "buf.h"
#include "err.h"
#include "lmeval_io.h"
#include "opt.h"
#include "paths.h"
#include "pyjson.h"
#include "rescore.h"

enum fmt { FMT_TABLE, FMT_JSON };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qeval rescore [options] SAMPLES|DIR|GLOB...\n"
            "\n"
            "Re-scores lm-eval samples files (samples_<task>_<date>.jsonl, any 0.4.x) and\n"
            "compares every per-sample verdict with the one lm-eval recorded. For each\n"
            "line the raw response resps[0][0] is scored under the line's filter (gsm8k:\n"
            "strict-match and flexible-extract lines are scored separately).\n"
            "Prints per file x task x filter: n, new score (mean), recorded score, how\n"
            "many verdicts changed and their doc ids.\n"
            "\n"
            "Inputs: files, globs (quoted, '**' allowed) or directories (searched\n"
            "recursively for samples_*.jsonl). The task comes from the file name, else\n"
            "from --task.\n"
            "\n"
            "options:\n"
            "  --scorer lmeval|math   lmeval: lm-eval's exact scoring (default);\n"
            "                         math: qeval's math verifier on the response against\n"
            "                         the gold answer, one verdict per doc, reported\n"
            "                         under filter 'math-verify' and compared with the\n"
            "                         recorded verdicts of the file's first filter;\n"
            "                         undecided counts as wrong and is counted apart\n"
            "  --task NAME            task of files whose name does not say\n"
            "                         (hendrycks_math500, aime24, aime25, gsm8k)\n"
            "  --format table|json    output format (default table); json prints one\n"
            "                         array, one element per file x filter\n"
            "  --write-dir DIR        also write re-scored samples and a results file\n"
            "                         under DIR/<model>/ (never overwrites; math scorer:\n"
            "                         filter 'math-verify' in both)\n"
            "  --neumaier             means/stderr with Python >= 3.12 sum()\n"
            "  -h, --help             this help\n"
            "\n"
            "Exit: 0 ok, 1 some files or lines unusable (listed on stderr as FILE:LINE:\n"
            "reason), 2 usage, 3 nothing usable, 4 could not write --write-dir output.\n");
}

static int wanted_in_dir(const char *path)
{
    const char *b = qe_paths_base(path);
    return !strncmp(b, "samples_", 8) && qe_paths_ends_with(b, ".jsonl");
}

static void print_bad_line(void *arg, const qe_err *e)
{
    (void)arg;
    fprintf(stderr, "qeval: %s\n", e->msg);
}

static void put_doc_id(qe_buf *b, const json_t *id)
{
    if (json_is_integer(id))
        qe_buf_printf(b, "%lld", (long long)json_integer_value(id));
    else
        qe_buf_puts(b, json_string_value(id));
}

static void print_ids(const char *label, const qe_rescore_result *r, const qe_rescore_group *g,
                      const json_t *ids)
{
    if (!json_array_size(ids))
        return;
    qe_buf b = QE_BUF_INIT;
    size_t j;
    json_t *id;
    json_array_foreach(ids, j, id) {
        qe_buf_puts(&b, j ? " " : "");
        put_doc_id(&b, id);
    }
    printf("  %s %s %s%s: %s\n", r->file, r->task, g->filter, label, qe_buf_str(&b));
    qe_buf_free(&b);
}

static void print_table(qe_rescore_result *const *res, size_t n)
{
    size_t wf = 4, wt = 4, wl = 6;
    int math = 0;
    for (size_t i = 0; i < n; i++)
        math |= res[i]->scorer == QE_RESCORE_MATH;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < res[i]->n_groups; k++) {
            size_t a = strlen(res[i]->file), b = strlen(res[i]->task), c = strlen(res[i]->groups[k].filter);
            wf = a > wf ? a : wf, wt = b > wt ? b : wt, wl = c > wl ? c : wl;
        }
    printf("%-*s  %-*s  %-*s  %6s  %8s  %8s  %7s%s\n", (int)wf, "file", (int)wt, "task", (int)wl,
           "filter", "n", "score", "recorded", "changed", math ? "  undecided" : "");
    int any_changed = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < res[i]->n_groups; k++) {
            const qe_rescore_group *g = &res[i]->groups[k];
            char rec[32];
            if (g->n_recorded)
                snprintf(rec, sizeof rec, "%.4f", g->recorded_score);
            else
                snprintf(rec, sizeof rec, "-");
            printf("%-*s  %-*s  %-*s  %6zu  %8.4f  %8s  %7zu", (int)wf, res[i]->file, (int)wt,
                   res[i]->task, (int)wl, g->filter, g->n, g->score, rec, g->n_changed);
            if (math)
                printf("  %9zu", g->n_undecided);
            printf("\n");
            any_changed |= g->n_changed > 0;
        }
    if (!any_changed)
        return;
    printf("\nchanged verdicts (doc ids):\n");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < res[i]->n_groups; k++) {
            const qe_rescore_group *g = &res[i]->groups[k];
            if (!g->n_changed)
                continue;
            print_ids("", res[i], g, g->changed);
            if (res[i]->scorer == QE_RESCORE_MATH) {
                print_ids(" (verifier accepts, lm-eval rejected)", res[i], g, g->accepted_not_recorded);
                print_ids(" (verifier rejects, lm-eval accepted)", res[i], g, g->rejected_but_recorded);
            }
        }
    int any_undecided = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < res[i]->n_groups; k++)
            any_undecided |= res[i]->groups[k].n_undecided > 0;
    if (!any_undecided)
        return;
    printf("\nundecided by the math verifier, scored 0 (doc ids):\n");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < res[i]->n_groups; k++)
            print_ids("", res[i], &res[i]->groups[k], res[i]->groups[k].undecided);
}

static int print_json(qe_rescore_result *const *res, size_t n)
{
    json_t *a = json_array();
    int rc = a ? 0 : -1;
    for (size_t i = 0; !rc && i < n; i++)
        for (size_t k = 0; !rc && k < res[i]->n_groups; k++) {
            const qe_rescore_group *g = &res[i]->groups[k];
            json_t *o = json_pack(
                "{s:s, s:s, s:s, s:s, s:I, s:f, s:o, s:O, s:I, s:o, s:I, s:I}", "file", res[i]->file,
                "task", res[i]->task, "filter", g->filter, "metric", g->metric, "n", (json_int_t)g->n,
                "score", g->score, "recorded_score",
                g->n_recorded ? json_real(g->recorded_score) : json_null(), "changed", g->changed,
                "n_changed", (json_int_t)g->n_changed, "stderr",
                g->stderr_kind == 1 ? json_real(g->stderr_val) : json_null(), "n_recorded",
                (json_int_t)g->n_recorded, "bad_lines", (json_int_t)res[i]->n_bad);
            if (o)
                rc = json_object_set_new(o, "scorer", json_string(res[i]->scorer == QE_RESCORE_MATH
                                                                      ? "math" : "lmeval")) |
                     json_object_set_new(o, "recorded_filter", json_string(g->recorded_filter)) |
                     json_object_set(o, "accepted_not_recorded", g->accepted_not_recorded) |
                     json_object_set(o, "rejected_but_recorded", g->rejected_but_recorded) |
                     json_object_set_new(o, "undecided", json_integer((json_int_t)g->n_undecided)) |
                     json_object_set(o, "undecided_ids", g->undecided) |
                     json_object_set_new(o, "other_filter_lines",
                                         json_integer((json_int_t)res[i]->n_other_filter));
            if (!rc)
                rc = o ? json_array_append_new(a, o) : -1;
            else
                json_decref(o);
        }
    qe_buf b = QE_BUF_INIT;
    if (!rc)
        rc = qe_pyjson_dump(&b, a, 2, 0, NULL);
    if (!rc)
        printf("%s\n", qe_buf_str(&b));
    qe_buf_free(&b);
    json_decref(a);
    return rc;
}

/* A date id per written run, strictly increasing so that two inputs of the
 * same model and task never collide within one invocation. */
static void next_date_id(double *last, char out[32])
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    double t = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
    if (t <= *last + 1e-6)
        t = *last + 1e-6 + 1e-7;
    *last = t;
    qe_lmeval_date_id(t, out);
}

enum { O_FORMAT, O_SCORER, O_TASK, O_WRITE_DIR, O_NEUMAIER };

static const qe_opt_spec options[] = {
    {"format", O_FORMAT, QE_OPT_VALUE}, {"scorer", O_SCORER, QE_OPT_VALUE},
    {"task", O_TASK, QE_OPT_VALUE},     {"write-dir", O_WRITE_DIR, QE_OPT_VALUE},
    {"neumaier", O_NEUMAIER, QE_OPT_FLAG},
};
static const qe_opt_cmd cli = {"rescore", options, sizeof options / sizeof *options, QE_OPT_COLLECT, usage, 1};

int cmd_rescore(int argc, char **argv)
{
    int fmt = FMT_TABLE;
    const char *scorer = "lmeval", *task = NULL, *write_dir = NULL;
    int neumaier = 0;
    qe_opt p;
    if (qe_opt_init(&p, &cli, argc, argv, 1))
        return QE_EXIT_IO;
    for (int id; (id = qe_opt_next(&p)) != QE_OPT_END;) {
        const char *v = p.val;
        int k;
        if (id == O_FORMAT) {
            static const char *const names[] = {"table", "json", NULL};
            static const int values[] = {FMT_TABLE, FMT_JSON};
            if (qe_opt_pick(v, names, values, &fmt)) {
                fprintf(stderr, "qeval rescore: --format wants table or json\n");
                qe_opt_fail(&p);
            }
        } else if (id == O_SCORER) {
            if (qe_opt_pick(v, qe_opt_scorers, NULL, &k)) {
                fprintf(stderr, "qeval rescore: --scorer wants lmeval or math\n");
                qe_opt_fail(&p);
            }
            scorer = v;
        } else if (id == O_TASK) {
            if (!qe_rescore_task_supported(v)) {
                fprintf(stderr,
                        "qeval rescore: --task wants hendrycks_math500, aime24, aime25 or gsm8k\n");
                qe_opt_fail(&p);
            }
            task = v;
        } else if (id == O_WRITE_DIR) {
            if (!*v) {
                fprintf(stderr, "qeval rescore: --write-dir wants a directory\n");
                qe_opt_fail(&p);
            }
            write_dir = v;
        } else if (id == O_NEUMAIER) {
            neumaier = 1;
        }
    }
    if (p.exit >= 0) {
        qe_opt_free(&p);
        return p.exit;
    }
    qe_paths in = {0};
    int write_failed = 0;
    int errors = (int)qe_opt_add_paths(&p, &in, wanted_in_dir);
    qe_opt_free(&p);

    qe_rescore_result **res = calloc(in.n_files ? in.n_files : 1, sizeof *res);
    size_t nres = 0;
    if (!res) {
        qe_paths_free(&in);
        return QE_EXIT_IO;
    }
    qe_rescore_opts o = {
        .task = task,
        .keep_samples = write_dir != NULL,
        .scorer = !strcmp(scorer, "math") ? QE_RESCORE_MATH : QE_RESCORE_LMEVAL,
        .sum_kind = neumaier ? QE_LMEVAL_SUM_NEUMAIER : QE_LMEVAL_SUM_FOLD,
        .on_bad_line = print_bad_line,
        .arg = NULL,
    };
    double last = 0;
    for (size_t i = 0; i < in.n_files; i++) {
        qe_err e = {0};
        qe_rescore_result *r;
        if (qe_rescore_file(in.files[i], &o, &r, &e)) {
            fprintf(stderr, "qeval: %s\n", e.msg);
            errors++;
            continue;
        }
        errors += r->n_bad > 0;
        if (!r->n_groups) {
            fprintf(stderr, "qeval: %s: no line could be scored\n", r->file);
            qe_rescore_result_free(r);
            continue;
        }
        if (write_dir) {
            char date[32], *sp = NULL, *rp = NULL;
            next_date_id(&last, date);
            if (qe_rescore_write(r, write_dir, date, &sp, &rp, &e)) {
                fprintf(stderr, "qeval: %s\n", e.msg);
                write_failed = 1;
            } else {
                fprintf(stderr, "qeval: wrote %s and %s\n", sp, rp);
            }
            free(sp);
            free(rp);
            qe_buf_free(&r->samples); /* written; the summary does not need it */
        }
        res[nres++] = r;
    }

    int rc;
    if (nres == 0) {
        fprintf(stderr, "qeval: nothing usable: no samples file could be re-scored\n");
        rc = QE_EXIT_INPUT;
    } else {
        if (fmt == FMT_JSON) {
            if (print_json(res, nres))
                fprintf(stderr, "qeval: out of memory formatting JSON\n");
        } else {
            print_table(res, nres);
        }
        rc = write_failed ? QE_EXIT_IO : errors ? QE_EXIT_PARTIAL : QE_EXIT_OK;
    }
    fflush(stdout);
    if (ferror(stdout))
        rc = QE_EXIT_IO;
    for (size_t i = 0; i < nres; i++)
        qe_rescore_result_free(res[i]);
    free(res);
    qe_paths_free(&in);
    return rc;
}
