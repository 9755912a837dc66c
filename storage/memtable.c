/*
 * memtable.c -- columnar write buffer (see memtable.h for the contract).
 *
 * Layout: a two-level table maps a dense gid to its group (top level of
 * MEM_TOP_SLOTS chunk pointers, each chunk MEM_CHUNK_SLOTS group pointers,
 * allocated on first use and never moved, so lookups need no lock).  A group
 * holds parallel row arrays: ts[], seq[], and per column vals[] plus a
 * presence bitmap.  Columns grow together (one capacity per group).
 *
 * Invariants (checked by mem_group_check in debug builds):
 *   - every column array has the group's capacity;
 *   - ordered == true implies ts[] strictly increasing over [0, nrows);
 *   - npresent of a column equals the popcount of its bitmap;
 *   - ts_min/ts_max bound every row (group) and every present cell (column).
 *
 * Appends only grow arrays before writing the row, so an allocation failure
 * leaves every existing row intact.
 */
#include "memtable.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MEM_CHUNK_BITS   16u
#define MEM_CHUNK_SLOTS  (1u << MEM_CHUNK_BITS)
#define MEM_TOP_SLOTS    (1u << (32u - MEM_CHUNK_BITS))
#define MEM_ROWS_INITIAL 16u

struct mcol {
    uint32_t sid;
    uint8_t vtype;
    union qt_value *vals;
    uint64_t *bits;
    uint32_t npresent;
    int64_t ts_min;
    int64_t ts_max;
};

struct mgroup {
    uint32_t gid;
    uint32_t nrows;
    uint32_t cap;
    bool ordered;
    int64_t *ts;
    uint64_t *seq;
    uint32_t ncols;
    uint32_t cols_cap;
    struct mcol *cols;
    char *arena;
    size_t arena_len;
    size_t arena_cap;
    int64_t ts_min;
    int64_t ts_max;
};

struct qt_memtable {
    _Atomic(struct mgroup **) top[MEM_TOP_SLOTS];
    pthread_mutex_t part[QT_MEM_PARTITIONS];
    _Atomic size_t bytes;
    _Atomic uint64_t rows;
    _Atomic uint64_t points;
    _Atomic uint64_t seq_min;
    _Atomic uint64_t seq_max;
};

static size_t
bits_words(uint32_t cap)
{
    return ((size_t)cap + 63) / 64;
}

static bool
bit_get(const uint64_t *bits, uint32_t i)
{
    return (bits[i >> 6] >> (i & 63)) & 1u;
}

int
qt_mem_create(struct qt_memtable **out)
{
    qt_assert(out != NULL);
    struct qt_memtable *m = qt_calloc(1, sizeof(*m));
    if (m == NULL)
        return QT_ENOMEM;
    for (uint32_t i = 0; i < QT_MEM_PARTITIONS; i++)
        pthread_mutex_init(&m->part[i], NULL);
    atomic_store(&m->seq_min, UINT64_MAX);
    atomic_store(&m->bytes, sizeof(*m));
    *out = m;
    return 0;
}

static void
mem_group_free(struct mgroup *g)
{
    for (uint32_t c = 0; c < g->ncols; c++) {
        qt_free(g->cols[c].vals);
        qt_free(g->cols[c].bits);
    }
    qt_free(g->cols);
    qt_free(g->ts);
    qt_free(g->seq);
    qt_free(g->arena);
    qt_free(g);
}

void
qt_mem_destroy(struct qt_memtable *m)
{
    if (m == NULL)
        return;
    for (uint32_t t = 0; t < MEM_TOP_SLOTS; t++) {
        struct mgroup **chunk = atomic_load(&m->top[t]);
        if (chunk == NULL)
            continue;
        for (uint32_t i = 0; i < MEM_CHUNK_SLOTS; i++) {
            if (chunk[i] != NULL)
                mem_group_free(chunk[i]);
        }
        qt_free(chunk);
    }
    for (uint32_t i = 0; i < QT_MEM_PARTITIONS; i++)
        pthread_mutex_destroy(&m->part[i]);
    qt_free(m);
}

