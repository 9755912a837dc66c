/*
 * test_tscodec.c -- timestamp codec: exact round trips on every shape of
 * series (regular, jittered, gaps, late points, duplicates, descending,
 * random, INT64 extremes) and block size, the encoding chosen and its
 * bits/point on typical data, truncation at every byte, bit flips, hostile
 * fields, and output-space errors.
 */
#include "codec_check.h"
#include "format/codec.h"
#include "format/qt_assert.h"
#include "format/qt_bytes.h"
#include "format/qt_limits.h"
#include "format/tscodec.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define N_MAX QT_BLOCK_POINTS_MAX
#define T0    1700000000000000000ll
#define SEC   1000000000ll
#define MS    1000000ll

enum shape {
    SH_REGULAR,
    SH_REGULAR_MS,
    SH_JITTER_MS,
    SH_JITTER_NS,
    SH_GAPS,
    SH_LATE,
    SH_DUPS,
    SH_DESCENDING,
    SH_RANDOM,
    SH_EXTREMES,
    SH_EQUAL,
    SH_DRIFT,
    SH_WRAP,
    SH_POW2,
    SH_HALF,
    SH_WALK,
    SH_STEP,
    SH_COUNT
};

static int64_t in[N_MAX], out[N_MAX + 1];
static uint8_t buf[N_MAX * 8 + 64];

static int64_t
rand_range(uint64_t *rng, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(qt_test_rand(rng) % (uint64_t)(hi - lo + 1));
}

static int64_t
gen_extreme(uint64_t *rng)
{
    static const int64_t ext[] = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, INT64_MAX - 1};
    return ext[qt_test_rand(rng) % 7];
}

/* Fill in[0..n) with one shape of series. */
static void
gen(enum shape sh, uint32_t n, uint64_t *rng)
{
    int64_t t = T0 + rand_range(rng, 0, 1000) * SEC;
    for (uint32_t i = 0; i < n; i++) {
        switch (sh) {
        case SH_REGULAR: in[i] = t + (int64_t)i * 10 * SEC; break;
        case SH_REGULAR_MS: in[i] = t + (int64_t)i * MS; break;
        case SH_JITTER_MS: in[i] = t + (int64_t)i * 10 * SEC + rand_range(rng, -3, 3) * MS; break;
        case SH_JITTER_NS: in[i] = t + (int64_t)i * SEC + rand_range(rng, -1000, 1000); break;
        case SH_GAPS:
            t += qt_test_rand(rng) % 1000 == 0 ? rand_range(rng, 2, 5000) * 10 * SEC : 10 * SEC;
            in[i] = t;
            break;
        case SH_LATE:
            in[i] = t + (int64_t)i * 10 * SEC;
            if (qt_test_rand(rng) % 100 == 0)
                in[i] -= rand_range(rng, 1, 3600) * SEC;
            break;
        case SH_DUPS:
            in[i] = i > 0 && qt_test_rand(rng) % 20 == 0 ? in[i - 1] : t + (int64_t)i * 15 * SEC;
            break;
        case SH_DESCENDING: in[i] = t - (int64_t)i * 60 * SEC + rand_range(rng, 0, 9) * MS; break;
        case SH_RANDOM: in[i] = (int64_t)qt_test_rand(rng); break;
        case SH_EXTREMES: in[i] = gen_extreme(rng); break;
        case SH_EQUAL: in[i] = t; break;
        case SH_DRIFT: in[i] = t + (int64_t)i * 10 * SEC + (int64_t)i * (i - 1) / 2 * MS; break;
        case SH_WRAP:
            in[i] = (int64_t)((uint64_t)INT64_MAX - 5000 * SEC + (uint64_t)i * 7 * SEC);
            break;
        case SH_POW2: in[i] = (int64_t)((uint64_t)rand_range(rng, -9, 9) << 40); break;
        case SH_HALF: in[i] = qt_test_rand(rng) & 1 ? INT64_MIN : 0; break;
        case SH_WALK: in[i] = i == 0 ? t : in[i - 1] + rand_range(rng, -50, 200); break;
        case SH_STEP:
            in[i] = t + (int64_t)(i < n / 2 ? i * 10 : n / 2 * 10 + (i - n / 2) * 60) * SEC;
            break;
        default: qt_unreachable();
        }
    }
}

