/*
 * fltcodec.c -- float64 column codec (see fltcodec.h, layout in design/flt.md).
 *
 * City sensors report readings quantised to 0..3 decimals, so most blocks are
 * decimals in disguise.  ALP (Afroozeh, Kuffo, Boncz, SIGMOD 2024) maps such a
 * value v to the integer d = round(v * 10^e / 10^f) and back with
 * (double)d * 10^f / 10^e; the d column is then frame-of-reference packed.
 * Unlike the paper, the decoder divides by the exact 10^e instead of
 * multiplying by a rounded 10^-e: that makes the decoded value the correctly
 * rounded decimal, i.e. what strtod gave the sensor's reading, so decimals
 * never become exceptions (the paper's form misses 1-50% of them for most
 * e, design/flt.md has the numbers).  Encodings, smallest wins:
 *
 *   CONST      every value has one bit pattern            8 bytes
 *   RAW        8 bytes per value                          the ceiling
 *   ALP        d FOR-packed in runs of 2^k values, plus exceptions
 *   ALP_DELTA  as ALP, but the runs hold d[i] - d[i-1] (smooth series)
 *   XOR        Chimp-style XOR with the previous value (no decimal form)
 *
 * Ties go to the faster decoder: RAW over ALP, ALP over ALP_DELTA, any of
 * them over XOR.
 *
 * Invariants:
 *   - Bit-exact round trip: the encoder accepts a value as decimal only if
 *     alp_decode_one() -- the very expression the decoder evaluates --
 *     returns its exact bit pattern; everything else (NaN, +-inf, -0.0,
 *     |v * 10^(e-f)| >= 2^51, non-decimals) is an exception stored raw.
 *     This needs IEEE-754 binary64 arithmetic with round-to-nearest, no
 *     excess precision and no contraction into FMA (the Makefile passes
 *     -ffp-contract=off; the #if below refuses the other two).
 *   - Powers of ten are hex literals, so every compiler holds the same
 *     doubles and a block written by one build decodes in any other.
 *   - No double is converted to an integer unless it is finite and below
 *     2^51 in magnitude (checked first): no undefined behaviour on any input.
 *   - No allocation: the encoder keeps the d column (64 KiB) and an exception
 *     bitmap (1 KiB) on the stack, the decoder one run (8 KiB).
 */
#include "fltcodec.h"

#include "bitpack.h"
#include "codec.h"
#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"
#include "qt_limits.h"

#include <float.h>
#include <stdbool.h>
#include <string.h>

#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "fltcodec: needs double arithmetic without excess precision (FLT_EVAL_METHOD 0)"
#endif
#ifdef __FAST_MATH__
#error "fltcodec: -ffast-math breaks the bit-exact decimal round trip"
#endif

/* Values sampled to rank (e, f) candidates, spread evenly over the block. */
#define ALP_SAMPLE 32u
/* Values the two best candidates are compared on when the sample is unsure. */
#define ALP_SAMPLE_WIDE 256u
/* Estimated cost of one exception: a 64-bit pattern and a 16-bit position. */
#define ALP_EXC_BITS 80u
/* Shortest and longest FOR run, as log2 of the run length. */
#define ALP_RUN_LOG_MIN 7u
#define ALP_RUN_LOG_MAX 10u
#define ALP_CHUNK       (1u << ALP_RUN_LOG_MIN)
#define ALP_CHUNKS_MAX  (QT_BLOCK_POINTS_MAX / ALP_CHUNK)
/* Bytes of one exception on disk: u16 position + u64 bit pattern. */
#define ALP_EXC_BYTES 10u
/* |v * 10^e * 10^-f| must stay below this to become a d (fast rounding). */
#define ALP_ABS_LIMIT 2251799813685248.0 /* 2^51 */
/* 1.5 * 2^52: adding it rounds any |x| <= 2^51 to an integer in the low
 * mantissa bits (the "fast rounding" trick); its bit pattern turns an int64
 * |d| <= 2^51 into the double d with one integer add and one subtraction. */
#define ALP_MAGIC      6755399441055744.0
#define ALP_MAGIC_BITS 0x4338000000000000ull

/* Chimp: trailing zeros above this get the "centre bits only" form. */
#define CHIMP_TRAIL_MIN 6u
#define CHIMP_NONE      255u /* no stored leading-zero count */

static_assert(QT_BLOCK_POINTS_MAX <= 65536u, "exception positions are u16");
static_assert(QT_BLOCK_POINTS_MAX % ALP_CHUNK == 0, "chunks tile a full block");
static_assert(QT_FLT_RUN_MAX == (1u << ALP_RUN_LOG_MAX), "run scratch holds the longest run");
static_assert(sizeof(double) == 8 && DBL_MANT_DIG == 53, "IEEE-754 binary64 doubles");

/* 10^k, k = 0..18, as hex literals: every one is exact in binary64 (5^18 <
 * 2^53), and the decoder divides by them, so there is no rounded 10^-k
 * whose error would turn ~1-50% of decimals into exceptions.  On-disk
 * meaning: never change. */
static const double POW10[QT_FLT_EXP_MAX + 1] = {
    0x1p+0, /* 1e0, then 1e1 .. 1e18 in order */
    0x1.4p+3,
    0x1.9p+6,
    0x1.f4p+9,
    0x1.388p+13,
    0x1.86ap+16,
    0x1.e848p+19,
    0x1.312dp+23,
    0x1.7d784p+26,
    0x1.dcd65p+29,
    0x1.2a05f2p+33,
    0x1.74876e8p+36,
    0x1.d1a94a2p+39,
    0x1.2309ce54p+43,
    0x1.6bcc41e9p+46,
    0x1.c6bf52634p+49,
    0x1.1c37937e08p+53,
    0x1.6345785d8ap+56,
    0x1.bc16d674ec8p+59,
};

