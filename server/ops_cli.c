/*
 * ops_cli.c -- shards, compact, rollup, backup, restore, verify and export
 * subcommands (ops_cli.h, design/ops.md "CLI").
 *
 * Offline mode (--data DIR): each command opens the data directory itself
 * (which fails with "in use" while a server runs there); commands that do
 * not change the database open it read-only.  Server mode (--server URL):
 * shards, compact, rollup, backup, verify and export call the server's
 * /api/v1/<op> endpoints (server/http_ops.h) and print the same summaries
 * from the JSON answer, through the same printing functions.  restore is
 * offline only: it fills an empty directory for a server not yet started.  A SIGINT sets a cancel
 * flag the operation polls between steps; a second SIGINT kills the process (the operations are
 * crash-safe anyway).
 */
#include "server/ops_cli.h"

#include "format/qt_alloc.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "query/qtime.h"
#include "server/httpc.h"
#include "server/sbuf.h"
#include "storage/backup.h"
#include "storage/compact.h"
#include "storage/db.h"
#include "storage/export.h"
#include "storage/retention.h"
#include "storage/rollup.h"
#include "storage/verify.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- arguments ------------------------------------------------------------------ */

struct cli {
    const char *cmd;
    const char *data, *to, *from, *backup, *shard, *format, *retention, *selector, *rollups;
    const char *server, *timeout;
    bool all, incremental, copy, force, quarantine, help;
};

static const char *
cli_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (strcmp(argv[*i], name) != 0)
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "qtdb: %s needs a value\n", name);
        return "";
    }
    return argv[++*i];
}

static bool
cli_opt(int argc, char **argv, int *i, const char *name, const char **out)
{
    const char *v = cli_value(argc, argv, i, name);
    if (v != NULL)
        *out = v;
    return v != NULL;
}

/* Parse argv[1..] into c; 0 or 2 (usage error, printed). */
static int
cli_parse(int argc, char **argv, struct cli *c)
{
    memset(c, 0, sizeof(*c));
    c->cmd = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_opt(argc, argv, &i, "--data", &c->data) ||
            cli_opt(argc, argv, &i, "--to", &c->to) ||
            cli_opt(argc, argv, &i, "--from", &c->from) ||
            cli_opt(argc, argv, &i, "--backup", &c->backup) ||
            cli_opt(argc, argv, &i, "--shard", &c->shard) ||
            cli_opt(argc, argv, &i, "--format", &c->format) ||
            cli_opt(argc, argv, &i, "--retention", &c->retention) ||
            cli_opt(argc, argv, &i, "--rollups", &c->rollups) ||
            cli_opt(argc, argv, &i, "--server", &c->server) ||
            cli_opt(argc, argv, &i, "--timeout", &c->timeout))
            continue;
        if (strcmp(a, "--all") == 0)
            c->all = true;
        else if (strcmp(a, "--incremental") == 0)
            c->incremental = true;
        else if (strcmp(a, "--copy") == 0)
            c->copy = true;
        else if (strcmp(a, "--force") == 0)
            c->force = true;
        else if (strcmp(a, "--quarantine") == 0)
            c->quarantine = true;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            c->help = true;
        else if (a[0] != '-' && c->selector == NULL)
            c->selector = a;
        else {
            fprintf(stderr, "qtdb %s: unknown argument '%s' (try --help)\n", c->cmd, a);
            return 2;
        }
    }
    return 0;
}

static int
cli_usage(const char *text, bool help)
{
    fprintf(help ? stdout : stderr, "%s", text);
    return help ? 0 : 2;
}

/* ---- progress and interruption ------------------------------------------------------- */

static atomic_int cli_cancel;

static void
cli_sigint(int sig)
{
    (void)sig;
    atomic_store(&cli_cancel, 1);
}

static void
cli_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cli_sigint;
    sa.sa_flags = (int)SA_RESETHAND; /* a second ^C kills: every step is crash-safe */
    sigaction(SIGINT, &sa, NULL);
}

static double
cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct cli_progress {
    const char *what;
    bool bytes; /* units are bytes (else points/groups) */
    bool tty;
    bool drawn;
    double t0, last;
};

static void
cli_progress_fn(void *arg, uint64_t done, uint64_t total)
{
    struct cli_progress *p = arg;
    double now = cli_now();
    if (!p->tty || now - p->last < 0.1)
        return;
    p->last = now;
    p->drawn = true;
    double rate = (double)done / (now - p->t0 + 1e-9);
    char bar[21];
    double frac = total > 0 ? (double)done / (double)total : 0.0;
    frac = frac > 1.0 ? 1.0 : frac;
    for (int i = 0; i < 20; i++)
        bar[i] = i < (int)(frac * 20.0) ? '#' : '.';
    bar[20] = '\0';
    if (total > 0)
        fprintf(stderr, "\r%s [%s] %3.0f%% %8.1f %s/s ", p->what, bar, frac * 100.0,
                p->bytes ? rate / 1048576.0 : rate, p->bytes ? "MiB" : "pt");
    else
        fprintf(stderr, "\r%s %10.1f %s  %8.1f %s/s ", p->what,
                p->bytes ? (double)done / 1048576.0 : (double)done, p->bytes ? "MiB" : "",
                p->bytes ? rate / 1048576.0 : rate, p->bytes ? "MiB" : "");
}

