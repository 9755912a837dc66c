/*
 * ilp.c -- InfluxDB line protocol parser, canonical key and formatter.
 *
 * Grammar and decisions: design/ilp.md.  In short:
 *   line   = { ' ' } ( point | '#' anything | empty ) [ '\r' ]
 *   point  = measurement { ',' key '=' tagvalue } ' '+ field { ',' field }
 *            [ ' '+ [ '-' ] digits ] { ' ' }
 *   field  = key '=' ( float | int 'i' | uint 'u' | bool | '"' string '"' )
 * Names escape exactly the characters that would end them: measurement
 * ',' and ' '; tag keys, tag values and field keys ',', '=' and ' '.  A
 * backslash before any other byte (another backslash included) is a
 * literal backslash.  In strings "\"" and "\\\\" are escapes and any other
 * backslash is literal.
 *
 * Invariants:
 *  - every read is bounded by the line's end; the parser never reads the
 *    byte at `len` (the caller's '\n');
 *  - output strings point into the line (no escape seen) or into the
 *    caller's scratch, whose use never exceeds the bytes consumed;
 *  - a parsed point satisfies struct qt_ilp_point's documented invariants,
 *    so qt_ilp_group_key() and qt_ilp_format_line() never fail on it;
 *  - a newline always ends a line (the spec does not allow one in a
 *    value), so one bad quote cannot swallow the lines after it.
 */
#include "server/ilp.h"

#include "format/qt_assert.h"
#include "format/qt_bytes.h"
#include "format/qt_err.h"
#include "server/ilp_int.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static_assert(QT_LINE_MAX == 65536u, "update the 'line exceeds' reason");
static_assert(QT_TAGS_MAX == 64u, "update the 'more than 64 tags' reason");
static_assert(QT_FIELDS_MAX == 256u, "update the 'more than 256 fields' reason");
static_assert(QT_SERIES_KEY_MAX == 4096u, "update the 'series key' reason");
static_assert(QT_STRING_VALUE_MAX == 1024u, "update the 'string field' reason");
static_assert(QT_SERIES_KEY_MAX < QT_LINE_MAX, "a series key fits in one line");
static_assert(QT_LINE_MAX < UINT32_MAX / 2, "offsets and lengths are uint32_t");

/* ORDER QT_CL: bits defined in ilp_int.h. */
const uint8_t qt_ilp_cls[256] = {
    [0x00 ... 0x1f] = QT_CL_CTL, [0x7f] = QT_CL_CTL,
    [0x80 ... 0xff] = QT_CL_HI,  [' '] = QT_CL_SP,
    [','] = QT_CL_COMMA,         ['='] = QT_CL_EQ,
    ['\\'] = QT_CL_BSL,          ['"'] = QT_CL_QUOTE,
    ['0' ... '9'] = QT_CL_DIGIT,
};

/* ---- errors ------------------------------------------------------------ */

#define DETAIL_AFFIX_MAX 64u /* longest pre or post text */
#define DETAIL_KEY_MAX   48u /* key bytes quoted, each up to 4 output bytes */
#define DETAIL_MAX       (2 * DETAIL_AFFIX_MAX + 4 * DETAIL_KEY_MAX + 4)

static _Thread_local char detail_buf[DETAIL_MAX];

int
qt_ilp_fail_key(int code, const char *pre, const char *key, size_t len, const char *post)
{
    static const char hex[] = "0123456789abcdef";
    size_t w = 0, plen = strlen(pre), qlen = strlen(post);
    qt_assert(code < 0);
    qt_assert(plen <= DETAIL_AFFIX_MAX && qlen <= DETAIL_AFFIX_MAX);
    plen = plen < DETAIL_AFFIX_MAX ? plen : DETAIL_AFFIX_MAX; /* for the compiler */
    qlen = qlen < DETAIL_AFFIX_MAX ? qlen : DETAIL_AFFIX_MAX;
    memcpy(detail_buf, pre, plen);
    w = plen;
    for (size_t i = 0; i < len && i < DETAIL_KEY_MAX; i++) {
        uint8_t c = (uint8_t)key[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
            detail_buf[w++] = (char)c;
        } else {
            detail_buf[w++] = '\\';
            detail_buf[w++] = 'x';
            detail_buf[w++] = hex[c >> 4];
            detail_buf[w++] = hex[c & 15];
        }
    }
    if (len > DETAIL_KEY_MAX) {
        memcpy(detail_buf + w, "...", 3);
        w += 3;
    }
    memcpy(detail_buf + w, post, qlen);
    detail_buf[w + qlen] = '\0';
    return qt_fail(code, detail_buf);
}

/* ---- UTF-8 ------------------------------------------------------------- */

size_t
qt_ilp_utf8_len(const uint8_t *p, const uint8_t *end)
{
    qt_assert(p < end);
    uint8_t c = p[0];
    size_t n;
    uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0xc2)
        return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xe0) {
        n = 2;
    } else if (c < 0xf0) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* overlong */
        hi = c == 0xed ? 0x9f : 0xbf; /* surrogates */
    } else if (c < 0xf5) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80; /* overlong */
        hi = c == 0xf4 ? 0x8f : 0xbf; /* above U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* ---- numbers ----------------------------------------------------------- */

#define DEC_SIG_MAX 19 /* decimal digits that always fit in a uint64_t */

/* Append one digit to d; digits past DEC_SIG_MAX significant are dropped
 * (marking d inexact) but still shift the exponent of integer digits. */
static inline void
dec_push(struct qt_ilp_dec *d, uint32_t *sig, uint32_t digit, bool fraction)
{
    if (*sig < DEC_SIG_MAX) {
        d->mant = d->mant * 10 + digit;
        *sig += d->mant != 0; /* leading zeros are not significant */
        d->exp10 -= fraction;
    } else {
        d->inexact = true;
        d->exp10 += !fraction;
    }
}

