/*
 * db.c -- engine open/recovery, versions, write path, close (see db.h and
 * db_int.h; DESIGN.md "Storage engine").
 *
 * Recovery at open, in order:
 *   1. lock DIR/LOCK (flock), so two processes never share a directory;
 *   2. read MANIFEST (absent: a new database);
 *   3. delete files under shards/ that the MANIFEST does not list (left by a
 *      flush or compaction that crashed before its manifest commit);
 *   4. open the catalog (cuts a torn tail);
 *   5. open every listed segment; one that fails validation is reported with
 *      path and offset and left out (the rest of the database serves);
 *   6. replay the WAL after the manifest's checkpoint into a memtable,
 *      cutting a torn tail of the last WAL file;
 *   7. open a new WAL file and start the flusher.
 */
#include "db_int.h"
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "format/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t
db_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
db_ts_storable(int64_t ts, int64_t dur)
{
    qt_assert(dur > 0);
    /* The shard [start, start + dur) must be representable: start >=
     * INT64_MIN (floor division stays in range) and start + dur does not
     * overflow.  That excludes one shard's worth at each end of int64
     * (before 1677-09-22 and after 2262-04-10 with day shards). */
    if (ts < INT64_MIN + dur)
        return false;
    return ts < (INT64_MAX / dur) * dur;
}

int64_t
db_shard_start(int64_t ts, int64_t dur)
{
    qt_assert(dur > 0);
    qt_assert(db_ts_storable(ts, dur));
    int64_t q = ts / dur;
    if (ts % dur != 0 && ts < 0)
        q--;
    return q * dur;
}

