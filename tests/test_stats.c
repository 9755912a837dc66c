/*
 * test_stats.c -- block statistics: computed values against brute force
 * (independent min/max scans, exact int sums via hi/lo words, bool counts),
 * the all-NaN and int-overflow conventions, qt_stats_check accepting every
 * computed result and rejecting each kind of implausible stored value, and
 * the 40-byte store/load round trip.
 */
#include "format/qt_bytes.h"
#include "format/qt_limits.h"
#include "format/stats.h"
#include "harness.h"

#include <math.h>
#include <string.h>

static double fv[QT_BLOCK_POINTS_MAX];
static int64_t iv[QT_BLOCK_POINTS_MAX];
static uint8_t bv[QT_BLOCK_POINTS_MAX];

static double
rand_double(uint64_t *rng)
{
    uint64_t r = qt_test_rand(rng);
    switch (r % 8) {
    case 0: return qt_bits_f64(qt_test_rand(rng)); /* any bits: NaNs, subnormals */
    case 1: return NAN;
    case 2: return (r & 8) ? INFINITY : -INFINITY;
    case 3: return (r & 8) ? 0.0 : -0.0;
    default: return (double)((int64_t)(r >> 20) - (1ll << 43)) / 100.0;
    }
}

/* Exact int64 sum as (hi, lo) words: overflow iff the 128-bit value does
 * not sign-extend from lo. */
static bool
brute_int_sum(const int64_t *v, uint32_t n, int64_t *sum)
{
    uint64_t lo = 0;
    int64_t hi = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t x = (uint64_t)v[i];
        uint64_t nlo = lo + x;
        hi += (nlo < lo) + (v[i] < 0 ? -1 : 0);
        lo = nlo;
    }
    *sum = (int64_t)lo;
    return hi == ((int64_t)lo < 0 ? -1 : 0);
}

TEST(float_vs_brute_force)
{
    uint64_t rng = qt_test_seed() ^ 0xf1;
    for (int iter = 0; iter < 400; iter++) {
        uint32_t n = 1 + (uint32_t)(qt_test_rand(&rng) % (iter < 200 ? 16 : QT_BLOCK_POINTS_MAX));
        bool all_nan = iter % 17 == 0;
        for (uint32_t i = 0; i < n; i++)
            fv[i] = all_nan ? qt_bits_f64(0x7ff0000000000001ull + i) : rand_double(&rng);
        struct qt_stats s;
        CHECK_OK(qt_stats_compute(QT_VT_FLOAT, fv, n, &s));
        CHECK_OK(qt_stats_check(QT_VT_FLOAT, &s));
        CHECK_EQ(s.count, n);
        double sum = fv[0], lo = NAN, hi = NAN;
        for (uint32_t i = 1; i < n; i++)
            sum += fv[i];
        for (uint32_t i = 0; i < n; i++) {
            if (isnan(fv[i]))
                continue;
            if (isnan(lo) || fv[i] < lo)
                lo = fv[i];
            if (isnan(hi) || fv[i] > hi)
                hi = fv[i];
        }
        CHECK(qt_f64_bits(s.sum.f) == qt_f64_bits(sum));
        CHECK(qt_f64_bits(s.first.f) == qt_f64_bits(fv[0]));
        CHECK(qt_f64_bits(s.last.f) == qt_f64_bits(fv[n - 1]));
        if (isnan(lo)) {
            CHECK(qt_f64_bits(s.min.f) == QT_STATS_NAN_BITS);
            CHECK(qt_f64_bits(s.max.f) == QT_STATS_NAN_BITS);
        } else {
            CHECK(s.min.f == lo && s.max.f == hi);
        }
    }
}

TEST(int_vs_brute_force_with_overflow)
{
    uint64_t rng = qt_test_seed() ^ 0x1e;
    int overflows = 0;
    for (int iter = 0; iter < 400; iter++) {
        uint32_t n = 1 + (uint32_t)(qt_test_rand(&rng) % (iter < 200 ? 16 : QT_BLOCK_POINTS_MAX));
        int shift = (int)(qt_test_rand(&rng) % 64);
        for (uint32_t i = 0; i < n; i++)
            iv[i] = (int64_t)qt_test_rand(&rng) >> shift;
        if (iter % 10 == 0) /* INT64_MAX + 1 + ... - ... : fits at the end */
            for (uint32_t i = 0; i < n; i++)
                iv[i] = i % 2 ? INT64_MIN : INT64_MAX;
        struct qt_stats s;
        CHECK_OK(qt_stats_compute(QT_VT_INT, iv, n, &s));
        CHECK_OK(qt_stats_check(QT_VT_INT, &s));
        int64_t sum, lo = iv[0], hi = iv[0];
        bool fits = brute_int_sum(iv, n, &sum);
        for (uint32_t i = 0; i < n; i++) {
            lo = iv[i] < lo ? iv[i] : lo;
            hi = iv[i] > hi ? iv[i] : hi;
        }
        CHECK_EQ(s.sum_overflow, !fits);
        CHECK_EQ(s.sum.i, fits ? sum : 0);
        CHECK(s.min.i == lo && s.max.i == hi && s.first.i == iv[0] && s.last.i == iv[n - 1]);
        overflows += !fits;
    }
    CHECK(overflows > 10 && overflows < 390);
}

