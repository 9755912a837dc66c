/*
 * ops.h -- operations on a live engine: what compaction, retention, backup,
 * verify and export share, and the background operations thread
 * (design/ops.md).
 *
 * Every long operation takes a struct qt_ops_ctl: a cancel flag it polls
 * between steps (a signal handler or another thread sets it; the operation
 * then stops at a consistent point and returns QT_ECLOSED with the reason
 * "interrupted") and a progress callback (work done and total, in the
 * operation's unit: points for compaction, bytes for backup, restore and
 * verify).  A NULL ctl means neither.
 *
 * The background thread (started by qt_db_open unless opts.no_background or
 * opts.no_auto_ops) runs every QT_OPS_INTERVAL_MS (or sooner when the idle
 * time is short): it drops shards past retention (retention.h), then
 * compacts every sealed shard: one that holds >= 2 segments and got no new
 * segment for opts.compact_idle_ms, or whose points partly passed their
 * retention (compact.h).  qt_db_close() interrupts a running compaction
 * (its output is discarded; the shard stays as it was).
 */
#ifndef QT_OPS_H
#define QT_OPS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct qt_db;

/* Progress: `done` of `total` units so far (total may grow while an
 * operation discovers work).  Called from the operation's thread. */
typedef void (*qt_ops_progress_fn)(void *arg, uint64_t done, uint64_t total);

struct qt_ops_ctl {
    const atomic_int *cancel; /* non-zero: stop at the next step; NULL: never */
    qt_ops_progress_fn progress;
    void *arg;
};

/* True when ctl asks the operation to stop. */
bool qt_ops_cancelled(const struct qt_ops_ctl *ctl);

/* Report progress through ctl (no-op without a callback). */
void qt_ops_progress(const struct qt_ops_ctl *ctl, uint64_t done, uint64_t total);

/* Counters of the background thread and of explicit operations since open. */
struct qt_ops_stats {
    uint64_t compactions; /* shards compacted (committed) */
    uint64_t compact_points_in, compact_points_out, compact_points_trimmed;
    uint64_t compact_bytes_in, compact_bytes_out;
    uint64_t compact_failures; /* attempts that failed or were abandoned */
    uint64_t shards_dropped;   /* by retention */
    uint64_t background_runs;  /* passes of the background thread */
};
void qt_db_ops_stats(struct qt_db *db, struct qt_ops_stats *out);

/* Wake the background thread now (tests, the server's admin endpoint). */
void qt_db_ops_kick(struct qt_db *db);

#endif
