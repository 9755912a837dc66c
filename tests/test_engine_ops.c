/*
 * test_engine_ops.c -- shards, compaction and retention on the run's real
 * backend (QT_TEST_IO):
 *   - compaction of shards holding many overlapping segments (late points,
 *     re-sends, every value type) keeps exactly the last-written points,
 *     leaves one full-block segment per shard, survives reopen;
 *   - precedence: a flush into the shard while a compaction runs still wins;
 *   - retention: whole shards dropped, partly expired shards trimmed at
 *     compaction, a measurement without a rule kept;
 *   - shard listing figures;
 *   - compaction and retention while other threads write and query;
 *   - the background thread compacts sealed shards by itself;
 *   - a shard with a damaged segment is refused;
 *   - export as line protocol re-imports into an identical database; tag
 *     selection, time range and CSV.
 */
#include "format/qt_alloc.h"
#include "format/qt_err.h"
#include "format/qt_log.h"
#include "harness.h"
#include "opsutil.h"
#include "server/ilp.h"
#include "storage/compact.h"
#include "storage/export.h"
#include "storage/retention.h"
#include "storage/scan.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct ops_model *
model_new(void)
{
    struct ops_model *m = calloc(1, sizeof(*m));
    if (m == NULL)
        abort();
    return m;
}

