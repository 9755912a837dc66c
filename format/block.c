/*
 * block.c -- TS and VALUE column blocks: header, codec payload, optional
 * LZ4, zero padding, XXH3 checksum (layout in block.h and DESIGN.md
 * "Blocks").
 *
 * Invariants of a valid block (encoders guarantee them, qt_block_read_header
 * and qt_block_verify check them, the decoders cross-check the payload):
 *   - kind TS or VALUE; 1 <= version <= QT_FORMAT_VERSION; only known flags;
 *     reserved bytes zero;
 *   - 1 <= n_rows <= QT_BLOCK_POINTS_MAX; VALUE: 1 <= n_values <= n_rows and
 *     QT_BLOCK_F_PRESENCE exactly when n_values < n_rows;
 *   - ts_min <= ts_max, equal for one row/value, and at least count - 1
 *     apart (timestamps are strictly ascending);
 *   - encoding ids belong to the column's family (ids are grouped by 16:
 *     TS 1-15, INT 16-31, FLT 32-47, BOOL 48-63, STR 64-79; codec.h);
 *   - stored_len == raw_len without LZ4, 1 <= stored_len < raw_len with it;
 *     raw_len <= QT_BLOCK_PAYLOAD_MAX (TS) or QT_BLOCK_RAW_MAX (VALUE);
 *   - statistics pass qt_stats_check; the padding is zero; the checksum
 *     covers every byte before it.
 * Decoding adds O(1) cross-checks (DESIGN.md "Blocks" explains the cost
 * budget): the codec payload's own count and encoding byte match the
 * header, the end timestamps equal ts_min/ts_max, the presence column has
 * n_values ones, first/last equal the decoded end values.  The O(n)
 * checks -- timestamps strictly ascending, statistics recomputed -- are
 * qt_block_check_ts() and qt_block_check_stats(), for verify/compaction.
 */
#include "block.h"

#include "boolcodec.h"
#include "fltcodec.h"
#include "intcodec.h"
#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"
#include "qt_hash.h"
#include "strcodec.h"
#include "tscodec.h"

#include <lz4.h>
#include <string.h>

static_assert(QT_BLOCK_TS_HEADER_SIZE % 8 == 0 && QT_BLOCK_VALUE_HEADER_SIZE % 8 == 0,
              "headers keep 8-byte alignment");
static_assert(QT_BLOCK_VALUE_HEADER_SIZE == 56 + QT_STATS_SIZE, "stats end the VALUE header");
static_assert(QT_BLOCK_RAW_MAX < (uint32_t)INT32_MAX, "LZ4 sizes are int");
static_assert(QT_BLOCK_PAYLOAD_MAX <= QT_BLOCK_RAW_MAX, "TS payloads fit the raw limit");

/* First encoding id of each column family (ids are grouped by 16). */
#define ENC_FAMILY_TS   0u
#define ENC_FAMILY_INT  16u
#define ENC_FAMILY_FLT  32u
#define ENC_FAMILY_BOOL 48u
#define ENC_FAMILY_STR  64u

static size_t
pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static bool
enc_in_family(uint32_t enc, uint32_t family)
{
    return enc != 0 && enc >= family && enc < family + 16;
}

static uint32_t
vtype_family(enum qt_vtype vt)
{
    switch (vt) {
    case QT_VT_FLOAT: return ENC_FAMILY_FLT;
    case QT_VT_INT: return ENC_FAMILY_INT;
    case QT_VT_BOOL: return ENC_FAMILY_BOOL;
    case QT_VT_STRING: return ENC_FAMILY_STR;
    }
    qt_unreachable();
}

static bool
vtype_known(uint32_t vt)
{
    return vt >= QT_VT_FLOAT && vt <= QT_VT_STRING;
}

/* Read a codec payload's prefix: varint(n) and the encoding byte. */
static int
payload_prefix(const uint8_t *p, size_t len, uint64_t *n, uint32_t *enc)
{
    size_t pos = 0;
    int rc = qt_varint_get(p, len, &pos, n);
    if (rc != 0)
        return rc;
    if (pos >= len)
        return qt_fail(QT_ETRUNC, "block: codec payload without an encoding byte");
    *enc = p[pos];
    return 0;
}

