/*
 * test_block.c -- TS and VALUE blocks: randomised round trips of every
 * vtype with and without presence and LZ4, header fields and statistics
 * against brute force (first/last at the first/last present row, ts bounds
 * of present rows), every truncation, every single-bit flip on small
 * blocks, hostile headers (each field pushed out of range), payload
 * damage behind a valid checksum, encoder argument errors, caller buffer
 * limits.
 */
#include "format/block.h"
#include "format/qt_assert.h"
#include "format/qt_bytes.h"
#include "format/qt_hash.h"
#include "format/tscodec.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_MAX QT_BLOCK_POINTS_MAX

static int64_t ts[N_MAX], ts2[N_MAX];
static double fv[N_MAX];
static int64_t iv[N_MAX];
static uint8_t bv[N_MAX], pres[N_MAX], pres2[N_MAX];
static struct qt_str sv[N_MAX];
static char text[N_MAX * 48];
static union {
    double f[N_MAX];
    int64_t i[N_MAX];
    uint8_t b[N_MAX];
    struct qt_str s[N_MAX];
} dec;
static uint8_t blk[QT_BLOCK_VALUE_HEADER_SIZE + N_MAX * 64 + 4096];
static uint8_t scratch[sizeof(blk)];

static void
gen_ts(uint64_t *rng, uint32_t n)
{
    uint64_t mode = qt_test_rand(rng) % 4;
    int64_t t =
        mode == 3 ? INT64_MIN + 5 : 1700000000000000000 + (int64_t)(qt_test_rand(rng) % 1000);
    for (uint32_t i = 0; i < n; i++) {
        ts[i] = t;
        int64_t step = mode == 0
                           ? 10000000000
                           : 1 + (int64_t)(qt_test_rand(rng) % (mode == 1 ? 1000 : 1000000007));
        t += step;
    }
    if (mode == 2 && n > 1) /* reach the top of the range */
        for (uint32_t i = 0; i < n; i++)
            ts[i] = INT64_MAX - (int64_t)(n - 1 - i) * 3;
}

/* Values for n present entries of vtype; `kind` varies the distribution. */
static const void *
gen_values(uint64_t *rng, enum qt_vtype vt, uint32_t n, int kind)
{
    size_t tu = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t r = qt_test_rand(rng);
        switch (vt) {
        case QT_VT_FLOAT:
            fv[i] = kind == 0   ? (double)(int64_t)(r % 100000) / 100.0
                    : kind == 1 ? qt_bits_f64(r)
                                : (r % 5 == 0 ? NAN : 20.5);
            break;
        case QT_VT_INT:
            iv[i] = kind == 0 ? (int64_t)(r % 1000) : kind == 1 ? (int64_t)r : INT64_MAX;
            break;
        case QT_VT_BOOL: bv[i] = kind == 2 ? 1 : (uint8_t)(r & 1); break;
        case QT_VT_STRING: {
            int len = snprintf(text + tu, 48, "pump %u pressure low xihu-%04u", (unsigned)(r % 7),
                               (unsigned)(kind == 0 ? r % 3 : r % 9999));
            sv[i] = (struct qt_str){text + tu, (uint32_t)(kind == 1 ? r % 4 : (uint64_t)len)};
            tu += (size_t)len;
            break;
        }
        }
    }
    return vt == QT_VT_FLOAT  ? (const void *)fv
           : vt == QT_VT_INT  ? (const void *)iv
           : vt == QT_VT_BOOL ? (const void *)bv
                              : (const void *)sv;
}

static bool
value_equal(enum qt_vtype vt, const void *a, uint32_t i)
{
    switch (vt) {
    case QT_VT_FLOAT: return qt_f64_bits(((const double *)a)[i]) == qt_f64_bits(dec.f[i]);
    case QT_VT_INT: return ((const int64_t *)a)[i] == dec.i[i];
    case QT_VT_BOOL: return ((const uint8_t *)a)[i] == dec.b[i];
    case QT_VT_STRING: {
        const struct qt_str *s = a;
        return s[i].len == dec.s[i].len && memcmp(s[i].p, dec.s[i].p, s[i].len) == 0;
    }
    }
    return false;
}

