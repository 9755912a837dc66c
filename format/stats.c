/*
 * stats.c -- block statistics: compute from values, check stored values
 * for plausibility, store/load the 40-byte on-disk form (see stats.h).
 *
 * Invariant: qt_stats_check() accepts everything qt_stats_compute() can
 * produce (tests check this on random and adversarial columns), so a block
 * written by this code is never rejected for its statistics.  Computation
 * is deterministic: fixed left-to-right order, no FMA (-ffp-contract=off),
 * so recomputing from decoded values reproduces the stored bits.
 */
#include "stats.h"

#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"
#include "qt_limits.h"

#include <math.h>
#include <string.h>

static void
stats_float(const double *v, uint32_t n, struct qt_stats *s)
{
    double sum = v[0];
    for (uint32_t i = 1; i < n; i++)
        sum += v[i];
    uint32_t i = 0;
    while (i < n && isnan(v[i]))
        i++;
    if (i == n) {
        s->min.f = s->max.f = qt_bits_f64(QT_STATS_NAN_BITS);
    } else {
        double lo = v[i], hi = v[i];
        for (; i < n; i++) {
            lo = v[i] < lo ? v[i] : lo; /* NaN compares false: skipped */
            hi = v[i] > hi ? v[i] : hi;
        }
        s->min.f = lo;
        s->max.f = hi;
    }
    s->sum.f = sum;
    s->first.f = v[0];
    s->last.f = v[n - 1];
}

static void
stats_int(const int64_t *v, uint32_t n, struct qt_stats *s)
{
    __extension__ __int128 sum = 0; /* n <= 2^13: cannot overflow 128 bits */
    int64_t lo = v[0], hi = v[0];
    for (uint32_t i = 0; i < n; i++) {
        sum += v[i];
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    s->sum_overflow = sum < INT64_MIN || sum > INT64_MAX;
    s->sum.i = s->sum_overflow ? 0 : (int64_t)sum;
    s->min.i = lo;
    s->max.i = hi;
    s->first.i = v[0];
    s->last.i = v[n - 1];
}

static int
stats_bool(const uint8_t *v, uint32_t n, struct qt_stats *s)
{
    int64_t trues = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (v[i] > 1)
            return qt_fail(QT_EINVAL, "stats: bool value not 0 or 1");
        trues += v[i];
    }
    s->min.i = trues == (int64_t)n ? 1 : 0;
    s->max.i = trues > 0 ? 1 : 0;
    s->sum.i = trues;
    s->first.i = v[0];
    s->last.i = v[n - 1];
    return 0;
}

int
qt_stats_compute(enum qt_vtype vtype, const void *values, uint32_t n, struct qt_stats *out)
{
    qt_assert(values != NULL && out != NULL);
    qt_assert(n >= 1 && n <= QT_BLOCK_POINTS_MAX);
    memset(out, 0, sizeof(*out));
    out->count = n;
    switch (vtype) {
    case QT_VT_FLOAT: stats_float(values, n, out); return 0;
    case QT_VT_INT: stats_int(values, n, out); return 0;
    case QT_VT_BOOL: return stats_bool(values, n, out);
    case QT_VT_STRING: return 0;
    }
    return qt_fail(QT_EINVAL, "stats: unknown vtype");
}

static int
check_float(const struct qt_stats *s)
{
    double lo = s->min.f, hi = s->max.f;
    if (isnan(lo) != isnan(hi))
        return qt_fail(QT_ECORRUPT, "stats: only one of float min/max is NaN");
    if (isnan(lo)) {
        if (qt_f64_bits(lo) != QT_STATS_NAN_BITS || qt_f64_bits(hi) != QT_STATS_NAN_BITS)
            return qt_fail(QT_ECORRUPT, "stats: all-NaN min/max not the canonical NaN");
        if (!isnan(s->first.f) || !isnan(s->last.f) || !isnan(s->sum.f))
            return qt_fail(QT_ECORRUPT, "stats: NaN min/max but an ordered first/last/sum");
        return 0;
    }
    if (!(lo <= hi))
        return qt_fail(QT_ECORRUPT, "stats: float min above max");
    if ((!isnan(s->first.f) && (s->first.f < lo || s->first.f > hi)) ||
        (!isnan(s->last.f) && (s->last.f < lo || s->last.f > hi)))
        return qt_fail(QT_ECORRUPT, "stats: float first/last outside [min, max]");
    if (s->count == 1 && (qt_f64_bits(s->first.f) != qt_f64_bits(s->last.f) ||
                          qt_f64_bits(s->sum.f) != qt_f64_bits(s->first.f)))
        return qt_fail(QT_ECORRUPT, "stats: single float value but first/last/sum differ");
    return 0;
}

