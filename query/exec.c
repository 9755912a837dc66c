/*
 * exec.c -- the query executor: plan a parsed query, drive one scan per
 * series, and stream the rows (contract in exec.h; model in
 * design/exec.md).
 *
 * Plan: select the series (select.h, sorted by key), check every series'
 * value type against the stages and functions (a clear error before any
 * data is read), then run one of five shapes:
 *   raw       points (after where/rate/delta) -> one row each
 *   agg       chunks -> agg.h cells (block statistics when allowed) -> rows
 *   last      the last-value cache (qt_db_last), or a scan when the range
 *             ends before the cached point or transforms apply
 *   episodes  chunks -> events.h
 *   gaps      chunks -> events.h
 * Catalog queries go to catq.h.
 *
 * Invariants: series are visited in series key order and each series'
 * chunks in time order (agg.h and events.h rely on it); the scan is asked
 * for block statistics only when no transform applies (a `where` or a
 * rate must see every value); memory that grows with the query is charged
 * to the context; the deadline is checked between chunks.
 */
#include "exec.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_hash.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "query/agg.h"
#include "query/catq.h"
#include "query/events.h"
#include "query/qctx.h"
#include "query/qprint.h"
#include "query/result.h"
#include "query/rplan.h"
#include "query/select.h"
#include "query/xform.h"
#include "storage/rollup.h"
#include "storage/scan.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Receives a series' chunks (after transforms). */
struct sink {
    /* 1 taken, 0 expand the block, <0 error; NULL: always expand */
    int (*stats)(void *arg, enum qt_vtype vt, const struct qt_chunk *c);
    int (*points)(void *arg, enum qt_vtype vt, const int64_t *ts, const union qt_value *v,
                  uint32_t n, const char *arena);
    void *arg;
};

struct exec {
    struct qt_db *db;
    const struct qt_qry *q;
    struct qt_qctx *ctx;
    struct qt_res *w;
    struct qt_xf xf;
    struct qt_sel sel;
    struct qt_qry_stats *st;
    uint8_t *scratch; /* QT_SERIES_KEY_MAX: unescaped tags of one series */
    struct qt_serieskey *k;
    /* tag columns (raw, last, episodes, gaps): sorted union of tag keys */
    struct qt_str *tagcols;
    uint32_t ntagcols;
    char *tagbytes;
    size_t charged;
};

/* ---- scanning ------------------------------------------------------------------ */

static int
scan_fail(struct exec *x, int rc, const struct qt_sel_series *s)
{
    const char *d = qt_err_detail();
    if (rc == QT_ENOMEM)
        return qt_qctx_fail(x->ctx, rc, "scan: out of memory");
    return qt_qctx_fail(x->ctx, rc, "scan of %.*s: %s%s%s",
                        (int)(s->key_len > 80 ? 80 : s->key_len), (const char *)s->key,
                        qt_strerror(rc), d[0] ? ": " : "", d);
}

/* Points of the series through the transforms to the sink. */
static int
feed_points(struct exec *x, const struct qt_sel_series *s, const struct sink *k, const int64_t *ts,
            const union qt_value *v, uint32_t n, const char *arena)
{
    if (n == 0)
        return 0;
    if (!qt_xf_active(&x->xf))
        return k->points(k->arg, s->vtype, ts, v, n, arena);
    const int64_t *ots;
    const union qt_value *ov;
    uint32_t on;
    int rc = qt_xf_run(&x->xf, ts, v, n, &ots, &ov, &on);
    if (rc != 0 || on == 0)
        return rc;
    return k->points(k->arg, x->xf.out_vt, ots, ov, on, NULL);
}

static void
count_scan(struct exec *x, const struct qt_scan *sc)
{
    struct qt_scan_counters c;
    qt_scan_get_counters(sc, &c);
    x->st->stats_points += c.stats_points;
    x->st->decoded_points += c.points_decoded + c.mem_points;
    x->st->points += c.stats_points + c.points_decoded + c.mem_points;
}

/* A scan of [t0, t1) cannot return a point at INT64_MAX; an unbounded
 * query must (qparse.h), so ask the last-value cache for it. */
static int
feed_end_of_time(struct exec *x, const struct qt_sel_series *s, const struct sink *k)
{
    struct qt_lc_point *p = qt_malloc(sizeof(*p));
    if (p == NULL)
        return qt_qctx_fail(x->ctx, QT_ENOMEM, "scan: out of memory");
    bool found = false;
    int rc = qt_db_last(x->db, s->sid, p, &found);
    if (rc != 0)
        rc = scan_fail(x, rc, s);
    else if (found && p->ts == INT64_MAX) {
        union qt_value v = p->v;
        if (s->vtype == QT_VT_STRING)
            v.s.off = 0;
        x->st->points++;
        x->st->decoded_points++;
        rc = feed_points(x, s, k, &p->ts, &v, 1, p->strbuf);
    }
    qt_free(p);
    return rc;
}

/* Scan series s over [t0, t1), feeding k.  Block statistics are offered
 * when allow_stats (and no transform applies). */
