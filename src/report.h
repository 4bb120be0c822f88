/* report: one self-contained HTML file for a comparison.
 *
 * Inline CSS, inline SVG charts and a small constant inline script; no
 * external requests. Sections: a findings box (one line per model vs
 * baseline per task, sorted by task then delta, colored real loss / real
 * gain / noise), summary table (accuracy, paired delta with 95% CI, McNemar
 * p, flips, truncation; the verdict sentence in a full-width row under each
 * model), a dot-and-whisker chart of accuracy with 95% Wilson intervals per
 * model x task, a paired flip chart, response-length histograms (unit chosen
 * per model: completion tokens, characters or words) and truncation bars
 * (when the data has them), a thinking-budget table (finish_reason length,
 * unclosed <think>, truncated without an answer; when responses exist), and
 * a paginated per-problem table with filter buttons (all / flipped /
 * truncated) and each full response in <details>.
 *
 * Every string that came from a model or a file (responses, answers, gold,
 * keys, model and task names) is hostile: it is HTML-escaped wherever it
 * lands, and never placed inside <script> or <style>. */
#ifndef QE_REPORT_H
#define QE_REPORT_H

#include <stdio.h>

#include "buf.h"
#include "compare.h"
#include "err.h"

/* Where one model's records on one task x filter came from, for the
 * page's "Inputs" section. Strings are only read during rendering. */
typedef struct {
    const char *model;    /* display name */
    const char *source;   /* the input path it came from, as given */
    const char *task, *filter;
    const char *file;     /* the records file read */
    const char *settings; /* its run config (compact JSON); NULL = unknown */
} qe_report_input;

typedef struct {
    const char *title;          /* page title; NULL = "qeval comparison" */
    size_t max_response_chars;  /* per embedded response; 0 = 4000 */
    size_t max_total_response;  /* all embedded responses; 0 = 32 MiB */
    size_t page_size;           /* per-problem rows per page; 0 = 100 */
    const qe_report_input *inputs; /* NULL: no "Inputs" section */
    size_t n_inputs;
    const char *verdicts;       /* how verdicts were made, e.g. "lm-eval's, as
                                 * recorded"; NULL = not said */
} qe_report_opts;

/* Appends the whole HTML document to out. opts may be NULL. */
int qe_report_render(const qe_compare_result *r, const qe_report_opts *opts, qe_buf *out,
                     qe_err *err);

/* Renders and writes to f; *bytes (may be NULL) receives the size written.
 * QE_EIO when the write fails. The caller opens and closes f. */
int qe_report_write_html(FILE *f, const qe_compare_result *r, const qe_report_opts *opts,
                         size_t *bytes, qe_err *err);

/* HTML-escapes s (& < > " ') onto out: safe in text and quoted attributes. */
int qe_report_escape(qe_buf *out, const char *s);

#endif
