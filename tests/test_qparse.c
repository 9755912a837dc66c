/*
 * test_qparse.c -- the query language front half: lexer, parser, AST,
 * time and duration literals, errors with positions and their renderings,
 * limits, regexes, time zones and the TZif helper.
 */
#include "format/qt_alloc.h"
#include "format/qt_limits.h"
#include "harness.h"
#include "query/arena.h"
#include "query/qparse.h"
#include "query/qprint.h"
#include "query/qtime.h"
#include "query/tz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOW    1794787200000000000ll /* 2026-11-16T00:00:00Z */
#define SEC    1000000000ll
#define T_1115 (1794700800 * SEC) /* 2026-11-15T00:00:00Z */
#define T_1116 (1794787200 * SEC) /* 2026-11-16T00:00:00Z */

static char printed[QT_QUERY_TEXT_MAX * 3];

static struct qt_qry *
parse(const char *text)
{
    struct qt_qry *q = NULL;
    struct qt_qry_error e;
    if (qt_qry_parse(text, strlen(text), NOW, &q, &e) != 0) {
        printf("     parse(%s): %s at %d\n", text, e.message, e.position);
        return NULL;
    }
    return q;
}

/* Parse, print and check the normal form (and that it is a fixed point). */
static bool
canon_is(const char *text, const char *want)
{
    struct qt_qry *q = parse(text);
    if (q == NULL)
        return false;
    qt_qry_print(q, printed, sizeof(printed));
    qt_qry_free(q);
    if (strcmp(printed, want) != 0) {
        printf("     %s\n  -> %s\n want %s\n", text, printed, want);
        return false;
    }
    q = parse(want);
    if (q == NULL)
        return false;
    static char again[sizeof(printed)];
    qt_qry_print(q, again, sizeof(again));
    qt_qry_free(q);
    return strcmp(again, want) == 0;
}

/* Parse must fail with `code` at byte `pos` with `msg` in the message. */
static bool
fails(const char *text, int code, int pos, const char *msg)
{
    struct qt_qry *q = (struct qt_qry *)1;
    struct qt_qry_error e;
    int rc = qt_qry_parse(text, strlen(text), NOW, &q, &e);
    if (rc == code && e.code == code && e.position == pos && q == NULL &&
        strstr(e.message, msg) != NULL)
        return true;
    printf("     %s\n     got rc %d (%s) at %d: %s\n     want %d at %d: %s\n", text, rc,
           qt_strerror(rc), e.position, e.message, code, pos, msg);
    if (rc == 0)
        qt_qry_free(q);
    return false;
}

/* Offset of the first occurrence of `needle` in `text`. */
static int
at(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    return p != NULL ? (int)(p - text) : -1000;
}

static bool
str_is(struct qt_qry_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0 && s.p[s.len] == '\0';
}

/* ---- the issue's forms, exactly as written -------------------------------- */

TEST(issue_raw_points)
{
    const char *t = "water.pressure{site=\"w0012\"} [2026-11-15T00:00:00Z, 2026-11-15T06:00:00Z)";
    struct qt_qry *q = parse(t);
    CHECK(q != NULL);
    CHECK_EQ(q->kind, QT_QRY_DATA);
    CHECK(str_is(q->sel.measurement, "water.pressure") == false);
    CHECK(str_is(q->sel.measurement, "water"));
    CHECK(str_is(q->sel.field, "pressure"));
    CHECK_EQ(q->sel.matchers_count, 1);
    CHECK(str_is(q->sel.matchers[0].key, "site"));
    CHECK_EQ(q->sel.matchers[0].op, QT_QRY_MATCH_EQ);
    CHECK(str_is(q->sel.matchers[0].value, "w0012"));
    CHECK_EQ(q->sel.matchers[0].pos, at(t, "site"));
    CHECK(q->range.bounded);
    CHECK_EQ(q->range.start.ns, T_1115);
    CHECK_EQ(q->range.end.ns, T_1115 + 6 * 3600 * SEC);
    CHECK_EQ(q->stages_count, 0);
    CHECK(q->agg == NULL && q->terminal == NULL && q->limit == 0);
    qt_qry_free(q);
    CHECK(canon_is(t, t));
}

TEST(issue_avg_max_by_hour)
{
    const char *t = "air.pm25{station=\"a0001\"} [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | "
                    "avg, max by 1h";
    struct qt_qry *q = parse(t);
    CHECK(q != NULL);
    CHECK_EQ(q->stages_count, 1);
    CHECK(q->agg == &q->stages[0]);
    const struct qt_qry_stage_agg *a = &q->agg->u.agg;
    CHECK_EQ(a->fns_count, 2);
    CHECK_EQ(a->fns[0].fn, QT_QRY_AGG_AVG);
    CHECK_EQ(a->fns[1].fn, QT_QRY_AGG_MAX);
    CHECK_EQ(a->bucket_ns, 3600 * SEC);
    CHECK_EQ(a->tags_count, 0);
    CHECK(a->tz == NULL && a->tz_name.len == 0);
    CHECK_EQ(q->agg->pos, at(t, "avg"));
    CHECK_EQ(q->range.end.ns, T_1116);
    qt_qry_free(q);
    CHECK(canon_is(t, t));
}

TEST(issue_avg_by_hour_and_district)
{
    const char *t =
        "grid.voltage [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | avg by 1h, district";
    struct qt_qry *q = parse(t);
    CHECK(q != NULL);
    const struct qt_qry_stage_agg *a = &q->agg->u.agg;
    CHECK_EQ(a->fns_count, 1);
    CHECK_EQ(a->fns[0].fn, QT_QRY_AGG_AVG);
    CHECK_EQ(a->bucket_ns, 3600 * SEC);
    CHECK_EQ(a->tags_count, 1);
    CHECK(str_is(a->tags[0], "district"));
    CHECK_EQ(q->sel.matchers_count, 0);
    qt_qry_free(q);
    CHECK(canon_is(t, t));
}

TEST(issue_where_then_count_by_station)
{
    const char *t = "air.pm25 [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | where value > 150 | "
                    "count by station";
    struct qt_qry *q = parse(t);
    CHECK(q != NULL);
    CHECK_EQ(q->stages_count, 2);
    CHECK_EQ(q->stages[0].kind, QT_QRY_STAGE_WHERE);
    CHECK_EQ(q->stages[0].u.where.op, QT_QRY_CMP_GT);
    CHECK(q->stages[0].u.where.value == 150.0);
    CHECK(q->agg == &q->stages[1]);
    CHECK_EQ(q->agg->u.agg.fns[0].fn, QT_QRY_AGG_COUNT);
    CHECK_EQ(q->agg->u.agg.bucket_ns, 0);
    CHECK(str_is(q->agg->u.agg.tags[0], "station"));
    qt_qry_free(q);
    CHECK(canon_is(t, t));
}

TEST(issue_count_sum_min_max)
{
    const char *t = "air.pm25 [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | count, sum, min, max";
    struct qt_qry *q = parse(t);
    CHECK(q != NULL);
    const struct qt_qry_stage_agg *a = &q->agg->u.agg;
    CHECK_EQ(a->fns_count, 4);
    CHECK_EQ(a->fns[0].fn, QT_QRY_AGG_COUNT);
    CHECK_EQ(a->fns[1].fn, QT_QRY_AGG_SUM);
    CHECK_EQ(a->fns[2].fn, QT_QRY_AGG_MIN);
    CHECK_EQ(a->fns[3].fn, QT_QRY_AGG_MAX);
    CHECK_EQ(a->bucket_ns, 0);
    qt_qry_free(q);
    CHECK(canon_is(t, t));
}

TEST(issue_last_without_range)
{
    const char *t = "grid.voltage{district=\"xihu\"} | last";
    struct qt_qry *q = parse(t);
    CHECK(q != NULL);
    CHECK(!q->range.bounded);
    CHECK(q->range.start.ns == INT64_MIN);
    CHECK(q->range.end.ns == INT64_MAX);
    CHECK_EQ(q->stages_count, 1);
    CHECK_EQ(q->stages[0].kind, QT_QRY_STAGE_LAST);
    CHECK(q->terminal == &q->stages[0]);
    CHECK(q->agg == NULL);
    qt_qry_free(q);
    CHECK(canon_is(t, t));
    /* `last` in a list or with `by` is the aggregation function. */
    q = parse("a.b | last, first");
    CHECK(q != NULL && q->agg != NULL && q->terminal == NULL);
    CHECK_EQ(q->agg->u.agg.fns[0].fn, QT_QRY_AGG_LAST);
    qt_qry_free(q);
    q = parse("a.b | last by station | limit 3");
    CHECK(q != NULL && q->agg != NULL && q->limit == 3);
    qt_qry_free(q);
    q = parse("a.b | last | limit 3");
    CHECK(q != NULL && q->terminal != NULL && q->limit == 3);
    qt_qry_free(q);
}

TEST(issue_episodes_and_gaps)
{
    const char *t = "air.pm25 [now-1d, now) | episodes value > 150 for 10m";
    struct qt_qry *q = parse(t);
    CHECK(q != NULL);
    CHECK_EQ(q->terminal->kind, QT_QRY_STAGE_EPISODES);
    CHECK_EQ(q->terminal->u.episodes.cond.op, QT_QRY_CMP_GT);
    CHECK(q->terminal->u.episodes.cond.value == 150.0);
    CHECK_EQ(q->terminal->u.episodes.min_ns, 600 * SEC);
    CHECK(q->range.start.relative && q->range.start.offset_ns == -86400 * SEC);
    CHECK_EQ(q->range.start.ns, NOW - 86400 * SEC);
    CHECK_EQ(q->range.end.ns, NOW);
    qt_qry_free(q);
    CHECK(canon_is(t, t));
    CHECK(canon_is("a.b | episodes value <= -3", "a.b | episodes value <= -3"));
    t = "water.level [now-7d, now) | gaps > 5m";
    q = parse(t);
    CHECK(q != NULL);
    CHECK_EQ(q->terminal->kind, QT_QRY_STAGE_GAPS);
    CHECK(!q->terminal->u.gaps.inclusive);
    CHECK_EQ(q->terminal->u.gaps.min_ns, 300 * SEC);
    qt_qry_free(q);
    CHECK(
        canon_is("water.level [now-7d, now) | gaps > 5m", "water.level [now-1w, now) | gaps > 5m"));
    CHECK(canon_is("a.b|gaps>=1h", "a.b | gaps >= 1h"));
}

TEST(whitespace_is_insignificant)
{
    const char *want = "air.pm25{station=\"a0001\"} [2026-11-15T00:00:00Z, now-6h) | avg, max by "
                       "1h | fill(prev) | limit 5";
    CHECK(canon_is("air.pm25{station=\"a0001\"}[2026-11-15T00:00:00Z,now-6h)|avg,max by 1h|fill("
                   "prev)|limit 5",
                   want));
    CHECK(canon_is(" \t\r\n air . pm25 { station = \"a0001\" }\n[ 2026-11-15T00:00:00Z , now - 6h "
                   ")\n| avg , max\tby 1h | fill ( prev ) | limit 5 \n",
                   want));
}

/* ---- selectors and matchers ------------------------------------------------ */

