/*
 * rplan.h -- the rollup planner: which parts of an aggregate query's range
 * can be answered from rollups (storage/rollup.h) with the very same result.
 *
 *   air.pm25 [2026-10-01, 2026-11-01) | max by 1d, district
 *
 * over `air=1m,1h` rollups reads `air:1h` for every shard whose rollup is
 * current and raw points elsewhere (the edges of the range that do not
 * fall on an hour, shards with late data, the open shard).
 *
 * A query qualifies when every function combines exactly from per-bucket
 * summaries -- count, min, max, first, last, spread, and sum/avg of integer
 * series (exact int64 sums) -- with no where/rate/delta stage, a bounded
 * range, float or integer series only, and a rule for the measurement
 * with an interval that divides every query bucket boundary (epoch
 * buckets: the bucket width is a multiple of it; local-day buckets: every
 * local midnight in the range falls on it; no buckets: any).  The largest
 * such interval is chosen.  Float sum/avg never qualify: a rollup bucket's
 * float sum is rounded once per bucket, so adding them is not bit-for-bit
 * the sum of the points (DESIGN.md 15, "Rollups").
 *
 * Not planned either: no buckets, or epoch buckets of whole shards -- every
 * raw block then lies in one bucket and is answered from its block
 * statistics without decoding, which reading rollups cannot beat.
 *
 * The plan is a list of pieces covering the range in order, each read raw
 * or from the rollup; the executor feeds them to one aggregation, series
 * by series, so the grouping, first/last ties and fill see one stream.
 */
#ifndef QT_RPLAN_H
#define QT_RPLAN_H

#include "format/qt_limits.h"
#include "query/qparse.h"
#include "query/select.h"
#include "storage/db.h"

#include <stdbool.h>
#include <stdint.h>

struct qt_rplan_piece {
    int64_t t0, t1; /* [t0, t1) */
    bool rollup;    /* read from the rollup series, else raw points */
};

struct qt_rplan {
    uint32_t n; /* pieces; 0: read raw over the whole range */
    struct qt_rplan_piece p[QT_ROLLUP_PLAN_PIECES_MAX];
    int64_t interval_ns;
    char interval[24];      /* as the rule writes it: "1h" */
    bool need_firstlast_ts; /* read <f>.first_ts / <f>.last_ts */
    bool need_minmax;       /* read <f>.min / <f>.max */
    bool need_first, need_last, need_sum;
};

/*
 * Plan q (an aggregate query) over the selected series sel at wall-clock
 * now_ns (0 = now).  On return p->n == 0 when rollups cannot answer any
 * part exactly, else the pieces (at least one of them a rollup piece).
 * 0 or QT_ENOMEM.
 */
int qt_rplan_make(struct qt_db *db, const struct qt_qry *q, const struct qt_sel *sel,
                  int64_t now_ns, struct qt_rplan *p);

/* "rollup:1h" when every piece is a rollup piece, "rollup:1h+raw" when
 * mixed; into out[0..cap). */
void qt_rplan_source(const struct qt_rplan *p, char *out, size_t cap);

#endif
