/*
 * qt_bytes.h -- little-endian loads/stores and LEB128 varints.
 *
 * Every multi-byte integer on disk and on the wire is little-endian (DESIGN.md
 * "Byte order"); checksums are the exception and use xxHash's canonical
 * (big-endian) form, see qt_hash.h.  Varint readers take (buf, len, &pos) and
 * never read at or past len.
 */
#ifndef QT_BYTES_H
#define QT_BYTES_H

#include "qt_err.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t
qt_load_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static inline uint32_t
qt_load_le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline uint64_t
qt_load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void
qt_store_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void
qt_store_le32(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, 4);
}

static inline void
qt_store_le64(uint8_t *p, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}

static inline uint64_t
qt_f64_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static inline double
qt_bits_f64(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static inline uint64_t
qt_zigzag64(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t
qt_unzigzag64(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Max bytes of one LEB128 uint64. */
#define QT_VARINT_MAX 10u

/* Append v at out[*pos]; caller guarantees cap - *pos >= QT_VARINT_MAX or
 * checks the return: QT_ENOSPACE when it does not fit. */
static inline int
qt_varint_put(uint8_t *out, size_t cap, size_t *pos, uint64_t v)
{
    size_t p = *pos;
    while (v >= 0x80) {
        if (p >= cap)
            return QT_ENOSPACE;
        out[p++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    if (p >= cap)
        return QT_ENOSPACE;
    out[p++] = (uint8_t)v;
    *pos = p;
    return 0;
}

/* Read one LEB128 uint64 from buf[*pos .. len).  Rejects truncation and
 * encodings longer than 10 bytes or overflowing 64 bits. */
static inline int
qt_varint_get(const uint8_t *buf, size_t len, size_t *pos, uint64_t *v)
{
    uint64_t r = 0;
    size_t p = *pos;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= len)
            return qt_fail(QT_ETRUNC, "varint: truncated");
        uint8_t b = buf[p++];
        if (shift == 63 && b > 1)
            return qt_fail(QT_ECORRUPT, "varint: overflows 64 bits");
        r |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = r;
            *pos = p;
            return 0;
        }
    }
    return qt_fail(QT_ECORRUPT, "varint: longer than 10 bytes");
}

#endif
