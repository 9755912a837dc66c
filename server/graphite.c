/*
 * graphite.c -- Graphite plaintext lines to qt_ilp_point (see graphite.h).
 *
 * Line grammar (carbon splits on whitespace; so do we):
 *   line  = { ws } ( path { ';' key '=' value } ws+ number [ ws+ time ] { ws } | '#' ... | empty )
 *   ws    = ' ' | '\t'
 * A path is one or more non-empty components separated by '.'; it ends at
 * whitespace or ';'.  Components, tag keys and tag values are valid UTF-8
 * without control characters.  Mapping to measurement/tags/field: default
 * or the first matching template (design/ilp.md "Graphite").
 *
 * Invariants:
 *  - reads are bounded by the line end; the first QT_GRAPHITE_COMP_MAX
 *    components' spans are recorded, later ones only counted;
 *  - names are zero-copy slices of the line when their components are
 *    consecutive, else joined with '.' into the caller's scratch;
 *  - the point passes qt_ilp_point_finish(), so it has a canonical key and
 *    formats as line protocol.
 */
#include "server/graphite.h"

#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "server/ilp_int.h"

#include <math.h>
#include <string.h>

/* Components whose spans are kept: enough for the default mapping (a
 * measurement, a field and QT_TAGS_MAX tags) and for any template. */
#define COMP_MAX (QT_TAGS_MAX + 2u)
static_assert(COMP_MAX >= QT_GRAPHITE_PARTS_MAX, "templates index recorded components");
static_assert(QT_TAGS_MAX == 64u, "update the p-name table and 'more than 64 tags'");
static_assert(QT_GRAPHITE_TEMPLATE_MAX <= UINT16_MAX, "spans are 16-bit");

/* Default tag names for the middle path components. */
static const char *const pnames[QT_TAGS_MAX] = {
    "p1",  "p2",  "p3",  "p4",  "p5",  "p6",  "p7",  "p8",  "p9",  "p10", "p11", "p12", "p13",
    "p14", "p15", "p16", "p17", "p18", "p19", "p20", "p21", "p22", "p23", "p24", "p25", "p26",
    "p27", "p28", "p29", "p30", "p31", "p32", "p33", "p34", "p35", "p36", "p37", "p38", "p39",
    "p40", "p41", "p42", "p43", "p44", "p45", "p46", "p47", "p48", "p49", "p50", "p51", "p52",
    "p53", "p54", "p55", "p56", "p57", "p58", "p59", "p60", "p61", "p62", "p63", "p64"};

/* Byte classes for paths and tags: bytes that end the plain-run loop. */
#define G_DOT  0x01u /* '.' */
#define G_WS   0x02u /* ' ' '\t' */
#define G_SEMI 0x04u /* ';' */
#define G_EQ   0x08u /* '=' */
#define G_CTL  0x10u /* other control characters */
#define G_HI   0x20u /* UTF-8 lead or continuation */

static const uint8_t gcls[256] = {
    [0x00 ... 0x08] = G_CTL, ['\t'] = G_WS,          [0x0a ... 0x1f] = G_CTL,
    [0x7f] = G_CTL,          [0x80 ... 0xff] = G_HI, [' '] = G_WS,
    ['.'] = G_DOT,           [';'] = G_SEMI,         ['='] = G_EQ,
};

struct gctx {
    const uint8_t *line;
    const uint8_t *end;
    char *scratch;
    size_t cap;
    size_t used;
    struct qt_ilp_point *pt;
    const uint8_t *path; /* the path, without tags */
    uint32_t path_len;
    uint32_t n; /* components in the path */
    uint32_t off[COMP_MAX];
    uint32_t len[COMP_MAX];
};

static int
gfail(struct gctx *c, const uint8_t *p, int code, const char *why)
{
    qt_assert(p >= c->line && p <= c->end);
    c->pt->error_offset = (uint32_t)(p - c->line);
    return qt_fail(code, why);
}

/* Advance over plain bytes and valid UTF-8 until a byte of class `stop`
 * (or the end).  Control characters and bad UTF-8 fail with `what`. */
