/*
 * test_httpc.c -- the CLI's HTTP client: response framing (Content-Length,
 * chunked with extensions and trailers, read-until-close, no-body
 * statuses, interim 1xx), every two-way split and byte-at-a-time feeding
 * giving the same result, truncation at every byte, hostile heads and
 * chunk sizes, response header lookup, the JSON error-body lookup, URLs and percent-encoding, and
 * a request against a local socket server.
 */
#include "format/qt_err.h"
#include "harness.h"
#include "server/httpc.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct qt_httpc_resp resp;

struct body {
    char buf[65536];
    size_t len;
};

static int
on_body(void *arg, const uint8_t *p, size_t n)
{
    struct body *b = arg;
    if (b->len + n > sizeof(b->buf))
        return QT_ELIMIT;
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 0;
}

/* Feed text in pieces of `step` bytes (0: whole), then EOF if incomplete.
 * Returns 1 complete, else the error; body in *b. */
static int
run(const char *text, size_t len, size_t step, bool eof, struct body *b)
{
    qt_httpc_resp_init(&resp, false);
    b->len = 0;
    size_t off = 0;
    int rc = 0;
    while (off < len) {
        size_t k = step == 0 || step > len - off ? len - off : step;
        size_t used = 0;
        rc = qt_httpc_resp_feed(&resp, (const uint8_t *)text + off, k, &used, on_body, b);
        off += used;
        if (rc != 0)
            return rc;
        if (used < k)
            return -999; /* stopped early without a result */
    }
    return eof ? qt_httpc_resp_eof(&resp) : rc;
}

static const char *const good[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/csv\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n"
    "0\r\nX-Trailer: t\r\n\r\n",
    "HTTP/1.0 200 OK\r\n\r\nuntil close",
    "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
    "HTTP/1.1 200 OK\nContent-Length: 3\n\nabc",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
};
static const char *const want_body[] = {"hello", "hello world", "until close", "",
                                        "{}",    "abc",         "0123456789"};
static const int want_status[] = {200, 200, 200, 204, 400, 200, 200};

TEST(good_responses_any_split)
{
    static struct body b, b2;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        size_t len = strlen(good[i]);
        CHECK_EQ(run(good[i], len, 0, true, &b), 1);
        CHECK_EQ(resp.status, want_status[i]);
        CHECK(b.len == strlen(want_body[i]) && memcmp(b.buf, want_body[i], b.len) == 0);
        for (size_t step = 1; step <= len; step++) {
            CHECK_EQ(run(good[i], len, step, true, &b2), 1);
            CHECK(b2.len == b.len && memcmp(b2.buf, b.buf, b.len) == 0);
        }
    }
    CHECK(strcmp((run(good[0], strlen(good[0]), 0, false, &b), resp.content_type), "text/csv") ==
          0);
}

/* Header lookup: case-insensitive name, trimmed value, the first of
 * repeats, cut to the buffer with the full length returned, CRLF or LF,
 * only the final response after an interim 100, nothing before the head. */
TEST(header_lookup)
{
    static struct body b;
    char v[8];
    qt_httpc_resp_init(&resp, false);
    CHECK_EQ(qt_httpc_header(&resp, "X-Qtdb-Source", v, sizeof(v)), -1);
    const char *t = "HTTP/1.1 100 Continue\r\nX-Gone: 1\r\n\r\n"
                    "HTTP/1.1 200 OK\r\nx-qtdb-source: \t raw \r\nX-Qtdb-Rows: 12\r\n"
                    "X-Qtdb-Rows: 13\r\nX-Long: 0123456789\r\nContent-Length: 0\r\n\r\n";
    CHECK_EQ(run(t, strlen(t), 7, true, &b), 1);
    CHECK_EQ(qt_httpc_header(&resp, "X-Qtdb-Source", v, sizeof(v)), 3);
    CHECK(strcmp(v, "raw") == 0);
    CHECK_EQ(qt_httpc_header(&resp, "x-qtdb-rows", v, sizeof(v)), 2);
    CHECK(strcmp(v, "12") == 0);
    CHECK_EQ(qt_httpc_header(&resp, "X-Long", v, sizeof(v)), 10);
    CHECK(strcmp(v, "0123456") == 0);
    CHECK_EQ(qt_httpc_header(&resp, "X-Gone", v, sizeof(v)), -1);
    CHECK_EQ(qt_httpc_header(&resp, "X-Qtdb", v, sizeof(v)), -1); /* a prefix is not a name */
    CHECK_EQ(qt_httpc_header(&resp, "Content-Length", NULL, 0), 1);
    t = "HTTP/1.1 200 OK\nA: b\n\n";
    CHECK_EQ(run(t, strlen(t), 0, true, &b), 1);
    CHECK_EQ(qt_httpc_header(&resp, "A", v, sizeof(v)), 1);
    CHECK(strcmp(v, "b") == 0);
}

