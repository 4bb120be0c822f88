/* test_faults: the fault matrix of issue 8 for `qeval run`, end to end
 * against tests/fake_server: kill -9 at random moments, disk full, a corrupt
 * store. (Server-side faults - 500, 429, stalls, resets, truncated JSON, a
 * server that dies - are in test_client, test_run and test_sweep.)
 *
 * kill -9: DESIGN.md §7 promises that after kill -9 at any moment, rerunning
 * the same command asks nothing answered again, loses and duplicates
 * nothing, and ends with results identical to an uninterrupted run. Checked
 * at QE_KILL_POINTS (>= 20) random moments, each in its own trial: a fresh
 * output directory, SIGKILL after a random delay drawn from [0, 1.2 x the
 * uninterrupted run's duration], then the same command to completion, then
 * a comparison with the uninterrupted reference run: same per-sample lines
 * (latency aside), same results, and no document the store held after the
 * kill asked again by the resumed run. Kill points are counted only
 * when the process was still running. The PRNG seed is printed;
 * QE_KILL_SEED=N replays a run.
 *
 * Disk full: the run gets RLIMIT_FSIZE (a file size limit, inherited over
 * exec) so the store cannot grow; it must stop with a message naming the
 * store, keep what it stored, and the same command without the limit must
 * finish with results identical to the reference.
 *
 * Corrupt store: a file that is not a qeval store where the store goes must
 * be refused (exit 6) and left byte-identical, never recreated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fake_server_util.h"
#include "file_util.h"
#include "store.h"
#include "task.h"

#define QE_KILL_POINTS 20
#define MAX_TRIALS 60

static const char *build_dir(void)
{
    const char *b = getenv("QEVAL_BUILD");
    return b && *b ? b : "build";
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- processes ---- */

/* The server of the running test, stopped by the teardown when the test
 * fails before server_stop (test-only state). */
static struct fs live_server;

static int stop_live_server(void **state)
{
    (void)state;
    fs_stop(&live_server);
    return 0;
}

/* The fake server of these tests: aime24 answers from script, every
 * request logged, 15 ms per answer (so kills land mid-run). Returns its
 * base URL (valid until server_stop). */
static const char *server_start(const char *script, const char *log)
{
    const char *args[] = {"--model", "m", "--script", script, "--request-log", log,
                          "--latency-ms", "15", "--threads", "8", NULL};
    if (fs_start(&live_server, args) != 0)
        fail_msg("fake_server did not start");
    return live_server.base_url;
}

static void server_stop(void)
{
    fs_stop(&live_server);
}

/* Starts `qeval run` writing into out; its stdout/stderr are appended to
 * logdir/qeval.log. fsize > 0: the child's RLIMIT_FSIZE (bytes). */
static pid_t qeval_run_spawn_limited(const char *url, const char *out, const char *logdir, long fsize)
{
    char exe[4096], logp[4200];
    snprintf(exe, sizeof exe, "%s/qeval", build_dir());
    snprintf(logp, sizeof logp, "%s/qeval.log", logdir);
    const char *argv[] = {exe, "run", "--base-url", url, "--model", "m", "--tasks", "aime24",
                          "--apply-chat-template", "--num-concurrent", "4", "--output-path", out,
                          "--log-samples", NULL};
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (fsize > 0) {
            struct rlimit rl = {(rlim_t)fsize, (rlim_t)fsize};
            signal(SIGXFSZ, SIG_IGN); /* write() fails with EFBIG instead */
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
                _exit(126);
        }
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static pid_t qeval_run_spawn(const char *url, const char *out, const char *logdir)
{
    return qeval_run_spawn_limited(url, out, logdir, 0);
}

static int wait_exit(pid_t pid)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- files ---- */

/* A samples file, latency (which varies) removed. */
static json_t *load_samples(const char *p)
{
    json_t *a = load_jsonl(p);
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o)
        json_object_del(o, "latency_ms");
    return a;
}

/* Samples of a finished run: the samples file with the date id of its single
 * results file. A samples file left by a killed run whose results file was
 * never written is counted in *orphans and must hold exactly the same
 * samples (nothing different may be left behind); a temporary file of the
 * atomic writer (".<name>.qeval-tmp.<pid>.*", or any ".tmp.") is counted in
 * *temps. */