static int
scan_range(struct exec *x, const struct qt_sel_series *s, const struct sink *k, bool allow_stats,
           int64_t t0, int64_t t1)
{
    const struct qt_qry_range *r = &x->q->range;
    struct qt_scan_opts o = {.t0 = t0,
                             .t1 = t1,
                             .allow_stats =
                                 allow_stats && k->stats != NULL && !qt_xf_active(&x->xf)};
    struct qt_scan *sc = NULL;
    int rc = qt_scan_open(x->db, s->sid, &o, &sc);
    if (rc != 0)
        return scan_fail(x, rc, s);
    qt_xf_reset(&x->xf, s->vtype);
    struct qt_chunk c;
    int got;
    while (rc == 0 && !qt_res_full(x->w) && (got = qt_scan_next(sc, &c)) != 0) {
        if ((rc = qt_qctx_check_deadline(x->ctx)) != 0)
            break;
        if (got < 0) {
            rc = scan_fail(x, got, s);
            break;
        }
        if (c.kind == QT_CHUNK_STATS) {
            int taken = k->stats(k->arg, s->vtype, &c);
            if (taken != 0) {
                rc = taken < 0 ? taken : 0;
                continue;
            }
            if ((rc = qt_scan_expand(sc, &c)) != 0) {
                rc = scan_fail(x, rc, s);
                break;
            }
        }
        rc = feed_points(x, s, k, c.ts, c.vals, c.n, c.arena);
    }
    count_scan(x, sc);
    qt_scan_close(sc);
    if (rc == 0 && !r->bounded && !qt_res_full(x->w))
        rc = feed_end_of_time(x, s, k);
    return rc;
}

/* Scan series s over the query range. */
static int
scan_series(struct exec *x, const struct qt_sel_series *s, const struct sink *k, bool allow_stats)
{
    const struct qt_qry_range *r = &x->q->range;
    return scan_range(x, s, k, allow_stats, r->bounded ? r->start.ns : INT64_MIN,
                      r->bounded ? r->end.ns : INT64_MAX);
}

/* ---- tags ------------------------------------------------------------------------ */

static int
parse_tags(struct exec *x, const struct qt_sel_series *s)
{
    int rc = qt_sel_tags(s, x->scratch, x->k);
    if (rc != 0)
        return qt_qctx_fail(x->ctx, QT_ECORRUPT, "catalog key of series %u does not parse: %s",
                            s->sid, qt_err_detail());
    return 0;
}

static int
str_cmp(const void *a, const void *b)
{
    return qt_serieskey_cmp(*(const struct qt_str *)a, *(const struct qt_str *)b);
}

/* Add the tag keys of the current series (x->k) to the open-addressing
 * set tab[0..cap) (indexes + 1 into cols; names are (offset, length) into
 * x->tagbytes while the set grows). */
static int
tagcols_add(struct exec *x, struct qt_str *cols, uint32_t *tab, uint32_t cap, size_t *bytes_cap,
            size_t *bytes_len)
{
    for (uint32_t i = 0; i < x->k->ntags; i++) {
        struct qt_str key = x->k->tags[i].key;
        uint32_t h = (uint32_t)qt_hash64(key.p, key.len) & (cap - 1);
        for (; tab[h] != 0; h = (h + 1) & (cap - 1)) {
            struct qt_str c = cols[tab[h] - 1];
            if (c.len == key.len && memcmp(x->tagbytes + (uintptr_t)c.p, key.p, key.len) == 0)
                break;
        }
        if (tab[h] != 0)
            continue;
        if (x->ntagcols == QT_QRY_TAG_COLUMNS_MAX)
            return qt_qctx_fail(x->ctx, QT_ELIMIT,
                                "the selected series have more than %u distinct tag keys",
                                QT_QRY_TAG_COLUMNS_MAX);
        if (*bytes_len + key.len > *bytes_cap) {
            size_t ncap = (*bytes_len + key.len) * 2;
            int rc = qt_qctx_charge(x->ctx, ncap - *bytes_cap);
            char *b = rc == 0 ? qt_realloc(x->tagbytes, ncap) : NULL;
            if (rc == 0 && b == NULL)
                rc = qt_qctx_fail(x->ctx, QT_ENOMEM, "executor: out of memory");
            if (rc != 0)
                return rc;
            x->charged += ncap - *bytes_cap;
            x->tagbytes = b;
            *bytes_cap = ncap;
        }
        memcpy(x->tagbytes + *bytes_len, key.p, key.len);
        cols[x->ntagcols++] = (struct qt_str){(const char *)(uintptr_t)*bytes_len, key.len};
        *bytes_len += key.len;
        tab[h] = x->ntagcols;
    }
    return 0;
}

