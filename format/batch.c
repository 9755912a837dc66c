/*
 * batch.c -- write batch payload encode/decode (layout in batch.h and
 * DESIGN.md "Write batches").
 *
 * Invariants of a valid payload (encode guarantees, decode checks):
 *   - first byte QT_BATCH_KIND; the header's n_fields equals the sum of the
 *     lines' field counts; the payload ends exactly after the last line;
 *   - every line passes qt_batch_line_check(): key 1..QT_SERIES_KEY_MAX-2
 *     bytes, 1..QT_FIELDS_MAX fields, names >= 1 byte with
 *     key_len + 1 + name_len <= QT_SERIES_KEY_MAX, known vtype, bool 0/1,
 *     strings <= QT_STRING_VALUE_MAX bytes;
 *   - total size <= QT_WAL_PAYLOAD_MAX.
 * Timestamps are delta-coded against the previous line modulo 2^64 so that
 * gateway batches (many lines, one timestamp) cost one byte per timestamp;
 * any int64 sequence round-trips.
 */
#include "batch.h"

#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"
#include "wal.h"

#include <string.h>

/* Smallest encodings, used to reject impossible counts before looping:
 * field = name_len + 1 name byte + vtype + 1 value byte; line = key_len +
 * 1 key byte + ts + n_fields (its fields counted separately). */
#define BATCH_FIELD_MIN_BYTES 4u
#define BATCH_LINE_MIN_BYTES  4u

static size_t
varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static bool
vtype_known(uint32_t vt)
{
    return vt >= QT_VT_FLOAT && vt <= QT_VT_STRING;
}

/* Encoded size of one field's value (vtype already checked). */
static size_t
field_value_size(const struct qt_batch_field *f)
{
    switch (f->vtype) {
    case QT_VT_FLOAT: return 8;
    case QT_VT_INT: return varint_len(qt_zigzag64(f->v.i));
    case QT_VT_BOOL: return 1;
    case QT_VT_STRING: return varint_len(f->v.s.len) + f->v.s.len;
    }
    qt_unreachable();
}

static int
field_check(const struct qt_batch_field *f, uint32_t key_len)
{
    if (f->name_len == 0)
        return qt_fail(QT_EINVAL, "batch: empty field name");
    if (f->name_len > QT_SERIES_KEY_MAX - 1 - key_len)
        return qt_fail(QT_ELIMIT, "batch: series key above QT_SERIES_KEY_MAX");
    if (!vtype_known((uint32_t)f->vtype))
        return qt_fail(QT_EINVAL, "batch: unknown field vtype");
    if (f->vtype == QT_VT_BOOL && f->v.b > 1)
        return qt_fail(QT_EINVAL, "batch: bool value not 0 or 1");
    if (f->vtype == QT_VT_STRING && f->v.s.len > QT_STRING_VALUE_MAX)
        return qt_fail(QT_ELIMIT, "batch: string above QT_STRING_VALUE_MAX");
    return 0;
}

