/*
 * qt_limits.h -- every fixed limit in qtdb, each with the reason for its
 * value.  Settings that operators may change (memory budget, ports, ...)
 * live in the config; their *defaults* and hard ceilings live here.
 *
 * Grep tag for constants that must stay in step with DESIGN.md: LIMITS.
 */
#ifndef QT_LIMITS_H
#define QT_LIMITS_H

#include <stdint.h>

/* ---- format/ ---------------------------------------------------------- */

/* Points in one block.  Peers settle on a few thousand (VictoriaMetrics 8K,
 * Prometheus 120): enough for the per-block header and frame-of-reference
 * overhead to vanish (< 0.1 bit/point) while a block still decodes in a few
 * microseconds and block statistics stay useful for pruning. */
#define QT_BLOCK_POINTS_MAX 8192u

/* Largest encoded column payload: 8 bytes/value raw plus headroom for the
 * worst-case encoder expansion (exceptions lists, dictionary). */
#define QT_BLOCK_PAYLOAD_MAX (QT_BLOCK_POINTS_MAX * 18u + 4096u)

/* Longest string value (status/event fields).  Long enough for an event
 * message, short enough that a block of them stays well under a megabyte;
 * longer text belongs in another system (DOMAIN.md #25). */
#define QT_STRING_VALUE_MAX 1024u

/* Distinct strings in one string block's dictionary.  Status fields have a
 * handful of states; beyond this the column is not "short strings". */
#define QT_STRING_DICT_MAX 4096u

/* Longest canonical series key (measurement, tags, field).  InfluxDB's
 * default max is 64 KiB per line; a key this long is a client bug. */
#define QT_SERIES_KEY_MAX 4096u

/* Tags per series.  The city hierarchy needs ~8 (district, street,
 * community, site, type, owner, ...); 64 leaves room without letting one
 * client build pathological keys. */
#define QT_TAGS_MAX 64u

/* Largest single WAL record (one write batch after encoding).  Bounds the
 * memory recovery needs to hold one record and the size of a torn tail. */
#define QT_WAL_RECORD_MAX (16u << 20)

/* Blocks listed in one segment's index.  A segment is one flush of one
 * shard: 1M series x a few blocks fits with room; more is a corrupt count. */
#define QT_SEGMENT_BLOCKS_MAX (16u << 20)

/* Live segments listed in one MANIFEST.  Ten years of daily shards with a
 * few hundred segments each before compaction; 4M entries is a 256 MiB
 * manifest, past which rewriting it on every flush would hurt. */
#define QT_MANIFEST_SEGMENTS_MAX (4u << 20)

/* ---- storage/ --------------------------------------------------------- */

/* Memtable lock stripes.  Groups map to a stripe by gid; 64 stripes keep the
 * chance that two ingest threads contend below 2% on a 64-core machine,
 * while a stripe array costs only a few KiB. */
#define QT_MEM_PARTITIONS 64u

/* Value columns (fields) in one column group.  Sensor lines carry a handful
 * of fields; 1024 admits wide industrial records without letting one group
 * make row appends quadratic (columns are found by a short scan). */
#define QT_GROUP_FIELDS_MAX 1024u

/* Bytes of a string value copied out of the last-value cache: the whole
 * value, since string values are bounded by QT_STRING_VALUE_MAX. */
#define QT_LC_STRBUF QT_STRING_VALUE_MAX

/* Current on-disk format version, written in every file header/footer.
 * Bump with any layout change and update DESIGN.md in the same commit. */
#define QT_FORMAT_VERSION 1u

#endif
