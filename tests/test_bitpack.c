/*
 * test_bitpack.c -- bit packing and FOR runs: round trips at every width,
 * exact byte counts, truncation and corrupt width detection.
 */
#include "format/bitpack.h"
#include "format/qt_bytes.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

TEST(pack_roundtrip_every_width)
{
    uint64_t rng = qt_test_seed();
    static uint64_t in[1000], out[1000];
    static uint8_t buf[8 * 1000 + 8];
    for (uint32_t width = 0; width <= 64; width++) {
        for (uint32_t n = 0; n <= 1000; n += (n < 70 ? 1 : 97)) {
            uint64_t mask = width == 64 ? ~0ull : (1ull << width) - 1;
            for (uint32_t i = 0; i < n; i++)
                in[i] = qt_test_rand(&rng) & mask;
            size_t bytes = qt_bp_bytes(n, width);
            memset(buf, 0xAB, sizeof(buf));
            qt_bp_pack(in, n, width, buf);
            CHECK(buf[bytes] == 0xAB); /* wrote exactly `bytes` */
            qt_bp_unpack(buf, n, width, out);
            for (uint32_t i = 0; i < n; i++)
                CHECK(out[i] == in[i]);
        }
    }
}

TEST(unpack_reads_only_packed_bytes)
{
    /* An exact-size heap buffer: ASan flags any read past it. */
    uint64_t rng = qt_test_seed() ^ 7;
    for (uint32_t width = 1; width <= 64; width++) {
        uint32_t n = 37;
        uint64_t in[37], out[37];
        uint64_t mask = width == 64 ? ~0ull : (1ull << width) - 1;
        for (uint32_t i = 0; i < n; i++)
            in[i] = qt_test_rand(&rng) & mask;
        size_t bytes = qt_bp_bytes(n, width);
        uint8_t *b = malloc(bytes);
        CHECK(b != NULL);
        qt_bp_pack(in, n, width, b);
        qt_bp_unpack(b, n, width, out);
        free(b);
        for (uint32_t i = 0; i < n; i++)
            CHECK(out[i] == in[i]);
    }
}

TEST(for_roundtrip_extremes)
{
    static int64_t v[300], out[300];
    static uint8_t buf[4096];
    const int64_t specials[] = {INT64_MIN, INT64_MAX, 0, -1, 1};
    for (int s = 0; s < 5; s++) {
        for (uint32_t i = 0; i < 300; i++)
            v[i] = (i % 2) ? specials[s] : specials[(s + 1) % 5];
        size_t pos = 0;
        CHECK_OK(qt_for_encode(v, 300, buf, sizeof(buf), &pos));
        CHECK(pos <= qt_for_bound(300));
        size_t rpos = 0;
        CHECK_OK(qt_for_decode(buf, pos, &rpos, 300, out));
        CHECK_EQ(rpos, pos);
        CHECK(memcmp(v, out, sizeof(v)) == 0);
        /* Every strict prefix is rejected as truncated. */
        for (size_t cut = 0; cut < pos; cut++) {
            rpos = 0;
            CHECK_RC(qt_for_decode(buf, cut, &rpos, 300, out), QT_ETRUNC);
        }
    }
}

TEST(for_constant_costs_no_packed_bytes)
{
    int64_t v[512], out[512];
    uint8_t buf[64];
    for (int i = 0; i < 512; i++)
        v[i] = 123456789;
    size_t pos = 0;
    CHECK_OK(qt_for_encode(v, 512, buf, sizeof(buf), &pos));
    CHECK(pos <= QT_VARINT_MAX + 1);
    size_t rpos = 0;
    CHECK_OK(qt_for_decode(buf, pos, &rpos, 512, out));
    CHECK(out[511] == 123456789);
}

TEST(for_rejects_bad_width_and_small_output)
{
    uint8_t buf[16] = {0x00, 65};
    int64_t out[4];
    size_t pos = 0;
    CHECK_RC(qt_for_decode(buf, 2, &pos, 4, out), QT_ECORRUPT);
    CHECK(strstr(qt_err_detail(), "width") != NULL);
    int64_t v[4] = {0, 1000000, -5, 7};
    pos = 0;
    CHECK_RC(qt_for_encode(v, 4, buf, 3, &pos), QT_ENOSPACE);
}
