/*
 * segment.h -- segment file layout: one immutable file per flush per shard
 * (DESIGN.md "Segment files").
 *
 *   [0, 64)                    file header
 *   [64, keytab_off)           blocks back to back (block.h; each a multiple
 *                              of 8 bytes, so every block starts 8-aligned)
 *   [keytab_off, index_off)    key table, zero-padded to a multiple of 8
 *   [index_off, footer)        index: chunk 0 .. chunk n-1, then metaindex
 *   [size - 128, size)         footer
 *
 * File header (64 bytes):
 *    0  8 magic            "QTSEG\r\n\x1a"
 *    8  4 version          QT_FORMAT_VERSION
 *   12  4 flags            0
 *   16  8 shard_start_ns   first ns of the shard's time range
 *   24  8 shard_duration   ns; the shard covers [start, start + duration)
 *   32  8 segment_seq      segment sequence number within the shard
 *   40  8 created_ns       wall clock at creation (informational)
 *   48  8 reserved         0
 *   56  8 checksum         XXH3-64 of bytes [0, 56), canonical
 *
 * Index entry (112 bytes), one per VALUE block, sorted by (series_id,
 * ts_min), a series' entries non-overlapping in time:
 *    0  8 series_id         8  8 group_id
 *   16  8 ts_block_off     24  8 value_block_off
 *   32  4 ts_block_len     36  4 value_block_len
 *   40  4 n_rows           44  4 n_values
 *   48  8 ts_min           56  8 ts_max        (present rows of the block)
 *   64  1 vtype            65  1 reserved 0
 *   66  2 flags (the VALUE block's QT_BLOCK_F_*)
 *   68  4 reserved 0       72 40 statistics (stats.h)
 * Chunk: up to QT_SEG_CHUNK_ENTRIES entries + 8-byte checksum (XXH3-64 of
 * the entries).  Every chunk but the last is full.
 *
 * Metaindex entry (32 bytes), one per chunk, after the last chunk:
 *    0  8 first_series     8  8 last_series
 *   16  8 offset (file offset of the chunk)
 *   24  4 count            28  4 reserved 0
 *
 * Key table entry, sorted by strictly ascending series_id:
 *   8 series_id | 8 group_id | 1 vtype | varint key_len | varint group_len |
 *   key bytes: the canonical series key "<group key> <field>" (serieskey.h),
 *   whose first group_len bytes are the canonical group key
 *
 * Footer (128 bytes):
 *    0  8 magic            "QTSEGEND"
 *    8  4 version           12  4 flags 0
 *   16  8 segment_seq       (== header's)
 *   24  8 keytab_off        32  8 keytab_len
 *   40  8 index_off         48  8 index_len (chunks + metaindex)
 *   56  4 metaindex_len     60  4 n_chunks
 *   64  4 n_groups          68  4 n_series
 *   72  4 n_blocks (index entries)   76  4 reserved 0
 *   80  8 n_points (sum of n_values)
 *   88  8 ts_min            96  8 ts_max
 *  104  8 keytab_checksum  112  8 metaindex_checksum
 *  120  8 checksum of footer bytes [0, 120)
 *
 * Pure functions over caller buffers.  Every decoder checks offsets and
 * lengths against the file size the caller passes.
 */
#ifndef QT_SEGMENT_H
#define QT_SEGMENT_H

#include "block.h"
#include "codec.h"
#include "qt_limits.h"
#include "stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QT_SEG_HEADER_SIZE          64u
#define QT_SEG_FOOTER_SIZE          128u
#define QT_SEG_ENTRY_SIZE           112u
#define QT_SEG_METAINDEX_ENTRY_SIZE 32u
/* Entries per index chunk: a reader fetches one chunk (28 KiB) to find a
 * series, and the metaindex stays at 1/256 of the index (32 bytes per
 * 256 blocks: 128 KiB for a million blocks).  On-disk constant. */
#define QT_SEG_CHUNK_ENTRIES   256u
#define QT_SEG_CHUNK_MAX_BYTES (QT_SEG_CHUNK_ENTRIES * QT_SEG_ENTRY_SIZE + 8u)
#define QT_SEG_CHUNKS_MAX                                                                          \
    ((QT_SEGMENT_BLOCKS_MAX + QT_SEG_CHUNK_ENTRIES - 1) / QT_SEG_CHUNK_ENTRIES)
