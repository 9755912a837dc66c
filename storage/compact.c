/*
 * compact.c -- shard listing and compaction (compact.h, design/ops.md
 * "Compaction").
 *
 * One compaction of shard S:
 *   1. flush_mu: snapshot the inputs (every segment of S, each referenced),
 *      reserve the output seq from next_segment_seq, mark S busy.
 *   2. Check free disk against the inputs' size (the output is at most
 *      about that big, and both exist until the commit).
 *   3. Merge group by group into S/<seq>.qts.tmp (below), fsync it (the
 *      writer does), rename to S/<seq>.qts, fsync S's directory, open it.
 *   4. flush_mu: db_ops_commit(): MANIFEST without the inputs and with the
 *      output, publish, mark the inputs' files for deletion on last release.
 * A crash before the MANIFEST rename leaves the old MANIFEST (open deletes
 * the unlisted output); after it, the new one (open deletes the unlisted
 * inputs).  Any failure before the commit discards the output.
 *
 * The merge.  Groups (column groups: a measurement + tag set) are merged
 * one at a time, in group id order, from the key tables of the inputs.  For
 * one group the sources are its *row blocks*: one TS block of one input
 * with the VALUE blocks aligned with it (all index entries of the group's
 * series sharing that ts_block_off).  Sources are sorted by first
 * timestamp and opened (decoded, rows without any value dropped) when the
 * merge reaches them; a k-way merge emits rows in time order into an
 * output window of QT_BLOCK_POINTS_MAX rows, per column the value of the
 * source with the highest seq that has one (as scan.c resolves ties).  While
 * a single source is open and no other starts before its rows, rows are
 * copied in bulk.  Rows before their measurement's retention cutoff are not
 * copied.  Each full window goes to the segment writer as one block row
 * (a TS block shared by the group's VALUE blocks), so blocks come out full.
 *
 * Memory: the inputs' key tables, the group's index entries, one decoded
 * source per overlapping row block and the output window (the group's
 * columns x QT_BLOCK_POINTS_MAX rows); not the shard's data.
 */
#include "storage/compact.h"

#include "format/block.h"
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "ops_int.h"
#include "storage/segwriter.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#define W QT_BLOCK_POINTS_MAX

/* Decode scratch: the largest raw payload of a block. */
#define CM_SCRATCH (QT_BLOCK_RAW_MAX + 64u)

const char *
qt_shard_state_name(enum qt_shard_state s)
{
    switch (s) {
    case QT_SHARD_ACTIVE: return "active";
    case QT_SHARD_SEALED: return "sealed";
    case QT_SHARD_COMPACTING: return "compacting";
    }
    return "unknown";
}

/* ---- merge state ------------------------------------------------------------ */

/* A series of the inputs' key tables, tagged with the input holding it. */
struct cm_key {
    uint64_t group_id, series_id;
    uint32_t in;
    const struct qt_seg_key *k;
};

/* An output column of the group being merged. */
struct cm_col {
    const struct qt_seg_key *k;
    union qt_value *vals; /* W */
    uint8_t *present;     /* W */
};

struct cm_ent {
    struct qt_seg_entry e;
    uint32_t in;
    uint32_t col;
};

/* A row block: entries [e0, e0 + ne) of one input sharing one TS block. */
struct cm_rb {
    int64_t tmin;
    uint64_t prec;
    uint32_t e0, ne;
};

/* A decoded row block. */
struct cm_src {
    bool in_use;
    uint64_t prec;
    uint32_t nrows, pos;
    uint32_t ncols, cap_cols;
    int64_t *ts;         /* W */
    uint32_t *col;       /* cap_cols */
    union qt_value *val; /* cap_cols x W, row-aligned */
    uint8_t *pres;       /* cap_cols x W */
    char *arena;
    size_t alen, acap;
};

struct cm {
    struct qt_db *db;
    const struct qt_compact_opts *o;
    int64_t shard;
    uint32_t nin;
    struct db_seg **in;
    struct qt_seg_key **keys;
    uint8_t **kbufs;
    uint32_t *nkeys;
    struct cm_key *all; /* every (group, series, input), sorted */
    uint32_t nall;
    struct qt_segw *w;
    struct db_ops_file *img; /* every input, whole (read, or mapped when large) */
    uint8_t *scratch;        /* block decode: raw payload */
    void *dvals;             /* block decode: present values */
    uint8_t *dpres;          /* block decode: presence */
    /* the group being merged */
    struct cm_col *cols;
    uint32_t ncols, cap_cols;
    struct cm_ent *ents;
    uint32_t nents, cap_ents;
    struct cm_rb *rbs;
    uint32_t nrbs, cap_rbs;
    struct cm_src srcs[QT_COMPACT_SOURCES_MAX];
    uint32_t nsrcs, nopen;
    int64_t cutoff;
    /* output window */
    int64_t *out_ts; /* W */
    uint32_t wn;
    char *oarena;
    size_t oalen, oacap;
    struct qt_segw_col *wcols;
    uint64_t *best; /* per column: prec of the value in the current row */
    /* totals */
    uint64_t points_total, points_done, points_out, points_trimmed;
};

static int
cm_grow(void **p, uint32_t *cap, uint32_t need, size_t esz)
{
    qt_assert(p != NULL && cap != NULL);
    qt_assert(esz > 0);
    if (need <= *cap)
        return 0;
    uint32_t ncap = *cap == 0 ? 16 : *cap;
    while (ncap < need)
        ncap *= 2;
    void *q = qt_realloc(*p, (size_t)ncap * esz);
    if (q == NULL)
        return QT_ENOMEM;
    *p = q;
    *cap = ncap;
    return 0;
}

static int
cm_arena_put(char **a, size_t *len, size_t *cap, const char *p, uint32_t n, uint32_t *off)
{
    qt_assert(*len <= *cap);
    qt_assert(p != NULL || n == 0);
    if (*cap - *len < n) {
        size_t ncap = *cap == 0 ? 4096 : *cap;
        while (ncap - *len < n)
            ncap *= 2;
        char *q = qt_realloc(*a, ncap);
        if (q == NULL)
            return QT_ENOMEM;
        *a = q;
        *cap = ncap;
    }
    memcpy(*a + *len, p, n);
    *off = (uint32_t)*len;
    *len += n;
    return 0;
}

