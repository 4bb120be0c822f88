/* qeval report: the comparison of `qeval compare` as one self-contained HTML
 * file (src/report.h: inline CSS/SVG, no external requests, every model
 * string escaped). Same inputs and checks as compare (compare_cli.h). The
 * file is written atomically (temp file in the target directory, fsync,
 * then link/rename) and an existing file is never replaced without --force. */
#include "cli.h"
#include "compare_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "report.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qeval report [options] OUT.html INPUT...\n"
            "\n"
            "Writes the paired comparison of the inputs (as `qeval compare` reads them) as\n"
            "one self-contained HTML file: summary table with CIs, accuracy and flip\n"
            "charts, length/truncation histograms, and a per-problem table with filters.\n"
            "\n"
            "options:\n"
            "  --baseline NAME        model compared against (default: the first); as\n"
            "                         in qeval compare: a shown name, the DIR of\n"
            "                         NAME@DIR, the name of its run directory, or a path\n"
            "  --title T              page title (default \"qeval comparison\")\n"
            "  --task T               only this task\n"
            "  --allow-mismatch       include runs whose configs differ\n"
            "  --scorer lmeval|math   verdicts as recorded, or re-scored by the math verifier\n"
            "  --force                replace OUT.html if it exists\n"
            "  -h, --help             this help\n"
            "\n"
            "Exit: 0 written, 2 usage, 3 unusable input or mismatched configs, 4 write failed\n"
            "(or OUT.html exists without --force).\n");
}

static char *dir_of(const char *path)
{
    const char *s = strrchr(path, '/');
    if (!s)
        return strdup(".");
    return s == path ? strdup("/") : strndup(path, (size_t)(s - path));
}

/* Writes the report to a temp file beside out, then moves it into place. */
static int write_atomic(const char *out, const qe_compare_result *res, const qe_report_opts *ro,
                        int force, size_t *bytes)
{
    char *dir = dir_of(out);
    qe_buf tmp = QE_BUF_INIT;
    const char *b = strrchr(out, '/');
    qe_buf_printf(&tmp, "%s/.%s.tmpXXXXXX", dir ? dir : ".", b ? b + 1 : out);
    char *tpath = qe_buf_detach(&tmp);
    if (!dir || !tpath) {
        free(dir);
        free(tpath);
        fprintf(stderr, "qeval report: out of memory\n");
        return QE_EXIT_IO;
    }
    int rc = QE_EXIT_OK;
    int fd = mkstemp(tpath);
    if (fd < 0) {
        fprintf(stderr, "qeval report: %s: cannot create a file there: %s\n", dir,
                strerror(errno));
        free(dir);
        free(tpath);
        return QE_EXIT_IO;
    }
    fchmod(fd, 0644);
    FILE *f = fdopen(fd, "w");
    qe_err e = {0};
    if (!f) {
        close(fd);
        rc = QE_EXIT_IO;
        fprintf(stderr, "qeval report: %s: %s\n", tpath, strerror(errno));
    } else {
        if (qe_report_write_html(f, res, ro, bytes, &e)) {
            fprintf(stderr, "qeval report: %s: %s\n", out, e.msg);
            rc = QE_EXIT_IO;
        }
        if (fflush(f) || fsync(fileno(f))) {
            if (!rc)
                fprintf(stderr, "qeval report: %s: write failed: %s\n", out, strerror(errno));
            rc = QE_EXIT_IO;
        }
        if (fclose(f) && !rc) {
            fprintf(stderr, "qeval report: %s: write failed: %s\n", out, strerror(errno));
            rc = QE_EXIT_IO;
        }
    }
    if (!rc) {
        /* link() fails if out exists: no window where a file is clobbered */
        int moved = force ? rename(tpath, out) : link(tpath, out);
        if (moved) {
            if (errno == EEXIST)
                fprintf(stderr, "qeval report: %s exists; --force replaces it\n", out);
            else
                fprintf(stderr, "qeval report: %s: %s\n", out, strerror(errno));
            rc = QE_EXIT_IO;
        } else {
            int dfd = open(dir, O_RDONLY | O_DIRECTORY);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
        }
    }
    if (rc || !force)
        unlink(tpath);
    free(dir);
    free(tpath);
    return rc;
}

