/*
 * http_ops.h -- the DBA operations of the HTTP API (DESIGN.md section 15,
 * "Operations over HTTP"):
 *
 *   GET  /api/v1/shards                      JSON array, one object per shard
 *   POST /api/v1/compact?shard=ID|all=true[&force=true]
 *   POST /api/v1/backup?to=DIR[&incremental=true][&copy=true]
 *   POST /api/v1/verify[?quarantine=true]    200 with "damaged": true|false
 *   GET  /api/v1/export?q=SEL[&from=T][&to=T][&format=lp|csv]   streamed
 *   POST /api/v1/rollup                      qt_db_rollup under the server's
 *                                            rules (409 when it has none)
 *   GET  /api/v1/rollup                      the configured rules
 *   GET  /api/v1/retention                   the configured retention rules
 *
 * Each operation runs synchronously in the request's thread (libmicrohttpd
 * thread-per-connection), so a long compaction or backup holds only its own
 * connection.  Errors are {"error": "..."} with 400 (bad parameter), 404
 * (no such shard), 409 (busy, or damaged data in the way), 503 (read-only
 * database) or 500.  The cancel flag given to the calls (the server's stop
 * flag) interrupts an operation at its next step when the server shuts down.
 */
#ifndef QT_HTTP_OPS_H
#define QT_HTTP_OPS_H

#include "server/sbuf.h"
#include "storage/db.h"

#include <stdatomic.h>

struct qt_srv_config; /* server/srvconf.h */

/* Looks up a query-string argument of the request (NULL if absent). */
typedef const char *(*qt_http_arg_fn)(void *ctx, const char *key);

/* What a JSON endpoint answers: status and body (b is initialised by the
 * call and owned by the caller afterwards). */
struct qt_http_reply {
    unsigned status;
    struct qt_sbuf b;
};

/* path is the URL path after "/api/v1/" ("shards", "compact", "backup",
 * "verify", "rollup", "retention"); post: the request is a POST (only
 * "rollup" has both a GET and a POST form); cfg: the server's settings
 * (its rollup and retention rules as configured, NULL = none; the
 * database holds the same rules).  True when path names one of these
 * (then *out is filled). */
bool qt_http_ops_run(struct qt_db *db, const atomic_int *stop, const char *path, bool post,
                     const struct qt_srv_config *cfg, qt_http_arg_fn arg, void *ctx,
                     struct qt_http_reply *out);

/* A running export: a thread writes the selection into a pipe whose read
 * end the HTTP response streams from. */
struct qt_http_export;

/*
 * Check the export's arguments and start it.  0 with *x (stop it with
 * qt_http_export_stop) and *read_fd (the caller owns it); or an HTTP status
 * (400, 500) with a reason in err.  A failure after the output started is
 * appended to the stream as a last line "# qtdb export failed: REASON".
 */
unsigned qt_http_export_start(struct qt_db *db, qt_http_arg_fn arg, void *ctx,
                              struct qt_http_export **x, int *read_fd, char *err, size_t cap);

/* Cancel (if still running), wait for the thread and free.  NULL is fine. */
void qt_http_export_stop(struct qt_http_export *x);

#endif
