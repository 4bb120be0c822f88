/* store: the durable response store (SQLite, WAL); see store.h and
 * docs/store.md for the schema, the durability settings and the locking.
 *
 * The rules that matter here:
 *   - an existing file is inspected through a read-only connection before a
 *     writable one is ever opened, so a foreign, corrupt or newer file is
 *     refused without a single byte of it being written;
 *   - every put is one transaction with synchronous=FULL -- one row
 *     (autocommit) or a batch (BEGIN IMMEDIATE ... COMMIT, one fsync for
 *     all of it) -- so "put returned 0" means "on disk", and a batch is
 *     either wholly on disk or wholly absent;
 *   - the upsert never replaces an 'ok' row. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

/* A writer waits this long for a reader's WAL snapshot before SQLITE_BUSY. */
#define STORE_BUSY_TIMEOUT_MS 10000
#define STORE_NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

struct qe_store {
    sqlite3 *db;
    char *path;
    int read_only;
    int lock_fd; /* -1 when read-only */
    sqlite3_stmt *put;
    sqlite3_stmt *has_ok;
    double last_commit_s; /* how long the last put's commit took */
};

static const char *const schema_sql =
    "CREATE TABLE runs("
    " id INTEGER PRIMARY KEY,"
    " fingerprint TEXT NOT NULL UNIQUE,"
    " config TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " created_at TEXT NOT NULL,"
    " finished_at TEXT);"
    "CREATE TABLE responses("
    " run_id INTEGER NOT NULL REFERENCES runs(id),"
    " task TEXT NOT NULL,"
    " doc_id INTEGER NOT NULL,"
    " repeat INTEGER NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('ok','failed')),"
    " prompt TEXT,"
    " request TEXT,"
    " content TEXT,"
    " reasoning TEXT,"
    " finish_reason TEXT,"
    " prompt_tokens INTEGER,"
    " completion_tokens INTEGER,"
    " latency_ms REAL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " error TEXT,"
    " server_model TEXT,"
    " created_at TEXT NOT NULL,"
    " PRIMARY KEY (run_id, task, doc_id, repeat));";

/* 'ok' is final: the DO UPDATE only fires over a 'failed' row. */
static const char *const put_sql =
    "INSERT INTO responses(run_id, task, doc_id, repeat, status, prompt, request, content,"
    " reasoning, finish_reason, prompt_tokens, completion_tokens, latency_ms, attempts, error,"
    " server_model, created_at)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    " ON CONFLICT(run_id, task, doc_id, repeat) DO UPDATE SET"
    " status = excluded.status, prompt = excluded.prompt, request = excluded.request,"
    " content = excluded.content, reasoning = excluded.reasoning,"
    " finish_reason = excluded.finish_reason, prompt_tokens = excluded.prompt_tokens,"
    " completion_tokens = excluded.completion_tokens, latency_ms = excluded.latency_ms,"
    " attempts = excluded.attempts, error = excluded.error,"
    " server_model = excluded.server_model, created_at = excluded.created_at"
    " WHERE responses.status <> 'ok'";

static const char *const has_ok_sql =
    "SELECT 1 FROM responses WHERE run_id = ?1 AND task = ?2 AND doc_id = ?3 AND repeat = ?4"
    " AND status = 'ok'";

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM: return QE_ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_SCHEMA: return QE_ESTATE;
    case SQLITE_TOOBIG: return QE_ELIMIT;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_MISUSE: return QE_EINVAL;
    default: return QE_EIO;
    }
}

/* "<what> in <path>: <sqlite message>" with the status mapped from rc. */
static int db_fail(sqlite3 *db, const char *path, int rc, qe_err *err, const char *what)
{
    const char *m = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    return qe_err_set(err, map_rc(rc), "%s in %s: %s", what, path, m);
}

static int exec(sqlite3 *db, const char *path, const char *sql, qe_err *err, const char *what)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_fail(db, path, rc, err, what);
}

/* Runs a one-row pragma/query and copies its first column as text. */
static int query_text(sqlite3 *db, const char *path, const char *sql, char *out, size_t cap,
                      qe_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(db, path, rc, err, sql);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        out[0] = '\0';
        rc = SQLITE_OK;
    }
    int ret = rc == SQLITE_OK ? 0 : db_fail(db, path, rc, err, sql);
    sqlite3_finalize(st);
    return ret;
}

static int query_int(sqlite3 *db, const char *path, const char *sql, long long *v, qe_err *err)
{
    char t[64];
    int rc = query_text(db, path, sql, t, sizeof t, err);
    if (rc)
        return rc;
    *v = strtoll(t, NULL, 10);
    return 0;
}