static struct qt_ops_ctl
cli_ctl(struct cli_progress *p, const char *what, bool bytes)
{
    *p =
        (struct cli_progress){.what = what, .bytes = bytes, .tty = isatty(2) != 0, .t0 = cli_now()};
    return (struct qt_ops_ctl){.cancel = &cli_cancel, .progress = cli_progress_fn, .arg = p};
}

static void
cli_progress_end(const struct cli_progress *p)
{
    if (p->drawn)
        fprintf(stderr, "\r%*s\r", 72, "");
}

static int
cli_fail(const char *cmd, int rc)
{
    if (rc == QT_ECLOSED && atomic_load(&cli_cancel))
        fprintf(stderr,
                "qtdb %s: interrupted; the database is consistent (completed steps "
                "are kept, the interrupted one left no trace)\n",
                cmd);
    else
        fprintf(stderr, "qtdb %s: %s (%s)\n", cmd, qt_strerror(rc), qt_err_detail());
    return 1;
}

/* ---- helpers --------------------------------------------------------------------------- */

static int
cli_open(const struct cli *c, bool read_only, struct qt_db **db)
{
    if (c->data == NULL) {
        fprintf(stderr, "qtdb %s: --data DIR is required\n", c->cmd);
        return 2;
    }
    struct qt_db_opts o = {.dir = c->data, .no_background = true, .read_only = read_only};
    enum qt_log_level lvl = qt_log_get_level();
    if (read_only) /* the engine logs "now read-only" as an error: expected here */
        qt_log_set_level((enum qt_log_level)(QT_LOG_ERROR + 1));
    int rc = qt_db_open(&o, db);
    qt_log_set_level(lvl);
    if (rc == QT_EBUSY) {
        fprintf(stderr,
                "qtdb %s: %s is in use by a running server; use --server URL to ask "
                "that server, or stop it first\n",
                c->cmd, c->data);
        return 1;
    }
    return rc != 0 ? cli_fail(c->cmd, rc) : 0;
}

static void
cli_size(uint64_t b, char *out, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    snprintf(out, cap, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

static void
cli_time(int64_t ns, char *out, size_t cap)
{
    if (ns == 0)
        snprintf(out, cap, "-");
    else
        qt_time_format_rfc3339(ns, out, cap);
}

/* An instant: integer nanoseconds or RFC 3339. */
static int
cli_instant(const char *s, int64_t *ns)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end != s && *end == '\0' && errno == 0) {
        *ns = v;
        return 0;
    }
    size_t off = 0;
    return qt_time_parse_rfc3339(s, strlen(s), ns, &off);
}

/* ---- server mode (--server URL) --------------------------------------------------------- */

struct cli_body {
    struct qt_sbuf b;                 /* JSON answers and errors: buffered */
    bool stream;                      /* export: a 2xx body goes to stdout */
    const struct qt_httpc_resp *resp; /* its status decides */
    char tail[256];                   /* export: the last bytes, for the failure line */
    size_t tail_len;
    uint64_t lines;
};

static int
cli_body_fn(void *arg, const uint8_t *p, size_t n)
{
    struct cli_body *cb = arg;
    if (!cb->stream || cb->resp->status < 200 || cb->resp->status >= 300) {
        qt_sbuf_add(&cb->b, p, n);
        return qt_sbuf_failed(&cb->b) ? QT_ELIMIT : 0;
    }
    for (size_t i = 0; i < n; i++)
        cb->lines += p[i] == '\n';
    size_t keep = n < sizeof(cb->tail) ? n : sizeof(cb->tail);
    if (cb->tail_len + keep > sizeof(cb->tail)) { /* shift out the oldest bytes */
        size_t drop = cb->tail_len + keep - sizeof(cb->tail);
        memmove(cb->tail, cb->tail + drop, cb->tail_len - drop);
        cb->tail_len -= drop;
    }
    memcpy(cb->tail + cb->tail_len, p + n - keep, keep);
    cb->tail_len += keep;
    return fwrite(p, 1, n, stdout) == n ? 0 : -EIO;
}

/*
 * Send method /api/v1/<query> to c->server.  0 with the body in cb (2xx),
 * or the exit code after printing the failure (1; 2 for a 400).
 */
static int
cli_call(const struct cli *c, const char *method, const char *query, struct cli_body *cb)
{
    struct qt_httpc_url u;
    if (qt_httpc_url_parse(c->server, &u) != 0) {
        fprintf(stderr, "qtdb %s: bad --server '%s': %s\n", c->cmd, c->server, qt_err_detail());
        return 2;
    }
    long timeout_s = c->timeout != NULL ? strtol(c->timeout, NULL, 10) : 0;
    timeout_s = timeout_s > 0 && timeout_s < 86400 * 7 ? timeout_s : QT_CLI_OPS_TIMEOUT_S;
    struct qt_httpc_resp *r = qt_malloc(sizeof(*r));
    char *path = qt_malloc(QT_SRV_QUERY_TEXT_MAX);
    if (r == NULL || path == NULL) {
        qt_free(r);
        qt_free(path);
        return cli_fail(c->cmd, QT_ENOMEM);
    }
    snprintf(path, QT_SRV_QUERY_TEXT_MAX, "/api/v1/%s", query);
    qt_sbuf_init(&cb->b, QT_SRV_OPS_REPLY_MAX);
    cb->resp = r;
    int rc = qt_httpc_request(&u, method, path, NULL, NULL, 0, (int)timeout_s * 1000, r,
                              cli_body_fn, cb);
    int status = r->status;
    qt_free(path);
    qt_free(r);
    if (rc != 0) {
        const char *d = qt_err_detail();
        fprintf(stderr, "qtdb %s: %s: %s%s%s%s\n", c->cmd, c->server, qt_strerror(rc),
                d[0] ? " (" : "", d, d[0] ? ")" : "");
        return 1;
    }
    if (status >= 200 && status < 300)
        return 0;
    char msg[1024];
    if (qt_httpc_json_str(cb->b.p, cb->b.len, "error", msg, sizeof(msg)) < 0)
        snprintf(msg, sizeof(msg), "server answered %d", status);
    fprintf(stderr, "qtdb %s: %s (HTTP %d)\n", c->cmd, msg, status);
    return status == 400 ? 2 : 1;
}