static const uint8_t *
scan_exponent(const uint8_t *p, const uint8_t *end, struct qt_ilp_dec *d)
{
    bool neg = false;
    int32_t e = 0;
    p++; /* 'e' or 'E' */
    if (p < end && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    if (p == end || !(qt_ilp_cls[*p] & QT_CL_DIGIT))
        return NULL;
    for (; p < end && (qt_ilp_cls[*p] & QT_CL_DIGIT); p++)
        if (e < 100000) /* far beyond any double; keeps e from overflowing */
            e = e * 10 + (*p - '0');
    d->exp10 += neg ? -e : e;
    d->integral = false;
    return p;
}

const uint8_t *
qt_ilp_scan_decimal(const uint8_t *p, const uint8_t *end, bool allow_plus, struct qt_ilp_dec *d)
{
    uint32_t sig = 0, digits = 0;
    qt_assert(p <= end);
    qt_assert(d != NULL);
    *d = (struct qt_ilp_dec){.integral = true};
    if (p < end && (*p == '-' || (allow_plus && *p == '+')))
        d->neg = *p++ == '-';
    for (; p < end && (qt_ilp_cls[*p] & QT_CL_DIGIT); p++, digits++)
        dec_push(d, &sig, (uint32_t)(*p - '0'), false);
    if (p < end && *p == '.') {
        d->integral = false;
        for (p++; p < end && (qt_ilp_cls[*p] & QT_CL_DIGIT); p++, digits++)
            dec_push(d, &sig, (uint32_t)(*p - '0'), true);
    }
    if (digits == 0)
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E'))
        p = scan_exponent(p, end, d);
    return p;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void
c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t
get_c_locale(void)
{
    pthread_once(&c_locale_once, c_locale_init);
    return c_locale;
}

int
qt_ilp_dec_to_double(const struct qt_ilp_dec *d, const uint8_t *text, size_t len, double *out)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    qt_assert(d != NULL && out != NULL);
    if (!d->inexact && d->mant <= (1ull << 53) && d->exp10 >= -22 && d->exp10 <= 22) {
        /* Both operands are exact doubles, so IEEE rounding of the one
         * multiplication or division gives the correctly rounded result. */
        double v = (double)d->mant;
        v = d->exp10 < 0 ? v / p10[-d->exp10] : v * p10[d->exp10];
        *out = d->neg ? -v : v;
        return 0;
    }
    if (len > QT_NUMBER_TEXT_MAX)
        return QT_ELIMIT;
    char buf[QT_NUMBER_TEXT_MAX + 1];
    memcpy(buf, text, len);
    buf[len] = '\0';
    locale_t loc = get_c_locale();
    double v = loc != (locale_t)0 ? strtod_l(buf, NULL, loc) : strtod(buf, NULL);
    if (isinf(v))
        return QT_ESYNTAX;
    qt_assert(!isnan(v));
    *out = v;
    return 0;
}

/* Exact signed/unsigned integer from the digits in [s, e) (validated). */
static int
parse_integer(const struct qt_ilp_dec *d, const uint8_t *s, const uint8_t *e, bool is_uint,
              int64_t *out)
{
    uint64_t v = d->mant;
    if (d->inexact) { /* 20+ significant digits: redo with overflow checks */
        v = 0;
        for (const uint8_t *p = s + d->neg; p < e; p++)
            if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, *p - '0', &v))
                return QT_ESYNTAX;
    }
    if (is_uint) {
        if (v > (uint64_t)INT64_MAX)
            return QT_ELIMIT;
        *out = (int64_t)v;
    } else if (d->neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return QT_ESYNTAX;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return QT_ESYNTAX;
        *out = (int64_t)v;
    }
    return 0;
}

/* ---- line parser ------------------------------------------------------- */

struct pctx {
    const uint8_t *line; /* start of the line: error offsets */
    const uint8_t *end;  /* end of the line (after '\r' removal) */
    char *scratch;
    size_t cap;
    size_t used;
    struct qt_ilp_point *pt;
};

enum name_kind { NAME_MEAS = 0, NAME_TAGK = 1, NAME_TAGV = 2, NAME_FIELDK = 3 };

static const char *const msg_utf8[] = {
    "ilp: invalid UTF-8 in measurement", "ilp: invalid UTF-8 in tag key",
    "ilp: invalid UTF-8 in tag value", "ilp: invalid UTF-8 in field key"};
static const char *const msg_ctl[] = {
    "ilp: control character in measurement", "ilp: control character in tag key",
    "ilp: control character in tag value", "ilp: control character in field key"};

static int
fail_at(struct pctx *c, const uint8_t *p, int code, const char *why)
{
    qt_assert(p >= c->line && p <= c->end);
    c->pt->error_offset = (uint32_t)(p - c->line);
    return qt_fail(code, why);
}

static int
fail_key_at(struct pctx *c, const uint8_t *p, int code, const char *pre,
            const struct qt_ilp_str *key, const char *post)
{
    qt_assert(p >= c->line && p <= c->end);
    c->pt->error_offset = (uint32_t)(p - c->line);
    return qt_ilp_fail_key(code, pre, key->ptr, key->len, post);
}

/* Copy [seg, p) to the scratch output w; false if the scratch is full. */
static inline bool
scratch_put(struct pctx *c, char **w, const uint8_t *seg, const uint8_t *p)
{
    size_t n = (size_t)(p - seg);
    if (c->cap - c->used < n + 1) /* cheap early out, also for a NULL scratch */
        return false;
    if (*w == NULL)
        *w = c->scratch + c->used;
    if ((size_t)(*w - c->scratch) + n + 1 > c->cap)
        return false;
    memcpy(*w, seg, n);
    *w += n;
    return true;
}

/*
 * Scan a name at *pp up to the first unescaped byte of class `stop` (also
 * its escapable set) or the end of the line.  Zero-copy unless an escape is
 * seen; then the unescaped name is built in the scratch buffer.
 */
