/*
 * agg.c -- grouped, bucketed aggregation (contract in agg.h; semantics in
 * design/exec.md "Aggregation").
 *
 * Structures:
 *   groups  distinct tuples of `by` tag values, stored as length-prefixed
 *           bytes in one buffer, found through an open-addressing table;
 *   cells   one struct agg_cell per (group, bucket) that saw a point, in a
 *           vector, found through a second open-addressing table keyed by
 *           (group, bucket start); the last cell used is cached because
 *           consecutive chunks almost always hit the same one.
 * Emission sorts the cells by (group rank, bucket) and walks each group,
 * inserting fill rows between (or around) its cells.
 *
 * Invariants: a cell's bucket is the start of the bucket that holds every
 * point fed into it; every point of a series is fed in ascending time and
 * series arrive in series key order (so "first series wins" breaks
 * first/last ties deterministically); every allocation that grows with the
 * data is charged to the query context before it is made.
 */
#include "agg.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_hash.h"
#include "format/qt_limits.h"
#include "query/qprint.h"
#include "query/qtime.h"
#include "query/select.h"
#include "query/tz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What the functions need from a cell. */
enum {
    NEED_SUM = 1u << 0,    /* sum, avg */
    NEED_MINMAX = 1u << 1, /* min, max, spread */
    NEED_FIRST = 1u << 2,
    NEED_LAST = 1u << 3,
    NEED_STD = 1u << 4,
    NEED_PCT = 1u << 5,
};

/* Which kinds of values a cell has seen. */
enum {
    K_FLOAT = 1u << 0,   /* float values (results become float) */
    K_INT = 1u << 1,     /* int or bool values, summed exactly in isum */
    K_SPECIAL = 1u << 2, /* a non-finite addend: fsum/fcomp bypassed */
    K_FMM = 1u << 3,     /* fmin/fmax hold an ordered (non-NaN) float */
    K_IMM = 1u << 4,     /* imin/imax set */
};

enum bucket_mode { B_WHOLE = 0, B_EPOCH = 1, B_TZ = 2 };

struct agg_val {
    enum qt_vtype vt; /* 0: unset */
    union {
        double f;
        int64_t i;
    } u;
    char *s; /* STRING: owned copy */
    uint32_t slen, scap;
};

struct agg_cell {
    __int128 isum; /* ints and bools (trues), exact */
    int64_t bucket;
    uint32_t group;
    uint32_t kinds;
    uint64_t count;
    int64_t ts_min;
    double fsum, fcomp, fspecial; /* Neumaier sum of floats; non-finite apart */
    double fmin, fmax;
    int64_t imin, imax;
    int64_t first_ts, last_ts;
    struct agg_val first, last;
    double w_mean, w_m2; /* Welford */
    uint64_t w_n;
    double *pv; /* percentile: non-NaN values */
    uint32_t pn, pcap;
    bool psorted;
};

struct agg_group {
    uint32_t off, len; /* key bytes in gkeys */
    uint32_t cells;    /* cells of this group (bucket count check) */
};

struct qt_agg {
    struct qt_qctx *ctx;
    const struct qt_qry *q;
    const struct qt_qry_stage_agg *spec;
    const struct qt_qry_stage *fill; /* NULL: no fill */
    unsigned need;
    enum bucket_mode mode;
    /* groups */
    struct agg_group *groups;
    uint32_t ngroups, groups_cap;
    uint8_t *gkeys;
    size_t gkeys_len, gkeys_cap;
    uint32_t *gtab; /* group index + 1; 0 empty */
    uint32_t gtab_cap;
    /* cells */
    struct agg_cell *cells;
    uint32_t ncells, cells_cap;
    uint32_t *ctab; /* cell index + 1; 0 empty */
    uint32_t ctab_cap;
    uint32_t last_cell; /* cache: index + 1 */
    size_t charged;
};

/* ---- memory ---------------------------------------------------------------- */

static int
agg_charge(struct qt_agg *a, size_t bytes)
{
    int rc = qt_qctx_charge(a->ctx, bytes);
    if (rc == 0)
        a->charged += bytes;
    return rc;
}

/* Grow *p (elements of size sz, capacity *cap) to at least need. */
static int
agg_grow(struct qt_agg *a, void **p, uint32_t *cap, uint32_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    uint64_t ncap = *cap == 0 ? 16 : (uint64_t)*cap * 2;
    while (ncap < need)
        ncap *= 2;
    if (ncap > UINT32_MAX / 2)
        return qt_qctx_fail(a->ctx, QT_ELIMIT, "aggregation: too many groups or buckets");
    int rc = agg_charge(a, (size_t)(ncap - *cap) * sz);
    if (rc != 0)
        return rc;
    void *n = qt_realloc(*p, (size_t)ncap * sz);
    if (n == NULL)
        return qt_qctx_fail(a->ctx, QT_ENOMEM, "aggregation: out of memory");
    *p = n;
    *cap = (uint32_t)ncap;
    return 0;
}

/* ---- functions ---------------------------------------------------------------- */

static unsigned
fn_need(enum qt_qry_agg_fn fn)
{
    switch (fn) {
    case QT_QRY_AGG_COUNT: return 0;
    case QT_QRY_AGG_SUM:
    case QT_QRY_AGG_AVG: return NEED_SUM;
    case QT_QRY_AGG_MIN:
    case QT_QRY_AGG_MAX:
    case QT_QRY_AGG_SPREAD: return NEED_MINMAX;
    case QT_QRY_AGG_FIRST: return NEED_FIRST;
    case QT_QRY_AGG_LAST: return NEED_LAST;
    case QT_QRY_AGG_STDDEV: return NEED_STD;
    case QT_QRY_AGG_PERCENTILE: return NEED_PCT;
    }
    qt_unreachable();
}

