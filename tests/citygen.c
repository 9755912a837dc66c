/*
 * citygen.c -- deterministic city telemetry generator (see citygen.h and
 * design/bench.md for the model).
 *
 * Structure.  Every station (= series) has a *signal state* (struct
 * station): a splitmix64 stream, AR(1) walks, event and missing-run state
 * and its point index k.  sig_step() advances it by one nominal sample and
 * yields the point (present or missing).  The signal state is a pure
 * function of (config, station, k), so:
 *   - qt_city_column() replays one station from k = 0 without a generator;
 *   - a late back-fill or a duplicate is a *snapshot* of the signal state
 *     taken before the first point it re-sends, replayed later (struct
 *     replay); nothing is buffered and the re-sent values are identical.
 * Arrival decisions (outages, duplicates) use a second, separate stream per
 * station, so they never perturb the values.
 *
 * Arrival order.  A binary min-heap keyed by (arrival time, push sequence)
 * holds one entry per live station (keyed by its next nominal ts) and one
 * per pending replay.  qt_city_next() pops the earliest; equal times are
 * broken by push order, which is itself deterministic.
 *
 * Invariants: heap keys are >= the last popped key (arrival never goes
 * back); a station has at most one pending back-fill (no new outage starts
 * before the previous back-fill arrives); every emitted ts lies in
 * [start, start + duration).
 *
 * Integer arithmetic only on the value path: quantities are int64
 * micro-units (1e-6 of the unit) until quantised; the double is produced by
 * one IEEE division of two exact integers.
 */
#include "citygen.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"

#include <stdio.h>
#include <string.h>

#define U       1000000LL /* one unit in micro-units */
#define MS      1000000LL /* ns per ms */
#define SEC     (1000 * MS)
#define GOLD    0x9e3779b97f4a7c15ull
#define P32     4294967296.0
#define HOUR_MS 3600000LL
#define DAY_MS  (24 * HOUR_MS)
/* Hangzhou is UTC+8 all year: diurnal profiles run on local time. */
#define LOCAL_OFFSET_MS (8 * HOUR_MS)

/* ---- schema ------------------------------------------------------------ */

static const char *const district_names[QT_CITY_DISTRICTS] = {
    "shangcheng", "gongshu", "xihu",     "binjiang", "xiaoshan",
    "yuhang",     "linping", "qiantang", "fuyang",   "linan",
};

static const struct qt_city_meas_desc meas_desc[QT_CITY_MEAS_COUNT] = {
    [QT_CITY_AIR] = {"air",
                     60 * SEC,
                     2,
                     {"district", "station"},
                     6,
                     {{"pm25", QT_VT_FLOAT, 0},
                      {"pm10", QT_VT_FLOAT, 0},
                      {"no2", QT_VT_FLOAT, 0},
                      {"temperature", QT_VT_FLOAT, 1},
                      {"humidity", QT_VT_FLOAT, 1},
                      {"state", QT_VT_STRING, 0}}},
    [QT_CITY_WATER_QUALITY] = {"water_quality",
                               300 * SEC,
                               2,
                               {"district", "site"},
                               3,
                               {{"ph", QT_VT_FLOAT, 2},
                                {"turbidity", QT_VT_FLOAT, 2},
                                {"do", QT_VT_FLOAT, 2}}},
    [QT_CITY_WATER] = {"water",
                       10 * SEC,
                       2,
                       {"district", "site"},
                       5,
                       {{"pressure", QT_VT_FLOAT, 3},
                        {"flow", QT_VT_FLOAT, 2},
                        {"level", QT_VT_FLOAT, 2},
                        {"rain", QT_VT_FLOAT, 1},
                        {"alarm", QT_VT_BOOL, 0}}},
    [QT_CITY_GRID] = {"grid",
                      10 * SEC,
                      3,
                      {"district", "substation", "feeder"},
                      4,
                      {{"voltage", QT_VT_FLOAT, 2},
                       {"current", QT_VT_FLOAT, 1},
                       {"power", QT_VT_FLOAT, 1},
                       {"frequency", QT_VT_FLOAT, 2}}},
    [QT_CITY_METER] =
        {"meter", 900 * SEC, 2, {"district", "meter"}, 1, {{"reading", QT_VT_INT, 0}}},
};

/* Air station states; index = station.ev_kind. */
static const struct qt_str air_states[3] = {{"ok", 2}, {"maint", 5}, {"fault", 5}};

static const int64_t pow10_i[7] = {1, 10, 100, 1000, 10000, 100000, 1000000};
static const double pow10_d[7] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6};

/* Hourly profiles (value at hh:00, local time), interpolated by Catmull-Rom.
 * shape: -1000..1000, min 05-06h, max 14h (temperature, photosynthesis).
 * traffic: 0..1000, rush hours 08h and 18h (pm25, no2).
 * demand: water use, mean ~1000, peaks 08h and 19h.
 * load: feeder load, mean ~900, evening peak 19h.
 * home: household electricity, mean 1000, evening peak 19-20h. */
static const int16_t prof_shape[24] = {-600, -720, -820, -900, -960, -1000, -1000, -850,
                                       -550, -200, 150,  480,  750,  930,   1000,  950,
                                       800,  560,  320,  120,  -40,  -200,  -340,  -470};
static const int16_t prof_traffic[24] = {200,  130, 100,  90,  120, 250, 550, 900,
                                         1000, 800, 600,  550, 550, 520, 520, 560,
                                         700,  920, 1000, 800, 600, 480, 380, 280};
static const int16_t prof_demand[24] = {550,  420,  360,  340,  380,  560,  950,  1400,
                                        1450, 1250, 1100, 1150, 1250, 1100, 1000, 980,
                                        1050, 1200, 1400, 1500, 1400, 1200, 950,  720};
static const int16_t prof_load[24] = {620,  570,  540,  530,  540,  580,  680,  820,
                                      950,  1030, 1060, 1070, 1000, 1020, 1060, 1060,
                                      1050, 1080, 1180, 1230, 1200, 1100, 930,  760};
static const int16_t prof_home[24] = {415,  332,  297,  285,  297,  356,  712,  1187,
                                      1068, 831,  772,  950,  1187, 950,  772,  772,
                                      890,  1306, 1899, 2255, 2255, 2018, 1424, 772};

const struct qt_city_meas_desc *
qt_city_meas_desc(enum qt_city_meas m)
{
    qt_assert((unsigned)m < QT_CITY_MEAS_COUNT);
    return &meas_desc[m];
}

const char *
qt_city_district_name(uint32_t district)
{
    qt_assert(district < QT_CITY_DISTRICTS);
    return district_names[district];
}

/* ---- integer randomness ------------------------------------------------ */

static inline uint64_t
mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t
rng_next(uint64_t *s)
{
    return mix64(*s += GOLD);
}

/* Uniform in [0, span) (span > 0); multiply-high, no modulo bias worth
 * measuring at these spans. */
