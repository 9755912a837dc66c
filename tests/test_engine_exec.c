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
#include "format/qt_alloc.h"
#include "format/qt_err.h"
#include "harness.h"
#include "query/exec.h"
#include "query/result.h"
#include "storage/db.h"
#include "util.h"

#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* no fsync: these tests are about answers, not durability */
    struct qt_db_opts o = {.dir = dir,
                           .io_kind = qt_test_io_kind(),
                           .no_background = true,
                           .shard_duration_ns = shard_ns,
                           .fsync = QT_FSYNC_NONE};
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
    struct qt_batch_line l = {
        .key = gkey, .key_len = (uint32_t)strlen(gkey), .ts = ts, .n_fields = 1, .fields = &fl};
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
            rc =
                put(db, a, "state", T0 + i * 30 * MIN, QT_VT_STRING, 0, 0, i == 2 ? "fault" : "ok");
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
            if (getenv("QT_EXEC_VERBOSE")) {
                printf("== %s (%d) %zu bytes\n", qs[i], f, o.len);
                fwrite(o.p, 1, o.len, stdout);
            }
        }
    }
    free(o.p);
    CHECK_OK(qt_db_close(db));
}

/* ==== JSON result parsing ============================================================ */

enum { J_NULL = 0, J_NUM = 1, J_STR = 2, J_BOOL = 3 };

struct jcell {
    int kind;
    double d;
    bool is_int;
    int64_t i;
    bool b;
    char *s; /* NUL-terminated copy (no escapes other than \" \\ \uXXXX ASCII) */
};

struct jres {
    char *cols[96];
    uint32_t ncols;
    struct jcell *c; /* nrows x ncols */
    uint32_t nrows, cap;
};

static void
jres_free(struct jres *r)
{
    for (uint32_t i = 0; i < r->ncols; i++)
        free(r->cols[i]);
    for (uint32_t i = 0; i < r->nrows * r->ncols; i++)
        free(r->c[i].s);
    free(r->c);
    memset(r, 0, sizeof(*r));
}

static const char *
j_ws(const char *p)
{
    while (*p == ' ' || *p == '\n')
        p++;
    return p;
}

static const char *
j_string(const char *p, char **out)
{
    if (*p != '"')
        return NULL;
    p++;
    size_t cap = 64, n = 0;
    char *s = malloc(cap);
    while (*p != '"' && *p != '\0') {
        char c = *p++;
        if (c == '\\') {
            c = *p++;
            if (c == 'u') {
                unsigned v = (unsigned)strtoul((char[5]){p[0], p[1], p[2], p[3], 0}, NULL, 16);
                c = v < 0x80 ? (char)v : '?';
                p += 4;
            }
        }
        if (n + 2 > cap)
            s = realloc(s, cap *= 2);
        s[n++] = c;
    }
    s[n] = '\0';
    *out = s;
    return *p == '"' ? p + 1 : NULL;
}

static const char *
j_value(const char *p, struct jcell *c)
{
    memset(c, 0, sizeof(*c));
    if (strncmp(p, "null", 4) == 0)
        return p + 4;
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        c->kind = J_BOOL;
        c->b = p[0] == 't';
        return p + (c->b ? 4 : 5);
    }
    if (*p == '"') {
        c->kind = J_STR;
        return j_string(p, &c->s);
    }
    char *end;
    c->kind = J_NUM;
    c->d = strtod(p, &end);
    if (end == p)
        return NULL;
    c->is_int = strcspn(p, ".eE,]") == (size_t)(end - p);
    if (c->is_int)
        c->i = strtoll(p, NULL, 10);
    return end;
}

/* Parse {"columns":[...],"rows":[[...],...]} into r; 0 or -1. */
static int
jres_parse(const char *p, struct jres *r)
{
    memset(r, 0, sizeof(*r));
    if (strncmp(p, "{\"columns\":[", 12) != 0)
        return -1;
    p += 12;
    while (*p != ']') {
        if (r->ncols == 96 || (p = j_string(p, &r->cols[r->ncols++])) == NULL)
            return -1;
        if (*p == ',')
            p++;
    }
    if (strncmp(p, "],\"rows\":[", 10) != 0)
        return -1;
    p = j_ws(p + 10);
    while (*p == '[') {
        p++;
        for (uint32_t k = 0; k < r->ncols; k++) {
            if (r->nrows * r->ncols + k + 1 > r->cap) {
                r->cap = (r->cap + r->ncols + 1) * 2;
                r->c = realloc(r->c, r->cap * sizeof(*r->c));
            }
            p = j_value(p, &r->c[r->nrows * r->ncols + k]);
            if (p == NULL || *p != (k + 1 == r->ncols ? ']' : ','))
                return -1;
            p++;
        }
        r->nrows++;
        p = j_ws(*p == ',' ? p + 1 : p);
    }
    return strcmp(p, "]}\n") == 0 ? 0 : -1;
}

/* ==== the differential test: data ====================================================== */

#define R_GROUPS 12
#define R_FIELDS 5
#define R_SLOTS  1440 /* one day of minutes */
#define R_SHARD  (3 * HOUR)

static const char *const r_fields[R_FIELDS] = {"f", "n", "x", "b", "s"};
static const char *const r_strs[3] = {"fault", "maint", "ok"};

struct r_tags {
    char district[2];
    const char *kind; /* NULL: the series has no kind tag */
    char station[8];
    char gkey[64];
};

struct r_point {
    int64_t ts;
    double f;  /* FLOAT */
    int64_t i; /* INT, BOOL; STRING: index into r_strs */
};

struct r_series {
    enum qt_vtype vt;
    char key[96]; /* canonical series key (sort order) */
    struct r_point *p;
    uint32_t n, cap;
};

struct r_write {
    uint16_t g;
    uint8_t f;
    int64_t ts, arrival;
    struct r_point v;
};

struct r_data {
    struct r_tags tags[R_GROUPS];
    struct r_series ser[R_GROUPS][R_FIELDS];
    struct r_write *w;
    uint32_t nw, wcap;
};

static enum qt_vtype
r_vtype(uint32_t g, uint32_t f)
{
    static const enum qt_vtype t[R_FIELDS] = {QT_VT_FLOAT, QT_VT_INT, 0, QT_VT_BOOL, QT_VT_STRING};
    return f == 2 ? (g % 2 ? QT_VT_FLOAT : QT_VT_INT) : t[f];
}

static struct r_point
r_value(uint64_t *rng, enum qt_vtype vt, uint32_t f, int64_t ts)
{
    struct r_point p = {.ts = ts};
    uint64_t r = qt_test_rand(rng);
    switch (vt) {
    case QT_VT_FLOAT:
        p.f = (double)(int64_t)(r % 3000) / 10.0;
        if (r % 397 == 0)
            p.f = NAN;
        else if (f == 0 && r % 211 == 0)
            p.f = -0.0; /* only in the pure float field: see r_cell min/max */
        break;
    case QT_VT_INT: p.i = (int64_t)(r % 2001) - 1000 + (r % 101 == 0 ? (1ll << 40) : 0); break;
    case QT_VT_BOOL: p.i = (int64_t)(r % 2); break;
    default: p.i = (int64_t)(r % 3); break;
    }
    return p;
}

static int
r_write_cmp(const void *a, const void *b)
{
    const struct r_write *x = a, *y = b;
    return x->arrival < y->arrival ? -1 : x->arrival > y->arrival;
}

static void
r_add_write(struct r_data *d, struct r_write w)
{
    if (d->nw == d->wcap) {
        d->wcap = d->wcap ? d->wcap * 2 : 65536;
        d->w = realloc(d->w, d->wcap * sizeof(*d->w));
    }
    d->w[d->nw++] = w;
}

/* The write log: ~60% of the minute slots of each series, jittered or on
 * the minute (ties between series), 3% arriving hours late, 5% re-sent
 * with a new value later (last write wins). */
static void
r_gen_writes(struct r_data *d, uint64_t *rng)
{
    for (uint32_t g = 0; g < R_GROUPS; g++) {
        for (uint32_t f = 0; f < R_FIELDS; f++) {
            enum qt_vtype vt = r_vtype(g, f);
            for (int64_t s = 0; s < R_SLOTS; s++) {
                uint64_t r = qt_test_rand(rng);
                if (r % 10 >= 6)
                    continue;
                int64_t ts = T0 + s * MIN + (r % 4 == 0 ? 0 : (int64_t)(r >> 20) % 30000 * 1000000);
                int64_t late = r % 100 < 3 ? (int64_t)((r >> 8) % (6 * 3600)) * SEC : 0;
                struct r_write w = {.g = (uint16_t)g,
                                    .f = (uint8_t)f,
                                    .ts = ts,
                                    .arrival = ts + late,
                                    .v = r_value(rng, vt, f, ts)};
                r_add_write(d, w);
                if (r % 100 >= 95) { /* re-sent later with another value */
                    w.arrival += (int64_t)((r >> 30) % 7200 + 1) * SEC;
                    w.v = r_value(rng, vt, f, ts);
                    r_add_write(d, w);
                }
            }
        }
    }
    qsort(d->w, d->nw, sizeof(*d->w), r_write_cmp); /* stable enough: ties are distinct series */
}

/* Replay the log into per-series sorted point arrays (last write wins). */
static void
r_build(struct r_data *d)
{
    for (uint32_t i = 0; i < d->nw; i++) {
        struct r_write *w = &d->w[i];
        struct r_series *s = &d->ser[w->g][w->f];
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 1024;
            s->p = realloc(s->p, s->cap * sizeof(*s->p));
        }
        s->p[s->n++] = w->v;
    }
    for (uint32_t g = 0; g < R_GROUPS; g++) {
        for (uint32_t f = 0; f < R_FIELDS; f++) {
            struct r_series *s = &d->ser[g][f];
            /* stable insertion sort (nearly sorted input) keeps arrival order
             * among equal timestamps; then the last of each run wins */
            for (uint32_t i = 1; i < s->n; i++) {
                struct r_point t = s->p[i];
                uint32_t j = i;
                while (j > 0 && s->p[j - 1].ts > t.ts) {
                    s->p[j] = s->p[j - 1];
                    j--;
                }
                s->p[j] = t;
            }
            uint32_t k = 0;
            for (uint32_t i = 0; i < s->n; i++) {
                if (k > 0 && s->p[k - 1].ts == s->p[i].ts)
                    s->p[k - 1] = s->p[i];
                else
                    s->p[k++] = s->p[i];
            }
            s->n = k;
        }
    }
}

