/*
 * test_ingest.c -- server/ingest: points to batch lines (values, keys,
 * capacity), streams split at every possible place giving identical
 * output, bad and over-long lines, the line-max setting, final lines,
 * carry-buffer bounds and allocation failure, Graphite streams, and
 * commits into a real engine with storage rejects mapped to their origin.
 */
#include "format/qt_alloc.h"
#include "format/qt_limits.h"
#include "harness.h"
#include "server/ingest.h"
#include "server/sbuf.h"

#include <stdlib.h>
#include <string.h>

static struct qt_ilp_point pt;
static char scratch[QT_ILP_SCRATCH_MAX];

/* ---- a recording sink: every committed line encoded, plus its origin ---- */

struct rec {
    struct qt_sbuf out;    /* per line: origin (8 bytes) + qt_batch_encode(line) */
    struct qt_sbuf errors; /* per bad line: "line:column:code\n" */
    uint32_t commits;
    uint64_t lines;
    int fail_with; /* on_full returns this when non-zero */
};

static void
rec_init(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    qt_sbuf_init(&r->out, 64u << 20);
    qt_sbuf_init(&r->errors, 16u << 20);
}

static void
rec_deinit(struct rec *r)
{
    qt_sbuf_deinit(&r->out);
    qt_sbuf_deinit(&r->errors);
}

static void
rec_drain(struct rec *r, struct qt_ingest_batch *b)
{
    static uint8_t enc[2 * QT_LINE_MAX + 8192];
    for (uint32_t i = 0; i < b->n; i++) {
        size_t len = 0;
        int rc = qt_batch_encode(&b->lines[i], 1, enc, sizeof(enc), &len);
        if (rc != 0) {
            qt_sbuf_str(&r->out, "ENCODE-FAILED");
            continue;
        }
        qt_sbuf_add(&r->out, &b->origin[i], sizeof(b->origin[i]));
        qt_sbuf_add(&r->out, enc, len);
        r->lines++;
    }
    r->commits++;
    qt_ingest_batch_reset(b);
}

static int
rec_full(void *arg, struct qt_ingest_batch *b)
{
    struct rec *r = arg;
    if (r->fail_with != 0)
        return r->fail_with;
    rec_drain(r, b);
    return 0;
}

static int
rec_error(void *arg, const struct qt_ilp_line_error *e)
{
    struct rec *r = arg;
    qt_sbuf_printf(&r->errors, "%llu:%u:%d\n", (unsigned long long)e->line_no, e->column, e->code);
    return 0;
}

static void
stream_open(struct qt_ingest_stream *s, struct rec *r, enum qt_ingest_proto proto,
            uint32_t line_max)
{
    struct qt_ingest_stream_opts o = {.proto = proto,
                                      .precision = QT_ILP_NS,
                                      .line_max = line_max,
                                      .origin_is_line = true,
                                      .on_error = rec_error,
                                      .err_arg = r,
                                      .on_full = rec_full,
                                      .full_arg = r};
    qt_ingest_stream_init(s, &o, &pt, scratch, sizeof(scratch));
}

/* Feed text in chunks whose sizes come from rng (1..maxchunk); drain the
 * batch at the end.  Returns the first feed error. */
static int
feed_split(struct rec *r, struct qt_ingest_batch *b, enum qt_ingest_proto proto, uint32_t line_max,
           const char *text, size_t len, uint64_t *rng, size_t maxchunk)
{
    struct qt_ingest_stream s;
    stream_open(&s, r, proto, line_max);
    int rc = 0;
    size_t off = 0;
    while (off < len && rc == 0) {
        size_t k = rng != NULL ? 1 + (size_t)(qt_test_rand(rng) % maxchunk) : len;
        if (k > len - off)
            k = len - off;
        rc = qt_ingest_stream_feed(&s, b, (const uint8_t *)text + off, k, false, 1000);
        if (qt_ingest_stream_pending(&s) > QT_ILP_BATCH_BUF_MIN)
            rc = -1;
        off += k;
    }
    if (rc == 0)
        rc = qt_ingest_stream_feed(&s, b, NULL, 0, true, 1000);
    rec_drain(r, b);
    qt_ingest_stream_deinit(&s);
    return rc;
}

