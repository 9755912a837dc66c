/*
 * codec.h -- the column codecs' shared vocabulary and contract.
 *
 * A codec turns one column of n values into a self-describing payload and
 * back.  Every payload starts with varint(n) followed by one byte: the
 * encoding id (QT_ENC_*), so a block can be decoded without outside context
 * and a decoder can reject an id it does not know.  Ids are on-disk values:
 * never renumber them (grep tag: ORDER ENCODINGS, mirrored in DESIGN.md).
 *
 * Contract for every qt_<codec>_encode / _decode pair:
 *   - encode(values, n, out, cap, &out_len): n <= QT_BLOCK_POINTS_MAX;
 *     out has cap bytes; cap >= qt_<codec>_bound(n) always suffices; returns
 *     0 or QT_ENOSPACE / QT_EINVAL.  Picks the smallest encoding it knows.
 *   - decode(buf, len, out, cap, &n): reads only buf[0..len); writes at most
 *     cap values; returns QT_ETRUNC / QT_ECORRUPT / QT_ELIMIT / QT_EINVAL with
 *     a qt_err_detail() reason on bad input, never crashes, never allocates.
 *     Trailing bytes after a complete payload are an error (QT_ECORRUPT).
 *   - Round trip is exact: bit-exact for floats (incl. -0.0, NaN payloads).
 *   - Pure: no I/O, no allocation, no logging; thread-safe.
 */
#ifndef QT_CODEC_H
#define QT_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Value types of a series (on-disk byte). */
enum qt_vtype {
    QT_VT_FLOAT = 1,  /* float64 */
    QT_VT_INT = 2,    /* int64 (line protocol `i`, and `u` up to INT64_MAX) */
    QT_VT_BOOL = 3,   /* 0 or 1 */
    QT_VT_STRING = 4, /* short strings, <= QT_STRING_VALUE_MAX bytes */
};

/* Encoding ids (on-disk byte).  ORDER ENCODINGS */
enum qt_encoding {
    /* timestamps */
    QT_ENC_TS_CONST = 1, /* first, delta: every delta identical */
    QT_ENC_TS_DOD = 2,   /* GCD unit + delta or delta-of-delta, patched FOR per 128-value run */
    QT_ENC_TS_RAW = 3,   /* plain int64s (fallback) */
    /* integers */
    QT_ENC_INT_CONST = 16,
    QT_ENC_INT_FOR = 17,   /* frame of reference on values */
    QT_ENC_INT_DELTA = 18, /* FOR on deltas (counters, levels) */
    QT_ENC_INT_RAW = 19,
    /* floats */
    QT_ENC_FLT_CONST = 32,     /* one bit pattern repeated */
    QT_ENC_FLT_ALP = 33,       /* decimal: v = d * 10^f / 10^e, d FOR-packed, exceptions */
    QT_ENC_FLT_ALP_DELTA = 34, /* as ALP with d delta-coded before FOR */
    QT_ENC_FLT_XOR = 35,       /* lossless fallback for non-decimal values */
    QT_ENC_FLT_RAW = 36,
    /* booleans */
    QT_ENC_BOOL_BITMAP = 48,
    QT_ENC_BOOL_RLE = 49,
    /* strings */
    QT_ENC_STR_DICT = 64,  /* dictionary + FOR-packed codes */
    QT_ENC_STR_PLAIN = 65, /* length-prefixed */
};

/* A string value: bytes not NUL-terminated.  After decode, p points into the
 * decoder's input buffer (zero copy): valid as long as that buffer is. */
struct qt_str {
    const char *p;
    uint32_t len;
};

#endif