static int refuse_corrupt(const char *path, const char *detail, qe_err *err)
{
    return qe_err_set(err, QE_ESTATE,
                      "%s is not a usable qeval store (%s); it was left untouched: move it aside "
                      "to start a new store",
                      path, detail);
}

/* How inspect_existing connects to a file it has not trusted yet. */
enum probe_mode {
    PROBE_READONLY,  /* the normal case: cannot write anything */
    PROBE_IMMUTABLE, /* ?immutable=1: no -shm needed (see may_open_immutable) */
    PROBE_RECOVER,   /* read-write, query_only, no checkpoint on close: can
                        rebuild the WAL index (-shm) after a crash, which a
                        read-only connection cannot, and still never writes
                        the database file itself */
};

static int open_probe(const char *path, enum probe_mode mode, sqlite3 **out, qe_err *err)
{
    *out = NULL;
    qe_buf uri = QE_BUF_INIT;
    const char *name = path;
    int flags = (mode == PROBE_RECOVER ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) |
                SQLITE_OPEN_NOMUTEX;
    if (mode == PROBE_IMMUTABLE) {
        static const char hex[] = "0123456789ABCDEF";
        int bad = qe_buf_puts(&uri, "file:");
        for (const unsigned char *p = (const unsigned char *)path; *p && !bad; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                strchr("/-._~", *p))
                bad = qe_buf_putc(&uri, (char)*p);
            else
                bad = qe_buf_printf(&uri, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
        }
        if (bad || qe_buf_puts(&uri, "?immutable=1")) {
            qe_buf_free(&uri);
            return qe_err_set(err, QE_ENOMEM, "out of memory");
        }
        name = uri.data;
        flags |= SQLITE_OPEN_URI;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(name, &db, flags, NULL);
    qe_buf_free(&uri);
    if (rc != SQLITE_OK) {
        int ret = qe_err_set(err, map_rc(rc) == QE_ESTATE ? QE_ESTATE : QE_EIO,
                             "cannot open %s: %s", path,
                             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return ret;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
    if (mode == PROBE_RECOVER) {
        /* Must hold before any statement runs: closing this connection
         * would otherwise checkpoint the WAL into the database file. */
        int off = 0;
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &off);
        if (rc != SQLITE_OK || off != 1 ||
            sqlite3_exec(db, "PRAGMA query_only=1", NULL, NULL, NULL) != SQLITE_OK) {
            sqlite3_close(db);
            return qe_err_set(err, QE_EIO, "cannot open %s safely for inspection", path);
        }
    }
    *out = db;
    return 0;
}

/* After kill -9 SQLite's own crash recovery must run before anyone can
 * read, and a read-only connection cannot run it: rebuilding the WAL index
 * (-shm) of a WAL database, or rolling back the hot -journal left when the
 * kill hit the switch of a new store into WAL mode. Both restore the last
 * committed state, as any SQLite client opening the file would. */
static int needs_recovery(sqlite3 *db, const char *path)
{
    int x = sqlite3_extended_errcode(db);
    if (x != SQLITE_READONLY_RECOVERY && x != SQLITE_READONLY_CANTINIT &&
        x != SQLITE_READONLY_CANTLOCK && x != SQLITE_READONLY_ROLLBACK)
        return 0;
    return access(path, W_OK) == 0;
}

/* Directory part of path into d (at least "."). */
static void dir_of(const char *path, char *d, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(d, cap, ".");
    else if (slash == path)
        snprintf(d, cap, "/");
    else
        snprintf(d, cap, "%.*s", (int)(slash - path), path);
}

/* A WAL database in a directory we cannot write has no -shm to share, so a
 * plain read-only open fails. When there is also no -wal file, no writer can
 * be active (it would need both files in that directory), and the file is
 * safe to read as immutable. */
static int may_open_immutable(sqlite3 *db, const char *path)
{
    int rc = sqlite3_errcode(db) & 0xff;
    if (rc != SQLITE_READONLY && rc != SQLITE_CANTOPEN)
        return 0;
    char d[4096];
    dir_of(path, d, sizeof d);
    if (access(d, W_OK) == 0)
        return 0;
    qe_buf wal = QE_BUF_INIT;
    if (qe_buf_printf(&wal, "%s-wal", path) != 0)
        return 0;
    int no_wal = access(wal.data, F_OK) != 0 && errno == ENOENT;
    qe_buf_free(&wal);
    return no_wal;
}

/* Inspects an existing file through a read-only connection. On success
 * *conn is that connection (caller closes) and *empty says whether the file
 * holds no tables yet (a fresh or half-created store that may be set up). */
static int inspect_existing(const char *path, sqlite3 **conn, int *empty, qe_err *err)
{
    *conn = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return qe_err_set(err, QE_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return qe_err_set(err, QE_EIO, "%s is not a regular file", path);
    if (st.st_size > 0) {
        /* Look at the magic ourselves first: a clearer message than
         * "file is not a database" for a results JSON passed by mistake. */
        char head[16] = {0};
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return qe_err_set(err, QE_EIO, "%s: %s", path, strerror(errno));
        ssize_t n = read(fd, head, sizeof head);
        close(fd);
        if (n != (ssize_t)sizeof head || memcmp(head, "SQLite format 3", 16) != 0)
            return refuse_corrupt(path, "not an SQLite database", err);
    }
    sqlite3 *db = NULL;
    int rc = open_probe(path, PROBE_READONLY, &db, err);
    if (rc)
        return rc;
    char check[512];
    long long app = 0, ver = 0, tables = 0;
    qe_err e2 = {0};
    rc = query_text(db, path, "PRAGMA quick_check(1)", check, sizeof check, &e2);
    enum probe_mode retry = PROBE_READONLY;
    if (rc != 0 && needs_recovery(db, path))
        retry = PROBE_RECOVER;
    else if (rc != 0 && may_open_immutable(db, path))
        retry = PROBE_IMMUTABLE;
    if (retry != PROBE_READONLY) {
        sqlite3_close(db);
        if ((rc = open_probe(path, retry, &db, err)))
            return rc;
        memset(&e2, 0, sizeof e2);
        rc = query_text(db, path, "PRAGMA quick_check(1)", check, sizeof check, &e2);
    }
    if (rc != 0) {
        int primary = sqlite3_errcode(db) & 0xff;
        sqlite3_close(db);
        if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
            return refuse_corrupt(path, e2.msg, err);
        if (err)
            *err = e2;
        return e2.code;
    }
    if (strcmp(check, "ok") != 0) {
        char d[600];
        snprintf(d, sizeof d, "corrupt: quick_check says \"%.500s\"", check);
        sqlite3_close(db);
        return refuse_corrupt(path, d, err);
    }
    if ((rc = query_int(db, path, "PRAGMA application_id", &app, err)) ||
        (rc = query_int(db, path, "PRAGMA user_version", &ver, err)) ||
        (rc = query_int(db, path, "SELECT count(*) FROM sqlite_master", &tables, err))) {
        sqlite3_close(db);
        return rc;
    }
    if (app == 0 && ver == 0 && tables == 0) {
        *empty = 1;
    } else if (app != QE_STORE_APP_ID) {
        sqlite3_close(db);
        return refuse_corrupt(path, "an SQLite database, but not one qeval wrote", err);
    } else if (ver > QE_STORE_SCHEMA_VERSION) {
        sqlite3_close(db);
        return qe_err_set(err, QE_ESTATE,
                          "%s was written by a newer qeval (store schema version %lld; this "
                          "build understands up to %d): upgrade qeval to use it",
                          path, ver, QE_STORE_SCHEMA_VERSION);
    } else if (ver != QE_STORE_SCHEMA_VERSION) {
        char d[96];
        snprintf(d, sizeof d, "unknown store schema version %lld", ver);
        sqlite3_close(db);
        return refuse_corrupt(path, d, err);
    } else {
        *empty = 0;
    }
    *conn = db;
    return 0;
}

/* Takes the writer's lock: an exclusive flock on "<path>-lock", released by
 * the kernel when the process dies, so kill -9 never leaves a stale lock. */
static int take_lock(const char *path, int *fd_out, qe_err *err)
{
    /* SQLite must create -wal and -shm next to the file: even with an
     * existing, writable lock file, an unwritable directory is fatal. */
    char d[4096];
    dir_of(path, d, sizeof d);
    if (access(d, W_OK) != 0 && (errno == EACCES || errno == EROFS || errno == EPERM))
        return qe_err_set(err, QE_EIO,
                          "output directory %s is not writable (%s): qeval must create its "
                          "store %s there",
                          d, strerror(errno), path);
    qe_buf lp = QE_BUF_INIT;
    if (qe_buf_printf(&lp, "%s-lock", path) != 0)
        return qe_err_set(err, QE_ENOMEM, "out of memory");
    int fd = open(lp.data, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        char dir[4096];
        dir_of(path, dir, sizeof dir);
        int ret;
        if (e == EACCES || e == EPERM || e == EROFS)
            ret = qe_err_set(err, QE_EIO,
                             "output directory %s is not writable (%s): qeval must create "
                             "its store %s there",
                             dir, strerror(e), path);
        else
            ret = qe_err_set(err, QE_EIO, "cannot create %s: %s", lp.data, strerror(e));
        qe_buf_free(&lp);
        return ret;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = {0};
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        qe_buf_free(&lp);
        if (e == EWOULDBLOCK)
            return qe_err_set(err, QE_ESTATE,
                              "store %s is in use by another qeval process (pid %s); wait for "
                              "it to finish or stop it",
                              path, pid[0] ? pid : "unknown");
        return qe_err_set(err, QE_EIO, "cannot lock %s-lock: %s", path, strerror(e));
    }
    /* The pid is informational only (for the message above). */
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* not fatal: the flock is what excludes other writers */
    }
    qe_buf_free(&lp);
    *fd_out = fd;
    return 0;
}

void qe_store_close(qe_store *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->put);
    sqlite3_finalize(s->has_ok);
    sqlite3_close(s->db);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    free(s->path);
    free(s);
}

const char *qe_store_path(const qe_store *s)
{
    return s->path;
}

static int setup_writer(qe_store *s, int need_schema, qe_err *err)
{
    sqlite3 *db = s->db;
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
    char mode[32];
    int rc = query_text(db, s->path, "PRAGMA journal_mode=WAL", mode, sizeof mode, err);
    if (rc)
        return rc;
    if (strcmp(mode, "wal") != 0)
        return qe_err_set(err, QE_EIO, "%s: cannot switch to WAL mode (journal_mode is %s)",
                          s->path, mode);
    if ((rc = exec(db, s->path, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", err,
                   "configuring store")))
        return rc;
    if (need_schema) {
        qe_buf sql = QE_BUF_INIT;
        if (qe_buf_printf(&sql,
                          "BEGIN IMMEDIATE; %s PRAGMA application_id=%d; PRAGMA user_version=%d; "
                          "COMMIT;",
                          schema_sql, QE_STORE_APP_ID, QE_STORE_SCHEMA_VERSION) != 0)
            return qe_err_set(err, QE_ENOMEM, "out of memory");
        rc = exec(db, s->path, sql.data, err, "creating store schema");
        qe_buf_free(&sql);
        if (rc) {
            if (!sqlite3_get_autocommit(db))
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
    if ((rc = sqlite3_prepare_v2(db, put_sql, -1, &s->put, NULL)) != SQLITE_OK)
        return db_fail(db, s->path, rc, err, "preparing insert");
    return 0;
}

int qe_store_open(const char *path, int read_only, qe_store **out, qe_err *err)
{
    *out = NULL;
    if (!path || !*path)
        return qe_err_set(err, QE_EINVAL, "store path is empty");
    qe_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return qe_err_set(err, QE_ENOMEM, "out of memory");
    }
    s->read_only = read_only;
    s->lock_fd = -1;
    int rc;
    struct stat st;
    int exists = stat(path, &st) == 0;
    if (read_only) {
        if (!exists) {
            rc = qe_err_set(err, QE_EIO, "no qeval store at %s: %s", path, strerror(errno));
            goto fail;
        }
        int empty = 0;
        if ((rc = inspect_existing(path, &s->db, &empty, err)))
            goto fail;
        if (empty) {
            rc = qe_err_set(err, QE_ESTATE, "%s is empty: not a qeval store yet", path);
            goto fail;
        }
    } else {
        if ((rc = take_lock(path, &s->lock_fd, err)))
            goto fail;
        int empty = 1;
        if (exists) {
            sqlite3 *probe = NULL;
            if ((rc = inspect_existing(path, &probe, &empty, err)))
                goto fail;
            sqlite3_close(probe);
        }
        /* NOMUTEX: a store is used by one thread at a time (store.h), so
         * SQLite's per-call connection mutex is pure cost (20 lock/unlock
         * pairs per stored row) */
        rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
            rc = qe_err_set(err, QE_EIO, "cannot open %s: %s", path,
                            s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
            goto fail;
        }
        if ((rc = setup_writer(s, empty, err)))
            goto fail;
    }
    rc = sqlite3_prepare_v2(s->db, has_ok_sql, -1, &s->has_ok, NULL);
    if (rc != SQLITE_OK) {
        rc = db_fail(s->db, path, rc, err, "preparing query");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    qe_store_close(s);
    return rc;
}

static int refuse_read_only(qe_store *s, qe_err *err)
{
    return qe_err_set(err, QE_EINVAL, "store %s was opened read-only", s->path);
}

int qe_store_run_find(qe_store *s, const char *fingerprint, int64_t *run_id, qe_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT id FROM runs WHERE fingerprint = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(s->db, s->path, rc, err, "looking up run");
    sqlite3_bind_text(st, 1, fingerprint, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int ret;
    if (rc == SQLITE_ROW) {
        *run_id = sqlite3_column_int64(st, 0);
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        ret = qe_err_set(err, QE_ESTATE, "no run with fingerprint %.64s in %s", fingerprint,
                         s->path);
    } else {
        ret = db_fail(s->db, s->path, rc, err, "looking up run");
    }
    sqlite3_finalize(st);
    return ret;
}

int qe_store_run_get_or_create(qe_store *s, const char *fingerprint, const char *config_json,
                               const char *model, int64_t *run_id, int *created, qe_err *err)
{
    if (created)
        *created = 0;
    if (!fingerprint || !*fingerprint)
        return qe_err_set(err, QE_EINVAL, "run fingerprint is empty");
    qe_err e2 = {0};
    int rc = qe_store_run_find(s, fingerprint, run_id, &e2);
    if (rc == 0)
        return 0;
    if (rc != QE_ESTATE) {
        if (err)
            *err = e2;
        return rc;
    }
    if (s->read_only)
        return refuse_read_only(s, err);
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(s->db,
                            "INSERT INTO runs(fingerprint, config, model, created_at)"
                            " VALUES(?1, ?2, ?3, " STORE_NOW ")",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(s->db, s->path, rc, err, "creating run");
    sqlite3_bind_text(st, 1, fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, config_json ? config_json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, model ? model : "", -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s->db, s->path, rc, err, "creating run");
    *run_id = sqlite3_last_insert_rowid(s->db);
    if (created)
        *created = 1;
    return 0;
}

int qe_store_run_finish(qe_store *s, int64_t run_id, qe_err *err)
{
    if (s->read_only)
        return refuse_read_only(s, err);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "UPDATE runs SET finished_at = " STORE_NOW " WHERE id = ?1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(s->db, s->path, rc, err, "finishing run");
    sqlite3_bind_int64(st, 1, run_id);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s->db, s->path, rc, err, "finishing run");
    if (sqlite3_changes(s->db) != 1)
        return qe_err_set(err, QE_EINVAL, "no run %lld in %s", (long long)run_id, s->path);
    return 0;
}

static char *dup_col(sqlite3_stmt *st, int i, int *oom)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return NULL;
    char *d = strdup((const char *)t);
    if (!d)
        *oom = 1;
    return d;
}

void qe_store_runs_free(qe_store_run *runs, size_t n)
{
    for (size_t i = 0; runs && i < n; i++) {
        free(runs[i].fingerprint);
        free(runs[i].config_json);
        free(runs[i].model);
        free(runs[i].created_at);
        free(runs[i].finished_at);
    }
    free(runs);
}

int qe_store_runs_list(qe_store *s, qe_store_run **out, size_t *n, qe_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT id, fingerprint, config, model, created_at, finished_at"
                                " FROM runs ORDER BY id",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(s->db, s->path, rc, err, "listing runs");
    qe_store_run *v = NULL;
    size_t len = 0, cap = 0;
    int oom = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 8;
            qe_store_run *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                oom = 1;
                break;
            }
            v = nv;
            cap = nc;
        }
        qe_store_run *r = &v[len++];
        r->id = sqlite3_column_int64(st, 0);
        r->fingerprint = dup_col(st, 1, &oom);
        r->config_json = dup_col(st, 2, &oom);
        r->model = dup_col(st, 3, &oom);
        r->created_at = dup_col(st, 4, &oom);
        r->finished_at = dup_col(st, 5, &oom);
        if (oom)
            break;
    }
    int ret = 0;
    if (oom)
        ret = qe_err_set(err, QE_ENOMEM, "out of memory listing runs");
    else if (rc != SQLITE_DONE)
        ret = db_fail(s->db, s->path, rc, err, "listing runs");
    sqlite3_finalize(st);
    if (ret) {
        qe_store_runs_free(v, len);
        return ret;
    }
    *out = v;
    *n = len;
    return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *t)
{
    if (t)
        sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_count_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v >= 0)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* Why a failed write looks like "no space", or NULL. SQLite reports a short
 * write as SQLITE_FULL only for ENOSPC, and the errno it keeps may already
 * be overwritten, so the file system and RLIMIT_FSIZE are checked too. */
