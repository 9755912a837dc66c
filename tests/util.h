/*
 * util.h -- helpers shared by storage tests.
 */
#ifndef QT_TEST_UTIL_H
#define QT_TEST_UTIL_H

#include "storage/io.h"

#include <stddef.h>
#include <stdint.h>

/* The real backend named by QT_TEST_IO (posix or uring; default posix).
 * tests/run.sh runs storage tests once per backend. */
enum qt_io_kind qt_test_io_kind(void);

/* Create an io handle of the test's backend; aborts the process on failure
 * (a test that cannot get its backend must fail, not fall back). */
struct qt_io *qt_test_io(void);

/* Size of a file, or -1. */
int64_t qt_test_file_size(const char *path);

/* Read a whole file into a malloc'd buffer (caller frees); NULL on error. */
uint8_t *qt_test_read_file(const char *path, size_t *len);

/* Overwrite len bytes at off of an existing file. */
int qt_test_write_at(const char *path, uint64_t off, const void *buf, size_t len);

#endif