int
db_shard_dir(const struct qt_db *db, int64_t shard_start, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/shards/%" PRId64, db->dir, shard_start);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int
db_seg_path(const struct qt_db *db, int64_t shard_start, uint64_t seq, const char *suffix,
            char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/shards/%" PRId64 "/%020" PRIu64 ".qts%s", db->dir, shard_start,
                     seq, suffix);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* out = a "/" b; -ENAMETOOLONG if it does not fit.  The data directory is
 * limited to PATH_MAX - 64 bytes at open, so joins with the engine's own
 * short names always fit; names read from directories are checked. */
static int
db_join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* ---- versions ----------------------------------------------------------- */

int
db_mem_new(struct db_mem **out)
{
    struct db_mem *m = qt_calloc(1, sizeof(*m));
    if (m == NULL)
        return QT_ENOMEM;
    int rc = qt_mem_create(&m->m);
    if (rc != 0) {
        qt_free(m);
        return rc;
    }
    atomic_store(&m->refs, 1);
    m->created_ms = db_now_ms();
    *out = m;
    return 0;
}

void
db_mem_put(struct db_mem *m)
{
    if (m == NULL || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    qt_mem_destroy(m->m);
    qt_free(m);
}

void
db_seg_put(struct db_seg *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    qt_segr_close(s->r);
    if (s->drop_file)
        unlink(s->path);
    qt_free(s);
}

void
db_version_put(struct db_version *v)
{
    if (v == NULL || atomic_fetch_sub(&v->refs, 1) != 1)
        return;
    db_mem_put(v->active);
    db_mem_put(v->imm);
    for (uint32_t i = 0; i < v->nsegs; i++)
        db_seg_put(v->segs[i]);
    qt_free(v->segs);
    qt_free(v);
}

struct db_version *
db_version_get(struct qt_db *db)
{
    pthread_mutex_lock(&db->ver_mu);
    struct db_version *v = db->ver;
    atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&db->ver_mu);
    return v;
}

void
db_version_publish(struct qt_db *db, struct db_version *v)
{
    qt_assert(v != NULL);
    qt_assert(v->active != NULL);
    pthread_mutex_lock(&db->ver_mu);
    struct db_version *old = db->ver;
    db->ver = v;
    pthread_mutex_unlock(&db->ver_mu);
    db_version_put(old);
}

void
db_set_readonly(struct qt_db *db, const char *reason)
{
    pthread_mutex_lock(&db->state_mu);
    if (!db->read_only) {
        db->read_only = true;
        db->ro_reason = reason;
        qt_log(QT_LOG_ERROR, "db: %s: database is now read-only: %s", db->dir, reason);
    }
    pthread_cond_broadcast(&db->state_cv);
    pthread_mutex_unlock(&db->state_mu);
}

bool
db_is_readonly(struct qt_db *db)
{
    pthread_mutex_lock(&db->state_mu);
    bool ro = db->read_only;
    pthread_mutex_unlock(&db->state_mu);
    return ro;
}

/* ---- open ---------------------------------------------------------------- */

static int
db_lock_dir(struct qt_db *db)
{
    char path[PATH_MAX];
    db_join(path, sizeof(path), db->dir, "LOCK");
    db->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (db->lock_fd < 0)
        return -errno;
    if (flock(db->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int rc = errno == EWOULDBLOCK ? qt_fail(QT_EBUSY, "db: directory is in use by another "
                                                          "process")
                                      : -errno;
        close(db->lock_fd);
        db->lock_fd = -1;
        return rc;
    }
    return 0;
}

/* Create dir (and make its name durable in the parent). */
static int
db_mkdir(struct qt_db *db, const char *path)
{
    int rc = qt_io_mkdir(db->io, path, 0755);
    if (rc == -EEXIST)
        return 0;
    if (rc != 0)
        return rc;
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash != NULL && slash != parent)
        *slash = '\0';
    else
        snprintf(parent, sizeof(parent), ".");
    return qt_io_fsync_dir(db->io, parent);
}

static int
db_read_manifest(struct qt_db *db, struct qt_manifest_seg **segs)
{
    char path[PATH_MAX];
    db_join(path, sizeof(path), db->dir, "MANIFEST");
    *segs = NULL;
    int fd = -1;
    int rc = qt_io_open(db->io, path, O_RDONLY, 0, &fd);
    if (rc == -ENOENT) {
        db->mhdr = (struct qt_manifest_hdr){.next_segment_seq = 1,
                                            .shard_duration_ns = db->opts.shard_duration_ns};
        return 0;
    }
    if (rc != 0)
        return rc;
    uint64_t size = 0;
    uint8_t *buf = NULL;
    rc = qt_io_size(db->io, fd, &size);
    if (rc == 0 && size > qt_manifest_bound(QT_MANIFEST_SEGMENTS_MAX))
        rc = qt_fail(QT_ECORRUPT, "db: MANIFEST larger than any valid one");
    if (rc == 0 && (buf = qt_malloc(size + 1)) == NULL)
        rc = QT_ENOMEM;
    if (rc == 0) {
        int64_t got = qt_io_pread(db->io, fd, buf, size, 0);
        rc = got < 0 ? (int)got : (uint64_t)got != size ? -EIO : 0;
    }
    if (rc == 0)
        rc = qt_manifest_decode_header(buf, size, &db->mhdr);
    if (rc == 0 && (*segs = qt_calloc(db->mhdr.n_segments + 1u, sizeof(**segs))) == NULL)
        rc = QT_ENOMEM;
    if (rc == 0)
        rc = qt_manifest_decode(buf, size, &db->mhdr, *segs, db->mhdr.n_segments);
    if (rc != 0)
        qt_log(QT_LOG_ERROR, "db: %s: %s (%s)", path, qt_strerror(rc), qt_err_detail());
    qt_free(buf);
    qt_io_close(db->io, fd);
    return rc;
}

static bool
db_listed(const struct qt_manifest_seg *segs, uint32_t n, int64_t shard, uint64_t seq)
{
    for (uint32_t i = 0; i < n; i++) {
        if (segs[i].shard_start_ns == shard && segs[i].seq == seq)
            return true;
    }
    return false;
}

/* Remove files in one shard directory that the manifest does not list. */
static void
db_clean_shard(struct qt_db *db, const char *sdir, int64_t shard,
               const struct qt_manifest_seg *segs, uint32_t n)
{
    DIR *d = opendir(sdir);
    if (d == NULL)
        return;
    struct dirent *e;
    uint32_t kept = 0, removed = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *end = NULL;
        unsigned long long seq = strtoull(e->d_name, &end, 10);
        if (end == e->d_name + 20 && strcmp(end, ".qts") == 0 && db_listed(segs, n, shard, seq)) {
            kept++;
            continue;
        }
        char path[PATH_MAX];
        if (db_join(path, sizeof(path), sdir, e->d_name) != 0)
            continue;
        qt_log(QT_LOG_WARN, "db: removing %s: not in MANIFEST (interrupted flush or compaction)",
               path);
        removed += qt_io_unlink(db->io, path) == 0;
    }
    closedir(d);
    if (kept == 0)
        qt_io_rmdir(db->io, sdir);
    if (removed > 0 || kept == 0) {
        char parent[PATH_MAX];
        db_join(parent, sizeof(parent), db->dir, "shards");
        qt_io_fsync_dir(db->io, kept == 0 ? parent : sdir);
    }
}

