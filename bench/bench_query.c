/*
 * bench_query.c -- query executor benchmark on the city dataset
 * (tests/citygen.h).  Not a test: it reports medians against targets.
 *
 *   aggregate scan rate with block statistics   points/s per core (>= 200M)
 *   full-decode scan rate (where value > x)     points/s per core (>= 50M)
 *   last over 100k series, one series per query median and p99 (p99 < 1 ms)
 *   the six example queries                     median latency
 *
 * Data: one day (QT_BENCH_HOURS, default 24) of QT_BENCH_STATIONS (default
 * 2000) city series, ingested in arrival order with a flush after every
 * hour of arrivals (so blocks hold about an hour of a series, as an hourly
 * flush would write them); plus a second database of 100,000 meter series
 * for `last`.  Every query runs in this thread (one core), output to a
 * byte-counting sink, QT_BENCH_RUNS timed runs (default 7) after one
 * warm-up; rates use the thread's CPU time, latencies wall time.
 * Environment: QT_BENCH_DIR (default /tmp); QT_BENCH_FLUSH_HOURS (default 1:
 * blocks of about an hour; 24 gives blocks of up to QT_BLOCK_POINTS_MAX);
 * QT_BENCH_LOOP="query" runs only that query (for profiling).
 */
#include "bench/benchutil.h"
#include "format/qt_alloc.h"
#include "format/qt_err.h"
#include "format/qt_log.h"
#include "query/exec.h"
#include "storage/db.h"
#include "tests/citygen.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_LINES   5000
#define HOUR_NS       (3600ll * 1000000000ll)
#define DAY0          1794700800000000000ll /* 2026-11-15T00:00:00Z, citygen's start */
#define RUNS_MAX      51
#define LAST_QUERIES  2000
#define LAST_SERIES   100000u
#define TARGET_STATS  200e6
#define TARGET_DECODE 50e6
#define TARGET_LAST   1e-3

static double
wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- loading ----------------------------------------------------------------------- */

struct batch {
    struct qt_batch_line lines[BATCH_LINES];
    struct qt_batch_field fields[BATCH_LINES][QT_CITY_FIELDS_MAX];
    char keys[BATCH_LINES][160];
    uint32_t n;
};

static void
batch_add(struct batch *b, const struct qt_city_point *p)
{
    qt_city_batch_line(p, b->keys[b->n], sizeof(b->keys[0]), b->fields[b->n], &b->lines[b->n]);
    b->n++;
}

static void
batch_write(struct qt_db *db, struct batch *b)
{
    struct qt_write_result res;
    if (b->n > 0 &&
        (qt_db_write(db, b->lines, b->n, NULL, NULL, &res) != 0 || res.lines_ok != b->n)) {
        fprintf(stderr, "bench_query: write failed: %s\n", qt_err_detail());
        exit(1);
    }
    b->n = 0;
}

static struct qt_db *
open_db(const char *dir)
{
    struct qt_db_opts o = {
        .dir = dir, .fsync = QT_FSYNC_NONE, .no_background = true, .mem_budget_bytes = 2ull << 30};
    struct qt_db *db = NULL;
    int rc = qt_db_open(&o, &db);
    if (rc != 0) {
        fprintf(stderr, "bench_query: open %s: %s (%s)\n", dir, qt_strerror(rc), qt_err_detail());
        exit(1);
    }
    return db;
}

/* Ingest cfg's stream in arrival order, flushing after every
 * QT_BENCH_FLUSH_HOURS of arrivals; returns the points written. */
static uint64_t
load(struct qt_db *db, const struct qt_city_config *cfg)
{
    struct qt_city_gen *g = NULL;
    struct batch *b = malloc(sizeof(*b));
    if (b == NULL || qt_city_gen_create(cfg, &g) != 0)
        exit(1);
    b->n = 0;
    uint64_t points = 0;
    int64_t every = (int64_t)qt_bench_env_u32("QT_BENCH_FLUSH_HOURS", 1) * HOUR_NS;
    int64_t next_flush = cfg->start_ns + every;
    struct qt_city_point p;
    while (qt_city_next(g, &p) == 1) {
        if (p.arrival_ns >= next_flush) {
            batch_write(db, b);
            if (qt_db_flush(db) != 0)
                exit(1);
            next_flush += every;
        }
        batch_add(b, &p);
        points += p.nfields;
        if (b->n == BATCH_LINES)
            batch_write(db, b);
    }
    batch_write(db, b);
    if (qt_db_flush(db) != 0)
        exit(1);
    qt_city_gen_destroy(g);
    free(b);
    return points;
}

