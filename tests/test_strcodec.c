/*
 * test_strcodec.c -- string codec: round trips of status columns, unique
 * ids, empty, binary and maximum-length strings at every size; DICT vs
 * PLAIN choice at the dictionary limit; zero-copy results; exact bound;
 * truncation, trailing bytes, bit flips and hostile dictionaries.
 */
#include "codec_check.h"
#include "format/codec.h"
#include "format/qt_assert.h"
#include "format/qt_limits.h"
#include "format/strcodec.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_MAX     QT_BLOCK_POINTS_MAX
#define ARENA_MAX (4u << 20)

enum shape {
    SH_STATUS,
    SH_STATUS_RANDOM,
    SH_UNIQUE,
    SH_EMPTY,
    SH_SPARSE,
    SH_LONG,
    SH_BINARY,
    SH_COUNT
};

static struct qt_str in[N_MAX], out[N_MAX + 1];
static uint8_t buf[N_MAX * (QT_STRING_VALUE_MAX + 2) + 64];
static char arena[ARENA_MAX];
static size_t arena_used;

static const char *states[] = {"ok", "degraded", "offline", "alarm", "maintenance", ""};

/* A string of `len` bytes in the arena (content from rng, alphabet `k`). */
static struct qt_str
make_str(uint64_t *rng, uint32_t len, uint32_t k)
{
    qt_assert(arena_used + len <= ARENA_MAX);
    char *p = arena + arena_used;
    for (uint32_t i = 0; i < len; i++)
        p[i] = (char)(k == 256 ? qt_test_rand(rng) : 'a' + qt_test_rand(rng) % k);
    arena_used += len;
    return (struct qt_str){.p = p, .len = len};
}

static void
gen(enum shape sh, uint32_t n, uint64_t *rng)
{
    arena_used = 0;
    uint32_t st = 0;
    struct qt_str longs[3];
    for (int i = 0; i < 3; i++)
        longs[i] = make_str(rng, QT_STRING_VALUE_MAX - (uint32_t)i, 26);
    for (uint32_t i = 0; i < n; i++) {
        switch (sh) {
        case SH_STATUS:
            st = qt_test_rand(rng) % 200 == 0 ? (uint32_t)(qt_test_rand(rng) % 6) : st;
            in[i] = (struct qt_str){.p = states[st], .len = (uint32_t)strlen(states[st])};
            break;
        case SH_STATUS_RANDOM:
            st = (uint32_t)(qt_test_rand(rng) % 6);
            in[i] = (struct qt_str){.p = states[st], .len = (uint32_t)strlen(states[st])};
            break;
        case SH_UNIQUE: in[i] = make_str(rng, 4 + (uint32_t)(qt_test_rand(rng) % 12), 26); break;
        case SH_EMPTY: in[i] = (struct qt_str){.p = NULL, .len = 0}; break;
        case SH_SPARSE:
            in[i] = qt_test_rand(rng) % 10 ? (struct qt_str){0} : make_str(rng, 3, 2);
            break;
        case SH_LONG: in[i] = longs[qt_test_rand(rng) % 3]; break;
        case SH_BINARY: in[i] = make_str(rng, (uint32_t)(qt_test_rand(rng) % 4), 256); break;
        default: qt_unreachable();
        }
    }
}

static int
str_dec(const uint8_t *b, size_t len, uint32_t cap, uint32_t *n)
{
    return qt_str_decode(b, len, out, cap, n);
}

static bool
same_strings(const struct qt_str *a, const struct qt_str *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (a[i].len != b[i].len || (a[i].len > 0 && memcmp(a[i].p, b[i].p, a[i].len) != 0))
            return false;
    }
    return true;
}

/* Encode, decode (in place: results point into buf), compare. */
static size_t
roundtrip(uint32_t n)
{
    size_t len = 0;
    int rc = qt_str_encode(in, n, buf, sizeof(buf), &len);
    if (rc != 0 || len > qt_str_bound(in, n))
        return 0;
    out[n].len = 0x5a5a;
    uint32_t got = 0;
    rc = qt_str_decode(buf, len, out, N_MAX, &got);
    if (rc != 0 || got != n || !same_strings(in, out, n) || out[n].len != 0x5a5a)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p = (const uint8_t *)out[i].p;
        if (p < buf || p + out[i].len > buf + len)
            return 0; /* zero copy: every result points into the payload */
    }
    return len;
}