static int
check_int(const struct qt_stats *s)
{
    int64_t lo = s->min.i, hi = s->max.i;
    if (lo > hi || s->first.i < lo || s->first.i > hi || s->last.i < lo || s->last.i > hi)
        return qt_fail(QT_ECORRUPT, "stats: int first/last outside [min, max]");
    __extension__ __int128 smin = (__int128)s->count * lo, smax = (__int128)s->count * hi;
    bool may_overflow = smin < INT64_MIN || smax > INT64_MAX;
    if (s->sum_overflow && (!may_overflow || s->sum.i != 0))
        return qt_fail(QT_ECORRUPT, "stats: int sum overflow flag impossible for [min, max]");
    if (!s->sum_overflow && (s->sum.i < smin || s->sum.i > smax))
        return qt_fail(QT_ECORRUPT, "stats: int sum outside [count*min, count*max]");
    if (s->count == 1 && (lo != hi || s->sum.i != lo))
        return qt_fail(QT_ECORRUPT, "stats: single int value but min/max/sum differ");
    return 0;
}

static int
check_bool(const struct qt_stats *s)
{
    int64_t lo = s->min.i, hi = s->max.i, sum = s->sum.i, n = s->count;
    if ((uint64_t)lo > 1 || (uint64_t)hi > 1 || (uint64_t)s->first.i > 1 || (uint64_t)s->last.i > 1)
        return qt_fail(QT_ECORRUPT, "stats: bool slot not 0 or 1");
    if (lo > hi || s->first.i < lo || s->first.i > hi || s->last.i < lo || s->last.i > hi)
        return qt_fail(QT_ECORRUPT, "stats: bool first/last outside [min, max]");
    /* sum counts trues: all true <=> min 1, none true <=> max 0. */
    bool ok = sum >= 0 && sum <= n && (lo == 1) == (sum == n) && (hi == 0) == (sum == 0);
    if (!ok || s->sum_overflow)
        return qt_fail(QT_ECORRUPT, "stats: bool true-count inconsistent with min/max");
    return 0;
}

int
qt_stats_check(enum qt_vtype vtype, const struct qt_stats *s)
{
    qt_assert(s != NULL);
    if (s->count == 0 || s->count > QT_BLOCK_POINTS_MAX)
        return qt_fail(QT_ECORRUPT, "stats: count outside 1..QT_BLOCK_POINTS_MAX");
    if (vtype != QT_VT_INT && s->sum_overflow)
        return qt_fail(QT_ECORRUPT, "stats: sum overflow flag on a non-int block");
    switch (vtype) {
    case QT_VT_FLOAT: return check_float(s);
    case QT_VT_INT: return check_int(s);
    case QT_VT_BOOL: return check_bool(s);
    case QT_VT_STRING:
        if ((s->min.i | s->max.i | s->sum.i | s->first.i | s->last.i) != 0)
            return qt_fail(QT_ECORRUPT, "stats: string block with non-zero value slots");
        return 0;
    }
    return qt_fail(QT_ECORRUPT, "stats: unknown vtype");
}

bool
qt_stats_equal(const struct qt_stats *a, const struct qt_stats *b)
{
    qt_assert(a != NULL && b != NULL);
    return a->count == b->count && a->sum_overflow == b->sum_overflow && a->min.i == b->min.i &&
           a->max.i == b->max.i && a->sum.i == b->sum.i && a->first.i == b->first.i &&
           a->last.i == b->last.i;
}

void
qt_stats_store(const struct qt_stats *s, uint8_t *out)
{
    qt_assert(s != NULL && out != NULL);
    /* union qt_stat: .i aliases the IEEE bits of .f (same 8 bytes). */
    static_assert(sizeof(union qt_stat) == 8, "stat slot is 8 bytes");
    qt_store_le64(out + 0, (uint64_t)s->min.i);
    qt_store_le64(out + 8, (uint64_t)s->max.i);
    qt_store_le64(out + 16, (uint64_t)s->sum.i);
    qt_store_le64(out + 24, (uint64_t)s->first.i);
    qt_store_le64(out + 32, (uint64_t)s->last.i);
}

void
qt_stats_load(const uint8_t *in, uint32_t count, bool sum_overflow, struct qt_stats *s)
{
    qt_assert(in != NULL && s != NULL);
    memset(s, 0, sizeof(*s));
    s->count = count;
    s->sum_overflow = sum_overflow;
    s->min.i = (int64_t)qt_load_le64(in + 0);
    s->max.i = (int64_t)qt_load_le64(in + 8);
    s->sum.i = (int64_t)qt_load_le64(in + 16);
    s->first.i = (int64_t)qt_load_le64(in + 24);
    s->last.i = (int64_t)qt_load_le64(in + 32);
}
