/* test_run: `qeval run` end to end against tests/fake_server.
 *
 * Every test starts the real binaries ($QEVAL_BUILD/qeval and
 * $QEVAL_BUILD/tests/fake_server) in a fresh temp directory: scripted
 * answers with known verdicts -> known accuracy; lm-eval file layout and
 * hashes recomputed independently (prompt_hash against the prompt the
 * server itself logged); resume after a real kill -9 at several points;
 * faults (500/429/garbage) retried; a permanent failure stored, reported
 * and healed by a rerun; the API key nowhere on disk or in output; a new
 * fingerprint never touches old rows; unwritable output paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <openssl/sha.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fake_server_util.h"
#include "file_util.h"
#include "jsonl_cases.h"
#include "pyjson.h"
#include "runner.h"
#include "store.h"
#include "task.h"

/* ---------- helpers: processes ---------- */

static const char *build_dir(void)
{
    const char *b = getenv("QEVAL_BUILD");
    return b ? b : "build";
}

struct srv {
    pid_t pid;
    int fd;
    char url[64];
};

/* Servers started by this process, so a failed assertion (which skips the
 * test's own srv_stop) leaves no orphan behind: the group teardown kills
 * whatever is still listed. Test-only state. */
static pid_t g_servers[64];

static void remember(pid_t pid)
{
    for (int i = 0; i < 64; i++)
        if (!g_servers[i]) {
            g_servers[i] = pid;
            return;
        }
}

static void forget(pid_t pid)
{
    for (int i = 0; i < 64; i++)
        if (g_servers[i] == pid)
            g_servers[i] = 0;
}

static int kill_leftovers(void **state)
{
    (void)state;
    for (int i = 0; i < 64; i++)
        if (g_servers[i] > 0) {
            kill(g_servers[i], SIGKILL);
            waitpid(g_servers[i], NULL, 0);
            g_servers[i] = 0;
        }
    return 0;
}

static void srv_start_port(struct srv *s, const char *port, const char *const *args)
{
    struct fs f;
    if (fs_start_port(&f, port, args) != 0)
        fail_msg("fake_server did not start");
    s->pid = f.pid;
    s->fd = f.out_fd;
    snprintf(s->url, sizeof s->url, "%s", f.base_url);
    remember(f.pid);
}

static void srv_start(struct srv *s, const char *const *args)
{
    srv_start_port(s, "0", args);
}

static void srv_stop(struct srv *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        forget(s->pid);
    }
    if (s->fd > 0)
        close(s->fd);
    memset(s, 0, sizeof *s);
}

/* Starts qeval run with args; stdout/stderr to files in dir. */
static pid_t qeval_spawn(const char *dir, const char *const *args)
{
    char exe[4096], outp[4200], errp[4200];
    snprintf(exe, sizeof exe, "%s/qeval", build_dir());
    snprintf(outp, sizeof outp, "%s/stdout.txt", dir);
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    const char *argv[80];
    int n = 0;
    argv[n++] = exe;
    argv[n++] = "run";
    for (int i = 0; args[i] && n < 78; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static int qeval_wait(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int qeval(const char *dir, const char *const *args)
{
    return qeval_wait(qeval_spawn(dir, args));
}

/* ---------- helpers: files ---------- */

static char *slurp_in(const char *dir, const char *name)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return slurp(p, NULL);
}

static int count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        count += !strncmp(de->d_name, prefix, strlen(prefix));
    closedir(d);
    return count;
}

static void sha_hex(const void *p, size_t n, char out[65])
{
    unsigned char d[32];
    SHA256(p, n, d);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static char *mktemp_dir(void)
{
    char tmpl[] = "/tmp/qeval_test_run.XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

/* ---------- scripted answers for aime24 ---------- */

/* Verdict we script for doc i: right answer, off by one, or zero-padded
 * (lm-eval: "070" != "70", no numeric normalization). */
static int expected_verdict(size_t i)
{
    return i % 3 == 0;
}

/* Writes a fake_server script answering every aime24 doc by a substring
 * of its problem. Returns the number of docs. */
static size_t write_aime_script(const char *path, const char *extra_rules)
{
    const qe_task *t = qe_task_find("aime24");
    assert_non_null(t);
    size_t n;
    qe_err e = {0, ""};
    assert_int_equal(qe_task_size(t, &n, &e), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (extra_rules)
        fputs(extra_rules, f);
    for (size_t i = 0; i < n; i++) {
        json_t *doc = qe_task_doc(t, i, &e);
        const char *prob = json_string_value(json_object_get(doc, "Problem"));
        long long ans = json_integer_value(json_object_get(doc, "Answer"));
        char match[64];
        /* a prefix without a partial UTF-8 character */
        size_t k = 0;
        while (prob[k] && k < 50)
            k++;
        while (k > 0 && ((unsigned char)prob[k] & 0xC0) == 0x80)
            k--;
        memcpy(match, prob, k);
        match[k] = 0;
        char content[256];
        if (i % 3 == 0)
            snprintf(content, sizeof content, "We compute carefully. The answer is $\\boxed{%lld}$.",
                     ans);
        else if (i % 3 == 1)
            snprintf(content, sizeof content, "So the answer is $\\boxed{%lld}$.", ans + 1);
        else
            snprintf(content, sizeof content, "Thus $\\boxed{%03lld0}$ is it.", ans);
        json_t *rule = json_pack("{s:s,s:s,s:i}", "match", match, "content", content,
                                 "completion_tokens", 10 + (int)i);
        char *line = json_dumps(rule, JSON_COMPACT);
        fprintf(f, "%s\n", line);
        free(line);
        json_decref(rule);
    }
    fclose(f);
    return n;
}

/* ---------- tests ---------- */

static void full_run_layout_hashes_accuracy(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char script[4200], log[4200], out[4200];
    snprintf(script, sizeof script, "%s/script.jsonl", dir);
    snprintf(log, sizeof log, "%s/requests.jsonl", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    size_t n = write_aime_script(script, NULL);
    assert_int_equal(n, 30);
    struct srv s;
    const char *sargs[] = {"--model", "org/m1", "--script", script, "--request-log", log, NULL};
    srv_start(&s, sargs);
    const char *args[] = {"--base-url", s.url, "--model", "org/m1", "--tasks", "aime24",
                          "--limit", "50", "--apply-chat-template", "--gen-kwargs",
                          "max_gen_toks=1024,temperature=0", "--num-concurrent", "8",
                          "--output-path", out, "--log-samples", NULL};
    int rc = qeval(dir, args);
    char *err = slurp_in(dir, "stderr.txt");
    assert_int_equal(rc, 0);
    char *so = slurp_in(dir, "stdout.txt");
    assert_non_null(strstr(so, "above the dataset size")); /* limit 50 > 30 reported */
    free(so);

    /* lm-eval layout: <out>/<model with / -> __>/results_<date>.json + samples */
    char mdir[4300];
    snprintf(mdir, sizeof mdir, "%s/org__m1", out);
    char *rpath = find_one(mdir, "results_");
    char *spath = find_one(mdir, "samples_aime24_");
    assert_non_null(rpath);
    assert_non_null(spath);
    /* same date id in both names */
    const char *rdate = strstr(rpath, "results_") + 8;
    const char *sdate = strstr(spath, "samples_aime24_") + 15;
    assert_int_equal(strncmp(rdate, sdate, 26), 0);

    json_t *res = json_load_file(rpath, 0, NULL);
    assert_non_null(res);
    json_t *r = json_object_get(json_object_get(res, "results"), "aime24");
    assert_true(json_real_value(json_object_get(r, "exact_match,none")) == 10.0 / 30.0);
    assert_non_null(json_object_get(r, "exact_match_stderr,none"));
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(res, "n-samples"), "aime24"), "effective")),
                     30);
    assert_string_equal(json_string_value(json_object_get(res, "model_name")), "org/m1");
    /* as lm-eval's local-chat-completions writes it: the server renders the
     * template, chat_template() is "" and "" has no sha */
    assert_string_equal(json_string_value(json_object_get(res, "chat_template")), "");
    assert_true(json_is_null(json_object_get(res, "chat_template_sha")));

    /* samples: verdicts, hashes recomputed outside the writer */
    json_t *lines = load_jsonl(spath);
    assert_int_equal(json_array_size(lines), 30);
    json_t *reqlog = load_jsonl(log);
    const qe_task *t = qe_task_find("aime24");
    qe_err e = {0, ""};
    qe_buf concat = QE_BUF_INIT;
    for (size_t i = 0; i < 30; i++) {
        json_t *l = json_array_get(lines, i);
        assert_int_equal(json_integer_value(json_object_get(l, "doc_id")), (json_int_t)i);
        assert_int_equal(json_integer_value(json_object_get(l, "exact_match")),
                         expected_verdict(i));
        json_t *doc = qe_task_doc(t, i, &e);
        assert_true(json_equal(doc, json_object_get(l, "doc")));
        qe_buf d = QE_BUF_INIT;
        assert_int_equal(qe_pyjson_dump(&d, doc, 2, 0, &e), 0);
        char h[65];
        sha_hex(d.data, d.len, h);
        qe_buf_free(&d);
        assert_string_equal(h, json_string_value(json_object_get(l, "doc_hash")));
        char tgt[32];
        snprintf(tgt, sizeof tgt, "%lld", (long long)json_integer_value(json_object_get(doc, "Answer")));
        assert_string_equal(json_string_value(json_object_get(l, "target")), tgt);
        sha_hex(tgt, strlen(tgt), h);
        assert_string_equal(h, json_string_value(json_object_get(l, "target_hash")));
        /* prompt_hash = sha256 of the prompt the server rendered and logged */
        const char *ph = json_string_value(json_object_get(l, "prompt_hash"));
        const char *arg0 = json_string_value(
            json_object_get(json_object_get(json_object_get(l, "arguments"), "gen_args_0"), "arg_0"));
        sha_hex(arg0, strlen(arg0), h);
        assert_string_equal(h, ph);
        int seen = 0;
        size_t k;
        json_t *rq;
        json_array_foreach(reqlog, k, rq) {
            const char *path = json_string_value(json_object_get(rq, "path"));
            if (path && !strcmp(path, "/v1/chat/completions") &&
                !strcmp(json_string_value(json_object_get(rq, "prompt_sha256")), ph))
                seen++;
        }
        assert_int_equal(seen, 1);
        assert_non_null(strstr(arg0, "<|im_start|>user\nQuestion: "));
        /* qeval extras */
        assert_string_equal(json_string_value(json_object_get(l, "finish_reason")), "stop");
        assert_int_equal(json_integer_value(json_object_get(l, "completion_tokens")), 10 + (int)i);
        assert_int_equal(json_integer_value(json_object_get(l, "attempts")), 1);
        assert_non_null(json_object_get(l, "latency_ms"));
        /* arg_1: task kwargs merged with the CLI's, types kept */
        json_t *a1 = json_object_get(json_object_get(json_object_get(l, "arguments"), "gen_args_0"),
                                     "arg_1");
        assert_int_equal(json_integer_value(json_object_get(a1, "max_gen_toks")), 1024);
        assert_true(json_is_integer(json_object_get(a1, "temperature")));
        qe_buf_printf(&concat, "%s%s%s", json_string_value(json_object_get(l, "doc_hash")), ph,
                      json_string_value(json_object_get(l, "target_hash")));
    }
    char th[65];
    sha_hex(concat.data, concat.len, th);
    qe_buf_free(&concat);
    assert_string_equal(th, json_string_value(json_object_get(json_object_get(res, "task_hashes"),
                                                              "aime24")));
    /* every sampling field was sent explicitly */
    size_t k;
    json_t *rq;
    int completions = 0;
    json_array_foreach(reqlog, k, rq) {
        const char *path = json_string_value(json_object_get(rq, "path"));
        completions += path && !strcmp(path, "/v1/chat/completions");
    }
    assert_int_equal(completions, 30);
    json_decref(reqlog);

    /* rerun: nothing sent, no new files, says so */
    size_t loglen_before;
    free(slurp(log, &loglen_before));
    rc = qeval(dir, args);
    assert_int_equal(rc, 0);
    so = slurp_in(dir, "stdout.txt");
    assert_non_null(strstr(so, "all answers came from the store"));
    free(so);
    json_t *reqlog2 = load_jsonl(log);
    int completions2 = 0;
    json_array_foreach(reqlog2, k, rq) {
        const char *path = json_string_value(json_object_get(rq, "path"));
        completions2 += path && !strcmp(path, "/v1/chat/completions");
    }
    assert_int_equal(completions2, 30);
    json_decref(reqlog2);
    assert_int_equal(count_prefix(mdir, "results_"), 1);
    assert_int_equal(count_prefix(mdir, "samples_"), 1);

    /* server gone: a finished run is still scored from the store */
    char gone_url[64];
    snprintf(gone_url, sizeof gone_url, "%s", s.url);
    srv_stop(&s);
    args[1] = gone_url;
    rc = qeval(dir, args);
    assert_int_equal(rc, 0);
    so = slurp_in(dir, "stdout.txt");
    assert_non_null(strstr(so, "all answers came from the store"));
    assert_non_null(strstr(so, "unchanged, not rewritten"));
    free(so);
    /* ... but a configuration never stored cannot be answered offline */
    const char *args_other[] = {"--base-url", gone_url, "--model", "org/m1", "--tasks", "aime24",
                                "--apply-chat-template", "--gen-kwargs", "max_gen_toks=7",
                                "--output-path", out, NULL};
    assert_int_equal(qeval(dir, args_other), 5);
    free(err);
    err = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err, "no run of aime24 with this configuration"));
    /* ... nor anything into a directory that holds no store: nothing created */
    char none[4300];
    snprintf(none, sizeof none, "%s/nostore/out", dir);
    const char *args_none[] = {"--base-url", gone_url, "--model", "org/m1", "--tasks", "aime24",
                               "--apply-chat-template", "--output-path", none, NULL};
    assert_int_equal(qeval(dir, args_none), 5);
    free(err);
    err = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err, "cannot reach the server"));
    assert_non_null(strstr(err, "no store in"));
    snprintf(none, sizeof none, "%s/nostore", dir);
    assert_int_equal(access(none, F_OK), -1);

    json_decref(lines);
    json_decref(res);
    free(rpath);
    free(spath);
    free(err);
    rm_rf(dir);
    free(dir);
}

