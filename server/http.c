/*
 * http.c -- the HTTP API on libmicrohttpd (http.h).
 *
 * Request life: MHD calls on_request() once with the headers (*state is
 * NULL: route, check parameters and Content-Length, allocate the request
 * state), then once per body chunk, then once more with no data, when the
 * response is queued.  on_completed() frees the state whatever happened.
 * A response may be queued on the first call (bad parameters, 413 by
 * Content-Length): MHD then discards the body and closes the connection.
 *
 * /write streams: each body chunk (after gunzip) goes through an ingest
 * stream into a batch that is committed whenever it fills, so a request
 * needs a fixed ~2 MiB whatever the body size, and the engine's
 * backpressure blocks this connection's thread only.  Consequence: when a
 * chunked body (no Content-Length) or a gzip body's decompressed size
 * passes body-max mid-way, the lines before that point are already stored;
 * the 413 body says how many.  A body that declares a Content-Length over
 * body-max is refused before anything is read.
 */
#include "server/http.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "server/http_ops.h"
#include "server/ingest.h"
#include "server/sbuf.h"

#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#if defined(__has_include)
#if __has_include("query/exec.h")
#include "query/exec.h"
#include "query/qprint.h"
#define HTTP_HAVE_EXEC 1
#endif
#endif

/* gunzip output per inflate() call. */
#define HTTP_ZOUT_BYTES (64u << 10)
/* Arena of a /write request's batch (lines come from cfg->batch_lines). */
#define HTTP_BATCH_ARENA (1u << 20)
/* Per-connection MHD memory pool: request line (a GET /query URL carries up
 * to QT_SRV_QUERY_TEXT_MAX of query, percent-encoded) and headers. */
#define HTTP_CONN_MEMORY ((size_t)4 * QT_SRV_QUERY_TEXT_MAX)

struct qt_http {
    struct MHD_Daemon *d;
    struct qt_http_opts o;
    int listen_fd;
    int64_t start_mono_ns;
    struct qt_log_limit lim_log;
    atomic_int stopping; /* set by qt_http_stop: cancels running operations */
};

/* One bad line of a /write body, for the 400 response. */
struct bad_line {
    uint64_t line_no;
    uint32_t column; /* 0: storage refused the line */
    char reason[172];
};

struct wr {
    struct qt_http *h;
    struct qt_ingest_stream st;
    struct qt_ingest_batch batch;
    struct qt_ilp_point point;
    char scratch[QT_ILP_SCRATCH_MAX];
    bool gzip, z_ok, z_end;
    z_stream z;
    uint8_t zout[HTTP_ZOUT_BYTES];
    uint64_t raw_bytes, body_bytes, discarded;
    uint64_t lines_ok, points_ok, bad_total, lines_seen;
    uint32_t bad_listed;
    struct bad_line *bad; /* the first QT_SRV_BAD_LINES_LISTED, any order */
    int storage_rc;
};

struct req {
    enum qt_http_ep ep;
    int64_t t0_ns;
    unsigned status; /* decided failure (write: 413, 400), 0 while fine */
    char err[256];   /* message for that failure */
    struct wr *w;
    struct qt_sbuf body;           /* /query POST body */
    const char *op;                /* /api/v1/<op> */
    bool post;                     /* the method is POST */
    struct qt_http_export *export; /* a running /api/v1/export */
};

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool
qt_http_have_executor(void)
{
#ifdef HTTP_HAVE_EXEC
    return true;
#else
    return false;
#endif
}

/* ---- responses ------------------------------------------------------------------ */

/* Queue status with body[0..len) (taken: qt_malloc'd, or NULL) and the
 * extra headers hdrs[0..2*nh) (name, value pairs). */
static enum MHD_Result
respond_hdrs(struct qt_http *h, struct MHD_Connection *conn, unsigned status, const char *ctype,
             char *body, size_t len, const char *const *hdrs, size_t nh)
{
    struct MHD_Response *r =
        body != NULL ? MHD_create_response_from_buffer_with_free_callback(len, body, qt_free)
                     : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        qt_free(body);
        return MHD_NO;
    }
    if (ctype != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, "X-Qtdb-Version", h->o.info.version);
    MHD_add_response_header(r, "X-Influxdb-Version", "1.8-compatible (qtdb)");
    for (size_t i = 0; i < nh; i++)
        MHD_add_response_header(r, hdrs[2 * i], hdrs[2 * i + 1]);
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    qt_srv_metrics_status(h->o.metrics, status);
    return ok;
}

