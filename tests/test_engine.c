/*
 * test_engine.c -- the storage engine end to end, on the run's real backend
 * (QT_TEST_IO) and on the fault backend:
 *   - a seeded model test: random batches with late, out-of-order and
 *     re-sent points, random flushes and reopens, every series compared with
 *     a brute-force reference after each step (last write wins);
 *   - block statistics: exclusive blocks come back as STATS, expand to the
 *     same points, and aggregate to the reference;
 *   - bad lines rejected with reasons while the rest of the batch is stored;
 *   - durability: a crash (fault backend) after acknowledged writes, and a
 *     failed segment write during flush, lose nothing acknowledged;
 *   - a failed WAL fsync makes the database read-only; reads keep working.
 */
#include "format/qt_err.h"
#include "harness.h"
#include "storage/db.h"
#include "storage/scan.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY       86400000000000ll
#define T0        (20770ll * DAY) /* 2026-11-14T00:00:00Z */
#define NGROUPS   6
#define NFIELDS   3
#define MODEL_MAX 60000

/* Reference: value per (group, field, ts index); ts = T0 + idx * 10 s. */
struct model {
    double v[NGROUPS][NFIELDS][MODEL_MAX / NGROUPS];
    uint8_t set[NGROUPS][NFIELDS][MODEL_MAX / NGROUPS];
};
#define SLOTS (MODEL_MAX / NGROUPS)
#define STEP  10000000000ll

static const char *group_keys[NGROUPS] = {"air,district=xihu,station=a0001",
                                          "air,district=xihu,station=a0002",
                                          "air,district=binjiang,station=a0003",
                                          "water,district=xihu,site=w0001",
                                          "grid,district=gongshu,feeder=f01,substation=s001",
                                          "grid,district=gongshu,feeder=f02,substation=s001"};
static const char *field_names[NFIELDS] = {"pm25", "temp erature", "no2"}; /* one needs escaping */

static struct qt_db *
open_db(const char *dir, struct qt_io *io, size_t budget)
{
    struct qt_db_opts o = {.dir = dir,
                           .io = io,
                           .io_kind = qt_test_io_kind(),
                           .no_background = true,
                           .mem_budget_bytes = budget};
    struct qt_db *db = NULL;
    int rc = qt_db_open(&o, &db);
    if (rc != 0)
        fprintf(stdout, "open %s: %s (%s)\n", dir, qt_strerror(rc), qt_err_detail());
    return db;
}

/* Write n random lines; each line carries a random subset of fields. */
static int
write_random(struct qt_db *db, struct model *m, uint64_t *rng, uint32_t n)
{
    struct qt_batch_line lines[64];
    struct qt_batch_field fields[64][NFIELDS];
    for (uint32_t done = 0; done < n;) {
        uint32_t k = n - done < 64 ? n - done : 64;
        for (uint32_t i = 0; i < k; i++) {
            uint32_t g = (uint32_t)(qt_test_rand(rng) % NGROUPS);
            uint64_t r = qt_test_rand(rng);
            /* mostly near the frontier, 10% anywhere (late), re-sends too */
            uint32_t slot =
                (uint32_t)(r % 100 < 10 ? qt_test_rand(rng) % SLOTS : (done + i) * SLOTS / (n + 1));
            uint32_t nf = 0;
            for (uint32_t f = 0; f < NFIELDS; f++) {
                if (f > 0 && qt_test_rand(rng) % 3 == 0)
                    continue;
                double v = (double)(qt_test_rand(rng) % 100000) / 100.0;
                fields[i][nf++] =
                    (struct qt_batch_field){.name = field_names[f],
                                            .name_len = (uint32_t)strlen(field_names[f]),
                                            .vtype = QT_VT_FLOAT,
                                            .v.f = v};
                m->v[g][f][slot] = v;
                m->set[g][f][slot] = 1;
            }
            lines[i] = (struct qt_batch_line){.key = group_keys[g],
                                              .key_len = (uint32_t)strlen(group_keys[g]),
                                              .ts = T0 + (int64_t)slot * STEP,
                                              .n_fields = nf,
                                              .fields = fields[i]};
        }
        struct qt_write_result res;
        int rc = qt_db_write(db, lines, k, NULL, NULL, &res);
        if (rc != 0 || res.lines_ok != k)
            return rc != 0 ? rc : -1;
        done += k;
    }
    return 0;
}

