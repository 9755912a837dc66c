/*
 * bench_ops.c -- operations benchmark on the city dataset (tests/citygen.h):
 * compaction, backup, restore and verify, against the disk's own sequential
 * speed measured in the same run on a file of the database's size.
 *
 *   disk: sequential write (4 MiB pwrites + fsync) and cold read
 *   compaction of every shard                 points/s (wall, per CPU-s), MB/s
 *   backup (copy, no links)                    MB/s, time vs disk write + read
 *   restore (verify, then copy)                MB/s
 *   verify (every block decoded and checked)   MB/s, time vs disk read
 *
 * Reads are cold: every file is dropped from the page cache
 * (posix_fadvise DONTNEED) before each measured step.  Medians of
 * QT_BENCH_RUNS runs (default 3).  Environment: QT_BENCH_STATIONS (default
 * 2000), QT_BENCH_HOURS (6), QT_BENCH_DIR (/tmp), QT_BENCH_KEEP (keep the
 * database there for CLI experiments), QT_BENCH_BASE (use that kept database
 * instead of building one).
 */
#include "bench/benchutil.h"
#include "format/qt_alloc.h"
#include "format/qt_err.h"
#include "format/qt_log.h"
#include "storage/backup.h"
#include "storage/compact.h"
#include "storage/db.h"
#include "storage/verify.h"
#include "tests/citygen.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH_LINES 5000
#define RUNS_MAX    16

/* Drop a file's pages from the page cache (cold reads next). */
static int
evict_entry(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)ftw;
    if (f != FTW_F || !S_ISREG(sb->st_mode))
        return 0;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    return 0;
}

static void
evict(const char *dir)
{
    nftw(dir, evict_entry, 16, FTW_PHYS);
}

static void
row(const char *what, double got, const char *unit, double target, bool higher_better)
{
    if (target <= 0) {
        printf("%-44s %14.2f %-12s\n", what, got, unit);
        return;
    }
    bool ok = higher_better ? got >= target : got <= target;
    printf("%-44s %14.2f %-12s %s %10.2f  %s\n", what, got, unit,
           higher_better ? ">=" : "<=", target, ok ? "PASS" : "MISS");
}

static void
die(const char *what, int rc)
{
    fprintf(stderr, "bench_ops: %s: %s (%s)\n", what, qt_strerror(rc), qt_err_detail());
    exit(1);
}

/* ---- the dataset --------------------------------------------------------------- */

struct batch {
    struct qt_batch_line lines[BATCH_LINES];
    struct qt_batch_field fields[BATCH_LINES][QT_CITY_FIELDS_MAX];
    char keys[BATCH_LINES][160];
    uint32_t n;
};

static bool
batch_fill(struct qt_city_gen *g, struct batch *b)
{
    b->n = 0;
    struct qt_city_point p;
    while (b->n < BATCH_LINES && qt_city_next(g, &p) == 1) {
        qt_city_batch_line(&p, b->keys[b->n], sizeof(b->keys[b->n]), b->fields[b->n],
                           &b->lines[b->n]);
        b->n++;
    }
    return b->n > 0;
}

/* Ingest the city stream with a small memtable: many overlapping segments
 * per one-hour shard, as a day of late data and frequent flushes leaves. */
static void
build(const char *dir, uint32_t stations, uint32_t hours)
{
    struct qt_db_opts o = {.dir = dir,
                           .fsync = QT_FSYNC_NONE,
                           .no_background = true,
                           .mem_budget_bytes = 24u << 20,
                           .shard_duration_ns = 3600000000000ll};
    struct qt_db *db = NULL;
    int rc = qt_db_open(&o, &db);
    if (rc != 0)
        die("open", rc);
    struct qt_city_config cfg;
    qt_city_config_default(&cfg, stations);
    cfg.duration_ns = (int64_t)hours * 3600000000000ll;
    struct qt_city_gen *g = NULL;
    if ((rc = qt_city_gen_create(&cfg, &g)) != 0)
        die("citygen", rc);
    struct batch *b = malloc(sizeof(*b));
    while (b != NULL && batch_fill(g, b)) {
        if ((rc = qt_db_write(db, b->lines, b->n, NULL, NULL, NULL)) != 0)
            die("write", rc);
    }
    free(b);
    qt_city_gen_destroy(g);
    if ((rc = qt_db_close(db)) != 0)
        die("close", rc);
}

