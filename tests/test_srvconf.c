/*
 * test_srvconf.c -- `qtdb serve` settings: defaults, every value kind and
 * its bounds, INI files (sections, errors with line numbers, templates),
 * flag syntax and precedence (file < flags), listen addresses, and the
 * size / duration parsers on hostile text.
 */
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "harness.h"
#include "server/srvconf.h"
#include "storage/retention.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char err[512];

static int
set(struct qt_srv_config *c, const char *k, const char *v)
{
    err[0] = '\0';
    return qt_srv_config_set(c, k, v, err, sizeof(err));
}

static const char *
write_file(const char *name, const char *text)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/%s", qt_test_dir(), name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

TEST(defaults)
{
    struct qt_srv_config c;
    qt_srv_config_init(&c);
    CHECK(strcmp(c.data_dir, "./data") == 0);
    CHECK(c.ilp.enabled && c.http.enabled && !c.graphite.enabled);
    CHECK_EQ(((struct sockaddr_in *)&c.ilp.ss)->sin_port, htons(8089));
    CHECK_EQ(((struct sockaddr_in *)&c.http.ss)->sin_port, htons(8086));
    CHECK_EQ(c.fsync, QT_FSYNC_ALWAYS);
    CHECK_EQ(c.io, QT_IO_AUTO);
    CHECK_EQ(c.line_max, QT_LINE_MAX);
    CHECK_EQ(c.conn_max, QT_SRV_CONN_MAX_DEFAULT);
    CHECK_EQ(c.idle_timeout_ms, QT_SRV_IDLE_TIMEOUT_DEFAULT_MS);
    CHECK_EQ(c.body_max_bytes, QT_SRV_BODY_MAX_DEFAULT);
    CHECK_EQ(c.query_deadline_ms, QT_SRV_QUERY_DEADLINE_DEFAULT_MS);
    CHECK(c.graphite_cfg == NULL);
    CHECK(c.rollups == NULL);   /* no rollups unless asked for */
    CHECK(c.retention == NULL); /* points kept forever unless asked for */
    qt_srv_config_deinit(&c);
}

TEST(values_and_bounds)
{
    struct qt_srv_config c;
    qt_srv_config_init(&c);
    CHECK_OK(set(&c, "idle-timeout", "90s"));
    CHECK_EQ(c.idle_timeout_ms, 90000);
    CHECK_OK(set(&c, "idle-timeout", "2"));
    CHECK_EQ(c.idle_timeout_ms, 2000); /* bare number: seconds */
    CHECK_OK(set(&c, "query-deadline", "250"));
    CHECK_EQ(c.query_deadline_ms, 250); /* bare number: ms */
    CHECK_OK(set(&c, "slow-timeout", "1m"));
    CHECK_EQ(c.slow_timeout_ms, 60000);
    CHECK_RC(set(&c, "idle-timeout", "5x"), QT_EINVAL);
    CHECK(strstr(err, "idle-timeout") != NULL);
    CHECK_RC(set(&c, "idle-timeout", "50ms"), QT_EINVAL); /* below 100 ms */
    CHECK(strstr(err, "out of range") != NULL);
    CHECK_OK(set(&c, "mem-budget", "64M"));
    CHECK_EQ(c.mem_budget_bytes, 64ull << 20);
    CHECK_OK(set(&c, "body-max", "1GiB"));
    CHECK_EQ(c.body_max_bytes, 1ull << 30);
    CHECK_RC(set(&c, "body-max", "2G"), QT_EINVAL);
    CHECK_OK(set(&c, "line-max", "1K"));
    CHECK_EQ(c.line_max, 1024);
    CHECK_RC(set(&c, "line-max", "65537"), QT_EINVAL);
    CHECK_OK(set(&c, "threads", "3"));
    CHECK_EQ(c.threads, 3);
    CHECK_RC(set(&c, "threads", "-1"), QT_EINVAL);
    CHECK_RC(set(&c, "threads", "99999999999999999999999"), QT_EINVAL);
    CHECK_OK(set(&c, "fsync", "interval:250"));
    CHECK(c.fsync == QT_FSYNC_INTERVAL && c.fsync_interval_ms == 250);
    CHECK_RC(set(&c, "fsync", "sometimes"), QT_EINVAL);
    CHECK_OK(set(&c, "io", "posix"));
    CHECK_EQ(c.io, QT_IO_POSIX);
    CHECK_RC(set(&c, "io", "fault"), QT_EINVAL);
    CHECK_OK(set(&c, "log-level", "warn"));
    CHECK_EQ(c.log_level, QT_LOG_WARN);
    CHECK_RC(set(&c, "nonsense", "1"), QT_EINVAL);
    CHECK(strstr(err, "unknown setting") != NULL);
    CHECK_OK(set(&c, "graphite-template", "sensors.* .district.measurement.field"));
    CHECK(c.graphite_cfg != NULL && c.graphite_cfg->templates_count == 1);
    CHECK_RC(set(&c, "graphite-template", "x.field*.y"), QT_EINVAL);
    qt_srv_config_deinit(&c);
}