static int
ts_dec(const uint8_t *b, size_t len, uint32_t cap, uint32_t *n)
{
    return qt_ts_decode(b, len, out, cap, n);
}

/* Encode in[0..n), decode, compare; returns the payload length or 0. */
static size_t
roundtrip(uint32_t n)
{
    size_t len = 0;
    int rc = qt_ts_encode(in, n, buf, sizeof(buf), &len);
    if (rc != 0 || len > qt_ts_bound(n))
        return 0;
    out[n] = 0x5a5a5a5a;
    uint32_t got = 0;
    rc = codec_decode_copy(ts_dec, buf, len, N_MAX, &got);
    if (rc != 0 || got != n || memcmp(in, out, (size_t)n * 8) != 0 || out[n] != 0x5a5a5a5a)
        return 0;
    return len;
}

/* DOD order byte of buf (after head, first, unit), or -1. */
static int
dod_order(const uint8_t *b, size_t len)
{
    size_t pos = 0;
    uint64_t x;
    if (qt_varint_get(b, len, &pos, &x) != 0 || pos >= len || b[pos++] != QT_ENC_TS_DOD)
        return -1;
    if (qt_varint_get(b, len, &pos, &x) != 0 || qt_varint_get(b, len, &pos, &x) != 0)
        return -1;
    return pos < len ? b[pos] : -1;
}

static const uint32_t sizes[] = {0,   1,   2,   3,   4,   5,    127,  128,  129, 130,
                                 131, 255, 256, 257, 258, 1000, 4097, 8191, 8192};

TEST(roundtrip_every_shape_and_size)
{
    uint64_t rng = qt_test_seed();
    for (int sh = 0; sh < SH_COUNT; sh++) {
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            for (int rep = 0; rep < 3; rep++) {
                gen((enum shape)sh, sizes[s], &rng);
                if (roundtrip(sizes[s]) == 0) {
                    qt_test_fail_at(__FILE__, __LINE__, "shape %d n %u rep %d", sh, sizes[s], rep);
                    return;
                }
            }
        }
    }
}

TEST(roundtrip_random_mixtures)
{
    /* Each block splices pieces of different shapes. */
    uint64_t rng = qt_test_seed() ^ 0x1234;
    static int64_t piece[N_MAX];
    for (int rep = 0; rep < 3000; rep++) {
        uint32_t n = (uint32_t)(qt_test_rand(&rng) % (N_MAX + 1));
        uint32_t done = 0;
        while (done < n) {
            uint32_t k = 1 + (uint32_t)(qt_test_rand(&rng) % 300);
            k = k < n - done ? k : n - done;
            gen((enum shape)(qt_test_rand(&rng) % SH_COUNT), k, &rng);
            memcpy(piece + done, in, (size_t)k * 8);
            done += k;
        }
        memcpy(in, piece, (size_t)n * 8);
        CHECK(roundtrip(n) != 0);
    }
}

TEST(regular_series_is_const_and_free)
{
    uint64_t rng = qt_test_seed();
    gen(SH_REGULAR, N_MAX, &rng);
    size_t len = roundtrip(N_MAX);
    CHECK(len != 0);
    CHECK_EQ(buf[2], QT_ENC_TS_CONST);
    CHECK(len * 8.0 / N_MAX < 0.02);
    for (uint32_t n = 1; n <= 2; n++) {
        gen(SH_RANDOM, n, &rng);
        CHECK(roundtrip(n) != 0);
        CHECK_EQ(buf[1], QT_ENC_TS_CONST);
    }
    CHECK(roundtrip(0) != 0);
    CHECK_EQ(buf[1], QT_ENC_TS_RAW);
}

