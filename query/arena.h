/*
 * arena.h -- per-query bump allocator (Postgres memory-context style).
 *
 * A query's AST, strings and (later) executor state live in one arena and
 * die together: qt_arena_deinit() frees everything at once, so no node needs
 * its own free and error paths cannot leak a node.  Chunks come from
 * qt_alloc.h (so allocation-failure injection reaches them) and grow as
 * needed; a hard cap (max_bytes) bounds what one query may take.
 *
 * Contract: not thread-safe (one arena per query, one thread at a time).
 * Allocations are zeroed and aligned to QT_ARENA_ALIGN.  On failure
 * qt_arena_alloc() returns NULL and records the reason in a->error:
 * QT_ENOMEM (the heap said no) or QT_ELIMIT (max_bytes would be exceeded).
 */
#ifndef QT_ARENA_H
#define QT_ARENA_H

#include <stddef.h>
#include <stdint.h>

#define QT_ARENA_ALIGN 16u

struct qt_arena_chunk;

struct qt_arena {
    struct qt_arena_chunk *head; /* newest chunk first */
    size_t chunk_bytes;          /* payload size of an ordinary chunk */
    size_t max_bytes;            /* cap on heap bytes held (chunks + headers) */
    size_t held_bytes;           /* heap bytes held now */
    size_t used_bytes;           /* bytes handed out (incl. alignment) */
    int error;                   /* 0, or why the last allocation failed */
};

/* Set up an empty arena; no memory is taken until the first allocation.
 * chunk_bytes > 0, max_bytes >= chunk_bytes. */
void qt_arena_init(struct qt_arena *a, size_t chunk_bytes, size_t max_bytes);

/* Zeroed, QT_ARENA_ALIGN-aligned block of `size` bytes (size 0 gives a
 * valid unique pointer), owned by the arena until qt_arena_deinit(). */
void *qt_arena_alloc(struct qt_arena *a, size_t size);

/* n elements of elem_size bytes with overflow checking; as qt_arena_alloc. */
void *qt_arena_array(struct qt_arena *a, size_t n, size_t elem_size);

/* Copy s[0..n) into the arena and NUL-terminate it. */
char *qt_arena_strndup(struct qt_arena *a, const char *s, size_t n);

/* Free every chunk; the arena is empty (and reusable) afterwards.  Every
 * pointer it handed out is invalid.  Accepts an arena never allocated from. */
void qt_arena_deinit(struct qt_arena *a);

#endif