TEST(addresses)
{
    struct qt_srv_addr a;
    char e[256];
    CHECK_OK(qt_srv_addr_parse("127.0.0.1:0", &a, e, sizeof(e)));
    CHECK(a.enabled && a.ss.ss_family == AF_INET);
    CHECK_OK(qt_srv_addr_parse("[::1]:8086", &a, e, sizeof(e)));
    CHECK(a.enabled && a.ss.ss_family == AF_INET6);
    CHECK_EQ(((struct sockaddr_in6 *)&a.ss)->sin6_port, htons(8086));
    CHECK_OK(qt_srv_addr_parse(":9000", &a, e, sizeof(e)));
    CHECK(a.enabled);
    CHECK_OK(qt_srv_addr_parse("off", &a, e, sizeof(e)));
    CHECK(!a.enabled);
    const char *bad[] = {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "::1:80",
                         "[::1]80",   "host:port",  "1.2.3.4:-1",      "[]:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_RC(qt_srv_addr_parse(bad[i], &a, e, sizeof(e)), QT_EINVAL);
    char out[64];
    CHECK_OK(qt_srv_addr_parse("127.0.0.1:1234", &a, e, sizeof(e)));
    qt_srv_addr_format((struct sockaddr *)&a.ss, out, sizeof(out));
    CHECK(strcmp(out, "127.0.0.1:1234") == 0);
    CHECK_OK(qt_srv_addr_parse("[::1]:5", &a, e, sizeof(e)));
    qt_srv_addr_format((struct sockaddr *)&a.ss, out, sizeof(out));
    CHECK(strcmp(out, "[::1]:5") == 0);
}

TEST(parsers_hostile)
{
    uint64_t v;
    CHECK_OK(qt_srv_parse_bytes("0", &v));
    CHECK_EQ(v, 0);
    CHECK_OK(qt_srv_parse_bytes("16T", &v));
    CHECK_EQ(v, 16ull << 40);
    CHECK_RC(qt_srv_parse_bytes("18446744073709551615K", &v), QT_ELIMIT);
    CHECK_RC(qt_srv_parse_bytes("99999999999999999999999", &v), QT_ELIMIT);
    CHECK_RC(qt_srv_parse_bytes("999999999999999999999999999999", &v), QT_EINVAL);
    CHECK_RC(qt_srv_parse_bytes("", &v), QT_EINVAL);
    CHECK_RC(qt_srv_parse_bytes("K", &v), QT_EINVAL);
    CHECK_RC(qt_srv_parse_bytes("1 K", &v), QT_EINVAL);
    CHECK_RC(qt_srv_parse_bytes("1.5M", &v), QT_EINVAL);
    CHECK_RC(qt_srv_parse_duration_ms("5 s", 1, &v), QT_EINVAL);
    CHECK_RC(qt_srv_parse_duration_ms("-5s", 1, &v), QT_EINVAL);
    CHECK_RC(qt_srv_parse_duration_ms("18446744073709551615h", 1, &v), QT_ELIMIT);
    CHECK_OK(qt_srv_parse_duration_ms("2h", 1, &v));
    CHECK_EQ(v, 7200000);
    CHECK_RC(qt_srv_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), QT_ELIMIT);
    CHECK_OK(qt_srv_parse_u64("18446744073709551615", 0, UINT64_MAX, &v));
    CHECK(v == UINT64_MAX);
    CHECK_RC(qt_srv_parse_u64("5", 6, 9, &v), QT_ELIMIT);
}

TEST(ini_file)
{
    struct qt_srv_config c;
    qt_srv_config_init(&c);
    const char *p = write_file("a.ini", "; comment\n"
                                        "data = /var/lib/qtdb\n"
                                        "ilp = 127.0.0.1:0\n"
                                        "[serve]\n"
                                        "idle-timeout = 10s\n"
                                        "graphite-template = a.b.c measurement.field.x\n"
                                        "graphite-template = x.* .measurement*\n");
    CHECK(p != NULL);
    CHECK_OK(qt_srv_config_load(&c, p, err, sizeof(err)));
    CHECK(strcmp(c.data_dir, "/var/lib/qtdb") == 0);
    CHECK_EQ(c.idle_timeout_ms, 10000);
    CHECK(c.graphite_cfg != NULL && c.graphite_cfg->templates_count == 2);
    p = write_file("b.ini", "data = x\n\nidle-timeout = soon\n");
    CHECK_RC(qt_srv_config_load(&c, p, err, sizeof(err)), QT_EINVAL);
    CHECK(strstr(err, "b.ini:3:") != NULL && strstr(err, "idle-timeout") != NULL);
    p = write_file("c.ini", "[other]\nthreads = 1\n");
    CHECK_RC(qt_srv_config_load(&c, p, err, sizeof(err)), QT_EINVAL);
    CHECK(strstr(err, "c.ini:2:") != NULL && strstr(err, "section") != NULL);
    p = write_file("d.ini", "config = e.ini\n");
    CHECK_RC(qt_srv_config_load(&c, p, err, sizeof(err)), QT_EINVAL);
    p = write_file("e.ini", "this line has no equals sign\n");
    CHECK_RC(qt_srv_config_load(&c, p, err, sizeof(err)), QT_EINVAL);
    CHECK(strstr(err, "e.ini:1:") != NULL);
    CHECK(qt_srv_config_load(&c, "/nonexistent/qtdb.ini", err, sizeof(err)) < 0);
    qt_srv_config_deinit(&c);
}

