/*
 * cli.c -- `qtdb query` and `qtdb load` (cli.h).
 *
 * load: one reader thread parses each line (to count points, to convert
 * timestamps when --precision is not ns, and to pick a connection by a
 * hash of measurement and tags, so each series' lines keep their file
 * order on one connection) and appends it to that connection's buffer; a
 * sender thread per connection writes full buffers (LOAD_BUF_BYTES) with
 * one send each.  Queues are bounded (LOAD_QUEUE buffers per connection),
 * so memory stays fixed and a slow server slows the reader.  At the end
 * each sender half-closes its socket and waits for the server to close:
 * the server does that after storing the connection's last line, so the
 * summary is printed only once the server has everything.
 */
#include "server/cli.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_hash.h"
#include "format/qt_limits.h"
#include "server/httpc.h"
#include "server/ilp.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_OK      0
#define EXIT_FAIL    1
#define EXIT_USAGE   2
#define EXIT_NOTHERE 3

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- qtdb query ------------------------------------------------------------------ */

#define QUERY_ERR_BODY_MAX (64u << 10)

struct query_out {
    struct qt_httpc_resp *r;
    char *err; /* non-200 body, kept for the message */
    size_t err_len;
    bool write_failed;
};

static int
query_body(void *arg, const uint8_t *p, size_t n)
{
    struct query_out *o = arg;
    if (o->r->status == 200) {
        if (fwrite(p, 1, n, stdout) != n)
            o->write_failed = true;
        return o->write_failed ? QT_ECLOSED : 0;
    }
    size_t room = QUERY_ERR_BODY_MAX - o->err_len;
    size_t k = n < room ? n : room;
    memcpy(o->err + o->err_len, p, k);
    o->err_len += k;
    return 0;
}

static void
query_usage(FILE *f)
{
    fprintf(f, "usage: qtdb query [--server URL] [--format table|csv|json] [--timeout SECONDS] "
               "[--stats] 'QUERY'\n"
               "  --server URL    server HTTP address (default http://127.0.0.1:8086)\n"
               "  --format F      table (default), csv or json\n"
               "  --timeout S     give up after S seconds without progress (default 60)\n"
               "  --stats         after the result, print to stderr where the data came from\n"
               "                  (raw, rollup:1h, rollup:1h+raw) and the series, points,\n"
               "                  rows, rollup buckets and time the server reported\n"
               "exit: 0 ok, 1 failure, 2 bad query or usage, 3 server lacks the executor\n");
}

/* --stats: the X-Qtdb-* headers of a successful query, on one line. */
static void
query_stats(const struct qt_httpc_resp *r)
{
    static const char *const names[][2] = {{"X-Qtdb-Source", "source"},
                                           {"X-Qtdb-Series", "series"},
                                           {"X-Qtdb-Points", "points"},
                                           {"X-Qtdb-Rows", "rows"},
                                           {"X-Qtdb-Rollup-Buckets", "rollup_buckets"},
                                           {"X-Qtdb-Elapsed-Us", "elapsed_us"}};
    fprintf(stderr, "stats:");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char v[64];
        if (qt_httpc_header(r, names[i][0], v, sizeof(v)) < 0)
            snprintf(v, sizeof(v), "?"); /* an older server */
        fprintf(stderr, " %s=%s", names[i][1], v);
    }
    fprintf(stderr, "\n");
}

/* Print the server's error body: the caret rendering if present. */
static int
query_error(const struct qt_httpc_resp *r, const char *body, size_t len)
{
    char msg[4096];
    if (qt_httpc_json_str(body, len, "caret", msg, sizeof(msg)) > 0 ||
        qt_httpc_json_str(body, len, "error", msg, sizeof(msg)) > 0)
        fprintf(stderr, "%s%s\n", strncmp(msg, "error", 5) == 0 ? "" : "error: ", msg);
    else
        fprintf(stderr, "error: server answered %d\n", r->status);
    if (r->status == 400)
        return EXIT_USAGE;
    return r->status == 501 ? EXIT_NOTHERE : EXIT_FAIL;
}

