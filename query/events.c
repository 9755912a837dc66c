/*
 * events.c -- episodes and gaps of one series at a time (contract and
 * semantics in events.h).
 *
 * State per series: an open episode (start, end = last satisfying point,
 * peak) or the previous point's time for gaps.  Invariants: episodes are
 * emitted when the run closes (a failing point, a block none of whose
 * values satisfy, or the end of the series), so each run is reported once;
 * the peak rule is a total order on (distance, value) that the statistics
 * path and the point path apply identically, so expanding a block or not
 * gives the same row.
 */
#include "events.h"

#include <math.h>
#include <string.h>

#include "format/qt_assert.h"
#include "format/qt_err.h"

void
qt_ev_init(struct qt_ev *ev, const struct qt_qry *q, struct qt_res *w, struct qt_cell *row,
           uint32_t ntags)
{
    const struct qt_qry_stage *t = q->terminal;
    qt_assert(t != NULL);
    qt_assert(t->kind == QT_QRY_STAGE_EPISODES || t->kind == QT_QRY_STAGE_GAPS);
    memset(ev, 0, sizeof(*ev));
    ev->episodes = t->kind == QT_QRY_STAGE_EPISODES;
    if (ev->episodes) {
        ev->cond = t->u.episodes.cond;
        ev->min_ns = t->u.episodes.min_ns;
        qt_xf_cond_int_prepare(&ev->cond, &ev->int_mode, &ev->int_op, &ev->int_t);
    } else {
        ev->min_ns = t->u.gaps.min_ns;
        ev->inclusive = t->u.gaps.inclusive;
    }
    ev->bounded = q->range.bounded;
    ev->r0 = q->range.start.ns;
    ev->r1 = q->range.end.ns;
    ev->w = w;
    ev->row = row;
    ev->ntags = ntags;
}

uint32_t
qt_ev_columns(const struct qt_ev *ev, struct qt_res_col *cols)
{
    cols[0] = (struct qt_res_col){.name = {"end", 3}, .kind = QT_RES_COL_TIME};
    cols[1] = (struct qt_res_col){.name = {"duration", 8}, .kind = QT_RES_COL_DURATION};
    if (!ev->episodes)
        return 2;
    cols[2] = (struct qt_res_col){.name = {"peak", 4}, .kind = QT_RES_COL_VALUE};
    return 3;
}

void
qt_ev_begin(struct qt_ev *ev, enum qt_vtype vt)
{
    qt_assert(!ev->episodes || vt != QT_VT_STRING);
    ev->vt = vt;
    ev->in_ep = false;
    ev->has_prev = !ev->episodes && ev->bounded; /* the range start acts as a point */
    ev->prev_ts = ev->r0;
}

static int
ev_row(struct qt_ev *ev, int64_t start, int64_t end)
{
    if (qt_res_full(ev->w))
        return 0;
    __int128 d = (__int128)end - start;
    struct qt_cell *r = ev->row;
    r[0] = (struct qt_cell){.kind = QT_CELL_INT, .u.i = start};
    r[1 + ev->ntags] = (struct qt_cell){.kind = QT_CELL_INT, .u.i = end};
    r[2 + ev->ntags] = (struct qt_cell){.kind = QT_CELL_INT, .u.i = d > INT64_MAX ? INT64_MAX
                                                                                  : (int64_t)d};
    if (ev->episodes)
        r[3 + ev->ntags] = ev->peak;
    return qt_res_row(ev->w, r);
}

/* ---- episodes ---------------------------------------------------------------- */

static bool
ev_sat(const struct qt_ev *ev, union qt_value v)
{
    if (ev->vt == QT_VT_FLOAT)
        return qt_xf_cond_float(&ev->cond, v.f);
    return qt_xf_cond_int(ev->int_mode, ev->int_op, ev->int_t, v.i);
}

static struct qt_cell
ev_cell(const struct qt_ev *ev, union qt_value v)
{
    if (ev->vt == QT_VT_FLOAT)
        return (struct qt_cell){.kind = QT_CELL_FLOAT, .u.f = v.f};
    if (ev->vt == QT_VT_BOOL)
        return (struct qt_cell){.kind = QT_CELL_BOOL, .u.b = v.i != 0};
    return (struct qt_cell){.kind = QT_CELL_INT, .u.i = v.i};
}

static long double
ev_num(const struct qt_cell *c)
{
    return c->kind == QT_CELL_FLOAT ? (long double)c->u.f
           : c->kind == QT_CELL_BOOL ? (long double)c->u.b
                                     : (long double)c->u.i;
}

/* True when candidate c beats the current peak (strictly: the earlier
 * point keeps ties). */
static bool
ev_better(const struct qt_ev *ev, const struct qt_cell *c)
{
    long double v = ev_num(c), p = ev_num(&ev->peak);
    switch (ev->cond.op) {
    case QT_QRY_CMP_LT:
    case QT_QRY_CMP_LE: return v < p;
    case QT_QRY_CMP_NE: {
        long double dv = fabsl(v - ev->cond.value), dp = fabsl(p - ev->cond.value);
        return dv > dp || (dv == dp && v > p);
    }
    default: return v > p;
    }
}

/* Point (t, v) satisfies: open or extend the episode. */
static void
ev_extend(struct qt_ev *ev, int64_t t0, int64_t t1, struct qt_cell cand)
{
    if (!ev->in_ep) {
        ev->in_ep = true;
        ev->start = t0;
        ev->peak = cand;
    } else if (ev_better(ev, &cand)) {
        ev->peak = cand;
    }
    ev->end = t1;
}

