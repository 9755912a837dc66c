/*
 * strcodec.c -- short-string column codec (see strcodec.h; layout in
 * DESIGN.md "String codec").
 *
 * Status and event fields repeat a handful of values, so the encoder builds
 * a dictionary of the distinct strings in first-seen order and stores each
 * value as a code, packed in patched FOR runs (codec_int.h): a column that
 * sits on "ok" with a rare "alarm" costs ~0.1 bit per value plus the
 * dictionary; a block holding one distinct value stores no codes at all.
 * Above QT_STRING_DICT_MAX distinct values, or when the
 * dictionary would not be smaller, values are stored PLAIN (varint length
 * and bytes each).
 *
 * The dictionary is built without allocation: an open-addressing table on
 * the stack (linear probing, at most half full, sized to the block), keyed
 * by XXH3 with a 16-bit tag per slot so most probes skip memcmp; a value
 * equal to its predecessor (the common case for status columns) skips the
 * hash entirely.  Decoded qt_str.p point into the payload (zero copy).
 *
 * Invariants: every dictionary code is < the dictionary size (checked per
 * run on decode); every string is <= QT_STRING_VALUE_MAX bytes both ways.
 */
#include "strcodec.h"

#include "codec_int.h"
#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"
#include "qt_hash.h"
#include "qt_limits.h"

#include <string.h>

/* Hash slots for a full dictionary: a power of two, at most half full. */
#define STR_SLOTS_MAX (2u * QT_STRING_DICT_MAX)

static_assert((STR_SLOTS_MAX & (STR_SLOTS_MAX - 1)) == 0, "slot count is a power of two");
static_assert(QT_BLOCK_POINTS_MAX <= 65536, "value indexes and codes fit uint16_t");
static_assert(QT_STRING_DICT_MAX < 65536 && QT_STRING_VALUE_MAX < 65536, "fit uint16_t");
/* Dictionary entries of a valid payload end within 4 GiB of its start. */
static_assert((uint64_t)QT_STRING_DICT_MAX * (QT_VARINT_MAX + QT_STRING_VALUE_MAX) +
                      QT_CODEC_HEAD_MAX + QT_VARINT_MAX <
                  UINT32_MAX,
              "dictionary offsets fit uint32_t");

/* Encoder state: ~56 KiB for a full block, all on the caller's stack. */
struct str_dict {
    const struct qt_str *v;
    uint32_t count;                     /* distinct strings so far */
    uint32_t slot[STR_SLOTS_MAX];       /* 0 empty, else tag << 16 | (id + 1) */
    uint16_t first[QT_STRING_DICT_MAX]; /* value index of each entry */
    uint16_t code[QT_BLOCK_POINTS_MAX]; /* dictionary id of each value */
};

static inline bool
str_eq(const struct qt_str *a, const struct qt_str *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

size_t
qt_str_bound(const struct qt_str *v, uint32_t n)
{
    qt_assert(n == 0 || v != NULL);
    size_t plain = 0;
    for (uint32_t i = 0; i < n; i++)
        plain += qt_codec_varint_len(v[i].len) + v[i].len;
    /* DICT is only chosen when smaller than PLAIN. */
    return QT_CODEC_HEAD_MAX + plain;
}

/* Dictionary id of v[i], adding it if new; false when the dictionary is
 * full (more than QT_STRING_DICT_MAX distinct values). */
static bool
str_dict_lookup(struct str_dict *d, uint32_t i, uint32_t mask)
{
    qt_assert(d->count <= QT_STRING_DICT_MAX);
    qt_assert(mask + 1 >= 2 * d->count && ((mask + 1) & mask) == 0);
    const struct qt_str *s = &d->v[i];
    uint64_t h = qt_hash64(s->p, s->len);
    uint32_t tag = (uint32_t)(h >> 48);
    uint32_t j = (uint32_t)h & mask;
    for (uint32_t probe = 0; probe <= mask; probe++, j = (j + 1) & mask) {
        uint32_t e = d->slot[j];
        if (e == 0) {
            if (d->count == QT_STRING_DICT_MAX)
                return false;
            d->first[d->count] = (uint16_t)i;
            d->slot[j] = tag << 16 | (d->count + 1);
            d->code[i] = (uint16_t)d->count++;
            return true;
        }
        uint32_t id = (e & 0xffff) - 1;
        if ((e >> 16) == tag && str_eq(&d->v[d->first[id]], s)) {
            d->code[i] = (uint16_t)id;
            return true;
        }
    }
    qt_unreachable(); /* the table is never more than half full */
}

/* Build the dictionary of v[0..n); false when there are too many values. */
static bool
str_dict_build(struct str_dict *d, const struct qt_str *v, uint32_t n)
{
    qt_assert(n >= 1 && n <= QT_BLOCK_POINTS_MAX);
    uint32_t want = 2 * (n < QT_STRING_DICT_MAX ? n : QT_STRING_DICT_MAX);
    uint32_t slots = 16;
    while (slots < want)
        slots *= 2;
    qt_assert(slots <= STR_SLOTS_MAX);
    memset(d->slot, 0, slots * sizeof(d->slot[0]));
    d->v = v;
    d->count = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0 && str_eq(&v[i], &v[i - 1])) {
            d->code[i] = d->code[i - 1];
            continue;
        }
        if (!str_dict_lookup(d, i, slots - 1))
            return false;
    }
    return true;
}