static int
scan_run(struct gctx *c, const uint8_t **pp, uint8_t stop, const char *bad_utf8,
         const char *bad_ctl)
{
    const uint8_t *p = *pp, *end = c->end;
    const uint8_t mask = stop | G_CTL | G_HI;
    for (;;) {
        while (p < end && !(gcls[*p] & mask))
            p++;
        if (p == end || (gcls[*p] & stop))
            break;
        if (gcls[*p] & G_CTL)
            return gfail(c, p, QT_ESYNTAX, bad_ctl);
        size_t n = qt_ilp_utf8_len(p, end);
        if (n == 0)
            return gfail(c, p, QT_ESYNTAX, bad_utf8);
        p += n;
    }
    *pp = p;
    return 0;
}

static int
scan_path(struct gctx *c, const uint8_t **pp)
{
    const uint8_t *p = *pp, *s;
    int rc;
    c->path = p;
    c->n = 0;
    for (;;) {
        s = p;
        rc = scan_run(c, &p, G_DOT | G_WS | G_SEMI, "graphite: invalid UTF-8 in path",
                      "graphite: control character in path");
        if (rc != 0)
            return rc;
        if (p == s)
            return gfail(c, p, QT_ESYNTAX, "graphite: empty path component");
        if (c->n < COMP_MAX) {
            c->off[c->n] = (uint32_t)(s - c->path);
            c->len[c->n] = (uint32_t)(p - s);
        }
        c->n++;
        if (p == c->end || *p != '.')
            break;
        p++;
    }
    c->path_len = (uint32_t)(p - c->path);
    *pp = p;
    return 0;
}

/* Graphite tags: { ';' key '=' value } into pt->tags. */
static int
scan_tags(struct gctx *c, const uint8_t **pp)
{
    const uint8_t *p = *pp, *s;
    struct qt_ilp_point *pt = c->pt;
    int rc;
    while (p < c->end && *p == ';') {
        if (pt->tags_count == QT_TAGS_MAX)
            return gfail(c, p, QT_ELIMIT, "graphite: more than 64 tags");
        struct qt_ilp_tag *t = &pt->tags[pt->tags_count];
        s = ++p;
        rc = scan_run(c, &p, G_EQ | G_WS | G_SEMI, "graphite: invalid UTF-8 in tag",
                      "graphite: control character in tag");
        if (rc != 0)
            return rc;
        if (p == s || p == c->end || *p != '=')
            return gfail(c, p, QT_ESYNTAX, "graphite: tag is not key=value");
        t->key = (struct qt_ilp_str){(const char *)s, (uint32_t)(p - s)};
        s = ++p;
        rc = scan_run(c, &p, G_WS | G_SEMI, "graphite: invalid UTF-8 in tag",
                      "graphite: control character in tag");
        if (rc != 0)
            return rc;
        if (p == s)
            return gfail(c, p, QT_ESYNTAX, "graphite: empty tag value");
        t->value = (struct qt_ilp_str){(const char *)s, (uint32_t)(p - s)};
        pt->tags_count++;
    }
    *pp = p;
    return 0;
}

static const uint8_t *
skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static bool
word_is(const uint8_t *p, size_t n, const char *w)
{
    if (n != strlen(w))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((p[i] | 0x20) != (uint8_t)w[i]) /* ASCII case-insensitive */
            return false;
    return true;
}

/* The value token [s, e): a decimal float (Python float() syntax minus
 * underscores), "nan" (dropped) or "inf" (rejected), optionally signed. */
static int
parse_value(struct gctx *c, const uint8_t *s, const uint8_t *e, double *out)
{
    const uint8_t *w = s + (*s == '+' || *s == '-');
    struct qt_ilp_dec d;
    if (word_is(w, (size_t)(e - w), "nan"))
        return QT_ILP_SKIP;
    if (word_is(w, (size_t)(e - w), "inf") || word_is(w, (size_t)(e - w), "infinity"))
        return gfail(c, s, QT_ESYNTAX, "graphite: value is infinite");
    if (qt_ilp_scan_decimal(s, e, true, &d) != e)
        return gfail(c, s, QT_ESYNTAX, "graphite: invalid value");
    if ((size_t)(e - s) > QT_NUMBER_TEXT_MAX)
        return gfail(c, s, QT_ELIMIT, "graphite: value too long");
    if (qt_ilp_dec_to_double(&d, s, (size_t)(e - s), out) != 0)
        return gfail(c, s, QT_ESYNTAX, "graphite: value out of range");
    return 0;
}

