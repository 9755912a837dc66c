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
#include "storage/compact.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
