/*
 * qparse.c -- recursive-descent parser for the query language (see
 * qparse.h; grammar in design/query.md).
 *
 * Shape: one token of lookahead from the stateless lexer (qlex.c), one
 * function per grammar rule, each entered through enter() so nesting is
 * bounded (Lua's enterlevel).  Any error aborts the whole parse: the
 * first error wins, is recorded with its byte position in the caller's
 * struct qt_qry_error, and everything allocated so far is released by
 * qt_qry_free() on the half-built query.  Validation happens while
 * parsing, so every message can point at the offending token: stage order
 * is checked by a small state machine (stage_check) as soon as a stage's
 * keyword is seen.
 *
 * Invariants: p->tok is always the next unconsumed token; every node is in
 * the query's arena; every compiled regex and loaded zone is registered in
 * q->internal before anything else can fail.
 */
#define PCRE2_CODE_UNIT_WIDTH 8 /* before <pcre2.h>: 8-bit code units */

#include "qparse.h"

#include "arena.h"
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "qlex.h"
#include "qtime.h"
#include "tz.h"

#include <locale.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Arena chunk for one query: a typical query fits in one. */
#define QRY_ARENA_CHUNK 4096u
/* Zones one query can load: there is at most one aggregation stage. */
#define QRY_ZONES_MAX 1u

struct qt_qry_internal {
    struct qt_arena arena;
    pcre2_code *codes[QT_QUERY_MATCHERS_MAX];
    uint32_t codes_count;
    struct qt_tz *zones[QRY_ZONES_MAX];
    uint32_t zones_count;
};

static_assert(QT_QUERY_TEXT_MAX < INT32_MAX, "positions fit in int32_t");
static_assert(QT_QUERY_DEPTH_MAX >= 8, "the grammar needs depth 8");

/* Where stage_check is in the pipeline (design/query.md, "Validity"). */
enum stage_state {
    ST_POINTS,      /* only where / rate / delta so far */
    ST_AGG_PLAIN,   /* after an aggregation without `by <duration>` */
    ST_AGG_BUCKETS, /* after a time-bucketed aggregation */
    ST_FILLED,      /* after fill */
    ST_TERMINAL,    /* after last / episodes / gaps */
    ST_LIMITED,     /* after limit */
    ST_CATALOG,     /* a catalog query: only limit */
};

struct parser {
    const char *text;
    size_t len;
    struct qt_tok tok; /* current token */
    struct qt_qry *q;
    struct qt_arena *arena;
    struct qt_qry_error *err;
    const char *zoneinfo_dir;
    uint32_t depth, depth_max;
    pcre2_general_context *re_gctx;
    pcre2_compile_context *re_cctx;
    /* stage validation */
    enum stage_state state;
    bool had_transform;        /* a rate or delta was seen */
    const char *terminal_name; /* last / episodes / gaps, for messages */
};

/* ---- errors --------------------------------------------------------------- */

/* Record the first error: code, byte position (-1: none) and a message.
 * Returns code so callers write `return fail(...)`. */
static int __attribute__((format(printf, 4, 5)))
fail(struct parser *p, int code, long pos, const char *fmt, ...)
{
    qt_assert(code != 0);
    qt_assert(pos >= -1 && pos <= (long)p->len);
    struct qt_qry_error *e = p->err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    /* Messages echo query text: keep them printable ASCII (JSON-safe). */
    for (char *c = e->message; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
    e->code = code;
    e->position = (int32_t)pos;
    return code;
}

/* Failure of a qt_arena allocation. */
static int
fail_mem(struct parser *p)
{
    int code = p->arena->error != 0 ? p->arena->error : QT_ENOMEM;
    if (code == QT_ELIMIT)
        return fail(p, code, -1, "query needs more than %u bytes of memory", QT_QUERY_ARENA_MAX);
    return fail(p, QT_ENOMEM, -1, "out of memory");
}

/* Echo length for a token in messages: long names are cut. */
static int
echo_len(const struct qt_tok *t)
{
    uint32_t n = t->end - t->start;
    return (int)(n > 40 ? 40 : n);
}

/* ---- tokens --------------------------------------------------------------- */

static int
next(struct parser *p)
{
    size_t err_pos = 0;
    int rc = qt_lex_next(p->text, p->len, p->tok.end, &p->tok, &err_pos);
    if (rc != 0)
        return fail(p, rc, (long)err_pos, "%s", qt_err_detail());
    return 0;
}

/* The token after the current one (kind only matters to callers). */
static enum qt_tok_kind
peek_kind(const struct parser *p)
{
    struct qt_tok t;
    size_t err_pos;
    if (qt_lex_next(p->text, p->len, p->tok.end, &t, &err_pos) != 0)
        return QT_TOK_KINDS; /* an error token: the real error comes on next() */
    return t.kind;
}

static bool
is_word(const struct parser *p, const char *word)
{
    return qt_lex_is_word(p->text, &p->tok, word);
}

static bool
is_kind(const struct parser *p, enum qt_tok_kind kind)
{
    return p->tok.kind == kind;
}

/* Consume a token of `kind` or fail with "expected <what>". */
static int
expect(struct parser *p, enum qt_tok_kind kind, const char *what)
{
    if (p->tok.kind != kind)
        return fail(p, QT_ESYNTAX, p->tok.start, "expected %s", what);
    return next(p);
}

static int
enter(struct parser *p)
{
    if (++p->depth > p->depth_max)
        return fail(p, QT_ELIMIT, p->tok.start, "query nested deeper than %u levels", p->depth_max);
    return 0;
}

static void
leave(struct parser *p)
{
    qt_assert(p->depth > 0);
    p->depth--;
}

static const char *keyword_hint(const struct parser *p);

/* ---- names and strings ---------------------------------------------------- */

/* Decode the current string token into the arena (map: optional source
 * offsets per decoded byte, also in the arena). */
static int
take_string(struct parser *p, struct qt_qry_str *out, uint32_t **map)
{
    qt_assert(is_kind(p, QT_TOK_STRING));
    uint32_t raw = p->tok.end - p->tok.start;
    char *buf = qt_arena_alloc(p->arena, raw);
    if (buf == NULL)
        return fail_mem(p);
    if (map != NULL && (*map = qt_arena_array(p->arena, raw, sizeof(uint32_t))) == NULL)
        return fail_mem(p);
    size_t n = qt_lex_string_decode(p->text, &p->tok, buf, map != NULL ? *map : NULL);
    qt_assert(n + 2 <= raw);
    buf[n] = '\0';
    if (n > QT_SERIES_KEY_MAX)
        return fail(p, QT_ELIMIT, p->tok.start, "string longer than %u bytes", QT_SERIES_KEY_MAX);
    out->p = buf;
    out->len = (uint32_t)n;
    return next(p);
}

/* A name: an identifier or a quoted string (for names that are not
 * identifiers).  `what` completes "expected ...". */
static int
parse_name(struct parser *p, struct qt_qry_str *out, const char *what)
{
    if (is_kind(p, QT_TOK_STRING)) {
        uint32_t pos = p->tok.start;
        int rc = take_string(p, out, NULL);
        if (rc == 0 && out->len == 0)
            return fail(p, QT_ESYNTAX, pos, "empty name");
        return rc;
    }
    if (!is_kind(p, QT_TOK_IDENT))
        return fail(p, QT_ESYNTAX, p->tok.start, "expected %s", what);
    uint32_t n = p->tok.end - p->tok.start;
    if (n > QT_SERIES_KEY_MAX)
        return fail(p, QT_ELIMIT, p->tok.start, "name longer than %u bytes", QT_SERIES_KEY_MAX);
    char *s = qt_arena_strndup(p->arena, p->text + p->tok.start, n);
    if (s == NULL)
        return fail_mem(p);
    out->p = s;
    out->len = n;
    return next(p);
}

static int
str_cmp(const struct qt_qry_str *a, const struct qt_qry_str *b)
{
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = n > 0 ? memcmp(a->p, b->p, n) : 0;
    if (c != 0)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int
str_cmp_qsort(const void *a, const void *b)
{
    return str_cmp(a, b);
}

/* ---- matchers ------------------------------------------------------------- */

static void *
re_malloc(PCRE2_SIZE size, void *data)
{
    (void)data;
    return qt_malloc(size);
}

static void
re_free(void *ptr, void *data)
{
    (void)data;
    qt_free(ptr);
}

/* Whole-value match over UTF-8 tag values (invalid UTF-8 never matches a
 * multi-byte construct but does not error); \C could split a character. */
#define RE_OPTIONS                                                                                 \
    (PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED |                    \
     PCRE2_NO_AUTO_CAPTURE | PCRE2_NEVER_BACKSLASH_C)

/* Compile m->value; map[i] is the query offset of pattern byte i, so a
 * PCRE2 error offset becomes a query position.  t is the string token. */
static int
compile_regex(struct parser *p, struct qt_qry_matcher *m, const struct qt_tok *t,
              const uint32_t *map)
{
    struct qt_qry_internal *in = p->q->internal;
    if (m->value.len > QT_QUERY_REGEX_MAX)
        return fail(p, QT_ELIMIT, t->start, "regex longer than %u bytes", QT_QUERY_REGEX_MAX);
    if (p->re_cctx == NULL) {
        p->re_gctx = pcre2_general_context_create(re_malloc, re_free, NULL);
        if (p->re_gctx != NULL)
            p->re_cctx = pcre2_compile_context_create(p->re_gctx);
        if (p->re_cctx == NULL)
            return fail(p, QT_ENOMEM, -1, "out of memory");
    }
    int errcode = 0;
    PCRE2_SIZE erroff = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)m->value.p, m->value.len, RE_OPTIONS, &errcode,
                                     &erroff, p->re_cctx);
    if (code == NULL) {
        if (errcode == PCRE2_ERROR_HEAP_FAILED)
            return fail(p, QT_ENOMEM, -1, "out of memory");
        PCRE2_UCHAR msg[128];
        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", errcode);
        long pos = erroff < m->value.len ? (long)map[erroff] : (long)t->end - 1;
        return fail(p, QT_ESYNTAX, pos, "bad regex: %s", (const char *)msg);
    }
    qt_assert(in->codes_count < QT_QUERY_MATCHERS_MAX);
    in->codes[in->codes_count++] = code;
    m->re = code;
    return 0;
}

