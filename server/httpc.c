/*
 * httpc.c -- HTTP/1.1 client and incremental response parser (httpc.h).
 *
 * Parser state machine (enum qt_httpc_state):
 *   HEAD -> (1xx: HEAD again) -> DONE                   HEAD reply, 204, 304
 *                              -> BODY_LEN -> DONE      Content-Length
 *                              -> BODY_EOF (until close)
 *                              -> CHUNK_SIZE <-> CHUNK_DATA -> CHUNK_CRLF
 *                                 CHUNK_SIZE(0) -> TRAILER -> DONE
 * Invariants: head_len <= QT_HTTPC_HEAD_MAX; line_len <
 * QT_HTTPC_CHUNK_LINE_MAX; every byte is consumed by exactly one state,
 * so feeding any split of the input gives the same calls to the body
 * callback (concatenated) and the same result.
 */
#include "server/httpc.h"

#include "format/qt_assert.h"
#include "format/qt_err.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Largest chunk size accepted: far beyond any response, and keeps the
 * arithmetic below 2^64. */
#define HTTPC_CHUNK_MAX (UINT64_C(1) << 60)

int
qt_httpc_url_parse(const char *s, struct qt_httpc_url *u)
{
    qt_assert(s != NULL && u != NULL);
    memset(u, 0, sizeof(*u));
    if (strncmp(s, "https://", 8) == 0)
        return qt_fail(QT_EINVAL, "httpc: https is not supported");
    if (strncmp(s, "http://", 7) == 0)
        s += 7;
    const char *slash = strchr(s, '/');
    size_t hp = slash != NULL ? (size_t)(slash - s) : strlen(s);
    const char *colon = NULL;
    for (size_t i = 0; i < hp; i++)
        if (s[i] == ':')
            colon = s + i;
    if (s[0] == '[') { /* [v6]:port */
        const char *close = memchr(s, ']', hp);
        if (close == NULL)
            return qt_fail(QT_EINVAL, "httpc: bad IPv6 address");
        colon = close + 1 < s + hp && close[1] == ':' ? close + 1 : NULL;
        if (colon == NULL || (size_t)(close - s - 1) >= sizeof(u->host))
            return qt_fail(QT_EINVAL, "httpc: expected [IPv6]:PORT");
        memcpy(u->host, s + 1, (size_t)(close - s - 1));
    } else {
        if (colon == NULL || (size_t)(colon - s) >= sizeof(u->host) || colon == s)
            return qt_fail(QT_EINVAL, "httpc: expected HOST:PORT");
        memcpy(u->host, s, (size_t)(colon - s));
    }
    size_t plen = (size_t)(s + hp - colon - 1);
    if (plen == 0 || plen >= sizeof(u->port) || strspn(colon + 1, "0123456789") < plen)
        return qt_fail(QT_EINVAL, "httpc: bad port");
    memcpy(u->port, colon + 1, plen);
    if (slash != NULL) {
        size_t n = strlen(slash);
        while (n > 0 && slash[n - 1] == '/')
            n--;
        if (n >= sizeof(u->prefix))
            return qt_fail(QT_EINVAL, "httpc: path prefix too long");
        memcpy(u->prefix, slash, n);
    }
    return 0;
}

size_t
qt_httpc_urlencode(const char *s, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~';
        if (o + (plain ? 1 : 3) >= cap) {
            if (cap > 0)
                out[0] = '\0';
            return 0;
        }
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (cap > 0)
        out[o] = '\0';
    return o;
}

/* ---- response parser ------------------------------------------------------------ */

void
qt_httpc_resp_init(struct qt_httpc_resp *r, bool head_request)
{
    qt_assert(r != NULL);
    r->state = QT_HTTPC_HEAD;
    r->head_request = head_request;
    r->status = 0;
    r->chunked = false;
    r->has_length = false;
    r->content_length = 0;
    r->remaining = 0;
    r->body_bytes = 0;
    r->content_type[0] = '\0';
    r->head_len = 0;
    r->line_len = 0;
    r->crlf_seen = 0;
}