static void
db_clean_strays(struct qt_db *db, const struct qt_manifest_seg *segs, uint32_t n)
{
    char shards[PATH_MAX];
    db_join(shards, sizeof(shards), db->dir, "shards");
    DIR *d = opendir(shards);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end = NULL;
        errno = 0;
        long long shard = strtoll(e->d_name, &end, 10);
        if (e->d_name[0] == '.' || errno != 0 || *end != '\0')
            continue;
        char sdir[PATH_MAX];
        if (db_join(sdir, sizeof(sdir), shards, e->d_name) != 0)
            continue;
        db_clean_shard(db, sdir, shard, segs, n);
    }
    closedir(d);
}

static int
db_open_segments(struct qt_db *db, const struct qt_manifest_seg *ms, uint32_t n,
                 struct db_version *v)
{
    v->segs = qt_calloc(n + 1u, sizeof(*v->segs));
    if (v->segs == NULL)
        return QT_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        struct db_seg *s = qt_calloc(1, sizeof(*s));
        if (s == NULL)
            return QT_ENOMEM;
        atomic_store(&s->refs, 1);
        s->m = ms[i];
        int rc = db_seg_path(db, ms[i].shard_start_ns, ms[i].seq, "", s->path, sizeof(s->path));
        if (rc == 0)
            rc = qt_segr_open(db->io, s->path, ms[i].file_bytes, &s->r);
        if (rc != 0) {
            /* Keep the entry (the MANIFEST still lists it) but serve without it. */
            qt_log(QT_LOG_ERROR, "db: segment %s unreadable (%s: %s); serving without it", s->path,
                   qt_strerror(rc), qt_err_detail());
            s->r = NULL;
            db->damaged++;
        }
        v->segs[v->nsegs++] = s;
    }
    return 0;
}

/* ---- replay --------------------------------------------------------------- */

struct db_replay {
    struct qt_db *db;
    struct qt_memtable *m;
    uint64_t points;
};

static int db_resolve_line(struct qt_db *db, const struct qt_batch_line *l, uint32_t *sids);

static int
db_replay_record(void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    struct db_replay *r = arg;
    uint32_t nl = 0, nf = 0;
    int rc = qt_batch_peek(payload, len, &nl, &nf);
    struct qt_batch_line *lines = NULL;
    struct qt_batch_field *fields = NULL;
    uint32_t *sids = NULL;
    if (rc == 0) {
        lines = qt_malloc((nl + 1u) * sizeof(*lines));
        fields = qt_malloc((nf + 1u) * sizeof(*fields));
        sids = qt_malloc((nf + 1u) * sizeof(*sids));
        rc = lines == NULL || fields == NULL || sids == NULL ? QT_ENOMEM : 0;
    }
    if (rc == 0)
        rc = qt_batch_decode(payload, len, lines, nl, fields, nf, &nl, &nf);
    uint32_t off = 0;
    for (uint32_t i = 0; rc == 0 && i < nl; i++) {
        rc = db_resolve_line(r->db, &lines[i], sids + off);
        if (rc == 0)
            rc = db_apply(r->db, r->m, seq, &lines[i], 1, sids + off);
        off += lines[i].n_fields;
        r->points += lines[i].n_fields;
    }
    if (rc != 0 && rc != QT_ENOMEM) {
        /* The record passed its checksum, so this is a bug or a catalog
         * problem; report and keep the rest of the log. */
        qt_log(QT_LOG_ERROR, "db: WAL record %" PRIu64 " not applied: %s (%s)", seq,
               qt_strerror(rc), qt_err_detail());
        rc = 0;
    }
    qt_free(lines);
    qt_free(fields);
    qt_free(sids);
    return rc;
}