/* Largest key table entry: ids, vtype, two 2-byte varints, key bytes. */
#define QT_SEG_KEY_MAX_BYTES (17u + 2u + 2u + QT_SERIES_KEY_MAX)

struct qt_seg_header {
    uint32_t version; /* decode: the file's; encode writes QT_FORMAT_VERSION */
    int64_t shard_start_ns;
    int64_t shard_duration_ns; /* > 0, start + duration <= INT64_MAX */
    uint64_t segment_seq;
    int64_t created_ns;
};

struct qt_seg_footer {
    uint32_t version; /* decode: the file's; encode writes QT_FORMAT_VERSION */
    uint64_t segment_seq;
    uint64_t keytab_off, keytab_len;
    uint64_t index_off, index_len;
    uint32_t metaindex_len, n_chunks;
    uint32_t n_groups, n_series, n_blocks;
    uint64_t n_points;
    int64_t ts_min, ts_max;
    uint64_t keytab_checksum, metaindex_checksum;
};

/* One index entry (one VALUE block and the TS block it aligns with). */
struct qt_seg_entry {
    uint64_t series_id, group_id;
    uint64_t ts_block_off, value_block_off;
    uint32_t ts_block_len, value_block_len;
    uint32_t n_rows, n_values;
    int64_t ts_min, ts_max;
    enum qt_vtype vtype;
    uint32_t flags; /* the VALUE block's flags */
    struct qt_stats stats;
};

struct qt_seg_chunk_ref {
    uint64_t first_series, last_series;
    uint64_t offset; /* file offset of the chunk */
    uint32_t count;  /* entries, 1..QT_SEG_CHUNK_ENTRIES */
};

/* One key table entry, as the catalog names a series (storage/catalog.h):
 * key[0..key_len) is the canonical series key, key[0..group_len) its group
 * key and key[group_len] the separating space.  Not NUL-terminated; after
 * decode it points into the key table buffer (zero copy).  The format layer
 * checks lengths and the separator; canonical form is the catalog's to
 * check (qt_serieskey_parse) when it rebuilds from segments. */
struct qt_seg_key {
    uint64_t series_id, group_id;
    enum qt_vtype vtype;
    const uint8_t *key;
    uint32_t key_len;   /* 3..QT_SERIES_KEY_MAX */
    uint32_t group_len; /* 1..key_len - 2 */
};

/* Bytes of a chunk holding `count` entries. */
static inline uint64_t
qt_seg_chunk_bytes(uint32_t count)
{
    return (uint64_t)count * QT_SEG_ENTRY_SIZE + 8u;
}

/* File offset of the metaindex of a decoded footer. */
static inline uint64_t
qt_seg_metaindex_off(const struct qt_seg_footer *f)
{
    return f->index_off + f->index_len - f->metaindex_len;
}

/* ---- file header ------------------------------------------------------ */

/* Write the 64-byte header to out[0..cap).  0, QT_EINVAL (duration <= 0 or
 * start + duration overflows), QT_ENOSPACE. */
int qt_seg_header_encode(const struct qt_seg_header *h, uint8_t *out, size_t cap);

/* Parse buf[0..len) (len >= 64): 0, QT_ETRUNC, QT_EMAGIC, QT_EVERSION,
 * QT_ECHECKSUM, QT_ECORRUPT. */
int qt_seg_header_decode(const uint8_t *buf, size_t len, struct qt_seg_header *h);

/* ---- footer ----------------------------------------------------------- */

/* Write the footer of a file of file_size bytes into out[0..cap).  The
 * footer must describe a well-formed layout for that size (the same rules
 * qt_seg_footer_decode applies): 0, QT_EINVAL with a detail, QT_ENOSPACE. */
int qt_seg_footer_encode(const struct qt_seg_footer *f, uint64_t file_size, uint8_t *out,
                         size_t cap);

/*
 * Parse the footer in buf[0..len) (len >= 128; the file's last 128 bytes)
 * of a file of file_size bytes.  Checks magic, version, checksum, that the
 * sections tile [64, file_size - 128) exactly in order (blocks, key table,
 * index), section sizes against the counts, counts within
 * QT_SEGMENT_BLOCKS_MAX and against each other.  0, QT_ETRUNC, QT_EMAGIC,
 * QT_EVERSION, QT_ECHECKSUM, QT_ECORRUPT.
 */
