/*
 * bench_e2e.c -- end-to-end ingest benchmark: the city data set streamed
 * over TCP line protocol into a real `qtdb serve`, and (when installed)
 * into VictoriaMetrics on the same data in the same run.
 *
 *   build/bench/bench_e2e [--hours H] [--stations N] [--conns C]
 *                         [--fsync POLICY] [--io KIND] [--no-vm]
 *
 * The stream (citygen, arrival order, late and duplicate lines included) is
 * generated and formatted into memory first, split over C connections by
 * series, so the clients cost nothing but send() during the measurement.
 * Reported per server: points/s (wall, first byte to the server having
 * stored the last line), server CPU seconds per million points (utime +
 * stime from /proc/PID/stat), peak RSS (VmHWM), bytes on disk per point
 * after the final flush, and the median latency of example queries when
 * the query executor is built.  VictoriaMetrics acknowledges nothing over
 * TCP, so its ingest ends when vm_rows_inserted_total stops short of
 * nothing (all rows counted) and its disk size is taken after
 * /internal/force_flush and a merge pause.
 */
#include "format/qt_alloc.h"
#include "format/qt_err.h"
#include "server/httpc.h"
#include "tests/citygen.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VM_BIN "/usr/bin/victoria-metrics"

struct opts {
    double hours;
    uint32_t stations, conns;
    const char *fsync, *io;
    bool vm;
};

struct data {
    char **buf; /* per connection */
    size_t *len;
    uint64_t lines, points, bytes; /* points: distinct (duplicates collapse) */
    uint64_t rows;                 /* fields sent, duplicates included */
    int64_t start_ns, end_ns;
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- data ------------------------------------------------------------------- */

static int
gen_data(const struct opts *o, struct data *d)
{
    struct qt_city_config cfg;
    qt_city_config_default(&cfg, o->stations);
    int64_t now = (int64_t)time(NULL) * 1000000000ll;
    cfg.duration_ns = (int64_t)(o->hours * 3600.0) * 1000000000ll;
    cfg.start_ns =
        (now - cfg.duration_ns - 3600ll * 1000000000ll) / 3600000000000ll * 3600000000000ll;
    d->start_ns = cfg.start_ns;
    d->end_ns = cfg.start_ns + cfg.duration_ns;
    struct qt_city_gen *g;
    if (qt_city_gen_create(&cfg, &g) != 0)
        return -1;
    d->buf = qt_calloc(o->conns, sizeof(char *));
    d->len = qt_calloc(o->conns, sizeof(size_t));
    size_t *cap = qt_calloc(o->conns, sizeof(size_t));
    struct qt_city_point p;
    int rc = 0;
    while (rc == 0 && qt_city_next(g, &p) == 1) {
        uint32_t c = (uint32_t)(p.series % o->conns);
        if (d->len[c] + QT_CITY_LINE_MAX > cap[c]) {
            cap[c] = cap[c] ? cap[c] * 2 : (64u << 20);
            char *nb = qt_realloc(d->buf[c], cap[c]);
            if (nb == NULL) {
                rc = -1;
                break;
            }
            d->buf[c] = nb;
        }
        size_t n;
        qt_city_format(&p, d->buf[c] + d->len[c], QT_CITY_LINE_MAX, &n);
        d->len[c] += n;
        d->bytes += n;
        d->lines++;
        d->rows += p.nfields;
        if (p.arrival != QT_CITY_DUP)
            d->points += p.nfields;
    }
    qt_free(cap);
    qt_city_gen_destroy(g);
    return rc;
}

/* ---- processes ----------------------------------------------------------------- */

struct proc {
    pid_t pid;
    char log[PATH_MAX];
};

static int
spawn(struct proc *p, const char *const *argv, const char *log)
{
    snprintf(p->log, sizeof(p->log), "%s", log);
    fflush(stdout);
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return 0;
}

static int
stop(struct proc *p, int sig)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    int st = 0;
    waitpid(p->pid, &st, 0);
    p->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* utime + stime of pid in seconds. */
static double
proc_cpu(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* fields after the command name */
    if (p == NULL)
        return -1;
    unsigned long ut = 0, st = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double
proc_hwm_mb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    double v = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            v = strtod(line + 6, NULL) / 1024.0;
    if (f != NULL)
        fclose(f);
    return v;
}

static uint64_t
dir_bytes(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    uint64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(p, &st) != 0)
            continue;
        sum += S_ISDIR(st.st_mode) ? dir_bytes(p) : (uint64_t)st.st_size;
    }
    closedir(d);
    return sum;
}

