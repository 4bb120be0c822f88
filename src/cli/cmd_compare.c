/* qeval compare: paired comparison of models on shared problems.
 *
 * Inputs are loaded by src/inputs (files or directories of lm-eval/qeval
 * samples + results, or verdicts JSONL); the numbers come from src/compare
 * (accuracies, paired delta with 95% CI, exact McNemar, flips, diagnostics,
 * power). This file adds what a person at a terminal needs: the flipped
 * problems with previews, a plain power sentence, config mismatches that
 * make the comparison unfair (refused unless --allow-mismatch) and, with
 * --scorer math, re-scoring by the math verifier. docs/compare.md. */
#include "cli.h"
#include "compare_cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compare.h"
#include "err.h"
#include "inputs.h"
#include "opt.h"

#if defined(__has_include)
#if __has_include("verify.h")
#include "verify.h"
#define QE_HAVE_VERIFY 1
#endif
#endif

int qe_cmpcli_option(qe_cmpcli_opts *o, int id, const char *arg, const char *v)
{
    switch (id) {
    case QE_CMPCLI_O_BASELINE:
    case QE_CMPCLI_O_TASK:
        if (!*v) {
            fprintf(stderr, "qeval %s: %s wants a value\n", o->cmd, arg);
            return QE_EXIT_USAGE;
        }
        *(id == QE_CMPCLI_O_BASELINE ? &o->baseline : &o->task) = v;
        return 0;
    case QE_CMPCLI_O_SCORER:
        if (qe_opt_pick(v, qe_opt_scorers, NULL, &o->scorer)) {
            fprintf(stderr, "qeval %s: --scorer wants lmeval or math\n", o->cmd);
            return QE_EXIT_USAGE;
        }
        return 0;
    case QE_CMPCLI_O_ALLOW_MISMATCH:
        o->allow_mismatch = 1;
        return 0;
    default:
        return -1;
    }
}

int qe_cmpcli_have_math(void)
{
#ifdef QE_HAVE_VERIFY
    return 1;
#else
    return 0;
#endif
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qeval compare [options] A B [C...]\n"
            "\n"
            "Paired comparison of models on the problems they share, per task x filter,\n"
            "each model against a baseline: both accuracies, the paired difference with a\n"
            "95%% CI, the exact McNemar p-value, the problems each got that the other\n"
            "missed, truncation and extraction diagnostics, and how small a difference the\n"
            "number of problems can detect.\n"
            "\n"
            "Inputs (one model each, or a directory holding several): lm-eval/qeval output\n"
            "directories or files (samples_<task>_<date>.jsonl, with results_<date>.json\n"
            "beside them for the run config), or verdicts JSONL (*.verdicts.jsonl: doc_id,\n"
            "correct, optional response, gold, finish_reason, doc_hash, model, task).\n"
            "One model name found in two directories is two models, NAME@DIR.\n"
            "\n"
            "options:\n"
            "  --baseline NAME        model compared against (default: the first); a\n"
            "                         shown name, the DIR of NAME@DIR, the name of its\n"
            "                         run directory (fp8 for results/fp8/), or a path\n"
            "  --format table|json|md|csv   output (default table)\n"
            "  --task T               only this task\n"
            "  --flips N              flipped problems listed per row and direction\n"
            "                         in the table (default 10, 0 = none)\n"
            "  --allow-mismatch       compare runs whose configs differ (listed as warnings)\n"
            "  --scorer lmeval|math   verdicts as recorded (default), or re-score each\n"
            "                         response with qeval's math verifier\n"
            "  -h, --help             this help\n"
            "\n"
            "Exit: 0 ok, 2 usage, 3 unusable input or mismatched configs (listed),\n"
            "4 output failed.\n");
}

/* ---- shared with cmd_report.c (compare_cli.h) ------------------------------ */

static int add_line(qe_cmpcli_run *run, const char *s, size_t n)
{
    char **nv = realloc(run->mismatches, (run->n_mismatches + 1) * sizeof *nv);
    if (!nv)
        return -1;
    run->mismatches = nv;
    nv[run->n_mismatches] = strndup(s, n);
    return nv[run->n_mismatches] ? (int)(run->n_mismatches++, 0) : -1;
}