/* Seconds "[+-]digits[.digits]" (at least one digit) to nanoseconds; a
 * fraction past nine digits is truncated.  Integer part -1 means now. */
static int
parse_time(struct gctx *c, const uint8_t *s, const uint8_t *e, const struct qt_ilp_opts *o)
{
    const uint8_t *p = s;
    int64_t sec = 0, frac = 0, scale = 100000000, ns;
    uint32_t digits = 0;
    bool neg = *p == '-';
    p += *p == '-' || *p == '+';
    for (; p < e && (unsigned)(*p - '0') < 10; p++, digits++)
        if (__builtin_mul_overflow(sec, 10, &sec) || __builtin_add_overflow(sec, *p - '0', &sec))
            return gfail(c, s, QT_ESYNTAX, "graphite: timestamp out of range");
    if (p < e && *p == '.')
        for (p++; p < e && (unsigned)(*p - '0') < 10; p++, digits++, scale /= 10)
            frac += (*p - '0') * scale;
    if (p != e || digits == 0)
        return gfail(c, s, QT_ESYNTAX, "graphite: invalid timestamp");
    if (neg && sec == 1) { /* carbon: int(timestamp) == -1 means "now" */
        c->pt->has_timestamp = false;
        c->pt->timestamp_ns = qt_ilp_floor_ts(o->now_ns, 1000000000);
        return 0;
    }
    if (__builtin_mul_overflow(sec, 1000000000, &ns) || __builtin_add_overflow(ns, frac, &ns) ||
        ns > QT_ILP_TS_MAX || (neg && -ns < QT_ILP_TS_MIN))
        return gfail(c, s, QT_ESYNTAX, "graphite: timestamp out of range");
    c->pt->has_timestamp = true;
    c->pt->timestamp_ns = neg ? -ns : ns;
    return 0;
}

/* Value, optional timestamp, nothing else.  p is past the path/tags. */
static int
parse_rest(struct gctx *c, const uint8_t *p, const struct qt_ilp_opts *o)
{
    const uint8_t *end = c->end, *s;
    struct qt_ilp_field *f = &c->pt->fields[0];
    int rc;
    if (p < end && *p != ' ' && *p != '\t')
        return gfail(c, p, QT_ESYNTAX, "graphite: unexpected character after path");
    p = skip_ws(p, end);
    if (p == end)
        return gfail(c, p, QT_ESYNTAX, "graphite: missing value");
    for (s = p; p < end && *p != ' ' && *p != '\t';)
        p++;
    if ((rc = parse_value(c, s, p, &f->v.f)) != 0)
        return rc;
    f->type = QT_ILP_FLOAT;
    p = skip_ws(p, end);
    if (p == end) {
        c->pt->has_timestamp = false;
        c->pt->timestamp_ns = qt_ilp_floor_ts(o->now_ns, 1000000000);
        return 0;
    }
    for (s = p; p < end && *p != ' ' && *p != '\t';)
        p++;
    if ((rc = parse_time(c, s, p, o)) != 0)
        return rc;
    if (skip_ws(p, end) != end)
        return gfail(c, p, QT_ESYNTAX, "graphite: unexpected text after timestamp");
    return 0;
}

/* ---- mapping ----------------------------------------------------------- */

/* Components chosen for one name: indices in increasing order, then
 * optionally every component from `from` to the end of the path. */
struct sel {
    uint32_t n;
    bool all;
    uint32_t from;
    uint32_t idx[QT_GRAPHITE_PARTS_MAX];
};

