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
#include "format/qt_err.h"
#include "format/qt_hash.h"
#include "format/qt_limits.h"
#include "ops_int.h"
#include "storage/scan.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
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

struct ru_series {
    struct qt_db *db;
    const char *key; /* rollup group key "<meas>:<iv><,tags>" */
    uint32_t key_len;
    const char *field; /* source field name */
    uint32_t field_len;
    enum qt_vtype vt;
    struct qt_rollup_result *res;
};

/* Write bucket b as one line. */
static int
ru_emit(const struct ru_series *rs, const struct ru_bucket *b)
{
    qt_assert(rs != NULL && b->count > 0);
    static const char *const sfx[6] = {".count", ".sum", ".min", ".max", ".first", ".last"};
    char names[6][QT_SERIES_KEY_MAX + 8];
    struct qt_batch_field f[6];
    union qt_stat sum = b->sum;
    if (rs->vt == QT_VT_FLOAT)
        sum.f = ru_fsum_total(b);
    const union qt_stat *v[6] = {NULL, &sum, &b->min, &b->max, &b->first, &b->last};
    uint32_t nf = 0;
    for (uint32_t i = 0; i < 6; i++) {
        if (i == 1 && b->sum_bad)
            continue;
        if (rs->field_len + 6 > QT_SERIES_KEY_MAX)
            return qt_fail(QT_ELIMIT, "rollup: field name too long for its rollup fields");
        memcpy(names[nf], rs->field, rs->field_len);
        memcpy(names[nf] + rs->field_len, sfx[i], strlen(sfx[i]));
        f[nf].name = names[nf];
        f[nf].name_len = rs->field_len + (uint32_t)strlen(sfx[i]);
        f[nf].vtype = i == 0 ? QT_VT_INT : rs->vt;
        if (i == 0)
            f[nf].v.i = b->count;
        else if (rs->vt == QT_VT_FLOAT)
            f[nf].v.f = v[i]->f;
        else
            f[nf].v.i = v[i]->i;
        nf++;
    }
    struct qt_batch_line line = {
        .key = rs->key, .key_len = rs->key_len, .ts = b->start, .n_fields = nf, .fields = f};
    struct qt_write_result wr = {0};
    int rc = qt_db_write(rs->db, &line, 1, NULL, NULL, &wr);
    if (rc == 0 && wr.lines_ok != 1)
        rc = qt_fail(QT_EINVAL, "rollup: a rollup line was rejected (type conflict?)");
    if (rc == 0)
        rs->res->buckets++;
    return rc;
}

/* Feed a chunk's points one by one into the bucket sequence. */
static int
ru_points(const struct ru_series *rs, const struct qt_chunk *c, int64_t iv, struct ru_bucket *b)
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
ru_scan(const struct ru_series *rs, uint32_t sid, int64_t t0, int64_t t1, int64_t iv)
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

/* ---- records: what each shard's rollup was computed from ---------------------- */

struct ru_record {
    int64_t shard;
    uint64_t rules_hash;
    uint64_t ident;
};

struct db_rollup {
    pthread_mutex_t mu;
    struct ru_record *rec;
    uint32_t n, cap;
};

void
db_rollup_free(struct db_rollup *r)
{
    if (r == NULL)
        return;
    pthread_mutex_destroy(&r->mu);
    qt_free(r->rec);
    qt_free(r);
}

/* db->rollup, created on first use (under state_mu). */
static struct db_rollup *
ru_state(struct qt_db *db, bool create)
{
    pthread_mutex_lock(&db->state_mu);
    if (db->rollup == NULL && create) {
        struct db_rollup *r = qt_calloc(1, sizeof(*r));
        if (r != NULL && pthread_mutex_init(&r->mu, NULL) != 0) {
            qt_free(r);
            r = NULL;
        }
        db->rollup = r;
    }
    struct db_rollup *r = db->rollup;
    pthread_mutex_unlock(&db->state_mu);
    return r;
}

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
    return h;
}

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

/* Identity of shard `shard` in v: a hash of the seqs of its segments that
 * hold a raw series of a ruled measurement (damaged ones always count). */