TEST(ts_roundtrip)
{
    uint64_t rng = qt_test_seed() ^ 0x75;
    for (int iter = 0; iter < 300; iter++) {
        uint32_t n = 1 + (uint32_t)(qt_test_rand(&rng) % (iter % 3 ? 100 : N_MAX));
        gen_ts(&rng, n);
        bool lz4 = iter % 2;
        size_t len = 0;
        uint64_t gid = qt_test_rand(&rng);
        CHECK_OK(qt_block_encode_ts(gid, ts, n, lz4 ? scratch : NULL, sizeof(scratch), blk,
                                    qt_block_ts_bound(n), &len));
        CHECK(len <= qt_block_ts_bound(n) && len % 8 == 0);
        struct qt_block_info in;
        CHECK_OK(qt_block_decode_ts(blk, len, scratch, sizeof(scratch), ts2, n, &in));
        CHECK(memcmp(ts, ts2, n * sizeof(ts[0])) == 0);
        CHECK_OK(qt_block_check_ts(&in, ts2));
        CHECK(in.kind == QT_BLOCK_TS && in.id == gid && in.n_rows == n && in.block_len == len);
        CHECK(in.ts_min == ts[0] && in.ts_max == ts[n - 1] && in.version == QT_FORMAT_VERSION);
        CHECK(!lz4 ? (in.flags & QT_BLOCK_F_LZ4) == 0 : true);
        CHECK(((in.flags & QT_BLOCK_F_LZ4) != 0) == (in.stored_len < in.raw_len));
    }
}

/* Random presence with n_values ones among n_rows (n_values >= 1). */
static void
gen_presence(uint64_t *rng, uint32_t n_rows, uint32_t n_values)
{
    memset(pres, 0, n_rows);
    for (uint32_t k = 0; k < n_values; k++) {
        uint32_t i = (uint32_t)(qt_test_rand(rng) % n_rows);
        while (pres[i])
            i = (i + 1) % n_rows;
        pres[i] = 1;
    }
}

TEST(values_roundtrip_and_stats)
{
    uint64_t rng = qt_test_seed() ^ 0x7a1;
    for (int iter = 0; iter < 800; iter++) {
        enum qt_vtype vt = (enum qt_vtype)(1 + iter % 4);
        uint32_t n_rows = 1 + (uint32_t)(qt_test_rand(&rng) % (iter % 5 ? 200 : N_MAX));
        uint32_t n_values =
            (iter / 4) % 3 == 0 ? n_rows : 1 + (uint32_t)(qt_test_rand(&rng) % n_rows);
        gen_ts(&rng, n_rows);
        gen_presence(&rng, n_rows, n_values);
        const void *v = gen_values(&rng, vt, n_values, (int)(qt_test_rand(&rng) % 3));
        bool lz4 = (iter / 2) % 2;
        const uint8_t *p = n_values == n_rows && iter % 7 ? NULL : pres;
        size_t bound = qt_block_values_bound(vt, v, n_values, n_rows), len = 0;
        uint64_t sid = qt_test_rand(&rng);
        CHECK_OK(qt_block_encode_values(sid, vt, v, n_values, p, n_rows, ts, lz4 ? scratch : NULL,
                                        sizeof(scratch), blk, bound, &len));
        CHECK(len <= bound && len % 8 == 0);
        struct qt_block_info in;
        CHECK_OK(qt_block_decode_values(blk, len, scratch, sizeof(scratch), ts, n_rows, &dec, pres2,
                                        N_MAX, &in));
        CHECK(in.kind == QT_BLOCK_VALUE && in.id == sid && in.vtype == vt);
        CHECK(in.n_rows == n_rows && in.n_values == n_values && in.block_len == len);
        CHECK(((in.flags & QT_BLOCK_F_PRESENCE) != 0) == (n_values < n_rows));
        CHECK(memcmp(pres2, pres, n_rows) == 0);
        for (uint32_t i = 0; i < n_values; i++)
            CHECK(value_equal(vt, v, i));
        /* Brute force: ts of the first/last present rows; stats recomputed. */
        uint32_t first = 0, last = n_rows - 1;
        while (!pres[first])
            first++;
        while (!pres[last])
            last--;
        CHECK(in.ts_min == ts[first] && in.ts_max == ts[last]);
        CHECK_OK(qt_block_check_stats(&in, &dec));
        struct qt_stats want;
        CHECK_OK(qt_stats_compute(vt, v, n_values, &want));
        CHECK(qt_stats_equal(&want, &in.stats));
        CHECK_EQ(((in.flags & QT_BLOCK_F_SUM_OVERFLOW) != 0), want.sum_overflow);
    }
}

