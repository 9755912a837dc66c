/*
 * netloop_int.h -- internals shared by netloop.c (connections, batching,
 * timeouts, hand-off) and its two backends, netloop_uring.c and
 * netloop_epoll.c.
 *
 * Ownership: a connection belongs to exactly one loop thread from hand-off
 * to close; only that thread touches it.  The only cross-thread state is
 * each loop's inbox (mutex) and wake eventfd, the stop flag and the
 * atomic counters.
 */
#ifndef QT_NETLOOP_INT_H
#define QT_NETLOOP_INT_H

#include "format/qt_log.h"
#include "server/ingest.h"
#include "server/netloop.h"

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct loop;

struct conn {
    struct loop *loop;
    int fd;
    uint32_t slot; /* index in the loop's table */
    uint32_t gen;  /* bumped on every reuse of the slot */
    enum qt_proto proto;
    bool recv_armed; /* uring: a receive is in flight */
    bool closing;    /* close requested; finished when no receive is in flight */
    bool eof;        /* peer closed its side */
    enum qt_close_why why;
    int64_t last_rx_ms;
    int64_t partial_since_ms; /* when the current unfinished line started */
    uint64_t partial_line_no;
    struct qt_ingest_stream st;
    char peer[64];
};

/* A connection handed from the acceptor to a loop. */
struct handoff {
    int fd;
    enum qt_proto proto;
};

/* Backend operations (ORDER BACKENDS: uring, epoll). */
struct net_backend {
    const char *name;
    int (*init)(struct loop *l);  /* ring/epoll; for the acceptor also the listeners */
    void (*fini)(struct loop *l); /* after the thread ended */
    void *(*run)(void *arg);      /* thread main */
    void (*stop)(struct loop *l); /* any thread: wake it to see its stop flag */
};

struct uring_state {
    struct io_uring ring;
    bool ring_ok;
    struct io_uring_buf_ring *br;
    uint8_t *bufs;
    bool multishot_recv;
    bool multishot_accept;
    uint64_t wake_val; /* eventfd read target */
    uint32_t inflight; /* receives in flight */
};

struct epoll_state {
    int epfd;
};

struct loop {
    struct qt_net *net;
    uint32_t idx; /* UINT32_MAX for the acceptor */
    pthread_t thr;
    bool started;
    int wake_fd; /* eventfd */
    /* inbox (acceptor -> loop) */
    pthread_mutex_t mu;
    struct handoff *inbox;
    uint32_t inbox_n, inbox_cap;
    _Atomic uint32_t nconns;
    /* connections (loop thread only) */
    struct conn **conns;
    uint32_t conns_cap, conns_live;
    uint32_t *free_slots;
    uint32_t free_n;
    /* ingest working memory */
    uint8_t *rbuf; /* QT_SRV_RECV_BUF_BYTES: epoll reads, shutdown drain */
    struct qt_ingest_batch batch;
    struct qt_ilp_point *point;
    char *scratch;
    int64_t last_sweep_ms;
    int storage_rc; /* first storage error met */
    struct qt_log_limit lim_bad, lim_rej, lim_conn;
    struct uring_state u; /* backend state: one of the two is used */
    struct epoll_state e;
};

struct qt_net {
    struct qt_net_opts o;
    const struct qt_srv_config *cfg;
    const struct net_backend *be;
    const char *fallback_reason;
    struct loop acc;
    struct loop *loops;
    uint32_t nloops;
    int listen_fd[2];             /* by enum qt_proto: ILP, Graphite */
    _Atomic bool acc_stop;        /* acceptor: stop (after a last accept sweep) */
    _Atomic bool loop_stop;       /* loops: drain, commit, close, exit */
    _Atomic uint64_t conns_total; /* open across all loops */
};

extern const struct net_backend net_uring_backend;
extern const struct net_backend net_epoll_backend;

/* io_uring availability for the network: 0, or -errno with *reason. */
int net_uring_probe(int probe_fail_errno, const char **reason);

int64_t net_now_ms(void);

/* ---- loop-side helpers (netloop.c), called on the loop's thread ------- */

/* Take the handed-off fds: new conns, each passed to start(); a start
 * failure closes that connection. */
void loop_take_inbox(struct loop *l, int (*start)(struct loop *l, struct conn *c));
/* Bytes arrived on c. */
void conn_data(struct loop *l, struct conn *c, const uint8_t *data, size_t len);
/* The peer finished sending (FIN): the last line needs no newline. */
void conn_eof(struct loop *l, struct conn *c);
/* Close now (no receive in flight): commit-side effects, fd, slot. */
void conn_finish(struct loop *l, struct conn *c);
/* Look up a live conn by slot and generation; NULL if gone. */
struct conn *loop_conn(struct loop *l, uint32_t slot, uint32_t gen);
/* Commit the loop's batch to storage (if non-empty). */
void loop_commit(struct loop *l);
/* Every second: connections past their idle or slow timeout get
 * request_close(c, why).  */
void loop_sweep(struct loop *l,
                void (*request_close)(struct loop *l, struct conn *c, enum qt_close_why why));
/* Read what c's socket already holds without blocking (shutdown drain). */
void conn_drain_socket(struct loop *l, struct conn *c);

/* ---- acceptor side --------------------------------------------------------- */

/* A new connection on listener proto: enforce max-connections, pick a loop,
 * hand off.  Takes ownership of fd. */
void net_dispatch(struct qt_net *n, int fd, enum qt_proto proto);
/* Accept (non-blocking) until the listener's backlog is empty: at stop, so
 * connections the kernel already completed are served, not reset. */
void net_accept_backlog(struct qt_net *n);

#endif
