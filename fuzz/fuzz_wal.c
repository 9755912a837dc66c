/*
 * fuzz_wal.c -- WAL records and batch payloads from untrusted bytes.
 *
 * The input is read two ways: as a log (records parsed back to back from
 * offset 0 until one is not valid; each valid payload is decoded as a
 * batch) and as one bare batch payload.  Oracles: a valid record re-framed
 * (with and without LZ4) parses to the same seq and payload; a decoded
 * batch re-encodes to exactly qt_batch_size() bytes and decodes to the same
 * values.  Checksums are bypassed so mutations reach the parsers.
 */
#include "format/batch.h"
#include "format/qt_assert.h"
#include "format/qt_bytes.h"
#include "format/qt_hash.h"
#include "format/wal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define F_LINES   4096u
#define F_FIELDS  16384u
#define F_SCRATCH (1u << 20)

static struct qt_batch_line lines[F_LINES], lines2[F_LINES];
static struct qt_batch_field fields[F_FIELDS], fields2[F_FIELDS];
static uint8_t scratch[F_SCRATCH], scratch2[F_SCRATCH], reenc[F_SCRATCH + 64];

static void
same_field(const struct qt_batch_field *a, const struct qt_batch_field *b)
{
    qt_assert(a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0);
    qt_assert(a->vtype == b->vtype);
    switch (a->vtype) {
    case QT_VT_FLOAT: qt_assert(qt_f64_bits(a->v.f) == qt_f64_bits(b->v.f)); break;
    case QT_VT_INT: qt_assert(a->v.i == b->v.i); break;
    case QT_VT_BOOL: qt_assert(a->v.b == b->v.b && a->v.b <= 1); break;
    case QT_VT_STRING:
        qt_assert(a->v.s.len == b->v.s.len && a->v.s.len <= QT_STRING_VALUE_MAX);
        qt_assert(a->v.s.len == 0 || memcmp(a->v.s.p, b->v.s.p, a->v.s.len) == 0);
        break;
    default: qt_unreachable();
    }
}

static void
check_batch(const uint8_t *p, size_t len)
{
    uint32_t pl = 0, pf = 0, nl = 0, nf = 0, nl2 = 0, nf2 = 0;
    if (qt_batch_peek(p, len, &pl, &pf) != 0)
        return;
    if (qt_batch_decode(p, len, lines, F_LINES, fields, F_FIELDS, &nl, &nf) != 0)
        return;
    qt_assert(nl == pl && nf == pf);
    size_t need = qt_batch_size(lines, nl), rlen = 0;
    qt_assert(need > 0 && need <= len); /* canonical varints are never longer */
    qt_assert(qt_batch_encode(lines, nl, reenc, sizeof(reenc), &rlen) == 0 && rlen == need);
    qt_assert(qt_batch_decode(reenc, rlen, lines2, F_LINES, fields2, F_FIELDS, &nl2, &nf2) == 0);
    qt_assert(nl2 == nl && nf2 == nf);
    for (uint32_t i = 0; i < nl; i++) {
        qt_assert(lines[i].key_len == lines2[i].key_len && lines[i].ts == lines2[i].ts);
        qt_assert(memcmp(lines[i].key, lines2[i].key, lines[i].key_len) == 0);
        qt_assert(lines[i].n_fields == lines2[i].n_fields);
        for (uint32_t k = 0; k < lines[i].n_fields; k++)
            same_field(&lines[i].fields[k], &lines2[i].fields[k]);
    }
}

static void
check_record(const struct qt_wal_record *r)
{
    static uint8_t framed[F_SCRATCH + QT_WAL_HEADER_SIZE];
    for (int lz4 = 0; lz4 < 2 && r->payload_len <= F_SCRATCH; lz4++) {
        size_t len = 0;
        struct qt_wal_record r2;
        qt_assert(qt_wal_record_encode(r->seq, r->payload, r->payload_len, lz4 ? scratch2 : NULL,
                                       sizeof(scratch2), framed, sizeof(framed), &len) == 0);
        qt_assert(qt_wal_record_read(framed, len, 0, scratch2, sizeof(scratch2), &r2) == 0);
        qt_assert(r2.seq == r->seq && r2.payload_len == r->payload_len && r2.record_len == len);
        qt_assert(r->payload_len == 0 || memcmp(r2.payload, r->payload, r->payload_len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qt_hash_skip_verify = true;
    size_t off = 0;
    for (int n = 0; n < 64 && off < size; n++) {
        struct qt_wal_record r;
        if (qt_wal_record_read(data, size, off, scratch, sizeof(scratch), &r) != 0)
            break;
        qt_assert(r.record_len >= QT_WAL_HEADER_SIZE && r.record_len <= size - off);
        check_record(&r);
        check_batch(r.payload, r.payload_len);
        off += r.record_len;
    }
    check_batch(data, size);
    return 0;
}
