/*
 * qprint.c -- query printer and error renderers (see qprint.h).
 *
 * Everything writes through `struct out`, which counts the full length and
 * copies only what fits, so every function has snprintf semantics and none
 * can overrun its buffer.  Numbers are printed in the "C" locale.
 */
#include "qprint.h"

#include "format/qt_assert.h"
#include "qlex.h"
#include "qtime.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct out {
    char *buf;
    size_t cap; /* bytes available including the NUL */
    size_t len; /* bytes the full text needs (excluding the NUL) */
};

static void
out_bytes(struct out *o, const char *s, size_t n)
{
    if (o->cap > 0 && o->len < o->cap - 1) {
        size_t room = o->cap - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void
out_str(struct out *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}

static void
out_char(struct out *o, char c)
{
    out_bytes(o, &c, 1);
}

static size_t
out_finish(struct out *o)
{
    if (o->cap > 0)
        o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
    return o->len;
}

static struct out
out_init(char *buf, size_t cap)
{
    qt_assert(buf != NULL || cap == 0);
    struct out o = {buf, cap, 0};
    return o;
}

/* ---- numbers, times, names ------------------------------------------------ */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void
c_locale_init(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

size_t
qt_qry_number_format(double v, char *buf, size_t cap)
{
    qt_assert(isfinite(v));
    pthread_once(&c_locale_once, c_locale_init);
    locale_t old = c_locale != (locale_t)0 ? uselocale(c_locale) : (locale_t)0;
    char tmp[40];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* prec significant digits suffice.  Prefer plain notation (150, not
     * 1.5e+02) while the decimal exponent is moderate: %g switches to
     * plain when the precision exceeds the exponent. */
    const char *e = strchr(tmp, 'e');
    int exp10 = e != NULL ? atoi(e + 1) : 0;
    if (exp10 >= -4 && exp10 < 17 && exp10 + 1 > prec)
        prec = exp10 + 1;
    snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
    qt_assert(strtod(tmp, NULL) == v);
    if (old != (locale_t)0)
        uselocale(old);
    struct out o = out_init(buf, cap);
    out_str(&o, tmp);
    return out_finish(&o);
}

static void
out_number(struct out *o, double v)
{
    char tmp[40];
    qt_qry_number_format(v, tmp, sizeof(tmp));
    out_str(o, tmp);
}

static void
out_duration(struct out *o, int64_t ns)
{
    char tmp[QT_TIME_TEXT_MAX];
    qt_time_format_duration(ns, tmp, sizeof(tmp));
    out_str(o, tmp);
}

static void
out_time(struct out *o, const struct qt_qry_time *t)
{
    if (!t->relative) {
        char tmp[QT_TIME_TEXT_MAX];
        qt_time_format_rfc3339(t->ns, tmp, sizeof(tmp));
        out_str(o, tmp);
        return;
    }
    out_str(o, "now");
    qt_assert(t->offset_ns > INT64_MIN); /* parsed as -duration, duration <= INT64_MAX */
    if (t->offset_ns != 0) {
        out_char(o, t->offset_ns < 0 ? '-' : '+');
        out_duration(o, t->offset_ns < 0 ? -t->offset_ns : t->offset_ns);
    }
}

/* A quoted string: \" and \\ escaped, everything else verbatim. */
static void
out_quoted(struct out *o, const struct qt_qry_str *s)
{
    out_char(o, '"');
    for (uint32_t i = 0; i < s->len; i++) {
        if (s->p[i] == '"' || s->p[i] == '\\')
            out_char(o, '\\');
        out_char(o, s->p[i]);
    }
    out_char(o, '"');
}

/* A name: bare when it is an identifier, quoted otherwise. */
static void
out_name(struct out *o, const struct qt_qry_str *s)
{
    if (qt_lex_is_ident(s->p, s->len))
        out_bytes(o, s->p, s->len);
    else
        out_quoted(o, s);
}

/* ---- queries -------------------------------------------------------------- */

static void
out_matcher(struct out *o, const struct qt_qry_matcher *m)
{
    static const char *const ops[] = {NULL, "=", "!=", "=~", "!~", " in "}; /* ORDER MATCHOPS */
    qt_assert(m->op >= QT_QRY_MATCH_EQ && m->op <= QT_QRY_MATCH_IN);
    out_name(o, &m->key);
    out_str(o, ops[m->op]);
    if (m->op != QT_QRY_MATCH_IN) {
        out_quoted(o, &m->value);
        return;
    }
    qt_assert(m->values_count >= 2);
    out_char(o, '(');
    for (uint32_t i = 0; i < m->values_count; i++) {
        if (i > 0)
            out_str(o, ", ");
        out_quoted(o, &m->values[i]);
    }
    out_char(o, ')');
}

static void
out_matchers(struct out *o, const struct qt_qry_selector *sel)
{
    if (sel->matchers_count == 0)
        return;
    out_char(o, '{');
    for (uint32_t i = 0; i < sel->matchers_count; i++) {
        if (i > 0)
            out_str(o, ", ");
        out_matcher(o, &sel->matchers[i]);
    }
    out_char(o, '}');
}

static void
out_selector(struct out *o, const struct qt_qry_selector *sel)
{
    if (sel->measurement.len > 0) {
        out_name(o, &sel->measurement);
        if (sel->field.len > 0) {
            out_char(o, '.');
            out_name(o, &sel->field);
        }
    }
    out_matchers(o, sel);
}

static void
out_agg(struct out *o, const struct qt_qry_stage_agg *agg)
{
    for (uint32_t i = 0; i < agg->fns_count; i++) {
        char col[64];
        qt_qry_agg_column(&agg->fns[i], col, sizeof(col));
        if (i > 0)
            out_str(o, ", ");
        out_str(o, col);
    }
    if (agg->bucket_ns == 0 && agg->tags_count == 0)
        return;
    out_str(o, " by ");
    if (agg->bucket_ns != 0) {
        out_duration(o, agg->bucket_ns);
        if (agg->tz_name.len > 0) {
            out_str(o, " tz ");
            out_quoted(o, &agg->tz_name);
        }
    }
    for (uint32_t i = 0; i < agg->tags_count; i++) {
        if (i > 0 || agg->bucket_ns != 0)
            out_str(o, ", ");
        out_name(o, &agg->tags[i]);
    }
}

static void
out_stage(struct out *o, const struct qt_qry_stage *st)
{
    static const char *const fills[] = {NULL, "null", "prev", "linear"};
    switch (st->kind) {
    case QT_QRY_STAGE_WHERE:
    case QT_QRY_STAGE_EPISODES: {
        const struct qt_qry_cond *c =
            st->kind == QT_QRY_STAGE_WHERE ? &st->u.where : &st->u.episodes.cond;
        out_str(o, st->kind == QT_QRY_STAGE_WHERE ? "where value " : "episodes value ");
        out_str(o, qt_qry_cmp_name(c->op));
        out_char(o, ' ');
        out_number(o, c->value);
        if (st->kind == QT_QRY_STAGE_EPISODES && st->u.episodes.min_ns != 0) {
            out_str(o, " for ");
            out_duration(o, st->u.episodes.min_ns);
        }
        break;
    }
    case QT_QRY_STAGE_RATE: out_str(o, "rate"); break;
    case QT_QRY_STAGE_DELTA: out_str(o, "delta"); break;
    case QT_QRY_STAGE_LAST: out_str(o, "last"); break;
    case QT_QRY_STAGE_AGG: out_agg(o, &st->u.agg); break;
    case QT_QRY_STAGE_FILL:
        out_str(o, "fill(");
        if (st->u.fill.kind == QT_QRY_FILL_VALUE)
            out_number(o, st->u.fill.value);
        else
            out_str(o, fills[st->u.fill.kind]);
        out_char(o, ')');
        break;
    case QT_QRY_STAGE_GAPS:
        out_str(o, st->u.gaps.inclusive ? "gaps >= " : "gaps > ");
        out_duration(o, st->u.gaps.min_ns);
        break;
    case QT_QRY_STAGE_LIMIT: {
        char tmp[24];
        snprintf(tmp, sizeof(tmp), "limit %llu", (unsigned long long)st->u.limit);
        out_str(o, tmp);
        break;
    }
    }
}

/* The catalog head: keyword and target. */
static void
out_catalog(struct out *o, const struct qt_qry *q)
{
    static const char *const words[] = {NULL,   NULL,     "measurements", "fields",
                                        "tags", "values", "series"}; /* enum qt_qry_kind */
    qt_assert(q->kind >= QT_QRY_MEASUREMENTS && q->kind <= QT_QRY_SERIES);
    out_str(o, words[q->kind]);
    if (q->kind == QT_QRY_VALUES) {
        out_char(o, ' ');
        out_name(o, &q->tag_key);
    }
    bool target = q->sel.measurement.len > 0 || q->sel.matchers_count > 0;
    if (target)
        out_str(o, q->kind == QT_QRY_VALUES ? " in " : " ");
    out_selector(o, &q->sel);
}

size_t
qt_qry_print(const struct qt_qry *q, char *buf, size_t cap)
{
    qt_assert(q != NULL);
    qt_assert(q->stages_count <= QT_QUERY_STAGES_MAX);
    struct out o = out_init(buf, cap);
    if (q->kind == QT_QRY_DATA) {
        out_selector(&o, &q->sel);
        if (q->range.bounded) {
            out_str(&o, " [");
            out_time(&o, &q->range.start);
            out_str(&o, ", ");
            out_time(&o, &q->range.end);
            out_char(&o, ')');
        }
    } else {
        out_catalog(&o, q);
    }
    for (uint32_t i = 0; i < q->stages_count; i++) {
        out_str(&o, " | ");
        out_stage(&o, &q->stages[i]);
    }
    return out_finish(&o);
}

size_t
qt_qry_agg_column(const struct qt_qry_agg *a, char *buf, size_t cap)
{
    struct out o = out_init(buf, cap);
    out_str(&o, qt_qry_agg_fn_name(a->fn));
    if (a->fn == QT_QRY_AGG_PERCENTILE) {
        out_char(&o, '(');
        out_number(&o, a->p);
        out_char(&o, ')');
    }
    return out_finish(&o);
}

/* ---- errors --------------------------------------------------------------- */

/* Decode the UTF-8 character at s[0..n): its length, or 0 if invalid. */
static size_t
utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len = c < 0x80             ? 1
                 : (c & 0xe0) == 0xc0 ? 2
                 : (c & 0xf0) == 0xe0 ? 3
                 : (c & 0xf8) == 0xf0 ? 4
                                      : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t v = len == 1 ? c : c & (0x7fu >> len);
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[k] & 0x3fu);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* Terminal columns of code point cp: 2 for East Asian wide characters. */
static unsigned
char_columns(uint32_t cp)
{
    static const uint32_t wide[][2] = {
        {0x1100, 0x115f},   {0x2e80, 0x303e},   {0x3041, 0x33ff}, {0x3400, 0x4dbf},
        {0x4e00, 0x9fff},   {0xa000, 0xa4cf},   {0xac00, 0xd7a3}, {0xf900, 0xfaff},
        {0xfe30, 0xfe4f},   {0xff00, 0xff60},   {0xffe0, 0xffe6}, {0x1f300, 0x1f64f},
        {0x1f900, 0x1f9ff}, {0x20000, 0x3fffd},
    };
    for (size_t i = 0; i < sizeof(wide) / sizeof(wide[0]); i++)
        if (cp >= wide[i][0] && cp <= wide[i][1])
            return 2;
    return 1;
}

/* Show text[ws..we) on one line; returns the column of byte `pos` (the
 * end column if pos >= we). */
static size_t
out_line(struct out *o, const char *text, size_t ws, size_t we, size_t pos)
{
    size_t col = 0, caret = SIZE_MAX;
    for (size_t i = ws; i < we;) {
        uint32_t cp = 0;
        size_t n = utf8_char((const unsigned char *)text + i, we - i, &cp);
        if (caret == SIZE_MAX && pos < i + (n > 0 ? n : 1))
            caret = col;
        if (n > 0 && cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp < 0xa0)) {
            out_bytes(o, text + i, n);
            col += char_columns(cp);
        } else {
            out_char(o, text[i] == '\t' ? ' ' : '?');
            col++;
            n = n > 0 ? n : 1;
        }
        i += n;
    }
    return caret == SIZE_MAX ? col : caret;
}

/* Bytes of context shown before and after the fault on a long line. */
#define CARET_BEFORE 60u
#define CARET_AFTER  40u

size_t
qt_qry_error_render_caret(const struct qt_qry_error *err, const char *text, size_t len, char *buf,
                          size_t cap)
{
    qt_assert(err != NULL);
    struct out o = out_init(buf, cap);
    out_str(&o, "error: ");
    out_bytes(&o, err->message, strnlen(err->message, sizeof(err->message)));
    if (err->position < 0 || text == NULL)
        return out_finish(&o);
    size_t pos = (size_t)err->position < len ? (size_t)err->position : len;
    size_t ls = pos, le = pos, line = 1;
    while (ls > 0 && text[ls - 1] != '\n')
        ls--;
    while (le < len && text[le] != '\n')
        le++;
    for (size_t i = 0; i < ls; i++)
        line += text[i] == '\n';
    if (memchr(text, '\n', len) != NULL) {
        char tmp[32];
        snprintf(tmp, sizeof(tmp), " (line %zu)", line);
        out_str(&o, tmp);
    }
    size_t ws = pos - ls > CARET_BEFORE ? pos - CARET_BEFORE : ls;
    size_t we = le - pos > CARET_AFTER ? pos + CARET_AFTER : le;
    while (ws < pos && ((unsigned char)text[ws] & 0xc0) == 0x80)
        ws++;
    while (we > pos && we < le && ((unsigned char)text[we] & 0xc0) == 0x80)
        we--;
    out_str(&o, "\n  ");
    size_t col = ws > ls ? 3 : 0;
    if (ws > ls)
        out_str(&o, "...");
    col += out_line(&o, text, ws, we, pos);
    if (we < le)
        out_str(&o, "...");
    out_str(&o, "\n  ");
    for (size_t i = 0; i < col; i++)
        out_char(&o, ' ');
    out_char(&o, '^');
    return out_finish(&o);
}

size_t
qt_qry_error_json(const struct qt_qry_error *err, char *buf, size_t cap)
{
    qt_assert(err != NULL);
    struct out o = out_init(buf, cap);
    out_str(&o, "{\"error\": \"");
    size_t n = strnlen(err->message, sizeof(err->message));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)err->message[i];
        char tmp[8];
        if (c == '"' || c == '\\') {
            out_char(&o, '\\');
            out_char(&o, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            out_str(&o, tmp);
        } else if (c >= 0x80) {
            out_str(&o, "\\ufffd");
        } else {
            out_char(&o, (char)c);
        }
    }
    out_str(&o, "\", \"position\": ");
    if (err->position >= 0) {
        char tmp[16];
        snprintf(tmp, sizeof(tmp), "%d", (int)err->position);
        out_str(&o, tmp);
    } else {
        out_str(&o, "null");
    }
    out_char(&o, '}');
    return out_finish(&o);
}
