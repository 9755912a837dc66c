/*
 * io_fault.c -- the fault backend: posix plus injected failures and a
 * simulated crash (SQLite test6 / TigerBeetle storage-fault style; design/io.md
 * "Fault model").  For tests only; one mutex serialises the whole handle.
 *
 * Data model.  Each inode the handle opened has a node (keyed by st_dev,
 * st_ino) holding an ordered list of *pending* operations: writes (offset +
 * bytes) and truncates.  Writes and truncates go only to that list; the real
 * file holds exactly the durable content.  Reads see the real file overlaid
 * with the pending list in order (read-your-writes), and node->size is the
 * size reads see.  fsync/fdatasync apply the list to the real file in order,
 * then sync it for real.  A node keeps a dup of a writable fd, so pending
 * data survives close(2) the way the page cache does.
 *
 * Name model.  create (O_CREAT that made the file), rename, unlink, mkdir and
 * rmdir happen for real at once and are journalled with the directories they
 * need synced (parent of each name involved).  qt_io_fsync_dir(D) marks the
 * entries of D durable; fully durable entries are dropped.  What a rename or
 * unlink removed is kept open (keep_fd) so a crash can restore it.
 *
 * Crash.  DROP: pending lists are discarded, journalled name operations are
 * undone newest first (create -> unlink, rename -> rename back and restore
 * the replaced file, unlink -> restore, mkdir -> remove tree, rmdir ->
 * mkdir).  RANDOM: each pending write is lost, kept, or kept in part at
 * 512-byte sector granularity, each truncate kept or lost, and a random
 * prefix of the journal survives.  Then the handle refuses every call but
 * close/destroy (QT_ECLOSED).
 *
 * Faults.  Per op class a counter counts every call; an armed fault fires on
 * the n-th (or, persistent, every one from the n-th).  A failed write changes
 * nothing unless torn (QT_IO_FAULT_TEAR: its first sectors become pending).
 * A failed fsync/fdatasync drops the file's pending list, as Linux may mark
 * pages clean after a writeback error, so a retried fsync "succeeds" with the
 * data gone: the behaviour that makes retrying wrong.
 */
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "storage/io_int.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One unsynced write (data[len] at off) or truncate (to off; len 0). */
struct pend {
    bool trunc;
    uint64_t off;
    size_t len;
    uint8_t data[];
};

struct fnode {
    dev_t dev;
    ino_t ino;
    int real_fd;        /* our dup; writable whenever pend is non-empty */
    bool real_writable; /* real_fd was opened for writing */
    bool is_dir;
    uint32_t users; /* caller fds open on this inode */
    uint64_t size;  /* size as reads see it */
    struct pend **pend;
    uint32_t npend, pend_cap;
    struct fnode *next;
};

struct fdent {
    bool open;
    bool writable;
    struct fnode *node; /* NULL after a crash */
};

enum ns_kind { NS_CREATE, NS_RENAME, NS_UNLINK, NS_MKDIR, NS_RMDIR };

struct dir_id {
    dev_t dev;
    ino_t ino;
};

/* One name operation not yet made durable by a directory fsync. */
struct nsop {
    enum ns_kind kind;
    char *a, *b;   /* path; for rename a = from, b = to */
    int keep_fd;   /* replaced/unlinked regular file, or -1 */
    mode_t mode;   /* of the kept file or removed/replaced directory */
    bool kept_dir; /* rename replaced an (empty) directory */
    struct dir_id dir_a, dir_b;
    uint8_t need; /* bit 0: dir_a not synced yet; bit 1: dir_b */
};

struct armed {
    uint64_t at; /* count value that fires; 0 = disarmed */
    struct qt_io_fault f;
};

struct fault {
    pthread_mutex_t mu;
    bool crashed;
    uint64_t count[QT_IO_OP_COUNT];
    struct armed armed[QT_IO_OP_COUNT];
    struct fnode *nodes;
    struct fdent *fds;
    uint32_t fds_cap;
    struct nsop *ns;
    uint32_t nns, ns_cap;
    uint64_t pending_bytes;
};

static struct fault *
fault_of(struct qt_io *io)
{
    qt_assert(io->kind == QT_IO_FAULT);
    qt_assert(io->priv != NULL);
    return io->priv;
}

static int
crashed_error(void)
{
    return qt_fail(QT_ECLOSED, "io: handle crashed (simulated); destroy it");
}

static uint64_t
rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Count one op of class op; true (and *hit filled) when a fault fires. */
static bool
fault_fire(struct fault *f, enum qt_io_op op, struct qt_io_fault *hit)
{
    qt_assert((unsigned)op < QT_IO_OP_COUNT);
    uint64_t c = ++f->count[op];
    struct armed *a = &f->armed[op];
    if (a->at == 0 || c < a->at)
        return false;
    *hit = a->f;
    if ((a->f.flags & QT_IO_FAULT_PERSISTENT) == 0)
        a->at = 0;
    qt_assert(hit->err < 0 || (hit->flags & QT_IO_FAULT_TEAR) != 0);
    return true;
}

