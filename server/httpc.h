/*
 * httpc.h -- a small blocking HTTP/1.1 client for the CLI (`qtdb query`,
 * tests): one request per connection (Connection: close), no TLS, no
 * redirects.
 *
 * The response parser is incremental and takes untrusted bytes: any split
 * of the input gives the same result, every length is bounded
 * (QT_HTTPC_HEAD_MAX for the status line and headers,
 * QT_HTTPC_CHUNK_LINE_MAX for a chunk-size line, chunk sizes below 2^60),
 * and it has a fuzz target (fuzz/fuzz_httpc.c).  Bodies are delivered to a
 * callback as they arrive, never buffered whole.
 */
#ifndef QT_HTTPC_H
#define QT_HTTPC_H

#include "format/qt_limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "http://host:port[/prefix]" or "host:port"; the prefix is prepended to
 * request paths (a server behind a path-routing proxy). */
struct qt_httpc_url {
    char host[256];
    char port[8];
    char prefix[256];
};

/* 0 or QT_EINVAL (https, no port, too long). */
int qt_httpc_url_parse(const char *s, struct qt_httpc_url *u);

enum qt_httpc_state {
    QT_HTTPC_HEAD = 0,
    QT_HTTPC_BODY_LEN,   /* Content-Length bytes remain */
    QT_HTTPC_BODY_EOF,   /* body until the connection closes */
    QT_HTTPC_CHUNK_SIZE, /* reading a chunk-size line */
    QT_HTTPC_CHUNK_DATA, /* inside a chunk */
    QT_HTTPC_CHUNK_CRLF, /* the CRLF after chunk data */
    QT_HTTPC_TRAILER,    /* trailer lines after the last chunk */
    QT_HTTPC_DONE
};

struct qt_httpc_resp {
    enum qt_httpc_state state;
    bool head_request; /* response to HEAD: no body whatever the headers */
    int status;        /* 100..999 once the head is parsed */
    bool chunked;
    bool has_length;
    uint64_t content_length;
    uint64_t remaining; /* BODY_LEN / CHUNK_DATA */
    uint64_t body_bytes;
    char content_type[128]; /* "" if absent; cut at 127 bytes */
    uint32_t head_len;
    uint32_t line_len;
    uint8_t crlf_seen;
    char line[QT_HTTPC_CHUNK_LINE_MAX];
    char head[QT_HTTPC_HEAD_MAX];
};

/* Body bytes as they arrive; non-zero stops parsing with that result. */
typedef int (*qt_httpc_body_fn)(void *arg, const uint8_t *p, size_t n);

void qt_httpc_resp_init(struct qt_httpc_resp *r, bool head_request);

/*
 * Feed buf[0..len).  Returns 0 (need more), 1 (the response is complete:
 * bytes after it are not consumed), QT_ECORRUPT (not HTTP/1.x, bad
 * header, bad chunk), QT_ELIMIT (head or chunk line too long) with a
 * reason in qt_err_detail(), or the callback's non-zero result.
 * *consumed is the number of bytes used.
 */
int qt_httpc_resp_feed(struct qt_httpc_resp *r, const uint8_t *buf, size_t len, size_t *consumed,
                       qt_httpc_body_fn fn, void *arg);

/* The peer closed: 1 if that completes the response (a body delimited by
 * the close), else QT_ETRUNC. */
int qt_httpc_resp_eof(struct qt_httpc_resp *r);

/* The value of the first response header `name` (case-insensitive),
 * blanks trimmed, into out (NUL-terminated, cut at cap-1 bytes): its full
 * length, or -1 when absent or the head is not parsed yet. */
long qt_httpc_header(const struct qt_httpc_resp *r, const char *name, char *out, size_t cap);

/*
 * The string value of "key" at the top level of a JSON object in
 * json[0..len) (as qtdb's error bodies are), unescaped into out (always
 * NUL-terminated, cut at cap-1 bytes).  Returns the unescaped length, or -1
 * if not found / not a string / malformed.  \u escapes are decoded to UTF-8
 * (surrogate pairs joined; lone surrogates become U+FFFD).
 */
long qt_httpc_json_str(const char *json, size_t len, const char *key, char *out, size_t cap);
/* The integer value of "key" (JSON number without fraction), or false. */
bool qt_httpc_json_int(const char *json, size_t len, const char *key, int64_t *out);

/*
 * Connect to u, send `method path` (path is prefixed with u->prefix; it
 * must already be percent-encoded) with an optional body, and parse the
 * response into *r, passing body bytes to fn.  timeout_ms bounds connect
 * and each read/write.  Returns 0 with r->status set, or -errno (connect,
 * I/O), QT_ETIMEOUT, or a parse error.
 */
int qt_httpc_request(const struct qt_httpc_url *u, const char *method, const char *path,
                     const char *ctype, const void *body, size_t body_len, int timeout_ms,
                     struct qt_httpc_resp *r, qt_httpc_body_fn fn, void *arg);

/* Percent-encode s[0..n) for a query-string value into out (NUL-terminated);
 * returns the length, or 0 and "" if cap is too small. */
size_t qt_httpc_urlencode(const char *s, size_t n, char *out, size_t cap);

/* Connect a TCP socket to host:port within timeout_ms: fd, or -errno. */
int qt_httpc_connect(const char *host, const char *port, int timeout_ms);

#endif
