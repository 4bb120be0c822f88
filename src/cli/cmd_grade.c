/* qeval grade: checks answers against gold with the math verifier.
 *
 *   qeval grade --gold G --pred P      one pair, verdict and why on stdout
 *   qeval grade --jsonl [FILE|-]       {"id","gold","pred"} lines in,
 *                                      {"id","verdict","reason"} lines out
 * pred may be a full response: the final answer is extracted first unless
 * --no-extract is given. */
#include "buf.h"
#include "cli.h"
#include "err.h"
#include "opt.h"
#include "verify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRADE_MAX_LINE (64 << 20) /* one JSONL record; longer lines are rejected */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qeval grade --gold GOLD --pred PRED [--no-extract] [--extract LIST]\n"
            "       qeval grade --jsonl [FILE|-] [--no-extract] [--extract LIST]\n"
            "\n"
            "Checks answers against gold answers with qeval's math verifier\n"
            "(docs/verifier.md). PRED may be a full model response: its final answer is\n"
            "extracted first (<think> blocks ignored), unless --no-extract is given.\n"
            "\n"
            "  --gold G         gold answer (LaTeX or plain)\n"
            "  --pred P         predicted answer or full response\n"
            "  --jsonl [FILE]   read {\"id\",\"gold\",\"pred\"} lines from FILE (default -,\n"
            "                   stdin); write {\"id\",\"verdict\":true|false|null,\"reason\"}\n"
            "                   lines to stdout in the same order\n"
            "  --no-extract     treat pred as the final answer\n"
            "  --extract LIST   extraction order, comma list of\n"
            "                   boxed,final,answer,math,number,short,whole\n"
            "                   (default boxed,final,answer,math,number,short)\n"
            "  -h, --help       this help\n"
            "\n"
            "Exit: 0 all graded; 1 some lines malformed or undecided-by-error;\n"
            "2 usage; 3 input unreadable.\n");
}

static int grade_one(const char *gold, const char *pred, int extract, qe_verify_opts *o,
                     qe_verify_result *r)
{
    if (extract)
        return qe_verify_response(gold, pred, o, r);
    if (qe_verify_pair(gold, pred, o, r))
        return QE_VERDICT_UNDECIDED;
    return r->verdict;
}

/* The string's text with each NUL (\u0000 in the JSON) replaced by U+FFFD,
 * as the client and rescore do, so no answer is cut at a NUL; malloc'd. */
static char *text_of(const json_t *s)
{
    const char *v = json_string_value(s);
    size_t n = json_string_length(s);
    qe_buf b = QE_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        const char *z = memchr(v + i, 0, n - i);
        size_t run = z ? (size_t)(z - (v + i)) : n - i;
        if (qe_buf_append(&b, v + i, run) || (z && qe_buf_puts(&b, "\xEF\xBF\xBD"))) {
            qe_buf_free(&b);
            return NULL;
        }
        i += run;
    }
    return qe_buf_detach(&b);
}

static int grade_jsonl(const char *path, int extract, qe_verify_opts *o)
{
    FILE *in = stdin;
    if (strcmp(path, "-")) {
        in = fopen(path, "r");
        if (!in) {
            fprintf(stderr, "qeval grade: %s: cannot open\n", path);
            return QE_EXIT_INPUT;
        }
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0, bad = 0;
    int wfail = 0;
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        int blank = 1;
        for (ssize_t i = 0; i < n; i++)
            if (line[i] != ' ' && line[i] != '\t' && line[i] != '\n' && line[i] != '\r')
                blank = 0;
        if (blank)
            continue;
        json_error_t je;
        json_t *doc = NULL;
        if (n <= GRADE_MAX_LINE)
            doc = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &je);
        else
            snprintf(je.text, sizeof je.text, "line longer than %d bytes", GRADE_MAX_LINE);
        json_t *id = doc ? json_object_get(doc, "id") : NULL;
        json_t *gold = doc ? json_object_get(doc, "gold") : NULL;
        json_t *pred = doc ? json_object_get(doc, "pred") : NULL;
        json_t *outj = json_object();
        json_object_set(outj, "id", id ? id : json_null());
        const char *err = NULL;
        if (!doc)
            err = je.text;
        else if (!json_is_object(doc))
            err = "not a JSON object";
        else if (!json_is_string(gold))
            err = "field \"gold\" missing or not a string";
        else if (!json_is_string(pred))
            err = "field \"pred\" missing or not a string";
        if (err) {
            fprintf(stderr, "qeval grade: line %ld: %s\n", lineno, err);
            bad++;
            json_object_set_new(outj, "verdict", json_null());
            char msg[300];
            snprintf(msg, sizeof msg, "line %ld: %s", lineno, err);
            json_object_set_new(outj, "reason", json_string(msg));
        } else {
            qe_verify_result r;
            char *g = text_of(gold), *p = text_of(pred);
            int v = g && p ? grade_one(g, p, extract, o, &r) : QE_VERDICT_UNDECIDED;
            if (!g || !p)
                snprintf(r.reason, sizeof r.reason, "out of memory");
            free(g);
            free(p);
            json_object_set_new(outj, "verdict", v < 0 ? json_null() : json_boolean(v));
            json_object_set_new(outj, "reason", json_string(r.reason));
        }
        char *txt = json_dumps(outj, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (!txt || printf("%s\n", txt) < 0)
            wfail = 1;
        free(txt);
        json_decref(outj);
        json_decref(doc);
    }
    int rerr = ferror(in);
    free(line);
    if (in != stdin)
        fclose(in);
    if (fflush(stdout) || wfail) {
        fprintf(stderr, "qeval grade: cannot write output\n");
        return QE_EXIT_IO;
    }
    if (rerr) {
        fprintf(stderr, "qeval grade: %s: read error\n", path);
        return QE_EXIT_INPUT;
    }
    return bad ? QE_EXIT_PARTIAL : QE_EXIT_OK;
}