TEST(matcher_kinds)
{
    const char *t = "a.b{k1=\"v\", k2!=\"v\", k3=~\"x.*\", k4!~\"y|z\", k5 in (\"q\", \"p\")}";
    struct qt_qry *q = parse(t);
    CHECK(q != NULL);
    const struct qt_qry_selector *s = &q->sel;
    CHECK_EQ(s->matchers_count, 5);
    CHECK_EQ(s->matchers[0].op, QT_QRY_MATCH_EQ);
    CHECK(s->matchers[0].re == NULL);
    CHECK_EQ(s->matchers[1].op, QT_QRY_MATCH_NE);
    CHECK_EQ(s->matchers[2].op, QT_QRY_MATCH_RE);
    CHECK(str_is(s->matchers[2].value, "x.*") && s->matchers[2].re != NULL);
    CHECK_EQ(s->matchers[3].op, QT_QRY_MATCH_NRE);
    CHECK(s->matchers[3].re != NULL);
    CHECK_EQ(s->matchers[4].op, QT_QRY_MATCH_IN);
    CHECK_EQ(s->matchers[4].values_count, 2);
    CHECK(str_is(s->matchers[4].values[0], "p") && str_is(s->matchers[4].values[1], "q"));
    for (uint32_t i = 0; i < 5; i++)
        CHECK_EQ(s->matchers[i].pos, at(t, i == 0   ? "k1"
                                           : i == 1 ? "k2"
                                           : i == 2 ? "k3"
                                           : i == 3 ? "k4"
                                                    : "k5"));
    qt_qry_free(q);
    CHECK(canon_is(t, "a.b{k1=\"v\", k2!=\"v\", k3=~\"x.*\", k4!~\"y|z\", k5 in (\"p\", \"q\")}"));
}

TEST(matchers_normal_form)
{
    /* Sorted by key then op; exact duplicates dropped; in-lists sorted and
     * unique; a one-value in-list is '='; {} is no matchers. */
    CHECK(canon_is("a.b{z=\"1\", a!=\"2\", a=\"2\", z=\"1\", m in (\"c\",\"a\",\"c\",\"b\")}",
                   "a.b{a=\"2\", a!=\"2\", m in (\"a\", \"b\", \"c\"), z=\"1\"}"));
    CHECK(canon_is("a.b{k in (\"x\", \"x\")}", "a.b{k=\"x\"}"));
    CHECK(canon_is("a.b{k in (\"x\"), k=\"x\"}", "a.b{k=\"x\"}"));
    CHECK(canon_is("a.b{}", "a.b"));
    CHECK(canon_is("a.b{k=\"\"}", "a.b{k=\"\"}"));
}

TEST(names_and_strings)
{
    /* Names that are not identifiers are quoted; keywords need no quotes. */
    CHECK(canon_is("\"air quality\".\"pm2.5\"{\"owner-dept\"=\"env\"}",
                   "\"air quality\".\"pm2.5\"{\"owner-dept\"=\"env\"}"));
    CHECK(canon_is("\"air\".\"pm25\"", "air.pm25"));
    CHECK(canon_is("series.where{in in (\"a\", \"b\")} | avg by tz, by",
                   "series.where{in in (\"a\", \"b\")} | avg by tz, by"));
    CHECK(canon_is("measurements.last | last", "measurements.last | last"));
    /* Escapes: \" and \\; any other backslash stands for itself. */
    struct qt_qry *q = parse("a.b{k=\"say \\\"hi\\\" \\\\ \\d\"}");
    CHECK(q != NULL);
    CHECK(str_is(q->sel.matchers[0].value, "say \"hi\" \\ \\d"));
    qt_qry_free(q);
    CHECK(canon_is("a.b{k=\"say \\\"hi\\\" \\\\ \\d\"}", "a.b{k=\"say \\\"hi\\\" \\\\ \\\\d\"}"));
    /* UTF-8 in strings is kept as is. */
    CHECK(canon_is("a.b{district=\"西湖\"}", "a.b{district=\"西湖\"}"));
    CHECK(fails("a.b{\"\"=\"x\"}", QT_ESYNTAX, 4, "empty name"));
    CHECK(fails("a.b{k=\"x\ny\"}", QT_ESYNTAX, 8, "control character"));
    CHECK(fails("a.b{k=\"open", QT_ESYNTAX, 6, "unterminated string"));
    CHECK(fails("a.b{k=x}", QT_ESYNTAX, 6, "expected a quoted string"));
    CHECK(fails("a.b{k==\"x\"}", QT_ESYNTAX, 5, "expected '=', '!=', '=~', '!~' or 'in'"));
    CHECK(fails("a.b{k=\"x\",}", QT_ESYNTAX, 10, "expected a tag name"));
    CHECK(fails("a.b{k=\"x\" j=\"y\"}", QT_ESYNTAX, 10, "expected ',' or '}'"));
    CHECK(fails("a.b{k in ()}", QT_ESYNTAX, 10, "needs a value"));
    CHECK(fails("a.b{k in \"x\"}", QT_ESYNTAX, 9, "expected '(' after 'in'"));
    CHECK(fails("a.b{k ! \"x\"}", QT_ESYNTAX, 6, "unexpected '!'"));
    CHECK(fails("air{k=\"x\"}", QT_ESYNTAX, 3, "expected '.' and a field name"));
    CHECK(fails("air.", QT_ESYNTAX, 4, "expected a field name"));
    CHECK(fails("air.\"\"", QT_ESYNTAX, 4, "empty name"));
    CHECK(fails("9air.pm25", QT_ESYNTAX, 0, "expected a selector (measurement.field)"));
    CHECK(fails("a.b{区=\"x\"}", QT_ESYNTAX, 4, "unexpected character"));
    CHECK(fails("a\xff.b", QT_ESYNTAX, 1, "invalid UTF-8"));
    CHECK(fails("a.b{k=\"\xe8\xa5\"}", QT_ESYNTAX, 7, "invalid UTF-8"));
    CHECK(fails("a.b @", QT_ESYNTAX, 4, "unexpected character"));
    CHECK(fails("", QT_ESYNTAX, 0, "empty query"));
    CHECK(fails("  \n ", QT_ESYNTAX, 4, "empty query"));
}

TEST(regex_compile_errors_have_positions)
{
    const char *t = "a.b{site=~\"w(00\"}";
    CHECK(fails(t, QT_ESYNTAX, at(t, "\"}"), "bad regex: missing closing parenthesis"));
    t = "a.b{site!~\"ab[c\"}";
    CHECK(fails(t, QT_ESYNTAX, at(t, "\"}"), "bad regex: missing terminating ]"));
    /* The error offset maps through escapes back to the query text. */
    /* Pattern ""x{2,1}: PCRE2 reports pattern offset 7, which is query
     * offset 17 once the two \" escapes are counted. */
    t = "a.b{k=~\"\\\"\\\"x{2,1}\"}";
    CHECK(fails(t, QT_ESYNTAX, 17, "bad regex: numbers out of order"));
    struct qt_qry *q = NULL;
    t = "a.b{k=~\"x{2,1}\"}";
    CHECK(fails(t, QT_ESYNTAX, at(t, "}\""), "bad regex: numbers out of order"));
    /* Valid patterns compile anchored: the AST keeps the source pattern. */
    q = parse("a.b{k=~\"w00(1|2)\\\\d\"}");
    CHECK(q != NULL && q->sel.matchers[0].re != NULL);
    CHECK(str_is(q->sel.matchers[0].value, "w00(1|2)\\d"));
    qt_qry_free(q);
}

/* ---- time literals ------------------------------------------------------------ */

/* The resolved start of "a.b [<lit>, <far future>)". */
static bool
start_is(const char *lit, int64_t want)
{
    char t[256];
    snprintf(t, sizeof(t), "a.b [%s, 2262-01-01T00:00:00Z)", lit);
    struct qt_qry *q = parse(t);
    if (q == NULL)
        return false;
    int64_t got = q->range.start.ns;
    qt_qry_free(q);
    if (got != want)
        printf("     %s: got %lld want %lld\n", lit, (long long)got, (long long)want);
    return got == want;
}

TEST(time_literals_rfc3339)
{
    CHECK(start_is("2026-11-15T00:00:00Z", T_1115));
    CHECK(start_is("2026-11-15t00:00:00z", T_1115));
    CHECK(start_is("2026-11-15T08:00:00+08:00", T_1115));
    CHECK(start_is("2026-11-14T18:30:00-05:30", T_1115));
    CHECK(start_is("2026-11-15T00:00:00-00:00", T_1115));
    CHECK(start_is("2026-11-15T00:00:00.5Z", T_1115 + 500000000));
    CHECK(start_is("2026-11-15T00:00:00.123Z", T_1115 + 123000000));
    CHECK(start_is("2026-11-15T00:00:00.000001Z", T_1115 + 1000));
    CHECK(start_is("2026-11-15T00:00:00.123456789Z", T_1115 + 123456789));
    CHECK(start_is("2026-11-15T08:00:00.000000001+08:00", T_1115 + 1));
    CHECK(start_is("1970-01-01T00:00:00Z", 0));
    CHECK(start_is("1969-12-31T23:59:59.999999999Z", -1));
    CHECK(start_is("2024-02-29T00:00:00Z", 1709164800 * SEC));
    CHECK(start_is("1677-09-21T00:12:43.145224192Z", INT64_MIN));
    struct qt_qry *q = parse("a.b [now, 2262-04-11T23:47:16.854775807Z)");
    CHECK(q != NULL && q->range.end.ns == INT64_MAX);
    qt_qry_free(q);
    /* Printed back as UTC with the fraction trimmed. */
    CHECK(canon_is("a.b [2026-11-15T08:00:00.000000001+08:00, 2026-11-15T08:00:00.1200+08:00)",
                   "a.b [2026-11-15T00:00:00.000000001Z, 2026-11-15T00:00:00.12Z)"));
    CHECK(fails("a.b [2026-13-01T00:00:00Z, now)", QT_ESYNTAX, 10, "month must be 01..12"));
    CHECK(fails("a.b [2026-02-29T00:00:00Z, now)", QT_ESYNTAX, 13, "no such day"));
    CHECK(fails("a.b [2026-04-31T00:00:00Z, now)", QT_ESYNTAX, 13, "no such day"));
    CHECK(fails("a.b [2026-11-15T24:00:00Z, now)", QT_ESYNTAX, 16, "hour must be 00..23"));
    CHECK(fails("a.b [2026-11-15T23:60:00Z, now)", QT_ESYNTAX, 19, "minutes must be 00..59"));
    CHECK(fails("a.b [2026-12-31T23:59:60Z, now)", QT_ESYNTAX, 22, "leap seconds"));
    CHECK(fails("a.b [2026-11-15T00:00:00.1234567891Z, now)", QT_ESYNTAX, 34, "more than 9"));
    CHECK(fails("a.b [2026-11-15T00:00:00.Z, now)", QT_ESYNTAX, 25, "digits after '.'"));
    CHECK(fails("a.b [2026-11-15T00:00:00, now)", QT_ESYNTAX, 24, "expected 'Z' or a UTC offset"));
    CHECK(fails("a.b [2026-11-15T00:00:00+8:00, now)", QT_ESYNTAX, 25, "2-digit offset hours"));
    CHECK(fails("a.b [2026-11-15T00:00:00+24:00, now)", QT_ESYNTAX, 25, "offset hours"));
    CHECK(fails("a.b [2026-11-15, now)", QT_ESYNTAX, 15, "expected 'T'"));
    CHECK(fails("a.b [2026-11-15 00:00:00Z, now)", QT_ESYNTAX, 15, "expected 'T'"));
    CHECK(fails("a.b [2026-11-15T00:00:00Zjunk, now)", QT_ESYNTAX, 25, "unexpected characters"));
    CHECK(fails("a.b [2300-01-01T00:00:00Z, now)", QT_ESYNTAX, 5, "outside 1677-09-21"));
    CHECK(fails("a.b [1677-09-21T00:12:43.145224191Z, now)", QT_ESYNTAX, 5, "outside"));
}

