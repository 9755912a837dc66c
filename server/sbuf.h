/*
 * sbuf.h -- a growable byte buffer for responses (JSON, Prometheus text,
 * query output) with a hard size cap.
 *
 * Appends never fail loudly: once an append would pass the cap or memory
 * runs out, the buffer is marked failed, further appends are ignored, and
 * the caller checks qt_sbuf_failed() once at the end.  The bytes are not
 * NUL-terminated unless qt_sbuf_cstr() is called.
 */
#ifndef QT_SBUF_H
#define QT_SBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qt_sbuf {
    char *p;
    size_t len, cap, max;
    bool failed;
};

/* Empty buffer that may grow to max bytes (no allocation yet). */
void qt_sbuf_init(struct qt_sbuf *b, size_t max);
/* Free the memory; b is empty again (and not failed). */
void qt_sbuf_deinit(struct qt_sbuf *b);
/* Hand the memory to the caller (free with qt_free); b becomes empty. */
char *qt_sbuf_take(struct qt_sbuf *b, size_t *len);

void qt_sbuf_add(struct qt_sbuf *b, const void *p, size_t n);
void qt_sbuf_str(struct qt_sbuf *b, const char *s);
void qt_sbuf_printf(struct qt_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s[0..n) as a JSON string literal with quotes; bytes that are not
 * valid UTF-8 become U+FFFD, control characters \\u escapes. */
void qt_sbuf_json(struct qt_sbuf *b, const char *s, size_t n);
/* NUL-terminate (not counted in len) and return the text; "" if failed. */
const char *qt_sbuf_cstr(struct qt_sbuf *b);

static inline bool
qt_sbuf_failed(const struct qt_sbuf *b)
{
    return b->failed;
}

#endif