/* ---- fd table and nodes ----------------------------------------------------- */

static struct fdent *
fd_lookup(struct fault *f, int fd)
{
    if (fd < 0 || (uint32_t)fd >= f->fds_cap || !f->fds[fd].open)
        return NULL;
    return &f->fds[fd];
}

static int
fd_reserve(struct fault *f, int fd)
{
    qt_assert(fd >= 0);
    if ((uint32_t)fd < f->fds_cap)
        return 0;
    uint32_t cap = f->fds_cap != 0 ? f->fds_cap : 64;
    while (cap <= (uint32_t)fd)
        cap *= 2;
    struct fdent *n = qt_realloc(f->fds, cap * sizeof(*n));
    if (n == NULL)
        return qt_fail(QT_ENOMEM, "io: fault fd table");
    memset(n + f->fds_cap, 0, (cap - f->fds_cap) * sizeof(*n));
    f->fds = n;
    f->fds_cap = cap;
    return 0;
}

static void node_maybe_free(struct fault *f, struct fnode *n);

/* Find or make the node of the inode behind fd; takes one user reference. */
static int
node_attach(struct fault *f, int fd, bool writable, struct fnode **out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    struct fnode *n = f->nodes;
    while (n != NULL && (n->dev != st.st_dev || n->ino != st.st_ino))
        n = n->next;
    if (n == NULL) {
        n = qt_calloc(1, sizeof(*n));
        if (n == NULL)
            return qt_fail(QT_ENOMEM, "io: fault node");
        n->dev = st.st_dev;
        n->ino = st.st_ino;
        n->real_fd = -1;
        n->size = (uint64_t)st.st_size;
        n->is_dir = S_ISDIR(st.st_mode);
        n->next = f->nodes;
        f->nodes = n;
    }
    if (n->real_fd < 0 || (writable && !n->real_writable)) {
        int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (d < 0) {
            int rc = -errno;
            node_maybe_free(f, n);
            return rc;
        }
        if (n->real_fd >= 0)
            close(n->real_fd);
        n->real_fd = d;
        n->real_writable = writable;
    }
    n->users++;
    *out = n;
    return 0;
}

static void
pend_free(struct fault *f, struct pend *p)
{
    qt_assert(f->pending_bytes >= p->len);
    f->pending_bytes -= p->len;
    qt_free_sized(p, sizeof(*p) + p->len);
}

/* Forget the node's pending list; its size falls back to the real file's. */
static void
pend_drop(struct fault *f, struct fnode *n)
{
    for (uint32_t i = 0; i < n->npend; i++)
        pend_free(f, n->pend[i]);
    n->npend = 0;
    struct stat st;
    if (n->real_fd >= 0 && fstat(n->real_fd, &st) == 0)
        n->size = (uint64_t)st.st_size;
}

/* Free n if nothing refers to it any more. */
static void
node_maybe_free(struct fault *f, struct fnode *n)
{
    if (n->users > 0 || n->npend > 0)
        return;
    struct fnode **pp = &f->nodes;
    while (*pp != n)
        pp = &(*pp)->next;
    *pp = n->next;
    if (n->real_fd >= 0)
        close(n->real_fd);
    qt_free(n->pend);
    qt_free(n);
}

static int
pend_push(struct fnode *n, struct pend *p)
{
    if (n->npend == n->pend_cap) {
        uint32_t cap = n->pend_cap != 0 ? n->pend_cap * 2 : 16;
        struct pend **np = qt_realloc(n->pend, cap * sizeof(*np));
        if (np == NULL)
            return qt_fail(QT_ENOMEM, "io: fault pending list");
        n->pend = np;
        n->pend_cap = cap;
    }
    n->pend[n->npend++] = p;
    return 0;
}

/* Record the first `keep` bytes of the iov at off as a pending write. */
static int
pend_add_write(struct fault *f, struct fnode *n, const struct iovec *iov, int cnt, size_t keep,
               uint64_t off)
{
    qt_assert(n->real_writable);
    if (keep > QT_IO_FAULT_PENDING_MAX - f->pending_bytes)
        return qt_fail(QT_ELIMIT, "io: fault backend holds QT_IO_FAULT_PENDING_MAX unsynced bytes");
    struct pend *p = qt_malloc(sizeof(*p) + keep);
    if (p == NULL)
        return qt_fail(QT_ENOMEM, "io: fault pending write");
    p->trunc = false;
    p->off = off;
    p->len = keep;
    size_t at = 0;
    for (int i = 0; i < cnt && at < keep; i++) {
        size_t l = iov[i].iov_len < keep - at ? iov[i].iov_len : keep - at;
        memcpy(p->data + at, iov[i].iov_base, l);
        at += l;
    }
    qt_assert(at == keep);
    f->pending_bytes += keep;
    int rc = pend_push(n, p);
    if (rc != 0) {
        pend_free(f, p);
        return rc;
    }
    if (off + keep > n->size)
        n->size = off + keep;
    return 0;
}

