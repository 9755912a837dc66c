/*
 * test_ilp.c -- line protocol: spec examples and InfluxDB test-suite edge
 * cases, every escape position, numeric bounds, timestamps and precision,
 * limits, canonical keys, the formatter's round trip, batches with bad
 * lines, and truncation / mutation of valid lines.
 */
#include "format/qt_bytes.h"
#include "harness.h"
#include "server/ilp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct qt_ilp_point pt, pt2;
static char scratch[QT_ILP_SCRATCH_MAX];
static char scratch2[QT_ILP_SCRATCH_MAX];
static char fmt[4 * QT_LINE_MAX];
static const struct qt_ilp_opts opts_ns = {QT_ILP_NS, 1000};

static int
parse_o(const struct qt_ilp_opts *o, const char *s)
{
    return qt_ilp_parse_line(o, (const uint8_t *)s, strlen(s), scratch, sizeof(scratch), &pt);
}

static int
parse(const char *s)
{
    return parse_o(&opts_ns, s);
}

static bool
str_is(struct qt_ilp_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static const struct qt_ilp_field *
field(const struct qt_ilp_point *p, const char *key)
{
    for (uint32_t i = 0; i < p->fields_count; i++)
        if (str_is(p->fields[i].key, key))
            return &p->fields[i];
    return NULL;
}

static const char *
tag(const struct qt_ilp_point *p, const char *key)
{
    static char buf[512];
    for (uint32_t i = 0; i < p->tags_count; i++)
        if (str_is(p->tags[i].key, key)) {
            memcpy(buf, p->tags[i].value.ptr, p->tags[i].value.len);
            buf[p->tags[i].value.len] = '\0';
            return buf;
        }
    return NULL;
}

static bool
strs_eq(struct qt_ilp_str a, struct qt_ilp_str b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* Same measurement, tags, fields (floats bit-exact) and timestamp. */
static bool
points_eq(const struct qt_ilp_point *a, const struct qt_ilp_point *b)
{
    if (!strs_eq(a->measurement, b->measurement) || a->tags_count != b->tags_count ||
        a->fields_count != b->fields_count || a->timestamp_ns != b->timestamp_ns)
        return false;
    for (uint32_t i = 0; i < a->tags_count; i++)
        if (!strs_eq(a->tags[i].key, b->tags[i].key) ||
            !strs_eq(a->tags[i].value, b->tags[i].value))
            return false;
    for (uint32_t i = 0; i < a->fields_count; i++) {
        const struct qt_ilp_field *x = &a->fields[i], *y = &b->fields[i];
        if (!strs_eq(x->key, y->key) || x->type != y->type)
            return false;
        if ((x->type == QT_ILP_FLOAT && qt_f64_bits(x->v.f) != qt_f64_bits(y->v.f)) ||
            (x->type == QT_ILP_INT && x->v.i != y->v.i) ||
            (x->type == QT_ILP_BOOL && x->v.b != y->v.b) ||
            (x->type == QT_ILP_STRING && !strs_eq(x->v.s, y->v.s)))
            return false;
    }
    return true;
}

/* Format pt, parse the text into pt2, require equality and that the
 * second formatting is byte-identical.  Returns false on any mismatch. */
static bool
roundtrip(void)
{
    size_t n, n2;
    static char again[4 * QT_LINE_MAX];
    if (qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n) != 0 || n > QT_LINE_MAX)
        return false;
    if (qt_ilp_parse_line(&opts_ns, (const uint8_t *)fmt, n, scratch2, sizeof(scratch2), &pt2) != 0)
        return false;
    if (!points_eq(&pt, &pt2) || pt.key_len != pt2.key_len)
        return false;
    if (qt_ilp_format_line(&pt2, again, sizeof(again), &n2) != 0)
        return false;
    return n == n2 && memcmp(fmt, again, n) == 0;
}

static bool
reason_has(const char *s)
{
    return strstr(qt_err_detail(), s) != NULL;
}

#define CHECK_REJECT(line, code, why)                                                              \
    do {                                                                                           \
        CHECK_RC(parse(line), code);                                                               \
        if (!reason_has(why)) {                                                                    \
            qt_test_fail_at(__FILE__, __LINE__, "%s: reason '%s' lacks '%s'", line,                \
                            qt_err_detail(), why);                                                 \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static bool
key_is(const char *want)
{
    static char key[QT_SERIES_KEY_MAX];
    size_t n;
    if (qt_ilp_group_key(&pt, key, sizeof(key), &n) != 0)
        return false;
    return n == strlen(want) && memcmp(key, want, n) == 0;
}

/* ---- conformance ------------------------------------------------------- */

TEST(spec_examples)
{
    CHECK_OK(parse("myMeasurement,tag1=value1,tag2=value2 fieldKey=\"fieldValue\" "
                   "1556813561098000000"));
    CHECK(str_is(pt.measurement, "myMeasurement"));
    CHECK_EQ(pt.tags_count, 2);
    CHECK(strcmp(tag(&pt, "tag1"), "value1") == 0 && strcmp(tag(&pt, "tag2"), "value2") == 0);
    CHECK(field(&pt, "fieldKey")->type == QT_ILP_STRING);
    CHECK(str_is(field(&pt, "fieldKey")->v.s, "fieldValue"));
    CHECK(pt.has_timestamp && pt.timestamp_ns == 1556813561098000000LL);
    CHECK(key_is("myMeasurement,tag1=value1,tag2=value2"));

    CHECK_OK(parse("my\\ Measurement fieldKey=\"string value\""));
    CHECK(str_is(pt.measurement, "my Measurement"));
    CHECK(!pt.has_timestamp && pt.timestamp_ns == 1000);
    CHECK(key_is("my\\ Measurement"));

    CHECK_OK(parse("myMeasurement fieldKey=\"\\\"string\\\" within a string\""));
    CHECK(str_is(field(&pt, "fieldKey")->v.s, "\"string\" within a string"));

    CHECK_OK(parse("myMeasurement,tag\\ Key1=tag\\ Value1,tag\\ Key2=tag\\ Value2 fieldKey=100"));
    CHECK(strcmp(tag(&pt, "tag Key1"), "tag Value1") == 0);
    CHECK(strcmp(tag(&pt, "tag Key2"), "tag Value2") == 0);
    CHECK(field(&pt, "fieldKey")->type == QT_ILP_FLOAT && field(&pt, "fieldKey")->v.f == 100.0);

    CHECK_OK(parse("myMeasurement,tagKey=\xf0\x9f\x8d\xad fieldKey=\"Launch \xf0\x9f\x9a\x80\" "
                   "1556813561098000000"));
    CHECK(strcmp(tag(&pt, "tagKey"), "\xf0\x9f\x8d\xad") == 0);
    CHECK(roundtrip());
}

TEST(realistic_city_line)
{
    CHECK_OK(parse("air,district=xihu,station=a0001 pm25=35,pm10=60,no2=21,temperature=18.3,"
                   "humidity=65.2 1794787200000000000"));
    CHECK_EQ(pt.fields_count, 5);
    CHECK(field(&pt, "pm25")->v.f == 35.0 && field(&pt, "temperature")->v.f == 18.3);
    CHECK(field(&pt, "humidity")->v.f == 65.2);
    CHECK(str_is(pt.fields[0].key, "pm25") && str_is(pt.fields[4].key, "humidity"));
    CHECK(pt.timestamp_ns == 1794787200000000000LL);
    CHECK(key_is("air,district=xihu,station=a0001"));
    CHECK_EQ(pt.key_len, strlen("air,district=xihu,station=a0001"));
    /* Zero-copy: names without escapes point into the input line. */
    CHECK(roundtrip());
    size_t n;
    CHECK_OK(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n));
    const char *want = "air,district=xihu,station=a0001 pm25=35,pm10=60,no2=21,temperature=18.3,"
                       "humidity=65.2 1794787200000000000";
    CHECK(n == strlen(want) && memcmp(fmt, want, n) == 0);
}

TEST(zero_copy_without_escapes)
{
    const char *line = "m,k=v f=\"s\"";
    CHECK_OK(qt_ilp_parse_line(&opts_ns, (const uint8_t *)line, strlen(line), scratch,
                               sizeof(scratch), &pt));
    CHECK(pt.measurement.ptr == line && pt.tags[0].value.ptr == line + 4);
    CHECK(pt.fields[0].v.s.ptr == line + 9);
    const char *esc = "m\\ x f=1";
    CHECK_OK(qt_ilp_parse_line(&opts_ns, (const uint8_t *)esc, strlen(esc), scratch,
                               sizeof(scratch), &pt));
    CHECK(pt.measurement.ptr == scratch && str_is(pt.measurement, "m x"));
}

TEST(escapes_in_every_position)
{
    CHECK_OK(parse("foo\\,bar value=1i"));
    CHECK(str_is(pt.measurement, "foo,bar") && key_is("foo\\,bar"));
    CHECK_OK(parse("cpu\\ load,region=east value=1.0"));
    CHECK(str_is(pt.measurement, "cpu load"));
    CHECK_OK(parse("cpu\\=load,region=east value=1.0")); /* '=' not escapable here */
    CHECK(str_is(pt.measurement, "cpu\\=load"));
    CHECK_OK(parse("cpu=load,equals\\=foo=tag\\=value value=1i"));
    CHECK(str_is(pt.measurement, "cpu=load") && strcmp(tag(&pt, "equals=foo"), "tag=value") == 0);
    CHECK(key_is("cpu=load,equals\\=foo=tag\\=value"));
    CHECK_OK(parse("cpu,region\\,zone=east value=1.0"));
    CHECK(tag(&pt, "region,zone") != NULL);
    CHECK_OK(parse("cpu,region\\ zone=east value=1.0"));
    CHECK(tag(&pt, "region zone") != NULL);
    CHECK_OK(parse("cpu,\\ =east value=1.0"));
    CHECK(tag(&pt, " ") != NULL);
    CHECK_OK(parse("cpu,regions=east\\,west value=1.0"));
    CHECK(strcmp(tag(&pt, "regions"), "east,west") == 0);
    CHECK_OK(parse("cpu,regions=east\\ west value=1.0"));
    CHECK(strcmp(tag(&pt, "regions"), "east west") == 0);
    CHECK_OK(parse("cpu,regions=east value\\,ms=1.0,value\\ us=2,v\\=x=3"));
    CHECK(field(&pt, "value,ms") && field(&pt, "value us") && field(&pt, "v=x"));
    CHECK(roundtrip());
}

TEST(backslash_rules)
{
    /* A backslash before a byte that is not escapable there (another
     * backslash included) is literal; InfluxDB's models/points_test.go. */
    CHECK_OK(parse("cpu,reg\\\\=ion=east value=1.0"));
    CHECK(tag(&pt, "reg\\=ion") != NULL);
    CHECK_OK(parse("cpu,regions=\\\\ east value=1.0"));
    CHECK(strcmp(tag(&pt, "regions"), "\\ east") == 0);
    CHECK_OK(parse("cpu,regions=eas\\\\ t value=1.0"));
    CHECK(strcmp(tag(&pt, "regions"), "eas\\ t") == 0);
    CHECK_OK(parse("cpu,regions=east\\\\  value=1.0"));
    CHECK(strcmp(tag(&pt, "regions"), "east\\ ") == 0);
    CHECK_OK(parse("cpu,regions=eas\\t value=1.0"));
    CHECK(strcmp(tag(&pt, "regions"), "eas\\t") == 0);
    CHECK_OK(parse("cpu,regions=\\\\,\\,\\=east value=1.0"));
    CHECK(strcmp(tag(&pt, "regions"), "\\,,=east") == 0);
    CHECK(roundtrip());
    CHECK_OK(parse("cpu \\a=1i"));
    CHECK(field(&pt, "\\a") && field(&pt, "\\a")->v.i == 1);
    CHECK_OK(parse("c\\p\\\\u v=1"));
    CHECK(str_is(pt.measurement, "c\\p\\\\u") && key_is("c\\p\\\\u"));
    /* Strings: \" and \\ are escapes, anything else literal. */
    CHECK_OK(parse("cpu value=\"test\\\\\\\"\" 1000000000"));
    CHECK(str_is(pt.fields[0].v.s, "test\\\""));
    CHECK_OK(parse("cpu value=\"test\\\\\" 1000000000"));
    CHECK(str_is(pt.fields[0].v.s, "test\\"));
    CHECK_OK(parse("cpu str=\"foo\\,bar\\n\""));
    CHECK(str_is(pt.fields[0].v.s, "foo\\,bar\\n"));
    CHECK_OK(parse("cpu value=\"{Hello\\\"{,}\\\" World}\""));
    CHECK(str_is(pt.fields[0].v.s, "{Hello\"{,}\" World}"));
    CHECK(roundtrip());
    /* A trailing backslash escapes the separator after it. */
    CHECK_REJECT("a v=1 0\\", QT_ESYNTAX, "timestamp");
    CHECK_REJECT("m,k=v\\ f=1", QT_ESYNTAX, "'=' in value of tag 'k'");
}

TEST(quotes_in_names_are_literal)
{
    CHECK_OK(parse("\"cpu\",\"host\"=\"serverA\" value=1.0 1000000000"));
    CHECK(str_is(pt.measurement, "\"cpu\"") && strcmp(tag(&pt, "\"host\""), "\"serverA\"") == 0);
    CHECK_OK(parse("m f=\"a,b c=d\",g=\"x=y\""));
    CHECK(str_is(field(&pt, "f")->v.s, "a,b c=d") && str_is(field(&pt, "g")->v.s, "x=y"));
    CHECK(roundtrip());
}

TEST(booleans_every_spelling)
{
    CHECK_OK(parse("cpu true=true,t=t,T=T,TRUE=TRUE,True=True,false=false,f=f,F=F,FALSE=FALSE,"
                   "False=False"));
    CHECK_EQ(pt.fields_count, 10);
    for (uint32_t i = 0; i < pt.fields_count; i++) {
        CHECK(pt.fields[i].type == QT_ILP_BOOL);
        CHECK(pt.fields[i].v.b == (i < 5));
    }
    CHECK(roundtrip());
    const char *bad[] = {"m v=tRUE", "m v=truee", "m v=tr", "m v=fals", "m v=FaLse",
                         "m v=yes",  "m v=t1",    "m v=T1", "m v=f,",   "m v=a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(parse(bad[i]) == QT_ESYNTAX);
    CHECK_OK(parse("m v=\"true\""));
    CHECK(pt.fields[0].type == QT_ILP_STRING);
}

TEST(integer_bounds)
{
    CHECK_OK(parse("m v=9223372036854775807i"));
    CHECK(pt.fields[0].type == QT_ILP_INT && pt.fields[0].v.i == INT64_MAX);
    CHECK_OK(parse("m v=-9223372036854775808i"));
    CHECK(pt.fields[0].v.i == INT64_MIN);
    CHECK_OK(parse("m v=0009223372036854775807i,w=-0009223372036854775808i,z=-0i"));
    CHECK(pt.fields[0].v.i == INT64_MAX && pt.fields[1].v.i == INT64_MIN && pt.fields[2].v.i == 0);
    CHECK(roundtrip());
    CHECK_REJECT("m v=9223372036854775808i", QT_ESYNTAX, "integer field 'v' out of range");
    CHECK_REJECT("m v=-9223372036854775809i", QT_ESYNTAX, "integer field 'v' out of range");
    CHECK_REJECT("m v=99999999999999999999999i", QT_ESYNTAX, "out of range");
    CHECK_OK(parse("m v=0u,w=0000u,x=9223372036854775807u"));
    CHECK(pt.fields[0].type == QT_ILP_INT && pt.fields[2].v.i == INT64_MAX);
    CHECK_REJECT("m v=9223372036854775808u", QT_ESYNTAX, "unsigned field 'v' exceeds INT64_MAX");
    CHECK_REJECT("m v=18446744073709551615u", QT_ESYNTAX, "exceeds INT64_MAX");
    CHECK_REJECT("m v=18446744073709551616u", QT_ESYNTAX, "unsigned field 'v' out of range");
    CHECK_REJECT("m v=-1u", QT_ESYNTAX, "invalid unsigned field 'v'");
    CHECK_REJECT("m v=--1u", QT_ESYNTAX, "invalid unsigned field 'v'");
    const char *bad[] = {"m v=1.0i", "m v=1ii", "m v=9ie10", "m v=9e10i", "m v=-i",
                         "m v=1i2",  "m v=i",   "m v=1 i",   "m v=1u1",   "m v=.5i"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(parse(bad[i]) == QT_ESYNTAX);
    }
    CHECK_REJECT("m v=1.0i", QT_ESYNTAX, "invalid integer field 'v'");
}

TEST(float_forms)
{
    struct {
        const char *text;
        double want;
    } ok[] = {{"1", 1.0},
              {"1.0", 1.0},
              {"-1.5e3", -1500.0},
              {"1e-3", 1e-3},
              {".5", 0.5},
              {"5.", 5.0},
              {"-.5", -0.5},
              {"1E+5", 1e5},
              {"1.e5", 1e5},
              {"0.1", 0.1},
              {"18.3", 18.3},
              {"1.0e4", 1e4},
              {"-1.234456e+78", -1.234456e+78},
              {"1e-400", 0.0},
              {"4.9406564584124654e-324", 4.9406564584124654e-324},
              {"0.30000000000000004", 0.30000000000000004},
              {"123456789012345678901234567890", 123456789012345678901234567890.0}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char line[512];
        snprintf(line, sizeof(line), "m v=%s", ok[i].text);
        CHECK_OK(parse(line));
        CHECK(pt.fields[0].type == QT_ILP_FLOAT);
        CHECK(qt_f64_bits(pt.fields[0].v.f) == qt_f64_bits(ok[i].want));
        CHECK(roundtrip());
    }
    static char line[600];
    int n = snprintf(line, sizeof(line), "m v=%.1f", 1.7976931348623157e308); /* 311 digits */
    CHECK(n > 300);
    CHECK_OK(parse(line));
    CHECK(pt.fields[0].v.f == 1.7976931348623157e308);
    snprintf(line, sizeof(line), "m v=-0000%.1f", 1.7976931348623157e308);
    CHECK_OK(parse(line));
    CHECK(pt.fields[0].v.f == -1.7976931348623157e308);
    snprintf(line, sizeof(line), "m v=1%.1f", 1.7976931348623157e308);
    CHECK_RC(parse(line), QT_ESYNTAX);
    CHECK_OK(parse("m v=-0"));
    CHECK(qt_f64_bits(pt.fields[0].v.f) == qt_f64_bits(-0.0));
    CHECK(roundtrip());
    CHECK_REJECT("m v=1e400", QT_ESYNTAX, "float field 'v' out of range");
    CHECK_REJECT("m v=-1e309", QT_ESYNTAX, "out of range");
    const char *bad[] = {"m v=-",   "m v=.",    "m v=-.",  "m v=1.1.1",  "m v=0.-1",
                         "m v=1a",  "m v=42+3", "m v=1e",  "m v=1e+",    "m v=0x10",
                         "m v=inf", "m v=-inf", "m v=nan", "m v=NaN",    "m v=+1",
                         "m v=1..", "m v=1e5.", "m v=.e1", "m v=-e-e-e", "m v=1,5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i]) != QT_ESYNTAX) {
            qt_test_fail_at(__FILE__, __LINE__, "accepted %s", bad[i]);
            return;
        }
    }
    CHECK_REJECT("m v=1.1.1", QT_ESYNTAX, "invalid float field 'v'");
    CHECK_REJECT("m v=inf", QT_ESYNTAX, "invalid value for field 'v'");
}

TEST(float_parse_matches_strtod)
{
    /* The exact fast path and the strtod fallback must agree with strtod
     * on random decimal text of every shape. */
    uint64_t rng = qt_test_seed() ^ 0xf10a7;
    for (int i = 0; i < 200000; i++) {
        char num[64], line[80];
        uint64_t r = qt_test_rand(&rng);
        int digits = 1 + (int)(r % 22), e = (int)((r >> 8) % 80) - 40, dot = (int)((r >> 16) % 24);
        int w = 0;
        if (r >> 63)
            num[w++] = '-';
        for (int d = 0; d < digits; d++) {
            if (d == dot)
                num[w++] = '.';
            num[w++] = (char)('0' + qt_test_rand(&rng) % 10);
        }
        if ((r >> 40) % 3 == 0)
            w += snprintf(num + w, sizeof(num) - w, "e%d", e);
        num[w] = '\0';
        snprintf(line, sizeof(line), "m v=%s", num);
        CHECK_OK(parse(line));
        double want = strtod(num, NULL);
        if (qt_f64_bits(pt.fields[0].v.f) != qt_f64_bits(want)) {
            qt_test_fail_at(__FILE__, __LINE__, "%s: got %.17g want %.17g", num, pt.fields[0].v.f,
                            want);
            return;
        }
    }
}

TEST(strings)
{
    CHECK_OK(
        parse("cpu,host=serverA value=1.0,str=\"foo bar\",uni=\"w\xc3\xa8\",e=\"\" 1000000000"));
    CHECK(str_is(field(&pt, "str")->v.s, "foo bar") && str_is(field(&pt, "uni")->v.s, "w\xc3\xa8"));
    CHECK(field(&pt, "e")->v.s.len == 0);
    CHECK_OK(parse("m s=\"tab\there\""));
    CHECK(str_is(pt.fields[0].v.s, "tab\there"));
    CHECK(roundtrip());
    char line[1200];
    memset(line, 'x', sizeof(line));
    memcpy(line, "m s=\"", 5);
    line[5 + 1024] = '"';
    line[5 + 1024 + 1] = '\0';
    CHECK_OK(parse(line));
    CHECK_EQ(pt.fields[0].v.s.len, 1024);
    line[5 + 1024] = 'x';
    line[5 + 1025] = '"';
    line[5 + 1026] = '\0';
    CHECK_REJECT(line, QT_ELIMIT, "string field 's' exceeds 1024 bytes");
    CHECK_REJECT("cpu,host=serverA value=\"test", QT_ESYNTAX, "unterminated string field 'value'");
    CHECK_REJECT("cpu value=\"test\\\"", QT_ESYNTAX, "unterminated");
    CHECK_REJECT("cpu value=\"test\"\"", QT_ESYNTAX, "unexpected character after field 'value'");
    CHECK_REJECT("m f=\"blah\"=123,r 1531703600000000000", QT_ESYNTAX, "unexpected character");
    CHECK_REJECT("m f=\"\xff\"", QT_ESYNTAX, "invalid UTF-8 in string field 'f'");
}

TEST(timestamps_and_precision)
{
    struct qt_ilp_opts o = {QT_ILP_S, 1700000000123456789LL};
    CHECK_OK(parse_o(&o, "m v=1 1700000000"));
    CHECK(pt.timestamp_ns == 1700000000000000000LL);
    CHECK_OK(parse_o(&o, "m v=1"));
    CHECK(!pt.has_timestamp && pt.timestamp_ns == 1700000000000000000LL); /* now, floored */
    o.precision = QT_ILP_MS;
    CHECK_OK(parse_o(&o, "m v=1 1700000000123"));
    CHECK(pt.timestamp_ns == 1700000000123000000LL);
    CHECK_OK(parse_o(&o, "m v=1"));
    CHECK(pt.timestamp_ns == 1700000000123000000LL);
    o.precision = QT_ILP_US;
    CHECK_OK(parse_o(&o, "m v=1 -1700000000123456"));
    CHECK(pt.timestamp_ns == -1700000000123456000LL);
    o.precision = QT_ILP_S;
    CHECK_OK(parse_o(&o, "m v=1 9223372036"));
    CHECK(pt.timestamp_ns == 9223372036000000000LL);
    CHECK_RC(parse_o(&o, "m v=1 9223372037"), QT_ESYNTAX);
    CHECK(reason_has("timestamp out of range"));
    CHECK_RC(parse_o(&o, "m v=1 -9223372037"), QT_ESYNTAX);
    CHECK_OK(parse("m v=1 9223372036854775806"));
    CHECK_OK(parse("m v=1 -9223372036854775806"));
    CHECK(pt.timestamp_ns == -9223372036854775806LL);
    CHECK(roundtrip());
    CHECK_REJECT("m v=1 9223372036854775807", QT_ESYNTAX, "timestamp out of range");
    CHECK_REJECT("m v=1 -9223372036854775807", QT_ESYNTAX, "timestamp out of range");
    CHECK_REJECT("m v=1 -9223372036854775808", QT_ESYNTAX, "timestamp out of range");
    CHECK_REJECT("m v=1 99999999999999999999", QT_ESYNTAX, "timestamp out of range");
    CHECK_REJECT("m v=1 123abc", QT_ESYNTAX, "invalid timestamp");
    CHECK_REJECT("m v=1 1.5", QT_ESYNTAX, "invalid timestamp");
    CHECK_REJECT("m v=1 -", QT_ESYNTAX, "invalid timestamp");
    CHECK_REJECT("m v=1 1 2", QT_ESYNTAX, "unexpected text after timestamp");
    CHECK_REJECT("cpu,host=server01,region=us-west 1434055562000000000i", QT_ESYNTAX,
                 "missing '=' after field key '1434055562000000000i'");
    CHECK_OK(parse("cpu value=1 -1"));
    CHECK(pt.timestamp_ns == -1);
    enum qt_ilp_precision p;
    CHECK_OK(qt_ilp_precision_parse("ms", 2, &p));
    CHECK(p == QT_ILP_MS);
    CHECK_OK(qt_ilp_precision_parse("u", 1, &p));
    CHECK(p == QT_ILP_US);
    CHECK_RC(qt_ilp_precision_parse("h", 1, &p), QT_EINVAL);
}

TEST(comments_blank_crlf_whitespace)
{
    const char *skips[] = {"",
                           " ",
                           "   ",
                           "\r",
                           "# comment",
                           "#",
                           "   # indented comment",
                           "#m v=1",
                           "# \x01\xff anything"};
    for (size_t i = 0; i < sizeof(skips) / sizeof(skips[0]); i++)
        CHECK_RC(parse(skips[i]), QT_ILP_SKIP);
    const char *same[] = {
        "cpu value=1.0 1257894000000000000",      "cpu    value=1.0 1257894000000000000",
        "cpu value=1.0     1257894000000000000",  "cpu      value=1.0     1257894000000000000",
        "cpu value=1.0 1257894000000000000   ",   "cpu value=1.0 1257894000000000000\r",
        "  cpu value=1.0 1257894000000000000  \r"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        CHECK_OK(parse(same[i]));
        CHECK(str_is(pt.measurement, "cpu") && pt.fields[0].v.f == 1.0);
        CHECK(pt.timestamp_ns == 1257894000000000000LL);
    }
    CHECK_OK(parse("cpu value=1   "));
    CHECK(!pt.has_timestamp);
    CHECK_REJECT("cpu\tvalue=1", QT_ESYNTAX, "control character in measurement");
    CHECK_REJECT("cpu value=1\t", QT_ESYNTAX, "invalid float field 'value'");
    CHECK_REJECT("cpu value=t\t", QT_ESYNTAX, "invalid boolean field 'value'");
    CHECK_REJECT("cpu value=\"x\"\t", QT_ESYNTAX, "unexpected character after field 'value'");
    CHECK_REJECT("cpu value=1\r\r", QT_ESYNTAX, "invalid float field 'value'");
    CHECK_REJECT("cpu value=1i\n", QT_ESYNTAX, "invalid integer field 'value'");
    CHECK_REJECT("cpu s=\"a\nb\"", QT_ESYNTAX, "newline in string field 's'");
}

TEST(structure_errors)
{
    CHECK_REJECT("cpu", QT_ESYNTAX, "missing field set");
    CHECK_REJECT("cpu ", QT_ESYNTAX, "missing field set");
    CHECK_REJECT("cpu,host=a", QT_ESYNTAX, "missing field set");
    CHECK_REJECT(",a=b f=1", QT_ESYNTAX, "missing measurement");
    CHECK_REJECT(" ,a=b f=1", QT_ESYNTAX, "missing measurement");
    const char *no_key[] = {"cpu, value=1",
                            "cpu,",
                            "cpu,,,",
                            "cpu,host=serverA,=us-east value=1i",
                            "cpu,host=serverA\\,,=us-east value=1i",
                            "cpu, =serverA value=1i"};
    for (size_t i = 0; i < sizeof(no_key) / sizeof(no_key[0]); i++)
        CHECK_REJECT(no_key[i], QT_ESYNTAX, "missing tag key");
    CHECK_REJECT("cpu,host", QT_ESYNTAX, "missing '=' after tag key 'host'");
    CHECK_REJECT("cpu,host value=1i", QT_ESYNTAX, "missing '=' after tag key 'host'");
    CHECK_REJECT("cpu,host=", QT_ESYNTAX, "empty value for tag 'host'");
    CHECK_REJECT("cpu,host=serverA,region= value=1i", QT_ESYNTAX, "empty value for tag 'region'");
    CHECK_REJECT("cpu,host=serverA,region=,zone=us-west value=1i", QT_ESYNTAX,
                 "empty value for tag 'region'");
    CHECK_REJECT("cpu,host=f=o, v=1", QT_ESYNTAX, "unescaped '=' in value of tag 'host'");
    CHECK_REJECT("cpu,host=f\\==o, v=1", QT_ESYNTAX, "unescaped '='");
    CHECK_REJECT("cpu,host=serverA,region=us-west =", QT_ESYNTAX, "missing field key");
    CHECK_REJECT("cpu,host=serverA,region=us-west =123i", QT_ESYNTAX, "missing field key");
    CHECK_REJECT("cpu value=123i,=456i", QT_ESYNTAX, "missing field key");
    CHECK_REJECT("cpu value=1i,", QT_ESYNTAX, "missing field key");
    CHECK_REJECT("cpu,host=a value=", QT_ESYNTAX, "missing value for field 'value'");
    CHECK_REJECT("cpu,host=a value= 1000000000i", QT_ESYNTAX, "invalid value for field 'value'");
    CHECK_REJECT("cpu,host=a value=,value2=1i", QT_ESYNTAX, "invalid value for field 'value'");
    CHECK_REJECT("cpu,host=a value=1i,b", QT_ESYNTAX, "missing '=' after field key 'b'");
    CHECK_REJECT("cpu value", QT_ESYNTAX, "missing '=' after field key 'value'");
    CHECK_OK(parse("cpu,host=serverA,region=us-west a\\ =123i"));
    CHECK(field(&pt, "a ") != NULL);
    CHECK_OK(parse("\\#m v=1"));
    CHECK(str_is(pt.measurement, "\\#m"));
    CHECK_EQ(pt.error_offset, 0);
    CHECK_RC(parse("cpu,host=a value=\"x"), QT_ESYNTAX);
    CHECK_EQ(pt.error_offset, 17);
}

TEST(duplicates)
{
    const char *dup[] = {"cpu,host=serverA,host=serverB value=1i 1000000000",
                         "cpu,b=2,b=1,c=3 value=1i 1000000000", "cpu,b=2,c=3,b=1 value=1i"};
    for (size_t i = 0; i < 3; i++)
        CHECK_REJECT(dup[i], QT_ESYNTAX, "duplicate tag key '");
    CHECK_REJECT("m,a\\ b=1,a\\ b=2 v=1", QT_ESYNTAX, "duplicate tag key 'a b'");
    /* Duplicate field keys: the last value wins, at its position. */
    CHECK_OK(parse("m a=1,b=2i,a=\"x\",c=t,b=3i"));
    CHECK_EQ(pt.fields_count, 3);
    CHECK(str_is(pt.fields[0].key, "a") && pt.fields[0].type == QT_ILP_STRING);
    CHECK(str_is(pt.fields[1].key, "c") && str_is(pt.fields[2].key, "b"));
    CHECK(pt.fields[2].v.i == 3);
    CHECK(roundtrip());
    CHECK_OK(parse("m a=1,a=2,a=3"));
    CHECK(pt.fields_count == 1 && pt.fields[0].v.f == 3.0);
}

TEST(unicode)
{
    CHECK_OK(parse("\xe7\xa9\xba\xe6\xb0\x94,\xe5\x8c\xba=\xe8\xa5\xbf\xe6\xb9\x96 "
                   "\xe6\xb8\xa9\xe5\xba\xa6=18.3"));
    CHECK(str_is(pt.measurement, "\xe7\xa9\xba\xe6\xb0\x94"));
    CHECK(strcmp(tag(&pt, "\xe5\x8c\xba"), "\xe8\xa5\xbf\xe6\xb9\x96") == 0);
    CHECK(roundtrip());
    const char *bad_seq[] = {
        "\xc0\x80",         "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80", "\x80",     "\xe6\xb8",     "\xf0\x9f\x8d", "\xff"};
    const char *pre[] = {"m", "m,", "m,k=", "m ", "m s=\""};
    const char *post[] = {" v=1", "=v f=1", " f=1", "=1", "\""};
    for (size_t f = 0; f < 5; f++)
        for (size_t i = 0; i < sizeof(bad_seq) / sizeof(bad_seq[0]); i++) {
            char line[64];
            snprintf(line, sizeof(line), "%s%s%s", pre[f], bad_seq[i], post[f]);
            CHECK_RC(parse(line), QT_ESYNTAX);
            CHECK(reason_has("invalid UTF-8"));
        }
}

/* ---- limits ------------------------------------------------------------ */

TEST(line_length_limit)
{
    static char line[QT_LINE_MAX + 8];
    memset(line, ' ', sizeof(line));
    memcpy(line, "m v=1", 5);
    CHECK_OK(qt_ilp_parse_line(&opts_ns, (const uint8_t *)line, QT_LINE_MAX, scratch,
                               sizeof(scratch), &pt));
    line[QT_LINE_MAX] = '\r';
    CHECK_OK(qt_ilp_parse_line(&opts_ns, (const uint8_t *)line, QT_LINE_MAX + 1, scratch,
                               sizeof(scratch), &pt));
    line[QT_LINE_MAX] = ' ';
    CHECK_RC(qt_ilp_parse_line(&opts_ns, (const uint8_t *)line, QT_LINE_MAX + 1, scratch,
                               sizeof(scratch), &pt),
             QT_ELIMIT);
    CHECK(strcmp(qt_err_detail(), "ilp: line exceeds 65536 bytes") == 0);
    CHECK_EQ(pt.error_offset, QT_LINE_MAX);
    line[0] = '#'; /* even a comment */
    CHECK_RC(qt_ilp_parse_line(&opts_ns, (const uint8_t *)line, QT_LINE_MAX + 5, scratch,
                               sizeof(scratch), &pt),
             QT_ELIMIT);
}

static size_t
build_tags(char *line, uint32_t ntags)
{
    size_t w = (size_t)sprintf(line, "m");
    for (uint32_t i = 0; i < ntags; i++)
        w += (size_t)sprintf(line + w, ",t%u=x", i);
    w += (size_t)sprintf(line + w, " v=0");
    return w;
}

TEST(tag_and_field_count_limits)
{
    static char line[QT_LINE_MAX];
    build_tags(line, QT_TAGS_MAX);
    CHECK_OK(parse(line));
    CHECK_EQ(pt.tags_count, QT_TAGS_MAX);
    CHECK(roundtrip());
    build_tags(line, QT_TAGS_MAX + 1);
    CHECK_REJECT(line, QT_ELIMIT, "more than 64 tags");
    size_t w = (size_t)sprintf(line, "m ");
    for (uint32_t i = 0; i < QT_FIELDS_MAX; i++)
        w += (size_t)sprintf(line + w, "%sf%u=%ui", i ? "," : "", i, i);
    CHECK_OK(parse(line));
    CHECK_EQ(pt.fields_count, QT_FIELDS_MAX);
    CHECK(roundtrip());
    sprintf(line + w, ",extra=1");
    CHECK_REJECT(line, QT_ELIMIT, "more than 256 fields");
    /* 256 fields all named the same: the quadratic check, last wins. */
    w = (size_t)sprintf(line, "m ");
    for (uint32_t i = 0; i < QT_FIELDS_MAX; i++)
        w += (size_t)sprintf(line + w, "%sk=%ui", i ? "," : "", i);
    CHECK_OK(parse(line));
    CHECK(pt.fields_count == 1 && pt.fields[0].v.i == QT_FIELDS_MAX - 1);
}

TEST(series_key_limit)
{
    static char line[QT_LINE_MAX];
    /* key "m,k=<v>" plus 1 plus field key "f": exactly QT_SERIES_KEY_MAX. */
    size_t vlen = QT_SERIES_KEY_MAX - strlen("m,k=") - 1 - 1;
    size_t w = (size_t)sprintf(line, "m,k=");
    memset(line + w, 'v', vlen);
    sprintf(line + w + vlen, " f=1");
    CHECK_OK(parse(line));
    CHECK_EQ(pt.key_len, QT_SERIES_KEY_MAX - 2);
    CHECK(roundtrip());
    sprintf(line + w + vlen, " ff=1"); /* one byte more in the field key */
    CHECK_REJECT(line, QT_ELIMIT, "series key exceeds 4096 bytes");
    /* The value's last byte becomes an escaped comma: the same unescaped
     * length, but its canonical form is one byte longer. */
    memcpy(line + w + vlen - 1, "\\,", 2);
    sprintf(line + w + vlen + 1, " f=1");
    CHECK_REJECT(line, QT_ELIMIT, "series key exceeds 4096 bytes");
}

TEST(number_text_limit)
{
    static char line[QT_NUMBER_TEXT_MAX + 64];
    size_t w = (size_t)sprintf(line, "m v=");
    memset(line + w, '0', QT_NUMBER_TEXT_MAX - 1);
    w += QT_NUMBER_TEXT_MAX - 1;
    line[w++] = '1';
    line[w] = '\0';
    CHECK_OK(parse(line));
    CHECK(pt.fields[0].v.f == 1.0);
    line[w++] = '0';
    line[w] = '\0';
    CHECK_REJECT(line, QT_ELIMIT, "number too long in field 'v'");
}

TEST(scratch_too_small)
{
    const char *line = "m\\ x,k\\ y=v\\ z f\\ g=\"a\\\"b\"";
    char small[8];
    size_t n = strlen(line);
    CHECK_OK(qt_ilp_parse_line(&opts_ns, (const uint8_t *)line, n, scratch, n, &pt));
    CHECK(str_is(pt.fields[0].v.s, "a\"b"));
    CHECK_RC(qt_ilp_parse_line(&opts_ns, (const uint8_t *)line, n, small, sizeof(small), &pt),
             QT_ENOSPACE);
    CHECK_RC(qt_ilp_parse_line(&opts_ns, (const uint8_t *)line, n, NULL, 0, &pt), QT_ENOSPACE);
}

/* ---- canonical key ----------------------------------------------------- */

TEST(group_key_canonical)
{
    static char k1[QT_SERIES_KEY_MAX], k2[QT_SERIES_KEY_MAX];
    size_t n1, n2;
    const char *orders[] = {"air,district=xihu,station=a0001,type=pm pm25=1",
                            "air,station=a0001,district=xihu,type=pm pm25=2i 5",
                            "air,type=pm,station=a0001,district=xihu humidity=3,pm25=\"x\"",
                            "  air,type=pm,district=xihu,station=a0001   v=t  \r"};
    CHECK_OK(parse(orders[0]));
    CHECK_OK(qt_ilp_group_key(&pt, k1, sizeof(k1), &n1));
    for (size_t i = 1; i < 4; i++) {
        CHECK_OK(parse(orders[i]));
        CHECK_OK(qt_ilp_group_key(&pt, k2, sizeof(k2), &n2));
        CHECK(n1 == n2 && memcmp(k1, k2, n1) == 0);
    }
    CHECK(n1 == strlen("air,district=xihu,station=a0001,type=pm"));
    /* Escaped names re-escape canonically; escapes make distinct keys. */
    CHECK_OK(parse("m\\,a=b v=1"));
    CHECK(key_is("m\\,a=b"));
    CHECK_OK(parse("m,a=b v=1"));
    CHECK(key_is("m,a=b"));
    CHECK_OK(parse("m,a=b\\,c\\=d v=1"));
    CHECK(key_is("m,a=b\\,c\\=d") && pt.tags_count == 1);
    CHECK_OK(parse("m,a=b,c=d v=1"));
    CHECK(key_is("m,a=b,c=d") && pt.tags_count == 2);
    CHECK_OK(parse("m,k\\ 1=v\\,x\\=y v=1"));
    CHECK(key_is("m,k\\ 1=v\\,x\\=y"));
    CHECK_OK(parse("m,k=a\\\\,j v=1")); /* literal backslash, then an escaped comma */
    CHECK(strcmp(tag(&pt, "k"), "a\\,j") == 0 && key_is("m,k=a\\\\,j"));
    CHECK_RC(qt_ilp_group_key(&pt, k1, pt.key_len - 1, &n1), QT_ENOSPACE);
    /* Tags sort by bytes, shorter first on a tie. */
    CHECK_OK(parse("m,ab=1,a=2,B=3,\xc3\xa9=4,a\\ =5 v=1"));
    CHECK(key_is("m,B=3,a=2,a\\ =5,ab=1,\xc3\xa9=4"));
}

static void
shuffle_tags(uint64_t *rng)
{
    for (uint32_t i = pt.tags_count; i > 1; i--) {
        uint32_t j = (uint32_t)(qt_test_rand(rng) % i);
        struct qt_ilp_tag t = pt.tags[i - 1];
        pt.tags[i - 1] = pt.tags[j];
        pt.tags[j] = t;
    }
}

/* Random name over an alphabet heavy in bytes that need escaping. */
static size_t
rand_name(uint64_t *rng, char *out, bool measurement)
{
    static const char *alpha[] = {"a", "b", ",", "=", " ", "\\", "\"", "#", "\xc3\xa9", "1"};
    size_t n = 1 + qt_test_rand(rng) % 8, w = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = alpha[qt_test_rand(rng) % 10];
        memcpy(out + w, s, strlen(s));
        w += strlen(s);
    }
    while (w > 0 && out[w - 1] == '\\')
        w--; /* unrepresentable: the parser never produces it */
    if (w == 0 || (measurement && out[0] == '#'))
        out[w++] = 'z';
    if (measurement && out[0] == '#')
        out[0] = 'y';
    return w;
}

static int
tag_cmp(const void *a, const void *b)
{
    const struct qt_ilp_tag *x = a, *y = b;
    uint32_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int r = memcmp(x->key.ptr, y->key.ptr, n);
    return r != 0 ? r : (int)x->key.len - (int)y->key.len;
}

/* A random point built directly (not parsed), in the parser's normal form. */
static bool
random_point(uint64_t *rng, char *names)
{
    size_t w = 0;
    memset(&pt, 0, offsetof(struct qt_ilp_point, tags));
    pt.measurement.ptr = names;
    pt.measurement.len = (uint32_t)rand_name(rng, names, true);
    w = pt.measurement.len;
    pt.tags_count = (uint32_t)(qt_test_rand(rng) % 6);
    for (uint32_t i = 0; i < pt.tags_count; i++) {
        pt.tags[i].key = (struct qt_ilp_str){names + w, (uint32_t)rand_name(rng, names + w, 0)};
        w += pt.tags[i].key.len;
        pt.tags[i].value = (struct qt_ilp_str){names + w, (uint32_t)rand_name(rng, names + w, 0)};
        w += pt.tags[i].value.len;
    }
    qsort(pt.tags, pt.tags_count, sizeof(pt.tags[0]), tag_cmp);
    for (uint32_t i = 1; i < pt.tags_count; i++)
        if (tag_cmp(&pt.tags[i - 1], &pt.tags[i]) == 0)
            return false;
    pt.fields_count = 4;
    for (uint32_t i = 0; i < 4; i++) {
        struct qt_ilp_field *f = &pt.fields[i];
        size_t k = rand_name(rng, names + w, false);
        names[w + k] = (char)('0' + i); /* distinct keys */
        f->key = (struct qt_ilp_str){names + w, (uint32_t)(k + 1)};
        w += k + 1;
        uint64_t r = qt_test_rand(rng);
        f->type = (enum qt_ilp_type)(QT_ILP_FLOAT + i);
        f->v.i = (int64_t)r;
        if (f->type == QT_ILP_FLOAT)
            f->v.f = isfinite(qt_bits_f64(r)) ? qt_bits_f64(r) : (double)(int64_t)r;
        if (f->type == QT_ILP_BOOL)
            f->v.b = r & 1;
        if (f->type == QT_ILP_STRING)
            f->v.s = (struct qt_ilp_str){names, (uint32_t)w};
    }
    pt.timestamp_ns = (int64_t)(qt_test_rand(rng) >> 1) - (INT64_MAX >> 1);
    return true;
}

TEST(random_points_roundtrip)
{
    uint64_t rng = qt_test_seed() ^ 0x6b6579;
    static char names[4096];
    int done = 0;
    for (int iter = 0; iter < 5000; iter++) {
        size_t n;
        if (!random_point(&rng, names))
            continue; /* duplicate tag keys: not a parser output */
        CHECK_OK(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n));
        CHECK_OK(
            qt_ilp_parse_line(&opts_ns, (const uint8_t *)fmt, n, scratch2, sizeof(scratch2), &pt2));
        CHECK(points_eq(&pt, &pt2));
        done++;
    }
    CHECK(done > 4000);
}

