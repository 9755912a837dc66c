/*
 * netloop_uring.c -- the io_uring backend of the TCP ingest loops.
 *
 * Each thread owns one ring.  The acceptor keeps a multishot accept armed
 * on each listener; a loop keeps one receive armed per connection, in
 * multishot mode where the kernel has it (6.0+; on -EINVAL the ring falls
 * back to re-armed single-shot receives), always with buffer selection
 * from the ring's provided-buffer ring (5.19+), so an idle connection pins
 * no buffer.  A buffer is handed back to the kernel as soon as its bytes
 * have been parsed into the batch (which copies what it keeps).
 *
 * user_data layout: type (8 bits) | generation (24 bits) | slot (32 bits);
 * a receive's completion is matched to its connection by slot and checked
 * by generation.  A connection is freed only after its receive's final
 * completion (no IORING_CQE_F_MORE), so no completion can outlive it.
 */
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "server/netloop_int.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

enum { UD_WAKE = 1, UD_ACCEPT = 2, UD_RECV = 3, UD_CANCEL = 4 };

#define UD(type, gen, slot)                                                                        \
    (((uint64_t)(type) << 56) | ((uint64_t)((gen)&0xffffffu) << 32) | (uint64_t)(slot))
#define UD_TYPE(ud) ((uint32_t)((ud) >> 56))
#define UD_GEN(ud)  ((uint32_t)((ud) >> 32) & 0xffffffu)
#define UD_SLOT(ud) ((uint32_t)(ud))

#define URING_SQ_ENTRIES 256u
#define URING_CQ_ENTRIES 4096u
#define URING_BGID       0

static const char *
setup_reason(int rc)
{
    switch (rc) {
    case -ENOSYS: return "io_uring_setup: ENOSYS: kernel < 5.1 or blocked by seccomp";
    case -EPERM: return "io_uring_setup: EPERM: disabled by sysctl, seccomp or an LSM";
    case -EINVAL: return "io_uring_setup: EINVAL: kernel rejected the ring parameters";
    case -EOPNOTSUPP: return "io_uring_setup: EOPNOTSUPP: not supported by this kernel";
    case -ENOMEM: return "io_uring_setup: ENOMEM: RLIMIT_MEMLOCK or kernel memory";
    default: return "io_uring_setup failed";
    }
}

/* COOP_TASKRUN (5.19) first; on EINVAL without it.  The CQ is larger than
 * the SQ: multishot receives post many completions per submission. */
static int
ring_setup(struct io_uring *ring)
{
    struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN,
                                .cq_entries = URING_CQ_ENTRIES};
    int rc = io_uring_queue_init_params(URING_SQ_ENTRIES, ring, &p);
    if (rc == -EINVAL) {
        p = (struct io_uring_params){.flags = IORING_SETUP_CQSIZE, .cq_entries = URING_CQ_ENTRIES};
        rc = io_uring_queue_init_params(URING_SQ_ENTRIES, ring, &p);
    }
    return rc;
}

static const struct {
    int op;
    const char *why;
} net_ops[] = {
    {IORING_OP_ACCEPT, "io_uring lacks IORING_OP_ACCEPT (kernel < 5.5)"},
    {IORING_OP_RECV, "io_uring lacks IORING_OP_RECV (kernel < 5.6)"},
    {IORING_OP_READ, "io_uring lacks IORING_OP_READ (kernel < 5.6)"},
    {IORING_OP_ASYNC_CANCEL, "io_uring lacks IORING_OP_ASYNC_CANCEL"},
};

/* Map the provided-buffer ring for one loop; register it with the ring. */
static int
bufring_setup(struct io_uring *ring, struct io_uring_buf_ring **out, uint8_t **bufs)
{
    size_t sz = QT_SRV_RECV_BUFS * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED)
        return -errno;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = QT_SRV_RECV_BUFS, .bgid = URING_BGID};
    int rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc != 0) {
        munmap(br, sz);
        return rc;
    }
    *out = br;
    if (bufs == NULL)
        return 0;
    *bufs = mmap(NULL, (size_t)QT_SRV_RECV_BUFS * QT_SRV_RECV_BUF_BYTES, PROT_READ | PROT_WRITE,
                 MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (*bufs == MAP_FAILED) {
        *bufs = NULL;
        io_uring_unregister_buf_ring(ring, URING_BGID);
        munmap(br, sz);
        *out = NULL;
        return -ENOMEM;
    }
    io_uring_buf_ring_init(*out);
    int mask = io_uring_buf_ring_mask(QT_SRV_RECV_BUFS);
    for (uint32_t i = 0; i < QT_SRV_RECV_BUFS; i++)
        io_uring_buf_ring_add(*out, *bufs + (size_t)i * QT_SRV_RECV_BUF_BYTES,
                              QT_SRV_RECV_BUF_BYTES, (unsigned short)i, mask, (int)i);
    io_uring_buf_ring_advance(*out, QT_SRV_RECV_BUFS);
    return 0;
}