const char *
qt_agg_unsupported(const struct qt_qry_stage_agg *spec, enum qt_vtype vt)
{
    for (uint32_t i = 0; i < spec->fns_count; i++) {
        enum qt_qry_agg_fn fn = spec->fns[i].fn;
        bool ok = fn == QT_QRY_AGG_COUNT || fn == QT_QRY_AGG_FIRST || fn == QT_QRY_AGG_LAST ||
                  vt == QT_VT_FLOAT || vt == QT_VT_INT ||
                  (vt == QT_VT_BOOL && fn == QT_QRY_AGG_SUM);
        if (!ok)
            return qt_qry_agg_fn_name(fn);
    }
    return NULL;
}

bool
qt_agg_needs_points(const struct qt_agg *a)
{
    return (a->need & (NEED_STD | NEED_PCT)) != 0;
}

int
qt_agg_create(struct qt_qctx *ctx, const struct qt_qry *q, struct qt_agg **out)
{
    qt_assert(q->agg != NULL);
    qt_assert(q->agg->kind == QT_QRY_STAGE_AGG);
    struct qt_agg *a = qt_calloc(1, sizeof(*a));
    if (a == NULL)
        return qt_qctx_fail(ctx, QT_ENOMEM, "aggregation: out of memory");
    a->ctx = ctx;
    a->q = q;
    a->spec = &q->agg->u.agg;
    for (uint32_t i = 0; i < q->stages_count; i++)
        if (q->stages[i].kind == QT_QRY_STAGE_FILL)
            a->fill = &q->stages[i];
    for (uint32_t i = 0; i < a->spec->fns_count; i++)
        a->need |= fn_need(a->spec->fns[i].fn);
    a->mode = a->spec->bucket_ns == 0 ? B_WHOLE : a->spec->tz != NULL ? B_TZ : B_EPOCH;
    qt_assert(a->mode != B_TZ || a->spec->bucket_days > 0);
    *out = a;
    return 0;
}

void
qt_agg_destroy(struct qt_agg *a)
{
    if (a == NULL)
        return;
    for (uint32_t i = 0; i < a->ncells; i++) {
        qt_free(a->cells[i].pv);
        qt_free(a->cells[i].first.s);
        qt_free(a->cells[i].last.s);
    }
    qt_free(a->cells);
    qt_free(a->ctab);
    qt_free(a->groups);
    qt_free(a->gkeys);
    qt_free(a->gtab);
    qt_qctx_release(a->ctx, a->charged);
    qt_free(a);
}

/* ---- buckets ------------------------------------------------------------------- */

/* The bucket holding t: [*start, *last] (inclusive end, so the bucket
 * that reaches the end of time holds INT64_MAX). */
static void
bucket_of(const struct qt_agg *a, int64_t t, int64_t *start, int64_t *last)
{
    if (a->mode == B_WHOLE) {
        *start = INT64_MIN;
        *last = INT64_MAX;
    } else if (a->mode == B_EPOCH) {
        int64_t d = a->spec->bucket_ns;
        __int128 s = (__int128)qt_time_floor_div(t, d) * d;
        __int128 e = s + d - 1;
        *start = s < INT64_MIN ? INT64_MIN : (int64_t)s;
        *last = e > INT64_MAX ? INT64_MAX : (int64_t)e;
    } else {
        int64_t s, e;
        qt_tz_bucket(a->spec->tz, t, a->spec->bucket_days, &s, &e);
        *start = s;
        *last = e == INT64_MAX ? INT64_MAX : e - 1;
    }
    qt_assert(*start <= t && t <= *last);
}

/* ---- groups ---------------------------------------------------------------------- */

static uint64_t
mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* Double an open-addressing table of indexes + 1, rehashing with hf. */
static int
tab_grow(struct qt_agg *a, uint32_t **tab, uint32_t *cap, uint32_t n,
         uint64_t (*hf)(const struct qt_agg *, uint32_t))
{
    uint32_t ncap = *cap == 0 ? 64 : *cap * 2;
    if (ncap > (1u << 31))
        return qt_qctx_fail(a->ctx, QT_ELIMIT, "aggregation: too many groups or buckets");
    int rc = agg_charge(a, (size_t)(ncap - *cap) * sizeof(uint32_t));
    uint32_t *t = rc == 0 ? qt_calloc(ncap, sizeof(uint32_t)) : NULL;
    if (rc == 0 && t == NULL)
        rc = qt_qctx_fail(a->ctx, QT_ENOMEM, "aggregation: out of memory");
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t h = (uint32_t)hf(a, i) & (ncap - 1);
        while (t[h] != 0)
            h = (h + 1) & (ncap - 1);
        t[h] = i + 1;
    }
    qt_free(*tab);
    *tab = t;
    *cap = ncap;
    return 0;
}

static uint64_t
group_hash(const struct qt_agg *a, uint32_t g)
{
    return qt_hash64(a->gkeys + a->groups[g].off, a->groups[g].len);
}

