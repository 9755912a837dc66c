/*
 * io.c -- the front of the I/O interface (storage/io.h): handle lifetime,
 * backend choice, argument checks, statistics, and the operations composed
 * from backend primitives (qt_io_pread/pwrite, qt_io_write_file_atomic).
 *
 * Backends live in io_posix.c, io_uring.c and io_fault.c behind the vtable in
 * io_int.h.  Every public call checks its arguments here, so a backend only
 * sees requests inside the limits of format/qt_limits.h, then dispatches
 * through io->be.  Statistics of completed requests are counted here;
 * backends count only what they alone see (resubmissions, ring entries).
 *
 * Invariants: io->kind and io->be never change after qt_io_create returns,
 * so reading them needs no lock; io->kind is never QT_IO_AUTO.
 */
#include "storage/io.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "storage/io_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static_assert(QT_IO_REQ_BYTES_MAX <= 0x7ffff000u, "one request must fit Linux MAX_RW_COUNT");
static_assert(QT_IO_QUEUE_DEPTH_DEFAULT <= QT_IO_QUEUE_DEPTH_MAX, "default within max");
static_assert(QT_IO_URING_RINGS_DEFAULT <= QT_IO_URING_RINGS_MAX, "default within max");

static int
opts_check(const struct qt_io_opts *o)
{
    if (o->queue_depth > QT_IO_QUEUE_DEPTH_MAX)
        return qt_fail(QT_EINVAL, "io: queue_depth above QT_IO_QUEUE_DEPTH_MAX");
    if (o->rings > QT_IO_URING_RINGS_MAX)
        return qt_fail(QT_EINVAL, "io: rings above QT_IO_URING_RINGS_MAX");
    if (o->xfer_max_bytes > QT_IO_REQ_BYTES_MAX)
        return qt_fail(QT_EINVAL, "io: xfer_max_bytes above QT_IO_REQ_BYTES_MAX");
    if (o->probe_fail_errno < 0 || o->probe_fail_errno >= 4096)
        return qt_fail(QT_EINVAL, "io: probe_fail_errno is not an errno value");
    return 0;
}

/* Resolve QT_IO_URING / QT_IO_AUTO: probe, and for auto fall back. */
static int
create_ring_or_fallback(struct qt_io *io, enum qt_io_kind kind, int probe_fail_errno)
{
    const char *reason = "";
    int rc = io_ring_init(io, probe_fail_errno, &reason);
    if (rc == 0) {
        qt_assert(io->kind == QT_IO_URING);
        qt_log(QT_LOG_INFO, "io: using io_uring (%u rings x %u entries)", io->rings,
               io->queue_depth);
        return 0;
    }
    if (kind == QT_IO_URING) {
        qt_log(QT_LOG_ERROR, "io: io_uring requested but unavailable: %s (%s)", reason,
               qt_strerror(rc));
        return qt_fail(rc, reason);
    }
    qt_log(QT_LOG_WARN, "io: io_uring unavailable, falling back to posix: %s (%s)", reason,
           qt_strerror(rc));
    io->kind = QT_IO_POSIX;
    io->be = &io_posix_backend;
    io->fallback_reason = reason;
    return 0;
}

int
qt_io_create(enum qt_io_kind kind, const struct qt_io_opts *opts, struct qt_io **out)
{
    qt_assert(out != NULL);
    struct qt_io_opts o = {0};
    if (opts != NULL)
        o = *opts;
    int rc = opts_check(&o);
    if (rc != 0)
        return rc;
    if (kind != QT_IO_AUTO && kind != QT_IO_POSIX && kind != QT_IO_URING && kind != QT_IO_FAULT)
        return qt_fail(QT_EINVAL, "io: unknown backend kind");
    struct qt_io *io = qt_calloc(1, sizeof(*io));
    if (io == NULL)
        return qt_fail(QT_ENOMEM, "io: no memory for handle");
    io->queue_depth = o.queue_depth != 0 ? o.queue_depth : QT_IO_QUEUE_DEPTH_DEFAULT;
    io->rings = o.rings != 0 ? o.rings : QT_IO_URING_RINGS_DEFAULT;
    io->xfer_max = o.xfer_max_bytes != 0 ? o.xfer_max_bytes : QT_IO_REQ_BYTES_MAX;
    io->fallback_reason = "";
    io->kind = QT_IO_POSIX;
    io->be = &io_posix_backend;
    if (kind == QT_IO_FAULT)
        rc = io_fault_init(io);
    else if (kind == QT_IO_URING || kind == QT_IO_AUTO)
        rc = create_ring_or_fallback(io, kind, o.probe_fail_errno);
    if (rc != 0) {
        qt_free(io);
        return rc;
    }
    qt_assert(io->kind != QT_IO_AUTO);
    *out = io;
    return 0;
}

