/*
 * test_engine_ops_fault.c -- crash and fault injection during compaction
 * and backup (design/ops.md "Crash safety").
 *
 * For each operation class the fault backend counts (write, fsync, rename,
 * directory sync) and N = 1, 2, ...: copy a prepared database, open it on a
 * fault handle, arm the N-th op of the class to fail (EIO; writes also
 * torn), run the operation, then either crash (drop everything not durable,
 * or a seeded power-loss reordering) or close normally; reopen on the real
 * backend and compare every series with the reference.  The enumeration of
 * a class ends at the first N the operation completes without reaching.
 */
#include "format/qt_err.h"
#include "format/qt_log.h"
#include "harness.h"
#include "opsutil.h"
#include "storage/backup.h"
#include "storage/compact.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const enum qt_io_op fault_ops[] = {QT_IO_OP_WRITE, QT_IO_OP_FSYNC, QT_IO_OP_RENAME,
                                          QT_IO_OP_DIRSYNC, QT_IO_OP_UNLINK};
static const char *const fault_names[] = {"write", "fsync", "rename", "dirsync", "unlink"};

/* A database with two shards of overlapping segments, closed. */
static int
prepare(const char *dir, struct ops_model *m, uint64_t seed)
{
    struct qt_db *db = ops_open(dir, NULL);
    if (db == NULL)
        return -1;
    int rc = 0;
    for (int r = 0; r < 3 && rc == 0; r++) {
        rc = ops_write_random(db, m, &seed, 300, 0, 700);
        if (rc == 0)
            rc = qt_db_flush(db);
    }
    int rc2 = qt_db_close(db);
    return rc != 0 ? rc : rc2;
}

enum after { AFTER_CLOSE, AFTER_CRASH_DROP, AFTER_CRASH_RANDOM };

/* Reopen dir on the real backend: same data, no stray files. */
static int
check_reopen(const char *dir, const struct ops_model *m)
{
    struct qt_db *db = ops_open(dir, NULL);
    if (db == NULL)
        return -1;
    int rc = ops_check(db, m, NULL);
    struct qt_db_stats st;
    qt_db_stats(db, &st);
    struct qt_db_health h;
    qt_db_health(db, &h);
    if (rc == 0 && (h.damaged_segments != 0 || ops_count_files(dir, ".tmp") != 0)) {
        printf("after reopen: %u damaged segments, %u tmp files\n", h.damaged_segments,
               ops_count_files(dir, ".tmp"));
        rc = -1;
    }
    if (rc == 0 && ops_count_files(dir, ".qts") != st.segments) {
        printf("after reopen: %u segment files, %llu listed\n", ops_count_files(dir, ".qts"),
               (unsigned long long)st.segments);
        rc = -1;
    }
    int rc2 = qt_db_close(db);
    return rc != 0 ? rc : rc2;
}

/* One run: fault at the n-th op of class op.  *reached: the fault fired. */
static int
run_compaction_fault(const char *base, const char *work, enum qt_io_op op, uint64_t n,
                     enum after after, const struct ops_model *m, bool *reached)
{
    ops_rm_tree(work);
    int rc = ops_copy_tree(base, work);
    struct qt_io *io = NULL;
    if (rc == 0)
        rc = qt_io_create(QT_IO_FAULT, NULL, &io);
    if (rc != 0)
        return rc;
    struct qt_db *db = ops_open(work, io);
    if (db == NULL) {
        qt_io_destroy(io);
        return -1;
    }
    uint64_t before = qt_io_fault_count(io, op);
    struct qt_io_fault f = {.op = op, .nth = n, .err = -EIO};
    if (op == QT_IO_OP_WRITE && n % 2 == 0) {
        f.flags = QT_IO_FAULT_TEAR;
        f.tear_sectors = 1;
    }
    qt_io_fault_arm(io, &f);
    struct qt_compact_opts o = {.all = true};
    int crc = qt_db_compact(db, &o, NULL);
    *reached = qt_io_fault_count(io, op) - before >= n;
    if (!*reached && crc != 0) {
        printf("compaction failed without reaching the fault: %s (%s)\n", qt_strerror(crc),
               qt_err_detail());
        rc = -1;
    }
    if (after != AFTER_CLOSE)
        qt_io_fault_crash(io, after == AFTER_CRASH_DROP ? QT_IO_CRASH_DROP : QT_IO_CRASH_RANDOM,
                          qt_test_seed() + n);
    qt_db_close(db); /* errors expected after a fault or crash */
    qt_io_destroy(io);
    if (rc == 0)
        rc = check_reopen(work, m);
    return rc;
}