/* Many flushes of random, overlapping writes: several segments per shard. */
static int
fill_overlapping(struct qt_db *db, struct ops_model *m, uint64_t *rng, int rounds)
{
    for (int r = 0; r < rounds; r++) {
        int rc = ops_write_random(db, m, rng, 700, 0, OPS_SLOTS);
        if (rc == 0)
            rc = qt_db_flush(db);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static uint32_t
count_segments(struct qt_db *db, uint32_t *shards)
{
    struct qt_shard_info *si;
    uint32_t n, segs = 0;
    if (qt_db_shards(db, &si, &n) != 0)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        segs += si[i].segments;
    *shards = n;
    qt_free(si);
    return segs;
}

TEST(compact_all_keeps_last_writes)
{
    struct ops_model *m = model_new();
    uint64_t rng = qt_test_seed() ^ 0x1111;
    const char *dir = qt_test_dir();
    struct qt_db *db = ops_open(dir, NULL);
    CHECK(db != NULL);
    CHECK_OK(fill_overlapping(db, m, &rng, 6));
    CHECK_OK(ops_check(db, m, NULL));
    uint32_t shards = 0;
    uint32_t before = count_segments(db, &shards);
    CHECK(before > shards);
    struct qt_compact_opts o = {.all = true};
    struct qt_compact_result r;
    CHECK_OK(qt_db_compact(db, &o, &r));
    CHECK_EQ(r.shards, shards);
    CHECK_EQ(r.segments_in, before);
    CHECK_EQ(r.points_out, ops_model_points(m, NULL));
    CHECK_EQ(r.points_trimmed, 0);
    CHECK(r.points_in > r.points_out); /* re-sends and late duplicates were merged */
    CHECK_OK(ops_check(db, m, NULL));
    struct qt_shard_info *si;
    uint32_t n;
    CHECK_OK(qt_db_shards(db, &si, &n));
    CHECK_EQ(n, shards);
    uint64_t pts = 0;
    for (uint32_t i = 0; i < n; i++) {
        CHECK_EQ(si[i].segments, 1);
        CHECK_EQ(si[i].level_max, 1);
        CHECK(si[i].last_compaction_ns > 0);
        CHECK_EQ(si[i].series, OPS_GROUPS * OPS_FIELDS);
        CHECK(si[i].bytes_per_point > 0.0 && si[i].bytes_per_point < 40.0);
        CHECK(si[i].ts_min >= si[i].start_ns && si[i].ts_max < si[i].end_ns);
        pts += si[i].points;
    }
    qt_free(si);
    CHECK_EQ(pts, r.points_out);
    /* Compacting again: a single segment per shard, nothing to gain. */
    CHECK_OK(qt_db_compact(db, &o, &r));
    CHECK_EQ(r.shards, 0);
    CHECK_EQ(r.shards_skipped, shards);
    CHECK_OK(qt_db_close(db));
    CHECK_EQ(ops_count_files(dir, ".qts"), shards); /* inputs deleted */
    db = ops_open(dir, NULL);
    CHECK(db != NULL);
    CHECK_OK(ops_check(db, m, NULL));
    /* More late data on top of compacted shards, compacted again. */
    CHECK_OK(fill_overlapping(db, m, &rng, 2));
    CHECK_OK(qt_db_compact(db, &o, &r));
    CHECK_EQ(r.points_out, ops_model_points(m, NULL));
    CHECK_OK(ops_check(db, m, NULL));
    CHECK_OK(qt_db_shards(db, &si, &n));
    for (uint32_t i = 0; i < n; i++)
        CHECK_EQ(si[i].level_max, 2);
    qt_free(si);
    CHECK_OK(qt_db_close(db));
    free(m);
}

TEST(compact_single_shard_and_errors)
{
    struct ops_model *m = model_new();
    uint64_t rng = qt_test_seed() ^ 0x2222;
    struct qt_db *db = ops_open(qt_test_dir(), NULL);
    CHECK(db != NULL);
    CHECK_OK(fill_overlapping(db, m, &rng, 3));
    struct qt_shard_info *si;
    uint32_t n;
    CHECK_OK(qt_db_shards(db, &si, &n));
    CHECK(n >= 3);
    int64_t target = si[1].start_ns;
    uint32_t other = si[2].segments;
    qt_free(si);
    struct qt_compact_opts o = {.shard_start = target};
    struct qt_compact_result r;
    CHECK_OK(qt_db_compact(db, &o, &r));
    CHECK_EQ(r.shards, 1);
    CHECK_OK(qt_db_shards(db, &si, &n));
    CHECK_EQ(si[1].segments, 1);
    CHECK_EQ(si[2].segments, other);
    qt_free(si);
    CHECK_OK(ops_check(db, m, NULL));
    o.shard_start = target + 1;
    CHECK_RC(qt_db_compact(db, &o, &r), QT_ENOTFOUND);
    /* force rewrites a single segment */
    o = (struct qt_compact_opts){.shard_start = target, .force = true};
    CHECK_OK(qt_db_compact(db, &o, &r));
    CHECK_EQ(r.shards, 1);
    CHECK_OK(ops_check(db, m, NULL));
    /* not enough free disk: refused before anything is written */
    o = (struct qt_compact_opts){.all = true, .min_free_bytes = UINT64_MAX / 2};
    qt_log_set_level((enum qt_log_level)(QT_LOG_ERROR + 1));
    CHECK_RC(qt_db_compact(db, &o, &r), -ENOSPC);
    qt_log_set_level(QT_LOG_INFO);
    CHECK_EQ(r.shards, 0);
    CHECK_OK(ops_check(db, m, NULL));
    /* cancelled before it starts: nothing changes */
    atomic_int cancel = 1;
    o = (struct qt_compact_opts){.all = true, .ctl = {.cancel = &cancel}};
    CHECK_RC(qt_db_compact(db, &o, &r), QT_ECLOSED);
    CHECK_OK(ops_check(db, m, NULL));
    CHECK_OK(qt_db_close(db));
    free(m);
}

/* before_commit hook: write newer values into the shard being compacted. */
struct hook_arg {
    struct qt_db *db;
    struct ops_model *m;
    uint32_t slot_lo;
    int rc;
};

static void
hook_overwrite(void *arg)
{
    struct hook_arg *h = arg;
    for (uint32_t g = 0; g < OPS_GROUPS && h->rc == 0; g++) {
        for (uint32_t s = h->slot_lo; s < h->slot_lo + 40 && h->rc == 0; s += 3)
            h->rc = ops_write_line(h->db, h->m, g, s, 900000 + s);
    }
    if (h->rc == 0)
        h->rc = qt_db_flush(h->db); /* a new segment in the shard, seq above the output's */
}

TEST(compact_concurrent_flush_keeps_precedence)
{
    struct ops_model *m = model_new();
    uint64_t rng = qt_test_seed() ^ 0x3333;
    const char *dir = qt_test_dir();
    struct qt_db *db = ops_open(dir, NULL);
    CHECK(db != NULL);
    CHECK_OK(fill_overlapping(db, m, &rng, 4));
    /* shard of slot 400 (1 h shards: slots 360..719) */
    int64_t shard = OPS_T0 + 360 * OPS_STEP;
    struct hook_arg h = {.db = db, .m = m, .slot_lo = 400};
    struct qt_compact_opts o = {
        .shard_start = shard, .before_commit = hook_overwrite, .hook_arg = &h};
    struct qt_compact_result r;
    CHECK_OK(qt_db_compact(db, &o, &r));
    CHECK_OK(h.rc);
    CHECK_OK(ops_check(db, m, NULL));
    struct qt_shard_info *si;
    uint32_t n;
    CHECK_OK(qt_db_shards(db, &si, &n));
    for (uint32_t i = 0; i < n; i++) {
        if (si[i].start_ns == shard)
            CHECK_EQ(si[i].segments, 2); /* the output and the newer flush */
    }
    qt_free(si);
    CHECK_OK(qt_db_close(db));
    db = ops_open(dir, NULL);
    CHECK(db != NULL);
    CHECK_OK(ops_check(db, m, NULL));
    o = (struct qt_compact_opts){.shard_start = shard};
    CHECK_OK(qt_db_compact(db, &o, &r)); /* and merged once more: the flush still wins */
    CHECK_OK(ops_check(db, m, NULL));
    CHECK_OK(qt_db_close(db));
    free(m);
}

TEST(retention_drops_and_trims)
{
    struct ops_model *m = model_new();
    uint64_t rng = qt_test_seed() ^ 0x4444;
    struct qt_db *db = ops_open(qt_test_dir(), NULL);
    CHECK(db != NULL);
    CHECK_OK(fill_overlapping(db, m, &rng, 4));
    char spec[] = "air=2h,wat*=1h";
    struct qt_retention_rule rules[4];
    uint32_t nr = 0;
    CHECK_OK(qt_retention_parse(spec, rules, 4, &nr));
    CHECK_EQ(nr, 2);
    CHECK_OK(qt_db_set_retention(db, rules, nr));
    CHECK_EQ(qt_db_retention_for(db, "water", 5), OPS_HOUR);
    CHECK_EQ(qt_db_retention_for(db, "grid", 4), 0);
    /* now = T0 + 5h30m: air keeps ts >= T0+3h30m (slot 1260), water >= T0+4h30m (1620). */
    int64_t now = OPS_T0 + 5 * OPS_HOUR + OPS_HOUR / 2;
    struct qt_retention_result rr;
    CHECK_OK(qt_db_apply_retention(db, now, &rr));
    CHECK_EQ(rr.shards_dropped, 0); /* grid has no rule: every shard is kept */
    struct qt_compact_opts o = {.all = true, .now_ns = now};
    struct qt_compact_result r;
    CHECK_OK(qt_db_compact(db, &o, &r));
    uint32_t drop[OPS_GROUPS] = {1260, 1260, 1620, 1620, 0, 0};
    CHECK(r.points_trimmed > 0);
    CHECK_EQ(r.points_out, ops_model_points(m, drop));
    CHECK_OK(ops_check(db, m, drop));
    /* A rule for grid too: the first shards are now past retention for all. */
    rules[2] = (struct qt_retention_rule){.measurement = "grid", .duration_ns = 3 * OPS_HOUR};
    CHECK_OK(qt_db_set_retention(db, rules, 3));
    uint32_t shards0 = 0, shards1 = 0;
    count_segments(db, &shards0);
    CHECK_OK(qt_db_apply_retention(db, now, &rr));
    /* shards ending at or before min(cutoffs) = T0 + 2h30m: [0,1h), [1h,2h) */
    CHECK_EQ(rr.shards_dropped, 2);
    count_segments(db, &shards1);
    CHECK_EQ(shards1, shards0 - 2);
    /* grid slots in [2h, 2h30m) stay until the shard is trimmed */
    CHECK_OK(qt_db_compact(db, &o, &r));
    drop[4] = drop[5] = 900;
    CHECK_OK(ops_check(db, m, drop));
    CHECK_RC(qt_db_set_retention(db, (struct qt_retention_rule[]){{"x", false, 0}}, 1), QT_EINVAL);
    char bad[] = "air=3x";
    CHECK_RC(qt_retention_parse(bad, rules, 4, &nr), QT_ESYNTAX);
    CHECK_OK(qt_db_close(db));
    free(m);
}

/* ---- concurrent writers, queries, compaction, retention ---------------------- */

struct conc {
    struct qt_db *db;
    atomic_int stop;
    atomic_int errors;
    uint32_t written; /* writer: slots done */
};

static int64_t
conc_code(uint32_t g, uint32_t slot)
{
    return (int64_t)(g * 100000 + slot);
}

static void *
conc_writer(void *arg)
{
    struct conc *c = arg;
    for (uint32_t slot = 1500; slot < OPS_SLOTS && !atomic_load(&c->stop); slot++) {
        for (uint32_t g = 0; g < OPS_GROUPS; g++) {
            if (ops_write_line(c->db, NULL, g, slot, conc_code(g, slot)) != 0) {
                atomic_fetch_add(&c->errors, 1);
                return NULL;
            }
        }
        c->written = slot + 1;
        if (slot % 150 == 0 && qt_db_flush(c->db) != 0)
            atomic_fetch_add(&c->errors, 1);
    }
    return NULL;
}

/* Every float point of group g at slot >= 1500 must be conc_code / 100. */
static void *
conc_reader(void *arg)
{
    struct conc *c = arg;
    uint64_t rng = 77;
    while (!atomic_load(&c->stop)) {
        uint32_t g = (uint32_t)(qt_test_rand(&rng) % OPS_GROUPS);
        char key[128];
        int n = snprintf(key, sizeof(key), "%s pm25", ops_group_keys[g]);
        uint32_t sid;
        if (qt_catalog_lookup(qt_db_catalog(c->db), (const uint8_t *)key, (size_t)n, &sid) != 0)
            continue;
        struct qt_scan_opts o = {.t0 = OPS_T0 + 1500 * OPS_STEP, .t1 = INT64_MAX};
        struct qt_scan *s;
        if (qt_scan_open(c->db, sid, &o, &s) != 0) {
            atomic_fetch_add(&c->errors, 1);
            continue;
        }
        struct qt_chunk ch;
        int rc;
        int64_t last = INT64_MIN;
        while ((rc = qt_scan_next(s, &ch)) == 1) {
            for (uint32_t i = 0; i < ch.n; i++) {
                uint32_t slot = (uint32_t)((ch.ts[i] - OPS_T0) / OPS_STEP);
                if (ch.ts[i] <= last || ch.vals[i].f != (double)conc_code(g, slot) / 100.0)
                    atomic_fetch_add(&c->errors, 1);
                last = ch.ts[i];
            }
        }
        if (rc != 0)
            atomic_fetch_add(&c->errors, 1);
        qt_scan_close(s);
    }
    return NULL;
}

TEST(compact_and_retention_under_load)
{
    struct ops_model *m = model_new();
    uint64_t rng = qt_test_seed() ^ 0x5555;
    struct qt_db_opts dbo = {
        .dir = qt_test_dir(), .no_background = true, .mem_budget_bytes = 1u << 20};
    struct qt_db *db = ops_open_opts(&dbo);
    CHECK(db != NULL);
    for (int r = 0; r < 4; r++) {
        CHECK_OK(ops_write_random(db, m, &rng, 600, 0, 1500));
        CHECK_OK(qt_db_flush(db));
    }
    struct qt_retention_rule rule = {.measurement = "air", .duration_ns = 7 * OPS_HOUR};
    CHECK_OK(qt_db_set_retention(db, &rule, 1));
    struct conc c = {.db = db};
    pthread_t w, rd;
    CHECK(pthread_create(&w, NULL, conc_writer, &c) == 0);
    CHECK(pthread_create(&rd, NULL, conc_reader, &c) == 0);
    int64_t now = OPS_T0 + 8 * OPS_HOUR; /* air cutoff: T0 + 1h (slot 360) */
    for (int i = 0; i < 6; i++) {
        struct qt_compact_opts o = {.all = true, .now_ns = now};
        struct qt_compact_result r;
        int rc = qt_db_compact(db, &o, &r);
        if (rc != 0 && rc != QT_EBUSY)
            atomic_fetch_add(&c.errors, 1);
        if (qt_db_apply_retention(db, now, NULL) != 0)
            atomic_fetch_add(&c.errors, 1);
        usleep(20000);
    }
    atomic_store(&c.stop, 1);
    pthread_join(w, NULL);
    pthread_join(rd, NULL);
    CHECK_EQ(atomic_load(&c.errors), 0);
    for (uint32_t slot = 1500; slot < c.written; slot++)
        for (uint32_t g = 0; g < OPS_GROUPS; g++)
            for (uint32_t f = 0; f < OPS_FIELDS; f++) {
                m->code[g][f][slot] = conc_code(g, slot);
                m->set[g][f][slot] = 1;
            }
    struct qt_compact_opts o = {.all = true, .now_ns = now};
    CHECK_OK(qt_db_compact(db, &o, NULL));
    uint32_t drop[OPS_GROUPS] = {360, 360, 0, 0, 0, 0};
    CHECK_OK(ops_check(db, m, drop));
    CHECK_OK(qt_db_close(db));
    free(m);
}

TEST(background_compacts_sealed_shards)
{
    struct ops_model *m = model_new();
    uint64_t rng = qt_test_seed() ^ 0x6666;
    struct qt_db_opts dbo = {.dir = qt_test_dir(), .compact_idle_ms = 1};
    struct qt_db *db = ops_open_opts(&dbo);
    CHECK(db != NULL);
    CHECK_OK(fill_overlapping(db, m, &rng, 3));
    qt_db_ops_kick(db);
    uint32_t shards = 0, segs = 0;
    struct qt_ops_stats st;
    /* Data is in the past: every shard is sealed.  Wait (up to 20 s, for
     * loaded CI machines) for both the new version and the counter, which
     * the background thread bumps just after it publishes. */
    for (int i = 0; i < 2000; i++) {
        segs = count_segments(db, &shards);
        qt_db_ops_stats(db, &st);
        if (segs == shards && st.compactions >= shards)
            break;
        usleep(10000);
    }
    CHECK_EQ(segs, shards);
    CHECK(st.compactions >= shards);
    CHECK(st.background_runs >= 1);
    CHECK_OK(ops_check(db, m, NULL));
    CHECK_OK(qt_db_close(db));
    free(m);
}

static int
first_segment(const char *dir, int64_t shard, char *out, size_t cap)
{
    char sdir[4096];
    snprintf(sdir, sizeof(sdir), "%s/shards/%lld", dir, (long long)shard);
    DIR *d = opendir(sdir);
    if (d == NULL)
        return -1;
    struct dirent *e;
    int rc = -1;
    while (rc != 0 && (e = readdir(d)) != NULL) {
        if (strstr(e->d_name, ".qts") != NULL && strstr(e->d_name, ".tmp") == NULL) {
            snprintf(out, cap, "%s/%s", sdir, e->d_name);
            rc = 0;
        }
    }
    closedir(d);
    return rc;
}

TEST(compact_refuses_damaged_shard)
{
    struct ops_model *m = model_new();
    uint64_t rng = qt_test_seed() ^ 0x7777;
    const char *dir = qt_test_dir();
    struct qt_db *db = ops_open(dir, NULL);
    CHECK(db != NULL);
    CHECK_OK(fill_overlapping(db, m, &rng, 2));
    struct qt_shard_info *si;
    uint32_t n;
    CHECK_OK(qt_db_shards(db, &si, &n));
    int64_t shard = si[0].start_ns;
    qt_free(si);
    CHECK_OK(qt_db_close(db));
    /* Damage the footer of a segment of the first shard. */
    char path[4096];
    CHECK_OK(first_segment(dir, shard, path, sizeof(path)));
    int64_t size = qt_test_file_size(path);
    CHECK(size > 200);
    uint8_t junk[8] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};
    CHECK_OK(qt_test_write_at(path, (uint64_t)size - 64, junk, sizeof(junk)));
    qt_log_set_level(QT_LOG_ERROR);
    db = ops_open(dir, NULL);
    CHECK(db != NULL);
    struct qt_compact_opts o = {.shard_start = shard};
    CHECK_RC(qt_db_compact(db, &o, NULL), QT_ECORRUPT);
    o = (struct qt_compact_opts){.all = true};
    CHECK_RC(qt_db_compact(db, &o, NULL), QT_ECORRUPT);
    qt_log_set_level(QT_LOG_INFO);
    CHECK_OK(qt_db_close(db));
    free(m);
}

/* ---- export -------------------------------------------------------------------------- */

struct sink {
    char *buf;
    size_t len, cap;
};

static int
sink_out(void *arg, const char *p, size_t n)
{
    struct sink *s = arg;
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
        if (s->buf == NULL)
            return -1;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return 0;
}

/* Parse line protocol text and write every line into db. */
static int
import_lp(struct qt_db *db, const char *text, size_t len)
{
    static struct qt_ilp_point pt;
    static char scratch[QT_ILP_SCRATCH_MAX];
    char key[QT_SERIES_KEY_MAX];
    struct qt_ilp_opts io = {.precision = QT_ILP_NS};
    for (size_t off = 0; off < len;) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t n = nl != NULL ? (size_t)(nl - (text + off)) : len - off;
        int rc =
            qt_ilp_parse_line(&io, (const uint8_t *)text + off, n, scratch, sizeof(scratch), &pt);
        if (rc < 0) {
            printf("re-import: %s at %.*s\n", qt_err_detail(), (int)n, text + off);
            return rc;
        }
        off += n + 1;
        if (rc == QT_ILP_SKIP)
            continue;
        size_t klen = 0;
        struct qt_batch_field f[OPS_FIELDS];
        rc = qt_ilp_group_key(&pt, key, sizeof(key), &klen);
        if (rc != 0 || pt.fields_count > OPS_FIELDS)
            return -1;
        for (uint32_t k = 0; k < pt.fields_count; k++) {
            const struct qt_ilp_field *x = &pt.fields[k];
            f[k] = (struct qt_batch_field){.name = x->key.ptr, .name_len = x->key.len};
            switch (x->type) {
            case QT_ILP_FLOAT: f[k].vtype = QT_VT_FLOAT, f[k].v.f = x->v.f; break;
            case QT_ILP_INT: f[k].vtype = QT_VT_INT, f[k].v.i = x->v.i; break;
            case QT_ILP_BOOL: f[k].vtype = QT_VT_BOOL, f[k].v.b = x->v.b; break;
            default:
                f[k].vtype = QT_VT_STRING;
                f[k].v.s = (struct qt_str){.p = x->v.s.ptr, .len = x->v.s.len};
            }
        }
        struct qt_batch_line l = {.key = key,
                                  .key_len = (uint32_t)klen,
                                  .ts = pt.timestamp_ns,
                                  .n_fields = pt.fields_count,
                                  .fields = f};
        struct qt_write_result wr;
        rc = qt_db_write(db, &l, 1, NULL, NULL, &wr);
        if (rc != 0 || wr.lines_ok != 1)
            return -1;
    }
    return 0;
}

