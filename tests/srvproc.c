/*
 * srvproc.c -- run and inspect a real qtdb server in tests (srvproc.h).
 */
#include "tests/srvproc.h"

#include "format/qt_alloc.h"
#include "server/httpc.h"
#include "storage/catalog.h"
#include "storage/db.h"
#include "storage/scan.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Servers still running when the test process exits (a failed CHECK
 * returns early) are killed, so they cannot hold ports or directories. */
#define SRV_LIVE_MAX 16
static pid_t live[SRV_LIVE_MAX];

static void
kill_live(void)
{
    for (int i = 0; i < SRV_LIVE_MAX; i++)
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
}

static void
track(pid_t pid, bool add)
{
    static bool registered;
    if (!registered) {
        atexit(kill_live);
        registered = true;
    }
    for (int i = 0; i < SRV_LIVE_MAX; i++) {
        if (add && live[i] == 0) {
            live[i] = pid;
            return;
        }
        if (!add && live[i] == pid) {
            live[i] = 0;
            return;
        }
    }
}

/* $B/qtdb from /proc/self/exe = $B/tests/test_x. */
static int
qtdb_path(char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    return snprintf(out, cap, "%s/qtdb", self) < (int)cap ? 0 : -1;
}

static int
port_of(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    if (p == NULL)
        return -1;
    p += strlen(key);
    if (strncmp(p, "off", 3) == 0)
        return 0;
    const char *colon = strchr(p, ':');
    const char *space = strchr(p, ' ');
    if (colon == NULL || (space != NULL && colon > space))
        return -1;
    return atoi(colon + 1);
}

static void
print_log(const struct srvproc *s)
{
    FILE *f = fopen(s->log, "r");
    if (f == NULL)
        return;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL && n++ < 200)
        fprintf(stdout, "  server: %s", line);
    fclose(f);
}

/* Wait for the ready line in the log; parse the ports. */
static int
wait_ready(struct srvproc *s)
{
    for (int i = 0; i < 3000; i++) {
        FILE *f = fopen(s->log, "r");
        char line[1024];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            if (strstr(line, "serve: ready ") == NULL)
                continue;
            fclose(f);
            s->ilp_port = port_of(line, " ilp=");
            s->http_port = port_of(line, " http=");
            s->graphite_port = port_of(line, " graphite=");
            return s->ilp_port > 0 && s->http_port > 0 ? 0 : -1;
        }
        if (f != NULL)
            fclose(f);
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            track(s->pid, false);
            s->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    return -1;
}

int
srv_start(struct srvproc *s, const char *dir, bool graphite, const char *const *extra)
{
    char bin[PATH_MAX];
    if (qtdb_path(bin, sizeof(bin)) != 0)
        return -1;
    static int starts;
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(s->log, sizeof(s->log), "%s.log.%d", dir, ++starts); /* one per start */
    unlink(s->log);
    const char *argv[64] = {bin,     "serve",       "--data", dir,
                            "--ilp", "127.0.0.1:0", "--http", "127.0.0.1:0"};
    int argc = 8;
    if (graphite) {
        argv[argc++] = "--graphite";
        argv[argc++] = "127.0.0.1:0";
    }
    const char *io = getenv("QT_TEST_IO"); /* run.sh: each backend, storage and network */
    if (io != NULL && (strcmp(io, "posix") == 0 || strcmp(io, "uring") == 0)) {
        argv[argc++] = "--io";
        argv[argc++] = io;
    }
    for (int i = 0; extra != NULL && extra[i] != NULL && argc < 62; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    track(pid, true);
    if (wait_ready(s) != 0) {
        fprintf(stdout, "srv_start: server did not become ready\n");
        print_log(s);
        if (s->pid > 0)
            srv_stop(s, SIGKILL);
        return -1;
    }
    return 0;
}

int
srv_stop(struct srvproc *s, int sig)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, sig);
    for (int i = 0; i < 6000; i++) { /* 60 s: a flush under ASan can be slow */
        int st;
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            track(s->pid, false);
            s->pid = 0;
            if (WIFEXITED(st))
                return WEXITSTATUS(st);
            return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    track(s->pid, false);
    s->pid = 0;
    print_log(s);
    return -1;
}

int
srv_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int
srv_send_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int
srv_finish(int fd, int timeout_ms)
{
    shutdown(fd, SHUT_WR);
    char buf[256];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) != 1)
            return -1;
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return errno == ECONNRESET ? 0 : -1;
    }
}

struct body_sink {
    char *buf;
    size_t cap, len;
};

static int
body_fn(void *arg, const uint8_t *p, size_t n)
{
    struct body_sink *b = arg;
    for (size_t i = 0; i < n; i++, b->len++)
        if (b->len + 1 < b->cap)
            b->buf[b->len] = (char)p[i];
    return 0;
}

