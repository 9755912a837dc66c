/*
 * wal.h -- write-ahead-log record framing (DESIGN.md "WAL records").
 *
 * A WAL file is a sequence of records, back to back, no padding:
 *
 *   off size field
 *     0    4 magic       "QTWL" (0x4C575451 little-endian)
 *     4    4 flags       bit 0: payload is LZ4-compressed; other bits zero
 *     8    8 seq         record sequence number, monotonic across the log
 *    16    4 raw_len     payload bytes before compression (<= QT_WAL_PAYLOAD_MAX)
 *    20    4 stored_len  payload bytes that follow the header
 *    24    8 checksum    XXH3-64 of header bytes [0,24) followed by the stored
 *                        payload, canonical (big-endian) byte order
 *    32    - payload     stored_len bytes
 *
 * The payload is opaque here; its first byte names its kind (batch.h).
 * Pure functions: no I/O, no allocation; the caller provides every buffer.
 */
#ifndef QT_WAL_H
#define QT_WAL_H

#include "qt_limits.h"

#include <stddef.h>
#include <stdint.h>

#define QT_WAL_MAGIC       0x4C575451u /* "QTWL" as little-endian bytes */
#define QT_WAL_HEADER_SIZE 32u
#define QT_WAL_F_LZ4       0x1u

/* Largest payload: the whole record stays within QT_WAL_RECORD_MAX. */
#define QT_WAL_PAYLOAD_MAX (QT_WAL_RECORD_MAX - QT_WAL_HEADER_SIZE)

/* One parsed record.  `payload` points either into the buffer passed to
 * qt_wal_record_read() or, for LZ4 records, into the caller's scratch; it is
 * valid as long as that memory is. */
struct qt_wal_record {
    uint64_t seq;
    uint32_t flags;
    uint32_t raw_len;    /* == payload_len */
    uint32_t stored_len; /* bytes after the header on disk */
    uint32_t record_len; /* QT_WAL_HEADER_SIZE + stored_len: offset of the next record */
    const uint8_t *payload;
    uint32_t payload_len;
};

/* Bytes qt_wal_record_encode() may write for a payload of payload_len
 * bytes (records are never larger than header + raw payload). */
size_t qt_wal_record_bound(size_t payload_len);

/*
 * Frame `payload[0..payload_len)` as one record with sequence number `seq`
 * into out[0..cap); *out_len receives the record length.
 *
 * payload may be exactly out + QT_WAL_HEADER_SIZE (the caller encoded the
 * payload in place, no copy); otherwise it must not overlap out.
 * LZ4: when scratch != NULL the payload is compressed into scratch and
 * stored compressed if that is smaller; scratch_cap >= payload_len always
 * suffices (a smaller scratch only loses compression).  scratch == NULL
 * stores the payload as is.
 * Returns 0, QT_ELIMIT (payload_len > QT_WAL_PAYLOAD_MAX) or QT_ENOSPACE
 * (cap < qt_wal_record_bound(payload_len)).
 */
int qt_wal_record_encode(uint64_t seq, const uint8_t *payload, size_t payload_len, uint8_t *scratch,
                         size_t scratch_cap, uint8_t *out, size_t cap, size_t *out_len);

/*
 * Give an already framed record rec[0..len) (from qt_wal_record_encode)
 * the sequence number seq and recompute its checksum.  Lets the WAL writer
 * compress and frame outside its commit lock and assign the sequence number
 * inside it.  The record must be one this process framed (asserted).
 */
int qt_wal_record_set_seq(uint8_t *rec, size_t len, uint64_t seq);

/*
 * Parse the record starting at buf[off] of the byte range buf[0..len)
 * (off <= len).  Reads only buf[off..len).  Outcomes:
 *   0             a complete, valid record; *rec filled, the next record
 *                 starts at off + rec->record_len.
 *   QT_ETRUNC     the header or the payload extends past len (a torn tail,
 *                 or off == len); the bytes present are consistent so far.
 *   QT_EMAGIC     the bytes at off do not start with the record magic
 *                 (also: zero-filled, preallocated log space).
 *   QT_ECHECKSUM  the stored checksum does not match.
 *   QT_ECORRUPT   header fields are inconsistent (unknown flags, lengths
 *                 above the limit, LZ4 framing wrong or not decompressible).
 *   QT_ENOSPACE   LZ4 record and scratch_cap < raw_len (caller's buffer;
 *                 scratch_cap >= QT_WAL_PAYLOAD_MAX always suffices).
 * A damaged length field can make a record look truncated; recovery treats
 * QT_ETRUNC as a torn tail only at the end of the last log file.
 */
int qt_wal_record_read(const uint8_t *buf, size_t len, size_t off, uint8_t *scratch,
                       size_t scratch_cap, struct qt_wal_record *rec);

#endif
