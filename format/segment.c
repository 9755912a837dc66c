/*
 * segment.c -- segment file layout: file header, footer, index chunks,
 * metaindex, key table, and a streaming index writer (see segment.h and
 * DESIGN.md "Segment files").
 *
 * Invariants of a valid segment (encoders refuse to write anything else,
 * decoders reject anything else):
 *   - sections tile the file exactly and in order: header [0,64), blocks
 *     [64, keytab_off), key table, index (chunks then metaindex), footer;
 *     every section offset and length is a multiple of 8;
 *   - every chunk but the last holds QT_SEG_CHUNK_ENTRIES entries, so chunk
 *     offsets follow from the counts and the metaindex must match exactly;
 *   - entries are in strictly ascending (series_id, ts_min) order; one
 *     series has one group and vtype and non-overlapping time ranges;
 *   - every entry points at 8-aligned blocks inside [64, keytab_off), its TS
 *     and VALUE block ranges disjoint; its statistics pass qt_stats_check;
 *   - key table ids strictly ascending, lengths within QT_SERIES_KEY_MAX.
 * Encoders and decoders share one check per structure (the *_check
 * helpers take the error code to return: QT_EINVAL when encoding,
 * QT_ECORRUPT when decoding), so what is written is what is accepted.
 * Not checked here (needs a full pass; `qtdb verify` does it): every
 * series in the index has a key, n_groups equals the distinct groups, the
 * blocks' own headers match their entries (qt_seg_entry_check_blocks).
 */
#include "segment.h"

#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"
#include "qt_hash.h"

#include <string.h>

static const uint8_t seg_magic[8] = {'Q', 'T', 'S', 'E', 'G', '\r', '\n', 0x1a};
static const uint8_t seg_end_magic[8] = {'Q', 'T', 'S', 'E', 'G', 'E', 'N', 'D'};

/* Smallest key table entry: ids, vtype, two 1-byte lengths, "g f". */
#define SEG_KEY_MIN_BYTES 22u

static_assert(QT_SEG_HEADER_SIZE % 8 == 0 && QT_SEG_FOOTER_SIZE % 8 == 0, "aligned sections");
static_assert(QT_SEG_ENTRY_SIZE % 8 == 0 && QT_SEG_METAINDEX_ENTRY_SIZE % 8 == 0, "aligned");
static_assert(QT_BLOCK_MAX_BYTES < UINT32_MAX, "block lengths are u32 in the index");
static_assert((uint64_t)QT_SEGMENT_BLOCKS_MAX * QT_SEG_ENTRY_SIZE < (1ull << 40), "no overflow");

static size_t
varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* ---- file header ------------------------------------------------------ */

int
qt_seg_header_encode(const struct qt_seg_header *h, uint8_t *out, size_t cap)
{
    qt_assert(h != NULL && out != NULL);
    if (cap < QT_SEG_HEADER_SIZE)
        return qt_fail(QT_ENOSPACE, "segment: header buffer below 64 bytes");
    if (h->shard_duration_ns <= 0 || h->shard_start_ns > INT64_MAX - h->shard_duration_ns)
        return qt_fail(QT_EINVAL, "segment: shard duration not positive or range overflows");
    memcpy(out, seg_magic, 8);
    qt_store_le32(out + 8, QT_FORMAT_VERSION);
    qt_store_le32(out + 12, 0);
    qt_store_le64(out + 16, (uint64_t)h->shard_start_ns);
    qt_store_le64(out + 24, (uint64_t)h->shard_duration_ns);
    qt_store_le64(out + 32, h->segment_seq);
    qt_store_le64(out + 40, (uint64_t)h->created_ns);
    qt_store_le64(out + 48, 0);
    qt_hash_store(out + 56, qt_hash64(out, 56));
    return 0;
}

/* Magic then version, shared by header and footer. */
static int
magic_version(const uint8_t *buf, const uint8_t *magic, uint32_t *version)
{
    if (memcmp(buf, magic, 8) != 0)
        return qt_fail(QT_EMAGIC, "segment: bad magic");
    *version = qt_load_le32(buf + 8);
    if (*version == 0)
        return qt_fail(QT_ECORRUPT, "segment: version 0");
    if (*version > QT_FORMAT_VERSION)
        return qt_fail(QT_EVERSION, "segment: written by a newer format version");
    return 0;
}

