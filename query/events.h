/*
 * events.h -- per-series interval detectors: `episodes` and `gaps`.
 *
 *   episodes value <op> x [for d]
 *       each maximal run of consecutive points (within the range) that
 *       satisfy the condition and last at least d: row (time = first
 *       satisfying point, end = LAST satisfying point, duration = end -
 *       time, peak).  peak is the maximum for > >= ==, the minimum for
 *       < <=, and for != the value farthest from x (ties: the larger).  A
 *       run cut by the range end ends at the last point inside the range.
 *   gaps > d  /  gaps >= d
 *       each interval between consecutive points of a series longer than
 *       (or at least) d: row (time = the earlier point, end = the later,
 *       duration).  With a bounded range the range start and end count as
 *       points, so a series silent over the whole range gives one gap
 *       [start, end); an unbounded query looks only between points.
 *
 * Whole-block statistics are used when they decide the block: a block
 * whose every value satisfies (or none does) extends (or closes) the
 * episode without decoding; a block spanning no more than d holds no gap
 * inside.  Otherwise the caller expands it.
 *
 * Rows go to the result writer through a row the caller has prefilled
 * with the series' tag cells.  Not thread-safe: one per query.
 */
#ifndef QT_EVENTS_H
#define QT_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "query/qparse.h"
#include "query/result.h"
#include "query/xform.h"
#include "storage/scan.h"

struct qt_ev {
    bool episodes; /* else gaps */
    struct qt_qry_cond cond;
    enum qt_xf_int int_mode;
    enum qt_qry_cmp int_op;
    int64_t int_t;
    int64_t min_ns;  /* episodes: `for d`; gaps: d */
    bool inclusive;  /* gaps >= d */
    bool bounded;    /* range given */
    int64_t r0, r1;  /* range [r0, r1) */
    struct qt_res *w;
    struct qt_cell *row; /* time, tags (caller's), end, duration[, peak] */
    uint32_t ntags;
    /* per series */
    enum qt_vtype vt;
    bool in_ep, has_prev;
    int64_t start, end, prev_ts;
    struct qt_cell peak;
};

/* Set up the detector of q's terminal episodes/gaps stage writing to w
 * rows of 1 + ntags + 3 (episodes: + 4) cells in `row` (owned by the
 * caller; it fills row[1..ntags] before each series). */
void qt_ev_init(struct qt_ev *ev, const struct qt_qry *q, struct qt_res *w, struct qt_cell *row,
                uint32_t ntags);

/* Columns after the tags: "end", "duration"[, "peak"]; returns how many
 * and fills cols[0..n). */
uint32_t qt_ev_columns(const struct qt_ev *ev, struct qt_res_col *cols);

/* Start a series of value type vt (episodes: numeric or bool). */
void qt_ev_begin(struct qt_ev *ev, enum qt_vtype vt);

/* A STATS chunk: 1 when decided from the statistics, 0 when the caller
 * must expand it and feed the points, <0 on error (writer). */
int qt_ev_stats(struct qt_ev *ev, const struct qt_chunk *c);

/* Points ts/v[0..n) of the series, ascending. */
int qt_ev_points(struct qt_ev *ev, const int64_t *ts, const union qt_value *v, uint32_t n);

/* End of the series: close an open episode / the gap to the range end. */
int qt_ev_end(struct qt_ev *ev);

#endif
