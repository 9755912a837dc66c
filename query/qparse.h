/*
 * qparse.h -- the query language: parse text into a validated, normalised
 * query plan input (the AST the executor runs over storage iterators).
 *
 *   air.pm25{station="a0001"} [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | avg, max by 1h
 *
 * Grammar, semantics and validity rules: design/query.md.  A successfully
 * parsed query is already checked: names and strings are decoded, regexes
 * compiled (PCRE2), time literals resolved against the caller's `now`,
 * the range half-open and non-empty, time zones loaded, and the stage list
 * obeys
 *
 *   (where | rate | delta)*  [ aggregate [fill] | last | episodes | gaps ]  [limit]
 *
 * with at most one rate/delta, so the executor never re-validates.
 *
 * Normal form (what the printer prints and a re-parse reproduces):
 * matchers sorted by (key, op, value) without duplicates; `in` lists sorted
 * and de-duplicated, a one-value `in` becomes `=`; a closed range [a, b]
 * becomes [a, b+1ns); epoch times become RFC 3339 UTC; durations are
 * compound largest-unit-first (90s -> 1m30s).
 *
 * Memory: a query owns one arena (arena.h) holding every node and string;
 * compiled regexes and loaded zones are owned by the query too and freed by
 * qt_qry_free().  Strings in the AST are NUL-terminated and also carry
 * their length.  A parsed query is immutable and may be read from several
 * threads.
 */
#ifndef QT_QPARSE_H
#define QT_QPARSE_H

#include "format/qt_limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qt_tz;
struct pcre2_real_code_8; /* pcre2_code from <pcre2.h> with 8-bit code units */

/* A decoded string or name owned by the query's arena (p[len] == '\0'). */
struct qt_qry_str {
    const char *p;
    uint32_t len;
};

/* ---- selector ------------------------------------------------------------ */

/* ORDER MATCHOPS: the normal form sorts matchers by this order. */
enum qt_qry_match_op {
    QT_QRY_MATCH_EQ = 1,  /* k="v" */
    QT_QRY_MATCH_NE = 2,  /* k!="v" */
    QT_QRY_MATCH_RE = 3,  /* k=~"re" (whole value must match) */
    QT_QRY_MATCH_NRE = 4, /* k!~"re" */
    QT_QRY_MATCH_IN = 5,  /* k in ("a", "b") */
};

/*
 * One tag matcher.  A series without tag `key` matches as if its value were
 * "" (so k!="v" matches it and k="v" does not).  For RE/NRE, `re` is the
 * compiled pattern (PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_ANCHORED |
 * PCRE2_ENDANCHORED | PCRE2_NO_AUTO_CAPTURE | PCRE2_NEVER_BACKSLASH_C): it
 * must match the whole tag value.  The executor brings its own match data
 * and match limits.
 */
struct qt_qry_matcher {
    struct qt_qry_str key;
    enum qt_qry_match_op op;
    struct qt_qry_str value;         /* EQ, NE: the value; RE, NRE: the pattern */
    const struct qt_qry_str *values; /* IN: sorted bytewise, unique, >= 2 */
    uint32_t values_count;
    struct pcre2_real_code_8 *re; /* RE, NRE; owned by the query */
    uint32_t pos;                 /* byte offset of the key in the query text */
};

/* measurement[.field]{matchers}.  Data queries always have both names;
 * catalog targets may leave either empty (len 0). */
struct qt_qry_selector {
    struct qt_qry_str measurement;
    struct qt_qry_str field;
    const struct qt_qry_matcher *matchers; /* normal form order */
    uint32_t matchers_count;
};

/* ---- time range ---------------------------------------------------------- */

/* One end of the range: the resolved instant and how it was written. */
struct qt_qry_time {
    int64_t ns;        /* resolved: ns since the epoch (now_ns + offset if relative) */
    bool relative;     /* written as now, now-<duration> or now+<duration> */
    int64_t offset_ns; /* relative: the signed offset from now */
};

