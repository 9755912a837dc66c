/*
 * test_codec.c -- the codecs' shared pieces (codec_int.h): patched FOR runs
 * planned, written and read back for every run length and for adversarial
 * value sets (outliers with repeats at both ends, extremes, tiny runs);
 * the planner never does worse than a plain FOR run; the payload head's
 * limits; RAW arrays.
 */
#include "format/bitpack.h"
#include "format/codec_int.h"
#include "format/qt_bytes.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* Plan, write, read back from an exact-size heap copy; compare. */
static bool
run_roundtrip(const int64_t *v, uint32_t m, struct qt_codec_run *plan)
{
    static uint8_t buf[QT_CODEC_RUN_BOUND(QT_CODEC_RUN_VALUES)];
    qt_codec_run_plan(v, m, plan);
    size_t pos = 0;
    if (qt_codec_run_write(v, m, plan, buf, sizeof(buf), &pos) != 0 || pos != plan->bytes)
        return false;
    if (pos > QT_CODEC_RUN_BOUND(m))
        return false;
    uint8_t *copy = malloc(pos);
    memcpy(copy, buf, pos);
    uint64_t off[QT_CODEC_RUN_VALUES], base = 0;
    size_t rpos = 0;
    int rc = qt_codec_run_read(copy, pos, &rpos, m, off, &base);
    free(copy);
    if (rc != 0 || rpos != pos)
        return false;
    for (uint32_t i = 0; i < m; i++) {
        if ((int64_t)(off[i] + base) != v[i])
            return false;
    }
    /* Never larger than the plain FOR run of the same values. */
    int64_t lo = v[0], hi = v[0];
    for (uint32_t i = 1; i < m; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    size_t plain = 1 + qt_codec_varint_len(qt_zigzag64(lo)) +
                   qt_bp_bytes(m, qt_bp_width((uint64_t)hi - (uint64_t)lo));
    return plan->bytes <= plain;
}

/* A band [0, 2^bits) with `outl` outliers per end, each repeated `rep`
 * times, at random positions. */
static void
gen_band(int64_t *v, uint32_t m, uint32_t bits, uint32_t outl, uint32_t rep, uint64_t *rng)
{
    for (uint32_t i = 0; i < m; i++)
        v[i] = (int64_t)(qt_test_rand(rng) & ((1ull << bits) - 1));
    for (uint32_t o = 0; o < outl; o++) {
        int64_t high = (int64_t)(qt_test_rand(rng) >> 20),
                low = -(int64_t)(qt_test_rand(rng) >> 30);
        for (uint32_t r = 0; r < rep; r++) {
            v[qt_test_rand(rng) % m] = high;
            v[qt_test_rand(rng) % m] = low;
        }
    }
}

TEST(runs_roundtrip_every_length_and_outlier_mix)
{
    uint64_t rng = qt_test_seed();
    int64_t v[QT_CODEC_RUN_VALUES];
    struct qt_codec_run plan;
    for (uint32_t m = 1; m <= QT_CODEC_RUN_VALUES; m++) {
        for (uint32_t outl = 0; outl <= 6; outl++) {
            for (uint32_t rep = 1; rep <= 3; rep++) {
                gen_band(v, m, 1 + (uint32_t)(qt_test_rand(&rng) % 12), outl, rep, &rng);
                if (!run_roundtrip(v, m, &plan)) {
                    qt_test_fail_at(__FILE__, __LINE__, "m %u outliers %u x%u", m, outl, rep);
                    return;
                }
            }
        }
    }
}

TEST(runs_roundtrip_extremes_and_random)
{
    uint64_t rng = qt_test_seed() ^ 99;
    static const int64_t ext[] = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, INT64_MAX - 1};
    int64_t v[QT_CODEC_RUN_VALUES];
    struct qt_codec_run plan;
    for (int rep = 0; rep < 3000; rep++) {
        uint32_t m = 1 + (uint32_t)(qt_test_rand(&rng) % QT_CODEC_RUN_VALUES);
        uint32_t kind = rep % 3;
        for (uint32_t i = 0; i < m; i++) {
            uint64_t x = qt_test_rand(&rng);
            v[i] = kind == 0 ? ext[x % 7] : kind == 1 ? (int64_t)x : (int64_t)(x % 5) - 2;
            if (kind == 2 && x % 61 == 0)
                v[i] = ext[x % 2];
        }
        CHECK(run_roundtrip(v, m, &plan));
    }
}