/* rollups: checked with the storage parser when set, kept as text, the
 * last one wins, "" clears; a bad spec leaves the previous rules. */
TEST(rollups_key)
{
    struct qt_srv_config c;
    qt_srv_config_init(&c);
    CHECK_OK(set(&c, "rollups", "air=1m,1h;grid*=1h"));
    CHECK(c.rollups != NULL && strcmp(c.rollups, "air=1m,1h;grid*=1h") == 0);
    static const char *const bad[] = {"air",    "air=",      "air=1x",    "air=0h",
                                      "a*r=1h", "air:1h=1d", "air=1h,1m", "air=1h;air=1d",
                                      "=1h",    "air=-1h",   "air=01h",   "air=1h,2h,3h,4h,5h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_RC(set(&c, "rollups", bad[i]), QT_EINVAL);
        CHECK(strncmp(err, "rollups: ", 9) == 0 && strstr(err, bad[i]) != NULL);
        CHECK(strcmp(c.rollups, "air=1m,1h;grid*=1h") == 0);
    }
    CHECK_OK(set(&c, "rollups", "water=1d"));
    CHECK(strcmp(c.rollups, "water=1d") == 0);
    CHECK_OK(set(&c, "rollups", ""));
    CHECK(c.rollups == NULL);
    const char *p = write_file("r.ini", "[serve]\nrollups = air=1h;grid*=1m,1h\n");
    CHECK(p != NULL);
    CHECK_OK(qt_srv_config_load(&c, p, err, sizeof(err)));
    CHECK(c.rollups != NULL && strcmp(c.rollups, "air=1h;grid*=1m,1h") == 0);
    char *argv[] = {"serve", "--rollups=air=1d", NULL};
    CHECK_OK(qt_srv_config_args(&c, 2, argv, err, sizeof(err)));
    CHECK(strcmp(c.rollups, "air=1d") == 0);
    p = write_file("s.ini", "threads = 1\nrollups = air=1h;;air=2x\n");
    CHECK_RC(qt_srv_config_load(&c, p, err, sizeof(err)), QT_EINVAL);
    CHECK(strstr(err, "s.ini:2:") != NULL && strstr(err, "rollups") != NULL);
    qt_srv_config_deinit(&c);
    CHECK(c.rollups == NULL);
}

/* retention: checked when set with the storage parser plus what the
 * database would refuse at open (a rule twice), kept as text, the last
 * one wins, "" clears; a bad spec leaves the previous rules.  The server
 * parses the text again into rules for qt_db_opts.retention. */
