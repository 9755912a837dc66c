/*
 * db_int.h -- engine internals shared by db.c, db_flush.c and scan.c.
 *
 * Versions: readers never lock the engine for the length of a scan.  They
 * take a reference to the current struct db_version (memtables + live
 * segments) and release it when done; flush publishes a new version and
 * the old one is freed when its last reader leaves.  Segments and memtables
 * are refcounted individually because consecutive versions share them.
 *
 * Locks (in acquisition order):
 *   flush_mu   one flush at a time
 *   swap_lock  rwlock: writers hold it shared from WAL append to memtable
 *              insert; flush takes it exclusively to swap the memtable and
 *              rotate the WAL, so every WAL record before the rotation
 *              boundary is in the memtable being flushed, and none after.
 *   ver_mu     guards db->ver (the current version pointer)
 *   state_mu   read-only state, flush wakeups, backpressure waits
 */
#ifndef QT_DB_INT_H
#define QT_DB_INT_H

#include "format/manifest.h"
#include "storage/db.h"
#include "storage/lastcache.h"
#include "storage/memtable.h"
#include "storage/segreader.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

struct db_mem {
    _Atomic int refs;
    struct qt_memtable *m;
    int64_t created_ms; /* monotonic, for flush by age */
};

struct db_seg {
    _Atomic int refs;
    struct qt_manifest_seg m;
    struct qt_segr *r; /* NULL when damaged */
    char path[PATH_MAX];
    bool drop_file; /* unlink on last release (compaction, retention) */
    /* rollup.c memo: holds a raw series of a ruled measurement under the
     * rules whose hash is ru_hash (0: not computed yet) */
    _Atomic uint64_t ru_hash;
    _Atomic bool ru_raw;
};

struct db_version {
    _Atomic int refs;
    struct db_mem *active;
    struct db_mem *imm; /* being flushed, or NULL */
    uint32_t nsegs;
    struct db_seg **segs; /* sorted by (shard_start, seq) */
};

struct qt_db {
    struct qt_db_opts opts;
    char dir[PATH_MAX];
    int lock_fd;
    struct qt_io *io;
    bool own_io;
    struct qt_catalog *cat;
    struct qt_wlog *wal;
    struct qt_lastcache *lc;

    pthread_mutex_t flush_mu;
    pthread_rwlock_t swap_lock;
    pthread_mutex_t ver_mu;
    struct db_version *ver;
    struct qt_manifest_hdr mhdr; /* last committed manifest header */

    pthread_mutex_t state_mu;
    pthread_cond_t state_cv;
    bool read_only;
    const char *ro_reason;
    bool stop;
    bool flush_wanted;
    pthread_t flusher;
    bool flusher_running;
    uint32_t damaged;

    _Atomic uint64_t lines_written, points_written, lines_rejected;
    _Atomic uint64_t flushes, flush_points, flush_ns;
    uint64_t replay_records, replay_points, replay_ns, replay_torn_bytes;
    struct db_ops *ops;       /* operations state (ops_int.h) */
    struct db_rollup *rollup; /* rollup records (rollup.c); NULL before the first run */
};

/* Versions and refcounts (db.c). */
struct db_version *db_version_get(struct qt_db *db);
void db_version_put(struct db_version *v);
void db_mem_put(struct db_mem *m);
void db_seg_put(struct db_seg *s);
int db_mem_new(struct db_mem **out);
/* Publish v as current (takes ownership of one reference). */
void db_version_publish(struct qt_db *db, struct db_version *v);

/* Enter read-only mode with a static reason (first reason wins). */
void db_set_readonly(struct qt_db *db, const char *reason);
bool db_is_readonly(struct qt_db *db);
int64_t db_now_ms(void);

/* Shard arithmetic.  db_ts_storable: ts lies in a shard whose bounds fit
 * int64 (writes outside are rejected, so flush never meets them).
 * db_shard_start: start of the shard holding a storable ts (floor division). */
bool db_ts_storable(int64_t ts, int64_t dur);
int64_t db_shard_start(int64_t ts, int64_t dur);
int db_shard_dir(const struct qt_db *db, int64_t shard_start, char *out, size_t cap);
int db_seg_path(const struct qt_db *db, int64_t shard_start, uint64_t seq, const char *suffix,
                char *out, size_t cap);

/* Operations (ops.c): started at the end of open, stopped first at close. */
struct db_ops;
int db_ops_start(struct qt_db *db);
void db_ops_stop(struct qt_db *db);

/* Rollup records (rollup.c): freed at close. */
struct db_rollup;
void db_rollup_free(struct db_rollup *r);
/* Compaction (flush_mu held): before the commit, whether shard's rollup
 * record is current; after a commit that trimmed nothing, carry it to the
 * new segment set (same raw points, new seqs).  Then persist (no lock). */
bool db_rollup_current(struct qt_db *db, int64_t shard);
void db_rollup_carry(struct qt_db *db, int64_t shard);
int db_rollup_persist(struct qt_db *db);

/* Flush (db_flush.c). */
int db_flush_once(struct qt_db *db);
int db_manifest_write(struct qt_db *db, struct qt_manifest_hdr *hdr, struct db_seg **segs,
                      uint32_t n);

/* Apply decoded batch lines to the memtable and last-value cache with WAL
 * seq (write path and replay). */
int db_apply(struct qt_db *db, struct qt_memtable *m, uint64_t seq,
             const struct qt_batch_line *lines, uint32_t n, const uint32_t *sids);

#endif
