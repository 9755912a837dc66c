/*
 * io_uring.c -- the io_uring backend (liburing >= 2.3) and its probe.
 *
 * Threads: a ring is not thread-safe, the interface is.  A handle owns a
 * small pool of rings (io->rings, QT_IO_URING_RINGS_MAX), each behind its own
 * mutex.  A call takes one ring for its whole duration: it submits its
 * requests, reaps exactly its own completions, and gives the ring back with
 * nothing in flight.  A thread starts at a "home" ring (a per-thread number
 * modulo the pool size), takes the first free ring from there with trylock,
 * and creates rings lazily on first use; only if every ring is busy does it
 * block on its home ring.  Ring 0 is created by the probe and always works,
 * so a ring that fails to come up later (memlock, ENOMEM) is marked failed
 * and its users go to ring 0.  Rings are torn down in qt_io_destroy; nothing
 * is tied to thread lifetime, so thread exit needs no cleanup.
 *
 * Invariants (checked on every acquire/release):
 *   - a ring at rest has no SQE queued and no CQE unreaped;
 *   - at most queue_depth requests are in flight per ring, so the CQ (twice
 *     the SQ) never overflows.
 * Completions: a short transfer is resubmitted for the rest; -EINTR/-EAGAIN
 * is resubmitted up to QT_IO_RETRY_MAX times; a read returning 0 is EOF.
 * fsync/fdatasync results are final (never retried).  An io_uring_enter
 * failure other than EINTR/EAGAIN/EBUSY/ENOMEM (or those persisting for
 * QT_IO_ENTER_RETRY_MAX tries) stops the process: requests already in flight
 * would write into buffers the caller gets back, so no error return is safe.
 */
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "storage/io_int.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SLOT_EMPTY = 0, SLOT_READY = 1, SLOT_FAILED = 2 };

struct ring_slot {
    pthread_mutex_t mu;
    _Atomic int state; /* SLOT_*; changes only under mu */
    struct io_uring ring;
};

struct ring_pool {
    uint32_t n;           /* slots */
    uint32_t setup_flags; /* flags ring 0 was created with */
    struct ring_slot *slot;
};

/* One read or write in flight: progress is kept here, not in the caller's
 * request, so a request can be resubmitted for the remainder. */
struct xfer {
    int fd;
    bool write;
    uint8_t *buf;
    size_t len;
    uint64_t off;
    size_t done;
    int64_t res;
    uint32_t retries;
};

static _Atomic uint32_t next_thread_number;
static _Thread_local uint32_t thread_number; /* 0 = not assigned yet */

static struct io_uring *
slot_ring(struct ring_slot *s)
{
    return &s->ring;
}

/* Create a ring with the flags the probe settled on. */
static int
ring_setup(struct io_uring *ring, uint32_t depth, uint32_t flags)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = flags;
    return io_uring_queue_init_params(depth, ring, &p);
}

static uint32_t
thread_home(uint32_t n)
{
    if (thread_number == 0)
        thread_number = atomic_fetch_add(&next_thread_number, 1) + 1;
    return (thread_number - 1) % n;
}

static void
slot_check_idle(struct ring_slot *s)
{
    qt_assert(io_uring_sq_ready(&s->ring) == 0);
    qt_assert(io_uring_cq_ready(&s->ring) == 0);
}

/* With s->mu held: make s usable, creating its ring on first use. */
static bool
slot_ready(struct ring_pool *p, struct ring_slot *s, uint32_t depth)
{
    int st = atomic_load(&s->state);
    if (st == SLOT_READY)
        return true;
    if (st == SLOT_FAILED)
        return false;
    int rc = ring_setup(&s->ring, depth, p->setup_flags);
    if (rc != 0) {
        static struct qt_log_limit lim;
        qt_log_ratelimited(&lim, 1, QT_LOG_WARN, "io: extra io_uring ring failed (%s); sharing",
                           qt_strerror(rc));
        atomic_store(&s->state, SLOT_FAILED);
        return false;
    }
    atomic_store(&s->state, SLOT_READY);
    return true;
}

