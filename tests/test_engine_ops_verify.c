/*
 * test_engine_ops_verify.c -- verify and quarantine on the run's real
 * backend (QT_TEST_IO):
 *   - a clean database and a clean backup verify without findings, every
 *     block decoded (both the in-memory and the mapped read path);
 *   - a flipped byte in a segment block is found with its offset, series
 *     and time range; a truncated and a missing segment are found;
 *     quarantine moves them aside and the rest serves;
 *   - damage in a backup (file byte, missing file, BACKUP itself);
 *   - damage in the middle of the WAL and of the catalog; a torn WAL tail
 *     is information, not damage;
 *   - the live variant finds and quarantines while the database is open.
 */
#include "format/qt_err.h"
#include "format/qt_log.h"
#include "harness.h"
#include "opsutil.h"
#include "storage/backup.h"
#include "storage/verify.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct findings {
    uint32_t n, damage;
    struct qt_verify_finding last_damage;
    char path[4096];
    char series[256];
};

static void
collect(void *arg, const struct qt_verify_finding *f)
{
    struct findings *x = arg;
    x->n++;
    if (!f->damage)
        return;
    x->damage++;
    x->last_damage = *f;
    snprintf(x->path, sizeof(x->path), "%s", f->path);
    x->last_damage.path = x->path;
    if (f->series != NULL) {
        snprintf(x->series, sizeof(x->series), "%.*s", (int)f->series_len, f->series);
        x->last_damage.series = x->series;
    }
}

static int
verify(const char *dir, bool quarantine, struct findings *fx, struct qt_verify_result *r,
       uint64_t inmem_max)
{
    memset(fx, 0, sizeof(*fx));
    struct qt_verify_opts o = {
        .quarantine = quarantine, .report = collect, .arg = fx, .inmem_max = inmem_max};
    return qt_verify_dir(dir, &o, r);
}

/* Some file under dir ending in suffix (sorted, first). */
static int
find_file(const char *dir, const char *suffix, int nth, char *out, size_t cap)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "find '%s' -name '*%s' -type f | sort | sed -n %dp", dir, suffix,
             nth);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    int rc = fgets(out, (int)cap, p) != NULL ? 0 : -1;
    pclose(p);
    if (rc == 0)
        out[strcspn(out, "\n")] = '\0';
    return rc == 0 && out[0] != '\0' ? 0 : -1;
}

static int
flip(const char *path, uint64_t off)
{
    size_t len = 0;
    uint8_t *buf = qt_test_read_file(path, &len);
    if (buf == NULL || off >= len) {
        free(buf);
        return -1;
    }
    uint8_t b = buf[off] ^ 0x04;
    free(buf);
    return qt_test_write_at(path, off, &b, 1);
}

/* A closed database with several flushed segments and a WAL tail. */
static struct ops_model *
make_db(const char *dir, uint64_t seed)
{
    struct ops_model *m = calloc(1, sizeof(*m));
    struct qt_db *db = ops_open(dir, NULL);
    if (m == NULL || db == NULL)
        abort();
    for (int r = 0; r < 3; r++) {
        if (ops_write_random(db, m, &seed, 500, 0, OPS_SLOTS) != 0 || qt_db_flush(db) != 0)
            abort();
    }
    if (ops_write_random(db, m, &seed, 200, 0, OPS_SLOTS) != 0)
        abort();
    /* close flushes the tail; write more so the WAL keeps some */
    if (qt_db_close(db) != 0)
        abort();
    return m;
}

TEST(clean_database_and_backup_verify)
{
    char dir[4096], bk[4096];
    snprintf(dir, sizeof(dir), "%s/db", qt_test_dir());
    snprintf(bk, sizeof(bk), "%s/bk", qt_test_dir());
    struct ops_model *m = make_db(dir, qt_test_seed() ^ 0x7e01);
    struct findings fx;
    struct qt_verify_result r;
    CHECK_OK(verify(dir, false, &fx, &r, 0));
    CHECK_EQ(fx.damage, 0);
    CHECK(!r.is_backup);
    CHECK(r.segments >= 6);
    CHECK(r.blocks > 0);
    uint64_t points = r.points;
    CHECK(points >= ops_model_points(m, NULL));
    CHECK_OK(verify(dir, false, &fx, &r, 1)); /* every file mapped */
    CHECK_EQ(r.points, points);
    struct qt_db *db = ops_open(dir, NULL);
    CHECK(db != NULL);
    CHECK_OK(ops_write_random(db, m, &(uint64_t){7}, 100, 0, OPS_SLOTS)); /* WAL tail */
    struct qt_backup_opts bo = {.target = bk};
    struct qt_backup_result br;
    CHECK_OK(qt_db_backup(db, &bo, &br));
    CHECK_OK(qt_db_verify(db, &(struct qt_verify_opts){0}, &r)); /* live */
    CHECK_EQ(r.damages, 0);
    CHECK_OK(qt_db_close(db));
    char bdir[4096];
    snprintf(bdir, sizeof(bdir), "%s/%s", bk, br.id);
    CHECK_OK(verify(bdir, false, &fx, &r, 0));
    CHECK(r.is_backup);
    CHECK_EQ(fx.damage, 0);
    CHECK_EQ(r.files, br.files + 1); /* + BACKUP */
    /* A backup cannot be quarantined. */
    CHECK_RC(verify(bdir, true, &fx, &r, 0), QT_EINVAL);
    free(m);
}

