/*
 * catq.c -- catalog queries (contract in catq.h).
 *
 * Listings the catalog keeps (measurements, a measurement's fields, tag
 * keys, tag values) are served from it directly; anything narrowed by a
 * field or matchers selects the series (select.h) and collects the names
 * from their keys into a sorted, de-duplicated set.
 *
 * Invariant: rows come out sorted bytewise (qt_serieskey_cmp) and unique;
 * the name set's bytes are charged to the query.
 */
#include "catq.h"

#include <stdlib.h>
#include <string.h>

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "query/select.h"

/* A growing set of copied names, sorted and de-duplicated at the end. */
struct nameset {
    struct qt_qctx *ctx;
    struct qt_str *v;
    uint32_t n, cap;
    char *bytes; /* copies live in chunks chained through their first word */
    size_t used, room;
    size_t charged;
};

static int
ns_add(struct nameset *s, struct qt_str name)
{
    if (s->n == s->cap) {
        uint32_t cap = s->cap == 0 ? 64 : s->cap * 2;
        int rc = qt_qctx_charge(s->ctx, (size_t)(cap - s->cap) * sizeof(*s->v));
        struct qt_str *v = rc == 0 ? qt_realloc(s->v, (size_t)cap * sizeof(*v)) : NULL;
        if (rc == 0 && v == NULL)
            rc = qt_qctx_fail(s->ctx, QT_ENOMEM, "catalog query: out of memory");
        if (rc != 0)
            return rc;
        s->charged += (size_t)(cap - s->cap) * sizeof(*v);
        s->v = v;
        s->cap = cap;
    }
    if (name.len > s->room) { /* new chunk; the old one stays reachable through the chain */
        size_t sz = sizeof(char *) + (name.len > 65536 ? name.len : 65536);
        int rc = qt_qctx_charge(s->ctx, sz);
        char *c = rc == 0 ? qt_malloc(sz) : NULL;
        if (rc == 0 && c == NULL)
            rc = qt_qctx_fail(s->ctx, QT_ENOMEM, "catalog query: out of memory");
        if (rc != 0)
            return rc;
        s->charged += sz;
        memcpy(c, &s->bytes, sizeof(char *));
        s->bytes = c;
        s->used = sizeof(char *);
        s->room = sz - sizeof(char *);
    }
    char *p = s->bytes + s->used;
    if (name.len > 0)
        memcpy(p, name.p, name.len);
    s->used += name.len;
    s->room -= name.len;
    s->v[s->n++] = (struct qt_str){p, name.len};
    return 0;
}

static void
ns_free(struct nameset *s)
{
    while (s->bytes != NULL) {
        char *next;
        memcpy(&next, s->bytes, sizeof(char *));
        qt_free(s->bytes);
        s->bytes = next;
    }
    qt_free(s->v);
    qt_qctx_release(s->ctx, s->charged);
    memset(s, 0, sizeof(*s));
}

static int
str_cmp(const void *a, const void *b)
{
    return qt_serieskey_cmp(*(const struct qt_str *)a, *(const struct qt_str *)b);
}

/* Write the sorted names items[0..n) (skipping repeats) as one column. */
static int
emit_names(struct qt_res *w, const char *col, const struct qt_str *items, uint32_t n)
{
    struct qt_res_col c = {.name = {col, (uint32_t)strlen(col)}, .kind = QT_RES_COL_TEXT};
    int rc = qt_res_begin(w, &c, 1);
    for (uint32_t i = 0; i < n && rc == 0 && !qt_res_full(w); i++) {
        if (i > 0 && qt_serieskey_cmp(items[i - 1], items[i]) == 0)
            continue;
        struct qt_cell cell = {.kind = QT_CELL_STR, .u.s = items[i]};
        rc = qt_res_row(w, &cell);
    }
    return rc;
}

static int
emit_set(struct qt_res *w, const char *col, struct nameset *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(*s->v), str_cmp);
    return emit_names(w, col, s->v, s->n);
}

static int
emit_list(struct qt_qctx *ctx, struct qt_res *w, int rc, struct qt_strlist *l)
{
    if (rc != 0)
        return qt_qctx_fail_storage(ctx, rc, "catalog query");
    rc = emit_names(w, "name", l->items, l->n);
    qt_catalog_strlist_free(l);
    return rc;
}

static struct qt_str
qs(struct qt_qry_str s)
{
    return (struct qt_str){s.p, s.len};
}

enum collect_what { C_MEAS, C_FIELD, C_TAGKEY, C_TAGVALUE };

/* Add the names `what` of series s (tag value of `key` for C_TAGVALUE). */
static int
collect_one(struct qt_qctx *ctx, struct qt_catalog *cat, const struct qt_sel_series *s,
            enum collect_what what, struct qt_str key, struct nameset *set, uint8_t *scratch,
            struct qt_serieskey *k)
{
    if (what == C_FIELD) {
        struct qt_catalog_series si;
        int rc = qt_catalog_series_info(cat, s->sid, &si);
        return rc != 0 ? qt_qctx_fail_storage(ctx, rc, "catalog query") : ns_add(set, si.field);
    }
    int rc = qt_sel_tags(s, scratch, k);
    if (rc != 0)
        return qt_qctx_fail_storage(ctx, rc, "catalog query: series key");
    if (what == C_MEAS)
        return ns_add(set, k->measurement);
    if (what == C_TAGVALUE) {
        struct qt_str v = qt_sel_tag_value(k, key);
        return v.len > 0 ? ns_add(set, v) : 0;
    }
    for (uint32_t i = 0; i < k->ntags && rc == 0; i++)
        rc = ns_add(set, k->tags[i].key);
    return rc;
}