TEST(retention_key)
{
    struct qt_srv_config c;
    qt_srv_config_init(&c);
    CHECK_OK(set(&c, "retention", "air=90d,air:1h=3650d"));
    CHECK(c.retention != NULL && strcmp(c.retention, "air=90d,air:1h=3650d") == 0);
    static const char *const bad[] = {"air",
                                      "air=",
                                      "=1d",
                                      "air=1x",
                                      "air=0d",
                                      "air=-1d",
                                      "air=d",
                                      "air=1d,b",
                                      "air=1y",
                                      "air=1d,air=2d",
                                      "w*=1d,w*=2d",
                                      "*=1d,*=2d",
                                      "air=99999999999999w"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_RC(set(&c, "retention", bad[i]), QT_EINVAL);
        CHECK(strncmp(err, "retention: ", 11) == 0 && strstr(err, bad[i]) != NULL);
        CHECK(strcmp(c.retention, "air=90d,air:1h=3650d") == 0);
    }
    CHECK(strstr((set(&c, "retention", "air=1d,air=2d"), err), "the same measurement twice"));
    CHECK(strstr((set(&c, "retention", "air=1q"), err), "unit must be"));
    /* an exact rule and a prefix rule of the same name are different rules */
    CHECK_OK(set(&c, "retention", "water=7d,water*=30d,*=400d,x=5ns"));
    CHECK(strcmp(c.retention, "water=7d,water*=30d,*=400d,x=5ns") == 0);
    struct qt_srv_retention r;
    CHECK_OK(qt_srv_retention_parse(c.retention, &r));
    CHECK_EQ(r.n, 4);
    CHECK(strcmp(r.rules[0].measurement, "water") == 0 && !r.rules[0].prefix);
    CHECK_EQ(r.rules[0].duration_ns, 7 * 86400000000000ll);
    CHECK(strcmp(r.rules[1].measurement, "water") == 0 && r.rules[1].prefix);
    CHECK(strcmp(r.rules[2].measurement, "") == 0 && r.rules[2].prefix);
    CHECK_EQ(r.rules[3].duration_ns, 5);
    qt_srv_retention_free(&r);
    CHECK(r.rules == NULL && r.buf == NULL && r.n == 0);
    CHECK_OK(set(&c, "retention", ""));
    CHECK(c.retention == NULL);
    CHECK_OK(set(&c, "retention", ","));
    CHECK(c.retention == NULL);
    const char *p = write_file("ret.ini", "[serve]\nretention = air=30d,water*=7d\n");
    CHECK(p != NULL);
    CHECK_OK(qt_srv_config_load(&c, p, err, sizeof(err)));
    CHECK(c.retention != NULL && strcmp(c.retention, "air=30d,water*=7d") == 0);
    char *argv[] = {"serve", "--retention=air=1d", NULL};
    CHECK_OK(qt_srv_config_args(&c, 2, argv, err, sizeof(err)));
    CHECK(strcmp(c.retention, "air=1d") == 0);
    char *argv2[] = {"serve", "--retention", "air=1d,air=1d", NULL};
    CHECK_RC(qt_srv_config_args(&c, 3, argv2, err, sizeof(err)), QT_EINVAL);
    CHECK(strcmp(c.retention, "air=1d") == 0);
    p = write_file("ret2.ini", "threads = 1\nretention = air=1d,,air=2x\n");
    CHECK_RC(qt_srv_config_load(&c, p, err, sizeof(err)), QT_EINVAL);
    CHECK(strstr(err, "ret2.ini:2:") != NULL && strstr(err, "retention") != NULL);
    qt_srv_config_deinit(&c);
    CHECK(c.retention == NULL);
}

TEST(args_precedence)
{
    struct qt_srv_config c;
    qt_srv_config_init(&c);
    const char *p = write_file("f.ini", "threads = 7\nline-max = 2K\n");
    char cfgflag[4200];
    snprintf(cfgflag, sizeof(cfgflag), "--config=%s", p);
    /* the flag before --config still wins: the file is applied first */
    char *argv[] = {"serve", "--threads", "2", cfgflag, "--data=/tmp/x", NULL};
    CHECK_OK(qt_srv_config_args(&c, 5, argv, err, sizeof(err)));
    CHECK_EQ(c.threads, 2);
    CHECK_EQ(c.line_max, 2048);
    CHECK(strcmp(c.data_dir, "/tmp/x") == 0);
    char *help[] = {"serve", "--threads", "1", "--help", NULL};
    CHECK_EQ(qt_srv_config_args(&c, 4, help, err, sizeof(err)), QT_SRV_ARGS_HELP);
    char *missing[] = {"serve", "--threads", NULL};
    CHECK_RC(qt_srv_config_args(&c, 2, missing, err, sizeof(err)), QT_EINVAL);
    CHECK(strstr(err, "needs a value") != NULL);
    char *stray[] = {"serve", "extra", NULL};
    CHECK_RC(qt_srv_config_args(&c, 2, stray, err, sizeof(err)), QT_EINVAL);
    char *unknown[] = {"serve", "--bogus", "1", NULL};
    CHECK_RC(qt_srv_config_args(&c, 3, unknown, err, sizeof(err)), QT_EINVAL);
    char *empty[] = {"serve", "--", "1", NULL};
    CHECK_RC(qt_srv_config_args(&c, 3, empty, err, sizeof(err)), QT_EINVAL);
    qt_srv_config_deinit(&c);
}

TEST(usage_lists_every_flag)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    qt_srv_config_usage(f);
    fclose(f);
    const char *keys[] = {
        "--data",         "--ilp",      "--http",       "--graphite",        "--fsync",
        "--io",           "--threads",  "--mem-budget", "--max-connections", "--idle-timeout",
        "--slow-timeout", "--line-max", "--body-max",   "--query-deadline",  "--config",
        "--rollups",      "--retention"};
    bool ok = true;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        ok = ok && strstr(buf, keys[i]) != NULL;
    bool has_default = strstr(buf, "(default 127.0.0.1:8089)") != NULL;
    free(buf);
    CHECK(ok);
    CHECK(has_default);
}