/* `(` string {`,` string} `)`: sorted, unique; one value becomes `=`. */
static int
parse_in_list(struct parser *p, struct qt_qry_matcher *m)
{
    int rc = enter(p);
    if (rc == 0)
        rc = expect(p, QT_TOK_LPAREN, "'(' after 'in'");
    if (rc != 0)
        return rc;
    struct qt_qry_str *vals = NULL;
    uint32_t n = 0, cap = 0;
    for (;;) {
        if (!is_kind(p, QT_TOK_STRING))
            return fail(p, QT_ESYNTAX, p->tok.start,
                        n == 0 ? "expected a quoted string (an 'in' list needs a value)"
                               : "expected a quoted string");
        if (n == QT_QUERY_IN_MAX)
            return fail(p, QT_ELIMIT, p->tok.start, "more than %u values in an 'in' list",
                        QT_QUERY_IN_MAX);
        if (n == cap) {
            cap = cap == 0 ? 8 : cap * 2;
            struct qt_qry_str *grown = qt_arena_array(p->arena, cap, sizeof(*grown));
            if (grown == NULL)
                return fail_mem(p);
            if (n > 0)
                memcpy(grown, vals, n * sizeof(*vals));
            vals = grown;
        }
        if ((rc = take_string(p, &vals[n++], NULL)) != 0)
            return rc;
        if (!is_kind(p, QT_TOK_COMMA))
            break;
        if ((rc = next(p)) != 0)
            return rc;
    }
    if ((rc = expect(p, QT_TOK_RPAREN, "',' or ')'")) != 0)
        return rc;
    qsort(vals, n, sizeof(*vals), str_cmp_qsort);
    uint32_t u = 1;
    for (uint32_t i = 1; i < n; i++)
        if (str_cmp(&vals[i], &vals[u - 1]) != 0)
            vals[u++] = vals[i];
    if (u == 1) {
        m->op = QT_QRY_MATCH_EQ;
        m->value = vals[0];
    } else {
        m->values = vals;
        m->values_count = u;
    }
    leave(p);
    return 0;
}

/* name (= | != | =~ | !~) string  |  name in (...) */
static int
parse_matcher(struct parser *p, struct qt_qry_matcher *m)
{
    int rc = enter(p);
    if (rc != 0)
        return rc;
    memset(m, 0, sizeof(*m));
    m->pos = p->tok.start;
    if ((rc = parse_name(p, &m->key, "a tag name")) != 0)
        return rc;
    switch (p->tok.kind) {
    case QT_TOK_EQ: m->op = QT_QRY_MATCH_EQ; break;
    case QT_TOK_NE: m->op = QT_QRY_MATCH_NE; break;
    case QT_TOK_RE: m->op = QT_QRY_MATCH_RE; break;
    case QT_TOK_NRE: m->op = QT_QRY_MATCH_NRE; break;
    default:
        if (!is_word(p, "in"))
            return fail(p, QT_ESYNTAX, p->tok.start,
                        "expected '=', '!=', '=~', '!~' or 'in' after the tag name");
        m->op = QT_QRY_MATCH_IN;
    }
    if ((rc = next(p)) != 0)
        return rc;
    if (m->op == QT_QRY_MATCH_IN) {
        rc = parse_in_list(p, m);
    } else if (!is_kind(p, QT_TOK_STRING)) {
        rc = fail(p, QT_ESYNTAX, p->tok.start, "expected a quoted string");
    } else {
        bool regex = m->op == QT_QRY_MATCH_RE || m->op == QT_QRY_MATCH_NRE;
        struct qt_tok t = p->tok;
        uint32_t *map = NULL;
        rc = take_string(p, &m->value, regex ? &map : NULL);
        if (rc == 0 && regex)
            rc = compile_regex(p, m, &t, map);
    }
    if (rc == 0)
        leave(p);
    return rc;
}

