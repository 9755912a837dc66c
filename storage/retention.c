/*
 * retention.c -- retention rules and the whole-shard drop (retention.h,
 * design/ops.md "Retention").
 *
 * A shard is dropped only when every series stored in it belongs to a
 * measurement whose cutoff lies at or after the shard's end, judged from the
 * key tables of its segments.  The drop is one db_ops_commit() with flush_mu
 * held, after checking that the shard still holds exactly the segments that
 * were judged (a flush may have added late points meanwhile; the shard is
 * then judged again at the next pass).  A shard with a damaged segment is
 * never dropped here (its series are unknown); verify --quarantine handles
 * it.
 */
#include "storage/retention.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "ops_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rules ------------------------------------------------------------------- */

/* "30d" -> ns.  0 or QT_ESYNTAX. */
static int
ret_duration(const char *s, int64_t *out)
{
    qt_assert(s != NULL && out != NULL);
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno != 0 || v <= 0)
        return qt_fail(QT_ESYNTAX, "retention: duration must be a positive integer and a unit");
    int64_t unit = 0;
    if (strcmp(end, "ns") == 0)
        unit = 1;
    else if (strcmp(end, "s") == 0)
        unit = 1000000000ll;
    else if (strcmp(end, "m") == 0)
        unit = 60ll * 1000000000ll;
    else if (strcmp(end, "h") == 0)
        unit = 3600ll * 1000000000ll;
    else if (strcmp(end, "d") == 0)
        unit = 86400ll * 1000000000ll;
    else if (strcmp(end, "w") == 0)
        unit = 7ll * 86400ll * 1000000000ll;
    else
        return qt_fail(QT_ESYNTAX, "retention: unit must be ns, s, m, h, d or w");
    if (v > INT64_MAX / unit)
        return qt_fail(QT_ESYNTAX, "retention: duration too long");
    *out = v * unit;
    return 0;
}

int
qt_retention_parse(char *buf, struct qt_retention_rule *rules, uint32_t cap, uint32_t *n)
{
    qt_assert(buf != NULL);
    qt_assert(n != NULL);
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(tok, '=');
        if (eq == NULL || eq == tok)
            return qt_fail(QT_ESYNTAX, "retention: expected MEASUREMENT=DURATION");
        *eq = '\0';
        if (*n == cap || *n == QT_RETENTION_RULES_MAX)
            return qt_fail(QT_ELIMIT, "retention: too many rules (QT_RETENTION_RULES_MAX)");
        struct qt_retention_rule *r = &rules[*n];
        size_t len = strlen(tok);
        r->prefix = tok[len - 1] == '*';
        if (r->prefix)
            tok[len - 1] = '\0';
        r->measurement = tok;
        int rc = ret_duration(eq + 1, &r->duration_ns);
        if (rc != 0)
            return rc;
        (*n)++;
    }
    return 0;
}

static int
ret_check(const struct qt_retention_rule *rules, uint32_t n)
{
    if (n > QT_RETENTION_RULES_MAX)
        return qt_fail(QT_ELIMIT, "retention: too many rules (QT_RETENTION_RULES_MAX)");
    for (uint32_t i = 0; i < n; i++) {
        const struct qt_retention_rule *r = &rules[i];
        if (r->measurement == NULL || r->duration_ns <= 0 ||
            (!r->prefix && r->measurement[0] == '\0'))
            return qt_fail(QT_EINVAL, "retention: rule without a measurement or a positive "
                                      "duration");
        if (strlen(r->measurement) >= QT_SERIES_KEY_MAX)
            return qt_fail(QT_EINVAL, "retention: measurement name too long");
        for (uint32_t j = 0; j < i; j++) {
            if (rules[j].prefix == r->prefix && strcmp(rules[j].measurement, r->measurement) == 0)
                return qt_fail(QT_EINVAL, "retention: the same measurement twice");
        }
    }
    return 0;
}

int
qt_db_set_retention(struct qt_db *db, const struct qt_retention_rule *rules, uint32_t n)
{
    qt_assert(db->ops != NULL);
    qt_assert(n == 0 || rules != NULL);
    int rc = ret_check(rules, n);
    if (rc != 0)
        return rc;
    struct qt_retention_rule *copy = qt_calloc(n + 1u, sizeof(*copy));
    rc = copy == NULL ? QT_ENOMEM : 0;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        copy[i] = rules[i];
        copy[i].measurement = qt_strndup(rules[i].measurement, strlen(rules[i].measurement));
        rc = copy[i].measurement == NULL ? QT_ENOMEM : 0;
    }
    struct db_ops *ops = db->ops;
    struct qt_retention_rule *old = NULL;
    uint32_t nold = 0;
    if (rc == 0) {
        pthread_mutex_lock(&ops->mu);
        old = ops->rules;
        nold = ops->nrules;
        ops->rules = copy;
        ops->nrules = n;
        pthread_mutex_unlock(&ops->mu);
        copy = NULL;
    } else {
        old = copy;
        nold = n;
    }
    for (uint32_t i = 0; old != NULL && i < nold; i++)
        qt_free((char *)old[i].measurement);
    qt_free(old);
    return rc;
}

