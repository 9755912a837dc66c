/*
 * test_fltcodec.c -- float64 codec: bit-exact round trips on every flavour of
 * data (quantised decimals, constants, special values, exception mixtures,
 * random bit patterns), the encoding each flavour gets, bits/value on
 * generated city fields, truncation at every byte, bit flips and hostile
 * headers.  Size assertions only; no timing.
 */
#include "format/codec.h"
#include "format/fltcodec.h"
#include "format/qt_bytes.h"
#include "format/qt_limits.h"
#include "harness.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NMAX    QT_BLOCK_POINTS_MAX
#define BUF_MAX (QT_VARINT_MAX + 1 + 8 * NMAX)

static double g_in[NMAX], g_out[NMAX];
static uint8_t g_buf[BUF_MAX + 64];

/* ---- random data ------------------------------------------------------ */

static double
urand(uint64_t *s)
{
    return (double)(qt_test_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

static double
gauss(uint64_t *s)
{
    double u = urand(s) + 1e-300, w = urand(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * w);
}

/* A reading of `units` steps of 10^-k, as a sensor's decimal string would
 * parse (division by an exact power of ten is correctly rounded). */
static double
dec(int64_t units, int k)
{
    static const double p[] = {1.0, 10.0, 100.0, 1000.0, 10000.0};
    return (double)units / p[k];
}

static int64_t
clamp64(int64_t x, int64_t lo, int64_t hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* City-like fields.  Units are the sensor's resolution; the noise levels are
 * assumptions (see design/flt.md): 1-minute sampling of typical stations. */
enum field {
    F_PM25,
    F_TEMP,
    F_HUMIDITY,
    F_PH,
    F_TURBIDITY,
    F_PRESSURE,
    F_FLOW,
    F_VOLTAGE,
    F_CURRENT,
    F_FREQUENCY,
    F_COUNT
};
static const char *const FIELD_NAME[F_COUNT] = {
    "pm25",     "temperature", "humidity", "ph",      "turbidity",
    "pressure", "flow",        "voltage",  "current", "frequency",
};

static void
gen_field(enum field fld, uint64_t *s, double *v, uint32_t n)
{
    int64_t x;
    switch (fld) {
    case F_PM25: /* ug/m3 integer, random walk 0..500 */
        x = 20 + (int64_t)(qt_test_rand(s) % 60);
        for (uint32_t i = 0; i < n; i++) {
            x = clamp64(x + (int64_t)llround(gauss(s) * 2.0), 0, 500);
            v[i] = dec(x, 0);
        }
        break;
    case F_TEMP: /* degC, 1 decimal, slow walk */
        x = 150 + (int64_t)(qt_test_rand(s) % 150);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t r = qt_test_rand(s) % 8;
            x += r == 0 ? -1 : r == 1 ? 1 : 0;
            v[i] = dec(x, 1);
        }
        break;
    case F_HUMIDITY: /* %RH, 1 decimal, 30..95 */
        x = 600;
        for (uint32_t i = 0; i < n; i++) {
            x = clamp64(x + (int64_t)llround(gauss(s) * 3.0), 300, 950);
            v[i] = dec(x, 1);
        }
        break;
    case F_PH: /* 2 decimals, 7.00 +- 0.5: drift plus sensor noise */
        x = 700;
        for (uint32_t i = 0; i < n; i++) {
            x = clamp64(x + (int64_t)llround(gauss(s) * 0.7), 650, 750);
            v[i] = dec(x + (int64_t)llround(gauss(s) * 2.0), 2);
        }
        break;
    case F_TURBIDITY: /* NTU, 2 decimals, walk with rare spikes */
        x = 500;
        for (uint32_t i = 0; i < n; i++) {
            x = clamp64(x + (int64_t)llround(gauss(s) * 4.0), 0, 5000);
            int64_t spike = qt_test_rand(s) % 100 == 0 ? (int64_t)(qt_test_rand(s) % 2000) : 0;
            v[i] = dec(x + spike, 2);
        }
        break;
    case F_PRESSURE: /* MPa, 3 decimals, 0.300 +- 0.05 diurnal plus noise */
        for (uint32_t i = 0; i < n; i++) {
            double t = 300.0 + 30.0 * sin((double)i / 229.0) + gauss(s) * 2.0;
            v[i] = dec(clamp64(llround(t), 250, 350), 3);
        }
        break;
    case F_FLOW: /* m3/h, 2 decimals, diurnal 100..400 plus noise */
        for (uint32_t i = 0; i < n; i++) {
            double t = 25000.0 + 15000.0 * sin((double)i / 229.0) + gauss(s) * 40.0;
            v[i] = dec(llround(t), 2);
        }
        break;
    case F_VOLTAGE: /* kV, 2 decimals, 10.50 plus noise */
        for (uint32_t i = 0; i < n; i++)
            v[i] = dec(1050 + llround(gauss(s) * 3.0), 2);
        break;
    case F_CURRENT: /* A, 1 decimal, load walk */
        x = 2500;
        for (uint32_t i = 0; i < n; i++) {
            x = clamp64(x + (int64_t)llround(gauss(s) * 5.0), 0, 6000);
            v[i] = dec(x, 1);
        }
        break;
    default: /* Hz, 2 decimals, 50.00 +- 0.05 */
        for (uint32_t i = 0; i < n; i++)
            v[i] = dec(5000 + clamp64(llround(gauss(s) * 1.5), -5, 5), 2);
        break;
    }
}

/* ---- round trip ------------------------------------------------------- */

/* Encode v[0..n), check size against the bound, decode, compare bits.
 * Reports the encoding id and payload length. */
static bool
roundtrip(const double *v, uint32_t n, int *id, size_t *len, const char *what)
{
    size_t got = 0;
    int rc = qt_flt_encode(v, n, g_buf, sizeof(g_buf), &got);
    if (rc != 0) {
        qt_test_fail_at(__FILE__, __LINE__, "%s: encode n=%u: %s", what, n, qt_err_detail());
        return false;
    }
    if (got > qt_flt_bound(n)) {
        qt_test_fail_at(__FILE__, __LINE__, "%s: %zu bytes above bound", what, got);
        return false;
    }
    uint32_t m = 0;
    rc = qt_flt_decode(g_buf, got, g_out, NMAX, &m);
    if (rc != 0 || m != n) {
        qt_test_fail_at(__FILE__, __LINE__, "%s: decode rc=%d n=%u/%u (%s)", what, rc, m, n,
                        qt_err_detail());
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (qt_f64_bits(v[i]) != qt_f64_bits(g_out[i])) {
            qt_test_fail_at(__FILE__, __LINE__, "%s: value %u: %016llx != %016llx", what, i,
                            (unsigned long long)qt_f64_bits(v[i]),
                            (unsigned long long)qt_f64_bits(g_out[i]));
            return false;
        }
    }
    size_t p = 0;
    uint64_t cnt = 0;
    (void)qt_varint_get(g_buf, got, &p, &cnt);
    *id = g_buf[p];
    *len = got;
    return true;
}

static bool
is_alp(int id)
{
    return id == QT_ENC_FLT_ALP || id == QT_ENC_FLT_ALP_DELTA;
}

/* ---- encoding choice and size ----------------------------------------- */

TEST(city_fields_bits_per_value)
{
    static const uint32_t sizes[] = {1000, 1440, 2048, 4096, 8192};
    /* measured ~4.0 2.0 4.6 4.6 9.7 4.5 9.0 4.7 5.2 3.8; bounds leave ~15% */
    static const double bound[F_COUNT] = {5, 2.5, 5.5, 5.5, 11, 5.5, 10.5, 5.5, 6, 4.5};
    uint64_t s = qt_test_seed() ^ 0xc17ull;
    double sum = 0;
    for (int fld = 0; fld < F_COUNT; fld++) {
        size_t bytes = 0, values = 0;
        int ids[3] = {0, 0, 0};
        for (int rep = 0; rep < 4; rep++) {
            for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                int id;
                size_t len;
                gen_field((enum field)fld, &s, g_in, sizes[k]);
                CHECK(roundtrip(g_in, sizes[k], &id, &len, FIELD_NAME[fld]));
                CHECK(is_alp(id));
                ids[id == QT_ENC_FLT_ALP ? 0 : 1]++;
                bytes += len;
                values += sizes[k];
            }
        }
        double bpv = 8.0 * (double)bytes / (double)values;
        printf("  %-12s %6.2f bits/value (ALP %d, ALP_DELTA %d blocks)\n", FIELD_NAME[fld], bpv,
               ids[0], ids[1]);
        CHECK(bpv <= bound[fld]);
        sum += bpv;
    }
    printf("  %-12s %6.2f bits/value\n", "average", sum / F_COUNT);
    CHECK(sum / F_COUNT <= 12.0);
}

TEST(quantised_decimals_use_alp)
{
    uint64_t s = qt_test_seed() ^ 0xdec;
    static const double scale[] = {1e-3, 0.5, 1.0, 37.0, 1e4, 1e6};
    for (int k = 0; k <= 3; k++) {
        for (size_t sc = 0; sc < sizeof(scale) / sizeof(scale[0]); sc++) {
            for (int walk = 0; walk < 2; walk++) {
                uint32_t n = 1 + (uint32_t)(qt_test_rand(&s) % NMAX);
                int64_t x = llround(scale[sc] * pow(10.0, k)) * (qt_test_rand(&s) % 2 ? 1 : -1);
                for (uint32_t i = 0; i < n; i++) {
                    double step = gauss(&s) * (walk ? 3.0 : 50.0);
                    int64_t u = walk ? (x += llround(step)) : x + llround(step);
                    g_in[i] = dec(u, k);
                }
                int id;
                size_t len;
                CHECK(roundtrip(g_in, n, &id, &len, "decimals"));
                CHECK(is_alp(id) || id == QT_ENC_FLT_CONST);
                CHECK(len < 8u * n / 2 + 16); /* at least 2x smaller than raw */
            }
        }
    }
}

TEST(smooth_series_prefer_delta_noise_prefers_plain)
{
    uint64_t s = qt_test_seed() ^ 0x5100;
    int id;
    size_t len;
    int64_t x = 1234567; /* water level in mm, 3 decimals in m: slow ramp */
    for (uint32_t i = 0; i < 4096; i++) {
        x += 3 + (int64_t)(qt_test_rand(&s) % 3);
        g_in[i] = dec(x, 3);
    }
    CHECK(roundtrip(g_in, 4096, &id, &len, "ramp"));
    CHECK_EQ(id, QT_ENC_FLT_ALP_DELTA);
    for (uint32_t i = 0; i < 4096; i++) /* white noise around a level */
        g_in[i] = dec(5000 + (int64_t)(qt_test_rand(&s) % 64), 2);
    CHECK(roundtrip(g_in, 4096, &id, &len, "noise"));
    CHECK_EQ(id, QT_ENC_FLT_ALP);
}

/* Header bytes of an ALP payload: e, f. */
static void
alp_ef(int *e, int *f)
{
    size_t p = 0;
    uint64_t cnt;
    (void)qt_varint_get(g_buf, sizeof(g_buf), &p, &cnt);
    *e = g_buf[p + 1];
    *f = g_buf[p + 2];
}

TEST(decimal_strings_are_exact)
{
    /* Any double parsed from a decimal with <= 15 significant digits and
     * k <= 18 decimals maps to d = the digits, e = k: no exceptions. */
    uint64_t s = qt_test_seed() ^ 0x57d;
    char txt[64];
    for (int k = 0; k <= 18; k++) {
        for (uint32_t i = 0; i < 512; i++) {
            int64_t digits = (int64_t)(qt_test_rand(&s) % 999999999999999ull) + 1;
            digits = (digits >> qt_test_rand(&s) % 48) + 1; /* all magnitudes, never -0 */
            snprintf(txt, sizeof(txt), "%s%lld.0e-%d", i % 3 ? "" : "-", (long long)digits, k);
            g_in[i] = strtod(txt, NULL);
        }
        int id, e, f;
        size_t len;
        CHECK(roundtrip(g_in, 512, &id, &len, "strtod"));
        CHECK(is_alp(id));
        alp_ef(&e, &f);
        CHECK(e - f <= k);
        /* no exceptions: the body ends with the last FOR run */
        size_t p = 0;
        uint64_t cnt = 0, x = 1;
        (void)qt_varint_get(g_buf, len, &p, &cnt);
        p += 4;
        CHECK_OK(qt_varint_get(g_buf, len, &p, &x));
        CHECK_EQ(x, 0);
    }
}

TEST(trailing_zeros_use_factor)
{
    uint64_t s = qt_test_seed() ^ 0x7200;
    for (uint32_t i = 0; i < 2000; i++) /* meter totals in whole hundreds */
        g_in[i] = (double)(100 * (int64_t)(12000 + qt_test_rand(&s) % 1000));
    int id, e, f;
    size_t len;
    CHECK(roundtrip(g_in, 2000, &id, &len, "hundreds"));
    CHECK_EQ(id, QT_ENC_FLT_ALP);
    alp_ef(&e, &f);
    CHECK_EQ(e, 0);
    CHECK_EQ(f, 2);
    CHECK(len * 8 < 2000u * 11); /* 10-bit d, not 17-bit */
}

TEST(constant_blocks)
{
    static const uint64_t pats[] = {
        0x0000000000000000ull, 0x8000000000000000ull, /* +-0.0 */
        0x7ff8000000000001ull, 0xfff4000000000abcull, /* NaN payloads (quiet, signalling) */
        0x7ff0000000000000ull, 0x4045000000000000ull, /* inf, 42.0 */
    };
    static const uint32_t ns[] = {1, 2, 8, 1000, NMAX};
    for (size_t p = 0; p < sizeof(pats) / sizeof(pats[0]); p++) {
        for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
            int id;
            size_t len;
            for (uint32_t i = 0; i < ns[k]; i++)
                g_in[i] = qt_bits_f64(pats[p]);
            CHECK(roundtrip(g_in, ns[k], &id, &len, "const"));
            CHECK_EQ(id, QT_ENC_FLT_CONST);
            CHECK(len <= 2 + 1 + 8);
        }
    }
}