static void
str_fill_codes(const void *src, uint32_t first, uint32_t m, int64_t *out)
{
    const struct str_dict *d = src;
    qt_assert(m <= QT_CODEC_RUN_VALUES);
    qt_assert(d->count >= 2);
    for (uint32_t i = 0; i < m; i++)
        out[i] = d->code[first + i];
}

/* Exact DICT body size; plans the code runs into plans[]. */
static size_t
str_dict_size(const struct str_dict *d, uint32_t n, struct qt_codec_run *plans)
{
    qt_assert(d->count >= 1 && d->count <= n);
    size_t size = qt_codec_varint_len(d->count);
    for (uint32_t k = 0; k < d->count; k++)
        size += qt_codec_varint_len(d->v[d->first[k]].len) + d->v[d->first[k]].len;
    /* One entry: every code is 0 and none is stored. */
    return d->count == 1 ? size : size + qt_codec_runs_plan(str_fill_codes, d, n, plans);
}

/* Append varint(len) and the bytes of s. */
static int
str_put(const struct qt_str *s, uint8_t *out, size_t cap, size_t *pos)
{
    qt_assert(s->len <= QT_STRING_VALUE_MAX);
    qt_assert(*pos <= cap);
    int rc = qt_varint_put(out, cap, pos, s->len);
    if (rc != 0)
        return rc;
    if (cap - *pos < s->len)
        return QT_ENOSPACE;
    if (s->len > 0)
        memcpy(out + *pos, s->p, s->len);
    *pos += s->len;
    return 0;
}

static int
str_write_dict(const struct str_dict *d, uint32_t n, const struct qt_codec_run *plans, uint8_t *out,
               size_t cap, size_t *pos)
{
    qt_assert(d->count >= 1 && d->count <= n);
    qt_assert(n <= QT_BLOCK_POINTS_MAX);
    int rc = qt_codec_head_put(out, cap, pos, n, QT_ENC_STR_DICT);
    if (rc == 0)
        rc = qt_varint_put(out, cap, pos, d->count);
    for (uint32_t k = 0; rc == 0 && k < d->count; k++)
        rc = str_put(&d->v[d->first[k]], out, cap, pos);
    if (rc != 0 || d->count == 1)
        return rc;
    return qt_codec_runs_write(str_fill_codes, d, n, plans, out, cap, pos);
}

int
qt_str_encode(const struct qt_str *v, uint32_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    qt_assert(n == 0 || v != NULL);
    qt_assert(out != NULL && out_len != NULL);
    if (n > QT_BLOCK_POINTS_MAX)
        return qt_fail(QT_EINVAL, "str: more than QT_BLOCK_POINTS_MAX values");
    size_t plain = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (v[i].len > QT_STRING_VALUE_MAX)
            return qt_fail(QT_EINVAL, "str: value longer than QT_STRING_VALUE_MAX");
        qt_assert(v[i].p != NULL || v[i].len == 0);
        plain += qt_codec_varint_len(v[i].len) + v[i].len;
    }
    struct str_dict d;
    struct qt_codec_run plans[QT_CODEC_RUNS_MAX];
    size_t pos = 0;
    int rc;
    if (n > 0 && str_dict_build(&d, v, n) && str_dict_size(&d, n, plans) < plain) {
        rc = str_write_dict(&d, n, plans, out, cap, &pos);
    } else {
        rc = qt_codec_head_put(out, cap, &pos, n, QT_ENC_STR_PLAIN);
        for (uint32_t i = 0; rc == 0 && i < n; i++)
            rc = str_put(&v[i], out, cap, &pos);
    }
    if (rc != 0)
        return rc;
    qt_assert(pos <= qt_str_bound(v, n));
    *out_len = pos;
    return 0;
}

