/*
 * test_intcodec.c -- integer codec: exact round trips on levels, counters,
 * noise, spikes, random and INT64 extremes at every block size; encoding
 * choice and bits/value on typical columns; truncation, trailing bytes,
 * bit flips, hostile fields and output-space errors.
 */
#include "codec_check.h"
#include "format/codec.h"
#include "format/intcodec.h"
#include "format/qt_assert.h"
#include "format/qt_limits.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define N_MAX QT_BLOCK_POINTS_MAX

enum shape {
    SH_CONST,
    SH_BAND,
    SH_WALK,
    SH_COUNTER,
    SH_METER,
    SH_SPIKES,
    SH_RANDOM,
    SH_EXTREMES,
    SH_MINMAX,
    SH_RAMP,
    SH_STEPS,
    SH_NEGATIVE,
    SH_WRAP,
    SH_COUNT
};

static int64_t in[N_MAX], out[N_MAX + 1];
static uint8_t buf[N_MAX * 8 + 64];

static int64_t
rand_range(uint64_t *rng, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(qt_test_rand(rng) % (uint64_t)(hi - lo + 1));
}

static void
gen(enum shape sh, uint32_t n, uint64_t *rng)
{
    static const int64_t ext[] = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, INT64_MAX - 1};
    int64_t c = rand_range(rng, -1000000, 1000000);
    for (uint32_t i = 0; i < n; i++) {
        switch (sh) {
        case SH_CONST: in[i] = c; break;
        case SH_BAND: in[i] = 400 + rand_range(rng, 0, 99); break;
        case SH_WALK: in[i] = c += rand_range(rng, -5, 5); break;
        case SH_COUNTER: in[i] = c += rand_range(rng, 0, 19); break;
        case SH_METER: in[i] = c += qt_test_rand(rng) % 10 == 0 ? rand_range(rng, 1, 5) : 0; break;
        case SH_SPIKES: in[i] = rand_range(rng, 0, 99) + (i % 700 == 3 ? 1000000 : 0); break;
        case SH_RANDOM: in[i] = (int64_t)qt_test_rand(rng); break;
        case SH_EXTREMES: in[i] = ext[qt_test_rand(rng) % 7]; break;
        case SH_MINMAX: in[i] = i & 1 ? INT64_MIN : INT64_MAX; break;
        case SH_RAMP: in[i] = (int64_t)i * 20 + rand_range(rng, 0, 99); break;
        case SH_STEPS: in[i] = (int64_t)(i / 1000) * 1000000 + rand_range(rng, 0, 3); break;
        case SH_NEGATIVE: in[i] = -rand_range(rng, 1000000000, 1000000100); break;
        case SH_WRAP: in[i] = (int64_t)((uint64_t)INT64_MAX - 100 + (uint64_t)i * 3); break;
        default: qt_unreachable();
        }
    }
}

static int
int_dec(const uint8_t *b, size_t len, uint32_t cap, uint32_t *n)
{
    return qt_int_decode(b, len, out, cap, n);
}

