/*
 * backup.c -- online backups and restore (backup.h, design/ops.md
 * "Backups").
 *
 * Backup:
 *   1. qt_db_sync(): every acknowledged write is in the WAL files.
 *   2. Lock TARGET/LOCK; remove .partial directories a crash left.
 *   3. Capture, with flush_mu held (no flush or compaction commit can run,
 *      so the MANIFEST on disk lists exactly the current version's
 *      segments): reference the version (its segment files cannot be
 *      deleted while referenced), read the MANIFEST, open the catalog and
 *      the WAL files holding records after the checkpoint and note their
 *      sizes (a flush may delete or rotate them later; the open fds keep
 *      the bytes readable, and only the noted sizes are copied).
 *   4. Outside the lock: into TARGET/.<id>.partial, link or copy each file
 *      (segments: hard link from the data directory, read once to check
 *      the MANIFEST's XXH3; unchanged since the parent backup: hard link to
 *      its copy), fsync files and directories, write BACKUP (atomic).
 *   5. Rename .<id>.partial to <id>, fsync TARGET.  Only now does the
 *      backup exist for restore and for the next incremental.
 *
 * Restore: resolve the backup, read BACKUP, read every file and check size
 * and XXH3 (nothing written yet), copy into a sibling staging directory
 * checking again while copying, fsync everything, rename over the target.
 */
#include "storage/backup.h"

#include "format/bkmanifest.h"
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_hash.h"
#include "format/qt_log.h"
#include "ops_int.h"

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

/* ---- small helpers ---------------------------------------------------------- */

static int
bk_join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    return n < 0 || (size_t)n >= cap ? qt_fail(-ENAMETOOLONG, "backup: path too long") : 0;
}

/* mkdir -p of dir/rel's parent directories under dir (rel's last component
 * is a file).  New directories are fsynced into their parents later. */
static int
bk_mkdirs(struct qt_io *io, const char *dir, const char *rel)
{
    qt_assert(dir != NULL && rel != NULL);
    char path[PATH_MAX];
    int rc = bk_join(path, sizeof(path), dir, rel);
    size_t base = strlen(dir) + 1;
    for (char *p = path + base; rc == 0 && (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        rc = qt_io_mkdir(io, path, 0755);
        rc = rc == -EEXIST ? 0 : rc;
        *p = '/';
    }
    return rc;
}

/* fsync dir and every directory below it (new entries made durable). */
static int
bk_sync_tree(struct qt_io *io, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && depth > 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || e->d_type != DT_DIR)
            continue;
        char sub[PATH_MAX];
        rc = bk_join(sub, sizeof(sub), dir, e->d_name);
        if (rc == 0)
            rc = bk_sync_tree(io, sub, depth - 1);
    }
    closedir(d);
    return rc == 0 ? qt_io_fsync_dir(io, dir) : rc;
}

/* rm -r through io (best effort: the first error is returned). */
static int
bk_rm_tree(struct qt_io *io, const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return errno == ENOTDIR ? qt_io_unlink(io, path) : -errno;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        int r = bk_join(sub, sizeof(sub), path, e->d_name);
        if (r == 0)
            r = e->d_type == DT_DIR ? bk_rm_tree(io, sub) : qt_io_unlink(io, sub);
        rc = rc != 0 ? rc : r;
    }
    closedir(d);
    int r = qt_io_rmdir(io, path);
    return rc != 0 ? rc : r;
}

/* Read a whole small file (at most max bytes) through io. */
static int
bk_read_small(struct qt_io *io, const char *path, size_t max, uint8_t **buf, size_t *len)
{
    qt_assert(buf != NULL && len != NULL);
    int fd = -1;
    uint64_t size = 0;
    *buf = NULL;
    int rc = qt_io_open(io, path, O_RDONLY, 0, &fd);
    if (rc == 0)
        rc = qt_io_size(io, fd, &size);
    if (rc == 0 && size > max)
        rc = qt_fail(QT_ELIMIT, "backup: file larger than any valid one");
    if (rc == 0 && (*buf = qt_malloc(size + 1)) == NULL)
        rc = QT_ENOMEM;
    if (rc == 0) {
        int64_t got = qt_io_pread(io, fd, *buf, size, 0);
        rc = got < 0                 ? (int)got
             : (uint64_t)got != size ? qt_fail(QT_ETRUNC, "backup: short read")
                                     : 0;
    }
    if (fd >= 0)
        qt_io_close(io, fd);
    if (rc != 0) {
        qt_free(*buf);
        *buf = NULL;
    }
    *len = (size_t)size;
    return rc;
}

/* ---- streaming copy and checksum -------------------------------------------------- */