size_t
qt_block_ts_bound(uint32_t n)
{
    qt_assert(n >= 1 && n <= QT_BLOCK_POINTS_MAX);
    return QT_BLOCK_TS_HEADER_SIZE + pad8(qt_ts_bound(n)) + QT_BLOCK_CHECKSUM_SIZE;
}

static size_t
value_bound(enum qt_vtype vtype, const void *values, uint32_t n)
{
    switch (vtype) {
    case QT_VT_FLOAT: return qt_flt_bound(n);
    case QT_VT_INT: return qt_int_bound(n);
    case QT_VT_BOOL: return qt_bool_bound(n);
    case QT_VT_STRING: return qt_str_bound(values, n);
    }
    return 0;
}

size_t
qt_block_values_bound(enum qt_vtype vtype, const void *values, uint32_t n_values, uint32_t n_rows)
{
    qt_assert(n_values >= 1 && n_values <= n_rows && n_rows <= QT_BLOCK_POINTS_MAX);
    qt_assert(values != NULL);
    size_t raw = value_bound(vtype, values, n_values);
    if (n_values < n_rows)
        raw += qt_bool_bound(n_rows);
    return QT_BLOCK_VALUE_HEADER_SIZE + pad8(raw) + QT_BLOCK_CHECKSUM_SIZE;
}

/*
 * The raw payload sits at out[hdr .. hdr + raw); the header is written
 * except flags/raw_len/stored_len.  Compress (if it saves bytes and fits
 * scratch), pad, write the remaining fields and the checksum.
 */
static size_t
block_seal(uint8_t *out, uint32_t hdr, uint32_t raw, uint32_t flags, uint8_t *scratch,
           size_t scratch_cap)
{
    uint8_t *payload = out + hdr;
    uint32_t stored = raw;
    if (scratch != NULL && raw >= 2) {
        size_t dst_cap = scratch_cap < (size_t)raw - 1 ? scratch_cap : (size_t)raw - 1;
        int c =
            LZ4_compress_default((const char *)payload, (char *)scratch, (int)raw, (int)dst_cap);
        if (c > 0) {
            memcpy(payload, scratch, (size_t)c);
            stored = (uint32_t)c;
            flags |= QT_BLOCK_F_LZ4;
        }
    }
    qt_assert(stored <= raw && (flags & ~QT_BLOCK_F_KNOWN) == 0);
    qt_store_le16(out + 2, (uint16_t)flags);
    qt_store_le32(out + 32, raw);
    qt_store_le32(out + 36, stored);
    size_t body = hdr + pad8(stored);
    memset(out + hdr + stored, 0, body - hdr - stored);
    qt_hash_store(out + body, qt_hash64(out, body));
    return body + QT_BLOCK_CHECKSUM_SIZE;
}

/* Header fields shared by both kinds (flags and lengths come in block_seal). */
static void
header_common(uint8_t *out, enum qt_block_kind kind, uint32_t n_rows, uint64_t id, int64_t ts_min,
              int64_t ts_max, uint32_t encoding)
{
    out[0] = (uint8_t)kind;
    out[1] = (uint8_t)QT_FORMAT_VERSION;
    qt_store_le32(out + 4, n_rows);
    qt_store_le64(out + 8, id);
    qt_store_le64(out + 16, (uint64_t)ts_min);
    qt_store_le64(out + 24, (uint64_t)ts_max);
    out[40] = (uint8_t)encoding;
    out[41] = 0;
    out[42] = 0;
    out[43] = 0;
    qt_store_le32(out + 44, 0);
}

static int
check_ascending(const int64_t *ts, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        if (ts[i] <= ts[i - 1])
            return qt_fail(QT_EINVAL, "block: timestamps not strictly ascending");
    return 0;
}