/* Append the key of k (each by-tag value as u32 length + bytes). */
static int
group_key(struct qt_agg *a, const struct qt_serieskey *k, size_t *len)
{
    size_t need = 0;
    struct qt_str v[QT_QUERY_GROUP_TAGS_MAX];
    for (uint32_t i = 0; i < a->spec->tags_count; i++) {
        struct qt_str key = {a->spec->tags[i].p, a->spec->tags[i].len};
        v[i] = qt_sel_tag_value(k, key);
        need += 4 + v[i].len;
    }
    if (a->gkeys_len + need + 1 > a->gkeys_cap) { /* +1: never NULL, even for no tags */
        size_t cap = (a->gkeys_len + need) * 2 + 256;
        int rc = agg_charge(a, cap - a->gkeys_cap);
        uint8_t *p = rc == 0 ? qt_realloc(a->gkeys, cap) : NULL;
        if (rc == 0 && p == NULL)
            rc = qt_qctx_fail(a->ctx, QT_ENOMEM, "aggregation: out of memory");
        if (rc != 0)
            return rc;
        a->gkeys = p;
        a->gkeys_cap = cap;
    }
    uint8_t *o = a->gkeys + a->gkeys_len;
    for (uint32_t i = 0; i < a->spec->tags_count; i++) {
        memcpy(o, &v[i].len, 4);
        if (v[i].len > 0)
            memcpy(o + 4, v[i].p, v[i].len);
        o += 4 + v[i].len;
    }
    *len = need;
    return 0;
}

int
qt_agg_group(struct qt_agg *a, const struct qt_serieskey *k, uint32_t *g)
{
    size_t len;
    int rc = group_key(a, k, &len);
    if (rc != 0)
        return rc;
    const uint8_t *key = a->gkeys + a->gkeys_len;
    uint64_t h = qt_hash64(key, len);
    for (uint32_t i = a->gtab_cap == 0 ? 0 : (uint32_t)h & (a->gtab_cap - 1);
         a->gtab_cap > 0 && a->gtab[i] != 0; i = (i + 1) & (a->gtab_cap - 1)) {
        const struct agg_group *e = &a->groups[a->gtab[i] - 1];
        if (e->len == len && memcmp(a->gkeys + e->off, key, len) == 0) {
            *g = a->gtab[i] - 1;
            return 0;
        }
    }
    if ((rc = agg_grow(a, (void **)&a->groups, &a->groups_cap, a->ngroups + 1,
                       sizeof(*a->groups))) != 0)
        return rc;
    a->groups[a->ngroups] = (struct agg_group){.off = (uint32_t)a->gkeys_len, .len = (uint32_t)len};
    a->gkeys_len += len;
    a->ngroups++;
    *g = a->ngroups - 1;
    if ((uint64_t)a->ngroups * 2 > a->gtab_cap)
        return tab_grow(a, &a->gtab, &a->gtab_cap, a->ngroups, group_hash);
    uint32_t i = (uint32_t)h & (a->gtab_cap - 1);
    while (a->gtab[i] != 0)
        i = (i + 1) & (a->gtab_cap - 1);
    a->gtab[i] = a->ngroups;
    return 0;
}

/* Value i of group g's key into *v. */
static void
group_value(const struct qt_agg *a, uint32_t g, uint32_t i, struct qt_str *v)
{
    const uint8_t *p = a->gkeys + a->groups[g].off;
    for (uint32_t k = 0;; k++) {
        uint32_t len;
        memcpy(&len, p, 4);
        if (k == i) {
            *v = (struct qt_str){(const char *)p + 4, len};
            return;
        }
        p += 4 + len;
    }
}

/* ---- cells -------------------------------------------------------------------- */

static uint64_t
cell_hash_kv(uint32_t g, int64_t bucket)
{
    return mix64((uint64_t)bucket * 0x9e3779b97f4a7c15ull ^ ((uint64_t)g << 1));
}

static uint64_t
cell_hash(const struct qt_agg *a, uint32_t i)
{
    return cell_hash_kv(a->cells[i].group, a->cells[i].bucket);
}

static void
cell_init(struct agg_cell *c, uint32_t g, int64_t bucket)
{
    memset(c, 0, sizeof(*c));
    c->group = g;
    c->bucket = bucket;
    c->ts_min = INT64_MAX;
    c->first_ts = INT64_MAX;
    c->last_ts = INT64_MIN;
}

/* The cell of (g, bucket), created when absent. */
static int
cell_get(struct qt_agg *a, uint32_t g, int64_t bucket, struct agg_cell **out)
{
    if (a->last_cell != 0) {
        struct agg_cell *c = &a->cells[a->last_cell - 1];
        if (c->group == g && c->bucket == bucket) {
            *out = c;
            return 0;
        }
    }
    uint64_t h = cell_hash_kv(g, bucket);
    uint32_t i = a->ctab_cap == 0 ? 0 : (uint32_t)h & (a->ctab_cap - 1);
    for (; a->ctab_cap > 0 && a->ctab[i] != 0; i = (i + 1) & (a->ctab_cap - 1)) {
        struct agg_cell *c = &a->cells[a->ctab[i] - 1];
        if (c->group == g && c->bucket == bucket) {
            a->last_cell = a->ctab[i];
            *out = c;
            return 0;
        }
    }
    if (a->groups[g].cells >= QT_QUERY_BUCKETS_MAX)
        return qt_qctx_fail(a->ctx, QT_ELIMIT,
                            "more than %u buckets in one group; use a larger bucket or a range",
                            QT_QUERY_BUCKETS_MAX);
    int rc = agg_grow(a, (void **)&a->cells, &a->cells_cap, a->ncells + 1, sizeof(*a->cells));
    if (rc != 0)
        return rc;
    cell_init(&a->cells[a->ncells], g, bucket);
    a->ncells++;
    a->groups[g].cells++;
    if ((uint64_t)a->ncells * 2 > a->ctab_cap) {
        rc = tab_grow(a, &a->ctab, &a->ctab_cap, a->ncells, cell_hash);
    } else {
        for (i = (uint32_t)h & (a->ctab_cap - 1); a->ctab[i] != 0; i = (i + 1) & (a->ctab_cap - 1))
            ;
        a->ctab[i] = a->ncells;
    }
    a->last_cell = a->ncells;
    *out = &a->cells[a->ncells - 1];
    return rc;
}