static json_t *stable_samples_ex(const char *out, int *orphans, int *temps)
{
    char d[4200];
    snprintf(d, sizeof d, "%s/m", out);
    char *r = find_one(d, "results_");
    if (!r)
        fail_msg("%s: no single results_ file", d);
    const char *date = strrchr(r, '_') + 1; /* results_<date>.json */
    char p[4400];
    snprintf(p, sizeof p, "%s/samples_aime24_%.*s.jsonl", d, (int)(strlen(date) - 5), date);
    free(r);
    json_t *a = load_samples(p);
    DIR *dd = opendir(d);
    assert_non_null(dd);
    struct dirent *de;
    while ((de = readdir(dd)) != NULL) {
        char q[4600];
        snprintf(q, sizeof q, "%s/%.255s", d, de->d_name);
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (strstr(de->d_name, ".qeval-tmp.") || strstr(de->d_name, ".tmp.")) {
            (*temps)++;
            continue;
        }
        if (!strcmp(q, p) || !strncmp(de->d_name, "results_", 8))
            continue;
        (*orphans)++;
        json_t *o = load_samples(q);
        if (!json_equal(o, a))
            fail_msg("%s: a leftover samples file that differs from the final one", q);
        json_decref(o);
    }
    closedir(dd);
    return a;
}

static json_t *stable_samples(const char *out)
{
    int orphans = 0, temps = 0;
    json_t *a = stable_samples_ex(out, &orphans, &temps);
    assert_int_equal(orphans, 0);
    assert_int_equal(temps, 0);
    return a;
}

/* "results" and "n-samples" of the single results file of a finished run. */
static json_t *stable_results(const char *out)
{
    char d[4200];
    snprintf(d, sizeof d, "%s/m", out);
    char *p = find_one(d, "results_");
    if (!p)
        fail_msg("%s: no single results_ file", d);
    json_error_t je;
    json_t *r = json_load_file(p, 0, &je);
    if (!r)
        fail_msg("%s: %s", p, je.text);
    json_t *o = json_pack("{s:O, s:O}", "results", json_object_get(r, "results"), "n-samples",
                          json_object_get(r, "n-samples"));
    assert_non_null(o);
    json_decref(r);
    free(p);
    return o;
}

/* Completion requests in the server's log from byte offset `from`. */
static size_t completions_since(const char *log, size_t from, size_t *end)
{
    size_t n = 0, len = 0;
    char *s = slurp(log, &len);
    if (!s)
        return 0;
    for (char *p = s + (from < len ? from : len); (p = strstr(p, "\"/v1/chat/completions\"")) != NULL; p++)
        n++;
    free(s);
    if (end)
        *end = len;
    return n;
}

/* Script: doc i answered right when i % 3 == 0, wrong otherwise (matched by
 * a prefix of its problem text). Returns the number of docs. */
static size_t write_script(const char *path)
{
    const qe_task *t = qe_task_find("aime24");
    assert_non_null(t);
    size_t n = 0;
    qe_err e = {0};
    assert_int_equal(qe_task_size(t, &n, &e), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        const json_t *doc = qe_task_doc(t, i, &e); /* borrowed */
        assert_non_null(doc);
        const char *prob = json_string_value(json_object_get(doc, "Problem"));
        long long ans = json_integer_value(json_object_get(doc, "Answer"));
        size_t k = 0;
        while (prob[k] && k < 50)
            k++;
        while (k > 0 && ((unsigned char)prob[k] & 0xC0) == 0x80)
            k--;
        char match[64], content[128];
        memcpy(match, prob, k);
        match[k] = '\0';
        snprintf(content, sizeof content, "So the answer is $\\boxed{%lld}$.", i % 3 == 0 ? ans : ans + 1);
        json_t *rule = json_pack("{s:s, s:s}", "match", match, "content", content);
        char *line = json_dumps(rule, JSON_COMPACT);
        fprintf(f, "%s\n", line);
        free(line);
        json_decref(rule);
    }
    fclose(f);
    return n;
}

/* Every test's start: a fresh directory under /tmp holding the fake
 * server's script and request log, the script written (ndocs documents)
 * and the server started on it. */
struct world {
    char tmpl[40];
    const char *dir;
    char script[4200], log[4200];
    size_t ndocs;
    const char *url;
};

static void world_start(struct world *w)
{
    snprintf(w->tmpl, sizeof w->tmpl, "/tmp/qe_faults_XXXXXX");
    w->dir = mkdtemp(w->tmpl);
    assert_non_null(w->dir);
    snprintf(w->script, sizeof w->script, "%s/script.jsonl", w->dir);
    snprintf(w->log, sizeof w->log, "%s/requests.jsonl", w->dir);
    w->ndocs = write_script(w->script);
    assert_true(w->ndocs > 0);
    w->url = server_start(w->script, w->log);
}

