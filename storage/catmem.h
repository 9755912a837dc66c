/*
 * catmem.h -- memory building blocks of the series catalog (storage/catalog.c):
 * an append-only byte arena, a chunked vector whose elements never move, a
 * growable u32 list (posting lists), an open-addressing hash index of dense
 * u32 ids, and a string dictionary built from them.
 *
 * Shared rules:
 *   - One writer at a time (the catalog's writer mutex); the writer reserves
 *     capacity first (*_reserve: the only calls that allocate or fail) and
 *     then mutates with calls that cannot fail.  That lets the catalog do all
 *     allocation before it appends to its log, and publish nothing half-done.
 *   - Arena bytes and vector elements never move once handed out, so readers
 *     that learned an index or pointer through a release/acquire pair may use
 *     them without a lock until the structure is destroyed.
 *   - A hash index created with deferred_free keeps replaced slot arrays on a
 *     retired list until qt_catmem_htab_reclaim(): lock-free readers may
 *     still be probing them (the catalog decides when none can be).
 * All memory comes from qt_alloc.h; nothing here logs or does I/O.
 */
#ifndef QT_CATMEM_H
#define QT_CATMEM_H

#include "format/qt_assert.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "No id" in every u32 id space of the catalog. */
#define QT_CATMEM_NONE UINT32_MAX

/* ---- arena ------------------------------------------------------------- */

struct qt_catmem_arena {
    uint8_t *cur;     /* current chunk */
    size_t used, cap; /* bytes used / size of the current chunk */
    uint8_t **chunks; /* every chunk, for deinit (writer only) */
    uint32_t nchunks, chunks_cap;
    size_t bytes_total; /* sum of chunk sizes (accounting) */
};

void qt_catmem_arena_init(struct qt_catmem_arena *a);
void qt_catmem_arena_deinit(struct qt_catmem_arena *a);
/* Make n contiguous bytes available for the next takes.  0 or QT_ENOMEM. */
int qt_catmem_arena_reserve(struct qt_catmem_arena *a, size_t n);
/* Hand out n reserved bytes (never fails; asserts the reservation). */
uint8_t *qt_catmem_arena_take(struct qt_catmem_arena *a, size_t n);

/* ---- chunked vector ---------------------------------------------------- */

/* Chunk sizes double from 2^LGMIN to 2^LGMAX elements, then stay at 2^LGMAX:
 * small vectors stay small, big ones waste at most one chunk. */
#define QT_CATMEM_VEC_LGMIN 6u
#define QT_CATMEM_VEC_LGMAX 16u

struct qt_catmem_vec {
    uint8_t **dir; /* fixed-size directory of zero-initialised chunks */
    uint32_t ndir;
    uint32_t esz; /* element size in bytes */
    uint32_t max; /* element capacity limit */
    size_t bytes_total;
};

int qt_catmem_vec_init(struct qt_catmem_vec *v, uint32_t esz, uint32_t max);
/* Calls fini (if not NULL) on every element of every allocated chunk. */
void qt_catmem_vec_deinit(struct qt_catmem_vec *v, void (*fini)(void *elem));
/* Make element idx addressable (zeroed when first allocated).  0, QT_ELIMIT
 * (idx >= max) or QT_ENOMEM. */
int qt_catmem_vec_reserve(struct qt_catmem_vec *v, uint32_t idx);

static inline void
qt_catmem_vec_locate(uint32_t idx, uint32_t *chunk, uint32_t *off)
{
    if (idx < (1u << QT_CATMEM_VEC_LGMIN)) {
        *chunk = 0;
        *off = idx;
    } else if (idx < (1u << QT_CATMEM_VEC_LGMAX)) {
        uint32_t bits = 32u - (uint32_t)__builtin_clz(idx); /* idx in [2^(bits-1), 2^bits) */
        *chunk = bits - QT_CATMEM_VEC_LGMIN;
        *off = idx - (1u << (bits - 1));
    } else {
        *chunk = (QT_CATMEM_VEC_LGMAX - QT_CATMEM_VEC_LGMIN) + (idx >> QT_CATMEM_VEC_LGMAX);
        *off = idx & ((1u << QT_CATMEM_VEC_LGMAX) - 1);
    }
}

/* Element idx; it must have been reserved (the chunk exists). */
static inline void *
qt_catmem_vec_at(const struct qt_catmem_vec *v, uint32_t idx)
{
    uint32_t chunk, off;
    qt_catmem_vec_locate(idx, &chunk, &off);
    qt_assert(chunk < v->ndir && v->dir[chunk] != NULL);
    return v->dir[chunk] + (size_t)off * v->esz;
}

