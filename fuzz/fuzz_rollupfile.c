/*
 * fuzz_rollupfile.c -- the ROLLUPS record file decoder (storage/rollup.h
 * qt_rollup_file_decode; format in DESIGN.md 15 "Rollups").
 *
 * Input: the file bytes.  Oracle: a decode that succeeds accounts for
 * every byte (24-byte header, 16 bytes per record, 8-byte checksum) and
 * hands back exactly n records; a failed one hands back nothing.
 */
#include "format/qt_alloc.h"
#include "storage/rollup.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h = 0;
    struct qt_rollup_record *rec = NULL;
    uint32_t n = 0;
    int rc = qt_rollup_file_decode(data, size, &h, &rec, &n);
    if (rc != 0 && (rec != NULL || n != 0))
        abort();
    if (rc == 0 && (size != 32u + 16u * (size_t)n || rec == NULL))
        abort();
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        (void)rec[i].ident; /* every record readable (ASan) */
    qt_free(rec);
    return 0;
}