static void
r_gen(struct r_data *d, uint64_t *rng)
{
    memset(d, 0, sizeof(*d));
    for (uint32_t g = 0; g < R_GROUPS; g++) {
        struct r_tags *t = &d->tags[g];
        t->district[0] = "abc"[g % 3];
        t->kind = g % 4 == 0 ? "x" : g % 4 == 2 ? "y" : NULL;
        snprintf(t->station, sizeof(t->station), "s%02u", g + 1);
        snprintf(t->gkey, sizeof(t->gkey), "m,district=%s%s%s,station=%s", t->district,
                 t->kind ? ",kind=" : "", t->kind ? t->kind : "", t->station);
        for (uint32_t f = 0; f < R_FIELDS; f++) {
            d->ser[g][f].vt = r_vtype(g, f);
            snprintf(d->ser[g][f].key, sizeof(d->ser[g][f].key), "%s %s", t->gkey, r_fields[f]);
        }
    }
    r_gen_writes(d, rng);
    r_build(d);
}

static void
r_free(struct r_data *d)
{
    for (uint32_t g = 0; g < R_GROUPS; g++)
        for (uint32_t f = 0; f < R_FIELDS; f++)
            free(d->ser[g][f].p);
    free(d->w);
}

/* Write log entries [from, to) to the engine. */
static int
r_load(struct qt_db *db, const struct r_data *d, uint32_t from, uint32_t to)
{
    struct qt_batch_line lines[256];
    struct qt_batch_field fields[256];
    while (from < to) {
        uint32_t n = to - from < 256 ? to - from : 256;
        for (uint32_t k = 0; k < n; k++) {
            const struct r_write *w = &d->w[from + k];
            enum qt_vtype vt = r_vtype(w->g, w->f);
            fields[k] = (struct qt_batch_field){.name = r_fields[w->f], .name_len = 1, .vtype = vt};
            if (vt == QT_VT_FLOAT)
                fields[k].v.f = w->v.f;
            else if (vt == QT_VT_INT)
                fields[k].v.i = w->v.i;
            else if (vt == QT_VT_BOOL)
                fields[k].v.b = (uint8_t)w->v.i;
            else
                fields[k].v.s = (struct qt_str){r_strs[w->v.i], (uint32_t)strlen(r_strs[w->v.i])};
            const char *key = d->tags[w->g].gkey;
            lines[k] = (struct qt_batch_line){.key = key,
                                              .key_len = (uint32_t)strlen(key),
                                              .ts = w->ts,
                                              .n_fields = 1,
                                              .fields = &fields[k]};
        }
        struct qt_write_result res;
        int rc = qt_db_write(db, lines, n, NULL, NULL, &res);
        if (rc != 0 || res.lines_ok != n)
            return rc != 0 ? rc : -1;
        from += n;
    }
    return 0;
}

/* ==== the differential test: random queries ============================================ */

enum { Q_RAW, Q_AGG, Q_LAST, Q_EPI, Q_GAPS };
enum { M_EQ, M_NE, M_RE, M_NRE, M_IN };
enum { S_WHERE, S_RATE, S_DELTA };
enum { F_NONE, F_NULL, F_PREV, F_LINEAR, F_VALUE };
/* same order as enum qt_qry_agg_fn - 1 */
static const char *const r_fn_names[10] = {"count", "sum",  "min",    "max",    "avg",
                                           "first", "last", "stddev", "spread", "percentile"};
static const char *const r_cmp_names[6] = {">", ">=", "<", "<=", "==", "!="};

struct rq_match {
    const char *key;
    int op;
    const char *val;
    const char *vals[3];
    int nvals;
};

struct rq {
    int field;
    struct rq_match m[4];
    int nm;
    bool bounded;
    int64_t t0, t1;
    struct {
        int kind, op;
        double x;
    } pre[3];
    int npre;
    int kind;
    struct {
        int fn; /* 0..9 */
        double p;
    } fns[4];
    int nfns;
    int64_t bucket; /* 0: none */
    bool tz;        /* Asia/Shanghai local days */
    const char *by[2];
    int nby;
    int fill;
    double fillv;
    int eop;
    double ex;
    int64_t efor;
    bool gincl;
    int64_t gmin;
    uint64_t limit;
};

static uint64_t
rnd(uint64_t *rng, uint64_t n)
{
    return qt_test_rand(rng) % n;
}

static void
rq_matchers(struct rq *q, uint64_t *rng)
{
    static const char *const dre[] = {"a|c", "b", ".*", "[ab]"};
    static const char *const sre[] = {"s0[1-5]", "s1.*", ".*2", "s07|s08|s12"};
    static const char *const kre[] = {"", "x|", "x", "y|z", ".+"};
    q->nm = (int)rnd(rng, 4);
    for (int i = 0; i < q->nm; i++) {
        struct rq_match *m = &q->m[i];
        int which = (int)rnd(rng, 4);
        m->key = which == 0 ? "district" : which == 1 ? "station" : which == 2 ? "kind" : "zone";
        m->op = (int)rnd(rng, 5);
        if (m->op == M_RE || m->op == M_NRE) {
            m->val = which == 0   ? dre[rnd(rng, 4)]
                     : which == 1 ? sre[rnd(rng, 4)]
                                  : kre[rnd(rng, 5)];
        } else if (m->op == M_IN) {
            static const char *const pool[4][4] = {{"a", "b", "c", "q"},
                                                   {"s01", "s04", "s07", "s12"},
                                                   {"x", "y", "", "z"},
                                                   {"q", "", "r", "t"}};
            m->nvals = 2 + (int)rnd(rng, 2);
            for (int k = 0; k < m->nvals; k++)
                m->vals[k] = pool[which][rnd(rng, 4)];
        } else {
            static const char *const pool[4][3] = {
                {"a", "b", "c"}, {"s01", "s05", "s10"}, {"x", "y", ""}, {"q", "", "q"}};
            m->val = pool[which][rnd(rng, 3)];
        }
    }
}

static void
rq_range(struct rq *q, uint64_t *rng)
{
    q->bounded = rnd(rng, 10) < 7;
    if (!q->bounded)
        return;
    q->t0 = T0 - 2 * HOUR + (int64_t)rnd(rng, 28 * 3600) * SEC;
    if (rnd(rng, 2))
        q->t0 += (int64_t)rnd(rng, SEC); /* unaligned */
    q->t1 = q->t0 + (int64_t)(rnd(rng, 30 * 60) + 1) * MIN + (int64_t)rnd(rng, 3) * 7 * SEC;
}

static void
rq_agg(struct rq *q, uint64_t *rng)
{
    static const int64_t buckets[] = {MIN,      7 * MIN,  30 * MIN, HOUR,
                                      3 * HOUR, 6 * HOUR, DAY,      2 * DAY};
    static const double ps[] = {0, 25, 50, 90, 99.9, 100};
    q->nfns = 1 + (int)rnd(rng, 4);
    for (int i = 0; i < q->nfns; i++) {
        bool dup;
        do {
            q->fns[i].fn = (int)rnd(rng, 10);
            q->fns[i].p = ps[rnd(rng, 6)];
            dup = false;
            for (int k = 0; k < i; k++)
                dup |= q->fns[k].fn == q->fns[i].fn &&
                       (q->fns[i].fn != 9 || q->fns[k].p == q->fns[i].p);
        } while (dup);
    }
    uint64_t b = rnd(rng, 10);
    if (b < 6)
        q->bucket = buckets[rnd(rng, 8)];
    else if (b == 6) {
        q->bucket = DAY;
        q->tz = true;
    }
    q->nby = (int)rnd(rng, 3);
    static const char *const tags[] = {"district", "kind", "station", "zone"};
    for (int i = 0; i < q->nby; i++) {
        do
            q->by[i] = tags[rnd(rng, 4)];
        while (i == 1 && q->by[1] == q->by[0]);
    }
    if (q->nfns == 1 && q->fns[0].fn == 6 && q->bucket == 0 && q->nby == 0)
        q->fns[q->nfns++].fn = 0; /* `| last` alone is the last stage, not the function */
    if (q->bucket != 0 && rnd(rng, 10) < 4) {
        q->fill = 1 + (int)rnd(rng, 4);
        q->fillv = (double)((int)rnd(rng, 20) - 5) / 2;
    }
}

static void
rq_gen(struct rq *q, uint64_t *rng)
{
    memset(q, 0, sizeof(*q));
    q->field = (int)rnd(rng, R_FIELDS);
    rq_matchers(q, rng);
    rq_range(q, rng);
    q->npre = (int)rnd(rng, 3) == 0 ? 1 + (int)rnd(rng, 2) : 0;
    bool diff = false;
    for (int i = 0; i < q->npre; i++) {
        int k = (int)rnd(rng, 4);
        q->pre[i].kind = k >= 2 && !diff ? (k == 2 ? S_RATE : S_DELTA) : S_WHERE;
        diff |= q->pre[i].kind != S_WHERE;
        q->pre[i].op = (int)rnd(rng, 6);
        q->pre[i].x = (double)((int)rnd(rng, 4000) - 1000) / 10.0;
        if (rnd(rng, 4) == 0)
            q->pre[i].x = (double)((int)rnd(rng, 3)); /* 0, 1, 2: bools, equality */
    }
    uint64_t k = rnd(rng, 100);
    q->kind = k < 50 ? Q_AGG : k < 65 ? Q_RAW : k < 75 ? Q_LAST : k < 88 ? Q_EPI : Q_GAPS;
    if (q->kind == Q_AGG)
        rq_agg(q, rng);
    if (q->kind == Q_EPI) {
        q->eop = (int)rnd(rng, 6);
        q->ex = rnd(rng, 3) == 0 ? (double)rnd(rng, 2) : (double)((int)rnd(rng, 3000)) / 10.0;
        q->efor = rnd(rng, 2) ? (int64_t)rnd(rng, 20) * MIN : 0;
    }
    if (q->kind == Q_GAPS) {
        q->gincl = rnd(rng, 2);
        q->gmin = (int64_t)(1 + rnd(rng, 10)) * MIN + (rnd(rng, 2) ? 30 * SEC : 0);
    }
    if (rnd(rng, 5) == 0)
        q->limit = 1 + rnd(rng, 50);
}