/* A random mix of good lines, bad lines, blanks, comments, CRLF. */
static void
gen_text(struct qt_sbuf *t, uint64_t *rng, uint32_t lines)
{
    for (uint32_t i = 0; i < lines; i++) {
        uint64_t r = qt_test_rand(rng);
        switch (r % 12) {
        case 0: qt_sbuf_str(t, "bad line without fields\n"); break;
        case 1: qt_sbuf_str(t, "\n"); break;
        case 2: qt_sbuf_str(t, "# a comment\n"); break;
        case 3:
            qt_sbuf_printf(t, "water,site=w%u flow=%u.5,ok=true %llu\r\n", (unsigned)(r % 50),
                           (unsigned)(r >> 20) % 1000, (unsigned long long)(r >> 8));
            break;
        case 4:
            qt_sbuf_printf(t, "ev,site=s%u msg=\"hello \\\"x\\\" %u\",n=%ui\n", (unsigned)(r % 7),
                           (unsigned)(r >> 33), (unsigned)(r >> 40));
            break;
        case 5: qt_sbuf_str(t, "esc\\ aped,k\\,1=v\\=1 f\\ x=1i 5\n"); break;
        default:
            qt_sbuf_printf(t, "air,district=d%u,station=a%04u pm25=%u.%u,temp=-%u.25 %llu\n",
                           (unsigned)(r % 10), (unsigned)(r >> 12) % 500, (unsigned)(r >> 24) % 300,
                           (unsigned)(r >> 40) % 10, (unsigned)(r >> 50) % 30,
                           (unsigned long long)(1794787200000000000ull + (r >> 30)));
        }
    }
}

