/*
 * arena.c -- per-query bump allocator (see arena.h).
 *
 * Invariants: every chunk's used <= size; held_bytes is the sum of
 * (header + size) over the chunk list and never exceeds max_bytes; only the
 * head chunk is allocated from (older chunks are full enough that skipping
 * their tails wastes at most one chunk's slack per chunk).
 */
#include "arena.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"

#include <string.h>

struct qt_arena_chunk {
    struct qt_arena_chunk *next;
    size_t size; /* payload bytes after the header */
    size_t used;
    _Alignas(QT_ARENA_ALIGN) unsigned char data[];
};

static_assert(sizeof(struct qt_arena_chunk) % QT_ARENA_ALIGN == 0, "payload stays aligned");

void
qt_arena_init(struct qt_arena *a, size_t chunk_bytes, size_t max_bytes)
{
    qt_assert(a != NULL);
    qt_assert(chunk_bytes > 0);
    qt_assert(max_bytes >= chunk_bytes);
    memset(a, 0, sizeof(*a));
    a->chunk_bytes = chunk_bytes;
    a->max_bytes = max_bytes;
}

/* Add a chunk with at least `need` payload bytes at the head of the list. */
static int
arena_grow(struct qt_arena *a, size_t need)
{
    size_t size = need > a->chunk_bytes ? need : a->chunk_bytes;
    size_t total = sizeof(struct qt_arena_chunk) + size;
    qt_assert(total > size); /* need was range-checked by the caller */
    if (total > a->max_bytes - a->held_bytes)
        return a->error = qt_fail(QT_ELIMIT, "arena: query memory limit reached");
    struct qt_arena_chunk *c = qt_malloc(total);
    if (c == NULL)
        return a->error = qt_fail(QT_ENOMEM, "arena: out of memory");
    c->next = a->head;
    c->size = size;
    c->used = 0;
    a->head = c;
    a->held_bytes += total;
    return 0;
}

void *
qt_arena_alloc(struct qt_arena *a, size_t size)
{
    qt_assert(a != NULL);
    qt_assert(a->chunk_bytes > 0);
    if (size > a->max_bytes) {
        a->error = qt_fail(QT_ELIMIT, "arena: query memory limit reached");
        return NULL;
    }
    size_t rounded = (size + QT_ARENA_ALIGN - 1) & ~(size_t)(QT_ARENA_ALIGN - 1);
    if (rounded == 0)
        rounded = QT_ARENA_ALIGN;
    struct qt_arena_chunk *c = a->head;
    if (c == NULL || c->size - c->used < rounded) {
        if (arena_grow(a, rounded) != 0)
            return NULL;
        c = a->head;
    }
    void *p = c->data + c->used;
    c->used += rounded;
    a->used_bytes += rounded;
    qt_assert(c->used <= c->size);
    memset(p, 0, size);
    return p;
}

void *
qt_arena_array(struct qt_arena *a, size_t n, size_t elem_size)
{
    qt_assert(elem_size > 0);
    if (n > SIZE_MAX / elem_size) {
        a->error = qt_fail(QT_ELIMIT, "arena: array size overflows");
        return NULL;
    }
    return qt_arena_alloc(a, n * elem_size);
}

char *
qt_arena_strndup(struct qt_arena *a, const char *s, size_t n)
{
    qt_assert(s != NULL || n == 0);
    if (n == SIZE_MAX) {
        a->error = qt_fail(QT_ELIMIT, "arena: string too long");
        return NULL;
    }
    char *d = qt_arena_alloc(a, n + 1);
    if (d == NULL)
        return NULL;
    if (n > 0)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void
qt_arena_deinit(struct qt_arena *a)
{
    qt_assert(a != NULL);
    struct qt_arena_chunk *c = a->head;
    while (c != NULL) {
        struct qt_arena_chunk *next = c->next;
        qt_free_sized(c, sizeof(*c) + c->size);
        c = next;
    }
    a->head = NULL;
    a->held_bytes = 0;
    a->used_bytes = 0;
    a->error = 0;
}