/* Select the target's series and list their names of kind `what`. */
static int
collect(struct qt_qctx *ctx, struct qt_catalog *cat, const struct qt_qry_selector *sel,
        enum collect_what what, struct qt_str key, struct qt_res *w, uint64_t *series)
{
    struct qt_sel s;
    int rc = qt_sel_run(ctx, cat, sel, &s);
    if (rc != 0)
        return rc;
    *series = s.n;
    struct nameset set = {.ctx = ctx};
    uint8_t *scratch = qt_malloc(QT_SERIES_KEY_MAX);
    struct qt_serieskey *k = qt_malloc(sizeof(*k));
    if (scratch == NULL || k == NULL)
        rc = qt_qctx_fail(ctx, QT_ENOMEM, "catalog query: out of memory");
    for (uint32_t i = 0; i < s.n && rc == 0; i++) {
        rc = collect_one(ctx, cat, &s.v[i], what, key, &set, scratch, k);
        if (rc == 0 && (i & 4095) == 4095)
            rc = qt_qctx_check_deadline(ctx);
    }
    if (rc == 0)
        rc = emit_set(w, "name", &set);
    qt_free(scratch);
    qt_free(k);
    ns_free(&set);
    qt_sel_free(ctx, &s);
    return rc;
}

/* Fields of every measurement (no target). */
static int
all_fields(struct qt_qctx *ctx, struct qt_catalog *cat, struct qt_res *w)
{
    struct qt_strlist *ms = NULL;
    int rc = qt_catalog_list_measurements(cat, &ms);
    if (rc != 0)
        return qt_qctx_fail_storage(ctx, rc, "catalog query");
    struct nameset set = {.ctx = ctx};
    for (uint32_t i = 0; i < ms->n && rc == 0; i++) {
        struct qt_strlist *fs = NULL;
        rc = qt_catalog_list_fields(cat, ms->items[i], &fs);
        if (rc != 0)
            rc = qt_qctx_fail_storage(ctx, rc, "catalog query");
        for (uint32_t j = 0; rc == 0 && j < fs->n; j++)
            rc = ns_add(&set, fs->items[j]);
        qt_catalog_strlist_free(fs);
    }
    if (rc == 0)
        rc = emit_set(w, "name", &set);
    ns_free(&set);
    qt_catalog_strlist_free(ms);
    return rc;
}

static int
series_list(struct qt_qctx *ctx, struct qt_catalog *cat, const struct qt_qry *q, struct qt_res *w,
            uint64_t *series)
{
    struct qt_sel s;
    int rc = qt_sel_run(ctx, cat, &q->sel, &s);
    if (rc != 0)
        return rc;
    *series = s.n;
    struct qt_res_col c = {.name = {"series", 6}, .kind = QT_RES_COL_TEXT};
    rc = qt_res_begin(w, &c, 1);
    for (uint32_t i = 0; i < s.n && rc == 0 && !qt_res_full(w); i++) {
        struct qt_cell cell = {.kind = QT_CELL_STR,
                               .u.s = {(const char *)s.v[i].key, s.v[i].key_len}};
        rc = qt_res_row(w, &cell);
    }
    qt_sel_free(ctx, &s);
    return rc;
}

int
qt_catq_run(struct qt_qctx *ctx, struct qt_catalog *cat, const struct qt_qry *q,
            struct qt_res *w, uint64_t *series)
{
    qt_assert(q->kind != QT_QRY_DATA);
    *series = 0;
    const struct qt_qry_selector *sel = &q->sel;
    struct qt_str meas = qs(sel->measurement);
    bool narrow = sel->field.len > 0 || sel->matchers_count > 0;
    struct qt_strlist *l = NULL;
    int rc;
    switch (q->kind) {
    case QT_QRY_MEASUREMENTS:
        if (sel->matchers_count > 0)
            return collect(ctx, cat, sel, C_MEAS, meas, w, series);
        rc = qt_catalog_list_measurements(cat, &l);
        return emit_list(ctx, w, rc, l);
    case QT_QRY_FIELDS:
        if (sel->matchers_count > 0)
            return collect(ctx, cat, sel, C_FIELD, meas, w, series);
        if (meas.len == 0)
            return all_fields(ctx, cat, w);
        rc = qt_catalog_list_fields(cat, meas, &l);
        return emit_list(ctx, w, rc, l);
    case QT_QRY_TAGS:
        if (narrow)
            return collect(ctx, cat, sel, C_TAGKEY, meas, w, series);
        rc = qt_catalog_list_tag_keys(cat, meas.len > 0 ? &meas : NULL, &l);
        return emit_list(ctx, w, rc, l);
    case QT_QRY_VALUES:
        if (narrow)
            return collect(ctx, cat, sel, C_TAGVALUE, qs(q->tag_key), w, series);
        rc = qt_catalog_list_tag_values(cat, qs(q->tag_key), meas.len > 0 ? &meas : NULL, &l);
        return emit_list(ctx, w, rc, l);
    case QT_QRY_SERIES: return series_list(ctx, cat, q, w, series);
    default: break;
    }
    qt_unreachable();
}