static int
ru_ident(struct qt_db *db, struct db_version *v, int64_t shard, const struct qt_rollup_rule *rules,
         uint32_t n, uint64_t *out)
{
    qt_assert(v != NULL && out != NULL);
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (uint32_t i = 0; i < v->nsegs; i++) {
        struct db_seg *sg = v->segs[i];
        if (sg->m.shard_start_ns != shard)
            continue;
        bool raw = sg->r == NULL;
        struct qt_seg_key *keys = NULL;
        uint8_t *kbuf = NULL;
        uint32_t nk = 0;
        if (!raw) {
            int rc = qt_segr_keys(sg->r, &keys, &nk, &kbuf);
            if (rc != 0)
                return rc;
            for (uint32_t k = 0; k < nk && !raw; k++)
                raw = ru_id_ruled(qt_db_catalog(db), keys[k].series_id, rules, n);
            qt_segr_keys_free(keys, kbuf);
        }
        if (raw)
            h = qt_hash64_seed(&sg->m.seq, sizeof(sg->m.seq), h);
    }
    *out = h;
    return 0;
}

static int
ru_record(struct qt_db *db, int64_t shard, uint64_t rules_hash, uint64_t ident)
{
    struct db_rollup *r = ru_state(db, true);
    if (r == NULL)
        return QT_ENOMEM;
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    uint32_t i = 0;
    while (i < r->n && (r->rec[i].shard != shard || r->rec[i].rules_hash != rules_hash))
        i++;
    if (i == r->n && r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 16;
        struct ru_record *nr = qt_realloc(r->rec, cap * sizeof(*nr));
        if (nr == NULL)
            rc = QT_ENOMEM;
        else {
            r->rec = nr;
            r->cap = cap;
        }
    }
    if (rc == 0) {
        r->rec[i] = (struct ru_record){.shard = shard, .rules_hash = rules_hash, .ident = ident};
        if (i == r->n)
            r->n++;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static bool
ru_recorded(struct qt_db *db, int64_t shard, uint64_t rules_hash, uint64_t ident)
{
    struct db_rollup *r = ru_state(db, false);
    bool ok = false;
    if (r == NULL)
        return false;
    pthread_mutex_lock(&r->mu);
    for (uint32_t i = 0; i < r->n && !ok; i++)
        ok = r->rec[i].shard == shard && r->rec[i].rules_hash == rules_hash &&
             r->rec[i].ident == ident;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* Some raw series of a ruled measurement has memtable rows in [t0, t1). */
static bool
ru_mem_in_range(struct qt_db *db, struct db_version *v, const struct qt_rollup_rule *rules,
                uint32_t n, int64_t t0, int64_t t1)
{
    struct qt_catalog *cat = qt_db_catalog(db);
    uint32_t ng = qt_catalog_group_count(cat);
    struct db_mem *mems[2] = {v->active, v->imm};
    for (uint32_t g = 0; g < ng; g++) {
        struct qt_catalog_group gi;
        if (qt_catalog_group_info(cat, g, &gi) != 0)
            return true;
        if (ru_match(rules, n, gi.measurement.p, gi.measurement.len) == NULL)
            continue;
        for (int k = 0; k < 2; k++) {
            int64_t mn = 0, mx = 0;
            if (mems[k] != NULL && qt_mem_group_range(mems[k]->m, g, &mn, &mx) && mx >= t0 &&
                mn < t1)
                return true;
        }
    }
    return false;
}

bool
qt_db_rollup_covers(struct qt_db *db, const struct qt_rollup_rule *rules, uint32_t n, int64_t t0,
                    int64_t t1, int64_t now_ns)
{
    qt_assert(db != NULL && (rules != NULL || n == 0));
    if (now_ns == 0)
        now_ns = db_ops_wall_ns();
    int64_t dur = db->mhdr.shard_duration_ns;
    uint64_t rh = ru_rules_hash(rules, n);
    struct db_version *v = db_version_get(db);
    bool ok = t0 < t1 && !ru_mem_in_range(db, v, rules, n, t0, t1);
    for (uint32_t i = 0; ok && i < v->nsegs; i++) {
        int64_t s = v->segs[i]->m.shard_start_ns;
        bool overlaps = s < t1 && (s > INT64_MAX - dur || s + dur > t0);
        if (!overlaps || (i > 0 && v->segs[i - 1]->m.shard_start_ns == s))
            continue;
        uint64_t id = 0;
        ok = s <= INT64_MAX - dur && s + dur <= now_ns && ru_ident(db, v, s, rules, n, &id) == 0 &&
             ru_recorded(db, s, rh, id);
    }
    db_version_put(v);
    return ok;
}

/* ---- driver ------------------------------------------------------------------------ */

/* Length of the escaped measurement at the start of group key g[0..len). */
static uint32_t
ru_meas_len(const uint8_t *g, uint32_t len)
{
    uint32_t i = 0;
    while (i < len && g[i] != ',') {
        if (g[i] == '\\' && i + 1 < len)
            i++;
        i++;
    }
    return i;
}

/* Roll up series sid over shards[0..ns) for every interval of rule r. */
static int
ru_one_series(struct qt_db *db, uint32_t sid, const struct qt_rollup_rule *r, const int64_t *shards,
              uint32_t ns, struct qt_rollup_result *res)
{
    struct qt_catalog *cat = qt_db_catalog(db);
    struct qt_catalog_series si;
    int rc = qt_catalog_series_info(cat, sid, &si);
    if (rc != 0 || (si.vtype != QT_VT_FLOAT && si.vtype != QT_VT_INT))
        return rc;
    char *key = qt_malloc(QT_SERIES_KEY_MAX + 32);
    if (key == NULL)
        return QT_ENOMEM;
    uint32_t ml = ru_meas_len(si.key, si.group_len);
    int64_t dur = db->mhdr.shard_duration_ns;
    for (uint32_t k = 0; rc == 0 && k < r->n_intervals; k++) {
        size_t il = strlen(r->interval_name[k]);
        if (si.group_len + il + 1 > QT_SERIES_KEY_MAX - 2) {
            rc = qt_fail(QT_ELIMIT, "rollup: rollup series key too long");
            break;
        }
        memcpy(key, si.key, ml);
        key[ml] = ':';
        memcpy(key + ml + 1, r->interval_name[k], il);
        memcpy(key + ml + 1 + il, si.key + ml, si.group_len - ml);
        struct ru_series rs = {.db = db,
                               .key = key,
                               .key_len = (uint32_t)(si.group_len + il + 1),
                               .field = si.field.p,
                               .field_len = (uint32_t)si.field.len,
                               .vt = si.vtype,
                               .res = res};
        for (uint32_t j = 0; rc == 0 && j < ns; j++) {
            rc = ru_scan(&rs, sid, shards[j], shards[j] + dur, r->interval_ns[k]);
            res->series++;
        }
    }
    qt_free(key);
    return rc;
}

/* Distinct starts of shards with segments that ended by now, ascending,
 * and each one's identity (ru_ident) in this snapshot. */
static int
ru_shards(struct qt_db *db, int64_t now, const struct qt_rollup_rule *rules, uint32_t nr,
          int64_t **out, uint64_t **ident, uint32_t *n)
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
        if (ended && (*n == 0 || (*out)[*n - 1] != s)) {
            rc = ru_ident(db, v, s, rules, nr, &(*ident)[*n]);
            (*out)[(*n)++] = s;
        }
    }
    db_version_put(v);
    return rc;
}

int
qt_db_rollup(struct qt_db *db, const struct qt_rollup_rule *rules, uint32_t n, int64_t now_ns,
             struct qt_rollup_result *res)
{
    qt_assert(db != NULL && (rules != NULL || n == 0));
    struct qt_rollup_result local;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof(*res));
    int64_t dur = db->mhdr.shard_duration_ns;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < rules[i].n_intervals; k++)
            if (dur % rules[i].interval_ns[k] != 0)
                return qt_fail(QT_EINVAL, "rollup: an interval must divide the shard duration");
    if (now_ns == 0)
        now_ns = db_ops_wall_ns();
    int rc = qt_db_flush(db);
    int64_t *shards = NULL;
    uint64_t *ident = NULL;
    uint32_t ns = 0;
    if (rc == 0)
        rc = ru_shards(db, now_ns, rules, n, &shards, &ident, &ns);
    struct qt_catalog *cat = qt_db_catalog(db);
    uint32_t nser = rc == 0 ? qt_catalog_series_count(cat) : 0;
    for (uint32_t sid = 0; rc == 0 && sid < nser; sid++) {
        struct qt_catalog_series si;
        struct qt_catalog_group gi;
        rc = qt_catalog_series_info(cat, sid, &si);
        if (rc == 0)
            rc = qt_catalog_group_info(cat, si.gid, &gi);
        const struct qt_rollup_rule *r =
            rc == 0 ? ru_match(rules, n, gi.measurement.p, gi.measurement.len) : NULL;
        if (r != NULL)
            rc = ru_one_series(db, sid, r, shards, ns, res);
    }
    res->shards = ns;
    if (rc == 0)
        rc = qt_db_flush(db);
    /* Recorded only now: the identities were taken before the scans, so
     * raw data that landed since (and the flush that wrote it) is not in
     * them and makes qt_db_rollup_covers() answer false. */
    uint64_t rh = ru_rules_hash(rules, n);
    for (uint32_t i = 0; rc == 0 && i < ns; i++)
        rc = ru_record(db, shards[i], rh, ident[i]);
    qt_free(shards);
    qt_free(ident);
    return rc;
}