static int
db_recover(struct qt_db *db, struct db_version *v, uint64_t *next_seq)
{
    char waldir[PATH_MAX];
    db_join(waldir, sizeof(waldir), db->dir, "wal");
    struct db_replay r = {.db = db, .m = v->active->m};
    struct qt_wlog_replay_stats st;
    int64_t t0 = db_now_ms();
    int rc = qt_wlog_replay(db->io, waldir, db->mhdr.wal_checkpoint, !db->opts.read_only,
                            db_replay_record, &r, &st);
    if (rc != 0)
        return rc;
    db->replay_records = st.records;
    db->replay_points = r.points;
    db->replay_ns = (uint64_t)(db_now_ms() - t0) * 1000000u;
    db->replay_torn_bytes = st.torn_bytes;
    uint64_t last = st.last_seq > db->mhdr.wal_checkpoint ? st.last_seq : db->mhdr.wal_checkpoint;
    *next_seq = last + 1;
    if (st.records > 0 || st.torn_bytes > 0)
        qt_log(QT_LOG_INFO,
               "db: replayed %" PRIu64 " WAL records (%" PRIu64 " points) from %" PRIu64
               " files; %" PRIu64 " torn bytes cut, %" PRIu64 " damaged records",
               st.records, r.points, st.files, st.torn_bytes, st.corrupt_records);
    return 0;
}

static void *db_flusher_main(void *arg);

static int
db_open_io(struct qt_db *db)
{
    if (db->opts.io != NULL) {
        db->io = db->opts.io;
        return 0;
    }
    db->own_io = true;
    return qt_io_create(db->opts.io_kind, NULL, &db->io);
}

static void
db_defaults(struct qt_db_opts *o)
{
    if (o->mem_budget_bytes == 0)
        o->mem_budget_bytes = QT_MEM_BUDGET_DEFAULT;
    if (o->flush_age_ms == 0)
        o->flush_age_ms = QT_FLUSH_AGE_DEFAULT_MS;
    if (o->shard_duration_ns <= 0)
        o->shard_duration_ns = QT_SHARD_DURATION_DEFAULT;
}

static int
db_open_storage(struct qt_db *db)
{
    int rc = db_mkdir(db, db->dir);
    if (rc == 0)
        rc = db_lock_dir(db);
    char sub[PATH_MAX];
    db_join(sub, sizeof(sub), db->dir, "shards");
    if (rc == 0)
        rc = db_mkdir(db, sub);
    struct qt_manifest_seg *ms = NULL;
    if (rc == 0)
        rc = db_read_manifest(db, &ms);
    if (rc == 0 && !db->opts.read_only)
        db_clean_strays(db, ms, db->mhdr.n_segments);
    struct qt_catalog_opts co = {
        .io = db->io, .series_max = db->opts.series_max, .durable_size = db->mhdr.catalog_bytes};
    if (rc == 0)
        rc = qt_catalog_open(db->dir, &co, &db->cat);
    if (rc == 0)
        rc = qt_lc_create(&db->lc);
    struct db_version *v = NULL;
    if (rc == 0 && (v = qt_calloc(1, sizeof(*v))) == NULL)
        rc = QT_ENOMEM;
    if (rc == 0) {
        atomic_store(&v->refs, 1);
        db->ver = v;
        rc = db_mem_new(&v->active);
    }
    if (rc == 0)
        rc = db_open_segments(db, ms, db->mhdr.n_segments, v);
    qt_free(ms);
    return rc;
}

static int
db_start(struct qt_db *db)
{
    uint64_t next_seq = 1;
    int rc = db_recover(db, db->ver, &next_seq);
    if (rc != 0 || db->opts.read_only)
        return rc;
    char waldir[PATH_MAX];
    db_join(waldir, sizeof(waldir), db->dir, "wal");
    struct qt_wlog_opts wo = {.policy = db->opts.fsync, .interval_ms = db->opts.fsync_interval_ms};
    rc = qt_wlog_open(db->io, waldir, &wo, next_seq, &db->wal);
    if (rc != 0 || db->opts.no_background)
        return rc;
    if (pthread_create(&db->flusher, NULL, db_flusher_main, db) != 0)
        return QT_ENOMEM;
    db->flusher_running = true;
    return 0;
}

