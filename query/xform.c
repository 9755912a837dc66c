/*
 * xform.c -- where / rate / delta over one series' points (contract in
 * xform.h).
 *
 * Each stage filters or maps the buffer in place: every stage emits at most
 * one point per input point, so the output never outgrows the input chunk.
 * Invariants: out_vt is the type after the last stage; a stage's has_prev
 * is reset at every series start, so no state leaks between series.
 */
#include "xform.h"

#include <math.h>
#include <string.h>

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"

#define TWO63 9223372036854775808.0

bool
qt_xf_cond_float(const struct qt_qry_cond *c, double v)
{
    switch (c->op) {
    case QT_QRY_CMP_GT: return v > c->value;
    case QT_QRY_CMP_GE: return v >= c->value;
    case QT_QRY_CMP_LT: return v < c->value;
    case QT_QRY_CMP_LE: return v <= c->value;
    case QT_QRY_CMP_EQ: return v == c->value;
    case QT_QRY_CMP_NE: return !isnan(v) && v != c->value;
    }
    qt_unreachable();
}

/* t = the integer bound b (floor or ceil of the number), or never/always
 * when b is outside int64. */
static void
int_bound(double b, bool above_passes, enum qt_xf_int *mode, int64_t *t)
{
    if (b >= TWO63) {
        *mode = above_passes ? QT_XF_INT_NEVER : QT_XF_INT_ALWAYS;
    } else if (b < -TWO63) {
        *mode = above_passes ? QT_XF_INT_ALWAYS : QT_XF_INT_NEVER;
    } else {
        *mode = QT_XF_INT_CMP;
        *t = (int64_t)b;
    }
}

void
qt_xf_cond_int_prepare(const struct qt_qry_cond *c, enum qt_xf_int *mode, enum qt_qry_cmp *op,
                       int64_t *t)
{
    qt_assert(isfinite(c->value));
    double f = floor(c->value), ce = ceil(c->value);
    *op = c->op;
    *t = 0;
    switch (c->op) {
    case QT_QRY_CMP_GT: int_bound(f, true, mode, t); break;   /* v > x  <=> v > floor(x) */
    case QT_QRY_CMP_LE: int_bound(f, false, mode, t); break;  /* v <= x <=> v <= floor(x) */
    case QT_QRY_CMP_GE: int_bound(ce, true, mode, t); break;  /* v >= x <=> v >= ceil(x) */
    case QT_QRY_CMP_LT: int_bound(ce, false, mode, t); break; /* v < x  <=> v < ceil(x) */
    case QT_QRY_CMP_EQ:
    case QT_QRY_CMP_NE: {
        bool exact = f == c->value && f >= -TWO63 && f < TWO63;
        *mode = exact ? QT_XF_INT_CMP : c->op == QT_QRY_CMP_EQ ? QT_XF_INT_NEVER : QT_XF_INT_ALWAYS;
        *t = exact ? (int64_t)f : 0;
        break;
    }
    }
}

bool
qt_xf_cond_int(enum qt_xf_int mode, enum qt_qry_cmp op, int64_t t, int64_t v)
{
    if (mode != QT_XF_INT_CMP)
        return mode == QT_XF_INT_ALWAYS;
    switch (op) {
    case QT_QRY_CMP_GT: return v > t;
    case QT_QRY_CMP_GE: return v >= t;
    case QT_QRY_CMP_LT: return v < t;
    case QT_QRY_CMP_LE: return v <= t;
    case QT_QRY_CMP_EQ: return v == t;
    case QT_QRY_CMP_NE: return v != t;
    }
    qt_unreachable();
}

