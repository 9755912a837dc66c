/*
 * netloop_epoll.c -- the epoll backend of the TCP ingest loops (the
 * fallback when io_uring is unavailable or --io posix).
 *
 * Level-triggered epoll per thread.  A readable connection is read at most
 * EPOLL_READS_PER_WAKE times per wake-up into the loop's one receive
 * buffer, so a fast sender cannot starve the loop's other connections; the
 * kernel reports it again on the next wait.  The acceptor registers each
 * listener with EPOLLEXCLUSIVE-free plain EPOLLIN (it is the only thread
 * accepting) and accepts until EAGAIN.
 */
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "server/netloop_int.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define EPOLL_EVENTS_MAX     256
#define EPOLL_READS_PER_WAKE 4

/* epoll_event.data.u64: the wake fd, a listener, or a connection. */
#define EV_WAKE     (UINT64_C(1) << 62)
#define EV_LISTENER (UINT64_C(2) << 62)
#define EV_CONN     (UINT64_C(3) << 62)
#define EV_KIND(v)  ((v) & (UINT64_C(3) << 62))

static uint64_t
ev_conn(const struct conn *c)
{
    return EV_CONN | ((uint64_t)c->gen << 32) | c->slot;
}

static int
epoll_conn_start(struct loop *l, struct conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = ev_conn(c)};
    if (epoll_ctl(l->e.epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        return -errno;
    return 0;
}

static void
epoll_request_close(struct loop *l, struct conn *c, enum qt_close_why why)
{
    if (!c->closing)
        c->why = why;
    c->closing = true;
    conn_finish(l, c); /* closing the fd removes it from the epoll set */
}

static void
epoll_conn_ready(struct loop *l, struct conn *c)
{
    for (int i = 0; i < EPOLL_READS_PER_WAKE && !c->closing; i++) {
        ssize_t r = recv(c->fd, l->rbuf, QT_SRV_RECV_BUF_BYTES, 0);
        if (r > 0) {
            conn_data(l, c, l->rbuf, (size_t)r);
            if ((size_t)r < QT_SRV_RECV_BUF_BYTES)
                break; /* drained for now */
            continue;
        }
        if (r == 0) {
            conn_eof(l, c);
            if (!c->closing)
                c->why = QT_CLOSE_PEER;
            c->closing = true;
        } else if (errno == EAGAIN || errno == EINTR) {
            break;
        } else if (!c->closing) {
            c->why = QT_CLOSE_RESET;
            c->closing = true;
        }
    }
    if (c->closing)
        conn_finish(l, c);
}

static void
epoll_wait_once(struct loop *l, int timeout_ms)
{
    struct epoll_event evs[EPOLL_EVENTS_MAX];
    int n = epoll_wait(l->e.epfd, evs, EPOLL_EVENTS_MAX, timeout_ms);
    for (int i = 0; i < n; i++) {
        uint64_t v = evs[i].data.u64;
        switch (EV_KIND(v)) {
        case EV_WAKE: {
            uint64_t cnt;
            ssize_t r = read(l->wake_fd, &cnt, sizeof(cnt));
            (void)r;
            if (l->idx != UINT32_MAX)
                loop_take_inbox(l, epoll_conn_start);
            break;
        }
        case EV_LISTENER: {
            enum qt_proto proto = (enum qt_proto)(v & 1u);
            for (;;) {
                int fd =
                    accept4(l->net->listen_fd[proto], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd >= 0) {
                    net_dispatch(l->net, fd, proto);
                    continue;
                }
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    qt_log_ratelimited(&l->lim_conn, QT_SRV_LOG_PER_SEC, QT_LOG_WARN,
                                       "net: accept: %s", strerror(errno));
                if (errno == EMFILE || errno == ENFILE)
                    usleep(10000);
                break;
            }
            break;
        }
        default: {
            struct conn *c = loop_conn(l, (uint32_t)v, (uint32_t)(v >> 32) & 0xffffffu);
            if (c != NULL) /* NULL: closed earlier in this batch of events */
                epoll_conn_ready(l, c);
        }
        }
    }
}

static void
epoll_shutdown(struct loop *l)
{
    loop_take_inbox(l, epoll_conn_start);
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
epoll_run(void *arg)
{
    struct loop *l = arg;
    if (l->idx == UINT32_MAX) {
        while (!atomic_load(&l->net->acc_stop))
            epoll_wait_once(l, 1000);
        net_accept_backlog(l->net);
        return NULL;
    }
    while (!atomic_load(&l->net->loop_stop)) {
        epoll_wait_once(l, 1000);
        loop_commit(l);
        loop_sweep(l, epoll_request_close);
    }
    epoll_shutdown(l);
    return NULL;
}

static void
epoll_stop(struct loop *l)
{
    uint64_t one = 1;
    ssize_t w = write(l->wake_fd, &one, sizeof(one));
    (void)w;
}

static int
epoll_init(struct loop *l)
{
    l->e.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->e.epfd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_WAKE};
    if (epoll_ctl(l->e.epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) != 0)
        return -errno;
    if (l->idx != UINT32_MAX)
        return 0;
    for (uint32_t p = 0; p < 2; p++) {
        if (l->net->listen_fd[p] < 0)
            continue;
        ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = EV_LISTENER | p};
        if (epoll_ctl(l->e.epfd, EPOLL_CTL_ADD, l->net->listen_fd[p], &ev) != 0)
            return -errno;
    }
    return 0;
}

static void
epoll_fini(struct loop *l)
{
    if (l->e.epfd >= 0)
        close(l->e.epfd);
    l->e.epfd = -1;
}

const struct net_backend net_epoll_backend = {
    .name = "epoll",
    .init = epoll_init,
    .fini = epoll_fini,
    .run = epoll_run,
    .stop = epoll_stop,
};
