/*
 * tz.c -- TZif (RFC 8536) zones and local-day buckets (see tz.h).
 *
 * A parsed zone is: the listed transitions (UTC seconds, strictly
 * ascending) with the UTC offset each one starts, the offset before the
 * first (time type 0), and an optional POSIX TZ rule for instants at or
 * after the last transition.  Lookups binary-search the table or evaluate
 * the rule for the surrounding years; nothing consults libc time state.
 *
 * Invariants of struct qt_tz (established by qt_tz_parse, asserted on use):
 * count <= QT_TZIF_TRANSITIONS_MAX, at[] strictly ascending, every offset
 * within +-TZ_OFF_MAX, rule offsets too, footer_len < QT_TZIF_FOOTER_MAX.
 */
#include "tz.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "qtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest |UTC offset| accepted (25:59:59, RFC 8536 section 3.2). */
#define TZ_OFF_MAX 93599
/* Largest |rule transition time| (167 hours, RFC 8536 section 3.3.1). */
#define TZ_RULE_TIME_MAX  (167 * 3600 + 59 * 60 + 59)
#define TZIF_HEADER_BYTES 44u

enum { DATE_J = 1, DATE_N = 2, DATE_M = 3 };

struct tz_date {
    uint8_t kind;        /* DATE_* */
    uint8_t month, week; /* DATE_M: 1..12, 1..5 */
    uint8_t wday;        /* DATE_M: 0 (Sunday) .. 6 */
    uint16_t n;          /* DATE_J: 1..365, DATE_N: 0..365 */
    int32_t time;        /* local seconds after midnight, may be negative */
};

struct tz_rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    struct tz_date start, end; /* DST starts (in std time), ends (in DST) */
};

struct qt_tz {
    uint32_t count;
    int32_t initial_off;
    bool has_rule;
    struct tz_rule rule;
    uint32_t footer_len;
    char footer[QT_TZIF_FOOTER_MAX];
    int64_t *at;  /* count transition instants, UTC seconds */
    int32_t *off; /* offset in effect from at[i] */
};

