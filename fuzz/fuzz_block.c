/*
 * fuzz_block.c -- TS and VALUE blocks from untrusted bytes.
 *
 * Decode the input as one block (checksum bypassed so mutations reach the
 * header checks, LZ4 and the codecs).  Oracle: a block that decodes is
 * re-encoded from the decoded columns (with LZ4 iff the input used it; a
 * VALUE block gets a synthetic strictly ascending TS column that puts its
 * ts_min/ts_max on the first/last present rows) and decoded again: same
 * ids, counts, time bounds, presence and bit-identical values; statistics
 * identical whenever the input's statistics were true to its values.
 */
#include "format/block.h"
#include "format/qt_assert.h"
#include "format/qt_bytes.h"
#include "format/qt_hash.h"

#include <stdint.h>
#include <string.h>

#define N QT_BLOCK_POINTS_MAX

union column {
    double f[N];
    int64_t i[N];
    uint8_t b[N];
    struct qt_str s[N];
};

static uint8_t scratch[QT_BLOCK_MAX_BYTES], scratch2[QT_BLOCK_MAX_BYTES];
static uint8_t out[QT_BLOCK_MAX_BYTES];
static union column col, col2;
static int64_t ts[N], ts2[N];
static uint8_t pres[N], pres2[N];

static void
same_values(enum qt_vtype vt, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        switch (vt) {
        case QT_VT_FLOAT: qt_assert(qt_f64_bits(col.f[i]) == qt_f64_bits(col2.f[i])); break;
        case QT_VT_INT: qt_assert(col.i[i] == col2.i[i]); break;
        case QT_VT_BOOL: qt_assert(col.b[i] == col2.b[i]); break;
        case QT_VT_STRING:
            qt_assert(col.s[i].len == col2.s[i].len);
            qt_assert(col.s[i].len == 0 || memcmp(col.s[i].p, col2.s[i].p, col.s[i].len) == 0);
            break;
        }
    }
}

static void
check_ts(const uint8_t *data, size_t size, const struct qt_block_info *in)
{
    struct qt_block_info a, b;
    if (qt_block_decode_ts(data, size, scratch, sizeof(scratch), ts, N, &a) != 0)
        return;
    if (qt_block_check_ts(&a, ts) != 0)
        return; /* decodable but out of order: the encoder rightly refuses it */
    size_t len = 0;
    uint8_t *s = (in->flags & QT_BLOCK_F_LZ4) ? scratch2 : NULL;
    qt_assert(qt_block_encode_ts(a.id, ts, a.n_rows, s, sizeof(scratch2), out, sizeof(out), &len) ==
              0);
    qt_assert(qt_block_decode_ts(out, len, scratch2, sizeof(scratch2), ts2, N, &b) == 0);
    qt_assert(b.id == a.id && b.n_rows == a.n_rows && b.ts_min == a.ts_min);
    qt_assert(b.ts_max == a.ts_max && memcmp(ts, ts2, a.n_rows * sizeof(ts[0])) == 0);
    qt_assert(qt_block_check_ts(&b, ts2) == 0);
}

/* A TS column with ts[first] = ts_min, ts[last] = ts_max; false if the
 * rows around them cannot be placed inside int64. */
static bool
synth_ts(const struct qt_block_info *in, const uint8_t *p)
{
    uint32_t first = 0, last = in->n_rows - 1;
    while (!p[first])
        first++;
    while (!p[last])
        last--;
    if ((uint64_t)in->ts_max - (uint64_t)in->ts_min < last - first)
        return false;
    if ((uint64_t)in->ts_min - (uint64_t)INT64_MIN < first ||
        (uint64_t)INT64_MAX - (uint64_t)in->ts_max < in->n_rows - 1 - last)
        return false;
    for (uint32_t i = 0; i < in->n_rows; i++)
        ts[i] =
            i <= last ? in->ts_min - (int64_t)first + (int64_t)i : in->ts_max + (int64_t)(i - last);
    ts[last] = in->ts_max;
    return true;
}

static void
check_values(const uint8_t *data, size_t size, const struct qt_block_info *in)
{
    struct qt_block_info a, b;
    if (qt_block_decode_values(data, size, scratch, sizeof(scratch), NULL, 0, &col, pres, N, &a) !=
        0)
        return;
    bool true_stats = qt_block_check_stats(&a, &col) == 0;
    if (!synth_ts(&a, pres))
        return;
    size_t len = 0;
    uint8_t *s = (in->flags & QT_BLOCK_F_LZ4) ? scratch2 : NULL;
    const uint8_t *p = a.n_values < a.n_rows ? pres : NULL;
    qt_assert(qt_block_values_bound(a.vtype, &col, a.n_values, a.n_rows) <= sizeof(out));
    int rc = qt_block_encode_values(a.id, a.vtype, &col, a.n_values, p, a.n_rows, ts, s,
                                    sizeof(scratch2), out, sizeof(out), &len);
    if (rc == QT_ELIMIT)
        return; /* a legal-looking string column above QT_BLOCK_RAW_MAX */
    qt_assert(rc == 0);
    qt_assert(qt_block_decode_values(out, len, scratch2, sizeof(scratch2), ts, a.n_rows, &col2,
                                     pres2, N, &b) == 0);
    qt_assert(b.id == a.id && b.vtype == a.vtype && b.n_rows == a.n_rows);
    qt_assert(b.n_values == a.n_values && b.ts_min == a.ts_min && b.ts_max == a.ts_max);
    qt_assert(memcmp(pres, pres2, a.n_rows) == 0);
    qt_assert((b.flags & ~QT_BLOCK_F_LZ4) == (a.flags & ~QT_BLOCK_F_LZ4) || !true_stats);
    same_values(a.vtype, a.n_values);
    qt_assert(qt_block_check_stats(&b, &col2) == 0);
    qt_assert(!true_stats || qt_stats_equal(&a.stats, &b.stats));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qt_hash_skip_verify = true;
    struct qt_block_info in;
    if (qt_block_read_header(data, size, &in) != 0)
        return 0;
    if (in.kind == QT_BLOCK_TS)
        check_ts(data, size, &in);
    else
        check_values(data, size, &in);
    return 0;
}
