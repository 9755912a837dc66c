/*
 * fuzz_flt.c -- float64 codec fuzz target.
 *
 * Every input is used three ways:
 *   (a) as a payload: decode; if it decodes, re-encode, decode again and
 *       require the same bit patterns (the round-trip oracle);
 *   (b) as raw doubles (8 bytes each): encode, decode, compare bit-exact;
 *   (c) as small decimals: 16-bit integers (absolute or as a walk) scaled by
 *       10^-k, k from the first byte -- the shape of sensor data, which
 *       drives the ALP paths rather than the fallbacks.
 * Any mismatch aborts, so libFuzzer records the input.
 */
#include "format/fltcodec.h"
#include "format/qt_bytes.h"
#include "format/qt_limits.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_MAX QT_BLOCK_POINTS_MAX
#define FZ_BUF (QT_VARINT_MAX + 1 + 8 * FZ_MAX)

static double fz_vals[FZ_MAX], fz_back[FZ_MAX];
static uint8_t fz_enc[FZ_BUF];

static void
fz_fail(const char *what, uint32_t i)
{
    fprintf(stderr, "fuzz_flt: %s (value %u)\n", what, i);
    abort();
}

/* Encode v[0..n), decode, require identical bits. */
static void
fz_roundtrip(const double *v, uint32_t n)
{
    size_t len = 0;
    if (qt_flt_encode(v, n, fz_enc, sizeof(fz_enc), &len) != 0)
        fz_fail("encode failed with a bound-sized buffer", 0);
    if (len > qt_flt_bound(n))
        fz_fail("payload above qt_flt_bound", 0);
    uint32_t m = 0;
    if (qt_flt_decode(fz_enc, len, fz_back, FZ_MAX, &m) != 0 || m != n)
        fz_fail("own payload does not decode", 0);
    for (uint32_t i = 0; i < n; i++)
        if (qt_f64_bits(v[i]) != qt_f64_bits(fz_back[i]))
            fz_fail("round trip changed a value", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* (a) arbitrary payload */
    uint32_t n = 0;
    if (qt_flt_decode(data, size, fz_vals, FZ_MAX, &n) == 0)
        fz_roundtrip(fz_vals, n);

    /* (b) raw doubles */
    n = (uint32_t)(size / 8 < FZ_MAX ? size / 8 : FZ_MAX);
    for (uint32_t i = 0; i < n; i++)
        fz_vals[i] = qt_bits_f64(qt_load_le64(data + (size_t)i * 8));
    fz_roundtrip(fz_vals, n);

    /* (c) small decimals: first byte picks k (0..3) and walk or absolute */
    if (size < 1)
        return 0;
    static const double scale[4] = {1.0, 10.0, 100.0, 1000.0};
    unsigned k = data[0] & 3;
    int walk = (data[0] >> 2) & 1;
    n = (uint32_t)((size - 1) / 2 < FZ_MAX ? (size - 1) / 2 : FZ_MAX);
    int64_t acc = 0;
    for (uint32_t i = 0; i < n; i++) {
        int16_t x = (int16_t)qt_load_le16(data + 1 + (size_t)i * 2);
        acc = walk ? acc + x : x;
        fz_vals[i] = (double)acc / scale[k];
    }
    fz_roundtrip(fz_vals, n);
    return 0;
}
