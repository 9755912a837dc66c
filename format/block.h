/*
 * block.h -- column blocks: the unit of storage, compression and checksum
 * inside a segment (DESIGN.md "Blocks").
 *
 * The fields of one measurement+tagset that arrive together form a column
 * group: one timestamp column shared by one value column per field.  A
 * group's rows are stored as one TS block (the timestamps) and one VALUE
 * block per field (the values, aligned row by row with the TS block).
 *
 * A block is   header | payload | zero padding to 8 bytes | checksum
 *
 * Header (little-endian; TS blocks use the first 48 bytes):
 *   off size field
 *     0    1 kind          QT_BLOCK_TS (1) or QT_BLOCK_VALUE (2)
 *     1    1 version       QT_FORMAT_VERSION of the writer
 *     2    2 flags         QT_BLOCK_F_*
 *     4    4 n_rows        rows of the column group (1..QT_BLOCK_POINTS_MAX)
 *     8    8 id            TS: group id; VALUE: series id
 *    16    8 ts_min        TS: first row's ts; VALUE: ts of the first present row
 *    24    8 ts_max        TS: last row's ts;  VALUE: ts of the last present row
 *    32    4 raw_len       payload bytes before LZ4
 *    36    4 stored_len    payload bytes in the block
 *    40    1 encoding      encoding id of the (value) column payload (codec.h)
 *    41    1 vtype         VALUE: enum qt_vtype; TS: 0
 *    42    1 presence_enc  VALUE with presence: encoding id of the presence
 *                          column; else 0
 *    43    1 reserved      0
 *    44    4 n_values      VALUE: present rows (1..n_rows); TS: 0
 *   -- VALUE blocks only --
 *    48    4 presence_len  raw bytes of the presence column (0 if none)
 *    52    4 reserved      0
 *    56   40 statistics    min, max, sum, first, last (stats.h), 8 bytes each
 *    96      (end of VALUE header)
 *
 * Raw payload: TS: qt_ts_encode output.  VALUE: [qt_bool_encode(presence of
 * n_rows rows) when QT_BLOCK_F_PRESENCE] followed by the value codec output
 * for the n_values present values, in row order.  When QT_BLOCK_F_LZ4 the
 * stored payload is LZ4_compress_default(raw payload), kept only when
 * smaller.  Checksum: XXH3-64 of every byte before it (header, payload,
 * padding), canonical byte order.  Total length is
 * header + round8(stored_len) + 8, a multiple of 8.
 *
 * Timestamps within a block are strictly ascending (storage sorts and
 * de-duplicates rows before it builds a block).
 *
 * Pure functions: no I/O, no allocation; the caller provides every buffer,
 * sized by the _bound() functions.  Decoders read only buf[0..len).
 */
#ifndef QT_BLOCK_H
#define QT_BLOCK_H

#include "codec.h"
#include "qt_limits.h"
#include "stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum qt_block_kind {
    QT_BLOCK_TS = 1,
    QT_BLOCK_VALUE = 2,
};

/* Header flag bits (on disk). */
#define QT_BLOCK_F_LZ4          0x1u /* stored payload is LZ4-compressed */
#define QT_BLOCK_F_PRESENCE     0x2u /* VALUE: n_values < n_rows, presence column first */
#define QT_BLOCK_F_SUM_OVERFLOW 0x4u /* VALUE, INT: exact sum did not fit int64 */
#define QT_BLOCK_F_KNOWN        0x7u

#define QT_BLOCK_TS_HEADER_SIZE    48u
#define QT_BLOCK_VALUE_HEADER_SIZE 96u
#define QT_BLOCK_CHECKSUM_SIZE     8u
/* Smallest well-formed blocks: a codec payload is at least varint(n) and an
 * encoding byte (2 bytes, padded to 8). */
#define QT_BLOCK_TS_MIN_BYTES    (QT_BLOCK_TS_HEADER_SIZE + 8u + QT_BLOCK_CHECKSUM_SIZE)
#define QT_BLOCK_VALUE_MIN_BYTES (QT_BLOCK_VALUE_HEADER_SIZE + 8u + QT_BLOCK_CHECKSUM_SIZE)
/* Largest block of either kind. */
#define QT_BLOCK_MAX_BYTES                                                                         \
    (QT_BLOCK_VALUE_HEADER_SIZE + ((QT_BLOCK_RAW_MAX + 7u) & ~7u) + QT_BLOCK_CHECKSUM_SIZE)

/* Everything a block header says, as parsed and validated by
 * qt_block_read_header().  For TS blocks the VALUE-only fields are 0. */
struct qt_block_info {
    enum qt_block_kind kind;
    uint32_t version;
    uint32_t flags;
    uint32_t n_rows;
    uint64_t id; /* group id (TS) or series id (VALUE) */
    int64_t ts_min, ts_max;
    uint32_t raw_len, stored_len;
    uint32_t encoding;
    enum qt_vtype vtype;   /* 0 for TS blocks */
    uint32_t presence_enc; /* 0 without presence */
    uint32_t n_values;     /* VALUE: present rows; TS: 0 */
    uint32_t presence_len;
    struct qt_stats stats; /* VALUE only */
    uint32_t header_len;   /* 48 or 96 */
    uint32_t block_len;    /* header + padded payload + checksum */
};

/* Worst-case block size for a TS block of n rows; also the scratch size
 * that qt_block_encode_ts needs for LZ4 (1 <= n <= QT_BLOCK_POINTS_MAX). */
size_t qt_block_ts_bound(uint32_t n);