/* A number of the flat JSON object j[0..len) ("key": value), or def.
 * Keys are found as the text "key": -- unambiguous, since inside a JSON
 * string every quote is escaped.  Handles all 19 digits of a timestamp. */
static int64_t
jint(const char *j, size_t len, const char *key, int64_t def)
{
    char pat[64];
    int pn = snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = memmem(j, len, pat, (size_t)pn);
    if (p == NULL)
        return def;
    p += pn;
    char num[32];
    size_t n = 0;
    while (p + n < j + len && n < sizeof(num) - 1 && strchr("-0123456789.eE+", p[n]) != NULL)
        n++;
    memcpy(num, p, n);
    num[n] = '\0';
    return n > 0 ? strtoll(num, NULL, 10) : def;
}

static bool
jbool(const char *j, size_t len, const char *key)
{
    char pat[64];
    int pn = snprintf(pat, sizeof(pat), "\"%s\":true", key);
    return memmem(j, len, pat, (size_t)pn) != NULL;
}

/* The next object of a JSON array of flat objects at *pos: [*start, end). */
static bool
jnext_object(const char *j, size_t len, size_t *pos, size_t *start, size_t *end)
{
    size_t i = *pos;
    while (i < len && j[i] != '{' && j[i] != ']')
        i++;
    if (i >= len || j[i] != '{')
        return false;
    *start = i;
    bool str = false;
    for (; i < len; i++) {
        if (str && j[i] == '\\')
            i++;
        else if (j[i] == '"')
            str = !str;
        else if (!str && j[i] == '}')
            break;
    }
    if (i >= len)
        return false;
    *end = i + 1;
    *pos = i + 1;
    return true;
}

/* Append "?key=v" or "&key=v" (v percent-encoded) to q; nothing when v is NULL. */
static void
cli_qarg(char *q, size_t cap, const char *key, const char *v)
{
    size_t n = strlen(q);
    if (v == NULL || n + strlen(key) + 3 >= cap)
        return;
    n += (size_t)snprintf(q + n, cap - n, "%s%s=", strchr(q, '?') ? "&" : "?", key);
    qt_httpc_urlencode(v, strlen(v), q + n, cap - n);
}

/* ---- shards ------------------------------------------------------------------------------ */

static void
print_shards(const struct qt_shard_info *si, uint32_t n)
{
    printf("%-20s %-20s %5s %12s %8s %10s %6s %-20s %s\n", "SHARD", "START (UTC)", "SEGS", "POINTS",
           "SERIES", "BYTES", "B/PT", "LAST COMPACTION", "STATE");
    uint64_t points = 0, bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        char start[40], comp[40], size[24];
        cli_time(si[i].start_ns, start, sizeof(start));
        cli_time(si[i].last_compaction_ns, comp, sizeof(comp));
        cli_size(si[i].bytes, size, sizeof(size));
        printf("%-20" PRId64 " %-20s %5u %12" PRIu64 " %8" PRIu64 " %10s %6.2f %-20s %s%s\n",
               si[i].start_ns, start, si[i].segments, si[i].points, si[i].series, size,
               si[i].bytes_per_point, comp, qt_shard_state_name(si[i].state),
               si[i].damaged ? " (damaged segments)" : "");
        points += si[i].points;
        bytes += si[i].bytes;
    }
    char size[24];
    cli_size(bytes, size, sizeof(size));
    printf("%u shard(s), %" PRIu64 " points, %s, %.2f bytes/point\n", n, points, size,
           points > 0 ? (double)bytes / (double)points : 0.0);
}

/* GET /api/v1/shards into an array like qt_db_shards() gives. */
static int
remote_shards(const struct cli *c, struct qt_shard_info **out, uint32_t *n)
{
    struct cli_body cb = {0};
    int rc = cli_call(c, "GET", "shards", &cb);
    const char *j = cb.b.p;
    size_t len = cb.b.len, pos = 0, a, b, cap = 0;
    *out = NULL;
    *n = 0;
    while (rc == 0 && jnext_object(j, len, &pos, &a, &b)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            struct qt_shard_info *g = qt_realloc(*out, cap * sizeof(**out));
            if (g == NULL) {
                rc = cli_fail(c->cmd, QT_ENOMEM);
                break;
            }
            *out = g;
        }
        struct qt_shard_info *s = &(*out)[(*n)++];
        const char *o = j + a;
        size_t ol = b - a;
        char state[32] = "";
        qt_httpc_json_str(o, ol, "state", state, sizeof(state));
        *s = (struct qt_shard_info){.start_ns = jint(o, ol, "start", 0),
                                    .end_ns = jint(o, ol, "end", 0),
                                    .segments = (uint32_t)jint(o, ol, "segments", 0),
                                    .damaged = (uint32_t)jint(o, ol, "damaged", 0),
                                    .points = (uint64_t)jint(o, ol, "points", 0),
                                    .series = (uint64_t)jint(o, ol, "series", 0),
                                    .bytes = (uint64_t)jint(o, ol, "bytes", 0),
                                    .last_compaction_ns = jint(o, ol, "last_compaction", 0)};
        s->bytes_per_point = s->points > 0 ? (double)s->bytes / (double)s->points : 0.0;
        for (int k = QT_SHARD_ACTIVE; k <= QT_SHARD_COMPACTING; k++)
            if (strcmp(state, qt_shard_state_name((enum qt_shard_state)k)) == 0)
                s->state = (enum qt_shard_state)k;
    }
    qt_sbuf_deinit(&cb.b);
    if (rc != 0) {
        qt_free(*out);
        *out = NULL;
    }
    return rc;
}