int
qt_block_encode_ts(uint64_t group_id, const int64_t *ts, uint32_t n, uint8_t *scratch,
                   size_t scratch_cap, uint8_t *out, size_t cap, size_t *out_len)
{
    qt_assert(ts != NULL && out != NULL && out_len != NULL);
    if (n == 0 || n > QT_BLOCK_POINTS_MAX)
        return qt_fail(QT_EINVAL, "block: row count outside 1..QT_BLOCK_POINTS_MAX");
    int rc = check_ascending(ts, n);
    if (rc != 0)
        return rc;
    if (cap < qt_block_ts_bound(n))
        return qt_fail(QT_ENOSPACE, "block: output buffer below qt_block_ts_bound");
    size_t raw = 0;
    uint8_t *payload = out + QT_BLOCK_TS_HEADER_SIZE;
    rc = qt_ts_encode(ts, n, payload, cap - QT_BLOCK_TS_HEADER_SIZE - 8, &raw);
    if (rc != 0)
        return rc;
    uint64_t pn = 0;
    uint32_t enc = 0;
    qt_assert(payload_prefix(payload, raw, &pn, &enc) == 0 && pn == n);
    qt_assert(raw <= QT_BLOCK_PAYLOAD_MAX && enc_in_family(enc, ENC_FAMILY_TS));
    header_common(out, QT_BLOCK_TS, n, group_id, ts[0], ts[n - 1], enc);
    *out_len = block_seal(out, QT_BLOCK_TS_HEADER_SIZE, (uint32_t)raw, 0, scratch, scratch_cap);
    qt_assert_slow(qt_block_verify(out, *out_len, NULL) == 0);
    return 0;
}

/* Validate presence against counts; find the first and last present rows. */
static int
presence_scan(const uint8_t *presence, uint32_t n_rows, uint32_t n_values, uint32_t *first,
              uint32_t *last)
{
    if (presence == NULL) {
        if (n_values != n_rows)
            return qt_fail(QT_EINVAL, "block: n_values < n_rows needs a presence column");
        *first = 0;
        *last = n_rows - 1;
        return 0;
    }
    uint32_t ones = 0;
    *first = *last = UINT32_MAX;
    for (uint32_t i = 0; i < n_rows; i++) {
        if (presence[i] > 1)
            return qt_fail(QT_EINVAL, "block: presence byte not 0 or 1");
        if (presence[i] == 1) {
            *first = ones == 0 ? i : *first;
            *last = i;
            ones++;
        }
    }
    if (ones != n_values)
        return qt_fail(QT_EINVAL, "block: presence ones differ from n_values");
    return 0;
}

static int
value_encode(enum qt_vtype vt, const void *v, uint32_t n, uint8_t *out, size_t cap, size_t *len)
{
    switch (vt) {
    case QT_VT_FLOAT: return qt_flt_encode(v, n, out, cap, len);
    case QT_VT_INT: return qt_int_encode(v, n, out, cap, len);
    case QT_VT_BOOL: return qt_bool_encode(v, n, out, cap, len);
    case QT_VT_STRING: return qt_str_encode(v, n, out, cap, len);
    }
    qt_unreachable();
}

/* Write presence (if any) and values at out[96..); returns raw length. */
static int
values_payload(uint8_t *out, size_t cap, enum qt_vtype vt, const void *values, uint32_t n_values,
               const uint8_t *presence, uint32_t n_rows, uint32_t *raw_out)
{
    uint8_t *p = out + QT_BLOCK_VALUE_HEADER_SIZE;
    size_t room = cap - QT_BLOCK_VALUE_HEADER_SIZE - QT_BLOCK_CHECKSUM_SIZE, plen = 0, vlen = 0;
    uint64_t pn = 0;
    uint32_t penc = 0, venc = 0;
    int rc = 0;
    if (n_values < n_rows) {
        rc = qt_bool_encode(presence, n_rows, p, room, &plen);
        if (rc != 0)
            return rc;
        qt_assert(payload_prefix(p, plen, &pn, &penc) == 0 && pn == n_rows);
        qt_assert(enc_in_family(penc, ENC_FAMILY_BOOL));
    }
    rc = value_encode(vt, values, n_values, p + plen, room - plen, &vlen);
    if (rc != 0)
        return rc;
    qt_assert(payload_prefix(p + plen, vlen, &pn, &venc) == 0 && pn == n_values);
    qt_assert(enc_in_family(venc, vtype_family(vt)));
    if (plen + vlen > QT_BLOCK_RAW_MAX)
        return qt_fail(QT_ELIMIT, "block: payload above QT_BLOCK_RAW_MAX, cut the block");
    out[40] = (uint8_t)venc;
    out[42] = (uint8_t)penc;
    qt_store_le32(out + 48, (uint32_t)plen);
    *raw_out = (uint32_t)(plen + vlen);
    return 0;
}

