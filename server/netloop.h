/*
 * netloop.h -- TCP ingest: listeners, an accept thread and N event-loop
 * threads for line protocol and Graphite (design/server.md "Threads").
 *
 *   acceptor   one thread; accepts on the ILP and Graphite listeners
 *              (io_uring multishot accept, or epoll) and hands each new
 *              connection to the loop with the fewest connections.
 *   loops      N threads, each with its own io_uring (multishot receive
 *              into a ring of provided buffers) or epoll instance, its own
 *              connections and its own batch: bytes are split into lines,
 *              parsed, batched across all of the loop's connections and
 *              passed to qt_db_write() when the batch fills or the loop has
 *              no more completions.  No lock is shared between loops on
 *              this path; the engine group-commits their writes.
 *
 * Backpressure: qt_db_write() blocks while storage is over its memory
 * budget, and a blocked loop stops reading; its sockets' kernel buffers
 * (and at most QT_SRV_RECV_BUFS provided buffers) fill and TCP flow
 * control pushes back on the senders.  Nothing is buffered without bound.
 *
 * The backend is chosen once for all threads: io_uring when `io` is
 * QT_IO_URING or QT_IO_AUTO and the probe passes (ring setup, provided
 * buffer ring, opcodes), else epoll; auto logs why it fell back.
 */
#ifndef QT_NETLOOP_H
#define QT_NETLOOP_H

#include "server/metrics.h"
#include "server/srvconf.h"
#include "storage/db.h"

#include <stdbool.h>
#include <stdint.h>

struct qt_net;

/*
 * Create a listening TCP socket for a (SO_REUSEADDR, CLOEXEC, backlog
 * SOMAXCONN) and write the bound address ("127.0.0.1:41234": the real port
 * when a asked for port 0) to bound.  0 or -errno (the message logged).
 */
int qt_net_listen(const struct qt_srv_addr *a, int *fd, char *bound, size_t cap);

struct qt_net_opts {
    const struct qt_srv_config *cfg; /* timeouts, limits, templates (borrowed) */
    struct qt_db *db;                /* borrowed */
    struct qt_srv_metrics *metrics;  /* borrowed */
    uint32_t loops;                  /* >= 1 */
    int ilp_fd, graphite_fd;         /* listening sockets or -1; owned from here on */
    /* Tests: fail the io_uring probe as if ring setup returned -errno. */
    int probe_fail_errno;
};

/* Create the threads' state and resolve the backend (cfg->io).  With
 * QT_IO_URING and no usable io_uring: the -errno, reason logged.  The
 * listening fds are closed by qt_net_destroy (also on failure here). */
int qt_net_create(const struct qt_net_opts *o, struct qt_net **out);

/* Start the acceptor and the loops. */
int qt_net_start(struct qt_net *n);

/*
 * Graceful stop: close the listeners (no new connections), let each loop
 * read what its connections' sockets already hold, store every complete
 * line, close the connections and join the threads.  A line still
 * unfinished at that moment is dropped (counted as bad).  Returns 0, or the
 * storage error a loop met.
 */
int qt_net_stop(struct qt_net *n);

/* Free everything (after stop, or instead of start). */
void qt_net_destroy(struct qt_net *n);

/* "uring" or "epoll". */
const char *qt_net_backend(const struct qt_net *n);
/* Why auto chose epoll ("" if it did not). */
const char *qt_net_fallback_reason(const struct qt_net *n);

#endif
