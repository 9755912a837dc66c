/*
 * test_engine_faults.c -- every injected failure class on both write paths,
 * and damaged files on disk.
 *
 * Fault matrix: for each class (write EIO, write ENOSPC, torn write, fsync
 * EIO, fdatasync EIO, rename EIO, directory fsync EIO) and each path (WAL
 * append, flush), arm the fault on the fault backend, drive the path, and
 * check: the engine refuses writes (read-only, with a reason) or the write
 * failed cleanly; reads keep working; after a restart on the real backend
 * every acknowledged point is there with its value.
 *
 * Damage: a flipped byte inside a stored block makes that series' scan fail
 * with QT_ECHECKSUM (logged with file and offset) while other series read
 * fine; a destroyed segment footer leaves the segment out at open (counted in
 * health) and the rest of the database serves.
 */
#include "format/qt_err.h"
#include "format/qt_log.h"
#include "harness.h"
#include "storage/db.h"
#include "storage/scan.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0   (20770ll * 86400000000000ll)
#define NSER 4
#define NPTS 1200

static const char *keys[NSER] = {"f,s=a", "f,s=b", "f,s=c", "f,s=d"};

static double
val(uint32_t s, uint32_t i)
{
    return (double)(s * 100000 + i) / 10.0;
}

/* Write points [from, to) of every series, 10 timestamps per batch; marks
 * the acknowledged ones and stops at the first failed write. */
static uint32_t
write_pts(struct qt_db *db, uint32_t from, uint32_t to, uint8_t *acked)
{
    enum { PER = 10 };
    for (uint32_t i0 = from; i0 < to; i0 += PER) {
        struct qt_batch_field f[PER * NSER];
        struct qt_batch_line l[PER * NSER];
        uint32_t n = 0;
        for (uint32_t i = i0; i < i0 + PER && i < to; i++) {
            for (uint32_t s = 0; s < NSER; s++, n++) {
                f[n] = (struct qt_batch_field){
                    .name = "v", .name_len = 1, .vtype = QT_VT_FLOAT, .v.f = val(s, i)};
                l[n] = (struct qt_batch_line){.key = keys[s],
                                              .key_len = 5,
                                              .ts = T0 + (int64_t)i * 1000000000ll,
                                              .n_fields = 1,
                                              .fields = &f[n]};
            }
        }
        if (qt_db_write(db, l, n, NULL, NULL, NULL) != 0)
            return i0 - from;
        for (uint32_t i = i0; i < i0 + PER && i < to; i++)
            acked[i] = 1;
    }
    return to - from;
}

