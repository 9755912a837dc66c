/*
 * srvconf.c -- `qtdb serve` settings (srvconf.h).
 *
 * One table (ORDER SETTINGS) lists every key with its kind, its field in
 * struct qt_srv_config, its bounds and its help text; flags, the INI file
 * and --help all read it, so a setting cannot exist in one and not the
 * others.  Invariant: after qt_srv_config_init() and any sequence of
 * successful qt_srv_config_set() calls every field is within its bounds.
 */
#include "server/srvconf.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "storage/retention.h"
#include "storage/rollup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum set_kind {
    K_PATH,     /* char[PATH_MAX] */
    K_ADDR,     /* struct qt_srv_addr */
    K_FSYNC,    /* policy + interval */
    K_IO,       /* enum qt_io_kind */
    K_U32,      /* uint32_t decimal */
    K_U64,      /* uint64_t decimal */
    K_BYTES32,  /* uint32_t with size suffixes */
    K_BYTES64,  /* uint64_t with size suffixes */
    K_MS,       /* uint32_t milliseconds from a duration (bare number: seconds) */
    K_MS_BARE,  /* uint32_t milliseconds from a duration (bare number: ms) */
    K_LOGLEVEL, /* enum qt_log_level */
    K_TEMPLATE, /* one more Graphite template */
    K_ROLLUPS,  /* rollup rules (storage/rollup.h), kept as text */
    K_RETAIN,   /* retention rules (storage/retention.h), kept as text */
};

struct setting {
    const char *key;
    enum set_kind kind;
    size_t off;
    uint64_t min, max;
    const char *arg;  /* metavariable for --help */
    const char *help; /* one line; the default is printed after it */
};

#define F(field) offsetof(struct qt_srv_config, field)

/* ORDER SETTINGS: design/server.md "Settings" lists the same keys. */
static const struct setting settings[] = {
    {"data", K_PATH, F(data_dir), 0, 0, "DIR", "data directory"},
    {"ilp", K_ADDR, F(ilp), 0, 0, "ADDR:PORT", "line protocol over TCP (off to disable)"},
    {"http", K_ADDR, F(http), 0, 0, "ADDR:PORT", "HTTP API (off to disable)"},
    {"graphite", K_ADDR, F(graphite), 0, 0, "ADDR:PORT", "Graphite plaintext over TCP"},
    {"graphite-template", K_TEMPLATE, 0, 0, 0, "SPEC",
     "Graphite mapping template (repeatable), e.g. 'sensors.* .district.measurement.field'"},
    {"fsync", K_FSYNC, 0, 0, 0, "POLICY", "always | interval:MS | none"},
    {"io", K_IO, F(io), 0, 0, "KIND", "auto | uring | posix (storage and network)"},
    {"threads", K_U32, F(threads), 0, QT_SRV_THREADS_CEIL, "N",
     "ingest event-loop threads (0 = one per core)"},
    {"mem-budget", K_BYTES64, F(mem_budget_bytes), 1u << 20, 1ull << 40, "BYTES",
     "memtable budget before flush and backpressure"},
    {"series-max", K_U32, F(series_max), 0, QT_CATALOG_SERIES_MAX, "N",
     "most series (0 = catalog limit)"},
    {"max-connections", K_U32, F(conn_max), 1, QT_SRV_CONN_MAX_CEIL, "N",
     "TCP ingest connections (line protocol + Graphite)"},
    {"http-max-connections", K_U32, F(http_conn_max), 1, QT_SRV_HTTP_CONN_CEIL, "N",
     "HTTP connections"},
    {"http-max-per-ip", K_U32, F(http_per_ip_max), 1, QT_SRV_HTTP_CONN_CEIL, "N",
     "HTTP connections from one client address"},
    {"idle-timeout", K_MS, F(idle_timeout_ms), 100, QT_SRV_TIMEOUT_CEIL_MS, "DURATION",
     "close connections silent this long"},
    {"slow-timeout", K_MS, F(slow_timeout_ms), 100, QT_SRV_TIMEOUT_CEIL_MS, "DURATION",
     "close TCP clients that leave a line unfinished this long"},
    {"line-max", K_BYTES32, F(line_max), 64, QT_LINE_MAX, "BYTES",
     "longest line (line protocol, Graphite)"},
    {"body-max", K_BYTES64, F(body_max_bytes), 1024, QT_SRV_BODY_MAX_CEIL, "BYTES",
     "largest /write body (also after gunzip)"},
    {"batch-lines", K_U32, F(batch_lines), 1, QT_SRV_BATCH_LINES_CEIL, "N",
     "lines per storage write from one ingest thread"},
    {"query-deadline", K_MS_BARE, F(query_deadline_ms), 1, QT_SRV_TIMEOUT_CEIL_MS, "DURATION",
     "query time limit (bare number: ms)"},
    {"query-rows-max", K_U64, F(query_rows_max), 1, UINT64_MAX, "N", "rows one query returns"},
    {"query-series-max", K_U32, F(query_series_max), 1, UINT32_MAX, "N", "series one query reads"},
    {"query-mem-max", K_BYTES64, F(query_mem_max_bytes), 1u << 20, 1ull << 40, "BYTES",
     "memory one query may use"},
    {"log-level", K_LOGLEVEL, F(log_level), 0, 0, "LEVEL", "debug | info | warn | error"},
    {"rollups", K_ROLLUPS, 0, 0, 0, "SPEC",
     "rollup rules, e.g. 'air=1m,1h;grid*=1h' (none by default)"},
    {"retention", K_RETAIN, 0, 0, 0, "SPEC",
     "retention rules, e.g. 'air=90d,air:1h=3650d,*=400d' (no rule: kept forever)"},
};

