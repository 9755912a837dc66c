/*
 * compact.h -- shard listing and compaction (design/ops.md "Shards",
 * "Compaction").
 *
 * A shard is one time partition [start, start + shard_duration).  Every
 * flush that holds points of a shard adds one segment to it; late points
 * and re-sent duplicates land in yet more segments.  Compaction merges all
 * segments of a shard into one: rows sorted by time, one point per series
 * and timestamp (the segment with the highest seq wins, as in a scan),
 * points past retention dropped, and every column group re-encoded into
 * full blocks (QT_BLOCK_POINTS_MAX rows) sharing one TS block per group.
 *
 * Consistency: queries and ingest run on; a reader sees the old segments or
 * the new one, never both or neither (one MANIFEST commit, one published
 * version).  Crash safety: the output is written under a temporary name and
 * made durable before the MANIFEST names it; a crash at any point leaves the
 * database as before or as after (open removes the unlisted files).
 *
 * Precedence rule (why the output's seq is right): the output seq is
 * reserved from the MANIFEST's next_segment_seq under flush_mu in the same
 * critical section that snapshots the inputs (every segment of the shard).
 * Each input got its seq earlier, so every input seq is below it; a flush
 * allocates and commits its seqs within one flush_mu hold, so any segment
 * that enters the shard while the compaction runs got a seq above it and
 * keeps winning over the merged data.  At most one compaction per shard
 * runs at a time, and the commit checks that every input is still live.
 */
#ifndef QT_COMPACT_H
#define QT_COMPACT_H

#include "storage/ops.h"

#include <stdbool.h>
#include <stdint.h>

struct qt_db;

enum qt_shard_state {
    QT_SHARD_ACTIVE = 0,     /* got a segment within the idle time, or now is inside it */
    QT_SHARD_SEALED = 1,     /* idle: candidate for background compaction */
    QT_SHARD_COMPACTING = 2, /* a compaction of it is running */
};

/* "active", "sealed", "compacting". */
const char *qt_shard_state_name(enum qt_shard_state s);

struct qt_shard_info {
    int64_t start_ns, end_ns; /* [start, end) */
    int64_t ts_min, ts_max;   /* of the points stored (segments) */
    uint32_t segments;
    uint32_t damaged;   /* segments that failed validation (not served) */
    uint32_t level_max; /* 0: only flushed segments */
    uint64_t points;    /* stored points, summed over segments (duplicates count twice) */
    uint64_t series;    /* distinct series over the segments (from their key tables) */
    uint64_t bytes;     /* bytes of the segment files */
    double bytes_per_point;
    int64_t last_write_ns;      /* wall clock the newest segment was written */
    int64_t last_compaction_ns; /* wall clock of the newest compaction output, 0 = never */
    enum qt_shard_state state;
};

/*
 * Describe every shard holding segments, ascending by start.  *out is an
 * array from qt_malloc owned by the caller (qt_free); NULL when *n == 0.
 * Reads the key table of every segment (to count distinct series).
 * Thread-safe; works on a read-only database.
 */
int qt_db_shards(struct qt_db *db, struct qt_shard_info **out, uint32_t *n);

struct qt_compact_opts {
    bool all;            /* every shard with something to gain, else shard_start only */
    int64_t shard_start; /* the shard (its start, as listed) when !all */
    bool force;          /* also rewrite a shard that has a single segment */
    int64_t now_ns;      /* retention clock; 0 = wall clock */
    /* Free disk to keep beyond the output's worst case (the inputs' size):
     * headroom for ingest while the shard exists twice.  0 = only
     * QT_COMPACT_SPACE_MARGIN. */
    uint64_t min_free_bytes;
    struct qt_ops_ctl ctl;
    /* Test hook: called after the output is durable, before the commit. */
    void (*before_commit)(void *arg);
    void *hook_arg;
};

struct qt_compact_result {
    uint32_t shards;         /* shards compacted */
    uint32_t shards_skipped; /* nothing to gain (single segment, nothing past retention) */
    uint32_t segments_in;
    uint64_t points_in;      /* stored points read */
    uint64_t points_out;     /* points written */
    uint64_t points_trimmed; /* past retention, not copied */
    uint64_t bytes_in, bytes_out;
    uint64_t ns; /* wall time */
};

/*
 * Compact one shard (o->shard_start) or, with o->all, every shard holding
 * >= 2 segments or points past retention, one after another.  Errors:
 * QT_ENOTFOUND (no such shard), QT_EBUSY (a compaction or retention drop of
 * that shard is running), QT_EREADONLY, QT_ECORRUPT (a segment of the shard
 * is damaged: run `qtdb verify --quarantine` first), -ENOSPC (free disk
 * below the shard's size, checked before writing), QT_ECLOSED (cancelled),
 * or the I/O error.  A failed MANIFEST commit makes the database read-only;
 * any other failure leaves the shard untouched.  res may be NULL; with
 * o->all it sums the shards done before an error.
 */
int qt_db_compact(struct qt_db *db, const struct qt_compact_opts *o, struct qt_compact_result *res);

#endif
