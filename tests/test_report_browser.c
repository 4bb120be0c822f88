/* `qeval report` in a real browser: headless Chromium (Debian's `chromium`)
 * opens the report built from the shipped real example plus a model whose
 * text is hostile (`</script><img src=x onerror=alert(1)>` as a response,
 * markup in its name), takes a screenshot (kept at
 * $QEVAL_BUILD/report-screenshot.png, a CI artifact: docs/compare.md), dumps
 * the rendered DOM (title, SVG chart elements present, the hostile text
 * present as text and no <img>/onload element created from it) and collects
 * the page's console messages (none allowed). A control page with a
 * deliberate console error proves the console check can fail.
 *
 * Also: 10 models x 1,000 problems through the CLI, size printed, and (with
 * Chromium) rendered.
 *
 * Without chromium the browser parts print "SKIP: chromium not installed"
 * and pass; scripts/deps.sh installs it in CI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_run.h"
#include "file_util.h"

#define EX "examples/r1-distill-1.5b-quant/"
#define HOSTILE "</script><img src=x onerror=alert(1)>"
#define HOSTILE_MODEL "quant<svg onload=alert(2)>"
#define CHROME_TIMEOUT_S 120

typedef struct {
    char dir[64];
    const char *chromium; /* NULL when not installed */
} ctx;

static const char *find_chromium(void)
{
    static const char *const cands[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser",
                                        "/usr/lib/chromium/chromium", NULL};
    for (size_t i = 0; cands[i]; i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return NULL;
}

/* Runs argv in its own process group with a time limit; captures output. */
static int run_timed(char *const *argv, cli_result *r, int timeout_s)
{
    cli_opts o = {NULL, NULL, timeout_s};
    return cli_run_opts(argv, &o, r);
}

/* mode: "--screenshot=PATH" or "--dump-dom". */
static int chromium(const ctx *c, const char *url, const char *mode, cli_result *r)
{
    char ud[128];
    snprintf(ud, sizeof ud, "--user-data-dir=%s/profile", c->dir);
    char *argv[] = {(char *)c->chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", ud,
                    "--enable-logging=stderr", "--v=0", "--window-size=1280,2000",
                    (char *)mode, (char *)url, NULL};
    return run_timed(argv, r, CHROME_TIMEOUT_S);
}

/* Console lines Chromium logs for a page: "...:CONSOLE...] "msg", source: URL (n)". */
static size_t console_lines(const char *log, const char *url, qe_buf *found)
{
    size_t n = 0;
    for (const char *s = log; *s;) {
        size_t l = strcspn(s, "\n");
        const char *hit = strstr(s, ":CONSOLE");
        if (hit && hit < s + l) {
            const char *u = strstr(s, url);
            if (u && u < s + l) {
                qe_buf_append(found, s, l);
                qe_buf_putc(found, '\n');
                n++;
            }
        }
        s += l + (s[l] == '\n');
    }
    return n;
}

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    strcpy(c->dir, "/tmp/qeval-browser-XXXXXX");
    if (!mkdtemp(c->dir))
        return -1;
    c->chromium = find_chromium();
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    rm_rf(c->dir);
    free(c);
    return 0;
}

/* bf16's math500 verdicts with responses (one hostile), a few truncated and
 * ten flipped, under a model name with markup. */