/* Prompt text as sent: a request body field check through the request log. */
static void completions_mode_and_think(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char log[4200], out[4200];
    snprintf(log, sizeof log, "%s/requests.jsonl", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--request-log", log, "--default-answer",
                           "$\\boxed{5}$", NULL};
    srv_start(&s, sargs);
    /* no --apply-chat-template: raw prompt to /v1/completions, like lm-eval */
    const char *a1[] = {"--base-url", s.url, "--model", "m", "--tasks", "hendrycks_math500",
                        "--limit", "3", "--output-path", out, "--log-samples", NULL};
    assert_int_equal(qeval(dir, a1), 0);
    char mdir[4300];
    snprintf(mdir, sizeof mdir, "%s/m", out);
    char *sp = find_one(mdir, "samples_hendrycks_math500_");
    assert_non_null(sp);
    json_t *lines = load_jsonl(sp);
    const char *arg0 = json_string_value(json_object_get(
        json_object_get(json_object_get(json_array_get(lines, 0), "arguments"), "gen_args_0"),
        "arg_0"));
    const qe_task *t = qe_task_find("hendrycks_math500");
    qe_buf want = QE_BUF_INIT;
    qe_err e = {0, ""};
    assert_int_equal(qe_task_doc_text(t, 0, &want, &e), 0);
    assert_string_equal(arg0, want.data);
    qe_buf_free(&want);
    json_decref(lines);
    free(sp);
    char *rp = find_one(mdir, "results_");
    assert_non_null(rp);
    json_t *res = json_load_file(rp, 0, NULL);
    assert_non_null(res);
    assert_true(json_is_null(json_object_get(res, "chat_template"))); /* no template */
    assert_true(json_is_null(json_object_get(res, "chat_template_sha")));
    json_t *cfg = json_object_get(res, "config");
    assert_string_equal(json_string_value(json_object_get(cfg, "model")), "local-completions");
    /* no --gen-kwargs: null, as lm-eval writes it */
    assert_true(json_is_null(json_object_get(cfg, "gen_kwargs")));
    json_decref(res);
    free(rp);
    json_t *reqlog = load_jsonl(log);
    size_t k;
    json_t *rq;
    int comp = 0;
    json_array_foreach(reqlog, k, rq) {
        const char *path = json_string_value(json_object_get(rq, "path"));
        comp += path && !strcmp(path, "/v1/completions");
    }
    assert_int_equal(comp, 3);
    json_decref(reqlog);

    /* --think off: Qwen3's empty think block is in the rendered prompt */
    char out2[4200];
    snprintf(out2, sizeof out2, "%s/out2", dir);
    const char *a2[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit", "2",
                        "--apply-chat-template", "--think", "off", "--system-instruction",
                        "Be brief.", "--output-path", out2, "--log-samples", NULL};
    assert_int_equal(qeval(dir, a2), 0);
    snprintf(mdir, sizeof mdir, "%s/m", out2);
    sp = find_one(mdir, "samples_aime24_");
    assert_non_null(sp);
    lines = load_jsonl(sp);
    arg0 = json_string_value(json_object_get(
        json_object_get(json_object_get(json_array_get(lines, 0), "arguments"), "gen_args_0"),
        "arg_0"));
    assert_true(!strncmp(arg0, "<|im_start|>system\nBe brief.<|im_end|>\n", 38));
    size_t L = strlen(arg0);
    const char *tail = "<|im_start|>assistant\n<think>\n\n</think>\n\n";
    assert_true(L > strlen(tail) && !strcmp(arg0 + L - strlen(tail), tail));
    json_decref(lines);
    free(sp);
    /* the switch recorded where summarize and compare read it */
    char *rp2 = find_one(mdir, "results_");
    assert_non_null(rp2);
    json_t *res2 = json_load_file(rp2, 0, NULL);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(res2, "config"),
                                                             "model_args")),
                           ",enable_thinking=False"));
    json_decref(res2);
    free(rp2);
    /* the same switch given as lm-eval users give it, in --gen-kwargs: the
     * recorded prompt is rendered with it too (it was rendered thinking on) */
    char out5[4200];
    snprintf(out5, sizeof out5, "%s/out5", dir);
    const char *a6[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit", "2",
                        "--apply-chat-template", "--gen-kwargs",
                        "{\"chat_template_kwargs\":{\"enable_thinking\":false}}",
                        "--output-path", out5, "--log-samples", NULL};
    assert_int_equal(qeval(dir, a6), 0);
    snprintf(mdir, sizeof mdir, "%s/m", out5);
    sp = find_one(mdir, "samples_aime24_");
    assert_non_null(sp);
    lines = load_jsonl(sp);
    arg0 = json_string_value(json_object_get(
        json_object_get(json_object_get(json_array_get(lines, 0), "arguments"), "gen_args_0"),
        "arg_0"));
    L = strlen(arg0);
    assert_true(L > strlen(tail) && !strcmp(arg0 + L - strlen(tail), tail));
    json_decref(lines);
    free(sp);
    /* and --think against it is refused, not silently preferred */
    const char *a7[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit", "2",
                        "--apply-chat-template", "--think", "on", "--gen-kwargs",
                        "{\"chat_template_kwargs\":{\"enable_thinking\":false}}",
                        "--output-path", out5, NULL};
    assert_int_equal(qeval(dir, a7), 2);
    char *err7 = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err7, "--think on contradicts chat_template_kwargs.enable_thinking=false"));
    free(err7);
    /* --think without the chat template is a usage error */
    const char *a3[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--think",
                        "off", "--output-path", out2, NULL};
    assert_int_equal(qeval(dir, a3), 2);
    /* so is a base URL that is not http(s), before anything is created */
    char out3[4200];
    snprintf(out3, sizeof out3, "%s/out3", dir);
    const char *a4[] = {"--base-url", "localhost:8000/v1", "--model", "m", "--tasks", "aime24",
                        "--output-path", out3, NULL};
    assert_int_equal(qeval(dir, a4), 2);
    char *err4 = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err4, "--base-url: base_url must start with http:// or https://"));
    free(err4);
    assert_int_equal(access(out3, F_OK), -1);
    /* one server given twice would double its load: refused */
    char same[200];
    snprintf(same, sizeof same, "%s/", s.url);
    const char *a4b[] = {"--base-url", s.url, "--base-url", same, "--model", "m", "--tasks",
                         "aime24", "--output-path", out3, NULL};
    assert_int_equal(qeval(dir, a4b), 2);
    char *err4b = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err4b, "names the same server as --base-url #1"));
    free(err4b);
    assert_int_equal(access(out3, F_OK), -1);
    /* a task with two filters: the summary names the one its number is */
    char out4[4200];
    snprintf(out4, sizeof out4, "%s/out4", dir);
    const char *a5[] = {"--base-url", s.url, "--model", "m", "--tasks", "gsm8k,aime24", "--limit",
                        "2", "--output-path", out4, NULL};
    assert_int_equal(qeval(dir, a5), 0);
    char *so5 = slurp_in(dir, "stdout.txt");
    assert_non_null(strstr(so5, "gsm8k: 2/2 answered (0 from the store, 2 sent this time), "
                                "exact_match (strict-match) 0.0000"));
    assert_non_null(strstr(so5, "aime24: 2/2 answered (0 from the store, 2 sent this time), "
                                "exact_match 0.0000"));
    free(so5);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