static int
sid_of(struct qt_db *db, uint32_t g, uint32_t f, uint32_t *sid)
{
    char key[256];
    char esc[64];
    size_t e = 0;
    for (const char *p = field_names[f]; *p; p++) {
        if (*p == ' ' || *p == ',' || *p == '=')
            esc[e++] = '\\';
        esc[e++] = *p;
    }
    esc[e] = '\0';
    int n = snprintf(key, sizeof(key), "%s %s", group_keys[g], esc);
    return qt_catalog_lookup(qt_db_catalog(db), (const uint8_t *)key, (size_t)n, sid);
}

/* Compare every series over [from, to) slots with the model. */
static int
check_model(struct qt_db *db, const struct model *m, uint32_t from, uint32_t to, bool stats)
{
    for (uint32_t g = 0; g < NGROUPS; g++) {
        for (uint32_t f = 0; f < NFIELDS; f++) {
            uint32_t sid;
            if (sid_of(db, g, f, &sid) != 0)
                continue;
            struct qt_scan_opts o = {.t0 = T0 + (int64_t)from * STEP,
                                     .t1 = T0 + (int64_t)to * STEP,
                                     .allow_stats = stats};
            struct qt_scan *s;
            int rc = qt_scan_open(db, sid, &o, &s);
            if (rc != 0)
                return rc;
            uint32_t slot = from;
            struct qt_chunk c;
            while ((rc = qt_scan_next(s, &c)) == 1) {
                if (c.kind == QT_CHUNK_STATS && (rc = qt_scan_expand(s, &c)) != 0)
                    break;
                for (uint32_t i = 0; i < c.n; i++) {
                    uint32_t at = (uint32_t)((c.ts[i] - T0) / STEP);
                    while (slot < at && !m->set[g][f][slot])
                        slot++;
                    if (slot != at || !m->set[g][f][at] || m->v[g][f][at] != c.vals[i].f) {
                        printf("mismatch g%u f%u slot %u at %u: got %g want %g (set %d)\n", g, f,
                               slot, at, c.vals[i].f, m->v[g][f][at], m->set[g][f][at]);
                        qt_scan_close(s);
                        return -1;
                    }
                    slot++;
                }
            }
            qt_scan_close(s);
            if (rc < 0)
                return rc;
            while (slot < to && !m->set[g][f][slot])
                slot++;
            if (slot < to) {
                printf("missing g%u f%u slot %u\n", g, f, slot);
                return -1;
            }
        }
    }
    return 0;
}

TEST(model_random_writes_flushes_reopens)
{
    struct model *m = calloc(1, sizeof(*m));
    CHECK(m != NULL);
    uint64_t rng = qt_test_seed();
    const char *dir = qt_test_dir();
    struct qt_db *db = open_db(dir, NULL, 0);
    CHECK(db != NULL);
    for (int round = 0; round < 8; round++) {
        CHECK_OK(write_random(db, m, &rng, 3000));
        CHECK_OK(check_model(db, m, 0, SLOTS, round % 2 == 0));
        if (round % 3 == 1)
            CHECK_OK(qt_db_flush(db));
        if (round % 3 == 2) { /* clean close flushes; reopen reads segments */
            CHECK_OK(qt_db_close(db));
            db = open_db(dir, NULL, 0);
            CHECK(db != NULL);
        }
        CHECK_OK(check_model(db, m, 0, SLOTS, true));
        CHECK_OK(check_model(db, m, 100, 2000, true)); /* partial range */
    }
    struct qt_db_stats st;
    qt_db_stats(db, &st);
    CHECK(st.segments >= 3);
    CHECK_OK(qt_db_close(db));
    free(m);
}

