/*
 * wallog.c -- WAL files, group commit, replay (see wallog.h).
 *
 * State (all under mu):
 *   pending[0..npending)  framed records waiting for a leader, in seq order
 *   enq                   records ever queued; a record's ticket is enq after
 *                         it was queued
 *   done                  records written (and synced under ALWAYS): tickets
 *                         <= done are complete.  Tickets complete in order
 *                         because one leader at a time takes the whole queue.
 *   leader                true while one thread writes/syncs/rotates with mu
 *                         released; the fd and file_off belong to it then.
 *   failed                first error of a write/sync; sticky (FAILED state).
 * A record's buffer belongs to its appender, which waits until the record is
 * written, so the leader writes straight from those buffers (no copy).
 */
#include "wallog.h"

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
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wl_pending {
    uint8_t *buf;
    size_t len;
};

struct qt_wlog {
    struct qt_io *io;
    char dir[PATH_MAX];
    struct qt_wlog_opts opts;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;
    uint64_t file_off;
    uint64_t next_seq;
    struct wl_pending pending[QT_IO_IOV_MAX];
    uint32_t npending;
    uint64_t enq;
    uint64_t done;
    bool leader;
    _Atomic bool dirty; /* written since the last sync; set by the leader */
    int failed;
    bool stop;
    pthread_t syncer;
    bool syncer_running;
    struct qt_wlog_stats stats;
    qt_wlog_sync_fn sync_fn;
    void *sync_arg;
};

static uint64_t
wl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
qt_fsync_policy_parse(const char *s, enum qt_fsync_policy *policy, uint32_t *interval_ms)
{
    qt_assert(s != NULL);
    *interval_ms = 0;
    if (strcmp(s, "always") == 0) {
        *policy = QT_FSYNC_ALWAYS;
        return 0;
    }
    if (strcmp(s, "none") == 0) {
        *policy = QT_FSYNC_NONE;
        return 0;
    }
    if (strncmp(s, "interval:", 9) == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long ms = strtoul(s + 9, &end, 10);
        if (errno != 0 || end == s + 9 || *end != '\0' || ms == 0 || ms > QT_FSYNC_INTERVAL_MAX_MS)
            return qt_fail(QT_EINVAL, "wal: interval must be 1..60000 ms");
        *policy = QT_FSYNC_INTERVAL;
        *interval_ms = (uint32_t)ms;
        return 0;
    }
    return qt_fail(QT_EINVAL, "wal: fsync policy must be always, interval:MS or none");
}

static int
wl_path(char *out, size_t cap, const char *dir, uint64_t seq)
{
    int n = snprintf(out, cap, "%s/%020" PRIu64 ".wal", dir, seq);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Create the file for records starting at seq and make its name durable. */
static int
wl_new_file(struct qt_wlog *w, uint64_t seq)
{
    char path[PATH_MAX];
    int rc = wl_path(path, sizeof(path), w->dir, seq);
    int fd = -1;
    if (rc == 0)
        rc = qt_io_open(w->io, path, O_RDWR | O_CREAT | O_TRUNC, 0644, &fd);
    if (rc == 0)
        rc = qt_io_fsync_dir(w->io, w->dir);
    if (rc != 0) {
        if (fd >= 0)
            qt_io_close(w->io, fd);
        qt_log(QT_LOG_ERROR, "wal: create %s: %s", path, qt_strerror(rc));
        return rc;
    }
    w->fd = fd;
    w->file_off = 0;
    w->stats.files++;
    return 0;
}

/* Sync (if needed) and close the current file, open the next.  Leader only. */
static int
wl_switch_file(struct qt_wlog *w, uint64_t first_seq)
{
    if (w->fd >= 0) {
        int rc = w->dirty ? qt_io_fdatasync(w->io, w->fd) : 0;
        if (rc != 0) {
            qt_log(QT_LOG_ERROR, "wal: sync before rotation: %s", qt_strerror(rc));
            return rc;
        }
        w->stats.syncs += w->dirty;
        w->dirty = false;
        qt_io_close(w->io, w->fd);
        w->fd = -1;
    }
    return wl_new_file(w, first_seq);
}

static void *wl_syncer_main(void *arg);

/* Create dir if missing and make its name durable (fsync the parent). */
static int
wl_mkdir_durable(struct qt_io *io, const char *dir)
{
    int rc = qt_io_mkdir(io, dir, 0755);
    if (rc == -EEXIST)
        return 0;
    if (rc != 0)
        return rc;
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash == parent)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    else
        snprintf(parent, sizeof(parent), ".");
    return qt_io_fsync_dir(io, parent);
}