/* Samples minus the fields that may differ between runs (latency). */
static json_t *stable_samples(const char *path)
{
    json_t *a = load_jsonl(path);
    size_t i;
    json_t *l;
    json_array_foreach(a, i, l) json_object_del(l, "latency_ms");
    return a;
}

static void snapshot_done(const char *out, int done[64])
{
    char p[4400];
    snprintf(p, sizeof p, "%s/qeval.sqlite", out);
    memset(done, 0, 64 * sizeof(int));
    qe_store *st = NULL;
    qe_err e = {0, ""};
    if (qe_store_open(p, 1, &st, &e))
        return; /* killed before the store existed */
    qe_store_run *runs = NULL;
    size_t nr = 0;
    assert_int_equal(qe_store_runs_list(st, &runs, &nr, &e), 0);
    for (size_t i = 0; i < nr; i++) {
        qe_store_keys k = {0};
        if (strncmp(runs[i].fingerprint, "results:", 8) &&
            qe_store_done_keys(st, runs[i].id, "aime24", &k, &e) == 0) {
            for (size_t j = 0; j < k.n; j++)
                if (k.keys[j].doc_id < 64)
                    done[k.keys[j].doc_id] = 1;
            qe_store_keys_free(&k);
        }
    }
    qe_store_runs_free(runs, nr);
    qe_store_close(st);
}

static size_t answered_lines(const char *log)
{
    size_t n = 0;
    char *s = slurp(log, NULL);
    if (!s)
        return 0;
    char *save = NULL;
    for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        n += strstr(l, "\"/v1/chat/completions\"") && strstr(l, "\"answered\":true");
    free(s);
    return n;
}

