/*
 * retention.h -- how long points are kept, per measurement
 * (design/ops.md "Retention").
 *
 * A rule names a measurement exactly ("air"), or a prefix of measurement
 * names ("water*", which also matches "water" and "water_quality"), or every
 * measurement ("*").  A measurement takes the duration of its exact rule if
 * there is one, else of its longest matching prefix rule; without any
 * matching rule its points are kept forever.
 *
 * A point of measurement m with timestamp ts is past retention at wall-clock
 * time now when ts < now - duration(m) (its cutoff).  Enforcement:
 *   - a whole shard whose every measurement is past retention for the whole
 *     shard (shard end <= cutoff) is dropped: one MANIFEST commit removes its
 *     segments, whose files are deleted when the last reader lets go;
 *   - a shard partly past retention keeps its data until it is compacted;
 *     compaction does not copy points past their cutoff (compact.h), and
 *     the background thread compacts such shards once they are sealed.
 * Data still in the memtable or the WAL is not trimmed: it reaches segments
 * at the next flush and is handled there.  Retention is about disk space;
 * queries may briefly see points past retention until the next pass.
 */
#ifndef QT_RETENTION_H
#define QT_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qt_db;

struct qt_retention_rule {
    const char *measurement; /* exact name, or prefix when `prefix`; "" + prefix = every one */
    bool prefix;
    int64_t duration_ns; /* > 0 */
};

/*
 * Parse a rule list "air=30d,water*=7d,*=400d" (units s, m, h, d, w; "ns"
 * for raw nanoseconds) into rules[0..cap) whose names point into `buf` (the
 * caller's copy of the text, modified in place: separators become NULs).
 * 0 with *n set; QT_ESYNTAX with a reason; QT_ELIMIT beyond cap or
 * QT_RETENTION_RULES_MAX rules.
 */
int qt_retention_parse(char *buf, struct qt_retention_rule *rules, uint32_t cap, uint32_t *n);

/* Replace the database's rules (copied; rules may be freed after the call).
 * QT_EINVAL for a duration <= 0, an empty exact name or a repeated rule;
 * QT_ELIMIT above QT_RETENTION_RULES_MAX. */
int qt_db_set_retention(struct qt_db *db, const struct qt_retention_rule *rules, uint32_t n);

/* The duration applying to measurement meas[0..len) (unescaped), or 0 when
 * its points are kept forever. */
int64_t qt_db_retention_for(struct qt_db *db, const char *meas, size_t len);

struct qt_retention_result {
    uint32_t shards_dropped;
    uint32_t segments_dropped;
    uint64_t points_dropped;
    uint64_t bytes_dropped;
};

/*
 * Drop every shard that is entirely past retention at now_ns (0 = wall
 * clock), skipping shards being compacted.  One MANIFEST commit; a failed
 * commit makes the database read-only (as a failed flush does).  res may
 * be NULL.  Returns 0, QT_EREADONLY, or the commit's error.
 */
int qt_db_apply_retention(struct qt_db *db, int64_t now_ns, struct qt_retention_result *res);

#endif