/* Case-insensitive "does header line l[0..n) have name `name`?"; sets *v to
 * the value with surrounding blanks trimmed. */
static bool
header_is(const char *l, size_t n, const char *name, const char **v, size_t *vn)
{
    size_t k = strlen(name);
    if (n <= k || l[k] != ':' || strncasecmp(l, name, k) != 0)
        return false;
    size_t a = k + 1, b = n;
    while (a < b && (l[a] == ' ' || l[a] == '\t'))
        a++;
    while (b > a && (l[b - 1] == ' ' || l[b - 1] == '\t'))
        b--;
    *v = l + a;
    *vn = b - a;
    return true;
}

static int
parse_header(struct qt_httpc_resp *r, const char *l, size_t n)
{
    const char *v;
    size_t vn;
    if (header_is(l, n, "Content-Length", &v, &vn)) {
        uint64_t x = 0;
        if (vn == 0 || vn > 18)
            return qt_fail(QT_ECORRUPT, "httpc: bad Content-Length");
        for (size_t i = 0; i < vn; i++) {
            if (v[i] < '0' || v[i] > '9')
                return qt_fail(QT_ECORRUPT, "httpc: bad Content-Length");
            x = x * 10 + (uint64_t)(v[i] - '0');
        }
        if (r->has_length && x != r->content_length)
            return qt_fail(QT_ECORRUPT, "httpc: conflicting Content-Length headers");
        r->has_length = true;
        r->content_length = x;
    } else if (header_is(l, n, "Transfer-Encoding", &v, &vn)) {
        /* chunked must be the last coding; anything else we cannot decode */
        if (vn < 7 || strncasecmp(v + vn - 7, "chunked", 7) != 0)
            return qt_fail(QT_ECORRUPT, "httpc: unsupported Transfer-Encoding");
        r->chunked = true;
    } else if (header_is(l, n, "Content-Type", &v, &vn)) {
        size_t c = vn < sizeof(r->content_type) - 1 ? vn : sizeof(r->content_type) - 1;
        memcpy(r->content_type, v, c);
        r->content_type[c] = '\0';
    }
    return 0;
}

/* The head is complete in head[0..head_len): status line and headers. */
static int
parse_head(struct qt_httpc_resp *r)
{
    const char *h = r->head, *end = r->head + r->head_len;
    const char *nl = memchr(h, '\n', (size_t)(end - h));
    qt_assert(nl != NULL);
    size_t n = (size_t)(nl - h);
    if (n < 12 || strncmp(h, "HTTP/1.", 7) != 0 || (h[7] != '0' && h[7] != '1') || h[8] != ' ')
        return qt_fail(QT_ECORRUPT, "httpc: not an HTTP/1.x response");
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (h[i] < '0' || h[i] > '9')
            return qt_fail(QT_ECORRUPT, "httpc: bad status code");
        st = st * 10 + (h[i] - '0');
    }
    if (st < 100 || (n > 12 && h[12] != ' ' && h[12] != '\r'))
        return qt_fail(QT_ECORRUPT, "httpc: bad status code");
    r->status = st;
    for (const char *l = nl + 1; l < end;) {
        const char *e = memchr(l, '\n', (size_t)(end - l));
        qt_assert(e != NULL);
        size_t ln = (size_t)(e - l);
        if (ln > 0 && l[ln - 1] == '\r')
            ln--;
        if (ln == 0)
            break; /* the blank line ending the head */
        if (l[0] == ' ' || l[0] == '\t')
            return qt_fail(QT_ECORRUPT, "httpc: obsolete header folding");
        int rc = parse_header(r, l, ln);
        if (rc != 0)
            return rc;
        l = e + 1;
    }
    return 0;
}