static void kill9_resume(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char script[4200], log[4200], out[4200], ref[4200];
    snprintf(script, sizeof script, "%s/script.jsonl", dir);
    snprintf(log, sizeof log, "%s/requests.jsonl", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(ref, sizeof ref, "%s/ref", dir);
    write_aime_script(script, NULL);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--script", script, "--request-log", log,
                           "--latency-ms", "40", NULL};
    srv_start(&s, sargs);
    const char *args[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24",
                          "--apply-chat-template", "--num-concurrent", "3", "--output-path",
                          out, "--log-samples", NULL};
    /* kill -9 after a few answers, four times, then let it finish; after
     * every kill, the next run must not ask a doc the store already had.
     * The counts are of answers the server sent, including those sent into
     * the socket of a run just killed (up to 3), and leave each run one
     * whole wave of answers (40 ms) to commit before its kill. */
    const size_t kill_at[] = {2, 12, 20, 27};
    int done[64];
    size_t mark = 0;
    for (size_t round = 0; round <= 4; round++) {
        pid_t pid = qeval_spawn(dir, args);
        if (round < 4) {
            struct timespec ts = {0, 2000000};
            for (int waited = 0; waited < 10000; waited++) {
                if (answered_lines(log) >= kill_at[round])
                    break;
                nanosleep(&ts, NULL);
            }
            kill(pid, SIGKILL);
            qeval_wait(pid);
        } else {
            assert_int_equal(qeval_wait(pid), 0);
        }
        if (round > 0) {
            size_t total;
            char *all = slurp(log, &total);
            char *save = NULL;
            for (char *line = strtok_r(all + mark, "\n", &save); line;
                 line = strtok_r(NULL, "\n", &save)) {
                json_t *o = json_loads(line, 0, NULL);
                const char *p = json_string_value(json_object_get(o, "prompt"));
                const char *path = json_string_value(json_object_get(o, "path"));
                if (p && path && !strcmp(path, "/v1/chat/completions")) {
                    const qe_task *t = qe_task_find("aime24");
                    qe_err e = {0, ""};
                    for (size_t d = 0; d < 30; d++) {
                        json_t *doc = qe_task_doc(t, d, &e);
                        const char *prob = json_string_value(json_object_get(doc, "Problem"));
                        if (strstr(p, prob) && done[d])
                            fail_msg("round %zu: doc %zu was stored but asked again", round, d);
                    }
                }
                json_decref(o);
            }
            free(all);
        }
        if (round < 4) {
            snapshot_done(out, done);
            int nd = 0;
            for (int d = 0; d < 30; d++)
                nd += done[d];
            /* the kill really hit a run in flight: some stored, not all */
            if (round < 3)
                assert_true(nd < 30);
            if (round > 0)
                assert_true(nd > 0);
            free(slurp(log, &mark));
        }
    }
    /* uninterrupted reference run on the same server */
    const char *rargs[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24",
                           "--apply-chat-template", "--num-concurrent", "3", "--output-path",
                           ref, "--log-samples", NULL};
    assert_int_equal(qeval(dir, rargs), 0);
    char d1[4300], d2[4300];
    snprintf(d1, sizeof d1, "%s/m", out);
    snprintf(d2, sizeof d2, "%s/m", ref);
    char *s1 = find_one(d1, "samples_aime24_"), *s2 = find_one(d2, "samples_aime24_");
    assert_non_null(s1);
    assert_non_null(s2);
    json_t *a = stable_samples(s1), *b = stable_samples(s2);
    assert_int_equal(json_array_size(a), 30);
    for (size_t i = 0; i < 30; i++) {
        if (!json_equal(json_array_get(a, i), json_array_get(b, i))) {
            char *x = json_dumps(json_array_get(a, i), JSON_COMPACT);
            fail_msg("resumed sample %zu differs: %s", i, x);
        }
    }
    json_decref(a);
    json_decref(b);
    free(s1);
    free(s2);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

static void faults_retry_and_permanent_failure(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char script[4200], log[4200], out[4200];
    snprintf(script, sizeof script, "%s/script.jsonl", dir);
    snprintf(log, sizeof log, "%s/requests.jsonl", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    write_aime_script(script, NULL);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--script", script, "--request-log", log,
                           "--fault", "500:2", "--fault", "429:1:1", "--fault", "garbage:1",
                           "--fault", "truncated:1", NULL};
    srv_start(&s, sargs);
    const char *args[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                          "6", "--apply-chat-template", "--num-concurrent", "2",
                          "--max-attempts", "6", "--output-path", out, "--log-samples", NULL};
    assert_int_equal(qeval(dir, args), 0);
    char md[4300];
    snprintf(md, sizeof md, "%s/m", out);
    char *sp = find_one(md, "samples_aime24_");
    assert_non_null(sp);
    json_t *lines = load_jsonl(sp);
    json_int_t attempts = 0;
    for (size_t i = 0; i < 6; i++) {
        json_t *l = json_array_get(lines, i);
        attempts += json_integer_value(json_object_get(l, "attempts"));
        assert_int_equal(json_integer_value(json_object_get(l, "exact_match")), expected_verdict(i));
    }
    assert_int_equal(attempts, 6 + 5); /* every injected fault cost one attempt */
    json_decref(lines);
    free(sp);
    srv_stop(&s);

    /* one doc that always fails: stored failed, listed, exit non-zero */
    char out2[4200], script2[4200];
    snprintf(out2, sizeof out2, "%s/out2", dir);
    snprintf(script2, sizeof script2, "%s/script2.jsonl", dir);
    const qe_task *t = qe_task_find("aime24");
    qe_err e = {0, ""};
    const char *p1 = json_string_value(json_object_get(qe_task_doc(t, 1, &e), "Problem"));
    char m30[31];
    snprintf(m30, sizeof m30, "%.30s", p1);
    json_t *jr = json_pack("{s:s,s:i,s:s}", "match", m30, "status", 503, "error", "overloaded");
    char *rule = json_dumps(jr, JSON_COMPACT);
    json_decref(jr);
    qe_buf rl = QE_BUF_INIT;
    qe_buf_printf(&rl, "%s\n", rule);
    free(rule);
    write_aime_script(script2, rl.data);
    qe_buf_free(&rl);
    const char *s2args[] = {"--model", "m", "--script", script2, "--request-log", log, NULL};
    srv_start(&s, s2args);
    const char *args2[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                           "4", "--apply-chat-template", "--max-attempts", "2", "--output-path",
                           out2, "--log-samples", NULL};
    int rc = qeval(dir, args2);
    assert_int_equal(rc, 1);
    char *err = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err, "aime24 doc 1 repeat 0"));
    assert_non_null(strstr(err, "overloaded"));
    /* listed once, then counted */
    const char *l1 = strstr(err, "aime24 doc 1 repeat 0");
    assert_null(strstr(l1 + 1, "aime24 doc 1 repeat 0"));
    assert_non_null(strstr(err, "qeval run: 1 request failed; rerun the same command to ask it "
                                "again\n"));
    free(err);
    snprintf(md, sizeof md, "%s/m", out2);
    assert_int_equal(count_prefix(md, "results_"), 0); /* incomplete task: no files */
    char dbp[4300];
    snprintf(dbp, sizeof dbp, "%s/qeval.sqlite", out2);
    qe_store *st;
    assert_int_equal(qe_store_open(dbp, 1, &st, &e), 0);
    int64_t okc = 0, failc = 0;
    assert_int_equal(qe_store_counts(st, 1, "aime24", &okc, &failc, &e), 0);
    assert_int_equal(okc, 3);
    assert_int_equal(failc, 1);
    qe_store_close(st);
    srv_stop(&s);

    /* fault gone: the rerun asks exactly the failed request */
    const char *s3args[] = {"--model", "m", "--script", script, "--request-log", log, NULL};
    srv_start(&s, s3args);
    size_t mark;
    free(slurp(log, &mark));
    const char *args3[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                           "4", "--apply-chat-template", "--max-attempts", "2", "--output-path",
                           out2, "--log-samples", NULL};
    assert_int_equal(qeval(dir, args3), 0);
    char *all = slurp(log, NULL);
    int comp = 0;
    for (char *p = all + mark; (p = strstr(p, "\"path\":\"/v1/chat/completions\"")); p++)
        comp++;
    assert_int_equal(comp, 1);
    free(all);
    assert_int_equal(count_prefix(md, "results_"), 1);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

static void api_key_never_written(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char out[4200];
    snprintf(out, sizeof out, "%s/out", dir);
    const char *key = "sk-SECRET-qeval-7f3a9";
    struct srv s;
    const char *sargs[] = {"--model", "m", "--api-key", key, "--default-answer", "$4$", NULL};
    srv_start(&s, sargs);
    setenv("QE_TEST_KEY", key, 1);
    const char *args[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                          "3", "--apply-chat-template", "--api-key-env", "QE_TEST_KEY",
                          "--output-path", out, "--log-samples", NULL};
    assert_int_equal(qeval(dir, args), 0);
    assert_false(tree_contains(dir, key)); /* store, wal, samples, results, stdout, stderr */
    /* a wrong key: the server echoes it in its 401 message; it must not leak */
    const char *wrong = "sk-WRONG-qeval-11aa";
    setenv("QE_TEST_KEY", wrong, 1);
    char out2[4200];
    snprintf(out2, sizeof out2, "%s/out2", dir);
    const char *args2[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                           "3", "--apply-chat-template", "--api-key-env", "QE_TEST_KEY",
                           "--output-path", out2, NULL};
    int rc = qeval(dir, args2);
    assert_int_not_equal(rc, 0);
    char *err = slurp_in(dir, "stderr.txt");
    assert_true(strlen(err) > 0);
    free(err);
    assert_false(tree_contains(dir, wrong));
    assert_false(tree_contains(dir, key));
    /* missing variable: usage error */
    unsetenv("QE_TEST_KEY");
    assert_int_equal(qeval(dir, args2), 2);
    srv_stop(&s);
    /* a password in the URL (http://user:password@host) is sent, never
     * written: not in model_args of the results, the store or messages */
    const char *s2args[] = {"--model", "m", "--default-answer", "$4$", NULL};
    srv_start(&s, s2args);
    assert_int_equal(strncmp(s.url, "http://", 7), 0);
    char url[300], out3[4200];
    snprintf(url, sizeof url, "http://qe:Pw-s3cret@%s", s.url + 7);
    snprintf(out3, sizeof out3, "%s/out3", dir);
    const char *args3[] = {"--base-url", url, "--model", "m", "--tasks", "aime24", "--limit",
                           "3", "--apply-chat-template", "--output-path", out3, "--log-samples",
                           NULL};
    assert_int_equal(qeval(dir, args3), 0);
    assert_false(tree_contains(dir, "s3cret"));
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

struct rowcopy {
    qe_buf b;
};

static int copy_rows(const qe_store_response *r, void *ctx)
{
    qe_buf *b = ctx;
    qe_buf_printf(b, "%lld|%d|%s|%s|%s\n", (long long)r->doc_id, r->repeat,
                  r->content ? r->content : "", r->created_at ? r->created_at : "",
                  r->request_json ? r->request_json : "");
    return 0;
}

static void new_fingerprint_new_run(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char out[4200], db[4300];
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(db, sizeof db, "%s/qeval.sqlite", out);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--default-answer", "$\\boxed{1}$", NULL};
    srv_start(&s, sargs);
    const char *a1[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                        "3", "--apply-chat-template", "--gen-kwargs", "max_gen_toks=100",
                        "--output-path", out, NULL};
    assert_int_equal(qeval(dir, a1), 0);
    qe_store *st;
    qe_err e = {0, ""};
    qe_buf before = QE_BUF_INIT, after = QE_BUF_INIT;
    assert_int_equal(qe_store_open(db, 1, &st, &e), 0);
    assert_int_equal(qe_store_foreach(st, 1, NULL, QE_STORE_ALL, copy_rows, &before, &e), 0);
    qe_store_close(st);
    /* every sampling field sent explicitly (vLLM would apply
     * generation_config.json otherwise), do_sample/until/max_gen_toks not */
    assert_non_null(strstr(before.data, "\"max_tokens\":100"));
    assert_non_null(strstr(before.data, "\"temperature\":0.0"));
    assert_non_null(strstr(before.data, "\"stop\":[\"Question:\",\"</s>\",\"<|im_end|>\",\"<|eot_id|>\"]"));
    assert_non_null(strstr(before.data, "\"seed\":1234"));
    assert_null(strstr(before.data, "do_sample"));
    assert_null(strstr(before.data, "max_gen_toks"));
    assert_null(strstr(before.data, "\"until\""));
    const char *a2[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                        "3", "--apply-chat-template", "--gen-kwargs", "max_gen_toks=200",
                        "--output-path", out, NULL};
    assert_int_equal(qeval(dir, a2), 0);
    char *err = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err, "configuration differs from the stored run"));
    /* only what changed, by its path */
    assert_non_null(strstr(err, "(gen_kwargs.max_gen_toks: 100 -> 200): starting a new run"));
    free(err);
    char *so = slurp_in(dir, "stdout.txt");
    assert_non_null(strstr(so, "0 from the store, 3 sent"));
    free(so);
    assert_int_equal(qe_store_open(db, 1, &st, &e), 0);
    assert_int_equal(qe_store_foreach(st, 1, NULL, QE_STORE_ALL, copy_rows, &after, &e), 0);
    int64_t okc = 0;
    qe_store_run *runs;
    size_t nr;
    assert_int_equal(qe_store_runs_list(st, &runs, &nr, &e), 0);
    int64_t second = 0;
    for (size_t i = 0; i < nr; i++)
        if (runs[i].id != 1 && strncmp(runs[i].fingerprint, "results:", 8))
            second = runs[i].id;
    qe_store_runs_free(runs, nr);
    assert_true(second > 1);
    assert_int_equal(qe_store_counts(st, second, "aime24", &okc, NULL, &e), 0);
    assert_int_equal(okc, 3);
    qe_store_close(st);
    assert_string_equal(before.data, after.data); /* old rows untouched */
    qe_buf_free(&before);
    qe_buf_free(&after);
    /* the first command again with temperature=0 spelled out: the task's
     * default is 0.0, the same setting, so the first run goes on: nothing
     * asked, no third run */
    const char *a3[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                        "3", "--apply-chat-template", "--gen-kwargs",
                        "max_gen_toks=100,temperature=0", "--output-path", out, NULL};
    assert_int_equal(qeval(dir, a3), 0);
    char *err3 = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err3, "aime24: continuing the stored run 1: its settings differ only in "
                                 "how numbers are written (gen_kwargs.temperature: 0.0 -> 0)"));
    free(err3);
    so = slurp_in(dir, "stdout.txt");
    assert_non_null(strstr(so, "3 from the store, 0 sent"));
    free(so);
    assert_int_equal(qe_store_open(db, 1, &st, &e), 0);
    assert_int_equal(qe_store_runs_list(st, &runs, &nr, &e), 0);
    size_t task_runs = 0;
    for (size_t i = 0; i < nr; i++)
        task_runs += strncmp(runs[i].fingerprint, "results:", 8) != 0;
    qe_store_runs_free(runs, nr);
    qe_store_close(st);
    assert_int_equal(task_runs, 2);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

