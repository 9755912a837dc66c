/*
 * test_e2e_ops.c -- the DBA operations on a live `qtdb serve` through the
 * HTTP API (/api/v1/shards, compact, backup, verify, export), driven by the
 * real CLI with --server URL: data written over HTTP in three server runs
 * (so every shard holds three segments), shards listed with the points
 * written, compaction down to one segment per shard, a full and an
 * incremental backup, an offline restore of the newest backup whose
 * offline export equals the live server's export byte for byte, verify
 * without damage, export line counts (lp and csv), and the error statuses.
 *
 * Rollups on a live server (serve --rollups, POST /api/v1/rollup, `qtdb
 * rollup --server`): two ended shards rolled up once, then reported
 * current, late data recomputing its shard, the records surviving a
 * restart, the rollup queried by name, a raw query answered from the
 * rollups (X-Qtdb-Source: rollup:1h); a bad --rollups at startup, and
 * the 409 of a server without rules.
 *
 * Retention on a live server (serve --retention, GET /api/v1/retention,
 * POST /api/v1/compact applying it first): a bad spec at startup, a
 * one-day shard entirely past retention dropped, another trimmed by its
 * compaction while a measurement without a rule stays, recent points
 * kept, and a server without rules dropping nothing.
 */
#include "harness.h"
#include "server/httpc.h"
#include "tests/srvproc.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T0       1794528000000000000ll /* 2026-11-13T00:00:00Z */
#define MIN_NS   60000000000ll
#define STATIONS 10
#define SLOTS    432 /* every 10 min over 3 days: 3 one-day shards */
#define ROUNDS   3
#define EXTRA    100 /* written after the first backup */

/* Run `qtdb ARGS...` with stdout into out_path (or /dev/null) and stderr
 * into err[0..cap); exit status or -1. */
