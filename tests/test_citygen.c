/*
 * test_citygen.c -- the city telemetry generator: determinism (and a golden
 * hash pinning the data set), quantisation, late/duplicate/missing shares,
 * arrival order, series count, line protocol structure, column extractor
 * against the stream, timestamp grid and jitter, error paths.
 */
#include "citygen.h"
#include "format/qt_hash.h"
#include "harness.h"
#include "server/ilp.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A small city: every measurement, 6 hours, ~185k lines. */
static void
small_config(struct qt_city_config *cfg, uint64_t seed)
{
    qt_city_config_default(cfg, 0);
    cfg->seed = seed;
    cfg->stations[QT_CITY_AIR] = 20;
    cfg->stations[QT_CITY_WATER_QUALITY] = 10;
    cfg->stations[QT_CITY_WATER] = 40;
    cfg->stations[QT_CITY_GRID] = 40;
    cfg->stations[QT_CITY_METER] = 100;
    cfg->duration_ns = 6 * 3600 * 1000000000LL;
}

struct digest {
    uint64_t hash, lines, bytes;
};

/* Hash of the whole formatted stream (order-sensitive). */
static int
stream_digest(const struct qt_city_config *cfg, struct digest *d)
{
    struct qt_city_gen *g;
    struct qt_city_point p;
    char line[QT_CITY_LINE_MAX];
    size_t n;
    int rc = qt_city_gen_create(cfg, &g);
    if (rc != 0)
        return rc;
    memset(d, 0, sizeof(*d));
    while ((rc = qt_city_next(g, &p)) == 1) {
        if ((rc = qt_city_format(&p, line, sizeof(line), &n)) != 0)
            break;
        d->hash = qt_hash64_seed(line, n, d->hash);
        d->lines++;
        d->bytes += n;
    }
    qt_city_gen_destroy(g);
    return rc;
}

TEST(same_seed_same_bytes_other_seed_differs)
{
    struct qt_city_config cfg;
    struct digest a, b, c;
    small_config(&cfg, qt_test_seed());
    CHECK_OK(stream_digest(&cfg, &a));
    CHECK_OK(stream_digest(&cfg, &b));
    CHECK(a.lines > 150000);
    CHECK_EQ(a.hash, b.hash);
    CHECK_EQ(a.lines, b.lines);
    CHECK_EQ(a.bytes, b.bytes);
    cfg.seed++;
    CHECK_OK(stream_digest(&cfg, &c));
    CHECK(c.hash != a.hash);
}

/*
 * The data set is a contract: benchmarks and end-to-end results are only
 * comparable across commits and machines if these bytes never change by
 * accident.  A deliberate model change updates the constants here (and says
 * so in design/bench.md).
 */
TEST(golden_stream)
{
    struct qt_city_config cfg;
    struct digest d;
    small_config(&cfg, 1);
    CHECK_OK(stream_digest(&cfg, &d));
    printf("golden: lines %llu bytes %llu hash 0x%016llx\n", (unsigned long long)d.lines,
           (unsigned long long)d.bytes, (unsigned long long)d.hash);
    CHECK_EQ(d.lines, 183126);
    CHECK_EQ(d.bytes, 21498403);
    CHECK(d.hash == 0x2867d960f1179a27ull);
}

/* The number text of a formatted field "name=value" in line. */
static const char *
field_text(const char *line, const char *name, size_t *len)
{
    const char *f = strchr(line, ' ');
    size_t nl = strlen(name);
    while (f != NULL) {
        f++;
        if (strncmp(f, name, nl) == 0 && f[nl] == '=') {
            const char *v = f + nl + 1;
            *len = strcspn(v, ", \n");
            return v;
        }
        f = strchr(f, ',');
    }
    return NULL;
}

static bool
float_ok(const struct qt_city_field *f, const char *text, size_t len)
{
    char buf[64], back[64];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (strtod(buf, NULL) != f->f)
        return false; /* printed text is the value */
    const char *dot = strchr(buf, '.');
    if (dot != NULL && (strlen(dot + 1) > f->decimals || buf[len - 1] == '0'))
        return false; /* at most `decimals` digits, no trailing zero */
    snprintf(back, sizeof(back), "%.17g", f->f);
    if (strtod(back, NULL) != f->f)
        return false;
    snprintf(back, sizeof(back), "%.*f", (int)f->decimals, f->f);
    if (strtod(back, NULL) != f->f)
        return false; /* the double is exactly a `decimals`-digit decimal */
    return f->f == (double)f->scaled / pow(10, f->decimals);
}