int
qt_wlog_open(struct qt_io *io, const char *dir, const struct qt_wlog_opts *opts, uint64_t next_seq,
             struct qt_wlog **out)
{
    qt_assert(io != NULL);
    qt_assert(opts != NULL);
    qt_assert(next_seq > 0);
    if (strlen(dir) >= PATH_MAX - 32)
        return -ENAMETOOLONG;
    struct qt_wlog *w = qt_calloc(1, sizeof(*w));
    if (w == NULL)
        return QT_ENOMEM;
    w->io = io;
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    w->opts = *opts;
    /* Smaller files are allowed (tests rotate often); larger ones would
     * exceed what replay reads in one piece. */
    if (w->opts.file_bytes_max == 0 || w->opts.file_bytes_max > QT_WAL_FILE_BYTES_DEFAULT)
        w->opts.file_bytes_max = QT_WAL_FILE_BYTES_DEFAULT;
    w->fd = -1;
    w->next_seq = next_seq;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int rc = wl_mkdir_durable(io, dir);
    if (rc != 0)
        goto out_free;
    rc = wl_new_file(w, next_seq);
    if (rc != 0)
        goto out_free;
    if (w->opts.policy == QT_FSYNC_INTERVAL) {
        if (pthread_create(&w->syncer, NULL, wl_syncer_main, w) != 0) {
            rc = QT_ENOMEM;
            goto out_close;
        }
        w->syncer_running = true;
    }
    *out = w;
    return 0;
out_close:
    qt_io_close(io, w->fd);
out_free:
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    qt_free(w);
    return rc;
}

/* Become the leader (waits while another thread is). Called with mu held. */
static void
wl_lead(struct qt_wlog *w)
{
    while (w->leader)
        pthread_cond_wait(&w->cv, &w->mu);
    w->leader = true;
}

static void
wl_unlead(struct qt_wlog *w)
{
    w->leader = false;
    pthread_cond_broadcast(&w->cv);
}

/* Write (and under ALWAYS sync) one batch at off.  Leader, mu released. */
static int
wl_write_batch(struct qt_wlog *w, const struct wl_pending *p, uint32_t n, uint64_t off)
{
    if (w->opts.policy == QT_FSYNC_ALWAYS) {
        struct iovec iov[QT_IO_IOV_MAX];
        for (uint32_t i = 0; i < n; i++)
            iov[i] = (struct iovec){.iov_base = p[i].buf, .iov_len = p[i].len};
        uint64_t t0 = wl_now_ns();
        int rc = qt_io_append_sync(w->io, w->fd, iov, (int)n, off);
        uint64_t dt = wl_now_ns() - t0;
        w->stats.syncs++;
        w->stats.sync_ns_sum += dt;
        if (w->sync_fn != NULL)
            w->sync_fn(w->sync_arg, dt);
        return rc;
    }
    struct qt_io_wreq req[QT_IO_IOV_MAX];
    for (uint32_t i = 0; i < n; i++) {
        req[i] = (struct qt_io_wreq){.fd = w->fd, .buf = p[i].buf, .len = p[i].len, .off = off};
        off += p[i].len;
    }
    return qt_io_pwrite_batch(w->io, req, n);
}

/* Leader step: take the whole queue, rotate if the file is full, write. */
static void
wl_lead_batch(struct qt_wlog *w, uint64_t first_seq_of_queue)
{
    struct wl_pending batch[QT_IO_IOV_MAX];
    uint32_t n = 0;
    uint64_t take = 0;
    /* At least one record; then as many as fit QT_WAL_GROUP_BYTES_MAX. */
    while (n < w->npending && (n == 0 || take + w->pending[n].len <= QT_WAL_GROUP_BYTES_MAX))
        take += w->pending[n++].len;
    memcpy(batch, w->pending, n * sizeof(batch[0]));
    memmove(w->pending, w->pending + n, (w->npending - n) * sizeof(batch[0]));
    w->npending -= n;
    pthread_cond_broadcast(&w->cv); /* room in the queue again */
    pthread_mutex_unlock(&w->mu);

    int rc = 0;
    if (w->file_off >= w->opts.file_bytes_max)
        rc = wl_switch_file(w, first_seq_of_queue);
    uint64_t bytes = take;
    if (rc == 0)
        rc = wl_write_batch(w, batch, n, w->file_off);

    pthread_mutex_lock(&w->mu);
    if (rc != 0) {
        if (w->failed == 0)
            qt_log(QT_LOG_ERROR, "wal: group write failed, log is read-only: %s", qt_strerror(rc));
        w->failed = w->failed != 0 ? w->failed : rc;
        return;
    }
    w->file_off += bytes;
    w->dirty = w->opts.policy != QT_FSYNC_ALWAYS;
    w->done += n;
    w->stats.groups++;
    w->stats.records += n;
    w->stats.bytes += bytes;
}

