/*
 * test_wal.c -- WAL record framing: round trips with and without LZ4 (and
 * in-place payloads), a log of many records parsed in sequence, every
 * truncation classified as a torn tail, every single-bit flip detected,
 * hostile headers (lengths, flags, LZ4 framing), the checksum matching
 * XXH3-64 of the concatenated bytes.  (run.sh runs this binary twice, once
 * per I/O backend; it does no I/O.)
 */
#include "format/qt_bytes.h"
#include "format/qt_hash.h"
#include "format/wal.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static uint8_t scratch[1 << 16];

static void
fill_payload(uint8_t *p, size_t n, uint64_t *rng, bool compressible)
{
    for (size_t i = 0; i < n; i++)
        p[i] = compressible ? (uint8_t)("air,district=xihu "[i % 18]) : (uint8_t)qt_test_rand(rng);
}

TEST(roundtrip_lz4_on_off)
{
    static uint8_t payload[20000], rec_buf[20100];
    uint64_t rng = qt_test_seed() ^ 0x3a1;
    for (int iter = 0; iter < 200; iter++) {
        size_t n = qt_test_rand(&rng) % sizeof(payload);
        bool comp = iter % 2 == 0;
        bool use_lz4 = iter % 3 != 0;
        fill_payload(payload, n, &rng, comp);
        size_t len = 0;
        uint64_t seq = qt_test_rand(&rng);
        CHECK_OK(qt_wal_record_encode(seq, payload, n, use_lz4 ? scratch : NULL, sizeof(scratch),
                                      rec_buf, sizeof(rec_buf), &len));
        CHECK(len <= qt_wal_record_bound(n));
        struct qt_wal_record r;
        CHECK_OK(qt_wal_record_read(rec_buf, len, 0, scratch, sizeof(scratch), &r));
        CHECK_EQ(r.seq, seq);
        CHECK_EQ(r.payload_len, n);
        CHECK_EQ(r.record_len, len);
        CHECK(n == 0 || memcmp(r.payload, payload, n) == 0);
        bool lz4 = (r.flags & QT_WAL_F_LZ4) != 0;
        if (!use_lz4 || !comp)
            CHECK(!lz4); /* off, or random bytes: LZ4 never saves */
        if (use_lz4 && comp && n >= 64)
            CHECK(lz4 && r.stored_len < n);
    }
}

TEST(in_place_payload)
{
    static uint8_t buf[4096];
    uint64_t rng = qt_test_seed();
    fill_payload(buf + QT_WAL_HEADER_SIZE, 1000, &rng, true);
    static uint8_t copy[1000];
    memcpy(copy, buf + QT_WAL_HEADER_SIZE, 1000);
    size_t len;
    CHECK_OK(qt_wal_record_encode(7, buf + QT_WAL_HEADER_SIZE, 1000, scratch, sizeof(scratch), buf,
                                  sizeof(buf), &len));
    struct qt_wal_record r;
    CHECK_OK(qt_wal_record_read(buf, len, 0, scratch, sizeof(scratch), &r));
    CHECK(r.flags & QT_WAL_F_LZ4);
    CHECK(memcmp(r.payload, copy, 1000) == 0);
}

TEST(log_of_records_then_torn_tail)
{
    static uint8_t log[1 << 16], payload[600];
    uint64_t rng = qt_test_seed() ^ 0x10;
    size_t off = 0, ends[64];
    int n = 0;
    for (; n < 64; n++) {
        size_t plen = qt_test_rand(&rng) % sizeof(payload), len;
        fill_payload(payload, plen, &rng, n % 2 == 0);
        CHECK_OK(qt_wal_record_encode((uint64_t)n + 1, payload, plen, scratch, sizeof(scratch),
                                      log + off, sizeof(log) - off, &len));
        off += len;
        ends[n] = off;
    }
    /* Parse all records in sequence, then cut inside the last one. */
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        struct qt_wal_record r;
        CHECK_OK(qt_wal_record_read(log, off, pos, scratch, sizeof(scratch), &r));
        CHECK_EQ(r.seq, (uint64_t)i + 1);
        pos += r.record_len;
        CHECK_EQ(pos, ends[i]);
    }
    struct qt_wal_record r;
    CHECK_RC(qt_wal_record_read(log, off, off, scratch, sizeof(scratch), &r), QT_ETRUNC);
    for (size_t cut = ends[n - 2]; cut < ends[n - 1]; cut++)
        CHECK_RC(qt_wal_record_read(log, cut, ends[n - 2], scratch, sizeof(scratch), &r),
                 QT_ETRUNC);
    /* Zero-filled preallocated space after the last record. */
    memset(log + off, 0, 64);
    CHECK_RC(qt_wal_record_read(log, off + 64, off, scratch, sizeof(scratch), &r), QT_EMAGIC);
}