static bool
sbuf_eq(const struct qt_sbuf *a, const struct qt_sbuf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

TEST(batch_add_copies_point)
{
    struct qt_ingest_batch b;
    CHECK_OK(qt_ingest_batch_init(&b, 4, 0));
    const char *line = "m\\ x,z=1,a=b\\ c f=1.5,i=-3i,b=t,s=\"q\\\"s\" 42";
    struct qt_ilp_opts o = {QT_ILP_NS, 0};
    CHECK_OK(
        qt_ilp_parse_line(&o, (const uint8_t *)line, strlen(line), scratch, sizeof(scratch), &pt));
    CHECK_OK(qt_ingest_batch_add(&b, &pt, 77));
    memset(scratch, 'X', sizeof(scratch)); /* the batch must not point here */
    CHECK_EQ(b.n, 1);
    CHECK_EQ(b.points, 4);
    CHECK_EQ(b.origin[0], 77);
    const struct qt_batch_line *l = &b.lines[0];
    CHECK(l->key_len == strlen("m\\ x,a=b\\ c,z=1") &&
          memcmp(l->key, "m\\ x,a=b\\ c,z=1", l->key_len) == 0);
    CHECK_EQ(l->ts, 42);
    CHECK_EQ(l->n_fields, 4);
    CHECK(l->fields[0].vtype == QT_VT_FLOAT && l->fields[0].v.f == 1.5);
    CHECK(l->fields[1].vtype == QT_VT_INT && l->fields[1].v.i == -3);
    CHECK(l->fields[2].vtype == QT_VT_BOOL && l->fields[2].v.b == 1);
    CHECK(l->fields[3].vtype == QT_VT_STRING && l->fields[3].v.s.len == 3);
    CHECK(memcmp(l->fields[3].v.s.p, "q\"s", 3) == 0);
    CHECK(l->fields[1].name_len == 1 && l->fields[1].name[0] == 'i');
    CHECK_OK(qt_batch_line_check(l));
    qt_ingest_batch_deinit(&b);
}

TEST(batch_full_and_reset)
{
    struct qt_ingest_batch b;
    CHECK_OK(qt_ingest_batch_init(&b, 3, 0));
    struct qt_ilp_opts o = {QT_ILP_NS, 0};
    const char *line = "m f=1,g=2 1";
    CHECK_OK(
        qt_ilp_parse_line(&o, (const uint8_t *)line, strlen(line), scratch, sizeof(scratch), &pt));
    for (int i = 0; i < 3; i++)
        CHECK_OK(qt_ingest_batch_add(&b, &pt, (uint64_t)i));
    CHECK_EQ(qt_ingest_batch_add(&b, &pt, 9), QT_INGEST_FULL);
    CHECK_EQ(b.n, 3);
    CHECK_EQ(b.points, 6);
    qt_ingest_batch_reset(&b);
    CHECK_EQ(b.n, 0);
    CHECK_OK(qt_ingest_batch_add(&b, &pt, 9));
    /* a maximal line always fits an empty batch */
    static char big[QT_LINE_MAX + 1];
    int n = snprintf(big, sizeof(big), "m s=\"");
    memset(big + n, 'x', QT_STRING_VALUE_MAX);
    n += QT_STRING_VALUE_MAX;
    n += snprintf(big + n, sizeof(big) - (size_t)n, "\"");
    CHECK_OK(qt_ilp_parse_line(&o, (const uint8_t *)big, (size_t)n, scratch, sizeof(scratch), &pt));
    qt_ingest_batch_reset(&b);
    CHECK_OK(qt_ingest_batch_add(&b, &pt, 1));
    qt_ingest_batch_deinit(&b);
}

TEST(stream_any_split_same_result)
{
    uint64_t rng = qt_test_seed() ^ 0x1234;
    struct qt_sbuf text;
    qt_sbuf_init(&text, 64u << 20);
    gen_text(&text, &rng, 3000);
    struct qt_ingest_batch b;
    CHECK_OK(qt_ingest_batch_init(&b, 100, 0)); /* small: many on_full commits */
    struct rec whole, split;
    rec_init(&whole);
    CHECK_OK(feed_split(&whole, &b, QT_INGEST_ILP, QT_LINE_MAX, text.p, text.len, NULL, 0));
    CHECK(whole.lines > 1500 && whole.commits > 10);
    CHECK(whole.errors.len > 0);
    size_t chunks[] = {1, 2, 3, 7, 64, 1000, 70000};
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        rec_init(&split);
        CHECK_OK(
            feed_split(&split, &b, QT_INGEST_ILP, QT_LINE_MAX, text.p, text.len, &rng, chunks[i]));
        CHECK(sbuf_eq(&whole.out, &split.out));
        CHECK(sbuf_eq(&whole.errors, &split.errors));
        rec_deinit(&split);
    }
    rec_deinit(&whole);
    qt_sbuf_deinit(&text);
    qt_ingest_batch_deinit(&b);
}

TEST(stream_overlong_lines)
{
    /* an over-long line between good ones, fed in every chunk size */
    struct qt_sbuf text;
    qt_sbuf_init(&text, 1u << 20);
    qt_sbuf_str(&text, "a f=1i 1\nb f=");
    for (uint32_t i = 0; i < QT_LINE_MAX + 10; i++)
        qt_sbuf_add(&text, "9", 1);
    qt_sbuf_str(&text, " 2\nc f=3i 3\n");
    qt_sbuf_str(&text, "d,t=");
    for (uint32_t i = 0; i < 3 * QT_LINE_MAX; i++)
        qt_sbuf_add(&text, "y", 1);
    qt_sbuf_str(&text, " f=1 4\ne f=5i 5");
    struct qt_ingest_batch b;
    CHECK_OK(qt_ingest_batch_init(&b, 16, 0));
    uint64_t rng = qt_test_seed() ^ 0x77;
    size_t chunks[] = {0, 1, 13, 4096, 65537, 200000};
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        struct rec r;
        rec_init(&r);
        CHECK_OK(feed_split(&r, &b, QT_INGEST_ILP, QT_LINE_MAX, text.p, text.len,
                            chunks[i] ? &rng : NULL, chunks[i]));
        CHECK_EQ(r.lines, 3); /* a, c, e */
        const char *e = qt_sbuf_cstr(&r.errors);
        CHECK(strstr(e, "2:") == e);      /* line 2 first */
        CHECK(strstr(e, "\n4:") != NULL); /* then line 4 */
        int nl = 0;
        for (const char *p = e; *p; p++)
            nl += *p == '\n';
        CHECK_EQ(nl, 2); /* each reported once */
        rec_deinit(&r);
    }
    qt_sbuf_deinit(&text);
    qt_ingest_batch_deinit(&b);
}

