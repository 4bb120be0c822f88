/* test_untrusted: hostile model text through every entry point that reads it.
 *
 * Model outputs are the least trusted input qeval has: they can hold NUL
 * bytes, invalid UTF-8, megabytes of text, 100k-deep nested braces, or
 * "</script>" aimed at the HTML report. Each case below sends one such text
 * through one entry point and asserts the documented outcome (a verdict, a
 * clear error, an escaped string), never just "did not crash"; the crash,
 * leak and UB checks come from running this under ASan+UBSan (make check)
 * and valgrind. docs/reliability.md lists which case covers which fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "client.h"
#include "compare.h"
#include "err.h"
#include "fake_server_util.h"
#include "file_util.h"
#include "lmeval_io.h"
#include "pyjson.h"
#include "records.h"
#include "report.h"
#include "score_lmeval.h"
#include "task.h"
#include "verify.h"

#define MB10 (10u * 1024u * 1024u)
#define DEEP 100000u

/* ---- hostile texts ---- */

/* n bytes of filler, then tail (malloc'd). */
static char *big_text(size_t n, const char *tail)
{
    size_t t = strlen(tail);
    char *s = malloc(n + t + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (i % 64 == 63) ? '\n' : "lorem ipsum "[i % 12];
    memcpy(s + n, tail, t + 1);
    return s;
}

/* head, then depth copies of open, mid, depth copies of close, then tail. */
static char *nested(const char *head, const char *open, size_t depth, const char *mid,
                    const char *close, size_t close_depth, const char *tail)
{
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_buf_puts(&b, head), 0);
    for (size_t i = 0; i < depth; i++)
        assert_int_equal(qe_buf_puts(&b, open), 0);
    assert_int_equal(qe_buf_puts(&b, mid), 0);
    for (size_t i = 0; i < close_depth; i++)
        assert_int_equal(qe_buf_puts(&b, close), 0);
    assert_int_equal(qe_buf_puts(&b, tail), 0);
    return qe_buf_detach(&b);
}

/* ---- scorer (score_lmeval): the exact lm-eval verdict ---- */

/* Scores response for task against a doc whose answer/solution is gold;
 * returns the verdict of the first filter and copies its extracted answer. */
static int lm_score(const char *task, const char *gold, const char *response, char **extracted)
{
    json_t *doc;
    if (strcmp(task, "hendrycks_math500") == 0) {
        char sol[256];
        snprintf(sol, sizeof sol, "So it is \\boxed{%s}.", gold);
        doc = json_pack("{s:s, s:s, s:s}", "problem", "p", "solution", sol, "answer", gold);
    } else if (strcmp(task, "gsm8k") == 0) {
        char ans[256];
        snprintf(ans, sizeof ans, "steps\n#### %s", gold);
        doc = json_pack("{s:s, s:s}", "question", "q", "answer", ans);
    } else {
        doc = json_pack("{s:s, s:s}", "problem", "p", "answer", gold);
    }
    assert_non_null(doc);
    qe_lm_score sc;
    qe_err e = {0};
    int rc = qe_lm_score_doc(task, doc, response, &sc, &e);
    json_decref(doc);
    if (rc != 0)
        fail_msg("score_doc(%s) failed: %s", task, e.msg);
    int v = sc.f[sc.n - 1].value; /* gsm8k: flexible-extract */
    if (extracted)
        *extracted = strdup(sc.f[sc.n - 1].extracted ? sc.f[sc.n - 1].extracted : "");
    qe_lm_score_free(&sc);
    return v;
}

/* A NUL inside a C string ends it: the scorer sees only what precedes it.
 * That is why every reader hands model text on with NUL replaced by U+FFFD
 * (client, records, rescore: see the cases below); a raw NUL reaching the
 * scorer would hide the answer after it, as here. */
static void test_lm_nul_ends_text(void **state)
{
    (void)state;
    static const char resp[] = "The answer is \\boxed{7}\0 no, \\boxed{8}";
    assert_int_equal(lm_score("aime24", "7", resp, NULL), 1);
    assert_int_equal(lm_score("aime24", "8", resp, NULL), 0);
}

/* Invalid UTF-8 is scored like Python's surrogateescape: every bad byte is
 * one code point of its own, never a digit, so it neither crashes nor
 * matches a digit. */
static void test_lm_invalid_utf8(void **state)
{
    (void)state;
    char *x = NULL;
    assert_int_equal(lm_score("aime24", "7", "\xff\xfe junk \xc3 \\boxed{7} \xed\xa0\x80", &x), 1);
    assert_string_equal(x, "7");
    free(x);
    /* the bad bytes inside the answer stay part of it: not equal to 7 */
    assert_int_equal(lm_score("aime24", "7", "\\boxed{7\xff}", &x), 0);
    assert_string_equal(x, "7\xff");
    free(x);
    assert_int_equal(lm_score("hendrycks_math500", "5", "so $\xc0\xaf 5$ ok", NULL), 0);
    assert_int_equal(lm_score("gsm8k", "12", "\x80\x80 #### 12 \xf8", NULL), 1);
    /* a lone invalid byte vs the same byte: equal (raw comparison) */
    assert_true(qe_lm_is_equiv("\xff", "\xff"));
    assert_false(qe_lm_is_equiv("\xff", "\xfe"));
}

/* 10 MB responses: the answer at the very end is found, for every task. */
static void test_lm_10mb(void **state)
{
    (void)state;
    char *s = big_text(MB10, " so the answer is \\boxed{42}. $42$ #### 42");
    char *x = NULL;
    assert_int_equal(lm_score("aime24", "42", s, &x), 1);
    assert_string_equal(x, "42");
    free(x);
    assert_int_equal(lm_score("hendrycks_math500", "42", s, NULL), 1);
    assert_int_equal(lm_score("gsm8k", "42", s, NULL), 1);
    free(s);
    /* one 10 MB number: gsm8k flexible-extract takes it whole, and it is not 42 */
    s = malloc(MB10 + 1);
    assert_non_null(s);
    memset(s, '4', MB10);
    s[MB10] = '\0';
    assert_int_equal(lm_score("gsm8k", "42", s, &x), 0);
    assert_int_equal(strlen(x), MB10);
    free(x);
    free(s);
}

/* 100k-deep nested braces: balanced ones are one (wrong) answer, unbalanced
 * ones are "no closed \boxed", which lm-eval's aime scorer answers by
 * falling back to the $-slice (no '$' at all: the whole response). */
