/*
 * test_engine_rollup_query.c -- the rollup planner (query/rplan.h) against
 * raw data: random aggregate queries run once with the database's rollup
 * rules (the planner may read rollups) and once without (raw only) must
 * give byte-identical JSON, and the stats must say which source answered.
 *
 * Data: 6 one-hour shards of two stations in two districts, a float field
 * (halves, NaN and -0.0 now and then) and an integer field, out of order
 * with duplicates; rollups air=1m,10m,1h computed; then late points left in
 * the memtable of one shard and flushed into another, so plans mix rollup
 * and raw pieces.
 */
#include "format/qt_alloc.h"
#include "format/qt_err.h"
#include "harness.h"
#include "opsutil.h"
#include "query/exec.h"
#include "storage/compact.h"
#include "storage/retention.h"
#include "storage/rollup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RQ_SHARDS 6
#define RQ_STEP   7000000000ll /* 7 s */
#define RQ_SLOTS  (RQ_SHARDS * 3600 / 7)

static const char *const rq_groups[4] = {"air,district=d1,st=a", "air,district=d1,st=b",
                                         "air,district=d2,st=c", "air,district=d2,st=d"};

static int
rq_write(struct qt_db *db, uint32_t g, int64_t ts, uint64_t *rng)
{
    uint64_t r = qt_test_rand(rng);
    double v = (double)(int64_t)(r % 2001) * 0.5 - 500.0;
    if (r % 97 == 0)
        v = NAN;
    else if (r % 89 == 0)
        v = -0.0;
    struct qt_batch_field f[2] = {
        {.name = "v", .name_len = 1, .vtype = QT_VT_FLOAT, .v.f = v},
        {.name = "n", .name_len = 1, .vtype = QT_VT_INT, .v.i = (int64_t)(r >> 20) % 100000},
    };
    struct qt_batch_line l = {.key = rq_groups[g],
                              .key_len = (uint32_t)strlen(rq_groups[g]),
                              .ts = ts,
                              .n_fields = 2,
                              .fields = f};
    struct qt_write_result wr;
    return qt_db_write(db, &l, 1, NULL, NULL, &wr);
}

struct rq_buf {
    char *p;
    size_t len, cap;
};

static int
rq_out(void *arg, const char *buf, size_t len)
{
    struct rq_buf *b = arg;
    if (b->len + len > b->cap) {
        size_t cap = (b->len + len) * 2 + 4096;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, buf, len);
    b->len += len;
    return 0;
}

/* Run text; *out holds the JSON, st the stats. */
static int
rq_run(struct qt_db *db, const char *text, struct rq_buf *out, struct qt_qry_stats *st)
{
    out->len = 0;
    struct qt_qry_error err;
    int rc = qt_qry_run(db, text, strlen(text), OPS_T0 + 10 * OPS_HOUR, NULL, QT_OUT_JSON, rq_out,
                        out, st, &err);
    if (rc != 0)
        printf("query %s: %s\n", text, err.message);
    return rc;
}

/* A random time in [T0 - 1h, T0 + 7h): aligned to 1h, 10m, 1m or not. */
static int64_t
rq_time(uint64_t *rng)
{
    int64_t t = OPS_T0 - OPS_HOUR + (int64_t)(qt_test_rand(rng) % (8 * 3600)) * 1000000000ll;
    int64_t grid[4] = {OPS_HOUR, 600000000000ll, 60000000000ll, 1};
    int64_t g = grid[qt_test_rand(rng) % 4];
    return t - (t - OPS_T0 + 100 * OPS_HOUR) % g;
}

static void
rq_ts(int64_t t, char *out, size_t cap)
{
    snprintf(out, cap, "%lldns", (long long)t);
}