TEST(key_independent_of_tag_order)
{
    uint64_t rng = qt_test_seed() ^ 0x0d3e;
    static char line[4096], k1[QT_SERIES_KEY_MAX], k2[QT_SERIES_KEY_MAX];
    for (int iter = 0; iter < 2000; iter++) {
        char keys[8][64], vals[8][64];
        uint32_t n = 1 + (uint32_t)(qt_test_rand(&rng) % 8);
        for (uint32_t i = 0; i < n; i++) {
            size_t a = rand_name(&rng, keys[i], false), b = rand_name(&rng, vals[i], false);
            keys[i][a] = vals[i][b] = '\0';
            snprintf(keys[i] + a, 8, "%u", i); /* distinct keys */
        }
        /* Write the same tag set in two orders, escaping canonically. */
        size_t n1 = 0, n2 = 0;
        for (int pass = 0; pass < 2; pass++) {
            for (uint32_t i = 0; i < n; i++) {
                pt.tags[i].key = (struct qt_ilp_str){keys[i], (uint32_t)strlen(keys[i])};
                pt.tags[i].value = (struct qt_ilp_str){vals[i], (uint32_t)strlen(vals[i])};
            }
            pt.tags_count = n;
            if (pass == 1)
                shuffle_tags(&rng);
            size_t w = 1;
            line[0] = 'm';
            for (uint32_t i = 0; i < n; i++) {
                line[w++] = ',';
                for (uint32_t j = 0; j < pt.tags[i].key.len; j++) {
                    char c = pt.tags[i].key.ptr[j];
                    if (c == ',' || c == '=' || c == ' ')
                        line[w++] = '\\';
                    line[w++] = c;
                }
                line[w++] = '=';
                for (uint32_t j = 0; j < pt.tags[i].value.len; j++) {
                    char c = pt.tags[i].value.ptr[j];
                    if (c == ',' || c == '=' || c == ' ')
                        line[w++] = '\\';
                    line[w++] = c;
                }
            }
            memcpy(line + w, " v=1", 5);
            CHECK_OK(parse(line));
            CHECK_OK(qt_ilp_group_key(&pt, pass ? k2 : k1, QT_SERIES_KEY_MAX, pass ? &n2 : &n1));
        }
        CHECK(n1 == n2 && memcmp(k1, k2, n1) == 0);
    }
}

