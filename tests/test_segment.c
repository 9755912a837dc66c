/*
 * test_segment.c -- segment layout: files built with the streaming index
 * writer (1..1000 entries, chunk boundaries, series spanning chunks) read
 * back by a full reader (footer, header, metaindex, every chunk, key table,
 * cross-chunk order, keys for every series); every truncation and every
 * bit flip outside the block region detected; hostile footers, chunks,
 * metaindexes and key tables (re-checksummed so the field checks are hit);
 * writer and encoder misuse; lookups against linear search.
 */
#include "format/qt_assert.h"
#include "format/qt_bytes.h"
#include "format/qt_hash.h"
#include "format/segment.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUPS  64
#define MAX_FIELDS  4
#define MAX_SLICES  8
#define MAX_ENTRIES (MAX_GROUPS * MAX_FIELDS * MAX_SLICES)
#define FILE_CAP    (4u << 20)

static const int64_t shard_start = 1700000000000000000;

struct built {
    uint8_t file[FILE_CAP];
    size_t size;
    struct qt_seg_entry entries[MAX_ENTRIES];
    uint32_t n_entries;
    struct qt_seg_key keys[MAX_GROUPS * MAX_FIELDS];
    uint32_t n_keys, n_groups;
    char text[MAX_GROUPS * MAX_FIELDS * 64];
    struct qt_seg_header hdr;
};

static struct built B; /* the segment under test */

/* Decoded copies, filled by read_all. */
static struct qt_seg_entry r_entries[MAX_ENTRIES];
static struct qt_seg_key r_keys[MAX_GROUPS * MAX_FIELDS];
static struct qt_seg_chunk_ref r_refs[MAX_ENTRIES / QT_SEG_CHUNK_ENTRIES + 1];
static struct qt_seg_footer r_footer;

static int
cmp_key(const void *a, const void *b)
{
    const struct qt_seg_key *x = a, *y = b;
    return x->series_id < y->series_id ? -1 : x->series_id > y->series_id;
}

static void
make_stats(uint64_t *rng, enum qt_vtype vt, uint32_t n, struct qt_stats *s)
{
    static double f[QT_BLOCK_POINTS_MAX];
    static int64_t i64[QT_BLOCK_POINTS_MAX];
    static uint8_t b[QT_BLOCK_POINTS_MAX];
    static struct qt_str str[QT_BLOCK_POINTS_MAX];
    const void *v = str;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t r = qt_test_rand(rng);
        f[i] = (double)(int64_t)r / 1e6;
        i64[i] = (int64_t)r >> (r % 4 == 0 ? 0 : 40); /* some blocks overflow the sum */
        b[i] = (uint8_t)(r & 1);
        str[i] = (struct qt_str){"x", 1};
    }
    v = vt == QT_VT_FLOAT  ? (const void *)f
        : vt == QT_VT_INT  ? (const void *)i64
        : vt == QT_VT_BOOL ? (const void *)b
                           : v;
    qt_assert(qt_stats_compute(vt, v, n, s) == 0);
}

/* Lay out blocks (filler bytes), keys and entries; ids random. */
static uint64_t
build_blocks_and_entries(uint64_t *rng, uint32_t groups, uint32_t fields, uint32_t slices)
{
    static uint64_t ts_off[MAX_GROUPS][MAX_SLICES], val_off[MAX_GROUPS][MAX_FIELDS][MAX_SLICES];
    static uint32_t ts_len[MAX_GROUPS][MAX_SLICES], val_len[MAX_GROUPS][MAX_FIELDS][MAX_SLICES];
    static uint32_t rows[MAX_GROUPS][MAX_SLICES];
    uint64_t off = QT_SEG_HEADER_SIZE;
    for (uint32_t s = 0; s < slices; s++)
        for (uint32_t g = 0; g < groups; g++) {
            ts_off[g][s] = off;
            ts_len[g][s] = QT_BLOCK_TS_MIN_BYTES + 8 * (uint32_t)(qt_test_rand(rng) % 4);
            rows[g][s] = 1 + (uint32_t)(qt_test_rand(rng) % 1000);
            off += ts_len[g][s];
            for (uint32_t f = 0; f < fields; f++) {
                val_off[g][f][s] = off;
                val_len[g][f][s] = QT_BLOCK_VALUE_MIN_BYTES + 8 * (uint32_t)(qt_test_rand(rng) % 4);
                off += val_len[g][f][s];
            }
        }
    memset(B.file + QT_SEG_HEADER_SIZE, 0xBB, off - QT_SEG_HEADER_SIZE);
    size_t tu = 0;
    B.n_keys = 0;
    for (uint32_t g = 0; g < groups; g++) {
        uint64_t gid = qt_test_rand(rng);
        for (uint32_t f = 0; f < fields; f++) {
            char *k = B.text + tu;
            int kl = snprintf(k, 64, "air,district=xihu,station=a%04u f%u", g, f);
            tu += (size_t)kl;
            B.keys[B.n_keys++] = (struct qt_seg_key){.series_id = qt_test_rand(rng),
                                                     .group_id = gid,
                                                     .vtype = (enum qt_vtype)(1 + (g + f) % 4),
                                                     .key = (const uint8_t *)k,
                                                     .key_len = (uint32_t)kl,
                                                     .group_len = (uint32_t)kl - 3};
        }
    }
    qsort(B.keys, B.n_keys, sizeof(B.keys[0]), cmp_key);
    B.n_entries = 0;
    for (uint32_t k = 0; k < B.n_keys; k++) {
        const struct qt_seg_key *key = &B.keys[k];
        uint32_t g = (uint32_t)(strtoul((const char *)key->key + 27, NULL, 10));
        uint32_t f = (uint32_t)(key->key[key->group_len + 2] - '0');
        for (uint32_t s = 0; s < slices; s++) {
            struct qt_seg_entry *e = &B.entries[B.n_entries++];
            memset(e, 0, sizeof(*e));
            e->series_id = key->series_id;
            e->group_id = key->group_id;
            e->ts_block_off = ts_off[g][s];
            e->ts_block_len = ts_len[g][s];
            e->value_block_off = val_off[g][f][s];
            e->value_block_len = val_len[g][f][s];
            e->n_rows = rows[g][s];
            e->n_values =
                qt_test_rand(rng) % 2 ? e->n_rows : 1 + (uint32_t)(qt_test_rand(rng) % e->n_rows);
            e->ts_min = shard_start + (int64_t)s * 2000 + (int64_t)(qt_test_rand(rng) % 10);
            e->ts_max = e->ts_min + e->n_values - 1 + (int64_t)(qt_test_rand(rng) % 500);
            e->vtype = key->vtype;
            make_stats(rng, e->vtype, e->n_values, &e->stats);
            e->flags = (e->n_values < e->n_rows ? QT_BLOCK_F_PRESENCE : 0) |
                       (e->stats.sum_overflow ? QT_BLOCK_F_SUM_OVERFLOW : 0) |
                       (qt_test_rand(rng) % 2 ? QT_BLOCK_F_LZ4 : 0);
        }
    }
    B.n_groups = groups;
    return off;
}