TEST(rollup_planner_matches_raw)
{
    uint64_t rng = qt_test_seed() ^ 0x5151;
    struct qt_db *db = ops_open(qt_test_dir(), NULL);
    CHECK(db != NULL);
    for (uint32_t i = 0; i < 4 * RQ_SLOTS; i++) {
        uint32_t g = (uint32_t)(qt_test_rand(&rng) % 4);
        uint32_t slot = qt_test_rand(&rng) % 100 < 10 ? (uint32_t)(qt_test_rand(&rng) % RQ_SLOTS)
                                                      : (i / 4) % RQ_SLOTS;
        int64_t jitter = (int64_t)(qt_test_rand(&rng) % 3) * 1000000000ll;
        CHECK_OK(rq_write(db, g, OPS_T0 + (int64_t)slot * RQ_STEP + jitter, &rng));
        if (i % 2000 == 1999)
            CHECK_OK(qt_db_flush(db));
    }
    CHECK_OK(qt_db_set_rollups(db, "air=1m,10m,1h"));
    struct qt_rollup_result res;
    CHECK_OK(qt_db_rollup(db, 0, &res));
    CHECK_EQ(res.shards, (uint32_t)RQ_SHARDS);
    /* Late data: flushed into shard 2 (its rollup goes stale), and left in
     * the memtable for shard 4. */
    for (uint32_t i = 0; i < 20; i++)
        CHECK_OK(rq_write(db, i % 4, OPS_T0 + 2 * OPS_HOUR + (int64_t)i * 60000000000ll, &rng));
    CHECK_OK(qt_db_flush(db));
    for (uint32_t i = 0; i < 20; i++)
        CHECK_OK(rq_write(db, i % 4, OPS_T0 + 4 * OPS_HOUR + (int64_t)i * 90000000000ll, &rng));

    static const char *const fns[8] = {"count", "min",    "max", "first",
                                       "last",  "spread", "sum", "avg"};
    static const char *const buckets[9] = {"",       " by 1m", " by 2m", " by 10m", " by 30m",
                                           " by 1h", " by 2h", " by 7m", " by 45s"};
    static const char *const groups[3] = {"", "district", "st"};
    struct rq_buf a = {0}, b = {0};
    uint32_t total = 0, rolled = 0, mixed = 0, whole = 0;
    for (uint32_t it = 0; it < 400; it++) {
        char q[512], t0s[32], t1s[32], fl[128] = "";
        int64_t t0 = rq_time(&rng), t1 = rq_time(&rng);
        if (t0 == t1)
            continue;
        if (t0 > t1) {
            int64_t t = t0;
            t0 = t1;
            t1 = t;
        }
        rq_ts(t0, t0s, sizeof(t0s));
        rq_ts(t1, t1s, sizeof(t1s));
        bool flt = qt_test_rand(&rng) % 2 == 0;
        uint32_t nf = 1 + (uint32_t)(qt_test_rand(&rng) % 3), used = 0;
        for (uint32_t k = 0; k < nf; k++) {
            uint32_t f = (uint32_t)(qt_test_rand(&rng) % 8);
            if (used & (1u << f))
                continue;
            used |= 1u << f;
            snprintf(fl + strlen(fl), sizeof(fl) - strlen(fl), "%s%s",
                     used == (1u << f) ? "" : ", ", fns[f]);
        }
        const char *bk = buckets[qt_test_rand(&rng) % 9];
        const char *gb = groups[qt_test_rand(&rng) % 3];
        const char *fill = bk[0] && qt_test_rand(&rng) % 4 == 0 ? " | fill(prev)" : "";
        snprintf(q, sizeof(q), "air.%s [%s, %s) | %s%s%s%s%s", flt ? "v" : "n", t0s, t1s, fl,
                 bk[0] ? bk : (gb[0] ? " by" : ""), bk[0] && gb[0] ? ", " : (gb[0] ? " " : ""), gb,
                 fill);
        struct qt_qry_stats sa, sb;
        CHECK_OK(qt_db_set_rollups(db, "air=1m,10m,1h"));
        CHECK_OK(rq_run(db, q, &a, &sa));
        CHECK_OK(qt_db_set_rollups(db, NULL));
        CHECK_OK(rq_run(db, q, &b, &sb));
        CHECK(strcmp(sb.source, "raw") == 0);
        total++;
        if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0) {
            printf("differs (%s): %s\nrollup: %.*s\nraw:    %.*s\n", sa.source, q, (int)a.len, a.p,
                   (int)b.len, b.p);
            CHECK(false);
            break;
        }
        bool uses = strncmp(sa.source, "rollup:", 7) == 0;
        if (uses) {
            rolled++;
            mixed += strstr(sa.source, "+raw") != NULL;
            whole += strstr(sa.source, "+raw") == NULL;
            CHECK(sa.rollup_buckets > 0 || sa.points == 0);
        }
        /* Float sum/avg never come from rollups; neither do buckets that
         * are not multiples of a rollup interval. */
        if (flt && (strstr(fl, "sum") || strstr(fl, "avg")))
            CHECK(!uses);
        if (strcmp(bk, " by 45s") == 0)
            CHECK(!uses);
    }
    printf("rollup planner: %u queries, %u from rollups (%u whole, %u mixed with raw)\n", total,
           rolled, whole, mixed);
    CHECK(rolled * 5 > total); /* the planner is actually used */
    CHECK(mixed > 0 && whole > 0);
    /* A query whose range is one rolled-up hour reads only the rollup. */
    struct qt_qry_stats st;
    char q[256], t0s[32], t1s[32];
    rq_ts(OPS_T0 + 3 * OPS_HOUR, t0s, sizeof(t0s));
    rq_ts(OPS_T0 + 4 * OPS_HOUR, t1s, sizeof(t1s));
    snprintf(q, sizeof(q), "air.n [%s, %s) | count, sum, max by 10m, st", t0s, t1s);
    CHECK_OK(qt_db_set_rollups(db, "air=1m,10m,1h"));
    CHECK_OK(rq_run(db, q, &a, &st));
    CHECK(strcmp(st.source, "rollup:10m") == 0);
    CHECK_EQ(st.decoded_points, 0u);
    CHECK_EQ(st.rollup_buckets, 4u * 6u);
    /* Rollup points that do not read as written (a stray hand-written
     * point in a rollup column) make the query fall back to raw data. */
    struct qt_batch_field f = {.name = "n.max", .name_len = 5, .vtype = QT_VT_INT, .v.i = 1};
    struct qt_batch_line l = {.key = "air:10m,district=d1,st=a",
                              .key_len = 24,
                              .ts = OPS_T0 + 3 * OPS_HOUR + 5,
                              .n_fields = 1,
                              .fields = &f};
    struct qt_write_result wr;
    CHECK_OK(qt_db_write(db, &l, 1, NULL, NULL, &wr));
    CHECK_OK(qt_db_flush(db));
    CHECK_OK(rq_run(db, q, &b, &st));
    CHECK_EQ(wr.lines_ok, 1u);
    CHECK(strcmp(st.source, "raw") == 0);
    CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
    free(a.p);
    free(b.p);
    CHECK_OK(qt_db_close(db));
}

