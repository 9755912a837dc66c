/*
 * io.h -- the one I/O interface of the storage engine.
 *
 * Every file the engine touches is read, written, synced, renamed and
 * removed through a struct qt_io handle, so one switch picks the backend
 * (design/io.md):
 *
 *   posix  pread/pwrite(v)/fsync/fdatasync; loops on short transfers/EINTR.
 *   uring  io_uring (liburing): batched reads and writes in one submission,
 *          write+fdatasync linked with IOSQE_IO_LINK for WAL appends.
 *   auto   probes io_uring at create and falls back to posix on any failure,
 *          logging why ("io: ...").
 *   fault  tests only: posix plus injected failures (Nth write/fsync/...
 *          fails with EIO/ENOSPC, torn writes at sector granularity) and a
 *          simulated crash that drops everything not yet made durable.
 *
 * Conventions: functions return 0 (or a byte count where stated) on success,
 * -errno for an operating-system error, or a QT_E* code with a reason in
 * qt_err_detail().  File descriptors are plain ints owned by the caller
 * between qt_io_open() and qt_io_close(); they must only be used through the
 * handle that opened them.  Offsets and lengths are bytes.
 *
 * Thread safety: every function may be called concurrently from any thread
 * on the same handle (WAL writer, flush thread, query threads), except
 * qt_io_destroy(), which must run after all other calls have returned.
 *
 * DURABILITY RULE: a failed fsync/fdatasync (qt_io_fsync, qt_io_fdatasync,
 * qt_io_append_sync, qt_io_fsync_dir, qt_io_write_file_atomic) is returned
 * to the caller and never retried here.  After such a failure the kernel may
 * already have dropped the dirty pages and a second fsync can report success
 * for data that is gone (fsyncgate).  The caller must put the owning
 * structure (WAL, segment writer, whole engine) into a read-only FAILED state
 * and recover from what is on disk after a restart.  The same holds for a
 * failed write: the bytes on disk in the written range are unknown.
 */
#ifndef QT_IO_H
#define QT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct qt_io;

enum qt_io_kind {
    QT_IO_AUTO = 0,  /* uring if the probe passes, else posix */
    QT_IO_POSIX = 1, /* pread/pwrite/fsync */
    QT_IO_URING = 2, /* io_uring; create fails with the reason if unavailable */
    QT_IO_FAULT = 3, /* posix with fault injection and crash simulation (tests) */
};

/* Options for qt_io_create(); zero-initialise and set what you need. */
struct qt_io_opts {
    /* uring: submission queue entries per ring (0 = QT_IO_QUEUE_DEPTH_DEFAULT,
     * at most QT_IO_QUEUE_DEPTH_MAX); also the most requests in flight per
     * call.  posix/fault ignore it. */
    uint32_t queue_depth;
    /* uring: rings in the pool (0 = QT_IO_URING_RINGS_DEFAULT, at most
     * QT_IO_URING_RINGS_MAX), created lazily; see design/io.md "Threads". */
    uint32_t rings;
    /* Largest transfer per syscall or SQE (0 = QT_IO_REQ_BYTES_MAX).  A
     * request longer than this is issued in pieces through the same
     * short-transfer path the kernel can trigger; tests set it small to run
     * that path on every backend. */
    uint32_t xfer_max_bytes;
    /* Tests: make the io_uring probe fail as if ring setup returned
     * -probe_fail_errno (e.g. ENOSYS, EPERM), so the auto fallback runs in CI.
     * 0 = real probe. */
    int probe_fail_errno;
};

/* Create a handle of `kind` (QT_IO_AUTO resolves to URING or POSIX).  opts
 * may be NULL.  On success *out owns the handle (free with qt_io_destroy).
 * Errors: QT_EINVAL bad option; QT_ENOMEM; for QT_IO_URING the probe's
 * -errno (-EOPNOTSUPP when a needed opcode is missing), with the reason in
 * qt_err_detail() and in the log.  QT_IO_AUTO never fails for io_uring
 * reasons: it falls back to posix (qt_io_fallback_reason). */
int qt_io_create(enum qt_io_kind kind, const struct qt_io_opts *opts, struct qt_io **out);

/* Destroy a handle (NULL is fine).  The caller must have closed every fd it
 * opened.  No other call on io may be running or start afterwards.  A fault
 * handle that did not crash writes its pending (unsynced) data out first, as
 * a clean shutdown lets the page cache do. */
void qt_io_destroy(struct qt_io *io);

/* The resolved kind (never QT_IO_AUTO) and its name: "posix", "uring",
 * "fault".  Static strings. */