static struct ring_slot *
pool_acquire(struct qt_io *io)
{
    struct ring_pool *p = io->priv;
    qt_assert(p != NULL && p->n >= 1);
    uint32_t home = thread_home(p->n);
    for (uint32_t i = 0; i < p->n; i++) {
        struct ring_slot *s = &p->slot[(home + i) % p->n];
        if (atomic_load(&s->state) == SLOT_FAILED || pthread_mutex_trylock(&s->mu) != 0)
            continue;
        if (slot_ready(p, s, io->queue_depth)) {
            slot_check_idle(s);
            return s;
        }
        pthread_mutex_unlock(&s->mu);
    }
    struct ring_slot *s = &p->slot[home];
    pthread_mutex_lock(&s->mu);
    if (!slot_ready(p, s, io->queue_depth)) {
        pthread_mutex_unlock(&s->mu);
        s = &p->slot[0]; /* created by the probe: always ready */
        pthread_mutex_lock(&s->mu);
    }
    qt_assert(atomic_load(&s->state) == SLOT_READY);
    slot_check_idle(s);
    return s;
}

static void
pool_release(struct ring_slot *s)
{
    slot_check_idle(s);
    pthread_mutex_unlock(&s->mu);
}

/* Submit what is queued and wait for at least one completion.  Only
 * transient errors are retried; anything else stops the process (see the
 * file comment: in-flight requests own caller memory). */
static void
ring_submit_wait(struct qt_io *io, struct io_uring *ring)
{
    for (uint32_t attempt = 0;; attempt++) {
        io_count(&io->st.ring_submits, 1);
        int rc = io_uring_submit_and_wait(ring, 1);
        if (rc >= 0 || rc == -EINTR) {
            if (rc >= 0 || io_uring_cq_ready(ring) > 0)
                return;
            continue;
        }
        bool transient = rc == -EAGAIN || rc == -EBUSY || rc == -ENOMEM;
        if (transient && io_uring_cq_ready(ring) > 0)
            return;
        if (!transient || attempt >= QT_IO_ENTER_RETRY_MAX) {
            qt_log(QT_LOG_ERROR, "io: io_uring_enter failed with requests in flight: %s",
                   qt_strerror(rc));
            qt_assert_fail("io_uring_enter failed with requests in flight", __FILE__, __LINE__,
                           __func__);
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000};
        nanosleep(&ts, NULL);
    }
}

static size_t
xfer_want(const struct qt_io *io, const struct xfer *x)
{
    size_t left = x->len - x->done;
    return left < io->xfer_max ? left : io->xfer_max;
}

/* Queue the rest of x as one SQE tagged with its index. */
static void
xfer_queue(struct qt_io *io, struct io_uring *ring, struct xfer *x, uint32_t idx)
{
    qt_assert(x->done <= x->len);
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    qt_assert(sqe != NULL); /* in flight <= queue_depth == SQ entries */
    unsigned want = (unsigned)xfer_want(io, x);
    if (x->write)
        io_uring_prep_write(sqe, x->fd, x->buf + x->done, want, x->off + x->done);
    else
        io_uring_prep_read(sqe, x->fd, x->buf + x->done, want, x->off + x->done);
    io_uring_sqe_set_data64(sqe, idx);
}

/* Account one CQE result for x.  True when x is finished (x->res set),
 * false when it must be queued again. */
static bool
xfer_complete(struct qt_io *io, struct xfer *x, int res)
{
    if (res < 0) {
        if ((res == -EINTR || res == -EAGAIN) && x->retries < QT_IO_RETRY_MAX) {
            x->retries++;
            io_count(&io->st.resubmits, 1);
            return false;
        }
        x->res = res;
        return true;
    }
    qt_assert((size_t)res <= x->len - x->done);
    x->done += (size_t)res;
    if (x->done == x->len) {
        x->res = x->write ? 0 : (int64_t)x->done;
        return true;
    }
    if (res == 0 && !x->write) {
        x->res = (int64_t)x->done; /* end of file */
        return true;
    }
    if (res == 0 && x->retries++ >= QT_IO_RETRY_MAX) {
        x->res = -EIO; /* a write that keeps making no progress */
        return true;
    }
    io_count(&io->st.resubmits, 1);
    return false;
}

/* Run m (<= queue_depth) transfers to completion on ring. */
static void
ring_run(struct qt_io *io, struct io_uring *ring, struct xfer *x, uint32_t m)
{
    qt_assert(m >= 1 && m <= io->queue_depth);
    for (uint32_t i = 0; i < m; i++)
        xfer_queue(io, ring, &x[i], i);
    uint32_t left = m;
    while (left > 0) {
        ring_submit_wait(io, ring);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(ring, head, cqe)
        {
            uint64_t idx = cqe->user_data;
            qt_assert(idx < m);
            seen++;
            if (xfer_complete(io, &x[idx], cqe->res))
                left--;
            else
                xfer_queue(io, ring, &x[idx], (uint32_t)idx);
        }
        io_uring_cq_advance(ring, seen);
    }
}