static size_t
rq_dur(char *b, size_t cap, int64_t ns)
{
    return (size_t)snprintf(b, cap, "%lldns", (long long)ns);
}

/* The query text of q. */
static void
rq_text(const struct rq *q, char *b, size_t cap)
{
    size_t n = (size_t)snprintf(b, cap, "m.%s", r_fields[q->field]);
    for (int i = 0; i < q->nm; i++) {
        const struct rq_match *m = &q->m[i];
        static const char *const ops[] = {"=", "!=", "=~", "!~"};
        n += (size_t)snprintf(b + n, cap - n, "%s%s", i == 0 ? "{" : ", ", m->key);
        if (m->op == M_IN) {
            n += (size_t)snprintf(b + n, cap - n, " in (");
            for (int k = 0; k < m->nvals; k++)
                n += (size_t)snprintf(b + n, cap - n, "%s\"%s\"", k ? ", " : "", m->vals[k]);
            n += (size_t)snprintf(b + n, cap - n, ")");
        } else {
            n += (size_t)snprintf(b + n, cap - n, "%s\"%s\"", ops[m->op], m->val);
        }
    }
    if (q->nm > 0)
        n += (size_t)snprintf(b + n, cap - n, "}");
    if (q->bounded)
        n += (size_t)snprintf(b + n, cap - n, " [%lldns, %lldns)", (long long)q->t0,
                              (long long)q->t1);
    for (int i = 0; i < q->npre; i++) {
        if (q->pre[i].kind == S_WHERE)
            n += (size_t)snprintf(b + n, cap - n, " | where value %s %.17g",
                                  r_cmp_names[q->pre[i].op], q->pre[i].x);
        else
            n += (size_t)snprintf(b + n, cap - n, " | %s",
                                  q->pre[i].kind == S_RATE ? "rate" : "delta");
    }
    if (q->kind == Q_AGG) {
        for (int i = 0; i < q->nfns; i++) {
            n += (size_t)snprintf(b + n, cap - n, "%s%s", i == 0 ? " | " : ", ",
                                  r_fn_names[q->fns[i].fn]);
            if (q->fns[i].fn == 9)
                n += (size_t)snprintf(b + n, cap - n, "(%g)", q->fns[i].p);
        }
        if (q->bucket != 0 || q->nby > 0)
            n += (size_t)snprintf(b + n, cap - n, " by ");
        if (q->bucket != 0) {
            n += rq_dur(b + n, cap - n, q->bucket);
            if (q->tz)
                n += (size_t)snprintf(b + n, cap - n, " tz \"Asia/Shanghai\"");
        }
        for (int i = 0; i < q->nby; i++)
            n += (size_t)snprintf(b + n, cap - n, "%s%s", i > 0 || q->bucket ? ", " : "", q->by[i]);
        static const char *const fills[] = {"", "null", "prev", "linear"};
        if (q->fill == F_VALUE)
            n += (size_t)snprintf(b + n, cap - n, " | fill(%g)", q->fillv);
        else if (q->fill != F_NONE)
            n += (size_t)snprintf(b + n, cap - n, " | fill(%s)", fills[q->fill]);
    } else if (q->kind == Q_LAST) {
        n += (size_t)snprintf(b + n, cap - n, " | last");
    } else if (q->kind == Q_EPI) {
        n += (size_t)snprintf(b + n, cap - n, " | episodes value %s %.17g", r_cmp_names[q->eop],
                              q->ex);
        if (q->efor > 0) {
            n += (size_t)snprintf(b + n, cap - n, " for ");
            n += rq_dur(b + n, cap - n, q->efor);
        }
    } else if (q->kind == Q_GAPS) {
        n += (size_t)snprintf(b + n, cap - n, " | gaps %s ", q->gincl ? ">=" : ">");
        n += rq_dur(b + n, cap - n, q->gmin);
    }
    if (q->limit > 0)
        n += (size_t)snprintf(b + n, cap - n, " | limit %llu", (unsigned long long)q->limit);
}

/* ==== the differential test: the reference evaluator ==================================== */

enum { E_NULL = 0, E_INT, E_FLOAT, E_BOOL, E_STR };

struct ecell {
    int kind;
    int64_t i;
    double f;
    const char *s;
    double tol; /* E_FLOAT: allowed absolute difference (0: exact, sign of zero too) */
};

struct eres {
    const char *cols[96];
    char colbuf[96][32];
    uint32_t ncols;
    struct ecell *c;
    uint32_t nrows, cap;
    uint64_t limit;
    int error; /* expected error code, 0 for rows */
};

/* Append a row (copied) unless the limit is reached. */
static void
e_row(struct eres *e, const struct ecell *row)
{
    if (e->limit != 0 && e->nrows >= e->limit)
        return;
    if ((e->nrows + 1) * e->ncols > e->cap) {
        e->cap = (e->nrows + 1) * e->ncols * 2;
        e->c = realloc(e->c, e->cap * sizeof(*e->c));
    }
    memcpy(e->c + (size_t)e->nrows * e->ncols, row, e->ncols * sizeof(*row));
    e->nrows++;
}

static void
e_col(struct eres *e, const char *name)
{
    snprintf(e->colbuf[e->ncols], sizeof(e->colbuf[0]), "%s", name);
    e->cols[e->ncols] = e->colbuf[e->ncols];
    e->ncols++;
}

/* A series' value of tag key k ("" when absent). */
static const char *
r_tag(const struct r_data *d, uint32_t g, const char *k)
{
    const struct r_tags *t = &d->tags[g];
    if (strcmp(k, "district") == 0)
        return t->district;
    if (strcmp(k, "station") == 0)
        return t->station;
    if (strcmp(k, "kind") == 0)
        return t->kind ? t->kind : "";
    return "";
}

static bool
r_regex(const char *pat, const char *v)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                   PCRE2_ANCHORED | PCRE2_ENDANCHORED, &err, &off, NULL);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)v, strlen(v), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc >= 0;
}