static int
matcher_cmp(const void *va, const void *vb)
{
    const struct qt_qry_matcher *a = va, *b = vb;
    int c = str_cmp(&a->key, &b->key);
    if (c != 0)
        return c;
    if (a->op != b->op)
        return a->op < b->op ? -1 : 1;
    if (a->op != QT_QRY_MATCH_IN)
        return str_cmp(&a->value, &b->value);
    for (uint32_t i = 0; i < a->values_count && i < b->values_count; i++)
        if ((c = str_cmp(&a->values[i], &b->values[i])) != 0)
            return c;
    return a->values_count < b->values_count ? -1 : a->values_count > b->values_count;
}

/* `{` [matcher {`,` matcher}] `}` into sel, in normal form. */
static int
parse_matchers(struct parser *p, struct qt_qry_selector *sel)
{
    struct qt_qry_matcher tmp[QT_QUERY_MATCHERS_MAX];
    uint32_t n = 0;
    int rc = enter(p);
    if (rc == 0)
        rc = expect(p, QT_TOK_LBRACE, "'{'");
    bool more = rc == 0 && !is_kind(p, QT_TOK_RBRACE); /* no trailing ',' */
    while (more) {
        if (n == QT_QUERY_MATCHERS_MAX)
            return fail(p, QT_ELIMIT, p->tok.start, "more than %u tag matchers",
                        QT_QUERY_MATCHERS_MAX);
        if ((rc = parse_matcher(p, &tmp[n++])) != 0)
            break;
        more = is_kind(p, QT_TOK_COMMA);
        if (more && (rc = next(p)) != 0)
            break;
    }
    if (rc == 0)
        rc = expect(p, QT_TOK_RBRACE, n == 0 ? "a tag name or '}'" : "',' or '}'");
    if (rc != 0)
        return rc;
    qsort(tmp, n, sizeof(tmp[0]), matcher_cmp);
    uint32_t u = 0;
    for (uint32_t i = 0; i < n; i++)
        if (u == 0 || matcher_cmp(&tmp[i], &tmp[u - 1]) != 0)
            tmp[u++] = tmp[i];
    struct qt_qry_matcher *ms = qt_arena_array(p->arena, u, sizeof(*ms));
    if (ms == NULL)
        return fail_mem(p);
    if (u > 0)
        memcpy(ms, tmp, u * sizeof(*ms));
    sel->matchers = ms;
    sel->matchers_count = u;
    leave(p);
    return 0;
}

/* ---- selector ------------------------------------------------------------- */

enum sel_mode {
    SEL_DATA,   /* measurement.field [matchers] */
    SEL_TARGET, /* catalog: name [. name] [matchers]  |  matchers */
};

static int
parse_selector(struct parser *p, struct qt_qry_selector *sel, enum sel_mode mode)
{
    int rc = enter(p);
    if (rc != 0)
        return rc;
    if (mode == SEL_DATA || !is_kind(p, QT_TOK_LBRACE)) {
        const char *what = mode == SEL_DATA ? "a selector (measurement.field) or a catalog query"
                                            : "a measurement name or '{'";
        const char *hint = keyword_hint(p); /* "Measurements" */
        long name_pos = p->tok.start;
        if ((rc = parse_name(p, &sel->measurement, what)) != 0)
            return rc;
        if (mode == SEL_DATA && !is_kind(p, QT_TOK_DOT) && hint != NULL)
            return fail(p, QT_ESYNTAX, name_pos, "keywords are lowercase: write '%s'", hint);
        if (mode == SEL_DATA && !is_kind(p, QT_TOK_DOT))
            return fail(p, QT_ESYNTAX, p->tok.start,
                        "expected '.' and a field name after the measurement (measurement.field)");
        if (is_kind(p, QT_TOK_DOT)) {
            if ((rc = next(p)) != 0 || (rc = parse_name(p, &sel->field, "a field name")) != 0)
                return rc;
        }
    }
    if (is_kind(p, QT_TOK_LBRACE) && (rc = parse_matchers(p, sel)) != 0)
        return rc;
    leave(p);
    return 0;
}

/* ---- time literals ------------------------------------------------------- */

/* A duration token (UNITNUM) into *ns; `what` completes "expected ...". */
static int
parse_duration(struct parser *p, int64_t *ns, const char *what)
{
    if (!is_kind(p, QT_TOK_UNITNUM))
        return fail(p, QT_ESYNTAX, p->tok.start, "expected %s", what);
    size_t off = 0;
    int rc = qt_time_parse_duration(p->text + p->tok.start, p->tok.end - p->tok.start, ns, &off);
    if (rc != 0)
        return fail(p, rc, (long)(p->tok.start + off), "%s", qt_err_detail());
    return next(p);
}

/* now [(+|-) duration]: resolved against the caller's now. */
static int
parse_now(struct parser *p, struct qt_qry_time *t)
{
    long pos = p->tok.start;
    int rc = next(p);
    if (rc != 0)
        return rc;
    t->relative = true;
    if (is_kind(p, QT_TOK_PLUS) || is_kind(p, QT_TOK_MINUS)) {
        bool minus = is_kind(p, QT_TOK_MINUS);
        int64_t d;
        if ((rc = next(p)) != 0 ||
            (rc = parse_duration(p, &d, "a duration after now+/now- (e.g. 6h)")) != 0)
            return rc;
        t->offset_ns = minus ? -d : d;
    }
    if (!qt_time_add(p->q->now_ns, t->offset_ns, &t->ns))
        return fail(p, QT_ESYNTAX, pos, "time out of range (1677-09-21 .. 2262-04-11)");
    return 0;
}

/* An epoch integer with a unit, optionally after '-'. */
static int
parse_epoch(struct parser *p, struct qt_qry_time *t)
{
    bool minus = is_kind(p, QT_TOK_MINUS);
    int rc = 0;
    if (minus && (rc = next(p)) != 0)
        return rc;
    if (is_kind(p, QT_TOK_NUMBER))
        return fail(p, QT_ESYNTAX, p->tok.end,
                    "an epoch time needs a unit: s, ms, us or ns (1794787200s)");
    if (!is_kind(p, QT_TOK_UNITNUM))
        return fail(p, QT_ESYNTAX, p->tok.start, "expected an epoch time after '-'");
    size_t off = 0;
    rc =
        qt_time_parse_epoch(p->text + p->tok.start, p->tok.end - p->tok.start, minus, &t->ns, &off);
    if (rc != 0)
        return fail(p, rc, (long)(p->tok.start + off), "%s", qt_err_detail());
    return next(p);
}

