/*
 * bench_format.c -- column codecs on city telemetry: size and speed.
 *
 * For every field kind of the city data set (each float field, timestamps
 * of each interval regular and jittered, the meter counter, the water alarm
 * bool, the air state string) it takes one day of columns per series from
 * tests/citygen.c, splits them into blocks of up to QT_BLOCK_POINTS_MAX
 * points, encodes and decodes every block with the format/ codecs, checks
 * the round trip bit for bit, and prints
 *
 *   kind | values | bits/value | encode Mvalues/s | decode Mvalues/s | target | PASS/MISS
 *
 * Targets (design/bench.md): floats <= 12 bits/value (each field and the
 * average over all float fields), timestamps of regular series <= 2
 * bits/point, decode >= 300 M values/s/core, encode >= 100 M values/s/core.
 * Throughput is single-threaded, CPU time of the thread (CLOCK_THREAD_CPUTIME_ID: values per second
 * *per core*, robust to other load on a shared machine), the median of RUNS timed passes over all
 * blocks of the kind after one warm-up pass (caches warm), printed with its spread (max - min over
 * the runs, relative to the median). Two baselines run in the same process on the float data:
 * memcpy of the raw float64 bytes (speed reference on a noisy machine) and LZ4 on the raw float64
 * bytes (what a general-purpose compressor gets without type knowledge).  A MISS is reported, not
 * fatal: exit status is 0 unless a codec fails or a round trip differs (then 1).
 *
 *   build/bench/bench_format [--values N] [--runs N]
 */
#include "format/boolcodec.h"
#include "format/codec.h"
#include "format/fltcodec.h"
#include "format/intcodec.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/strcodec.h"
#include "format/tscodec.h"
#include "tests/citygen.h"

#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS_DEFAULT    5
#define RUNS_MAX        31
#define RUN_MIN_S       0.02       /* one timed run repeats the pass for at least this long */
#define VALUES_DEFAULT  (1u << 19) /* per kind: ~4 MB of float64, a few ms per pass */
#define TARGET_FLT_BITS 12.0
#define TARGET_TS_BITS  2.0
#define TARGET_DEC_MVS  300.0
#define TARGET_ENC_MVS  100.0
#define DAY_NS          (86400LL * 1000000000LL)
#define DAY_POINTS_MAX  (8640u + 16u) /* 10 s series: 8640 points a day */

/* row.err value for "decoded values differ" (not a QT_E* code) */
#define ROUNDTRIP_DIFFERS 1

enum col_kind { CK_FLOAT, CK_TS, CK_INT, CK_BOOL, CK_STR, CK_MEMCPY, CK_LZ4 };

/* One benchmark row's data: a column split into blocks, and its encoding. */
struct dataset {
    enum col_kind kind;
    uint32_t nvals, nblocks, cap_blocks;
    uint32_t *blk_off, *blk_len;
    int64_t *iv;       /* CK_TS, CK_INT input */
    double *fv;        /* CK_FLOAT, CK_MEMCPY, CK_LZ4 input */
    uint8_t *bv;       /* CK_BOOL input */
    struct qt_str *sv; /* CK_STR input */
    void *out;         /* decode output, same type as the input */
    uint8_t *enc;      /* encoded blocks, each at enc_off[b] */
    size_t *enc_off, *enc_len, enc_cap, enc_total;
};

struct timing {
    double median_s, spread; /* spread: (max - min) / median */
};

struct row {
    char label[48];
    uint64_t values;
    double bits;
    struct timing enc, dec;
    double max_bits; /* 0: no size target */
    int err;         /* codec error or round-trip mismatch */
};

static int runs = RUNS_DEFAULT;
static int exit_status;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (p == NULL) {
        fprintf(stderr, "bench_format: out of memory\n");
        exit(2);
    }
    return p;
}