/* ---- u32 list ---------------------------------------------------------- */

/* A growable array of u32 (posting lists are sorted because sids only grow).
 * Readers must hold the catalog's index lock: reserve may move v. */
struct qt_catmem_list {
    uint32_t *v;
    uint32_t n, cap;
};

/* Make room for `more` pushes.  0 or QT_ENOMEM. */
int qt_catmem_list_reserve(struct qt_catmem_list *l, uint32_t more);
void qt_catmem_list_free(struct qt_catmem_list *l);

static inline void
qt_catmem_list_push(struct qt_catmem_list *l, uint32_t x)
{
    qt_assert(l->n < l->cap);
    l->v[l->n++] = x;
}

/* ---- hash index -------------------------------------------------------- */

/* Slot: high 32 bits = low 32 bits of the entry's hash, low 32 bits = id + 1;
 * 0 = empty.  The home position is (hash & mask), so growing needs no
 * rehash callback; the stored hash bits above the mask filter probes. */
struct qt_catmem_hslots {
    uint64_t mask;
    _Atomic uint64_t slot[];
};

#define QT_CATMEM_HTAB_RETIRED_MAX 40u /* doublings from 16 to 2^32 slots, plus slack */

struct qt_catmem_htab {
    _Atomic(struct qt_catmem_hslots *) cur;
    uint32_t n;
    bool deferred_free;
    uint32_t nretired;
    struct qt_catmem_hslots *retired[QT_CATMEM_HTAB_RETIRED_MAX];
    size_t bytes_total; /* current + retired arrays */
};

int qt_catmem_htab_init(struct qt_catmem_htab *t, bool deferred_free);
void qt_catmem_htab_deinit(struct qt_catmem_htab *t);
/* Grow so that `more` inserts keep the load <= 3/4.  0 or QT_ENOMEM. */
int qt_catmem_htab_reserve(struct qt_catmem_htab *t, uint32_t more);
/* Insert (hash, id); id must not be present.  Never fails after reserve.
 * The slot store is a release: an id's data written before is visible to
 * readers that find it. */
void qt_catmem_htab_insert(struct qt_catmem_htab *t, uint64_t hash, uint32_t id);
/* Free retired slot arrays.  Caller guarantees no reader still uses them. */
void qt_catmem_htab_reclaim(struct qt_catmem_htab *t);

/* Find the id whose hash is `hash` and for which eq(ctx, id) holds, in the
 * slot array s (from atomic_load of t->cur); QT_CATMEM_NONE if absent. */
uint32_t qt_catmem_htab_find(const struct qt_catmem_hslots *s, uint64_t hash,
                             bool (*eq)(const void *ctx, uint32_t id), const void *ctx);

/* Mix a 64-bit value (ids chosen by a test hook may be small integers). */
static inline uint64_t
qt_catmem_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* ---- string dictionary ------------------------------------------------- */

struct qt_catmem_dent {
    const uint8_t *p; /* arena bytes */
    uint32_t len;
    uint32_t hash_lo;
};

struct qt_catmem_dict {
    struct qt_catmem_htab tab;
    struct qt_catmem_vec ents; /* struct qt_catmem_dent, by id */
    uint32_t n;
    uint32_t pending; /* scratch for the catalog's reserve pass */
};

int qt_catmem_dict_init(struct qt_catmem_dict *d, uint32_t max);
void qt_catmem_dict_deinit(struct qt_catmem_dict *d);
/* Id of key, or QT_CATMEM_NONE.  hash = qt_hash64(key, len). */
uint32_t qt_catmem_dict_find(const struct qt_catmem_dict *d, const void *key, uint32_t len,
                             uint64_t hash);
/* Room for `more` inserts (table and entries).  0, QT_ELIMIT or QT_ENOMEM. */
int qt_catmem_dict_reserve(struct qt_catmem_dict *d, uint32_t more);
/* Insert a key whose bytes already live in stable memory (the arena); returns
 * its new id (= previous d->n).  Never fails after reserve. */
uint32_t qt_catmem_dict_insert(struct qt_catmem_dict *d, const uint8_t *stored, uint32_t len,
                               uint64_t hash);

static inline const struct qt_catmem_dent *
qt_catmem_dict_at(const struct qt_catmem_dict *d, uint32_t id)
{
    return (const struct qt_catmem_dent *)qt_catmem_vec_at(&d->ents, id);
}

#endif