TEST(floats_are_sensor_quantised)
{
    struct qt_city_config cfg;
    struct qt_city_gen *g;
    struct qt_city_point p;
    char line[QT_CITY_LINE_MAX + 1];
    size_t n, len;
    uint64_t checked = 0;
    small_config(&cfg, qt_test_seed());
    CHECK_OK(qt_city_gen_create(&cfg, &g));
    while (qt_city_next(g, &p) == 1) {
        CHECK_OK(qt_city_format(&p, line, QT_CITY_LINE_MAX, &n));
        line[n] = '\0';
        for (uint32_t i = 0; i < p.nfields; i++) {
            if (p.fields[i].type != QT_VT_FLOAT)
                continue;
            const char *t = field_text(line, p.fields[i].name, &len);
            if (t == NULL || !float_ok(&p.fields[i], t, len)) {
                qt_test_fail_at(__FILE__, __LINE__, "field %s: %s", p.fields[i].name, line);
                qt_city_gen_destroy(g);
                return;
            }
            checked++;
        }
    }
    qt_city_gen_destroy(g);
    CHECK(checked > 500000);
}

/* ---- a set of (series, ts) -> line hash, for duplicate checks ---------- */

struct pset {
    uint64_t *key, *val;
    size_t cap, len;
};

static uint64_t
pset_key(uint64_t series, int64_t ts)
{
    return (qt_hash64(&ts, sizeof(ts)) ^ (series * 0x9e3779b97f4a7c15ull)) | 1;
}

/* Find key; returns the slot (empty slot if absent). */
static size_t
pset_slot(const struct pset *s, uint64_t k)
{
    size_t i = (size_t)(k % s->cap);
    while (s->key[i] != 0 && s->key[i] != k)
        i = (i + 1) % s->cap;
    return i;
}

static bool
pset_init(struct pset *s, size_t cap)
{
    s->cap = cap;
    s->len = 0;
    s->key = calloc(cap, sizeof(uint64_t));
    s->val = calloc(cap, sizeof(uint64_t));
    return s->key != NULL && s->val != NULL;
}

static void
pset_free(struct pset *s)
{
    free(s->key);
    free(s->val);
}

struct shares {
    uint64_t counts[3];
    uint64_t late_in_order, dup_unmatched, unique_repeated, ontime_unordered;
};

/* Run cfg's stream checking every DUP repeats an earlier line byte for
 * byte, nothing else repeats, on-time points ascend per series; count LATE
 * lines that arrive in order after all (the back-fill came before the next
 * live sample, or the outage ran to the end of the span). */
static int
measure_shares(const struct qt_city_config *cfg, struct shares *sh, size_t points_max)
{
    struct qt_city_gen *g;
    struct qt_city_point p;
    struct pset set;
    char line[QT_CITY_LINE_MAX];
    size_t n;
    uint64_t nseries = qt_city_series_count(cfg);
    int64_t *last = calloc(nseries, sizeof(int64_t));
    int rc = qt_city_gen_create(cfg, &g);
    if (rc != 0 || last == NULL || !pset_init(&set, points_max * 2))
        return rc != 0 ? rc : QT_ENOMEM;
    memset(sh, 0, sizeof(*sh));
    while ((rc = qt_city_next(g, &p)) == 1 && set.len < points_max) {
        qt_city_format(&p, line, sizeof(line), &n);
        uint64_t k = pset_key(p.series, p.ts_ns), h = qt_hash64(line, n);
        size_t slot = pset_slot(&set, k);
        sh->counts[p.arrival]++;
        if (p.arrival == QT_CITY_DUP) {
            sh->dup_unmatched += set.key[slot] != k || set.val[slot] != h;
            continue;
        }
        sh->unique_repeated += set.key[slot] == k;
        set.key[slot] = k;
        set.val[slot] = h;
        set.len++;
        if (p.arrival == QT_CITY_LATE)
            sh->late_in_order += p.ts_ns >= last[p.series];
        else if (p.ts_ns <= last[p.series])
            sh->ontime_unordered++;
        else
            last[p.series] = p.ts_ns;
    }
    qt_city_gen_destroy(g);
    pset_free(&set);
    free(last);
    return rc < 0 ? rc : 0;
}

