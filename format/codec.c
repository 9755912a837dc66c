/*
 * codec.c -- pieces shared by the column codecs (see codec_int.h): the
 * payload head, RAW int64 arrays and patched frame-of-reference runs.
 *
 * Invariants:
 *   - qt_codec_run_write emits exactly plan->bytes bytes (asserted), so a
 *     codec may choose between encodings from plans alone.
 *   - A plan's exceptions are exactly the values outside [base, top]; the
 *     encoder's search cuts at most QT_CODEC_RUN_CUT_MAX values per end.
 *   - Readers never read at or past len and return QT_ETRUNC when the input
 *     ends early, QT_ECORRUPT when a field is impossible.
 */
#include "bitpack.h"
#include "codec_int.h"
#include "qt_assert.h"
#include "qt_bytes.h"
#include "qt_err.h"

#include <string.h>

static_assert(QT_BLOCK_POINTS_MAX % QT_CODEC_RUN_VALUES == 0, "whole runs per block");
static_assert(QT_CODEC_RUN_VALUES <= 256, "exception index and count fit one byte");
static_assert(2 * QT_CODEC_RUN_CUT_MAX < QT_CODEC_RUN_VALUES, "exception count fits a run");

/* Entries kept per end of the value range: the cut candidates plus one. */
#define RUN_ENDS (QT_CODEC_RUN_CUT_MAX + 1u)

int
qt_codec_head_put(uint8_t *out, size_t cap, size_t *pos, uint32_t n, uint8_t enc)
{
    qt_assert(out != NULL || cap == 0);
    qt_assert(*pos <= cap);
    size_t p = *pos;
    int rc = qt_varint_put(out, cap, &p, n);
    if (rc != 0)
        return rc;
    if (p >= cap)
        return QT_ENOSPACE;
    out[p++] = enc;
    *pos = p;
    return 0;
}

int
qt_codec_head_get(const uint8_t *buf, size_t len, size_t *pos, uint32_t cap, uint32_t *n,
                  uint8_t *enc)
{
    qt_assert(buf != NULL || len == 0);
    qt_assert(n != NULL && enc != NULL);
    size_t p = *pos;
    uint64_t count = 0;
    int rc = qt_varint_get(buf, len, &p, &count);
    if (rc != 0)
        return rc;
    if (count > QT_BLOCK_POINTS_MAX)
        return qt_fail(QT_ELIMIT, "codec: value count above QT_BLOCK_POINTS_MAX");
    if (count > cap)
        return qt_fail(QT_ELIMIT, "codec: value count above the output capacity");
    if (p >= len)
        return qt_fail(QT_ETRUNC, "codec: missing encoding id");
    *enc = buf[p++];
    *n = (uint32_t)count;
    *pos = p;
    return 0;
}

int
qt_codec_raw_put(const int64_t *v, uint32_t n, uint8_t *out, size_t cap, size_t *pos)
{
    qt_assert(n == 0 || v != NULL);
    qt_assert(*pos <= cap);
    if (cap - *pos < (size_t)n * 8)
        return QT_ENOSPACE;
    uint8_t *o = out + *pos;
    for (uint32_t i = 0; i < n; i++)
        qt_store_le64(o + (size_t)i * 8, (uint64_t)v[i]);
    *pos += (size_t)n * 8;
    return 0;
}

int
qt_codec_raw_get(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, int64_t *out)
{
    qt_assert(n == 0 || out != NULL);
    qt_assert(*pos <= len);
    if (len - *pos < (size_t)n * 8)
        return qt_fail(QT_ETRUNC, "codec: raw values truncated");
    const uint8_t *b = buf + *pos;
    for (uint32_t i = 0; i < n; i++)
        out[i] = (int64_t)qt_load_le64(b + (size_t)i * 8);
    *pos += (size_t)n * 8;
    return 0;
}

/* Insert v into the sorted array a[0..cnt) (cnt < RUN_ENDS grows it, else
 * the last entry drops); `less` orders ascending, else descending. */
static inline void
run_ends_insert(int64_t *a, uint32_t cnt, int64_t v, bool less)
{
    uint32_t j = cnt < RUN_ENDS ? cnt : RUN_ENDS - 1;
    while (j > 0 && (less ? a[j - 1] > v : a[j - 1] < v)) {
        a[j] = a[j - 1];
        j--;
    }
    a[j] = v;
}