int
qt_xf_init(struct qt_xf *x, struct qt_qctx *ctx, const struct qt_qry *q)
{
    memset(x, 0, sizeof(*x));
    x->ctx = ctx;
    for (uint32_t i = 0; i < q->stages_count; i++) {
        const struct qt_qry_stage *s = &q->stages[i];
        struct qt_xf_stage *d = &x->st[x->n];
        if (s->kind == QT_QRY_STAGE_WHERE) {
            d->kind = QT_XF_WHERE;
            d->cond = s->u.where;
            qt_xf_cond_int_prepare(&d->cond, &d->int_mode, &d->int_op, &d->int_t);
        } else if (s->kind == QT_QRY_STAGE_RATE || s->kind == QT_QRY_STAGE_DELTA) {
            d->kind = s->kind == QT_QRY_STAGE_RATE ? QT_XF_RATE : QT_XF_DELTA;
        } else {
            continue;
        }
        qt_assert(x->n < QT_QUERY_STAGES_MAX);
        x->n++;
    }
    if (x->n == 0)
        return 0;
    x->ts = qt_malloc(QT_BLOCK_POINTS_MAX * sizeof(*x->ts));
    x->v = qt_malloc(QT_BLOCK_POINTS_MAX * sizeof(*x->v));
    if (x->ts == NULL || x->v == NULL)
        return qt_qctx_fail(ctx, QT_ENOMEM, "transform: out of memory");
    return 0;
}

void
qt_xf_deinit(struct qt_xf *x)
{
    qt_free(x->ts);
    qt_free(x->v);
    x->ts = NULL;
    x->v = NULL;
}

bool
qt_xf_active(const struct qt_xf *x)
{
    return x->n > 0;
}

enum qt_vtype
qt_xf_out_vtype(const struct qt_xf *x, enum qt_vtype vt, const char **why)
{
    for (uint32_t i = 0; i < x->n; i++) {
        const struct qt_xf_stage *s = &x->st[i];
        bool numeric = vt == QT_VT_FLOAT || vt == QT_VT_INT;
        if (vt == QT_VT_STRING || (s->kind != QT_XF_WHERE && !numeric)) {
            *why = s->kind == QT_XF_WHERE ? "where" : s->kind == QT_XF_RATE ? "rate" : "delta";
            return 0;
        }
        if (s->kind == QT_XF_RATE)
            vt = QT_VT_FLOAT;
    }
    return vt;
}

void
qt_xf_reset(struct qt_xf *x, enum qt_vtype vt)
{
    for (uint32_t i = 0; i < x->n; i++) {
        x->st[i].has_prev = false;
        x->st[i].in_vt = vt;
        if (x->st[i].kind == QT_XF_RATE)
            vt = QT_VT_FLOAT;
    }
    x->out_vt = vt;
}

/* Keep the points of (its, iv)[0..n) that pass, writing them to (ts, v)
 * (which may be the same arrays): one loop per operator so the test
 * compiles to a branch-free compaction. */
#define WHERE_LOOP(test)                                                                           \
    for (uint32_t i = 0; i < n; i++) {                                                             \
        ts[k] = its[i];                                                                            \
        v[k] = iv[i];                                                                              \
        k += (test);                                                                               \
    }

static uint32_t
where_float(const struct qt_qry_cond *c, const int64_t *its, const union qt_value *iv, uint32_t n,
            int64_t *ts, union qt_value *v)
{
    uint32_t k = 0;
    double x = c->value;
    switch (c->op) {
    case QT_QRY_CMP_GT: WHERE_LOOP(iv[i].f > x) break;
    case QT_QRY_CMP_GE: WHERE_LOOP(iv[i].f >= x) break;
    case QT_QRY_CMP_LT: WHERE_LOOP(iv[i].f < x) break;
    case QT_QRY_CMP_LE: WHERE_LOOP(iv[i].f <= x) break;
    case QT_QRY_CMP_EQ: WHERE_LOOP(iv[i].f == x) break;
    case QT_QRY_CMP_NE: WHERE_LOOP(iv[i].f < x || iv[i].f > x) break; /* NaN fails */
    }
    return k;
}