/* ---- formatter --------------------------------------------------------- */

TEST(format_floats_shortest)
{
    struct {
        const char *in, *out;
    } cases[] = {{"0.1", "0.1"},
                 {"18.3", "18.3"},
                 {"100", "100"},
                 {"1e300", "1e+300"},
                 {"-0", "-0"},
                 {"0.000001", "1e-06"},
                 {"123456789012345678", "1.2345678901234568e+17"},
                 {"0.30000000000000004", "0.30000000000000004"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[128], want[128];
        size_t n;
        snprintf(line, sizeof(line), "m v=%s 0", cases[i].in);
        snprintf(want, sizeof(want), "m v=%s 0", cases[i].out);
        CHECK_OK(parse(line));
        CHECK_OK(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n));
        if (n != strlen(want) || memcmp(fmt, want, n) != 0) {
            qt_test_fail_at(__FILE__, __LINE__, "%s -> %.*s", line, (int)n, fmt);
            return;
        }
    }
    CHECK_OK(parse("m a=-5i,b=true,c=false,d=\"q\\\"\\\\\" 7"));
    size_t n;
    CHECK_OK(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n));
    CHECK(n == strlen("m a=-5i,b=true,c=false,d=\"q\\\"\\\\\" 7"));
    CHECK(memcmp(fmt, "m a=-5i,b=true,c=false,d=\"q\\\"\\\\\" 7", n) == 0);
}