/* Which aime24 docs the store in out holds answered (done[i] = 1). */
static void stored_docs(const char *out, int done[64])
{
    char p[4300];
    snprintf(p, sizeof p, "%s/qeval.sqlite", out);
    memset(done, 0, 64 * sizeof *done);
    qe_store *st = NULL;
    qe_err e = {0};
    if (qe_store_open(p, 1, &st, &e) != 0)
        return; /* killed before the store existed */
    qe_store_run *runs = NULL;
    size_t nr = 0;
    assert_int_equal(qe_store_runs_list(st, &runs, &nr, &e), 0);
    for (size_t i = 0; i < nr; i++) {
        qe_store_keys k = {0};
        if (qe_store_done_keys(st, runs[i].id, "aime24", &k, &e) == 0) {
            for (size_t j = 0; j < k.n; j++)
                if (k.keys[j].doc_id >= 0 && k.keys[j].doc_id < 64)
                    done[k.keys[j].doc_id] = 1;
            qe_store_keys_free(&k);
        }
    }
    qe_store_runs_free(runs, nr);
    qe_store_close(st);
}

/* Fails if a completion request logged after byte `from` asked a doc whose
 * answer the store already held (done[]); returns the number of requests. */
static size_t check_no_stored_doc_asked(const char *log, size_t from, size_t *end, const int done[64],
                                        const char *what)
{
    size_t len = 0, n = 0;
    char *all = slurp(log, &len);
    assert_non_null(all);
    const qe_task *t = qe_task_find("aime24");
    size_t ndocs = 0;
    qe_err e = {0};
    assert_int_equal(qe_task_size(t, &ndocs, &e), 0);
    char *save = NULL;
    for (char *line = strtok_r(all + (from < len ? from : len), "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        const char *path = json_string_value(json_object_get(o, "path"));
        const char *prompt = json_string_value(json_object_get(o, "prompt"));
        if (path && prompt && !strcmp(path, "/v1/chat/completions")) {
            n++;
            for (size_t d = 0; d < ndocs && d < 64; d++) {
                const char *prob = json_string_value(json_object_get(qe_task_doc(t, d, &e), "Problem"));
                if (done[d] && prob && strstr(prompt, prob))
                    fail_msg("%s: doc %zu was stored but asked again", what, d);
            }
        }
        json_decref(o);
    }
    free(all);
    if (end)
        *end = len;
    return n;
}

static void kill9_at_random_points(void **state)
{
    (void)state;
    struct world w;
    world_start(&w);
    const char *dir = w.dir, *log = w.log, *url = w.url;
    size_t ndocs = w.ndocs;
    char ref[4200];
    snprintf(ref, sizeof ref, "%s/ref", dir);

    /* the uninterrupted reference run, timed */
    size_t mark = 0;
    double t0 = now_ms();
    assert_int_equal(wait_exit(qeval_run_spawn(url, ref, dir)), 0);
    double t_ref = now_ms() - t0;
    assert_int_equal(completions_since(log, 0, &mark), ndocs);
    json_t *want_samples = stable_samples(ref), *want_results = stable_results(ref);
    assert_int_equal(json_array_size(want_samples), ndocs);

    const char *env = getenv("QE_KILL_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : 20261125u;
    uint64_t rng = seed;
    print_message("kill -9 at random points: seed %llu (QE_KILL_SEED), reference run %.0f ms\n",
                  (unsigned long long)seed, t_ref);

    int kills = 0, trials = 0;
    double first = 1e300, last = 0;
    while (kills < QE_KILL_POINTS) {
        if (trials >= MAX_TRIALS)
            fail_msg("only %d of %d kills landed mid-run in %d trials", kills, QE_KILL_POINTS, trials);
        trials++;
        char out[4200];
        snprintf(out, sizeof out, "%s/out%d", dir, trials);
        double delay = (double)(rng_next(&rng) % 1000000) / 1e6 * 1.2 * t_ref;
        /* killed runs alternate who commits (the loop, the committer
         * thread); the resumed run below decides by itself (auto) */
        setenv("QEVAL_COMMITTER", trials % 2 ? "loop" : "thread", 1);
        pid_t pid = qeval_run_spawn(url, out, dir);
        unsetenv("QEVAL_COMMITTER");
        struct timespec ts = {(time_t)(delay / 1000), (long)((delay - 1000 * (long)(delay / 1000)) * 1e6)};
        nanosleep(&ts, NULL);
        int killed = 0;
        if (waitpid(pid, NULL, WNOHANG) == 0) {
            kill(pid, SIGKILL);
            killed = 1;
        }
        int rc = killed ? wait_exit(pid) : 0;
        if (killed && rc != 128 + SIGKILL)
            killed = 0; /* it had just exited on its own */
        if (killed) {
            kills++;
            first = delay < first ? delay : first;
            last = delay > last ? delay : last;
        }
        /* what the killed run had stored: none of it may be asked again */
        int done[64];
        stored_docs(out, done);
        size_t before = 0;
        free(slurp(log, &before));
        /* besides whatever the kill left: a writer temp file of a dead
         * process (must go) and one of a live process (must stay) */
        char mdir[4300], dead[4400], live[4400];
        snprintf(mdir, sizeof mdir, "%s/m", out);
        mkdir(out, 0777);
        mkdir(mdir, 0777);
        pid_t gone = fork();
        if (gone == 0)
            _exit(0);
        assert_true(gone > 0);
        waitpid(gone, NULL, 0);
        snprintf(dead, sizeof dead, "%s/.results_x.json.qeval-tmp.%ld.AbCdEf", mdir, (long)gone);
        snprintf(live, sizeof live, "%s/.results_x.json.qeval-tmp.%ld.AbCdEf", mdir, (long)getpid());
        FILE *pf = fopen(dead, "w");
        assert_non_null(pf);
        fclose(pf);
        assert_non_null(pf = fopen(live, "w"));
        fclose(pf);
        /* resume: the same command, to completion */
        assert_int_equal(wait_exit(qeval_run_spawn(url, out, dir)), 0);
        char what[96];
        snprintf(what, sizeof what, "trial %d (kill at %.0f ms)", trials, delay);
        check_no_stored_doc_asked(log, before, &mark, done, what);
        if (access(dead, F_OK) == 0)
            fail_msg("%s: a dead writer's temp file survived the resumed run", what);
        if (access(live, F_OK) != 0)
            fail_msg("%s: a live writer's temp file was removed", what);
        unlink(live);
        int left = 0, temps = 0;
        json_t *got = stable_samples_ex(out, &left, &temps), *res = stable_results(out);
        if (temps)
            fail_msg("%s: %d writer temp file(s) left after the resumed run", what, temps);
        if (left)
            fail_msg("%s: %d samples file(s) of the killed run beside the resumed run's", what, left);
        assert_int_equal(json_array_size(got), ndocs);
        for (size_t i = 0; i < ndocs; i++) {
            if (!json_equal(json_array_get(got, i), json_array_get(want_samples, i))) {
                char *x = json_dumps(json_array_get(got, i), JSON_COMPACT);
                fail_msg("trial %d (kill at %.0f ms): sample %zu differs from the uninterrupted run: %.400s",
                         trials, delay, i, x);
            }
        }
        if (!json_equal(res, want_results))
            fail_msg("trial %d (kill at %.0f ms): results differ from the uninterrupted run", trials, delay);
        json_decref(got);
        json_decref(res);
        rm_rf(out);
    }
    print_message("%d kills mid-run in %d trials (delays %.0f..%.0f ms), every resumed run identical "
                  "to the uninterrupted one, one results and one samples file, no temp file\n",
                  kills, trials, first, last);
    json_decref(want_samples);
    json_decref(want_results);
    server_stop();
    rm_rf(dir);
}

/* Byte offset in logdir/qeval.log, to read what the next run prints. */
static size_t log_mark(const char *logdir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/qeval.log", logdir);
    size_t n = 0;
    free(slurp(p, &n));
    return n;
}

/* What qeval printed since mark (malloc'd). */
static char *log_since(const char *logdir, size_t mark)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/qeval.log", logdir);
    size_t n = 0;
    char *s = slurp(p, &n);
    assert_non_null(s);
    char *r = strdup(s + (mark < n ? mark : n));
    free(s);
    return r;
}

static void disk_full_then_resume(void **state)
{
    (void)state;
    struct world w;
    world_start(&w);
    const char *dir = w.dir, *url = w.url;
    char ref[4200];
    snprintf(ref, sizeof ref, "%s/ref", dir);
    assert_int_equal(wait_exit(qeval_run_spawn(url, ref, dir)), 0);
    json_t *want_samples = stable_samples(ref), *want_results = stable_results(ref);

    /* the disk fills under each committer: the loop's own commits, the
     * committer thread's (QEVAL_COMMITTER) */
    static const char *const modes[] = {"loop", "thread"};
    for (size_t k = 0; k < 2; k++) {
        char out[4300], db[4400];
        snprintf(out, sizeof out, "%s/out-%s", dir, modes[k]);
        snprintf(db, sizeof db, "%s/qeval.sqlite", out);
        /* 64 KB: the store's first pages fit, the answers do not */
        size_t mark = log_mark(dir);
        setenv("QEVAL_COMMITTER", modes[k], 1);
        int rc = wait_exit(qeval_run_spawn_limited(url, out, dir, 64 * 1024));
        unsetenv("QEVAL_COMMITTER");
        char *msg = log_since(dir, mark);
        if (rc != 4 || !strstr(msg, "disk full while storing") || !strstr(msg, db))
            fail_msg("disk full (%s): exit %d, output: %.600s", modes[k], rc, msg);
        assert_non_null(strstr(msg, "answers stored before it are intact"));
        free(msg);
        char d[4400];
        snprintf(d, sizeof d, "%s/m", out);
        char *none = find_one(d, "results_");
        assert_null(none); /* an incomplete task writes no results file */

        /* space again: the same command finishes, identical to the reference */
        mark = log_mark(dir);
        assert_int_equal(wait_exit(qeval_run_spawn(url, out, dir)), 0);
        msg = log_since(dir, mark);
        assert_non_null(strstr(msg, "from the store"));
        free(msg);
        json_t *got = stable_samples(out), *res = stable_results(out);
        if (!json_equal(got, want_samples) || !json_equal(res, want_results))
            fail_msg("disk full (%s): the resumed run's files differ from the reference",
                     modes[k]);
        json_decref(got);
        json_decref(res);
    }
    json_decref(want_samples);
    json_decref(want_results);
    server_stop();
    rm_rf(dir);
}

/* A QEVAL_COMMITTER that is none of auto, loop, thread: a usage error
 * before anything is opened or asked. */
static void committer_choice_refused(void **state)
{
    (void)state;
    struct world w;
    world_start(&w);
    const char *dir = w.dir, *log = w.log, *url = w.url;
    char out[4200];
    snprintf(out, sizeof out, "%s/out", dir);
    size_t mark = log_mark(dir);
    setenv("QEVAL_COMMITTER", "threads", 1);
    int rc = wait_exit(qeval_run_spawn(url, out, dir));
    unsetenv("QEVAL_COMMITTER");
    char *msg = log_since(dir, mark);
    if (rc != 2 || !strstr(msg, "QEVAL_COMMITTER must be auto, loop or thread (it is \"threads\")"))
        fail_msg("bad QEVAL_COMMITTER: exit %d, output: %.600s", rc, msg);
    free(msg);
    assert_int_equal(access(out, F_OK), -1); /* nothing created */
    size_t n = 0;
    free(slurp(log, &n));
    assert_int_equal(n, 0); /* nothing asked */
    server_stop();
    rm_rf(dir);
}

/* Writes n bytes to path. */
static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void corrupt_store_refused(void **state)
{
    (void)state;
    struct world w;
    world_start(&w);
    const char *dir = w.dir, *log = w.log, *url = w.url;
    char ref[4200], out[4200], db[4300], refdb[4300];
    snprintf(ref, sizeof ref, "%s/ref", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(db, sizeof db, "%s/qeval.sqlite", out);
    snprintf(refdb, sizeof refdb, "%s/qeval.sqlite", ref);
    assert_int_equal(wait_exit(qeval_run_spawn(url, ref, dir)), 0);
    size_t nref = 0;
    char *img = slurp(refdb, &nref);
    assert_non_null(img);
    assert_true(nref > 8192);

    /* not SQLite at all; a real store cut in half; a store with garbage
     * over every page but the first */
    static const char json[] = "{\"results\": {\"aime24\": {\"exact_match,none\": 0.1}}}\n";
    for (int kind = 0; kind < 3; kind++) {
        assert_int_equal(mkdir(out, 0755), 0);
        size_t n = 0;
        if (kind == 0) {
            write_bytes(db, json, sizeof json - 1);
        } else if (kind == 1) {
            write_bytes(db, img, nref / 2);
        } else {
            char *bad = malloc(nref);
            assert_non_null(bad);
            memcpy(bad, img, nref);
            uint64_t seed = 7;
            for (size_t i = 4096; i < nref; i++)
                bad[i] = (char)(rng_next(&seed) & 0xff);
            write_bytes(db, bad, nref);
            free(bad);
        }
        char *before = slurp(db, &n);
        size_t mark = log_mark(dir), completions0 = completions_since(log, 0, NULL);
        int rc = wait_exit(qeval_run_spawn(url, out, dir));
        char *msg = log_since(dir, mark);
        if (rc != 6 || !strstr(msg, db) || !strstr(msg, "left untouched"))
            fail_msg("corrupt store kind %d: exit %d, output: %.600s", kind, rc, msg);
        size_t n2 = 0;
        char *after = slurp(db, &n2);
        assert_int_equal(n, n2);
        assert_memory_equal(before, after, n);
        assert_int_equal(completions_since(log, 0, NULL), completions0); /* nothing asked */
        free(before);
        free(after);
        free(msg);
        rm_rf(out);
    }
    free(img);
    server_stop();
    rm_rf(dir);
}

/* The names of the regular files in dir, sorted, one per line (malloc'd). */
static char *dir_listing(const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    assert_true(n >= 0);
    qe_buf b = QE_BUF_INIT;
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.')
            assert_int_equal(qe_buf_printf(&b, "%s\n", names[i]->d_name), 0);
        free(names[i]);
    }
    free(names);
    char *s = qe_buf_detach(&b);
    return s ? s : strdup("");
}

/* The window a random kill rarely hits: the run has committed its outputs'
 * record and is killed before (or between) writing the files. Simulated by
 * removing the files of a finished run: the same command writes them again
 * at the same paths with the same bytes, and no second results file. */
static void outputs_completed_after_kill_window(void **state)
{
    (void)state;
    struct world w;
    world_start(&w);
    const char *dir = w.dir, *log = w.log, *url = w.url;
    size_t ndocs = w.ndocs;
    char out[4200], mdir[4300];
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(mdir, sizeof mdir, "%s/m", out);
    assert_int_equal(wait_exit(qeval_run_spawn(url, out, dir)), 0);
    assert_int_equal(completions_since(log, 0, NULL), ndocs);
    char *listing = dir_listing(mdir);
    char *rp = find_one(mdir, "results_"), *sp = find_one(mdir, "samples_");
    assert_non_null(rp);
    assert_non_null(sp);
    size_t nr = 0, ns = 0;
    char *rbytes = slurp(rp, &nr), *sbytes = slurp(sp, &ns);
    assert_non_null(rbytes);
    assert_non_null(sbytes);
    /* 0: killed before any file; 1: after the samples file; 2: only the
     * samples file lost (a user removed it) */
    for (int kind = 0; kind < 3; kind++) {
        if (kind != 1)
            assert_int_equal(unlink(sp), 0);
        if (kind != 2)
            assert_int_equal(unlink(rp), 0);
        sleep(kind == 0); /* a new run would get a new date id */
        assert_int_equal(wait_exit(qeval_run_spawn(url, out, dir)), 0);
        char *l2 = dir_listing(mdir);
        if (strcmp(l2, listing))
            fail_msg("kind %d: files after the rerun:\n%s\nwant:\n%s", kind, l2, listing);
        free(l2);
        size_t n2 = 0;
        char *r2 = slurp(rp, &n2);
        assert_non_null(r2);
        if (n2 != nr || memcmp(r2, rbytes, nr))
            fail_msg("kind %d: the rewritten results file differs:\n%.800s", kind, r2);
        free(r2);
        char *s2 = slurp(sp, &n2);
        assert_non_null(s2);
        assert_int_equal(n2, ns);
        assert_memory_equal(s2, sbytes, ns);
        free(s2);
    }
    assert_int_equal(completions_since(log, 0, NULL), ndocs); /* nothing asked again */
    free(rbytes);
    free(sbytes);
    free(rp);
    free(sp);
    free(listing);
    server_stop();
    rm_rf(dir);
}

int main(void)
{
    if (getenv("QE_TEST_FILTER")) /* e.g. QE_TEST_FILTER=kill9_at_random_points */
        cmocka_set_test_filter(getenv("QE_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(kill9_at_random_points, stop_live_server),
        cmocka_unit_test_teardown(disk_full_then_resume, stop_live_server),
        cmocka_unit_test_teardown(committer_choice_refused, stop_live_server),
        cmocka_unit_test_teardown(corrupt_store_refused, stop_live_server),
        cmocka_unit_test_teardown(outputs_completed_after_kill_window, stop_live_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