struct bk_stream {
    struct qt_io *io;
    uint8_t *buf; /* QT_OPS_COPY_BYTES */
    const struct qt_ops_ctl *ctl;
    uint64_t done, total; /* progress */
    uint64_t bytes_read, bytes_written;
};

/*
 * Read size bytes of fd from offset 0, hashing them into *hash; with
 * out_fd >= 0 also write them there (then fsync it).  QT_ETRUNC if the file
 * is shorter.
 */
static int
bk_stream_fd(struct bk_stream *s, int fd, uint64_t size, int out_fd, uint64_t *hash)
{
    qt_assert(s->buf != NULL);
    qt_assert(fd >= 0);
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    int rc = 0;
    for (uint64_t off = 0; rc == 0 && off < size;) {
        size_t n = size - off < QT_OPS_COPY_BYTES ? (size_t)(size - off) : QT_OPS_COPY_BYTES;
        int64_t got = qt_io_pread(s->io, fd, s->buf, n, off);
        if (got < 0)
            rc = (int)got;
        else if ((size_t)got != n)
            rc = qt_fail(QT_ETRUNC, "backup: file shorter than recorded");
        if (rc == 0 && qt_ops_cancelled(s->ctl))
            rc = qt_fail(QT_ECLOSED, "backup: interrupted");
        if (rc == 0) {
            XXH3_64bits_update(&st, s->buf, n);
            s->bytes_read += n;
        }
        if (rc == 0 && out_fd >= 0) {
            rc = qt_io_pwrite(s->io, out_fd, s->buf, n, off);
            s->bytes_written += rc == 0 ? n : 0;
        }
        off += n;
        s->done += n;
        qt_ops_progress(s->ctl, s->done, s->total);
    }
    if (rc == 0 && out_fd >= 0)
        rc = qt_io_fsync(s->io, out_fd);
    *hash = XXH3_64bits_digest(&st);
    return rc;
}

/* Copy size bytes of fd into a new file dst (hash into *hash). */
static int
bk_copy_fd(struct bk_stream *s, int fd, uint64_t size, const char *dst, uint64_t *hash)
{
    qt_assert(dst != NULL);
    int out = -1;
    int rc = qt_io_open(s->io, dst, O_WRONLY | O_CREAT | O_EXCL, 0644, &out);
    if (rc == 0)
        rc = bk_stream_fd(s, fd, size, out, hash);
    if (out >= 0) {
        int crc = qt_io_close(s->io, out);
        rc = rc != 0 ? rc : crc;
    }
    return rc;
}

/* Hash (or copy to dst when not NULL) the file at path, size bytes. */
static int
bk_stream_path(struct bk_stream *s, const char *path, uint64_t size, const char *dst,
               uint64_t *hash)
{
    int fd = -1;
    int rc = qt_io_open(s->io, path, O_RDONLY, 0, &fd);
    if (rc != 0)
        return rc;
    rc = dst != NULL ? bk_copy_fd(s, fd, size, dst, hash) : bk_stream_fd(s, fd, size, -1, hash);
    qt_io_close(s->io, fd);
    return rc;
}

/* ---- the previous backup ------------------------------------------------------- */

struct bk_prev {
    char id[QT_BACKUP_ID_MAX + 1];
    char dir[PATH_MAX];
    uint8_t *buf;
    struct qt_bkm_hdr h;
    struct qt_bkm_file *files;
};

static int
bk_read_manifest(struct qt_io *io, const char *dir, uint8_t **buf, struct qt_bkm_hdr *h,
                 struct qt_bkm_file **files)
{
    char path[PATH_MAX];
    size_t len = 0;
    *files = NULL;
    int rc = bk_join(path, sizeof(path), dir, QT_BKM_NAME);
    if (rc == 0)
        rc = bk_read_small(io, path, (size_t)1 << 32, buf, &len);
    if (rc == 0)
        rc = qt_bkm_decode_header(*buf, len, h);
    if (rc == 0 && (*files = qt_calloc(h->n_files + 1u, sizeof(**files))) == NULL)
        rc = QT_ENOMEM;
    if (rc == 0)
        rc = qt_bkm_decode(*buf, len, h, *files, h->n_files);
    if (rc != 0) {
        qt_log(QT_LOG_ERROR, "backup: %s: %s (%s)", path, qt_strerror(rc), qt_err_detail());
        qt_free(*buf);
        qt_free(*files);
        *buf = NULL;
        *files = NULL;
    }
    return rc;
}