/* Worst-case size of the VALUE block for these inputs (same meaning of
 * arguments as qt_block_encode_values); also its scratch need. */
size_t qt_block_values_bound(enum qt_vtype vtype, const void *values, uint32_t n_values,
                             uint32_t n_rows);

/*
 * Encode a TS block for group `group_id` from ts[0..n) (1 <= n <=
 * QT_BLOCK_POINTS_MAX, strictly ascending) into out[0..cap).  scratch:
 * LZ4 working space (scratch_cap >= qt_block_ts_bound(n) always suffices;
 * a smaller one only loses compression); NULL stores uncompressed.
 * Returns 0, QT_EINVAL (n out of range, ts not strictly ascending) or
 * QT_ENOSPACE (cap below the bound); *out_len = block length.
 */
int qt_block_encode_ts(uint64_t group_id, const int64_t *ts, uint32_t n, uint8_t *scratch,
                       size_t scratch_cap, uint8_t *out, size_t cap, size_t *out_len);

/*
 * Encode a VALUE block for series `series_id`.
 *   values    the n_values present values in row order; element type by
 *             vtype: double, int64_t, uint8_t (0/1), struct qt_str.
 *   presence  n_rows bytes, 1 = row present, 0 = absent; NULL means every
 *             row is present (then n_values == n_rows).  Its number of 1s
 *             must equal n_values (1 <= n_values <= n_rows).
 *   ts        the column group's n_rows timestamps, strictly ascending
 *             (the TS block's input): gives ts_min/ts_max of present rows.
 * scratch / out / cap as for qt_block_encode_ts, with
 * qt_block_values_bound().  Returns 0, QT_EINVAL (counts, presence bytes,
 * bool values, unknown vtype), QT_ELIMIT (string column above
 * QT_BLOCK_RAW_MAX) or QT_ENOSPACE.  Statistics are computed here.
 */
int qt_block_encode_values(uint64_t series_id, enum qt_vtype vtype, const void *values,
                           uint32_t n_values, const uint8_t *presence, uint32_t n_rows,
                           const int64_t *ts, uint8_t *scratch, size_t scratch_cap, uint8_t *out,
                           size_t cap, size_t *out_len);

/*
 * Parse and validate the header at buf[0..len): kind, version (newer ->
 * QT_EVERSION), flags, counts and lengths against the limits, encoding ids
 * against the vtype, statistics plausibility (qt_stats_check), reserved
 * bytes zero.  Does not need the payload and does not verify the checksum.
 * Returns 0, QT_ETRUNC (len below the header), QT_ECORRUPT, QT_EVERSION.
 */
int qt_block_read_header(const uint8_t *buf, size_t len, struct qt_block_info *info);

/*
 * Check the whole block at buf[0..len): header as qt_block_read_header,
 * the block fits in len (QT_ETRUNC otherwise; bytes past block_len are not
 * part of it), padding is zero, checksum matches (QT_ECHECKSUM).
 */
int qt_block_verify(const uint8_t *buf, size_t len, struct qt_block_info *info);

/*
 * Verify and decode a TS block into ts[0..cap) (cap >= n_rows, else
 * QT_ENOSPACE).  scratch receives the LZ4-decompressed payload (scratch_cap
 * >= info.raw_len; qt_block_ts_bound(QT_BLOCK_POINTS_MAX) always suffices).
 * Cross-checks: decoded count == n_rows, encoding byte == header,
 * ts[0] == ts_min, ts[n-1] == ts_max (strict order: qt_block_check_ts).
 * info may be NULL.
 */
int qt_block_decode_ts(const uint8_t *buf, size_t len, uint8_t *scratch, size_t scratch_cap,
                       int64_t *ts, uint32_t cap, struct qt_block_info *info);

/*
 * Verify and decode a VALUE block.
 *   values    receives the n_values present values (element type by vtype,
 *             cap elements); decoded strings point into buf or scratch.
 *   presence  receives n_rows bytes (1 present / 0 absent; all 1 without a
 *             presence column); cap elements.
 *   ts, ts_n  NULL/0, or the aligned TS block's decoded timestamps: then
 *             ts_n must equal n_rows and ts_min/ts_max must be the
 *             timestamps of the first and last present rows.
 * Cross-checks the decoded counts, encodings, popcount(presence) ==
 * n_values, and first/last against the values; the full statistics are
 * checked by qt_block_check_stats() (see DESIGN.md for the cost).
 * Returns 0, QT_ETRUNC, QT_ECORRUPT, QT_ECHECKSUM, QT_EVERSION, QT_ELIMIT,
 * QT_ENOSPACE (cap below n_rows or scratch below raw_len).
 */
int qt_block_decode_values(const uint8_t *buf, size_t len, uint8_t *scratch, size_t scratch_cap,
                           const int64_t *ts, uint32_t ts_n, void *values, uint8_t *presence,
                           uint32_t cap, struct qt_block_info *info);

/*
 * Check that a decoded TS column is strictly ascending from ts_min to
 * ts_max: 0 or QT_ECORRUPT.  An O(n) pass (~0.25 ns/row, up to half of a
 * regular column's decode time), so not part of qt_block_decode_ts; for
 * `qtdb verify`, compaction and tests.
 */
int qt_block_check_ts(const struct qt_block_info *info, const int64_t *ts);

/*
 * Recompute the statistics of decoded values and compare them bit for bit
 * with info->stats: 0 or QT_ECORRUPT.  An O(n) pass, for `qtdb verify`,
 * compaction and tests; the query path trusts the checksum.
 */
int qt_block_check_stats(const struct qt_block_info *info, const void *values);

#endif
