/*
 * test_engine_ops_backup.c -- backup and restore on the run's real backend
 * (QT_TEST_IO):
 *   - a full backup of segments, a compacted shard and an un-flushed WAL
 *     tail restores into a database that answers exactly as the source did;
 *   - restore refuses a non-empty target (unless forced) and picks the
 *     newest backup of a target directory;
 *   - three incremental backups chained with writes, flushes and a
 *     compaction in between: each restores to its own moment, later ones
 *     link unchanged files, and every backup stands alone;
 *   - an online backup while a writer keeps writing holds every batch
 *     acknowledged before it started, whole batches only;
 *   - a damaged source segment fails the backup; a damaged backup (flipped
 *     byte, truncated file, missing file) fails the restore before it
 *     writes anything.
 */
#include "format/qt_alloc.h"
#include "format/qt_err.h"
#include "format/qt_log.h"
#include "harness.h"
#include "opsutil.h"
#include "storage/backup.h"
#include "storage/compact.h"
#include "storage/scan.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct ops_model *
model_new(void)
{
    struct ops_model *m = calloc(1, sizeof(*m));
    if (m == NULL)
        abort();
    return m;
}

static void
path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", qt_test_dir(), name);
}

/* Restore from `from` into a fresh directory `name` and compare with m. */
static int
restore_and_check(const char *from, const char *name, const struct ops_model *m)
{
    char to[4096];
    path_of(to, sizeof(to), name);
    struct qt_restore_opts ro = {.from = from, .to = to};
    struct qt_restore_result rr;
    int rc = qt_backup_restore(&ro, &rr);
    if (rc != 0)
        return rc;
    struct qt_db *db = ops_open(to, NULL);
    if (db == NULL)
        return -1;
    rc = ops_check(db, m, NULL);
    int rc2 = qt_db_close(db);
    return rc != 0 ? rc : rc2;
}

TEST(full_backup_restores_everything)
{
    struct ops_model *m = model_new();
    uint64_t rng = qt_test_seed() ^ 0xb001;
    char src[4096], target[4096], to[4096];
    path_of(src, sizeof(src), "src");
    path_of(target, sizeof(target), "backups");
    struct qt_db *db = ops_open(src, NULL);
    CHECK(db != NULL);
    for (int r = 0; r < 3; r++) {
        CHECK_OK(ops_write_random(db, m, &rng, 500, 0, OPS_SLOTS));
        CHECK_OK(qt_db_flush(db));
    }
    struct qt_compact_opts co = {.shard_start = OPS_T0};
    CHECK_OK(qt_db_compact(db, &co, NULL));
    CHECK_OK(ops_write_random(db, m, &rng, 400, 0, OPS_SLOTS)); /* WAL only */
    struct qt_backup_opts bo = {.target = target};
    struct qt_backup_result br;
    CHECK_OK(qt_db_backup(db, &bo, &br));
    CHECK(br.files_linked_data > 0); /* same file system: segments hard-linked */
    CHECK_EQ(br.files_linked_prev, 0);
    CHECK(br.bytes_read > br.bytes / 2 && br.bytes_read <= br.bytes); /* segments are read */
    /* Writes after the backup are not in it. */
    struct ops_model *at_backup = model_new();
    memcpy(at_backup, m, sizeof(*m));
    CHECK_OK(ops_write_random(db, m, &rng, 200, 0, OPS_SLOTS));
    char bdir[4096];
    snprintf(bdir, sizeof(bdir), "%s/%s", target, br.id);
    CHECK_OK(restore_and_check(bdir, "r1", at_backup));
    /* A copy backup (no links) restores the same, from the target root. */
    bo.copy = true;
    CHECK_OK(qt_db_backup(db, &bo, &br));
    CHECK_EQ(br.files_linked_data, 0);
    CHECK_EQ(br.files_copied, br.files);
    CHECK_OK(restore_and_check(target, "r2", m));
    char latest[80];
    CHECK_OK(qt_backup_latest(target, latest, sizeof(latest)));
    CHECK(strcmp(latest, br.id) == 0);
    /* Cancelled (SIGINT in the CLI): no new backup, no partial left. */
    atomic_int cancel = 1;
    struct qt_backup_opts bc = {.target = target, .ctl = {.cancel = &cancel}};
    CHECK_RC(qt_db_backup(db, &bc, NULL), QT_ECLOSED);
    CHECK_OK(qt_backup_latest(target, latest, sizeof(latest)));
    CHECK(strcmp(latest, br.id) == 0);
    char cmd[8300];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s' | grep partial)\"", target);
    CHECK(system(cmd) == 0);
    /* Non-empty target: refused; forced: replaced. */
    path_of(to, sizeof(to), "r1");
    struct qt_restore_opts ro = {.from = target, .to = to};
    CHECK_RC(qt_backup_restore(&ro, NULL), QT_EBUSY);
    ro.force = true;
    CHECK_OK(qt_backup_restore(&ro, NULL));
    struct qt_db *r1 = ops_open(to, NULL);
    CHECK(r1 != NULL);
    CHECK_OK(ops_check(r1, m, NULL));
    CHECK_OK(qt_db_close(r1));
    /* The source is untouched by all of this. */
    CHECK_OK(ops_check(db, m, NULL));
    CHECK_OK(qt_db_close(db));
    free(at_backup);
    free(m);
}

