/*
 * test_graphite.c -- Graphite plaintext: default path mapping (collectd
 * paths included), tagged series, timestamps (float, -1, missing), NaN and
 * infinity, templates (filters, parts, default tags), limits, batches, and
 * the guarantee that every parsed point formats as line protocol and parses
 * back unchanged.
 */
#include "format/qt_bytes.h"
#include "harness.h"
#include "server/graphite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct qt_ilp_point pt, pt2;
static char scratch[QT_ILP_SCRATCH_MAX], scratch2[QT_ILP_SCRATCH_MAX];
static char fmt[4 * QT_LINE_MAX];
static struct qt_graphite_config cfg;
static const struct qt_ilp_opts now = {QT_ILP_S, 1700000000987654321LL};
#define NOW_S 1700000000000000000LL

static int
gparse_cfg(const struct qt_graphite_config *c, const char *s)
{
    return qt_graphite_parse_line(c, &now, (const uint8_t *)s, strlen(s), scratch, sizeof(scratch),
                                  &pt);
}

static int
gparse(const char *s)
{
    return gparse_cfg(NULL, s);
}

static bool
reason_has(const char *s)
{
    return strstr(qt_err_detail(), s) != NULL;
}

/* The canonical line-protocol form of pt, NUL-terminated, after checking
 * that it parses back to the same point. */
static const char *
as_ilp(void)
{
    static const struct qt_ilp_opts ns = {QT_ILP_NS, 0};
    size_t n;
    if (qt_ilp_format_line(&pt, fmt, sizeof(fmt) - 1, &n) != 0)
        return "<format failed>";
    if (qt_ilp_parse_line(&ns, (const uint8_t *)fmt, n, scratch2, sizeof(scratch2), &pt2) != 0)
        return "<reparse failed>";
    if (pt2.tags_count != pt.tags_count || pt2.key_len != pt.key_len ||
        qt_f64_bits(pt2.fields[0].v.f) != qt_f64_bits(pt.fields[0].v.f) ||
        pt2.timestamp_ns != pt.timestamp_ns)
        return "<reparse differs>";
    fmt[n] = '\0';
    return fmt;
}

