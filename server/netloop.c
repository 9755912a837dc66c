/*
 * netloop.c -- TCP ingest threads: backend choice, listeners, hand-off,
 * and everything a loop does with a connection's bytes (netloop.h).  The
 * event mechanics live in netloop_uring.c and netloop_epoll.c.
 *
 * Connection life: accepted by the acceptor -> counted in conns_total ->
 * pushed to the least loaded loop's inbox -> the loop creates a struct conn
 * and arms a receive -> bytes go through the conn's ingest stream into the
 * loop's batch -> closed by the peer, an error, a timeout, a storage
 * failure or shutdown.  A close is two steps on io_uring (cancel the
 * receive, then finish when its last completion arrives) and one on epoll;
 * conn_finish() is the single place a connection's fd and memory go.
 *
 * Durability window (design/server.md): a line is durable once the loop's
 * batch holding it has been committed (qt_db_write returned 0 under the
 * fsync policy).  Until then it can be lost by a crash: bytes in kernel
 * socket buffers, in provided buffers not yet processed, in a carry-over
 * partial line, or in the current batch (at most batch-lines lines).
 */
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "server/netloop_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *const proto_name[2] = {"ilp", "graphite"};

int64_t
net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
now_ns_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
qt_net_listen(const struct qt_srv_addr *a, int *fd, char *bound, size_t cap)
{
    qt_assert(a != NULL && a->enabled && fd != NULL);
    int s = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) {
        int e = errno;
        qt_log(QT_LOG_ERROR, "net: socket for %s: %s", a->text, strerror(e));
        return -e;
    }
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (const struct sockaddr *)&a->ss, a->ss_len) != 0 || listen(s, SOMAXCONN) != 0) {
        int e = errno;
        qt_log(QT_LOG_ERROR, "net: cannot listen on %s: %s", a->text, strerror(e));
        close(s);
        return -e;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(s, (struct sockaddr *)&ss, &len) == 0)
        qt_srv_addr_format((const struct sockaddr *)&ss, bound, cap);
    else
        snprintf(bound, cap, "%s", a->text);
    *fd = s;
    return 0;
}

/* ---- hand-off ------------------------------------------------------------------ */

void
net_dispatch(struct qt_net *n, int fd, enum qt_proto proto)
{
    qt_assert(fd >= 0 && proto <= QT_PROTO_GRAPHITE);
    struct qt_srv_metrics *m = n->o.metrics;
    uint64_t open = atomic_fetch_add(&n->conns_total, 1) + 1;
    if (open > n->cfg->conn_max) {
        atomic_fetch_sub(&n->conns_total, 1);
        atomic_fetch_add_explicit(&m->conns_refused, 1, memory_order_relaxed);
        qt_log_ratelimited(&n->acc.lim_conn, QT_SRV_LOG_PER_SEC, QT_LOG_WARN,
                           "net: %s connection refused: max-connections (%u) reached",
                           proto_name[proto], n->cfg->conn_max);
        close(fd);
        return;
    }
    struct loop *best = &n->loops[0];
    for (uint32_t i = 1; i < n->nloops; i++)
        if (atomic_load(&n->loops[i].nconns) < atomic_load(&best->nconns))
            best = &n->loops[i];
    atomic_fetch_add(&best->nconns, 1);
    atomic_fetch_add_explicit(&m->conns_accepted[proto], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->conns_open[proto], 1, memory_order_relaxed);
    pthread_mutex_lock(&best->mu);
    if (best->inbox_n == best->inbox_cap) {
        uint32_t cap = best->inbox_cap ? best->inbox_cap * 2 : 64;
        struct handoff *p = qt_realloc(best->inbox, sizeof(*p) * cap);
        if (p == NULL) {
            pthread_mutex_unlock(&best->mu);
            qt_log(QT_LOG_WARN, "net: out of memory handing off a connection");
            atomic_fetch_sub(&best->nconns, 1);
            atomic_fetch_sub(&n->conns_total, 1);
            atomic_fetch_sub_explicit(&m->conns_open[proto], 1, memory_order_relaxed);
            close(fd);
            return;
        }
        best->inbox = p;
        best->inbox_cap = cap;
    }
    best->inbox[best->inbox_n++] = (struct handoff){.fd = fd, .proto = proto};
    pthread_mutex_unlock(&best->mu);
    uint64_t one = 1;
    ssize_t w = write(best->wake_fd, &one, sizeof(one));
    (void)w; /* the counter saturating still leaves it readable */
}

