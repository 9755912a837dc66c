/*
 * srvproc.h -- end-to-end test support: run the real qtdb binary as a
 * child process on ephemeral loopback ports, talk to it over TCP and HTTP,
 * read its metrics, and count what its data directory holds.
 *
 * The binary is found next to the test binary's build directory
 * ($B/tests/test_x -> $B/qtdb), so release and ASan runs each test their
 * own build.  The server's stderr goes to DIR.log.N (N counts starts); the
 * ready line
 * ("serve: ready ilp=127.0.0.1:P http=... graphite=...") gives the ports.
 */
#ifndef QT_TEST_SRVPROC_H
#define QT_TEST_SRVPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct srvproc {
    pid_t pid;
    char dir[512];
    char log[600];
    int ilp_port, http_port, graphite_port; /* 0 when off */
};

/* Start `qtdb serve --data dir --ilp 127.0.0.1:0 --http 127.0.0.1:0
 * [--graphite 127.0.0.1:0] extra...` (extra NULL-terminated, may be NULL)
 * and wait up to 30 s for the ready line; QT_TEST_IO=posix|uring adds
 * --io (run.sh runs the e2e tests once per backend: epoll and io_uring
 * networking, posix and io_uring storage).  0, or -1 (the log printed). */
int srv_start(struct srvproc *s, const char *dir, bool graphite, const char *const *extra);

/* Send sig and wait for the exit; returns the exit status (0..255), 128+N
 * when killed by signal N, or -1 on timeout (the child is then killed). */
int srv_stop(struct srvproc *s, int sig);

/* Connect to 127.0.0.1:port (blocking socket): fd or -1. */
int srv_connect(int port);

/* Write all of p[0..n) to fd: 0 or -1. */
int srv_send_all(int fd, const void *p, size_t n);

/* Half-close fd and wait (up to timeout_ms) for the server to close: the
 * server closes only after storing the connection's lines.  0 or -1. */
int srv_finish(int fd, int timeout_ms);

/* HTTP request to the server: status (or -1), body copied into body[0..cap)
 * (NUL-terminated, cut), its full length in *len if len != NULL. */
int srv_http(const struct srvproc *s, const char *method, const char *path, const char *ctype,
             const void *req, size_t req_len, char *body, size_t cap, size_t *len);

/* As srv_http, also copying the parsed response (status, head: read its
 * headers with qt_httpc_header) into *resp when not NULL. */
struct qt_httpc_resp;
int srv_http_resp(const struct srvproc *s, const char *method, const char *path, const char *ctype,
                  const void *req, size_t req_len, char *body, size_t cap, size_t *len,
                  struct qt_httpc_resp *resp);

/* Value of one metric line "name{labels} value" from /metrics (the exact
 * text before the value, e.g. "qtdb_ingest_lines_total{protocol=\"ilp\"}"),
 * or -1. */
double srv_metric(const struct srvproc *s, const char *name);

/* Points stored per measurement in a stopped server's data directory:
 * opens it read-only, scans every series.  counts[i] receives the points
 * of meas[i] (n names); returns the total over all series or -1. */
/* The value column of the first row of `q` through /query (JSON, rows
 * "[time,value,...]"): the value as an integer; -1 on an error (printed),
 * -2 when this build has no executor (501). */
int64_t srv_query_value(const struct srvproc *s, const char *q);

int64_t srv_count_points(const char *dir, const char *const *meas, uint32_t n, uint64_t *counts);

/* Raise RLIMIT_NOFILE's soft limit to the hard one; the new soft limit. */
uint64_t srv_raise_nofile(void);

#endif
