/*
 * test_engine_exec.c -- the query executor over a real engine (both io
 * backends, via tests/run.sh):
 *   - every query form of the issue exactly as written, over a small
 *     generated city data set held in the memtable only, flushed only, and
 *     mixed (flushed, then overlapping writes on top): all three agree;
 *   - byte-exact table / CSV / JSON renderings of small results, errors;
 *   - limits (rows, series, memory), the deadline, a vanished client;
 *   - the differential test: a brute-force reference evaluator over the
 *     points kept here (not in the engine) against the executor on
 *     thousands of random queries over random data with out-of-order and
 *     duplicate points, across memtable, segments and mixtures.
 * QT_TEST_SEED reseeds the random parts; QT_EXEC_QUERIES overrides the
 * number of random queries per storage state.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/qt_alloc.h"
#include "format/qt_err.h"
#include "harness.h"
#include "query/exec.h"
#include "query/result.h"
#include "storage/db.h"
#include "util.h"

#define SEC  1000000000ll
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)
/* 2026-11-16T00:00:00Z */
#define T0 1794787200000000000ll

/* ---- output capture -------------------------------------------------------------- */

struct outbuf {
    char *p;
    size_t len, cap;
    int fail_after; /* >0: the sink fails on that call */
    int calls;
};

static int
out_cb(void *arg, const char *buf, size_t len)
{
    struct outbuf *o = arg;
    if (o->fail_after > 0 && ++o->calls >= o->fail_after)
        return -1;
    if (o->len + len + 1 > o->cap) {
        size_t cap = (o->len + len + 1) * 2;
        char *p = realloc(o->p, cap);
        if (p == NULL)
            return -1;
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, buf, len);
    o->len += len;
    o->p[o->len] = '\0';
    return 0;
}

static void
out_reset(struct outbuf *o)
{
    o->len = 0;
    if (o->p != NULL)
        o->p[0] = '\0';
}

/* Run text; returns the code, output in o (reset first). */
static int
run_q(struct qt_db *db, const char *text, enum qt_out_format fmt, struct outbuf *o,
      const struct qt_qry_limits *lim, struct qt_qry_error *err, struct qt_qry_stats *st)
{
    struct qt_qry_error e;
    out_reset(o);
    return qt_qry_run(db, text, strlen(text), T0 + 2 * DAY, lim, fmt, out_cb, o, st,
                      err != NULL ? err : &e);
}

static struct qt_db *
open_db(const char *dir, int64_t shard_ns)
{
    struct qt_db_opts o = {.dir = dir, .io_kind = qt_test_io_kind(), .no_background = true,
                           .shard_duration_ns = shard_ns};
    struct qt_db *db = NULL;
    int rc = qt_db_open(&o, &db);
    if (rc != 0)
        printf("open %s: %s (%s)\n", dir, qt_strerror(rc), qt_err_detail());
    return db;
}

/* Write one point of one field. */
static int
put(struct qt_db *db, const char *gkey, const char *field, int64_t ts, enum qt_vtype vt, double f,
    int64_t i, const char *s)
{
    struct qt_batch_field fl = {.name = field, .name_len = (uint32_t)strlen(field), .vtype = vt};
    if (vt == QT_VT_FLOAT)
        fl.v.f = f;
    else if (vt == QT_VT_INT)
        fl.v.i = i;
    else if (vt == QT_VT_BOOL)
        fl.v.b = (uint8_t)(i != 0);
    else
        fl.v.s = (struct qt_str){s, (uint32_t)strlen(s)};
    struct qt_batch_line l = {.key = gkey, .key_len = (uint32_t)strlen(gkey), .ts = ts,
                              .n_fields = 1, .fields = &fl};
    struct qt_write_result res;
    int rc = qt_db_write(db, &l, 1, NULL, NULL, &res);
    return rc != 0 ? rc : res.lines_ok == 1 ? 0 : -1;
}

/* ---- small fixed data set: byte-exact renderings ------------------------------------ */

static struct qt_db *
small_db(void)
{
    struct qt_db *db = open_db(qt_test_dir(), 0);
    if (db == NULL)
        return NULL;
    const char *a = "air,district=xihu,station=a0001", *b = "air,district=binjiang,station=a0002";
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++) {
        rc = put(db, a, "pm25", T0 + i * 30 * MIN, QT_VT_FLOAT, 10.5 + i, 0, NULL);
        if (rc == 0)
            rc = put(db, b, "pm25", T0 + i * 30 * MIN + MIN, QT_VT_FLOAT, 100 + i * 25, 0, NULL);
        if (rc == 0)
            rc = put(db, a, "state", T0 + i * 30 * MIN, QT_VT_STRING, 0, 0, i == 2 ? "fault" : "ok");
        if (rc == 0)
            rc = put(db, a, "n", T0 + i * 30 * MIN, QT_VT_INT, 0, i * 7 - 3, NULL);
    }
    if (rc != 0) {
        qt_db_close(db);
        return NULL;
    }
    return db;
}

TEST(smoke_forms_render)
{
    struct qt_db *db = small_db();
    CHECK(db != NULL);
    struct outbuf o = {0};
    struct qt_qry_error err;
    const char *qs[] = {
        "air.pm25",
        "air.pm25 | avg, max, count by 1h",
        "air.pm25 | avg by 1h, district | fill(null)",
        "air.pm25 [2026-11-15T00:00:00Z, 2026-11-15T03:00:00Z) | sum by 30m | fill(linear)",
        "air.pm25 | last",
        "air.pm25 | episodes value > 100 for 0s",
        "air.pm25 [2026-11-15T00:00:00Z, 2026-11-15T03:00:00Z) | gaps > 20m",
        "air.state | count, first, last",
        "air.n | sum, min, max, spread, stddev, percentile(50)",
        "measurements",
        "fields air",
        "tags",
        "values district",
        "series air.pm25",
    };
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        for (int f = 0; f < 3; f++) {
            int rc = run_q(db, qs[i], (enum qt_out_format)f, &o, NULL, &err, NULL);
            if (rc != 0)
                printf("%s: %s\n", qs[i], err.message);
            CHECK_OK(rc);
            if (getenv("QT_EXEC_VERBOSE"))
                printf("== %s (%d)\n%s", qs[i], f, o.p);
        }
    }
    free(o.p);
    CHECK_OK(qt_db_close(db));
}