static size_t
roundtrip(uint32_t n)
{
    size_t len = 0;
    int rc = qt_int_encode(in, n, buf, sizeof(buf), &len);
    if (rc != 0 || len > qt_int_bound(n))
        return 0;
    out[n] = 0x5a5a5a5a;
    uint32_t got = 0;
    rc = codec_decode_copy(int_dec, buf, len, N_MAX, &got);
    if (rc != 0 || got != n || memcmp(in, out, (size_t)n * 8) != 0 || out[n] != 0x5a5a5a5a)
        return 0;
    return len;
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
    uint64_t rng = qt_test_seed() ^ 0x77;
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

/* Encode a full block of `sh`; check the encoding and bits/value. */
static bool
expect_choice(enum shape sh, uint8_t enc, double bits_max, uint64_t *rng)
{
    gen(sh, N_MAX, rng);
    size_t len = roundtrip(N_MAX);
    if (len == 0 || buf[2] != enc || len * 8.0 / N_MAX >= bits_max) {
        printf("     shape %d: len %zu enc %u bits %.3f, want enc %u bits < %.3f\n", sh, len,
               buf[2], len * 8.0 / N_MAX, enc, bits_max);
        return false;
    }
    return true;
}

TEST(encoding_choice_and_size_on_typical_columns)
{
    uint64_t rng = qt_test_seed();
    CHECK(expect_choice(SH_CONST, QT_ENC_INT_CONST, 0.02, &rng));
    CHECK(expect_choice(SH_BAND, QT_ENC_INT_FOR, 7.5, &rng));      /* 7 bits of noise */
    CHECK(expect_choice(SH_SPIKES, QT_ENC_INT_FOR, 7.5, &rng));    /* spikes are exceptions */
    CHECK(expect_choice(SH_STEPS, QT_ENC_INT_DELTA, 3.5, &rng));   /* steps cut mid-run */
    CHECK(expect_choice(SH_COUNTER, QT_ENC_INT_DELTA, 5.5, &rng)); /* 5-bit increments */
    CHECK(expect_choice(SH_METER, QT_ENC_INT_DELTA, 3.5, &rng));   /* 0..5 increments */
    CHECK(expect_choice(SH_WALK, QT_ENC_INT_DELTA, 4.5, &rng));    /* +-5 steps */
    CHECK(expect_choice(SH_RAMP, QT_ENC_INT_DELTA, 8.5, &rng));
    CHECK(expect_choice(SH_RANDOM, QT_ENC_INT_RAW, 64.01, &rng));
    CHECK(expect_choice(SH_NEGATIVE, QT_ENC_INT_FOR, 7.5, &rng));
    CHECK(roundtrip(0) != 0);
    CHECK_EQ(buf[1], QT_ENC_INT_RAW);
    in[0] = INT64_MIN;
    CHECK(roundtrip(1) == 12);
    CHECK_EQ(buf[1], QT_ENC_INT_CONST);
}

static const enum shape check_shapes[] = {SH_CONST,  SH_BAND,   SH_SPIKES,  SH_COUNTER,
                                          SH_RANDOM, SH_MINMAX, SH_EXTREMES};

TEST(every_truncation_and_trailing_byte_rejected)
{
    uint64_t rng = qt_test_seed();
    for (size_t s = 0; s < sizeof(check_shapes) / sizeof(check_shapes[0]); s++) {
        for (uint32_t n = 1; n <= 301; n += 150) {
            gen(check_shapes[s], n, &rng);
            size_t len = roundtrip(n);
            CHECK(len != 0);
            CHECK(codec_check_prefixes(int_dec, buf, len, N_MAX));
            CHECK(codec_check_trailing(int_dec, buf, len, N_MAX));
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
        CHECK(codec_check_bitflips(int_dec, buf, len, N_MAX, &rng, 512, 3000, &decoded));
        decoded_total += decoded;
    }
    CHECK(decoded_total > 0);
}

TEST(hostile_heads_and_fields)
{
    CHECK(codec_check_heads(int_dec, QT_ENC_INT_RAW));
    uint32_t n = 0;
    const uint8_t delta0[] = {0, QT_ENC_INT_DELTA, 0};
    CHECK_RC(qt_int_decode(delta0, sizeof(delta0), out, 8, &n), QT_ECORRUPT);
    const uint8_t width65[] = {2, QT_ENC_INT_FOR, 65, 0, 0xff};
    CHECK_RC(qt_int_decode(width65, sizeof(width65), out, 8, &n), QT_ECORRUPT);
    const uint8_t exc_many[] = {2, QT_ENC_INT_FOR, 0x80, 0, 2, 0, 0, 1, 0, 0, 0};
    CHECK_RC(qt_int_decode(exc_many, sizeof(exc_many), out, 8, &n), QT_ECORRUPT);
    const uint8_t exc_index[] = {2, QT_ENC_INT_FOR, 0x80, 0, 0, 2, 4};
    CHECK_RC(qt_int_decode(exc_index, sizeof(exc_index), out, 8, &n), QT_ECORRUPT);
    /* Width 64 and an exception that wraps: values -1 and INT64_MIN. */
    uint8_t w64[2 + 1 + 1 + 16 + 3] = {2, QT_ENC_INT_FOR, 0x80 | 64, 0, 0};
    memset(w64 + 5, 0xff, 8);
    memset(w64 + 13, 0x00, 8);
    w64[21] = 1;    /* exception at index 1 */
    w64[22] = 0x01; /* zigzag 1 = -1: offset 2^64 - 1 from base 0 */
    CHECK_OK(qt_int_decode(w64, sizeof(w64), out, 8, &n));
    CHECK(n == 2 && out[0] == -1 && out[1] == -1);
}

TEST(output_space_and_argument_errors)
{
    uint64_t rng = qt_test_seed();
    static uint8_t again[N_MAX * 8 + 64];
    for (size_t s = 0; s < sizeof(check_shapes) / sizeof(check_shapes[0]); s++) {
        gen(check_shapes[s], 300, &rng);
        size_t len = roundtrip(300);
        CHECK(len != 0);
        for (size_t cap = 0; cap < len; cap++) {
            size_t l2 = 0;
            CHECK_RC(qt_int_encode(in, 300, again, cap, &l2), QT_ENOSPACE);
        }
        size_t l2 = 0;
        CHECK_OK(qt_int_encode(in, 300, again, len, &l2));
        CHECK(l2 == len && memcmp(again, buf, len) == 0);
        uint32_t n = 0;
        CHECK_RC(qt_int_decode(buf, len, out, 299, &n), QT_ELIMIT);
    }
    size_t len = 0;
    CHECK_RC(qt_int_encode(in, N_MAX + 1, buf, sizeof(buf), &len), QT_EINVAL);
}
