/* store: the durable response store (SQLite, WAL) behind resume.
 *
 * One database file per output directory (conventionally
 * <output>/qeval.sqlite). It holds runs -- one per fingerprint, the caller's
 * digest of everything that changes answers -- and every response, committed
 * as it arrives (one row, or a batch of rows in one transaction: group
 * commit), so a `kill -9` loses at most what was not committed yet and a
 * rerun of the same command asks only what is not stored yet.
 *
 * Durability and locking choices are explained in docs/store.md:
 *   - journal_mode=WAL, synchronous=FULL: a put that returned 0 survives
 *     kill -9 and power loss;
 *   - a writer holds an exclusive flock() on "<path>-lock" for as long as the
 *     store is open, so a second qeval process gets "store is in use by
 *     another qeval process (pid N)" instead of interleaving rows. Read-only
 *     opens take no lock (WAL lets them read while a writer works);
 *   - an existing file that is not a qeval store, is from a newer schema, or
 *     fails PRAGMA quick_check is refused and never modified (the one write
 *     an inspection may cause is SQLite's own crash recovery after kill -9,
 *     back to the last committed state; see docs/store.md).
 *
 * Threads: a store is used by one thread at a time (the caller serializes
 * calls; the runner does with its mutex): the connection is opened without
 * SQLite's own per-call mutex.
 *
 * Ownership: qe_store_open returns a store the caller frees with
 * qe_store_close. Strings passed in are copied by SQLite; nothing is kept.
 * Pointers inside a qe_store_response handed to a foreach callback are valid
 * only during that call. Arrays returned (*_list, qe_store_done_keys) are
 * freed with their matching *_free. */
#ifndef QE_STORE_H
#define QE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Schema version this build reads and writes (PRAGMA user_version). */
#define QE_STORE_SCHEMA_VERSION 1
/* PRAGMA application_id marking a qeval store ("qeva"). */
#define QE_STORE_APP_ID 0x71657661

typedef struct qe_store qe_store;

/* One response row. On put, created_at is ignored (the store stamps it).
 * NULL strings are stored as SQL NULL; token counts < 0 mean unknown (NULL);
 * latency_ms < 0 means unknown. */
typedef struct {
    const char *task;
    int64_t doc_id;
    int repeat;
    int ok;                    /* 1: status 'ok' (final); 0: 'failed' */
    const char *prompt;        /* rendered prompt text sent/seen by server */
    const char *request_json;  /* request body as sent (no API key!) */
    const char *content;
    const char *reasoning;
    const char *finish_reason;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    double latency_ms;
    int attempts;
    const char *error;         /* why it failed; NULL for ok rows */
    const char *server_model;  /* "model" field of the server's reply */
    const char *created_at;    /* read only: ISO-8601 UTC, ms precision */
} qe_store_response;

typedef struct {
    int64_t id;
    char *fingerprint;
    char *config_json;
    char *model;
    char *created_at;  /* ISO-8601 UTC */
    char *finished_at; /* NULL while unfinished */
} qe_store_run;

/* Sorted set of (doc_id, repeat) that have an 'ok' row for one task. */
typedef struct {
    int64_t doc_id;
    int repeat;
} qe_store_key;

typedef struct {
    qe_store_key *keys; /* sorted by (doc_id, repeat) */
    size_t n;
} qe_store_keys;

/* Which rows a foreach visits. */
enum qe_store_filter { QE_STORE_ALL = 0, QE_STORE_OK = 1, QE_STORE_FAILED = 2 };

/* Opens (read_only = 0: creates if absent) the store at path.
 * Fails with QE_EIO when the directory is not writable or the file cannot be
 * opened, QE_ESTATE when the file is not a qeval store, is corrupt, has an
 * unknown schema version, or is in use by another writer. An existing file is
 * never deleted, truncated or overwritten on failure. read_only = 1 requires
 * the file to exist and refuses every write with QE_EINVAL.
 * On success *out owns the store (qe_store_close). */
int qe_store_open(const char *path, int read_only, qe_store **out, qe_err *err);
/* Closes the database and releases the lock. NULL is a no-op. */
void qe_store_close(qe_store *s);
const char *qe_store_path(const qe_store *s);

/* Finds the run with this fingerprint or creates it (*created = 1).
 * config_json and model are recorded only on creation. created may be NULL. */