int
qt_seg_header_decode(const uint8_t *buf, size_t len, struct qt_seg_header *h)
{
    qt_assert(h != NULL);
    qt_assert(buf != NULL || len == 0);
    if (len < QT_SEG_HEADER_SIZE)
        return qt_fail(QT_ETRUNC, "segment: file shorter than its header");
    int rc = magic_version(buf, seg_magic, &h->version);
    if (rc != 0)
        return rc;
    if (!qt_hash_check(buf, 56, buf + 56))
        return qt_fail(QT_ECHECKSUM, "segment: header checksum mismatch");
    if (qt_load_le32(buf + 12) != 0 || qt_load_le64(buf + 48) != 0)
        return qt_fail(QT_ECORRUPT, "segment: header flags/reserved not zero");
    h->shard_start_ns = (int64_t)qt_load_le64(buf + 16);
    h->shard_duration_ns = (int64_t)qt_load_le64(buf + 24);
    h->segment_seq = qt_load_le64(buf + 32);
    h->created_ns = (int64_t)qt_load_le64(buf + 40);
    if (h->shard_duration_ns <= 0 || h->shard_start_ns > INT64_MAX - h->shard_duration_ns)
        return qt_fail(QT_ECORRUPT, "segment: shard duration not positive or range overflows");
    return 0;
}

/* ---- footer ----------------------------------------------------------- */

/* Counts: within limits and consistent with each other. */
static int
footer_check_counts(const struct qt_seg_footer *f, int code)
{
    if (f->n_blocks == 0 || f->n_blocks > QT_SEGMENT_BLOCKS_MAX)
        return qt_fail(code, "segment: n_blocks outside 1..QT_SEGMENT_BLOCKS_MAX");
    if (f->n_series == 0 || f->n_series > f->n_blocks)
        return qt_fail(code, "segment: n_series outside 1..n_blocks");
    if (f->n_groups == 0 || f->n_groups > f->n_series)
        return qt_fail(code, "segment: n_groups outside 1..n_series");
    if (f->n_points < f->n_blocks || f->n_points > (uint64_t)f->n_blocks * QT_BLOCK_POINTS_MAX)
        return qt_fail(code, "segment: n_points outside n_blocks..n_blocks*QT_BLOCK_POINTS_MAX");
    if (f->ts_min > f->ts_max)
        return qt_fail(code, "segment: ts_min above ts_max");
    uint32_t chunks = (f->n_blocks + QT_SEG_CHUNK_ENTRIES - 1) / QT_SEG_CHUNK_ENTRIES;
    if (f->n_chunks != chunks || f->metaindex_len != chunks * QT_SEG_METAINDEX_ENTRY_SIZE)
        return qt_fail(code, "segment: chunk count or metaindex length disagrees with n_blocks");
    uint64_t index = (uint64_t)f->n_blocks * QT_SEG_ENTRY_SIZE + (uint64_t)chunks * 8u;
    if (f->index_len != index + f->metaindex_len)
        return qt_fail(code, "segment: index length disagrees with n_blocks");
    return 0;
}

/* Sections tile [64, file_size - 128) in order: blocks, key table, index. */
static int
footer_check_layout(const struct qt_seg_footer *f, uint64_t file_size, int code)
{
    if (file_size < QT_SEG_HEADER_SIZE + QT_SEG_FOOTER_SIZE)
        return qt_fail(code == QT_ECORRUPT ? QT_ETRUNC : code, "segment: file below 192 bytes");
    uint64_t end = file_size - QT_SEG_FOOTER_SIZE;
    if (f->keytab_off % 8 != 0 || f->keytab_len % 8 != 0)
        return qt_fail(code, "segment: key table not 8-byte aligned");
    if (f->keytab_len < (uint64_t)f->n_series * SEG_KEY_MIN_BYTES ||
        f->keytab_len > (uint64_t)f->n_series * QT_SEG_KEY_MAX_BYTES + 7)
        return qt_fail(code, "segment: key table length impossible for n_series");
    uint64_t blocks_min = QT_SEG_HEADER_SIZE + (uint64_t)f->n_groups * QT_BLOCK_TS_MIN_BYTES +
                          (uint64_t)f->n_blocks * QT_BLOCK_VALUE_MIN_BYTES;
    if (f->keytab_off < blocks_min)
        return qt_fail(code, "segment: blocks region too small for the block counts");
    if (f->keytab_off > end || f->keytab_len > end - f->keytab_off)
        return qt_fail(code, "segment: key table extends past the footer");
    if (f->index_off != f->keytab_off + f->keytab_len)
        return qt_fail(code, "segment: index does not follow the key table");
    if (f->index_len != end - f->index_off)
        return qt_fail(code, "segment: index does not end at the footer");
    return 0;
}

