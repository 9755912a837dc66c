/*
 * ops_int.h -- internals shared by the operations modules (ops.c,
 * compact.c, retention.c, backup.c, verify.c, export.c).
 *
 * Every change of the live segment set goes through db_ops_commit() with
 * flush_mu held, the same way a flush commits: MANIFEST first (the commit
 * point), then a published version.  Shards being compacted or dropped are
 * marked busy (ops->mu) so two operations never work on one shard.
 */
#ifndef QT_OPS_INT_H
#define QT_OPS_INT_H

#include "db_int.h"
#include "storage/ops.h"
#include "storage/retention.h"

#include <pthread.h>
#include <stdatomic.h>

struct db_ops {
    pthread_mutex_t mu; /* guards everything below but the counters */
    pthread_cond_t cv;
    bool stop;
    bool kick;
    bool running;
    pthread_t thr;
    atomic_int cancel; /* set at close: aborts a background compaction */
    int64_t busy[QT_OPS_BUSY_MAX];
    uint32_t nbusy;
    struct qt_retention_rule *rules; /* owned copies (names in one allocation each) */
    uint32_t nrules;
    uint32_t idle_ms;
    int64_t shard_dur; /* the MANIFEST's shard duration (fixed after open; read without
                        * flush_mu, which db->mhdr would need) */
    _Atomic uint64_t compactions, cpoints_in, cpoints_out, cpoints_trimmed, cbytes_in, cbytes_out;
    _Atomic uint64_t cfailures, shards_dropped, runs;
};

/* Lifecycle, called by qt_db_open (after recovery) and qt_db_close (first
 * thing, before the flusher stops).  start: QT_ENOMEM; stop accepts a
 * database whose ops were never started. */
int db_ops_start(struct qt_db *db);
void db_ops_stop(struct qt_db *db);

/* Mark shard busy: 0, or QT_EBUSY when it already is. */
int db_ops_busy_take(struct qt_db *db, int64_t shard);
void db_ops_busy_drop(struct qt_db *db, int64_t shard);
bool db_ops_busy(struct qt_db *db, int64_t shard);

/*
 * With flush_mu held: replace segments rm[0..nrm) of the current version
 * by `add` (NULL: remove only).  Every rm must still be live (QT_EBUSY
 * otherwise: the set changed underneath; nothing is written).  Writes the
 * MANIFEST (generation + 1), publishes the new version (memtables as they
 * are), and with drop_files marks rm's files for deletion when their last
 * reader releases them.  `add` (refs 1, reader open) is owned by the new
 * version on success and stays the caller's on failure.  A failed MANIFEST
 * write makes the database read-only.  The caller must hold a reference on
 * every rm (so none can be freed before drop_file is set).
 */
int db_ops_commit(struct qt_db *db, struct db_seg **rm, uint32_t nrm, struct db_seg *add,
                  bool drop_files);

/* A whole file in memory: read through io when at most inmem_max bytes,
 * else mapped read-only (memory stays bounded; the page cache holds it). */
struct db_ops_file {
    uint8_t *buf;
    size_t len;
    bool mapped;
};

/* Load path whole: 0, -errno (-ENOENT when missing), QT_ENOMEM. */
int db_ops_file_load(struct qt_io *io, const char *path, uint64_t inmem_max, struct db_ops_file *f);
void db_ops_file_unload(struct db_ops_file *f);

/* Wall clock now, ns since the epoch. */
int64_t db_ops_wall_ns(void);

/* The measurement (unescaped) of the canonical group key key[0..len), into
 * out[0..cap): its length, or a negative QT_E* code. */
int db_ops_measurement(const uint8_t *key, size_t len, char *out, size_t cap);

/* Cutoff for the group key key[0..len) at now_ns: points with ts below it
 * are past retention; INT64_MIN when kept forever. */
int64_t db_ops_cutoff(struct qt_db *db, const uint8_t *key, size_t len, int64_t now_ns);

/* Estimated points of `shard` in v past retention at now_ns, from the
 * index: a block wholly before its group's cutoff counts all its points, a
 * block across the cutoff half of them.  0 exactly when no stored point is
 * past retention.  Damaged segments are skipped. */
uint64_t db_ops_expired_points(struct qt_db *db, struct db_version *v, int64_t shard,
                               int64_t now_ns);

#endif
