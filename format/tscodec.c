/*
 * tscodec.c -- timestamp column codec (see tscodec.h; layout in DESIGN.md
 * "Timestamp codec").
 *
 * Timestamps of one series block are nearly regular: a fixed interval, a
 * clock precision (ms, s) far coarser than the nanosecond unit, jitter of a
 * few clock ticks, and now and then a gap or a late point.  The encoder
 *   1. computes every delta d = ts[i+1] - ts[i] modulo 2^64 and their GCD,
 *      the *unit* (1e6 for millisecond clocks): one pass, a multiply per
 *      value for the divisibility test, a full GCD only when it shrinks;
 *   2. if every delta is the same: CONST (first, delta), ~0 bits/point;
 *   3. else divides the unit out exactly (multiply by the inverse of its odd
 *      part, no division instructions) giving q, and plans the DOD body two
 *      ways: order 1 packs q (best for jitter around a grid, one outlier per
 *      gap), order 2 packs q[i+1] - q[i] (best for drifting intervals); the
 *      values go in patched FOR runs of 128 (codec_int.h);
 *   4. keeps the smallest of DOD and RAW.
 *
 * Invariants: any int64 sequence round-trips exactly, because every step is
 * exact arithmetic modulo 2^64 (q * unit == d, and the decoder's prefix sums
 * wrap the same way).  The decoder unpacks a run straight into the output
 * array and turns it into timestamps in place with one or two running sums
 * and a multiply per value: no branch per value.
 */
#include "tscodec.h"

#include "codec.h"
#include "codec_int.h"
#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"
#include "qt_limits.h"

/* Exact division by unit = odd << shift: d / unit == (d >> shift) * inv. */
struct ts_div {
    const int64_t *ts;
    uint32_t n;
    uint64_t unit;
    uint64_t inv; /* inverse of the odd part modulo 2^64 */
    uint32_t shift;
};

/* DOD body fields before the runs: first, unit, order, q0. */
#define TS_DOD_FIXED_MAX (3u * QT_VARINT_MAX + 1u)

size_t
qt_ts_bound(uint32_t n)
{
    size_t raw = (size_t)n * 8;
    size_t cons = 2 * QT_VARINT_MAX;
    return QT_CODEC_HEAD_MAX + (raw > cons ? raw : cons);
}

/* Inverse of odd x modulo 2^64 (Newton: each step doubles the good bits). */
static uint64_t
ts_inverse(uint64_t x)
{
    qt_assert(x & 1);
    uint64_t y = x; /* x * x == 1 mod 8: 3 good bits */
    for (int i = 0; i < 5; i++)
        y *= 2 - x * y;
    qt_assert(x * y == 1);
    return y;
}

static uint64_t
ts_gcd(uint64_t a, uint64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    uint64_t a0 = a, b0 = b;
    int shift = __builtin_ctzll(a | b);
    a >>= __builtin_ctzll(a);
    while (b != 0) {
        b >>= __builtin_ctzll(b);
        if (a > b) {
            uint64_t t = a;
            a = b;
            b = t;
        }
        b -= a;
    }
    uint64_t g = a << shift;
    qt_assert(g != 0);
    qt_assert_slow(a0 % g == 0 && b0 % g == 0);
    (void)a0;
    (void)b0;
    return g;
}

/*
 * One pass over the deltas (n >= 2): returns true when they are all equal,
 * and stores their GCD (of absolute values, as int64) in *unit (0 when every
 * delta is 0).  A delta divisible by the current GCD costs one multiply: x
 * is a multiple of odd o iff x * inv(o) mod 2^64 <= UINT64_MAX / o.
 */