/* ---- inputs --------------------------------------------------------------- */

static int
cm_key_cmp(const void *a, const void *b)
{
    const struct cm_key *x = a, *y = b;
    if (x->group_id != y->group_id)
        return x->group_id < y->group_id ? -1 : 1;
    if (x->series_id != y->series_id)
        return x->series_id < y->series_id ? -1 : 1;
    return x->in < y->in ? -1 : (x->in > y->in);
}

/* Read every input's key table into one sorted (group, series, input) list. */
static int
cm_load_keys(struct cm *c)
{
    qt_assert(c->nin > 0);
    qt_assert(c->all == NULL);
    c->keys = qt_calloc(c->nin, sizeof(*c->keys));
    c->kbufs = qt_calloc(c->nin, sizeof(*c->kbufs));
    c->nkeys = qt_calloc(c->nin, sizeof(*c->nkeys));
    if (c->keys == NULL || c->kbufs == NULL || c->nkeys == NULL)
        return QT_ENOMEM;
    uint64_t total = 0;
    for (uint32_t i = 0; i < c->nin; i++) {
        int rc = qt_segr_keys(c->in[i]->r, &c->keys[i], &c->nkeys[i], &c->kbufs[i]);
        if (rc != 0)
            return rc;
        total += c->nkeys[i];
    }
    if (total >= UINT32_MAX)
        return qt_fail(QT_ELIMIT, "compact: too many series in one shard");
    c->all = qt_malloc((total + 1) * sizeof(*c->all));
    if (c->all == NULL)
        return QT_ENOMEM;
    for (uint32_t i = 0; i < c->nin; i++) {
        for (uint32_t k = 0; k < c->nkeys[i]; k++)
            c->all[c->nall++] = (struct cm_key){.group_id = c->keys[i][k].group_id,
                                                .series_id = c->keys[i][k].series_id,
                                                .in = i,
                                                .k = &c->keys[i][k]};
    }
    qsort(c->all, c->nall, sizeof(*c->all), cm_key_cmp);
    return 0;
}

static void
cm_free(struct cm *c)
{
    for (uint32_t i = 0; c->keys != NULL && i < c->nin; i++)
        qt_segr_keys_free(c->keys[i], c->kbufs[i]);
    qt_free(c->keys);
    qt_free(c->kbufs);
    qt_free(c->nkeys);
    qt_free(c->all);
    for (uint32_t i = 0; i < c->cap_cols; i++) {
        qt_free(c->cols[i].vals);
        qt_free(c->cols[i].present);
    }
    qt_free(c->cols);
    qt_free(c->ents);
    qt_free(c->rbs);
    for (uint32_t i = 0; i < c->nsrcs; i++) {
        struct cm_src *s = &c->srcs[i];
        qt_free(s->ts);
        qt_free(s->col);
        qt_free(s->val);
        qt_free(s->pres);
        qt_free(s->arena);
    }
    qt_free(c->out_ts);
    qt_free(c->oarena);
    qt_free(c->wcols);
    qt_free(c->best);
    for (uint32_t i = 0; c->img != NULL && i < c->nin; i++)
        db_ops_file_unload(&c->img[i]);
    qt_free(c->img);
    qt_free(c->scratch);
    qt_free(c->dvals);
    qt_free(c->dpres);
    qt_segw_abort(c->w);
}

/* Every input whole into memory (mapped beyond a share of
 * QT_COMPACT_INMEM_MAX), so blocks decode without a read per block. */
