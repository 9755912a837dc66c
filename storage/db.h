/*
 * db.h -- the embeddable storage engine: one data directory.
 *
 * The server, the query layer and the DBA tools all open a struct qt_db.
 * Layout of the directory, the write path, flush, recovery and the
 * durability promise are in DESIGN.md "Storage engine".
 *
 * Write: qt_db_write() takes a batch of lines (format/batch.h).  Each line
 * is checked and its series resolved in the catalog; a bad line (type
 * conflict, limit) is rejected with a reason through the callback while
 * the good lines of the same batch are stored.  The good lines go to the
 * WAL as one record (group-committed with concurrent writers) and then to
 * the memtable.  When qt_db_write returns 0, the accepted lines are as
 * durable as the fsync policy promises.
 *
 * Thread-safe: any number of concurrent writers and readers.  A failed
 * write or fsync of the WAL, a segment or the MANIFEST puts the database in
 * read-only mode (writes fail with QT_EREADONLY, reads keep working) until
 * it is reopened; qt_db_health() says why.
 */
#ifndef QT_DB_H
#define QT_DB_H

#include "format/batch.h"
#include "storage/catalog.h"
#include "storage/io.h"
#include "storage/wallog.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qt_db;
struct qt_retention_rule; /* storage/retention.h */

struct qt_db_opts {
    const char *dir;
    enum qt_io_kind io_kind;    /* auto, uring, posix */
    struct qt_io *io;           /* optional, not owned: use this handle (tests) */
    enum qt_fsync_policy fsync; /* default always */
    uint32_t fsync_interval_ms; /* for QT_FSYNC_INTERVAL */
    size_t mem_budget_bytes;    /* memtable budget; 0 = QT_MEM_BUDGET_DEFAULT */
    uint32_t flush_age_ms;      /* flush data older than this; 0 = QT_FLUSH_AGE_DEFAULT_MS */
    int64_t shard_duration_ns;  /* new databases; 0 = QT_SHARD_DURATION_DEFAULT */
    uint32_t series_max;        /* 0 = catalog default */
    bool read_only;             /* inspect only: no WAL truncation, no writes */
    bool no_background;         /* tests: no flusher thread (flush explicitly) */
    /* Operations (storage/ops.h, design/ops.md). */
    uint32_t
        compact_idle_ms; /* auto-compact a shard idle this long; 0 = QT_COMPACT_IDLE_DEFAULT_MS */
    bool no_auto_ops;    /* no background compaction / retention thread */
    const struct qt_retention_rule *retention; /* copied at open; NULL: keep forever */
    uint32_t n_retention;
    const char *rollups; /* rollup rules (storage/rollup.h), e.g. "air=1m,1h"; NULL: none */
};

/* Open (creating if needed) and recover.  The directory is locked: a second
 * open of the same directory fails with QT_EBUSY. */
int qt_db_open(const struct qt_db_opts *opts, struct qt_db **out);

/* Flush the memtable to segments, sync, release the lock and free.
 * Returns the first error met (the data stays recoverable from the WAL). */
int qt_db_close(struct qt_db *db);

/* Called once per rejected line: its index in the batch, the error code and
 * a human-readable reason (valid during the call). */
typedef void (*qt_db_reject_fn)(void *arg, uint32_t line, int code, const char *reason);

struct qt_write_result {
    uint32_t lines_ok;
    uint32_t lines_rejected;
    uint64_t points; /* fields stored */
};

/*
 * Store lines[0..n).  Returns 0 when every accepted line is stored (some may
 * have been rejected: see res and the callback), QT_EREADONLY when the
 * database is read-only, or the error that made it so.  reject may be NULL.
 */
int qt_db_write(struct qt_db *db, const struct qt_batch_line *lines, uint32_t n,
                qt_db_reject_fn reject, void *arg, struct qt_write_result *res);

/* Flush the current memtable to segments now and wait for it. */
int qt_db_flush(struct qt_db *db);

/* Make every acknowledged write durable now (for policies interval/none). */
int qt_db_sync(struct qt_db *db);

struct qt_catalog *qt_db_catalog(struct qt_db *db);
/* The shard duration of the open database (fixed when it was created). */
int64_t qt_db_shard_duration(const struct qt_db *db);
struct qt_io *qt_db_io(struct qt_db *db);
const char *qt_db_dir(const struct qt_db *db);

struct qt_db_health {
    bool read_only;
    const char *reason; /* static; "" when healthy */
    const char *io_backend;
    const char *fsync_policy;
    uint32_t damaged_segments; /* segments that failed validation at open */
};
void qt_db_health(struct qt_db *db, struct qt_db_health *h);

struct qt_db_stats {
    uint64_t lines_written, points_written, lines_rejected;
    uint64_t flushes, flush_points, flush_ns;
    uint64_t mem_bytes, mem_points;
    uint64_t segments, segment_bytes, segment_points;
    uint64_t series;
    uint64_t replay_records, replay_points, replay_ns, replay_torn_bytes;
    struct qt_wlog_stats wal;
};
void qt_db_stats(struct qt_db *db, struct qt_db_stats *s);

/* Live segments of one shard (time partition), summed. */
struct qt_db_shard_info {
    int64_t start_ns; /* first timestamp the shard covers */
    uint32_t segments;
    uint64_t bytes;  /* segment file bytes */
    uint64_t points; /* points stored in its segments */
};

/*
 * Per-shard totals of the live segments, ascending by start_ns, into
 * out[0..cap).  Returns the number of shards, which may exceed cap (then
 * only the first cap are written; call again with a bigger array).  A
 * consistent snapshot of one engine version; the memtable is not counted.
 */
uint32_t qt_db_shard_totals(struct qt_db *db, struct qt_db_shard_info *out, uint32_t cap);

/* Report the duration of every WAL sync to fn (e.g. a latency histogram);
 * fn runs on the syncing thread and must be cheap and thread-safe.  NULL
 * removes it.  No effect on a read-only open (no WAL). */
void qt_db_set_sync_observer(struct qt_db *db, qt_wlog_sync_fn fn, void *arg);

#endif
