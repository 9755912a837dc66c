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
#include <stddef.h>
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

/*
 * Set the database's rollup rules from spec ("air=1m,1h;grid*=1h"; NULL or
 * "" = none), copied.  Also applied at open from qt_db_opts.rollups.  When
 * the rules change, the per-shard records of the old rules are dropped
 * and those saved in the ROLLUPS file under the new rules (if any) are
 * loaded.  QT_ESYNTAX / QT_ELIMIT with the reason; QT_EINVAL when an
 * interval does not divide the shard duration (buckets would straddle
 * shards).  Nothing changes on error.
 */
int qt_db_set_rollups(struct qt_db *db, const char *spec);

/* The rule of measurement m[0..len) into *out (out->measurement is set to
 * NULL: only the intervals are copied); false when m is not rolled up. */
bool qt_db_rollup_rule(struct qt_db *db, const char *m, size_t len, struct qt_rollup_rule *out);

struct qt_rollup_result {
    uint32_t shards;         /* shards rolled up by this run */
    uint32_t shards_current; /* ended shards skipped: their record was current */
    uint64_t series;         /* (series, interval, shard) triples summarised */
    uint64_t buckets;        /* rollup points (lines) written */
};

/*
 * Flush, then compute the rollups under the database's rules of every
 * shard that ended before now_ns (0 = wall clock) and whose record is not
 * current (new shards, late data, retention trims).  Writes go through
 * qt_db_write and are flushed before return; the records are then saved
 * to ROLLUPS (tmp, fsync, rename, fsync dir).  One run at a time (a second
 * caller waits).  res may be NULL.  0 (also with no rules) or the first
 * error.
 */
int qt_db_rollup(struct qt_db *db, int64_t now_ns, struct qt_rollup_result *res);

/*
 * Rollup buckets of measurement m[0..len) (unescaped) at `interval` ("1h")
 * that start before the returned instant are neither written by a run nor
 * read by the planner: the raw points may already be trimmed by the
 * retention of m (a recomputed bucket would be partial, and a raw query
 * no longer sees them), or the rollup points by the retention of
 * "m:interval".  INT64_MIN when both are kept forever.  now_ns 0 = wall
 * clock.
 */
int64_t qt_db_rollup_floor(struct qt_db *db, const char *m, size_t len, const char *interval,
                           int64_t now_ns);

/* A time range whose rollups are current. */
struct qt_rollup_span {
    int64_t t0, t1; /* [t0, t1) */
};

/*
 * The parts of [t0, t1) where the rollups answer exactly at now_ns (0 =
 * wall clock), as maximal spans in out[0..cap), ascending: a shard is
 * covered when it ended by now, no raw series of a ruled measurement has
 * memtable rows in it, and it has no segments or its record's identity
 * (the seqs of its segments holding raw series of ruled measurements)
 * equals the current one.  Spans are clipped to [t0, t1); shard
 * boundaries inside a span are not marked.  Conservative: a shard may be
 * left out where its rollups happen to be current.  0 or QT_ENOMEM.
 */
int qt_db_rollup_spans(struct qt_db *db, int64_t t0, int64_t t1, int64_t now_ns,
                       struct qt_rollup_span *out, uint32_t cap, uint32_t *n);

/* The whole of [t0, t1) is covered (qt_db_rollup_spans). */
bool qt_db_rollup_covers(struct qt_db *db, int64_t t0, int64_t t1, int64_t now_ns);

/* The rollup group key of raw group key g[0..len) for `interval` ("1h"):
 * the escaped measurement, ":<interval>", the tags.  Its length, or
 * QT_ELIMIT when it would not fit in out[0..cap). */
int qt_rollup_group_key(const uint8_t *g, uint32_t len, const char *interval, char *out,
                        size_t cap);

/* One record of the ROLLUPS file. */
struct qt_rollup_record {
    int64_t shard;
    uint64_t ident;
};

/* Decode a ROLLUPS file p[0..len) (untrusted): 0 with *rules_hash and
 * *out (n records, qt_free it); QT_ECORRUPT / QT_ECHECKSUM with a reason;
 * QT_ENOMEM. */
int qt_rollup_file_decode(const uint8_t *p, size_t len, uint64_t *rules_hash,
                          struct qt_rollup_record **out, uint32_t *n);

#endif