static size_t
elem_size(enum col_kind k)
{
    switch (k) {
    case CK_TS:
    case CK_INT: return sizeof(int64_t);
    case CK_BOOL: return 1;
    case CK_STR: return sizeof(struct qt_str);
    default: return sizeof(double);
    }
}

static void
ds_init(struct dataset *ds, enum col_kind kind, uint32_t cap_vals)
{
    memset(ds, 0, sizeof(*ds));
    ds->kind = kind;
    ds->cap_blocks = cap_vals / 64 + 16;
    ds->blk_off = xcalloc(ds->cap_blocks, sizeof(uint32_t));
    ds->blk_len = xcalloc(ds->cap_blocks, sizeof(uint32_t));
    ds->enc_off = xcalloc(ds->cap_blocks, sizeof(size_t));
    ds->enc_len = xcalloc(ds->cap_blocks, sizeof(size_t));
    ds->iv = xcalloc(cap_vals, sizeof(int64_t));
    ds->fv = xcalloc(cap_vals, sizeof(double));
    ds->bv = xcalloc(cap_vals, 1);
    ds->sv = xcalloc(cap_vals, sizeof(struct qt_str));
    ds->out = xcalloc(cap_vals, elem_size(kind));
}

static void
ds_free(struct dataset *ds)
{
    free(ds->blk_off);
    free(ds->blk_len);
    free(ds->enc_off);
    free(ds->enc_len);
    free(ds->iv);
    free(ds->fv);
    free(ds->bv);
    free(ds->sv);
    free(ds->out);
    free(ds->enc);
}

/* Append one series' day as blocks of up to QT_BLOCK_POINTS_MAX points. */
static void
ds_add_series(struct dataset *ds, uint32_t n)
{
    for (uint32_t off = 0; off < n; off += QT_BLOCK_POINTS_MAX) {
        uint32_t len = n - off < QT_BLOCK_POINTS_MAX ? n - off : QT_BLOCK_POINTS_MAX;
        if (ds->nblocks == ds->cap_blocks) {
            fprintf(stderr, "bench_format: block table full\n");
            exit(2);
        }
        ds->blk_off[ds->nblocks] = ds->nvals + off;
        ds->blk_len[ds->nblocks] = len;
        ds->nblocks++;
    }
    ds->nvals += n;
}

static size_t
block_bound(const struct dataset *ds, uint32_t b)
{
    uint32_t off = ds->blk_off[b], n = ds->blk_len[b];
    switch (ds->kind) {
    case CK_FLOAT: return qt_flt_bound(n);
    case CK_TS: return qt_ts_bound(n);
    case CK_INT: return qt_int_bound(n);
    case CK_BOOL: return qt_bool_bound(n);
    case CK_STR: return qt_str_bound(ds->sv + off, n);
    case CK_LZ4: return (size_t)LZ4_compressBound((int)(n * sizeof(double)));
    case CK_MEMCPY: return n * sizeof(double);
    }
    return 0;
}

/* Lay out the encode buffer: each block gets its bound. */
static void
ds_alloc_enc(struct dataset *ds)
{
    size_t total = 0;
    for (uint32_t b = 0; b < ds->nblocks; b++) {
        ds->enc_off[b] = total;
        total += block_bound(ds, b);
    }
    ds->enc_cap = total;
    ds->enc = xcalloc(total, 1);
}

static int
encode_block(struct dataset *ds, uint32_t b)
{
    uint32_t off = ds->blk_off[b], n = ds->blk_len[b];
    uint8_t *o = ds->enc + ds->enc_off[b];
    size_t cap = block_bound(ds, b), *len = &ds->enc_len[b];
    switch (ds->kind) {
    case CK_FLOAT: return qt_flt_encode(ds->fv + off, n, o, cap, len);
    case CK_TS: return qt_ts_encode(ds->iv + off, n, o, cap, len);
    case CK_INT: return qt_int_encode(ds->iv + off, n, o, cap, len);
    case CK_BOOL: return qt_bool_encode(ds->bv + off, n, o, cap, len);
    case CK_STR: return qt_str_encode(ds->sv + off, n, o, cap, len);
    case CK_LZ4: {
        int r = LZ4_compress_default((const char *)(ds->fv + off), (char *)o,
                                     (int)(n * sizeof(double)), (int)cap);
        *len = r > 0 ? (size_t)r : 0;
        return r > 0 ? 0 : QT_ENOSPACE;
    }
    case CK_MEMCPY:
        memcpy(o, ds->fv + off, n * sizeof(double));
        *len = n * sizeof(double);
        return 0;
    }
    return QT_EINVAL;
}