static int
scan_name(struct pctx *c, const uint8_t **pp, uint8_t stop, enum name_kind kind,
          struct qt_ilp_str *out)
{
    const uint8_t *p = *pp, *seg = p, *end = c->end;
    const uint8_t mask = stop | QT_CL_BSL | QT_CL_CTL | QT_CL_HI;
    char *w = NULL, *start;
    for (;;) {
        while (p < end && !(qt_ilp_cls[*p] & mask))
            p++;
        if (p == end)
            break;
        uint8_t cl = qt_ilp_cls[*p];
        if (cl & QT_CL_HI) {
            size_t n = qt_ilp_utf8_len(p, end);
            if (n == 0)
                return fail_at(c, p, QT_ESYNTAX, msg_utf8[kind]);
            p += n;
        } else if (cl & QT_CL_BSL) {
            if (p + 1 < end && (qt_ilp_cls[p[1]] & stop)) {
                if (!scratch_put(c, &w, seg, p))
                    return fail_at(c, p, QT_ENOSPACE, "ilp: scratch buffer too small");
                *w++ = (char)p[1];
                seg = p += 2;
            } else {
                p++; /* literal backslash */
            }
        } else if (cl & QT_CL_CTL) {
            return fail_at(c, p, QT_ESYNTAX, msg_ctl[kind]);
        } else {
            break; /* an unescaped stop byte */
        }
    }
    if (w == NULL) {
        out->ptr = (const char *)seg;
        out->len = (uint32_t)(p - seg);
    } else {
        start = c->scratch + c->used;
        if (!scratch_put(c, &w, seg, p))
            return fail_at(c, p, QT_ENOSPACE, "ilp: scratch buffer too small");
        out->ptr = start;
        out->len = (uint32_t)(w - start);
        c->used += out->len;
    }
    *pp = p;
    return 0;
}

/* Parse a quoted string value at *pp (on the opening quote). */
static int
parse_string(struct pctx *c, const uint8_t **pp, struct qt_ilp_field *f)
{
    const uint8_t *p = *pp + 1, *seg = p, *end = c->end;
    const uint8_t mask = QT_CL_QUOTE | QT_CL_BSL | QT_CL_HI | QT_CL_CTL;
    char *w = NULL, *start;
    for (;;) {
        while (p < end && !(qt_ilp_cls[*p] & mask))
            p++;
        if (p == end)
            return fail_key_at(c, *pp, QT_ESYNTAX, "ilp: unterminated string field '", &f->key,
                               "'");
        if (qt_ilp_cls[*p] & QT_CL_HI) {
            size_t n = qt_ilp_utf8_len(p, end);
            if (n == 0)
                return fail_key_at(c, p, QT_ESYNTAX, "ilp: invalid UTF-8 in string field '",
                                   &f->key, "'");
            p += n;
        } else if (qt_ilp_cls[*p] & QT_CL_CTL) {
            /* Tabs and the like are data; a newline never is (the spec
             * forbids it and a batch splits lines there). */
            if (*p == '\n')
                return fail_key_at(c, p, QT_ESYNTAX, "ilp: newline in string field '", &f->key,
                                   "'");
            p++;
        } else if (*p == '\\') {
            if (p + 1 < end && (p[1] == '"' || p[1] == '\\')) {
                if (!scratch_put(c, &w, seg, p))
                    return fail_at(c, p, QT_ENOSPACE, "ilp: scratch buffer too small");
                *w++ = (char)p[1];
                seg = p += 2;
            } else {
                p++; /* literal backslash */
            }
        } else {
            break; /* closing quote */
        }
    }
    f->type = QT_ILP_STRING;
    if (w == NULL) {
        f->v.s.ptr = (const char *)seg;
        f->v.s.len = (uint32_t)(p - seg);
    } else {
        start = c->scratch + c->used;
        if (!scratch_put(c, &w, seg, p))
            return fail_at(c, p, QT_ENOSPACE, "ilp: scratch buffer too small");
        f->v.s.ptr = start;
        f->v.s.len = (uint32_t)(w - start);
        c->used += f->v.s.len;
    }
    if (f->v.s.len > QT_STRING_VALUE_MAX)
        return fail_key_at(c, *pp, QT_ELIMIT, "ilp: string field '", &f->key,
                           "' exceeds 1024 bytes");
    *pp = p + 1;
    return 0;
}

/* End of an unquoted value token: the next ',' or ' ' or the line end. */
static const uint8_t *
token_end(const uint8_t *p, const uint8_t *end)
{
    while (p < end && !(qt_ilp_cls[*p] & (QT_CL_SP | QT_CL_COMMA)))
        p++;
    return p;
}

static int
parse_bool(struct pctx *c, const uint8_t **pp, struct qt_ilp_field *f)
{
    const uint8_t *p = *pp, *e = token_end(p, c->end);
    size_t n = (size_t)(e - p);
    bool ok = false, v = p[0] == 't' || p[0] == 'T';
    if (n == 1)
        ok = true; /* t T f F: the caller checked the first byte */
    else if (n == 4)
        ok = memcmp(p, "true", 4) == 0 || memcmp(p, "True", 4) == 0 || memcmp(p, "TRUE", 4) == 0;
    else if (n == 5)
        ok = memcmp(p, "false", 5) == 0 || memcmp(p, "False", 5) == 0 || memcmp(p, "FALSE", 5) == 0;
    if (!ok)
        return fail_key_at(c, p, QT_ESYNTAX, "ilp: invalid boolean field '", &f->key, "'");
    f->type = QT_ILP_BOOL;
    f->v.b = v;
    *pp = e;
    return 0;
}