#ifdef QE_HAVE_VERIFY
static int rescore_math(qe_cmpcli_run *run, const char *cmd)
{
    qe_inputs *in = run->in;
    run->math = calloc(in->n_groups * in->n_models + 1, sizeof *run->math);
    qe_verify_scratch *sc = qe_verify_scratch_new();
    if (!run->math || !sc) {
        qe_verify_scratch_free(sc);
        fprintf(stderr, "qeval %s: out of memory\n", cmd);
        return QE_EXIT_IO;
    }
    qe_verify_opts vo;
    qe_verify_opts_init(&vo);
    vo.scratch = sc;
    vo.no_canon = 1;
    size_t any = 0;
    for (size_t g = 0; g < in->n_groups; g++)
        for (size_t m = 0; m < in->n_models; m++) {
            qe_inputs_side *s = &in->groups[g].sides[m];
            qe_cmpcli_math *c = &run->math[g * in->n_models + m];
            if (s->n && !(c->accepted = calloc(s->n, sizeof *c->accepted))) {
                qe_verify_scratch_free(sc);
                fprintf(stderr, "qeval %s: out of memory\n", cmd);
                return QE_EXIT_IO;
            }
            for (size_t i = 0; i < s->n; i++) {
                qe_compare_record *r = &s->recs[i];
                if (!r->response || !r->gold || r->repeats > 1)
                    continue;
                /* gsm8k puts the final answer after "####" (its few-shot
                 * format and strict-match): verify the rest of that line */
                const char *text = r->response, *hash = NULL;
                char *cut = NULL;
                if (!strcmp(in->groups[g].task, "gsm8k") && (hash = strstr(text, "####"))) {
                    hash += 4;
                    if ((cut = strndup(hash, strcspn(hash, "\n"))))
                        text = cut;
                }
                qe_verify_result vr;
                int v = qe_verify_response(r->gold, text, &vo, &vr);
                free(cut);
                int was = r->correct >= 0.5;
                c->rescored++;
                if (v == QE_VERDICT_TRUE && !was)
                    c->accepted[c->accepts_not_lm++] = r->key;
                c->rejects_lm += v != QE_VERDICT_TRUE && was;
                r->correct = v == QE_VERDICT_TRUE;
                /* previews now show what the verifier compared */
                char **no = realloc(run->owned, (run->n_owned + 1) * sizeof *no);
                if (no) {
                    run->owned = no;
                    if ((no[run->n_owned] = strdup(vr.extracted)))
                        r->extracted = no[run->n_owned++];
                }
            }
            any += c->rescored;
        }
    qe_verify_scratch_free(sc);
    if (!any)
        fprintf(stderr,
                "qeval %s: warning: --scorer math: no record has both a response and a gold "
                "answer; verdicts kept as recorded\n",
                cmd);
    return 0;
}
#endif