int
qt_cli_shards(int argc, char **argv)
{
    struct cli c;
    int rc = cli_parse(argc, argv, &c);
    if (rc != 0 || c.help)
        return rc != 0 ? rc
                       : cli_usage("usage: qtdb shards (--data DIR | --server URL [--timeout S])\n",
                                   true);
    struct qt_shard_info *si = NULL;
    uint32_t n = 0;
    if (c.server != NULL) {
        if ((rc = remote_shards(&c, &si, &n)) != 0)
            return rc;
        print_shards(si, n);
        qt_free(si);
        return 0;
    }
    struct qt_db *db = NULL;
    qt_log_set_level(QT_LOG_WARN);
    if ((rc = cli_open(&c, true, &db)) != 0)
        return rc;
    rc = qt_db_shards(db, &si, &n);
    if (rc != 0) {
        qt_db_close(db);
        return cli_fail(c.cmd, rc);
    }
    print_shards(si, n);
    qt_free(si);
    qt_db_close(db);
    return 0;
}

/* ---- compact ------------------------------------------------------------------------------ */

static int
cli_set_retention(struct qt_db *db, const char *spec)
{
    char *buf = qt_strndup(spec, strlen(spec));
    struct qt_retention_rule *rules = qt_calloc(QT_RETENTION_RULES_MAX, sizeof(*rules));
    uint32_t n = 0;
    int rc = buf == NULL || rules == NULL
                 ? QT_ENOMEM
                 : qt_retention_parse(buf, rules, QT_RETENTION_RULES_MAX, &n);
    if (rc == 0)
        rc = qt_db_set_retention(db, rules, n);
    struct qt_retention_result rr = {0};
    if (rc == 0)
        rc = qt_db_apply_retention(db, 0, &rr);
    if (rc == 0 && rr.shards_dropped > 0)
        printf("retention: dropped %u shard(s) (%" PRIu64 " points)\n", rr.shards_dropped,
               rr.points_dropped);
    qt_free(rules);
    qt_free(buf);
    return rc;
}

static void
print_compact(const struct qt_compact_result *r)
{
    char in[24], out[24];
    cli_size(r->bytes_in, in, sizeof(in));
    cli_size(r->bytes_out, out, sizeof(out));
    double s = (double)r->ns / 1e9;
    printf("compacted %u shard(s) (%u skipped): %u segments, %" PRIu64 " -> %" PRIu64
           " points (%" PRIu64 " past retention), %s -> %s in %.2f s (%.1f M points/s)\n",
           r->shards, r->shards_skipped, r->segments_in, r->points_in, r->points_out,
           r->points_trimmed, in, out, s, s > 0 ? (double)r->points_in / s / 1e6 : 0.0);
}

static int
remote_compact(const struct cli *c)
{
    char q[256] = "compact";
    cli_qarg(q, sizeof(q), "shard", c->shard);
    cli_qarg(q, sizeof(q), "all", c->all ? "true" : NULL);
    cli_qarg(q, sizeof(q), "force", c->force ? "true" : NULL);
    struct cli_body cb = {0};
    int rc = cli_call(c, "POST", q, &cb);
    const char *j = cb.b.p;
    size_t n = cb.b.len;
    int64_t dropped = rc == 0 ? jint(j, n, "shards_dropped", 0) : 0;
    if (dropped > 0) /* the server's retention, applied first (as offline) */
        printf("retention: dropped %" PRId64 " shard(s) (%" PRId64 " points)\n", dropped,
               jint(j, n, "points_dropped", 0));
    if (rc == 0) {
        struct qt_compact_result r = {.shards = (uint32_t)jint(j, n, "shards", 0),
                                      .shards_skipped = (uint32_t)jint(j, n, "shards_skipped", 0),
                                      .segments_in = (uint32_t)jint(j, n, "segments_in", 0),
                                      .points_in = (uint64_t)jint(j, n, "points_in", 0),
                                      .points_out = (uint64_t)jint(j, n, "points_out", 0),
                                      .points_trimmed = (uint64_t)jint(j, n, "points_trimmed", 0),
                                      .bytes_in = (uint64_t)jint(j, n, "bytes_in", 0),
                                      .bytes_out = (uint64_t)jint(j, n, "bytes_out", 0),
                                      .ns = (uint64_t)jint(j, n, "ns", 0)};
        print_compact(&r);
    }
    qt_sbuf_deinit(&cb.b);
    return rc;
}

