/*
 * fuzz_graphite.c -- Graphite plaintext on arbitrary bytes.
 *
 * Input: byte 0 bit 0 set means the first line (up to '\n') is a template
 * spec for qt_graphite_config_add() (bit 1: a second one); the rest is a
 * batch of Graphite lines.  Oracle for every accepted point: exactly one
 * float field, finite; it formats as line protocol, parses back to the same
 * measurement, tags, value (bit-exact) and timestamp with the same group
 * key, and formats again to the same bytes.
 */
#include "format/qt_assert.h"
#include "format/qt_bytes.h"
#include "server/graphite.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static struct qt_ilp_point point, again;
static char scratch[QT_ILP_SCRATCH_MAX], scratch2[QT_ILP_SCRATCH_MAX];
static char text[4 * QT_LINE_MAX], text2[4 * QT_LINE_MAX];
static char key1[QT_SERIES_KEY_MAX], key2[QT_SERIES_KEY_MAX];
static struct qt_graphite_config cfg;

static bool
str_eq(struct qt_ilp_str a, struct qt_ilp_str b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

static int
on_point(void *ctx, const struct qt_ilp_point *p)
{
    static const struct qt_ilp_opts ns = {QT_ILP_NS, 0};
    size_t n, n2, k1, k2;
    (void)ctx;
    qt_assert(p->fields_count == 1 && p->fields[0].type == QT_ILP_FLOAT);
    qt_assert(isfinite(p->fields[0].v.f));
    qt_assert(qt_ilp_format_line(p, text, sizeof(text), &n) == 0);
    qt_assert(qt_ilp_group_key(p, key1, sizeof(key1), &k1) == 0 && k1 == p->key_len);
    if (n > QT_LINE_MAX)
        return 0;
    qt_assert(
        qt_ilp_parse_line(&ns, (const uint8_t *)text, n, scratch2, sizeof(scratch2), &again) == 0);
    qt_assert(str_eq(p->measurement, again.measurement) && p->tags_count == again.tags_count);
    for (uint32_t i = 0; i < p->tags_count; i++)
        qt_assert(str_eq(p->tags[i].key, again.tags[i].key) &&
                  str_eq(p->tags[i].value, again.tags[i].value));
    qt_assert(again.fields_count == 1 && str_eq(p->fields[0].key, again.fields[0].key));
    qt_assert(qt_f64_bits(p->fields[0].v.f) == qt_f64_bits(again.fields[0].v.f));
    qt_assert(p->timestamp_ns == again.timestamp_ns);
    qt_assert(qt_ilp_group_key(&again, key2, sizeof(key2), &k2) == 0);
    qt_assert(k1 == k2 && memcmp(key1, key2, k1) == 0);
    qt_assert(qt_ilp_format_line(&again, text2, sizeof(text2), &n2) == 0);
    qt_assert(n == n2 && memcmp(text, text2, n) == 0);
    return 0;
}

static int
on_error(void *ctx, const struct qt_ilp_line_error *e)
{
    (void)ctx;
    qt_assert(e->reason != NULL && e->reason[0] != '\0' && e->code < 0 && e->line_no > 0);
    return 0;
}

/* Take one line from *p as a template spec. */
static void
take_template(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
    (void)qt_graphite_config_add(&cfg, (const char *)*p, n);
    *p += n + (nl != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1, *end = data + size;
    struct qt_ilp_batch b;
    size_t used;
    qt_graphite_config_init(&cfg);
    if (data[0] & 1)
        take_template(&p, end);
    if (data[0] & 2)
        take_template(&p, end);
    qt_graphite_batch_init(&b, &cfg, 1700000000123456789LL, &point, scratch, sizeof(scratch),
                           on_point, on_error, NULL);
    qt_assert(qt_ilp_batch_feed(&b, p, (size_t)(end - p), true, &used) == 0);
    qt_assert(used == (size_t)(end - p));
    return 0;
}