static int
parse_time(struct parser *p, struct qt_qry_time *t)
{
    int rc = enter(p);
    if (rc != 0)
        return rc;
    memset(t, 0, sizeof(*t));
    if (is_word(p, "now")) {
        rc = parse_now(p, t);
    } else if (is_kind(p, QT_TOK_TIME)) {
        size_t off = 0;
        rc = qt_time_parse_rfc3339(p->text + p->tok.start, p->tok.end - p->tok.start, &t->ns, &off);
        if (rc != 0)
            return fail(p, rc, (long)(p->tok.start + off), "%s", qt_err_detail());
        rc = next(p);
    } else if (is_kind(p, QT_TOK_MINUS) || is_kind(p, QT_TOK_UNITNUM) ||
               is_kind(p, QT_TOK_NUMBER)) {
        rc = parse_epoch(p, t);
    } else if (keyword_hint(p) != NULL) {
        return fail(p, QT_ESYNTAX, p->tok.start, "keywords are lowercase: write '%s'",
                    keyword_hint(p));
    } else {
        return fail(p, QT_ESYNTAX, p->tok.start,
                    "expected a time: RFC 3339, an epoch with a unit, or now[-duration]");
    }
    if (rc == 0)
        leave(p);
    return rc;
}

/* `[` time `,` time (`)` | `]`): a closed end becomes end + 1ns. */
static int
parse_range(struct parser *p)
{
    struct qt_qry_range *r = &p->q->range;
    long open = p->tok.start;
    int rc = enter(p);
    if (rc == 0)
        rc = expect(p, QT_TOK_LBRACKET, "'['");
    if (rc == 0)
        rc = parse_time(p, &r->start);
    if (rc == 0)
        rc = expect(p, QT_TOK_COMMA, "',' between the start and the end of the range");
    if (rc == 0)
        rc = parse_time(p, &r->end);
    if (rc != 0)
        return rc;
    if (is_kind(p, QT_TOK_RBRACKET)) {
        if (!qt_time_add(r->end.ns, 1, &r->end.ns) ||
            (r->end.relative && !qt_time_add(r->end.offset_ns, 1, &r->end.offset_ns)))
            return fail(p, QT_ESYNTAX, p->tok.start,
                        "time out of range (1677-09-21 .. 2262-04-11)");
    } else if (!is_kind(p, QT_TOK_RPAREN)) {
        return fail(p, QT_ESYNTAX, p->tok.start, "expected ']' or ')'");
    }
    if ((rc = next(p)) != 0)
        return rc;
    if (r->start.ns >= r->end.ns)
        return fail(p, QT_ESYNTAX, open, "empty time range: the start must be before the end");
    r->bounded = true;
    leave(p);
    return 0;
}

/* ---- numbers and names of things ------------------------------------------ */

/* strtod in the "C" locale whatever the process locale is. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void
c_locale_init(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* ['-'] number: a finite double.  `what` completes "expected ...". */
static int
parse_number(struct parser *p, double *out, const char *what)
{
    bool minus = is_kind(p, QT_TOK_MINUS);
    int rc = 0;
    if (minus && (rc = next(p)) != 0)
        return rc;
    if (!is_kind(p, QT_TOK_NUMBER))
        return fail(p, QT_ESYNTAX, p->tok.start, "expected %s", what);
    char buf[QT_QUERY_NUMBER_MAX + 1], *end = NULL;
    size_t n = p->tok.end - p->tok.start;
    qt_assert(n <= QT_QUERY_NUMBER_MAX); /* the lexer's limit */
    memcpy(buf, p->text + p->tok.start, n);
    buf[n] = '\0';
    pthread_once(&c_locale_once, c_locale_init);
    double v = c_locale != (locale_t)0 ? strtod_l(buf, &end, c_locale) : strtod(buf, &end);
    if (end != buf + n || !isfinite(v))
        return fail(p, QT_ESYNTAX, p->tok.start, "number out of range");
    *out = minus ? -v : v;
    return next(p);
}

/* ORDER AGGFNS */
static const char *const agg_names[] = {
    NULL, "count", "sum", "min", "max", "avg", "first", "last", "stddev", "spread", "percentile",
};

/* ORDER CMPOPS */
static const char *const cmp_names[] = {NULL, ">", ">=", "<", "<=", "==", "!="};

const char *
qt_qry_agg_fn_name(enum qt_qry_agg_fn fn)
{
    qt_assert(fn >= QT_QRY_AGG_COUNT && fn <= QT_QRY_AGG_PERCENTILE);
    return agg_names[fn];
}

const char *
qt_qry_cmp_name(enum qt_qry_cmp op)
{
    qt_assert(op >= QT_QRY_CMP_GT && op <= QT_QRY_CMP_NE);
    return cmp_names[op];
}

static enum qt_qry_agg_fn
agg_lookup(const struct parser *p)
{
    for (int fn = QT_QRY_AGG_COUNT; fn <= QT_QRY_AGG_PERCENTILE; fn++)
        if (is_word(p, agg_names[fn]))
            return (enum qt_qry_agg_fn)fn;
    return 0;
}

/* A keyword the current identifier spells in another case ("WHERE"), for
 * a friendlier message; NULL if none. */
static const char *
keyword_hint(const struct parser *p)
{
    static const char *const words[] = {
        "where", "rate",  "delta",        "fill",   "last",       "episodes", "gaps",
        "limit", "by",    "tz",           "count",  "sum",        "min",      "max",
        "avg",   "first", "stddev",       "spread", "percentile", "now",      "value",
        "for",   "in",    "measurements", "fields", "tags",       "values",   "series",
    };
    uint32_t n = p->tok.end - p->tok.start;
    char low[16];
    if (p->tok.kind != QT_TOK_IDENT || n >= sizeof(low))
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        char c = p->text[p->tok.start + i];
        low[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(words[i], low) == 0 && memcmp(low, p->text + p->tok.start, n) != 0)
            return words[i];
    return NULL;
}

/* (> | >= | < | <= | == | !=) number */
static int
parse_cond(struct parser *p, struct qt_qry_cond *c)
{
    switch (p->tok.kind) {
    case QT_TOK_GT: c->op = QT_QRY_CMP_GT; break;
    case QT_TOK_GE: c->op = QT_QRY_CMP_GE; break;
    case QT_TOK_LT: c->op = QT_QRY_CMP_LT; break;
    case QT_TOK_LE: c->op = QT_QRY_CMP_LE; break;
    case QT_TOK_EQEQ: c->op = QT_QRY_CMP_EQ; break;
    case QT_TOK_NE: c->op = QT_QRY_CMP_NE; break;
    case QT_TOK_EQ: return fail(p, QT_ESYNTAX, p->tok.start, "use '==' to compare with a number");
    default:
        return fail(p, QT_ESYNTAX, p->tok.start,
                    "expected a comparison: '>', '>=', '<', '<=', '==' or '!='");
    }
    int rc = next(p);
    if (rc == 0)
        rc = parse_number(p, &c->value, "a number to compare with");
    return rc;
}

/* `value` cond, shared by where and episodes (the keyword is consumed). */
static int
parse_value_cond(struct parser *p, struct qt_qry_cond *c, const char *stage)
{
    int rc = next(p);
    if (rc != 0)
        return rc;
    if (!is_word(p, "value"))
        return fail(p, QT_ESYNTAX, p->tok.start, "expected 'value' after '%s' (%s value > 150)",
                    stage, stage);
    if ((rc = next(p)) != 0)
        return rc;
    return parse_cond(p, c);
}