TEST(late_and_duplicate_shares)
{
    struct qt_city_config cfg;
    struct shares sh;
    /* 2000 water-quality sites for a day: ~576k points, ~1000 outages */
    qt_city_config_default(&cfg, 0);
    cfg.seed = qt_test_seed();
    cfg.stations[QT_CITY_WATER_QUALITY] = 2000;
    CHECK_OK(measure_shares(&cfg, &sh, 700000));
    uint64_t unique = sh.counts[QT_CITY_ONTIME] + sh.counts[QT_CITY_LATE];
    double late = (double)sh.counts[QT_CITY_LATE] / (double)unique;
    double dup = (double)sh.counts[QT_CITY_DUP] / (double)unique;
    printf("late %.4f%% dup %.4f%% of %llu points\n", late * 100, dup * 100,
           (unsigned long long)unique);
    CHECK(unique > 550000);
    CHECK(late > 0.008 && late < 0.012);
    CHECK(dup > 0.0007 && dup < 0.0013);
    CHECK(sh.late_in_order < sh.counts[QT_CITY_LATE] / 4);
    CHECK_EQ(sh.dup_unmatched, 0);
    CHECK_EQ(sh.unique_repeated, 0);
    CHECK_EQ(sh.ontime_unordered, 0);

    /* zero fractions: nothing late, nothing repeated */
    cfg.stations[QT_CITY_WATER_QUALITY] = 200;
    cfg.late_fraction = 0;
    cfg.dup_fraction = 0;
    CHECK_OK(measure_shares(&cfg, &sh, 100000));
    CHECK_EQ(sh.counts[QT_CITY_LATE], 0);
    CHECK_EQ(sh.counts[QT_CITY_DUP], 0);
    CHECK(sh.counts[QT_CITY_ONTIME] > 50000);
}

TEST(arrival_order_and_delays)
{
    struct qt_city_config cfg;
    struct qt_city_gen *g;
    struct qt_city_point p;
    int64_t prev = INT64_MIN;
    uint64_t kinds[3] = {0, 0, 0};
    small_config(&cfg, qt_test_seed());
    cfg.late_fraction = 0.05; /* more outages to look at */
    cfg.dup_fraction = 0.01;
    CHECK_OK(qt_city_gen_create(&cfg, &g));
    while (qt_city_next(g, &p) == 1) {
        int64_t delay = p.arrival_ns - p.ts_ns;
        bool ok = p.arrival_ns >= prev && p.ts_ns >= cfg.start_ns &&
                  p.ts_ns < cfg.start_ns + cfg.duration_ns;
        if (p.arrival == QT_CITY_ONTIME)
            ok = ok && delay == 0;
        else if (p.arrival == QT_CITY_LATE)
            ok = ok && delay >= 60 * 1000000000LL && delay < 6 * 3600 * 1000000000LL;
        else
            ok = ok && delay >= 1000000000LL && delay < 1024 * 1000000000LL;
        if (!ok) {
            qt_city_gen_destroy(g);
            CHECK(ok);
        }
        kinds[p.arrival]++;
        prev = p.arrival_ns;
    }
    uint64_t counts[3];
    qt_city_counts(g, counts);
    qt_city_gen_destroy(g);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(counts[i], kinds[i]);
    CHECK(kinds[QT_CITY_LATE] > 1000);
    CHECK(kinds[QT_CITY_DUP] > 500);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Hash of "measurement,tags" (the series key) of p. */
static uint64_t
series_key_hash(const struct qt_city_point *p)
{
    uint64_t h = qt_hash64(p->measurement, strlen(p->measurement));
    for (uint32_t i = 0; i < p->ntags; i++) {
        h = qt_hash64_seed(p->tags[i].key, strlen(p->tags[i].key), h);
        h = qt_hash64_seed(p->tags[i].value, strlen(p->tags[i].value), h);
    }
    return h;
}

TEST(series_count_matches_config)
{
    struct qt_city_config cfg;
    struct qt_city_gen *g;
    struct qt_city_point p;
    small_config(&cfg, qt_test_seed());
    uint64_t n = qt_city_series_count(&cfg);
    CHECK_EQ(n, 210);
    uint64_t *key = calloc(n, sizeof(uint64_t));
    CHECK(key != NULL);
    uint64_t mismatched = 0, bad_index = 0;
    CHECK_OK(qt_city_gen_create(&cfg, &g));
    while (qt_city_next(g, &p) == 1) {
        uint64_t first = qt_city_series_first(&cfg, p.meas);
        if (p.series >= n || p.series != first + p.station) {
            bad_index++;
            continue;
        }
        uint64_t h = series_key_hash(&p);
        if (key[p.series] == 0)
            key[p.series] = h;
        mismatched += key[p.series] != h;
    }
    qt_city_gen_destroy(g);
    qsort(key, n, sizeof(uint64_t), cmp_u64);
    uint64_t unseen = key[0] == 0, dups = 0;
    for (uint64_t i = 1; i < n; i++)
        dups += key[i] == key[i - 1];
    free(key);
    CHECK_EQ(bad_index, 0);
    CHECK_EQ(mismatched, 0);
    CHECK_EQ(unseen, 0);
    CHECK_EQ(dups, 0);
}

TEST(default_split_and_first_index)
{
    struct qt_city_config cfg;
    qt_city_config_default(&cfg, 10000);
    CHECK_EQ(cfg.stations[QT_CITY_AIR], 500);
    CHECK_EQ(cfg.stations[QT_CITY_WATER_QUALITY], 200);
    CHECK_EQ(cfg.stations[QT_CITY_WATER], 1500);
    CHECK_EQ(cfg.stations[QT_CITY_GRID], 1800);
    CHECK_EQ(cfg.stations[QT_CITY_METER], 6000);
    CHECK_EQ(qt_city_series_count(&cfg), 10000);
    CHECK_EQ(qt_city_series_first(&cfg, QT_CITY_GRID), 2200);
    CHECK_EQ(cfg.start_ns, 1794700800LL * 1000000000LL);
    qt_city_config_default(&cfg, 7);
    CHECK_EQ(qt_city_series_count(&cfg), 7);
    for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++)
        CHECK(cfg.stations[m] >= 1);
    CHECK_OK(qt_city_config_check(&cfg));
}