/* ---- accumulation ------------------------------------------------------------- */

/* Neumaier's compensated addition; non-finite addends (and overflow) are
 * summed apart so they cannot poison the compensation term. */
static void
fsum_add(struct agg_cell *c, double x)
{
    double t = c->fsum + x;
    if (!isfinite(t)) {
        c->fspecial += x;
        c->kinds |= K_SPECIAL;
        return;
    }
    if (fabs(c->fsum) >= fabs(x))
        c->fcomp += (c->fsum - t) + x;
    else
        c->fcomp += (x - t) + c->fsum;
    c->fsum = t;
}

/* fsum_add over a run of values, as four independent Neumaier lanes (four
 * dependency chains instead of one) folded into the cell at the end.  A run
 * that leaves the finite range (NaN, infinities, overflow) is summed again
 * value by value so the non-finite handling stays as fsum_add defines it. */
static void
fsum_run(struct agg_cell *c, const union qt_value *v, uint32_t n)
{
    double s[4] = {0, 0, 0, 0}, k[4] = {0, 0, 0, 0};
    uint32_t i = 0;
    for (; n >= 16 && i + 4 <= n; i += 4) {
        for (int l = 0; l < 4; l++) {
            double x = v[i + (uint32_t)l].f, t = s[l] + x;
            k[l] += fabs(s[l]) >= fabs(x) ? (s[l] - t) + x : (x - t) + s[l];
            s[l] = t;
        }
    }
    bool finite = true;
    for (int l = 0; l < 4; l++)
        finite = finite && isfinite(s[l]) && isfinite(k[l]);
    if (!finite)
        i = 0;
    for (int l = 0; l < 4 && finite && i > 0; l++) {
        fsum_add(c, s[l]);
        fsum_add(c, k[l]);
    }
    for (; i < n; i++)
        fsum_add(c, v[i].f);
}

/* Set v to a value of type vt (strings copied, charged). */
static int
val_set(struct qt_agg *a, struct agg_val *v, enum qt_vtype vt, union qt_value x, const char *sp)
{
    v->vt = vt;
    if (vt == QT_VT_FLOAT)
        v->u.f = x.f;
    else if (vt != QT_VT_STRING)
        v->u.i = x.i;
    if (vt != QT_VT_STRING)
        return 0;
    uint32_t len = x.s.len;
    if (len > v->scap) {
        int rc = agg_charge(a, len - v->scap);
        char *s = rc == 0 ? qt_realloc(v->s, len) : NULL;
        if (rc == 0 && s == NULL)
            rc = qt_qctx_fail(a->ctx, QT_ENOMEM, "aggregation: out of memory");
        if (rc != 0)
            return rc;
        v->s = s;
        v->scap = len;
    }
    qt_assert(sp != NULL || len == 0);
    if (len > 0)
        memcpy(v->s, sp, len);
    v->slen = len;
    return 0;
}

static void
minmax_float(struct agg_cell *c, double lo, double hi)
{
    if (isnan(lo))
        return; /* no ordered value */
    if (!(c->kinds & K_FMM)) {
        c->fmin = lo;
        c->fmax = hi;
        c->kinds |= K_FMM;
        return;
    }
    if (lo < c->fmin)
        c->fmin = lo;
    if (hi > c->fmax)
        c->fmax = hi;
}

static void
minmax_int(struct agg_cell *c, int64_t lo, int64_t hi)
{
    if (!(c->kinds & K_IMM)) {
        c->imin = lo;
        c->imax = hi;
        c->kinds |= K_IMM;
        return;
    }
    if (lo < c->imin)
        c->imin = lo;
    if (hi > c->imax)
        c->imax = hi;
}

/* first/last of a run: (t0, v0) is its first point, (t1, v1) its last. */
static int
firstlast(struct qt_agg *a, struct agg_cell *c, enum qt_vtype vt, int64_t t0, union qt_value v0,
          const char *s0, int64_t t1, union qt_value v1, const char *s1)
{
    int rc = 0;
    if ((a->need & NEED_FIRST) && t0 < c->first_ts) {
        c->first_ts = t0;
        rc = val_set(a, &c->first, vt, v0, s0);
    }
    if (rc == 0 && (a->need & NEED_LAST) && t1 > c->last_ts) {
        c->last_ts = t1;
        rc = val_set(a, &c->last, vt, v1, s1);
    }
    return rc;
}

bool
qt_agg_one_bucket(const struct qt_agg *a, int64_t t0, int64_t t1)
{
    int64_t start, last;
    bucket_of(a, t0, &start, &last);
    return t1 <= last;
}