/* Batches: chunks of queue_depth requests share one ring acquisition. */
static int
ring_read_batch(struct qt_io *io, struct qt_io_rreq *reqs, uint32_t n)
{
    qt_assert(n >= 1 && n <= QT_IO_BATCH_MAX);
    struct xfer x[QT_IO_QUEUE_DEPTH_MAX];
    struct ring_slot *s = pool_acquire(io);
    int first = 0;
    for (uint32_t base = 0; base < n; base += io->queue_depth) {
        uint32_t m = n - base < io->queue_depth ? n - base : io->queue_depth;
        for (uint32_t i = 0; i < m; i++) {
            struct qt_io_rreq *r = &reqs[base + i];
            x[i] = (struct xfer){.fd = r->fd, .buf = r->buf, .len = r->len, .off = r->off};
        }
        ring_run(io, slot_ring(s), x, m);
        for (uint32_t i = 0; i < m; i++) {
            reqs[base + i].res = x[i].res;
            if (x[i].res < 0 && first == 0)
                first = (int)x[i].res;
        }
    }
    pool_release(s);
    return first;
}

static int
ring_write_batch(struct qt_io *io, struct qt_io_wreq *reqs, uint32_t n)
{
    qt_assert(n >= 1 && n <= QT_IO_BATCH_MAX);
    struct xfer x[QT_IO_QUEUE_DEPTH_MAX];
    struct ring_slot *s = pool_acquire(io);
    int first = 0;
    for (uint32_t base = 0; base < n; base += io->queue_depth) {
        uint32_t m = n - base < io->queue_depth ? n - base : io->queue_depth;
        for (uint32_t i = 0; i < m; i++) {
            struct qt_io_wreq *w = &reqs[base + i];
            x[i] = (struct xfer){
                .fd = w->fd, .write = true, .buf = (uint8_t *)w->buf, .len = w->len, .off = w->off};
        }
        ring_run(io, slot_ring(s), x, m);
        for (uint32_t i = 0; i < m; i++) {
            reqs[base + i].res = x[i].res;
            if (x[i].res < 0 && first == 0)
                first = (int)x[i].res;
        }
    }
    pool_release(s);
    return first;
}

/* Submit what is queued and collect `expect` CQEs into res[user_data]. */
static void
ring_collect(struct qt_io *io, struct io_uring *ring, int *res, uint32_t expect)
{
    uint32_t got = 0;
    while (got < expect) {
        ring_submit_wait(io, ring);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(ring, head, cqe)
        {
            qt_assert(cqe->user_data < expect);
            res[cqe->user_data] = cqe->res;
            seen++;
        }
        io_uring_cq_advance(ring, seen);
        got += seen;
    }
    qt_assert(got == expect);
}

/* One round of append_sync: queue the window at done, linked to an
 * fdatasync when it reaches the end.  Returns the SQEs queued. */
