/*
 * ops.c -- what the operations modules share: the busy-shard set, the
 * segment-set commit (db_ops_commit), retention lookups, and the background
 * thread that drops expired shards and compacts sealed ones (ops.h,
 * ops_int.h, design/ops.md).
 *
 * Invariants:
 *   - every change of the live segment set made here happens with flush_mu
 *     held and commits the MANIFEST before it publishes a version, so the
 *     MANIFEST on disk always describes the published version or the one
 *     about to be published (as in a flush);
 *   - a shard is in ops->busy while a compaction or a retention drop works
 *     on it, and only then;
 *   - the background thread runs only between db_ops_start and db_ops_stop
 *     and never holds ops->mu while it works.
 */
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "ops_int.h"
#include "storage/compact.h"
#include "storage/rollup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

bool
qt_ops_cancelled(const struct qt_ops_ctl *ctl)
{
    return ctl != NULL && ctl->cancel != NULL && atomic_load(ctl->cancel) != 0;
}

void
qt_ops_progress(const struct qt_ops_ctl *ctl, uint64_t done, uint64_t total)
{
    if (ctl != NULL && ctl->progress != NULL)
        ctl->progress(ctl->arg, done, total);
}

int64_t
db_ops_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- whole files ------------------------------------------------------------ */

void
db_ops_file_unload(struct db_ops_file *f)
{
    if (f->mapped)
        munmap(f->buf, f->len);
    else
        qt_free(f->buf);
    memset(f, 0, sizeof(*f));
}

static int
ops_map(const char *path, struct db_ops_file *f)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    void *p = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
    int rc = p == MAP_FAILED ? -errno : 0;
    close(fd);
    if (rc == 0) {
        madvise(p, f->len, MADV_SEQUENTIAL);
        f->buf = p;
        f->mapped = true;
    }
    return rc;
}

int
db_ops_file_load(struct qt_io *io, const char *path, uint64_t inmem_max, struct db_ops_file *f)
{
    qt_assert(io != NULL);
    qt_assert(f != NULL);
    memset(f, 0, sizeof(*f));
    int fd = -1;
    uint64_t size = 0;
    int rc = qt_io_open(io, path, O_RDONLY, 0, &fd);
    if (rc == 0)
        rc = qt_io_size(io, fd, &size);
    f->len = (size_t)size;
    if (rc == 0 && size > inmem_max) {
        rc = ops_map(path, f);
    } else if (rc == 0) {
        f->buf = qt_malloc(f->len + 1);
        rc = f->buf == NULL ? QT_ENOMEM : 0;
        for (uint64_t off = 0; rc == 0 && off < size;) {
            size_t n = size - off < QT_OPS_COPY_BYTES ? (size_t)(size - off) : QT_OPS_COPY_BYTES;
            int64_t got = qt_io_pread(io, fd, f->buf + off, n, off);
            rc = got < 0            ? (int)got
                 : (size_t)got != n ? qt_fail(QT_ETRUNC, "ops: file shorter than its size")
                                    : 0;
            off += n;
        }
    }
    if (fd >= 0)
        qt_io_close(io, fd);
    if (rc != 0)
        db_ops_file_unload(f);
    return rc;
}

/* ---- busy shards --------------------------------------------------------- */

int
db_ops_busy_take(struct qt_db *db, int64_t shard)
{
    struct db_ops *ops = db->ops;
    qt_assert(ops != NULL);
    int rc = 0;
    pthread_mutex_lock(&ops->mu);
    for (uint32_t i = 0; i < ops->nbusy && rc == 0; i++)
        rc = ops->busy[i] == shard ? qt_fail(QT_EBUSY, "ops: another operation works on this shard")
                                   : 0;
    if (rc == 0 && ops->nbusy == QT_OPS_BUSY_MAX)
        rc = qt_fail(QT_EBUSY, "ops: too many shard operations at once (QT_OPS_BUSY_MAX)");
    if (rc == 0)
        ops->busy[ops->nbusy++] = shard;
    pthread_mutex_unlock(&ops->mu);
    return rc;
}

