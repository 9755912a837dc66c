/*
 * fuzz_query.c -- the query parser on arbitrary bytes.
 *
 * Oracle: parsing never crashes or leaks; a failure fills the error
 * (code, position within the text, message) and both renderings stay
 * within their buffers; a success satisfies the AST invariants qparse.h
 * promises, and parse -> print -> parse -> print is a fixed point (the
 * second print equals the first).  The printed text of an input of n bytes
 * is at most 2n + 1024 bytes (escapes and canonical spacing), so inputs up
 * to QT_QUERY_TEXT_MAX / 2 - 512 must always re-parse.
 */
#include "format/qt_limits.h"
#include "query/qparse.h"
#include "query/qprint.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW_NS 1794787200000000000ll /* 2026-11-16T00:00:00Z */

static void
die(const char *why, const char *text, size_t len)
{
    fprintf(stderr, "fuzz_query: %s\ninput: %.*s\n", why, (int)len, text);
    abort();
}

static int
str_cmp(const struct qt_qry_str *a, const struct qt_qry_str *b)
{
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = n > 0 ? memcmp(a->p, b->p, n) : 0;
    return c != 0 ? c : (a->len > b->len) - (a->len < b->len);
}

/* The normal-form and validity promises of qparse.h. */
static const char *
check_ast(const struct qt_qry *q)
{
    const struct qt_qry_selector *s = &q->sel;
    if (q->kind == QT_QRY_DATA && (s->measurement.len == 0 || s->field.len == 0))
        return "data query without measurement.field";
    for (uint32_t i = 0; i < s->matchers_count; i++) {
        const struct qt_qry_matcher *m = &s->matchers[i];
        if (i > 0 && str_cmp(&s->matchers[i - 1].key, &m->key) > 0)
            return "matchers not sorted";
        if ((m->op == QT_QRY_MATCH_RE || m->op == QT_QRY_MATCH_NRE) != (m->re != NULL))
            return "regex not compiled";
        for (uint32_t j = 1; m->op == QT_QRY_MATCH_IN && j < m->values_count; j++)
            if (str_cmp(&m->values[j - 1], &m->values[j]) >= 0)
                return "in list not sorted and unique";
        if (m->op == QT_QRY_MATCH_IN && m->values_count < 2)
            return "in list with fewer than 2 values";
    }
    if (q->range.bounded && q->range.start.ns >= q->range.end.ns)
        return "empty range";
    int phase = 0, transforms = 0; /* 0 points, 1 agg, 2 fill, 3 terminal, 4 limit */
    for (uint32_t i = 0; i < q->stages_count; i++) {
        const struct qt_qry_stage *st = &q->stages[i];
        if (q->kind != QT_QRY_DATA && st->kind != QT_QRY_STAGE_LIMIT)
            return "catalog query with a stage other than limit";
        switch (st->kind) {
        case QT_QRY_STAGE_WHERE:
            if (phase != 0)
                return "where after agg";
            break;
        case QT_QRY_STAGE_RATE:
        case QT_QRY_STAGE_DELTA:
            if (phase != 0 || ++transforms > 1)
                return "bad rate/delta";
            break;
        case QT_QRY_STAGE_AGG:
            if (phase != 0 || st->u.agg.fns_count == 0 || st->u.agg.fns_count > QT_QUERY_AGGS_MAX)
                return "bad aggregation";
            if (st->u.agg.tz_name.len > 0 && (st->u.agg.tz == NULL || st->u.agg.bucket_days == 0))
                return "tz not loaded";
            phase = 1;
            break;
        case QT_QRY_STAGE_FILL:
            if (phase != 1 || q->stages[i - 1].u.agg.bucket_ns == 0)
                return "fill without buckets";
            phase = 2;
            break;
        case QT_QRY_STAGE_LIMIT:
            if (phase == 4 || st->u.limit == 0 || st->u.limit > QT_QUERY_LIMIT_MAX)
                return "bad limit";
            phase = 4;
            break;
        default:
            if (phase != 0)
                return "terminal after agg";
            phase = 3;
        }
    }
    return NULL;
}

static void
check_error(const struct qt_qry_error *err, int rc, const char *text, size_t len)
{
    static char buf[512];
    if (err->code != rc || rc == 0)
        die("error code mismatch", text, len);
    if (err->position < -1 || err->position > (int64_t)len)
        die("error position outside the text", text, len);
    size_t mlen = strnlen(err->message, sizeof(err->message));
    if (mlen == 0 || mlen == sizeof(err->message))
        die("error message empty or unterminated", text, len);
    size_t cap = (len * 7 + mlen) % sizeof(buf); /* some truncated, some not */
    size_t n = qt_qry_error_render_caret(err, text, len, buf, cap);
    if (cap > 0 && strlen(buf) != (n < cap ? n : cap - 1))
        die("caret rendering length", text, len);
    n = qt_qry_error_json(err, buf, sizeof(buf));
    if (n >= sizeof(buf) || strlen(buf) != n || buf[0] != '{' || buf[n - 1] != '}')
        die("json rendering", text, len);
}

/* Print q into a new buffer (caller frees). */
static char *
print_alloc(const struct qt_qry *q, size_t *len)
{
    size_t n = qt_qry_print(q, NULL, 0);
    char *buf = malloc(n + 1);
    if (buf == NULL)
        abort();
    if (qt_qry_print(q, buf, n + 1) != n || strlen(buf) != n)
        abort();
    *len = n;
    return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    if (size > QT_QUERY_TEXT_MAX + 64)
        return 0;
    struct qt_qry *q = NULL, *q2 = NULL;
    struct qt_qry_error err;
    int rc = qt_qry_parse(text, size, FUZZ_NOW_NS, &q, &err);
    if (rc != 0) {
        if (q != NULL)
            die("failed parse returned a query", text, size);
        check_error(&err, rc, text, size);
        return 0;
    }
    const char *why = check_ast(q);
    if (why != NULL)
        die(why, text, size);
    size_t n1, n2;
    char *p1 = print_alloc(q, &n1);
    if (n1 > 2 * size + 1024)
        die("printed text longer than 2n + 1024", text, size);
    if (n1 <= QT_QUERY_TEXT_MAX) {
        rc = qt_qry_parse(p1, n1, FUZZ_NOW_NS, &q2, &err);
        if (rc != 0) {
            fprintf(stderr, "printed: %s\nerror: %s at %d\n", p1, err.message, err.position);
            die("printed query does not parse", text, size);
        }
        char *p2 = print_alloc(q2, &n2);
        if (n1 != n2 || memcmp(p1, p2, n1) != 0) {
            fprintf(stderr, "first:  %s\nsecond: %s\n", p1, p2);
            die("print is not a fixed point", text, size);
        }
        free(p2);
        qt_qry_free(q2);
    }
    /* Truncated printing must still be a NUL-terminated prefix. */
    char small[16];
    size_t cap = size % sizeof(small);
    if (qt_qry_print(q, small, cap) != n1 || (cap > 0 && strncmp(small, p1, cap - 1) != 0))
        die("truncated print", text, size);
    free(p1);
    qt_qry_free(q);
    return 0;
}