/* Local-day buckets: read from rollups when every local midnight falls on
 * a rollup interval (Asia/Shanghai, +08:00: 1h), with a finer interval
 * when only that one divides them (Asia/Kolkata, +05:30: 10m). */
TEST(rollup_planner_local_days)
{
    uint64_t rng = qt_test_seed() ^ 0x7272;
    struct qt_db_opts o = {.dir = qt_test_dir(), .shard_duration_ns = OPS_DAY};
    struct qt_db *db = ops_open_opts(&o);
    CHECK(db != NULL);
    for (int64_t t = OPS_T0 - 4 * OPS_DAY; t < OPS_T0; t += 600000000000ll)
        for (uint32_t g = 0; g < 4; g++)
            CHECK_OK(rq_write(db, g, t + (int64_t)(qt_test_rand(&rng) % 600) * 1000000000ll, &rng));
    CHECK_OK(qt_db_set_rollups(db, "air=10m,1h"));
    struct qt_rollup_result res;
    CHECK_OK(qt_db_rollup(db, 0, &res));
    CHECK_EQ(res.shards, 4u);
    static const char *const zones[2] = {"Asia/Shanghai", "Asia/Kolkata"};
    static const char *const want[2] = {"rollup:1h", "rollup:10m"};
    struct rq_buf a = {0}, b = {0};
    for (int z = 0; z < 2; z++) {
        char q[256];
        snprintf(q, sizeof(q),
                 "air.n [%lldns, %lldns) | count, min, max, first, last, sum by 1d tz \"%s\", "
                 "district",
                 (long long)(OPS_T0 - 4 * OPS_DAY), (long long)OPS_T0, zones[z]);
        struct qt_qry_stats sa, sb;
        CHECK_OK(qt_db_set_rollups(db, "air=10m,1h"));
        CHECK_OK(rq_run(db, q, &a, &sa));
        CHECK_OK(qt_db_set_rollups(db, NULL));
        CHECK_OK(rq_run(db, q, &b, &sb));
        CHECK(strcmp(sa.source, want[z]) == 0);
        CHECK(strcmp(sb.source, "raw") == 0);
        CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
        CHECK_EQ(sa.decoded_points, 0u);
    }
    free(a.p);
    free(b.p);
    CHECK_OK(qt_db_close(db));
}