static void unwritable_output(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    struct srv s;
    const char *sargs[] = {"--model", "m", NULL};
    srv_start(&s, sargs);
    /* a path below a regular file */
    char file[4200], bad[4300];
    snprintf(file, sizeof file, "%s/plainfile", dir);
    FILE *f = fopen(file, "w");
    fputs("x", f);
    fclose(f);
    snprintf(bad, sizeof bad, "%s/out", file);
    const char *a1[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                        "2", "--output-path", bad, NULL};
    assert_int_equal(qeval(dir, a1), 4);
    char *err = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err, "plainfile"));
    free(err);
    /* a read-only directory (root ignores permissions: then only the above) */
    if (geteuid() != 0) {
        char ro[4300], sub[4400];
        snprintf(ro, sizeof ro, "%s/ro", dir);
        mkdir(ro, 0555);
        snprintf(sub, sizeof sub, "%s/out", ro);
        const char *a2[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                            "2", "--output-path", sub, NULL};
        assert_int_equal(qeval(dir, a2), 4);
        const char *a3[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                            "2", "--output-path", ro, NULL};
        assert_int_equal(qeval(dir, a3), 4);
        err = slurp_in(dir, "stderr.txt");
        assert_non_null(strstr(err, "not writable"));
        free(err);
    }
    /* unknown task, missing flags: usage */
    const char *a4[] = {"--base-url", s.url, "--model", "m", "--tasks", "nope", "--output-path",
                        dir, NULL};
    assert_int_equal(qeval(dir, a4), 2);
    const char *a5[] = {"--model", "m", NULL};
    assert_int_equal(qeval(dir, a5), 2);
    /* server serves another model: clear error, exit 5 */
    const char *a6[] = {"--base-url", s.url, "--model", "other", "--tasks", "aime24",
                        "--output-path", dir, NULL};
    assert_int_equal(qeval(dir, a6), 5);
    err = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err, "does not serve model 'other'"));
    free(err);
    /* ... and leaves nothing behind: no output directory, no empty store */
    char fresh[4300];
    snprintf(fresh, sizeof fresh, "%s/fresh/out", dir);
    const char *a7[] = {"--base-url", s.url, "--model", "other", "--tasks", "aime24",
                        "--output-path", fresh, NULL};
    assert_int_equal(qeval(dir, a7), 5);
    snprintf(fresh, sizeof fresh, "%s/fresh", dir);
    assert_int_equal(access(fresh, F_OK), -1);
    /* a bad --gen-kwargs value is a usage error too, found before anything
     * is created or asked */
    snprintf(fresh, sizeof fresh, "%s/fresh/out", dir);
    const char *a8[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24",
                        "--gen-kwargs", "max_gen_toks=0", "--output-path", fresh, NULL};
    assert_int_equal(qeval(dir, a8), 2);
    err = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err, "aime24: gen_kwargs: max_gen_toks must be a positive integer"));
    free(err);
    snprintf(fresh, sizeof fresh, "%s/fresh", dir);
    assert_int_equal(access(fresh, F_OK), -1);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}


static void sigint_keeps_answers(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char log[4200], out[4200], db[4300];
    snprintf(log, sizeof log, "%s/requests.jsonl", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(db, sizeof db, "%s/qeval.sqlite", out);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--request-log", log, "--latency-ms", "150",
                           "--default-answer", "$\\boxed{7}$", NULL};
    srv_start(&s, sargs);
    const char *args[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24",
                          "--apply-chat-template", "--num-concurrent", "2", "--output-path",
                          out, "--log-samples", NULL};
    pid_t pid = qeval_spawn(dir, args);
    struct timespec ts = {0, 5000000};
    /* the server logs a request before its latency: 6 logged + 200 ms
     * means at least 4 answers delivered, and most of the 30 still to come */
    for (int i = 0; i < 2000 && answered_lines(log) < 6; i++)
        nanosleep(&ts, NULL);
    struct timespec settle = {0, 200000000};
    nanosleep(&settle, NULL);
    double t0 = (double)time(NULL);
    kill(pid, SIGINT);
    assert_int_equal(qeval_wait(pid), 130);
    assert_true((double)time(NULL) - t0 < 5); /* stops at once, not after the rest */
    char *err = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err, "interrupted"));
    free(err);
    qe_store *st;
    qe_err e = {0, ""};
    assert_int_equal(qe_store_open(db, 1, &st, &e), 0);
    int64_t okc = 0;
    assert_int_equal(qe_store_counts(st, 1, "aime24", &okc, NULL, &e), 0);
    qe_store_close(st);
    assert_true(okc >= 3 && okc < 30);
    char md[4300];
    snprintf(md, sizeof md, "%s/m", out);
    assert_int_equal(count_prefix(md, "results_"), 0);
    srv_stop(&s);
    /* the rest on the next run, from a fast server */
    const char *s2[] = {"--model", "m", "--request-log", log, "--default-answer",
                        "$\\boxed{7}$", NULL};
    srv_start(&s, s2);
    const char *args2[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24",
                           "--apply-chat-template", "--num-concurrent", "2", "--output-path",
                           out, "--log-samples", NULL};
    assert_int_equal(qeval(dir, args2), 0);
    char *so = slurp_in(dir, "stdout.txt");
    char want[64];
    snprintf(want, sizeof want, "(%lld from the store, %lld sent", (long long)okc,
             (long long)(30 - okc));
    if (!strstr(so, want))
        fprintf(stderr, "want: %s\ngot: %s\n", want, so);
    assert_non_null(strstr(so, want));
    free(so);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