int
qt_block_encode_values(uint64_t series_id, enum qt_vtype vtype, const void *values,
                       uint32_t n_values, const uint8_t *presence, uint32_t n_rows,
                       const int64_t *ts, uint8_t *scratch, size_t scratch_cap, uint8_t *out,
                       size_t cap, size_t *out_len)
{
    qt_assert(values != NULL && ts != NULL);
    qt_assert(out != NULL && out_len != NULL);
    if (!vtype_known((uint32_t)vtype))
        return qt_fail(QT_EINVAL, "block: unknown vtype");
    if (n_rows == 0 || n_rows > QT_BLOCK_POINTS_MAX || n_values == 0 || n_values > n_rows)
        return qt_fail(QT_EINVAL, "block: counts outside 1 <= n_values <= n_rows <= max");
    uint32_t first = 0, last = 0;
    int rc = presence_scan(presence, n_rows, n_values, &first, &last);
    if (rc == 0)
        rc = check_ascending(ts, n_rows);
    struct qt_stats st;
    if (rc == 0)
        rc = qt_stats_compute(vtype, values, n_values, &st);
    if (rc != 0)
        return rc;
    if (cap < qt_block_values_bound(vtype, values, n_values, n_rows))
        return qt_fail(QT_ENOSPACE, "block: output buffer below qt_block_values_bound");
    header_common(out, QT_BLOCK_VALUE, n_rows, series_id, ts[first], ts[last], 0);
    out[41] = (uint8_t)vtype;
    qt_store_le32(out + 44, n_values);
    qt_store_le32(out + 52, 0);
    qt_stats_store(&st, out + 56);
    uint32_t raw = 0;
    rc = values_payload(out, cap, vtype, values, n_values, presence, n_rows, &raw);
    if (rc != 0)
        return rc;
    uint32_t flags = (n_values < n_rows ? QT_BLOCK_F_PRESENCE : 0) |
                     (st.sum_overflow ? QT_BLOCK_F_SUM_OVERFLOW : 0);
    *out_len = block_seal(out, QT_BLOCK_VALUE_HEADER_SIZE, raw, flags, scratch, scratch_cap);
    qt_assert_slow(qt_block_verify(out, *out_len, NULL) == 0);
    return 0;
}

/* ---- reading ---------------------------------------------------------- */

/* Fields at the same offsets in both kinds. */
static int
header_common_read(const uint8_t *buf, struct qt_block_info *in)
{
    in->version = buf[1];
    if (in->version == 0)
        return qt_fail(QT_ECORRUPT, "block: version 0");
    if (in->version > QT_FORMAT_VERSION)
        return qt_fail(QT_EVERSION, "block: written by a newer format version");
    in->flags = qt_load_le16(buf + 2);
    in->n_rows = qt_load_le32(buf + 4);
    in->id = qt_load_le64(buf + 8);
    in->ts_min = (int64_t)qt_load_le64(buf + 16);
    in->ts_max = (int64_t)qt_load_le64(buf + 24);
    in->raw_len = qt_load_le32(buf + 32);
    in->stored_len = qt_load_le32(buf + 36);
    in->encoding = buf[40];
    in->vtype = (enum qt_vtype)buf[41];
    in->presence_enc = buf[42];
    in->n_values = qt_load_le32(buf + 44);
    if ((in->flags & ~QT_BLOCK_F_KNOWN) != 0 || buf[43] != 0)
        return qt_fail(QT_ECORRUPT, "block: unknown flags or reserved byte set");
    if (in->n_rows == 0 || in->n_rows > QT_BLOCK_POINTS_MAX)
        return qt_fail(QT_ECORRUPT, "block: n_rows outside 1..QT_BLOCK_POINTS_MAX");
    return 0;
}

/* Lengths and the time range, once the kind-specific fields are known. */
static int
header_lengths(struct qt_block_info *in, uint32_t raw_max, uint32_t count)
{
    bool lz4 = (in->flags & QT_BLOCK_F_LZ4) != 0;
    if (in->raw_len < 2 || in->raw_len > raw_max)
        return qt_fail(QT_ECORRUPT, "block: raw_len outside 2..limit");
    if (lz4 ? (in->stored_len == 0 || in->stored_len >= in->raw_len)
            : in->stored_len != in->raw_len)
        return qt_fail(QT_ECORRUPT, "block: stored_len inconsistent with raw_len and LZ4 flag");
    if (in->ts_min > in->ts_max || (uint64_t)in->ts_max - (uint64_t)in->ts_min < count - 1 ||
        (count == 1 && in->ts_min != in->ts_max))
        return qt_fail(QT_ECORRUPT, "block: time range impossible for its row count");
    in->block_len = in->header_len + (uint32_t)pad8(in->stored_len) + QT_BLOCK_CHECKSUM_SIZE;
    return 0;
}