TEST(stream_line_max_setting)
{
    const char *text = "short f=1i 1\nmuch_longer_measurement f=2i 2\r\nok f=3i 3\n";
    struct qt_ingest_batch b;
    CHECK_OK(qt_ingest_batch_init(&b, 16, 0));
    struct rec r;
    rec_init(&r);
    CHECK_OK(feed_split(&r, &b, QT_INGEST_ILP, 20, text, strlen(text), NULL, 0));
    CHECK_EQ(r.lines, 2);
    const char *e = qt_sbuf_cstr(&r.errors);
    char want[64];
    snprintf(want, sizeof(want), "2:21:%d\n", QT_ELIMIT);
    CHECK(strcmp(e, want) == 0);
    rec_deinit(&r);
    /* exactly line_max bytes (plus CR) is accepted */
    rec_init(&r);
    CHECK_OK(feed_split(&r, &b, QT_INGEST_ILP, 12, "short f=1i 1\r\n", 14, NULL, 0));
    CHECK_EQ(r.lines, 1);
    rec_deinit(&r);
    qt_ingest_batch_deinit(&b);
}

TEST(stream_full_callback_error_stops)
{
    struct qt_ingest_batch b;
    CHECK_OK(qt_ingest_batch_init(&b, 2, 0));
    struct rec r;
    rec_init(&r);
    r.fail_with = QT_EREADONLY;
    struct qt_ingest_stream s;
    stream_open(&s, &r, QT_INGEST_ILP, QT_LINE_MAX);
    const char *t = "a f=1 1\nb f=1 1\nc f=1 1\nd f=1 1\n";
    CHECK_RC(qt_ingest_stream_feed(&s, &b, (const uint8_t *)t, strlen(t), false, 0), QT_EREADONLY);
    CHECK_EQ(b.n, 2);
    qt_ingest_stream_deinit(&s);
    rec_deinit(&r);
    qt_ingest_batch_deinit(&b);
}

TEST(stream_final_and_timestamps)
{
    struct qt_ingest_batch b;
    CHECK_OK(qt_ingest_batch_init(&b, 16, 0));
    struct rec r;
    rec_init(&r);
    struct qt_ingest_stream s;
    stream_open(&s, &r, QT_INGEST_ILP, QT_LINE_MAX);
    CHECK_OK(qt_ingest_stream_feed(&s, &b, (const uint8_t *)"nots f=1", 8, false, 555));
    CHECK_EQ(qt_ingest_stream_pending(&s), 8);
    CHECK_EQ(b.n, 0);
    CHECK_OK(qt_ingest_stream_feed(&s, &b, NULL, 0, true, 777));
    CHECK_EQ(b.n, 1);
    CHECK_EQ(b.lines[0].ts, 777); /* "now" of the feed that completed the line */
    CHECK_EQ(qt_ingest_stream_pending(&s), 0);
    qt_ingest_stream_deinit(&s);
    rec_deinit(&r);
    qt_ingest_batch_deinit(&b);
}