static bool
r_matches(const struct r_data *d, uint32_t g, const struct rq *q)
{
    for (int i = 0; i < q->nm; i++) {
        const struct rq_match *m = &q->m[i];
        const char *v = r_tag(d, g, m->key);
        bool ok = false;
        switch (m->op) {
        case M_EQ: ok = strcmp(v, m->val) == 0; break;
        case M_NE: ok = strcmp(v, m->val) != 0; break;
        case M_RE: ok = r_regex(m->val, v); break;
        case M_NRE: ok = !r_regex(m->val, v); break;
        default:
            for (int k = 0; k < m->nvals; k++)
                ok |= strcmp(v, m->vals[k]) == 0;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* Selected groups (series of q->field) in series key order. */
static uint32_t
r_select(const struct r_data *d, const struct rq *q, uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t g = 0; g < R_GROUPS; g++)
        if (r_matches(d, g, q))
            out[n++] = g;
    for (uint32_t i = 1; i < n; i++) /* insertion sort by key */
        for (uint32_t j = i;
             j > 0 && strcmp(d->ser[out[j - 1]][q->field].key, d->ser[out[j]][q->field].key) > 0;
             j--) {
            uint32_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static bool
r_cmp(int op, long double v, double x)
{
    switch (op) {
    case 0: return v > x;
    case 1: return v >= x;
    case 2: return v < x;
    case 3: return v <= x;
    case 4: return v == x;
    default: return !isnan((double)v) && v != x;
    }
}

/* A point after transforms: its value as the output type. */
struct r_val {
    int64_t ts;
    enum qt_vtype vt;
    double f;
    int64_t i;
};

static long double
r_num(const struct r_val *v)
{
    return v->vt == QT_VT_FLOAT ? (long double)v->f : (long double)v->i;
}

/* The value type after q's transforms for input type vt, or 0 when a
 * stage does not accept it. */
static enum qt_vtype
r_out_vt(const struct rq *q, enum qt_vtype vt)
{
    for (int k = 0; k < q->npre; k++) {
        if (vt == QT_VT_STRING || (q->pre[k].kind != S_WHERE && vt == QT_VT_BOOL))
            return 0;
        if (q->pre[k].kind == S_RATE)
            vt = QT_VT_FLOAT;
    }
    return vt;
}

/* Points of series (g, field) in the range through the transforms into
 * out (capacity: the series' point count); returns the count.  The type
 * must be accepted (r_out_vt). */
static uint32_t
r_points(const struct r_data *d, const struct rq *q, uint32_t g, struct r_val *out)
{
    const struct r_series *s = &d->ser[g][q->field];
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        const struct r_point *p = &s->p[i];
        if (q->bounded && (p->ts < q->t0 || p->ts >= q->t1))
            continue;
        out[n++] = (struct r_val){.ts = p->ts, .vt = s->vt, .f = p->f, .i = p->i};
    }
    for (int k = 0; k < q->npre; k++) {
        uint32_t m = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (q->pre[k].kind == S_WHERE) {
                if (r_cmp(q->pre[k].op, r_num(&out[i]), q->pre[k].x))
                    out[m++] = out[i];
                continue;
            }
            if (i == 0)
                continue;
            /* out[i - 1] is still the previous input: outputs go to m = i - 1 */
            struct r_val a = out[i - 1], b = out[i];
            struct r_val r = {.ts = b.ts, .vt = a.vt};
            if (q->pre[k].kind == S_DELTA) {
                if (a.vt == QT_VT_FLOAT)
                    r.f = b.f - a.f;
                else
                    r.i = b.i - a.i;
            } else {
                double secs = (double)((__int128)b.ts - a.ts) / 1e9;
                double inc = a.vt == QT_VT_FLOAT ? (b.f < a.f ? b.f : b.f - a.f)
                                                 : (b.i < a.i ? (double)b.i : (double)(b.i - a.i));
                r.vt = QT_VT_FLOAT;
                r.f = inc / secs;
            }
            out[m++] = r;
        }
        n = m;
    }
    return n;
}

static struct ecell
r_vcell(const struct r_val *v)
{
    switch (v->vt) {
    case QT_VT_FLOAT: return (struct ecell){.kind = E_FLOAT, .f = v->f};
    case QT_VT_INT: return (struct ecell){.kind = E_INT, .i = v->i};
    case QT_VT_BOOL: return (struct ecell){.kind = E_BOOL, .i = v->i};
    default: return (struct ecell){.kind = E_STR, .s = r_strs[v->i]};
    }
}

static struct ecell
e_int(int64_t i)
{
    return (struct ecell){.kind = E_INT, .i = i};
}

/* Tag columns: the sorted union of the selected series' tag keys. */
static uint32_t
r_tagcols(const struct r_data *d, const uint32_t *sel, uint32_t n, const char **cols)
{
    bool kind = false;
    for (uint32_t i = 0; i < n; i++)
        kind |= d->tags[sel[i]].kind != NULL;
    uint32_t k = 0;
    if (n > 0)
        cols[k++] = "district";
    if (kind)
        cols[k++] = "kind";
    if (n > 0)
        cols[k++] = "station";
    return k;
}

/* raw, last, episodes, gaps: rows of time, tag columns, extra columns. */
static void
r_series_rows(const struct r_data *d, const struct rq *q, const uint32_t *sel, uint32_t nsel,
              struct r_val *pts, struct eres *e)
{
    const char *tc[3];
    uint32_t ntc = r_tagcols(d, sel, nsel, tc);
    e_col(e, "time");
    for (uint32_t i = 0; i < ntc; i++)
        e_col(e, tc[i]);
    if (q->kind == Q_RAW || q->kind == Q_LAST)
        e_col(e, "value");
    if (q->kind == Q_EPI || q->kind == Q_GAPS) {
        e_col(e, "end");
        e_col(e, "duration");
    }
    if (q->kind == Q_EPI)
        e_col(e, "peak");
    struct ecell row[8];
    for (uint32_t si = 0; si < nsel; si++) {
        uint32_t g = sel[si];
        for (uint32_t i = 0; i < ntc; i++)
            row[1 + i] = (struct ecell){.kind = E_STR, .s = r_tag(d, g, tc[i])};
        uint32_t n = r_points(d, q, g, pts);
        struct ecell *x = row + 1 + ntc;
        if (q->kind == Q_RAW || (q->kind == Q_LAST && n > 0)) {
            for (uint32_t i = q->kind == Q_LAST ? n - 1 : 0; i < n; i++) {
                row[0] = e_int(pts[i].ts);
                x[0] = r_vcell(&pts[i]);
                e_row(e, row);
            }
        } else if (q->kind == Q_GAPS) {
            bool has = q->bounded;
            int64_t prev = q->t0;
            for (uint32_t i = 0; i <= n; i++) {
                if (i == n && !q->bounded)
                    break;
                int64_t t = i < n ? pts[i].ts : q->t1;
                int64_t gap = t - prev;
                if (has && (q->gincl ? gap >= q->gmin : gap > q->gmin)) {
                    row[0] = e_int(prev);
                    x[0] = e_int(t);
                    x[1] = e_int(gap);
                    e_row(e, row);
                }
                has = true;
                prev = t;
            }
        } else if (q->kind == Q_EPI) {
            bool in = false;
            uint32_t start = 0, end = 0, peak = 0;
            for (uint32_t i = 0; i <= n; i++) {
                bool sat = i < n && r_cmp(q->eop, r_num(&pts[i]), q->ex);
                if (sat && !in) {
                    in = true;
                    start = end = peak = i;
                } else if (sat) {
                    long double v = r_num(&pts[i]), p = r_num(&pts[peak]);
                    bool better = q->eop == 2 || q->eop == 3 ? v < p
                                  : q->eop == 5
                                      ? fabsl(v - q->ex) > fabsl(p - q->ex) ||
                                            (fabsl(v - q->ex) == fabsl(p - q->ex) && v > p)
                                      : v > p;
                    peak = better ? i : peak;
                    end = i;
                } else if (in) {
                    in = false;
                    if (pts[end].ts - pts[start].ts >= q->efor) {
                        row[0] = e_int(pts[start].ts);
                        x[0] = e_int(pts[end].ts);
                        x[1] = e_int(pts[end].ts - pts[start].ts);
                        x[2] = r_vcell(&pts[peak]);
                        e_row(e, row);
                    }
                }
            }
        }
    }
}

/* ---- reference aggregation ---- */

struct r_acell {
    int64_t bucket, tmin;
    uint64_t count;
    bool anyf, has_d, has_i;
    long double sum;
    __int128 isum;
    double abssum, maxabs;
    double dmin, dmax;
    int64_t imin, imax;
    struct r_val first, last;
    double *vals; /* every numeric value (NaN too) */
    uint32_t nv;
};

struct r_agroup {
    const char *tags[2];
    struct r_acell *c; /* sorted by bucket */
    uint32_t n, cap;
};

static int64_t
r_bucket(const struct rq *q, int64_t t)
{
    if (q->bucket == 0)
        return INT64_MIN;
    int64_t off = q->tz ? 8 * HOUR : 0; /* Asia/Shanghai: UTC+8 without DST since 1991 */
    int64_t x = t + off;
    int64_t k = x / q->bucket - (x % q->bucket < 0);
    return k * q->bucket - off;
}

static struct r_acell *
r_cell(struct r_agroup *g, int64_t bucket)
{
    uint32_t lo = 0, hi = g->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (g->c[mid].bucket < bucket)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < g->n && g->c[lo].bucket == bucket)
        return &g->c[lo];
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->c = realloc(g->c, g->cap * sizeof(*g->c));
    }
    memmove(g->c + lo + 1, g->c + lo, (g->n - lo) * sizeof(*g->c));
    g->n++;
    memset(&g->c[lo], 0, sizeof(g->c[lo]));
    g->c[lo].bucket = bucket;
    g->c[lo].tmin = INT64_MAX;
    g->c[lo].first.ts = INT64_MAX;
    g->c[lo].last.ts = INT64_MIN;
    return &g->c[lo];
}

static void
r_acc(struct r_acell *c, const struct r_val *v)
{
    c->count++;
    c->tmin = v->ts < c->tmin ? v->ts : c->tmin;
    if (v->ts < c->first.ts)
        c->first = *v;
    if (v->ts > c->last.ts)
        c->last = *v;
    if (v->vt == QT_VT_STRING)
        return;
    double x = v->vt == QT_VT_FLOAT ? v->f : (double)v->i;
    if (v->vt == QT_VT_FLOAT) {
        c->anyf = true;
        c->sum += v->f;
    } else {
        c->isum += v->i;
        if (!c->has_i || v->i < c->imin)
            c->imin = v->i;
        if (!c->has_i || v->i > c->imax)
            c->imax = v->i;
        c->has_i = true;
    }
    if (!isnan(x)) {
        c->abssum += fabs(x);
        c->maxabs = fabs(x) > c->maxabs ? fabs(x) : c->maxabs;
        if (!c->has_d || x < c->dmin)
            c->dmin = x;
        if (!c->has_d || x > c->dmax)
            c->dmax = x;
        c->has_d = true;
    }
    if ((c->nv & (c->nv - 1)) == 0) /* capacity: powers of two */
        c->vals = realloc(c->vals, (c->nv ? c->nv * 2 : 1) * sizeof(double));
    c->vals[c->nv++] = x;
}

static int
dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct ecell
e_float(double f, double tol)
{
    return (struct ecell){.kind = E_FLOAT, .f = f, .tol = tol};
}

static struct ecell
r_final(struct r_acell *c, int fn, double p)
{
    double scale = c->maxabs + 1;
    switch (fn) {
    case 0: return e_int((int64_t)c->count);
    case 1:
        if (!c->anyf && c->isum >= INT64_MIN && c->isum <= INT64_MAX)
            return e_int((int64_t)c->isum);
        return e_float((double)(c->sum + (long double)c->isum), 1e-9 * (c->abssum + 1));
    case 2:
    case 3:
        if (!c->anyf)
            return e_int(fn == 2 ? c->imin : c->imax);
        return e_float(c->has_d ? (fn == 2 ? c->dmin : c->dmax) : NAN, 0);
    case 4: return e_float((double)((c->sum + (long double)c->isum) / c->count), 1e-9 * scale);
    case 5: return r_vcell(&c->first);
    case 6: return r_vcell(&c->last);
    case 7: {
        long double m = 0, v = 0;
        for (uint32_t i = 0; i < c->nv; i++)
            m += c->vals[i];
        m /= c->nv;
        for (uint32_t i = 0; i < c->nv; i++)
            v += (c->vals[i] - m) * (c->vals[i] - m);
        return e_float((double)sqrtl(v / c->nv), 1e-7 * scale);
    }
    case 8:
        if (!c->anyf)
            return e_int(c->imax - c->imin);
        return e_float(c->has_d ? c->dmax - c->dmin : NAN, 0);
    default: {
        double *v = malloc((c->nv + 1) * sizeof(double));
        uint32_t n = 0;
        for (uint32_t i = 0; i < c->nv; i++)
            if (!isnan(c->vals[i]))
                v[n++] = c->vals[i];
        qsort(v, n, sizeof(double), dcmp);
        double r = NAN;
        if (n > 0) {
            double h = (double)(n - 1) * p / 100.0;
            uint32_t lo = (uint32_t)floor(h);
            double frac = h - (double)lo;
            r = lo + 1 >= n || frac == 0 ? v[lo] : v[lo] + frac * (v[lo + 1] - v[lo]);
        }
        free(v);
        return e_float(r, 1e-9 * scale);
    }
    }
}

static bool
e_number(const struct ecell *c, double *v)
{
    *v = c->kind == E_INT ? (double)c->i : c->f;
    return c->kind == E_INT || c->kind == E_FLOAT;
}

/* Fill row values at bucket t between real rows prev (at tp) and next. */
static void
r_fill(const struct rq *q, const struct ecell *prev, int64_t tp, const struct ecell *next,
       int64_t tn, int64_t t, struct ecell *out)
{
    for (int j = 0; j < q->nfns; j++) {
        out[j] = (struct ecell){.kind = E_NULL};
        double a, b;
        if (q->fill == F_VALUE)
            out[j] = e_float(q->fillv, 0);
        else if (q->fill == F_PREV && prev != NULL)
            out[j] = prev[j];
        else if (q->fill == F_LINEAR && prev != NULL && next != NULL && e_number(&prev[j], &a) &&
                 e_number(&next[j], &b)) {
            double span = (double)(tn - tp), at = (double)(t - tp);
            double tol = prev[j].tol > next[j].tol ? prev[j].tol : next[j].tol;
            out[j] = e_float(a + (b - a) * (at / span), 2 * tol + 1e-12 * (fabs(a) + fabs(b)));
        }
    }
}

