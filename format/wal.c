/*
 * wal.c -- WAL record framing: encode one record, parse one record at an
 * offset and classify what is there (valid / torn tail / corrupt).
 *
 * Invariants of a valid record (checked by qt_wal_record_read, guaranteed by
 * qt_wal_record_encode):
 *   - magic == QT_WAL_MAGIC, flags contain no bit but QT_WAL_F_LZ4;
 *   - raw_len <= QT_WAL_PAYLOAD_MAX;
 *   - without LZ4: stored_len == raw_len;
 *     with LZ4: 0 < stored_len < raw_len (LZ4 is kept only when it saves
 *     bytes) and the stored bytes decompress to exactly raw_len bytes;
 *   - checksum == XXH3-64(header[0..24) || stored payload).
 * The header checksum sits after the fields it covers, so the hash runs
 * over two ranges with a streaming XXH3 state on the stack (no allocation);
 * the result equals XXH3-64 of the concatenation, which external tools can
 * recompute.  Layout: DESIGN.md "WAL records".
 */
#include "wal.h"

#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"
#include "qt_hash.h"

#include <lz4.h>
#include <string.h>

static_assert(QT_WAL_PAYLOAD_MAX < (uint32_t)INT32_MAX, "LZ4 sizes are int");
static_assert(QT_WAL_HEADER_SIZE % 8 == 0, "header keeps 8-byte alignment");

/* XXH3-64 of hdr[0..24) followed by payload[0..n). */
static uint64_t
wal_checksum(const uint8_t *hdr, const uint8_t *payload, size_t n)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, hdr, 24);
    XXH3_64bits_update(&st, payload, n);
    return (uint64_t)XXH3_64bits_digest(&st);
}

size_t
qt_wal_record_bound(size_t payload_len)
{
    qt_assert(payload_len <= SIZE_MAX - QT_WAL_HEADER_SIZE);
    return QT_WAL_HEADER_SIZE + payload_len;
}

/* Try to LZ4-compress out[32..32+raw) via scratch; returns the stored length. */
static uint32_t
wal_compress(uint8_t *out, uint32_t raw, uint8_t *scratch, size_t scratch_cap, uint32_t *flags)
{
    uint8_t *payload = out + QT_WAL_HEADER_SIZE;
    if (scratch == NULL || raw < 2)
        return raw;
    size_t dst_cap = scratch_cap < (size_t)raw - 1 ? scratch_cap : (size_t)raw - 1;
    int c = LZ4_compress_default((const char *)payload, (char *)scratch, (int)raw, (int)dst_cap);
    if (c <= 0)
        return raw; /* incompressible, or does not fit: store as is */
    qt_assert((uint32_t)c < raw);
    memcpy(payload, scratch, (size_t)c);
    *flags |= QT_WAL_F_LZ4;
    return (uint32_t)c;
}

int
qt_wal_record_encode(uint64_t seq, const uint8_t *payload, size_t payload_len, uint8_t *scratch,
                     size_t scratch_cap, uint8_t *out, size_t cap, size_t *out_len)
{
    qt_assert(out != NULL && out_len != NULL);
    qt_assert(payload != NULL || payload_len == 0);
    if (payload_len > QT_WAL_PAYLOAD_MAX)
        return qt_fail(QT_ELIMIT, "wal: payload above QT_WAL_PAYLOAD_MAX");
    if (cap < qt_wal_record_bound(payload_len))
        return qt_fail(QT_ENOSPACE, "wal: output buffer below qt_wal_record_bound");
    uint8_t *dst = out + QT_WAL_HEADER_SIZE;
    if (payload != dst && payload_len > 0) {
        qt_assert(payload + payload_len <= out || payload >= out + cap); /* no overlap */
        memcpy(dst, payload, payload_len);
    }
    uint32_t raw = (uint32_t)payload_len;
    uint32_t flags = 0;
    uint32_t stored = wal_compress(out, raw, scratch, scratch_cap, &flags);
    qt_store_le32(out + 0, QT_WAL_MAGIC);
    qt_store_le32(out + 4, flags);
    qt_store_le64(out + 8, seq);
    qt_store_le32(out + 16, raw);
    qt_store_le32(out + 20, stored);
    qt_hash_store(out + 24, wal_checksum(out, dst, stored));
    *out_len = QT_WAL_HEADER_SIZE + stored;
    qt_assert(*out_len <= cap);
    return 0;
}