static const char compact_usage[] =
    "usage: qtdb compact (--data DIR [--retention SPEC] | --server URL [--timeout S])\n"
    "                    (--shard ID | --all) [--force]\n"
    "  ID    a shard start as `qtdb shards` lists it (ns) or RFC 3339\n"
    "  SPEC  retention rules applied first, e.g. air=30d,water*=7d,*=400d (offline only;\n"
    "        a server applies its own, serve --retention SPEC, in the background and\n"
    "        before a compaction it is asked for)\n"
    "  --force  also rewrite a shard that has a single segment\n";

int
qt_cli_compact(int argc, char **argv)
{
    struct cli c;
    int rc = cli_parse(argc, argv, &c);
    if (rc != 0 || c.help || (c.shard == NULL) == !c.all ||
        (c.server != NULL && c.retention != NULL))
        return cli_usage(compact_usage, c.help && rc == 0);
    struct qt_compact_opts o = {.all = c.all, .force = c.force};
    if (c.shard != NULL && cli_instant(c.shard, &o.shard_start) != 0)
        return cli_usage(compact_usage, false);
    if (c.server != NULL)
        return remote_compact(&c);
    struct qt_db *db = NULL;
    qt_log_set_level(QT_LOG_WARN);
    if ((rc = cli_open(&c, false, &db)) != 0)
        return rc;
    cli_signals();
    rc = c.retention != NULL ? cli_set_retention(db, c.retention) : 0;
    struct cli_progress p;
    o.ctl = cli_ctl(&p, "compacting", false);
    struct qt_compact_result r = {0};
    if (rc == 0)
        rc = qt_db_compact(db, &o, &r);
    cli_progress_end(&p);
    if (rc == 0 || r.shards > 0)
        print_compact(&r);
    int crc = qt_db_close(db);
    rc = rc != 0 ? rc : crc;
    return rc != 0 ? cli_fail(c.cmd, rc) : 0;
}

/* ---- rollup ------------------------------------------------------------------------------ */

static void
print_rollup(const struct qt_rollup_result *r, double s)
{
    printf("rollup: %u shard(s), %" PRIu64 " series-intervals, %" PRIu64
           " bucket points; %u shard(s) already current; %.2f s\n",
           r->shards, r->series, r->buckets, r->shards_current, s);
}

static int
remote_rollup(const struct cli *c)
{
    struct cli_body cb = {0};
    int rc = cli_call(c, "POST", "rollup", &cb);
    const char *j = cb.b.p;
    size_t n = cb.b.len;
    if (rc == 0) {
        struct qt_rollup_result r = {.shards = (uint32_t)jint(j, n, "shards", 0),
                                     .shards_current = (uint32_t)jint(j, n, "shards_current", 0),
                                     .series = (uint64_t)jint(j, n, "series", 0),
                                     .buckets = (uint64_t)jint(j, n, "buckets", 0)};
        print_rollup(&r, (double)jint(j, n, "elapsed_ms", 0) / 1e3);
    }
    qt_sbuf_deinit(&cb.b);
    return rc;
}

static const char rollup_usage[] =
    "usage: qtdb rollup (--data DIR --rollups SPEC | --server URL [--timeout S])\n"
    "  SPEC  rollup rules, e.g. air=1m,1h;grid*=1h (units s, m, h, d; each interval\n"
    "        must divide the shard duration).  Every shard that has ended is summarised\n"
    "        into measurements <name>:<interval>, one point per non-empty bucket at the\n"
    "        bucket start, fields <f>.count/.sum/.min/.max/.first/.last/.first_ts/.last_ts;\n"
    "        shards whose rollups are current are skipped, re-running is idempotent.\n"
    "  --server  run it on a live server under the rules it was started with\n"
    "        (serve --rollups SPEC; --rollups is not allowed here).  A server also\n"
    "        runs it in the background.  Query a rollup by name:\n"
    "        '\"air:1h\".\"pm25.max\" [now-7d, now) | max by 1d'.\n";

int
qt_cli_rollup(int argc, char **argv)
{
    struct cli c;
    int rc = cli_parse(argc, argv, &c);
    bool offline_ok = c.server == NULL && c.rollups != NULL;
    bool server_ok = c.server != NULL && c.rollups == NULL && c.data == NULL;
    if (rc == 0 && !c.help && c.server != NULL && c.rollups != NULL)
        fprintf(stderr, "qtdb rollup: --rollups is for --data only: a server rolls up under the "
                        "rules it was started with (serve --rollups SPEC)\n");
    if (rc != 0 || c.help || (!offline_ok && !server_ok))
        return cli_usage(rollup_usage, c.help && rc == 0);
    if (c.server != NULL)
        return remote_rollup(&c);
    struct qt_db *db = NULL;
    qt_log_set_level(QT_LOG_WARN);
    rc = cli_open(&c, false, &db);
    if (rc != 0)
        return rc;
    double t0 = cli_now();
    rc = qt_db_set_rollups(db, c.rollups);
    struct qt_rollup_result r = {0};
    if (rc == 0)
        rc = qt_db_rollup(db, 0, &r);
    if (rc == 0)
        print_rollup(&r, cli_now() - t0);
    int crc = qt_db_close(db);
    rc = rc != 0 ? rc : crc;
    return rc != 0 ? cli_fail(c.cmd, rc) : 0;
}

/* ---- backup, restore ------------------------------------------------------------------------ */