static void write_hostile(const ctx *c, char *dirpath, size_t cap)
{
    snprintf(dirpath, cap, "%s/hostile", c->dir);
    assert_int_equal(mkdir(dirpath, 0755), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/math500.verdicts.jsonl", dirpath);
    FILE *in = fopen(EX "bf16/math500.verdicts.jsonl", "r"), *out = fopen(path, "w");
    assert_non_null(in);
    assert_non_null(out);
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, in) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        json_int_t id = json_integer_value(json_object_get(o, "doc_id"));
        json_object_set_new(o, "model", json_string(HOSTILE_MODEL));
        qe_buf resp = QE_BUF_INIT;
        if (id == 0)
            qe_buf_puts(&resp, HOSTILE);
        else if (id < 20)
            qe_buf_printf(&resp, "<think>\nstep %d & <b>bold</b> \"quoted\" 'single'", (int)id);
        else
            qe_buf_printf(&resp, "So the answer is $\\boxed{%s}$.",
                          json_string_value(json_object_get(o, "gold")));
        json_object_set_new(o, "response", json_string(qe_buf_str(&resp)));
        json_object_set_new(o, "finish_reason", json_string(id > 0 && id < 20 ? "length" : "stop"));
        if (id < 10)
            json_object_set_new(o, "correct", json_boolean(!json_is_true(json_object_get(o, "correct"))));
        qe_buf_free(&resp);
        char *s = json_dumps(o, JSON_COMPACT);
        fprintf(out, "%s\n", s);
        free(s);
        json_decref(o);
    }
    free(line);
    fclose(in);
    fclose(out);
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static void test_real_example_in_chromium(void **state)
{
    ctx *c = *state;
    char hdir[128], html[160], url[200];
    write_hostile(c, hdir, sizeof hdir);
    snprintf(html, sizeof html, "%s/report.html", c->dir);
    char *argv[] = {(char *)cli_qeval(), "report", html, EX "bf16", EX "awq-w3g128",
                    EX "kvquant-kv4", hdir, "--baseline", "bf16", "--title",
                    "qeval browser test", NULL};
    cli_result r;
    assert_int_equal(cli_run(argv, &r), 0);
    if (r.status != 0)
        fail_msg("qeval report: exit %d: %s", r.status, qe_buf_str(&r.err));
    printf("# %s", qe_buf_str(&r.out));
    cli_done(&r);
    qe_buf raw = QE_BUF_INIT;
    cli_slurp(html, &raw);
    /* the file itself: hostile text only escaped */
    assert_null(strstr(qe_buf_str(&raw), HOSTILE));
    assert_null(strstr(qe_buf_str(&raw), "<svg onload"));
    assert_non_null(strstr(qe_buf_str(&raw), "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"));
    qe_buf_free(&raw);

    if (!c->chromium) {
        printf("SKIP: chromium not installed\n");
        return;
    }
    snprintf(url, sizeof url, "file://%s", html);
    /* screenshot: kept as the CI artifact */
    const char *b = getenv("QEVAL_BUILD");
    char shot[4096], mode[4200];
    snprintf(shot, sizeof shot, "%s/report-screenshot.png", b && *b ? b : "build");
    unlink(shot);
    snprintf(mode, sizeof mode, "--screenshot=%s", shot);
    assert_int_equal(chromium(c, url, mode, &r), 0);
    if (r.status != 0)
        fail_msg("chromium --screenshot: status %d: %s", r.status, qe_buf_str(&r.err));
    qe_buf con = QE_BUF_INIT;
    size_t nc = console_lines(qe_buf_str(&r.err), url, &con);
    if (nc)
        fail_msg("console messages from the report:\n%s", qe_buf_str(&con));
    qe_buf_free(&con);
    cli_done(&r);
    long ss = file_size(shot);
    /* a blank 1280x2000 page compresses to a few KB; the charts and tables do not */
    assert_true(ss > 20000);
    FILE *pf = fopen(shot, "rb");
    unsigned char sig[8] = {0};
    assert_int_equal(fread(sig, 1, 8, pf), 8);
    fclose(pf);
    assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
    printf("# screenshot: %s (%ld bytes)\n", shot, ss);

    /* the DOM after scripts ran */
    assert_int_equal(chromium(c, url, "--dump-dom", &r), 0);
    assert_int_equal(r.status, 0);
    const char *dom = qe_buf_str(&r.out);
    assert_non_null(strstr(dom, "<title>qeval browser test</title>"));
    assert_non_null(strstr(dom, "<svg"));
    assert_non_null(strstr(dom, "<circle"));
    assert_non_null(strstr(dom, "<rect"));
    assert_non_null(strstr(dom, "awq-w3g128"));
    assert_non_null(strstr(dom, "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert_null(strstr(dom, "<img"));
    assert_null(strstr(dom, "<svg onload"));
    assert_null(strstr(dom, "<b>bold</b>"));
    con = (qe_buf)QE_BUF_INIT;
    nc = console_lines(qe_buf_str(&r.err), url, &con);
    if (nc)
        fail_msg("console messages from the report:\n%s", qe_buf_str(&con));
    qe_buf_free(&con);
    cli_done(&r);
}

/* The console check is not vacuous: a page with a deliberate error fails it. */
static void test_console_check_catches_errors(void **state)
{
    ctx *c = *state;
    if (!c->chromium) {
        printf("SKIP: chromium not installed\n");
        return;
    }
    char page[160], url[200];
    snprintf(page, sizeof page, "%s/control.html", c->dir);
    FILE *f = fopen(page, "w");
    fputs("<!doctype html><title>control</title><script>console.error('deliberate');"
          "notDefined();</script>",
          f);
    fclose(f);
    snprintf(url, sizeof url, "file://%s", page);
    cli_result r;
    assert_int_equal(chromium(c, url, "--dump-dom", &r), 0);
    qe_buf con = QE_BUF_INIT;
    size_t n = console_lines(qe_buf_str(&r.err), url, &con);
    assert_true(n >= 2);
    assert_non_null(strstr(qe_buf_str(&con), "deliberate"));
    assert_non_null(strstr(qe_buf_str(&con), "notDefined"));
    qe_buf_free(&con);
    cli_done(&r);
}

/* 10 models x 1,000 problems, 600-byte responses: the report is written, its
 * size printed and (with Chromium) it renders. */
static void test_large_report(void **state)
{
    ctx *c = *state;
    char *argv[20];
    char dirs[10][160];
    size_t k = 0;
    argv[k++] = (char *)cli_qeval();
    argv[k++] = "report";
    char html[160];
    snprintf(html, sizeof html, "%s/large.html", c->dir);
    argv[k++] = html;
    uint64_t x = 88172645463325252ull; /* xorshift: reproducible verdicts */
    char filler[601];
    memset(filler, 'x', 600);
    filler[600] = '\0';
    for (int m = 0; m < 10; m++) {
        snprintf(dirs[m], sizeof dirs[m], "%s/large/m%d", c->dir, m);
        char sub[160];
        snprintf(sub, sizeof sub, "%s/large", c->dir);
        mkdir(sub, 0755);
        assert_int_equal(mkdir(dirs[m], 0755), 0);
        char path[2048];
        snprintf(path, sizeof path, "%s/synth.verdicts.jsonl", dirs[m]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        for (int i = 0; i < 1000; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int right = (int)(x % 100) < 80 - 3 * m;
            fprintf(f,
                    "{\"doc_id\": %d, \"correct\": %s, \"gold\": \"%d\", \"response\": \"%s "
                    "\\\\boxed{%d}\", \"finish_reason\": \"%s\"}\n",
                    i, right ? "true" : "false", i, filler, right ? i : i + 1,
                    x % 17 == 0 ? "length" : "stop");
        }
        fclose(f);
        argv[k++] = dirs[m];
    }
    argv[k] = NULL;
    cli_result r;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(cli_run(argv, &r), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (r.status != 0)
        fail_msg("qeval report: exit %d: %s", r.status, qe_buf_str(&r.err));
    long sz = file_size(html);
    char want[300];
    snprintf(want, sizeof want, "wrote %s (%ld bytes", html, sz);
    assert_non_null(strstr(qe_buf_str(&r.out), want));
    printf("# 10 models x 1,000 problems: %ld bytes (%.1f MB) in %.2f s\n", sz, sz / 1e6,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    cli_done(&r);
    if (!c->chromium) {
        printf("SKIP: chromium not installed\n");
        return;
    }
    char url[200];
    snprintf(url, sizeof url, "file://%s", html);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(chromium(c, url, "--dump-dom", &r), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (r.status != 0)
        fail_msg("chromium on the large report: status %d", r.status);
    assert_non_null(strstr(qe_buf_str(&r.out), "<svg"));
    assert_non_null(strstr(qe_buf_str(&r.out), "m9"));
    qe_buf con = QE_BUF_INIT;
    if (console_lines(qe_buf_str(&r.err), url, &con))
        fail_msg("console messages from the large report:\n%s", qe_buf_str(&con));
    qe_buf_free(&con);
    printf("# rendered by chromium in %.2f s\n",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    cli_done(&r);
}

int main(void)
{
    if (!find_chromium())
        printf("SKIP: chromium not installed (browser checks skipped; scripts/deps.sh "
               "installs it)\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_example_in_chromium),
        cmocka_unit_test(test_console_check_catches_errors),
        cmocka_unit_test(test_large_report),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