TEST(format_rejects_unrepresentable)
{
    size_t n;
    CHECK_OK(parse("m,a=1,b=2 v=1,s=\"x\" 5"));
    struct qt_ilp_point good = pt;
    pt.fields[0].v.f = NAN;
    CHECK_RC(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n), QT_EINVAL);
    pt = good;
    pt.fields[0].v.f = INFINITY;
    CHECK_RC(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n), QT_EINVAL);
    pt = good;
    pt.measurement = (struct qt_ilp_str){"#m", 2};
    CHECK_RC(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n), QT_EINVAL);
    pt.measurement = (struct qt_ilp_str){"m\\", 2};
    CHECK_RC(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n), QT_EINVAL);
    pt.measurement = (struct qt_ilp_str){"m\tx", 3};
    CHECK_RC(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n), QT_EINVAL);
    pt = good;
    struct qt_ilp_tag t = pt.tags[0];
    pt.tags[0] = pt.tags[1];
    pt.tags[1] = t;
    CHECK_RC(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n), QT_EINVAL);
    pt = good;
    pt.tags[1].key = pt.tags[0].key;
    CHECK_RC(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n), QT_EINVAL);
    pt = good;
    pt.fields[1].v.s = (struct qt_ilp_str){"a\nb", 3};
    CHECK_RC(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n), QT_EINVAL);
    pt = good;
    pt.tags[0].value.len = 0;
    CHECK_RC(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n), QT_EINVAL);
    pt = good;
    pt.timestamp_ns = INT64_MAX;
    CHECK_RC(qt_ilp_format_line(&pt, fmt, sizeof(fmt), &n), QT_EINVAL);
    pt = good;
    CHECK_RC(qt_ilp_format_line(&pt, fmt, 10, &n), QT_ENOSPACE);
    CHECK_OK(qt_ilp_format_line(&pt, fmt, qt_ilp_format_bound(&pt), &n));
    CHECK(n <= qt_ilp_format_bound(&pt));
}