/* The slot for gid, allocating its chunk if asked; NULL on failure/absent. */
static struct mgroup **
mem_slot(struct qt_memtable *m, uint32_t gid, bool create)
{
    uint32_t t = gid >> MEM_CHUNK_BITS;
    struct mgroup **chunk = atomic_load_explicit(&m->top[t], memory_order_acquire);
    if (chunk == NULL) {
        if (!create)
            return NULL;
        struct mgroup **fresh = qt_calloc(MEM_CHUNK_SLOTS, sizeof(*fresh));
        if (fresh == NULL)
            return NULL;
        struct mgroup **expected = NULL;
        if (atomic_compare_exchange_strong(&m->top[t], &expected, fresh)) {
            atomic_fetch_add(&m->bytes, MEM_CHUNK_SLOTS * sizeof(*fresh));
            chunk = fresh;
        } else {
            qt_free(fresh);
            chunk = expected;
        }
    }
    return &chunk[gid & (MEM_CHUNK_SLOTS - 1)];
}

static pthread_mutex_t *
mem_lock(struct qt_memtable *m, uint32_t gid)
{
    return &m->part[gid % QT_MEM_PARTITIONS];
}

/* Grow every row array of g to hold at least `need` rows. */
static int
mem_group_reserve(struct qt_memtable *m, struct mgroup *g, uint32_t need)
{
    if (need <= g->cap)
        return 0;
    uint32_t cap = g->cap == 0 ? MEM_ROWS_INITIAL : g->cap;
    while (cap < need)
        cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
    int64_t *ts = qt_realloc(g->ts, (size_t)cap * sizeof(*ts));
    if (ts == NULL)
        return QT_ENOMEM;
    g->ts = ts;
    uint64_t *seq = qt_realloc(g->seq, (size_t)cap * sizeof(*seq));
    if (seq == NULL)
        return QT_ENOMEM;
    g->seq = seq;
    for (uint32_t c = 0; c < g->ncols; c++) {
        struct mcol *col = &g->cols[c];
        union qt_value *vals = qt_realloc(col->vals, (size_t)cap * sizeof(*vals));
        if (vals == NULL)
            return QT_ENOMEM;
        col->vals = vals;
        uint64_t *bits = qt_realloc(col->bits, bits_words(cap) * sizeof(*bits));
        if (bits == NULL)
            return QT_ENOMEM;
        memset(bits + bits_words(g->cap), 0,
               (bits_words(cap) - bits_words(g->cap)) * sizeof(*bits));
        col->bits = bits;
    }
    size_t per_row = sizeof(int64_t) + sizeof(uint64_t) + g->ncols * sizeof(union qt_value);
    atomic_fetch_add(&m->bytes, (size_t)(cap - g->cap) * per_row +
                                    g->ncols * (bits_words(cap) - bits_words(g->cap)) * 8);
    g->cap = cap;
    return 0;
}

/* Index of sid's column in g, adding the column if absent; -1 on failure. */
static int
mem_group_column(struct qt_memtable *m, struct mgroup *g, uint32_t sid, uint8_t vtype, int *err)
{
    for (uint32_t c = 0; c < g->ncols; c++) {
        if (g->cols[c].sid != sid)
            continue;
        if (g->cols[c].vtype != vtype) {
            *err = qt_fail(QT_EINVAL, "memtable: value type differs from the series' type");
            return -1;
        }
        return (int)c;
    }
    if (g->ncols >= QT_GROUP_FIELDS_MAX) {
        *err = qt_fail(QT_ELIMIT, "memtable: too many fields in one group");
        return -1;
    }
    if (g->ncols == g->cols_cap) {
        uint32_t ncap = g->cols_cap == 0 ? 4 : g->cols_cap * 2;
        struct mcol *cols = qt_realloc(g->cols, ncap * sizeof(*cols));
        if (cols == NULL)
            goto out_nomem;
        g->cols = cols;
        g->cols_cap = ncap;
    }
    struct mcol col = {.sid = sid, .vtype = vtype, .ts_min = INT64_MAX, .ts_max = INT64_MIN};
    col.vals = qt_calloc(g->cap > 0 ? g->cap : 1, sizeof(*col.vals));
    col.bits = qt_calloc(bits_words(g->cap > 0 ? g->cap : 1), sizeof(*col.bits));
    if (col.vals == NULL || col.bits == NULL) {
        qt_free(col.vals);
        qt_free(col.bits);
        goto out_nomem;
    }
    atomic_fetch_add(&m->bytes, (size_t)g->cap * sizeof(union qt_value) + bits_words(g->cap) * 8);
    g->cols[g->ncols] = col;
    return (int)g->ncols++;
out_nomem:
    *err = qt_fail(QT_ENOMEM, "memtable: out of memory adding a column");
    return -1;
}