static enum MHD_Result
respond(struct qt_http *h, struct MHD_Connection *conn, unsigned status, const char *ctype,
        char *body, size_t len)
{
    return respond_hdrs(h, conn, status, ctype, body, len, NULL, 0);
}

/* As respond_sbuf with extra headers (not on the out-of-memory 500). */
static enum MHD_Result
respond_sbuf_hdrs(struct qt_http *h, struct MHD_Connection *conn, unsigned status,
                  const char *ctype, struct qt_sbuf *b, const char *const *hdrs, size_t nh)
{
    if (qt_sbuf_failed(b)) {
        qt_sbuf_deinit(b);
        static const char oom[] = "{\"error\":\"response too large or out of memory\"}\n";
        char *p = qt_strndup(oom, sizeof(oom) - 1);
        return respond(h, conn, 500, "application/json", p, p ? sizeof(oom) - 1 : 0);
    }
    size_t len;
    char *p = qt_sbuf_take(b, &len);
    return respond_hdrs(h, conn, status, ctype, p, len, hdrs, nh);
}

static enum MHD_Result
respond_sbuf(struct qt_http *h, struct MHD_Connection *conn, unsigned status, const char *ctype,
             struct qt_sbuf *b)
{
    return respond_sbuf_hdrs(h, conn, status, ctype, b, NULL, 0);
}

/* {"error": msg} with status. */
static enum MHD_Result
respond_error(struct qt_http *h, struct MHD_Connection *conn, unsigned status, const char *msg)
{
    struct qt_sbuf b;
    qt_sbuf_init(&b, 64u << 10);
    qt_sbuf_str(&b, "{\"error\":");
    qt_sbuf_json(&b, msg, strlen(msg));
    qt_sbuf_str(&b, "}\n");
    return respond_sbuf(h, conn, status, "application/json", &b);
}

/* ---- /ping /health /metrics -------------------------------------------------------- */

static enum MHD_Result
do_health(struct qt_http *h, struct MHD_Connection *conn)
{
    struct qt_db_health hl;
    qt_db_health(h->o.db, &hl);
    struct qt_sbuf b;
    qt_sbuf_init(&b, 64u << 10);
    qt_sbuf_printf(&b, "{\"status\":\"%s\",\"version\":\"%s\",\"uptime_seconds\":%.3f,",
                   hl.read_only ? "read-only" : "ok", h->o.info.version,
                   (double)(mono_ns() - h->start_mono_ns) / 1e9);
    qt_sbuf_printf(&b, "\"io\":\"%s\",\"net\":\"%s\",\"durability\":{\"fsync\":\"%s\",",
                   hl.io_backend, h->o.info.net_backend, hl.fsync_policy);
    qt_sbuf_printf(&b, "\"read_only\":%s,\"reason\":", hl.read_only ? "true" : "false");
    qt_sbuf_json(&b, hl.reason ? hl.reason : "", hl.reason ? strlen(hl.reason) : 0);
    qt_sbuf_printf(&b, ",\"damaged_segments\":%u}}\n", hl.damaged_segments);
    return respond_sbuf(h, conn, hl.read_only ? 503 : 200, "application/json", &b);
}