int qe_store_run_get_or_create(qe_store *s, const char *fingerprint, const char *config_json,
                               const char *model, int64_t *run_id, int *created, qe_err *err);
/* Looks a run up without creating: 0 and *run_id, or QE_ESTATE if absent. */
int qe_store_run_find(qe_store *s, const char *fingerprint, int64_t *run_id, qe_err *err);
/* Stamps finished_at = now (again, if rerun). */
int qe_store_run_finish(qe_store *s, int64_t run_id, qe_err *err);
/* All runs in id order; *out is an array of *n runs (qe_store_runs_free). */
int qe_store_runs_list(qe_store *s, qe_store_run **out, size_t *n, qe_err *err);
void qe_store_runs_free(qe_store_run *runs, size_t n);

/* Commits one response in its own transaction before returning 0.
 * An existing 'ok' row is final: the put is then a no-op (*stored = 0).
 * A 'failed' row is replaced by any later put. stored may be NULL.
 * Disk full / I/O failure: QE_EIO, "disk full while storing <task> doc N
 * repeat R ..."; the transaction is rolled back and earlier rows are intact. */
int qe_store_put_response(qe_store *s, int64_t run_id, const qe_store_response *r, int *stored,
                          qe_err *err);

/* Group commit: stores n rows in one transaction (BEGIN IMMEDIATE ...
 * COMMIT), so all of them cost one fsync. All or nothing: when this returns
 * 0 every row has committed; on any failure none of them is in the store
 * (rolled back; rows from earlier calls are intact), including after a
 * kill -9 at any instant. Each row follows qe_store_put_response's rule ('ok'
 * is final, 'failed' is replaced). *stored_count (may be NULL) = rows that
 * were inserted or replaced. Every row is validated first (QE_EINVAL names
 * it). Disk full / I/O failure: QE_EIO, "disk full while storing <task> doc N
 * repeat R (in a batch of K answers, none of which was stored) ...". n = 0
 * is a no-op. The rows' strings are only read during the call. */
int qe_store_put_responses(qe_store *s, int64_t run_id, const qe_store_response *rows, size_t n,
                           int *stored_count, qe_err *err);

/* Seconds the commit of the last successful or failed put took: the
 * COMMIT of a batch, or the single autocommitted row of a put of one (its
 * insert included). With synchronous=FULL this is mostly the fsync, so it
 * tells a store on tmpfs or a fast disk (tens of microseconds) from one on
 * a disk that syncs (hundreds and more). 0 before the first put. */
double qe_store_last_commit_s(const qe_store *s);

/* *has = 1 when (task, doc, repeat) has an 'ok' row. */
int qe_store_has_ok(qe_store *s, int64_t run_id, const char *task, int64_t doc_id, int repeat,
                    int *has, qe_err *err);
/* The 'ok' keys of one task, for resume (free with qe_store_keys_free). */
int qe_store_done_keys(qe_store *s, int64_t run_id, const char *task, qe_store_keys *out,
                       qe_err *err);
int qe_store_keys_contains(const qe_store_keys *k, int64_t doc_id, int repeat);
void qe_store_keys_free(qe_store_keys *k);

/* Counts rows of one task (task NULL: all tasks). ok/failed may be NULL. */
int qe_store_counts(qe_store *s, int64_t run_id, const char *task, int64_t *ok, int64_t *failed,
                    qe_err *err);

/* Calls cb for each row of the run, in (task, doc_id, repeat) order, only
 * for `task` when non-NULL, filtered by `which`. cb returning non-zero stops
 * the walk and that value is returned. The row's pointers live until cb
 * returns. Failed rows with their reasons: which = QE_STORE_FAILED. */
typedef int (*qe_store_row_cb)(const qe_store_response *r, void *ctx);
int qe_store_foreach(qe_store *s, int64_t run_id, const char *task, enum qe_store_filter which,
                     qe_store_row_cb cb, void *ctx, qe_err *err);

/* The 'ok' rows of one task (task non-NULL) in (doc_id, repeat) order,
 * reading only what scoring needs: task, doc_id, repeat, prompt, content,
 * reasoning, finish_reason, the token counts, latency_ms and attempts are
 * filled; request_json, error, server_model and created_at are NULL. Same
 * callback rules as qe_store_foreach; cheaper per row. */
int qe_store_foreach_answers(qe_store *s, int64_t run_id, const char *task, qe_store_row_cb cb,
                             void *ctx, qe_err *err);

#endif