static void
print_backup(const char *to, const struct qt_backup_result *r)
{
    char total[24], written[24];
    cli_size(r->bytes, total, sizeof(total));
    cli_size(r->bytes_written, written, sizeof(written));
    double s = (double)r->ns / 1e9;
    printf("backup %s/%s: %u files, %s (%u copied, %u linked from the data directory, %u from "
           "%s), %s written in %.2f s (%.1f MiB/s read)\n",
           to, r->id, r->files, total, r->files_copied, r->files_linked_data, r->files_linked_prev,
           r->parent[0] ? r->parent : "-", written, s,
           s > 0 ? (double)r->bytes_read / s / 1048576.0 : 0.0);
}

static int
remote_backup(const struct cli *c)
{
    char q[4200] = "backup";
    cli_qarg(q, sizeof(q), "to", c->to);
    cli_qarg(q, sizeof(q), "incremental", c->incremental ? "true" : NULL);
    cli_qarg(q, sizeof(q), "copy", c->copy ? "true" : NULL);
    struct cli_body cb = {0};
    int rc = cli_call(c, "POST", q, &cb);
    const char *j = cb.b.p;
    size_t n = cb.b.len;
    if (rc == 0) {
        struct qt_backup_result r = {
            .files = (uint32_t)jint(j, n, "files", 0),
            .files_copied = (uint32_t)jint(j, n, "files_copied", 0),
            .files_linked_data = (uint32_t)jint(j, n, "files_linked_data", 0),
            .files_linked_prev = (uint32_t)jint(j, n, "files_linked_prev", 0),
            .bytes = (uint64_t)jint(j, n, "bytes", 0),
            .bytes_written = (uint64_t)jint(j, n, "bytes_written", 0),
            .bytes_read = (uint64_t)jint(j, n, "bytes_read", 0),
            .ns = (uint64_t)jint(j, n, "ns", 0)};
        qt_httpc_json_str(j, n, "id", r.id, sizeof(r.id));
        qt_httpc_json_str(j, n, "parent", r.parent, sizeof(r.parent));
        print_backup(c->to, &r);
    }
    qt_sbuf_deinit(&cb.b);
    return rc;
}

int
qt_cli_backup(int argc, char **argv)
{
    struct cli c;
    int rc = cli_parse(argc, argv, &c);
    static const char usage[] =
        "usage: qtdb backup (--data DIR | --server URL [--timeout S]) --to DIR [--incremental] "
        "[--copy]\n"
        "  with --server, DIR is an absolute directory on the server's machine, written by the\n"
        "  server process\n";
    if (rc != 0 || c.help || c.to == NULL)
        return cli_usage(usage, c.help && rc == 0);
    if (c.server != NULL)
        return remote_backup(&c);
    struct qt_db *db = NULL;
    qt_log_set_level(QT_LOG_WARN);
    if ((rc = cli_open(&c, true, &db)) != 0)
        return rc;
    cli_signals();
    struct cli_progress p;
    struct qt_backup_opts o = {.target = c.to,
                               .incremental = c.incremental,
                               .copy = c.copy,
                               .ctl = cli_ctl(&p, "backup", true)};
    struct qt_backup_result r;
    rc = qt_db_backup(db, &o, &r);
    cli_progress_end(&p);
    qt_db_close(db);
    if (rc != 0)
        return cli_fail(c.cmd, rc);
    print_backup(c.to, &r);
    return 0;
}

int
qt_cli_restore(int argc, char **argv)
{
    struct cli c;
    int rc = cli_parse(argc, argv, &c);
    static const char usage[] =
        "usage: qtdb restore --from DIR --data NEWDIR [--force]\n"
        "  DIR   a backup (TARGET/<id>) or a target: its newest backup\n"
        "  offline only (no --server): it fills an empty directory, which a server is then\n"
        "  started on; stop a server before restoring into its directory with --force\n";
    if (rc != 0 || c.help || c.from == NULL || c.data == NULL || c.server != NULL)
        return cli_usage(usage, c.help && rc == 0);
    qt_log_set_level(QT_LOG_WARN);
    cli_signals();
    struct cli_progress p;
    struct qt_restore_opts o = {
        .from = c.from, .to = c.data, .force = c.force, .ctl = cli_ctl(&p, "restore", true)};
    struct qt_restore_result r;
    rc = qt_backup_restore(&o, &r);
    cli_progress_end(&p);
    if (rc != 0)
        return cli_fail(c.cmd, rc);
    char total[24];
    cli_size(r.bytes, total, sizeof(total));
    double s = (double)r.ns / 1e9;
    printf("restored backup %s into %s: %u files, %s, verified and copied in %.2f s\n", r.id,
           c.data, r.files, total, s);
    return 0;
}

/* ---- verify --------------------------------------------------------------------------------- */

struct cli_verify {
    struct cli_progress *p;
    uint64_t printed;
};

static void
cli_finding(void *arg, const struct qt_verify_finding *f)
{
    struct cli_verify *v = arg;
    if (v->p != NULL && v->p->drawn)
        fprintf(stderr, "\r%*s\r", 72, "");
    char off[32] = "";
    if (f->offset != UINT64_MAX)
        snprintf(off, sizeof(off), " @%" PRIu64, f->offset);
    printf("%s %s %s%s: %s", f->damage ? "DAMAGE" : "note  ", qt_verify_kind_name(f->kind), f->path,
           off, f->what);
    if (f->code != 0)
        printf(" (%s)", qt_strerror(f->code));
    if (f->series != NULL)
        printf("; series %.*s", (int)f->series_len, f->series);
    else if (f->series_id != 0)
        printf("; series id %016" PRIx64, f->series_id);
    if (f->points > 0) {
        char a[40], b[40];
        qt_time_format_rfc3339(f->ts_min, a, sizeof(a));
        qt_time_format_rfc3339(f->ts_max, b, sizeof(b));
        printf("; %" PRIu64 " points lost in [%s, %s]", f->points, a, b);
    }
    printf("\n");
    v->printed++;
}