/* ---- batches ----------------------------------------------------------- */

struct collect {
    int points;
    int errors;
    uint64_t err_line[64];
    uint64_t err_off[64];
    uint32_t err_col[64];
    int err_code[64];
    char reasons[64][128];
    char keys[64][128];
    int fail_point_at; /* on_point returns -1 at this point number (1-based) */
    int stop_error_at;
};

static int
on_point(void *ctx, const struct qt_ilp_point *p)
{
    struct collect *c = ctx;
    size_t n;
    if (c->fail_point_at != 0 && c->points + 1 == c->fail_point_at) {
        c->fail_point_at = 0;
        return -1;
    }
    if (c->points < 64 && qt_ilp_group_key(p, c->keys[c->points], 127, &n) == 0)
        c->keys[c->points][n] = '\0';
    c->points++;
    return 0;
}

static int
on_error(void *ctx, const struct qt_ilp_line_error *e)
{
    struct collect *c = ctx;
    if (c->errors < 64) {
        c->err_line[c->errors] = e->line_no;
        c->err_off[c->errors] = e->offset;
        c->err_col[c->errors] = e->column;
        c->err_code[c->errors] = e->code;
        snprintf(c->reasons[c->errors], 128, "%s", e->reason);
    }
    c->errors++;
    return c->stop_error_at != 0 && c->errors == c->stop_error_at ? 7 : 0;
}