TEST(incremental_chain_of_three)
{
    struct ops_model *m = model_new();
    struct ops_model *snap[4];
    uint64_t rng = qt_test_seed() ^ 0xb002;
    char src[4096], target[4096], ids[4][80];
    path_of(src, sizeof(src), "src");
    path_of(target, sizeof(target), "backups");
    struct qt_db *db = ops_open(src, NULL);
    CHECK(db != NULL);
    struct qt_backup_opts bo = {.target = target, .incremental = true};
    for (int k = 0; k < 4; k++) {
        CHECK_OK(ops_write_random(db, m, &rng, 400, 0, OPS_SLOTS));
        if (k != 3)
            CHECK_OK(qt_db_flush(db));
        if (k == 2) {
            struct qt_compact_opts co = {.all = true};
            CHECK_OK(qt_db_compact(db, &co, NULL));
        }
        CHECK_OK(ops_write_random(db, m, &rng, 100, 0, OPS_SLOTS)); /* a WAL tail */
        struct qt_backup_result br;
        CHECK_OK(qt_db_backup(db, &bo, &br));
        snprintf(ids[k], sizeof(ids[k]), "%s", br.id);
        if (k == 0) {
            CHECK(br.parent[0] == '\0');
        } else {
            CHECK(strcmp(br.parent, ids[k - 1]) == 0);
            CHECK(br.files_linked_prev > 0); /* unchanged segments not copied again */
        }
        snap[k] = model_new();
        memcpy(snap[k], m, sizeof(*m));
        usleep(2000); /* distinct ids */
    }
    CHECK_OK(qt_db_close(db));
    for (int k = 0; k < 4; k++) {
        char bdir[4096], name[16];
        snprintf(bdir, sizeof(bdir), "%s/%s", target, ids[k]);
        snprintf(name, sizeof(name), "r%d", k);
        CHECK_OK(restore_and_check(bdir, name, snap[k]));
    }
    /* Each backup stands alone: delete the older ones, the newest restores. */
    for (int k = 0; k < 3; k++) {
        char bdir[4096];
        snprintf(bdir, sizeof(bdir), "%s/%s", target, ids[k]);
        ops_rm_tree(bdir);
    }
    CHECK_OK(restore_and_check(target, "r_last", snap[3]));
    for (int k = 0; k < 4; k++)
        free(snap[k]);
    free(m);
}

/* ---- online backup under a writer ---------------------------------------------- */

#define ONLINE_BATCHES 2400

struct online {
    struct qt_db *db;
    atomic_uint acked; /* batches [0, acked) acknowledged */
    atomic_int stop;
    atomic_int err;
};

