/*
 * qctx.h -- the budget and error state one query execution carries through
 * the executor's modules (exec, agg, result, events, xform, select).
 *
 * Memory: every executor allocation that grows with the query (aggregation
 * cells, hash tables, percentile values, group keys, copied strings) is
 * charged here first; going over mem_max fails the query with QT_ELIMIT
 * and a message, never the process.  Deadline: checked between chunks and
 * series.  Errors: the first failure is recorded as a message with
 * position -1 in the caller's struct qt_qry_error; later failures keep the
 * first message.
 *
 * Not thread-safe: one context per running query.
 */
#ifndef QT_QCTX_H
#define QT_QCTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/qparse.h"

struct qt_qctx {
    uint64_t mem_used, mem_max; /* bytes charged / allowed */
    uint64_t mem_peak;
    uint64_t rows_max;
    uint32_t series_max;
    uint32_t deadline_ms;
    int64_t deadline_ns; /* CLOCK_MONOTONIC instant */
    int64_t start_ns;
    struct qt_qry_error *err; /* never NULL (points at a scratch one) */
    bool failed;
};

/* Monotonic clock in ns. */
int64_t qt_qctx_now(void);

/* Set up a context: limits already resolved to non-zero values; err is
 * where the first failure is described (not NULL). */
void qt_qctx_init(struct qt_qctx *c, uint64_t rows_max, uint32_t series_max, uint64_t mem_max,
                  uint32_t deadline_ms, struct qt_qry_error *err);

/* Charge `bytes` to the query: 0, or QT_ELIMIT (message set) when the
 * total would pass mem_max (nothing is charged then). */
int qt_qctx_charge(struct qt_qctx *c, size_t bytes);

/* Give back bytes charged earlier. */
void qt_qctx_release(struct qt_qctx *c, size_t bytes);

/* 0, or QT_ETIMEOUT (message set) once the deadline has passed. */
int qt_qctx_check_deadline(struct qt_qctx *c);

/* Record a failure (printf-style message, position -1) unless one is
 * recorded already; returns code.  code must be non-zero. */
int qt_qctx_fail(struct qt_qctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record a failure of a lower layer: "<what>: <qt_strerror(code)>: <detail>"
 * with qt_err_detail() of this thread; returns code. */
int qt_qctx_fail_storage(struct qt_qctx *c, int code, const char *what);

#endif
