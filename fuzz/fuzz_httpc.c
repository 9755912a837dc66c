/*
 * fuzz_httpc.c -- the CLI's HTTP response parser and JSON lookup on
 * arbitrary bytes (server/httpc.c).
 *
 * Input: byte 0 picks the feed step (1..256, 0 = whole) and whether the
 * request was HEAD; the rest is what a server sent.  Oracles: the stepped
 * feed gives the same result, status and body as the one-shot feed; a
 * complete response re-encoded with Content-Length and again chunked
 * (decode -> encode -> decode) parses to the same status and body; the
 * JSON lookups on the body never read out of bounds and always terminate
 * their output.
 */
#include "format/qt_assert.h"
#include "server/httpc.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BODY_MAX (1u << 20)

static struct qt_httpc_resp r1, r2;
static uint8_t body1[BODY_MAX], body2[BODY_MAX], enc[BODY_MAX + 4096];

struct sink {
    uint8_t *buf;
    size_t len;
};

static int
sink_fn(void *arg, const uint8_t *p, size_t n)
{
    struct sink *s = arg;
    if (s->len + n > BODY_MAX)
        return 7; /* a distinct, deterministic stop */
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

static int
parse(struct qt_httpc_resp *r, bool head, const uint8_t *p, size_t n, size_t step, struct sink *s)
{
    qt_httpc_resp_init(r, head);
    s->len = 0;
    size_t off = 0;
    while (off < n) {
        size_t k = step == 0 || step > n - off ? n - off : step;
        size_t used = 0;
        int rc = qt_httpc_resp_feed(r, p + off, k, &used, sink_fn, s);
        qt_assert(used <= k);
        off += used;
        if (rc != 0)
            return rc; /* 1: complete (any bytes after it are not consumed) */
        qt_assert(used == k);
    }
    return qt_httpc_resp_eof(r);
}

static void
reencode(const struct qt_httpc_resp *r, const struct sink *s)
{
    for (int f = 0; f < 2; f++) {
        if (s->len == 0 && f == 1)
            continue; /* a zero-size chunk would end the body early */
        int n = f == 0 ? snprintf((char *)enc, 256, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n\r\n",
                                  r->status, s->len)
                       : snprintf((char *)enc, 256,
                                  "HTTP/1.1 %d X\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n",
                                  r->status, s->len);
        memcpy(enc + n, s->buf, s->len);
        size_t len = (size_t)n + s->len;
        if (f == 1) {
            memcpy(enc + len, "\r\n0\r\n\r\n", 7);
            len += 7;
        }
        struct sink s2 = {.buf = body2};
        int rc = parse(&r2, false, enc, len, 0, &s2);
        bool nobody = r->status == 204 || r->status == 304;
        qt_assert(rc == 1 && r2.status == r->status);
        qt_assert(nobody || (s2.len == s->len && memcmp(s2.buf, s->buf, s->len) == 0));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] & 0x7f;
    bool head = (data[0] & 0x80) != 0;
    data++;
    size--;
    struct sink s1 = {.buf = body1}, s2 = {.buf = body2};
    int rc1 = parse(&r1, head, data, size, 0, &s1);
    int rc2 = parse(&r2, head, data, size, step, &s2);
    qt_assert(rc1 == rc2);
    if (rc1 == 1 && rc2 == 1) {
        qt_assert(r1.status == r2.status);
        qt_assert(s1.len == s2.len && memcmp(s1.buf, s2.buf, s1.len) == 0);
    }
    if (rc1 == 1 && r1.status >= 200 && !head)
        reencode(&r1, &s1);
    char out[64];
    int64_t v;
    long n = qt_httpc_json_str((const char *)s1.buf, s1.len, "error", out, sizeof(out));
    qt_assert(strlen(out) < sizeof(out) && (n < 0 || (size_t)n >= strlen(out)));
    qt_httpc_json_int((const char *)s1.buf, s1.len, "position", &v);
    qt_httpc_json_str((const char *)data, size, "caret", out, sizeof(out));
    return 0;
}
