/*
 * test_io_fault.c -- the fault backend: injected write/fsync/rename/dirsync
 * failures, torn writes, and simulated crashes.  After a crash the files are
 * reopened with the real backend named by QT_TEST_IO (posix or uring; run.sh
 * runs both) to check what survived, as the engine's recovery would.
 */
#include "format/qt_alloc.h"
#include "format/qt_limits.h"
#include "harness.h"
#include "storage/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static enum qt_io_kind
env_kind(void)
{
    const char *s = getenv("QT_TEST_IO");
    return s != NULL && strcmp(s, "uring") == 0 ? QT_IO_URING : QT_IO_POSIX;
}

static void
path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", qt_test_dir(), name);
}

static bool
exists(const char *name)
{
    char p[512];
    path_in(p, sizeof(p), name);
    return access(p, F_OK) == 0;
}

/* Read dir/name whole with the real backend: bytes read, or -errno. */
static int64_t
slurp(const char *name, void *buf, size_t cap)
{
    struct qt_io *io;
    char p[512];
    path_in(p, sizeof(p), name);
    int fd, rc = qt_io_create(env_kind(), NULL, &io);
    if (rc != 0)
        return rc;
    rc = qt_io_open(io, p, O_RDONLY, 0, &fd);
    int64_t n = rc != 0 ? rc : qt_io_pread(io, fd, buf, cap, 0);
    if (rc == 0)
        qt_io_close(io, fd);
    qt_io_destroy(io);
    return n;
}

/* Make dir/name hold len bytes of `byte`, durably, with the real backend. */
static int
durable_file(const char *name, int byte, size_t len)
{
    struct qt_io *io;
    uint8_t *buf = qt_malloc(len + 1);
    int rc = buf == NULL ? QT_ENOMEM : qt_io_create(env_kind(), NULL, &io);
    if (rc != 0) {
        qt_free(buf);
        return rc;
    }
    memset(buf, byte, len);
    char dir[512];
    const char *slash = strrchr(name, '/');
    if (slash != NULL) { /* "sub/file": replace inside the subdirectory */
        snprintf(dir, sizeof(dir), "%s/%.*s", qt_test_dir(), (int)(slash - name), name);
        name = slash + 1;
    } else {
        snprintf(dir, sizeof(dir), "%s", qt_test_dir());
    }
    rc = qt_io_write_file_atomic(io, dir, name, buf, len);
    qt_io_destroy(io);
    qt_free(buf);
    return rc;
}

static int
fopen_in(struct qt_io *io, const char *name, int flags, int *fd)
{
    char p[512];
    path_in(p, sizeof(p), name);
    return qt_io_open(io, p, flags, 0644, fd);
}

static int
arm(struct qt_io *io, enum qt_io_op op, uint64_t nth, int err, uint32_t flags, uint32_t sectors)
{
    struct qt_io_fault f = {
        .op = op, .nth = nth, .err = err, .flags = flags, .tear_sectors = sectors};
    return qt_io_fault_arm(io, &f);
}

static bool
all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

TEST(nth_write_fails_once)
{
    struct qt_io *io;
    int fd;
    uint8_t blk[100], got[500];
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK(strcmp(qt_io_name(io), "fault") == 0);
    CHECK_OK(fopen_in(io, "f", O_RDWR | O_CREAT, &fd));
    CHECK_OK(arm(io, QT_IO_OP_WRITE, 3, -EIO, 0, 0));
    for (int i = 0; i < 5; i++) {
        memset(blk, 'a' + i, sizeof(blk));
        CHECK_RC(qt_io_pwrite(io, fd, blk, sizeof(blk), (uint64_t)i * 100), i == 2 ? -EIO : 0);
    }
    CHECK_EQ(qt_io_fault_count(io, QT_IO_OP_WRITE), 5);
    CHECK_EQ(qt_io_pread(io, fd, got, sizeof(got), 0), 500);
    CHECK(all_bytes(got + 200, 100, 0)); /* the failed write changed nothing */
    CHECK(all_bytes(got + 300, 100, 'd'));
    CHECK_OK(qt_io_fsync(io, fd));
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    CHECK_EQ(slurp("f", got, sizeof(got)), 500);
    CHECK(all_bytes(got, 100, 'a') && all_bytes(got + 200, 100, 0) &&
          all_bytes(got + 400, 100, 'e'));
}