static int
decode_block(struct dataset *ds, uint32_t b)
{
    uint32_t off = ds->blk_off[b], n = ds->blk_len[b], got = 0;
    const uint8_t *in = ds->enc + ds->enc_off[b];
    size_t len = ds->enc_len[b];
    int rc = 0;
    switch (ds->kind) {
    case CK_FLOAT: rc = qt_flt_decode(in, len, (double *)ds->out + off, n, &got); break;
    case CK_TS: rc = qt_ts_decode(in, len, (int64_t *)ds->out + off, n, &got); break;
    case CK_INT: rc = qt_int_decode(in, len, (int64_t *)ds->out + off, n, &got); break;
    case CK_BOOL: rc = qt_bool_decode(in, len, (uint8_t *)ds->out + off, n, &got); break;
    case CK_STR: rc = qt_str_decode(in, len, (struct qt_str *)ds->out + off, n, &got); break;
    case CK_LZ4: {
        int r = LZ4_decompress_safe((const char *)in, (char *)((double *)ds->out + off), (int)len,
                                    (int)(n * sizeof(double)));
        got = r > 0 ? (uint32_t)r / sizeof(double) : 0;
        rc = r > 0 ? 0 : QT_ECORRUPT;
        break;
    }
    case CK_MEMCPY:
        memcpy((double *)ds->out + off, in, n * sizeof(double));
        got = n;
        break;
    }
    return rc != 0 ? rc : got == n ? 0 : QT_ECORRUPT;
}

/* Decoded output equals the input, bit for bit (strings by content). */
static bool
ds_roundtrip_ok(const struct dataset *ds)
{
    switch (ds->kind) {
    case CK_TS:
    case CK_INT: return memcmp(ds->out, ds->iv, ds->nvals * sizeof(int64_t)) == 0;
    case CK_BOOL: return memcmp(ds->out, ds->bv, ds->nvals) == 0;
    case CK_STR: {
        const struct qt_str *o = ds->out;
        for (uint32_t i = 0; i < ds->nvals; i++)
            if (o[i].len != ds->sv[i].len || memcmp(o[i].p, ds->sv[i].p, o[i].len) != 0)
                return false;
        return true;
    }
    default: return memcmp(ds->out, ds->fv, ds->nvals * sizeof(double)) == 0;
    }
}