static enum MHD_Result
do_metrics(struct qt_http *h, struct MHD_Connection *conn)
{
    struct qt_sbuf b;
    qt_sbuf_init(&b, 16u << 20);
    qt_srv_metrics_render(h->o.metrics, h->o.db, &h->o.info, &b);
    return respond_sbuf(h, conn, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

/* ---- /write ------------------------------------------------------------------------- */

static void
wr_note_bad(struct wr *w, uint64_t line_no, uint32_t column, const char *reason)
{
    w->bad_total++;
    if (w->bad_listed >= QT_SRV_BAD_LINES_LISTED)
        return;
    if (w->bad == NULL) {
        w->bad = qt_malloc(sizeof(*w->bad) * QT_SRV_BAD_LINES_LISTED);
        if (w->bad == NULL)
            return;
    }
    struct bad_line *b = &w->bad[w->bad_listed++];
    b->line_no = line_no;
    b->column = column;
    snprintf(b->reason, sizeof(b->reason), "%s", reason);
}

static int
bad_cmp(const void *a, const void *b)
{
    const struct bad_line *x = a, *y = b;
    return x->line_no < y->line_no ? -1 : x->line_no > y->line_no;
}

/* "bad_lines":[...] sorted by line number. */
static void
wr_render_bad(struct wr *w, struct qt_sbuf *out)
{
    if (w->bad != NULL)
        qsort(w->bad, w->bad_listed, sizeof(*w->bad), bad_cmp);
    for (uint32_t i = 0; w->bad != NULL && i < w->bad_listed; i++) {
        const struct bad_line *b = &w->bad[i];
        qt_sbuf_printf(out, "%s{\"line\":%" PRIu64 ",", i ? "," : "", b->line_no);
        if (b->column > 0)
            qt_sbuf_printf(out, "\"column\":%u,", b->column);
        qt_sbuf_str(out, "\"reason\":");
        qt_sbuf_json(out, b->reason, strlen(b->reason));
        qt_sbuf_add(out, "}", 1);
    }
}

static int
wr_on_error(void *arg, const struct qt_ilp_line_error *e)
{
    struct wr *w = arg;
    atomic_fetch_add_explicit(&w->h->o.metrics->bad_lines[QT_PROTO_HTTP], 1, memory_order_relaxed);
    wr_note_bad(w, e->line_no, e->column, e->reason);
    return 0;
}

static void
wr_on_reject(void *arg, uint64_t origin, const struct qt_batch_line *line, int code,
             const char *reason)
{
    struct wr *w = arg;
    (void)line;
    (void)code;
    atomic_fetch_add_explicit(&w->h->o.metrics->rejected_lines[QT_PROTO_HTTP], 1,
                              memory_order_relaxed);
    wr_note_bad(w, origin, 0, reason);
}

static int
wr_commit(void *arg, struct qt_ingest_batch *b)
{
    struct wr *w = arg;
    qt_assert(b == &w->batch);
    if (w->storage_rc != 0) {
        qt_ingest_batch_reset(b);
        return w->storage_rc;
    }
    struct qt_write_result r;
    int rc = qt_ingest_batch_commit(b, w->h->o.db, wr_on_reject, w, &r);
    struct qt_srv_metrics *m = w->h->o.metrics;
    atomic_fetch_add_explicit(&m->storage_writes, 1, memory_order_relaxed);
    if (rc != 0) {
        w->storage_rc = rc;
        return rc;
    }
    w->lines_ok += r.lines_ok;
    w->points_ok += r.points;
    atomic_fetch_add_explicit(&m->lines[QT_PROTO_HTTP], r.lines_ok, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->points[QT_PROTO_HTTP], r.points, memory_order_relaxed);
    return 0;
}

static void
wr_free(struct wr *w)
{
    if (w == NULL)
        return;
    if (w->z_ok)
        inflateEnd(&w->z);
    qt_ingest_stream_deinit(&w->st);
    qt_ingest_batch_deinit(&w->batch);
    qt_free(w->bad);
    qt_free(w);
}

/* Set up a /write request; a non-zero status (with r->err) refuses it. */
static unsigned
wr_begin(struct qt_http *h, struct MHD_Connection *conn, struct req *r)
{
    const char *prec = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "precision");
    enum qt_ilp_precision p = QT_ILP_NS;
    if (prec != NULL && prec[0] != '\0' && qt_ilp_precision_parse(prec, strlen(prec), &p) != 0) {
        snprintf(r->err, sizeof(r->err), "invalid precision '%.32s' (ns, us, ms or s)", prec);
        return 400;
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    uint64_t len;
    if (cl != NULL && qt_srv_parse_u64(cl, 0, UINT64_MAX, &len) == 0 &&
        len > h->o.cfg->body_max_bytes) {
        snprintf(r->err, sizeof(r->err),
                 "request body of %" PRIu64 " bytes exceeds body-max (%" PRIu64 ")", len,
                 h->o.cfg->body_max_bytes);
        return 413;
    }
    const char *enc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
    bool gzip = enc != NULL && strcasecmp(enc, "gzip") == 0;
    if (enc != NULL && !gzip && strcasecmp(enc, "identity") != 0) {
        snprintf(r->err, sizeof(r->err), "unsupported Content-Encoding '%.32s' (gzip or identity)",
                 enc);
        return 415;
    }
    struct wr *w = qt_calloc(1, sizeof(*w));
    if (w == NULL ||
        qt_ingest_batch_init(&w->batch, h->o.cfg->batch_lines, HTTP_BATCH_ARENA) != 0) {
        qt_free(w);
        snprintf(r->err, sizeof(r->err), "out of memory");
        return 503;
    }
    w->h = h;
    w->gzip = gzip;
    if (gzip) {
        if (inflateInit2(&w->z, 16 + MAX_WBITS) != Z_OK) {
            wr_free(w);
            snprintf(r->err, sizeof(r->err), "out of memory (zlib)");
            return 503;
        }
        w->z_ok = true;
    }
    struct qt_ingest_stream_opts so = {.proto = QT_INGEST_ILP,
                                       .precision = p,
                                       .line_max = h->o.cfg->line_max,
                                       .origin_is_line = true,
                                       .on_error = wr_on_error,
                                       .err_arg = w,
                                       .on_full = wr_commit,
                                       .full_arg = w};
    qt_ingest_stream_init(&w->st, &so, &w->point, w->scratch, sizeof(w->scratch));
    r->w = w;
    return 0;
}

/* Decompressed (or plain) body bytes: count against body-max and parse. */
static void
wr_body(struct req *r, const uint8_t *p, size_t n)
{
    struct wr *w = r->w;
    uint64_t max = w->h->o.cfg->body_max_bytes;
    if (w->body_bytes + n > max) {
        r->status = 413;
        snprintf(r->err, sizeof(r->err),
                 "request body exceeds body-max (%" PRIu64 " bytes%s); %" PRIu64
                 " lines before that point were stored",
                 max, w->gzip ? " after gunzip" : "", w->lines_ok);
        return;
    }
    w->body_bytes += n;
    if (w->storage_rc == 0)
        qt_ingest_stream_feed(&w->st, &w->batch, p, n, false, real_ns());
}

static void
wr_gunzip(struct req *r, const uint8_t *p, size_t n)
{
    struct wr *w = r->w;
    w->z.next_in = (Bytef *)(uintptr_t)p;
    w->z.avail_in = (uInt)n;
    while (w->z.avail_in > 0 && r->status == 0 && !w->z_end) {
        w->z.next_out = w->zout;
        w->z.avail_out = sizeof(w->zout);
        int zr = inflate(&w->z, Z_NO_FLUSH);
        size_t out = sizeof(w->zout) - w->z.avail_out;
        if (out > 0)
            wr_body(r, w->zout, out);
        if (zr == Z_STREAM_END) {
            w->z_end = true;
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            r->status = 400;
            snprintf(r->err, sizeof(r->err), "gzip body is corrupt: %s",
                     w->z.msg ? w->z.msg : "inflate failed");
        }
    }
}

/* One upload chunk; false closes the connection (abuse after a refusal). */
static bool
wr_upload(struct req *r, const char *data, size_t n)
{
    struct wr *w = r->w;
    atomic_fetch_add_explicit(&w->h->o.metrics->bytes[QT_PROTO_HTTP], n, memory_order_relaxed);
    if (r->status != 0) { /* refused: read and drop the rest, within reason */
        w->discarded += n;
        return w->discarded <= w->h->o.cfg->body_max_bytes;
    }
    w->raw_bytes += n;
    if (w->raw_bytes > w->h->o.cfg->body_max_bytes) {
        w->body_bytes = w->h->o.cfg->body_max_bytes; /* force the 413 message */
        wr_body(r, (const uint8_t *)data, 1);
        return true;
    }
    if (w->gzip)
        wr_gunzip(r, (const uint8_t *)data, n);
    else
        wr_body(r, (const uint8_t *)data, n);
    return true;
}

static enum MHD_Result
wr_finish(struct qt_http *h, struct MHD_Connection *conn, struct req *r)
{
    struct wr *w = r->w;
    if (r->status == 0 && w->gzip && !w->z_end) {
        r->status = 400;
        snprintf(r->err, sizeof(r->err), "gzip body is truncated");
    }
    /* A refused or truncated body's last partial line is not a line. */
    if (r->status == 0 && w->storage_rc == 0)
        qt_ingest_stream_feed(&w->st, &w->batch, NULL, 0, true, real_ns());
    if (w->storage_rc == 0)
        wr_commit(w, &w->batch);
    qt_hist_observe(&h->o.metrics->write_latency, (uint64_t)(mono_ns() - r->t0_ns));
    if (w->storage_rc != 0) {
        struct qt_db_health hl;
        qt_db_health(h->o.db, &hl);
        char msg[256];
        snprintf(msg, sizeof(msg), "storage failed: %s%s%s", qt_strerror(w->storage_rc),
                 hl.read_only ? ": read-only: " : "", hl.read_only ? hl.reason : "");
        return respond_error(h, conn, hl.read_only ? 503 : 500, msg);
    }
    if (r->status != 0)
        return respond_error(h, conn, r->status, r->err);
    if (w->bad_total == 0)
        return respond(h, conn, 204, NULL, NULL, 0);
    struct qt_sbuf b;
    qt_sbuf_init(&b, 2u << 20);
    qt_sbuf_printf(&b,
                   "{\"error\":\"partial write: %" PRIu64 " bad lines dropped, %" PRIu64
                   " lines stored\",\"lines_stored\":%" PRIu64 ",\"points_stored\":%" PRIu64
                   ",\"bad_lines_total\":%" PRIu64 ",\"bad_lines\":[",
                   w->bad_total, w->lines_ok, w->lines_ok, w->points_ok, w->bad_total);
    wr_render_bad(w, &b);
    qt_sbuf_str(&b, "]}\n");
    return respond_sbuf(h, conn, 400, "application/json", &b);
}

/* ---- /query -------------------------------------------------------------------------- */

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) ('+' is a space) into out (may be s: decoding
 * never lengthens); returns the decoded length. */
static size_t
url_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            out[o++] = ' ';
        } else if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = c;
        }
    }
    return o;
}