/* ---- a structural line protocol check (not the real parser) ------------ */

static const char *
skip_name(const char *s)
{
    while (islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_')
        s++;
    return s;
}

/* One field value; returns the char after it or NULL. */
static const char *
check_value(const char *s, enum qt_vtype t)
{
    const char *v = s;
    switch (t) {
    case QT_VT_FLOAT:
        if (*s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return NULL;
        while (isdigit((unsigned char)*s) || (*s == '.' && s > v))
            s++;
        return s;
    case QT_VT_INT:
        s = v + (*v == '-');
        if (!isdigit((unsigned char)*s))
            return NULL;
        while (isdigit((unsigned char)*s))
            s++;
        return *s == 'i' ? s + 1 : NULL;
    case QT_VT_BOOL:
        if (strncmp(s, "true", 4) == 0)
            return s + 4;
        return strncmp(s, "false", 5) == 0 ? s + 5 : NULL;
    case QT_VT_STRING:
        if (*s++ != '"')
            return NULL;
        while (*s != '"' && *s != '\0' && *s != '\n')
            s += *s == '\\' ? 2 : 1;
        return *s == '"' ? s + 1 : NULL;
    }
    return NULL;
}

/* measurement(,key=value)+ SP field=value(,field=value)* SP ts LF */
static bool
line_ok(const char *line, size_t n, const struct qt_city_config *cfg)
{
    const char *s = skip_name(line), *e = line + n;
    const struct qt_city_meas_desc *d = NULL;
    for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++) {
        const struct qt_city_meas_desc *c = qt_city_meas_desc((enum qt_city_meas)m);
        if ((size_t)(s - line) == strlen(c->name) && memcmp(line, c->name, s - line) == 0)
            d = c;
    }
    if (d == NULL || e[-1] != '\n' || memchr(line, '\n', n - 1) != NULL)
        return false;
    for (uint32_t i = 0; i < d->ntags; i++) {
        size_t kl = strlen(d->tag_keys[i]);
        if (*s++ != ',' || strncmp(s, d->tag_keys[i], kl) != 0 || s[kl] != '=')
            return false;
        const char *v = s + kl + 1;
        s = skip_name(v);
        if (s == v)
            return false;
    }
    for (uint32_t i = 0; i < d->nfields; i++) {
        size_t kl = strlen(d->fields[i].name);
        if (*s++ != (i == 0 ? ' ' : ',') || strncmp(s, d->fields[i].name, kl) != 0 || s[kl] != '=')
            return false;
        if ((s = check_value(s + kl + 1, d->fields[i].type)) == NULL)
            return false;
    }
    if (*s++ != ' ')
        return false;
    char *end;
    long long ts = strtoll(s, &end, 10);
    return end == e - 1 && ts >= cfg->start_ns && ts < cfg->start_ns + cfg->duration_ns &&
           ts % 1000000 == 0;
}

TEST(lines_are_structurally_valid_line_protocol)
{
    struct qt_city_config cfg;
    struct qt_city_gen *g;
    struct qt_city_point p;
    char line[QT_CITY_LINE_MAX + 1];
    size_t n;
    uint64_t per_meas[QT_CITY_MEAS_COUNT] = {0};
    small_config(&cfg, qt_test_seed());
    CHECK_OK(qt_city_gen_create(&cfg, &g));
    while (qt_city_next(g, &p) == 1) {
        CHECK_OK(qt_city_format(&p, line, QT_CITY_LINE_MAX, &n));
        line[n] = '\0';
        if (!line_ok(line, n, &cfg)) {
            qt_test_fail_at(__FILE__, __LINE__, "bad line: %s", line);
            qt_city_gen_destroy(g);
            return;
        }
        per_meas[p.meas]++;
    }
    qt_city_gen_destroy(g);
    for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++)
        CHECK(per_meas[m] > 0);
}