static bool
ts_scan(const int64_t *ts, uint32_t n, uint64_t *unit)
{
    qt_assert(n >= 2);
    uint64_t d0 = (uint64_t)ts[1] - (uint64_t)ts[0];
    uint64_t g = 0, inv = 1, lim = 0, low = 0; /* g = 0: only 0 divides */
    uint32_t shift = 0;
    uint64_t differ = 0;
    for (uint32_t i = 1; i < n; i++) {
        uint64_t d = (uint64_t)ts[i] - (uint64_t)ts[i - 1];
        differ |= d ^ d0;
        uint64_t a = (d >> 63) ? -d : d;
        if ((a & low) != 0 || (a >> shift) * inv > lim) {
            g = ts_gcd(g, a);
            shift = (uint32_t)__builtin_ctzll(g);
            low = (1ull << shift) - 1;
            inv = ts_inverse(g >> shift);
            lim = UINT64_MAX / (g >> shift);
        }
    }
    qt_assert(g != 0 || differ == 0);
    *unit = g;
    return differ == 0;
}

static inline uint64_t
ts_quot(const struct ts_div *dv, uint32_t i)
{
    uint64_t d = (uint64_t)dv->ts[i + 1] - (uint64_t)dv->ts[i];
    /* Arithmetic shift (GCC/Clang define >> on negative values so): exact,
     * since the unit's power of two divides d. */
    return (uint64_t)((int64_t)d >> dv->shift) * dv->inv;
}

/* Order 1 values: q[i] = (ts[i+1] - ts[i]) / unit. */
static void
ts_fill_q(const void *src, uint32_t first, uint32_t m, int64_t *out)
{
    const struct ts_div *dv = src;
    qt_assert(m <= QT_CODEC_RUN_VALUES);
    qt_assert(first + m < dv->n);
    for (uint32_t i = 0; i < m; i++)
        out[i] = (int64_t)ts_quot(dv, first + i);
}

/* Order 2 values: q[i+1] - q[i]. */
static void
ts_fill_dod(const void *src, uint32_t first, uint32_t m, int64_t *out)
{
    const struct ts_div *dv = src;
    qt_assert(m <= QT_CODEC_RUN_VALUES);
    qt_assert(first + m + 1 < dv->n);
    uint64_t prev = ts_quot(dv, first);
    for (uint32_t i = 0; i < m; i++) {
        uint64_t q = ts_quot(dv, first + i + 1);
        out[i] = (int64_t)(q - prev);
        prev = q;
    }
}

/* Size of the DOD body with `order` (runs planned into plans[]). */
static size_t
ts_dod_plan(const struct ts_div *dv, uint32_t n, uint32_t order, struct qt_codec_run *plans)
{
    qt_assert(n >= 3 && (order == 1 || order == 2));
    size_t fixed = qt_codec_varint_len(qt_zigzag64(dv->ts[0])) + qt_codec_varint_len(dv->unit) + 1;
    if (order == 2)
        fixed += qt_codec_varint_len(qt_zigzag64((int64_t)ts_quot(dv, 0)));
    qt_assert(fixed <= TS_DOD_FIXED_MAX);
    if (order == 1)
        return fixed + qt_codec_runs_plan(ts_fill_q, dv, n - 1, plans);
    return fixed + qt_codec_runs_plan(ts_fill_dod, dv, n - 2, plans);
}

static int
ts_dod_write(const struct ts_div *dv, uint32_t n, uint32_t order, const struct qt_codec_run *plans,
             uint8_t *out, size_t cap, size_t *pos)
{
    qt_assert(n >= 3 && (order == 1 || order == 2));
    qt_assert(dv->n == n && dv->unit != 0);
    int rc = qt_varint_put(out, cap, pos, qt_zigzag64(dv->ts[0]));
    if (rc == 0)
        rc = qt_varint_put(out, cap, pos, dv->unit);
    if (rc == 0 && *pos >= cap)
        rc = QT_ENOSPACE;
    if (rc != 0)
        return rc;
    out[(*pos)++] = (uint8_t)order;
    if (order == 1)
        return qt_codec_runs_write(ts_fill_q, dv, n - 1, plans, out, cap, pos);
    rc = qt_varint_put(out, cap, pos, qt_zigzag64((int64_t)ts_quot(dv, 0)));
    if (rc != 0)
        return rc;
    return qt_codec_runs_write(ts_fill_dod, dv, n - 2, plans, out, cap, pos);
}

