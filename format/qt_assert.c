/*
 * qt_assert.c -- the failure path of qt_assert (see qt_assert.h).
 */
#include "qt_assert.h"

#include <stdio.h>
#include <stdlib.h>

void
qt_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "qtdb: %s:%d: %s: assertion '%s' failed\n", file, line, func, expr);
    fflush(stderr);
    abort();
}
