/* report: see report.h. The page is built in one qe_buf. Layout numbers
 * (chart widths, bins) are constants here; model text only ever passes
 * through esc()/esc_n(). */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "extract.h"
#include "stats.h"

#define Z95 1.959963984540054

/* The code point of an invisible bidirectional control at s (ALM U+061C,
 * LRM/RLM U+200E/F, embeddings and overrides U+202A-E, isolates
 * U+2066-9) and its UTF-8 length in *len; 0 if s holds none. */
static unsigned bidi_control(const unsigned char *s, size_t n, size_t *len)
{
    if (n >= 2 && s[0] == 0xD8 && s[1] == 0x9C) {
        *len = 2;
        return 0x061C;
    }
    /* s may end (NUL) at any byte: s[2] is read only after s[1] proved to
     * be a continuation byte, not the terminator */
    if (n < 3 || s[0] != 0xE2 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
        return 0;
    unsigned cp = ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    if (cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
        (cp >= 0x2066 && cp <= 0x2069)) {
        *len = 3;
        return cp;
    }
    return 0;
}

/* HTML-escaped s (at most n bytes), bidirectional controls shown as
 * "[U+202E]": model text must not reorder what the page shows around it
 * (nor itself, invisibly: the reader sees the control was there). */
static void esc_n(qe_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i]; i++) {
        size_t bl;
        unsigned cp = (unsigned char)s[i] >= 0xD8
                          ? bidi_control((const unsigned char *)s + i, n - i, &bl)
                          : 0;
        if (cp) {
            qe_buf_printf(out, "[U+%04X]", cp);
            i += bl - 1;
            continue;
        }
        switch (s[i]) {
        case '&': qe_buf_puts(out, "&amp;"); break;
        case '<': qe_buf_puts(out, "&lt;"); break;
        case '>': qe_buf_puts(out, "&gt;"); break;
        case '"': qe_buf_puts(out, "&quot;"); break;
        case '\'': qe_buf_puts(out, "&#39;"); break;
        default: qe_buf_putc(out, s[i]);
        }
    }
}

int qe_report_escape(qe_buf *out, const char *s)
{
    esc_n(out, s ? s : "", (size_t)-1);
    return out->data || !s || !*s ? 0 : -1;
}

static void esc(qe_buf *out, const char *s)
{
    esc_n(out, s ? s : "", (size_t)-1);
}

/* Cut at most n bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t n)
{
    if (len <= n)
        return len;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static const char CSS[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:3px 6px;"
    "vertical-align:top;text-align:left}th{background:#f4f4f4}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums;white-space:nowrap}"
    "table.summary{width:100%;max-width:1200px}table.summary tr.main td{border-bottom:0}"
    "table.summary tr.main td:nth-child(2){min-width:13em}"
    "table.summary tr.vrow td{border-top:0;padding:0 6px 5px 6px}"
    "td.v{font-size:13px;color:#444;border-left:4px solid #bbb}"
    "tr.sig-loss td.v{background:#fde2e2;border-left-color:#c0262d;color:#222}"
    "tr.sig-gain td.v{background:#e0f5e0;border-left-color:#17803d;color:#222}"
    ".nm{display:inline-block;max-width:18em;overflow-wrap:break-word;vertical-align:top}"
    ".findings{border:1px solid #ccc;background:#fafafa;padding:.4em 1em .6em;margin:1em 0;"
    "max-width:1200px}.findings h2{margin-top:.3em;border:0}.findings ul{list-style:none;"
    "padding:0;margin:.3em 0}.findings li{padding:3px 8px;margin:3px 0;border-left:5px solid "
    "#bbb;background:#fff}.findings li.loss{border-left-color:#c0262d;background:#fde2e2}"
    ".findings li.gain{border-left-color:#17803d;background:#e0f5e0}"
    ".findings li.noise{color:#444}.findings .t{font-weight:bold}"
    ".findings .k{font-weight:bold;font-variant-numeric:tabular-nums}"
    ".ok{color:#17803d;font-weight:bold}"
    ".bad{color:#c0262d;font-weight:bold}.tr{color:#a15c00}details pre{white-space:pre-wrap;"
    "max-height:30em;overflow:auto;background:#f8f8f8;padding:.5em;max-width:60em}"
    "svg text{font:12px system-ui,sans-serif}svg text.u{fill:#666;font-size:11px}"
    ".muted{color:#777}table.inputs code{word-break:break-all;font-size:12px}.hists{display:flex;flex-wrap:wrap;gap:4px 12px}"
    ".btn{margin-right:.5em;padding:2px 10px}.btn.on{background:#333;color:#fff}"
    "code{background:#f4f4f4;padding:0 3px}";

/* Constant script: filters and pagination over rows' data-* flags. No
 * model text is ever placed here. */
