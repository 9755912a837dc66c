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

/* Current on-disk format version, written in every file header/footer.
 * Bump with any layout change and update DESIGN.md in the same commit. */
#define QT_FORMAT_VERSION 1u

/* ---- query/ ----------------------------------------------------------- */

/* Longest query text.  The longest realistic query is a selector with a
 * few hundred stations in an `in` list (~10 bytes each); 16 KiB holds that
 * with room while bounding lexing, parsing and error rendering work. */
#define QT_QUERY_TEXT_MAX 16384u

/* Nesting depth of the recursive-descent parser (Lua's enterlevel).  The
 * grammar reaches depth ~6 today; the guard turns any future recursive
 * rule into an error instead of a C stack overflow. */
#define QT_QUERY_DEPTH_MAX 32u

/* Stages after the selector.  The longest valid pipeline is a few `where`s,
 * one rate/delta, one aggregation, fill and limit; 16 leaves room for
 * several filters without letting a query become a program. */
#define QT_QUERY_STAGES_MAX 16u

/* Tag matchers in one selector.  The city hierarchy has ~8 levels plus
 * site, type and owner; 32 lets each be constrained more than once. */
#define QT_QUERY_MATCHERS_MAX 32u

/* Values in one `k in (...)` list.  A dashboard selecting every station of
 * a district sends a few hundred; each candidate series costs a lookup. */
#define QT_QUERY_IN_MAX 1024u

/* Longest regular expression (decoded bytes).  Bounds PCRE2 compile time
 * and compiled size; tag patterns are short alternations and prefixes. */
#define QT_QUERY_REGEX_MAX 1024u

/* Aggregation functions in one aggregation stage: the ten functions plus a
 * few percentiles.  Each is one result column. */
#define QT_QUERY_AGGS_MAX 16u

/* Tags in one `by` list: a series has at most QT_TAGS_MAX tags, so more
 * group-by tags than that cannot distinguish anything more. */
#define QT_QUERY_GROUP_TAGS_MAX QT_TAGS_MAX

/* Time buckets per group a bounded query may ask for (range / bucket).
 * Checked at parse time when the range is known; the executor checks
 * unbounded queries against the data.  2^20 is two years of minutes. */
#define QT_QUERY_BUCKETS_MAX (1u << 20)

/* Longest time-zone bucket in local days (`by 36500d tz "..."`): a
 * century; bounds the calendar arithmetic of qt_tz_bucket(). */
#define QT_QUERY_TZ_BUCKET_DAYS_MAX 36500u

/* Largest `limit N`.  A limit above a billion rows is no limit at all;
 * bounding it keeps the value well inside 32 bits. */
#define QT_QUERY_LIMIT_MAX 1000000000u

/* Longest number literal in a query (digits, point, exponent).  The
 * shortest round-trip form of any double is 24 characters. */
#define QT_QUERY_NUMBER_MAX 64u

/* Memory one parsed query may use in its arena (AST, strings).  A 16 KiB
 * query needs well under 256 KiB; the cap stops a pathological one. */
#define QT_QUERY_ARENA_MAX (1u << 20)

/* Error message buffer in struct qt_qry_error (bytes, with the NUL). */
#define QT_QUERY_ERROR_MAX 192u

/* Longest IANA time zone name.  The longest in tzdata is 32 bytes
 * (America/Argentina/ComodRivadavia). */
#define QT_TZ_NAME_MAX 64u

/* Largest TZif file read.  Real files are at most ~4 KiB (the biggest
 * "right/" zones); 64 KiB bounds the read and the parse. */
#define QT_TZIF_FILE_MAX 65536u

/* Transitions in one TZif data block.  tzdata's largest zone has 310
 * (fat files, transitions until 2037); 4x that leaves room for growth. */
#define QT_TZIF_TRANSITIONS_MAX 1200u

/* Local time types in a TZif file: a transition names its type in one
 * byte, so 256 is the format's own ceiling. */
#define QT_TZIF_TYPES_MAX 256u

/* Bytes of time zone abbreviations in a TZif file (tzdata uses <= 40). */
#define QT_TZIF_CHARS_MAX 256u

/* Longest POSIX TZ string in a TZif footer (tzdata's longest is 44:
 * Pacific/Chatham). */
#define QT_TZIF_FOOTER_MAX 128u

#endif