static inline int64_t
rng_below(uint64_t *s, int64_t span)
{
    return (int64_t)(((unsigned __int128)rng_next(s) * (uint64_t)span) >> 64);
}

static inline int64_t
rng_range(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + rng_below(s, hi - lo + 1);
}

/* True with probability thresh / 2^32. */
static inline bool
rng_chance(uint64_t *s, uint32_t thresh)
{
    return (uint32_t)(rng_next(s) >> 32) < thresh;
}

/* Approximately normal (Irwin-Hall of four 16-bit uniforms), std sigma. */
static inline int64_t
rng_gauss(uint64_t *s, int64_t sigma)
{
    uint64_t r = rng_next(s);
    int64_t sum = (int64_t)(r & 0xffff) + (int64_t)((r >> 16) & 0xffff) +
                  (int64_t)((r >> 32) & 0xffff) + (int64_t)(r >> 48);
    /* mean 4 * 65535 / 2, std 65536 * sqrt(4 / 12) = 37837.2 */
    return (sum - 131070) * sigma / 37837;
}

/* Log-spread duration: a uniformly chosen octave [lo*2^o, lo*2^(o+1)) and a
 * uniform point in it.  Mean lo * 1.5 * (2^octaves - 1) / octaves. */
static int64_t
rng_octaves(uint64_t *s, int64_t lo, unsigned octaves)
{
    int64_t base = lo << rng_below(s, octaves);
    return base + rng_below(s, base);
}

static int64_t
octaves_mean(int64_t lo, unsigned octaves)
{
    return lo * 3 / 2 * ((1ll << octaves) - 1) / octaves;
}

static inline int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Smooth value noise in [0, 65536): hashed knots every period_ms,
 * smoothstep interpolation.  Stateless: every station of a district sees
 * the same weather. */
static int64_t
vnoise(uint64_t key, int64_t t_ms, int64_t period_ms)
{
    int64_t j = floor_div(t_ms, period_ms);
    int64_t f = t_ms - j * period_ms;
    int64_t a = (int64_t)(mix64(key ^ ((uint64_t)j * GOLD)) >> 48);
    int64_t b = (int64_t)(mix64(key ^ ((uint64_t)(j + 1) * GOLD)) >> 48);
    int64_t s = f * 65536 / period_ms;
    s = s * s / 65536 * (3 * 65536 - 2 * s) / 65536;
    return a + (b - a) * s / 65536;
}

/* Profile value at local time of day, in micro-units of the table unit
 * (table value 1000 -> 1e6), Catmull-Rom between the hourly knots. */
static int64_t
profile_at(const int16_t prof[24], int64_t t_ms)
{
    int64_t tod = floor_div(t_ms + LOCAL_OFFSET_MS, DAY_MS);
    tod = t_ms + LOCAL_OFFSET_MS - tod * DAY_MS;
    int h = (int)(tod / HOUR_MS);
    const int64_t T = 1024;
    int64_t t = (tod - h * HOUR_MS) * T / HOUR_MS;
    int64_t p0 = prof[(h + 23) % 24], p1 = prof[h], p2 = prof[(h + 1) % 24];
    int64_t p3 = prof[(h + 2) % 24];
    int64_t sum = 2 * p1 * T * T * T + (p2 - p0) * t * T * T +
                  (2 * p0 - 5 * p1 + 4 * p2 - p3) * t * t * T +
                  (-p0 + 3 * p1 - 3 * p2 + p3) * t * t * t;
    return sum * 1000 / (2 * T * T * T);
}

static inline int64_t
clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Mean-reverting walk: w -= w / 2^shift, plus noise. */
static inline void
ar1(int64_t *w, uint64_t *rng, unsigned shift, int64_t sigma)
{
    *w -= *w / (1ll << shift);
    *w += rng_gauss(rng, sigma);
}

/* Round micro-units to `decimals` digits, half away from zero. */
static inline int64_t
quantise(int64_t x, unsigned decimals)
{
    int64_t div = pow10_i[6 - decimals];
    return x >= 0 ? (x + div / 2) / div : -((-x + div / 2) / div);
}

/* ---- parameters derived from the config -------------------------------- */

/* Outage model (design/bench.md): outage length log-spread over 6 octaves
 * from 2 min (mean ~31 min, up to ~2 h); the back-fill arrives 1 min .. ~4 h
 * after the outage ends; a duplicate 1 s .. ~8.5 min after the original. */
#define OUTAGE_LO_NS     (120 * SEC)
#define OUTAGE_OCTAVES   6u
#define RESEND_LO_NS     (60 * SEC)
#define RESEND_OCTAVES   8u
#define DUP_LO_NS        (1 * SEC)
#define DUP_OCTAVES      9u
#define MISS_RUN_MAX     5 /* missing runs are 1..5 points, mean 3 */
#define SEED_STATION_RNG 0xa5a5a5a5a5a5a5a5ull
#define SEED_ARRIVAL_RNG 0x5a5a5a5a5a5a5a5aull

struct params {
    uint64_t seed_key;
    int64_t start_ns, end_ns;
    int64_t jitter_ms;
    uint32_t p_miss;                       /* start of a missing run, per point */
    uint32_t p_dup;                        /* per on-time point */
    uint32_t p_outage[QT_CITY_MEAS_COUNT]; /* outage start, per live point */
};

static uint32_t
prob_thresh(double p)
{
    if (!(p > 0))
        return 0;
    return p >= 1.0 ? UINT32_MAX : (uint32_t)(p * P32);
}

/*
 * Outage starts per point so that a station spends late_fraction of its
 * time in outages: a cycle is (eligible gap G) + outage D + wait for the
 * back-fill R, with f = D / (G + D + R), so G = D / f - D - R and the
 * per-point start probability is interval / G.
 */
static void
params_init(struct params *pp, const struct qt_city_config *cfg)
{
    memset(pp, 0, sizeof(*pp));
    pp->seed_key = mix64(cfg->seed ^ 0x43495459ull); /* "CITY" */
    pp->start_ns = cfg->start_ns;
    pp->end_ns = cfg->start_ns + cfg->duration_ns;
    pp->jitter_ms = cfg->jitter_ms;
    pp->p_miss = prob_thresh(cfg->missing_fraction / ((1 + MISS_RUN_MAX) / 2.0));
    pp->p_dup = prob_thresh(cfg->dup_fraction / (1.0 - cfg->late_fraction));
    double d = (double)octaves_mean(OUTAGE_LO_NS, OUTAGE_OCTAVES);
    double r = (double)octaves_mean(RESEND_LO_NS, RESEND_OCTAVES);
    for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++) {
        if (cfg->late_fraction <= 0)
            continue;
        double gap = d / cfg->late_fraction - d - r;
        double interval = (double)meas_desc[m].interval_ns;
        pp->p_outage[m] = prob_thresh(gap <= interval ? 1.0 : interval / gap);
    }
    qt_assert(pp->end_ns > pp->start_ns);
}