int
qt_seg_footer_encode(const struct qt_seg_footer *f, uint64_t file_size, uint8_t *out, size_t cap)
{
    qt_assert(f != NULL && out != NULL);
    if (cap < QT_SEG_FOOTER_SIZE)
        return qt_fail(QT_ENOSPACE, "segment: footer buffer below 128 bytes");
    int rc = footer_check_counts(f, QT_EINVAL);
    if (rc == 0)
        rc = footer_check_layout(f, file_size, QT_EINVAL);
    if (rc != 0)
        return rc;
    memcpy(out, seg_end_magic, 8);
    qt_store_le32(out + 8, QT_FORMAT_VERSION);
    qt_store_le32(out + 12, 0);
    qt_store_le64(out + 16, f->segment_seq);
    qt_store_le64(out + 24, f->keytab_off);
    qt_store_le64(out + 32, f->keytab_len);
    qt_store_le64(out + 40, f->index_off);
    qt_store_le64(out + 48, f->index_len);
    qt_store_le32(out + 56, f->metaindex_len);
    qt_store_le32(out + 60, f->n_chunks);
    qt_store_le32(out + 64, f->n_groups);
    qt_store_le32(out + 68, f->n_series);
    qt_store_le32(out + 72, f->n_blocks);
    qt_store_le32(out + 76, 0);
    qt_store_le64(out + 80, f->n_points);
    qt_store_le64(out + 88, (uint64_t)f->ts_min);
    qt_store_le64(out + 96, (uint64_t)f->ts_max);
    qt_hash_store(out + 104, f->keytab_checksum);
    qt_hash_store(out + 112, f->metaindex_checksum);
    qt_hash_store(out + 120, qt_hash64(out, 120));
    return 0;
}

int
qt_seg_footer_decode(const uint8_t *buf, size_t len, uint64_t file_size, struct qt_seg_footer *f)
{
    qt_assert(f != NULL);
    qt_assert(buf != NULL || len == 0);
    if (len < QT_SEG_FOOTER_SIZE)
        return qt_fail(QT_ETRUNC, "segment: footer truncated");
    int rc = magic_version(buf, seg_end_magic, &f->version);
    if (rc != 0)
        return rc;
    if (!qt_hash_check(buf, 120, buf + 120))
        return qt_fail(QT_ECHECKSUM, "segment: footer checksum mismatch");
    if (qt_load_le32(buf + 12) != 0 || qt_load_le32(buf + 76) != 0)
        return qt_fail(QT_ECORRUPT, "segment: footer flags/reserved not zero");
    f->segment_seq = qt_load_le64(buf + 16);
    f->keytab_off = qt_load_le64(buf + 24);
    f->keytab_len = qt_load_le64(buf + 32);
    f->index_off = qt_load_le64(buf + 40);
    f->index_len = qt_load_le64(buf + 48);
    f->metaindex_len = qt_load_le32(buf + 56);
    f->n_chunks = qt_load_le32(buf + 60);
    f->n_groups = qt_load_le32(buf + 64);
    f->n_series = qt_load_le32(buf + 68);
    f->n_blocks = qt_load_le32(buf + 72);
    f->n_points = qt_load_le64(buf + 80);
    f->ts_min = (int64_t)qt_load_le64(buf + 88);
    f->ts_max = (int64_t)qt_load_le64(buf + 96);
    f->keytab_checksum = qt_hash_load(buf + 104);
    f->metaindex_checksum = qt_hash_load(buf + 112);
    rc = footer_check_counts(f, QT_ECORRUPT);
    return rc != 0 ? rc : footer_check_layout(f, file_size, QT_ECORRUPT);
}

int
qt_seg_check_header_footer(const struct qt_seg_header *h, const struct qt_seg_footer *f)
{
    qt_assert(h != NULL && f != NULL);
    qt_assert(f->ts_min <= f->ts_max && h->shard_duration_ns > 0);
    if (h->segment_seq != f->segment_seq)
        return qt_fail(QT_ECORRUPT, "segment: header and footer sequence numbers differ");
    if (h->version != f->version)
        return qt_fail(QT_ECORRUPT, "segment: header and footer versions differ");
    if (f->ts_min < h->shard_start_ns ||
        (uint64_t)f->ts_max - (uint64_t)h->shard_start_ns >= (uint64_t)h->shard_duration_ns)
        return qt_fail(QT_ECORRUPT, "segment: data outside the shard's time range");
    return 0;
}

/* ---- index entries ---------------------------------------------------- */

/* A block range inside the blocks region [64, blocks_end). */
static bool
block_range_ok(uint64_t off, uint32_t len, uint32_t min_len, uint64_t blocks_end)
{
    return off % 8 == 0 && len % 8 == 0 && off >= QT_SEG_HEADER_SIZE && len >= min_len &&
           len <= QT_BLOCK_MAX_BYTES && off <= blocks_end && len <= blocks_end - off;
}