void
qt_io_destroy(struct qt_io *io)
{
    if (io == NULL)
        return;
    qt_assert(io->be != NULL);
    if (io->be->destroy != NULL)
        io->be->destroy(io);
    qt_free(io);
}

enum qt_io_kind
qt_io_kind(const struct qt_io *io)
{
    qt_assert(io != NULL);
    return io->kind;
}

const char *
qt_io_kind_name(enum qt_io_kind kind)
{
    switch (kind) {
    case QT_IO_AUTO: return "auto";
    case QT_IO_POSIX: return "posix";
    case QT_IO_URING: return "uring";
    case QT_IO_FAULT: return "fault";
    }
    return "unknown";
}

const char *
qt_io_name(const struct qt_io *io)
{
    qt_assert(io != NULL);
    return qt_io_kind_name(io->kind);
}

const char *
qt_io_fallback_reason(const struct qt_io *io)
{
    qt_assert(io != NULL);
    qt_assert(io->fallback_reason != NULL);
    return io->fallback_reason;
}

int
qt_io_kind_parse(const char *s, enum qt_io_kind *out)
{
    qt_assert(out != NULL);
    if (s == NULL)
        return qt_fail(QT_EINVAL, "io: backend name missing");
    if (strcmp(s, "auto") == 0)
        *out = QT_IO_AUTO;
    else if (strcmp(s, "uring") == 0)
        *out = QT_IO_URING;
    else if (strcmp(s, "posix") == 0)
        *out = QT_IO_POSIX;
    else
        return qt_fail(QT_EINVAL, "io: backend must be auto, uring or posix");
    return 0;
}

/* ---- argument checks ---------------------------------------------------- */

static int
check_range(int fd, size_t len, uint64_t off)
{
    if (fd < 0)
        return qt_fail(-EBADF, "io: negative file descriptor");
    if (len > QT_IO_REQ_BYTES_MAX)
        return qt_fail(QT_EINVAL, "io: request longer than QT_IO_REQ_BYTES_MAX");
    if (off > (uint64_t)INT64_MAX - len)
        return qt_fail(QT_EINVAL, "io: offset + length beyond the largest file offset");
    return 0;
}

static int
check_path(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return qt_fail(-ENOENT, "io: empty path");
    if (strlen(path) >= PATH_MAX)
        return qt_fail(-ENAMETOOLONG, "io: path longer than PATH_MAX");
    return 0;
}

/* ---- files --------------------------------------------------------------- */

int
qt_io_open(struct qt_io *io, const char *path, int flags, unsigned mode, int *fd)
{
    qt_assert(io != NULL);
    qt_assert(fd != NULL);
    int rc = check_path(path);
    if (rc != 0)
        return rc;
    if ((flags & O_APPEND) != 0)
        return qt_fail(QT_EINVAL, "io: O_APPEND not supported (writes are positional)");
    return io->be->open(io, path, flags, mode, fd);
}

int
qt_io_close(struct qt_io *io, int fd)
{
    qt_assert(io != NULL);
    if (fd < 0)
        return qt_fail(-EBADF, "io: negative file descriptor");
    return io->be->close(io, fd);
}

int64_t
qt_io_pread(struct qt_io *io, int fd, void *buf, size_t len, uint64_t off)
{
    struct qt_io_rreq r = {.fd = fd, .buf = buf, .len = len, .off = off, .res = 0};
    int rc = qt_io_pread_batch(io, &r, 1);
    return rc != 0 ? rc : r.res;
}

int
qt_io_pwrite(struct qt_io *io, int fd, const void *buf, size_t len, uint64_t off)
{
    struct qt_io_wreq w = {.fd = fd, .buf = buf, .len = len, .off = off, .res = 0};
    return qt_io_pwrite_batch(io, &w, 1);
}