/* Values that stress the decimal mapping and the fallbacks. */
static const uint64_t SPECIALS[] = {
    0x0000000000000000ull, 0x8000000000000000ull, /* +0.0, -0.0 */
    0x7ff0000000000000ull, 0xfff0000000000000ull, /* +-inf */
    0x7ff8000000000000ull, 0xfff8000000000000ull, /* quiet NaNs */
    0x7ff0000000000001ull, 0x7ff7ffffffffffffull, /* signalling NaN payloads */
    0xfffdeadbeef00001ull, 0x7fffffffffffffffull, /* NaN, all-ones payload */
    0x0000000000000001ull, 0x800fffffffffffffull, /* subnormals */
    0x0010000000000000ull, 0x7fefffffffffffffull, /* DBL_MIN, DBL_MAX */
    0xffefffffffffffffull, 0x3fd3333333333334ull, /* -DBL_MAX, 0.1 + 0.2 */
    0x01a56e1fc2f8f359ull, 0x7e37e43c8800759cull, /* 1e-300, 1e300 */
    0x4320000000000000ull, 0xc320000000000000ull, /* +-2^51 */
    0x4330000000000001ull, 0x433fffffffffffffull, /* 2^52 + 1, 2^53 - 1 */
    0x43e0000000000000ull, 0xc3e0000000000000ull, /* +-2^63 */
    0x3fb999999999999aull, 0x3ff0000000000001ull, /* 0.1, 1 + ulp */
    0x3e112e0be826d695ull, 0x3c9cd2b297d889bcull, /* 1e-9, 1e-16 */
};
#define NSPECIAL (sizeof(SPECIALS) / sizeof(SPECIALS[0]))