static const uint32_t sizes[] = {0, 1, 2, 3, 127, 128, 129, 255, 256, 257, 1000, 4097, 8192};

TEST(roundtrip_every_shape_and_size)
{
    uint64_t rng = qt_test_seed();
    for (int sh = 0; sh < SH_COUNT; sh++) {
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            gen((enum shape)sh, sizes[s], &rng);
            if (roundtrip(sizes[s]) == 0) {
                qt_test_fail_at(__FILE__, __LINE__, "shape %d n %u", sh, sizes[s]);
                return;
            }
        }
    }
}

TEST(status_column_is_a_small_dictionary)
{
    uint64_t rng = qt_test_seed();
    gen(SH_STATUS, N_MAX, &rng);
    size_t len = roundtrip(N_MAX);
    CHECK(len != 0);
    CHECK_EQ(buf[2], QT_ENC_STR_DICT);
    CHECK(len * 8.0 / N_MAX < 1.5); /* ~40 changes: runs holding one widen to 1-3 bits */
    /* A status that changes 4 times a block: 64 two-byte runs plus 4. */
    for (uint32_t i = 0; i < N_MAX; i++) {
        const char *st = states[(i / 2000) % 6];
        in[i] = (struct qt_str){.p = st, .len = (uint32_t)strlen(st)};
    }
    len = roundtrip(N_MAX);
    CHECK_EQ(buf[2], QT_ENC_STR_DICT);
    CHECK(len * 8.0 / N_MAX < 0.35);
    gen(SH_STATUS_RANDOM, N_MAX, &rng);
    len = roundtrip(N_MAX);
    CHECK_EQ(buf[2], QT_ENC_STR_DICT);
    CHECK(len * 8.0 / N_MAX < 3.2); /* six states: 3 bits */
    gen(SH_UNIQUE, N_MAX, &rng);
    len = roundtrip(N_MAX);
    CHECK_EQ(buf[2], QT_ENC_STR_PLAIN);
    CHECK(qt_str_bound(in, N_MAX) - len <= 11); /* the bound is tight for PLAIN */
    CHECK(roundtrip(0) == 2);
    CHECK_EQ(buf[1], QT_ENC_STR_PLAIN);
}

/* n = 8192 values over `distinct` strings of 8 bytes. */
static void
gen_distinct(uint32_t distinct)
{
    static char names[N_MAX][9];
    for (uint32_t i = 0; i < N_MAX; i++) {
        uint32_t k = i % distinct;
        snprintf(names[i], sizeof(names[i]), "s%07u", k);
        in[i] = (struct qt_str){.p = names[i], .len = 8};
    }
}

TEST(dictionary_limit)
{
    gen_distinct(QT_STRING_DICT_MAX);
    size_t len = roundtrip(N_MAX);
    CHECK(len != 0);
    CHECK_EQ(buf[2], QT_ENC_STR_DICT);
    gen_distinct(QT_STRING_DICT_MAX + 1);
    len = roundtrip(N_MAX);
    CHECK(len != 0);
    CHECK_EQ(buf[2], QT_ENC_STR_PLAIN);
    gen_distinct(1);
    len = roundtrip(N_MAX);
    CHECK(len != 0 && len < 40);
}

TEST(invalid_arguments)
{
    uint64_t rng = qt_test_seed();
    gen(SH_STATUS, 100, &rng);
    static char big[QT_STRING_VALUE_MAX + 1];
    in[57] = (struct qt_str){.p = big, .len = QT_STRING_VALUE_MAX + 1};
    size_t len = 0;
    CHECK_RC(qt_str_encode(in, 100, buf, sizeof(buf), &len), QT_EINVAL);
    in[57].len = QT_STRING_VALUE_MAX;
    CHECK_OK(qt_str_encode(in, 100, buf, sizeof(buf), &len));
    CHECK_RC(qt_str_encode(in, N_MAX + 1, buf, sizeof(buf), &len), QT_EINVAL);
}

static const enum shape check_shapes[] = {SH_STATUS, SH_STATUS_RANDOM, SH_UNIQUE, SH_SPARSE,
                                          SH_BINARY};