TEST(stats_conventions_in_blocks)
{
    size_t len;
    struct qt_block_info in;
    for (uint32_t i = 0; i < 4; i++) {
        ts[i] = (int64_t)i;
        fv[i] = NAN;
        iv[i] = INT64_MAX;
    }
    CHECK_OK(qt_block_encode_values(1, QT_VT_FLOAT, fv, 4, NULL, 4, ts, NULL, 0, blk, sizeof(blk),
                                    &len));
    CHECK_OK(qt_block_read_header(blk, len, &in));
    CHECK(qt_f64_bits(in.stats.min.f) == QT_STATS_NAN_BITS && isnan(in.stats.sum.f));
    CHECK_OK(
        qt_block_encode_values(1, QT_VT_INT, iv, 4, NULL, 4, ts, NULL, 0, blk, sizeof(blk), &len));
    CHECK_OK(qt_block_read_header(blk, len, &in));
    CHECK((in.flags & QT_BLOCK_F_SUM_OVERFLOW) && in.stats.sum_overflow && in.stats.sum.i == 0);
    /* One present row in the middle: first == last, ts bounds equal. */
    memset(pres, 0, 4);
    pres[2] = 1;
    iv[0] = -7;
    CHECK_OK(
        qt_block_encode_values(1, QT_VT_INT, iv, 1, pres, 4, ts, NULL, 0, blk, sizeof(blk), &len));
    CHECK_OK(qt_block_decode_values(blk, len, NULL, 0, ts, 4, &dec, pres2, N_MAX, &in));
    CHECK(in.ts_min == 2 && in.ts_max == 2 && in.stats.first.i == -7 && in.stats.sum.i == -7);
}

TEST(lz4_on_off)
{
    uint64_t rng = qt_test_seed() ^ 0x124;
    uint32_t n = 2000;
    for (uint32_t i = 0; i < n; i++)
        ts[i] = 1700000000000000000 + (int64_t)i * 1000000000;
    const void *v = gen_values(&rng, QT_VT_STRING, n, 2); /* repetitive text */
    size_t on = 0, off = 0;
    struct qt_block_info a, b;
    CHECK_OK(qt_block_encode_values(5, QT_VT_STRING, v, n, NULL, n, ts, scratch, sizeof(scratch),
                                    blk, sizeof(blk), &on));
    CHECK_OK(
        qt_block_decode_values(blk, on, scratch, sizeof(scratch), ts, n, &dec, pres2, N_MAX, &a));
    CHECK(a.flags & QT_BLOCK_F_LZ4);
    CHECK(a.stored_len < a.raw_len);
    /* Decoded strings point into scratch (LZ4): valid while scratch is. */
    CHECK((const uint8_t *)dec.s[0].p >= scratch &&
          (const uint8_t *)dec.s[0].p < scratch + sizeof(scratch));
    CHECK_RC(qt_block_decode_values(blk, on, scratch, a.raw_len - 1, ts, n, &dec, pres2, N_MAX, &a),
             QT_ENOSPACE);
    CHECK_OK(qt_block_encode_values(5, QT_VT_STRING, v, n, NULL, n, ts, NULL, 0, blk, sizeof(blk),
                                    &off));
    CHECK_OK(qt_block_decode_values(blk, off, NULL, 0, ts, n, &dec, pres2, N_MAX, &b));
    CHECK((b.flags & QT_BLOCK_F_LZ4) == 0 && b.stored_len == b.raw_len && off > on);
    CHECK((const uint8_t *)dec.s[0].p >= blk && (const uint8_t *)dec.s[0].p < blk + off);
    CHECK(a.raw_len == b.raw_len && qt_stats_equal(&a.stats, &b.stats));
}