TEST(special_values_round_trip)
{
    uint64_t s = qt_test_seed() ^ 0x5bec;
    int id;
    size_t len;
    for (size_t i = 0; i < NSPECIAL; i++) /* all of them, once */
        g_in[i] = qt_bits_f64(SPECIALS[i]);
    CHECK(roundtrip(g_in, NSPECIAL, &id, &len, "specials"));
    for (size_t a = 0; a < NSPECIAL; a++) { /* each alone, and next to decimals */
        g_in[0] = qt_bits_f64(SPECIALS[a]);
        CHECK(roundtrip(g_in, 1, &id, &len, "special alone"));
        for (uint32_t i = 0; i < 300; i++)
            g_in[i] = i % 50 == 7 ? qt_bits_f64(SPECIALS[a]) : dec(2000 + (int64_t)(i % 9), 2);
        CHECK(roundtrip(g_in, 300, &id, &len, "special among decimals"));
    }
    for (uint32_t i = 0; i < NMAX; i++) /* random draws from the list */
        g_in[i] = qt_bits_f64(SPECIALS[qt_test_rand(&s) % NSPECIAL]);
    CHECK(roundtrip(g_in, NMAX, &id, &len, "specials random"));
}

/* Quantised data with a share of exceptions (per mille) of mixed kinds. */
static void
gen_mixture(uint64_t *s, uint32_t n, unsigned permille)
{
    int64_t x = 2000;
    for (uint32_t i = 0; i < n; i++) {
        x += (int64_t)(qt_test_rand(s) % 5) - 2;
        g_in[i] = dec(x, 2);
        if (qt_test_rand(s) % 1000 >= permille)
            continue;
        switch (qt_test_rand(s) % 4) {
        case 0: g_in[i] = qt_bits_f64(SPECIALS[qt_test_rand(s) % NSPECIAL]); break;
        case 1: g_in[i] = qt_bits_f64(qt_test_rand(s)); break;
        case 2:
            g_in[i] = g_in[i] / 3.0; /* no short decimal form */
            break;
        default: g_in[i] = -0.0; break;
        }
    }
}