static const char *out_of_space(qe_store *s, int rc, int sys)
{
    if ((rc & 0xff) == SQLITE_FULL || sys == ENOSPC)
        return "no space left on device";
#ifdef EDQUOT
    if (sys == EDQUOT)
        return "disk quota exceeded";
#endif
    if (sys == EFBIG)
        return "file size limit reached";
    if ((rc & 0xff) != SQLITE_IOERR)
        return NULL;
    char d[4096];
    dir_of(s->path, d, sizeof d);
    struct statvfs vfs;
    if (statvfs(d, &vfs) == 0 && (unsigned long long)vfs.f_bavail * vfs.f_frsize < (1u << 20))
        return "no space left on device";
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        const char *sfx[] = {"", "-wal"};
        for (int i = 0; i < 2; i++) {
            qe_buf f = QE_BUF_INIT;
            struct stat st;
            int near = qe_buf_printf(&f, "%s%s", s->path, sfx[i]) == 0 &&
                       stat(f.data, &st) == 0 &&
                       (unsigned long long)st.st_size + 65536 >= (unsigned long long)rl.rlim_cur;
            qe_buf_free(&f);
            if (near)
                return "file size limit reached";
        }
    }
    return NULL;
}

/* The message a user reads when a put fails: disk-full cases say so.
 * batch_n > 1 adds which batch the row was in (none of it was stored). */
