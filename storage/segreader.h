/*
 * segreader.h -- read access to one immutable segment file.
 *
 * Open validates the file header, the footer, their agreement, and the
 * metaindex, and checks the file against its MANIFEST entry (size).  Index
 * chunks are read on first use and cached for the reader's lifetime (the
 * index is ~112 bytes per block, about 0.1 bit per point).  Blocks are read
 * on demand and verified by checksum before they are decoded.
 *
 * A damaged segment is reported with its path and the file offset of the
 * damage (qt_err_detail() plus the log); the engine keeps serving the rest.
 *
 * Thread-safe after open: many scans may share one reader.
 */
#ifndef QT_SEGREADER_H
#define QT_SEGREADER_H

#include "format/codec.h"
#include "format/segment.h"
#include "storage/io.h"

#include <stdint.h>

struct qt_segr;

int qt_segr_open(struct qt_io *io, const char *path, uint64_t expect_bytes, struct qt_segr **out);
void qt_segr_close(struct qt_segr *r);

const struct qt_seg_footer *qt_segr_footer(const struct qt_segr *r);
const struct qt_seg_header *qt_segr_header(const struct qt_segr *r);
const char *qt_segr_path(const struct qt_segr *r);

/* A growable list of index entries owned by the caller (qt_seg_entries_free). */
struct qt_seg_entries {
    struct qt_seg_entry *v;
    uint32_t n;
    uint32_t cap;
};
void qt_seg_entries_free(struct qt_seg_entries *l);

/* Append the entries of series_id whose [ts_min, ts_max] meets [t0, t1),
 * in time order. */
int qt_segr_find(struct qt_segr *r, uint64_t series_id, int64_t t0, int64_t t1,
                 struct qt_seg_entries *out);

/* Call fn for every index entry in index order (verify, export, compaction).
 * Stops at the first non-zero return of fn and returns it. */
int qt_segr_foreach_entry(struct qt_segr *r, int (*fn)(void *arg, const struct qt_seg_entry *e),
                          void *arg);

/*
 * Decoded contents of one VALUE block (and its TS block).  Buffers are owned
 * by the struct (qt_blockbuf_init / _deinit) and reused across reads; a
 * decoded TS block is kept and reused when the next entry shares it.
 * After qt_segr_read(): ts[0..n_rows) the group's timestamps, present[] the
 * row presence, and the n_values present values in f64/i64/b/s by vtype.
 * Strings point into the block buffers: valid until the next read.
 */
struct qt_blockbuf {
    uint32_t n_rows;
    uint32_t n_values;
    enum qt_vtype vtype;
    int64_t *ts;
    uint8_t *present;
    union {
        double *f64;
        int64_t *i64;
        uint8_t *b;
        struct qt_str *s;
    } v;
    /* private */
    void *vals;
    uint8_t *raw_ts, *raw_val, *scratch;
    size_t raw_ts_cap, raw_val_cap, scratch_cap;
    const struct qt_segr *ts_owner;
    uint64_t ts_off;
};

int qt_blockbuf_init(struct qt_blockbuf *b);
void qt_blockbuf_deinit(struct qt_blockbuf *b);

/* Read, verify and decode the blocks of entry e of segment r into b. */
int qt_segr_read(struct qt_segr *r, const struct qt_seg_entry *e, struct qt_blockbuf *b);

/* Read the key table (for verify/export/catalog rebuild).  keys and the
 * buffer they point into are allocated; free with qt_segr_keys_free. */
int qt_segr_keys(struct qt_segr *r, struct qt_seg_key **keys, uint32_t *n, uint8_t **buf);
void qt_segr_keys_free(struct qt_seg_key *keys, uint8_t *buf);

#endif