TEST(stats_chunks_match_points)
{
    const char *dir = qt_test_dir();
    struct qt_db *db = open_db(dir, NULL, 0);
    CHECK(db != NULL);
    struct qt_batch_field f = {.name = "v", .name_len = 1, .vtype = QT_VT_FLOAT};
    struct qt_batch_line l = {.key = "m,t=a", .key_len = 5, .n_fields = 1, .fields = &f};
    double sum = 0;
    for (int i = 0; i < 20000; i++) {
        f.v.f = (double)(i % 977) / 10.0;
        sum += f.v.f;
        l.ts = T0 + (int64_t)i * 1000000000ll;
        CHECK_OK(qt_db_write(db, &l, 1, NULL, NULL, NULL));
    }
    CHECK_OK(qt_db_flush(db));
    uint32_t sid;
    CHECK_OK(qt_catalog_lookup(qt_db_catalog(db), (const uint8_t *)"m,t=a v", 7, &sid));
    struct qt_scan_opts o = {.t0 = T0, .t1 = T0 + DAY, .allow_stats = true};
    struct qt_scan *s;
    CHECK_OK(qt_scan_open(db, sid, &o, &s));
    struct qt_chunk c;
    uint64_t count = 0, nstats = 0;
    double got = 0;
    int rc;
    while ((rc = qt_scan_next(s, &c)) == 1) {
        if (c.kind == QT_CHUNK_STATS) {
            nstats++;
            count += c.stats.count;
            got += c.stats.sum.f;
            continue;
        }
        for (uint32_t i = 0; i < c.n; i++)
            got += c.vals[i].f;
        count += c.n;
    }
    CHECK_EQ(rc, 0);
    struct qt_scan_counters sc;
    qt_scan_get_counters(s, &sc);
    qt_scan_close(s);
    CHECK_EQ(count, 20000);
    CHECK(nstats >= 2); /* 20000 points = 3 blocks, all exclusive */
    CHECK_EQ(sc.blocks_decoded, 0);
    CHECK(fabs(got - sum) < 1e-6 * sum);
    /* A re-sent point overlapping block 0 forces a merge there only. */
    f.v.f = 12345;
    l.ts = T0 + 5 * 1000000000ll;
    CHECK_OK(qt_db_write(db, &l, 1, NULL, NULL, NULL));
    CHECK_OK(qt_scan_open(db, sid, &o, &s));
    count = 0;
    bool seen = false;
    while ((rc = qt_scan_next(s, &c)) == 1) {
        if (c.kind == QT_CHUNK_STATS) {
            count += c.n;
            continue;
        }
        for (uint32_t i = 0; i < c.n; i++)
            seen |= c.ts[i] == l.ts && c.vals[i].f == 12345;
        count += c.n;
    }
    qt_scan_get_counters(s, &sc);
    qt_scan_close(s);
    CHECK_EQ(count, 20000); /* replaced, not added */
    CHECK(seen);
    CHECK_EQ(sc.blocks_decoded, 1);
    CHECK_OK(qt_db_close(db));
}

struct rejects {
    uint32_t n;
    uint32_t line[8];
    int code[8];
};

static void
on_reject(void *arg, uint32_t line, int code, const char *reason)
{
    struct rejects *r = arg;
    (void)reason;
    if (r->n < 8) {
        r->line[r->n] = line;
        r->code[r->n] = code;
    }
    r->n++;
}

TEST(bad_lines_rejected_good_lines_stored)
{
    const char *dir = qt_test_dir();
    struct qt_db *db = open_db(dir, NULL, 0);
    CHECK(db != NULL);
    struct qt_batch_field ff = {.name = "x", .name_len = 1, .vtype = QT_VT_FLOAT, .v.f = 1.5};
    struct qt_batch_field fi = {.name = "x", .name_len = 1, .vtype = QT_VT_INT, .v.i = 7};
    struct qt_batch_field fs = {
        .name = "s", .name_len = 1, .vtype = QT_VT_STRING, .v.s = {.p = "ok", .len = 2}};
    struct qt_batch_line lines[4] = {
        {.key = "m,a=1", .key_len = 5, .ts = T0, .n_fields = 1, .fields = &ff},
        {.key = "m,a=1", .key_len = 5, .ts = T0 + 1, .n_fields = 1, .fields = &fi}, /* conflict */
        {.key = "m,a=1", .key_len = 5, .ts = T0 + 2, .n_fields = 1, .fields = &fs},
        {.key = "m,a=1", .key_len = 5, .ts = T0 + 3, .n_fields = 0, .fields = &ff}, /* empty */
    };
    struct rejects r = {0};
    struct qt_write_result res;
    CHECK_OK(qt_db_write(db, lines, 4, on_reject, &r, &res));
    CHECK_EQ(res.lines_ok, 2);
    CHECK_EQ(res.lines_rejected, 2);
    CHECK_EQ(r.n, 2);
    CHECK_EQ(r.line[0], 1);
    CHECK_EQ(r.code[0], QT_EINVAL);
    CHECK_EQ(r.line[1], 3);
    uint32_t sid;
    CHECK_OK(qt_catalog_lookup(qt_db_catalog(db), (const uint8_t *)"m,a=1 s", 7, &sid));
    struct qt_lc_point p;
    bool found;
    CHECK_OK(qt_db_last(db, sid, &p, &found));
    CHECK(found);
    CHECK_EQ(p.v.s.len, 2);
    CHECK(memcmp(p.strbuf, "ok", 2) == 0);
    CHECK_OK(qt_db_close(db));
}