TEST(persistent_enospc_until_disarmed)
{
    struct qt_io *io;
    int fd;
    uint8_t b[10] = {0};
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(fopen_in(io, "f", O_RDWR | O_CREAT, &fd));
    CHECK_OK(arm(io, QT_IO_OP_WRITE, 2, -ENOSPC, QT_IO_FAULT_PERSISTENT, 0));
    CHECK_OK(qt_io_pwrite(io, fd, b, 10, 0));
    for (int i = 0; i < 4; i++)
        CHECK_RC(qt_io_pwrite(io, fd, b, 10, 10), -ENOSPC);
    struct qt_io_wreq w[3] = {{.fd = fd, .buf = b, .len = 10, .off = 0},
                              {.fd = fd, .buf = b, .len = 10, .off = 20},
                              {.fd = fd, .buf = b, .len = 10, .off = 40}};
    CHECK_RC(qt_io_pwrite_batch(io, w, 3), -ENOSPC);
    CHECK_EQ(w[2].res, -ENOSPC);
    CHECK_OK(arm(io, QT_IO_OP_WRITE, 0, 0, 0, 0)); /* disarm */
    CHECK_OK(qt_io_pwrite(io, fd, b, 10, 10));
    uint64_t size;
    CHECK_OK(qt_io_size(io, fd, &size));
    CHECK_EQ(size, 20);
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
}

TEST(batch_write_fault_hits_one_request)
{
    struct qt_io *io;
    int fd;
    uint8_t b[4][64], got[256];
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(fopen_in(io, "f", O_RDWR | O_CREAT, &fd));
    struct qt_io_wreq w[4];
    for (int i = 0; i < 4; i++) {
        memset(b[i], '1' + i, 64);
        w[i] = (struct qt_io_wreq){.fd = fd, .buf = b[i], .len = 64, .off = (uint64_t)i * 64};
    }
    CHECK_OK(arm(io, QT_IO_OP_WRITE, 2, -ENOSPC, 0, 0));
    CHECK_RC(qt_io_pwrite_batch(io, w, 4), -ENOSPC);
    CHECK_EQ(w[0].res, 0);
    CHECK_EQ(w[1].res, -ENOSPC);
    CHECK_EQ(w[3].res, 0);
    CHECK_EQ(qt_io_pread(io, fd, got, 256, 0), 256);
    CHECK(all_bytes(got + 64, 64, 0) && all_bytes(got + 192, 64, '4'));
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
}

/* Linux may drop dirty pages after a writeback error; the next fsync then
 * succeeds.  The model does the same, which is why callers never retry. */
TEST(failed_fsync_loses_the_data_and_a_retry_lies)
{
    struct qt_io *io;
    int fd;
    uint8_t got[200];
    CHECK_OK(durable_file("f", 'A', 100));
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(fopen_in(io, "f", O_RDWR, &fd));
    CHECK_OK(qt_io_pwrite(io, fd, "BBBBBBBBBBBBBBBBBBBBBBBBB", 25, 90));
    CHECK_OK(arm(io, QT_IO_OP_FSYNC, 1, -EIO, 0, 0));
    CHECK_RC(qt_io_fsync(io, fd), -EIO);
    CHECK_OK(qt_io_fsync(io, fd)); /* the "successful" retry */
    uint64_t size;
    CHECK_OK(qt_io_size(io, fd, &size));
    CHECK_EQ(size, 100);
    CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    CHECK_EQ(slurp("f", got, sizeof(got)), 100);
    CHECK(all_bytes(got, 100, 'A'));
}