static int
r_group_cmp(const struct rq *q, const struct r_agroup *a, const struct r_agroup *b)
{
    for (int i = 0; i < q->nby; i++) {
        int c = strcmp(a->tags[i], b->tags[i]);
        if (c != 0)
            return c;
    }
    return 0;
}

/* Rows of one group (cells sorted), with fill. */
static void
r_group_rows(const struct rq *q, struct r_agroup *g, struct eres *e)
{
    struct ecell row[16], prev[4], next[4];
    for (int i = 0; i < q->nby; i++)
        row[1 + i] = (struct ecell){.kind = E_STR, .s = g->tags[i]};
    struct ecell *x = row + 1 + q->nby;
    if (q->fill == F_NONE) {
        for (uint32_t k = 0; k < g->n; k++) {
            struct r_acell *c = &g->c[k];
            row[0] = e_int(q->bucket ? c->bucket : q->bounded ? q->t0 : c->tmin);
            for (int j = 0; j < q->nfns; j++)
                x[j] = r_final(c, q->fns[j].fn, q->fns[j].p);
            e_row(e, row);
        }
        return;
    }
    if (!q->bounded && g->n == 0)
        return;
    int64_t b = q->bounded ? r_bucket(q, q->t0) : g->c[0].bucket;
    int64_t end = q->bounded ? r_bucket(q, q->t1 - 1) : g->c[g->n - 1].bucket;
    bool has_prev = false;
    int64_t tp = 0;
    uint32_t k = 0;
    for (; b <= end; b += q->bucket) {
        row[0] = e_int(b);
        if (k < g->n && g->c[k].bucket == b) {
            for (int j = 0; j < q->nfns; j++)
                x[j] = prev[j] = r_final(&g->c[k], q->fns[j].fn, q->fns[j].p);
            has_prev = true;
            tp = b;
            k++;
        } else {
            bool nx = k < g->n;
            for (int j = 0; nx && j < q->nfns; j++)
                next[j] = r_final(&g->c[k], q->fns[j].fn, q->fns[j].p);
            r_fill(q, has_prev ? prev : NULL, tp, nx ? next : NULL, nx ? g->c[k].bucket : 0, b, x);
        }
        e_row(e, row);
    }
}

static bool
r_fn_ok(int fn, enum qt_vtype vt)
{
    return fn == 0 || fn == 5 || fn == 6 || vt == QT_VT_FLOAT || vt == QT_VT_INT ||
           (vt == QT_VT_BOOL && fn == 1);
}

static void
r_agg(const struct r_data *d, const struct rq *q, const uint32_t *sel, uint32_t nsel,
      struct r_val *pts, struct eres *e)
{
    struct r_agroup groups[R_GROUPS];
    uint32_t ng = 0;
    e_col(e, "time");
    for (int i = 0; i < q->nby; i++)
        e_col(e, q->by[i]);
    for (int j = 0; j < q->nfns; j++) {
        char name[32];
        if (q->fns[j].fn == 9)
            snprintf(name, sizeof(name), "percentile(%g)", q->fns[j].p);
        else
            snprintf(name, sizeof(name), "%s", r_fn_names[q->fns[j].fn]);
        e_col(e, name);
    }
    for (uint32_t si = 0; si < nsel; si++) {
        struct r_agroup key = {0};
        for (int i = 0; i < q->nby; i++)
            key.tags[i] = r_tag(d, sel[si], q->by[i]);
        uint32_t gi = 0;
        while (gi < ng && r_group_cmp(q, &groups[gi], &key) != 0)
            gi++;
        if (gi == ng)
            groups[ng++] = key;
        uint32_t n = r_points(d, q, sel[si], pts);
        for (uint32_t i = 0; i < n; i++)
            r_acc(r_cell(&groups[gi], r_bucket(q, pts[i].ts)), &pts[i]);
    }
    for (uint32_t i = 1; i < ng; i++) /* groups in tag order */
        for (uint32_t j = i; j > 0 && r_group_cmp(q, &groups[j - 1], &groups[j]) > 0; j--) {
            struct r_agroup t = groups[j];
            groups[j] = groups[j - 1];
            groups[j - 1] = t;
        }
    for (uint32_t i = 0; i < ng; i++) {
        r_group_rows(q, &groups[i], e);
        for (uint32_t k = 0; k < groups[i].n; k++)
            free(groups[i].c[k].vals);
        free(groups[i].c);
    }
}

/* The expected result of q over d. */
static void
r_eval(const struct r_data *d, const struct rq *q, struct eres *e)
{
    uint32_t sel[R_GROUPS];
    uint32_t nsel = r_select(d, q, sel);
    memset(e, 0, sizeof(*e));
    e->limit = q->limit;
    for (uint32_t i = 0; i < nsel; i++) {
        enum qt_vtype vt = r_out_vt(q, d->ser[sel[i]][q->field].vt);
        bool bad = vt == 0 || (q->kind == Q_EPI && vt == QT_VT_STRING);
        for (int j = 0; !bad && q->kind == Q_AGG && j < q->nfns; j++)
            bad = !r_fn_ok(q->fns[j].fn, vt);
        if (bad) {
            e->error = QT_EINVAL;
            return;
        }
    }
    struct r_val *pts = malloc((R_SLOTS * 2 + 16) * sizeof(*pts));
    if (q->kind == Q_AGG)
        r_agg(d, q, sel, nsel, pts, e);
    else
        r_series_rows(d, q, sel, nsel, pts, e);
    free(pts);
}

/* ==== the differential test: comparison and driver ======================================= */

static bool
cell_eq(const struct ecell *e, const struct jcell *j)
{
    switch (e->kind) {
    case E_NULL: return j->kind == J_NULL;
    case E_INT: return j->kind == J_NUM && j->is_int && j->i == e->i;
    case E_BOOL: return j->kind == J_BOOL && j->b == (e->i != 0);
    case E_STR: return j->kind == J_STR && strcmp(j->s, e->s) == 0;
    default:
        if (!isfinite(e->f))
            return j->kind == J_NULL;
        if (j->kind != J_NUM)
            return false;
        if (e->tol == 0)
            return j->d == e->f && signbit(j->d) == signbit(e->f);
        return fabs(j->d - e->f) <= e->tol;
    }
}

static void
cell_print(const struct ecell *e)
{
    switch (e->kind) {
    case E_NULL: printf("null"); break;
    case E_INT: printf("%lld", (long long)e->i); break;
    case E_BOOL: printf("%s", e->i ? "true" : "false"); break;
    case E_STR: printf("\"%s\"", e->s); break;
    default: printf("%.17g~%g", e->f, e->tol); break;
    }
}

/* 0 when the executor's JSON output (or error rc) matches e. */
static int
r_compare(const char *text, int rc, const struct qt_qry_error *err, const char *json,
          const struct eres *e)
{
    if (e->error != 0 || rc != 0) {
        if (rc == e->error)
            return 0;
        printf("query: %s\n  rc %d (%s) want %d\n", text, rc, rc ? err->message : "", e->error);
        return -1;
    }
    struct jres j;
    int bad = jres_parse(json, &j) != 0 || j.ncols != e->ncols || j.nrows != e->nrows;
    for (uint32_t i = 0; !bad && i < e->ncols; i++)
        bad = strcmp(j.cols[i], e->cols[i]) != 0;
    uint32_t at = 0;
    for (; !bad && at < e->nrows * e->ncols; at++)
        bad = !cell_eq(&e->c[at], &j.c[at]);
    if (bad) {
        printf("query: %s\n  got %u cols x %u rows, want %u x %u", text, j.ncols, j.nrows, e->ncols,
               e->nrows);
        if (at > 0 && at <= e->nrows * e->ncols) {
            at--;
            printf("; first difference at row %u col %s: want ", at / e->ncols,
                   e->cols[at % e->ncols]);
            cell_print(&e->c[at]);
        }
        printf("\n  output head: %.600s\n", json);
    }
    jres_free(&j);
    return bad ? -1 : 0;
}

/* Run n random queries against db and the reference. */
static int
r_queries(struct qt_db *db, const struct r_data *d, uint64_t *rng, uint32_t n, const char *state)
{
    struct outbuf o = {0};
    char text[2048];
    int failures = 0;
    for (uint32_t i = 0; i < n && failures < 5; i++) {
        struct rq q;
        rq_gen(&q, rng);
        rq_text(&q, text, sizeof(text));
        struct eres e;
        r_eval(d, &q, &e);
        struct qt_qry_error err;
        memset(&err, 0, sizeof(err));
        int rc = run_q(db, text, QT_OUT_JSON, &o, NULL, &err, NULL);
        if (rc != 0 && e.error == 0 && err.position >= 0)
            printf("parse error at %d: %s\n", err.position, err.message);
        if (getenv("QT_EXEC_VERBOSE") != NULL)
            printf("%s -> rc %d, %u rows\n", text, rc, e.nrows);
        if (r_compare(text, rc, &err, o.p != NULL ? o.p : "", &e) != 0) {
            printf("  (state %s, query %u)\n", state, i);
            failures++;
        }
        if (i % 16 == 0 && e.error == 0) { /* the other encodings run without error */
            enum qt_out_format f = i % 32 == 0 ? QT_OUT_TABLE : QT_OUT_CSV;
            if (run_q(db, text, f, &o, NULL, &err, NULL) != 0) {
                printf("query %s: format %d failed: %s\n", text, f, err.message);
                failures++;
            }
        }
        free(e.c);
    }
    free(o.p);
    return failures;
}

static uint32_t
r_query_count(void)
{
    const char *s = getenv("QT_EXEC_QUERIES");
    return s != NULL ? (uint32_t)strtoul(s, NULL, 0) : 1000;
}

TEST(differential_random_queries)
{
    uint64_t rng = qt_test_seed() ^ 0xd1ffull;
    struct r_data *d = malloc(sizeof(*d));
    CHECK(d != NULL);
    r_gen(d, &rng);
    uint32_t nq = r_query_count();
    static const char *const states[3] = {"memtable", "flushed", "mixed"};
    char dir[600];
    for (int st = 0; st < 3; st++) {
        snprintf(dir, sizeof(dir), "%s/%s", qt_test_dir(), states[st]);
        struct qt_db *db = open_db(dir, R_SHARD);
        CHECK(db != NULL);
        if (st < 2) {
            CHECK_OK(r_load(db, d, 0, d->nw));
            if (st == 1)
                CHECK_OK(qt_db_flush(db));
        } else { /* segments overlapping each other, memtable on top */
            CHECK_OK(r_load(db, d, 0, d->nw / 2));
            CHECK_OK(qt_db_flush(db));
            CHECK_OK(r_load(db, d, d->nw / 2, d->nw * 4 / 5));
            CHECK_OK(qt_db_flush(db));
            CHECK_OK(r_load(db, d, d->nw * 4 / 5, d->nw));
        }
        int failures = r_queries(db, d, &rng, nq, states[st]);
        CHECK_OK(qt_db_close(db));
        CHECK_EQ(failures, 0);
    }
    r_free(d);
    free(d);
}