TEST(format_reports_short_buffer)
{
    struct qt_city_config cfg;
    struct qt_city_gen *g;
    struct qt_city_point p;
    char full[QT_CITY_LINE_MAX], small[QT_CITY_LINE_MAX];
    size_t n, m;
    small_config(&cfg, qt_test_seed());
    CHECK_OK(qt_city_gen_create(&cfg, &g));
    CHECK_EQ(qt_city_next(g, &p), 1);
    qt_city_gen_destroy(g);
    CHECK_OK(qt_city_format(&p, full, sizeof(full), &n));
    CHECK_OK(qt_city_format(&p, small, n, &m));
    CHECK_EQ(m, n);
    CHECK(memcmp(full, small, n) == 0);
    CHECK_RC(qt_city_format(&p, small, n - 1, &m), QT_ENOSPACE);
}

/* ---- column extractor against the stream ------------------------------- */

#define COL_SERIES 6
#define COL_POINTS 4096

struct stored {
    int64_t ts;
    int64_t v[QT_CITY_FIELDS_MAX];
    const char *s;
};

static int
cmp_stored(const void *a, const void *b)
{
    int64_t x = ((const struct stored *)a)->ts, y = ((const struct stored *)b)->ts;
    return x < y ? -1 : x > y;
}

/* Compare the sorted stream points of one series with qt_city_column(). */
static bool
column_agrees(const struct qt_city_config *cfg, uint64_t series, const struct stored *pts,
              uint32_t npts, int64_t t0, int64_t t1)
{
    static int64_t ts[COL_POINTS], iv[COL_POINTS];
    static double fv[COL_POINTS];
    static uint8_t bv[COL_POINTS];
    static struct qt_str sv[COL_POINTS];
    struct qt_city_column col = {ts, fv, iv, bv, sv, COL_POINTS};
    enum qt_city_meas m = QT_CITY_METER;
    while (qt_city_series_first(cfg, m) > series)
        m--;
    const struct qt_city_meas_desc *d = qt_city_meas_desc(m);
    for (uint32_t f = 0; f < d->nfields; f++) {
        uint32_t n, j = 0;
        if (qt_city_column(cfg, series, f, t0, t1, &col, &n) != 0)
            return false;
        for (uint32_t i = 0; i < npts; i++) {
            if (pts[i].ts < t0 || pts[i].ts >= t1)
                continue;
            if (j >= n || ts[j] != pts[i].ts)
                return false;
            enum qt_vtype t = d->fields[f].type;
            if ((t == QT_VT_STRING && strncmp(sv[j].p, pts[i].s, sv[j].len) != 0) ||
                (t == QT_VT_BOOL && bv[j] != pts[i].v[f]) ||
                (t != QT_VT_STRING && t != QT_VT_BOOL && iv[j] != pts[i].v[f]))
                return false;
            if (t == QT_VT_FLOAT && fv[j] != (double)iv[j] / pow(10, d->fields[f].decimals))
                return false;
            j++;
        }
        if (j != n)
            return false;
    }
    return true;
}