static void
print_verify(const char *name, const struct qt_verify_result *r)
{
    char total[24];
    cli_size(r->bytes, total, sizeof(total));
    double s = (double)r->ns / 1e9;
    printf("verified %s%s: %u files (%u segments), %" PRIu64 " blocks, %" PRIu64
           " points, %s in %.2f s (%.1f MiB/s); %u damaged file(s), %" PRIu64 " finding(s)\n",
           r->is_backup ? "backup " : "", name, r->files, r->segments, r->blocks, r->points, total,
           s, s > 0 ? (double)r->bytes / s / 1048576.0 : 0.0, r->damaged_files, r->findings);
    if (r->quarantined > 0)
        printf("quarantined %u segment(s) into %s/quarantine; the rest serves\n", r->quarantined,
               name);
}

/* One finding object of a /api/v1/verify answer, printed as offline. */
static void
remote_finding(const char *o, size_t ol, struct cli_verify *cv)
{
    char path[1024], what[256], series[QT_SERIES_KEY_MAX + 1], kind[32];
    qt_httpc_json_str(o, ol, "path", path, sizeof(path));
    qt_httpc_json_str(o, ol, "what", what, sizeof(what));
    qt_httpc_json_str(o, ol, "kind", kind, sizeof(kind));
    long sl = qt_httpc_json_str(o, ol, "series", series, sizeof(series));
    int64_t off = jint(o, ol, "offset", -1);
    struct qt_verify_finding f = {.damage = jbool(o, ol, "damage"),
                                  .path = path,
                                  .offset = off < 0 ? UINT64_MAX : (uint64_t)off,
                                  .code = (int)jint(o, ol, "code", 0),
                                  .what = what,
                                  .series = sl >= 0 ? series : NULL,
                                  .series_len = sl >= 0 ? (uint32_t)strlen(series) : 0,
                                  .series_id = (uint64_t)jint(o, ol, "series_id", 0),
                                  .ts_min = jint(o, ol, "ts_min", 0),
                                  .ts_max = jint(o, ol, "ts_max", 0),
                                  .points = (uint64_t)jint(o, ol, "points", 0)};
    for (int k = QT_VERIFY_MANIFEST; k <= QT_VERIFY_BACKUP; k++)
        if (strcmp(kind, qt_verify_kind_name((enum qt_verify_kind)k)) == 0)
            f.kind = (enum qt_verify_kind)k;
    cli_finding(cv, &f);
}

static int
remote_verify(const struct cli *c)
{
    char q[64] = "verify";
    cli_qarg(q, sizeof(q), "quarantine", c->quarantine ? "true" : NULL);
    struct cli_body cb = {0};
    int rc = cli_call(c, "POST", q, &cb);
    const char *j = cb.b.p;
    size_t n = cb.b.len;
    if (rc != 0) {
        qt_sbuf_deinit(&cb.b);
        return rc;
    }
    const char *list = memmem(j, n, "\"findings\":[", 12);
    size_t pos = list != NULL ? (size_t)(list - j) + 12 : n, a, b;
    struct cli_verify cv = {0};
    while (jnext_object(j, n, &pos, &a, &b))
        remote_finding(j + a, b - a, &cv);
    struct qt_verify_result r = {.files = (uint32_t)jint(j, n, "files", 0),
                                 .segments = (uint32_t)jint(j, n, "segments", 0),
                                 .damaged_files = (uint32_t)jint(j, n, "damaged_files", 0),
                                 .quarantined = (uint32_t)jint(j, n, "quarantined", 0),
                                 .blocks = (uint64_t)jint(j, n, "blocks", 0),
                                 .points = (uint64_t)jint(j, n, "points", 0),
                                 .bytes = (uint64_t)jint(j, n, "bytes", 0),
                                 .findings = (uint64_t)jint(j, n, "findings_total", 0),
                                 .ns = (uint64_t)jint(j, n, "ns", 0)};
    if (cv.printed < r.findings)
        printf("(%" PRIu64 " more finding(s) not listed by the server)\n", r.findings - cv.printed);
    print_verify(c->server, &r);
    bool damaged = jbool(j, n, "damaged");
    qt_sbuf_deinit(&cb.b);
    return damaged ? 1 : 0;
}