/* ---- running ------------------------------------------------------------------------- */

static int
sink(void *arg, const char *buf, size_t len)
{
    (void)buf;
    *(uint64_t *)arg += len;
    return 0;
}

struct timing {
    double wall_median, cpu_median;
    struct qt_qry_stats st;
};

/* One warm-up and `runs` timed runs of text. */
static void
timed(struct qt_db *db, const char *text, int64_t now, int runs, struct timing *t)
{
    double wall[RUNS_MAX], cpu[RUNS_MAX];
    struct qt_qry_limits lim = {.rows_max = 100000000, .deadline_ms = 600000};
    for (int r = -1; r < runs; r++) {
        uint64_t bytes = 0;
        struct qt_qry_error err;
        double w0 = wall_s(), c0 = qt_bench_cpu_s();
        int rc =
            qt_qry_run(db, text, strlen(text), now, &lim, QT_OUT_JSON, sink, &bytes, &t->st, &err);
        double w1 = wall_s(), c1 = qt_bench_cpu_s();
        if (rc != 0) {
            fprintf(stderr, "bench_query: %s: %s\n", text, err.message);
            exit(1);
        }
        if (r >= 0) {
            wall[r] = w1 - w0;
            cpu[r] = c1 - c0;
        }
    }
    qsort(wall, (size_t)runs, sizeof(double), dbl_cmp);
    qsort(cpu, (size_t)runs, sizeof(double), dbl_cmp);
    t->wall_median = wall[runs / 2];
    t->cpu_median = cpu[runs / 2];
}

static void
row(const char *what, const char *value, const char *target, int pass)
{
    printf("  %-52s %-22s %-14s %s\n", what, value, target, pass < 0 ? "" : pass ? "PASS" : "MISS");
}

static void
rate_row(const char *what, struct qt_db *db, const char *q, int runs, double target)
{
    struct timing t;
    timed(db, q, DAY0 + 24 * HOUR_NS, runs, &t);
    double rate = (double)t.st.points / t.cpu_median;
    char v[64], tg[32];
    snprintf(v, sizeof(v), "%.0fM pts/s", rate / 1e6);
    snprintf(tg, sizeof(tg), ">= %.0fM", target / 1e6);
    row(what, v, tg, rate >= target);
    printf("      %s\n      %llu points (%llu from statistics, %llu decoded), %llu series, "
           "%.2f ms wall, %.2f ms cpu\n",
           q, (unsigned long long)t.st.points, (unsigned long long)t.st.stats_points,
           (unsigned long long)t.st.decoded_points, (unsigned long long)t.st.series,
           t.wall_median * 1e3, t.cpu_median * 1e3);
}

/* `last` of one random meter per query over the 100k-series database. */
static void
last_rows(const char *base, int runs)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/bench-query-last", base);
    qt_bench_rm_rf(dir);
    struct qt_db *db = open_db(dir);
    struct qt_city_config cfg;
    qt_city_config_default(&cfg, 5);
    memset(cfg.stations, 0, sizeof(cfg.stations));
    cfg.stations[QT_CITY_METER] = LAST_SERIES;
    cfg.duration_ns = 2 * HOUR_NS;
    uint64_t pts = load(db, &cfg);
    double *lat = malloc(LAST_QUERIES * sizeof(double));
    uint64_t rng = 0x9e3779b97f4a7c15ull, bytes = 0;
    struct qt_qry_error err;
    for (int i = -100; i < LAST_QUERIES; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        char q[128];
        snprintf(q, sizeof(q), "meter.reading{meter=\"m%06u\"} | last",
                 (unsigned)((rng >> 33) % LAST_SERIES) + 1);
        double w0 = wall_s();
        if (qt_qry_run(db, q, strlen(q), DAY0, NULL, QT_OUT_JSON, sink, &bytes, NULL, &err) != 0) {
            fprintf(stderr, "bench_query: %s: %s\n", q, err.message);
            exit(1);
        }
        if (i >= 0)
            lat[i] = wall_s() - w0;
    }
    qsort(lat, LAST_QUERIES, sizeof(double), dbl_cmp);
    char v[64];
    snprintf(v, sizeof(v), "%.1f us", lat[LAST_QUERIES / 2] * 1e6);
    row("last, one of 100k series: median", v, "", -1);
    snprintf(v, sizeof(v), "%.1f us", lat[LAST_QUERIES * 99 / 100] * 1e6);
    row("last, one of 100k series: p99", v, "< 1 ms", lat[LAST_QUERIES * 99 / 100] < TARGET_LAST);
    struct timing t;
    timed(db, "meter.reading{district=\"xihu\"} | last", DAY0, runs, &t);
    snprintf(v, sizeof(v), "%.2f ms", t.wall_median * 1e3);
    char what[96];
    snprintf(what, sizeof(what), "last, every xihu meter (%llu rows): median",
             (unsigned long long)t.st.rows);
    row(what, v, "", -1);
    printf("      (%llu series, %llu points)\n", (unsigned long long)LAST_SERIES,
           (unsigned long long)pts);
    free(lat);
    qt_db_close(db);
    qt_bench_rm_rf(dir);
}