/* One pass over every block; returns seconds, or -1 on a codec error. */
static double
ds_pass(struct dataset *ds, bool decode, int *err)
{
    double t0 = now_s();
    for (uint32_t b = 0; b < ds->nblocks; b++) {
        int rc = decode ? decode_block(ds, b) : encode_block(ds, b);
        if (rc != 0) {
            *err = rc;
            return -1;
        }
    }
    double t = now_s() - t0;
    __asm__ volatile("" ::"r"(ds->out), "r"(ds->enc) : "memory");
    return t;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Warm-up pass, then `runs` timed runs: median and spread of the time per
 * pass.  A run repeats the pass until it lasts >= RUN_MIN_S, so that short
 * passes (memcpy, small kinds) are not lost in timer and scheduler noise. */
static int
ds_time(struct dataset *ds, bool decode, struct timing *t)
{
    double s[RUNS_MAX];
    int err = 0;
    double warm = ds_pass(ds, decode, &err);
    if (warm < 0)
        return err;
    int reps = warm >= RUN_MIN_S ? 1 : (int)(RUN_MIN_S / (warm > 1e-7 ? warm : 1e-7)) + 1;
    for (int r = 0; r < runs; r++) {
        double sum = 0;
        for (int i = 0; i < reps; i++) {
            double one = ds_pass(ds, decode, &err);
            if (one < 0)
                return err;
            sum += one;
        }
        s[r] = sum / reps;
    }
    qsort(s, (size_t)runs, sizeof(double), cmp_double);
    t->median_s = s[runs / 2];
    t->spread = t->median_s > 0 ? (s[runs - 1] - s[0]) / t->median_s : 0;
    return 0;
}

/* Encode (size + time), decode (time), verify; fill the row's numbers. */
static void
ds_measure(struct dataset *ds, struct row *r)
{
    ds_alloc_enc(ds);
    r->values = ds->nvals;
    r->err = ds_time(ds, false, &r->enc);
    if (r->err == 0) {
        ds->enc_total = 0;
        for (uint32_t b = 0; b < ds->nblocks; b++)
            ds->enc_total += ds->enc_len[b];
        r->bits = ds->nvals ? 8.0 * (double)ds->enc_total / ds->nvals : 0;
        r->err = ds_time(ds, true, &r->dec);
    }
    if (r->err != 0) {
        fprintf(stderr, "bench_format: %s: %s (%s)\n", r->label, qt_strerror(r->err),
                qt_err_detail());
        exit_status = 1;
    } else if (!ds_roundtrip_ok(ds)) {
        fprintf(stderr, "bench_format: %s: decoded values differ from the input\n", r->label);
        r->err = ROUNDTRIP_DIFFERS;
        exit_status = 1;
    }
}

/* ---- data from the generator ------------------------------------------- */

static uint32_t
series_for(enum qt_city_meas m, uint32_t values)
{
    uint64_t per_day = (uint64_t)(DAY_NS / qt_city_meas_desc(m)->interval_ns);
    return (uint32_t)((values + per_day - 1) / per_day);
}

/* Fill ds with one day of field `field` (or its timestamps when ds is
 * CK_TS) of every station of measurement m in cfg. */
static void
ds_fill(struct dataset *ds, const struct qt_city_config *cfg, enum qt_city_meas m, uint32_t field)
{
    static int64_t ts_tmp[DAY_POINTS_MAX], iv_tmp[DAY_POINTS_MAX];
    static double fv_tmp[DAY_POINTS_MAX];
    uint64_t first = qt_city_series_first(cfg, m);
    uint32_t cap_vals = cfg->stations[m] * DAY_POINTS_MAX;
    ds_init(ds, ds->kind, cap_vals);
    for (uint32_t s = 0; s < cfg->stations[m]; s++) {
        uint32_t at = ds->nvals, n;
        struct qt_city_column col = {ts_tmp,      fv_tmp,      NULL,
                                     ds->bv + at, ds->sv + at, DAY_POINTS_MAX};
        if (ds->kind == CK_TS) {
            col.ts = ds->iv + at;
            col.i = iv_tmp;
        } else if (ds->kind == CK_INT) {
            col.i = ds->iv + at;
        } else if (ds->kind == CK_FLOAT) {
            col.f = ds->fv + at;
        }
        int rc =
            qt_city_column(cfg, first + s, field, cfg->start_ns, cfg->start_ns + DAY_NS, &col, &n);
        if (rc != 0) {
            fprintf(stderr, "bench_format: citygen: %s: %s\n", qt_strerror(rc), qt_err_detail());
            exit(2);
        }
        ds_add_series(ds, n);
    }
}

/* ---- table --------------------------------------------------------------- */

static void
print_header(uint32_t values)
{
    printf("bench_format: one day per series from citygen, blocks of <= %u points, "
           "~%u values per kind,\n  speed = median of %d runs of >= %.0f ms each, +-N%% = half of "
           "(max - min) / median\n",
           QT_BLOCK_POINTS_MAX, values, runs, RUN_MIN_S * 1000);
    printf("%-30s %9s %9s %17s %17s  %-28s %s\n", "field kind", "values", "bits/val", "enc Mval/s",
           "dec Mval/s", "target", "result");
}

static void
fmt_speed(char *buf, size_t cap, uint64_t values, const struct timing *t)
{
    if (t->median_s <= 0) {
        snprintf(buf, cap, "-");
        return;
    }
    snprintf(buf, cap, "%.1f +-%.0f%%", (double)values / t->median_s / 1e6, t->spread * 50);
}

static void
print_row(const struct row *r, bool baseline)
{
    char enc[32], dec[32], target[64] = "", result[48];
    fmt_speed(enc, sizeof(enc), r->values, &r->enc);
    fmt_speed(dec, sizeof(dec), r->values, &r->dec);
    if (baseline) {
        snprintf(target, sizeof(target), "(baseline)");
        snprintf(result, sizeof(result), "-");
    } else {
        if (r->max_bits > 0)
            snprintf(target, sizeof(target), "<=%.0f b/v, ", r->max_bits);
        snprintf(target + strlen(target), sizeof(target) - strlen(target), "enc>=%.0f dec>=%.0f",
                 TARGET_ENC_MVS, TARGET_DEC_MVS);
        double enc_mvs = r->enc.median_s > 0 ? (double)r->values / r->enc.median_s / 1e6 : 0;
        double dec_mvs = r->dec.median_s > 0 ? (double)r->values / r->dec.median_s / 1e6 : 0;
        bool mb = r->max_bits > 0 && r->bits > r->max_bits;
        bool me = enc_mvs < TARGET_ENC_MVS, md = dec_mvs < TARGET_DEC_MVS;
        if (r->err != 0)
            snprintf(result, sizeof(result), "ERROR");
        else if (mb || me || md)
            snprintf(result, sizeof(result), "MISS(%s%s%s%s%s)", mb ? "bits" : "",
                     mb && (me || md) ? "," : "", me ? "enc" : "", me && md ? "," : "",
                     md ? "dec" : "");
        else
            snprintf(result, sizeof(result), "PASS");
    }
    printf("%-30s %9llu %9.2f %17s %17s  %-28s %s\n", r->label, (unsigned long long)r->values,
           r->bits, enc, dec, target, result);
}

/* Sum of rows: bits averaged per row (each field counts once), speeds as
 * total values over total median time, spread the worst of the rows. */
struct agg {
    struct row row;
    int rows;
    double bits_sum;
};

static void
agg_add(struct agg *a, const struct row *r)
{
    a->rows++;
    a->bits_sum += r->bits;
    a->row.bits = a->bits_sum / a->rows;
    a->row.values += r->values;
    a->row.enc.median_s += r->enc.median_s;
    a->row.dec.median_s += r->dec.median_s;
    a->row.enc.spread = r->enc.spread > a->row.enc.spread ? r->enc.spread : a->row.enc.spread;
    a->row.dec.spread = r->dec.spread > a->row.dec.spread ? r->dec.spread : a->row.dec.spread;
    if (r->err != 0)
        a->row.err = r->err;
}

/* ---- the benchmark ------------------------------------------------------- */

static void
bench_config(struct qt_city_config *cfg, uint32_t values, uint32_t jitter_ms)
{
    qt_city_config_default(cfg, 0);
    cfg->duration_ns = DAY_NS;
    cfg->jitter_ms = jitter_ms;
    for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++)
        cfg->stations[m] = series_for((enum qt_city_meas)m, values);
}

