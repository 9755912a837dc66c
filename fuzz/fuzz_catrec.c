/*
 * fuzz_catrec.c -- the catalog log decoder: a file header followed by
 * records, as replay reads them.
 *
 * Checksums are skipped (qt_hash_skip_verify) so mutations reach the field
 * checks.  Oracle: every decoded record re-encodes to the same bytes (the
 * checksum excepted, since the input's may be wrong) and decodes again to
 * the same fields; the consumed length matches the encoded size.
 */
#include "format/catrec.h"
#include "format/qt_hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint8_t buf[QT_CATREC_SIZE_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_record(const uint8_t *p, const struct qt_catrec *r, size_t used)
{
    size_t n, used2;
    struct qt_catrec r2;
    if (used != qt_catrec_size(r->key_len) || r->key != p + 19)
        abort();
    if (qt_catrec_encode(r, buf, sizeof(buf), &n) != 0 || n != used)
        abort();
    if (memcmp(buf, p, n - 8) != 0)
        abort();
    qt_hash_skip_verify = false; /* the re-encoded checksum must be right */
    int rc = qt_catrec_decode(buf, n, &r2, &used2);
    qt_hash_skip_verify = true;
    if (rc != 0 || used2 != n || r2.series_id != r->series_id || r2.group_id != r->group_id ||
        r2.vtype != r->vtype || r2.key_len != r->key_len || memcmp(r2.key, r->key, r->key_len))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qt_hash_skip_verify = true;
    uint32_t version;
    size_t off = 0;
    if (qt_catrec_header_decode(data, size, &version) == 0) {
        uint8_t h[QT_CATREC_HEADER_SIZE];
        if (version != QT_FORMAT_VERSION || qt_catrec_header_encode(h, sizeof(h)) != 0 ||
            memcmp(h, data, 16) != 0)
            abort();
        off = QT_CATREC_HEADER_SIZE;
    }
    while (off < size) {
        struct qt_catrec r;
        size_t used;
        if (qt_catrec_decode(data + off, size - off, &r, &used) != 0) {
            off++; /* resynchronise as replay's salvage does */
            continue;
        }
        check_record(data + off, &r, used);
        off += used;
    }
    return 0;
}
