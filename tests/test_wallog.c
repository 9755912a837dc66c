/*
 * test_wallog.c -- the WAL writer and replay on the real backend of the run
 * (QT_TEST_IO) and on the fault backend: ordering and contents, group commit,
 * rotation and removal, torn tails at every offset, damage in the middle,
 * failed fdatasync -> read-only, crash drops exactly the unacknowledged.
 */
#include "format/qt_err.h"
#include "format/wal.h"
#include "harness.h"
#include "storage/wallog.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Payload of record i: deterministic bytes, length varies. */
static size_t
payload_of(uint64_t i, uint8_t *buf)
{
    size_t len = 16 + (size_t)(i * 37 % 300);
    uint64_t st = i;
    for (size_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(k % 7 == 0 ? qt_test_rand(&st) : i); /* compressible */
    return len;
}

struct collect {
    uint64_t n;
    uint64_t last_seq;
    uint64_t bad;
};

static int
collect_fn(void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    struct collect *c = arg;
    uint8_t want[512];
    /* Payload i was appended as seq i+1 in these tests. */
    size_t wl = payload_of(seq - 1, want);
    if (wl != len || memcmp(want, payload, len) != 0 || seq <= c->last_seq)
        c->bad++;
    c->last_seq = seq;
    c->n++;
    return 0;
}

static struct qt_wlog *
open_log(struct qt_io *io, const char *dir, enum qt_fsync_policy p, uint64_t file_max,
         uint64_t next_seq)
{
    struct qt_wlog_opts o = {.policy = p, .interval_ms = 5, .file_bytes_max = file_max};
    struct qt_wlog *w = NULL;
    if (qt_wlog_open(io, dir, &o, next_seq, &w) != 0)
        return NULL;
    return w;
}

static int
append_range(struct qt_wlog *w, uint64_t from, uint64_t to)
{
    uint8_t buf[512];
    for (uint64_t i = from; i < to; i++) {
        uint64_t seq;
        size_t len = payload_of(i, buf);
        int rc = qt_wlog_append(w, buf, len, &seq);
        if (rc != 0)
            return rc;
        if (seq != i + 1)
            return -1;
    }
    return 0;
}

TEST(policy_parse)
{
    enum qt_fsync_policy p;
    uint32_t ms;
    CHECK_OK(qt_fsync_policy_parse("always", &p, &ms));
    CHECK_EQ(p, QT_FSYNC_ALWAYS);
    CHECK_OK(qt_fsync_policy_parse("interval:250", &p, &ms));
    CHECK_EQ(p, QT_FSYNC_INTERVAL);
    CHECK_EQ(ms, 250);
    CHECK_OK(qt_fsync_policy_parse("none", &p, &ms));
    CHECK_RC(qt_fsync_policy_parse("interval:0", &p, &ms), QT_EINVAL);
    CHECK_RC(qt_fsync_policy_parse("interval:99999999", &p, &ms), QT_EINVAL);
    CHECK_RC(qt_fsync_policy_parse("interval:5x", &p, &ms), QT_EINVAL);
    CHECK_RC(qt_fsync_policy_parse("sometimes", &p, &ms), QT_EINVAL);
}

TEST(append_replay_every_policy)
{
    enum qt_fsync_policy pols[] = {QT_FSYNC_ALWAYS, QT_FSYNC_INTERVAL, QT_FSYNC_NONE};
    for (int k = 0; k < 3; k++) {
        struct qt_io *io = qt_test_io();
        char dir[600];
        snprintf(dir, sizeof(dir), "%s/wal%d", qt_test_dir(), k);
        struct qt_wlog *w = open_log(io, dir, pols[k], 0, 1);
        CHECK(w != NULL);
        CHECK_OK(append_range(w, 0, 500));
        CHECK_OK(qt_wlog_close(w));
        struct collect c = {0};
        struct qt_wlog_replay_stats st;
        CHECK_OK(qt_wlog_replay(io, dir, 0, true, collect_fn, &c, &st));
        CHECK_EQ(c.n, 500);
        CHECK_EQ(c.bad, 0);
        CHECK_EQ(st.last_seq, 500);
        CHECK_EQ(st.torn_bytes, 0);
        /* Replay after a checkpoint skips what is already in segments. */
        struct collect c2 = {0};
        CHECK_OK(qt_wlog_replay(io, dir, 300, true, collect_fn, &c2, &st));
        CHECK_EQ(c2.n, 200);
        CHECK_EQ(st.skipped, 300);
        qt_io_destroy(io);
    }
}

struct thr {
    struct qt_wlog *w;
    int rc;
    uint64_t count;
};

static void
slow_first_sync(void *arg, uint64_t ns)
{
    (void)ns;
    int *first = arg;
    if (__atomic_exchange_n(first, 0, __ATOMIC_SEQ_CST))
        usleep(30000); /* holds the leader role: the others must queue up */
}

static void *
thr_main(void *p)
{
    struct thr *t = p;
    uint8_t buf[64];
    memset(buf, 0x5a, sizeof(buf));
    for (int i = 0; i < 300 && t->rc == 0; i++) {
        uint64_t seq;
        t->rc = qt_wlog_append(t->w, buf, sizeof(buf), &seq);
        t->count++;
    }
    return NULL;
}

static int
count_fn(void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    struct collect *c = arg;
    c->bad += seq != c->last_seq + 1 || len != 64 || payload[0] != 0x5a;
    c->last_seq = seq;
    c->n++;
    return 0;
}

TEST(group_commit_coalesces_concurrent_writers)
{
    struct qt_io *io = qt_test_io();
    const char *dir = qt_test_dir();
    struct qt_wlog *w = open_log(io, dir, QT_FSYNC_ALWAYS, 0, 1);
    CHECK(w != NULL);
    int first = 1;
    qt_wlog_set_sync_observer(w, slow_first_sync, &first);
    pthread_t th[4];
    struct thr t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct thr){.w = w};
        pthread_create(&th[i], NULL, thr_main, &t[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_OK(t[i].rc);
    }
    struct qt_wlog_stats st;
    qt_wlog_get_stats(w, &st);
    CHECK_EQ(st.records, 1200);
    CHECK(st.groups < st.records); /* at least the 30 ms stall was shared */
    CHECK_EQ(st.syncs, st.groups);
    CHECK_OK(qt_wlog_close(w));
    struct collect c = {0};
    struct qt_wlog_replay_stats rs;
    CHECK_OK(qt_wlog_replay(io, dir, 0, true, count_fn, &c, &rs));
    CHECK_EQ(c.n, 1200);
    CHECK_EQ(c.bad, 0); /* file order == seq order, no gaps */
    qt_io_destroy(io);
}

TEST(rotation_and_removal)
{
    struct qt_io *io = qt_test_io();
    const char *dir = qt_test_dir();
    struct qt_wlog *w = open_log(io, dir, QT_FSYNC_ALWAYS, 4096, 1);
    CHECK(w != NULL);
    CHECK_OK(append_range(w, 0, 200)); /* ~8 size rotations */
    uint64_t boundary = 0;
    CHECK_OK(qt_wlog_rotate(w, &boundary));
    CHECK_EQ(boundary, 201);
    CHECK_OK(append_range(w, 200, 250));
    struct qt_wlog_stats st;
    qt_wlog_get_stats(w, &st);
    CHECK(st.files >= 5);
    /* Checkpoint at 200: every file before the rotation goes. */
    CHECK_OK(qt_wlog_remove_upto(w, boundary - 1));
    CHECK_OK(qt_wlog_close(w));
    struct collect c = {0};
    struct qt_wlog_replay_stats rs;
    CHECK_OK(qt_wlog_replay(io, dir, 200, true, collect_fn, &c, &rs));
    CHECK_EQ(c.n, 50);
    CHECK_EQ(rs.skipped, 0); /* older files are gone */
    CHECK(rs.files >= 1);
    CHECK_EQ(c.bad, 0);
    qt_io_destroy(io);
}

TEST(torn_tail_at_every_offset_is_cut)
{
    struct qt_io *io = qt_test_io();
    const char *dir = qt_test_dir();
    struct qt_wlog *w = open_log(io, dir, QT_FSYNC_ALWAYS, 0, 1);
    CHECK(w != NULL);
    CHECK_OK(append_range(w, 0, 10));
    CHECK_OK(qt_wlog_close(w));
    char path[700];
    snprintf(path, sizeof(path), "%s/%020d.wal", dir, 1);
    size_t len;
    uint8_t *orig = qt_test_read_file(path, &len);
    CHECK(orig != NULL);
    struct qt_wlog_replay_stats rs;
    for (size_t cut = 1; cut < len; cut += 7) {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        CHECK(fwrite(orig, 1, cut, f) == cut);
        fclose(f);
        struct collect cc = {0};
        CHECK_OK(qt_wlog_replay(io, dir, 0, true, collect_fn, &cc, &rs));
        CHECK_EQ(cc.bad, 0);
        CHECK(cc.n <= 10);
        CHECK_EQ(rs.corrupt_records, 0);
        /* The file now ends exactly after the last complete record. */
        CHECK_EQ(qt_test_file_size(path), (int64_t)rs.bytes);
        CHECK_EQ(rs.torn_bytes, cut - rs.bytes);
    }
    free(orig);
    qt_io_destroy(io);
}

TEST(damage_in_the_middle_is_skipped_and_reported)
{
    struct qt_io *io = qt_test_io();
    const char *dir = qt_test_dir();
    struct qt_wlog *w = open_log(io, dir, QT_FSYNC_ALWAYS, 0, 1);
    CHECK(w != NULL);
    CHECK_OK(append_range(w, 0, 20));
    CHECK_OK(qt_wlog_close(w));
    char path[700];
    snprintf(path, sizeof(path), "%s/%020d.wal", dir, 1);
    /* Flip a payload byte of the first record (header intact). */
    uint8_t b;
    size_t len;
    uint8_t *all = qt_test_read_file(path, &len);
    CHECK(all != NULL);
    b = all[QT_WAL_HEADER_SIZE + 3] ^ 0x40;
    free(all);
    CHECK(qt_test_write_at(path, QT_WAL_HEADER_SIZE + 3, &b, 1) == 0);
    struct collect c = {0};
    struct qt_wlog_replay_stats rs;
    CHECK_OK(qt_wlog_replay(io, dir, 0, true, collect_fn, &c, &rs));
    CHECK_EQ(rs.corrupt_records, 1);
    CHECK_EQ(c.n, 19);
    CHECK_EQ(c.bad, 0);
    CHECK_EQ(rs.torn_bytes, 0);
    qt_io_destroy(io);
}

TEST(failed_sync_makes_log_read_only)
{
    struct qt_io *io = NULL;
    CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
    const char *dir = qt_test_dir();
    struct qt_wlog *w = open_log(io, dir, QT_FSYNC_ALWAYS, 0, 1);
    CHECK(w != NULL);
    CHECK_OK(append_range(w, 0, 5));
    struct qt_io_fault f = {.op = QT_IO_OP_FDATASYNC, .nth = 1, .err = -EIO};
    CHECK_OK(qt_io_fault_arm(io, &f));
    uint8_t buf[512];
    uint64_t seq;
    size_t len = payload_of(5, buf);
    CHECK_RC(qt_wlog_append(w, buf, len, &seq), QT_EREADONLY);
    CHECK(qt_wlog_failed(w));
    CHECK_RC(qt_wlog_append(w, buf, len, &seq), QT_EREADONLY);
    CHECK_RC(qt_wlog_sync(w), QT_EREADONLY); /* never retried */
    CHECK_RC(qt_wlog_close(w), QT_EREADONLY);
    qt_io_destroy(io);
}

TEST(crash_keeps_exactly_the_acknowledged)
{
    enum qt_fsync_policy pols[] = {QT_FSYNC_ALWAYS, QT_FSYNC_NONE};
    for (int k = 0; k < 2; k++) {
        struct qt_io *io = NULL;
        CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
        char dir[600];
        snprintf(dir, sizeof(dir), "%s/wal%d", qt_test_dir(), k);
        struct qt_wlog *w = open_log(io, dir, pols[k], 2048, 1);
        CHECK(w != NULL);
        CHECK_OK(append_range(w, 0, 100));
        CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 7));
        qt_wlog_close(w); /* fails: the handle crashed */
        qt_io_destroy(io);
        struct qt_io *real = qt_test_io();
        struct collect c = {0};
        struct qt_wlog_replay_stats rs;
        CHECK_OK(qt_wlog_replay(real, dir, 0, true, collect_fn, &c, &rs));
        CHECK_EQ(c.bad, 0);
        if (pols[k] == QT_FSYNC_ALWAYS)
            CHECK_EQ(c.n, 100); /* every acknowledged record survived */
        else
            CHECK(c.n < 100); /* "none" promises nothing on power loss */
        qt_io_destroy(real);
    }
}

