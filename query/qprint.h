/*
 * qprint.h -- queries and query errors rendered as text.
 *
 * qt_qry_print() writes a parsed query in normal form (qparse.h): the text
 * parses back to an equal query and prints identically, which the fuzz
 * oracle checks (parse -> print -> parse -> print is a fixed point).
 * Relative times stay relative (now-6h), so the text means the same at
 * any later `now`.
 *
 * All functions follow snprintf: they write at most cap bytes including a
 * terminating NUL (nothing if cap == 0) and return the full length the
 * text needs, so a caller can size a buffer with a first call.  Pure,
 * thread-safe, no allocation.
 */
#ifndef QT_QPRINT_H
#define QT_QPRINT_H

#include "qparse.h"

#include <stddef.h>

/* The canonical text of q. */
size_t qt_qry_print(const struct qt_qry *q, char *buf, size_t cap);

/*
 * For people: "error: <message>", then, when the error has a position,
 * the line of text[0..len) holding it indented by two spaces and a caret
 * under the fault:
 *
 *   error: expected ']' or ')'
 *     air.pm25 [now-1h, now
 *                          ^
 *
 * Multi-line queries add " (line N)" to the first line; lines longer than
 * about 100 columns are cut around the fault with "...".  Tabs show as one
 * space, wide (CJK) characters count two columns, bytes that are not
 * printable UTF-8 show as '?'.  No trailing newline.  text may be any
 * bytes (the text the error came from).
 */
size_t qt_qry_error_render_caret(const struct qt_qry_error *err, const char *text, size_t len,
                                 char *buf, size_t cap);

/* For programs: {"error": "<message>", "position": N}, with "position":
 * null when the error has no place.  Valid JSON, ASCII only. */
size_t qt_qry_error_json(const struct qt_qry_error *err, char *buf, size_t cap);

/* Result column name of an aggregation: "avg", "percentile(99.9)". */
size_t qt_qry_agg_column(const struct qt_qry_agg *a, char *buf, size_t cap);

/* Shortest decimal text that reads back as exactly v (finite): "150",
 * "0.1", "1e+300", "-0".  The query lexer accepts it as a number. */
size_t qt_qry_number_format(double v, char *buf, size_t cap);

#endif
