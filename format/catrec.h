/*
 * catrec.h -- byte layout of the series catalog log `catalog.qtc`
 * (DESIGN.md "Series catalog", section "Log file").
 *
 * The file is a header followed by records, appended and never rewritten.
 * All integers little-endian; checksums XXH3-64 in canonical (big-endian)
 * byte order (qt_hash_store).
 *
 * File header, QT_CATREC_HEADER_SIZE = 24 bytes:
 *   off  size  field
 *     0     8  magic "QTDBCATL"
 *     8     4  format version (QT_FORMAT_VERSION when written), u32
 *    12     4  reserved, must be 0
 *    16     8  XXH3-64 of bytes [0, 16)
 *
 * Record, QT_CATREC_FIXED_SIZE + key_len = 27 + key_len bytes:
 *   off          size     field
 *     0             8     series id, u64
 *     8             8     group id, u64
 *    16             1     value type (enum qt_vtype, 1..4)
 *    17             2     key_len, u16, 1..QT_SERIES_KEY_MAX
 *    19       key_len     canonical series key (format/serieskey.h)
 *    19+key_len     8     XXH3-64 of bytes [0, 19 + key_len)
 *
 * Contract: pure (no I/O, no allocation, no logging), thread-safe.  Decoders
 * read only buf[0..len).  Unlike the column codecs, a record decoder is a
 * stream decoder: bytes after the record are the next record, not an error;
 * *consumed says where this one ended.
 */
#ifndef QT_CATREC_H
#define QT_CATREC_H

#include "qt_limits.h"

#include <stddef.h>
#include <stdint.h>

#define QT_CATREC_MAGIC       "QTDBCATL"
#define QT_CATREC_MAGIC_SIZE  8u
#define QT_CATREC_HEADER_SIZE 24u
#define QT_CATREC_FIXED_SIZE  27u /* record bytes besides the key */
#define QT_CATREC_SIZE_MAX    (QT_CATREC_FIXED_SIZE + QT_SERIES_KEY_MAX)

/* One decoded record.  After decode, key points into the decoder's input. */
struct qt_catrec {
    uint64_t series_id;
    uint64_t group_id;
    uint8_t vtype; /* enum qt_vtype */
    uint16_t key_len;
    const uint8_t *key;
};

/* Encoded size of a record with a key of key_len bytes. */
static inline size_t
qt_catrec_size(size_t key_len)
{
    return QT_CATREC_FIXED_SIZE + key_len;
}

/* Write the file header to out[0..QT_CATREC_HEADER_SIZE).  Returns 0 or
 * QT_ENOSPACE when cap is smaller than the header. */
int qt_catrec_header_encode(uint8_t *out, size_t cap);

/* Check a file header in buf[0..len): QT_ETRUNC (shorter than the header),
 * QT_EMAGIC, QT_ECHECKSUM, QT_EVERSION (newer than this build), QT_ECORRUPT
 * (version 0 or reserved bits set).  On success *version is the file's. */
int qt_catrec_header_decode(const uint8_t *buf, size_t len, uint32_t *version);

/* Encode r at out[0..cap), setting *out_len = qt_catrec_size(r->key_len).
 * Returns QT_EINVAL for a vtype outside enum qt_vtype or a key_len of 0 or
 * above QT_SERIES_KEY_MAX (the key's canonical form is the caller's job),
 * QT_ENOSPACE when cap is too small. */
int qt_catrec_encode(const struct qt_catrec *r, uint8_t *out, size_t cap, size_t *out_len);

/* Decode the record at the start of buf[0..len).  Returns 0 and sets
 * *consumed, or QT_ETRUNC (record extends past len), QT_ECORRUPT (key_len 0
 * or too large, unknown vtype), QT_ECHECKSUM.  The key length is checked
 * before anything past the fixed part is read, the checksum before vtype. */
int qt_catrec_decode(const uint8_t *buf, size_t len, struct qt_catrec *r, size_t *consumed);

#endif
