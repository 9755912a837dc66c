/*
 * fuzz_tzif.c -- the TZif parser and local-day buckets on arbitrary bytes.
 *
 * Oracle: parsing never crashes or leaks; a parsed zone re-encodes
 * (qt_tz_encode) to bytes that parse to an equal zone; every offset is
 * within +-26h; for instants taken from the input, the N-day bucket holds
 * the instant, is stable (the bucket of its start is itself), tiles (the
 * bucket at its end starts there) and spans between N days - 52h and
 * N days + 52h.
 */
#include "query/qtime.h"
#include "query/tz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
die(const char *why)
{
    fprintf(stderr, "fuzz_tzif: %s\n", why);
    abort();
}

/* Bucket invariants at instant t for n-day buckets. */
static void
check_bucket(const struct qt_tz *tz, int64_t t, uint32_t days)
{
    int64_t s, e, s2, e2;
    qt_tz_bucket(tz, t, days, &s, &e);
    if (!(s <= t && (t < e || e == INT64_MAX)))
        die("bucket does not hold the instant");
    /* Away from the ends of the int64 range (where bounds clamp) the span
     * is n days give or take two maximal offset changes. */
    if (s > INT64_MIN && e < INT64_MAX) {
        int64_t span = e - s, slack = 2 * 93600 * QT_NS_PER_SEC;
        if (span < (int64_t)days * QT_NS_PER_DAY - slack ||
            span > (int64_t)days * QT_NS_PER_DAY + slack)
            die("bucket span is not about n days");
        qt_tz_bucket(tz, s, days, &s2, &e2);
        if (s2 != s || e2 != e)
            die("bucket of the start differs");
        qt_tz_bucket(tz, e, days, &s2, &e2);
        if (s2 != e)
            die("next bucket does not start at the end");
    }
    int32_t off = qt_tz_offset(tz, t);
    if (off < -93599 || off > 93599)
        die("offset out of range");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qt_tz *tz = NULL, *tz2 = NULL;
    if (qt_tz_parse(data, size, &tz) != 0) {
        if (tz != NULL)
            die("failed parse returned a zone");
        return 0;
    }
    size_t cap = qt_tz_encode_bound(tz), n = 0;
    uint8_t *enc = malloc(cap);
    if (enc == NULL)
        abort();
    if (qt_tz_encode(tz, enc, cap, &n) != 0 || n > cap)
        die("encode failed");
    if (qt_tz_parse(enc, n, &tz2) != 0)
        die("re-encoded zone does not parse");
    if (!qt_tz_equal(tz, tz2))
        die("re-encoded zone differs");
    free(enc);
    qt_tz_free(tz2);
    /* Instants: a fixed spread plus 8-byte windows of the input. */
    static const int64_t fixed[] = {
        INT64_MIN, -1, 0, 1794787200 * QT_NS_PER_SEC, 2145916800 * QT_NS_PER_SEC, INT64_MAX};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        check_bucket(tz, fixed[i], 1 + (uint32_t)(i % 7));
    for (size_t off = 0; off + 8 <= size && off < 64; off += 8) {
        uint64_t u;
        memcpy(&u, data + off, 8);
        check_bucket(tz, (int64_t)u, 1 + (uint32_t)(u % 31));
    }
    qt_tz_free(tz);
    return 0;
}