int
qt_cmd_query(int argc, char **argv)
{
    const char *server = "http://127.0.0.1:8086", *fmt = "table", *q = NULL;
    long timeout_s = 60;
    bool stats = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            query_usage(stdout);
            return EXIT_OK;
        }
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--server") == 0 && has_val)
            server = argv[++i];
        else if (strcmp(a, "--format") == 0 && has_val)
            fmt = argv[++i];
        else if (strcmp(a, "--timeout") == 0 && has_val)
            timeout_s = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--stats") == 0)
            stats = true;
        else if (a[0] == '-' && a[1] == '-')
            return query_usage(stderr), EXIT_USAGE;
        else if (q == NULL)
            q = a;
        else
            return query_usage(stderr), EXIT_USAGE;
    }
    if (q == NULL || (strcmp(fmt, "table") && strcmp(fmt, "csv") && strcmp(fmt, "json")) ||
        timeout_s <= 0 || timeout_s > 86400) {
        query_usage(stderr);
        return EXIT_USAGE;
    }
    struct qt_httpc_url u;
    if (qt_httpc_url_parse(server, &u) != 0) {
        fprintf(stderr, "qtdb query: bad --server '%s': %s\n", server, qt_err_detail());
        return EXIT_USAGE;
    }
    size_t qn = strlen(q), cap = qn * 3 + 64;
    char *path = qt_malloc(cap);
    struct qt_httpc_resp *r = qt_malloc(sizeof(*r));
    char *err = qt_malloc(QUERY_ERR_BODY_MAX);
    int ex = EXIT_FAIL;
    if (path == NULL || r == NULL || err == NULL)
        goto out;
    int n = snprintf(path, cap, "/query?format=%s&q=", fmt);
    qt_httpc_urlencode(q, qn, path + n, cap - (size_t)n);
    struct query_out o = {.r = r, .err = err};
    int rc =
        qt_httpc_request(&u, "GET", path, NULL, NULL, 0, (int)timeout_s * 1000, r, query_body, &o);
    fflush(stdout);
    if (rc != 0) {
        fprintf(stderr, "qtdb query: %s:%s: %s%s%s\n", u.host, u.port, qt_strerror(rc),
                qt_err_detail()[0] ? ": " : "", qt_err_detail());
    } else if (r->status == 200) {
        ex = o.write_failed ? EXIT_FAIL : EXIT_OK;
        if (stats)
            query_stats(r);
    } else {
        ex = query_error(r, err, o.err_len);
    }
out:
    qt_free(path);
    qt_free(r);
    qt_free(err);
    return ex;
}

/* ---- qtdb load ------------------------------------------------------------------------ */

#define LOAD_BUF_BYTES  (256u << 10) /* one send() */
#define LOAD_QUEUE      8u           /* full buffers waiting per connection */
#define LOAD_READ_BYTES (1u << 20)
#define LOAD_CONNS_MAX  64u

struct sender {
    int fd;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *q[LOAD_QUEUE];
    size_t qn[LOAD_QUEUE];
    uint32_t head, count;
    bool done;
    int err;
    char *cur; /* being filled by the reader */
    size_t cur_len;
};

struct load {
    struct sender *s;
    uint32_t n;
    enum qt_ilp_precision prec;
    struct qt_ilp_point *pt;
    char *scratch;
    uint64_t lines, points, bad, bytes_in, total;
    double t0, last_progress;
    bool tty;
};