/* The q=... value of an x-www-form-urlencoded body, decoded in place.
 * Returns its length, or -1 if absent. */
static long
form_q(char *body, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        if (end - i >= 2 && body[i] == 'q' && body[i + 1] == '=') {
            size_t n = url_decode(body + i + 2, end - i - 2, body);
            return (long)n;
        }
        i = end + 1;
    }
    return -1;
}

#ifdef HTTP_HAVE_EXEC
struct qout {
    struct qt_sbuf *b;
};

static int
query_out(void *arg, const char *buf, size_t len)
{
    struct qout *o = arg;
    qt_sbuf_add(o->b, buf, len);
    return qt_sbuf_failed(o->b) ? QT_ELIMIT : 0;
}

static unsigned
query_status(int rc)
{
    switch (rc) {
    case QT_ESYNTAX:
    case QT_EINVAL:
    case QT_ELIMIT:
    case QT_ETIMEOUT:
    case QT_ENOTFOUND: return 400;
    default: return 500;
    }
}

static enum MHD_Result
query_run(struct qt_http *h, struct MHD_Connection *conn, const char *q, size_t qlen,
          enum qt_out_format fmt, int64_t t0)
{
    const struct qt_srv_config *cfg = h->o.cfg;
    struct qt_qry_limits lim = {.rows_max = cfg->query_rows_max,
                                .series_max = cfg->query_series_max,
                                .mem_bytes_max = cfg->query_mem_max_bytes,
                                .deadline_ms = cfg->query_deadline_ms};
    struct qt_sbuf b;
    qt_sbuf_init(&b, QT_SRV_QUERY_RESULT_MAX);
    struct qout o = {.b = &b};
    struct qt_qry_stats st = {0};
    struct qt_qry_error err = {0};
    int rc = qt_qry_run(h->o.db, q, qlen, real_ns(), &lim, fmt, query_out, &o, &st, &err);
    qt_hist_observe(&h->o.metrics->query_latency, (uint64_t)(mono_ns() - t0));
    if (rc == 0) {
        static const char *const ctype[] = {"text/plain; charset=utf-8", "text/csv; charset=utf-8",
                                            "application/json"};
        char v[5][24];
        snprintf(v[0], sizeof(v[0]), "%" PRIu64, st.series);
        snprintf(v[1], sizeof(v[1]), "%" PRIu64, st.points);
        snprintf(v[2], sizeof(v[2]), "%" PRIu64, st.rows);
        snprintf(v[3], sizeof(v[3]), "%" PRIu64, st.rollup_buckets);
        snprintf(v[4], sizeof(v[4]), "%" PRIu64, st.elapsed_ns / 1000u);
        const char *const hdrs[] = {"X-Qtdb-Source",         st.source[0] ? st.source : "raw",
                                    "X-Qtdb-Series",         v[0],
                                    "X-Qtdb-Points",         v[1],
                                    "X-Qtdb-Rows",           v[2],
                                    "X-Qtdb-Rollup-Buckets", v[3],
                                    "X-Qtdb-Elapsed-Us",     v[4]};
        return respond_sbuf_hdrs(h, conn, 200, ctype[fmt], &b, hdrs, 6);
    }
    qt_sbuf_deinit(&b);
    atomic_fetch_add_explicit(&h->o.metrics->query_errors, 1, memory_order_relaxed);
    if (err.message[0] == '\0')
        snprintf(err.message, sizeof(err.message), "%s", qt_strerror(rc));
    char json[1024], caret[1024];
    size_t jl = qt_qry_error_json(&err, json, sizeof(json));
    qt_qry_error_render_caret(&err, q, qlen, caret, sizeof(caret));
    struct qt_sbuf e;
    qt_sbuf_init(&e, 64u << 10);
    /* {"error":..,"position":..} plus "caret", the rendering for people */
    size_t cut = jl < sizeof(json) ? jl : sizeof(json) - 1;
    while (cut > 0 && json[cut - 1] != '}')
        cut--;
    qt_sbuf_add(&e, json, cut > 0 ? cut - 1 : 0);
    qt_sbuf_str(&e, ",\"caret\":");
    qt_sbuf_json(&e, caret, strlen(caret));
    qt_sbuf_str(&e, "}\n");
    return respond_sbuf(h, conn, query_status(rc), "application/json", &e);
}
#endif