static int
mem_arena_reserve(struct qt_memtable *m, struct mgroup *g, size_t extra)
{
    if (g->arena_cap - g->arena_len >= extra)
        return 0;
    if (extra > UINT32_MAX - g->arena_len)
        return qt_fail(QT_ELIMIT, "memtable: string arena of one group exceeds 4 GiB");
    size_t cap = g->arena_cap == 0 ? 256 : g->arena_cap;
    while (cap - g->arena_len < extra)
        cap *= 2;
    char *a = qt_realloc(g->arena, cap);
    if (a == NULL)
        return QT_ENOMEM;
    atomic_fetch_add(&m->bytes, cap - g->arena_cap);
    g->arena = a;
    g->arena_cap = cap;
    return 0;
}

static struct mgroup *
mem_group_get(struct qt_memtable *m, uint32_t gid, bool create)
{
    struct mgroup **slot = mem_slot(m, gid, create);
    if (slot == NULL)
        return NULL;
    if (*slot != NULL || !create)
        return *slot;
    struct mgroup *g = qt_calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->gid = gid;
    g->ordered = true;
    g->ts_min = INT64_MAX;
    g->ts_max = INT64_MIN;
    atomic_fetch_add(&m->bytes, sizeof(*g));
    *slot = g;
    return g;
}

/* Prepare g for one more row with these cells; fills col_idx[]. */
static int
mem_append_prepare(struct qt_memtable *m, struct mgroup *g, const struct qt_mem_cell *cells,
                   uint32_t n, int *col_idx)
{
    int rc = mem_group_reserve(m, g, g->nrows + 1);
    if (rc != 0)
        return rc;
    size_t str_bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        int err = 0;
        col_idx[i] = mem_group_column(m, g, cells[i].sid, cells[i].vtype, &err);
        if (col_idx[i] < 0)
            return err;
        if (cells[i].vtype == QT_VT_STRING)
            str_bytes += cells[i].str.len;
    }
    /* A column added above has capacity for the reserved row too. */
    return str_bytes > 0 ? mem_arena_reserve(m, g, str_bytes) : 0;
}

int
qt_mem_append(struct qt_memtable *m, uint32_t gid, uint64_t seq, int64_t ts,
              const struct qt_mem_cell *cells, uint32_t n)
{
    qt_assert(m != NULL);
    qt_assert(n == 0 || cells != NULL);
    if (n > QT_GROUP_FIELDS_MAX)
        return qt_fail(QT_ELIMIT, "memtable: too many fields in one row");
    int col_idx[QT_GROUP_FIELDS_MAX];
    pthread_mutex_t *lock = mem_lock(m, gid);
    pthread_mutex_lock(lock);
    struct mgroup *g = mem_group_get(m, gid, true);
    int rc = g == NULL ? QT_ENOMEM : mem_append_prepare(m, g, cells, n, col_idx);
    if (rc != 0) {
        pthread_mutex_unlock(lock);
        return rc;
    }
    uint32_t r = g->nrows;
    if (r > 0 && ts <= g->ts[r - 1])
        g->ordered = false;
    g->ts[r] = ts;
    g->seq[r] = seq;
    for (uint32_t i = 0; i < n; i++) {
        struct mcol *col = &g->cols[col_idx[i]];
        union qt_value v = cells[i].v;
        if (cells[i].vtype == QT_VT_STRING) {
            memcpy(g->arena + g->arena_len, cells[i].str.p, cells[i].str.len);
            v.s.off = (uint32_t)g->arena_len;
            v.s.len = cells[i].str.len;
            g->arena_len += cells[i].str.len;
        }
        col->vals[r] = v;
        if (!bit_get(col->bits, r))
            col->npresent++;
        col->bits[r >> 6] |= 1ull << (r & 63);
        col->ts_min = ts < col->ts_min ? ts : col->ts_min;
        col->ts_max = ts > col->ts_max ? ts : col->ts_max;
    }
    g->nrows = r + 1;
    g->ts_min = ts < g->ts_min ? ts : g->ts_min;
    g->ts_max = ts > g->ts_max ? ts : g->ts_max;
    pthread_mutex_unlock(lock);

    atomic_fetch_add_explicit(&m->rows, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->points, n, memory_order_relaxed);
    uint64_t cur = atomic_load(&m->seq_min);
    while (seq < cur && !atomic_compare_exchange_weak(&m->seq_min, &cur, seq)) {
    }
    cur = atomic_load(&m->seq_max);
    while (seq > cur && !atomic_compare_exchange_weak(&m->seq_max, &cur, seq)) {
    }
    return 0;
}

