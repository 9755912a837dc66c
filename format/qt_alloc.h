/*
 * qt_alloc.h -- the one door to the heap.
 *
 * jemalloc is the process allocator (linked in release builds; it replaces
 * malloc).  Sanitizer builds define QT_NO_JEMALLOC and use libc so ASan can
 * track every allocation.  Tests may call qt_alloc_fail_after(n) to make the
 * n-th following allocation fail (SQLite FAULTSIM style); 0 disables it.
 * qt_free()/qt_free_sized() accept NULL.
 */
#ifndef QT_ALLOC_H
#define QT_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *qt_malloc(size_t size);
void *qt_calloc(size_t n, size_t size);
void *qt_realloc(void *p, size_t size);
void qt_free(void *p);
/* Free with the size passed at allocation: lets jemalloc skip a lookup. */
void qt_free_sized(void *p, size_t size);
char *qt_strndup(const char *s, size_t n);

/* Fault injection for tests: fail the n-th allocation from now (1 = next). */
void qt_alloc_fail_after(uint64_t n);

/* Bytes currently allocated by the process per the allocator's own stats
 * (jemalloc "stats.allocated"); 0 when unavailable (sanitizer builds). */
size_t qt_alloc_allocated_bytes(void);

#endif
