/*
 * io_posix.c -- the posix backend: pread/pwrite(v)/fsync/fdatasync.
 *
 * Stateless, so trivially thread-safe: every call is a sequence of blocking
 * syscalls on the caller's thread.  Batches run their requests one after the
 * other (callers on several threads get parallelism; no thread pool).
 *
 * Invariants:
 *   - A read returns len bytes, or fewer only because the file ended (a
 *     zero-byte pread), or -errno.  A write returns 0 only when all len
 *     bytes went to the file.
 *   - Short transfers continue from where they stopped; EINTR/EAGAIN and
 *     zero-byte writes are retried at most QT_IO_RETRY_MAX times per request.
 *   - fsync/fdatasync are issued once; their failure is returned, never
 *     retried (io.h DURABILITY RULE).  EINTR from them is a failure too.
 *
 * The helpers here (io_posix_*) are also the real-I/O layer of the uring
 * backend (names, truncate, size) and of the fault backend (everything).
 */
#include "format/qt_assert.h"
#include "format/qt_limits.h"
#include "storage/io_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t
min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* True when a failed transfer with errno e may be issued again. */
static bool
posix_retryable(int e, uint32_t *retries)
{
    if (e != EINTR && e != EAGAIN)
        return false;
    if (*retries >= QT_IO_RETRY_MAX)
        return false;
    (*retries)++;
    return true;
}

int64_t
io_posix_read_full(struct qt_io *io, int fd, void *buf, size_t len, uint64_t off)
{
    qt_assert(len <= QT_IO_REQ_BYTES_MAX);
    qt_assert(io->xfer_max > 0);
    size_t done = 0;
    uint32_t retries = 0;
    do {
        size_t want = min_size(len - done, io->xfer_max);
        ssize_t n = pread(fd, (uint8_t *)buf + done, want, (off_t)(off + done));
        if (n < 0) {
            if (!posix_retryable(errno, &retries))
                return -errno;
            io_count(&io->st.resubmits, 1);
            continue;
        }
        if (n == 0)
            break; /* end of file */
        qt_assert((size_t)n <= want);
        done += (size_t)n;
        if (done < len)
            io_count(&io->st.resubmits, 1);
    } while (done < len);
    return (int64_t)done;
}

int
io_posix_write_full(struct qt_io *io, int fd, const void *buf, size_t len, uint64_t off)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return io_posix_writev_full(io, fd, &iov, 1, off, len);
}

int
io_posix_writev_full(struct qt_io *io, int fd, const struct iovec *iov, int iovcnt, uint64_t off,
                     size_t total)
{
    qt_assert(total <= QT_IO_REQ_BYTES_MAX);
    qt_assert(iovcnt >= 0 && (uint32_t)iovcnt <= QT_IO_IOV_MAX);
    struct iovec win[QT_IO_IOV_MAX];
    size_t done = 0;
    uint32_t retries = 0;
    do {
        size_t want;
        int cnt = io_iov_window(iov, iovcnt, done, io->xfer_max, win, &want);
        ssize_t n = pwritev(fd, win, cnt, (off_t)(off + done));
        if (n < 0) {
            if (!posix_retryable(errno, &retries))
                return -errno;
            io_count(&io->st.resubmits, 1);
            continue;
        }
        if (n == 0 && want > 0) {
            /* No progress and no error: retry a bounded number of times. */
            if (!posix_retryable(EAGAIN, &retries))
                return -EIO;
            continue;
        }
        qt_assert((size_t)n <= want);
        done += (size_t)n;
        if (done < total)
            io_count(&io->st.resubmits, 1);
    } while (done < total);
    return 0;
}

static int
posix_read_batch(struct qt_io *io, struct qt_io_rreq *reqs, uint32_t n)
{
    qt_assert(n >= 1 && n <= QT_IO_BATCH_MAX);
    int first = 0;
    for (uint32_t i = 0; i < n; i++) {
        reqs[i].res = io_posix_read_full(io, reqs[i].fd, reqs[i].buf, reqs[i].len, reqs[i].off);
        if (reqs[i].res < 0 && first == 0)
            first = (int)reqs[i].res;
    }
    return first;
}