int
qt_wlog_append(struct qt_wlog *w, const uint8_t *payload, size_t len, uint64_t *seq_out)
{
    qt_assert(w != NULL);
    qt_assert(payload != NULL || len == 0);
    if (len > QT_WAL_PAYLOAD_MAX)
        return qt_fail(QT_ELIMIT, "wal: batch larger than QT_WAL_PAYLOAD_MAX");
    size_t cap = qt_wal_record_bound(len);
    uint8_t *rec = qt_malloc(cap + len);
    if (rec == NULL)
        return QT_ENOMEM;
    size_t rlen = 0;
    int rc = qt_wal_record_encode(0, payload, len, rec + cap, len, rec, cap, &rlen);
    qt_assert(rc == 0);

    pthread_mutex_lock(&w->mu);
    while (w->failed == 0 && w->npending == QT_IO_IOV_MAX)
        pthread_cond_wait(&w->cv, &w->mu);
    if (w->failed != 0) {
        pthread_mutex_unlock(&w->mu);
        qt_free(rec);
        return qt_fail(QT_EREADONLY, "wal: log failed earlier; database is read-only");
    }
    uint64_t seq = w->next_seq++;
    qt_wal_record_set_seq(rec, rlen, seq);
    uint64_t first_seq_of_queue = seq - w->npending;
    w->pending[w->npending++] = (struct wl_pending){rec, rlen};
    uint64_t ticket = ++w->enq;
    while (w->done < ticket && w->failed == 0) {
        if (!w->leader && w->npending > 0) {
            w->leader = true;
            wl_lead_batch(w, first_seq_of_queue);
            wl_unlead(w);
        } else {
            pthread_cond_wait(&w->cv, &w->mu);
        }
        first_seq_of_queue = w->next_seq - w->npending;
    }
    rc = w->done >= ticket ? 0 : qt_fail(QT_EREADONLY, "wal: write or sync failed");
    pthread_mutex_unlock(&w->mu);
    qt_free(rec);
    if (rc == 0)
        *seq_out = seq;
    return rc;
}

/* Sync the current file if dirty.  Leader, mu released. */
static int
wl_sync_current(struct qt_wlog *w)
{
    if (!w->dirty || w->fd < 0)
        return 0;
    uint64_t t0 = wl_now_ns();
    int rc = qt_io_fdatasync(w->io, w->fd);
    uint64_t dt = wl_now_ns() - t0;
    w->stats.syncs++;
    w->stats.sync_ns_sum += dt;
    if (w->sync_fn != NULL)
        w->sync_fn(w->sync_arg, dt);
    if (rc == 0)
        w->dirty = false;
    return rc;
}

/* Run fn as leader with mu released; record a failure. */
static int
wl_as_leader(struct qt_wlog *w, int (*fn)(struct qt_wlog *w, void *arg), void *arg)
{
    pthread_mutex_lock(&w->mu);
    wl_lead(w);
    int rc = w->failed;
    if (rc == 0) {
        pthread_mutex_unlock(&w->mu);
        rc = fn(w, arg);
        pthread_mutex_lock(&w->mu);
        if (rc != 0 && w->failed == 0) {
            qt_log(QT_LOG_ERROR, "wal: sync failed, log is read-only: %s", qt_strerror(rc));
            w->failed = rc;
        }
    } else {
        rc = qt_fail(QT_EREADONLY, "wal: log failed earlier; database is read-only");
    }
    wl_unlead(w);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

static int
wl_sync_fn(struct qt_wlog *w, void *arg)
{
    (void)arg;
    return wl_sync_current(w);
}

int
qt_wlog_sync(struct qt_wlog *w)
{
    return wl_as_leader(w, wl_sync_fn, NULL);
}

static void *
wl_syncer_main(void *arg)
{
    struct qt_wlog *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)w->opts.interval_ms * 1000000u;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&w->cv, &w->mu, &until);
        if (w->stop || !w->dirty || w->failed != 0)
            continue;
        pthread_mutex_unlock(&w->mu);
        wl_as_leader(w, wl_sync_fn, NULL);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct wl_rotate_arg {
    uint64_t boundary;
};

static int
wl_rotate_fn(struct qt_wlog *w, void *arg)
{
    struct wl_rotate_arg *a = arg;
    /* Appenders are held out by the engine, so no record is queued and
     * next_seq is stable; read it under the lock to be safe. */
    pthread_mutex_lock(&w->mu);
    qt_assert(w->npending == 0);
    a->boundary = w->next_seq;
    pthread_mutex_unlock(&w->mu);
    return wl_switch_file(w, a->boundary);
}

