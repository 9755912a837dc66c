/*
 * test_lastcache.c -- last-value cache: forward-only updates, equal ts
 * replaces, seeding from disk merges with newer candidates, strings, reset.
 */
#include "harness.h"
#include "storage/lastcache.h"

#include <string.h>

static union qt_value
fv(double d)
{
    union qt_value v;
    v.f = d;
    return v;
}

TEST(forward_only_and_equal_replaces)
{
    struct qt_lastcache *lc;
    CHECK_OK(qt_lc_create(&lc));
    struct qt_lc_point p;
    CHECK_EQ(qt_lc_get(lc, 5, &p), QT_LC_EMPTY);
    union qt_value a = fv(1), b = fv(2), c = fv(3), d = fv(4);
    CHECK_OK(qt_lc_observe(lc, 5, 100, QT_VT_FLOAT, &a, NULL));
    CHECK_OK(qt_lc_observe(lc, 5, 90, QT_VT_FLOAT, &b, NULL)); /* late: ignored */
    CHECK_EQ(qt_lc_get(lc, 5, &p), QT_LC_CANDIDATE);
    CHECK_EQ(p.ts, 100);
    CHECK(p.v.f == 1);
    CHECK_OK(qt_lc_observe(lc, 5, 100, QT_VT_FLOAT, &c, NULL));   /* re-send wins */
    CHECK_OK(qt_lc_observe(lc, 70000, 1, QT_VT_FLOAT, &d, NULL)); /* second chunk */
    qt_lc_get(lc, 5, &p);
    CHECK(p.v.f == 3);
    CHECK_EQ(qt_lc_get(lc, 70000, &p), QT_LC_CANDIDATE);
    qt_lc_destroy(lc);
}

TEST(seed_merges_with_candidate)
{
    struct qt_lastcache *lc;
    CHECK_OK(qt_lc_create(&lc));
    union qt_value wal = fv(10), disk = fv(20);
    struct qt_lc_point p;
    /* WAL replay saw a late point at t=50; disk has t=80: disk wins. */
    CHECK_OK(qt_lc_observe(lc, 1, 50, QT_VT_FLOAT, &wal, NULL));
    CHECK_OK(qt_lc_seed(lc, 1, true, 80, QT_VT_FLOAT, &disk, NULL));
    CHECK_EQ(qt_lc_get(lc, 1, &p), QT_LC_KNOWN);
    CHECK_EQ(p.ts, 80);
    /* Candidate newer than disk survives seeding. */
    CHECK_OK(qt_lc_observe(lc, 2, 90, QT_VT_FLOAT, &wal, NULL));
    CHECK_OK(qt_lc_seed(lc, 2, true, 80, QT_VT_FLOAT, &disk, NULL));
    CHECK_EQ(qt_lc_get(lc, 2, &p), QT_LC_KNOWN);
    CHECK(p.v.f == 10);
    /* Equal timestamps: the candidate came later (WAL after segment). */
    CHECK_OK(qt_lc_observe(lc, 3, 80, QT_VT_FLOAT, &wal, NULL));
    CHECK_OK(qt_lc_seed(lc, 3, true, 80, QT_VT_FLOAT, &disk, NULL));
    qt_lc_get(lc, 3, &p);
    CHECK(p.v.f == 10);
    /* Nothing on disk, nothing written: stays empty, not known. */
    CHECK_OK(qt_lc_seed(lc, 4, false, 0, 0, NULL, NULL));
    CHECK_EQ(qt_lc_get(lc, 4, &p), QT_LC_EMPTY);
    qt_lc_reset(lc);
    CHECK_EQ(qt_lc_get(lc, 1, &p), QT_LC_EMPTY);
    qt_lc_destroy(lc);
}

TEST(string_values_copied)
{
    struct qt_lastcache *lc;
    CHECK_OK(qt_lc_create(&lc));
    char buf[8] = "fault";
    struct qt_str s = {buf, 5};
    union qt_value v = {0};
    CHECK_OK(qt_lc_observe(lc, 9, 1, QT_VT_STRING, &v, &s));
    memcpy(buf, "xxxxx", 5);
    struct qt_lc_point p;
    CHECK_EQ(qt_lc_get(lc, 9, &p), QT_LC_CANDIDATE);
    CHECK_EQ(p.v.s.len, 5);
    CHECK(memcmp(p.strbuf, "fault", 5) == 0);
    struct qt_str empty = {buf, 0};
    CHECK_OK(qt_lc_observe(lc, 9, 2, QT_VT_STRING, &v, &empty));
    qt_lc_get(lc, 9, &p);
    CHECK_EQ(p.v.s.len, 0);
    qt_lc_destroy(lc);
}