int
qt_backup_latest(const char *target, char *id, size_t cap)
{
    qt_assert(cap > QT_BACKUP_ID_MAX);
    id[0] = '\0';
    DIR *d = opendir(target);
    if (d == NULL)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX];
        struct stat st;
        size_t n = strlen(e->d_name);
        int k = snprintf(path, sizeof(path), "%s/%s/%s", target, e->d_name, QT_BKM_NAME);
        if (!qt_bkm_id_ok(e->d_name, n) || strcmp(e->d_name, "LOCK") == 0 || k < 0 ||
            (size_t)k >= sizeof(path) || stat(path, &st) != 0)
            continue;
        /* Ids sort by time; "-N" suffixes sort after their base. */
        if (strcmp(e->d_name, id) > 0)
            memcpy(id, e->d_name, n + 1);
    }
    closedir(d);
    return id[0] != '\0' ? 0 : qt_fail(QT_ENOTFOUND, "backup: no complete backup found");
}

static const struct qt_bkm_file *
bk_prev_find(const struct bk_prev *p, const char *rel)
{
    if (p->files == NULL)
        return NULL;
    size_t len = strlen(rel);
    uint32_t lo = 0, hi = p->h.n_files;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct qt_bkm_file *f = &p->files[mid];
        size_t m = f->path_len < len ? f->path_len : len;
        int c = memcmp(f->path, rel, m);
        if (c == 0)
            c = f->path_len < len ? -1 : f->path_len > len;
        if (c == 0)
            return f;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- capture ------------------------------------------------------------------------- */

enum bk_kind { BK_SEGMENT, BK_FD, BK_MEM };

struct bk_item {
    char rel[QT_BACKUP_PATH_MAX + 1];
    enum bk_kind kind;
    char src[PATH_MAX]; /* SEGMENT: the data file */
    int fd;             /* FD: open source (catalog, WAL) */
    const uint8_t *mem; /* MEM: the MANIFEST bytes */
    uint64_t size;
    uint64_t want; /* SEGMENT: the MANIFEST's XXH3 */
    uint64_t hash;
    bool linked;
};

struct bk {
    struct qt_db *db;
    const struct qt_backup_opts *o;
    struct qt_backup_result *res;
    struct db_version *v;
    struct qt_manifest_hdr mhdr;
    uint8_t *manifest;
    size_t manifest_len;
    struct bk_item *items;
    uint32_t nitems, cap;
    struct bk_prev prev;
    char stage[PATH_MAX];
    char final[PATH_MAX];
    int lock_fd;
    struct bk_stream s;
};

static struct bk_item *
bk_add(struct bk *b, const char *rel, enum bk_kind kind)
{
    if (b->nitems == b->cap) {
        uint32_t cap = b->cap == 0 ? 64 : b->cap * 2;
        struct bk_item *it = qt_realloc(b->items, cap * sizeof(*it));
        if (it == NULL)
            return NULL;
        b->items = it;
        b->cap = cap;
    }
    struct bk_item *it = &b->items[b->nitems++];
    memset(it, 0, sizeof(*it));
    it->fd = -1;
    it->kind = kind;
    snprintf(it->rel, sizeof(it->rel), "%s", rel);
    return it;
}

/* Segments of the referenced version. */
static int
bk_capture_segments(struct bk *b)
{
    qt_assert(b->v != NULL);
    for (uint32_t i = 0; i < b->v->nsegs; i++) {
        struct db_seg *s = b->v->segs[i];
        if (s->r == NULL)
            return qt_fail(QT_ECORRUPT, "backup: the database has a damaged segment (run qtdb "
                                        "verify --quarantine first)");
        char rel[QT_BACKUP_PATH_MAX + 1];
        snprintf(rel, sizeof(rel), "shards/%" PRId64 "/%020" PRIu64 ".qts", s->m.shard_start_ns,
                 s->m.seq);
        struct bk_item *it = bk_add(b, rel, BK_SEGMENT);
        if (it == NULL)
            return QT_ENOMEM;
        snprintf(it->src, sizeof(it->src), "%s", s->path);
        it->size = s->m.file_bytes;
        it->want = s->m.file_xxh3;
    }
    return 0;
}

/* Open an FD item for dir/name (size now). */
static int
bk_capture_fd(struct bk *b, const char *rel)
{
    char path[PATH_MAX];
    int rc = bk_join(path, sizeof(path), b->db->dir, rel);
    struct bk_item *it = rc == 0 ? bk_add(b, rel, BK_FD) : NULL;
    if (rc == 0 && it == NULL)
        rc = QT_ENOMEM;
    if (rc == 0)
        rc = qt_io_open(b->db->io, path, O_RDONLY, 0, &it->fd);
    if (rc == 0)
        rc = qt_io_size(b->db->io, it->fd, &it->size);
    return rc;
}

static int
bk_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y);
}

