/*
 * http_ops.c -- shards, compact, backup, verify, rollup, retention and
 * export over HTTP (http_ops.h).
 *
 * The JSON endpoints call the storage operation on the live database in
 * the request's thread and render its result; the CLI's --server mode
 * (ops_cli.c) parses exactly these field names.  Every object is flat
 * (no nested objects except the findings array of /verify), numbers are
 * integers unless named *_per_point.
 *
 * Export streams: a thread runs qt_export() into the write end of a pipe
 * (non-blocking; it polls with QT_SRV_EXPORT_POLL_MS and checks its cancel
 * flag), libmicrohttpd sends the read end as a chunked body.  Invariant:
 * the thread never outlives the request (qt_http_export_stop joins it, and
 * the server stops requests before it closes the database).
 */
#include "server/http_ops.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "query/qtime.h"
#include "server/srvconf.h"
#include "storage/backup.h"
#include "storage/compact.h"
#include "storage/export.h"
#include "storage/retention.h"
#include "storage/rollup.h"
#include "storage/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------------- */

static void
reply_error(struct qt_http_reply *out, unsigned status, const char *what, int rc)
{
    char msg[512];
    if (rc != 0)
        snprintf(msg, sizeof(msg), "%s: %s (%s)", what, qt_strerror(rc), qt_err_detail());
    else
        snprintf(msg, sizeof(msg), "%s", what);
    qt_sbuf_deinit(&out->b);
    qt_sbuf_init(&out->b, 64u << 10);
    out->status = status;
    qt_sbuf_str(&out->b, "{\"error\":");
    qt_sbuf_json(&out->b, msg, strlen(msg));
    qt_sbuf_str(&out->b, "}\n");
}

/* HTTP status of an operation's error. */
static unsigned
op_status(int rc)
{
    switch (rc) {
    case QT_EINVAL:
    case QT_ESYNTAX: return 400;
    case QT_ENOTFOUND: return 404;
    case QT_EBUSY:
    case QT_ECORRUPT: return 409;
    case QT_EREADONLY:
    case QT_ECLOSED: return 503;
    default: return 500;
    }
}

static bool
arg_true(qt_http_arg_fn arg, void *ctx, const char *key)
{
    const char *v = arg(ctx, key);
    return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* An instant: integer nanoseconds or RFC 3339; 0 or QT_EINVAL. */
static int
parse_instant(const char *s, int64_t *ns)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end != s && *end == '\0' && errno == 0) {
        *ns = v;
        return 0;
    }
    size_t off = 0;
    return qt_time_parse_rfc3339(s, strlen(s), ns, &off) == 0 ? 0 : QT_EINVAL;
}

/* ---- shards ------------------------------------------------------------------------------ */

static void
do_shards(struct qt_db *db, struct qt_http_reply *out)
{
    struct qt_shard_info *si = NULL;
    uint32_t n = 0;
    int rc = qt_db_shards(db, &si, &n);
    if (rc != 0) {
        reply_error(out, op_status(rc), "shards", rc);
        return;
    }
    qt_sbuf_str(&out->b, "[");
    for (uint32_t i = 0; i < n; i++) {
        const struct qt_shard_info *s = &si[i];
        qt_sbuf_printf(
            &out->b,
            "%s\n{\"start\":%" PRId64 ",\"end\":%" PRId64 ",\"segments\":%u,"
            "\"damaged\":%u,\"points\":%" PRIu64 ",\"series\":%" PRIu64 ",\"bytes\":%" PRIu64
            ",\"bytes_per_point\":%.4f,\"last_compaction\":%" PRId64 ",\"state\":\"%s\"}",
            i ? "," : "", s->start_ns, s->end_ns, s->segments, s->damaged, s->points, s->series,
            s->bytes, s->bytes_per_point, s->last_compaction_ns, qt_shard_state_name(s->state));
    }
    qt_sbuf_str(&out->b, "\n]\n");
    qt_free(si);
    out->status = 200;
}

