/*
 * rollup.c -- rule parsing and rollup computation (rollup.h, DESIGN.md 15
 * "Rollups").
 *
 * Invariants:
 *   - only shards that ended before `now` are rolled up, and intervals
 *     divide the shard duration, so every bucket lies inside one shard and
 *     sees all of that shard's data present at the time of the scan;
 *   - a bucket's summary is exact for integers (int64 arithmetic; a sum
 *     that overflows is left out of the point) and for count/min/max/first/
 *     last of floats; a float sum is a Neumaier-compensated sum in scan
 *     order (block statistics contributing their stored sum), as the query
 *     layer adds floats, rounded to one double per bucket.
 */
#include "storage/rollup.h"

#include "db_int.h"
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_bytes.h"
#include "format/qt_err.h"
#include "format/qt_hash.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "ops_int.h"
#include "storage/retention.h"
#include "storage/scan.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing ------------------------------------------------------------------ */

static int
ru_interval(const char *s, int64_t *out)
{
    qt_assert(s != NULL && out != NULL);
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] < '1' || s[0] > '9' || errno != 0 || end == s || v <= 0)
        return qt_fail(QT_ESYNTAX, "rollup: interval must be a positive integer and a unit");
    int64_t unit = 0;
    if (strcmp(end, "s") == 0)
        unit = 1000000000ll;
    else if (strcmp(end, "m") == 0)
        unit = 60ll * 1000000000ll;
    else if (strcmp(end, "h") == 0)
        unit = 3600ll * 1000000000ll;
    else if (strcmp(end, "d") == 0)
        unit = 86400ll * 1000000000ll;
    else
        return qt_fail(QT_ESYNTAX, "rollup: unit must be s, m, h or d");
    if (v > INT64_MAX / unit)
        return qt_fail(QT_ESYNTAX, "rollup: interval too long");
    *out = v * unit;
    return 0;
}

/* "1m,1h" into r's intervals. */
static int
ru_intervals(char *list, struct qt_rollup_rule *r)
{
    qt_assert(list != NULL && r != NULL);
    r->n_intervals = 0;
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (r->n_intervals == QT_ROLLUP_INTERVALS_MAX)
            return qt_fail(QT_ELIMIT, "rollup: at most 4 intervals per rule");
        int64_t ns = 0;
        int rc = ru_interval(tok, &ns);
        if (rc != 0)
            return rc;
        if (r->n_intervals > 0 && ns <= r->interval_ns[r->n_intervals - 1])
            return qt_fail(QT_ESYNTAX, "rollup: intervals must be ascending and distinct");
        if (strlen(tok) >= sizeof(r->interval_name[0]))
            return qt_fail(QT_ESYNTAX, "rollup: interval text too long");
        r->interval_ns[r->n_intervals] = ns;
        strcpy(r->interval_name[r->n_intervals], tok);
        r->n_intervals++;
    }
    if (r->n_intervals == 0)
        return qt_fail(QT_ESYNTAX, "rollup: a rule needs at least one interval");
    return 0;
}

int
qt_rollup_parse(char *buf, struct qt_rollup_rule *rules, uint32_t cap, uint32_t *n)
{
    qt_assert(buf != NULL && n != NULL);
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ";", &save); tok != NULL; tok = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL || eq == tok)
            return qt_fail(QT_ESYNTAX, "rollup: rule must be name=interval[,interval]");
        if (*n >= cap || *n >= QT_ROLLUP_RULES_MAX)
            return qt_fail(QT_ELIMIT, "rollup: too many rules");
        *eq = '\0';
        struct qt_rollup_rule *r = &rules[*n];
        memset(r, 0, sizeof(*r));
        size_t len = strlen(tok);
        r->prefix = tok[len - 1] == '*';
        if (r->prefix)
            tok[len - 1] = '\0';
        if (strchr(tok, '*') != NULL || strchr(tok, ':') != NULL)
            return qt_fail(QT_ESYNTAX, "rollup: '*' only at the end, no ':' in a name");
        r->measurement = tok;
        int rc = ru_intervals(eq + 1, r);
        if (rc != 0)
            return rc;
        for (uint32_t j = 0; j < *n; j++)
            if (rules[j].prefix == r->prefix && strcmp(rules[j].measurement, r->measurement) == 0)
                return qt_fail(QT_ESYNTAX, "rollup: repeated rule");
        (*n)++;
    }
    return 0;
}

/* The rule for measurement m[0..len): exact first, else longest prefix. */
static const struct qt_rollup_rule *
ru_match(const struct qt_rollup_rule *rules, uint32_t n, const char *m, size_t len)
{
    qt_assert(rules != NULL || n == 0);
    const struct qt_rollup_rule *best = NULL;
    size_t best_len = 0;
    if (memchr(m, ':', len) != NULL)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        size_t rl = strlen(rules[i].measurement);
        if (!rules[i].prefix && rl == len && memcmp(rules[i].measurement, m, len) == 0)
            return &rules[i];
        if (rules[i].prefix && rl <= len && memcmp(rules[i].measurement, m, rl) == 0 &&
            (best == NULL || rl > best_len)) {
            best = &rules[i];
            best_len = rl;
        }
    }
    return best;
}

/* ---- one bucket ---------------------------------------------------------------- */

struct ru_bucket {
    int64_t start;
    uint32_t count;
    bool sum_bad; /* int sum overflowed */
    union qt_stat sum, min, max, first, last;
    int64_t first_ts, last_ts;
    double fcomp, fspecial; /* floats: Neumaier compensation, non-finite addends */
    bool special;
};

/* Neumaier's compensated addition into b->sum.f, as the query layer sums
 * (query/agg.c): non-finite addends and overflow are kept apart. */