static int
entry_check(const struct qt_seg_entry *e, uint64_t blocks_end, int code)
{
    if (e->vtype < QT_VT_FLOAT || e->vtype > QT_VT_STRING)
        return qt_fail(code, "segment: entry with unknown vtype");
    if (e->n_rows == 0 || e->n_rows > QT_BLOCK_POINTS_MAX || e->n_values == 0 ||
        e->n_values > e->n_rows || e->stats.count != e->n_values)
        return qt_fail(code, "segment: entry row/value counts out of range");
    if ((e->flags & ~QT_BLOCK_F_KNOWN) != 0 ||
        ((e->flags & QT_BLOCK_F_PRESENCE) != 0) != (e->n_values < e->n_rows) ||
        ((e->flags & QT_BLOCK_F_SUM_OVERFLOW) != 0) != e->stats.sum_overflow)
        return qt_fail(code, "segment: entry flags disagree with counts or statistics");
    if (e->ts_min > e->ts_max || (uint64_t)e->ts_max - (uint64_t)e->ts_min < e->n_values - 1)
        return qt_fail(code, "segment: entry time range too short for its values");
    if (!block_range_ok(e->ts_block_off, e->ts_block_len, QT_BLOCK_TS_MIN_BYTES, blocks_end) ||
        !block_range_ok(e->value_block_off, e->value_block_len, QT_BLOCK_VALUE_MIN_BYTES,
                        blocks_end))
        return qt_fail(code, "segment: entry block range outside the blocks region");
    if (e->ts_block_off < e->value_block_off + e->value_block_len &&
        e->value_block_off < e->ts_block_off + e->ts_block_len)
        return qt_fail(code, "segment: entry TS and VALUE blocks overlap");
    if (qt_stats_check(e->vtype, &e->stats) != 0)
        return code; /* detail set by qt_stats_check */
    return 0;
}

static int
entry_order(const struct qt_seg_entry *a, const struct qt_seg_entry *b, int code)
{
    if (a->series_id > b->series_id)
        return qt_fail(code, "segment: index entries not sorted by series");
    if (a->series_id < b->series_id)
        return 0;
    if (a->group_id != b->group_id || a->vtype != b->vtype)
        return qt_fail(code, "segment: one series with two groups or vtypes");
    if (b->ts_min <= a->ts_max)
        return qt_fail(code, "segment: a series' entries overlap or are out of time order");
    return 0;
}

int
qt_seg_entry_check_order(const struct qt_seg_entry *a, const struct qt_seg_entry *b)
{
    qt_assert(a != NULL && b != NULL);
    return entry_order(a, b, QT_ECORRUPT);
}

static void
entry_encode(const struct qt_seg_entry *e, uint8_t *out)
{
    qt_store_le64(out + 0, e->series_id);
    qt_store_le64(out + 8, e->group_id);
    qt_store_le64(out + 16, e->ts_block_off);
    qt_store_le64(out + 24, e->value_block_off);
    qt_store_le32(out + 32, e->ts_block_len);
    qt_store_le32(out + 36, e->value_block_len);
    qt_store_le32(out + 40, e->n_rows);
    qt_store_le32(out + 44, e->n_values);
    qt_store_le64(out + 48, (uint64_t)e->ts_min);
    qt_store_le64(out + 56, (uint64_t)e->ts_max);
    out[64] = (uint8_t)e->vtype;
    out[65] = 0;
    qt_store_le16(out + 66, (uint16_t)e->flags);
    qt_store_le32(out + 68, 0);
    qt_stats_store(&e->stats, out + 72);
}

static int
entry_decode(const uint8_t *in, struct qt_seg_entry *e)
{
    if (in[65] != 0 || qt_load_le32(in + 68) != 0)
        return qt_fail(QT_ECORRUPT, "segment: entry reserved bytes not zero");
    e->series_id = qt_load_le64(in + 0);
    e->group_id = qt_load_le64(in + 8);
    e->ts_block_off = qt_load_le64(in + 16);
    e->value_block_off = qt_load_le64(in + 24);
    e->ts_block_len = qt_load_le32(in + 32);
    e->value_block_len = qt_load_le32(in + 36);
    e->n_rows = qt_load_le32(in + 40);
    e->n_values = qt_load_le32(in + 44);
    e->ts_min = (int64_t)qt_load_le64(in + 48);
    e->ts_max = (int64_t)qt_load_le64(in + 56);
    e->vtype = (enum qt_vtype)in[64];
    e->flags = qt_load_le16(in + 66);
    qt_stats_load(in + 72, e->n_values, (e->flags & QT_BLOCK_F_SUM_OVERFLOW) != 0, &e->stats);
    return 0;
}

