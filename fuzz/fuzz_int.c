/*
 * fuzz_int.c -- integer codec fuzz target.
 *
 * 1. Decode the input as a payload; if it decodes, encode the values again
 *    and decode that: the values must come back bit-exact.
 * 2. Build an int column from the input bytes (data[0] picks: raw int64s,
 *    levels of signed bytes, a counter of byte increments, or extremes
 *    chosen per byte) and require encode -> decode to give it back.
 * Any mismatch aborts.
 */
#include "format/intcodec.h"
#include "format/qt_bytes.h"
#include "format/qt_limits.h"

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
    if (qt_int_encode(v, n, enc, sizeof(enc), &len) != 0 || len > qt_int_bound(n))
        abort();
    uint32_t m = 0;
    if (qt_int_decode(enc, len, again, CAP, &m) != 0 || m != n)
        abort();
    if (memcmp(v, again, (size_t)n * 8) != 0)
        abort();
}

static uint32_t
values_from_bytes(const uint8_t *data, size_t size, int64_t *v)
{
    static const int64_t ext[] = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, INT64_MAX - 1, 42};
    uint32_t mode = data[0] % 4;
    const uint8_t *p = data + 1;
    size_t rest = size - 1;
    if (mode == 0) {
        uint32_t n = (uint32_t)(rest / 8 < CAP ? rest / 8 : CAP);
        for (uint32_t i = 0; i < n; i++)
            v[i] = (int64_t)qt_load_le64(p + (size_t)i * 8);
        return n;
    }
    uint32_t n = (uint32_t)(rest < CAP ? rest : CAP);
    int64_t base = (int64_t)data[0] * 1000003 - 100000000;
    uint64_t c = (uint64_t)base;
    for (uint32_t i = 0; i < n; i++) {
        if (mode == 1)
            v[i] = base + (int8_t)p[i];
        else if (mode == 2)
            v[i] = (int64_t)(c += p[i] < 200 ? p[i] % 8 : (uint64_t)p[i] << 30);
        else
            v[i] = ext[p[i] % 8];
    }
    return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t n = 0;
    if (qt_int_decode(data, size, vals, CAP, &n) == 0)
        roundtrip(vals, n);
    if (size >= 1) {
        n = values_from_bytes(data, size, vals);
        roundtrip(vals, n);
    }
    return 0;
}
