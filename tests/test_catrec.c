/*
 * test_catrec.c -- the catalog's pure format code: the canonical series key
 * parser/builder (format/serieskey.c) and the log header/record layout
 * (format/catrec.c).  Round trips on random and adversarial keys, the
 * parse/build bijection, every rejection rule, truncation at every byte and
 * every bit flip of records and headers.
 */
#include "format/catrec.h"
#include "format/codec.h"
#include "format/qt_bytes.h"
#include "format/qt_hash.h"
#include "format/serieskey.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static uint8_t scratch[QT_SERIES_KEY_MAX];
static struct qt_serieskey pk;

static int
parse(const char *s, bool with_field)
{
    return qt_serieskey_parse((const uint8_t *)s, strlen(s), with_field, scratch, sizeof(scratch),
                              &pk);
}

static bool
str_is(struct qt_str a, const char *s)
{
    return a.len == strlen(s) && memcmp(a.p, s, a.len) == 0;
}

/* parse(s) must succeed and build must give s back. */
static bool
roundtrips(const char *s, bool with_field)
{
    uint8_t out[2 * QT_SERIES_KEY_MAX];
    size_t n;
    if (parse(s, with_field) != 0)
        return false;
    if (qt_serieskey_build(&pk, with_field, out, sizeof(out), &n) != 0)
        return false;
    return n == strlen(s) && memcmp(out, s, n) == 0 && n <= qt_serieskey_bound(&pk, with_field);
}

TEST(serieskey_parses_city_keys)
{
    CHECK_OK(parse("air,district=xihu,station=a000123 pm25", true));
    CHECK(str_is(pk.measurement, "air"));
    CHECK_EQ(pk.ntags, 2);
    CHECK(str_is(pk.tags[0].key, "district"));
    CHECK(str_is(pk.tags[0].value, "xihu"));
    CHECK(str_is(pk.tags[1].key, "station"));
    CHECK(str_is(pk.tags[1].value, "a000123"));
    CHECK(str_is(pk.field, "pm25"));
    CHECK_EQ(pk.group_len, strlen("air,district=xihu,station=a000123"));
    CHECK_OK(parse("grid,district=xihu,feeder=f07,substation=s0123", false));
    CHECK_EQ(pk.ntags, 3);
    CHECK(pk.field.p == NULL);
    CHECK_EQ(pk.group_len, strlen("grid,district=xihu,feeder=f07,substation=s0123"));
    CHECK_OK(parse("cpu usage", true));
    CHECK_EQ(pk.ntags, 0);
    CHECK(str_is(pk.field, "usage"));
}

TEST(serieskey_escapes)
{
    /* measurement escapes ',' and ' ' (a '=' is literal there). */
    CHECK_OK(parse("we\\ ather\\,x=1,k\\ 1=v\\=2\\,3 f\\ \\=\\,", true));
    CHECK(str_is(pk.measurement, "we ather,x=1"));
    CHECK(str_is(pk.tags[0].key, "k 1"));
    CHECK(str_is(pk.tags[0].value, "v=2,3"));
    CHECK(str_is(pk.field, "f =,"));
    CHECK(roundtrips("we\\ ather\\,x=1,k\\ 1=v\\=2\\,3 f\\ \\=\\,", true));
    /* A backslash before another byte is literal, also before a backslash. */
    CHECK_OK(parse("m\\a,k=\\\\\\, f\\\\x", true));
    CHECK(str_is(pk.measurement, "m\\a"));
    CHECK(str_is(pk.tags[0].value, "\\\\,"));
    CHECK(str_is(pk.field, "f\\\\x"));
    CHECK(roundtrips("m\\a,k=\\\\\\, f\\\\x", true));
    CHECK(roundtrips("m\\=,k=v", false));
    /* Tags sort by unescaped key bytes: "a b" < "a,c" (' ' < ','). */
    CHECK(roundtrips("m,a\\ b=1,a\\,c=2 f", true));
    CHECK(roundtrips("m,a=1,ab=2 f", true));
}

