/*
 * serieskey.c -- strict parser and builder of canonical group/series keys
 * (see serieskey.h for the grammar and the canonical rules).
 *
 * Invariants: the parser never writes more scratch bytes than it has read
 * input bytes (unescaping only shrinks), and it accepts exactly the strings
 * the builder can produce, so build(parse(s)) == s.  The fuzz target
 * fuzz/fuzz_serieskey.c checks that oracle.
 */
#include "serieskey.h"

#include "qt_assert.h"
#include "qt_err.h"

#include <string.h>

enum sk_kind { SK_MEAS, SK_TAGKEY, SK_TAGVAL, SK_FIELD };

/* No terminator: the component ran to the end of the input. */
#define SK_END (-1)

static bool
sk_special(enum sk_kind kind, uint8_t b)
{
    if (b == ',' || b == ' ')
        return true;
    return b == '=' && kind != SK_MEAS;
}

static bool
sk_forbidden(uint8_t b)
{
    return b == 0 || b == '\n' || b == '\r';
}

int
qt_serieskey_cmp(struct qt_str a, struct qt_str b)
{
    uint32_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.p, b.p, n) : 0;
    if (c != 0)
        return c;
    return a.len < b.len ? -1 : (a.len > b.len ? 1 : 0);
}

/* Unescape one component from buf[*pos..) into scratch[*spos..), stopping at
 * the first unescaped special byte (left unconsumed; returned in *term) or at
 * the end (*term = SK_END). */
static int
sk_component(const uint8_t *buf, size_t len, size_t *pos, enum sk_kind kind, uint8_t *scratch,
             size_t *spos, struct qt_str *out, int *term)
{
    size_t p = *pos, s = *spos;
    const size_t start = s;
    qt_assert(s <= p);
    *term = SK_END;
    while (p < len) {
        uint8_t b = buf[p];
        if (b == '\\' && p + 1 < len && sk_special(kind, buf[p + 1])) {
            scratch[s++] = buf[p + 1];
            p += 2;
            continue;
        }
        if (sk_special(kind, b)) {
            *term = b;
            break;
        }
        if (sk_forbidden(b))
            return qt_fail(QT_ESYNTAX, "serieskey: NUL, CR or LF byte in key");
        scratch[s++] = b;
        p++;
    }
    qt_assert(s <= p);
    if (s == start)
        return qt_fail(QT_ESYNTAX, "serieskey: empty measurement, tag or field");
    if (scratch[s - 1] == '\\')
        return qt_fail(QT_ESYNTAX, "serieskey: component ends with a backslash");
    out->p = (const char *)scratch + start;
    out->len = (uint32_t)(s - start);
    *pos = p;
    *spos = s;
    return 0;
}

/* Parse ",k=v" pairs while the previous terminator is ','. */
static int
sk_parse_tags(const uint8_t *buf, size_t len, size_t *pos, uint8_t *scratch, size_t *spos,
              struct qt_serieskey *out, int *term)
{
    int rc;
    while (*term == ',') {
        (*pos)++;
        if (out->ntags == QT_TAGS_MAX)
            return qt_fail(QT_ELIMIT, "serieskey: more than QT_TAGS_MAX tags");
        struct qt_serieskey_tag *t = &out->tags[out->ntags];
        if ((rc = sk_component(buf, len, pos, SK_TAGKEY, scratch, spos, &t->key, term)) != 0)
            return rc;
        if (*term != '=')
            return qt_fail(QT_ESYNTAX, "serieskey: tag key without '='");
        (*pos)++;
        if ((rc = sk_component(buf, len, pos, SK_TAGVAL, scratch, spos, &t->value, term)) != 0)
            return rc;
        if (*term == '=')
            return qt_fail(QT_ESYNTAX, "serieskey: unescaped '=' in tag value");
        if (out->ntags > 0 && qt_serieskey_cmp(out->tags[out->ntags - 1].key, t->key) >= 0)
            return qt_fail(QT_ESYNTAX, "serieskey: tags not sorted by key or key repeated");
        out->ntags++;
    }
    return 0;
}

int
qt_serieskey_parse(const uint8_t *buf, size_t len, bool with_field, uint8_t *scratch,
                   size_t scratch_cap, struct qt_serieskey *out)
{
    qt_assert(out != NULL);
    qt_assert(buf != NULL || len == 0);
    out->ntags = 0;
    out->group_len = 0;
    out->field = (struct qt_str){NULL, 0};
    if (len == 0)
        return qt_fail(QT_ESYNTAX, "serieskey: empty key");
    if (len > QT_SERIES_KEY_MAX)
        return qt_fail(QT_ELIMIT, "serieskey: key longer than QT_SERIES_KEY_MAX");
    if (scratch_cap < len)
        return qt_fail(QT_ENOSPACE, "serieskey: scratch smaller than the key");
    size_t pos = 0, spos = 0;
    int term, rc;
    if ((rc = sk_component(buf, len, &pos, SK_MEAS, scratch, &spos, &out->measurement, &term)) != 0)
        return rc;
    if ((rc = sk_parse_tags(buf, len, &pos, scratch, &spos, out, &term)) != 0)
        return rc;
    out->group_len = (uint32_t)pos;
    if (term == SK_END) {
        if (with_field)
            return qt_fail(QT_ESYNTAX, "serieskey: series key without a field");
        return 0;
    }
    qt_assert(term == ' ');
    if (!with_field)
        return qt_fail(QT_ESYNTAX, "serieskey: unescaped space in group key");
    pos++;
    if ((rc = sk_component(buf, len, &pos, SK_FIELD, scratch, &spos, &out->field, &term)) != 0)
        return rc;
    if (term != SK_END)
        return qt_fail(QT_ESYNTAX, "serieskey: unescaped ',', '=' or ' ' in field");
    qt_assert(pos == len);
    return 0;
}