/* Read varint(len) and len bytes at buf[*pos ..) as a string into *s. */
static int
str_get(const uint8_t *buf, size_t len, size_t *pos, struct qt_str *s)
{
    qt_assert(*pos <= len);
    qt_assert(s != NULL);
    uint64_t slen = 0;
    int rc = qt_varint_get(buf, len, pos, &slen);
    if (rc != 0)
        return rc;
    if (slen > QT_STRING_VALUE_MAX)
        return qt_fail(QT_ECORRUPT, "str: value longer than QT_STRING_VALUE_MAX");
    if (len - *pos < slen)
        return qt_fail(QT_ETRUNC, "str: value bytes truncated");
    s->p = (const char *)buf + *pos;
    s->len = (uint32_t)slen;
    *pos += slen;
    return 0;
}

static int
str_decode_plain(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, struct qt_str *out)
{
    qt_assert(*pos <= len);
    qt_assert(n == 0 || out != NULL);
    for (uint32_t i = 0; i < n; i++) {
        int rc = str_get(buf, len, pos, &out[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Codes of DICT: runs of dictionary ids, each checked against `count`. */
static int
str_decode_codes(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, const uint32_t *off,
                 const uint16_t *lens, uint32_t count, struct qt_str *out)
{
    qt_assert(count >= 2 && count <= QT_STRING_DICT_MAX);
    qt_assert(n >= count && n <= QT_BLOCK_POINTS_MAX);
    uint64_t c[QT_CODEC_RUN_VALUES];
    for (uint32_t r = 0; r < n; r += QT_CODEC_RUN_VALUES) {
        uint32_t k = n - r < QT_CODEC_RUN_VALUES ? n - r : QT_CODEC_RUN_VALUES;
        uint64_t base = 0, bad = 0;
        int rc = qt_codec_run_read(buf, len, pos, k, c, &base);
        if (rc != 0)
            return rc;
        for (uint32_t i = 0; i < k; i++) {
            c[i] += base;
            bad |= c[i] >= count;
        }
        if (bad)
            return qt_fail(QT_ECORRUPT, "str: code beyond the dictionary");
        for (uint32_t i = 0; i < k; i++) {
            out[r + i].p = (const char *)buf + off[c[i]];
            out[r + i].len = lens[c[i]];
        }
    }
    return 0;
}

static int
str_decode_dict(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, struct qt_str *out)
{
    qt_assert(*pos <= len);
    qt_assert(n <= QT_BLOCK_POINTS_MAX);
    uint32_t off[QT_STRING_DICT_MAX];
    uint16_t lens[QT_STRING_DICT_MAX];
    uint64_t count = 0;
    int rc = qt_varint_get(buf, len, pos, &count);
    if (rc != 0)
        return rc;
    if (count == 0 || count > QT_STRING_DICT_MAX || count > n)
        return qt_fail(QT_ECORRUPT, "str: dictionary size out of range");
    for (uint32_t k = 0; k < count; k++) {
        struct qt_str s;
        rc = str_get(buf, len, pos, &s);
        if (rc != 0)
            return rc;
        off[k] = (uint32_t)((const uint8_t *)s.p - buf);
        lens[k] = (uint16_t)s.len;
    }
    if (count == 1) {
        for (uint32_t i = 0; i < n; i++)
            out[i] = (struct qt_str){.p = (const char *)buf + off[0], .len = lens[0]};
        return 0;
    }
    return str_decode_codes(buf, len, pos, n, off, lens, (uint32_t)count, out);
}

int
qt_str_decode(const uint8_t *buf, size_t len, struct qt_str *out, uint32_t cap, uint32_t *n)
{
    qt_assert(buf != NULL || len == 0);
    qt_assert(n != NULL && (out != NULL || cap == 0));
    size_t pos = 0;
    uint32_t count = 0;
    uint8_t enc = 0;
    int rc = qt_codec_head_get(buf, len, &pos, cap, &count, &enc);
    if (rc != 0)
        return rc;
    switch (enc) {
    case QT_ENC_STR_DICT: rc = str_decode_dict(buf, len, &pos, count, out); break;
    case QT_ENC_STR_PLAIN: rc = str_decode_plain(buf, len, &pos, count, out); break;
    default: return qt_fail(QT_EINVAL, "str: unknown encoding id");
    }
    if (rc != 0)
        return rc;
    if (pos != len)
        return qt_fail(QT_ECORRUPT, "str: trailing bytes after the payload");
    *n = count;
    return 0;
}