/* x->tagcols: the sorted union of the selected series' tag keys. */
static int
tagcols_build(struct exec *x)
{
    enum { CAP = 2 * QT_QRY_TAG_COLUMNS_MAX };
    uint32_t tab[CAP] = {0};
    size_t bytes_cap = 0, bytes_len = 0;
    size_t sz = (QT_QRY_TAG_COLUMNS_MAX + 1) * sizeof(struct qt_str);
    int rc = qt_qctx_charge(x->ctx, sz);
    if (rc != 0)
        return rc;
    x->charged += sz;
    x->tagcols = qt_malloc(sz);
    if (x->tagcols == NULL)
        return qt_qctx_fail(x->ctx, QT_ENOMEM, "executor: out of memory");
    for (uint32_t i = 0; i < x->sel.n && rc == 0; i++) {
        rc = parse_tags(x, &x->sel.v[i]);
        if (rc == 0)
            rc = tagcols_add(x, x->tagcols, tab, CAP, &bytes_cap, &bytes_len);
        if (rc == 0 && (i & 4095) == 4095)
            rc = qt_qctx_check_deadline(x->ctx);
    }
    for (uint32_t i = 0; i < x->ntagcols; i++)
        x->tagcols[i].p = x->tagbytes + (uintptr_t)x->tagcols[i].p;
    if (rc == 0 && x->ntagcols > 1)
        qsort(x->tagcols, x->ntagcols, sizeof(*x->tagcols), str_cmp);
    return rc;
}

/* Columns: time, the tag columns, then extra[0..n). */
static int
begin_series_columns(struct exec *x, const struct qt_res_col *extra, uint32_t n)
{
    size_t sz = ((size_t)1 + x->ntagcols + n) * sizeof(struct qt_res_col);
    struct qt_res_col *cols = qt_malloc(sz);
    if (cols == NULL)
        return qt_qctx_fail(x->ctx, QT_ENOMEM, "executor: out of memory");
    cols[0] = (struct qt_res_col){.name = {"time", 4}, .kind = QT_RES_COL_TIME};
    for (uint32_t i = 0; i < x->ntagcols; i++)
        cols[1 + i] = (struct qt_res_col){.name = x->tagcols[i], .kind = QT_RES_COL_TEXT};
    memcpy(cols + 1 + x->ntagcols, extra, n * sizeof(*extra));
    int rc = qt_res_begin(x->w, cols, 1 + x->ntagcols + n);
    qt_free(cols);
    return rc;
}

/* row[1..ntagcols] = the current series' values of the tag columns. */
static void
row_tags(struct exec *x, struct qt_cell *row)
{
    for (uint32_t i = 0; i < x->ntagcols; i++)
        row[1 + i] =
            (struct qt_cell){.kind = QT_CELL_STR, .u.s = qt_sel_tag_value(x->k, x->tagcols[i])};
}

static struct qt_cell
value_cell(enum qt_vtype vt, union qt_value v, const char *arena)
{
    switch (vt) {
    case QT_VT_FLOAT: return (struct qt_cell){.kind = QT_CELL_FLOAT, .u.f = v.f};
    case QT_VT_INT: return (struct qt_cell){.kind = QT_CELL_INT, .u.i = v.i};
    case QT_VT_BOOL: return (struct qt_cell){.kind = QT_CELL_BOOL, .u.b = v.i != 0};
    case QT_VT_STRING:
        return (struct qt_cell){.kind = QT_CELL_STR, .u.s = {arena + v.s.off, v.s.len}};
    }
    qt_unreachable();
}

static const char *
vtype_name(enum qt_vtype vt)
{
    return qt_catalog_vtype_name(vt);
}

static int
fail_type(struct exec *x, const struct qt_sel_series *s, const char *what, enum qt_vtype vt)
{
    return qt_qctx_fail(x->ctx, QT_EINVAL, "%s is not defined for %s values (series %.*s)", what,
                        vtype_name(vt), (int)(s->key_len > 80 ? 80 : s->key_len),
                        (const char *)s->key);
}

/* Every selected series' type against the stages, before reading data. */
static int
check_types(struct exec *x)
{
    const struct qt_qry *q = x->q;
    for (uint32_t i = 0; i < x->sel.n; i++) {
        const struct qt_sel_series *s = &x->sel.v[i];
        const char *why = NULL;
        enum qt_vtype vt = qt_xf_out_vtype(&x->xf, s->vtype, &why);
        if (vt == 0)
            return fail_type(x, s, why, s->vtype);
        if (q->agg != NULL && (why = qt_agg_unsupported(&q->agg->u.agg, vt)) != NULL)
            return fail_type(x, s, why, vt);
        if (q->terminal != NULL && q->terminal->kind == QT_QRY_STAGE_EPISODES && vt == QT_VT_STRING)
            return fail_type(x, s, "episodes", vt);
    }
    return 0;
}

/* ---- raw ------------------------------------------------------------------------- */

struct row_st {
    struct exec *x;
    struct qt_cell *row;
    uint32_t vcol; /* index of the value column */
};

static int
raw_points(void *arg, enum qt_vtype vt, const int64_t *ts, const union qt_value *v, uint32_t n,
           const char *arena)
{
    struct row_st *r = arg;
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0 && !qt_res_full(r->x->w); i++) {
        r->row[0] = (struct qt_cell){.kind = QT_CELL_INT, .u.i = ts[i]};
        r->row[r->vcol] = value_cell(vt, v[i], arena);
        rc = qt_res_row(r->x->w, r->row);
    }
    return rc;
}

