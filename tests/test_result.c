/*
 * test_result.c -- the result writer without a database: number
 * formatting against qprint's reference, the three encodings of awkward
 * cells (NaN, infinities, null, quotes, control bytes, invalid UTF-8, wide
 * characters), the table's held-back sample and streaming widths, limits
 * and a failing sink.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/qt_err.h"
#include "harness.h"
#include "query/qprint.h"
#include "query/result.h"

struct outbuf {
    char *p;
    size_t len, cap;
    int fail;
};

static int
out_cb(void *arg, const char *buf, size_t len)
{
    struct outbuf *o = arg;
    if (o->fail)
        return 1;
    if (o->len + len + 1 > o->cap) {
        o->cap = (o->len + len + 1) * 2;
        o->p = realloc(o->p, o->cap);
    }
    memcpy(o->p + o->len, buf, len);
    o->len += len;
    o->p[o->len] = '\0';
    return 0;
}

static double
rand_double(uint64_t *rng)
{
    uint64_t r = qt_test_rand(rng);
    switch (r % 6) {
    case 0: { /* any bit pattern */
        uint64_t b = qt_test_rand(rng);
        double d;
        memcpy(&d, &b, 8);
        return isfinite(d) ? d : 1.5;
    }
    case 1: return (double)(int64_t)(qt_test_rand(rng) % 2000001 - 1000000) / 1000.0;
    case 2: return (double)(int64_t)qt_test_rand(rng) / 3.0;
    case 3: return ldexp((double)(qt_test_rand(rng) % 1000000), (int)(r >> 8) % 200 - 100);
    case 4: return (double)(qt_test_rand(rng) % 100000) * pow(10, (double)((int)(r >> 8) % 40 - 20));
    default: return 1.0 / (double)(qt_test_rand(rng) % 1000 + 1);
    }
}

TEST(format_double_matches_qprint)
{
    uint64_t rng = qt_test_seed();
    char a[64], b[64];
    static const double fixed[] = {0.1, 0.3, 150, 1e15, 1e16, 1e17, 1e-4, 1e-5, 123456789012345678.0,
                                   -2.5, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, 100.001,
                                   9007199254740993.0, 1e21, -0.0, 0.0};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        qt_res_format_double(fixed[i], a, sizeof(a));
        qt_qry_number_format(fixed[i], b, sizeof(b));
        if (strcmp(a, b) != 0)
            printf("%.17g: %s vs %s\n", fixed[i], a, b);
        CHECK(strcmp(a, b) == 0);
    }
    for (int i = 0; i < 200000; i++) {
        double d = rand_double(&rng);
        qt_res_format_double(d, a, sizeof(a));
        qt_qry_number_format(d, b, sizeof(b));
        if (strcmp(a, b) != 0)
            printf("%.17g: %s vs %s\n", d, a, b);
        CHECK(strcmp(a, b) == 0);
        CHECK(strtod(a, NULL) == d);
    }
}

static int
write_rows(enum qt_out_format f, const struct qt_cell *cells, uint32_t nrows, uint64_t limit,
           uint64_t rows_max, struct outbuf *o)
{
    static const struct qt_res_col cols[4] = {{{"time", 4}, QT_RES_COL_TIME},
                                              {{"name", 4}, QT_RES_COL_TEXT},
                                              {{"dur", 3}, QT_RES_COL_DURATION},
                                              {{"v", 1}, QT_RES_COL_VALUE}};
    struct qt_qry_error err;
    struct qt_qctx ctx;
    qt_qctx_init(&ctx, rows_max, 10, 1 << 20, 10000, &err);
    struct qt_res w;
    int rc = qt_res_init(&w, &ctx, f, out_cb, o, limit);
    if (rc == 0)
        rc = qt_res_begin(&w, cols, 4);
    for (uint32_t r = 0; rc == 0 && r < nrows && !qt_res_full(&w); r++)
        rc = qt_res_row(&w, cells + (size_t)r * 4);
    if (rc == 0)
        rc = qt_res_end(&w);
    qt_res_deinit(&w);
    return rc;
}

#define S(x) {.kind = QT_CELL_STR, .u.s = {x, sizeof(x) - 1}}
#define I(x) {.kind = QT_CELL_INT, .u.i = (x)}
#define F(x) {.kind = QT_CELL_FLOAT, .u.f = (x)}
#define N    {.kind = QT_CELL_NULL}