static int
ev_close(struct qt_ev *ev)
{
    if (!ev->in_ep)
        return 0;
    ev->in_ep = false;
    if ((__int128)ev->end - ev->start < ev->min_ns)
        return 0;
    return ev_row(ev, ev->start, ev->end);
}

/* True when the number x of an ==/!= condition lies outside [lo, hi]. */
static bool
ev_outside(const struct qt_ev *ev, union qt_value lo, union qt_value hi)
{
    if (ev->vt == QT_VT_FLOAT)
        return ev->cond.value < lo.f || ev->cond.value > hi.f;
    /* x not an int64 (mode never/always) equals no integer value */
    return ev->int_mode != QT_XF_INT_CMP || ev->int_t < lo.i || ev->int_t > hi.i;
}

/* Does every (all = true) or no (all = false) value of the block satisfy?
 * false means "cannot tell from the statistics". */
static bool
ev_stats_decide(const struct qt_ev *ev, const struct qt_stats *s, bool all)
{
    union qt_value lo, hi;
    bool nan_inside = false;
    if (ev->vt == QT_VT_FLOAT) {
        if (isnan(s->min.f))
            return !all; /* every value NaN: none satisfies */
        lo.f = s->min.f;
        hi.f = s->max.f;
        nan_inside = isnan(s->sum.f); /* a NaN value (or inf - inf: then expand) */
    } else {
        lo.i = s->min.i;
        hi.i = s->max.i;
    }
    bool sl = ev_sat(ev, lo), sh = ev_sat(ev, hi);
    bool same = ev->vt == QT_VT_FLOAT ? lo.f == hi.f : lo.i == hi.i;
    switch (ev->cond.op) {
    case QT_QRY_CMP_EQ: /* the satisfying values are the single number x */
        return all ? !nan_inside && same && sl : ev_outside(ev, lo, hi);
    case QT_QRY_CMP_NE: /* the failing values are x (and NaN) */
        return all ? !nan_inside && ev_outside(ev, lo, hi) : same && !sl;
    default: /* thresholds: the satisfying values form a half line */
        return all ? !nan_inside && sl && sh : !sl && !sh;
    }
}

/* The peak candidate of a block every value of which satisfies. */
static struct qt_cell
ev_stats_peak(const struct qt_ev *ev, const struct qt_stats *s)
{
    union qt_value lo, hi;
    if (ev->vt == QT_VT_FLOAT) {
        lo.f = s->min.f;
        hi.f = s->max.f;
    } else {
        lo.i = s->min.i;
        hi.i = s->max.i;
    }
    struct qt_cell cl = ev_cell(ev, lo), ch = ev_cell(ev, hi);
    switch (ev->cond.op) {
    case QT_QRY_CMP_LT:
    case QT_QRY_CMP_LE: return cl;
    case QT_QRY_CMP_NE: {
        long double dl = fabsl(ev_num(&cl) - ev->cond.value);
        long double dh = fabsl(ev_num(&ch) - ev->cond.value);
        return dh >= dl ? ch : cl;
    }
    default: return ch;
    }
}

/* ---- gaps ------------------------------------------------------------------- */

static bool
ev_is_gap(const struct qt_ev *ev, int64_t from, int64_t to)
{
    __int128 d = (__int128)to - from;
    return ev->inclusive ? d >= ev->min_ns : d > ev->min_ns;
}

static int
gap_to(struct qt_ev *ev, int64_t t)
{
    int rc = 0;
    if (ev->has_prev && ev_is_gap(ev, ev->prev_ts, t))
        rc = ev_row(ev, ev->prev_ts, t);
    ev->has_prev = true;
    ev->prev_ts = t;
    return rc;
}

/* ---- feeding ---------------------------------------------------------------- */

int
qt_ev_stats(struct qt_ev *ev, const struct qt_chunk *c)
{
    qt_assert(c->kind == QT_CHUNK_STATS);
    qt_assert(c->vtype == ev->vt);
    if (!ev->episodes) {
        if (ev_is_gap(ev, c->ts_min, c->ts_max))
            return 0; /* a gap may hide inside: decode */
        int rc = gap_to(ev, c->ts_min);
        ev->prev_ts = c->ts_max;
        return rc != 0 ? rc : 1;
    }
    if (ev->vt == QT_VT_STRING)
        return 0;
    if (ev_stats_decide(ev, &c->stats, true)) {
        ev_extend(ev, c->ts_min, c->ts_max, ev_stats_peak(ev, &c->stats));
        return 1;
    }
    if (ev_stats_decide(ev, &c->stats, false)) {
        int rc = ev_close(ev);
        return rc != 0 ? rc : 1;
    }
    return 0;
}

int
qt_ev_points(struct qt_ev *ev, const int64_t *ts, const union qt_value *v, uint32_t n)
{
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (!ev->episodes) {
            rc = gap_to(ev, ts[i]);
        } else if (ev_sat(ev, v[i])) {
            ev_extend(ev, ts[i], ts[i], ev_cell(ev, v[i]));
        } else {
            rc = ev_close(ev);
        }
    }
    return rc;
}

int
qt_ev_end(struct qt_ev *ev)
{
    if (ev->episodes)
        return ev_close(ev);
    if (!ev->bounded)
        return 0;
    return ev->has_prev && ev_is_gap(ev, ev->prev_ts, ev->r1) ? ev_row(ev, ev->prev_ts, ev->r1) : 0;
}
