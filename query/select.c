/*
 * select.c -- selector -> sorted series list (contract in select.h).
 *
 * Per measurement (the named one, or each in turn for a catalog target
 * without one): regex matchers become `in` lists of the tag values their
 * pattern accepts (or a post-filter when the list would be too long), the
 * catalog intersects the postings, and the post-filters run over the
 * candidates.  The union is sorted by series key.
 *
 * Invariants: every series returned satisfies every matcher under the
 * query's semantics; at most ctx->series_max series are held; every byte
 * held beyond the call's locals is charged to ctx.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "select.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"

/* One regex matcher resolved against a measurement's tag values. */
struct sel_re {
    struct qt_strlist *values; /* distinct values of the key (catalog listing) */
    struct qt_str *allowed;    /* values whose series match, sorted; may hold "" */
    uint32_t nallowed;
    bool post; /* too many to pass as `in`: filter candidates instead */
};

struct sel_ctx {
    struct qt_qctx *ctx;
    struct qt_catalog *cat;
    const struct qt_qry_selector *sel;
    pcre2_general_context *gc;
    pcre2_match_context *mc;
    struct qt_sel *out;
    uint32_t cap;
};

static void *
sel_pcre_malloc(PCRE2_SIZE n, void *arg)
{
    (void)arg;
    return qt_malloc(n);
}

static void
sel_pcre_free(void *p, void *arg)
{
    (void)arg;
    qt_free(p);
}

static struct qt_str
qs(struct qt_qry_str s)
{
    return (struct qt_str){s.p, s.len};
}

static int
str_cmp(const void *a, const void *b)
{
    return qt_serieskey_cmp(*(const struct qt_str *)a, *(const struct qt_str *)b);
}

/* 1 when the query regex of m accepts v[0..len), 0 if not, <0 error. */
static int
sel_re_match(struct sel_ctx *x, const struct qt_qry_matcher *m, pcre2_match_data *md,
             const char *v, uint32_t len)
{
    static const char empty[1];
    int rc = pcre2_match((const pcre2_code *)m->re, (PCRE2_SPTR)(len > 0 ? v : empty), len, 0, 0,
                         md, x->mc);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc == PCRE2_ERROR_NOMEMORY)
        return qt_qctx_fail(x->ctx, QT_ENOMEM, "selection: out of memory (regex)");
    return qt_qctx_fail(x->ctx, QT_ELIMIT, "regex for tag \"%.64s\" exceeded its match limit",
                        m->key.p);
}

/* Resolve regex matcher m against the values of its key in measurement. */
static int
sel_re_resolve(struct sel_ctx *x, const struct qt_qry_matcher *m, struct qt_str meas,
               struct sel_re *r)
{
    int rc = qt_catalog_list_tag_values(x->cat, qs(m->key), &meas, &r->values);
    if (rc != 0)
        return qt_qctx_fail_storage(x->ctx, rc, "selection");
    pcre2_match_data *md = pcre2_match_data_create_from_pattern((const pcre2_code *)m->re, x->gc);
    r->allowed = qt_malloc(((size_t)r->values->n + 1) * sizeof(*r->allowed));
    if (md == NULL || r->allowed == NULL) {
        pcre2_match_data_free(md);
        return qt_qctx_fail(x->ctx, QT_ENOMEM, "selection: out of memory");
    }
    bool want = m->op == QT_QRY_MATCH_RE;
    rc = sel_re_match(x, m, md, "", 0);
    if (rc >= 0 && (rc == 1) == want)
        r->allowed[r->nallowed++] = (struct qt_str){"", 0};
    for (uint32_t i = 0; rc >= 0 && i < r->values->n; i++) {
        struct qt_str v = r->values->items[i];
        rc = sel_re_match(x, m, md, v.p, v.len);
        if (rc >= 0 && (rc == 1) == want)
            r->allowed[r->nallowed++] = v;
        if ((i & 1023) == 1023 && rc >= 0)
            rc = qt_qctx_check_deadline(x->ctx);
    }
    pcre2_match_data_free(md);
    if (rc < 0)
        return rc;
    r->post = r->nallowed > QT_CATALOG_IN_VALUES_MAX;
    return 0; /* "" first, then the listing's sorted order: allowed is sorted */
}

static void
sel_re_free(struct sel_re *r)
{
    qt_catalog_strlist_free(r->values);
    qt_free(r->allowed);
    memset(r, 0, sizeof(*r));
}

/* Query matcher -> catalog matcher (non-regex, or regex as `in`).  An
 * `in` list is copied into vals (room for its values_count entries). */