void
db_ops_busy_drop(struct qt_db *db, int64_t shard)
{
    struct db_ops *ops = db->ops;
    pthread_mutex_lock(&ops->mu);
    bool found = false;
    for (uint32_t i = 0; i < ops->nbusy && !found; i++) {
        if (ops->busy[i] == shard) {
            ops->busy[i] = ops->busy[--ops->nbusy];
            found = true;
        }
    }
    pthread_mutex_unlock(&ops->mu);
    qt_assert(found);
}

bool
db_ops_busy(struct qt_db *db, int64_t shard)
{
    struct db_ops *ops = db->ops;
    bool busy = false;
    pthread_mutex_lock(&ops->mu);
    for (uint32_t i = 0; i < ops->nbusy; i++)
        busy = busy || ops->busy[i] == shard;
    pthread_mutex_unlock(&ops->mu);
    return busy;
}

/* ---- commit --------------------------------------------------------------- */

static bool
ops_in(struct db_seg *const *list, uint32_t n, const struct db_seg *s)
{
    for (uint32_t i = 0; i < n; i++) {
        if (list[i] == s)
            return true;
    }
    return false;
}

/* New segment list: v's minus rm, plus add in (shard, seq) order. */
static struct db_seg **
ops_new_list(const struct db_version *v, struct db_seg **rm, uint32_t nrm, struct db_seg *add,
             uint32_t *n)
{
    struct db_seg **segs = qt_calloc(v->nsegs + 2u, sizeof(*segs));
    if (segs == NULL)
        return NULL;
    uint32_t k = 0;
    for (uint32_t i = 0; i < v->nsegs; i++) {
        if (!ops_in(rm, nrm, v->segs[i]))
            segs[k++] = v->segs[i];
    }
    if (add != NULL) {
        uint32_t j = k++;
        while (j > 0 && (segs[j - 1]->m.shard_start_ns > add->m.shard_start_ns ||
                         (segs[j - 1]->m.shard_start_ns == add->m.shard_start_ns &&
                          segs[j - 1]->m.seq > add->m.seq))) {
            segs[j] = segs[j - 1];
            j--;
        }
        segs[j] = add;
    }
    *n = k;
    return segs;
}

static void
ops_publish(struct qt_db *db, struct db_version *nv)
{
    /* As flush_publish: the memtables of the current version carry over.
     * flush_mu (held) keeps a flush from swapping them meanwhile. */
    pthread_rwlock_rdlock(&db->swap_lock);
    struct db_version *cur = db_version_get(db);
    nv->active = cur->active;
    atomic_fetch_add(&nv->active->refs, 1);
    nv->imm = cur->imm;
    if (nv->imm != NULL)
        atomic_fetch_add(&nv->imm->refs, 1);
    db_version_publish(db, nv);
    db_version_put(cur);
    pthread_rwlock_unlock(&db->swap_lock);
}

