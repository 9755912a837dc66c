/*
 * tz.h -- time zones without the C library's global state.
 *
 * localtime_r/mktime consult TZ and the process-wide tzset() state; setenv
 * from a multi-threaded server is undefined behaviour.  So qtdb reads the
 * zone's TZif file (RFC 8536) itself: a bounded parser for version 2+
 * files (64-bit transition times) plus the POSIX TZ string in the footer,
 * which gives the rule after the last listed transition.  A parsed zone
 * is immutable; every lookup is a pure function and thread-safe.
 *
 * Supported: v2, v3, v4 files; offsets within +-25:59:59; footer rules in
 * the POSIX form with the RFC 8536 v3 extensions (transition hours
 * -167..167, all-year DST).  Rejected: v1-only files, leap-second
 * ("right/") zones, a footer with DST but no rule, anything over the
 * QT_TZIF_* limits.  Details: design/query.md, "Time zones".
 */
#ifndef QT_TZ_H
#define QT_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qt_tz;

/* Where zone files live unless the caller names another directory
 * (Debian package tzdata). */
#define QT_TZ_DIR_DEFAULT "/usr/share/zoneinfo"

/*
 * Parse TZif bytes buf[0..len).  On success *out is a new zone owned by
 * the caller (free with qt_tz_free).  Returns QT_EMAGIC (not TZif),
 * QT_EVERSION (version 1 only), QT_ETRUNC, QT_ECORRUPT, QT_ELIMIT (a
 * QT_TZIF_* limit) with a qt_err_detail() reason, or QT_ENOMEM.  Reads only
 * buf[0..len); never asserts on the bytes.
 */
int qt_tz_parse(const uint8_t *buf, size_t len, struct qt_tz **out);

/* True when name[0..len) is an acceptable zone name: 1..QT_TZ_NAME_MAX
 * bytes of components [A-Za-z0-9_+-]+ separated by single '/' (so no
 * absolute paths, no "." or ".." and no way out of the zone directory),
 * and not "localtime" (the host's setting, which differs between servers). */
bool qt_tz_name_is_valid(const char *name, size_t len);

/*
 * Load zone `name` (validated as above) from directory dir (NULL:
 * QT_TZ_DIR_DEFAULT) and parse it.  Returns QT_EINVAL for a bad name,
 * QT_ENOTFOUND if no such zone file, -errno for other I/O errors, or a
 * qt_tz_parse() error.  Blocking file I/O: call at parse time, not per
 * point.
 */
int qt_tz_load(const char *dir, const char *name, size_t len, struct qt_tz **out);

/* Free a zone; accepts NULL. */
void qt_tz_free(struct qt_tz *tz);

/* UTC offset (seconds east of UTC) in effect at instant t_ns. */
int32_t qt_tz_offset(const struct qt_tz *tz, int64_t t_ns);

/*
 * The local-calendar bucket of `days` whole local days (1 <= days <=
 * QT_QUERY_TZ_BUCKET_DAYS_MAX) holding instant t_ns: [*start_ns, *end_ns), start <= t < end.
 * Buckets are aligned so that local day number 0 (1970-01-01 local) starts
 * a bucket; a local day starts at the first instant whose local date is
 * that day (so a day that begins inside a DST gap starts at the
 * transition; a repeated hour belongs to the day that reached it first).
 * Bounds beyond the int64 ns range are clamped to INT64_MIN / INT64_MAX
 * (so the last bucket is [start, INT64_MAX] and holds INT64_MAX itself).
 * Costs a few binary searches: executors compute it once per bucket, then
 * compare timestamps against end.
 */
void qt_tz_bucket(const struct qt_tz *tz, int64_t t_ns, uint32_t days, int64_t *start_ns,
                  int64_t *end_ns);

/* Bytes qt_tz_encode() needs for tz. */
size_t qt_tz_encode_bound(const struct qt_tz *tz);

/* Write tz as a minimal TZif version 2 file (a one-type v1 block, the
 * transitions with one type per distinct offset, the footer as read).
 * qt_tz_parse() of the result gives a zone qt_tz_equal() to tz.  Returns
 * QT_ENOSPACE if cap < qt_tz_encode_bound(tz). */
int qt_tz_encode(const struct qt_tz *tz, uint8_t *out, size_t cap, size_t *out_len);

/* True when a and b give the same offset at every instant by construction
 * (same transitions, offsets and footer rule). */
bool qt_tz_equal(const struct qt_tz *a, const struct qt_tz *b);

/* Number of transitions listed in the file (tests, diagnostics). */
uint32_t qt_tz_transitions(const struct qt_tz *tz);

#endif