#undef F

void
qt_srv_config_init(struct qt_srv_config *c)
{
    qt_assert(c != NULL);
    memset(c, 0, sizeof(*c));
    snprintf(c->data_dir, sizeof(c->data_dir), "./data");
    char e[8];
    int rc = qt_srv_addr_parse("127.0.0.1:8089", &c->ilp, e, sizeof(e));
    rc |= qt_srv_addr_parse("127.0.0.1:8086", &c->http, e, sizeof(e));
    rc |= qt_srv_addr_parse("off", &c->graphite, e, sizeof(e));
    qt_assert(rc == 0);
    c->fsync = QT_FSYNC_ALWAYS;
    c->io = QT_IO_AUTO;
    c->mem_budget_bytes = QT_MEM_BUDGET_DEFAULT;
    c->conn_max = QT_SRV_CONN_MAX_DEFAULT;
    c->http_conn_max = QT_SRV_HTTP_CONN_DEFAULT;
    c->http_per_ip_max = QT_SRV_HTTP_PER_IP_DEFAULT;
    c->idle_timeout_ms = QT_SRV_IDLE_TIMEOUT_DEFAULT_MS;
    c->slow_timeout_ms = QT_SRV_SLOW_TIMEOUT_DEFAULT_MS;
    c->line_max = QT_LINE_MAX;
    c->body_max_bytes = QT_SRV_BODY_MAX_DEFAULT;
    c->batch_lines = QT_SRV_BATCH_LINES_DEFAULT;
    c->query_deadline_ms = QT_SRV_QUERY_DEADLINE_DEFAULT_MS;
    c->query_rows_max = QT_SRV_QUERY_ROWS_DEFAULT;
    c->query_series_max = QT_SRV_QUERY_SERIES_DEFAULT;
    c->query_mem_max_bytes = QT_SRV_QUERY_MEM_DEFAULT;
    c->log_level = QT_LOG_INFO;
}

void
qt_srv_config_deinit(struct qt_srv_config *c)
{
    if (c == NULL)
        return;
    qt_free(c->graphite_cfg);
    c->graphite_cfg = NULL;
    qt_free(c->rollups);
    c->rollups = NULL;
    qt_free(c->retention);
    c->retention = NULL;
}

static int __attribute__((format(printf, 3, 4))) fail(char *err, size_t cap, const char *fmt, ...)
{
    if (cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return QT_EINVAL;
}

/* ---- value parsers --------------------------------------------------------- */

int
qt_srv_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    qt_assert(s != NULL && out != NULL);
    if (*s < '0' || *s > '9')
        return QT_EINVAL;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return QT_ELIMIT;
        v = v * 10 + d;
    }
    if (*s != '\0')
        return QT_EINVAL;
    if (v < min || v > max)
        return QT_ELIMIT;
    *out = v;
    return 0;
}

/* Split "123suffix" into the number and the suffix. */
static int
split_number(const char *s, uint64_t *v, const char **suffix)
{
    char num[24];
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9' && n < sizeof(num) - 1) {
        num[n] = s[n];
        n++;
    }
    if (n == 0 || (s[n] >= '0' && s[n] <= '9'))
        return QT_EINVAL;
    num[n] = '\0';
    *suffix = s + n;
    return qt_srv_parse_u64(num, 0, UINT64_MAX, v);
}

