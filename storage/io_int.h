/*
 * io_int.h -- private to storage/io*.c: the handle, the backend vtable
 * (Redis ae.c style: one table of functions per backend) and the posix
 * helpers the other backends build on.  Nothing outside storage/io*.c may
 * include this header.
 *
 * io.c validates arguments, counts statistics and dispatches through
 * io->be; a backend function may assume:
 *   fd >= 0, every len <= QT_IO_REQ_BYTES_MAX, off + len <= INT64_MAX,
 *   1 <= n <= QT_IO_BATCH_MAX, 0 <= iovcnt <= QT_IO_IOV_MAX, paths non-NULL.
 */
#ifndef QT_IO_INT_H
#define QT_IO_INT_H

#include "storage/io.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct io_backend {
    const char *name;
    int (*open)(struct qt_io *io, const char *path, int flags, unsigned mode, int *fd);
    int (*close)(struct qt_io *io, int fd);
    /* Fill each req's res; return the first error or 0. */
    int (*read_batch)(struct qt_io *io, struct qt_io_rreq *reqs, uint32_t n);
    int (*write_batch)(struct qt_io *io, struct qt_io_wreq *reqs, uint32_t n);
    /* total = sum of iov lengths (<= QT_IO_REQ_BYTES_MAX). */
    int (*append_sync)(struct qt_io *io, int fd, const struct iovec *iov, int iovcnt, uint64_t off,
                       size_t total);
    int (*sync)(struct qt_io *io, int fd, bool datasync);
    int (*ftruncate)(struct qt_io *io, int fd, uint64_t size);
    int (*size)(struct qt_io *io, int fd, uint64_t *size);
    int (*rename)(struct qt_io *io, const char *from, const char *to);
    int (*unlink)(struct qt_io *io, const char *path);
    int (*mkdir)(struct qt_io *io, const char *path, unsigned mode);
    int (*rmdir)(struct qt_io *io, const char *path);
    int (*fsync_dir)(struct qt_io *io, const char *dir);
    /* Release backend state (io->priv); io itself is freed by io.c. */
    void (*destroy)(struct qt_io *io);
};

struct io_counters {
    _Atomic uint64_t reads, writes, syncs, bytes_read, bytes_written, resubmits, ring_submits;
};

struct qt_io {
    enum qt_io_kind kind; /* resolved: POSIX, URING or FAULT */
    const struct io_backend *be;
    uint32_t queue_depth;        /* uring SQ entries, 1..QT_IO_QUEUE_DEPTH_MAX */
    uint32_t rings;              /* uring pool size, 1..QT_IO_URING_RINGS_MAX */
    uint32_t xfer_max;           /* bytes per syscall/SQE, 1..QT_IO_REQ_BYTES_MAX */
    const char *fallback_reason; /* static; "" unless auto fell back */
    void *priv;                  /* backend state */
    struct io_counters st;
};

static inline void
io_count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Backends.  io_ring_init probes io_uring and, on success, makes io a uring
 * handle; on failure returns -errno and sets *reason (static string). */
extern const struct io_backend io_posix_backend;
int io_ring_init(struct qt_io *io, int probe_fail_errno, const char **reason);
int io_fault_init(struct qt_io *io);

/* Posix building blocks (io_posix.c), shared by every backend. */
int64_t io_posix_read_full(struct qt_io *io, int fd, void *buf, size_t len, uint64_t off);
int io_posix_write_full(struct qt_io *io, int fd, const void *buf, size_t len, uint64_t off);
int io_posix_writev_full(struct qt_io *io, int fd, const struct iovec *iov, int iovcnt,
                         uint64_t off, size_t total);
int io_posix_open(struct qt_io *io, const char *path, int flags, unsigned mode, int *fd);
int io_posix_close(struct qt_io *io, int fd);
int io_posix_sync(struct qt_io *io, int fd, bool datasync);
int io_posix_ftruncate(struct qt_io *io, int fd, uint64_t size);
int io_posix_size(struct qt_io *io, int fd, uint64_t *size);
int io_posix_rename(struct qt_io *io, const char *from, const char *to);
int io_posix_unlink(struct qt_io *io, const char *path);
int io_posix_mkdir(struct qt_io *io, const char *path, unsigned mode);
int io_posix_rmdir(struct qt_io *io, const char *path);
int io_posix_fsync_dir(struct qt_io *io, const char *dir);

/* Copy into out[] (room for QT_IO_IOV_MAX) the part of iov[0..iovcnt) that
 * starts `skip` bytes in and is at most `max` bytes long.  Returns the entry
 * count and stores the window's byte count in *bytes. */
int io_iov_window(const struct iovec *iov, int iovcnt, size_t skip, size_t max, struct iovec *out,
                  size_t *bytes);

#endif
