/*
 * qtime.h -- time and duration literals of the query language.
 *
 * Timestamps are int64 nanoseconds since 1970-01-01T00:00:00Z (proleptic
 * Gregorian calendar, no leap seconds), so the representable instants run
 * from 1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z.
 * Durations are int64 nanoseconds >= 0.  Grammar: design/query.md.
 *
 * Contract: pure functions over (text, len), no allocation, no locale.
 * Parsers read only s[0..len) and on failure return QT_ESYNTAX with a
 * static reason in qt_err_detail() and the byte offset of the fault within
 * s in *err_off.  Formatters write at most `cap` bytes including a NUL and
 * return the text length (QT_TIME_TEXT_MAX always suffices).
 */
#ifndef QT_QTIME_H
#define QT_QTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QT_NS_PER_SEC  1000000000ll
#define QT_SEC_PER_DAY 86400ll
#define QT_NS_PER_DAY  (QT_SEC_PER_DAY * QT_NS_PER_SEC)

/* Buffer size that holds any formatted timestamp or duration with its NUL. */
#define QT_TIME_TEXT_MAX 48u

/* Days since 1970-01-01 of the civil date y-m-d (m 1..12, d 1..31; not
 * validated here).  Exact for |y| < 2^40 (H. Hinnant's algorithm). */
int64_t qt_time_days_from_civil(int64_t y, unsigned m, unsigned d);

/* Inverse of qt_time_days_from_civil for |days| < 2^45. */
void qt_time_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* Days in month m (1..12) of year y. */
unsigned qt_time_month_days(int64_t y, unsigned m);

/* Floor division and modulo (the remainder takes the divisor's sign). */
static inline int64_t
qt_time_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* a + b and a * b without overflow: false (and *out untouched) if it would. */
static inline bool
qt_time_add(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

static inline bool
qt_time_mul(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

/* RFC 3339 date-time: YYYY-MM-DDThh:mm:ss[.f{1,9}](Z|+hh:mm|-hh:mm), 'T'
 * and 'Z' in either case.  Rejects leap seconds (ss = 60), impossible
 * dates, more than 9 fraction digits and instants outside int64 ns. */
int qt_time_parse_rfc3339(const char *s, size_t len, int64_t *ns, size_t *err_off);

/* Duration: one or more <digits><unit> parts, units strictly decreasing
 * from w d h m s ms us ns (so 1h30m, 90s, 1w2d; not 30m1h, not 1h1h).
 * The total must fit in int64 ns. */
int qt_time_parse_duration(const char *s, size_t len, int64_t *ns, size_t *err_off);

/* Epoch integer with a unit: <digits>(s|ms|us|ns), negated when `negative`;
 * must fit in int64 ns. */
int qt_time_parse_epoch(const char *s, size_t len, bool negative, int64_t *ns, size_t *err_off);

/* Canonical RFC 3339 in UTC: 2026-11-15T00:00:00Z, fraction trimmed of
 * trailing zeros (2026-11-15T00:00:00.25Z). */
size_t qt_time_format_rfc3339(int64_t ns, char *buf, size_t cap);

/* Canonical duration (ns >= 0): parts from w down to ns, largest first,
 * zero parts omitted (5400s -> 1h30m, 0 -> 0s). */
size_t qt_time_format_duration(int64_t ns, char *buf, size_t cap);

#endif