TEST(time_literals_epoch_and_now)
{
    CHECK(start_is("1794787200s", T_1116));
    CHECK(start_is("1794787200000ms", T_1116));
    CHECK(start_is("1794787200000000us", T_1116));
    CHECK(start_is("1794787200000000000ns", T_1116));
    CHECK(start_is("0s", 0));
    CHECK(start_is("-86400s", -86400 * SEC));
    CHECK(start_is("- 1ns", -1));
    CHECK(start_is("-9223372036854775808ns", INT64_MIN));
    CHECK(start_is("now", NOW));
    CHECK(start_is("now-6h", NOW - 6 * 3600 * SEC));
    CHECK(start_is("now - 6h", NOW - 6 * 3600 * SEC));
    CHECK(start_is("now+1h", NOW + 3600 * SEC));
    CHECK(start_is("now-1h30m", NOW - 5400 * SEC));
    CHECK(start_is("now-1w", NOW - 7 * 86400 * SEC));
    CHECK(canon_is("a.b [1794787200s, 1794787200500ms)",
                   "a.b [2026-11-16T00:00:00Z, 2026-11-16T00:00:00.5Z)"));
    CHECK(canon_is("a.b [now-90s, now+0s)", "a.b [now-1m30s, now)"));
    CHECK(fails("a.b [1794787200, now)", QT_ESYNTAX, 15, "needs a unit"));
    CHECK(fails("a.b [1794787200h, now)", QT_ESYNTAX, 5, "epoch unit must be s, ms, us or ns"));
    CHECK(fails("a.b [1794787200s5ms, now)", QT_ESYNTAX, 16, "one unit"));
    CHECK(fails("a.b [1794787200sec, now)", QT_ESYNTAX, 15, "unknown unit"));
    CHECK(fails("a.b [9223372036854775808ns, now)", QT_ESYNTAX, 5, "outside"));
    CHECK(fails("a.b [9223372037s, now)", QT_ESYNTAX, 5, "outside"));
    CHECK(fails("a.b [-9223372036854775809ns, now)", QT_ESYNTAX, 6, "outside"));
    CHECK(fails("a.b [99999999999999999999999s, now)", QT_ESYNTAX, 5, "too large"));
    CHECK(fails("a.b [- now, now)", QT_ESYNTAX, 7, "expected an epoch time after '-'"));
    CHECK(fails("a.b [now-, now)", QT_ESYNTAX, 9, "a duration after now+/now-"));
    CHECK(fails("a.b [now-6, now)", QT_ESYNTAX, 9, "a duration after now+/now-"));
    CHECK(fails("a.b [now+13000w, now)", QT_ESYNTAX, 5, "time out of range"));
    CHECK(fails("a.b [yesterday, now)", QT_ESYNTAX, 5, "expected a time"));
    CHECK(fails("a.b [NOW-1h, now)", QT_ESYNTAX, 5, "keywords are lowercase: write 'now'"));
    CHECK(fails("MEASUREMENTS", QT_ESYNTAX, 0, "keywords are lowercase: write 'measurements'"));
}

TEST(time_ranges)
{
    /* [a, b] is [a, b+1ns). */
    struct qt_qry *q = parse("a.b [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z]");
    CHECK(q != NULL);
    CHECK_EQ(q->range.end.ns, T_1116 + 1);
    qt_qry_free(q);
    CHECK(canon_is("a.b [now-1h, now]", "a.b [now-1h, now+1ns)"));
    CHECK(canon_is("a.b [0s, 0s]", "a.b [1970-01-01T00:00:00Z, 1970-01-01T00:00:00.000000001Z)"));
    CHECK(fails("a.b [now, now)", QT_ESYNTAX, 4, "empty time range"));
    CHECK(fails("a.b [now, now-1s]", QT_ESYNTAX, 4, "empty time range"));
    CHECK(fails("a.b [0s, 9223372036854775807ns]", QT_ESYNTAX, 30, "time out of range"));
    CHECK(fails("a.b [now-1h now)", QT_ESYNTAX, 12, "expected ',' between the start and the end"));
    CHECK(fails("a.b (now-1h, now)", QT_ESYNTAX, 4, "expected '[', '|' or end of query"));
    CHECK(fails("a.b [now-1h, now} ", QT_ESYNTAX, 16, "expected ']' or ')'"));
    CHECK(fails("a.b | last [now-1h, now)", QT_ESYNTAX, 11, "expected '|' or end of query"));
}

/* ---- durations ----------------------------------------------------------------- */

static bool
duration_is(const char *s, int64_t want)
{
    int64_t ns = -1;
    size_t off = 99;
    if (qt_time_parse_duration(s, strlen(s), &ns, &off) != 0) {
        printf("     %s: %s at %zu\n", s, qt_err_detail(), off);
        return false;
    }
    return ns == want;
}

static bool
duration_fails(const char *s, size_t want_off, const char *msg)
{
    int64_t ns;
    size_t off = 99;
    int rc = qt_time_parse_duration(s, strlen(s), &ns, &off);
    if (rc == QT_ESYNTAX && off == want_off && strstr(qt_err_detail(), msg) != NULL)
        return true;
    printf("     %s: rc %d at %zu: %s\n", s, rc, off, qt_err_detail());
    return false;
}

TEST(durations)
{
    CHECK(duration_is("90s", 90 * SEC));
    CHECK(duration_is("15m", 900 * SEC));
    CHECK(duration_is("6h", 6 * 3600 * SEC));
    CHECK(duration_is("1d", 86400 * SEC));
    CHECK(duration_is("1w", 7 * 86400 * SEC));
    CHECK(duration_is("1h30m", 5400 * SEC));
    CHECK(duration_is("1w2d3h4m5s6ms7us8ns",
                      ((((9 * 24 + 3) * 60 + 4) * 60 + 5) * 1000ll + 6) * 1000000 + 7008));
    CHECK(duration_is("0s", 0));
    CHECK(duration_is("007m", 7 * 60 * SEC));
    CHECK(duration_is("9223372036854775807ns", INT64_MAX));
    CHECK(duration_is("15250w1d23h47m16s854ms775us807ns", INT64_MAX));
    CHECK(duration_fails("30m1h", 3, "larger to smaller"));
    CHECK(duration_fails("1h1h", 2, "larger to smaller"));
    CHECK(duration_fails("1h1.5m", 3, "missing unit"));
    CHECK(duration_fails("5", 1, "missing unit"));
    CHECK(duration_fails("5y", 1, "unknown unit"));
    CHECK(duration_fails("5H", 1, "unknown unit"));
    CHECK(duration_fails("9223372036854775808ns", 0, "longer than int64"));
    CHECK(duration_fails("15251w", 0, "longer than int64"));
    CHECK(duration_fails("", 0, "expected digits"));
    char buf[QT_TIME_TEXT_MAX];
    static const struct {
        int64_t ns;
        const char *text;
    } fmt[] = {{0, "0s"},
               {90 * SEC, "1m30s"},
               {5400 * SEC, "1h30m"},
               {14 * 86400 * SEC, "2w"},
               {86400 * SEC + 1, "1d1ns"},
               {1500000, "1ms500us"},
               {INT64_MAX, "15250w1d23h47m16s854ms775us807ns"}};
    for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
        CHECK_EQ(qt_time_format_duration(fmt[i].ns, buf, sizeof(buf)), strlen(fmt[i].text));
        CHECK(strcmp(buf, fmt[i].text) == 0);
    }
    /* Round trip on random durations. */
    uint64_t rng = qt_test_seed();
    for (int i = 0; i < 20000; i++) {
        int64_t ns = (int64_t)(qt_test_rand(&rng) >> (1 + qt_test_rand(&rng) % 63));
        int64_t back;
        size_t off;
        size_t n = qt_time_format_duration(ns, buf, sizeof(buf));
        CHECK_OK(qt_time_parse_duration(buf, n, &back, &off));
        CHECK(back == ns);
    }
    /* In queries, duration errors point into the token. */
    CHECK(fails("a.b | avg by 1h1h", QT_ESYNTAX, 15, "larger to smaller"));
    CHECK(fails("a.b | avg by 1.5h", QT_ESYNTAX, 16, "unexpected letter after a number"));
    CHECK(fails("a.b | avg by 0s", QT_ESYNTAX, 13, "longer than 0"));
    CHECK(fails("a.b | gaps > 0m", QT_ESYNTAX, 13, "longer than 0"));
}

TEST(rfc3339_round_trip_random)
{
    uint64_t rng = qt_test_seed() ^ 0x3339;
    char buf[QT_TIME_TEXT_MAX];
    for (int i = 0; i < 50000; i++) {
        int64_t ns = (int64_t)qt_test_rand(&rng);
        if (i % 3 == 0)
            ns -= ns % SEC; /* whole seconds too */
        size_t n = qt_time_format_rfc3339(ns, buf, sizeof(buf));
        CHECK(n == strlen(buf) && n < sizeof(buf));
        int64_t back;
        size_t off;
        CHECK_OK(qt_time_parse_rfc3339(buf, n, &back, &off));
        CHECK(back == ns);
    }
    for (int64_t d = -200000; d <= 200000; d += 7) {
        int64_t y;
        unsigned m, dd;
        qt_time_civil_from_days(d, &y, &m, &dd);
        CHECK(qt_time_days_from_civil(y, m, dd) == d);
        CHECK(dd >= 1 && dd <= qt_time_month_days(y, m));
    }
}

/* ---- stages ------------------------------------------------------------------- */

TEST(stage_forms)
{
    CHECK(canon_is("a.b | where value >= 1 | where value < 2 | where value <= 3 | where value == "
                   "4 | where value != 5.5",
                   "a.b | where value >= 1 | where value < 2 | where value <= 3 | where value == "
                   "4 | where value != 5.5"));
    CHECK(canon_is("a.b | where value > -0.25", "a.b | where value > -0.25"));
    CHECK(canon_is("a.b | where value > 1e3", "a.b | where value > 1000"));
    CHECK(canon_is("a.b | rate | avg by 1h", "a.b | rate | avg by 1h"));
    CHECK(canon_is("a.b | where value > 0 | delta | where value < -5 | sum by 1d, site",
                   "a.b | where value > 0 | delta | where value < -5 | sum by 1d, site"));
    CHECK(canon_is("a.b | count, sum, min, max, avg, first, last, stddev, spread, percentile(95), "
                   "percentile(99.9) by station, 15m",
                   "a.b | count, sum, min, max, avg, first, last, stddev, spread, percentile(95), "
                   "percentile(99.9) by 15m, station"));
    const char *t = "a.b | percentile(0), percentile(-0.0)";
    CHECK(fails(t, QT_ESYNTAX, at(t, "percentile(-"), "'percentile' listed twice"));
    CHECK(canon_is("a.b | avg by 1h | fill(null)", "a.b | avg by 1h | fill(null)"));
    CHECK(canon_is("a.b | avg by 1h | fill(linear) | limit 7",
                   "a.b | avg by 1h | fill(linear) | limit 7"));
    CHECK(canon_is("a.b | avg by 1h | fill(-1.5)", "a.b | avg by 1h | fill(-1.5)"));
    CHECK(canon_is("a.b | limit 1000000000", "a.b | limit 1000000000"));
    struct qt_qry *q = parse("a.b | delta | avg by 1h | fill(prev) | limit 9");
    CHECK(q != NULL);
    CHECK_EQ(q->stages_count, 4);
    CHECK(q->agg == &q->stages[1] && q->terminal == NULL && q->limit == 9);
    CHECK_EQ(q->stages[2].u.fill.kind, QT_QRY_FILL_PREV);
    qt_qry_free(q);
    char col[64];
    struct qt_qry_agg pa = {QT_QRY_AGG_PERCENTILE, 99.9}, aa = {QT_QRY_AGG_STDDEV, 0};
    CHECK_EQ(qt_qry_agg_column(&pa, col, sizeof(col)), strlen("percentile(99.9)"));
    CHECK(strcmp(col, "percentile(99.9)") == 0);
    qt_qry_agg_column(&aa, col, sizeof(col));
    CHECK(strcmp(col, "stddev") == 0);
}