int
qt_db_open(const struct qt_db_opts *opts, struct qt_db **out)
{
    qt_assert(opts != NULL);
    qt_assert(out != NULL);
    if (opts->dir == NULL || strlen(opts->dir) >= PATH_MAX - 64)
        return qt_fail(QT_EINVAL, "db: data directory path missing or too long");
    struct qt_db *db = qt_calloc(1, sizeof(*db));
    if (db == NULL)
        return QT_ENOMEM;
    db->opts = *opts;
    db_defaults(&db->opts);
    snprintf(db->dir, sizeof(db->dir), "%s", opts->dir);
    db->opts.dir = db->dir;
    db->lock_fd = -1;
    pthread_mutex_init(&db->flush_mu, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Writer preference: a waiting flush must not starve behind a stream
     * of ingest threads holding the lock shared. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&db->swap_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&db->ver_mu, NULL);
    pthread_mutex_init(&db->state_mu, NULL);
    pthread_cond_init(&db->state_cv, NULL);
    db->ro_reason = "";
    int rc = db_open_io(db);
    if (rc == 0)
        rc = db_open_storage(db);
    if (rc == 0)
        rc = db_start(db);
    if (rc == 0)
        rc = db_ops_start(db);
    if (rc != 0) {
        qt_log(QT_LOG_ERROR, "db: open %s: %s (%s)", db->dir, qt_strerror(rc), qt_err_detail());
        db->opts.read_only = true; /* close must not flush a half-open db */
        qt_db_close(db);
        return rc;
    }
    if (db->opts.read_only)
        db_set_readonly(db, "opened read-only");
    *out = db;
    return 0;
}

/* ---- write ------------------------------------------------------------------ */

/* Series key "<group key> <escaped field>" into out; returns its length or
 * a negative error. */
static int
db_series_key(const struct qt_batch_line *l, const struct qt_batch_field *f, char *out, size_t cap)
{
    size_t n = 0;
    if (l->key_len + 2 > cap)
        return qt_fail(QT_ELIMIT, "series key longer than QT_SERIES_KEY_MAX");
    memcpy(out, l->key, l->key_len);
    n = l->key_len;
    out[n++] = ' ';
    for (uint32_t i = 0; i < f->name_len; i++) {
        char c = f->name[i];
        if (c == '\0' || c == '\n' || c == '\r')
            return qt_fail(QT_EINVAL, "field name contains NUL, CR or LF");
        if (n + 2 > cap)
            return qt_fail(QT_ELIMIT, "series key longer than QT_SERIES_KEY_MAX");
        if (c == ',' || c == '=' || c == ' ')
            out[n++] = '\\';
        out[n++] = c;
    }
    if (f->name_len > 0 && f->name[f->name_len - 1] == '\\')
        return qt_fail(QT_EINVAL, "field name ends in a backslash");
    return (int)n;
}

/* Resolve every field of l to a sid (creating series as needed). */
static int
db_resolve_line(struct qt_db *db, const struct qt_batch_line *l, uint32_t *sids)
{
    char key[QT_SERIES_KEY_MAX + 1];
    int rc = qt_batch_line_check(l);
    if (rc != 0)
        return rc;
    if (!db_ts_storable(l->ts, db->mhdr.shard_duration_ns))
        return qt_fail(QT_ELIMIT, "timestamp outside the storable range (1677-09-22 .. 2262-04-10 "
                                  "with day shards)");
    uint32_t gid = UINT32_MAX;
    for (uint32_t k = 0; k < l->n_fields; k++) {
        int n = db_series_key(l, &l->fields[k], key, QT_SERIES_KEY_MAX);
        if (n < 0)
            return n;
        rc = qt_catalog_get_or_create(db->cat, (const uint8_t *)key, (size_t)n, l->fields[k].vtype,
                                      &sids[k]);
        if (rc != 0)
            return rc;
        struct qt_catalog_series si;
        rc = qt_catalog_series_info(db->cat, sids[k], &si);
        if (rc != 0)
            return rc;
        qt_assert(gid == UINT32_MAX || gid == si.gid);
        gid = si.gid;
    }
    return 0;
}