static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- HTTP helpers --------------------------------------------------------------- */

struct sink {
    char *p;
    size_t len, cap;
};

static int
sink_fn(void *arg, const uint8_t *p, size_t n)
{
    struct sink *s = arg;
    size_t k = n < s->cap - 1 - s->len ? n : s->cap - 1 - s->len;
    memcpy(s->p + s->len, p, k);
    s->len += k;
    s->p[s->len] = '\0';
    return 0;
}

static int
http_get(int port, const char *path, char *out, size_t cap)
{
    struct qt_httpc_url u;
    char url[64];
    snprintf(url, sizeof(url), "127.0.0.1:%d", port);
    if (qt_httpc_url_parse(url, &u) != 0)
        return -1;
    static struct qt_httpc_resp r;
    char dummy[2];
    struct sink s = {.p = out ? out : dummy, .cap = out ? cap : sizeof(dummy)};
    s.p[0] = '\0';
    int rc = qt_httpc_request(&u, "GET", path, NULL, NULL, 0, 60000, &r, sink_fn, &s);
    return rc == 0 ? r.status : -1;
}

/* Sum of every sample of metric `name` (any labels matching `label`). */
static double
metric_sum(const char *text, const char *name, const char *label)
{
    double sum = 0;
    size_t nl = strlen(name);
    for (const char *l = text; l != NULL && *l;) {
        const char *next = strchr(l, '\n');
        if (strncmp(l, name, nl) == 0 && (l[nl] == ' ' || l[nl] == '{')) {
            const char *sp = strchr(l, ' ');
            bool lbl = label == NULL || (strstr(l, label) != NULL && strstr(l, label) < sp);
            if (sp != NULL && lbl)
                sum += strtod(sp + 1, NULL);
        }
        l = next ? next + 1 : NULL;
    }
    return sum;
}

/* ---- streaming ------------------------------------------------------------------- */

struct sender {
    int port;
    const char *p;
    size_t n;
    bool wait_close; /* qtdb: the close means "stored" */
    int rc;
};

