/*
 * citygen.h -- deterministic city telemetry generator (Hangzhou model).
 *
 * Produces the data set every benchmark and end-to-end test uses: five
 * measurements (air, water_quality, water, grid, meter) over ten districts,
 * with smooth, sensor-quantised signals, jittered ms timestamps, missing
 * points, late back-fills after outages and re-sent duplicates.  The model
 * is described in design/bench.md; measurement, tag and field names are
 * fixed because queries and tests depend on them.
 *
 * Determinism: output is a pure function of struct qt_city_config.  All
 * signals are computed in 64-bit integers (micro-units) from splitmix64
 * streams and a fixed profile table, so the generated decimals do not depend
 * on libm, the compiler or the machine; a float value is the integer
 * `scaled` divided by 10^decimals, one correctly rounded IEEE division.
 *
 * Three views of the same data:
 *   - qt_city_next():   every line in *arrival order* (late and duplicate
 *                       lines included, as a gateway would send them);
 *   - qt_city_format(): one point as InfluxDB line protocol text;
 *   - qt_city_column(): one series' stored column for a time span (sorted by
 *                       ts, no duplicates, late points in place): what the
 *                       engine should hold after ingesting the stream.
 *
 * No global mutable state; a generator is used by one thread at a time,
 * different generators are independent.  Test-support code: links into every
 * test binary and the benchmarks, depends only on format/ base headers.
 */
#ifndef QT_CITYGEN_H
#define QT_CITYGEN_H

#include "format/batch.h"
#include "format/codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum qt_city_meas {
    QT_CITY_AIR = 0,           /* air: district, station a0001..; every 60 s */
    QT_CITY_WATER_QUALITY = 1, /* water_quality: district, site q0001..; every 300 s */
    QT_CITY_WATER = 2,         /* water: district, site w0001..; every 10 s */
    QT_CITY_GRID = 3,          /* grid: district, substation s001.., feeder f01..; every 10 s */
    QT_CITY_METER = 4,         /* meter: district, meter m000001..; every 900 s */
    QT_CITY_MEAS_COUNT = 5,
};

#define QT_CITY_DISTRICTS  10u
#define QT_CITY_TAGS_MAX   3u
#define QT_CITY_FIELDS_MAX 6u
/* Longest line qt_city_format() can produce, '\n' included. */
#define QT_CITY_LINE_MAX 512u
/* Feeders per substation in the grid model (feeder f01..f08). */
#define QT_CITY_FEEDERS_PER_SUBSTATION 8u

struct qt_city_field_desc {
    const char *name;
    enum qt_vtype type;
    uint8_t decimals; /* FLOAT: digits after the point the sensor reports */
};

struct qt_city_meas_desc {
    const char *name;    /* measurement name in line protocol */
    int64_t interval_ns; /* nominal sampling interval */
    uint32_t ntags;
    const char *tag_keys[QT_CITY_TAGS_MAX]; /* in line order */
    uint32_t nfields;
    struct qt_city_field_desc fields[QT_CITY_FIELDS_MAX]; /* in line order */
};

/* Static description of measurement m (< QT_CITY_MEAS_COUNT). */
const struct qt_city_meas_desc *qt_city_meas_desc(enum qt_city_meas m);
/* District name for index 0..QT_CITY_DISTRICTS-1 ("shangcheng".."linan"). */
const char *qt_city_district_name(uint32_t district);

struct qt_city_config {
    uint64_t seed;
    uint32_t stations[QT_CITY_MEAS_COUNT]; /* series per measurement (one station = one series) */
    int64_t start_ns;                      /* first nominal sample time (ns since epoch) */
    int64_t duration_ns;                   /* points have start <= ts < start + duration */
    double late_fraction;                  /* share of points held in outages, re-sent later */
    double dup_fraction;                   /* share of points sent twice */
    double missing_fraction;               /* share of points never sent */
    uint32_t jitter_ms;                    /* ts = nominal + uniform[-jitter, +jitter] ms */
};

/* Defaults: seed 1, 2026-11-15T00:00:00Z, 1 day, 1% late, 0.1% duplicates,
 * 0.1% missing, +-3 ms jitter, and `series` split over the measurements
 * (air 5%, water_quality 2%, water 15%, grid 18%, meter the rest; at least
 * one each when series >= 5). */
void qt_city_config_default(struct qt_city_config *cfg, uint32_t series);

/* 0, or QT_EINVAL with a qt_err_detail() reason if cfg is out of range. */
int qt_city_config_check(const struct qt_city_config *cfg);

/* Total series (sum of cfg->stations). */
uint64_t qt_city_series_count(const struct qt_city_config *cfg);
/* Global series index of station 0 of measurement m: series of one
 * measurement are contiguous, in enum order. */