/* ---- aggregation ---------------------------------------------------------- */

/* Map a qt_tz_load() failure to a query error at the zone string. */
static int
tz_load_error(struct parser *p, int rc, long pos, const struct qt_qry_str *name)
{
    switch (rc) {
    case QT_ENOTFOUND:
        return fail(p, QT_ESYNTAX, pos, "unknown time zone \"%.*s\"", (int)name->len, name->p);
    case QT_ENOMEM: return fail(p, QT_ENOMEM, -1, "out of memory");
    default: break;
    }
    if (rc > -4096)
        return fail(p, rc, pos, "cannot read time zone \"%.*s\": %s", (int)name->len, name->p,
                    qt_strerror(rc));
    return fail(p, rc, pos, "time zone \"%.*s\" is not usable: %s", (int)name->len, name->p,
                qt_err_detail());
}

/* tz "Zone" after a bucket duration (the `tz` word is current). */
static int
parse_tz(struct parser *p, struct qt_qry_stage_agg *agg, long bucket_pos)
{
    struct qt_qry_internal *in = p->q->internal;
    int rc = next(p);
    if (rc != 0)
        return rc;
    if (!is_kind(p, QT_TOK_STRING))
        return fail(p, QT_ESYNTAX, p->tok.start,
                    "expected a zone name in quotes (tz \"Asia/Shanghai\")");
    if (agg->bucket_ns % QT_NS_PER_DAY != 0)
        return fail(p, QT_ESYNTAX, bucket_pos, "a bucket with tz must be whole days (1d, 7d, ...)");
    if (agg->bucket_ns / QT_NS_PER_DAY > QT_QUERY_TZ_BUCKET_DAYS_MAX)
        return fail(p, QT_ELIMIT, bucket_pos, "a bucket with tz is at most %u days",
                    QT_QUERY_TZ_BUCKET_DAYS_MAX);
    agg->bucket_days = (uint32_t)(agg->bucket_ns / QT_NS_PER_DAY);
    long pos = p->tok.start;
    if ((rc = take_string(p, &agg->tz_name, NULL)) != 0)
        return rc;
    if (!qt_tz_name_is_valid(agg->tz_name.p, agg->tz_name.len))
        return fail(p, QT_ESYNTAX, pos, "not a time zone name: \"%.*s\"", (int)agg->tz_name.len,
                    agg->tz_name.p);
    struct qt_tz *tz = NULL;
    rc = qt_tz_load(p->zoneinfo_dir, agg->tz_name.p, agg->tz_name.len, &tz);
    if (rc != 0)
        return tz_load_error(p, rc, pos, &agg->tz_name);
    qt_assert(in->zones_count < QRY_ZONES_MAX); /* one aggregation per query */
    in->zones[in->zones_count++] = tz;
    agg->tz = tz;
    return 0;
}

/* Refuse more buckets than QT_QUERY_BUCKETS_MAX over a bounded range. */
static int
check_buckets(struct parser *p, const struct qt_qry_stage_agg *agg, long pos)
{
    const struct qt_qry_range *r = &p->q->range;
    if (!r->bounded || agg->bucket_ns == 0)
        return 0;
    uint64_t span = (uint64_t)r->end.ns - (uint64_t)r->start.ns;
    /* +2: the range may start and end inside partial buckets. */
    uint64_t buckets = span / (uint64_t)agg->bucket_ns + 2;
    if (buckets > QT_QUERY_BUCKETS_MAX)
        return fail(p, QT_ELIMIT, pos, "more than %u buckets over the range; use a longer bucket",
                    QT_QUERY_BUCKETS_MAX);
    return 0;
}

/* by item {, item}: item = duration [tz "Zone"] | tag name (`by` is current). */
static int
parse_by(struct parser *p, struct qt_qry_stage_agg *agg)
{
    struct qt_qry_str tags[QT_QUERY_GROUP_TAGS_MAX];
    uint32_t n = 0;
    int rc = enter(p);
    for (bool more = true; rc == 0 && more;) {
        if ((rc = next(p)) != 0)
            return rc;
        long pos = p->tok.start;
        if (is_kind(p, QT_TOK_UNITNUM)) {
            if (agg->bucket_ns != 0)
                return fail(p, QT_ESYNTAX, pos, "only one time bucket per aggregation");
            if ((rc = parse_duration(p, &agg->bucket_ns, "a duration")) != 0)
                return rc;
            if (agg->bucket_ns == 0)
                return fail(p, QT_ESYNTAX, pos, "a time bucket must be longer than 0");
            if ((rc = check_buckets(p, agg, pos)) == 0 && is_word(p, "tz"))
                rc = parse_tz(p, agg, pos);
        } else {
            if (n == QT_QUERY_GROUP_TAGS_MAX)
                return fail(p, QT_ELIMIT, pos, "more than %u tags after 'by'",
                            QT_QUERY_GROUP_TAGS_MAX);
            if ((rc = parse_name(p, &tags[n], "a duration or a tag name after 'by'")) != 0)
                return rc;
            for (uint32_t i = 0; i < n; i++)
                if (str_cmp(&tags[i], &tags[n]) == 0)
                    return fail(p, QT_ESYNTAX, pos, "tag \"%.*s\" listed twice after 'by'",
                                (int)tags[n].len, tags[n].p);
            n++;
        }
        more = rc == 0 && is_kind(p, QT_TOK_COMMA);
    }
    if (rc != 0)
        return rc;
    struct qt_qry_str *t = qt_arena_array(p->arena, n, sizeof(*t));
    if (t == NULL)
        return fail_mem(p);
    if (n > 0)
        memcpy(t, tags, n * sizeof(*t));
    agg->tags = t;
    agg->tags_count = n;
    leave(p);
    return 0;
}

/* One function of an aggregation list, appended to fns[*n]. */
static int
parse_agg_fn(struct parser *p, struct qt_qry_agg *fns, uint32_t *n)
{
    long pos = p->tok.start;
    enum qt_qry_agg_fn fn = agg_lookup(p);
    if (fn == 0) {
        const char *hint = keyword_hint(p);
        if (hint != NULL)
            return fail(p, QT_ESYNTAX, pos, "keywords are lowercase: write '%s'", hint);
        return fail(p, QT_ESYNTAX, pos,
                    "expected an aggregation: count, sum, min, max, avg, first, last, stddev, "
                    "spread or percentile(p)");
    }
    if (*n == QT_QUERY_AGGS_MAX)
        return fail(p, QT_ELIMIT, pos, "more than %u aggregations", QT_QUERY_AGGS_MAX);
    struct qt_qry_agg a = {fn, 0.0};
    int rc = next(p);
    if (rc == 0 && fn == QT_QRY_AGG_PERCENTILE) {
        rc = expect(p, QT_TOK_LPAREN, "'(' after percentile: percentile(95)");
        long npos = p->tok.start;
        if (rc == 0 && (rc = parse_number(p, &a.p, "a percentile between 0 and 100")) == 0 &&
            !(a.p >= 0.0 && a.p <= 100.0))
            return fail(p, QT_ESYNTAX, npos, "a percentile must be between 0 and 100");
        a.p += 0.0; /* -0 is 0 */
        if (rc == 0)
            rc = expect(p, QT_TOK_RPAREN, "')'");
    }
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; i < *n; i++)
        if (fns[i].fn == a.fn && fns[i].p == a.p)
            return fail(p, QT_ESYNTAX, pos, "'%s' listed twice", agg_names[fn]);
    fns[(*n)++] = a;
    return 0;
}

