/*
 * scan.c -- merged, time-ordered iteration over one series (see scan.h).
 *
 * Sources: the index entries (blocks) of the series in every live segment,
 * sorted by ts_min; and the series' rows in the frozen and active
 * memtables, merged into one sorted array (active wins ties).  Precedence
 * for equal timestamps: memtable > segment with higher seq > lower seq.
 *
 * The iterator alternates between two modes:
 *   - clear: no decoded block is open.  If the next block ends before the
 *     next other data starts (next block, next memtable point) it is
 *     exclusive and is yielded as STATS (inside the range) or decoded
 *     alone; memtable points before the next block are yielded directly.
 *   - merge: overlapping sources are decoded and merged point by point
 *     (every block that starts at or before the current timestamp is
 *     opened), until no decoded block remains open.
 * Invariant: every point before the last one yielded has been consumed from
 * every source, so chunks are ascending and never overlap.
 */
#include "scan.h"

#include "db_int.h"
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "storage/segreader.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_PREC_MEM UINT64_MAX

struct scan_item {
    struct qt_seg_entry e;
    struct db_seg *seg;
};

struct scan_src {
    struct qt_blockbuf bb;
    int64_t *ts;
    union qt_value *vals;
    struct qt_str *strs;
    uint32_t n, pos;
    uint64_t prec;
    bool in_use;
};

struct qt_scan {
    struct qt_db *db;
    struct db_version *v;
    struct qt_scan_opts o;
    enum qt_vtype vtype;
    struct scan_item *items;
    uint32_t nitems, p;
    const struct scan_item *last_stats;
    int64_t *mts;
    union qt_value *mvals;
    char *marena;
    uint32_t nmem, mi;
    struct scan_src srcs[QT_SCAN_SOURCES_MAX];
    uint32_t nsrcs; /* pool size; in_use marks the open ones */
    uint32_t nactive;
    char *arena;
    size_t arena_len, arena_cap;
    struct qt_scan_counters cnt;
    int64_t out_ts[QT_BLOCK_POINTS_MAX];
    union qt_value out_vals[QT_BLOCK_POINTS_MAX];
};

/* ---- setup --------------------------------------------------------------- */

static int
item_cmp(const void *a, const void *b)
{
    const struct scan_item *x = a, *y = b;
    if (x->e.ts_min != y->e.ts_min)
        return x->e.ts_min < y->e.ts_min ? -1 : 1;
    return x->seg->m.seq < y->seg->m.seq ? -1 : (x->seg->m.seq > y->seg->m.seq);
}

static int
scan_collect_items(struct qt_scan *s, uint64_t id)
{
    struct qt_seg_entries l = {0};
    uint32_t cap = 0;
    int rc = 0;
    for (uint32_t i = 0; i < s->v->nsegs && rc == 0; i++) {
        struct db_seg *seg = s->v->segs[i];
        if (seg->r == NULL || seg->m.ts_max < s->o.t0 || seg->m.ts_min >= s->o.t1)
            continue;
        l.n = 0;
        rc = qt_segr_find(seg->r, id, s->o.t0, s->o.t1, &l);
        if (rc == 0 && s->nitems + l.n > cap) {
            cap = (s->nitems + l.n) * 2 + 8;
            struct scan_item *it = qt_realloc(s->items, cap * sizeof(*it));
            rc = it == NULL ? QT_ENOMEM : 0;
            if (it != NULL)
                s->items = it;
        }
        for (uint32_t k = 0; rc == 0 && k < l.n; k++)
            s->items[s->nitems++] = (struct scan_item){.e = l.v[k], .seg = seg};
    }
    qt_seg_entries_free(&l);
    if (rc == 0 && s->nitems > 1)
        qsort(s->items, s->nitems, sizeof(*s->items), item_cmp);
    return rc;
}

/* Append v (a string is copied from `from`) to a growable arena. */
static int
arena_put(char **arena, size_t *len, size_t *cap, const char *p, uint32_t n, uint32_t *off)
{
    if (*cap - *len < n) {
        size_t ncap = *cap == 0 ? 1024 : *cap;
        while (ncap - *len < n)
            ncap *= 2;
        char *a = qt_realloc(*arena, ncap);
        if (a == NULL)
            return QT_ENOMEM;
        *arena = a;
        *cap = ncap;
    }
    memcpy(*arena + *len, p, n);
    *off = (uint32_t)*len;
    *len += n;
    return 0;
}

/* Merge the series' column of one memtable into mts/mvals (rows of `m`
 * win ties against what is already there: call oldest memtable first). */