/* WAL files that may hold records after the checkpoint. */
static int
bk_capture_wal(struct bk *b)
{
    char dir[PATH_MAX];
    int rc = bk_join(dir, sizeof(dir), b->db->dir, "wal");
    DIR *d = rc == 0 ? opendir(dir) : NULL;
    if (d == NULL)
        return rc != 0 ? rc : errno == ENOENT ? 0 : -errno;
    uint64_t *firsts = qt_malloc(QT_BACKUP_WAL_FILES_MAX * sizeof(*firsts));
    uint32_t n = 0;
    struct dirent *e;
    rc = firsts == NULL ? QT_ENOMEM : 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char *end = NULL;
        unsigned long long first = strtoull(e->d_name, &end, 10);
        if (end != e->d_name + 20 || strcmp(end, ".wal") != 0)
            continue;
        if (n == QT_BACKUP_WAL_FILES_MAX)
            rc = qt_fail(QT_ELIMIT, "backup: more WAL files than QT_BACKUP_WAL_FILES_MAX");
        else
            firsts[n++] = first;
    }
    closedir(d);
    qsort(firsts, n, sizeof(firsts[0]), bk_u64_cmp);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        /* file i holds seqs in [firsts[i], firsts[i + 1]) */
        if (i + 1 < n && firsts[i + 1] <= b->mhdr.wal_checkpoint + 1)
            continue;
        char rel[64];
        snprintf(rel, sizeof(rel), "wal/%020" PRIu64 ".wal", firsts[i]);
        rc = bk_capture_fd(b, rel);
    }
    qt_free(firsts);
    return rc;
}

/* Step 3, with flush_mu held. */
static int
bk_capture(struct bk *b)
{
    qt_assert(b->v == NULL);
    struct qt_db *db = b->db;
    b->v = db_version_get(db);
    b->mhdr = db->mhdr;
    char path[PATH_MAX];
    int rc = bk_join(path, sizeof(path), db->dir, "MANIFEST");
    if (rc == 0)
        rc = bk_read_small(db->io, path, qt_manifest_bound(QT_MANIFEST_SEGMENTS_MAX), &b->manifest,
                           &b->manifest_len);
    if (rc == -ENOENT) { /* nothing flushed yet */
        rc = 0;
        b->mhdr.generation = 0;
    } else if (rc == 0) {
        struct bk_item *it = bk_add(b, "MANIFEST", BK_MEM);
        rc = it == NULL ? QT_ENOMEM : 0;
        if (it != NULL) {
            it->mem = b->manifest;
            it->size = b->manifest_len;
        }
    }
    if (rc == 0)
        rc = bk_capture_segments(b);
    if (rc == 0)
        rc = bk_capture_fd(b, QT_CATALOG_FILE);
    if (rc == 0)
        rc = bk_capture_wal(b);
    return rc;
}

/* ---- writing the backup -------------------------------------------------------------- */

/* Hard link src to dst, or -errno (EXDEV across file systems, ...). */
static int
bk_link(const char *src, const char *dst)
{
    return link(src, dst) == 0 ? 0 : -errno;
}

/* Hard link the parent backup's copy when it has the same bytes. */
static int
bk_try_prev(struct bk *b, struct bk_item *it, const char *dst, bool *done)
{
    qt_assert(it != NULL && dst != NULL);
    *done = false;
    const struct qt_bkm_file *pf = b->o->incremental ? bk_prev_find(&b->prev, it->rel) : NULL;
    if (pf == NULL || pf->size != it->size)
        return 0;
    uint64_t h = it->want;
    int rc = 0;
    if (it->kind == BK_FD)
        rc = bk_stream_fd(&b->s, it->fd, it->size, -1, &h);
    else if (it->kind == BK_MEM)
        h = qt_hash64(it->mem, it->size);
    if (rc != 0 || h != pf->xxh3)
        return rc;
    char src[PATH_MAX];
    rc = bk_join(src, sizeof(src), b->prev.dir, it->rel);
    if (rc == 0 && bk_link(src, dst) == 0) {
        it->hash = h;
        it->linked = true;
        b->res->files_linked_prev++;
        b->s.done += it->kind == BK_SEGMENT ? it->size : 0;
        *done = true;
    }
    return rc;
}

static int
bk_write_mem(struct bk *b, struct bk_item *it, const char *dst)
{
    qt_assert(it->kind == BK_MEM);
    int fd = -1;
    int rc = qt_io_open(b->db->io, dst, O_WRONLY | O_CREAT | O_EXCL, 0644, &fd);
    if (rc == 0)
        rc = qt_io_pwrite(b->db->io, fd, it->mem, it->size, 0);
    if (rc == 0)
        rc = qt_io_fsync(b->db->io, fd);
    if (fd >= 0) {
        int crc = qt_io_close(b->db->io, fd);
        rc = rc != 0 ? rc : crc;
    }
    it->hash = qt_hash64(it->mem, it->size);
    b->s.bytes_written += rc == 0 ? it->size : 0;
    return rc;
}