/* Build a whole segment file into B with the streaming writer. */
static int
build(uint64_t seed, uint32_t groups, uint32_t fields, uint32_t slices)
{
    static uint8_t chunk[QT_SEG_CHUNK_MAX_BYTES];
    static struct qt_seg_chunk_ref refs[MAX_ENTRIES / QT_SEG_CHUNK_ENTRIES + 1];
    uint64_t rng = seed;
    B.hdr = (struct qt_seg_header){.shard_start_ns = shard_start,
                                   .shard_duration_ns = 86400000000000ll,
                                   .segment_seq = 42,
                                   .created_ns = 1};
    int rc = qt_seg_header_encode(&B.hdr, B.file, FILE_CAP);
    uint64_t keytab_off = build_blocks_and_entries(&rng, groups, fields, slices);
    struct qt_seg_footer f = {.segment_seq = 42, .keytab_off = keytab_off, .n_groups = groups};
    size_t len = 0;
    if (rc == 0)
        rc = qt_seg_keytab_encode(B.keys, B.n_keys, B.file + keytab_off, FILE_CAP - keytab_off,
                                  &len, &f.keytab_checksum);
    f.keytab_len = len;
    struct qt_seg_index_writer w;
    qt_seg_index_writer_init(&w, keytab_off, keytab_off + len, chunk, sizeof(chunk), refs,
                             MAX_ENTRIES / QT_SEG_CHUNK_ENTRIES + 1);
    uint64_t off = 0;
    for (uint32_t i = 0; rc == 0 && i < B.n_entries; i++) {
        if (qt_seg_index_chunk_full(&w)) {
            rc = qt_seg_index_chunk_finish(&w, &off, &len);
            memcpy(B.file + off, chunk, len);
        }
        if (rc == 0)
            rc = qt_seg_index_add(&w, &B.entries[i]);
    }
    if (rc == 0)
        rc = qt_seg_index_chunk_finish(&w, &off, &len);
    memcpy(B.file + off, chunk, len);
    if (rc == 0)
        rc = qt_seg_index_finish(&w, B.file + w.next_off, FILE_CAP - w.next_off, &off, &len, &f);
    B.size = off + len + QT_SEG_FOOTER_SIZE;
    if (rc == 0)
        rc = qt_seg_footer_encode(&f, B.size, B.file + off + len, QT_SEG_FOOTER_SIZE);
    return rc;
}

/* Read and check everything but the blocks, as `qtdb verify` would. */
static int
read_all(const uint8_t *file, size_t size)
{
    if (size < QT_SEG_FOOTER_SIZE)
        return QT_ETRUNC;
    struct qt_seg_header h;
    struct qt_seg_footer *f = &r_footer;
    int rc = qt_seg_footer_decode(file + size - QT_SEG_FOOTER_SIZE, QT_SEG_FOOTER_SIZE, size, f);
    if (rc == 0)
        rc = qt_seg_header_decode(file, size, &h);
    if (rc == 0)
        rc = qt_seg_check_header_footer(&h, f);
    if (rc == 0)
        rc = qt_seg_metaindex_decode(file + qt_seg_metaindex_off(f), f->metaindex_len, f, r_refs,
                                     MAX_ENTRIES / QT_SEG_CHUNK_ENTRIES + 1);
    if (rc == 0 && f->n_blocks > MAX_ENTRIES)
        return QT_ELIMIT;
    uint32_t at = 0;
    for (uint32_t c = 0; rc == 0 && c < f->n_chunks; c++) {
        const struct qt_seg_chunk_ref *r = &r_refs[c];
        rc = qt_seg_chunk_decode(file + r->offset, qt_seg_chunk_bytes(r->count), f, r,
                                 r_entries + at, MAX_ENTRIES - at);
        if (rc == 0 && at > 0)
            rc = qt_seg_entry_check_order(&r_entries[at - 1], &r_entries[at]);
        at += r->count;
    }
    if (rc == 0)
        rc = qt_seg_keytab_decode(file + f->keytab_off, f->keytab_len, f, r_keys,
                                  MAX_GROUPS * MAX_FIELDS);
    uint64_t points = 0;
    for (uint32_t i = 0; rc == 0 && i < at; i++) {
        uint32_t k = qt_seg_keytab_find(r_keys, f->n_series, r_entries[i].series_id);
        if (k == f->n_series || r_keys[k].group_id != r_entries[i].group_id ||
            r_keys[k].vtype != r_entries[i].vtype)
            rc = QT_ECORRUPT;
        points += r_entries[i].n_values;
    }
    if (rc == 0 && points != f->n_points)
        rc = QT_ECORRUPT;
    return rc;
}