int
qt_seg_chunk_encode(const struct qt_seg_entry *entries, uint32_t n, uint64_t blocks_end,
                    uint8_t *out, size_t cap, size_t *out_len)
{
    qt_assert(entries != NULL && out != NULL && out_len != NULL);
    if (n == 0 || n > QT_SEG_CHUNK_ENTRIES)
        return qt_fail(QT_EINVAL, "segment: chunk entry count outside 1..256");
    if (cap < qt_seg_chunk_bytes(n))
        return qt_fail(QT_ENOSPACE, "segment: chunk buffer too small");
    for (uint32_t i = 0; i < n; i++) {
        int rc = entry_check(&entries[i], blocks_end, QT_EINVAL);
        if (rc == 0 && i > 0)
            rc = entry_order(&entries[i - 1], &entries[i], QT_EINVAL);
        if (rc != 0)
            return rc;
        entry_encode(&entries[i], out + (size_t)i * QT_SEG_ENTRY_SIZE);
    }
    size_t body = (size_t)n * QT_SEG_ENTRY_SIZE;
    qt_hash_store(out + body, qt_hash64(out, body));
    *out_len = body + 8;
    return 0;
}

int
qt_seg_chunk_decode(const uint8_t *buf, size_t len, const struct qt_seg_footer *f,
                    const struct qt_seg_chunk_ref *ref, struct qt_seg_entry *out, uint32_t cap)
{
    qt_assert(f != NULL && ref != NULL && out != NULL);
    qt_assert(ref->count >= 1 && ref->count <= QT_SEG_CHUNK_ENTRIES); /* validated metaindex */
    size_t body = (size_t)ref->count * QT_SEG_ENTRY_SIZE;
    if (len < body + 8)
        return qt_fail(QT_ETRUNC, "segment: index chunk truncated");
    if (len > body + 8)
        return qt_fail(QT_ECORRUPT, "segment: index chunk longer than its count");
    if (cap < ref->count)
        return qt_fail(QT_ENOSPACE, "segment: entry array below the chunk's count");
    if (!qt_hash_check(buf, body, buf + body))
        return qt_fail(QT_ECHECKSUM, "segment: index chunk checksum mismatch");
    for (uint32_t i = 0; i < ref->count; i++) {
        int rc = entry_decode(buf + (size_t)i * QT_SEG_ENTRY_SIZE, &out[i]);
        if (rc == 0)
            rc = entry_check(&out[i], f->keytab_off, QT_ECORRUPT);
        if (rc == 0 && i > 0)
            rc = entry_order(&out[i - 1], &out[i], QT_ECORRUPT);
        if (rc != 0)
            return rc;
    }
    if (out[0].series_id != ref->first_series || out[ref->count - 1].series_id != ref->last_series)
        return qt_fail(QT_ECORRUPT, "segment: chunk series range disagrees with the metaindex");
    return 0;
}