TEST(outliers_become_exceptions)
{
    int64_t v[QT_CODEC_RUN_VALUES];
    struct qt_codec_run plan;
    /* A regular delta-of-delta run with one outage: +G then -G. */
    memset(v, 0, sizeof(v));
    v[40] = 3600;
    v[41] = -3600;
    CHECK(run_roundtrip(v, QT_CODEC_RUN_VALUES, &plan));
    CHECK_EQ(plan.width, 0);
    CHECK_EQ(plan.exc, 2);
    CHECK(plan.bytes <= 10);
    /* A 3-bit band with one spike keeps its 3 bits. */
    for (uint32_t i = 0; i < QT_CODEC_RUN_VALUES; i++)
        v[i] = 100 + i % 8;
    v[77] = 1000000000;
    CHECK(run_roundtrip(v, QT_CODEC_RUN_VALUES, &plan));
    CHECK_EQ(plan.width, 3);
    CHECK_EQ(plan.exc, 1);
    /* Uniform noise: exceptions would not pay, plain FOR. */
    uint64_t rng = qt_test_seed();
    for (uint32_t i = 0; i < QT_CODEC_RUN_VALUES; i++)
        v[i] = (int64_t)(qt_test_rand(&rng) % 1000);
    CHECK(run_roundtrip(v, QT_CODEC_RUN_VALUES, &plan));
    CHECK_EQ(plan.exc, 0);
    /* A constant run: header and base only. */
    for (uint32_t i = 0; i < QT_CODEC_RUN_VALUES; i++)
        v[i] = 5;
    CHECK(run_roundtrip(v, QT_CODEC_RUN_VALUES, &plan));
    CHECK_EQ(plan.bytes, 2);
}

TEST(run_read_rejects_bad_fields)
{
    uint64_t off[QT_CODEC_RUN_VALUES], base;
    size_t pos = 0;
    const uint8_t w65[] = {65, 0};
    CHECK_RC(qt_codec_run_read(w65, sizeof(w65), &pos, 4, off, &base), QT_ECORRUPT);
    const uint8_t exc5[] = {0x80, 0, 4};
    pos = 0;
    CHECK_RC(qt_codec_run_read(exc5, sizeof(exc5), &pos, 4, off, &base), QT_ECORRUPT);
    const uint8_t idx4[] = {0x80, 0, 0, 4, 2};
    pos = 0;
    CHECK_RC(qt_codec_run_read(idx4, sizeof(idx4), &pos, 4, off, &base), QT_ECORRUPT);
    const uint8_t ok[] = {0x80, 0, 0, 3, 2};
    pos = 0;
    CHECK_OK(qt_codec_run_read(ok, sizeof(ok), &pos, 4, off, &base));
    CHECK(pos == sizeof(ok) && base == 0 && off[0] == 0 && off[3] == 1);
    for (size_t cut = 0; cut < sizeof(ok); cut++) {
        pos = 0;
        CHECK_RC(qt_codec_run_read(ok, cut, &pos, 4, off, &base), QT_ETRUNC);
    }
}

TEST(head_and_raw)
{
    uint8_t buf[64];
    size_t pos = 0;
    CHECK_OK(qt_codec_head_put(buf, sizeof(buf), &pos, QT_BLOCK_POINTS_MAX, 7));
    size_t rpos = 0;
    uint32_t n = 0;
    uint8_t enc = 0;
    CHECK_OK(qt_codec_head_get(buf, pos, &rpos, QT_BLOCK_POINTS_MAX, &n, &enc));
    CHECK(n == QT_BLOCK_POINTS_MAX && enc == 7 && rpos == pos);
    rpos = 0;
    CHECK_RC(qt_codec_head_get(buf, pos, &rpos, QT_BLOCK_POINTS_MAX - 1, &n, &enc), QT_ELIMIT);
    pos = 0;
    CHECK_RC(qt_codec_head_put(buf, 2, &pos, QT_BLOCK_POINTS_MAX, 7), QT_ENOSPACE);
    int64_t v[3] = {INT64_MIN, -1, INT64_MAX}, back[3];
    pos = 0;
    CHECK_OK(qt_codec_raw_put(v, 3, buf, sizeof(buf), &pos));
    CHECK_EQ(pos, 24);
    CHECK(buf[0] == 0 && buf[7] == 0x80 && buf[8] == 0xff); /* little-endian */
    rpos = 0;
    CHECK_OK(qt_codec_raw_get(buf, pos, &rpos, 3, back));
    CHECK(memcmp(v, back, sizeof(v)) == 0);
    rpos = 0;
    CHECK_RC(qt_codec_raw_get(buf, 23, &rpos, 3, back), QT_ETRUNC);
    pos = 0;
    CHECK_RC(qt_codec_raw_put(v, 3, buf, 23, &pos), QT_ENOSPACE);
}
