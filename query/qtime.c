/*
 * qtime.c -- time and duration literals (see qtime.h).
 *
 * Everything is integer arithmetic on int64 nanoseconds with explicit
 * overflow checks; there is no libc time call (no timegm/strptime: they
 * depend on the locale and the TZ environment, and the server is
 * multi-threaded).  Calendar conversion is H. Hinnant's days_from_civil.
 */
#include "qtime.h"

#include "format/qt_assert.h"
#include "format/qt_err.h"

#include <stdio.h>
#include <string.h>

int64_t
qt_time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    qt_assert(m >= 1 && m <= 12);
    qt_assert(d >= 1 && d <= 31);
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (int64_t)(m > 2 ? m - 3 : m + 9) + 2) / 5 + (int64_t)d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void
qt_time_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    qt_assert(y != NULL && m != NULL && d != NULL);
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
    qt_assert(*m >= 1 && *m <= 12);
}

unsigned
qt_time_month_days(int64_t y, unsigned m)
{
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    qt_assert(m >= 1 && m <= 12);
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return days[m - 1] + (m == 2 && leap ? 1u : 0u);
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Read exactly n digits at s[*pos]; false (with *pos unmoved, so errors
 * point at the field) if not. */
static bool
read_digits(const char *s, size_t len, size_t *pos, unsigned n, unsigned *v)
{
    unsigned r = 0;
    for (unsigned i = 0; i < n; i++) {
        if (*pos + i >= len || !is_digit(s[*pos + i]))
            return false;
        r = r * 10 + (unsigned)(s[*pos + i] - '0');
    }
    *pos += n;
    *v = r;
    return true;
}

static int
bad(size_t *err_off, size_t off, const char *why)
{
    *err_off = off;
    return qt_fail(QT_ESYNTAX, why);
}

/* Expect character c (or its lowercase twin `alt`) at s[*pos]. */
static bool
read_char(const char *s, size_t len, size_t *pos, char c, char alt)
{
    if (*pos >= len || (s[*pos] != c && s[*pos] != alt))
        return false;
    (*pos)++;
    return true;
}

/* Date and clock fields: seconds since the epoch of the local wall time. */
static int
rfc3339_wall(const char *s, size_t len, size_t *pos, int64_t *secs, size_t *err_off)
{
    unsigned y, mo, d, h, mi, sec;
    if (!read_digits(s, len, pos, 4, &y))
        return bad(err_off, *pos, "time: expected a 4-digit year");
    if (!read_char(s, len, pos, '-', '-') || !read_digits(s, len, pos, 2, &mo))
        return bad(err_off, *pos, "time: expected '-' and a 2-digit month");
    if (mo < 1 || mo > 12)
        return bad(err_off, *pos - 2, "time: month must be 01..12");
    if (!read_char(s, len, pos, '-', '-') || !read_digits(s, len, pos, 2, &d))
        return bad(err_off, *pos, "time: expected '-' and a 2-digit day");
    if (d < 1 || d > qt_time_month_days(y, mo))
        return bad(err_off, *pos - 2, "time: no such day in that month");
    if (!read_char(s, len, pos, 'T', 't'))
        return bad(err_off, *pos, "time: expected 'T' between date and time");
    if (!read_digits(s, len, pos, 2, &h))
        return bad(err_off, *pos, "time: expected a 2-digit hour");
    if (h > 23)
        return bad(err_off, *pos - 2, "time: hour must be 00..23");
    if (!read_char(s, len, pos, ':', ':') || !read_digits(s, len, pos, 2, &mi))
        return bad(err_off, *pos, "time: expected ':' and 2-digit minutes");
    if (mi > 59)
        return bad(err_off, *pos - 2, "time: minutes must be 00..59");
    if (!read_char(s, len, pos, ':', ':') || !read_digits(s, len, pos, 2, &sec))
        return bad(err_off, *pos, "time: expected ':' and 2-digit seconds");
    if (sec == 60)
        return bad(err_off, *pos - 2, "time: leap seconds are not representable");
    if (sec > 59)
        return bad(err_off, *pos - 2, "time: seconds must be 00..59");
    int64_t days = qt_time_days_from_civil(y, mo, d);
    *secs = days * QT_SEC_PER_DAY + (int64_t)h * 3600 + (int64_t)mi * 60 + (int64_t)sec;
    return 0;
}

/* Optional fraction: '.' then 1..9 digits, as nanoseconds. */
static int
rfc3339_fraction(const char *s, size_t len, size_t *pos, int64_t *frac, size_t *err_off)
{
    *frac = 0;
    if (*pos >= len || s[*pos] != '.')
        return 0;
    (*pos)++;
    unsigned n = 0;
    int64_t v = 0;
    while (*pos < len && is_digit(s[*pos])) {
        if (n == 9)
            return bad(err_off, *pos, "time: more than 9 fraction digits (finer than 1ns)");
        v = v * 10 + (s[*pos] - '0');
        n++;
        (*pos)++;
    }
    if (n == 0)
        return bad(err_off, *pos, "time: expected digits after '.'");
    for (unsigned i = n; i < 9; i++)
        v *= 10;
    *frac = v;
    return 0;
}

/* 'Z' or +hh:mm / -hh:mm: the offset east of UTC in seconds. */
static int
rfc3339_offset(const char *s, size_t len, size_t *pos, int64_t *off, size_t *err_off)
{
    if (read_char(s, len, pos, 'Z', 'z')) {
        *off = 0;
        return 0;
    }
    if (*pos >= len || (s[*pos] != '+' && s[*pos] != '-'))
        return bad(err_off, *pos, "time: expected 'Z' or a UTC offset like +08:00");
    int sign = s[*pos] == '-' ? -1 : 1;
    (*pos)++;
    unsigned h, m;
    if (!read_digits(s, len, pos, 2, &h))
        return bad(err_off, *pos, "time: expected 2-digit offset hours");
    if (h > 23)
        return bad(err_off, *pos - 2, "time: offset hours must be 00..23");
    if (!read_char(s, len, pos, ':', ':') || !read_digits(s, len, pos, 2, &m))
        return bad(err_off, *pos, "time: expected ':' and 2-digit offset minutes");
    if (m > 59)
        return bad(err_off, *pos - 2, "time: offset minutes must be 00..59");
    *off = sign * ((int64_t)h * 3600 + (int64_t)m * 60);
    return 0;
}

int
qt_time_parse_rfc3339(const char *s, size_t len, int64_t *ns, size_t *err_off)
{
    qt_assert(s != NULL || len == 0);
    qt_assert(ns != NULL && err_off != NULL);
    size_t pos = 0;
    int64_t secs = 0, frac = 0, off = 0, r;
    int rc = rfc3339_wall(s, len, &pos, &secs, err_off);
    if (rc == 0)
        rc = rfc3339_fraction(s, len, &pos, &frac, err_off);
    if (rc == 0)
        rc = rfc3339_offset(s, len, &pos, &off, err_off);
    if (rc != 0)
        return rc;
    if (pos != len)
        return bad(err_off, pos, "time: unexpected characters after the time");
    /* secs is within +-10^4 years, so secs - off cannot overflow.  Borrow a
     * second into the fraction so the earliest instant (-2^63 ns, whose
     * whole seconds alone would not fit) stays representable. */
    secs -= off;
    if (secs < 0 && frac > 0) {
        secs++;
        frac -= QT_NS_PER_SEC;
    }
    if (!qt_time_mul(secs, QT_NS_PER_SEC, &r) || !qt_time_add(r, frac, &r))
        return bad(err_off, 0, "time: outside 1677-09-21 .. 2262-04-11 (int64 nanoseconds)");
    *ns = r;
    return 0;
}

/* ORDER UNITS: largest first; the duration parser relies on the order. */
static const struct {
    const char *name;
    int64_t ns;
} units[] = {
    {"w", 7 * QT_NS_PER_DAY},
    {"d", QT_NS_PER_DAY},
    {"h", 3600 * QT_NS_PER_SEC},
    {"m", 60 * QT_NS_PER_SEC},
    {"s", QT_NS_PER_SEC},
    {"ms", 1000000},
    {"us", 1000},
    {"ns", 1},
};
#define UNITS_COUNT (sizeof(units) / sizeof(units[0]))

/* Index of the unit spelled s[0..n), or UNITS_COUNT. */
static size_t
unit_find(const char *s, size_t n)
{
    for (size_t i = 0; i < UNITS_COUNT; i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, s, n) == 0)
            return i;
    return UNITS_COUNT;
}

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* One <digits><unit> part at s[*pos]: value and unit index. */
static int
duration_part(const char *s, size_t len, size_t *pos, uint64_t *v, size_t *unit, size_t *err_off)
{
    size_t start = *pos;
    uint64_t r = 0;
    while (*pos < len && is_digit(s[*pos])) {
        if (r > (UINT64_MAX - 9) / 10)
            return bad(err_off, start, "duration: number too large");
        r = r * 10 + (uint64_t)(s[*pos] - '0');
        (*pos)++;
    }
    if (*pos == start)
        return bad(err_off, *pos, "duration: expected digits");
    size_t ustart = *pos;
    while (*pos < len && is_alpha(s[*pos]))
        (*pos)++;
    if (*pos == ustart)
        return bad(err_off, ustart, "duration: missing unit (ns, us, ms, s, m, h, d, w)");
    *unit = unit_find(s + ustart, *pos - ustart);
    if (*unit == UNITS_COUNT)
        return bad(err_off, ustart, "duration: unknown unit (use ns, us, ms, s, m, h, d, w)");
    *v = r;
    return 0;
}