static enum MHD_Result
do_query(struct qt_http *h, struct MHD_Connection *conn, struct req *r)
{
    atomic_fetch_add_explicit(&h->o.metrics->queries, 1, memory_order_relaxed);
    const char *fmt_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "format");
    int fmt;
    if (fmt_s == NULL || strcmp(fmt_s, "json") == 0)
        fmt = 2;
    else if (strcmp(fmt_s, "csv") == 0)
        fmt = 1;
    else if (strcmp(fmt_s, "table") == 0)
        fmt = 0;
    else
        return respond_error(h, conn, 400, "format must be json, csv or table");
    const char *q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "q");
    size_t qlen = q != NULL ? strlen(q) : 0;
    if (q == NULL && r->body.len > 0) {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        long n = -1;
        if (ct != NULL && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0)
            n = form_q(r->body.p, r->body.len);
        else
            n = (long)r->body.len;
        if (n >= 0) {
            q = r->body.p;
            qlen = (size_t)n;
        }
    }
    if (q == NULL || qlen == 0)
        return respond_error(h, conn, 400, "missing query: pass q=... in the URL or the body");
    if (qlen > QT_SRV_QUERY_TEXT_MAX)
        return respond_error(h, conn, 413, "query text too long");
#ifdef HTTP_HAVE_EXEC
    return query_run(h, conn, q, qlen, (enum qt_out_format)fmt, r->t0_ns);