int
db_ops_commit(struct qt_db *db, struct db_seg **rm, uint32_t nrm, struct db_seg *add,
              bool drop_files)
{
    qt_assert(nrm > 0 || add != NULL);
    qt_assert(add == NULL || atomic_load(&add->refs) == 1);
    struct db_version *v = db_version_get(db);
    int rc = 0;
    for (uint32_t i = 0; i < nrm && rc == 0; i++) {
        if (!ops_in(v->segs, v->nsegs, rm[i]))
            rc = qt_fail(QT_EBUSY, "ops: the shard's segments changed during the operation");
    }
    uint32_t n = 0;
    struct db_seg **segs = rc == 0 ? ops_new_list(v, rm, nrm, add, &n) : NULL;
    struct db_version *nv = rc == 0 ? qt_calloc(1, sizeof(*nv)) : NULL;
    if (rc == 0 && (segs == NULL || nv == NULL))
        rc = QT_ENOMEM;
    struct qt_manifest_hdr hdr = db->mhdr;
    hdr.generation++;
    if (rc == 0) {
        rc = db_manifest_write(db, &hdr, segs, n);
        if (rc != 0) {
            qt_log(QT_LOG_ERROR, "ops: MANIFEST commit failed: %s (%s)", qt_strerror(rc),
                   qt_err_detail());
            db_set_readonly(db, "MANIFEST write failed during compaction, retention or quarantine");
        }
    }
    if (rc != 0) {
        qt_free(segs);
        qt_free(nv);
        db_version_put(v);
        return rc;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (segs[i] != add)
            atomic_fetch_add(&segs[i]->refs, 1);
    }
    atomic_store(&nv->refs, 1);
    nv->segs = segs;
    nv->nsegs = n;
    ops_publish(db, nv);
    for (uint32_t i = 0; drop_files && i < nrm; i++)
        rm[i]->drop_file = true; /* the caller's reference keeps rm[i] alive here */
    db_version_put(v);
    return 0;
}

/* ---- retention lookups ------------------------------------------------------ */

int
db_ops_measurement(const uint8_t *key, size_t len, char *out, size_t cap)
{
    qt_assert(key != NULL);
    qt_assert(out != NULL);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = key[i];
        if (c == '\\' && i + 1 < len && (key[i + 1] == ',' || key[i + 1] == ' '))
            c = key[++i];
        else if (c == ',' || c == ' ')
            break;
        if (n == cap)
            return qt_fail(QT_ELIMIT, "ops: measurement name longer than the buffer");
        out[n++] = (char)c;
    }
    return n == 0 ? qt_fail(QT_ESYNTAX, "ops: group key without a measurement") : (int)n;
}

int64_t
qt_db_retention_for(struct qt_db *db, const char *meas, size_t len)
{
    struct db_ops *ops = db->ops;
    if (ops == NULL)
        return 0;
    int64_t best = 0;
    size_t best_len = 0;
    bool exact = false;
    pthread_mutex_lock(&ops->mu);
    for (uint32_t i = 0; i < ops->nrules && !exact; i++) {
        const struct qt_retention_rule *r = &ops->rules[i];
        size_t rl = strlen(r->measurement);
        if (!r->prefix && rl == len && memcmp(r->measurement, meas, len) == 0) {
            best = r->duration_ns;
            exact = true;
        } else if (r->prefix && rl <= len && memcmp(r->measurement, meas, rl) == 0 &&
                   (best == 0 || rl >= best_len)) {
            best = r->duration_ns;
            best_len = rl;
        }
    }
    pthread_mutex_unlock(&ops->mu);
    return best;
}

int64_t
db_ops_cutoff(struct qt_db *db, const uint8_t *key, size_t len, int64_t now_ns)
{
    char meas[QT_SERIES_KEY_MAX];
    int n = db_ops_measurement(key, len, meas, sizeof(meas));
    if (n <= 0)
        return INT64_MIN; /* not a key we can judge: keep its points */
    int64_t d = qt_db_retention_for(db, meas, (size_t)n);
    if (d <= 0 || now_ns < INT64_MIN + d)
        return INT64_MIN;
    return now_ns - d;
}

/* ---- lifecycle and the background thread ----------------------------------- */

static uint32_t
ops_interval_ms(const struct db_ops *ops)
{
    uint32_t t = ops->idle_ms / 4;
    if (t < QT_OPS_INTERVAL_MIN_MS)
        t = QT_OPS_INTERVAL_MIN_MS;
    return t < QT_OPS_INTERVAL_MS ? t : QT_OPS_INTERVAL_MS;
}

static void *ops_main(void *arg);