static void test_lm_deep_braces(void **state)
{
    (void)state;
    char *x = NULL;
    char *s = nested("\\boxed{", "{", DEEP, "7", "}", DEEP, "}");
    assert_int_equal(lm_score("aime24", "7", s, &x), 0);
    assert_int_equal(strlen(x), 2 * DEEP + 1); /* the braces are kept */
    free(x);
    free(s);
    s = nested("\\boxed{", "{", DEEP, "7", "}", 0, "");
    assert_int_equal(lm_score("aime24", "7", s, &x), 0);
    assert_true(strcmp(x, s) == 0);
    free(x);
    char *b = qe_lm_last_boxed_only_string(s);
    assert_null(b);
    free(s);
    /* the answer after a deep but closed structure is still the last one */
    s = nested("", "{", DEEP, "x", "}", DEEP, " \\boxed{7}");
    assert_int_equal(lm_score("aime24", "7", s, NULL), 1);
    free(s);
    /* strip_string on deep \frac nesting: a result or lm-eval's own error */
    s = nested("", "\\frac{", DEEP, "1", "}{2}", DEEP, "");
    char *out = NULL;
    int rc = qe_lm_strip_string(s, &out);
    assert_true(rc == 0 || rc == QE_LM_INDEX_ERROR || rc == QE_LM_VALUE_ERROR);
    free(out);
    free(s);
}

/* "</script>" in an answer is just text to the scorer. */
static void test_lm_script_tag(void **state)
{
    (void)state;
    char *x = NULL;
    assert_int_equal(lm_score("aime24", "7", "</script><script>alert(1)</script> \\boxed{7}", &x), 1);
    assert_string_equal(x, "7");
    free(x);
    assert_int_equal(lm_score("aime24", "7", "\\boxed{</script>}", &x), 0);
    assert_string_equal(x, "</script>");
    free(x);
}

/* ---- pyjson / lmeval_io writers: the samples JSONL qeval writes ---- */

/* A sample carrying response, formatted as the JSONL line qeval writes
 * (malloc'd), or NULL with *err filled when the builder refuses it. */
static char *sample_line(const char *response, qe_err *err)
{
    json_t *doc = json_pack("{s:s, s:s}", "problem", "p", "answer", "7");
    assert_non_null(doc);
    const char *names[] = {"exact_match"};
    const double vals[] = {0};
    qe_lmeval_sample_in in = {.doc_id = 3, .doc = doc, .target = "7", .prompt = "Question: p\nAnswer:",
                              .response = response, .n_metrics = 1, .metric_names = names,
                              .metric_values = vals, .int_metrics = 1};
    json_t *o = qe_lmeval_sample_build(&in, err);
    json_decref(doc);
    if (!o)
        return NULL;
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_lmeval_sample_format(&b, o, err), 0);
    json_decref(o);
    return qe_buf_detach(&b);
}

/* The response field read back from a formatted line. */
static void assert_line_response(const char *line, const char *want, size_t want_len)
{
    json_error_t je;
    json_t *o = json_loads(line, JSON_ALLOW_NUL, &je);
    if (!o)
        fail_msg("line does not parse: %s", je.text);
    json_t *r = json_array_get(json_array_get(json_object_get(o, "resps"), 0), 0);
    assert_true(json_is_string(r));
    assert_int_equal(json_string_length(r), want_len);
    assert_memory_equal(json_string_value(r), want, want_len);
    json_decref(o);
}

/* NUL is written as \u0000 exactly like json.dumps, and read back intact. */
static void test_pyjson_nul(void **state)
{
    (void)state;
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_pyjson_string(&b, "4\0002", 3, 0), 0);
    assert_string_equal(qe_buf_str(&b), "\"4\\u00002\"");
    qe_buf_free(&b);
    json_t *v = json_stringn("a\0b", 3);
    assert_non_null(v);
    assert_int_equal(qe_pyjson_dump(&b, v, QE_PYJSON_COMPACT, 1, NULL), 0);
    assert_string_equal(qe_buf_str(&b), "\"a\\u0000b\"");
    json_decref(v);
    qe_buf_free(&b);
}

/* Invalid UTF-8 never reaches a samples file: the builder refuses it with a
 * message (the client repairs replies to U+FFFD before they get here). */
static void test_pyjson_invalid_utf8(void **state)
{
    (void)state;
    qe_err e = {0};
    char *line = sample_line("bad \xff\xfe \\boxed{7}", &e);
    assert_null(line);
    assert_non_null(strstr(e.msg, "invalid UTF-8"));
    /* the repaired form (U+FFFD) is written as is (ensure_ascii=False) */
    line = sample_line("bad \xef\xbf\xbd \\boxed{7}", &e);
    assert_non_null(line);
    assert_non_null(strstr(line, "\"bad \xef\xbf\xbd \\\\boxed{7}\""));
    free(line);
}

/* A 10 MB response is written whole and reads back byte for byte. */
static void test_pyjson_10mb(void **state)
{
    (void)state;
    char *s = big_text(MB10, " \\boxed{7}");
    qe_err e = {0};
    char *line = sample_line(s, &e);
    assert_non_null(line);
    assert_true(strlen(line) > MB10);
    assert_line_response(line, s, strlen(s));
    free(line);
    free(s);
}

/* Nesting: braces inside text are just text; a JSON value nested deeper
 * than QE_PYJSON_MAX_DEPTH is refused with QE_ELIMIT, never a stack
 * overflow; jansson's parser refuses 100k-deep input with an error. */
static void test_pyjson_deep(void **state)
{
    (void)state;
    char *s = nested("\\boxed{", "{", DEEP, "7", "}", DEEP, "}");
    qe_err e = {0};
    char *line = sample_line(s, &e);
    assert_non_null(line);
    assert_line_response(line, s, strlen(s));
    free(line);
    free(s);

    json_t *root = json_array(), *cur = root;
    for (unsigned i = 0; i < DEEP; i++) {
        json_t *child = json_array();
        assert_int_equal(json_array_append_new(cur, child), 0);
        cur = child;
    }
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_pyjson_dump(&b, root, QE_PYJSON_COMPACT, 0, &e), QE_ELIMIT);
    assert_non_null(strstr(e.msg, "deeper"));
    qe_buf_free(&b);
    json_decref(root);

    s = nested("", "[", DEEP, "", "]", DEEP, "");
    json_error_t je;
    json_t *v = json_loads(s, 0, &je);
    assert_null(v);
    assert_non_null(strstr(je.text, "depth"));
    free(s);
}

