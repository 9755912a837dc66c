/*
 * serve.c -- `qtdb serve` (serve.h): wiring and lifecycle.
 *
 * Signals: SIGINT and SIGTERM are blocked in every thread before any is
 * created and taken synchronously by the main thread with sigwait(), so no
 * handler runs in the middle of a loop or a write; SIGPIPE is ignored (a
 * peer that closes while we write to it must not kill the server).
 *
 * Shutdown order: HTTP stops accepting -> the TCP loops stop accepting,
 * drain their sockets and commit -> the HTTP server finishes the requests
 * in flight and stops -> qt_db_sync (everything acknowledged or received
 * is durable whatever the fsync policy) -> qt_db_close (flush).
 */
#include "server/serve.h"

#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/netloop.h"
#include "server/srvconf.h"
#include "storage/db.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* File descriptors kept free for the engine (WAL, segments, catalog),
 * listeners and logs beyond the connection limits. */
#define SERVE_FD_RESERVE 256u

/* Raise RLIMIT_NOFILE's soft limit to the hard one; lower max-connections
 * if even that cannot hold them. */
static void
serve_fd_limit(struct qt_srv_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    uint64_t need = (uint64_t)cfg->conn_max + cfg->http_conn_max + SERVE_FD_RESERVE;
    if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
        uint64_t avail = rl.rlim_cur > SERVE_FD_RESERVE + cfg->http_conn_max + 16
                             ? rl.rlim_cur - SERVE_FD_RESERVE - cfg->http_conn_max
                             : 16;
        qt_log(QT_LOG_WARN,
               "serve: open-file limit %llu cannot hold max-connections %u; using %llu "
               "(raise ulimit -n)",
               (unsigned long long)rl.rlim_cur, cfg->conn_max, (unsigned long long)avail);
        cfg->conn_max = (uint32_t)avail;
    }
}

struct serve {
    struct qt_srv_config cfg;
    int fd_ilp, fd_graphite, fd_http;
    char b_ilp[80], b_graphite[80], b_http[80];
    struct qt_db *db;
    struct qt_srv_metrics metrics;
    struct qt_net *net;
    struct qt_http *http;
    /* cfg.retention parsed; qt_db_open copies the rules, but db->opts keeps
     * the pointer, so this lives until the database is closed. */
    struct qt_srv_retention retention;
};

