/*
 * fuzz_io_fault.c -- differential fuzzing of the fault backend against a
 * simple model.
 *
 * The input is a program: a header byte, then ops (write, read, truncate,
 * fsync, fdatasync, append_sync, size, arm a fault) on two files.  The model
 * keeps, per file, the content reads must see ("current") and the content a
 * crash must leave ("durable"), and mirrors the fault counters.  Every read
 * and size is compared with the model while running; at the end the handle
 * either crashes (DROP) or is destroyed cleanly, and the files re-read with
 * plain syscalls must equal the durable (or current) model byte for byte.
 * Any mismatch is a qt_assert failure, i.e. a crash the fuzzer reports.
 */
#include "format/qt_assert.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "storage/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { CAP = 1 << 16, FILES = 2, OPS_MAX = 256, LEN_MAX = 4096 };

struct mfile {
    uint8_t cur[CAP], dur[CAP];
    size_t cur_len, dur_len;
};

struct marm {
    uint64_t at; /* 0 = disarmed */
    bool persistent, tear;
    uint32_t sectors;
    int err;
};

struct model {
    struct mfile f[FILES];
    uint64_t count[QT_IO_OP_COUNT];
    struct marm arm[QT_IO_OP_COUNT];
};

static struct model m;
static char paths[FILES][64];
static char paths_dir[64];

static void
remove_paths(void)
{
    for (int i = 0; i < FILES; i++)
        unlink(paths[i]);
    rmdir(paths_dir);
}

static void
setup_paths(void)
{
    /* tmpfs when there is one: real fsyncs on a disk would cap the rate at
     * ~100 runs/s, and the oracle does not depend on the medium. */
    static char shm[] = "/dev/shm/qtdb-fuzz-io-XXXXXX", tmp[] = "/tmp/qtdb-fuzz-io-XXXXXX";
    if (paths[0][0] != '\0')
        return;
    const char *dir = mkdtemp(shm);
    if (dir == NULL)
        dir = mkdtemp(tmp);
    qt_assert(dir != NULL);
    snprintf(paths_dir, sizeof(paths_dir), "%s", dir);
    atexit(remove_paths);
    for (int i = 0; i < FILES; i++)
        snprintf(paths[i], sizeof(paths[i]), "%s/f%d", dir, i);
    qt_log_set_level(QT_LOG_ERROR);
}

/* Reader of the program bytes; past the end reads zeros. */
struct prog {
    const uint8_t *p;
    size_t n, at;
};

static uint32_t
take(struct prog *pg, int bytes)
{
    uint32_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint32_t)(pg->at < pg->n ? pg->p[pg->at++] : 0) << (8 * i);
    return v;
}

/* Mirror of the backend's fault counting: does op class c fire now? */
static bool
model_fire(enum qt_io_op c, struct marm *hit)
{
    uint64_t n = ++m.count[c];
    struct marm *a = &m.arm[c];
    if (a->at == 0 || n < a->at)
        return false;
    *hit = *a;
    if (!a->persistent)
        a->at = 0;
    return true;
}

static void
model_write(struct mfile *f, const uint8_t *buf, size_t len, uint64_t off)
{
    if (len == 0)
        return;
    if (off > f->cur_len)
        memset(f->cur + f->cur_len, 0, off - f->cur_len);
    memcpy(f->cur + off, buf, len);
    if (off + len > f->cur_len)
        f->cur_len = off + len;
}

static size_t
tear_keep(uint64_t off, size_t len, uint32_t sectors)
{
    uint64_t end = (off / QT_IO_SECTOR_BYTES + sectors) * QT_IO_SECTOR_BYTES;
    if (end <= off)
        return 0;
    return end - off < len ? (size_t)(end - off) : len;
}

/* Expected result of a write of len at off, applying it to the model. */
static int
expect_write(struct mfile *f, const uint8_t *buf, size_t len, uint64_t off)
{
    struct marm hit;
    if (!model_fire(QT_IO_OP_WRITE, &hit)) {
        model_write(f, buf, len, off);
        return 0;
    }
    if (hit.tear)
        model_write(f, buf, tear_keep(off, len, hit.sectors), off);
    return hit.err;
}

static int
expect_sync(struct mfile *f, enum qt_io_op c)
{
    struct marm hit;
    if (model_fire(c, &hit)) {
        memcpy(f->cur, f->dur, f->dur_len); /* pending data dropped */
        f->cur_len = f->dur_len;
        return hit.err;
    }
    memcpy(f->dur, f->cur, f->cur_len);
    f->dur_len = f->cur_len;
    return 0;
}

static void
op_arm(struct qt_io *io, struct prog *pg)
{
    static const enum qt_io_op classes[4] = {QT_IO_OP_WRITE, QT_IO_OP_FSYNC, QT_IO_OP_FDATASYNC,
                                             QT_IO_OP_TRUNCATE};
    uint32_t b = take(pg, 2);
    enum qt_io_op c = classes[b & 3];
    struct qt_io_fault fl = {.op = c, .nth = 1 + ((b >> 2) & 3), .err = -EIO};
    if ((b >> 4) & 1)
        fl.flags |= QT_IO_FAULT_PERSISTENT;
    if (c == QT_IO_OP_WRITE && ((b >> 5) & 1)) {
        fl.flags |= QT_IO_FAULT_TEAR;
        fl.tear_sectors = (b >> 6) & 7;
        fl.err = ((b >> 9) & 1) ? 0 : -ENOSPC;
    }
    if ((b >> 10) & 1)
        fl.nth = 0; /* disarm */
    qt_assert(qt_io_fault_arm(io, &fl) == 0);
    m.arm[c] = (struct marm){.at = fl.nth == 0 ? 0 : m.count[c] + fl.nth,
                             .persistent = (fl.flags & QT_IO_FAULT_PERSISTENT) != 0,
                             .tear = (fl.flags & QT_IO_FAULT_TEAR) != 0,
                             .sectors = fl.tear_sectors,
                             .err = fl.err};
}