TEST(exception_mixtures)
{
    uint64_t s = qt_test_seed() ^ 0xe8c;
    static const unsigned permille[] = {10, 100, 600};
    static const uint32_t ns[] = {8, 100, 1000, NMAX};
    for (size_t p = 0; p < 3; p++) {
        for (size_t k = 0; k < 4; k++) {
            for (int rep = 0; rep < 5; rep++) {
                int id;
                size_t len;
                gen_mixture(&s, ns[k], permille[p]);
                CHECK(roundtrip(g_in, ns[k], &id, &len, "mixture"));
                CHECK(len <= qt_flt_bound(ns[k]));
                if (ns[k] >= 1000 && permille[p] <= 100)
                    CHECK(is_alp(id));
                if (permille[p] == 600) /* ALP only while it beats raw */
                    CHECK(len <= 8u * ns[k] + 3);
            }
        }
    }
    /* exceptions at both ends and everywhere but one slot */
    for (uint32_t i = 0; i < 500; i++)
        g_in[i] = i < 3 || i > 496 ? NAN : dec(i, 1);
    int id;
    size_t len;
    CHECK(roundtrip(g_in, 500, &id, &len, "edges"));
    CHECK(is_alp(id));
    for (uint32_t i = 0; i < 500; i++)
        g_in[i] = i == 250 ? 1.5 : (i % 2 ? -0.0 : NAN);
    CHECK(roundtrip(g_in, 500, &id, &len, "one decimal"));
}