uint32_t
qt_seg_chunk_find(const struct qt_seg_entry *entries, uint32_t n, uint64_t series_id)
{
    qt_assert(entries != NULL || n == 0);
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (entries[mid].series_id < series_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    qt_assert(lo <= n);
    return lo;
}

int
qt_seg_entry_check_blocks(const struct qt_seg_entry *e, const struct qt_block_info *ts,
                          const struct qt_block_info *val)
{
    qt_assert(e != NULL && ts != NULL && val != NULL);
    if (ts->kind != QT_BLOCK_TS || val->kind != QT_BLOCK_VALUE)
        return qt_fail(QT_ECORRUPT, "segment: entry points at blocks of the wrong kind");
    if (ts->id != e->group_id || val->id != e->series_id)
        return qt_fail(QT_ECORRUPT, "segment: entry ids disagree with its blocks");
    if (ts->n_rows != e->n_rows || val->n_rows != e->n_rows || val->n_values != e->n_values ||
        val->vtype != e->vtype || val->flags != e->flags)
        return qt_fail(QT_ECORRUPT, "segment: entry counts/vtype/flags disagree with its blocks");
    if (ts->block_len != e->ts_block_len || val->block_len != e->value_block_len)
        return qt_fail(QT_ECORRUPT, "segment: entry lengths disagree with its blocks");
    if (val->ts_min != e->ts_min || val->ts_max != e->ts_max || e->ts_min < ts->ts_min ||
        e->ts_max > ts->ts_max)
        return qt_fail(QT_ECORRUPT, "segment: entry time range disagrees with its blocks");
    if (!qt_stats_equal(&val->stats, &e->stats))
        return qt_fail(QT_ECORRUPT, "segment: entry statistics differ from the block's");
    return 0;
}

/* ---- metaindex -------------------------------------------------------- */

/* Check refs[i] given the expected offset and, for the last chunk, count. */
static int
ref_check(const struct qt_seg_chunk_ref *refs, uint32_t i, uint32_t n, uint64_t want_off,
          uint32_t last_count, int code)
{
    const struct qt_seg_chunk_ref *r = &refs[i];
    uint32_t want_count = i + 1 < n ? QT_SEG_CHUNK_ENTRIES : last_count;
    if (r->offset != want_off)
        return qt_fail(code, "segment: chunk offset not contiguous from the index start");
    if (r->count != want_count ||
        (i + 1 == n && (r->count == 0 || r->count > QT_SEG_CHUNK_ENTRIES)))
        return qt_fail(code, "segment: chunk count wrong (all chunks but the last are full)");
    if (r->first_series > r->last_series)
        return qt_fail(code, "segment: chunk first series above its last");
    if (i > 0 && refs[i - 1].last_series > r->first_series)
        return qt_fail(code, "segment: chunk series ranges not ascending");
    return 0;
}

int
qt_seg_metaindex_encode(const struct qt_seg_chunk_ref *refs, uint32_t n, uint8_t *out, size_t cap,
                        size_t *out_len, uint64_t *checksum)
{
    qt_assert(refs != NULL && out != NULL);
    qt_assert(out_len != NULL && checksum != NULL);
    if (n == 0 || n > QT_SEG_CHUNKS_MAX)
        return qt_fail(QT_EINVAL, "segment: metaindex chunk count outside 1..QT_SEG_CHUNKS_MAX");
    size_t need = (size_t)n * QT_SEG_METAINDEX_ENTRY_SIZE;
    if (cap < need)
        return qt_fail(QT_ENOSPACE, "segment: metaindex buffer too small");
    for (uint32_t i = 0; i < n; i++) {
        uint64_t want = refs[0].offset + (uint64_t)i * QT_SEG_CHUNK_MAX_BYTES;
        int rc = ref_check(refs, i, n, want, refs[n - 1].count, QT_EINVAL);
        if (rc != 0)
            return rc;
        uint8_t *p = out + (size_t)i * QT_SEG_METAINDEX_ENTRY_SIZE;
        qt_store_le64(p + 0, refs[i].first_series);
        qt_store_le64(p + 8, refs[i].last_series);
        qt_store_le64(p + 16, refs[i].offset);
        qt_store_le32(p + 24, refs[i].count);
        qt_store_le32(p + 28, 0);
    }
    *checksum = qt_hash64(out, need);
    *out_len = need;
    return 0;
}

int
qt_seg_metaindex_decode(const uint8_t *buf, size_t len, const struct qt_seg_footer *f,
                        struct qt_seg_chunk_ref *refs, uint32_t cap)
{
    qt_assert(f != NULL && refs != NULL);
    qt_assert(f->n_chunks >= 1 && f->metaindex_len == f->n_chunks * 32u); /* validated */
    if (len < f->metaindex_len)
        return qt_fail(QT_ETRUNC, "segment: metaindex truncated");
    if (len > f->metaindex_len)
        return qt_fail(QT_ECORRUPT, "segment: metaindex longer than the footer says");
    if (cap < f->n_chunks)
        return qt_fail(QT_ENOSPACE, "segment: ref array below n_chunks");
    if (!qt_hash_skip_verify && qt_hash64(buf, len) != f->metaindex_checksum)
        return qt_fail(QT_ECHECKSUM, "segment: metaindex checksum mismatch");
    uint32_t n = f->n_chunks;
    uint32_t last = f->n_blocks - (n - 1) * QT_SEG_CHUNK_ENTRIES;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p = buf + (size_t)i * QT_SEG_METAINDEX_ENTRY_SIZE;
        if (qt_load_le32(p + 28) != 0)
            return qt_fail(QT_ECORRUPT, "segment: metaindex reserved bytes not zero");
        refs[i].first_series = qt_load_le64(p + 0);
        refs[i].last_series = qt_load_le64(p + 8);
        refs[i].offset = qt_load_le64(p + 16);
        refs[i].count = qt_load_le32(p + 24);
        uint64_t want = f->index_off + (uint64_t)i * QT_SEG_CHUNK_MAX_BYTES;
        int rc = ref_check(refs, i, n, want, last, QT_ECORRUPT);
        if (rc != 0)
            return rc;
    }
    return 0;
}