/* ---- judging shards ------------------------------------------------------------ */

/* Cutoff of every key of segment r (its key table), in keytab order. */
static int
ret_key_cutoffs(struct qt_db *db, struct qt_segr *r, int64_t now, struct qt_seg_key **keys,
                uint32_t *nkeys, uint8_t **kbuf, int64_t **cut)
{
    qt_assert(r != NULL);
    int rc = qt_segr_keys(r, keys, nkeys, kbuf);
    if (rc != 0)
        return rc;
    *cut = qt_malloc((*nkeys + 1u) * sizeof(**cut));
    if (*cut == NULL) {
        qt_segr_keys_free(*keys, *kbuf);
        return QT_ENOMEM;
    }
    for (uint32_t i = 0; i < *nkeys; i++)
        (*cut)[i] = db_ops_cutoff(db, (*keys)[i].key, (*keys)[i].group_len, now);
    return 0;
}

/* Smallest retention among the rules (0 = none): nothing younger than now
 * minus it can be expired. */
static int64_t
ret_min_duration(struct qt_db *db)
{
    struct db_ops *ops = db->ops;
    int64_t min = 0;
    pthread_mutex_lock(&ops->mu);
    for (uint32_t i = 0; i < ops->nrules; i++)
        min = min == 0 || ops->rules[i].duration_ns < min ? ops->rules[i].duration_ns : min;
    pthread_mutex_unlock(&ops->mu);
    return min;
}

struct ret_count {
    const struct qt_seg_key *keys;
    const int64_t *cut;
    uint32_t nkeys;
    uint64_t expired;
};

static int
ret_count_entry(void *arg, const struct qt_seg_entry *e)
{
    struct ret_count *c = arg;
    uint32_t k = qt_seg_keytab_find(c->keys, c->nkeys, e->series_id);
    if (k == c->nkeys || e->ts_min >= c->cut[k])
        return 0;
    c->expired += e->ts_max < c->cut[k] ? e->n_values : e->n_values / 2;
    return 0;
}

uint64_t
db_ops_expired_points(struct qt_db *db, struct db_version *v, int64_t shard, int64_t now_ns)
{
    int64_t min = ret_min_duration(db);
    uint64_t total = 0;
    for (uint32_t i = 0; min > 0 && i < v->nsegs; i++) {
        struct db_seg *s = v->segs[i];
        if (s->m.shard_start_ns != shard || s->r == NULL || now_ns - min <= s->m.ts_min)
            continue;
        struct ret_count c = {0};
        struct qt_seg_key *keys = NULL;
        uint8_t *kbuf = NULL;
        int64_t *cut = NULL;
        if (ret_key_cutoffs(db, s->r, now_ns, &keys, &c.nkeys, &kbuf, &cut) != 0)
            continue;
        c.keys = keys;
        c.cut = cut;
        if (qt_segr_foreach_entry(s->r, ret_count_entry, &c) == 0)
            total += c.expired;
        qt_free(cut);
        qt_segr_keys_free(keys, kbuf);
    }
    return total;
}

/* True when every series of segment s is past retention for the whole shard. */
static bool
ret_seg_expired(struct qt_db *db, struct db_seg *s, int64_t shard_end, int64_t now)
{
    qt_assert(s != NULL);
    if (s->r == NULL)
        return false;
    struct qt_seg_key *keys = NULL;
    uint8_t *kbuf = NULL;
    int64_t *cut = NULL;
    uint32_t n = 0;
    if (ret_key_cutoffs(db, s->r, now, &keys, &n, &kbuf, &cut) != 0)
        return false;
    bool all = true;
    for (uint32_t i = 0; i < n && all; i++)
        all = cut[i] != INT64_MIN && shard_end <= cut[i];
    qt_free(cut);
    qt_segr_keys_free(keys, kbuf);
    return all;
}

/* ---- drop ----------------------------------------------------------------------- */

struct ret_plan {
    struct db_seg **rm; /* referenced */
    uint32_t nrm, cap;
    int64_t shards[QT_OPS_BUSY_MAX];
    uint32_t nshards;
};

static int
ret_plan_shard(struct qt_db *db, struct ret_plan *p, struct db_version *v, uint32_t i, uint32_t j)
{
    qt_assert(i < j && j <= v->nsegs);
    if (p->nrm + (j - i) > p->cap) {
        uint32_t cap = (p->nrm + (j - i)) * 2 + 8;
        struct db_seg **rm = qt_realloc(p->rm, cap * sizeof(*rm));
        if (rm == NULL)
            return QT_ENOMEM;
        p->rm = rm;
        p->cap = cap;
    }
    int64_t shard = v->segs[i]->m.shard_start_ns;
    if (p->nshards == QT_OPS_BUSY_MAX || db_ops_busy_take(db, shard) != 0)
        return 0; /* being compacted, or enough for one pass: next pass */
    p->shards[p->nshards++] = shard;
    for (uint32_t k = i; k < j; k++) {
        atomic_fetch_add(&v->segs[k]->refs, 1);
        p->rm[p->nrm++] = v->segs[k];
    }
    return 0;
}

