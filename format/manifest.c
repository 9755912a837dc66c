/*
 * manifest.c -- MANIFEST encode/decode (see manifest.h; DESIGN.md "MANIFEST").
 *
 * Header (56 bytes):
 *   0 u32 magic "QTMF"   4 u32 format version   8 u64 generation
 *  16 u64 wal_checkpoint 24 u64 next_segment_seq 32 i64 shard_duration_ns
 *  40 u32 n_segments     44 u32 flags           48 u64 catalog_bytes
 * Entry (64 bytes):
 *   0 i64 shard_start_ns 8 u64 seq  16 u64 file_bytes  24 u64 file_xxh3
 *  32 i64 ts_min  40 i64 ts_max  48 u64 points  56 u32 series  60 u32 level
 * Trailer: u64 XXH3-64 of bytes [0 .. 56 + 64n), canonical byte order.
 */
#include "manifest.h"

#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"
#include "qt_hash.h"
#include "qt_limits.h"

static_assert(QT_MANIFEST_HEADER_BYTES % 8 == 0, "manifest header stays 8-byte aligned");
static_assert(QT_MANIFEST_ENTRY_BYTES % 8 == 0, "manifest entries stay 8-byte aligned");

size_t
qt_manifest_bound(uint32_t n_segments)
{
    return QT_MANIFEST_HEADER_BYTES + (size_t)n_segments * QT_MANIFEST_ENTRY_BYTES + 8;
}

static void
manifest_put_entry(uint8_t *p, const struct qt_manifest_seg *s)
{
    qt_store_le64(p + 0, (uint64_t)s->shard_start_ns);
    qt_store_le64(p + 8, s->seq);
    qt_store_le64(p + 16, s->file_bytes);
    qt_store_le64(p + 24, s->file_xxh3);
    qt_store_le64(p + 32, (uint64_t)s->ts_min);
    qt_store_le64(p + 40, (uint64_t)s->ts_max);
    qt_store_le64(p + 48, s->points);
    qt_store_le32(p + 56, s->series);
    qt_store_le32(p + 60, s->level);
}

static void
manifest_get_entry(const uint8_t *p, struct qt_manifest_seg *s)
{
    s->shard_start_ns = (int64_t)qt_load_le64(p + 0);
    s->seq = qt_load_le64(p + 8);
    s->file_bytes = qt_load_le64(p + 16);
    s->file_xxh3 = qt_load_le64(p + 24);
    s->ts_min = (int64_t)qt_load_le64(p + 32);
    s->ts_max = (int64_t)qt_load_le64(p + 40);
    s->points = qt_load_le64(p + 48);
    s->series = qt_load_le32(p + 56);
    s->level = qt_load_le32(p + 60);
}

/* Entries sorted by (shard, seq) with unique seqs. */
static int
manifest_check_order(const struct qt_manifest_seg *a, const struct qt_manifest_seg *b)
{
    if (a->shard_start_ns < b->shard_start_ns)
        return 0;
    if (a->shard_start_ns == b->shard_start_ns && a->seq < b->seq)
        return 0;
    return qt_fail(QT_ECORRUPT, "manifest: entries not sorted by (shard, seq)");
}

static int
manifest_check_entry(const struct qt_manifest_hdr *h, const struct qt_manifest_seg *s)
{
    if (s->ts_min > s->ts_max)
        return qt_fail(QT_ECORRUPT, "manifest: segment ts_min > ts_max");
    if (s->seq >= h->next_segment_seq)
        return qt_fail(QT_ECORRUPT, "manifest: segment seq not below next_segment_seq");
    if (s->shard_start_ns % h->shard_duration_ns != 0)
        return qt_fail(QT_ECORRUPT, "manifest: shard start not aligned to the shard duration");
    /* ts >= start and ts < start + duration, without overflowing. */
    if (s->ts_min < s->shard_start_ns ||
        (uint64_t)s->ts_max - (uint64_t)s->shard_start_ns >= (uint64_t)h->shard_duration_ns)
        return qt_fail(QT_ECORRUPT, "manifest: segment time range outside its shard");
    if (s->file_bytes == 0)
        return qt_fail(QT_ECORRUPT, "manifest: empty segment file");
    return 0;
}