int
db_apply(struct qt_db *db, struct qt_memtable *m, uint64_t seq, const struct qt_batch_line *lines,
         uint32_t n, const uint32_t *sids)
{
    struct qt_mem_cell cells[QT_FIELDS_MAX];
    uint32_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct qt_batch_line *l = &lines[i];
        qt_assert(l->n_fields <= QT_FIELDS_MAX);
        struct qt_catalog_series si;
        int rc = qt_catalog_series_info(db->cat, sids[off], &si);
        if (rc != 0)
            return rc;
        for (uint32_t k = 0; k < l->n_fields; k++) {
            const struct qt_batch_field *f = &l->fields[k];
            struct qt_mem_cell *c = &cells[k];
            memset(c, 0, sizeof(*c));
            c->sid = sids[off + k];
            c->vtype = (uint8_t)f->vtype;
            if (f->vtype == QT_VT_FLOAT)
                c->v.f = f->v.f;
            else if (f->vtype == QT_VT_INT)
                c->v.i = f->v.i;
            else if (f->vtype == QT_VT_BOOL)
                c->v.i = f->v.b;
            else
                c->str = f->v.s;
        }
        rc = qt_mem_append(m, si.gid, seq, l->ts, cells, l->n_fields);
        if (rc != 0)
            return rc;
        for (uint32_t k = 0; k < l->n_fields; k++)
            qt_lc_observe(db->lc, cells[k].sid, l->ts, cells[k].vtype, &cells[k].v, &cells[k].str);
        off += l->n_fields;
    }
    return 0;
}

/* Backpressure: wait while the memtable is over twice its budget and a
 * flush is already running; ask for a flush when over budget. */
static void
db_wait_for_room(struct qt_db *db)
{
    struct db_version *v = db_version_get(db);
    size_t bytes = qt_mem_bytes(v->active->m);
    bool flushing = v->imm != NULL && bytes >= 2 * db->opts.mem_budget_bytes;
    db_version_put(v);
    if (bytes < db->opts.mem_budget_bytes)
        return;
    if (!db->flusher_running) {
        if (!db_is_readonly(db))
            db_flush_once(db);
        return;
    }
    pthread_mutex_lock(&db->state_mu);
    db->flush_wanted = true;
    pthread_cond_broadcast(&db->state_cv);
    while (flushing && !db->read_only && !db->stop) {
        pthread_cond_wait(&db->state_cv, &db->state_mu);
        pthread_mutex_unlock(&db->state_mu);
        v = db_version_get(db);
        flushing = v->imm != NULL && qt_mem_bytes(v->active->m) >= 2 * db->opts.mem_budget_bytes;
        db_version_put(v);
        pthread_mutex_lock(&db->state_mu);
    }
    pthread_mutex_unlock(&db->state_mu);
}

/* WAL-append and apply accepted lines [0, n) (one record). */
static int
db_commit(struct qt_db *db, const struct qt_batch_line *lines, uint32_t n, const uint32_t *sids)
{
    size_t size = qt_batch_size(lines, n);
    uint8_t *payload = qt_malloc(size + 1);
    if (payload == NULL)
        return QT_ENOMEM;
    size_t len = 0;
    int rc = qt_batch_encode(lines, n, payload, size, &len);
    if (rc != 0) {
        qt_free(payload);
        return rc;
    }
    pthread_rwlock_rdlock(&db->swap_lock);
    uint64_t seq = 0;
    rc = qt_wlog_append(db->wal, payload, len, &seq);
    if (rc == 0) {
        pthread_mutex_lock(&db->ver_mu);
        struct qt_memtable *m = db->ver->active->m;
        pthread_mutex_unlock(&db->ver_mu);
        rc = db_apply(db, m, seq, lines, n, sids);
        if (rc != 0)
            db_set_readonly(db, "memtable insert failed after the WAL append");
    } else if (qt_wlog_failed(db->wal)) {
        db_set_readonly(db, "WAL write or fsync failed");
    }
    pthread_rwlock_unlock(&db->swap_lock);
    qt_free(payload);
    return rc;
}

/* Accepted lines are committed in records of at most this many bytes. */
#define DB_RECORD_TARGET (QT_WAL_PAYLOAD_MAX / 2)