/* The RUN_ENDS smallest values of v (ascending, with repeats) in lo[] and
 * the RUN_ENDS largest (descending) in hi[]; returns how many each holds. */
static uint32_t
run_ends_small(const int64_t *v, uint32_t m, int64_t mn, uint64_t span, uint32_t k, int64_t *lo,
               int64_t *hi)
{
    static_assert(QT_CODEC_RUN_VALUES <= 255, "counts fit a byte");
    /* Four interleaved histograms: consecutive equal values would otherwise
     * serialise on one counter (store-to-load forwarding per increment). */
    uint8_t cnt[4][256];
    for (uint32_t h = 0; h < 4; h++)
        memset(cnt[h], 0, (size_t)span + 1);
    uint32_t i = 0;
    for (; i + 4 <= m; i += 4) {
        cnt[0][(uint64_t)v[i] - (uint64_t)mn]++;
        cnt[1][(uint64_t)v[i + 1] - (uint64_t)mn]++;
        cnt[2][(uint64_t)v[i + 2] - (uint64_t)mn]++;
        cnt[3][(uint64_t)v[i + 3] - (uint64_t)mn]++;
    }
    for (; i < m; i++)
        cnt[0][(uint64_t)v[i] - (uint64_t)mn]++;
    uint32_t j = 0;
    for (uint64_t x = 0; j < k; x++) {
        uint32_t c = (uint32_t)cnt[0][x] + cnt[1][x] + cnt[2][x] + cnt[3][x];
        for (; c > 0 && j < k; c--)
            lo[j++] = (int64_t)((uint64_t)mn + x);
    }
    j = 0;
    for (uint64_t x = span; j < k; x--) {
        uint32_t c = (uint32_t)cnt[0][x] + cnt[1][x] + cnt[2][x] + cnt[3][x];
        for (; c > 0 && j < k; c--)
            hi[j++] = (int64_t)((uint64_t)mn + x);
    }
    return k;
}

static uint32_t
run_ends(const int64_t *v, uint32_t m, int64_t *lo, int64_t *hi)
{
    qt_assert(m >= 1 && m <= QT_CODEC_RUN_VALUES);
    uint32_t k = m < RUN_ENDS ? m : RUN_ENDS;
    /* Narrow runs (jittered deltas, counters, quantised readings): select
     * the ends from a histogram, with no data-dependent branches per value.
     * Same result as the insertion below. */
    int64_t mn = v[0], mx = v[0];
    for (uint32_t i = 1; i < m; i++) {
        mn = v[i] < mn ? v[i] : mn;
        mx = v[i] > mx ? v[i] : mx;
    }
    uint64_t span = (uint64_t)mx - (uint64_t)mn;
    if (span < 256)
        return run_ends_small(v, m, mn, span, k, lo, hi);
    for (uint32_t i = 0; i < k; i++) {
        run_ends_insert(lo, i, v[i], true);
        run_ends_insert(hi, i, v[i], false);
    }
    for (uint32_t i = k; i < m; i++) {
        if (v[i] < lo[RUN_ENDS - 1])
            run_ends_insert(lo, RUN_ENDS, v[i], true);
        if (v[i] > hi[RUN_ENDS - 1])
            run_ends_insert(hi, RUN_ENDS, v[i], false);
    }
    qt_assert(lo[0] <= hi[0]);
    return k;
}

/* Exact size of the run that packs [lo[a], hi[b]] and stores the values
 * beyond as exceptions; sets *exc.  Returns 0 when no value is cut. */
