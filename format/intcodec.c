/*
 * intcodec.c -- int64 column codec (see intcodec.h; layout in DESIGN.md
 * "Integer codec").
 *
 * Integer sensor columns are quantised readings that wander within a narrow
 * band (levels, counts, status codes) or meter counters that only grow by
 * small steps.  The encoder plans both ways of packing them into patched FOR
 * runs of 128 (codec_int.h): FOR packs the values against each run's base
 * (levels), DELTA packs v[i+1] - v[i] (counters, slow ramps).  Plans give
 * exact sizes without writing, so it compares CONST (all equal), FOR, DELTA
 * and RAW and writes only the smallest; ties go to the cheaper decoder
 * (FOR before DELTA before RAW).
 *
 * Invariants: differences and bases are computed modulo 2^64, so every
 * int64 sequence (INT64_MIN next to INT64_MAX included) round-trips exactly.
 * Decoders unpack each run into the output array and add the base (FOR) or
 * run a prefix sum (DELTA) in place.
 */
#include "intcodec.h"

#include "codec.h"
#include "codec_int.h"
#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"
#include "qt_limits.h"

size_t
qt_int_bound(uint32_t n)
{
    size_t raw = (size_t)n * 8;
    return QT_CODEC_HEAD_MAX + (raw > QT_VARINT_MAX ? raw : QT_VARINT_MAX);
}

/* DELTA values: v[i+1] - v[i] modulo 2^64. */
static void
int_fill_delta(const void *src, uint32_t first, uint32_t m, int64_t *out)
{
    qt_assert(src != NULL && out != NULL);
    qt_assert(m <= QT_CODEC_RUN_VALUES);
    const int64_t *v = (const int64_t *)src + first;
    for (uint32_t i = 0; i < m; i++)
        out[i] = (int64_t)((uint64_t)v[i + 1] - (uint64_t)v[i]);
}

static bool
int_all_equal(const int64_t *v, uint32_t n)
{
    qt_assert(n >= 1 && v != NULL);
    uint64_t differ = 0;
    for (uint32_t i = 1; i < n; i++)
        differ |= (uint64_t)(v[i] ^ v[0]);
    return differ == 0;
}

/* n >= 2 values, not all equal: the smallest of FOR, DELTA and RAW. */
static int
int_encode_varying(const int64_t *v, uint32_t n, uint8_t *out, size_t cap, size_t *pos)
{
    qt_assert(n >= 2 && n <= QT_BLOCK_POINTS_MAX);
    qt_assert(*pos <= cap);
    struct qt_codec_run pfor[QT_CODEC_RUNS_MAX], pdelta[QT_CODEC_RUNS_MAX];
    size_t s_for = qt_codec_runs_plan(qt_codec_fill_copy, v, n, pfor);
    size_t s_delta = qt_codec_varint_len(qt_zigzag64(v[0])) +
                     qt_codec_runs_plan(int_fill_delta, v, n - 1, pdelta);
    size_t s_raw = (size_t)n * 8;
    int rc;
    if (s_for <= s_delta && s_for <= s_raw) {
        rc = qt_codec_head_put(out, cap, pos, n, QT_ENC_INT_FOR);
        if (rc == 0)
            rc = qt_codec_runs_write(qt_codec_fill_copy, v, n, pfor, out, cap, pos);
    } else if (s_delta <= s_raw) {
        rc = qt_codec_head_put(out, cap, pos, n, QT_ENC_INT_DELTA);
        if (rc == 0)
            rc = qt_varint_put(out, cap, pos, qt_zigzag64(v[0]));
        if (rc == 0)
            rc = qt_codec_runs_write(int_fill_delta, v, n - 1, pdelta, out, cap, pos);
    } else {
        rc = qt_codec_head_put(out, cap, pos, n, QT_ENC_INT_RAW);
        if (rc == 0)
            rc = qt_codec_raw_put(v, n, out, cap, pos);
    }
    return rc;
}

