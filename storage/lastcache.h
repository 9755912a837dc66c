/*
 * lastcache.h -- the latest point of every series, kept in memory for
 * dashboards ("last" queries run constantly and must answer in microseconds).
 *
 * Each series (dense sid) has one entry: timestamp and value of its newest
 * point.  Writes call qt_lc_observe(); an entry moves only forward in time
 * (a late point older than the cached one does not replace it; an equal
 * timestamp replaces it, matching last-write-wins).
 *
 * After a restart the cache only knows what writes have shown it since open,
 * which may be older than a point already in a segment (late data in the WAL).
 * So an entry is KNOWN only once the storage layer has seeded it from disk
 * (qt_lc_seed(), from the newest block's statistics); until then
 * qt_lc_get() reports it as a candidate and the caller consults storage.
 *
 * Thread-safe: entries are guarded by striped mutexes; get/observe cost one
 * uncontended lock.  String values are copied (<= QT_STRING_VALUE_MAX).
 */
#ifndef QT_LASTCACHE_H
#define QT_LASTCACHE_H

#include "format/codec.h"
#include "format/qt_limits.h"
#include "storage/memtable.h"

#include <stdbool.h>
#include <stdint.h>

struct qt_lastcache;

/* A copied-out entry.  For strings, str holds up to QT_STRING_VALUE_MAX
 * bytes in `strbuf` and v.s.len is the length. */
struct qt_lc_point {
    int64_t ts;
    uint8_t vtype;
    union qt_value v;
    char strbuf[QT_LC_STRBUF];
};

enum qt_lc_state { QT_LC_EMPTY = 0, QT_LC_CANDIDATE = 1, QT_LC_KNOWN = 2 };

int qt_lc_create(struct qt_lastcache **out);
void qt_lc_destroy(struct qt_lastcache *lc);

/* A write of (ts, value) to sid.  QT_ENOMEM only if the entry table or a
 * string copy cannot be allocated (the cache then simply misses). */
int qt_lc_observe(struct qt_lastcache *lc, uint32_t sid, int64_t ts, uint8_t vtype,
                  const union qt_value *v, const struct qt_str *str);

/* The storage layer's answer for sid's newest point on disk (or found=false
 * when it has none): merged with any newer candidate; the entry becomes KNOWN. */
int qt_lc_seed(struct qt_lastcache *lc, uint32_t sid, bool found, int64_t ts, uint8_t vtype,
               const union qt_value *v, const struct qt_str *str);

/* Copy sid's entry into *out; returns its state (EMPTY: nothing to copy). */
enum qt_lc_state qt_lc_get(struct qt_lastcache *lc, uint32_t sid, struct qt_lc_point *out);

/* Forget everything (the engine calls it when data is deleted by retention
 * or restore, so stale values cannot be served). */
void qt_lc_reset(struct qt_lastcache *lc);

#endif