static int
scan_mem_merge(struct qt_scan *s, struct qt_memtable *m, uint32_t gid, uint32_t sid)
{
    struct qt_mem_group_rows rows;
    int rc = qt_mem_collect_group(m, gid, s->o.t0, s->o.t1, &rows);
    if (rc == QT_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    const struct qt_mem_col *col = NULL;
    for (uint32_t c = 0; c < rows.ncols; c++)
        col = rows.cols[c].sid == sid ? &rows.cols[c] : col;
    uint32_t add = col != NULL ? col->npresent : 0;
    int64_t *ts = add ? qt_malloc((s->nmem + add) * sizeof(*ts)) : NULL;
    union qt_value *vals = add ? qt_malloc((s->nmem + add) * sizeof(*vals)) : NULL;
    if (add > 0 && (ts == NULL || vals == NULL))
        rc = QT_ENOMEM;
    size_t alen = 0, acap = 0;
    char *arena = NULL;
    uint32_t i = 0, j = 0, k = 0;
    while (rc == 0 && add > 0 && (i < s->nmem || j < rows.nrows)) {
        while (j < rows.nrows && !col->present[j])
            j++;
        bool take_new = j < rows.nrows && (i >= s->nmem || rows.ts[j] <= s->mts[i]);
        if (!take_new && i >= s->nmem)
            break;
        bool from_new = take_new;
        union qt_value v = from_new ? col->vals[j] : s->mvals[i];
        ts[k] = from_new ? rows.ts[j] : s->mts[i];
        if (from_new && i < s->nmem && s->mts[i] == rows.ts[j])
            i++; /* newer memtable replaces the same timestamp */
        if (s->vtype == QT_VT_STRING) {
            const char *src = (from_new ? rows.arena : s->marena) + v.s.off;
            rc = arena_put(&arena, &alen, &acap, src, v.s.len, &v.s.off);
        }
        vals[k++] = v;
        if (from_new)
            j++;
        else
            i++;
    }
    if (rc == 0 && add > 0) {
        qt_free(s->mts);
        qt_free(s->mvals);
        qt_free(s->marena);
        s->mts = ts;
        s->mvals = vals;
        s->marena = arena;
        s->nmem = k;
    } else {
        qt_free(ts);
        qt_free(vals);
        qt_free(arena);
    }
    qt_mem_rows_free(&rows);
    return rc;
}

int
qt_scan_open(struct qt_db *db, uint32_t sid, const struct qt_scan_opts *o, struct qt_scan **out)
{
    qt_assert(o != NULL);
    struct qt_catalog_series si;
    int rc = qt_catalog_series_info(qt_db_catalog(db), sid, &si);
    if (rc != 0)
        return rc;
    /* Only the bookkeeping is zeroed: the 128 KiB output arrays are written
     * before they are read, and zeroing them cost a page-faulting memset on
     * every scan (half the CPU of a statistics-only aggregate). */
    struct qt_scan *s = qt_malloc(sizeof(*s));
    if (s == NULL)
        return QT_ENOMEM;
    memset(s, 0, offsetof(struct qt_scan, out_ts));
    s->db = db;
    s->o = *o;
    s->vtype = si.vtype;
    s->v = db_version_get(db);
    if (o->t0 < o->t1) {
        rc = scan_collect_items(s, si.id);
        if (rc == 0 && s->v->imm != NULL)
            rc = scan_mem_merge(s, s->v->imm->m, si.gid, sid);
        if (rc == 0)
            rc = scan_mem_merge(s, s->v->active->m, si.gid, sid);
    }
    if (rc != 0) {
        qt_scan_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void
qt_scan_close(struct qt_scan *s)
{
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->nsrcs; i++) {
        qt_blockbuf_deinit(&s->srcs[i].bb);
        qt_free(s->srcs[i].ts);
        qt_free(s->srcs[i].vals);
        qt_free(s->srcs[i].strs);
    }
    qt_free(s->items);
    qt_free(s->mts);
    qt_free(s->mvals);
    qt_free(s->marena);
    qt_free(s->arena);
    db_version_put(s->v);
    qt_free(s);
}

void
qt_scan_get_counters(const struct qt_scan *s, struct qt_scan_counters *out)
{
    *out = s->cnt;
}

/* ---- sources ------------------------------------------------------------- */

static struct scan_src *
src_alloc(struct qt_scan *s)
{
    for (uint32_t i = 0; i < s->nsrcs; i++) {
        if (!s->srcs[i].in_use)
            return &s->srcs[i];
    }
    if (s->nsrcs == QT_SCAN_SOURCES_MAX)
        return NULL;
    struct scan_src *src = &s->srcs[s->nsrcs];
    memset(src, 0, sizeof(*src));
    src->ts = qt_malloc(QT_BLOCK_POINTS_MAX * sizeof(*src->ts));
    src->vals = qt_malloc(QT_BLOCK_POINTS_MAX * sizeof(*src->vals));
    src->strs = qt_malloc(QT_BLOCK_POINTS_MAX * sizeof(*src->strs));
    if (src->ts == NULL || src->vals == NULL || src->strs == NULL ||
        qt_blockbuf_init(&src->bb) != 0) {
        qt_free(src->ts);
        qt_free(src->vals);
        qt_free(src->strs);
        return NULL;
    }
    s->nsrcs++;
    return src;
}

/* Decode item it into a free source. */
static int
src_open(struct qt_scan *s, const struct scan_item *it, struct scan_src **out)
{
    struct scan_src *src = src_alloc(s);
    if (src == NULL)
        return qt_fail(QT_ELIMIT, "scan: too many overlapping blocks (QT_SCAN_SOURCES_MAX)");
    int rc = qt_segr_read(it->seg->r, &it->e, &src->bb);
    if (rc != 0)
        return rc;
    const struct qt_blockbuf *bb = &src->bb;
    uint32_t k = 0;
    for (uint32_t r = 0; r < bb->n_rows; r++) {
        if (!bb->present[r])
            continue;
        src->ts[k] = bb->ts[r];
        switch (bb->vtype) {
        case QT_VT_FLOAT: src->vals[k].f = bb->v.f64[k]; break;
        case QT_VT_INT: src->vals[k].i = bb->v.i64[k]; break;
        case QT_VT_BOOL: src->vals[k].i = bb->v.b[k]; break;
        default: src->strs[k] = bb->v.s[k]; break;
        }
        k++;
    }
    qt_assert(k == bb->n_values);
    src->n = k;
    src->pos = 0;
    src->prec = it->seg->m.seq;
    src->in_use = true;
    s->nactive++;
    s->cnt.blocks_decoded++;
    s->cnt.points_decoded += k;
    *out = src;
    return 0;
}

static void
src_close(struct qt_scan *s, struct scan_src *src)
{
    qt_assert(src->in_use);
    src->in_use = false;
    s->nactive--;
}

/* Emit one point into the output at index n (strings copied to the arena). */
static int
emit(struct qt_scan *s, uint32_t n, int64_t ts, union qt_value v, const char *sp)
{
    s->out_ts[n] = ts;
    if (s->vtype == QT_VT_STRING) {
        int rc = arena_put(&s->arena, &s->arena_len, &s->arena_cap, sp, v.s.len, &v.s.off);
        if (rc != 0)
            return rc;
    }
    s->out_vals[n] = v;
    return 0;
}

static union qt_value
src_value(const struct qt_scan *s, const struct scan_src *src, uint32_t i, const char **sp)
{
    union qt_value v = src->vals[i];
    if (s->vtype == QT_VT_STRING) {
        v.s.off = 0;
        v.s.len = src->strs[i].len;
        *sp = src->strs[i].p;
    }
    return v;
}

static void
chunk_points(struct qt_scan *s, struct qt_chunk *c, uint32_t n)
{
    memset(c, 0, sizeof(*c));
    c->kind = QT_CHUNK_POINTS;
    c->vtype = s->vtype;
    c->n = n;
    c->ts_min = s->out_ts[0];
    c->ts_max = s->out_ts[n - 1];
    c->ts = s->out_ts;
    c->vals = s->out_vals;
    c->arena = s->arena;
}

/* Emit the points of one (exclusive) source inside the range. */
static int
emit_source(struct qt_scan *s, struct scan_src *src, uint32_t *n)
{
    int rc = 0;
    for (uint32_t i = 0; i < src->n && rc == 0; i++) {
        if (src->ts[i] < s->o.t0 || src->ts[i] >= s->o.t1)
            continue;
        const char *sp = NULL;
        union qt_value v = src_value(s, src, i, &sp);
        rc = emit(s, (*n)++, src->ts[i], v, sp);
    }
    src_close(s, src);
    return rc;
}

/* Memtable points with ts < limit, up to a full chunk. */
static int
emit_mem(struct qt_scan *s, int64_t limit, uint32_t *n)
{
    int rc = 0;
    while (rc == 0 && s->mi < s->nmem && s->mts[s->mi] < limit && *n < QT_BLOCK_POINTS_MAX) {
        union qt_value v = s->mvals[s->mi];
        const char *sp = s->vtype == QT_VT_STRING ? s->marena + v.s.off : NULL;
        rc = emit(s, (*n)++, s->mts[s->mi], v, sp);
        s->mi++;
        s->cnt.mem_points++;
    }
    return rc;
}

/* ---- iteration ------------------------------------------------------------- */

/* One merge step at the smallest pending timestamp.  *emitted: a point was
 * added at index n.  Returns 1 when merge mode is over (no open block). */
static int
merge_step(struct qt_scan *s, uint32_t *n, int *rc)
{
    int64_t cur = s->mi < s->nmem ? s->mts[s->mi] : INT64_MAX;
    for (uint32_t i = 0; i < s->nsrcs; i++) {
        struct scan_src *src = &s->srcs[i];
        if (src->in_use && src->ts[src->pos] < cur)
            cur = src->ts[src->pos];
    }
    if (s->p < s->nitems && s->items[s->p].e.ts_min <= cur) {
        struct scan_src *src;
        *rc = src_open(s, &s->items[s->p++], &src);
        if (*rc == 0 && src->n == 0)
            src_close(s, src);
        return 0;
    }
    if (s->nactive == 0)
        return 1;
    /* Winner at cur: memtable first, else the open block with highest seq. */
    const struct scan_src *win = NULL;
    bool mem = s->mi < s->nmem && s->mts[s->mi] == cur;
    union qt_value v = {0};
    const char *sp = NULL;
    if (mem) {
        v = s->mvals[s->mi];
        sp = s->vtype == QT_VT_STRING ? s->marena + v.s.off : NULL;
    }
    for (uint32_t i = 0; i < s->nsrcs; i++) {
        struct scan_src *src = &s->srcs[i];
        if (!src->in_use || src->ts[src->pos] != cur)
            continue;
        if (!mem && (win == NULL || src->prec > win->prec)) {
            win = src;
            v = src_value(s, src, src->pos, &sp);
        }
    }
    if (cur >= s->o.t0 && cur < s->o.t1)
        *rc = emit(s, (*n)++, cur, v, sp);
    if (mem) {
        s->mi++;
        s->cnt.mem_points++;
    }
    for (uint32_t i = 0; i < s->nsrcs; i++) {
        struct scan_src *src = &s->srcs[i];
        if (src->in_use && src->ts[src->pos] == cur && ++src->pos == src->n)
            src_close(s, src);
    }
    return s->nactive == 0;
}

/* Clear mode: decide what comes next when no block is open.
 * Returns 1 with a chunk, 0 to continue, -1 at the end. */
static int
clear_step(struct qt_scan *s, struct qt_chunk *c, int *rc)
{
    int64_t next_mem = s->mi < s->nmem ? s->mts[s->mi] : INT64_MAX;
    uint32_t n = 0;
    if (s->p >= s->nitems) {
        if (s->mi >= s->nmem)
            return -1;
        *rc = emit_mem(s, INT64_MAX, &n);
        chunk_points(s, c, n);
        return 1;
    }
    const struct scan_item *b = &s->items[s->p];
    if (next_mem < b->e.ts_min) {
        *rc = emit_mem(s, b->e.ts_min, &n);
        chunk_points(s, c, n);
        return 1;
    }
    int64_t following = next_mem;
    if (s->p + 1 < s->nitems && s->items[s->p + 1].e.ts_min < following)
        following = s->items[s->p + 1].e.ts_min;
    struct scan_src *src;
    if (b->e.ts_max >= following) { /* overlaps: open it and merge */
        *rc = src_open(s, b, &src);
        s->p++;
        return 0;
    }
    s->p++;
    if (s->o.allow_stats && b->e.ts_min >= s->o.t0 && b->e.ts_max < s->o.t1) {
        memset(c, 0, sizeof(*c));
        c->kind = QT_CHUNK_STATS;
        c->vtype = b->e.vtype;
        c->n = b->e.n_values;
        c->ts_min = b->e.ts_min;
        c->ts_max = b->e.ts_max;
        c->stats = b->e.stats;
        s->last_stats = b;
        s->cnt.stats_chunks++;
        s->cnt.stats_points += b->e.n_values;
        return 1;
    }
    *rc = src_open(s, b, &src);
    if (*rc == 0)
        *rc = emit_source(s, src, &n);
    if (*rc != 0 || n == 0)
        return 0;
    chunk_points(s, c, n);
    return 1;
}

int
qt_scan_next(struct qt_scan *s, struct qt_chunk *c)
{
    qt_assert(s != NULL);
    qt_assert(c != NULL);
    s->last_stats = NULL;
    s->arena_len = 0;
    for (;;) {
        int rc = 0;
        if (s->nactive == 0) {
            int got = clear_step(s, c, &rc);
            if (rc != 0)
                return rc;
            if (got != 0)
                return got > 0 ? 1 : 0;
            if (s->nactive == 0)
                continue;
        }
        uint32_t n = 0;
        while (n < QT_BLOCK_POINTS_MAX && rc == 0) {
            if (merge_step(s, &n, &rc) != 0)
                break;
        }
        if (rc != 0)
            return rc;
        if (n > 0) {
            chunk_points(s, c, n);
            return 1;
        }
    }
}

int
qt_scan_expand(struct qt_scan *s, struct qt_chunk *c)
{
    qt_assert(s->last_stats != NULL);
    qt_assert(c->kind == QT_CHUNK_STATS);
    struct scan_src *src;
    s->arena_len = 0;
    int rc = src_open(s, s->last_stats, &src);
    uint32_t n = 0;
    if (rc == 0)
        rc = emit_source(s, src, &n);
    s->cnt.stats_chunks--;
    s->cnt.stats_points -= c->n;
    s->last_stats = NULL;
    if (rc != 0)
        return rc;
    if (n != c->n)
        return qt_fail(QT_ECORRUPT, "scan: block holds a different count than its index entry");
    chunk_points(s, c, n);
    return 0;
}

/* ---- last ------------------------------------------------------------------ */

/* Newest timestamp of the series across memtables and segments. */
static bool
last_ts(struct qt_db *db, struct db_version *v, const struct qt_catalog_series *si, uint32_t sid,
        int64_t *best)
{
    bool found = false;
    int64_t lo, hi;
    struct db_mem *mems[2] = {v->imm, v->active};
    for (int i = 0; i < 2; i++) {
        if (mems[i] != NULL && qt_mem_series_range(mems[i]->m, si->gid, sid, &lo, &hi) &&
            (!found || hi > *best)) {
            *best = hi;
            found = true;
        }
    }
    struct qt_seg_entries l = {0};
    /* Newest shard first; an older shard cannot hold a newer point. */
    for (uint32_t i = v->nsegs; i > 0; i--) {
        struct db_seg *seg = v->segs[i - 1];
        if (seg->r == NULL || (found && seg->m.ts_max <= *best))
            continue;
        l.n = 0;
        if (qt_segr_find(seg->r, si->id, INT64_MIN, INT64_MAX, &l) != 0)
            continue; /* damage was reported; serve what is readable */
        for (uint32_t k = 0; k < l.n; k++) {
            if (!found || l.v[k].ts_max > *best) {
                *best = l.v[k].ts_max;
                found = true;
            }
        }
    }
    qt_seg_entries_free(&l);
    (void)db;
    return found;
}

int
qt_db_last(struct qt_db *db, uint32_t sid, struct qt_lc_point *out, bool *found)
{
    qt_assert(out != NULL);
    qt_assert(found != NULL);
    if (qt_lc_get(db->lc, sid, out) == QT_LC_KNOWN) {
        *found = true;
        return 0;
    }
    struct qt_catalog_series si;
    int rc = qt_catalog_series_info(db->cat, sid, &si);
    if (rc != 0)
        return rc;
    struct db_version *v = db_version_get(db);
    int64_t best = INT64_MIN;
    bool any = last_ts(db, v, &si, sid, &best);
    db_version_put(v);
    struct qt_chunk c = {0};
    struct qt_scan *s = NULL;
    if (any) {
        struct qt_scan_opts o = {.t0 = best, .t1 = best == INT64_MAX ? best : best + 1};
        rc = qt_scan_open(db, sid, &o, &s);
        int got = rc == 0 ? qt_scan_next(s, &c) : rc;
        rc = got < 0 ? got : 0;
        any = got == 1 && c.n > 0;
    }
    if (rc == 0) {
        struct qt_str str = {0};
        union qt_value val = any ? c.vals[c.n - 1] : (union qt_value){0};
        if (any && si.vtype == QT_VT_STRING)
            str = (struct qt_str){.p = c.arena + val.s.off, .len = val.s.len};
        rc = qt_lc_seed(db->lc, sid, any, any ? c.ts[c.n - 1] : 0, (uint8_t)si.vtype, &val, &str);
    }
    qt_scan_close(s);
    if (rc != 0)
        return rc;
    *found = qt_lc_get(db->lc, sid, out) != QT_LC_EMPTY;
    return 0;
}