static uint32_t
run_cut_bytes(const int64_t *lo, const int64_t *hi, uint32_t a, uint32_t b, uint32_t m,
              uint32_t *exc)
{
    qt_assert(a < RUN_ENDS && b < RUN_ENDS);
    qt_assert(lo[a] <= hi[b]);
    int64_t base = lo[a], top = hi[b];
    uint32_t e = 0, bytes = 0;
    for (uint32_t j = 0; j < a; j++) {
        if (lo[j] < base) {
            e++;
            bytes +=
                1 + qt_codec_varint_len(qt_zigzag64((int64_t)((uint64_t)lo[j] - (uint64_t)base)));
        }
    }
    for (uint32_t j = 0; j < b; j++) {
        if (hi[j] > top) {
            e++;
            bytes +=
                1 + qt_codec_varint_len(qt_zigzag64((int64_t)((uint64_t)hi[j] - (uint64_t)base)));
        }
    }
    *exc = e;
    if (e == 0)
        return 0;
    uint32_t w = qt_bp_width((uint64_t)top - (uint64_t)base);
    return 1 + qt_codec_varint_len(qt_zigzag64(base)) + 1 + bytes + (uint32_t)qt_bp_bytes(m, w);
}

void
qt_codec_run_plan(const int64_t *v, uint32_t m, struct qt_codec_run *plan)
{
    qt_assert(v != NULL && plan != NULL);
    int64_t lo[RUN_ENDS], hi[RUN_ENDS];
    uint32_t k = run_ends(v, m, lo, hi);
    uint32_t w = qt_bp_width((uint64_t)hi[0] - (uint64_t)lo[0]);
    *plan = (struct qt_codec_run){
        .base = lo[0],
        .top = hi[0],
        .width = (uint8_t)w,
        .exc = 0,
        .bytes = 1 + qt_codec_varint_len(qt_zigzag64(lo[0])) + (uint32_t)qt_bp_bytes(m, w),
    };
    /* Bound: no cut can pack narrower than [lo[k-1], hi[k-1]], and any cut
     * costs at least 5 bytes of header (width, 1-byte base, count) and one
     * 2-byte exception.  When even that cannot beat the plain run, skip the
     * search: the result is the same, found in O(1) (most jittered runs). */
    uint32_t wmin =
        lo[k - 1] > hi[k - 1] ? 0 : qt_bp_width((uint64_t)hi[k - 1] - (uint64_t)lo[k - 1]);
    if (5 + qt_bp_bytes(m, wmin) >= plan->bytes)
        return;
    for (uint32_t a = 0; a < k; a++) {
        for (uint32_t b = 0; b < k; b++) {
            if (lo[a] > hi[b] || (a == 0 && b == 0))
                continue;
            uint32_t cw = qt_bp_width((uint64_t)hi[b] - (uint64_t)lo[a]);
            /* Cheapest conceivable: 1-byte base, count, one 2-byte exception. */
            if (1 + 1 + 1 + 2 + qt_bp_bytes(m, cw) >= plan->bytes)
                continue;
            uint32_t e = 0;
            uint32_t bytes = run_cut_bytes(lo, hi, a, b, m, &e);
            if (e == 0 || bytes >= plan->bytes)
                continue;
            *plan = (struct qt_codec_run){.base = lo[a],
                                          .top = hi[b],
                                          .width = (uint8_t)cw,
                                          .exc = (uint8_t)e,
                                          .bytes = bytes};
        }
    }
    qt_assert(plan->exc < m);
}

int
qt_codec_run_write(const int64_t *v, uint32_t m, const struct qt_codec_run *plan, uint8_t *out,
                   size_t cap, size_t *pos)
{
    qt_assert(m >= 1 && m <= QT_CODEC_RUN_VALUES);
    qt_assert(plan->width <= 64 && plan->exc < m);
    qt_assert(*pos <= cap);
    size_t p = *pos;
    if (cap - p < plan->bytes)
        return QT_ENOSPACE;
    uint64_t base = (uint64_t)plan->base;
    uint64_t span = (uint64_t)plan->top - base;
    out[p++] = (uint8_t)(plan->width | (plan->exc > 0 ? 0x80 : 0));
    (void)qt_varint_put(out, cap, &p, qt_zigzag64(plan->base));
    if (plan->exc > 0)
        out[p++] = (uint8_t)(plan->exc - 1);
    uint64_t tmp[QT_CODEC_RUN_VALUES];
    for (uint32_t i = 0; i < m; i++) {
        uint64_t off = (uint64_t)v[i] - base;
        tmp[i] = off <= span ? off : 0;
    }
    qt_bp_pack(tmp, m, plan->width, out + p);
    p += qt_bp_bytes(m, plan->width);
    uint32_t e = 0;
    for (uint32_t i = 0; i < m && e < plan->exc; i++) {
        uint64_t off = (uint64_t)v[i] - base;
        if (off <= span)
            continue;
        out[p++] = (uint8_t)i;
        (void)qt_varint_put(out, cap, &p, qt_zigzag64((int64_t)off));
        e++;
    }
    qt_assert(e == plan->exc);
    qt_assert(p - *pos == plan->bytes);
    *pos = p;
    return 0;
}