static int
scale(uint64_t v, uint64_t mul, uint64_t *out)
{
    if (mul != 0 && v > UINT64_MAX / mul)
        return QT_ELIMIT;
    *out = v * mul;
    return 0;
}

int
qt_srv_parse_bytes(const char *s, uint64_t *out)
{
    qt_assert(s != NULL && out != NULL);
    uint64_t v;
    const char *suf;
    int rc = split_number(s, &v, &suf);
    if (rc != 0)
        return rc;
    static const struct {
        const char *name;
        uint64_t mul;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"K", 1ull << 10},
                 {"KiB", 1ull << 10},
                 {"k", 1ull << 10},
                 {"M", 1ull << 20},
                 {"MiB", 1ull << 20},
                 {"G", 1ull << 30},
                 {"GiB", 1ull << 30},
                 {"T", 1ull << 40},
                 {"TiB", 1ull << 40}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(suf, units[i].name) == 0)
            return scale(v, units[i].mul, out);
    return QT_EINVAL;
}

int
qt_srv_parse_duration_ms(const char *s, uint64_t unit_ms, uint64_t *out)
{
    qt_assert(s != NULL && out != NULL);
    qt_assert(unit_ms >= 1);
    uint64_t v;
    const char *suf;
    int rc = split_number(s, &v, &suf);
    if (rc != 0)
        return rc;
    if (*suf == '\0')
        return scale(v, unit_ms, out);
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(suf, units[i].name) == 0)
            return scale(v, units[i].ms, out);
    return QT_EINVAL;
}

/* Split "host:port" / "[v6]:port" into host (may be empty) and port. */
static int
addr_split(const char *s, char *host, size_t hcap, const char **port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return QT_EINVAL;
        size_t n = (size_t)(close - s - 1);
        if (n == 0 || n >= hcap)
            return QT_EINVAL;
        memcpy(host, s + 1, n);
        host[n] = '\0';
        *port = close + 2;
        return 0;
    }
    colon = strrchr(s, ':');
    if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
        return QT_EINVAL; /* no port, or an IPv6 literal without brackets */
    size_t n = (size_t)(colon - s);
    if (n >= hcap)
        return QT_EINVAL;
    memcpy(host, s, n);
    host[n] = '\0';
    *port = colon + 1;
    return 0;
}

int
qt_srv_addr_parse(const char *s, struct qt_srv_addr *a, char *err, size_t errcap)
{
    qt_assert(s != NULL && a != NULL);
    memset(a, 0, sizeof(*a));
    snprintf(a->text, sizeof(a->text), "%s", s);
    if (strcmp(s, "off") == 0 || s[0] == '\0')
        return 0;
    char host[128];
    const char *port;
    uint64_t pv;
    if (strlen(s) >= sizeof(a->text) || addr_split(s, host, sizeof(host), &port) != 0)
        return fail(err, errcap, "expected HOST:PORT, [IPv6]:PORT, :PORT or off, got '%s'", s);
    if (qt_srv_parse_u64(port, 0, 65535, &pv) != 0)
        return fail(err, errcap, "bad port in '%s' (0..65535)", s);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int grc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (grc != 0 || res == NULL)
        return fail(err, errcap, "cannot resolve '%s': %s", host, gai_strerror(grc));
    /* ":PORT" on AI_PASSIVE yields 0.0.0.0 first on most systems: any IPv4. */
    qt_assert(res->ai_addrlen <= sizeof(a->ss));
    memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
    a->ss_len = res->ai_addrlen;
    a->enabled = true;
    freeaddrinfo(res);
    return 0;
}

void
qt_srv_addr_format(const struct sockaddr *sa, char *out, size_t cap)
{
    qt_assert(sa != NULL && out != NULL);
    char h[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, h, sizeof(h));
        snprintf(out, cap, "%s:%u", h, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof(h));
        snprintf(out, cap, "[%s]:%u", h, (unsigned)ntohs(in6->sin6_port));
    } else {
        snprintf(out, cap, "unix");
    }
}

/* ---- setting one key ------------------------------------------------------- */

