/*
 * rplan.c -- the rollup planner (contract in rplan.h; DESIGN.md 15
 * "Rollups", "The planner").
 *
 * Invariants: a rollup piece starts and ends on a multiple of the chosen
 * interval and lies inside a span qt_db_rollup_spans() reported current,
 * so every rollup bucket read is whole and inside one query bucket; pieces
 * tile the query range in order without overlap.
 */
#include "query/rplan.h"

#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "query/qtime.h"
#include "query/tz.h"
#include "storage/rollup.h"

#include <stdio.h>
#include <string.h>

/* Every function combines exactly from summaries of this value type. */
static bool
rp_fns_exact(const struct qt_qry_stage_agg *a, enum qt_vtype vt, struct qt_rplan *p)
{
    for (uint32_t i = 0; i < a->fns_count; i++) {
        switch (a->fns[i].fn) {
        case QT_QRY_AGG_COUNT: break;
        case QT_QRY_AGG_MIN:
        case QT_QRY_AGG_MAX:
        case QT_QRY_AGG_SPREAD: p->need_minmax = true; break;
        case QT_QRY_AGG_FIRST: p->need_first = p->need_firstlast_ts = true; break;
        case QT_QRY_AGG_LAST: p->need_last = p->need_firstlast_ts = true; break;
        case QT_QRY_AGG_SUM:
        case QT_QRY_AGG_AVG:
            if (vt != QT_VT_INT)
                return false; /* float sums round per bucket: not bit-identical */
            p->need_sum = true;
            break;
        case QT_QRY_AGG_STDDEV:
        case QT_QRY_AGG_PERCENTILE: return false;
        }
    }
    return true;
}

/* Every local-day bucket boundary inside (t0, t1) is a multiple of iv. */
static bool
rp_tz_aligned(const struct qt_qry_stage_agg *a, int64_t t0, int64_t t1, int64_t iv)
{
    int64_t s = 0, e = 0;
    for (uint32_t k = 0; k <= QT_QUERY_BUCKETS_MAX; k++) {
        qt_tz_bucket(a->tz, t0, a->bucket_days, &s, &e);
        if (e >= t1 || e == INT64_MAX)
            return true;
        if (e % iv != 0)
            return false;
        t0 = e;
    }
    return false; /* too many buckets to check: read raw */
}

/* The largest interval of the rule usable for q's buckets, or -1. */
static int
rp_interval(const struct qt_rollup_rule *r, const struct qt_qry *q)
{
    const struct qt_qry_stage_agg *a = &q->agg->u.agg;
    for (int k = (int)r->n_intervals - 1; k >= 0; k--) {
        int64_t iv = r->interval_ns[k];
        bool ok = a->bucket_ns == 0 ||
                  (a->tz == NULL ? a->bucket_ns % iv == 0
                                 : rp_tz_aligned(a, q->range.start.ns, q->range.end.ns, iv));
        if (ok)
            return k;
    }
    return -1;
}

/* Smallest multiple of iv >= t (t itself when aligned), saturating. */
static int64_t
rp_ceil(int64_t t, int64_t iv)
{
    int64_t f = qt_time_floor_div(t, iv);
    if (f * iv == t)
        return t;
    return f >= INT64_MAX / iv ? INT64_MAX : (f + 1) * iv;
}

static int64_t
rp_floor(int64_t t, int64_t iv)
{
    return qt_time_floor_div(t, iv) * iv;
}

/* Append piece [t0, t1) (merging adjacent raw pieces); false when full. */
static bool
rp_add(struct qt_rplan *p, int64_t t0, int64_t t1, bool rollup)
{
    if (t0 >= t1)
        return true;
    if (p->n > 0 && !rollup && !p->p[p->n - 1].rollup && p->p[p->n - 1].t1 == t0) {
        p->p[p->n - 1].t1 = t1;
        return true;
    }
    if (p->n == QT_ROLLUP_PLAN_PIECES_MAX)
        return false;
    p->p[p->n++] = (struct qt_rplan_piece){t0, t1, rollup};
    return true;
}

int
qt_rplan_make(struct qt_db *db, const struct qt_qry *q, const struct qt_sel *sel, int64_t now_ns,
              struct qt_rplan *p)
{
    qt_assert(db != NULL && q != NULL && sel != NULL && p != NULL);
    memset(p, 0, sizeof(*p));
    if (q->agg == NULL || !q->range.bounded || sel->n == 0)
        return 0;
    for (uint32_t i = 0; i < q->stages_count; i++) {
        enum qt_qry_stage_kind k = q->stages[i].kind;
        if (k == QT_QRY_STAGE_WHERE || k == QT_QRY_STAGE_RATE || k == QT_QRY_STAGE_DELTA)
            return 0; /* they need every raw value */
    }
    struct qt_rplan need = {0};
    for (uint32_t i = 0; i < sel->n; i++) {
        enum qt_vtype vt = sel->v[i].vtype;
        if ((vt != QT_VT_FLOAT && vt != QT_VT_INT) || !rp_fns_exact(&q->agg->u.agg, vt, &need))
            return 0;
    }
    /* Whole-range or epoch buckets of whole shards: every raw block lies
     * inside one bucket, so raw blocks answer from their statistics
     * without decoding, which reading rollups cannot beat. */
    const struct qt_qry_stage_agg *ag = &q->agg->u.agg;
    int64_t dur = qt_db_shard_duration(db);
    if (ag->tz == NULL && (ag->bucket_ns == 0 || ag->bucket_ns % dur == 0))
        return 0;
    struct qt_rollup_rule r;
    if (!qt_db_rollup_rule(db, q->sel.measurement.p, q->sel.measurement.len, &r))
        return 0;
    int k = rp_interval(&r, q);
    if (k < 0)
        return 0;
    int64_t iv = r.interval_ns[k];
    struct qt_rollup_span sp[QT_ROLLUP_PLAN_PIECES_MAX / 2];
    uint32_t ns = 0;
    int64_t t0 = q->range.start.ns, t1 = q->range.end.ns;
    int rc = qt_db_rollup_spans(db, t0, t1, now_ns, sp, QT_ROLLUP_PLAN_PIECES_MAX / 2, &ns);
    if (rc != 0)
        return rc;
    struct qt_rplan out = need;
    out.interval_ns = iv;
    snprintf(out.interval, sizeof(out.interval), "%s", r.interval_name[k]);
    int64_t floor = qt_db_rollup_floor(db, q->sel.measurement.p, q->sel.measurement.len,
                                       r.interval_name[k], now_ns);
    int64_t at = t0;
    bool ok = true, any = false;
    for (uint32_t i = 0; i < ns && ok; i++) {
        int64_t a = rp_ceil(sp[i].t0 > floor ? sp[i].t0 : floor, iv), b = rp_floor(sp[i].t1, iv);
        if (a >= b)
            continue;
        ok = rp_add(&out, at, a, false) && rp_add(&out, a, b, true);
        any = true;
        at = b;
    }
    ok = ok && rp_add(&out, at, t1, false);
    if (ok && any)
        *p = out;
    return 0;
}

void
qt_rplan_source(const struct qt_rplan *p, char *out, size_t cap)
{
    bool raw = false;
    for (uint32_t i = 0; i < p->n; i++)
        raw = raw || !p->p[i].rollup;
    if (p->n == 0)
        snprintf(out, cap, "raw");
    else
        snprintf(out, cap, "rollup:%s%s", p->interval, raw ? "+raw" : "");
}