int qe_cmpcli_prepare(const char *const *paths, size_t n_paths, const qe_cmpcli_opts *o,
                      qe_cmpcli_run *run)
{
    memset(run, 0, sizeof *run);
    if (o->scorer == QE_SCORER_MATH && !qe_cmpcli_have_math()) {
        fprintf(stderr,
                "qeval %s: --scorer math is not available in this build (the math verifier, "
                "src/verify.h, is not compiled in)\n",
                o->cmd);
        return QE_EXIT_USAGE;
    }
    qe_err e = {0};
    int refused = 0;
    qe_inputs_opts io = {o->baseline, o->task, &refused};
    int rc = qe_inputs_load(paths, n_paths, &io, &run->in, &e);
    if (rc) {
        fprintf(stderr, "qeval: %s\n", e.msg);
        return rc == QE_ENOMEM ? QE_EXIT_IO : refused ? QE_EXIT_USAGE : QE_EXIT_INPUT;
    }
    qe_inputs *in = run->in;
    for (size_t i = 0; i < in->n_warnings; i++)
        fprintf(stderr, "qeval: warning: %s\n", in->warnings[i]);
    qe_buf mm = QE_BUF_INIT, notes = QE_BUF_INIT;
    int n = qe_inputs_mismatches(in, &mm, &notes, &e);
    if (n < 0) {
        fprintf(stderr, "qeval: %s\n", e.msg);
        qe_buf_free(&mm);
        qe_buf_free(&notes);
        qe_cmpcli_free(run);
        return QE_EXIT_INPUT;
    }
    if (notes.len)
        fprintf(stderr, "qeval: %s", qe_buf_str(&notes));
    for (const char *s = qe_buf_str(&mm); *s;) {
        size_t l = strcspn(s, "\n");
        if (add_line(run, s, l)) {
            fprintf(stderr, "qeval %s: out of memory\n", o->cmd);
            qe_buf_free(&mm);
            qe_buf_free(&notes);
            qe_cmpcli_free(run);
            return QE_EXIT_IO;
        }
        s += l + (s[l] == '\n');
    }
    qe_buf_free(&mm);
    qe_buf_free(&notes);
    if (run->n_mismatches) {
        const char *what = o->allow_mismatch ? "warning: config mismatch" : "config mismatch";
        for (size_t i = 0; i < run->n_mismatches; i++)
            fprintf(stderr, "qeval: %s: %s\n", what, run->mismatches[i]);
        if (!o->allow_mismatch) {
            fprintf(stderr,
                    "qeval %s: refusing to compare runs whose settings differ (%zu difference%s "
                    "above); --allow-mismatch compares them anyway\n",
                    o->cmd, run->n_mismatches, run->n_mismatches == 1 ? "" : "s");
            qe_cmpcli_free(run);
            return QE_EXIT_INPUT;
        }
    }
#ifdef QE_HAVE_VERIFY
    if (o->scorer == QE_SCORER_MATH && (rc = rescore_math(run, o->cmd))) {
        qe_cmpcli_free(run);
        return rc;
    }
#endif
    rc = qe_compare_run(in->cmp, in->n_cmp, NULL, &run->res, &e);
    if (rc) {
        fprintf(stderr, "qeval: %s\n", e.msg);
        qe_cmpcli_free(run);
        return rc == QE_ENOMEM ? QE_EXIT_IO : QE_EXIT_INPUT;
    }
    return QE_EXIT_OK;
}

void qe_cmpcli_free(qe_cmpcli_run *run)
{
    size_t nm = run->in ? run->in->n_groups * run->in->n_models : 0;
    for (size_t i = 0; run->math && i < nm; i++)
        free(run->math[i].accepted);
    qe_compare_result_free(run->res);
    qe_inputs_free(run->in);
    for (size_t i = 0; i < run->n_mismatches; i++)
        free(run->mismatches[i]);
    free(run->mismatches);
    free(run->math);
    for (size_t i = 0; i < run->n_owned; i++)
        free(run->owned[i]);
    free(run->owned);
    memset(run, 0, sizeof *run);
}

/* ---- output ----------------------------------------------------------------- */

static const qe_cmpcli_math *math_of(const qe_cmpcli_run *run, size_t cmp_i, size_t j)
{
    if (!run->math)
        return NULL;
    const qe_inputs *in = run->in;
    size_t g = in->cmp_group[cmp_i], m = qe_inputs_cmp_model(in, cmp_i, j);
    return &run->math[g * in->n_models + m];
}

/* Lines of the mismatch list that concern this row. */
static json_t *row_mismatches(const qe_cmpcli_run *run, const qe_compare_row *w)
{
    json_t *a = json_array();
    qe_buf prefix = QE_BUF_INIT;
    qe_buf_printf(&prefix, "%s/%s %s vs %s: ", w->task, w->filter, w->model, w->baseline);
    size_t pl = prefix.len;
    for (size_t i = 0; i < run->n_mismatches; i++)
        if (!strncmp(run->mismatches[i], qe_buf_str(&prefix), pl))
            json_array_append_new(a, json_string(run->mismatches[i] + pl));
    qe_buf_free(&prefix);
    return a;
}