/* ---- signal state -------------------------------------------------------- */

struct station {
    uint64_t rng;     /* signal stream */
    uint64_t key;     /* per-station hash: constants and jitter */
    int64_t k;        /* index of the next nominal point */
    int64_t phase_ms; /* offset of point 0 from start, jitter_ms .. interval - jitter_ms */
    int64_t walk[3];  /* AR(1) states (micro-units); meter: walk[0] is the counter */
    int64_t base[3];  /* per-station constants (micro-units) */
    uint32_t idx;
    uint32_t ev_left; /* samples left in the current event (air state, water burst) */
    uint8_t meas;
    uint8_t district;
    uint8_t ev_kind; /* 0 none; air: 1 maint, 2 fault; water: 1 burst */
    uint8_t miss_left;
};

static uint32_t
station_district(enum qt_city_meas m, uint32_t idx)
{
    if (m == QT_CITY_GRID)
        return (idx / QT_CITY_FEEDERS_PER_SUBSTATION) % QT_CITY_DISTRICTS;
    return idx % QT_CITY_DISTRICTS;
}

/* Per-measurement constants and the walks' starting points. */
static void
station_init_model(struct station *st)
{
    uint64_t *r = &st->rng;
    switch ((enum qt_city_meas)st->meas) {
    case QT_CITY_AIR:
        st->base[0] = rng_range(r, -800000, 800000); /* temperature offset */
        st->base[1] = rng_range(r, 1450, 1900);      /* pm10 / pm25, per mille */
        st->base[2] = rng_range(r, 800, 1250);       /* pm25 level, per mille */
        break;
    case QT_CITY_WATER_QUALITY:
        st->base[0] = rng_range(r, 69 * U / 10, 76 * U / 10); /* ph */
        st->base[1] = rng_range(r, 2 * U, 15 * U);            /* turbidity NTU */
        st->base[2] = rng_range(r, 65 * U / 10, 85 * U / 10); /* DO mg/L */
        break;
    case QT_CITY_WATER:
        st->base[0] = rng_range(r, 20 * U, 400 * U);                /* flow m3/h */
        st->base[1] = rng_range(r, 15 * U / 10, 5 * U);             /* level m */
        st->base[2] = rng_range(r, 260 * U / 1000, 380 * U / 1000); /* pressure MPa */
        break;
    case QT_CITY_GRID:
        st->base[0] = rng_range(r, 80 * U, 450 * U);                /* current A */
        st->base[1] = rng_range(r, 1040 * U / 100, 1060 * U / 100); /* voltage kV */
        st->base[2] = rng_range(r, 900000, 980000);                 /* power factor */
        break;
    case QT_CITY_METER:
        /* daily Wh: most households 3..25 kWh, 5% vacant 0.05..0.3 kWh */
        st->base[0] = rng_below(r, 20) == 0 ? rng_range(r, 50, 300) : rng_range(r, 3000, 25000);
        st->walk[0] = rng_range(r, 0, 40000000); /* counter, Wh */
        break;
    default: qt_unreachable();
    }
}

static void
station_init(const struct params *pp, enum qt_city_meas m, uint32_t idx, struct station *st)
{
    qt_assert((unsigned)m < QT_CITY_MEAS_COUNT);
    memset(st, 0, sizeof(*st));
    st->meas = (uint8_t)m;
    st->idx = idx;
    st->district = (uint8_t)station_district(m, idx);
    st->key = mix64(pp->seed_key ^ mix64(((uint64_t)m << 40 | idx) + 1));
    st->rng = st->key ^ SEED_STATION_RNG;
    int64_t interval_ms = meas_desc[m].interval_ns / MS;
    qt_assert(interval_ms > 2 * pp->jitter_ms);
    st->phase_ms = pp->jitter_ms + rng_below(&st->rng, interval_ms - 2 * pp->jitter_ms);
    station_init_model(st);
}

/* Timestamp of point k of st (nominal + jitter), ms precision. */
static inline int64_t
station_ts(const struct params *pp, const struct station *st, int64_t k)
{
    int64_t ts = pp->start_ns + st->phase_ms * MS + k * meas_desc[st->meas].interval_ns;
    if (pp->jitter_ms > 0) {
        uint64_t h = mix64(st->key ^ ((uint64_t)k * GOLD));
        ts += ((int64_t)((h >> 32) % (uint64_t)(2 * pp->jitter_ms + 1)) - pp->jitter_ms) * MS;
    }
    return ts;
}

/* ---- measurement models (one sample each) ------------------------------ */

static void
set_float(struct qt_city_point *p, uint32_t i, int64_t micro)
{
    struct qt_city_field *f = &p->fields[i];
    unsigned d = f->decimals;
    f->scaled = quantise(micro, d);
    f->f = (double)f->scaled / pow10_d[d];
}

/* District rain intensity (mm/h, micro-units): showers where a 20-minute
 * value noise exceeds 0.82, peak 2..30 mm/h from a 6-hour storm noise. */
static int64_t
district_rain(const struct params *pp, uint32_t district, int64_t t_ms)
{
    const int64_t cut = 53740; /* 0.82 * 65536 */
    int64_t v = vnoise(pp->seed_key ^ (0x7261696eull << 8 | district), t_ms, 20 * 60000);
    if (v <= cut)
        return 0;
    int64_t peak =
        2 * U + vnoise(pp->seed_key ^ (0x73746f726dull << 8 | district), t_ms, 6 * HOUR_MS) *
                    (28 * U / 65536);
    return (v - cut) * (peak / 1000) / (65536 - cut) * 1000;
}

/* Markov status: ok -> maint (~every 3 weeks, 30 min..4 h) or fault
 * (~every 10 weeks, 10 min..12 h) -> ok.  Samples are 60 s. */
static void
air_status(struct station *st)
{
    if (st->ev_left > 0) {
        if (--st->ev_left == 0)
            st->ev_kind = 0;
        return;
    }
    uint64_t r = rng_next(&st->rng) >> 32;
    if (r < 4294967296ull / 30000) {
        st->ev_kind = 1;
        st->ev_left = (uint32_t)rng_range(&st->rng, 30, 240);
    } else if (r < 4294967296ull / 30000 + 4294967296ull / 100000) {
        st->ev_kind = 2;
        st->ev_left = (uint32_t)rng_range(&st->rng, 10, 720);
    }
}

