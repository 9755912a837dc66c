/*
 * graphite.h -- Graphite (carbon) plaintext protocol parser.
 *
 *   <path>[;tag=value...] <value> [<timestamp>]
 *
 * Each line becomes one qt_ilp_point with a single float field, so storage
 * sees one point type whatever the protocol.  How a dotted path becomes a
 * measurement, tags and a field (by default, or by a configured template)
 * is documented in design/ilp.md "Graphite".  Summary of the default:
 *
 *   path "a.b.c.d"  ->  measurement "a", tags p1=b, p2=c, field "d"
 *   path "a"        ->  measurement "a", field "value"
 *   "collectd.host_name.cpu-0.cpu-idle"
 *                   ->  collectd,p1=host_name,p2=cpu-0 cpu-idle=<value>
 *
 * Timestamps are seconds (a fraction is kept to the nanosecond); a missing
 * timestamp or one whose integer part is -1 means "now" (as carbon does),
 * rounded down to the second.  NaN values are dropped (QT_ILP_SKIP), as
 * carbon drops them; infinite values are rejected.
 *
 * Ownership and errors as in ilp.h: point strings point into the line, the
 * scratch buffer, or the configuration (template names), and live as long
 * as all three.
 */
#ifndef QT_GRAPHITE_H
#define QT_GRAPHITE_H

#include "format/qt_limits.h"
#include "server/ilp.h"

#include <stddef.h>
#include <stdint.h>

/* What one dotted part of a template pattern maps its path component to. */
enum qt_graphite_part_kind {
    QT_GP_SKIP = 0,            /* "" (as in ".host.measurement"): ignored */
    QT_GP_MEASUREMENT = 1,     /* "measurement" (repeated parts join with '.') */
    QT_GP_MEASUREMENT_ALL = 2, /* "measurement*": this and all later parts */
    QT_GP_FIELD = 3,           /* "field" */
    QT_GP_FIELD_ALL = 4,       /* "field*" */
    QT_GP_TAG = 5              /* any other word: a tag of that name */
};

struct qt_graphite_span {
    uint16_t off; /* into the template's text */
    uint16_t len;
};

/* One parsed template "[filter] pattern [k=v,...]". */
struct qt_graphite_template {
    char text[QT_GRAPHITE_TEMPLATE_MAX]; /* private copy; spans point here */
    uint32_t filter_count;               /* 0: matches every path */
    uint32_t parts_count;
    uint32_t tags_count;
    struct qt_graphite_span filter[QT_GRAPHITE_PARTS_MAX];
    struct qt_graphite_span part_name[QT_GRAPHITE_PARTS_MAX];
    uint8_t part_kind[QT_GRAPHITE_PARTS_MAX];
    uint8_t part_group[QT_GRAPHITE_PARTS_MAX]; /* QT_GP_TAG: first part of that name */
    struct qt_graphite_span tag_key[QT_TAGS_MAX];
    struct qt_graphite_span tag_value[QT_TAGS_MAX];
};

/* Templates, tried in the order they were added; the first whose filter
 * matches a path maps it, else the default mapping applies.  Caller-owned
 * (about 110 KiB at QT_GRAPHITE_TEMPLATES_MAX); immutable while parsing, so
 * one configuration can serve many threads. */
struct qt_graphite_config {
    uint32_t templates_count;
    struct qt_graphite_template templates[QT_GRAPHITE_TEMPLATES_MAX];
};

/* Empty configuration: every path uses the default mapping. */
void qt_graphite_config_init(struct qt_graphite_config *cfg);

/*
 * Add one template spec (spec[0 .. len), not NUL-terminated), InfluxDB
 * syntax subset:
 *   "pattern" | "filter pattern" | "pattern tags" | "filter pattern tags"
 * filter: dotted globs ('*' matches within one component), matching a path
 * that has at least as many components; pattern: dotted parts as in enum
 * qt_graphite_part_kind, a "*" part only last; tags: "k=v[,k=v...]" added
 * to every matching point unless the path or line already set that key.
 * QT_EINVAL with a reason for a bad spec, QT_ELIMIT when full.
 */
int qt_graphite_config_add(struct qt_graphite_config *cfg, const char *spec, size_t len);

/*
 * Parse one Graphite line (line[0 .. len), without its '\n'; a final '\r'
 * is ignored).  opts->now_ns supplies "now"; opts->precision is ignored
 * (Graphite timestamps are seconds).  Returns 0 with *pt filled (one
 * QT_ILP_FLOAT field), QT_ILP_SKIP for a blank line, a '#' comment or a NaN
 * value, or a negative QT_E* code with a reason.  cfg may be NULL (default
 * mapping only).
 */
int qt_graphite_parse_line(const struct qt_graphite_config *cfg, const struct qt_ilp_opts *opts,
                           const uint8_t *line, size_t len, char *scratch, size_t scratch_cap,
                           struct qt_ilp_point *pt);

/* Like qt_ilp_batch_init() but parsing Graphite lines with cfg (which must
 * outlive the batch; may be NULL). */
void qt_graphite_batch_init(struct qt_ilp_batch *b, const struct qt_graphite_config *cfg,
                            int64_t now_ns, struct qt_ilp_point *point, char *scratch,
                            size_t scratch_cap, qt_ilp_point_fn on_point, qt_ilp_error_fn on_error,
                            void *ctx);

#endif
