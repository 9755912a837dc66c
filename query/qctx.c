/*
 * qctx.c -- per-query budget (memory, deadline) and first-error recording
 * (contract in qctx.h).
 *
 * Invariants: mem_used <= mem_max at all times (a charge that would pass
 * it is refused whole); once `failed` is set the recorded message never
 * changes, so the caller reports the root cause, not a consequence.
 */
#include "qctx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "format/qt_assert.h"
#include "format/qt_err.h"

int64_t
qt_qctx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

void
qt_qctx_init(struct qt_qctx *c, uint64_t rows_max, uint32_t series_max, uint64_t mem_max,
             uint32_t deadline_ms, struct qt_qry_error *err)
{
    qt_assert(err != NULL);
    qt_assert(rows_max > 0 && series_max > 0 && mem_max > 0 && deadline_ms > 0);
    memset(c, 0, sizeof(*c));
    c->mem_max = mem_max;
    c->rows_max = rows_max;
    c->series_max = series_max;
    c->deadline_ms = deadline_ms;
    c->start_ns = qt_qctx_now();
    c->deadline_ns = c->start_ns + (int64_t)deadline_ms * 1000000ll;
    c->err = err;
}

int
qt_qctx_charge(struct qt_qctx *c, size_t bytes)
{
    qt_assert(c->mem_used <= c->mem_max);
    if (bytes > c->mem_max - c->mem_used)
        return qt_qctx_fail(c, QT_ELIMIT,
                            "query needs more than its memory limit of %llu bytes "
                            "(too many groups x buckets, or percentile values)",
                            (unsigned long long)c->mem_max);
    c->mem_used += bytes;
    if (c->mem_used > c->mem_peak)
        c->mem_peak = c->mem_used;
    return 0;
}

void
qt_qctx_release(struct qt_qctx *c, size_t bytes)
{
    qt_assert(bytes <= c->mem_used);
    c->mem_used -= bytes;
}

int
qt_qctx_check_deadline(struct qt_qctx *c)
{
    if (qt_qctx_now() <= c->deadline_ns)
        return 0;
    return qt_qctx_fail(c, QT_ETIMEOUT, "query exceeded its deadline of %u ms", c->deadline_ms);
}

int
qt_qctx_fail(struct qt_qctx *c, int code, const char *fmt, ...)
{
    qt_assert(code != 0);
    if (c->failed)
        return code;
    c->failed = true;
    c->err->code = code;
    c->err->position = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err->message, sizeof(c->err->message), fmt, ap);
    va_end(ap);
    /* Keep the message printable ASCII, as parse errors are. */
    for (char *p = c->err->message; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    return code;
}

int
qt_qctx_fail_storage(struct qt_qctx *c, int code, const char *what)
{
    const char *d = qt_err_detail();
    if (code == QT_ENOMEM)
        return qt_qctx_fail(c, code, "%s: out of memory", what);
    return qt_qctx_fail(c, code, "%s: %s%s%s", what, qt_strerror(code), d[0] ? ": " : "", d);
}