struct tzif_header {
    uint8_t version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t
be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void
put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Read and check one 44-byte header at buf[*pos]. */
static int
tzif_header(const uint8_t *buf, size_t len, size_t *pos, struct tzif_header *h)
{
    if (len - *pos < TZIF_HEADER_BYTES)
        return qt_fail(QT_ETRUNC, "tzif: truncated header");
    const uint8_t *p = buf + *pos;
    if (memcmp(p, "TZif", 4) != 0)
        return qt_fail(QT_EMAGIC, "tzif: no TZif magic");
    h->version = p[4];
    if (h->version == 0)
        return qt_fail(QT_EVERSION, "tzif: version 1 file (no 64-bit data)");
    if (h->version < '2' || h->version > '4')
        return qt_fail(QT_EVERSION, "tzif: unknown version");
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    *pos += TZIF_HEADER_BYTES;
    if (h->timecnt > QT_TZIF_TRANSITIONS_MAX || h->leapcnt > QT_TZIF_TRANSITIONS_MAX)
        return qt_fail(QT_ELIMIT, "tzif: too many transitions");
    if (h->typecnt > QT_TZIF_TYPES_MAX || h->charcnt > QT_TZIF_CHARS_MAX)
        return qt_fail(QT_ELIMIT, "tzif: too many types or abbreviation bytes");
    if (h->typecnt == 0 || h->charcnt == 0)
        return qt_fail(QT_ECORRUPT, "tzif: no time types");
    if ((h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
        return qt_fail(QT_ECORRUPT, "tzif: indicator count differs from type count");
    return 0;
}

/* Size of a data block with `tsize`-byte times (4: v1, 8: v2+). */
static size_t
tzif_block_bytes(const struct tzif_header *h, size_t tsize)
{
    /* Every count is <= QT_TZIF_TRANSITIONS_MAX, so this cannot overflow. */
    return (size_t)h->timecnt * (tsize + 1) + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Check the v2 time types at p and fill offs[typecnt]. */
static int
tzif_types(const uint8_t *p, const struct tzif_header *h, int32_t *offs)
{
    for (uint32_t i = 0; i < h->typecnt; i++, p += 6) {
        int32_t utoff = (int32_t)be32(p);
        if (utoff < -TZ_OFF_MAX || utoff > TZ_OFF_MAX)
            return qt_fail(QT_ECORRUPT, "tzif: UTC offset beyond +-25:59:59");
        if (p[4] > 1)
            return qt_fail(QT_ECORRUPT, "tzif: isdst is not 0 or 1");
        if (p[5] >= h->charcnt)
            return qt_fail(QT_ECORRUPT, "tzif: abbreviation index out of range");
        offs[i] = utoff;
    }
    return 0;
}

/* Fill tz->at/off from the v2 data block at p (already length-checked). */
static int
tzif_transitions(const uint8_t *p, const struct tzif_header *h, struct qt_tz *tz)
{
    int32_t offs[QT_TZIF_TYPES_MAX];
    const uint8_t *idx = p + (size_t)h->timecnt * 8;
    const uint8_t *types = idx + h->timecnt;
    int rc = tzif_types(types, h, offs);
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; i < h->timecnt; i++) {
        tz->at[i] = (int64_t)be64(p + (size_t)i * 8);
        if (i > 0 && tz->at[i] <= tz->at[i - 1])
            return qt_fail(QT_ECORRUPT, "tzif: transition times not ascending");
        if (idx[i] >= h->typecnt)
            return qt_fail(QT_ECORRUPT, "tzif: transition type out of range");
        tz->off[i] = offs[idx[i]];
    }
    const uint8_t *ind = types + (size_t)h->typecnt * 6 + h->charcnt;
    for (uint32_t i = 0; i < h->isstdcnt + h->isutcnt; i++)
        if (ind[i] > 1)
            return qt_fail(QT_ECORRUPT, "tzif: indicator is not 0 or 1");
    tz->count = h->timecnt;
    tz->initial_off = offs[0];
    return 0;
}

/* ---- POSIX TZ strings (the footer) ------------------------------------- */

struct tzs {
    const char *s;
    size_t n, p;
};

static bool
tzs_digit(const struct tzs *c)
{
    return c->p < c->n && c->s[c->p] >= '0' && c->s[c->p] <= '9';
}

/* 1..max_digits decimal digits. */
static bool
tzs_num(struct tzs *c, unsigned max_digits, unsigned *v)
{
    unsigned r = 0, i = 0;
    while (i < max_digits && tzs_digit(c)) {
        r = r * 10 + (unsigned)(c->s[c->p++] - '0');
        i++;
    }
    *v = r;
    return i > 0 && !tzs_digit(c);
}

/* A zone abbreviation: 3+ letters, or <...> of 3+ [A-Za-z0-9+-]. */
static bool
tzs_name(struct tzs *c)
{
    size_t start = c->p;
    if (c->p < c->n && c->s[c->p] == '<') {
        c->p++;
        while (c->p < c->n && c->s[c->p] != '>') {
            char ch = c->s[c->p];
            if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '+' || ch == '-'))
                return false;
            c->p++;
        }
        if (c->p >= c->n || c->p - start - 1 < 3)
            return false;
        c->p++;
        return true;
    }
    while (c->p < c->n &&
           ((c->s[c->p] >= 'A' && c->s[c->p] <= 'Z') || (c->s[c->p] >= 'a' && c->s[c->p] <= 'z')))
        c->p++;
    return c->p - start >= 3;
}

/* [+-]h[h[h]][:mm[:ss]] with hours <= max_h: signed seconds. */
static bool
tzs_hms(struct tzs *c, unsigned max_h, int32_t *secs)
{
    int sign = 1;
    if (c->p < c->n && (c->s[c->p] == '+' || c->s[c->p] == '-'))
        sign = c->s[c->p++] == '-' ? -1 : 1;
    unsigned h, m = 0, s = 0;
    if (!tzs_num(c, max_h > 99 ? 3 : 2, &h) || h > max_h)
        return false;
    if (c->p < c->n && c->s[c->p] == ':') {
        c->p++;
        if (!tzs_num(c, 2, &m) || m > 59)
            return false;
        if (c->p < c->n && c->s[c->p] == ':') {
            c->p++;
            if (!tzs_num(c, 2, &s) || s > 59)
                return false;
        }
    }
    *secs = sign * (int32_t)(h * 3600 + m * 60 + s);
    return true;
}

/* Jn | n | Mm.w.d, then optional /time (default 02:00:00). */
static bool
tzs_date(struct tzs *c, struct tz_date *d)
{
    unsigned a, b, e;
    memset(d, 0, sizeof(*d));
    if (c->p < c->n && c->s[c->p] == 'J') {
        c->p++;
        if (!tzs_num(c, 3, &a) || a < 1 || a > 365)
            return false;
        d->kind = DATE_J;
        d->n = (uint16_t)a;
    } else if (c->p < c->n && c->s[c->p] == 'M') {
        c->p++;
        if (!tzs_num(c, 2, &a) || a < 1 || a > 12 || c->p >= c->n || c->s[c->p++] != '.')
            return false;
        if (!tzs_num(c, 1, &b) || b < 1 || b > 5 || c->p >= c->n || c->s[c->p++] != '.')
            return false;
        if (!tzs_num(c, 1, &e) || e > 6)
            return false;
        d->kind = DATE_M;
        d->month = (uint8_t)a;
        d->week = (uint8_t)b;
        d->wday = (uint8_t)e;
    } else {
        if (!tzs_num(c, 3, &a) || a > 365)
            return false;
        d->kind = DATE_N;
        d->n = (uint16_t)a;
    }
    d->time = 7200;
    if (c->p < c->n && c->s[c->p] == '/') {
        c->p++;
        return tzs_hms(c, 167, &d->time);
    }
    return true;
}

/* std offset [dst [offset] ,start[/time],end[/time]] (POSIX offsets are
 * west-positive, hence the negations). */
static int
tz_parse_rule(const char *s, size_t n, struct tz_rule *r)
{
    struct tzs c = {s, n, 0};
    int32_t off;
    memset(r, 0, sizeof(*r));
    if (!tzs_name(&c) || !tzs_hms(&c, 24, &off))
        return qt_fail(QT_ECORRUPT, "tzif: footer: bad standard time");
    r->std_off = -off;
    r->dst_off = r->std_off;
    if (c.p == n)
        return 0;
    if (!tzs_name(&c))
        return qt_fail(QT_ECORRUPT, "tzif: footer: bad DST name");
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (c.p < n && c.s[c.p] != ',') {
        if (!tzs_hms(&c, 24, &off))
            return qt_fail(QT_ECORRUPT, "tzif: footer: bad DST offset");
        r->dst_off = -off;
    }
    if (c.p == n)
        return qt_fail(QT_ECORRUPT, "tzif: footer: DST without a rule");
    if (c.s[c.p++] != ',' || !tzs_date(&c, &r->start) || c.p >= n || c.s[c.p++] != ',' ||
        !tzs_date(&c, &r->end) || c.p != n)
        return qt_fail(QT_ECORRUPT, "tzif: footer: bad DST rule");
    return 0;
}

/* The footer: '\n' TZ-string '\n' ending exactly at len. */
static int
tzif_footer(const uint8_t *buf, size_t len, size_t pos, struct qt_tz *tz)
{
    if (pos >= len || buf[pos] != '\n')
        return qt_fail(pos >= len ? QT_ETRUNC : QT_ECORRUPT, "tzif: missing footer");
    size_t start = ++pos;
    while (pos < len && buf[pos] != '\n') {
        if (buf[pos] < 0x20 || buf[pos] > 0x7e)
            return qt_fail(QT_ECORRUPT, "tzif: footer: non-ASCII byte");
        if (pos - start + 1 >= QT_TZIF_FOOTER_MAX)
            return qt_fail(QT_ELIMIT, "tzif: footer too long");
        pos++;
    }
    if (pos >= len)
        return qt_fail(QT_ETRUNC, "tzif: unterminated footer");
    if (pos + 1 != len)
        return qt_fail(QT_ECORRUPT, "tzif: bytes after the footer");
    tz->footer_len = (uint32_t)(pos - start);
    memcpy(tz->footer, buf + start, tz->footer_len);
    tz->has_rule = tz->footer_len > 0;
    if (!tz->has_rule)
        return 0;
    int rc = tz_parse_rule(tz->footer, tz->footer_len, &tz->rule);
    if (rc == 0 && (tz->rule.dst_off < -TZ_OFF_MAX || tz->rule.dst_off > TZ_OFF_MAX))
        rc = qt_fail(QT_ECORRUPT, "tzif: footer: DST offset out of range");
    return rc;
}

static struct qt_tz *
tz_alloc(uint32_t count)
{
    qt_assert(count <= QT_TZIF_TRANSITIONS_MAX);
    static_assert(sizeof(struct qt_tz) % 8 == 0, "arrays follow aligned");
    size_t bytes = sizeof(struct qt_tz) + (size_t)count * (sizeof(int64_t) + sizeof(int32_t));
    struct qt_tz *tz = qt_calloc(1, bytes);
    if (tz == NULL)
        return NULL;
    tz->at = (int64_t *)(tz + 1);
    tz->off = (int32_t *)(tz->at + count);
    return tz;
}

int
qt_tz_parse(const uint8_t *buf, size_t len, struct qt_tz **out)
{
    qt_assert(out != NULL);
    qt_assert(buf != NULL || len == 0);
    struct tzif_header h1, h2;
    size_t pos = 0;
    *out = NULL;
    int rc = tzif_header(buf, len, &pos, &h1);
    if (rc != 0)
        return rc;
    if (len - pos < tzif_block_bytes(&h1, 4))
        return qt_fail(QT_ETRUNC, "tzif: truncated version 1 block");
    pos += tzif_block_bytes(&h1, 4);
    if ((rc = tzif_header(buf, len, &pos, &h2)) != 0)
        return rc;
    if (h2.leapcnt != 0)
        return qt_fail(QT_EINVAL, "tzif: leap-second zones (right/) are not supported");
    size_t block = tzif_block_bytes(&h2, 8);
    if (len - pos < block)
        return qt_fail(QT_ETRUNC, "tzif: truncated version 2 block");
    struct qt_tz *tz = tz_alloc(h2.timecnt);
    if (tz == NULL)
        return qt_fail(QT_ENOMEM, "tzif: out of memory");
    rc = tzif_transitions(buf + pos, &h2, tz);
    if (rc == 0)
        rc = tzif_footer(buf, len, pos + block, tz);
    if (rc != 0) {
        qt_tz_free(tz);
        return rc;
    }
    *out = tz;
    return 0;
}

void
qt_tz_free(struct qt_tz *tz)
{
    if (tz == NULL)
        return;
    qt_free_sized(tz, sizeof(*tz) + (size_t)tz->count * (sizeof(int64_t) + sizeof(int32_t)));
}

/* ---- lookups ------------------------------------------------------------ */

/* Day (days since the epoch) on which rule date d falls in year y. */
static int64_t
rule_day(const struct tz_date *d, int64_t y)
{
    int64_t jan1 = qt_time_days_from_civil(y, 1, 1);
    bool leap = qt_time_month_days(y, 2) == 29;
    switch (d->kind) {
    case DATE_J: return jan1 + d->n - 1 + (leap && d->n >= 60 ? 1 : 0);
    case DATE_N: return jan1 + d->n;
    default: break;
    }
    qt_assert(d->kind == DATE_M);
    int64_t first = qt_time_days_from_civil(y, d->month, 1);
    int64_t wd_first = ((first + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday */
    int64_t day = 1 + (d->wday - wd_first + 7) % 7 + 7 * (int64_t)(d->week - 1);
    while (day > (int64_t)qt_time_month_days(y, d->month))
        day -= 7;
    return first + day - 1;
}

/* Offset under rule r at UTC second t; *next is the next rule change after
 * t.  Evaluates the DST start/end of the years around t's year: rule times
 * may reach a week into the neighbouring years. */
static int32_t
rule_at(const struct tz_rule *r, int64_t t, int64_t *next)
{
    qt_assert(t > -(INT64_C(1) << 40) && t < (INT64_C(1) << 40));
    *next = INT64_MAX;
    if (!r->has_dst)
        return r->std_off;
    int64_t y0;
    unsigned m, d;
    qt_time_civil_from_days(qt_time_floor_div(t, QT_SEC_PER_DAY), &y0, &m, &d);
    int64_t ev_at[10];
    int32_t ev_off[10];
    int n = 0;
    for (int64_t y = y0 - 2; y <= y0 + 2; y++) {
        ev_at[n] = rule_day(&r->start, y) * QT_SEC_PER_DAY + r->start.time - r->std_off;
        ev_off[n++] = r->dst_off;
        ev_at[n] = rule_day(&r->end, y) * QT_SEC_PER_DAY + r->end.time - r->dst_off;
        ev_off[n++] = r->std_off;
    }
    /* Stable insertion sort: on a tie the later-listed event wins, so an
     * end at the same instant as next year's start leaves DST on. */
    for (int i = 1; i < n; i++) {
        for (int j = i; j > 0 && ev_at[j - 1] > ev_at[j]; j--) {
            int64_t ta = ev_at[j];
            int32_t to = ev_off[j];
            ev_at[j] = ev_at[j - 1], ev_off[j] = ev_off[j - 1];
            ev_at[j - 1] = ta, ev_off[j - 1] = to;
        }
    }
    int32_t off = ev_off[0] == r->dst_off ? r->std_off : r->dst_off;
    for (int i = 0; i < n; i++) {
        if (ev_at[i] > t) {
            *next = ev_at[i];
            break;
        }
        off = ev_off[i];
    }
    return off;
}

/* Offset at UTC second t and the next instant (> t) where it may change. */
static int32_t
tz_at(const struct qt_tz *tz, int64_t t, int64_t *next)
{
    qt_assert(tz != NULL);
    qt_assert(tz->count <= QT_TZIF_TRANSITIONS_MAX);
    if (tz->count == 0 && tz->has_rule)
        return rule_at(&tz->rule, t, next);
    if (tz->count == 0 || t < tz->at[0]) {
        *next = tz->count > 0 ? tz->at[0] : INT64_MAX;
        return tz->initial_off;
    }
    uint32_t lo = 0, hi = tz->count; /* at[lo] <= t < at[hi] (at[count] = +inf) */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    if (hi < tz->count) {
        *next = tz->at[hi];
        return tz->off[lo];
    }
    if (tz->has_rule)
        return rule_at(&tz->rule, t, next);
    *next = INT64_MAX;
    return tz->off[lo];
}

int32_t
qt_tz_offset(const struct qt_tz *tz, int64_t t_ns)
{
    int64_t next;
    return tz_at(tz, qt_time_floor_div(t_ns, QT_NS_PER_SEC), &next);
}

/* First UTC second whose local date is local day `day` or later: the
 * minimum over constant-offset pieces [a, b) of max(a, M - off), M being
 * the day's local midnight.  No instant before M - TZ_OFF_MAX qualifies,
 * so the scan starts there and ends at the first piece that qualifies. */
static int64_t
day_start(const struct qt_tz *tz, int64_t day)
{
    int64_t m = day * QT_SEC_PER_DAY;
    int64_t u = m - TZ_OFF_MAX - 1;
    /* Pieces in a 2-day window: at most every listed transition plus a
     * few rule changes. */
    for (uint32_t i = 0; i < tz->count + 16; i++) {
        int64_t next;
        int32_t off = tz_at(tz, u, &next);
        int64_t cand = m - off > u ? m - off : u;
        if (cand < next)
            return cand;
        qt_assert(next > u);
        u = next;
    }
    qt_unreachable(); /* the piece holding m + TZ_OFF_MAX always qualifies */
}

static int64_t
sec_to_ns_clamped(int64_t s)
{
    int64_t ns;
    if (qt_time_mul(s, QT_NS_PER_SEC, &ns))
        return ns;
    return s < 0 ? INT64_MIN : INT64_MAX;
}

void
qt_tz_bucket(const struct qt_tz *tz, int64_t t_ns, uint32_t days, int64_t *start_ns,
             int64_t *end_ns)
{
    qt_assert(tz != NULL);
    qt_assert(days >= 1 && days <= QT_QUERY_TZ_BUCKET_DAYS_MAX);
    int64_t t = qt_time_floor_div(t_ns, QT_NS_PER_SEC), next;
    int64_t local_day = qt_time_floor_div(t + tz_at(tz, t, &next), QT_SEC_PER_DAY);
    int64_t k = qt_time_floor_div(local_day, days) * days;
    int64_t s = day_start(tz, k), e = day_start(tz, k + days);
    qt_assert(s <= t);
    /* A backward offset change can put t after the start of a following
     * bucket: local time repeats at most 2 * TZ_OFF_MAX seconds (< 3 days),
     * so at most 4 steps. */
    for (int i = 0; e <= t; i++) {
        qt_assert(i < 8);
        k += days;
        s = e;
        e = day_start(tz, k + days);
    }
    *start_ns = sec_to_ns_clamped(s);
    *end_ns = sec_to_ns_clamped(e);
}

uint32_t
qt_tz_transitions(const struct qt_tz *tz)
{
    return tz->count;
}

/* ---- encoding (fuzz oracle, tests) -------------------------------------- */

size_t
qt_tz_encode_bound(const struct qt_tz *tz)
{
    qt_assert(tz->count <= QT_TZIF_TRANSITIONS_MAX);
    /* v1 header + one type + one char, v2 header, data, chars, footer. */
    return 2 * TZIF_HEADER_BYTES + 7 + (size_t)tz->count * 9 + ((size_t)tz->count + 1) * 6 + 1 +
           tz->footer_len + 2;
}

/* Write a header with the given v2 counts at p. */
static void
tzif_put_header(uint8_t *p, uint32_t timecnt, uint32_t typecnt)
{
    memset(p, 0, TZIF_HEADER_BYTES);
    memcpy(p, "TZif2", 5);
    put_be32(p + 32, timecnt);
    put_be32(p + 36, typecnt);
    put_be32(p + 40, 1); /* charcnt: one empty abbreviation */
}

/* Distinct offsets, initial first; idx[i] is transition i's type. */
static uint32_t
tz_types(const struct qt_tz *tz, int32_t *types, uint8_t *idx)
{
    uint32_t n = 1;
    types[0] = tz->initial_off;
    for (uint32_t i = 0; i < tz->count; i++) {
        uint32_t j = 0;
        while (j < n && types[j] != tz->off[i])
            j++;
        if (j == n) {
            qt_assert(n < QT_TZIF_TYPES_MAX); /* parsed from <= 256 types */
            types[n++] = tz->off[i];
        }
        idx[i] = (uint8_t)j;
    }
    return n;
}

int
qt_tz_encode(const struct qt_tz *tz, uint8_t *out, size_t cap, size_t *out_len)
{
    qt_assert(tz != NULL && out_len != NULL);
    int32_t types[QT_TZIF_TYPES_MAX];
    uint8_t idx[QT_TZIF_TRANSITIONS_MAX];
    uint32_t ntypes = tz_types(tz, types, idx);
    if (cap < qt_tz_encode_bound(tz))
        return qt_fail(QT_ENOSPACE, "tzif: output buffer too small");
    uint8_t *p = out;
    tzif_put_header(p, 0, 1);
    p += TZIF_HEADER_BYTES;
    memset(p, 0, 7); /* v1: type {0, 0, 0} and abbreviation "" */
    p += 7;
    tzif_put_header(p, tz->count, ntypes);
    p += TZIF_HEADER_BYTES;
    for (uint32_t i = 0; i < tz->count; i++, p += 8) {
        put_be32(p, (uint32_t)((uint64_t)tz->at[i] >> 32));
        put_be32(p + 4, (uint32_t)tz->at[i]);
    }
    memcpy(p, idx, tz->count);
    p += tz->count;
    for (uint32_t i = 0; i < ntypes; i++, p += 6) {
        put_be32(p, (uint32_t)types[i]);
        p[4] = 0;
        p[5] = 0;
    }
    *p++ = 0;
    *p++ = '\n';
    memcpy(p, tz->footer, tz->footer_len);
    p += tz->footer_len;
    *p++ = '\n';
    *out_len = (size_t)(p - out);
    qt_assert(*out_len <= qt_tz_encode_bound(tz));
    return 0;
}

bool
qt_tz_equal(const struct qt_tz *a, const struct qt_tz *b)
{
    qt_assert(a != NULL && b != NULL);
    if (a->count != b->count || a->initial_off != b->initial_off || a->has_rule != b->has_rule)
        return false;
    if (a->footer_len != b->footer_len || memcmp(a->footer, b->footer, a->footer_len) != 0)
        return false;
    if (a->has_rule && memcmp(&a->rule, &b->rule, sizeof(a->rule)) != 0)
        return false;
    for (uint32_t i = 0; i < a->count; i++)
        if (a->at[i] != b->at[i] || a->off[i] != b->off[i])
            return false;
    return true;
}

/* ---- loading ------------------------------------------------------------ */

bool
qt_tz_name_is_valid(const char *name, size_t len)
{
    if (len == 0 || len > QT_TZ_NAME_MAX)
        return false;
    /* "localtime" is the host's own setting, not a zone: a query must mean
     * the same on every server. */
    if (len == 9 && memcmp(name, "localtime", 9) == 0)
        return false;
    size_t comp = 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '/') {
            if (comp == 0)
                return false;
            comp = 0;
            continue;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-'))
            return false;
        comp++;
    }
    return comp > 0;
}

/* Read the whole regular file at path (at most QT_TZIF_FILE_MAX bytes)
 * into a new qt_malloc buffer *bufp owned by the caller. */
static int
tz_read_file(const char *path, uint8_t **bufp, size_t *len)
{
    *bufp = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? qt_fail(QT_ENOTFOUND, "tz: no such zone")
                                                   : -errno;
    struct stat st;
    uint8_t *buf = NULL;
    size_t size = 0, n = 0;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = qt_fail(QT_ENOTFOUND, "tz: no such zone");
    else if (st.st_size > (off_t)QT_TZIF_FILE_MAX)
        rc = qt_fail(QT_ELIMIT, "tz: zone file too large");
    else if ((buf = qt_malloc((size = (size_t)st.st_size) + 1)) == NULL)
        rc = qt_fail(QT_ENOMEM, "tz: out of memory");
    /* Ask for one byte more than the size to notice a file that grew. */
    while (rc == 0 && n <= size) {
        ssize_t r = read(fd, buf + n, size + 1 - n);
        if (r < 0 && errno != EINTR)
            rc = -errno;
        if (r == 0)
            break;
        if (r > 0)
            n += (size_t)r;
    }
    close(fd);
    if (rc == 0 && n > size)
        rc = qt_fail(QT_ECORRUPT, "tz: zone file changed while read");
    if (rc != 0) {
        qt_free(buf);
        return rc;
    }
    *bufp = buf;
    *len = n;
    return 0;
}

int
qt_tz_load(const char *dir, const char *name, size_t len, struct qt_tz **out)
{
    qt_assert(out != NULL);
    qt_assert(name != NULL || len == 0);
    *out = NULL;
    if (!qt_tz_name_is_valid(name, len))
        return qt_fail(QT_EINVAL, "tz: not a valid zone name");
    char path[512];
    int n = snprintf(path, sizeof(path), "%s/%.*s", dir != NULL ? dir : QT_TZ_DIR_DEFAULT, (int)len,
                     name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return qt_fail(QT_EINVAL, "tz: zone directory path too long");
    uint8_t *buf = NULL;
    size_t blen = 0;
    int rc = tz_read_file(path, &buf, &blen);
    if (rc == 0)
        rc = qt_tz_parse(buf, blen, out);
    qt_free(buf);
    return rc;
}