TEST(random_bits_fall_back)
{
    uint64_t s = qt_test_seed() ^ 0xb175;
    int id;
    size_t len;
    for (int rep = 0; rep < 10; rep++) {
        uint32_t n = rep == 0 ? NMAX : 1 + (uint32_t)(qt_test_rand(&s) % NMAX);
        for (uint32_t i = 0; i < n; i++)
            g_in[i] = qt_bits_f64(qt_test_rand(&s));
        CHECK(roundtrip(g_in, n, &id, &len, "random bits"));
        CHECK(id == QT_ENC_FLT_XOR || id == QT_ENC_FLT_RAW);
        CHECK(len <= 8u * n + 3);
    }
    /* full-precision smooth values (computed averages, calibration) */
    for (uint32_t i = 0; i < 4096; i++)
        g_in[i] = 20.0 + 5.0 * sin(i / 300.0) + gauss(&s) * 1e-3;
    CHECK(roundtrip(g_in, 4096, &id, &len, "smooth"));
    CHECK_EQ(id, QT_ENC_FLT_XOR);
    CHECK(len < 4096u * 8);
    for (uint32_t i = 0; i < 4096; i++) /* full-precision values held for a while */
        g_in[i] = i % 16 == 0 ? gauss(&s) * 100.0 : g_in[i - 1 + (i == 0)];
    g_in[0] = 1.0 / 3.0;
    CHECK(roundtrip(g_in, 4096, &id, &len, "held"));
    CHECK_EQ(id, QT_ENC_FLT_XOR);
    CHECK(len < 4096u * 8 / 4);
}

/* One block of a random flavour: decimals (k, magnitude, walk or noise,
 * held values, trailing zeros) with a random share of exceptions, or
 * non-decimal values. */
static uint32_t
gen_random_flavour(uint64_t *s)
{
    uint32_t n = 1 + (uint32_t)(qt_test_rand(s) % NMAX);
    int k = (int)(qt_test_rand(s) % 5);
    int64_t mult = qt_test_rand(s) % 4 == 0 ? 100 : 1;
    double noise = pow(10.0, (double)(qt_test_rand(s) % 6));
    unsigned kind = (unsigned)(qt_test_rand(s) % 4);
    unsigned exc_permille = (unsigned[]){0, 1, 10, 100}[qt_test_rand(s) % 4];
    int64_t x = (int64_t)(qt_test_rand(s) % 2000000) - 1000000;
    for (uint32_t i = 0; i < n; i++) {
        if (kind == 0 || kind == 3)
            x += llround(gauss(s) * noise);
        else if (kind == 1 && qt_test_rand(s) % 10 == 0)
            x += llround(gauss(s) * noise);
        int64_t u = kind == 2 ? x + llround(gauss(s) * noise) : x;
        g_in[i] = kind == 3 ? (double)u / 7.0 : dec(u * mult, k);
        if (qt_test_rand(s) % 1000 < exc_permille)
            g_in[i] = qt_bits_f64(SPECIALS[qt_test_rand(s) % NSPECIAL]);
    }
    return n;
}