TEST(bool_and_string)
{
    uint64_t rng = qt_test_seed() ^ 0xb0;
    for (int iter = 0; iter < 300; iter++) {
        uint32_t n = 1 + (uint32_t)(qt_test_rand(&rng) % 100);
        uint32_t mode = iter % 3, trues = 0;
        for (uint32_t i = 0; i < n; i++) {
            bv[i] = mode == 0 ? 0 : mode == 1 ? 1 : (uint8_t)(qt_test_rand(&rng) & 1);
            trues += bv[i];
        }
        struct qt_stats s;
        CHECK_OK(qt_stats_compute(QT_VT_BOOL, bv, n, &s));
        CHECK_OK(qt_stats_check(QT_VT_BOOL, &s));
        CHECK_EQ(s.sum.i, trues);
        CHECK_EQ(s.min.i, trues == n);
        CHECK_EQ(s.max.i, trues > 0);
        CHECK(s.first.i == bv[0] && s.last.i == bv[n - 1]);
    }
    bv[3] = 2;
    struct qt_stats s;
    CHECK_RC(qt_stats_compute(QT_VT_BOOL, bv, 5, &s), QT_EINVAL);
    struct qt_str strs[3] = {{"a", 1}, {"", 0}, {"bc", 2}};
    CHECK_OK(qt_stats_compute(QT_VT_STRING, strs, 3, &s));
    CHECK_OK(qt_stats_check(QT_VT_STRING, &s));
    CHECK(s.count == 3 && s.min.i == 0 && s.sum.i == 0 && s.last.i == 0);
    s.last.i = 1;
    CHECK_RC(qt_stats_check(QT_VT_STRING, &s), QT_ECORRUPT);
}

TEST(check_rejects_implausible)
{
    struct qt_stats good = {.count = 4}, s;
    good.min.i = -5;
    good.max.i = 10;
    good.sum.i = 7;
    good.first.i = 0;
    good.last.i = 10;
    CHECK_OK(qt_stats_check(QT_VT_INT, &good));
    s = good, s.min.i = 11; /* min > max */
    CHECK_RC(qt_stats_check(QT_VT_INT, &s), QT_ECORRUPT);
    s = good, s.first.i = -6;
    CHECK_RC(qt_stats_check(QT_VT_INT, &s), QT_ECORRUPT);
    s = good, s.sum.i = 41; /* > 4 * 10 */
    CHECK_RC(qt_stats_check(QT_VT_INT, &s), QT_ECORRUPT);
    s = good, s.sum_overflow = true, s.sum.i = 0; /* impossible for small values */
    CHECK_RC(qt_stats_check(QT_VT_INT, &s), QT_ECORRUPT);
    s = good, s.count = 0;
    CHECK_RC(qt_stats_check(QT_VT_INT, &s), QT_ECORRUPT);
    s = good, s.count = QT_BLOCK_POINTS_MAX + 1;
    CHECK_RC(qt_stats_check(QT_VT_INT, &s), QT_ECORRUPT);
    CHECK_RC(qt_stats_check((enum qt_vtype)0, &good), QT_ECORRUPT);
    s = good, s.sum_overflow = true;
    CHECK_RC(qt_stats_check(QT_VT_FLOAT, &s), QT_ECORRUPT);
    /* bools */
    struct qt_stats b = {.count = 3};
    b.min.i = 0, b.max.i = 1, b.sum.i = 3, b.first.i = 1, b.last.i = 0;
    CHECK_RC(qt_stats_check(QT_VT_BOOL, &b), QT_ECORRUPT); /* 3 trues but min 0 */
    b.sum.i = 2;
    CHECK_OK(qt_stats_check(QT_VT_BOOL, &b));
    b.max.i = 2;
    CHECK_RC(qt_stats_check(QT_VT_BOOL, &b), QT_ECORRUPT);
    /* floats: half NaN, non-canonical NaN, first outside range */
    struct qt_stats f = {.count = 2};
    f.min.f = 1.0, f.max.f = 2.0, f.sum.f = 3.0, f.first.f = 1.0, f.last.f = 2.0;
    CHECK_OK(qt_stats_check(QT_VT_FLOAT, &f));
    s = f, s.max.f = NAN;
    CHECK_RC(qt_stats_check(QT_VT_FLOAT, &s), QT_ECORRUPT);
    s = f, s.min.f = s.max.f = qt_bits_f64(0x7ff8000000000001ull);
    CHECK_RC(qt_stats_check(QT_VT_FLOAT, &s), QT_ECORRUPT);
    s = f, s.min.i = s.max.i = (int64_t)QT_STATS_NAN_BITS; /* NaN min/max, ordered first */
    CHECK_RC(qt_stats_check(QT_VT_FLOAT, &s), QT_ECORRUPT);
    s = f, s.last.f = 2.5;
    CHECK_RC(qt_stats_check(QT_VT_FLOAT, &s), QT_ECORRUPT);
    s = f, s.count = 1; /* one value, first != last */
    CHECK_RC(qt_stats_check(QT_VT_FLOAT, &s), QT_ECORRUPT);
}

TEST(store_load_roundtrip)
{
    uint64_t rng = qt_test_seed() ^ 0x57;
    for (int i = 0; i < 100; i++) {
        struct qt_stats s = {.count = 1 + i, .sum_overflow = i % 2}, t;
        s.min.i = (int64_t)qt_test_rand(&rng);
        s.max.i = (int64_t)qt_test_rand(&rng);
        s.sum.i = (int64_t)qt_test_rand(&rng);
        s.first.i = (int64_t)qt_test_rand(&rng);
        s.last.i = (int64_t)qt_test_rand(&rng);
        uint8_t buf[QT_STATS_SIZE + 1];
        buf[QT_STATS_SIZE] = 0xEE;
        qt_stats_store(&s, buf);
        CHECK_EQ(buf[QT_STATS_SIZE], 0xEE);
        CHECK_EQ(qt_load_le64(buf + 16), (uint64_t)s.sum.i);
        qt_stats_load(buf, s.count, s.sum_overflow, &t);
        CHECK(qt_stats_equal(&s, &t));
        t.last.i ^= 1;
        CHECK(!qt_stats_equal(&s, &t));
    }
}
