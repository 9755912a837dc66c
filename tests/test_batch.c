/*
 * test_batch.c -- write batch payloads: randomised round trips (every vtype,
 * NaN payloads, extreme timestamps, empty strings), zero-copy pointers,
 * every truncation, bit flips (no crash; accepted mutants re-encode to the
 * same values), limits at and past each bound, hostile prefixes and counts.
 */
#include "format/batch.h"
#include "format/qt_bytes.h"
#include "format/wal.h"
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T_LINES  64
#define T_FIELDS (T_LINES * 8)

struct gen {
    struct qt_batch_line lines[T_LINES];
    struct qt_batch_field fields[T_FIELDS];
    char text[64 * 1024];
    size_t text_used;
    uint32_t n_lines;
};

static const char *
gen_bytes(struct gen *g, uint64_t *rng, uint32_t n)
{
    char *p = g->text + g->text_used;
    for (uint32_t i = 0; i < n; i++)
        p[i] = (char)qt_test_rand(rng); /* any byte, including NUL */
    g->text_used += n;
    return p;
}

static const int64_t ts_specials[] = {INT64_MIN, INT64_MAX, 0, -1, 1700000000000000000};

static void
gen_field(struct gen *g, uint64_t *rng, struct qt_batch_field *f, uint32_t key_len)
{
    uint32_t name_len = 1 + (uint32_t)(qt_test_rand(rng) % 12);
    (void)key_len;
    f->name = gen_bytes(g, rng, name_len);
    f->name_len = name_len;
    f->vtype = (enum qt_vtype)(1 + qt_test_rand(rng) % 4);
    uint64_t r = qt_test_rand(rng);
    switch (f->vtype) {
    case QT_VT_FLOAT:
        /* Raw bit patterns: NaN payloads, -0.0, infinities, subnormals. */
        f->v.f = (r & 3) == 0 ? qt_bits_f64(qt_test_rand(rng)) : (double)(int64_t)r / 1000.0;
        break;
    case QT_VT_INT: f->v.i = (r & 3) == 0 ? ts_specials[r % 5] : (int64_t)r >> (r % 64); break;
    case QT_VT_BOOL: f->v.b = (uint8_t)(r & 1); break;
    case QT_VT_STRING:
        f->v.s.len = (uint32_t)(r % 40);
        f->v.s.p = gen_bytes(g, rng, f->v.s.len);
        break;
    }
}

static void
gen_batch(struct gen *g, uint64_t *rng, uint32_t n_lines)
{
    uint32_t nf = 0;
    g->text_used = 0;
    g->n_lines = n_lines;
    for (uint32_t i = 0; i < n_lines; i++) {
        struct qt_batch_line *l = &g->lines[i];
        uint64_t r = qt_test_rand(rng);
        l->key_len = 1 + (uint32_t)(r % 60);
        l->key = gen_bytes(g, rng, l->key_len);
        l->ts = (r & 7) == 0 ? ts_specials[(r >> 3) % 5]
                             : 1700000000000000000 + (int64_t)(qt_test_rand(rng) % 1000000);
        l->n_fields = 1 + (uint32_t)(qt_test_rand(rng) % 8);
        l->fields = &g->fields[nf];
        for (uint32_t k = 0; k < l->n_fields; k++)
            gen_field(g, rng, &g->fields[nf + k], l->key_len);
        nf += l->n_fields;
    }
}

static bool
field_equal(const struct qt_batch_field *a, const struct qt_batch_field *b)
{
    if (a->name_len != b->name_len || memcmp(a->name, b->name, a->name_len) != 0)
        return false;
    if (a->vtype != b->vtype)
        return false;
    switch (a->vtype) {
    case QT_VT_FLOAT: return qt_f64_bits(a->v.f) == qt_f64_bits(b->v.f);
    case QT_VT_INT: return a->v.i == b->v.i;
    case QT_VT_BOOL: return a->v.b == b->v.b;
    case QT_VT_STRING:
        return a->v.s.len == b->v.s.len &&
               (a->v.s.len == 0 || memcmp(a->v.s.p, b->v.s.p, a->v.s.len) == 0);
    }
    return false;
}