static void *
sender_main(void *arg)
{
    struct sender *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (s->count == 0 && !s->done)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->count == 0) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        char *p = s->q[s->head];
        size_t n = s->qn[s->head];
        pthread_mutex_unlock(&s->mu);
        size_t off = 0;
        while (off < n && s->err == 0) {
            ssize_t w = send(s->fd, p + off, n - off, MSG_NOSIGNAL);
            if (w < 0 && errno != EINTR)
                s->err = -errno;
            else if (w > 0)
                off += (size_t)w;
        }
        qt_free(p);
        pthread_mutex_lock(&s->mu);
        s->head = (s->head + 1) % LOAD_QUEUE;
        s->count--;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    if (s->err == 0) { /* half-close, then wait until the server has stored all */
        shutdown(s->fd, SHUT_WR);
        char tmp[256];
        while (recv(s->fd, tmp, sizeof(tmp), 0) > 0)
            ;
    }
    return NULL;
}

/* Hand s->cur to the sender (blocks while its queue is full). */
static int
sender_push(struct sender *s)
{
    if (s->cur_len == 0)
        return 0;
    pthread_mutex_lock(&s->mu);
    while (s->count == LOAD_QUEUE && s->err == 0)
        pthread_cond_wait(&s->cv, &s->mu);
    int err = s->err;
    if (err == 0) {
        uint32_t tail = (s->head + s->count) % LOAD_QUEUE;
        s->q[tail] = s->cur;
        s->qn[tail] = s->cur_len;
        s->count++;
        pthread_cond_broadcast(&s->cv);
    } else {
        qt_free(s->cur);
    }
    pthread_mutex_unlock(&s->mu);
    s->cur = NULL;
    s->cur_len = 0;
    return err;
}

static int
sender_append(struct sender *s, const char *p, size_t n)
{
    if (s->cur != NULL && s->cur_len + n > LOAD_BUF_BYTES) {
        int rc = sender_push(s);
        if (rc != 0)
            return rc;
    }
    if (s->cur == NULL) {
        size_t cap = n > LOAD_BUF_BYTES ? n : LOAD_BUF_BYTES;
        s->cur = qt_malloc(cap);
        if (s->cur == NULL)
            return QT_ENOMEM;
    }
    memcpy(s->cur + s->cur_len, p, n);
    s->cur_len += n;
    return 0;
}

static void
load_progress(struct load *L, bool final)
{
    double now = now_s();
    if (!L->tty || (!final && now - L->last_progress < 0.25))
        return;
    L->last_progress = now;
    double el = now - L->t0 > 1e-6 ? now - L->t0 : 1e-6;
    double pps = (double)L->points / el, bps = (double)L->bytes_in / el;
    char eta[32] = "";
    if (L->total > 0 && bps > 0 && L->bytes_in <= L->total) {
        double left = (double)(L->total - L->bytes_in) / bps;
        snprintf(eta, sizeof(eta), "  ETA %02d:%02d", (int)left / 60, (int)left % 60);
    }
    char pct[16] = "";
    if (L->total > 0)
        snprintf(pct, sizeof(pct), " %3.0f%%", 100.0 * (double)L->bytes_in / (double)L->total);
    fprintf(stderr, "\r%s %8.1f MB  %7.2f M points/s  %6.1f MB/s%s   ", pct,
            (double)L->bytes_in / 1e6, pps / 1e6, bps / 1e6, eta);
    if (final)
        fputc('\n', stderr);
}