int qt_seg_footer_decode(const uint8_t *buf, size_t len, uint64_t file_size,
                         struct qt_seg_footer *f);

/* Cross-check header and footer: same sequence number and version, data
 * within the shard's time range.  0 or QT_ECORRUPT. */
int qt_seg_check_header_footer(const struct qt_seg_header *h, const struct qt_seg_footer *f);

/* ---- index ------------------------------------------------------------ */

/* Encode n entries (1..QT_SEG_CHUNK_ENTRIES, sorted, valid for a blocks
 * region ending at blocks_end) plus checksum into out[0..cap).  0,
 * QT_EINVAL (an entry is invalid or out of order), QT_ENOSPACE. */
int qt_seg_chunk_encode(const struct qt_seg_entry *entries, uint32_t n, uint64_t blocks_end,
                        uint8_t *out, size_t cap, size_t *out_len);

/*
 * Decode the chunk described by ref (from the validated metaindex of the
 * validated footer f) from buf[0..len) (len == qt_seg_chunk_bytes(count)).
 * Checks the checksum, every entry (vtype, counts, flags, statistics,
 * block offsets 8-aligned inside [64, keytab_off), TS and VALUE block
 * ranges disjoint), strict (series_id, ts_min) order, non-overlapping time
 * ranges and one group/vtype per series, and first/last series against
 * ref.  Writes ref->count entries to out[0..cap).  0, QT_ETRUNC,
 * QT_ECHECKSUM, QT_ECORRUPT, QT_ENOSPACE.
 */
int qt_seg_chunk_decode(const uint8_t *buf, size_t len, const struct qt_seg_footer *f,
                        const struct qt_seg_chunk_ref *ref, struct qt_seg_entry *out, uint32_t cap);

/* Encode n chunk refs into out[0..cap); *checksum receives the value for
 * the footer.  0, QT_EINVAL (refs not a valid sequence), QT_ENOSPACE. */
int qt_seg_metaindex_encode(const struct qt_seg_chunk_ref *refs, uint32_t n, uint8_t *out,
                            size_t cap, size_t *out_len, uint64_t *checksum);

/*
 * Decode the metaindex buf[0..len) (len == f->metaindex_len) of the
 * validated footer f into refs[0..cap) (cap >= f->n_chunks).  Checks the
 * checksum against the footer and that the chunks are laid out exactly
 * (offsets contiguous from index_off, full chunks but the last, counts
 * summing to n_blocks) with ascending series ranges.  0, QT_ETRUNC,
 * QT_ECHECKSUM, QT_ECORRUPT, QT_ENOSPACE.
 */
int qt_seg_metaindex_decode(const uint8_t *buf, size_t len, const struct qt_seg_footer *f,
                            struct qt_seg_chunk_ref *refs, uint32_t cap);

/* First chunk that may hold series_id (refs sorted): the smallest i with
 * refs[i].last_series >= series_id, or n if none.  Read chunks from i while
 * refs[i].first_series <= series_id. */
uint32_t qt_seg_metaindex_find(const struct qt_seg_chunk_ref *refs, uint32_t n, uint64_t series_id);

/* First entry with series_id >= the given one in a decoded chunk, or n. */
uint32_t qt_seg_chunk_find(const struct qt_seg_entry *entries, uint32_t n, uint64_t series_id);

/* Entries a then b are in index order: (series, ts_min) ascending, and for
 * one series the same group and vtype and b starting after a ends.  For
 * checks across chunk boundaries.  0 or QT_ECORRUPT. */
int qt_seg_entry_check_order(const struct qt_seg_entry *a, const struct qt_seg_entry *b);

/* Cross-check an index entry against the headers of the blocks it points
 * to (read with qt_block_read_header): ids, kinds, counts, flags, time
 * bounds, lengths, statistics.  0 or QT_ECORRUPT. */
int qt_seg_entry_check_blocks(const struct qt_seg_entry *e, const struct qt_block_info *ts,
                              const struct qt_block_info *val);

/* ---- key table -------------------------------------------------------- */

/* Exact encoded size of keys[0..n), padding included; 0 if a key is invalid. */
size_t qt_seg_keytab_size(const struct qt_seg_key *keys, uint32_t n);

