/*
 * catmem.c -- arena, chunked vector, u32 list, hash index and dictionary for
 * the series catalog (contracts in catmem.h).
 *
 * Invariants:
 *   - arena: used <= cap; bytes handed out never move or change.
 *   - vec: dir has ndir entries for the whole capacity; a chunk, once set,
 *     is never replaced.
 *   - htab: n <= 3/4 of the slots; every id appears in exactly one slot;
 *     linear probing from (hash & mask) reaches it before an empty slot.
 */
#include "catmem.h"

#include "format/qt_alloc.h"
#include "format/qt_err.h"

#include <string.h>

/* Arena chunks grow from 64 KiB (small catalogs in tests) to 1 MiB; a chunk's
 * unused tail is at most the largest key, so waste stays below 0.4%. */
#define ARENA_CHUNK_MIN (64u << 10)
#define ARENA_CHUNK_MAX (1u << 20)

#define HTAB_SLOTS_MIN 16u

void
qt_catmem_arena_init(struct qt_catmem_arena *a)
{
    qt_assert(a != NULL);
    memset(a, 0, sizeof(*a));
}

void
qt_catmem_arena_deinit(struct qt_catmem_arena *a)
{
    if (a == NULL)
        return;
    for (uint32_t i = 0; i < a->nchunks; i++)
        qt_free(a->chunks[i]);
    qt_free(a->chunks);
    memset(a, 0, sizeof(*a));
}