static void truncation_and_reasoning(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char script[4200], out[4200];
    snprintf(script, sizeof script, "%s/script.jsonl", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    const qe_task *t = qe_task_find("aime24");
    qe_err e = {0, ""};
    FILE *f = fopen(script, "w");
    /* doc 0: cut inside <think> by max_tokens; doc 1: reasoning parser, null
     * content, cut; doc 2: a closed think block then a right answer */
    const char *p0 = json_string_value(json_object_get(qe_task_doc(t, 0, &e), "Problem"));
    const char *p1 = json_string_value(json_object_get(qe_task_doc(t, 1, &e), "Problem"));
    const char *p2 = json_string_value(json_object_get(qe_task_doc(t, 2, &e), "Problem"));
    long long a2 = json_integer_value(json_object_get(qe_task_doc(t, 2, &e), "Answer"));
    char m[3][41];
    snprintf(m[0], 41, "%s", p0);
    snprintf(m[1], 41, "%s", p1);
    snprintf(m[2], 41, "%s", p2);
    char c2[128];
    snprintf(c2, sizeof c2, "<think>easy</think>The answer is $\\boxed{%lld}$", a2);
    json_t *r0 = json_pack("{s:s,s:s}", "match", m[0], "content",
                           "<think>Let me think about \\boxed{");
    json_t *r1 = json_pack("{s:s,s:n,s:s,s:s}", "match", m[1], "content", "reasoning_content",
                           "I am still thinking", "finish_reason", "length");
    json_t *r2 = json_pack("{s:s,s:s}", "match", m[2], "content", c2);
    json_t *rs[3] = {r0, r1, r2};
    for (int i = 0; i < 3; i++) {
        char *l = json_dumps(rs[i], JSON_COMPACT);
        fprintf(f, "%s\n", l);
        free(l);
        json_decref(rs[i]);
    }
    fclose(f);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--script", script, NULL};
    srv_start(&s, sargs);
    const char *args[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                          "3", "--apply-chat-template", "--output-path", out, "--log-samples",
                          NULL};
    assert_int_equal(qeval(dir, args), 0);
    char *so = slurp_in(dir, "stdout.txt");
    assert_non_null(strstr(so, "2 truncated"));
    free(so);
    char md[4300];
    snprintf(md, sizeof md, "%s/m", out);
    char *sp = find_one(md, "samples_aime24_");
    json_t *lines = load_jsonl(sp);
    json_t *l0 = json_array_get(lines, 0), *l1 = json_array_get(lines, 1),
           *l2 = json_array_get(lines, 2);
    assert_true(json_is_true(json_object_get(l0, "truncated")));
    assert_true(json_is_true(json_object_get(l1, "truncated")));
    assert_true(json_is_false(json_object_get(l2, "truncated")));
    assert_string_equal(json_string_value(json_object_get(l1, "reasoning")), "I am still thinking");
    assert_string_equal(json_string_value(json_array_get(json_object_get(l1, "filtered_resps"), 0)),
                        "");
    /* no think stripping: lm-eval's chat API scores the content as is; the
     * aime scorer takes the last \boxed{...} even after a think block */
    assert_int_equal(json_integer_value(json_object_get(l2, "exact_match")), 1);
    assert_int_equal(json_integer_value(json_object_get(l0, "exact_match")), 0);
    json_decref(lines);
    free(sp);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

static int64_t stored_ok(const char *out)
{
    char db[4400];
    snprintf(db, sizeof db, "%s/qeval.sqlite", out);
    qe_store *st;
    qe_err e = {0, ""};
    int64_t okc = -1;
    if (qe_store_open(db, 1, &st, &e) == 0) {
        qe_store_counts(st, 1, "aime24", &okc, NULL, &e);
        qe_store_close(st);
    }
    return okc;
}

static void server_dies_and_returns(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char out[4200], out2[4200];
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(out2, sizeof out2, "%s/out2", dir);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--default-answer", "$\\boxed{3}$", "--fault",
                           "die-after:5", NULL};
    srv_start(&s, sargs);
    const char *port = strrchr(s.url, ':') + 1;
    char portbuf[16];
    snprintf(portbuf, sizeof portbuf, "%s", port);
    const char *args[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                          "12", "--apply-chat-template", "--num-concurrent", "2",
                          "--max-attempts", "2", "--server-wait", "30", "--output-path", out,
                          "--log-samples", NULL};
    pid_t pid = qeval_spawn(dir, args);
    int st;
    assert_int_equal(waitpid(s.pid, &st, 0), s.pid); /* the crash */
    forget(s.pid);
    s.pid = 0;
    srv_stop(&s);
    struct timespec ts = {0, 500000000};
    nanosleep(&ts, NULL);
    const char *s2[] = {"--model", "m", "--default-answer", "$\\boxed{3}$", NULL};
    srv_start_port(&s, portbuf, s2); /* same address, back up */
    assert_int_equal(qeval_wait(pid), 0);
    assert_int_equal(stored_ok(out), 12);
    srv_stop(&s);

    /* a server that never comes back: bounded wait, cause named, resumable */
    const char *s3[] = {"--model", "m", "--default-answer", "$\\boxed{3}$", "--fault",
                        "die-after:3", NULL};
    srv_start(&s, s3);
    const char *args2[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                           "12", "--apply-chat-template", "--num-concurrent", "1",
                           "--max-attempts", "2", "--server-wait", "1", "--output-path", out2,
                           NULL};
    int rc = qeval(dir, args2);
    assert_int_equal(rc, 5);
    char *err = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err, "stopped answering"));
    assert_non_null(strstr(err, "resume"));
    free(err);
    assert_int_equal(stored_ok(out2), 3);
    waitpid(s.pid, NULL, 0);
    forget(s.pid);
    s.pid = 0;
    srv_stop(&s);
    srv_start(&s, s2);
    const char *args3[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                           "12", "--apply-chat-template", "--output-path", out2, NULL};
    assert_int_equal(qeval(dir, args3), 0);
    char *so = slurp_in(dir, "stdout.txt");
    assert_non_null(strstr(so, "(3 from the store, 9 sent"));
    free(so);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

static int seed_rows(const qe_store_response *r, void *ctx)
{
    int *bad = ctx;
    char want[32];
    snprintf(want, sizeof want, "\"seed\":%d", 1234 + r->repeat);
    if (!r->request_json || !strstr(r->request_json, want))
        (*bad)++;
    return 0;
}

static void repeats_extend_without_reasking(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char out[4200], log[4200];
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(log, sizeof log, "%s/requests.jsonl", dir);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--request-log", log, "--default-answer",
                           "$\\boxed{3}$", NULL};
    srv_start(&s, sargs);
    const char *a1[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                        "4", "--apply-chat-template", "--output-path", out, "--log-samples", NULL};
    assert_int_equal(qeval(dir, a1), 0);
    const char *a3[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                        "4", "--apply-chat-template", "--repeats", "3", "--output-path", out,
                        "--log-samples", NULL};
    assert_int_equal(qeval(dir, a3), 0);
    char *so = slurp_in(dir, "stdout.txt");
    assert_non_null(strstr(so, "12/12 answered (4 from the store, 8 sent"));
    free(so);
    char db[4300];
    snprintf(db, sizeof db, "%s/qeval.sqlite", out);
    qe_store *st;
    qe_err e = {0, ""};
    assert_int_equal(qe_store_open(db, 1, &st, &e), 0);
    int bad = 0;
    assert_int_equal(qe_store_foreach(st, 1, "aime24", QE_STORE_OK, seed_rows, &bad, &e), 0);
    qe_store_close(st);
    assert_int_equal(bad, 0);
    char md[4300];
    snprintf(md, sizeof md, "%s/m", out);
    assert_int_equal(count_prefix(md, "samples_aime24_"), 2);
    /* the newest samples file has all three answers per doc */
    DIR *d = opendir(md);
    struct dirent *de;
    int found = 0;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "samples_aime24_", 15))
            continue;
        char p[4600];
        snprintf(p, sizeof p, "%s/%s", md, de->d_name);
        json_t *lines = load_jsonl(p);
        json_t *l0 = json_array_get(lines, 0);
        if (json_object_get(l0, "qeval_repeats")) {
            found = 1;
            assert_int_equal(json_array_size(json_array_get(json_object_get(l0, "resps"), 0)), 3);
            assert_int_equal(json_array_size(json_object_get(l0, "filtered_resps")), 1);
            assert_int_equal(json_array_size(json_object_get(l0, "qeval_repeats")), 3);
        }
        json_decref(lines);
    }
    closedir(d);
    assert_true(found);
    /* each results file says how many answers its samples hold per doc */
    int seen[4] = {0};
    d = opendir(md);
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "results_", 8))
            continue;
        char p[4600];
        snprintf(p, sizeof p, "%s/%s", md, de->d_name);
        json_t *res = json_load_file(p, 0, NULL);
        assert_non_null(res);
        json_int_t k = json_integer_value(json_object_get(
            json_object_get(json_object_get(res, "configs"), "aime24"), "repeats"));
        assert_true(k == 1 || k == 3);
        seen[k]++;
        json_decref(res);
    }
    closedir(d);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[3], 1);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