/* Shards of v entirely past retention at now, marked busy, segments referenced. */
static int
ret_plan(struct qt_db *db, struct db_version *v, int64_t now, struct ret_plan *p)
{
    qt_assert(p->nrm == 0);
    int64_t dur = db->ops->shard_dur;
    int64_t min = ret_min_duration(db);
    int rc = 0;
    for (uint32_t i = 0; i < v->nsegs && rc == 0 && min > 0;) {
        int64_t shard = v->segs[i]->m.shard_start_ns;
        int64_t end = shard > INT64_MAX - dur ? INT64_MAX : shard + dur;
        uint32_t j = i;
        bool all = end <= now - min;
        for (; j < v->nsegs && v->segs[j]->m.shard_start_ns == shard; j++)
            all = all && ret_seg_expired(db, v->segs[j], end, now);
        if (all)
            rc = ret_plan_shard(db, p, v, i, j);
        i = j;
    }
    return rc;
}

/* Count the current segments of shard in the live version. */
static uint32_t
ret_live_count(struct qt_db *db, int64_t shard)
{
    struct db_version *v = db_version_get(db);
    uint32_t n = 0;
    for (uint32_t i = 0; i < v->nsegs; i++)
        n += v->segs[i]->m.shard_start_ns == shard;
    db_version_put(v);
    return n;
}

/* Keep only the planned shards whose segment set did not change (flush_mu held). */
static uint32_t
ret_recheck(struct qt_db *db, struct ret_plan *p, struct qt_retention_result *r)
{
    qt_assert(p->nshards <= QT_OPS_BUSY_MAX);
    uint32_t k = 0;
    for (uint32_t s = 0; s < p->nshards; s++) {
        uint32_t planned = 0;
        for (uint32_t i = 0; i < p->nrm; i++)
            planned += p->rm[i]->m.shard_start_ns == p->shards[s];
        bool same = ret_live_count(db, p->shards[s]) == planned;
        for (uint32_t i = 0; i < p->nrm; i++) {
            if (p->rm[i]->m.shard_start_ns != p->shards[s])
                continue;
            if (!same) {
                db_seg_put(p->rm[i]);
                continue;
            }
            r->segments_dropped++;
            r->points_dropped += p->rm[i]->m.points;
            r->bytes_dropped += p->rm[i]->m.file_bytes;
            p->rm[k++] = p->rm[i];
        }
        r->shards_dropped += same;
    }
    return k;
}

static void
ret_rmdirs(struct qt_db *db, const struct ret_plan *p)
{
    char dir[PATH_MAX], parent[PATH_MAX];
    int removed = 0;
    for (uint32_t s = 0; s < p->nshards; s++) {
        if (db_shard_dir(db, p->shards[s], dir, sizeof(dir)) == 0 && qt_io_rmdir(db->io, dir) == 0)
            removed++; /* fails while a reader still holds a file: open cleans it */
    }
    int n = snprintf(parent, sizeof(parent), "%s/shards", db->dir);
    if (removed > 0 && n > 0 && (size_t)n < sizeof(parent))
        qt_io_fsync_dir(db->io, parent);
}

int
qt_db_apply_retention(struct qt_db *db, int64_t now_ns, struct qt_retention_result *res)
{
    qt_assert(db->ops != NULL);
    struct qt_retention_result r = {0};
    if (now_ns == 0)
        now_ns = db_ops_wall_ns();
    if (db_is_readonly(db))
        return qt_fail(QT_EREADONLY, db->ro_reason);
    struct ret_plan p = {0};
    struct db_version *v = db_version_get(db);
    int rc = ret_plan(db, v, now_ns, &p);
    db_version_put(v);
    if (rc == 0 && p.nrm > 0) {
        /* flush_mu also keeps a flush from creating a file in a shard
         * directory that ret_rmdirs is about to remove. */
        pthread_mutex_lock(&db->flush_mu);
        uint32_t k = ret_recheck(db, &p, &r);
        rc = k > 0 ? db_ops_commit(db, p.rm, k, NULL, true) : 0;
        for (uint32_t i = 0; i < k; i++)
            db_seg_put(p.rm[i]);
        if (rc == 0 && k > 0)
            ret_rmdirs(db, &p);
        pthread_mutex_unlock(&db->flush_mu);
        if (rc == 0 && k > 0) {
            qt_lc_reset(db->lc); /* cached last points may have been dropped */
            atomic_fetch_add(&db->ops->shards_dropped, r.shards_dropped);
            qt_log(QT_LOG_INFO,
                   "retention: dropped %u shard(s), %u segment(s), %" PRIu64 " points, %" PRIu64
                   " bytes",
                   r.shards_dropped, r.segments_dropped, r.points_dropped, r.bytes_dropped);
        }
    }
    for (uint32_t s = 0; s < p.nshards; s++)
        db_ops_busy_drop(db, p.shards[s]);
    qt_free(p.rm);
    if (res != NULL)
        *res = rc == 0 ? r : (struct qt_retention_result){0};
    return rc;
}