static void
air_step(const struct params *pp, struct station *st, int64_t t_ms, struct qt_city_point *p)
{
    uint64_t *r = &st->rng;
    uint64_t dkey = pp->seed_key ^ ((uint64_t)st->district << 8);
    int64_t shape = profile_at(prof_shape, t_ms);
    int64_t traffic = profile_at(prof_traffic, t_ms);
    int64_t anom = (vnoise(dkey ^ 0x74656d70ull, t_ms, 3 * HOUR_MS) - 32768) * (3 * U) / 32768;
    int64_t hum_n = (vnoise(dkey ^ 0x68756dull, t_ms, 4 * HOUR_MS) - 32768) * (8 * U) / 32768;
    int64_t episode = 20 * U + vnoise(dkey ^ 0x706d32ull, t_ms, 12 * HOUR_MS) * (50 * U / 65536);
    ar1(&st->walk[0], r, 6, 1060000);
    ar1(&st->walk[1], r, 6, 53000);
    ar1(&st->walk[2], r, 5, 1250000);
    air_status(st);

    int64_t pm25 = episode / 1000 * (700 + 600 * traffic / U) / 1000 * st->base[2];
    pm25 = clamp64(pm25 + st->walk[0] + rng_gauss(r, 1500000), 2 * U, 999 * U);
    int64_t pm10 = pm25 / 1000 * st->base[1] + rng_gauss(r, 3 * U);
    int64_t no2 = 12 * U + 40 * traffic + st->walk[2] + rng_gauss(r, 2 * U);
    int64_t temp =
        145 * U / 10 + 45 * shape / 10 + anom + st->base[0] + st->walk[1] + rng_gauss(r, 50000);
    int64_t hum = 72 * U - 14 * shape - anom * 5 / 2 + hum_n + rng_gauss(r, 300000);
    set_float(p, 0, pm25);
    set_float(p, 1, pm10 > pm25 ? pm10 : pm25);
    set_float(p, 2, clamp64(no2, 2 * U, 999 * U));
    set_float(p, 3, temp);
    set_float(p, 4, clamp64(hum, 20 * U, 100 * U));
    p->fields[5].s = air_states[st->ev_kind];
}

static void
wq_step(const struct params *pp, struct station *st, int64_t t_ms, struct qt_city_point *p)
{
    uint64_t *r = &st->rng;
    int64_t shape = profile_at(prof_shape, t_ms);
    int64_t rain = district_rain(pp, st->district, t_ms);
    ar1(&st->walk[0], r, 5, 37500);
    ar1(&st->walk[1], r, 4, 530000);
    ar1(&st->walk[2], r, 5, 125000);
    int64_t ph = st->base[0] + 12 * shape / 100 + st->walk[0] + rng_gauss(r, 10000);
    int64_t turb = st->base[1] + rain * 8 / 10 + st->walk[1] + rng_gauss(r, 100000);
    int64_t dox = st->base[2] + 9 * shape / 10 + st->walk[2] + rng_gauss(r, 50000);
    set_float(p, 0, clamp64(ph, 6 * U, 9 * U));
    set_float(p, 1, clamp64(turb, U / 10, 999 * U));
    set_float(p, 2, clamp64(dox, 2 * U, 14 * U));
}

/* Pipe bursts: ~every 2.5 weeks per site at 10 s, 10 min..2 h; pressure
 * drops, flow jumps, alarm is raised. */
static void
water_step(const struct params *pp, struct station *st, int64_t t_ms, struct qt_city_point *p)
{
    uint64_t *r = &st->rng;
    int64_t demand = profile_at(prof_demand, t_ms);
    int64_t rain = district_rain(pp, st->district, t_ms);
    if (st->ev_left > 0) {
        if (--st->ev_left == 0)
            st->ev_kind = 0;
    } else if (rng_chance(r, (uint32_t)(4294967296ull / 150000))) {
        st->ev_kind = 1;
        st->ev_left = (uint32_t)rng_range(r, 60, 720);
    }
    ar1(&st->walk[0], r, 8, 3500);
    ar1(&st->walk[1], r, 10, 13260);
    st->walk[1] += rain / 5000; /* 1 mm/h of rain raises the level 0.2 mm per sample */
    ar1(&st->walk[2], r, 7, 500);
    bool burst = st->ev_kind != 0;
    int64_t flow = st->base[0] / 1000 * (demand / 1000) * (U + st->walk[0]) / U;
    flow += rng_gauss(r, st->base[0] / 200) + (burst ? st->base[0] / 2 : 0);
    int64_t pres = st->base[2] - 35 * (demand - U) / 1000 + st->walk[2] + rng_gauss(r, 1500);
    pres -= burst ? 80000 : 0;
    int64_t level = st->base[1] + st->walk[1] + rng_gauss(r, 5000);
    int64_t site_rain = rain / 1000 * (850 + (int64_t)(st->key % 301)) / 1000 * 1000;
    set_float(p, 0, clamp64(pres, U / 20, 8 * U / 10));
    set_float(p, 1, flow > 0 ? flow : 0);
    set_float(p, 2, clamp64(level, U / 10, 99 * U / 10));
    set_float(p, 3, site_rain);
    p->fields[4].scaled = burst;
}

static void
grid_step(const struct params *pp, struct station *st, int64_t t_ms, struct qt_city_point *p)
{
    uint64_t *r = &st->rng;
    int64_t load = profile_at(prof_load, t_ms);
    int64_t fnoise = vnoise(pp->seed_key ^ 0x66726571ull, t_ms, 90000) - 32768;
    ar1(&st->walk[0], r, 8, 4419);
    ar1(&st->walk[1], r, 6, 5300);
    int64_t cur = st->base[0] / 1000 * (load / 1000) * (U + st->walk[0]) / U;
    cur += rng_gauss(r, 1200000);
    int64_t volt = st->base[1] - 12 * (load - 900000) / 100 + st->walk[1] + rng_gauss(r, 8000);
    set_float(p, 0, clamp64(volt, 98 * U / 10, 112 * U / 10));
    set_float(p, 1, cur > 0 ? cur : 0);
    /* P = sqrt(3) V I pf from the quantised readings, plus metering noise */
    int64_t va = 1732051 * p->fields[0].scaled * p->fields[1].scaled / 1000;
    int64_t kw = va * (st->base[2] / 1000) / 1000 + rng_gauss(r, 500000);
    set_float(p, 2, kw > 0 ? kw : 0);
    int64_t hz = 50 * U + fnoise * 40000 / 32768 + rng_gauss(r, 4000);
    set_float(p, 3, clamp64(hz, 499 * U / 10, 501 * U / 10));
}

static void
meter_step(struct station *st, int64_t t_ms, struct qt_city_point *p)
{
    int64_t home = profile_at(prof_home, t_ms);
    int64_t wh = st->base[0] * home / U * rng_range(&st->rng, 600, 1400) / 1000 / 96;
    st->walk[0] += wh > 0 ? wh : 0;
    p->fields[0].scaled = st->walk[0];
}