/* Half-open [start, end), start < end.  Without a range (bounded false) the
 * query reads every point: start.ns = INT64_MIN, end.ns = INT64_MAX and the
 * executor must not filter by time at all (so INT64_MAX is included). */
struct qt_qry_range {
    bool bounded;
    struct qt_qry_time start, end;
};

/* ---- stages -------------------------------------------------------------- */

/* ORDER STAGES (qprint.c stage_names) */
enum qt_qry_stage_kind {
    QT_QRY_STAGE_WHERE = 1,    /* where value <op> <number> */
    QT_QRY_STAGE_RATE = 2,     /* per-series counter rate, per second */
    QT_QRY_STAGE_DELTA = 3,    /* per-series difference of consecutive points */
    QT_QRY_STAGE_AGG = 4,      /* aggregation functions [by ...] */
    QT_QRY_STAGE_FILL = 5,     /* fill(null|prev|linear|<number>) */
    QT_QRY_STAGE_LAST = 6,     /* latest point of each series */
    QT_QRY_STAGE_EPISODES = 7, /* episodes value <op> <number> [for <duration>] */
    QT_QRY_STAGE_GAPS = 8,     /* gaps (>|>=) <duration> */
    QT_QRY_STAGE_LIMIT = 9,    /* limit N */
};

/* ORDER CMPOPS (qprint.c cmp_names) */
enum qt_qry_cmp {
    QT_QRY_CMP_GT = 1, /* > */
    QT_QRY_CMP_GE = 2, /* >= */
    QT_QRY_CMP_LT = 3, /* < */
    QT_QRY_CMP_LE = 4, /* <= */
    QT_QRY_CMP_EQ = 5, /* == */
    QT_QRY_CMP_NE = 6, /* != */
};

/* ORDER AGGFNS (qprint.c agg_names; the result column names) */
enum qt_qry_agg_fn {
    QT_QRY_AGG_COUNT = 1,
    QT_QRY_AGG_SUM = 2,
    QT_QRY_AGG_MIN = 3,
    QT_QRY_AGG_MAX = 4,
    QT_QRY_AGG_AVG = 5,
    QT_QRY_AGG_FIRST = 6,
    QT_QRY_AGG_LAST = 7,
    QT_QRY_AGG_STDDEV = 8,
    QT_QRY_AGG_SPREAD = 9,
    QT_QRY_AGG_PERCENTILE = 10,
};

struct qt_qry_agg {
    enum qt_qry_agg_fn fn;
    double p; /* PERCENTILE: 0 <= p <= 100 */
};

enum qt_qry_fill_kind {
    QT_QRY_FILL_NULL = 1,
    QT_QRY_FILL_PREV = 2,
    QT_QRY_FILL_LINEAR = 3,
    QT_QRY_FILL_VALUE = 4,
};

/* A comparison with a number (where, episodes). */
struct qt_qry_cond {
    enum qt_qry_cmp op;
    double value; /* finite */
};

struct qt_qry_stage_agg {
    const struct qt_qry_agg *fns;  /* result columns, in written order */
    uint32_t fns_count;            /* 1..QT_QUERY_AGGS_MAX, no duplicates */
    int64_t bucket_ns;             /* `by <duration>`; 0: one bucket for the range */
    struct qt_qry_str tz_name;     /* `tz "Zone"`; len 0: buckets aligned to the epoch */
    const struct qt_tz *tz;        /* loaded zone when tz_name is set */
    uint32_t bucket_days;          /* tz set: bucket_ns / 1d (whole local days) */
    const struct qt_qry_str *tags; /* group-by tags, written order, unique */
    uint32_t tags_count;
};

struct qt_qry_stage {
    enum qt_qry_stage_kind kind;
    uint32_t pos; /* byte offset of the stage's first token */
    union {
        struct qt_qry_cond where;
        struct qt_qry_stage_agg agg;
        struct {
            enum qt_qry_fill_kind kind;
            double value; /* FILL_VALUE */
        } fill;
        struct {
            struct qt_qry_cond cond;
            int64_t min_ns; /* `for <duration>`; 0 when absent */
        } episodes;
        struct {
            bool inclusive; /* >= rather than > */
            int64_t min_ns; /* > 0 */
        } gaps;
        uint64_t limit; /* 1..QT_QUERY_LIMIT_MAX */
    } u;
};