TEST(jittered_ms_series_under_5_bits)
{
    uint64_t rng = qt_test_seed();
    for (int rep = 0; rep < 5; rep++) {
        gen(SH_JITTER_MS, N_MAX, &rng);
        size_t len = roundtrip(N_MAX);
        CHECK(len != 0);
        CHECK_EQ(buf[2], QT_ENC_TS_DOD);
        CHECK(len * 8.0 / N_MAX < 5.0);
    }
    /* 15-minute sampling at second precision with +-2 s jitter. */
    for (uint32_t i = 0; i < N_MAX; i++)
        in[i] = T0 + (int64_t)i * 900 * SEC + rand_range(&rng, -2, 2) * SEC;
    size_t len = roundtrip(N_MAX);
    CHECK(len != 0);
    CHECK_EQ(buf[2], QT_ENC_TS_DOD);
    CHECK(len * 8.0 / N_MAX < 4.0);
}

TEST(gaps_and_late_points_stay_cheap)
{
    uint64_t rng = qt_test_seed();
    /* A regular series with three outages of up to a day. */
    for (int rep = 0; rep < 5; rep++) {
        int64_t t = T0;
        for (uint32_t i = 0; i < N_MAX; i++) {
            if (i == 1000 + (uint32_t)rep || i == 4000 || i == 7777)
                t += rand_range(&rng, 6, 8640) * 10 * SEC;
            in[i] = t;
            t += 10 * SEC;
        }
        size_t len = roundtrip(N_MAX);
        CHECK(len != 0);
        CHECK_EQ(buf[2], QT_ENC_TS_DOD);
        CHECK(len * 8.0 / N_MAX < 0.2);
    }
    /* 1% of points arriving late, re-sorted into place by nobody. */
    gen(SH_LATE, N_MAX, &rng);
    size_t len = roundtrip(N_MAX);
    CHECK(len != 0);
    CHECK(len * 8.0 / N_MAX < 1.5);
}

TEST(both_delta_orders_and_raw_chosen)
{
    uint64_t rng = qt_test_seed();
    gen(SH_JITTER_MS, 1000, &rng);
    CHECK(roundtrip(1000) != 0);
    CHECK_EQ(dod_order(buf, sizeof(buf)), 1);
    gen(SH_DRIFT, 1000, &rng);
    CHECK(roundtrip(1000) != 0);
    CHECK_EQ(dod_order(buf, sizeof(buf)), 2);
    gen(SH_RANDOM, 1000, &rng);
    size_t len = roundtrip(1000);
    CHECK_EQ(buf[2], QT_ENC_TS_RAW);
    CHECK_EQ(len, 3 + 1000 * 8);
}

/* One payload per encoding and path: CONST, DOD order 1 with exceptions,
 * DOD order 2, several runs, RAW. */
static const enum shape check_shapes[] = {SH_REGULAR, SH_GAPS,   SH_DRIFT, SH_JITTER_MS,
                                          SH_LATE,    SH_RANDOM, SH_HALF,  SH_EXTREMES};

TEST(every_truncation_and_trailing_byte_rejected)
{
    uint64_t rng = qt_test_seed();
    for (size_t s = 0; s < sizeof(check_shapes) / sizeof(check_shapes[0]); s++) {
        for (uint32_t n = 0; n <= 300; n += 150) {
            gen(check_shapes[s], n + 3, &rng);
            size_t len = roundtrip(n + 3);
            CHECK(len != 0);
            CHECK(codec_check_prefixes(ts_dec, buf, len, N_MAX));
            CHECK(codec_check_trailing(ts_dec, buf, len, N_MAX));
        }
    }
}

TEST(bit_flips_never_crash)
{
    uint64_t rng = qt_test_seed();
    uint32_t decoded_total = 0;
    for (size_t s = 0; s < sizeof(check_shapes) / sizeof(check_shapes[0]); s++) {
        gen(check_shapes[s], 200, &rng);
        size_t len = roundtrip(200);
        CHECK(len != 0);
        uint32_t decoded = 0;
        CHECK(codec_check_bitflips(ts_dec, buf, len, N_MAX, &rng, 512, 3000, &decoded));
        decoded_total += decoded;
    }
    CHECK(decoded_total > 0); /* flips in packed bits decode to other values */
}