enum qt_io_kind qt_io_kind(const struct qt_io *io);
const char *qt_io_name(const struct qt_io *io);
const char *qt_io_kind_name(enum qt_io_kind kind);

/* Why auto chose posix ("" if it did not fall back).  Static string. */
const char *qt_io_fallback_reason(const struct qt_io *io);

/* Parse "auto", "uring" or "posix" (config/--io flag; exact, lower case).
 * QT_EINVAL otherwise ("fault" is for tests and not accepted here). */
int qt_io_kind_parse(const char *s, enum qt_io_kind *out);

/* ---- files --------------------------------------------------------------- */

/* open(2) through the handle: flags as open(2) (O_CLOEXEC is always added);
 * O_APPEND is rejected (QT_EINVAL: every write is positional).  mode is used
 * with O_CREAT.  On success *fd is the caller's until qt_io_close. */
int qt_io_open(struct qt_io *io, const char *path, int flags, unsigned mode, int *fd);

/* Close fd.  Returns close(2)'s error, but fd is released either way.
 * Closing does not sync: unsynced data stays undurable. */
int qt_io_close(struct qt_io *io, int fd);

/* Read len bytes at off into buf (len <= QT_IO_REQ_BYTES_MAX).  Returns the
 * bytes read: len, or fewer only when the file ends first (0 at or past
 * EOF); or -errno.  Short reads and EINTR are retried internally. */
int64_t qt_io_pread(struct qt_io *io, int fd, void *buf, size_t len, uint64_t off);

/* Write all len bytes of buf at off (len <= QT_IO_REQ_BYTES_MAX).  Returns 0
 * when every byte was written, else -errno (ENOSPC, EIO, EFBIG, ...) and the
 * range holds unknown bytes.  Not durable until an fsync/fdatasync. */
int qt_io_pwrite(struct qt_io *io, int fd, const void *buf, size_t len, uint64_t off);

/* One read of a batch.  buf/len/off/fd in; res out: bytes read (< len only
 * at EOF) or -errno. */
struct qt_io_rreq {
    int fd;
    void *buf;
    size_t len;
    uint64_t off;
    int64_t res;
};

/* One write of a batch.  res out: 0 when fully written, else -errno. */
struct qt_io_wreq {
    int fd;
    const void *buf;
    size_t len;
    uint64_t off;
    int64_t res;
};

/* Run n independent reads (n <= QT_IO_BATCH_MAX), on uring in one
 * submission (chunks of queue_depth).  Every request runs and gets its res;
 * returns 0 if none failed (short reads at EOF are not failures), else the
 * first failing request's error.  Overlapping destination buffers are the
 * caller's bug. */
int qt_io_pread_batch(struct qt_io *io, struct qt_io_rreq *reqs, uint32_t n);

/* Run n independent writes (n <= QT_IO_BATCH_MAX), in no particular order:
 * requests must not overlap each other.  Returns 0 if all were fully
 * written, else the first failing request's error (each res says which). */
int qt_io_pwrite_batch(struct qt_io *io, struct qt_io_wreq *reqs, uint32_t n);

/* The WAL group-commit primitive: write the iovcnt buffers (<= QT_IO_IOV_MAX)
 * contiguously at off, then fdatasync fd.  On uring the write and the
 * fdatasync go down linked (IOSQE_IO_LINK) in one submission.  Returns 0 when
 * the bytes are written and durable; otherwise -errno, and the caller must
 * treat the WAL as FAILED (see DURABILITY RULE): the fdatasync is never
 * retried. */
int qt_io_append_sync(struct qt_io *io, int fd, const struct iovec *iov, int iovcnt, uint64_t off);

/* fsync(2) / fdatasync(2).  0 or -errno; never retried (DURABILITY RULE). */
int qt_io_fsync(struct qt_io *io, int fd);
int qt_io_fdatasync(struct qt_io *io, int fd);

/* Set fd's size (not durable until fsync). */
int qt_io_ftruncate(struct qt_io *io, int fd, uint64_t size);

/* The file's current size as reads see it (the fault backend includes
 * unsynced writes). */
int qt_io_size(struct qt_io *io, int fd, uint64_t *size);

/* ---- names (durable only after qt_io_fsync_dir of the parent) -------------- */

int qt_io_rename(struct qt_io *io, const char *from, const char *to);
int qt_io_unlink(struct qt_io *io, const char *path);
int qt_io_mkdir(struct qt_io *io, const char *path, unsigned mode);
int qt_io_rmdir(struct qt_io *io, const char *path);