TEST(stage_order_errors)
{
    const char *t = "a.b | avg by 1h | where value > 1";
    CHECK(fails(t, QT_ESYNTAX, at(t, "where"), "'where' must come before the aggregation"));
    t = "a.b | avg | rate";
    CHECK(fails(t, QT_ESYNTAX, at(t, "rate"), "'rate' must come before the aggregation"));
    t = "a.b | avg | max";
    CHECK(fails(t, QT_ESYNTAX, at(t, "max"), "only one aggregation stage"));
    t = "a.b | avg by 1h | fill(prev) | sum";
    CHECK(fails(t, QT_ESYNTAX, at(t, "sum"), "only one aggregation stage"));
    t = "a.b | avg | fill(prev)";
    CHECK(
        fails(t, QT_ESYNTAX, at(t, "fill"), "fill must follow an aggregation with a time bucket"));
    t = "a.b | avg by site | fill(0)";
    CHECK(
        fails(t, QT_ESYNTAX, at(t, "fill"), "fill must follow an aggregation with a time bucket"));
    t = "a.b | fill(0)";
    CHECK(fails(t, QT_ESYNTAX, at(t, "fill"), "fill must follow an aggregation"));
    t = "a.b | avg by 1h | fill(0) | fill(0)";
    CHECK(fails(t, QT_ESYNTAX, at(t, "fill(0) | fill") + 10, "only one fill"));
    t = "a.b | last | where value > 1";
    CHECK(fails(t, QT_ESYNTAX, at(t, "where"), "'last' must be the last stage"));
    t = "a.b | gaps > 5m | avg";
    CHECK(fails(t, QT_ESYNTAX, at(t, "avg"), "'gaps' must be the last stage"));
    t = "a.b | episodes value > 1 | last";
    CHECK(fails(t, QT_ESYNTAX, at(t, "last"), "'episodes' must be the last stage"));
    t = "a.b | avg by 1h | last";
    CHECK(fails(t, QT_ESYNTAX, at(t, "last"), "'last' cannot follow an aggregation"));
    t = "a.b | avg by 1h | gaps > 1m";
    CHECK(fails(t, QT_ESYNTAX, at(t, "gaps"), "'gaps' cannot follow an aggregation"));
    t = "a.b | limit 5 | where value > 1";
    CHECK(fails(t, QT_ESYNTAX, at(t, "where"), "limit must be the last stage"));
    t = "a.b | limit 5 | limit 5";
    CHECK(fails(t, QT_ESYNTAX, 16, "limit must be the last stage"));
    t = "a.b | rate | delta";
    CHECK(fails(t, QT_ESYNTAX, at(t, "delta"), "only one rate or delta"));
    t = "a.b | delta | where value > 0 | delta";
    CHECK(fails(t, QT_ESYNTAX, 32, "only one rate or delta"));
    t = "measurements | where value > 1";
    CHECK(fails(t, QT_ESYNTAX, at(t, "where"), "catalog queries take only '| limit N'"));
    t = "series a.b | last";
    CHECK(fails(t, QT_ESYNTAX, at(t, "last"), "catalog queries take only"));
}

TEST(stage_syntax_errors)
{
    CHECK(fails("a.b | ", QT_ESYNTAX, 6, "expected a stage after '|'"));
    CHECK(fails("a.b | | last", QT_ESYNTAX, 6, "expected a stage after '|'"));
    CHECK(fails("a.b | mean by 1h", QT_ESYNTAX, 6, "unknown stage 'mean'"));
    CHECK(fails("a.b | WHERE value > 1", QT_ESYNTAX, 6, "keywords are lowercase: write 'where'"));
    CHECK(fails("a.b | avg, Max", QT_ESYNTAX, 11, "keywords are lowercase: write 'max'"));
    CHECK(fails("a.b | avg, mean", QT_ESYNTAX, 11, "expected an aggregation"));
    CHECK(fails("a.b | avg, avg", QT_ESYNTAX, 11, "'avg' listed twice"));
    CHECK(fails("a.b | avg by", QT_ESYNTAX, 12, "a duration or a tag name after 'by'"));
    CHECK(fails("a.b | avg by 1h, 2h", QT_ESYNTAX, 17, "only one time bucket"));
    CHECK(fails("a.b | avg by site, site", QT_ESYNTAX, 19, "listed twice after 'by'"));
    CHECK(fails("a.b | avg by 1h tz", QT_ESYNTAX, 18, "zone name in quotes"));
    CHECK(fails("a.b | percentile", QT_ESYNTAX, 16, "'(' after percentile"));
    CHECK(fails("a.b | percentile(101)", QT_ESYNTAX, 17, "between 0 and 100"));
    CHECK(fails("a.b | percentile(-1)", QT_ESYNTAX, 17, "between 0 and 100"));
    CHECK(fails("a.b | percentile(50", QT_ESYNTAX, 19, "expected ')'"));
    CHECK(fails("a.b | where value = 1", QT_ESYNTAX, 18, "use '==' to compare"));
    CHECK(fails("a.b | where value ~ 1", QT_ESYNTAX, 18, "unexpected character"));
    CHECK(fails("a.b | where v > 1", QT_ESYNTAX, 12, "expected 'value' after 'where'"));
    CHECK(fails("a.b | where value > x", QT_ESYNTAX, 20, "a number to compare with"));
    CHECK(fails("a.b | where value > 1e999", QT_ESYNTAX, 20, "number out of range"));
    CHECK(fails("a.b | where value > 1.", QT_ESYNTAX, 21, "unexpected '.' after a number"));
    CHECK(fails("a.b | avg by 1h | fill(zero)", QT_ESYNTAX, 23, "null, prev, linear or a number"));
    CHECK(fails("a.b | avg by 1h | fill prev", QT_ESYNTAX, 23, "'(' after fill"));
    CHECK(fails("a.b | limit", QT_ESYNTAX, 11, "row count after limit"));
    CHECK(fails("a.b | limit 0", QT_ESYNTAX, 12, "at least 1"));
    CHECK(fails("a.b | limit 2.5", QT_ESYNTAX, 12, "whole number"));
    CHECK(fails("a.b | limit -1", QT_ESYNTAX, 12, "row count after limit"));
    CHECK(fails("a.b | limit 1000000001", QT_ELIMIT, 12, "at most 1000000000"));
    CHECK(fails("a.b | limit 99999999999999999999999", QT_ELIMIT, 12, "at most"));
    CHECK(fails("a.b | episodes value > 1 for", QT_ESYNTAX, 28, "a duration after 'for'"));
    CHECK(fails("a.b | episodes > 1", QT_ESYNTAX, 15, "expected 'value' after 'episodes'"));
    CHECK(fails("a.b | gaps 5m", QT_ESYNTAX, 11, "expected '>' or '>='"));
    CHECK(fails("a.b | gaps < 5m", QT_ESYNTAX, 11, "expected '>' or '>='"));
    CHECK(fails("a.b | last 5", QT_ESYNTAX, 11, "expected '|' or end of query"));
    CHECK(fails("a.b | rate now", QT_ESYNTAX, 11, "expected '|' or end of query"));
}

TEST(catalog_queries)
{
    struct qt_qry *q = parse("measurements");
    CHECK(q != NULL && q->kind == QT_QRY_MEASUREMENTS && q->sel.measurement.len == 0);
    qt_qry_free(q);
    q = parse("values district in air{city=\"hz\"} | limit 20");
    CHECK(q != NULL && q->kind == QT_QRY_VALUES);
    CHECK(str_is(q->tag_key, "district") && str_is(q->sel.measurement, "air"));
    CHECK(q->sel.field.len == 0 && q->sel.matchers_count == 1 && q->limit == 20);
    CHECK(!q->range.bounded);
    qt_qry_free(q);
    q = parse("series air.pm25{district=\"xihu\"}");
    CHECK(q != NULL && q->kind == QT_QRY_SERIES);
    CHECK(str_is(q->sel.measurement, "air") && str_is(q->sel.field, "pm25"));
    qt_qry_free(q);
    CHECK(canon_is("measurements{district=\"xihu\"}", "measurements {district=\"xihu\"}"));
    CHECK(canon_is("measurements {}", "measurements"));
    CHECK(canon_is("fields air", "fields air"));
    CHECK(canon_is("fields", "fields"));
    CHECK(canon_is("fields {site=\"w1\"}", "fields {site=\"w1\"}"));
    CHECK(canon_is("tags air{district=\"xihu\"}", "tags air{district=\"xihu\"}"));
    CHECK(canon_is("tags air.pm25", "tags air.pm25"));
    CHECK(canon_is("values district", "values district"));
    CHECK(canon_is("values in in in", "values in in in"));
    CHECK(canon_is("values \"owner dept\" in {site=~\"w.*\"}",
                   "values \"owner dept\" in {site=~\"w.*\"}"));
    CHECK(canon_is("series", "series"));
    CHECK(canon_is("series{district=\"xihu\"}|limit 5", "series {district=\"xihu\"} | limit 5"));
    CHECK(canon_is("series series.series", "series series.series"));
    CHECK(fails("fields air.pm25", QT_ESYNTAX, 10, "fields lists the fields of a measurement"));
    CHECK(fails("values", QT_ESYNTAX, 6, "a tag name after values"));
    CHECK(fails("values district in", QT_ESYNTAX, 18, "a measurement or '{' after 'in'"));
    CHECK(fails("series air [now-1h, now)", QT_ESYNTAX, 11, "expected '|' or end of query"));
    CHECK(fails("measurements air", QT_ESYNTAX, 13, "expected '|' or end of query"));
}

/* ---- error renderings ------------------------------------------------------------- */

static const char *
caret(const char *text)
{
    static char buf[1024];
    struct qt_qry *q = NULL;
    struct qt_qry_error e;
    if (qt_qry_parse(text, strlen(text), NOW, &q, &e) == 0) {
        qt_qry_free(q);
        return "(parsed)";
    }
    size_t n = qt_qry_error_render_caret(&e, text, strlen(text), buf, sizeof(buf));
    return n == strlen(buf) ? buf : "(length mismatch)";
}

static bool
caret_is(const char *text, const char *want)
{
    const char *got = caret(text);
    if (strcmp(got, want) == 0)
        return true;
    printf("     got:\n%s\n     want:\n%s\n", got, want);
    return false;
}