static uint32_t
where_int(const struct qt_xf_stage *s, const int64_t *its, const union qt_value *iv, uint32_t n,
          int64_t *ts, union qt_value *v)
{
    uint32_t k = 0;
    int64_t t = s->int_t;
    if (s->int_mode != QT_XF_INT_CMP) {
        bool all = s->int_mode == QT_XF_INT_ALWAYS;
        WHERE_LOOP(all)
        return k;
    }
    switch (s->int_op) {
    case QT_QRY_CMP_GT: WHERE_LOOP(iv[i].i > t) break;
    case QT_QRY_CMP_GE: WHERE_LOOP(iv[i].i >= t) break;
    case QT_QRY_CMP_LT: WHERE_LOOP(iv[i].i < t) break;
    case QT_QRY_CMP_LE: WHERE_LOOP(iv[i].i <= t) break;
    case QT_QRY_CMP_EQ: WHERE_LOOP(iv[i].i == t) break;
    case QT_QRY_CMP_NE: WHERE_LOOP(iv[i].i != t) break;
    }
    return k;
}

static uint32_t
stage_where(const struct qt_xf_stage *s, const int64_t *its, const union qt_value *iv, uint32_t n,
            int64_t *ts, union qt_value *v)
{
    if (s->in_vt == QT_VT_FLOAT)
        return where_float(&s->cond, its, iv, n, ts, v);
    return where_int(s, its, iv, n, ts, v);
}

/* rate / delta of (t0,a) -> (t1,b) for the stage's input type. */
static int
stage_diff_one(struct qt_xf *x, const struct qt_xf_stage *s, int64_t t0, union qt_value a,
               int64_t t1, union qt_value b, union qt_value *out)
{
    if (s->kind == QT_XF_DELTA) {
        if (s->in_vt == QT_VT_FLOAT) {
            out->f = b.f - a.f;
            return 0;
        }
        if (__builtin_sub_overflow(b.i, a.i, &out->i))
            return qt_qctx_fail(x->ctx, QT_ELIMIT, "delta: integer difference overflows int64");
        return 0;
    }
    double secs = (double)((__int128)t1 - t0) / 1e9;
    double inc;
    if (s->in_vt == QT_VT_FLOAT)
        inc = b.f < a.f ? b.f : b.f - a.f;
    else
        inc = b.i < a.i ? (double)b.i : (double)((__int128)b.i - a.i);
    out->f = inc / secs;
    return 0;
}

static int
stage_diff(struct qt_xf *x, struct qt_xf_stage *s, const int64_t *its, const union qt_value *iv,
           uint32_t *n)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < *n; i++) {
        int64_t t = its[i]; /* read before the write below may overwrite it */
        union qt_value cur = iv[i], d;
        if (s->has_prev) {
            int rc = stage_diff_one(x, s, s->prev_ts, s->prev, t, cur, &d);
            if (rc != 0)
                return rc;
            x->ts[k] = t;
            x->v[k++] = d;
        }
        s->has_prev = true;
        s->prev_ts = t;
        s->prev = cur;
    }
    *n = k;
    return 0;
}

int
qt_xf_run(struct qt_xf *x, const int64_t *ts, const union qt_value *v, uint32_t n,
          const int64_t **ots, const union qt_value **ov, uint32_t *on)
{
    qt_assert(x->n > 0);
    qt_assert(n <= QT_BLOCK_POINTS_MAX);
    /* The first stage reads the caller's arrays, later ones the buffers in
     * place (each writes at most one point per point read, never ahead). */
    const int64_t *its = ts;
    const union qt_value *iv = v;
    for (uint32_t i = 0; i < x->n && n > 0; i++) {
        struct qt_xf_stage *s = &x->st[i];
        if (s->kind == QT_XF_WHERE) {
            n = stage_where(s, its, iv, n, x->ts, x->v);
        } else {
            int rc = stage_diff(x, s, its, iv, &n);
            if (rc != 0)
                return rc;
        }
        its = x->ts;
        iv = x->v;
    }
    *ots = x->ts;
    *ov = x->v;
    *on = its == ts ? 0 : n;
    return 0;
}