static const char JS[] =
    "(function(){\n"
    "function setup(t){var rows=[].slice.call(t.tBodies[0].rows);"
    "var ps=parseInt(t.getAttribute('data-page-size'),10)||100;var mode='all',page=0;"
    "var bar=document.getElementById(t.getAttribute('data-bar'));"
    "var info=bar.querySelector('.pinfo');"
    "function sel(){return rows.filter(function(r){return mode==='all'||"
    "(mode==='flip'&&r.getAttribute('data-flip')==='1')||"
    "(mode==='trunc'&&r.getAttribute('data-trunc')==='1');});}"
    "function draw(){var s=sel();var np=Math.max(1,Math.ceil(s.length/ps));"
    "if(page>=np)page=np-1;rows.forEach(function(r){r.style.display='none';});"
    "s.slice(page*ps,(page+1)*ps).forEach(function(r){r.style.display='';});"
    "info.textContent=s.length+' problems, page '+(page+1)+' of '+np;}"
    "[].forEach.call(bar.querySelectorAll('button[data-mode]'),function(b){"
    "b.addEventListener('click',function(){mode=b.getAttribute('data-mode');page=0;"
    "[].forEach.call(bar.querySelectorAll('button[data-mode]'),function(x){"
    "x.className='btn'+(x===b?' on':'');});draw();});});"
    "bar.querySelector('.prev').addEventListener('click',function(){if(page>0)page--;draw();});"
    "bar.querySelector('.next').addEventListener('click',function(){page++;draw();});draw();}\n"
    "[].forEach.call(document.querySelectorAll('table.problems'),setup);\n"
    "})();\n";

static const char *PALETTE[] = {"#333333", "#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"};
#define NPAL (sizeof PALETTE / sizeof PALETTE[0])

static const qe_compare_model *model_at(const qe_compare_group *g, size_t j)
{
    return j == 0 ? &g->in->baseline : &g->in->models[j - 1];
}

static int rec_length_stop(const qe_compare_record *r);
static int rec_think_open(const qe_compare_record *r);

/* compare.c's truncation: finish_reason length or an unclosed <think>. */
static int rec_truncated(const qe_compare_record *r)
{
    return rec_length_stop(r) || rec_think_open(r);
}

static int verdict_of(const qe_compare_record *r)
{
    if (r->repeats > 1 && r->maj_correct >= 0)
        return r->maj_correct;
    return r->correct >= 0.5;
}

/* Accuracy of a whole model with a 95% interval: Wilson for binary
 * verdicts, mean +- z*stderr when some records are fractional (repeats). */
static void model_acc(const qe_compare_model *m, double *acc, double *lo, double *hi)
{
    double s = 0.0;
    int frac = 0;
    for (size_t i = 0; i < m->n; i++) {
        s += m->recs[i].correct;
        frac |= m->recs[i].correct != 0.0 && m->recs[i].correct != 1.0;
    }
    *acc = m->n ? s / (double)m->n : NAN;
    *lo = *hi = *acc;
    if (m->n == 0)
        return;
    if (!frac) {
        qe_stats_wilson((uint64_t)llround(s), m->n, Z95, lo, hi);
    } else if (m->n > 1) {
        double v = 0.0;
        for (size_t i = 0; i < m->n; i++)
            v += pow(m->recs[i].correct - *acc, 2.0);
        double se = sqrt(v / (double)(m->n - 1)) / sqrt((double)m->n);
        *lo = fmax(0.0, *acc - Z95 * se);
        *hi = fmin(1.0, *acc + Z95 * se);
    }
}

/* p as the verdict sentences print it (compare.c's rounding), escaped. */
static void put_p_words(qe_buf *o, double p)
{
    if (!isfinite(p))
        qe_buf_puts(o, "p unknown");
    else if (p < 0.001)
        qe_buf_puts(o, "p &lt; 0.001");
    else if (p < 0.01)
        qe_buf_printf(o, "p = %.3f", p);
    else
        qe_buf_printf(o, "p = %.2f", p);
}

/* Points with a typographic sign: "−32.4", "+2.0", "0.0". */
static void put_points(qe_buf *o, double delta)
{
    double pts = 100.0 * delta;
    if (!isfinite(pts))
        qe_buf_puts(o, "-");
    else if (pts <= -0.05)
        qe_buf_printf(o, "\xe2\x88\x92%.1f", -pts);
    else if (pts >= 0.05)
        qe_buf_printf(o, "+%.1f", pts);
    else
        qe_buf_puts(o, "0.0");
}

/* Escaped s, cut to at most maxchars UTF-8 characters with an ellipsis.
 * For SVG text, which cannot wrap or ellipsize by itself. */