static void
ru_fsum_add(struct ru_bucket *b, double x)
{
    qt_assert(b != NULL);
    double t = b->sum.f + x;
    if (!isfinite(t)) {
        b->fspecial += x;
        b->special = true;
        return;
    }
    if (fabs(b->sum.f) >= fabs(x))
        b->fcomp += (b->sum.f - t) + x;
    else
        b->fcomp += (x - t) + b->sum.f;
    b->sum.f = t;
}

/* The bucket's float total. */
static double
ru_fsum_total(const struct ru_bucket *b)
{
    double t = b->sum.f + b->fcomp;
    return b->special ? t + b->fspecial : t;
}

static bool
ru_less(enum qt_vtype vt, union qt_stat a, union qt_stat b)
{
    return vt == QT_VT_FLOAT ? a.f < b.f : a.i < b.i;
}

/* Add a summary (n values, their stats, first at t_first, last at t_last). */
static void
ru_add(struct ru_bucket *b, enum qt_vtype vt, const struct qt_stats *s, int64_t t_first,
       int64_t t_last)
{
    qt_assert(b != NULL && s != NULL && s->count > 0);
    bool nan_mm = vt == QT_VT_FLOAT && (isnan(s->min.f) || isnan(s->max.f));
    if (b->count == 0) {
        b->sum.i = 0;
        if (vt == QT_VT_FLOAT)
            ru_fsum_add(b, s->sum.f);
        else
            b->sum = s->sum;
        b->sum_bad = s->sum_overflow;
        b->min = s->min;
        b->max = s->max;
        b->first = s->first;
        b->first_ts = t_first;
    } else {
        if (vt == QT_VT_FLOAT)
            ru_fsum_add(b, s->sum.f);
        else if (s->sum_overflow || __builtin_add_overflow(b->sum.i, s->sum.i, &b->sum.i))
            b->sum_bad = true;
        bool fl = vt == QT_VT_FLOAT;
        if (!nan_mm && ((fl && isnan(b->min.f)) || ru_less(vt, s->min, b->min)))
            b->min = s->min;
        if (!nan_mm && ((fl && isnan(b->max.f)) || ru_less(vt, b->max, s->max)))
            b->max = s->max;
    }
    b->count += s->count;
    b->last = s->last;
    b->last_ts = t_last;
}

/* ---- one series, one shard, one interval ---------------------------------------- */

#define RU_NF         8   /* rollup fields per source field */
#define RU_BATCH_LINE 256 /* bucket lines per qt_db_write (one WAL record) */

/* Suffixes of the rollup fields, in line order. */
static const char *const ru_sfx[RU_NF] = {".count", ".sum",  ".min",      ".max",
                                          ".first", ".last", ".first_ts", ".last_ts"};

/* One (series, interval): its rollup key, field names and a batch of
 * bucket lines written together (keys and names are shared, so the batch
 * only holds values). */
struct ru_series {
    struct qt_db *db;
    const char *key; /* rollup group key "<meas>:<iv><,tags>" */
    uint32_t key_len;
    enum qt_vtype vt;
    int64_t floor; /* buckets starting earlier are not written (qt_db_rollup_floor) */
    struct qt_rollup_result *res;
    char names[RU_NF][QT_SERIES_KEY_MAX + 12];
    uint32_t name_len[RU_NF];
    struct qt_batch_line lines[RU_BATCH_LINE];
    struct qt_batch_field fields[RU_BATCH_LINE][RU_NF];
    uint32_t n;
};

/* Field names "<field><suffix>" of source field f[0..len). */
static int
ru_series_names(struct ru_series *rs, const char *f, uint32_t len)
{
    if (len + 10 > QT_SERIES_KEY_MAX)
        return qt_fail(QT_ELIMIT, "rollup: field name too long for its rollup fields");
    for (uint32_t i = 0; i < RU_NF; i++) {
        size_t sl = strlen(ru_sfx[i]);
        memcpy(rs->names[i], f, len);
        memcpy(rs->names[i] + len, ru_sfx[i], sl);
        rs->name_len[i] = len + (uint32_t)sl;
    }
    return 0;
}

/* Write the batched lines. */
static int
ru_write(struct ru_series *rs)
{
    if (rs->n == 0)
        return 0;
    struct qt_write_result wr = {0};
    int rc = qt_db_write(rs->db, rs->lines, rs->n, NULL, NULL, &wr);
    if (rc == 0 && wr.lines_ok != rs->n)
        rc = qt_fail(QT_EINVAL, "rollup: a rollup line was rejected (type conflict?)");
    if (rc == 0)
        rs->res->buckets += rs->n;
    rs->n = 0;
    return rc;
}

/* Add bucket b as one line (written when the batch is full). */
static int
ru_emit(struct ru_series *rs, const struct ru_bucket *b)
{
    qt_assert(rs != NULL && b->count > 0);
    if (b->start < rs->floor)
        return 0; /* raw points may be trimmed already, or the point would be */
    union qt_stat sum = b->sum, fts = {.i = b->first_ts}, lts = {.i = b->last_ts};
    if (rs->vt == QT_VT_FLOAT)
        sum.f = ru_fsum_total(b);
    const union qt_stat *v[RU_NF] = {NULL, &sum, &b->min, &b->max, &b->first, &b->last, &fts, &lts};
    struct qt_batch_field *f = rs->fields[rs->n];
    uint32_t nf = 0;
    for (uint32_t i = 0; i < RU_NF; i++) {
        if (i == 1 && b->sum_bad)
            continue; /* an int sum that overflowed is left out */
        bool is_int = i == 0 || i >= 6;
        f[nf] = (struct qt_batch_field){.name = rs->names[i],
                                        .name_len = rs->name_len[i],
                                        .vtype = is_int ? QT_VT_INT : rs->vt};
        if (i == 0)
            f[nf].v.i = b->count;
        else if (!is_int && rs->vt == QT_VT_FLOAT)
            f[nf].v.f = v[i]->f;
        else
            f[nf].v.i = v[i]->i;
        nf++;
    }
    rs->lines[rs->n++] = (struct qt_batch_line){
        .key = rs->key, .key_len = rs->key_len, .ts = b->start, .n_fields = nf, .fields = f};
    return rs->n == RU_BATCH_LINE ? ru_write(rs) : 0;
}