/* One line (without '\n'): parse, maybe rewrite the timestamp, route. */
static int
load_line(struct load *L, const char *line, size_t len)
{
    struct qt_ilp_opts o = {.precision = L->prec, .now_ns = 0};
    int rc =
        qt_ilp_parse_line(&o, (const uint8_t *)line, len, L->scratch, QT_ILP_SCRATCH_MAX, L->pt);
    if (rc == QT_ILP_SKIP)
        return 0;
    L->lines++;
    uint32_t conn = 0;
    char rewritten[48];
    size_t keep = len;
    const char *ts = NULL;
    if (rc != 0) {
        L->bad++; /* sent anyway: the server logs and counts it */
    } else {
        L->points += L->pt->fields_count;
        uint64_t h = qt_hash64(L->pt->measurement.ptr, L->pt->measurement.len);
        for (uint32_t i = 0; i < L->pt->tags_count; i++)
            h = qt_hash64_seed(L->pt->tags[i].value.ptr, L->pt->tags[i].value.len, h);
        conn = (uint32_t)(h % L->n);
        if (L->prec != QT_ILP_NS && L->pt->has_timestamp) {
            while (keep > 0 && (line[keep - 1] == ' ' || line[keep - 1] == '\r'))
                keep--;
            while (keep > 0 && line[keep - 1] != ' ')
                keep--; /* keep ends after the space before the timestamp */
            snprintf(rewritten, sizeof(rewritten), "%" PRId64, L->pt->timestamp_ns);
            ts = rewritten;
        }
    }
    struct sender *s = &L->s[conn];
    rc = sender_append(s, line, keep);
    if (rc == 0 && ts != NULL)
        rc = sender_append(s, ts, strlen(ts));
    return rc == 0 ? sender_append(s, "\n", 1) : rc;
}

/* Read fd to the end, feeding complete lines to load_line. */
static int
load_stream(struct load *L, int fd)
{
    char *buf = qt_malloc(LOAD_READ_BYTES + QT_LINE_MAX + 2);
    if (buf == NULL)
        return QT_ENOMEM;
    size_t have = 0;
    bool skipping = false; /* inside an over-long line */
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, LOAD_READ_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        L->bytes_in += (size_t)n;
        have += (size_t)n;
        size_t pos = 0;
        for (;;) {
            char *nl = memchr(buf + pos, '\n', have - pos);
            if (nl == NULL && n > 0)
                break;
            size_t end = nl != NULL ? (size_t)(nl - buf) : have;
            if (!skipping && end > pos)
                rc = load_line(L, buf + pos, end - pos);
            skipping = false;
            pos = nl != NULL ? end + 1 : have;
            if (rc != 0 || pos >= have)
                break;
        }
        memmove(buf, buf + pos, have - pos);
        have -= pos;
        if (have > QT_LINE_MAX + 1) { /* a line no server accepts: drop it */
            if (!skipping) {
                L->bad++;
                L->lines++;
            }
            have = 0;
            skipping = true;
        }
        load_progress(L, false);
        if (rc != 0 || n == 0)
            break;
    }
    qt_free(buf);
    return rc;
}

static void
load_usage(FILE *f)
{
    fprintf(f, "usage: qtdb load [--server HOST:PORT] [--precision ns|us|ms|s] [--connections N] "
               "FILE|-\n"
               "  --server HOST:PORT  server line-protocol TCP address (default 127.0.0.1:8089)\n"
               "  --precision P       timestamps in the file are in P (default ns)\n"
               "  --connections N     parallel connections, 1..64 (default 2); lines of one\n"
               "                      series always use the same connection, in file order\n"
               "exit: 0 ok (every line handed to the server, which has stored them),\n"
               "      1 failure, 2 usage error\n");
}

static int
load_parse_args(int argc, char **argv, struct load *L, const char **server, const char **file)
{
    *server = "127.0.0.1:8089";
    *file = NULL;
    L->n = 2;
    L->prec = QT_ILP_NS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool v = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        if (strcmp(a, "--server") == 0 && v) {
            *server = argv[++i];
        } else if (strcmp(a, "--precision") == 0 && v) {
            const char *p = argv[++i];
            if (qt_ilp_precision_parse(p, strlen(p), &L->prec) != 0)
                return -1;
        } else if (strcmp(a, "--connections") == 0 && v) {
            long n = strtol(argv[++i], NULL, 10);
            if (n < 1 || n > (long)LOAD_CONNS_MAX)
                return -1;
            L->n = (uint32_t)n;
        } else if ((a[0] == '-' && a[1] == '-') || *file != NULL) {
            return -1;
        } else {
            *file = a;
        }
    }
    return *file == NULL ? -1 : 0;
}