/* Validate the fixed fields of a header whose 32 bytes are present. */
static int
wal_check_header(const uint8_t *h, uint32_t *flags, uint32_t *raw, uint32_t *stored)
{
    *flags = qt_load_le32(h + 4);
    *raw = qt_load_le32(h + 16);
    *stored = qt_load_le32(h + 20);
    if ((*flags & ~QT_WAL_F_LZ4) != 0)
        return qt_fail(QT_ECORRUPT, "wal: unknown record flags");
    if (*raw > QT_WAL_PAYLOAD_MAX)
        return qt_fail(QT_ECORRUPT, "wal: raw_len above QT_WAL_PAYLOAD_MAX");
    if ((*flags & QT_WAL_F_LZ4) == 0 && *stored != *raw)
        return qt_fail(QT_ECORRUPT, "wal: stored_len != raw_len without LZ4");
    if ((*flags & QT_WAL_F_LZ4) != 0 && (*stored == 0 || *stored >= *raw))
        return qt_fail(QT_ECORRUPT, "wal: LZ4 record not smaller than its raw payload");
    return 0;
}

/* A header prefix of n < 32 bytes: torn if it is a plausible start. */
static int
wal_short_header(const uint8_t *h, size_t n)
{
    uint8_t magic[4];
    qt_store_le32(magic, QT_WAL_MAGIC);
    if (memcmp(h, magic, n < 4 ? n : 4) != 0)
        return qt_fail(QT_EMAGIC, "wal: bad record magic");
    return qt_fail(QT_ETRUNC, "wal: record header truncated");
}

int
qt_wal_record_read(const uint8_t *buf, size_t len, size_t off, uint8_t *scratch, size_t scratch_cap,
                   struct qt_wal_record *rec)
{
    qt_assert(off <= len && rec != NULL);
    qt_assert(buf != NULL || len == 0);
    const uint8_t *h = buf + off;
    size_t avail = len - off;
    if (avail < QT_WAL_HEADER_SIZE)
        return wal_short_header(h, avail);
    if (qt_load_le32(h) != QT_WAL_MAGIC)
        return qt_fail(QT_EMAGIC, "wal: bad record magic");
    uint32_t flags, raw, stored;
    int rc = wal_check_header(h, &flags, &raw, &stored);
    if (rc != 0)
        return rc;
    if (avail - QT_WAL_HEADER_SIZE < stored)
        return qt_fail(QT_ETRUNC, "wal: record payload truncated");
    const uint8_t *p = h + QT_WAL_HEADER_SIZE;
    if (!qt_hash_skip_verify && qt_hash_load(h + 24) != wal_checksum(h, p, stored))
        return qt_fail(QT_ECHECKSUM, "wal: record checksum mismatch");
    if ((flags & QT_WAL_F_LZ4) != 0) {
        if (scratch_cap < raw)
            return qt_fail(QT_ENOSPACE, "wal: scratch below raw_len for LZ4 record");
        int d = LZ4_decompress_safe((const char *)p, (char *)scratch, (int)stored, (int)raw);
        if (d < 0 || (uint32_t)d != raw)
            return qt_fail(QT_ECORRUPT, "wal: LZ4 payload does not decompress to raw_len");
        p = scratch;
    }
    rec->seq = qt_load_le64(h + 8);
    rec->flags = flags;
    rec->raw_len = raw;
    rec->stored_len = stored;
    rec->record_len = QT_WAL_HEADER_SIZE + stored;
    rec->payload = p;
    rec->payload_len = raw;
    return 0;
}

int
qt_wal_record_set_seq(uint8_t *rec, size_t len, uint64_t seq)
{
    qt_assert(rec != NULL);
    qt_assert(len >= QT_WAL_HEADER_SIZE);
    qt_assert(qt_load_le32(rec) == QT_WAL_MAGIC);
    uint32_t stored = qt_load_le32(rec + 20);
    qt_assert(len == QT_WAL_HEADER_SIZE + (size_t)stored);
    qt_store_le64(rec + 8, seq);
    qt_hash_store(rec + 24, wal_checksum(rec, rec + QT_WAL_HEADER_SIZE, stored));
    return 0;
}