int
qt_db_write(struct qt_db *db, const struct qt_batch_line *lines, uint32_t n, qt_db_reject_fn reject,
            void *arg, struct qt_write_result *res)
{
    qt_assert(db != NULL);
    qt_assert(n == 0 || lines != NULL);
    struct qt_write_result r = {0};
    if (db_is_readonly(db)) {
        if (res != NULL)
            *res = r;
        return qt_fail(QT_EREADONLY, db->ro_reason);
    }
    db_wait_for_room(db);
    uint32_t nf = 0;
    for (uint32_t i = 0; i < n; i++)
        nf += lines[i].n_fields;
    uint32_t *sids = qt_malloc((nf + 1u) * sizeof(*sids));
    struct qt_batch_line *ok = qt_malloc((n + 1u) * sizeof(*ok));
    if (sids == NULL || ok == NULL) {
        qt_free(sids);
        qt_free(ok);
        return QT_ENOMEM;
    }
    int rc = 0;
    uint32_t nok = 0, sid_off = 0, rec_start = 0, rec_sid = 0;
    size_t rec_bytes = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        int lrc = db_resolve_line(db, &lines[i], sids + sid_off);
        if (lrc != 0) {
            if (reject != NULL)
                reject(arg, i, lrc, qt_err_detail()[0] ? qt_err_detail() : qt_strerror(lrc));
            r.lines_rejected++;
            continue;
        }
        size_t lb = qt_batch_size(&lines[i], 1);
        if (nok > rec_start && rec_bytes + lb > DB_RECORD_TARGET) {
            rc = db_commit(db, ok + rec_start, nok - rec_start, sids + rec_sid);
            rec_start = nok;
            rec_sid = sid_off;
            rec_bytes = 0;
        }
        ok[nok++] = lines[i];
        rec_bytes += lb;
        sid_off += lines[i].n_fields;
        r.points += lines[i].n_fields;
    }
    if (rc == 0 && nok > rec_start)
        rc = db_commit(db, ok + rec_start, nok - rec_start, sids + rec_sid);
    r.lines_ok = rc == 0 ? nok : 0;
    atomic_fetch_add(&db->lines_written, r.lines_ok);
    atomic_fetch_add(&db->points_written, rc == 0 ? r.points : 0);
    atomic_fetch_add(&db->lines_rejected, r.lines_rejected);
    qt_free(sids);
    qt_free(ok);
    if (res != NULL)
        *res = r;
    return rc;
}

/* ---- background flush ------------------------------------------------------ */

static bool
db_flush_due(struct qt_db *db)
{
    struct db_version *v = db_version_get(db);
    bool due = qt_mem_rows(v->active->m) > 0 &&
               (qt_mem_bytes(v->active->m) >= db->opts.mem_budget_bytes ||
                db_now_ms() - v->active->created_ms >= (int64_t)db->opts.flush_age_ms);
    db_version_put(v);
    return due;
}

static void *
db_flusher_main(void *arg)
{
    struct qt_db *db = arg;
    pthread_mutex_lock(&db->state_mu);
    while (!db->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        if (!db->flush_wanted)
            pthread_cond_timedwait(&db->state_cv, &db->state_mu, &until);
        bool wanted = db->flush_wanted;
        db->flush_wanted = false;
        if (db->stop || db->read_only)
            continue;
        pthread_mutex_unlock(&db->state_mu);
        if (wanted || db_flush_due(db))
            db_flush_once(db);
        pthread_mutex_lock(&db->state_mu);
        pthread_cond_broadcast(&db->state_cv); /* wake writers waiting for room */
    }
    pthread_mutex_unlock(&db->state_mu);
    return NULL;
}

int
qt_db_flush(struct qt_db *db)
{
    if (db_is_readonly(db))
        return qt_fail(QT_EREADONLY, db->ro_reason);
    return db_flush_once(db);
}

int
qt_db_sync(struct qt_db *db)
{
    if (db->wal == NULL)
        return 0;
    int rc = qt_wlog_sync(db->wal);
    if (rc != 0)
        db_set_readonly(db, "WAL fsync failed");
    return rc;
}

/* ---- close, accessors -------------------------------------------------------- */