/* ---- connections ----------------------------------------------------------------- */

static int conn_on_error(void *arg, const struct qt_ilp_line_error *e);
static int loop_on_full(void *arg, struct qt_ingest_batch *b);

static uint64_t
conn_origin(const struct conn *c)
{
    return ((uint64_t)c->proto << 62) | ((uint64_t)(c->gen & 0x3fffffffu) << 32) | c->slot;
}

static struct conn *
conn_new(struct loop *l, const struct handoff *h)
{
    if (l->free_n == 0) {
        uint32_t cap = l->conns_cap ? l->conns_cap * 2 : 64;
        struct conn **cs = qt_realloc(l->conns, sizeof(*cs) * cap);
        if (cs == NULL)
            return NULL;
        l->conns = cs;
        uint32_t *fs = qt_realloc(l->free_slots, sizeof(*fs) * cap);
        if (fs == NULL)
            return NULL;
        l->free_slots = fs;
        for (uint32_t i = l->conns_cap; i < cap; i++) {
            l->conns[i] = NULL;
            l->free_slots[l->free_n++] = cap - 1 - (i - l->conns_cap);
        }
        l->conns_cap = cap;
    }
    struct conn *c = qt_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    uint32_t slot = l->free_slots[--l->free_n];
    qt_assert(slot < l->conns_cap && l->conns[slot] == NULL);
    static _Atomic uint32_t gen_seq;
    *c = (struct conn){.loop = l,
                       .fd = h->fd,
                       .slot = slot,
                       .gen = atomic_fetch_add(&gen_seq, 1) & 0xffffffu,
                       .proto = h->proto,
                       .last_rx_ms = net_now_ms()};
    l->conns[slot] = c;
    l->conns_live++;
    return c;
}

static void
conn_setup_stream(struct loop *l, struct conn *c)
{
    const struct qt_srv_config *cfg = l->net->cfg;
    struct qt_ingest_stream_opts so = {.proto = c->proto == QT_PROTO_GRAPHITE ? QT_INGEST_GRAPHITE
                                                                              : QT_INGEST_ILP,
                                       .precision = QT_ILP_NS,
                                       .gcfg = cfg->graphite_cfg,
                                       .line_max = cfg->line_max,
                                       .origin = conn_origin(c),
                                       .on_error = conn_on_error,
                                       .err_arg = c,
                                       .on_full = loop_on_full,
                                       .full_arg = l};
    qt_ingest_stream_init(&c->st, &so, l->point, l->scratch, QT_ILP_SCRATCH_MAX);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0)
        qt_srv_addr_format((const struct sockaddr *)&ss, c->peer, sizeof(c->peer));
    else
        snprintf(c->peer, sizeof(c->peer), "?");
}

void
loop_take_inbox(struct loop *l, int (*start)(struct loop *l, struct conn *c))
{
    pthread_mutex_lock(&l->mu);
    uint32_t n = l->inbox_n;
    struct handoff local[64];
    if (n > 64)
        n = 64; /* the rest on the next wake-up: re-signal below */
    if (n > 0) {
        memcpy(local, l->inbox, sizeof(local[0]) * n);
        memmove(l->inbox, l->inbox + n, sizeof(local[0]) * (l->inbox_n - n));
        l->inbox_n -= n;
    }
    bool more = l->inbox_n > 0;
    pthread_mutex_unlock(&l->mu);
    if (more) {
        uint64_t one = 1;
        ssize_t w = write(l->wake_fd, &one, sizeof(one));
        (void)w;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct conn *c = conn_new(l, &local[i]);
        if (c == NULL) {
            qt_log(QT_LOG_WARN, "net: out of memory for a connection");
            struct conn tmp = {.loop = l, .fd = local[i].fd, .proto = local[i].proto};
            tmp.why = QT_CLOSE_RESET;
            close(tmp.fd);
            atomic_fetch_sub(&l->nconns, 1);
            atomic_fetch_sub(&l->net->conns_total, 1);
            atomic_fetch_sub(&l->net->o.metrics->conns_open[tmp.proto], 1);
            continue;
        }
        conn_setup_stream(l, c);
        if (start(l, c) != 0) {
            c->why = QT_CLOSE_RESET;
            conn_finish(l, c);
        }
    }
}