/* Measure one dataset as another kind over the same float64 bytes. */
static void
ds_measure_as(struct dataset *ds, enum col_kind kind, struct row *r)
{
    free(ds->enc);
    ds->enc = NULL;
    ds->kind = kind;
    ds_measure(ds, r);
}

static void
bench_floats(const struct qt_city_config *cfg)
{
    struct agg all = {.row = {.label = "all floats (mean of fields)", .max_bits = TARGET_FLT_BITS}};
    struct agg mem = {.row = {.label = "baseline: memcpy float64"}};
    struct agg lz4 = {.row = {.label = "baseline: LZ4 on raw float64"}};
    for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++) {
        const struct qt_city_meas_desc *d = qt_city_meas_desc((enum qt_city_meas)m);
        for (uint32_t f = 0; f < d->nfields; f++) {
            if (d->fields[f].type != QT_VT_FLOAT)
                continue;
            struct dataset ds = {.kind = CK_FLOAT};
            struct row r = {.max_bits = TARGET_FLT_BITS}, b = r;
            snprintf(r.label, sizeof(r.label), "%s.%s (%udp)", d->name, d->fields[f].name,
                     d->fields[f].decimals);
            ds_fill(&ds, cfg, (enum qt_city_meas)m, f);
            ds_measure(&ds, &r);
            print_row(&r, false);
            agg_add(&all, &r);
            ds_measure_as(&ds, CK_MEMCPY, &b);
            agg_add(&mem, &b);
            ds_measure_as(&ds, CK_LZ4, &b);
            agg_add(&lz4, &b);
            ds_free(&ds);
        }
    }
    print_row(&all.row, false);
    print_row(&mem.row, true);
    print_row(&lz4.row, true);
}