TEST(random_power_loss_never_yields_garbage)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct qt_io *io = NULL;
        CHECK_OK(qt_io_create(QT_IO_FAULT, NULL, &io));
        char dir[600];
        snprintf(dir, sizeof(dir), "%s/wal%llu", qt_test_dir(), (unsigned long long)seed);
        struct qt_wlog *w = open_log(io, dir, QT_FSYNC_ALWAYS, 3000, 1);
        CHECK(w != NULL);
        CHECK_OK(append_range(w, 0, 60));
        /* 60 acknowledged; then writes that were never acknowledged: issue
         * them through a second log with policy none on the same dir. */
        CHECK_OK(qt_io_fault_crash(io, QT_IO_CRASH_RANDOM, seed));
        qt_wlog_close(w);
        qt_io_destroy(io);
        struct qt_io *real = qt_test_io();
        struct collect c = {0};
        struct qt_wlog_replay_stats rs;
        CHECK_OK(qt_wlog_replay(real, dir, 0, true, collect_fn, &c, &rs));
        CHECK_EQ(c.bad, 0);
        CHECK_EQ(c.n, 60);
        qt_io_destroy(real);
    }
}

TEST(interval_policy_syncs_in_background)
{
    struct qt_io *io = qt_test_io();
    const char *dir = qt_test_dir();
    struct qt_wlog *w = open_log(io, dir, QT_FSYNC_INTERVAL, 0, 1);
    CHECK(w != NULL);
    CHECK_OK(append_range(w, 0, 10));
    struct qt_wlog_stats st;
    for (int i = 0; i < 400; i++) { /* up to 2 s; the interval is 5 ms */
        qt_wlog_get_stats(w, &st);
        if (st.syncs > 0)
            break;
        usleep(5000);
    }
    CHECK(st.syncs > 0);
    CHECK_OK(qt_wlog_close(w));
    qt_io_destroy(io);
}
