/*
 * bitpack.h -- fixed-width bit packing and frame-of-reference (FOR) runs.
 *
 * The shared inner loop of the numeric codecs (timestamps, integers, floats):
 * values are packed LSB-first into a little-endian bit stream, `width` bits
 * each, with no padding between values and zero bits after the last one up
 * to the byte boundary.  Layout in DESIGN.md "Bit packing".
 *
 * Contract: pure functions, no allocation.  Unpackers read only
 * buf[0 .. qt_bp_bytes(n, width)), which the caller must have checked
 * against its input length.  Width is 0..64; width 0 stores nothing and
 * decodes to all zeros.
 */
#ifndef QT_BITPACK_H
#define QT_BITPACK_H

#include <stddef.h>
#include <stdint.h>

static inline size_t
qt_bp_bytes(uint32_t n, uint32_t width)
{
    return (size_t)(((uint64_t)n * width + 7) / 8);
}

/* Smallest width that holds `max` (0 for max == 0). */
static inline uint32_t
qt_bp_width(uint64_t max)
{
    return max == 0 ? 0u : 64u - (uint32_t)__builtin_clzll(max);
}

/* Pack in[0..n) (each < 2^width) into out[0 .. qt_bp_bytes(n, width)). */
void qt_bp_pack(const uint64_t *in, uint32_t n, uint32_t width, uint8_t *out);

/* Unpack n values of `width` bits from buf into out[0..n). */
void qt_bp_unpack(const uint8_t *buf, uint32_t n, uint32_t width, uint64_t *out);

/*
 * FOR run: varint(zigzag(min)) | u8 width | packed (v[i] - min).
 * qt_for_encode appends at out[*pos], advancing *pos; QT_ENOSPACE if cap is
 * too small.  qt_for_decode reads from buf[*pos .. len), advancing *pos, and
 * returns QT_ETRUNC / QT_ECORRUPT (with a detail) on bad input.
 */
size_t qt_for_bound(uint32_t n);
int qt_for_encode(const int64_t *v, uint32_t n, uint8_t *out, size_t cap, size_t *pos);
int qt_for_decode(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, int64_t *out);

#endif