struct conn *
loop_conn(struct loop *l, uint32_t slot, uint32_t gen)
{
    if (slot >= l->conns_cap)
        return NULL;
    struct conn *c = l->conns[slot];
    return c != NULL && c->gen == gen ? c : NULL;
}

void
conn_finish(struct loop *l, struct conn *c)
{
    qt_assert(l->conns[c->slot] == c);
    qt_assert(!c->recv_armed);
    struct qt_srv_metrics *m = l->net->o.metrics;
    if (c->why == QT_CLOSE_PEER)
        loop_commit(l); /* the peer sees our close only after its lines are stored */
    if (qt_ingest_stream_pending(&c->st) > 0) {
        atomic_fetch_add_explicit(&m->bad_lines[c->proto], 1, memory_order_relaxed);
        qt_log_ratelimited(&l->lim_bad, QT_SRV_LOG_PER_SEC, QT_LOG_WARN,
                           "%s: %s: unfinished line of %u bytes dropped at close",
                           proto_name[c->proto], c->peer, qt_ingest_stream_pending(&c->st));
    }
    qt_ingest_stream_deinit(&c->st);
    close(c->fd);
    atomic_fetch_add_explicit(&m->conns_closed[c->why], 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&m->conns_open[c->proto], 1, memory_order_relaxed);
    atomic_fetch_sub(&l->nconns, 1);
    atomic_fetch_sub(&l->net->conns_total, 1);
    l->conns[c->slot] = NULL;
    l->free_slots[l->free_n++] = c->slot;
    l->conns_live--;
    qt_free(c);
}

static int
conn_on_error(void *arg, const struct qt_ilp_line_error *e)
{
    struct conn *c = arg;
    struct loop *l = c->loop;
    atomic_fetch_add_explicit(&l->net->o.metrics->bad_lines[c->proto], 1, memory_order_relaxed);
    qt_log_ratelimited(&l->lim_bad, QT_SRV_LOG_PER_SEC, QT_LOG_WARN,
                       "%s: %s: line %llu dropped (column %u): %s", proto_name[c->proto], c->peer,
                       (unsigned long long)e->line_no, e->column, e->reason);
    return 0;
}

/* Account for the lines of c's feed and track its unfinished line. */
static void
conn_after_feed(struct loop *l, struct conn *c, uint64_t line_before, bool had_partial)
{
    int64_t now = net_now_ms();
    c->last_rx_ms = now;
    if (qt_ingest_stream_pending(&c->st) == 0)
        return;
    if (!had_partial || c->st.split.line_no != line_before) {
        c->partial_since_ms = now;
        c->partial_line_no = c->st.split.line_no;
    }
}

void
conn_data(struct loop *l, struct conn *c, const uint8_t *data, size_t len)
{
    qt_assert(len > 0);
    atomic_fetch_add_explicit(&l->net->o.metrics->bytes[c->proto], len, memory_order_relaxed);
    if (c->closing)
        return; /* closing for a reason already; drop */
    uint64_t line_before = c->st.split.line_no;
    bool had_partial = qt_ingest_stream_pending(&c->st) > 0;
    int rc = qt_ingest_stream_feed(&c->st, &l->batch, data, len, false, now_ns_real());
    conn_after_feed(l, c, line_before, had_partial);
    if (rc == QT_ENOMEM)
        c->why = QT_CLOSE_RESET, c->closing = true;
    else if (rc != 0)
        c->why = QT_CLOSE_STORAGE, c->closing = true;
}

