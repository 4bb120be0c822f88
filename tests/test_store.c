/* Tests for src/store.c: runs and resume, the ok-is-final upsert, refusal of
 * foreign/corrupt/newer files without touching them, the writer lock, a
 * read-only directory, a real kill -9 loop and a real disk-full (file size
 * limit) in forked children. Everything lives in mkdtemp dirs under /tmp.
 * The database is cross-checked with raw SQLite queries, not only through the
 * API under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "file_util.h"
#include "store.h"

/* ---- helpers ---------------------------------------------------------- */

typedef struct {
    char dir[64];
    char db[128];
} tmp_store;

static void tmp_make(tmp_store *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/qe_store_XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->db, sizeof t->db, "%s/qeval.sqlite", t->dir);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static void tmp_remove(tmp_store *t)
{
    chmod(t->dir, 0700);
    nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static qe_store *open_rw(const char *path)
{
    qe_store *s = NULL;
    qe_err e = {0};
    int rc = qe_store_open(path, 0, &s, &e);
    if (rc)
        fail_msg("open %s: %s", path, e.msg);
    return s;
}

static void put(qe_store *s, int64_t run, const char *task, int64_t doc, int rep, int ok,
                const char *content, int expect_stored)
{
    qe_store_response r = {0};
    r.task = task;
    r.doc_id = doc;
    r.repeat = rep;
    r.ok = ok;
    r.prompt = "Problem: 1+1\nAnswer:";
    r.request_json = "{\"max_tokens\":16}";
    r.content = content;
    r.finish_reason = ok ? "stop" : NULL;
    r.prompt_tokens = ok ? 12 : -1;
    r.completion_tokens = ok ? 7 : -1;
    r.latency_ms = ok ? 12.5 : -1;
    r.attempts = ok ? 1 : 3;
    r.error = ok ? NULL : "HTTP 500: engine dead";
    r.server_model = "m";
    int stored = -1;
    qe_err e = {0};
    int rc = qe_store_put_response(s, run, &r, &stored, &e);
    if (rc)
        fail_msg("put %s/%lld/%d: %s", task, (long long)doc, rep, e.msg);
    assert_int_equal(stored, expect_stored);
}

static long long raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_text(const char *path, const char *sql, char *out, size_t cap)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(out, cap, "%s", t ? (const char *)t : "(null)");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* Deterministic PRNG (seeded) so a failing kill schedule can be replayed. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One record from a forked child; <= PIPE_BUF so writes are atomic and a
 * SIGKILL can never tear one. */
enum { REC_COMMITTED = 1, REC_ERROR = 2, REC_NOTE = 3 };
typedef struct {
    int kind;
    int code;
    long long id;
    char msg[1100];
} child_rec;

static void child_send(int fd, int kind, int code, long long id, const char *msg)
{
    child_rec r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.code = code;
    r.id = id;
    if (msg)
        snprintf(r.msg, sizeof r.msg, "%s", msg);
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(90);
}

/* ---- runs, resume, upsert ---------------------------------------------- */

typedef struct {
    int n;
    char seen[16][64];
    int ok[16];
    char err[16][64];
} collect;

static int collect_cb(const qe_store_response *r, void *ctx)
{
    collect *c = ctx;
    if (c->n >= 16)
        return 1;
    snprintf(c->seen[c->n], sizeof c->seen[0], "%s/%lld/%d/%s", r->task, (long long)r->doc_id,
             r->repeat, r->content ? r->content : "(null)");
    snprintf(c->err[c->n], sizeof c->err[0], "%s", r->error ? r->error : "");
    c->ok[c->n] = r->ok;
    c->n++;
    return 0;
}

static int check_fields_cb(const qe_store_response *r, void *ctx)
{
    int *checked = ctx;
    assert_string_equal(r->prompt, "Problem: 1+1\nAnswer:");
    assert_string_equal(r->request_json, "{\"max_tokens\":16}");
    assert_null(r->reasoning);
    assert_string_equal(r->server_model, "m");
    assert_non_null(r->created_at);
    assert_int_equal(strlen(r->created_at), 24); /* 2026-11-25T19:00:00.000Z */
    if (r->ok) {
        assert_string_equal(r->finish_reason, "stop");
        assert_int_equal(r->prompt_tokens, 12);
        assert_int_equal(r->completion_tokens, 7);
        assert_true(r->latency_ms == 12.5);
        assert_int_equal(r->attempts, 1);
        assert_null(r->error);
    } else {
        assert_null(r->finish_reason);
        assert_int_equal(r->prompt_tokens, -1);
        assert_true(r->latency_ms < 0);
        assert_int_equal(r->attempts, 3);
        assert_string_equal(r->error, "HTTP 500: engine dead");
    }
    (*checked)++;
    return 0;
}

static void test_create_reopen_resume(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    qe_err e = {0};
    qe_store *s = open_rw(t.db);
    int64_t run = 0, run2 = 0;
    int created = -1;
    assert_int_equal(qe_store_run_get_or_create(s, "fp-A", "{\"temperature\":0}", "org/m", &run,
                                                &created, &e),
                     0);
    assert_int_equal(created, 1);
    /* inserted out of order: iteration must come back in (doc, repeat) order */
    put(s, run, "aime24", 2, 0, 1, "two", 1);
    put(s, run, "aime24", 0, 1, 1, "zero-1", 1);
    put(s, run, "aime24", 0, 0, 1, "zero-0", 1);
    put(s, run, "math", 5, 0, 0, NULL, 1);
    qe_store_close(s);

    /* durable settings as documented, checked with raw SQLite */
    char mode[32];
    raw_text(t.db, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
    assert_int_equal(raw_int(t.db, "PRAGMA user_version"), QE_STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(t.db, "PRAGMA application_id"), QE_STORE_APP_ID);
    assert_int_equal(raw_int(t.db, "SELECT count(*) FROM responses"), 4);

    s = open_rw(t.db);
    assert_int_equal(qe_store_run_get_or_create(s, "fp-A", "{}", "other", &run2, &created, &e),
                     0);
    assert_int_equal(created, 0);
    assert_int_equal(run2, run);
    int has = -1;
    assert_int_equal(qe_store_has_ok(s, run, "aime24", 2, 0, &has, &e), 0);
    assert_int_equal(has, 1);
    assert_int_equal(qe_store_has_ok(s, run, "aime24", 1, 0, &has, &e), 0);
    assert_int_equal(has, 0);
    assert_int_equal(qe_store_has_ok(s, run, "math", 5, 0, &has, &e), 0);
    assert_int_equal(has, 0); /* failed rows are not done */

    qe_store_keys k;
    assert_int_equal(qe_store_done_keys(s, run, "aime24", &k, &e), 0);
    assert_int_equal(k.n, 3);
    assert_true(qe_store_keys_contains(&k, 0, 0));
    assert_true(qe_store_keys_contains(&k, 0, 1));
    assert_true(qe_store_keys_contains(&k, 2, 0));
    assert_false(qe_store_keys_contains(&k, 1, 0));
    assert_false(qe_store_keys_contains(&k, 2, 1));
    qe_store_keys_free(&k);
    assert_int_equal(qe_store_done_keys(s, run, "math", &k, &e), 0);
    assert_int_equal(k.n, 0);
    qe_store_keys_free(&k);

    collect c = {0};
    assert_int_equal(qe_store_foreach(s, run, "aime24", QE_STORE_ALL, collect_cb, &c, &e), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.seen[0], "aime24/0/0/zero-0");
    assert_string_equal(c.seen[1], "aime24/0/1/zero-1");
    assert_string_equal(c.seen[2], "aime24/2/0/two");
    int checked = 0;
    assert_int_equal(qe_store_foreach(s, run, NULL, QE_STORE_ALL, check_fields_cb, &checked, &e),
                     0);
    assert_int_equal(checked, 4);

    int64_t ok = -1, failed = -1;
    assert_int_equal(qe_store_counts(s, run, "aime24", &ok, &failed, &e), 0);
    assert_int_equal(ok, 3);
    assert_int_equal(failed, 0);
    assert_int_equal(qe_store_counts(s, run, NULL, &ok, &failed, &e), 0);
    assert_int_equal(ok, 3);
    assert_int_equal(failed, 1);

    qe_store_run *runs = NULL;
    size_t n = 0;
    assert_int_equal(qe_store_run_finish(s, run, &e), 0);
    assert_int_equal(qe_store_runs_list(s, &runs, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(runs[0].fingerprint, "fp-A");
    assert_string_equal(runs[0].config_json, "{\"temperature\":0}"); /* first config kept */
    assert_string_equal(runs[0].model, "org/m");
    assert_non_null(runs[0].finished_at);
    qe_store_runs_free(runs, n);
    assert_int_equal(qe_store_run_finish(s, run + 100, &e), QE_EINVAL);
    qe_store_close(s);
    tmp_remove(&t);
}

static void test_different_fingerprint_is_new_run(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    qe_err e = {0};
    qe_store *s = open_rw(t.db);
    int64_t a = 0, b = 0;
    int created = 0;
    assert_int_equal(qe_store_run_get_or_create(s, "fp-A", "{\"t\":0}", "m", &a, &created, &e), 0);
    put(s, a, "aime24", 0, 0, 1, "A0", 1);
    assert_int_equal(qe_store_run_get_or_create(s, "fp-B", "{\"t\":1}", "m", &b, &created, &e), 0);
    assert_int_equal(created, 1);
    assert_true(a != b);
    int has = 1;
    assert_int_equal(qe_store_has_ok(s, b, "aime24", 0, 0, &has, &e), 0);
    assert_int_equal(has, 0); /* run A's answer must not leak into run B */
    put(s, b, "aime24", 0, 0, 1, "B0", 1);
    collect c = {0};
    assert_int_equal(qe_store_foreach(s, a, NULL, QE_STORE_ALL, collect_cb, &c, &e), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.seen[0], "aime24/0/0/A0");
    qe_store_run *runs = NULL;
    size_t n = 0;
    assert_int_equal(qe_store_runs_list(s, &runs, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(runs[1].fingerprint, "fp-B");
    assert_string_equal(runs[1].config_json, "{\"t\":1}");
    assert_null(runs[1].finished_at);
    qe_store_runs_free(runs, n);
    int64_t found = 0;
    assert_int_equal(qe_store_run_find(s, "fp-B", &found, &e), 0);
    assert_int_equal(found, b);
    assert_int_equal(qe_store_run_find(s, "fp-C", &found, &e), QE_ESTATE);
    /* a response for a run that does not exist is refused (foreign key) */
    qe_store_response r = {.task = "aime24", .doc_id = 1, .ok = 1, .content = "x"};
    assert_true(qe_store_put_response(s, a + b + 10, &r, NULL, &e) < 0);
    qe_store_close(s);
    tmp_remove(&t);
}

static void test_ok_is_final(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    qe_err e = {0};
    qe_store *s = open_rw(t.db);
    int64_t run = 0;
    assert_int_equal(qe_store_run_get_or_create(s, "fp", "{}", "m", &run, NULL, &e), 0);
    put(s, run, "aime24", 3, 0, 1, "first", 1);
    put(s, run, "aime24", 3, 0, 0, NULL, 0);    /* a later failure does not erase it */
    put(s, run, "aime24", 3, 0, 1, "second", 0); /* nor does a second answer */
    collect c = {0};
    assert_int_equal(qe_store_foreach(s, run, "aime24", QE_STORE_ALL, collect_cb, &c, &e), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.seen[0], "aime24/3/0/first");
    assert_int_equal(c.ok[0], 1);
    qe_store_close(s);
    tmp_remove(&t);
}

/* What foreach_answers hands over, checked field by field. */
typedef struct {
    int n;
    char seen[16][96];
} answers;

static int answers_cb(const qe_store_response *r, void *ctx)
{
    answers *a = ctx;
    assert_true(a->n < 16);
    assert_int_equal(r->ok, 1);
    assert_null(r->request_json);
    assert_null(r->error);
    assert_null(r->server_model);
    assert_null(r->created_at);
    snprintf(a->seen[a->n++], sizeof a->seen[0], "%s/%lld/%d/%s/%s/%s/%s/%lld/%lld/%g/%d",
             r->task, (long long)r->doc_id, r->repeat, r->prompt ? r->prompt : "-",
             r->content ? r->content : "-", r->reasoning ? r->reasoning : "-",
             r->finish_reason ? r->finish_reason : "-", (long long)r->prompt_tokens,
             (long long)r->completion_tokens, r->latency_ms, r->attempts);
    return 0;
}

static void test_foreach_answers(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    qe_err e = {0};
    qe_store *s = open_rw(t.db);
    int64_t run = 0, other = 0;
    assert_int_equal(qe_store_run_get_or_create(s, "fp", "{}", "m", &run, NULL, &e), 0);
    assert_int_equal(qe_store_run_get_or_create(s, "fp2", "{}", "m", &other, NULL, &e), 0);
    /* out of order, failed rows, another task, another run */
    put(s, run, "math", 2, 0, 1, "c20", 1);
    put(s, run, "math", 0, 1, 1, "c01", 1);
    put(s, run, "math", 1, 0, 0, NULL, 1);
    put(s, run, "aime24", 0, 0, 1, "a00", 1);
    put(s, other, "math", 0, 0, 1, "o00", 1);
    put(s, run, "math", 0, 0, 1, "c00", 1);
    qe_store_response r = {0};
    r.task = "math";
    r.doc_id = 3;
    r.ok = 1;
    r.content = "c30";
    r.reasoning = "why";
    r.prompt_tokens = r.completion_tokens = -1;
    r.latency_ms = -1;
    assert_int_equal(qe_store_put_response(s, run, &r, NULL, &e), 0);
    answers a = {0};
    assert_int_equal(qe_store_foreach_answers(s, run, "math", answers_cb, &a, &e), 0);
    assert_int_equal(a.n, 4);
    assert_string_equal(a.seen[0], "math/0/0/Problem: 1+1\nAnswer:/c00/-/stop/12/7/12.5/1");
    assert_string_equal(a.seen[1], "math/0/1/Problem: 1+1\nAnswer:/c01/-/stop/12/7/12.5/1");
    assert_string_equal(a.seen[2], "math/2/0/Problem: 1+1\nAnswer:/c20/-/stop/12/7/12.5/1");
    assert_string_equal(a.seen[3], "math/3/0/-/c30/why/-/-1/-1/-1/0");
    assert_int_not_equal(qe_store_foreach_answers(s, run, NULL, answers_cb, &a, &e), 0);
    qe_store_close(s);
    tmp_remove(&t);
}

/* created_at is stamped by the store in SQLite's strftime('%Y-%m-%dT%H:%M:%fZ',
 * 'now') form (UTC, milliseconds), and close to SQLite's own clock. */
static void test_created_at_form(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    qe_err e = {0};
    qe_store *s = open_rw(t.db);
    int64_t run = 0;
    assert_int_equal(qe_store_run_get_or_create(s, "fp", "{}", "m", &run, NULL, &e), 0);
    put(s, run, "math", 0, 0, 1, "x", 1);
    qe_store_close(s);
    char got[64], diff[64];
    raw_text(t.db, "SELECT created_at FROM responses", got, sizeof got);
    assert_int_equal(strlen(got), 24);
    assert_true(got[4] == '-' && got[7] == '-' && got[10] == 'T' && got[13] == ':' &&
                got[16] == ':' && got[19] == '.' && got[23] == 'Z');
    /* SQLite parses it back as the same instant, within a few seconds of now */
    raw_text(t.db,
             "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', created_at) = created_at AND"
             " abs(julianday('now') - julianday(created_at)) * 86400 < 5 FROM responses",
             diff, sizeof diff);
    assert_string_equal(diff, "1");
    tmp_remove(&t);
}

static void test_failed_is_replaced(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    qe_err e = {0};
    qe_store *s = open_rw(t.db);
    int64_t run = 0;
    assert_int_equal(qe_store_run_get_or_create(s, "fp", "{}", "m", &run, NULL, &e), 0);
    put(s, run, "math", 1, 0, 0, NULL, 1);
    put(s, run, "math", 2, 0, 0, NULL, 1);
    put(s, run, "math", 2, 0, 0, NULL, 1); /* failed again: replaced (fresh reason) */
    collect c = {0};
    assert_int_equal(qe_store_foreach(s, run, NULL, QE_STORE_FAILED, collect_cb, &c, &e), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.err[0], "HTTP 500: engine dead");
    assert_int_equal(c.ok[0], 0);
    put(s, run, "math", 1, 0, 1, "fixed", 1);
    int64_t ok = 0, failed = 0;
    assert_int_equal(qe_store_counts(s, run, "math", &ok, &failed, &e), 0);
    assert_int_equal(ok, 1);
    assert_int_equal(failed, 1);
    memset(&c, 0, sizeof c);
    assert_int_equal(qe_store_foreach(s, run, "math", QE_STORE_OK, collect_cb, &c, &e), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.seen[0], "math/1/0/fixed");
    assert_int_equal(raw_int(t.db, "SELECT count(*) FROM responses"), 2);
    qe_store_close(s);
    tmp_remove(&t);
}

/* ---- locking and read-only use ----------------------------------------- */

static void test_second_writer_refused(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    qe_err e = {0};
    qe_store *s = open_rw(t.db);
    int64_t run = 0;
    assert_int_equal(qe_store_run_get_or_create(s, "fp", "{}", "m", &run, NULL, &e), 0);
    put(s, run, "aime24", 0, 0, 1, "a", 1);

    /* another writer, from a forked process as in real life */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        qe_store *s2 = NULL;
        qe_err e2 = {0};
        int rc = qe_store_open(t.db, 0, &s2, &e2);
        child_send(fds[1], REC_ERROR, rc, 0, e2.msg);
        _exit(0);
    }
    close(fds[1]);
    child_rec r;
    assert_int_equal(read(fds[0], &r, sizeof r), (ssize_t)sizeof r);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    assert_int_equal(r.code, QE_ESTATE);
    char want[64];
    snprintf(want, sizeof want, "(pid %ld)", (long)getpid());
    assert_non_null(strstr(r.msg, "is in use by another qeval process"));
    assert_non_null(strstr(r.msg, want));

    /* readers are welcome while the writer works, and see committed rows */
    qe_store *ro = NULL;
    assert_int_equal(qe_store_open(t.db, 1, &ro, &e), 0);
    int has = 0;
    assert_int_equal(qe_store_has_ok(ro, run, "aime24", 0, 0, &has, &e), 0);
    assert_int_equal(has, 1);
    put(s, run, "aime24", 1, 0, 1, "b", 1);
    assert_int_equal(qe_store_has_ok(ro, run, "aime24", 1, 0, &has, &e), 0);
    assert_int_equal(has, 1);
    qe_store_response w = {.task = "aime24", .doc_id = 9, .ok = 1};
    assert_int_equal(qe_store_put_response(ro, run, &w, NULL, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "read-only"));
    int64_t other = 0;
    assert_int_equal(qe_store_run_get_or_create(ro, "new-fp", "{}", "m", &other, NULL, &e),
                     QE_EINVAL);
    qe_store_close(ro);

    /* once the writer is gone, the lock is free again */
    qe_store_close(s);
    s = open_rw(t.db);
    qe_store_close(s);
    tmp_remove(&t);
}

static void test_read_only_open_needs_a_store(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    qe_store *s = NULL;
    qe_err e = {0};
    assert_int_equal(qe_store_open(t.db, 1, &s, &e), QE_EIO);
    assert_null(s);
    assert_non_null(strstr(e.msg, "no qeval store at"));
    assert_int_equal(access(t.db, F_OK), -1); /* a read-only open creates nothing */
    tmp_remove(&t);
}

/* Opens the store in a 0555 directory from a child that has dropped root:
 * as root, permission bits do not stop writes, so a root test process
 * switches to the unprivileged uid/gid 65534 first. */
static void test_read_only_directory(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    char sub[160], db[200];
    snprintf(sub, sizeof sub, "%s/out", t.dir);
    snprintf(db, sizeof db, "%s/qeval.sqlite", sub);
    assert_int_equal(mkdir(sub, 0755), 0);
    /* a store already present there, written while the directory was open */
    qe_store *s = open_rw(db);
    int64_t run = 0;
    qe_err e = {0};
    assert_int_equal(qe_store_run_get_or_create(s, "fp", "{}", "m", &run, NULL, &e), 0);
    put(s, run, "aime24", 4, 0, 1, "kept", 1);
    qe_store_close(s);
    assert_int_equal(chmod(t.dir, 0755), 0);
    assert_int_equal(chmod(db, 0644), 0);
    /* a lock file the child may write: only the directory check can stop it */
    char lockp[220];
    snprintf(lockp, sizeof lockp, "%s-lock", db);
    assert_int_equal(chmod(lockp, 0666), 0);
    assert_int_equal(chmod(sub, 0555), 0);
    size_t n0 = 0;
    char *before = slurp_must(db, &n0);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
            child_send(fds[1], REC_NOTE, 0, 0, "cannot drop root privileges (setuid 65534)");
            _exit(0);
        }
        if (access(sub, W_OK) == 0) {
            child_send(fds[1], REC_NOTE, 0, 0, "directory still writable after chmod 0555");
            _exit(0);
        }
        qe_store *s2 = NULL;
        qe_err e2 = {0};
        int rc = qe_store_open(db, 0, &s2, &e2);
        child_send(fds[1], REC_ERROR, rc, 0, e2.msg);
        qe_store_close(s2);
        /* reading the existing store from the read-only directory still works */
        memset(&e2, 0, sizeof e2);
        rc = qe_store_open(db, 1, &s2, &e2);
        int has = 0;
        if (rc == 0)
            rc = qe_store_has_ok(s2, 1, "aime24", 4, 0, &has, &e2);
        child_send(fds[1], REC_ERROR, rc, has, e2.msg);
        qe_store_close(s2);
        _exit(0);
    }
    close(fds[1]);
    child_rec r;
    assert_int_equal(read(fds[0], &r, sizeof r), (ssize_t)sizeof r);
    if (r.kind == REC_NOTE) {
        close(fds[0]);
        waitpid(pid, NULL, 0);
        free(before);
        tmp_remove(&t);
        print_message("skipping read-only directory test: %s\n", r.msg);
        skip();
    }
    assert_int_equal(r.kind, REC_ERROR);
    assert_int_equal(r.code, QE_EIO);
    assert_non_null(strstr(r.msg, "is not writable"));
    assert_non_null(strstr(r.msg, sub));
    child_rec r2;
    assert_int_equal(read(fds[0], &r2, sizeof r2), (ssize_t)sizeof r2);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (r2.code != 0)
        fail_msg("read-only open in read-only dir: %s", r2.msg);
    assert_int_equal(r2.id, 1);
    size_t n1 = 0;
    char *after = slurp_must(db, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
    tmp_remove(&t);
}

/* ---- refusing files that are not ours, never touching them ------------- */

static void expect_refused_untouched(const char *path, int want_code, const char *want_text)
{
    size_t n0 = 0, n1 = 0;
    char *before = slurp_must(path, &n0);
    for (int ro = 0; ro <= 1; ro++) {
        qe_store *s = NULL;
        qe_err e = {0};
        int rc = qe_store_open(path, ro, &s, &e);
        assert_null(s);
        if (rc != want_code || !strstr(e.msg, want_text))
            fail_msg("open(ro=%d) gave %d \"%s\", want %d with \"%s\"", ro, rc, e.msg, want_code,
                     want_text);
        assert_non_null(strstr(e.msg, path));
    }
    char *after = slurp_must(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void test_non_sqlite_file_refused(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    const char *json = "{\"results\": {\"aime24\": {\"exact_match,none\": 0.1}}}\n";
    write_file(t.db, json, strlen(json));
    expect_refused_untouched(t.db, QE_ESTATE, "not an SQLite database");
    tmp_remove(&t);
}

static void test_foreign_and_newer_sqlite_refused(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    raw_exec(t.db, "CREATE TABLE precious(x); INSERT INTO precious VALUES(42)");
    expect_refused_untouched(t.db, QE_ESTATE, "not one qeval wrote");
    assert_int_equal(raw_int(t.db, "SELECT x FROM precious"), 42);
    tmp_remove(&t);

    tmp_make(&t);
    qe_store *s = open_rw(t.db);
    qe_store_close(s);
    raw_exec(t.db, "PRAGMA user_version=99");
    expect_refused_untouched(t.db, QE_ESTATE, "newer qeval");
    tmp_remove(&t);
}

/* A zero-byte file (e.g. touched by a wrapper script, or a kill -9 right
 * after SQLite created it) is a store not yet set up, not a foreign file. */
static void test_empty_file_becomes_store(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    write_file(t.db, "", 0);
    qe_store *s = NULL;
    qe_err e = {0};
    assert_int_equal(qe_store_open(t.db, 1, &s, &e), QE_ESTATE); /* nothing to read yet */
    s = open_rw(t.db);
    int64_t run = 0;
    assert_int_equal(qe_store_run_get_or_create(s, "fp", "{}", "m", &run, NULL, &e), 0);
    put(s, run, "aime24", 0, 0, 1, "a", 1);
    qe_store_close(s);
    assert_int_equal(raw_int(t.db, "PRAGMA application_id"), QE_STORE_APP_ID);
    tmp_remove(&t);
}

static void make_store_with_rows(const char *path, int rows)
{
    qe_store *s = open_rw(path);
    int64_t run = 0;
    qe_err e = {0};
    assert_int_equal(qe_store_run_get_or_create(s, "fp", "{}", "m", &run, NULL, &e), 0);
    char content[700];
    for (int i = 0; i < rows; i++) {
        memset(content, 'a' + i % 26, sizeof content - 1);
        content[sizeof content - 1] = '\0';
        put(s, run, "math", i, 0, 1, content, 1);
    }
    qe_store_close(s);
}

static void test_corrupt_pages_refused(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    make_store_with_rows(t.db, 60);
    size_t n = 0;
    char *img = slurp_must(t.db, &n);
    assert_true(n >= 8 * 4096); /* several pages to damage */
    /* garbage over every page after the first: schema intact, data not */
    uint64_t seed = 0x5eed;
    for (size_t i = 4096; i < n; i++)
        img[i] = (char)(rng_next(&seed) & 0xff);
    write_file(t.db, img, n);
    expect_refused_untouched(t.db, QE_ESTATE, "corrupt");
    tmp_remove(&t);

    /* garbage over page 1 after its magic: the schema itself is unreadable */
    tmp_make(&t);
    make_store_with_rows(t.db, 20);
    free(img);
    img = slurp_must(t.db, &n);
    for (size_t i = 100; i < 4096; i++)
        img[i] = (char)(rng_next(&seed) & 0xff);
    write_file(t.db, img, n);
    expect_refused_untouched(t.db, QE_ESTATE, "left untouched");
    free(img);
    tmp_remove(&t);
}

/* ---- kill -9 ----------------------------------------------------------- */

#define KILL_ROUNDS 24
#define MAX_DOCS 100000

/* The victim: resumes the run and inserts answers as fast as it can,
 * reporting each id only after put returned (i.e. after COMMIT). */
static void kill_victim(const char *db, int fd)
{
    qe_store *s = NULL;
    qe_err e = {0};
    if (qe_store_open(db, 0, &s, &e) != 0) {
        child_send(fd, REC_ERROR, e.code, 0, e.msg);
        _exit(2);
    }
    int64_t run = 0;
    qe_store_keys done;
    if (qe_store_run_get_or_create(s, "fp-kill", "{\"k\":1}", "m", &run, NULL, &e) != 0 ||
        qe_store_done_keys(s, run, "math", &done, &e) != 0) {
        child_send(fd, REC_ERROR, e.code, 0, e.msg);
        _exit(2);
    }
    static char content[3000];
    for (int64_t d = 0; d < MAX_DOCS; d++) {
        if (qe_store_keys_contains(&done, d, 0))
            continue;
        snprintf(content, sizeof content, "answer %lld ", (long long)d);
        size_t l = strlen(content);
        memset(content + l, 'x', (size_t)(d % 2900) + 1 > sizeof content - l - 1
                                      ? sizeof content - l - 1
                                      : (size_t)(d % 2900) + 1);
        qe_store_response r = {.task = "math", .doc_id = d, .ok = 1, .content = content,
                               .prompt_tokens = -1, .completion_tokens = -1, .latency_ms = 1};
        if (qe_store_put_response(s, run, &r, NULL, &e) != 0) {
            child_send(fd, REC_ERROR, e.code, d, e.msg);
            _exit(3);
        }
        child_send(fd, REC_COMMITTED, 0, d, NULL);
    }
    _exit(0);
}

/* Records one "committed" report from a victim; returns 1. */
static long long take_committed(const child_rec *r, unsigned char *known, long long *max_known,
                                int round)
{
    if (r->kind == REC_ERROR)
        fail_msg("victim failed in round %d: %s", round, r->msg);
    assert_int_equal(r->kind, REC_COMMITTED);
    assert_true(r->id >= 0 && r->id < MAX_DOCS);
    assert_int_equal(known[r->id], 0); /* a stored answer is never asked again */
    known[r->id] = 1;
    if (r->id > *max_known)
        *max_known = r->id;
    return 1;
}

static void test_kill9_loses_nothing(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    uint64_t seed = 20261125; /* fixed: a failure replays the same schedule */
    /* known[d]: 1 = reported committed by a victim, 2 = found committed
     * in the store although its victim died before reporting it (the
     * answer in flight at the kill). known_n counts both. */
    static unsigned char known[MAX_DOCS];
    memset(known, 0, sizeof known);
    long long max_known = -1, known_n = 0, in_flight_kept = 0;
    int rounds_with_progress = 0;
    for (int round = 0; round < KILL_ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            kill_victim(t.db, fds[1]);
        }
        close(fds[1]);
        /* Two rounds in three wait for the victim's first commit, so those
         * kills land mid-insert even on a slow machine; the others kill at a
         * random time from fork, so some land in open and WAL recovery. */
        child_rec r;
        long long got = 0;
        int waited = round % 3 != 0;
        if (waited) {
            assert_int_equal(read(fds[0], &r, sizeof r), (ssize_t)sizeof r);
            got += take_committed(&r, known, &max_known, round);
        }
        long us = (long)(rng_next(&seed) % (waited ? 20000 : 40000));
        struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        while (read(fds[0], &r, sizeof r) == (ssize_t)sizeof r)
            got += take_committed(&r, known, &max_known, round);
        close(fds[0]);
        known_n += got;
        rounds_with_progress += got > 0;
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        /* after each kill: the store opens, is intact, and holds every
         * committed answer exactly once */
        /* odd rounds: a reader comes first and must cope with the crashed
         * writer's WAL on its own (SQLite's read-only recovery limits) */
        long long ro_rows = -1;
        if (round % 2) {
            qe_store *ro = NULL;
            qe_err e = {0};
            if (qe_store_open(t.db, 1, &ro, &e) != 0) {
                if (e.code != QE_ESTATE || !strstr(e.msg, "empty"))
                    fail_msg("round %d: read-only open after kill: %s", round, e.msg);
            } else {
                int64_t run = 0;
                qe_store_keys k = {0};
                if (qe_store_run_find(ro, "fp-kill", &run, &e) == 0) {
                    assert_int_equal(qe_store_done_keys(ro, run, "math", &k, &e), 0);
                    ro_rows = (long long)k.n;
                    qe_store_keys_free(&k);
                } else {
                    ro_rows = 0;
                }
                qe_store_close(ro);
            }
        }
        qe_store *s = open_rw(t.db);
        qe_store_close(s);
        char ic[256];
        raw_text(t.db, "PRAGMA integrity_check", ic, sizeof ic);
        assert_string_equal(ic, "ok");
        if (raw_int(t.db, "SELECT count(*) FROM sqlite_master WHERE name = 'responses'") == 0) {
            assert_int_equal(known_n, 0); /* killed before the schema existed */
            continue;
        }
        assert_true(raw_int(t.db, "SELECT count(*) FROM runs") <= 1);
        long long rows = raw_int(t.db, "SELECT count(*) FROM responses");
        assert_int_equal(raw_int(t.db, "SELECT count(*) FROM (SELECT DISTINCT run_id, task,"
                                       " doc_id, repeat FROM responses)"),
                         rows);
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open_v2(t.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT doc_id, content FROM responses", -1,
                                            &st, NULL),
                         SQLITE_OK);
        long long present = 0, extra = 0, extra_doc = -1;
        while (sqlite3_step(st) == SQLITE_ROW) {
            long long d = sqlite3_column_int64(st, 0);
            char want[32];
            snprintf(want, sizeof want, "answer %lld ", d);
            assert_memory_equal(sqlite3_column_text(st, 1), want, strlen(want));
            assert_true(d >= 0 && d < MAX_DOCS);
            if (known[d]) {
                present++;
            } else {
                extra++;
                extra_doc = d;
            }
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (present != known_n)
            fail_msg("round %d: only %lld of %lld committed answers survived", round, present,
                     known_n);
        /* at most one unreported answer per kill: the one in flight, which
         * is the next doc after the last committed one */
        assert_true(extra <= 1);
        if (extra) {
            assert_int_equal(extra_doc, max_known + 1);
            known[extra_doc] = 2;
            max_known = extra_doc;
            known_n++;
            in_flight_kept++;
        }
        assert_int_equal(rows, known_n);
        if (ro_rows >= 0)
            assert_int_equal(ro_rows, rows);
    }
    print_message("kill -9: %d rounds, %d killed mid-insert, %lld answers committed "
                  "(%lld committed in the instant before the kill)\n",
                  KILL_ROUNDS, rounds_with_progress, known_n, in_flight_kept);
    assert_true(rounds_with_progress >= 2 * KILL_ROUNDS / 3);
    tmp_remove(&t);
}

/* Kills a victim within its first milliseconds, over and over on fresh
 * directories, so some kills hit the creation of the store itself (the
 * switch to WAL leaves a hot rollback journal for an instant). Every state
 * left behind must open, read-only and read-write, and check ok. */
static void test_kill9_during_creation(void **state)
{
    (void)state;
    int hot_journal = 0, hot_wal = 0;
    for (int round = 0; round < 60; round++) {
        tmp_store t;
        tmp_make(&t);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            kill_victim(t.db, fds[1]);
        }
        close(fds[1]);
        struct timespec ts = {0, (long)(round % 30) * 60000L}; /* 0..1.74 ms */
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        child_rec r;
        long long reported = 0;
        while (read(fds[0], &r, sizeof r) == (ssize_t)sizeof r) {
            if (r.kind != REC_COMMITTED)
                fail_msg("victim failed in round %d: %s", round, r.msg);
            reported++;
        }
        close(fds[0]);
        char side[200];
        snprintf(side, sizeof side, "%s-journal", t.db);
        hot_journal += access(side, F_OK) == 0;
        snprintf(side, sizeof side, "%s-wal", t.db);
        hot_wal += access(side, F_OK) == 0;
        if (access(t.db, F_OK) == 0) {
            qe_store *ro = NULL;
            qe_err e = {0};
            int rc = qe_store_open(t.db, 1, &ro, &e);
            if (rc != 0 && !(rc == QE_ESTATE && strstr(e.msg, "empty")))
                fail_msg("round %d: read-only open after kill: %s", round, e.msg);
            qe_store_close(ro);
        }
        qe_store *s = open_rw(t.db);
        qe_store_close(s);
        char ic[256];
        raw_text(t.db, "PRAGMA integrity_check", ic, sizeof ic);
        assert_string_equal(ic, "ok");
        assert_true(raw_int(t.db, "SELECT count(*) FROM responses") >= reported);
        tmp_remove(&t);
    }
    print_message("kill -9 during creation: 60 rounds, %d left a -journal file, %d a -wal file\n",
                  hot_journal, hot_wal);
}

/* ---- group commit: qe_store_put_responses ------------------------------- */

static qe_store_response mkrow(const char *task, int64_t doc, int rep, int ok,
                               const char *content)
{
    qe_store_response r = {0};
    r.task = task;
    r.doc_id = doc;
    r.repeat = rep;
    r.ok = ok;
    r.prompt = "Problem: 1+1\nAnswer:";
    r.request_json = "{\"max_tokens\":16}";
    r.content = content;
    r.finish_reason = ok ? "stop" : NULL;
    r.prompt_tokens = ok ? 12 : -1;
    r.completion_tokens = ok ? 7 : -1;
    r.latency_ms = ok ? 12.5 : -1;
    r.attempts = ok ? 1 : 3;
    r.error = ok ? NULL : "HTTP 500: engine dead";
    r.server_model = "m";
    return r;
}

static void test_batch_semantics(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    qe_store *s = open_rw(t.db);
    int64_t run = 0;
    qe_err e = {0};
    assert_int_equal(qe_store_run_get_or_create(s, "fp", "{}", "m", &run, NULL, &e), 0);
    /* before: doc 0 ok (final), doc 1 failed (replaceable) */
    put(s, run, "math", 0, 0, 1, "first", 1);
    put(s, run, "math", 1, 0, 0, NULL, 1);
    qe_store_response rows[5] = {
        mkrow("math", 0, 0, 1, "second"), /* ok is final: no change */
        mkrow("math", 1, 0, 1, "fixed"),  /* replaces the failed row */
        mkrow("math", 2, 0, 1, "new"),
        mkrow("math", 2, 1, 0, NULL),     /* a failed row in a batch */
        mkrow("gsm", 2, 0, 1, "other task"),
    };
    int stored = -1;
    assert_int_equal(qe_store_put_responses(s, run, rows, 5, &stored, &e), 0);
    assert_int_equal(stored, 4);
    int checked = 0;
    assert_int_equal(qe_store_foreach(s, run, NULL, QE_STORE_ALL, check_fields_cb, &checked, &e),
                     0);
    assert_int_equal(checked, 5);
    collect c = {0};
    assert_int_equal(qe_store_foreach(s, run, NULL, QE_STORE_ALL, collect_cb, &c, &e), 0);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.seen[0], "gsm/2/0/other task");
    assert_string_equal(c.seen[1], "math/0/0/first");
    assert_string_equal(c.seen[2], "math/1/0/fixed");
    assert_string_equal(c.seen[3], "math/2/0/new");
    assert_string_equal(c.seen[4], "math/2/1/(null)");
    assert_int_equal(c.ok[4], 0);
    /* n = 0 is a no-op; a batch that changes nothing reports 0 */
    assert_int_equal(qe_store_put_responses(s, run, NULL, 0, &stored, &e), 0);
    assert_int_equal(stored, 0);
    assert_int_equal(qe_store_put_responses(s, run, rows, 1, &stored, &e), 0);
    assert_int_equal(stored, 0);
    /* a bad row refuses the whole batch: nothing of it is written */
    qe_store_response bad[3] = {mkrow("math", 7, 0, 1, "x"), mkrow("math", 8, 0, 1, "y"),
                                mkrow("math", -1, 0, 1, "z")};
    memset(&e, 0, sizeof e);
    assert_int_equal(qe_store_put_responses(s, run, bad, 3, &stored, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "negative doc id"));
    int has = 1;
    assert_int_equal(qe_store_has_ok(s, run, "math", 7, 0, &has, &e), 0);
    assert_int_equal(has, 0);
    /* a batch the database rejects (unknown run: foreign key) fails
     * whole, with the batch named in the message */
    qe_store_response fk[2] = {mkrow("math", 9, 0, 1, "x"), mkrow("math", 10, 0, 1, "y")};
    memset(&e, 0, sizeof e);
    assert_int_not_equal(qe_store_put_responses(s, run + 1000, fk, 2, &stored, &e), 0);
    assert_non_null(strstr(e.msg, "in a batch of 2 answers, none of which was stored"));
    assert_int_equal(raw_int(t.db, "SELECT count(*) FROM responses WHERE doc_id >= 9"), 0);
    /* and the store takes writes again afterwards */
    assert_int_equal(qe_store_put_responses(s, run, fk, 2, &stored, &e), 0);
    assert_int_equal(stored, 2);
    qe_store_close(s);
    /* read-only stores refuse batches */
    qe_store *ro = NULL;
    assert_int_equal(qe_store_open(t.db, 1, &ro, &e), 0);
    assert_int_equal(qe_store_put_responses(ro, run, fk, 2, &stored, &e), QE_EINVAL);
    qe_store_close(ro);
    assert_int_equal(raw_int(t.db, "SELECT count(*) FROM responses"), 7);
    tmp_remove(&t);
}

/* The victim commits batches of 1..64 answers (sizes from a seeded PRNG),
 * reporting a batch's first doc and size only after put returned. Batch
 * boundaries are a function of the seed alone, so the parent can rebuild
 * them. */
#define BATCH_DOCS 200000
static int batch_size_at(uint64_t *seed)
{
    return 1 + (int)(rng_next(seed) % 64);
}

static void batch_victim(const char *db, int fd, uint64_t seed)
{
    qe_store *s = NULL;
    qe_err e = {0};
    if (qe_store_open(db, 0, &s, &e) != 0) {
        child_send(fd, REC_ERROR, e.code, 0, e.msg);
        _exit(2);
    }
    int64_t run = 0;
    qe_store_keys done;
    if (qe_store_run_get_or_create(s, "fp-batch", "{}", "m", &run, NULL, &e) != 0 ||
        qe_store_done_keys(s, run, "math", &done, &e) != 0) {
        child_send(fd, REC_ERROR, e.code, 0, e.msg);
        _exit(2);
    }
    /* resume after the last stored doc: batches are contiguous doc ranges */
    int64_t d = done.n ? done.keys[done.n - 1].doc_id + 1 : 0;
    static char content[64][600];
    qe_store_response rows[64];
    while (d < BATCH_DOCS) {
        int n = batch_size_at(&seed);
        for (int i = 0; i < n; i++) {
            snprintf(content[i], sizeof content[i], "answer %lld batch %lld of %d %0500d",
                     (long long)(d + i), (long long)d, n, 0);
            rows[i] = (qe_store_response){.task = "math", .doc_id = d + i, .ok = 1,
                                          .content = content[i], .prompt_tokens = -1,
                                          .completion_tokens = -1, .latency_ms = 1};
        }
        if (qe_store_put_responses(s, run, rows, (size_t)n, NULL, &e) != 0) {
            child_send(fd, REC_ERROR, e.code, d, e.msg);
            _exit(3);
        }
        child_send(fd, REC_COMMITTED, n, d, NULL);
        d += n;
    }
    _exit(0);
}

static void test_batch_kill9_all_or_nothing(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    uint64_t sched = 777123;
    long long reported_end = 0; /* docs [0, reported_end) reported committed */
    long long unreported_batches = 0, kills_mid = 0, batches_seen = 0;
    for (int round = 0; round < 16; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        uint64_t seed = 4242 + (uint64_t)round; /* batch sizes of this victim */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            batch_victim(t.db, fds[1], seed);
        }
        close(fds[1]);
        child_rec r;
        /* wait for a first batch, then kill at a random instant */
        assert_int_equal(read(fds[0], &r, sizeof r), (ssize_t)sizeof r);
        long us = (long)(rng_next(&sched) % 30000);
        struct timespec ts = {0, us * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        long long got = 0;
        do {
            if (r.kind == REC_ERROR)
                fail_msg("batch victim failed in round %d: %s", round, r.msg);
            assert_int_equal(r.id, reported_end); /* batches are contiguous */
            reported_end += r.code;
            got++;
        } while (read(fds[0], &r, sizeof r) == (ssize_t)sizeof r);
        close(fds[0]);
        kills_mid += got > 1;
        char ic[256];
        raw_text(t.db, "PRAGMA integrity_check", ic, sizeof ic);
        assert_string_equal(ic, "ok");
        /* every reported batch is there: rows are exactly docs [0, rows) */
        long long rows = raw_int(t.db, "SELECT count(*) FROM responses");
        long long maxd = raw_int(t.db, "SELECT coalesce(max(doc_id), -1) FROM responses");
        assert_int_equal(maxd + 1, rows);
        if (rows < reported_end)
            fail_msg("round %d: %lld answers reported committed, only %lld stored", round,
                     reported_end, rows);
        /* each row names its doc, its batch's first doc and the batch size:
         * every batch present is whole (never a part of one), and beyond the
         * reported ones at most the single batch that was committing */
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open_v2(t.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT doc_id, content FROM responses ORDER BY"
                                                " doc_id", -1, &st, NULL),
                         SQLITE_OK);
        long long cur = -1, cur_n = 0, cur_len = 0, extra = 0;
        batches_seen = 0;
        for (;;) {
            int step = sqlite3_step(st);
            long long d = -1, dd = -1, bfirst = -1, bn = -1;
            if (step == SQLITE_ROW) {
                d = sqlite3_column_int64(st, 0);
                const char *txt = (const char *)sqlite3_column_text(st, 1);
                assert_int_equal(sscanf(txt, "answer %lld batch %lld of %lld", &dd, &bfirst, &bn),
                                 3);
                assert_int_equal(dd, d);
            }
            if (step != SQLITE_ROW || bfirst != cur) {
                if (cur >= 0) { /* close the previous batch: whole? */
                    if (cur_len != cur_n)
                        fail_msg("round %d: batch at doc %lld has %lld of its %lld rows", round,
                                 cur, cur_len, cur_n);
                    batches_seen++;
                    extra += cur >= reported_end;
                }
                if (step != SQLITE_ROW)
                    break;
                assert_int_equal(bfirst, d); /* a batch starts at its first doc */
                cur = bfirst;
                cur_n = bn;
                cur_len = 0;
            }
            cur_len++;
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        assert_true(extra <= 1);
        unreported_batches += extra;
        reported_end = rows; /* the next victim resumes after what is stored */
    }
    print_message("batch kill -9: 16 rounds, %lld batches stored, %lld rounds killed after "
                  "several commits, %lld batches committed in the instant before the kill\n",
                  batches_seen, kills_mid, unreported_batches);
    assert_true(kills_mid >= 8);
    tmp_remove(&t);
}

/* ---- disk full --------------------------------------------------------- */

static void full_victim(const char *db, int fd)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {256 * 1024, 256 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
        child_send(fd, REC_NOTE, 0, 0, "setrlimit(RLIMIT_FSIZE) failed");
        _exit(0);
    }
    qe_store *s = NULL;
    qe_err e = {0};
    int64_t run = 0;
    if (qe_store_open(db, 0, &s, &e) != 0 ||
        qe_store_run_get_or_create(s, "fp-full", "{}", "m", &run, NULL, &e) != 0) {
        child_send(fd, REC_NOTE, e.code, 0, e.msg);
        _exit(0);
    }
    static char content[5000];
    memset(content, 'z', sizeof content - 1);
    for (int64_t d = 0; d < 10000; d++) {
        qe_store_response r = {.task = "math", .doc_id = d, .ok = 1, .content = content,
                               .prompt_tokens = -1, .completion_tokens = -1, .latency_ms = 1};
        if (qe_store_put_response(s, run, &r, NULL, &e) != 0) {
            child_send(fd, REC_ERROR, e.code, d, e.msg);
            /* the store is still usable for reading what it has */
            int has = 0;
            qe_err e2 = {0};
            int rc = qe_store_has_ok(s, run, "math", 0, 0, &has, &e2);
            child_send(fd, REC_NOTE, rc, has, e2.msg);
            qe_store_close(s);
            _exit(0);
        }
        child_send(fd, REC_COMMITTED, 0, d, NULL);
    }
    child_send(fd, REC_NOTE, 0, -1, "never ran out of space");
    _exit(0);
}

static void test_disk_full(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        full_victim(t.db, fds[1]);
    }
    close(fds[1]);
    child_rec r;
    long long committed = 0, failed_doc = -1;
    int code = 0, after_rc = -100, after_has = 0;
    char msg[1100] = "";
    while (read(fds[0], &r, sizeof r) == (ssize_t)sizeof r) {
        if (r.kind == REC_COMMITTED) {
            assert_int_equal(r.id, committed);
            committed++;
        } else if (r.kind == REC_ERROR) {
            code = r.code;
            failed_doc = r.id;
            snprintf(msg, sizeof msg, "%s", r.msg);
        } else if (failed_doc < 0) {
            fail_msg("disk-full child: %s", r.msg);
        } else {
            after_rc = r.code;
            after_has = (int)r.id;
        }
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    print_message("disk full after %lld answers: %s\n", committed, msg);
    assert_true(committed > 5);
    assert_int_equal(failed_doc, committed);
    assert_int_equal(code, QE_EIO);
    char want[64];
    snprintf(want, sizeof want, "disk full while storing math doc %lld", failed_doc);
    assert_non_null(strstr(msg, want));
    assert_non_null(strstr(msg, t.db));
    assert_int_equal(after_rc, 0);
    assert_int_equal(after_has, 1);

    /* without the limit: consistent, every committed answer there, the
     * failed one absent, and writing works again */
    qe_store *s = open_rw(t.db);
    char ic[256];
    raw_text(t.db, "PRAGMA integrity_check", ic, sizeof ic);
    assert_string_equal(ic, "ok");
    int64_t run = 0, ok = 0, failed = 0;
    qe_err e = {0};
    assert_int_equal(qe_store_run_find(s, "fp-full", &run, &e), 0);
    assert_int_equal(qe_store_counts(s, run, "math", &ok, &failed, &e), 0);
    assert_int_equal(ok, committed);
    assert_int_equal(failed, 0);
    qe_store_keys k;
    assert_int_equal(qe_store_done_keys(s, run, "math", &k, &e), 0);
    for (long long d = 0; d < committed; d++)
        assert_true(qe_store_keys_contains(&k, d, 0));
    assert_false(qe_store_keys_contains(&k, failed_doc, 0));
    qe_store_keys_free(&k);
    put(s, run, "math", failed_doc, 0, 1, "after", 1);
    qe_store_close(s);
    tmp_remove(&t);
}

/* Disk full in the middle of a batch: the victim commits batches of 16
 * answers of 5 KB under a 256 KiB file size limit. */
#define FULL_BATCH 16
static void full_batch_victim(const char *db, int fd)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {256 * 1024, 256 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
        child_send(fd, REC_NOTE, 0, 0, "setrlimit(RLIMIT_FSIZE) failed");
        _exit(0);
    }
    qe_store *s = NULL;
    qe_err e = {0};
    int64_t run = 0;
    if (qe_store_open(db, 0, &s, &e) != 0 ||
        qe_store_run_get_or_create(s, "fp-full", "{}", "m", &run, NULL, &e) != 0) {
        child_send(fd, REC_NOTE, e.code, 0, e.msg);
        _exit(0);
    }
    static char content[5000];
    memset(content, 'z', sizeof content - 1);
    qe_store_response rows[FULL_BATCH];
    for (int64_t d = 0; d < 10000; d += FULL_BATCH) {
        for (int i = 0; i < FULL_BATCH; i++)
            rows[i] = (qe_store_response){.task = "math", .doc_id = d + i, .ok = 1,
                                          .content = content, .prompt_tokens = -1,
                                          .completion_tokens = -1, .latency_ms = 1};
        if (qe_store_put_responses(s, run, rows, FULL_BATCH, NULL, &e) != 0) {
            child_send(fd, REC_ERROR, e.code, d, e.msg);
            int has = 0;
            qe_err e2 = {0};
            int rc = qe_store_has_ok(s, run, "math", d, 0, &has, &e2);
            child_send(fd, REC_NOTE, rc, has, e2.msg);
            qe_store_close(s);
            _exit(0);
        }
        child_send(fd, REC_COMMITTED, 0, d, NULL);
    }
    child_send(fd, REC_NOTE, 0, -1, "never ran out of space");
    _exit(0);
}

static void test_batch_disk_full(void **state)
{
    (void)state;
    tmp_store t;
    tmp_make(&t);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        full_batch_victim(t.db, fds[1]);
    }
    close(fds[1]);
    child_rec r;
    long long committed = 0, failed_first = -1;
    int code = 0, after_rc = -100, after_has = 1;
    char msg[1100] = "";
    while (read(fds[0], &r, sizeof r) == (ssize_t)sizeof r) {
        if (r.kind == REC_COMMITTED) {
            assert_int_equal(r.id, committed);
            committed += FULL_BATCH;
        } else if (r.kind == REC_ERROR) {
            code = r.code;
            failed_first = r.id;
            snprintf(msg, sizeof msg, "%s", r.msg);
        } else if (failed_first < 0) {
            fail_msg("disk-full batch child: %s", r.msg);
        } else {
            after_rc = r.code;
            after_has = (int)r.id;
        }
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    print_message("disk full after %lld answers in batches of %d: %s\n", committed, FULL_BATCH,
                  msg);
    assert_true(committed >= 2 * FULL_BATCH);
    assert_int_equal(failed_first, committed);
    assert_int_equal(code, QE_EIO);
    assert_non_null(strstr(msg, "disk full while storing math doc"));
    assert_non_null(strstr(msg, "in a batch of 16 answers, none of which was stored"));
    assert_non_null(strstr(msg, t.db));
    assert_int_equal(after_rc, 0);
    assert_int_equal(after_has, 0); /* the failed batch's first row is not there */

    /* without the limit: consistent, every committed batch whole, nothing
     * of the failed batch, and a batch commits again */
    qe_store *s = open_rw(t.db);
    char ic[256];
    raw_text(t.db, "PRAGMA integrity_check", ic, sizeof ic);
    assert_string_equal(ic, "ok");
    int64_t run = 0, ok = 0, failed = 0;
    qe_err e = {0};
    assert_int_equal(qe_store_run_find(s, "fp-full", &run, &e), 0);
    assert_int_equal(qe_store_counts(s, run, "math", &ok, &failed, &e), 0);
    assert_int_equal(ok, committed);
    assert_int_equal(failed, 0);
    assert_int_equal(raw_int(t.db, "SELECT coalesce(max(doc_id), -1) FROM responses"),
                     committed - 1);
    qe_store_response rows[FULL_BATCH];
    for (int i = 0; i < FULL_BATCH; i++)
        rows[i] = mkrow("math", failed_first + i, 0, 1, "after");
    int stored = 0;
    assert_int_equal(qe_store_put_responses(s, run, rows, FULL_BATCH, &stored, &e), 0);
    assert_int_equal(stored, FULL_BATCH);
    qe_store_close(s);
    tmp_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_reopen_resume),
        cmocka_unit_test(test_different_fingerprint_is_new_run),
        cmocka_unit_test(test_ok_is_final),
        cmocka_unit_test(test_failed_is_replaced),
        cmocka_unit_test(test_foreach_answers),
        cmocka_unit_test(test_created_at_form),
        cmocka_unit_test(test_second_writer_refused),
        cmocka_unit_test(test_read_only_open_needs_a_store),
        cmocka_unit_test(test_read_only_directory),
        cmocka_unit_test(test_non_sqlite_file_refused),
        cmocka_unit_test(test_foreign_and_newer_sqlite_refused),
        cmocka_unit_test(test_corrupt_pages_refused),
        cmocka_unit_test(test_empty_file_becomes_store),
        cmocka_unit_test(test_kill9_loses_nothing),
        cmocka_unit_test(test_kill9_during_creation),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_batch_semantics),
        cmocka_unit_test(test_batch_kill9_all_or_nothing),
        cmocka_unit_test(test_batch_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