int
qt_agg_stats(struct qt_agg *a, uint32_t g, enum qt_vtype vt, const struct qt_chunk *c)
{
    qt_assert(c->kind == QT_CHUNK_STATS);
    qt_assert(g < a->ngroups);
    int64_t start, last;
    bucket_of(a, c->ts_min, &start, &last);
    const struct qt_stats *s = &c->stats;
    if (c->ts_max > last || qt_agg_needs_points(a) ||
        (vt == QT_VT_STRING && (a->need & (NEED_FIRST | NEED_LAST))) ||
        (vt == QT_VT_INT && s->sum_overflow && (a->need & NEED_SUM)))
        return 0;
    struct agg_cell *cell = NULL;
    int rc = cell_get(a, g, start, &cell);
    if (rc != 0)
        return rc;
    cell->count += c->n;
    if (c->ts_min < cell->ts_min)
        cell->ts_min = c->ts_min;
    if (vt == QT_VT_STRING)
        return 1;
    if (vt == QT_VT_FLOAT) {
        cell->kinds |= K_FLOAT;
        if (a->need & NEED_SUM)
            fsum_add(cell, s->sum.f);
        if (a->need & NEED_MINMAX)
            minmax_float(cell, s->min.f, s->max.f);
    } else {
        cell->kinds |= K_INT;
        cell->isum += s->sum.i;
        if (a->need & NEED_MINMAX)
            minmax_int(cell, s->min.i, s->max.i);
    }
    union qt_value f = {0}, l = {0};
    if (vt == QT_VT_FLOAT) {
        f.f = s->first.f;
        l.f = s->last.f;
    } else {
        f.i = s->first.i;
        l.i = s->last.i;
    }
    rc = firstlast(a, cell, vt, c->ts_min, f, NULL, c->ts_max, l, NULL);
    return rc != 0 ? rc : 1;
}

/* First index in ts[from..n) with ts > last (n if none); ts ascending. */
static uint32_t
run_end(const int64_t *ts, uint32_t from, uint32_t n, int64_t last)
{
    if (ts[n - 1] <= last)
        return n;
    uint32_t lo = from, hi = n - 1; /* ts[hi] > last */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ts[mid] > last)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Append the non-NaN values of a run for percentile (charged). */
static int
pct_add(struct qt_agg *a, struct agg_cell *c, double x)
{
    if (isnan(x))
        return 0;
    if (c->pn == c->pcap) {
        int rc = agg_grow(a, (void **)&c->pv, &c->pcap, c->pn + 1, sizeof(double));
        if (rc != 0)
            return rc;
    }
    c->pv[c->pn++] = x;
    c->psorted = false;
    return 0;
}

static void
welford(struct agg_cell *c, double x)
{
    c->w_n++;
    double d = x - c->w_mean;
    c->w_mean += d / (double)c->w_n;
    c->w_m2 += d * (x - c->w_mean);
}

/* Accumulate the values of one run (one bucket) of a numeric series. */
static int
run_numeric(struct qt_agg *a, struct agg_cell *c, enum qt_vtype vt, const union qt_value *v,
            uint32_t n)
{
    int rc = 0;
    if (vt == QT_VT_FLOAT) {
        c->kinds |= K_FLOAT;
        if (a->need & NEED_SUM)
            fsum_run(c, v, n);
        if (a->need & NEED_MINMAX) {
            uint32_t i = 0;
            while (i < n && isnan(v[i].f))
                i++;
            double lo = i < n ? v[i].f : NAN, hi = lo;
            for (; i < n; i++) { /* NaN compares false: skipped */
                lo = v[i].f < lo ? v[i].f : lo;
                hi = v[i].f > hi ? v[i].f : hi;
            }
            minmax_float(c, lo, hi);
        }
        for (uint32_t i = 0; i < n && (a->need & NEED_STD); i++)
            welford(c, v[i].f);
        for (uint32_t i = 0; i < n && rc == 0 && (a->need & NEED_PCT); i++)
            rc = pct_add(a, c, v[i].f);
        return rc;
    }
    c->kinds |= K_INT;
    __int128 sum = 0;
    int64_t lo = v[0].i, hi = v[0].i;
    for (uint32_t i = 0; i < n; i++) {
        sum += v[i].i;
        lo = v[i].i < lo ? v[i].i : lo;
        hi = v[i].i > hi ? v[i].i : hi;
    }
    c->isum += sum;
    if ((a->need & NEED_MINMAX) && vt == QT_VT_INT)
        minmax_int(c, lo, hi);
    for (uint32_t i = 0; i < n && (a->need & NEED_STD); i++)
        welford(c, (double)v[i].i);
    for (uint32_t i = 0; i < n && rc == 0 && (a->need & NEED_PCT); i++)
        rc = pct_add(a, c, (double)v[i].i);
    return rc;
}