static int
run_raw(struct exec *x)
{
    struct qt_res_col vcol = {.name = {"value", 5}, .kind = QT_RES_COL_VALUE};
    int rc = tagcols_build(x);
    if (rc == 0)
        rc = begin_series_columns(x, &vcol, 1);
    struct row_st r = {.x = x, .vcol = 1 + x->ntagcols};
    r.row = qt_calloc((size_t)x->ntagcols + 2, sizeof(*r.row));
    if (rc == 0 && r.row == NULL)
        rc = qt_qctx_fail(x->ctx, QT_ENOMEM, "executor: out of memory");
    struct sink k = {.points = raw_points, .arg = &r};
    for (uint32_t i = 0; i < x->sel.n && rc == 0 && !qt_res_full(x->w); i++) {
        rc = parse_tags(x, &x->sel.v[i]);
        row_tags(x, r.row);
        if (rc == 0)
            rc = scan_series(x, &x->sel.v[i], &k, false);
    }
    qt_free(r.row);
    return rc;
}

/* ---- last ------------------------------------------------------------------------ */

/* The latest point seen by a scan (transforms, or a range that ends
 * before the cached point). */
struct last_st {
    bool found;
    int64_t ts;
    enum qt_vtype vt;
    union qt_value v;
    char str[QT_STRING_VALUE_MAX];
};

static int
last_stats(void *arg, enum qt_vtype vt, const struct qt_chunk *c)
{
    struct last_st *l = arg;
    if (vt == QT_VT_STRING)
        return 0;
    l->found = true;
    l->ts = c->ts_max;
    l->vt = vt;
    if (vt == QT_VT_FLOAT)
        l->v.f = c->stats.last.f;
    else
        l->v.i = c->stats.last.i;
    return 1;
}

static int
last_points(void *arg, enum qt_vtype vt, const int64_t *ts, const union qt_value *v, uint32_t n,
            const char *arena)
{
    struct last_st *l = arg;
    l->found = true;
    l->ts = ts[n - 1];
    l->vt = vt;
    l->v = v[n - 1];
    if (vt == QT_VT_STRING) {
        qt_assert(l->v.s.len <= QT_STRING_VALUE_MAX);
        memcpy(l->str, arena + l->v.s.off, l->v.s.len);
        l->v.s.off = 0;
    }
    return 0;
}

/* The last point of s within the range into *l. */
static int
last_of(struct exec *x, const struct qt_sel_series *s, struct last_st *l, struct qt_lc_point *p)
{
    const struct qt_qry_range *r = &x->q->range;
    struct sink k = {.stats = last_stats, .points = last_points, .arg = l};
    memset(l, 0, offsetof(struct last_st, str));
    if (qt_xf_active(&x->xf))
        return scan_series(x, s, &k, false);
    bool found = false;
    int rc = qt_db_last(x->db, s->sid, p, &found);
    if (rc != 0)
        return scan_fail(x, rc, s);
    x->st->points += found;
    if (!found || (r->bounded && p->ts < r->start.ns))
        return 0;
    if (r->bounded && p->ts >= r->end.ns) /* the range ends earlier: scan it */
        return scan_series(x, s, &k, true);
    *l = (struct last_st){.found = true, .ts = p->ts, .vt = s->vtype, .v = p->v};
    if (s->vtype == QT_VT_STRING) {
        memcpy(l->str, p->strbuf, p->v.s.len);
        l->v.s.off = 0;
    }
    return 0;
}

static int
run_last(struct exec *x)
{
    struct qt_res_col vcol = {.name = {"value", 5}, .kind = QT_RES_COL_VALUE};
    int rc = tagcols_build(x);
    if (rc == 0)
        rc = begin_series_columns(x, &vcol, 1);
    struct qt_cell *row = qt_calloc((size_t)x->ntagcols + 2, sizeof(*row));
    struct last_st *l = qt_malloc(sizeof(*l));
    struct qt_lc_point *p = qt_malloc(sizeof(*p));
    if (rc == 0 && (row == NULL || l == NULL || p == NULL))
        rc = qt_qctx_fail(x->ctx, QT_ENOMEM, "executor: out of memory");
    for (uint32_t i = 0; i < x->sel.n && rc == 0 && !qt_res_full(x->w); i++) {
        const struct qt_sel_series *s = &x->sel.v[i];
        rc = last_of(x, s, l, p);
        if (rc != 0 || !l->found)
            continue;
        if ((rc = parse_tags(x, s)) != 0)
            break;
        row_tags(x, row);
        row[0] = (struct qt_cell){.kind = QT_CELL_INT, .u.i = l->ts};
        row[1 + x->ntagcols] = value_cell(l->vt, l->v, l->str);
        rc = qt_res_row(x->w, row);
        if (rc == 0 && (i & 1023) == 1023)
            rc = qt_qctx_check_deadline(x->ctx);
    }
    qt_free(row);
    qt_free(l);
    qt_free(p);
    return rc;
}

/* ---- aggregation ------------------------------------------------------------------ */

struct agg_st {
    struct qt_agg *a;
    uint32_t g;
};

static int
agg_stats(void *arg, enum qt_vtype vt, const struct qt_chunk *c)
{
    struct agg_st *s = arg;
    return qt_agg_stats(s->a, s->g, vt, c);
}