/* fsync a directory, making creates/renames/unlinks in it durable.  Never
 * retried (DURABILITY RULE). */
int qt_io_fsync_dir(struct qt_io *io, const char *dir);

/* Durably replace dir/name with buf[0..len): write dir/name.tmp
 * (QT_IO_TMP_SUFFIX), fsync it, rename over dir/name, fsync dir.  On 0 the
 * new content is durable.  On error before the rename the old file is
 * untouched and the temp file is removed (best effort); on a failed fsync of
 * dir the new name may or may not survive a crash (DURABILITY RULE).
 * Callers serialise replaces of the same name; recovery may delete stale
 * *.tmp files.  -ENAMETOOLONG if the path does not fit PATH_MAX. */
int qt_io_write_file_atomic(struct qt_io *io, const char *dir, const char *name, const void *buf,
                            size_t len);

#define QT_IO_TMP_SUFFIX ".tmp"

/* ---- statistics ------------------------------------------------------------ */

/* Counters since create (relaxed, approximate under concurrency). */
struct qt_io_stats {
    uint64_t reads;         /* read requests completed (batch members count) */
    uint64_t writes;        /* write requests, append_sync writes included */
    uint64_t syncs;         /* fsync + fdatasync + dir syncs issued */
    uint64_t bytes_read;    /* bytes returned by reads */
    uint64_t bytes_written; /* bytes written */
    uint64_t resubmits;     /* short transfers continued or EINTR/EAGAIN retried */
    uint64_t ring_submits;  /* io_uring_submit* calls (0 on posix) */
};

void qt_io_stats(const struct qt_io *io, struct qt_io_stats *out);

/* ---- fault backend (QT_IO_FAULT only; others get QT_EINVAL) ---------------- */

/* Operation classes that can be made to fail, counted per handle. */
enum qt_io_op {
    QT_IO_OP_WRITE = 0,     /* pwrite, each batch member, append_sync's write */
    QT_IO_OP_FSYNC = 1,     /* qt_io_fsync */
    QT_IO_OP_FDATASYNC = 2, /* qt_io_fdatasync, append_sync's sync */
    QT_IO_OP_RENAME = 3,
    QT_IO_OP_DIRSYNC = 4, /* qt_io_fsync_dir */
    QT_IO_OP_UNLINK = 5,
    QT_IO_OP_TRUNCATE = 6,
    QT_IO_OP_COUNT = 7
};

/* Fail every op of the class from the n-th on, not only the n-th. */
#define QT_IO_FAULT_PERSISTENT 1u
/* Writes: apply the write up to its tear_sectors-th 512-byte sector boundary
 * first, then return err (err 0: report full success for the torn write). */
#define QT_IO_FAULT_TEAR 2u

struct qt_io_fault {
    enum qt_io_op op;
    uint64_t nth;          /* 1 = the next op of this class; 0 disarms the class */
    int err;               /* -EIO, -ENOSPC, ... ; 0 only with QT_IO_FAULT_TEAR */
    uint32_t flags;        /* QT_IO_FAULT_* */
    uint32_t tear_sectors; /* with QT_IO_FAULT_TEAR: sector boundaries to keep */
};

/* Arm one fault for f->op (replacing any armed for that class).  A failed
 * fsync/fdatasync discards the file's unsynced writes, as Linux may after a
 * writeback error, and a later fsync succeeds: the model of why a failed
 * fsync must never be retried. */
int qt_io_fault_arm(struct qt_io *io, const struct qt_io_fault *f);

/* Ops of class op issued so far (including failed ones). */
uint64_t qt_io_fault_count(struct qt_io *io, enum qt_io_op op);

enum qt_io_crash_mode {
    /* Every unsynced write and truncate is lost; every create, rename,
     * unlink, mkdir, rmdir not made durable by a dir fsync is undone. */
    QT_IO_CRASH_DROP = 0,
    /* Power-loss reordering from `seed`: each unsynced write is lost, kept,
     * or kept only in part (a random prefix or subset of its 512-byte
     * sectors); each unsynced truncate is kept or lost; a random prefix of
     * the undurable name operations survives, the rest are undone. */
    QT_IO_CRASH_RANDOM = 1,
};

/* Simulate a crash now.  Afterwards every call on io except qt_io_close and
 * qt_io_destroy fails with QT_ECLOSED ("io: handle crashed"); reopen the
 * files with another handle to check what survived.  Returns 0, or the first
 * real error met while undoing name operations (logged). */
int qt_io_fault_crash(struct qt_io *io, enum qt_io_crash_mode mode, uint64_t seed);

#endif