static bool
entry_equal(const struct qt_seg_entry *a, const struct qt_seg_entry *b)
{
    return a->series_id == b->series_id && a->group_id == b->group_id &&
           a->ts_block_off == b->ts_block_off && a->ts_block_len == b->ts_block_len &&
           a->value_block_off == b->value_block_off && a->value_block_len == b->value_block_len &&
           a->n_rows == b->n_rows && a->n_values == b->n_values && a->ts_min == b->ts_min &&
           a->ts_max == b->ts_max && a->vtype == b->vtype && a->flags == b->flags &&
           qt_stats_equal(&a->stats, &b->stats);
}

TEST(roundtrip_sizes)
{
    /* entries = groups * fields * slices: 1, 255 (+/-), 256, 257, 512, 1024 */
    const uint32_t cfg[][3] = {{1, 1, 1},  {51, 5 - 4, 5}, {64, 4, 1}, {1, 1, 8},
                               {64, 4, 2}, {37, 3, 7},     {64, 4, 4}, {3, 4, 8}};
    for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
        CHECK_OK(build(qt_test_seed() + c, cfg[c][0], cfg[c][1], cfg[c][2]));
        CHECK_OK(read_all(B.file, B.size));
        CHECK_EQ(r_footer.n_blocks, B.n_entries);
        CHECK_EQ(r_footer.n_series, B.n_keys);
        CHECK_EQ(r_footer.n_groups, B.n_groups);
        for (uint32_t i = 0; i < B.n_entries; i++)
            CHECK(entry_equal(&B.entries[i], &r_entries[i]));
        for (uint32_t k = 0; k < B.n_keys; k++) {
            CHECK(r_keys[k].series_id == B.keys[k].series_id);
            CHECK(r_keys[k].key_len == B.keys[k].key_len);
            CHECK(r_keys[k].group_len == B.keys[k].group_len);
            CHECK(memcmp(r_keys[k].key, B.keys[k].key, r_keys[k].key_len) == 0);
            CHECK(r_keys[k].key > B.file); /* zero copy */
        }
        /* Standalone chunk encoder reproduces the writer's bytes. */
        static uint8_t re[QT_SEG_CHUNK_MAX_BYTES];
        size_t len;
        CHECK_OK(qt_seg_chunk_encode(r_entries, r_refs[0].count, r_footer.keytab_off, re,
                                     sizeof(re), &len));
        CHECK(memcmp(re, B.file + r_refs[0].offset, len) == 0);
    }
}

TEST(lookups_match_linear_search)
{
    CHECK_OK(build(qt_test_seed() ^ 0x100c, 64, 4, 3)); /* 768 entries, 3 chunks */
    CHECK_OK(read_all(B.file, B.size));
    uint64_t rng = qt_test_seed();
    for (int q = 0; q < 2000; q++) {
        uint64_t id = q % 2 ? B.keys[qt_test_rand(&rng) % B.n_keys].series_id : qt_test_rand(&rng);
        uint32_t k = qt_seg_keytab_find(r_keys, B.n_keys, id), lk = B.n_keys;
        for (uint32_t i = 0; i < B.n_keys; i++)
            if (r_keys[i].series_id == id)
                lk = i;
        CHECK_EQ(k, lk);
        uint32_t c = qt_seg_metaindex_find(r_refs, r_footer.n_chunks, id), lc = r_footer.n_chunks;
        for (uint32_t i = r_footer.n_chunks; i-- > 0;)
            if (r_refs[i].last_series >= id)
                lc = i;
        CHECK_EQ(c, lc);
        uint32_t e = qt_seg_chunk_find(r_entries, B.n_entries, id), le = B.n_entries;
        for (uint32_t i = B.n_entries; i-- > 0;)
            if (r_entries[i].series_id >= id)
                le = i;
        CHECK_EQ(e, le);
        if (q % 2) { /* a present series: its chunk range covers all its entries */
            CHECK(c < r_footer.n_chunks && r_refs[c].first_series <= id);
        }
    }
}

TEST(every_truncation_detected)
{
    CHECK_OK(build(qt_test_seed() ^ 0x7, 2, 2, 1));
    CHECK_OK(read_all(B.file, B.size));
    for (size_t cut = 0; cut < B.size; cut++)
        CHECK(read_all(B.file, cut) != 0);
}

TEST(every_bit_flip_outside_blocks_detected)
{
    CHECK_OK(build(qt_test_seed() ^ 0xf1, 2, 2, 1));
    CHECK_OK(read_all(B.file, B.size));
    uint64_t blocks_end = r_footer.keytab_off;
    for (size_t bit = 0; bit < B.size * 8; bit++) {
        size_t at = bit / 8;
        if (at >= QT_SEG_HEADER_SIZE && at < blocks_end)
            continue; /* filler: real blocks carry their own checksums */
        B.file[at] ^= (uint8_t)(1u << (bit % 8));
        int rc = read_all(B.file, B.size);
        B.file[at] ^= (uint8_t)(1u << (bit % 8));
        if (rc == 0) {
            qt_test_fail_at(__FILE__, __LINE__, "flip of bit %zu undetected", bit);
            return;
        }
    }
}