static int
agg_points(void *arg, enum qt_vtype vt, const int64_t *ts, const union qt_value *v, uint32_t n,
           const char *arena)
{
    struct agg_st *s = arg;
    return qt_agg_points(s->a, s->g, vt, ts, v, n, arena);
}

/* ---- aggregation from rollups ------------------------------------------------------- */

/* qt_rplan found rollups that cannot be read as planned (a missing or
 * mistyped column, a bucket out of line): run the query on raw data. */
#define RP_FALLBACK 1

/* One item of a rollup column: one bucket row (a point), or a whole
 * stored block of rows that lies inside one query bucket (its block
 * statistics, not decoded). */
struct ritem {
    int64_t t0, t1; /* first and last bucket start */
    uint32_t n;     /* rows */
    bool stats;
    union qt_value v;  /* a row */
    struct qt_stats s; /* a block */
};

/* One rollup column of one series over a piece, read whole. */
struct rcol {
    struct ritem *it;
    uint32_t n, cap;
};

enum { RC_COUNT, RC_SUM, RC_MIN, RC_MAX, RC_FIRST, RC_LAST, RC_FIRST_TS, RC_LAST_TS, RC_N };

static const char *const rcol_sfx[RC_N] = {".count", ".sum",  ".min",      ".max",
                                           ".first", ".last", ".first_ts", ".last_ts"};

struct rollup_rd {
    struct exec *x;
    const struct qt_rplan *plan;
    struct qt_agg *a;
    struct rcol col[RC_N];
    char *key; /* QT_SERIES_KEY_MAX + 32 */
    size_t charged;
};

static int
rcol_push(struct rollup_rd *rd, struct rcol *c, const struct ritem *it)
{
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 64;
        size_t add = (size_t)(cap - c->cap) * sizeof(*c->it);
        int rc = qt_qctx_charge(rd->x->ctx, add);
        if (rc != 0)
            return rc;
        rd->charged += add;
        struct ritem *n = qt_realloc(c->it, cap * sizeof(*n));
        if (n == NULL)
            return qt_qctx_fail(rd->x->ctx, QT_ENOMEM, "executor: out of memory");
        c->it = n;
        c->cap = cap;
    }
    c->it[c->n++] = *it;
    return 0;
}

/* Read column j of the rollup of s over [t0, t1) into rd->col[j]: a block
 * whose rows all fall in one query bucket as its statistics, any other
 * row by row.  0 (nothing when the rollup series does not exist),
 * RP_FALLBACK when it has another type than vt, or an error. */
static int
rcol_read(struct rollup_rd *rd, const struct qt_sel_series *s, int j, enum qt_vtype vt, int64_t t0,
          int64_t t1)
{
    struct exec *x = rd->x;
    struct rcol *c = &rd->col[j];
    int64_t iv = rd->plan->interval_ns;
    c->n = 0;
    int kl =
        qt_rollup_group_key(s->key, s->group_len, rd->plan->interval, rd->key, QT_SERIES_KEY_MAX);
    size_t fl = s->key_len - s->group_len, sl = strlen(rcol_sfx[j]);
    if (kl < 0 || (size_t)kl + fl + sl > QT_SERIES_KEY_MAX)
        return RP_FALLBACK; /* no rollup could have been written under this key */
    memcpy(rd->key + kl, s->key + s->group_len, fl); /* " <escaped field>" */
    memcpy(rd->key + kl + fl, rcol_sfx[j], sl);
    struct qt_catalog *cat = qt_db_catalog(x->db);
    uint32_t sid = 0;
    int rc = qt_catalog_lookup(cat, (const uint8_t *)rd->key, (size_t)kl + fl + sl, &sid);
    if (rc == QT_ENOTFOUND)
        return 0;
    struct qt_catalog_series si;
    if (rc == 0)
        rc = qt_catalog_series_info(cat, sid, &si);
    if (rc != 0)
        return qt_qctx_fail(x->ctx, rc, "rollup lookup: %s", qt_strerror(rc));
    if (si.vtype != vt)
        return RP_FALLBACK;
    struct qt_scan_opts o = {.t0 = t0, .t1 = t1, .allow_stats = true};
    struct qt_scan *sc = NULL;
    const struct qt_sel_series rs = {.sid = sid, .vtype = vt, .key = si.key, .key_len = si.key_len};
    if ((rc = qt_scan_open(x->db, sid, &o, &sc)) != 0)
        return scan_fail(x, rc, &rs);
    struct qt_chunk ch;
    int got;
    while (rc == 0 && (got = qt_scan_next(sc, &ch)) != 0) {
        if (got < 0) {
            rc = scan_fail(x, got, &rs);
            break;
        }
        if (ch.kind == QT_CHUNK_STATS && ch.ts_max <= INT64_MAX - (iv - 1) &&
            qt_agg_one_bucket(rd->a, ch.ts_min, ch.ts_max + (iv - 1))) {
            struct ritem it = {
                .t0 = ch.ts_min, .t1 = ch.ts_max, .n = ch.n, .stats = true, .s = ch.stats};
            rc = rcol_push(rd, c, &it);
            continue;
        }
        if (ch.kind == QT_CHUNK_STATS && (rc = qt_scan_expand(sc, &ch)) != 0) {
            rc = scan_fail(x, rc, &rs);
            break;
        }
        for (uint32_t i = 0; i < ch.n && rc == 0; i++) {
            struct ritem it = {.t0 = ch.ts[i], .t1 = ch.ts[i], .n = 1, .v = ch.vals[i]};
            rc = rcol_push(rd, c, &it);
        }
    }
    qt_scan_close(sc);
    return rc;
}