TEST(serieskey_rejects_non_canonical)
{
    static const char *const bad_series[] = {
        "",
        "m",            /* no field */
        "m,a=1",        /* no field */
        " f",           /* empty measurement */
        ",a=1 f",       /* empty measurement */
        "m,=1 f",       /* empty tag key */
        "m,a= f",       /* empty tag value */
        "m,a=1 ",       /* empty field */
        "m, f",         /* empty tag */
        "m,a f",        /* tag without = */
        "m,a,b=1 f",    /* tag without = */
        "m,a=1=2 f",    /* unescaped = in value */
        "m,a=1 f=x",    /* unescaped = in field */
        "m,a=1 f,x",    /* unescaped , in field */
        "m,a=1 f x",    /* unescaped space in field */
        "m,b=1,a=2 f",  /* unsorted */
        "m,a=1,a=2 f",  /* repeated key */
        "m,ab=1,a=2 f", /* prefix sorts first */
        "m,a=1 f\\",    /* field ends with a backslash */
        "m,a=1  f",     /* empty field then space */
        "m,a=1\n f",    /* LF */
        "m,a=1 f\r",    /* CR */
    };
    for (size_t i = 0; i < sizeof(bad_series) / sizeof(bad_series[0]); i++) {
        int rc = parse(bad_series[i], true);
        if (rc == 0)
            qt_test_fail_at(__FILE__, __LINE__, "accepted \"%s\"", bad_series[i]);
        CHECK(rc == QT_ESYNTAX);
    }
    CHECK_RC(parse("m,a=1 f", false), QT_ESYNTAX); /* a space in a group key */
    CHECK_RC(parse("m,a=x\\", false), QT_ESYNTAX); /* value ends with a backslash */
    CHECK(strstr(qt_err_detail(), "backslash") != NULL);
    CHECK_RC(parse("m\\", false), QT_ESYNTAX);
    uint8_t nul[] = {'m', ',', 'a', '=', 0, ' ', 'f'};
    CHECK_RC(qt_serieskey_parse(nul, sizeof(nul), true, scratch, sizeof(scratch), &pk), QT_ESYNTAX);
    CHECK_RC(qt_serieskey_parse(nul, sizeof(nul), true, scratch, 3, &pk), QT_ENOSPACE);
}

TEST(serieskey_limits)
{
    static char buf[QT_SERIES_KEY_MAX + 64];
    /* QT_TAGS_MAX tags parse, one more is QT_ELIMIT. */
    for (uint32_t ntags = QT_TAGS_MAX; ntags <= QT_TAGS_MAX + 1; ntags++) {
        size_t n = (size_t)snprintf(buf, sizeof(buf), "m");
        for (uint32_t i = 0; i < ntags; i++)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",k%03u=v", i);
        snprintf(buf + n, sizeof(buf) - n, " f");
        CHECK_RC(parse(buf, true), ntags == QT_TAGS_MAX ? 0 : QT_ELIMIT);
    }
    memset(buf, 'a', QT_SERIES_KEY_MAX + 1);
    buf[1] = ' ';
    buf[QT_SERIES_KEY_MAX] = '\0';
    CHECK_OK(parse(buf, true));
    buf[QT_SERIES_KEY_MAX] = 'a';
    buf[QT_SERIES_KEY_MAX + 1] = '\0';
    CHECK_RC(parse(buf, true), QT_ELIMIT);
}

/* Random raw component over an alphabet rich in specials and backslashes. */
static uint32_t
rand_component(uint64_t *rng, char *out, uint32_t maxlen)
{
    static const char alpha[] = "ab=, \\\\xyz09\t";
    uint32_t n = 1 + (uint32_t)(qt_test_rand(rng) % maxlen);
    for (uint32_t i = 0; i < n; i++)
        out[i] = alpha[qt_test_rand(rng) % (sizeof(alpha) - 1)];
    while (n > 0 && out[n - 1] == '\\')
        out[n - 1] = 'q';
    return n;
}