TEST(append_sync_fault_classes)
{
    struct qt_io *io;
    int fd;
    uint8_t rec[300], got[1000];
    memset(rec, 'r', sizeof(rec));
    struct iovec iov[2] = {{.iov_base = rec, .iov_len = 100}, {.iov_base = rec, .iov_len = 200}};
    CHECK_OK(durable_file("wal", 'h', 64));
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(fopen_in(io, "wal", O_RDWR, &fd));
    CHECK_OK(qt_io_append_sync(io, fd, iov, 2, 64)); /* durable: 364 bytes */
    CHECK_OK(arm(io, QT_IO_OP_FDATASYNC, 1, -EIO, 0, 0));
    CHECK_RC(qt_io_append_sync(io, fd, iov, 2, 364), -EIO);
    CHECK_EQ(qt_io_fault_count(io, QT_IO_OP_FDATASYNC), 2);
    CHECK_OK(arm(io, QT_IO_OP_WRITE, 1, -EIO, 0, 0));
    CHECK_RC(qt_io_append_sync(io, fd, iov, 2, 364), -EIO);
    CHECK_EQ(qt_io_fault_count(io, QT_IO_OP_FDATASYNC), 2); /* no sync after a failed write */
    CHECK_EQ(qt_io_fault_count(io, QT_IO_OP_FSYNC), 0);
    CHECK_OK(qt_io_pwrite(io, fd, rec, 50, 364)); /* unsynced */
    CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    CHECK_EQ(slurp("wal", got, sizeof(got)), 364);
    CHECK(all_bytes(got, 64, 'h') && all_bytes(got + 64, 300, 'r'));
}

/* Torn write: off 700, 3000 bytes, torn after 2 sector boundaries keeps
 * [700, 1536): up to the boundary at 1024, then one full sector. */
static void
torn_write(int err)
{
    struct qt_io *io;
    int fd;
    uint8_t n[3000], got[5000];
    memset(n, 'n', sizeof(n));
    CHECK_OK(durable_file("t", 'o', 4096));
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(fopen_in(io, "t", O_RDWR, &fd));
    CHECK_OK(arm(io, QT_IO_OP_WRITE, 1, err, QT_IO_FAULT_TEAR, 2));
    CHECK_RC(qt_io_pwrite(io, fd, n, sizeof(n), 700), err);
    CHECK_OK(qt_io_fsync(io, fd));
    CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    CHECK_EQ(slurp("t", got, sizeof(got)), 4096);
    CHECK(all_bytes(got, 700, 'o'));
    CHECK(all_bytes(got + 700, 1536 - 700, 'n'));
    CHECK(all_bytes(got + 1536, 4096 - 1536, 'o'));
}

TEST(torn_write_reported_as_failure)
{
    torn_write(-EIO);
}

TEST(torn_write_reported_as_success)
{
    torn_write(0);
}

TEST(crash_drops_unsynced_writes)
{
    struct qt_io *io;
    int fd;
    uint8_t a[8192], b[12000], got[32768];
    memset(a, 'A', sizeof(a));
    memset(b, 'B', sizeof(b));
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(fopen_in(io, "d", O_RDWR | O_CREAT | O_EXCL, &fd));
    CHECK_OK(qt_io_pwrite(io, fd, a, sizeof(a), 0));
    CHECK_OK(qt_io_fsync(io, fd));
    CHECK_OK(qt_io_fsync_dir(io, qt_test_dir()));
    CHECK_OK(qt_io_pwrite(io, fd, b, sizeof(b), 8000)); /* overlaps and extends */
    uint64_t size;
    CHECK_OK(qt_io_size(io, fd, &size));
    CHECK_EQ(size, 20000);
    CHECK_EQ(qt_io_pread(io, fd, got, sizeof(got), 0), 20000); /* read-your-writes */
    CHECK(all_bytes(got, 8000, 'A') && all_bytes(got + 8000, 12000, 'B'));
    CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
    /* A crashed handle refuses everything but close and destroy. */
    CHECK_RC(qt_io_pread(io, fd, got, 10, 0), QT_ECLOSED);
    CHECK_RC(qt_io_pwrite(io, fd, got, 10, 0), QT_ECLOSED);
    CHECK_RC(qt_io_fsync(io, fd), QT_ECLOSED);
    CHECK_RC(qt_io_size(io, fd, &size), QT_ECLOSED);
    CHECK_RC(qt_io_fsync_dir(io, qt_test_dir()), QT_ECLOSED);
    CHECK_RC(fopen_in(io, "d", O_RDONLY, &fd), QT_ECLOSED);
    CHECK_RC(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0), QT_ECLOSED);
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    CHECK_EQ(slurp("d", got, sizeof(got)), 8192);
    CHECK(all_bytes(got, 8192, 'A'));
}