/* Value of item it of a column of type vt: a row's value, or a block's
 * statistic picked by pick (min, max, sum, first, last). */
static union qt_stat
ritem_val(const struct ritem *it, enum qt_vtype vt, int pick)
{
    union qt_stat r;
    if (!it->stats) {
        if (vt == QT_VT_FLOAT)
            r.f = it->v.f;
        else
            r.i = it->v.i;
        return r;
    }
    const union qt_stat *p[5] = {&it->s.min, &it->s.max, &it->s.sum, &it->s.first, &it->s.last};
    return *p[pick];
}

enum { PICK_MIN, PICK_MAX, PICK_SUM, PICK_FIRST, PICK_LAST };

/* The summaries of s's rollup over piece [t0, t1) into the aggregation. */
static int
feed_rollup(struct rollup_rd *rd, const struct qt_sel_series *s, struct agg_st *st, int64_t t0,
            int64_t t1)
{
    const struct qt_rplan *p = rd->plan;
    struct exec *x = rd->x;
    enum qt_vtype vt = s->vtype;
    int64_t iv = p->interval_ns;
    bool want[RC_N] = {true,          p->need_sum,  p->need_minmax,       p->need_minmax,
                       p->need_first, p->need_last, p->need_firstlast_ts, p->need_firstlast_ts};
    int rc = 0;
    for (int j = 0; j < RC_N && rc == 0; j++) {
        rd->col[j].n = 0;
        if (want[j])
            rc = rcol_read(rd, s, j, j == RC_COUNT || j >= RC_FIRST_TS ? QT_VT_INT : vt, t0, t1);
    }
    if (rc != 0)
        return rc;
    const struct rcol *cnt = &rd->col[RC_COUNT];
    for (int j = 1; j < RC_N; j++) { /* every column holds the count's rows, in the same items */
        if (!want[j])
            continue;
        if (rd->col[j].n != cnt->n)
            return RP_FALLBACK;
        for (uint32_t i = 0; i < cnt->n; i++) {
            const struct ritem *a = &cnt->it[i], *b = &rd->col[j].it[i];
            if (a->t0 != b->t0 || a->t1 != b->t1 || a->n != b->n || a->stats != b->stats)
                return RP_FALLBACK;
        }
    }
    for (uint32_t i = 0; i < cnt->n && rc == 0; i++) {
        const struct ritem *ci = &cnt->it[i];
        int64_t n = ci->stats ? ci->s.sum.i : ci->v.i;
        if ((ci->stats && ci->s.sum_overflow) || n <= 0 || n > (int64_t)UINT32_MAX ||
            ci->t0 % iv != 0 || ci->t1 % iv != 0)
            return RP_FALLBACK;
        struct qt_chunk c = {.kind = QT_CHUNK_STATS,
                             .vtype = vt,
                             .n = (uint32_t)n,
                             .ts_min = ci->t0,
                             .ts_max = ci->t1 + (iv - 1)};
        if (p->need_firstlast_ts) {
            c.ts_min = ritem_val(&rd->col[RC_FIRST_TS].it[i], QT_VT_INT, PICK_FIRST).i;
            c.ts_max = ritem_val(&rd->col[RC_LAST_TS].it[i], QT_VT_INT, PICK_LAST).i;
            if (c.ts_min < ci->t0 || c.ts_max < c.ts_min || c.ts_max - ci->t1 >= iv)
                return RP_FALLBACK;
        }
        c.stats.count = (uint32_t)n;
        if (p->need_sum) {
            const struct ritem *si = &rd->col[RC_SUM].it[i];
            if (si->stats && si->s.sum_overflow)
                return RP_FALLBACK;
            c.stats.sum = ritem_val(si, vt, PICK_SUM);
        }
        if (p->need_minmax) {
            c.stats.min = ritem_val(&rd->col[RC_MIN].it[i], vt, PICK_MIN);
            c.stats.max = ritem_val(&rd->col[RC_MAX].it[i], vt, PICK_MAX);
        }
        if (p->need_first)
            c.stats.first = ritem_val(&rd->col[RC_FIRST].it[i], vt, PICK_FIRST);
        if (p->need_last)
            c.stats.last = ritem_val(&rd->col[RC_LAST].it[i], vt, PICK_LAST);
        rc = qt_agg_stats(st->a, st->g, vt, &c);
        if (rc == 0)
            return RP_FALLBACK; /* not inside one query bucket: the plan was wrong */
        rc = rc < 0 ? rc : 0;
        x->st->points += (uint64_t)n;
        x->st->stats_points += (uint64_t)n;
        x->st->rollup_buckets += ci->n;
    }
    return rc;
}