void
conn_eof(struct loop *l, struct conn *c)
{
    c->eof = true;
    if (c->closing || qt_ingest_stream_pending(&c->st) == 0)
        return;
    int rc = qt_ingest_stream_feed(&c->st, &l->batch, NULL, 0, true, now_ns_real());
    if (rc != 0)
        c->why = QT_CLOSE_STORAGE;
}

void
conn_drain_socket(struct loop *l, struct conn *c)
{
    for (uint32_t i = 0; i < 1024 && !c->closing && !c->eof; i++) {
        ssize_t r = recv(c->fd, l->rbuf, QT_SRV_RECV_BUF_BYTES, MSG_DONTWAIT);
        if (r > 0) {
            conn_data(l, c, l->rbuf, (size_t)r);
        } else if (r == 0) {
            conn_eof(l, c);
        } else if (errno != EINTR) {
            break; /* EAGAIN: nothing more was received; or an error */
        }
    }
}

/* ---- batches -------------------------------------------------------------------- */

struct reject_ctx {
    struct loop *l;
    uint64_t lines[2], points[2];
};

static void
loop_on_reject(void *arg, uint64_t origin, const struct qt_batch_line *line, int code,
               const char *reason)
{
    struct reject_ctx *x = arg;
    uint32_t proto = (uint32_t)(origin >> 62) & 1u;
    x->lines[proto]++;
    x->points[proto] += line->n_fields;
    struct conn *c = loop_conn(x->l, (uint32_t)origin, (uint32_t)(origin >> 32) & 0x3fffffffu);
    qt_log_ratelimited(&x->l->lim_rej, QT_SRV_LOG_PER_SEC, QT_LOG_WARN,
                       "%s: %s: line refused by storage: %s (%s)", proto_name[proto],
                       c != NULL ? c->peer : "(closed connection)", reason, qt_strerror(code));
}

void
loop_commit(struct loop *l)
{
    if (l->batch.n == 0)
        return;
    struct qt_srv_metrics *m = l->net->o.metrics;
    struct reject_ctx x = {.l = l};
    uint64_t lines[2] = {0, 0}, points[2] = {0, 0};
    for (uint32_t i = 0; i < l->batch.n; i++) { /* lines per protocol (origin bit 62) */
        uint32_t p = (uint32_t)(l->batch.origin[i] >> 62) & 1u;
        lines[p]++;
        points[p] += l->batch.lines[i].n_fields;
    }
    int rc = qt_ingest_batch_commit(&l->batch, l->net->o.db, loop_on_reject, &x, NULL);
    atomic_fetch_add_explicit(&m->storage_writes, 1, memory_order_relaxed);
    for (uint32_t p = 0; p < 2; p++) {
        if (rc != 0) {
            x.lines[p] = lines[p];
            x.points[p] = points[p];
        }
        atomic_fetch_add_explicit(&m->lines[p], lines[p] - x.lines[p], memory_order_relaxed);
        atomic_fetch_add_explicit(&m->points[p], points[p] - x.points[p], memory_order_relaxed);
        atomic_fetch_add_explicit(&m->rejected_lines[p], x.lines[p], memory_order_relaxed);
    }
    if (rc != 0) {
        if (l->storage_rc == 0)
            qt_log(QT_LOG_ERROR, "net: storage refused a batch of %llu lines: %s (%s)",
                   (unsigned long long)(lines[0] + lines[1]), qt_strerror(rc), qt_err_detail());
        l->storage_rc = rc;
    }
}

static int
loop_on_full(void *arg, struct qt_ingest_batch *b)
{
    struct loop *l = arg;
    qt_assert(b == &l->batch);
    loop_commit(l);
    return l->storage_rc;
}

