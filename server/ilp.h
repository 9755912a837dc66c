/*
 * ilp.h -- InfluxDB line protocol: parse, canonical series key, format.
 *
 *   measurement[,tag=value...] field=value[,field=value...] [timestamp]
 *
 * Pure parsing over caller-owned memory: no sockets, no allocation, no
 * logging.  The grammar, every decision where the published spec is silent
 * or ambiguous, and the limits are in design/ilp.md.
 *
 * Ownership: a parsed point's strings point either into the input line
 * (zero-copy, when a name has no escapes) or into the caller's scratch
 * buffer (unescaped copies).  They stay valid while both the input and the
 * scratch buffer are unchanged; the next parse into the same scratch buffer
 * invalidates them.
 *
 * Errors: a rejected line returns QT_ESYNTAX (malformed), QT_ELIMIT (a
 * named limit exceeded) or QT_ENOSPACE (scratch too small) and leaves a
 * reason in qt_err_detail(), e.g. "ilp: invalid integer field 'x'".  Reasons
 * that name a key live in a thread-local buffer that the next failure of an
 * ingest parser on the same thread overwrites.
 */
#ifndef QT_ILP_H
#define QT_ILP_H

#include "format/qt_limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A length-delimited byte string; not NUL-terminated. */
struct qt_ilp_str {
    const char *ptr;
    uint32_t len;
};

/* Field value types.  Unsigned "u" values are stored as QT_ILP_INT (they
 * are accepted only up to INT64_MAX). */
enum qt_ilp_type { QT_ILP_FLOAT = 1, QT_ILP_INT = 2, QT_ILP_BOOL = 3, QT_ILP_STRING = 4 };

struct qt_ilp_tag {
    struct qt_ilp_str key;
    struct qt_ilp_str value;
};

struct qt_ilp_field {
    struct qt_ilp_str key;
    enum qt_ilp_type type;
    union {
        double f;
        int64_t i;
        bool b;
        struct qt_ilp_str s;
    } v;
};

/* One parsed point.  Invariants after a successful parse:
 *  - measurement, every key and every tag value are non-empty, valid UTF-8,
 *    free of control characters, and do not end with a backslash;
 *  - tags are sorted by key bytes (memcmp, shorter first on a tie) with no
 *    duplicate keys;
 *  - field keys are unique (for a repeated key the last value wins), in
 *    order of their last occurrence;
 *  - key_len is the length of the canonical group key and
 *    key_len + 1 + (longest canonical field key) <= QT_SERIES_KEY_MAX. */
struct qt_ilp_point {
    struct qt_ilp_str measurement;
    int64_t timestamp_ns; /* always set: from the line or the default */
    bool has_timestamp;   /* the line carried a timestamp */
    uint32_t tags_count;
    uint32_t fields_count;
    uint32_t key_len;      /* bytes of qt_ilp_group_key() output */
    uint32_t error_offset; /* on failure: byte offset in the line */
    struct qt_ilp_tag tags[QT_TAGS_MAX];
    struct qt_ilp_field fields[QT_FIELDS_MAX];
};

/* Timestamp precision of a write (the HTTP API's ?precision=). */
enum qt_ilp_precision { QT_ILP_NS = 0, QT_ILP_US = 1, QT_ILP_MS = 2, QT_ILP_S = 3 };

struct qt_ilp_opts {
    enum qt_ilp_precision precision;
    int64_t now_ns; /* default for lines without a timestamp ("now") */
};

/* Accepted timestamp range after scaling, as InfluxDB documents it; the two
 * values at each end of int64 stay free for storage sentinels. */
#define QT_ILP_TS_MIN (INT64_MIN + 2)
#define QT_ILP_TS_MAX (INT64_MAX - 1)

/* Scratch the parsers may need for one line of `len` bytes: unescaped text
 * is never longer than its source.  QT_LINE_MAX bytes always suffice. */
#define QT_ILP_SCRATCH_MAX QT_LINE_MAX

/* parse_line result for blank and comment lines: no point, not an error. */
#define QT_ILP_SKIP 1

/* Map "ns", "us", "ms", "s" (also "n", "u" as InfluxDB 1.x accepts) to a
 * precision.  QT_EINVAL for anything else. */
int qt_ilp_precision_parse(const char *s, size_t len, enum qt_ilp_precision *out);

/*
 * Parse one line: line[0 .. len) excluding its '\n' (a final '\r' is
 * ignored).  Returns 0 with *pt filled, QT_ILP_SKIP for a blank or comment
 * line, or a negative QT_E* code with a reason (qt_err_detail()) and
 * pt->error_offset set; *pt is otherwise unspecified after a failure.
 * Unescaped names and strings are written to scratch[0 .. scratch_cap).
 */
int qt_ilp_parse_line(const struct qt_ilp_opts *opts, const uint8_t *line, size_t len,
                      char *scratch, size_t scratch_cap, struct qt_ilp_point *pt);

