/*
 * ops_cli.c -- shards, compact, backup, restore, verify and export
 * subcommands (ops_cli.h, design/ops.md "CLI").
 *
 * Offline mode only for now: each command opens the data directory itself
 * (which fails with "in use" while a server runs there).  Commands that do
 * not change the database open it read-only.  A SIGINT sets a cancel flag
 * the operation polls between steps; a second SIGINT kills the process
 * (the operations are crash-safe anyway).
 */
#include "server/ops_cli.h"

#include "format/qt_alloc.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "query/qtime.h"
#include "storage/backup.h"
#include "storage/compact.h"
#include "storage/db.h"
#include "storage/export.h"
#include "storage/retention.h"
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
    const char *data, *to, *from, *backup, *shard, *format, *retention, *selector;
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
            cli_opt(argc, argv, &i, "--retention", &c->retention))
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
                "qtdb %s: %s is in use by a running server; stop it first (--server "
                "URL mode is not available yet)\n",
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

/* ---- shards ------------------------------------------------------------------------------ */

int
qt_cli_shards(int argc, char **argv)
{
    struct cli c;
    int rc = cli_parse(argc, argv, &c);
    if (rc != 0 || c.help)
        return rc != 0 ? rc : cli_usage("usage: qtdb shards --data DIR\n", true);
    struct qt_db *db = NULL;
    qt_log_set_level(QT_LOG_WARN);
    if ((rc = cli_open(&c, true, &db)) != 0)
        return rc;
    struct qt_shard_info *si = NULL;
    uint32_t n = 0;
    rc = qt_db_shards(db, &si, &n);
    if (rc != 0) {
        qt_db_close(db);
        return cli_fail(c.cmd, rc);
    }
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

static const char compact_usage[] =
    "usage: qtdb compact --data DIR (--shard ID | --all) [--retention SPEC]\n"
    "  ID    a shard start as `qtdb shards` lists it (ns) or RFC 3339\n"
    "  SPEC  retention rules applied first, e.g. air=30d,water*=7d,*=400d\n";

int
qt_cli_compact(int argc, char **argv)
{
    struct cli c;
    int rc = cli_parse(argc, argv, &c);
    if (rc != 0 || c.help || (c.shard == NULL) == !c.all)
        return cli_usage(compact_usage, c.help && rc == 0);
    struct qt_compact_opts o = {.all = c.all};
    if (c.shard != NULL && cli_instant(c.shard, &o.shard_start) != 0)
        return cli_usage(compact_usage, false);
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
    char in[24], out[24];
    cli_size(r.bytes_in, in, sizeof(in));
    cli_size(r.bytes_out, out, sizeof(out));
    double s = (double)r.ns / 1e9;
    if (rc == 0 || r.shards > 0)
        printf("compacted %u shard(s) (%u skipped): %u segments, %" PRIu64 " -> %" PRIu64
               " points (%" PRIu64 " past retention), %s -> %s in %.2f s (%.1f M points/s)\n",
               r.shards, r.shards_skipped, r.segments_in, r.points_in, r.points_out,
               r.points_trimmed, in, out, s, s > 0 ? (double)r.points_in / s / 1e6 : 0.0);
    int crc = qt_db_close(db);
    rc = rc != 0 ? rc : crc;
    return rc != 0 ? cli_fail(c.cmd, rc) : 0;
}

/* ---- backup, restore ------------------------------------------------------------------------ */

int
qt_cli_backup(int argc, char **argv)
{
    struct cli c;
    int rc = cli_parse(argc, argv, &c);
    static const char usage[] = "usage: qtdb backup --data DIR --to DIR [--incremental] [--copy]\n";
    if (rc != 0 || c.help || c.to == NULL)
        return cli_usage(usage, c.help && rc == 0);
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
    char total[24], written[24];
    cli_size(r.bytes, total, sizeof(total));
    cli_size(r.bytes_written, written, sizeof(written));
    double s = (double)r.ns / 1e9;
    printf("backup %s/%s: %u files, %s (%u copied, %u linked from the data directory, %u from "
           "%s), %s written in %.2f s (%.1f MiB/s read)\n",
           c.to, r.id, r.files, total, r.files_copied, r.files_linked_data, r.files_linked_prev,
           r.parent[0] ? r.parent : "-", written, s,
           s > 0 ? (double)r.bytes_read / s / 1048576.0 : 0.0);
    return 0;
}

int
qt_cli_restore(int argc, char **argv)
{
    struct cli c;
    int rc = cli_parse(argc, argv, &c);
    static const char usage[] = "usage: qtdb restore --from DIR --data NEWDIR [--force]\n"
                                "  DIR   a backup (TARGET/<id>) or a target: its newest backup\n";
    if (rc != 0 || c.help || c.from == NULL || c.data == NULL)
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
    if (v->p->drawn)
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

int
qt_cli_verify(int argc, char **argv)
{
    struct cli c;
    int rc = cli_parse(argc, argv, &c);
    static const char usage[] = "usage: qtdb verify (--data DIR | --backup DIR) [--quarantine]\n";
    if (rc != 0 || c.help || (c.data == NULL) == (c.backup == NULL))
        return cli_usage(usage, c.help && rc == 0);
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
    char total[24];
    cli_size(r.bytes, total, sizeof(total));
    double s = (double)r.ns / 1e9;
    printf("verified %s%s: %u files (%u segments), %" PRIu64 " blocks, %" PRIu64
           " points, %s in %.2f s (%.1f MiB/s); %u damaged file(s), %" PRIu64 " finding(s)%s\n",
           r.is_backup ? "backup " : "", c.data != NULL ? c.data : c.backup, r.files, r.segments,
           r.blocks, r.points, total, s, s > 0 ? (double)r.bytes / s / 1048576.0 : 0.0,
           r.damaged_files, r.findings, "");
    if (r.quarantined > 0)
        printf("quarantined %u segment(s) into %s/quarantine; the rest serves\n", r.quarantined,
               c.data);
    return rc == 0 ? 0 : 1;
}

/* ---- export ---------------------------------------------------------------------------------- */

static int
cli_stdout(void *arg, const char *buf, size_t len)
{
    (void)arg;
    return fwrite(buf, 1, len, stdout) == len ? 0 : -EIO;
}

static const char export_usage[] =
    "usage: qtdb export 'MEASUREMENT[,tag=value...]' [--from T] [--to T] --format lp|csv "
    "--data DIR\n"
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
    fprintf(stderr, "exported %" PRIu64 " points of %" PRIu64 " series in %" PRIu64 " lines%s\n",
            r.points, r.series, r.lines,
            r.skipped > 0 ? " (some values skipped: NaN, Inf or "
                            "line breaks have no line protocol form)"
                          : "");
    return 0;
}