TEST(random_flavours_round_trip)
{
    uint64_t s = qt_test_seed() ^ 0xf1a7;
    int seen[256] = {0};
    for (int rep = 0; rep < 400; rep++) {
        uint32_t n = gen_random_flavour(&s);
        int id;
        size_t len;
        CHECK(roundtrip(g_in, n, &id, &len, "random flavour"));
        CHECK(len <= 8u * n + 3 || id == QT_ENC_FLT_CONST);
        seen[id]++;
    }
    printf("  flavours: CONST %d ALP %d ALP_DELTA %d XOR %d RAW %d\n", seen[QT_ENC_FLT_CONST],
           seen[QT_ENC_FLT_ALP], seen[QT_ENC_FLT_ALP_DELTA], seen[QT_ENC_FLT_XOR],
           seen[QT_ENC_FLT_RAW]);
    CHECK(seen[QT_ENC_FLT_ALP] > 0 && seen[QT_ENC_FLT_ALP_DELTA] > 0 && seen[QT_ENC_FLT_XOR] > 0);
}

TEST(xor_widest_tokens)
{
    /* Non-decimal values held for 8 samples (cheap repeats, so XOR wins)
     * whose changes XOR to 0 leading and 7 trailing zeros (57 centre bits,
     * the widest read) and to 0 leading, 0 trailing (64-bit payload). */
    static const uint64_t a = 0x3ff0000000000081ull, b = 0xbff0000000000001ull;
    for (uint32_t i = 0; i < 64; i++)
        g_in[i] = qt_bits_f64((i / 8) % 2 ? b : a);
    g_in[40] = qt_bits_f64(a ^ 0x8000000000000001ull);
    int id;
    size_t len;
    CHECK(roundtrip(g_in, 64, &id, &len, "wide xor"));
    CHECK_EQ(id, QT_ENC_FLT_XOR);
}

TEST(block_sizes)
{
    uint64_t s = qt_test_seed() ^ 0x512e;
    int id;
    size_t len;
    CHECK(roundtrip(g_in, 0, &id, &len, "empty"));
    CHECK_EQ(id, QT_ENC_FLT_RAW);
    CHECK_EQ(len, 2);
    for (uint32_t n = 1; n <= 300; n++) {
        for (uint32_t i = 0; i < n; i++)
            g_in[i] = dec(100 + (int64_t)(qt_test_rand(&s) % 1000), 1);
        CHECK(roundtrip(g_in, n, &id, &len, "small"));
    }
    static const uint32_t ns[] = {127, 128, 129, 1023, 1024, 1025, 8191, 8192};
    for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
        gen_field(F_FLOW, &s, g_in, ns[k]);
        CHECK(roundtrip(g_in, ns[k], &id, &len, "run edges"));
        CHECK(is_alp(id));
    }
    size_t got;
    CHECK_RC(qt_flt_encode(g_in, NMAX + 1, g_buf, sizeof(g_buf), &got), QT_EINVAL);
}

/* ---- hostile input ---------------------------------------------------- */

/* A few payloads of every encoding, for the corruption tests. */
static size_t
sample_payload(int which, uint64_t *s, uint8_t *out, size_t cap)
{
    uint32_t n = 300;
    switch (which) {
    case 0: gen_field(F_PH, s, g_in, n); break;
    case 1: gen_field(F_TEMP, s, g_in, n); break;
    case 2: gen_mixture(s, n, 100); break;
    case 3:
        for (uint32_t i = 0; i < n; i++)
            g_in[i] = 20.0 + sin(i / 30.0) / 3.0;
        break;
    case 4:
        for (uint32_t i = 0; i < n; i++)
            g_in[i] = qt_bits_f64(qt_test_rand(s));
        break;
    default:
        n = 5;
        for (uint32_t i = 0; i < n; i++)
            g_in[i] = -0.0;
        break;
    }
    size_t len = 0;
    int rc = qt_flt_encode(g_in, n, out, cap, &len);
    return rc == 0 ? len : 0;
}