/* Retention: raw points may be trimmed below the raw cutoff, so neither a
 * rollup run rewrites buckets there (they would come out partial) nor the
 * planner reads rollups there (a raw query no longer sees those points):
 * answers stay identical to raw before and after the trim, and the
 * rollup's buckets below the cutoff keep their full summaries. */
TEST(rollup_planner_respects_retention)
{
    uint64_t rng = qt_test_seed() ^ 0x9393;
    struct qt_db *db = ops_open(qt_test_dir(), NULL);
    CHECK(db != NULL);
    for (int64_t t = OPS_T0; t < OPS_T0 + RQ_SHARDS * OPS_HOUR; t += RQ_STEP)
        for (uint32_t g = 0; g < 4; g++)
            CHECK_OK(rq_write(db, g, t, &rng));
    CHECK_OK(qt_db_flush(db));
    const char *rules = "air=10m,1h";
    CHECK_OK(qt_db_set_rollups(db, rules));
    struct qt_rollup_result res;
    CHECK_OK(qt_db_rollup(db, 0, &res));
    CHECK_EQ(res.shards, (uint32_t)RQ_SHARDS);
    /* Raw kept from T0 + 2h35m on (wall clock, whole seconds): the cutoff
     * falls inside a 10m bucket. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long keep_s =
        (long long)now.tv_sec - (OPS_T0 + 2 * OPS_HOUR + 2100000000000ll) / 1000000000ll;
    char spec[64];
    snprintf(spec, sizeof(spec), "air=%llds", keep_s);
    struct qt_retention_rule rr[1];
    uint32_t nr = 0;
    CHECK_OK(qt_retention_parse(spec, rr, 1, &nr));
    CHECK_OK(qt_db_set_retention(db, rr, nr));
    char q[256], qroll[256];
    snprintf(q, sizeof(q), "air.n [%lldns, %lldns) | count, max, first by 10m, district",
             (long long)OPS_T0, (long long)(OPS_T0 + RQ_SHARDS * OPS_HOUR));
    snprintf(qroll, sizeof(qroll), "\"air:10m\".\"n.count\" [%lldns, %lldns) | sum by 10m",
             (long long)OPS_T0, (long long)(OPS_T0 + 3 * OPS_HOUR));
    struct rq_buf a = {0}, b = {0}, before = {0}, after = {0};
    struct qt_qry_stats sa, sb;
    CHECK_OK(rq_run(db, qroll, &before, &sa));
    for (int round = 0; round < 2; round++) {
        CHECK_OK(qt_db_set_rollups(db, rules));
        CHECK_OK(rq_run(db, q, &a, &sa));
        CHECK_OK(qt_db_set_rollups(db, NULL));
        CHECK_OK(rq_run(db, q, &b, &sb));
        CHECK(strcmp(sa.source, "rollup:10m+raw") == 0);
        CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
        if (round == 1)
            break;
        /* Trim the raw points past retention, then roll up again: the
         * shard holding the cutoff is recomputed above it only. */
        CHECK_OK(qt_db_set_rollups(db, rules)); /* records carry under the rules */
        struct qt_retention_result tr;
        CHECK_OK(qt_db_apply_retention(db, 0, &tr));
        CHECK_EQ(tr.shards_dropped, 0u); /* the rollups (kept) live there too */
        struct qt_compact_opts co = {.all = true, .force = true};
        struct qt_compact_result cr;
        CHECK_OK(qt_db_compact(db, &co, &cr));
        CHECK(cr.points_trimmed > 0);
        CHECK_OK(qt_db_rollup(db, 0, &res));
        CHECK_EQ(res.shards, 3u);         /* the trimmed ones: no record carried */
        CHECK_EQ(res.shards_current, 3u); /* compacted without a trim: carried */
    }
    CHECK_OK(rq_run(db, qroll, &after, &sa));
    CHECK(before.len == after.len && memcmp(before.p, after.p, before.len) == 0);
    free(a.p);
    free(b.p);
    free(before.p);
    free(after.p);
    CHECK_OK(qt_db_close(db));
}
