/*
 * result.c -- rows to table / CSV / JSON text, streamed to the sink
 * (contract in result.h; byte-exact examples in design/exec.md).
 *
 * State machine: init -> begin (columns) -> row* -> end -> deinit.  JSON
 * and CSV write each row as it comes.  The table holds rows back as
 * rendered cell text (the "sample", at most QT_QRY_TABLE_SAMPLE_ROWS rows
 * and QT_QRY_TABLE_SAMPLE_BYTES bytes) until it knows the column widths,
 * then prints the sample and streams the rest with those widths.
 *
 * Invariants: w->len <= QT_QRY_OUT_BUF_BYTES; once the sink fails
 * (w->error) nothing more is sent; rows <= limit (when set) and
 * rows <= ctx->rows_max.
 */
#include "result.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "query/qprint.h"
#include "query/qtime.h"

/* Rendered cell text: a tag value (<= QT_SERIES_KEY_MAX bytes) grows at
 * most 6x when JSON-escaped (\u00XX); numbers and times need < 64. */
#define CELL_CAP (6u * QT_SERIES_KEY_MAX + 64u)
#define COL_SEP  "  "

/* ---- output buffer ------------------------------------------------------- */

static int
res_flush(struct qt_res *w)
{
    if (w->error != 0)
        return w->error;
    if (w->len > 0 && w->out(w->arg, w->buf, w->len) != 0) {
        w->error = qt_qctx_fail(w->ctx, QT_ECLOSED, "output closed by the client");
        return w->error;
    }
    w->len = 0;
    return 0;
}

static int
res_put(struct qt_res *w, const char *p, size_t n)
{
    while (n > 0) {
        if (w->len == QT_QRY_OUT_BUF_BYTES) {
            int rc = res_flush(w);
            if (rc != 0)
                return rc;
        }
        size_t k = QT_QRY_OUT_BUF_BYTES - w->len;
        k = k < n ? k : n;
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        p += k;
        n -= k;
    }
    return w->error;
}

static int
res_puts(struct qt_res *w, const char *s)
{
    return res_put(w, s, strlen(s));
}

static int
res_pad(struct qt_res *w, uint32_t n)
{
    static const char spaces[] = "                                ";
    int rc = 0;
    while (n > 0 && rc == 0) {
        uint32_t k = n < 32 ? n : 32;
        rc = res_put(w, spaces, k);
        n -= k;
    }
    return rc;
}

/* ---- numbers ------------------------------------------------------------- */

static size_t
fmt_u64(uint64_t v, char *out)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static size_t
fmt_i64(int64_t v, char *out)
{
    if (v >= 0)
        return fmt_u64((uint64_t)v, out);
    out[0] = '-';
    return 1 + fmt_u64(0 - (uint64_t)v, out + 1);
}

/*
 * Fast path: v = d / 10^k exactly as strtod reads "d e-k" (d < 2^53, one
 * correctly rounded division), k minimal.  Then the plain decimal with k
 * fraction digits is the shortest round-trip text, and qprint's %g-based
 * formatter prints exactly it whenever 1e-4 <= |v| < 1e15 (plain notation).
 */
static size_t
fmt_decimal(double v, char *buf)
{
    static const double p10[10] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (int k = 0; k < 10; k++) {
        double s = a * p10[k];
        if (s >= 9007199254740992.0)
            return 0;
        double d = nearbyint(s);
        if (d / p10[k] != a)
            continue;
        uint64_t u = (uint64_t)d;
        char digits[24];
        size_t nd = fmt_u64(u, digits), n = 0;
        if (v < 0)
            buf[n++] = '-';
        if ((size_t)k >= nd) { /* 0.00ddd */
            buf[n++] = '0';
            buf[n++] = '.';
            for (size_t z = nd; z < (size_t)k; z++)
                buf[n++] = '0';
            memcpy(buf + n, digits, nd);
            n += nd;
        } else {
            memcpy(buf + n, digits, nd - (size_t)k);
            n += nd - (size_t)k;
            if (k > 0) {
                buf[n++] = '.';
                memcpy(buf + n, digits + nd - (size_t)k, (size_t)k);
                n += (size_t)k;
            }
        }
        buf[n] = '\0';
        return n;
    }
    return 0;
}

/* Significant digits of the shortest round trip of v: the digits of
 * "%.15g" when that reads back (DBL_DIG = 15: any decimal of <= 15
 * digits survives double -> 15 digits, so %g's trimmed output is already
 * the shortest), else 16 or 17. */
