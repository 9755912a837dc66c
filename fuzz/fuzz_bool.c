/*
 * fuzz_bool.c -- boolean codec fuzz target.
 *
 * 1. Decode the input as a payload; if it decodes, every value must be 0
 *    or 1, and encode -> decode must give the same values.
 * 2. Values from bytes (data[0] picks): the low bit of each byte, runs of
 *    (byte >> 1) + 1 copies of its low bit, or the raw bytes, where encode
 *    must refuse exactly the inputs holding a value above 1.
 * Any mismatch aborts.
 */
#include "format/boolcodec.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CAP QT_BLOCK_POINTS_MAX

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t vals[CAP], again[CAP];
static uint8_t enc[CAP + 64];

static void
roundtrip(const uint8_t *v, uint32_t n)
{
    size_t len = 0;
    if (qt_bool_encode(v, n, enc, sizeof(enc), &len) != 0 || len > qt_bool_bound(n))
        abort();
    uint32_t m = 0;
    if (qt_bool_decode(enc, len, again, CAP, &m) != 0 || m != n)
        abort();
    if (memcmp(v, again, n) != 0)
        abort();
}

static void
values_from_bytes(const uint8_t *data, size_t size)
{
    uint32_t mode = data[0] % 3;
    const uint8_t *p = data + 1;
    size_t rest = size - 1;
    uint32_t n = 0;
    if (mode == 2) {
        n = (uint32_t)(rest < CAP ? rest : CAP);
        bool valid = true;
        for (uint32_t i = 0; i < n; i++)
            valid = valid && p[i] <= 1;
        size_t len = 0;
        int rc = qt_bool_encode(p, n, enc, sizeof(enc), &len);
        if (valid ? rc != 0 : rc != QT_EINVAL)
            abort();
        if (valid)
            roundtrip(p, n);
        return;
    }
    for (size_t i = 0; i < rest && n < CAP; i++) {
        uint32_t k = mode == 0 ? 1 : (p[i] >> 1) + 1u;
        for (uint32_t j = 0; j < k && n < CAP; j++)
            vals[n++] = p[i] & 1;
    }
    roundtrip(vals, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t n = 0;
    if (qt_bool_decode(data, size, vals, CAP, &n) == 0) {
        for (uint32_t i = 0; i < n; i++) {
            if (vals[i] > 1)
                abort();
        }
        roundtrip(vals, n);
    }
    if (size >= 1)
        values_from_bytes(data, size);
    return 0;
}