static void *
sender_main(void *arg)
{
    struct sender *s = arg;
    s->rc = -1;
    char port[16];
    snprintf(port, sizeof(port), "%d", s->port);
    int fd = qt_httpc_connect("127.0.0.1", port, 10000);
    if (fd < 0)
        return NULL;
    struct timeval tv = {0, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t off = 0;
    while (off < s->n) {
        size_t k = s->n - off < (1u << 20) ? s->n - off : (1u << 20);
        ssize_t w = send(fd, s->p + off, k, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (off == s->n) {
        shutdown(fd, SHUT_WR);
        char b[64];
        if (s->wait_close)
            while (recv(fd, b, sizeof(b), 0) > 0)
                ;
        s->rc = 0;
    }
    close(fd);
    return NULL;
}

static int
stream(const struct opts *o, const struct data *d, int port, bool wait_close)
{
    struct sender *s = qt_calloc(o->conns, sizeof(*s));
    pthread_t *t = qt_calloc(o->conns, sizeof(*t));
    for (uint32_t i = 0; i < o->conns; i++) {
        s[i] =
            (struct sender){.port = port, .p = d->buf[i], .n = d->len[i], .wait_close = wait_close};
        pthread_create(&t[i], NULL, sender_main, &s[i]);
    }
    int rc = 0;
    for (uint32_t i = 0; i < o->conns; i++) {
        pthread_join(t[i], NULL);
        rc |= s[i].rc;
    }
    qt_free(s);
    qt_free(t);
    return rc;
}

/* ---- results --------------------------------------------------------------------------- */

struct result {
    bool ok;
    double wall_s, cpu_s, rss_mb;
    uint64_t disk_bytes, seg_bytes;
    double q_ms[8];
    uint32_t nq;
};

static const char *const queries[] = {
    "measurements",
    "water.flow{district=\"xihu\"} | avg by 5m",
    "grid.power | max by district",
    "air.pm25 | last",
};

static int
dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void
run_queries(int port, struct result *r)
{
    static char body[1 << 20];
    char path[1024];
    r->nq = 0;
    if (http_get(port, "/query?q=measurements", body, sizeof(body)) == 501)
        return; /* executor not built */
    for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]); q++) {
        char enc[900];
        qt_httpc_urlencode(queries[q], strlen(queries[q]), enc, sizeof(enc));
        snprintf(path, sizeof(path), "/query?format=json&q=%s", enc);
        double t[11];
        int st = 0;
        for (int i = 0; i < 11; i++) {
            double t0 = now_s();
            st = http_get(port, path, body, sizeof(body));
            t[i] = (now_s() - t0) * 1000.0;
        }
        qsort(t, 11, sizeof(double), dcmp);
        r->q_ms[r->nq++] = st == 200 ? t[5] : -1;
    }
}

/* Path of build/qtdb from build/bench/bench_e2e. */
static int
qtdb_bin(char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    for (int i = 0; i < 2; i++) {
        char *sl = strrchr(self, '/');
        if (sl == NULL)
            return -1;
        *sl = '\0';
    }
    snprintf(out, cap, "%s/qtdb", self);
    return access(out, X_OK);
}

/* Wait for "serve: ready ... ilp=HOST:PORT http=HOST:PORT" in the log. */
static int
qtdb_ready(const struct proc *p, int *ilp, int *http)
{
    for (int i = 0; i < 3000; i++) {
        FILE *f = fopen(p->log, "r");
        char line[1024];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            char *a = strstr(line, "serve: ready ilp=");
            char *h = strstr(line, " http=");
            if (a == NULL || h == NULL)
                continue;
            *ilp = atoi(strchr(a + 17, ':') + 1);
            *http = atoi(strchr(h + 6, ':') + 1);
            fclose(f);
            return 0;
        }
        if (f != NULL)
            fclose(f);
        sleep_ms(10);
    }
    return -1;
}

static int
run_qtdb(const struct opts *o, const struct data *d, const char *work, struct result *r)
{
    char bin[PATH_MAX], dir[PATH_MAX], log[PATH_MAX];
    if (qtdb_bin(bin, sizeof(bin)) != 0)
        return -1;
    snprintf(dir, sizeof(dir), "%s/qtdb", work);
    snprintf(log, sizeof(log), "%s/qtdb.log", work);
    const char *argv[] = {bin,           "serve",  "--data",      dir,       "--ilp",
                          "127.0.0.1:0", "--http", "127.0.0.1:0", "--fsync", o->fsync,
                          "--io",        o->io,    NULL};
    struct proc p;
    int ilp, http;
    if (spawn(&p, argv, log) != 0 || qtdb_ready(&p, &ilp, &http) != 0)
        return -1;
    double c0 = proc_cpu(p.pid), t0 = now_s();
    int rc = stream(o, d, ilp, true);
    r->wall_s = now_s() - t0;
    r->cpu_s = proc_cpu(p.pid) - c0;
    static char m[1 << 20];
    http_get(http, "/metrics", m, sizeof(m));
    double stored = metric_sum(m, "qtdb_ingest_lines_total", "protocol=\"ilp\"");
    if (stored != (double)d->lines) {
        fprintf(stderr, "bench_e2e: qtdb stored %.0f of %llu lines\n", stored,
                (unsigned long long)d->lines);
        rc = -1;
    }
    run_queries(http, r);
    r->rss_mb = proc_hwm_mb(p.pid);
    if (stop(&p, SIGTERM) != 0)
        rc = -1;
    r->disk_bytes = dir_bytes(dir);
    char shards[PATH_MAX + 16];
    snprintf(shards, sizeof(shards), "%s/shards", dir);
    r->seg_bytes = dir_bytes(shards);
    r->ok = rc == 0;
    return rc;
}