static int
pend_add_trunc(struct fnode *n, uint64_t size)
{
    qt_assert(n->real_writable);
    struct pend *p = qt_malloc(sizeof(*p));
    if (p == NULL)
        return qt_fail(QT_ENOMEM, "io: fault pending truncate");
    *p = (struct pend){.trunc = true, .off = size, .len = 0};
    int rc = pend_push(n, p);
    if (rc != 0) {
        qt_free(p);
        return rc;
    }
    n->size = size;
    return 0;
}

/* Write bytes [lo, hi) of pending write p to the real file. */
static int
pend_write_range(struct qt_io *io, struct fnode *n, const struct pend *p, uint64_t lo, uint64_t hi)
{
    qt_assert(!p->trunc);
    qt_assert(lo >= p->off && hi <= p->off + p->len && lo <= hi);
    return io_posix_write_full(io, n->real_fd, p->data + (lo - p->off), (size_t)(hi - lo), lo);
}

/* Apply the whole pending list to the real file, in order, and clear it. */
static int
pend_apply(struct qt_io *io, struct fault *f, struct fnode *n)
{
    int rc = 0;
    for (uint32_t i = 0; i < n->npend && rc == 0; i++) {
        struct pend *p = n->pend[i];
        if (p->trunc)
            rc = io_posix_ftruncate(io, n->real_fd, p->off);
        else
            rc = pend_write_range(io, n, p, p->off, p->off + p->len);
    }
    pend_drop(f, n);
    return rc;
}

/* Overlay the pending list on buf, which holds file bytes [off, off+len). */
static void
pend_overlay(const struct fnode *n, uint8_t *buf, size_t len, uint64_t off)
{
    uint64_t end = off + len;
    for (uint32_t i = 0; i < n->npend; i++) {
        const struct pend *p = n->pend[i];
        if (p->trunc) {
            if (p->off < end) {
                uint64_t lo = p->off > off ? p->off : off;
                memset(buf + (lo - off), 0, (size_t)(end - lo));
            }
            continue;
        }
        uint64_t lo = p->off > off ? p->off : off;
        uint64_t hi = p->off + p->len < end ? p->off + p->len : end;
        if (lo < hi)
            memcpy(buf + (lo - off), p->data + (lo - p->off), (size_t)(hi - lo));
    }
}

/* ---- data operations (f->mu held) ----------------------------------------- */

static int64_t
fault_read_locked(struct qt_io *io, struct fault *f, struct qt_io_rreq *r)
{
    struct fdent *e = fd_lookup(f, r->fd);
    if (e == NULL)
        return -EBADF;
    struct fnode *n = e->node;
    qt_assert(n != NULL);
    size_t len = r->off >= n->size ? 0 : (size_t)(n->size - r->off);
    if (len > r->len)
        len = r->len;
    /* Real read even for 0 bytes: it checks the fd's access mode. */
    int64_t got = io_posix_read_full(io, r->fd, r->buf, len, r->off);
    if (got < 0)
        return got;
    memset((uint8_t *)r->buf + got, 0, len - (size_t)got); /* holes beyond the real EOF */
    pend_overlay(n, r->buf, len, r->off);
    return (int64_t)len;
}

/* Bytes of a write at off kept when torn after `sectors` sector boundaries. */
static size_t
tear_keep(uint64_t off, size_t len, uint32_t sectors)
{
    uint64_t end = (off / QT_IO_SECTOR_BYTES + sectors) * QT_IO_SECTOR_BYTES;
    if (end <= off)
        return 0;
    return end - off < len ? (size_t)(end - off) : len;
}

static int
fault_write_locked(struct fault *f, int fd, const struct iovec *iov, int cnt, size_t len,
                   uint64_t off)
{
    struct fdent *e = fd_lookup(f, fd);
    if (e == NULL || !e->writable)
        return -EBADF;
    qt_assert(e->node != NULL);
    struct qt_io_fault hit;
    size_t keep = len;
    int err = 0;
    if (fault_fire(f, QT_IO_OP_WRITE, &hit)) {
        bool tear = (hit.flags & QT_IO_FAULT_TEAR) != 0;
        keep = tear ? tear_keep(off, len, hit.tear_sectors) : 0;
        err = hit.err;
    }
    if (keep > 0) {
        int rc = pend_add_write(f, e->node, iov, cnt, keep, off);
        if (rc != 0)
            return rc;
    }
    return err;
}