static bool
lines_equal(const struct qt_batch_line *a, const struct qt_batch_line *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (a[i].key_len != b[i].key_len || memcmp(a[i].key, b[i].key, a[i].key_len) != 0)
            return false;
        if (a[i].ts != b[i].ts || a[i].n_fields != b[i].n_fields)
            return false;
        for (uint32_t k = 0; k < a[i].n_fields; k++)
            if (!field_equal(&a[i].fields[k], &b[i].fields[k]))
                return false;
    }
    return true;
}

static struct qt_batch_line d_lines[T_LINES];
static struct qt_batch_field d_fields[T_FIELDS];

TEST(roundtrip_random)
{
    static struct gen g;
    static uint8_t buf[256 * 1024];
    uint64_t rng = qt_test_seed() ^ 0xba7c;
    for (int iter = 0; iter < 2000; iter++) {
        gen_batch(&g, &rng, (uint32_t)(qt_test_rand(&rng) % (T_LINES + 1)));
        size_t need = qt_batch_size(g.lines, g.n_lines);
        size_t len = 0;
        CHECK_OK(qt_batch_encode(g.lines, g.n_lines, buf, sizeof(buf), &len));
        CHECK_EQ(len, need);
        uint32_t pl = 0, pf = 0, nl = 0, nf = 0;
        CHECK_OK(qt_batch_peek(buf, len, &pl, &pf));
        CHECK_OK(qt_batch_decode(buf, len, d_lines, T_LINES, d_fields, T_FIELDS, &nl, &nf));
        CHECK_EQ(nl, g.n_lines);
        CHECK_EQ(pl, nl);
        CHECK_EQ(pf, nf);
        CHECK(lines_equal(g.lines, d_lines, nl));
        /* Zero copy: keys point into the payload. */
        for (uint32_t i = 0; i < nl; i++)
            CHECK((const uint8_t *)d_lines[i].key > buf &&
                  (const uint8_t *)d_lines[i].key < buf + len);
        /* Exact-size buffer: one byte less is refused. */
        if (len > 0)
            CHECK_RC(qt_batch_encode(g.lines, g.n_lines, buf, len - 1, &len), QT_ENOSPACE);
    }
}

TEST(same_timestamp_costs_one_byte)
{
    struct qt_batch_field f = {.name = "pm25", .name_len = 4, .vtype = QT_VT_INT, .v.i = 7};
    struct qt_batch_line l[3];
    for (int i = 0; i < 3; i++)
        l[i] = (struct qt_batch_line){.key = "air,station=a1",
                                      .key_len = 14,
                                      .ts = 1700000000000000000,
                                      .n_fields = 1,
                                      .fields = &f};
    size_t one = qt_batch_size(l, 1), three = qt_batch_size(l, 3);
    /* line = 1 + 14 key, 1 ts delta (0), 1 n_fields, 1 + 4 name, 1 vtype, 1 value */
    CHECK_EQ(three - one, 2 * (1 + 14 + 1 + 1 + 1 + 4 + 1 + 1));
}

TEST(every_truncation_rejected)
{
    static struct gen g;
    static uint8_t buf[64 * 1024];
    uint64_t rng = qt_test_seed() ^ 0x7c;
    for (int iter = 0; iter < 40; iter++) {
        gen_batch(&g, &rng, 1 + (uint32_t)(qt_test_rand(&rng) % 6));
        size_t len = 0;
        CHECK_OK(qt_batch_encode(g.lines, g.n_lines, buf, sizeof(buf), &len));
        for (size_t cut = 0; cut < len; cut++) {
            uint32_t nl, nf;
            int rc = qt_batch_decode(buf, cut, d_lines, T_LINES, d_fields, T_FIELDS, &nl, &nf);
            CHECK(rc == QT_ETRUNC || rc == QT_ECORRUPT);
        }
    }
}