static uint8_t *
footer_bytes(void)
{
    return B.file + B.size - QT_SEG_FOOTER_SIZE;
}

static void
reseal_footer(void)
{
    qt_hash_store(footer_bytes() + 120, qt_hash64(footer_bytes(), 120));
}

/* Change a footer field, reseal, expect `want` from the footer decoder. */
static int
footer_with(size_t off, uint64_t v, int width)
{
    static uint8_t save[QT_SEG_FOOTER_SIZE];
    memcpy(save, footer_bytes(), sizeof(save));
    if (width == 8)
        qt_store_le64(footer_bytes() + off, v);
    else
        qt_store_le32(footer_bytes() + off, (uint32_t)v);
    reseal_footer();
    struct qt_seg_footer f;
    int rc = qt_seg_footer_decode(footer_bytes(), QT_SEG_FOOTER_SIZE, B.size, &f);
    memcpy(footer_bytes(), save, sizeof(save));
    return rc;
}

TEST(hostile_footers)
{
    CHECK_OK(build(qt_test_seed() ^ 0x40, 10, 3, 2));
    CHECK_OK(read_all(B.file, B.size));
    struct qt_seg_footer f = r_footer;
    CHECK_RC(footer_with(8, QT_FORMAT_VERSION + 1, 4), QT_EVERSION);
    CHECK_RC(footer_with(8, 0, 4), QT_ECORRUPT);
    CHECK_RC(footer_with(0, 0, 8), QT_EMAGIC);
    CHECK_RC(footer_with(12, 1, 4), QT_ECORRUPT);                /* flags */
    CHECK_RC(footer_with(76, 1, 4), QT_ECORRUPT);                /* reserved */
    CHECK_RC(footer_with(24, f.keytab_off + 8, 8), QT_ECORRUPT); /* key table overlaps index */
    CHECK_RC(footer_with(24, f.keytab_off + 4, 8), QT_ECORRUPT); /* misaligned */
    CHECK_RC(footer_with(24, UINT64_MAX - 7, 8), QT_ECORRUPT);   /* offset past end */
    CHECK_RC(footer_with(32, UINT64_MAX - 7, 8), QT_ECORRUPT);   /* huge length */
    CHECK_RC(footer_with(32, f.keytab_len - 8, 8), QT_ECORRUPT); /* gap before index */
    CHECK_RC(footer_with(40, f.index_off - 8, 8), QT_ECORRUPT);
    CHECK_RC(footer_with(48, f.index_len + 8, 8), QT_ECORRUPT);
    CHECK_RC(footer_with(56, f.metaindex_len + 32, 4), QT_ECORRUPT);
    CHECK_RC(footer_with(60, f.n_chunks + 1, 4), QT_ECORRUPT);
    CHECK_RC(footer_with(64, 0, 4), QT_ECORRUPT);              /* n_groups 0 */
    CHECK_RC(footer_with(64, f.n_series + 1, 4), QT_ECORRUPT); /* groups > series */
    CHECK_RC(footer_with(68, f.n_blocks + 1, 4), QT_ECORRUPT); /* series > blocks */
    CHECK_RC(footer_with(72, UINT32_MAX, 4), QT_ECORRUPT);     /* above BLOCKS_MAX */
    CHECK_RC(footer_with(72, QT_SEGMENT_BLOCKS_MAX + 1, 4), QT_ECORRUPT);
    CHECK_RC(footer_with(72, f.n_blocks + 1, 4), QT_ECORRUPT); /* index length mismatch */
    CHECK_RC(footer_with(80, 0, 8), QT_ECORRUPT);              /* fewer points than blocks */
    CHECK_RC(footer_with(80, UINT64_MAX, 8), QT_ECORRUPT);
    CHECK_RC(footer_with(88, (uint64_t)INT64_MAX, 8), QT_ECORRUPT); /* ts_min > ts_max */
    /* Footer that claims a file larger or smaller than it is. */
    struct qt_seg_footer g;
    CHECK_RC(qt_seg_footer_decode(footer_bytes(), QT_SEG_FOOTER_SIZE, B.size + 8, &g), QT_ECORRUPT);
    CHECK_RC(qt_seg_footer_decode(footer_bytes(), QT_SEG_FOOTER_SIZE, 100, &g), QT_ETRUNC);
    CHECK_RC(qt_seg_footer_decode(footer_bytes(), QT_SEG_FOOTER_SIZE - 1, B.size, &g), QT_ETRUNC);
    /* Unchanged footer still good. */
    CHECK_OK(footer_with(16, 42, 8));
    /* Encoder refuses what the decoder would reject. */
    uint8_t out[QT_SEG_FOOTER_SIZE];
    g = f;
    g.n_series = g.n_blocks + 1;
    CHECK_RC(qt_seg_footer_encode(&g, B.size, out, sizeof(out)), QT_EINVAL);
    g = f;
    g.index_len += 8;
    CHECK_RC(qt_seg_footer_encode(&g, B.size, out, sizeof(out)), QT_EINVAL);
    CHECK_RC(qt_seg_footer_encode(&f, B.size, out, sizeof(out) - 1), QT_ENOSPACE);
    CHECK_OK(qt_seg_footer_encode(&f, B.size, out, sizeof(out)));
    CHECK(memcmp(out, footer_bytes(), QT_SEG_FOOTER_SIZE) == 0);
}