static void
rollup_rd_free(struct rollup_rd *rd)
{
    for (int j = 0; j < RC_N; j++)
        qt_free(rd->col[j].it);
    qt_free(rd->key);
    qt_qctx_release(rd->x->ctx, rd->charged);
}

/* The aggregation over the selected series, raw or (plan != NULL) by the
 * plan's pieces.  RP_FALLBACK before anything is written when the rollups
 * do not read as planned. */
static int
run_agg_plan(struct exec *x, const struct qt_rplan *plan)
{
    struct agg_st st = {0};
    struct rollup_rd rd = {.x = x, .plan = plan};
    int rc = qt_agg_create(x->ctx, x->q, &st.a);
    struct sink k = {.stats = agg_stats, .points = agg_points, .arg = &st};
    bool stats = rc == 0 && !qt_agg_needs_points(st.a);
    rd.a = st.a;
    if (rc == 0 && plan != NULL && (rd.key = qt_malloc(QT_SERIES_KEY_MAX + 32)) == NULL)
        rc = qt_qctx_fail(x->ctx, QT_ENOMEM, "executor: out of memory");
    for (uint32_t i = 0; i < x->sel.n && rc == 0; i++) {
        const struct qt_sel_series *s = &x->sel.v[i];
        rc = parse_tags(x, s);
        if (rc == 0)
            rc = qt_agg_group(st.a, x->k, &st.g);
        if (rc == 0 && plan == NULL)
            rc = scan_series(x, s, &k, stats);
        for (uint32_t j = 0; rc == 0 && plan != NULL && j < plan->n; j++) {
            const struct qt_rplan_piece *pc = &plan->p[j];
            rc = pc->rollup ? feed_rollup(&rd, s, &st, pc->t0, pc->t1)
                            : scan_range(x, s, &k, stats, pc->t0, pc->t1);
        }
        if (rc == 0 && plan != NULL)
            rc = qt_qctx_check_deadline(x->ctx);
    }
    if (rc == 0)
        rc = qt_agg_emit(st.a, x->w);
    if (plan != NULL)
        rollup_rd_free(&rd);
    qt_agg_destroy(st.a);
    return rc;
}

static int
run_agg(struct exec *x)
{
    struct qt_rplan *plan = qt_malloc(sizeof(*plan));
    if (plan == NULL)
        return qt_qctx_fail(x->ctx, QT_ENOMEM, "executor: out of memory");
    int rc = qt_rplan_make(x->db, x->q, &x->sel, 0, plan);
    if (rc != 0)
        rc = qt_qctx_fail(x->ctx, rc, "rollup planner: %s", qt_strerror(rc));
    bool done = false;
    if (rc == 0 && plan->n > 0) {
        qt_rplan_source(plan, x->st->source, sizeof(x->st->source));
        rc = run_agg_plan(x, plan);
        if (rc == RP_FALLBACK) {
            qt_log(QT_LOG_WARN,
                   "query: rollups of %s:%s do not read as planned; answering from "
                   "raw data",
                   x->q->sel.measurement.p, plan->interval);
            uint64_t series = x->st->series;
            memset(x->st, 0, sizeof(*x->st));
            x->st->series = series;
            snprintf(x->st->source, sizeof(x->st->source), "raw");
            rc = 0;
        } else {
            done = true;
        }
    }
    if (rc == 0 && !done)
        rc = run_agg_plan(x, NULL);
    qt_free(plan);
    return rc;
}

/* ---- episodes and gaps -------------------------------------------------------------- */

static int
ev_stats(void *arg, enum qt_vtype vt, const struct qt_chunk *c)
{
    (void)vt;
    return qt_ev_stats(arg, c);
}

static int
ev_points(void *arg, enum qt_vtype vt, const int64_t *ts, const union qt_value *v, uint32_t n,
          const char *arena)
{
    (void)vt, (void)arena;
    return qt_ev_points(arg, ts, v, n);
}

static int
run_events(struct exec *x)
{
    int rc = tagcols_build(x);
    struct qt_cell *row = qt_calloc((size_t)x->ntagcols + 5, sizeof(*row));
    if (rc == 0 && row == NULL)
        rc = qt_qctx_fail(x->ctx, QT_ENOMEM, "executor: out of memory");
    if (rc != 0) {
        qt_free(row);
        return rc;
    }
    struct qt_ev ev;
    struct qt_res_col extra[3];
    qt_ev_init(&ev, x->q, x->w, row, x->ntagcols);
    rc = begin_series_columns(x, extra, qt_ev_columns(&ev, extra));
    struct sink k = {.stats = ev_stats, .points = ev_points, .arg = &ev};
    for (uint32_t i = 0; i < x->sel.n && rc == 0 && !qt_res_full(x->w); i++) {
        const struct qt_sel_series *s = &x->sel.v[i];
        const char *why;
        rc = parse_tags(x, s);
        row_tags(x, row);
        qt_ev_begin(&ev, qt_xf_out_vtype(&x->xf, s->vtype, &why));
        if (rc == 0)
            rc = scan_series(x, s, &k, true);
        if (rc == 0)
            rc = qt_ev_end(&ev);
    }
    qt_free(row);
    return rc;
}