int
qt_cli_verify(int argc, char **argv)
{
    struct cli c;
    int rc = cli_parse(argc, argv, &c);
    static const char usage[] =
        "usage: qtdb verify (--data DIR | --backup DIR | --server URL [--timeout S]) "
        "[--quarantine]\n"
        "exit: 0 nothing damaged, 1 damage found or failure\n";
    if (rc != 0 || c.help || (c.data != NULL) + (c.backup != NULL) + (c.server != NULL) != 1)
        return cli_usage(usage, c.help && rc == 0);
    if (c.server != NULL)
        return remote_verify(&c);
    qt_log_set_level((enum qt_log_level)(QT_LOG_ERROR + 1)); /* findings are printed */
    cli_signals();
    struct cli_progress p;
    struct cli_verify cv = {.p = &p};
    struct qt_verify_opts o = {.quarantine = c.quarantine,
                               .report = cli_finding,
                               .arg = &cv,
                               .ctl = cli_ctl(&p, "verify", true)};
    struct qt_verify_result r;
    rc = qt_verify_dir(c.data != NULL ? c.data : c.backup, &o, &r);
    cli_progress_end(&p);
    if (rc != 0 && rc != QT_ECORRUPT)
        return cli_fail(c.cmd, rc);
    print_verify(c.data != NULL ? c.data : c.backup, &r);
    return rc == 0 ? 0 : 1;
}

/* ---- export ---------------------------------------------------------------------------------- */

static int
cli_stdout(void *arg, const char *buf, size_t len)
{
    (void)arg;
    return fwrite(buf, 1, len, stdout) == len ? 0 : -EIO;
}

static void
print_export(const struct qt_export_result *r, bool remote)
{
    if (remote)
        fprintf(stderr, "exported %" PRIu64 " lines\n", r->lines);
    else
        fprintf(stderr,
                "exported %" PRIu64 " points of %" PRIu64 " series in %" PRIu64 " lines%s\n",
                r->points, r->series, r->lines,
                r->skipped > 0 ? " (some values skipped: NaN, Inf or "
                                 "line breaks have no line protocol form)"
                               : "");
}

static int
remote_export(const struct cli *c)
{
    char *q = qt_malloc(QT_SRV_QUERY_TEXT_MAX / 2);
    if (q == NULL)
        return cli_fail(c->cmd, QT_ENOMEM);
    snprintf(q, QT_SRV_QUERY_TEXT_MAX / 2, "export");
    cli_qarg(q, QT_SRV_QUERY_TEXT_MAX / 2, "q", c->selector);
    cli_qarg(q, QT_SRV_QUERY_TEXT_MAX / 2, "from", c->from);
    cli_qarg(q, QT_SRV_QUERY_TEXT_MAX / 2, "to", c->to);
    cli_qarg(q, QT_SRV_QUERY_TEXT_MAX / 2, "format", c->format);
    struct cli_body cb = {.stream = true};
    int rc = cli_call(c, "GET", q, &cb);
    fflush(stdout);
    qt_free(q);
    if (rc != 0 && cb.lines == 0) {
        qt_sbuf_deinit(&cb.b);
        return rc;
    }
    static const char mark[] = "# qtdb export failed: ";
    const char *fail = memmem(cb.tail, cb.tail_len, mark, sizeof(mark) - 1);
    qt_sbuf_deinit(&cb.b);
    if (fail != NULL) {
        fprintf(stderr, "qtdb %s: the server failed mid-way: %.*s", c->cmd,
                (int)(cb.tail + cb.tail_len - fail), fail + sizeof(mark) - 1);
        return 1;
    }
    if (rc != 0)
        return rc;
    struct qt_export_result r = {.lines = cb.lines};
    if (c->format != NULL && strcmp(c->format, "csv") == 0 && r.lines > 0)
        r.lines--; /* the header */
    print_export(&r, true);
    return 0;
}

static const char export_usage[] =
    "usage: qtdb export 'MEASUREMENT[,tag=value...]' [--from T] [--to T] --format lp|csv\n"
    "                   (--data DIR | --server URL [--timeout S])\n"
    "  T  RFC 3339 (2026-11-15T00:00:00Z) or integer nanoseconds; the range is [from, to)\n";

int
qt_cli_export(int argc, char **argv)
{
    struct cli c;
    int rc = cli_parse(argc, argv, &c);
    if (rc != 0 || c.help || c.selector == NULL || c.format == NULL)
        return cli_usage(export_usage, c.help && rc == 0);
    struct qt_export_opts o = {.t0 = INT64_MIN, .t1 = INT64_MAX, .out = cli_stdout};
    if ((c.from != NULL && cli_instant(c.from, &o.t0) != 0) ||
        (c.to != NULL && cli_instant(c.to, &o.t1) != 0) ||
        (strcmp(c.format, "lp") != 0 && strcmp(c.format, "csv") != 0))
        return cli_usage(export_usage, false);
    if (c.server != NULL)
        return remote_export(&c);
    o.format = strcmp(c.format, "csv") == 0 ? QT_EXPORT_CSV : QT_EXPORT_LP;
    char sel[QT_SERIES_KEY_MAX + 1];
    struct qt_tag_matcher tags[QT_TAGS_MAX];
    snprintf(sel, sizeof(sel), "%s", c.selector);
    rc = qt_export_parse_selector(sel, &o.measurement, tags, QT_TAGS_MAX, &o.ntags);
    if (rc != 0)
        return cli_fail(c.cmd, rc);
    o.tags = tags;
    struct qt_db *db = NULL;
    qt_log_set_level(QT_LOG_WARN);
    if ((rc = cli_open(&c, true, &db)) != 0)
        return rc;
    cli_signals();
    struct cli_progress p;
    o.ctl = cli_ctl(&p, "export", false);
    struct qt_export_result r;
    rc = qt_export(db, &o, &r);
    fflush(stdout);
    cli_progress_end(&p);
    qt_db_close(db);
    if (rc != 0)
        return cli_fail(c.cmd, rc);
    print_export(&r, false);
    return 0;
}