int
db_ops_start(struct qt_db *db)
{
    qt_assert(db->ops == NULL);
    struct db_ops *ops = qt_calloc(1, sizeof(*ops));
    if (ops == NULL)
        return QT_ENOMEM;
    pthread_mutex_init(&ops->mu, NULL);
    pthread_cond_init(&ops->cv, NULL);
    ops->idle_ms =
        db->opts.compact_idle_ms != 0 ? db->opts.compact_idle_ms : QT_COMPACT_IDLE_DEFAULT_MS;
    ops->shard_dur = db->mhdr.shard_duration_ns;
    qt_assert(ops->shard_dur > 0);
    db->ops = ops;
    int rc = qt_db_set_retention(db, db->opts.retention, db->opts.n_retention);
    if (rc == 0)
        rc = qt_db_set_rollups(db, db->opts.rollups);
    if (rc != 0)
        return rc;
    if (db->opts.read_only || db->opts.no_background || db->opts.no_auto_ops)
        return 0;
    if (pthread_create(&ops->thr, NULL, ops_main, db) != 0)
        return qt_fail(QT_ENOMEM, "ops: cannot start the background thread");
    ops->running = true;
    return 0;
}

void
db_ops_stop(struct qt_db *db)
{
    struct db_ops *ops = db->ops;
    if (ops == NULL)
        return;
    pthread_mutex_lock(&ops->mu);
    ops->stop = true;
    atomic_store(&ops->cancel, 1);
    pthread_cond_broadcast(&ops->cv);
    pthread_mutex_unlock(&ops->mu);
    if (ops->running)
        pthread_join(ops->thr, NULL);
    qt_assert(ops->nbusy == 0);
    for (uint32_t i = 0; i < ops->nrules; i++)
        qt_free((char *)ops->rules[i].measurement);
    qt_free(ops->rules);
    pthread_cond_destroy(&ops->cv);
    pthread_mutex_destroy(&ops->mu);
    qt_free(ops);
    db->ops = NULL;
}

void
qt_db_ops_kick(struct qt_db *db)
{
    struct db_ops *ops = db->ops;
    pthread_mutex_lock(&ops->mu);
    ops->kick = true;
    pthread_cond_broadcast(&ops->cv);
    pthread_mutex_unlock(&ops->mu);
}

void
qt_db_ops_stats(struct qt_db *db, struct qt_ops_stats *out)
{
    struct db_ops *ops = db->ops;
    memset(out, 0, sizeof(*out));
    if (ops == NULL)
        return;
    out->compactions = atomic_load(&ops->compactions);
    out->compact_points_in = atomic_load(&ops->cpoints_in);
    out->compact_points_out = atomic_load(&ops->cpoints_out);
    out->compact_points_trimmed = atomic_load(&ops->cpoints_trimmed);
    out->compact_bytes_in = atomic_load(&ops->cbytes_in);
    out->compact_bytes_out = atomic_load(&ops->cbytes_out);
    out->compact_failures = atomic_load(&ops->cfailures);
    out->shards_dropped = atomic_load(&ops->shards_dropped);
    out->background_runs = atomic_load(&ops->runs);
}

static uint32_t
ops_nrules(struct db_ops *ops)
{
    pthread_mutex_lock(&ops->mu);
    uint32_t n = ops->nrules;
    pthread_mutex_unlock(&ops->mu);
    return n;
}

/* Shards worth compacting now: sealed (ended, idle) with >= 2 segments, or
 * with at least 1/QT_RETENTION_TRIM_FRACTION of their points expired. */