static int put_fail(qe_store *s, int rc, const qe_store_response *r, size_t batch_n, qe_err *err)
{
    int sys = sqlite3_system_errno(s->db);
    const char *m = sqlite3_errmsg(s->db);
    const char *why = out_of_space(s, rc, sys);
    char bn[96] = "";
    if (batch_n > 1)
        snprintf(bn, sizeof bn, " (in a batch of %zu answers, none of which was stored)",
                 batch_n);
    if (why)
        return qe_err_set(err, QE_EIO,
                          "disk full while storing %s doc %lld repeat %d%s in %s (%s: %s); "
                          "answers stored before it are intact",
                          r->task, (long long)r->doc_id, r->repeat, bn, s->path, m, why);
    if ((rc & 0xff) == SQLITE_IOERR)
        return qe_err_set(err, QE_EIO,
                          "write failed while storing %s doc %lld repeat %d%s in %s (%s%s%s); "
                          "answers stored before it are intact",
                          r->task, (long long)r->doc_id, r->repeat, bn, s->path, m,
                          sys ? ": " : "", sys ? strerror(sys) : "");
    return qe_err_set(err, map_rc(rc), "storing %s doc %lld repeat %d%s in %s: %s", r->task,
                      (long long)r->doc_id, r->repeat, bn, s->path, m);
}