static uint32_t
append_queue(struct qt_io *io, struct io_uring *ring, int fd, struct iovec *win, int cnt,
             uint64_t off, bool last)
{
    struct io_uring_sqe *w = io_uring_get_sqe(ring);
    qt_assert(w != NULL);
    io_uring_prep_writev(w, fd, win, (unsigned)cnt, off);
    io_uring_sqe_set_data64(w, 0);
    if (!last)
        return 1;
    io_uring_sqe_set_flags(w, IOSQE_IO_LINK);
    struct io_uring_sqe *f = io_uring_get_sqe(ring);
    qt_assert(f != NULL);
    io_uring_prep_fsync(f, fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(f, 1);
    return 2;
}

static int
ring_append_sync(struct qt_io *io, int fd, const struct iovec *iov, int iovcnt, uint64_t off,
                 size_t total)
{
    struct iovec win[QT_IO_IOV_MAX];
    struct ring_slot *s = pool_acquire(io);
    size_t done = 0;
    uint32_t retries = 0;
    int rc;
    for (;;) {
        size_t want;
        int cnt = io_iov_window(iov, iovcnt, done, io->xfer_max, win, &want);
        bool last = done + want == total;
        int res[2] = {0, -ECANCELED};
        ring_collect(io, slot_ring(s), res,
                     append_queue(io, slot_ring(s), fd, win, cnt, off + done, last));
        if (res[0] < 0 || (res[0] == 0 && want > 0)) {
            bool again = res[0] == -EINTR || res[0] == -EAGAIN || res[0] == 0;
            if (again && retries++ < QT_IO_RETRY_MAX) {
                io_count(&io->st.resubmits, 1);
                continue; /* the linked fdatasync was cancelled, not run */
            }
            rc = res[0] < 0 ? res[0] : -EIO;
            break;
        }
        qt_assert((size_t)res[0] <= want);
        done += (size_t)res[0];
        if (done == total && last) {
            rc = res[1]; /* the fdatasync ran: its result is final */
            break;
        }
        if (last && res[1] != -ECANCELED && res[1] < 0) {
            rc = res[1]; /* it ran after a short write and failed: no retry */
            break;
        }
        io_count(&io->st.resubmits, 1);
    }
    pool_release(s);
    return rc;
}

static int
ring_sync(struct qt_io *io, int fd, bool datasync)
{
    struct ring_slot *s = pool_acquire(io);
    struct io_uring_sqe *sqe = io_uring_get_sqe(slot_ring(s));
    qt_assert(sqe != NULL);
    io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
    io_uring_sqe_set_data64(sqe, 0);
    int res = 0;
    ring_collect(io, slot_ring(s), &res, 1);
    pool_release(s);
    return res; /* never retried, not even -EINTR (io.h DURABILITY RULE) */
}

/* Tear down every ring.  check_idle is false only on the probe's failure
 * path, where a ring may be left with an unreaped entry. */
static void
pool_free(struct ring_pool *p, bool check_idle)
{
    qt_assert(p != NULL);
    for (uint32_t i = 0; i < p->n; i++) {
        struct ring_slot *s = &p->slot[i];
        if (atomic_load(&s->state) == SLOT_READY) {
            if (check_idle)
                slot_check_idle(s);
            io_uring_queue_exit(&s->ring);
        }
        pthread_mutex_destroy(&s->mu);
    }
    qt_free(p->slot);
    qt_free(p);
}

static void
ring_destroy(struct qt_io *io)
{
    qt_assert(io->kind == QT_IO_URING);
    qt_assert(io->priv != NULL);
    pool_free(io->priv, true);
    io->priv = NULL;
}

static const struct io_backend io_ring_backend = {
    .name = "uring",
    .open = io_posix_open,
    .close = io_posix_close,
    .read_batch = ring_read_batch,
    .write_batch = ring_write_batch,
    .append_sync = ring_append_sync,
    .sync = ring_sync,
    .ftruncate = io_posix_ftruncate,
    .size = io_posix_size,
    .rename = io_posix_rename,
    .unlink = io_posix_unlink,
    .mkdir = io_posix_mkdir,
    .rmdir = io_posix_rmdir,
    .fsync_dir = io_posix_fsync_dir,
    .destroy = ring_destroy,
};

/* ---- probe ---------------------------------------------------------------- */

/* kernel.io_uring_disabled (Linux 6.6+): '0', '1', '2', or 0 if unreadable. */
static char
sysctl_io_uring_disabled(void)
{
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
    if (f == NULL)
        return 0;
    int c = fgetc(f);
    fclose(f);
    return c == '1' || c == '2' ? (char)c : 0;
}

/* Why io_uring_setup failed with rc, for the operator. */
static const char *
setup_reason(int rc)
{
    switch (rc) {
    case -ENOSYS:
        return "io_uring_setup: ENOSYS: kernel < 5.1 or the syscall is blocked by a seccomp "
               "filter (container default profile)";
    case -EPERM:
        switch (sysctl_io_uring_disabled()) {
        case '2': return "io_uring_setup: EPERM: disabled by sysctl kernel.io_uring_disabled=2";
        case '1':
            return "io_uring_setup: EPERM: sysctl kernel.io_uring_disabled=1 and the process "
                   "is not privileged";
        default: return "io_uring_setup: EPERM: refused by seccomp, an LSM or the sysctl";
        }
    case -EINVAL: return "io_uring_setup: EINVAL: kernel rejected the ring parameters (too old?)";
    case -EOPNOTSUPP: return "io_uring_setup: EOPNOTSUPP: io_uring not supported by this kernel";
    case -ENOMEM:
        return "io_uring_setup: ENOMEM: ring memory unavailable (RLIMIT_MEMLOCK or kernel "
               "memory)";
    case -EMFILE:
    case -ENFILE: return "io_uring_setup: no file descriptor left for the ring";
    default: return "io_uring_setup failed";
    }
}

/* Create ring 0: try the cheaper task-run mode (5.19+), and on EINVAL (an
 * older kernel rejecting the flag) retry without it. */
static int
probe_setup(struct ring_pool *p, uint32_t depth, int probe_fail_errno)
{
    if (probe_fail_errno != 0)
        return -probe_fail_errno;
    uint32_t flags = IORING_SETUP_COOP_TASKRUN;
    int rc = ring_setup(&p->slot[0].ring, depth, flags);
    if (rc == -EINVAL) {
        flags = 0;
        rc = ring_setup(&p->slot[0].ring, depth, flags);
    }
    p->setup_flags = flags;
    return rc;
}

static const struct {
    int op;
    const char *why;
} probe_ops[] = {
    {IORING_OP_NOP, "io_uring lacks IORING_OP_NOP"},
    {IORING_OP_READ, "io_uring lacks IORING_OP_READ (kernel < 5.6)"},
    {IORING_OP_WRITE, "io_uring lacks IORING_OP_WRITE (kernel < 5.6)"},
    {IORING_OP_WRITEV, "io_uring lacks IORING_OP_WRITEV"},
    {IORING_OP_FSYNC, "io_uring lacks IORING_OP_FSYNC"},
};

/* Check the opcodes we use and run one NOP through ring 0. */
static int
probe_check(struct qt_io *io, struct io_uring *ring, const char **reason)
{
    struct io_uring_probe *pr = io_uring_get_probe_ring(ring);
    if (pr == NULL) {
        *reason = "io_uring opcode probe failed (kernel < 5.6)";
        return -EOPNOTSUPP;
    }
    for (size_t i = 0; i < sizeof(probe_ops) / sizeof(probe_ops[0]); i++) {
        if (!io_uring_opcode_supported(pr, probe_ops[i].op)) {
            io_uring_free_probe(pr);
            *reason = probe_ops[i].why;
            return -EOPNOTSUPP;
        }
    }
    io_uring_free_probe(pr);
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    qt_assert(sqe != NULL);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, 0);
    struct io_uring_cqe *cqe;
    int rc = io_uring_submit_and_wait(ring, 1);
    io_count(&io->st.ring_submits, 1);
    if (rc >= 0)
        rc = io_uring_peek_cqe(ring, &cqe);
    if (rc == 0) {
        rc = cqe->res;
        io_uring_cqe_seen(ring, cqe);
    }
    if (rc != 0)
        *reason = "io_uring NOP round trip failed";
    return rc < 0 ? rc : (rc > 0 ? -EIO : 0);
}