/* ---- compact ----------------------------------------------------------------------------- */

/* With retention rules configured, the shards entirely past retention are
 * dropped first (as offline `compact --retention` and the background pass
 * do); the compaction then trims the points past retention of the shards
 * it rewrites. */
/* A 503 with the reason when db is read-only (writes would fail): true
 * when answered. */
static bool
reply_if_readonly(struct qt_db *db, struct qt_http_reply *out)
{
    struct qt_db_health hl;
    qt_db_health(db, &hl);
    if (!hl.read_only)
        return false;
    char msg[256];
    snprintf(msg, sizeof(msg), "the database is read-only: %s", hl.reason);
    reply_error(out, 503, msg, 0);
    return true;
}

static void
do_compact(struct qt_db *db, const atomic_int *stop, bool retention, qt_http_arg_fn arg, void *ctx,
           struct qt_http_reply *out)
{
    const char *shard = arg(ctx, "shard");
    struct qt_compact_opts o = {.all = arg_true(arg, ctx, "all"),
                                .force = arg_true(arg, ctx, "force"),
                                .ctl = {.cancel = stop}};
    if ((shard == NULL) == !o.all) {
        reply_error(out, 400, "pass shard=ID (a shard start in ns or RFC 3339) or all=true", 0);
        return;
    }
    if (shard != NULL && parse_instant(shard, &o.shard_start) != 0) {
        reply_error(out, 400, "shard must be a shard start in ns or RFC 3339", 0);
        return;
    }
    if (reply_if_readonly(db, out))
        return;
    struct qt_retention_result rr = {0};
    int rc = retention ? qt_db_apply_retention(db, 0, &rr) : 0;
    if (rc != 0) {
        reply_error(out, op_status(rc), "retention", rc);
        return;
    }
    struct qt_compact_result r = {0};
    rc = qt_db_compact(db, &o, &r);
    if (rc != 0 && r.shards == 0) {
        reply_error(out, op_status(rc), "compact", rc);
        return;
    }
    qt_sbuf_printf(&out->b,
                   "{\"shards_dropped\":%u,\"points_dropped\":%" PRIu64
                   ",\"shards\":%u,\"shards_skipped\":%u,\"segments_in\":%u,\"points_in\":%" PRIu64
                   ",\"points_out\":%" PRIu64 ",\"points_trimmed\":%" PRIu64
                   ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 ",\"ns\":%" PRIu64,
                   rr.shards_dropped, rr.points_dropped, r.shards, r.shards_skipped, r.segments_in,
                   r.points_in, r.points_out, r.points_trimmed, r.bytes_in, r.bytes_out, r.ns);
    if (rc != 0) { /* some shards were done before the error */
        char msg[512];
        snprintf(msg, sizeof(msg), "compact stopped: %s (%s)", qt_strerror(rc), qt_err_detail());
        qt_sbuf_str(&out->b, ",\"error\":");
        qt_sbuf_json(&out->b, msg, strlen(msg));
    }
    qt_sbuf_str(&out->b, "}\n");
    out->status = rc != 0 ? op_status(rc) : 200;
}

/* ---- backup ------------------------------------------------------------------------------ */

static void
do_backup(struct qt_db *db, const atomic_int *stop, qt_http_arg_fn arg, void *ctx,
          struct qt_http_reply *out)
{
    const char *to = arg(ctx, "to");
    if (to == NULL || to[0] != '/') {
        reply_error(out, 400, "pass to=DIR, an absolute directory on the server's machine", 0);
        return;
    }
    struct qt_backup_opts o = {.target = to,
                               .incremental = arg_true(arg, ctx, "incremental"),
                               .copy = arg_true(arg, ctx, "copy"),
                               .ctl = {.cancel = stop}};
    struct qt_backup_result r;
    int rc = qt_db_backup(db, &o, &r);
    if (rc != 0) {
        reply_error(out, op_status(rc), "backup", rc);
        return;
    }
    qt_sbuf_str(&out->b, "{\"target\":");
    qt_sbuf_json(&out->b, to, strlen(to));
    qt_sbuf_printf(&out->b,
                   ",\"id\":\"%s\",\"parent\":\"%s\",\"files\":%u,\"files_copied\":%u,"
                   "\"files_linked_data\":%u,\"files_linked_prev\":%u,\"bytes\":%" PRIu64
                   ",\"bytes_written\":%" PRIu64 ",\"bytes_read\":%" PRIu64 ",\"ns\":%" PRIu64
                   "}\n",
                   r.id, r.parent, r.files, r.files_copied, r.files_linked_data,
                   r.files_linked_prev, r.bytes, r.bytes_written, r.bytes_read, r.ns);
    out->status = 200;
}