TEST(compaction_fault_at_every_point)
{
    struct ops_model *m = calloc(1, sizeof(*m));
    CHECK(m != NULL);
    char base[4096], work[4096];
    snprintf(base, sizeof(base), "%s/base", qt_test_dir());
    snprintf(work, sizeof(work), "%s/work", qt_test_dir());
    CHECK_OK(prepare(base, m, qt_test_seed() ^ 0xfa17));
    CHECK_OK(check_reopen(base, m));
    qt_log_set_level((enum qt_log_level)(QT_LOG_ERROR + 1)); /* the faults log loudly by design */
    uint32_t runs = 0;
    for (size_t k = 0; k < sizeof(fault_ops) / sizeof(fault_ops[0]); k++) {
        uint64_t n = 1;
        for (;; n++) {
            bool reached = false;
            for (int after = AFTER_CLOSE; after <= AFTER_CRASH_RANDOM; after++) {
                int rc = run_compaction_fault(base, work, fault_ops[k], n, (enum after)after, m,
                                              &reached);
                if (rc != 0)
                    printf("  fault %s #%llu after %d\n", fault_names[k], (unsigned long long)n,
                           after);
                CHECK_OK(rc);
                runs++;
                if (!reached)
                    break;
            }
            if (!reached)
                break;
            CHECK(n < 200);
        }
        printf("compaction: %s points: %llu\n", fault_names[k], (unsigned long long)(n - 1));
        CHECK(n > 1 || fault_ops[k] == QT_IO_OP_UNLINK); /* compaction does these ops */
    }
    qt_log_set_level(QT_LOG_INFO);
    printf("compaction fault runs: %u\n", runs);
    free(m);
}

/* ---- backup ---------------------------------------------------------------------- */

/* After a faulted backup into work/bk: the source is intact and the newest
 * complete backup in the target restores to the same data. */
static int
check_backup_target(const char *work, const struct ops_model *m)
{
    char db[4096], bk[4096], to[4096];
    snprintf(db, sizeof(db), "%s/db", work);
    snprintf(bk, sizeof(bk), "%s/bk", work);
    snprintf(to, sizeof(to), "%s/restored", work);
    int rc = check_reopen(db, m);
    struct qt_restore_opts ro = {.from = bk, .to = to};
    if (rc == 0)
        rc = qt_backup_restore(&ro, NULL);
    if (rc == 0)
        rc = check_reopen(to, m);
    return rc;
}

static int
run_backup_fault(const char *base, const char *work, enum qt_io_op op, uint64_t n, enum after after,
                 bool incremental, const struct ops_model *m, bool *reached)
{
    char db_dir[4096], bk[4096];
    snprintf(db_dir, sizeof(db_dir), "%s/db", work);
    snprintf(bk, sizeof(bk), "%s/bk", work);
    ops_rm_tree(work);
    int rc = mkdir(work, 0755) == 0 ? ops_copy_tree(base, db_dir) : -errno;
    struct qt_io *io = NULL;
    if (rc == 0)
        rc = qt_io_create(QT_IO_FAULT, NULL, &io);
    if (rc != 0)
        return rc;
    struct qt_db *db = ops_open(db_dir, io);
    struct qt_backup_opts bo = {.target = bk, .incremental = incremental, .copy = !incremental};
    rc = db == NULL ? -1 : qt_db_backup(db, &bo, NULL); /* the first of the chain */
    uint64_t before = qt_io_fault_count(io, op);
    struct qt_io_fault f = {.op = op, .nth = n, .err = -EIO};
    qt_io_fault_arm(io, &f);
    int brc = rc == 0 ? qt_db_backup(db, &bo, NULL) : rc;
    *reached = qt_io_fault_count(io, op) - before >= n;
    if (rc == 0 && !*reached && brc != 0) {
        printf("backup failed without reaching the fault: %s (%s)\n", qt_strerror(brc),
               qt_err_detail());
        rc = -1;
    }
    if (after != AFTER_CLOSE)
        qt_io_fault_crash(io, after == AFTER_CRASH_DROP ? QT_IO_CRASH_DROP : QT_IO_CRASH_RANDOM,
                          qt_test_seed() + n);
    qt_db_close(db);
    qt_io_destroy(io);
    return rc == 0 ? check_backup_target(work, m) : rc;
}

TEST(backup_fault_at_every_point)
{
    struct ops_model *m = calloc(1, sizeof(*m));
    CHECK(m != NULL);
    char base[4096], work[4096];
    snprintf(base, sizeof(base), "%s/base", qt_test_dir());
    snprintf(work, sizeof(work), "%s/work", qt_test_dir());
    CHECK_OK(prepare(base, m, qt_test_seed() ^ 0xbacc));
    qt_log_set_level((enum qt_log_level)(QT_LOG_ERROR + 1));
    uint32_t runs = 0;
    for (int incremental = 0; incremental <= 1; incremental++) {
        for (size_t k = 0; k < sizeof(fault_ops) / sizeof(fault_ops[0]); k++) {
            uint64_t n = 1;
            for (;; n++) {
                /* One ending per point, rotating (a backup run costs ~100 ms of
                 * fsyncs; the compaction test runs all three at every point). */
                bool reached = false;
                int after = (int)((n + k) % 3);
                int rc = run_backup_fault(base, work, fault_ops[k], n, (enum after)after,
                                          incremental, m, &reached);
                if (rc != 0)
                    printf("  backup fault %s #%llu after %d incremental %d\n", fault_names[k],
                           (unsigned long long)n, after, incremental);
                CHECK_OK(rc);
                runs++;
                if (!reached)
                    break;
                CHECK(n < 400);
            }
            printf("backup (%s): %s points: %llu\n", incremental ? "incremental" : "full copy",
                   fault_names[k], (unsigned long long)(n - 1));
        }
    }
    qt_log_set_level(QT_LOG_INFO);
    printf("backup fault runs: %u\n", runs);
    free(m);
}