/* A max_gen_toks that cannot fit in the server's max_model_len (aime24's
 * default 32768 against vLLM serving 4096) is refused before anything is
 * created or asked, with what to do instead of 30 identical HTTP 400s. */
static void max_model_len_refused_before_asking(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char out[4200], log[4200];
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(log, sizeof log, "%s/requests.jsonl", dir);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--max-model-len", "4096", "--request-log", log,
                           "--default-answer", "$\\boxed{1}$", NULL};
    srv_start(&s, sargs);
    const char *a1[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24",
                        "--apply-chat-template", "--output-path", out, NULL};
    assert_int_equal(qeval(dir, a1), 2);
    char *err = slurp_in(dir, "stderr.txt");
    assert_non_null(strstr(err, "aime24: max_gen_toks 32768 does not fit in the server's "
                                "max_model_len 4096 (GET /v1/models)"));
    free(err);
    assert_int_equal(access(out, F_OK), -1);
    char *all = slurp(log, NULL);
    assert_null(strstr(all ? all : "", "completions"));
    free(all);
    /* a max_gen_toks that fits runs */
    const char *a2[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit", "2",
                        "--apply-chat-template", "--gen-kwargs", "max_gen_toks=1024",
                        "--output-path", out, NULL};
    assert_int_equal(qeval(dir, a2), 0);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

static int count_completions(const char *log)
{
    char *all = slurp(log, NULL);
    int n = 0;
    for (char *p = all; p && (p = strstr(p, "\"path\":\"/v1/chat/completions\"")); p++)
        n++;
    free(all);
    return n;
}

static void two_endpoints_share_and_fail_over(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char script[4200], out[4200], la[4200], lb[4200], ref[4200];
    snprintf(script, sizeof script, "%s/script.jsonl", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(ref, sizeof ref, "%s/ref", dir);
    snprintf(la, sizeof la, "%s/a.jsonl", dir);
    snprintf(lb, sizeof lb, "%s/b.jsonl", dir);
    write_aime_script(script, NULL);
    struct srv a, b;
    const char *aa[] = {"--model", "m", "--script", script, "--request-log", la, "--latency-ms",
                        "20", "--fault", "die-after:6", NULL};
    const char *ba[] = {"--model", "m", "--script", script, "--request-log", lb, "--latency-ms",
                        "20", NULL};
    srv_start(&a, aa);
    srv_start(&b, ba);
    const char *args[] = {"--base-url", a.url, "--base-url", b.url, "--model", "m", "--tasks",
                          "aime24", "--apply-chat-template", "--num-concurrent", "2",
                          "--max-attempts", "2", "--server-wait", "1", "--output-path", out,
                          "--log-samples", NULL};
    assert_int_equal(qeval(dir, args), 0);
    assert_int_equal(stored_ok(out), 30);
    /* no terminal here: the loss is still said, once, naming the endpoint */
    char *err = slurp_in(dir, "stderr.txt");
    char want[300];
    snprintf(want, sizeof want, "endpoint %s was dropped: the server stopped answering", a.url);
    if (!strstr(err, want))
        fail_msg("stderr lacks '%s':\n%s", want, err);
    assert_non_null(strstr(err, "; the other endpoint asked its requests"));
    free(err);
    int na = count_completions(la), nb = count_completions(lb);
    assert_true(na >= 6);      /* a took work until it died */
    assert_true(nb >= 30 - na); /* b took the rest */
    assert_true(nb > 0);
    /* the same samples as a single-server run */
    const char *rargs[] = {"--base-url", b.url, "--model", "m", "--tasks", "aime24",
                           "--apply-chat-template", "--output-path", ref, "--log-samples", NULL};
    assert_int_equal(qeval(dir, rargs), 0);
    char d1[4300], d2[4300];
    snprintf(d1, sizeof d1, "%s/m", out);
    snprintf(d2, sizeof d2, "%s/m", ref);
    char *s1 = find_one(d1, "samples_aime24_"), *s2 = find_one(d2, "samples_aime24_");
    json_t *x = stable_samples(s1), *y = stable_samples(s2);
    for (size_t i = 0; i < 30; i++) {
        json_t *l = json_array_get(x, i), *m = json_array_get(y, i);
        json_object_del(l, "attempts");
        json_object_del(m, "attempts");
        assert_true(json_equal(l, m));
    }
    json_decref(x);
    json_decref(y);
    free(s1);
    free(s2);
    waitpid(a.pid, NULL, 0);
    forget(a.pid);
    a.pid = 0;
    srv_stop(&a);
    srv_stop(&b);
    rm_rf(dir);
    free(dir);
}

/* ---------- diagnostics: the three lessons of the reference experiment ---------- */

/* Writes one script rule {"match": first 40 bytes of m, "content": c,
 * ["finish_reason": fr]}; m NULL = no match (catch-all). */
static void script_rule(FILE *f, const char *m, const char *c, const char *fr)
{
    json_t *r = json_object();
    if (m) {
        char mm[41];
        snprintf(mm, sizeof mm, "%s", m);
        json_object_set_new(r, "match", json_string(mm));
    }
    json_object_set_new(r, "content", json_string(c));
    if (fr)
        json_object_set_new(r, "finish_reason", json_string(fr));
    char *l = json_dumps(r, JSON_COMPACT);
    fprintf(f, "%s\n", l);
    free(l);
    json_decref(r);
}

/* The 95% Wilson half-width in points, straight from the formula. */
static double wilson_half_points(double k, double n)
{
    const double z = 1.959963984540054;
    double p = k / n;
    return 100.0 * z / (1 + z * z / n) * sqrt(p * (1 - p) / n + z * z / (4 * n * n));
}

/* The Wilson interval's center, (k + z^2/2) / (n + z^2). */
static double wilson_center(double k, double n)
{
    const double z = 1.959963984540054;
    return (k + z * z / 2) / (n + z * z);
}

/* Smallest paired difference detectable at alpha 0.05, power 0.8, with a
 * discordance of 10% (raised to delta when smaller): Connor's formula
 * solved for delta by bisection, independently of src/stats.c. */
static double mdd_points(double n)
{
    const double za = 1.959963984540054, zb = 0.8416212335729143;
    double lo = 1e-9, hi = 1.0;
    for (int i = 0; i < 200; i++) {
        double d = (lo + hi) / 2, psi = d > 0.10 ? d : 0.10;
        double t = za * sqrt(psi) + zb * sqrt(psi - d * d);
        if (t * t / (d * d) <= n)
            hi = d;
        else
            lo = d;
    }
    return 100.0 * hi;
}

static void think_cutoff_explained(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char script[4200], out[4200];
    snprintf(script, sizeof script, "%s/script.jsonl", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    FILE *f = fopen(script, "w");
    /* every answer: still thinking when max_tokens ran out */
    script_rule(f, NULL, "<think>\nOkay, let me see. The problem asks", "length");
    fclose(f);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--script", script, NULL};
    srv_start(&s, sargs);
    const char *args[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                          "10", "--apply-chat-template", "--gen-kwargs",
                          "max_gen_toks=1024,temperature=0", "--output-path", out, NULL};
    assert_int_equal(qeval(dir, args), 0);
    char *so = slurp_in(dir, "stdout.txt");
    assert_non_null(strstr(so, "exact_match 0.0000"));
    assert_non_null(strstr(so, "aime24: 10/10 answers were cut off inside <think> at "
                               "max_gen_toks=1024: the model is thinking (Qwen3's chat template "
                               "enables thinking by default)"));
    assert_non_null(strstr(so, "Use --think off, or raise max_gen_toks (and the server's "
                               "max_model_len)."));
    /* sample size: n=10, k=0 */
    char want[300];
    snprintf(want, sizeof want,
             "aime24: n=10: the 95%% CI of this accuracy is \u00b1%.1f points (Wilson: 0.0 to "
             "%.1f)",
             wilson_half_points(0, 10), 2 * wilson_half_points(0, 10));
    if (!strstr(so, want))
        fprintf(stderr, "want: %s\ngot: %s\n", want, so);
    assert_non_null(strstr(so, want));
    /* no verifier disagreement when nothing was answered */
    assert_null(strstr(so, "right by the math verifier"));
    free(so);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

static void no_think_explanation_when_answers_finish(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char script[4200], out[4200];
    snprintf(script, sizeof script, "%s/script.jsonl", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    FILE *f = fopen(script, "w");
    script_rule(f, NULL, "<think>short</think>The answer is $\\boxed{1}$.", NULL);
    fclose(f);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--script", script, NULL};
    srv_start(&s, sargs);
    const char *args[] = {"--base-url", s.url, "--model", "m", "--tasks", "aime24", "--limit",
                          "4", "--apply-chat-template", "--output-path", out, NULL};
    assert_int_equal(qeval(dir, args), 0);
    char *so = slurp_in(dir, "stdout.txt");
    assert_null(strstr(so, "cut off inside <think>"));
    assert_non_null(strstr(so, "aime24: n=4: the 95% CI"));
    free(so);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

/* MATH-500, first 10 docs: docs 3, 5, 6 right in lm-eval's $-form; doc 7
 * answers $$\n\boxed{90^\circ}\n$$ (right, but lm-eval's hendrycks scorer
 * reads the $-slice and rejects it); the rest wrong. */
static void write_math500_script(const char *path)
{
    const qe_task *t = qe_task_find("hendrycks_math500");
    qe_err e = {0, ""};
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    const size_t right[] = {3, 5, 6};
    for (size_t i = 0; i < 3; i++) {
        json_t *doc = qe_task_doc(t, right[i], &e);
        char c[256];
        snprintf(c, sizeof c, "So the answer is $%s$.",
                 json_string_value(json_object_get(doc, "answer")));
        script_rule(f, json_string_value(json_object_get(doc, "problem")), c, NULL);
    }
    json_t *d7 = qe_task_doc(t, 7, &e);
    assert_string_equal(json_string_value(json_object_get(d7, "answer")), "90^\\circ");
    script_rule(f, json_string_value(json_object_get(d7, "problem")), "$$\n\\boxed{90^\\circ}\n$$",
                NULL);
    script_rule(f, NULL, "I do not know.", NULL);
    fclose(f);
}

static void scorer_disagreement_and_sample_size(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char script[4200], out[4200];
    snprintf(script, sizeof script, "%s/script.jsonl", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    write_math500_script(script);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--script", script, NULL};
    srv_start(&s, sargs);
    const char *args[] = {"--base-url", s.url, "--model", "m", "--tasks", "hendrycks_math500",
                          "--limit", "10", "--apply-chat-template", "--output-path", out,
                          "--log-samples", NULL};
    assert_int_equal(qeval(dir, args), 0);
    char *so = slurp_in(dir, "stdout.txt");
    assert_non_null(strstr(so, "exact_match 0.3000"));
    assert_null(strstr(so, "math-verify")); /* default scorer: lm-eval only */
    assert_non_null(strstr(so, "hendrycks_math500: 1 answer is right by the math verifier but "
                               "wrong by lm-eval's scorer (it reads the text between the first "
                               "and last `$` and ignores \\boxed); e.g. doc 7: "
                               "`$$\\boxed{90^\\circ}$$` vs gold `90^\\circ`. "
                               "`qeval rescore --scorer math FILE` lists them."));
    char want[400];
    snprintf(want, sizeof want,
             "hendrycks_math500: n=10: the 95%% CI of this accuracy is \u00b1%.1f points "
             "(Wilson: %.1f to %.1f); a "
             "paired comparison of two precisions on these problems can only detect differences "
             "of about %.0f points (qeval compare)",
             wilson_half_points(3, 10), 100 * wilson_center(3, 10) - wilson_half_points(3, 10),
             100 * wilson_center(3, 10) + wilson_half_points(3, 10), mdd_points(10));
    if (!strstr(so, want))
        fprintf(stderr, "want: %s\ngot: %s\n", want, so);
    assert_non_null(strstr(so, want));
    assert_null(strstr(so, "cut off inside <think>"));
    free(so);
    /* the lm-eval files stay lm-eval's: no math-verify filter */
    char md[4300];
    snprintf(md, sizeof md, "%s/m", out);
    char *sp = find_one(md, "samples_hendrycks_math500_");
    json_t *lines = load_jsonl(sp);
    assert_int_equal(json_array_size(lines), 10);
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l) assert_string_equal(
        json_string_value(json_object_get(l, "filter")), "none");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(lines, 7), "exact_match")),
                     0);
    json_decref(lines);
    free(sp);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

static void scorer_math_writes_math_verify(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    char script[4200], out[4200];
    snprintf(script, sizeof script, "%s/script.jsonl", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    write_math500_script(script);
    struct srv s;
    const char *sargs[] = {"--model", "m", "--script", script, NULL};
    srv_start(&s, sargs);
    const char *args[] = {"--base-url", s.url, "--model", "m", "--tasks", "hendrycks_math500",
                          "--limit", "10", "--apply-chat-template", "--output-path", out,
                          "--log-samples", "--scorer", "math", NULL};
    assert_int_equal(qeval(dir, args), 0);
    char *so = slurp_in(dir, "stdout.txt");
    assert_non_null(strstr(so, "exact_match 0.3000, math-verify 0.4000"));
    assert_non_null(strstr(so, "e.g. doc 7:"));
    free(so);
    char md[4300];
    snprintf(md, sizeof md, "%s/m", out);
    /* samples: the 10 lm-eval lines first, untouched, then 10 math-verify lines */
    char *sp = find_one(md, "samples_hendrycks_math500_");
    json_t *lines = load_jsonl(sp);
    assert_int_equal(json_array_size(lines), 20);
    int lm_right = 0, mv_right = 0;
    for (size_t i = 0; i < 20; i++) {
        json_t *l = json_array_get(lines, i);
        const char *filt = json_string_value(json_object_get(l, "filter"));
        assert_string_equal(filt, i < 10 ? "none" : "math-verify");
        assert_int_equal(json_integer_value(json_object_get(l, "doc_id")), (json_int_t)(i % 10));
        int v = (int)json_integer_value(json_object_get(l, "exact_match"));
        if (i < 10)
            lm_right += v;
        else
            mv_right += v;
        if (i >= 10)
            assert_non_null(json_object_get(l, "math_verify"));
    }
    assert_int_equal(lm_right, 3);
    assert_int_equal(mv_right, 4);
    json_t *l17 = json_array_get(lines, 17);
    assert_int_equal(json_integer_value(json_object_get(l17, "exact_match")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(l17, "math_verify"),
                                                          "gold")),
                        "90^\\circ");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(lines, 7), "exact_match")),
                     0);
    json_decref(lines);
    free(sp);
    /* results: both accuracies, lm-eval's under "none" as before */
    char *rp = find_one(md, "results_");
    json_t *res = json_load_file(rp, 0, NULL);
    assert_non_null(res);
    json_t *r = json_object_get(json_object_get(res, "results"), "hendrycks_math500");
    assert_true(fabs(json_number_value(json_object_get(r, "exact_match,none")) - 0.3) < 1e-12);
    assert_true(fabs(json_number_value(json_object_get(r, "exact_match,math-verify")) - 0.4) <
                1e-12);
    json_decref(res);
    free(rp);
    srv_stop(&s);
    rm_rf(dir);
    free(dir);
}