long
qt_httpc_header(const struct qt_httpc_resp *r, const char *name, char *out, size_t cap)
{
    qt_assert(r != NULL && name != NULL && (out != NULL || cap == 0));
    if (cap > 0)
        out[0] = '\0';
    if (r->status == 0) /* the head is not complete */
        return -1;
    const char *h = r->head, *end = r->head + r->head_len;
    const char *l = memchr(h, '\n', (size_t)(end - h));
    for (l = l != NULL ? l + 1 : end; l < end;) {
        const char *e = memchr(l, '\n', (size_t)(end - l));
        size_t ln = e != NULL ? (size_t)(e - l) : (size_t)(end - l);
        if (ln > 0 && l[ln - 1] == '\r')
            ln--;
        if (ln == 0)
            break;
        const char *v;
        size_t vn;
        if (header_is(l, ln, name, &v, &vn)) {
            if (cap > 0) {
                size_t c = vn < cap - 1 ? vn : cap - 1;
                memcpy(out, v, c);
                out[c] = '\0';
            }
            return (long)vn;
        }
        l = e != NULL ? e + 1 : end;
    }
    return -1;
}

/* After the head: choose how the body is delimited. */
static void
body_mode(struct qt_httpc_resp *r)
{
    if (r->head_request || r->status == 204 || r->status == 304)
        r->state = QT_HTTPC_DONE;
    else if (r->chunked)
        r->state = QT_HTTPC_CHUNK_SIZE;
    else if (r->has_length)
        r->state = r->content_length > 0 ? QT_HTTPC_BODY_LEN : QT_HTTPC_DONE,
        r->remaining = r->content_length;
    else
        r->state = QT_HTTPC_BODY_EOF;
}

static int
feed_head(struct qt_httpc_resp *r, const uint8_t *p, size_t n, size_t *used)
{
    size_t i = 0;
    while (i < n) {
        if (r->head_len >= sizeof(r->head)) {
            *used = i;
            return qt_fail(QT_ELIMIT, "httpc: response head exceeds QT_HTTPC_HEAD_MAX");
        }
        char c = (char)p[i++];
        r->head[r->head_len++] = c;
        /* blank line: "\n\n" or "\n\r\n" ends the head */
        bool end = c == '\n' && r->head_len >= 2 &&
                   (r->head[r->head_len - 2] == '\n' ||
                    (r->head_len >= 3 && r->head[r->head_len - 2] == '\r' &&
                     r->head[r->head_len - 3] == '\n'));
        if (!end)
            continue;
        *used = i;
        int rc = parse_head(r);
        if (rc != 0)
            return rc;
        if (r->status >= 100 && r->status < 200 && r->status != 101) {
            qt_httpc_resp_init(r, r->head_request); /* interim: the real one follows */
            return 0;
        }
        body_mode(r);
        return 0;
    }
    *used = i;
    return 0;
}

/* Accumulate a line (chunk size or trailer); true when it is complete
 * (line[0..line_len) without CR/LF). */
static int
feed_line(struct qt_httpc_resp *r, const uint8_t *p, size_t n, size_t *used, bool *done)
{
    *done = false;
    for (size_t i = 0; i < n; i++) {
        char c = (char)p[i];
        if (c == '\n') {
            if (r->line_len > 0 && r->line[r->line_len - 1] == '\r')
                r->line_len--;
            *used = i + 1;
            *done = true;
            return 0;
        }
        if (r->line_len + 1 >= sizeof(r->line)) {
            *used = i;
            return qt_fail(QT_ELIMIT, "httpc: chunk or trailer line too long");
        }
        r->line[r->line_len++] = c;
    }
    *used = n;
    return 0;
}