/* fn {, fn} [by ...] */
static int
parse_agg(struct parser *p, struct qt_qry_stage_agg *agg)
{
    struct qt_qry_agg fns[QT_QUERY_AGGS_MAX];
    uint32_t n = 0;
    int rc = enter(p);
    for (bool more = true; rc == 0 && more;) {
        if ((rc = parse_agg_fn(p, fns, &n)) != 0)
            return rc;
        more = is_kind(p, QT_TOK_COMMA);
        if (more)
            rc = next(p);
    }
    if (rc != 0)
        return rc;
    struct qt_qry_agg *f = qt_arena_array(p->arena, n, sizeof(*f));
    if (f == NULL)
        return fail_mem(p);
    memcpy(f, fns, n * sizeof(*f));
    agg->fns = f;
    agg->fns_count = n;
    if (is_word(p, "by") && (rc = parse_by(p, agg)) != 0)
        return rc;
    leave(p);
    return 0;
}

/* ---- other stages --------------------------------------------------------- */

/* fill ( null | prev | linear | number ) */
static int
parse_fill(struct parser *p, struct qt_qry_stage *st)
{
    int rc = next(p);
    if (rc == 0)
        rc = expect(p, QT_TOK_LPAREN, "'(' after fill: fill(prev)");
    if (rc != 0)
        return rc;
    if (is_word(p, "null") || is_word(p, "prev") || is_word(p, "linear")) {
        st->u.fill.kind = is_word(p, "null")   ? QT_QRY_FILL_NULL
                          : is_word(p, "prev") ? QT_QRY_FILL_PREV
                                               : QT_QRY_FILL_LINEAR;
        rc = next(p);
    } else {
        st->u.fill.kind = QT_QRY_FILL_VALUE;
        rc = parse_number(p, &st->u.fill.value, "null, prev, linear or a number");
    }
    if (rc == 0)
        rc = expect(p, QT_TOK_RPAREN, "')'");
    return rc;
}

/* limit N, 1 <= N <= QT_QUERY_LIMIT_MAX */
static int
parse_limit(struct parser *p, struct qt_qry_stage *st)
{
    int rc = next(p);
    if (rc != 0)
        return rc;
    long pos = p->tok.start;
    if (!is_kind(p, QT_TOK_NUMBER))
        return fail(p, QT_ESYNTAX, pos, "expected a row count after limit");
    uint64_t v = 0;
    for (uint32_t i = p->tok.start; i < p->tok.end; i++) {
        char c = p->text[i];
        if (c < '0' || c > '9')
            return fail(p, QT_ESYNTAX, pos, "limit takes a whole number");
        if (v > QT_QUERY_LIMIT_MAX)
            break; /* already too large; keep scanning for non-digits */
        v = v * 10 + (uint64_t)(c - '0');
    }
    if (v == 0)
        return fail(p, QT_ESYNTAX, pos, "limit must be at least 1");
    if (v > QT_QUERY_LIMIT_MAX)
        return fail(p, QT_ELIMIT, pos, "limit is at most %u", QT_QUERY_LIMIT_MAX);
    st->u.limit = v;
    return next(p);
}

/* episodes value <cond> [for <duration>] */
static int
parse_episodes(struct parser *p, struct qt_qry_stage *st)
{
    int rc = parse_value_cond(p, &st->u.episodes.cond, "episodes");
    if (rc == 0 && is_word(p, "for") && (rc = next(p)) == 0)
        rc = parse_duration(p, &st->u.episodes.min_ns, "a duration after 'for' (for 10m)");
    return rc;
}

/* gaps (> | >=) <duration>, duration > 0 */
static int
parse_gaps(struct parser *p, struct qt_qry_stage *st)
{
    int rc = next(p);
    if (rc != 0)
        return rc;
    if (!is_kind(p, QT_TOK_GT) && !is_kind(p, QT_TOK_GE))
        return fail(p, QT_ESYNTAX, p->tok.start, "expected '>' or '>=' after gaps (gaps > 5m)");
    st->u.gaps.inclusive = is_kind(p, QT_TOK_GE);
    if ((rc = next(p)) != 0)
        return rc;
    long pos = p->tok.start;
    if ((rc = parse_duration(p, &st->u.gaps.min_ns, "a duration (gaps > 5m)")) != 0)
        return rc;
    if (st->u.gaps.min_ns == 0)
        return fail(p, QT_ESYNTAX, pos, "a gap must be longer than 0");
    return 0;
}

/* ---- stage order ---------------------------------------------------------- */

/* ORDER STAGES: names for messages. */
static const char *const stage_words[] = {
    NULL, "where", "rate", "delta", "aggregation", "fill", "last", "episodes", "gaps", "limit",
};

/* Is a `kind` stage allowed here?  The pipeline shape is
 *   (where | rate | delta)* [agg [fill] | last | episodes | gaps] [limit]
 * with at most one rate/delta; the message says what is wrong. */
static int
stage_check(struct parser *p, enum qt_qry_stage_kind kind, long pos)
{
    const char *w = stage_words[kind];
    switch (p->state) {
    case ST_LIMITED: return fail(p, QT_ESYNTAX, pos, "limit must be the last stage");
    case ST_CATALOG:
        if (kind == QT_QRY_STAGE_LIMIT)
            return 0;
        return fail(p, QT_ESYNTAX, pos, "catalog queries take only '| limit N'");
    case ST_TERMINAL:
        if (kind == QT_QRY_STAGE_LIMIT)
            return 0;
        return fail(p, QT_ESYNTAX, pos, "'%s' must be the last stage (only limit may follow)",
                    p->terminal_name);
    default: break;
    }
    if (kind == QT_QRY_STAGE_LIMIT)
        return 0;
    bool after_agg = p->state != ST_POINTS;
    if (kind == QT_QRY_STAGE_FILL) {
        if (p->state == ST_AGG_BUCKETS)
            return 0;
        if (p->state == ST_FILLED)
            return fail(p, QT_ESYNTAX, pos, "only one fill stage is allowed");
        return fail(p, QT_ESYNTAX, pos,
                    "fill must follow an aggregation with a time bucket (avg by 1h | fill(prev))");
    }
    if (kind == QT_QRY_STAGE_AGG && after_agg)
        return fail(p, QT_ESYNTAX, pos, "only one aggregation stage is allowed");
    if (after_agg &&
        (kind == QT_QRY_STAGE_LAST || kind == QT_QRY_STAGE_EPISODES || kind == QT_QRY_STAGE_GAPS))
        return fail(p, QT_ESYNTAX, pos,
                    "'%s' cannot follow an aggregation (only fill and limit can)", w);
    if (after_agg)
        return fail(p, QT_ESYNTAX, pos, "'%s' must come before the aggregation", w);
    if ((kind == QT_QRY_STAGE_RATE || kind == QT_QRY_STAGE_DELTA) && p->had_transform)
        return fail(p, QT_ESYNTAX, pos, "only one rate or delta stage is allowed");
    return 0;
}