int
qt_codec_run_read(const uint8_t *buf, size_t len, size_t *pos, uint32_t m, uint64_t *off,
                  uint64_t *base)
{
    qt_assert(m >= 1 && m <= QT_CODEC_RUN_VALUES);
    qt_assert(*pos <= len);
    size_t p = *pos;
    if (p >= len)
        return qt_fail(QT_ETRUNC, "run: missing header");
    uint32_t hdr = buf[p++];
    uint32_t width = hdr & 0x7f;
    if (width > 64)
        return qt_fail(QT_ECORRUPT, "run: bit width above 64");
    uint64_t zbase = 0;
    int rc = qt_varint_get(buf, len, &p, &zbase);
    if (rc != 0)
        return rc;
    uint32_t exc = 0;
    if (hdr & 0x80) {
        if (p >= len)
            return qt_fail(QT_ETRUNC, "run: missing exception count");
        exc = (uint32_t)buf[p++] + 1;
        if (exc > m)
            return qt_fail(QT_ECORRUPT, "run: more exceptions than values");
    }
    size_t need = qt_bp_bytes(m, width);
    if (len - p < need)
        return qt_fail(QT_ETRUNC, "run: packed values truncated");
    qt_bp_unpack(buf + p, m, width, off);
    p += need;
    for (uint32_t e = 0; e < exc; e++) {
        if (p >= len)
            return qt_fail(QT_ETRUNC, "run: exception truncated");
        uint32_t idx = buf[p++];
        if (idx >= m)
            return qt_fail(QT_ECORRUPT, "run: exception index beyond the run");
        uint64_t z = 0;
        rc = qt_varint_get(buf, len, &p, &z);
        if (rc != 0)
            return rc;
        off[idx] = (uint64_t)qt_unzigzag64(z);
    }
    *base = (uint64_t)qt_unzigzag64(zbase);
    *pos = p;
    return 0;
}

size_t
qt_codec_runs_plan(qt_codec_fill_fn fill, const void *src, uint32_t count,
                   struct qt_codec_run *plans)
{
    qt_assert(fill != NULL && plans != NULL);
    qt_assert(count <= QT_BLOCK_POINTS_MAX);
    int64_t tmp[QT_CODEC_RUN_VALUES];
    size_t total = 0;
    uint32_t r = 0;
    for (uint32_t first = 0; first < count; first += QT_CODEC_RUN_VALUES, r++) {
        uint32_t m = count - first < QT_CODEC_RUN_VALUES ? count - first : QT_CODEC_RUN_VALUES;
        fill(src, first, m, tmp);
        qt_codec_run_plan(tmp, m, &plans[r]);
        total += plans[r].bytes;
    }
    return total;
}

int
qt_codec_runs_write(qt_codec_fill_fn fill, const void *src, uint32_t count,
                    const struct qt_codec_run *plans, uint8_t *out, size_t cap, size_t *pos)
{
    qt_assert(fill != NULL && plans != NULL);
    qt_assert(count <= QT_BLOCK_POINTS_MAX);
    int64_t tmp[QT_CODEC_RUN_VALUES];
    uint32_t r = 0;
    for (uint32_t first = 0; first < count; first += QT_CODEC_RUN_VALUES, r++) {
        uint32_t m = count - first < QT_CODEC_RUN_VALUES ? count - first : QT_CODEC_RUN_VALUES;
        fill(src, first, m, tmp);
        int rc = qt_codec_run_write(tmp, m, &plans[r], out, cap, pos);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void
qt_codec_fill_copy(const void *src, uint32_t first, uint32_t m, int64_t *out)
{
    qt_assert(src != NULL && out != NULL);
    qt_assert(m <= QT_CODEC_RUN_VALUES);
    memcpy(out, (const int64_t *)src + first, (size_t)m * sizeof(int64_t));
}