static void *
online_writer(void *arg)
{
    struct online *o = arg;
    for (uint32_t b = 0; b < ONLINE_BATCHES && !atomic_load(&o->stop); b++) {
        struct qt_batch_field f[OPS_GROUPS];
        struct qt_batch_line l[OPS_GROUPS];
        for (uint32_t g = 0; g < OPS_GROUPS; g++) {
            f[g] = (struct qt_batch_field){
                .name = "pm25", .name_len = 4, .vtype = QT_VT_FLOAT, .v.f = (double)b + g / 10.0};
            l[g] = (struct qt_batch_line){.key = ops_group_keys[g],
                                          .key_len = (uint32_t)strlen(ops_group_keys[g]),
                                          .ts = OPS_T0 + (int64_t)b * OPS_STEP,
                                          .n_fields = 1,
                                          .fields = &f[g]};
        }
        int rc = qt_db_write(o->db, l, OPS_GROUPS, NULL, NULL, NULL);
        if (rc == 0)
            atomic_store(&o->acked, b + 1);
        if (rc == 0 && b % 300 == 299)
            rc = qt_db_flush(o->db);
        if (rc != 0) {
            atomic_store(&o->err, rc);
            return NULL;
        }
    }
    return NULL;
}

/* Slots present in the restored db: whole batches, at least [0, lo), below hi. */
static int
online_check(struct qt_db *db, uint32_t lo, uint32_t hi)
{
    static uint8_t seen[ONLINE_BATCHES];
    memset(seen, 0, sizeof(seen));
    for (uint32_t g = 0; g < OPS_GROUPS; g++) {
        char key[128];
        int n = snprintf(key, sizeof(key), "%s pm25", ops_group_keys[g]);
        uint32_t sid;
        if (qt_catalog_lookup(qt_db_catalog(db), (const uint8_t *)key, (size_t)n, &sid) != 0)
            return lo == 0 ? 0 : -1;
        struct qt_scan_opts so = {.t0 = INT64_MIN, .t1 = INT64_MAX};
        struct qt_scan *s;
        if (qt_scan_open(db, sid, &so, &s) != 0)
            return -1;
        struct qt_chunk c;
        int rc;
        while ((rc = qt_scan_next(s, &c)) == 1) {
            for (uint32_t i = 0; i < c.n; i++) {
                uint32_t b = (uint32_t)((c.ts[i] - OPS_T0) / OPS_STEP);
                if (b >= hi || c.vals[i].f != (double)b + g / 10.0)
                    rc = -1;
                else
                    seen[b]++;
            }
        }
        qt_scan_close(s);
        if (rc != 0)
            return -1;
    }
    for (uint32_t b = 0; b < ONLINE_BATCHES; b++) {
        if ((b < lo && seen[b] != OPS_GROUPS) || (seen[b] != 0 && seen[b] != OPS_GROUPS)) {
            printf("batch %u: %u of %u lines (acked before backup: %u)\n", b, seen[b], OPS_GROUPS,
                   lo);
            return -1;
        }
    }
    return 0;
}

TEST(online_backup_during_writes)
{
    char src[4096], target[4096], to[4096];
    path_of(src, sizeof(src), "src");
    path_of(target, sizeof(target), "backups");
    path_of(to, sizeof(to), "restored");
    struct qt_db_opts dbo = {.dir = src, .no_background = true, .fsync = QT_FSYNC_NONE};
    struct qt_db *db = ops_open_opts(&dbo);
    CHECK(db != NULL);
    struct online o = {.db = db};
    pthread_t w;
    CHECK(pthread_create(&w, NULL, online_writer, &o) == 0);
    while (atomic_load(&o.acked) < 700 && atomic_load(&o.err) == 0)
        usleep(1000);
    uint32_t lo = atomic_load(&o.acked);
    struct qt_backup_opts bo = {.target = target};
    CHECK_OK(qt_db_backup(db, &bo, NULL));
    uint32_t hi = atomic_load(&o.acked) + 1; /* at most the batch in flight */
    atomic_store(&o.stop, 1);
    pthread_join(w, NULL);
    CHECK_OK(atomic_load(&o.err));
    CHECK(hi > lo);
    struct qt_restore_opts ro = {.from = target, .to = to};
    CHECK_OK(qt_backup_restore(&ro, NULL));
    struct qt_db *r = ops_open(to, NULL);
    CHECK(r != NULL);
    CHECK_OK(online_check(r, lo, hi));
    CHECK_OK(qt_db_close(r));
    CHECK_OK(qt_db_close(db));
}

