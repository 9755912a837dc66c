/*
 * fuzz_segment.c -- segment footer, header, metaindex, index chunks and key
 * table from untrusted bytes.
 *
 * The first input byte picks what the rest is:
 *   0: a whole segment file: footer (last 128 bytes, file size = input),
 *      header, then every section the footer describes;
 *   1: one index chunk, with a synthetic footer/ref taken from the bytes;
 *   2: a key table of data[1] entries, synthetic footer;
 *   3: a metaindex, synthetic footer.
 * Oracles: whatever decodes re-encodes to the same bytes (fixed-width
 * structures: header, footer fields, metaindex, chunk entries) or to the
 * same values (key table, whose varints may be non-canonical).  Checksums
 * are bypassed so mutations reach the field checks.
 */
#include "format/qt_assert.h"
#include "format/qt_bytes.h"
#include "format/qt_hash.h"
#include "format/segment.h"

#include <stdint.h>
#include <string.h>

#define F_CHUNKS 64u
#define F_KEYS   4096u

static struct qt_seg_entry entries[QT_SEG_CHUNK_ENTRIES];
static struct qt_seg_chunk_ref refs[F_CHUNKS], refs2[F_CHUNKS];
static struct qt_seg_key keys[F_KEYS], keys2[F_KEYS];
static uint8_t out[F_KEYS * 64 + QT_SEG_CHUNK_MAX_BYTES];

static void
check_chunk(const uint8_t *buf, size_t len, const struct qt_seg_footer *f,
            const struct qt_seg_chunk_ref *r)
{
    if (qt_seg_chunk_decode(buf, len, f, r, entries, QT_SEG_CHUNK_ENTRIES) != 0)
        return;
    size_t n = 0;
    qt_assert(qt_seg_chunk_encode(entries, r->count, f->keytab_off, out, sizeof(out), &n) == 0);
    qt_assert(n == len && memcmp(out, buf, n - 8) == 0);
}

static void
check_keytab(const uint8_t *buf, size_t len, const struct qt_seg_footer *f)
{
    if (f->n_series > F_KEYS || qt_seg_keytab_decode(buf, len, f, keys, F_KEYS) != 0)
        return;
    size_t n = 0;
    uint64_t cs = 0;
    qt_assert(qt_seg_keytab_encode(keys, f->n_series, out, sizeof(out), &n, &cs) == 0);
    qt_assert(n <= len);
    struct qt_seg_footer f2 = *f;
    f2.keytab_len = n;
    f2.keytab_checksum = cs;
    qt_assert(qt_seg_keytab_decode(out, n, &f2, keys2, F_KEYS) == 0);
    for (uint32_t i = 0; i < f->n_series; i++) {
        qt_assert(keys[i].series_id == keys2[i].series_id && keys[i].vtype == keys2[i].vtype);
        qt_assert(keys[i].group_id == keys2[i].group_id);
        qt_assert(keys[i].key_len == keys2[i].key_len && keys[i].group_len == keys2[i].group_len);
        qt_assert(memcmp(keys[i].key, keys2[i].key, keys[i].key_len) == 0);
        qt_assert(keys[i].key[keys[i].group_len] == ' ');
    }
}

static void
check_metaindex(const uint8_t *buf, size_t len, const struct qt_seg_footer *f)
{
    if (f->n_chunks > F_CHUNKS || qt_seg_metaindex_decode(buf, len, f, refs, F_CHUNKS) != 0)
        return;
    size_t n = 0;
    uint64_t cs = 0;
    qt_assert(qt_seg_metaindex_encode(refs, f->n_chunks, out, sizeof(out), &n, &cs) == 0);
    qt_assert(n == len && memcmp(out, buf, n) == 0);
}

static void
whole_file(const uint8_t *d, size_t size)
{
    struct qt_seg_footer f;
    struct qt_seg_header h;
    uint8_t re[QT_SEG_FOOTER_SIZE];
    if (qt_seg_header_decode(d, size, &h) == 0) {
        qt_assert(qt_seg_header_encode(&h, re, sizeof(re)) == 0);
        qt_assert(memcmp(re, d, 56) == 0);
    }
    if (size < QT_SEG_FOOTER_SIZE)
        return;
    const uint8_t *fb = d + size - QT_SEG_FOOTER_SIZE;
    if (qt_seg_footer_decode(fb, QT_SEG_FOOTER_SIZE, size, &f) != 0)
        return;
    qt_assert(qt_seg_footer_encode(&f, size, re, sizeof(re)) == 0);
    qt_assert(memcmp(re, fb, 104) == 0); /* checksums may differ (verification bypassed) */
    check_keytab(d + f.keytab_off, f.keytab_len, &f);
    uint64_t moff = qt_seg_metaindex_off(&f);
    if (f.n_chunks > F_CHUNKS ||
        qt_seg_metaindex_decode(d + moff, f.metaindex_len, &f, refs2, F_CHUNKS) != 0)
        return;
    check_metaindex(d + moff, f.metaindex_len, &f);
    for (uint32_t c = 0; c < f.n_chunks; c++)
        check_chunk(d + refs2[c].offset, qt_seg_chunk_bytes(refs2[c].count), &f, &refs2[c]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qt_hash_skip_verify = true;
    if (size < 2)
        return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    struct qt_seg_footer f;
    memset(&f, 0, sizeof(f));
    switch (data[0] % 4) {
    case 0: whole_file(d, n); break;
    case 1: { /* chunk of up to 256 entries; blocks may lie below 1 GiB */
        struct qt_seg_chunk_ref r = {.count = (uint32_t)(n / QT_SEG_ENTRY_SIZE)};
        if (r.count == 0 || r.count > QT_SEG_CHUNK_ENTRIES || n < qt_seg_chunk_bytes(r.count))
            break;
        r.first_series = qt_load_le64(d);
        r.last_series = qt_load_le64(d + (size_t)(r.count - 1) * QT_SEG_ENTRY_SIZE);
        f.keytab_off = 1u << 30;
        check_chunk(d, qt_seg_chunk_bytes(r.count), &f, &r);
        break;
    }
    case 2:
        f.n_series = d[0];
        f.keytab_len = (n - 1) & ~(size_t)7;
        if (f.n_series > 0)
            check_keytab(d + 1, f.keytab_len, &f);
        break;
    case 3:
        f.n_chunks = (uint32_t)(n / QT_SEG_METAINDEX_ENTRY_SIZE);
        if (f.n_chunks == 0 || f.n_chunks > F_CHUNKS)
            break;
        f.metaindex_len = f.n_chunks * QT_SEG_METAINDEX_ENTRY_SIZE;
        f.index_off = qt_load_le64(d + 16);
        {
            uint32_t last = qt_load_le32(d + f.metaindex_len - 8);
            if (last == 0 || last > QT_SEG_CHUNK_ENTRIES)
                break;
            f.n_blocks = (f.n_chunks - 1) * QT_SEG_CHUNK_ENTRIES + last;
        }
        check_metaindex(d, f.metaindex_len, &f);
        break;
    }
    return 0;
}