TEST(bytes_after_response_not_consumed)
{
    static struct body b;
    const char *t = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
    qt_httpc_resp_init(&resp, false);
    size_t used;
    CHECK_EQ(qt_httpc_resp_feed(&resp, (const uint8_t *)t, strlen(t), &used, on_body, &b), 1);
    CHECK_EQ(used, strlen(t) - 5);
    qt_httpc_resp_init(&resp, true); /* HEAD: no body whatever Content-Length says */
    t = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    CHECK_EQ(qt_httpc_resp_feed(&resp, (const uint8_t *)t, strlen(t), &used, on_body, &b), 1);
}

TEST(truncation_every_byte)
{
    static struct body b;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        size_t len = strlen(good[i]);
        for (size_t cut = 0; cut < len; cut++) {
            int rc = run(good[i], cut, 0, true, &b);
            /* only a read-until-close body may end anywhere after its head */
            CHECK(rc == QT_ETRUNC || (rc == 1 && i == 2) || (rc == 1 && i == 3 && cut == len));
        }
    }
}

TEST(hostile_responses)
{
    static struct body b;
    static const struct {
        const char *text;
        int rc;
    } bad[] = {
        {"SMTP ready\r\n\r\n", QT_ECORRUPT},
        {"HTTP/2 200 OK\r\n\r\n", QT_ECORRUPT},
        {"HTTP/1.1 2x0 OK\r\n\r\n", QT_ECORRUPT},
        {"HTTP/1.1 099 Low\r\n\r\n", QT_ECORRUPT},
        {"HTTP/1.1 2000 OK\r\n\r\n", QT_ECORRUPT},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", QT_ECORRUPT},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", QT_ECORRUPT},
        {"HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n", QT_ECORRUPT},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", QT_ECORRUPT},
        {"HTTP/1.1 200 OK\r\n folded\r\n\r\n", QT_ECORRUPT},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", QT_ECORRUPT},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", QT_ECORRUPT},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1x\r\n", QT_ECORRUPT},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXY", QT_ECORRUPT},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
         QT_ECORRUPT},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_RC(run(bad[i].text, strlen(bad[i].text), 0, false, &b), bad[i].rc);
        CHECK_RC(run(bad[i].text, strlen(bad[i].text), 1, false, &b), bad[i].rc);
    }
    /* an endless head and an endless chunk-size line hit their limits */
    char *big = malloc(QT_HTTPC_HEAD_MAX + 64);
    CHECK(big != NULL);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', QT_HTTPC_HEAD_MAX + 40);
    int rc = run(big, QT_HTTPC_HEAD_MAX + 60, 4096, false, &b);
    free(big);
    CHECK_RC(rc, QT_ELIMIT);
    static char chunk[1024];
    int n =
        snprintf(chunk, sizeof(chunk), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1");
    memset(chunk + n, ';', sizeof(chunk) - (size_t)n);
    CHECK_RC(run(chunk, sizeof(chunk), 7, false, &b), QT_ELIMIT);
}