/* Feed a chunk's points one by one into the bucket sequence. */
static int
ru_points(struct ru_series *rs, const struct qt_chunk *c, int64_t iv, struct ru_bucket *b)
{
    qt_assert(c->kind == QT_CHUNK_POINTS);
    for (uint32_t i = 0; i < c->n; i++) {
        int64_t start = c->ts[i] - (((c->ts[i] % iv) + iv) % iv);
        if (b->count > 0 && start != b->start) {
            int rc = ru_emit(rs, b);
            if (rc != 0)
                return rc;
            memset(b, 0, sizeof(*b));
        }
        b->start = start;
        struct qt_stats s = {.count = 1};
        if (rs->vt == QT_VT_FLOAT)
            s.sum.f = s.min.f = s.max.f = s.first.f = s.last.f = c->vals[i].f;
        else
            s.sum.i = s.min.i = s.max.i = s.first.i = s.last.i = c->vals[i].i;
        ru_add(b, rs->vt, &s, c->ts[i], c->ts[i]);
    }
    return 0;
}

static int
ru_scan(struct ru_series *rs, uint32_t sid, int64_t t0, int64_t t1, int64_t iv)
{
    struct qt_scan_opts so = {.t0 = t0, .t1 = t1, .allow_stats = true};
    struct qt_scan *sc = NULL;
    int rc = qt_scan_open(rs->db, sid, &so, &sc);
    if (rc != 0)
        return rc;
    struct ru_bucket b;
    memset(&b, 0, sizeof(b));
    struct qt_chunk c;
    while (rc == 0 && (rc = qt_scan_next(sc, &c)) == 1) {
        rc = 0;
        int64_t s0 = c.ts_min - (((c.ts_min % iv) + iv) % iv);
        if (c.kind == QT_CHUNK_STATS && c.ts_max - s0 < iv) {
            if (b.count > 0 && b.start != s0) {
                rc = ru_emit(rs, &b);
                memset(&b, 0, sizeof(b));
            }
            b.start = s0;
            ru_add(&b, rs->vt, &c.stats, c.ts_min, c.ts_max);
            continue;
        }
        if (c.kind == QT_CHUNK_STATS)
            rc = qt_scan_expand(sc, &c);
        if (rc == 0)
            rc = ru_points(rs, &c, iv, &b);
    }
    if (rc == 0 && b.count > 0)
        rc = ru_emit(rs, &b);
    qt_scan_close(sc);
    return rc;
}

static char *
ru_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = qt_malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

/* ---- state: the rules and what each shard's rollup was computed from ---------- */

/* The ROLLUPS file (DESIGN.md 15 "Rollups"): all little-endian,
 *   0 u32 magic "QTRU"   4 u32 version   8 u64 rules hash   16 u32 n   20 u32 0
 *   24 n x (i64 shard start, u64 identity)   then the XXH3-64 of every byte
 *   before it, canonical (8 bytes). */
#define RU_FILE    "ROLLUPS"
#define RU_MAGIC   0x55525451u
#define RU_VERSION 1u
#define RU_HDR     24u
#define RU_REC     16u

struct db_rollup {
    pthread_mutex_t mu;         /* everything below */
    pthread_mutex_t run_mu;     /* one qt_db_rollup at a time */
    pthread_mutex_t persist_mu; /* one writer of ROLLUPS(.tmp) at a time */
    char *spec;                 /* the rules as given; NULL: none */
    char *buf;                  /* parse buffer the rules' names point into */
    struct qt_rollup_rule *rules;
    uint32_t nrules;
    uint64_t rules_hash; /* ru_rules_hash(rules); 0 when none */
    struct qt_rollup_record *rec;
    uint32_t n, cap;
};

void
db_rollup_free(struct db_rollup *r)
{
    if (r == NULL)
        return;
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->run_mu);
    pthread_mutex_destroy(&r->persist_mu);
    qt_free(r->spec);
    qt_free(r->buf);
    qt_free(r->rules);
    qt_free(r->rec);
    qt_free(r);
}

/* Never 0 (0 marks "unknown" in a segment's memo). */
static uint64_t
ru_rules_hash(const struct qt_rollup_rule *rules, uint32_t n)
{
    uint64_t h = n;
    for (uint32_t i = 0; i < n; i++) {
        const struct qt_rollup_rule *r = &rules[i];
        h = qt_hash64_seed(r->measurement, strlen(r->measurement), h);
        int64_t w[2] = {r->prefix, r->n_intervals};
        h = qt_hash64_seed(w, sizeof(w), h);
        h = qt_hash64_seed(r->interval_ns, r->n_intervals * sizeof(int64_t), h);
    }
    return h | 1;
}

/* A private copy of spec parsed into *rules (names in *buf). */
static int
ru_parse_copy(const char *spec, char **buf, struct qt_rollup_rule **rules, uint32_t *n)
{
    *n = 0;
    *buf = ru_strdup(spec != NULL ? spec : "");
    *rules = qt_calloc(QT_ROLLUP_RULES_MAX, sizeof(**rules));
    if (*buf == NULL || *rules == NULL)
        return QT_ENOMEM;
    return qt_rollup_parse(*buf, *rules, QT_ROLLUP_RULES_MAX, n);
}