static int
cli(const char *const *args, const char *out_path, char *err, size_t cap)
{
    char self[4096], bin[4200], errp[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(bin, sizeof(bin), "%s/qtdb", self);
    snprintf(errp, sizeof(errp), "%s/cli.err", qt_test_dir());
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0)
            _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        const char *argv[20] = {bin};
        for (int i = 0; args[i] != NULL && i < 18; i++)
            argv[i + 1] = args[i];
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    FILE *f = fopen(errp, "r");
    size_t len = f ? fread(err, 1, cap - 1, f) : 0;
    err[len] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The whole file as a NUL-terminated string (malloc'd), or NULL. */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    size_t got = p ? fread(p, 1, (size_t)n, f) : 0;
    fclose(f);
    if (p == NULL || got != (size_t)n) {
        free(p);
        return NULL;
    }
    p[n] = '\0';
    *len = (size_t)n;
    return p;
}

static uint64_t
count_lines(const char *p, size_t n)
{
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += p[i] == '\n';
    return c;
}

static uint64_t
count_str(const char *hay, const char *needle)
{
    uint64_t c = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        c++;
    return c;
}

/* Write round r over HTTP: every station at every slot, offset by r s. */
static int
write_round(const struct srvproc *s, int r)
{
    static char body[STATIONS * 64 * 48];
    char resp[512];
    for (int lo = 0; lo < SLOTS; lo += 48) {
        size_t n = 0;
        for (int slot = lo; slot < lo + 48 && slot < SLOTS; slot++)
            for (int st = 0; st < STATIONS; st++)
                n += (size_t)snprintf(body + n, sizeof(body) - n, "opsm,st=s%02d v=%d.25 %lld\n",
                                      st, slot * 10 + r,
                                      T0 + slot * 10 * MIN_NS + (long long)r * 1000000000ll);
        if (srv_http(s, "POST", "/write", "text/plain", body, n, resp, sizeof(resp), NULL) != 204)
            return -1;
    }
    return 0;
}

/* Abort the test's check chain helper: the run's data dir and URL. */
struct env {
    char dir[600], url[64], out[700], err[1 << 14];
    struct srvproc s;
};

static void
check_shards_and_compact(struct env *e)
{
    const char *shards[] = {"shards", "--server", e->url, NULL};
    CHECK_EQ(cli(shards, e->out, e->err, sizeof(e->err)), 0);
    size_t len = 0;
    char *txt = slurp(e->out, &len);
    CHECK(txt != NULL);
    char want[128];
    snprintf(want, sizeof(want), "3 shard(s), %d points", STATIONS * SLOTS * ROUNDS);
    CHECK(strstr(txt, want) != NULL);
    CHECK(strstr(txt, "SHARD") != NULL && strstr(txt, "2026-11-13T00:00:00") != NULL);
    free(txt);
    static char body[1 << 16];
    CHECK_EQ(srv_http(&e->s, "GET", "/api/v1/shards", NULL, NULL, 0, body, sizeof(body), NULL),
             200);
    CHECK(body[0] == '[' && count_str(body, "\"start\":") == 3);
    CHECK_EQ(count_str(body, "\"segments\":3,"), 3); /* one per server run */
    const char *compact[] = {"compact", "--server", e->url, "--all", NULL};
    CHECK_EQ(cli(compact, e->out, e->err, sizeof(e->err)), 0);
    txt = slurp(e->out, &len);
    CHECK(txt != NULL && strstr(txt, "compacted 3 shard(s) (0 skipped): 9 segments") != NULL);
    free(txt);
    CHECK_EQ(srv_http(&e->s, "GET", "/api/v1/shards", NULL, NULL, 0, body, sizeof(body), NULL),
             200);
    CHECK_EQ(count_str(body, "\"segments\":1,"), 3);
    CHECK(count_str(body, "\"last_compaction\":0,") == 0);
    /* one shard by id, nothing to gain: skipped; a shard that does not exist */
    char id[32];
    snprintf(id, sizeof(id), "%lld", T0);
    const char *one[] = {"compact", "--server", e->url, "--shard", id, NULL};
    CHECK_EQ(cli(one, e->out, e->err, sizeof(e->err)), 0);
    const char *none[] = {"compact", "--server", e->url, "--shard", "12345", NULL};
    CHECK_EQ(cli(none, e->out, e->err, sizeof(e->err)), 1);
    CHECK(strstr(e->err, "HTTP 404") != NULL);
}

static void
check_backup_restore(struct env *e)
{
    char target[700], restored[700], live[700], off[700];
    snprintf(target, sizeof(target), "%s/backups", qt_test_dir());
    snprintf(restored, sizeof(restored), "%s/restored", qt_test_dir());
    snprintf(live, sizeof(live), "%s/live.lp", qt_test_dir());
    snprintf(off, sizeof(off), "%s/restored.lp", qt_test_dir());
    const char *full[] = {"backup", "--server", e->url, "--to", target, NULL};
    CHECK_EQ(cli(full, e->out, e->err, sizeof(e->err)), 0);
    size_t len = 0;
    char *txt = slurp(e->out, &len);
    CHECK(txt != NULL && strstr(txt, "backup ") != NULL && strstr(txt, " files, ") != NULL);
    free(txt);
    /* more data, then an incremental backup holding it (WAL tail) */
    char lines[EXTRA * 48];
    size_t n = 0;
    for (int i = 0; i < EXTRA; i++)
        n += (size_t)snprintf(lines + n, sizeof(lines) - n, "opsm,st=x v=%d %lld\n", i,
                              T0 + 2 * 86400000000000ll + i * MIN_NS + 7);
    char resp[256];
    CHECK_EQ(srv_http(&e->s, "POST", "/write", "text/plain", lines, n, resp, sizeof(resp), NULL),
             204);
    const char *inc[] = {"backup", "--server", e->url, "--to", target, "--incremental", NULL};
    CHECK_EQ(cli(inc, e->out, e->err, sizeof(e->err)), 0);
    txt = slurp(e->out, &len);
    CHECK(txt != NULL && strstr(txt, " from 20") != NULL); /* names its parent backup */
    free(txt);
    /* live export vs offline export of the restored newest backup */
    const char *exp_live[] = {"export", "opsm", "--format", "lp", "--server", e->url, NULL};
    CHECK_EQ(cli(exp_live, live, e->err, sizeof(e->err)), 0);
    const char *rest[] = {"restore", "--from", target, "--data", restored, NULL};
    CHECK_EQ(cli(rest, NULL, e->err, sizeof(e->err)), 0);
    const char *exp_off[] = {"export", "opsm", "--format", "lp", "--data", restored, NULL};
    CHECK_EQ(cli(exp_off, off, e->err, sizeof(e->err)), 0);
    size_t la = 0, lb = 0;
    char *a = slurp(live, &la), *b = slurp(off, &lb);
    CHECK(a != NULL && b != NULL);
    CHECK_EQ(count_lines(a, la), (uint64_t)STATIONS * SLOTS * ROUNDS + EXTRA);
    CHECK(la == lb && memcmp(a, b, la) == 0);
    free(a);
    free(b);
    const char *rsrv[] = {"restore", "--from",   target, "--data",
                          restored,  "--server", e->url, NULL};
    CHECK_EQ(cli(rsrv, NULL, e->err, sizeof(e->err)), 2); /* offline only */
}

static void
check_verify_export(struct env *e)
{
    const char *verify[] = {"verify", "--server", e->url, NULL};
    CHECK_EQ(cli(verify, e->out, e->err, sizeof(e->err)), 0);
    size_t len = 0;
    char *txt = slurp(e->out, &len);
    CHECK(txt != NULL && strstr(txt, "0 damaged file(s)") != NULL);
    free(txt);
    static char body[1 << 16];
    CHECK_EQ(srv_http(&e->s, "POST", "/api/v1/verify", NULL, NULL, 0, body, sizeof(body), NULL),
             200);
    CHECK(strstr(body, "\"damaged\":false") != NULL);
    /* one station, one day, csv: a header plus SLOTS/3 rows per round */
    char from[32], to[32];
    snprintf(from, sizeof(from), "%lld", T0);
    snprintf(to, sizeof(to), "%lld", T0 + 86400000000000ll);
    const char *csv[] = {"export",   "opsm,st=s03", "--from",   from,   "--to", to,
                         "--format", "csv",         "--server", e->url, NULL};
    CHECK_EQ(cli(csv, e->out, e->err, sizeof(e->err)), 0);
    char want[64];
    snprintf(want, sizeof(want), "exported %d lines", SLOTS / 3 * ROUNDS);
    CHECK(strstr(e->err, want) != NULL);
    txt = slurp(e->out, &len);
    CHECK(txt != NULL && strncmp(txt, "measurement,tags,field,time_ns,value\n", 37) == 0);
    CHECK_EQ(count_lines(txt, len), (uint64_t)SLOTS / 3 * ROUNDS + 1);
    free(txt);
}

static void
check_errors(struct env *e)
{
    char body[4096];
    CHECK_EQ(srv_http(&e->s, "POST", "/api/v1/backup", NULL, NULL, 0, body, sizeof(body), NULL),
             400);
    CHECK(strstr(body, "\"error\":") != NULL);
    CHECK_EQ(srv_http(&e->s, "POST", "/api/v1/backup?to=rel/dir", NULL, NULL, 0, body, sizeof(body),
                      NULL),
             400);
    CHECK_EQ(srv_http(&e->s, "POST", "/api/v1/compact", NULL, NULL, 0, body, sizeof(body), NULL),
             400);
    CHECK_EQ(
        srv_http(&e->s, "GET", "/api/v1/compact?all=true", NULL, NULL, 0, body, sizeof(body), NULL),
        405);
    CHECK_EQ(srv_http(&e->s, "POST", "/api/v1/shards", NULL, NULL, 0, body, sizeof(body), NULL),
             405);
    CHECK_EQ(srv_http(&e->s, "GET", "/api/v1/export?q=opsm&format=xml", NULL, NULL, 0, body,
                      sizeof(body), NULL),
             400);
    CHECK_EQ(srv_http(&e->s, "GET", "/api/v1/export", NULL, NULL, 0, body, sizeof(body), NULL),
             400);
    CHECK_EQ(srv_http(&e->s, "GET", "/api/v1/nope", NULL, NULL, 0, body, sizeof(body), NULL), 404);
    /* the body cut at 16 bytes by the helper: the full length is known */
    size_t full = 0;
    CHECK_EQ(srv_http(&e->s, "GET", "/api/v1/export?q=opsm", NULL, NULL, 0, body, 16, &full), 200);
    CHECK(full > 16);
    /* a client that closes mid-export: the writer thread ends (EPIPE or
     * the cancel flag), the server keeps serving and later stops with 0 */
    int fd = srv_connect(e->s.http_port);
    CHECK(fd >= 0);
    static const char req[] = "GET /api/v1/export?q=opsm&format=csv HTTP/1.1\r\nHost: t\r\n\r\n";
    CHECK_OK(srv_send_all(fd, req, sizeof(req) - 1));
    CHECK(read(fd, body, 100) > 0);
    close(fd);
    CHECK_EQ(srv_http(&e->s, "GET", "/ping", NULL, NULL, 0, body, sizeof(body), NULL), 204);
    const char *bad[] = {"shards", "--server", "127.0.0.1:1", NULL};
    CHECK_EQ(cli(bad, NULL, e->err, sizeof(e->err)), 1);
    CHECK(srv_metric(&e->s, "qtdb_http_requests_total{endpoint=\"ops\"}") >= 10);
    /* rollups: this server has no rules */
    CHECK_EQ(srv_http(&e->s, "POST", "/api/v1/rollup", NULL, NULL, 0, body, sizeof(body), NULL),
             409);
    CHECK(strstr(body, "\"error\":\"no rollup rules configured (--rollups)\"") != NULL);
    CHECK_EQ(srv_http(&e->s, "GET", "/api/v1/rollup", NULL, NULL, 0, body, sizeof(body), NULL),
             200);
    CHECK(strcmp(body, "{\"rollups\":\"\"}\n") == 0);
    CHECK_EQ(srv_http(&e->s, "PUT", "/api/v1/rollup", NULL, NULL, 0, body, sizeof(body), NULL),
             405);
    const char *roll[] = {"rollup", "--server", e->url, NULL};
    CHECK_EQ(cli(roll, e->out, e->err, sizeof(e->err)), 1);
    CHECK(strstr(e->err, "no rollup rules configured (--rollups) (HTTP 409)") != NULL);
    const char *both[] = {"rollup", "--server", e->url, "--rollups", "opsm=1h", NULL};
    CHECK_EQ(cli(both, e->out, e->err, sizeof(e->err)), 2); /* the server's rules apply */
    CHECK(strstr(e->err, "--rollups is for --data only") != NULL);
    const char *neither[] = {"rollup", "--data", e->dir, NULL};
    CHECK_EQ(cli(neither, e->out, e->err, sizeof(e->err)), 2);
}

TEST(ops_over_http)
{
    static struct env e;
    snprintf(e.dir, sizeof(e.dir), "%s/data", qt_test_dir());
    snprintf(e.out, sizeof(e.out), "%s/cli.out", qt_test_dir());
    for (int r = 0; r < ROUNDS; r++) { /* each graceful stop flushes one segment per shard */
        CHECK_OK(srv_start(&e.s, e.dir, false, NULL));
        CHECK_OK(write_round(&e.s, r));
        CHECK_EQ(srv_stop(&e.s, SIGTERM), 0);
    }
    CHECK_OK(srv_start(&e.s, e.dir, false, NULL));
    snprintf(e.url, sizeof(e.url), "http://127.0.0.1:%d", e.s.http_port);
    check_shards_and_compact(&e);
    check_backup_restore(&e);
    check_verify_export(&e);
    check_errors(&e);
    CHECK_EQ(srv_stop(&e.s, SIGTERM), 0);
}

/* ---- rollups on a live server ------------------------------------------------------------- */

#define R_T0       1709251200000000000ll /* 2024-03-01T00:00:00Z: long ended */
#define R_DAY      86400000000000ll
#define R_STATIONS 4
#define R_SLOTS    576 /* every 5 min over 2 days: 2 one-day shards */

/* The integer after "key": in a flat JSON object, or -1. */
static int64_t
jnum(const char *j, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(j, pat);
    return p != NULL ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* One response header of `q` through /query (csv) into v, or -1. */
static int
query_hdr(const struct srvproc *s, const char *q, const char *name, char *v, size_t cap)
{
    static char body[1 << 18];
    static struct qt_httpc_resp resp;
    char path[1024];
    int n = snprintf(path, sizeof(path), "/query?format=csv&q=");
    qt_httpc_urlencode(q, strlen(q), path + n, sizeof(path) - (size_t)n);
    int st = srv_http_resp(s, "GET", path, NULL, NULL, 0, body, sizeof(body), NULL, &resp);
    if (st != 200 || qt_httpc_header(&resp, name, v, cap) <= 0) {
        fprintf(stdout, "query %s: %d %s\n", q, st, body);
        return -1;
    }
    return 0;
}

/* Two old days of air (ruled) and water (not), plus one air point now
 * (the current shard: not rolled up). */
static int
rollup_write(const struct srvproc *s)
{
    static char body[R_STATIONS * R_SLOTS * 64];
    char resp[512];
    size_t n = 0;
    for (int slot = 0; slot < R_SLOTS; slot++)
        for (int st = 0; st < R_STATIONS; st++)
            n += (size_t)snprintf(body + n, sizeof(body) - n, "air,st=a%d pm25=%d.5 %lld\n", st,
                                  slot % 97, R_T0 + slot * 5 * MIN_NS);
    for (int slot = 0; slot < R_SLOTS; slot += 12)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "water,site=w1 flow=%d.0 %lld\n", slot,
                              R_T0 + slot * 5 * MIN_NS);
    n += (size_t)snprintf(body + n, sizeof(body) - n, "air,st=a0 pm25=1.0\n");
    return srv_http(s, "POST", "/write", "text/plain", body, n, resp, sizeof(resp), NULL) == 204
               ? 0
               : -1;
}

/* "air:1h"."pm25.count" summed over the two old days: every raw point. */
static int64_t
rollup_count(const struct srvproc *s)
{
    char q[256];
    snprintf(q, sizeof(q), "\"air:1h\".\"pm25.count\" [%llds, %llds) | sum",
             (long long)(R_T0 / 1000000000ll), (long long)((R_T0 + 2 * R_DAY) / 1000000000ll));
    return srv_query_value(s, q);
}

static void
rollup_runs(struct env *e)
{
    static char body[1 << 16];
    CHECK_EQ(srv_http(&e->s, "GET", "/api/v1/rollup", NULL, NULL, 0, body, sizeof(body), NULL),
             200);
    CHECK(strcmp(body, "{\"rollups\":\"air=1h\"}\n") == 0);
    /* first run: both ended shards, one bucket point per station and hour */
    CHECK_EQ(srv_http(&e->s, "POST", "/api/v1/rollup", NULL, NULL, 0, body, sizeof(body), NULL),
             200);
    CHECK_EQ(jnum(body, "shards"), 2);
    CHECK_EQ(jnum(body, "shards_current"), 0);
    CHECK_EQ(jnum(body, "series"), 2 * R_STATIONS);
    CHECK_EQ(jnum(body, "buckets"), 2 * 24 * R_STATIONS);
    CHECK(jnum(body, "elapsed_ms") >= 0);
    /* second run, through the CLI: nothing to do */
    const char *roll[] = {"rollup", "--server", e->url, NULL};
    CHECK_EQ(cli(roll, e->out, e->err, sizeof(e->err)), 0);
    size_t len = 0;
    char *txt = slurp(e->out, &len);
    CHECK(txt != NULL && strstr(txt, "rollup: 0 shard(s), 0 series-intervals, 0 bucket points; "
                                     "2 shard(s) already current") != NULL);
    free(txt);
    CHECK_EQ(rollup_count(&e->s), (int64_t)R_STATIONS * R_SLOTS);
    char q[256];
    snprintf(q, sizeof(q), "\"air:1h\".\"pm25.max\"{st=\"a1\"} [%llds, %llds) | max",
             (long long)(R_T0 / 1000000000ll), (long long)((R_T0 + 2 * R_DAY) / 1000000000ll));
    CHECK_EQ(srv_query_value(&e->s, q), 96); /* 96.5 is the largest value */
    /* the raw measurement's local-day counts come from the rollups, and
     * say so (UTC days of 1-day shards read raw block statistics) */
    snprintf(q, sizeof(q), "air.pm25 [%llds, %llds) | count by 1d tz \"Asia/Shanghai\"",
             (long long)(R_T0 / 1000000000ll), (long long)((R_T0 + 2 * R_DAY) / 1000000000ll));
    char v[64];
    CHECK_OK(query_hdr(&e->s, q, "X-Qtdb-Source", v, sizeof(v)));
    CHECK(strcmp(v, "rollup:1h") == 0);
    CHECK_OK(query_hdr(&e->s, q, "X-Qtdb-Rollup-Buckets", v, sizeof(v)));
    CHECK_EQ(strtoll(v, NULL, 10), 2 * 24 * R_STATIONS);
    CHECK_OK(query_hdr(&e->s, q, "X-Qtdb-Rows", v, sizeof(v)));
    CHECK_EQ(strtoll(v, NULL, 10), 3); /* local days: 08:00 to 08:00 two days later */
    /* late data in the second day: only that shard is recomputed */
    char late[128];
    int n = snprintf(late, sizeof(late), "air,st=a9 pm25=3.0 %lld\n", R_T0 + R_DAY + 7 * MIN_NS);
    CHECK_EQ(
        srv_http(&e->s, "POST", "/write", "text/plain", late, (size_t)n, body, sizeof(body), NULL),
        204);
    CHECK_EQ(srv_http(&e->s, "POST", "/api/v1/rollup", NULL, NULL, 0, body, sizeof(body), NULL),
             200);
    CHECK_EQ(jnum(body, "shards"), 1);
    CHECK_EQ(jnum(body, "shards_current"), 1);
    CHECK_EQ(rollup_count(&e->s), (int64_t)R_STATIONS * R_SLOTS + 1);
}

TEST(rollup_over_http)
{
    static struct env e;
    snprintf(e.dir, sizeof(e.dir), "%s/rdata", qt_test_dir());
    snprintf(e.out, sizeof(e.out), "%s/cli.out", qt_test_dir());
    /* bad rules: refused at startup with the reason, non-zero exit */
    char bad_dir[700];
    snprintf(bad_dir, sizeof(bad_dir), "%s/rbad", qt_test_dir());
    const char *syntax[] = {"serve",  "--data",      bad_dir,     "--ilp",  "off",
                            "--http", "127.0.0.1:0", "--rollups", "air=1x", NULL};
    CHECK_EQ(cli(syntax, NULL, e.err, sizeof(e.err)), 2);
    CHECK(strstr(e.err, "rollups: unit must be s, m, h or d in 'air=1x'") != NULL);
    const char *divide[] = {"serve",  "--data",      bad_dir,     "--ilp",  "off",
                            "--http", "127.0.0.1:0", "--rollups", "air=7h", NULL};
    CHECK_EQ(cli(divide, NULL, e.err, sizeof(e.err)), 1);
    CHECK(strstr(e.err, "--rollups 'air=7h' refused") != NULL &&
          strstr(e.err, "does not divide the shard duration") != NULL);
    /* good rules: runs, then a restart keeps the records (ROLLUPS file) */
    const char *rules[] = {"--rollups", "air=1h", NULL};
    CHECK_OK(srv_start(&e.s, e.dir, false, rules));
    snprintf(e.url, sizeof(e.url), "http://127.0.0.1:%d", e.s.http_port);
    CHECK_OK(rollup_write(&e.s));
    rollup_runs(&e);
    CHECK_EQ(srv_stop(&e.s, SIGTERM), 0);
    CHECK_OK(srv_start(&e.s, e.dir, false, rules));
    snprintf(e.url, sizeof(e.url), "http://127.0.0.1:%d", e.s.http_port);
    static char body[4096];
    CHECK_EQ(srv_http(&e.s, "POST", "/api/v1/rollup", NULL, NULL, 0, body, sizeof(body), NULL),
             200);
    CHECK_EQ(jnum(body, "shards"), 0);
    CHECK_EQ(jnum(body, "shards_current"), 2);
    CHECK_EQ(rollup_count(&e.s), (int64_t)R_STATIONS * R_SLOTS + 1);
    CHECK_EQ(srv_stop(&e.s, SIGTERM), 0);
}

/* ---- retention on a live server ----------------------------------------------------------- */

#define RT_STATIONS 4
#define RT_SLOTS    288 /* every 5 min over one day */
#define RT_RECENT   10  /* air points in the last 10 minutes */

/* Day 1 (R_T0): air only, all past retention: the whole shard goes.
 * Day 2: air past retention and water without a rule: the shard stays,
 * its compaction trims the air points.  Recent air points stay. */
static int
retention_write(const struct srvproc *s, int64_t now)
{
    static char body[2 * RT_STATIONS * RT_SLOTS * 64];
    char resp[512];
    size_t n = 0;
    for (int day = 0; day < 2; day++)
        for (int slot = 0; slot < RT_SLOTS; slot++)
            for (int st = 0; st < RT_STATIONS; st++)
                n += (size_t)snprintf(body + n, sizeof(body) - n, "air,st=a%d pm25=%d.5 %lld\n", st,
                                      slot, R_T0 + day * R_DAY + slot * 5 * MIN_NS);
    for (int h = 0; h < 24; h++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "water,site=w1 flow=%d.0 %lld\n", h,
                              R_T0 + R_DAY + h * 60 * MIN_NS);
    for (int k = 1; k <= RT_RECENT; k++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "air,st=a0 pm25=%d.0 %lld\n", k,
                              (long long)(now - k * MIN_NS));
    return srv_http(s, "POST", "/write", "text/plain", body, n, resp, sizeof(resp), NULL) == 204
               ? 0
               : -1;
}

/* The points a query read (X-Qtdb-Points), or -1. */
static int64_t
query_points(const struct srvproc *s, const char *q)
{
    char v[32];
    return query_hdr(s, q, "X-Qtdb-Points", v, sizeof(v)) == 0 ? strtoll(v, NULL, 10) : -1;
}

static void
retention_checks(struct env *e, int64_t now)
{
    static char body[1 << 16];
    char old[128], day2[128], recent[128];
    snprintf(old, sizeof(old), "air.pm25 [%llds, %llds)", (long long)(R_T0 / 1000000000ll),
             (long long)((R_T0 + 2 * R_DAY) / 1000000000ll));
    snprintf(day2, sizeof(day2), "water.flow [%llds, %llds) | count",
             (long long)((R_T0 + R_DAY) / 1000000000ll),
             (long long)((R_T0 + 2 * R_DAY) / 1000000000ll));
    snprintf(recent, sizeof(recent), "air.pm25{st=\"a0\"} [%llds, %llds) | count",
             (long long)(now / 1000000000ll - 3600), (long long)(now / 1000000000ll + 60));
    CHECK_EQ(srv_http(&e->s, "GET", "/api/v1/retention", NULL, NULL, 0, body, sizeof(body), NULL),
             200);
    CHECK(strcmp(body, "{\"retention\":\"air=1d\"}\n") == 0);
    CHECK_EQ(srv_http(&e->s, "POST", "/api/v1/retention", NULL, NULL, 0, body, sizeof(body), NULL),
             405);
    /* stored, not yet enforced (no background pass within the test) */
    CHECK_EQ(query_points(&e->s, old), 2 * RT_STATIONS * RT_SLOTS);
    /* compaction over the CLI applies the server's retention first */
    const char *comp[] = {"compact", "--server", e->url, "--all", "--force", NULL};
    CHECK_EQ(cli(comp, e->out, e->err, sizeof(e->err)), 0);
    size_t len = 0;
    char *txt = slurp(e->out, &len);
    CHECK(txt != NULL && strstr(txt, "retention: dropped 1 shard(s) (1152 points)") != NULL);
    CHECK(txt != NULL && strstr(txt, "(1152 past retention)") != NULL);
    free(txt);
    CHECK_EQ(query_points(&e->s, old), 0);
    CHECK_EQ(srv_query_value(&e->s, day2), 24);
    CHECK_EQ(srv_query_value(&e->s, recent), RT_RECENT);
    /* the first day's shard is gone, the second stays (water) */
    CHECK_EQ(srv_http(&e->s, "GET", "/api/v1/shards", NULL, NULL, 0, body, sizeof(body), NULL),
             200);
    char start[64];
    snprintf(start, sizeof(start), "\"start\":%lld,", (long long)R_T0);
    CHECK(strstr(body, start) == NULL);
    snprintf(start, sizeof(start), "\"start\":%lld,", (long long)(R_T0 + R_DAY));
    CHECK(strstr(body, start) != NULL);
    /* again over HTTP: nothing left past retention */
    CHECK_EQ(srv_http(&e->s, "POST", "/api/v1/compact?all=true", NULL, NULL, 0, body, sizeof(body),
                      NULL),
             200);
    CHECK_EQ(jnum(body, "shards_dropped"), 0);
    CHECK_EQ(jnum(body, "points_dropped"), 0);
    CHECK_EQ(jnum(body, "points_trimmed"), 0);
}

TEST(retention_over_http)
{
    static struct env e;
    snprintf(e.dir, sizeof(e.dir), "%s/tdata", qt_test_dir());
    snprintf(e.out, sizeof(e.out), "%s/cli.out", qt_test_dir());
    /* a bad spec: refused at startup with the reason, exit 2 */
    char bad_dir[700];
    snprintf(bad_dir, sizeof(bad_dir), "%s/tbad", qt_test_dir());
    const char *syntax[] = {"serve",  "--data",      bad_dir,       "--ilp",  "off",
                            "--http", "127.0.0.1:0", "--retention", "air=1x", NULL};
    CHECK_EQ(cli(syntax, NULL, e.err, sizeof(e.err)), 2);
    CHECK(strstr(e.err, "retention: unit must be ns, s, m, h, d or w in 'air=1x'") != NULL);
    const char *twice[] = {"serve",  "--data",      bad_dir,       "--ilp",         "off",
                           "--http", "127.0.0.1:0", "--retention", "air=1d,air=2d", NULL};
    CHECK_EQ(cli(twice, NULL, e.err, sizeof(e.err)), 2);
    CHECK(strstr(e.err, "retention: the same measurement twice in 'air=1d,air=2d'") != NULL);
    /* write, then restart so every point is in a segment (retention and
     * compaction act on segments, not on the memtable) */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
    const char *rules[] = {"--retention", "air=1d", NULL};
    CHECK_OK(srv_start(&e.s, e.dir, false, rules));
    CHECK_OK(retention_write(&e.s, now));
    CHECK_EQ(srv_stop(&e.s, SIGTERM), 0);
    CHECK_OK(srv_start(&e.s, e.dir, false, rules));
    snprintf(e.url, sizeof(e.url), "http://127.0.0.1:%d", e.s.http_port);
    size_t len = 0;
    char *log = slurp(e.s.log, &len);
    CHECK(log != NULL && strstr(log, "serve: retention air=1d (1 rule(s)") != NULL);
    free(log);
    retention_checks(&e, now);
    CHECK_EQ(srv_stop(&e.s, SIGTERM), 0);
    /* a server without rules answers "" and drops nothing */
    CHECK_OK(srv_start(&e.s, e.dir, false, NULL));
    static char body[4096];
    CHECK_EQ(srv_http(&e.s, "GET", "/api/v1/retention", NULL, NULL, 0, body, sizeof(body), NULL),
             200);
    CHECK(strcmp(body, "{\"retention\":\"\"}\n") == 0);
    CHECK_EQ(
        srv_http(&e.s, "POST", "/api/v1/compact?all=true", NULL, NULL, 0, body, sizeof(body), NULL),
        200);
    CHECK_EQ(jnum(body, "shards_dropped"), 0);
    CHECK_EQ(srv_stop(&e.s, SIGTERM), 0);
}