static int
run_vm(const struct opts *o, const struct data *d, const char *work, struct result *r)
{
    if (access(VM_BIN, X_OK) != 0)
        return 1;
    char dir[PATH_MAX], log[PATH_MAX], http_a[64], influx_a[64];
    snprintf(dir, sizeof(dir), "%s/vm", work);
    snprintf(log, sizeof(log), "%s/vm.log", work);
    int hp = free_port(), ip = free_port();
    snprintf(http_a, sizeof(http_a), "127.0.0.1:%d", hp);
    snprintf(influx_a, sizeof(influx_a), "127.0.0.1:%d", ip);
    char sdp[PATH_MAX + 20];
    snprintf(sdp, sizeof(sdp), "-storageDataPath=%s", dir);
    char ha[80], ia[80];
    snprintf(ha, sizeof(ha), "-httpListenAddr=%s", http_a);
    snprintf(ia, sizeof(ia), "-influxListenAddr=%s", influx_a);
    const char *argv[] = {VM_BIN, sdp, ha, ia, "-retentionPeriod=100y", "-loggerLevel=ERROR", NULL};
    struct proc p;
    if (spawn(&p, argv, log) != 0)
        return -1;
    for (int i = 0; i < 3000 && http_get(hp, "/health", NULL, 0) != 200; i++)
        sleep_ms(10);
    double c0 = proc_cpu(p.pid), t0 = now_s();
    int rc = stream(o, d, ip, false);
    static char m[1 << 20];
    double rows = 0;
    for (int i = 0; i < 12000 && rc == 0; i++) { /* until every row is counted (2 min max) */
        if (http_get(hp, "/metrics", m, sizeof(m)) == 200)
            rows = metric_sum(m, "vm_rows_inserted_total", "type=\"influx\"");
        if (rows >= (double)d->rows)
            break;
        sleep_ms(10);
    }
    r->wall_s = now_s() - t0;
    r->cpu_s = proc_cpu(p.pid) - c0;
    if (rows < (double)d->rows) {
        fprintf(stderr, "bench_e2e: vm counted %.0f of %llu rows\n", rows,
                (unsigned long long)d->rows);
        rc = -1;
    }
    http_get(hp, "/internal/force_flush", NULL, 0);
    sleep_ms(3000); /* let in-memory parts reach disk and small merges finish */
    r->rss_mb = proc_hwm_mb(p.pid);
    stop(&p, SIGINT);
    r->disk_bytes = dir_bytes(dir);
    r->seg_bytes = r->disk_bytes;
    r->nq = 0;
    r->ok = rc == 0;
    return rc;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: bench_e2e [--hours H] [--stations N] [--conns C] [--fsync POLICY] "
               "[--io KIND] [--no-vm]\n"
               "  defaults: 2 hours, 10000 stations, 4 connections, fsync always, io auto;\n"
               "  VictoriaMetrics runs too when " VM_BIN " exists\n");
}

static int
parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){
        .hours = 2, .stations = 10000, .conns = 4, .fsync = "always", .io = "auto", .vm = true};
    for (int i = 1; i < argc; i++) {
        bool v = i + 1 < argc;
        if (strcmp(argv[i], "--hours") == 0 && v)
            o->hours = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--stations") == 0 && v)
            o->stations = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--conns") == 0 && v)
            o->conns = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--fsync") == 0 && v)
            o->fsync = argv[++i];
        else if (strcmp(argv[i], "--io") == 0 && v)
            o->io = argv[++i];
        else if (strcmp(argv[i], "--no-vm") == 0)
            o->vm = false;
        else
            return -1;
    }
    return o->hours > 0 && o->stations >= 5 && o->conns >= 1 && o->conns <= 64 ? 0 : -1;
}