static void
bufring_free(struct io_uring *ring, struct io_uring_buf_ring *br, uint8_t *bufs)
{
    if (br != NULL) {
        io_uring_unregister_buf_ring(ring, URING_BGID);
        munmap(br, QT_SRV_RECV_BUFS * sizeof(struct io_uring_buf));
    }
    if (bufs != NULL)
        munmap(bufs, (size_t)QT_SRV_RECV_BUFS * QT_SRV_RECV_BUF_BYTES);
}

int
net_uring_probe(int probe_fail_errno, const char **reason)
{
    if (probe_fail_errno != 0) {
        *reason = setup_reason(-probe_fail_errno);
        return -probe_fail_errno;
    }
    struct io_uring ring;
    int rc = ring_setup(&ring);
    if (rc != 0) {
        *reason = setup_reason(rc);
        return rc;
    }
    struct io_uring_probe *pr = io_uring_get_probe_ring(&ring);
    if (pr == NULL) {
        *reason = "io_uring opcode probe failed (kernel < 5.6)";
        rc = -EOPNOTSUPP;
    }
    for (size_t i = 0; rc == 0 && i < sizeof(net_ops) / sizeof(net_ops[0]); i++) {
        if (!io_uring_opcode_supported(pr, net_ops[i].op)) {
            *reason = net_ops[i].why;
            rc = -EOPNOTSUPP;
        }
    }
    if (pr != NULL)
        io_uring_free_probe(pr);
    struct io_uring_buf_ring *br = NULL;
    if (rc == 0 && (rc = bufring_setup(&ring, &br, NULL)) != 0)
        *reason = "io_uring provided-buffer rings unavailable (kernel < 5.19)";
    bufring_free(&ring, br, NULL);
    io_uring_queue_exit(&ring);
    return rc;
}

/* ---- submission helpers ------------------------------------------------------- */

static struct io_uring_sqe *
get_sqe(struct loop *l)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&l->u.ring);
    if (sqe == NULL) {
        io_uring_submit(&l->u.ring);
        sqe = io_uring_get_sqe(&l->u.ring);
    }
    qt_assert(sqe != NULL); /* the SQ was just emptied */
    return sqe;
}

static void
arm_wake(struct loop *l)
{
    struct io_uring_sqe *sqe = get_sqe(l);
    io_uring_prep_read(sqe, l->wake_fd, &l->u.wake_val, sizeof(l->u.wake_val), 0);
    io_uring_sqe_set_data64(sqe, UD(UD_WAKE, 0, 0));
}

static void
arm_recv(struct loop *l, struct conn *c)
{
    qt_assert(!c->recv_armed && !c->closing);
    struct io_uring_sqe *sqe = get_sqe(l);
    if (l->u.multishot_recv)
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    else
        io_uring_prep_recv(sqe, c->fd, NULL, QT_SRV_RECV_BUF_BYTES, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = URING_BGID;
    io_uring_sqe_set_data64(sqe, UD(UD_RECV, c->gen, c->slot));
    c->recv_armed = true;
    l->u.inflight++;
}

static void
cancel(struct loop *l, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(l);
    io_uring_prep_cancel64(sqe, ud, 0);
    io_uring_sqe_set_data64(sqe, UD(UD_CANCEL, 0, 0));
}

static int
uring_conn_start(struct loop *l, struct conn *c)
{
    arm_recv(l, c);
    return 0;
}

static void
uring_request_close(struct loop *l, struct conn *c, enum qt_close_why why)
{
    if (!c->closing)
        c->why = why;
    c->closing = true;
    if (c->recv_armed)
        cancel(l, UD(UD_RECV, c->gen, c->slot));
    else
        conn_finish(l, c);
}

/* ---- completions ------------------------------------------------------------------ */

static void
recv_data(struct loop *l, struct conn *c, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_BUFFER)) {
        c->why = QT_CLOSE_RESET;
        c->closing = true;
        return;
    }
    uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    qt_assert(bid < QT_SRV_RECV_BUFS && (uint32_t)cqe->res <= QT_SRV_RECV_BUF_BYTES);
    uint8_t *buf = l->u.bufs + (size_t)bid * QT_SRV_RECV_BUF_BYTES;
    conn_data(l, c, buf, (size_t)cqe->res);
    io_uring_buf_ring_add(l->u.br, buf, QT_SRV_RECV_BUF_BYTES, (unsigned short)bid,
                          io_uring_buf_ring_mask(QT_SRV_RECV_BUFS), 0);
    io_uring_buf_ring_advance(l->u.br, 1);
}