int
qt_io_pread_batch(struct qt_io *io, struct qt_io_rreq *reqs, uint32_t n)
{
    qt_assert(io != NULL);
    qt_assert(reqs != NULL || n == 0);
    if (n > QT_IO_BATCH_MAX)
        return qt_fail(QT_ELIMIT, "io: batch larger than QT_IO_BATCH_MAX");
    if (n == 0)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        int rc = check_range(reqs[i].fd, reqs[i].len, reqs[i].off);
        if (rc != 0)
            return rc;
        qt_assert(reqs[i].buf != NULL || reqs[i].len == 0);
    }
    int rc = io->be->read_batch(io, reqs, n);
    uint64_t bytes = 0, ok = 0;
    for (uint32_t i = 0; i < n; i++) {
        qt_assert(reqs[i].res <= (int64_t)reqs[i].len);
        if (reqs[i].res >= 0) {
            bytes += (uint64_t)reqs[i].res;
            ok++;
        }
    }
    io_count(&io->st.reads, ok);
    io_count(&io->st.bytes_read, bytes);
    return rc;
}

int
qt_io_pwrite_batch(struct qt_io *io, struct qt_io_wreq *reqs, uint32_t n)
{
    qt_assert(io != NULL);
    qt_assert(reqs != NULL || n == 0);
    if (n > QT_IO_BATCH_MAX)
        return qt_fail(QT_ELIMIT, "io: batch larger than QT_IO_BATCH_MAX");
    if (n == 0)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        int rc = check_range(reqs[i].fd, reqs[i].len, reqs[i].off);
        if (rc != 0)
            return rc;
        qt_assert(reqs[i].buf != NULL || reqs[i].len == 0);
    }
    int rc = io->be->write_batch(io, reqs, n);
    uint64_t bytes = 0, ok = 0;
    for (uint32_t i = 0; i < n; i++) {
        qt_assert(reqs[i].res <= 0);
        if (reqs[i].res == 0) {
            bytes += reqs[i].len;
            ok++;
        }
    }
    io_count(&io->st.writes, ok);
    io_count(&io->st.bytes_written, bytes);
    return rc;
}

int
qt_io_append_sync(struct qt_io *io, int fd, const struct iovec *iov, int iovcnt, uint64_t off)
{
    qt_assert(io != NULL);
    qt_assert(iov != NULL || iovcnt == 0);
    if (iovcnt < 0 || (uint32_t)iovcnt > QT_IO_IOV_MAX)
        return qt_fail(QT_ELIMIT, "io: append_sync iovcnt outside 0..QT_IO_IOV_MAX");
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        qt_assert(iov[i].iov_base != NULL || iov[i].iov_len == 0);
        if (iov[i].iov_len > QT_IO_REQ_BYTES_MAX - total)
            return qt_fail(QT_EINVAL, "io: append_sync longer than QT_IO_REQ_BYTES_MAX");
        total += iov[i].iov_len;
    }
    int rc = check_range(fd, total, off);
    if (rc != 0)
        return rc;
    rc = io->be->append_sync(io, fd, iov, iovcnt, off, total);
    if (rc == 0) {
        io_count(&io->st.writes, 1);
        io_count(&io->st.bytes_written, total);
        io_count(&io->st.syncs, 1);
    }
    return rc;
}

static int
io_sync(struct qt_io *io, int fd, bool datasync)
{
    qt_assert(io != NULL);
    if (fd < 0)
        return qt_fail(-EBADF, "io: negative file descriptor");
    io_count(&io->st.syncs, 1);
    return io->be->sync(io, fd, datasync);
}

int
qt_io_fsync(struct qt_io *io, int fd)
{
    return io_sync(io, fd, false);
}

int
qt_io_fdatasync(struct qt_io *io, int fd)
{
    return io_sync(io, fd, true);
}

int
qt_io_ftruncate(struct qt_io *io, int fd, uint64_t size)
{
    qt_assert(io != NULL);
    int rc = check_range(fd, 0, size);
    if (rc != 0)
        return rc;
    return io->be->ftruncate(io, fd, size);
}

int
qt_io_size(struct qt_io *io, int fd, uint64_t *size)
{
    qt_assert(io != NULL);
    qt_assert(size != NULL);
    if (fd < 0)
        return qt_fail(-EBADF, "io: negative file descriptor");
    return io->be->size(io, fd, size);
}

/* ---- names --------------------------------------------------------------- */

int
qt_io_rename(struct qt_io *io, const char *from, const char *to)
{
    qt_assert(io != NULL);
    int rc = check_path(from);
    if (rc == 0)
        rc = check_path(to);
    return rc != 0 ? rc : io->be->rename(io, from, to);
}

