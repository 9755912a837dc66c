/*
 * batch.h -- the write batch: qtdb's in-memory write unit and its WAL
 * payload encoding (DESIGN.md "Write batches").
 *
 * The server's protocol parsers (line protocol, Graphite, HTTP) turn input
 * into an array of struct qt_batch_line; storage appends the batch to the
 * WAL (qt_batch_encode -> wal.h) and then applies it to the memtable.
 * Recovery decodes the same structs back from the WAL with zero copy.
 *
 * One line = the fields of one measurement+tagset at one timestamp: they
 * share the line's timestamp and become one row of a column group (one
 * timestamp column, one value column per field name).
 *
 * Payload layout (all varints unsigned LEB128, qt_bytes.h):
 *   u8      kind = QT_BATCH_KIND (1)
 *   varint  n_lines
 *   varint  n_fields            total over all lines
 *   per line:
 *     varint  key_len, key bytes             canonical group key
 *     varint  zigzag(ts - previous line's ts) (first line: minus 0),
 *             computed modulo 2^64
 *     varint  n_fields of this line (1..QT_FIELDS_MAX)
 *     per field:
 *       varint  name_len, name bytes
 *       u8      vtype (enum qt_vtype)
 *       value:  FLOAT  8 bytes, IEEE-754 bits little-endian (bit exact)
 *               INT    varint zigzag(v)
 *               BOOL   u8 0 or 1
 *               STRING varint len, bytes (len <= QT_STRING_VALUE_MAX)
 */
#ifndef QT_BATCH_H
#define QT_BATCH_H

#include "codec.h"
#include "qt_limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* First payload byte of a batch record; other WAL payload kinds get other
 * values (the WAL header stays the same).  On-disk value. */
#define QT_BATCH_KIND 1u

/*
 * One field of a line.  name/name_len: the field name, unescaped, as the
 * parsers produce it (not NUL-terminated, >= 1 byte).  The series key is
 * "<group key> <escaped name>" (serieskey.h); the parsers bound its length
 * by QT_SERIES_KEY_MAX, and this layer checks the necessary condition
 * key_len + 1 + name_len <= QT_SERIES_KEY_MAX.  vtype selects the member:
 *   QT_VT_FLOAT  v.f (any double, NaN payloads kept)
 *   QT_VT_INT    v.i
 *   QT_VT_BOOL   v.b (0 or 1)
 *   QT_VT_STRING v.s (len <= QT_STRING_VALUE_MAX, bytes not NUL-terminated)
 * Pointers are borrowed: they point into the parser's input or, after
 * qt_batch_decode, into the payload, and live as long as that buffer.
 * Field names within a line are not checked for uniqueness here; storage
 * applies a repeated name last-wins, as line protocol does.
 */
struct qt_batch_field {
    const char *name;
    uint32_t name_len;
    enum qt_vtype vtype;
    union {
        double f;
        int64_t i;
        uint8_t b;
        struct qt_str s;
    } v;
};

/*
 * One line: the canonical group key (measurement and sorted tags, e.g.
 * "air,district=xihu,station=a0001"; 1..QT_SERIES_KEY_MAX - 2 bytes, not
 * NUL-terminated), its timestamp in nanoseconds since the epoch, and
 * fields[0..n_fields) (1..QT_FIELDS_MAX).  All pointers borrowed,
 * as for struct qt_batch_field.
 */
struct qt_batch_line {
    const char *key;
    uint32_t key_len;
    int64_t ts;
    uint32_t n_fields;
    const struct qt_batch_field *fields;
};

/* Validate one line against the limits above: 0, QT_EINVAL (bad vtype or
 * bool value, empty key/name, no fields) or QT_ELIMIT (a length or count
 * above its limit).  Parsers call it before handing lines to storage. */
int qt_batch_line_check(const struct qt_batch_line *line);

/* Exact encoded size of lines[0..n_lines), or 0 if a line fails
 * qt_batch_line_check().  The result may exceed QT_WAL_PAYLOAD_MAX, in
 * which case qt_batch_encode() refuses the batch: split it. */
size_t qt_batch_size(const struct qt_batch_line *lines, uint32_t n_lines);

/*
 * Encode lines[0..n_lines) into out[0..cap); *out_len = bytes written.
 * Returns 0; QT_EINVAL / QT_ELIMIT for a line that fails
 * qt_batch_line_check(), or when the payload would exceed
 * QT_WAL_PAYLOAD_MAX (QT_ELIMIT); QT_ENOSPACE when cap < qt_batch_size().
 * n_lines may be 0.  Reads the lines only; keeps no pointer.
 */
int qt_batch_encode(const struct qt_batch_line *lines, uint32_t n_lines, uint8_t *out, size_t cap,
                    size_t *out_len);

/*
 * Read the counts from a payload's prefix so the caller can size the arrays
 * for qt_batch_decode().  Checks only the prefix (kind byte, varints, counts
 * within what len could hold): 0, QT_ETRUNC, QT_ECORRUPT, QT_ELIMIT.
 */
int qt_batch_peek(const uint8_t *buf, size_t len, uint32_t *n_lines, uint32_t *n_fields);

/*
 * Decode a whole payload buf[0..len) into lines[0..lines_cap) and
 * fields[0..fields_cap).  On success *n_lines / *n_fields hold the counts,
 * each line's fields point into `fields`, and every key/name/string points
 * into buf (zero copy: valid while buf is).  Validates every length, count,
 * vtype and bool byte against the limits, and that the payload ends exactly
 * after the last line.  Returns 0, QT_ETRUNC, QT_ECORRUPT, QT_ELIMIT
 * (len > QT_WAL_PAYLOAD_MAX or a limit exceeded) or QT_ENOSPACE (a cap
 * below the payload's counts; see qt_batch_peek).  On error the arrays hold
 * garbage.
 */
int qt_batch_decode(const uint8_t *buf, size_t len, struct qt_batch_line *lines, uint32_t lines_cap,
                    struct qt_batch_field *fields, uint32_t fields_cap, uint32_t *n_lines,
                    uint32_t *n_fields);

#endif
