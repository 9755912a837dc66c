/*
 * qt_assert.h -- assertions for programmer errors.
 *
 * qt_assert() stays on in release builds: a broken invariant in a storage
 * engine must stop the process before it writes damage to disk.  Never use it
 * on bytes from disk or the network; those are validated and return errors.
 * qt_assert_slow() is for O(n) checks and compiles away unless QT_DEBUG.
 */
#ifndef QT_ASSERT_H
#define QT_ASSERT_H

#include <assert.h> /* static_assert */

_Noreturn void qt_assert_fail(const char *expr, const char *file, int line, const char *func);

#define qt_assert(e) ((e) ? (void)0 : qt_assert_fail(#e, __FILE__, __LINE__, __func__))

#ifdef QT_DEBUG
#define qt_assert_slow(e) qt_assert(e)
#else
#define qt_assert_slow(e) ((void)0)
#endif

#define qt_unreachable() qt_assert_fail("unreachable", __FILE__, __LINE__, __func__)

#endif
