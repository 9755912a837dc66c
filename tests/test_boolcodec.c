/*
 * test_boolcodec.c -- boolean codec: round trips of flags, presence maps,
 * random bits and alternations at every size (incl. non-multiples of 8);
 * BITMAP vs RLE choice and size; invalid values; truncation, trailing
 * bytes, bit flips, padding bits and hostile run lengths.
 */
#include "codec_check.h"
#include "format/boolcodec.h"
#include "format/codec.h"
#include "format/qt_assert.h"
#include "format/qt_limits.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define N_MAX QT_BLOCK_POINTS_MAX

enum shape { SH_ZERO, SH_ONE, SH_RANDOM, SH_FLAG, SH_PRESENCE, SH_ALTERNATE, SH_BURSTS, SH_COUNT };

static uint8_t in[N_MAX], out[N_MAX + 1];
static uint8_t buf[N_MAX + 64];

static void
gen(enum shape sh, uint32_t n, uint64_t *rng)
{
    uint8_t b = qt_test_rand(rng) & 1;
    for (uint32_t i = 0; i < n; i++) {
        switch (sh) {
        case SH_ZERO: in[i] = 0; break;
        case SH_ONE: in[i] = 1; break;
        case SH_RANDOM: in[i] = qt_test_rand(rng) & 1; break;
        case SH_FLAG: in[i] = b ^= qt_test_rand(rng) % 500 == 0; break;
        case SH_PRESENCE: in[i] = qt_test_rand(rng) % 100 != 0; break;
        case SH_ALTERNATE: in[i] = i & 1; break;
        case SH_BURSTS: in[i] = b ^= qt_test_rand(rng) % 8 == 0; break;
        default: qt_unreachable();
        }
    }
}

static int
bool_dec(const uint8_t *b, size_t len, uint32_t cap, uint32_t *n)
{
    return qt_bool_decode(b, len, out, cap, n);
}

static size_t
roundtrip(uint32_t n)
{
    size_t len = 0;
    int rc = qt_bool_encode(in, n, buf, sizeof(buf), &len);
    if (rc != 0 || len > qt_bool_bound(n))
        return 0;
    out[n] = 0x5a;
    uint32_t got = 0;
    rc = codec_decode_copy(bool_dec, buf, len, N_MAX, &got);
    if (rc != 0 || got != n || memcmp(in, out, n) != 0 || out[n] != 0x5a)
        return 0;
    return len;
}

TEST(roundtrip_every_shape_and_size)
{
    uint64_t rng = qt_test_seed();
    for (int sh = 0; sh < SH_COUNT; sh++) {
        for (uint32_t n = 0; n <= N_MAX; n += n < 70 ? 1 : 61 + n / 8) {
            gen((enum shape)sh, n, &rng);
            if (roundtrip(n) == 0) {
                qt_test_fail_at(__FILE__, __LINE__, "shape %d n %u", sh, n);
                return;
            }
        }
        gen((enum shape)sh, N_MAX, &rng);
        CHECK(roundtrip(N_MAX) != 0);
    }
}

TEST(encoding_choice_and_size)
{
    uint64_t rng = qt_test_seed();
    gen(SH_FLAG, N_MAX, &rng); /* a status flag flipping ~16 times a block */
    size_t len = roundtrip(N_MAX);
    CHECK(len != 0);
    CHECK_EQ(buf[2], QT_ENC_BOOL_RLE);
    CHECK(len * 8.0 / N_MAX < 0.1);
    gen(SH_ONE, N_MAX, &rng); /* a full presence map */
    len = roundtrip(N_MAX);
    CHECK(len != 0 && len <= 6);
    CHECK_EQ(buf[2], QT_ENC_BOOL_RLE);
    gen(SH_RANDOM, N_MAX, &rng);
    len = roundtrip(N_MAX);
    CHECK_EQ(buf[2], QT_ENC_BOOL_BITMAP);
    CHECK_EQ(len, 3 + N_MAX / 8);
    gen(SH_ALTERNATE, 13, &rng);
    CHECK_EQ(roundtrip(13), 2 + 2);
    CHECK_EQ(buf[1], QT_ENC_BOOL_BITMAP);
    CHECK(roundtrip(0) == 2);
}

