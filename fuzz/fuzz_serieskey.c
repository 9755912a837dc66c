/*
 * fuzz_serieskey.c -- the canonical series/group key parser.
 *
 * Input: byte 0 bit 0 chooses series key (1) or group key (0); the rest is
 * the key.  Oracle: whatever the parser accepts, the builder reproduces byte
 * for byte, and parsing that again yields the same components.
 */
#include "format/serieskey.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint8_t scratch[QT_SERIES_KEY_MAX], scratch2[QT_SERIES_KEY_MAX];
static uint8_t out[2 * QT_SERIES_KEY_MAX + 16];
static struct qt_serieskey k1, k2;

static void
same(struct qt_str a, struct qt_str b)
{
    if (qt_serieskey_cmp(a, b) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool with_field = data[0] & 1;
    const uint8_t *key = data + 1;
    size_t len = size - 1;
    if (qt_serieskey_parse(key, len, with_field, scratch, sizeof(scratch), &k1) != 0)
        return 0;
    if (k1.group_len > len || k1.ntags > QT_TAGS_MAX)
        abort();
    size_t n;
    if (qt_serieskey_build(&k1, with_field, out, sizeof(out), &n) != 0)
        abort();
    if (n != len || memcmp(out, key, len) != 0 || n > qt_serieskey_bound(&k1, with_field))
        abort();
    if (qt_serieskey_parse(out, n, with_field, scratch2, sizeof(scratch2), &k2) != 0)
        abort();
    same(k1.measurement, k2.measurement);
    if (k1.ntags != k2.ntags || k1.group_len != k2.group_len)
        abort();
    for (uint32_t i = 0; i < k1.ntags; i++) {
        same(k1.tags[i].key, k2.tags[i].key);
        same(k1.tags[i].value, k2.tags[i].value);
    }
    if (with_field)
        same(k1.field, k2.field);
    return 0;
}