#else
    (void)fmt;
    atomic_fetch_add_explicit(&h->o.metrics->query_errors, 1, memory_order_relaxed);
    return respond_error(h, conn, 501,
                         "the query executor is not built into this server yet (query/exec.c "
                         "is missing); writes, /health and /metrics work");
#endif
}

/* ---- /api/v1 operations (http_ops.h) ------------------------------------------------- */

static const char *
ops_arg(void *ctx, const char *key)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result
do_export(struct qt_http *h, struct MHD_Connection *conn, struct req *r)
{
    char err[256];
    int fd = -1;
    unsigned st = qt_http_export_start(h->o.db, ops_arg, conn, &r->export, &fd, err, sizeof(err));
    if (st != 0)
        return respond_error(h, conn, st, err);
    struct MHD_Response *resp = MHD_create_response_from_pipe(fd);
    if (resp == NULL) {
        close(fd);
        return respond_error(h, conn, 500, "cannot stream the export");
    }
    const char *fmt = ops_arg(conn, "format");
    bool csv = fmt != NULL && strcmp(fmt, "csv") == 0;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            csv ? "text/csv; charset=utf-8" : "text/plain; charset=utf-8");
    MHD_add_response_header(resp, "X-Qtdb-Version", h->o.info.version);
    enum MHD_Result ok = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    qt_srv_metrics_status(h->o.metrics, 200);
    return ok;
}