static const struct setting *
find_setting(const char *key)
{
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

static int
set_template(struct qt_srv_config *c, const char *value, char *err, size_t errcap)
{
    if (c->graphite_cfg == NULL) {
        c->graphite_cfg = qt_malloc(sizeof(*c->graphite_cfg));
        if (c->graphite_cfg == NULL)
            return fail(err, errcap, "graphite-template: out of memory");
        qt_graphite_config_init(c->graphite_cfg);
    }
    int rc = qt_graphite_config_add(c->graphite_cfg, value, strlen(value));
    if (rc != 0)
        return fail(err, errcap, "graphite-template: %s", qt_err_detail());
    return 0;
}

/* Check the rules with the storage parser (on a copy: it cuts the text)
 * and keep the text; "" (or only ';') clears them. */
static int
set_rollups(struct qt_srv_config *c, const char *value, char *err, size_t errcap)
{
    size_t len = strlen(value);
    char *buf = qt_strndup(value, len);
    struct qt_rollup_rule *rules = qt_calloc(QT_ROLLUP_RULES_MAX, sizeof(*rules));
    uint32_t n = 0;
    int rc = buf == NULL || rules == NULL ? QT_ENOMEM
                                          : qt_rollup_parse(buf, rules, QT_ROLLUP_RULES_MAX, &n);
    qt_free(rules);
    qt_free(buf);
    if (rc == QT_ENOMEM)
        return fail(err, errcap, "rollups: out of memory");
    if (rc != 0) {
        const char *why = qt_err_detail();
        if (strncmp(why, "rollup: ", 8) == 0)
            why += 8;
        return fail(err, errcap, "rollups: %s in '%s' (expected rules like air=1m,1h;grid*=1h)",
                    why, value);
    }
    char *text = n > 0 ? qt_strndup(value, len) : NULL;
    if (n > 0 && text == NULL)
        return fail(err, errcap, "rollups: out of memory");
    qt_free(c->rollups);
    c->rollups = text;
    return 0;
}

int
qt_srv_retention_parse(const char *spec, struct qt_srv_retention *out)
{
    qt_assert(spec != NULL && out != NULL);
    memset(out, 0, sizeof(*out));
    out->buf = qt_strndup(spec, strlen(spec));
    out->rules = qt_calloc(QT_RETENTION_RULES_MAX, sizeof(*out->rules));
    int rc = out->buf == NULL || out->rules == NULL
                 ? qt_fail(QT_ENOMEM, "retention: out of memory")
                 : qt_retention_parse(out->buf, out->rules, QT_RETENTION_RULES_MAX, &out->n);
    /* what qt_db_set_retention would refuse at open, said now */
    for (uint32_t i = 0; rc == 0 && i < out->n; i++) {
        const struct qt_retention_rule *r = &out->rules[i];
        if (strlen(r->measurement) >= QT_SERIES_KEY_MAX)
            rc = qt_fail(QT_EINVAL, "retention: measurement name too long");
        for (uint32_t j = 0; rc == 0 && j < i; j++)
            if (out->rules[j].prefix == r->prefix &&
                strcmp(out->rules[j].measurement, r->measurement) == 0)
                rc = qt_fail(QT_EINVAL, "retention: the same measurement twice");
    }
    if (rc != 0)
        qt_srv_retention_free(out);
    return rc;
}

void
qt_srv_retention_free(struct qt_srv_retention *r)
{
    if (r == NULL)
        return;
    qt_free(r->rules);
    qt_free(r->buf);
    memset(r, 0, sizeof(*r));
}

/* Check the rules as the server will parse them at start and keep the
 * text; "" (or only ',') clears them. */
static int
set_retention(struct qt_srv_config *c, const char *value, char *err, size_t errcap)
{
    struct qt_srv_retention r;
    int rc = qt_srv_retention_parse(value, &r);
    uint32_t n = r.n;
    qt_srv_retention_free(&r);
    if (rc == QT_ENOMEM)
        return fail(err, errcap, "retention: out of memory");
    if (rc != 0) {
        const char *why = qt_err_detail();
        if (strncmp(why, "retention: ", 11) == 0)
            why += 11;
        return fail(err, errcap,
                    "retention: %s in '%s' (expected rules like air=90d,air:1h=3650d,*=400d)", why,
                    value);
    }
    char *text = n > 0 ? qt_strndup(value, strlen(value)) : NULL;
    if (n > 0 && text == NULL)
        return fail(err, errcap, "retention: out of memory");
    qt_free(c->retention);
    c->retention = text;
    return 0;
}

static int
set_number(const struct setting *s, void *field, const char *value, char *err, size_t errcap)
{
    uint64_t v = 0;
    int rc;
    const char *want;
    switch (s->kind) {
    case K_U32:
    case K_U64:
        rc = qt_srv_parse_u64(value, 0, UINT64_MAX, &v);
        want = "a decimal number";
        break;
    case K_BYTES32:
    case K_BYTES64:
        rc = qt_srv_parse_bytes(value, &v);
        want = "a size like 4096, 64K, 256M or 1G";
        break;
    case K_MS: rc = qt_srv_parse_duration_ms(value, 1000, &v), want = "a duration like 30s"; break;
    default:
        qt_assert(s->kind == K_MS_BARE);
        rc = qt_srv_parse_duration_ms(value, 1, &v);
        want = "a duration like 500ms or 30s";
    }
    if (rc == QT_EINVAL)
        return fail(err, errcap, "%s: expected %s, got '%s'", s->key, want, value);
    if (rc != 0 || v < s->min || v > s->max)
        return fail(err, errcap, "%s: %s out of range %llu..%llu", s->key, value,
                    (unsigned long long)s->min, (unsigned long long)s->max);
    if (s->kind == K_U64 || s->kind == K_BYTES64)
        *(uint64_t *)field = v;
    else
        *(uint32_t *)field = (uint32_t)v;
    return 0;
}

static int
set_loglevel(enum qt_log_level *out, const char *value, char *err, size_t errcap)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(value, names[i]) == 0) {
            *out = (enum qt_log_level)i;
            return 0;
        }
    }
    return fail(err, errcap, "log-level: expected debug, info, warn or error, got '%s'", value);
}

