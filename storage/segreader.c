/*
 * segreader.c -- segment file reader (see segreader.h).
 *
 * Invariants: header, footer and metaindex were validated at open and never
 * change (the file is immutable); chunks[i] is NULL or the validated,
 * decoded entries of metaindex chunk i (loaded under mu, never freed before
 * close).
 */
#include "segreader.h"

#include "format/block.h"
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>

struct segr_chunk {
    struct qt_seg_entry *e;
    uint32_t n;
};

struct qt_segr {
    struct qt_io *io;
    int fd;
    char *path;
    uint64_t size;
    struct qt_seg_header hdr;
    struct qt_seg_footer foot;
    struct qt_seg_chunk_ref *refs;
    uint32_t n_refs;
    pthread_mutex_t mu;
    struct segr_chunk *chunks;
};

/* Read exactly len bytes at off. */
static int
segr_pread(struct qt_segr *r, void *buf, size_t len, uint64_t off)
{
    int64_t got = qt_io_pread(r->io, r->fd, buf, len, off);
    if (got < 0)
        return (int)got;
    if ((uint64_t)got != len)
        return qt_fail(QT_ETRUNC, "segment: file shorter than its index says");
    return 0;
}

static void
segr_report(const struct qt_segr *r, uint64_t off, int rc)
{
    qt_log(QT_LOG_ERROR, "segment: %s: damage at offset %" PRIu64 ": %s (%s)", r->path, off,
           qt_strerror(rc), qt_err_detail());
}

static int
segr_load_meta(struct qt_segr *r)
{
    uint8_t buf[QT_SEG_FOOTER_SIZE];
    int rc = segr_pread(r, buf, QT_SEG_HEADER_SIZE, 0);
    if (rc == 0)
        rc = qt_seg_header_decode(buf, QT_SEG_HEADER_SIZE, &r->hdr);
    if (rc != 0) {
        segr_report(r, 0, rc);
        return rc;
    }
    uint64_t foot_off = r->size - QT_SEG_FOOTER_SIZE;
    rc = segr_pread(r, buf, QT_SEG_FOOTER_SIZE, foot_off);
    if (rc == 0)
        rc = qt_seg_footer_decode(buf, QT_SEG_FOOTER_SIZE, r->size, &r->foot);
    if (rc == 0)
        rc = qt_seg_check_header_footer(&r->hdr, &r->foot);
    if (rc != 0) {
        segr_report(r, foot_off, rc);
        return rc;
    }
    r->n_refs = r->foot.n_chunks;
    uint64_t meta_off = qt_seg_metaindex_off(&r->foot);
    uint8_t *meta = qt_malloc(r->foot.metaindex_len + 1u);
    r->refs = qt_calloc(r->n_refs + 1u, sizeof(*r->refs));
    r->chunks = qt_calloc(r->n_refs + 1u, sizeof(*r->chunks));
    rc = meta == NULL || r->refs == NULL || r->chunks == NULL ? QT_ENOMEM : 0;
    if (rc == 0)
        rc = segr_pread(r, meta, r->foot.metaindex_len, meta_off);
    if (rc == 0)
        rc = qt_seg_metaindex_decode(meta, r->foot.metaindex_len, &r->foot, r->refs, r->n_refs);
    if (rc != 0 && rc != QT_ENOMEM)
        segr_report(r, meta_off, rc);
    qt_free(meta);
    return rc;
}

