/*
 * rollup.h -- per-measurement rollups (DESIGN.md 15, "Rollups").
 *
 * A rule names a measurement exactly ("air") or by prefix ("air*") and up
 * to QT_ROLLUP_INTERVALS_MAX bucket intervals.  qt_db_rollup() summarises
 * every raw float/int series of a ruled measurement, shard by shard, into
 * ordinary points of measurement "<measurement>:<interval>" (same tags),
 * one point per non-empty epoch-aligned bucket, timestamp = bucket start,
 * fields "<field>.count" (int) and "<field>.sum/.min/.max/.first/.last"
 * (the source field's type).  Rollup points are ordinary series: retention,
 * backup, export and verify treat them like any other.  Re-running is
 * idempotent: a re-written bucket replaces the old one (newest write wins).
 * Measurements whose name contains ':' are never rolled up (they are
 * rollups, or would collide with them).
 */
#ifndef QT_ROLLUP_H
#define QT_ROLLUP_H

#include "format/qt_limits.h"

#include <stdbool.h>
#include <stdint.h>

struct qt_db;

struct qt_rollup_rule {
    const char *measurement; /* exact name, or prefix when `prefix` ("" + prefix = all) */
    bool prefix;
    uint32_t n_intervals;                            /* 1..QT_ROLLUP_INTERVALS_MAX */
    int64_t interval_ns[QT_ROLLUP_INTERVALS_MAX];    /* ascending, distinct, > 0 */
    char interval_name[QT_ROLLUP_INTERVALS_MAX][24]; /* as written: "1m", "1h" */
};

/*
 * Parse "air=1m,1h;grid=1h;water*=1d" into rules[0..cap) whose names point
 * into buf (modified in place).  Units s, m, h, d.  0 with *n set;
 * QT_ESYNTAX with a reason; QT_ELIMIT beyond cap or 4 intervals.
 */
int qt_rollup_parse(char *buf, struct qt_rollup_rule *rules, uint32_t cap, uint32_t *n);

struct qt_rollup_result {
    uint32_t shards;  /* shards rolled up */
    uint64_t series;  /* (series, interval, shard) triples summarised */
    uint64_t buckets; /* rollup points (lines) written */
};

/*
 * Flush, then compute the rollups of every shard that ended before now_ns
 * (0 = wall clock) under rules[0..n).  An interval that does not divide the
 * shard duration is refused (QT_EINVAL) since its buckets would straddle
 * shards.  Writes go through qt_db_write and are flushed before return.
 * res may be NULL.  0 or the first error.
 */
int qt_db_rollup(struct qt_db *db, const struct qt_rollup_rule *rules, uint32_t n, int64_t now_ns,
                 struct qt_rollup_result *res);

/*
 * True when the rollups under rules[0..n) answer exactly for [t0, t1) at
 * now_ns (0 = wall clock): every shard overlapping the range that holds
 * segments ended by now, was rolled up by qt_db_rollup() under the same
 * rules (in this process: records are not persisted) and its set of
 * segments holding raw series of ruled measurements is still the one that
 * run read; and no raw series of a ruled measurement has memtable data in
 * the range.  Late data, a compaction or a retention trim of raw data in a
 * shard make it false until the next qt_db_rollup().  Conservative: false
 * may be answered where the rollups happen to be current.
 */
bool qt_db_rollup_covers(struct qt_db *db, const struct qt_rollup_rule *rules, uint32_t n,
                         int64_t t0, int64_t t1, int64_t now_ns);

#endif
