/*
 * bench_storage.c -- storage engine benchmark on the city dataset
 * (tests/citygen.h).  Not a test: it reports, with targets, medians of
 * QT_BENCH_RUNS runs (default 3) where a figure is cheap to repeat.
 *
 *   ingest, fsync interval:1000, 1 writer      points/s (wall) and per CPU-second
 *   ingest, fsync always, 4 writers             points/s
 *   flush                                       points/s
 *   WAL replay after kill                       points/s
 *   bytes on disk per point after flush         (segments only)
 *   resident bytes per series at 1M series      (catalog + last-value cache + tables)
 *
 * Environment: QT_BENCH_STATIONS (default 10000), QT_BENCH_HOURS (default 6),
 * QT_BENCH_DIR (default /tmp), QT_BENCH_RUNS (default 3), QT_BENCH_ONLY=ingest to run
 * only the single-writer ingest (for profiling).
 */
#include "bench/benchutil.h"
#include "format/qt_alloc.h"
#include "format/qt_err.h"
#include "format/qt_log.h"
#include "storage/db.h"
#include "tests/citygen.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH_LINES 5000

/* A batch of city lines in the engine's write format. */
struct batch {
    struct qt_batch_line lines[BATCH_LINES];
    struct qt_batch_field fields[BATCH_LINES][QT_CITY_FIELDS_MAX];
    char keys[BATCH_LINES][160];
    uint32_t n;
    uint64_t points;
};

/* Canonical group key: measurement, then tags sorted by key. */

/* Fill b with up to BATCH_LINES points; false when the generator is done. */
static bool
batch_fill(struct qt_city_gen *g, struct batch *b)
{
    b->n = 0;
    b->points = 0;
    struct qt_city_point p;
    while (b->n < BATCH_LINES && qt_city_next(g, &p) == 1) {
        qt_city_batch_line(&p, b->keys[b->n], sizeof(b->keys[b->n]), b->fields[b->n],
                           &b->lines[b->n]);
        b->points += p.nfields;
        b->n++;
    }
    return b->n > 0;
}

static struct qt_db *
bench_open(const char *dir, enum qt_fsync_policy pol, uint32_t ms, size_t budget)
{
    struct qt_db_opts o = {.dir = dir,
                           .fsync = pol,
                           .fsync_interval_ms = ms,
                           .mem_budget_bytes = budget,
                           .flush_age_ms = 3600000};
    struct qt_db *db = NULL;
    int rc = qt_db_open(&o, &db);
    if (rc != 0) {
        fprintf(stderr, "bench: open %s: %s (%s)\n", dir, qt_strerror(rc), qt_err_detail());
        exit(1);
    }
    return db;
}

static void
city_cfg(struct qt_city_config *cfg)
{
    qt_city_config_default(cfg, qt_bench_env_u32("QT_BENCH_STATIONS", 10000));
    cfg->duration_ns = (int64_t)qt_bench_env_u32("QT_BENCH_HOURS", 6) * 3600ll * 1000000000ll;
}

struct ingest_result {
    double pts_per_s, pts_per_cpu_s, flush_pts_per_s, disk_bytes_per_pt;
    uint64_t points, series;
};

/* One run: ingest the dataset with one writer, then flush. */
static void
run_ingest(const char *dir, struct ingest_result *r)
{
    qt_bench_rm_rf(dir);
    struct qt_db *db = bench_open(dir, QT_FSYNC_INTERVAL, 1000, 4ull << 30);
    struct qt_city_config cfg;
    city_cfg(&cfg);
    struct qt_city_gen *g;
    if (qt_city_gen_create(&cfg, &g) != 0)
        exit(1);
    struct batch *b = malloc(sizeof(*b));
    double wall = 0, cpu = 0;
    uint64_t points = 0;
    while (batch_fill(g, b)) {
        double t0 = qt_bench_now_s(), c0 = qt_bench_cpu_s();
        struct qt_write_result res;
        if (qt_db_write(db, b->lines, b->n, NULL, NULL, &res) != 0 || res.lines_ok != b->n)
            exit(1);
        wall += qt_bench_now_s() - t0;
        cpu += qt_bench_cpu_s() - c0;
        points += b->points;
    }
    double t0 = qt_bench_now_s();
    if (qt_db_flush(db) != 0)
        exit(1);
    double flush = qt_bench_now_s() - t0;
    struct qt_db_stats st;
    qt_db_stats(db, &st);
    *r = (struct ingest_result){.pts_per_s = (double)points / wall,
                                .pts_per_cpu_s = (double)points / cpu,
                                .flush_pts_per_s = (double)points / flush,
                                .disk_bytes_per_pt =
                                    (double)st.segment_bytes / (double)st.segment_points,
                                .points = points,
                                .series = st.series};
    qt_city_gen_destroy(g);
    free(b);
    qt_db_close(db);
}