/* Chimp's eight leading-zero counts (3-bit code -> count).  On-disk. */
static const uint8_t CHIMP_LEAD[8] = {0, 8, 12, 16, 18, 20, 22, 24};

/* ---- small helpers ---------------------------------------------------- */

static inline int64_t
u64_as_i64(uint64_t u)
{
    int64_t i;
    memcpy(&i, &u, 8);
    return i;
}

static inline size_t
varint_len(uint64_t v)
{
    size_t k = 1;
    while (v >= 0x80) {
        v >>= 7;
        k++;
    }
    return k;
}

/* ---- ALP value mapping ------------------------------------------------ */

/* The decoder's expression for one value; the encoder verifies with it.
 * Both powers are exact, so for |dd * 10^f| < 2^53 this is the correctly
 * rounded dd * 10^f / 10^e: exactly what strtod gives for that decimal. */
static inline double
alp_decode_one(double dd, unsigned e, unsigned f)
{
    return dd * POW10[f] / POW10[e];
}

/*
 * Map v to d with (e, f).  Returns true and sets *d when decoding d gives v's
 * exact bit pattern; false for exceptions (*d is then unspecified).
 */
static inline bool
alp_try(double v, unsigned e, unsigned f, int64_t *d)
{
    double x = v * POW10[e] / POW10[f];
    /* Written so that NaN fails too; guards the conversion below. */
    bool in_range = x > -ALP_ABS_LIMIT && x < ALP_ABS_LIMIT;
    double r = (in_range ? x : 0.0) + ALP_MAGIC;
    *d = u64_as_i64(qt_f64_bits(r) - ALP_MAGIC_BITS);
    double back = alp_decode_one(r - ALP_MAGIC, e, f);
    return in_range && qt_f64_bits(back) == qt_f64_bits(v);
}

/* ---- encoder: choosing (e, f) ----------------------------------------- */

struct alp_cand {
    uint8_t e, f;
    uint32_t exc;  /* exceptions among the values tried */
    uint64_t cost; /* estimated bits: FOR width * values + exceptions */
};

/* Cost of coding `cnt` values v[0], v[step], ... with (e, f).  Gives up
 * (cost UINT64_MAX) once more than 3/4 are exceptions: at 80 bits each, ALP
 * cannot beat 64-bit RAW beyond that. */
