/*
 * export.c -- raw points as line protocol or CSV (export.h).
 *
 * Per selected group: one scan per selected series of the group over the
 * range (points only, no statistics chunks), merged by timestamp: the line
 * for timestamp t holds every field whose scan is at t.  Output goes through
 * a buffer of QT_EXPORT_BUF_BYTES handed to the callback when nearly full.
 * Formatting is done here, not in server/ (layering): line protocol
 * escaping of keys is already in the catalog's canonical keys, so only
 * field values need formatting.
 */
#include "storage/export.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "storage/scan.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
qt_export_float(double v, char *out, size_t cap)
{
    if (cap < 32)
        return QT_ENOSPACE;
    if (isnan(v))
        return snprintf(out, cap, "nan");
    if (isinf(v))
        return snprintf(out, cap, v > 0 ? "inf" : "-inf");
    /* 15 significant digits print any double that has a <= 15 digit
     * decimal form, and that form is then the shortest (two decimals of
     * <= 15 digits never round to one double); else 16, else 17. */
    int n = 0;
    for (int p = 15; p <= 17; p++) {
        n = snprintf(out, cap, "%.*g", p, v);
        if (strtod(out, NULL) == v)
            break;
    }
    return n;
}

/* ---- output buffer -------------------------------------------------------- */

struct ex {
    struct qt_db *db;
    const struct qt_export_opts *o;
    struct qt_export_result *r;
    char *buf;
    size_t len;
    int rc; /* sticky callback error */
};

static int
ex_flush(struct ex *e)
{
    qt_assert(e->len <= QT_EXPORT_BUF_BYTES);
    if (e->rc == 0 && e->len > 0) {
        e->rc = e->o->out(e->o->arg, e->buf, e->len);
        e->r->bytes += e->len;
    }
    e->len = 0;
    return e->rc;
}

/* Room for n more bytes (n <= QT_EXPORT_BUF_BYTES / 2). */
static char *
ex_room(struct ex *e, size_t n)
{
    qt_assert(n <= QT_EXPORT_BUF_BYTES / 2);
    if (QT_EXPORT_BUF_BYTES - e->len < n)
        ex_flush(e);
    return e->buf + e->len;
}

static void
ex_put(struct ex *e, const char *s, size_t n)
{
    while (n > 0) {
        size_t k = n < QT_EXPORT_BUF_BYTES / 2 ? n : QT_EXPORT_BUF_BYTES / 2;
        memcpy(ex_room(e, k), s, k);
        e->len += k;
        s += k;
        n -= k;
    }
}

static void
ex_putc(struct ex *e, char c)
{
    *ex_room(e, 1) = c;
    e->len++;
}

/* CSV field: quoted when it holds a comma, quote, CR or LF. */
static void
ex_csv(struct ex *e, const char *s, size_t n)
{
    qt_assert(s != NULL || n == 0);
    bool quote = false;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        ex_put(e, s, n);
        return;
    }
    ex_putc(e, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            ex_putc(e, '"');
        ex_putc(e, s[i]);
    }
    ex_putc(e, '"');
}

/* ---- values ------------------------------------------------------------------ */

/* False when line protocol cannot carry the value. */
static bool
ex_lp_ok(enum qt_vtype vt, const union qt_value *v, const char *arena)
{
    if (vt == QT_VT_FLOAT)
        return isfinite(v->f);
    if (vt != QT_VT_STRING)
        return true;
    return memchr(arena + v->s.off, '\n', v->s.len) == NULL &&
           memchr(arena + v->s.off, '\r', v->s.len) == NULL;
}

/* The value as text; strings: LP quoted/escaped, CSV raw (caller quotes). */
static void
ex_value(struct ex *e, enum qt_vtype vt, const union qt_value *v, const char *arena, bool lp)
{
    qt_assert(v != NULL);
    char tmp[40];
    int n = 0;
    switch (vt) {
    case QT_VT_FLOAT: n = qt_export_float(v->f, tmp, sizeof(tmp)); break;
    case QT_VT_INT: n = snprintf(tmp, sizeof(tmp), lp ? "%" PRId64 "i" : "%" PRId64, v->i); break;
    case QT_VT_BOOL: n = snprintf(tmp, sizeof(tmp), "%s", v->i ? "true" : "false"); break;
    default: {
        const char *s = arena + v->s.off;
        if (!lp) {
            ex_csv(e, s, v->s.len);
            return;
        }
        ex_putc(e, '"');
        for (uint32_t i = 0; i < v->s.len; i++) {
            if (s[i] == '"' || s[i] == '\\')
                ex_putc(e, '\\');
            ex_putc(e, s[i]);
        }
        ex_putc(e, '"');
        return;
    }
    }
    ex_put(e, tmp, (size_t)n);
}

/* ---- one group ----------------------------------------------------------------- */

struct ex_col {
    uint32_t sid;
    struct qt_catalog_series si;
    struct qt_scan *scan;
    struct qt_chunk c;
    uint32_t i; /* next point in c */
    bool done;
};