int
qt_agg_points(struct qt_agg *a, uint32_t g, enum qt_vtype vt, const int64_t *ts,
              const union qt_value *v, uint32_t n, const char *arena)
{
    qt_assert(g < a->ngroups);
    qt_assert(vt >= QT_VT_FLOAT && vt <= QT_VT_STRING);
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0;) {
        int64_t start, last;
        bucket_of(a, ts[i], &start, &last);
        uint32_t j = run_end(ts, i, n, last);
        struct agg_cell *c = NULL;
        if ((rc = cell_get(a, g, start, &c)) != 0)
            break;
        c->count += j - i;
        if (ts[i] < c->ts_min)
            c->ts_min = ts[i];
        if (vt != QT_VT_STRING)
            rc = run_numeric(a, c, vt, v + i, j - i);
        const char *s0 = vt == QT_VT_STRING ? arena + v[i].s.off : NULL;
        const char *s1 = vt == QT_VT_STRING ? arena + v[j - 1].s.off : NULL;
        if (rc == 0)
            rc = firstlast(a, c, vt, ts[i], v[i], s0, ts[j - 1], v[j - 1], s1);
        i = j;
    }
    return rc;
}

/* ---- results ------------------------------------------------------------------ */

static double
float_total(const struct agg_cell *c)
{
    double t = (c->fsum + c->fcomp) + (double)c->isum;
    return (c->kinds & K_SPECIAL) ? t + c->fspecial : t;
}

static int
dbl_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Linear interpolation between closest ranks: rank h = (n-1) * p / 100. */
static double
percentile(struct agg_cell *c, double p)
{
    if (c->pn == 0)
        return NAN;
    if (!c->psorted) {
        qsort(c->pv, c->pn, sizeof(double), dbl_cmp);
        c->psorted = true;
    }
    double h = (double)(c->pn - 1) * p / 100.0;
    uint32_t lo = (uint32_t)floor(h);
    double frac = h - (double)lo;
    if (lo + 1 >= c->pn || frac == 0)
        return c->pv[lo < c->pn ? lo : c->pn - 1];
    return c->pv[lo] + frac * (c->pv[lo + 1] - c->pv[lo]);
}

static struct qt_cell
cell_of_val(const struct agg_val *v)
{
    switch (v->vt) {
    case QT_VT_FLOAT: return (struct qt_cell){.kind = QT_CELL_FLOAT, .u.f = v->u.f};
    case QT_VT_INT: return (struct qt_cell){.kind = QT_CELL_INT, .u.i = v->u.i};
    case QT_VT_BOOL: return (struct qt_cell){.kind = QT_CELL_BOOL, .u.b = v->u.i != 0};
    case QT_VT_STRING:
        return (struct qt_cell){.kind = QT_CELL_STR, .u.s = {v->s != NULL ? v->s : "", v->slen}};
    }
    return (struct qt_cell){.kind = QT_CELL_NULL};
}

static struct qt_cell
cell_f(double f)
{
    return (struct qt_cell){.kind = QT_CELL_FLOAT, .u.f = f};
}

static struct qt_cell
cell_i(int64_t i)
{
    return (struct qt_cell){.kind = QT_CELL_INT, .u.i = i};
}

/* min (want_max false) or max of the cell's numbers. */
static struct qt_cell
final_minmax(const struct agg_cell *c, bool want_max)
{
    if (!(c->kinds & K_FLOAT))
        return (c->kinds & K_IMM) ? cell_i(want_max ? c->imax : c->imin)
                                  : (struct qt_cell){.kind = QT_CELL_NULL};
    double r = NAN;
    if (c->kinds & K_FMM)
        r = want_max ? c->fmax : c->fmin;
    if (c->kinds & K_IMM) {
        double x = (double)(want_max ? c->imax : c->imin);
        r = isnan(r) || (want_max ? x > r : x < r) ? x : r;
    }
    return cell_f(r);
}

static struct qt_cell
final_one(struct agg_cell *c, const struct qt_qry_agg *fn)
{
    bool flt = (c->kinds & K_FLOAT) != 0;
    switch (fn->fn) {
    case QT_QRY_AGG_COUNT: return cell_i((int64_t)c->count);
    case QT_QRY_AGG_SUM:
        if (!flt && c->isum >= INT64_MIN && c->isum <= INT64_MAX)
            return cell_i((int64_t)c->isum);
        return cell_f(flt ? float_total(c) : (double)c->isum);
    case QT_QRY_AGG_AVG: return cell_f((flt ? float_total(c) : (double)c->isum) / (double)c->count);
    case QT_QRY_AGG_MIN: return final_minmax(c, false);
    case QT_QRY_AGG_MAX: return final_minmax(c, true);
    case QT_QRY_AGG_SPREAD: {
        struct qt_cell lo = final_minmax(c, false), hi = final_minmax(c, true);
        int64_t d;
        if (lo.kind == QT_CELL_INT && !__builtin_sub_overflow(hi.u.i, lo.u.i, &d))
            return cell_i(d);
        if (lo.kind == QT_CELL_INT)
            return cell_f((double)hi.u.i - (double)lo.u.i);
        return lo.kind == QT_CELL_FLOAT ? cell_f(hi.u.f - lo.u.f) : lo;
    }
    case QT_QRY_AGG_FIRST: return cell_of_val(&c->first);
    case QT_QRY_AGG_LAST: return cell_of_val(&c->last);
    case QT_QRY_AGG_STDDEV:
        return c->w_n == 0 ? (struct qt_cell){.kind = QT_CELL_NULL}
                           : cell_f(sqrt(c->w_m2 / (double)c->w_n));
    case QT_QRY_AGG_PERCENTILE: return cell_f(percentile(c, fn->p));
    }
    qt_unreachable();
}

/* Sort key of a cell for emission. */
struct agg_order {
    uint32_t rank, cell;
    int64_t bucket;
};