enum { O_TITLE, O_FORCE };

static const qe_opt_spec options[] = {
    {"title", O_TITLE, QE_OPT_VALUE},
    {"force", O_FORCE, QE_OPT_FLAG},
    {"-f", O_FORCE, QE_OPT_FLAG},
    QE_CMPCLI_OPTIONS,
};
static const qe_opt_cmd cli = {"report", options, sizeof options / sizeof *options,
                               QE_OPT_COLLECT, usage, 2};

int cmd_report(int argc, char **argv)
{
    qe_cmpcli_opts o = {"report", NULL, NULL, 0, QE_SCORER_LMEVAL};
    qe_report_opts ro = {0};
    int force = 0;
    qe_opt p;
    if (qe_opt_init(&p, &cli, argc, argv, 1))
        return QE_EXIT_IO;
    for (int id; (id = qe_opt_next(&p)) != QE_OPT_END;) {
        if (id == O_TITLE)
            ro.title = p.val;
        else if (id == O_FORCE)
            force = 1;
        else if (qe_cmpcli_option(&o, id, p.arg, p.val))
            qe_opt_fail(&p);
    }
    if (p.exit >= 0) {
        qe_opt_free(&p);
        return p.exit;
    }
    const char **args = p.pos;
    size_t nargs = p.n_pos;
    const char *out = args[0];
    size_t ol = strlen(out);
    struct stat st;
    if (ol < 5 || (strcmp(out + ol - 5, ".html") && strcmp(out + ol - 4, ".htm"))) {
        fprintf(stderr, "qeval report: the first argument is the output file and must end in "
                        ".html (got '%s')\n",
                out);
        qe_opt_free(&p);
        return QE_EXIT_USAGE;
    }
    if (!force && stat(out, &st) == 0) { /* fail before the work; link() re-checks */
        fprintf(stderr, "qeval report: %s exists; --force replaces it\n", out);
        qe_opt_free(&p);
        return QE_EXIT_IO;
    }
    qe_cmpcli_run run;
    int rc = qe_cmpcli_prepare(args + 1, nargs - 1, &o, &run);
    if (rc) {
        qe_opt_free(&p);
        return rc;
    }
    /* the page says what it compares: files, run settings, scorer */
    const qe_inputs *in = run.in;
    size_t cap = in->n_groups * in->n_models, n_in = 0;
    qe_report_input *rows = calloc(cap ? cap : 1, sizeof *rows);
    char **dumps = calloc(cap ? cap : 1, sizeof *dumps);
    for (size_t g = 0; rows && dumps && g < in->n_groups; g++)
        for (size_t m = 0; m < in->n_models; m++) {
            const qe_inputs_side *sd = &in->groups[g].sides[m];
            if (!sd->n)
                continue;
            dumps[n_in] = sd->config ? json_dumps(sd->config, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            rows[n_in] = (qe_report_input){in->models[m].name, in->models[m].source,
                                           in->groups[g].task, in->groups[g].filter, sd->file,
                                           dumps[n_in]};
            n_in++;
        }
    if (rows && dumps) {
        ro.inputs = rows;
        ro.n_inputs = n_in;
    }
    ro.verdicts = o.scorer == QE_SCORER_MATH
                      ? "re-scored from each response by qeval's math verifier (--scorer math)"
                      : "as recorded in the inputs (lm-eval's scorer for lm-eval and qeval files)";
    size_t bytes = 0;
    rc = write_atomic(out, run.res, &ro, force, &bytes);
    for (size_t i = 0; dumps && i < n_in; i++)
        free(dumps[i]);
    free(dumps);
    free(rows);
    if (!rc)
        printf("wrote %s (%zu bytes, %.1f KB)\n", out, bytes, (double)bytes / 1024.0);
    qe_cmpcli_free(&run);
    qe_opt_free(&p);
    fflush(stdout);
    return rc;
}