static void dir_mark_durable(struct fault *f, struct dir_id id);

static int
fault_sync_locked(struct qt_io *io, struct fault *f, int fd, bool datasync)
{
    struct fdent *e = fd_lookup(f, fd);
    if (e == NULL)
        return -EBADF;
    struct fnode *n = e->node;
    qt_assert(n != NULL);
    struct qt_io_fault hit;
    if (fault_fire(f, datasync ? QT_IO_OP_FDATASYNC : QT_IO_OP_FSYNC, &hit)) {
        pend_drop(f, n); /* writeback error: the dirty data is gone */
        return hit.err;
    }
    int rc = pend_apply(io, f, n);
    if (rc == 0)
        rc = io_posix_sync(io, fd, datasync);
    if (rc == 0 && n->is_dir)
        dir_mark_durable(f, (struct dir_id){.dev = n->dev, .ino = n->ino});
    return rc;
}

static int
fault_read_batch(struct qt_io *io, struct qt_io_rreq *reqs, uint32_t n)
{
    struct fault *f = fault_of(io);
    int first = 0;
    pthread_mutex_lock(&f->mu);
    for (uint32_t i = 0; i < n; i++) {
        reqs[i].res = f->crashed ? crashed_error() : fault_read_locked(io, f, &reqs[i]);
        if (reqs[i].res < 0 && first == 0)
            first = (int)reqs[i].res;
    }
    pthread_mutex_unlock(&f->mu);
    return first;
}

static int
fault_write_batch(struct qt_io *io, struct qt_io_wreq *reqs, uint32_t n)
{
    struct fault *f = fault_of(io);
    int first = 0;
    pthread_mutex_lock(&f->mu);
    for (uint32_t i = 0; i < n; i++) {
        struct iovec iov = {.iov_base = (void *)reqs[i].buf, .iov_len = reqs[i].len};
        reqs[i].res = f->crashed
                          ? crashed_error()
                          : fault_write_locked(f, reqs[i].fd, &iov, 1, iov.iov_len, reqs[i].off);
        if (reqs[i].res < 0 && first == 0)
            first = (int)reqs[i].res;
    }
    pthread_mutex_unlock(&f->mu);
    return first;
}