TEST(header_and_cross_checks)
{
    uint8_t buf[QT_SEG_HEADER_SIZE];
    struct qt_seg_header h = {.shard_start_ns = -5, .shard_duration_ns = 10, .segment_seq = 9};
    struct qt_seg_header d;
    CHECK_OK(qt_seg_header_encode(&h, buf, sizeof(buf)));
    CHECK(memcmp(buf, "QTSEG\r\n\x1a", 8) == 0);
    CHECK_OK(qt_seg_header_decode(buf, sizeof(buf), &d));
    CHECK(d.shard_start_ns == -5 && d.shard_duration_ns == 10 && d.segment_seq == 9);
    CHECK_EQ(d.version, QT_FORMAT_VERSION);
    for (size_t cut = 0; cut < sizeof(buf); cut++)
        CHECK_RC(qt_seg_header_decode(buf, cut, &d), QT_ETRUNC);
    for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK(qt_seg_header_decode(buf, sizeof(buf), &d) != 0);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    h.shard_duration_ns = 0;
    CHECK_RC(qt_seg_header_encode(&h, buf, sizeof(buf)), QT_EINVAL);
    h.shard_duration_ns = 2;
    h.shard_start_ns = INT64_MAX - 1;
    CHECK_RC(qt_seg_header_encode(&h, buf, sizeof(buf)), QT_EINVAL);
    CHECK_RC(qt_seg_header_encode(&h, buf, 63), QT_ENOSPACE);
    /* Header/footer agreement. */
    CHECK_OK(build(qt_test_seed() ^ 0x99, 2, 1, 2));
    CHECK_OK(read_all(B.file, B.size));
    struct qt_seg_header bh = B.hdr;
    bh.version = QT_FORMAT_VERSION;
    CHECK_OK(qt_seg_check_header_footer(&bh, &r_footer));
    bh.segment_seq++;
    CHECK_RC(qt_seg_check_header_footer(&bh, &r_footer), QT_ECORRUPT);
    bh = B.hdr, bh.version = QT_FORMAT_VERSION;
    bh.shard_start_ns = r_footer.ts_min + 1;
    CHECK_RC(qt_seg_check_header_footer(&bh, &r_footer), QT_ECORRUPT);
    bh = B.hdr, bh.version = QT_FORMAT_VERSION;
    bh.shard_duration_ns = r_footer.ts_max - bh.shard_start_ns; /* ts_max at the end: excluded */
    CHECK_RC(qt_seg_check_header_footer(&bh, &r_footer), QT_ECORRUPT);
    bh.shard_duration_ns++;
    CHECK_OK(qt_seg_check_header_footer(&bh, &r_footer));
}

/* Patch entry i of chunk 0 via fn, reseal the chunk, decode it. */
static int
chunk_with(uint32_t i, void (*fn)(uint8_t *entry, uint8_t *next))
{
    static uint8_t save[QT_SEG_CHUNK_MAX_BYTES];
    const struct qt_seg_chunk_ref *r = &r_refs[0];
    uint8_t *c = B.file + r->offset;
    size_t body = (size_t)r->count * QT_SEG_ENTRY_SIZE;
    memcpy(save, c, body + 8);
    fn(c + (size_t)i * QT_SEG_ENTRY_SIZE, c + (size_t)(i + 1) * QT_SEG_ENTRY_SIZE);
    qt_hash_store(c + body, qt_hash64(c, body));
    int rc = qt_seg_chunk_decode(c, body + 8, &r_footer, r, r_entries, MAX_ENTRIES);
    memcpy(c, save, body + 8);
    return rc;
}

static void
p_vtype(uint8_t *e, uint8_t *n)
{
    (void)n;
    e[64] = 9;
}
static void
p_reserved(uint8_t *e, uint8_t *n)
{
    (void)n;
    e[65] = 1;
}
static void
p_reserved2(uint8_t *e, uint8_t *n)
{
    (void)n;
    e[70] = 1;
}
static void
p_nvalues(uint8_t *e, uint8_t *n)
{
    (void)n;
    qt_store_le32(e + 44, qt_load_le32(e + 40) + 1);
}
static void
p_nrows0(uint8_t *e, uint8_t *n)
{
    (void)n;
    qt_store_le32(e + 40, 0);
}
static void
p_nrows_big(uint8_t *e, uint8_t *n)
{
    (void)n;
    qt_store_le32(e + 40, QT_BLOCK_POINTS_MAX + 1);
}
static void
p_presence(uint8_t *e, uint8_t *n)
{
    (void)n;
    e[66] ^= QT_BLOCK_F_PRESENCE;
}
static void
p_flags(uint8_t *e, uint8_t *n)
{
    (void)n;
    e[67] = 0x80;
}
static void
p_off_past(uint8_t *e, uint8_t *n)
{
    (void)n;
    qt_store_le64(e + 24, r_footer.keytab_off);
}
static void
p_off_huge(uint8_t *e, uint8_t *n)
{
    (void)n;
    qt_store_le64(e + 16, UINT64_MAX - 7);
}
static void
p_off_header(uint8_t *e, uint8_t *n)
{
    (void)n;
    qt_store_le64(e + 16, 0);
}
static void
p_off_align(uint8_t *e, uint8_t *n)
{
    (void)n;
    qt_store_le64(e + 16, qt_load_le64(e + 16) + 4);
}
static void
p_len_small(uint8_t *e, uint8_t *n)
{
    (void)n;
    qt_store_le32(e + 36, 8);
}
static void
p_len_huge(uint8_t *e, uint8_t *n)
{
    (void)n;
    qt_store_le32(e + 36, UINT32_MAX & ~7u);
}
static void
p_overlap(uint8_t *e, uint8_t *n)
{
    (void)n;
    qt_store_le64(e + 24, qt_load_le64(e + 16));
}
static void
p_ts(uint8_t *e, uint8_t *n)
{
    (void)n;
    qt_store_le64(e + 48, qt_load_le64(e + 56) + 1);
}
static void
p_stats(uint8_t *e, uint8_t *n)
{
    (void)n;
    e[72 + 7] ^= 0x40;
    e[80 + 7] ^= 0x40;
    e[72 + 6] ^= 0x10;
}
static void
p_swap(uint8_t *e, uint8_t *n)
{
    uint8_t t[QT_SEG_ENTRY_SIZE];
    memcpy(t, e, sizeof(t));
    memcpy(e, n, sizeof(t));
    memcpy(n, t, sizeof(t));
}
static void
p_same_series(uint8_t *e, uint8_t *n)
{
    memcpy(n, e, 8);
}

