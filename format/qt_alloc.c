/*
 * qt_alloc.c -- allocation wrappers over jemalloc (see qt_alloc.h).
 */
#include "qt_alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef QT_NO_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

static _Atomic uint64_t fail_countdown;

void
qt_alloc_fail_after(uint64_t n)
{
    atomic_store(&fail_countdown, n);
}

/* True when the injected failure is due now. */
static int
alloc_should_fail(void)
{
    uint64_t c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (c == 0)
        return 0;
    /* Only the thread that moves 1 -> 0 fails; others see a new value. */
    while (c != 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1))
            return c == 1;
    }
    return 0;
}

void *
qt_malloc(size_t size)
{
    if (alloc_should_fail())
        return NULL;
    return malloc(size);
}

void *
qt_calloc(size_t n, size_t size)
{
    if (alloc_should_fail())
        return NULL;
    return calloc(n, size);
}

void *
qt_realloc(void *p, size_t size)
{
    if (alloc_should_fail())
        return NULL;
    return realloc(p, size);
}

void
qt_free(void *p)
{
    free(p);
}

void
qt_free_sized(void *p, size_t size)
{
    if (p == NULL)
        return;
#ifndef QT_NO_JEMALLOC
    sdallocx(p, size, 0);
#else
    (void)size;
    free(p);
#endif
}

char *
qt_strndup(const char *s, size_t n)
{
    char *d = qt_malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

size_t
qt_alloc_allocated_bytes(void)
{
#ifndef QT_NO_JEMALLOC
    uint64_t epoch = 1;
    size_t sz = sizeof(epoch);
    mallctl("epoch", &epoch, &sz, &epoch, sz);
    size_t allocated = 0;
    sz = sizeof(allocated);
    if (mallctl("stats.allocated", &allocated, &sz, NULL, 0) != 0)
        return 0;
    return allocated;
#else
    return 0;
#endif
}