TEST(caret_rendering)
{
    /* The issue's example, byte for byte. */
    CHECK(caret_is("air.pm25 [now-1h, now", "error: expected ']' or ')'\n"
                                            "  air.pm25 [now-1h, now\n"
                                            "                       ^"));
    CHECK(caret_is("air.pm25 | avg by 1h | where value > 150",
                   "error: 'where' must come before the aggregation\n"
                   "  air.pm25 | avg by 1h | where value > 150\n"
                   "                         ^"));
    /* Multi-line: the line of the fault, its number; tabs show as spaces. */
    CHECK(caret_is("air.pm25\n\t| avg by 1h\n\t| limit x",
                   "error: expected a row count after limit (line 3)\n"
                   "   | limit x\n"
                   "           ^"));
    /* Wide characters take two columns. */
    CHECK(caret_is("a.b{\"区\"=\"西湖\" x}", "error: expected ',' or '}'\n"
                                             "  a.b{\"区\"=\"西湖\" x}\n"
                                             "                  ^"));
    /* Long lines are cut around the fault. */
    char text[600];
    memset(text, 0, sizeof(text));
    strcpy(text, "a.b{k in (");
    for (int i = 0; i < 40; i++)
        strcat(text, "\"abcdefgh\", ");
    strcat(text, "\"z\" \"y\", \"abcdefghij\", \"abcdefghij\", \"abcdefghij\", \"abcdefghij\")}");
    const char *r = caret(text);
    CHECK(strncmp(r, "error: expected ',' or ')'\n  ...", 32) == 0);
    const char *line2 = strchr(r, '\n') + 1, *line3 = strchr(line2, '\n') + 1;
    CHECK(line3 - line2 < 120);
    CHECK(strstr(line2, "...\n") != NULL);
    CHECK(line2[strchr(line3, '^') - line3] == '"'); /* the caret is under the fault */
    /* No position: just the message. */
    struct qt_qry_error e = {QT_ENOMEM, -1, "out of memory"};
    char buf[64];
    CHECK_EQ(qt_qry_error_render_caret(&e, "a.b", 3, buf, sizeof(buf)), 20);
    CHECK(strcmp(buf, "error: out of memory") == 0);
    /* snprintf semantics: truncated but terminated, full length returned. */
    struct qt_qry_error e2 = {QT_ESYNTAX, 3, "expected ']' or ')'"};
    char small[10];
    size_t full = qt_qry_error_render_caret(&e2, "a.b", 3, NULL, 0);
    CHECK_EQ(qt_qry_error_render_caret(&e2, "a.b", 3, small, sizeof(small)), full);
    CHECK(strcmp(small, "error: ex") == 0);
    /* Invalid bytes render as '?' (the caret still lines up). */
    CHECK(caret_is("a.\xff", "error: invalid UTF-8\n  a.?\n    ^"));
}

TEST(json_rendering)
{
    struct qt_qry *q = NULL;
    struct qt_qry_error e;
    const char *t = "a.b{k=\"x\" | where \"v\"";
    CHECK_RC(qt_qry_parse(t, strlen(t), NOW, &q, &e), QT_ESYNTAX);
    char buf[256];
    size_t n = qt_qry_error_json(&e, buf, sizeof(buf));
    CHECK_EQ(n, strlen(buf));
    CHECK(strcmp(buf, "{\"error\": \"expected ',' or '}'\", \"position\": 10}") == 0);
    CHECK_RC(qt_qry_parse("a.b | avg by 1d tz \"No/Zone\"", 28, NOW, &q, &e), QT_ESYNTAX);
    qt_qry_error_json(&e, buf, sizeof(buf));
    CHECK(strcmp(buf, "{\"error\": \"unknown time zone \\\"No/Zone\\\"\", \"position\": 19}") == 0);
    struct qt_qry_error odd = {QT_ENOMEM, -1, "a\\b\x01"};
    qt_qry_error_json(&odd, buf, sizeof(buf));
    CHECK(strcmp(buf, "{\"error\": \"a\\\\b\\u0001\", \"position\": null}") == 0);
    /* Echoed query text stays printable ASCII in messages. */
    CHECK_RC(qt_qry_parse("a.b | avg by 西, 西", strlen("a.b | avg by 西, 西"), NOW, &q, &e),
             QT_ESYNTAX);
    for (const char *c = e.message; *c; c++)
        CHECK(*c >= 0x20 && *c < 0x7f);
}

/* ---- limits --------------------------------------------------------------------------- */

/* A query of n bytes: a selector padded with spaces. */
static char *
padded_query(size_t n)
{
    char *t = malloc(n + 1);
    memset(t, ' ', n);
    memcpy(t, "a.b", 3);
    t[n] = '\0';
    return t;
}

TEST(limit_text_length)
{
    struct qt_qry *q = NULL;
    struct qt_qry_error e;
    char *t = padded_query(QT_QUERY_TEXT_MAX);
    CHECK_OK(qt_qry_parse(t, QT_QUERY_TEXT_MAX, NOW, &q, &e));
    qt_qry_free(q);
    free(t);
    t = padded_query(QT_QUERY_TEXT_MAX + 1);
    CHECK_RC(qt_qry_parse(t, QT_QUERY_TEXT_MAX + 1, NOW, &q, &e), QT_ELIMIT);
    CHECK(e.position == -1 && strstr(e.message, "longer than 16384 bytes") != NULL);
    CHECK(q == NULL);
    free(t);
}

/* "a.b{" + n matchers/in values / ... built with a pattern. */
static char bigq[QT_QUERY_TEXT_MAX + 1];

TEST(limit_counts)
{
    /* Matchers: 32 fine, 33 not (position: the 33rd). */
    strcpy(bigq, "a.b{");
    for (unsigned i = 0; i < QT_QUERY_MATCHERS_MAX; i++)
        sprintf(bigq + strlen(bigq), "%sk%u=\"v\"", i ? ", " : "", i);
    strcat(bigq, "}");
    struct qt_qry *q = parse(bigq);
    CHECK(q != NULL && q->sel.matchers_count == QT_QUERY_MATCHERS_MAX);
    qt_qry_free(q);
    char *end = bigq + strlen(bigq) - 1;
    strcpy(end, ", kx=\"v\"}");
    CHECK(fails(bigq, QT_ELIMIT, at(bigq, "kx"), "more than 32 tag matchers"));
    /* In-list values. */
    strcpy(bigq, "a.b{k in (");
    for (unsigned i = 0; i < QT_QUERY_IN_MAX; i++)
        sprintf(bigq + strlen(bigq), "%s\"%u\"", i ? "," : "", i);
    strcat(bigq, ")}");
    q = parse(bigq);
    CHECK(q != NULL && q->sel.matchers[0].values_count == QT_QUERY_IN_MAX);
    qt_qry_free(q);
    end = bigq + strlen(bigq) - 2;
    strcpy(end, ",\"x\")}");
    CHECK(fails(bigq, QT_ELIMIT, at(bigq, "\"x\""), "more than 1024 values"));
    /* Stages. */
    strcpy(bigq, "a.b");
    for (unsigned i = 0; i < QT_QUERY_STAGES_MAX; i++)
        strcat(bigq, " | where value > 0");
    q = parse(bigq);
    CHECK(q != NULL && q->stages_count == QT_QUERY_STAGES_MAX);
    qt_qry_free(q);
    strcat(bigq, " | limit 1");
    CHECK(fails(bigq, QT_ELIMIT, at(bigq, "limit"), "more than 16 stages"));
    /* Aggregations: 10 functions + 6 percentiles, then one more. */
    strcpy(bigq, "a.b | count, sum, min, max, avg, first, last, stddev, spread");
    for (int i = 0; i < 7; i++)
        sprintf(bigq + strlen(bigq), ", percentile(%d)", i);
    q = parse(bigq);
    CHECK(q != NULL && q->agg->u.agg.fns_count == QT_QUERY_AGGS_MAX);
    qt_qry_free(q);
    strcat(bigq, ", percentile(50)");
    CHECK(fails(bigq, QT_ELIMIT, at(bigq, "percentile(50)"), "more than 16 aggregations"));
    /* Group-by tags. */
    strcpy(bigq, "a.b | count by ");
    for (unsigned i = 0; i <= QT_QUERY_GROUP_TAGS_MAX; i++)
        sprintf(bigq + strlen(bigq), "%st%u", i ? ", " : "", i);
    CHECK(fails(bigq, QT_ELIMIT, at(bigq, "t64"), "more than 64 tags after 'by'"));
}

TEST(limit_regex_names_numbers_buckets)
{
    strcpy(bigq, "a.b{k=~\"");
    memset(bigq + 8, 'x', QT_QUERY_REGEX_MAX);
    strcpy(bigq + 8 + QT_QUERY_REGEX_MAX, "\"}");
    struct qt_qry *q = parse(bigq);
    CHECK(q != NULL);
    qt_qry_free(q);
    strcpy(bigq + 8 + QT_QUERY_REGEX_MAX, "y\"}");
    CHECK(fails(bigq, QT_ELIMIT, 7, "regex longer than 1024 bytes"));
    /* Names and strings: at most a whole series key. */
    strcpy(bigq, "a.");
    memset(bigq + 2, 'f', QT_SERIES_KEY_MAX + 1);
    bigq[2 + QT_SERIES_KEY_MAX + 1] = '\0';
    CHECK(fails(bigq, QT_ELIMIT, 2, "name longer than 4096 bytes"));
    strcpy(bigq, "a.b{k=\"");
    memset(bigq + 7, 'v', QT_SERIES_KEY_MAX + 1);
    strcpy(bigq + 7 + QT_SERIES_KEY_MAX + 1, "\"}");
    CHECK(fails(bigq, QT_ELIMIT, 6, "string longer than 4096 bytes"));
    /* Number literals. */
    strcpy(bigq, "a.b | where value > ");
    memset(bigq + 20, '1', QT_QUERY_NUMBER_MAX + 1);
    bigq[20 + QT_QUERY_NUMBER_MAX + 1] = '\0';
    CHECK(fails(bigq, QT_ESYNTAX, 20, "number literal too long"));
    /* Buckets over a bounded range. */
    q = parse("a.b [now-1w, now) | avg by 1s");
    CHECK(q != NULL);
    qt_qry_free(q);
    CHECK(fails("a.b [now-2w, now) | avg by 1s", QT_ELIMIT, 27, "more than 1048576 buckets"));
    q = parse("a.b | avg by 1ns"); /* unbounded: the executor checks */
    CHECK(q != NULL);
    qt_qry_free(q);
    CHECK(fails("a.b | avg by 36501d tz \"UTC\"", QT_ELIMIT, 13, "at most 36500 days"));
}

TEST(limit_depth_guard)
{
    /* The grammar is shallow; the guard is shown by lowering the limit. */
    const char *t = "a.b{k=\"v\"} [now-1h, now) | avg by 1h | fill(prev) | limit 5";
    struct qt_qry_opts opts = {0};
    struct qt_qry *q = NULL;
    struct qt_qry_error e;
    uint32_t needed = 0;
    for (uint32_t d = 1; d <= QT_QUERY_DEPTH_MAX && needed == 0; d++) {
        opts.depth_max = d;
        int rc = qt_qry_parse_opts(t, strlen(t), NOW, &opts, &q, &e);
        if (rc == 0) {
            needed = d;
            qt_qry_free(q);
        } else {
            CHECK_EQ(rc, QT_ELIMIT);
            CHECK(strstr(e.message, "nested deeper than") != NULL);
            CHECK(e.position >= 0 && q == NULL);
        }
    }
    CHECK(needed >= 3 && needed < QT_QUERY_DEPTH_MAX / 2);
}