int
qt_rollup_file_decode(const uint8_t *p, size_t len, uint64_t *rules_hash,
                      struct qt_rollup_record **out, uint32_t *n)
{
    qt_assert(p != NULL || len == 0);
    *out = NULL;
    *n = 0;
    if (len < RU_HDR + 8)
        return qt_fail(QT_ECORRUPT, "ROLLUPS: shorter than its header");
    if (qt_load_le32(p) != RU_MAGIC)
        return qt_fail(QT_ECORRUPT, "ROLLUPS: bad magic");
    if (qt_load_le32(p + 4) != RU_VERSION)
        return qt_fail(QT_ECORRUPT, "ROLLUPS: unknown version");
    uint32_t cnt = qt_load_le32(p + 16);
    if (qt_load_le32(p + 20) != 0 || (len - RU_HDR - 8) / RU_REC != cnt ||
        (len - RU_HDR - 8) % RU_REC != 0)
        return qt_fail(QT_ECORRUPT, "ROLLUPS: length does not match its record count");
    if (!qt_hash_check(p, len - 8, p + len - 8))
        return qt_fail(QT_ECHECKSUM, "ROLLUPS: checksum mismatch");
    *rules_hash = qt_load_le64(p + 8);
    *out = qt_malloc((cnt + 1u) * sizeof(**out));
    if (*out == NULL)
        return QT_ENOMEM;
    for (uint32_t i = 0; i < cnt; i++) {
        const uint8_t *q = p + RU_HDR + (size_t)i * RU_REC;
        (*out)[i] = (struct qt_rollup_record){.shard = (int64_t)qt_load_le64(q),
                                              .ident = qt_load_le64(q + 8)};
    }
    *n = cnt;
    return 0;
}

static int
ru_rec_cmp(const void *a, const void *b)
{
    const struct qt_rollup_record *x = a, *y = b;
    return x->shard < y->shard ? -1 : x->shard > y->shard;
}

/* The records of ROLLUPS when it was written under rules_hash; any other
 * file (missing, damaged, other rules) gives none: conservative. */
static void
ru_load(struct qt_db *db, struct db_rollup *r)
{
    char path[PATH_MAX];
    struct db_ops_file f = {0};
    if (snprintf(path, sizeof(path), "%s/%s", db->dir, RU_FILE) >= (int)sizeof(path))
        return;
    int rc = db_ops_file_load(db->io, path, QT_ROLLUP_FILE_MAX, &f);
    if (rc != 0) {
        if (rc != -ENOENT)
            qt_log(QT_LOG_WARN, "rollup: cannot read %s: %s; rollups recompute", path,
                   qt_strerror(rc));
        return;
    }
    uint64_t h = 0;
    struct qt_rollup_record *rec = NULL;
    uint32_t n = 0;
    rc = qt_rollup_file_decode(f.buf, f.len, &h, &rec, &n);
    db_ops_file_unload(&f);
    if (rc != 0)
        qt_log(QT_LOG_WARN, "rollup: %s: %s (%s); rollups recompute", path, qt_strerror(rc),
               qt_err_detail());
    if (rc != 0 || h != r->rules_hash) {
        qt_free(rec);
        return;
    }
    qsort(rec, n, sizeof(*rec), ru_rec_cmp);
    uint32_t k = 0; /* a file written by us is sorted and unique; keep it so */
    for (uint32_t i = 0; i < n; i++)
        if (k == 0 || rec[k - 1].shard != rec[i].shard)
            rec[k++] = rec[i];
    qt_free(r->rec);
    r->rec = rec;
    r->n = k;
    r->cap = n;
}

int
qt_db_set_rollups(struct qt_db *db, const char *spec)
{
    qt_assert(db != NULL);
    char *buf = NULL;
    struct qt_rollup_rule *rules = NULL;
    uint32_t n = 0;
    int rc = ru_parse_copy(spec, &buf, &rules, &n);
    int64_t dur = db->mhdr.shard_duration_ns;
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        for (uint32_t k = 0; rc == 0 && k < rules[i].n_intervals; k++)
            if (dur % rules[i].interval_ns[k] != 0)
                rc = qt_fail(QT_EINVAL, "rollup: an interval does not divide the shard duration");
    char *copy = rc == 0 && n > 0 ? ru_strdup(spec) : NULL;
    if (rc == 0 && n > 0 && copy == NULL)
        rc = QT_ENOMEM;
    pthread_mutex_lock(&db->state_mu);
    struct db_rollup *r = db->rollup;
    if (rc == 0 && r == NULL) {
        r = qt_calloc(1, sizeof(*r));
        if (r == NULL)
            rc = QT_ENOMEM;
        else {
            pthread_mutex_init(&r->mu, NULL);
            pthread_mutex_init(&r->run_mu, NULL);
            pthread_mutex_init(&r->persist_mu, NULL);
            db->rollup = r;
        }
    }
    pthread_mutex_unlock(&db->state_mu);
    if (rc != 0) {
        qt_free(buf);
        qt_free(rules);
        qt_free(copy);
        return rc;
    }
    uint64_t h = n > 0 ? ru_rules_hash(rules, n) : 0;
    pthread_mutex_lock(&r->mu);
    bool same = h == r->rules_hash;
    qt_free(r->spec);
    qt_free(r->buf);
    qt_free(r->rules);
    r->spec = copy;
    r->buf = buf;
    r->rules = rules;
    r->nrules = n;
    r->rules_hash = h;
    if (!same) {
        r->n = 0;
        if (n > 0)
            ru_load(db, r);
    }
    pthread_mutex_unlock(&r->mu);
    return 0;
}

/* A private copy of the database's rules (*buf and *rules to free); 0
 * rules when none are set. */