/* always + 4 writers: the generator feeds a shared queue of batches. */
struct feed {
    pthread_mutex_t mu;
    struct qt_city_gen *g;
    struct qt_db *db;
    uint64_t points;
    int failed;
};

static void *
feed_writer(void *arg)
{
    struct feed *f = arg;
    struct batch *b = malloc(sizeof(*b));
    for (;;) {
        pthread_mutex_lock(&f->mu);
        bool more = batch_fill(f->g, b);
        pthread_mutex_unlock(&f->mu);
        if (!more)
            break;
        if (qt_db_write(f->db, b->lines, b->n, NULL, NULL, NULL) != 0)
            f->failed = 1;
        __atomic_add_fetch(&f->points, b->points, __ATOMIC_RELAXED);
    }
    free(b);
    return NULL;
}

static double
run_always(const char *dir)
{
    qt_bench_rm_rf(dir);
    struct qt_city_config cfg;
    city_cfg(&cfg);
    cfg.duration_ns /= 6; /* an hour is plenty */
    struct feed f = {.db = bench_open(dir, QT_FSYNC_ALWAYS, 0, 4ull << 30)};
    pthread_mutex_init(&f.mu, NULL);
    if (qt_city_gen_create(&cfg, &f.g) != 0)
        exit(1);
    pthread_t th[4];
    double t0 = qt_bench_now_s();
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, feed_writer, &f);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    double dt = qt_bench_now_s() - t0;
    struct qt_db_stats st;
    qt_db_stats(f.db, &st);
    printf("  (always: %llu points, %llu WAL groups for %llu records)\n",
           (unsigned long long)f.points, (unsigned long long)st.wal.groups,
           (unsigned long long)st.wal.records);
    qt_city_gen_destroy(f.g);
    qt_db_close(f.db);
    if (f.failed)
        exit(1);
    return (double)f.points / dt; /* includes generation on 4 threads */
}

/* Write with interval policy in a child, kill it, time recovery. */
static double
run_replay(const char *dir, uint64_t *points)
{
    qt_bench_rm_rf(dir);
    pid_t pid = fork();
    if (pid == 0) {
        struct qt_db *db = bench_open(dir, QT_FSYNC_INTERVAL, 1000, 4ull << 30);
        struct qt_city_config cfg;
        city_cfg(&cfg);
        cfg.duration_ns /= 2;
        struct qt_city_gen *g;
        struct batch *b = malloc(sizeof(*b));
        if (qt_city_gen_create(&cfg, &g) != 0)
            _exit(1);
        while (batch_fill(g, b)) {
            if (qt_db_write(db, b->lines, b->n, NULL, NULL, NULL) != 0)
                _exit(1);
        }
        qt_db_sync(db);
        _exit(0); /* no close: the memtable is lost, the WAL holds it */
    }
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        exit(1);
    double t0 = qt_bench_now_s();
    struct qt_db *db = bench_open(dir, QT_FSYNC_INTERVAL, 1000, 4ull << 30);
    double dt = qt_bench_now_s() - t0;
    struct qt_db_stats st;
    qt_db_stats(db, &st);
    *points = st.replay_points;
    qt_db_close(db);
    return (double)st.replay_points / dt;
}

/* 1M series (200k groups x 5 fields), one point each; bytes per series
 * held by the engine after the flush (catalog, last-value cache, tables). */