TEST(column_matches_stream)
{
    struct qt_city_config cfg;
    struct qt_city_gen *g;
    struct qt_city_point p;
    small_config(&cfg, qt_test_seed());
    cfg.late_fraction = 0.05;
    cfg.dup_fraction = 0.01;
    cfg.missing_fraction = 0.01;
    /* one series of each measurement, plus the last series */
    uint64_t pick[COL_SERIES];
    for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++)
        pick[m] = qt_city_series_first(&cfg, (enum qt_city_meas)m) + 3;
    pick[5] = qt_city_series_count(&cfg) - 1;
    struct stored *pts = calloc(COL_SERIES * COL_POINTS, sizeof(*pts));
    uint32_t npts[COL_SERIES] = {0};
    CHECK(pts != NULL);
    CHECK_OK(qt_city_gen_create(&cfg, &g));
    while (qt_city_next(g, &p) == 1) {
        for (int i = 0; i < COL_SERIES; i++) {
            if (p.series != pick[i] || p.arrival == QT_CITY_DUP || npts[i] >= COL_POINTS)
                continue;
            struct stored *s = &pts[i * COL_POINTS + npts[i]++];
            s->ts = p.ts_ns;
            for (uint32_t f = 0; f < p.nfields; f++) {
                s->v[f] = p.fields[f].scaled;
                if (p.fields[f].type == QT_VT_STRING)
                    s->s = p.fields[f].s.p;
            }
        }
    }
    qt_city_gen_destroy(g);
    int64_t mid = cfg.start_ns + cfg.duration_ns / 3, end = cfg.start_ns + cfg.duration_ns;
    bool ok = true;
    for (int i = 0; i < COL_SERIES && ok; i++) {
        struct stored *s = &pts[i * COL_POINTS];
        qsort(s, npts[i], sizeof(*s), cmp_stored);
        ok = npts[i] > 10 && column_agrees(&cfg, pick[i], s, npts[i], cfg.start_ns, end) &&
             column_agrees(&cfg, pick[i], s, npts[i], mid, mid + 3600 * 1000000000LL);
    }
    free(pts);
    CHECK(ok);
}

TEST(column_errors)
{
    struct qt_city_config cfg;
    int64_t ts[8];
    double f[8];
    struct qt_city_column col = {ts, f, NULL, NULL, NULL, 8};
    uint32_t n;
    small_config(&cfg, 1);
    uint64_t nseries = qt_city_series_count(&cfg);
    CHECK_RC(qt_city_column(&cfg, nseries, 0, 0, INT64_MAX, &col, &n), QT_EINVAL);
    CHECK_RC(qt_city_column(&cfg, 0, 6, 0, INT64_MAX, &col, &n), QT_EINVAL);
    CHECK_RC(qt_city_column(&cfg, 0, 5, 0, INT64_MAX, &col, &n), QT_EINVAL); /* string, no s[] */
    CHECK_RC(qt_city_column(&cfg, nseries - 1, 0, 0, INT64_MAX, &col, &n), QT_EINVAL); /* int */
    CHECK_RC(qt_city_column(&cfg, 0, 0, 0, INT64_MAX, &col, &n), QT_ENOSPACE);
    CHECK_EQ(n, 8);
    CHECK_OK(
        qt_city_column(&cfg, 0, 0, cfg.start_ns, cfg.start_ns + 5 * 60 * 1000000000LL, &col, &n));
    CHECK(n >= 3 && n <= 5);
    CHECK_OK(qt_city_column(&cfg, 0, 0, 0, cfg.start_ns, &col, &n));
    CHECK_EQ(n, 0);
    cfg.stations[0] = 0;
    cfg.stations[1] = 0;
    cfg.stations[2] = 0;
    cfg.stations[3] = 0;
    cfg.stations[4] = 0;
    CHECK_RC(qt_city_column(&cfg, 0, 0, 0, INT64_MAX, &col, &n), QT_EINVAL);
}

TEST(config_validation)
{
    struct qt_city_config good, cfg;
    struct qt_city_gen *g = NULL;
    small_config(&good, 1);
    CHECK_OK(qt_city_config_check(&good));
    cfg = good;
    cfg.late_fraction = 0.6;
    CHECK_RC(qt_city_config_check(&cfg), QT_EINVAL);
    cfg = good;
    cfg.dup_fraction = -0.1;
    CHECK_RC(qt_city_config_check(&cfg), QT_EINVAL);
    cfg = good;
    cfg.missing_fraction = NAN;
    CHECK_RC(qt_city_config_check(&cfg), QT_EINVAL);
    cfg = good;
    cfg.duration_ns = 0;
    CHECK_RC(qt_city_config_check(&cfg), QT_EINVAL);
    cfg = good;
    cfg.start_ns = -1;
    CHECK_RC(qt_city_config_check(&cfg), QT_EINVAL);
    cfg = good;
    cfg.jitter_ms = 1001;
    CHECK_RC(qt_city_config_check(&cfg), QT_EINVAL);
    CHECK_RC(qt_city_gen_create(&cfg, &g), QT_EINVAL);
    CHECK(g == NULL);
    cfg = good;
    memset(cfg.stations, 0, sizeof(cfg.stations));
    CHECK_RC(qt_city_gen_create(&cfg, &g), QT_EINVAL);
    cfg.stations[QT_CITY_METER] = (1u << 26) + 1;
    CHECK_RC(qt_city_config_check(&cfg), QT_EINVAL);
}

/* ---- timestamps and signals -------------------------------------------- */

static int64_t col_ts[9000], col_i[9000];
static double col_f[9000];
static uint8_t col_b[9000];
static struct qt_str col_s[9000];

