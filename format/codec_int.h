/*
 * codec_int.h -- helpers shared by the column codecs inside format/ only
 * (tscodec.c, intcodec.c, boolcodec.c, strcodec.c); not a public API.
 *
 * Three pieces, implemented in codec.c:
 *   - the payload head every codec starts with: varint(n) | u8 encoding id;
 *   - plain little-endian int64 arrays (the RAW encodings);
 *   - the *patched FOR run*: up to QT_CODEC_RUN_VALUES int64 values packed
 *     against their own base with their own bit width, where a few outliers
 *     (an outage gap, a late point, a sensor spike) are stored after the
 *     packed bits as exceptions instead of widening every value of the run.
 *
 * Run layout (DESIGN.md "Patched FOR runs"); m, the run's value count, is
 * known from the enclosing payload:
 *
 *   u8      hdr     bits 0-6: width w (0..64); bit 7: exceptions follow
 *   varint  zigzag(base)
 *   u8      e - 1   only when bit 7 is set: e exceptions, 1..m
 *   bytes   ceil(m * w / 8): (v[i] - base) mod 2^64 packed LSB first
 *                   (an exception's slot packs as 0)
 *   e x     u8 index (< m), varint zigzag(v - base)    (only when bit 7)
 *
 * The encoder plans a run first (qt_codec_run_plan: exact byte size and the
 * chosen base/width/exceptions), so codecs can compare encodings by size
 * without writing them, then writes it (qt_codec_run_write).
 */
#ifndef QT_CODEC_INT_H
#define QT_CODEC_INT_H

#include "qt_bytes.h"
#include "qt_limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Values per FOR run (on-disk constant).  128 keeps the per-run header
 * (2-4 bytes) near 0.1-0.25 bit/value while an outlier the exceptions do not
 * absorb widens only 1/64th of a full block; it also lets exception indexes
 * and counts fit one byte each. */
#define QT_CODEC_RUN_VALUES 128u

/* Runs in a full block. */
#define QT_CODEC_RUNS_MAX (QT_BLOCK_POINTS_MAX / QT_CODEC_RUN_VALUES + 1u)

/* Outliers the encoder will cut from each end of a run's value range.  Two
 * per end cover a gap (one high and one low delta-of-delta) and a late point
 * (two low, one high); four leaves room for two events in one run.  The
 * decoder accepts up to m exceptions; this bounds only the encoder's search. */
#define QT_CODEC_RUN_CUT_MAX 4u

/* Bytes of the payload head, at most. */
#define QT_CODEC_HEAD_MAX (QT_VARINT_MAX + 1u)

/* Largest run: header, 10-byte base, 64-bit values (exceptions are only
 * chosen when they make a run smaller than this plain form). */
#define QT_CODEC_RUN_BOUND(m) (1u + QT_VARINT_MAX + (size_t)(m)*8u)

/* A planned run: how qt_codec_run_write will encode it and its exact size. */
struct qt_codec_run {
    int64_t base;   /* values in [base, top] are packed */
    int64_t top;    /* values outside [base, top] are exceptions */
    uint32_t bytes; /* exact encoded size */
    uint8_t width;  /* bits per packed value, 0..64 */
    uint8_t exc;    /* exception count, 0 .. 2 * QT_CODEC_RUN_CUT_MAX */
};

/* Bytes of the unsigned LEB128 form of v (1..10). */
static inline uint32_t
qt_codec_varint_len(uint64_t v)
{
    return (uint32_t)(63 - __builtin_clzll(v | 1)) / 7u + 1u;
}

/* Append varint(n) | u8 enc at out[*pos]; QT_ENOSPACE if it does not fit. */
int qt_codec_head_put(uint8_t *out, size_t cap, size_t *pos, uint32_t n, uint8_t enc);

/*
 * Read the head at buf[*pos ..): rejects n > QT_BLOCK_POINTS_MAX or n > cap
 * (QT_ELIMIT, detail names `who`) and truncation (QT_ETRUNC).  The encoding
 * id is returned unchecked: each codec rejects ids it does not know.
 */
int qt_codec_head_get(const uint8_t *buf, size_t len, size_t *pos, uint32_t cap, uint32_t *n,
                      uint8_t *enc);

/* Append n int64 values as little-endian 8-byte words (QT_ENOSPACE). */
int qt_codec_raw_put(const int64_t *v, uint32_t n, uint8_t *out, size_t cap, size_t *pos);

/* Read n little-endian int64 words at buf[*pos ..) into out (QT_ETRUNC). */
int qt_codec_raw_get(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, int64_t *out);

/* Plan the run of v[0..m), 1 <= m <= QT_CODEC_RUN_VALUES: pick base, width
 * and exceptions minimising the encoded size.  Reads v only. */
void qt_codec_run_plan(const int64_t *v, uint32_t m, struct qt_codec_run *plan);

/* Write the run of v[0..m) as planned (plan must come from
 * qt_codec_run_plan on the same values); QT_ENOSPACE if plan->bytes do not
 * fit at out[*pos]. */
int qt_codec_run_write(const int64_t *v, uint32_t m, const struct qt_codec_run *plan, uint8_t *out,
                       size_t cap, size_t *pos);

/*
 * Read one run of m values (1 <= m <= QT_CODEC_RUN_VALUES) at buf[*pos ..):
 * off[0..m) receives each value minus *base (mod 2^64), so the caller adds
 * the base in its own loop (fused with prefix sums).  QT_ETRUNC or
 * QT_ECORRUPT with a detail on bad input; never reads at or past len.
 */
int qt_codec_run_read(const uint8_t *buf, size_t len, size_t *pos, uint32_t m, uint64_t *off,
                      uint64_t *base);

/*
 * A codec's values are often derived (deltas, dictionary codes) and a full
 * block of them would not fit the stack budget, so runs are planned and
 * written from a fill function: fill(src, first, m, out) stores the derived
 * values first .. first+m-1 (m <= QT_CODEC_RUN_VALUES) in out.
 */
typedef void (*qt_codec_fill_fn)(const void *src, uint32_t first, uint32_t m, int64_t *out);

/* Plan `count` derived values as ceil(count / QT_CODEC_RUN_VALUES) runs,
 * storing each plan in plans[]; returns the total encoded size. */
size_t qt_codec_runs_plan(qt_codec_fill_fn fill, const void *src, uint32_t count,
                          struct qt_codec_run *plans);

/* Write the runs planned by qt_codec_runs_plan (same fill, src, count). */
int qt_codec_runs_write(qt_codec_fill_fn fill, const void *src, uint32_t count,
                        const struct qt_codec_run *plans, uint8_t *out, size_t cap, size_t *pos);

/* Fill function for a plain int64 array: copies src[first .. first+m). */
void qt_codec_fill_copy(const void *src, uint32_t first, uint32_t m, int64_t *out);

#endif
