/*
 * db_flush.c -- memtable -> segments -> MANIFEST (DESIGN.md "Flush").
 *
 *   1. Under swap_lock (exclusive): rotate the WAL and swap in an empty
 *      memtable.  Every WAL record below the rotation boundary is in the
 *      frozen memtable, none above it.  Publish a version that still reads
 *      the frozen memtable.
 *   2. Write the frozen memtable group by group: rows are split by shard
 *      (late points land in their own shard) and each shard touched gets one
 *      new segment file, written under a .tmp name and fsynced.
 *   3. Rename each file into place and fsync its shard directory; sync the
 *      catalog (segments reference series ids it assigned).
 *   4. Commit the MANIFEST (tmp, fsync, rename, fsync dir) with the new
 *      segments and checkpoint = boundary - 1.  This is the commit point: a
 *      crash before it leaves the old MANIFEST, stray files that open removes,
 *      and a WAL that still holds every record; after it, the new segments.
 *   5. Publish a version with the new segments and without the frozen
 *      memtable, then delete WAL files at or below the checkpoint.
 * Any failure puts the engine in read-only mode; the frozen memtable stays
 * readable and the WAL keeps its records, so a restart recovers everything.
 */
#include "db_int.h"
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "format/qt_log.h"
#include "storage/segwriter.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct flush_shard {
    int64_t start;
    uint64_t seq;
    struct qt_segw *w;
    struct qt_segw_result res;
    char tmp[PATH_MAX];
};

struct flush_ctx {
    struct qt_db *db;
    struct qt_memtable *m;
    struct flush_shard sh[QT_FLUSH_SHARDS_MAX];
    uint32_t nsh;
    uint64_t next_seq;
    struct qt_segw_col *cols;
    uint32_t cols_cap;
};

static int
flush_writer(struct flush_ctx *f, int64_t start, struct qt_segw **out)
{
    for (uint32_t i = 0; i < f->nsh; i++) {
        if (f->sh[i].start == start) {
            *out = f->sh[i].w;
            return 0;
        }
    }
    if (f->nsh == QT_FLUSH_SHARDS_MAX)
        return qt_fail(QT_ELIMIT, "flush: memtable spans more than QT_FLUSH_SHARDS_MAX shards");
    struct flush_shard *s = &f->sh[f->nsh];
    memset(s, 0, sizeof(*s));
    s->start = start;
    s->seq = f->next_seq++;
    char dir[PATH_MAX];
    int rc = db_shard_dir(f->db, start, dir, sizeof(dir));
    if (rc == 0) {
        rc = qt_io_mkdir(f->db->io, dir, 0755);
        if (rc == 0) { /* a new shard: make its name durable */
            char parent[PATH_MAX];
            int n = snprintf(parent, sizeof(parent), "%s/shards", f->db->dir);
            rc = n < 0 || (size_t)n >= sizeof(parent) ? -ENAMETOOLONG
                                                      : qt_io_fsync_dir(f->db->io, parent);
        } else if (rc == -EEXIST) {
            rc = 0;
        }
    }
    if (rc == 0)
        rc = db_seg_path(f->db, start, s->seq, ".tmp", s->tmp, sizeof(s->tmp));
    if (rc == 0)
        rc = qt_segw_create(f->db->io, s->tmp, start, f->db->mhdr.shard_duration_ns, s->seq, &s->w);
    if (rc != 0)
        return rc;
    f->nsh++;
    *out = s->w;
    return 0;
}

/* Columns of rows[r0, r1) that have at least one value there. */
static uint32_t
flush_cols(struct flush_ctx *f, const struct qt_mem_group_rows *rows, uint32_t r0, uint32_t r1,
           const struct qt_segw_col *all)
{
    uint32_t k = 0;
    for (uint32_t c = 0; c < rows->ncols; c++) {
        bool any = false;
        for (uint32_t r = r0; r < r1 && !any; r++)
            any = rows->cols[c].present[r] != 0;
        if (!any)
            continue;
        f->cols[k] = all[c];
        f->cols[k].vals = rows->cols[c].vals + r0;
        f->cols[k].present = rows->cols[c].present + r0;
        k++;
    }
    return k;
}