uint32_t
qt_seg_metaindex_find(const struct qt_seg_chunk_ref *refs, uint32_t n, uint64_t series_id)
{
    qt_assert(refs != NULL || n == 0);
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (refs[mid].last_series < series_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    qt_assert(lo <= n);
    return lo;
}

/* ---- key table -------------------------------------------------------- */

static int
key_check(const struct qt_seg_key *k, int code)
{
    if (k->vtype < QT_VT_FLOAT || k->vtype > QT_VT_STRING)
        return qt_fail(code, "segment: key with unknown vtype");
    if (k->key_len > QT_SERIES_KEY_MAX)
        return qt_fail(code, "segment: series key above QT_SERIES_KEY_MAX");
    if (k->group_len == 0 || k->key_len < 3 || k->group_len > k->key_len - 2 ||
        k->key[k->group_len] != ' ')
        return qt_fail(code, "segment: series key without '<group key> <field>' split");
    return 0;
}

static size_t
key_size(const struct qt_seg_key *k)
{
    return 17 + varint_len(k->key_len) + varint_len(k->group_len) + k->key_len;
}

size_t
qt_seg_keytab_size(const struct qt_seg_key *keys, uint32_t n)
{
    qt_assert(keys != NULL || n == 0);
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (key_check(&keys[i], QT_EINVAL) != 0)
            return 0;
        total += key_size(&keys[i]);
    }
    return (total + 7) & ~(size_t)7;
}

int
qt_seg_keytab_encode(const struct qt_seg_key *keys, uint32_t n, uint8_t *out, size_t cap,
                     size_t *out_len, uint64_t *checksum)
{
    qt_assert(keys != NULL && out != NULL);
    qt_assert(out_len != NULL && checksum != NULL);
    if (n == 0)
        return qt_fail(QT_EINVAL, "segment: empty key table");
    size_t need = qt_seg_keytab_size(keys, n);
    if (need == 0)
        return QT_EINVAL; /* detail set by key_check */
    if (cap < need)
        return qt_fail(QT_ENOSPACE, "segment: key table buffer too small");
    size_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct qt_seg_key *k = &keys[i];
        if (i > 0 && keys[i - 1].series_id >= k->series_id)
            return qt_fail(QT_EINVAL, "segment: keys not in strictly ascending series order");
        qt_store_le64(out + pos, k->series_id);
        qt_store_le64(out + pos + 8, k->group_id);
        out[pos + 16] = (uint8_t)k->vtype;
        pos += 17;
        int rc = qt_varint_put(out, cap, &pos, k->key_len);
        rc |= qt_varint_put(out, cap, &pos, k->group_len);
        memcpy(out + pos, k->key, k->key_len);
        pos += k->key_len;
        qt_assert(rc == 0);
    }
    memset(out + pos, 0, need - pos);
    *checksum = qt_hash64(out, need);
    *out_len = need;
    return 0;
}

static int
key_decode(const uint8_t *buf, size_t len, size_t *pos, struct qt_seg_key *k)
{
    if (len - *pos < 17)
        return qt_fail(QT_ETRUNC, "segment: key entry truncated");
    k->series_id = qt_load_le64(buf + *pos);
    k->group_id = qt_load_le64(buf + *pos + 8);
    k->vtype = (enum qt_vtype)buf[*pos + 16];
    *pos += 17;
    uint64_t key_len = 0, group_len = 0;
    int rc = qt_varint_get(buf, len, pos, &key_len);
    if (rc == 0)
        rc = qt_varint_get(buf, len, pos, &group_len);
    if (rc != 0)
        return rc;
    if (key_len > QT_SERIES_KEY_MAX || group_len >= key_len)
        return qt_fail(QT_ECORRUPT, "segment: key lengths out of range");
    if (len - *pos < key_len)
        return qt_fail(QT_ETRUNC, "segment: key bytes truncated");
    k->key = buf + *pos;
    k->key_len = (uint32_t)key_len;
    k->group_len = (uint32_t)group_len;
    *pos += key_len;
    return key_check(k, QT_ECORRUPT);
}

int
qt_seg_keytab_decode(const uint8_t *buf, size_t len, const struct qt_seg_footer *f,
                     struct qt_seg_key *out, uint32_t cap)
{
    qt_assert(f != NULL && out != NULL);
    qt_assert(buf != NULL || len == 0);
    if (len < f->keytab_len)
        return qt_fail(QT_ETRUNC, "segment: key table truncated");
    if (len > f->keytab_len)
        return qt_fail(QT_ECORRUPT, "segment: key table longer than the footer says");
    if (cap < f->n_series)
        return qt_fail(QT_ENOSPACE, "segment: key array below n_series");
    if (!qt_hash_skip_verify && qt_hash64(buf, len) != f->keytab_checksum)
        return qt_fail(QT_ECHECKSUM, "segment: key table checksum mismatch");
    size_t pos = 0;
    for (uint32_t i = 0; i < f->n_series; i++) {
        int rc = key_decode(buf, len, &pos, &out[i]);
        if (rc != 0)
            return rc;
        if (i > 0 && out[i - 1].series_id >= out[i].series_id)
            return qt_fail(QT_ECORRUPT, "segment: keys not in strictly ascending series order");
    }
    if (len - pos >= 8 || len % 8 != 0)
        return qt_fail(QT_ECORRUPT, "segment: key table longer than its entries + padding");
    for (; pos < len; pos++)
        if (buf[pos] != 0)
            return qt_fail(QT_ECORRUPT, "segment: key table padding not zero");
    return 0;
}