size_t
qt_mem_bytes(const struct qt_memtable *m)
{
    return atomic_load_explicit(&m->bytes, memory_order_relaxed);
}

uint64_t
qt_mem_rows(const struct qt_memtable *m)
{
    return atomic_load_explicit(&m->rows, memory_order_relaxed);
}

uint64_t
qt_mem_points(const struct qt_memtable *m)
{
    return atomic_load_explicit(&m->points, memory_order_relaxed);
}

void
qt_mem_seq_range(const struct qt_memtable *m, uint64_t *seq_min, uint64_t *seq_max)
{
    uint64_t lo = atomic_load(&m->seq_min);
    uint64_t hi = atomic_load(&m->seq_max);
    *seq_min = lo == UINT64_MAX ? 0 : lo;
    *seq_max = hi;
}

/* qsort_r comparator over row indexes: by ts, then seq, then row order. */
static int
mem_row_cmp(const void *a, const void *b, void *arg)
{
    const struct mgroup *g = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (g->ts[x] != g->ts[y])
        return g->ts[x] < g->ts[y] ? -1 : 1;
    if (g->seq[x] != g->seq[y])
        return g->seq[x] < g->seq[y] ? -1 : 1;
    return x < y ? -1 : (x > y);
}

/* Row indexes of g with ts in [t0, t1), sorted by (ts, seq, index). */
static uint32_t *
mem_sorted_rows(const struct mgroup *g, int64_t t0, int64_t t1, uint32_t *count)
{
    uint32_t *idx = qt_malloc(((size_t)g->nrows + 1) * sizeof(*idx));
    if (idx == NULL)
        return NULL;
    uint32_t k = 0;
    for (uint32_t r = 0; r < g->nrows; r++) {
        if (g->ts[r] >= t0 && g->ts[r] < t1)
            idx[k++] = r;
    }
    if (!g->ordered)
        qsort_r(idx, k, sizeof(*idx), mem_row_cmp, (void *)g);
    *count = k;
    return idx;
}

static int
mem_rows_alloc(const struct mgroup *g, uint32_t nrows, struct qt_mem_group_rows *out)
{
    size_t n = nrows > 0 ? nrows : 1;
    out->ts = qt_malloc(n * sizeof(*out->ts));
    out->cols = qt_calloc(g->ncols > 0 ? g->ncols : 1, sizeof(*out->cols));
    if (out->ts == NULL || out->cols == NULL)
        return QT_ENOMEM;
    out->ncols = g->ncols;
    for (uint32_t c = 0; c < g->ncols; c++) {
        out->cols[c].sid = g->cols[c].sid;
        out->cols[c].vtype = g->cols[c].vtype;
        out->cols[c].vals = qt_malloc(n * sizeof(union qt_value));
        out->cols[c].present = qt_calloc(n, 1);
        if (out->cols[c].vals == NULL || out->cols[c].present == NULL)
            return QT_ENOMEM;
    }
    if (g->arena_len > 0) {
        out->arena = qt_malloc(g->arena_len);
        if (out->arena == NULL)
            return QT_ENOMEM;
    }
    return 0;
}

/* Merge one run idx[lo..hi) of equal timestamps into output row o. */
static void
mem_merge_run(const struct mgroup *g, const uint32_t *idx, uint32_t lo, uint32_t hi, uint32_t o,
              struct qt_mem_group_rows *out)
{
    out->ts[o] = g->ts[idx[lo]];
    for (uint32_t c = 0; c < g->ncols; c++) {
        const struct mcol *col = &g->cols[c];
        /* The run is sorted by seq: the last present cell wins. */
        for (uint32_t k = hi; k > lo; k--) {
            uint32_t r = idx[k - 1];
            if (!bit_get(col->bits, r))
                continue;
            union qt_value v = col->vals[r];
            if (col->vtype == QT_VT_STRING) {
                memcpy(out->arena + out->arena_len, g->arena + v.s.off, v.s.len);
                v.s.off = (uint32_t)out->arena_len;
                out->arena_len += v.s.len;
            }
            out->cols[c].vals[o] = v;
            out->cols[c].present[o] = 1;
            out->cols[c].npresent++;
            break;
        }
    }
}