static double
run_series_memory(const char *dir, uint32_t nseries)
{
    qt_bench_rm_rf(dir);
    size_t before = qt_alloc_allocated_bytes();
    struct qt_db *db = bench_open(dir, QT_FSYNC_NONE, 0, 1ull << 30);
    static const char *names[5] = {"pm25", "pm10", "no2", "temperature", "humidity"};
    struct batch *b = malloc(sizeof(*b));
    for (uint32_t g0 = 0; g0 < nseries / 5; g0 += BATCH_LINES) {
        b->n = 0;
        for (uint32_t g = g0; g < g0 + BATCH_LINES && g < nseries / 5; g++) {
            struct qt_batch_line *l = &b->lines[b->n];
            int n = snprintf(b->keys[b->n], sizeof(b->keys[0]), "air,district=%s,station=a%07u",
                             qt_city_district_name(g % 10), g);
            *l = (struct qt_batch_line){.key = b->keys[b->n],
                                        .key_len = (uint32_t)n,
                                        .ts = 1794787200000000000ll,
                                        .n_fields = 5,
                                        .fields = b->fields[b->n]};
            for (int k = 0; k < 5; k++)
                b->fields[b->n][k] = (struct qt_batch_field){.name = names[k],
                                                             .name_len = (uint32_t)strlen(names[k]),
                                                             .vtype = QT_VT_FLOAT,
                                                             .v.f = k};
            b->n++;
        }
        if (qt_db_write(db, b->lines, b->n, NULL, NULL, NULL) != 0)
            exit(1);
    }
    free(b);
    if (qt_db_flush(db) != 0)
        exit(1);
    size_t after = qt_alloc_allocated_bytes();
    qt_db_close(db);
    return (double)(after - before) / nseries;
}

static void
row(const char *what, double got, const char *unit, double target, bool higher_better)
{
    bool ok = higher_better ? got >= target : got <= target;
    printf("%-44s %14.2f %-12s %s %10.2f  %s\n", what, got, unit,
           higher_better ? ">=" : "<=", target, ok ? "PASS" : "MISS");
}

int
main(void)
{
    qt_log_set_level(QT_LOG_WARN);
    const char *base = getenv("QT_BENCH_DIR") != NULL ? getenv("QT_BENCH_DIR") : "/tmp";
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/qtdb-bench-storage-%d", base, (int)getpid());
    uint32_t runs = qt_bench_env_u32("QT_BENCH_RUNS", 3);
    double ing[16], cpu[16], fl[16], disk = 0;
    struct ingest_result r = {0};
    for (uint32_t i = 0; i < runs && i < 16; i++) {
        run_ingest(dir, &r);
        ing[i] = r.pts_per_s;
        cpu[i] = r.pts_per_cpu_s;
        fl[i] = r.flush_pts_per_s;
        disk = r.disk_bytes_per_pt;
    }
    printf("city dataset: %llu points, %llu series; medians of %u runs\n",
           (unsigned long long)r.points, (unsigned long long)r.series, runs);
    printf("%-44s %14s %-12s    %10s\n", "figure", "measured", "unit", "target");
    row("ingest, interval:1000, 1 writer (wall)", qt_bench_median(ing, runs) / 1e6, "Mpoints/s", 3,
        true);
    row("ingest, interval:1000, per CPU-second", qt_bench_median(cpu, runs) / 1e6, "Mpoints/cpu-s",
        3, true);
    row("flush", qt_bench_median(fl, runs) / 1e6, "Mpoints/s", 3, true);
    row("bytes on disk per point after flush", disk, "B/point", 1.0, false);
    if (getenv("QT_BENCH_ONLY") != NULL) {
        qt_bench_rm_rf(dir);
        return 0;
    }
    double alw = run_always(dir);
    row("ingest, always, 4 writers (incl. generation)", alw / 1e6, "Mpoints/s", 1, true);
    uint64_t rp = 0;
    double rep[16];
    for (uint32_t i = 0; i < runs && i < 16; i++)
        rep[i] = run_replay(dir, &rp);
    printf("  (replay: %llu points)\n", (unsigned long long)rp);
    row("WAL replay", qt_bench_median(rep, runs) / 1e6, "Mpoints/s", 5, true);
    uint32_t ns = qt_bench_env_u32("QT_BENCH_SERIES", 1000000);
    double bps = run_series_memory(dir, ns);
    char what[64];
    snprintf(what, sizeof(what), "resident bytes per series at %u series", ns);
    row(what, bps, "B/series", 200, false);
    qt_bench_rm_rf(dir);
    return 0;
}