static int
header_ts(const uint8_t *buf, struct qt_block_info *in)
{
    if ((in->flags & ~QT_BLOCK_F_LZ4) != 0 || in->vtype != 0 || in->presence_enc != 0 ||
        in->n_values != 0)
        return qt_fail(QT_ECORRUPT, "block: TS block with VALUE-only fields set");
    if (!enc_in_family(in->encoding, ENC_FAMILY_TS))
        return qt_fail(QT_ECORRUPT, "block: TS block with a non-timestamp encoding");
    (void)buf;
    return header_lengths(in, QT_BLOCK_PAYLOAD_MAX, in->n_rows);
}

static int
header_value(const uint8_t *buf, struct qt_block_info *in)
{
    if (!vtype_known((uint32_t)in->vtype))
        return qt_fail(QT_ECORRUPT, "block: unknown vtype");
    if (!enc_in_family(in->encoding, vtype_family(in->vtype)))
        return qt_fail(QT_ECORRUPT, "block: encoding id does not match the vtype");
    if (in->n_values == 0 || in->n_values > in->n_rows)
        return qt_fail(QT_ECORRUPT, "block: n_values outside 1..n_rows");
    in->presence_len = qt_load_le32(buf + 48);
    bool has = (in->flags & QT_BLOCK_F_PRESENCE) != 0;
    if (has != (in->n_values < in->n_rows) || qt_load_le32(buf + 52) != 0)
        return qt_fail(QT_ECORRUPT, "block: presence flag disagrees with counts");
    int rc = header_lengths(in, QT_BLOCK_RAW_MAX, in->n_values);
    if (rc != 0)
        return rc;
    if (has ? (!enc_in_family(in->presence_enc, ENC_FAMILY_BOOL) || in->presence_len < 2 ||
               in->presence_len > in->raw_len - 2)
            : (in->presence_enc != 0 || in->presence_len != 0))
        return qt_fail(QT_ECORRUPT, "block: presence encoding or length invalid");
    qt_stats_load(buf + 56, in->n_values, (in->flags & QT_BLOCK_F_SUM_OVERFLOW) != 0, &in->stats);
    return qt_stats_check(in->vtype, &in->stats);
}

int
qt_block_read_header(const uint8_t *buf, size_t len, struct qt_block_info *info)
{
    qt_assert(info != NULL);
    qt_assert(buf != NULL || len == 0);
    memset(info, 0, sizeof(*info));
    if (len < 1)
        return qt_fail(QT_ETRUNC, "block: empty");
    if (buf[0] != QT_BLOCK_TS && buf[0] != QT_BLOCK_VALUE)
        return qt_fail(QT_ECORRUPT, "block: unknown kind");
    info->kind = (enum qt_block_kind)buf[0];
    info->header_len =
        info->kind == QT_BLOCK_TS ? QT_BLOCK_TS_HEADER_SIZE : QT_BLOCK_VALUE_HEADER_SIZE;
    if (len < info->header_len)
        return qt_fail(QT_ETRUNC, "block: header truncated");
    int rc = header_common_read(buf, info);
    if (rc != 0)
        return rc;
    return info->kind == QT_BLOCK_TS ? header_ts(buf, info) : header_value(buf, info);
}

int
qt_block_verify(const uint8_t *buf, size_t len, struct qt_block_info *info)
{
    struct qt_block_info local;
    struct qt_block_info *in = info != NULL ? info : &local;
    int rc = qt_block_read_header(buf, len, in);
    if (rc != 0)
        return rc;
    if (len < in->block_len)
        return qt_fail(QT_ETRUNC, "block: payload truncated");
    size_t body = in->block_len - QT_BLOCK_CHECKSUM_SIZE;
    for (size_t i = in->header_len + in->stored_len; i < body; i++)
        if (buf[i] != 0)
            return qt_fail(QT_ECORRUPT, "block: padding not zero");
    if (!qt_hash_check(buf, body, buf + body))
        return qt_fail(QT_ECHECKSUM, "block: checksum mismatch");
    return 0;
}

