/*
 * http.h -- the HTTP API (libmicrohttpd, one thread per connection).
 *
 *   POST /write?db=&precision=   InfluxDB 1.x line protocol, gzip allowed:
 *                                204 once durable; 400 with the bad lines
 *                                (good lines of the body are stored); 413
 *                                over body-max; 503 when storage is
 *                                read-only.
 *   GET|POST /query?q=&format=   json (default) | csv | table; errors as
 *                                JSON {"error","position"} with 400.
 *   GET /ping                    204
 *   GET /health                  200 JSON, 503 when read-only
 *   GET /metrics                 Prometheus text exposition
 *   GET /api/v1/shards, POST /api/v1/compact|backup|verify,
 *   GET|POST /api/v1/rollup, GET /api/v1/retention,
 *   GET /api/v1/export           DBA operations on the live database
 *                                (server/http_ops.h)
 *
 * Status codes and bodies are specified in design/server.md "HTTP API".
 * A thread per connection means a blocking durable write or a long query
 * stalls only its own client; http-max-connections bounds the threads and
 * http-max-per-ip what one client address can hold.
 */
#ifndef QT_HTTP_H
#define QT_HTTP_H

#include "server/metrics.h"
#include "server/srvconf.h"
#include "storage/db.h"

struct qt_http;

struct qt_http_opts {
    const struct qt_srv_config *cfg; /* borrowed */
    struct qt_db *db;                /* borrowed */
    struct qt_srv_metrics *metrics;  /* borrowed */
    struct qt_srv_info info;
    int listen_fd; /* listening socket; owned from here on */
};

/* Start serving on o->listen_fd.  0, or QT_EINVAL when libmicrohttpd
 * refuses to start (reason logged); the fd is closed either way on
 * failure. */
int qt_http_start(const struct qt_http_opts *o, struct qt_http **out);

/* Stop accepting connections (requests in progress continue). */
void qt_http_quiesce(struct qt_http *h);

/* Stop: close connections, wait for their threads, free.  NULL is fine. */
void qt_http_stop(struct qt_http *h);

/* True when this build has the query executor (query/exec.h). */
bool qt_http_have_executor(void);

#endif