/* ---- the query ----------------------------------------------------------- */

enum qt_qry_kind {
    QT_QRY_DATA = 1,         /* selector [range] stages */
    QT_QRY_MEASUREMENTS = 2, /* measurements [{matchers}] */
    QT_QRY_FIELDS = 3,       /* fields [target] */
    QT_QRY_TAGS = 4,         /* tags [target]          (tag keys) */
    QT_QRY_VALUES = 5,       /* values <tag> [in target] (tag values) */
    QT_QRY_SERIES = 6,       /* series [target] */
};

struct qt_qry_internal; /* regexes and zones to free; private to qparse.c */

struct qt_qry {
    enum qt_qry_kind kind;
    int64_t now_ns;                    /* the `now` relative times were resolved against */
    struct qt_qry_selector sel;        /* data: the selector; catalog: the target */
    struct qt_qry_str tag_key;         /* QT_QRY_VALUES: the tag whose values are listed */
    struct qt_qry_range range;         /* data queries only; catalog: unbounded */
    const struct qt_qry_stage *stages; /* validated order; catalog: only limit */
    uint32_t stages_count;
    /* Shortcuts into stages[] for the planner (NULL when absent). */
    const struct qt_qry_stage *agg;      /* the aggregation stage */
    const struct qt_qry_stage *terminal; /* last / episodes / gaps */
    uint64_t limit;                      /* 0: no limit */
    struct qt_qry_internal *internal;
};

/* ---- errors -------------------------------------------------------------- */

/* Why a parse failed.  code is the return value of qt_qry_parse (QT_ESYNTAX
 * for malformed or invalid text, QT_ELIMIT for a QT_QUERY_* limit,
 * QT_ENOMEM, or an I/O error while loading a time zone); position is the
 * byte offset of the fault in the text (== len for "unexpected end"), or
 * -1 when the error has no place (out of memory, query too long). */
struct qt_qry_error {
    int code;
    int32_t position;
    char message[QT_QUERY_ERROR_MAX]; /* NUL-terminated, printable ASCII */
};

/* ---- API ----------------------------------------------------------------- */

/* Options for qt_qry_parse_opts; zero-initialise, then set what you need. */
struct qt_qry_opts {
    const char *zoneinfo_dir; /* NULL: QT_TZ_DIR_DEFAULT */
    uint32_t depth_max;       /* 0: QT_QUERY_DEPTH_MAX; only lowers it (tests the guard) */
};

/*
 * Parse text[0..len) (UTF-8, <= QT_QUERY_TEXT_MAX bytes, not necessarily
 * NUL-terminated), resolving relative times against now_ns.  On success
 * returns 0 and *out is a new query owned by the caller (qt_qry_free).  On
 * failure returns the error code, *out is NULL and, if err is not NULL,
 * *err says why and where.  Allocates through qt_alloc.h only; may read a
 * zone file from the zoneinfo directory; writes only *out and *err.
 */
int qt_qry_parse(const char *text, size_t len, int64_t now_ns, struct qt_qry **out,
                 struct qt_qry_error *err);

/* As qt_qry_parse with options (opts may be NULL). */
int qt_qry_parse_opts(const char *text, size_t len, int64_t now_ns, const struct qt_qry_opts *opts,
                      struct qt_qry **out, struct qt_qry_error *err);

/* Free a query with everything it owns; accepts NULL. */
void qt_qry_free(struct qt_qry *q);

/* Names used in the text and as result column names: "count", ...,
 * "percentile"; ">", ">=", ...  Static strings. */
const char *qt_qry_agg_fn_name(enum qt_qry_agg_fn fn);
const char *qt_qry_cmp_name(enum qt_qry_cmp op);

#endif