/* ---- damage ------------------------------------------------------------------------ */

/* Path of some file under dir ending in suffix (depth-first). */
static int
first_file(const char *dir, const char *suffix, char *out, size_t cap)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "find '%s' -name '*%s' -type f | sort | head -n 1", dir, suffix);
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
flip_byte(const char *path, uint64_t off)
{
    size_t len = 0;
    uint8_t *buf = qt_test_read_file(path, &len);
    if (buf == NULL || off >= len) {
        free(buf);
        return -1;
    }
    uint8_t b = buf[off] ^ 0x10;
    free(buf);
    return qt_test_write_at(path, off, &b, 1);
}

TEST(damaged_source_or_backup_is_refused)
{
    struct ops_model *m = model_new();
    uint64_t rng = qt_test_seed() ^ 0xb003;
    char src[4096], target[4096], to[4096], seg[4096], bdir[4096];
    path_of(src, sizeof(src), "src");
    path_of(target, sizeof(target), "backups");
    path_of(to, sizeof(to), "restored");
    struct qt_db *db = ops_open(src, NULL);
    CHECK(db != NULL);
    CHECK_OK(ops_write_random(db, m, &rng, 600, 0, OPS_SLOTS));
    CHECK_OK(qt_db_flush(db));
    struct qt_backup_opts bo = {.target = target, .copy = true};
    struct qt_backup_result br;
    CHECK_OK(qt_db_backup(db, &bo, &br));
    snprintf(bdir, sizeof(bdir), "%s/%s", target, br.id);
    /* A flipped byte in a live segment's blocks: the next backup refuses. */
    CHECK_OK(first_file(src, ".qts", seg, sizeof(seg)));
    CHECK_OK(flip_byte(seg, 100));
    qt_log_set_level((enum qt_log_level)(QT_LOG_ERROR + 1));
    CHECK_RC(qt_db_backup(db, &bo, NULL), QT_ECORRUPT);
    char latest[80];
    CHECK_OK(qt_backup_latest(target, latest, sizeof(latest)));
    CHECK(strcmp(latest, br.id) == 0); /* no new backup appeared */
    CHECK_OK(flip_byte(seg, 100));
    CHECK_OK(qt_db_close(db));
    /* Damaged backups: nothing is written into the target. */
    struct qt_restore_opts ro = {.from = bdir, .to = to};
    char f[4096];
    CHECK_OK(first_file(bdir, ".qts", f, sizeof(f)));
    CHECK_OK(flip_byte(f, 200));
    CHECK_RC(qt_backup_restore(&ro, NULL), QT_ECHECKSUM);
    struct stat st;
    CHECK(stat(to, &st) != 0);
    CHECK_OK(flip_byte(f, 200));
    CHECK_OK(first_file(bdir, ".wal", f, sizeof(f)));
    CHECK(truncate(f, 10) == 0);
    CHECK_RC(qt_backup_restore(&ro, NULL), QT_ETRUNC);
    CHECK(stat(to, &st) != 0);
    CHECK_OK(first_file(bdir, "catalog.qtc", f, sizeof(f)));
    CHECK(unlink(f) == 0);
    CHECK(qt_backup_restore(&ro, NULL) == -ENOENT);
    CHECK(stat(to, &st) != 0);
    char bk[4096];
    snprintf(bk, sizeof(bk), "%s/BACKUP", bdir);
    CHECK_OK(flip_byte(bk, 30));
    CHECK_RC(qt_backup_restore(&ro, NULL), QT_ECHECKSUM);
    CHECK(stat(to, &st) != 0);
    qt_log_set_level(QT_LOG_INFO);
    free(m);
}