static enum MHD_Result
do_ops(struct qt_http *h, struct MHD_Connection *conn, struct req *r)
{
    if (strcmp(r->op, "export") == 0)
        return do_export(h, conn, r);
    struct qt_http_reply rep;
    bool found =
        qt_http_ops_run(h->o.db, &h->stopping, r->op, r->post, h->o.cfg, ops_arg, conn, &rep);
    qt_assert(found);
    return respond_sbuf(h, conn, rep.status, "application/json", &rep.b);
}

/* ---- routing -------------------------------------------------------------------------- */

/* The operation a /api/v1/ URL names, or NULL; *post: it changes state. */
static const char *
ops_name(const char *url)
{
    static const char *const ops[] = {"shards", "compact",   "backup", "verify",
                                      "rollup", "retention", "export"};
    if (strncmp(url, "/api/v1/", 8) != 0)
        return NULL;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(url + 8, ops[i]) == 0)
            return ops[i];
    return NULL;
}

static enum qt_http_ep
route(const char *url)
{
    static const struct {
        const char *path;
        enum qt_http_ep ep;
    } routes[] = {{"/write", QT_EP_WRITE},   {"/api/v2/write", QT_EP_OTHER},
                  {"/query", QT_EP_QUERY},   {"/ping", QT_EP_PING},
                  {"/health", QT_EP_HEALTH}, {"/metrics", QT_EP_METRICS}};
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(url, routes[i].path) == 0)
            return routes[i].ep;
    return ops_name(url) != NULL ? QT_EP_OPS : QT_EP_OTHER;
}

static bool
method_ok(enum qt_http_ep ep, const char *url, const char *m)
{
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    bool post = strcmp(m, "POST") == 0;
    switch (ep) {
    case QT_EP_WRITE: return post;
    case QT_EP_QUERY: return get || post;
    case QT_EP_OPS: /* reads are GET (export: not HEAD), changes are POST */
        if (strcmp(url, "/api/v1/shards") == 0 || strcmp(url, "/api/v1/retention") == 0)
            return get;
        if (strcmp(url, "/api/v1/rollup") == 0) /* GET: the rules, POST: a run */
            return get || post;
        return strcmp(url, "/api/v1/export") == 0 ? strcmp(m, "GET") == 0 : post;
    default: return get;
    }
}