/* ==== every query form of the issue, over a small city ==================================== */

#include "tests/citygen.h"

#define CITY_BATCH 2048

struct city_batch {
    struct qt_batch_line lines[CITY_BATCH];
    struct qt_batch_field fields[CITY_BATCH][QT_CITY_FIELDS_MAX];
    char keys[CITY_BATCH][160];
    uint32_t n;
};

/* One city point as a batch line; meters also report their reading as
 * meter.kwh (the field name the examples use). */
static void
city_line(struct city_batch *b, const struct qt_city_point *p)
{
    struct qt_batch_line *l = &b->lines[b->n];
    struct qt_batch_field *f = b->fields[b->n];
    l->key = b->keys[b->n];
    l->key_len = qt_city_group_key(p, b->keys[b->n], sizeof(b->keys[0]));
    l->ts = p->ts_ns;
    l->fields = f;
    l->n_fields = 0;
    for (uint32_t k = 0; k < p->nfields; k++) {
        struct qt_batch_field *x = &f[l->n_fields++];
        *x = (struct qt_batch_field){.name = p->fields[k].name,
                                     .name_len = (uint32_t)strlen(p->fields[k].name),
                                     .vtype = p->fields[k].type};
        if (x->vtype == QT_VT_FLOAT)
            x->v.f = p->fields[k].f;
        else if (x->vtype == QT_VT_INT)
            x->v.i = p->fields[k].scaled;
        else if (x->vtype == QT_VT_BOOL)
            x->v.b = (uint8_t)(p->fields[k].scaled != 0);
        else
            x->v.s = p->fields[k].s;
        if (p->meas == QT_CITY_METER && l->n_fields < QT_CITY_FIELDS_MAX) {
            f[l->n_fields] = *x;
            f[l->n_fields].name = "kwh";
            f[l->n_fields++].name_len = 3;
        }
    }
    b->n++;
}

static int
city_flush_batch(struct qt_db *db, struct city_batch *b)
{
    struct qt_write_result res;
    int rc = b->n > 0 ? qt_db_write(db, b->lines, b->n, NULL, NULL, &res) : 0;
    if (rc == 0 && b->n > 0 && res.lines_ok != b->n)
        rc = -1;
    b->n = 0;
    return rc;
}

static void
city_config(struct qt_city_config *cfg)
{
    qt_city_config_default(cfg, 100);
    cfg->stations[QT_CITY_AIR] = 4;
    cfg->stations[QT_CITY_WATER_QUALITY] = 2;
    cfg->stations[QT_CITY_WATER] = 12;
    cfg->stations[QT_CITY_GRID] = 24; /* three substations: xihu has one */
    cfg->stations[QT_CITY_METER] = 20;
    cfg->duration_ns = 8 * HOUR;
}

/* Load the small city: state 0 memtable only, 1 flushed, 2 mixed (half
 * flushed, a quarter flushed over it, the rest in the memtable). */
static int
city_load(struct qt_db *db, int state)
{
    struct qt_city_config cfg;
    city_config(&cfg);
    struct qt_city_gen *g = NULL;
    int rc = qt_city_gen_create(&cfg, &g);
    struct city_batch *b = malloc(sizeof(*b));
    struct qt_city_point p;
    uint64_t lines = 0, total = 0;
    if (rc != 0 || b == NULL)
        return rc != 0 ? rc : QT_ENOMEM;
    while (qt_city_next(g, &p) == 1) /* count first: the mixed state splits by lines */
        total++;
    qt_city_gen_destroy(g);
    rc = qt_city_gen_create(&cfg, &g);
    b->n = 0;
    while (rc == 0 && qt_city_next(g, &p) == 1) {
        city_line(b, &p);
        lines++;
        bool cut = state == 2 && (lines == total / 2 || lines == total * 3 / 4);
        if (b->n == CITY_BATCH || cut)
            rc = city_flush_batch(db, b);
        if (rc == 0 && cut)
            rc = qt_db_flush(db);
    }
    if (rc == 0)
        rc = city_flush_batch(db, b);
    /* the quoted-names example: a day before the epoch */
    for (int i = 0; rc == 0 && i < 12; i++)
        rc = put(db, "air\\ quality,owner\\ dept=env", "pm2.5", -DAY + i * 2 * HOUR, QT_VT_FLOAT,
                 12.5 + i, 0, NULL);
    if (rc == 0 && state == 1)
        rc = qt_db_flush(db);
    qt_city_gen_destroy(g);
    free(b);
    return rc;
}

/* The examples of design/query.md section 3 (the forms), as written. */
static const char *const forms[] = {
    "water.pressure{site=\"w0012\"} [2026-11-15T00:00:00Z, 2026-11-15T06:00:00Z)",
    "air.pm25{station=\"a0001\"} [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | avg, max by 1h",
    "grid.voltage [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | avg by 1h, district",
    "air.pm25 [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | where value > 150 | count by station",
    "air.pm25 [2026-11-15T00:00:00Z, 2026-11-16T00:00:00Z) | count, sum, min, max",
    "grid.voltage{district=\"xihu\"} | last",
    "air.pm25{district=~\"xi.*\", site!~\"a\\d+\", type!=\"x\", station in (\"a1\", \"a2\")} "
    "[now-6h, now]",
    "meter.kwh [1794787200s, 1794873600000ms) | delta | sum by 1d tz \"Asia/Shanghai\", district "
    "| fill(0)",
    "air.pm25 [2026-11-15T08:00:00.123456789+08:00, now+1h30m) | episodes value > 150 for 10m",
    "water.level [now-7d, now) | gaps > 5m | limit 10",
    "air.pm25 | percentile(99.9), stddev, spread, first, last by 15m | fill(linear)",
    "grid.power [now-1w, now) | rate | where value != 0 | avg by 1d tz \"Europe/Berlin\" | "
    "fill(prev)",
    "\"air quality\".\"pm2.5\"{\"owner dept\"=\"env\"} [-86400s, 0s)",
    "measurements",
    "measurements {district=\"xihu\"}",
    "fields air",
    "tags air{district=\"xihu\"}",
    "values district",
    "values station in air.pm25{district=\"xihu\"} | limit 50",
    "series air.pm25{district=\"xihu\"}",
    "series {site=~\"w00.*\"} | limit 1000",
};
#define NFORMS   (sizeof(forms) / sizeof(forms[0]))
#define CITY_NOW 1794744000000000000ll /* 2026-11-15T12:00:00Z */

/* Same shape and cells (numbers within relative 1e-9: sums from block
 * statistics and from points round differently). */
static bool
jres_same(const struct jres *a, const struct jres *b)
{
    if (a->ncols != b->ncols || a->nrows != b->nrows)
        return false;
    for (uint32_t i = 0; i < a->ncols; i++)
        if (strcmp(a->cols[i], b->cols[i]) != 0)
            return false;
    for (uint32_t i = 0; i < a->nrows * a->ncols; i++) {
        const struct jcell *x = &a->c[i], *y = &b->c[i];
        if (x->kind != y->kind || (x->kind == J_STR && strcmp(x->s, y->s) != 0) ||
            (x->kind == J_BOOL && x->b != y->b) ||
            (x->kind == J_NUM && fabs(x->d - y->d) > 1e-9 * (fabs(x->d) + 1)))
            return false;
    }
    return true;
}

TEST(forms_agree_across_storage_states)
{
    struct jres ref[NFORMS];
    uint64_t rows[NFORMS];
    struct outbuf o = {0};
    struct qt_qry_error err;
    char dir[600];
    for (int st = 0; st < 3; st++) {
        snprintf(dir, sizeof(dir), "%s/state%d", qt_test_dir(), st);
        struct qt_db *db = open_db(dir, 0);
        CHECK(db != NULL);
        CHECK_OK(city_load(db, st));
        for (size_t i = 0; i < NFORMS; i++) {
            struct qt_qry_stats qs;
            out_reset(&o);
            int rc = qt_qry_run(db, forms[i], strlen(forms[i]), CITY_NOW, NULL, QT_OUT_JSON, out_cb,
                                &o, &qs, &err);
            if (rc != 0)
                printf("%s: %s\n", forms[i], err.message);
            CHECK_OK(rc);
            struct jres j;
            CHECK_OK(jres_parse(o.p, &j));
            if (st == 0) {
                ref[i] = j;
                rows[i] = qs.rows;
            } else {
                bool same = jres_same(&ref[i], &j);
                if (!same)
                    printf("state %d differs on %s\n%.800s\n", st, forms[i], o.p);
                jres_free(&j);
                CHECK(same);
            }
            if (st == 1 && i == 4) /* a whole-range aggregate over flushed blocks */
                CHECK(qs.stats_points > 0 && qs.decoded_points < qs.stats_points);
            if (st == 1 && i == 3) /* where: every value decoded */
                CHECK(qs.stats_points == 0 && qs.decoded_points > 0);
            for (int f = 0; f < 2; f++) { /* the other encodings */
                out_reset(&o);
                CHECK_OK(qt_qry_run(db, forms[i], strlen(forms[i]), CITY_NOW, NULL,
                                    (enum qt_out_format)f, out_cb, &o, NULL, &err));
                if (st == 1 && f == 0 && getenv("QT_EXEC_VERBOSE") != NULL)
                    printf("== %s\n%.3000s", forms[i], o.p);
            }
        }
        CHECK_OK(qt_db_close(db));
    }
    /* the data is there: most forms return rows */
    uint32_t nonempty = 0;
    for (size_t i = 0; i < NFORMS; i++) {
        nonempty += rows[i] > 0;
        if (rows[i] == 0 && getenv("QT_EXEC_VERBOSE") != NULL)
            printf("no rows: %s\n", forms[i]);
        jres_free(&ref[i]);
    }
    CHECK(nonempty >= NFORMS - 3); /* no pm25 above 150 in 8 h; stations a1, a2 do not exist */
    free(o.p);
}