static int check_row(const qe_store_response *r, qe_err *err)
{
    if (!r->task || !*r->task)
        return qe_err_set(err, QE_EINVAL, "response without a task name");
    if (r->doc_id < 0 || r->repeat < 0)
        return qe_err_set(err, QE_EINVAL, "%s: negative doc id %lld or repeat %d", r->task,
                          (long long)r->doc_id, r->repeat);
    return 0;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* created_at of the rows of one put: what SQLite's STORE_NOW would give
 * (UTC, milliseconds truncated, as sqlite3's 'now' from gettimeofday), once
 * per put instead of once per row. */
static void stamp_now(char out[48])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t sec = ts.tv_sec;
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

/* Runs the upsert for one row inside whatever transaction is open (none:
 * autocommit). 0 and *changed, or the raw SQLite code of the failure. */
static int step_row(qe_store *s, int64_t run_id, const qe_store_response *r, const char *now,
                    int *changed)
{
    sqlite3_stmt *st = s->put;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, r->task, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->doc_id);
    sqlite3_bind_int(st, 4, r->repeat);
    sqlite3_bind_text(st, 5, r->ok ? "ok" : "failed", -1, SQLITE_STATIC);
    bind_text_or_null(st, 6, r->prompt);
    bind_text_or_null(st, 7, r->request_json);
    bind_text_or_null(st, 8, r->content);
    bind_text_or_null(st, 9, r->reasoning);
    bind_text_or_null(st, 10, r->finish_reason);
    bind_count_or_null(st, 11, r->prompt_tokens);
    bind_count_or_null(st, 12, r->completion_tokens);
    if (r->latency_ms >= 0)
        sqlite3_bind_double(st, 13, r->latency_ms);
    else
        sqlite3_bind_null(st, 13);
    sqlite3_bind_int(st, 14, r->attempts);
    bind_text_or_null(st, 15, r->error);
    bind_text_or_null(st, 16, r->server_model);
    sqlite3_bind_text(st, 17, now, -1, SQLITE_STATIC);
    /* every parameter is bound on every call: no clear_bindings needed */
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        *changed = sqlite3_changes(s->db) > 0;
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

/* An I/O error can leave a transaction open; end it so the store stays at
 * the last commit and later calls do not see a half write. */
static void rollback_if_open(qe_store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int qe_store_put_response(qe_store *s, int64_t run_id, const qe_store_response *r, int *stored,
                          qe_err *err)
{
    if (stored)
        *stored = 0;
    if (s->read_only)
        return refuse_read_only(s, err);
    int ret = check_row(r, err);
    if (ret)
        return ret;
    int changed = 0;
    char now[48];
    stamp_now(now);
    double t0 = mono_s();
    int rc = step_row(s, run_id, r, now, &changed); /* and its commit, when autocommit */
    s->last_commit_s = mono_s() - t0;
    if (rc) {
        ret = put_fail(s, rc, r, 1, err);
        rollback_if_open(s);
        return ret;
    }
    if (stored)
        *stored = changed;
    return 0;
}

int qe_store_put_responses(qe_store *s, int64_t run_id, const qe_store_response *rows, size_t n,
                           int *stored_count, qe_err *err)
{
    if (stored_count)
        *stored_count = 0;
    if (s->read_only)
        return refuse_read_only(s, err);
    if (n == 0)
        return 0;
    if (!rows)
        return qe_err_set(err, QE_EINVAL, "no rows to store");
    if (n > (size_t)INT_MAX)
        return qe_err_set(err, QE_ELIMIT, "batch of %zu rows is too large", n);
    /* every row is checked before anything is written: a bad row refuses
     * the whole batch */
    for (size_t i = 0; i < n; i++) {
        int ret = check_row(&rows[i], err);
        if (ret)
            return ret;
    }
    if (n == 1)
        return qe_store_put_response(s, run_id, rows, stored_count, err);
    if (!sqlite3_get_autocommit(s->db))
        return qe_err_set(err, QE_ESTATE, "%s: a transaction is already open", s->path);
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int ret = put_fail(s, rc, &rows[0], n, err);
        rollback_if_open(s);
        return ret;
    }
    int count = 0;
    char now[48];
    stamp_now(now);
    for (size_t i = 0; i < n; i++) {
        int changed = 0;
        rc = step_row(s, run_id, &rows[i], now, &changed);
        if (rc) {
            int ret = put_fail(s, rc, &rows[i], n, err);
            rollback_if_open(s);
            return ret;
        }
        count += changed;
    }
    /* the one fsync of the batch (synchronous=FULL) happens here */
    double t0 = mono_s();
    rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    s->last_commit_s = mono_s() - t0;
    if (rc != SQLITE_OK) {
        int ret = put_fail(s, rc, &rows[0], n, err);
        rollback_if_open(s);
        return ret;
    }
    if (stored_count)
        *stored_count = count;
    return 0;
}

double qe_store_last_commit_s(const qe_store *s)
{
    return s->last_commit_s;
}

int qe_store_has_ok(qe_store *s, int64_t run_id, const char *task, int64_t doc_id, int repeat,
                    int *has, qe_err *err)
{
    sqlite3_stmt *st = s->has_ok;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, task, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, doc_id);
    sqlite3_bind_int(st, 4, repeat);
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW)
        *has = 1;
    else if (rc == SQLITE_DONE)
        *has = 0;
    else
        ret = db_fail(s->db, s->path, rc, err, "reading store");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

void qe_store_keys_free(qe_store_keys *k)
{
    if (!k)
        return;
    free(k->keys);
    k->keys = NULL;
    k->n = 0;
}

int qe_store_keys_contains(const qe_store_keys *k, int64_t doc_id, int repeat)
{
    size_t lo = 0, hi = k->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const qe_store_key *m = &k->keys[mid];
        if (m->doc_id == doc_id && m->repeat == repeat)
            return 1;
        if (m->doc_id < doc_id || (m->doc_id == doc_id && m->repeat < repeat))
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

int qe_store_done_keys(qe_store *s, int64_t run_id, const char *task, qe_store_keys *out,
                       qe_err *err)
{
    out->keys = NULL;
    out->n = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT doc_id, repeat FROM responses WHERE run_id = ?1 AND"
                                " task = ?2 AND status = 'ok' ORDER BY doc_id, repeat",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(s->db, s->path, rc, err, "reading store");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, task, -1, SQLITE_STATIC);
    size_t cap = 0;
    int ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            qe_store_key *nk = realloc(out->keys, nc * sizeof *nk);
            if (!nk) {
                ret = qe_err_set(err, QE_ENOMEM, "out of memory reading store");
                break;
            }
            out->keys = nk;
            cap = nc;
        }
        out->keys[out->n].doc_id = sqlite3_column_int64(st, 0);
        out->keys[out->n].repeat = sqlite3_column_int(st, 1);
        out->n++;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_fail(s->db, s->path, rc, err, "reading store");
    sqlite3_finalize(st);
    if (ret)
        qe_store_keys_free(out);
    return ret;
}