static int
bk_segment(struct bk *b, struct bk_item *it, const char *dst)
{
    qt_assert(it->kind == BK_SEGMENT);
    int rc = -EXDEV;
    if (!b->o->copy)
        rc = bk_link(it->src, dst);
    if (rc == 0) {
        it->linked = true;
        b->res->files_linked_data++;
        rc = bk_stream_path(&b->s, dst, it->size, NULL, &it->hash);
    } else {
        b->res->files_copied++;
        rc = bk_stream_path(&b->s, it->src, it->size, dst, &it->hash);
    }
    if (rc == 0 && it->hash != it->want) {
        qt_log(QT_LOG_ERROR, "backup: %s: XXH3 %016" PRIx64 " but the MANIFEST says %016" PRIx64,
               it->src, it->hash, it->want);
        rc = qt_fail(QT_ECORRUPT, "backup: a segment does not match its MANIFEST checksum");
    }
    return rc;
}

static int
bk_item(struct bk *b, struct bk_item *it)
{
    qt_assert(b->stage[0] != '\0');
    char dst[PATH_MAX];
    int rc = bk_join(dst, sizeof(dst), b->stage, it->rel);
    if (rc == 0)
        rc = bk_mkdirs(b->db->io, b->stage, it->rel);
    bool done = false;
    if (rc == 0)
        rc = bk_try_prev(b, it, dst, &done);
    if (rc != 0 || done)
        return rc;
    if (it->kind == BK_SEGMENT)
        return bk_segment(b, it, dst);
    b->res->files_copied++;
    if (it->kind == BK_MEM)
        return bk_write_mem(b, it, dst);
    return bk_copy_fd(&b->s, it->fd, it->size, dst, &it->hash);
}

static int
bk_item_cmp(const void *a, const void *b)
{
    return strcmp(((const struct bk_item *)a)->rel, ((const struct bk_item *)b)->rel);
}

/* Write BACKUP (atomically) into the stage. */
static int
bk_write_manifest(struct bk *b)
{
    qt_assert(b->res->id[0] != '\0');
    qsort(b->items, b->nitems, sizeof(*b->items), bk_item_cmp);
    struct qt_bkm_file *f = qt_calloc(b->nitems + 1u, sizeof(*f));
    if (f == NULL)
        return QT_ENOMEM;
    for (uint32_t i = 0; i < b->nitems; i++)
        f[i] = (struct qt_bkm_file){.size = b->items[i].size,
                                    .xxh3 = b->items[i].hash,
                                    .linked = b->items[i].linked,
                                    .path = b->items[i].rel,
                                    .path_len = (uint32_t)strlen(b->items[i].rel)};
    struct qt_bkm_hdr h = {.created_ns = db_ops_wall_ns(),
                           .generation = b->mhdr.generation,
                           .wal_checkpoint = b->mhdr.wal_checkpoint,
                           .n_files = b->nitems};
    snprintf(h.id, sizeof(h.id), "%s", b->res->id);
    snprintf(h.parent, sizeof(h.parent), "%s", b->res->parent);
    size_t cap = qt_bkm_bound(f, b->nitems), len = 0;
    uint8_t *buf = qt_malloc(cap);
    int rc = buf == NULL ? QT_ENOMEM : qt_bkm_encode(&h, f, b->nitems, buf, cap, &len);
    if (rc == 0)
        rc = qt_io_write_file_atomic(b->db->io, b->stage, QT_BKM_NAME, buf, len);
    qt_free(buf);
    qt_free(f);
    return rc;
}

/* ---- target directory ------------------------------------------------------------------ */