uint64_t qt_city_series_first(const struct qt_city_config *cfg, enum qt_city_meas m);

enum qt_city_arrival {
    QT_CITY_ONTIME = 0, /* sent at its own timestamp */
    QT_CITY_LATE = 1,   /* held during an outage, sent minutes to hours later */
    QT_CITY_DUP = 2,    /* second copy of a point already sent */
};

struct qt_city_tag {
    const char *key;
    char value[16]; /* NUL-terminated; inline so a point can be copied freely */
};

struct qt_city_field {
    const char *name;
    enum qt_vtype type;
    uint8_t decimals; /* FLOAT only */
    /* FLOAT: value * 10^decimals (exact integer); INT: the value; BOOL: 0/1. */
    int64_t scaled;
    double f;        /* FLOAT: scaled / 10^decimals, correctly rounded */
    struct qt_str s; /* STRING: points to static storage */
};

struct qt_city_point {
    enum qt_city_meas meas;
    const char *measurement;
    uint32_t station; /* index within the measurement */
    uint64_t series;  /* global series index */
    int64_t ts_ns;    /* ms precision */
    int64_t arrival_ns;
    enum qt_city_arrival arrival;
    uint32_t ntags;
    struct qt_city_tag tags[QT_CITY_TAGS_MAX];
    uint32_t nfields;
    struct qt_city_field fields[QT_CITY_FIELDS_MAX];
};

struct qt_city_gen;

/* Create a generator over cfg (copied).  0, QT_EINVAL (bad config) or
 * QT_ENOMEM.  Memory: ~130 bytes per series plus pending re-sends. */
int qt_city_gen_create(const struct qt_city_config *cfg, struct qt_city_gen **out);
/* Free g; NULL is fine. */
void qt_city_gen_destroy(struct qt_city_gen *g);

/*
 * Next line in arrival order into *p (caller-owned).  Returns 1 when *p was
 * filled, 0 at the end of the stream, QT_ENOMEM if a pending re-send could
 * not be queued (g is then unusable).  Arrival times never decrease; on-time
 * points arrive at their ts, so each series' on-time points ascend.
 */
int qt_city_next(struct qt_city_gen *g, struct qt_city_point *p);

/* Lines returned so far, by arrival kind (index enum qt_city_arrival). */
void qt_city_counts(const struct qt_city_gen *g, uint64_t counts[3]);

/*
 * Format p as one line of InfluxDB line protocol ending in '\n' (no NUL)
 * into buf[0..cap).  Floats print as the shortest decimal that round-trips
 * (23.4, 41, 0.3); ints with the `i` suffix; strings quoted.  0 with *len
 * set, or QT_ENOSPACE if cap is too small (cap >= QT_CITY_LINE_MAX always
 * suffices).
 */
int qt_city_format(const struct qt_city_point *p, char *buf, size_t cap, size_t *len);

/* Canonical group key of p ("measurement,k1=v1,..." with tags sorted by key)
 * into out[0..cap); returns its length.  City tag values need no escaping. */
uint32_t qt_city_group_key(const struct qt_city_point *p, char *out, size_t cap);

/* p as one storage write line: the group key goes to key[0..key_cap), the
 * fields to fields[0..QT_CITY_FIELDS_MAX); *line points into both (and into
 * p's static field names).  Bools become 0/1, strings point at static text. */
void qt_city_batch_line(const struct qt_city_point *p, char *key, size_t key_cap,
                        struct qt_batch_field *fields, struct qt_batch_line *line);

/* Output arrays for qt_city_column(): ts and the one array matching the
 * field's type (f: FLOAT, i: INT, b: BOOL, s: STRING; others may be NULL).
 * For FLOAT fields, i (if not NULL) also receives the scaled integers. */
struct qt_city_column {
    int64_t *ts;
    double *f;
    int64_t *i;
    uint8_t *b;
    struct qt_str *s; /* point to static storage */
    uint32_t cap;     /* entries in each array */
};

/*
 * The stored column of field `field` of series `series` for ts in [t0, t1):
 * ascending ts, each point once, missing points absent, late points in
 * place -- exactly the values qt_city_next() sends.  Cost: proportional to
 * the points between cfg->start_ns and t1.  0 with *n set; QT_EINVAL (bad
 * config, series or field, or missing output array); QT_ENOSPACE if more than
 * col->cap points fall in the span (*n = points written).
 */
int qt_city_column(const struct qt_city_config *cfg, uint64_t series, uint32_t field, int64_t t0,
                   int64_t t1, const struct qt_city_column *col, uint32_t *n);

#endif