static int
posix_write_batch(struct qt_io *io, struct qt_io_wreq *reqs, uint32_t n)
{
    qt_assert(n >= 1 && n <= QT_IO_BATCH_MAX);
    int first = 0;
    for (uint32_t i = 0; i < n; i++) {
        reqs[i].res = io_posix_write_full(io, reqs[i].fd, reqs[i].buf, reqs[i].len, reqs[i].off);
        if (reqs[i].res < 0 && first == 0)
            first = (int)reqs[i].res;
    }
    return first;
}

static int
posix_append_sync(struct qt_io *io, int fd, const struct iovec *iov, int iovcnt, uint64_t off,
                  size_t total)
{
    int rc = io_posix_writev_full(io, fd, iov, iovcnt, off, total);
    if (rc != 0)
        return rc;
    return io_posix_sync(io, fd, true);
}

int
io_posix_open(struct qt_io *io, const char *path, int flags, unsigned mode, int *fd)
{
    (void)io;
    qt_assert(path != NULL);
    qt_assert((flags & O_APPEND) == 0);
    int r;
    do {
        r = open(path, flags | O_CLOEXEC, (mode_t)mode);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    *fd = r;
    return 0;
}

int
io_posix_close(struct qt_io *io, int fd)
{
    (void)io;
    qt_assert(fd >= 0);
    /* Linux releases the fd even when close reports EINTR: never retry. */
    return close(fd) == 0 ? 0 : -errno;
}

int
io_posix_sync(struct qt_io *io, int fd, bool datasync)
{
    (void)io;
    qt_assert(fd >= 0);
    int r = datasync ? fdatasync(fd) : fsync(fd);
    return r == 0 ? 0 : -errno; /* never retried, not even EINTR */
}

int
io_posix_ftruncate(struct qt_io *io, int fd, uint64_t size)
{
    (void)io;
    qt_assert(size <= INT64_MAX);
    int r;
    do {
        r = ftruncate(fd, (off_t)size);
    } while (r < 0 && errno == EINTR);
    return r == 0 ? 0 : -errno;
}

int
io_posix_size(struct qt_io *io, int fd, uint64_t *size)
{
    (void)io;
    qt_assert(size != NULL);
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

int
io_posix_rename(struct qt_io *io, const char *from, const char *to)
{
    (void)io;
    qt_assert(from != NULL && to != NULL);
    return rename(from, to) == 0 ? 0 : -errno;
}

int
io_posix_unlink(struct qt_io *io, const char *path)
{
    (void)io;
    qt_assert(path != NULL);
    return unlink(path) == 0 ? 0 : -errno;
}

int
io_posix_mkdir(struct qt_io *io, const char *path, unsigned mode)
{
    (void)io;
    qt_assert(path != NULL);
    return mkdir(path, (mode_t)mode) == 0 ? 0 : -errno;
}

int
io_posix_rmdir(struct qt_io *io, const char *path)
{
    (void)io;
    qt_assert(path != NULL);
    return rmdir(path) == 0 ? 0 : -errno;
}

int
io_posix_fsync_dir(struct qt_io *io, const char *dir)
{
    qt_assert(dir != NULL);
    int fd;
    int rc = io_posix_open(io, dir, O_RDONLY | O_DIRECTORY, 0, &fd);
    if (rc != 0)
        return rc;
    rc = io_posix_sync(io, fd, false);
    int crc = io_posix_close(io, fd);
    return rc != 0 ? rc : crc;
}

const struct io_backend io_posix_backend = {
    .name = "posix",
    .open = io_posix_open,
    .close = io_posix_close,
    .read_batch = posix_read_batch,
    .write_batch = posix_write_batch,
    .append_sync = posix_append_sync,
    .sync = io_posix_sync,
    .ftruncate = io_posix_ftruncate,
    .size = io_posix_size,
    .rename = io_posix_rename,
    .unlink = io_posix_unlink,
    .mkdir = io_posix_mkdir,
    .rmdir = io_posix_rmdir,
    .fsync_dir = io_posix_fsync_dir,
    .destroy = NULL,
};