TEST(every_truncation_trailing_byte_and_bit_flip)
{
    uint64_t rng = qt_test_seed();
    for (size_t s = 0; s < sizeof(check_shapes) / sizeof(check_shapes[0]); s++) {
        for (uint32_t n = 1; n <= 301; n += 150) {
            gen(check_shapes[s], n, &rng);
            size_t len = roundtrip(n);
            CHECK(len != 0);
            CHECK(codec_check_prefixes(str_dec, buf, len, N_MAX));
            CHECK(codec_check_trailing(str_dec, buf, len, N_MAX));
            uint32_t decoded = 0;
            CHECK(codec_check_bitflips(str_dec, buf, len, N_MAX, &rng, 256, 2000, &decoded));
        }
    }
}

TEST(hostile_dictionaries)
{
    CHECK(codec_check_heads(str_dec, QT_ENC_STR_PLAIN));
    uint32_t n = 0;
    const uint8_t d0[] = {2, QT_ENC_STR_DICT, 0, 0, 0};
    CHECK_RC(qt_str_decode(d0, sizeof(d0), out, 8, &n), QT_ECORRUPT);
    const uint8_t d_gt_n[] = {1, QT_ENC_STR_DICT, 2, 1, 'a', 1, 'b', 0, 0};
    CHECK_RC(qt_str_decode(d_gt_n, sizeof(d_gt_n), out, 8, &n), QT_ECORRUPT);
    const uint8_t d_huge[] = {2, QT_ENC_STR_DICT, 0x81, 0x20};
    CHECK_RC(qt_str_decode(d_huge, sizeof(d_huge), out, 8, &n), QT_ECORRUPT);
    /* Codes run: width 2, base 0, packed codes 0, 1, 2 with two entries. */
    const uint8_t code_oob[] = {3, QT_ENC_STR_DICT, 2, 1, 'a', 1, 'b', 2, 0, 0x24};
    CHECK_RC(qt_str_decode(code_oob, sizeof(code_oob), out, 8, &n), QT_ECORRUPT);
    CHECK(strstr(qt_err_detail(), "code") != NULL);
    const uint8_t code_ok[] = {3, QT_ENC_STR_DICT, 2, 1, 'a', 2, 'b', 'c', 2, 0, 0x04};
    CHECK_OK(qt_str_decode(code_ok, sizeof(code_ok), out, 8, &n));
    CHECK(n == 3 && out[0].len == 1 && out[0].p[0] == 'a' && out[1].len == 2 && out[2].len == 1);
    /* Width 0 with base 5: every code is 5. */
    const uint8_t base_oob[] = {2, QT_ENC_STR_DICT, 2, 1, 'a', 1, 'b', 0, 10};
    CHECK_RC(qt_str_decode(base_oob, sizeof(base_oob), out, 8, &n), QT_ECORRUPT);
    /* One entry: no codes follow. */
    const uint8_t one[] = {2, QT_ENC_STR_DICT, 1, 1, 'a'};
    CHECK_OK(qt_str_decode(one, sizeof(one), out, 8, &n));
    CHECK(n == 2 && out[1].len == 1 && out[1].p == (const char *)one + 4);
    const uint8_t too_long[] = {1, QT_ENC_STR_PLAIN, 0x81, 0x08};
    CHECK_RC(qt_str_decode(too_long, sizeof(too_long), out, 8, &n), QT_ECORRUPT);
}

TEST(output_space_errors)
{
    uint64_t rng = qt_test_seed();
    static uint8_t again[N_MAX * 20];
    for (size_t s = 0; s < sizeof(check_shapes) / sizeof(check_shapes[0]); s++) {
        gen(check_shapes[s], 300, &rng);
        size_t len = roundtrip(300);
        CHECK(len != 0 && len <= sizeof(again));
        for (size_t cap = 0; cap < len; cap++) {
            size_t l2 = 0;
            CHECK_RC(qt_str_encode(in, 300, again, cap, &l2), QT_ENOSPACE);
        }
        size_t l2 = 0;
        CHECK_OK(qt_str_encode(in, 300, again, len, &l2));
        CHECK(l2 == len && memcmp(again, buf, len) == 0);
        uint32_t n = 0;
        CHECK_RC(qt_str_decode(buf, len, out, 299, &n), QT_ELIMIT);
    }
}