/* Encode keys[0..n) (n >= 1, strictly ascending series_id) into out[0..cap);
 * *checksum receives the value for the footer.  0, QT_EINVAL, QT_ENOSPACE. */
int qt_seg_keytab_encode(const struct qt_seg_key *keys, uint32_t n, uint8_t *out, size_t cap,
                         size_t *out_len, uint64_t *checksum);

/* Decode the key table buf[0..len) (len == f->keytab_len) of the validated
 * footer f into out[0..cap) (cap >= f->n_series): checksum, exactly
 * n_series entries, ascending ids, known vtypes, key lengths and the
 * group/field separator, zero padding.  0, QT_ETRUNC, QT_ECHECKSUM,
 * QT_ECORRUPT, QT_ENOSPACE. */
int qt_seg_keytab_decode(const uint8_t *buf, size_t len, const struct qt_seg_footer *f,
                         struct qt_seg_key *out, uint32_t cap);

/* Index of series_id in decoded keys[0..n) (sorted), or n if absent. */
uint32_t qt_seg_keytab_find(const struct qt_seg_key *keys, uint32_t n, uint64_t series_id);

/* ---- streaming index writer -------------------------------------------- */

/*
 * Builds the index chunk by chunk in a caller buffer while tracking what the
 * footer needs.  Use:
 *   qt_seg_index_writer_init(&w, keytab_off, index_off, chunk, cap, refs, n);
 *   for each entry in index order:
 *       if (qt_seg_index_chunk_full(&w)) { finish; write w.chunk there }
 *       qt_seg_index_add(&w, &entry);
 *   finish the last chunk; qt_seg_index_finish(&w, out, cap, &len, &footer)
 *   writes the metaindex and fills the index fields of the footer.
 * All memory is the caller's: chunk >= QT_SEG_CHUNK_MAX_BYTES bytes, refs
 * >= ceil(blocks / QT_SEG_CHUNK_ENTRIES) elements.
 */
struct qt_seg_index_writer {
    uint64_t blocks_end; /* keytab_off: blocks lie in [64, blocks_end) */
    uint64_t index_off;  /* file offset of the first chunk */
    uint8_t *chunk;      /* caller buffer for the open chunk */
    size_t chunk_cap;
    struct qt_seg_chunk_ref *refs; /* caller array, one per chunk */
    uint32_t refs_cap;
    uint32_t chunk_n;  /* entries in the open chunk */
    uint32_t n_chunks; /* sealed chunks */
    uint32_t n_blocks, n_series;
    uint64_t n_points;
    uint64_t next_off; /* file offset of the open chunk */
    int64_t ts_min, ts_max;
    struct qt_seg_entry last; /* previous entry (valid when n_blocks > 0) */
};

void qt_seg_index_writer_init(struct qt_seg_index_writer *w, uint64_t blocks_end,
                              uint64_t index_off, uint8_t *chunk, size_t chunk_cap,
                              struct qt_seg_chunk_ref *refs, uint32_t refs_cap);

static inline bool
qt_seg_index_chunk_full(const struct qt_seg_index_writer *w)
{
    return w->chunk_n == QT_SEG_CHUNK_ENTRIES;
}

/* Append one entry to the open chunk (which must not be full).  0,
 * QT_EINVAL (invalid or out of order), QT_ELIMIT (QT_SEGMENT_BLOCKS_MAX),
 * QT_ENOSPACE (refs array full). */
int qt_seg_index_add(struct qt_seg_index_writer *w, const struct qt_seg_entry *e);

/* Seal the open chunk (>= 1 entry): appends its checksum.  The caller
 * writes w->chunk[0..*len) at file offset *off before the next add. */
int qt_seg_index_chunk_finish(struct qt_seg_index_writer *w, uint64_t *off, size_t *len);

/* After the last chunk is sealed: encode the metaindex into out[0..cap)
 * (the caller writes it at file offset *off) and fill footer's segment-wide
 * index fields (index_off/len, metaindex_len/checksum, n_chunks, n_blocks,
 * n_series, n_points, ts_min, ts_max).  The caller fills the rest. */
int qt_seg_index_finish(struct qt_seg_index_writer *w, uint8_t *out, size_t cap, uint64_t *off,
                        size_t *len, struct qt_seg_footer *footer);

#endif