TEST(export_reimports_identically)
{
    struct ops_model *m = model_new();
    uint64_t rng = qt_test_seed() ^ 0x8888;
    char src[4096], dst[4096];
    snprintf(src, sizeof(src), "%s/src", qt_test_dir());
    snprintf(dst, sizeof(dst), "%s/dst", qt_test_dir());
    struct qt_db *db = ops_open(src, NULL);
    CHECK(db != NULL);
    CHECK_OK(fill_overlapping(db, m, &rng, 2));
    CHECK_OK(ops_write_random(db, m, &rng, 300, 0, OPS_SLOTS)); /* memtable too */
    struct qt_db *out = ops_open(dst, NULL);
    CHECK(out != NULL);
    static const char *meas[] = {"air", "water", "grid"};
    struct sink s = {0};
    uint64_t points = 0;
    for (int i = 0; i < 3; i++) {
        s.len = 0;
        struct qt_export_opts eo = {.measurement = {meas[i], (uint32_t)strlen(meas[i])},
                                    .t0 = INT64_MIN,
                                    .t1 = INT64_MAX,
                                    .out = sink_out,
                                    .arg = &s};
        struct qt_export_result er;
        CHECK_OK(qt_export(db, &eo, &er));
        CHECK_EQ(er.groups, 2);
        CHECK_EQ(er.skipped, 0);
        CHECK_EQ(er.bytes, s.len);
        points += er.points;
        CHECK_OK(import_lp(out, s.buf, s.len));
    }
    CHECK_EQ(points, ops_model_points(m, NULL));
    CHECK_OK(ops_check(out, m, NULL));
    /* Tag selection and a time range; CSV. */
    char sel[] = "air,station=a0002";
    struct qt_tag_matcher tm[4];
    uint32_t nt = 0;
    struct qt_str ms;
    CHECK_OK(qt_export_parse_selector(sel, &ms, tm, 4, &nt));
    CHECK_EQ(nt, 1);
    s.len = 0;
    struct qt_export_opts eo = {.measurement = ms,
                                .tags = tm,
                                .ntags = nt,
                                .t0 = OPS_T0 + 100 * OPS_STEP,
                                .t1 = OPS_T0 + 200 * OPS_STEP,
                                .format = QT_EXPORT_CSV,
                                .out = sink_out,
                                .arg = &s};
    struct qt_export_result er;
    CHECK_OK(qt_export(db, &eo, &er));
    CHECK_EQ(er.groups, 1);
    uint64_t want = 0;
    for (uint32_t f = 0; f < OPS_FIELDS; f++)
        for (uint32_t slot = 100; slot < 200; slot++)
            want += m->set[1][f][slot];
    CHECK_EQ(er.points, want);
    CHECK_EQ(er.lines, want);
    CHECK(strncmp(s.buf, "measurement,tags,field,time_ns,value\n", 37) == 0);
    CHECK(strstr(s.buf, "air,\"district=binjiang,station=a0002\",") != NULL);
    char bad[] = "air,station";
    CHECK_RC(qt_export_parse_selector(bad, &ms, tm, 4, &nt), QT_ESYNTAX);
    char fl[40];
    static const double vals[] = {23.4, 0.1 + 0.2, 41.0, -1e-300, 1e300, 5e-324, -0.0};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        CHECK(qt_export_float(vals[i], fl, sizeof(fl)) > 0);
        CHECK(strtod(fl, NULL) == vals[i]);
    }
    CHECK_OK(qt_export_float(23.4, fl, sizeof(fl)) == 4 ? 0 : -1);
    CHECK(strcmp(fl, "23.4") == 0);
    free(s.buf);
    CHECK_OK(qt_db_close(out));
    CHECK_OK(qt_db_close(db));
    free(m);
}