/* The state after a valid stage st. */
static void
stage_advance(struct parser *p, const struct qt_qry_stage *st)
{
    switch (st->kind) {
    case QT_QRY_STAGE_RATE:
    case QT_QRY_STAGE_DELTA: p->had_transform = true; break;
    case QT_QRY_STAGE_AGG:
        p->state = st->u.agg.bucket_ns != 0 ? ST_AGG_BUCKETS : ST_AGG_PLAIN;
        break;
    case QT_QRY_STAGE_FILL: p->state = ST_FILLED; break;
    case QT_QRY_STAGE_LAST:
    case QT_QRY_STAGE_EPISODES:
    case QT_QRY_STAGE_GAPS:
        p->state = ST_TERMINAL;
        p->terminal_name = stage_words[st->kind];
        break;
    case QT_QRY_STAGE_LIMIT: p->state = ST_LIMITED; break;
    case QT_QRY_STAGE_WHERE: break;
    }
}

/* The stage the current identifier starts, or 0.  `last` alone (followed
 * by '|' or the end) is the per-series last stage; in a list or with `by`
 * it is the aggregation function. */
static enum qt_qry_stage_kind
stage_kind(const struct parser *p)
{
    static const enum qt_qry_stage_kind kinds[] = {
        QT_QRY_STAGE_WHERE,    QT_QRY_STAGE_RATE, QT_QRY_STAGE_DELTA, QT_QRY_STAGE_FILL,
        QT_QRY_STAGE_EPISODES, QT_QRY_STAGE_GAPS, QT_QRY_STAGE_LIMIT,
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (is_word(p, stage_words[kinds[i]]))
            return kinds[i];
    if (is_word(p, "last")) {
        enum qt_tok_kind k = peek_kind(p);
        if (k == QT_TOK_PIPE || k == QT_TOK_EOF)
            return QT_QRY_STAGE_LAST;
    }
    return agg_lookup(p) != 0 ? QT_QRY_STAGE_AGG : 0;
}

static int
parse_stage(struct parser *p, struct qt_qry_stage *st)
{
    int rc = enter(p);
    if (rc != 0)
        return rc;
    long pos = p->tok.start;
    enum qt_qry_stage_kind kind = p->tok.kind == QT_TOK_IDENT ? stage_kind(p) : 0;
    if (kind == 0) {
        const char *hint = keyword_hint(p);
        if (hint != NULL)
            return fail(p, QT_ESYNTAX, pos, "keywords are lowercase: write '%s'", hint);
        if (p->tok.kind == QT_TOK_IDENT)
            return fail(p, QT_ESYNTAX, pos, "unknown stage '%.*s'", echo_len(&p->tok),
                        p->text + p->tok.start);
        return fail(p, QT_ESYNTAX, pos,
                    "expected a stage after '|': where, rate, delta, an aggregation, fill, last, "
                    "episodes, gaps or limit");
    }
    if ((rc = stage_check(p, kind, pos)) != 0)
        return rc;
    memset(st, 0, sizeof(*st));
    st->kind = kind;
    st->pos = (uint32_t)pos;
    switch (kind) {
    case QT_QRY_STAGE_WHERE: rc = parse_value_cond(p, &st->u.where, "where"); break;
    case QT_QRY_STAGE_RATE:
    case QT_QRY_STAGE_DELTA:
    case QT_QRY_STAGE_LAST: rc = next(p); break;
    case QT_QRY_STAGE_AGG: rc = parse_agg(p, &st->u.agg); break;
    case QT_QRY_STAGE_FILL: rc = parse_fill(p, st); break;
    case QT_QRY_STAGE_EPISODES: rc = parse_episodes(p, st); break;
    case QT_QRY_STAGE_GAPS: rc = parse_gaps(p, st); break;
    case QT_QRY_STAGE_LIMIT: rc = parse_limit(p, st); break;
    }
    if (rc != 0)
        return rc;
    stage_advance(p, st);
    leave(p);
    return 0;
}

/* { `|` stage } into q->stages, then the planner shortcuts. */
static int
parse_stages(struct parser *p)
{
    struct qt_qry_stage tmp[QT_QUERY_STAGES_MAX];
    uint32_t n = 0;
    int rc = enter(p);
    while (rc == 0 && is_kind(p, QT_TOK_PIPE)) {
        if ((rc = next(p)) != 0)
            return rc;
        if (n == QT_QUERY_STAGES_MAX)
            return fail(p, QT_ELIMIT, p->tok.start, "more than %u stages", QT_QUERY_STAGES_MAX);
        rc = parse_stage(p, &tmp[n++]);
    }
    if (rc != 0)
        return rc;
    struct qt_qry_stage *st = qt_arena_array(p->arena, n, sizeof(*st));
    if (st == NULL)
        return fail_mem(p);
    if (n > 0)
        memcpy(st, tmp, n * sizeof(*st));
    struct qt_qry *q = p->q;
    q->stages = st;
    q->stages_count = n;
    for (uint32_t i = 0; i < n; i++) {
        if (st[i].kind == QT_QRY_STAGE_AGG)
            q->agg = &st[i];
        if (st[i].kind == QT_QRY_STAGE_LAST || st[i].kind == QT_QRY_STAGE_EPISODES ||
            st[i].kind == QT_QRY_STAGE_GAPS)
            q->terminal = &st[i];
        if (st[i].kind == QT_QRY_STAGE_LIMIT)
            q->limit = st[i].u.limit;
    }
    leave(p);
    return 0;
}

/* ---- queries -------------------------------------------------------------- */

/* Catalog keyword at the start (not followed by '.', which would make it a
 * measurement name), or 0. */
static enum qt_qry_kind
catalog_kind(const struct parser *p)
{
    static const struct {
        const char *word;
        enum qt_qry_kind kind;
    } words[] = {
        {"measurements", QT_QRY_MEASUREMENTS},
        {"fields", QT_QRY_FIELDS},
        {"tags", QT_QRY_TAGS},
        {"values", QT_QRY_VALUES},
        {"series", QT_QRY_SERIES},
    };
    if (p->tok.kind != QT_TOK_IDENT || peek_kind(p) == QT_TOK_DOT)
        return 0;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (is_word(p, words[i].word))
            return words[i].kind;
    return 0;
}

/* An optional catalog target: name [. name] [matchers] | matchers. */
static int
parse_target(struct parser *p, bool field_allowed)
{
    if (!is_kind(p, QT_TOK_IDENT) && !is_kind(p, QT_TOK_STRING) && !is_kind(p, QT_TOK_LBRACE))
        return 0;
    if (!field_allowed && !is_kind(p, QT_TOK_LBRACE) && peek_kind(p) == QT_TOK_DOT) {
        struct qt_tok t = p->tok;
        size_t err_pos;
        if (qt_lex_next(p->text, p->len, t.end, &t, &err_pos) == 0)
            return fail(p, QT_ESYNTAX, t.start,
                        "fields lists the fields of a measurement: name only the measurement");
    }
    return parse_selector(p, &p->q->sel, SEL_TARGET);
}

/* measurements [matchers] | (fields | tags | series) [target]
 * | values name [in target], then [| limit N]. */
static int
parse_catalog(struct parser *p, enum qt_qry_kind kind)
{
    int rc = enter(p);
    if (rc == 0)
        rc = next(p);
    if (rc != 0)
        return rc;
    p->q->kind = kind;
    if (kind == QT_QRY_MEASUREMENTS) {
        if (is_kind(p, QT_TOK_LBRACE))
            rc = parse_matchers(p, &p->q->sel);
    } else if (kind == QT_QRY_VALUES) {
        rc = parse_name(p, &p->q->tag_key, "a tag name after values (values district)");
        if (rc == 0 && is_word(p, "in")) {
            if ((rc = next(p)) == 0 && !is_kind(p, QT_TOK_IDENT) && !is_kind(p, QT_TOK_STRING) &&
                !is_kind(p, QT_TOK_LBRACE))
                return fail(p, QT_ESYNTAX, p->tok.start,
                            "expected a measurement or '{' after 'in'");
            if (rc == 0)
                rc = parse_target(p, true);
        }
    } else {
        rc = parse_target(p, kind != QT_QRY_FIELDS);
    }
    if (rc != 0)
        return rc;
    p->state = ST_CATALOG;
    if ((rc = parse_stages(p)) != 0)
        return rc;
    leave(p);
    return 0;
}

/* selector [range] stages */
static int
parse_data(struct parser *p)
{
    int rc = enter(p);
    if (rc != 0)
        return rc;
    p->q->kind = QT_QRY_DATA;
    if ((rc = parse_selector(p, &p->q->sel, SEL_DATA)) != 0)
        return rc;
    if (is_kind(p, QT_TOK_LBRACKET) && (rc = parse_range(p)) != 0)
        return rc;
    p->state = ST_POINTS;
    if ((rc = parse_stages(p)) != 0)
        return rc;
    leave(p);
    return 0;
}

static int
parse_query(struct parser *p)
{
    int rc = enter(p);
    if (rc == 0)
        rc = next(p);
    if (rc != 0)
        return rc;
    if (is_kind(p, QT_TOK_EOF))
        return fail(p, QT_ESYNTAX, p->tok.start, "empty query");
    enum qt_qry_kind kind = catalog_kind(p);
    rc = kind != 0 ? parse_catalog(p, kind) : parse_data(p);
    if (rc != 0)
        return rc;
    if (!is_kind(p, QT_TOK_EOF)) {
        const struct qt_qry *q = p->q;
        if (q->kind == QT_QRY_DATA && !q->range.bounded && q->stages_count == 0)
            return fail(p, QT_ESYNTAX, p->tok.start, "expected '[', '|' or end of query");
        return fail(p, QT_ESYNTAX, p->tok.start, "expected '|' or end of query");
    }
    leave(p);
    return 0;
}

/* Offset of the first byte that is not valid UTF-8 (overlong forms,
 * surrogates and code points above U+10FFFF are invalid), or len. */
static size_t
utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        if (n == 0 || len - i < n)
            return i;
        uint32_t cp = n == 1 ? c : c & (0x7fu >> n);
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n;
    }
    return len;
}

