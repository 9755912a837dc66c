/*
 * scan.h -- reading one series over a time range (the query layer's input).
 *
 * A scan reads a consistent snapshot (the engine version at open: memtables
 * and live segments; later writes and flushes are not seen).  It yields
 * chunks in ascending time order, never overlapping:
 *
 *   QT_CHUNK_STATS   a whole stored block that lies inside [t0, t1) and
 *                    that no other data of the series overlaps: count, min,
 *                    max, sum, first, last and the time bounds, without
 *                    decoding.  Call qt_scan_expand() to get its points
 *                    when the statistics are not enough (the block spans
 *                    buckets, or a filter applies to values).
 *   QT_CHUNK_POINTS  decoded points (at most QT_BLOCK_POINTS_MAX), merged
 *                    across sources: for one timestamp, the newest write
 *                    wins (active memtable > frozen memtable > newer
 *                    segment > older segment).
 *
 * Memory is bounded: one decoded block per source overlapping the current
 * position, plus the series' rows in the memtables.
 *
 * Not thread-safe: one scan per thread; many scans may run concurrently.
 */
#ifndef QT_SCAN_H
#define QT_SCAN_H

#include "format/stats.h"
#include "storage/db.h"
#include "storage/lastcache.h"
#include "storage/memtable.h"

#include <stdbool.h>
#include <stdint.h>

enum qt_chunk_kind { QT_CHUNK_STATS = 1, QT_CHUNK_POINTS = 2 };

struct qt_chunk {
    enum qt_chunk_kind kind;
    enum qt_vtype vtype;
    uint32_t n;             /* points in the chunk */
    int64_t ts_min, ts_max; /* first and last timestamp */
    struct qt_stats stats;  /* STATS only */
    /* POINTS only; valid until the next call on the scan.  Strings: vals[i].s
     * is (offset, length) into arena. */
    const int64_t *ts;
    const union qt_value *vals;
    const char *arena;
};

struct qt_scan_opts {
    int64_t t0, t1;   /* half-open range */
    bool allow_stats; /* may yield QT_CHUNK_STATS */
};

struct qt_scan;

/* Open a scan of series sid.  QT_ENOTFOUND for an unknown sid. */
int qt_scan_open(struct qt_db *db, uint32_t sid, const struct qt_scan_opts *o,
                 struct qt_scan **out);

/* Next chunk: 1 and *c filled, 0 at the end, or a negative error (a damaged
 * block: reported with file and offset; the scan stops). */
int qt_scan_next(struct qt_scan *s, struct qt_chunk *c);

/* Replace the STATS chunk just returned by the points of that block. */
int qt_scan_expand(struct qt_scan *s, struct qt_chunk *c);

void qt_scan_close(struct qt_scan *s);

/* Counters of what scans did (for query statistics and benchmarks). */
struct qt_scan_counters {
    uint64_t stats_chunks, stats_points; /* answered from block statistics */
    uint64_t blocks_decoded, points_decoded;
    uint64_t mem_points;
};
void qt_scan_get_counters(const struct qt_scan *s, struct qt_scan_counters *out);

/*
 * The latest point of sid (the `last` query): from the last-value cache
 * when it is known, else from storage (then the cache is seeded).  *found is
 * false when the series has no points.  Strings are copied into out->strbuf.
 */
int qt_db_last(struct qt_db *db, uint32_t sid, struct qt_lc_point *out, bool *found);

#endif