int
qt_manifest_encode(const struct qt_manifest_hdr *hdr, const struct qt_manifest_seg *segs,
                   uint32_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    qt_assert(hdr != NULL);
    qt_assert(hdr->n_segments == n);
    qt_assert(hdr->shard_duration_ns > 0);
    if (n > QT_MANIFEST_SEGMENTS_MAX)
        return qt_fail(QT_ELIMIT, "manifest: too many segments");
    size_t need = qt_manifest_bound(n);
    if (cap < need)
        return QT_ENOSPACE;
    qt_store_le32(out + 0, QT_MANIFEST_MAGIC);
    qt_store_le32(out + 4, QT_FORMAT_VERSION);
    qt_store_le64(out + 8, hdr->generation);
    qt_store_le64(out + 16, hdr->wal_checkpoint);
    qt_store_le64(out + 24, hdr->next_segment_seq);
    qt_store_le64(out + 32, (uint64_t)hdr->shard_duration_ns);
    qt_store_le32(out + 40, n);
    qt_store_le32(out + 44, hdr->flags);
    qt_store_le64(out + 48, hdr->catalog_bytes);
    for (uint32_t i = 0; i < n; i++) {
        /* Pair assertion: the decoder checks the same properties. */
        qt_assert(manifest_check_entry(hdr, &segs[i]) == 0);
        qt_assert(i == 0 || manifest_check_order(&segs[i - 1], &segs[i]) == 0);
        manifest_put_entry(out + QT_MANIFEST_HEADER_BYTES + (size_t)i * QT_MANIFEST_ENTRY_BYTES,
                           &segs[i]);
    }
    qt_hash_store(out + need - 8, qt_hash64(out, need - 8));
    *out_len = need;
    return 0;
}

int
qt_manifest_decode_header(const uint8_t *buf, size_t len, struct qt_manifest_hdr *hdr)
{
    qt_assert(hdr != NULL);
    if (len < QT_MANIFEST_HEADER_BYTES + 8)
        return qt_fail(QT_ETRUNC, "manifest: shorter than its header");
    if (qt_load_le32(buf) != QT_MANIFEST_MAGIC)
        return qt_fail(QT_EMAGIC, "manifest: bad magic");
    uint32_t version = qt_load_le32(buf + 4);
    if (version == 0 || version > QT_FORMAT_VERSION)
        return qt_fail(QT_EVERSION, "manifest: unsupported format version");
    hdr->generation = qt_load_le64(buf + 8);
    hdr->wal_checkpoint = qt_load_le64(buf + 16);
    hdr->next_segment_seq = qt_load_le64(buf + 24);
    hdr->shard_duration_ns = (int64_t)qt_load_le64(buf + 32);
    hdr->n_segments = qt_load_le32(buf + 40);
    hdr->flags = qt_load_le32(buf + 44);
    hdr->catalog_bytes = qt_load_le64(buf + 48);
    if (hdr->n_segments > QT_MANIFEST_SEGMENTS_MAX)
        return qt_fail(QT_ECORRUPT, "manifest: segment count above limit");
    size_t need = qt_manifest_bound(hdr->n_segments);
    if (len < need)
        return qt_fail(QT_ETRUNC, "manifest: truncated entry list");
    if (len > need)
        return qt_fail(QT_ECORRUPT, "manifest: trailing bytes after checksum");
    if (!qt_hash_check(buf, need - 8, buf + need - 8))
        return qt_fail(QT_ECHECKSUM, "manifest: checksum mismatch");
    if (hdr->shard_duration_ns <= 0)
        return qt_fail(QT_ECORRUPT, "manifest: shard duration not positive");
    if (hdr->flags != 0)
        return qt_fail(QT_ECORRUPT, "manifest: unknown flags");
    return 0;
}

int
qt_manifest_decode(const uint8_t *buf, size_t len, struct qt_manifest_hdr *hdr,
                   struct qt_manifest_seg *segs, uint32_t cap)
{
    int rc = qt_manifest_decode_header(buf, len, hdr);
    if (rc != 0)
        return rc;
    if (hdr->n_segments > cap)
        return qt_fail(QT_ELIMIT, "manifest: more segments than the caller's capacity");
    for (uint32_t i = 0; i < hdr->n_segments; i++) {
        manifest_get_entry(buf + QT_MANIFEST_HEADER_BYTES + (size_t)i * QT_MANIFEST_ENTRY_BYTES,
                           &segs[i]);
        rc = manifest_check_entry(hdr, &segs[i]);
        if (rc == 0 && i > 0)
            rc = manifest_check_order(&segs[i - 1], &segs[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}