static const char batch_text[] = "# header comment\n"                 /* 1 */
                                 "air,d=xihu v=1 1\n"                 /* 2 */
                                 "\n"                                 /* 3 */
                                 "air,d=xihu v=oops 2\n"              /* 4: bad */
                                 "air,d=binjiang v=2 3\r\n"           /* 5 */
                                 "bad line\n"                         /* 6: bad */
                                 "air,d=x s=\"unterminated\n"         /* 7: bad */
                                 "water,site=w1 ph=7.1,turb=3i 4\r\n" /* 8 */
                                 "   \n"                              /* 9 */
                                 "air,d=xihu,d=dup v=1\n"             /* 10: bad */
                                 "grid,feeder=f7 kw=12.5";            /* 11, no newline */

static void
batch_check_result(const struct collect *c, const struct qt_ilp_batch *b)
{
    CHECK_EQ(c->points, 4);
    CHECK_EQ(c->errors, 4);
    CHECK(strcmp(c->keys[0], "air,d=xihu") == 0 && strcmp(c->keys[1], "air,d=binjiang") == 0);
    CHECK(strcmp(c->keys[2], "water,site=w1") == 0 && strcmp(c->keys[3], "grid,feeder=f7") == 0);
    CHECK(c->err_line[0] == 4 && c->err_line[1] == 6 && c->err_line[2] == 7 &&
          c->err_line[3] == 10);
    const char *text = batch_text;
    CHECK_EQ(c->err_off[0], strstr(text, "air,d=xihu v=oops") - text);
    CHECK_EQ(c->err_off[1], strstr(text, "bad line") - text);
    CHECK_EQ(c->err_off[3], strstr(text, "air,d=xihu,d=dup") - text);
    CHECK_EQ(c->err_col[0], 14); /* the 'o' of "oops" */
    CHECK(strstr(c->reasons[0], "invalid value for field 'v'") != NULL);
    CHECK(strstr(c->reasons[1], "missing '=' after field key 'line'") != NULL);
    CHECK(strstr(c->reasons[2], "unterminated string field 's'") != NULL);
    CHECK(strstr(c->reasons[3], "duplicate tag key 'd'") != NULL);
    CHECK(b->points == 4 && b->lines_bad == 4 && b->lines_skipped == 3);
    CHECK_EQ(b->line_no, 12);
    CHECK_EQ(b->offset, sizeof(batch_text) - 1);
}