static int
join(struct gctx *c, const struct sel *s, struct qt_ilp_str *out)
{
    bool consecutive = true;
    uint32_t first = s->n > 0 ? s->idx[0] : s->from, last_end;
    qt_assert(s->n > 0 || s->all);
    for (uint32_t i = 1; i < s->n; i++)
        consecutive &= s->idx[i] == s->idx[i - 1] + 1;
    if (s->all && s->n > 0)
        consecutive &= s->from == s->idx[s->n - 1] + 1;
    last_end = s->all ? c->path_len : c->off[s->idx[s->n - 1]] + c->len[s->idx[s->n - 1]];
    if (consecutive) {
        out->ptr = (const char *)c->path + c->off[first];
        out->len = last_end - c->off[first];
        return 0;
    }
    size_t need = s->n + (s->all ? c->path_len - c->off[s->from] : 0); /* dots and tail */
    for (uint32_t i = 0; i < s->n; i++)
        need += c->len[s->idx[i]];
    if (c->cap - c->used < need)
        return gfail(c, c->line, QT_ENOSPACE, "graphite: scratch buffer too small");
    char *w = c->scratch + c->used, *start = w;
    for (uint32_t i = 0; i < s->n; i++) {
        if (w != start)
            *w++ = '.';
        memcpy(w, c->path + c->off[s->idx[i]], c->len[s->idx[i]]);
        w += c->len[s->idx[i]];
    }
    if (s->all) {
        if (w != start)
            *w++ = '.';
        memcpy(w, c->path + c->off[s->from], c->path_len - c->off[s->from]);
        w += c->path_len - c->off[s->from];
    }
    out->ptr = start;
    out->len = (uint32_t)(w - start);
    c->used += out->len;
    return 0;
}