/* ---- time zones in queries ------------------------------------------------------------- */

TEST(tz_in_queries)
{
    const char *t = "meter.kwh [2026-11-01T00:00:00+08:00, 2026-12-01T00:00:00+08:00) | delta | "
                    "sum by 1d tz \"Asia/Shanghai\", district";
    struct qt_qry *q = parse(t);
    CHECK(q != NULL);
    const struct qt_qry_stage_agg *a = &q->agg->u.agg;
    CHECK(str_is(a->tz_name, "Asia/Shanghai") && a->tz != NULL);
    CHECK_EQ(a->bucket_days, 1);
    CHECK_EQ(qt_tz_offset(a->tz, NOW), 8 * 3600);
    qt_qry_free(q);
    CHECK(canon_is("a.b | avg by 7d tz \"Europe/Berlin\"", "a.b | avg by 1w tz \"Europe/Berlin\""));
    CHECK(canon_is("a.b | avg by site, 2d tz \"UTC\"", "a.b | avg by 2d tz \"UTC\", site"));
    CHECK(canon_is("a.b | avg by 1d tz \"Etc/GMT+5\"", "a.b | avg by 1d tz \"Etc/GMT+5\""));
    CHECK(fails("a.b | avg by 1d tz \"Asia/Shangai\"", QT_ESYNTAX, 19,
                "unknown time zone \"Asia/Shangai\""));
    CHECK(fails("a.b | avg by 1d tz \"Asia\"", QT_ESYNTAX, 19, "unknown time zone"));
    CHECK(fails("a.b | avg by 1d tz \"../../etc/passwd\"", QT_ESYNTAX, 19, "not a time zone name"));
    CHECK(fails("a.b | avg by 1d tz \"/etc/localtime\"", QT_ESYNTAX, 19, "not a time zone name"));
    CHECK(fails("a.b | avg by 1d tz \"Asia//Shanghai\"", QT_ESYNTAX, 19, "not a time zone name"));
    CHECK(fails("a.b | avg by 1d tz \"Asia/\"", QT_ESYNTAX, 19, "not a time zone name"));
    CHECK(fails("a.b | avg by 1d tz \"zone.tab\"", QT_ESYNTAX, 19, "not a time zone name"));
    CHECK(fails("a.b | avg by 1d tz \"localtime\"", QT_ESYNTAX, 19, "not a time zone name"));
    CHECK(fails("a.b | avg by 1d tz \"\"", QT_ESYNTAX, 19, "not a time zone name"));
    CHECK(fails("a.b | avg by 1d tz \"leapseconds\"", QT_EMAGIC, 19, "not usable: tzif: no TZif"));
    CHECK(fails("a.b | avg by 1d tz \"right/UTC\"", QT_EINVAL, 19, "leap-second zones"));
    CHECK(fails("a.b | avg by 1h tz \"UTC\"", QT_ESYNTAX, 13, "whole days"));
    CHECK(fails("a.b | avg by 1d1h tz \"UTC\"", QT_ESYNTAX, 13, "whole days"));
    CHECK(fails("a.b | avg by 1d tz UTC", QT_ESYNTAX, 19, "zone name in quotes"));
}

/* Write bytes to dir/name. */
static bool
write_file(const char *dir, const char *name, const void *buf, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return false;
    bool ok = fwrite(buf, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

TEST(tz_custom_zoneinfo_dir)
{
    /* opts.zoneinfo_dir points the parser at another directory. */
    const char *dir = qt_test_dir();
    struct qt_tz *sh = NULL;
    CHECK_OK(qt_tz_load(NULL, "Asia/Shanghai", 13, &sh));
    static uint8_t buf[8192];
    size_t n;
    CHECK_OK(qt_tz_encode(sh, buf, sizeof(buf), &n));
    qt_tz_free(sh);
    CHECK(write_file(dir, "Home", buf, n));
    CHECK(write_file(dir, "Short", buf, n - 5));
    struct qt_qry_opts opts = {.zoneinfo_dir = dir};
    struct qt_qry *q = NULL;
    struct qt_qry_error e;
    const char *t = "a.b | avg by 1d tz \"Home\"";
    CHECK_OK(qt_qry_parse_opts(t, strlen(t), NOW, &opts, &q, &e));
    CHECK_EQ(qt_tz_offset(q->agg->u.agg.tz, NOW), 28800);
    qt_qry_free(q);
    t = "a.b | avg by 1d tz \"Short\"";
    CHECK_RC(qt_qry_parse_opts(t, strlen(t), NOW, &opts, &q, &e), QT_ETRUNC);
    CHECK(e.position == 19 && strstr(e.message, "not usable") != NULL);
    t = "a.b | avg by 1d tz \"Asia/Shanghai\""; /* not in this directory */
    CHECK_RC(qt_qry_parse_opts(t, strlen(t), NOW, &opts, &q, &e), QT_ESYNTAX);
    CHECK(strstr(e.message, "unknown time zone") != NULL);
}

/* ---- the TZif helper ------------------------------------------------------------------- */

static bool
day_is(const struct qt_tz *tz, int64_t t_s, uint32_t days, int64_t start_s, int64_t end_s)
{
    int64_t s, e;
    qt_tz_bucket(tz, t_s * SEC, days, &s, &e);
    if (s == start_s * SEC && e == end_s * SEC)
        return true;
    printf("     t=%lld: [%lld, %lld) want [%lld, %lld)\n", (long long)t_s, (long long)(s / SEC),
           (long long)(e / SEC), (long long)start_s, (long long)end_s);
    return false;
}

TEST(tzif_shanghai_day_boundaries)
{
    struct qt_tz *tz = NULL;
    CHECK_OK(qt_tz_load(NULL, "Asia/Shanghai", 13, &tz));
    /* 2026-11-15 local = [2026-11-14T16:00Z, 2026-11-15T16:00Z). */
    CHECK(day_is(tz, 1794672000, 1, 1794672000, 1794758400));
    CHECK(day_is(tz, 1794700800, 1, 1794672000, 1794758400));
    CHECK(day_is(tz, 1794758399, 1, 1794672000, 1794758400));
    CHECK(day_is(tz, 1794758400, 1, 1794758400, 1794844800));
    CHECK_EQ(qt_tz_offset(tz, 1794700800 * SEC), 28800);
    /* No DST since 1991: every day is 24h, through and past 2037. */
    for (int64_t t = 694224000; t < 4102444800; t += 86400 * 37 + 3601) {
        int64_t s, e;
        qt_tz_bucket(tz, t * SEC, 1, &s, &e);
        CHECK(e - s == 86400 * SEC);
        CHECK((s / SEC + 28800) % 86400 == 0);
        CHECK_EQ(qt_tz_offset(tz, t * SEC), 28800);
    }
    /* China's DST of 1986-1991: a 23h and a 25h day in 1988. */
    CHECK(day_is(tz, 577250000, 1, 577209600, 577292400));
    CHECK(day_is(tz, 589950000, 1, 589906800, 589996800));
    /* 7-day buckets start on local Thursdays (1970-01-01 was one). */
    CHECK(day_is(tz, 1794700800, 7, 1794412800, 1795017600));
    qt_tz_free(tz);
}

TEST(tzif_berlin_dst_day_boundaries)
{
    struct qt_tz *tz = NULL;
    CHECK_OK(qt_tz_load(NULL, "Europe/Berlin", 13, &tz));
    CHECK(qt_tz_transitions(tz) > 100);
    /* 2026-03-29: clocks go 02:00 CET -> 03:00 CEST, a 23h day. */
    CHECK(day_is(tz, 1774780000, 1, 1774738800, 1774821600));
    CHECK_EQ(qt_tz_offset(tz, 1774738800 * SEC), 3600);
    CHECK_EQ(qt_tz_offset(tz, 1774821600 * SEC), 7200);
    /* 2026-10-25: 03:00 CEST -> 02:00 CET, a 25h day. */
    CHECK(day_is(tz, 1792929000, 1, 1792879200, 1792969200));
    /* 2026-11-15: an ordinary CET day. */
    CHECK(day_is(tz, 1794700800, 1, 1794697200, 1794783600));
    /* 2100 is past the listed transitions: the footer rule applies. */
    CHECK(day_is(tz, 4109900000, 1, 4109871600, 4109954400));
    CHECK(day_is(tz, 4128650000, 1, 4128616800, 4128706800));
    /* Buckets tile: each ends where the next starts. */
    int64_t s, e, prev_end = 0;
    for (int64_t t = 1767222000; t < 1798758000; t = e / SEC) {
        qt_tz_bucket(tz, t * SEC, 1, &s, &e);
        CHECK(prev_end == 0 || s == prev_end);
        CHECK(e - s == 23 * 3600 * SEC || e - s == 24 * 3600 * SEC || e - s == 25 * 3600 * SEC);
        prev_end = e;
    }
    qt_tz_free(tz);
}

/* Offsets and day starts agree with glibc for random instants (the test is
 * single-threaded, so it may set TZ; the library never does). */
TEST(tzif_agrees_with_libc)
{
    static const char *const zones[] = {
        "Asia/Shanghai",     "Europe/Berlin",   "America/New_York", "Australia/Lord_Howe",
        "America/Sao_Paulo", "Pacific/Chatham", "Asia/Kolkata",     "Africa/Casablanca",
        "America/Nuuk",      "Pacific/Apia",    "Europe/Dublin",    "UTC",
    };
    uint64_t rng = qt_test_seed() ^ 0x7a;
    char *old = getenv("TZ") != NULL ? strdup(getenv("TZ")) : NULL;
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        struct qt_tz *tz = NULL;
        CHECK_OK(qt_tz_load(NULL, zones[z], strlen(zones[z]), &tz));
        char env[64];
        snprintf(env, sizeof(env), ":%s", zones[z]);
        setenv("TZ", env, 1);
        tzset();
        for (int i = 0; i < 3000; i++) {
            /* 1901 .. 2260 */
            int64_t t = -2177452800 + (int64_t)(qt_test_rand(&rng) % 11377452800ull);
            time_t tt = (time_t)t;
            struct tm tm;
            localtime_r(&tt, &tm);
            CHECK_EQ(qt_tz_offset(tz, t * SEC), tm.tm_gmtoff);
            int64_t s, e;
            qt_tz_bucket(tz, t * SEC, 1, &s, &e);
            CHECK(s <= t * SEC && t * SEC < e);
            time_t ss = (time_t)(s / SEC), before = ss - 1;
            struct tm a, b;
            localtime_r(&ss, &a);
            localtime_r(&before, &b);
            CHECK(a.tm_mday != b.tm_mday); /* s is the first second of a local day */
        }
        qt_tz_free(tz);
    }
    if (old != NULL)
        setenv("TZ", old, 1);
    else
        unsetenv("TZ");
    tzset();
    free(old);
}

static void
put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* A TZif v2 file: type 0 = initial offset, transition i -> type i+1. */
static size_t
make_tzif(uint8_t *out, const int64_t *at, const int32_t *off, uint32_t n, int32_t initial,
          const char *footer)
{
    uint8_t *p = out;
    memset(p, 0, 44 + 7);
    memcpy(p, "TZif2", 5);
    put32(p + 36, 1);
    put32(p + 40, 1);
    p += 51;
    memset(p, 0, 44);
    memcpy(p, "TZif2", 5);
    put32(p + 32, n);
    put32(p + 36, n + 1);
    put32(p + 40, 1);
    p += 44;
    for (uint32_t i = 0; i < n; i++, p += 8) {
        put32(p, (uint32_t)((uint64_t)at[i] >> 32));
        put32(p + 4, (uint32_t)at[i]);
    }
    for (uint32_t i = 0; i < n; i++)
        *p++ = (uint8_t)(i + 1);
    for (uint32_t i = 0; i <= n; i++, p += 6) {
        put32(p, (uint32_t)(i == 0 ? initial : off[i - 1]));
        p[4] = 0, p[5] = 0;
    }
    *p++ = 0;
    *p++ = '\n';
    memcpy(p, footer, strlen(footer));
    p += strlen(footer);
    *p++ = '\n';
    return (size_t)(p - out);
}

static int
parse_footer(const char *footer, struct qt_tz **tz)
{
    uint8_t buf[512];
    size_t n = make_tzif(buf, NULL, NULL, 0, 0, footer);
    *tz = NULL;
    return qt_tz_parse(buf, n, tz);
}

/* Offset at a UTC civil time under a footer-only zone. */
static int32_t
off_at(const struct qt_tz *tz, int64_t y, unsigned m, unsigned d, int h)
{
    return qt_tz_offset(tz, (qt_time_days_from_civil(y, m, d) * 86400 + h * 3600) * SEC);
}

TEST(tzif_footer_rules)
{
    struct qt_tz *tz;
    CHECK_OK(parse_footer("CET-1CEST,M3.5.0,M10.5.0/3", &tz));
    CHECK_EQ(off_at(tz, 2026, 1, 10, 0), 3600);
    CHECK_EQ(off_at(tz, 2026, 7, 10, 0), 7200);
    CHECK_EQ(off_at(tz, 2026, 3, 29, 0), 3600);  /* 01:00 CET */
    CHECK_EQ(off_at(tz, 2026, 3, 29, 1), 7200);  /* 01:00Z = 03:00 CEST */
    CHECK_EQ(off_at(tz, 2026, 10, 25, 0), 7200); /* 02:00 CEST */
    CHECK_EQ(off_at(tz, 2026, 10, 25, 1), 3600); /* 01:00Z = 02:00 CET */
    qt_tz_free(tz);
    /* Southern hemisphere: DST spans the new year. */
    CHECK_OK(parse_footer("AEST-10AEDT,M10.1.0,M4.1.0/3", &tz));
    CHECK_EQ(off_at(tz, 2026, 1, 10, 0), 39600);
    CHECK_EQ(off_at(tz, 2026, 7, 10, 0), 36000);
    qt_tz_free(tz);
    /* Quoted names, minutes, Jn and n dates, negative and >24h times. */
    CHECK_OK(parse_footer("<+0545>-5:45", &tz));
    CHECK_EQ(off_at(tz, 2026, 6, 1, 0), 20700);
    qt_tz_free(tz);
    CHECK_OK(parse_footer("<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", &tz));
    CHECK_EQ(off_at(tz, 2026, 7, 1, 0), -7200);
    CHECK_EQ(off_at(tz, 2026, 12, 1, 0), -10800);
    qt_tz_free(tz);
    CHECK_OK(parse_footer("XST-2XDT,J60/0,300/167", &tz));
    CHECK_EQ(off_at(tz, 2027, 3, 1, 12), 10800); /* J60 is always March 1 */
    CHECK_EQ(off_at(tz, 2027, 2, 28, 12), 7200);
    qt_tz_free(tz);
    /* All-year DST (RFC 8536 3.3.1). */
    CHECK_OK(parse_footer("EST5EDT,0/0,J365/25", &tz));
    for (unsigned m = 1; m <= 12; m++)
        CHECK_EQ(off_at(tz, 2030, m, 1, 12), -14400);
    qt_tz_free(tz);
    static const char *const bad[] = {
        "CET-1CEST",
        "CE-1",
        "CET",
        "CET-25",
        "CET-1CEST,M13.1.0,M10.5.0",
        "CET-1CEST,M3.6.0,M10.5.0",
        "CET-1CEST,J0,J365",
        "CET-1CEST,M3.5.0",
        "<AB>1",
        "CET-1CEST,M3.5.0/168,M10.5.0",
        "CET-1CEST,M3.5.7,M10.5.0",
        "CET-1CEST,366,1",
        "CET-1:60",
        "CET-1CEST,M3.5.0,M10.5.0x",
        "CET-1CEST-26,M3.5.0,M10.5.0",
        "CET-1\xe9",
        "<A\nB>1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse_footer(bad[i], &tz);
        if (rc == 0)
            printf("     accepted footer %s\n", bad[i]);
        CHECK(rc == QT_ECORRUPT && tz == NULL);
    }
}

/* Every strict prefix of a real zone file fails cleanly; bit flips never
 * crash and whatever parses re-encodes to an equal zone. */
TEST(tzif_truncation_and_bit_flips)
{
    static uint8_t file[4096], flipped[4096], enc[16384];
    FILE *f = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");
    CHECK(f != NULL);
    size_t len = fread(file, 1, sizeof(file), f);
    fclose(f);
    CHECK(len > 1000 && len < sizeof(file));
    struct qt_tz *tz = NULL, *tz2 = NULL;
    CHECK_OK(qt_tz_parse(file, len, &tz));
    qt_tz_free(tz);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *exact = malloc(cut + 1);
        memcpy(exact, file, cut);
        int rc = qt_tz_parse(exact, cut, &tz);
        free(exact);
        CHECK(rc != 0 && tz == NULL);
    }
    uint64_t rng = qt_test_seed() ^ 0xf1;
    int parsed = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(flipped, file, len);
        for (int k = 0; k < 1 + i % 3; k++) {
            uint64_t r = qt_test_rand(&rng);
            flipped[r % len] ^= (uint8_t)(1u << (r >> 32) % 8);
        }
        if (qt_tz_parse(flipped, len, &tz) != 0)
            continue;
        parsed++;
        size_t n = 0;
        CHECK(qt_tz_encode_bound(tz) <= sizeof(enc));
        CHECK_OK(qt_tz_encode(tz, enc, sizeof(enc), &n));
        CHECK_OK(qt_tz_parse(enc, n, &tz2));
        CHECK(qt_tz_equal(tz, tz2));
        int64_t s, e, t = (int64_t)(qt_test_rand(&rng) % 8000000000ull) * SEC;
        qt_tz_bucket(tz, t, 1 + i % 9, &s, &e);
        CHECK(s <= t && t < e);
        qt_tz_free(tz2);
        qt_tz_free(tz);
    }
    CHECK(parsed > 1000); /* flips in abbreviations and padding still parse */
}