/* ---- entry points ---------------------------------------------------------------------- */

static int
run_data(struct exec *x)
{
    const struct qt_qry *q = x->q;
    int rc = qt_sel_run(x->ctx, qt_db_catalog(x->db), &q->sel, &x->sel);
    if (rc != 0)
        return rc;
    x->st->series = x->sel.n;
    if ((rc = qt_xf_init(&x->xf, x->ctx, q)) != 0 || (rc = check_types(x)) != 0)
        return rc;
    x->scratch = qt_malloc(QT_SERIES_KEY_MAX);
    x->k = qt_malloc(sizeof(*x->k));
    if (x->scratch == NULL || x->k == NULL)
        return qt_qctx_fail(x->ctx, QT_ENOMEM, "executor: out of memory");
    if (q->agg != NULL)
        return run_agg(x);
    if (q->terminal == NULL)
        return run_raw(x);
    if (q->terminal->kind == QT_QRY_STAGE_LAST)
        return run_last(x);
    return run_events(x);
}

static void
exec_cleanup(struct exec *x)
{
    qt_xf_deinit(&x->xf);
    qt_sel_free(x->ctx, &x->sel);
    qt_free(x->scratch);
    qt_free(x->k);
    qt_free(x->tagcols);
    qt_free(x->tagbytes);
    qt_qctx_release(x->ctx, x->charged);
}

int
qt_qry_exec(struct qt_db *db, const struct qt_qry *q, const struct qt_qry_limits *lim,
            enum qt_out_format fmt, qt_out_fn out, void *arg, struct qt_qry_stats *st,
            struct qt_qry_error *err)
{
    qt_assert(db != NULL && q != NULL);
    qt_assert(out != NULL);
    struct qt_qry_error scratch_err;
    struct qt_qry_stats scratch_st;
    err = err != NULL ? err : &scratch_err;
    st = st != NULL ? st : &scratch_st;
    memset(err, 0, sizeof(*err));
    memset(st, 0, sizeof(*st));
    snprintf(st->source, sizeof(st->source), "raw");
    struct qt_qry_limits l = lim != NULL ? *lim : (struct qt_qry_limits){0};
    struct qt_qctx ctx;
    qt_qctx_init(&ctx, l.rows_max ? l.rows_max : QT_QRY_ROWS_MAX_DEFAULT,
                 l.series_max ? l.series_max : QT_QRY_SERIES_MAX_DEFAULT,
                 l.mem_bytes_max ? l.mem_bytes_max : QT_QRY_MEM_MAX_DEFAULT,
                 l.deadline_ms ? l.deadline_ms : QT_QRY_DEADLINE_DEFAULT_MS, err);
    struct qt_res w;
    int rc = qt_res_init(&w, &ctx, fmt, out, arg, q->limit);
    struct exec x = {.db = db, .q = q, .ctx = &ctx, .w = &w, .st = st};
    if (rc == 0 && q->kind == QT_QRY_DATA)
        rc = run_data(&x);
    else if (rc == 0)
        rc = qt_catq_run(&ctx, qt_db_catalog(db), q, &w, &st->series);
    if (rc == 0)
        rc = qt_res_end(&w);
    st->rows = w.rows;
    exec_cleanup(&x);
    qt_res_deinit(&w);
    qt_assert(ctx.mem_used == 0 || rc != 0);
    st->elapsed_ns = (uint64_t)(qt_qctx_now() - ctx.start_ns);
    if (rc != 0 && !ctx.failed)
        qt_qctx_fail(&ctx, rc, "query failed: %s", qt_strerror(rc));
    return rc;
}

int
qt_qry_run(struct qt_db *db, const char *text, size_t len, int64_t now_ns,
           const struct qt_qry_limits *lim, enum qt_out_format fmt, qt_out_fn out, void *arg,
           struct qt_qry_stats *st, struct qt_qry_error *err)
{
    struct qt_qry *q = NULL;
    struct qt_qry_error scratch_err;
    err = err != NULL ? err : &scratch_err;
    int rc = qt_qry_parse(text, len, now_ns, &q, err);
    if (rc != 0) {
        if (st != NULL) {
            memset(st, 0, sizeof(*st));
            snprintf(st->source, sizeof(st->source), "raw");
        }
        return rc;
    }
    rc = qt_qry_exec(db, q, lim, fmt, out, arg, st, err);
    qt_qry_free(q);
    return rc;
}

int
qt_qry_error_emit(const struct qt_qry_error *err, const char *text, size_t len,
                  enum qt_out_format fmt, qt_out_fn out, void *arg)
{
    char buf[1024];
    size_t n;
    if (fmt == QT_OUT_JSON)
        n = qt_qry_error_json(err, buf, sizeof(buf));
    else
        n = qt_qry_error_render_caret(err, text != NULL ? text : "", text != NULL ? len : 0, buf,
                                      sizeof(buf));
    n = n < sizeof(buf) - 1 ? n : sizeof(buf) - 2;
    buf[n++] = '\n';
    return out(arg, buf, n);
}