TEST(json_lookup)
{
    char out[256];
    const char *j = "{\"a\":{\"error\":\"nested\",\"x\":[1,{\"y\":\"]\"}]},\"n\":-12,"
                    "\"error\":\"bad \\\"q\\\" \\u00e9\\ud83d\\ude00\\n\",\"position\":7}";
    CHECK_EQ(qt_httpc_json_str(j, strlen(j), "error", out, sizeof(out)), 15);
    CHECK(strcmp(out, "bad \"q\" \xc3\xa9\xf0\x9f\x98\x80\n") == 0);
    int64_t v;
    CHECK(qt_httpc_json_int(j, strlen(j), "position", &v) && v == 7);
    CHECK(qt_httpc_json_int(j, strlen(j), "n", &v) && v == -12);
    CHECK(!qt_httpc_json_int(j, strlen(j), "error", &v));
    CHECK_EQ(qt_httpc_json_str(j, strlen(j), "missing", out, sizeof(out)), -1);
    CHECK_EQ(qt_httpc_json_str(j, strlen(j), "n", out, sizeof(out)), -1);
    const char *lone = "{\"e\":\"\\ud800x\"}";
    CHECK_EQ(qt_httpc_json_str(lone, strlen(lone), "e", out, sizeof(out)), 4);
    CHECK(strcmp(out, "\xef\xbf\xbdx") == 0);
    const char *bad[] = {"",
                         "[",
                         "{",
                         "{\"e\"",
                         "{\"e\":",
                         "{\"e\":\"x",
                         "{\"e\":\"\\q\"}",
                         "{\"e\":\"\\u12\"}",
                         "{\"a\":[[[[",
                         "{\"e\":\"a\x01\"}",
                         "{e:1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ(qt_httpc_json_str(bad[i], strlen(bad[i]), "e", out, sizeof(out)), -1);
    char small[4];
    CHECK_EQ(qt_httpc_json_str(j, strlen(j), "error", small, sizeof(small)), 15);
    CHECK(strlen(small) == 3); /* cut, still terminated */
}

TEST(urls)
{
    struct qt_httpc_url u;
    CHECK_OK(qt_httpc_url_parse("http://127.0.0.1:8086", &u));
    CHECK(strcmp(u.host, "127.0.0.1") == 0 && strcmp(u.port, "8086") == 0 && u.prefix[0] == 0);
    CHECK_OK(qt_httpc_url_parse("localhost:1/qtdb/", &u));
    CHECK(strcmp(u.host, "localhost") == 0 && strcmp(u.prefix, "/qtdb") == 0);
    CHECK_OK(qt_httpc_url_parse("http://[::1]:9/", &u));
    CHECK(strcmp(u.host, "::1") == 0 && strcmp(u.port, "9") == 0);
    const char *bad[] = {"https://x:1", "x", "x:", ":1", "x:1a", "[::1]", "[::1:2", "x:123456789"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_RC(qt_httpc_url_parse(bad[i], &u), QT_EINVAL);
    char out[64];
    CHECK_EQ(qt_httpc_urlencode("a b&c=d/é~", 11, out, sizeof(out)), 23);
    CHECK(strcmp(out, "a%20b%26c%3Dd%2F%C3%A9~") == 0);
    CHECK_EQ(qt_httpc_urlencode("abcdef", 6, out, 4), 0);
    CHECK(out[0] == '\0');
}

/* A one-shot server: accepts one connection, reads the request head, sends
 * `reply`, closes. */
struct srv {
    int lfd;
    const char *reply;
    char req[4096];
};

static void *
srv_main(void *arg)
{
    struct srv *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t n = 0;
    while (n < sizeof(s->req) - 1 && strstr(s->req, "\r\n\r\n") == NULL) {
        ssize_t r = recv(fd, s->req + n, sizeof(s->req) - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        s->req[n] = '\0';
    }
    send(fd, s->reply, strlen(s->reply), MSG_NOSIGNAL);
    close(fd);
    return NULL;
}

TEST(request_roundtrip)
{
    struct srv s = {.reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n0\r\n\r\n"};
    s.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    CHECK(bind(s.lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(s.lfd, 4) == 0);
    CHECK(getsockname(s.lfd, (struct sockaddr *)&a, &al) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, srv_main, &s) == 0);
    struct qt_httpc_url u;
    char url[64];
    snprintf(url, sizeof(url), "127.0.0.1:%u/p", (unsigned)ntohs(a.sin_port));
    CHECK_OK(qt_httpc_url_parse(url, &u));
    static struct body b;
    int rc = qt_httpc_request(&u, "GET", "/query?q=x%20y", NULL, NULL, 0, 5000, &resp, on_body, &b);
    pthread_join(t, NULL);
    close(s.lfd);
    CHECK_OK(rc);
    CHECK_EQ(resp.status, 200);
    CHECK(b.len == 3 && memcmp(b.buf, "abc", 3) == 0);
    CHECK(strncmp(s.req, "GET /p/query?q=x%20y HTTP/1.1\r\n", 31) == 0);
    CHECK(strstr(s.req, "Connection: close\r\n") != NULL);
    /* nobody listening now */
    CHECK(qt_httpc_request(&u, "GET", "/", NULL, NULL, 0, 2000, &resp, on_body, &b) < 0);
}