TEST(serieskey_build_parse_roundtrip_random)
{
    uint64_t rng = qt_test_seed() ^ 0x5e71e5;
    static char raw[QT_TAGS_MAX * 2 + 2][16];
    static uint8_t out[2 * QT_SERIES_KEY_MAX], again[2 * QT_SERIES_KEY_MAX];
    for (int iter = 0; iter < 20000; iter++) {
        struct qt_serieskey k = {0};
        k.measurement = (struct qt_str){raw[0], rand_component(&rng, raw[0], 12)};
        k.field = (struct qt_str){raw[1], rand_component(&rng, raw[1], 12)};
        uint32_t want = (uint32_t)(qt_test_rand(&rng) % 6);
        for (uint32_t i = 0; i < want; i++) {
            char *kb = raw[2 + 2 * i], *vb = raw[3 + 2 * i];
            k.tags[k.ntags].key = (struct qt_str){kb, rand_component(&rng, kb, 6)};
            k.tags[k.ntags].value = (struct qt_str){vb, rand_component(&rng, vb, 10)};
            k.ntags++;
        }
        qt_serieskey_sort(&k);
        bool dup = false;
        for (uint32_t i = 1; i < k.ntags; i++)
            dup |= qt_serieskey_cmp(k.tags[i - 1].key, k.tags[i].key) == 0;
        bool with_field = (iter & 1) == 0;
        size_t n, n2;
        int rc = qt_serieskey_build(&k, with_field, out, sizeof(out), &n);
        if (dup) {
            CHECK_RC(rc, QT_EINVAL);
            continue;
        }
        CHECK_OK(rc);
        CHECK(n <= qt_serieskey_bound(&k, with_field));
        CHECK_OK(qt_serieskey_parse(out, n, with_field, scratch, sizeof(scratch), &pk));
        CHECK(qt_serieskey_cmp(pk.measurement, k.measurement) == 0);
        CHECK_EQ(pk.ntags, k.ntags);
        for (uint32_t i = 0; i < k.ntags; i++) {
            CHECK(qt_serieskey_cmp(pk.tags[i].key, k.tags[i].key) == 0);
            CHECK(qt_serieskey_cmp(pk.tags[i].value, k.tags[i].value) == 0);
        }
        if (with_field)
            CHECK(qt_serieskey_cmp(pk.field, k.field) == 0);
        CHECK_OK(qt_serieskey_build(&pk, with_field, again, sizeof(again), &n2));
        CHECK(n2 == n && memcmp(again, out, n) == 0);
        /* Every too-small buffer is refused without writing past it. */
        size_t cut = (size_t)(qt_test_rand(&rng) % n);
        CHECK_RC(qt_serieskey_build(&k, with_field, out, cut, &n2), QT_ENOSPACE);
    }
}

TEST(serieskey_parse_is_inverse_of_build_on_noise)
{
    /* Whatever the parser accepts, the builder reproduces byte for byte. */
    uint64_t rng = qt_test_seed() ^ 0xb17;
    static const char alpha[] = "ab,= \\k";
    uint8_t in[24], out[64];
    uint32_t accepted = 0;
    for (int iter = 0; iter < 300000; iter++) {
        size_t n = 1 + (size_t)(qt_test_rand(&rng) % sizeof(in));
        for (size_t i = 0; i < n; i++)
            in[i] = (uint8_t)alpha[qt_test_rand(&rng) % (sizeof(alpha) - 1)];
        bool with_field = iter & 1;
        if (qt_serieskey_parse(in, n, with_field, scratch, sizeof(scratch), &pk) != 0)
            continue;
        accepted++;
        size_t m;
        CHECK_OK(qt_serieskey_build(&pk, with_field, out, sizeof(out), &m));
        CHECK(m == n && memcmp(in, out, n) == 0);
    }
    CHECK(accepted > 1000);
}

/* ---- catrec ---- */

TEST(catrec_header_roundtrip_and_hostile)
{
    uint8_t h[QT_CATREC_HEADER_SIZE], b[QT_CATREC_HEADER_SIZE];
    uint32_t v = 0;
    CHECK_RC(qt_catrec_header_encode(h, sizeof(h) - 1), QT_ENOSPACE);
    CHECK_OK(qt_catrec_header_encode(h, sizeof(h)));
    CHECK(memcmp(h, QT_CATREC_MAGIC, 8) == 0);
    CHECK_OK(qt_catrec_header_decode(h, sizeof(h), &v));
    CHECK_EQ(v, QT_FORMAT_VERSION);
    for (size_t cut = 0; cut < sizeof(h); cut++)
        CHECK_RC(qt_catrec_header_decode(h, cut, &v), QT_ETRUNC);
    for (size_t bit = 0; bit < 8 * sizeof(h); bit++) {
        memcpy(b, h, sizeof(h));
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = qt_catrec_header_decode(b, sizeof(b), &v);
        CHECK(rc == (bit < 64 ? QT_EMAGIC : QT_ECHECKSUM));
    }
    /* Valid checksums over bad contents. */
    memcpy(b, h, sizeof(h));
    qt_store_le32(b + 8, QT_FORMAT_VERSION + 1);
    qt_hash_store(b + 16, qt_hash64(b, 16));
    CHECK_RC(qt_catrec_header_decode(b, sizeof(b), &v), QT_EVERSION);
    qt_store_le32(b + 8, 0);
    qt_hash_store(b + 16, qt_hash64(b, 16));
    CHECK_RC(qt_catrec_header_decode(b, sizeof(b), &v), QT_ECORRUPT);
    qt_store_le32(b + 8, QT_FORMAT_VERSION);
    qt_store_le32(b + 12, 1);
    qt_hash_store(b + 16, qt_hash64(b, 16));
    CHECK_RC(qt_catrec_header_decode(b, sizeof(b), &v), QT_ECORRUPT);
}