static int
bk_lock_target(struct bk *b)
{
    struct qt_io *io = b->db->io;
    int rc = qt_io_mkdir(io, b->o->target, 0755);
    if (rc == 0) {
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", b->o->target);
        char *slash = strrchr(parent, '/');
        if (slash != NULL && slash != parent)
            *slash = '\0';
        else
            snprintf(parent, sizeof(parent), "%s", slash == parent ? "/" : ".");
        rc = qt_io_fsync_dir(io, parent);
    }
    rc = rc == -EEXIST ? 0 : rc;
    char path[PATH_MAX];
    if (rc == 0)
        rc = bk_join(path, sizeof(path), b->o->target, "LOCK");
    if (rc != 0)
        return rc;
    b->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (b->lock_fd < 0)
        return -errno;
    if (flock(b->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? qt_fail(QT_EBUSY, "backup: another backup is writing into "
                                                        "the target")
                                    : -errno;
    return 0;
}

/* Remove .<id>.partial directories a crashed backup left (lock held). */
static void
bk_clean_partials(struct bk *b)
{
    DIR *d = opendir(b->o->target);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] != '.' || n < 9 || strcmp(e->d_name + n - 8, ".partial") != 0)
            continue;
        char path[PATH_MAX];
        if (bk_join(path, sizeof(path), b->o->target, e->d_name) != 0)
            continue;
        qt_log(QT_LOG_WARN, "backup: removing %s (left by an interrupted backup)", path);
        bk_rm_tree(b->db->io, path);
    }
    closedir(d);
}

/* A fresh id: the UTC time in ms, "-N" appended while taken. */
static int
bk_new_id(struct bk *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    snprintf(base, sizeof(base), "%04d%02d%02dT%02d%02d%02d%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    for (int k = 1; k < 1000; k++) {
        if (k == 1)
            snprintf(b->res->id, sizeof(b->res->id), "%s", base);
        else
            snprintf(b->res->id, sizeof(b->res->id), "%s-%d", base, k);
        char name[QT_BACKUP_ID_MAX + 16];
        snprintf(name, sizeof(name), ".%s.partial", b->res->id);
        struct stat st;
        if (bk_join(b->final, sizeof(b->final), b->o->target, b->res->id) != 0 ||
            bk_join(b->stage, sizeof(b->stage), b->o->target, name) != 0)
            return qt_fail(-ENAMETOOLONG, "backup: target path too long");
        if (stat(b->final, &st) != 0 && stat(b->stage, &st) != 0)
            return 0;
    }
    return qt_fail(QT_EBUSY, "backup: no free backup id");
}

static int
bk_load_prev(struct bk *b)
{
    if (!b->o->incremental)
        return 0;
    int rc = qt_backup_latest(b->o->target, b->prev.id, sizeof(b->prev.id));
    if (rc == QT_ENOTFOUND)
        return 0; /* the first backup of the chain is a full one */
    if (rc == 0)
        rc = bk_join(b->prev.dir, sizeof(b->prev.dir), b->o->target, b->prev.id);
    if (rc == 0)
        rc = bk_read_manifest(b->db->io, b->prev.dir, &b->prev.buf, &b->prev.h, &b->prev.files);
    if (rc == 0)
        snprintf(b->res->parent, sizeof(b->res->parent), "%s", b->prev.id);
    return rc;
}

/* Steps 4-5. */
static int
bk_write(struct bk *b)
{
    qt_assert(b->stage[0] != '\0' && b->final[0] != '\0');
    struct qt_io *io = b->db->io;
    for (uint32_t i = 0; i < b->nitems; i++)
        b->s.total += b->items[i].size;
    int rc = qt_io_mkdir(io, b->stage, 0755);
    for (uint32_t i = 0; rc == 0 && i < b->nitems; i++) {
        rc = qt_ops_cancelled(&b->o->ctl) ? qt_fail(QT_ECLOSED, "backup: interrupted")
                                          : bk_item(b, &b->items[i]);
        b->res->bytes += b->items[i].size;
    }
    if (rc == 0)
        rc = bk_write_manifest(b);
    if (rc == 0)
        rc = bk_sync_tree(io, b->stage, 3);
    if (rc == 0)
        rc = qt_io_rename(io, b->stage, b->final);
    if (rc == 0)
        rc = qt_io_fsync_dir(io, b->o->target);
    return rc;
}

static void
bk_release(struct bk *b)
{
    for (uint32_t i = 0; i < b->nitems; i++) {
        if (b->items[i].fd >= 0)
            qt_io_close(b->db->io, b->items[i].fd);
    }
    qt_free(b->items);
    qt_free(b->manifest);
    qt_free(b->prev.buf);
    qt_free(b->prev.files);
    qt_free(b->s.buf);
    db_version_put(b->v);
    if (b->lock_fd >= 0)
        close(b->lock_fd);
}