/* After a receive completion: close, re-arm or leave alone. */
static void
recv_after(struct loop *l, struct conn *c, bool final, int res)
{
    if (!final) {
        if (c->closing) /* conn_data decided to close: stop the multishot receive */
            cancel(l, UD(UD_RECV, c->gen, c->slot));
        return;
    }
    c->recv_armed = false;
    l->u.inflight--;
    if (res == 0 && !c->closing) {
        conn_eof(l, c);
        c->why = c->why == QT_CLOSE_STORAGE ? c->why : QT_CLOSE_PEER;
        c->closing = true;
    } else if (res < 0 && res != -ENOBUFS && res != -ECANCELED && !c->closing) {
        c->why = QT_CLOSE_RESET;
        c->closing = true;
    }
    if (c->closing)
        conn_finish(l, c);
    else if (!atomic_load(&l->net->loop_stop))
        arm_recv(l, c); /* single-shot, ENOBUFS, or a multishot that ended */
}

static void
on_recv(struct loop *l, const struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;
    struct conn *c = loop_conn(l, UD_SLOT(ud), UD_GEN(ud));
    qt_assert(c != NULL); /* a conn outlives its receive's last completion */
    bool final = !(cqe->flags & IORING_CQE_F_MORE);
    if (cqe->res == -EINVAL && l->u.multishot_recv) {
        l->u.multishot_recv = false; /* kernel < 6.0: single-shot from now on */
        qt_log(QT_LOG_INFO, "net: multishot receive unsupported, using single-shot");
        qt_assert(final);
        c->recv_armed = false;
        l->u.inflight--;
        arm_recv(l, c);
        return;
    }
    if (cqe->res > 0)
        recv_data(l, c, cqe);
    recv_after(l, c, final, cqe->res);
}

static void
on_accept(struct loop *l, const struct io_uring_cqe *cqe)
{
    enum qt_proto proto = (enum qt_proto)UD_SLOT(cqe->user_data);
    qt_assert(proto <= QT_PROTO_GRAPHITE);
    if (cqe->res >= 0) {
        net_dispatch(l->net, cqe->res, proto);
    } else if (cqe->res != -ECANCELED) {
        qt_log_ratelimited(&l->lim_conn, QT_SRV_LOG_PER_SEC, QT_LOG_WARN, "net: accept: %s",
                           strerror(-cqe->res));
        if (cqe->res == -EMFILE || cqe->res == -ENFILE || cqe->res == -ENOMEM)
            usleep(10000); /* out of descriptors: let closes catch up */
    }
    if (cqe->flags & IORING_CQE_F_MORE)
        return;
    if (cqe->res == -EINVAL && l->u.multishot_accept) {
        l->u.multishot_accept = false;
        qt_log(QT_LOG_INFO, "net: multishot accept unsupported, using single-shot");
    }
    if (atomic_load(&l->net->acc_stop)) {
        l->u.inflight--;
        return;
    }
    struct io_uring_sqe *sqe = get_sqe(l);
    int lfd = l->net->listen_fd[proto];
    if (l->u.multishot_accept)
        io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    else
        io_uring_prep_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    io_uring_sqe_set_data64(sqe, UD(UD_ACCEPT, 0, proto));
}

static void
on_cqe(struct loop *l, const struct io_uring_cqe *cqe)
{
    switch (UD_TYPE(cqe->user_data)) {
    case UD_WAKE:
        if (l->idx != UINT32_MAX)
            loop_take_inbox(l, uring_conn_start);
        arm_wake(l); /* the ring's exit cancels the last one */
        break;
    case UD_ACCEPT: on_accept(l, cqe); break;
    case UD_RECV: on_recv(l, cqe); break;
    case UD_CANCEL: break; /* the target's own completion does the work */
    default: qt_unreachable();
    }
}