static void
report(const char *name, const struct data *d, const struct result *r)
{
    double mp = (double)d->points / 1e6;
    printf("  %-5s ingest            %8.2f M points/s (wall, %.2f s)\n", name,
           (double)d->points / r->wall_s / 1e6, r->wall_s);
    printf("  %-5s server CPU        %8.3f s per M points = %.2f M points per CPU-second\n", name,
           r->cpu_s / mp, mp / r->cpu_s);
    printf("  %-5s peak RSS          %8.1f MB\n", name, r->rss_mb);
    printf("  %-5s disk after flush  %8.3f bytes/point (data dir %.1f MB, segments %.3f B/pt)\n",
           name, (double)r->disk_bytes / (double)d->points, (double)r->disk_bytes / 1e6,
           (double)r->seg_bytes / (double)d->points);
    for (uint32_t i = 0; i < r->nq; i++)
        printf("  %-5s query median      %8.2f ms  %s\n", name, r->q_ms[i], queries[i]);
}

int
main(int argc, char **argv)
{
    struct opts o;
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct data d = {0};
    double g0 = now_s();
    if (gen_data(&o, &d) != 0) {
        fprintf(stderr, "bench_e2e: generating the data set failed\n");
        return 1;
    }
    printf("bench_e2e: city %u series x %.1f h = %.2f M points (%.2f M lines, %.0f MB), %u TCP "
           "connections, fsync %s, io %s (generated in %.1f s)\n",
           o.stations, o.hours, (double)d.points / 1e6, (double)d.lines / 1e6,
           (double)d.bytes / 1e6, o.conns, o.fsync, o.io, now_s() - g0);
    char work[] = "/tmp/qtdb-bench-e2e-XXXXXX";
    if (mkdtemp(work) == NULL)
        return 1;
    struct result q = {0}, v = {0};
    int rc = run_qtdb(&o, &d, work, &q);
    if (rc != 0)
        printf("ERROR: qtdb run failed (log in %s)\n", work);
    else
        report("qtdb", &d, &q);
    double ppc = (double)d.points / q.cpu_s;
    printf("  qtdb  target >= 1 M points/s per server core: %.2f M per CPU-second  %s\n", ppc / 1e6,
           ppc >= 1e6 ? "ok" : "MISS");
    int vrc = o.vm ? run_vm(&o, &d, work, &v) : 1;
    if (vrc == 1) {
        printf("  vm    VictoriaMetrics not run (%s)\n",
               o.vm ? "not installed: apt-get install victoria-metrics" : "--no-vm");
    } else if (vrc != 0) {
        printf("ERROR: VictoriaMetrics run failed (log in %s)\n", work);
    } else {
        report("vm", &d, &v);
        double ratio = ppc / ((double)d.points / v.cpu_s);
        double disk = (double)v.disk_bytes / (double)q.disk_bytes;
        printf("  ratio points per CPU-second qtdb/vm  %6.2fx  target >= 2   %s\n", ratio,
               ratio >= 2 ? "ok" : "MISS");
        printf("  ratio bytes on disk vm/qtdb          %6.2fx  target > 1    %s\n", disk,
               disk > 1 ? "ok" : "MISS");
    }
    if (rc == 0 && (vrc == 0 || vrc == 1)) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", work);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_e2e: could not remove %s\n", work);
    }
    for (uint32_t i = 0; i < o.conns; i++)
        qt_free(d.buf[i]);
    qt_free(d.buf);
    qt_free(d.len);
    return rc == 0 && vrc != -1 ? 0 : 1;
}
