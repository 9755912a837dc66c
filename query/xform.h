/*
 * xform.h -- the per-series point transforms of a query: `where value <op>
 * n`, `rate` and `delta`, applied in the order written.
 *
 *   where  keeps points whose value compares true; NaN never does (not even
 *          for !=).  Integers and booleans (0/1) compare exactly with the
 *          number (no rounding through double).
 *   rate   for consecutive points (t0,v0),(t1,v1) of the stage's input: a
 *          point at t1 with increase / (t1 - t0 in seconds), where increase
 *          is v1 - v0, or v1 when v1 < v0 (a counter reset, as Prometheus
 *          does).  Always FLOAT.
 *   delta  v1 - v0 at t1; INT stays INT (an overflow of int64 fails the
 *          query), FLOAT stays FLOAT.
 * The first point of a series produces nothing from rate/delta.  Strings
 * take none of these; booleans only `where` (QT_EINVAL with a message).
 *
 * A transform holds only the previous point per stage, so it streams.
 * Not thread-safe: one per query.
 */
#ifndef QT_XFORM_H
#define QT_XFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "format/codec.h"
#include "query/qctx.h"
#include "query/qparse.h"
#include "storage/memtable.h"

enum qt_xf_kind { QT_XF_WHERE = 1, QT_XF_RATE = 2, QT_XF_DELTA = 3 };

/* `where` on integers: v passes when (never) / (always) / v <op> t. */
enum qt_xf_int { QT_XF_INT_NEVER = 0, QT_XF_INT_ALWAYS = 1, QT_XF_INT_CMP = 2 };

struct qt_xf_stage {
    enum qt_xf_kind kind;
    struct qt_qry_cond cond; /* WHERE */
    enum qt_xf_int int_mode; /* WHERE on INT/BOOL: precomputed exact test */
    enum qt_qry_cmp int_op;
    int64_t int_t;
    bool has_prev; /* RATE/DELTA: previous input point of this series */
    int64_t prev_ts;
    union qt_value prev;
    enum qt_vtype in_vt; /* value type entering this stage */
};

struct qt_xf {
    struct qt_qctx *ctx;
    struct qt_xf_stage st[QT_QUERY_STAGES_MAX];
    uint32_t n;
    enum qt_vtype out_vt;
    int64_t *ts; /* output buffers, QT_BLOCK_POINTS_MAX each */
    union qt_value *v;
};

/* Collect q's where/rate/delta stages (in order).  0 or QT_ENOMEM. */
int qt_xf_init(struct qt_xf *x, struct qt_qctx *ctx, const struct qt_qry *q);

void qt_xf_deinit(struct qt_xf *x);

/* True when the query has at least one transform stage. */
bool qt_xf_active(const struct qt_xf *x);

/* The value type after the transforms for input type vt, or 0 when a
 * stage cannot take it (*why names the stage). */
enum qt_vtype qt_xf_out_vtype(const struct qt_xf *x, enum qt_vtype vt, const char **why);

/* Start a new series of value type vt (must be accepted by
 * qt_xf_out_vtype): forget every previous point. */
void qt_xf_reset(struct qt_xf *x, enum qt_vtype vt);

/* Run points ts/v[0..n) (ascending ts, n <= QT_BLOCK_POINTS_MAX, one
 * series) through the stages.  The output (ots, ov with on points; value type
 * x->out_vt) stays valid until the next call.  0 or QT_ELIMIT (delta
 * overflow; message in ctx). */
int qt_xf_run(struct qt_xf *x, const int64_t *ts, const union qt_value *v, uint32_t n,
              const int64_t **ots, const union qt_value **ov, uint32_t *on);

/* One `where` test, exposed for the episode detector and the tests:
 * does value v of type vt satisfy c?  (NaN never does.) */
bool qt_xf_cond_float(const struct qt_qry_cond *c, double v);

/* Exact integer form of condition c: sets *mode, *op and *t. */
void qt_xf_cond_int_prepare(const struct qt_qry_cond *c, enum qt_xf_int *mode, enum qt_qry_cmp *op,
                            int64_t *t);
bool qt_xf_cond_int(enum qt_xf_int mode, enum qt_qry_cmp op, int64_t t, int64_t v);

#endif