TEST(stream_graphite)
{
    struct qt_ingest_batch b;
    CHECK_OK(qt_ingest_batch_init(&b, 16, 0));
    struct rec r;
    rec_init(&r);
    const char *t = "collectd.h1.cpu-0.idle 97.5 1794787200\nbad\nx.y nan 1\nz 1 1794787201\n";
    CHECK_OK(feed_split(&r, &b, QT_INGEST_GRAPHITE, QT_LINE_MAX, t, strlen(t), NULL, 0));
    CHECK_EQ(r.lines, 2);
    CHECK(strncmp(qt_sbuf_cstr(&r.errors), "2:", 2) == 0);
    rec_deinit(&r);
    qt_ingest_batch_deinit(&b);
}

TEST(stream_carry_alloc_failure)
{
    struct qt_ingest_batch b;
    CHECK_OK(qt_ingest_batch_init(&b, 16, 0));
    struct rec r;
    rec_init(&r);
    struct qt_ingest_stream s;
    stream_open(&s, &r, QT_INGEST_ILP, QT_LINE_MAX);
    qt_alloc_fail_after(1);
    const char *t1 = "a f=1i 1\nb f=";
    int rc = qt_ingest_stream_feed(&s, &b, (const uint8_t *)t1, strlen(t1), false, 0);
    qt_alloc_fail_after(0);
    CHECK_RC(rc, QT_ENOMEM);
    CHECK_EQ(qt_ingest_stream_pending(&s), 0);
    const char *t2 = "2i 2\nc f=3i 3\n"; /* the rest of b is dropped, c is kept */
    CHECK_OK(qt_ingest_stream_feed(&s, &b, (const uint8_t *)t2, strlen(t2), false, 0));
    CHECK_EQ(b.n, 2);
    CHECK(b.lines[1].key_len == 1 && b.lines[1].key[0] == 'c');
    CHECK_EQ(b.origin[1], 3);
    qt_ingest_stream_deinit(&s);
    rec_deinit(&r);
    qt_ingest_batch_deinit(&b);
}

struct rej {
    uint64_t origins[16];
    uint32_t n;
};

static void
on_reject(void *arg, uint64_t origin, const struct qt_batch_line *line, int code,
          const char *reason)
{
    struct rej *x = arg;
    (void)code;
    (void)reason;
    if (x->n < 16 && line != NULL)
        x->origins[x->n++] = origin;
}

TEST(commit_into_engine)
{
    struct qt_db_opts o = {.dir = qt_test_dir(), .io_kind = QT_IO_POSIX, .no_background = true};
    struct qt_db *db;
    CHECK_OK(qt_db_open(&o, &db));
    struct qt_ingest_batch b;
    CHECK_OK(qt_ingest_batch_init(&b, 64, 0));
    struct qt_ilp_opts po = {QT_ILP_NS, 0};
    const char *lines[] = {"m,s=1 v=1.5 10", "m,s=1 v=\"str\" 11", "m,s=2 v=2i 10",
                           "m,s=2 v=3.5 11", "m,s=1 v=2.5 12"};
    for (uint32_t i = 0; i < 5; i++) {
        CHECK_OK(qt_ilp_parse_line(&po, (const uint8_t *)lines[i], strlen(lines[i]), scratch,
                                   sizeof(scratch), &pt));
        CHECK_OK(qt_ingest_batch_add(&b, &pt, 100 + i));
    }
    struct rej x = {0};
    struct qt_write_result res;
    CHECK_OK(qt_ingest_batch_commit(&b, db, on_reject, &x, &res));
    CHECK_EQ(b.n, 0);
    CHECK_EQ(res.lines_ok, 3);
    CHECK_EQ(res.lines_rejected, 2);
    CHECK_EQ(x.n, 2);
    CHECK_EQ(x.origins[0], 101); /* string into a float series */
    CHECK_EQ(x.origins[1], 103); /* float into an int series */
    struct qt_db_stats st;
    qt_db_stats(db, &st);
    CHECK_EQ(st.points_written, 3);
    CHECK_OK(qt_ingest_batch_commit(&b, db, NULL, NULL, &res)); /* empty: no-op */
    CHECK_EQ(res.lines_ok, 0);
    qt_ingest_batch_deinit(&b);
    CHECK_OK(qt_db_close(db));
}