TEST(catrec_record_roundtrip_truncation_bitflips)
{
    uint64_t rng = qt_test_seed() ^ 0xcafe;
    static uint8_t key[QT_SERIES_KEY_MAX], buf[QT_CATREC_SIZE_MAX], b2[QT_CATREC_SIZE_MAX];
    const size_t lens[] = {1, 2, 38, 54, 300, QT_SERIES_KEY_MAX};
    for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
        for (size_t i = 0; i < lens[li]; i++)
            key[i] = (uint8_t)qt_test_rand(&rng);
        struct qt_catrec r = {.series_id = qt_test_rand(&rng),
                              .group_id = qt_test_rand(&rng),
                              .vtype = (uint8_t)(1 + qt_test_rand(&rng) % 4),
                              .key_len = (uint16_t)lens[li],
                              .key = key};
        size_t n, used;
        CHECK_OK(qt_catrec_encode(&r, buf, sizeof(buf), &n));
        CHECK_EQ(n, qt_catrec_size(lens[li]));
        CHECK_RC(qt_catrec_encode(&r, buf, n - 1, &used), QT_ENOSPACE);
        struct qt_catrec d;
        CHECK_OK(qt_catrec_decode(buf, n, &d, &used));
        CHECK_EQ(used, n);
        CHECK(d.series_id == r.series_id && d.group_id == r.group_id);
        CHECK(d.vtype == r.vtype && d.key_len == r.key_len);
        CHECK(memcmp(d.key, key, r.key_len) == 0);
        /* Trailing bytes belong to the next record. */
        CHECK_OK(qt_catrec_decode(buf, sizeof(buf), &d, &used));
        CHECK_EQ(used, n);
        for (size_t cut = 0; cut < n; cut++)
            CHECK_RC(qt_catrec_decode(buf, cut, &d, &used), QT_ETRUNC);
        size_t step = n > 400 ? 97 : 1; /* every bit of small records */
        for (size_t bit = 0; bit < 8 * n; bit += step) {
            memcpy(b2, buf, n);
            b2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = qt_catrec_decode(b2, n, &d, &used);
            CHECK(rc == QT_ECHECKSUM || rc == QT_ECORRUPT || rc == QT_ETRUNC);
        }
    }
}

TEST(catrec_rejects_bad_fields)
{
    uint8_t key[4] = "m f", buf[64];
    size_t n;
    struct qt_catrec r = {.series_id = 1, .group_id = 2, .vtype = 0, .key_len = 3, .key = key};
    CHECK_RC(qt_catrec_encode(&r, buf, sizeof(buf), &n), QT_EINVAL);
    r.vtype = 5;
    CHECK_RC(qt_catrec_encode(&r, buf, sizeof(buf), &n), QT_EINVAL);
    r.vtype = QT_VT_STRING;
    r.key_len = 0;
    CHECK_RC(qt_catrec_encode(&r, buf, sizeof(buf), &n), QT_EINVAL);
    r.key_len = QT_SERIES_KEY_MAX + 1;
    CHECK_RC(qt_catrec_encode(&r, buf, sizeof(buf), &n), QT_EINVAL);
    r.key_len = 3;
    CHECK_OK(qt_catrec_encode(&r, buf, sizeof(buf), &n));
    /* A valid checksum over an unknown vtype. */
    buf[16] = 9;
    qt_hash_store(buf + 19 + 3, qt_hash64(buf, 19 + 3));
    struct qt_catrec d;
    CHECK_RC(qt_catrec_decode(buf, n, &d, &n), QT_ECORRUPT);
    /* Hostile key lengths are refused before anything is read past them. */
    qt_store_le16(buf + 17, 0);
    CHECK_RC(qt_catrec_decode(buf, sizeof(buf), &d, &n), QT_ECORRUPT);
    qt_store_le16(buf + 17, 0xffff);
    CHECK_RC(qt_catrec_decode(buf, sizeof(buf), &d, &n), QT_ECORRUPT);
    qt_store_le16(buf + 17, QT_SERIES_KEY_MAX);
    CHECK_RC(qt_catrec_decode(buf, sizeof(buf), &d, &n), QT_ETRUNC);
}
