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

/* ---- server/ ingest parsers ------------------------------------------- */

/* Longest line-protocol or Graphite line, not counting its "\n" or "\r\n".
 * InfluxDB documents 64 KiB as its string-field limit and lines longer than
 * that are a client bug or an attack; a connection's read buffer must hold
 * one whole line, so this also sizes per-connection memory. */
#define QT_LINE_MAX 65536u

/* Fields in one line-protocol line.  A monitoring station reports tens of
 * quantities per reading; 256 leaves room while bounding the caller's point
 * struct (~10 KiB) and the per-line duplicate-key check, which is quadratic
 * in the worst case. */
#define QT_FIELDS_MAX 256u

/* Longest numeric literal (float, integer or timestamp text) in a line.
 * DBL_MAX written out in full ("%f") is 316 characters; 1 KiB leaves room for
 * leading zeros while keeping the slow exact-conversion path cheap on
 * hostile input. */
#define QT_NUMBER_TEXT_MAX 1024u

/* Graphite mapping templates in one configuration and the longest template
 * text.  Deployments use a handful (one per agent family); each template is
 * a short dotted pattern. */
#define QT_GRAPHITE_TEMPLATES_MAX 64u
#define QT_GRAPHITE_TEMPLATE_MAX  512u

/* Dotted parts in one template's filter or pattern.  collectd and Telegraf
 * paths have 4-8 components; a pattern can name at most a measurement, a
 * field and QT_TAGS_MAX tags, so 64 parts is already generous. */
#define QT_GRAPHITE_PARTS_MAX 64u

/* Current on-disk format version, written in every file header/footer.
 * Bump with any layout change and update DESIGN.md in the same commit. */
#define QT_FORMAT_VERSION 1u

#endif