static struct alp_cand
alp_cost(const double *v, uint32_t step, uint32_t cnt, unsigned e, unsigned f)
{
    qt_assert(e <= QT_FLT_EXP_MAX && f <= QT_FLT_EXP_MAX);
    qt_assert(cnt > 0 && step > 0);
    struct alp_cand c = {(uint8_t)e, (uint8_t)f, 0, UINT64_MAX};
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (uint32_t k = 0; k < cnt; k++) {
        int64_t d;
        if (!alp_try(v[(size_t)k * step], e, f, &d)) {
            if (++c.exc > cnt * 3 / 4)
                return c;
            continue;
        }
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    uint32_t width = qt_bp_width((uint64_t)hi - (uint64_t)lo);
    c.cost = (uint64_t)cnt * width + (uint64_t)c.exc * ALP_EXC_BITS;
    return c;
}

/* Keep the two cheapest candidates in best[0] <= best[1]. */
static void
alp_keep_best(struct alp_cand *best, struct alp_cand c)
{
    if (c.cost == UINT64_MAX)
        return;
    if (c.cost < best[0].cost) {
        best[1] = best[0];
        best[0] = c;
    } else if (c.cost < best[1].cost) {
        best[1] = c;
    }
}

static bool
alp_exact(struct alp_cand c)
{
    return c.cost != UINT64_MAX && c.exc == 0;
}

/*
 * Pick (e, f) for the block from a sample.  Decimals with k digits after the
 * point are exact with (e, f) = (k, 0) (alp_decode_one), so e climbs from 0
 * until every sampled value is exact: d grows tenfold per step, so no larger
 * e can be cheaper.  At e = 0, f climbs while it stays exact to strip
 * trailing zeros (12300 -> d = 123, f = 2).  If no e is exact (outliers,
 * non-decimals) the two cheapest are compared on a wider sample.  Returns
 * false when no pair codes a quarter of the sample (not decimal data).
 */
static bool
alp_pick(const double *v, uint32_t n, unsigned *e_out, unsigned *f_out)
{
    qt_assert(n > 0);
    uint32_t cnt = n < ALP_SAMPLE ? n : ALP_SAMPLE;
    uint32_t step = n / cnt;
    struct alp_cand best[2] = {{0, 0, 0, UINT64_MAX}, {0, 0, 0, UINT64_MAX}};
    for (unsigned e = 0; e <= QT_FLT_EXP_MAX && !alp_exact(best[0]); e++)
        alp_keep_best(best, alp_cost(v, step, cnt, e, 0));
    for (unsigned f = 1; f <= QT_FLT_EXP_MAX && alp_exact(best[0]) && best[0].e == 0; f++) {
        struct alp_cand c = alp_cost(v, step, cnt, 0, f);
        if (!alp_exact(c) || c.cost >= best[0].cost)
            break;
        best[0] = c;
    }
    if (best[0].cost == UINT64_MAX)
        return false;
    if (best[0].exc > 0 && best[1].cost != UINT64_MAX && n > cnt) {
        uint32_t wide = n < ALP_SAMPLE_WIDE ? n : ALP_SAMPLE_WIDE;
        struct alp_cand a = alp_cost(v, n / wide, wide, best[0].e, best[0].f);
        struct alp_cand b = alp_cost(v, n / wide, wide, best[1].e, best[1].f);
        if (b.cost < a.cost)
            best[0] = best[1];
    }
    *e_out = best[0].e;
    *f_out = best[0].f;
    return true;
}

/* ---- encoder: the d column and its size ------------------------------- */

/* Encoder scratch: lives on qt_flt_encode's stack (about 66 KiB). */
struct alp_work {
    unsigned e, f;
    uint32_t exc;                                     /* exceptions in the block */
    int64_t d[QT_BLOCK_POINTS_MAX];                   /* d, exceptions filled in */
    uint64_t excmap[QT_BLOCK_POINTS_MAX / 64];        /* bit i: v[i] is an exception */
    int64_t lo[ALP_CHUNKS_MAX], hi[ALP_CHUNKS_MAX];   /* d range per chunk */
    int64_t dlo[ALP_CHUNKS_MAX], dhi[ALP_CHUNKS_MAX]; /* delta range per chunk */
};

/* Two doubles / two 64-bit lanes (GCC and clang vector extensions: SSE2 on
 * x86-64, NEON on arm64).  The -O2 build does not auto-vectorise loops of
 * unknown trip count, and the decimal mapping divides, which is 3x faster
 * two lanes at a time.  Lane arithmetic is IEEE binary64, exactly like the
 * scalar alp_decode_one(), so both paths give the same bits. */
typedef double flt_v2d __attribute__((vector_size(16)));
typedef uint64_t flt_v2u __attribute__((vector_size(16)));
typedef int64_t flt_v2i __attribute__((vector_size(16)));

static inline flt_v2d
v2d_load(const double *p)
{
    flt_v2d x;
    memcpy(&x, p, sizeof(x));
    return x;
}

/*
 * d for v[i .. i+2), stored at d[i]; returns a lane mask of exceptions.
 * The vector twin of alp_try (f == 0 skips an exact division by 1).
 */
static inline flt_v2i
alp_try2(const double *v, unsigned e, unsigned f, int64_t *d)
{
    const flt_v2d lim = {ALP_ABS_LIMIT, ALP_ABS_LIMIT}, magic = {ALP_MAGIC, ALP_MAGIC};
    const flt_v2u magic_bits = {ALP_MAGIC_BITS, ALP_MAGIC_BITS};
    flt_v2d in = v2d_load(v);
    flt_v2d x = in * POW10[e];
    if (f != 0)
        x = x / POW10[f];
    flt_v2i ok = (x > -lim) & (x < lim);
    flt_v2d r = (flt_v2d)((flt_v2u)x & (flt_v2u)ok) + magic;
    flt_v2u q = (flt_v2u)r - magic_bits;
    memcpy(d, &q, sizeof(q));
    flt_v2d back = (r - magic) * POW10[f] / POW10[e];
    ok &= (flt_v2i)((flt_v2u)back == (flt_v2u)in);
    return ~ok;
}

/* Mark the exceptions among v[g*64 .. g*64+64) (scalar re-check). */
static void
alp_mark_group(const double *v, uint32_t n, uint32_t g, struct alp_work *w)
{
    uint32_t end = (g + 1) * 64 < n ? (g + 1) * 64 : n;
    uint64_t m = 0;
    for (uint32_t i = g * 64; i < end; i++) {
        int64_t d;
        m |= (uint64_t)!alp_try(v[i], w->e, w->f, &d) << (i & 63);
    }
    w->excmap[g] = m;
    w->exc += (uint32_t)__builtin_popcountll(m);
}

/*
 * Compute d for every value.  An exception's slot repeats the previous
 * decimal's d (the first decimal's for leading exceptions) so it widens
 * neither the FOR range nor the delta range.  Returns false if no value is
 * decimal at all.
 */
static bool
alp_fill(const double *v, uint32_t n, struct alp_work *w)
{
    qt_assert(n > 0 && n <= QT_BLOCK_POINTS_MAX);
    w->exc = 0;
    for (uint32_t g = 0; g * 64 < n; g++) {
        uint32_t i = g * 64, end = i + 64 < n ? i + 64 : n;
        flt_v2i bad = {0, 0};
        for (; i + 2 <= end; i += 2)
            bad |= alp_try2(v + i, w->e, w->f, w->d + i);
        for (; i < end; i++)
            bad[0] |= !alp_try(v[i], w->e, w->f, &w->d[i]);
        w->excmap[g] = 0;
        if ((bad[0] | bad[1]) != 0)
            alp_mark_group(v, n, g, w);
    }
    if (w->exc == n)
        return false;
    for (uint32_t g = 0; g * 64 < n; g++) {
        for (uint64_t m = w->excmap[g]; m != 0; m &= m - 1) {
            uint32_t i = g * 64 + (uint32_t)__builtin_ctzll(m);
            w->d[i] = i > 0 ? w->d[i - 1] : 0; /* in order: d[i-1] is final */
        }
    }
    uint32_t first = 0; /* first decimal: exists since exc < n */
    while (w->excmap[first >> 6] >> (first & 63) & 1)
        first++;
    for (uint32_t i = 0; i < first; i++)
        w->d[i] = w->d[first];
    qt_assert(first < n);
    return true;
}

/* Per-chunk (128 values) ranges of d and of its deltas.  delta[0] is coded
 * as a copy of delta[1] (it only sets the base, see alp_write). */
static void
alp_chunk_stats(uint32_t n, struct alp_work *w)
{
    qt_assert(n > 0 && n <= QT_BLOCK_POINTS_MAX);
    const int64_t *d = w->d;
    for (uint32_t c = 0; c * ALP_CHUNK < n; c++) {
        uint32_t i = c * ALP_CHUNK, end = n - i < ALP_CHUNK ? n : i + ALP_CHUNK;
        int64_t lo = d[i], hi = d[i];
        int64_t first_delta = n > 1 ? d[1] - d[0] : 0;
        int64_t dlo = i == 0 ? first_delta : d[i] - d[i - 1];
        int64_t dhi = dlo;
        for (uint32_t j = i + 1; j < end; j++) {
            int64_t dj = d[j] - d[j - 1]; /* |d| <= 2^51: no overflow */
            lo = d[j] < lo ? d[j] : lo;
            hi = d[j] > hi ? d[j] : hi;
            dlo = dj < dlo ? dj : dlo;
            dhi = dj > dhi ? dj : dhi;
        }
        w->lo[c] = lo;
        w->hi[c] = hi;
        w->dlo[c] = dlo;
        w->dhi[c] = dhi;
    }
}

/* Exact bytes of the FOR runs of length 2^lg over per-chunk ranges. */
static size_t
alp_runs_size(const int64_t *lo, const int64_t *hi, uint32_t n, unsigned lg)
{
    qt_assert(lg >= ALP_RUN_LOG_MIN && lg <= ALP_RUN_LOG_MAX);
    uint32_t per = 1u << (lg - ALP_RUN_LOG_MIN);
    uint32_t chunks = (n + ALP_CHUNK - 1) / ALP_CHUNK;
    size_t total = 0;
    for (uint32_t c = 0; c < chunks; c += per) {
        int64_t l = lo[c], h = hi[c];
        for (uint32_t k = 1; k < per && c + k < chunks; k++) {
            l = lo[c + k] < l ? lo[c + k] : l;
            h = hi[c + k] > h ? hi[c + k] : h;
        }
        uint32_t start = c * ALP_CHUNK;
        uint32_t len = n - start < (1u << lg) ? n - start : (1u << lg);
        uint32_t width = qt_bp_width((uint64_t)h - (uint64_t)l);
        total += varint_len(qt_zigzag64(l)) + 1 + qt_bp_bytes(len, width);
    }
    qt_assert(total >= chunks * 2u / per);
    return total;
}

/* Best run length for one column: sets *lg_out, returns its runs' bytes. */
static size_t
alp_best_runs(const int64_t *lo, const int64_t *hi, uint32_t n, unsigned *lg_out)
{
    size_t best = SIZE_MAX;
    for (unsigned lg = ALP_RUN_LOG_MIN; lg <= ALP_RUN_LOG_MAX; lg++) {
        size_t s = alp_runs_size(lo, hi, n, lg);
        if (s < best) {
            best = s;
            *lg_out = lg;
        }
    }
    qt_assert(best != SIZE_MAX);
    return best;
}

/* ---- encoder: writing ------------------------------------------------- */

struct alp_plan {
    bool delta;
    unsigned lg; /* log2 run length */
    size_t body; /* body bytes (after the encoding id) */
};

/* Sizes of ALP and ALP_DELTA for the filled work; returns the smaller. */
static struct alp_plan
alp_plan(uint32_t n, struct alp_work *w)
{
    qt_assert(w->exc < n);
    alp_chunk_stats(n, w);
    unsigned lg_a = ALP_RUN_LOG_MIN, lg_d = ALP_RUN_LOG_MIN;
    size_t fixed = 3 + varint_len(w->exc) + (size_t)w->exc * ALP_EXC_BYTES;
    size_t plain = fixed + alp_best_runs(w->lo, w->hi, n, &lg_a);
    int64_t first_delta = n > 1 ? w->d[1] - w->d[0] : 0;
    size_t base_len = varint_len(qt_zigzag64(w->d[0] - first_delta));
    size_t delta = fixed + base_len + alp_best_runs(w->dlo, w->dhi, n, &lg_d);
    struct alp_plan p = {false, lg_a, plain};
    if (delta < plain) {
        p.delta = true;
        p.lg = lg_d;
        p.body = delta;
    }
    return p;
}

/* Write an ALP / ALP_DELTA body at out[*pos]; the caller checked the size.
 * Turns w->d into deltas in place for ALP_DELTA. */
static int
alp_write(uint32_t n, struct alp_work *w, struct alp_plan p, uint8_t *out, size_t cap, size_t *pos)
{
    qt_assert(p.lg >= ALP_RUN_LOG_MIN && p.lg <= ALP_RUN_LOG_MAX);
    size_t o = *pos;
    out[o++] = (uint8_t)w->e;
    out[o++] = (uint8_t)w->f;
    out[o++] = (uint8_t)p.lg;
    int rc = qt_varint_put(out, cap, &o, w->exc);
    if (p.delta && rc == 0) {
        int64_t first_delta = n > 1 ? w->d[1] - w->d[0] : 0;
        rc = qt_varint_put(out, cap, &o, qt_zigzag64(w->d[0] - first_delta));
        for (uint32_t i = n - 1; i > 0; i--)
            w->d[i] -= w->d[i - 1];
        w->d[0] = first_delta;
    }
    uint32_t run = 1u << p.lg;
    for (uint32_t i = 0; i < n && rc == 0; i += run)
        rc = qt_for_encode(w->d + i, n - i < run ? n - i : run, out, cap, &o);
    if (rc != 0)
        return rc;
    size_t vals = o + (size_t)w->exc * 2;
    for (uint32_t word = 0; word * 64 < n; word++) {
        for (uint64_t m = w->excmap[word]; m != 0; m &= m - 1) {
            uint32_t i = word * 64 + (uint32_t)__builtin_ctzll(m);
            qt_store_le16(out + o, (uint16_t)i);
            o += 2;
        }
    }
    qt_assert(o == vals);
    *pos = o;
    return 0;
}

/* Append the exceptions' bit patterns (after alp_write's positions). */
static void
alp_write_exc_values(const double *v, uint32_t n, const struct alp_work *w, uint8_t *out,
                     size_t *pos)
{
    size_t o = *pos;
    for (uint32_t word = 0; word * 64 < n; word++) {
        for (uint64_t m = w->excmap[word]; m != 0; m &= m - 1) {
            uint32_t i = word * 64 + (uint32_t)__builtin_ctzll(m);
            qt_store_le64(out + o, qt_f64_bits(v[i]));
            o += 8;
        }
    }
    qt_assert(o - *pos == (size_t)w->exc * 8);
    *pos = o;
}

/* ---- XOR (Chimp) ------------------------------------------------------ */

/*
 * Chimp (Liakos et al., VLDB 2022): x = bits(v[i]) ^ bits(v[i-1]) is coded as
 *   00                     x == 0
 *   01 lead3 sig6 centre   more than 6 trailing zeros: the sig centre bits
 *   10 payload             leading zeros as stored: 64 - lead low bits of x
 *   11 lead3 payload       new leading-zero count, then 64 - lead bits
 * with leading zeros rounded down to CHIMP_LEAD.  Fields go LSB-first.
 */
struct chimp_tok {
    uint32_t head, head_bits;
    uint64_t pay;
    uint32_t pay_bits;
};

/* Leading-zero count (clz, 0..63) -> code of the largest CHIMP_LEAD <= it. */
static const uint8_t CHIMP_CODE[64] = {
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
};

static inline unsigned
chimp_lead_code(uint64_t x)
{
    qt_assert_slow(x != 0);
    return CHIMP_CODE[__builtin_clzll(x)];
}

static inline struct chimp_tok
chimp_token(uint64_t x, unsigned *stored)
{
    struct chimp_tok t = {0, 2, 0, 0};
    if (x == 0) {
        *stored = CHIMP_NONE;
        return t;
    }
    unsigned code = chimp_lead_code(x);
    unsigned lead = CHIMP_LEAD[code];
    unsigned trail = (unsigned)__builtin_ctzll(x);
    if (trail > CHIMP_TRAIL_MIN) {
        unsigned sig = 64 - lead - trail;
        t = (struct chimp_tok){1u | code << 2 | sig << 5, 11, x >> trail, sig};
        *stored = CHIMP_NONE;
    } else if (lead == *stored) {
        t = (struct chimp_tok){2u, 2, x, 64 - lead};
    } else {
        t = (struct chimp_tok){3u | code << 2, 5, x, 64 - lead};
        *stored = lead;
    }
    return t;
}

/* Bits of the XOR body for v[0..n), n >= 1. */
static uint64_t
chimp_bits(const double *v, uint32_t n)
{
    qt_assert(n > 0);
    uint64_t total = 64, prev = qt_f64_bits(v[0]);
    unsigned stored = CHIMP_NONE;
    for (uint32_t i = 1; i < n; i++) {
        uint64_t cur = qt_f64_bits(v[i]);
        struct chimp_tok t = chimp_token(cur ^ prev, &stored);
        total += t.head_bits + t.pay_bits;
        prev = cur;
    }
    return total;
}

/* LSB-first bit writer into a buffer the caller sized. */
struct bitw {
    uint8_t *out;
    size_t pos;
    uint64_t acc;
    unsigned nacc; /* < 32 between calls */
};

static inline void
bw_put(struct bitw *w, uint64_t v, unsigned nb)
{
    qt_assert_slow(nb <= 32 && (nb == 32 || v >> nb == 0));
    w->acc |= v << w->nacc;
    w->nacc += nb;
    if (w->nacc >= 32) {
        qt_store_le32(w->out + w->pos, (uint32_t)w->acc);
        w->pos += 4;
        w->acc >>= 32;
        w->nacc -= 32;
    }
}

static inline void
bw_put64(struct bitw *w, uint64_t v, unsigned nb)
{
    if (nb > 32) {
        bw_put(w, v & 0xffffffffu, 32);
        bw_put(w, v >> 32, nb - 32);
    } else {
        bw_put(w, v, nb);
    }
}

/* Write the XOR body of `bits` bits (from chimp_bits) at out[*pos]. */
static void
chimp_write(const double *v, uint32_t n, uint64_t bits, uint8_t *out, size_t *pos)
{
    qt_assert(n > 0 && bits >= 64);
    struct bitw w = {out, *pos, 0, 0};
    uint64_t prev = qt_f64_bits(v[0]);
    unsigned stored = CHIMP_NONE;
    bw_put64(&w, prev, 64);
    for (uint32_t i = 1; i < n; i++) {
        uint64_t cur = qt_f64_bits(v[i]);
        struct chimp_tok t = chimp_token(cur ^ prev, &stored);
        bw_put(&w, t.head, t.head_bits);
        bw_put64(&w, t.pay, t.pay_bits);
        prev = cur;
    }
    for (; w.nacc > 0; w.nacc = w.nacc > 8 ? w.nacc - 8 : 0) {
        w.out[w.pos++] = (uint8_t)w.acc;
        w.acc >>= 8;
    }
    qt_assert(w.pos - *pos == (bits + 7) / 8);
    *pos = w.pos;
}

/* ---- encoder entry ---------------------------------------------------- */

size_t
qt_flt_bound(uint32_t n)
{
    qt_assert(n <= QT_BLOCK_POINTS_MAX);
    /* Every encoding is chosen only when no larger than RAW; CONST is 8. */
    return QT_VARINT_MAX + 1 + (size_t)8 * (n > 0 ? n : 1);
}

/* Values equal (bit for bit) to their predecessor: n - 1 means constant. */
static uint32_t
flt_repeats(const double *v, uint32_t n)
{
    qt_assert(n > 0);
    uint32_t rep = 0;
    for (uint32_t i = 1; i < n; i++)
        rep += qt_f64_bits(v[i]) == qt_f64_bits(v[i - 1]);
    return rep;
}

/* Which encoding and how large its body is. */
struct flt_choice {
    uint8_t id;
    size_t body;
    uint64_t xor_bits;
    struct alp_plan alp;
};

static struct flt_choice
flt_choose(const double *v, uint32_t n, struct alp_work *w)
{
    struct flt_choice ch = {QT_ENC_FLT_RAW, (size_t)8 * n, 0, {false, 0, 0}};
    uint32_t rep = flt_repeats(v, n);
    if (rep == n - 1) {
        ch.id = QT_ENC_FLT_CONST;
        ch.body = 8;
        return ch;
    }
    if (alp_pick(v, n, &w->e, &w->f) && alp_fill(v, n, w)) {
        ch.alp = alp_plan(n, w);
        if (ch.alp.body < ch.body) {
            ch.id = ch.alp.delta ? QT_ENC_FLT_ALP_DELTA : QT_ENC_FLT_ALP;
            ch.body = ch.alp.body;
        }
    }
    /* A Chimp token costs >= 2 bits for a repeat and >= 12 otherwise: skip
     * the exact count when even that cannot beat the current choice. */
    uint64_t xor_floor = 64 + 2ull * rep + 12ull * (n - 1 - rep);
    if ((xor_floor + 7) / 8 < ch.body) {
        ch.xor_bits = chimp_bits(v, n);
        if ((ch.xor_bits + 7) / 8 < ch.body) {
            ch.id = QT_ENC_FLT_XOR;
            ch.body = (size_t)((ch.xor_bits + 7) / 8);
        }
    }
    qt_assert(ch.body <= (size_t)8 * n);
    return ch;
}

int
qt_flt_encode(const double *v, uint32_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    qt_assert(out_len != NULL && (out != NULL || cap == 0));
    qt_assert(n == 0 || v != NULL);
    if (n > QT_BLOCK_POINTS_MAX)
        return qt_fail(QT_EINVAL, "flt: more values than QT_BLOCK_POINTS_MAX");
    size_t pos = 0;
    int rc = qt_varint_put(out, cap, &pos, n);
    if (rc != 0)
        return qt_fail(rc, "flt: output buffer too small");
    struct alp_work w; /* about 66 KiB of stack, see the file comment */
    struct flt_choice ch = {QT_ENC_FLT_RAW, 0, 0, {false, 0, 0}};
    if (n > 0)
        ch = flt_choose(v, n, &w);
    if (cap - pos < 1 + ch.body)
        return qt_fail(QT_ENOSPACE, "flt: output buffer too small");
    size_t start = pos;
    out[pos++] = ch.id;
    switch (ch.id) {
    case QT_ENC_FLT_CONST:
        qt_store_le64(out + pos, qt_f64_bits(v[0]));
        pos += 8;
        break;
    case QT_ENC_FLT_ALP:
    case QT_ENC_FLT_ALP_DELTA:
        rc = alp_write(n, &w, ch.alp, out, cap, &pos);
        qt_assert(rc == 0); /* size was checked above */
        alp_write_exc_values(v, n, &w, out, &pos);
        break;
    case QT_ENC_FLT_XOR: chimp_write(v, n, ch.xor_bits, out, &pos); break;
    default:
        for (uint32_t i = 0; i < n; i++)
            qt_store_le64(out + pos + (size_t)i * 8, qt_f64_bits(v[i]));
        pos += (size_t)8 * n;
        break;
    }
    qt_assert(pos - start == 1 + ch.body);
    *out_len = pos;
    return 0;
}

/* ---- decoder ---------------------------------------------------------- */

/* out[i] = d * 10^f / 10^e for d = u[i] + add, all d in [-2^51, 2^51]:
 * the magic constant turns d into a double with one integer add (two lanes
 * at a time); equal to (double)d there, which is exact. */
static void
alp_to_double_fast(const uint64_t *u, uint64_t add, uint32_t k, unsigned e, unsigned f, double *out)
{
    qt_assert(e <= QT_FLT_EXP_MAX && f <= QT_FLT_EXP_MAX);
    const flt_v2d magic = {ALP_MAGIC, ALP_MAGIC};
    const flt_v2u bias = {add + ALP_MAGIC_BITS, add + ALP_MAGIC_BITS};
    double up = POW10[f], down = POW10[e];
    uint32_t i = 0;
    if (e == 0) { /* integers: dividing by 1 changes nothing, skip it */
        for (; i + 2 <= k; i += 2) {
            flt_v2u b;
            memcpy(&b, u + i, sizeof(b));
            flt_v2d r = ((flt_v2d)(b + bias) - magic) * up;
            memcpy(out + i, &r, sizeof(r));
        }
    }
    for (; i + 2 <= k; i += 2) {
        flt_v2u b;
        memcpy(&b, u + i, sizeof(b));
        flt_v2d r = ((flt_v2d)(b + bias) - magic) * up / down;
        memcpy(out + i, &r, sizeof(r));
    }
    for (; i < k; i++)
        out[i] = alp_decode_one((double)u64_as_i64(u[i] + add), e, f);
}

/* Same for any d (hostile input): plain conversion, same results. */
static void
alp_to_double_any(const uint64_t *u, uint64_t add, uint32_t k, unsigned e, unsigned f, double *out)
{
    qt_assert(e <= QT_FLT_EXP_MAX && f <= QT_FLT_EXP_MAX);
    for (uint32_t i = 0; i < k; i++)
        out[i] = alp_decode_one((double)u64_as_i64(u[i] + add), e, f);
}

/*
 * Read one FOR run of k values at *pos (layout: DESIGN.md "Bit packing",
 * written by qt_for_encode): u[] gets the packed offsets, *min the base.
 * Parsed here rather than by qt_for_decode so the base folds into the
 * conversion instead of costing a pass of its own.
 */
static int
alp_read_run(const uint8_t *buf, size_t len, size_t *pos, uint32_t k, uint64_t *u, int64_t *min,
             uint32_t *width)
{
    qt_assert(k > 0 && k <= QT_FLT_RUN_MAX);
    size_t p = *pos;
    uint64_t zmin = 0;
    int rc = qt_varint_get(buf, len, &p, &zmin);
    if (rc != 0)
        return rc;
    if (p >= len)
        return qt_fail(QT_ETRUNC, "flt: FOR run width missing");
    uint32_t w = buf[p++];
    if (w > 64)
        return qt_fail(QT_ECORRUPT, "flt: FOR bit width above 64");
    size_t need = qt_bp_bytes(k, w);
    if (len - p < need)
        return qt_fail(QT_ETRUNC, "flt: FOR run truncated");
    qt_bp_unpack(buf + p, k, w, u);
    *min = qt_unzigzag64(zmin);
    *width = w;
    *pos = p + need;
    return 0;
}

/* Fast path test for a plain run: every min + [0, 2^width) in +-2^51. */
static bool
alp_run_safe(int64_t min, uint32_t width)
{
    const int64_t lim = (int64_t)1 << 51;
    if (width > 51 || min < -lim || min > lim)
        return false;
    return min + (((int64_t)1 << width) - 1) <= lim;
}

/* Fast path test for a delta run: |acc0| <= 2^50 and k deltas of magnitude
 * <= 2^50 / k keep every running sum within +-2^51. */
static bool
alp_delta_safe(int64_t acc0, int64_t min, uint32_t width, uint32_t k)
{
    const int64_t half = (int64_t)1 << 50;
    if (width > 50 || min < -half || min > half || acc0 < -half || acc0 > half)
        return false;
    int64_t hi = min + (((int64_t)1 << width) - 1);
    int64_t mag = hi > -min ? hi : -min; /* max |delta| */
    qt_assert(k > 0 && mag >= 0);
    return mag <= half / k;
}

/* Decode the runs of an ALP (delta=false) or ALP_DELTA body into out. */
static int
alp_decode_runs(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, unsigned lg, int64_t base,
                bool delta, unsigned e, unsigned f, double *out)
{
    uint64_t u[QT_FLT_RUN_MAX];
    uint32_t run = 1u << lg;
    uint64_t acc = (uint64_t)base; /* running sum, modulo 2^64 */
    qt_assert(run <= QT_FLT_RUN_MAX);
    for (uint32_t i = 0; i < n; i += run) {
        uint32_t k = n - i < run ? n - i : run, width = 0;
        int64_t min = 0;
        int rc = alp_read_run(buf, len, pos, k, u, &min, &width);
        if (rc != 0)
            return rc;
        uint64_t add = (uint64_t)min;
        bool safe;
        if (delta) {
            safe = alp_delta_safe(u64_as_i64(acc), min, width, k);
            for (uint32_t j = 0; j < k; j++) {
                acc += u[j] + add;
                u[j] = acc;
            }
            add = 0;
        } else {
            safe = alp_run_safe(min, width);
        }
        if (safe)
            alp_to_double_fast(u, add, k, e, f, out + i);
        else
            alp_to_double_any(u, add, k, e, f, out + i);
    }
    return 0;
}

/* Exceptions: x u16 positions (strictly increasing, < n), x u64 patterns. */
static int
alp_decode_exc(const uint8_t *buf, size_t len, size_t pos, uint32_t n, uint64_t x, double *out)
{
    qt_assert(pos <= len);
    qt_assert(x <= n);
    if (len - pos < x * ALP_EXC_BYTES)
        return qt_fail(QT_ETRUNC, "flt: exceptions truncated");
    if (len - pos > x * ALP_EXC_BYTES)
        return qt_fail(QT_ECORRUPT, "flt: trailing bytes after exceptions");
    const uint8_t *at = buf + pos, *val = at + x * 2;
    uint32_t next = 0; /* smallest position allowed next */
    for (uint64_t j = 0; j < x; j++) {
        uint32_t i = qt_load_le16(at + j * 2);
        if (i < next || i >= n)
            return qt_fail(QT_ECORRUPT, "flt: exception position out of order or range");
        out[i] = qt_bits_f64(qt_load_le64(val + j * 8));
        next = i + 1;
    }
    return 0;
}

/* ALP / ALP_DELTA body at buf[pos..len). */
static int
alp_decode(const uint8_t *buf, size_t len, size_t pos, uint32_t n, bool delta, double *out)
{
    qt_assert(pos <= len);
    if (n == 0)
        return qt_fail(QT_ECORRUPT, "flt: empty block must be raw");
    if (len - pos < 3)
        return qt_fail(QT_ETRUNC, "flt: ALP header truncated");
    unsigned e = buf[pos], f = buf[pos + 1], lg = buf[pos + 2];
    pos += 3;
    if (e > QT_FLT_EXP_MAX || f > QT_FLT_EXP_MAX)
        return qt_fail(QT_ECORRUPT, "flt: ALP exponent or factor out of range");
    if (lg < ALP_RUN_LOG_MIN || lg > ALP_RUN_LOG_MAX)
        return qt_fail(QT_ECORRUPT, "flt: ALP run length out of range");
    uint64_t x = 0, zbase = 0;
    int rc = qt_varint_get(buf, len, &pos, &x);
    if (rc == 0 && delta)
        rc = qt_varint_get(buf, len, &pos, &zbase);
    if (rc != 0)
        return rc;
    if (x > n)
        return qt_fail(QT_ECORRUPT, "flt: more exceptions than values");
    rc = alp_decode_runs(buf, len, &pos, n, lg, qt_unzigzag64(zbase), delta, e, f, out);
    if (rc != 0)
        return rc;
    return alp_decode_exc(buf, len, pos, n, x, out);
}

/* LSB-first bit reader over buf[0..len); never reads at or past len. */
struct bitr {
    const uint8_t *buf;
    size_t len;
    uint64_t bit, total; /* position and length in bits */
};

/* Next nb <= 57 bits (an 8-byte window shifted by <= 7 holds 57); QT_ETRUNC
 * if the body ends first. */
static inline int
br_get(struct bitr *r, unsigned nb, uint64_t *v)
{
    qt_assert_slow(nb <= 57);
    if (nb > r->total - r->bit)
        return qt_fail(QT_ETRUNC, "flt: XOR stream truncated");
    size_t at = (size_t)(r->bit >> 3);
    uint64_t w = 0;
    if (r->len - at >= 8) {
        w = qt_load_le64(r->buf + at);
    } else {
        for (size_t k = 0; at + k < r->len; k++)
            w |= (uint64_t)r->buf[at + k] << (8 * k);
    }
    *v = (w >> (r->bit & 7)) & ((1ull << nb) - 1);
    r->bit += nb;
    return 0;
}

static inline int
br_get64(struct bitr *r, unsigned nb, uint64_t *v)
{
    uint64_t lo = 0, hi = 0;
    if (nb <= 32)
        return br_get(r, nb, v);
    int rc = br_get(r, 32, &lo);
    if (rc == 0)
        rc = br_get(r, nb - 32, &hi);
    *v = lo | hi << 32;
    return rc;
}

/* One XOR token: the value to XOR into the previous pattern. */
static int
chimp_read(struct bitr *r, unsigned *stored, uint64_t *x)
{
    uint64_t flag = 0, code = 0, sig = 0;
    int rc = br_get(r, 2, &flag);
    if (rc != 0 || flag == 0) {
        *stored = CHIMP_NONE;
        *x = 0;
        return rc;
    }
    if (flag == 2) {
        if (*stored == CHIMP_NONE)
            return qt_fail(QT_ECORRUPT, "flt: XOR reuses a leading count never set");
        return br_get64(r, 64 - *stored, x);
    }
    rc = br_get(r, 3, &code);
    if (rc != 0)
        return rc;
    unsigned lead = CHIMP_LEAD[code];
    if (flag == 3) {
        *stored = lead;
        return br_get64(r, 64 - lead, x);
    }
    rc = br_get(r, 6, &sig);
    if (rc != 0)
        return rc;
    if (sig == 0 || lead + sig > 64 - CHIMP_TRAIL_MIN - 1)
        return qt_fail(QT_ECORRUPT, "flt: XOR centre bits out of range");
    *stored = CHIMP_NONE;
    rc = br_get(r, (unsigned)sig, x);
    *x <<= 64 - lead - sig;
    return rc;
}

/* XOR body: the whole of buf[pos..len), zero padding to the byte. */
static int
chimp_decode(const uint8_t *buf, size_t len, size_t pos, uint32_t n, double *out)
{
    qt_assert(pos <= len);
    if (n == 0)
        return qt_fail(QT_ECORRUPT, "flt: empty block must be raw");
    struct bitr r = {buf + pos, len - pos, 0, (uint64_t)(len - pos) * 8};
    uint64_t prev = 0, x = 0, pad = 0;
    unsigned stored = CHIMP_NONE;
    int rc = br_get64(&r, 64, &prev);
    if (rc != 0)
        return rc;
    out[0] = qt_bits_f64(prev);
    for (uint32_t i = 1; i < n; i++) {
        rc = chimp_read(&r, &stored, &x);
        if (rc != 0)
            return rc;
        prev ^= x;
        out[i] = qt_bits_f64(prev);
    }
    if (r.total - r.bit >= 8)
        return qt_fail(QT_ECORRUPT, "flt: trailing bytes after XOR stream");
    rc = br_get(&r, (unsigned)(r.total - r.bit), &pad);
    qt_assert(rc == 0);
    if (pad != 0)
        return qt_fail(QT_ECORRUPT, "flt: XOR padding bits not zero");
    return 0;
}

static int
flt_decode_body(const uint8_t *buf, size_t len, size_t pos, uint8_t id, uint32_t n, double *out)
{
    qt_assert(pos <= len);
    switch (id) {
    case QT_ENC_FLT_CONST:
        if (n == 0)
            return qt_fail(QT_ECORRUPT, "flt: empty block must be raw");
        if (len - pos < 8)
            return qt_fail(QT_ETRUNC, "flt: constant truncated");
        if (len - pos > 8)
            return qt_fail(QT_ECORRUPT, "flt: trailing bytes after constant");
        for (uint32_t i = 0; i < n; i++)
            out[i] = qt_bits_f64(qt_load_le64(buf + pos));
        return 0;
    case QT_ENC_FLT_RAW:
        if (len - pos < (size_t)8 * n)
            return qt_fail(QT_ETRUNC, "flt: raw values truncated");
        if (len - pos > (size_t)8 * n)
            return qt_fail(QT_ECORRUPT, "flt: trailing bytes after raw values");
        for (uint32_t i = 0; i < n; i++)
            out[i] = qt_bits_f64(qt_load_le64(buf + pos + (size_t)i * 8));
        return 0;
    case QT_ENC_FLT_ALP:
    case QT_ENC_FLT_ALP_DELTA: return alp_decode(buf, len, pos, n, id == QT_ENC_FLT_ALP_DELTA, out);
    case QT_ENC_FLT_XOR: return chimp_decode(buf, len, pos, n, out);
    default: return qt_fail(QT_EINVAL, "flt: unknown encoding id");
    }
}

int
qt_flt_decode(const uint8_t *buf, size_t len, double *out, uint32_t cap, uint32_t *n)
{
    qt_assert(buf != NULL || len == 0);
    qt_assert(n != NULL && (out != NULL || cap == 0));
    size_t pos = 0;
    uint64_t count = 0;
    int rc = qt_varint_get(buf, len, &pos, &count);
    if (rc != 0)
        return rc;
    if (count > QT_BLOCK_POINTS_MAX)
        return qt_fail(QT_ELIMIT, "flt: more values than QT_BLOCK_POINTS_MAX");
    if (count > cap)
        return qt_fail(QT_ENOSPACE, "flt: output holds fewer values than the block");
    if (pos >= len)
        return qt_fail(QT_ETRUNC, "flt: missing encoding id");
    uint8_t id = buf[pos++];
    rc = flt_decode_body(buf, len, pos, id, (uint32_t)count, out);
    if (rc != 0)
        return rc;
    *n = (uint32_t)count;
    return 0;
}
