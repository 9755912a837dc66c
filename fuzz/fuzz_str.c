/*
 * fuzz_str.c -- string codec fuzz target.
 *
 * 1. Decode the input as a payload; if it decodes, every string must lie
 *    inside the input (zero copy) and be <= QT_STRING_VALUE_MAX bytes, and
 *    encode -> decode must give the same strings.
 * 2. Split the input after data[0] at each occurrence of data[0] (pieces
 *    longer than QT_STRING_VALUE_MAX are cut) and require encode -> decode
 *    to give the pieces back.
 * Any mismatch aborts.
 */
#include "format/codec.h"
#include "format/qt_limits.h"
#include "format/strcodec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CAP QT_BLOCK_POINTS_MAX

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct qt_str vals[CAP], again[CAP];
static uint8_t enc[CAP * (QT_STRING_VALUE_MAX + 2) + 64];

static void
roundtrip(const struct qt_str *v, uint32_t n)
{
    size_t len = 0;
    if (qt_str_encode(v, n, enc, sizeof(enc), &len) != 0 || len > qt_str_bound(v, n))
        abort();
    uint32_t m = 0;
    if (qt_str_decode(enc, len, again, CAP, &m) != 0 || m != n)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        if (again[i].len != v[i].len)
            abort();
        if (v[i].len > 0 && memcmp(again[i].p, v[i].p, v[i].len) != 0)
            abort();
    }
}

static uint32_t
values_from_bytes(const uint8_t *data, size_t size, struct qt_str *v)
{
    uint8_t sep = data[0];
    uint32_t n = 0;
    size_t start = 1;
    for (size_t i = 1; i <= size && n < CAP; i++) {
        if (i < size && data[i] != sep && i - start < QT_STRING_VALUE_MAX)
            continue;
        v[n++] = (struct qt_str){.p = (const char *)data + start, .len = (uint32_t)(i - start)};
        start = i < size && data[i] == sep ? i + 1 : i;
    }
    return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t n = 0;
    if (qt_str_decode(data, size, vals, CAP, &n) == 0) {
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *p = (const uint8_t *)vals[i].p;
            if (vals[i].len > QT_STRING_VALUE_MAX || p < data || p + vals[i].len > data + size)
                abort();
        }
        roundtrip(vals, n);
    }
    if (size >= 1) {
        n = values_from_bytes(data, size, vals);
        roundtrip(vals, n);
    }
    return 0;
}
