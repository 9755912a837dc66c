/*
 * test_engine_rollup.c -- rollups (storage/rollup.h): rule parsing, rollup
 * points against a reference model over random data (out of order,
 * duplicates, late points after a first rollup), only ended shards, and
 * retention telling "air" and "air:1h" apart.
 */
#include "format/qt_alloc.h"
#include "format/qt_err.h"
#include "harness.h"
#include "opsutil.h"
#include "storage/catalog.h"
#include "storage/compact.h"
#include "storage/retention.h"
#include "storage/rollup.h"
#include "storage/scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RU_GROUPS 3 /* air,st=a; air,st=b; airx,st=a (no rule) */
#define RU_SLOTS  2100
#define RU_STEP   7000000000ll /* 7 s: 4h05m */
#define RU_SHARDS 5

static const char *const ru_groups[RU_GROUPS] = {"air,st=a", "air,st=b", "airx,st=a"};
static const char *const ru_roll[2][2] = {{"air:1m,st=a", "air:1h,st=a"},
                                          {"air:1m,st=b", "air:1h,st=b"}};
static const int64_t ru_iv[2] = {60000000000ll, OPS_HOUR};

struct ru_model {
    bool set[RU_GROUPS][RU_SLOTS];
    double v[RU_GROUPS][RU_SLOTS];  /* float field "v" */
    int64_t n[RU_GROUPS][RU_SLOTS]; /* int field "n" */
};

static int
ru_write(struct qt_db *db, struct ru_model *m, uint32_t g, uint32_t slot, uint64_t *rng)
{
    double v = (double)(int64_t)(qt_test_rand(rng) % 2001) * 0.5 - 500.0; /* exact sums */
    int64_t n = (int64_t)(qt_test_rand(rng) % 100000) - 50000;
    struct qt_batch_field f[2] = {
        {.name = "v", .name_len = 1, .vtype = QT_VT_FLOAT, .v.f = v},
        {.name = "n", .name_len = 1, .vtype = QT_VT_INT, .v.i = n},
    };
    struct qt_batch_line l = {.key = ru_groups[g],
                              .key_len = (uint32_t)strlen(ru_groups[g]),
                              .ts = OPS_T0 + (int64_t)slot * RU_STEP,
                              .n_fields = 2,
                              .fields = f};
    m->set[g][slot] = true;
    m->v[g][slot] = v;
    m->n[g][slot] = n;
    struct qt_write_result wr;
    return qt_db_write(db, &l, 1, NULL, NULL, &wr);
}