/* A new empty query with its arena; NULL when out of memory. */
static struct qt_qry *
qry_create(int64_t now_ns)
{
    struct qt_qry_internal *in = qt_calloc(1, sizeof(*in));
    if (in == NULL)
        return NULL;
    qt_arena_init(&in->arena, QRY_ARENA_CHUNK, QT_QUERY_ARENA_MAX);
    struct qt_qry *q = qt_arena_alloc(&in->arena, sizeof(*q));
    if (q == NULL) {
        qt_free_sized(in, sizeof(*in));
        return NULL;
    }
    q->internal = in;
    q->now_ns = now_ns;
    q->range.start.ns = INT64_MIN;
    q->range.end.ns = INT64_MAX;
    return q;
}

int
qt_qry_parse_opts(const char *text, size_t len, int64_t now_ns, const struct qt_qry_opts *opts,
                  struct qt_qry **out, struct qt_qry_error *err)
{
    qt_assert(out != NULL);
    qt_assert(text != NULL || len == 0);
    struct qt_qry_error local;
    struct parser p = {.text = text != NULL ? text : "", .len = len};
    p.err = err != NULL ? err : &local;
    memset(p.err, 0, sizeof(*p.err));
    p.err->position = -1;
    *out = NULL;
    if (len > QT_QUERY_TEXT_MAX)
        return fail(&p, QT_ELIMIT, -1, "query longer than %u bytes", QT_QUERY_TEXT_MAX);
    size_t bad = utf8_invalid_at((const unsigned char *)p.text, len);
    if (bad != len)
        return fail(&p, QT_ESYNTAX, (long)bad, "invalid UTF-8");
    p.q = qry_create(now_ns);
    if (p.q == NULL)
        return fail(&p, QT_ENOMEM, -1, "out of memory");
    p.arena = &p.q->internal->arena;
    p.zoneinfo_dir = opts != NULL ? opts->zoneinfo_dir : NULL;
    p.depth_max = QT_QUERY_DEPTH_MAX; /* options may only lower it */
    if (opts != NULL && opts->depth_max != 0 && opts->depth_max < QT_QUERY_DEPTH_MAX)
        p.depth_max = opts->depth_max;
    int rc = parse_query(&p);
    pcre2_compile_context_free(p.re_cctx);
    pcre2_general_context_free(p.re_gctx);
    if (rc != 0) {
        qt_qry_free(p.q);
        return rc;
    }
    qt_assert(p.depth == 0);
    *out = p.q;
    return 0;
}

int
qt_qry_parse(const char *text, size_t len, int64_t now_ns, struct qt_qry **out,
             struct qt_qry_error *err)
{
    return qt_qry_parse_opts(text, len, now_ns, NULL, out, err);
}

void
qt_qry_free(struct qt_qry *q)
{
    if (q == NULL)
        return;
    struct qt_qry_internal *in = q->internal; /* q itself lives in the arena */
    qt_assert(in != NULL);
    qt_assert(in->codes_count <= QT_QUERY_MATCHERS_MAX);
    for (uint32_t i = 0; i < in->codes_count; i++)
        pcre2_code_free(in->codes[i]);
    for (uint32_t i = 0; i < in->zones_count; i++)
        qt_tz_free(in->zones[i]);
    qt_arena_deinit(&in->arena);
    qt_free_sized(in, sizeof(*in));
}