/* Fill the point's fixed parts: measurement, tags, field names and types. */
static void
point_header(struct qt_city_point *p, const struct station *st)
{
    static const char prefix[QT_CITY_MEAS_COUNT] = {'a', 'q', 'w', 's', 'm'};
    static const int width[QT_CITY_MEAS_COUNT] = {4, 4, 4, 3, 6};
    const struct qt_city_meas_desc *d = &meas_desc[st->meas];
    p->meas = (enum qt_city_meas)st->meas;
    p->measurement = d->name;
    p->station = st->idx;
    p->ntags = d->ntags;
    p->nfields = d->nfields;
    for (uint32_t i = 0; i < d->ntags; i++)
        p->tags[i].key = d->tag_keys[i];
    strcpy(p->tags[0].value, district_names[st->district]);
    uint32_t num = st->meas == QT_CITY_GRID ? st->idx / QT_CITY_FEEDERS_PER_SUBSTATION : st->idx;
    char tmp[12];
    int n = 0;
    for (uint32_t v = num + 1; v > 0 || n < width[st->meas]; v /= 10)
        tmp[n++] = (char)('0' + v % 10);
    p->tags[1].value[0] = prefix[st->meas];
    for (int i = 0; i < n; i++)
        p->tags[1].value[1 + i] = tmp[n - 1 - i];
    p->tags[1].value[1 + n] = '\0';
    if (st->meas == QT_CITY_GRID) {
        uint32_t f = st->idx % QT_CITY_FEEDERS_PER_SUBSTATION + 1;
        p->tags[2].value[0] = 'f';
        p->tags[2].value[1] = (char)('0' + f / 10);
        p->tags[2].value[2] = (char)('0' + f % 10);
        p->tags[2].value[3] = '\0';
    }
    for (uint32_t i = 0; i < d->nfields; i++) {
        struct qt_city_field *f = &p->fields[i];
        f->name = d->fields[i].name;
        f->type = d->fields[i].type;
        f->decimals = d->fields[i].decimals;
        f->scaled = 0;
        f->f = 0;
        f->s = (struct qt_str){NULL, 0};
    }
}

/*
 * Advance st by one nominal sample and fill *p (header, ts, values) -- the
 * walks move whether or not the sensor reports.  Returns true if the point
 * is present (sent), false if it is missing.
 */
static bool
sig_step(const struct params *pp, struct station *st, struct qt_city_point *p)
{
    int64_t ts = station_ts(pp, st, st->k);
    int64_t t_ms = ts / MS;
    qt_assert(ts >= pp->start_ns);
    point_header(p, st);
    p->ts_ns = ts;
    switch ((enum qt_city_meas)st->meas) {
    case QT_CITY_AIR: air_step(pp, st, t_ms, p); break;
    case QT_CITY_WATER_QUALITY: wq_step(pp, st, t_ms, p); break;
    case QT_CITY_WATER: water_step(pp, st, t_ms, p); break;
    case QT_CITY_GRID: grid_step(pp, st, t_ms, p); break;
    case QT_CITY_METER: meter_step(st, t_ms, p); break;
    default: qt_unreachable();
    }
    st->k++;
    if (st->miss_left > 0) {
        st->miss_left--;
        return false;
    }
    if (rng_chance(&st->rng, pp->p_miss)) {
        st->miss_left = (uint8_t)rng_range(&st->rng, 0, MISS_RUN_MAX - 1);
        return false;
    }
    return true;
}

/* ---- configuration ------------------------------------------------------ */

/* 2026-11-15T00:00:00Z */
#define DEFAULT_START_S 1794700800LL
/* Guard against configs whose station arrays would not fit in memory or
 * whose source ids would overflow 32 bits with pending re-sends. */
#define SERIES_MAX    (1u << 26)
#define DURATION_MAX  (100LL * 366 * 86400 * SEC)
#define FRACTION_MAX  0.5
#define JITTER_MS_MAX 1000u

void
qt_city_config_default(struct qt_city_config *cfg, uint32_t series)
{
    static const uint32_t share_pct[QT_CITY_MEAS_COUNT - 1] = {5, 2, 15, 18};
    qt_assert(cfg != NULL);
    memset(cfg, 0, sizeof(*cfg));
    cfg->seed = 1;
    cfg->start_ns = DEFAULT_START_S * SEC;
    cfg->duration_ns = 86400 * SEC;
    cfg->late_fraction = 0.01;
    cfg->dup_fraction = 0.001;
    cfg->missing_fraction = 0.001;
    cfg->jitter_ms = 3;
    if (series < QT_CITY_MEAS_COUNT) {
        for (uint32_t m = 0; m < series; m++)
            cfg->stations[m] = 1;
        return;
    }
    uint32_t used = 0;
    for (uint32_t m = 0; m + 1 < QT_CITY_MEAS_COUNT; m++) {
        uint32_t n = (uint32_t)((uint64_t)series * share_pct[m] / 100);
        cfg->stations[m] = n > 0 ? n : 1;
        used += cfg->stations[m];
    }
    qt_assert(used < series);
    cfg->stations[QT_CITY_METER] = series - used;
}

int
qt_city_config_check(const struct qt_city_config *cfg)
{
    uint64_t total = qt_city_series_count(cfg);
    if (total == 0 || total > SERIES_MAX)
        return qt_fail(QT_EINVAL, "citygen: series count 0 or above 2^26");
    if (cfg->duration_ns <= 0 || cfg->duration_ns > DURATION_MAX)
        return qt_fail(QT_EINVAL, "citygen: duration not in (0, 100 years]");
    if (cfg->start_ns < 0 || cfg->start_ns > INT64_MAX - DURATION_MAX)
        return qt_fail(QT_EINVAL, "citygen: start out of range");
    if (!(cfg->late_fraction >= 0 && cfg->late_fraction <= FRACTION_MAX) ||
        !(cfg->dup_fraction >= 0 && cfg->dup_fraction <= FRACTION_MAX) ||
        !(cfg->missing_fraction >= 0 && cfg->missing_fraction <= FRACTION_MAX))
        return qt_fail(QT_EINVAL, "citygen: fraction not in [0, 0.5]");
    if (cfg->jitter_ms > JITTER_MS_MAX)
        return qt_fail(QT_EINVAL, "citygen: jitter above 1000 ms");
    return 0;
}

uint64_t
qt_city_series_count(const struct qt_city_config *cfg)
{
    uint64_t total = 0;
    for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++)
        total += cfg->stations[m];
    return total;
}

uint64_t
qt_city_series_first(const struct qt_city_config *cfg, enum qt_city_meas m)
{
    qt_assert((unsigned)m < QT_CITY_MEAS_COUNT);
    uint64_t first = 0;
    for (int i = 0; i < (int)m; i++)
        first += cfg->stations[i];
    return first;
}

/* Measurement and station index of a global series index (< count). */
static void
series_locate(const struct qt_city_config *cfg, uint64_t series, enum qt_city_meas *m,
              uint32_t *idx)
{
    for (int i = 0; i < (int)QT_CITY_MEAS_COUNT; i++) {
        if (series < cfg->stations[i]) {
            *m = (enum qt_city_meas)i;
            *idx = (uint32_t)series;
            return;
        }
        series -= cfg->stations[i];
    }
    qt_unreachable();
}

/* ---- generator: arrival order -------------------------------------------- */