static int
order_cmp(const void *x, const void *y)
{
    const struct agg_order *a = x, *b = y;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    return a->bucket < b->bucket ? -1 : a->bucket > b->bucket;
}

/* Sorting groups needs the aggregation: qsort has no context argument in
 * C11, so the comparison goes through this file-static pointer (one
 * emission at a time per thread). */
static _Thread_local const struct qt_agg *sort_agg;

static int
group_cmp(const void *x, const void *y)
{
    uint32_t g = *(const uint32_t *)x, h = *(const uint32_t *)y;
    for (uint32_t i = 0; i < sort_agg->spec->tags_count; i++) {
        struct qt_str a, b;
        group_value(sort_agg, g, i, &a);
        group_value(sort_agg, h, i, &b);
        int c = qt_serieskey_cmp(a, b);
        if (c != 0)
            return c;
    }
    return 0;
}

/* Emission state: the row being written and the neighbours fill needs. */
struct emit_st {
    struct qt_agg *a;
    struct qt_res *w;
    struct qt_cell *row;  /* time, tags, functions */
    struct qt_cell *prev; /* functions of the last real row of the group */
    struct qt_cell *next; /* functions of the next real row (linear) */
    bool has_prev;
    int64_t prev_t;
};

static void
cell_final(struct qt_agg *a, struct agg_cell *c, struct qt_cell *out)
{
    for (uint32_t j = 0; j < a->spec->fns_count; j++)
        out[j] = final_one(c, &a->spec->fns[j]);
}

static int
emit_row(struct emit_st *e, uint32_t g, int64_t t, const struct qt_cell *vals)
{
    const struct qt_qry_stage_agg *sp = e->a->spec;
    e->row[0] = cell_i(t);
    for (uint32_t i = 0; i < sp->tags_count; i++) {
        e->row[1 + i].kind = QT_CELL_STR;
        group_value(e->a, g, i, &e->row[1 + i].u.s);
    }
    if (vals != e->row + 1 + sp->tags_count)
        memcpy(e->row + 1 + sp->tags_count, vals, sp->fns_count * sizeof(*vals));
    return qt_res_row(e->w, e->row);
}

static bool
cell_is_number(const struct qt_cell *c)
{
    return c->kind == QT_CELL_INT || c->kind == QT_CELL_FLOAT;
}

static double
cell_number(const struct qt_cell *c)
{
    return c->kind == QT_CELL_INT ? (double)c->u.i : c->u.f;
}

/* The function cells of an empty bucket starting at t; nxt is the group's
 * next real cell (NULL if none), next_t its bucket. */
static void
fill_values(struct emit_st *e, int64_t t, struct agg_cell *nxt, struct qt_cell *out)
{
    const struct qt_qry_stage *f = e->a->fill;
    uint32_t nf = e->a->spec->fns_count;
    for (uint32_t j = 0; j < nf; j++)
        out[j] = (struct qt_cell){.kind = QT_CELL_NULL};
    if (f->u.fill.kind == QT_QRY_FILL_VALUE) {
        for (uint32_t j = 0; j < nf; j++)
            out[j] = cell_f(f->u.fill.value);
    } else if (f->u.fill.kind == QT_QRY_FILL_PREV && e->has_prev) {
        memcpy(out, e->prev, nf * sizeof(*out));
    } else if (f->u.fill.kind == QT_QRY_FILL_LINEAR && e->has_prev && nxt != NULL) {
        cell_final(e->a, nxt, e->next);
        double span = (double)((__int128)nxt->bucket - e->prev_t);
        double at = (double)((__int128)t - e->prev_t);
        for (uint32_t j = 0; j < nf; j++) {
            if (!cell_is_number(&e->prev[j]) || !cell_is_number(&e->next[j]))
                continue;
            double p = cell_number(&e->prev[j]), n = cell_number(&e->next[j]);
            out[j] = cell_f(p + (n - p) * (at / span));
        }
    }
}

/* Time of a real row: the bucket start; without buckets the range start,
 * or the earliest point when the query has no range. */
static int64_t
row_time(const struct qt_agg *a, const struct agg_cell *c)
{
    if (a->mode != B_WHOLE)
        return c->bucket;
    return a->q->range.bounded ? a->q->range.start.ns : c->ts_min;
}

/* Rows of group g whose cells are o[0..n), with fill between them. */
static int
emit_group(struct emit_st *e, uint32_t g, const struct agg_order *o, uint32_t n)
{
    struct qt_agg *a = e->a;
    struct qt_cell *vals = e->row + 1 + a->spec->tags_count;
    int rc = 0;
    if (a->fill == NULL || a->mode == B_WHOLE) {
        for (uint32_t k = 0; k < n && rc == 0 && !qt_res_full(e->w); k++) {
            struct agg_cell *c = &a->cells[o[k].cell];
            cell_final(a, c, vals);
            rc = emit_row(e, g, row_time(a, c), vals);
        }
        return rc;
    }
    const struct qt_qry_range *r = &a->q->range;
    int64_t s, l, end_start, unused;
    if (!r->bounded && n == 0)
        return 0;
    bucket_of(a, r->bounded ? r->start.ns : a->cells[o[0].cell].bucket, &s, &l);
    if (r->bounded)
        bucket_of(a, r->end.ns - 1, &end_start, &unused);
    else
        end_start = a->cells[o[n - 1].cell].bucket;
    e->has_prev = false;
    uint32_t k = 0;
    for (uint64_t steps = 1; rc == 0 && !qt_res_full(e->w); steps++) {
        if (steps > (uint64_t)QT_QUERY_BUCKETS_MAX + 1)
            return qt_qctx_fail(a->ctx, QT_ELIMIT,
                                "fill would write more than %u buckets in one group; use a "
                                "larger bucket or a range",
                                QT_QUERY_BUCKETS_MAX);
        if ((steps & 4095) == 0 && (rc = qt_qctx_check_deadline(a->ctx)) != 0)
            break;
        struct agg_cell *c = k < n ? &a->cells[o[k].cell] : NULL;
        qt_assert(c == NULL || c->bucket >= s); /* buckets tile: cells sit on starts */
        if (c != NULL && c->bucket == s) {
            cell_final(a, c, e->prev);
            e->has_prev = true;
            e->prev_t = s;
            k++;
            rc = emit_row(e, g, s, e->prev);
        } else {
            fill_values(e, s, c, vals);
            rc = emit_row(e, g, s, vals);
        }
        if (s >= end_start)
            break;
        bucket_of(a, l + 1, &s, &l);
    }
    return rc;
}