static int
ex_advance(struct ex_col *col)
{
    if (!col->done && col->i < col->c.n)
        return 0;
    int rc = col->done ? 0 : qt_scan_next(col->scan, &col->c);
    col->i = 0;
    col->done = rc != 1;
    return rc < 0 ? rc : 0;
}

static void
ex_lp_line(struct ex *e, const struct qt_catalog_group *g, struct ex_col *cols, uint32_t n,
           int64_t ts)
{
    bool any = false;
    for (uint32_t k = 0; k < n; k++) {
        struct ex_col *c = &cols[k];
        if (c->done || c->c.ts[c->i] != ts)
            continue;
        const union qt_value *v = &c->c.vals[c->i];
        e->r->points++;
        if (!ex_lp_ok(c->si.vtype, v, c->c.arena)) {
            e->r->skipped++;
            continue;
        }
        if (!any)
            ex_put(e, (const char *)g->key, g->key_len);
        ex_putc(e, any ? ',' : ' ');
        any = true;
        ex_put(e, (const char *)c->si.key + c->si.group_len + 1,
               c->si.key_len - c->si.group_len - 1);
        ex_putc(e, '=');
        ex_value(e, c->si.vtype, v, c->c.arena, true);
    }
    if (any) {
        char tmp[32];
        int k = snprintf(tmp, sizeof(tmp), " %" PRId64 "\n", ts);
        ex_put(e, tmp, (size_t)k);
        e->r->lines++;
    }
}

static void
ex_csv_rows(struct ex *e, const struct qt_catalog_group *g, struct ex_col *cols, uint32_t n,
            int64_t ts)
{
    size_t mlen = 0; /* escaped measurement: up to the first unescaped ',' */
    while (mlen < g->key_len && g->key[mlen] != ',')
        mlen += g->key[mlen] == '\\' ? 2 : 1;
    mlen = mlen > g->key_len ? g->key_len : mlen;
    for (uint32_t k = 0; k < n; k++) {
        struct ex_col *c = &cols[k];
        if (c->done || c->c.ts[c->i] != ts)
            continue;
        char tmp[32];
        ex_csv(e, g->measurement.p, g->measurement.len);
        ex_putc(e, ',');
        if (mlen + 1 < g->key_len)
            ex_csv(e, (const char *)g->key + mlen + 1, g->key_len - mlen - 1);
        ex_putc(e, ',');
        ex_csv(e, c->si.field.p, c->si.field.len);
        int m = snprintf(tmp, sizeof(tmp), ",%" PRId64 ",", ts);
        ex_put(e, tmp, (size_t)m);
        ex_value(e, c->si.vtype, &c->c.vals[c->i], c->c.arena, false);
        ex_putc(e, '\n');
        e->r->points++;
        e->r->lines++;
    }
}

/* Merge the scans of one group's selected series by timestamp. */
static int
ex_merge(struct ex *e, const struct qt_catalog_group *g, struct ex_col *cols, uint32_t n)
{
    qt_assert(n > 0);
    int rc = 0;
    for (uint32_t k = 0; k < n && rc == 0; k++)
        rc = ex_advance(&cols[k]);
    while (rc == 0 && e->rc == 0) {
        int64_t ts = INT64_MAX;
        bool any = false;
        for (uint32_t k = 0; k < n; k++) {
            if (!cols[k].done && (!any || cols[k].c.ts[cols[k].i] < ts)) {
                ts = cols[k].c.ts[cols[k].i];
                any = true;
            }
        }
        if (!any)
            break;
        if (e->o->format == QT_EXPORT_LP)
            ex_lp_line(e, g, cols, n, ts);
        else
            ex_csv_rows(e, g, cols, n, ts);
        for (uint32_t k = 0; k < n && rc == 0; k++) {
            if (!cols[k].done && cols[k].c.ts[cols[k].i] == ts) {
                cols[k].i++;
                rc = ex_advance(&cols[k]);
            }
        }
    }
    return rc != 0 ? rc : e->rc;
}

static int
ex_group(struct ex *e, const uint32_t *sids, uint32_t n)
{
    qt_assert(n > 0);
    qt_assert(sids != NULL);
    struct ex_col *cols = qt_calloc(n, sizeof(*cols));
    if (cols == NULL)
        return QT_ENOMEM;
    struct qt_catalog *cat = qt_db_catalog(e->db);
    struct qt_scan_opts so = {.t0 = e->o->t0, .t1 = e->o->t1};
    int rc = 0;
    for (uint32_t k = 0; k < n && rc == 0; k++) {
        cols[k].sid = sids[k];
        rc = qt_catalog_series_info(cat, sids[k], &cols[k].si);
        if (rc == 0)
            rc = qt_scan_open(e->db, sids[k], &so, &cols[k].scan);
    }
    struct qt_catalog_group g;
    if (rc == 0)
        rc = qt_catalog_group_info(cat, cols[0].si.gid, &g);
    if (rc == 0)
        rc = ex_merge(e, &g, cols, n);
    for (uint32_t k = 0; k < n; k++)
        qt_scan_close(cols[k].scan);
    qt_free(cols);
    return rc;
}