static int
chunk_size(struct qt_httpc_resp *r)
{
    uint64_t x = 0;
    uint32_t i = 0;
    for (; i < r->line_len; i++) {
        char c = r->line[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            break;
        x = x * 16 + (uint64_t)d;
        if (x > HTTPC_CHUNK_MAX)
            return qt_fail(QT_ECORRUPT, "httpc: chunk too large");
    }
    if (i == 0 || (i < r->line_len && r->line[i] != ';' && r->line[i] != ' ' && r->line[i] != '\t'))
        return qt_fail(QT_ECORRUPT, "httpc: bad chunk size");
    r->line_len = 0;
    r->remaining = x;
    r->state = x == 0 ? QT_HTTPC_TRAILER : QT_HTTPC_CHUNK_DATA;
    return 0;
}

static int
feed_body(struct qt_httpc_resp *r, const uint8_t *p, size_t n, size_t *used, qt_httpc_body_fn fn,
          void *arg)
{
    size_t k = n;
    if (r->state != QT_HTTPC_BODY_EOF && r->remaining < k)
        k = (size_t)r->remaining;
    *used = k;
    if (r->state != QT_HTTPC_BODY_EOF)
        r->remaining -= k;
    r->body_bytes += k;
    int rc = k > 0 && fn != NULL ? fn(arg, p, k) : 0;
    if (r->state == QT_HTTPC_BODY_LEN && r->remaining == 0)
        r->state = QT_HTTPC_DONE;
    else if (r->state == QT_HTTPC_CHUNK_DATA && r->remaining == 0)
        r->state = QT_HTTPC_CHUNK_CRLF, r->crlf_seen = 0;
    return rc;
}

/* One step on p[0..n): consumes *used bytes. */
static int
feed_step(struct qt_httpc_resp *r, const uint8_t *p, size_t n, size_t *used, qt_httpc_body_fn fn,
          void *arg)
{
    bool done;
    int rc;
    switch (r->state) {
    case QT_HTTPC_HEAD: return feed_head(r, p, n, used);
    case QT_HTTPC_BODY_LEN:
    case QT_HTTPC_BODY_EOF:
    case QT_HTTPC_CHUNK_DATA: return feed_body(r, p, n, used, fn, arg);
    case QT_HTTPC_CHUNK_SIZE:
        rc = feed_line(r, p, n, used, &done);
        return rc == 0 && done ? chunk_size(r) : rc;
    case QT_HTTPC_CHUNK_CRLF:
        *used = 1;
        if (p[0] == '\r' && r->crlf_seen == 0) {
            r->crlf_seen = 1;
            return 0;
        }
        if (p[0] != '\n')
            return qt_fail(QT_ECORRUPT, "httpc: missing CRLF after chunk data");
        r->state = QT_HTTPC_CHUNK_SIZE;
        r->line_len = 0;
        return 0;
    case QT_HTTPC_TRAILER:
        rc = feed_line(r, p, n, used, &done);
        if (rc == 0 && done) {
            if (r->line_len == 0)
                r->state = QT_HTTPC_DONE;
            r->line_len = 0;
        }
        return rc;
    default: *used = 0; return 0;
    }
}

int
qt_httpc_resp_feed(struct qt_httpc_resp *r, const uint8_t *buf, size_t len, size_t *consumed,
                   qt_httpc_body_fn fn, void *arg)
{
    qt_assert(r != NULL && consumed != NULL);
    qt_assert(buf != NULL || len == 0);
    size_t off = 0;
    while (off < len && r->state != QT_HTTPC_DONE) {
        size_t used = 0;
        int rc = feed_step(r, buf + off, len - off, &used, fn, arg);
        qt_assert(used <= len - off);
        off += used;
        if (rc != 0) {
            *consumed = off;
            return rc;
        }
    }
    *consumed = off;
    return r->state == QT_HTTPC_DONE ? 1 : 0;
}

int
qt_httpc_resp_eof(struct qt_httpc_resp *r)
{
    qt_assert(r != NULL);
    if (r->state == QT_HTTPC_DONE)
        return 1;
    if (r->state == QT_HTTPC_BODY_EOF) {
        r->state = QT_HTTPC_DONE;
        return 1;
    }
    return qt_fail(QT_ETRUNC, "httpc: connection closed before the response ended");
}

/* ---- JSON string lookup -------------------------------------------------------------- */

struct jcur {
    const char *p, *end;
};

static void
jws(struct jcur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int
jhex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static void
jput(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (*o + 1 < cap)
            out[*o] = s[i];
        (*o)++;
    }
}

static void
jput_cp(char *out, size_t cap, size_t *o, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80)
        b[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        b[0] = (char)(0xc0 | (cp >> 6)), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        b[0] = (char)(0xe0 | (cp >> 12)), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
        b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    else
        b[0] = (char)(0xf0 | (cp >> 18)), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    jput(out, cap, o, b, n);
}

/* \uXXXX at c->p (after the backslash-u); joins a surrogate pair. */
static int
jescape_u(struct jcur *c, char *out, size_t cap, size_t *o)
{
    if (c->end - c->p < 4 || jhex4(c->p) < 0)
        return -1;
    uint32_t cp = (uint32_t)jhex4(c->p);
    c->p += 4;
    if (cp >= 0xd800 && cp <= 0xdbff && c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u' &&
        jhex4(c->p + 2) >= 0xdc00 && jhex4(c->p + 2) <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)jhex4(c->p + 2) - 0xdc00);
        c->p += 6;
    } else if (cp >= 0xd800 && cp <= 0xdfff) {
        cp = 0xfffd;
    }
    if (out != NULL)
        jput_cp(out, cap, o, cp);
    return 0;
}