/* ---- verify ------------------------------------------------------------------------------ */

struct vctx {
    struct qt_sbuf *b;
    uint64_t listed;
};

static void
on_finding(void *arg, const struct qt_verify_finding *f)
{
    struct vctx *v = arg;
    if (v->listed >= QT_SRV_VERIFY_FINDINGS_MAX)
        return;
    struct qt_sbuf *b = v->b;
    qt_sbuf_printf(b,
                   "%s\n{\"damage\":%s,\"kind\":\"%s\",\"offset\":%" PRId64 ",\"code\":%d,"
                   "\"series_id\":%" PRIu64 ",\"ts_min\":%" PRId64 ",\"ts_max\":%" PRId64
                   ",\"points\":%" PRIu64 ",\"path\":",
                   v->listed ? "," : "", f->damage ? "true" : "false", qt_verify_kind_name(f->kind),
                   f->offset == UINT64_MAX ? (int64_t)-1 : (int64_t)f->offset, f->code,
                   f->series_id, f->ts_min, f->ts_max, f->points);
    qt_sbuf_json(b, f->path, strlen(f->path));
    qt_sbuf_str(b, ",\"what\":");
    qt_sbuf_json(b, f->what, strlen(f->what));
    if (f->series != NULL) {
        qt_sbuf_str(b, ",\"series\":");
        qt_sbuf_json(b, f->series, f->series_len);
    }
    qt_sbuf_str(b, "}");
    v->listed++;
}

static void
do_verify(struct qt_db *db, const atomic_int *stop, qt_http_arg_fn arg, void *ctx,
          struct qt_http_reply *out)
{
    struct qt_sbuf list;
    qt_sbuf_init(&list, QT_SRV_OPS_REPLY_MAX);
    struct vctx v = {.b = &list};
    struct qt_verify_opts o = {.quarantine = arg_true(arg, ctx, "quarantine"),
                               .report = on_finding,
                               .arg = &v,
                               .ctl = {.cancel = stop}};
    struct qt_verify_result r = {0};
    int rc = qt_db_verify(db, &o, &r);
    if (rc != 0 && rc != QT_ECORRUPT) {
        qt_sbuf_deinit(&list);
        reply_error(out, op_status(rc), "verify", rc);
        return;
    }
    qt_sbuf_printf(&out->b,
                   "{\"damaged\":%s,\"files\":%u,\"segments\":%u,\"damaged_files\":%u,"
                   "\"quarantined\":%u,\"blocks\":%" PRIu64 ",\"points\":%" PRIu64
                   ",\"bytes\":%" PRIu64 ",\"findings_total\":%" PRIu64 ",\"damages\":%" PRIu64
                   ",\"ns\":%" PRIu64 ",\"findings\":[",
                   rc == QT_ECORRUPT ? "true" : "false", r.files, r.segments, r.damaged_files,
                   r.quarantined, r.blocks, r.points, r.bytes, r.findings, r.damages, r.ns);
    qt_sbuf_add(&out->b, list.p, list.len);
    qt_sbuf_str(&out->b, "\n]}\n");
    if (qt_sbuf_failed(&list))
        reply_error(out, 500, "verify: the findings do not fit in a response", 0);
    else
        out->status = 200;
    qt_sbuf_deinit(&list);
}

