/*
 * fuzz_manifest.c -- MANIFEST decoder on arbitrary bytes (checksum skipped so
 * the entry checks are reached).  Oracle: whatever decodes re-encodes to the
 * same bytes (after re-sealing the checksum).
 */
#include "format/manifest.h"
#include "format/qt_assert.h"
#include "format/qt_hash.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_SEGS_MAX 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct qt_manifest_seg segs[FUZZ_SEGS_MAX];
    struct qt_manifest_hdr h;
    qt_hash_skip_verify = true;
    if (qt_manifest_decode(data, size, &h, segs, FUZZ_SEGS_MAX) != 0)
        return 0;
    uint8_t *out = malloc(qt_manifest_bound(h.n_segments));
    qt_assert(out != NULL);
    size_t len = 0;
    qt_assert(qt_manifest_encode(&h, segs, h.n_segments, out, qt_manifest_bound(h.n_segments),
                                 &len) == 0);
    qt_assert(len == size);
    /* Everything but the checksum must match byte for byte. */
    qt_assert(memcmp(out, data, len - 8) == 0);
    free(out);
    return 0;
}
