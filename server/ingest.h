/*
 * ingest.h -- from bytes on a socket or in an HTTP body to storage batches.
 *
 * Two pieces, used by the TCP event loops and by HTTP /write alike:
 *
 *   struct qt_ingest_batch   a builder of struct qt_batch_line arrays.  It
 *       copies each parsed point's canonical group key, field names and
 *       string values into its own arena, so the lines stay valid after the
 *       input buffer is reused, and points from many connections can share
 *       one qt_db_write call.  Each line carries a 64-bit `origin` tag (the
 *       connection, or the line number of an HTTP body) so storage rejects
 *       can be reported against their source.
 *
 *   struct qt_ingest_stream  one byte stream (a TCP connection or one HTTP
 *       body): the ILP/Graphite batch splitter (server/ilp.h) plus a
 *       carry-over buffer for the partial line at the end of each chunk.
 *       The carry buffer is allocated on demand and never exceeds
 *       QT_ILP_BATCH_BUF_MIN bytes: a connection's memory is bounded by the
 *       line limit however the peer splits its bytes.  A line longer than
 *       the stream's line_max is rejected as a bad line (QT_ELIMIT), like a
 *       malformed one; the rest of the stream continues.
 *
 * Neither piece is thread-safe; each belongs to one thread at a time.
 */
#ifndef QT_INGEST_H
#define QT_INGEST_H

#include "format/batch.h"
#include "server/graphite.h"
#include "server/ilp.h"
#include "storage/db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* qt_ingest_batch_add(): the point does not fit; commit, then add again. */
#define QT_INGEST_FULL 1

struct qt_ingest_batch {
    struct qt_batch_line *lines;
    uint64_t *origin; /* per line */
    uint32_t n, cap;
    struct qt_batch_field *fields;
    uint32_t nf, fcap;
    char *arena;
    size_t used, arena_cap;
    uint64_t points; /* fields in lines[0..n) */
};

/* Allocate a builder for up to lines_cap lines (1..QT_SRV_BATCH_LINES_CEIL)
 * and arena_bytes of copied text (raised to what one maximal line needs).
 * 0 or QT_ENOMEM. */
int qt_ingest_batch_init(struct qt_ingest_batch *b, uint32_t lines_cap, size_t arena_bytes);
/* Free the builder's memory (b may be zeroed or already deinit'ed). */
void qt_ingest_batch_deinit(struct qt_ingest_batch *b);
/* Forget every line (keeps the memory). */
void qt_ingest_batch_reset(struct qt_ingest_batch *b);

/*
 * Append pt (a successful qt_ilp_parse_line / qt_graphite_parse_line
 * result) as one line tagged `origin`.  Returns 0, QT_INGEST_FULL when it
 * does not fit (nothing was added; an empty builder always has room), or
 * QT_ELIMIT if the point cannot be a batch line at all (the reason in
 * qt_err_detail()).  Reads pt only; keeps no pointer into it.
 */
int qt_ingest_batch_add(struct qt_ingest_batch *b, const struct qt_ilp_point *pt, uint64_t origin);

/* Storage rejected `line`, tagged origin: code and reason (line and reason
 * valid during the call only). */
typedef void (*qt_ingest_reject_fn)(void *arg, uint64_t origin, const struct qt_batch_line *line,
                                    int code, const char *reason);

/*
 * qt_db_write() every line, then reset the builder.  Rejected lines go to
 * reject (may be NULL).  Returns qt_db_write()'s result: 0 when the accepted
 * lines are durable under the fsync policy.  *res may be NULL.
 */
int qt_ingest_batch_commit(struct qt_ingest_batch *b, struct qt_db *db, qt_ingest_reject_fn reject,
                           void *arg, struct qt_write_result *res);

/* ---- streams ----------------------------------------------------------- */

enum qt_ingest_proto { QT_INGEST_ILP = 0, QT_INGEST_GRAPHITE = 1 };

/* The stream's batch is full: commit it (and reset it); return 0 to go on,
 * anything else to stop the feed with that result. */
typedef int (*qt_ingest_full_fn)(void *arg, struct qt_ingest_batch *b);

struct qt_ingest_stream_opts {
    enum qt_ingest_proto proto;
    enum qt_ilp_precision precision;       /* ILP only */
    const struct qt_graphite_config *gcfg; /* Graphite only; may be NULL */
    uint32_t line_max;                     /* 1..QT_LINE_MAX */
    /* true: tag each line with its line number in the stream (HTTP);
     * false: tag every line with `origin` (a connection id). */
    bool origin_is_line;
    uint64_t origin;
    qt_ilp_error_fn on_error; /* bad line (syntax, limit); may be NULL */
    void *err_arg;
    qt_ingest_full_fn on_full;
    void *full_arg;
};

struct qt_ingest_stream {
    struct qt_ilp_batch split;
    struct qt_ingest_stream_opts o;
    uint8_t *carry;
    uint32_t carry_len, carry_cap;
    struct qt_ingest_batch *dst; /* during a feed */
    uint64_t bytes;              /* fed so far */
};

/*
 * Prepare s.  point and scratch (>= QT_ILP_SCRATCH_MAX bytes) are working
 * memory borrowed during each feed only, so one pair may serve every stream
 * of a thread.  No allocation happens here.
 */
void qt_ingest_stream_init(struct qt_ingest_stream *s, const struct qt_ingest_stream_opts *o,
                           struct qt_ilp_point *point, char *scratch, size_t scratch_cap);

/* Free the carry buffer (a partial line is dropped). */
void qt_ingest_stream_deinit(struct qt_ingest_stream *s);

/*
 * Parse data[0..len) into b: complete lines become batch lines (committing
 * through on_full when b fills), bad lines go to on_error, the trailing
 * partial line is kept for the next call.  final: the stream ends here (the
 * last line needs no newline).  now_ns stamps lines without a timestamp.
 * Returns 0, QT_ENOMEM (no carry memory: the partial line is dropped and
 * reported as a bad line), or the first non-zero on_full result.
 */
int qt_ingest_stream_feed(struct qt_ingest_stream *s, struct qt_ingest_batch *b,
                          const uint8_t *data, size_t len, bool final, int64_t now_ns);

/* Bytes of an unfinished line held in the carry buffer. */
static inline uint32_t
qt_ingest_stream_pending(const struct qt_ingest_stream *s)
{
    return s->carry_len;
}

#endif