/* The raw payload: in place, or LZ4-decompressed into scratch. */
static int
block_payload(const uint8_t *buf, const struct qt_block_info *in, uint8_t *scratch,
              size_t scratch_cap, const uint8_t **p)
{
    *p = buf + in->header_len;
    if ((in->flags & QT_BLOCK_F_LZ4) == 0)
        return 0;
    if (scratch == NULL || scratch_cap < in->raw_len)
        return qt_fail(QT_ENOSPACE, "block: scratch below raw_len");
    int d = LZ4_decompress_safe((const char *)*p, (char *)scratch, (int)in->stored_len,
                                (int)in->raw_len);
    if (d < 0 || (uint32_t)d != in->raw_len)
        return qt_fail(QT_ECORRUPT, "block: LZ4 payload does not decompress to raw_len");
    *p = scratch;
    return 0;
}

/* The codec payload p[0..len) says n values in encoding `enc`. */
static int
payload_matches(const uint8_t *p, size_t len, uint32_t n, uint32_t enc)
{
    uint64_t pn = 0;
    uint32_t penc = 0;
    int rc = payload_prefix(p, len, &pn, &penc);
    if (rc != 0)
        return rc;
    if (pn != n || penc != enc)
        return qt_fail(QT_ECORRUPT, "block: codec count or encoding differs from the header");
    return 0;
}

int
qt_block_decode_ts(const uint8_t *buf, size_t len, uint8_t *scratch, size_t scratch_cap,
                   int64_t *ts, uint32_t cap, struct qt_block_info *info)
{
    qt_assert(ts != NULL);
    struct qt_block_info local;
    struct qt_block_info *in = info != NULL ? info : &local;
    int rc = qt_block_verify(buf, len, in);
    if (rc != 0)
        return rc;
    if (in->kind != QT_BLOCK_TS)
        return qt_fail(QT_ECORRUPT, "block: not a TS block");
    if (cap < in->n_rows)
        return qt_fail(QT_ENOSPACE, "block: ts array below n_rows");
    const uint8_t *p = NULL;
    uint32_t n = 0;
    rc = block_payload(buf, in, scratch, scratch_cap, &p);
    if (rc == 0)
        rc = payload_matches(p, in->raw_len, in->n_rows, in->encoding);
    if (rc == 0)
        rc = qt_ts_decode(p, in->raw_len, ts, cap, &n);
    if (rc != 0)
        return rc;
    if (n != in->n_rows || ts[0] != in->ts_min || ts[n - 1] != in->ts_max)
        return qt_fail(QT_ECORRUPT, "block: decoded timestamps disagree with the header");
    return 0;
}

int
qt_block_check_ts(const struct qt_block_info *info, const int64_t *ts)
{
    qt_assert(info != NULL && ts != NULL);
    qt_assert(info->kind == QT_BLOCK_TS && info->n_rows >= 1);
    bool bad = false;
    for (uint32_t i = 1; i < info->n_rows; i++)
        bad |= ts[i] <= ts[i - 1]; /* no early exit: the loop stays branch-free */
    if (bad || ts[0] != info->ts_min || ts[info->n_rows - 1] != info->ts_max)
        return qt_fail(QT_ECORRUPT, "block: timestamps not strictly ascending");
    return 0;
}

static int
value_decode(enum qt_vtype vt, const uint8_t *p, size_t len, void *out, uint32_t cap, uint32_t *n)
{
    switch (vt) {
    case QT_VT_FLOAT: return qt_flt_decode(p, len, out, cap, n);
    case QT_VT_INT: return qt_int_decode(p, len, out, cap, n);
    case QT_VT_BOOL: return qt_bool_decode(p, len, out, cap, n);
    case QT_VT_STRING: return qt_str_decode(p, len, out, cap, n);
    }
    qt_unreachable();
}

