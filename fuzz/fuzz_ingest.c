/*
 * fuzz_ingest.c -- byte streams through server/ingest (splitter, line-max,
 * carry buffer, batch builder) on arbitrary bytes.
 *
 * Input: byte 0 picks the protocol (bit 7: Graphite), the chunk step
 * (bits 0..5: 1..63, 0 = whole) and a small line-max (bit 6: 32 bytes);
 * byte 1 the batch capacity (1..256 lines); the rest is the stream.
 * Oracles: the chunked feed produces exactly the same committed lines (in
 * order, with their origins) and the same bad-line reports as the one-shot
 * feed; the carry never exceeds QT_ILP_BATCH_BUF_MIN; every committed line
 * passes qt_batch_line_check, and encode -> decode -> encode of it is
 * byte-identical (the WAL round trip storage relies on).
 */
#include "format/batch.h"
#include "format/qt_assert.h"
#include "server/ingest.h"
#include "server/sbuf.h"

#include <stdint.h>
#include <string.h>

static struct qt_ilp_point point;
static char scratch[QT_ILP_SCRATCH_MAX];
static uint8_t enc[2 * QT_LINE_MAX + 8192], enc2[2 * QT_LINE_MAX + 8192];
static struct qt_batch_line dl[2];
static struct qt_batch_field df[QT_FIELDS_MAX + 1];

struct rec {
    struct qt_sbuf out;
};

static void
check_line(const struct qt_batch_line *l, size_t *len)
{
    qt_assert(qt_batch_line_check(l) == 0);
    qt_assert(qt_batch_encode(l, 1, enc, sizeof(enc), len) == 0);
    uint32_t nl, nf;
    qt_assert(qt_batch_decode(enc, *len, dl, 2, df, QT_FIELDS_MAX + 1, &nl, &nf) == 0);
    qt_assert(nl == 1 && nf == l->n_fields);
    size_t len2;
    qt_assert(qt_batch_encode(dl, 1, enc2, sizeof(enc2), &len2) == 0);
    qt_assert(len2 == *len && memcmp(enc, enc2, len2) == 0);
}

static int
on_full(void *arg, struct qt_ingest_batch *b)
{
    struct rec *r = arg;
    for (uint32_t i = 0; i < b->n; i++) {
        size_t len;
        check_line(&b->lines[i], &len);
        qt_sbuf_add(&r->out, &b->origin[i], sizeof(b->origin[i]));
        qt_sbuf_add(&r->out, enc, len);
    }
    qt_ingest_batch_reset(b);
    return 0;
}

static int
on_error(void *arg, const struct qt_ilp_line_error *e)
{
    struct rec *r = arg;
    qt_sbuf_printf(&r->out, "E%llu:%u:%d;", (unsigned long long)e->line_no, e->column, e->code);
    return 0;
}

static void
run(struct rec *r, enum qt_ingest_proto proto, uint32_t line_max, uint32_t cap, size_t step,
    const uint8_t *p, size_t n)
{
    struct qt_ingest_batch b;
    qt_assert(qt_ingest_batch_init(&b, cap, 0) == 0);
    struct qt_ingest_stream_opts o = {.proto = proto,
                                      .line_max = line_max,
                                      .origin_is_line = true,
                                      .on_error = on_error,
                                      .err_arg = r,
                                      .on_full = on_full,
                                      .full_arg = r};
    struct qt_ingest_stream s;
    qt_ingest_stream_init(&s, &o, &point, scratch, sizeof(scratch));
    size_t off = 0;
    while (off < n) {
        size_t k = step == 0 || step > n - off ? n - off : step;
        qt_assert(qt_ingest_stream_feed(&s, &b, p + off, k, false, 1) == 0);
        qt_assert(qt_ingest_stream_pending(&s) <= QT_ILP_BATCH_BUF_MIN);
        off += k;
    }
    qt_assert(qt_ingest_stream_feed(&s, &b, NULL, 0, true, 1) == 0);
    qt_assert(qt_ingest_stream_pending(&s) == 0);
    on_full(r, &b);
    qt_ingest_stream_deinit(&s);
    qt_ingest_batch_deinit(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    enum qt_ingest_proto proto = (data[0] & 0x80) ? QT_INGEST_GRAPHITE : QT_INGEST_ILP;
    uint32_t line_max = (data[0] & 0x40) ? 32 : QT_LINE_MAX;
    size_t step = data[0] & 0x3f;
    uint32_t cap = 1u + data[1];
    struct rec a, b;
    qt_sbuf_init(&a.out, 64u << 20);
    qt_sbuf_init(&b.out, 64u << 20);
    run(&a, proto, line_max, cap, 0, data + 2, size - 2);
    run(&b, proto, line_max, cap, step, data + 2, size - 2);
    qt_assert(!qt_sbuf_failed(&a.out) && a.out.len == b.out.len);
    qt_assert(a.out.len == 0 || memcmp(a.out.p, b.out.p, a.out.len) == 0);
    qt_sbuf_deinit(&a.out);
    qt_sbuf_deinit(&b.out);
    return 0;
}