static int
pool_create(struct qt_io *io, struct ring_pool **out)
{
    struct ring_pool *p = qt_calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->n = io->rings;
    p->slot = qt_calloc(p->n, sizeof(*p->slot));
    if (p->slot == NULL) {
        qt_free(p);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < p->n; i++) {
        pthread_mutex_init(&p->slot[i].mu, NULL);
        atomic_init(&p->slot[i].state, SLOT_EMPTY);
    }
    *out = p;
    return 0;
}

int
io_ring_init(struct qt_io *io, int probe_fail_errno, const char **reason)
{
    qt_assert(io->queue_depth >= 1 && io->queue_depth <= QT_IO_QUEUE_DEPTH_MAX);
    qt_assert(io->rings >= 1 && io->rings <= QT_IO_URING_RINGS_MAX);
    struct ring_pool *p;
    if (pool_create(io, &p) != 0) {
        *reason = "no memory for the ring pool";
        return -ENOMEM;
    }
    int rc = probe_setup(p, io->queue_depth, probe_fail_errno);
    if (rc != 0) {
        *reason = setup_reason(rc);
    } else {
        atomic_store(&p->slot[0].state, SLOT_READY);
        rc = probe_check(io, &p->slot[0].ring, reason);
    }
    if (rc != 0) {
        pool_free(p, false);
        return rc;
    }
    io->priv = p;
    io->kind = QT_IO_URING;
    io->be = &io_ring_backend;
    return 0;
}