/* ==== byte-exact renderings ============================================================= */

static int
expect_out(struct qt_db *db, const char *q, enum qt_out_format f, const char *want)
{
    struct outbuf o = {0};
    struct qt_qry_error err;
    int rc = run_q(db, q, f, &o, NULL, &err, NULL);
    if (rc != 0)
        printf("%s: %s\n", q, err.message);
    else if (strcmp(o.p, want) != 0)
        printf("%s (format %d):\n--- got\n%s--- want\n%s---\n", q, (int)f, o.p, want);
    int same = rc == 0 && strcmp(o.p, want) == 0;
    free(o.p);
    return same ? 0 : -1;
}

TEST(render_byte_exact)
{
    struct qt_db *db = small_db();
    CHECK(db != NULL);
    CHECK_OK(put(db, "air,district=a\\,b,station=x\"y", "note", T0, QT_VT_STRING, 0, 0,
                 "say \"hi\", \\ ok"));
    const char *agg = "air.pm25 | avg, max, count by 1h";
    CHECK_OK(expect_out(db, agg, QT_OUT_TABLE,
                        "time                  avg    max  count\n"
                        "--------------------  -----  ---  -----\n"
                        "2026-11-16T00:00:00Z  61.75  125      4\n"
                        "2026-11-16T01:00:00Z  87.75  175      4\n"
                        "(2 rows)\n"));
    CHECK_OK(expect_out(db, agg, QT_OUT_CSV,
                        "time,avg,max,count\n"
                        "2026-11-16T00:00:00Z,61.75,125,4\n"
                        "2026-11-16T01:00:00Z,87.75,175,4\n"));
    CHECK_OK(expect_out(db, agg, QT_OUT_JSON,
                        "{\"columns\":[\"time\",\"avg\",\"max\",\"count\"],\"rows\":[\n"
                        "[1794787200000000000,61.75,125,4],\n"
                        "[1794790800000000000,87.75,175,4]\n"
                        "]}\n"));
    const char *raw = "air.pm25{station=\"a0001\"} [2026-11-16T00:30:00Z, 2026-11-16T01:00:01Z]";
    CHECK_OK(expect_out(db, raw, QT_OUT_TABLE,
                        "time                  district  station  value\n"
                        "--------------------  --------  -------  -----\n"
                        "2026-11-16T00:30:00Z  xihu      a0001     11.5\n"
                        "2026-11-16T01:00:00Z  xihu      a0001     12.5\n"
                        "(2 rows)\n"));
    CHECK_OK(expect_out(db, raw, QT_OUT_JSON,
                        "{\"columns\":[\"time\",\"district\",\"station\",\"value\"],\"rows\":[\n"
                        "[1794789000000000000,\"xihu\",\"a0001\",11.5],\n"
                        "[1794790800000000000,\"xihu\",\"a0001\",12.5]\n"
                        "]}\n"));
    /* escaping: a comma and a quote in tag values, quotes and a backslash in a string */
    CHECK_OK(expect_out(db, "air.note", QT_OUT_CSV,
                        "time,district,station,value\n"
                        "2026-11-16T00:00:00Z,\"a,b\",\"x\"\"y\",\"say \"\"hi\"\", \\ ok\"\n"));
    CHECK_OK(expect_out(db, "air.note", QT_OUT_JSON,
                        "{\"columns\":[\"time\",\"district\",\"station\",\"value\"],\"rows\":[\n"
                        "[1794787200000000000,\"a,b\",\"x\\\"y\",\"say \\\"hi\\\", \\\\ ok\"]\n"
                        "]}\n"));
    /* fill: linear between real buckets, none after the last; prev; a number */
    const char *fl = "air.pm25{station=\"a0001\"} [2026-11-16T00:00:00Z, 2026-11-16T02:15:00Z) "
                     "| max by 15m | fill(linear)";
    CHECK_OK(expect_out(db, fl, QT_OUT_CSV,
                        "time,max\n"
                        "2026-11-16T00:00:00Z,10.5\n"
                        "2026-11-16T00:15:00Z,11\n"
                        "2026-11-16T00:30:00Z,11.5\n"
                        "2026-11-16T00:45:00Z,12\n"
                        "2026-11-16T01:00:00Z,12.5\n"
                        "2026-11-16T01:15:00Z,13\n"
                        "2026-11-16T01:30:00Z,13.5\n"
                        "2026-11-16T01:45:00Z,\n"
                        "2026-11-16T02:00:00Z,\n"));
    CHECK_OK(expect_out(db,
                        "air.n [2026-11-16T00:00:00Z, 2026-11-16T01:00:00Z) | sum, first by 20m "
                        "| fill(prev)",
                        QT_OUT_JSON,
                        "{\"columns\":[\"time\",\"sum\",\"first\"],\"rows\":[\n"
                        "[1794787200000000000,-3,-3],\n"
                        "[1794788400000000000,4,4],\n"
                        "[1794789600000000000,4,4]\n"
                        "]}\n"));
    CHECK_OK(expect_out(db,
                        "air.state [2026-11-16T00:00:00Z, 2026-11-16T01:00:00Z) | count, last by "
                        "20m | fill(-1.5)",
                        QT_OUT_TABLE,
                        "time                  count  last\n"
                        "--------------------  -----  ----\n"
                        "2026-11-16T00:00:00Z      1  ok\n"
                        "2026-11-16T00:20:00Z      1  ok\n"
                        "2026-11-16T00:40:00Z   -1.5  -1.5\n"
                        "(3 rows)\n"));
    /* episodes and gaps: durations as text in tables, ns elsewhere */
    CHECK_OK(expect_out(db, "air.pm25 | episodes value >= 150", QT_OUT_TABLE,
                        "time                  district  station  end                   "
                        "duration  peak\n"
                        "--------------------  --------  -------  --------------------  "
                        "--------  ----\n"
                        "2026-11-16T01:01:00Z  binjiang  a0002    2026-11-16T01:31:00Z       "
                        "30m   175\n"
                        "(1 row)\n"));
    CHECK_OK(expect_out(db,
                        "air.pm25{station=\"a0001\"} [2026-11-16T00:00:00Z, 2026-11-16T03:00:00Z) "
                        "| gaps >= 30m",
                        QT_OUT_CSV,
                        "time,district,station,end,duration\n"
                        "2026-11-16T00:00:00Z,xihu,a0001,2026-11-16T00:30:00Z,1800000000000\n"
                        "2026-11-16T00:30:00Z,xihu,a0001,2026-11-16T01:00:00Z,1800000000000\n"
                        "2026-11-16T01:00:00Z,xihu,a0001,2026-11-16T01:30:00Z,1800000000000\n"
                        "2026-11-16T01:30:00Z,xihu,a0001,2026-11-16T03:00:00Z,5400000000000\n"));
    /* empty results */
    CHECK_OK(expect_out(db, "nothing.here", QT_OUT_JSON,
                        "{\"columns\":[\"time\",\"value\"],\"rows\":[]}\n"));
    CHECK_OK(expect_out(db, "nothing.here | count", QT_OUT_TABLE,
                        "time  count\n"
                        "----  -----\n"
                        "(0 rows)\n"));
    CHECK_OK(
        expect_out(db, "values station in air{district=\"xihu\"}", QT_OUT_CSV, "name\na0001\n"));
    CHECK_OK(qt_db_close(db));
}

static int
err_cb_capture(void *arg, const char *buf, size_t len)
{
    return out_cb(arg, buf, len);
}

TEST(errors_render_and_classify)
{
    struct qt_db *db = small_db();
    CHECK(db != NULL);
    struct outbuf o = {0};
    struct qt_qry_error err;
    /* parse error: position and caret / JSON */
    const char *bad = "air.pm25 [now-1h, now";
    CHECK_RC(run_q(db, bad, QT_OUT_JSON, &o, NULL, &err, NULL), QT_ESYNTAX);
    CHECK(err.position == (int32_t)strlen(bad));
    out_reset(&o);
    CHECK_OK(qt_qry_error_emit(&err, bad, strlen(bad), QT_OUT_JSON, err_cb_capture, &o));
    CHECK(strcmp(o.p, "{\"error\": \"expected ']' or ')'\", \"position\": 21}\n") == 0);
    out_reset(&o);
    CHECK_OK(qt_qry_error_emit(&err, bad, strlen(bad), QT_OUT_TABLE, err_cb_capture, &o));
    CHECK(strcmp(o.p, "error: expected ']' or ')'\n  air.pm25 [now-1h, now\n"
                      "                       ^\n") == 0);
    /* execution errors: no position */
    CHECK_RC(run_q(db, "air.state | sum", QT_OUT_JSON, &o, NULL, &err, NULL), QT_EINVAL);
    CHECK(err.position == -1);
    CHECK(strcmp(err.message, "sum is not defined for string values (series "
                              "air,district=xihu,station=a0001 state)") == 0);
    out_reset(&o);
    CHECK_OK(qt_qry_error_emit(&err, NULL, 0, QT_OUT_JSON, err_cb_capture, &o));
    CHECK(strcmp(o.p, "{\"error\": \"sum is not defined for string values (series "
                      "air,district=xihu,station=a0001 state)\", \"position\": null}\n") == 0);
    CHECK_RC(run_q(db, "air.state | rate", QT_OUT_JSON, &o, NULL, &err, NULL), QT_EINVAL);
    CHECK(strstr(err.message, "rate is not defined for string") != NULL);
    CHECK_RC(run_q(db, "air.state | episodes value > 1", QT_OUT_CSV, &o, NULL, &err, NULL),
             QT_EINVAL);
    /* booleans: count/first/last/sum yes, avg no */
    CHECK_OK(put(db, "water,site=w1", "alarm", T0, QT_VT_BOOL, 0, 1, NULL));
    CHECK_OK(put(db, "water,site=w1", "alarm", T0 + MIN, QT_VT_BOOL, 0, 0, NULL));
    CHECK_OK(put(db, "water,site=w1", "alarm", T0 + 2 * MIN, QT_VT_BOOL, 0, 1, NULL));
    CHECK_OK(expect_out(db, "water.alarm | count, sum, first, last", QT_OUT_CSV,
                        "time,count,sum,first,last\n2026-11-16T00:00:00Z,3,2,true,true\n"));
    CHECK_OK(expect_out(db, "water.alarm | where value == 0", QT_OUT_CSV,
                        "time,site,value\n2026-11-16T00:01:00Z,w1,false\n"));
    CHECK_RC(run_q(db, "water.alarm | avg", QT_OUT_JSON, &o, NULL, &err, NULL), QT_EINVAL);
    CHECK_RC(run_q(db, "water.alarm | delta", QT_OUT_JSON, &o, NULL, &err, NULL), QT_EINVAL);
    /* delta of int64 extremes overflows: a clear error, not a wrapped value */
    CHECK_OK(put(db, "m,t=a", "i", T0, QT_VT_INT, 0, INT64_MIN, NULL));
    CHECK_OK(put(db, "m,t=a", "i", T0 + SEC, QT_VT_INT, 0, INT64_MAX, NULL));
    CHECK_RC(run_q(db, "m.i | delta", QT_OUT_JSON, &o, NULL, &err, NULL), QT_ELIMIT);
    CHECK(strstr(err.message, "overflows") != NULL);
    /* sums beyond int64 fall back to float */
    CHECK_OK(expect_out(db, "m.i | sum, spread, min, max", QT_OUT_CSV,
                        "time,sum,spread,min,max\n"
                        "2026-11-16T00:00:00Z,-1,1.8446744073709552e+19,-9223372036854775808,"
                        "9223372036854775807\n"));
    free(o.p);
    CHECK_OK(qt_db_close(db));
}