/* Every acknowledged point present with its value; nothing else present. */
static int
check_all(struct qt_db *db, const uint8_t *acked, uint32_t n, bool exact)
{
    for (uint32_t s = 0; s < NSER; s++) {
        char k[16];
        snprintf(k, sizeof(k), "%s v", keys[s]);
        uint32_t sid;
        if (qt_catalog_lookup(qt_db_catalog(db), (const uint8_t *)k, strlen(k), &sid) != 0)
            return -1;
        struct qt_scan_opts o = {.t0 = INT64_MIN, .t1 = INT64_MAX, .allow_stats = false};
        struct qt_scan *sc;
        int rc = qt_scan_open(db, sid, &o, &sc);
        if (rc != 0)
            return rc;
        uint8_t *seen = calloc(n, 1);
        struct qt_chunk c;
        while ((rc = qt_scan_next(sc, &c)) == 1) {
            for (uint32_t j = 0; j < c.n; j++) {
                int64_t i = (c.ts[j] - T0) / 1000000000ll;
                if (i < 0 || i >= n || c.vals[j].f != val(s, (uint32_t)i))
                    rc = -2;
                else
                    seen[i] = 1;
            }
            if (rc == -2)
                break;
        }
        qt_scan_close(sc);
        for (uint32_t i = 0; rc == 0 && i < n; i++) {
            if (acked[i] && !seen[i])
                rc = -3; /* acknowledged point lost */
            if (exact && !acked[i] && seen[i])
                rc = -4;
        }
        free(seen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static struct qt_db *
open_on(const char *dir, struct qt_io *io)
{
    struct qt_db_opts o = {
        .dir = dir, .io = io, .io_kind = qt_test_io_kind(), .no_background = true};
    struct qt_db *db = NULL;
    return qt_db_open(&o, &db) == 0 ? db : NULL;
}

struct fault_case {
    const char *name;
    enum qt_io_op op;
    int err;
    uint32_t flags;
};

static const struct fault_case cases[] = {
    {"write EIO", QT_IO_OP_WRITE, -EIO, 0},
    {"write ENOSPC", QT_IO_OP_WRITE, -ENOSPC, 0},
    {"torn write", QT_IO_OP_WRITE, -EIO, QT_IO_FAULT_TEAR},
    {"fsync EIO", QT_IO_OP_FSYNC, -EIO, 0},
    {"fdatasync EIO", QT_IO_OP_FDATASYNC, -EIO, 0},
    {"rename EIO", QT_IO_OP_RENAME, -EIO, 0},
    {"dirsync EIO", QT_IO_OP_DIRSYNC, -EIO, 0},
};

/* One case on one path.  path 0: fault during WAL appends; 1: during flush. */
static int
run_case(const struct fault_case *fc, int path, uint64_t nth, bool *fired_out)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/%d-%d-%llu", qt_test_dir(), fc->op, path,
             (unsigned long long)nth);
    uint8_t *acked = calloc(NPTS, 1);
    struct qt_io *fio = NULL;
    if (qt_io_create(QT_IO_FAULT, NULL, &fio) != 0)
        return -10;
    struct qt_db *db = open_on(dir, fio);
    if (db == NULL)
        return -11;
    write_pts(db, 0, NPTS / 2, acked);
    struct qt_io_fault f = {
        .op = fc->op, .nth = nth, .err = fc->err, .flags = fc->flags, .tear_sectors = 1};
    uint64_t before = qt_io_fault_count(fio, fc->op);
    qt_io_fault_arm(fio, &f);
    int rc = 0;
    if (path == 0) {
        write_pts(db, NPTS / 2, NPTS, acked);
    } else {
        qt_db_flush(db);
        write_pts(db, NPTS / 2, NPTS, acked);
        qt_db_flush(db);
    }
    bool fired = qt_io_fault_count(fio, fc->op) - before >= nth;
    *fired_out = fired;
    struct qt_db_health h;
    qt_db_health(db, &h);
    if (fired && !h.read_only)
        rc = -12; /* a failed write/sync must stop writes */
    if (rc == 0 && check_all(db, acked, NPTS, false) != 0)
        rc = -13; /* reads keep working, acknowledged data visible */
    qt_db_close(db);
    qt_io_destroy(fio);
    struct qt_db *re = rc == 0 ? open_on(dir, NULL) : NULL;
    if (rc == 0 && re == NULL)
        rc = -14;
    if (rc == 0)
        rc = check_all(re, acked, NPTS, false) != 0 ? -15 : 0;
    qt_db_close(re);
    free(acked);
    return rc;
}

TEST(fault_matrix_wal_and_flush_paths)
{
    qt_log_set_level(QT_LOG_ERROR + 1);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        uint32_t fired_runs = 0;
        for (int path = 0; path < 2; path++) {
            for (uint64_t nth = 1; nth <= 3; nth++) {
                bool fired = false;
                int rc = run_case(&cases[c], path, nth, &fired);
                fired_runs += fired;
                if (rc != 0)
                    printf("case %s path %s nth %llu: %d\n", cases[c].name, path ? "flush" : "wal",
                           (unsigned long long)nth, rc);
                CHECK_EQ(rc, 0);
            }
        }
        printf("fault %-14s fired in %u of 6 runs\n", cases[c].name, fired_runs);
        CHECK(fired_runs > 0); /* every class really hit a write path */
    }
    qt_log_set_level(QT_LOG_INFO);
}