static int
cm_load_images(struct cm *c)
{
    qt_assert(c->nin > 0);
    qt_assert(c->img == NULL);
    c->img = qt_calloc(c->nin, sizeof(*c->img));
    c->scratch = qt_malloc(CM_SCRATCH);
    c->dvals = qt_malloc(W * sizeof(struct qt_str));
    c->dpres = qt_malloc(W);
    if (c->img == NULL || c->scratch == NULL || c->dvals == NULL || c->dpres == NULL)
        return QT_ENOMEM;
    uint64_t share = QT_COMPACT_INMEM_MAX / c->nin;
    for (uint32_t i = 0; i < c->nin; i++) {
        int rc = db_ops_file_load(c->db->io, c->in[i]->path, share, &c->img[i]);
        if (rc == 0 && c->img[i].len != c->in[i]->m.file_bytes)
            rc = qt_fail(QT_ECORRUPT, "compact: input size differs from the MANIFEST");
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- one group: entries and row blocks -------------------------------------- */

static int
cm_ent_cmp(const void *a, const void *b)
{
    const struct cm_ent *x = a, *y = b;
    if (x->in != y->in)
        return x->in < y->in ? -1 : 1;
    if (x->e.ts_block_off != y->e.ts_block_off)
        return x->e.ts_block_off < y->e.ts_block_off ? -1 : 1;
    return x->col < y->col ? -1 : (x->col > y->col);
}

static int
cm_rb_cmp(const void *a, const void *b)
{
    const struct cm_rb *x = a, *y = b;
    if (x->tmin != y->tmin)
        return x->tmin < y->tmin ? -1 : 1;
    return x->prec < y->prec ? -1 : (x->prec > y->prec);
}

/* Columns of the group all[a, b): one per distinct series; each column's
 * window arrays are (re)allocated on first use. */
static int
cm_group_cols(struct cm *c, uint32_t a, uint32_t b)
{
    qt_assert(a < b);
    qt_assert(b <= c->nall);
    c->ncols = 0;
    for (uint32_t i = a; i < b; i++) {
        if (i > a && c->all[i].series_id == c->all[i - 1].series_id) {
            if (c->all[i].k->vtype != c->all[i - 1].k->vtype)
                return qt_fail(QT_ECORRUPT, "compact: a series has two value types");
            continue;
        }
        if (c->ncols == QT_GROUP_FIELDS_MAX)
            return qt_fail(QT_ELIMIT, "compact: group above QT_GROUP_FIELDS_MAX fields");
        uint32_t old = c->cap_cols;
        int rc = cm_grow((void **)&c->cols, &c->cap_cols, c->ncols + 1, sizeof(*c->cols));
        if (rc != 0)
            return rc;
        for (uint32_t k = old; k < c->cap_cols; k++)
            c->cols[k] = (struct cm_col){0};
        struct cm_col *col = &c->cols[c->ncols];
        if (col->vals == NULL) {
            col->vals = qt_malloc(W * sizeof(*col->vals));
            col->present = qt_malloc(W);
            if (col->vals == NULL || col->present == NULL)
                return QT_ENOMEM;
        }
        col->k = c->all[i].k;
        c->ncols++;
    }
    uint32_t cap = 0;
    void *p = c->wcols;
    int rc = cm_grow(&p, &cap, c->ncols, sizeof(*c->wcols));
    c->wcols = p;
    if (rc == 0) {
        cap = 0;
        p = c->best;
        rc = cm_grow(&p, &cap, c->ncols, sizeof(*c->best));
        c->best = p;
    }
    return rc;
}

/* Index entries of the group's series in every input. */
static int
cm_group_entries(struct cm *c, uint32_t a, uint32_t b)
{
    qt_assert(a < b);
    qt_assert(c->ncols > 0);
    struct qt_seg_entries l = {0};
    c->nents = 0;
    uint32_t col = 0;
    int rc = 0;
    for (uint32_t i = a; i < b && rc == 0; i++) {
        if (i > a && c->all[i].series_id != c->all[i - 1].series_id)
            col++;
        l.n = 0;
        rc = qt_segr_find(c->in[c->all[i].in]->r, c->all[i].series_id, INT64_MIN, INT64_MAX, &l);
        if (rc == 0)
            rc = cm_grow((void **)&c->ents, &c->cap_ents, c->nents + l.n, sizeof(*c->ents));
        for (uint32_t k = 0; rc == 0 && k < l.n; k++) {
            if (l.v[k].vtype != c->all[i].k->vtype || l.v[k].group_id != c->all[i].group_id)
                rc = qt_fail(QT_ECORRUPT, "compact: index entry disagrees with the key table");
            c->ents[c->nents++] = (struct cm_ent){.e = l.v[k], .in = c->all[i].in, .col = col};
        }
    }
    qt_seg_entries_free(&l);
    return rc;
}

/* Row blocks from the entries (sorted by input, TS block). */
static int
cm_group_rbs(struct cm *c)
{
    qt_assert(c->nents == 0 || c->ents != NULL);
    qsort(c->ents, c->nents, sizeof(*c->ents), cm_ent_cmp);
    c->nrbs = 0;
    for (uint32_t i = 0; i < c->nents;) {
        uint32_t j = i + 1;
        int64_t tmin = c->ents[i].e.ts_min;
        for (; j < c->nents && c->ents[j].in == c->ents[i].in &&
               c->ents[j].e.ts_block_off == c->ents[i].e.ts_block_off;
             j++) {
            if (c->ents[j].e.n_rows != c->ents[i].e.n_rows || c->ents[j].col == c->ents[j - 1].col)
                return qt_fail(QT_ECORRUPT, "compact: entries of one TS block disagree");
            tmin = c->ents[j].e.ts_min < tmin ? c->ents[j].e.ts_min : tmin;
        }
        int rc = cm_grow((void **)&c->rbs, &c->cap_rbs, c->nrbs + 1, sizeof(*c->rbs));
        if (rc != 0)
            return rc;
        c->rbs[c->nrbs++] =
            (struct cm_rb){.tmin = tmin, .prec = c->in[c->ents[i].in]->m.seq, .e0 = i, .ne = j - i};
        i = j;
    }
    qsort(c->rbs, c->nrbs, sizeof(*c->rbs), cm_rb_cmp);
    return 0;
}

/* ---- sources --------------------------------------------------------------- */

static struct cm_src *
cm_src_alloc(struct cm *c, uint32_t ncols)
{
    qt_assert(ncols > 0);
    qt_assert(ncols <= QT_GROUP_FIELDS_MAX);
    struct cm_src *s = NULL;
    for (uint32_t i = 0; i < c->nsrcs && s == NULL; i++)
        s = c->srcs[i].in_use ? NULL : &c->srcs[i];
    if (s == NULL && c->nsrcs < QT_COMPACT_SOURCES_MAX) {
        s = &c->srcs[c->nsrcs++];
        memset(s, 0, sizeof(*s));
        s->ts = qt_malloc(W * sizeof(*s->ts));
        if (s->ts == NULL) {
            c->nsrcs--;
            return NULL;
        }
    }
    if (s == NULL || ncols <= s->cap_cols)
        return s;
    uint32_t *col = qt_realloc(s->col, ncols * sizeof(*col));
    if (col != NULL)
        s->col = col;
    union qt_value *val = col != NULL ? qt_realloc(s->val, (size_t)ncols * W * sizeof(*val)) : NULL;
    if (val != NULL)
        s->val = val;
    uint8_t *pres = val != NULL ? qt_realloc(s->pres, (size_t)ncols * W) : NULL;
    if (pres == NULL)
        return NULL;
    s->pres = pres;
    s->cap_cols = ncols;
    return s;
}

/* Copy the decoded VALUE block (c->dvals, c->dpres, vi) into column j of s
 * (row-aligned); strings are copied out of the image/scratch. */
static int
cm_src_fill(struct cm *c, struct cm_src *s, uint32_t j, const struct qt_block_info *vi)
{
    qt_assert(j < s->ncols);
    qt_assert(s->nrows <= W);
    union qt_value *val = s->val + (size_t)j * W;
    uint8_t *pres = s->pres + (size_t)j * W;
    memcpy(pres, c->dpres, s->nrows);
    uint32_t k = 0;
    for (uint32_t r = 0; r < s->nrows; r++) {
        if (!pres[r])
            continue;
        switch (vi->vtype) {
        case QT_VT_FLOAT: val[r].f = ((const double *)c->dvals)[k]; break;
        case QT_VT_INT: val[r].i = ((const int64_t *)c->dvals)[k]; break;
        case QT_VT_BOOL: val[r].i = ((const uint8_t *)c->dvals)[k]; break;
        default: {
            const struct qt_str *str = &((const struct qt_str *)c->dvals)[k];
            val[r].s.len = str->len;
            int rc = cm_arena_put(&s->arena, &s->alen, &s->acap, str->p, str->len, &val[r].s.off);
            if (rc != 0)
                return rc;
        }
        }
        k++;
    }
    return k == vi->n_values ? 0 : qt_fail(QT_ECORRUPT, "compact: presence disagrees with count");
}

/* Decode the TS block and the VALUE blocks of rb from the input image. */
static int
cm_src_decode(struct cm *c, struct cm_src *s, const struct cm_rb *rb)
{
    qt_assert(rb->ne > 0);
    qt_assert(rb->ne <= s->cap_cols);
    const struct cm_ent *e0 = &c->ents[rb->e0];
    const uint8_t *img = c->img[e0->in].buf;
    struct qt_block_info ti, vi;
    int rc = qt_block_decode_ts(img + e0->e.ts_block_off, e0->e.ts_block_len, c->scratch,
                                CM_SCRATCH, s->ts, W, &ti);
    if (rc == 0 && ti.n_rows != e0->e.n_rows)
        rc = qt_fail(QT_ECORRUPT, "compact: TS block does not match its index entry");
    s->nrows = rc == 0 ? ti.n_rows : 0;
    for (uint32_t j = 0; j < rb->ne && rc == 0; j++) {
        const struct cm_ent *e = &c->ents[rb->e0 + j];
        s->col[j] = e->col;
        rc = qt_block_decode_values(img + e->e.value_block_off, e->e.value_block_len, c->scratch,
                                    CM_SCRATCH, s->ts, s->nrows, c->dvals, c->dpres, W, &vi);
        if (rc == 0 &&
            (vi.id != e->e.series_id || vi.n_values != e->e.n_values || vi.vtype != e->e.vtype))
            rc = qt_fail(QT_ECORRUPT, "compact: block does not match its index entry");
        if (rc == 0)
            rc = cm_src_fill(c, s, j, &vi);
        c->points_done += e->e.n_values;
    }
    if (rc != 0 && rc != QT_ENOMEM)
        qt_log(QT_LOG_ERROR, "compact: %s: damaged block near offset %" PRIu64 ": %s (%s)",
               c->in[e0->in]->path, e0->e.ts_block_off, qt_strerror(rc), qt_err_detail());
    return rc;
}

/* Drop rows without any value; check strictly ascending time. */
static int
cm_src_pack(struct cm_src *s)
{
    qt_assert(s->nrows <= W);
    qt_assert(s->ncols > 0);
    uint32_t k = 0;
    for (uint32_t r = 0; r < s->nrows; r++) {
        bool any = false;
        for (uint32_t j = 0; j < s->ncols && !any; j++)
            any = s->pres[(size_t)j * W + r] != 0;
        if (!any)
            continue;
        if (k > 0 && s->ts[r] <= s->ts[k - 1])
            return qt_fail(QT_ECORRUPT, "compact: TS block not strictly ascending");
        if (k != r) {
            s->ts[k] = s->ts[r];
            for (uint32_t j = 0; j < s->ncols; j++) {
                s->pres[(size_t)j * W + k] = s->pres[(size_t)j * W + r];
                s->val[(size_t)j * W + k] = s->val[(size_t)j * W + r];
            }
        }
        k++;
    }
    s->nrows = k;
    return 0;
}

/* Decode row block rb into a free source; a source with no rows is not kept. */
static int
cm_src_open(struct cm *c, const struct cm_rb *rb)
{
    qt_assert(rb != NULL);
    qt_assert(rb->ne > 0);
    struct cm_src *s = cm_src_alloc(c, rb->ne);
    if (s == NULL)
        return c->nsrcs == QT_COMPACT_SOURCES_MAX
                   ? qt_fail(QT_ELIMIT, "compact: too many overlapping blocks "
                                        "(QT_COMPACT_SOURCES_MAX)")
                   : QT_ENOMEM;
    s->alen = 0;
    s->ncols = rb->ne;
    s->prec = rb->prec;
    int rc = cm_src_decode(c, s, rb);
    if (rc == 0)
        rc = cm_src_pack(s);
    if (rc == 0 && s->nrows > 0) {
        s->in_use = true;
        s->pos = 0;
        c->nopen++;
    }
    return rc;
}

static void
cm_src_advance(struct cm *c, struct cm_src *s, uint32_t n)
{
    qt_assert(s->in_use);
    qt_assert(s->pos + n <= s->nrows);
    s->pos += n;
    if (s->pos == s->nrows) {
        s->in_use = false;
        c->nopen--;
    }
}

/* ---- output window ----------------------------------------------------------- */

static int
cm_window_flush(struct cm *c, const struct cm_key *g)
{
    qt_assert(c->wn <= W);
    qt_assert(g != NULL);
    if (c->wn == 0)
        return 0;
    uint32_t k = 0;
    for (uint32_t j = 0; j < c->ncols; j++) {
        const struct cm_col *col = &c->cols[j];
        if (memchr(col->present, 1, c->wn) == NULL)
            continue;
        c->wcols[k++] = (struct qt_segw_col){.series_id = col->k->series_id,
                                             .vtype = col->k->vtype,
                                             .key = (const char *)col->k->key,
                                             .key_len = col->k->key_len,
                                             .group_len = col->k->group_len,
                                             .vals = col->vals,
                                             .present = col->present,
                                             .arena = c->oarena};
    }
    qt_assert(k > 0);
    int rc = qt_segw_add_group(c->w, g->group_id, (const char *)g->k->key, g->k->group_len,
                               c->out_ts, c->wn, c->wcols, k);
    c->wn = 0;
    c->oalen = 0;
    return rc;
}

static uint32_t
cm_count_present(const struct cm_src *s, uint32_t r0, uint32_t n)
{
    qt_assert(r0 + n <= s->nrows);
    uint32_t k = 0;
    for (uint32_t j = 0; j < s->ncols; j++) {
        const uint8_t *p = s->pres + (size_t)j * W + r0;
        for (uint32_t r = 0; r < n; r++)
            k += p[r];
    }
    return k;
}

/* Copy rows [pos, pos + n) of the only open source into the window. */
static int
cm_copy_rows(struct cm *c, struct cm_src *s, uint32_t n)
{
    qt_assert(n > 0 && c->wn + n <= W);
    qt_assert(s->pos + n <= s->nrows);
    uint32_t r0 = s->pos, w0 = c->wn;
    memcpy(c->out_ts + w0, s->ts + r0, (size_t)n * sizeof(*c->out_ts));
    for (uint32_t j = 0; j < c->ncols; j++)
        memset(c->cols[j].present + w0, 0, n);
    for (uint32_t j = 0; j < s->ncols; j++) {
        struct cm_col *col = &c->cols[s->col[j]];
        const uint8_t *pres = s->pres + (size_t)j * W + r0;
        const union qt_value *val = s->val + (size_t)j * W + r0;
        memcpy(col->present + w0, pres, n);
        memcpy(col->vals + w0, val, (size_t)n * sizeof(*val));
        for (uint32_t r = 0; col->k->vtype == QT_VT_STRING && r < n; r++) {
            if (!pres[r])
                continue;
            int rc = cm_arena_put(&c->oarena, &c->oalen, &c->oacap, s->arena + val[r].s.off,
                                  val[r].s.len, &col->vals[w0 + r].s.off);
            if (rc != 0)
                return rc;
        }
    }
    c->points_out += cm_count_present(s, r0, n);
    c->wn += n;
    return 0;
}

/* Bulk step: the only open source, rows before `limit` (next source start). */
static int
cm_bulk(struct cm *c, struct cm_src *s, int64_t limit)
{
    qt_assert(s->in_use);
    qt_assert(c->wn < W);
    uint32_t skip = 0;
    while (s->pos + skip < s->nrows && s->ts[s->pos + skip] < c->cutoff &&
           s->ts[s->pos + skip] < limit)
        skip++;
    if (skip > 0) {
        c->points_trimmed += cm_count_present(s, s->pos, skip);
        cm_src_advance(c, s, skip);
        return 0;
    }
    uint32_t room = W - c->wn, n = 0;
    while (n < room && s->pos + n < s->nrows && s->ts[s->pos + n] < limit)
        n++;
    qt_assert(n > 0);
    int rc = cm_copy_rows(c, s, n);
    cm_src_advance(c, s, n);
    return rc;
}

/* One merged row at timestamp cur from every open source holding it. */
static int
cm_row(struct cm *c, int64_t cur)
{
    qt_assert(c->wn < W);
    qt_assert(c->nopen >= 2);
    bool keep = cur >= c->cutoff;
    uint32_t w = c->wn;
    for (uint32_t j = 0; j < c->ncols; j++)
        c->cols[j].present[w] = 0;
    for (uint32_t i = 0; i < c->nsrcs; i++) {
        struct cm_src *s = &c->srcs[i];
        if (!s->in_use || s->ts[s->pos] != cur)
            continue;
        for (uint32_t j = 0; j < s->ncols; j++) {
            uint32_t col = s->col[j];
            if (!s->pres[(size_t)j * W + s->pos])
                continue;
            if (!keep) {
                c->points_trimmed++;
                continue;
            }
            if (c->cols[col].present[w] && c->best[col] > s->prec)
                continue;
            union qt_value v = s->val[(size_t)j * W + s->pos];
            if (c->cols[col].k->vtype == QT_VT_STRING) {
                int rc = cm_arena_put(&c->oarena, &c->oalen, &c->oacap, s->arena + v.s.off, v.s.len,
                                      &v.s.off);
                if (rc != 0)
                    return rc;
            }
            c->points_out += !c->cols[col].present[w];
            c->cols[col].present[w] = 1;
            c->cols[col].vals[w] = v;
            c->best[col] = s->prec;
        }
        cm_src_advance(c, s, 1);
    }
    if (keep) {
        c->out_ts[w] = cur;
        c->wn++;
    }
    return 0;
}

/* Merge the group's row blocks into the writer. */
static int
cm_merge_group(struct cm *c, const struct cm_key *g)
{
    qt_assert(c->ncols > 0);
    qt_assert(c->w != NULL);
    uint32_t p = 0;
    int rc = 0;
    c->nopen = 0;
    c->wn = 0;
    c->oalen = 0;
    while (rc == 0) {
        int64_t cur = INT64_MAX;
        struct cm_src *only = NULL;
        for (uint32_t i = 0; i < c->nsrcs; i++) {
            struct cm_src *s = &c->srcs[i];
            if (s->in_use && s->ts[s->pos] < cur)
                cur = s->ts[s->pos];
            if (s->in_use)
                only = s;
        }
        if (p < c->nrbs && c->rbs[p].tmin <= cur) {
            rc = cm_src_open(c, &c->rbs[p++]);
            continue;
        }
        if (c->nopen == 0)
            break;
        int64_t limit = p < c->nrbs ? c->rbs[p].tmin : INT64_MAX;
        rc = c->nopen == 1 ? cm_bulk(c, only, limit) : cm_row(c, cur);
        if (rc == 0 && c->wn == W)
            rc = cm_window_flush(c, g);
    }
    if (rc == 0)
        rc = cm_window_flush(c, g);
    for (uint32_t i = 0; i < c->nsrcs; i++)
        c->srcs[i].in_use = false;
    return rc;
}

static int
cm_run(struct cm *c)
{
    qt_assert(c->w != NULL);
    int rc = cm_load_keys(c);
    if (rc == 0)
        rc = cm_load_images(c);
    c->out_ts = rc == 0 ? qt_malloc(W * sizeof(*c->out_ts)) : NULL;
    if (rc == 0 && c->out_ts == NULL)
        rc = QT_ENOMEM;
    for (uint32_t a = 0; a < c->nall && rc == 0;) {
        uint32_t b = a + 1;
        while (b < c->nall && c->all[b].group_id == c->all[a].group_id)
            b++;
        if (qt_ops_cancelled(&c->o->ctl))
            rc = qt_fail(QT_ECLOSED, "compact: interrupted");
        if (rc == 0)
            rc = cm_group_cols(c, a, b);
        if (rc == 0)
            rc = cm_group_entries(c, a, b);
        if (rc == 0)
            rc = cm_group_rbs(c);
        c->cutoff = db_ops_cutoff(c->db, c->all[a].k->key, c->all[a].k->group_len, c->o->now_ns);
        if (rc == 0)
            rc = cm_merge_group(c, &c->all[a]);
        qt_ops_progress(&c->o->ctl, c->points_done, c->points_total);
        a = b;
    }
    return rc;
}

/* ---- one shard -------------------------------------------------------------------- */

struct cm_plan {
    struct db_seg **in; /* referenced */
    uint32_t nin;
    uint64_t seq;
    uint64_t bytes;
    uint32_t level;
};

static void
cm_plan_release(struct qt_db *db, int64_t shard, struct cm_plan *p, bool busy)
{
    for (uint32_t i = 0; i < p->nin; i++)
        db_seg_put(p->in[i]);
    qt_free(p->in);
    p->in = NULL;
    if (busy)
        db_ops_busy_drop(db, shard);
}

/* Step 1 (flush_mu held): inputs, output seq, busy mark.  1 = nothing to do. */
static int
cm_prepare(struct qt_db *db, const struct qt_compact_opts *o, int64_t shard, struct cm_plan *p)
{
    qt_assert(p->in == NULL && p->nin == 0);
    if (db_is_readonly(db))
        return qt_fail(QT_EREADONLY, db->ro_reason);
    struct db_version *v = db_version_get(db);
    uint32_t n = 0;
    int rc = 0;
    for (uint32_t i = 0; i < v->nsegs && rc == 0; i++) {
        if (v->segs[i]->m.shard_start_ns != shard)
            continue;
        if (v->segs[i]->r == NULL)
            rc = qt_fail(QT_ECORRUPT, "compact: the shard has a damaged segment (run qtdb verify "
                                      "--quarantine)");
        n++;
    }
    bool gain =
        n >= 2 || (n == 1 && (o->force || db_ops_expired_points(db, v, shard, o->now_ns) > 0));
    if (rc == 0 && n == 0)
        rc = qt_fail(QT_ENOTFOUND, "compact: no such shard");
    if (rc == 0 && !gain)
        rc = 1;
    if (rc == 0)
        rc = db_ops_busy_take(db, shard);
    p->in = rc == 0 ? qt_calloc(n, sizeof(*p->in)) : NULL;
    if (rc == 0 && p->in == NULL) {
        db_ops_busy_drop(db, shard);
        rc = QT_ENOMEM;
    }
    for (uint32_t i = 0; i < v->nsegs && rc == 0; i++) {
        struct db_seg *s = v->segs[i];
        if (s->m.shard_start_ns != shard)
            continue;
        atomic_fetch_add(&s->refs, 1);
        p->in[p->nin++] = s;
        p->bytes += s->m.file_bytes;
        p->level = s->m.level + 1 > p->level ? s->m.level + 1 : p->level;
    }
    if (rc == 0)
        p->seq = db->mhdr.next_segment_seq++; /* see compact.h: the precedence rule */
    db_version_put(v);
    return rc;
}

static int
cm_check_space(struct qt_db *db, int64_t shard, uint64_t need, uint64_t keep)
{
    qt_assert(db != NULL);
    char dir[PATH_MAX];
    int rc = db_shard_dir(db, shard, dir, sizeof(dir));
    struct statvfs st;
    if (rc == 0 && statvfs(dir, &st) != 0)
        rc = -errno;
    if (rc != 0)
        return rc;
    uint64_t avail = (uint64_t)st.f_bavail * st.f_frsize;
    uint64_t margin = keep > QT_COMPACT_SPACE_MARGIN ? keep : QT_COMPACT_SPACE_MARGIN;
    if (avail >= need && avail - need >= margin)
        return 0;
    qt_log(QT_LOG_ERROR,
           "compact: shard %" PRId64 ": %" PRIu64 " bytes free, the output may need %" PRIu64
           " (+%u kept free)",
           shard, avail, need, (unsigned)(margin > UINT32_MAX ? UINT32_MAX : margin));
    return qt_fail(-ENOSPC, "compact: not enough free disk for the output (it needs up to the "
                            "shard's size until the inputs are deleted)");
}

/* Step 3: finish the output, move it into place, open it.  *out NULL when
 * nothing is left (every point past retention). */
static int
cm_finish(struct cm *c, const struct cm_plan *p, const char *tmp, struct db_seg **out)
{
    qt_assert(c->w != NULL);
    qt_assert(p->seq != 0);
    *out = NULL;
    if (qt_segw_points(c->w) == 0) {
        qt_segw_abort(c->w);
        c->w = NULL;
        return 0;
    }
    struct qt_segw_result res;
    int rc = qt_segw_finish(c->w, &res);
    c->w = NULL;
    struct db_seg *s = rc == 0 ? qt_calloc(1, sizeof(*s)) : NULL;
    if (rc == 0 && s == NULL)
        rc = QT_ENOMEM;
    char dir[PATH_MAX];
    if (rc == 0)
        rc = db_seg_path(c->db, c->shard, p->seq, "", s->path, sizeof(s->path));
    if (rc == 0)
        rc = qt_io_rename(c->db->io, tmp, s->path);
    if (rc == 0)
        rc = db_shard_dir(c->db, c->shard, dir, sizeof(dir));
    if (rc == 0)
        rc = qt_io_fsync_dir(c->db->io, dir);
    if (rc == 0)
        rc = qt_segr_open(c->db->io, s->path, res.file_bytes, &s->r);
    if (rc != 0) {
        if (s != NULL && s->path[0] != '\0')
            qt_io_unlink(c->db->io, s->path);
        qt_io_unlink(c->db->io, tmp);
        qt_free(s);
        return rc;
    }
    atomic_store(&s->refs, 1);
    s->m = (struct qt_manifest_seg){.shard_start_ns = c->shard,
                                    .seq = p->seq,
                                    .file_bytes = res.file_bytes,
                                    .file_xxh3 = res.file_xxh3,
                                    .ts_min = res.ts_min,
                                    .ts_max = res.ts_max,
                                    .points = res.points,
                                    .series = res.series,
                                    .level = p->level};
    *out = s;
    return 0;
}

static void
cm_discard(struct qt_db *db, struct db_seg *s)
{
    if (s == NULL)
        return;
    qt_segr_close(s->r);
    s->r = NULL;
    qt_io_unlink(db->io, s->path); /* not listed: open would remove it anyway */
    qt_free(s);
}

/* Steps 2-4 for a prepared shard. */
static int
cm_shard_run(struct qt_db *db, const struct qt_compact_opts *o, int64_t shard, struct cm_plan *p,
             struct qt_compact_result *r)
{
    qt_assert(p->nin > 0);
    qt_assert(r != NULL);
    struct cm c = {.db = db, .o = o, .shard = shard, .nin = p->nin, .in = p->in};
    for (uint32_t i = 0; i < p->nin; i++)
        c.points_total += p->in[i]->m.points;
    char tmp[PATH_MAX];
    int rc = cm_check_space(db, shard, p->bytes, o->min_free_bytes);
    if (rc == 0)
        rc = db_seg_path(db, shard, p->seq, ".tmp", tmp, sizeof(tmp));
    if (rc == 0)
        rc = qt_segw_create(db->io, tmp, shard, db->ops->shard_dur, p->seq, &c.w);
    if (rc == 0)
        rc = cm_run(&c);
    struct db_seg *out = NULL;
    if (rc == 0)
        rc = cm_finish(&c, p, tmp, &out);
    if (rc == 0 && o->before_commit != NULL)
        o->before_commit(o->hook_arg);
    if (rc == 0 && qt_ops_cancelled(&o->ctl))
        rc = qt_fail(QT_ECLOSED, "compact: interrupted");
    uint64_t bytes_out = out != NULL ? out->m.file_bytes : 0;
    if (rc == 0) {
        pthread_mutex_lock(&db->flush_mu);
        /* Same raw points, new seqs: a current rollup record stays current
         * unless the merge trimmed points (retention). */
        bool carry = c.points_trimmed == 0 && db_rollup_current(db, shard);
        rc = db_ops_commit(db, p->in, p->nin, out, true);
        if (rc == 0 && carry)
            db_rollup_carry(db, shard);
        pthread_mutex_unlock(&db->flush_mu);
        if (rc == 0 && carry)
            db_rollup_persist(db); /* failure logged; conservative */
        if (rc == 0 || db_is_readonly(db)) {
            /* Committed (the version owns out), or the MANIFEST write failed
             * and its fate is unknown: the file must stay for open to judge. */
            if (rc != 0 && out != NULL) {
                qt_segr_close(out->r);
                qt_free(out);
            }
            out = NULL;
        }
    }
    cm_discard(db, out);
    cm_free(&c);
    if (rc != 0)
        return rc;
    r->shards++;
    r->points_in += c.points_total;
    r->points_out += c.points_out;
    r->points_trimmed += c.points_trimmed;
    r->segments_in += p->nin;
    r->bytes_in += p->bytes;
    r->bytes_out += bytes_out;
    if (c.points_trimmed > 0)
        qt_lc_reset(db->lc); /* cached last points may have been trimmed */
    struct db_ops *ops = db->ops;
    atomic_fetch_add(&ops->compactions, 1);
    atomic_fetch_add(&ops->cpoints_in, c.points_total);
    atomic_fetch_add(&ops->cpoints_out, c.points_out);
    atomic_fetch_add(&ops->cpoints_trimmed, c.points_trimmed);
    atomic_fetch_add(&ops->cbytes_in, p->bytes);
    atomic_fetch_add(&ops->cbytes_out, bytes_out);
    qt_log(QT_LOG_INFO,
           "compact: shard %" PRId64 ": %u segments, %" PRIu64 " points -> %" PRIu64
           " points (%" PRIu64 " past retention), %" PRIu64 " -> %" PRIu64 " bytes",
           shard, p->nin, c.points_total, c.points_out, c.points_trimmed, p->bytes, bytes_out);
    return 0;
}

static int
cm_shard(struct qt_db *db, const struct qt_compact_opts *o, int64_t shard,
         struct qt_compact_result *r)
{
    qt_assert(db->ops != NULL);
    struct cm_plan p = {0};
    pthread_mutex_lock(&db->flush_mu);
    int rc = cm_prepare(db, o, shard, &p);
    pthread_mutex_unlock(&db->flush_mu);
    if (rc == 1) {
        r->shards_skipped++;
        return 0;
    }
    if (rc != 0)
        return rc;
    rc = cm_shard_run(db, o, shard, &p, r);
    if (rc != 0)
        atomic_fetch_add(&db->ops->cfailures, 1); /* the caller reports it */
    cm_plan_release(db, shard, &p, true);
    return rc;
}

/* Distinct shard starts of the current version. */
static int
cm_shard_list(struct qt_db *db, int64_t **out, uint32_t *n)
{
    struct db_version *v = db_version_get(db);
    *n = 0;
    *out = qt_malloc((v->nsegs + 1u) * sizeof(**out));
    int rc = *out == NULL ? QT_ENOMEM : 0;
    for (uint32_t i = 0; rc == 0 && i < v->nsegs; i++) {
        if (*n == 0 || (*out)[*n - 1] != v->segs[i]->m.shard_start_ns)
            (*out)[(*n)++] = v->segs[i]->m.shard_start_ns;
    }
    db_version_put(v);
    return rc;
}

int
qt_db_compact(struct qt_db *db, const struct qt_compact_opts *o, struct qt_compact_result *res)
{
    qt_assert(db != NULL);
    qt_assert(o != NULL);
    struct qt_compact_opts oo = *o;
    if (oo.now_ns == 0)
        oo.now_ns = db_ops_wall_ns();
    struct qt_compact_result r = {0};
    int64_t t0 = db_now_ms();
    int rc = 0;
    if (!oo.all) {
        rc = cm_shard(db, &oo, oo.shard_start, &r);
    } else {
        int64_t *shards = NULL;
        uint32_t n = 0;
        rc = cm_shard_list(db, &shards, &n);
        for (uint32_t i = 0; i < n && rc == 0; i++) {
            rc = qt_ops_cancelled(&oo.ctl) ? qt_fail(QT_ECLOSED, "compact: interrupted")
                                           : cm_shard(db, &oo, shards[i], &r);
            if (rc == QT_ENOTFOUND)
                rc = 0; /* dropped by retention meanwhile */
        }
        qt_free(shards);
    }
    r.ns = (uint64_t)(db_now_ms() - t0) * 1000000u;
    if (res != NULL)
        *res = r;
    return rc;
}

/* ---- shard listing ---------------------------------------------------------------- */

static int
cm_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y);
}