struct live {
    struct station st;
    uint64_t arr_rng;      /* arrival stream: outages, duplicates */
    int64_t outage_end_ns; /* live points before this are held for the back-fill */
    int64_t busy_until_ns; /* no new outage before the pending back-fill arrives */
};

struct replay {
    struct station st;  /* snapshot, positioned at the first point to re-send */
    int64_t until_ns;   /* re-send present points with ts < until_ns */
    int64_t arrival_ns; /* every re-sent point arrives at this time */
    uint32_t series;
    uint32_t kind;      /* QT_CITY_LATE or QT_CITY_DUP */
    uint32_t next_free; /* free-list link while unused */
};

struct heap_ent {
    int64_t key;  /* arrival time */
    uint64_t seq; /* push order: deterministic tie-break */
    uint32_t src; /* < nstations: live station; else replay src - nstations */
};

struct qt_city_gen {
    struct qt_city_config cfg;
    struct params pp;
    uint32_t nstations;
    struct live *live; /* indexed by global series index */
    struct replay *rep;
    uint32_t rep_cap, rep_free; /* rep_free: head of the free list, UINT32_MAX if none */
    struct heap_ent *heap;
    uint32_t heap_len, heap_cap;
    uint64_t seq;
    int64_t last_key; /* arrival of the last popped entry: keys never go back */
    uint64_t counts[3];
    int failed;
};

static inline bool
heap_less(const struct heap_ent *a, const struct heap_ent *b)
{
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

static void
heap_sift_down(struct qt_city_gen *g, uint32_t i)
{
    struct heap_ent e = g->heap[i];
    uint32_t n = g->heap_len;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && heap_less(&g->heap[c + 1], &g->heap[c]))
            c++;
        if (!heap_less(&g->heap[c], &e))
            break;
        g->heap[i] = g->heap[c];
        i = c;
    }
    g->heap[i] = e;
}

/* Caller reserved room (heap_reserve). */
static void
heap_push(struct qt_city_gen *g, int64_t key, uint32_t src)
{
    qt_assert(g->heap_len < g->heap_cap);
    struct heap_ent e = {key, g->seq++, src};
    uint32_t i = g->heap_len++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!heap_less(&e, &g->heap[parent]))
            break;
        g->heap[i] = g->heap[parent];
        i = parent;
    }
    g->heap[i] = e;
}

/* Re-key the top entry (same source, later or equal time) or drop it. */
static void
heap_retop(struct qt_city_gen *g, int64_t key)
{
    qt_assert(g->heap_len > 0);
    qt_assert(key >= g->heap[0].key);
    g->heap[0].key = key;
    g->heap[0].seq = g->seq++;
    heap_sift_down(g, 0);
}

static void
heap_drop_top(struct qt_city_gen *g)
{
    qt_assert(g->heap_len > 0);
    g->heap[0] = g->heap[--g->heap_len];
    if (g->heap_len > 0)
        heap_sift_down(g, 0);
}

/* Room for `more` heap entries and `more` replay records. */
static int
gen_reserve(struct qt_city_gen *g, uint32_t more)
{
    if (g->heap_len + more > g->heap_cap) {
        uint32_t cap = g->heap_cap * 2 + more;
        struct heap_ent *h = qt_realloc(g->heap, (size_t)cap * sizeof(*h));
        if (h == NULL)
            return qt_fail(QT_ENOMEM, "citygen: heap");
        g->heap = h;
        g->heap_cap = cap;
    }
    uint32_t free_count = 0;
    for (uint32_t r = g->rep_free; r != UINT32_MAX && free_count < more; r = g->rep[r].next_free)
        free_count++;
    if (free_count >= more)
        return 0;
    uint32_t cap = g->rep_cap * 2 + 64;
    if ((uint64_t)g->nstations + cap >= UINT32_MAX)
        return qt_fail(QT_ENOMEM, "citygen: too many pending re-sends");
    struct replay *rep = qt_realloc(g->rep, (size_t)cap * sizeof(*rep));
    if (rep == NULL)
        return qt_fail(QT_ENOMEM, "citygen: replay pool");
    for (uint32_t r = cap; r-- > g->rep_cap;) {
        rep[r].next_free = g->rep_free;
        g->rep_free = r;
    }
    g->rep = rep;
    g->rep_cap = cap;
    return 0;
}

/* Take a reserved replay record holding a snapshot of lv's signal state. */
static uint32_t
replay_new(struct qt_city_gen *g, uint32_t series, const struct station *st, int64_t until_ns,
           int64_t arrival_ns, enum qt_city_arrival kind)
{
    uint32_t r = g->rep_free;
    qt_assert(r != UINT32_MAX);
    g->rep_free = g->rep[r].next_free;
    struct replay *rp = &g->rep[r];
    rp->st = *st;
    rp->until_ns = until_ns;
    rp->arrival_ns = arrival_ns;
    rp->series = series;
    rp->kind = kind;
    rp->next_free = UINT32_MAX;
    return r;
}

/*
 * Start station s in the outage model's steady state, so the late share
 * holds from the first hour on: with probability late_fraction it is in an
 * outage that began before start (length-biased duration, uniform elapsed
 * part); otherwise, with probability late_fraction * R / D, it is waiting
 * for a back-fill of points before start (nothing to re-send, but no new
 * outage until it arrives).
 */
static int
live_start_state(struct qt_city_gen *g, uint32_t s)
{
    struct live *lv = &g->live[s];
    uint64_t *r = &lv->arr_rng;
    double f = g->cfg.late_fraction;
    int64_t d_mean = octaves_mean(OUTAGE_LO_NS, OUTAGE_OCTAVES);
    int64_t r_mean = octaves_mean(RESEND_LO_NS, RESEND_OCTAVES);
    int64_t u = rng_below(r, 1ll << 32);
    if (u < (int64_t)prob_thresh(f)) {
        int64_t d;
        do
            d = rng_octaves(r, OUTAGE_LO_NS, OUTAGE_OCTAVES);
        while (rng_below(r, OUTAGE_LO_NS << OUTAGE_OCTAVES) >= d);
        int64_t end = g->pp.start_ns + d - rng_below(r, d);
        int rc = gen_reserve(g, 1);
        if (rc != 0)
            return rc;
        lv->outage_end_ns = end;
        lv->busy_until_ns = end + rng_octaves(r, RESEND_LO_NS, RESEND_OCTAVES);
        uint32_t rp = replay_new(g, s, &lv->st, end, lv->busy_until_ns, QT_CITY_LATE);
        heap_push(g, lv->busy_until_ns, g->nstations + rp);
    } else if (u < (int64_t)prob_thresh(f + f * (double)r_mean / (double)d_mean)) {
        lv->busy_until_ns = g->pp.start_ns + rng_below(r, 2 * r_mean);
    }
    return 0;
}