static struct qt_tag_matcher
sel_matcher(const struct qt_qry_matcher *m, const struct sel_re *r, struct qt_str *vals)
{
    struct qt_tag_matcher t = {.key = qs(m->key), .value = qs(m->value)};
    switch (m->op) {
    case QT_QRY_MATCH_EQ: t.op = QT_MATCH_EQ; break;
    case QT_QRY_MATCH_NE: t.op = QT_MATCH_NE; break;
    case QT_QRY_MATCH_IN:
        qt_assert(m->values_count <= QT_QUERY_IN_MAX);
        for (uint32_t i = 0; i < m->values_count; i++)
            vals[i] = qs(m->values[i]);
        t.op = QT_MATCH_IN;
        t.values = vals;
        t.nvalues = m->values_count;
        break;
    default:
        t.op = QT_MATCH_IN;
        t.values = r->allowed;
        t.nvalues = r->nallowed;
        break;
    }
    return t;
}

static int
sel_append(struct sel_ctx *x, uint32_t sid)
{
    struct qt_sel *o = x->out;
    if (o->n == x->cap) {
        uint32_t cap = x->cap == 0 ? 64 : x->cap * 2;
        int rc = qt_qctx_charge(x->ctx, (size_t)(cap - x->cap) * sizeof(*o->v));
        if (rc != 0)
            return rc;
        struct qt_sel_series *v = qt_realloc(o->v, (size_t)cap * sizeof(*v));
        if (v == NULL)
            return qt_qctx_fail(x->ctx, QT_ENOMEM, "selection: out of memory");
        o->charged += (size_t)(cap - x->cap) * sizeof(*v);
        o->v = v;
        x->cap = cap;
    }
    struct qt_catalog_series si;
    int rc = qt_catalog_series_info(x->cat, sid, &si);
    if (rc != 0)
        return qt_qctx_fail_storage(x->ctx, rc, "selection");
    o->v[o->n++] = (struct qt_sel_series){.sid = sid, .vtype = si.vtype, .key = si.key,
                                          .key_len = si.key_len, .group_len = si.group_len};
    return 0;
}

/* True when series sid passes every post-filter regex. */
static int
sel_post_ok(struct sel_ctx *x, const struct sel_re *res, uint32_t sid, uint8_t *scratch,
            struct qt_serieskey *k)
{
    struct qt_catalog_series si;
    int rc = qt_catalog_series_info(x->cat, sid, &si);
    struct qt_sel_series s = {.sid = sid, .key = si.key, .group_len = si.group_len};
    if (rc == 0)
        rc = qt_sel_tags(&s, scratch, k);
    if (rc != 0)
        return qt_qctx_fail_storage(x->ctx, rc, "selection");
    for (uint32_t i = 0; i < x->sel->matchers_count; i++) {
        if (!res[i].post)
            continue;
        struct qt_str v = qt_sel_tag_value(k, qs(x->sel->matchers[i].key));
        if (bsearch(&v, res[i].allowed, res[i].nallowed, sizeof(v), str_cmp) == NULL)
            return 0;
    }
    return 1;
}

/* The series of one measurement that satisfy every matcher. */
static int
sel_measurement(struct sel_ctx *x, struct qt_str meas, struct sel_re *res, struct qt_str *vals)
{
    const struct qt_qry_selector *sel = x->sel;
    struct qt_tag_matcher tm[QT_QUERY_MATCHERS_MAX];
    uint32_t nm = 0, npost = 0, voff = 0;
    int rc = 0;
    qt_assert(sel->matchers_count <= QT_QUERY_MATCHERS_MAX);
    for (uint32_t i = 0; i < sel->matchers_count && rc == 0; i++) {
        const struct qt_qry_matcher *m = &sel->matchers[i];
        if (m->op == QT_QRY_MATCH_RE || m->op == QT_QRY_MATCH_NRE) {
            if ((rc = sel_re_resolve(x, m, meas, &res[i])) != 0)
                break;
            if (res[i].nallowed == 0)
                return 0; /* no value passes: nothing of this measurement */
            npost += res[i].post;
            if (res[i].post)
                continue;
        }
        tm[nm++] = sel_matcher(m, &res[i], vals + voff);
        voff += m->op == QT_QRY_MATCH_IN ? m->values_count : 0;
    }
    if (rc != 0)
        return rc;
    struct qt_str field = qs(sel->field);
    uint32_t *sids = NULL, n = 0;
    uint32_t room = x->ctx->series_max - x->out->n;
    rc = qt_catalog_select(x->cat, meas, sel->field.len > 0 ? &field : NULL, tm, nm, room, &sids,
                           &n);
    if (rc == QT_ELIMIT)
        return qt_qctx_fail(x->ctx, rc, "query selects more than %u series (series_max)",
                            x->ctx->series_max);
    if (rc != 0)
        return qt_qctx_fail_storage(x->ctx, rc, "selection");
    uint8_t *scratch = npost > 0 ? qt_malloc(QT_SERIES_KEY_MAX) : NULL;
    struct qt_serieskey *k = npost > 0 ? qt_malloc(sizeof(*k)) : NULL;
    if (npost > 0 && (scratch == NULL || k == NULL))
        rc = qt_qctx_fail(x->ctx, QT_ENOMEM, "selection: out of memory");
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        int ok = npost > 0 ? sel_post_ok(x, res, sids[i], scratch, k) : 1;
        rc = ok < 0 ? ok : ok == 0 ? 0 : sel_append(x, sids[i]);
    }
    qt_free(scratch);
    qt_free(k);
    qt_free(sids);
    return rc;
}