/* ---- rollup ------------------------------------------------------------------------------ */

static uint64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* GET: the rules; POST: one run now (the background pass runs the same
 * call; a concurrent run makes this one wait, then it finds the shards
 * current). */
static void
do_rollup(struct qt_db *db, bool post, const char *rollups, struct qt_http_reply *out)
{
    if (!post) {
        qt_sbuf_str(&out->b, "{\"rollups\":");
        qt_sbuf_json(&out->b, rollups != NULL ? rollups : "",
                     rollups != NULL ? strlen(rollups) : 0);
        qt_sbuf_str(&out->b, "}\n");
        out->status = 200;
        return;
    }
    if (rollups == NULL) {
        reply_error(out, 409, "no rollup rules configured (--rollups)", 0);
        return;
    }
    if (reply_if_readonly(db, out))
        return;
    uint64_t t0 = mono_ms();
    struct qt_rollup_result r = {0};
    int rc = qt_db_rollup(db, 0, &r);
    if (rc != 0) {
        reply_error(out, op_status(rc), "rollup", rc);
        return;
    }
    qt_sbuf_printf(&out->b,
                   "{\"shards\":%u,\"shards_current\":%u,\"series\":%" PRIu64
                   ",\"buckets\":%" PRIu64 ",\"elapsed_ms\":%" PRIu64 "}\n",
                   r.shards, r.shards_current, r.series, r.buckets, mono_ms() - t0);
    out->status = 200;
}

/* ---- retention --------------------------------------------------------------------------- */

/* GET: the rules (applied by the background pass and POST /api/v1/compact). */
static void
do_retention(const char *retention, struct qt_http_reply *out)
{
    qt_sbuf_str(&out->b, "{\"retention\":");
    qt_sbuf_json(&out->b, retention != NULL ? retention : "",
                 retention != NULL ? strlen(retention) : 0);
    qt_sbuf_str(&out->b, "}\n");
    out->status = 200;
}

bool
qt_http_ops_run(struct qt_db *db, const atomic_int *stop, const char *path, bool post,
                const struct qt_srv_config *cfg, qt_http_arg_fn arg, void *ctx,
                struct qt_http_reply *out)
{
    qt_assert(db != NULL && path != NULL && cfg != NULL && arg != NULL && out != NULL);
    qt_sbuf_init(&out->b, QT_SRV_OPS_REPLY_MAX);
    out->status = 500;
    if (strcmp(path, "shards") == 0)
        do_shards(db, out);
    else if (strcmp(path, "compact") == 0)
        do_compact(db, stop, cfg->retention != NULL, arg, ctx, out);
    else if (strcmp(path, "backup") == 0)
        do_backup(db, stop, arg, ctx, out);
    else if (strcmp(path, "verify") == 0)
        do_verify(db, stop, arg, ctx, out);
    else if (strcmp(path, "rollup") == 0)
        do_rollup(db, post, cfg->rollups, out);
    else if (strcmp(path, "retention") == 0)
        do_retention(cfg->retention, out);
    else {
        qt_sbuf_deinit(&out->b);
        return false;
    }
    qt_assert(out->status >= 200 && out->status < 600);
    return true;
}

/* ---- export ------------------------------------------------------------------------------- */

struct qt_http_export {
    pthread_t th;
    int wfd;
    atomic_int cancel;
    struct qt_db *db;
    struct qt_export_opts o;
    struct qt_tag_matcher tags[QT_TAGS_MAX];
    char sel[QT_SERIES_KEY_MAX + 1];
};

/* Write all of buf to the pipe, waiting for the reader; QT_ECLOSED when
 * cancelled or the reader went away. */
