/*
 * metrics.c -- counters, histograms and the Prometheus exposition
 * (metrics.h).
 *
 * Histogram buckets are stored non-cumulative (one atomic add per
 * observation) and summed at render time into Prometheus' cumulative
 * `le` buckets, so `_bucket{le="+Inf"}` always equals `_count` in one
 * scrape.
 */
#include "server/metrics.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

/* Bucket upper bounds in ns (QT_HIST_BUCKETS - 1 of them, then +Inf). */
static const uint64_t hist_bounds_ns[QT_HIST_BUCKETS - 1] = {
    50000,     100000,     250000,     500000,     1000000,     2500000,
    5000000,   10000000,   25000000,   50000000,   100000000,   250000000,
    500000000, 1000000000, 2500000000, 5000000000, 10000000000, 30000000000};

static_assert(sizeof(hist_bounds_ns) / sizeof(hist_bounds_ns[0]) == QT_HIST_BUCKETS - 1,
              "one bound per finite bucket");

uint64_t
qt_hist_bound_ns(uint32_t i)
{
    qt_assert(i < QT_HIST_BUCKETS);
    return i + 1 < QT_HIST_BUCKETS ? hist_bounds_ns[i] : UINT64_MAX;
}

void
qt_hist_observe(struct qt_hist *h, uint64_t ns)
{
    qt_assert(h != NULL);
    uint32_t i = 0;
    while (i + 1 < QT_HIST_BUCKETS && ns > hist_bounds_ns[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void
qt_srv_metrics_init(struct qt_srv_metrics *m)
{
    qt_assert(m != NULL);
    memset(m, 0, sizeof(*m));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
qt_srv_metrics_wal_sync(void *arg, uint64_t ns)
{
    struct qt_srv_metrics *m = arg;
    qt_hist_observe(&m->wal_sync, ns);
}

void
qt_srv_metrics_status(struct qt_srv_metrics *m, unsigned status)
{
    unsigned cls = status / 100;
    atomic_fetch_add_explicit(&m->http_status[cls >= 1 && cls <= 5 ? cls : 0], 1,
                              memory_order_relaxed);
}

static uint64_t
ld(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

static void
head(struct qt_sbuf *o, const char *name, const char *type, const char *help)
{
    qt_sbuf_printf(o, "# HELP qtdb_%s %s\n# TYPE qtdb_%s %s\n", name, help, name, type);
}

static void
hist_render(struct qt_sbuf *o, const char *name, const char *help, struct qt_hist *h)
{
    head(o, name, "histogram", help);
    uint64_t cum = 0;
    for (uint32_t i = 0; i < QT_HIST_BUCKETS; i++) {
        cum += ld(&h->bucket[i]);
        if (i + 1 < QT_HIST_BUCKETS)
            qt_sbuf_printf(o, "qtdb_%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
                           (double)hist_bounds_ns[i] / 1e9, cum);
        else
            qt_sbuf_printf(o, "qtdb_%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
    }
    qt_sbuf_printf(o, "qtdb_%s_sum %.9f\nqtdb_%s_count %" PRIu64 "\n", name,
                   (double)ld(&h->sum_ns) / 1e9, name, cum);
}

static const char *const proto_names[QT_PROTO_COUNT] = {"ilp", "graphite",
                                                        "http"}; /* ORDER PROTOS */
static const char *const close_names[QT_CLOSE_COUNT] = {"peer", "reset",   "idle",
                                                        "slow", "storage", "shutdown"};
static const char *const ep_names[QT_EP_COUNT] = {"write",   "query", "ping", "health",
                                                  "metrics", "ops",   "other"};

static void
per_proto(struct qt_sbuf *o, const char *name, const char *help, _Atomic uint64_t *v)
{
    head(o, name, "counter", help);
    for (uint32_t p = 0; p < QT_PROTO_COUNT; p++)
        qt_sbuf_printf(o, "qtdb_%s{protocol=\"%s\"} %" PRIu64 "\n", name, proto_names[p],
                       ld(&v[p]));
}

static void
render_ingest(struct qt_srv_metrics *m, struct qt_sbuf *o)
{
    per_proto(o, "ingest_lines_total", "Lines stored.", m->lines);
    per_proto(o, "ingest_points_total", "Points (fields) stored.", m->points);
    per_proto(o, "ingest_bad_lines_total", "Lines dropped: malformed or over a limit.",
              m->bad_lines);
    per_proto(o, "ingest_rejected_lines_total",
              "Lines refused by storage (type conflict, series limit).", m->rejected_lines);
    per_proto(o, "ingest_bytes_total", "Bytes received for ingest.", m->bytes);
    head(o, "ingest_storage_writes_total", "counter", "Batches handed to the engine.");
    qt_sbuf_printf(o, "qtdb_ingest_storage_writes_total %" PRIu64 "\n", ld(&m->storage_writes));
    head(o, "tcp_connections_accepted_total", "counter", "TCP ingest connections accepted.");
    head(o, "tcp_connections_open", "gauge", "TCP ingest connections open.");
    for (uint32_t p = 0; p < 2; p++) {
        qt_sbuf_printf(o, "qtdb_tcp_connections_accepted_total{protocol=\"%s\"} %" PRIu64 "\n",
                       proto_names[p], ld(&m->conns_accepted[p]));
        qt_sbuf_printf(o, "qtdb_tcp_connections_open{protocol=\"%s\"} %" PRId64 "\n",
                       proto_names[p], atomic_load(&m->conns_open[p]));
    }
    head(o, "tcp_connections_refused_total", "counter",
         "TCP connections closed at accept: over max-connections.");
    qt_sbuf_printf(o, "qtdb_tcp_connections_refused_total %" PRIu64 "\n", ld(&m->conns_refused));
    head(o, "tcp_connections_closed_total", "counter", "TCP ingest connections closed, by reason.");
    for (uint32_t i = 0; i < QT_CLOSE_COUNT; i++)
        qt_sbuf_printf(o, "qtdb_tcp_connections_closed_total{reason=\"%s\"} %" PRIu64 "\n",
                       close_names[i], ld(&m->conns_closed[i]));
}

static void
render_http(struct qt_srv_metrics *m, struct qt_sbuf *o)
{
    head(o, "http_requests_total", "counter", "HTTP requests by endpoint.");
    for (uint32_t i = 0; i < QT_EP_COUNT; i++)
        qt_sbuf_printf(o, "qtdb_http_requests_total{endpoint=\"%s\"} %" PRIu64 "\n", ep_names[i],
                       ld(&m->http_requests[i]));
    head(o, "http_responses_total", "counter", "HTTP responses by status class.");
    for (uint32_t i = 1; i <= 5; i++)
        qt_sbuf_printf(o, "qtdb_http_responses_total{code=\"%uxx\"} %" PRIu64 "\n", i,
                       ld(&m->http_status[i]));
    head(o, "queries_total", "counter", "Queries run.");
    qt_sbuf_printf(o, "qtdb_queries_total %" PRIu64 "\n", ld(&m->queries));
    head(o, "query_errors_total", "counter", "Queries that failed (syntax, limits, storage).");
    qt_sbuf_printf(o, "qtdb_query_errors_total %" PRIu64 "\n", ld(&m->query_errors));
    hist_render(o, "query_duration_seconds", "Query latency, request to last byte produced.",
                &m->query_latency);
    hist_render(o, "http_write_duration_seconds", "HTTP /write latency until durable.",
                &m->write_latency);
    hist_render(o, "wal_fsync_duration_seconds", "WAL fdatasync latency.", &m->wal_sync);
}

/* Shards: up to this many are listed per scrape (newest kept). */
#define METRICS_SHARDS_MAX 4096u

static void
render_shards(struct qt_db *db, struct qt_sbuf *o)
{
    head(o, "shard_disk_bytes", "gauge", "Bytes of live segments per shard (time partition).");
    head(o, "shard_segments", "gauge", "Live segments per shard.");
    uint32_t n = qt_db_shard_totals(db, NULL, 0);
    if (n == 0)
        return;
    uint32_t cap = n + 16u; /* a flush may add shards between the calls */
    struct qt_db_shard_info *sh = qt_malloc(sizeof(*sh) * cap);
    if (sh == NULL)
        return;
    n = qt_db_shard_totals(db, sh, cap);
    if (n > cap)
        n = cap;
    uint32_t first = n > METRICS_SHARDS_MAX ? n - METRICS_SHARDS_MAX : 0;
    for (uint32_t i = first; i < n; i++) {
        time_t t = (time_t)(sh[i].start_ns / 1000000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        char lbl[32];
        strftime(lbl, sizeof(lbl), "%Y-%m-%dT%H:%M:%SZ", &tm);
        qt_sbuf_printf(o, "qtdb_shard_disk_bytes{shard=\"%s\"} %" PRIu64 "\n", lbl, sh[i].bytes);
        qt_sbuf_printf(o, "qtdb_shard_segments{shard=\"%s\"} %u\n", lbl, sh[i].segments);
    }
    qt_free(sh);
}

static void
gauge(struct qt_sbuf *o, const char *name, const char *type, const char *help, uint64_t v)
{
    head(o, name, type, help);
    qt_sbuf_printf(o, "qtdb_%s %" PRIu64 "\n", name, v);
}

static void
render_engine(struct qt_db *db, struct qt_sbuf *o)
{
    struct qt_db_stats s;
    qt_db_stats(db, &s);
    struct qt_db_health h;
    qt_db_health(db, &h);
    gauge(o, "series", "gauge", "Series in the catalog.", s.series);
    gauge(o, "engine_points_written_total", "counter", "Points stored by the engine.",
          s.points_written);
    gauge(o, "flushes_total", "counter", "Memtable flushes to segments.", s.flushes);
    gauge(o, "flush_points_total", "counter", "Points written by flushes.", s.flush_points);
    qt_sbuf_printf(o,
                   "# HELP qtdb_flush_seconds_total Time spent flushing.\n"
                   "# TYPE qtdb_flush_seconds_total counter\nqtdb_flush_seconds_total %.6f\n",
                   (double)s.flush_ns / 1e9);
    gauge(o, "memtable_bytes", "gauge", "Bytes held in memtables.", s.mem_bytes);
    gauge(o, "memtable_points", "gauge", "Points held in memtables.", s.mem_points);
    gauge(o, "segments", "gauge", "Live segments.", s.segments);
    gauge(o, "disk_bytes", "gauge", "Bytes of live segments.", s.segment_bytes);
    gauge(o, "wal_bytes_total", "counter", "Bytes appended to the WAL.", s.wal.bytes);
    gauge(o, "wal_syncs_total", "counter", "WAL fdatasyncs.", s.wal.syncs);
    gauge(o, "wal_group_commits_total", "counter", "WAL group commits.", s.wal.groups);
    gauge(o, "read_only", "gauge", "1 when storage is read-only after a fault.", h.read_only);
    gauge(o, "damaged_segments", "gauge", "Segments that failed validation at open.",
          h.damaged_segments);
    render_shards(db, o);
}

void
qt_srv_metrics_render(struct qt_srv_metrics *m, struct qt_db *db, const struct qt_srv_info *info,
                      struct qt_sbuf *out)
{
    qt_assert(m != NULL && db != NULL && info != NULL && out != NULL);
    struct qt_db_health h;
    qt_db_health(db, &h);
    head(out, "build_info", "gauge", "Version and I/O backends.");
    qt_sbuf_printf(out, "qtdb_build_info{version=\"%s\",io=\"%s\",net=\"%s\",fsync=\"%s\"} 1\n",
                   info->version, h.io_backend, info->net_backend, h.fsync_policy);
    head(out, "start_time_seconds", "gauge", "Start time, seconds since the epoch.");
    qt_sbuf_printf(out, "qtdb_start_time_seconds %.3f\n", (double)m->start_ns / 1e9);
    gauge(out, "ingest_threads", "gauge", "Ingest event-loop threads.", info->loops);
    render_ingest(m, out);
    render_http(m, out);
    render_engine(db, out);
}
