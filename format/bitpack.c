/*
 * bitpack.c -- bit packing and frame-of-reference runs (see bitpack.h).
 *
 * The unpacker is the hottest loop in qtdb's read path.  For widths up to 56
 * each value lies within one unaligned 8-byte window, so the fast path is one
 * load, one shift and one mask per value; the windows near the end of the
 * buffer are read byte by byte so that nothing past the packed bytes is read.
 */
#include "bitpack.h"

#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"

#include <string.h>

void
qt_bp_pack(const uint64_t *in, uint32_t n, uint32_t width, uint8_t *out)
{
    qt_assert(width <= 64);
    size_t nbytes = qt_bp_bytes(n, width);
    if (width == 0)
        return;
    uint64_t mask = width == 64 ? ~0ull : (1ull << width) - 1;
    uint64_t acc = 0; /* pending bits, LSB first */
    uint32_t bits = 0;
    size_t o = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v = in[i] & mask;
        qt_assert_slow(v == in[i]);
        acc |= v << bits;
        uint32_t total = bits + width;
        if (total >= 64) {
            qt_store_le64(out + o, acc);
            o += 8;
            uint32_t used = 64 - bits; /* bits of v that went into acc */
            acc = used == 64 ? 0 : v >> used;
            bits = total - 64;
        } else {
            bits = total;
        }
    }
    while (bits > 0) {
        out[o++] = (uint8_t)acc;
        acc >>= 8;
        bits = bits > 8 ? bits - 8 : 0;
    }
    qt_assert(o == nbytes);
}

/* Read the 8-byte little-endian window at byte `at`, zero-filled past end. */
static inline uint64_t
bp_window_tail(const uint8_t *buf, size_t end, size_t at)
{
    uint64_t w = 0;
    for (size_t k = 0; k < 8 && at + k < end; k++)
        w |= (uint64_t)buf[at + k] << (8 * k);
    return w;
}

void
qt_bp_unpack(const uint8_t *buf, uint32_t n, uint32_t width, uint64_t *out)
{
    qt_assert(width <= 64);
    if (width == 0) {
        for (uint32_t i = 0; i < n; i++)
            out[i] = 0;
        return;
    }
    size_t end = qt_bp_bytes(n, width);
    uint64_t mask = width == 64 ? ~0ull : (1ull << width) - 1;
    if (width <= 56) {
        /* Values whose 8-byte window fits inside the buffer. */
        uint32_t fast = end >= 8 ? (uint32_t)(((uint64_t)(end - 8) * 8) / width) : 0;
        if (fast > n)
            fast = n;
        uint64_t bit = 0;
        uint32_t i = 0;
        for (; i < fast; i++, bit += width)
            out[i] = (qt_load_le64(buf + (bit >> 3)) >> (bit & 7)) & mask;
        if (i == n)
            return;
        /* The rest start within the last 15 bytes: copy those once into a
         * zero-padded window so the same one-load loop serves them. */
        uint8_t tail[32] = {0};
        size_t at0 = (size_t)(bit >> 3);
        qt_assert(end - at0 <= 16);
        memcpy(tail, buf + at0, end - at0);
        bit -= (uint64_t)at0 * 8;
        for (; i < n; i++, bit += width)
            out[i] = (qt_load_le64(tail + (bit >> 3)) >> (bit & 7)) & mask;
        return;
    }
    /* Wide values may straddle 9 bytes: combine two windows. */
    uint64_t bit = 0;
    for (uint32_t i = 0; i < n; i++, bit += width) {
        size_t at = (size_t)(bit >> 3);
        uint32_t sh = (uint32_t)(bit & 7);
        uint64_t lo = bp_window_tail(buf, end, at);
        uint64_t v = lo >> sh;
        if (sh != 0 && at + 8 < end)
            v |= (uint64_t)buf[at + 8] << (64 - sh);
        out[i] = v & mask;
    }
}

size_t
qt_for_bound(uint32_t n)
{
    return QT_VARINT_MAX + 1 + qt_bp_bytes(n, 64);
}

int
qt_for_encode(const int64_t *v, uint32_t n, uint8_t *out, size_t cap, size_t *pos)
{
    qt_assert(n == 0 || v != NULL);
    int64_t min = n > 0 ? v[0] : 0;
    int64_t max = min;
    for (uint32_t i = 1; i < n; i++) {
        min = v[i] < min ? v[i] : min;
        max = v[i] > max ? v[i] : max;
    }
    uint32_t width = qt_bp_width((uint64_t)max - (uint64_t)min);
    size_t p = *pos;
    int rc = qt_varint_put(out, cap, &p, qt_zigzag64(min));
    if (rc != 0)
        return rc;
    size_t need = 1 + qt_bp_bytes(n, width);
    if (cap - p < need)
        return QT_ENOSPACE;
    out[p++] = (uint8_t)width;
    /* Pack in chunks through a small stack buffer to stay allocation-free. */
    uint64_t tmp[256];
    uint32_t done = 0;
    while (done < n) {
        uint32_t k = n - done < 256 ? n - done : 256;
        for (uint32_t i = 0; i < k; i++)
            tmp[i] = (uint64_t)v[done + i] - (uint64_t)min;
        /* Chunks of 256 values end on a byte boundary for any width. */
        qt_bp_pack(tmp, k, width, out + p + qt_bp_bytes(done, width));
        done += k;
    }
    *pos = p + qt_bp_bytes(n, width);
    return 0;
}

int
qt_for_decode(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, int64_t *out)
{
    size_t p = *pos;
    uint64_t zmin = 0;
    int rc = qt_varint_get(buf, len, &p, &zmin);
    if (rc != 0)
        return rc;
    if (p >= len)
        return qt_fail(QT_ETRUNC, "for: missing width byte");
    uint32_t width = buf[p++];
    if (width > 64)
        return qt_fail(QT_ECORRUPT, "for: bit width above 64");
    size_t need = qt_bp_bytes(n, width);
    if (len - p < need)
        return qt_fail(QT_ETRUNC, "for: packed values truncated");
    qt_bp_unpack(buf + p, n, width, (uint64_t *)out);
    uint64_t min = (uint64_t)qt_unzigzag64(zmin);
    for (uint32_t i = 0; i < n; i++)
        out[i] = (int64_t)((uint64_t)out[i] + min);
    *pos = p + need;
    return 0;
}