static int
pipe_out(void *arg, const char *buf, size_t len)
{
    struct qt_http_export *x = arg;
    while (len > 0) {
        if (atomic_load(&x->cancel))
            return QT_ECLOSED;
        ssize_t n = write(x->wfd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd p = {.fd = x->wfd, .events = POLLOUT};
            (void)poll(&p, 1, QT_SRV_EXPORT_POLL_MS);
        } else {
            return QT_ECLOSED; /* EPIPE: the client is gone */
        }
    }
    return 0;
}

static void *
export_thread(void *arg)
{
    struct qt_http_export *x = arg;
    struct qt_export_result r;
    int rc = qt_export(x->db, &x->o, &r);
    if (rc != 0 && rc != QT_ECLOSED) {
        char msg[512];
        int n = snprintf(msg, sizeof(msg), "\n# qtdb export failed: %s (%s)\n", qt_strerror(rc),
                         qt_err_detail());
        (void)pipe_out(x, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    }
    close(x->wfd);
    return NULL;
}

/* Fill x->o from the arguments; 0 or 400 with err. */
static unsigned
export_args(struct qt_http_export *x, qt_http_arg_fn arg, void *ctx, char *err, size_t cap)
{
    const char *q = arg(ctx, "q"), *from = arg(ctx, "from"), *to = arg(ctx, "to");
    const char *fmt = arg(ctx, "format");
    x->o.t0 = INT64_MIN;
    x->o.t1 = INT64_MAX;
    if (q == NULL || q[0] == '\0' || strlen(q) > QT_SERIES_KEY_MAX) {
        snprintf(err, cap, "pass q=MEASUREMENT[,tag=value...]");
        return 400;
    }
    if ((from != NULL && parse_instant(from, &x->o.t0) != 0) ||
        (to != NULL && parse_instant(to, &x->o.t1) != 0)) {
        snprintf(err, cap, "from and to must be ns or RFC 3339");
        return 400;
    }
    if (fmt != NULL && strcmp(fmt, "lp") != 0 && strcmp(fmt, "csv") != 0) {
        snprintf(err, cap, "format must be lp or csv");
        return 400;
    }
    x->o.format = fmt != NULL && strcmp(fmt, "csv") == 0 ? QT_EXPORT_CSV : QT_EXPORT_LP;
    snprintf(x->sel, sizeof(x->sel), "%s", q);
    int rc = qt_export_parse_selector(x->sel, &x->o.measurement, x->tags, QT_TAGS_MAX, &x->o.ntags);
    if (rc != 0) {
        snprintf(err, cap, "bad selector: %s (%s)", qt_strerror(rc), qt_err_detail());
        return 400;
    }
    x->o.tags = x->tags;
    return 0;
}

unsigned
qt_http_export_start(struct qt_db *db, qt_http_arg_fn arg, void *ctx, struct qt_http_export **xp,
                     int *read_fd, char *err, size_t cap)
{
    qt_assert(db != NULL && xp != NULL && read_fd != NULL);
    struct qt_http_export *x = qt_calloc(1, sizeof(*x));
    if (x == NULL) {
        snprintf(err, cap, "out of memory");
        return 500;
    }
    unsigned st = export_args(x, arg, ctx, err, cap);
    if (st != 0) {
        qt_free(x);
        return st;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, cap, "pipe: %s", strerror(errno));
        qt_free(x);
        return 500;
    }
    (void)fcntl(fds[1], F_SETFL, O_NONBLOCK);
    x->db = db;
    x->wfd = fds[1];
    x->o.out = pipe_out;
    x->o.arg = x;
    x->o.ctl.cancel = &x->cancel;
    if (pthread_create(&x->th, NULL, export_thread, x) != 0) {
        snprintf(err, cap, "cannot start the export thread");
        close(fds[0]);
        close(fds[1]);
        qt_free(x);
        return 500;
    }
    *xp = x;
    *read_fd = fds[0];
    return 0;
}

void
qt_http_export_stop(struct qt_http_export *x)
{
    if (x == NULL)
        return;
    atomic_store(&x->cancel, 1);
    pthread_join(x->th, NULL);
    qt_free(x);
}