/* The one-line answer shown in "e.g. doc N: `...`" (qe_run_example_text):
 * golden cases in tests/cases/example_text.jsonl. */
static void example_text_case(json_t *c, int line)
{
    const char *in = json_string_value(json_object_get(c, "in"));
    const char *want = json_string_value(json_object_get(c, "want"));
    if (!in || !want)
        fail_msg("example_text.jsonl:%d: needs \"in\" and \"want\"", line);
    char *got = qe_run_example_text(in);
    assert_non_null(got);
    if (strcmp(got, want))
        fail_msg("example_text.jsonl:%d (%s): got [%s] want [%s]", line,
                 json_string_value(json_object_get(c, "why")), got, want);
    free(got);
}

static void example_text_golden(void **state)
{
    (void)state;
    assert_true(each_case("tests/cases/example_text.jsonl", example_text_case) >= 10);
    char *none = qe_run_example_text(NULL);
    assert_non_null(none);
    assert_string_equal(none, "");
    free(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(example_text_golden),
        cmocka_unit_test(full_run_layout_hashes_accuracy),
        cmocka_unit_test(completions_mode_and_think),
        cmocka_unit_test(kill9_resume),
        cmocka_unit_test(faults_retry_and_permanent_failure),
        cmocka_unit_test(api_key_never_written),
        cmocka_unit_test(new_fingerprint_new_run),
        cmocka_unit_test(unwritable_output),
        cmocka_unit_test(sigint_keeps_answers),
        cmocka_unit_test(truncation_and_reasoning),
        cmocka_unit_test(server_dies_and_returns),
        cmocka_unit_test(repeats_extend_without_reasking),
        cmocka_unit_test(max_model_len_refused_before_asking),
        cmocka_unit_test(two_endpoints_share_and_fail_over),
        cmocka_unit_test(think_cutoff_explained),
        cmocka_unit_test(no_think_explanation_when_answers_finish),
        cmocka_unit_test(scorer_disagreement_and_sample_size),
        cmocka_unit_test(scorer_math_writes_math_verify),
    };
    if (getenv("QE_TEST_FILTER")) /* e.g. QE_TEST_FILTER=kill9_resume */
        cmocka_set_test_filter(getenv("QE_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, kill_leftovers);
}