/* Distinct series of segs[i, j) (their key tables). */
static uint64_t
cm_shard_series(struct db_seg *const *segs, uint32_t i, uint32_t j)
{
    qt_assert(i < j);
    uint64_t total = 0;
    for (uint32_t k = i; k < j; k++)
        total += segs[k]->m.series;
    uint64_t *ids = qt_malloc((total + 1) * sizeof(*ids));
    if (ids == NULL)
        return 0;
    uint64_t n = 0;
    for (uint32_t k = i; k < j; k++) {
        struct qt_seg_key *keys;
        uint8_t *buf;
        uint32_t nk;
        if (segs[k]->r == NULL || qt_segr_keys(segs[k]->r, &keys, &nk, &buf) != 0)
            continue;
        for (uint32_t x = 0; x < nk && n < total; x++)
            ids[n++] = keys[x].series_id;
        qt_segr_keys_free(keys, buf);
    }
    qsort(ids, n, sizeof(*ids), cm_u64_cmp);
    uint64_t d = 0;
    for (uint64_t x = 0; x < n; x++)
        d += x == 0 || ids[x] != ids[x - 1];
    qt_free(ids);
    return d;
}

static void
cm_shard_info(struct qt_db *db, struct db_version *v, uint32_t i, uint32_t j, int64_t now,
              struct qt_shard_info *si)
{
    qt_assert(i < j && j <= v->nsegs);
    int64_t dur = db->ops->shard_dur;
    int64_t start = v->segs[i]->m.shard_start_ns;
    *si = (struct qt_shard_info){.start_ns = start,
                                 .end_ns = start > INT64_MAX - dur ? INT64_MAX : start + dur,
                                 .ts_min = INT64_MAX,
                                 .ts_max = INT64_MIN};
    for (uint32_t k = i; k < j; k++) {
        const struct db_seg *s = v->segs[k];
        si->segments++;
        si->damaged += s->r == NULL;
        si->points += s->m.points;
        si->bytes += s->m.file_bytes;
        si->level_max = s->m.level > si->level_max ? s->m.level : si->level_max;
        si->ts_min = s->m.ts_min < si->ts_min ? s->m.ts_min : si->ts_min;
        si->ts_max = s->m.ts_max > si->ts_max ? s->m.ts_max : si->ts_max;
        int64_t created = s->r != NULL ? qt_segr_header(s->r)->created_ns : 0;
        si->last_write_ns = created > si->last_write_ns ? created : si->last_write_ns;
        if (s->m.level > 0 && created > si->last_compaction_ns)
            si->last_compaction_ns = created;
    }
    si->series = cm_shard_series(v->segs, i, j);
    si->bytes_per_point = si->points > 0 ? (double)si->bytes / (double)si->points : 0.0;
    int64_t idle_ns = db->ops != NULL ? (int64_t)db->ops->idle_ms * 1000000 : 0;
    bool sealed = now >= si->end_ns && now - si->last_write_ns >= idle_ns;
    si->state = db->ops != NULL && db_ops_busy(db, start) ? QT_SHARD_COMPACTING
                : sealed                                  ? QT_SHARD_SEALED
                                                          : QT_SHARD_ACTIVE;
}

int
qt_db_shards(struct qt_db *db, struct qt_shard_info **out, uint32_t *n)
{
    qt_assert(out != NULL);
    qt_assert(n != NULL);
    struct db_version *v = db_version_get(db);
    *out = NULL;
    *n = 0;
    uint32_t cap = 0;
    for (uint32_t i = 0; i < v->nsegs; i++)
        cap += i == 0 || v->segs[i]->m.shard_start_ns != v->segs[i - 1]->m.shard_start_ns;
    struct qt_shard_info *si = cap > 0 ? qt_calloc(cap, sizeof(*si)) : NULL;
    if (cap > 0 && si == NULL) {
        db_version_put(v);
        return QT_ENOMEM;
    }
    int64_t now = db_ops_wall_ns();
    for (uint32_t i = 0; i < v->nsegs;) {
        uint32_t j = i + 1;
        while (j < v->nsegs && v->segs[j]->m.shard_start_ns == v->segs[i]->m.shard_start_ns)
            j++;
        cm_shard_info(db, v, i, j, now, &si[(*n)++]);
        i = j;
    }
    db_version_put(v);
    *out = si;
    return 0;
}