int
qt_db_backup(struct qt_db *db, const struct qt_backup_opts *o, struct qt_backup_result *res)
{
    qt_assert(db != NULL);
    qt_assert(o != NULL && o->target != NULL);
    struct qt_backup_result r = {0};
    struct bk b = {.db = db, .o = o, .res = &r, .lock_fd = -1, .s = {.io = db->io, .ctl = &o->ctl}};
    int64_t t0 = db_now_ms();
    int rc = qt_db_sync(db);
    if (rc == 0)
        rc = bk_lock_target(&b);
    if (rc == 0) {
        bk_clean_partials(&b);
        rc = bk_load_prev(&b);
    }
    if (rc == 0)
        rc = bk_new_id(&b);
    if (rc == 0 && (b.s.buf = qt_malloc(QT_OPS_COPY_BYTES)) == NULL)
        rc = QT_ENOMEM;
    if (rc == 0) {
        pthread_mutex_lock(&db->flush_mu);
        rc = bk_capture(&b);
        pthread_mutex_unlock(&db->flush_mu);
    }
    if (rc == 0)
        rc = bk_write(&b);
    if (rc != 0 && b.stage[0] != '\0' && b.lock_fd >= 0)
        bk_rm_tree(db->io, b.stage); /* best effort; the next backup retries */
    r.files = b.nitems;
    r.bytes_read = b.s.bytes_read;
    r.bytes_written = b.s.bytes_written;
    r.ns = (uint64_t)(db_now_ms() - t0) * 1000000u;
    bk_release(&b);
    if (rc == 0)
        qt_log(QT_LOG_INFO,
               "backup %s: %u files (%u copied, %u linked, %u from %s), %" PRIu64 " bytes", r.id,
               r.files, r.files_copied, r.files_linked_data, r.files_linked_prev,
               r.parent[0] ? r.parent : "-", r.bytes);
    if (res != NULL)
        *res = r;
    return rc;
}

/* ---- restore ------------------------------------------------------------------------------ */

struct rs {
    const struct qt_restore_opts *o;
    struct qt_io *io;
    char dir[PATH_MAX]; /* the backup */
    uint8_t *buf;
    struct qt_bkm_hdr h;
    struct qt_bkm_file *files;
    char stage[PATH_MAX];
    struct bk_stream s;
};

static int
rs_resolve(struct rs *r)
{
    char probe[PATH_MAX];
    struct stat st;
    int rc = bk_join(probe, sizeof(probe), r->o->from, QT_BKM_NAME);
    if (rc != 0)
        return rc;
    if (stat(probe, &st) == 0) {
        snprintf(r->dir, sizeof(r->dir), "%s", r->o->from);
        return 0;
    }
    char id[QT_BACKUP_ID_MAX + 1];
    rc = qt_backup_latest(r->o->from, id, sizeof(id));
    return rc == 0 ? bk_join(r->dir, sizeof(r->dir), r->o->from, id) : rc;
}

/* Check every file of the backup against BACKUP (nothing written). */
static int
rs_verify(struct rs *r)
{
    qt_assert(r->files != NULL || r->h.n_files == 0);
    for (uint32_t i = 0; i < r->h.n_files; i++)
        r->s.total += r->files[i].size;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < r->h.n_files; i++) {
        const struct qt_bkm_file *f = &r->files[i];
        char rel[QT_BACKUP_PATH_MAX + 1], path[PATH_MAX];
        memcpy(rel, f->path, f->path_len);
        rel[f->path_len] = '\0';
        rc = bk_join(path, sizeof(path), r->dir, rel);
        uint64_t size = 0, h = 0;
        int fd = -1;
        if (rc == 0)
            rc = qt_io_open(r->io, path, O_RDONLY, 0, &fd);
        if (rc == 0)
            rc = qt_io_size(r->io, fd, &size);
        if (rc == 0 && size != f->size)
            rc = qt_fail(QT_ETRUNC, "restore: a file's size differs from BACKUP");
        if (rc == 0)
            rc = bk_stream_fd(&r->s, fd, size, -1, &h);
        if (rc == 0 && h != f->xxh3)
            rc = qt_fail(QT_ECHECKSUM, "restore: a file's XXH3 differs from BACKUP");
        if (fd >= 0)
            qt_io_close(r->io, fd);
        if (rc != 0)
            qt_log(QT_LOG_ERROR, "restore: %s: %s (%s); nothing was written", path, qt_strerror(rc),
                   qt_err_detail());
    }
    return rc;
}

/* Is name one of the engine's own entries in a data directory? */
static bool
rs_engine_name(const char *name)
{
    static const char *const names[] = {"MANIFEST", "MANIFEST.tmp", QT_CATALOG_FILE,
                                        "wal",      "shards",       "quarantine",
                                        "LOCK",     "ROLLUPS",      "ROLLUPS.tmp"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0)
            return true;
    }
    return false;
}

/* `to` must be absent or empty, or (force) hold only engine entries of a
 * database no process has open.  *replace: entries to remove at the end. */
