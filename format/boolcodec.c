/*
 * boolcodec.c -- boolean column codec (see boolcodec.h; layout in DESIGN.md
 * "Boolean codec").
 *
 * Two encodings: BITMAP, one bit per value (LSB first, padding bits zero),
 * and RLE, the first value then the lengths of alternating runs as varints.
 * Status flags and presence bitmaps are mostly long runs, where RLE costs a
 * few bytes per block; the encoder sizes RLE exactly (stopping as soon as it
 * cannot win) and keeps the smaller, BITMAP on a tie.
 *
 * Invariants: values are bytes 0 or 1 (anything else is QT_EINVAL on encode,
 * never produced on decode); a bitmap's padding bits and every run length
 * are validated, so each accepted payload has exactly n values.
 */
#include "boolcodec.h"

#include "codec.h"
#include "codec_int.h"
#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"
#include "qt_limits.h"

#include <string.h>

/* Per byte of a little-endian word of 0/1 bytes: bit i of byte i. */
#define BOOL_LANES 0x0101010101010101ull

size_t
qt_bool_bound(uint32_t n)
{
    /* RLE is only chosen when smaller than the bitmap. */
    return QT_CODEC_HEAD_MAX + ((size_t)n + 7) / 8;
}

static bool
bool_valid(const uint8_t *v, uint32_t n)
{
    qt_assert(n == 0 || v != NULL);
    qt_assert(n <= QT_BLOCK_POINTS_MAX);
    uint64_t bad = 0;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        bad |= qt_load_le64(v + i) & ~BOOL_LANES;
    for (; i < n; i++)
        bad |= v[i] & ~1u;
    return bad == 0;
}

/* Exact RLE body size, or `limit` as soon as it reaches limit. */
static size_t
bool_rle_size(const uint8_t *v, uint32_t n, size_t limit)
{
    qt_assert(n >= 1);
    size_t size = 1;
    uint32_t start = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (v[i] == v[i - 1])
            continue;
        size += qt_codec_varint_len(i - start);
        start = i;
        if (size >= limit)
            return limit;
    }
    size += qt_codec_varint_len(n - start);
    return size < limit ? size : limit;
}

static void
bool_write_bitmap(const uint8_t *v, uint32_t n, uint8_t *out)
{
    uint32_t i = 0, o = 0;
    /* Gather bit i of word x (byte i) into bit i of the top byte. */
    for (; i + 8 <= n; i += 8)
        out[o++] = (uint8_t)((qt_load_le64(v + i) * 0x0102040810204080ull) >> 56);
    if (i < n) {
        uint8_t b = 0;
        for (uint32_t k = 0; i + k < n; k++)
            b |= (uint8_t)(v[i + k] << k);
        out[o++] = b;
    }
    qt_assert(o == (n + 7) / 8);
}

static int
bool_write_rle(const uint8_t *v, uint32_t n, uint8_t *out, size_t cap, size_t *pos)
{
    qt_assert(n >= 1);
    if (*pos >= cap)
        return QT_ENOSPACE;
    out[(*pos)++] = v[0];
    uint32_t start = 0;
    for (uint32_t i = 1; i <= n; i++) {
        if (i < n && v[i] == v[i - 1])
            continue;
        int rc = qt_varint_put(out, cap, pos, i - start);
        if (rc != 0)
            return rc;
        start = i;
    }
    return 0;
}

int
qt_bool_encode(const uint8_t *v, uint32_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    qt_assert(n == 0 || v != NULL);
    qt_assert(out != NULL && out_len != NULL);
    if (n > QT_BLOCK_POINTS_MAX)
        return qt_fail(QT_EINVAL, "bool: more than QT_BLOCK_POINTS_MAX values");
    if (!bool_valid(v, n))
        return qt_fail(QT_EINVAL, "bool: value other than 0 or 1");
    size_t bitmap = ((size_t)n + 7) / 8;
    size_t rle = n > 0 ? bool_rle_size(v, n, bitmap) : bitmap;
    size_t pos = 0;
    int rc;
    if (rle < bitmap) {
        rc = qt_codec_head_put(out, cap, &pos, n, QT_ENC_BOOL_RLE);
        if (rc == 0)
            rc = bool_write_rle(v, n, out, cap, &pos);
    } else {
        rc = qt_codec_head_put(out, cap, &pos, n, QT_ENC_BOOL_BITMAP);
        if (rc == 0 && cap - pos < bitmap)
            rc = QT_ENOSPACE;
        if (rc == 0) {
            bool_write_bitmap(v, n, out + pos);
            pos += bitmap;
        }
    }
    if (rc != 0)
        return rc;
    qt_assert(pos <= qt_bool_bound(n));
    *out_len = pos;
    return 0;
}

static int
bool_decode_bitmap(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, uint8_t *out)
{
    qt_assert(*pos <= len);
    qt_assert(n <= QT_BLOCK_POINTS_MAX);
    size_t bytes = ((size_t)n + 7) / 8;
    if (len - *pos < bytes)
        return qt_fail(QT_ETRUNC, "bool: bitmap truncated");
    const uint8_t *b = buf + *pos;
    if (n % 8 != 0 && (b[bytes - 1] >> (n % 8)) != 0)
        return qt_fail(QT_ECORRUPT, "bool: bitmap padding bits not zero");
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        /* Byte i of the product keeps bit i; then nonzero bytes become 1. */
        uint64_t x = (b[i / 8] * BOOL_LANES) & 0x8040201008040201ull;
        x = ((x + 0x7f7f7f7f7f7f7f7full) >> 7) & BOOL_LANES;
        memcpy(out + i, &x, 8); /* little-endian: byte k is value i + k */
    }
    for (; i < n; i++)
        out[i] = (b[i / 8] >> (i % 8)) & 1;
    *pos += bytes;
    return 0;
}

static int
bool_decode_rle(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, uint8_t *out)
{
    qt_assert(*pos <= len);
    qt_assert(n <= QT_BLOCK_POINTS_MAX);
    if (*pos >= len)
        return qt_fail(QT_ETRUNC, "bool: missing first value");
    uint8_t val = buf[(*pos)++];
    if (val > 1)
        return qt_fail(QT_ECORRUPT, "bool: first value not 0 or 1");
    uint32_t done = 0;
    while (done < n) {
        uint64_t run = 0;
        int rc = qt_varint_get(buf, len, pos, &run);
        if (rc != 0)
            return rc;
        if (run == 0)
            return qt_fail(QT_ECORRUPT, "bool: empty run");
        if (run > n - done)
            return qt_fail(QT_ECORRUPT, "bool: runs longer than the value count");
        memset(out + done, val, (size_t)run);
        done += (uint32_t)run;
        val ^= 1;
    }
    return 0;
}

int
qt_bool_decode(const uint8_t *buf, size_t len, uint8_t *out, uint32_t cap, uint32_t *n)
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
    case QT_ENC_BOOL_BITMAP: rc = bool_decode_bitmap(buf, len, &pos, count, out); break;
    case QT_ENC_BOOL_RLE: rc = bool_decode_rle(buf, len, &pos, count, out); break;
    default: return qt_fail(QT_EINVAL, "bool: unknown encoding id");
    }
    if (rc != 0)
        return rc;
    if (pos != len)
        return qt_fail(QT_ECORRUPT, "bool: trailing bytes after the payload");
    *n = count;
    return 0;
}