/* Every series' deltas are whole intervals +- 2 * jitter; 0 jitter: exact. */
static bool
ts_grid_ok(const struct qt_city_config *cfg, uint64_t series, int64_t interval, int64_t jit)
{
    struct qt_city_column col = {col_ts, col_f, col_i, col_b, col_s, 9000};
    uint32_t n;
    if (qt_city_column(cfg, series, 0, 0, INT64_MAX, &col, &n) != 0 || n < 10)
        return false;
    for (uint32_t i = 1; i < n; i++) {
        int64_t d = col_ts[i] - col_ts[i - 1];
        int64_t k = (d + interval / 2) / interval;
        if (k < 1 || llabs(d - k * interval) > 2 * jit || d % 1000000 != 0)
            return false;
    }
    return true;
}

TEST(timestamps_on_jittered_grid)
{
    struct qt_city_config cfg;
    small_config(&cfg, qt_test_seed());
    cfg.missing_fraction = 0.02;
    for (int jit = 0; jit <= 3; jit += 3) {
        cfg.jitter_ms = (uint32_t)jit;
        for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++) {
            int64_t interval = qt_city_meas_desc((enum qt_city_meas)m)->interval_ns;
            uint64_t first = qt_city_series_first(&cfg, (enum qt_city_meas)m);
            for (uint32_t s = 0; s < 3; s++)
                CHECK(ts_grid_ok(&cfg, first + s, interval, jit * 1000000LL));
        }
    }
}

TEST(missing_share)
{
    struct qt_city_config cfg;
    struct qt_city_column col = {col_ts, col_f, col_i, col_b, col_s, 9000};
    qt_city_config_default(&cfg, 0);
    cfg.seed = qt_test_seed();
    cfg.stations[QT_CITY_WATER_QUALITY] = 1000;
    uint64_t present = 0;
    uint32_t n;
    for (uint64_t s = 0; s < 1000; s++) {
        CHECK_OK(qt_city_column(&cfg, s, 0, 0, INT64_MAX, &col, &n));
        present += n;
    }
    double missing = 1.0 - (double)present / (1000.0 * 288);
    printf("missing %.4f%%\n", missing * 100);
    CHECK(missing > 0.0005 && missing < 0.0016);
}

/* Count of column values of a float field inside [lo, hi]; n returned. */
static uint32_t
float_column(const struct qt_city_config *cfg, uint64_t series, uint32_t field, uint32_t *n)
{
    struct qt_city_column col = {col_ts, col_f, col_i, col_b, col_s, 9000};
    *n = 0;
    if (qt_city_column(cfg, series, field, 0, INT64_MAX, &col, n) != 0)
        return 0;
    return *n;
}

static bool
all_within(uint32_t n, double lo, double hi, double max_step)
{
    for (uint32_t i = 0; i < n; i++) {
        if (col_f[i] < lo || col_f[i] > hi)
            return false;
        if (i > 0 && fabs(col_f[i] - col_f[i - 1]) > max_step)
            return false;
    }
    return n > 0;
}

TEST(signals_are_plausible)
{
    struct qt_city_config cfg;
    struct qt_city_column col = {col_ts, col_f, col_i, col_b, col_s, 9000};
    uint32_t n;
    small_config(&cfg, qt_test_seed());
    cfg.duration_ns = 24 * 3600 * 1000000000LL;
    uint64_t air = qt_city_series_first(&cfg, QT_CITY_AIR);
    uint64_t wq = qt_city_series_first(&cfg, QT_CITY_WATER_QUALITY);
    uint64_t water = qt_city_series_first(&cfg, QT_CITY_WATER);
    uint64_t grid = qt_city_series_first(&cfg, QT_CITY_GRID);
    uint64_t meter = qt_city_series_first(&cfg, QT_CITY_METER);
    float_column(&cfg, air + 1, 0, &n);
    CHECK(all_within(n, 2, 999, 40)); /* pm25 */
    float_column(&cfg, air + 1, 3, &n);
    CHECK(all_within(n, -10, 40, 1.0)); /* temperature, 60 s steps */
    float_column(&cfg, air + 1, 4, &n);
    CHECK(all_within(n, 20, 100, 5)); /* humidity */
    float_column(&cfg, wq + 2, 0, &n);
    CHECK(all_within(n, 6, 9, 0.3)); /* ph */
    float_column(&cfg, water + 5, 0, &n);
    CHECK(all_within(n, 0.05, 0.8, 0.1)); /* pressure */
    float_column(&cfg, grid + 7, 0, &n);
    CHECK(all_within(n, 9.8, 11.2, 0.1)); /* voltage */
    float_column(&cfg, grid + 7, 3, &n);
    CHECK(all_within(n, 49.9, 50.1, 0.035)); /* frequency */
    /* rain mostly zero, but it does rain somewhere in a day */
    uint64_t zero = 0, total = 0;
    for (uint64_t s = water; s < water + 10; s++) {
        CHECK_OK(qt_city_column(&cfg, s, 3, 0, INT64_MAX, &col, &n));
        for (uint32_t i = 0; i < n; i++)
            zero += col_f[i] == 0;
        total += n;
    }
    CHECK(zero > total / 2 && zero < total);
    /* meter readings never decrease */
    CHECK_OK(qt_city_column(&cfg, meter + 11, 0, 0, INT64_MAX, &col, &n));
    CHECK(n > 80);
    for (uint32_t i = 1; i < n; i++)
        CHECK(col_i[i] >= col_i[i - 1]);
    /* air state: "ok" most of the time */
    uint64_t ok = 0;
    total = 0;
    for (uint64_t s = air; s < air + 20; s++) {
        CHECK_OK(qt_city_column(&cfg, s, 5, 0, INT64_MAX, &col, &n));
        for (uint32_t i = 0; i < n; i++)
            ok += col_s[i].len == 2 && memcmp(col_s[i].p, "ok", 2) == 0;
        total += n;
    }
    CHECK(ok > total * 9 / 10);
}