static uint32_t
ops_candidates(struct qt_db *db, int64_t now, int64_t *out, uint32_t cap)
{
    struct db_version *v = db_version_get(db);
    int64_t idle_ns = (int64_t)db->ops->idle_ms * 1000000;
    int64_t dur = db->ops->shard_dur;
    uint32_t n = 0;
    for (uint32_t i = 0; i < v->nsegs && n < cap;) {
        int64_t shard = v->segs[i]->m.shard_start_ns, newest = 0;
        uint64_t points = 0;
        bool damaged = false;
        uint32_t j = i;
        for (; j < v->nsegs && v->segs[j]->m.shard_start_ns == shard; j++) {
            const struct db_seg *s = v->segs[j];
            damaged = damaged || s->r == NULL;
            int64_t created = s->r != NULL ? qt_segr_header(s->r)->created_ns : 0;
            newest = created > newest ? created : newest;
            points += s->m.points;
        }
        bool sealed = now - newest >= idle_ns && (shard > INT64_MAX - dur || now >= shard + dur);
        bool want = j - i >= 2;
        if (!want && sealed && !damaged && ops_nrules(db->ops) > 0) {
            uint64_t exp = db_ops_expired_points(db, v, shard, now);
            want = exp > 0 && exp * QT_RETENTION_TRIM_FRACTION >= points;
        }
        if (sealed && !damaged && want && !db_ops_busy(db, shard))
            out[n++] = shard;
        i = j;
    }
    db_version_put(v);
    return n;
}

static void
ops_pass(struct qt_db *db)
{
    struct db_ops *ops = db->ops;
    atomic_fetch_add(&ops->runs, 1);
    int64_t now = db_ops_wall_ns();
    if (ops_nrules(ops) > 0) {
        int rc = qt_db_apply_retention(db, now, NULL);
        if (rc != 0 && rc != QT_EREADONLY)
            qt_log(QT_LOG_WARN, "ops: retention pass: %s (%s)", qt_strerror(rc), qt_err_detail());
    }
    int64_t cand[QT_OPS_PASS_SHARDS_MAX];
    uint32_t n = ops_candidates(db, now, cand, QT_OPS_PASS_SHARDS_MAX);
    for (uint32_t i = 0; i < n && !atomic_load(&ops->cancel) && !db_is_readonly(db); i++) {
        struct qt_compact_opts o = {
            .shard_start = cand[i], .now_ns = now, .ctl = {.cancel = &ops->cancel}};
        struct qt_compact_result r;
        int rc = qt_db_compact(db, &o, &r);
        if (rc != 0 && rc != QT_EBUSY && rc != QT_ECLOSED)
            qt_log(QT_LOG_WARN, "ops: background compaction of shard %" PRId64 ": %s (%s)", cand[i],
                   qt_strerror(rc), qt_err_detail());
    }
    /* Rollups last: a shard compacted above keeps its record (carried), a
     * shard with late data or trimmed raw points is recomputed. */
    if (!atomic_load(&ops->cancel) && !db_is_readonly(db)) {
        struct qt_rollup_result rr;
        int rc = qt_db_rollup(db, now, &rr);
        if (rc != 0 && rc != QT_EREADONLY)
            qt_log(QT_LOG_WARN, "ops: background rollup: %s (%s)", qt_strerror(rc),
                   qt_err_detail());
        else if (rr.shards > 0)
            qt_log(QT_LOG_INFO, "ops: rolled up %u shard(s), %" PRIu64 " bucket points", rr.shards,
                   rr.buckets);
    }
}

static void *
ops_main(void *arg)
{
    struct qt_db *db = arg;
    struct db_ops *ops = db->ops;
    pthread_mutex_lock(&ops->mu);
    while (!ops->stop) {
        if (!ops->kick) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)ops_interval_ms(ops) * 1000000u;
            until.tv_sec += (time_t)(ns / 1000000000u);
            until.tv_nsec = (long)(ns % 1000000000u);
            pthread_cond_timedwait(&ops->cv, &ops->mu, &until);
        }
        if (ops->stop)
            break;
        ops->kick = false;
        pthread_mutex_unlock(&ops->mu);
        if (!db_is_readonly(db))
            ops_pass(db);
        pthread_mutex_lock(&ops->mu);
    }
    pthread_mutex_unlock(&ops->mu);
    return NULL;
}