int
qt_city_gen_create(const struct qt_city_config *cfg, struct qt_city_gen **out)
{
    int rc = qt_city_config_check(cfg);
    if (rc != 0)
        return rc;
    struct qt_city_gen *g = qt_calloc(1, sizeof(*g));
    if (g == NULL)
        return qt_fail(QT_ENOMEM, "citygen: generator");
    g->cfg = *cfg;
    params_init(&g->pp, cfg);
    g->nstations = (uint32_t)qt_city_series_count(cfg);
    g->rep_free = UINT32_MAX;
    g->last_key = INT64_MIN;
    g->live = qt_calloc(g->nstations, sizeof(*g->live));
    g->heap_cap = g->nstations + 64;
    g->heap = qt_malloc((size_t)g->heap_cap * sizeof(*g->heap));
    if (g->live == NULL || g->heap == NULL) {
        qt_city_gen_destroy(g);
        return qt_fail(QT_ENOMEM, "citygen: station arrays");
    }
    uint32_t s = 0;
    for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++) {
        for (uint32_t idx = 0; idx < cfg->stations[m]; idx++, s++) {
            struct live *lv = &g->live[s];
            station_init(&g->pp, (enum qt_city_meas)m, idx, &lv->st);
            lv->arr_rng = lv->st.key ^ SEED_ARRIVAL_RNG;
            lv->outage_end_ns = INT64_MIN;
            lv->busy_until_ns = INT64_MIN;
            int64_t ts = station_ts(&g->pp, &lv->st, 0);
            rc = gen_reserve(g, 1);
            if (rc == 0 && ts < g->pp.end_ns)
                heap_push(g, ts, s);
            if (rc == 0)
                rc = live_start_state(g, s);
            if (rc != 0) {
                qt_city_gen_destroy(g);
                return rc;
            }
        }
    }
    *out = g;
    return 0;
}

void
qt_city_gen_destroy(struct qt_city_gen *g)
{
    if (g == NULL)
        return;
    qt_free(g->live);
    qt_free(g->rep);
    qt_free(g->heap);
    qt_free(g);
}

/*
 * A live station's next nominal sample: maybe start an outage (snapshot
 * for the back-fill), maybe schedule a duplicate (snapshot of this point),
 * then step the signal.  Returns 1 if the point is sent now.
 */
static int
live_pop(struct qt_city_gen *g, uint32_t s, struct qt_city_point *p)
{
    const struct params *pp = &g->pp;
    struct live *lv = &g->live[s];
    int64_t ts = station_ts(pp, &lv->st, lv->st.k);
    int64_t interval = meas_desc[lv->st.meas].interval_ns;
    uint32_t pend[2], npend = 0;
    int rc = gen_reserve(g, 2);
    if (rc != 0)
        return rc;
    if (ts >= lv->busy_until_ns && rng_chance(&lv->arr_rng, pp->p_outage[lv->st.meas])) {
        int64_t begin = ts - rng_below(&lv->arr_rng, interval);
        int64_t end = begin + rng_octaves(&lv->arr_rng, OUTAGE_LO_NS, OUTAGE_OCTAVES);
        if (end > ts) {
            lv->outage_end_ns = end;
            lv->busy_until_ns = end + rng_octaves(&lv->arr_rng, RESEND_LO_NS, RESEND_OCTAVES);
            pend[npend++] = replay_new(g, s, &lv->st, end, lv->busy_until_ns, QT_CITY_LATE);
        }
    }
    bool held = ts < lv->outage_end_ns;
    if (!held && rng_chance(&lv->arr_rng, pp->p_dup)) {
        int64_t arrive = ts + rng_octaves(&lv->arr_rng, DUP_LO_NS, DUP_OCTAVES);
        pend[npend++] = replay_new(g, s, &lv->st, ts + 1, arrive, QT_CITY_DUP);
    }
    bool present = sig_step(pp, &lv->st, p);
    int64_t next = station_ts(pp, &lv->st, lv->st.k);
    if (next < pp->end_ns)
        heap_retop(g, next);
    else
        heap_drop_top(g);
    for (uint32_t i = 0; i < npend; i++)
        heap_push(g, g->rep[pend[i]].arrival_ns, g->nstations + pend[i]);
    if (!present || held)
        return 0;
    p->series = s;
    p->arrival = QT_CITY_ONTIME;
    p->arrival_ns = ts;
    return 1;
}

/* A pending re-send: the next point of its snapshot, or retire it. */
static int
replay_pop(struct qt_city_gen *g, uint32_t r, struct qt_city_point *p)
{
    const struct params *pp = &g->pp;
    struct replay *rp = &g->rep[r];
    int64_t ts = station_ts(pp, &rp->st, rp->st.k);
    if (ts >= rp->until_ns || ts >= pp->end_ns) {
        heap_drop_top(g);
        rp->next_free = g->rep_free;
        g->rep_free = r;
        return 0;
    }
    bool present = sig_step(pp, &rp->st, p);
    heap_retop(g, rp->arrival_ns);
    if (!present)
        return 0;
    p->series = rp->series;
    p->arrival = (enum qt_city_arrival)rp->kind;
    p->arrival_ns = rp->arrival_ns;
    return 1;
}

int
qt_city_next(struct qt_city_gen *g, struct qt_city_point *p)
{
    qt_assert(g != NULL);
    qt_assert(p != NULL);
    if (g->failed != 0)
        return g->failed;
    while (g->heap_len > 0) {
        uint32_t src = g->heap[0].src;
        qt_assert(g->heap[0].key >= g->last_key);
        g->last_key = g->heap[0].key;
        int rc = src < g->nstations ? live_pop(g, src, p) : replay_pop(g, src - g->nstations, p);
        if (rc < 0) {
            g->failed = rc;
            return rc;
        }
        if (rc > 0) {
            g->counts[p->arrival]++;
            return 1;
        }
    }
    return 0;
}

void
qt_city_counts(const struct qt_city_gen *g, uint64_t counts[3])
{
    for (int i = 0; i < 3; i++)
        counts[i] = g->counts[i];
}

/* ---- line protocol ------------------------------------------------------- */

static char *
put_str(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

static char *
put_u64(char *o, uint64_t v, int min_digits)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 || n < min_digits);
    while (n > 0)
        *o++ = tmp[--n];
    return o;
}

static char *
put_i64(char *o, int64_t v)
{
    if (v < 0) {
        *o++ = '-';
        return put_u64(o, (uint64_t)0 - (uint64_t)v, 1);
    }
    return put_u64(o, (uint64_t)v, 1);
}

/* scaled / 10^decimals as its shortest decimal: trailing zeros dropped. */
static char *
put_decimal(char *o, int64_t scaled, unsigned decimals)
{
    uint64_t a = scaled < 0 ? (uint64_t)0 - (uint64_t)scaled : (uint64_t)scaled;
    uint64_t div = (uint64_t)pow10_i[decimals];
    uint64_t frac = a % div;
    if (scaled < 0)
        *o++ = '-';
    o = put_u64(o, a / div, 1);
    if (frac == 0)
        return o;
    int digits = (int)decimals;
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    *o++ = '.';
    return put_u64(o, frac, digits);
}