int
qt_catmem_arena_reserve(struct qt_catmem_arena *a, size_t n)
{
    qt_assert(a->used <= a->cap);
    if (a->cap - a->used >= n)
        return 0;
    if (a->nchunks == a->chunks_cap) {
        uint32_t ncap = a->chunks_cap == 0 ? 16 : a->chunks_cap * 2;
        uint8_t **nc = qt_realloc(a->chunks, ncap * sizeof(*nc));
        if (nc == NULL)
            return qt_fail(QT_ENOMEM, "catalog: out of memory (arena directory)");
        a->chunks = nc;
        a->chunks_cap = ncap;
    }
    size_t size = a->cap == 0 ? ARENA_CHUNK_MIN : a->cap * 2;
    if (size > ARENA_CHUNK_MAX)
        size = ARENA_CHUNK_MAX;
    if (size < n)
        size = n;
    uint8_t *chunk = qt_malloc(size);
    if (chunk == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (key arena)");
    a->chunks[a->nchunks++] = chunk;
    a->cur = chunk;
    a->used = 0;
    a->cap = size;
    a->bytes_total += size;
    return 0;
}

uint8_t *
qt_catmem_arena_take(struct qt_catmem_arena *a, size_t n)
{
    qt_assert(a->cap - a->used >= n);
    uint8_t *p = a->cur + a->used;
    a->used += n;
    qt_assert(a->used <= a->cap);
    return p;
}

/* ---- vec ---- */

static uint32_t
vec_chunk_elems(uint32_t chunk)
{
    if (chunk == 0)
        return 1u << QT_CATMEM_VEC_LGMIN;
    if (chunk <= QT_CATMEM_VEC_LGMAX - QT_CATMEM_VEC_LGMIN)
        return 1u << (QT_CATMEM_VEC_LGMIN + chunk - 1);
    return 1u << QT_CATMEM_VEC_LGMAX;
}

int
qt_catmem_vec_init(struct qt_catmem_vec *v, uint32_t esz, uint32_t max)
{
    qt_assert(esz > 0 && max > 0);
    memset(v, 0, sizeof(*v));
    uint32_t chunk, off;
    qt_catmem_vec_locate(max - 1, &chunk, &off);
    v->ndir = chunk + 1;
    v->dir = qt_calloc(v->ndir, sizeof(*v->dir));
    if (v->dir == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (vector directory)");
    v->esz = esz;
    v->max = max;
    v->bytes_total = v->ndir * sizeof(*v->dir);
    return 0;
}

void
qt_catmem_vec_deinit(struct qt_catmem_vec *v, void (*fini)(void *elem))
{
    if (v == NULL || v->dir == NULL)
        return;
    for (uint32_t c = 0; c < v->ndir; c++) {
        if (v->dir[c] == NULL)
            continue;
        uint32_t n = vec_chunk_elems(c);
        for (uint32_t i = 0; fini != NULL && i < n; i++)
            fini(v->dir[c] + (size_t)i * v->esz);
        qt_free(v->dir[c]);
    }
    qt_free(v->dir);
    memset(v, 0, sizeof(*v));
}

int
qt_catmem_vec_reserve(struct qt_catmem_vec *v, uint32_t idx)
{
    qt_assert(v->dir != NULL);
    if (idx >= v->max)
        return qt_fail(QT_ELIMIT, "catalog: more entries than QT_CATALOG_SERIES_MAX");
    uint32_t chunk, off;
    qt_catmem_vec_locate(idx, &chunk, &off);
    qt_assert(chunk < v->ndir);
    if (v->dir[chunk] != NULL)
        return 0;
    uint32_t n = vec_chunk_elems(chunk);
    uint8_t *c = qt_calloc(n, v->esz);
    if (c == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (vector chunk)");
    /* Readers reach this chunk only through an index published later with
     * release semantics, so a plain store suffices. */
    v->dir[chunk] = c;
    v->bytes_total += (size_t)n * v->esz;
    return 0;
}

/* ---- list ---- */

int
qt_catmem_list_reserve(struct qt_catmem_list *l, uint32_t more)
{
    qt_assert(l->n <= l->cap);
    qt_assert(more <= UINT32_MAX - l->n);
    if (l->cap - l->n >= more)
        return 0;
    uint64_t want = (uint64_t)l->n + more;
    uint64_t ncap = l->cap < 4 ? (uint64_t)l->cap * 2 : (uint64_t)l->cap + l->cap / 2;
    if (ncap < want)
        ncap = want;
    if (ncap > UINT32_MAX)
        ncap = UINT32_MAX;
    uint32_t *nv = qt_realloc(l->v, (size_t)ncap * sizeof(uint32_t));
    if (nv == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (posting list)");
    l->v = nv;
    l->cap = (uint32_t)ncap;
    return 0;
}

void
qt_catmem_list_free(struct qt_catmem_list *l)
{
    if (l == NULL)
        return;
    qt_free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* ---- htab ---- */

static struct qt_catmem_hslots *
htab_alloc(uint64_t nslots)
{
    struct qt_catmem_hslots *s = qt_calloc(1, sizeof(*s) + nslots * sizeof(uint64_t));
    if (s == NULL)
        return NULL;
    s->mask = nslots - 1;
    return s;
}

int
qt_catmem_htab_init(struct qt_catmem_htab *t, bool deferred_free)
{
    memset(t, 0, sizeof(*t));
    struct qt_catmem_hslots *s = htab_alloc(HTAB_SLOTS_MIN);
    if (s == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (hash index)");
    atomic_init(&t->cur, s);
    t->deferred_free = deferred_free;
    t->bytes_total = sizeof(*s) + HTAB_SLOTS_MIN * sizeof(uint64_t);
    return 0;
}

void
qt_catmem_htab_deinit(struct qt_catmem_htab *t)
{
    if (t == NULL)
        return;
    qt_catmem_htab_reclaim(t);
    qt_free(atomic_load(&t->cur));
    atomic_store(&t->cur, NULL);
}

static void
htab_place(struct qt_catmem_hslots *s, uint64_t slot)
{
    uint64_t i = (slot >> 32) & s->mask;
    for (uint64_t probes = 0; probes <= s->mask; probes++) {
        if (atomic_load_explicit(&s->slot[i], memory_order_relaxed) == 0) {
            atomic_store_explicit(&s->slot[i], slot, memory_order_release);
            return;
        }
        i = (i + 1) & s->mask;
    }
    qt_unreachable(); /* reserve keeps the table at most 3/4 full */
}

int
qt_catmem_htab_reserve(struct qt_catmem_htab *t, uint32_t more)
{
    struct qt_catmem_hslots *old = atomic_load_explicit(&t->cur, memory_order_relaxed);
    uint64_t want = (uint64_t)t->n + more;
    uint64_t nslots = old->mask + 1;
    if (want * 4 <= nslots * 3)
        return 0;
    while (want * 4 > nslots * 3)
        nslots *= 2;
    if (t->deferred_free && t->nretired == QT_CATMEM_HTAB_RETIRED_MAX)
        return qt_fail(QT_ENOMEM, "catalog: too many retired hash arrays");
    struct qt_catmem_hslots *s = htab_alloc(nslots);
    if (s == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (hash index)");
    for (uint64_t i = 0; i <= old->mask; i++) {
        uint64_t v = atomic_load_explicit(&old->slot[i], memory_order_relaxed);
        if (v != 0)
            htab_place(s, v);
    }
    /* seq_cst: pairs with the reader-slot protocol in catalog.c. */
    atomic_store(&t->cur, s);
    t->bytes_total += sizeof(*s) + nslots * sizeof(uint64_t);
    if (t->deferred_free) {
        t->retired[t->nretired++] = old;
    } else {
        t->bytes_total -= sizeof(*old) + (old->mask + 1) * sizeof(uint64_t);
        qt_free(old);
    }
    return 0;
}

void
qt_catmem_htab_insert(struct qt_catmem_htab *t, uint64_t hash, uint32_t id)
{
    qt_assert(id != QT_CATMEM_NONE);
    struct qt_catmem_hslots *s = atomic_load_explicit(&t->cur, memory_order_relaxed);
    qt_assert(((uint64_t)t->n + 1) * 4 <= (s->mask + 1) * 3);
    htab_place(s, (hash << 32) | ((uint64_t)id + 1));
    t->n++;
}

void
qt_catmem_htab_reclaim(struct qt_catmem_htab *t)
{
    for (uint32_t i = 0; i < t->nretired; i++) {
        t->bytes_total -= sizeof(*t->retired[i]) + (t->retired[i]->mask + 1) * sizeof(uint64_t);
        qt_free(t->retired[i]);
        t->retired[i] = NULL;
    }
    t->nretired = 0;
}

uint32_t
qt_catmem_htab_find(const struct qt_catmem_hslots *s, uint64_t hash,
                    bool (*eq)(const void *ctx, uint32_t id), const void *ctx)
{
    qt_assert(s != NULL && eq != NULL);
    uint64_t frag = hash & 0xffffffffull;
    uint64_t i = frag & s->mask;
    for (uint64_t probes = 0; probes <= s->mask; probes++) {
        uint64_t v =
            atomic_load_explicit(&((struct qt_catmem_hslots *)s)->slot[i], memory_order_acquire);
        if (v == 0)
            return QT_CATMEM_NONE;
        if ((v >> 32) == frag && eq(ctx, (uint32_t)v - 1))
            return (uint32_t)v - 1;
        i = (i + 1) & s->mask;
    }
    return QT_CATMEM_NONE;
}

/* ---- dict ---- */

int
qt_catmem_dict_init(struct qt_catmem_dict *d, uint32_t max)
{
    memset(d, 0, sizeof(*d));
    int rc = qt_catmem_htab_init(&d->tab, false);
    if (rc != 0)
        return rc;
    rc = qt_catmem_vec_init(&d->ents, sizeof(struct qt_catmem_dent), max);
    if (rc != 0)
        qt_catmem_htab_deinit(&d->tab);
    return rc;
}

void
qt_catmem_dict_deinit(struct qt_catmem_dict *d)
{
    if (d == NULL)
        return;
    qt_catmem_htab_deinit(&d->tab);
    qt_catmem_vec_deinit(&d->ents, NULL);
}

struct dict_probe {
    const struct qt_catmem_dict *d;
    const void *key;
    uint32_t len;
};

static bool
dict_eq(const void *ctx, uint32_t id)
{
    const struct dict_probe *pr = ctx;
    const struct qt_catmem_dent *e = qt_catmem_dict_at(pr->d, id);
    return e->len == pr->len && memcmp(e->p, pr->key, pr->len) == 0;
}

uint32_t
qt_catmem_dict_find(const struct qt_catmem_dict *d, const void *key, uint32_t len, uint64_t hash)
{
    struct dict_probe pr = {d, key, len};
    const struct qt_catmem_hslots *s = atomic_load_explicit(&d->tab.cur, memory_order_acquire);
    return qt_catmem_htab_find(s, hash, dict_eq, &pr);
}

int
qt_catmem_dict_reserve(struct qt_catmem_dict *d, uint32_t more)
{
    qt_assert(d->n == d->tab.n);
    int rc = qt_catmem_htab_reserve(&d->tab, more);
    for (uint32_t i = 0; rc == 0 && i < more; i++)
        rc = qt_catmem_vec_reserve(&d->ents, d->n + i);
    return rc;
}

uint32_t
qt_catmem_dict_insert(struct qt_catmem_dict *d, const uint8_t *stored, uint32_t len, uint64_t hash)
{
    qt_assert(d->n == d->tab.n);
    uint32_t id = d->n;
    struct qt_catmem_dent *e = qt_catmem_vec_at(&d->ents, id);
    e->p = stored;
    e->len = len;
    e->hash_lo = (uint32_t)hash;
    d->n++;
    qt_catmem_htab_insert(&d->tab, hash, id);
    return id;
}