int
qt_wlog_rotate(struct qt_wlog *w, uint64_t *boundary)
{
    struct wl_rotate_arg a = {0};
    int rc = wl_as_leader(w, wl_rotate_fn, &a);
    if (rc == 0)
        *boundary = a.boundary;
    return rc;
}

bool
qt_wlog_failed(struct qt_wlog *w)
{
    pthread_mutex_lock(&w->mu);
    bool f = w->failed != 0;
    pthread_mutex_unlock(&w->mu);
    return f;
}

void
qt_wlog_get_stats(struct qt_wlog *w, struct qt_wlog_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}

void
qt_wlog_set_sync_observer(struct qt_wlog *w, qt_wlog_sync_fn fn, void *arg)
{
    pthread_mutex_lock(&w->mu);
    w->sync_fn = fn;
    w->sync_arg = arg;
    pthread_mutex_unlock(&w->mu);
}

int
qt_wlog_close(struct qt_wlog *w)
{
    if (w == NULL)
        return 0;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->syncer_running)
        pthread_join(w->syncer, NULL);
    int rc = w->failed != 0 ? QT_EREADONLY : wl_sync_current(w);
    if (w->fd >= 0)
        qt_io_close(w->io, w->fd);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    qt_free(w);
    return rc;
}

/* ---- file listing ------------------------------------------------------- */

/* Sorted first-seqs of dir's *.wal files into a qt_malloc'd array. */
static int
wl_list(const char *dir, uint64_t **seqs, uint32_t *n)
{
    *seqs = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    uint32_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end = NULL;
        unsigned long long v = strtoull(e->d_name, &end, 10);
        if (end != e->d_name + 20 || strcmp(end, ".wal") != 0)
            continue;
        if (*n == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            uint64_t *g = qt_realloc(*seqs, cap * sizeof(*g));
            if (g == NULL) {
                rc = QT_ENOMEM;
                break;
            }
            *seqs = g;
        }
        (*seqs)[(*n)++] = v;
    }
    closedir(d);
    for (uint32_t i = 1; i < *n; i++) { /* insertion sort: a handful of files */
        uint64_t v = (*seqs)[i];
        uint32_t j = i;
        for (; j > 0 && (*seqs)[j - 1] > v; j--)
            (*seqs)[j] = (*seqs)[j - 1];
        (*seqs)[j] = v;
    }
    return rc;
}

int
qt_wlog_remove_upto(struct qt_wlog *w, uint64_t checkpoint)
{
    uint64_t *seqs;
    uint32_t n;
    int rc = wl_list(w->dir, &seqs, &n);
    if (rc != 0)
        return rc;
    uint32_t removed = 0;
    /* File i holds seqs in [seqs[i], seqs[i+1]); the last file is current. */
    for (uint32_t i = 0; i + 1 < n && rc == 0; i++) {
        if (seqs[i + 1] > checkpoint + 1)
            break;
        char path[PATH_MAX];
        rc = wl_path(path, sizeof(path), w->dir, seqs[i]);
        if (rc == 0)
            rc = qt_io_unlink(w->io, path);
        removed += rc == 0;
    }
    qt_free(seqs);
    if (rc == 0 && removed > 0)
        rc = qt_io_fsync_dir(w->io, w->dir);
    if (rc != 0)
        qt_log(QT_LOG_WARN, "wal: removing old files: %s", qt_strerror(rc));
    return rc;
}

/* ---- replay --------------------------------------------------------------- */

struct wl_replay {
    struct qt_io *io;
    uint64_t after_seq;
    qt_wlog_replay_fn fn;
    void *arg;
    struct qt_wlog_replay_stats *st;
    uint8_t *buf; /* whole-file window */
    uint8_t *scratch;
};

/* Does a valid record start at off?  Used to tell mid-log damage (valid data
 * follows) from a torn tail (nothing valid follows). */
static bool
wl_valid_at(struct wl_replay *r, const uint8_t *buf, size_t len, size_t off)
{
    struct qt_wal_record rec;
    return off < len &&
           qt_wal_record_read(buf, len, off, r->scratch, QT_WAL_PAYLOAD_MAX, &rec) == 0;
}

/* Where a damaged record at off claims to end, if its header is readable. */
static size_t
wl_claimed_end(const uint8_t *buf, size_t len, size_t off)
{
    if (len - off < QT_WAL_HEADER_SIZE)
        return len;
    uint32_t stored = (uint32_t)buf[off + 20] | (uint32_t)buf[off + 21] << 8 |
                      (uint32_t)buf[off + 22] << 16 | (uint32_t)buf[off + 23] << 24;
    size_t end = off + QT_WAL_HEADER_SIZE + (size_t)stored;
    return end < off || end > len ? len : end;
}