int
qt_int_encode(const int64_t *v, uint32_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    qt_assert(n == 0 || v != NULL);
    qt_assert(out != NULL && out_len != NULL);
    if (n > QT_BLOCK_POINTS_MAX)
        return qt_fail(QT_EINVAL, "int: more than QT_BLOCK_POINTS_MAX values");
    size_t pos = 0;
    int rc;
    if (n == 0) {
        rc = qt_codec_head_put(out, cap, &pos, 0, QT_ENC_INT_RAW);
    } else if (int_all_equal(v, n)) {
        rc = qt_codec_head_put(out, cap, &pos, n, QT_ENC_INT_CONST);
        if (rc == 0)
            rc = qt_varint_put(out, cap, &pos, qt_zigzag64(v[0]));
    } else {
        rc = int_encode_varying(v, n, out, cap, &pos);
    }
    if (rc != 0)
        return rc;
    qt_assert(pos <= qt_int_bound(n));
    *out_len = pos;
    return 0;
}

/* FOR: each run's offsets plus its base, in place. */
static int
int_decode_for(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, int64_t *out)
{
    qt_assert(*pos <= len);
    qt_assert(n <= QT_BLOCK_POINTS_MAX);
    for (uint32_t r = 0; r < n; r += QT_CODEC_RUN_VALUES) {
        uint32_t k = n - r < QT_CODEC_RUN_VALUES ? n - r : QT_CODEC_RUN_VALUES;
        uint64_t *s = (uint64_t *)(out + r);
        uint64_t base = 0;
        int rc = qt_codec_run_read(buf, len, pos, k, s, &base);
        if (rc != 0)
            return rc;
        for (uint32_t i = 0; i < k; i++)
            s[i] += base;
    }
    return 0;
}

/* DELTA: first value, then a running sum over each run's deltas. */
static int
int_decode_delta(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, int64_t *out)
{
    qt_assert(*pos <= len);
    qt_assert(n <= QT_BLOCK_POINTS_MAX);
    if (n == 0)
        return qt_fail(QT_ECORRUPT, "int: delta encoding without values");
    uint64_t z = 0;
    int rc = qt_varint_get(buf, len, pos, &z);
    if (rc != 0)
        return rc;
    uint64_t t = (uint64_t)qt_unzigzag64(z);
    out[0] = (int64_t)t;
    for (uint32_t r = 0; r < n - 1; r += QT_CODEC_RUN_VALUES) {
        uint32_t k = n - 1 - r < QT_CODEC_RUN_VALUES ? n - 1 - r : QT_CODEC_RUN_VALUES;
        uint64_t *s = (uint64_t *)(out + 1 + r);
        uint64_t base = 0;
        rc = qt_codec_run_read(buf, len, pos, k, s, &base);
        if (rc != 0)
            return rc;
        for (uint32_t i = 0; i < k; i++) {
            t += s[i] + base;
            s[i] = t;
        }
    }
    return 0;
}

static int
int_decode_const(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, int64_t *out)
{
    qt_assert(*pos <= len);
    qt_assert(n == 0 || out != NULL);
    uint64_t z = 0;
    int rc = qt_varint_get(buf, len, pos, &z);
    if (rc != 0)
        return rc;
    int64_t v = qt_unzigzag64(z);
    for (uint32_t i = 0; i < n; i++)
        out[i] = v;
    return 0;
}

int
qt_int_decode(const uint8_t *buf, size_t len, int64_t *out, uint32_t cap, uint32_t *n)
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
    case QT_ENC_INT_CONST: rc = int_decode_const(buf, len, &pos, count, out); break;
    case QT_ENC_INT_FOR: rc = int_decode_for(buf, len, &pos, count, out); break;
    case QT_ENC_INT_DELTA: rc = int_decode_delta(buf, len, &pos, count, out); break;
    case QT_ENC_INT_RAW: rc = qt_codec_raw_get(buf, len, &pos, count, out); break;
    default: return qt_fail(QT_EINVAL, "int: unknown encoding id");
    }
    if (rc != 0)
        return rc;
    if (pos != len)
        return qt_fail(QT_ECORRUPT, "int: trailing bytes after the payload");
    *n = count;
    return 0;
}