int
qt_srv_config_set(struct qt_srv_config *c, const char *key, const char *value, char *err,
                  size_t errcap)
{
    qt_assert(c != NULL && key != NULL && value != NULL);
    const struct setting *s = find_setting(key);
    if (s == NULL)
        return fail(err, errcap, "unknown setting '%s'", key);
    void *field = (char *)c + s->off;
    char e[160];
    switch (s->kind) {
    case K_PATH:
        if (value[0] == '\0' || strlen(value) >= PATH_MAX)
            return fail(err, errcap, "%s: path empty or too long", key);
        snprintf(c->data_dir, sizeof(c->data_dir), "%s", value);
        return 0;
    case K_ADDR:
        if (qt_srv_addr_parse(value, field, e, sizeof(e)) != 0)
            return fail(err, errcap, "%s: %s", key, e);
        return 0;
    case K_FSYNC:
        if (qt_fsync_policy_parse(value, &c->fsync, &c->fsync_interval_ms) != 0)
            return fail(err, errcap,
                        "fsync: expected always, interval:MS (1..%u) or none, got '%s'",
                        QT_FSYNC_INTERVAL_MAX_MS, value);
        return 0;
    case K_IO:
        if (qt_io_kind_parse(value, &c->io) != 0)
            return fail(err, errcap, "io: expected auto, uring or posix, got '%s'", value);
        return 0;
    case K_LOGLEVEL: return set_loglevel(&c->log_level, value, err, errcap);
    case K_TEMPLATE: return set_template(c, value, err, errcap);
    case K_ROLLUPS: return set_rollups(c, value, err, errcap);
    case K_RETAIN: return set_retention(c, value, err, errcap);
    default: return set_number(s, field, value, err, errcap);
    }
}

/* ---- INI file ---------------------------------------------------------------- */

struct ini_ctx {
    struct qt_srv_config *c;
    char *err;
    size_t errcap;
    bool failed;
};

static int
conf_ini_line(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *x = user;
    if (x->failed)
        return 0;
    if (section[0] != '\0' && strcmp(section, "serve") != 0) {
        fail(x->err, x->errcap, "unknown section [%s] (settings go at the top or in [serve])",
             section);
        x->failed = true;
        return 0;
    }
    if (strcmp(name, "config") == 0) {
        fail(x->err, x->errcap, "a config file cannot name another config file");
        x->failed = true;
        return 0;
    }
    if (qt_srv_config_set(x->c, name, value, x->err, x->errcap) != 0) {
        x->failed = true;
        return 0;
    }
    return 1;
}