/* Values of the rollup series key+" "+field over the whole range, by bucket. */
static int
ru_read(struct qt_db *db, const char *gkey, const char *field, int64_t iv, double *fv,
        int64_t *iv_out, bool *seen, uint32_t nb)
{
    char key[128];
    snprintf(key, sizeof(key), "%s %s", gkey, field);
    uint32_t sid = 0;
    memset(seen, 0, nb * sizeof(*seen));
    int rc = qt_catalog_lookup(qt_db_catalog(db), (const uint8_t *)key, strlen(key), &sid);
    if (rc == QT_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    struct qt_scan_opts so = {.t0 = OPS_T0, .t1 = OPS_T0 + RU_SHARDS * OPS_HOUR};
    struct qt_scan *s = NULL;
    if ((rc = qt_scan_open(db, sid, &so, &s)) != 0)
        return rc;
    struct qt_chunk c;
    while ((rc = qt_scan_next(s, &c)) == 1)
        for (uint32_t i = 0; i < c.n; i++) {
            int64_t b = (c.ts[i] - OPS_T0) / iv;
            if ((c.ts[i] - OPS_T0) % iv != 0 || b < 0 || b >= (int64_t)nb) {
                rc = -1000;
                break;
            }
            seen[b] = true;
            fv[b] = c.vals[i].f;
            iv_out[b] = c.vals[i].i;
        }
    qt_scan_close(s);
    return rc < 0 ? rc : 0;
}

#define RU_NB (RU_SHARDS * 60)

/* Compare rollups of group g, interval k with the model for shards < upto. */
static int
ru_check(struct qt_db *db, const struct ru_model *m, uint32_t g, uint32_t k, uint32_t upto)
{
    enum { NF = 8 };
    static double fv[NF][RU_NB];
    static int64_t iv[NF][RU_NB];
    static bool seen[NF][RU_NB];
    static const char *const vf[NF] = {"v.count", "v.sum",  "v.min",      "v.max",
                                       "v.first", "v.last", "v.first_ts", "v.last_ts"};
    static const char *const nf[NF] = {"n.count", "n.sum",  "n.min",      "n.max",
                                       "n.first", "n.last", "n.first_ts", "n.last_ts"};
    int64_t bw = ru_iv[k];
    uint32_t nb = (uint32_t)(RU_SHARDS * OPS_HOUR / bw);
    for (int fld = 0; fld < 2; fld++) {
        for (int j = 0; j < NF; j++)
            if (ru_read(db, ru_roll[g][k], (fld ? nf : vf)[j], bw, fv[j], iv[j], seen[j], nb) != 0)
                return -1;
        for (uint32_t b = 0; b < nb; b++) {
            int64_t cnt = 0, isum = 0, imin = 0, imax = 0, ifirst = 0, ilast = 0, t_first = 0,
                    t_last = 0;
            double fsum = 0, fmin = 0, fmax = 0, ffirst = 0, flast = 0;
            for (uint32_t s = 0; s < RU_SLOTS; s++) {
                int64_t ts = (int64_t)s * RU_STEP;
                if (!m->set[g][s] || ts / bw != (int64_t)b)
                    continue;
                double v = m->v[g][s];
                int64_t n = m->n[g][s];
                if (cnt == 0) {
                    t_first = OPS_T0 + ts;
                    fmin = fmax = ffirst = v;
                    imin = imax = ifirst = n;
                }
                fmin = v < fmin ? v : fmin;
                fmax = v > fmax ? v : fmax;
                imin = n < imin ? n : imin;
                imax = n > imax ? n : imax;
                fsum += v;
                isum += n;
                flast = v;
                ilast = n;
                t_last = OPS_T0 + ts;
                cnt++;
            }
            bool want = cnt > 0 && (int64_t)b * bw < (int64_t)upto * OPS_HOUR;
            for (int j = 0; j < NF; j++)
                if (seen[j][b] != want) {
                    printf("g%u k%u f%d b%u: %s seen %d want %d\n", g, k, fld, b, vf[j], seen[j][b],
                           want);
                    return -1;
                }
            if (!want)
                continue;
            bool ok = iv[0][b] == cnt && iv[6][b] == t_first && iv[7][b] == t_last;
            if (fld == 0)
                ok = ok && fv[1][b] == fsum && fv[2][b] == fmin && fv[3][b] == fmax &&
                     fv[4][b] == ffirst && fv[5][b] == flast;
            else
                ok = ok && iv[1][b] == isum && iv[2][b] == imin && iv[3][b] == imax &&
                     iv[4][b] == ifirst && iv[5][b] == ilast;
            if (!ok) {
                printf("g%u k%u f%d bucket %u differs (count %lld want %lld)\n", g, k, fld, b,
                       (long long)iv[0][b], (long long)cnt);
                return -1;
            }
        }
    }
    return 0;
}

static int
ru_check_all(struct qt_db *db, const struct ru_model *m, uint32_t upto)
{
    for (uint32_t g = 0; g < 2; g++)
        for (uint32_t k = 0; k < 2; k++)
            if (ru_check(db, m, g, k, upto) != 0)
                return -1;
    return 0;
}

TEST(rollup_parse)
{
    struct qt_rollup_rule r[4];
    uint32_t n = 0;
    char a[] = "air=1m,1h;grid*=1h";
    CHECK_OK(qt_rollup_parse(a, r, 4, &n));
    CHECK_EQ(n, 2u);
    CHECK(strcmp(r[0].measurement, "air") == 0 && !r[0].prefix);
    CHECK_EQ(r[0].n_intervals, 2u);
    CHECK_EQ(r[0].interval_ns[1], OPS_HOUR);
    CHECK(strcmp(r[0].interval_name[0], "1m") == 0);
    CHECK(strcmp(r[1].measurement, "grid") == 0 && r[1].prefix);
    const char *bad[] = {"air",       "air=",      "=1h",           "air=1h,1m",
                         "air=1h,1h", "air=0h",    "air=1x",        "air=1m,2m,3m,4m,5m",
                         "a*r=1h",    "air:1h=1d", "air=1h;air=1d", "air=-1h",
                         "air=01h",   "air=+1h",   "air= 1h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", bad[i]);
        int rc = qt_rollup_parse(buf, r, 4, &n);
        if (rc == 0)
            printf("accepted %s\n", bad[i]);
        CHECK(rc == QT_ESYNTAX || rc == QT_ELIMIT);
    }
    char c[] = "a=1h;b=1h;c=1h";
    CHECK_RC(qt_rollup_parse(c, r, 2, &n), QT_ELIMIT);
}