int
qt_io_unlink(struct qt_io *io, const char *path)
{
    qt_assert(io != NULL);
    int rc = check_path(path);
    return rc != 0 ? rc : io->be->unlink(io, path);
}

int
qt_io_mkdir(struct qt_io *io, const char *path, unsigned mode)
{
    qt_assert(io != NULL);
    int rc = check_path(path);
    return rc != 0 ? rc : io->be->mkdir(io, path, mode);
}

int
qt_io_rmdir(struct qt_io *io, const char *path)
{
    qt_assert(io != NULL);
    int rc = check_path(path);
    return rc != 0 ? rc : io->be->rmdir(io, path);
}

int
qt_io_fsync_dir(struct qt_io *io, const char *dir)
{
    qt_assert(io != NULL);
    int rc = check_path(dir);
    if (rc != 0)
        return rc;
    io_count(&io->st.syncs, 1);
    return io->be->fsync_dir(io, dir);
}

/* Build "dir/name<suffix>" into out[PATH_MAX]. */
static int
join_path(char *out, const char *dir, const char *name, const char *suffix)
{
    int n = snprintf(out, PATH_MAX, "%s/%s%s", dir, name, suffix);
    if (n < 0 || n >= PATH_MAX)
        return qt_fail(-ENAMETOOLONG, "io: dir/name longer than PATH_MAX");
    return 0;
}

int
qt_io_write_file_atomic(struct qt_io *io, const char *dir, const char *name, const void *buf,
                        size_t len)
{
    qt_assert(io != NULL);
    qt_assert(buf != NULL || len == 0);
    if (dir == NULL || name == NULL || name[0] == '\0' || strchr(name, '/') != NULL)
        return qt_fail(QT_EINVAL, "io: write_file_atomic needs a dir and a plain file name");
    char tmp[PATH_MAX], dst[PATH_MAX];
    int fd, rc = join_path(tmp, dir, name, QT_IO_TMP_SUFFIX);
    if (rc == 0)
        rc = join_path(dst, dir, name, "");
    if (rc == 0)
        rc = qt_io_open(io, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644, &fd);
    if (rc != 0)
        return rc;
    rc = qt_io_pwrite(io, fd, buf, len, 0);
    if (rc == 0)
        rc = qt_io_fsync(io, fd);
    int crc = qt_io_close(io, fd);
    if (rc == 0)
        rc = crc;
    if (rc == 0)
        rc = qt_io_rename(io, tmp, dst);
    if (rc != 0) {
        (void)qt_io_unlink(io, tmp); /* best effort; the error to report is rc */
        return rc;
    }
    /* Never retried: a failed dir fsync leaves the rename's fate unknown. */
    return qt_io_fsync_dir(io, dir);
}

/* ---- shared helpers and statistics ------------------------------------------ */

int
io_iov_window(const struct iovec *iov, int iovcnt, size_t skip, size_t max, struct iovec *out,
              size_t *bytes)
{
    qt_assert(iovcnt >= 0 && (uint32_t)iovcnt <= QT_IO_IOV_MAX);
    qt_assert(max > 0);
    int n = 0;
    size_t got = 0;
    for (int i = 0; i < iovcnt && got < max; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        size_t take = l - skip;
        if (take > max - got)
            take = max - got;
        out[n].iov_base = (uint8_t *)iov[i].iov_base + skip;
        out[n].iov_len = take;
        n++;
        got += take;
        skip = 0;
    }
    *bytes = got;
    return n;
}

void
qt_io_stats(const struct qt_io *io, struct qt_io_stats *out)
{
    qt_assert(io != NULL);
    qt_assert(out != NULL);
    struct io_counters *c = (struct io_counters *)&io->st;
    out->reads = atomic_load_explicit(&c->reads, memory_order_relaxed);
    out->writes = atomic_load_explicit(&c->writes, memory_order_relaxed);
    out->syncs = atomic_load_explicit(&c->syncs, memory_order_relaxed);
    out->bytes_read = atomic_load_explicit(&c->bytes_read, memory_order_relaxed);
    out->bytes_written = atomic_load_explicit(&c->bytes_written, memory_order_relaxed);
    out->resubmits = atomic_load_explicit(&c->resubmits, memory_order_relaxed);
    out->ring_submits = atomic_load_explicit(&c->ring_submits, memory_order_relaxed);
}