TEST(damaged_segments_found_and_quarantined)
{
    char dir[4096], seg[4096], seg2[4096], seg3[4096];
    snprintf(dir, sizeof(dir), "%s/db", qt_test_dir());
    struct ops_model *m = make_db(dir, qt_test_seed() ^ 0x7e02);
    qt_log_set_level((enum qt_log_level)(QT_LOG_ERROR + 1));
    CHECK_OK(find_file(dir, ".qts", 1, seg, sizeof(seg)));
    CHECK_OK(flip(seg, 64 + 60)); /* inside the first (TS) block */
    struct findings fx;
    struct qt_verify_result r;
    CHECK_RC(verify(dir, false, &fx, &r, 0), QT_ECORRUPT);
    CHECK(fx.damage >= 1);
    CHECK_EQ(r.damaged_files, 1);
    CHECK(strcmp(fx.path, seg) == 0);
    CHECK_EQ(fx.last_damage.kind, QT_VERIFY_SEGMENT);
    CHECK(fx.last_damage.offset == 64);
    CHECK(fx.last_damage.series != NULL);
    CHECK(fx.last_damage.points > 0);
    CHECK(fx.last_damage.ts_min <= fx.last_damage.ts_max);
    CHECK(fx.last_damage.ts_min >= OPS_T0);
    /* The same through the mapped path. */
    CHECK_RC(verify(dir, false, &fx, &r, 1), QT_ECORRUPT);
    CHECK(fx.last_damage.offset == 64);
    /* A truncated segment and a missing one. */
    CHECK_OK(find_file(dir, ".qts", 2, seg2, sizeof(seg2)));
    CHECK(truncate(seg2, qt_test_file_size(seg2) - 100) == 0);
    CHECK_OK(find_file(dir, ".qts", 3, seg3, sizeof(seg3)));
    CHECK(unlink(seg3) == 0);
    CHECK_RC(verify(dir, false, &fx, &r, 0), QT_ECORRUPT);
    CHECK_EQ(r.damaged_files, 3);
    /* Quarantine: the MANIFEST drops them, the files move aside. */
    CHECK_RC(verify(dir, true, &fx, &r, 0), QT_ECORRUPT);
    CHECK_EQ(r.quarantined, 3);
    char q[4096];
    snprintf(q, sizeof(q), "%s/quarantine", dir);
    CHECK_EQ(ops_count_files(q, ".qts"), 2);
    CHECK_OK(verify(dir, false, &fx, &r, 0));
    CHECK_EQ(fx.damage, 0);
    struct qt_db *db = ops_open(dir, NULL);
    CHECK(db != NULL);
    struct qt_db_health h;
    qt_db_health(db, &h);
    CHECK_EQ(h.damaged_segments, 0);
    CHECK(ops_check(db, m, NULL) != 0); /* some points are gone, as reported */
    CHECK_OK(qt_db_close(db));
    qt_log_set_level(QT_LOG_INFO);
    free(m);
}