static bool
glob_match(const char *pat, size_t pn, const char *s, size_t sn)
{
    size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
    while (si < sn) {
        if (pi < pn && pat[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < pn && pat[pi] == s[si]) {
            pi++;
            si++;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pn && pat[pi] == '*')
        pi++;
    return pi == pn;
}

static const struct qt_graphite_template *
find_template(const struct qt_graphite_config *cfg, const struct gctx *c)
{
    for (uint32_t t = 0; cfg != NULL && t < cfg->templates_count; t++) {
        const struct qt_graphite_template *tp = &cfg->templates[t];
        bool ok = tp->filter_count <= c->n;
        for (uint32_t i = 0; ok && i < tp->filter_count; i++)
            ok = glob_match(tp->text + tp->filter[i].off, tp->filter[i].len,
                            (const char *)c->path + c->off[i], c->len[i]);
        if (ok)
            return tp;
    }
    return NULL;
}

static int
add_tag(struct gctx *c, struct qt_ilp_str key, struct qt_ilp_str value)
{
    struct qt_ilp_point *pt = c->pt;
    if (pt->tags_count == QT_TAGS_MAX)
        return gfail(c, c->line, QT_ELIMIT, "graphite: more than 64 tags");
    pt->tags[pt->tags_count].key = key;
    pt->tags[pt->tags_count].value = value;
    pt->tags_count++;
    return 0;
}

static int
map_default(struct gctx *c)
{
    struct qt_ilp_point *pt = c->pt;
    const char *path = (const char *)c->path;
    int rc;
    if (c->n > COMP_MAX)
        return gfail(c, c->line, QT_ELIMIT, "graphite: more than 64 tags");
    pt->measurement = (struct qt_ilp_str){path, c->len[0]};
    if (c->n == 1) {
        pt->fields[0].key = (struct qt_ilp_str){"value", 5};
        return 0;
    }
    pt->fields[0].key = (struct qt_ilp_str){path + c->off[c->n - 1], c->len[c->n - 1]};
    for (uint32_t i = 1; i + 1 < c->n; i++) {
        struct qt_ilp_str k = {pnames[i - 1], (uint32_t)strlen(pnames[i - 1])};
        if ((rc = add_tag(c, k, (struct qt_ilp_str){path + c->off[i], c->len[i]})) != 0)
            return rc;
    }
    return 0;
}

/* Select the parts of kind k (and its "*" variant k_all); true if any. */
static bool
select_kind(const struct qt_graphite_template *tp, uint32_t n, uint8_t k, uint8_t k_all, int group,
            struct sel *s)
{
    s->n = 0;
    s->all = false;
    for (uint32_t i = 0; i < tp->parts_count && i < n; i++) {
        if (tp->part_kind[i] == k && (group < 0 || tp->part_group[i] == group))
            s->idx[s->n++] = i;
        else if (tp->part_kind[i] == k_all && k_all != QT_GP_SKIP) {
            s->all = true;
            s->from = i;
        }
    }
    return s->n > 0 || s->all;
}

static int
map_template(struct gctx *c, const struct qt_graphite_template *tp)
{
    struct qt_ilp_point *pt = c->pt;
    struct sel s;
    int rc;
    pt->measurement = (struct qt_ilp_str){(const char *)c->path, c->path_len};
    if (select_kind(tp, c->n, QT_GP_MEASUREMENT, QT_GP_MEASUREMENT_ALL, -1, &s) &&
        (rc = join(c, &s, &pt->measurement)) != 0)
        return rc;
    pt->fields[0].key = (struct qt_ilp_str){"value", 5};
    if (select_kind(tp, c->n, QT_GP_FIELD, QT_GP_FIELD_ALL, -1, &s) &&
        (rc = join(c, &s, &pt->fields[0].key)) != 0)
        return rc;
    for (uint32_t i = 0; i < tp->parts_count && i < c->n; i++) {
        struct qt_ilp_str v;
        if (tp->part_kind[i] != QT_GP_TAG || tp->part_group[i] != i)
            continue; /* not the first part of its tag name */
        select_kind(tp, c->n, QT_GP_TAG, QT_GP_SKIP, (int)i, &s);
        if ((rc = join(c, &s, &v)) != 0)
            return rc;
        struct qt_ilp_str k = {tp->text + tp->part_name[i].off, tp->part_name[i].len};
        if ((rc = add_tag(c, k, v)) != 0)
            return rc;
    }
    for (uint32_t i = 0; i < tp->tags_count; i++) { /* defaults: only if unset */
        struct qt_ilp_str k = {tp->text + tp->tag_key[i].off, tp->tag_key[i].len};
        bool set = false;
        for (uint32_t j = 0; j < pt->tags_count && !set; j++)
            set = pt->tags[j].key.len == k.len && memcmp(pt->tags[j].key.ptr, k.ptr, k.len) == 0;
        if (!set && (rc = add_tag(c, k,
                                  (struct qt_ilp_str){tp->text + tp->tag_value[i].off,
                                                      tp->tag_value[i].len})) != 0)
            return rc;
    }
    return 0;
}

int
qt_graphite_parse_line(const struct qt_graphite_config *cfg, const struct qt_ilp_opts *opts,
                       const uint8_t *line, size_t len, char *scratch, size_t scratch_cap,
                       struct qt_ilp_point *pt)
{
    qt_assert(opts != NULL && pt != NULL);
    qt_assert((line != NULL || len == 0) && (scratch != NULL || scratch_cap == 0));
    struct gctx c = {
        .line = line, .end = line + len, .scratch = scratch, .cap = scratch_cap, .pt = pt};
    const uint8_t *p;
    int rc;
    pt->error_offset = 0;
    if (len > QT_LINE_MAX + 1 || (len == QT_LINE_MAX + 1 && line[len - 1] != '\r'))
        return gfail(&c, line + QT_LINE_MAX, QT_ELIMIT, "graphite: line exceeds 65536 bytes");
    if (len > 0 && line[len - 1] == '\r')
        c.end--;
    p = skip_ws(line, c.end);
    if (p == c.end || *p == '#')
        return QT_ILP_SKIP;
    pt->tags_count = 0;
    pt->fields_count = 1;
    if ((rc = scan_path(&c, &p)) != 0 || (rc = scan_tags(&c, &p)) != 0 ||
        (rc = parse_rest(&c, p, opts)) != 0)
        return rc;
    const struct qt_graphite_template *tp = find_template(cfg, &c);
    if ((rc = tp != NULL ? map_template(&c, tp) : map_default(&c)) != 0)
        return rc;
    if ((rc = qt_ilp_point_finish(pt, QT_PROTO_GRAPHITE)) != 0) {
        pt->error_offset = 0;
        return rc;
    }
    return 0;
}

/* ---- configuration ----------------------------------------------------- */

/* Split t->text[off .. off+len) on `sep` into spans; QT_EINVAL past max. */
static int
split(const char *text, uint32_t off, uint32_t len, char sep, struct qt_graphite_span *out,
      uint32_t max, uint32_t *count)
{
    uint32_t n = 0, s = off;
    for (uint32_t i = off; i <= off + len; i++) {
        if (i < off + len && text[i] != sep)
            continue;
        if (n == max)
            return qt_fail(QT_EINVAL, "graphite: template has too many parts");
        out[n++] = (struct qt_graphite_span){(uint16_t)s, (uint16_t)(i - s)};
        s = i + 1;
    }
    *count = n;
    return 0;
}

static bool
span_is(const struct qt_graphite_template *t, struct qt_graphite_span sp, const char *w)
{
    return sp.len == strlen(w) && memcmp(t->text + sp.off, w, sp.len) == 0;
}

static int
parse_pattern(struct qt_graphite_template *t, struct qt_graphite_span sp)
{
    int rc =
        split(t->text, sp.off, sp.len, '.', t->part_name, QT_GRAPHITE_PARTS_MAX, &t->parts_count);
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; i < t->parts_count; i++) {
        struct qt_graphite_span p = t->part_name[i];
        uint8_t k = QT_GP_TAG;
        if (p.len == 0)
            k = QT_GP_SKIP;
        else if (span_is(t, p, "measurement"))
            k = QT_GP_MEASUREMENT;
        else if (span_is(t, p, "measurement*"))
            k = QT_GP_MEASUREMENT_ALL;
        else if (span_is(t, p, "field"))
            k = QT_GP_FIELD;
        else if (span_is(t, p, "field*"))
            k = QT_GP_FIELD_ALL;
        else if (memchr(t->text + p.off, '*', p.len) != NULL)
            return qt_fail(QT_EINVAL, "graphite: '*' only in measurement* or field*");
        if ((k == QT_GP_MEASUREMENT_ALL || k == QT_GP_FIELD_ALL) && i + 1 != t->parts_count)
            return qt_fail(QT_EINVAL, "graphite: a '*' part must be the last part");
        t->part_kind[i] = k;
        t->part_group[i] = (uint8_t)i;
        for (uint32_t j = 0; k == QT_GP_TAG && j < i; j++)
            if (t->part_kind[j] == QT_GP_TAG && t->part_name[j].len == p.len &&
                memcmp(t->text + t->part_name[j].off, t->text + p.off, p.len) == 0) {
                t->part_group[i] = t->part_group[j];
                break;
            }
    }
    return 0;
}

static int
parse_default_tags(struct qt_graphite_template *t, struct qt_graphite_span sp)
{
    struct qt_graphite_span kv[QT_TAGS_MAX];
    uint32_t n;
    if (split(t->text, sp.off, sp.len, ',', kv, QT_TAGS_MAX, &n) != 0)
        return qt_fail(QT_EINVAL, "graphite: template has more than 64 tags");
    for (uint32_t i = 0; i < n; i++) {
        const char *s = t->text + kv[i].off, *eq = memchr(s, '=', kv[i].len);
        if (eq == NULL || eq == s || eq == s + kv[i].len - 1)
            return qt_fail(QT_EINVAL, "graphite: template tags must be k=v[,k=v...]");
        t->tag_key[i] = (struct qt_graphite_span){kv[i].off, (uint16_t)(eq - s)};
        t->tag_value[i] = (struct qt_graphite_span){(uint16_t)(kv[i].off + (eq - s) + 1),
                                                    (uint16_t)(kv[i].len - (eq - s) - 1)};
    }
    t->tags_count = n;
    return 0;
}

void
qt_graphite_config_init(struct qt_graphite_config *cfg)
{
    qt_assert(cfg != NULL);
    cfg->templates_count = 0;
}

/* Template text: valid UTF-8 without control characters or ';', and no
 * backslash before a separator (a name ending in one cannot be stored). */
static int
spec_check(const char *spec, size_t len)
{
    const uint8_t *p = (const uint8_t *)spec, *end = p + len;
    while (p < end) {
        size_t n = *p >= 0x80 ? qt_ilp_utf8_len(p, end) : 1;
        if (n == 0)
            return qt_fail(QT_EINVAL, "graphite: invalid UTF-8 in template");
        if (*p < 0x20 || *p == 0x7f || *p == ';')
            return qt_fail(QT_EINVAL, "graphite: control character or ';' in template");
        if (*p == '\\' &&
            (p + 1 == end || p[1] == '.' || p[1] == ' ' || p[1] == ',' || p[1] == '='))
            return qt_fail(QT_EINVAL, "graphite: template name ends with a backslash");
        p += n;
    }
    return 0;
}

/* Split the spec into up to three space-separated words. */
static int
spec_words(const struct qt_graphite_template *t, uint32_t len, struct qt_graphite_span *w,
           uint32_t *count)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < len;) {
        if (t->text[i] == ' ') {
            i++;
            continue;
        }
        uint32_t s = i;
        while (i < len && t->text[i] != ' ')
            i++;
        if (n == 3)
            return qt_fail(QT_EINVAL, "graphite: template has more than three words");
        w[n++] = (struct qt_graphite_span){(uint16_t)s, (uint16_t)(i - s)};
    }
    *count = n;
    return n == 0 ? qt_fail(QT_EINVAL, "graphite: empty template") : 0;
}

