/*
 * harness.h -- qtdb's minimal test harness.
 *
 * A test binary is tests/test_<module>.c holding TEST(name) functions; they
 * register themselves and run in file order.  CHECK* record the failure with
 * file:line and return from the test.  Each binary prints one line per failed
 * test and ends with "<binary>: N passed, N failed"; tests/run.sh sums them.
 *
 *   QT_TEST_SEED=n    seed for randomised tests (default fixed: reproducible)
 *   QT_TEST_FILTER=s  run only tests whose name contains s
 *   QT_TEST_IO=posix|uring   backend for storage tests (run.sh runs both)
 */
#ifndef QT_TEST_HARNESS_H
#define QT_TEST_HARNESS_H

#include "format/qt_err.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef void (*qt_test_fn)(void);

void qt_test_register(const char *name, qt_test_fn fn);
void qt_test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Seed for this run; each test should derive its own stream from it. */
uint64_t qt_test_seed(void);
/* Fresh empty directory for the running test, removed if the test passes. */
const char *qt_test_dir(void);
/* Deterministic PRNG (splitmix64) for tests. */
uint64_t qt_test_rand(uint64_t *state);

#define TEST(name)                                                                                 \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void register_##name(void)                                 \
    {                                                                                              \
        qt_test_register(#name, name);                                                             \
    }                                                                                              \
    static void name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            qt_test_fail_at(__FILE__, __LINE__, "CHECK(%s)", #cond);                               \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            qt_test_fail_at(__FILE__, __LINE__, "CHECK_EQ(%s, %s): %lld != %lld", #a, #b, a_, b_); \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Expect a zero return; on failure print the code's name and detail. */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0) {                                                                            \
            qt_test_fail_at(__FILE__, __LINE__, "%s = %d (%s: %s)", #expr, rc_, qt_strerror(rc_),  \
                            qt_err_detail());                                                      \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Expect a specific non-zero return code. */
#define CHECK_RC(expr, want)                                                                       \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != (want)) {                                                                       \
            qt_test_fail_at(__FILE__, __LINE__, "%s = %d (%s), want %d (%s)", #expr, rc_,          \
                            qt_strerror(rc_), (int)(want), qt_strerror(want));                     \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#endif