/* Declare the result columns: time, the by tags, the functions. */
static int
emit_columns(struct qt_agg *a, struct qt_res *w)
{
    const struct qt_qry_stage_agg *sp = a->spec;
    struct qt_res_col cols[1 + QT_QUERY_GROUP_TAGS_MAX + QT_QUERY_AGGS_MAX];
    char names[QT_QUERY_AGGS_MAX][64];
    cols[0] = (struct qt_res_col){.name = {"time", 4}, .kind = QT_RES_COL_TIME};
    for (uint32_t i = 0; i < sp->tags_count; i++)
        cols[1 + i] =
            (struct qt_res_col){.name = {sp->tags[i].p, sp->tags[i].len}, .kind = QT_RES_COL_TEXT};
    for (uint32_t j = 0; j < sp->fns_count; j++) {
        size_t n = qt_qry_agg_column(&sp->fns[j], names[j], sizeof(names[j]));
        n = n < sizeof(names[j]) ? n : sizeof(names[j]) - 1;
        cols[1 + sp->tags_count + j] =
            (struct qt_res_col){.name = {names[j], (uint32_t)n}, .kind = QT_RES_COL_VALUE};
    }
    return qt_res_begin(w, cols, 1 + sp->tags_count + sp->fns_count);
}

/* Groups in key order and cells in (group rank, bucket) order. */
static int
emit_order(struct qt_agg *a, uint32_t **groups, struct agg_order **order)
{
    size_t bytes = (size_t)a->ngroups * 2 * sizeof(uint32_t) + (size_t)a->ncells * sizeof(**order);
    int rc = agg_charge(a, bytes);
    if (rc != 0)
        return rc;
    *groups = qt_malloc(((size_t)a->ngroups * 2 + 1) * sizeof(uint32_t));
    *order = qt_malloc(((size_t)a->ncells + 1) * sizeof(**order));
    if (*groups == NULL || *order == NULL)
        return qt_qctx_fail(a->ctx, QT_ENOMEM, "aggregation: out of memory");
    uint32_t *rank = *groups + a->ngroups;
    for (uint32_t g = 0; g < a->ngroups; g++)
        (*groups)[g] = g;
    sort_agg = a;
    qsort(*groups, a->ngroups, sizeof(uint32_t), group_cmp);
    sort_agg = NULL;
    for (uint32_t i = 0; i < a->ngroups; i++)
        rank[(*groups)[i]] = i;
    for (uint32_t i = 0; i < a->ncells; i++)
        (*order)[i] = (struct agg_order){
            .rank = rank[a->cells[i].group], .cell = i, .bucket = a->cells[i].bucket};
    qsort(*order, a->ncells, sizeof(**order), order_cmp);
    return 0;
}

int
qt_agg_emit(struct qt_agg *a, struct qt_res *w)
{
    qt_assert(a != NULL && w != NULL);
    int rc = emit_columns(a, w);
    uint32_t *groups = NULL;
    struct agg_order *order = NULL;
    uint32_t nf = a->spec->fns_count;
    struct emit_st e = {.a = a, .w = w};
    e.row = qt_calloc(1 + a->spec->tags_count + 2 * nf + 1, sizeof(struct qt_cell));
    if (rc == 0 && e.row == NULL)
        rc = qt_qctx_fail(a->ctx, QT_ENOMEM, "aggregation: out of memory");
    e.prev = e.row != NULL ? e.row + 1 + a->spec->tags_count + nf : NULL;
    e.next = qt_calloc(nf + 1, sizeof(struct qt_cell));
    if (rc == 0 && e.next == NULL)
        rc = qt_qctx_fail(a->ctx, QT_ENOMEM, "aggregation: out of memory");
    if (rc == 0)
        rc = emit_order(a, &groups, &order);
    uint32_t k = 0;
    for (uint32_t i = 0; rc == 0 && i < a->ngroups && !qt_res_full(w); i++) {
        uint32_t from = k;
        while (k < a->ncells && order[k].rank == i)
            k++;
        rc = emit_group(&e, groups[i], order + from, k - from);
        if (rc == 0)
            rc = qt_qctx_check_deadline(a->ctx);
    }
    qt_free(e.row);
    qt_free(e.next);
    qt_free(groups);
    qt_free(order);
    return rc;
}