static void
bench_timestamps(const struct qt_city_config *reg, const struct qt_city_config *jit)
{
    static const enum qt_city_meas by_interval[4] = {QT_CITY_WATER, QT_CITY_AIR,
                                                     QT_CITY_WATER_QUALITY, QT_CITY_METER};
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 2; j++) {
            const struct qt_city_config *cfg = j == 0 ? reg : jit;
            struct dataset ds = {.kind = CK_TS};
            struct row r = {.max_bits = j == 0 ? TARGET_TS_BITS : 0};
            snprintf(r.label, sizeof(r.label), "ts %llds %s",
                     (long long)(qt_city_meas_desc(by_interval[i])->interval_ns / 1000000000LL),
                     j == 0 ? "regular" : "jitter +-3ms");
            ds_fill(&ds, cfg, by_interval[i], 0);
            ds_measure(&ds, &r);
            print_row(&r, false);
            ds_free(&ds);
        }
    }
}

static void
bench_other(const struct qt_city_config *cfg)
{
    static const struct {
        enum qt_city_meas m;
        uint32_t field;
        enum col_kind kind;
        const char *label;
    } rows[3] = {
        {QT_CITY_METER, 0, CK_INT, "meter.reading (int counter)"},
        {QT_CITY_WATER, 4, CK_BOOL, "water.alarm (bool)"},
        {QT_CITY_AIR, 5, CK_STR, "air.state (string status)"},
    };
    for (int i = 0; i < 3; i++) {
        struct dataset ds = {.kind = rows[i].kind};
        struct row r = {.max_bits = 0};
        snprintf(r.label, sizeof(r.label), "%s", rows[i].label);
        ds_fill(&ds, cfg, rows[i].m, rows[i].field);
        ds_measure(&ds, &r);
        print_row(&r, false);
        ds_free(&ds);
    }
}

int
main(int argc, char **argv)
{
    uint32_t values = VALUES_DEFAULT;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--values") == 0)
            values = (uint32_t)strtoul(argv[i + 1], NULL, 0);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
    }
    if (values < 1000 || values > (1u << 26) || runs < 1 || runs > RUNS_MAX) {
        fprintf(stderr, "usage: bench_format [--values 1000..2^26] [--runs 1..%d]\n", RUNS_MAX);
        return 2;
    }
    struct qt_city_config reg, jit;
    bench_config(&reg, values, 0);
    bench_config(&jit, values, 3);
    print_header(values);
    bench_floats(&jit);
    bench_timestamps(&reg, &jit);
    bench_other(&jit);
    return exit_status;
}