TEST(every_prefix_is_truncated)
{
    uint64_t s = qt_test_seed() ^ 0x7c;
    static uint8_t buf[BUF_MAX];
    for (int which = 0; which < 6; which++) {
        size_t len = sample_payload(which, &s, buf, sizeof(buf));
        CHECK(len > 0);
        uint32_t m;
        CHECK_OK(qt_flt_decode(buf, len, g_out, NMAX, &m));
        for (size_t cut = 0; cut < len; cut++) {
            /* exact-size copy so ASan sees any read past the prefix */
            uint8_t *p = malloc(cut > 0 ? cut : 1);
            CHECK(p != NULL);
            memcpy(p, buf, cut);
            int rc = qt_flt_decode(p, cut, g_out, NMAX, &m);
            free(p);
            CHECK_RC(rc, QT_ETRUNC);
        }
        /* and a trailing byte is rejected */
        buf[len] = 0;
        CHECK_RC(qt_flt_decode(buf, len + 1, g_out, NMAX, &m), QT_ECORRUPT);
    }
}

TEST(bit_flips_never_crash)
{
    uint64_t s = qt_test_seed() ^ 0xf11b;
    static uint8_t buf[BUF_MAX];
    int decoded = 0, rejected = 0;
    for (int which = 0; which < 6; which++) {
        size_t len = sample_payload(which, &s, buf, sizeof(buf));
        CHECK(len > 0);
        for (size_t bit = 0; bit < len * 8; bit++) {
            uint8_t *p = malloc(len);
            CHECK(p != NULL);
            memcpy(p, buf, len);
            p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            uint32_t m = 0;
            int rc = qt_flt_decode(p, len, g_out, NMAX, &m);
            free(p);
            if (rc == 0) {
                CHECK(m <= NMAX);
                decoded++;
                /* whatever decoded must survive its own round trip */
                int id;
                size_t l2;
                memcpy(g_in, g_out, sizeof(double) * m);
                CHECK(roundtrip(g_in, m, &id, &l2, "flip re-encode"));
            } else {
                CHECK(rc == QT_ETRUNC || rc == QT_ECORRUPT || rc == QT_ELIMIT || rc == QT_EINVAL ||
                      rc == QT_ENOSPACE);
                rejected++;
            }
        }
    }
    printf("  bit flips: %d decoded, %d rejected\n", decoded, rejected);
    CHECK(rejected > 0);
}

static int
decode_bytes(const uint8_t *b, size_t len)
{
    uint32_t m;
    return qt_flt_decode(b, len, g_out, NMAX, &m);
}