int
qt_db_close(struct qt_db *db)
{
    if (db == NULL)
        return 0;
    db_ops_stop(db); /* before the flusher: a compaction commit needs flush_mu */
    pthread_mutex_lock(&db->state_mu);
    db->stop = true;
    pthread_cond_broadcast(&db->state_cv);
    pthread_mutex_unlock(&db->state_mu);
    if (db->flusher_running)
        pthread_join(db->flusher, NULL);
    int rc = 0;
    if (!db->opts.read_only && !db_is_readonly(db) && db->wal != NULL)
        rc = db_flush_once(db);
    int rc2 = qt_wlog_close(db->wal);
    rc = rc != 0 ? rc : (db_is_readonly(db) ? 0 : rc2);
    rc2 = qt_catalog_close(db->cat);
    rc = rc != 0 ? rc : rc2;
    db_version_put(db->ver);
    qt_lc_destroy(db->lc);
    if (db->lock_fd >= 0)
        close(db->lock_fd); /* releases the flock */
    if (db->own_io)
        qt_io_destroy(db->io);
    pthread_cond_destroy(&db->state_cv);
    pthread_mutex_destroy(&db->state_mu);
    pthread_mutex_destroy(&db->ver_mu);
    pthread_rwlock_destroy(&db->swap_lock);
    pthread_mutex_destroy(&db->flush_mu);
    db_rollup_free(db->rollup);
    qt_free(db);
    return rc;
}

int64_t
qt_db_shard_duration(const struct qt_db *db)
{
    return db->mhdr.shard_duration_ns;
}

struct qt_catalog *
qt_db_catalog(struct qt_db *db)
{
    return db->cat;
}

struct qt_io *
qt_db_io(struct qt_db *db)
{
    return db->io;
}

const char *
qt_db_dir(const struct qt_db *db)
{
    return db->dir;
}

void
qt_db_health(struct qt_db *db, struct qt_db_health *h)
{
    pthread_mutex_lock(&db->state_mu);
    h->read_only = db->read_only;
    h->reason = db->ro_reason;
    pthread_mutex_unlock(&db->state_mu);
    h->io_backend = qt_io_name(db->io);
    h->fsync_policy = db->opts.fsync == QT_FSYNC_ALWAYS     ? "always"
                      : db->opts.fsync == QT_FSYNC_INTERVAL ? "interval"
                                                            : "none";
    h->damaged_segments = db->damaged;
}

void
qt_db_stats(struct qt_db *db, struct qt_db_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->lines_written = atomic_load(&db->lines_written);
    s->points_written = atomic_load(&db->points_written);
    s->lines_rejected = atomic_load(&db->lines_rejected);
    s->flushes = atomic_load(&db->flushes);
    s->flush_points = atomic_load(&db->flush_points);
    s->flush_ns = atomic_load(&db->flush_ns);
    s->replay_records = db->replay_records;
    s->replay_points = db->replay_points;
    s->replay_ns = db->replay_ns;
    s->replay_torn_bytes = db->replay_torn_bytes;
    s->series = qt_catalog_series_count(db->cat);
    struct db_version *v = db_version_get(db);
    s->mem_bytes = qt_mem_bytes(v->active->m) + (v->imm ? qt_mem_bytes(v->imm->m) : 0);
    s->mem_points = qt_mem_points(v->active->m) + (v->imm ? qt_mem_points(v->imm->m) : 0);
    for (uint32_t i = 0; i < v->nsegs; i++) {
        s->segments++;
        s->segment_bytes += v->segs[i]->m.file_bytes;
        s->segment_points += v->segs[i]->m.points;
    }
    db_version_put(v);
    if (db->wal != NULL)
        qt_wlog_get_stats(db->wal, &s->wal);
}

uint32_t
qt_db_shard_totals(struct qt_db *db, struct qt_db_shard_info *out, uint32_t cap)
{
    qt_assert(db != NULL);
    qt_assert(out != NULL || cap == 0);
    struct db_version *v = db_version_get(db);
    uint32_t n = 0;
    for (uint32_t i = 0; i < v->nsegs; i++) {
        const struct qt_manifest_seg *m = &v->segs[i]->m;
        /* segs are sorted by (shard_start, seq): a new shard starts a run */
        if (i == 0 || m->shard_start_ns != v->segs[i - 1]->m.shard_start_ns) {
            if (n < cap)
                out[n] = (struct qt_db_shard_info){.start_ns = m->shard_start_ns};
            n++;
        }
        if (n <= cap) {
            out[n - 1].segments++;
            out[n - 1].bytes += m->file_bytes;
            out[n - 1].points += m->points;
        }
    }
    db_version_put(v);
    return n;
}

void
qt_db_set_sync_observer(struct qt_db *db, qt_wlog_sync_fn fn, void *arg)
{
    qt_assert(db != NULL);
    if (db->wal != NULL)
        qt_wlog_set_sync_observer(db->wal, fn, arg);
}