/* Reason for a numeric token that failed: by its suffix, as users think. */
static int
fail_number(struct pctx *c, const uint8_t *p, const struct qt_ilp_field *f)
{
    const uint8_t *e = p + 1;
    const char *pre = "ilp: invalid float field '";
    while (e < c->end && !(qt_ilp_cls[*e] & (QT_CL_SP | QT_CL_COMMA | QT_CL_CTL)))
        e++;
    if (e[-1] == 'i')
        pre = "ilp: invalid integer field '";
    else if (e[-1] == 'u')
        pre = "ilp: invalid unsigned field '";
    return fail_key_at(c, p, QT_ESYNTAX, pre, &f->key, "'");
}

static int
parse_number(struct pctx *c, const uint8_t **pp, struct qt_ilp_field *f)
{
    const uint8_t *s = *pp, *end = c->end, *q;
    struct qt_ilp_dec d;
    int rc;
    q = qt_ilp_scan_decimal(s, end, false, &d);
    if (q == NULL)
        return fail_number(c, s, f);
    if ((size_t)(q - s) > QT_NUMBER_TEXT_MAX)
        return fail_key_at(c, s, QT_ELIMIT, "ilp: number too long in field '", &f->key, "'");
    if (q < end && (*q == 'i' || *q == 'u')) {
        bool is_uint = *q == 'u';
        if (!d.integral || (is_uint && d.neg) ||
            (q + 1 < end && !(qt_ilp_cls[q[1]] & (QT_CL_SP | QT_CL_COMMA))))
            return fail_number(c, s, f);
        rc = parse_integer(&d, s, q, is_uint, &f->v.i);
        if (rc == QT_ELIMIT)
            return fail_key_at(c, s, QT_ESYNTAX, "ilp: unsigned field '", &f->key,
                               "' exceeds INT64_MAX");
        if (rc != 0)
            return fail_key_at(c, s, QT_ESYNTAX,
                               is_uint ? "ilp: unsigned field '" : "ilp: integer field '", &f->key,
                               "' out of range");
        f->type = QT_ILP_INT;
        *pp = q + 1;
        return 0;
    }
    if (q < end && !(qt_ilp_cls[*q] & (QT_CL_SP | QT_CL_COMMA)))
        return fail_number(c, s, f);
    if (qt_ilp_dec_to_double(&d, s, (size_t)(q - s), &f->v.f) != 0)
        return fail_key_at(c, s, QT_ESYNTAX, "ilp: float field '", &f->key, "' out of range");
    f->type = QT_ILP_FLOAT;
    *pp = q;
    return 0;
}

static int
parse_value(struct pctx *c, const uint8_t **pp, struct qt_ilp_field *f)
{
    switch (**pp) {
    case '"': return parse_string(c, pp, f);
    case 't':
    case 'T':
    case 'f':
    case 'F': return parse_bool(c, pp, f);
    case '-':
    case '.':
    case '0' ... '9': return parse_number(c, pp, f);
    default: return fail_key_at(c, *pp, QT_ESYNTAX, "ilp: invalid value for field '", &f->key, "'");
    }
}

/* Tags after the measurement: { ',' key '=' value }.  Stops on ' ' or end. */
static int
parse_tags(struct pctx *c, const uint8_t **pp)
{
    const uint8_t *p = *pp, *end = c->end;
    struct qt_ilp_point *pt = c->pt;
    int rc;
    while (p < end && *p == ',') {
        if (pt->tags_count == QT_TAGS_MAX)
            return fail_at(c, p, QT_ELIMIT, "ilp: more than 64 tags");
        struct qt_ilp_tag *t = &pt->tags[pt->tags_count];
        p++;
        if ((rc = scan_name(c, &p, QT_ESC_KEY, NAME_TAGK, &t->key)) != 0)
            return rc;
        if (t->key.len == 0)
            return fail_at(c, p, QT_ESYNTAX, "ilp: missing tag key");
        if (p == end || *p != '=')
            return fail_key_at(c, p, QT_ESYNTAX, "ilp: missing '=' after tag key '", &t->key, "'");
        p++;
        if ((rc = scan_name(c, &p, QT_ESC_KEY, NAME_TAGV, &t->value)) != 0)
            return rc;
        if (p < end && *p == '=')
            return fail_key_at(c, p, QT_ESYNTAX, "ilp: unescaped '=' in value of tag '", &t->key,
                               "'");
        if (t->value.len == 0)
            return fail_key_at(c, p, QT_ESYNTAX, "ilp: empty value for tag '", &t->key, "'");
        pt->tags_count++;
    }
    *pp = p;
    return 0;
}

/* Field set: field { ',' field }, stopping on ' ' or the end of the line. */
static int
parse_fields(struct pctx *c, const uint8_t **pp)
{
    const uint8_t *p = *pp, *end = c->end;
    struct qt_ilp_point *pt = c->pt;
    int rc;
    for (;;) {
        if (pt->fields_count == QT_FIELDS_MAX)
            return fail_at(c, p, QT_ELIMIT, "ilp: more than 256 fields");
        struct qt_ilp_field *f = &pt->fields[pt->fields_count];
        if ((rc = scan_name(c, &p, QT_ESC_KEY, NAME_FIELDK, &f->key)) != 0)
            return rc;
        if (f->key.len == 0)
            return fail_at(c, p, QT_ESYNTAX, "ilp: missing field key");
        if (p == end || *p != '=')
            return fail_key_at(c, p, QT_ESYNTAX, "ilp: missing '=' after field key '", &f->key,
                               "'");
        if (++p == end)
            return fail_key_at(c, p, QT_ESYNTAX, "ilp: missing value for field '", &f->key, "'");
        if ((rc = parse_value(c, &p, f)) != 0)
            return rc;
        pt->fields_count++;
        if (p == end || *p == ' ')
            break;
        if (*p != ',')
            return fail_key_at(c, p, QT_ESYNTAX, "ilp: unexpected character after field '", &f->key,
                               "'");
        p++;
    }
    *pp = p;
    return 0;
}

static const int64_t precision_ns[] = {1, 1000, 1000000, 1000000000};