/* Small blocks of every shape for the exhaustive truncation/flip tests. */
static size_t
small_block(int shape, uint8_t *out, size_t cap)
{
    uint64_t rng = 0x5a11 + (uint64_t)shape;
    uint32_t n = 9;
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++)
        ts[i] = 1000 + 10 * (int64_t)i;
    uint8_t *s = shape % 2 ? scratch : NULL;
    if (shape < 2) {
        qt_assert(qt_block_encode_ts(77, ts, n, s, sizeof(scratch), out, cap, &len) == 0);
        return len;
    }
    enum qt_vtype vt = (enum qt_vtype)(1 + (shape - 2) / 4);
    bool presence = ((shape - 2) / 2) % 2; /* shapes 2,3 none; 4,5 presence; ... */
    uint32_t nv = presence ? 5 : n;
    gen_presence(&rng, n, nv);
    const void *v = gen_values(&rng, vt, nv, vt == QT_VT_STRING ? 2 : 0);
    qt_assert(qt_block_encode_values(88, vt, v, nv, presence ? pres : NULL, n, ts, s,
                                     sizeof(scratch), out, cap, &len) == 0);
    return len;
}

#define SHAPES 18

static int
decode_any(const uint8_t *b, size_t len)
{
    struct qt_block_info in;
    int rc = qt_block_read_header(b, len, &in);
    if (rc != 0)
        return rc;
    if (in.kind == QT_BLOCK_TS)
        return qt_block_decode_ts(b, len, scratch, sizeof(scratch), ts2, N_MAX, &in);
    return qt_block_decode_values(b, len, scratch, sizeof(scratch), NULL, 0, &dec, pres2, N_MAX,
                                  &in);
}

TEST(every_truncation_detected)
{
    static uint8_t b[4096];
    for (int shape = 0; shape < SHAPES; shape++) {
        size_t len = small_block(shape, b, sizeof(b));
        CHECK_OK(decode_any(b, len));
        for (size_t cut = 0; cut < len; cut++)
            CHECK_RC(decode_any(b, cut), QT_ETRUNC);
    }
}

TEST(every_bit_flip_detected)
{
    static uint8_t b[4096];
    int lz4_shapes = 0;
    for (int shape = 0; shape < SHAPES; shape++) {
        size_t len = small_block(shape, b, sizeof(b));
        lz4_shapes += (qt_load_le16(b + 2) & QT_BLOCK_F_LZ4) != 0;
        for (size_t bit = 0; bit < len * 8; bit++) {
            b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            struct qt_block_info in;
            int rc = qt_block_verify(b, len, &in);
            b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            if (rc == 0) {
                qt_test_fail_at(__FILE__, __LINE__, "shape %d: flip of bit %zu undetected", shape,
                                bit);
                return;
            }
        }
        CHECK_OK(decode_any(b, len));
    }
    CHECK(lz4_shapes >= 1);
}

/* Recompute the checksum of a block of (original) length len. */
static void
reseal(uint8_t *b, size_t len)
{
    qt_hash_store(b + len - 8, qt_hash64(b, len - 8));
}