/* Path of the single segment file in dir's only shard. */
static int
find_segment(const char *dir, char *out, size_t cap)
{
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "ls %s/shards/*/*.qts 2>/dev/null | head -n 1", dir);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    char *r = fgets(out, (int)cap, p);
    pclose(p);
    if (r == NULL)
        return -1;
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

TEST(damaged_block_fails_only_its_series)
{
    const char *dir = qt_test_dir();
    uint8_t *acked = calloc(NPTS, 1);
    struct qt_db *db = open_on(dir, NULL);
    CHECK(db != NULL);
    write_pts(db, 0, NPTS, acked);
    CHECK_OK(qt_db_close(db)); /* flushes into one segment */
    char seg[700];
    CHECK_OK(find_segment(dir, seg, sizeof(seg)));
    /* The first block after the 64-byte header belongs to some group; flip a
     * byte in the middle of its payload. */
    uint8_t b;
    size_t len;
    uint8_t *all = qt_test_read_file(seg, &len);
    CHECK(all != NULL && len > 400);
    b = all[64 + 60] ^ 0x20;
    free(all);
    CHECK(qt_test_write_at(seg, 64 + 60, &b, 1) == 0);
    db = open_on(dir, NULL);
    CHECK(db != NULL);
    uint32_t ok = 0, damaged = 0;
    qt_log_set_level(QT_LOG_ERROR + 1);
    for (uint32_t s = 0; s < NSER; s++) {
        char k[16];
        snprintf(k, sizeof(k), "%s v", keys[s]);
        uint32_t sid;
        CHECK_OK(qt_catalog_lookup(qt_db_catalog(db), (const uint8_t *)k, strlen(k), &sid));
        struct qt_scan_opts o = {.t0 = INT64_MIN, .t1 = INT64_MAX};
        struct qt_scan *sc;
        CHECK_OK(qt_scan_open(db, sid, &o, &sc));
        struct qt_chunk c;
        int rc;
        uint64_t n = 0;
        while ((rc = qt_scan_next(sc, &c)) == 1)
            n += c.n;
        qt_scan_close(sc);
        if (rc == 0 && n == NPTS)
            ok++;
        else if (rc == QT_ECHECKSUM || rc == QT_ECORRUPT)
            damaged++;
    }
    qt_log_set_level(QT_LOG_INFO);
    CHECK(damaged >= 1);
    CHECK_EQ(ok + damaged, NSER);
    CHECK(ok >= 1);
    CHECK_OK(qt_db_close(db));
    free(acked);
}

TEST(damaged_footer_leaves_segment_out)
{
    const char *dir = qt_test_dir();
    uint8_t *acked = calloc(NPTS, 1);
    struct qt_db *db = open_on(dir, NULL);
    CHECK(db != NULL);
    write_pts(db, 0, NPTS / 2, acked);
    CHECK_OK(qt_db_flush(db));
    char seg[700];
    CHECK_OK(find_segment(dir, seg, sizeof(seg)));
    memset(acked, 0, NPTS); /* the first segment will be lost */
    write_pts(db, NPTS / 2, NPTS, acked);
    CHECK_OK(qt_db_close(db));
    int64_t size = qt_test_file_size(seg);
    uint8_t junk[16];
    memset(junk, 0xEE, sizeof(junk));
    CHECK(qt_test_write_at(seg, (uint64_t)size - 40, junk, sizeof(junk)) == 0);
    qt_log_set_level(QT_LOG_ERROR + 1);
    db = open_on(dir, NULL);
    qt_log_set_level(QT_LOG_INFO);
    CHECK(db != NULL);
    struct qt_db_health h;
    qt_db_health(db, &h);
    CHECK_EQ(h.damaged_segments, 1);
    CHECK(!h.read_only);
    CHECK_OK(check_all(db, acked, NPTS, true)); /* the second half serves */
    CHECK_OK(qt_db_close(db));
    free(acked);
}