static uint64_t
dir_bytes(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "du -sb '%s' | cut -f1", dir);
    FILE *p = popen(cmd, "r");
    unsigned long long v = 0;
    if (p != NULL && fscanf(p, "%llu", &v) != 1)
        v = 0;
    if (p != NULL)
        pclose(p);
    return v;
}

static void
copy_dir(const char *from, const char *to)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s' '%s' && rm -f '%s/LOCK'", to, from, to,
             to);
    if (system(cmd) != 0)
        die("cp", -EIO);
}

/* ---- the disk's own speed ------------------------------------------------------------ */

static void
disk_baseline(const char *path, uint64_t size, double *w_s, double *r_s)
{
    size_t chunk = 4u << 20;
    char *buf = malloc(chunk);
    for (size_t i = 0; buf != NULL && i < chunk; i++)
        buf[i] = (char)(i * 2654435761u >> 13);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || buf == NULL)
        die("baseline", -errno);
    double t0 = qt_bench_now_s();
    for (uint64_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
        if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
            die("baseline write", -errno);
    }
    fsync(fd);
    *w_s = qt_bench_now_s() - t0;
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    t0 = qt_bench_now_s();
    for (uint64_t off = 0; off < size; off += chunk) {
        if (pread(fd, buf, chunk, (off_t)off) < 0)
            die("baseline read", -errno);
    }
    *r_s = qt_bench_now_s() - t0;
    close(fd);
    unlink(path);
    free(buf);
}

/* ---- the operations -------------------------------------------------------------------- */

struct run {
    double c_wall, c_cpu, b_s, r_s, v_s, v_cpu;
    uint64_t c_points, c_bytes, b_bytes, r_bytes, v_bytes;
};

static void
run_ops(const char *base, const char *work, struct run *r)
{
    char db_dir[600], bk[600], rs[600];
    snprintf(db_dir, sizeof(db_dir), "%s/db", work);
    snprintf(bk, sizeof(bk), "%s/bk", work);
    snprintf(rs, sizeof(rs), "%s/restored", work);
    qt_bench_rm_rf(work);
    mkdir(work, 0755);
    copy_dir(base, db_dir);
    evict(db_dir);
    struct qt_db_opts o = {.dir = db_dir, .no_background = true};
    struct qt_db *db = NULL;
    int rc = qt_db_open(&o, &db);
    if (rc != 0)
        die("open", rc);
    struct qt_compact_opts co = {.all = true};
    struct qt_compact_result cr;
    double t0 = qt_bench_now_s(), c0 = qt_bench_cpu_s();
    if ((rc = qt_db_compact(db, &co, &cr)) != 0)
        die("compact", rc);
    r->c_wall = qt_bench_now_s() - t0;
    r->c_cpu = qt_bench_cpu_s() - c0;
    r->c_points = cr.points_in;
    r->c_bytes = cr.bytes_in;
    evict(db_dir);
    struct qt_backup_opts bo = {.target = bk, .copy = true};
    struct qt_backup_result br;
    t0 = qt_bench_now_s();
    if ((rc = qt_db_backup(db, &bo, &br)) != 0)
        die("backup", rc);
    r->b_s = qt_bench_now_s() - t0;
    r->b_bytes = br.bytes;
    qt_db_close(db);
    evict(bk);
    struct qt_restore_opts ro = {.from = bk, .to = rs};
    struct qt_restore_result rr;
    t0 = qt_bench_now_s();
    if ((rc = qt_backup_restore(&ro, &rr)) != 0)
        die("restore", rc);
    r->r_s = qt_bench_now_s() - t0;
    r->r_bytes = rr.bytes;
    evict(db_dir);
    struct qt_verify_opts vo = {0};
    struct qt_verify_result vr;
    t0 = qt_bench_now_s();
    c0 = qt_bench_cpu_s();
    if ((rc = qt_verify_dir(db_dir, &vo, &vr)) != 0)
        die("verify", rc);
    r->v_s = qt_bench_now_s() - t0;
    r->v_cpu = qt_bench_cpu_s() - c0;
    r->v_bytes = vr.bytes;
}