int
qt_srv_config_load(struct qt_srv_config *c, const char *path, char *err, size_t errcap)
{
    qt_assert(c != NULL && path != NULL);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int e = errno;
        fail(err, errcap, "%s: %s", path, strerror(e));
        return -e;
    }
    char msg[256] = "";
    struct ini_ctx x = {.c = c, .err = msg, .errcap = sizeof(msg)};
    int line = ini_parse_file(f, conf_ini_line, &x);
    fclose(f);
    if (line == 0)
        return 0;
    if (line < 0)
        return fail(err, errcap, "%s: cannot read", path);
    return fail(err, errcap, "%s:%d: %s", path, line, msg[0] ? msg : "syntax error");
}

/* ---- command line -------------------------------------------------------------- */

/* argv[*i] is "--key" or "--key=value": the key in key[], the value. */
static int
flag_value(int argc, char **argv, int *i, char *key, size_t kcap, const char **value)
{
    const char *a = argv[*i] + 2;
    const char *eq = strchr(a, '=');
    size_t n = eq != NULL ? (size_t)(eq - a) : strlen(a);
    if (n == 0 || n >= kcap)
        return QT_EINVAL;
    memcpy(key, a, n);
    key[n] = '\0';
    if (eq != NULL) {
        *value = eq + 1;
        return 0;
    }
    if (*i + 1 >= argc)
        return QT_ETRUNC;
    *value = argv[++*i];
    return 0;
}

int
qt_srv_config_args(struct qt_srv_config *c, int argc, char **argv, char *err, size_t errcap)
{
    qt_assert(c != NULL && argv != NULL);
    for (int pass = 0; pass < 2; pass++) { /* pass 0: --config and --help only */
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
                return QT_SRV_ARGS_HELP;
            if (strncmp(argv[i], "--", 2) != 0)
                return fail(err, errcap, "unexpected argument '%s'", argv[i]);
            char key[64];
            const char *value;
            int rc = flag_value(argc, argv, &i, key, sizeof(key), &value);
            if (rc == QT_ETRUNC)
                return fail(err, errcap, "%s needs a value", argv[i]);
            if (rc != 0)
                return fail(err, errcap, "bad flag '%s'", argv[i]);
            bool is_config = strcmp(key, "config") == 0;
            if (pass == 0 && is_config) {
                rc = qt_srv_config_load(c, value, err, errcap);
                if (rc != 0)
                    return QT_EINVAL;
            } else if (pass == 1 && !is_config) {
                if (qt_srv_config_set(c, key, value, err, errcap) != 0)
                    return QT_EINVAL;
            }
        }
    }
    return 0;
}

void
qt_srv_config_usage(FILE *out)
{
    struct qt_srv_config d;
    qt_srv_config_init(&d);
    fprintf(out, "usage: qtdb serve [--config FILE] [--KEY VALUE ...]\n\n"
                 "Every flag can also be set in the INI file as 'KEY = VALUE' (at the top or in\n"
                 "[serve]); flags override the file.  Sizes take K/M/G suffixes; durations\n"
                 "take ms/s/m/h.\n\n");
    fprintf(out, "  --%-22s %s\n", "config FILE", "read settings from an INI file first");
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        const struct setting *s = &settings[i];
        char flag[64], def[64] = "";
        snprintf(flag, sizeof(flag), "%s %s", s->key, s->arg);
        const void *field = (const char *)&d + s->off;
        switch (s->kind) {
        case K_PATH: snprintf(def, sizeof(def), "%s", d.data_dir); break;
        case K_ADDR:
            snprintf(def, sizeof(def), "%s", ((const struct qt_srv_addr *)field)->text);
            break;
        case K_FSYNC: snprintf(def, sizeof(def), "always"); break;
        case K_IO: snprintf(def, sizeof(def), "auto"); break;
        case K_LOGLEVEL: snprintf(def, sizeof(def), "info"); break;
        case K_TEMPLATE:
        case K_ROLLUPS:
        case K_RETAIN: snprintf(def, sizeof(def), "none"); break;
        case K_U64:
        case K_BYTES64:
            snprintf(def, sizeof(def), "%llu", *(const unsigned long long *)field);
            break;
        case K_MS:
        case K_MS_BARE: snprintf(def, sizeof(def), "%ums", *(const uint32_t *)field); break;
        default: snprintf(def, sizeof(def), "%u", *(const uint32_t *)field);
        }
        fprintf(out, "  --%-22s %s (default %s)\n", flag, s->help, def);
    }
    fprintf(out, "\nSIGTERM or SIGINT: stop accepting, store what was received, sync, exit 0.\n");
    qt_srv_config_deinit(&d);
}
