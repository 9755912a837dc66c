/*
 * segwriter.c -- segment file writer (see segwriter.h; layout in
 * format/segment.h and DESIGN.md "Segment files").
 *
 * Bytes are appended through a write buffer (SEGW_BUF_BYTES) that is
 * written with one pwrite when full; a streaming XXH3 state hashes every
 * byte in file order, so the whole-file checksum for the MANIFEST costs no
 * second read.  Index entries and keys are kept in memory until finish,
 * then sorted: one entry is ~150 bytes per block, so a flush of a million
 * series costs ~150 MB transiently (DESIGN.md notes this bound).
 */
#include "segwriter.h"

#include "format/block.h"
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_hash.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "format/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEGW_BUF_BYTES (4u << 20)

struct segw_key {
    uint64_t series_id;
    uint64_t group_id;
    enum qt_vtype vtype;
    uint32_t key_off, key_len; /* in the key arena */
    uint32_t group_len;
};

struct qt_segw {
    struct qt_io *io;
    char *path;
    int fd;
    int64_t shard_start, shard_dur;
    uint64_t seq;
    uint8_t *buf; /* write buffer */
    size_t buf_len;
    uint64_t buf_off; /* file offset of buf[0] */
    XXH3_state_t *hash;
    struct qt_seg_entry *entries;
    uint32_t n_entries, cap_entries;
    struct segw_key *keys;
    uint32_t n_keys, cap_keys;
    char *karena;
    size_t karena_len, karena_cap;
    uint32_t n_groups;
    uint64_t last_group; /* id of the group added last (continuations) */
    uint64_t points;
    /* block encoding scratch, grown on demand */
    uint8_t *out, *scratch;
    size_t out_cap, scratch_cap;
    void *vals; /* typed present values of one column block */
    size_t vals_cap;
    uint8_t pres[QT_BLOCK_POINTS_MAX];
};

static int
segw_grow(void **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap == 0 ? 4096 : *cap;
    while (ncap < need)
        ncap *= 2;
    void *q = qt_realloc(*p, ncap);
    if (q == NULL)
        return QT_ENOMEM;
    *p = q;
    *cap = ncap;
    return 0;
}

static int
segw_drain(struct qt_segw *w)
{
    if (w->buf_len == 0)
        return 0;
    int rc = qt_io_pwrite(w->io, w->fd, w->buf, w->buf_len, w->buf_off);
    if (rc != 0)
        return rc;
    w->buf_off += w->buf_len;
    w->buf_len = 0;
    return 0;
}

