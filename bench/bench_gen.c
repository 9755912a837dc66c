/*
 * bench_gen.c -- write city telemetry as InfluxDB line protocol to stdout.
 *
 *   build/bench/bench_gen --hours 6 --stations 10000 > city.lp
 *
 * Lines come in arrival order (late back-fills and duplicates included),
 * exactly as tests/citygen.c generates them; the same options give the same
 * bytes on every machine.  A summary (lines, bytes, late/dup counts, rate)
 * goes to stderr.  Not a benchmark: bench/run.sh skips it.
 */
#include "format/qt_err.h"
#include "tests/citygen.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OUT_BUF_BYTES (1u << 20)

static void
usage(FILE *f)
{
    fprintf(f, "usage: bench_gen [options] > city.lp\n"
               "  --hours H            span to generate (default 6; fractions allowed)\n"
               "  --stations N         total series, split over measurements (default 10000)\n"
               "  --air N --water-quality N --water N --grid N --meter N\n"
               "                       override one measurement's series count\n"
               "  --seed S             generator seed (default 1)\n"
               "  --start T            first sample: YYYY-MM-DDTHH:MM:SSZ or epoch seconds\n"
               "                       (default 2026-11-15T00:00:00Z)\n"
               "  --late F --dup F --missing F   fractions (default 0.01, 0.001, 0.001)\n"
               "  --jitter-ms J        timestamp jitter, +-J ms (default 3; 0 = regular)\n"
               "  --quiet              no summary on stderr\n");
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
parse_start(const char *s, int64_t *ns)
{
    int y, mo, d, h, mi, sec;
    char z;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &sec, &z) == 7 && z == 'Z') {
        if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
            return -1;
        int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
        *ns = secs * 1000000000LL;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > 9000000000LL)
        return -1;
    *ns = v * 1000000000LL;
    return 0;
}

static int
parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || *end != '\0' || end == s || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int
parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return (errno != 0 || *end != '\0' || end == s) ? -1 : 0;
}

struct opts {
    struct qt_city_config cfg;
    double hours;
    uint32_t stations;
    int64_t override[QT_CITY_MEAS_COUNT]; /* -1: from --stations */
    int quiet;
};

static int
parse_opt(struct opts *o, const char *name, const char *val)
{
    static const char *const meas_opts[QT_CITY_MEAS_COUNT] = {"--air", "--water-quality", "--water",
                                                              "--grid", "--meter"};
    uint32_t u;
    for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++) {
        if (strcmp(name, meas_opts[m]) == 0) {
            if (parse_u32(val, &u) != 0)
                return -1;
            o->override[m] = u;
            return 0;
        }
    }
    if (strcmp(name, "--hours") == 0)
        return parse_double(val, &o->hours) != 0 || !(o->hours > 0) ? -1 : 0;
    if (strcmp(name, "--stations") == 0)
        return parse_u32(val, &o->stations);
    if (strcmp(name, "--seed") == 0) {
        char *end;
        errno = 0;
        o->cfg.seed = strtoull(val, &end, 0);
        return (errno != 0 || *end != '\0') ? -1 : 0;
    }
    if (strcmp(name, "--start") == 0)
        return parse_start(val, &o->cfg.start_ns);
    if (strcmp(name, "--late") == 0)
        return parse_double(val, &o->cfg.late_fraction);
    if (strcmp(name, "--dup") == 0)
        return parse_double(val, &o->cfg.dup_fraction);
    if (strcmp(name, "--missing") == 0)
        return parse_double(val, &o->cfg.missing_fraction);
    if (strcmp(name, "--jitter-ms") == 0)
        return parse_u32(val, &o->cfg.jitter_ms);
    return -2;
}

static int
parse_args(int argc, char **argv, struct opts *o)
{
    qt_city_config_default(&o->cfg, 0);
    o->hours = 6;
    o->stations = 10000;
    for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++)
        o->override[m] = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--quiet") == 0) {
            o->quiet = 1;
            continue;
        }
        int rc = i + 1 < argc ? parse_opt(o, argv[i], argv[i + 1]) : -2;
        if (rc != 0) {
            fprintf(stderr, "bench_gen: %s %s\n",
                    rc == -2 ? "unknown or incomplete option" : "bad value for", argv[i]);
            return -1;
        }
        i++;
    }
    struct qt_city_config split;
    qt_city_config_default(&split, o->stations);
    for (int m = 0; m < (int)QT_CITY_MEAS_COUNT; m++)
        o->cfg.stations[m] = o->override[m] >= 0 ? (uint32_t)o->override[m] : split.stations[m];
    o->cfg.duration_ns = (int64_t)(o->hours * 3600.0 * 1e9);
    return 0;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof(o));
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    struct qt_city_gen *g;
    int rc = qt_city_gen_create(&o.cfg, &g);
    if (rc != 0) {
        fprintf(stderr, "bench_gen: %s: %s\n", qt_strerror(rc), qt_err_detail());
        return 2;
    }
    static char out[OUT_BUF_BYTES];
    size_t used = 0;
    uint64_t lines = 0, bytes = 0;
    struct qt_city_point p;
    double t0 = now_s();
    while ((rc = qt_city_next(g, &p)) == 1) {
        if (OUT_BUF_BYTES - used < QT_CITY_LINE_MAX) {
            if (fwrite(out, 1, used, stdout) != used)
                break;
            bytes += used;
            used = 0;
        }
        size_t n;
        qt_city_format(&p, out + used, OUT_BUF_BYTES - used, &n);
        used += n;
        lines++;
    }
    int werr = fwrite(out, 1, used, stdout) != used || fflush(stdout) != 0;
    bytes += used;
    double secs = now_s() - t0;
    uint64_t counts[3];
    qt_city_counts(g, counts);
    qt_city_gen_destroy(g);
    if (rc < 0) {
        fprintf(stderr, "bench_gen: %s: %s\n", qt_strerror(rc), qt_err_detail());
        return 1;
    }
    if (werr) {
        fprintf(stderr, "bench_gen: write to stdout failed: %s\n", strerror(errno));
        return 1;
    }
    if (!o.quiet)
        fprintf(stderr,
                "bench_gen: %" PRIu64 " lines, %" PRIu64 " bytes, %" PRIu64 " series, late %" PRIu64
                " (%.3f%%), dup %" PRIu64 " (%.3f%%), %.2f s, %.2f M lines/s\n",
                lines, bytes, qt_city_series_count(&o.cfg), counts[QT_CITY_LATE],
                lines ? 100.0 * (double)counts[QT_CITY_LATE] / (double)lines : 0.0,
                counts[QT_CITY_DUP],
                lines ? 100.0 * (double)counts[QT_CITY_DUP] / (double)lines : 0.0, secs,
                secs > 0 ? (double)lines / secs / 1e6 : 0.0);
    return 0;
}