static int print_json(const qe_cmpcli_run *run, int scorer)
{
    json_t *arr = qe_compare_to_json(run->res);
    if (!arr)
        return -1;
    size_t k = 0;
    for (size_t g = 0; g < run->res->n_groups; g++) {
        const qe_compare_group *gr = &run->res->groups[g];
        for (size_t j = 0; j < gr->in->n_models; j++, k++) {
            json_t *o = json_array_get(arr, k);
            json_object_set_new(o, "scorer", json_string(scorer ? "math" : "lmeval"));
            const qe_cmpcli_math *mm = math_of(run, g, j + 1), *mb = math_of(run, g, 0);
            if (mm && mb) {
                json_object_set_new(o, "verifier_accepts_lmeval_rejected",
                                    json_integer((json_int_t)mm->accepts_not_lm));
                json_object_set_new(o, "verifier_rejects_lmeval_accepted",
                                    json_integer((json_int_t)mm->rejects_lm));
                json_t *ids = json_array();
                for (size_t q = 0; q < mm->accepts_not_lm; q++)
                    json_array_append_new(ids, json_string(mm->accepted[q]));
                json_object_set_new(o, "verifier_accepts_lmeval_rejected_ids", ids);
                json_object_set_new(o, "baseline_verifier_accepts_lmeval_rejected",
                                    json_integer((json_int_t)mb->accepts_not_lm));
                json_object_set_new(o, "baseline_verifier_rejects_lmeval_accepted",
                                    json_integer((json_int_t)mb->rejects_lm));
            }
            json_object_set_new(o, "config_mismatches", row_mismatches(run, &gr->rows[j]));
        }
    }
    char *s = json_dumps(arr, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(arr);
    if (!s)
        return -1;
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return 0;
}

/* "500 problems cannot tell 2 points from noise" and what they can tell. */
static void power_lines(qe_buf *out, const qe_compare_result *r)
{
    qe_buf_puts(out, "\nPower (80%, 5% two-sided, at the observed discordance):\n");
    for (size_t g = 0; g < r->n_groups; g++)
        for (size_t j = 0; j < r->groups[g].in->n_models; j++) {
            const qe_compare_row *w = &r->groups[g].rows[j];
            qe_buf_printf(out, "  %s/%s %s vs %s: ", w->task, w->filter, w->model, w->baseline);
            if (isnan(w->mdd)) {
                qe_buf_printf(out, "%zu problem%s cannot tell even large differences from noise",
                              w->n_paired, w->n_paired == 1 ? "" : "s");
            } else {
                int can2 = w->mdd <= 0.02;
                qe_buf_printf(out, "%zu problem%s %s tell 2 points from noise (smallest detectable: %.1f points",
                              w->n_paired, w->n_paired == 1 ? "" : "s", can2 ? "can" : "cannot",
                              100.0 * w->mdd);
                if (!can2 && isfinite(w->n_for_2pt))
                    qe_buf_printf(out, "; 2 points needs ~%.0f", w->n_for_2pt);
                qe_buf_putc(out, ')');
            }
            qe_buf_putc(out, '\n');
        }
}

static void math_lines(qe_buf *out, const qe_cmpcli_run *run, size_t max_ids)
{
    qe_buf_puts(out, "\nRe-scored with the math verifier (--scorer math):\n");
    const qe_inputs *in = run->in;
    for (size_t i = 0; i < in->n_cmp; i++) {
        const qe_compare_input *c = &in->cmp[i];
        for (size_t j = 0; j <= c->n_models; j++) {
            const qe_cmpcli_math *m = math_of(run, i, j);
            const char *name = j ? c->models[j - 1].name : c->baseline.name;
            qe_buf_printf(out,
                          "  %s/%s %s: %zu answers the verifier accepts but lm-eval rejected, "
                          "%zu the other way (%zu re-scored)\n",
                          c->task, c->filter ? c->filter : "none", name, m->accepts_not_lm,
                          m->rejects_lm, m->rescored);
            for (size_t q = 0; q < m->accepts_not_lm && q < max_ids; q++)
                qe_buf_printf(out, "%s%s%s", q ? ", " : "    accepted only by the verifier: ",
                              m->accepted[q], q + 1 == m->accepts_not_lm || q + 1 == max_ids ? "\n" : "");
            if (m->accepts_not_lm > max_ids)
                qe_buf_printf(out, "    ... and %zu more (see --format json)\n",
                              m->accepts_not_lm - max_ids);
        }
    }
}

enum { O_FORMAT, O_FLIPS };

static const qe_opt_spec options[] = {
    {"format", O_FORMAT, QE_OPT_VALUE},
    {"flips", O_FLIPS, QE_OPT_VALUE},
    QE_CMPCLI_OPTIONS,
};
static const qe_opt_cmd cli = {"compare", options, sizeof options / sizeof *options,
                               QE_OPT_COLLECT, usage, 1};

int cmd_compare(int argc, char **argv)
{
    qe_cmpcli_opts o = {"compare", NULL, NULL, 0, QE_SCORER_LMEVAL};
    int format = QE_COMPARE_TABLE;
    long flips = 10;
    qe_opt p;
    if (qe_opt_init(&p, &cli, argc, argv, 1))
        return QE_EXIT_IO;
    for (int id; (id = qe_opt_next(&p)) != QE_OPT_END;) {
        const char *v = p.val;
        char *end;
        if (id == O_FORMAT) {
            format = qe_compare_format_parse(v);
            if (format < 0) {
                fprintf(stderr, "qeval compare: --format wants table, json, md or csv\n");
                qe_opt_fail(&p);
            }
        } else if (id == O_FLIPS) {
            flips = strtol(v, &end, 10);
            if (*end || flips < 0 || flips > 1000000) {
                fprintf(stderr, "qeval compare: --flips wants a count >= 0\n");
                qe_opt_fail(&p);
            }
        } else if (qe_cmpcli_option(&o, id, p.arg, v)) {
            qe_opt_fail(&p);
        }
    }
    if (p.exit >= 0) {
        qe_opt_free(&p);
        return p.exit;
    }
    qe_cmpcli_run run;
    int rc = qe_cmpcli_prepare(p.pos, p.n_pos, &o, &run);
    qe_opt_free(&p);
    if (rc)
        return rc;
    qe_err e = {0};
    qe_buf out = QE_BUF_INIT;
    if (format == QE_COMPARE_JSON) {
        if (print_json(&run, o.scorer)) {
            fprintf(stderr, "qeval compare: out of memory\n");
            rc = QE_EXIT_IO;
        }
    } else if (qe_compare_write(run.res, format, &out, &e)) {
        fprintf(stderr, "qeval compare: %s\n", e.msg);
        rc = QE_EXIT_IO;
    } else if (format == QE_COMPARE_TABLE) {
        if (flips > 0) {
            qe_buf fl = QE_BUF_INIT;
            if (qe_compare_write_flips(run.res, (size_t)flips, &fl, &e)) {
                fprintf(stderr, "qeval compare: %s\n", e.msg);
                rc = QE_EXIT_IO;
            } else if (fl.len) {
                if (qe_buf_puts(&out, "\nFlipped problems (model answer | baseline answer):\n") ||
                    qe_buf_append(&out, fl.data, fl.len)) {
                    fprintf(stderr, "qeval compare: out of memory\n");
                    rc = QE_EXIT_IO;
                }
            } else {
                qe_buf_puts(&out, "\nNo problem flipped: every model is right and wrong on the "
                                  "same problems as the baseline.\n");
            }
            qe_buf_free(&fl);
        }
        power_lines(&out, run.res);
        if (run.math)
            math_lines(&out, &run, flips > 0 ? (size_t)flips : 10);
    }
    if (!rc)
        fputs(qe_buf_str(&out), stdout);
    qe_buf_free(&out);
    qe_cmpcli_free(&run);
    fflush(stdout);
    if (!rc && ferror(stdout))
        rc = QE_EXIT_IO;
    return rc;
}