/*
 * The canonical group key "measurement,k1=v1,k2=v2" of a parsed point:
 * tags in sorted order, every escapable character escaped with one
 * backslash and nothing else escaped, so two lines that differ only in tag
 * order or in how they spelled equivalent escapes give identical bytes.
 * Writes exactly pt->key_len bytes to out (no NUL) and stores the length in
 * *len; QT_ENOSPACE if cap < pt->key_len.
 */
int qt_ilp_group_key(const struct qt_ilp_point *pt, char *out, size_t cap, size_t *len);

/* Upper bound of qt_ilp_format_line() output for *pt. */
size_t qt_ilp_format_bound(const struct qt_ilp_point *pt);

/*
 * Write *pt as one canonical line-protocol line (no trailing newline):
 * canonical group key, fields in order (floats in the shortest text that
 * parses back to the same bits, integers with "i", booleans as true/false,
 * strings quoted with \" and \\ escaped), and the timestamp in nanoseconds.
 * Parsing the output with precision ns gives back the same point, provided
 * it fits in QT_LINE_MAX (canonical escaping can lengthen a point parsed
 * from a line close to that limit; design/ilp.md "Formatter").
 * QT_EINVAL (with a reason) if the point cannot be represented: an empty or
 * control-character name, a name ending in a backslash, a measurement
 * starting with '#', a non-finite float, a newline in a string, unsorted or
 * duplicate tags.  QT_ENOSPACE if cap is too small.
 */
int qt_ilp_format_line(const struct qt_ilp_point *pt, char *out, size_t cap, size_t *len);

/* ---- batches ----------------------------------------------------------- */

/* One rejected line, as reported to the caller. */
struct qt_ilp_line_error {
    uint64_t line_no;    /* 1-based line number in the stream */
    uint64_t offset;     /* byte offset of the line's first byte */
    uint32_t column;     /* 1-based byte column where parsing failed */
    int code;            /* QT_ESYNTAX, QT_ELIMIT or QT_ENOSPACE */
    const char *reason;  /* valid during the callback only */
    const uint8_t *line; /* the line's bytes (at most QT_LINE_MAX of them) */
    size_t line_len;
};

/* Line parser used by a batch: ILP by default, Graphite via graphite.h. */
typedef int (*qt_ilp_parse_fn)(const void *arg, const struct qt_ilp_opts *opts, const uint8_t *line,
                               size_t len, char *scratch, size_t scratch_cap,
                               struct qt_ilp_point *pt);

/* Callbacks return 0 to continue; any other value stops the feed and is
 * returned from it. */
typedef int (*qt_ilp_point_fn)(void *ctx, const struct qt_ilp_point *pt);
typedef int (*qt_ilp_error_fn)(void *ctx, const struct qt_ilp_line_error *err);

/*
 * Streaming state for a sequence of lines arriving in chunks (one TCP
 * connection or one HTTP body).  Set it up with qt_ilp_batch_init(); the
 * caller owns `point` and `scratch` (>= QT_ILP_SCRATCH_MAX bytes) and must
 * keep them alive while feeding.  opts.now_ns may be updated between feeds.
 */
struct qt_ilp_batch {
    struct qt_ilp_opts opts;
    qt_ilp_parse_fn parse;
    const void *parse_arg;
    qt_ilp_point_fn on_point;
    qt_ilp_error_fn on_error; /* may be NULL: errors are only counted */
    void *ctx;
    struct qt_ilp_point *point;
    char *scratch;
    size_t scratch_cap;
    /* stream position */
    uint64_t line_no; /* number of the next line, from 1 */
    uint64_t offset;  /* stream offset of the next unconsumed byte */
    bool discarding;  /* dropping the rest of an over-long line */
    /* counters */
    uint64_t points;
    uint64_t lines_bad;
    uint64_t lines_skipped; /* blank, comment, or dropped (Graphite NaN) */
};

/* A read buffer smaller than this cannot hold a maximal line and its
 * "\r\n"; callers feeding partial input must provide at least this much. */
#define QT_ILP_BATCH_BUF_MIN (QT_LINE_MAX + 2u)

/* Prepare *b for line protocol with the given options and callbacks. */
void qt_ilp_batch_init(struct qt_ilp_batch *b, const struct qt_ilp_opts *opts,
                       struct qt_ilp_point *point, char *scratch, size_t scratch_cap,
                       qt_ilp_point_fn on_point, qt_ilp_error_fn on_error, void *ctx);

/*
 * Parse the complete lines in buf[0 .. len), yielding each good point to
 * on_point and each bad line to on_error, then continuing with the next
 * line.  With final == false the bytes after the last '\n' are left
 * unconsumed (the caller keeps them and appends more input), except that a
 * partial line already longer than QT_LINE_MAX is reported at once and the
 * rest of it is dropped as it arrives.  With final == true the last line
 * needs no newline.  *consumed is set to the bytes used.  Returns 0, or the
 * first non-zero callback result; when on_point fails the failing line is
 * not consumed, so the caller may retry from *consumed.
 */
int qt_ilp_batch_feed(struct qt_ilp_batch *b, const uint8_t *buf, size_t len, bool final,
                      size_t *consumed);

#endif