static int
ru_rules_get(struct qt_db *db, char **buf, struct qt_rollup_rule **rules, uint32_t *n,
             uint64_t *hash)
{
    struct db_rollup *r = db->rollup;
    *buf = NULL;
    *rules = NULL;
    *n = 0;
    *hash = 0;
    if (r == NULL)
        return 0;
    pthread_mutex_lock(&r->mu);
    char *spec = r->spec != NULL ? ru_strdup(r->spec) : NULL;
    bool oom = r->spec != NULL && spec == NULL;
    *hash = r->rules_hash;
    pthread_mutex_unlock(&r->mu);
    if (oom)
        return QT_ENOMEM;
    if (spec == NULL)
        return 0;
    int rc = ru_parse_copy(spec, buf, rules, n);
    qt_free(spec);
    return rc;
}

bool
qt_db_rollup_rule(struct qt_db *db, const char *m, size_t len, struct qt_rollup_rule *out)
{
    qt_assert(db != NULL && out != NULL);
    struct db_rollup *r = db->rollup;
    if (r == NULL)
        return false;
    pthread_mutex_lock(&r->mu);
    const struct qt_rollup_rule *rule = ru_match(r->rules, r->nrules, m, len);
    if (rule != NULL) {
        *out = *rule;
        out->measurement = NULL; /* points into the database's buffer */
    }
    pthread_mutex_unlock(&r->mu);
    return rule != NULL;
}

/* ---- identities ------------------------------------------------------------------- */

/* The measurement of series id is ruled (rolled up). */
static bool
ru_id_ruled(struct qt_catalog *cat, uint64_t id, const struct qt_rollup_rule *rules, uint32_t n)
{
    uint32_t sid = 0;
    struct qt_catalog_series si;
    struct qt_catalog_group gi;
    if (qt_catalog_sid_by_id(cat, id, &sid) != 0 || qt_catalog_series_info(cat, sid, &si) != 0 ||
        qt_catalog_group_info(cat, si.gid, &gi) != 0)
        return true; /* unknown: count it, so the identity stays conservative */
    return ru_match(rules, n, gi.measurement.p, gi.measurement.len) != NULL;
}

/* Segment sg holds a raw series of a ruled measurement (a damaged one
 * always counts).  Memoised in the segment per rule set: segments are
 * immutable, so reading the key table once is enough. */
static bool
ru_seg_raw(struct qt_db *db, struct db_seg *sg, const struct qt_rollup_rule *rules, uint32_t n,
           uint64_t rh)
{
    if (sg->r == NULL)
        return true;
    if (atomic_load(&sg->ru_hash) == rh)
        return atomic_load(&sg->ru_raw);
    struct qt_seg_key *keys = NULL;
    uint8_t *kbuf = NULL;
    uint32_t nk = 0;
    if (qt_segr_keys(sg->r, &keys, &nk, &kbuf) != 0)
        return true; /* unreadable now: count it, do not memoise */
    bool raw = false;
    for (uint32_t k = 0; k < nk && !raw; k++)
        raw = ru_id_ruled(qt_db_catalog(db), keys[k].series_id, rules, n);
    qt_segr_keys_free(keys, kbuf);
    atomic_store(&sg->ru_raw, raw);
    atomic_store(&sg->ru_hash, rh);
    return raw;
}