/* Optional timestamp after the field set, then optional trailing spaces. */
static int
parse_timestamp(struct pctx *c, const uint8_t *p, const struct qt_ilp_opts *opts)
{
    const uint8_t *end = c->end, *s;
    struct qt_ilp_point *pt = c->pt;
    int64_t unit = precision_ns[opts->precision], v = 0;
    bool neg;
    while (p < end && *p == ' ')
        p++;
    if (p == end) {
        pt->has_timestamp = false;
        pt->timestamp_ns = qt_ilp_floor_ts(opts->now_ns, unit);
        return 0;
    }
    s = p;
    neg = *p == '-';
    p += neg;
    if (p == end || !(qt_ilp_cls[*p] & QT_CL_DIGIT))
        return fail_at(c, s, QT_ESYNTAX, "ilp: invalid timestamp");
    for (; p < end && (qt_ilp_cls[*p] & QT_CL_DIGIT); p++) {
        /* Accumulate negatively: INT64_MIN has no positive counterpart. */
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_sub_overflow(v, *p - '0', &v))
            return fail_at(c, s, QT_ESYNTAX, "ilp: timestamp out of range");
    }
    if (p < end && *p != ' ')
        return fail_at(c, p, QT_ESYNTAX, "ilp: invalid timestamp");
    if ((!neg && __builtin_mul_overflow(v, -1, &v)) || __builtin_mul_overflow(v, unit, &v) ||
        v < QT_ILP_TS_MIN || v > QT_ILP_TS_MAX)
        return fail_at(c, s, QT_ESYNTAX, "ilp: timestamp out of range");
    while (p < end && *p == ' ')
        p++;
    if (p != end)
        return fail_at(c, p, QT_ESYNTAX, "ilp: unexpected text after timestamp");
    pt->has_timestamp = true;
    pt->timestamp_ns = v;
    return 0;
}

int
qt_ilp_parse_line(const struct qt_ilp_opts *opts, const uint8_t *line, size_t len, char *scratch,
                  size_t scratch_cap, struct qt_ilp_point *pt)
{
    qt_assert(opts != NULL && pt != NULL);
    qt_assert((line != NULL || len == 0) && (scratch != NULL || scratch_cap == 0));
    qt_assert((unsigned)opts->precision <= QT_ILP_S);
    struct pctx c = {line, line + len, scratch, scratch_cap, 0, pt};
    const uint8_t *p = line;
    int rc;
    pt->error_offset = 0;
    if (len > QT_LINE_MAX + 1 || (len == QT_LINE_MAX + 1 && line[len - 1] != '\r'))
        return fail_at(&c, line + QT_LINE_MAX, QT_ELIMIT, "ilp: line exceeds 65536 bytes");
    if (len > 0 && line[len - 1] == '\r')
        c.end--;
    while (p < c.end && *p == ' ')
        p++;
    if (p == c.end || *p == '#')
        return QT_ILP_SKIP;
    pt->tags_count = 0;
    pt->fields_count = 0;
    if ((rc = scan_name(&c, &p, QT_ESC_MEAS, NAME_MEAS, &pt->measurement)) != 0)
        return rc;
    if (pt->measurement.len == 0)
        return fail_at(&c, p, QT_ESYNTAX, "ilp: missing measurement");
    if ((rc = parse_tags(&c, &p)) != 0)
        return rc;
    while (p < c.end && *p == ' ')
        p++;
    if (p == c.end)
        return fail_at(&c, p, QT_ESYNTAX, "ilp: missing field set");
    if ((rc = parse_fields(&c, &p)) != 0)
        return rc;
    if ((rc = parse_timestamp(&c, p, opts)) != 0)
        return rc;
    if ((rc = qt_ilp_point_finish(pt, QT_PROTO_ILP)) != 0) {
        pt->error_offset = 0;
        return rc;
    }
    return 0;
}

int
qt_ilp_precision_parse(const char *s, size_t len, enum qt_ilp_precision *out)
{
    qt_assert(s != NULL || len == 0);
    qt_assert(out != NULL);
    if ((len == 2 && memcmp(s, "ns", 2) == 0) || (len == 1 && s[0] == 'n'))
        *out = QT_ILP_NS;
    else if ((len == 2 && memcmp(s, "us", 2) == 0) || (len == 1 && s[0] == 'u'))
        *out = QT_ILP_US;
    else if (len == 2 && memcmp(s, "ms", 2) == 0)
        *out = QT_ILP_MS;
    else if (len == 1 && s[0] == 's')
        *out = QT_ILP_S;
    else
        return qt_fail(QT_EINVAL, "ilp: precision must be ns, us, ms or s");
    return 0;
}

int64_t
qt_ilp_floor_ts(int64_t now_ns, int64_t unit_ns)
{
    qt_assert(unit_ns > 0);
    int64_t r = now_ns % unit_ns;
    if (r < 0)
        r += unit_ns;
    return now_ns - r;
}

/* ---- finishing a point ------------------------------------------------- */

static int
str_cmp(const struct qt_ilp_str *a, const struct qt_ilp_str *b)
{
    uint32_t n = a->len < b->len ? a->len : b->len;
    int r = n > 0 ? memcmp(a->ptr, b->ptr, n) : 0;
    return r != 0 ? r : (a->len > b->len) - (a->len < b->len);
}

