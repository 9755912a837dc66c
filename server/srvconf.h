/*
 * srvconf.h -- `qtdb serve` settings: defaults, command-line flags and the
 * optional INI file (libinih), with one table of keys for both.
 *
 * Every setting has one name used as the flag (`--idle-timeout 60s`, or
 * `--idle-timeout=60s`) and as the INI key (`idle-timeout = 60s`, in no
 * section or in `[serve]`).  Precedence: built-in default < config file <
 * flag.  Values are validated when set; an error names the key and why.
 * The list of settings with their defaults is qt_srv_config_usage()
 * (`qtdb serve --help`) and design/server.md "Settings".
 */
#ifndef QT_SRVCONF_H
#define QT_SRVCONF_H

#include "format/qt_log.h"
#include "server/graphite.h"
#include "storage/io.h"
#include "storage/wallog.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

/* A listen address: "HOST:PORT" (IPv4 literal, [IPv6] literal or a name
 * resolved once at startup; ":PORT" means every interface), port 0 = an
 * ephemeral port, or "off". */
struct qt_srv_addr {
    bool enabled;
    struct sockaddr_storage ss;
    socklen_t ss_len;
    char text[128]; /* as given, for messages */
};

struct qt_retention_rule; /* storage/retention.h */

struct qt_srv_config {
    char data_dir[PATH_MAX];
    struct qt_srv_addr ilp, http, graphite;
    enum qt_fsync_policy fsync;
    uint32_t fsync_interval_ms;
    enum qt_io_kind io;
    uint32_t threads;          /* ingest loops; 0 = online cores */
    uint64_t mem_budget_bytes; /* engine memtable budget; 0 = engine default */
    uint32_t series_max;       /* 0 = catalog default */
    uint32_t conn_max;         /* TCP ingest connections (ILP + Graphite) */
    uint32_t http_conn_max;
    uint32_t http_per_ip_max;
    uint32_t idle_timeout_ms;
    uint32_t slow_timeout_ms;
    uint32_t line_max; /* <= QT_LINE_MAX */
    uint64_t body_max_bytes;
    uint32_t batch_lines;
    uint32_t query_deadline_ms;
    uint64_t query_rows_max;
    uint32_t query_series_max;
    uint64_t query_mem_max_bytes;
    enum qt_log_level log_level;
    /* Graphite templates, parsed (owned; NULL until the first template). */
    struct qt_graphite_config *graphite_cfg;
    /* Rollup rules as given ("air=1m,1h;grid*=1h", checked by
     * qt_rollup_parse when set; owned; NULL = none), for qt_db_opts.rollups. */
    char *rollups;
    /* Retention rules as given ("air=90d,air:1h=3650d,*=400d", checked by
     * qt_srv_retention_parse when set; owned; NULL = keep forever), parsed
     * again at start for qt_db_opts.retention. */
    char *retention;
};

/* Defaults (the values `qtdb serve --help` prints). */
void qt_srv_config_init(struct qt_srv_config *c);
/* Free what init/set allocated; c may be reused after another init. */
void qt_srv_config_deinit(struct qt_srv_config *c);

/*
 * Set one setting from text: key without "--" (e.g. "idle-timeout"), value
 * NUL-terminated.  Returns 0, or QT_EINVAL with a message in err[0..errcap)
 * ("idle-timeout: expected a duration like 30s, got 'x'").
 */
int qt_srv_config_set(struct qt_srv_config *c, const char *key, const char *value, char *err,
                      size_t errcap);

/* Apply an INI file.  QT_EINVAL with "FILE:LINE: message" in err, or
 * -errno if it cannot be read. */
int qt_srv_config_load(struct qt_srv_config *c, const char *path, char *err, size_t errcap);

/* Outcome of qt_srv_config_args besides errors. */
#define QT_SRV_ARGS_HELP 1 /* --help was given: print usage, exit 0 */

/*
 * Apply argv[1..argc) of `qtdb serve`: first the file named by --config (if
 * any), then every flag in order.  Returns 0, QT_SRV_ARGS_HELP, or
 * QT_EINVAL with a message in err (unknown flag, missing value, bad value).
 */
int qt_srv_config_args(struct qt_srv_config *c, int argc, char **argv, char *err, size_t errcap);

/* Print the flags with their defaults. */
void qt_srv_config_usage(FILE *out);

/* Retention rules parsed from text (storage/retention.h), owning what the
 * rules point into. */
struct qt_srv_retention {
    char *buf; /* the text, cut by qt_retention_parse: the rule names */
    struct qt_retention_rule *rules;
    uint32_t n;
};

/* Parse spec with qt_retention_parse and refuse also what
 * qt_db_set_retention would (a rule twice, a name too long).  0 (free
 * with qt_srv_retention_free), or an error with a reason in
 * qt_err_detail() and *out empty. */
int qt_srv_retention_parse(const char *spec, struct qt_srv_retention *out);
void qt_srv_retention_free(struct qt_srv_retention *r);

/* ---- value parsers (also used by the CLI) ------------------------------ */

/* "127.0.0.1:8089", "[::1]:0", ":8086", "localhost:8086" or "off". */
int qt_srv_addr_parse(const char *s, struct qt_srv_addr *a, char *err, size_t errcap);
/* Format a bound address as "HOST:PORT" ("[v6]:PORT" for IPv6). */
void qt_srv_addr_format(const struct sockaddr *sa, char *out, size_t cap);

/* "4096", "64K", "64KiB", "256M", "1G" (binary multiples): bytes. */
int qt_srv_parse_bytes(const char *s, uint64_t *out);
/* "250ms", "30s", "5m", "1h"; a bare number means `unit_ms` units. */
int qt_srv_parse_duration_ms(const char *s, uint64_t unit_ms, uint64_t *out);
/* Unsigned decimal in [min, max]. */
int qt_srv_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