/* ---- driver ------------------------------------------------------------------------ */

struct ex_sid {
    uint32_t gid, sid;
};

static int
ex_sid_cmp(const void *a, const void *b)
{
    const struct ex_sid *x = a, *y = b;
    if (x->gid != y->gid)
        return x->gid < y->gid ? -1 : 1;
    return x->sid < y->sid ? -1 : (x->sid > y->sid);
}

/* Selected sids sorted by (gid, sid). */
static int
ex_select(struct ex *e, struct ex_sid **out, uint32_t *n)
{
    qt_assert(out != NULL && n != NULL);
    struct qt_catalog *cat = qt_db_catalog(e->db);
    uint32_t *sids = NULL;
    int rc = qt_catalog_select(cat, e->o->measurement, NULL, e->o->tags, e->o->ntags,
                               qt_catalog_series_count(cat), &sids, n);
    *out = rc == 0 ? qt_malloc((*n + 1u) * sizeof(**out)) : NULL;
    if (rc == 0 && *out == NULL)
        rc = QT_ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < *n; i++) {
        struct qt_catalog_series si;
        rc = qt_catalog_series_info(cat, sids[i], &si);
        (*out)[i] = (struct ex_sid){.gid = si.gid, .sid = sids[i]};
    }
    qt_free(sids);
    if (rc == 0)
        qsort(*out, *n, sizeof(**out), ex_sid_cmp);
    return rc;
}

int
qt_export(struct qt_db *db, const struct qt_export_opts *o, struct qt_export_result *r)
{
    qt_assert(db != NULL);
    qt_assert(o != NULL && o->out != NULL);
    struct qt_export_result res = {0};
    struct ex e = {.db = db, .o = o, .r = &res, .buf = qt_malloc(QT_EXPORT_BUF_BYTES)};
    struct ex_sid *sel = NULL;
    uint32_t n = 0;
    int rc = e.buf == NULL ? QT_ENOMEM : ex_select(&e, &sel, &n);
    uint32_t *sids = rc == 0 ? qt_malloc((n + 1u) * sizeof(*sids)) : NULL;
    if (rc == 0 && sids == NULL)
        rc = QT_ENOMEM;
    if (rc == 0 && o->format == QT_EXPORT_CSV)
        ex_put(&e, "measurement,tags,field,time_ns,value\n", 37);
    res.series = n;
    for (uint32_t i = 0; rc == 0 && i < n;) {
        uint32_t j = i;
        for (; j < n && sel[j].gid == sel[i].gid; j++)
            sids[j - i] = sel[j].sid;
        rc = qt_ops_cancelled(&o->ctl) ? qt_fail(QT_ECLOSED, "export: interrupted")
                                       : ex_group(&e, sids, j - i);
        res.groups++;
        qt_ops_progress(&o->ctl, j, n);
        i = j;
    }
    if (rc == 0)
        rc = ex_flush(&e);
    qt_free(sids);
    qt_free(sel);
    qt_free(e.buf);
    if (r != NULL)
        *r = res;
    return rc;
}

/* ---- selector ------------------------------------------------------------------------ */

/* Unescape buf[0..) up to an unescaped stop byte (or NUL) in place; returns
 * the stop position. */
static char *
ex_token(char *p, const char *stops, struct qt_str *out)
{
    char *w = p;
    out->p = p;
    while (*p != '\0' && strchr(stops, *p) == NULL) {
        if (*p == '\\' && p[1] != '\0')
            p++;
        *w++ = *p++;
    }
    out->len = (uint32_t)(w - out->p);
    return p;
}

int
qt_export_parse_selector(char *buf, struct qt_str *measurement, struct qt_tag_matcher *m,
                         uint32_t cap, uint32_t *n)
{
    qt_assert(buf != NULL);
    qt_assert(n != NULL);
    *n = 0;
    char *p = ex_token(buf, ",", measurement);
    if (measurement->len == 0)
        return qt_fail(QT_ESYNTAX, "export: selector without a measurement");
    while (*p == ',') {
        *p++ = '\0';
        struct qt_str k, v;
        p = ex_token(p, "=,", &k);
        if (*p != '=' || k.len == 0)
            return qt_fail(QT_ESYNTAX, "export: expected tag=value in the selector");
        *p++ = '\0';
        p = ex_token(p, ",", &v);
        if (v.len == 0)
            return qt_fail(QT_ESYNTAX, "export: empty tag value in the selector");
        if (*n == cap)
            return qt_fail(QT_ELIMIT, "export: too many tags in the selector");
        m[(*n)++] = (struct qt_tag_matcher){.op = QT_MATCH_EQ, .key = k, .value = v};
    }
    return 0;
}