int
qt_graphite_config_add(struct qt_graphite_config *cfg, const char *spec, size_t len)
{
    struct qt_graphite_span w[3], filter = {0, 0}, pattern, tags = {0, 0};
    uint32_t n = 0;
    int rc;
    qt_assert(cfg != NULL && (spec != NULL || len == 0));
    qt_assert(cfg->templates_count <= QT_GRAPHITE_TEMPLATES_MAX);
    if (cfg->templates_count == QT_GRAPHITE_TEMPLATES_MAX)
        return qt_fail(QT_ELIMIT, "graphite: more than 64 templates");
    if (len >= QT_GRAPHITE_TEMPLATE_MAX)
        return qt_fail(QT_EINVAL, "graphite: template longer than 511 bytes");
    struct qt_graphite_template *t = &cfg->templates[cfg->templates_count];
    memset(t, 0, sizeof(*t));
    memcpy(t->text, spec, len);
    if ((rc = spec_check(spec, len)) != 0)
        return rc;
    if ((rc = spec_words(t, (uint32_t)len, w, &n)) != 0)
        return rc;
    pattern = w[0];
    if (n == 2 && memchr(t->text + w[1].off, '=', w[1].len) != NULL)
        tags = w[1];
    else if (n >= 2) {
        filter = w[0];
        pattern = w[1];
        tags = n == 3 ? w[2] : tags;
    }
    if (filter.len > 0 && (rc = split(t->text, filter.off, filter.len, '.', t->filter,
                                      QT_GRAPHITE_PARTS_MAX, &t->filter_count)) != 0)
        return rc;
    for (uint32_t i = 0; i < t->filter_count; i++)
        if (t->filter[i].len == 0)
            return qt_fail(QT_EINVAL, "graphite: empty filter component");
    if ((rc = parse_pattern(t, pattern)) != 0)
        return rc;
    if (tags.len > 0 && (rc = parse_default_tags(t, tags)) != 0)
        return rc;
    cfg->templates_count++;
    return 0;
}

static int
graphite_parse_fn(const void *arg, const struct qt_ilp_opts *opts, const uint8_t *line, size_t len,
                  char *scratch, size_t scratch_cap, struct qt_ilp_point *pt)
{
    return qt_graphite_parse_line(arg, opts, line, len, scratch, scratch_cap, pt);
}

void
qt_graphite_batch_init(struct qt_ilp_batch *b, const struct qt_graphite_config *cfg, int64_t now_ns,
                       struct qt_ilp_point *point, char *scratch, size_t scratch_cap,
                       qt_ilp_point_fn on_point, qt_ilp_error_fn on_error, void *ctx)
{
    struct qt_ilp_opts o = {.precision = QT_ILP_S, .now_ns = now_ns};
    qt_ilp_batch_init(b, &o, point, scratch, scratch_cap, on_point, on_error, ctx);
    b->parse = graphite_parse_fn;
    b->parse_arg = cfg;
}