static int
flush_group_rows(struct flush_ctx *f, uint32_t gid, const struct qt_mem_group_rows *rows)
{
    struct qt_catalog_group g;
    int rc = qt_catalog_group_info(f->db->cat, gid, &g);
    if (rc != 0)
        return rc;
    struct qt_segw_col *all = f->cols + rows->ncols;
    for (uint32_t c = 0; c < rows->ncols; c++) {
        struct qt_catalog_series si;
        rc = qt_catalog_series_info(f->db->cat, rows->cols[c].sid, &si);
        if (rc != 0)
            return rc;
        all[c] = (struct qt_segw_col){.series_id = si.id,
                                      .vtype = si.vtype,
                                      .key = (const char *)si.key,
                                      .key_len = si.key_len,
                                      .group_len = si.group_len,
                                      .arena = rows->arena};
    }
    int64_t dur = f->db->mhdr.shard_duration_ns;
    for (uint32_t r0 = 0; r0 < rows->nrows && rc == 0;) {
        int64_t start = db_shard_start(rows->ts[r0], dur);
        uint32_t r1 = r0 + 1;
        while (r1 < rows->nrows && (uint64_t)rows->ts[r1] - (uint64_t)start < (uint64_t)dur)
            r1++;
        uint32_t k = flush_cols(f, rows, r0, r1, all);
        struct qt_segw *w = NULL;
        if (k > 0)
            rc = flush_writer(f, start, &w);
        if (rc == 0 && k > 0)
            rc = qt_segw_add_group(w, g.id, (const char *)g.key, g.key_len, rows->ts + r0, r1 - r0,
                                   f->cols, k);
        r0 = r1;
    }
    return rc;
}

static int
flush_group(void *arg, uint32_t gid)
{
    struct flush_ctx *f = arg;
    struct qt_mem_group_rows rows;
    int rc = qt_mem_collect_group(f->m, gid, INT64_MIN, INT64_MAX, &rows);
    if (rc != 0)
        return rc;
    if (2 * rows.ncols > f->cols_cap) {
        uint32_t cap = 2 * rows.ncols + 16;
        struct qt_segw_col *c = qt_realloc(f->cols, cap * sizeof(*c));
        if (c == NULL) {
            qt_mem_rows_free(&rows);
            return QT_ENOMEM;
        }
        f->cols = c;
        f->cols_cap = cap;
    }
    rc = flush_group_rows(f, gid, &rows);
    qt_mem_rows_free(&rows);
    return rc;
}

/* Finish every writer and move its file into place (steps 2-3). */
static int
flush_finish_files(struct flush_ctx *f)
{
    int rc = 0;
    for (uint32_t i = 0; i < f->nsh; i++) {
        struct flush_shard *s = &f->sh[i];
        int frc = rc == 0 ? qt_segw_finish(s->w, &s->res) : (qt_segw_abort(s->w), rc);
        s->w = NULL;
        rc = rc != 0 ? rc : frc;
        char final[PATH_MAX], dir[PATH_MAX];
        if (rc == 0)
            rc = db_seg_path(f->db, s->start, s->seq, "", final, sizeof(final));
        if (rc == 0)
            rc = qt_io_rename(f->db->io, s->tmp, final);
        if (rc == 0)
            rc = db_shard_dir(f->db, s->start, dir, sizeof(dir));
        if (rc == 0)
            rc = qt_io_fsync_dir(f->db->io, dir);
    }
    return rc;
}

static void
flush_abort(struct flush_ctx *f)
{
    for (uint32_t i = 0; i < f->nsh; i++) {
        if (f->sh[i].w != NULL)
            qt_segw_abort(f->sh[i].w);
        f->sh[i].w = NULL;
    }
}