struct patch {
    int shape;    /* small_block shape */
    size_t off;   /* byte offset */
    int width;    /* 1, 2, 4, 8 */
    uint64_t val; /* new value */
    int want;     /* expected rc from read_header or verify */
};

static void
store(uint8_t *p, int width, uint64_t v)
{
    switch (width) {
    case 1: p[0] = (uint8_t)v; break;
    case 2: qt_store_le16(p, (uint16_t)v); break;
    case 4: qt_store_le32(p, (uint32_t)v); break;
    default: qt_store_le64(p, v); break;
    }
}

TEST(hostile_headers)
{
    /* shape 0: TS; 3: FLOAT+LZ4; 4/5: FLOAT with presence; 6: INT; 10: BOOL; 14: STRING */
    const struct patch ps[] = {
        {0, 0, 1, 3, QT_ECORRUPT}, /* kind */
        {0, 0, 1, 0, QT_ECORRUPT},
        {0, 1, 1, 0, QT_ECORRUPT}, /* version 0 */
        {0, 1, 1, QT_FORMAT_VERSION + 1, QT_EVERSION},
        {0, 2, 2, 0x8, QT_ECORRUPT},                 /* unknown flag */
        {0, 2, 2, QT_BLOCK_F_PRESENCE, QT_ECORRUPT}, /* VALUE flag on TS */
        {0, 43, 1, 1, QT_ECORRUPT},                  /* reserved */
        {0, 4, 4, 0, QT_ECORRUPT},                   /* n_rows 0 */
        {0, 4, 4, N_MAX + 1, QT_ECORRUPT},
        {0, 4, 4, UINT32_MAX, QT_ECORRUPT},
        {0, 16, 8, 2000, QT_ECORRUPT},       /* ts_min > ts_max */
        {0, 24, 8, 1001, QT_ECORRUPT},       /* range too short for 9 rows */
        {0, 32, 4, UINT32_MAX, QT_ECORRUPT}, /* raw_len huge */
        {0, 32, 4, 1, QT_ECORRUPT},
        {0, 36, 4, UINT32_MAX, QT_ECORRUPT},     /* stored != raw without LZ4 */
        {0, 40, 1, QT_ENC_INT_RAW, QT_ECORRUPT}, /* encoding of another family */
        {0, 40, 1, 0, QT_ECORRUPT},
        {0, 41, 1, QT_VT_INT, QT_ECORRUPT}, /* vtype on TS */
        {0, 44, 4, 3, QT_ECORRUPT},         /* n_values on TS */
        {1, 36, 4, 0, QT_ECORRUPT},         /* LZ4 with stored 0 */
        {6, 41, 1, 0, QT_ECORRUPT},         /* vtype */
        {6, 41, 1, 5, QT_ECORRUPT},
        {6, 41, 1, QT_VT_FLOAT, QT_ECORRUPT}, /* INT encoding under FLOAT */
        {6, 44, 4, 0, QT_ECORRUPT},           /* n_values 0 */
        {6, 44, 4, 10, QT_ECORRUPT},          /* n_values > n_rows */
        {6, 44, 4, 8, QT_ECORRUPT},           /* fewer values without presence flag */
        {6, 48, 4, 4, QT_ECORRUPT},           /* presence_len without presence */
        {6, 42, 1, QT_ENC_BOOL_BITMAP, QT_ECORRUPT},
        {6, 52, 4, 1, QT_ECORRUPT},                      /* reserved */
        {6, 56, 8, (uint64_t)INT64_MAX, QT_ECORRUPT},    /* min > max */
        {6, 2, 2, QT_BLOCK_F_SUM_OVERFLOW, QT_ECORRUPT}, /* overflow impossible here */
        {4, 48, 4, 0, QT_ECORRUPT},                      /* presence without length */
        {4, 48, 4, UINT32_MAX, QT_ECORRUPT},
        {4, 42, 1, 0, QT_ECORRUPT}, /* presence encoding missing */
        {4, 42, 1, QT_ENC_INT_RAW, QT_ECORRUPT},
        {4, 44, 4, 9, QT_ECORRUPT},                      /* all values but presence flag */
        {4, 24, 8, 1000, QT_ECORRUPT},                   /* 5 values in a 0-ns range */
        {10, 56, 8, 2, QT_ECORRUPT},                     /* bool min 2 */
        {10, 72, 8, 100, QT_ECORRUPT},                   /* bool sum > count */
        {14, 64, 8, 1, QT_ECORRUPT},                     /* string slot set */
        {2, 2, 2, QT_BLOCK_F_SUM_OVERFLOW, QT_ECORRUPT}, /* overflow flag on FLOAT */
    };
    static uint8_t b[4096];
    for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
        size_t len = small_block(ps[k].shape, b, sizeof(b));
        store(b + ps[k].off, ps[k].width, ps[k].val);
        reseal(b, len);
        struct qt_block_info in;
        int rc = qt_block_verify(b, len, &in);
        if (rc != ps[k].want) {
            qt_test_fail_at(__FILE__, __LINE__, "patch %zu: rc %d (%s) want %d", k, rc,
                            qt_err_detail(), ps[k].want);
            return;
        }
    }
    /* Padding byte set behind a valid checksum. */
    size_t len = small_block(0, b, sizeof(b));
    struct qt_block_info in;
    CHECK_OK(qt_block_read_header(b, len, &in));
    if (in.header_len + in.stored_len < len - 8) {
        b[len - 9] = 1;
        reseal(b, len);
        CHECK_RC(qt_block_verify(b, len, &in), QT_ECORRUPT);
    }
}