/* Append bytes to the file (through the buffer) and the running hash. */
static int
segw_put(struct qt_segw *w, const void *p, size_t len)
{
    XXH3_64bits_update(w->hash, p, len);
    const uint8_t *src = p;
    while (len > 0) {
        size_t room = SEGW_BUF_BYTES - w->buf_len;
        size_t k = len < room ? len : room;
        memcpy(w->buf + w->buf_len, src, k);
        w->buf_len += k;
        src += k;
        len -= k;
        if (w->buf_len == SEGW_BUF_BYTES) {
            int rc = segw_drain(w);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static uint64_t
segw_offset(const struct qt_segw *w)
{
    return w->buf_off + w->buf_len;
}

int
qt_segw_create(struct qt_io *io, const char *tmp_path, int64_t shard_start_ns,
               int64_t shard_duration_ns, uint64_t seq, struct qt_segw **out)
{
    qt_assert(io != NULL);
    qt_assert(shard_duration_ns > 0);
    struct qt_segw *w = qt_calloc(1, sizeof(*w));
    if (w == NULL)
        return QT_ENOMEM;
    w->io = io;
    w->fd = -1;
    w->shard_start = shard_start_ns;
    w->shard_dur = shard_duration_ns;
    w->seq = seq;
    w->path = qt_strndup(tmp_path, strlen(tmp_path));
    w->buf = qt_malloc(SEGW_BUF_BYTES);
    w->hash = XXH3_createState();
    int rc = (w->path == NULL || w->buf == NULL || w->hash == NULL) ? QT_ENOMEM : 0;
    if (rc == 0)
        rc = qt_io_open(io, tmp_path, O_RDWR | O_CREAT | O_TRUNC, 0644, &w->fd);
    if (rc == 0) {
        XXH3_64bits_reset(w->hash);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        struct qt_seg_header h = {.shard_start_ns = shard_start_ns,
                                  .shard_duration_ns = shard_duration_ns,
                                  .segment_seq = seq,
                                  .created_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec};
        uint8_t hdr[QT_SEG_HEADER_SIZE];
        rc = qt_seg_header_encode(&h, hdr, sizeof(hdr));
        if (rc == 0)
            rc = segw_put(w, hdr, sizeof(hdr));
    }
    if (rc != 0) {
        qt_segw_abort(w);
        return rc;
    }
    *out = w;
    return 0;
}

static int
segw_add_key(struct qt_segw *w, uint64_t group_id, const struct qt_segw_col *col)
{
    size_t need = (w->n_keys + 1) * sizeof(*w->keys);
    size_t cap = w->cap_keys * sizeof(*w->keys);
    int rc = segw_grow((void **)&w->keys, &cap, need);
    if (rc != 0)
        return rc;
    w->cap_keys = (uint32_t)(cap / sizeof(*w->keys));
    rc = segw_grow((void **)&w->karena, &w->karena_cap, w->karena_len + col->key_len);
    if (rc != 0)
        return rc;
    memcpy(w->karena + w->karena_len, col->key, col->key_len);
    w->keys[w->n_keys++] = (struct segw_key){.series_id = col->series_id,
                                             .group_id = group_id,
                                             .vtype = col->vtype,
                                             .key_off = (uint32_t)w->karena_len,
                                             .key_len = col->key_len,
                                             .group_len = col->group_len};
    w->karena_len += col->key_len;
    return 0;
}

static int
segw_add_entry(struct qt_segw *w, const struct qt_seg_entry *e)
{
    size_t cap = w->cap_entries * sizeof(*w->entries);
    int rc = segw_grow((void **)&w->entries, &cap, (w->n_entries + 1) * sizeof(*w->entries));
    if (rc != 0)
        return rc;
    w->cap_entries = (uint32_t)(cap / sizeof(*w->entries));
    w->entries[w->n_entries++] = *e;
    return 0;
}

/* Gather the present values of rows [r0, r0+n) of col into w->vals (typed
 * as block.h expects) and presence bytes into w->pres.  Returns the count. */
static int
segw_gather(struct qt_segw *w, const struct qt_segw_col *col, uint32_t r0, uint32_t n,
            uint32_t *n_values)
{
    size_t esz = col->vtype == QT_VT_FLOAT    ? sizeof(double)
                 : col->vtype == QT_VT_INT    ? sizeof(int64_t)
                 : col->vtype == QT_VT_BOOL   ? sizeof(uint8_t)
                 : col->vtype == QT_VT_STRING ? sizeof(struct qt_str)
                                              : 0;
    if (esz == 0)
        return qt_fail(QT_EINVAL, "segment writer: unknown value type");
    int rc = segw_grow(&w->vals, &w->vals_cap, esz * n);
    if (rc != 0)
        return rc;
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        w->pres[i] = col->present[r0 + i];
        if (!w->pres[i])
            continue;
        union qt_value v = col->vals[r0 + i];
        switch (col->vtype) {
        case QT_VT_FLOAT: ((double *)w->vals)[k] = v.f; break;
        case QT_VT_INT: ((int64_t *)w->vals)[k] = v.i; break;
        case QT_VT_BOOL: ((uint8_t *)w->vals)[k] = (uint8_t)(v.i != 0); break;
        default:
            ((struct qt_str *)w->vals)[k] =
                (struct qt_str){.p = col->arena + v.s.off, .len = v.s.len};
            break;
        }
        k++;
    }
    *n_values = k;
    return 0;
}

/* Encode one VALUE block of col for rows [r0, r0+n) aligned with the TS
 * block at ts_off/ts_len; appends it and its index entry. */
static int
segw_value_block(struct qt_segw *w, uint64_t group_id, const struct qt_segw_col *col,
                 const int64_t *ts, uint32_t r0, uint32_t n, uint64_t ts_off, uint32_t ts_len)
{
    uint32_t nv = 0;
    int rc = segw_gather(w, col, r0, n, &nv);
    if (rc != 0 || nv == 0)
        return rc;
    const uint8_t *pres = nv == n ? NULL : w->pres;
    size_t bound = qt_block_values_bound(col->vtype, w->vals, nv, n);
    rc = segw_grow((void **)&w->out, &w->out_cap, bound);
    if (rc == 0)
        rc = segw_grow((void **)&w->scratch, &w->scratch_cap, bound);
    size_t len = 0;
    if (rc == 0)
        rc = qt_block_encode_values(col->series_id, col->vtype, w->vals, nv, pres, n, ts + r0,
                                    w->scratch, w->scratch_cap, w->out, w->out_cap, &len);
    struct qt_block_info info;
    if (rc == 0)
        rc = qt_block_read_header(w->out, len, &info); /* pair check of what we wrote */
    if (rc != 0)
        return rc;
    struct qt_seg_entry e = {.series_id = col->series_id,
                             .group_id = group_id,
                             .ts_block_off = ts_off,
                             .value_block_off = segw_offset(w),
                             .ts_block_len = ts_len,
                             .value_block_len = (uint32_t)len,
                             .n_rows = n,
                             .n_values = nv,
                             .ts_min = info.ts_min,
                             .ts_max = info.ts_max,
                             .vtype = col->vtype,
                             .flags = info.flags,
                             .stats = info.stats};
    rc = segw_put(w, w->out, len);
    if (rc == 0)
        rc = segw_add_entry(w, &e);
    w->points += nv;
    return rc;
}

int
qt_segw_add_group(struct qt_segw *w, uint64_t group_id, const char *group_key,
                  uint32_t group_key_len, const int64_t *ts, uint32_t nrows,
                  const struct qt_segw_col *cols, uint32_t ncols)
{
    qt_assert(w != NULL);
    qt_assert(nrows == 0 || ts != NULL);
    if (nrows == 0)
        return 0;
    qt_assert(ts[0] >= w->shard_start);
    qt_assert((uint64_t)ts[nrows - 1] - (uint64_t)w->shard_start < (uint64_t)w->shard_dur);
    (void)group_key;
    (void)group_key_len;
    int rc = 0;
    for (uint32_t c = 0; c < ncols && rc == 0; c++)
        rc = segw_add_key(w, group_id, &cols[c]);
    if (w->n_groups == 0 || w->last_group != group_id)
        w->n_groups++; /* else: more rows of the same group (compaction) */
    w->last_group = group_id;
    for (uint32_t r0 = 0; r0 < nrows && rc == 0; r0 += QT_BLOCK_POINTS_MAX) {
        uint32_t n = nrows - r0 < QT_BLOCK_POINTS_MAX ? nrows - r0 : QT_BLOCK_POINTS_MAX;
        size_t bound = qt_block_ts_bound(n);
        rc = segw_grow((void **)&w->out, &w->out_cap, bound);
        if (rc == 0)
            rc = segw_grow((void **)&w->scratch, &w->scratch_cap, bound);
        size_t len = 0;
        if (rc == 0)
            rc = qt_block_encode_ts(group_id, ts + r0, n, w->scratch, w->scratch_cap, w->out,
                                    w->out_cap, &len);
        uint64_t ts_off = segw_offset(w);
        if (rc == 0)
            rc = segw_put(w, w->out, len);
        for (uint32_t c = 0; c < ncols && rc == 0; c++)
            rc = segw_value_block(w, group_id, &cols[c], ts, r0, n, ts_off, (uint32_t)len);
    }
    return rc;
}

uint64_t
qt_segw_points(const struct qt_segw *w)
{
    return w->points;
}

static int
segw_entry_cmp(const void *a, const void *b)
{
    const struct qt_seg_entry *x = a, *y = b;
    if (x->series_id != y->series_id)
        return x->series_id < y->series_id ? -1 : 1;
    return x->ts_min < y->ts_min ? -1 : (x->ts_min > y->ts_min);
}

static int
segw_key_cmp(const void *a, const void *b)
{
    const struct segw_key *x = a, *y = b;
    return x->series_id < y->series_id ? -1 : (x->series_id > y->series_id);
}

/* Write the key table; fills the footer's key table fields. */
static int
segw_write_keytab(struct qt_segw *w, struct qt_seg_footer *f)
{
    qsort(w->keys, w->n_keys, sizeof(*w->keys), segw_key_cmp);
    struct qt_seg_key *keys = qt_malloc((w->n_keys + 1) * sizeof(*keys));
    if (keys == NULL)
        return QT_ENOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < w->n_keys; i++) {
        const struct segw_key *k = &w->keys[i];
        if (n > 0 && keys[n - 1].series_id == k->series_id)
            continue; /* a series appears once per group added */
        keys[n++] = (struct qt_seg_key){.series_id = k->series_id,
                                        .group_id = k->group_id,
                                        .vtype = k->vtype,
                                        .key = (const uint8_t *)w->karena + k->key_off,
                                        .key_len = k->key_len,
                                        .group_len = k->group_len};
    }
    size_t size = qt_seg_keytab_size(keys, n);
    uint8_t *tab = size > 0 ? qt_malloc(size) : NULL;
    size_t len = 0;
    int rc = tab == NULL ? (size == 0 ? qt_fail(QT_EINVAL, "segment writer: bad key") : QT_ENOMEM)
                         : qt_seg_keytab_encode(keys, n, tab, size, &len, &f->keytab_checksum);
    f->keytab_off = segw_offset(w);
    f->keytab_len = len;
    f->n_groups = w->n_groups;
    if (rc == 0)
        rc = segw_put(w, tab, len);
    qt_free(tab);
    qt_free(keys);
    return rc;
}

/* Write index chunks and metaindex; fills the footer's index fields. */
static int
segw_write_index(struct qt_segw *w, struct qt_seg_footer *f)
{
    qsort(w->entries, w->n_entries, sizeof(*w->entries), segw_entry_cmp);
    uint32_t nrefs = (w->n_entries + QT_SEG_CHUNK_ENTRIES - 1) / QT_SEG_CHUNK_ENTRIES;
    struct qt_seg_chunk_ref *refs = qt_malloc((nrefs + 1) * sizeof(*refs));
    uint8_t *chunk = qt_malloc(QT_SEG_CHUNK_MAX_BYTES);
    size_t meta_cap = (size_t)(nrefs + 1) * QT_SEG_METAINDEX_ENTRY_SIZE;
    uint8_t *meta = qt_malloc(meta_cap);
    int rc = refs == NULL || chunk == NULL || meta == NULL ? QT_ENOMEM : 0;
    struct qt_seg_index_writer iw;
    if (rc == 0)
        qt_seg_index_writer_init(&iw, f->keytab_off, segw_offset(w), chunk, QT_SEG_CHUNK_MAX_BYTES,
                                 refs, nrefs + 1);
    uint64_t off = 0;
    size_t len = 0;
    for (uint32_t i = 0; i < w->n_entries && rc == 0; i++) {
        if (qt_seg_index_chunk_full(&iw)) {
            rc = qt_seg_index_chunk_finish(&iw, &off, &len);
            if (rc == 0)
                rc = segw_put(w, chunk, len);
        }
        if (rc == 0)
            rc = qt_seg_index_add(&iw, &w->entries[i]);
    }
    if (rc == 0 && w->n_entries > 0) {
        rc = qt_seg_index_chunk_finish(&iw, &off, &len);
        if (rc == 0)
            rc = segw_put(w, chunk, len);
    }
    if (rc == 0)
        rc = qt_seg_index_finish(&iw, meta, meta_cap, &off, &len, f);
    if (rc == 0) {
        qt_assert(off == segw_offset(w));
        rc = segw_put(w, meta, len);
    }
    qt_free(meta);
    qt_free(chunk);
    qt_free(refs);
    return rc;
}

static void
segw_free(struct qt_segw *w)
{
    if (w->hash != NULL)
        XXH3_freeState(w->hash);
    qt_free(w->path);
    qt_free(w->buf);
    qt_free(w->entries);
    qt_free(w->keys);
    qt_free(w->karena);
    qt_free(w->out);
    qt_free(w->scratch);
    qt_free(w->vals);
    qt_free(w);
}

int
qt_segw_finish(struct qt_segw *w, struct qt_segw_result *res)
{
    qt_assert(w != NULL);
    qt_assert(res != NULL);
    if (w->n_entries == 0) {
        qt_segw_abort(w);
        return qt_fail(QT_EINVAL, "segment writer: no blocks");
    }
    struct qt_seg_footer f = {.segment_seq = w->seq};
    int rc = segw_write_keytab(w, &f);
    if (rc == 0)
        rc = segw_write_index(w, &f);
    uint8_t foot[QT_SEG_FOOTER_SIZE];
    uint64_t size = segw_offset(w) + QT_SEG_FOOTER_SIZE;
    if (rc == 0)
        rc = qt_seg_footer_encode(&f, size, foot, sizeof(foot));
    if (rc == 0)
        rc = segw_put(w, foot, sizeof(foot));
    if (rc == 0)
        rc = segw_drain(w);
    if (rc == 0)
        rc = qt_io_fsync(w->io, w->fd);
    if (rc != 0) {
        qt_log(QT_LOG_ERROR, "segment: writing %s: %s (%s)", w->path, qt_strerror(rc),
               qt_err_detail());
        qt_segw_abort(w);
        return rc;
    }
    *res = (struct qt_segw_result){.file_bytes = size,
                                   .file_xxh3 = XXH3_64bits_digest(w->hash),
                                   .ts_min = f.ts_min,
                                   .ts_max = f.ts_max,
                                   .points = f.n_points,
                                   .series = f.n_series,
                                   .blocks = f.n_blocks};
    rc = qt_io_close(w->io, w->fd);
    w->fd = -1;
    segw_free(w);
    return rc;
}

void
qt_segw_abort(struct qt_segw *w)
{
    if (w == NULL)
        return;
    if (w->fd >= 0) {
        qt_io_close(w->io, w->fd);
        if (w->path != NULL)
            qt_io_unlink(w->io, w->path);
    }
    segw_free(w);
}