TEST(hostile_headers)
{
    /* count above the block limit, unknown id, empty non-raw */
    const uint8_t big[] = {0x81, 0x40, QT_ENC_FLT_RAW};
    CHECK_RC(decode_bytes(big, sizeof(big)), QT_ELIMIT);
    const uint8_t unk[] = {1, 99};
    CHECK_RC(decode_bytes(unk, sizeof(unk)), QT_EINVAL);
    const uint8_t cst0[] = {0, QT_ENC_FLT_CONST, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_RC(decode_bytes(cst0, sizeof(cst0)), QT_ECORRUPT);
    uint32_t m;
    const uint8_t raw2[] = {2, QT_ENC_FLT_RAW, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_RC(qt_flt_decode(raw2, sizeof(raw2), g_out, 1, &m), QT_ENOSPACE);
    CHECK_OK(qt_flt_decode(raw2, sizeof(raw2), g_out, 2, &m));
    /* ALP: e or f > 18, run length 2^6 and 2^11, exceptions > n */
    const uint8_t e19[] = {1, QT_ENC_FLT_ALP, 19, 0, 7, 0, 0, 0};
    CHECK_RC(decode_bytes(e19, sizeof(e19)), QT_ECORRUPT);
    const uint8_t f19[] = {1, QT_ENC_FLT_ALP, 2, 19, 7, 0, 0, 0};
    CHECK_RC(decode_bytes(f19, sizeof(f19)), QT_ECORRUPT);
    const uint8_t fe[] = {1, QT_ENC_FLT_ALP, 2, 3, 7, 0, 0, 0}; /* f > e: fine */
    CHECK_OK(decode_bytes(fe, sizeof(fe)));
    const uint8_t lg6[] = {1, QT_ENC_FLT_ALP, 0, 0, 6, 0, 0, 0};
    CHECK_RC(decode_bytes(lg6, sizeof(lg6)), QT_ECORRUPT);
    const uint8_t lg11[] = {1, QT_ENC_FLT_ALP, 0, 0, 11, 0, 0, 0};
    CHECK_RC(decode_bytes(lg11, sizeof(lg11)), QT_ECORRUPT);
    const uint8_t xn[] = {1, QT_ENC_FLT_ALP, 0, 0, 7, 2, 0, 0};
    CHECK_RC(decode_bytes(xn, sizeof(xn)), QT_ECORRUPT);
    /* exception positions: out of range, repeated */
    uint8_t ex[64] = {2, QT_ENC_FLT_ALP, 0, 0, 7, 2, 0, 0, 5, 0, 5, 0};
    CHECK_RC(decode_bytes(ex, 12 + 16), QT_ECORRUPT);
    ex[8] = 1;
    ex[10] = 1;
    CHECK_RC(decode_bytes(ex, 12 + 16), QT_ECORRUPT);
    ex[8] = 0;
    CHECK_OK(decode_bytes(ex, 12 + 16));
    /* FOR width above 64 */
    const uint8_t w65[] = {1, QT_ENC_FLT_ALP, 0, 0, 7, 0, 0, 65};
    CHECK_RC(decode_bytes(w65, sizeof(w65)), QT_ECORRUPT);
    /* XOR: flag 10 with no stored count; zero centre bits; non-zero padding */
    uint8_t xr[16] = {2, QT_ENC_FLT_XOR, 0, 0, 0, 0, 0, 0, 0, 0, 0x2};
    CHECK_RC(decode_bytes(xr, 11), QT_ECORRUPT);
    xr[10] = 0x1; /* 01, lead code 0, sig 0 */
    CHECK_RC(decode_bytes(xr, 12), QT_ECORRUPT);
    xr[10] = 0x4; /* 00 then padding bit set */
    CHECK_RC(decode_bytes(xr, 11), QT_ECORRUPT);
    xr[10] = 0x0;
    CHECK_OK(decode_bytes(xr, 11));
}

TEST(hostile_wide_d_values)
{
    /* 4 values of full 64-bit width, min INT64_MIN: the slow conversion path
     * must give (double)d * 10^f * 10^-e without undefined behaviour. */
    uint8_t b[64] = {4, QT_ENC_FLT_ALP, 3, 1, 7, 0};
    size_t p = 6;
    CHECK_OK(qt_varint_put(b, sizeof(b), &p, qt_zigzag64(INT64_MIN)));
    b[p++] = 64;
    const uint64_t off[4] = {0, ~0ull, 1ull << 63, 12345};
    for (int i = 0; i < 4; i++, p += 8)
        qt_store_le64(b + p, off[i]);
    uint32_t m;
    CHECK_OK(qt_flt_decode(b, p, g_out, NMAX, &m));
    CHECK_EQ(m, 4);
    for (int i = 0; i < 4; i++) {
        int64_t d = (int64_t)(off[i] + (uint64_t)INT64_MIN);
        CHECK(qt_f64_bits(g_out[i]) == qt_f64_bits((double)d * 10.0 / 1000.0));
    }
    /* the same as ALP_DELTA: running sums wrap modulo 2^64 */
    b[1] = QT_ENC_FLT_ALP_DELTA;
    memmove(b + 7, b + 6, p - 6);
    b[6] = 0x7f; /* base -64 */
    CHECK_OK(qt_flt_decode(b, p + 1, g_out, NMAX, &m));
    memcpy(g_in, g_out, 4 * sizeof(double));
    int id;
    size_t len;
    CHECK(roundtrip(g_in, 4, &id, &len, "wide re-encode"));
}

TEST(encode_reports_nospace)
{
    uint64_t s = qt_test_seed() ^ 0x0ff;
    gen_field(F_VOLTAGE, &s, g_in, 2000);
    size_t len = 0, l2 = 0;
    CHECK_OK(qt_flt_encode(g_in, 2000, g_buf, sizeof(g_buf), &len));
    static uint8_t exact[BUF_MAX];
    CHECK_OK(qt_flt_encode(g_in, 2000, exact, len, &l2));
    CHECK_EQ(l2, len);
    CHECK(memcmp(exact, g_buf, len) == 0);
    for (size_t cap = 0; cap < len; cap += 1 + cap / 8)
        CHECK_RC(qt_flt_encode(g_in, 2000, exact, cap, &l2), QT_ENOSPACE);
}