TEST(rollup_matches_model_with_late_data)
{
    uint64_t rng = qt_test_seed() ^ 0x70ll;
    struct qt_db *db = ops_open(qt_test_dir(), NULL);
    CHECK(db != NULL);
    static struct ru_model m;
    memset(&m, 0, sizeof(m));
    /* Mostly ascending, 15% anywhere (late or duplicate), flushes between. */
    for (uint32_t i = 0; i < 3 * RU_SLOTS; i++) {
        uint32_t g = (uint32_t)(qt_test_rand(&rng) % RU_GROUPS);
        uint32_t slot = qt_test_rand(&rng) % 100 < 15 ? (uint32_t)(qt_test_rand(&rng) % RU_SLOTS)
                                                      : (i / 3) % RU_SLOTS;
        CHECK_OK(ru_write(db, &m, g, slot, &rng));
        if (i % 1500 == 1499)
            CHECK_OK(qt_db_flush(db));
    }
    CHECK_OK(qt_db_set_rollups(db, "air=1m,1h"));
    struct qt_rollup_result res;
    /* Only the shards that ended by now (3 of 5). */
    CHECK_OK(qt_db_rollup(db, OPS_T0 + 3 * OPS_HOUR, &res));
    CHECK_EQ(res.shards, 3u);
    CHECK(res.buckets > 0);
    CHECK_OK(ru_check_all(db, &m, 3));
    int64_t h3 = OPS_T0 + 3 * OPS_HOUR;
    CHECK(qt_db_rollup_covers(db, OPS_T0, h3, h3));
    CHECK(qt_db_rollup_covers(db, OPS_T0 + OPS_HOUR, OPS_T0 + 2 * OPS_HOUR, 0));
    CHECK(!qt_db_rollup_covers(db, OPS_T0, h3 + 1, h3)); /* shard 3 not rolled up */
    CHECK(!qt_db_rollup_covers(db, OPS_T0, h3, h3 - 1)); /* shard 2 not ended */
    CHECK(!qt_db_rollup_covers(db, h3, OPS_T0, h3));     /* empty range */
    /* Spans: the covered part of a longer range, clipped to it. */
    struct qt_rollup_span sp[4];
    uint32_t nsp = 0;
    CHECK_OK(qt_db_rollup_spans(db, OPS_T0 + 5, OPS_T0 + 4 * OPS_HOUR, h3 + OPS_HOUR, sp, 4, &nsp));
    CHECK_EQ(nsp, 1u);
    CHECK_EQ(sp[0].t0, OPS_T0 + 5);
    CHECK_EQ(sp[0].t1, h3);
    /* A second run finds every ended shard current and writes nothing. */
    CHECK_OK(qt_db_rollup(db, h3, &res));
    CHECK_EQ(res.shards, 0u);
    CHECK_EQ(res.shards_current, 3u);
    CHECK_EQ(res.buckets, 0u);
    /* Unruled data in the memtable does not matter; late raw data does,
     * in the memtable and once flushed, until the next run. */
    CHECK_OK(ru_write(db, &m, 2, 10, &rng));
    CHECK(qt_db_rollup_covers(db, OPS_T0, h3, h3));
    CHECK_OK(ru_write(db, &m, 0, 600, &rng)); /* 1h10m: shard 1 */
    CHECK(!qt_db_rollup_covers(db, OPS_T0, h3, h3));
    CHECK(qt_db_rollup_covers(db, OPS_T0, OPS_T0 + OPS_HOUR, h3));
    CHECK(qt_db_rollup_covers(db, OPS_T0 + 2 * OPS_HOUR, h3, h3));
    CHECK_OK(qt_db_rollup_spans(db, OPS_T0, h3, h3, sp, 4, &nsp));
    CHECK_EQ(nsp, 2u);
    CHECK_EQ(sp[0].t1, OPS_T0 + OPS_HOUR);
    CHECK_EQ(sp[1].t0, OPS_T0 + 2 * OPS_HOUR);
    CHECK_OK(qt_db_flush(db));
    CHECK(!qt_db_rollup_covers(db, OPS_T0 + OPS_HOUR, OPS_T0 + 2 * OPS_HOUR, h3));
    CHECK(qt_db_rollup_covers(db, OPS_T0 + 2 * OPS_HOUR, h3, h3));
    CHECK(qt_db_rollup_covers(db, OPS_T0, OPS_T0 + OPS_HOUR, h3)); /* airx-only segment */
    /* Other rules: nothing is covered; back to these, the records come
     * back from the ROLLUPS file. */
    CHECK_OK(qt_db_set_rollups(db, "air=1h"));
    CHECK(!qt_db_rollup_covers(db, OPS_T0, OPS_T0 + OPS_HOUR, h3));
    CHECK_OK(qt_db_set_rollups(db, "air=1m,1h"));
    CHECK(qt_db_rollup_covers(db, OPS_T0, OPS_T0 + OPS_HOUR, h3));
    CHECK_OK(qt_db_rollup(db, h3, &res));
    CHECK_EQ(res.shards, 1u); /* only the shard with late data */
    CHECK_EQ(res.shards_current, 2u);
    CHECK(qt_db_rollup_covers(db, OPS_T0, h3, h3));
    CHECK_OK(ru_check_all(db, &m, 3));
    /* airx has no rule: no airx:1m series. */
    uint32_t sid = 0;
    CHECK_RC(
        qt_catalog_lookup(qt_db_catalog(db), (const uint8_t *)"airx:1m,st=a v.count", 20, &sid),
        QT_ENOTFOUND);
    /* Late data and overwrites in rolled-up shards, then everything ended. */
    for (uint32_t i = 0; i < 400; i++)
        CHECK_OK(ru_write(db, &m, (uint32_t)(qt_test_rand(&rng) % RU_GROUPS),
                          (uint32_t)(qt_test_rand(&rng) % RU_SLOTS), &rng));
    CHECK_OK(qt_db_rollup(db, 0, &res));
    CHECK_EQ(res.shards + res.shards_current, (uint32_t)RU_SHARDS);
    CHECK_OK(ru_check_all(db, &m, RU_SHARDS));
    /* A compaction (same raw points, new seqs) carries the records over;
     * the rollups stay right; it all survives a reopen (ROLLUPS). */
    struct qt_compact_opts co = {.all = true, .force = true};
    struct qt_compact_result cr;
    int64_t end = OPS_T0 + RU_SHARDS * OPS_HOUR;
    CHECK(qt_db_rollup_covers(db, OPS_T0, end, 0));
    CHECK_OK(qt_db_compact(db, &co, &cr));
    CHECK(cr.shards > 0);
    CHECK(qt_db_rollup_covers(db, OPS_T0, end, 0));
    CHECK_OK(ru_check_all(db, &m, RU_SHARDS));
    CHECK_OK(qt_db_rollup(db, 0, &res));
    CHECK_EQ(res.shards, 0u);
    CHECK_OK(qt_db_close(db));
    db = ops_open(qt_test_dir(), NULL);
    CHECK(db != NULL);
    CHECK(!qt_db_rollup_covers(db, OPS_T0, end, 0)); /* no rules set yet */
    CHECK_OK(qt_db_set_rollups(db, "air=1m,1h"));
    CHECK(qt_db_rollup_covers(db, OPS_T0, end, 0)); /* records persisted */
    CHECK_OK(ru_check_all(db, &m, RU_SHARDS));
    /* A damaged ROLLUPS file is ignored (everything recomputes). */
    CHECK_OK(qt_db_close(db));
    char path[512];
    snprintf(path, sizeof(path), "%s/ROLLUPS", qt_test_dir());
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    fseek(f, 30, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    db = ops_open(qt_test_dir(), NULL);
    CHECK(db != NULL);
    CHECK_OK(qt_db_set_rollups(db, "air=1m,1h"));
    CHECK(!qt_db_rollup_covers(db, OPS_T0, end, 0));
    CHECK_OK(qt_db_rollup(db, 0, &res));
    CHECK_EQ(res.shards, (uint32_t)RU_SHARDS);
    CHECK(qt_db_rollup_covers(db, OPS_T0, end, 0));
    CHECK_OK(ru_check_all(db, &m, RU_SHARDS));
    /* An interval that does not divide the shard is refused; the rules
     * stay as they were. */
    CHECK_RC(qt_db_set_rollups(db, "air=7m"), QT_EINVAL);
    CHECK_RC(qt_db_set_rollups(db, "air=1x"), QT_ESYNTAX);
    CHECK(qt_db_rollup_covers(db, OPS_T0, end, 0));
    CHECK_OK(qt_db_close(db));
}

/* ROLLUPS decoding of hostile bytes: every truncation and a flipped byte. */
TEST(rollup_file_decode)
{
    struct qt_db *db = ops_open(qt_test_dir(), NULL);
    CHECK(db != NULL);
    struct ru_model *m = calloc(1, sizeof(*m));
    uint64_t rng = 7;
    for (uint32_t s = 0; s < RU_SLOTS; s += 3)
        CHECK_OK(ru_write(db, m, 0, s, &rng));
    CHECK_OK(qt_db_set_rollups(db, "air=1h"));
    struct qt_rollup_result res;
    CHECK_OK(qt_db_rollup(db, 0, &res));
    CHECK_EQ(res.shards, (uint32_t)RU_SHARDS);
    CHECK_OK(qt_db_close(db));
    free(m);
    char path[512];
    snprintf(path, sizeof(path), "%s/ROLLUPS", qt_test_dir());
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    uint8_t buf[4096];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    CHECK_EQ(len, 24u + 16u * RU_SHARDS + 8u);
    uint64_t h = 0;
    struct qt_rollup_record *rec = NULL;
    uint32_t n = 0;
    CHECK_OK(qt_rollup_file_decode(buf, len, &h, &rec, &n));
    CHECK_EQ(n, (uint32_t)RU_SHARDS);
    CHECK_EQ(rec[0].shard, OPS_T0);
    qt_free(rec);
    for (size_t cut = 0; cut < len; cut++) {
        CHECK(qt_rollup_file_decode(buf, cut, &h, &rec, &n) != 0);
        CHECK(rec == NULL);
    }
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x10;
        CHECK(qt_rollup_file_decode(buf, len, &h, &rec, &n) != 0);
        buf[i] ^= 0x10;
    }
}