int
qt_time_parse_duration(const char *s, size_t len, int64_t *ns, size_t *err_off)
{
    qt_assert(s != NULL || len == 0);
    qt_assert(ns != NULL && err_off != NULL);
    size_t pos = 0, prev_unit = 0;
    int64_t total = 0;
    bool first = true;
    if (len == 0)
        return bad(err_off, 0, "duration: expected digits");
    while (pos < len) {
        size_t start = pos, unit;
        uint64_t v;
        int rc = duration_part(s, len, &pos, &v, &unit, err_off);
        if (rc != 0)
            return rc;
        if (!first && unit <= prev_unit)
            return bad(err_off, start, "duration: units must go from larger to smaller (1h30m)");
        int64_t part;
        if (v > INT64_MAX || !qt_time_mul((int64_t)v, units[unit].ns, &part) ||
            !qt_time_add(total, part, &total))
            return bad(err_off, start, "duration: longer than int64 nanoseconds (~292 years)");
        prev_unit = unit;
        first = false;
    }
    *ns = total;
    return 0;
}

int
qt_time_parse_epoch(const char *s, size_t len, bool negative, int64_t *ns, size_t *err_off)
{
    qt_assert(s != NULL || len == 0);
    qt_assert(ns != NULL && err_off != NULL);
    size_t pos = 0, unit;
    uint64_t v;
    int rc = duration_part(s, len, &pos, &v, &unit, err_off);
    if (rc != 0)
        return rc;
    if (pos != len)
        return bad(err_off, pos, "time: an epoch time has one unit (s, ms, us, ns)");
    if (units[unit].ns > QT_NS_PER_SEC)
        return bad(err_off, 0, "time: epoch unit must be s, ms, us or ns");
    /* -2^63 ns is representable, so negate in unsigned space first. */
    uint64_t mag;
    if (__builtin_mul_overflow(v, (uint64_t)units[unit].ns, &mag) ||
        mag > (negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return bad(err_off, 0, "time: outside 1677-09-21 .. 2262-04-11 (int64 nanoseconds)");
    *ns = negative ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

size_t
qt_time_format_rfc3339(int64_t ns, char *buf, size_t cap)
{
    qt_assert(buf != NULL || cap == 0);
    int64_t secs = qt_time_floor_div(ns, QT_NS_PER_SEC);
    int64_t frac = ns % QT_NS_PER_SEC; /* not ns - secs * 1e9: overflows at INT64_MIN */
    frac += frac < 0 ? QT_NS_PER_SEC : 0;
    int64_t days = qt_time_floor_div(secs, QT_SEC_PER_DAY);
    int64_t sod = secs - days * QT_SEC_PER_DAY;
    int64_t y;
    unsigned m, d;
    qt_time_civil_from_days(days, &y, &m, &d);
    char fbuf[12] = "";
    if (frac != 0) {
        int digits = 9;
        while (frac % 10 == 0) {
            frac /= 10;
            digits--;
        }
        snprintf(fbuf, sizeof(fbuf), ".%0*lld", digits, (long long)frac);
    }
    int n = snprintf(buf, cap, "%04lld-%02u-%02uT%02d:%02d:%02d%sZ", (long long)y, m, d,
                     (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), fbuf);
    qt_assert(n > 0);
    return (size_t)n;
}

size_t
qt_time_format_duration(int64_t ns, char *buf, size_t cap)
{
    qt_assert(ns >= 0);
    qt_assert(buf != NULL || cap == 0);
    char tmp[QT_TIME_TEXT_MAX];
    size_t n = 0;
    if (ns == 0)
        n = (size_t)snprintf(tmp, sizeof(tmp), "0s");
    for (size_t i = 0; i < UNITS_COUNT && ns > 0; i++) {
        int64_t q = ns / units[i].ns;
        if (q == 0)
            continue;
        ns -= q * units[i].ns;
        n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%lld%s", (long long)q, units[i].name);
        qt_assert(n < sizeof(tmp));
    }
    if (cap > 0)
        snprintf(buf, cap, "%s", tmp);
    return n;
}