static const char *const examples[6] = {
    "water.pressure{site=\"w0012\"} [2026-11-15T00:00:00Z, 2026-11-15T06:00:00Z)",
    "air.pm25{station=\"a0001\"} [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | avg, max by 1h",
    "grid.voltage [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | avg by 1h, district",
    "air.pm25 [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | where value > 150 | count by station",
    "air.pm25 [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | count, sum, min, max",
    "grid.voltage{district=\"xihu\"} | last",
};

int
main(void)
{
    qt_log_set_level(QT_LOG_WARN);
    const char *base = getenv("QT_BENCH_DIR") ? getenv("QT_BENCH_DIR") : "/tmp";
    int runs = (int)qt_bench_env_u32("QT_BENCH_RUNS", 7);
    runs = runs > RUNS_MAX ? RUNS_MAX : runs;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/bench-query-city", base);
    qt_bench_rm_rf(dir);
    struct qt_city_config cfg;
    qt_city_config_default(&cfg, qt_bench_env_u32("QT_BENCH_STATIONS", 2000));
    cfg.duration_ns = (int64_t)qt_bench_env_u32("QT_BENCH_HOURS", 24) * HOUR_NS;
    struct qt_db *db = open_db(dir);
    double t0 = wall_s();
    uint64_t pts = load(db, &cfg);
    printf("bench_query: %llu series, %llu points over %u h, flushed every %u h, loaded in %.1f "
           "s; medians of %d runs, one thread\n",
           (unsigned long long)qt_city_series_count(&cfg), (unsigned long long)pts,
           qt_bench_env_u32("QT_BENCH_HOURS", 24), qt_bench_env_u32("QT_BENCH_FLUSH_HOURS", 1),
           wall_s() - t0, runs);
    const char *loop = getenv("QT_BENCH_LOOP"); /* profiling: run one query many times */
    if (loop != NULL) {
        struct timing t;
        for (uint32_t i = qt_bench_env_u32("QT_BENCH_LOOP_N", 20); i > 0; i--)
            timed(db, loop, DAY0 + 24 * HOUR_NS, RUNS_MAX, &t);
        printf("%s: %.3f ms wall, %llu points, %.0fM pts/s\n", loop, t.wall_median * 1e3,
               (unsigned long long)t.st.points, (double)t.st.points / t.cpu_median / 1e6);
        qt_db_close(db);
        return 0;
    }
    printf("  %-52s %-22s %-14s %s\n", "measure", "value", "target", "");
    rate_row("aggregate scan, block statistics (grid.voltage by 1h)", db,
             "grid.voltage [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | count, sum, min, max, "
             "avg by 1h, district",
             runs, TARGET_STATS);
    rate_row("full-decode scan (where value > x)", db,
             "grid.voltage [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | where value > 10.4 | "
             "count, max by 1h, district",
             runs, TARGET_DECODE);
    for (int i = 0; i < 6; i++) {
        struct timing t;
        timed(db, examples[i], DAY0 + 24 * HOUR_NS, runs, &t);
        char v[64], what[64];
        snprintf(v, sizeof(v), "%.3f ms", t.wall_median * 1e3);
        snprintf(what, sizeof(what), "example %d (%llu rows, %llu points)", i + 1,
                 (unsigned long long)t.st.rows, (unsigned long long)t.st.points);
        row(what, v, "", -1);
        printf("      %s\n", examples[i]);
    }
    qt_db_close(db);
    qt_bench_rm_rf(dir);
    last_rows(base, runs); /* its own database, after the city's is gone */
    return 0;
}