/* Field value; strings are quoted with '"' and '\' escaped. */
static char *
put_field(char *o, const struct qt_city_field *f)
{
    switch (f->type) {
    case QT_VT_FLOAT: return put_decimal(o, f->scaled, f->decimals);
    case QT_VT_INT:
        o = put_i64(o, f->scaled);
        *o++ = 'i';
        return o;
    case QT_VT_BOOL: return put_str(o, f->scaled ? "true" : "false");
    case QT_VT_STRING:
        qt_assert(f->s.len <= 64);
        *o++ = '"';
        for (uint32_t i = 0; i < f->s.len; i++) {
            if (f->s.p[i] == '"' || f->s.p[i] == '\\')
                *o++ = '\\';
            *o++ = f->s.p[i];
        }
        *o++ = '"';
        return o;
    }
    qt_unreachable();
}

static size_t
format_line(const struct qt_city_point *p, char *buf)
{
    char *o = put_str(buf, p->measurement);
    for (uint32_t i = 0; i < p->ntags; i++) {
        *o++ = ',';
        o = put_str(o, p->tags[i].key);
        *o++ = '=';
        o = put_str(o, p->tags[i].value);
    }
    for (uint32_t i = 0; i < p->nfields; i++) {
        *o++ = i == 0 ? ' ' : ',';
        o = put_str(o, p->fields[i].name);
        *o++ = '=';
        o = put_field(o, &p->fields[i]);
    }
    *o++ = ' ';
    o = put_i64(o, p->ts_ns);
    *o++ = '\n';
    qt_assert((size_t)(o - buf) <= QT_CITY_LINE_MAX);
    return (size_t)(o - buf);
}

int
qt_city_format(const struct qt_city_point *p, char *buf, size_t cap, size_t *len)
{
    qt_assert(p->ntags <= QT_CITY_TAGS_MAX);
    qt_assert(p->nfields <= QT_CITY_FIELDS_MAX);
    if (cap >= QT_CITY_LINE_MAX) {
        *len = format_line(p, buf);
        return 0;
    }
    char tmp[QT_CITY_LINE_MAX];
    size_t n = format_line(p, tmp);
    if (n > cap)
        return qt_fail(QT_ENOSPACE, "citygen: line buffer too small");
    memcpy(buf, tmp, n);
    *len = n;
    return 0;
}

/* ---- stored columns ------------------------------------------------------ */

static void
column_store(const struct qt_city_column *col, uint32_t i, const struct qt_city_field *f)
{
    switch (f->type) {
    case QT_VT_FLOAT:
        col->f[i] = f->f;
        if (col->i != NULL)
            col->i[i] = f->scaled;
        return;
    case QT_VT_INT: col->i[i] = f->scaled; return;
    case QT_VT_BOOL: col->b[i] = (uint8_t)f->scaled; return;
    case QT_VT_STRING: col->s[i] = f->s; return;
    }
    qt_unreachable();
}

static bool
column_has_array(const struct qt_city_column *col, enum qt_vtype t)
{
    return col->ts != NULL &&
           ((t == QT_VT_FLOAT && col->f != NULL) || (t == QT_VT_INT && col->i != NULL) ||
            (t == QT_VT_BOOL && col->b != NULL) || (t == QT_VT_STRING && col->s != NULL));
}

int
qt_city_column(const struct qt_city_config *cfg, uint64_t series, uint32_t field, int64_t t0,
               int64_t t1, const struct qt_city_column *col, uint32_t *n)
{
    int rc = qt_city_config_check(cfg);
    if (rc != 0)
        return rc;
    if (series >= qt_city_series_count(cfg))
        return qt_fail(QT_EINVAL, "citygen: no such series");
    enum qt_city_meas m;
    uint32_t idx;
    series_locate(cfg, series, &m, &idx);
    if (field >= meas_desc[m].nfields)
        return qt_fail(QT_EINVAL, "citygen: no such field");
    if (!column_has_array(col, meas_desc[m].fields[field].type))
        return qt_fail(QT_EINVAL, "citygen: no output array for the field's type");
    struct params pp;
    struct station st;
    struct qt_city_point p;
    params_init(&pp, cfg);
    station_init(&pp, m, idx, &st);
    int64_t stop = t1 < pp.end_ns ? t1 : pp.end_ns;
    uint32_t count = 0;
    *n = 0;
    while (station_ts(&pp, &st, st.k) < stop) {
        if (!sig_step(&pp, &st, &p) || p.ts_ns < t0)
            continue;
        if (count == col->cap)
            return qt_fail(QT_ENOSPACE, "citygen: column span holds more than cap points");
        col->ts[count] = p.ts_ns;
        column_store(col, count, &p.fields[field]);
        *n = ++count;
    }
    return 0;
}

uint32_t
qt_city_group_key(const struct qt_city_point *p, char *out, size_t cap)
{
    qt_assert(p != NULL && out != NULL);
    qt_assert(p->ntags <= QT_CITY_TAGS_MAX);
    uint32_t order[QT_CITY_TAGS_MAX];
    for (uint32_t i = 0; i < p->ntags; i++) {
        uint32_t j = i;
        for (; j > 0 && strcmp(p->tags[order[j - 1]].key, p->tags[i].key) > 0; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    int n = snprintf(out, cap, "%s", p->measurement);
    for (uint32_t i = 0; i < p->ntags && n >= 0 && (size_t)n < cap; i++)
        n += snprintf(out + n, cap - (size_t)n, ",%s=%s", p->tags[order[i]].key,
                      p->tags[order[i]].value);
    qt_assert(n >= 0 && (size_t)n < cap);
    return (uint32_t)n;
}

void
qt_city_batch_line(const struct qt_city_point *p, char *key, size_t key_cap,
                   struct qt_batch_field *fields, struct qt_batch_line *line)
{
    qt_assert(p->nfields <= QT_CITY_FIELDS_MAX);
    line->key = key;
    line->key_len = qt_city_group_key(p, key, key_cap);
    line->ts = p->ts_ns;
    line->n_fields = p->nfields;
    line->fields = fields;
    for (uint32_t k = 0; k < p->nfields; k++) {
        struct qt_batch_field *f = &fields[k];
        *f = (struct qt_batch_field){.name = p->fields[k].name,
                                     .name_len = (uint32_t)strlen(p->fields[k].name),
                                     .vtype = p->fields[k].type};
        if (f->vtype == QT_VT_FLOAT)
            f->v.f = p->fields[k].f;
        else if (f->vtype == QT_VT_INT)
            f->v.i = p->fields[k].scaled;
        else if (f->vtype == QT_VT_BOOL)
            f->v.b = (uint8_t)(p->fields[k].scaled != 0);
        else
            f->v.s = p->fields[k].s;
    }
}
