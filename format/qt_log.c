/*
 * qt_log.c -- timestamped logging to stderr with per-site rate limiting.
 *
 * One write(2) per message so that lines from concurrent threads do not
 * interleave.  The level is read without a lock (a relaxed atomic).
 */
#include "qt_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_min_level = QT_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
qt_log_set_level(enum qt_log_level min)
{
    atomic_store_explicit(&log_min_level, (int)min, memory_order_relaxed);
}

enum qt_log_level
qt_log_get_level(void)
{
    return (enum qt_log_level)atomic_load_explicit(&log_min_level, memory_order_relaxed);
}

static void
log_emit(enum qt_log_level level, const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level]);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}

void
qt_log(enum qt_log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&log_min_level, memory_order_relaxed))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_emit(level, fmt, ap);
    va_end(ap);
}

void
qt_log_ratelimited(struct qt_log_limit *lim, uint32_t per_sec, enum qt_log_level level,
                   const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&log_min_level, memory_order_relaxed))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    /* Racy by design: a few extra or missing lines under contention are fine. */
    if (now_ms - lim->window_start_ms >= 1000) {
        if (lim->suppressed > 0)
            qt_log(level, "log: %u similar messages suppressed", lim->suppressed);
        lim->window_start_ms = now_ms;
        lim->emitted = 0;
        lim->suppressed = 0;
    }
    if (lim->emitted >= per_sec) {
        lim->suppressed++;
        return;
    }
    lim->emitted++;
    va_list ap;
    va_start(ap, fmt);
    log_emit(level, fmt, ap);
    va_end(ap);
}