TEST(hostile_chunk_entries)
{
    CHECK_OK(build(qt_test_seed() ^ 0xc4, 8, 2, 2)); /* 32 entries, one chunk */
    CHECK_OK(read_all(B.file, B.size));
    void (*bad[])(uint8_t *, uint8_t *) = {
        p_vtype,     p_reserved, p_reserved2, p_nvalues,  p_nrows0,     p_nrows_big,
        p_presence,  p_flags,    p_off_past,  p_off_huge, p_off_header, p_off_align,
        p_len_small, p_len_huge, p_overlap,   p_ts,       p_swap,       p_same_series};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        int rc = chunk_with(1, bad[k]); /* entries 1 and 2: different series */
        if (rc != QT_ECORRUPT) {
            qt_test_fail_at(__FILE__, __LINE__, "patch %zu: rc %d", k, rc);
            return;
        }
    }
    /* statistics: depends on the vtype; a float/int gets min > max, a bool
     * out-of-range slots, a string non-zero slots. */
    CHECK_RC(chunk_with(1, p_stats), QT_ECORRUPT);
    CHECK(strncmp(qt_err_detail(), "stats:", 6) == 0);
    /* Checksum mismatch and bad lengths. */
    const struct qt_seg_chunk_ref *r = &r_refs[0];
    uint8_t *c = B.file + r->offset;
    size_t n = qt_seg_chunk_bytes(r->count);
    c[5] ^= 1;
    CHECK_RC(qt_seg_chunk_decode(c, n, &r_footer, r, r_entries, MAX_ENTRIES), QT_ECHECKSUM);
    c[5] ^= 1;
    CHECK_RC(qt_seg_chunk_decode(c, n - 1, &r_footer, r, r_entries, MAX_ENTRIES), QT_ETRUNC);
    CHECK_RC(qt_seg_chunk_decode(c, n + 1, &r_footer, r, r_entries, MAX_ENTRIES), QT_ECORRUPT);
    CHECK_RC(qt_seg_chunk_decode(c, n, &r_footer, r, r_entries, r->count - 1), QT_ENOSPACE);
    struct qt_seg_chunk_ref wrong = *r;
    wrong.first_series++;
    CHECK_RC(qt_seg_chunk_decode(c, n, &r_footer, &wrong, r_entries, MAX_ENTRIES), QT_ECORRUPT);
    CHECK_OK(qt_seg_chunk_decode(c, n, &r_footer, r, r_entries, MAX_ENTRIES));
}

/* Patch the metaindex, recompute its checksum into the footer, decode. */
static int
meta_with(uint32_t chunk, size_t field, uint64_t v, int width)
{
    static uint8_t save[4096], fsave[QT_SEG_FOOTER_SIZE];
    uint8_t *m = B.file + qt_seg_metaindex_off(&r_footer);
    memcpy(save, m, r_footer.metaindex_len);
    memcpy(fsave, footer_bytes(), QT_SEG_FOOTER_SIZE);
    uint8_t *p = m + chunk * QT_SEG_METAINDEX_ENTRY_SIZE + field;
    if (width == 8)
        qt_store_le64(p, v);
    else
        qt_store_le32(p, (uint32_t)v);
    qt_hash_store(footer_bytes() + 112, qt_hash64(m, r_footer.metaindex_len));
    reseal_footer();
    struct qt_seg_footer f;
    int rc = qt_seg_footer_decode(footer_bytes(), QT_SEG_FOOTER_SIZE, B.size, &f);
    if (rc == 0)
        rc = qt_seg_metaindex_decode(m, f.metaindex_len, &f, r_refs, MAX_ENTRIES);
    memcpy(m, save, r_footer.metaindex_len);
    memcpy(footer_bytes(), fsave, QT_SEG_FOOTER_SIZE);
    return rc;
}