int
db_manifest_write(struct qt_db *db, struct qt_manifest_hdr *hdr, struct db_seg **segs, uint32_t n)
{
    struct qt_manifest_seg *ms = qt_malloc((n + 1u) * sizeof(*ms));
    size_t cap = qt_manifest_bound(n);
    uint8_t *buf = qt_malloc(cap);
    int rc = ms == NULL || buf == NULL ? QT_ENOMEM : 0;
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        ms[i] = segs[i]->m;
    hdr->n_segments = n;
    size_t len = 0;
    if (rc == 0)
        rc = qt_manifest_encode(hdr, ms, n, buf, cap, &len);
    if (rc == 0)
        rc = qt_io_write_file_atomic(db->io, db->dir, "MANIFEST", buf, len);
    if (rc == 0)
        db->mhdr = *hdr;
    qt_free(buf);
    qt_free(ms);
    return rc;
}

/* Swap the memtable and rotate the WAL (step 1).  Returns the frozen
 * memtable's version or NULL when there is nothing to flush. */
static int
flush_swap(struct qt_db *db, uint64_t *boundary, struct db_version **frozen)
{
    *frozen = NULL;
    pthread_rwlock_wrlock(&db->swap_lock);
    struct db_version *v = db_version_get(db);
    int rc = 0;
    if (qt_mem_rows(v->active->m) == 0) {
        pthread_rwlock_unlock(&db->swap_lock);
        db_version_put(v);
        return 0;
    }
    qt_assert(v->imm == NULL);
    struct db_version *nv = qt_calloc(1, sizeof(*nv));
    struct db_seg **segs = qt_malloc((v->nsegs + 1u) * sizeof(*segs));
    struct db_mem *fresh = NULL;
    rc = nv == NULL || segs == NULL ? QT_ENOMEM : db_mem_new(&fresh);
    if (rc == 0)
        rc = qt_wlog_rotate(db->wal, boundary);
    if (rc != 0) {
        pthread_rwlock_unlock(&db->swap_lock);
        qt_free(nv);
        qt_free(segs);
        db_mem_put(fresh);
        db_version_put(v);
        return rc;
    }
    atomic_store(&nv->refs, 1);
    nv->active = fresh;
    nv->imm = v->active;
    atomic_fetch_add(&v->active->refs, 1);
    for (uint32_t i = 0; i < v->nsegs; i++) {
        segs[i] = v->segs[i];
        atomic_fetch_add(&segs[i]->refs, 1);
    }
    nv->segs = segs;
    nv->nsegs = v->nsegs;
    db_version_publish(db, nv);
    pthread_rwlock_unlock(&db->swap_lock);
    db_version_put(v);
    *frozen = db_version_get(db);
    return 0;
}