TEST(tzif_hostile_headers)
{
    static uint8_t buf[8192];
    int64_t at[3] = {100, 200, 300};
    int32_t off[3] = {3600, 0, 7200};
    size_t n = make_tzif(buf, at, off, 3, 0, "");
    struct qt_tz *tz = NULL;
    CHECK_OK(qt_tz_parse(buf, n, &tz));
    CHECK_EQ(qt_tz_offset(tz, 99 * SEC), 0);
    CHECK_EQ(qt_tz_offset(tz, 100 * SEC), 3600);
    CHECK_EQ(qt_tz_offset(tz, 250 * SEC), 0);
    CHECK_EQ(qt_tz_offset(tz, 300 * SEC), 7200);
    CHECK_EQ(qt_tz_offset(tz, INT64_MAX), 7200);
    qt_tz_free(tz);
    static uint8_t bad[8192];
#define HOSTILE(edit, want)                                                                        \
    do {                                                                                           \
        memcpy(bad, buf, n);                                                                       \
        size_t bn = n;                                                                             \
        edit;                                                                                      \
        CHECK_RC(qt_tz_parse(bad, bn, &tz), want);                                                 \
        CHECK(tz == NULL);                                                                         \
    } while (0)
    HOSTILE(bad[0] = 'X', QT_EMAGIC);
    HOSTILE(bad[4] = 0, QT_EVERSION);
    HOSTILE(bad[4] = '5', QT_EVERSION);
    HOSTILE(bad[51 + 4] = 0, QT_EVERSION);
    HOSTILE(put32(bad + 51 + 32, 0xffffffff), QT_ELIMIT);        /* timecnt */
    HOSTILE(put32(bad + 51 + 36, 300), QT_ELIMIT);               /* typecnt */
    HOSTILE(put32(bad + 51 + 36, 0), QT_ECORRUPT);               /* no types */
    HOSTILE(put32(bad + 51 + 20, 2), QT_ECORRUPT);               /* isutcnt != typecnt */
    HOSTILE(put32(bad + 51 + 28, 1), QT_EINVAL);                 /* leap seconds */
    HOSTILE(put32(bad + 32, 1000), QT_ETRUNC);                   /* v1 block past the end */
    HOSTILE(put32(bad + 51 + 32, 4), QT_ETRUNC);                 /* block past the end */
    HOSTILE(put32(bad + 95 + 12, 50), QT_ECORRUPT);              /* times not ascending */
    HOSTILE(bad[95 + 24 + 1] = 9, QT_ECORRUPT);                  /* type index */
    HOSTILE(put32(bad + 95 + 27 + 6, 93600), QT_ECORRUPT);       /* offset > 25:59:59 */
    HOSTILE(put32(bad + 95 + 27 + 6, 0x80000000u), QT_ECORRUPT); /* -2^31 */
    HOSTILE(bad[95 + 27 + 4] = 2, QT_ECORRUPT);                  /* isdst */
    HOSTILE(bad[95 + 27 + 5] = 1, QT_ECORRUPT);                  /* abbreviation index */
    HOSTILE(bn = n - 1, QT_ETRUNC);                              /* footer newline */
    HOSTILE(bad[n - 2] = 'x', QT_ECORRUPT);                      /* footer start */
    HOSTILE((bad[n] = 'x', bn = n + 1), QT_ECORRUPT);            /* bytes after */
#undef HOSTILE
    /* Footer too long. */
    char longf[200];
    memset(longf, 'A', sizeof(longf) - 1);
    longf[sizeof(longf) - 1] = '\0';
    n = make_tzif(buf, NULL, NULL, 0, 0, longf);
    CHECK_RC(qt_tz_parse(buf, n, &tz), QT_ELIMIT);
}