size_t
qt_serieskey_bound(const struct qt_serieskey *k, bool with_field)
{
    qt_assert(k != NULL);
    qt_assert(k->ntags <= QT_TAGS_MAX);
    size_t n = 2 * (size_t)k->measurement.len;
    for (uint32_t i = 0; i < k->ntags; i++)
        n += 2 + 2 * ((size_t)k->tags[i].key.len + k->tags[i].value.len);
    if (with_field)
        n += 1 + 2 * (size_t)k->field.len;
    return n;
}

/* Append one escaped component at out[*pos]; validates the raw bytes. */
static int
sk_put(enum sk_kind kind, struct qt_str raw, uint8_t *out, size_t cap, size_t *pos)
{
    size_t p = *pos;
    if (raw.len == 0)
        return qt_fail(QT_EINVAL, "serieskey: empty measurement, tag or field");
    qt_assert(raw.p != NULL);
    const uint8_t *r = (const uint8_t *)raw.p;
    if (r[raw.len - 1] == '\\')
        return qt_fail(QT_EINVAL, "serieskey: component ends with a backslash");
    for (uint32_t i = 0; i < raw.len; i++) {
        if (sk_forbidden(r[i]))
            return qt_fail(QT_EINVAL, "serieskey: NUL, CR or LF byte in key");
        bool esc = sk_special(kind, r[i]);
        if (p + 1 + esc > cap)
            return qt_fail(QT_ENOSPACE, "serieskey: output buffer too small");
        if (esc)
            out[p++] = '\\';
        out[p++] = r[i];
    }
    *pos = p;
    return 0;
}

static int
sk_put_sep(uint8_t sep, uint8_t *out, size_t cap, size_t *pos)
{
    if (*pos >= cap)
        return qt_fail(QT_ENOSPACE, "serieskey: output buffer too small");
    out[(*pos)++] = sep;
    return 0;
}

int
qt_serieskey_build(const struct qt_serieskey *k, bool with_field, uint8_t *out, size_t cap,
                   size_t *out_len)
{
    qt_assert(k != NULL);
    qt_assert(out != NULL || cap == 0);
    if (k->ntags > QT_TAGS_MAX)
        return qt_fail(QT_ELIMIT, "serieskey: more than QT_TAGS_MAX tags");
    size_t pos = 0;
    int rc = sk_put(SK_MEAS, k->measurement, out, cap, &pos);
    for (uint32_t i = 0; rc == 0 && i < k->ntags; i++) {
        if (i > 0 && qt_serieskey_cmp(k->tags[i - 1].key, k->tags[i].key) >= 0)
            return qt_fail(QT_EINVAL, "serieskey: tags not sorted by key or key repeated");
        if ((rc = sk_put_sep(',', out, cap, &pos)) != 0 ||
            (rc = sk_put(SK_TAGKEY, k->tags[i].key, out, cap, &pos)) != 0 ||
            (rc = sk_put_sep('=', out, cap, &pos)) != 0)
            return rc;
        rc = sk_put(SK_TAGVAL, k->tags[i].value, out, cap, &pos);
    }
    if (rc == 0 && with_field) {
        if ((rc = sk_put_sep(' ', out, cap, &pos)) != 0)
            return rc;
        rc = sk_put(SK_FIELD, k->field, out, cap, &pos);
    }
    if (rc != 0)
        return rc;
    if (pos > QT_SERIES_KEY_MAX)
        return qt_fail(QT_ELIMIT, "serieskey: key longer than QT_SERIES_KEY_MAX");
    *out_len = pos;
    return 0;
}

void
qt_serieskey_sort(struct qt_serieskey *k)
{
    qt_assert(k != NULL);
    qt_assert(k->ntags <= QT_TAGS_MAX);
    for (uint32_t i = 1; i < k->ntags; i++) {
        struct qt_serieskey_tag t = k->tags[i];
        uint32_t j = i;
        while (j > 0 && qt_serieskey_cmp(k->tags[j - 1].key, t.key) > 0) {
            k->tags[j] = k->tags[j - 1];
            j--;
        }
        k->tags[j] = t;
    }
}