uint32_t
qt_seg_keytab_find(const struct qt_seg_key *keys, uint32_t n, uint64_t series_id)
{
    qt_assert(keys != NULL || n == 0);
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (keys[mid].series_id < series_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && keys[lo].series_id == series_id ? lo : n;
}

/* ---- streaming index writer -------------------------------------------- */

void
qt_seg_index_writer_init(struct qt_seg_index_writer *w, uint64_t blocks_end, uint64_t index_off,
                         uint8_t *chunk, size_t chunk_cap, struct qt_seg_chunk_ref *refs,
                         uint32_t refs_cap)
{
    qt_assert(w != NULL && chunk != NULL && refs != NULL);
    qt_assert(chunk_cap >= QT_SEG_CHUNK_MAX_BYTES && blocks_end <= index_off);
    memset(w, 0, sizeof(*w));
    w->blocks_end = blocks_end;
    w->index_off = index_off;
    w->next_off = index_off;
    w->chunk = chunk;
    w->chunk_cap = chunk_cap;
    w->refs = refs;
    w->refs_cap = refs_cap;
}

int
qt_seg_index_add(struct qt_seg_index_writer *w, const struct qt_seg_entry *e)
{
    qt_assert(w != NULL && e != NULL);
    qt_assert(!qt_seg_index_chunk_full(w)); /* caller seals a full chunk first */
    if (w->n_blocks == QT_SEGMENT_BLOCKS_MAX)
        return qt_fail(QT_ELIMIT, "segment: index above QT_SEGMENT_BLOCKS_MAX entries");
    int rc = entry_check(e, w->blocks_end, QT_EINVAL);
    if (rc == 0 && w->n_blocks > 0)
        rc = entry_order(&w->last, e, QT_EINVAL);
    if (rc != 0)
        return rc;
    if (w->chunk_n == 0 && w->n_chunks == w->refs_cap)
        return qt_fail(QT_ENOSPACE, "segment: chunk ref array full");
    entry_encode(e, w->chunk + (size_t)w->chunk_n * QT_SEG_ENTRY_SIZE);
    struct qt_seg_chunk_ref *r = &w->refs[w->n_chunks];
    if (w->chunk_n == 0)
        r->first_series = e->series_id;
    r->last_series = e->series_id;
    if (w->n_blocks == 0 || e->series_id != w->last.series_id)
        w->n_series++;
    w->ts_min = w->n_blocks == 0 || e->ts_min < w->ts_min ? e->ts_min : w->ts_min;
    w->ts_max = w->n_blocks == 0 || e->ts_max > w->ts_max ? e->ts_max : w->ts_max;
    w->n_points += e->n_values;
    w->n_blocks++;
    w->chunk_n++;
    w->last = *e;
    return 0;
}

int
qt_seg_index_chunk_finish(struct qt_seg_index_writer *w, uint64_t *off, size_t *len)
{
    qt_assert(w != NULL && off != NULL && len != NULL);
    qt_assert(w->chunk_n >= 1 && w->n_chunks < w->refs_cap);
    size_t body = (size_t)w->chunk_n * QT_SEG_ENTRY_SIZE;
    qt_hash_store(w->chunk + body, qt_hash64(w->chunk, body));
    struct qt_seg_chunk_ref *r = &w->refs[w->n_chunks];
    r->offset = w->next_off;
    r->count = w->chunk_n;
    *off = w->next_off;
    *len = body + 8;
    w->next_off += body + 8;
    w->n_chunks++;
    w->chunk_n = 0;
    return 0;
}

int
qt_seg_index_finish(struct qt_seg_index_writer *w, uint8_t *out, size_t cap, uint64_t *off,
                    size_t *len, struct qt_seg_footer *footer)
{
    qt_assert(w != NULL && out != NULL && off != NULL && len != NULL && footer != NULL);
    qt_assert(w->chunk_n == 0 && w->n_blocks >= 1); /* every chunk sealed */
    uint64_t checksum = 0;
    int rc = qt_seg_metaindex_encode(w->refs, w->n_chunks, out, cap, len, &checksum);
    if (rc != 0)
        return rc;
    *off = w->next_off;
    footer->index_off = w->index_off;
    footer->index_len = w->next_off - w->index_off + *len;
    footer->metaindex_len = (uint32_t)*len;
    footer->metaindex_checksum = checksum;
    footer->n_chunks = w->n_chunks;
    footer->n_blocks = w->n_blocks;
    footer->n_series = w->n_series;
    footer->n_points = w->n_points;
    footer->ts_min = w->ts_min;
    footer->ts_max = w->ts_max;
    return 0;
}