TEST(hostile_metaindex)
{
    CHECK_OK(build(qt_test_seed() ^ 0x3e, 50, 4, 3)); /* 600 entries: chunks 256, 256, 88 */
    CHECK_OK(read_all(B.file, B.size));
    CHECK_EQ(r_footer.n_chunks, 3);
    struct qt_seg_chunk_ref r1 = r_refs[1];
    CHECK_OK(meta_with(1, 16, r1.offset, 8));
    CHECK_RC(meta_with(1, 16, r1.offset + 8, 8), QT_ECORRUPT); /* offset shifted */
    CHECK_RC(meta_with(1, 16, UINT64_MAX, 8), QT_ECORRUPT);
    CHECK_RC(meta_with(1, 24, 255, 4), QT_ECORRUPT); /* not full */
    CHECK_RC(meta_with(2, 24, 89, 4), QT_ECORRUPT);  /* last count */
    CHECK_RC(meta_with(2, 24, 0, 4), QT_ECORRUPT);
    CHECK_RC(meta_with(1, 28, 1, 4), QT_ECORRUPT);                        /* reserved */
    CHECK_RC(meta_with(1, 0, r1.last_series + 1, 8), QT_ECORRUPT);        /* first > last */
    CHECK_RC(meta_with(1, 0, r_refs[0].last_series - 1, 8), QT_ECORRUPT); /* descending */
    /* Lengths and checksum. */
    uint8_t *m = B.file + qt_seg_metaindex_off(&r_footer);
    CHECK_RC(qt_seg_metaindex_decode(m, r_footer.metaindex_len - 1, &r_footer, r_refs, 8),
             QT_ETRUNC);
    CHECK_RC(qt_seg_metaindex_decode(m, r_footer.metaindex_len, &r_footer, r_refs, 2), QT_ENOSPACE);
    m[3] ^= 1;
    CHECK_RC(qt_seg_metaindex_decode(m, r_footer.metaindex_len, &r_footer, r_refs, 8),
             QT_ECHECKSUM);
    m[3] ^= 1;
    /* Encoder refuses a broken sequence (re-read: failed decodes left junk). */
    CHECK_OK(read_all(B.file, B.size));
    struct qt_seg_chunk_ref refs[3] = {r_refs[0], r_refs[1], r_refs[2]};
    uint8_t out[96];
    size_t len;
    uint64_t cs;
    CHECK_OK(qt_seg_metaindex_encode(refs, 3, out, sizeof(out), &len, &cs));
    CHECK(memcmp(out, m, len) == 0 && cs == r_footer.metaindex_checksum);
    refs[1].count = 100;
    CHECK_RC(qt_seg_metaindex_encode(refs, 3, out, sizeof(out), &len, &cs), QT_EINVAL);
    CHECK_RC(qt_seg_metaindex_encode(refs, 0, out, sizeof(out), &len, &cs), QT_EINVAL);
}

/* Replace the key table bytes [at, at+n) and reseal; decode it. */
static int
keytab_patch(size_t at, const void *bytes, size_t n)
{
    static uint8_t save[64 * 1024], fsave[QT_SEG_FOOTER_SIZE];
    uint8_t *k = B.file + r_footer.keytab_off;
    memcpy(save, k, r_footer.keytab_len);
    memcpy(fsave, footer_bytes(), QT_SEG_FOOTER_SIZE);
    memcpy(k + at, bytes, n);
    qt_hash_store(footer_bytes() + 104, qt_hash64(k, r_footer.keytab_len));
    reseal_footer();
    struct qt_seg_footer f;
    int rc = qt_seg_footer_decode(footer_bytes(), QT_SEG_FOOTER_SIZE, B.size, &f);
    if (rc == 0)
        rc = qt_seg_keytab_decode(k, f.keytab_len, &f, r_keys, MAX_GROUPS * MAX_FIELDS);
    memcpy(k, save, r_footer.keytab_len);
    memcpy(footer_bytes(), fsave, QT_SEG_FOOTER_SIZE);
    return rc;
}