static int
mem_collect_locked(const struct mgroup *g, int64_t t0, int64_t t1, struct qt_mem_group_rows *out)
{
    uint32_t k = 0;
    uint32_t *idx = mem_sorted_rows(g, t0, t1, &k);
    if (idx == NULL)
        return QT_ENOMEM;
    int rc = mem_rows_alloc(g, k, out);
    if (rc != 0) {
        qt_free(idx);
        return rc;
    }
    uint32_t o = 0;
    for (uint32_t lo = 0; lo < k;) {
        uint32_t hi = lo + 1;
        while (hi < k && g->ts[idx[hi]] == g->ts[idx[lo]])
            hi++;
        mem_merge_run(g, idx, lo, hi, o++, out);
        lo = hi;
    }
    out->nrows = o;
    qt_free(idx);
    qt_assert(out->arena_len <= g->arena_len);
    return 0;
}

int
qt_mem_collect_group(struct qt_memtable *m, uint32_t gid, int64_t t0, int64_t t1,
                     struct qt_mem_group_rows *out)
{
    qt_assert(m != NULL);
    qt_assert(out != NULL);
    memset(out, 0, sizeof(*out));
    out->gid = gid;
    pthread_mutex_t *lock = mem_lock(m, gid);
    pthread_mutex_lock(lock);
    struct mgroup *g = mem_group_get(m, gid, false);
    int rc = g == NULL ? QT_ENOTFOUND : mem_collect_locked(g, t0, t1, out);
    pthread_mutex_unlock(lock);
    if (rc != 0)
        qt_mem_rows_free(out);
    return rc;
}

void
qt_mem_rows_free(struct qt_mem_group_rows *rows)
{
    if (rows == NULL)
        return;
    for (uint32_t c = 0; rows->cols != NULL && c < rows->ncols; c++) {
        qt_free(rows->cols[c].vals);
        qt_free(rows->cols[c].present);
    }
    qt_free(rows->cols);
    qt_free(rows->ts);
    qt_free(rows->arena);
    memset(rows, 0, sizeof(*rows));
}

bool
qt_mem_group_range(struct qt_memtable *m, uint32_t gid, int64_t *ts_min, int64_t *ts_max)
{
    pthread_mutex_t *lock = mem_lock(m, gid);
    pthread_mutex_lock(lock);
    struct mgroup *g = mem_group_get(m, gid, false);
    bool any = g != NULL && g->nrows > 0;
    if (any) {
        *ts_min = g->ts_min;
        *ts_max = g->ts_max;
    }
    pthread_mutex_unlock(lock);
    return any;
}

bool
qt_mem_series_range(struct qt_memtable *m, uint32_t gid, uint32_t sid, int64_t *ts_min,
                    int64_t *ts_max)
{
    bool any = false;
    pthread_mutex_t *lock = mem_lock(m, gid);
    pthread_mutex_lock(lock);
    struct mgroup *g = mem_group_get(m, gid, false);
    for (uint32_t c = 0; g != NULL && c < g->ncols; c++) {
        if (g->cols[c].sid == sid && g->cols[c].npresent > 0) {
            *ts_min = g->cols[c].ts_min;
            *ts_max = g->cols[c].ts_max;
            any = true;
        }
    }
    pthread_mutex_unlock(lock);
    return any;
}

int
qt_mem_foreach_group(struct qt_memtable *m, int (*fn)(void *arg, uint32_t gid), void *arg)
{
    qt_assert(fn != NULL);
    for (uint32_t t = 0; t < MEM_TOP_SLOTS; t++) {
        struct mgroup **chunk = atomic_load(&m->top[t]);
        if (chunk == NULL)
            continue;
        for (uint32_t i = 0; i < MEM_CHUNK_SLOTS; i++) {
            if (chunk[i] == NULL || chunk[i]->nrows == 0)
                continue;
            int rc = fn(arg, chunk[i]->gid);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}