/* Non-constant series of n >= 3: the smallest of DOD order 1, 2 and RAW. */
static int
ts_encode_varying(const int64_t *ts, uint32_t n, uint64_t unit, uint8_t *out, size_t cap,
                  size_t *pos)
{
    qt_assert(n >= 3 && unit != 0);
    struct qt_codec_run plans1[QT_CODEC_RUNS_MAX], plans2[QT_CODEC_RUNS_MAX];
    uint32_t shift = (uint32_t)__builtin_ctzll(unit);
    struct ts_div dv = {
        .ts = ts, .n = n, .unit = unit, .inv = ts_inverse(unit >> shift), .shift = shift};
    size_t s1 = ts_dod_plan(&dv, n, 1, plans1);
    size_t s2 = ts_dod_plan(&dv, n, 2, plans2);
    size_t raw = (size_t)n * 8;
    if (raw <= s1 && raw <= s2) {
        int rc = qt_codec_head_put(out, cap, pos, n, QT_ENC_TS_RAW);
        return rc != 0 ? rc : qt_codec_raw_put(ts, n, out, cap, pos);
    }
    int rc = qt_codec_head_put(out, cap, pos, n, QT_ENC_TS_DOD);
    if (rc != 0)
        return rc;
    size_t start = *pos;
    uint32_t order = s1 <= s2 ? 1 : 2;
    rc = ts_dod_write(&dv, n, order, order == 1 ? plans1 : plans2, out, cap, pos);
    qt_assert(rc != 0 || *pos - start == (order == 1 ? s1 : s2));
    return rc;
}

int
qt_ts_encode(const int64_t *ts, uint32_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    qt_assert(n == 0 || ts != NULL);
    qt_assert(out != NULL && out_len != NULL);
    if (n > QT_BLOCK_POINTS_MAX)
        return qt_fail(QT_EINVAL, "ts: more than QT_BLOCK_POINTS_MAX values");
    size_t pos = 0;
    int rc;
    uint64_t unit = 0;
    if (n == 0) {
        rc = qt_codec_head_put(out, cap, &pos, 0, QT_ENC_TS_RAW);
    } else if (n <= 2 || ts_scan(ts, n, &unit)) {
        uint64_t delta = n >= 2 ? (uint64_t)ts[1] - (uint64_t)ts[0] : 0;
        rc = qt_codec_head_put(out, cap, &pos, n, QT_ENC_TS_CONST);
        if (rc == 0)
            rc = qt_varint_put(out, cap, &pos, qt_zigzag64(ts[0]));
        if (rc == 0)
            rc = qt_varint_put(out, cap, &pos, qt_zigzag64((int64_t)delta));
    } else {
        rc = ts_encode_varying(ts, n, unit, out, cap, &pos);
    }
    if (rc != 0)
        return rc;
    qt_assert(pos <= qt_ts_bound(n));
    *out_len = pos;
    return 0;
}

/* Turn unpacked offsets s[0..k) into timestamps in place: order 1 adds
 * (off + base) * unit to t; order 2 first adds it to the running delta. */
static inline void
ts_prefix(uint64_t *s, uint32_t k, uint32_t order, uint64_t base, uint64_t unit, uint64_t *t,
          uint64_t *dq)
{
    qt_assert(k >= 1 && k <= QT_CODEC_RUN_VALUES);
    qt_assert(order == 1 || order == 2);
    uint64_t bu = base * unit, tt = *t, q = *dq;
    if (order == 1) {
        for (uint32_t i = 0; i < k; i++) {
            tt += s[i] * unit + bu;
            s[i] = tt;
        }
    } else {
        for (uint32_t i = 0; i < k; i++) {
            q += s[i] * unit + bu;
            tt += q;
            s[i] = tt;
        }
    }
    *t = tt;
    *dq = q;
}