static int
rs_check_target(struct rs *r, bool *replace)
{
    *replace = false;
    DIR *d = opendir(r->o->to);
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        *replace = true;
        if (!r->o->force)
            rc = qt_fail(QT_EBUSY, "restore: the target directory is not empty (use --force)");
        else if (!rs_engine_name(e->d_name))
            rc = qt_fail(QT_EBUSY, "restore: the target holds files that are not qtdb's");
    }
    closedir(d);
    return rc;
}

/* Remove the old database in `to` (force), unless a process has it open. */
static int
rs_remove_old(struct rs *r)
{
    char lock[PATH_MAX];
    int rc = bk_join(lock, sizeof(lock), r->o->to, "LOCK");
    int fd = rc == 0 ? open(lock, O_RDWR | O_CLOEXEC) : -1;
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0)
        rc = qt_fail(QT_EBUSY, "restore: the target database is open in another process");
    if (rc == 0) {
        qt_log(QT_LOG_WARN, "restore: --force: replacing the database in %s", r->o->to);
        rc = bk_rm_tree(r->io, r->o->to);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

static int
rs_copy(struct rs *r)
{
    qt_assert(r->stage[0] != '\0');
    r->s.done = 0;
    int rc = qt_io_mkdir(r->io, r->stage, 0755);
    for (uint32_t i = 0; rc == 0 && i < r->h.n_files; i++) {
        const struct qt_bkm_file *f = &r->files[i];
        char rel[QT_BACKUP_PATH_MAX + 1], src[PATH_MAX], dst[PATH_MAX];
        memcpy(rel, f->path, f->path_len);
        rel[f->path_len] = '\0';
        uint64_t h = 0;
        rc = bk_join(src, sizeof(src), r->dir, rel);
        if (rc == 0)
            rc = bk_join(dst, sizeof(dst), r->stage, rel);
        if (rc == 0)
            rc = bk_mkdirs(r->io, r->stage, rel);
        if (rc == 0)
            rc = bk_stream_path(&r->s, src, f->size, dst, &h);
        if (rc == 0 && h != f->xxh3)
            rc = qt_fail(QT_ECHECKSUM, "restore: a file changed while it was copied");
    }
    if (rc == 0)
        rc = bk_sync_tree(r->io, r->stage, 3);
    return rc;
}

static int
rs_finish(struct rs *r, bool replace)
{
    int rc = replace ? rs_remove_old(r) : 0;
    if (rc == 0)
        rc = qt_io_rename(r->io, r->stage, r->o->to);
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", r->o->to);
    char *slash = strrchr(parent, '/');
    if (slash != NULL && slash != parent)
        *slash = '\0';
    else
        snprintf(parent, sizeof(parent), "%s", slash == parent ? "/" : ".");
    if (rc == 0)
        rc = qt_io_fsync_dir(r->io, parent);
    return rc;
}

int
qt_backup_restore(const struct qt_restore_opts *o, struct qt_restore_result *res)
{
    qt_assert(o != NULL && o->from != NULL && o->to != NULL);
    struct rs r = {.o = o, .io = o->io};
    struct qt_restore_result out = {0};
    int64_t t0 = db_now_ms();
    int rc = r.io == NULL ? qt_io_create(QT_IO_AUTO, NULL, &r.io) : 0;
    if (rc == 0)
        rc = rs_resolve(&r);
    if (rc == 0)
        rc = bk_read_manifest(r.io, r.dir, &r.buf, &r.h, &r.files);
    r.s = (struct bk_stream){.io = r.io, .ctl = &o->ctl, .buf = qt_malloc(QT_OPS_COPY_BYTES)};
    if (rc == 0 && r.s.buf == NULL)
        rc = QT_ENOMEM;
    bool replace = false;
    if (rc == 0)
        rc = rs_check_target(&r, &replace);
    if (rc == 0)
        rc = rs_verify(&r);
    int n = snprintf(r.stage, sizeof(r.stage), "%s.restore-%ld", o->to, (long)getpid());
    if (rc == 0 && (n < 0 || (size_t)n >= sizeof(r.stage)))
        rc = qt_fail(-ENAMETOOLONG, "restore: target path too long");
    if (rc == 0)
        rc = rs_copy(&r);
    if (rc == 0)
        rc = rs_finish(&r, replace);
    if (rc != 0 && r.stage[0] != '\0')
        bk_rm_tree(r.io, r.stage);
    out.files = r.h.n_files;
    out.bytes = r.s.total;
    snprintf(out.id, sizeof(out.id), "%s", r.h.id);
    out.ns = (uint64_t)(db_now_ms() - t0) * 1000000u;
    qt_free(r.buf);
    qt_free(r.files);
    qt_free(r.s.buf);
    if (o->io == NULL)
        qt_io_destroy(r.io);
    if (res != NULL)
        *res = out;
    return rc;
}
