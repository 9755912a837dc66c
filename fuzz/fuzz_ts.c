/*
 * fuzz_ts.c -- timestamp codec fuzz target.
 *
 * 1. Decode the input as a payload; if it decodes, encode the values again
 *    and decode that: the values must come back bit-exact.
 * 2. Build a timestamp series from the input bytes (data[0] picks how:
 *    raw int64s, a regular grid plus signed byte jitter at some precision,
 *    or signed byte deltas) and require encode -> decode to give it back.
 * Any mismatch aborts (a crash for libFuzzer).
 */
#include "format/qt_bytes.h"
#include "format/qt_limits.h"
#include "format/tscodec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CAP QT_BLOCK_POINTS_MAX

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t vals[CAP], again[CAP];
static uint8_t enc[8 * CAP + 64];

static void
roundtrip(const int64_t *v, uint32_t n)
{
    size_t len = 0;
    if (qt_ts_encode(v, n, enc, sizeof(enc), &len) != 0 || len > qt_ts_bound(n))
        abort();
    uint32_t m = 0;
    if (qt_ts_decode(enc, len, again, CAP, &m) != 0 || m != n)
        abort();
    if (memcmp(v, again, (size_t)n * 8) != 0)
        abort();
}

/* Series from bytes: mode 0 raw LE int64s; mode 1 grid + jitter; mode 2
 * byte deltas.  The scale (1 ns, 1 ms, 1 s) comes from data[0] too. */
static uint32_t
values_from_bytes(const uint8_t *data, size_t size, int64_t *v)
{
    static const int64_t scales[] = {1, 1000000, 1000000000};
    uint32_t mode = data[0] % 3;
    int64_t scale = scales[(data[0] / 3) % 3];
    const uint8_t *p = data + 1;
    size_t rest = size - 1;
    if (mode == 0) {
        uint32_t n = (uint32_t)(rest / 8 < CAP ? rest / 8 : CAP);
        for (uint32_t i = 0; i < n; i++)
            v[i] = (int64_t)qt_load_le64(p + (size_t)i * 8);
        return n;
    }
    uint32_t n = (uint32_t)(rest < CAP ? rest : CAP);
    uint64_t t = 1700000000000000000ull;
    uint64_t step = (uint64_t)(data[0] / 9 + 1) * 10 * (uint64_t)scale;
    for (uint32_t i = 0; i < n; i++) {
        int64_t b = (int8_t)p[i];
        if (mode == 1)
            v[i] = (int64_t)(t + i * step + (uint64_t)(b * scale));
        else
            v[i] = (int64_t)(t += (uint64_t)(b * scale));
    }
    return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t n = 0;
    if (qt_ts_decode(data, size, vals, CAP, &n) == 0)
        roundtrip(vals, n);
    if (size >= 1) {
        n = values_from_bytes(data, size, vals);
        roundtrip(vals, n);
    }
    return 0;
}