enum { O_GOLD, O_PRED, O_NO_EXTRACT, O_EXTRACT, O_JSONL };

static const qe_opt_spec options[] = {
    {"gold", O_GOLD, QE_OPT_VALUE},         {"pred", O_PRED, QE_OPT_VALUE},
    {"no-extract", O_NO_EXTRACT, QE_OPT_FLAG}, {"extract", O_EXTRACT, QE_OPT_VALUE},
    {"jsonl", O_JSONL, QE_OPT_FLAG},
};
static const qe_opt_cmd cli = {"grade", options, sizeof options / sizeof *options, 0, NULL, 0};

int cmd_grade(int argc, char **argv)
{
    const char *gold = NULL, *pred = NULL, *jsonl = NULL;
    int extract = 1;
    qe_verify_opts o;
    qe_verify_opts_init(&o);
    qe_opt p;
    qe_opt_init(&p, &cli, argc, argv, 1);
    int id;
    while ((id = qe_opt_next(&p)) != QE_OPT_END) {
        switch (id) {
        case QE_OPT_HELP:
            usage(stdout);
            return QE_EXIT_OK;
        case O_GOLD:
            gold = p.val;
            break;
        case O_PRED:
            pred = p.val;
            break;
        case O_NO_EXTRACT:
            extract = 0;
            break;
        case O_EXTRACT:
            if (qe_extract_opts_parse(&o.extract, p.val)) {
                fprintf(stderr, "qeval grade: --extract: unknown method in '%s'\n", p.val);
                return QE_EXIT_USAGE;
            }
            break;
        case O_JSONL:
            jsonl = qe_opt_take_optional(&p);
            if (!jsonl)
                jsonl = "-";
            break;
        case QE_OPT_MISSING: /* reported */
            usage(stderr);
            return QE_EXIT_USAGE;
        default:
            fprintf(stderr, "qeval grade: unknown or incomplete option '%s'\n", p.arg);
            usage(stderr);
            return QE_EXIT_USAGE;
        }
    }
    if (jsonl && (gold || pred)) {
        fprintf(stderr, "qeval grade: --jsonl cannot be combined with --gold/--pred\n");
        return QE_EXIT_USAGE;
    }
    o.scratch = qe_verify_scratch_new();
    if (!o.scratch) {
        fprintf(stderr, "qeval grade: out of memory\n");
        return QE_EXIT_PARTIAL;
    }
    int rc;
    if (jsonl) {
        rc = grade_jsonl(jsonl, extract, &o);
    } else if (gold && pred) {
        qe_verify_result r;
        int v = grade_one(gold, pred, extract, &o, &r);
        printf("verdict: %s\n", v == 1 ? "true" : v == 0 ? "false" : "undecided");
        printf("reason: %s\n", r.reason);
        if (extract)
            printf("extracted (%s): %s\n", qe_extract_method_name(r.extract_method), r.extracted);
        printf("gold: %s\n", r.canon_gold);
        printf("pred: %s\n", r.canon_pred);
        rc = fflush(stdout) ? QE_EXIT_IO : QE_EXIT_OK;
    } else {
        fprintf(stderr, "qeval grade: need --gold and --pred, or --jsonl\n");
        usage(stderr);
        rc = QE_EXIT_USAGE;
    }
    qe_verify_scratch_free(o.scratch);
    return rc;
}