int
main(void)
{
    qt_log_set_level(QT_LOG_WARN);
    const char *root = getenv("QT_BENCH_DIR") != NULL ? getenv("QT_BENCH_DIR") : "/tmp";
    char base[512], work[560], tmp[600];
    snprintf(base, sizeof(base), "%s/qtdb-bench-ops-%d", root, (int)getpid());
    snprintf(work, sizeof(work), "%s.work", base);
    snprintf(tmp, sizeof(tmp), "%s.baseline", base);
    uint32_t runs = qt_bench_env_u32("QT_BENCH_RUNS", 3),
             stations = qt_bench_env_u32("QT_BENCH_STATIONS", 2000);
    runs = runs > RUNS_MAX ? RUNS_MAX : runs;
    double t0 = qt_bench_now_s();
    if (getenv("QT_BENCH_BASE") != NULL)
        snprintf(base, sizeof(base), "%s", getenv("QT_BENCH_BASE")); /* reuse a kept database */
    else
        build(base, stations, qt_bench_env_u32("QT_BENCH_HOURS", 6));
    uint64_t size = dir_bytes(base);
    printf("city dataset: %u stations, built in %.1f s, %.1f MiB on disk before compaction; "
           "medians of %u runs, cold page cache\n",
           stations, qt_bench_now_s() - t0, (double)size / 1048576.0, runs);
    double cw[RUNS_MAX], cc[RUNS_MAX], cmb[RUNS_MAX], bs[RUNS_MAX], rs[RUNS_MAX], vs[RUNS_MAX];
    double bmb[RUNS_MAX], rmb[RUNS_MAX], vmb[RUNS_MAX], vcpu[RUNS_MAX], dw[RUNS_MAX], dr[RUNS_MAX];
    struct run r = {0};
    for (uint32_t i = 0; i < runs; i++) {
        run_ops(base, work, &r);
        disk_baseline(tmp, r.b_bytes, &dw[i], &dr[i]);
        cw[i] = (double)r.c_points / r.c_wall;
        cc[i] = (double)r.c_points / r.c_cpu;
        cmb[i] = (double)r.c_bytes / r.c_wall / 1048576.0;
        bs[i] = r.b_s / (dw[i] + dr[i]);
        bmb[i] = (double)r.b_bytes / r.b_s / 1048576.0;
        rs[i] = r.r_s / (dw[i] + 2 * dr[i]);
        rmb[i] = (double)r.r_bytes / r.r_s / 1048576.0;
        vs[i] = r.v_s / dr[i];
        vmb[i] = (double)r.v_bytes / r.v_s / 1048576.0;
        vcpu[i] = (double)r.v_bytes / r.v_cpu / 1048576.0;
        dw[i] = (double)r.b_bytes / dw[i] / 1048576.0;
        dr[i] = (double)r.b_bytes / dr[i] / 1048576.0;
    }
    printf("compaction input: %llu points, %.1f MiB; backup/verify size %.1f MiB\n",
           (unsigned long long)r.c_points, (double)r.c_bytes / 1048576.0,
           (double)r.b_bytes / 1048576.0);
    printf("%-44s %14s %-12s    %10s\n", "figure", "measured", "unit", "target");
    row("disk sequential write (+fsync)", qt_bench_median(dw, runs), "MiB/s", 0, true);
    row("disk sequential read (cold)", qt_bench_median(dr, runs), "MiB/s", 0, true);
    row("compaction (wall)", qt_bench_median(cw, runs) / 1e6, "Mpoints/s", 0, true);
    row("compaction per CPU-second (one core)", qt_bench_median(cc, runs) / 1e6, "Mpoints/cpu-s",
        10, true);
    row("compaction input read", qt_bench_median(cmb, runs), "MiB/s", 0, true);
    row("backup (copy)", qt_bench_median(bmb, runs), "MiB/s", 0, true);
    row("backup time / disk write+read time", qt_bench_median(bs, runs), "x", 2, false);
    row("restore (verify + copy)", qt_bench_median(rmb, runs), "MiB/s", 0, true);
    row("restore time / disk write+2 reads time", qt_bench_median(rs, runs), "x", 2, false);
    row("verify (every block decoded)", qt_bench_median(vmb, runs), "MiB/s", 0, true);
    row("verify per CPU-second (all threads)", qt_bench_median(vcpu, runs), "MiB/cpu-s", 0, true);
    row("verify time / disk read time", qt_bench_median(vs, runs), "x", 2, false);
    qt_bench_rm_rf(work);
    if (getenv("QT_BENCH_KEEP") == NULL && getenv("QT_BENCH_BASE") == NULL)
        qt_bench_rm_rf(base);
    else
        printf("kept the database in %s\n", base);
    return 0;
}