TEST(bit_flips_never_crash_and_reencode)
{
    static struct gen g;
    static uint8_t buf[4096], re[8192];
    static struct qt_batch_line l2[T_LINES];
    static struct qt_batch_field f2[T_FIELDS];
    uint64_t rng = qt_test_seed() ^ 0xf11b;
    int accepted = 0, rejected = 0;
    for (int iter = 0; iter < 30; iter++) {
        gen_batch(&g, &rng, 1 + (uint32_t)(qt_test_rand(&rng) % 4));
        size_t len = 0;
        CHECK_OK(qt_batch_encode(g.lines, g.n_lines, buf, sizeof(buf), &len));
        for (size_t bit = 0; bit < len * 8; bit++) {
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            uint32_t nl, nf, nl2, nf2;
            int rc = qt_batch_decode(buf, len, d_lines, T_LINES, d_fields, T_FIELDS, &nl, &nf);
            if (rc == 0) {
                accepted++;
                size_t rlen = 0;
                CHECK_OK(qt_batch_encode(d_lines, nl, re, sizeof(re), &rlen));
                CHECK_OK(qt_batch_decode(re, rlen, l2, T_LINES, f2, T_FIELDS, &nl2, &nf2));
                CHECK_EQ(nl2, nl);
                CHECK(lines_equal(d_lines, l2, nl));
            } else {
                rejected++;
            }
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
    }
    /* The payload has no checksum of its own (the WAL record has one), so
     * many flips are legal batches; both outcomes must occur. */
    CHECK(accepted > 0 && rejected > 0);
}

/* Encode one line holding one field and return the rc. */
static int
encode_one(const char *key, uint32_t key_len, const struct qt_batch_field *f, uint32_t n_fields)
{
    static uint8_t out[1 << 20];
    struct qt_batch_line l = {
        .key = key, .key_len = key_len, .ts = 1, .n_fields = n_fields, .fields = f};
    size_t len;
    int rc = qt_batch_encode(&l, 1, out, sizeof(out), &len);
    if (rc != 0)
        return rc;
    uint32_t nl, nf;
    return qt_batch_decode(out, len, d_lines, T_LINES, d_fields, T_FIELDS, &nl, &nf);
}

TEST(limits_at_and_past_each_bound)
{
    static char big[QT_SERIES_KEY_MAX + 8];
    static struct qt_batch_field fs[QT_FIELDS_MAX + 1];
    memset(big, 'k', sizeof(big));
    struct qt_batch_field f = {.name = "v", .name_len = 1, .vtype = QT_VT_INT, .v.i = 1};
    CHECK_OK(encode_one(big, QT_SERIES_KEY_MAX - 2, &f, 1));
    CHECK_RC(encode_one(big, QT_SERIES_KEY_MAX - 1, &f, 1), QT_ELIMIT);
    CHECK_RC(encode_one(big, 0, &f, 1), QT_EINVAL);
    /* key + ' ' + name must fit QT_SERIES_KEY_MAX */
    f.name = big;
    f.name_len = QT_SERIES_KEY_MAX - 1 - 10;
    CHECK_OK(encode_one(big, 10, &f, 1));
    f.name_len++;
    CHECK_RC(encode_one(big, 10, &f, 1), QT_ELIMIT);
    f.name_len = 0;
    CHECK_RC(encode_one(big, 10, &f, 1), QT_EINVAL);
    f = (struct qt_batch_field){.name = "s", .name_len = 1, .vtype = QT_VT_STRING};
    f.v.s.p = big;
    f.v.s.len = QT_STRING_VALUE_MAX;
    CHECK_OK(encode_one("m", 1, &f, 1));
    f.v.s.len++;
    CHECK_RC(encode_one("m", 1, &f, 1), QT_ELIMIT);
    f = (struct qt_batch_field){.name = "b", .name_len = 1, .vtype = QT_VT_BOOL, .v.b = 2};
    CHECK_RC(encode_one("m", 1, &f, 1), QT_EINVAL);
    f.vtype = (enum qt_vtype)9;
    CHECK_RC(encode_one("m", 1, &f, 1), QT_EINVAL);
    for (uint32_t i = 0; i <= QT_FIELDS_MAX; i++)
        fs[i] = (struct qt_batch_field){.name = "x", .name_len = 1, .vtype = QT_VT_BOOL};
    CHECK_OK(encode_one("m", 1, fs, QT_FIELDS_MAX));
    CHECK_RC(encode_one("m", 1, fs, QT_FIELDS_MAX + 1), QT_ELIMIT);
    CHECK_RC(encode_one("m", 1, fs, 0), QT_EINVAL);
}

TEST(payload_limit)
{
    /* 64 lines x 256 fields x 1 KiB strings > QT_WAL_PAYLOAD_MAX. */
    static char s[QT_STRING_VALUE_MAX];
    static struct qt_batch_field fs[QT_FIELDS_MAX];
    static struct qt_batch_line ls[64];
    static uint8_t small[16];
    for (uint32_t i = 0; i < QT_FIELDS_MAX; i++)
        fs[i] = (struct qt_batch_field){
            .name = "x", .name_len = 1, .vtype = QT_VT_STRING, .v.s = {.p = s, .len = sizeof(s)}};
    for (int i = 0; i < 64; i++)
        ls[i] = (struct qt_batch_line){
            .key = "m", .key_len = 1, .ts = i, .n_fields = QT_FIELDS_MAX, .fields = fs};
    CHECK(qt_batch_size(ls, 64) > QT_WAL_PAYLOAD_MAX);
    size_t len;
    CHECK_RC(qt_batch_encode(ls, 64, small, sizeof(small), &len), QT_ELIMIT);
    CHECK(qt_batch_size(ls, 63) <= QT_WAL_PAYLOAD_MAX);
    /* Decoding an oversized buffer is refused before reading it. */
    uint8_t *huge = calloc(1, QT_WAL_PAYLOAD_MAX + 1);
    CHECK(huge != NULL);
    huge[0] = QT_BATCH_KIND;
    uint32_t nl, nf;
    int rc = qt_batch_decode(huge, QT_WAL_PAYLOAD_MAX + 1, d_lines, T_LINES, d_fields, T_FIELDS,
                             &nl, &nf);
    free(huge);
    CHECK_RC(rc, QT_ELIMIT);
}

/* Build a payload from raw bytes and decode it. */
static int
decode_raw(const uint8_t *p, size_t n)
{
    uint32_t nl, nf;
    return qt_batch_decode(p, n, d_lines, T_LINES, d_fields, T_FIELDS, &nl, &nf);
}

TEST(hostile_payloads)
{
    /* kind, n_lines=1, n_fields=1, key "m", ts 0, 1 field, name "v", INT, 3 */
    const uint8_t good[] = {1, 1, 1, 1, 'm', 0, 1, 1, 'v', QT_VT_INT, 6};
    uint8_t p[64];
    CHECK_OK(decode_raw(good, sizeof(good)));
    memcpy(p, good, sizeof(good));
    p[0] = 2; /* unknown kind */
    CHECK_RC(decode_raw(p, sizeof(good)), QT_ECORRUPT);
    memcpy(p, good, sizeof(good));
    p[1] = 100; /* more lines than bytes */
    CHECK_RC(decode_raw(p, sizeof(good)), QT_ECORRUPT);
    memcpy(p, good, sizeof(good));
    p[2] = 0; /* fewer fields than lines */
    CHECK_RC(decode_raw(p, sizeof(good)), QT_ECORRUPT);
    memcpy(p, good, sizeof(good));
    p[6] = 0; /* line with zero fields */
    CHECK_RC(decode_raw(p, sizeof(good)), QT_ECORRUPT);
    memcpy(p, good, sizeof(good));
    p[9] = 0; /* vtype 0 */
    CHECK_RC(decode_raw(p, sizeof(good)), QT_ECORRUPT);
    memcpy(p, good, sizeof(good));
    p[9] = QT_VT_BOOL;
    p[10] = 2; /* bool 2 */
    CHECK_RC(decode_raw(p, sizeof(good)), QT_ECORRUPT);
    memcpy(p, good, sizeof(good));
    p[sizeof(good)] = 0; /* trailing byte */
    CHECK_RC(decode_raw(p, sizeof(good) + 1), QT_ECORRUPT);
    memcpy(p, good, sizeof(good));
    p[3] = 0; /* empty key: shift */
    CHECK(decode_raw(p, sizeof(good)) != 0);
    /* header says 2 fields, line holds 1 */
    const uint8_t miss[] = {1, 1, 2, 1, 'm', 0, 1, 1, 'v', QT_VT_INT, 6, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_RC(decode_raw(miss, sizeof(miss)), QT_ECORRUPT);
    /* line claims 2 fields, header 1 */
    const uint8_t more[] = {1, 1, 1, 1, 'm', 0, 2, 1, 'v', QT_VT_INT, 6, 1, 'w', QT_VT_INT, 6};
    CHECK_RC(decode_raw(more, sizeof(more)), QT_ECORRUPT);
    /* key length far above the limit */
    const uint8_t longkey[] = {1, 1, 1, 0xff, 0xff, 0x03, 'm', 0, 1, 1, 'v', 3, 0};
    CHECK_RC(decode_raw(longkey, sizeof(longkey)), QT_ELIMIT);
    /* varint overflowing 64 bits in n_lines */
    const uint8_t ovf[] = {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0};
    CHECK_RC(decode_raw(ovf, sizeof(ovf)), QT_ECORRUPT);
    CHECK_RC(decode_raw(good, 0), QT_ETRUNC);
    /* empty batch is valid */
    const uint8_t empty[] = {1, 0, 0};
    CHECK_OK(decode_raw(empty, sizeof(empty)));
}

TEST(caller_caps_enforced)
{
    static struct gen g;
    static uint8_t buf[64 * 1024];
    uint64_t rng = qt_test_seed() ^ 0xca9;
    gen_batch(&g, &rng, 10);
    size_t len;
    CHECK_OK(qt_batch_encode(g.lines, g.n_lines, buf, sizeof(buf), &len));
    uint32_t pl, pf, nl, nf;
    CHECK_OK(qt_batch_peek(buf, len, &pl, &pf));
    CHECK_EQ(pl, 10);
    CHECK_RC(qt_batch_decode(buf, len, d_lines, pl - 1, d_fields, pf, &nl, &nf), QT_ENOSPACE);
    CHECK_RC(qt_batch_decode(buf, len, d_lines, pl, d_fields, pf - 1, &nl, &nf), QT_ENOSPACE);
    CHECK_OK(qt_batch_decode(buf, len, d_lines, pl, d_fields, pf, &nl, &nf));
}

TEST(extreme_timestamps_delta_wraps)
{
    struct qt_batch_field f = {.name = "v", .name_len = 1, .vtype = QT_VT_FLOAT, .v.f = -0.0};
    struct qt_batch_line l[4] = {
        {.key = "m", .key_len = 1, .ts = INT64_MIN, .n_fields = 1, .fields = &f},
        {.key = "m", .key_len = 1, .ts = INT64_MAX, .n_fields = 1, .fields = &f},
        {.key = "m", .key_len = 1, .ts = INT64_MIN, .n_fields = 1, .fields = &f},
        {.key = "m", .key_len = 1, .ts = 0, .n_fields = 1, .fields = &f},
    };
    uint8_t buf[256];
    size_t len;
    uint32_t nl, nf;
    CHECK_OK(qt_batch_encode(l, 4, buf, sizeof(buf), &len));
    CHECK_OK(qt_batch_decode(buf, len, d_lines, T_LINES, d_fields, T_FIELDS, &nl, &nf));
    CHECK(lines_equal(l, d_lines, 4));
    CHECK(signbit(d_lines[0].fields[0].v.f));
}