void
loop_sweep(struct loop *l,
           void (*request_close)(struct loop *l, struct conn *c, enum qt_close_why why))
{
    int64_t now = net_now_ms();
    if (now - l->last_sweep_ms < 1000)
        return;
    l->last_sweep_ms = now;
    const struct qt_srv_config *cfg = l->net->cfg;
    for (uint32_t i = 0; i < l->conns_cap; i++) {
        struct conn *c = l->conns[i];
        if (c == NULL || c->closing)
            continue;
        if (now - c->last_rx_ms >= (int64_t)cfg->idle_timeout_ms) {
            request_close(l, c, QT_CLOSE_IDLE);
        } else if (qt_ingest_stream_pending(&c->st) > 0 &&
                   now - c->partial_since_ms >= (int64_t)cfg->slow_timeout_ms) {
            qt_log_ratelimited(&l->lim_conn, QT_SRV_LOG_PER_SEC, QT_LOG_WARN,
                               "%s: %s: line %llu unfinished after %ums: closing slow client",
                               proto_name[c->proto], c->peer,
                               (unsigned long long)c->partial_line_no, cfg->slow_timeout_ms);
            request_close(l, c, QT_CLOSE_SLOW);
        }
    }
}

/* ---- create / start / stop ---------------------------------------------------------- */

static int
loop_init(struct qt_net *n, struct loop *l, uint32_t idx)
{
    l->net = n;
    l->idx = idx;
    l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    l->u.ring_ok = false;
    l->e.epfd = -1;
    pthread_mutex_init(&l->mu, NULL);
    if (l->wake_fd < 0)
        return -errno;
    if (idx == UINT32_MAX)
        return 0; /* the acceptor has no connections */
    l->rbuf = qt_malloc(QT_SRV_RECV_BUF_BYTES);
    l->point = qt_malloc(sizeof(*l->point));
    l->scratch = qt_malloc(QT_ILP_SCRATCH_MAX);
    if (l->rbuf == NULL || l->point == NULL || l->scratch == NULL)
        return QT_ENOMEM;
    return qt_ingest_batch_init(&l->batch, n->cfg->batch_lines, QT_SRV_BATCH_ARENA_BYTES);
}

static void
loop_free(struct loop *l)
{
    if (l->net == NULL)
        return;
    for (uint32_t i = 0; i < l->conns_cap; i++) {
        struct conn *c = l->conns[i];
        if (c != NULL) { /* never started: no receive in flight */
            c->recv_armed = false;
            c->why = QT_CLOSE_SHUTDOWN;
            conn_finish(l, c);
        }
    }
    for (uint32_t i = 0; i < l->inbox_n; i++)
        close(l->inbox[i].fd);
    qt_free(l->inbox);
    qt_free(l->conns);
    qt_free(l->free_slots);
    qt_free(l->rbuf);
    qt_free(l->point);
    qt_free(l->scratch);
    qt_ingest_batch_deinit(&l->batch);
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    pthread_mutex_destroy(&l->mu);
}

static int
net_choose_backend(struct qt_net *n)
{
    enum qt_io_kind k = n->cfg->io;
    n->fallback_reason = "";
    if (k == QT_IO_POSIX) {
        n->be = &net_epoll_backend;
        return 0;
    }
    const char *reason = "";
    int rc = net_uring_probe(n->o.probe_fail_errno, &reason);
    if (rc == 0) {
        n->be = &net_uring_backend;
        return 0;
    }
    if (k == QT_IO_URING) {
        qt_log(QT_LOG_ERROR, "net: io_uring requested but unavailable: %s (%s)", reason,
               qt_strerror(rc));
        return rc;
    }
    qt_log(QT_LOG_WARN, "net: io_uring unavailable, using epoll: %s (%s)", reason, qt_strerror(rc));
    n->fallback_reason = reason;
    n->be = &net_epoll_backend;
    return 0;
}