TEST(invalid_values_rejected)
{
    size_t len = 0;
    for (uint32_t at = 0; at < 20; at++) {
        memset(in, 0, 20);
        in[at] = (uint8_t)(2 + at * 13);
        CHECK_RC(qt_bool_encode(in, 20, buf, sizeof(buf), &len), QT_EINVAL);
    }
    CHECK_RC(qt_bool_encode(in, N_MAX + 1, buf, sizeof(buf), &len), QT_EINVAL);
}

static const enum shape check_shapes[] = {SH_FLAG, SH_RANDOM, SH_PRESENCE, SH_BURSTS, SH_ONE};

TEST(every_truncation_trailing_byte_and_bit_flip)
{
    uint64_t rng = qt_test_seed();
    for (size_t s = 0; s < sizeof(check_shapes) / sizeof(check_shapes[0]); s++) {
        for (uint32_t n = 1; n <= 2001; n += 500) {
            gen(check_shapes[s], n, &rng);
            size_t len = roundtrip(n);
            CHECK(len != 0);
            CHECK(codec_check_prefixes(bool_dec, buf, len, N_MAX));
            CHECK(codec_check_trailing(bool_dec, buf, len, N_MAX));
            uint32_t decoded = 0;
            CHECK(codec_check_bitflips(bool_dec, buf, len, N_MAX, &rng, 128, 2000, &decoded));
        }
    }
}

TEST(hostile_fields)
{
    CHECK(codec_check_heads(bool_dec, QT_ENC_BOOL_BITMAP));
    uint32_t n = 0;
    const uint8_t pad[] = {3, QT_ENC_BOOL_BITMAP, 0x0f};
    CHECK_RC(qt_bool_decode(pad, sizeof(pad), out, 8, &n), QT_ECORRUPT);
    const uint8_t pad_ok[] = {3, QT_ENC_BOOL_BITMAP, 0x05};
    CHECK_OK(qt_bool_decode(pad_ok, sizeof(pad_ok), out, 8, &n));
    CHECK(n == 3 && out[0] == 1 && out[1] == 0 && out[2] == 1);
    const uint8_t first2[] = {3, QT_ENC_BOOL_RLE, 2, 3};
    CHECK_RC(qt_bool_decode(first2, sizeof(first2), out, 8, &n), QT_ECORRUPT);
    const uint8_t run0[] = {3, QT_ENC_BOOL_RLE, 1, 0, 3};
    CHECK_RC(qt_bool_decode(run0, sizeof(run0), out, 8, &n), QT_ECORRUPT);
    const uint8_t overlong[] = {3, QT_ENC_BOOL_RLE, 1, 2, 2};
    CHECK_RC(qt_bool_decode(overlong, sizeof(overlong), out, 8, &n), QT_ECORRUPT);
    const uint8_t huge_run[] = {3, QT_ENC_BOOL_RLE, 0, 0xff, 0xff, 0xff, 0xff, 0x0f};
    CHECK_RC(qt_bool_decode(huge_run, sizeof(huge_run), out, 8, &n), QT_ECORRUPT);
    const uint8_t rle_ok[] = {3, QT_ENC_BOOL_RLE, 1, 2, 1};
    CHECK_OK(qt_bool_decode(rle_ok, sizeof(rle_ok), out, 8, &n));
    CHECK(n == 3 && out[0] == 1 && out[1] == 1 && out[2] == 0);
}

TEST(output_space_errors)
{
    uint64_t rng = qt_test_seed();
    static uint8_t again[N_MAX + 64];
    for (size_t s = 0; s < sizeof(check_shapes) / sizeof(check_shapes[0]); s++) {
        gen(check_shapes[s], 1000, &rng);
        size_t len = roundtrip(1000);
        CHECK(len != 0);
        for (size_t cap = 0; cap < len; cap++) {
            size_t l2 = 0;
            CHECK_RC(qt_bool_encode(in, 1000, again, cap, &l2), QT_ENOSPACE);
        }
        size_t l2 = 0;
        CHECK_OK(qt_bool_encode(in, 1000, again, len, &l2));
        CHECK(l2 == len && memcmp(again, buf, len) == 0);
        uint32_t n = 0;
        CHECK_RC(qt_bool_decode(buf, len, out, 999, &n), QT_ELIMIT);
    }
}