static int
ts_decode_dod(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, int64_t *out)
{
    qt_assert(*pos <= len);
    qt_assert(n <= QT_BLOCK_POINTS_MAX);
    uint64_t zfirst = 0, unit = 0, zq0 = 0;
    int rc = qt_varint_get(buf, len, pos, &zfirst);
    if (rc == 0)
        rc = qt_varint_get(buf, len, pos, &unit);
    if (rc != 0)
        return rc;
    if (unit == 0)
        return qt_fail(QT_ECORRUPT, "ts: zero unit");
    if (*pos >= len)
        return qt_fail(QT_ETRUNC, "ts: missing order");
    uint32_t order = buf[(*pos)++];
    if (order != 1 && order != 2)
        return qt_fail(QT_ECORRUPT, "ts: delta order not 1 or 2");
    if (n < order)
        return qt_fail(QT_ECORRUPT, "ts: too few values for the delta order");
    if (order == 2 && (rc = qt_varint_get(buf, len, pos, &zq0)) != 0)
        return rc;
    uint64_t t = (uint64_t)qt_unzigzag64(zfirst);
    uint64_t dq = (uint64_t)qt_unzigzag64(zq0) * unit;
    out[0] = (int64_t)t;
    if (order == 2) {
        t += dq;
        out[1] = (int64_t)t;
    }
    uint32_t m = n - order;
    for (uint32_t r = 0; r < m; r += QT_CODEC_RUN_VALUES) {
        uint32_t k = m - r < QT_CODEC_RUN_VALUES ? m - r : QT_CODEC_RUN_VALUES;
        uint64_t *s = (uint64_t *)(out + order + r);
        uint64_t base = 0;
        rc = qt_codec_run_read(buf, len, pos, k, s, &base);
        if (rc != 0)
            return rc;
        ts_prefix(s, k, order, base, unit, &t, &dq);
    }
    return 0;
}

static int
ts_decode_const(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, int64_t *out)
{
    qt_assert(*pos <= len);
    qt_assert(n == 0 || out != NULL);
    uint64_t zfirst = 0, zdelta = 0;
    int rc = qt_varint_get(buf, len, pos, &zfirst);
    if (rc == 0)
        rc = qt_varint_get(buf, len, pos, &zdelta);
    if (rc != 0)
        return rc;
    uint64_t first = (uint64_t)qt_unzigzag64(zfirst);
    uint64_t delta = (uint64_t)qt_unzigzag64(zdelta);
    for (uint32_t i = 0; i < n; i++)
        out[i] = (int64_t)(first + (uint64_t)i * delta);
    return 0;
}

int
qt_ts_decode(const uint8_t *buf, size_t len, int64_t *out, uint32_t cap, uint32_t *n)
{
    qt_assert(buf != NULL || len == 0);
    qt_assert(n != NULL && (out != NULL || cap == 0));
    size_t pos = 0;
    uint32_t count = 0;
    uint8_t enc = 0;
    int rc = qt_codec_head_get(buf, len, &pos, cap, &count, &enc);
    if (rc != 0)
        return rc;
    switch (enc) {
    case QT_ENC_TS_CONST: rc = ts_decode_const(buf, len, &pos, count, out); break;
    case QT_ENC_TS_DOD: rc = ts_decode_dod(buf, len, &pos, count, out); break;
    case QT_ENC_TS_RAW: rc = qt_codec_raw_get(buf, len, &pos, count, out); break;
    default: return qt_fail(QT_EINVAL, "ts: unknown encoding id");
    }
    if (rc != 0)
        return rc;
    if (pos != len)
        return qt_fail(QT_ECORRUPT, "ts: trailing bytes after the payload");
    *n = count;
    return 0;
}