/* ---- against the real line protocol parser (server/ilp.c) --------------- */

static bool
ilp_str_eq(struct qt_ilp_str s, const char *c, size_t n)
{
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

/* The parsed point carries exactly the generated point's series, fields
 * (floats bit for bit) and timestamp. */
static bool
ilp_agrees(const struct qt_ilp_point *pt, const struct qt_city_point *p)
{
    if (!ilp_str_eq(pt->measurement, p->measurement, strlen(p->measurement)) ||
        pt->tags_count != p->ntags || pt->fields_count != p->nfields ||
        pt->timestamp_ns != p->ts_ns || !pt->has_timestamp)
        return false;
    for (uint32_t i = 0; i < p->ntags; i++) {
        bool found = false;
        for (uint32_t j = 0; j < pt->tags_count && !found; j++)
            found = ilp_str_eq(pt->tags[j].key, p->tags[i].key, strlen(p->tags[i].key)) &&
                    ilp_str_eq(pt->tags[j].value, p->tags[i].value, strlen(p->tags[i].value));
        if (!found)
            return false;
    }
    for (uint32_t i = 0; i < p->nfields; i++) {
        const struct qt_ilp_field *f = &pt->fields[i];
        const struct qt_city_field *g = &p->fields[i];
        if (!ilp_str_eq(f->key, g->name, strlen(g->name)) || (int)f->type != (int)g->type)
            return false;
        bool same = (g->type == QT_VT_FLOAT && memcmp(&f->v.f, &g->f, sizeof(double)) == 0) ||
                    (g->type == QT_VT_INT && f->v.i == g->scaled) ||
                    (g->type == QT_VT_BOOL && f->v.b == (g->scaled != 0)) ||
                    (g->type == QT_VT_STRING && ilp_str_eq(f->v.s, g->s.p, g->s.len));
        if (!same)
            return false;
    }
    return true;
}

TEST(lines_parse_with_the_ilp_parser)
{
    static struct qt_ilp_point pt;
    static char scratch[QT_ILP_SCRATCH_MAX];
    struct qt_ilp_opts opts = {QT_ILP_NS, 0};
    struct qt_city_config cfg;
    struct qt_city_gen *g;
    struct qt_city_point p;
    char line[QT_CITY_LINE_MAX];
    size_t n;
    uint64_t parsed = 0;
    small_config(&cfg, qt_test_seed());
    cfg.duration_ns = 3600 * 1000000000LL;
    CHECK_OK(qt_city_gen_create(&cfg, &g));
    while (qt_city_next(g, &p) == 1) {
        qt_city_format(&p, line, sizeof(line), &n);
        int rc =
            qt_ilp_parse_line(&opts, (const uint8_t *)line, n - 1, scratch, sizeof(scratch), &pt);
        if (rc != 0 || !ilp_agrees(&pt, &p)) {
            qt_test_fail_at(__FILE__, __LINE__, "rc %d (%s) for: %.*s", rc, qt_err_detail(),
                            (int)n - 1, line);
            qt_city_gen_destroy(g);
            return;
        }
        parsed++;
    }
    qt_city_gen_destroy(g);
    CHECK(parsed > 25000);
}