TEST(payload_damage_behind_valid_checksum)
{
    static uint8_t b[4096];
    struct qt_block_info in;
    /* Value count byte of the codec payload (uncompressed INT, no presence). */
    size_t len = small_block(6, b, sizeof(b));
    CHECK_OK(qt_block_read_header(b, len, &in));
    b[in.header_len] = 8; /* varint(n): 9 -> 8 */
    reseal(b, len);
    CHECK_RC(decode_any(b, len), QT_ECORRUPT);
    /* Encoding byte of the payload differs from the header's. */
    len = small_block(6, b, sizeof(b));
    b[in.header_len + 1] ^= 1;
    reseal(b, len);
    CHECK(decode_any(b, len) != 0);
    /* LZ4 stream garbage (a string block whose text LZ4 always shrinks). */
    len = small_block(17, b, sizeof(b));
    CHECK_OK(qt_block_read_header(b, len, &in));
    CHECK(in.flags & QT_BLOCK_F_LZ4);
    memset(b + in.header_len, 0xff, in.stored_len);
    reseal(b, len);
    CHECK_RC(decode_any(b, len), QT_ECORRUPT);
    /* first differs from the decoded first value but is plausible. */
    for (uint32_t i = 0; i < 4; i++) {
        ts[i] = i;
        iv[i] = 10 + (int64_t)i;
    }
    CHECK_OK(qt_block_encode_values(3, QT_VT_INT, iv, 4, NULL, 4, ts, NULL, 0, b, sizeof(b), &len));
    qt_store_le64(b + 80, 11); /* first: 10 -> 11 */
    reseal(b, len);
    CHECK_OK(qt_block_read_header(b, len, &in));
    CHECK_RC(decode_any(b, len), QT_ECORRUPT);
    /* sum differs but is plausible: only the O(n) check sees it. */
    CHECK_OK(qt_block_encode_values(3, QT_VT_INT, iv, 4, NULL, 4, ts, NULL, 0, b, sizeof(b), &len));
    qt_store_le64(b + 72, 47); /* 10+11+12+13 = 46 */
    reseal(b, len);
    CHECK_OK(qt_block_decode_values(b, len, NULL, 0, ts, 4, &dec, pres2, N_MAX, &in));
    CHECK_RC(qt_block_check_stats(&in, &dec), QT_ECORRUPT);
    /* Wrong TS column for the cross-check. */
    CHECK_OK(qt_block_encode_values(3, QT_VT_INT, iv, 4, NULL, 4, ts, NULL, 0, b, sizeof(b), &len));
    ts2[0] = 1, ts2[1] = 2, ts2[2] = 3, ts2[3] = 4;
    CHECK_RC(qt_block_decode_values(b, len, NULL, 0, ts2, 4, &dec, pres2, N_MAX, &in), QT_ECORRUPT);
    CHECK_RC(qt_block_decode_values(b, len, NULL, 0, ts, 3, &dec, pres2, N_MAX, &in), QT_ECORRUPT);
    /* Kind mismatch and caller capacity. */
    CHECK_RC(qt_block_decode_ts(b, len, NULL, 0, ts2, N_MAX, &in), QT_ECORRUPT);
    CHECK_RC(qt_block_decode_values(b, len, NULL, 0, ts, 4, &dec, pres2, 3, &in), QT_ENOSPACE);
    /* Presence column with a different popcount (uncompressed, resealed). */
    len = small_block(4, b, sizeof(b));
    CHECK_OK(qt_block_read_header(b, len, &in));
    CHECK((in.flags & QT_BLOCK_F_LZ4) == 0);
    b[in.header_len + in.presence_len - 1] ^= 0x01; /* a presence bit */
    reseal(b, len);
    CHECK(decode_any(b, len) != 0);
}