static void esc_chars(qe_buf *o, const char *s, size_t maxchars)
{
    size_t i = 0;
    for (size_t nch = 0; s[i] && nch < maxchars; nch++) {
        i++;
        while (((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
    }
    esc_n(o, s, i);
    if (s[i])
        qe_buf_puts(o, "\xe2\x80\xa6");
}

/* <code>s</code>, escaped, cut at max bytes (on a UTF-8 boundary) with an
 * ellipsis. */
static void code_cut(qe_buf *o, const char *s, size_t max)
{
    size_t l = strlen(s), cut = utf8_cut(s, l, max);
    qe_buf_puts(o, "<code>");
    esc_n(o, s, cut);
    qe_buf_puts(o, cut < l ? "&hellip;</code>" : "</code>");
}

/* An SVG text label "a · b" (b may be NULL) of at most maxchars characters;
 * the full text is in a <title> child (the browser's tooltip). */
static void svg_label(qe_buf *o, int x, int y, const char *anchor, const char *a,
                      const char *b, const char *suffix, size_t maxchars)
{
    qe_buf raw = QE_BUF_INIT;
    qe_buf_puts(&raw, a ? a : "");
    if (b) {
        qe_buf_puts(&raw, " \xc2\xb7 ");
        qe_buf_puts(&raw, b);
    }
    if (suffix)
        qe_buf_puts(&raw, suffix);
    qe_buf_printf(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"%s\"><title>", x, y, anchor);
    esc(o, qe_buf_str(&raw));
    qe_buf_puts(o, "</title>");
    esc_chars(o, qe_buf_str(&raw), maxchars);
    qe_buf_puts(o, "</text>");
    qe_buf_free(&raw);
}

/* A name that wraps anywhere inside a bounded width, full text as title. */
static void name_span(qe_buf *o, const char *name)
{
    qe_buf_puts(o, "<span class=nm title=\"");
    esc(o, name);
    qe_buf_puts(o, "\">");
    esc(o, name);
    qe_buf_puts(o, "</span>");
}

static void pctcell(qe_buf *o, double v)
{
    if (isfinite(v))
        qe_buf_printf(o, "<td class=n>%.1f%%</td>", 100.0 * v);
    else
        qe_buf_puts(o, "<td class=n>-</td>");
}

static int filter_shown(const char *f)
{
    return f && *f && strcmp(f, "none") != 0;
}

/* real loss / real gain / noise / identical: the same split as compare.c's
 * verdict sentence (exact McNemar p < 0.05). */
enum { SIG_NOISE, SIG_LOSS, SIG_GAIN, SIG_SAME };

static int row_sig(const qe_compare_row *w)
{
    if (w->gained_n + w->lost_n == 0)
        return SIG_SAME;
    if (w->mcnemar_p < 0.05)
        return w->delta < 0 ? SIG_LOSS : SIG_GAIN;
    return SIG_NOISE;
}

static int cmp_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

/* Findings order: task, filter, then delta (largest loss first). */
static int cmp_finding(const void *pa, const void *pb)
{
    const qe_compare_row *a = *(const qe_compare_row *const *)pa;
    const qe_compare_row *b = *(const qe_compare_row *const *)pb;
    int c = cmp_str(a->task, b->task);
    if (!c)
        c = cmp_str(a->filter, b->filter);
    if (!c)
        c = (a->delta > b->delta) - (a->delta < b->delta);
    if (!c)
        c = cmp_str(a->model, b->model);
    return c;
}

/* The headline at a glance: one line per model vs baseline per task. */
static void findings(qe_buf *o, const qe_compare_result *r)
{
    size_t n = 0;
    for (size_t g = 0; g < r->n_groups; g++)
        n += r->groups[g].in->n_models;
    if (n == 0)
        return;
    const qe_compare_row **rows = malloc(n * sizeof *rows);
    if (!rows) {
        qe_buf_puts(o, "<p class=muted>Findings omitted: out of memory.</p>\n");
        return;
    }
    size_t k = 0;
    int same_base = 1;
    for (size_t g = 0; g < r->n_groups; g++)
        for (size_t j = 0; j < r->groups[g].in->n_models; j++) {
            rows[k] = &r->groups[g].rows[j];
            same_base &= cmp_str(rows[k]->baseline, rows[0]->baseline) == 0;
            k++;
        }
    qsort(rows, n, sizeof *rows, cmp_finding);
    qe_buf_puts(o, "<section class=findings><h2>Findings</h2>\n<p class=muted>");
    if (same_base) {
        qe_buf_puts(o, "Each model against the baseline <b>");
        esc(o, rows[0]->baseline);
        qe_buf_puts(o, "</b>");
    } else {
        qe_buf_puts(o, "Each model against its baseline");
    }
    qe_buf_puts(o, ", paired per problem. Real = exact McNemar p &lt; 0.05 (each comparison "
                   "on its own, no correction for multiple comparisons).</p>\n<ul>\n");
    static const char *const cls[] = {"noise", "loss", "gain", "same"};
    for (size_t i = 0; i < n; i++) {
        const qe_compare_row *w = rows[i];
        int sig = row_sig(w);
        qe_buf_printf(o, "<li class=\"f %s\"><span class=t>", cls[sig]);
        esc(o, w->task);
        if (filter_shown(w->filter)) {
            qe_buf_putc(o, '/');
            esc(o, w->filter);
        }
        qe_buf_puts(o, "</span>: ");
        esc(o, w->model);
        if (!same_base) {
            qe_buf_puts(o, " vs ");
            esc(o, w->baseline);
        }
        qe_buf_puts(o, " <span class=k>");
        put_points(o, w->delta);
        qe_buf_puts(o, " points</span>");
        if (sig == SIG_SAME) {
            qe_buf_printf(o, " \xe2\x80\x94 identical verdicts on all %zu problem%s", w->n_paired,
                          w->n_paired == 1 ? "" : "s");
        } else {
            qe_buf_puts(o, " (");
            put_p_words(o, w->mcnemar_p);
            qe_buf_puts(o, ") \xe2\x80\x94 ");
            if (sig == SIG_LOSS)
                qe_buf_puts(o, "<b>real loss</b>");
            else if (sig == SIG_GAIN)
                qe_buf_puts(o, "<b>real gain</b>");
            else if (isfinite(w->mdd))
                qe_buf_printf(o, "not distinguishable from noise; %zu problem%s detect%s "
                                 "\xe2\x89\xa5 %.1f points",
                              w->n_paired, w->n_paired == 1 ? "" : "s",
                              w->n_paired == 1 ? "s" : "", 100.0 * w->mdd);
            else
                qe_buf_printf(o, "not distinguishable from noise; %zu problem%s cannot "
                                 "estimate the detectable difference",
                              w->n_paired, w->n_paired == 1 ? "" : "s");
        }
        qe_buf_puts(o, "</li>\n");
    }
    qe_buf_puts(o, "</ul></section>\n");
    free(rows);
}

#define SUMMARY_COLS 12

static void summary_table(qe_buf *o, const qe_compare_result *r)
{
    qe_buf_puts(o, "<h2>Summary</h2><table class=summary><thead><tr><th>task</th>"
                   "<th>model vs baseline</th><th>n paired</th><th>accuracy</th>"
                   "<th>baseline</th><th>&Delta; points</th><th>95% CI</th><th>McNemar p</th>"
                   "<th>gained / lost</th><th>truncated</th><th>baseline truncated</th>"
                   "<th>min. detectable</th></tr></thead><tbody>\n");
    for (size_t g = 0; g < r->n_groups; g++) {
        const qe_compare_group *gr = &r->groups[g];
        for (size_t j = 0; j < gr->in->n_models; j++) {
            const qe_compare_row *w = &gr->rows[j];
            char p[32];
            qe_compare_format_p_cell(p, sizeof p, w->mcnemar_p);
            int sig = row_sig(w);
            const char *cls = sig == SIG_LOSS ? " sig-loss" : sig == SIG_GAIN ? " sig-gain" : "";
            qe_buf_printf(o, "<tr class=\"main%s\"><td>", cls);
            name_span(o, w->task);
            if (filter_shown(w->filter)) {
                qe_buf_puts(o, "<br><span class=muted>");
                esc(o, w->filter);
                qe_buf_puts(o, "</span>");
            }
            qe_buf_puts(o, "</td><td>");
            name_span(o, w->model);
            qe_buf_puts(o, " <span class=muted>vs</span> ");
            name_span(o, w->baseline);
            qe_buf_printf(o, "</td><td class=n>%zu</td>", w->n_paired);
            pctcell(o, w->m.accuracy);
            pctcell(o, w->b.accuracy);
            qe_buf_printf(o, "<td class=n>%+.1f</td><td class=n>[%+.1f, %+.1f]</td>"
                             "<td class=n>%s</td><td class=n>%llu / %llu</td>",
                          100.0 * w->delta, 100.0 * w->ci_low, 100.0 * w->ci_high, p,
                          (unsigned long long)w->gained_n, (unsigned long long)w->lost_n);
            pctcell(o, w->m.truncation_rate);
            pctcell(o, w->b.truncation_rate);
            if (isfinite(w->mdd))
                qe_buf_printf(o, "<td class=n>%.1f pts</td>", 100.0 * w->mdd);
            else
                qe_buf_puts(o, "<td class=n>-</td>");
            qe_buf_printf(o, "</tr>\n<tr class=\"vrow%s\"><td class=v colspan=%d>", cls,
                          SUMMARY_COLS);
            esc(o, w->verdict);
            qe_buf_puts(o, "</td></tr>\n");
        }
    }
    qe_buf_puts(o, "</tbody></table>\n<p class=muted>95% CI of the paired difference: "
                   "Newcombe's hybrid score interval (bootstrap with repeats); p: exact "
                   "two-sided McNemar test on the discordant problems; min. detectable: "
                   "smallest difference the paired design detects with 80% power at the 5% "
                   "level. Truncated: finish_reason length or a &lt;think&gt; never closed.</p>\n");
}

/* SVG row labels: at most LABEL_CHARS characters (about 7 px each at 12 px
 * in common fonts) right-aligned in LABEL_LEFT pixels. */
#define LABEL_CHARS 38
#define LABEL_LEFT 290

/* Dot-and-whisker: one row per model x task, x = accuracy 0..100%. */
static void dot_chart(qe_buf *o, const qe_compare_result *r)
{
    size_t nrows = 0;
    for (size_t g = 0; g < r->n_groups; g++)
        nrows += 1 + r->groups[g].in->n_models;
    const int left = LABEL_LEFT, width = 520, rh = 22, top = 30;
    int h = top + (int)nrows * rh + 30;
    qe_buf_puts(o, "<h2>Accuracy with 95% intervals</h2>\n");
    qe_buf_printf(o, "<svg class=dots xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                     "height=\"%d\" role=\"img\" aria-label=\"accuracy per model and task\">\n",
                  left + width + 80, h);
    for (int t = 0; t <= 100; t += 10) {
        int x = left + width * t / 100;
        qe_buf_printf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#e4e4e4\"/>"
                         "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d%%</text>\n",
                      x, top - 8, x, h - 25, x, h - 10, t);
    }
    size_t row = 0;
    for (size_t g = 0; g < r->n_groups; g++) {
        const qe_compare_group *gr = &r->groups[g];
        for (size_t j = 0; j <= gr->in->n_models; j++, row++) {
            const qe_compare_model *m = model_at(gr, j);
            double acc, lo, hi;
            model_acc(m, &acc, &lo, &hi);
            int y = top + (int)row * rh + rh / 2;
            svg_label(o, left - 8, y + 4, "end", gr->in->task, m->name,
                      j == 0 ? " (baseline)" : NULL, LABEL_CHARS);
            qe_buf_putc(o, '\n');
            if (!isfinite(acc))
                continue;
            const char *col = PALETTE[j % NPAL];
            qe_buf_printf(o, "<line class=whisker x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
                             "stroke=\"%s\" stroke-width=\"2\"/>"
                             "<circle class=dot cx=\"%.1f\" cy=\"%d\" r=\"5\" fill=\"%s\">"
                             "<title>%.1f%% [%.1f, %.1f]</title></circle>"
                             "<text x=\"%d\" y=\"%d\">%.1f%%</text>\n",
                          left + width * lo, y, left + width * hi, y, col, left + width * acc, y,
                          col, 100 * acc, 100 * lo, 100 * hi, left + width + 8, y + 4, 100 * acc);
        }
    }
    qe_buf_puts(o, "</svg>\n");
}

/* Paired flips: lost to the left (red), gained to the right (green). */
static void flip_chart(qe_buf *o, const qe_compare_result *r)
{
    size_t nrows = 0;
    uint64_t maxc = 1;
    for (size_t g = 0; g < r->n_groups; g++)
        for (size_t j = 0; j < r->groups[g].in->n_models; j++) {
            const qe_compare_row *w = &r->groups[g].rows[j];
            nrows++;
            if (w->gained_n > maxc)
                maxc = w->gained_n;
            if (w->lost_n > maxc)
                maxc = w->lost_n;
        }
    const int left = LABEL_LEFT + 28, half = 240, rh = 22, top = 24;
    int mid = left + half, h = top + (int)nrows * rh + 20;
    qe_buf_puts(o, "<h2>Paired flips against the baseline</h2>\n<p class=muted>Red: problems "
                   "the baseline got right and the model got wrong (lost). Green: the reverse "
                   "(gained). Equal bars mean noise; one-sided bars mean a real "
                   "difference.</p>\n");
    qe_buf_printf(o, "<svg class=flips xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                     "height=\"%d\" role=\"img\" aria-label=\"flipped problems\">\n"
                     "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n"
                     "<text x=\"%d\" y=\"14\" text-anchor=\"end\">lost</text>"
                     "<text x=\"%d\" y=\"14\">gained</text>\n",
                  left + 2 * half + 60, h, mid, top - 4, mid, h - 10, mid - 6, mid + 6);
    size_t row = 0;
    for (size_t g = 0; g < r->n_groups; g++)
        for (size_t j = 0; j < r->groups[g].in->n_models; j++, row++) {
            const qe_compare_row *w = &r->groups[g].rows[j];
            int y = top + (int)row * rh;
            double wl = (double)half * (double)w->lost_n / (double)maxc;
            double wg = (double)half * (double)w->gained_n / (double)maxc;
            svg_label(o, left - 36, y + 15, "end", w->task, w->model, NULL, LABEL_CHARS);
            qe_buf_printf(o, "\n<rect class=lost x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
                             "height=\"16\" fill=\"#d9534f\"/><text x=\"%.1f\" y=\"%d\" "
                             "text-anchor=\"end\">%llu</text>"
                             "<rect class=gained x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"16\" "
                             "fill=\"#3c9d4e\"/><text x=\"%.1f\" y=\"%d\">%llu</text>\n",
                          mid - wl, y + 2, wl, mid - wl - 4, y + 15,
                          (unsigned long long)w->lost_n, mid, y + 2, wg, mid + wg + 4, y + 15,
                          (unsigned long long)w->gained_n);
        }
    qe_buf_puts(o, "</svg>\n");
}

/* Length measures, in order of preference per model: completion tokens,
 * characters of the response, words (some source data has only those). */
enum { LEN_TOKENS, LEN_CHARS, LEN_WORDS, LEN_KINDS };

static double rec_length(const qe_compare_record *r, int kind)
{
    if (kind == LEN_CHARS)
        return r->response ? (double)strlen(r->response) : -1.0;
    if (kind == LEN_TOKENS)
        return (double)r->completion_tokens;
    return (double)r->word_count;
}

/* The unit one model's chart uses: the kind most of its records have
 * (ties: tokens, then characters, then words); -1 when it has none. Chosen
 * per model so that a model with only word counts still gets a chart next to
 * models with responses. */
static int model_len_kind(const qe_compare_model *m)
{
    size_t have[LEN_KINDS] = {0};
    for (int k = 0; k < LEN_KINDS; k++)
        for (size_t i = 0; i < m->n; i++)
            have[k] += rec_length(&m->recs[i], k) >= 0;
    int best = -1;
    for (int k = 0; k < LEN_KINDS; k++)
        if (have[k] && (best < 0 || have[k] > have[best]))
            best = k;
    return best;
}

#define NBINS 20

static void hist_svg(qe_buf *o, const qe_compare_model *m, int kind, double maxv, int base)
{
    static const char *const unit[] = {"completion tokens", "characters", "words"};
    size_t all[NBINS] = {0}, bad[NBINS] = {0}, peak = 1, n = 0;
    for (size_t i = 0; i < m->n; i++) {
        double v = rec_length(&m->recs[i], kind);
        if (v < 0)
            continue;
        int b = (int)(v / maxv * NBINS);
        if (b >= NBINS)
            b = NBINS - 1;
        all[b]++;
        n++;
        bad[b] += !verdict_of(&m->recs[i]);
        if (all[b] > peak)
            peak = all[b];
    }
    qe_buf_printf(o, "<svg class=hist data-unit=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
                     "width=\"230\" height=\"142\">",
                  unit[kind]);
    svg_label(o, 4, 13, "start", m->name, NULL, base ? " (baseline)" : NULL, 30);
    qe_buf_printf(o, "<text class=u x=\"4\" y=\"27\">%zu responses, in %s</text>", n, unit[kind]);
    for (int b = 0; b < NBINS; b++) {
        double ha = 80.0 * (double)all[b] / (double)peak;
        double hb = 80.0 * (double)bad[b] / (double)peak;
        qe_buf_printf(o, "<rect x=\"%d\" y=\"%.1f\" width=\"10\" height=\"%.1f\" "
                         "fill=\"#9ecae1\"><title>%zu</title></rect>"
                         "<rect x=\"%d\" y=\"%.1f\" width=\"10\" height=\"%.1f\" "
                         "fill=\"#3182bd\"/>",
                      4 + 11 * b, 116.0 - ha, ha, all[b], 4 + 11 * b, 116.0 - hb, hb);
    }
    qe_buf_printf(o, "<line x1=\"2\" y1=\"116\" x2=\"226\" y2=\"116\" stroke=\"#444\"/>"
                     "<text class=u x=\"4\" y=\"130\">0</text>"
                     "<text class=u x=\"224\" y=\"130\" text-anchor=\"end\">%.0f</text></svg>\n",
                  maxv);
}

static void histograms(qe_buf *o, const qe_compare_result *r)
{
    int header = 0;
    for (size_t g = 0; g < r->n_groups; g++) {
        const qe_compare_group *gr = &r->groups[g];
        size_t nm = gr->in->n_models + 1;
        int any_len = 0, have_trunc = 0;
        double maxv[LEN_KINDS] = {1.0, 1.0, 1.0};
        for (size_t j = 0; j < nm; j++) {
            const qe_compare_model *m = model_at(gr, j);
            int kind = model_len_kind(m);
            any_len |= kind >= 0;
            for (size_t i = 0; i < m->n; i++) {
                have_trunc |= m->recs[i].finish_reason || m->recs[i].response;
                if (kind >= 0)
                    maxv[kind] = fmax(maxv[kind], rec_length(&m->recs[i], kind));
            }
        }
        if (!any_len && !have_trunc)
            continue;
        if (!header) {
            qe_buf_puts(o, "<h2>Response length and truncation</h2>\n");
            header = 1;
        }
        qe_buf_puts(o, "<h3>");
        esc(o, gr->in->task);
        qe_buf_puts(o, "</h3>\n");
        if (any_len) {
            qe_buf_printf(o, "<p class=muted>Response length, %d bins from 0 to the longest "
                             "response in the same unit; each chart names its unit (completion "
                             "tokens when the data has them, else characters of the response, "
                             "else words). Light = all responses, dark = wrong answers.</p>\n"
                             "<div class=hists>",
                          NBINS);
            qe_buf none = QE_BUF_INIT;
            for (size_t j = 0; j < nm; j++) {
                const qe_compare_model *m = model_at(gr, j);
                int kind = model_len_kind(m);
                if (kind >= 0) {
                    hist_svg(o, m, kind, maxv[kind], j == 0);
                } else {
                    if (none.len)
                        qe_buf_puts(&none, ", ");
                    esc(&none, m->name);
                }
            }
            qe_buf_puts(o, "</div>\n");
            if (none.len)
                qe_buf_printf(o, "<p class=muted>No length data (no tokens, response or word "
                                 "count) for: %s.</p>\n",
                              qe_buf_str(&none));
            qe_buf_free(&none);
        }
        if (have_trunc) {
            qe_buf_puts(o, "<p class=muted>Truncated responses (finish_reason length, or "
                           "&lt;think&gt; never closed):</p>\n");
            qe_buf_printf(o, "<svg class=trunc xmlns=\"http://www.w3.org/2000/svg\" "
                             "width=\"620\" height=\"%d\">",
                          (int)nm * 20 + 6);
            for (size_t j = 0; j < nm; j++) {
                const qe_compare_model *m = model_at(gr, j);
                size_t t = 0;
                for (size_t i = 0; i < m->n; i++)
                    t += (size_t)rec_truncated(&m->recs[i]);
                double rate = m->n ? (double)t / (double)m->n : 0.0;
                int y = 4 + (int)j * 20;
                svg_label(o, 240, y + 12, "end", m->name, NULL, NULL, 32);
                qe_buf_printf(o, "<rect x=\"250\" y=\"%d\" width=\"%.1f\" height=\"14\" "
                                 "fill=\"#e6a23c\"/><text x=\"%.1f\" y=\"%d\">%.1f%% "
                                 "(%zu)</text>",
                              y, 300.0 * rate, 254.0 + 300.0 * rate, y + 12, 100.0 * rate, t);
            }
            qe_buf_puts(o, "</svg>\n");
        }
    }
}

/* ---- thinking budget ---------------------------------------------------- */

static int rec_length_stop(const qe_compare_record *r)
{
    return r->finish_reason && strcmp(r->finish_reason, "length") == 0;
}

/* A <think> opened after the last </think> (or with none): never closed. */
static int rec_think_open(const qe_compare_record *r)
{
    if (!r->response)
        return 0;
    const char *open = NULL, *close = NULL, *p = r->response;
    while ((p = strstr(p, "<think>")) != NULL)
        open = p++;
    p = r->response;
    while ((p = strstr(p, "</think>")) != NULL)
        close = p++;
    return open && (!close || close < open);
}

/* 1 no extractable answer, 0 an answer, -1 unknown. The data's extracted
 * answer when it has one, else qeval's default extractor on the response
 * (which ignores an unclosed <think>'s text, as lm-eval-style scoring of a
 * reasoning model would). */
static int rec_no_answer(const qe_compare_record *r, const qe_extract_opts *xo)
{
    if (r->extracted)
        return r->extracted[0] == '\0';
    if (!r->response)
        return -1;
    size_t st = 0, al = 0;
    return qe_extract_answer(r->response, strlen(r->response), xo, &st, &al) ==
           QE_EXTRACT_NONE;
}

typedef struct {
    size_t n, known, len_stop, think_open, trunc, na_known, no_answer;
} think_stats;

static think_stats think_of(const qe_compare_model *m, const qe_extract_opts *xo)
{
    think_stats t = {0};
    t.n = m->n;
    for (size_t i = 0; i < m->n; i++) {
        const qe_compare_record *r = &m->recs[i];
        if (!r->finish_reason && !r->response)
            continue;
        t.known++;
        int ls = rec_length_stop(r), to = rec_think_open(r);
        t.len_stop += (size_t)ls;
        t.think_open += (size_t)to;
        if (ls || to) {
            t.trunc++;
            int na = rec_no_answer(r, xo);
            if (na >= 0) {
                t.na_known++;
                t.no_answer += (size_t)na;
            }
        }
    }
    return t;
}

static void share_cell(qe_buf *o, size_t k, size_t n)
{
    if (n == 0)
        qe_buf_puts(o, "<td class=n>-</td>");
    else
        qe_buf_printf(o, "<td class=n>%.1f%% <span class=muted>(%zu)</span></td>",
                      100.0 * (double)k / (double)n, k);
}

/* Per model: how often the thinking budget ran out, and what it cost. */
static void thinking_budget(qe_buf *o, const qe_compare_result *r)
{
    qe_extract_opts xo;
    qe_extract_opts_init(&xo);
    int header = 0;
    for (size_t g = 0; g < r->n_groups; g++) {
        const qe_compare_group *gr = &r->groups[g];
        size_t nm = gr->in->n_models + 1;
        for (size_t j = 0; j < nm; j++) {
            const qe_compare_model *m = model_at(gr, j);
            think_stats t = think_of(m, &xo);
            if (!t.known)
                continue;
            if (!header) {
                qe_buf_puts(o, "<h2>Thinking budget</h2>\n<p class=muted>Per model, over "
                               "the responses whose finish_reason or text is known: the share "
                               "stopped by the token limit (finish_reason length), the share "
                               "with a &lt;think&gt; opened and never closed, either of the "
                               "two (what the summary calls truncated), and of those truncated "
                               "responses the share with no extractable answer (the data's "
                               "extracted answer, else qeval's default extractor on the "
                               "response).</p>\n<table class=think><thead><tr><th>task</th>"
                               "<th>model</th><th>responses</th><th>finish_reason length</th>"
                               "<th>&lt;think&gt; never closed</th><th>truncated</th>"
                               "<th>truncated, no answer</th></tr></thead><tbody>\n");
                header = 1;
            }
            qe_buf_puts(o, "<tr><td>");
            name_span(o, gr->in->task);
            qe_buf_puts(o, "</td><td>");
            name_span(o, m->name);
            if (j == 0)
                qe_buf_puts(o, " <span class=muted>(baseline)</span>");
            qe_buf_printf(o, "</td><td class=n>%zu</td>", t.known);
            share_cell(o, t.len_stop, t.known);
            share_cell(o, t.think_open, t.known);
            share_cell(o, t.trunc, t.known);
            share_cell(o, t.no_answer, t.na_known);
            qe_buf_puts(o, "</tr>\n");
        }
    }
    if (header)
        qe_buf_puts(o, "</tbody></table>\n");
}

static void problem_tables(qe_buf *o, const qe_compare_result *r, const qe_report_opts *op)
{
    size_t budget = op->max_total_response, omitted = 0;
    qe_buf_puts(o, "<h2>Per problem</h2>\n<p class=muted>&#10003; right, &#10007; wrong; "
                   "<span class=tr>cut</span> = truncated. Click a verdict to read the full "
                   "response.</p>\n");
    for (size_t g = 0; g < r->n_groups; g++) {
        const qe_compare_group *gr = &r->groups[g];
        size_t nm = gr->in->n_models + 1;
        qe_buf_puts(o, "<h3>");
        esc(o, gr->in->task);
        qe_buf_puts(o, " / ");
        esc(o, gr->in->filter ? gr->in->filter : "none");
        qe_buf_printf(o, "</h3>\n<div class=bar id=\"bar%zu\"><button class=\"btn on\" "
                         "data-mode=all>all</button><button class=btn data-mode=flip>flipped "
                         "only</button><button class=btn data-mode=trunc>truncated "
                         "only</button> <button class=prev>&larr;</button> <span "
                         "class=pinfo></span> <button class=next>&rarr;</button></div>\n",
                      g);
        qe_buf_printf(o, "<table class=problems data-bar=\"bar%zu\" data-page-size=\"%zu\">"
                         "<thead><tr><th>problem</th><th>gold</th>",
                      g, op->page_size);
        for (size_t j = 0; j < nm; j++) {
            qe_buf_puts(o, "<th>");
            name_span(o, model_at(gr, j)->name);
            qe_buf_puts(o, j == 0 ? " (baseline)</th>" : "</th>");
        }
        qe_buf_puts(o, "</tr></thead><tbody>\n");
        for (size_t i = 0; i < gr->n_keys; i++) {
            int any_right = 0, any_wrong = 0, any_trunc = 0;
            const char *gold = NULL;
            for (size_t j = 0; j < nm; j++) {
                size_t k = gr->idx[j][i];
                if (k == SIZE_MAX)
                    continue;
                const qe_compare_record *rc = &model_at(gr, j)->recs[k];
                if (verdict_of(rc))
                    any_right = 1;
                else
                    any_wrong = 1;
                any_trunc |= rec_truncated(rc);
                if (!gold)
                    gold = rc->gold;
            }
            qe_buf_printf(o, "<tr data-flip=\"%d\" data-trunc=\"%d\"><td>", any_right && any_wrong,
                          any_trunc);
            esc(o, gr->keys[i]);
            qe_buf_puts(o, "</td><td>");
            if (gold) {
                size_t gl = strlen(gold), cut = utf8_cut(gold, gl, 300);
                esc_n(o, gold, cut);
                if (cut < gl)
                    qe_buf_puts(o, "&hellip;");
            }
            qe_buf_puts(o, "</td>");
            for (size_t j = 0; j < nm; j++) {
                size_t k = gr->idx[j][i];
                if (k == SIZE_MAX) {
                    qe_buf_puts(o, "<td class=muted>missing</td>");
                    continue;
                }
                const qe_compare_record *rc = &model_at(gr, j)->recs[k];
                int v = verdict_of(rc), t = rec_truncated(rc);
                qe_buf_printf(o, "<td>%s", v ? "<span class=ok>&#10003;</span>"
                                             : "<span class=bad>&#10007;</span>");
                if (rc->repeats > 1)
                    qe_buf_printf(o, " %.0f%%", 100.0 * rc->correct);
                if (t)
                    qe_buf_puts(o, " <span class=tr>cut</span>");
                if (rc->extracted) {
                    qe_buf_putc(o, ' ');
                    code_cut(o, rc->extracted, 200);
                }
                if (rc->response) {
                    size_t rl = strlen(rc->response);
                    size_t cut = utf8_cut(rc->response, rl, op->max_response_chars);
                    if (cut > budget) {
                        omitted++;
                        qe_buf_puts(o, " <span class=muted>(response omitted: size budget)"
                                       "</span>");
                    } else {
                        budget -= cut;
                        qe_buf_printf(o, "<details><summary>response (%zu chars)</summary><pre>",
                                      rl);
                        esc_n(o, rc->response, cut);
                        if (cut < rl)
                            qe_buf_printf(o, "\n[... %zu more characters not embedded]",
                                          rl - cut);
                        qe_buf_puts(o, "</pre></details>");
                    }
                }
                qe_buf_puts(o, "</td>");
            }
            qe_buf_puts(o, "</tr>\n");
        }
        qe_buf_puts(o, "</tbody></table>\n");
    }
    if (omitted)
        qe_buf_printf(o, "<p class=muted>%zu responses were not embedded to keep this file "
                         "small.</p>\n",
                      omitted);
}

/* What was compared: each model's files and run settings per task, and
 * how the verdicts were made, so the page says what it is evidence of. */
static void inputs_section(qe_buf *o, const qe_report_opts *op)
{
    if (!op->n_inputs && !op->verdicts)
        return;
    qe_buf_puts(o, "<h2>Inputs</h2>\n");
    if (op->verdicts) {
        qe_buf_puts(o, "<p>Verdicts: ");
        esc(o, op->verdicts);
        qe_buf_puts(o, ".</p>\n");
    }
    if (!op->n_inputs)
        return;
    qe_buf_puts(o, "<table class=inputs><thead><tr><th>model</th><th>task / filter</th>"
                   "<th>from</th><th>run settings</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < op->n_inputs; i++) {
        const qe_report_input *in = &op->inputs[i];
        qe_buf_puts(o, "<tr><td>");
        esc(o, in->model);
        qe_buf_puts(o, "</td><td>");
        esc(o, in->task);
        qe_buf_puts(o, " / ");
        esc(o, in->filter);
        qe_buf_puts(o, "</td><td><code>");
        esc(o, in->file ? in->file : in->source);
        qe_buf_puts(o, "</code></td><td>");
        if (in->settings) {
            code_cut(o, in->settings, 600);
        } else {
            qe_buf_puts(o, "<span class=muted>unknown (no results file beside the records)</span>");
        }
        qe_buf_puts(o, "</td></tr>\n");
    }
    qe_buf_puts(o, "</tbody></table>\n");
}

int qe_report_render(const qe_compare_result *r, const qe_report_opts *opts, qe_buf *out,
                     qe_err *err)
{
    qe_report_opts op = {0};
    if (opts)
        op = *opts;
    if (!op.title)
        op.title = "qeval comparison";
    if (!op.max_response_chars)
        op.max_response_chars = 4000;
    if (!op.max_total_response)
        op.max_total_response = (size_t)32 << 20;
    if (!op.page_size)
        op.page_size = 100;
    size_t start = out->len;
    qe_buf_puts(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                     "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                     "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
                     "<title>");
    esc(out, op.title);
    qe_buf_printf(out, "</title><style>%s</style></head><body>\n<h1>", CSS);
    esc(out, op.title);
    qe_buf_puts(out, "</h1>\n");
    findings(out, r);
    summary_table(out, r);
    dot_chart(out, r);
    flip_chart(out, r);
    histograms(out, r);
    thinking_budget(out, r);
    problem_tables(out, r, &op);
    inputs_section(out, &op);
    size_t body = out->len - start;
    qe_buf_printf(out, "<p class=muted>Generated by qeval. This file: about %zu KiB, "
                       "self-contained (no external requests).</p>\n<script>%s</script>"
                       "</body></html>\n",
                  (body + sizeof JS + 200) / 1024, JS);
    if (!out->data)
        return qe_err_set(err, QE_ENOMEM, "report: out of memory");
    return 0;
}

int qe_report_write_html(FILE *f, const qe_compare_result *r, const qe_report_opts *opts,
                         size_t *bytes, qe_err *err)
{
    qe_buf b = QE_BUF_INIT;
    int rc = qe_report_render(r, opts, &b, err);
    if (rc < 0) {
        qe_buf_free(&b);
        return rc;
    }
    if (fwrite(b.data, 1, b.len, f) != b.len || fflush(f) != 0) {
        qe_buf_free(&b);
        return qe_err_set(err, QE_EIO, "report: write failed");
    }
    if (bytes)
        *bytes = b.len;
    qe_buf_free(&b);
    return 0;
}