/* Parse a string at c->p ('"'); unescape into out if not NULL.  Returns
 * the unescaped length or -1. */
static long
jstring(struct jcur *c, char *out, size_t cap)
{
    if (c->p >= c->end || *c->p != '"')
        return -1;
    c->p++;
    size_t o = 0;
    while (c->p < c->end) {
        char ch = *c->p++;
        if (ch == '"') {
            if (out != NULL && cap > 0)
                out[o < cap ? o : cap - 1] = '\0';
            return (long)o;
        }
        if ((unsigned char)ch < 0x20)
            return -1;
        if (ch != '\\') {
            if (out != NULL)
                jput(out, cap, &o, &ch, 1);
            else
                o++;
            continue;
        }
        if (c->p >= c->end)
            return -1;
        char e = *c->p++, v;
        switch (e) {
        case '"': v = '"'; break;
        case '\\': v = '\\'; break;
        case '/': v = '/'; break;
        case 'b': v = '\b'; break;
        case 'f': v = '\f'; break;
        case 'n': v = '\n'; break;
        case 'r': v = '\r'; break;
        case 't': v = '\t'; break;
        case 'u':
            if (jescape_u(c, out, cap, &o) != 0)
                return -1;
            if (out == NULL)
                o++;
            continue;
        default: return -1;
        }
        if (out != NULL)
            jput(out, cap, &o, &v, 1);
        else
            o++;
    }
    return -1;
}

/* Skip one JSON value (bounded nesting). */
static int
jskip(struct jcur *c)
{
    jws(c);
    if (c->p >= c->end)
        return -1;
    if (*c->p == '"')
        return jstring(c, NULL, 0) < 0 ? -1 : 0;
    if (*c->p != '{' && *c->p != '[') {
        while (c->p < c->end && strchr(",}] \t\r\n", *c->p) == NULL)
            c->p++;
        return 0;
    }
    uint32_t depth = 0;
    while (c->p < c->end) {
        char ch = *c->p;
        if (ch == '"') {
            if (jstring(c, NULL, 0) < 0)
                return -1;
            continue;
        }
        c->p++;
        if (ch == '{' || ch == '[') {
            if (++depth > 256)
                return -1;
        } else if (ch == '}' || ch == ']') {
            if (--depth == 0)
                return 0;
        }
    }
    return -1;
}

/* Position c at the value of top-level key; true if found. */
static bool
jfind(struct jcur *c, const char *key)
{
    jws(c);
    if (c->p >= c->end || *c->p != '{')
        return false;
    c->p++;
    char k[64];
    for (;;) {
        jws(c);
        long kl = jstring(c, k, sizeof(k));
        if (kl < 0)
            return false;
        jws(c);
        if (c->p >= c->end || *c->p != ':')
            return false;
        c->p++;
        jws(c);
        if ((size_t)kl == strlen(key) && (size_t)kl < sizeof(k) && strcmp(k, key) == 0)
            return true;
        if (jskip(c) != 0)
            return false;
        jws(c);
        if (c->p >= c->end || *c->p != ',')
            return false;
        c->p++;
    }
}

long
qt_httpc_json_str(const char *json, size_t len, const char *key, char *out, size_t cap)
{
    qt_assert(json != NULL || len == 0);
    qt_assert(key != NULL && out != NULL && cap > 0);
    out[0] = '\0';
    struct jcur c = {.p = json, .end = json + len};
    if (!jfind(&c, key))
        return -1;
    long n = jstring(&c, out, cap);
    if (n < 0)
        out[0] = '\0';
    return n;
}