/* "</script>" is written raw, as json.dumps does ('/' is not escaped):
 * byte-identical samples files; escaping is the HTML report's job. */
static void test_pyjson_script_tag(void **state)
{
    (void)state;
    qe_err e = {0};
    char *line = sample_line("</script><script>alert(1)</script>", &e);
    assert_non_null(line);
    assert_non_null(strstr(line, "\"</script><script>alert(1)</script>\""));
    free(line);
}

/* ---- readers: records over a samples / verdicts file with hostile text ---- */

static char *write_tmp(const char *name, const char *data, size_t n)
{
    const char *tmp = getenv("TMPDIR");
    qe_buf p = QE_BUF_INIT;
    assert_int_equal(qe_buf_printf(&p, "%s/qe_untrusted_%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid()), 0);
    (void)mkdir(qe_buf_str(&p), 0700);
    assert_int_equal(qe_buf_printf(&p, "/%s", name), 0);
    FILE *f = fopen(qe_buf_str(&p), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return qe_buf_detach(&p);
}

static void remove_tmp(char *path)
{
    unlink(path);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    rmdir(path);
    free(path);
}

/* One record read from a one-line verdicts file (fails the test if the
 * line is refused); response copied into *resp. */
static int read_verdict(const char *line, size_t n, char **resp, qe_err *e)
{
    char *path = write_tmp("m.verdicts.jsonl", line, n);
    qe_records *r = NULL;
    int rc = qe_records_open(path, &r, e);
    if (rc == 0) {
        qe_record x;
        rc = qe_records_next(r, &x, e);
        if (rc == 1)
            *resp = strdup(x.response);
        qe_records_close(r);
    }
    remove_tmp(path);
    return rc;
}

/* NUL in a stored response: the reader keeps the JSON line (JSON_ALLOW_NUL)
 * and hands the text on with each NUL replaced by U+FFFD, so nothing after
 * the NUL is lost (docs/reliability.md). */
static void test_records_nul(void **state)
{
    (void)state;
    static const char line[] = "{\"doc_id\": 1, \"correct\": true, \"response\": \"\\\\boxed{7}\\u0000\\\\boxed{8}\\u0000\"}\n";
    char *resp = NULL;
    qe_err e = {0};
    assert_int_equal(read_verdict(line, sizeof line - 1, &resp, &e), 1);
    assert_string_equal(resp, "\\boxed{7}\xef\xbf\xbd\\boxed{8}\xef\xbf\xbd");
    free(resp);
}

/* Invalid UTF-8 in a file: the line is refused with file:line, the reader
 * goes on with the next one. */
static void test_records_invalid_utf8(void **state)
{
    (void)state;
    static const char data[] = "{\"doc_id\": 1, \"correct\": true, \"response\": \"\xff\xfe\"}\n"
                               "{\"doc_id\": 2, \"correct\": false, \"response\": \"ok\"}\n";
    char *path = write_tmp("m.verdicts.jsonl", data, sizeof data - 1);
    qe_records *r = NULL;
    qe_err e = {0};
    assert_int_equal(qe_records_open(path, &r, &e), 0);
    qe_record x;
    assert_int_equal(qe_records_next(r, &x, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "m.verdicts.jsonl:1:"));
    assert_int_equal(qe_records_next(r, &x, &e), 1);
    assert_int_equal(x.doc_id, 2);
    assert_string_equal(x.response, "ok");
    assert_int_equal(qe_records_next(r, &x, &e), 0);
    qe_records_close(r);
    remove_tmp(path);
}

/* 10 MB response line and 100k-deep JSON nesting in a line. */
static void test_records_big_and_deep(void **state)
{
    (void)state;
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_buf_puts(&b, "{\"doc_id\": 1, \"correct\": true, \"response\": \""), 0);
    char *s = big_text(MB10, "\\\\boxed{7}");
    for (char *p = s; (p = strchr(p, '\n')) != NULL;)
        *p = ' '; /* one JSONL line */
    assert_int_equal(qe_buf_puts(&b, s), 0);
    assert_int_equal(qe_buf_puts(&b, "\"}\n"), 0);
    char *resp = NULL;
    qe_err e = {0};
    assert_int_equal(read_verdict(b.data, b.len, &resp, &e), 1);
    assert_int_equal(strlen(resp), MB10 + strlen("\\boxed{7}"));
    free(resp);
    free(s);
    qe_buf_free(&b);

    /* line 2 nested 100k deep: refused with file:line, line 3 still read */
    s = nested("{\"doc_id\": 1, \"correct\": true}\n{\"doc_id\": 2, \"correct\": true, \"x\": ", "[", DEEP,
               "", "]", DEEP, "}\n{\"doc_id\": 3, \"correct\": false}\n");
    char *path = write_tmp("m.verdicts.jsonl", s, strlen(s));
    qe_records *r = NULL;
    assert_int_equal(qe_records_open(path, &r, &e), 0);
    qe_record x;
    assert_int_equal(qe_records_next(r, &x, &e), 1);
    assert_int_equal(qe_records_next(r, &x, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "m.verdicts.jsonl:2: malformed JSON"));
    assert_non_null(strstr(e.msg, "depth"));
    assert_int_equal(qe_records_next(r, &x, &e), 1);
    assert_int_equal(x.doc_id, 3);
    qe_records_close(r);
    remove_tmp(path);
    free(s);
}

/* ---- compare + HTML report: every model string escaped ---- */

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* Renders a two-model report whose model-side responses, extracted answers
 * and golds are the given hostile texts; returns the HTML (malloc'd). */
static char *hostile_report(const char *const *texts, size_t n)
{
    qe_compare_record base[8], mod[8];
    char keys[8][8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "%zu", i);
        qe_compare_record_init(&base[i]);
        qe_compare_record_init(&mod[i]);
        base[i].key = mod[i].key = keys[i];
        base[i].correct = 1;
        base[i].response = "fine";
        mod[i].correct = (double)(i % 2);
        mod[i].response = texts[i];
        mod[i].extracted = texts[i];
        mod[i].gold = texts[i];
        mod[i].finish_reason = "length";
    }
    qe_compare_model m = {.name = "</script><script>alert('model')</script>", .recs = mod, .n = n};
    qe_compare_input in = {.task = "<img src=x onerror=alert(1)>", .filter = "\"'&",
                           .baseline = {.name = "base", .recs = base, .n = n}, .models = &m,
                           .n_models = 1};
    qe_compare_opts co = {.bootstrap_seed = 1, .bootstrap_iters = 50};
    qe_compare_result *res = NULL;
    qe_err e = {0};
    assert_int_equal(qe_compare_run(&in, 1, &co, &res, &e), 0);
    qe_buf html = QE_BUF_INIT;
    assert_int_equal(qe_report_render(res, NULL, &html, &e), 0);
    /* the text writers take the same strings */
    for (int f = QE_COMPARE_TABLE; f <= QE_COMPARE_CSV; f++) {
        qe_buf b = QE_BUF_INIT;
        assert_int_equal(qe_compare_write(res, f, &b, &e), 0);
        qe_buf_free(&b);
    }
    qe_compare_result_free(res);
    return qe_buf_detach(&html);
}

/* "</script>", attribute breakers, invalid UTF-8, a 10 MB response and
 * 100k-deep braces in one report: the page's own script is its only
 * "<script", nothing hostile survives unescaped, and each embedded response
 * is cut to 4000 bytes (QE_REPORT default), so the page stays small. */
static void test_report_hostile(void **state)
{
    (void)state;
    char *big = big_text(MB10, "</script><script>alert('big')</script>");
    char *deep = nested("\\boxed{", "{", DEEP, "7", "}", DEEP, "}");
    const char *texts[] = {
        "</script><script>alert(1)</script>",
        "<img src=x onerror=alert(2)> \" onmouseover=\"alert(3)\" ' &amp;",
        "bad \xff\xfe utf-8 \xc3",
        big,
        deep,
        "<!-- <script> --></SCRIPT>",
    };
    char *html = hostile_report(texts, sizeof texts / sizeof *texts);
    assert_int_equal(count_of(html, "<script"), 1);
    assert_int_equal(count_of(html, "</script"), 1);
    assert_null(strstr(html, "<img"));
    assert_null(strstr(html, "onerror=alert(2)>"));
    assert_null(strstr(html, "</SCRIPT"));
    assert_null(strstr(html, "<!--"));
    assert_non_null(strstr(html, "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(html, "&lt;img src=x onerror=alert(1)&gt;")); /* the task name */
    assert_true(strlen(html) < 4u * 1024u * 1024u); /* the 10 MB text is not embedded whole */
    assert_null(strstr(html, "alert('big')"));
    free(html);
    free(big);
    free(deep);
}

/* ---- qeval rescore end to end: one samples file with every hostile kind ---- */

/* Runs $QEVAL_BUILD/qeval with args; stdout and stderr to the given files.
 * Returns the exit code. */
static int run_qeval(const char *const *args, const char *out, const char *err)
{
    const char *build = getenv("QEVAL_BUILD");
    char bin[4096];
    snprintf(bin, sizeof bin, "%s/qeval", build && *build ? build : "build");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        const char *argv[32] = {bin};
        size_t i = 1;
        for (; args[i - 1] && i < 31; i++)
            argv[i] = args[i - 1];
        argv[i] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* One aime24 samples line (doc_id id, gold answer, recorded verdict) whose
 * response JSON text is resp_json (already escaped for JSON). */
static void add_sample(qe_buf *b, int id, int answer, int recorded, const char *resp_json)
{
    assert_int_equal(qe_buf_printf(b, "{\"doc_id\": %d, \"doc\": {\"ID\": \"x-%d\", \"Problem\": \"p\", "
                                      "\"Answer\": %d}, \"target\": \"%d\", \"resps\": [[\"",
                                   id, id, answer, answer), 0);
    assert_int_equal(qe_buf_puts(b, resp_json), 0);
    assert_int_equal(qe_buf_puts(b, "\"]], \"filtered_resps\": [\""), 0);
    assert_int_equal(qe_buf_puts(b, resp_json), 0);
    assert_int_equal(qe_buf_printf(b, "\"], \"filter\": \"none\", \"metrics\": [\"exact_match\"], "
                                      "\"exact_match\": %d}\n", recorded), 0);
}

/* What `qeval rescore` does with each hostile kind, in one file:
 *  line 1 NUL: read with the NUL as U+FFFD, so the later \boxed{8} is
 *         scored like lm-eval does (the recorded verdict is kept),
 *  line 2 invalid UTF-8: refused as FILE:2: malformed JSON, others go on,
 *  line 3 10 MB response: scored (answer at the end found),
 *  line 4 100k-deep braces in the text: scored (wrong, as lm-eval),
 *  line 5 100k-deep JSON nesting: refused as FILE:5:,
 *  line 6 "</script>": just text, scored right.
 * Exit 1 (some lines unusable), the rest scored. */
static void test_rescore_cli_hostile(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[700], out[700], err[700];
    snprintf(dir, sizeof dir, "%s/qe_untrusted_cli_%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/samples_aime24_2025-01-01T00-00-00.000000.jsonl", dir);
    snprintf(out, sizeof out, "%s/out.json", dir);
    snprintf(err, sizeof err, "%s/err.txt", dir);

    qe_buf b = QE_BUF_INIT;
    add_sample(&b, 0, 8, 1, "\\\\boxed{7}\\u0000\\\\boxed{8}");
    add_sample(&b, 1, 5, 1, "bad \xff\xfe \\\\boxed{5}");
    char *filler = big_text(MB10, "\\\\boxed{24}");
    for (char *p = filler; (p = strchr(p, '\n')) != NULL;)
        *p = ' ';
    add_sample(&b, 2, 24, 1, filler);
    free(filler);
    char *deep = nested("\\\\boxed{", "{", DEEP, "7", "}", DEEP, "}");
    add_sample(&b, 3, 7, 0, deep);
    free(deep);
    char *deepjson = nested("{\"doc_id\": 4, \"doc\": ", "[", DEEP, "", "]", DEEP, "}\n");
    assert_int_equal(qe_buf_puts(&b, deepjson), 0);
    free(deepjson);
    add_sample(&b, 5, 5, 1, "</script><script>alert(1)</script> \\\\boxed{5}");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
    assert_int_equal(fclose(f), 0);
    qe_buf_free(&b);

    const char *args[] = {"rescore", "--format", "json", path, NULL};
    assert_int_equal(run_qeval(args, out, err), 1);
    char *o = slurp_must(out, NULL), *e = slurp_must(err, NULL);
    json_error_t je;
    json_t *arr = json_loads(o, 0, &je);
    if (!arr)
        fail_msg("rescore output is not JSON (%s): %.300s", je.text, o);
    json_t *g = json_array_get(arr, 0);
    assert_int_equal(json_integer_value(json_object_get(g, "n")), 4);
    assert_int_equal(json_integer_value(json_object_get(g, "bad_lines")), 2);
    json_t *changed = json_object_get(g, "changed");
    assert_int_equal(json_array_size(changed), 0); /* line 1 scored 8, as recorded */
    char want[800];
    snprintf(want, sizeof want, "%s:2:", path);
    assert_non_null(strstr(e, want));
    snprintf(want, sizeof want, "%s:5:", path);
    assert_non_null(strstr(e, want));
    json_decref(arr);
    free(o);
    free(e);
    unlink(path);
    unlink(out);
    unlink(err);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- our verifier and extractor (verify*.c, extract.c) ---- */

static int vresp(const char *gold, const char *resp, qe_verify_result *r)
{
    qe_verify_opts o;
    qe_verify_opts_init(&o);
    memset(r, 0, sizeof *r);
    return qe_verify_response(gold, resp, &o, r);
}

/* NUL ends the C string (the text after it is not seen); invalid UTF-8
 * around the answer does not disturb extraction; </script> is text. */
static void test_verify_nul_utf8_script(void **state)
{
    (void)state;
    qe_verify_result r;
    static const char nul[] = "\\boxed{7}\0 no: \\boxed{8}";
    assert_int_equal(vresp("7", nul, &r), QE_VERDICT_TRUE);
    assert_int_equal(vresp("8", nul, &r), QE_VERDICT_FALSE);
    assert_int_equal(vresp("5", "\xff\xfe junk \xc3 \\boxed{5}", &r), QE_VERDICT_TRUE);
    assert_string_equal(r.extracted, "5");
    /* invalid bytes inside the answer are skipped by the lexer like other
     * unknown symbols (noted in docs/reliability.md): 5\xff reads as 5 */
    assert_int_equal(vresp("5", "\\boxed{5\xff}", &r), QE_VERDICT_TRUE);
    assert_int_equal(vresp("6", "\\boxed{5\xff}", &r), QE_VERDICT_FALSE);
    assert_int_equal(vresp("5", "</script><script>alert(1)</script> \\boxed{5}", &r), QE_VERDICT_TRUE);
    qe_verify_opts o;
    qe_verify_opts_init(&o);
    assert_int_equal(qe_verify_pair("</script>", "</script>", &o, &r), 0);
    assert_int_equal(r.verdict, QE_VERDICT_TRUE);
}

/* 10 MB: extraction is linear and finds the final answer; a 10 MB answer
 * itself is undecided (over the 4096-byte bound), never worked on. */
static void test_verify_10mb(void **state)
{
    (void)state;
    qe_verify_result r;
    char *s = big_text(MB10, " so the answer is \\boxed{42}.");
    assert_int_equal(vresp("42", s, &r), QE_VERDICT_TRUE);
    assert_string_equal(r.extracted, "42");
    qe_verify_opts o;
    qe_verify_opts_init(&o);
    assert_int_equal(qe_verify_pair("42", s, &o, &r), 0);
    assert_int_equal(r.verdict, QE_VERDICT_UNDECIDED);
    assert_non_null(strstr(r.reason, "longer than"));
    free(s);
}

/* Deep braces: 100k deep is too long an answer; 1000 deep fits the size
 * bound but not the parser's depth bound: undecided with a reason either
 * way, never a stack overflow. */
static void test_verify_deep(void **state)
{
    (void)state;
    qe_verify_result r;
    char *s = nested("\\boxed{", "{", DEEP, "7", "}", DEEP, "}");
    assert_int_equal(vresp("7", s, &r), QE_VERDICT_UNDECIDED);
    assert_non_null(strstr(r.reason, "too long"));
    free(s);
    s = nested("", "{", 1000, "7", "}", 1000, "");
    qe_verify_opts o;
    qe_verify_opts_init(&o);
    assert_int_equal(qe_verify_pair("7", s, &o, &r), 0);
    assert_int_equal(r.verdict, QE_VERDICT_UNDECIDED);
    assert_true(r.reason[0] != '\0');
    free(s);
    s = nested("", "\\frac{1}{", 1000, "2", "}", 1000, "");
    assert_int_equal(qe_verify_pair("7", s, &o, &r), 0);
    assert_int_equal(r.verdict, QE_VERDICT_UNDECIDED);
    free(s);
}

/* `qeval grade --jsonl`: one verdict line per input line, in order; a
 * \u0000 in an answer becomes U+FFFD (so `\boxed{7}\u0000\boxed{8}` is graded
 * on its last box, 8); a line with invalid UTF-8 gets verdict null and a
 * reason naming the line (exit 1); the others are graded. */
static void test_grade_cli_hostile(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    char dir[512], in[700], out[700], err[700];
    snprintf(dir, sizeof dir, "%s/qe_untrusted_grade_%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(in, sizeof in, "%s/in.jsonl", dir);
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    snprintf(err, sizeof err, "%s/err.txt", dir);
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_buf_puts(&b, "{\"id\": \"nul\", \"gold\": \"8\", \"pred\": \"\\\\boxed{7}\\u0000\\\\boxed{8}\"}\n"
                                     "{\"id\": \"utf8\", \"gold\": \"5\", \"pred\": \"bad \xff\xfe \\\\boxed{5}\"}\n"
                                     "{\"id\": \"big\", \"gold\": \"42\", \"pred\": \""), 0);
    char *filler = big_text(MB10, " \\\\boxed{42}\"}\n");
    for (char *p = filler; (p = strchr(p, '\n')) != NULL && p[1] != '\0';)
        *p = ' ';
    assert_int_equal(qe_buf_puts(&b, filler), 0);
    free(filler);
    char *deep = nested("{\"id\": \"deep\", \"gold\": \"7\", \"pred\": \"\\\\boxed{", "{", DEEP, "7", "}", DEEP, "}\"}\n");
    assert_int_equal(qe_buf_puts(&b, deep), 0);
    free(deep);
    assert_int_equal(qe_buf_puts(&b, "{\"id\": \"script\", \"gold\": \"5\", \"pred\": \"</script><script>alert(1)</script> \\\\boxed{5}\"}\n"), 0);
    FILE *f = fopen(in, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
    assert_int_equal(fclose(f), 0);
    qe_buf_free(&b);

    const char *args[] = {"grade", "--jsonl", in, NULL};
    assert_int_equal(run_qeval(args, out, err), 1);
    char *o = slurp_must(out, NULL), *e = slurp_must(err, NULL);
    static const struct {
        const char *id; /* NULL: the line could not be read */
        int verdict;    /* 1 true, 0 false, -1 null */
        const char *reason;
    } want[] = {
        {"nul", 1, ""},
        {NULL, -1, "line 2: unable to decode byte 0xff"},
        {"big", 1, ""},
        {"deep", -1, "too long"},
        {"script", 1, ""},
    };
    char *save = NULL, *line = strtok_r(o, "\n", &save);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++, line = strtok_r(NULL, "\n", &save)) {
        assert_non_null(line);
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        json_t *id = json_object_get(j, "id"), *v = json_object_get(j, "verdict");
        if (want[i].id)
            assert_string_equal(json_string_value(id), want[i].id);
        else
            assert_true(json_is_null(id));
        if (want[i].verdict < 0)
            assert_true(json_is_null(v));
        else
            assert_true(json_is_true(v));
        const char *reason = json_string_value(json_object_get(j, "reason"));
        if (!reason || !strstr(reason, want[i].reason))
            fail_msg("line %zu: reason '%s' lacks '%s'", i + 1, reason ? reason : "(none)", want[i].reason);
        json_decref(j);
    }
    assert_null(line);
    assert_null(strstr(e, "line 1:"));
    assert_non_null(strstr(e, "line 2: unable to decode byte 0xff"));
    free(o);
    free(e);
    unlink(in);
    unlink(out);
    unlink(err);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- the server reply parser (client.c): where model text comes in ---- */

/* A chat.completion body whose content JSON text is content_json. */
static char *reply_body(const char *content_json)
{
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_buf_puts(&b, "{\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                                     "\"content\":\""), 0);
    assert_int_equal(qe_buf_puts(&b, content_json), 0);
    assert_int_equal(qe_buf_puts(&b, "\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,"
                                     "\"completion_tokens\":2}}"), 0);
    return qe_buf_detach(&b);
}

/* NUL: a reply whose content holds \u0000 is accepted, each NUL replaced
 * by U+FFFD and flagged (nul_replaced), so no C-string code downstream cuts
 * the text; a raw NUL byte is not JSON and is refused. */
static void test_client_nul(void **state)
{
    (void)state;
    char *body = reply_body("\\\\boxed{7}\\u0000\\\\boxed{8}");
    qe_reply r;
    qe_err e = {0};
    assert_int_equal(qe_client_parse_reply(body, strlen(body), &r, &e), 0);
    assert_true(r.nul_replaced);
    assert_false(r.utf8_repaired);
    assert_string_equal(r.content, "\\boxed{7}\xef\xbf\xbd\\boxed{8}");
    assert_int_equal(r.content_len, strlen(r.content));
    assert_int_equal(lm_score("aime24", "8", r.content, NULL), 1);
    qe_reply_free(&r);
    free(body);
    static const char raw[] = "{\"choices\":[{\"message\":{\"content\":\"a\0b\"}}]}";
    assert_int_equal(qe_client_parse_reply(raw, sizeof raw - 1, &r, &e), QE_ESERVER);
    assert_non_null(strstr(e.msg, "not valid JSON"));
}

/* Invalid UTF-8 is repaired to U+FFFD (and flagged); the answer is kept. */
static void test_client_invalid_utf8(void **state)
{
    (void)state;
    char *body = reply_body("bad \xff\xfe \\\\boxed{5}");
    qe_reply r;
    qe_err e = {0};
    assert_int_equal(qe_client_parse_reply(body, strlen(body), &r, &e), 0);
    assert_true(r.utf8_repaired);
    assert_string_equal(r.content, "bad \xef\xbf\xbd\xef\xbf\xbd \\boxed{5}");
    qe_reply_free(&r);
    free(body);
}

/* 10 MB content is parsed whole; deep braces in the text are text; a body
 * nested 100k deep is refused with a message, never a stack overflow. */
static void test_client_big_deep_script(void **state)
{
    (void)state;
    char *text = big_text(MB10, "\\\\boxed{42}</script><script>alert(1)</script>");
    for (char *p = text; (p = strchr(p, '\n')) != NULL;)
        *p = ' ';
    char *body = reply_body(text);
    qe_reply r;
    qe_err e = {0};
    assert_int_equal(qe_client_parse_reply(body, strlen(body), &r, &e), 0);
    assert_int_equal(r.content_len, MB10 + strlen("\\boxed{42}</script><script>alert(1)</script>"));
    assert_non_null(strstr(r.content + MB10 - 10, "\\boxed{42}</script><script>alert(1)</script>"));
    qe_reply_free(&r);
    free(body);
    free(text);

    char *braces = nested("\\\\boxed{", "{", DEEP, "7", "}", DEEP, "}");
    body = reply_body(braces);
    assert_int_equal(qe_client_parse_reply(body, strlen(body), &r, &e), 0);
    assert_int_equal(r.content_len, 2 * DEEP + strlen("\\boxed{7}"));
    qe_reply_free(&r);
    free(body);
    free(braces);

    char *deep = nested("{\"choices\":[{\"message\":{\"content\":\"x\"},\"x\":", "[", DEEP, "", "]", DEEP, "}]}");
    assert_int_equal(qe_client_parse_reply(deep, strlen(deep), &r, &e), QE_ESERVER);
    assert_non_null(strstr(e.msg, "depth"));
    char m[256];
    qe_client_error_message(deep, strlen(deep), m, sizeof m);
    assert_true(strlen(m) < sizeof m && m[0] != '\0');
    free(deep);
}

/* ---- qeval run end to end: hostile answers from the server ---- */

/* A fake_server on a free port with the given script; fills *pid and url. */
/* The fake server answering from script (tests/fake_server_util.h: it dies
 * with this process, also when an assertion ends the test early). */
static void start_fake_server(const char *script, struct fs *srv, char *url, size_t cap)
{
    const char *args[] = {"--model", "m", "--script", script, NULL};
    assert_int_equal(fs_start(srv, args), 0);
    snprintf(url, cap, "%s", srv->base_url);
}

/* Script rules answering aime24 docs 0..4 (matched by a prefix of the
 * problem) with the given raw contents (any bytes). */
static void write_hostile_script(const char *path, char *const contents[5], const size_t lens[5])
{
    const qe_task *t = qe_task_find("aime24");
    assert_non_null(t);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    qe_err e = {0};
    for (size_t i = 0; i < 5; i++) {
        const json_t *doc = qe_task_doc(t, i, &e); /* borrowed */
        assert_non_null(doc);
        const char *prob = json_string_value(json_object_get(doc, "Problem"));
        size_t k = 0;
        while (prob[k] && k < 50)
            k++;
        while (k > 0 && ((unsigned char)prob[k] & 0xC0) == 0x80)
            k--;
        json_t *m = json_stringn(prob, k);
        char *mj = json_dumps(m, JSON_ENCODE_ANY);
        /* valid UTF-8 without NUL as a JSON string (fast to load), the rest
         * (small) as hex */
        json_t *cj = memchr(contents[i], 0, lens[i]) ? NULL : json_stringn(contents[i], lens[i]);
        if (cj) {
            char *cs = json_dumps(cj, JSON_ENCODE_ANY);
            assert_non_null(cs);
            fprintf(f, "{\"match\": %s, \"content\": %s}\n", mj, cs);
            free(cs);
            json_decref(cj);
        } else {
            assert_true(lens[i] < 4096);
            fprintf(f, "{\"match\": %s, \"content_hex\": \"", mj);
            for (size_t j = 0; j < lens[i]; j++)
                fprintf(f, "%02x", (unsigned char)contents[i][j]);
            fputs("\"}\n", f);
        }
        free(mj);
        json_decref(m);
    }
    assert_int_equal(fclose(f), 0);
}

static long long aime_answer(size_t i)
{
    qe_err e = {0};
    const json_t *doc = qe_task_doc(qe_task_find("aime24"), i, &e);
    assert_non_null(doc);
    return json_integer_value(json_object_get(doc, "Answer"));
}

/* `qeval run` against a server whose answers are hostile:
 *  - NUL in the content: stored and written with U+FFFD in its place, the
 *    run completes, and the answer after the NUL is the one scored;
 *  - invalid UTF-8: repaired to U+FFFD, answer scored right;
 *  - 10 MB answer: stored and written whole, scored right;
 *  - 100k-deep braces: stored whole, scored wrong like lm-eval;
 *  - "</script>": written raw in the samples JSONL (as json.dumps), scored right. */
static void test_run_cli_hostile(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    char dir[512], script[700], out[700], so[700], se[700], mdir[800];
    snprintf(dir, sizeof dir, "%s/qe_untrusted_run_%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(script, sizeof script, "%s/script.jsonl", dir);
    snprintf(so, sizeof so, "%s/stdout.txt", dir);
    snprintf(se, sizeof se, "%s/stderr.txt", dir);

    char *c[5];
    size_t l[5];
    qe_buf b = QE_BUF_INIT;
    /* 1. NUL, the right answer after it */
    qe_buf_printf(&b, "\\boxed{%lld}", aime_answer(0) + 1);
    qe_buf_putc(&b, '\0');
    qe_buf_printf(&b, "\\boxed{%lld}", aime_answer(0));
    l[0] = b.len;
    c[0] = qe_buf_detach(&b);
    for (size_t i = 1; i < 5; i++) {
        qe_buf_printf(&b, "\\boxed{%lld}", aime_answer(i));
        l[i] = b.len;
        c[i] = qe_buf_detach(&b);
    }
    write_hostile_script(script, c, l);
    struct fs srv;
    char url[64];
    start_fake_server(script, &srv, url, sizeof url);
    snprintf(out, sizeof out, "%s/out1", dir);
    const char *a1[] = {"run", "--base-url", url, "--model", "m", "--tasks", "aime24", "--limit", "1",
                        "--apply-chat-template", "--max-attempts", "2", "--output-path", out,
                        "--log-samples", NULL};
    assert_int_equal(run_qeval(a1, so, se), 0);
    fs_stop(&srv);
    {
        snprintf(mdir, sizeof mdir, "%s/m", out);
        DIR *d1 = opendir(mdir);
        assert_non_null(d1);
        char s1[1200] = "";
        struct dirent *de1;
        while ((de1 = readdir(d1)) != NULL)
            if (strncmp(de1->d_name, "samples_aime24_", 15) == 0)
                snprintf(s1, sizeof s1, "%s/%s", mdir, de1->d_name);
        closedir(d1);
        assert_true(s1[0] != '\0');
        char *t1 = slurp_must(s1, NULL);
        json_t *o1 = json_loads(t1, JSON_DISABLE_EOF_CHECK, NULL);
        assert_non_null(o1);
        assert_int_equal(json_integer_value(json_object_get(o1, "exact_match")), 1);
        char want1[128];
        snprintf(want1, sizeof want1, "\\boxed{%lld}\xef\xbf\xbd\\boxed{%lld}", aime_answer(0) + 1,
                 aime_answer(0));
        assert_string_equal(
            json_string_value(json_array_get(json_array_get(json_object_get(o1, "resps"), 0), 0)), want1);
        json_decref(o1);
        free(t1);
    }

    /* 2..5 (doc 0 answered plainly this time) */
    free(c[0]);
    qe_buf_printf(&b, "\\boxed{%lld}", aime_answer(0));
    l[0] = b.len;
    c[0] = qe_buf_detach(&b);
    free(c[1]);
    qe_buf_printf(&b, "bad \xff\xfe \\boxed{%lld}", aime_answer(1));
    l[1] = b.len;
    c[1] = qe_buf_detach(&b);
    free(c[2]);
    char tail[64];
    snprintf(tail, sizeof tail, " \\boxed{%lld}", aime_answer(2));
    c[2] = big_text(MB10, tail);
    l[2] = strlen(c[2]);
    free(c[3]);
    snprintf(tail, sizeof tail, "%lld", aime_answer(3));
    c[3] = nested("\\boxed{", "{", DEEP, tail, "}", DEEP, "}");
    l[3] = strlen(c[3]);
    free(c[4]);
    qe_buf_printf(&b, "</script><script>alert(1)</script> \\boxed{%lld}", aime_answer(4));
    l[4] = b.len;
    c[4] = qe_buf_detach(&b);
    write_hostile_script(script, c, l);
    start_fake_server(script, &srv, url, sizeof url);
    snprintf(out, sizeof out, "%s/out2", dir);
    const char *a2[] = {"run", "--base-url", url, "--model", "m", "--tasks", "aime24", "--limit", "5",
                        "--apply-chat-template", "--gen-kwargs", "max_gen_toks=20000000", "--output-path", out,
                        "--log-samples", NULL};
    assert_int_equal(run_qeval(a2, so, se), 0);
    fs_stop(&srv);

    snprintf(mdir, sizeof mdir, "%s/m", out);
    DIR *d = opendir(mdir);
    assert_non_null(d);
    char samples[1200] = "";
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "samples_aime24_", 15) == 0)
            snprintf(samples, sizeof samples, "%s/%s", mdir, de->d_name);
    closedir(d);
    assert_true(samples[0] != '\0');
    char *text = slurp_must(samples, NULL);
    assert_non_null(strstr(text, "</script><script>alert(1)</script>")); /* raw, as json.dumps */
    static const int want_em[5] = {1, 1, 1, 0, 1};
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    for (size_t i = 0; i < 5; i++, line = strtok_r(NULL, "\n", &save)) {
        assert_non_null(line);
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        assert_int_equal(json_integer_value(json_object_get(o, "doc_id")), i);
        assert_int_equal(json_integer_value(json_object_get(o, "exact_match")), want_em[i]);
        const char *r = json_string_value(json_array_get(json_array_get(json_object_get(o, "resps"), 0), 0));
        assert_non_null(r);
        if (i == 1)
            assert_non_null(strstr(r, "bad \xef\xbf\xbd\xef\xbf\xbd \\boxed{"));
        else
            assert_int_equal(strlen(r), l[i]); /* stored and written whole */
        json_decref(o);
    }
    free(text);
    for (size_t i = 0; i < 5; i++)
        free(c[i]);
    /* leave no 20 MB files behind */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- qeval compare / qeval report end to end ---- */

/* Writes one model's verdicts file dir/model/aime24.verdicts.jsonl with
 * hostile responses: NUL, 10 MB, 100k-deep braces, </script>. */
static void write_hostile_verdicts(const char *dir, const char *model, const int correct[4])
{
    char p[800];
    snprintf(p, sizeof p, "%s/%s", dir, model);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/%s/aime24.verdicts.jsonl", dir, model);
    char *big = big_text(MB10, " \\\\boxed{3}");
    for (char *q = big; (q = strchr(q, '\n')) != NULL;)
        *q = ' ';
    char *deep = nested("\\\\boxed{", "{", DEEP, "7", "}", DEEP, "}");
    const char *resp[4] = {"\\\\boxed{7}\\u0000\\\\boxed{8}", big, deep,
                           "</script><script>alert(1)</script> \\\\boxed{5}"};
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    for (int i = 0; i < 4; i++)
        fprintf(f, "{\"doc_id\": %d, \"correct\": %s, \"response\": \"%s\", \"extracted\": \"<img src=x>\", "
                   "\"gold\": \"<b>5</b>\"}\n",
                i, correct[i] ? "true" : "false", resp[i]);
    assert_int_equal(fclose(f), 0);
    free(big);
    free(deep);
}

/* Both commands read the hostile files and answer normally; the page has
 * one script (its own) and no live markup from the files; a line of
 * invalid UTF-8 stops the load with FILE:LINE (exit 3). */
static void test_compare_report_cli_hostile(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    char dir[512], a[700], b[700], html[700], so[700], se[700];
    snprintf(dir, sizeof dir, "%s/qe_untrusted_cmp_%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    assert_int_equal(mkdir(dir, 0700), 0);
    static const int ca[4] = {1, 1, 0, 1}, cb[4] = {0, 1, 1, 0};
    write_hostile_verdicts(dir, "bf16", ca);
    write_hostile_verdicts(dir, "fp8", cb);
    snprintf(a, sizeof a, "%s/bf16", dir);
    snprintf(b, sizeof b, "%s/fp8", dir);
    snprintf(html, sizeof html, "%s/out.html", dir);
    snprintf(so, sizeof so, "%s/stdout.txt", dir);
    snprintf(se, sizeof se, "%s/stderr.txt", dir);

    const char *rep[] = {"report", html, a, b, NULL};
    assert_int_equal(run_qeval(rep, so, se), 0);
    char *h = slurp_must(html, NULL);
    assert_int_equal(count_of(h, "<script"), 1);
    assert_int_equal(count_of(h, "</script"), 1);
    assert_null(strstr(h, "alert(1)</script>"));
    assert_null(strstr(h, "<img"));
    assert_null(strstr(h, "<b>5"));
    assert_true(strlen(h) < 4u * 1024u * 1024u); /* responses are cut, not embedded whole */
    free(h);

    const char *cmp[] = {"compare", a, b, NULL};
    assert_int_equal(run_qeval(cmp, so, se), 0);
    char *o = slurp_must(so, NULL);
    assert_non_null(strstr(o, "aime24"));
    free(o);

    char p[800];
    snprintf(p, sizeof p, "%s/aime24.verdicts.jsonl", b);
    FILE *f = fopen(p, "ab");
    assert_non_null(f);
    fputs("{\"doc_id\": 9, \"correct\": true, \"response\": \"bad \xff\"}\n", f);
    assert_int_equal(fclose(f), 0);
    assert_int_not_equal(run_qeval(cmp, so, se), 0);
    char *e = slurp_must(se, NULL);
    snprintf(p, sizeof p, "%s/aime24.verdicts.jsonl:5:", b);
    assert_non_null(strstr(e, p));
    free(e);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lm_nul_ends_text),
        cmocka_unit_test(test_lm_invalid_utf8),
        cmocka_unit_test(test_lm_10mb),
        cmocka_unit_test(test_lm_deep_braces),
        cmocka_unit_test(test_lm_script_tag),
        cmocka_unit_test(test_pyjson_nul),
        cmocka_unit_test(test_pyjson_invalid_utf8),
        cmocka_unit_test(test_pyjson_10mb),
        cmocka_unit_test(test_pyjson_deep),
        cmocka_unit_test(test_pyjson_script_tag),
        cmocka_unit_test(test_records_nul),
        cmocka_unit_test(test_records_invalid_utf8),
        cmocka_unit_test(test_records_big_and_deep),
        cmocka_unit_test(test_report_hostile),
        cmocka_unit_test(test_rescore_cli_hostile),
        cmocka_unit_test(test_verify_nul_utf8_script),
        cmocka_unit_test(test_verify_10mb),
        cmocka_unit_test(test_verify_deep),
        cmocka_unit_test(test_grade_cli_hostile),
        cmocka_unit_test(test_client_nul),
        cmocka_unit_test(test_client_invalid_utf8),
        cmocka_unit_test(test_client_big_deep_script),
        cmocka_unit_test(test_run_cli_hostile),
        cmocka_unit_test(test_compare_report_cli_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