int
qt_segr_open(struct qt_io *io, const char *path, uint64_t expect_bytes, struct qt_segr **out)
{
    qt_assert(io != NULL);
    qt_assert(path != NULL);
    struct qt_segr *r = qt_calloc(1, sizeof(*r));
    if (r == NULL)
        return QT_ENOMEM;
    r->io = io;
    r->fd = -1;
    pthread_mutex_init(&r->mu, NULL);
    r->path = qt_strndup(path, strlen(path));
    int rc = r->path == NULL ? QT_ENOMEM : qt_io_open(io, path, O_RDONLY, 0, &r->fd);
    if (rc == 0)
        rc = qt_io_size(io, r->fd, &r->size);
    if (rc == 0 && expect_bytes != 0 && r->size != expect_bytes) {
        rc = qt_fail(QT_ECORRUPT, "segment: file size differs from the MANIFEST");
        segr_report(r, r->size, rc);
    }
    if (rc == 0 && r->size < QT_SEG_HEADER_SIZE + QT_SEG_FOOTER_SIZE) {
        rc = qt_fail(QT_ETRUNC, "segment: shorter than header and footer");
        segr_report(r, r->size, rc);
    }
    if (rc == 0)
        rc = segr_load_meta(r);
    if (rc != 0) {
        qt_segr_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void
qt_segr_close(struct qt_segr *r)
{
    if (r == NULL)
        return;
    for (uint32_t i = 0; r->chunks != NULL && i < r->n_refs; i++)
        qt_free(r->chunks[i].e);
    qt_free(r->chunks);
    qt_free(r->refs);
    if (r->fd >= 0)
        qt_io_close(r->io, r->fd);
    pthread_mutex_destroy(&r->mu);
    qt_free(r->path);
    qt_free(r);
}

const struct qt_seg_footer *
qt_segr_footer(const struct qt_segr *r)
{
    return &r->foot;
}

const struct qt_seg_header *
qt_segr_header(const struct qt_segr *r)
{
    return &r->hdr;
}

const char *
qt_segr_path(const struct qt_segr *r)
{
    return r->path;
}

void
qt_seg_entries_free(struct qt_seg_entries *l)
{
    qt_free(l->v);
    memset(l, 0, sizeof(*l));
}

/* The decoded entries of chunk i, reading it on first use. */
static int
segr_chunk(struct qt_segr *r, uint32_t i, struct segr_chunk **out)
{
    qt_assert(i < r->n_refs);
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    struct segr_chunk *c = &r->chunks[i];
    if (c->e == NULL) {
        const struct qt_seg_chunk_ref *ref = &r->refs[i];
        size_t len = (size_t)qt_seg_chunk_bytes(ref->count);
        uint8_t *buf = qt_malloc(len);
        struct qt_seg_entry *e = qt_malloc(ref->count * sizeof(*e));
        rc = buf == NULL || e == NULL ? QT_ENOMEM : segr_pread(r, buf, len, ref->offset);
        if (rc == 0)
            rc = qt_seg_chunk_decode(buf, len, &r->foot, ref, e, ref->count);
        if (rc == 0) {
            c->e = e;
            c->n = ref->count;
            e = NULL;
        } else if (rc != QT_ENOMEM) {
            segr_report(r, ref->offset, rc);
        }
        qt_free(e);
        qt_free(buf);
    }
    pthread_mutex_unlock(&r->mu);
    *out = c;
    return rc;
}

static int
segr_append(struct qt_seg_entries *out, const struct qt_seg_entry *e)
{
    if (out->n == out->cap) {
        uint32_t cap = out->cap == 0 ? 16 : out->cap * 2;
        struct qt_seg_entry *v = qt_realloc(out->v, cap * sizeof(*v));
        if (v == NULL)
            return QT_ENOMEM;
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n++] = *e;
    return 0;
}

int
qt_segr_find(struct qt_segr *r, uint64_t series_id, int64_t t0, int64_t t1,
             struct qt_seg_entries *out)
{
    qt_assert(out != NULL);
    if (t1 <= r->foot.ts_min || t0 > r->foot.ts_max)
        return 0;
    uint32_t i = qt_seg_metaindex_find(r->refs, r->n_refs, series_id);
    for (; i < r->n_refs && r->refs[i].first_series <= series_id; i++) {
        struct segr_chunk *c;
        int rc = segr_chunk(r, i, &c);
        if (rc != 0)
            return rc;
        for (uint32_t j = qt_seg_chunk_find(c->e, c->n, series_id);
             j < c->n && c->e[j].series_id == series_id; j++) {
            if (c->e[j].ts_max < t0 || c->e[j].ts_min >= t1)
                continue;
            rc = segr_append(out, &c->e[j]);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int
qt_segr_foreach_entry(struct qt_segr *r, int (*fn)(void *arg, const struct qt_seg_entry *e),
                      void *arg)
{
    for (uint32_t i = 0; i < r->n_refs; i++) {
        struct segr_chunk *c;
        int rc = segr_chunk(r, i, &c);
        for (uint32_t j = 0; rc == 0 && j < c->n; j++)
            rc = fn(arg, &c->e[j]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int
qt_blockbuf_init(struct qt_blockbuf *b)
{
    memset(b, 0, sizeof(*b));
    b->ts = qt_malloc(QT_BLOCK_POINTS_MAX * sizeof(*b->ts));
    b->present = qt_malloc(QT_BLOCK_POINTS_MAX);
    b->vals = qt_malloc(QT_BLOCK_POINTS_MAX * sizeof(struct qt_str));
    if (b->ts == NULL || b->present == NULL || b->vals == NULL) {
        qt_blockbuf_deinit(b);
        return QT_ENOMEM;
    }
    b->v.f64 = b->vals;
    return 0;
}

void
qt_blockbuf_deinit(struct qt_blockbuf *b)
{
    qt_free(b->ts);
    qt_free(b->present);
    qt_free(b->vals);
    qt_free(b->raw_ts);
    qt_free(b->raw_val);
    qt_free(b->scratch);
    memset(b, 0, sizeof(*b));
}

static int
bb_grow(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    uint8_t *q = qt_realloc(*p, need);
    if (q == NULL)
        return QT_ENOMEM;
    *p = q;
    *cap = need;
    return 0;
}

/* Make sure scratch can hold the raw payload of the block in buf. */
static int
bb_scratch_for(struct qt_blockbuf *b, const uint8_t *buf, size_t len)
{
    struct qt_block_info info;
    int rc = qt_block_read_header(buf, len, &info);
    if (rc != 0)
        return rc;
    return bb_grow(&b->scratch, &b->scratch_cap, info.raw_len + 64u);
}

static int
segr_read_blocks(struct qt_segr *r, const struct qt_seg_entry *e, struct qt_blockbuf *b,
                 bool need_ts)
{
    struct qt_io_rreq req[2];
    uint32_t n = 0;
    int rc = bb_grow(&b->raw_val, &b->raw_val_cap, e->value_block_len);
    if (rc == 0 && need_ts)
        rc = bb_grow(&b->raw_ts, &b->raw_ts_cap, e->ts_block_len);
    if (rc != 0)
        return rc;
    if (need_ts)
        req[n++] = (struct qt_io_rreq){
            .fd = r->fd, .buf = b->raw_ts, .len = e->ts_block_len, .off = e->ts_block_off};
    req[n++] = (struct qt_io_rreq){
        .fd = r->fd, .buf = b->raw_val, .len = e->value_block_len, .off = e->value_block_off};
    rc = qt_io_pread_batch(r->io, req, n);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        if ((uint64_t)req[i].res != req[i].len)
            rc = qt_fail(QT_ETRUNC, "segment: block extends past the end of the file");
    }
    return rc;
}

int
qt_segr_read(struct qt_segr *r, const struct qt_seg_entry *e, struct qt_blockbuf *b)
{
    qt_assert(e->n_rows <= QT_BLOCK_POINTS_MAX);
    bool need_ts = b->ts_owner != r || b->ts_off != e->ts_block_off;
    int rc = segr_read_blocks(r, e, b, need_ts);
    uint64_t bad_off = e->value_block_off;
    if (rc == 0 && need_ts) {
        bad_off = e->ts_block_off;
        b->ts_owner = NULL;
        rc = bb_scratch_for(b, b->raw_ts, e->ts_block_len);
        if (rc == 0)
            rc = qt_block_decode_ts(b->raw_ts, e->ts_block_len, b->scratch, b->scratch_cap, b->ts,
                                    QT_BLOCK_POINTS_MAX, NULL);
        if (rc == 0) {
            b->ts_owner = r;
            b->ts_off = e->ts_block_off;
        }
    }
    struct qt_block_info info;
    if (rc == 0) {
        bad_off = e->value_block_off;
        rc = bb_scratch_for(b, b->raw_val, e->value_block_len);
    }
    if (rc == 0)
        rc = qt_block_decode_values(b->raw_val, e->value_block_len, b->scratch, b->scratch_cap,
                                    b->ts, e->n_rows, b->vals, b->present, QT_BLOCK_POINTS_MAX,
                                    &info);
    if (rc == 0 && (info.n_values != e->n_values || info.id != e->series_id))
        rc = qt_fail(QT_ECORRUPT, "segment: block does not match its index entry");
    if (rc != 0) {
        if (rc != QT_ENOMEM)
            segr_report(r, bad_off, rc);
        return rc;
    }
    b->n_rows = e->n_rows;
    b->n_values = info.n_values;
    b->vtype = info.vtype;
    b->v.f64 = b->vals;
    return 0;
}

int
qt_segr_keys(struct qt_segr *r, struct qt_seg_key **keys, uint32_t *n, uint8_t **buf)
{
    *keys = NULL;
    *buf = NULL;
    *n = 0;
    uint8_t *tab = qt_malloc(r->foot.keytab_len + 1u);
    struct qt_seg_key *k = qt_malloc((r->foot.n_series + 1u) * sizeof(*k));
    int rc = tab == NULL || k == NULL ? QT_ENOMEM : 0;
    if (rc == 0)
        rc = segr_pread(r, tab, r->foot.keytab_len, r->foot.keytab_off);
    if (rc == 0)
        rc = qt_seg_keytab_decode(tab, r->foot.keytab_len, &r->foot, k, r->foot.n_series);
    if (rc != 0) {
        if (rc != QT_ENOMEM)
            segr_report(r, r->foot.keytab_off, rc);
        qt_free(tab);
        qt_free(k);
        return rc;
    }
    *keys = k;
    *buf = tab;
    *n = r->foot.n_series;
    return 0;
}

void
qt_segr_keys_free(struct qt_seg_key *keys, uint8_t *buf)
{
    qt_free(keys);
    qt_free(buf);
}