TEST(crash_keeps_synced_data)
{
    struct qt_io *io;
    int fd;
    uint8_t a[5000], got[8192];
    memset(a, 's', sizeof(a));
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(fopen_in(io, "k", O_RDWR | O_CREAT | O_TRUNC, &fd));
    CHECK_OK(qt_io_pwrite(io, fd, a, 3000, 0));
    CHECK_OK(qt_io_fdatasync(io, fd));
    struct iovec iov = {.iov_base = a, .iov_len = 2000};
    CHECK_OK(qt_io_append_sync(io, fd, &iov, 1, 3000));
    CHECK_OK(qt_io_fsync_dir(io, qt_test_dir()));
    CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    CHECK_EQ(slurp("k", got, sizeof(got)), 5000);
    CHECK(all_bytes(got, 5000, 's'));
}

TEST(crash_undoes_rename_without_dir_fsync)
{
    struct qt_io *io;
    int fd;
    uint8_t got[64];
    CHECK_OK(durable_file("M", '1', 10));
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(fopen_in(io, "M.new", O_WRONLY | O_CREAT | O_TRUNC, &fd));
    CHECK_OK(qt_io_pwrite(io, fd, "2222222222222222", 16, 0));
    CHECK_OK(qt_io_fsync(io, fd));
    CHECK_OK(qt_io_close(io, fd));
    char from[512], to[512];
    path_in(from, sizeof(from), "M.new");
    path_in(to, sizeof(to), "M");
    CHECK_OK(qt_io_rename(io, from, to));
    CHECK_EQ(qt_io_fault_count(io, QT_IO_OP_RENAME), 1);
    CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
    qt_io_destroy(io);
    CHECK_EQ(slurp("M", got, sizeof(got)), 10); /* the old file is back */
    CHECK(all_bytes(got, 10, '1'));
    CHECK(!exists("M.new")); /* and its creation was never durable either */
}

TEST(crash_keeps_rename_after_dir_fsync)
{
    struct qt_io *io;
    uint8_t got[64];
    CHECK_OK(durable_file("M", '1', 10));
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(qt_io_write_file_atomic(io, qt_test_dir(), "M", "22222", 5));
    CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
    qt_io_destroy(io);
    CHECK_EQ(slurp("M", got, sizeof(got)), 5);
    CHECK(all_bytes(got, 5, '2'));
    CHECK(!exists("M" QT_IO_TMP_SUFFIX));
}

/* The durable-replace pattern: whichever step fails, a crash leaves the old
 * content, never a mix or nothing. */
TEST(write_file_atomic_each_failing_step)
{
    static const enum qt_io_op steps[] = {QT_IO_OP_WRITE, QT_IO_OP_FSYNC, QT_IO_OP_RENAME,
                                          QT_IO_OP_DIRSYNC};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct qt_io *io;
        uint8_t got[64];
        CHECK_OK(durable_file("M", 'o', 7));
        CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
        CHECK_OK(arm(io, steps[i], 1, -EIO, 0, 0));
        CHECK_RC(qt_io_write_file_atomic(io, qt_test_dir(), "M", "newnewnewnew", 12), -EIO);
        CHECK_EQ(qt_io_fault_count(io, steps[i]), 1);
        CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
        qt_io_destroy(io);
        CHECK_EQ(slurp("M", got, sizeof(got)), 7);
        CHECK(all_bytes(got, 7, 'o'));
        CHECK(!exists("M" QT_IO_TMP_SUFFIX));
    }
}