TEST(batch_reports_bad_lines_and_yields_good)
{
    struct collect c = {0};
    struct qt_ilp_batch b;
    size_t used;
    qt_ilp_batch_init(&b, &opts_ns, &pt, scratch, sizeof(scratch), on_point, on_error, &c);
    CHECK_OK(
        qt_ilp_batch_feed(&b, (const uint8_t *)batch_text, sizeof(batch_text) - 1, true, &used));
    CHECK_EQ(used, sizeof(batch_text) - 1);
    batch_check_result(&c, &b);
}

TEST(batch_streaming_any_chunking)
{
    /* Feed in random chunk sizes, keeping the unconsumed tail like a
     * connection reader would: same result as one call. */
    uint64_t rng = qt_test_seed() ^ 0xc4;
    const size_t total = sizeof(batch_text) - 1;
    for (int iter = 0; iter < 300; iter++) {
        struct collect c = {0};
        struct qt_ilp_batch b;
        static uint8_t buf[QT_ILP_BATCH_BUF_MIN];
        size_t have = 0, fed = 0, used;
        qt_ilp_batch_init(&b, &opts_ns, &pt, scratch, sizeof(scratch), on_point, on_error, &c);
        while (fed < total || have > 0) {
            size_t k = 1 + qt_test_rand(&rng) % 40;
            k = k < total - fed ? k : total - fed;
            memcpy(buf + have, batch_text + fed, k);
            have += k;
            fed += k;
            CHECK_OK(qt_ilp_batch_feed(&b, buf, have, fed == total, &used));
            memmove(buf, buf + used, have - used);
            have -= used;
            if (fed == total)
                CHECK_EQ(have, 0);
        }
        batch_check_result(&c, &b);
    }
}