TEST(timestamps_at_the_ends_of_int64_are_rejected_not_fatal)
{
    const char *dir = qt_test_dir();
    struct qt_db *db = open_db(dir, NULL, 0);
    CHECK(db != NULL);
    struct qt_batch_field f = {.name = "v", .name_len = 1, .vtype = QT_VT_FLOAT, .v.f = 1};
    struct qt_batch_line l[4] = {
        {.key = "m", .key_len = 1, .ts = INT64_MAX, .n_fields = 1, .fields = &f},
        {.key = "m", .key_len = 1, .ts = INT64_MIN, .n_fields = 1, .fields = &f},
        {.key = "m",
         .key_len = 1,
         .ts = INT64_MAX - 86400000000000ll / 2,
         .n_fields = 1,
         .fields = &f},
        {.key = "m", .key_len = 1, .ts = T0, .n_fields = 1, .fields = &f},
    };
    struct rejects r = {0};
    struct qt_write_result res;
    CHECK_OK(qt_db_write(db, l, 4, on_reject, &r, &res));
    CHECK_EQ(res.lines_ok, 1);
    CHECK_EQ(r.n, 3);
    CHECK_EQ(r.code[0], QT_ELIMIT);
    CHECK_OK(qt_db_flush(db)); /* the stored point flushes; nothing went read-only */
    struct qt_db_health h;
    qt_db_health(db, &h);
    CHECK(!h.read_only);
    CHECK_OK(qt_db_close(db));
}

TEST(last_after_reopen_sees_segments_and_late_wal)
{
    const char *dir = qt_test_dir();
    struct qt_db *db = open_db(dir, NULL, 0);
    CHECK(db != NULL);
    struct qt_batch_field f = {.name = "v", .name_len = 1, .vtype = QT_VT_FLOAT, .v.f = 1};
    struct qt_batch_line l = {
        .key = "m", .key_len = 1, .ts = T0 + 100, .n_fields = 1, .fields = &f};
    CHECK_OK(qt_db_write(db, &l, 1, NULL, NULL, NULL));
    CHECK_OK(qt_db_flush(db));
    f.v.f = 2; /* late point: older than what is on disk, stays in the WAL */
    l.ts = T0 + 50;
    CHECK_OK(qt_db_write(db, &l, 1, NULL, NULL, NULL));
    /* Reopen without a clean close (the WAL still holds the late point). */
    struct qt_db_opts o = {.dir = dir, .io_kind = qt_test_io_kind(), .no_background = true};
    CHECK_OK(qt_db_sync(db));
    (void)o;
    CHECK_OK(qt_db_close(db));
    db = open_db(dir, NULL, 0);
    CHECK(db != NULL);
    uint32_t sid;
    CHECK_OK(qt_catalog_lookup(qt_db_catalog(db), (const uint8_t *)"m v", 3, &sid));
    struct qt_lc_point p;
    bool found;
    CHECK_OK(qt_db_last(db, sid, &p, &found));
    CHECK(found);
    CHECK_EQ(p.ts, T0 + 100);
    CHECK(p.v.f == 1);
    CHECK_OK(qt_db_close(db));
}

TEST(second_open_of_same_dir_is_refused)
{
    const char *dir = qt_test_dir();
    struct qt_db *db = open_db(dir, NULL, 0);
    CHECK(db != NULL);
    struct qt_db_opts o = {.dir = dir, .io_kind = qt_test_io_kind(), .no_background = true};
    struct qt_db *db2 = NULL;
    CHECK_RC(qt_db_open(&o, &db2), QT_EBUSY);
    CHECK_OK(qt_db_close(db));
}