TEST(crash_undoes_create_and_unlink)
{
    struct qt_io *io;
    int fd;
    uint8_t got[64];
    char y[512];
    CHECK_OK(durable_file("y", 'y', 33));
    CHECK_OK(durable_file("z", 'z', 3));
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(fopen_in(io, "x", O_RDWR | O_CREAT, &fd));
    CHECK_OK(qt_io_pwrite(io, fd, "data", 4, 0));
    CHECK_OK(qt_io_fsync(io, fd)); /* data durable, name not */
    CHECK_OK(qt_io_close(io, fd));
    path_in(y, sizeof(y), "y");
    CHECK_OK(qt_io_unlink(io, y));
    CHECK(!exists("y"));
    CHECK_RC(qt_io_unlink(io, y), -ENOENT);
    CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
    qt_io_destroy(io);
    CHECK(!exists("x"));
    CHECK_EQ(slurp("y", got, sizeof(got)), 33);
    CHECK(all_bytes(got, 33, 'y'));
    /* With the directory synced the unlink sticks. */
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    char z[512];
    path_in(z, sizeof(z), "z");
    CHECK_OK(qt_io_unlink(io, z));
    CHECK_OK(qt_io_fsync_dir(io, qt_test_dir()));
    CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
    qt_io_destroy(io);
    CHECK(!exists("z"));
}

TEST(crash_undoes_mkdir_unless_parent_synced)
{
    for (int synced = 0; synced < 2; synced++) {
        struct qt_io *io;
        int fd;
        char d[512], f[600];
        path_in(d, sizeof(d), synced ? "shard1" : "shard0");
        snprintf(f, sizeof(f), "%s/seg", d);
        CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
        CHECK_OK(qt_io_mkdir(io, d, 0755));
        CHECK_OK(qt_io_open(io, f, O_RDWR | O_CREAT, 0644, &fd));
        CHECK_OK(qt_io_pwrite(io, fd, "seg", 3, 0));
        CHECK_OK(qt_io_fsync(io, fd));
        CHECK_OK(qt_io_close(io, fd));
        CHECK_OK(qt_io_fsync_dir(io, d)); /* the file's entry is durable in d... */
        if (synced)
            CHECK_OK(qt_io_fsync_dir(io, qt_test_dir())); /* ...and d's entry too */
        CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
        qt_io_destroy(io);
        CHECK_EQ(access(f, F_OK) == 0, synced);
        CHECK_EQ(access(d, F_OK) == 0, synced);
    }
}

TEST(crash_undoes_rmdir)
{
    struct qt_io *io;
    char d[512], f[600];
    path_in(d, sizeof(d), "old");
    snprintf(f, sizeof(f), "%s/seg", d);
    CHECK_EQ(mkdir(d, 0755), 0);
    CHECK_OK(durable_file("old/seg", 'q', 9));
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(qt_io_unlink(io, f));
    CHECK_OK(qt_io_rmdir(io, d));
    CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
    qt_io_destroy(io);
    uint8_t got[16];
    CHECK_EQ(slurp("old/seg", got, sizeof(got)), 9);
    CHECK(all_bytes(got, 9, 'q'));
}

TEST(truncates_are_pending_too)
{
    struct qt_io *io;
    int fd, fd2;
    uint8_t got[12000];
    CHECK_OK(durable_file("t", 'T', 10000));
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(fopen_in(io, "t", O_RDWR, &fd));
    CHECK_OK(qt_io_ftruncate(io, fd, 100));
    CHECK_OK(qt_io_pwrite(io, fd, "W", 1, 5000));
    uint64_t size;
    CHECK_OK(qt_io_size(io, fd, &size));
    CHECK_EQ(size, 5001);
    CHECK_EQ(qt_io_pread(io, fd, got, sizeof(got), 0), 5001);
    CHECK(all_bytes(got, 100, 'T') && all_bytes(got + 100, 4900, 0) && got[5000] == 'W');
    /* O_TRUNC on open is a pending truncate as well; a second fd of the
     * same file sees the same pending state. */
    CHECK_OK(fopen_in(io, "t", O_RDWR | O_TRUNC, &fd2));
    CHECK_OK(qt_io_size(io, fd, &size));
    CHECK_EQ(size, 0);
    CHECK_EQ(qt_io_pread(io, fd2, got, sizeof(got), 0), 0);
    CHECK_EQ(qt_io_fault_count(io, QT_IO_OP_TRUNCATE), 1);
    CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
    CHECK_OK(qt_io_close(io, fd));
    CHECK_OK(qt_io_close(io, fd2));
    qt_io_destroy(io);
    CHECK_EQ(slurp("t", got, sizeof(got)), 10000);
    CHECK(all_bytes(got, 10000, 'T'));
}