TEST(encoder_argument_errors)
{
    size_t len;
    for (uint32_t i = 0; i < 8; i++) {
        ts[i] = (int64_t)i * 10;
        iv[i] = (int64_t)i;
        bv[i] = 1;
        pres[i] = 1;
    }
    CHECK_RC(qt_block_encode_ts(1, ts, 0, NULL, 0, blk, sizeof(blk), &len), QT_EINVAL);
    CHECK_RC(qt_block_encode_ts(1, ts, N_MAX + 1, NULL, 0, blk, sizeof(blk), &len), QT_EINVAL);
    ts[3] = ts[2];
    CHECK_RC(qt_block_encode_ts(1, ts, 8, NULL, 0, blk, sizeof(blk), &len), QT_EINVAL);
    CHECK_RC(
        qt_block_encode_values(1, QT_VT_INT, iv, 8, NULL, 8, ts, NULL, 0, blk, sizeof(blk), &len),
        QT_EINVAL);
    ts[3] = 30;
    CHECK_RC(qt_block_encode_ts(1, ts, 8, NULL, 0, blk, qt_block_ts_bound(8) - 1, &len),
             QT_ENOSPACE);
    CHECK_RC(
        qt_block_encode_values(1, QT_VT_INT, iv, 7, NULL, 8, ts, NULL, 0, blk, sizeof(blk), &len),
        QT_EINVAL); /* fewer values, no presence */
    CHECK_RC(
        qt_block_encode_values(1, QT_VT_INT, iv, 7, pres, 8, ts, NULL, 0, blk, sizeof(blk), &len),
        QT_EINVAL); /* presence has 8 ones */
    pres[2] = 2;
    CHECK_RC(
        qt_block_encode_values(1, QT_VT_INT, iv, 8, pres, 8, ts, NULL, 0, blk, sizeof(blk), &len),
        QT_EINVAL);
    pres[2] = 1;
    CHECK_RC(
        qt_block_encode_values(1, QT_VT_INT, iv, 0, pres, 8, ts, NULL, 0, blk, sizeof(blk), &len),
        QT_EINVAL);
    CHECK_RC(qt_block_encode_values(1, (enum qt_vtype)7, iv, 8, NULL, 8, ts, NULL, 0, blk,
                                    sizeof(blk), &len),
             QT_EINVAL);
    bv[4] = 2;
    CHECK_RC(
        qt_block_encode_values(1, QT_VT_BOOL, bv, 8, NULL, 8, ts, NULL, 0, blk, sizeof(blk), &len),
        QT_EINVAL);
    size_t bound = qt_block_values_bound(QT_VT_INT, iv, 8, 8);
    CHECK_RC(
        qt_block_encode_values(1, QT_VT_INT, iv, 8, NULL, 8, ts, NULL, 0, blk, bound - 1, &len),
        QT_ENOSPACE);
    CHECK_OK(qt_block_encode_values(1, QT_VT_INT, iv, 8, pres, 8, ts, NULL, 0, blk, bound, &len));
    /* An all-ones presence array stores no presence column. */
    struct qt_block_info in;
    CHECK_OK(qt_block_read_header(blk, len, &in));
    CHECK((in.flags & QT_BLOCK_F_PRESENCE) == 0 && in.presence_len == 0);
}

