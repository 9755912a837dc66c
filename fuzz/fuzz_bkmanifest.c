/*
 * fuzz_bkmanifest.c -- BACKUP file decoder on arbitrary bytes (checksum
 * skipped so the line checks are reached).  Oracle: whatever decodes
 * re-encodes to the same bytes (the checksum line recomputed), and the
 * re-encoded file decodes to the same header and files.
 */
#include "format/bkmanifest.h"
#include "format/qt_assert.h"
#include "format/qt_hash.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_FILES_MAX 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct qt_bkm_file files[FUZZ_FILES_MAX], files2[FUZZ_FILES_MAX];
    struct qt_bkm_hdr h, h2;
    qt_hash_skip_verify = true;
    if (qt_bkm_decode_header(data, size, &h) != 0 || h.n_files > FUZZ_FILES_MAX)
        return 0;
    if (qt_bkm_decode(data, size, &h, files, FUZZ_FILES_MAX) != 0)
        return 0;
    size_t cap = qt_bkm_bound(files, h.n_files);
    uint8_t *out = malloc(cap);
    qt_assert(out != NULL);
    size_t len = 0;
    qt_assert(qt_bkm_encode(&h, files, h.n_files, out, cap, &len) == 0);
    qt_assert(len == size);
    qt_assert(memcmp(out, data, len - 17) == 0); /* all but the checksum digits */
    qt_hash_skip_verify = false;
    qt_assert(qt_bkm_decode(out, len, &h2, files2, FUZZ_FILES_MAX) == 0);
    qt_assert(memcmp(&h, &h2, sizeof(h)) == 0);
    for (uint32_t i = 0; i < h.n_files; i++) {
        qt_assert(files[i].size == files2[i].size && files[i].xxh3 == files2[i].xxh3);
        qt_assert(files[i].linked == files2[i].linked && files[i].path_len == files2[i].path_len);
        qt_assert(memcmp(files[i].path, files2[i].path, files[i].path_len) == 0);
    }
    free(out);
    return 0;
}
