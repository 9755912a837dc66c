/*
 * test_manifest.c -- MANIFEST round trip, every truncation and bit flip
 * detected, hostile headers and entries rejected with reasons.
 */
#include "format/manifest.h"
#include "format/qt_bytes.h"
#include "format/qt_hash.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define DAY 86400000000000ll

static void
sample(struct qt_manifest_hdr *h, struct qt_manifest_seg *s, uint32_t n)
{
    memset(h, 0, sizeof(*h));
    h->generation = 42;
    h->wal_checkpoint = 1000;
    h->next_segment_seq = 100;
    h->shard_duration_ns = DAY;
    h->n_segments = n;
    h->catalog_bytes = 777;
    for (uint32_t i = 0; i < n; i++) {
        int64_t start = (int64_t)(20770 + i / 3) * DAY;
        s[i] = (struct qt_manifest_seg){.shard_start_ns = start,
                                        .seq = i + 1,
                                        .file_bytes = 4096 + i,
                                        .file_xxh3 = 0xabc + i,
                                        .ts_min = start + 5,
                                        .ts_max = start + DAY - 1,
                                        .points = 1000u * i,
                                        .series = i,
                                        .level = i % 2};
    }
}

TEST(roundtrip)
{
    struct qt_manifest_hdr h, h2;
    struct qt_manifest_seg s[10], s2[10];
    sample(&h, s, 10);
    uint8_t buf[2048];
    size_t len;
    CHECK_OK(qt_manifest_encode(&h, s, 10, buf, sizeof(buf), &len));
    CHECK_EQ(len, qt_manifest_bound(10));
    CHECK_OK(qt_manifest_decode(buf, len, &h2, s2, 10));
    CHECK(memcmp(&h, &h2, sizeof(h)) == 0);
    CHECK(memcmp(s, s2, sizeof(s)) == 0);
    CHECK_RC(qt_manifest_decode(buf, len, &h2, s2, 9), QT_ELIMIT);
    CHECK_RC(qt_manifest_encode(&h, s, 10, buf, len - 1, &len), QT_ENOSPACE);
}

TEST(empty_manifest)
{
    struct qt_manifest_hdr h, h2;
    sample(&h, NULL, 0);
    uint8_t buf[64];
    size_t len;
    CHECK_OK(qt_manifest_encode(&h, NULL, 0, buf, sizeof(buf), &len));
    CHECK_OK(qt_manifest_decode(buf, len, &h2, NULL, 0));
    CHECK_EQ(h2.wal_checkpoint, 1000);
}

TEST(every_truncation_and_bit_flip_detected)
{
    struct qt_manifest_hdr h, h2;
    struct qt_manifest_seg s[3], s2[3];
    sample(&h, s, 3);
    uint8_t buf[512];
    size_t len;
    CHECK_OK(qt_manifest_encode(&h, s, 3, buf, sizeof(buf), &len));
    for (size_t cut = 0; cut < len; cut++)
        CHECK(qt_manifest_decode(buf, cut, &h2, s2, 3) != 0);
    for (size_t bit = 0; bit < len * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK(qt_manifest_decode(buf, len, &h2, s2, 3) != 0);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CHECK_OK(qt_manifest_decode(buf, len, &h2, s2, 3));
}

/* Re-seal a modified manifest with a valid checksum to reach the checks
 * behind it, as a hostile or buggy writer would. */
static void
reseal(uint8_t *buf, size_t len)
{
    qt_hash_store(buf + len - 8, qt_hash64(buf, len - 8));
}

TEST(hostile_contents_rejected)
{
    struct qt_manifest_hdr h, h2;
    struct qt_manifest_seg s[3], s2[3];
    sample(&h, s, 3);
    uint8_t buf[512], bad[512];
    size_t len;
    CHECK_OK(qt_manifest_encode(&h, s, 3, buf, sizeof(buf), &len));
    struct {
        size_t off;
        uint64_t val;
        int want;
    } cases[] = {
        {0, 0x12345678, QT_EMAGIC},    /* magic */
        {4, 99, QT_EVERSION},          /* version from the future */
        {32, 0, QT_ECORRUPT},          /* zero shard duration */
        {40, 4, QT_ETRUNC},            /* more entries than bytes */
        {40, 0xffffffff, QT_ECORRUPT}, /* count above limit */
        {56 + 8, 500, QT_ECORRUPT},    /* seq >= next_segment_seq */
        {56 + 32, 1, QT_ECORRUPT},     /* ts_min outside shard */
        {56 + 64 + 8, 1, QT_ECORRUPT}, /* entries out of order */
        {56 + 16, 0, QT_ECORRUPT},     /* empty file */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, buf, len);
        if (cases[i].off == 0 || cases[i].off == 4 || cases[i].off == 40)
            qt_store_le32(bad + cases[i].off, (uint32_t)cases[i].val);
        else
            qt_store_le64(bad + cases[i].off, cases[i].val);
        reseal(bad, len);
        qt_err_clear();
        CHECK_RC(qt_manifest_decode(bad, len, &h2, s2, 3), cases[i].want);
        CHECK(qt_err_detail()[0] != '\0');
    }
}