int qe_store_counts(qe_store *s, int64_t run_id, const char *task, int64_t *ok, int64_t *failed,
                    qe_err *err)
{
    int64_t c[2] = {0, 0};
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT status = 'ok', count(*) FROM responses WHERE run_id = ?1"
                                " AND (?2 IS NULL OR task = ?2) GROUP BY 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(s->db, s->path, rc, err, "counting responses");
    sqlite3_bind_int64(st, 1, run_id);
    bind_text_or_null(st, 2, task);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        c[sqlite3_column_int(st, 0) ? 1 : 0] = sqlite3_column_int64(st, 1);
    int ret = rc == SQLITE_DONE ? 0 : db_fail(s->db, s->path, rc, err, "counting responses");
    sqlite3_finalize(st);
    if (ret)
        return ret;
    if (ok)
        *ok = c[1];
    if (failed)
        *failed = c[0];
    return 0;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static int64_t col_count(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

int qe_store_foreach(qe_store *s, int64_t run_id, const char *task, enum qe_store_filter which,
                     qe_store_row_cb cb, void *ctx, qe_err *err)
{
    static const char *const sql =
        "SELECT task, doc_id, repeat, status, prompt, request, content, reasoning,"
        " finish_reason, prompt_tokens, completion_tokens, latency_ms, attempts, error,"
        " server_model, created_at FROM responses WHERE run_id = ?1"
        " AND (?2 IS NULL OR task = ?2) AND (?3 IS NULL OR status = ?3)"
        " ORDER BY task, doc_id, repeat";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(s->db, s->path, rc, err, "reading responses");
    sqlite3_bind_int64(st, 1, run_id);
    bind_text_or_null(st, 2, task);
    bind_text_or_null(st, 3, which == QE_STORE_OK ? "ok" : which == QE_STORE_FAILED ? "failed"
                                                                                     : NULL);
    int ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        qe_store_response r = {0};
        r.task = col_text(st, 0);
        r.doc_id = sqlite3_column_int64(st, 1);
        r.repeat = sqlite3_column_int(st, 2);
        const char *status = col_text(st, 3);
        r.ok = status && strcmp(status, "ok") == 0;
        r.prompt = col_text(st, 4);
        r.request_json = col_text(st, 5);
        r.content = col_text(st, 6);
        r.reasoning = col_text(st, 7);
        r.finish_reason = col_text(st, 8);
        r.prompt_tokens = col_count(st, 9);
        r.completion_tokens = col_count(st, 10);
        r.latency_ms = sqlite3_column_type(st, 11) == SQLITE_NULL ? -1.0
                                                                   : sqlite3_column_double(st, 11);
        r.attempts = sqlite3_column_int(st, 12);
        r.error = col_text(st, 13);
        r.server_model = col_text(st, 14);
        r.created_at = col_text(st, 15);
        if ((ret = cb(&r, ctx)) != 0)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_fail(s->db, s->path, rc, err, "reading responses");
    sqlite3_finalize(st);
    return ret;
}

int qe_store_foreach_answers(qe_store *s, int64_t run_id, const char *task, qe_store_row_cb cb,
                             void *ctx, qe_err *err)
{
    static const char *const sql =
        "SELECT doc_id, repeat, prompt, content, reasoning, finish_reason, prompt_tokens,"
        " completion_tokens, latency_ms, attempts FROM responses WHERE run_id = ?1"
        " AND task = ?2 AND status = 'ok' ORDER BY doc_id, repeat";
    if (!task)
        return qe_err_set(err, QE_EINVAL, "reading answers: no task named");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(s->db, s->path, rc, err, "reading responses");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, task, -1, SQLITE_STATIC);
    int ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        qe_store_response r = {0};
        r.task = task;
        r.ok = 1;
        r.doc_id = sqlite3_column_int64(st, 0);
        r.repeat = sqlite3_column_int(st, 1);
        r.prompt = col_text(st, 2);
        r.content = col_text(st, 3);
        r.reasoning = col_text(st, 4);
        r.finish_reason = col_text(st, 5);
        r.prompt_tokens = col_count(st, 6);
        r.completion_tokens = col_count(st, 7);
        r.latency_ms = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1.0
                                                                  : sqlite3_column_double(st, 8);
        r.attempts = sqlite3_column_int(st, 9);
        if ((ret = cb(&r, ctx)) != 0)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_fail(s->db, s->path, rc, err, "reading responses");
    sqlite3_finalize(st);
    return ret;
}