static int
fault_append_sync(struct qt_io *io, int fd, const struct iovec *iov, int iovcnt, uint64_t off,
                  size_t total)
{
    struct fault *f = fault_of(io);
    pthread_mutex_lock(&f->mu);
    int rc = f->crashed ? crashed_error() : fault_write_locked(f, fd, iov, iovcnt, total, off);
    if (rc == 0)
        rc = fault_sync_locked(io, f, fd, true);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int
fault_sync(struct qt_io *io, int fd, bool datasync)
{
    struct fault *f = fault_of(io);
    pthread_mutex_lock(&f->mu);
    int rc = f->crashed ? crashed_error() : fault_sync_locked(io, f, fd, datasync);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int
fault_ftruncate(struct qt_io *io, int fd, uint64_t size)
{
    struct fault *f = fault_of(io);
    struct qt_io_fault hit;
    pthread_mutex_lock(&f->mu);
    struct fdent *e = fd_lookup(f, fd);
    int rc;
    if (f->crashed)
        rc = crashed_error();
    else if (e == NULL)
        rc = -EBADF;
    else if (!e->writable || e->node->is_dir)
        rc = -EINVAL; /* as ftruncate(2) on an fd not open for writing */
    else if (fault_fire(f, QT_IO_OP_TRUNCATE, &hit))
        rc = hit.err;
    else
        rc = pend_add_trunc(e->node, size);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int
fault_size(struct qt_io *io, int fd, uint64_t *size)
{
    struct fault *f = fault_of(io);
    pthread_mutex_lock(&f->mu);
    struct fdent *e = fd_lookup(f, fd);
    int rc = f->crashed ? crashed_error() : e == NULL ? -EBADF : 0;
    if (rc == 0)
        *size = e->node->size;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* ---- open / close ------------------------------------------------------------ */

static void ns_journal_free(struct fault *f);
static int ns_add(struct fault *f, enum ns_kind kind, const char *a, const char *b, int keep_fd,
                  mode_t mode);

/* open(2) without O_TRUNC (it becomes a pending truncate), noting whether
 * O_CREAT created the file. */
static int
open_tracking(struct qt_io *io, const char *path, int flags, unsigned mode, int *fd, bool *created)
{
    int base = flags & ~O_TRUNC;
    *created = false;
    if ((flags & O_CREAT) != 0) {
        int rc = io_posix_open(io, path, base | O_EXCL, mode, fd);
        if (rc == 0)
            *created = true;
        if (rc != -EEXIST || (flags & O_EXCL) != 0)
            return rc;
        base &= ~O_CREAT;
    }
    return io_posix_open(io, path, base, mode, fd);
}

static int
fault_open_locked(struct qt_io *io, struct fault *f, const char *path, int flags, unsigned mode,
                  int *out)
{
    bool created, writable = (flags & O_ACCMODE) != O_RDONLY;
    int fd, rc = open_tracking(io, path, flags, mode, &fd, &created);
    if (rc != 0)
        return rc;
    struct fnode *n = NULL;
    rc = fd_reserve(f, fd);
    if (rc == 0)
        rc = node_attach(f, fd, writable, &n);
    if (rc == 0 && created)
        rc = ns_add(f, NS_CREATE, path, NULL, -1, 0);
    if (rc == 0 && (flags & O_TRUNC) != 0 && writable && !created)
        rc = pend_add_trunc(n, 0);
    if (rc != 0) {
        if (n != NULL) {
            n->users--;
            node_maybe_free(f, n);
        }
        close(fd);
        if (created)
            (void)unlink(path); /* ns_add is the last step that can fail after a create */
        return rc;
    }
    f->fds[fd] = (struct fdent){.open = true, .writable = writable, .node = n};
    *out = fd;
    return 0;
}

static int
fault_open(struct qt_io *io, const char *path, int flags, unsigned mode, int *fd)
{
    struct fault *f = fault_of(io);
    pthread_mutex_lock(&f->mu);
    int rc = f->crashed ? crashed_error() : fault_open_locked(io, f, path, flags, mode, fd);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int
fault_close(struct qt_io *io, int fd)
{
    struct fault *f = fault_of(io);
    pthread_mutex_lock(&f->mu);
    struct fdent *e = fd_lookup(f, fd);
    int rc = -EBADF;
    if (e != NULL) {
        struct fnode *n = e->node;
        *e = (struct fdent){0};
        rc = io_posix_close(io, fd);
        if (n != NULL) {
            qt_assert(n->users > 0);
            n->users--;
            node_maybe_free(f, n);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* ---- name journal ------------------------------------------------------------ */

/* Identity of the directory holding path (its parent). */
static int
dir_of(const char *path, struct dir_id *id)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    qt_assert(len < PATH_MAX);
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    char *slash = strrchr(buf, '/');
    const char *dir = buf;
    if (slash == NULL)
        dir = ".";
    else if (slash == buf)
        buf[1] = '\0';
    else
        *slash = '\0';
    struct stat st;
    if (stat(dir, &st) != 0)
        return -errno;
    *id = (struct dir_id){.dev = st.st_dev, .ino = st.st_ino};
    return 0;
}

static bool
dir_eq(struct dir_id a, struct dir_id b)
{
    return a.dev == b.dev && a.ino == b.ino;
}

static void
ns_free(struct nsop *op)
{
    if (op->keep_fd >= 0)
        close(op->keep_fd);
    qt_free(op->a);
    qt_free(op->b);
}

/* Journal a name operation that already happened for real.  keep_fd is
 * owned by the journal from here on, even on failure. */
static int
ns_add(struct fault *f, enum ns_kind kind, const char *a, const char *b, int keep_fd, mode_t mode)
{
    struct nsop op = {.kind = kind, .keep_fd = keep_fd, .mode = mode};
    int rc = dir_of(a, &op.dir_a);
    op.dir_b = op.dir_a;
    if (rc == 0 && b != NULL)
        rc = dir_of(b, &op.dir_b);
    op.need = dir_eq(op.dir_a, op.dir_b) ? 1 : 3;
    op.a = qt_strndup(a, strlen(a));
    op.b = b != NULL ? qt_strndup(b, strlen(b)) : NULL;
    if (rc == 0 && (op.a == NULL || (b != NULL && op.b == NULL)))
        rc = qt_fail(QT_ENOMEM, "io: fault name journal");
    if (rc == 0 && f->nns == f->ns_cap) {
        uint32_t cap = f->ns_cap != 0 ? f->ns_cap * 2 : 16;
        struct nsop *n = qt_realloc(f->ns, cap * sizeof(*n));
        if (n == NULL)
            rc = qt_fail(QT_ENOMEM, "io: fault name journal");
        else {
            f->ns = n;
            f->ns_cap = cap;
        }
    }
    if (rc != 0) {
        ns_free(&op);
        return rc;
    }
    f->ns[f->nns++] = op;
    return 0;
}

/* A directory fsync of id made its entries durable: drop journal entries
 * that need nothing more. */
static void
dir_mark_durable(struct fault *f, struct dir_id id)
{
    uint32_t w = 0;
    for (uint32_t i = 0; i < f->nns; i++) {
        struct nsop *op = &f->ns[i];
        if ((op->need & 1) != 0 && dir_eq(op->dir_a, id))
            op->need &= (uint8_t)~1u;
        if ((op->need & 2) != 0 && dir_eq(op->dir_b, id))
            op->need &= (uint8_t)~2u;
        if (op->need == 0)
            ns_free(op);
        else
            f->ns[w++] = *op;
    }
    qt_assert(w <= f->nns);
    f->nns = w;
}

/* Open what `path` names before it is replaced or unlinked, so a crash can
 * put it back.  Regular files only (st is its lstat); -1 if not kept. */
static int
keep_open(const char *path, const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        qt_log(QT_LOG_WARN, "io: fault: cannot keep %s for crash undo: %s", path,
               qt_strerror(-errno));
    return fd;
}

static int
fault_rename_locked(struct qt_io *io, struct fault *f, const char *from, const char *to)
{
    struct qt_io_fault hit;
    if (fault_fire(f, QT_IO_OP_RENAME, &hit))
        return hit.err;
    struct stat sf, st;
    if (lstat(from, &sf) != 0)
        return -errno;
    bool replaces = lstat(to, &st) == 0;
    if (replaces && sf.st_dev == st.st_dev && sf.st_ino == st.st_ino)
        return io_posix_rename(io, from, to); /* same file: a no-op */
    int keep = replaces ? keep_open(to, &st) : -1;
    int rc = io_posix_rename(io, from, to);
    if (rc != 0) {
        if (keep >= 0)
            close(keep);
        return rc;
    }
    rc = ns_add(f, NS_RENAME, from, to, keep, replaces ? st.st_mode : 0);
    if (rc == 0 && replaces && S_ISDIR(st.st_mode))
        f->ns[f->nns - 1].kept_dir = true;
    return rc;
}

static int
fault_rename(struct qt_io *io, const char *from, const char *to)
{
    struct fault *f = fault_of(io);
    pthread_mutex_lock(&f->mu);
    int rc = f->crashed ? crashed_error() : fault_rename_locked(io, f, from, to);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int
fault_unlink_locked(struct qt_io *io, struct fault *f, const char *path)
{
    struct qt_io_fault hit;
    if (fault_fire(f, QT_IO_OP_UNLINK, &hit))
        return hit.err;
    struct stat st;
    if (lstat(path, &st) != 0)
        return -errno;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    int keep = keep_open(path, &st);
    int rc = io_posix_unlink(io, path);
    if (rc != 0) {
        if (keep >= 0)
            close(keep);
        return rc;
    }
    return ns_add(f, NS_UNLINK, path, NULL, keep, st.st_mode);
}

static int
fault_unlink(struct qt_io *io, const char *path)
{
    struct fault *f = fault_of(io);
    pthread_mutex_lock(&f->mu);
    int rc = f->crashed ? crashed_error() : fault_unlink_locked(io, f, path);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int
fault_mkdir(struct qt_io *io, const char *path, unsigned mode)
{
    struct fault *f = fault_of(io);
    pthread_mutex_lock(&f->mu);
    int rc = f->crashed ? crashed_error() : io_posix_mkdir(io, path, mode);
    if (rc == 0)
        rc = ns_add(f, NS_MKDIR, path, NULL, -1, (mode_t)mode);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int
fault_rmdir(struct qt_io *io, const char *path)
{
    struct fault *f = fault_of(io);
    struct stat st;
    pthread_mutex_lock(&f->mu);
    int rc = f->crashed ? crashed_error() : lstat(path, &st) == 0 ? 0 : -errno;
    if (rc == 0)
        rc = io_posix_rmdir(io, path);
    if (rc == 0)
        rc = ns_add(f, NS_RMDIR, path, NULL, -1, st.st_mode);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int
fault_fsync_dir_locked(struct qt_io *io, struct fault *f, const char *dir)
{
    struct qt_io_fault hit;
    if (fault_fire(f, QT_IO_OP_DIRSYNC, &hit))
        return hit.err; /* entries stay undurable */
    struct stat st;
    if (stat(dir, &st) != 0)
        return -errno;
    int rc = io_posix_fsync_dir(io, dir);
    if (rc == 0)
        dir_mark_durable(f, (struct dir_id){.dev = st.st_dev, .ino = st.st_ino});
    return rc;
}

static int
fault_fsync_dir(struct qt_io *io, const char *dir)
{
    struct fault *f = fault_of(io);
    pthread_mutex_lock(&f->mu);
    int rc = f->crashed ? crashed_error() : fault_fsync_dir_locked(io, f, dir);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* ---- crash ----------------------------------------------------------------- */

/* Recreate path with the content of the kept fd (the durable content of the
 * file that a rename replaced or an unlink removed). */
static int
restore_copy(struct qt_io *io, int keep_fd, const char *path, mode_t mode)
{
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 07777);
    if (out < 0)
        return -errno;
    enum { CHUNK = 64 * 1024 };
    uint8_t *buf = qt_malloc(CHUNK);
    int rc = buf == NULL ? QT_ENOMEM : 0;
    for (uint64_t off = 0; rc == 0;) {
        int64_t got = io_posix_read_full(io, keep_fd, buf, CHUNK, off);
        if (got <= 0) {
            rc = (int)got;
            break;
        }
        rc = io_posix_write_full(io, out, buf, (size_t)got, off);
        off += (uint64_t)got;
    }
    qt_free(buf);
    close(out);
    return rc;
}

static int
rm_tree_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

/* Undo one journalled name operation (newest first). */
static int
ns_undo(struct qt_io *io, struct nsop *op)
{
    int rc = 0;
    switch (op->kind) {
    case NS_CREATE: rc = unlink(op->a) == 0 || errno == ENOENT ? 0 : -errno; break;
    case NS_RENAME:
        rc = rename(op->b, op->a) == 0 ? 0 : -errno;
        if (rc == 0 && op->keep_fd >= 0)
            rc = restore_copy(io, op->keep_fd, op->b, op->mode);
        else if (rc == 0 && op->kept_dir)
            rc = mkdir(op->b, op->mode & 07777) == 0 ? 0 : -errno;
        break;
    case NS_UNLINK:
        rc = op->keep_fd >= 0 ? restore_copy(io, op->keep_fd, op->a, op->mode) : -ENOTSUP;
        break;
    case NS_MKDIR: rc = nftw(op->a, rm_tree_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -EIO; break;
    case NS_RMDIR: rc = mkdir(op->a, op->mode & 07777) == 0 ? 0 : -errno; break;
    }
    if (rc != 0)
        qt_log(QT_LOG_WARN, "io: fault crash: cannot undo name op %d on %s: %s", (int)op->kind,
               op->a, qt_strerror(rc));
    return rc;
}

/* RANDOM crash: apply part of one pending write, by whole sectors. */
static int
crash_tear(struct qt_io *io, struct fnode *n, const struct pend *p, uint64_t *rng)
{
    uint64_t first = p->off / QT_IO_SECTOR_BYTES;
    uint64_t last = (p->off + p->len + QT_IO_SECTOR_BYTES - 1) / QT_IO_SECTOR_BYTES;
    uint64_t choice = rng_next(rng) % 4, prefix = first + rng_next(rng) % (last - first + 1);
    int rc = 0;
    if (choice == 0)
        return 0; /* lost */
    for (uint64_t s = first; s < last && rc == 0; s++) {
        bool keep =
            choice == 1 || (choice == 2 && s < prefix) || (choice == 3 && rng_next(rng) & 1);
        if (!keep)
            continue;
        uint64_t lo = s * QT_IO_SECTOR_BYTES, hi = lo + QT_IO_SECTOR_BYTES;
        lo = lo > p->off ? lo : p->off;
        hi = hi < p->off + p->len ? hi : p->off + p->len;
        rc = pend_write_range(io, n, p, lo, hi);
    }
    return rc;
}

static int
crash_data(struct qt_io *io, struct fault *f, enum qt_io_crash_mode mode, uint64_t *rng)
{
    int first = 0;
    for (struct fnode *n = f->nodes; n != NULL; n = n->next) {
        for (uint32_t i = 0; mode == QT_IO_CRASH_RANDOM && i < n->npend; i++) {
            const struct pend *p = n->pend[i];
            int rc = 0;
            if (p->trunc && (rng_next(rng) & 1) != 0)
                rc = io_posix_ftruncate(io, n->real_fd, p->off);
            else if (!p->trunc && p->len > 0)
                rc = crash_tear(io, n, p, rng);
            if (rc != 0 && first == 0)
                first = rc;
        }
        pend_drop(f, n);
    }
    return first;
}

static void
nodes_free_all(struct fault *f)
{
    while (f->nodes != NULL) {
        struct fnode *n = f->nodes;
        f->nodes = n->next;
        qt_assert(n->npend == 0);
        if (n->real_fd >= 0)
            close(n->real_fd);
        qt_free(n->pend);
        qt_free(n);
    }
    for (uint32_t i = 0; i < f->fds_cap; i++)
        f->fds[i].node = NULL;
}

int
qt_io_fault_crash(struct qt_io *io, enum qt_io_crash_mode mode, uint64_t seed)
{
    qt_assert(io != NULL);
    if (io->kind != QT_IO_FAULT)
        return qt_fail(QT_EINVAL, "io: fault call on a non-fault handle");
    if (mode != QT_IO_CRASH_DROP && mode != QT_IO_CRASH_RANDOM)
        return qt_fail(QT_EINVAL, "io: unknown crash mode");
    struct fault *f = fault_of(io);
    uint64_t rng = seed;
    pthread_mutex_lock(&f->mu);
    int rc = f->crashed ? crashed_error() : crash_data(io, f, mode, &rng);
    if (!f->crashed) {
        uint32_t keep = mode == QT_IO_CRASH_RANDOM ? (uint32_t)(rng_next(&rng) % (f->nns + 1)) : 0;
        for (uint32_t i = f->nns; i > keep; i--) {
            int urc = ns_undo(io, &f->ns[i - 1]);
            if (urc != 0 && rc == 0)
                rc = urc;
        }
        ns_journal_free(f);
        nodes_free_all(f);
        qt_assert(f->pending_bytes == 0);
        f->crashed = true;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* ---- arming and lifetime ------------------------------------------------------ */

int
qt_io_fault_arm(struct qt_io *io, const struct qt_io_fault *fl)
{
    qt_assert(io != NULL);
    qt_assert(fl != NULL);
    if (io->kind != QT_IO_FAULT)
        return qt_fail(QT_EINVAL, "io: fault call on a non-fault handle");
    if ((unsigned)fl->op >= QT_IO_OP_COUNT)
        return qt_fail(QT_EINVAL, "io: unknown op class");
    bool tear = (fl->flags & QT_IO_FAULT_TEAR) != 0;
    if ((fl->flags & ~(QT_IO_FAULT_PERSISTENT | QT_IO_FAULT_TEAR)) != 0)
        return qt_fail(QT_EINVAL, "io: unknown fault flag");
    if (tear && fl->op != QT_IO_OP_WRITE)
        return qt_fail(QT_EINVAL, "io: only writes can be torn");
    if (fl->nth != 0 && !(fl->err < 0 && fl->err > -4096) && !(tear && fl->err == 0))
        return qt_fail(QT_EINVAL, "io: fault err must be -errno (0 only for a torn write)");
    struct fault *f = fault_of(io);
    pthread_mutex_lock(&f->mu);
    struct armed *a = &f->armed[fl->op];
    a->f = *fl;
    a->at = fl->nth == 0 ? 0 : f->count[fl->op] + fl->nth;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

uint64_t
qt_io_fault_count(struct qt_io *io, enum qt_io_op op)
{
    qt_assert(io != NULL);
    qt_assert(io->kind == QT_IO_FAULT);
    qt_assert((unsigned)op < QT_IO_OP_COUNT);
    struct fault *f = fault_of(io);
    pthread_mutex_lock(&f->mu);
    uint64_t c = f->count[op];
    pthread_mutex_unlock(&f->mu);
    return c;
}

static void
ns_journal_free(struct fault *f)
{
    for (uint32_t i = 0; i < f->nns; i++)
        ns_free(&f->ns[i]);
    qt_free(f->ns);
    f->ns = NULL;
    f->nns = f->ns_cap = 0;
}

/* Clean shutdown: what is pending reaches the files (as page-cache writeback
 * would), name operations stand. */
static void
fault_destroy(struct qt_io *io)
{
    struct fault *f = fault_of(io);
    if (!f->crashed) {
        for (struct fnode *n = f->nodes; n != NULL; n = n->next) {
            int rc = pend_apply(io, f, n);
            if (rc != 0)
                qt_log(QT_LOG_WARN, "io: fault: writing pending data at destroy: %s",
                       qt_strerror(rc));
        }
        ns_journal_free(f);
        nodes_free_all(f);
    }
    qt_assert(f->nodes == NULL);
    qt_assert(f->pending_bytes == 0);
    qt_free(f->fds);
    pthread_mutex_destroy(&f->mu);
    qt_free(f);
    io->priv = NULL;
}

static const struct io_backend io_fault_backend = {
    .name = "fault",
    .open = fault_open,
    .close = fault_close,
    .read_batch = fault_read_batch,
    .write_batch = fault_write_batch,
    .append_sync = fault_append_sync,
    .sync = fault_sync,
    .ftruncate = fault_ftruncate,
    .size = fault_size,
    .rename = fault_rename,
    .unlink = fault_unlink,
    .mkdir = fault_mkdir,
    .rmdir = fault_rmdir,
    .fsync_dir = fault_fsync_dir,
    .destroy = fault_destroy,
};

int
io_fault_init(struct qt_io *io)
{
    qt_assert(io->priv == NULL);
    struct fault *f = qt_calloc(1, sizeof(*f));
    if (f == NULL)
        return qt_fail(QT_ENOMEM, "io: no memory for fault state");
    pthread_mutex_init(&f->mu, NULL);
    io->priv = f;
    io->kind = QT_IO_FAULT;
    io->be = &io_fault_backend;
    return 0;
}