static void
op_read(struct qt_io *io, const int *fds, struct prog *pg)
{
    static uint8_t got[LEN_MAX];
    uint32_t i = take(pg, 1) % FILES, off = take(pg, 2) % CAP, len = take(pg, 2) % LEN_MAX;
    struct mfile *f = &m.f[i];
    size_t want = off >= f->cur_len ? 0 : f->cur_len - off;
    want = want < len ? want : len;
    qt_assert(qt_io_pread(io, fds[i], got, len, off) == (int64_t)want);
    qt_assert(memcmp(got, f->cur + off, want) == 0);
}

static void
op_write(struct qt_io *io, const int *fds, struct prog *pg, bool append)
{
    static uint8_t buf[LEN_MAX];
    uint32_t i = take(pg, 1) % FILES, off = take(pg, 2) % CAP, len = take(pg, 2) % LEN_MAX;
    uint8_t fill = (uint8_t)take(pg, 1);
    struct mfile *f = &m.f[i];
    if (append)
        off = (uint32_t)f->cur_len;
    if (off + len > CAP)
        len = CAP - off;
    for (uint32_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(fill + k * 7);
    if (!append) {
        qt_assert(qt_io_pwrite(io, fds[i], buf, len, off) == expect_write(f, buf, len, off));
        return;
    }
    struct iovec iov[2] = {{.iov_base = buf, .iov_len = len / 2},
                           {.iov_base = buf + len / 2, .iov_len = len - len / 2}};
    int want = expect_write(f, buf, len, off);
    if (want == 0)
        want = expect_sync(f, QT_IO_OP_FDATASYNC);
    qt_assert(qt_io_append_sync(io, fds[i], iov, 2, off) == want);
}

static void
op_misc(struct qt_io *io, const int *fds, struct prog *pg, uint32_t code)
{
    uint32_t i = take(pg, 1) % FILES;
    struct mfile *f = &m.f[i];
    struct marm hit;
    uint64_t size;
    switch (code) {
    case 0: { /* truncate */
        uint32_t len = take(pg, 2) % CAP;
        int want = 0;
        if (model_fire(QT_IO_OP_TRUNCATE, &hit)) {
            want = hit.err;
        } else {
            if (len > f->cur_len)
                memset(f->cur + f->cur_len, 0, len - f->cur_len);
            f->cur_len = len;
        }
        qt_assert(qt_io_ftruncate(io, fds[i], len) == want);
        break;
    }
    case 1: qt_assert(qt_io_fsync(io, fds[i]) == expect_sync(f, QT_IO_OP_FSYNC)); break;
    case 2: qt_assert(qt_io_fdatasync(io, fds[i]) == expect_sync(f, QT_IO_OP_FDATASYNC)); break;
    default: qt_assert(qt_io_size(io, fds[i], &size) == 0); qt_assert(size == f->cur_len);
    }
}

/* Reset both files to a durable initial content from the header byte. */
static void
reset_files(uint8_t h)
{
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < FILES; i++) {
        struct mfile *f = &m.f[i];
        f->dur_len = f->cur_len = (size_t)((h >> (4 * i)) & 15) * 700;
        for (size_t k = 0; k < f->dur_len; k++)
            f->dur[k] = f->cur[k] = (uint8_t)(k * 13 + (size_t)i);
        int fd = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        qt_assert(fd >= 0);
        qt_assert(write(fd, f->dur, f->dur_len) == (ssize_t)f->dur_len);
        close(fd);
    }
}

static void
check_files(bool crashed)
{
    static uint8_t got[CAP + 1];
    for (int i = 0; i < FILES; i++) {
        const struct mfile *f = &m.f[i];
        const uint8_t *want = crashed ? f->dur : f->cur;
        size_t want_len = crashed ? f->dur_len : f->cur_len;
        int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        qt_assert(fd >= 0);
        ssize_t n = pread(fd, got, sizeof(got), 0);
        close(fd);
        qt_assert(n == (ssize_t)want_len);
        qt_assert(memcmp(got, want, want_len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    setup_paths();
    struct prog pg = {.p = data, .n = size, .at = 2};
    reset_files(data[0]);
    bool crash = (data[1] & 1) == 0;
    struct qt_io *io;
    int fds[FILES];
    qt_assert(qt_io_create(QT_IO_FAULT, NULL, &io) == 0);
    for (int i = 0; i < FILES; i++)
        qt_assert(qt_io_open(io, paths[i], O_RDWR, 0, &fds[i]) == 0);
    for (int n = 0; n < OPS_MAX && pg.at < pg.n; n++) {
        uint32_t op = take(&pg, 1) % 10;
        if (op <= 1)
            op_write(io, fds, &pg, false);
        else if (op == 2)
            op_write(io, fds, &pg, true);
        else if (op <= 4)
            op_read(io, fds, &pg);
        else if (op == 5)
            op_arm(io, &pg);
        else
            op_misc(io, fds, &pg, op - 6);
    }
    if (crash)
        qt_assert(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0) == 0);
    for (int i = 0; i < FILES; i++)
        qt_assert(qt_io_close(io, fds[i]) == 0);
    qt_io_destroy(io);
    check_files(crash);
    return 0;
}
