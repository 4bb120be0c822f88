/* bench_store: what storing one answer costs, per row, at the batch sizes a
 * run's group commit produces (1 answer per commit with a slow server, ~5
 * per event-loop turn at concurrency 8, 64 and more at concurrency 64+).
 *
 * Each point stores the same rows (sizes of a hendrycks_math500 raw
 * completion: a 213-byte prompt, a 316-byte request body, a 26-byte answer)
 * in the order a run's queue asks them (each doc's repeats together: 100
 * repeats of each doc) into fresh store files, in the same run:
 *   - qeval:    qe_store_put_responses, as the runner calls it;
 *   - baseline: bare SQLite on a file with the same schema and settings
 *               (created by qe_store_open; WAL, synchronous=FULL,
 *               foreign_keys=ON), a plain prepared INSERT and prepared
 *               BEGIN IMMEDIATE / COMMIT: the least SQLite does for the
 *               same rows and the same durability.
 * and prints µs per row and the ratio qeval / baseline. Two more baseline
 * lines show what the store's contract costs (docs/run.md, "Performance"):
 * the same bare loop with locking_mode=EXCLUSIVE (no other process could
 * read the store during a run) and without the request column (the body as
 * sent would no longer be stored).
 *
 * Usage: bench_store [ROWS] [DIR...]   (defaults: 50000, /dev/shm and /tmp) */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "store.h"

#define ROUNDS 3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char prompt[214], request[317];
static const char answer[] = "The answer is $\\boxed{5}$.";

static void fill(char *s, size_t n, char c)
{
    memset(s, c, n - 1);
    s[n - 1] = '\0';
}

static void remove_store(const char *path)
{
    char p[512];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-lock", path);
    unlink(p);
}

/* A fresh store with one run; its path in path. Exits on failure. */
static qe_store *fresh_store(const char *dir, const char *name, char *path, size_t cap,
                             int64_t *run_id)
{
    snprintf(path, cap, "%s/bench_store_%ld_%s.sqlite", dir, (long)getpid(), name);
    remove_store(path);
    qe_err err = {0};
    qe_store *s = NULL;
    if (qe_store_open(path, 0, &s, &err) ||
        qe_store_run_get_or_create(s, "bench", "{}", "bench", run_id, NULL, &err)) {
        fprintf(stderr, "bench_store: %s\n", err.msg);
        exit(1);
    }
    return s;
}

static double run_qeval(const char *dir, int rows, int batch)
{
    char path[512];
    int64_t run_id;
    qe_store *s = fresh_store(dir, "q", path, sizeof path, &run_id);
    qe_store_response *r = calloc((size_t)batch, sizeof *r);
    if (!r)
        abort();
    qe_err err = {0};
    double t0 = now();
    for (int i = 0; i < rows; i += batch) {
        int n = rows - i < batch ? rows - i : batch;
        for (int j = 0; j < n; j++) {
            int k = i + j;
            r[j] = (qe_store_response){.task = "hendrycks_math500", .doc_id = k / 100,
                                       .repeat = k % 100, .ok = 1, .prompt = prompt,
                                       .request_json = request, .content = answer,
                                       .finish_reason = "stop", .prompt_tokens = 120,
                                       .completion_tokens = 9, .latency_ms = 0.123,
                                       .attempts = 1, .server_model = "bench"};
        }
        if (qe_store_put_responses(s, run_id, r, (size_t)n, NULL, &err)) {
            fprintf(stderr, "bench_store: %s\n", err.msg);
            exit(1);
        }
    }
    double t = now() - t0;
    free(r);
    qe_store_close(s);
    remove_store(path);
    return t / rows * 1e6;
}

enum { BARE_SAME, BARE_EXCLUSIVE, BARE_NO_REQUEST };