static int
shortest_digits(double v, char *tmp, size_t cap)
{
    for (int prec = 15; prec < 17; prec++) {
        snprintf(tmp, cap, "%.*g", prec, v);
        if (strtod(tmp, NULL) != v)
            continue;
        if (prec > 15)
            return prec;
        int k = 0, lead = 1;
        for (const char *p = tmp; *p != '\0' && *p != 'e'; p++) {
            if (*p < '0' || *p > '9')
                continue;
            lead = lead && *p == '0';
            k += !lead;
        }
        return k > 0 ? k : 1;
    }
    return 17;
}

/* snprintf/strtod in the "C" locale whatever the process set (as qprint). */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void
c_locale_init(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

size_t
qt_res_format_double(double v, char *buf, size_t cap)
{
    qt_assert(isfinite(v));
    qt_assert(cap >= 32);
    if (v == 0) {
        size_t n = signbit(v) ? 2 : 1;
        memcpy(buf, signbit(v) ? "-0" : "0", n + 1);
        return n;
    }
    size_t n = fmt_decimal(v, buf);
    if (n > 0)
        return n;
    if (fabs(v) < DBL_MIN) /* subnormal: fewer than DBL_DIG digits are exact */
        return qt_qry_number_format(v, buf, cap);
    /* qprint's notation for that many digits: plain while the exponent is
     * moderate (150, not 1.5e+02), else %g's choice. */
    pthread_once(&c_locale_once, c_locale_init);
    locale_t old = c_locale != (locale_t)0 ? uselocale(c_locale) : (locale_t)0;
    char tmp[40];
    int prec = shortest_digits(v, tmp, sizeof(tmp));
    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
    const char *e = strchr(tmp, 'e');
    int exp10 = e != NULL ? atoi(e + 1) : 0;
    if (exp10 >= -4 && exp10 < 17 && exp10 + 1 > prec)
        prec = exp10 + 1;
    int len = snprintf(buf, cap, "%.*g", prec, v);
    if (old != (locale_t)0)
        uselocale(old);
    qt_assert(len > 0 && (size_t)len < cap);
    return (size_t)len;
}

/* ---- cell text ------------------------------------------------------------ */

/* Length of the UTF-8 sequence at s[0..n), 0 if invalid; *cp the code point. */
static size_t
utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_cp[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* Terminal columns of code point cp (East Asian wide: 2). */
static uint32_t
cp_width(uint32_t cp)
{
    bool wide = (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
                (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
                (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
                (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd);
    return wide ? 2 : 1;
}

/* Table text of a string: printable UTF-8 kept, anything else '?'. */
static size_t
text_table(const char *p, uint32_t len, char *out, uint32_t *width)
{
    size_t n = 0;
    *width = 0;
    for (uint32_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t k = utf8_seq((const unsigned char *)p + i, len - i, &cp);
        if (k == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
            out[n++] = '?';
            *width += 1;
            i += k == 0 ? 1 : (uint32_t)k;
            continue;
        }
        memcpy(out + n, p + i, k);
        n += k;
        i += (uint32_t)k;
        *width += cp_width(cp);
    }
    return n;
}

/* JSON string literal (quotes included); invalid UTF-8 becomes U+FFFD. */
static size_t
text_json(const char *p, uint32_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    out[n++] = '"';
    for (uint32_t i = 0; i < len;) {
        unsigned char c = (unsigned char)p[i];
        uint32_t cp = 0;
        size_t k = c < 0x80 ? 1 : utf8_seq((const unsigned char *)p + i, len - i, &cp);
        if (k == 0) {
            memcpy(out + n, "\\ufffd", 6);
            n += 6;
            i++;
        } else if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[c >> 4];
            out[n + 5] = hex[c & 15];
            n += 6;
            i++;
        } else {
            memcpy(out + n, p + i, k);
            n += k;
            i += (uint32_t)k;
        }
    }
    out[n++] = '"';
    return n;
}

/* CSV field: quoted when it holds , " CR LF or edge spaces (RFC 4180). */
static size_t
text_csv(const char *p, uint32_t len, char *out)
{
    bool quote = len > 0 && (p[0] == ' ' || p[len - 1] == ' ');
    for (uint32_t i = 0; i < len && !quote; i++)
        quote = p[i] == ',' || p[i] == '"' || p[i] == '\r' || p[i] == '\n';
    if (!quote) {
        memcpy(out, p, len);
        return len;
    }
    size_t n = 0;
    out[n++] = '"';
    for (uint32_t i = 0; i < len; i++) {
        if (p[i] == '"')
            out[n++] = '"';
        out[n++] = p[i];
    }
    out[n++] = '"';
    return n;
}

static size_t
float_text(const struct qt_res *w, double f, char *out)
{
    if (isfinite(f))
        return qt_res_format_double(f, out, 64);
    const char *s = w->fmt == QT_OUT_JSON ? "null" : isnan(f) ? "NaN" : f > 0 ? "+Inf" : "-Inf";
    size_t n = strlen(s);
    memcpy(out, s, n);
    return n;
}

/* Render cell c of a column of kind k into w->cell; *right: right-align
 * in a table; *width: display columns. */
static size_t
cell_text(struct qt_res *w, enum qt_res_col_kind k, const struct qt_cell *c, bool *right,
          uint32_t *width)
{
    char *o = w->cell;
    size_t n = 0;
    *right = c->kind == QT_CELL_INT || c->kind == QT_CELL_FLOAT;
    if (c->kind == QT_CELL_NULL) {
        n = w->fmt == QT_OUT_JSON ? 4 : 0;
        memcpy(o, "null", n);
    } else if (k == QT_RES_COL_TIME && c->kind == QT_CELL_INT && w->fmt != QT_OUT_JSON) {
        n = qt_time_format_rfc3339(c->u.i, o, 64);
        *right = false;
    } else if (k == QT_RES_COL_DURATION && c->kind == QT_CELL_INT && w->fmt == QT_OUT_TABLE) {
        n = qt_time_format_duration(c->u.i < 0 ? 0 : c->u.i, o, 64);
    } else if (c->kind == QT_CELL_INT) {
        n = fmt_i64(c->u.i, o);
    } else if (c->kind == QT_CELL_FLOAT) {
        n = float_text(w, c->u.f, o);
    } else if (c->kind == QT_CELL_BOOL) {
        n = c->u.b ? 4 : 5;
        memcpy(o, c->u.b ? "true" : "false", n);
    } else {
        qt_assert(c->kind == QT_CELL_STR);
        uint32_t len = c->u.s.len;
        if (w->fmt == QT_OUT_JSON)
            n = text_json(c->u.s.p, len, o);
        else if (w->fmt == QT_OUT_CSV)
            n = text_csv(c->u.s.p, len, o);
        else
            return text_table(c->u.s.p, len, o, width);
    }
    *width = (uint32_t)n;
    return n;
}

/* ---- table ---------------------------------------------------------------- */

/* Grow the sample to hold one more row of ncols cells and `bytes` text. */
static int
sample_reserve(struct qt_res *w, size_t bytes)
{
    size_t need_cells = (size_t)(w->sample_rows + 1) * w->ncols;
    if (need_cells > w->scells_cap) {
        size_t cap = need_cells * 2;
        struct qt_res_scell *c = qt_realloc(w->scells, cap * sizeof(*c));
        if (c == NULL)
            return qt_qctx_fail(w->ctx, QT_ENOMEM, "result: out of memory");
        w->scells = c;
        w->scells_cap = (uint32_t)cap;
    }
    if (w->sample_len + bytes > w->sample_cap) {
        size_t cap = (w->sample_len + bytes) * 2;
        char *t = qt_realloc(w->sample, cap);
        if (t == NULL)
            return qt_qctx_fail(w->ctx, QT_ENOMEM, "result: out of memory");
        w->sample = t;
        w->sample_cap = cap;
    }
    return 0;
}

/* Append w->cell[0..n) as cell i of the row being sampled. */
static void
sample_put(struct qt_res *w, uint32_t i, size_t n, uint32_t width, bool right)
{
    memcpy(w->sample + w->sample_len, w->cell, n);
    w->scells[(size_t)w->sample_rows * w->ncols + i] =
        (struct qt_res_scell){.off = (uint32_t)w->sample_len, .len = (uint32_t)n,
                              .width = width, .right = right};
    w->sample_len += n;
    if (width > w->width[i])
        w->width[i] = width;
}

/* Row 0 of the sample: the column names. */
static int
table_header(struct qt_res *w)
{
    for (uint32_t i = 0; i < w->ncols; i++) {
        uint32_t wd, len = w->cols[i].name.len;
        int rc = sample_reserve(w, len);
        if (rc != 0)
            return rc;
        size_t n = text_table(w->cols[i].name.p, len, w->cell, &wd);
        sample_put(w, i, n, wd, false);
    }
    w->sample_rows = 1;
    return 0;
}

/* Write one cell padded to its column's width.  Spaces are held back in
 * w->pending until text follows, so lines carry no trailing blanks. */
static int
table_cell(struct qt_res *w, uint32_t i, const char *text, size_t n, uint32_t wd, bool right)
{
    uint32_t pad = w->width[i] > wd ? w->width[i] - wd : 0;
    int rc = 0;
    w->pending += i > 0 ? (uint32_t)strlen(COL_SEP) : 0;
    w->pending += right ? pad : 0;
    if (n > 0) {
        rc = res_pad(w, w->pending);
        w->pending = 0;
        if (rc == 0)
            rc = res_put(w, text, n);
    }
    w->pending += right ? 0 : pad;
    if (rc == 0 && i + 1 == w->ncols) {
        w->pending = 0;
        rc = res_puts(w, "\n");
    }
    return rc;
}

/* Print the held-back header, the rule and the sampled rows; from now on
 * rows stream with the widths found. */
static int
table_release(struct qt_res *w)
{
    int rc = 0;
    for (uint32_t r = 0; r < w->sample_rows && rc == 0; r++) {
        for (uint32_t i = 0; i < w->ncols && rc == 0; i++) {
            const struct qt_res_scell *c = &w->scells[(size_t)r * w->ncols + i];
            rc = table_cell(w, i, w->sample + c->off, c->len, c->width, c->right);
        }
        for (uint32_t i = 0; r == 0 && i < w->ncols && rc == 0; i++) {
            rc = i > 0 ? res_puts(w, COL_SEP) : 0;
            for (uint32_t k = 0; k < w->width[i] && rc == 0; k++)
                rc = res_put(w, "-", 1);
            if (rc == 0 && i + 1 == w->ncols)
                rc = res_puts(w, "\n");
        }
    }
    w->streaming = true;
    qt_free(w->sample);
    qt_free(w->scells);
    w->sample = NULL;
    w->scells = NULL;
    w->sample_len = w->sample_cap = 0;
    w->scells_cap = 0;
    return rc;
}

static int
row_table(struct qt_res *w, const struct qt_cell *cells)
{
    int rc = 0;
    for (uint32_t i = 0; i < w->ncols && rc == 0; i++) {
        bool right;
        uint32_t wd;
        size_t n = cell_text(w, w->cols[i].kind, &cells[i], &right, &wd);
        if (w->streaming) {
            rc = table_cell(w, i, w->cell, n, wd, right);
        } else if ((rc = sample_reserve(w, n)) == 0) {
            sample_put(w, i, n, wd, right);
        }
    }
    if (rc != 0 || w->streaming)
        return rc;
    w->sample_rows++;
    if (w->sample_rows > QT_QRY_TABLE_SAMPLE_ROWS || w->sample_len > QT_QRY_TABLE_SAMPLE_BYTES)
        rc = table_release(w);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------ */

int
qt_res_init(struct qt_res *w, struct qt_qctx *ctx, enum qt_out_format fmt, qt_out_fn out,
            void *arg, uint64_t limit)
{
    qt_assert(out != NULL);
    qt_assert(fmt == QT_OUT_TABLE || fmt == QT_OUT_CSV || fmt == QT_OUT_JSON);
    memset(w, 0, sizeof(*w));
    w->ctx = ctx;
    w->fmt = fmt;
    w->out = out;
    w->arg = arg;
    w->limit = limit;
    w->streaming = fmt != QT_OUT_TABLE;
    w->buf = qt_malloc(QT_QRY_OUT_BUF_BYTES);
    w->cell = qt_malloc(CELL_CAP);
    w->cell_cap = CELL_CAP;
    if (w->buf == NULL || w->cell == NULL)
        return qt_qctx_fail(ctx, QT_ENOMEM, "result: out of memory");
    return 0;
}

void
qt_res_deinit(struct qt_res *w)
{
    qt_free(w->buf);
    qt_free(w->cell);
    qt_free(w->cols);
    qt_free(w->names);
    qt_free(w->sample);
    qt_free(w->scells);
    qt_free(w->width);
    memset(w, 0, sizeof(*w));
}

static int
header_json(struct qt_res *w)
{
    int rc = res_puts(w, "{\"columns\":[");
    for (uint32_t i = 0; i < w->ncols && rc == 0; i++) {
        size_t n = text_json(w->cols[i].name.p, w->cols[i].name.len, w->cell);
        rc = res_put(w, ",", i > 0);
        if (rc == 0)
            rc = res_put(w, w->cell, n);
    }
    return rc != 0 ? rc : res_puts(w, "],\"rows\":[");
}

static int
header_csv(struct qt_res *w)
{
    int rc = 0;
    for (uint32_t i = 0; i < w->ncols && rc == 0; i++) {
        size_t n = text_csv(w->cols[i].name.p, w->cols[i].name.len, w->cell);
        rc = res_put(w, ",", i > 0);
        if (rc == 0)
            rc = res_put(w, w->cell, n);
    }
    return rc != 0 ? rc : res_puts(w, "\n");
}

int
qt_res_begin(struct qt_res *w, const struct qt_res_col *cols, uint32_t ncols)
{
    qt_assert(w->cols == NULL);
    qt_assert(ncols > 0);
    size_t bytes = 0;
    for (uint32_t i = 0; i < ncols; i++)
        bytes += cols[i].name.len + 1;
    w->cols = qt_calloc(ncols, sizeof(*w->cols));
    w->names = qt_malloc(bytes);
    w->width = qt_calloc(ncols, sizeof(*w->width));
    if (w->cols == NULL || w->names == NULL || w->width == NULL)
        return qt_qctx_fail(w->ctx, QT_ENOMEM, "result: out of memory");
    size_t off = 0;
    for (uint32_t i = 0; i < ncols; i++) {
        memcpy(w->names + off, cols[i].name.p, cols[i].name.len);
        w->names[off + cols[i].name.len] = '\0';
        w->cols[i] = (struct qt_res_col){.name = {w->names + off, cols[i].name.len},
                                         .kind = cols[i].kind};
        off += cols[i].name.len + 1;
    }
    w->ncols = ncols;
    if (w->fmt == QT_OUT_JSON)
        return header_json(w);
    if (w->fmt == QT_OUT_CSV)
        return header_csv(w);
    return table_header(w);
}

bool
qt_res_full(const struct qt_res *w)
{
    return w->limit != 0 && w->rows >= w->limit;
}

/* ---- rows ----------------------------------------------------------------- */

static int
row_json(struct qt_res *w, const struct qt_cell *cells)
{
    int rc = res_puts(w, w->rows == 0 ? "\n[" : ",\n[");
    for (uint32_t i = 0; i < w->ncols && rc == 0; i++) {
        bool right;
        uint32_t wd;
        size_t n = cell_text(w, w->cols[i].kind, &cells[i], &right, &wd);
        rc = res_put(w, ",", i > 0);
        if (rc == 0)
            rc = res_put(w, w->cell, n);
    }
    return rc != 0 ? rc : res_puts(w, "]");
}

static int
row_csv(struct qt_res *w, const struct qt_cell *cells)
{
    int rc = 0;
    for (uint32_t i = 0; i < w->ncols && rc == 0; i++) {
        bool right;
        uint32_t wd;
        size_t n = cell_text(w, w->cols[i].kind, &cells[i], &right, &wd);
        rc = res_put(w, ",", i > 0);
        if (rc == 0)
            rc = res_put(w, w->cell, n);
    }
    return rc != 0 ? rc : res_puts(w, "\n");
}

int
qt_res_row(struct qt_res *w, const struct qt_cell *cells)
{
    qt_assert(w->cols != NULL);
    qt_assert(!qt_res_full(w));
    if (w->error != 0)
        return w->error;
    if (w->rows >= w->ctx->rows_max)
        return qt_qctx_fail(w->ctx, QT_ELIMIT,
                            "result has more than %llu rows (rows_max); narrow the query or "
                            "add | limit N",
                            (unsigned long long)w->ctx->rows_max);
    int rc = w->fmt == QT_OUT_JSON  ? row_json(w, cells)
             : w->fmt == QT_OUT_CSV ? row_csv(w, cells)
                                    : row_table(w, cells);
    if (rc == 0)
        w->rows++;
    return rc;
}

int
qt_res_end(struct qt_res *w)
{
    qt_assert(w->cols != NULL);
    int rc = w->error;
    if (rc == 0 && w->fmt == QT_OUT_JSON)
        rc = res_puts(w, w->rows > 0 ? "\n]}\n" : "]}\n");
    if (rc == 0 && w->fmt == QT_OUT_TABLE) {
        char foot[48];
        rc = w->streaming ? 0 : table_release(w);
        snprintf(foot, sizeof(foot), "(%llu row%s)\n", (unsigned long long)w->rows,
                 w->rows == 1 ? "" : "s");
        if (rc == 0)
            rc = res_puts(w, foot);
    }
    return rc != 0 ? rc : res_flush(w);
}