/* Assemble a TS block by hand from the documented layout (DESIGN.md
 * "Blocks"), with any timestamp column the codec accepts. */
static size_t
handmade_ts_block(const int64_t *t, uint32_t n, uint8_t *out)
{
    size_t raw = 0;
    qt_assert(qt_ts_encode(t, n, out + 48, 4096, &raw) == 0);
    memset(out, 0, 48);
    out[0] = QT_BLOCK_TS;
    out[1] = QT_FORMAT_VERSION;
    qt_store_le32(out + 4, n);
    qt_store_le64(out + 8, 99);
    qt_store_le64(out + 16, (uint64_t)t[0]);
    qt_store_le64(out + 24, (uint64_t)t[n - 1]);
    qt_store_le32(out + 32, (uint32_t)raw);
    qt_store_le32(out + 36, (uint32_t)raw);
    out[40] = out[48 + 1]; /* encoding byte after varint(n < 128) */
    size_t body = 48 + ((raw + 7) & ~(size_t)7);
    memset(out + 48 + raw, 0, body - 48 - raw);
    qt_hash_store(out + body, qt_hash64(out, body));
    return body + 8;
}

TEST(handmade_block_matches_layout_and_order_check)
{
    static uint8_t b[8192], e[8192];
    int64_t t[6] = {100, 110, 120, 130, 140, 150};
    size_t len = handmade_ts_block(t, 6, b), elen = 0;
    CHECK_OK(qt_block_encode_ts(99, t, 6, NULL, 0, e, sizeof(e), &elen));
    CHECK_EQ(len, elen);
    CHECK(memcmp(b, e, len) == 0); /* the encoder writes exactly the documented bytes */
    /* Out of order but with the right ends: decodes (O(1) checks), and the
     * O(n) order check catches it. */
    int64_t bad[6] = {100, 130, 120, 110, 140, 150};
    len = handmade_ts_block(bad, 6, b);
    struct qt_block_info in;
    CHECK_OK(qt_block_decode_ts(b, len, NULL, 0, ts2, N_MAX, &in));
    CHECK_RC(qt_block_check_ts(&in, ts2), QT_ECORRUPT);
    int64_t dup[6] = {100, 110, 110, 130, 140, 150};
    len = handmade_ts_block(dup, 6, b);
    CHECK_OK(qt_block_decode_ts(b, len, NULL, 0, ts2, N_MAX, &in));
    CHECK_RC(qt_block_check_ts(&in, ts2), QT_ECORRUPT);
    /* Ends that disagree with the header are caught by the decoder. */
    int64_t ends[6] = {100, 110, 120, 130, 140, 150};
    len = handmade_ts_block(ends, 6, b);
    qt_store_le64(b + 24, 160);
    reseal(b, len);
    CHECK_RC(qt_block_decode_ts(b, len, NULL, 0, ts2, N_MAX, &in), QT_ECORRUPT);
}