int
qt_net_create(const struct qt_net_opts *o, struct qt_net **out)
{
    qt_assert(o != NULL && o->cfg != NULL && o->db != NULL && o->metrics != NULL);
    qt_assert(o->loops >= 1 && o->loops <= QT_SRV_THREADS_CEIL);
    struct qt_net *n = qt_calloc(1, sizeof(*n));
    if (n == NULL) {
        if (o->ilp_fd >= 0)
            close(o->ilp_fd);
        if (o->graphite_fd >= 0)
            close(o->graphite_fd);
        return QT_ENOMEM;
    }
    n->o = *o;
    n->cfg = o->cfg;
    n->listen_fd[QT_PROTO_ILP] = o->ilp_fd;
    n->listen_fd[QT_PROTO_GRAPHITE] = o->graphite_fd;
    n->nloops = o->loops;
    n->acc.wake_fd = -1;
    int rc = net_choose_backend(n);
    n->loops = rc == 0 ? qt_calloc(n->nloops, sizeof(*n->loops)) : NULL;
    if (rc == 0 && n->loops == NULL)
        rc = QT_ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < n->nloops; i++) {
        rc = loop_init(n, &n->loops[i], i);
        if (rc == 0)
            rc = n->be->init(&n->loops[i]);
    }
    if (rc == 0)
        rc = loop_init(n, &n->acc, UINT32_MAX);
    if (rc == 0)
        rc = n->be->init(&n->acc);
    if (rc != 0) {
        qt_log(QT_LOG_ERROR, "net: cannot set up the %s loops: %s", n->be ? n->be->name : "?",
               qt_strerror(rc));
        qt_net_destroy(n);
        return rc;
    }
    *out = n;
    return 0;
}

int
qt_net_start(struct qt_net *n)
{
    qt_assert(n != NULL);
    for (uint32_t i = 0; i < n->nloops; i++) {
        int rc = pthread_create(&n->loops[i].thr, NULL, n->be->run, &n->loops[i]);
        if (rc != 0)
            return -rc;
        n->loops[i].started = true;
    }
    int rc = pthread_create(&n->acc.thr, NULL, n->be->run, &n->acc);
    if (rc != 0)
        return -rc;
    n->acc.started = true;
    qt_log(QT_LOG_INFO, "net: %u ingest loops on %s", n->nloops, n->be->name);
    return 0;
}

void
net_accept_backlog(struct qt_net *n)
{
    for (int p = 0; p < 2; p++) {
        if (n->listen_fd[p] < 0)
            continue;
        for (;;) {
            int fd = accept4(n->listen_fd[p], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0 && errno == EINTR)
                continue;
            if (fd < 0)
                break;
            net_dispatch(n, fd, (enum qt_proto)p);
        }
    }
}

int
qt_net_stop(struct qt_net *n)
{
    qt_assert(n != NULL);
    atomic_store(&n->acc_stop, true);
    if (n->acc.started) { /* first: no more hand-offs */
        n->be->stop(&n->acc);
        pthread_join(n->acc.thr, NULL);
        n->acc.started = false;
    }
    for (int p = 0; p < 2; p++) { /* new connections are refused from here on */
        if (n->listen_fd[p] >= 0)
            close(n->listen_fd[p]);
        n->listen_fd[p] = -1;
    }
    atomic_store(&n->loop_stop, true);
    int rc = 0;
    for (uint32_t i = 0; i < n->nloops; i++) {
        struct loop *l = &n->loops[i];
        if (!l->started)
            continue;
        n->be->stop(l);
        pthread_join(l->thr, NULL);
        l->started = false;
        if (rc == 0)
            rc = l->storage_rc;
    }
    return rc;
}

void
qt_net_destroy(struct qt_net *n)
{
    if (n == NULL)
        return;
    if (n->acc.started || (n->nloops > 0 && n->loops != NULL && n->loops[0].started))
        qt_net_stop(n);
    for (uint32_t i = 0; n->loops != NULL && i < n->nloops; i++) {
        if (n->be != NULL && n->loops[i].net != NULL)
            n->be->fini(&n->loops[i]);
        loop_free(&n->loops[i]);
    }
    if (n->be != NULL && n->acc.net != NULL)
        n->be->fini(&n->acc);
    loop_free(&n->acc);
    for (int p = 0; p < 2; p++)
        if (n->listen_fd[p] >= 0)
            close(n->listen_fd[p]);
    qt_free(n->loops);
    qt_free(n);
}

const char *
qt_net_backend(const struct qt_net *n)
{
    return n->be->name;
}

const char *
qt_net_fallback_reason(const struct qt_net *n)
{
    return n->fallback_reason;
}
