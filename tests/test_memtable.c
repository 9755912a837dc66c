/*
 * test_memtable.c -- memtable: ordered and out-of-order appends, last write
 * wins by WAL seq (not insertion order), partial rows and presence, strings,
 * ranges, allocation failure leaves rows intact, concurrent writers.
 */
#include "format/qt_alloc.h"
#include "harness.h"
#include "storage/memtable.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static struct qt_mem_cell
fcell(uint32_t sid, double v)
{
    struct qt_mem_cell c = {.sid = sid, .vtype = QT_VT_FLOAT};
    c.v.f = v;
    return c;
}

TEST(ordered_rows_roundtrip)
{
    struct qt_memtable *m;
    CHECK_OK(qt_mem_create(&m));
    for (int i = 0; i < 1000; i++) {
        struct qt_mem_cell cells[2] = {fcell(10, i * 0.5), fcell(11, -i)};
        CHECK_OK(qt_mem_append(m, 3, (uint64_t)i + 1, 1000 + i * 10, cells, 2));
    }
    CHECK_EQ(qt_mem_rows(m), 1000);
    CHECK_EQ(qt_mem_points(m), 2000);
    struct qt_mem_group_rows r;
    CHECK_OK(qt_mem_collect_group(m, 3, 1000 + 100 * 10, 1000 + 200 * 10, &r));
    CHECK_EQ(r.nrows, 100);
    CHECK_EQ(r.ncols, 2);
    CHECK_EQ(r.ts[0], 2000);
    CHECK(r.cols[0].vals[5].f == 105 * 0.5);
    CHECK(r.cols[1].vals[99].f == -199);
    CHECK_EQ(r.cols[0].npresent, 100);
    qt_mem_rows_free(&r);
    int64_t lo, hi;
    CHECK(qt_mem_series_range(m, 3, 11, &lo, &hi));
    CHECK_EQ(lo, 1000);
    CHECK_EQ(hi, 1000 + 999 * 10);
    CHECK(!qt_mem_series_range(m, 3, 12, &lo, &hi));
    CHECK_RC(qt_mem_collect_group(m, 4, 0, 1, &r), QT_ENOTFOUND);
    qt_mem_destroy(m);
}

TEST(last_write_wins_by_seq_fieldwise)
{
    struct qt_memtable *m;
    CHECK_OK(qt_mem_create(&m));
    /* seq 5 carries fields a,b at t=100; seq 9 re-sends only a; seq 7 was
     * applied after seq 9 (a racing writer) and must lose for field a. */
    struct qt_mem_cell r5[2] = {fcell(1, 1.0), fcell(2, 2.0)};
    struct qt_mem_cell r9[1] = {fcell(1, 9.0)};
    struct qt_mem_cell r7[2] = {fcell(1, 7.0), fcell(2, 7.5)};
    CHECK_OK(qt_mem_append(m, 0, 5, 100, r5, 2));
    CHECK_OK(qt_mem_append(m, 0, 9, 100, r9, 1));
    CHECK_OK(qt_mem_append(m, 0, 7, 100, r7, 2));
    CHECK_OK(qt_mem_append(m, 0, 8, 50, r9, 1)); /* late row, earlier ts */
    struct qt_mem_group_rows r;
    CHECK_OK(qt_mem_collect_group(m, 0, INT64_MIN, INT64_MAX, &r));
    CHECK_EQ(r.nrows, 2);
    CHECK_EQ(r.ts[0], 50);
    CHECK_EQ(r.ts[1], 100);
    CHECK(r.cols[0].vals[1].f == 9.0); /* a from seq 9 */
    CHECK(r.cols[1].vals[1].f == 7.5); /* b from seq 7 (seq 9 lacked b) */
    CHECK(r.cols[1].present[0] == 0);  /* t=50 row had only a */
    CHECK_EQ(r.cols[1].npresent, 1);
    qt_mem_rows_free(&r);
    qt_mem_destroy(m);
}

TEST(same_seq_duplicates_keep_later_row)
{
    struct qt_memtable *m;
    CHECK_OK(qt_mem_create(&m));
    struct qt_mem_cell a = fcell(1, 1.0), b = fcell(1, 2.0);
    CHECK_OK(qt_mem_append(m, 0, 4, 100, &a, 1));
    CHECK_OK(qt_mem_append(m, 0, 4, 100, &b, 1)); /* same batch, later line */
    struct qt_mem_group_rows r;
    CHECK_OK(qt_mem_collect_group(m, 0, 0, 1000, &r));
    CHECK_EQ(r.nrows, 1);
    CHECK(r.cols[0].vals[0].f == 2.0);
    qt_mem_rows_free(&r);
    qt_mem_destroy(m);
}