/* ==== limits, deadline, client gone ====================================================== */

TEST(limits_fail_the_query)
{
    struct qt_db *db = small_db();
    CHECK(db != NULL);
    struct outbuf o = {0};
    struct qt_qry_error err;
    struct qt_qry_stats st;
    struct qt_qry_limits lim = {.rows_max = 3};
    CHECK_RC(run_q(db, "air.pm25", QT_OUT_JSON, &o, &lim, &err, &st), QT_ELIMIT);
    CHECK(strstr(err.message, "more than 3 rows") != NULL && err.position == -1);
    CHECK_OK(run_q(db, "air.pm25 | limit 3", QT_OUT_JSON, &o, &lim, &err, &st));
    CHECK_EQ(st.rows, 3);
    lim = (struct qt_qry_limits){.series_max = 1};
    CHECK_RC(run_q(db, "air.pm25 | count", QT_OUT_CSV, &o, &lim, &err, NULL), QT_ELIMIT);
    CHECK(strstr(err.message, "more than 1 series") != NULL);
    CHECK_OK(run_q(db, "air.pm25{station=\"a0001\"} | count", QT_OUT_CSV, &o, &lim, &err, NULL));
    CHECK_RC(run_q(db, "series", QT_OUT_CSV, &o, &lim, &err, NULL), QT_ELIMIT);
    lim = (struct qt_qry_limits){.mem_bytes_max = 4096};
    CHECK_RC(run_q(db, "air.pm25 | count by 1m, station", QT_OUT_TABLE, &o, &lim, &err, NULL),
             QT_ELIMIT);
    CHECK(strstr(err.message, "memory limit of 4096 bytes") != NULL);
    /* fill over an unbounded range is bounded by QT_QUERY_BUCKETS_MAX */
    lim = (struct qt_qry_limits){.rows_max = 1ull << 40};
    CHECK_RC(run_q(db, "air.pm25 | count by 1ms | fill(0)", QT_OUT_CSV, &o, &lim, &err, NULL),
             QT_ELIMIT);
    CHECK(strstr(err.message, "buckets in one group") != NULL);
    /* a client that goes away stops the query */
    o.fail_after = 1;
    CHECK_RC(run_q(db, "air.pm25", QT_OUT_CSV, &o, NULL, &err, NULL), QT_ECLOSED);
    CHECK(strstr(err.message, "output closed") != NULL);
    free(o.p);
    CHECK_OK(qt_db_close(db));
}

TEST(deadline_fails_the_query)
{
    struct qt_db *db = open_db(qt_test_dir(), 0);
    CHECK(db != NULL);
    static struct qt_batch_line lines[1000];
    static struct qt_batch_field fields[1000];
    char keys[40][32];
    for (int s = 0; s < 40; s++)
        snprintf(keys[s], sizeof(keys[s]), "m,s=%02d", s);
    for (int t = 0; t < 200; t++) { /* 40 series x 5000 points */
        for (int k = 0; k < 1000; k++) {
            int s = k % 40;
            int64_t ts = T0 + ((int64_t)t * 25 + k / 40) * SEC;
            fields[k] = (struct qt_batch_field){.name = "v",
                                                .name_len = 1,
                                                .vtype = QT_VT_FLOAT,
                                                .v.f = (double)((t * 7 + k) % 1000) / 10};
            lines[k] = (struct qt_batch_line){.key = keys[s],
                                              .key_len = (uint32_t)strlen(keys[s]),
                                              .ts = ts,
                                              .n_fields = 1,
                                              .fields = &fields[k]};
        }
        CHECK_OK(qt_db_write(db, lines, 1000, NULL, NULL, NULL));
    }
    CHECK_OK(qt_db_flush(db));
    struct outbuf o = {0};
    struct qt_qry_error err;
    struct qt_qry_stats st;
    const char *q = "m.v | where value > 1 | stddev, percentile(50) by 1s";
    struct qt_qry_limits lim = {.rows_max = 1u << 20};
    CHECK_OK(run_q(db, q, QT_OUT_JSON, &o, &lim, &err, &st));
    CHECK_EQ(st.series, 40);
    if (st.elapsed_ns > 3000000) { /* slow enough for a 1 ms deadline to bite */
        lim.deadline_ms = 1;
        CHECK_RC(run_q(db, q, QT_OUT_JSON, &o, &lim, &err, &st), QT_ETIMEOUT);
        CHECK(strstr(err.message, "deadline of 1 ms") != NULL);
    } else {
        printf("deadline: query took only %llu ns; check skipped\n",
               (unsigned long long)st.elapsed_ns);
    }
    free(o.p);
    CHECK_OK(qt_db_close(db));
}

TEST(end_of_time_points)
{
    struct qt_db *db = open_db(qt_test_dir(), 0);
    CHECK(db != NULL);
    /* Storage keeps one shard's worth off each end of int64 (its shard
     * bounds must fit); writes there are rejected, not fatal. */
    CHECK(put(db, "m,t=a", "v", INT64_MAX, QT_VT_FLOAT, 2.5, 0, NULL) != 0);
    CHECK(put(db, "m,t=a", "v", INT64_MIN, QT_VT_FLOAT, 2.5, 0, NULL) != 0);
    const int64_t last_ns = (INT64_MAX / DAY) * DAY - 1; /* 2262-04-10T23:59:59.999999999Z */
    CHECK_OK(put(db, "m,t=a", "v", INT64_MIN + 2 * DAY, QT_VT_FLOAT, 0, 0, NULL));
    CHECK_OK(put(db, "m,t=a", "v", last_ns, QT_VT_FLOAT, 2.5, 0, NULL));
    CHECK_OK(put(db, "m,t=a", "v", 0, QT_VT_FLOAT, 0.5, 0, NULL));
    for (int pass = 0; pass < 2; pass++) { /* memtable, then flushed */
        if (pass == 1)
            CHECK_OK(qt_db_flush(db));
        CHECK_OK(expect_out(db, "m.v | count, first, last", QT_OUT_CSV,
                            "time,count,first,last\n1677-09-23T00:12:43.145224192Z,3,0,2.5\n"));
        CHECK_OK(expect_out(db, "m.v", QT_OUT_JSON,
                            "{\"columns\":[\"time\",\"t\",\"value\"],\"rows\":[\n"
                            "[-9223199236854775808,\"a\",0],\n"
                            "[0,\"a\",0.5],\n"
                            "[9223286399999999999,\"a\",2.5]\n"
                            "]}\n"));
        CHECK_OK(expect_out(db, "m.v | gaps > 1000d", QT_OUT_CSV,
                            "time,t,end,duration\n"
                            "1677-09-23T00:12:43.145224192Z,a,1970-01-01T00:00:00Z,"
                            "9223199236854775808\n"
                            "1970-01-01T00:00:00Z,a,2262-04-10T23:59:59.999999999Z,"
                            "9223286399999999999\n"));
    }
    CHECK_OK(qt_db_close(db));
}

/* Local-day buckets across Europe/Berlin's 23- and 25-hour days, with fill
 * walking the same buckets. */
TEST(tz_buckets_follow_dst)
{
    struct qt_db *db = open_db(qt_test_dir(), 0);
    CHECK(db != NULL);
    const int64_t mar28 = 1774656000000000000ll; /* 2026-03-28T00:00:00Z */
    for (int h = 0; h < 96; h++)
        CHECK_OK(put(db, "m,t=a", "v", mar28 + h * HOUR, QT_VT_FLOAT, 1, 0, NULL));
    const int64_t oct24 = 1792800000000000000ll; /* 2026-10-24T00:00:00Z */
    for (int h = 0; h < 72; h++)
        CHECK_OK(put(db, "m,t=b", "v", oct24 + h * HOUR, QT_VT_FLOAT, 1, 0, NULL));
    CHECK_OK(expect_out(db,
                        "m.v{t=\"a\"} [2026-03-27T00:00:00Z, 2026-04-01T00:00:00Z) | count by 1d "
                        "tz \"Europe/Berlin\" | fill(0)",
                        QT_OUT_CSV,
                        "time,count\n"
                        "2026-03-26T23:00:00Z,0\n"  /* the 27th: before the data */
                        "2026-03-27T23:00:00Z,23\n" /* the 28th: from 00:00Z */
                        "2026-03-28T23:00:00Z,23\n" /* the 29th: 23 hours */
                        "2026-03-29T22:00:00Z,24\n"
                        "2026-03-30T22:00:00Z,24\n"
                        "2026-03-31T22:00:00Z,2\n"));
    CHECK_OK(expect_out(db, "m.v{t=\"b\"} | count by 1d tz \"Europe/Berlin\"", QT_OUT_CSV,
                        "time,count\n"
                        "2026-10-23T22:00:00Z,22\n"
                        "2026-10-24T22:00:00Z,25\n" /* the 25th: 25 hours */
                        "2026-10-25T23:00:00Z,24\n"
                        "2026-10-26T23:00:00Z,1\n"));
    CHECK_OK(qt_db_close(db));
}