static int
wl_replay_buffer(struct wl_replay *r, const char *path, const uint8_t *buf, size_t len,
                 bool last_file, size_t *good_end)
{
    size_t off = 0;
    while (off < len) {
        struct qt_wal_record rec;
        int rc = qt_wal_record_read(buf, len, off, r->scratch, QT_WAL_PAYLOAD_MAX, &rec);
        if (rc == 0) {
            off += rec.record_len;
            r->st->last_seq = rec.seq > r->st->last_seq ? rec.seq : r->st->last_seq;
            if (rec.seq <= r->after_seq) {
                r->st->skipped++;
                continue;
            }
            r->st->records++;
            rc = r->fn(r->arg, rec.seq, rec.payload, rec.payload_len);
            if (rc != 0)
                return rc;
            continue;
        }
        size_t next = wl_claimed_end(buf, len, off);
        if (next < len && wl_valid_at(r, buf, len, next)) {
            qt_log(QT_LOG_ERROR, "wal: %s: damaged record at offset %zu (%s: %s); skipped", path,
                   off, qt_strerror(rc), qt_err_detail());
            r->st->corrupt_records++;
            off = next;
            continue;
        }
        if (!last_file) {
            qt_log(QT_LOG_ERROR, "wal: %s: damaged data at offset %zu (%s: %s); rest of file lost",
                   path, off, qt_strerror(rc), qt_err_detail());
            r->st->corrupt_records++;
        }
        break;
    }
    *good_end = off;
    return 0;
}

static int
wl_replay_file(struct wl_replay *r, const char *path, bool last_file, bool truncate_torn)
{
    int fd = -1;
    int rc = qt_io_open(r->io, path, truncate_torn ? O_RDWR : O_RDONLY, 0, &fd);
    if (rc != 0)
        return rc;
    uint64_t size = 0;
    rc = qt_io_size(r->io, fd, &size);
    uint8_t *buf = NULL;
    if (rc == 0 && size > QT_WAL_FILE_READ_MAX)
        rc = qt_fail(QT_ELIMIT, "wal: file larger than QT_WAL_FILE_READ_MAX");
    if (rc == 0 && size > 0 && (buf = qt_malloc(size)) == NULL)
        rc = QT_ENOMEM;
    if (rc == 0 && size > 0) {
        int64_t got = qt_io_pread(r->io, fd, buf, size, 0);
        rc = got < 0 ? (int)got : (uint64_t)got != size ? -EIO : 0;
    }
    size_t good = 0;
    if (rc == 0)
        rc = wl_replay_buffer(r, path, buf, size, last_file, &good);
    if (rc == 0 && good < size && last_file) {
        r->st->torn_bytes += size - good;
        qt_log(QT_LOG_WARN, "wal: %s: torn tail at offset %zu, %" PRIu64 " bytes %s", path, good,
               size - good, truncate_torn ? "cut" : "ignored (read-only)");
        if (truncate_torn) {
            rc = qt_io_ftruncate(r->io, fd, good);
            if (rc == 0)
                rc = qt_io_fsync(r->io, fd);
        }
    }
    r->st->bytes += good;
    qt_free(buf);
    qt_io_close(r->io, fd);
    return rc;
}

int
qt_wlog_replay(struct qt_io *io, const char *dir, uint64_t after_seq, bool truncate_torn,
               qt_wlog_replay_fn fn, void *arg, struct qt_wlog_replay_stats *stats)
{
    qt_assert(fn != NULL);
    qt_assert(stats != NULL);
    memset(stats, 0, sizeof(*stats));
    uint64_t *seqs;
    uint32_t n;
    int rc = wl_list(dir, &seqs, &n);
    if (rc != 0)
        return rc;
    struct wl_replay r = {.io = io, .after_seq = after_seq, .fn = fn, .arg = arg, .st = stats};
    r.scratch = n > 0 ? qt_malloc(QT_WAL_PAYLOAD_MAX) : NULL;
    if (n > 0 && r.scratch == NULL)
        rc = QT_ENOMEM;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        char path[PATH_MAX];
        rc = wl_path(path, sizeof(path), dir, seqs[i]);
        if (rc == 0)
            rc = wl_replay_file(&r, path, i + 1 == n, truncate_torn);
        stats->files++;
    }
    qt_free(r.scratch);
    qt_free(seqs);
    return rc;
}
