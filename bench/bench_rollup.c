/*
 * bench_rollup.c -- what rollups buy: the same aggregate queries over a
 * 30-day range answered from raw points and from rollups, in the same run.
 *
 * Data: QT_BENCH_STATIONS (default 40) air stations in 10 districts, one
 * reading every QT_BENCH_STEP_S (10) seconds for 30 days (1-day shards),
 * fields pm25 (float) and aqi (integer): 20.7 M points by default.  Rollups air=1h,1d are computed
 * once (the cost is reported).  Each query runs QT_BENCH_RUNS (7) times with the rules set (the
 * planner reads rollups; the stats must say so) and with no rules (raw); medians in ms and their
 * ratio.  The two answers are compared byte for byte.
 */
#include "bench/benchutil.h"
#include "format/qt_err.h"
#include "query/exec.h"
#include "storage/db.h"
#include "storage/rollup.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DAY_NS  86400000000000ll
#define MIN_NS  60000000000ll
#define T_END   (20770ll * DAY_NS) /* 2026-11-13T00:00:00Z */
#define DAYS    30
#define BATCH   4096
#define RUNS_MX 31

static void
die(const char *what, int rc)
{
    fprintf(stderr, "bench_rollup: %s: %s (%s)\n", what, qt_strerror(rc), qt_err_detail());
    exit(1);
}

struct buf {
    char *p;
    size_t len, cap;
};