int
qt_batch_line_check(const struct qt_batch_line *line)
{
    qt_assert(line != NULL);
    if (line->key_len == 0)
        return qt_fail(QT_EINVAL, "batch: empty group key");
    if (line->key_len > QT_SERIES_KEY_MAX - 2)
        return qt_fail(QT_ELIMIT, "batch: group key above QT_SERIES_KEY_MAX");
    if (line->n_fields == 0)
        return qt_fail(QT_EINVAL, "batch: line without fields");
    if (line->n_fields > QT_FIELDS_MAX)
        return qt_fail(QT_ELIMIT, "batch: fields above QT_FIELDS_MAX");
    qt_assert(line->key != NULL && line->fields != NULL);
    for (uint32_t i = 0; i < line->n_fields; i++) {
        int rc = field_check(&line->fields[i], line->key_len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Encoded size of one checked line, given the previous line's timestamp. */
static size_t
line_size(const struct qt_batch_line *l, int64_t prev_ts)
{
    size_t n = varint_len(l->key_len) + l->key_len;
    n += varint_len(qt_zigzag64((int64_t)((uint64_t)l->ts - (uint64_t)prev_ts)));
    n += varint_len(l->n_fields);
    for (uint32_t i = 0; i < l->n_fields; i++) {
        const struct qt_batch_field *f = &l->fields[i];
        n += varint_len(f->name_len) + f->name_len + 1 + field_value_size(f);
    }
    return n;
}

size_t
qt_batch_size(const struct qt_batch_line *lines, uint32_t n_lines)
{
    qt_assert(lines != NULL || n_lines == 0);
    uint64_t total_fields = 0;
    size_t body = 0;
    int64_t prev = 0;
    for (uint32_t i = 0; i < n_lines; i++) {
        if (qt_batch_line_check(&lines[i]) != 0)
            return 0;
        body += line_size(&lines[i], prev);
        prev = lines[i].ts;
        total_fields += lines[i].n_fields;
    }
    return 1 + varint_len(n_lines) + varint_len(total_fields) + body;
}

/* Append one checked line at out[*pos]; the caller has sized out. */
static void
line_put(const struct qt_batch_line *l, int64_t prev_ts, uint8_t *out, size_t cap, size_t *pos)
{
    int rc = qt_varint_put(out, cap, pos, l->key_len);
    memcpy(out + *pos, l->key, l->key_len);
    *pos += l->key_len;
    rc |= qt_varint_put(out, cap, pos, qt_zigzag64((int64_t)((uint64_t)l->ts - (uint64_t)prev_ts)));
    rc |= qt_varint_put(out, cap, pos, l->n_fields);
    for (uint32_t i = 0; i < l->n_fields; i++) {
        const struct qt_batch_field *f = &l->fields[i];
        rc |= qt_varint_put(out, cap, pos, f->name_len);
        memcpy(out + *pos, f->name, f->name_len);
        *pos += f->name_len;
        out[(*pos)++] = (uint8_t)f->vtype;
        switch (f->vtype) {
        case QT_VT_FLOAT:
            qt_store_le64(out + *pos, qt_f64_bits(f->v.f));
            *pos += 8;
            break;
        case QT_VT_INT: rc |= qt_varint_put(out, cap, pos, qt_zigzag64(f->v.i)); break;
        case QT_VT_BOOL: out[(*pos)++] = f->v.b; break;
        case QT_VT_STRING:
            rc |= qt_varint_put(out, cap, pos, f->v.s.len);
            if (f->v.s.len > 0)
                memcpy(out + *pos, f->v.s.p, f->v.s.len);
            *pos += f->v.s.len;
            break;
        }
    }
    qt_assert(rc == 0 && *pos <= cap); /* sized by qt_batch_size */
}

int
qt_batch_encode(const struct qt_batch_line *lines, uint32_t n_lines, uint8_t *out, size_t cap,
                size_t *out_len)
{
    qt_assert(out != NULL && out_len != NULL);
    qt_assert(lines != NULL || n_lines == 0);
    uint64_t total_fields = 0;
    for (uint32_t i = 0; i < n_lines; i++) {
        int rc = qt_batch_line_check(&lines[i]);
        if (rc != 0)
            return rc;
        total_fields += lines[i].n_fields;
    }
    size_t need = qt_batch_size(lines, n_lines);
    if (need > QT_WAL_PAYLOAD_MAX)
        return qt_fail(QT_ELIMIT, "batch: payload above QT_WAL_PAYLOAD_MAX, split the batch");
    if (cap < need)
        return qt_fail(QT_ENOSPACE, "batch: output buffer below qt_batch_size");
    size_t pos = 0;
    out[pos++] = QT_BATCH_KIND;
    int rc = qt_varint_put(out, cap, &pos, n_lines);
    rc |= qt_varint_put(out, cap, &pos, total_fields);
    qt_assert(rc == 0);
    int64_t prev = 0;
    for (uint32_t i = 0; i < n_lines; i++) {
        line_put(&lines[i], prev, out, cap, &pos);
        prev = lines[i].ts;
    }
    qt_assert(pos == need);
    *out_len = pos;
    return 0;
}

/* Parse the prefix; *pos is left after it. */
static int
batch_prefix(const uint8_t *buf, size_t len, size_t *pos, uint32_t *n_lines, uint32_t *n_fields)
{
    if (len > QT_WAL_PAYLOAD_MAX)
        return qt_fail(QT_ELIMIT, "batch: payload above QT_WAL_PAYLOAD_MAX");
    if (len == 0)
        return qt_fail(QT_ETRUNC, "batch: empty payload");
    if (buf[0] != QT_BATCH_KIND)
        return qt_fail(QT_ECORRUPT, "batch: payload kind is not a batch");
    uint64_t nl = 0, nf = 0;
    *pos = 1;
    int rc = qt_varint_get(buf, len, pos, &nl);
    if (rc == 0)
        rc = qt_varint_get(buf, len, pos, &nf);
    if (rc != 0)
        return rc;
    size_t rest = len - *pos;
    if (nl > rest / BATCH_LINE_MIN_BYTES || nf > rest / BATCH_FIELD_MIN_BYTES ||
        nl * BATCH_LINE_MIN_BYTES + nf * BATCH_FIELD_MIN_BYTES > rest)
        return qt_fail(QT_ECORRUPT, "batch: counts larger than the payload can hold");
    if (nf < nl || nf > nl * QT_FIELDS_MAX)
        return qt_fail(QT_ECORRUPT, "batch: field count inconsistent with line count");
    *n_lines = (uint32_t)nl;
    *n_fields = (uint32_t)nf;
    return 0;
}

int
qt_batch_peek(const uint8_t *buf, size_t len, uint32_t *n_lines, uint32_t *n_fields)
{
    qt_assert(buf != NULL || len == 0);
    qt_assert(n_lines != NULL && n_fields != NULL);
    size_t pos;
    return batch_prefix(buf, len, &pos, n_lines, n_fields);
}

/* Read varint length + that many bytes; *p points at them. */
static int
get_bytes(const uint8_t *buf, size_t len, size_t *pos, uint64_t max, const char **p, uint32_t *n)
{
    uint64_t v = 0;
    int rc = qt_varint_get(buf, len, pos, &v);
    if (rc != 0)
        return rc;
    if (v > max)
        return qt_fail(QT_ELIMIT, "batch: length above its limit");
    if (len - *pos < v)
        return qt_fail(QT_ETRUNC, "batch: bytes truncated");
    *p = (const char *)buf + *pos;
    *n = (uint32_t)v;
    *pos += v;
    return 0;
}

static int
field_get(const uint8_t *buf, size_t len, size_t *pos, uint32_t key_len, struct qt_batch_field *f)
{
    int rc = get_bytes(buf, len, pos, QT_SERIES_KEY_MAX - 1 - key_len, &f->name, &f->name_len);
    if (rc != 0)
        return rc;
    if (f->name_len == 0)
        return qt_fail(QT_ECORRUPT, "batch: empty field name");
    if (*pos >= len)
        return qt_fail(QT_ETRUNC, "batch: field vtype truncated");
    uint8_t vt = buf[(*pos)++];
    if (!vtype_known(vt))
        return qt_fail(QT_ECORRUPT, "batch: unknown field vtype");
    f->vtype = (enum qt_vtype)vt;
    uint64_t u = 0;
    switch (f->vtype) {
    case QT_VT_FLOAT:
        if (len - *pos < 8)
            return qt_fail(QT_ETRUNC, "batch: float value truncated");
        f->v.f = qt_bits_f64(qt_load_le64(buf + *pos));
        *pos += 8;
        return 0;
    case QT_VT_INT:
        rc = qt_varint_get(buf, len, pos, &u);
        f->v.i = qt_unzigzag64(u);
        return rc;
    case QT_VT_BOOL:
        if (*pos >= len)
            return qt_fail(QT_ETRUNC, "batch: bool value truncated");
        f->v.b = buf[(*pos)++];
        return f->v.b <= 1 ? 0 : qt_fail(QT_ECORRUPT, "batch: bool value not 0 or 1");
    case QT_VT_STRING: return get_bytes(buf, len, pos, QT_STRING_VALUE_MAX, &f->v.s.p, &f->v.s.len);
    }
    qt_unreachable();
}

/* Decode one line whose fields go to fields[*nf ..), at most fields_n total. */
static int
line_get(const uint8_t *buf, size_t len, size_t *pos, int64_t prev_ts, struct qt_batch_line *l,
         struct qt_batch_field *fields, uint32_t fields_n, uint32_t *nf)
{
    int rc = get_bytes(buf, len, pos, QT_SERIES_KEY_MAX - 2, &l->key, &l->key_len);
    uint64_t dz = 0, n = 0;
    if (rc == 0 && l->key_len == 0)
        rc = qt_fail(QT_ECORRUPT, "batch: empty group key");
    if (rc == 0)
        rc = qt_varint_get(buf, len, pos, &dz);
    if (rc == 0)
        rc = qt_varint_get(buf, len, pos, &n);
    if (rc != 0)
        return rc;
    l->ts = (int64_t)((uint64_t)prev_ts + (uint64_t)qt_unzigzag64(dz));
    if (n == 0 || n > QT_FIELDS_MAX)
        return qt_fail(QT_ECORRUPT, "batch: line field count outside 1..QT_FIELDS_MAX");
    if (n > fields_n - *nf)
        return qt_fail(QT_ECORRUPT, "batch: lines hold more fields than the header says");
    l->n_fields = (uint32_t)n;
    l->fields = &fields[*nf];
    for (uint32_t i = 0; i < n; i++) {
        rc = field_get(buf, len, pos, l->key_len, &fields[*nf + i]);
        if (rc != 0)
            return rc;
    }
    *nf += (uint32_t)n;
    return 0;
}

int
qt_batch_decode(const uint8_t *buf, size_t len, struct qt_batch_line *lines, uint32_t lines_cap,
                struct qt_batch_field *fields, uint32_t fields_cap, uint32_t *n_lines,
                uint32_t *n_fields)
{
    qt_assert(buf != NULL || len == 0);
    qt_assert(n_lines != NULL && n_fields != NULL);
    size_t pos = 0;
    uint32_t nl = 0, nf = 0;
    int rc = batch_prefix(buf, len, &pos, &nl, &nf);
    if (rc != 0)
        return rc;
    if (nl > lines_cap || nf > fields_cap)
        return qt_fail(QT_ENOSPACE, "batch: caller arrays below the payload's counts");
    uint32_t got = 0;
    int64_t prev = 0;
    for (uint32_t i = 0; i < nl; i++) {
        rc = line_get(buf, len, &pos, prev, &lines[i], fields, nf, &got);
        if (rc != 0)
            return rc;
        prev = lines[i].ts;
    }
    if (got != nf)
        return qt_fail(QT_ECORRUPT, "batch: lines hold fewer fields than the header says");
    if (pos != len)
        return qt_fail(QT_ECORRUPT, "batch: trailing bytes after the last line");
    *n_lines = nl;
    *n_fields = nf;
    return 0;
}