bool
qt_httpc_json_int(const char *json, size_t len, const char *key, int64_t *out)
{
    qt_assert(key != NULL && out != NULL);
    struct jcur c = {.p = json, .end = json + len};
    if (!jfind(&c, key) || c.p >= c.end)
        return false;
    bool neg = *c.p == '-';
    c.p += neg;
    uint64_t v = 0;
    const char *start = c.p;
    while (c.p < c.end && *c.p >= '0' && *c.p <= '9' && c.p - start < 18)
        v = v * 10 + (uint64_t)(*c.p++ - '0');
    if (c.p == start || (c.p < c.end && strchr(",} \t\r\n", *c.p) == NULL))
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

/* ---- the client ------------------------------------------------------------------------- */

int
qt_httpc_connect(const char *host, const char *port, int timeout_ms)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
        return -EHOSTUNREACH;
    int rc = -ECONNREFUSED;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            rc = -errno;
            close(fd);
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t el = sizeof(err);
        if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
            err != 0) {
            rc = err != 0 ? -err : -ETIMEDOUT;
            close(fd);
            continue;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        freeaddrinfo(res);
        return fd;
    }
    freeaddrinfo(res);
    return rc;
}

static int
send_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN ? QT_ETIMEOUT : -errno;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int
read_response(int fd, struct qt_httpc_resp *r, qt_httpc_body_fn fn, void *arg)
{
    uint8_t buf[16384];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? qt_fail(QT_ETIMEOUT, "httpc: timed out waiting for the server")
                                   : -errno;
        if (n == 0) {
            int rc = qt_httpc_resp_eof(r);
            return rc == 1 ? 0 : rc;
        }
        size_t used;
        int rc = qt_httpc_resp_feed(r, buf, (size_t)n, &used, fn, arg);
        if (rc == 1)
            return 0;
        if (rc != 0)
            return rc;
    }
}

int
qt_httpc_request(const struct qt_httpc_url *u, const char *method, const char *path,
                 const char *ctype, const void *body, size_t body_len, int timeout_ms,
                 struct qt_httpc_resp *r, qt_httpc_body_fn fn, void *arg)
{
    qt_assert(u != NULL && method != NULL && path != NULL && r != NULL);
    int fd = qt_httpc_connect(u->host, u->port, timeout_ms);
    if (fd < 0)
        return fd;
    char head[1024];
    int hn = snprintf(head, sizeof(head),
                      "%s %s%s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: qtdb-cli\r\n"
                      "Accept: */*\r\nConnection: close\r\n",
                      method, u->prefix, path, u->host, u->port);
    int rc = 0;
    if (hn < 0 || (size_t)hn >= sizeof(head)) {
        /* a long path (query text): send the request line in pieces */
        char tail[600];
        snprintf(tail, sizeof(tail),
                 " HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: qtdb-cli\r\nAccept: */*\r\n"
                 "Connection: close\r\n",
                 u->host, u->port);
        rc = send_all(fd, method, strlen(method));
        rc = rc ? rc : send_all(fd, " ", 1);
        rc = rc ? rc : send_all(fd, u->prefix, strlen(u->prefix));
        rc = rc ? rc : send_all(fd, path, strlen(path));
        rc = rc ? rc : send_all(fd, tail, strlen(tail));
    } else {
        rc = send_all(fd, head, (size_t)hn);
    }
    char extra[256];
    int en = body != NULL
                 ? snprintf(extra, sizeof(extra), "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                            ctype ? ctype : "application/octet-stream", body_len)
                 : snprintf(extra, sizeof(extra), "\r\n");
    rc = rc ? rc : send_all(fd, extra, (size_t)en);
    if (body != NULL && rc == 0)
        rc = send_all(fd, body, body_len);
    qt_httpc_resp_init(r, strcmp(method, "HEAD") == 0);
    if (rc == 0)
        rc = read_response(fd, r, fn, arg);
    close(fd);
    return rc;
}
