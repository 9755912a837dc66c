/*
 * sbuf.c -- growable, capped byte buffer (sbuf.h).
 *
 * Invariant: len <= cap <= max + 1 (the extra byte is room for the NUL of
 * qt_sbuf_cstr); p is NULL iff cap == 0; a failed buffer never grows.
 */
#include "server/sbuf.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
qt_sbuf_init(struct qt_sbuf *b, size_t max)
{
    qt_assert(b != NULL && max > 0);
    *b = (struct qt_sbuf){.max = max};
}

void
qt_sbuf_deinit(struct qt_sbuf *b)
{
    if (b == NULL)
        return;
    qt_free(b->p);
    size_t max = b->max;
    *b = (struct qt_sbuf){.max = max};
}

char *
qt_sbuf_take(struct qt_sbuf *b, size_t *len)
{
    qt_assert(b != NULL && len != NULL);
    char *p = b->p;
    *len = b->len;
    size_t max = b->max;
    *b = (struct qt_sbuf){.max = max};
    return p;
}

/* Make room for n more bytes plus a NUL; false (and failed) if it cannot. */
static bool
reserve(struct qt_sbuf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n > b->max - b->len) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap > 0 ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = qt_realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void
qt_sbuf_add(struct qt_sbuf *b, const void *p, size_t n)
{
    qt_assert(b != NULL && (p != NULL || n == 0));
    if (n == 0 || !reserve(b, n))
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void
qt_sbuf_str(struct qt_sbuf *b, const char *s)
{
    qt_sbuf_add(b, s, strlen(s));
}

void
qt_sbuf_printf(struct qt_sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof(tmp)) {
        qt_sbuf_add(b, tmp, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid. */
static size_t
utf8_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t k;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4, cp = c & 0x07;
    else
        return 0;
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return k;
}

void
qt_sbuf_json(struct qt_sbuf *b, const char *s, size_t n)
{
    qt_assert(b != NULL && (s != NULL || n == 0));
    const uint8_t *u = (const uint8_t *)s;
    qt_sbuf_add(b, "\"", 1);
    size_t i = 0;
    while (i < n && !b->failed) {
        size_t run = i;
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
            run++;
        qt_sbuf_add(b, s + i, run - i);
        if ((i = run) >= n)
            break;
        uint8_t c = u[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            qt_sbuf_add(b, e, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            qt_sbuf_printf(b, "\\u%04x", c);
            i++;
        } else {
            size_t k = utf8_len(u + i, n - i);
            if (k == 0) {
                qt_sbuf_add(b, "\xef\xbf\xbd", 3); /* U+FFFD */
                i++;
            } else {
                qt_sbuf_add(b, s + i, k);
                i += k;
            }
        }
    }
    qt_sbuf_add(b, "\"", 1);
}

const char *
qt_sbuf_cstr(struct qt_sbuf *b)
{
    qt_assert(b != NULL);
    if (b->failed || !reserve(b, 0))
        return "";
    b->p[b->len] = '\0';
    return b->p;
}