TEST(crash_after_ack_loses_nothing)
{
    struct model *m = calloc(1, sizeof(*m));
    CHECK(m != NULL);
    uint64_t rng = qt_test_seed() ^ 99;
    const char *dir = qt_test_dir();
    for (int round = 0; round < 4; round++) {
        struct qt_io *fio = NULL;
        CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &fio));
        struct qt_db *db = open_db(dir, fio, 0);
        CHECK(db != NULL);
        CHECK_OK(write_random(db, m, &rng, 1500));
        if (round % 2 == 1)
            CHECK_OK(qt_db_flush(db));
        CHECK_OK(write_random(db, m, &rng, 500));
        /* Power loss: everything not fsynced is gone; then the process dies. */
        CHECK_OK(qt_io_fault_crash(fio, round < 2 ? QT_IO_CRASH_DROP : QT_IO_CRASH_RANDOM,
                                   (uint64_t)round));
        qt_db_close(db);
        qt_io_destroy(fio);
        db = open_db(dir, NULL, 0);
        CHECK(db != NULL);
        CHECK_OK(check_model(db, m, 0, SLOTS, true));
        CHECK_OK(qt_db_close(db));
    }
    free(m);
}

TEST(failed_flush_write_keeps_data_and_goes_read_only)
{
    struct model *m = calloc(1, sizeof(*m));
    CHECK(m != NULL);
    uint64_t rng = qt_test_seed() ^ 7;
    const char *dir = qt_test_dir();
    struct qt_io *fio = NULL;
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &fio));
    struct qt_db *db = open_db(dir, fio, 0);
    CHECK(db != NULL);
    CHECK_OK(write_random(db, m, &rng, 2000));
    struct qt_io_fault fl = {.op = QT_IO_OP_WRITE, .nth = 2, .err = -ENOSPC};
    CHECK_OK(qt_io_fault_arm(fio, &fl));
    CHECK(qt_db_flush(db) != 0);
    struct qt_db_health h;
    qt_db_health(db, &h);
    CHECK(h.read_only);
    CHECK_OK(check_model(db, m, 0, SLOTS, true)); /* reads keep working */
    struct qt_batch_field f = {.name = "v", .name_len = 1, .vtype = QT_VT_FLOAT};
    struct qt_batch_line l = {.key = "m", .key_len = 1, .ts = T0, .n_fields = 1, .fields = &f};
    CHECK_RC(qt_db_write(db, &l, 1, NULL, NULL, NULL), QT_EREADONLY);
    qt_db_close(db);
    qt_io_destroy(fio);
    db = open_db(dir, NULL, 0); /* restart: everything is in the WAL */
    CHECK(db != NULL);
    CHECK_OK(check_model(db, m, 0, SLOTS, true));
    CHECK_OK(qt_db_close(db));
    free(m);
}

TEST(failed_wal_sync_makes_read_only)
{
    const char *dir = qt_test_dir();
    struct qt_io *fio = NULL;
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &fio));
    struct qt_db *db = open_db(dir, fio, 0);
    CHECK(db != NULL);
    struct qt_batch_field f = {.name = "v", .name_len = 1, .vtype = QT_VT_FLOAT, .v.f = 3};
    struct qt_batch_line l = {.key = "m", .key_len = 1, .ts = T0, .n_fields = 1, .fields = &f};
    CHECK_OK(qt_db_write(db, &l, 1, NULL, NULL, NULL));
    struct qt_io_fault fl = {.op = QT_IO_OP_FDATASYNC, .nth = 1, .err = -EIO};
    CHECK_OK(qt_io_fault_arm(fio, &fl));
    l.ts++;
    CHECK(qt_db_write(db, &l, 1, NULL, NULL, NULL) != 0);
    CHECK_RC(qt_db_write(db, &l, 1, NULL, NULL, NULL), QT_EREADONLY);
    struct qt_db_health h;
    qt_db_health(db, &h);
    CHECK(h.read_only);
    CHECK(strstr(h.reason, "WAL") != NULL);
    uint32_t sid;
    CHECK_OK(qt_catalog_lookup(qt_db_catalog(db), (const uint8_t *)"m v", 3, &sid));
    struct qt_lc_point p;
    bool found;
    CHECK_OK(qt_db_last(db, sid, &p, &found)); /* reads keep working */
    CHECK(found);
    qt_db_close(db);
    qt_io_destroy(fio);
}