TEST(pending_data_outlives_close_and_is_applied_by_another_fd)
{
    struct qt_io *io;
    int fd, fd2;
    uint8_t got[16];
    CHECK_OK(durable_file("p", '.', 8));
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(fopen_in(io, "p", O_RDWR, &fd));
    CHECK_OK(qt_io_pwrite(io, fd, "xy", 2, 3));
    CHECK_OK(qt_io_close(io, fd));
    CHECK_OK(fopen_in(io, "p", O_RDONLY, &fd2));
    CHECK_EQ(qt_io_pread(io, fd2, got, sizeof(got), 0), 8);
    CHECK(memcmp(got, "...xy...", 8) == 0);
    CHECK_OK(qt_io_fsync(io, fd2)); /* fsync through a read-only fd applies it */
    CHECK_OK(qt_io_close(io, fd2));
    CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0));
    qt_io_destroy(io);
    CHECK_EQ(slurp("p", got, sizeof(got)), 8);
    CHECK(memcmp(got, "...xy...", 8) == 0);
}

TEST(clean_destroy_writes_pending_data)
{
    struct qt_io *io;
    int fd;
    uint8_t got[16];
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_OK(fopen_in(io, "c", O_RDWR | O_CREAT, &fd));
    CHECK_OK(qt_io_pwrite(io, fd, "clean", 5, 0));
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io); /* no crash: like a clean shutdown, writeback happens */
    CHECK_EQ(slurp("c", got, sizeof(got)), 5);
    CHECK(memcmp(got, "clean", 5) == 0);
}

/* RANDOM crash: each unsynced write survives whole, not at all, or in part,
 * but only in whole 512-byte sectors; synced data always survives. */
TEST(random_crash_tears_only_at_sectors)
{
    enum { FILE_BYTES = 65536, WRITES = 8, SEEDS = 40 };
    int lost = 0, whole = 0, partial = 0;
    uint8_t *got = qt_malloc(FILE_BYTES);
    CHECK(got != NULL);
    for (uint64_t seed = 0; seed < SEEDS; seed++) {
        struct qt_io *io;
        int fd;
        CHECK_OK(durable_file("r", 0, FILE_BYTES));
        CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
        CHECK_OK(fopen_in(io, "r", O_RDWR, &fd));
        CHECK_OK(qt_io_pwrite(io, fd, "SYNCED", 6, 0));
        CHECK_OK(qt_io_fsync(io, fd));
        uint8_t blk[5000];
        for (int i = 0; i < WRITES; i++) {
            memset(blk, 1 + i, sizeof(blk));
            CHECK_OK(qt_io_pwrite(io, fd, blk, 3000 + (size_t)i * 100, 1000 + (uint64_t)i * 8000));
        }
        CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_RANDOM, qt_test_seed() + seed));
        CHECK_OK(qt_io_close(io, fd));
        qt_io_destroy(io);
        CHECK_EQ(slurp("r", got, FILE_BYTES), FILE_BYTES);
        CHECK(memcmp(got, "SYNCED", 6) == 0);
        for (int i = 0; i < WRITES; i++) {
            uint64_t lo = 1000 + (uint64_t)i * 8000, hi = lo + 3000 + (uint64_t)i * 100;
            size_t kept = 0;
            for (uint64_t s = lo / 512 * 512; s < hi; s += 512) {
                uint64_t a = s > lo ? s : lo, b = s + 512 < hi ? s + 512 : hi;
                bool on = all_bytes(got + a, b - a, (uint8_t)(1 + i));
                CHECK(on || all_bytes(got + a, b - a, 0)); /* never half a sector */
                kept += on ? b - a : 0;
            }
            lost += kept == 0;
            whole += kept == hi - lo;
            partial += kept != 0 && kept != hi - lo;
        }
    }
    CHECK(lost > 0 && whole > 0 && partial > 0);
    qt_free(got);
}