TEST(strings_are_copied_and_compacted)
{
    struct qt_memtable *m;
    CHECK_OK(qt_mem_create(&m));
    char buf[16];
    for (int i = 0; i < 50; i++) {
        struct qt_mem_cell c = {.sid = 2, .vtype = QT_VT_STRING};
        int len = snprintf(buf, sizeof(buf), "state-%d", i % 3);
        c.str.p = buf;
        c.str.len = (uint32_t)len;
        CHECK_OK(qt_mem_append(m, 1, (uint64_t)i, 49 - i, &c, 1)); /* descending */
        memset(buf, 'X', sizeof(buf)); /* caller bytes may change afterwards */
    }
    struct qt_mem_group_rows r;
    CHECK_OK(qt_mem_collect_group(m, 1, 10, 20, &r));
    CHECK_EQ(r.nrows, 10);
    for (uint32_t k = 0; k < r.nrows; k++) {
        int i = 49 - (int)r.ts[k];
        char want[16];
        int len = snprintf(want, sizeof(want), "state-%d", i % 3);
        CHECK_EQ(r.cols[0].vals[k].s.len, len);
        CHECK(memcmp(r.arena + r.cols[0].vals[k].s.off, want, (size_t)len) == 0);
    }
    qt_mem_rows_free(&r);
    qt_mem_destroy(m);
}

TEST(type_mismatch_and_limits_rejected)
{
    struct qt_memtable *m;
    CHECK_OK(qt_mem_create(&m));
    struct qt_mem_cell f = fcell(1, 1.0);
    CHECK_OK(qt_mem_append(m, 0, 1, 1, &f, 1));
    struct qt_mem_cell i = {.sid = 1, .vtype = QT_VT_INT};
    CHECK_RC(qt_mem_append(m, 0, 2, 2, &i, 1), QT_EINVAL);
    CHECK_EQ(qt_mem_rows(m), 1);
    qt_mem_destroy(m);
}

TEST(allocation_failure_keeps_existing_rows)
{
    struct qt_memtable *m;
    CHECK_OK(qt_mem_create(&m));
    uint64_t seq = 1;
    for (int i = 0; i < 16; i++) {
        struct qt_mem_cell c = fcell(1, i);
        CHECK_OK(qt_mem_append(m, 0, seq++, i, &c, 1));
    }
    /* The 17th row forces a capacity doubling; fail each allocation in turn. */
    int failures = 0;
    for (uint64_t k = 1; k <= 6; k++) {
        struct qt_mem_cell c[2] = {fcell(1, 100), fcell(2, 200)};
        qt_alloc_fail_after(k);
        int rc = qt_mem_append(m, 0, seq, 16, c, 2);
        qt_alloc_fail_after(0);
        if (rc == 0)
            break;
        CHECK_RC(rc, QT_ENOMEM);
        failures++;
        struct qt_mem_group_rows r;
        CHECK_OK(qt_mem_collect_group(m, 0, INT64_MIN, INT64_MAX, &r));
        CHECK_EQ(r.nrows, 16);
        for (uint32_t j = 0; j < 16; j++)
            CHECK(r.cols[0].vals[j].f == (double)j);
        qt_mem_rows_free(&r);
    }
    CHECK(failures > 0);
    qt_mem_destroy(m);
}

struct writer_arg {
    struct qt_memtable *m;
    uint32_t id;
};

static void *
writer(void *p)
{
    struct writer_arg *a = p;
    for (uint32_t i = 0; i < 20000; i++) {
        uint32_t gid = (i * 7 + a->id) % 97;
        struct qt_mem_cell c = fcell(gid * 10 + a->id, i);
        if (qt_mem_append(a->m, gid, (uint64_t)a->id << 32 | i, i, &c, 1) != 0)
            return (void *)1;
    }
    return NULL;
}

TEST(concurrent_writers)
{
    struct qt_memtable *m;
    CHECK_OK(qt_mem_create(&m));
    pthread_t th[4];
    struct writer_arg args[4];
    for (uint32_t t = 0; t < 4; t++) {
        args[t] = (struct writer_arg){m, t};
        pthread_create(&th[t], NULL, writer, &args[t]);
    }
    for (int t = 0; t < 4; t++) {
        void *ret;
        pthread_join(th[t], &ret);
        CHECK(ret == NULL);
    }
    CHECK_EQ(qt_mem_points(m), 80000);
    uint64_t total = 0;
    for (uint32_t gid = 0; gid < 97; gid++) {
        struct qt_mem_group_rows r;
        CHECK_OK(qt_mem_collect_group(m, gid, INT64_MIN, INT64_MAX, &r));
        for (uint32_t c = 0; c < r.ncols; c++)
            total += r.cols[c].npresent;
        qt_mem_rows_free(&r);
    }
    CHECK_EQ(total, 80000); /* distinct (sid, ts) per writer: nothing merged */
    qt_mem_destroy(m);
}