int
srv_http(const struct srvproc *s, const char *method, const char *path, const char *ctype,
         const void *req, size_t req_len, char *body, size_t cap, size_t *len)
{
    return srv_http_resp(s, method, path, ctype, req, req_len, body, cap, len, NULL);
}

int
srv_http_resp(const struct srvproc *s, const char *method, const char *path, const char *ctype,
              const void *req, size_t req_len, char *body, size_t cap, size_t *len,
              struct qt_httpc_resp *resp)
{
    struct qt_httpc_url u;
    char url[64];
    snprintf(url, sizeof(url), "127.0.0.1:%d", s->http_port);
    if (qt_httpc_url_parse(url, &u) != 0)
        return -1;
    struct qt_httpc_resp *r = qt_malloc(sizeof(*r));
    if (r == NULL)
        return -1;
    char dummy[1];
    struct body_sink b = {.buf = body ? body : dummy, .cap = body ? cap : 1};
    int rc = qt_httpc_request(&u, method, path, ctype, req, req_len, 30000, r, body_fn, &b);
    int status = rc == 0 ? r->status : -1;
    if (resp != NULL)
        memcpy(resp, r, sizeof(*r));
    qt_free(r);
    if (b.cap > 0)
        b.buf[b.len < b.cap ? b.len : b.cap - 1] = '\0';
    if (len != NULL)
        *len = b.len;
    return status;
}

double
srv_metric(const struct srvproc *s, const char *name)
{
    size_t cap = 4u << 20;
    char *body = qt_malloc(cap);
    if (body == NULL)
        return -1;
    double v = -1;
    if (srv_http(s, "GET", "/metrics", NULL, NULL, 0, body, cap, NULL) == 200) {
        size_t nl = strlen(name);
        for (char *line = body; line != NULL && *line;) {
            char *next = strchr(line, '\n');
            if (strncmp(line, name, nl) == 0 && line[nl] == ' ') {
                v = strtod(line + nl + 1, NULL);
                break;
            }
            line = next ? next + 1 : NULL;
        }
    }
    qt_free(body);
    return v;
}

/* Points of one series over all time. */
static int64_t
count_series(struct qt_db *db, uint32_t sid)
{
    struct qt_scan_opts o = {.t0 = INT64_MIN + 2, .t1 = INT64_MAX, .allow_stats = true};
    struct qt_scan *sc;
    if (qt_scan_open(db, sid, &o, &sc) != 0)
        return -1;
    int64_t n = 0;
    struct qt_chunk c;
    int rc;
    while ((rc = qt_scan_next(sc, &c)) == 1)
        n += c.n;
    qt_scan_close(sc);
    return rc == 0 ? n : -1;
}

int64_t
srv_count_points(const char *dir, const char *const *meas, uint32_t n, uint64_t *counts)
{
    struct qt_db_opts o = {
        .dir = dir, .io_kind = QT_IO_POSIX, .read_only = true, .no_background = true};
    struct qt_db *db;
    if (qt_db_open(&o, &db) != 0)
        return -1;
    struct qt_catalog *cat = qt_db_catalog(db);
    uint32_t ns = qt_catalog_series_count(cat);
    int64_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        counts[i] = 0;
    for (uint32_t sid = 0; sid < ns && total >= 0; sid++) {
        struct qt_catalog_series si;
        struct qt_catalog_group gi;
        int64_t c = count_series(db, sid);
        if (c < 0 || qt_catalog_series_info(cat, sid, &si) != 0 ||
            qt_catalog_group_info(cat, si.gid, &gi) != 0) {
            total = -1;
            break;
        }
        total += c;
        for (uint32_t i = 0; i < n; i++)
            if (gi.measurement.len == strlen(meas[i]) &&
                memcmp(gi.measurement.p, meas[i], gi.measurement.len) == 0)
                counts[i] += (uint64_t)c;
    }
    qt_db_close(db);
    return total;
}

uint64_t
srv_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

int64_t
srv_query_value(const struct srvproc *s, const char *q)
{
    static _Thread_local char body[1 << 16];
    char path[1024];
    int n = snprintf(path, sizeof(path), "/query?format=json&q=");
    qt_httpc_urlencode(q, strlen(q), path + n, sizeof(path) - (size_t)n);
    int st = srv_http(s, "GET", path, NULL, NULL, 0, body, sizeof(body), NULL);
    if (st == 501)
        return -2;
    const char *rows = strstr(body, "\"rows\":[");
    const char *comma = rows ? strchr(rows + 8, ',') : NULL;
    if (st != 200 || comma == NULL) {
        fprintf(stdout, "query %s: %d %s\n", q, st, body);
        return -1;
    }
    return strtoll(comma + 1, NULL, 10);
}