TEST(rollup_retention_names_apart)
{
    struct qt_db *db = ops_open(qt_test_dir(), NULL);
    CHECK(db != NULL);
    struct qt_retention_rule rr[4];
    uint32_t n = 0;
    char spec[] = "air=90d,air:1h=3650d";
    CHECK_OK(qt_retention_parse(spec, rr, 4, &n));
    CHECK_OK(qt_db_set_retention(db, rr, n));
    CHECK_EQ(qt_db_retention_for(db, "air", 3), 90 * OPS_DAY);
    CHECK_EQ(qt_db_retention_for(db, "air:1h", 6), 3650 * OPS_DAY);
    CHECK_EQ(qt_db_retention_for(db, "air:1m", 6), 0); /* no rule: kept */
    char spec2[] = "air=90d";
    CHECK_OK(qt_retention_parse(spec2, rr, 4, &n));
    CHECK_OK(qt_db_set_retention(db, rr, n));
    CHECK_EQ(qt_db_retention_for(db, "air:1h", 6), 0);
    char spec3[] = "air*=90d,air:1h=3650d";
    CHECK_OK(qt_retention_parse(spec3, rr, 4, &n));
    CHECK_OK(qt_db_set_retention(db, rr, n));
    CHECK_EQ(qt_db_retention_for(db, "air:1m", 6), 90 * OPS_DAY);
    CHECK_EQ(qt_db_retention_for(db, "air:1h", 6), 3650 * OPS_DAY);
    CHECK_OK(qt_db_close(db));
}