/* Wait up to timeout_ms for completions and handle them all. */
static void
uring_poll(struct loop *l, int64_t timeout_ms)
{
    struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                   .tv_nsec = (timeout_ms % 1000) * 1000000};
    struct io_uring_cqe *cqe;
    int rc = io_uring_submit_and_wait_timeout(&l->u.ring, &cqe, 1, &ts, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY)
        qt_log_ratelimited(&l->lim_conn, 1, QT_LOG_WARN, "net: io_uring wait: %s", strerror(-rc));
    unsigned head, n = 0;
    io_uring_for_each_cqe(&l->u.ring, head, cqe)
    {
        on_cqe(l, cqe);
        n++;
    }
    io_uring_cq_advance(&l->u.ring, n);
}

/* ---- threads ---------------------------------------------------------------------- */

static int
start_noarm(struct loop *l, struct conn *c)
{
    (void)l;
    (void)c;
    return 0;
}

/* Stop: cancel every receive, handle what they still deliver, read what the
 * sockets hold, store it, close. */
static void
uring_shutdown(struct loop *l)
{
    loop_take_inbox(l, start_noarm);
    for (uint32_t i = 0; i < l->conns_cap; i++) {
        struct conn *c = l->conns[i];
        if (c != NULL && c->recv_armed)
            cancel(l, UD(UD_RECV, c->gen, c->slot));
    }
    while (l->u.inflight > 0)
        uring_poll(l, 100);
    for (uint32_t i = 0; i < l->conns_cap; i++)
        if (l->conns[i] != NULL)
            conn_drain_socket(l, l->conns[i]);
    loop_commit(l);
    for (uint32_t i = 0; i < l->conns_cap; i++) {
        struct conn *c = l->conns[i];
        if (c == NULL)
            continue;
        if (!c->closing)
            c->why = c->eof ? QT_CLOSE_PEER : QT_CLOSE_SHUTDOWN;
        conn_finish(l, c);
    }
}

static void *
uring_run_loop(struct loop *l)
{
    arm_wake(l);
    while (!atomic_load(&l->net->loop_stop)) {
        uring_poll(l, 1000);
        loop_commit(l);
        loop_sweep(l, uring_request_close);
    }
    uring_shutdown(l);
    return NULL;
}

static void
arm_accept(struct loop *l, enum qt_proto proto)
{
    struct io_uring_sqe *sqe = get_sqe(l);
    io_uring_prep_multishot_accept(sqe, l->net->listen_fd[proto], NULL, NULL,
                                   SOCK_CLOEXEC | SOCK_NONBLOCK);
    io_uring_sqe_set_data64(sqe, UD(UD_ACCEPT, 0, proto));
    l->u.inflight++;
}

static void *
uring_run_acceptor(struct loop *l)
{
    for (int p = 0; p < 2; p++)
        if (l->net->listen_fd[p] >= 0)
            arm_accept(l, (enum qt_proto)p);
    arm_wake(l);
    while (!atomic_load(&l->net->acc_stop))
        uring_poll(l, 1000);
    for (int p = 0; p < 2; p++)
        if (l->net->listen_fd[p] >= 0)
            cancel(l, UD(UD_ACCEPT, 0, p));
    while (l->u.inflight > 0)
        uring_poll(l, 100);
    net_accept_backlog(l->net);
    return NULL;
}

static void *
uring_run(void *arg)
{
    struct loop *l = arg;
    return l->idx == UINT32_MAX ? uring_run_acceptor(l) : uring_run_loop(l);
}

static void
uring_stop(struct loop *l)
{
    uint64_t one = 1;
    ssize_t w = write(l->wake_fd, &one, sizeof(one));
    (void)w;
}

static int
uring_init(struct loop *l)
{
    int rc = ring_setup(&l->u.ring);
    if (rc != 0) {
        qt_log(QT_LOG_ERROR, "net: %s", setup_reason(rc));
        return rc;
    }
    l->u.ring_ok = true;
    l->u.multishot_recv = true;
    l->u.multishot_accept = true;
    if (l->idx == UINT32_MAX)
        return 0;
    return bufring_setup(&l->u.ring, &l->u.br, &l->u.bufs);
}

static void
uring_fini(struct loop *l)
{
    if (!l->u.ring_ok)
        return;
    bufring_free(&l->u.ring, l->u.br, l->u.bufs);
    l->u.br = NULL;
    l->u.bufs = NULL;
    io_uring_queue_exit(&l->u.ring);
    l->u.ring_ok = false;
}

const struct net_backend net_uring_backend = {
    .name = "uring",
    .init = uring_init,
    .fini = uring_fini,
    .run = uring_run,
    .stop = uring_stop,
};
