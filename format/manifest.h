/*
 * manifest.h -- the MANIFEST file: which segments are live, and how far the
 * WAL has been folded into them.
 *
 * The storage layer replaces the whole file atomically on every change
 * (write tmp, fsync, rename, fsync dir), so a reader sees either the old or
 * the new list, never a mix.  A segment file not listed here is garbage from
 * an interrupted flush or compaction and is removed at open.
 *
 * Layout (DESIGN.md "MANIFEST"), little-endian, version QT_FORMAT_VERSION:
 *   header 56 bytes | n_segments x 64-byte entries | 8-byte XXH3 (canonical)
 *   over everything before it.
 * Pure functions: no I/O, no allocation.
 */
#ifndef QT_MANIFEST_H
#define QT_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define QT_MANIFEST_MAGIC        0x464d5451u /* "QTMF" little-endian */
#define QT_MANIFEST_HEADER_BYTES 56u
#define QT_MANIFEST_ENTRY_BYTES  64u

struct qt_manifest_hdr {
    uint64_t generation;     /* +1 on every commit */
    uint64_t wal_checkpoint; /* every WAL record with seq <= this is in segments */
    uint64_t next_segment_seq;
    int64_t shard_duration_ns;
    uint32_t n_segments;
    uint32_t flags;         /* reserved, 0 */
    uint64_t catalog_bytes; /* catalog log bytes durable when this was written */
};

struct qt_manifest_seg {
    int64_t shard_start_ns; /* start of the time partition the segment belongs to */
    uint64_t seq;           /* global segment sequence, names the file */
    uint64_t file_bytes;
    uint64_t file_xxh3; /* XXH3-64 of the whole file, for verify and backup */
    int64_t ts_min;
    int64_t ts_max;
    uint64_t points;
    uint32_t series;
    uint32_t level; /* 0 = written by a flush; >0 = produced by compaction */
};

size_t qt_manifest_bound(uint32_t n_segments);

/* Encode hdr (its n_segments must equal n) and segs into out[0..cap).
 * Entries must be sorted by (shard_start_ns, seq) and seqs unique. */
int qt_manifest_encode(const struct qt_manifest_hdr *hdr, const struct qt_manifest_seg *segs,
                       uint32_t n, uint8_t *out, size_t cap, size_t *out_len);

/* Read only the header (validates magic, version, checksum, sizes) so a
 * caller can size the entry array.  */
int qt_manifest_decode_header(const uint8_t *buf, size_t len, struct qt_manifest_hdr *hdr);

/* Decode everything; cap is the capacity of segs.  Validates the checksum,
 * each entry (ts_min <= ts_max, entry inside its shard, sizes) and the sort
 * order, so the storage layer can trust what it gets. */
int qt_manifest_decode(const uint8_t *buf, size_t len, struct qt_manifest_hdr *hdr,
                       struct qt_manifest_seg *segs, uint32_t cap);

#endif