static int
sel_series_cmp(const void *a, const void *b)
{
    const struct qt_sel_series *x = a, *y = b;
    return qt_serieskey_cmp((struct qt_str){(const char *)x->key, x->key_len},
                            (struct qt_str){(const char *)y->key, y->key_len});
}

/* Run the selection over one measurement, with per-measurement regex state. */
static int
sel_one(struct sel_ctx *x, struct qt_str meas, struct qt_str *vals)
{
    struct sel_re res[QT_QUERY_MATCHERS_MAX];
    memset(res, 0, sizeof(res));
    int rc = sel_measurement(x, meas, res, vals);
    for (uint32_t i = 0; i < x->sel->matchers_count; i++)
        sel_re_free(&res[i]);
    return rc;
}

int
qt_sel_run(struct qt_qctx *ctx, struct qt_catalog *cat, const struct qt_qry_selector *sel,
           struct qt_sel *out)
{
    qt_assert(ctx != NULL && cat != NULL);
    qt_assert(sel->matchers_count <= QT_QUERY_MATCHERS_MAX);
    memset(out, 0, sizeof(*out));
    struct sel_ctx x = {.ctx = ctx, .cat = cat, .sel = sel, .out = out};
    x.gc = pcre2_general_context_create(sel_pcre_malloc, sel_pcre_free, NULL);
    x.mc = x.gc != NULL ? pcre2_match_context_create(x.gc) : NULL;
    size_t nvals = 1; /* copies of the `in` lists as catalog strings */
    for (uint32_t i = 0; i < sel->matchers_count; i++)
        nvals += sel->matchers[i].op == QT_QRY_MATCH_IN ? sel->matchers[i].values_count : 0;
    struct qt_str *vals = qt_malloc(nvals * sizeof(*vals));
    int rc = x.mc == NULL || vals == NULL
                 ? qt_qctx_fail(ctx, QT_ENOMEM, "selection: out of memory")
                 : 0;
    if (rc == 0)
        pcre2_set_match_limit(x.mc, QT_QRY_REGEX_MATCH_LIMIT);
    if (rc == 0 && sel->measurement.len > 0) {
        rc = sel_one(&x, qs(sel->measurement), vals);
    } else if (rc == 0) {
        struct qt_strlist *ms = NULL;
        rc = qt_catalog_list_measurements(cat, &ms);
        if (rc != 0)
            rc = qt_qctx_fail_storage(ctx, rc, "selection");
        for (uint32_t i = 0; rc == 0 && i < ms->n; i++)
            rc = sel_one(&x, ms->items[i], vals);
        qt_catalog_strlist_free(ms);
    }
    qt_free(vals);
    pcre2_match_context_free(x.mc);
    pcre2_general_context_free(x.gc);
    if (rc == 0 && out->n > ctx->series_max)
        rc = qt_qctx_fail(ctx, QT_ELIMIT, "query selects more than %u series (series_max)",
                          ctx->series_max);
    if (rc != 0) {
        qt_sel_free(ctx, out);
        return rc;
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), sel_series_cmp);
    return 0;
}

void
qt_sel_free(struct qt_qctx *ctx, struct qt_sel *s)
{
    qt_free(s->v);
    qt_qctx_release(ctx, s->charged);
    memset(s, 0, sizeof(*s));
}

int
qt_sel_tags(const struct qt_sel_series *s, uint8_t *scratch, struct qt_serieskey *k)
{
    qt_assert(s->group_len <= QT_SERIES_KEY_MAX);
    return qt_serieskey_parse(s->key, s->group_len, false, scratch, QT_SERIES_KEY_MAX, k);
}

struct qt_str
qt_sel_tag_value(const struct qt_serieskey *k, struct qt_str key)
{
    qt_assert(k->ntags <= QT_TAGS_MAX);
    for (uint32_t i = 0; i < k->ntags; i++)
        if (k->tags[i].key.len == key.len && memcmp(k->tags[i].key.p, key.p, key.len) == 0)
            return k->tags[i].value;
    return (struct qt_str){"", 0};
}
