/*
 * export.h -- stream raw points out of a database as line protocol or CSV
 * (design/ops.md "Export").
 *
 * Selection: one measurement plus tag matchers (the catalog's; the CLI
 * builds equality matchers from "MEASUREMENT,tag=value,..."), and a time
 * range.  Output is produced group by group (measurement + tag set), in time
 * order within a group, from a consistent snapshot per group (the scans'
 * version).
 *
 * Line protocol: one line per group and timestamp with every field that has
 * a value there, e.g.
 *     air,district=xihu,station=a0001 pm25=23.4,count=3i,ok=true 1794528000000000000
 * Floats print as the shortest decimal that parses back to the same double,
 * integers with the `i` suffix, strings quoted with \" and \\ escaped.  The
 * output re-imports into an identical database.  Values line protocol
 * cannot carry (NaN, infinities, strings with CR or LF) are left out and
 * counted in `skipped`.
 *
 * CSV (RFC 4180): a header line, then one row per point:
 *     measurement,tags,field,time_ns,value
 *     air,"district=xihu,station=a0001",pm25,1794528000000000000,23.4
 * tags is the canonical tag set (line protocol escaping), quoted as needed.
 */
#ifndef QT_EXPORT_H
#define QT_EXPORT_H

#include "storage/catalog.h"
#include "storage/ops.h"

#include <stddef.h>
#include <stdint.h>

struct qt_db;

enum qt_export_format { QT_EXPORT_LP = 0, QT_EXPORT_CSV = 1 };

/* Receives the output in pieces; a non-zero return stops the export and is
 * returned by qt_export. */
typedef int (*qt_export_out_fn)(void *arg, const char *buf, size_t len);

struct qt_export_opts {
    struct qt_str measurement; /* unescaped */
    const struct qt_tag_matcher *tags;
    uint32_t ntags;
    int64_t t0, t1; /* [t0, t1) */
    enum qt_export_format format;
    qt_export_out_fn out;
    void *arg;
    struct qt_ops_ctl ctl; /* progress in groups */
};

struct qt_export_result {
    uint64_t series, groups;
    uint64_t lines; /* lines written (LP) or rows (CSV, header excluded) */
    uint64_t points;
    uint64_t skipped; /* points line protocol cannot carry */
    uint64_t bytes;
};

/* Export the selection.  0, or the catalog's selection error, a scan error
 * (damaged block), the callback's return, QT_ECLOSED (cancelled). */
int qt_export(struct qt_db *db, const struct qt_export_opts *o, struct qt_export_result *r);

/* The shortest decimal text that strtod() maps back to exactly v ("23.4",
 * "41", "1e+300", "nan", "inf", "-inf"): its length, or QT_ENOSPACE when
 * cap < 32. */
int qt_export_float(double v, char *out, size_t cap);

/*
 * Parse a selector "MEASUREMENT[,key=value...]" in place (buf is modified;
 * a backslash escapes the next byte) into the measurement and up to cap
 * equality matchers pointing into buf.  0, QT_ESYNTAX, QT_ELIMIT.
 */
int qt_export_parse_selector(char *buf, struct qt_str *measurement, struct qt_tag_matcher *m,
                             uint32_t cap, uint32_t *n);

#endif