TEST(hostile_heads_and_fields)
{
    CHECK(codec_check_heads(ts_dec, QT_ENC_TS_RAW));
    uint32_t n = 0;
    /* n=3 DOD: first 0, unit, order, then one run of 2 values. */
    const uint8_t unit0[] = {3, QT_ENC_TS_DOD, 0, 0, 1, 0, 0};
    CHECK_RC(qt_ts_decode(unit0, sizeof(unit0), out, 8, &n), QT_ECORRUPT);
    const uint8_t order3[] = {3, QT_ENC_TS_DOD, 0, 1, 3, 0, 0};
    CHECK_RC(qt_ts_decode(order3, sizeof(order3), out, 8, &n), QT_ECORRUPT);
    const uint8_t short2[] = {1, QT_ENC_TS_DOD, 0, 1, 2, 0};
    CHECK_RC(qt_ts_decode(short2, sizeof(short2), out, 8, &n), QT_ECORRUPT);
    const uint8_t empty1[] = {0, QT_ENC_TS_DOD, 0, 1, 1};
    CHECK_RC(qt_ts_decode(empty1, sizeof(empty1), out, 8, &n), QT_ECORRUPT);
    const uint8_t width65[] = {3, QT_ENC_TS_DOD, 0, 1, 1, 65, 0, 0xff};
    CHECK_RC(qt_ts_decode(width65, sizeof(width65), out, 8, &n), QT_ECORRUPT);
    CHECK(strstr(qt_err_detail(), "width") != NULL);
    const uint8_t width127[] = {3, QT_ENC_TS_DOD, 0, 1, 1, 0x7f, 0};
    CHECK_RC(qt_ts_decode(width127, sizeof(width127), out, 8, &n), QT_ECORRUPT);
    const uint8_t exc_many[] = {3, QT_ENC_TS_DOD, 0, 1, 1, 0x80, 0, 2, 0, 0, 1, 0, 2, 0};
    CHECK_RC(qt_ts_decode(exc_many, sizeof(exc_many), out, 8, &n), QT_ECORRUPT);
    const uint8_t exc_index[] = {3, QT_ENC_TS_DOD, 0, 1, 1, 0x80, 0, 0, 2, 4};
    CHECK_RC(qt_ts_decode(exc_index, sizeof(exc_index), out, 8, &n), QT_ECORRUPT);
    /* The same payload with a valid index decodes: 0, 1, 1+2. */
    const uint8_t exc_ok[] = {3, QT_ENC_TS_DOD, 0, 1, 1, 0x80, 2, 0, 1, 2};
    CHECK_OK(qt_ts_decode(exc_ok, sizeof(exc_ok), out, 8, &n));
    CHECK_EQ(n, 3);
    CHECK(out[0] == 0 && out[1] == 1 && out[2] == 3);
}

TEST(output_space_and_argument_errors)
{
    uint64_t rng = qt_test_seed();
    for (size_t s = 0; s < sizeof(check_shapes) / sizeof(check_shapes[0]); s++) {
        gen(check_shapes[s], 300, &rng);
        size_t len = roundtrip(300);
        CHECK(len != 0);
        static uint8_t again[N_MAX * 8 + 64];
        for (size_t cap = 0; cap < len; cap++) {
            size_t l2 = 0;
            CHECK_RC(qt_ts_encode(in, 300, again, cap, &l2), QT_ENOSPACE);
        }
        size_t l2 = 0;
        CHECK_OK(qt_ts_encode(in, 300, again, len, &l2));
        CHECK_EQ(l2, len);
        CHECK(memcmp(again, buf, len) == 0);
        uint32_t n = 0;
        CHECK_RC(qt_ts_decode(buf, len, out, 299, &n), QT_ELIMIT);
        CHECK_OK(qt_ts_decode(buf, len, out, 300, &n));
    }
    size_t len = 0;
    CHECK_RC(qt_ts_encode(in, N_MAX + 1, buf, sizeof(buf), &len), QT_EINVAL);
    CHECK(qt_ts_bound(0) >= 2 && qt_ts_bound(N_MAX) >= 8 * N_MAX);
}