static void must(sqlite3 *db, int rc, int want)
{
    if (rc != want) {
        fprintf(stderr, "bench_store: sqlite: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
}

static double run_bare(const char *dir, int rows, int batch, int how)
{
    char path[512];
    int64_t run_id;
    qe_store_close(fresh_store(dir, "b", path, sizeof path, &run_id));
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK)
        must(db, 1, 0);
    if (how == BARE_EXCLUSIVE)
        must(db, sqlite3_exec(db, "PRAGMA locking_mode=EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    must(db,
         sqlite3_exec(db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON",
                      NULL, NULL, NULL),
         SQLITE_OK);
    sqlite3_stmt *ins, *begin, *commit;
    must(db,
         sqlite3_prepare_v2(db,
                            "INSERT INTO responses(run_id, task, doc_id, repeat, status, prompt,"
                            " request, content, finish_reason, prompt_tokens, completion_tokens,"
                            " latency_ms, attempts, server_model, created_at)"
                            " VALUES(?1, ?2, ?3, ?4, 'ok', ?5, ?6, ?7, 'stop', 120, 9, 0.123, 1,"
                            " 'bench', '2026-11-26T00:00:00.000Z')",
                            -1, &ins, NULL),
         SQLITE_OK);
    must(db, sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL), SQLITE_OK);
    must(db, sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL), SQLITE_OK);
    double t0 = now();
    for (int i = 0; i < rows; i += batch) {
        int n = rows - i < batch ? rows - i : batch;
        if (n > 1) {
            must(db, sqlite3_step(begin), SQLITE_DONE);
            sqlite3_reset(begin);
        }
        for (int j = 0; j < n; j++) {
            int k = i + j;
            sqlite3_bind_int64(ins, 1, run_id);
            sqlite3_bind_text(ins, 2, "hendrycks_math500", -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 3, k / 100);
            sqlite3_bind_int(ins, 4, k % 100);
            sqlite3_bind_text(ins, 5, prompt, -1, SQLITE_STATIC);
            if (how == BARE_NO_REQUEST)
                sqlite3_bind_null(ins, 6);
            else
                sqlite3_bind_text(ins, 6, request, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins, 7, answer, -1, SQLITE_STATIC);
            must(db, sqlite3_step(ins), SQLITE_DONE);
            sqlite3_reset(ins);
        }
        if (n > 1) {
            must(db, sqlite3_step(commit), SQLITE_DONE);
            sqlite3_reset(commit);
        }
    }
    double t = now() - t0;
    sqlite3_finalize(ins);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    remove_store(path);
    return t / rows * 1e6;
}

static double min3(double a, double b)
{
    return a < b ? a : b;
}

int main(int argc, char **argv)
{
    int rows = argc > 1 ? atoi(argv[1]) : 50000;
    if (rows < 1) {
        fprintf(stderr, "usage: bench_store [ROWS] [DIR...]\n");
        return 2;
    }
    const char *def[] = {"/dev/shm", "/tmp"};
    const char **dirs = argc > 2 ? (const char **)argv + 2 : def;
    int ndirs = argc > 2 ? argc - 2 : 2;
    fill(prompt, sizeof prompt, 'p');
    fill(request, sizeof request, 'r');
    static const int batches[] = {1, 5, 64};
    printf("bench_store: µs per stored answer, best of %d rounds, %d rows a point\n", ROUNDS,
           rows);
    printf("%-9s %5s %8s %8s %6s %10s %10s\n", "dir", "batch", "qeval", "bare", "ratio",
           "exclusive", "no request");
    for (int d = 0; d < ndirs; d++) {
        if (access(dirs[d], W_OK) != 0) {
            printf("%-9s (not writable, skipped)\n", dirs[d]);
            continue;
        }
        for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
            int n = batches[b] == 1 && rows > 5000 ? 5000 : rows; /* an fsync each */
            double q = 1e30, bare = 1e30, ex = 1e30, nr = 1e30;
            for (int r = 0; r < ROUNDS; r++) { /* interleaved */
                q = min3(q, run_qeval(dirs[d], n, batches[b]));
                bare = min3(bare, run_bare(dirs[d], n, batches[b], BARE_SAME));
                ex = min3(ex, run_bare(dirs[d], n, batches[b], BARE_EXCLUSIVE));
                nr = min3(nr, run_bare(dirs[d], n, batches[b], BARE_NO_REQUEST));
            }
            printf("%-9s %5d %8.2f %8.2f %6.2f %10.2f %10.2f\n", dirs[d], batches[b], q, bare,
                   q / bare, ex, nr);
        }
    }
    return 0;
}