/* RANDOM crash: the name operations that survive are a prefix. */
TEST(random_crash_keeps_a_prefix_of_name_ops)
{
    int seen[4] = {0};
    for (uint64_t seed = 0; seed < 40; seed++) {
        struct qt_io *io;
        CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
        static const char *const names[3] = {"n0", "n1", "n2"};
        for (int i = 0; i < 3; i++) {
            int fd;
            CHECK_OK(fopen_in(io, names[i], O_RDWR | O_CREAT | O_EXCL, &fd));
            CHECK_OK(qt_io_close(io, fd));
        }
        CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_RANDOM, qt_test_seed() * 31 + seed));
        qt_io_destroy(io);
        int survivors = exists("n0") + exists("n1") + exists("n2");
        for (int i = 0; i < 3; i++)
            CHECK_EQ(exists(names[i]), i < survivors);
        seen[survivors]++;
        for (int i = 0; i < 3; i++) {
            char p[512];
            path_in(p, sizeof(p), names[i]);
            unlink(p);
        }
    }
    CHECK(seen[0] > 0 && seen[3] > 0 && seen[1] + seen[2] > 0);
}

TEST(arm_validates_and_counts)
{
    struct qt_io *io;
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    CHECK_RC(arm(io, QT_IO_OP_FSYNC, 1, -EIO, QT_IO_FAULT_TEAR, 1), QT_EINVAL);
    CHECK_RC(arm(io, QT_IO_OP_WRITE, 1, 0, 0, 0), QT_EINVAL);
    CHECK_RC(arm(io, QT_IO_OP_WRITE, 1, EIO, 0, 0), QT_EINVAL);
    CHECK_RC(arm(io, QT_IO_OP_COUNT, 1, -EIO, 0, 0), QT_EINVAL);
    CHECK_RC(arm(io, QT_IO_OP_WRITE, 1, -EIO, 0x80, 0), QT_EINVAL);
    CHECK_RC(qt_io_fault_crash(io, (enum qt_io_crash_mode)7, 0), QT_EINVAL);
    char a[512], b[512];
    path_in(a, sizeof(a), "a");
    path_in(b, sizeof(b), "b");
    CHECK_OK(arm(io, QT_IO_OP_DIRSYNC, 2, -EIO, 0, 0));
    CHECK_OK(qt_io_fsync_dir(io, qt_test_dir()));
    CHECK_RC(qt_io_fsync_dir(io, qt_test_dir()), -EIO);
    CHECK_OK(qt_io_fsync_dir(io, qt_test_dir()));
    CHECK_EQ(qt_io_fault_count(io, QT_IO_OP_DIRSYNC), 3);
    CHECK_OK(arm(io, QT_IO_OP_UNLINK, 1, -EIO, 0, 0));
    CHECK_RC(qt_io_unlink(io, a), -EIO);
    CHECK_RC(qt_io_rename(io, a, b), -ENOENT);
    CHECK_EQ(qt_io_fault_count(io, QT_IO_OP_RENAME), 1);
    CHECK_EQ(qt_io_fault_count(io, QT_IO_OP_UNLINK), 1);
    int fd;
    CHECK_OK(qt_io_open(io, a, O_RDONLY | O_CREAT, 0644, &fd));
    CHECK_RC(qt_io_pwrite(io, fd, "x", 1, 0), -EBADF); /* read-only fd */
    CHECK_RC(qt_io_ftruncate(io, fd, 0), -EINVAL);     /* as ftruncate(2) */
    CHECK_RC(qt_io_close(io, fd + 100), -EBADF);       /* not ours */
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
}