/* Build the post-flush version: old segments + new ones, no frozen memtable. */
static int
flush_publish(struct qt_db *db, struct flush_ctx *f, uint64_t checkpoint)
{
    struct db_version *v = db_version_get(db);
    uint32_t n = v->nsegs + f->nsh;
    struct db_seg **segs = qt_calloc(n + 1u, sizeof(*segs));
    struct db_version *nv = qt_calloc(1, sizeof(*nv));
    int rc = segs == NULL || nv == NULL ? QT_ENOMEM : 0;
    uint32_t k = 0;
    for (uint32_t i = 0; rc == 0 && i < v->nsegs; i++) {
        segs[k] = v->segs[i];
        atomic_fetch_add(&segs[k++]->refs, 1);
    }
    for (uint32_t i = 0; rc == 0 && i < f->nsh; i++) {
        struct flush_shard *s = &f->sh[i];
        struct db_seg *ds = qt_calloc(1, sizeof(*ds));
        if (ds == NULL) {
            rc = QT_ENOMEM;
            break;
        }
        atomic_store(&ds->refs, 1);
        ds->m = (struct qt_manifest_seg){.shard_start_ns = s->start,
                                         .seq = s->seq,
                                         .file_bytes = s->res.file_bytes,
                                         .file_xxh3 = s->res.file_xxh3,
                                         .ts_min = s->res.ts_min,
                                         .ts_max = s->res.ts_max,
                                         .points = s->res.points,
                                         .series = s->res.series};
        db_seg_path(db, s->start, s->seq, "", ds->path, sizeof(ds->path));
        /* Insert in (shard, seq) order: new seqs are above every old one. */
        uint32_t j = k++;
        while (j > 0 && segs[j - 1]->m.shard_start_ns > ds->m.shard_start_ns) {
            segs[j] = segs[j - 1];
            j--;
        }
        segs[j] = ds;
    }
    struct qt_manifest_hdr hdr = db->mhdr;
    hdr.generation++;
    hdr.wal_checkpoint = checkpoint;
    hdr.next_segment_seq = f->next_seq;
    hdr.catalog_bytes = qt_catalog_durable_size(db->cat);
    if (rc == 0)
        rc = db_manifest_write(db, &hdr, segs, k);
    /* Committed: open readers.  A reader that fails to open is a damaged
     * segment, as at startup (reported, served without). */
    for (uint32_t i = 0; rc == 0 && i < k; i++) {
        if (segs[i]->r == NULL && segs[i]->m.seq >= f->sh[0].seq &&
            qt_segr_open(db->io, segs[i]->path, segs[i]->m.file_bytes, &segs[i]->r) != 0)
            db->damaged++;
    }
    if (rc == 0) {
        atomic_store(&nv->refs, 1);
        pthread_rwlock_rdlock(&db->swap_lock);
        struct db_version *cur = db_version_get(db);
        nv->active = cur->active;
        atomic_fetch_add(&nv->active->refs, 1);
        nv->segs = segs;
        nv->nsegs = k;
        db_version_publish(db, nv);
        db_version_put(cur);
        pthread_rwlock_unlock(&db->swap_lock);
    } else {
        for (uint32_t i = 0; segs != NULL && i < k; i++)
            db_seg_put(segs[i]);
        qt_free(segs);
        qt_free(nv);
    }
    db_version_put(v);
    return rc;
}

int
db_flush_once(struct qt_db *db)
{
    pthread_mutex_lock(&db->flush_mu);
    int64_t t0 = db_now_ms();
    uint64_t boundary = 0;
    struct db_version *frozen = NULL;
    int rc = flush_swap(db, &boundary, &frozen);
    if (rc != 0 || frozen == NULL) {
        if (rc != 0)
            db_set_readonly(db, "flush: WAL rotation failed");
        pthread_mutex_unlock(&db->flush_mu);
        return rc;
    }
    struct flush_ctx *f = qt_calloc(1, sizeof(*f));
    rc = f == NULL ? QT_ENOMEM : 0;
    if (rc == 0) {
        f->db = db;
        f->m = frozen->imm->m;
        f->next_seq = db->mhdr.next_segment_seq;
        rc = qt_mem_foreach_group(f->m, flush_group, f);
        rc = rc == 0 ? flush_finish_files(f) : (flush_abort(f), rc);
    }
    if (rc == 0)
        rc = qt_catalog_sync(db->cat);
    uint64_t points = frozen->imm != NULL ? qt_mem_points(frozen->imm->m) : 0;
    if (rc == 0)
        rc = f->nsh == 0 ? qt_fail(QT_ECORRUPT, "flush: memtable produced no segment")
                         : flush_publish(db, f, boundary - 1);
    if (rc == 0) {
        qt_wlog_remove_upto(db->wal, boundary - 1);
        atomic_fetch_add(&db->flushes, 1);
        atomic_fetch_add(&db->flush_points, points);
        atomic_fetch_add(&db->flush_ns, (uint64_t)(db_now_ms() - t0) * 1000000u);
        qt_log(QT_LOG_INFO, "flush: %" PRIu64 " points into %u segment(s) in %" PRId64 " ms",
               points, f->nsh, db_now_ms() - t0);
    } else {
        qt_log(QT_LOG_ERROR, "flush failed: %s (%s)", qt_strerror(rc), qt_err_detail());
        db_set_readonly(db, "flush failed: segment, catalog or MANIFEST write error");
    }
    if (f != NULL)
        qt_free(f->cols);
    qt_free(f);
    db_version_put(frozen);
    pthread_mutex_unlock(&db->flush_mu);
    return rc;
}