TEST(tzif_every_zone_round_trips)
{
    static const char *const zones[] = {"Asia/Shanghai",
                                        "Europe/Berlin",
                                        "America/Santiago",
                                        "Australia/Lord_Howe",
                                        "Pacific/Kiritimati",
                                        "Etc/GMT-14",
                                        "Antarctica/Troll",
                                        "Factory",
                                        "UTC"};
    static uint8_t enc[32768];
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        struct qt_tz *a = NULL, *b = NULL;
        CHECK_OK(qt_tz_load(NULL, zones[i], strlen(zones[i]), &a));
        size_t n = 0;
        CHECK_RC(qt_tz_encode(a, enc, qt_tz_encode_bound(a) - 1, &n), QT_ENOSPACE);
        CHECK_OK(qt_tz_encode(a, enc, sizeof(enc), &n));
        CHECK(n <= qt_tz_encode_bound(a));
        CHECK_OK(qt_tz_parse(enc, n, &b));
        CHECK(qt_tz_equal(a, b));
        qt_tz_free(a);
        qt_tz_free(b);
    }
    struct qt_tz *tz = NULL;
    CHECK_RC(qt_tz_load(NULL, "No/Such_Zone", 12, &tz), QT_ENOTFOUND);
    CHECK_RC(qt_tz_load(NULL, "../x", 4, &tz), QT_EINVAL);
    CHECK_RC(qt_tz_load("/nonexistent-dir", "UTC", 3, &tz), QT_ENOTFOUND);
    CHECK(tz == NULL);
    CHECK(qt_tz_name_is_valid("America/Argentina/ComodRivadavia", 32));
    CHECK(qt_tz_name_is_valid("Etc/GMT+5", 9));
    CHECK(!qt_tz_name_is_valid("/UTC", 4));
    CHECK(!qt_tz_name_is_valid("UTC/", 4));
    CHECK(!qt_tz_name_is_valid("a/../b", 6));
    CHECK(!qt_tz_name_is_valid("a b", 3));
}

/* ---- allocation failures -------------------------------------------------------------- */

TEST(allocation_failures_are_clean)
{
    /* Fail the n-th allocation for every n until the parse succeeds: each
     * failure is QT_ENOMEM with no position and nothing leaked (LSan). */
    const char *t = "air.pm25{district=~\"xi.*\", site!~\"w(1|2)\", st in (\"a\", \"b\", \"c\")} "
                    "[now-1d, now) | where value > 1 | avg, percentile(99) by 1d tz "
                    "\"Europe/Berlin\", district | fill(prev) | limit 10";
    struct qt_qry *q = NULL;
    struct qt_qry_error e;
    int failures = 0;
    for (uint64_t n = 1; n < 10000; n++) {
        qt_alloc_fail_after(n);
        int rc = qt_qry_parse(t, strlen(t), NOW, &q, &e);
        qt_alloc_fail_after(0);
        if (rc == 0) {
            qt_qry_free(q);
            break;
        }
        CHECK_EQ(rc, QT_ENOMEM);
        CHECK(q == NULL && e.position == -1 && strcmp(e.message, "out of memory") == 0);
        failures++;
    }
    CHECK(failures >= 5); /* internal, arena chunk, regex contexts, codes, zone */
}

/* ---- randomised round trips ---------------------------------------------------------- */

struct gen {
    uint64_t rng;
    char *buf;
    size_t len, cap;
};

static uint64_t
gen_pick(struct gen *g, uint64_t n)
{
    return qt_test_rand(&g->rng) % n;
}

static void
gen_put(struct gen *g, const char *s)
{
    size_t n = strlen(s);
    if (g->len + n < g->cap) {
        memcpy(g->buf + g->len, s, n);
        g->len += n;
        g->buf[g->len] = '\0';
    }
}

/* Optional whitespace between tokens. */
static void
gen_ws(struct gen *g)
{
    static const char *const ws[] = {"", "", "", " ", "\t", "\n  "};
    gen_put(g, ws[gen_pick(g, 6)]);
}

static void
gen_string(struct gen *g)
{
    static const char *const parts[] = {"a", "xihu", "\\\"", "\\\\", "西湖", " ", "\\d", ".*", "0"};
    gen_put(g, "\"");
    for (uint64_t i = gen_pick(g, 4); i > 0; i--)
        gen_put(g, parts[gen_pick(g, 9)]);
    gen_put(g, "\"");
}

static void
gen_name(struct gen *g)
{
    static const char *const names[] = {"air", "pm25", "district", "in",      "last",
                                        "by",  "tz",   "_x9",      "\"a b\"", "\"pm2.5\""};
    gen_put(g, names[gen_pick(g, 10)]);
}

static void
gen_matchers(struct gen *g)
{
    static const char *const ops[] = {"=", "!=", "=~", "!~"};
    gen_put(g, "{");
    for (uint64_t i = 0, n = gen_pick(g, 4); i < n; i++) {
        if (i > 0)
            gen_put(g, ",");
        gen_ws(g);
        gen_name(g);
        gen_ws(g);
        uint64_t op = gen_pick(g, 5);
        if (op < 4) {
            gen_put(g, ops[op]);
            gen_ws(g);
            /* regexes: keep them valid */
            if (op >= 2)
                gen_put(g, gen_pick(g, 2) ? "\"w.*\"" : "\"a|b\\\\d\"");
            else
                gen_string(g);
        } else {
            gen_put(g, " in (");
            for (uint64_t k = 0, m = 1 + gen_pick(g, 4); k < m; k++) {
                if (k > 0)
                    gen_put(g, ", ");
                gen_string(g);
            }
            gen_put(g, ")");
        }
    }
    gen_put(g, "}");
}

static void
gen_time(struct gen *g, int end)
{
    static const char *const starts[] = {"2026-11-15T00:00:00Z",
                                         "2026-11-15T08:00:00.5+08:00",
                                         "1794700800s",
                                         "1794700800000ms",
                                         "now-1d",
                                         "now - 1h30m",
                                         "-86400s"};
    static const char *const ends[] = {"2026-11-16T00:00:00Z", "now", "now+90s",
                                       "1794787200000000us", "2026-11-16T00:00:00.000000001-01:00"};
    gen_put(g, end ? ends[gen_pick(g, 5)] : starts[gen_pick(g, 7)]);
}

static void
gen_stages(struct gen *g)
{
    static const char *const points[] = {"where value > 150", "where value<=-2.5",
                                         "where value != 1e-3", "where value == 0"};
    static const char *const fns[] = {
        "count",        "sum", "min", "max", "avg", "first", "stddev", "spread", "percentile(99.9)",
        "percentile(5)"};
    static const char *const terms[] = {"last", "episodes value > 150 for 10m", "gaps > 5m",
                                        "gaps >= 1h30m", "episodes value<0"};
    for (uint64_t i = gen_pick(g, 3); i > 0; i--) {
        gen_put(g, " | ");
        gen_put(g, points[gen_pick(g, 4)]);
    }
    if (gen_pick(g, 3) == 0)
        gen_put(g, gen_pick(g, 2) ? " | rate" : " |delta");
    uint64_t shape = gen_pick(g, 3);
    if (shape == 1) {
        gen_put(g, " | ");
        for (uint64_t i = 0, n = 1 + gen_pick(g, 3); i < n; i++) {
            if (i > 0)
                gen_put(g, ",");
            gen_put(g, fns[(i * 3 + gen_pick(g, 3)) % 10]);
        }
        bool bucket = gen_pick(g, 2);
        if (bucket)
            gen_put(g, gen_pick(g, 3) ? " by 1h" : " by 2d tz \"Asia/Shanghai\"");
        if (gen_pick(g, 2)) {
            gen_put(g, bucket ? ", " : " by ");
            gen_name(g);
        }
        if (bucket && gen_pick(g, 2))
            gen_put(g, gen_pick(g, 2) ? " | fill(linear)" : " | fill(-7)");
    } else if (shape == 2) {
        gen_put(g, " | ");
        gen_put(g, terms[gen_pick(g, 5)]);
    }
    if (gen_pick(g, 3) == 0)
        gen_put(g, " | limit 42");
}

static void
gen_query(struct gen *g)
{
    g->len = 0;
    g->buf[0] = '\0';
    if (gen_pick(g, 8) == 0) {
        static const char *const cat[] = {"measurements", "fields air", "tags air.pm25",
                                          "values district in air", "series"};
        gen_put(g, cat[gen_pick(g, 5)]);
        if (gen_pick(g, 2))
            gen_matchers(g);
        if (gen_pick(g, 2))
            gen_put(g, " | limit 3");
        return;
    }
    gen_name(g);
    gen_ws(g);
    gen_put(g, ".");
    gen_name(g);
    if (gen_pick(g, 2))
        gen_matchers(g);
    if (gen_pick(g, 3)) {
        gen_ws(g);
        gen_put(g, "[");
        gen_time(g, 0);
        gen_put(g, ",");
        gen_ws(g);
        gen_time(g, 1);
        gen_put(g, gen_pick(g, 2) ? ")" : "]");
    }
    gen_stages(g);
}

TEST(random_queries_round_trip)
{
    static char text[4096], p1[8192], p2[8192];
    struct gen g = {qt_test_seed() ^ 0x9e4, text, 0, sizeof(text)};
    int parsed = 0;
    for (int i = 0; i < 3000; i++) {
        gen_query(&g);
        struct qt_qry *q = NULL, *q2 = NULL;
        struct qt_qry_error e;
        int rc = qt_qry_parse(text, g.len, NOW, &q, &e);
        if (rc != 0) {
            /* The generator only makes valid queries except for a "now"
             * start after a literal end (an empty range). */
            if (strstr(e.message, "empty time range") != NULL)
                continue;
            printf("     %s\n     %s at %d\n", text, e.message, e.position);
            CHECK(rc == 0);
        }
        parsed++;
        size_t n1 = qt_qry_print(q, p1, sizeof(p1));
        CHECK(n1 < sizeof(p1));
        CHECK_OK(qt_qry_parse(p1, n1, NOW, &q2, &e));
        CHECK_EQ(qt_qry_print(q2, p2, sizeof(p2)), n1);
        CHECK(strcmp(p1, p2) == 0);
        CHECK_EQ(q->kind, q2->kind);
        CHECK(q->range.start.ns == q2->range.start.ns && q->range.end.ns == q2->range.end.ns);
        CHECK_EQ(q->stages_count, q2->stages_count);
        CHECK_EQ(q->sel.matchers_count, q2->sel.matchers_count);
        qt_qry_free(q);
        qt_qry_free(q2);
    }
    CHECK(parsed > 2500);
}

/* ---- the arena ---------------------------------------------------------------------------- */

TEST(arena_alignment_zeroing_and_cap)
{
    struct qt_arena a;
    qt_arena_init(&a, 256, 4096);
    for (size_t i = 0; i < 100; i++) {
        unsigned char *p = qt_arena_alloc(&a, i % 37);
        if (p == NULL) {
            CHECK_EQ(a.error, QT_ELIMIT);
            break;
        }
        CHECK(((uintptr_t)p % QT_ARENA_ALIGN) == 0);
        for (size_t k = 0; k < i % 37; k++)
            CHECK(p[k] == 0);
        memset(p, 0xab, i % 37);
    }
    CHECK(a.held_bytes <= 4096);
    CHECK(qt_arena_alloc(&a, 5000) == NULL && a.error == QT_ELIMIT);
    CHECK(qt_arena_array(&a, SIZE_MAX / 2, 4) == NULL && a.error == QT_ELIMIT);
    qt_arena_deinit(&a);
    CHECK(a.held_bytes == 0 && a.head == NULL);
    /* A block larger than a chunk gets its own chunk. */
    char *big = qt_arena_alloc(&a, 1000);
    CHECK(big != NULL);
    char *s = qt_arena_strndup(&a, "hello", 3);
    CHECK(s != NULL && strcmp(s, "hel") == 0);
    qt_alloc_fail_after(1);
    CHECK(qt_arena_alloc(&a, 2000) == NULL && a.error == QT_ENOMEM);
    qt_alloc_fail_after(0);
    qt_arena_deinit(&a);
}