TEST(awkward_cells_in_every_encoding)
{
    const struct qt_cell cells[] = {
        I(0), S("a,\"b\"\n"), I(5400000000000), F(NAN),
        I(-1), S("\x01tab\tbad\xff\xfe"), I(0), F(INFINITY),
        N, S("\xe8\xa5\xbf\xe6\xb9\x96 west lake"), I(1), F(-INFINITY),
        I(86400000000001), S(" edge "), N, {.kind = QT_CELL_BOOL, .u.b = true},
    };
    struct outbuf o = {0};
    CHECK_OK(write_rows(QT_OUT_JSON, cells, 4, 0, 100, &o));
    CHECK(strcmp(o.p, "{\"columns\":[\"time\",\"name\",\"dur\",\"v\"],\"rows\":[\n"
                      "[0,\"a,\\\"b\\\"\\u000a\",5400000000000,null],\n"
                      "[-1,\"\\u0001tab\\u0009bad\\ufffd\\ufffd\",0,null],\n"
                      "[null,\"\xe8\xa5\xbf\xe6\xb9\x96 west lake\",1,null],\n"
                      "[86400000000001,\" edge \",null,true]\n"
                      "]}\n") == 0);
    o.len = 0;
    CHECK_OK(write_rows(QT_OUT_CSV, cells, 4, 0, 100, &o));
    CHECK(strcmp(o.p, "time,name,dur,v\n"
                      "1970-01-01T00:00:00Z,\"a,\"\"b\"\"\n\",5400000000000,NaN\n"
                      "1969-12-31T23:59:59.999999999Z,\x01tab\tbad\xff\xfe,0,+Inf\n"
                      ",\xe8\xa5\xbf\xe6\xb9\x96 west lake,1,-Inf\n"
                      "1970-01-02T00:00:00.000000001Z,\" edge \",,true\n") == 0);
    o.len = 0;
    CHECK_OK(write_rows(QT_OUT_TABLE, cells, 4, 0, 100, &o));
    if (getenv("QT_RESULT_VERBOSE"))
        printf("%s", o.p);
    /* wide characters count two columns; control and invalid bytes show as '?' */
    CHECK(strcmp(o.p, "time                            name            dur    v\n"
                      "------------------------------  --------------  -----  ----\n"
                      "1970-01-01T00:00:00Z            a,\"b\"?          1h30m   NaN\n"
                      "1969-12-31T23:59:59.999999999Z  ?tab?bad??         0s  +Inf\n"
                      "                                \xe8\xa5\xbf\xe6\xb9\x96 west lake    1ns  -Inf\n"
                      "1970-01-02T00:00:00.000000001Z   edge                  true\n"
                      "(4 rows)\n") == 0);
    free(o.p);
}

TEST(table_streams_after_its_sample)
{
    uint32_t n = QT_QRY_TABLE_SAMPLE_ROWS + 10;
    struct qt_cell *cells = calloc((size_t)n * 4, sizeof(*cells));
    CHECK(cells != NULL);
    for (uint32_t r = 0; r < n; r++) {
        cells[r * 4] = (struct qt_cell)I((int64_t)r * 1000000000);
        cells[r * 4 + 1] = (struct qt_cell)S("x");
        if (r == n - 1) /* wider than the sample: widens only its row */
            cells[r * 4 + 1] = (struct qt_cell)S("a much longer name");
        cells[r * 4 + 2] = (struct qt_cell)I(r);
        cells[r * 4 + 3] = (struct qt_cell)F(r * 0.5);
    }
    struct outbuf o = {0};
    CHECK_OK(write_rows(QT_OUT_TABLE, cells, n, 0, 1u << 20, &o));
    if (getenv("QT_RESULT_VERBOSE"))
        printf("%.300s", o.p);
    CHECK(strstr(o.p, "1970-01-01T00:00:00Z  x          0s      0\n") != NULL);
    CHECK(strstr(o.p, "  a much longer name  ") != NULL);
    CHECK(strstr(o.p, "(1034 rows)\n") != NULL);
    /* limit stops early; rows_max fails */
    o.len = 0;
    CHECK_OK(write_rows(QT_OUT_CSV, cells, n, 3, 1u << 20, &o));
    CHECK(strcmp(o.p, "time,name,dur,v\n1970-01-01T00:00:00Z,x,0,0\n"
                      "1970-01-01T00:00:01Z,x,1,0.5\n1970-01-01T00:00:02Z,x,2,1\n") == 0);
    CHECK_RC(write_rows(QT_OUT_JSON, cells, n, 0, 100, &o), QT_ELIMIT);
    o.fail = 1;
    CHECK_RC(write_rows(QT_OUT_JSON, cells, n, 0, 1u << 20, &o), QT_ECLOSED);
    free(o.p);
    free(cells);
}
