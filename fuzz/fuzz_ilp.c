/*
 * fuzz_ilp.c -- line protocol on arbitrary bytes.
 *
 * Input: byte 0 picks the precision (low 2 bits) and where to split the
 * rest into two streaming feeds; the rest is a batch of lines.  Oracle for
 * every accepted point: it formats (qt_ilp_format_line), the text parses
 * back to the same measurement, tags, fields (floats bit-exact) and
 * timestamp, the group key is unchanged, and formatting again gives the
 * same bytes.  The two-feed run must see the same points and bad lines as
 * the one-shot run.
 */
#include "format/qt_assert.h"
#include "format/qt_bytes.h"
#include "server/ilp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct qt_ilp_point point, again;
static char scratch[QT_ILP_SCRATCH_MAX], scratch2[QT_ILP_SCRATCH_MAX];
static char text[4 * QT_LINE_MAX], text2[4 * QT_LINE_MAX];
static char key1[QT_SERIES_KEY_MAX], key2[QT_SERIES_KEY_MAX];
static uint8_t window[2 * QT_ILP_BATCH_BUF_MIN];

struct counts {
    uint64_t points, errors, sum;
};

static bool
str_eq(struct qt_ilp_str a, struct qt_ilp_str b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

static void
check_same(const struct qt_ilp_point *a, const struct qt_ilp_point *b)
{
    qt_assert(str_eq(a->measurement, b->measurement));
    qt_assert(a->tags_count == b->tags_count && a->fields_count == b->fields_count);
    qt_assert(a->timestamp_ns == b->timestamp_ns && a->key_len == b->key_len);
    for (uint32_t i = 0; i < a->tags_count; i++) {
        qt_assert(str_eq(a->tags[i].key, b->tags[i].key));
        qt_assert(str_eq(a->tags[i].value, b->tags[i].value));
    }
    for (uint32_t i = 0; i < a->fields_count; i++) {
        const struct qt_ilp_field *x = &a->fields[i], *y = &b->fields[i];
        qt_assert(str_eq(x->key, y->key) && x->type == y->type);
        switch (x->type) {
        case QT_ILP_FLOAT: qt_assert(qt_f64_bits(x->v.f) == qt_f64_bits(y->v.f)); break;
        case QT_ILP_INT: qt_assert(x->v.i == y->v.i); break;
        case QT_ILP_BOOL: qt_assert(x->v.b == y->v.b); break;
        case QT_ILP_STRING: qt_assert(str_eq(x->v.s, y->v.s)); break;
        }
    }
}

static int
on_point(void *ctx, const struct qt_ilp_point *p)
{
    static const struct qt_ilp_opts ns = {QT_ILP_NS, 0};
    struct counts *c = ctx;
    size_t n, n2, k1, k2;
    c->points++;
    c->sum += (uint64_t)p->timestamp_ns + p->key_len + p->fields_count;
    qt_assert(qt_ilp_format_line(p, text, sizeof(text), &n) == 0);
    qt_assert(n <= qt_ilp_format_bound(p));
    qt_assert(qt_ilp_group_key(p, key1, sizeof(key1), &k1) == 0 && k1 == p->key_len);
    if (n > QT_LINE_MAX)
        return 0; /* canonical escaping lengthened a near-limit line */
    qt_assert(
        qt_ilp_parse_line(&ns, (const uint8_t *)text, n, scratch2, sizeof(scratch2), &again) == 0);
    check_same(p, &again);
    qt_assert(qt_ilp_group_key(&again, key2, sizeof(key2), &k2) == 0);
    qt_assert(k1 == k2 && memcmp(key1, key2, k1) == 0);
    qt_assert(qt_ilp_format_line(&again, text2, sizeof(text2), &n2) == 0);
    qt_assert(n == n2 && memcmp(text, text2, n) == 0);
    return 0;
}

static int
on_error(void *ctx, const struct qt_ilp_line_error *e)
{
    struct counts *c = ctx;
    c->errors++;
    c->sum += e->line_no * 31 + e->offset;
    qt_assert(e->reason != NULL && e->reason[0] != '\0' && e->code < 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct qt_ilp_opts o = {(enum qt_ilp_precision)(data[0] & 3), 1700000000123456789LL};
    struct counts one = {0}, two = {0};
    struct qt_ilp_batch b;
    size_t used, len = size - 1, split = len == 0 ? 0 : (data[0] >> 2) * len / 63;
    const uint8_t *in = data + 1;
    qt_ilp_batch_init(&b, &o, &point, scratch, sizeof(scratch), on_point, on_error, &one);
    qt_assert(qt_ilp_batch_feed(&b, in, len, true, &used) == 0 && used == len);
    /* The same bytes in two feeds, keeping the tail as a connection would. */
    if (split > len || len > sizeof(window) - QT_ILP_BATCH_BUF_MIN)
        return 0;
    qt_ilp_batch_init(&b, &o, &point, scratch, sizeof(scratch), on_point, on_error, &two);
    memcpy(window, in, split);
    qt_assert(qt_ilp_batch_feed(&b, window, split, false, &used) == 0 && used <= split);
    size_t have = split - used;
    memmove(window, window + used, have);
    memcpy(window + have, in + split, len - split);
    qt_assert(qt_ilp_batch_feed(&b, window, have + len - split, true, &used) == 0);
    qt_assert(one.points == two.points && one.errors == two.errors && one.sum == two.sum);
    return 0;
}
