/*
 * exec.h -- run a query over the storage engine and stream its result.
 *
 *   qt_qry_run(db, "air.pm25 [now-1d, now) | avg by 1h, district", ...)
 *
 * parses the text (qparse.h), selects the series from the catalog, scans
 * each series once (storage/scan.h), answers aggregates from block
 * statistics where a block lies inside one time bucket, and writes the
 * rows through the caller's sink in one of three encodings.  Execution
 * model, result columns of every query form, encodings and limits:
 * design/exec.md.
 *
 * Memory is bounded by the number of output groups (groups x buckets),
 * never by the number of points: raw points stream from the scan to the
 * sink.  Per-query limits (rows, series, memory, deadline) fail the query
 * with a message; they never stop the process.
 *
 * Threads: qt_qry_run may be called from any number of threads at once on
 * the same database (each call is independent and single-threaded).
 */
#ifndef QT_EXEC_H
#define QT_EXEC_H

#include "query/qparse.h"
#include "storage/db.h"

#include <stddef.h>
#include <stdint.h>

enum qt_out_format { QT_OUT_TABLE = 0, QT_OUT_CSV = 1, QT_OUT_JSON = 2 };

/* Per-query limits; 0 = the default from format/qt_limits.h
 * (QT_QRY_*_DEFAULT). */
struct qt_qry_limits {
    uint64_t rows_max;      /* output rows */
    uint32_t series_max;    /* series touched */
    uint64_t mem_bytes_max; /* executor memory (groups, buffers) */
    uint32_t deadline_ms;   /* wall-clock budget */
};

/* What a query did (filled on success and on execution errors). */
struct qt_qry_stats {
    uint64_t series;         /* series selected */
    uint64_t points;         /* points read: stats_points + decoded_points */
    uint64_t stats_points;   /* answered from block statistics, not decoded */
    uint64_t decoded_points; /* decoded from blocks or read from memtables */
    uint64_t rows;           /* rows written */
    uint64_t elapsed_ns;
    uint64_t rollup_buckets; /* rollup rows read (their points count in stats_points) */
    /* Where the data came from: "raw", "rollup:<interval>" (every part of
     * the range from rollups) or "rollup:<interval>+raw" (query/rplan.h). */
    char source[32];
};

/* Output sink: write buf[0..len); a non-zero return aborts the query
 * (client gone).  Called from the thread running the query. */
typedef int (*qt_out_fn)(void *arg, const char *buf, size_t len);

/*
 * Parse and run text[0..len) with relative times resolved against now_ns;
 * stream the result in `fmt` to out(arg, ...).  lim and st may be NULL.
 *
 * Returns 0, or an error code with *err filled (err may be NULL):
 *   - parse errors as qt_qry_parse (QT_ESYNTAX, QT_ELIMIT, ...) with the
 *     byte position of the fault;
 *   - execution errors with position -1: QT_ELIMIT (rows, series, memory,
 *     a regex match limit), QT_ETIMEOUT (deadline), QT_EINVAL (a function
 *     the series' value type does not support), QT_ECLOSED (the sink
 *     returned non-zero), storage errors (a damaged block, I/O).
 * Output already streamed before an execution error is the caller's to
 * discard (render the error with qt_qry_error_emit).
 */
int qt_qry_run(struct qt_db *db, const char *text, size_t len, int64_t now_ns,
               const struct qt_qry_limits *lim, enum qt_out_format fmt, qt_out_fn out, void *arg,
               struct qt_qry_stats *st, struct qt_qry_error *err);

/* As qt_qry_run with an already parsed query (owned by the caller, not
 * modified; may be shared between threads). */
int qt_qry_exec(struct qt_db *db, const struct qt_qry *q, const struct qt_qry_limits *lim,
                enum qt_out_format fmt, qt_out_fn out, void *arg, struct qt_qry_stats *st,
                struct qt_qry_error *err);

/*
 * Render an error for the client in `fmt` and write it to out: JSON
 * {"error": "...", "position": N|null}\n (qprint.h qt_qry_error_json);
 * table and CSV: the caret rendering for people (qt_qry_error_render_caret
 * over text[0..len), which may be NULL when there is none) and a newline.
 * Returns 0 or the sink's non-zero return.
 */
int qt_qry_error_emit(const struct qt_qry_error *err, const char *text, size_t len,
                      enum qt_out_format fmt, qt_out_fn out, void *arg);

#endif
