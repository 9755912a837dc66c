/*
 * catrec.c -- encode/decode of the catalog log header and records (layout in
 * catrec.h).
 *
 * Invariant: decode(encode(r)) == r and encode(decode(b)) == b for every
 * accepted record b (the fuzz target fuzz/fuzz_catrec.c checks both).
 */
#include "catrec.h"

#include "codec.h"
#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"
#include "qt_hash.h"

#include <string.h>

static_assert(QT_CATREC_FIXED_SIZE == 8 + 8 + 1 + 2 + 8, "record fixed part");
static_assert(QT_SERIES_KEY_MAX <= UINT16_MAX, "key_len is a u16 on disk");
static_assert(sizeof(QT_CATREC_MAGIC) - 1 == QT_CATREC_MAGIC_SIZE, "magic size");

/* Offsets inside a record (catrec.h). */
#define REC_SERIES_ID 0u
#define REC_GROUP_ID  8u
#define REC_VTYPE     16u
#define REC_KEY_LEN   17u
#define REC_KEY       19u

static bool
catrec_vtype_ok(uint8_t vt)
{
    return vt >= QT_VT_FLOAT && vt <= QT_VT_STRING;
}

int
qt_catrec_header_encode(uint8_t *out, size_t cap)
{
    qt_assert(out != NULL || cap == 0);
    if (cap < QT_CATREC_HEADER_SIZE)
        return qt_fail(QT_ENOSPACE, "catrec: header buffer too small");
    memcpy(out, QT_CATREC_MAGIC, QT_CATREC_MAGIC_SIZE);
    qt_store_le32(out + 8, QT_FORMAT_VERSION);
    qt_store_le32(out + 12, 0);
    qt_hash_store(out + 16, qt_hash64(out, 16));
    qt_assert(qt_hash_check(out, 16, out + 16));
    return 0;
}

int
qt_catrec_header_decode(const uint8_t *buf, size_t len, uint32_t *version)
{
    qt_assert(buf != NULL || len == 0);
    qt_assert(version != NULL);
    if (len < QT_CATREC_HEADER_SIZE)
        return qt_fail(QT_ETRUNC, "catrec: file shorter than its header");
    if (memcmp(buf, QT_CATREC_MAGIC, QT_CATREC_MAGIC_SIZE) != 0)
        return qt_fail(QT_EMAGIC, "catrec: not a catalog file (bad magic)");
    if (!qt_hash_check(buf, 16, buf + 16))
        return qt_fail(QT_ECHECKSUM, "catrec: header checksum mismatch");
    uint32_t v = qt_load_le32(buf + 8);
    if (v == 0)
        return qt_fail(QT_ECORRUPT, "catrec: header version 0");
    if (v > QT_FORMAT_VERSION)
        return qt_fail(QT_EVERSION, "catrec: catalog written by a newer format version");
    if (qt_load_le32(buf + 12) != 0)
        return qt_fail(QT_ECORRUPT, "catrec: reserved header bytes not zero");
    *version = v;
    return 0;
}

int
qt_catrec_encode(const struct qt_catrec *r, uint8_t *out, size_t cap, size_t *out_len)
{
    qt_assert(r != NULL);
    qt_assert(out_len != NULL);
    if (!catrec_vtype_ok(r->vtype))
        return qt_fail(QT_EINVAL, "catrec: unknown value type");
    if (r->key_len == 0 || r->key_len > QT_SERIES_KEY_MAX)
        return qt_fail(QT_EINVAL, "catrec: key length outside 1..QT_SERIES_KEY_MAX");
    size_t n = qt_catrec_size(r->key_len);
    if (cap < n)
        return qt_fail(QT_ENOSPACE, "catrec: record buffer too small");
    qt_store_le64(out + REC_SERIES_ID, r->series_id);
    qt_store_le64(out + REC_GROUP_ID, r->group_id);
    out[REC_VTYPE] = r->vtype;
    qt_store_le16(out + REC_KEY_LEN, r->key_len);
    memcpy(out + REC_KEY, r->key, r->key_len);
    qt_hash_store(out + REC_KEY + r->key_len, qt_hash64(out, REC_KEY + (size_t)r->key_len));
    *out_len = n;
    return 0;
}

int
qt_catrec_decode(const uint8_t *buf, size_t len, struct qt_catrec *r, size_t *consumed)
{
    qt_assert(buf != NULL || len == 0);
    qt_assert(r != NULL && consumed != NULL);
    if (len < REC_KEY)
        return qt_fail(QT_ETRUNC, "catrec: record header truncated");
    uint16_t klen = qt_load_le16(buf + REC_KEY_LEN);
    if (klen == 0 || klen > QT_SERIES_KEY_MAX)
        return qt_fail(QT_ECORRUPT, "catrec: key length outside 1..QT_SERIES_KEY_MAX");
    size_t n = qt_catrec_size(klen);
    if (len < n)
        return qt_fail(QT_ETRUNC, "catrec: record truncated");
    if (!qt_hash_check(buf, REC_KEY + (size_t)klen, buf + REC_KEY + klen))
        return qt_fail(QT_ECHECKSUM, "catrec: record checksum mismatch");
    if (!catrec_vtype_ok(buf[REC_VTYPE]))
        return qt_fail(QT_ECORRUPT, "catrec: unknown value type");
    r->series_id = qt_load_le64(buf + REC_SERIES_ID);
    r->group_id = qt_load_le64(buf + REC_GROUP_ID);
    r->vtype = buf[REC_VTYPE];
    r->key_len = klen;
    r->key = buf + REC_KEY;
    *consumed = n;
    return 0;
}