#define CHECK_ILP(want)                                                                            \
    do {                                                                                           \
        const char *got_ = as_ilp();                                                               \
        if (strcmp(got_, want) != 0) {                                                             \
            qt_test_fail_at(__FILE__, __LINE__, "got '%s' want '%s'", got_, want);                 \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_REJECT(line, code, why)                                                              \
    do {                                                                                           \
        CHECK_RC(gparse(line), code);                                                              \
        if (!reason_has(why)) {                                                                    \
            qt_test_fail_at(__FILE__, __LINE__, "%s: reason '%s' lacks '%s'", line,                \
                            qt_err_detail(), why);                                                 \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static int
add(const char *spec)
{
    return qt_graphite_config_add(&cfg, spec, strlen(spec));
}

TEST(default_mapping)
{
    CHECK_OK(gparse("foo.bar.baz 42 1700000000"));
    CHECK_ILP("foo,p1=bar baz=42 1700000000000000000");
    CHECK(pt.has_timestamp && pt.fields_count == 1 && pt.fields[0].type == QT_ILP_FLOAT);
    CHECK_OK(gparse("servers.web01.cpu.load.shortterm 0.75 1700000000"));
    CHECK_ILP("servers,p1=web01,p2=cpu,p3=load shortterm=0.75 1700000000000000000");
    CHECK_OK(gparse("uptime 12 1700000000"));
    CHECK_ILP("uptime value=12 1700000000000000000");
    CHECK_OK(gparse("a.b 1 1700000000"));
    CHECK_ILP("a b=1 1700000000000000000");
    /* Zero-copy: names point into the line. */
    const char *line = "x.y.z 1 2";
    CHECK_OK(qt_graphite_parse_line(NULL, &now, (const uint8_t *)line, strlen(line), scratch,
                                    sizeof(scratch), &pt));
    CHECK(pt.measurement.ptr == line && pt.tags[0].value.ptr == line + 2);
}

TEST(collectd_write_graphite_paths)
{
    /* collectd's write_graphite: <prefix><host>.<plugin>[-inst].<type>[-inst][.<ds>] value
     * time\r\n, dots in names replaced by '_'. */
    CHECK_OK(gparse("collectd.host_name.cpu-0.cpu-idle 98.5 1700000000\r"));
    CHECK_ILP("collectd,p1=host_name,p2=cpu-0 cpu-idle=98.5 1700000000000000000");
    CHECK_OK(gparse("collectd.web_example_com.interface-eth0.if_octets.rx 1234 1700000000\r"));
    CHECK_ILP("collectd,p1=web_example_com,p2=interface-eth0,p3=if_octets rx=1234 "
              "1700000000000000000");
    CHECK_OK(gparse("collectd.host.load.load.shortterm 0.050000 1700000000"));
    CHECK(pt.fields[0].v.f == 0.05);
    /* collectd prints an unknown gauge as "nan": dropped, like carbon. */
    CHECK_RC(gparse("collectd.host.memory.memory-used nan 1700000000\r"), QT_ILP_SKIP);
    CHECK_RC(gparse("collectd.host.memory.memory-used -nan 1700000000"), QT_ILP_SKIP);
    /* With a template the same path becomes a natural series. */
    qt_graphite_config_init(&cfg);
    CHECK_OK(add("collectd.* .host.measurement.field*"));
    CHECK_OK(gparse_cfg(&cfg, "collectd.host_name.cpu-0.cpu-idle 98.5 1700000000\r"));
    CHECK_ILP("cpu-0,host=host_name cpu-idle=98.5 1700000000000000000");
    CHECK_OK(gparse_cfg(&cfg, "collectd.h.interface-eth0.if_octets.rx 1 1700000000"));
    CHECK_ILP("interface-eth0,host=h if_octets.rx=1 1700000000000000000");
}

TEST(timestamps)
{
    CHECK_OK(gparse("a.b 1"));
    CHECK(!pt.has_timestamp && pt.timestamp_ns == NOW_S);
    CHECK_OK(gparse("a.b 1 -1"));
    CHECK(!pt.has_timestamp && pt.timestamp_ns == NOW_S);
    CHECK_OK(gparse("a.b 1 -1.5"));
    CHECK(!pt.has_timestamp && pt.timestamp_ns == NOW_S);
    CHECK_OK(gparse("a.b 1 1700000000.5"));
    CHECK(pt.has_timestamp && pt.timestamp_ns == 1700000000500000000LL);
    CHECK_OK(gparse("a.b 1 1700000000.1234567899"));
    CHECK(pt.timestamp_ns == 1700000000123456789LL);
    CHECK_OK(gparse("a.b 1 +5."));
    CHECK(pt.timestamp_ns == 5000000000LL);
    CHECK_OK(gparse("a.b 1 .25"));
    CHECK(pt.timestamp_ns == 250000000LL);
    CHECK_OK(gparse("a.b 1 -0.5"));
    CHECK(pt.timestamp_ns == -500000000LL);
    CHECK_OK(gparse("a.b 1 -2"));
    CHECK(pt.timestamp_ns == -2000000000LL);
    CHECK_OK(gparse("a.b 1 9223372036"));
    CHECK_REJECT("a.b 1 9223372037", QT_ESYNTAX, "graphite: timestamp out of range");
    CHECK_REJECT("a.b 1 -9223372037", QT_ESYNTAX, "timestamp out of range");
    CHECK_REJECT("a.b 1 99999999999999999999999", QT_ESYNTAX, "timestamp out of range");
    const char *bad[] = {"a.b 1 abc", "a.b 1 1.7e9", "a.b 1 1.2.3", "a.b 1 .",
                         "a.b 1 -",   "a.b 1 0x10",  "a.b 1 12s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_REJECT(bad[i], QT_ESYNTAX, "graphite: invalid timestamp");
}

TEST(values)
{
    struct {
        const char *text;
        double want;
    } ok[] = {{"42", 42},     {"-1.5", -1.5},
              {"+2.5", 2.5},  {".5", 0.5},
              {"5.", 5},      {"1e3", 1e3},
              {"1E-2", 1e-2}, {"0.1", 0.1},
              {"-0", -0.0},   {"12345678901234567890123", 12345678901234567890123.0}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char line[128];
        snprintf(line, sizeof(line), "a.b %s 1", ok[i].text);
        CHECK_OK(gparse(line));
        CHECK(qt_f64_bits(pt.fields[0].v.f) == qt_f64_bits(ok[i].want));
    }
    const char *nans[] = {"nan", "NaN", "NAN", "-nan", "+nan"};
    for (size_t i = 0; i < 5; i++) {
        char line[64];
        snprintf(line, sizeof(line), "a.b %s 1", nans[i]);
        CHECK_RC(gparse(line), QT_ILP_SKIP);
    }
    const char *infs[] = {"inf", "-inf", "+Inf", "Infinity", "-INFINITY"};
    for (size_t i = 0; i < 5; i++) {
        char line[64];
        snprintf(line, sizeof(line), "a.b %s 1", infs[i]);
        CHECK_REJECT(line, QT_ESYNTAX, "graphite: value is infinite");
    }
    CHECK_REJECT("a.b 1e400 1", QT_ESYNTAX, "graphite: value out of range");
    const char *bad[] = {"a.b abc 1", "a.b 1,5 1",  "a.b 1i 1", "a.b 0x1 1",
                         "a.b - 1",   "a.b nanx 1", "a.b 1e 1", "a.b true 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_REJECT(bad[i], QT_ESYNTAX, "graphite: invalid value");
    CHECK_REJECT("a.b", QT_ESYNTAX, "graphite: missing value");
    CHECK_REJECT("a.b   ", QT_ESYNTAX, "graphite: missing value");
}

TEST(whitespace_comments_crlf)
{
    const char *same[] = {"a.b.c 1 1700000000", "a.b.c\t1\t1700000000",
                          "  a.b.c   1    1700000000  ", "a.b.c 1 1700000000\r",
                          "\ta.b.c 1 1700000000 \t\r"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        CHECK_OK(gparse(same[i]));
        CHECK_ILP("a,p1=b c=1 1700000000000000000");
    }
    const char *skips[] = {"", "   ", "\r", "\t\r", "# comment", "  #x 1 2"};
    for (size_t i = 0; i < sizeof(skips) / sizeof(skips[0]); i++)
        CHECK_RC(gparse(skips[i]), QT_ILP_SKIP);
    CHECK_REJECT("a.b 1 2 3", QT_ESYNTAX, "graphite: unexpected text after timestamp");
    CHECK_REJECT("a.b 1 2\r\r", QT_ESYNTAX, "graphite: invalid timestamp");
}

TEST(path_errors)
{
    CHECK_REJECT("a..b 1 2", QT_ESYNTAX, "graphite: empty path component");
    CHECK_REJECT(".a 1 2", QT_ESYNTAX, "graphite: empty path component");
    CHECK_REJECT("a. 1 2", QT_ESYNTAX, "graphite: empty path component");
    CHECK_REJECT("a.b\x01 1 2", QT_ESYNTAX, "graphite: control character in path");
    CHECK_REJECT("a.\xc3 1 2", QT_ESYNTAX, "graphite: invalid UTF-8 in path");
    CHECK_REJECT("a.\xed\xa0\x80 1 2", QT_ESYNTAX, "graphite: invalid UTF-8 in path");
    /* A name ending in a backslash cannot be written as line protocol. */
    CHECK_REJECT("a\\.b 1 2", QT_ESYNTAX, "graphite: measurement ends with a backslash");
    CHECK_REJECT("a.b\\.c 1 2", QT_ESYNTAX, "graphite: tag 'p1' ends with a backslash");
    CHECK_REJECT("a.b.c\\ 1 2", QT_ESYNTAX, "graphite: field key 'c\\x5c' ends with a backslash");
    /* Names needing escapes in line protocol are fine. */
    CHECK_OK(gparse("my,meas.p=x.f=1 7 1"));
    CHECK_ILP("my\\,meas,p1=p\\=x f\\=1=7 1000000000");
    CHECK_OK(gparse("\xe7\xa9\xba\xe6\xb0\x94.\xe8\xa5\xbf\xe6\xb9\x96.pm25 35 1"));
    CHECK_ILP("\xe7\xa9\xba\xe6\xb0\x94,p1=\xe8\xa5\xbf\xe6\xb9\x96 pm25=35 1000000000");
}

TEST(tagged_series)
{
    CHECK_OK(gparse("disk.used;rack=a1;datacenter=dc1;server=web01 9 1700000000"));
    CHECK_ILP("disk,datacenter=dc1,rack=a1,server=web01 used=9 1700000000000000000");
    CHECK_OK(gparse("cpu;host=a.b.c;v=x=y;k=,z 1 1"));
    CHECK_ILP("cpu,host=a.b.c,k=\\,z,v=x\\=y value=1 1000000000");
    CHECK_OK(gparse("a.b.c;p2=x 1 1")); /* p1 from the path, p2 from the line */
    CHECK_ILP("a,p1=b,p2=x c=1 1000000000");
    CHECK_REJECT("a.b.c;p1=x 1 1", QT_ESYNTAX, "graphite: duplicate tag key 'p1'");
    CHECK_REJECT("a;k=v;k=w 1 1", QT_ESYNTAX, "graphite: duplicate tag key 'k'");
    CHECK_REJECT("a;k= 1 1", QT_ESYNTAX, "graphite: empty tag value");
    CHECK_REJECT("a;k 1 1", QT_ESYNTAX, "graphite: tag is not key=value");
    CHECK_REJECT("a;=v 1 1", QT_ESYNTAX, "graphite: tag is not key=value");
    CHECK_REJECT("a; 1 1", QT_ESYNTAX, "graphite: tag is not key=value");
    CHECK_REJECT("a;k=v; 1 1", QT_ESYNTAX, "graphite: tag is not key=value");
    CHECK_REJECT("a;k=v\x7f 1 1", QT_ESYNTAX, "graphite: control character in tag");
    CHECK_REJECT("a;k=\xff 1 1", QT_ESYNTAX, "graphite: invalid UTF-8 in tag");
    CHECK_REJECT("a;k=v\\ 1 1", QT_ESYNTAX, "graphite: tag 'k' ends with a backslash");
}

TEST(limits)
{
    static char line[QT_LINE_MAX + 16];
    size_t w = 0;
    for (int i = 0; i < (int)QT_TAGS_MAX + 2; i++)
        w += (size_t)sprintf(line + w, "%sc%d", i ? "." : "", i);
    sprintf(line + w, " 1 1");
    CHECK_OK(gparse(line));
    CHECK_EQ(pt.tags_count, QT_TAGS_MAX);
    CHECK(strcmp(as_ilp(), "<format failed>") != 0);
    sprintf(line + w, ".c66 1 1");
    CHECK_REJECT(line, QT_ELIMIT, "graphite: more than 64 tags");
    sprintf(line, "a.b.c;t=1 1 1");
    CHECK_OK(gparse(line)); /* 1 path tag + 1 line tag */
    w = (size_t)sprintf(line, "a");
    for (int i = 0; i < (int)QT_TAGS_MAX; i++)
        w += (size_t)sprintf(line + w, ";t%d=v", i);
    sprintf(line + w, " 1 1");
    CHECK_OK(gparse(line));
    sprintf(line + w, ";x=y 1 1");
    CHECK_REJECT(line, QT_ELIMIT, "graphite: more than 64 tags");
    memset(line, 'x', sizeof(line));
    memcpy(line + QT_LINE_MAX - 4, " 1 1", 4);
    CHECK_RC(qt_graphite_parse_line(NULL, &now, (const uint8_t *)line, QT_LINE_MAX, scratch,
                                    sizeof(scratch), &pt),
             QT_ELIMIT);
    CHECK(reason_has("graphite: series key exceeds 4096 bytes"));
    memcpy(line + QT_LINE_MAX - 3, " 1 1", 4);
    CHECK_RC(qt_graphite_parse_line(NULL, &now, (const uint8_t *)line, QT_LINE_MAX + 1, scratch,
                                    sizeof(scratch), &pt),
             QT_ELIMIT);
    CHECK(reason_has("graphite: line exceeds 65536 bytes"));
}

TEST(template_config_errors)
{
    qt_graphite_config_init(&cfg);
    CHECK_RC(add(""), QT_EINVAL);
    CHECK_RC(add("   "), QT_EINVAL);
    CHECK_RC(add("a b c d"), QT_EINVAL);
    CHECK(reason_has("more than three words"));
    CHECK_RC(add("measurement*.field"), QT_EINVAL);
    CHECK(reason_has("must be the last part"));
    CHECK_RC(add("host*.measurement"), QT_EINVAL);
    CHECK_RC(add("a..b measurement"), QT_EINVAL);
    CHECK(reason_has("empty filter component"));
    CHECK_RC(add("measurement k"), QT_OK); /* two words: filter + pattern */
    CHECK_RC(add("measurement k="), QT_EINVAL);
    CHECK_RC(add("measurement =v"), QT_EINVAL);
    CHECK_RC(add("measurement a=b,,c=d"), QT_EINVAL);
    CHECK_RC(add("measurement.ho\\ t"), QT_EINVAL);
    CHECK_RC(add("measurement.host\\"), QT_EINVAL);
    CHECK_RC(add("measurement;x"), QT_EINVAL);
    CHECK_RC(add("measurement\tfield"), QT_EINVAL);
    CHECK_RC(add("measurement.\xff"), QT_EINVAL);
    char big[QT_GRAPHITE_TEMPLATE_MAX + 1];
    memset(big, 'a', sizeof(big));
    CHECK_RC(qt_graphite_config_add(&cfg, big, sizeof(big)), QT_EINVAL);
    CHECK_RC(qt_graphite_config_add(&cfg, big, QT_GRAPHITE_TEMPLATE_MAX - 1), QT_OK);
    memset(big, '.', sizeof(big));
    CHECK_RC(qt_graphite_config_add(&cfg, big, 200), QT_EINVAL); /* 201 parts */
    CHECK(reason_has("too many parts"));
    qt_graphite_config_init(&cfg);
    for (uint32_t i = 0; i < QT_GRAPHITE_TEMPLATES_MAX; i++)
        CHECK_OK(add("measurement.field"));
    CHECK_RC(add("measurement.field"), QT_ELIMIT);
}

TEST(templates)
{
    qt_graphite_config_init(&cfg);
    CHECK_OK(add("servers.* .host.measurement* region=us,dc=a"));
    CHECK_OK(add("stats.*.counters .measurement.measurement.field"));
    CHECK_OK(add("cpu* measurement.host.field"));
    CHECK_OK(add("env.*.*.* .region.host.region.field"));
    CHECK_OK(add("tail.* measurement.field*"));
    CHECK_OK(add(".nomeas.field"));
    CHECK_OK(gparse_cfg(&cfg, "servers.web01.cpu.load 0.5 1"));
    CHECK_ILP("cpu.load,dc=a,host=web01,region=us value=0.5 1000000000");
    CHECK_OK(gparse_cfg(&cfg, "servers.web01.cpu;region=eu 0.5 1")); /* line beats default */
    CHECK_ILP("cpu,dc=a,host=web01,region=eu value=0.5 1000000000");
    CHECK_OK(gparse_cfg(&cfg, "stats.app.counters.hits 3 1"));
    CHECK_ILP("app.counters hits=3 1000000000");
    CHECK_OK(gparse_cfg(&cfg, "cpu0.h1.idle.extra 3 1")); /* extra components ignored */
    CHECK_ILP("cpu0,host=h1 idle=3 1000000000");
    CHECK_OK(gparse_cfg(&cfg, "cpu0 3 1")); /* path shorter than the pattern */
    CHECK_ILP("cpu0 value=3 1000000000");
    CHECK_OK(gparse_cfg(&cfg, "env.cn.h9.zj.pm25 35 1")); /* repeated tag: joined */
    CHECK_ILP("env.cn.h9.zj.pm25,host=h9,region=cn.zj pm25=35 1000000000");
    CHECK_OK(gparse_cfg(&cfg, "tail.a.b.c 1 1"));
    CHECK_ILP("tail a.b.c=1 1000000000");
    CHECK_OK(gparse_cfg(&cfg, "other.x.y 1 1")); /* ".nomeas.field" has no filter */
    CHECK_ILP("other.x.y,nomeas=x y=1 1000000000");
    /* Non-consecutive measurement parts are joined in the scratch buffer. */
    qt_graphite_config_init(&cfg);
    CHECK_OK(add("measurement.host.measurement.field"));
    CHECK_OK(gparse_cfg(&cfg, "air.h1.quality.pm10 5 1"));
    CHECK_ILP("air.quality,host=h1 pm10=5 1000000000");
    CHECK(pt.measurement.ptr >= scratch && pt.measurement.ptr < scratch + sizeof(scratch));
    /* A template tag equal to a line tag is a duplicate. */
    CHECK_RC(gparse_cfg(&cfg, "air.h1.quality.pm10;host=x 5 1"), QT_ESYNTAX);
    /* First match in configuration order wins. */
    qt_graphite_config_init(&cfg);
    CHECK_OK(add("a.* measurement.first.field"));
    CHECK_OK(add("a.b measurement.second.field"));
    CHECK_OK(gparse_cfg(&cfg, "a.b.c 1 1"));
    CHECK_ILP("a,first=b c=1 1000000000");
    /* Filters: globs within one component, path at least as long. */
    qt_graphite_config_init(&cfg);
    CHECK_OK(add("w*r.*.x?*y .host.field"));
    CHECK_OK(gparse_cfg(&cfg, "water.h.x?zzy 1 1"));
    CHECK_ILP("water.h.x?zzy,host=h x?zzy=1 1000000000");
    CHECK_OK(gparse_cfg(&cfg, "water.h 1 1")); /* too short for the filter: default */
    CHECK_ILP("water h=1 1000000000");
    CHECK_OK(gparse_cfg(&cfg, "water.h.xzzy 1 1")); /* '?' is literal */
    CHECK_ILP("water,p1=h xzzy=1 1000000000");
}

/* ---- batches ----------------------------------------------------------- */

struct collect {
    int points, errors;
    uint64_t err_line[8];
};

static int
on_point(void *ctx, const struct qt_ilp_point *p)
{
    struct collect *c = ctx;
    (void)p;
    c->points++;
    return 0;
}

static int
on_error(void *ctx, const struct qt_ilp_line_error *e)
{
    struct collect *c = ctx;
    if (c->errors < 8)
        c->err_line[c->errors] = e->line_no;
    c->errors++;
    return 0;
}

TEST(batch)
{
    const char text[] = "collectd.h.cpu-0.cpu-idle 98 1700000000\r\n"
                        "collectd.h.memory.memory-used nan 1700000000\r\n"
                        "bad..path 1 1\r\n"
                        "\r\n"
                        "a.b 1\r\n"
                        "a.b inf 1\n"
                        "x;k=v 2 -1";
    struct collect c = {0};
    struct qt_ilp_batch b;
    size_t used;
    qt_graphite_batch_init(&b, NULL, NOW_S, &pt, scratch, sizeof(scratch), on_point, on_error, &c);
    CHECK_OK(qt_ilp_batch_feed(&b, (const uint8_t *)text, sizeof(text) - 1, true, &used));
    CHECK_EQ(used, sizeof(text) - 1);
    CHECK_EQ(c.points, 3);
    CHECK_EQ(c.errors, 2);
    CHECK(c.err_line[0] == 3 && c.err_line[1] == 6);
    CHECK(b.lines_skipped == 2 && b.lines_bad == 2 && b.points == 3);
}

/* ---- hostile input ----------------------------------------------------- */

static const char *const valid_lines[] = {
    "collectd.host_name.cpu-0.cpu-idle 98.5 1700000000\r",
    "servers.web01.cpu;region=eu;k=a=b 0.5 1700000000.25",
    "env.cn.h9.zj.pm25 -1.5e-3 -1",
};

TEST(truncation_and_mutation)
{
    qt_graphite_config_init(&cfg);
    CHECK_OK(add("servers.* .host.measurement* region=us,dc=a"));
    CHECK_OK(add("env.*.*.* .region.host.region.field"));
    for (size_t l = 0; l < 3; l++) {
        size_t len = strlen(valid_lines[l]);
        for (size_t cut = 0; cut <= len; cut++) {
            uint8_t *b = malloc(cut > 0 ? cut : 1);
            CHECK(b != NULL);
            memcpy(b, valid_lines[l], cut);
            int rc = qt_graphite_parse_line(&cfg, &now, b, cut, scratch, sizeof(scratch), &pt);
            bool ok_ilp = rc != 0 || as_ilp()[0] != '<'; /* before b is freed */
            free(b);
            CHECK(rc == 0 || rc == QT_ILP_SKIP || rc == QT_ESYNTAX);
            CHECK(ok_ilp);
        }
    }
    uint64_t rng = qt_test_seed() ^ 0x9a;
    static const uint8_t interesting[] = {'.', ';', '=', ' ', '\t', '\\', ',',  '#',
                                          '-', 'e', 'n', '0', 0x80, 0xff, '\r', 0};
    int ok = 0;
    for (int iter = 0; iter < 60000; iter++) {
        const char *src = valid_lines[qt_test_rand(&rng) % 3];
        uint8_t b[128];
        size_t len = strlen(src);
        memcpy(b, src, len);
        for (int f = 1 + (int)(qt_test_rand(&rng) % 3); f > 0; f--) {
            uint64_t r = qt_test_rand(&rng);
            b[r % len] = interesting[(r >> 16) % sizeof(interesting)];
        }
        int rc = qt_graphite_parse_line(&cfg, &now, b, len, scratch, sizeof(scratch), &pt);
        CHECK(rc == 0 || rc == QT_ILP_SKIP || rc == QT_ESYNTAX || rc == QT_ELIMIT);
        if (rc == 0) {
            ok++;
            const char *s = as_ilp();
            if (s[0] == '<') {
                qt_test_fail_at(__FILE__, __LINE__, "%.*s: %s", (int)len, (const char *)b, s);
                return;
            }
        }
    }
    CHECK(ok > 5000);
}