static bool
str_eq(const struct qt_ilp_str *a, const struct qt_ilp_str *b)
{
    return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

/* Canonical (escaped) length of a name. */
static uint32_t
canon_len(const struct qt_ilp_str *s, uint8_t esc)
{
    uint32_t n = s->len;
    for (uint32_t i = 0; i < s->len; i++)
        n += (qt_ilp_cls[(uint8_t)s->ptr[i]] & esc) != 0;
    return n;
}

static bool
ends_with_backslash(const struct qt_ilp_str *s)
{
    return s->len > 0 && s->ptr[s->len - 1] == '\\';
}

/* Insertion sort (stable, fine for <= QT_TAGS_MAX) and duplicate check. */
static int
sort_tags(struct qt_ilp_point *pt, const char *dup_msg)
{
    for (uint32_t i = 1; i < pt->tags_count; i++) {
        struct qt_ilp_tag t = pt->tags[i];
        uint32_t j = i;
        while (j > 0 && str_cmp(&pt->tags[j - 1].key, &t.key) > 0) {
            pt->tags[j] = pt->tags[j - 1];
            j--;
        }
        pt->tags[j] = t;
    }
    for (uint32_t i = 1; i < pt->tags_count; i++)
        if (str_eq(&pt->tags[i - 1].key, &pt->tags[i].key))
            return qt_ilp_fail_key(QT_ESYNTAX, dup_msg, pt->tags[i].key.ptr, pt->tags[i].key.len,
                                   "'");
    return 0;
}

static uint32_t
key_hash(const struct qt_ilp_str *k)
{
    uint64_t a = 0, b = 0;
    size_t n = k->len < 8 ? k->len : 8;
    memcpy(&a, k->ptr, n);
    memcpy(&b, k->ptr + (k->len - n), n);
    uint64_t h = (a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full) ^ k->len;
    return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

/* Drop every field whose key occurs again later (last value wins). */
static void
dedupe_fields(struct qt_ilp_point *pt)
{
    uint32_t h[QT_FIELDS_MAX];
    bool dup = false;
    uint32_t n = pt->fields_count, w = 0;
    qt_assert(n <= QT_FIELDS_MAX);
    for (uint32_t i = 0; i < n; i++)
        h[i] = key_hash(&pt->fields[i].key);
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = 0; j < i; j++)
            if (h[j] == h[i] && str_eq(&pt->fields[j].key, &pt->fields[i].key)) {
                h[j] = 0;
                pt->fields[j].key.len = 0; /* mark dropped */
                dup = true;
            }
    if (!dup)
        return;
    for (uint32_t i = 0; i < n; i++)
        if (pt->fields[i].key.len != 0)
            pt->fields[w++] = pt->fields[i];
    pt->fields_count = w;
}

static const char *const msg_hash[] = {"ilp: measurement starts with '#'",
                                       "graphite: measurement starts with '#'"};
static const char *const msg_meas_bsl[] = {"ilp: measurement ends with a backslash",
                                           "graphite: measurement ends with a backslash"};
static const char *const msg_dup[] = {"ilp: duplicate tag key '", "graphite: duplicate tag key '"};
static const char *const msg_tag_bsl[] = {"ilp: tag '", "graphite: tag '"};
static const char *const msg_field_bsl[] = {"ilp: field key '", "graphite: field key '"};
static const char *const msg_key[] = {"ilp: series key exceeds 4096 bytes",
                                      "graphite: series key exceeds 4096 bytes"};

/* Key length of the tags and the longest field key; checks trailing
 * backslashes (a name ending in one cannot be written back). */
static int
finish_lengths(struct qt_ilp_point *pt, enum qt_ilp_proto proto, uint32_t *key, uint32_t *fmax)
{
    for (uint32_t i = 0; i < pt->tags_count; i++) {
        const struct qt_ilp_tag *t = &pt->tags[i];
        if (ends_with_backslash(&t->key) || ends_with_backslash(&t->value))
            return qt_ilp_fail_key(QT_ESYNTAX, msg_tag_bsl[proto], t->key.ptr, t->key.len,
                                   "' ends with a backslash");
        *key += 2 + canon_len(&t->key, QT_ESC_KEY) + canon_len(&t->value, QT_ESC_KEY);
    }
    for (uint32_t i = 0; i < pt->fields_count; i++) {
        const struct qt_ilp_str *k = &pt->fields[i].key;
        uint32_t n = canon_len(k, QT_ESC_KEY);
        if (ends_with_backslash(k))
            return qt_ilp_fail_key(QT_ESYNTAX, msg_field_bsl[proto], k->ptr, k->len,
                                   "' ends with a backslash");
        *fmax = n > *fmax ? n : *fmax;
    }
    return 0;
}

int
qt_ilp_point_finish(struct qt_ilp_point *pt, enum qt_ilp_proto proto)
{
    uint32_t key, field_max = 0;
    int rc;
    qt_assert(pt->measurement.len > 0 && pt->fields_count > 0);
    qt_assert(pt->tags_count <= QT_TAGS_MAX && pt->fields_count <= QT_FIELDS_MAX);
    if (pt->measurement.ptr[0] == '#')
        return qt_fail(QT_ESYNTAX, msg_hash[proto]);
    if (ends_with_backslash(&pt->measurement))
        return qt_fail(QT_ESYNTAX, msg_meas_bsl[proto]);
    if ((rc = sort_tags(pt, msg_dup[proto])) != 0)
        return rc;
    dedupe_fields(pt);
    key = canon_len(&pt->measurement, QT_ESC_MEAS);
    if ((rc = finish_lengths(pt, proto, &key, &field_max)) != 0)
        return rc;
    if ((uint64_t)key + 1 + field_max > QT_SERIES_KEY_MAX)
        return qt_fail(QT_ELIMIT, msg_key[proto]);
    pt->key_len = key;
    return 0;
}

/* ---- canonical key and formatter -------------------------------------- */

/* Write s with every byte of class esc escaped; returns the new end. */
static char *
put_escaped(char *w, const struct qt_ilp_str *s, uint8_t esc)
{
    const char *p = s->ptr, *seg = p, *end = p + s->len;
    for (; p < end; p++) {
        if (qt_ilp_cls[(uint8_t)*p] & esc) {
            memcpy(w, seg, (size_t)(p - seg));
            w += p - seg;
            *w++ = '\\';
            seg = p;
        }
    }
    memcpy(w, seg, (size_t)(end - seg));
    return w + (end - seg);
}

static char *
put_group_key(char *w, const struct qt_ilp_point *pt)
{
    w = put_escaped(w, &pt->measurement, QT_ESC_MEAS);
    for (uint32_t i = 0; i < pt->tags_count; i++) {
        *w++ = ',';
        w = put_escaped(w, &pt->tags[i].key, QT_ESC_KEY);
        *w++ = '=';
        w = put_escaped(w, &pt->tags[i].value, QT_ESC_KEY);
    }
    return w;
}

int
qt_ilp_group_key(const struct qt_ilp_point *pt, char *out, size_t cap, size_t *len)
{
    qt_assert(pt != NULL && len != NULL);
    qt_assert(out != NULL || cap == 0);
    if (cap < pt->key_len)
        return qt_fail(QT_ENOSPACE, "ilp: group key buffer too small");
    char *w = put_group_key(out, pt);
    qt_assert((size_t)(w - out) == pt->key_len);
    *len = (size_t)(w - out);
    return 0;
}

/* Bytes of the longest value text: "-9223372036854775808i", a %.17g double. */
#define NUM_TEXT_MAX 32u

size_t
qt_ilp_format_bound(const struct qt_ilp_point *pt)
{
    qt_assert(pt != NULL);
    qt_assert(pt->tags_count <= QT_TAGS_MAX && pt->fields_count <= QT_FIELDS_MAX);
    size_t n = 2 * (size_t)pt->measurement.len + 1 + NUM_TEXT_MAX;
    for (uint32_t i = 0; i < pt->tags_count; i++)
        n += 2 + 2 * ((size_t)pt->tags[i].key.len + pt->tags[i].value.len);
    for (uint32_t i = 0; i < pt->fields_count; i++) {
        const struct qt_ilp_field *f = &pt->fields[i];
        n += 2 + 2 * (size_t)f->key.len + NUM_TEXT_MAX;
        if (f->type == QT_ILP_STRING)
            n += 2 + 2 * (size_t)f->v.s.len;
    }
    return n;
}

/* A name the parser could have produced: non-empty, valid UTF-8, no
 * control characters, not ending in a backslash. */
static bool
name_ok(const struct qt_ilp_str *s)
{
    const uint8_t *p = (const uint8_t *)s->ptr, *end = p + s->len;
    if (s->len == 0 || ends_with_backslash(s))
        return false;
    while (p < end) {
        uint8_t cl = qt_ilp_cls[*p];
        size_t n = (cl & QT_CL_HI) ? qt_ilp_utf8_len(p, end) : !(cl & QT_CL_CTL);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

static bool
string_ok(const struct qt_ilp_str *s)
{
    const uint8_t *p = (const uint8_t *)s->ptr, *end = p + s->len;
    if (s->len > QT_STRING_VALUE_MAX)
        return false;
    while (p < end) {
        size_t n = *p >= 0x80 ? qt_ilp_utf8_len(p, end) : *p != '\n';
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

/* Every property the parser guarantees, checked for an arbitrary point. */
static int
format_check(const struct qt_ilp_point *pt)
{
    if (!name_ok(&pt->measurement) || pt->measurement.ptr[0] == '#')
        return qt_fail(QT_EINVAL, "ilp: measurement not representable");
    if (pt->fields_count == 0 || pt->fields_count > QT_FIELDS_MAX || pt->tags_count > QT_TAGS_MAX)
        return qt_fail(QT_EINVAL, "ilp: bad tag or field count");
    for (uint32_t i = 0; i < pt->tags_count; i++) {
        if (!name_ok(&pt->tags[i].key) || !name_ok(&pt->tags[i].value))
            return qt_fail(QT_EINVAL, "ilp: tag not representable");
        if (i > 0 && str_cmp(&pt->tags[i - 1].key, &pt->tags[i].key) >= 0)
            return qt_fail(QT_EINVAL, "ilp: tags not sorted or duplicated");
    }
    for (uint32_t i = 0; i < pt->fields_count; i++) {
        const struct qt_ilp_field *f = &pt->fields[i];
        if (!name_ok(&f->key))
            return qt_fail(QT_EINVAL, "ilp: field key not representable");
        if (f->type == QT_ILP_FLOAT && !isfinite(f->v.f))
            return qt_fail(QT_EINVAL, "ilp: float field is not finite");
        if (f->type == QT_ILP_STRING && !string_ok(&f->v.s))
            return qt_fail(QT_EINVAL, "ilp: string field not representable");
        if (f->type < QT_ILP_FLOAT || f->type > QT_ILP_STRING)
            return qt_fail(QT_EINVAL, "ilp: bad field type");
    }
    if (pt->timestamp_ns < QT_ILP_TS_MIN || pt->timestamp_ns > QT_ILP_TS_MAX)
        return qt_fail(QT_EINVAL, "ilp: timestamp out of range");
    return 0;
}

/* Decimal text of v at w; returns the new end. */
static char *
put_i64(char *w, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *w++ = '-';
    while (n > 0)
        *w++ = tmp[--n];
    return w;
}

/* Shortest of %.15g, %.16g, %.17g that parses back to the same bits. */
static char *
put_double(char *w, double v)
{
    char buf[NUM_TEXT_MAX + 8];
    int n = 0;
    locale_t loc = get_c_locale(), old = loc != (locale_t)0 ? uselocale(loc) : (locale_t)0;
    qt_assert(isfinite(v));
    for (int prec = 15; prec <= 17; prec++) {
        struct qt_ilp_dec d;
        double back;
        n = snprintf(buf, sizeof(buf), "%.*g", prec, v);
        qt_assert(n > 0 && (size_t)n < sizeof(buf));
        const uint8_t *e =
            qt_ilp_scan_decimal((const uint8_t *)buf, (const uint8_t *)buf + n, false, &d);
        if (e == (const uint8_t *)buf + n &&
            qt_ilp_dec_to_double(&d, (const uint8_t *)buf, (size_t)n, &back) == 0 &&
            qt_f64_bits(back) == qt_f64_bits(v))
            break;
        qt_assert(prec < 17); /* %.17g always round-trips */
    }
    if (loc != (locale_t)0)
        uselocale(old);
    memcpy(w, buf, (size_t)n);
    return w + n;
}

static char *
put_string(char *w, const struct qt_ilp_str *s)
{
    *w++ = '"';
    for (uint32_t i = 0; i < s->len; i++) {
        if (s->ptr[i] == '"' || s->ptr[i] == '\\')
            *w++ = '\\';
        *w++ = s->ptr[i];
    }
    *w++ = '"';
    return w;
}

int
qt_ilp_format_line(const struct qt_ilp_point *pt, char *out, size_t cap, size_t *len)
{
    qt_assert(pt != NULL && len != NULL);
    qt_assert(out != NULL || cap == 0);
    int rc = format_check(pt);
    if (rc != 0)
        return rc;
    if (cap < qt_ilp_format_bound(pt))
        return qt_fail(QT_ENOSPACE, "ilp: format buffer too small");
    char *w = put_group_key(out, pt);
    for (uint32_t i = 0; i < pt->fields_count; i++) {
        const struct qt_ilp_field *f = &pt->fields[i];
        *w++ = i == 0 ? ' ' : ',';
        w = put_escaped(w, &f->key, QT_ESC_KEY);
        *w++ = '=';
        switch (f->type) {
        case QT_ILP_FLOAT: w = put_double(w, f->v.f); break;
        case QT_ILP_INT:
            w = put_i64(w, f->v.i);
            *w++ = 'i';
            break;
        case QT_ILP_BOOL:
            memcpy(w, f->v.b ? "true" : "false", 5);
            w += f->v.b ? 4 : 5;
            break;
        case QT_ILP_STRING: w = put_string(w, &f->v.s); break;
        }
    }
    *w++ = ' ';
    w = put_i64(w, pt->timestamp_ns);
    qt_assert((size_t)(w - out) <= cap);
    *len = (size_t)(w - out);
    return 0;
}

/* ---- batches ----------------------------------------------------------- */

static int
ilp_parse_fn(const void *arg, const struct qt_ilp_opts *opts, const uint8_t *line, size_t len,
             char *scratch, size_t scratch_cap, struct qt_ilp_point *pt)
{
    (void)arg;
    return qt_ilp_parse_line(opts, line, len, scratch, scratch_cap, pt);
}

void
qt_ilp_batch_init(struct qt_ilp_batch *b, const struct qt_ilp_opts *opts,
                  struct qt_ilp_point *point, char *scratch, size_t scratch_cap,
                  qt_ilp_point_fn on_point, qt_ilp_error_fn on_error, void *ctx)
{
    qt_assert(b != NULL && opts != NULL && point != NULL && on_point != NULL);
    qt_assert(scratch != NULL && scratch_cap >= QT_ILP_SCRATCH_MAX);
    *b = (struct qt_ilp_batch){.opts = *opts,
                               .parse = ilp_parse_fn,
                               .on_point = on_point,
                               .on_error = on_error,
                               .ctx = ctx,
                               .point = point,
                               .scratch = scratch,
                               .scratch_cap = scratch_cap,
                               .line_no = 1};
}

static int
report_error(struct qt_ilp_batch *b, const uint8_t *line, size_t len, uint64_t offset, int code,
             uint32_t column)
{
    b->lines_bad++;
    if (b->on_error == NULL)
        return 0;
    struct qt_ilp_line_error e = {.line_no = b->line_no,
                                  .offset = offset,
                                  .column = column,
                                  .code = code,
                                  .reason = qt_err_detail(),
                                  .line = line,
                                  .line_len = len < QT_LINE_MAX ? len : QT_LINE_MAX};
    return b->on_error(b->ctx, &e);
}

/* One complete line.  *retry is set when on_point failed (line not used). */
static int
batch_line(struct qt_ilp_batch *b, const uint8_t *line, size_t len, uint64_t offset, bool *retry)
{
    int rc = b->parse(b->parse_arg, &b->opts, line, len, b->scratch, b->scratch_cap, b->point);
    if (rc == QT_ILP_SKIP) {
        b->lines_skipped++;
        return 0;
    }
    if (rc < 0)
        return report_error(b, line, len, offset, rc, b->point->error_offset + 1);
    qt_assert(rc == 0);
    rc = b->on_point(b->ctx, b->point);
    if (rc != 0) {
        *retry = true;
        return rc;
    }
    b->points++;
    return 0;
}

/* Drop the tail of an over-long line up to and including its newline. */
static size_t
batch_discard(struct qt_ilp_batch *b, const uint8_t *buf, size_t len, bool final)
{
    const uint8_t *nl = memchr(buf, '\n', len);
    if (nl == NULL && !final)
        return len;
    b->discarding = false;
    b->line_no++;
    return nl != NULL ? (size_t)(nl - buf) + 1 : len;
}

int
qt_ilp_batch_feed(struct qt_ilp_batch *b, const uint8_t *buf, size_t len, bool final,
                  size_t *consumed)
{
    qt_assert(b != NULL && consumed != NULL && b->parse != NULL);
    qt_assert(buf != NULL || len == 0);
    size_t pos = b->discarding ? batch_discard(b, buf, len, final) : 0;
    int rc = 0;
    while (pos < len && rc == 0) {
        const uint8_t *s = buf + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - s) : len - pos;
        bool retry = false;
        if (nl == NULL && !final) {
            if (n > QT_LINE_MAX + 1) { /* cannot end well: report it now */
                qt_fail(QT_ELIMIT, "ilp: line exceeds 65536 bytes");
                rc = report_error(b, s, n, b->offset + pos, QT_ELIMIT, QT_LINE_MAX + 1);
                b->discarding = true;
                pos = len;
            }
            break;
        }
        rc = batch_line(b, s, n, b->offset + pos, &retry);
        if (retry)
            break;
        pos += n + (nl != NULL);
        b->line_no++;
    }
    b->offset += pos;
    *consumed = pos;
    return rc;
}