TEST(damaged_backup_wal_and_catalog)
{
    char dir[4096], bk[4096], bdir[4096], f[4096];
    snprintf(dir, sizeof(dir), "%s/db", qt_test_dir());
    snprintf(bk, sizeof(bk), "%s/bk", qt_test_dir());
    struct ops_model *m = make_db(dir, qt_test_seed() ^ 0x7e03);
    struct qt_db *db = ops_open(dir, NULL);
    CHECK(db != NULL);
    uint64_t seed = 3;
    for (int i = 0; i < 3; i++)
        CHECK_OK(ops_write_random(db, m, &seed, 300, 0, OPS_SLOTS)); /* WAL records */
    struct qt_backup_opts bo = {.target = bk, .copy = true};
    struct qt_backup_result br;
    CHECK_OK(qt_db_backup(db, &bo, &br));
    CHECK_OK(qt_db_close(db));
    snprintf(bdir, sizeof(bdir), "%s/%s", bk, br.id);
    qt_log_set_level((enum qt_log_level)(QT_LOG_ERROR + 1));
    struct findings fx;
    struct qt_verify_result r;
    /* A byte of a WAL record in the backup: found twice (BACKUP XXH3, record). */
    CHECK_OK(find_file(bdir, ".wal", 1, f, sizeof(f)));
    CHECK(qt_test_file_size(f) > 200);
    CHECK_OK(flip(f, 100));
    CHECK_RC(verify(bdir, false, &fx, &r, 0), QT_ECORRUPT);
    CHECK_EQ(r.damaged_files, 1);
    CHECK(fx.damage >= 2);
    CHECK_OK(flip(f, 100));
    CHECK_OK(verify(bdir, false, &fx, &r, 0));
    /* A torn tail of the newest WAL file is information only. */
    CHECK(truncate(f, qt_test_file_size(f) - 5) == 0);
    CHECK_RC(verify(bdir, false, &fx, &r, 0), QT_ECORRUPT); /* differs from BACKUP */
    CHECK_EQ(fx.last_damage.kind, QT_VERIFY_BACKUP);
    CHECK_EQ(fx.damage, 1); /* the WAL itself only has a torn tail */
    /* The catalog: a record in the middle. */
    CHECK_OK(find_file(bdir, "catalog.qtc", 1, f, sizeof(f)));
    CHECK_OK(flip(f, 40));
    CHECK_RC(verify(bdir, false, &fx, &r, 0), QT_ECORRUPT);
    /* A missing file and a damaged BACKUP. */
    CHECK_OK(find_file(bdir, ".qts", 1, f, sizeof(f)));
    CHECK(unlink(f) == 0);
    char b[4096];
    snprintf(b, sizeof(b), "%s/BACKUP", bdir);
    CHECK_OK(flip(b, 20));
    CHECK_RC(verify(bdir, false, &fx, &r, 0), QT_ECORRUPT);
    CHECK(r.damaged_files >= 3);
    /* Damage in the data directory's own WAL (not the newest file) and catalog. */
    CHECK_OK(verify(dir, false, &fx, &r, 0));
    CHECK_OK(find_file(dir, "catalog.qtc", 1, f, sizeof(f)));
    CHECK_OK(flip(f, 60));
    CHECK_RC(verify(dir, false, &fx, &r, 0), QT_ECORRUPT);
    CHECK_EQ(fx.last_damage.kind, QT_VERIFY_CATALOG);
    CHECK_EQ(fx.last_damage.offset, 24);
    qt_log_set_level(QT_LOG_INFO);
    free(m);
}

TEST(live_verify_quarantines)
{
    char dir[4096], seg[4096];
    snprintf(dir, sizeof(dir), "%s/db", qt_test_dir());
    struct ops_model *m = make_db(dir, qt_test_seed() ^ 0x7e04);
    struct qt_db *db = ops_open(dir, NULL);
    CHECK(db != NULL);
    CHECK_OK(find_file(dir, ".qts", 2, seg, sizeof(seg)));
    int64_t size = qt_test_file_size(seg);
    CHECK_OK(flip(seg, (uint64_t)size / 2));
    qt_log_set_level((enum qt_log_level)(QT_LOG_ERROR + 1));
    struct findings fx = {0};
    struct qt_verify_opts o = {.report = collect, .arg = &fx};
    struct qt_verify_result r;
    CHECK_RC(qt_db_verify(db, &o, &r), QT_ECORRUPT);
    CHECK_EQ(r.damaged_files, 1);
    CHECK_RC(verify(dir, false, &fx, &r, 0), QT_EBUSY); /* offline while open: refused */
    o.quarantine = true;
    memset(&fx, 0, sizeof(fx));
    CHECK_RC(qt_db_verify(db, &o, &r), QT_ECORRUPT);
    CHECK_EQ(r.quarantined, 1);
    o.quarantine = false;
    CHECK_OK(qt_db_verify(db, &o, &r));
    CHECK_OK(ops_write_random(db, m, &(uint64_t){9}, 100, 0, OPS_SLOTS)); /* still writable */
    CHECK_OK(qt_db_flush(db));
    CHECK_OK(qt_db_close(db));
    CHECK_OK(verify(dir, false, &fx, &r, 0));
    qt_log_set_level(QT_LOG_INFO);
    free(m);
}