static int
load_connect(struct load *L, const char *server)
{
    struct qt_httpc_url u;
    if (qt_httpc_url_parse(server, &u) != 0) {
        fprintf(stderr, "qtdb load: bad --server '%s': %s\n", server, qt_err_detail());
        return EXIT_USAGE;
    }
    L->s = qt_calloc(L->n, sizeof(*L->s));
    if (L->s == NULL)
        return EXIT_FAIL;
    for (uint32_t i = 0; i < L->n; i++)
        L->s[i].fd = -1;
    for (uint32_t i = 0; i < L->n; i++) {
        struct sender *s = &L->s[i];
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        s->fd = qt_httpc_connect(u.host, u.port, 10000);
        if (s->fd < 0) {
            fprintf(stderr, "qtdb load: cannot connect to %s: %s\n", server, qt_strerror(s->fd));
            return EXIT_FAIL;
        }
        struct timeval tv = {0, 0}; /* sends may block as long as the server pushes back */
        setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (pthread_create(&s->thr, NULL, sender_main, s) != 0) {
            close(s->fd);
            s->fd = -1;
            return EXIT_FAIL;
        }
    }
    return EXIT_OK;
}

/* Flush, stop and join every sender; returns the first send error. */
static int
load_finish(struct load *L)
{
    int err = 0;
    for (uint32_t i = 0; L->s != NULL && i < L->n; i++) {
        struct sender *s = &L->s[i];
        if (s->fd < 0)
            continue;
        int rc = sender_push(s);
        err = err ? err : rc;
        pthread_mutex_lock(&s->mu);
        s->done = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    for (uint32_t i = 0; L->s != NULL && i < L->n; i++) {
        struct sender *s = &L->s[i];
        if (s->fd < 0)
            continue;
        pthread_join(s->thr, NULL);
        err = err ? err : s->err;
        close(s->fd);
        qt_free(s->cur);
    }
    return err;
}

int
qt_cmd_load(int argc, char **argv)
{
    struct load L = {0};
    const char *server, *file;
    int a = load_parse_args(argc, argv, &L, &server, &file);
    if (a != 0) {
        load_usage(a > 0 ? stdout : stderr);
        return a > 0 ? EXIT_OK : EXIT_USAGE;
    }
    int fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "qtdb load: %s: %s\n", file, strerror(errno));
        return EXIT_FAIL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        L.total = (uint64_t)st.st_size;
    L.tty = isatty(STDERR_FILENO);
    L.pt = qt_malloc(sizeof(*L.pt));
    L.scratch = qt_malloc(QT_ILP_SCRATCH_MAX);
    int ex = L.pt && L.scratch ? load_connect(&L, server) : EXIT_FAIL;
    L.t0 = now_s();
    int rc = ex == EXIT_OK ? load_stream(&L, fd) : 0;
    int frc = load_finish(&L);
    rc = rc ? rc : frc;
    double el = now_s() - L.t0;
    load_progress(&L, true);
    if (ex == EXIT_OK) {
        fprintf(stderr,
                "load: %" PRIu64 " lines, %" PRIu64 " points, %" PRIu64
                " bad lines, %.1f MB in %.2f s: %.2f M points/s over %u connection%s%s%s\n",
                L.lines, L.points, L.bad, (double)L.bytes_in / 1e6, el,
                el > 0 ? (double)L.points / el / 1e6 : 0.0, L.n, L.n == 1 ? "" : "s",
                rc ? "; FAILED: " : "", rc ? qt_strerror(rc) : "");
        ex = rc == 0 ? EXIT_OK : EXIT_FAIL;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    for (uint32_t i = 0; L.s != NULL && i < L.n; i++) {
        pthread_mutex_destroy(&L.s[i].mu);
        pthread_cond_destroy(&L.s[i].cv);
    }
    qt_free(L.s);
    qt_free(L.pt);
    qt_free(L.scratch);
    return ex;
}
