/*
 * qt_log.h -- logging for storage/, query/ and server/ (format/ never logs).
 *
 * Messages start with the module: qt_log(QT_LOG_WARN, "wal: fsync %s: %s", ...).
 * Log once, where the error is handled.  qt_log_ratelimited() drops repeats
 * of the same call site beyond a budget per second and reports how many were
 * suppressed, so a flood of bad lines cannot fill the disk.
 */
#ifndef QT_LOG_H
#define QT_LOG_H

#include <stdint.h>

enum qt_log_level { QT_LOG_DEBUG = 0, QT_LOG_INFO = 1, QT_LOG_WARN = 2, QT_LOG_ERROR = 3 };

/* Per-call-site rate limiter state; zero-initialise (static storage). */
struct qt_log_limit {
    int64_t window_start_ms;
    uint32_t emitted;
    uint32_t suppressed;
};

void qt_log_set_level(enum qt_log_level min);
enum qt_log_level qt_log_get_level(void);

void qt_log(enum qt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Emit at most `per_sec` messages per second from the site owning `lim`. */
void qt_log_ratelimited(struct qt_log_limit *lim, uint32_t per_sec, enum qt_log_level level,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#ifdef QT_DEBUG
#define QT_TRACE(...) qt_log(QT_LOG_DEBUG, __VA_ARGS__)
#else
#define QT_TRACE(...) ((void)0)
#endif

#endif
