/*
 * metrics.h -- server counters and latency histograms, rendered as
 * Prometheus text exposition (format 0.0.4) for GET /metrics.
 *
 * Every counter is a relaxed atomic: writers on any thread add without a
 * lock, and a scrape reads a slightly torn but monotone view.  Histograms
 * have fixed bucket bounds (QT_HIST_BOUNDS_NS) from 50 us to 30 s, which
 * cover a page-cache fdatasync up to a stalled disk and a cached query up
 * to the query deadline.
 *
 * Metric names (all prefixed qtdb_) are listed in design/server.md
 * "Metrics"; renaming one breaks dashboards, so they are part of the API.
 */
#ifndef QT_METRICS_H
#define QT_METRICS_H

#include "server/sbuf.h"
#include "storage/db.h"

#include <stdatomic.h>
#include <stdint.h>

#define QT_HIST_BUCKETS 19u /* bounds below plus +Inf */

struct qt_hist {
    _Atomic uint64_t bucket[QT_HIST_BUCKETS]; /* not cumulative */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
};

void qt_hist_observe(struct qt_hist *h, uint64_t ns);
/* Upper bound of bucket i in ns; UINT64_MAX for the last (+Inf). */
uint64_t qt_hist_bound_ns(uint32_t i);

/* Ingest protocols as metric labels.  ORDER PROTOS */
enum qt_proto { QT_PROTO_ILP = 0, QT_PROTO_GRAPHITE = 1, QT_PROTO_HTTP = 2, QT_PROTO_COUNT = 3 };

/* Why a TCP connection was closed by the server. */
enum qt_close_why {
    QT_CLOSE_PEER = 0,    /* peer closed (FIN) */
    QT_CLOSE_RESET = 1,   /* reset or receive error */
    QT_CLOSE_IDLE = 2,    /* idle timeout */
    QT_CLOSE_SLOW = 3,    /* slow-client timeout */
    QT_CLOSE_STORAGE = 4, /* storage read-only or failed */
    QT_CLOSE_SHUTDOWN = 5,
    QT_CLOSE_COUNT = 6
};

enum qt_http_ep {
    QT_EP_WRITE = 0,
    QT_EP_QUERY = 1,
    QT_EP_PING = 2,
    QT_EP_HEALTH = 3,
    QT_EP_METRICS = 4,
    QT_EP_OPS = 5, /* /api/v1/{shards,compact,backup,verify,rollup,retention,export} */
    QT_EP_OTHER = 6,
    QT_EP_COUNT = 7
};

struct qt_srv_metrics {
    int64_t start_ns; /* CLOCK_REALTIME at start */
    /* ingest, per protocol */
    _Atomic uint64_t lines[QT_PROTO_COUNT];          /* stored */
    _Atomic uint64_t points[QT_PROTO_COUNT];         /* fields stored */
    _Atomic uint64_t bad_lines[QT_PROTO_COUNT];      /* parse or limit errors */
    _Atomic uint64_t rejected_lines[QT_PROTO_COUNT]; /* refused by storage */
    _Atomic uint64_t bytes[QT_PROTO_COUNT];          /* received */
    /* TCP connections, per protocol (ILP, Graphite) */
    _Atomic uint64_t conns_accepted[2];
    _Atomic int64_t conns_open[2];
    _Atomic uint64_t conns_refused; /* over max-connections */
    _Atomic uint64_t conns_closed[QT_CLOSE_COUNT];
    _Atomic uint64_t storage_writes; /* qt_db_write calls from ingest */
    /* HTTP */
    _Atomic uint64_t http_requests[QT_EP_COUNT];
    _Atomic uint64_t http_status[6]; /* by class: 1xx..5xx; [0] other */
    _Atomic uint64_t queries, query_errors;
    struct qt_hist query_latency;
    struct qt_hist write_latency; /* HTTP /write, request to reply */
    struct qt_hist wal_sync;      /* every WAL fdatasync (engine observer) */
};

void qt_srv_metrics_init(struct qt_srv_metrics *m);

/* The engine's WAL sync observer (storage/db.h): arg is the metrics. */
void qt_srv_metrics_wal_sync(void *arg, uint64_t ns);

/* Count an HTTP response status. */
void qt_srv_metrics_status(struct qt_srv_metrics *m, unsigned status);

/* Static details the exposition includes as qtdb_build_info labels. */
struct qt_srv_info {
    const char *version;
    const char *net_backend; /* "uring" or "epoll" */
    uint32_t loops;
};

/* Append the whole exposition to out (counters, histograms, and the
 * engine's state from qt_db_stats / qt_db_shards / qt_db_health). */
void qt_srv_metrics_render(struct qt_srv_metrics *m, struct qt_db *db,
                           const struct qt_srv_info *info, struct qt_sbuf *out);

#endif