static int
out_fn(void *arg, const char *s, size_t n)
{
    struct buf *b = arg;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 4096;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            return -1;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static void
load(struct qt_db *db, uint32_t stations, int64_t step)
{
    static struct qt_batch_line lines[BATCH];
    static struct qt_batch_field fields[BATCH][2];
    static char keys[BATCH][64];
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    uint32_t n = 0;
    for (int64_t t = T_END - DAYS * DAY_NS; t < T_END; t += step)
        for (uint32_t s = 0; s < stations; s++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            snprintf(keys[n], sizeof(keys[n]), "air,district=d%02u,station=s%04u", s % 10, s);
            double pm = 20.0 + (double)(rng % 1500) / 10.0;
            fields[n][0] = (struct qt_batch_field){
                .name = "pm25", .name_len = 4, .vtype = QT_VT_FLOAT, .v.f = pm};
            fields[n][1] = (struct qt_batch_field){
                .name = "aqi", .name_len = 3, .vtype = QT_VT_INT, .v.i = (int64_t)(pm * 1.4)};
            lines[n] = (struct qt_batch_line){.key = keys[n],
                                              .key_len = (uint32_t)strlen(keys[n]),
                                              .ts = t,
                                              .n_fields = 2,
                                              .fields = fields[n]};
            if (++n == BATCH) {
                struct qt_write_result wr;
                int rc = qt_db_write(db, lines, n, NULL, NULL, &wr);
                if (rc != 0 || wr.lines_ok != n)
                    die("write", rc != 0 ? rc : QT_EINVAL);
                n = 0;
            }
        }
    struct qt_write_result wr;
    int rc = n > 0 ? qt_db_write(db, lines, n, NULL, NULL, &wr) : 0;
    if (rc == 0)
        rc = qt_db_flush(db);
    if (rc != 0)
        die("write", rc);
}

/* Median ms of runs of text; the answer into *b, the source into src. */
static double
time_query(struct qt_db *db, const char *text, uint32_t runs, struct buf *b, char *src)
{
    double ms[RUNS_MX];
    for (uint32_t i = 0; i < runs; i++) {
        b->len = 0;
        struct qt_qry_stats st;
        struct qt_qry_error err;
        double t0 = qt_bench_now_s();
        int rc = qt_qry_run(db, text, strlen(text), T_END, NULL, QT_OUT_JSON, out_fn, b, &st, &err);
        ms[i] = (qt_bench_now_s() - t0) * 1e3;
        if (rc != 0) {
            fprintf(stderr, "bench_rollup: %s: %s\n", text, err.message);
            exit(1);
        }
        snprintf(src, 32, "%s", st.source);
    }
    return qt_bench_median(ms, runs);
}

int
main(void)
{
    uint32_t stations = qt_bench_env_u32("QT_BENCH_STATIONS", 40);
    uint32_t step_s = qt_bench_env_u32("QT_BENCH_STEP_S", 10);
    step_s = step_s < 1 ? 1 : step_s;
    uint32_t runs = qt_bench_env_u32("QT_BENCH_RUNS", 7);
    runs = runs < 1 ? 1 : runs > RUNS_MX ? RUNS_MX : runs;
    char dir[512];
    const char *root = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof(dir), "%s/qtdb-bench-rollup-%d", root, (int)getpid());
    struct qt_db_opts o = {.dir = dir, .shard_duration_ns = DAY_NS, .no_auto_ops = true};
    struct qt_db *db = NULL;
    int rc = qt_db_open(&o, &db);
    if (rc != 0)
        die("open", rc);
    double t0 = qt_bench_now_s();
    load(db, stations, (int64_t)step_s * 1000000000ll);
    double load_s = qt_bench_now_s() - t0;
    if ((rc = qt_db_set_rollups(db, "air=1h,1d")) != 0)
        die("rules", rc);
    struct qt_rollup_result rr;
    t0 = qt_bench_now_s();
    if ((rc = qt_db_rollup(db, 0, &rr)) != 0)
        die("rollup", rc);
    double roll_s = qt_bench_now_s() - t0;
    uint64_t points = (uint64_t)stations * DAYS * (86400 / step_s) * 2;
    printf("%u stations x 30 days x 1/%us x 2 fields = %.1f M points loaded in %.1f s; rollups "
           "air=1h,1d: %u shards, %llu bucket points in %.2f s (%.1f M raw points/s)\n",
           stations, step_s, (double)points / 1e6, load_s, rr.shards,
           (unsigned long long)rr.buckets, roll_s, (double)points / roll_s / 1e6);
    /* {selector, stages, the source the planner must pick} */
    static const char *const qs[][3] = {
        {"air.pm25", "max by 1h, district", "rollup:1h"},
        {"air.pm25", "count, min, max by 1h, station", "rollup:1h"},
        {"air.aqi", "avg, max by 3h, district", "rollup:1h"},
        {"air.pm25", "max by 1d tz \"Asia/Shanghai\", district", "rollup:1h"},
        {"air.pm25", "min, max by 7d tz \"Asia/Shanghai\"", "rollup:1h"},
        /* UTC days of 1-day shards: raw block statistics, no decoding */
        {"air.pm25", "count, min, max by 1d, district", "raw"},
    };
    char range[96];
    snprintf(range, sizeof(range), "%lldns, %lldns", (long long)(T_END - DAYS * DAY_NS),
             (long long)T_END);
    printf("%-58s %10s %10s %8s  %s\n", "query (30 days)", "raw ms", "rollup ms", "speed-up",
           "source");
    struct buf a = {0}, b = {0};
    bool all_ok = true;
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        char q[256], sa[32], sb[32];
        snprintf(q, sizeof(q), "%s [%s) | %s", qs[i][0], range, qs[i][1]);
        if ((rc = qt_db_set_rollups(db, NULL)) != 0)
            die("rules", rc);
        double raw = time_query(db, q, runs, &b, sb);
        if ((rc = qt_db_set_rollups(db, "air=1h,1d")) != 0)
            die("rules", rc);
        double ru = time_query(db, q, runs, &a, sa);
        bool same = a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
        bool used = strcmp(sa, qs[i][2]) == 0;
        all_ok = all_ok && same && used;
        char shown[64];
        snprintf(shown, sizeof(shown), "%s | %s", qs[i][0], qs[i][1]);
        printf("%-58s %10.2f %10.2f %7.1fx  %s%s%s\n", shown, raw, ru, raw / ru, sa,
               same ? "" : "  ERROR: answers differ", used ? "" : "  ERROR: unexpected source");
    }
    free(a.p);
    free(b.p);
    qt_db_close(db);
    qt_bench_rm_rf(dir);
    if (!all_ok) {
        printf("ERROR: a rollup answer differs from raw, or the planner picked another source\n");
        return 1;
    }
    return 0;
}