TEST(batch_overlong_line_streaming)
{
    static uint8_t buf[3 * QT_LINE_MAX];
    struct collect c = {0};
    struct qt_ilp_batch b;
    size_t used, w = 0;
    w += (size_t)sprintf((char *)buf, "a v=1\n");
    memset(buf + w, 'x', 2 * QT_LINE_MAX);
    w += 2 * QT_LINE_MAX;
    w += (size_t)sprintf((char *)buf + w, " v=1\nb v=2\n");
    qt_ilp_batch_init(&b, &opts_ns, &pt, scratch, sizeof(scratch), on_point, on_error, &c);
    /* Chunks of 10000 bytes, the caller keeping the tail. */
    static uint8_t win[QT_ILP_BATCH_BUF_MIN + 10000];
    size_t have = 0;
    for (size_t fed = 0; fed < w;) {
        size_t k = w - fed < 10000 ? w - fed : 10000;
        memcpy(win + have, buf + fed, k);
        have += k;
        fed += k;
        CHECK_OK(qt_ilp_batch_feed(&b, win, have, fed == w, &used));
        memmove(win, win + used, have - used);
        have -= used;
        CHECK(have < QT_ILP_BATCH_BUF_MIN);
    }
    CHECK_EQ(c.points, 2);
    CHECK_EQ(c.errors, 1);
    CHECK(c.err_line[0] == 2 && c.err_off[0] == 6 && c.err_code[0] == QT_ELIMIT);
    CHECK(strstr(c.reasons[0], "line exceeds 65536 bytes") != NULL);
    CHECK(strcmp(c.keys[1], "b") == 0);
    CHECK_EQ(b.line_no, 4);
    /* One-shot final feed: same report. */
    struct collect c2 = {0};
    qt_ilp_batch_init(&b, &opts_ns, &pt, scratch, sizeof(scratch), on_point, on_error, &c2);
    CHECK_OK(qt_ilp_batch_feed(&b, buf, w, true, &used));
    CHECK(c2.points == 2 && c2.errors == 1 && c2.err_line[0] == 2);
}

TEST(batch_callback_stops)
{
    struct collect c = {0};
    struct qt_ilp_batch b;
    size_t used;
    const char *text = "a v=1\nb v=2\nc v=3\n";
    c.fail_point_at = 2;
    qt_ilp_batch_init(&b, &opts_ns, &pt, scratch, sizeof(scratch), on_point, on_error, &c);
    CHECK_RC(qt_ilp_batch_feed(&b, (const uint8_t *)text, strlen(text), true, &used), -1);
    CHECK_EQ(used, 6); /* line 2 not consumed: retry from there */
    CHECK_EQ(b.line_no, 2);
    CHECK_OK(qt_ilp_batch_feed(&b, (const uint8_t *)text + used, strlen(text) - used, true, &used));
    CHECK_EQ(c.points, 3);
    CHECK(strcmp(c.keys[1], "b") == 0);
    struct collect c2 = {.stop_error_at = 1};
    const char *bad = "x\ny v=1\n";
    qt_ilp_batch_init(&b, &opts_ns, &pt, scratch, sizeof(scratch), on_point, on_error, &c2);
    CHECK_RC(qt_ilp_batch_feed(&b, (const uint8_t *)bad, strlen(bad), true, &used), 7);
    CHECK_EQ(used, 2);
    CHECK_EQ(c2.points, 0);
    /* No error callback: bad lines are counted only. */
    struct collect c3 = {0};
    qt_ilp_batch_init(&b, &opts_ns, &pt, scratch, sizeof(scratch), on_point, NULL, &c3);
    CHECK_OK(qt_ilp_batch_feed(&b, (const uint8_t *)bad, strlen(bad), true, &used));
    CHECK(c3.points == 1 && b.lines_bad == 1);
}

/* ---- hostile input ----------------------------------------------------- */

static const char *const valid_lines[] = {
    "air,district=xihu,station=a0001 pm25=35,pm10=60,no2=21,temperature=18.3,humidity=65.2 "
    "1794787200000000000",
    "m\\ x\\,y,k\\=1=v\\ 2,a=\xe4\xb8\xad s=\"q\\\"\\\\z\",i=-7i,u=9u,b=FALSE,f=-1.5e-3 -42",
    "water,site=w\\\\1 ph=7.1,ok=t 1\r"};

TEST(truncation_at_every_byte)
{
    for (size_t l = 0; l < sizeof(valid_lines) / sizeof(valid_lines[0]); l++) {
        size_t len = strlen(valid_lines[l]);
        for (size_t cut = 0; cut <= len; cut++) {
            /* Exact-size heap copy: ASan catches any read past the cut. */
            uint8_t *b = malloc(cut > 0 ? cut : 1);
            CHECK(b != NULL);
            memcpy(b, valid_lines[l], cut);
            int rc = qt_ilp_parse_line(&opts_ns, b, cut, scratch, sizeof(scratch), &pt);
            CHECK(rc == 0 || rc == QT_ILP_SKIP || rc == QT_ESYNTAX);
            if (rc == 0 && !roundtrip()) {
                free(b);
                qt_test_fail_at(__FILE__, __LINE__, "line %zu cut %zu: round trip", l, cut);
                return;
            }
            free(b);
        }
    }
}

TEST(random_mutations_roundtrip)
{
    uint64_t rng = qt_test_seed() ^ 0xb17;
    static const uint8_t interesting[] = {',', '=', ' ', '\\', '"', '#', '\r', '\n', '.',  '-',
                                          'e', 'i', 'u', 't',  '0', '9', 0x80, 0xff, 0xc3, 0};
    int ok = 0;
    for (int iter = 0; iter < 60000; iter++) {
        const char *src = valid_lines[qt_test_rand(&rng) % 3];
        uint8_t b[256];
        size_t len = strlen(src);
        memcpy(b, src, len);
        int flips = 1 + (int)(qt_test_rand(&rng) % 4);
        for (int f = 0; f < flips; f++) {
            size_t at = qt_test_rand(&rng) % len;
            uint64_t r = qt_test_rand(&rng);
            b[at] = (r & 1) ? interesting[(r >> 1) % sizeof(interesting)]
                            : (uint8_t)(b[at] ^ (1u << ((r >> 1) % 8)));
        }
        int rc = qt_ilp_parse_line(&opts_ns, b, len, scratch, sizeof(scratch), &pt);
        CHECK(rc == 0 || rc == QT_ILP_SKIP || rc == QT_ESYNTAX || rc == QT_ELIMIT);
        if (rc == 0) {
            ok++;
            if (!roundtrip()) {
                qt_test_fail_at(__FILE__, __LINE__, "mutant %.*s failed the round trip", (int)len,
                                (const char *)b);
                return;
            }
        }
    }
    CHECK(ok > 1000); /* the oracle did run on many accepted mutants */
}