/* Index of the first segment of shard in v (v->nsegs if none). */
static uint32_t
ru_first_seg(const struct db_version *v, int64_t shard)
{
    uint32_t lo = 0, hi = v->nsegs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (v->segs[mid]->m.shard_start_ns < shard)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Identity of shard in v: a hash of the seqs of its segments that hold a
 * raw series of a ruled measurement.  *any: the shard has segments. */
static uint64_t
ru_ident(struct qt_db *db, struct db_version *v, int64_t shard, const struct qt_rollup_rule *rules,
         uint32_t n, uint64_t rh, bool *any)
{
    qt_assert(v != NULL);
    uint64_t h = 0x9e3779b97f4a7c15ull;
    uint32_t i = ru_first_seg(v, shard);
    if (any != NULL)
        *any = i < v->nsegs && v->segs[i]->m.shard_start_ns == shard;
    for (; i < v->nsegs && v->segs[i]->m.shard_start_ns == shard; i++) {
        struct db_seg *sg = v->segs[i];
        if (ru_seg_raw(db, sg, rules, n, rh))
            h = qt_hash64_seed(&sg->m.seq, sizeof(sg->m.seq), h);
    }
    return h;
}

/* Index of the first record whose shard >= shard (records are sorted by
 * shard, unique).  r->mu held. */
static uint32_t
ru_lower(const struct db_rollup *r, int64_t shard)
{
    uint32_t lo = 0, hi = r->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->rec[mid].shard < shard)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Record index of shard, or r->n.  r->mu held. */
static uint32_t
ru_find(const struct db_rollup *r, int64_t shard)
{
    uint32_t i = ru_lower(r, shard);
    return i < r->n && r->rec[i].shard == shard ? i : r->n;
}

/* Set shard's identity under rules rh (ignored when the rules changed
 * meanwhile).  QT_ENOMEM. */
static int
ru_record(struct db_rollup *r, uint64_t rh, int64_t shard, uint64_t ident)
{
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    uint32_t i = ru_lower(r, shard);
    bool found = i < r->n && r->rec[i].shard == shard;
    if (r->rules_hash != rh) {
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    if (!found && r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 16;
        struct qt_rollup_record *nr = qt_realloc(r->rec, cap * sizeof(*nr));
        if (nr == NULL)
            rc = QT_ENOMEM;
        else {
            r->rec = nr;
            r->cap = cap;
        }
    }
    if (rc == 0 && !found) {
        memmove(r->rec + i + 1, r->rec + i, (r->n - i) * sizeof(*r->rec));
        r->n++;
    }
    if (rc == 0)
        r->rec[i] = (struct qt_rollup_record){.shard = shard, .ident = ident};
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static bool
ru_recorded(struct db_rollup *r, uint64_t rh, int64_t shard, uint64_t ident)
{
    pthread_mutex_lock(&r->mu);
    uint32_t i = ru_find(r, shard);
    bool ok = r->rules_hash == rh && i < r->n && r->rec[i].ident == ident;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* Write ROLLUPS (tmp, fsync, rename, fsync dir) with the records of shards
 * that still have segments.  A failure is logged and returned: the old file
 * (or none) stays, which is conservative (shards recompute). */
int
db_rollup_persist(struct qt_db *db)
{
    struct db_rollup *r = db->rollup;
    if (r == NULL || db_is_readonly(db))
        return 0;
    pthread_mutex_lock(&r->persist_mu); /* the snapshot and its write, in order */
    struct db_version *v = db_version_get(db);
    pthread_mutex_lock(&r->mu);
    uint64_t rh = r->rules_hash;
    size_t cap = RU_HDR + (size_t)r->n * RU_REC + 8;
    uint8_t *buf = rh != 0 ? qt_malloc(cap) : NULL;
    uint32_t k = 0;
    for (uint32_t i = 0; buf != NULL && i < r->n; i++) {
        uint32_t s = ru_first_seg(v, r->rec[i].shard);
        if (s == v->nsegs || v->segs[s]->m.shard_start_ns != r->rec[i].shard)
            continue; /* dropped by retention or never had segments */
        uint8_t *q = buf + RU_HDR + (size_t)k++ * RU_REC;
        qt_store_le64(q, (uint64_t)r->rec[i].shard);
        qt_store_le64(q + 8, r->rec[i].ident);
    }
    pthread_mutex_unlock(&r->mu);
    db_version_put(v);
    if (rh == 0 || buf == NULL) {
        pthread_mutex_unlock(&r->persist_mu);
        return rh == 0 ? 0 : QT_ENOMEM;
    }
    qt_store_le32(buf, RU_MAGIC);
    qt_store_le32(buf + 4, RU_VERSION);
    qt_store_le64(buf + 8, rh);
    qt_store_le32(buf + 16, k);
    qt_store_le32(buf + 20, 0);
    size_t len = RU_HDR + (size_t)k * RU_REC;
    qt_hash_store(buf + len, qt_hash64(buf, len));
    int rc = qt_io_write_file_atomic(db->io, db->dir, RU_FILE, buf, len + 8);
    pthread_mutex_unlock(&r->persist_mu);
    qt_free(buf);
    if (rc != 0)
        qt_log(QT_LOG_WARN, "rollup: writing %s/%s failed: %s; rollups recompute after a restart",
               db->dir, RU_FILE, qt_strerror(rc));
    return rc;
}

bool
db_rollup_current(struct qt_db *db, int64_t shard)
{
    char *buf = NULL;
    struct qt_rollup_rule *rules = NULL;
    uint32_t n = 0;
    uint64_t rh = 0;
    bool ok = false;
    if (ru_rules_get(db, &buf, &rules, &n, &rh) == 0 && n > 0) {
        struct db_version *v = db_version_get(db);
        ok = ru_recorded(db->rollup, rh, shard, ru_ident(db, v, shard, rules, n, rh, NULL));
        db_version_put(v);
    }
    qt_free(buf);
    qt_free(rules);
    return ok;
}

void
db_rollup_carry(struct qt_db *db, int64_t shard)
{
    char *buf = NULL;
    struct qt_rollup_rule *rules = NULL;
    uint32_t n = 0;
    uint64_t rh = 0;
    if (ru_rules_get(db, &buf, &rules, &n, &rh) == 0 && n > 0) {
        struct db_version *v = db_version_get(db);
        uint64_t id = ru_ident(db, v, shard, rules, n, rh, NULL);
        db_version_put(v);
        if (ru_record(db->rollup, rh, shard, id) != 0)
            qt_log(QT_LOG_WARN, "rollup: out of memory carrying a record over a compaction");
    }
    qt_free(buf);
    qt_free(rules);
}

/* ---- covered spans ------------------------------------------------------------------ */

struct ru_range {
    int64_t lo, hi; /* inclusive */
};

static int
ru_range_cmp(const void *a, const void *b)
{
    const struct ru_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Time ranges (sorted, merged) of memtable rows of raw series of ruled
 * measurements in v: *out (to free), *n. */
static int
ru_mem_ranges(struct qt_db *db, struct db_version *v, const struct qt_rollup_rule *rules,
              uint32_t nr, struct ru_range **out, uint32_t *n)
{
    struct qt_catalog *cat = qt_db_catalog(db);
    uint32_t ng = qt_catalog_group_count(cat), k = 0, cap = 16;
    struct ru_range *a = qt_malloc(cap * sizeof(*a));
    struct db_mem *mems[2] = {v->active, v->imm};
    int rc = a == NULL ? QT_ENOMEM : 0;
    for (uint32_t g = 0; rc == 0 && g < ng; g++) {
        struct qt_catalog_group gi;
        if ((rc = qt_catalog_group_info(cat, g, &gi)) != 0)
            break;
        if (ru_match(rules, nr, gi.measurement.p, gi.measurement.len) == NULL)
            continue;
        for (int m = 0; m < 2 && rc == 0; m++) {
            int64_t mn = 0, mx = 0;
            if (mems[m] == NULL || !qt_mem_group_range(mems[m]->m, g, &mn, &mx))
                continue;
            if (k == cap) {
                struct ru_range *na = qt_realloc(a, 2 * cap * sizeof(*a));
                if (na == NULL) {
                    rc = QT_ENOMEM;
                    break;
                }
                a = na;
                cap *= 2;
            }
            a[k++] = (struct ru_range){mn, mx};
        }
    }
    if (rc != 0) {
        qt_free(a);
        return rc;
    }
    qsort(a, k, sizeof(*a), ru_range_cmp);
    uint32_t m = 0;
    for (uint32_t i = 0; i < k; i++) {
        if (m > 0 && a[i].lo <= a[m - 1].hi)
            a[m - 1].hi = a[i].hi > a[m - 1].hi ? a[i].hi : a[m - 1].hi;
        else
            a[m++] = a[i];
    }
    *out = a;
    *n = m;
    return 0;
}

static bool
ru_mem_overlaps(const struct ru_range *a, uint32_t n, int64_t t0, int64_t t1)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i].lo < t1 && a[i].hi >= t0)
            return true;
    return false;
}

int
qt_db_rollup_spans(struct qt_db *db, int64_t t0, int64_t t1, int64_t now_ns,
                   struct qt_rollup_span *out, uint32_t cap, uint32_t *n)
{
    qt_assert(db != NULL && n != NULL && (out != NULL || cap == 0));
    *n = 0;
    if (now_ns == 0)
        now_ns = db_ops_wall_ns();
    int64_t dur = db->mhdr.shard_duration_ns;
    if (t0 >= t1 || !db_ts_storable(t0, dur) || !db_ts_storable(t1 - 1, dur))
        return 0;
    int64_t s0 = db_shard_start(t0, dur);
    if ((t1 - s0) / dur > QT_ROLLUP_SPAN_SHARDS_MAX)
        return 0; /* too many shards to check: read raw */
    char *buf = NULL;
    struct qt_rollup_rule *rules = NULL;
    uint32_t nr = 0;
    uint64_t rh = 0;
    int rc = ru_rules_get(db, &buf, &rules, &nr, &rh);
    struct db_version *v = db_version_get(db);
    struct ru_range *mem = NULL;
    uint32_t nmem = 0;
    if (rc == 0 && nr > 0)
        rc = ru_mem_ranges(db, v, rules, nr, &mem, &nmem);
    for (int64_t s = s0; rc == 0 && nr > 0 && s < t1; s += dur) {
        bool any = false;
        bool ok = s + dur <= now_ns && !ru_mem_overlaps(mem, nmem, s, s + dur);
        if (ok) {
            uint64_t id = ru_ident(db, v, s, rules, nr, rh, &any);
            ok = !any || ru_recorded(db->rollup, rh, s, id);
        }
        int64_t a = s > t0 ? s : t0, b = s + dur < t1 ? s + dur : t1;
        if (ok && *n > 0 && out[*n - 1].t1 == a)
            out[*n - 1].t1 = b;
        else if (ok && *n < cap)
            out[(*n)++] = (struct qt_rollup_span){a, b};
        else if (ok)
            break; /* the rest reads raw */
        if (s > INT64_MAX - dur)
            break;
    }
    db_version_put(v);
    qt_free(mem);
    qt_free(buf);
    qt_free(rules);
    return rc;
}

bool
qt_db_rollup_covers(struct qt_db *db, int64_t t0, int64_t t1, int64_t now_ns)
{
    struct qt_rollup_span sp;
    uint32_t n = 0;
    return qt_db_rollup_spans(db, t0, t1, now_ns, &sp, 1, &n) == 0 && n == 1 && sp.t0 == t0 &&
           sp.t1 == t1;
}

/* ---- driver ------------------------------------------------------------------------ */

int
qt_rollup_group_key(const uint8_t *g, uint32_t len, const char *interval, char *out, size_t cap)
{
    qt_assert(g != NULL && interval != NULL && out != NULL);
    uint32_t ml = 0; /* the escaped measurement ends at the first unescaped ',' */
    while (ml < len && g[ml] != ',') {
        if (g[ml] == '\\' && ml + 1 < len)
            ml++;
        ml++;
    }
    size_t il = strlen(interval);
    if ((size_t)len + il + 1 > cap)
        return qt_fail(QT_ELIMIT, "rollup: rollup series key too long");
    memcpy(out, g, ml);
    out[ml] = ':';
    memcpy(out + ml + 1, interval, il);
    memcpy(out + ml + 1 + il, g + ml, len - ml);
    return (int)(len + il + 1);
}

int64_t
qt_db_rollup_floor(struct qt_db *db, const char *m, size_t len, const char *interval,
                   int64_t now_ns)
{
    qt_assert(db != NULL && m != NULL && interval != NULL);
    if (now_ns == 0)
        now_ns = db_ops_wall_ns();
    char name[QT_SERIES_KEY_MAX + 32];
    size_t il = strlen(interval);
    if (len + 1 + il > sizeof(name))
        return INT64_MAX; /* cannot be a rollup: never use one */
    memcpy(name, m, len);
    name[len] = ':';
    memcpy(name + len + 1, interval, il);
    int64_t d[2] = {qt_db_retention_for(db, m, len), qt_db_retention_for(db, name, len + 1 + il)};
    int64_t floor = INT64_MIN;
    for (int i = 0; i < 2; i++)
        if (d[i] > 0 && now_ns >= INT64_MIN + d[i] && now_ns - d[i] > floor)
            floor = now_ns - d[i];
    return floor;
}

/* Roll up series sid (of measurement m[0..mlen)) over shards[0..ns) for
 * every interval of rule r. */
static int
ru_one_series(struct qt_db *db, uint32_t sid, const char *m, size_t mlen,
              const struct qt_rollup_rule *r, const int64_t *shards, uint32_t ns, int64_t now,
              struct qt_rollup_result *res)
{
    struct qt_catalog *cat = qt_db_catalog(db);
    struct qt_catalog_series si;
    int rc = qt_catalog_series_info(cat, sid, &si);
    if (rc != 0 || (si.vtype != QT_VT_FLOAT && si.vtype != QT_VT_INT))
        return rc;
    char *key = qt_malloc(QT_SERIES_KEY_MAX + 32);
    struct ru_series *rs = qt_malloc(sizeof(*rs));
    if (key == NULL || rs == NULL) {
        qt_free(key);
        qt_free(rs);
        return QT_ENOMEM;
    }
    rs->db = db;
    rs->key = key;
    rs->vt = si.vtype;
    rs->res = res;
    rs->n = 0;
    rc = ru_series_names(rs, si.field.p, (uint32_t)si.field.len);
    int64_t dur = db->mhdr.shard_duration_ns;
    for (uint32_t k = 0; rc == 0 && k < r->n_intervals; k++) {
        int kl = qt_rollup_group_key(si.key, si.group_len, r->interval_name[k], key,
                                     QT_SERIES_KEY_MAX - 2);
        if (kl < 0) {
            rc = kl;
            break;
        }
        rs->key_len = (uint32_t)kl;
        rs->floor = qt_db_rollup_floor(db, m, mlen, r->interval_name[k], now);
        for (uint32_t j = 0; rc == 0 && j < ns; j++) {
            rc = ru_scan(rs, sid, shards[j], shards[j] + dur, r->interval_ns[k]);
            res->series++;
        }
        if (rc == 0)
            rc = ru_write(rs); /* before the key changes */
    }
    qt_free(rs);
    qt_free(key);
    return rc;
}

/* Starts of the shards with segments that ended by now and whose record
 * is not current, ascending, with each one's identity in this snapshot. */
static int
ru_shards(struct qt_db *db, int64_t now, const struct qt_rollup_rule *rules, uint32_t nr,
          uint64_t rh, int64_t **out, uint64_t **ident, uint32_t *n, struct qt_rollup_result *res)
{
    struct db_version *v = db_version_get(db);
    int64_t dur = db->mhdr.shard_duration_ns;
    *n = 0;
    *out = qt_malloc((v->nsegs + 1u) * sizeof(**out));
    *ident = qt_malloc((v->nsegs + 1u) * sizeof(**ident));
    int rc = *out == NULL || *ident == NULL ? QT_ENOMEM : 0;
    for (uint32_t i = 0; rc == 0 && i < v->nsegs; i++) {
        int64_t s = v->segs[i]->m.shard_start_ns;
        bool ended = s <= INT64_MAX - dur && s + dur <= now;
        if (!ended || (i > 0 && v->segs[i - 1]->m.shard_start_ns == s))
            continue;
        uint64_t id = ru_ident(db, v, s, rules, nr, rh, NULL);
        if (ru_recorded(db->rollup, rh, s, id)) {
            res->shards_current++;
            continue;
        }
        (*ident)[*n] = id;
        (*out)[(*n)++] = s;
    }
    db_version_put(v);
    return rc;
}

/* Flush when raw series of ruled measurements have memtable rows in
 * shards that ended by now (late data), so the run sees them. */
static int
ru_flush_ended(struct qt_db *db, const struct qt_rollup_rule *rules, uint32_t n, int64_t now)
{
    int64_t dur = db->mhdr.shard_duration_ns;
    struct db_version *v = db_version_get(db);
    struct ru_range *mem = NULL;
    uint32_t nmem = 0;
    int rc = ru_mem_ranges(db, v, rules, n, &mem, &nmem);
    db_version_put(v);
    bool late =
        rc == 0 && nmem > 0 && (!db_ts_storable(now, dur) || mem[0].lo < db_shard_start(now, dur));
    qt_free(mem);
    return late ? qt_db_flush(db) : rc;
}

int
qt_db_rollup(struct qt_db *db, int64_t now_ns, struct qt_rollup_result *res)
{
    qt_assert(db != NULL);
    struct qt_rollup_result local;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof(*res));
    struct db_rollup *ru = db->rollup;
    if (ru == NULL)
        return 0;
    if (now_ns == 0)
        now_ns = db_ops_wall_ns();
    pthread_mutex_lock(&ru->run_mu);
    char *buf = NULL;
    struct qt_rollup_rule *rules = NULL;
    uint32_t n = 0;
    uint64_t rh = 0;
    int rc = ru_rules_get(db, &buf, &rules, &n, &rh);
    if (rc == 0 && n > 0)
        rc = ru_flush_ended(db, rules, n, now_ns);
    int64_t *shards = NULL;
    uint64_t *ident = NULL;
    uint32_t ns = 0;
    if (rc == 0 && n > 0)
        rc = ru_shards(db, now_ns, rules, n, rh, &shards, &ident, &ns, res);
    struct qt_catalog *cat = qt_db_catalog(db);
    uint32_t nser = rc == 0 && ns > 0 ? qt_catalog_series_count(cat) : 0;
    for (uint32_t sid = 0; rc == 0 && sid < nser; sid++) {
        struct qt_catalog_series si;
        struct qt_catalog_group gi;
        rc = qt_catalog_series_info(cat, sid, &si);
        if (rc == 0)
            rc = qt_catalog_group_info(cat, si.gid, &gi);
        const struct qt_rollup_rule *r =
            rc == 0 ? ru_match(rules, n, gi.measurement.p, gi.measurement.len) : NULL;
        if (r != NULL)
            rc = ru_one_series(db, sid, gi.measurement.p, gi.measurement.len, r, shards, ns, now_ns,
                               res);
    }
    res->shards = ns;
    if (rc == 0 && ns > 0)
        rc = qt_db_flush(db);
    /* Recorded only now: the identities were taken before the scans, so
     * raw data that landed since (and the flush that wrote it) is not in
     * them and makes the shard uncovered until the next run. */
    for (uint32_t i = 0; rc == 0 && i < ns; i++)
        rc = ru_record(ru, rh, shards[i], ident[i]);
    if (rc == 0 && ns > 0)
        db_rollup_persist(db); /* failure logged; conservative */
    pthread_mutex_unlock(&ru->run_mu);
    qt_free(shards);
    qt_free(ident);
    qt_free(buf);
    qt_free(rules);
    return rc;
}
