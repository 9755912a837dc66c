/*
 * wallog.h -- the write-ahead log: files of WAL records (format/wal.h) in
 * DIR/wal/, group commit, durability policies, rotation and replay.
 *
 * Files are named by the first sequence number they may hold
 * (%020llu.wal); records inside are in ascending seq order, and every record
 * of a file has a seq below the first seq of the next file.
 *
 * Group commit: concurrent qt_wlog_append() calls are coalesced.  The first
 * caller that finds no write in progress becomes the leader, writes every
 * pending record with one vectored write and (policy "always") one
 * fdatasync, linked on io_uring, then wakes the others.
 *
 * Durability policies (DESIGN.md "Durability"):
 *   ALWAYS    append returns after the fdatasync that covers its record.
 *   INTERVAL  append returns after the record is written to the file (it
 *             survives a process crash); a background thread fdatasyncs
 *             every interval_ms, so a power loss can lose that window.
 *   NONE      as INTERVAL without the background sync: the OS decides;
 *             files are synced only at rotation and close.
 * A failed write or fdatasync puts the log in FAILED state: every later
 * append returns QT_EREADONLY and the sync is never retried.  Recovery
 * after a restart replays what is durable.
 *
 * Thread-safe; qt_wlog_close() must not race with other calls.
 */
#ifndef QT_WALLOG_H
#define QT_WALLOG_H

#include "storage/io.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum qt_fsync_policy { QT_FSYNC_ALWAYS = 0, QT_FSYNC_INTERVAL = 1, QT_FSYNC_NONE = 2 };

/* Parse "always", "interval:MS" (1..QT_FSYNC_INTERVAL_MAX_MS) or "none". */
int qt_fsync_policy_parse(const char *s, enum qt_fsync_policy *policy, uint32_t *interval_ms);

struct qt_wlog_opts {
    enum qt_fsync_policy policy;
    uint32_t interval_ms;    /* INTERVAL only */
    uint64_t file_bytes_max; /* rotate when a file passes this (0: default) */
};

struct qt_wlog_stats {
    uint64_t records;     /* records appended */
    uint64_t groups;      /* leader writes (each one write [+ one sync]) */
    uint64_t syncs;       /* fdatasyncs issued (group, interval, rotation) */
    uint64_t bytes;       /* bytes written */
    uint64_t sync_ns_sum; /* total time spent in syncs */
    uint64_t files;       /* WAL files created */
};

/* Optional observer for sync latency (e.g. a histogram in server/metrics). */
typedef void (*qt_wlog_sync_fn)(void *arg, uint64_t ns);

struct qt_wlog;

/*
 * Open the log for appending in dir (created if absent): always starts a new
 * file whose first seq is next_seq (recovery has replayed older files).
 */
int qt_wlog_open(struct qt_io *io, const char *dir, const struct qt_wlog_opts *opts,
                 uint64_t next_seq, struct qt_wlog **out);

/* Sync (whatever the policy) and close.  Returns the sync's error if any;
 * the handle is freed either way.  NULL is fine. */
int qt_wlog_close(struct qt_wlog *w);

/*
 * Frame payload[0..len) as one record and append it; *seq_out receives its
 * sequence number.  Returns when the policy's promise holds (see above).
 * Errors: QT_EREADONLY (FAILED state), QT_ELIMIT (payload too large),
 * QT_ENOMEM, or the -errno of the failed write/sync that FAILED the log.
 */
int qt_wlog_append(struct qt_wlog *w, const uint8_t *payload, size_t len, uint64_t *seq_out);

/*
 * Close the current file and start a new one.  On return every record with
 * seq < *boundary is in an older file.  The engine calls this while it holds
 * writers out, so the boundary separates the memtable being flushed from
 * the new one.  The old file is synced first (all policies).
 */
int qt_wlog_rotate(struct qt_wlog *w, uint64_t *boundary);

/* Delete every file all of whose records have seq <= checkpoint (never the
 * current file), then sync the directory. */
int qt_wlog_remove_upto(struct qt_wlog *w, uint64_t checkpoint);

/* Make every appended record durable now (graceful shutdown, `none`). */
int qt_wlog_sync(struct qt_wlog *w);

bool qt_wlog_failed(struct qt_wlog *w);
void qt_wlog_get_stats(struct qt_wlog *w, struct qt_wlog_stats *out);
void qt_wlog_set_sync_observer(struct qt_wlog *w, qt_wlog_sync_fn fn, void *arg);

/* ---- recovery --------------------------------------------------------- */

struct qt_wlog_replay_stats {
    uint64_t files;
    uint64_t records; /* records handed to the callback */
    uint64_t skipped; /* records with seq <= after_seq */
    uint64_t bytes;
    uint64_t torn_bytes;      /* cut from the tail of the last file */
    uint64_t corrupt_records; /* damaged records in the middle of the log */
    uint64_t last_seq;        /* highest seq seen (0 if none) */
};

/* Called with each record after after_seq, in seq order.  payload is valid
 * only during the call.  A non-zero return stops replay and is returned. */
typedef int (*qt_wlog_replay_fn)(void *arg, uint64_t seq, const uint8_t *payload, size_t len);

/*
 * Replay dir's files in order.  A torn tail of the last file (a truncated or
 * unreadable final record) is cut off (ftruncate + fsync) and logged with
 * file and offset.  Damage inside the log (a bad record followed by more
 * data, or in a file that is not the last) is logged with file and offset
 * and the rest of that file is skipped; replay continues with the next
 * file.  Read-only mode (truncate_torn = false) reports but changes nothing.
 */
int qt_wlog_replay(struct qt_io *io, const char *dir, uint64_t after_seq, bool truncate_torn,
                   qt_wlog_replay_fn fn, void *arg, struct qt_wlog_replay_stats *stats);

#endif