/* Decode the presence column (or fill all-present); find first/last rows. */
static int
presence_decode(const uint8_t *p, const struct qt_block_info *in, uint8_t *presence, uint32_t cap,
                uint32_t *first, uint32_t *last)
{
    if ((in->flags & QT_BLOCK_F_PRESENCE) == 0) {
        memset(presence, 1, in->n_rows);
        *first = 0;
        *last = in->n_rows - 1;
        return 0;
    }
    uint32_t n = 0;
    int rc = payload_matches(p, in->presence_len, in->n_rows, in->presence_enc);
    if (rc == 0)
        rc = qt_bool_decode(p, in->presence_len, presence, cap, &n);
    if (rc != 0)
        return rc;
    if (n != in->n_rows)
        return qt_fail(QT_ECORRUPT, "block: presence column length differs from n_rows");
    uint32_t ones = 0;
    for (uint32_t i = 0; i < n; i++)
        ones += presence[i]; /* bytes are 0/1 (bool codec contract); vectorises */
    if (ones != in->n_values)
        return qt_fail(QT_ECORRUPT, "block: presence ones differ from n_values");
    const uint8_t *f = memchr(presence, 1, n), *l = memrchr(presence, 1, n);
    qt_assert(f != NULL && l != NULL); /* ones >= 1 */
    *first = (uint32_t)(f - presence);
    *last = (uint32_t)(l - presence);
    return 0;
}

/* First/last statistics against the decoded end values (O(1)). */
static bool
ends_match(const struct qt_block_info *in, const void *values)
{
    uint32_t l = in->n_values - 1;
    switch (in->vtype) {
    case QT_VT_FLOAT: {
        const double *v = values;
        return qt_f64_bits(v[0]) == qt_f64_bits(in->stats.first.f) &&
               qt_f64_bits(v[l]) == qt_f64_bits(in->stats.last.f);
    }
    case QT_VT_INT: {
        const int64_t *v = values;
        return v[0] == in->stats.first.i && v[l] == in->stats.last.i;
    }
    case QT_VT_BOOL: {
        const uint8_t *v = values;
        return v[0] == in->stats.first.i && v[l] == in->stats.last.i;
    }
    case QT_VT_STRING: return true;
    }
    return false;
}

int
qt_block_decode_values(const uint8_t *buf, size_t len, uint8_t *scratch, size_t scratch_cap,
                       const int64_t *ts, uint32_t ts_n, void *values, uint8_t *presence,
                       uint32_t cap, struct qt_block_info *info)
{
    qt_assert(values != NULL && presence != NULL);
    struct qt_block_info local;
    struct qt_block_info *in = info != NULL ? info : &local;
    int rc = qt_block_verify(buf, len, in);
    if (rc != 0)
        return rc;
    if (in->kind != QT_BLOCK_VALUE)
        return qt_fail(QT_ECORRUPT, "block: not a VALUE block");
    if (cap < in->n_rows)
        return qt_fail(QT_ENOSPACE, "block: value/presence arrays below n_rows");
    const uint8_t *p = NULL;
    uint32_t first = 0, last = 0, n = 0;
    rc = block_payload(buf, in, scratch, scratch_cap, &p);
    if (rc == 0)
        rc = presence_decode(p, in, presence, cap, &first, &last);
    const uint8_t *v = p + in->presence_len;
    size_t vlen = in->raw_len - in->presence_len;
    if (rc == 0)
        rc = payload_matches(v, vlen, in->n_values, in->encoding);
    if (rc == 0)
        rc = value_decode(in->vtype, v, vlen, values, cap, &n);
    if (rc != 0)
        return rc;
    if (n != in->n_values || !ends_match(in, values))
        return qt_fail(QT_ECORRUPT, "block: decoded values disagree with count/first/last");
    if (ts != NULL && (ts_n != in->n_rows || ts[first] != in->ts_min || ts[last] != in->ts_max))
        return qt_fail(QT_ECORRUPT, "block: time range disagrees with the TS block");
    return 0;
}

int
qt_block_check_stats(const struct qt_block_info *info, const void *values)
{
    qt_assert(info != NULL && values != NULL);
    qt_assert(info->kind == QT_BLOCK_VALUE && info->n_values >= 1);
    struct qt_stats s;
    int rc = qt_stats_compute(info->vtype, values, info->n_values, &s);
    if (rc != 0)
        return qt_fail(QT_ECORRUPT, "block: decoded bool values not 0 or 1");
    if (!qt_stats_equal(&s, &info->stats))
        return qt_fail(QT_ECORRUPT, "block: statistics differ from the decoded values");
    return 0;
}