static int
serve_listen(struct serve *s)
{
    struct {
        const struct qt_srv_addr *a;
        int *fd;
        char *bound;
    } l[] = {{&s->cfg.ilp, &s->fd_ilp, s->b_ilp},
             {&s->cfg.graphite, &s->fd_graphite, s->b_graphite},
             {&s->cfg.http, &s->fd_http, s->b_http}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(l[i].bound, 80, "off");
        if (!l[i].a->enabled)
            continue;
        int rc = qt_net_listen(l[i].a, l[i].fd, l[i].bound, 80);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int
serve_open_db(struct serve *s)
{
    if (s->cfg.retention != NULL) { /* checked when set: an error here is memory */
        int rc = qt_srv_retention_parse(s->cfg.retention, &s->retention);
        if (rc != 0) {
            qt_log(QT_LOG_ERROR, "serve: --retention '%s': %s", s->cfg.retention, qt_err_detail());
            return rc;
        }
    }
    struct qt_db_opts o = {.dir = s->cfg.data_dir,
                           .io_kind = s->cfg.io,
                           .fsync = s->cfg.fsync,
                           .fsync_interval_ms = s->cfg.fsync_interval_ms,
                           .mem_budget_bytes = s->cfg.mem_budget_bytes,
                           .series_max = s->cfg.series_max,
                           .rollups = s->cfg.rollups,
                           .retention = s->retention.rules,
                           .n_retention = s->retention.n};
    int rc = qt_db_open(&o, &s->db);
    if (rc != 0) {
        const char *why = qt_err_detail();
        if (s->cfg.rollups != NULL && strncmp(why, "rollup:", 7) == 0)
            qt_log(QT_LOG_ERROR, "serve: --rollups '%s' refused for %s: %s", s->cfg.rollups,
                   s->cfg.data_dir, why);
        else
            qt_log(QT_LOG_ERROR, "serve: cannot open %s: %s (%s)", s->cfg.data_dir, qt_strerror(rc),
                   why);
        return rc;
    }
    if (s->retention.n > 0)
        qt_log(QT_LOG_INFO,
               "serve: retention %s (%u rule(s), applied in the background and by POST "
               "/api/v1/compact)",
               s->cfg.retention, s->retention.n);
    if (s->cfg.rollups != NULL)
        qt_log(QT_LOG_INFO, "serve: rollups %s (computed in the background; POST /api/v1/rollup)",
               s->cfg.rollups);
    qt_db_set_sync_observer(s->db, qt_srv_metrics_wal_sync, &s->metrics);
    return 0;
}

static uint32_t
serve_threads(const struct qt_srv_config *cfg)
{
    if (cfg->threads > 0)
        return cfg->threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > (long)QT_SRV_THREADS_CEIL ? QT_SRV_THREADS_CEIL : (uint32_t)n;
}

static int
serve_start(struct serve *s, struct qt_srv_info *info)
{
    uint32_t loops = serve_threads(&s->cfg);
    if (s->fd_ilp >= 0 || s->fd_graphite >= 0) {
        struct qt_net_opts no = {.cfg = &s->cfg,
                                 .db = s->db,
                                 .metrics = &s->metrics,
                                 .loops = loops,
                                 .ilp_fd = s->fd_ilp,
                                 .graphite_fd = s->fd_graphite};
        s->fd_ilp = s->fd_graphite = -1; /* owned by net now */
        int rc = qt_net_create(&no, &s->net);
        if (rc == 0)
            rc = qt_net_start(s->net);
        if (rc != 0)
            return rc;
    }
    *info = (struct qt_srv_info){.version = QT_VERSION_STRING,
                                 .net_backend = s->net ? qt_net_backend(s->net) : "off",
                                 .loops = s->net ? loops : 0};
    if (s->fd_http >= 0) {
        struct qt_http_opts ho = {.cfg = &s->cfg,
                                  .db = s->db,
                                  .metrics = &s->metrics,
                                  .info = *info,
                                  .listen_fd = s->fd_http};
        s->fd_http = -1;
        int rc = qt_http_start(&ho, &s->http);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Stop everything that started; returns the first failure. */
static int
serve_stop(struct serve *s)
{
    qt_http_quiesce(s->http);
    int rc = 0;
    if (s->net != NULL) {
        rc = qt_net_stop(s->net);
        qt_net_destroy(s->net);
        s->net = NULL;
    }
    qt_http_stop(s->http);
    s->http = NULL;
    if (s->db != NULL) {
        int r2 = qt_db_sync(s->db);
        if (r2 != 0)
            qt_log(QT_LOG_ERROR, "serve: final sync failed: %s", qt_strerror(r2));
        rc = rc != 0 ? rc : r2;
        r2 = qt_db_close(s->db);
        if (r2 != 0)
            qt_log(QT_LOG_ERROR, "serve: close failed: %s (%s)", qt_strerror(r2), qt_err_detail());
        rc = rc != 0 ? rc : r2;
        s->db = NULL;
    }
    qt_srv_retention_free(&s->retention);
    int *fds[] = {&s->fd_ilp, &s->fd_graphite, &s->fd_http};
    for (size_t i = 0; i < 3; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    return rc;
}

static int
serve_args(struct serve *s, int argc, char **argv)
{
    char err[512] = "";
    int rc = qt_srv_config_args(&s->cfg, argc, argv, err, sizeof(err));
    if (rc == QT_SRV_ARGS_HELP) {
        qt_srv_config_usage(stdout);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "qtdb serve: %s\n(see qtdb serve --help)\n", err);
        return 2;
    }
    return -1; /* go on */
}

int
qt_cmd_serve(int argc, char **argv)
{
    static struct serve s; /* big (config, metrics); one per process */
    memset(&s, 0, sizeof(s));
    s.fd_ilp = s.fd_graphite = s.fd_http = -1;
    qt_srv_config_init(&s.cfg);
    int ex = serve_args(&s, argc, argv);
    if (ex >= 0) {
        qt_srv_config_deinit(&s.cfg);
        return ex;
    }
    qt_log_set_level(s.cfg.log_level);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    serve_fd_limit(&s.cfg);
    qt_srv_metrics_init(&s.metrics);
    struct qt_srv_info info = {0};
    int rc = serve_listen(&s);
    if (rc == 0)
        rc = serve_open_db(&s);
    if (rc == 0)
        rc = serve_start(&s, &info);
    if (rc != 0) {
        serve_stop(&s);
        qt_srv_config_deinit(&s.cfg);
        return 1;
    }
    struct qt_db_health h;
    qt_db_health(s.db, &h);
    qt_log(QT_LOG_INFO,
           "serve: ready ilp=%s http=%s graphite=%s io=%s net=%s fsync=%s threads=%u data=%s "
           "pid=%d",
           s.b_ilp, s.b_http, s.b_graphite, h.io_backend, info.net_backend, h.fsync_policy,
           info.loops, s.cfg.data_dir, (int)getpid());
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    qt_log(QT_LOG_INFO, "serve: %s received: stopping (draining connections, syncing)",
           sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = serve_stop(&s);
    qt_log(QT_LOG_INFO, "serve: stopped%s", rc == 0 ? "" : " with errors");
    qt_srv_config_deinit(&s.cfg);
    return rc == 0 ? 0 : 1;
}