TEST(hostile_key_tables)
{
    CHECK_OK(build(qt_test_seed() ^ 0x6e, 4, 2, 1));
    CHECK_OK(read_all(B.file, B.size));
    const uint8_t zero8[8] = {0}, ff8[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const uint8_t vt9 = 9, len0 = 0, big[2] = {0xff, 0x7f}, sep = 'x';
    CHECK_RC(keytab_patch(0, ff8, 8), QT_ECORRUPT);    /* first id above the second */
    CHECK_RC(keytab_patch(16, &vt9, 1), QT_ECORRUPT);  /* vtype */
    CHECK_RC(keytab_patch(17, &len0, 1), QT_ECORRUPT); /* empty key */
    CHECK_RC(keytab_patch(18, &len0, 1), QT_ECORRUPT); /* empty group key */
    CHECK_RC(keytab_patch(17, big, 2), QT_ECORRUPT);   /* key length 16383 */
    CHECK_RC(keytab_patch(19 + B.keys[0].group_len, &sep, 1), QT_ECORRUPT); /* no space */
    /* Padding: last bytes of the table must be zero if they are padding. */
    size_t used = 0;
    for (uint32_t i = 0; i < B.n_keys; i++)
        used += 17 + 1 + 1 + B.keys[i].key_len;
    if (used < r_footer.keytab_len)
        CHECK_RC(keytab_patch(r_footer.keytab_len - 1, ff8, 1), QT_ECORRUPT);
    /* Checksum, lengths, caps. */
    uint8_t *k = B.file + r_footer.keytab_off;
    k[0] ^= 1;
    CHECK_RC(qt_seg_keytab_decode(k, r_footer.keytab_len, &r_footer, r_keys, 64), QT_ECHECKSUM);
    k[0] ^= 1;
    CHECK_RC(qt_seg_keytab_decode(k, r_footer.keytab_len - 8, &r_footer, r_keys, 64), QT_ETRUNC);
    CHECK_RC(qt_seg_keytab_decode(k, r_footer.keytab_len, &r_footer, r_keys, B.n_keys - 1),
             QT_ENOSPACE);
    (void)zero8;
    /* Encoder refuses invalid keys. */
    static uint8_t out[64 * 1024];
    size_t len;
    uint64_t cs;
    struct qt_seg_key keys[2] = {B.keys[0], B.keys[1]};
    CHECK_OK(qt_seg_keytab_encode(keys, 2, out, sizeof(out), &len, &cs));
    CHECK_EQ(len % 8, 0);
    CHECK_EQ(len, qt_seg_keytab_size(keys, 2));
    CHECK_RC(qt_seg_keytab_encode(keys, 2, out, len - 1, &len, &cs), QT_ENOSPACE);
    keys[1].series_id = keys[0].series_id;
    CHECK_RC(qt_seg_keytab_encode(keys, 2, out, sizeof(out), &len, &cs), QT_EINVAL);
    keys[1] = B.keys[1];
    keys[1].key_len = QT_SERIES_KEY_MAX + 1;
    CHECK_RC(qt_seg_keytab_encode(keys, 2, out, sizeof(out), &len, &cs), QT_EINVAL);
    keys[1] = B.keys[1];
    keys[1].group_len--; /* not at the space */
    CHECK_RC(qt_seg_keytab_encode(keys, 2, out, sizeof(out), &len, &cs), QT_EINVAL);
    keys[1].group_len = keys[1].key_len - 1; /* empty field */
    CHECK_RC(qt_seg_keytab_encode(keys, 2, out, sizeof(out), &len, &cs), QT_EINVAL);
    keys[1].group_len = 0;
    CHECK_RC(qt_seg_keytab_encode(keys, 2, out, sizeof(out), &len, &cs), QT_EINVAL);
    keys[1] = B.keys[1];
    keys[1].vtype = (enum qt_vtype)0;
    CHECK_RC(qt_seg_keytab_encode(keys, 2, out, sizeof(out), &len, &cs), QT_EINVAL);
    CHECK_RC(qt_seg_keytab_encode(keys, 0, out, sizeof(out), &len, &cs), QT_EINVAL);
}

TEST(writer_misuse)
{
    CHECK_OK(build(qt_test_seed() ^ 0x31, 4, 2, 2));
    CHECK_OK(read_all(B.file, B.size));
    static uint8_t chunk[QT_SEG_CHUNK_MAX_BYTES];
    struct qt_seg_chunk_ref refs[1];
    struct qt_seg_index_writer w;
    qt_seg_index_writer_init(&w, r_footer.keytab_off, r_footer.index_off, chunk, sizeof(chunk),
                             refs, 1);
    CHECK_OK(qt_seg_index_add(&w, &B.entries[1]));
    CHECK_RC(qt_seg_index_add(&w, &B.entries[0]), QT_EINVAL); /* out of order */
    struct qt_seg_entry e = B.entries[2];
    e.n_values = e.n_rows + 1;
    CHECK_RC(qt_seg_index_add(&w, &e), QT_EINVAL);
    e = B.entries[2];
    e.value_block_off = r_footer.keytab_off; /* outside the blocks region */
    CHECK_RC(qt_seg_index_add(&w, &e), QT_EINVAL);
    CHECK_OK(qt_seg_index_add(&w, &B.entries[2]));
    uint64_t off;
    size_t len;
    CHECK_OK(qt_seg_index_chunk_finish(&w, &off, &len));
    CHECK_EQ(off, r_footer.index_off);
    CHECK_EQ(len, 2 * QT_SEG_ENTRY_SIZE + 8);
    CHECK_RC(qt_seg_index_add(&w, &B.entries[3]), QT_ENOSPACE); /* refs array full */
    /* Standalone chunk encoder: count limits and order. */
    static uint8_t out[QT_SEG_CHUNK_MAX_BYTES];
    CHECK_RC(qt_seg_chunk_encode(B.entries, 0, r_footer.keytab_off, out, sizeof(out), &len),
             QT_EINVAL);
    struct qt_seg_entry two[2] = {B.entries[1], B.entries[0]};
    CHECK_RC(qt_seg_chunk_encode(two, 2, r_footer.keytab_off, out, sizeof(out), &len), QT_EINVAL);
    CHECK_RC(qt_seg_chunk_encode(B.entries, 2, r_footer.keytab_off, out, 2 * 112 + 7, &len),
             QT_ENOSPACE);
}

TEST(entry_against_block_headers)
{
    CHECK_OK(build(qt_test_seed() ^ 0xeb, 2, 2, 1));
    const struct qt_seg_entry *e = &B.entries[0];
    struct qt_block_info ts = {.kind = QT_BLOCK_TS,
                               .n_rows = e->n_rows,
                               .id = e->group_id,
                               .ts_min = e->ts_min - 1,
                               .ts_max = e->ts_max + 1,
                               .block_len = e->ts_block_len};
    struct qt_block_info val = {.kind = QT_BLOCK_VALUE,
                                .n_rows = e->n_rows,
                                .id = e->series_id,
                                .ts_min = e->ts_min,
                                .ts_max = e->ts_max,
                                .n_values = e->n_values,
                                .vtype = e->vtype,
                                .flags = e->flags,
                                .block_len = e->value_block_len,
                                .stats = e->stats};
    CHECK_OK(qt_seg_entry_check_blocks(e, &ts, &val));
    struct qt_block_info t2 = ts, v2 = val;
    t2.id++;
    CHECK_RC(qt_seg_entry_check_blocks(e, &t2, &val), QT_ECORRUPT);
    t2 = ts, t2.ts_min = e->ts_min + 1;
    CHECK_RC(qt_seg_entry_check_blocks(e, &t2, &val), QT_ECORRUPT);
    t2 = ts, t2.kind = QT_BLOCK_VALUE;
    CHECK_RC(qt_seg_entry_check_blocks(e, &t2, &val), QT_ECORRUPT);
    v2.stats.last.i ^= 1;
    CHECK_RC(qt_seg_entry_check_blocks(e, &ts, &v2), QT_ECORRUPT);
    v2 = val, v2.block_len += 8;
    CHECK_RC(qt_seg_entry_check_blocks(e, &ts, &v2), QT_ECORRUPT);
    v2 = val, v2.n_values--;
    CHECK_RC(qt_seg_entry_check_blocks(e, &ts, &v2), QT_ECORRUPT);
}