TEST(every_truncation_is_torn_tail)
{
    static uint8_t payload[300], buf[400];
    uint64_t rng = qt_test_seed() ^ 0x77;
    for (int variant = 0; variant < 4; variant++) {
        fill_payload(payload, sizeof(payload), &rng, variant & 1);
        size_t len;
        CHECK_OK(qt_wal_record_encode(42, payload, sizeof(payload), (variant & 2) ? scratch : NULL,
                                      sizeof(scratch), buf, sizeof(buf), &len));
        for (size_t cut = 0; cut < len; cut++) {
            struct qt_wal_record r;
            CHECK_RC(qt_wal_record_read(buf, cut, 0, scratch, sizeof(scratch), &r), QT_ETRUNC);
        }
    }
}

TEST(every_bit_flip_detected)
{
    static uint8_t payload[48], buf[128];
    uint64_t rng = qt_test_seed() ^ 0xb17;
    for (int variant = 0; variant < 3; variant++) {
        size_t plen = variant == 2 ? 0 : sizeof(payload);
        fill_payload(payload, plen, &rng, variant == 0);
        size_t len;
        CHECK_OK(qt_wal_record_encode(0x0102030405060708ull, payload, plen, scratch,
                                      sizeof(scratch), buf, sizeof(buf), &len));
        CHECK(variant != 0 || (qt_load_le32(buf + 4) & QT_WAL_F_LZ4));
        for (size_t bit = 0; bit < len * 8; bit++) {
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            struct qt_wal_record r;
            int rc = qt_wal_record_read(buf, len, 0, scratch, sizeof(scratch), &r);
            CHECK(rc == QT_ECHECKSUM || rc == QT_EMAGIC || rc == QT_ECORRUPT || rc == QT_ETRUNC);
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        struct qt_wal_record r;
        CHECK_OK(qt_wal_record_read(buf, len, 0, scratch, sizeof(scratch), &r));
    }
}

TEST(checksum_is_xxh3_of_concatenation)
{
    uint8_t buf[64], cat[64];
    const uint8_t p[] = "hello wal";
    size_t len;
    CHECK_OK(qt_wal_record_encode(9, p, 9, NULL, 0, buf, sizeof(buf), &len));
    memcpy(cat, buf, 24);
    memcpy(cat + 24, p, 9);
    CHECK(qt_hash_load(buf + 24) == qt_hash64(cat, 33));
    CHECK_EQ(qt_load_le32(buf), QT_WAL_MAGIC);
    CHECK(memcmp(buf, "QTWL", 4) == 0);
}

/* Rewrite header fields of a record and refresh its checksum. */
static void
reseal(uint8_t *buf, uint32_t flags, uint32_t raw, uint32_t stored)
{
    uint8_t cat[256];
    qt_store_le32(buf + 4, flags);
    qt_store_le32(buf + 16, raw);
    qt_store_le32(buf + 20, stored);
    memcpy(cat, buf, 24);
    size_t n = stored < 200 ? stored : 0;
    memcpy(cat + 24, buf + 32, n);
    qt_hash_store(buf + 24, qt_hash64(cat, 24 + n));
}

TEST(hostile_headers)
{
    uint8_t buf[256];
    uint8_t p[100];
    memset(p, 'a', sizeof(p));
    size_t len;
    struct qt_wal_record r;
    CHECK_OK(qt_wal_record_encode(1, p, sizeof(p), NULL, 0, buf, sizeof(buf), &len));
    reseal(buf, 0x2, 100, 100); /* unknown flag */
    CHECK_RC(qt_wal_record_read(buf, len, 0, scratch, sizeof(scratch), &r), QT_ECORRUPT);
    reseal(buf, 0, 0xffffffffu, 100); /* huge raw_len */
    CHECK_RC(qt_wal_record_read(buf, len, 0, scratch, sizeof(scratch), &r), QT_ECORRUPT);
    reseal(buf, 0, 100, 99); /* stored != raw without LZ4 */
    CHECK_RC(qt_wal_record_read(buf, len, 0, scratch, sizeof(scratch), &r), QT_ECORRUPT);
    reseal(buf, QT_WAL_F_LZ4, 100, 100); /* LZ4 not smaller */
    CHECK_RC(qt_wal_record_read(buf, len, 0, scratch, sizeof(scratch), &r), QT_ECORRUPT);
    reseal(buf, QT_WAL_F_LZ4, 100, 0);
    CHECK_RC(qt_wal_record_read(buf, len, 0, scratch, sizeof(scratch), &r), QT_ECORRUPT);
    reseal(buf, QT_WAL_F_LZ4, 200, 100); /* valid checksum, garbage LZ4 stream */
    CHECK_RC(qt_wal_record_read(buf, len, 0, scratch, sizeof(scratch), &r), QT_ECORRUPT);
    reseal(buf, 0, QT_WAL_PAYLOAD_MAX, QT_WAL_PAYLOAD_MAX); /* past the end */
    CHECK_RC(qt_wal_record_read(buf, len, 0, scratch, sizeof(scratch), &r), QT_ETRUNC);
    /* Short prefixes: good magic -> torn, bad magic -> not a record. */
    CHECK_OK(qt_wal_record_encode(1, p, sizeof(p), NULL, 0, buf, sizeof(buf), &len));
    CHECK_RC(qt_wal_record_read(buf, 3, 0, scratch, sizeof(scratch), &r), QT_ETRUNC);
    buf[1] = 'X';
    CHECK_RC(qt_wal_record_read(buf, 3, 0, scratch, sizeof(scratch), &r), QT_EMAGIC);
    CHECK_RC(qt_wal_record_read(buf, len, 0, scratch, sizeof(scratch), &r), QT_EMAGIC);
}

TEST(scratch_and_cap_limits)
{
    static uint8_t p[4000], buf[4100];
    memset(p, 'z', sizeof(p));
    size_t len;
    struct qt_wal_record r;
    CHECK_RC(qt_wal_record_encode(1, p, sizeof(p), NULL, 0, buf, sizeof(p) + 31, &len),
             QT_ENOSPACE);
    CHECK_OK(
        qt_wal_record_encode(1, p, sizeof(p), scratch, sizeof(scratch), buf, sizeof(buf), &len));
    CHECK(qt_load_le32(buf + 4) & QT_WAL_F_LZ4);
    CHECK_RC(qt_wal_record_read(buf, len, 0, scratch, sizeof(p) - 1, &r), QT_ENOSPACE);
    CHECK_RC(qt_wal_record_read(buf, len, 0, NULL, 0, &r), QT_ENOSPACE);
    /* A tiny scratch only loses compression. */
    CHECK_OK(qt_wal_record_encode(1, p, sizeof(p), scratch, 4, buf, sizeof(buf), &len));
    CHECK_EQ(len, QT_WAL_HEADER_SIZE + sizeof(p));
    CHECK_RC(qt_wal_record_encode(1, p, QT_WAL_PAYLOAD_MAX + 1, NULL, 0, buf, sizeof(buf), &len),
             QT_ELIMIT);
}

TEST(largest_record)
{
    uint8_t *p = malloc(QT_WAL_PAYLOAD_MAX);
    uint8_t *buf = malloc(QT_WAL_RECORD_MAX);
    CHECK(p != NULL && buf != NULL);
    uint64_t rng = qt_test_seed();
    fill_payload(p, QT_WAL_PAYLOAD_MAX, &rng, false);
    size_t len = 0;
    struct qt_wal_record r;
    int rc = qt_wal_record_encode(5, p, QT_WAL_PAYLOAD_MAX, NULL, 0, buf, QT_WAL_RECORD_MAX, &len);
    int rc2 = rc == 0 ? qt_wal_record_read(buf, len, 0, NULL, 0, &r) : rc;
    bool same = rc2 == 0 && memcmp(r.payload, p, QT_WAL_PAYLOAD_MAX) == 0;
    free(p);
    free(buf);
    CHECK_OK(rc);
    CHECK_OK(rc2);
    CHECK_EQ(len, QT_WAL_RECORD_MAX);
    CHECK(same);
}