/* First call: headers are in. */
static enum MHD_Result
on_headers(struct qt_http *h, struct MHD_Connection *conn, const char *url, const char *method,
           void **state)
{
    enum qt_http_ep ep = route(url);
    atomic_fetch_add_explicit(&h->o.metrics->http_requests[ep], 1, memory_order_relaxed);
    if (ep == QT_EP_OTHER)
        return respond_error(h, conn, 404,
                             "no such endpoint (try /write, /query, /ping, "
                             "/health, /metrics, /api/v1/shards)");
    if (!method_ok(ep, url, method))
        return respond_error(h, conn, 405, "method not allowed for this endpoint");
    struct req *r = qt_calloc(1, sizeof(*r));
    if (r == NULL)
        return respond_error(h, conn, 503, "out of memory");
    r->ep = ep;
    r->op = ep == QT_EP_OPS ? ops_name(url) : NULL;
    r->post = strcmp(method, "POST") == 0;
    r->t0_ns = mono_ns();
    qt_sbuf_init(&r->body, QT_SRV_QUERY_TEXT_MAX);
    *state = r;
    if (ep == QT_EP_WRITE) {
        unsigned st = wr_begin(h, conn, r);
        if (st != 0)
            return respond_error(h, conn, st, r->err);
    }
    return MHD_YES;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    struct qt_http *h = cls;
    (void)version;
    if (*state == NULL)
        return on_headers(h, conn, url, method, state);
    struct req *r = *state;
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->ep == QT_EP_WRITE)
            return wr_upload(r, upload_data, n) ? MHD_YES : MHD_NO;
        qt_sbuf_add(&r->body, upload_data, n); /* /query: failed if too long */
        return MHD_YES;
    }
    switch (r->ep) {
    case QT_EP_WRITE: return wr_finish(h, conn, r);
    case QT_EP_QUERY:
        if (qt_sbuf_failed(&r->body))
            return respond_error(h, conn, 413, "query text too long");
        return do_query(h, conn, r);
    case QT_EP_PING: return respond(h, conn, 204, NULL, NULL, 0);
    case QT_EP_HEALTH: return do_health(h, conn);
    case QT_EP_METRICS: return do_metrics(h, conn);
    case QT_EP_OPS: return do_ops(h, conn, r);
    default: qt_unreachable();
    }
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **state,
             enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    struct req *r = *state;
    if (r == NULL)
        return;
    wr_free(r->w);
    qt_http_export_stop(r->export);
    qt_sbuf_deinit(&r->body);
    qt_free(r);
    *state = NULL;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct qt_http *h = cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    qt_log_ratelimited(&h->lim_log, QT_SRV_LOG_PER_SEC, QT_LOG_INFO, "http: %s", msg);
}

int
qt_http_start(const struct qt_http_opts *o, struct qt_http **out)
{
    qt_assert(o != NULL && o->cfg != NULL && o->db != NULL && o->listen_fd >= 0);
    struct qt_http *h = qt_calloc(1, sizeof(*h));
    if (h == NULL) {
        close(o->listen_fd);
        return QT_ENOMEM;
    }
    h->o = *o;
    h->listen_fd = o->listen_fd;
    h->start_mono_ns = mono_ns();
    const struct qt_srv_config *cfg = o->cfg;
    unsigned timeout_s = (cfg->idle_timeout_ms + 999) / 1000;
    h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG,
                            0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
                            MHD_OPTION_LISTEN_SOCKET, h->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)cfg->http_conn_max, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned)cfg->http_per_ip_max, MHD_OPTION_CONNECTION_TIMEOUT,
                            timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONN_MEMORY,
                            MHD_OPTION_THREAD_STACK_SIZE, (size_t)QT_SRV_HTTP_STACK_BYTES,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
    if (h->d == NULL) {
        qt_log(QT_LOG_ERROR, "http: libmicrohttpd failed to start");
        close(h->listen_fd);
        qt_free(h);
        return QT_EINVAL;
    }
    *out = h;
    return 0;
}

void
qt_http_quiesce(struct qt_http *h)
{
    if (h == NULL || h->listen_fd < 0)
        return;
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    h->listen_fd = -1;
}

void
qt_http_stop(struct qt_http *h)
{
    if (h == NULL)
        return;
    qt_http_quiesce(h);            /* MHD would close the socket; quiesced, it is ours */
    atomic_store(&h->stopping, 1); /* running operations stop at their next step */
    MHD_stop_daemon(h->d);
    qt_free(h);
}
