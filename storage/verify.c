/*
 * verify.c -- checksums and structure of data directories and backups
 * (verify.h, design/ops.md "Verify").
 *
 * The checker is independent of the engine's readers: it reads each file
 * whole (through the io handle, or mapped when larger than inmem_max) and
 * runs the format/ decoders over the bytes, so damage is located to the
 * byte offset and a damaged part does not stop the check of the rest: a
 * bad index chunk loses the series it indexes, a bad block loses that
 * block's points, a bad WAL record the rest of its file.
 *
 * Quarantine order (offline and live): move the damaged file to
 * quarantine/, make both directories durable, then commit a MANIFEST
 * without it.  A crash between the two leaves a MANIFEST naming a missing
 * file, which open reports as damaged and a second verify --quarantine
 * removes; the other order would let open delete the unlisted file as a
 * stray, losing it for analysis.
 */
#include "storage/verify.h"

#include "format/bkmanifest.h"
#include "format/block.h"
#include "format/catrec.h"
#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_hash.h"
#include "format/qt_log.h"
#include "format/segment.h"
#include "format/wal.h"
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
#include <unistd.h>

/* Decode scratch: the largest raw block payload or WAL payload. */
#define VF_SCRATCH                                                                                 \
    ((QT_BLOCK_RAW_MAX > QT_WAL_PAYLOAD_MAX ? QT_BLOCK_RAW_MAX : QT_WAL_PAYLOAD_MAX) + 64u)

const char *
qt_verify_kind_name(enum qt_verify_kind k)
{
    static const char *const names[] = {"manifest", "segment", "catalog", "wal", "backup"};
    return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "unknown";
}

/* ---- state ---------------------------------------------------------------- */

/* Per file being checked: it has a damage finding already. */
struct vf_fctx {
    bool damaged;
};

/* Decode buffers (one set per thread). */
struct vf_buf {
    uint8_t *scratch;
    int64_t *ts;
    void *vals;
    uint8_t *pres;
};

struct vf {
    struct qt_io *io;
    const struct qt_verify_opts *o;
    struct qt_verify_result *r;
    char dir[PATH_MAX];
    uint64_t inmem_max;
    pthread_mutex_t mu;    /* r, the report callback and err, for the segment workers */
    int err;               /* first operational error of a worker */
    _Atomic uint32_t next; /* next MANIFEST entry a worker takes */
    struct vf_fctx fc;     /* the current file outside the segment workers */
    /* MANIFEST */
    bool have_manifest;
    struct qt_manifest_hdr mh;
    struct qt_manifest_seg *ms;
    uint8_t *bad; /* per ms entry: damaged or missing */
    /* BACKUP */
    uint8_t *bkbuf;
    struct qt_bkm_hdr bh;
    struct qt_bkm_file *bf;
    uint8_t *bf_seen;
    struct vf_buf b; /* the main thread's */
};

static void
vf_report(struct vf *v, struct vf_fctx *fc, const struct qt_verify_finding *f)
{
    qt_assert(f != NULL && fc != NULL);
    pthread_mutex_lock(&v->mu);
    v->r->findings++;
    if (f->damage) {
        v->r->damages++;
        if (!fc->damaged)
            v->r->damaged_files++;
        fc->damaged = true;
    }
    if (v->o->report != NULL)
        v->o->report(v->o->arg, f);
    pthread_mutex_unlock(&v->mu);
}

static void
vf_file_damage(struct vf *v, struct vf_fctx *fc, enum qt_verify_kind k, const char *path,
               uint64_t off, int code, const char *what)
{
    struct qt_verify_finding f = {
        .damage = true, .kind = k, .path = path, .offset = off, .code = code, .what = what};
    vf_report(v, fc, &f);
}

static void
vf_info(struct vf *v, struct vf_fctx *fc, enum qt_verify_kind k, const char *path, uint64_t off,
        const char *what)
{
    struct qt_verify_finding f = {.kind = k, .path = path, .offset = off, .what = what};
    vf_report(v, fc, &f);
}

/* ---- reading files ---------------------------------------------------------- */

#define vf_file   db_ops_file
#define vf_unload db_ops_file_unload

/* The whole file at path (-ENOENT when missing). */
static int
vf_load(struct vf *v, const char *path, struct vf_file *f)
{
    qt_assert(path != NULL);
    int rc = db_ops_file_load(v->io, path, v->inmem_max, f);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&v->mu);
    v->r->files++;
    v->r->bytes += f->len;
    qt_ops_progress(&v->o->ctl, v->r->bytes, 0);
    pthread_mutex_unlock(&v->mu);
    return 0;
}

/* The BACKUP entry for rel (marked seen), or NULL.  Paths are strictly
 * ascending (checked by the decoder). */
static const struct qt_bkm_file *
vf_bk_entry(struct vf *v, const char *rel)
{
    size_t len = strlen(rel);
    uint32_t lo = 0, hi = v->bf != NULL ? v->bh.n_files : 0;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct qt_bkm_file *e = &v->bf[mid];
        size_t m = e->path_len < len ? e->path_len : len;
        int c = memcmp(e->path, rel, m);
        c = c != 0 ? c : e->path_len < len ? -1 : e->path_len > len;
        if (c == 0) {
            v->bf_seen[mid] = 1; /* one byte per entry: workers never share one */
            return e;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Compare a loaded file with its BACKUP entry (when verifying a backup). */
static void
vf_bk_check(struct vf *v, struct vf_fctx *fc, const char *rel, const char *path,
            const struct vf_file *f)
{
    if (v->bf == NULL)
        return;
    const struct qt_bkm_file *e = vf_bk_entry(v, rel);
    if (e == NULL)
        vf_info(v, fc, QT_VERIFY_BACKUP, path, UINT64_MAX, "file not listed in BACKUP");
    else if (e->size != f->len)
        vf_file_damage(v, fc, QT_VERIFY_BACKUP, path, f->len < e->size ? f->len : e->size,
                       QT_ETRUNC, "size differs from BACKUP");
    else if (e->xxh3 != qt_hash64(f->buf, f->len))
        vf_file_damage(v, fc, QT_VERIFY_BACKUP, path, UINT64_MAX, QT_ECHECKSUM,
                       "XXH3 differs from BACKUP");
}

/* ---- segments ----------------------------------------------------------------- */

struct vf_seg {
    struct vf *v;
    struct vf_buf *b;
    struct vf_fctx fc;
    uint64_t blocks, points;
    const char *path;
    const struct vf_file *f;
    const struct qt_manifest_seg *m;
    struct qt_seg_footer foot;
    struct qt_seg_key *keys;
    uint32_t nkeys;
    struct qt_seg_entry *ents;
    uint32_t nents;
    bool found; /* a structural finding was reported */
    bool oom;   /* memory ran out while checking blocks */
};

/* Report the loss of entry e (series, time range, points) at off. */
static void
vf_seg_lost(struct vf_seg *s, const struct qt_seg_entry *e, uint64_t off, int code,
            const char *what)
{
    struct qt_verify_finding f = {.damage = true,
                                  .kind = QT_VERIFY_SEGMENT,
                                  .path = s->path,
                                  .offset = off,
                                  .code = code,
                                  .what = what,
                                  .series_id = e->series_id,
                                  .ts_min = e->ts_min,
                                  .ts_max = e->ts_max,
                                  .points = e->n_values};
    uint32_t k = s->keys != NULL ? qt_seg_keytab_find(s->keys, s->nkeys, e->series_id) : 0;
    if (s->keys != NULL && k < s->nkeys) {
        f.series = (const char *)s->keys[k].key;
        f.series_len = s->keys[k].key_len;
    }
    s->found = true;
    vf_report(s->v, &s->fc, &f);
}

/* The whole segment is unreadable: report its MANIFEST range. */
static void
vf_seg_whole(struct vf_seg *s, uint64_t off, int code, const char *what)
{
    struct qt_verify_finding f = {.damage = true,
                                  .kind = QT_VERIFY_SEGMENT,
                                  .path = s->path,
                                  .offset = off,
                                  .code = code,
                                  .what = what};
    if (s->m != NULL) {
        f.ts_min = s->m->ts_min;
        f.ts_max = s->m->ts_max;
        f.points = s->m->points;
    }
    s->found = true;
    vf_report(s->v, &s->fc, &f);
}

/* Header, footer, metaindex and key table.  Non-zero: stop here. */
static int
vf_seg_meta(struct vf_seg *s, struct qt_seg_chunk_ref **refs)
{
    qt_assert(s->f->buf != NULL || s->f->len == 0);
    const uint8_t *b = s->f->buf;
    size_t len = s->f->len;
    struct qt_seg_header h;
    if (len < QT_SEG_HEADER_SIZE + QT_SEG_FOOTER_SIZE) {
        vf_seg_whole(s, len, QT_ETRUNC, "segment shorter than header and footer: all lost");
        return -1;
    }
    int rc = qt_seg_header_decode(b, len, &h);
    if (rc != 0) {
        vf_seg_whole(s, 0, rc, "segment header damaged: all lost");
        return rc;
    }
    rc = qt_seg_footer_decode(b + len - QT_SEG_FOOTER_SIZE, QT_SEG_FOOTER_SIZE, len, &s->foot);
    if (rc == 0)
        rc = qt_seg_check_header_footer(&h, &s->foot);
    if (rc != 0) {
        vf_seg_whole(s, len - QT_SEG_FOOTER_SIZE, rc, "segment footer damaged: all lost");
        return rc;
    }
    *refs = qt_calloc(s->foot.n_chunks + 1u, sizeof(**refs));
    s->keys = qt_calloc(s->foot.n_series + 1u, sizeof(*s->keys));
    if (*refs == NULL || s->keys == NULL)
        return QT_ENOMEM;
    uint64_t moff = qt_seg_metaindex_off(&s->foot);
    rc =
        qt_seg_metaindex_decode(b + moff, s->foot.metaindex_len, &s->foot, *refs, s->foot.n_chunks);
    if (rc != 0) {
        vf_seg_whole(s, moff, rc, "segment metaindex damaged: all lost");
        return rc;
    }
    rc = qt_seg_keytab_decode(b + s->foot.keytab_off, s->foot.keytab_len, &s->foot, s->keys,
                              s->foot.n_series);
    if (rc != 0) {
        qt_free(s->keys);
        s->keys = NULL;
        struct qt_seg_entry none = {0};
        vf_seg_lost(s, &none, s->foot.keytab_off, rc,
                    "key table damaged: blocks readable but not attributable to series");
    } else {
        s->nkeys = s->foot.n_series;
    }
    return 0;
}

/* Every index chunk; a damaged one loses the series it indexes. */
static int
vf_seg_chunks(struct vf_seg *s, const struct qt_seg_chunk_ref *refs)
{
    qt_assert(s->ents == NULL);
    s->ents = qt_malloc(((size_t)s->foot.n_blocks + 1u) * sizeof(*s->ents));
    if (s->ents == NULL)
        return QT_ENOMEM;
    for (uint32_t i = 0; i < s->foot.n_chunks; i++) {
        const struct qt_seg_chunk_ref *ref = &refs[i];
        size_t clen = (size_t)qt_seg_chunk_bytes(ref->count);
        int rc = qt_seg_chunk_decode(s->f->buf + ref->offset, clen, &s->foot, ref,
                                     s->ents + s->nents, ref->count);
        if (rc == 0 && s->nents > 0)
            rc = qt_seg_entry_check_order(&s->ents[s->nents - 1], &s->ents[s->nents]);
        if (rc != 0) {
            struct qt_seg_entry e = {
                .series_id = ref->first_series == ref->last_series ? ref->first_series : 0};
            vf_seg_lost(s, &e, ref->offset, rc,
                        "index chunk damaged: the blocks of the series it indexes are lost");
            continue;
        }
        s->nents += ref->count;
    }
    return 0;
}

/* Sort key of an entry: its TS block, then its VALUE block (16 bytes, so
 * sorting moves little; entries themselves stay in index order). */
struct vf_key {
    uint64_t ts_off, val_off;
    uint32_t idx;
};

static int
vf_key_cmp(const void *a, const void *b)
{
    const struct vf_key *x = a, *y = b;
    if (x->ts_off != y->ts_off)
        return x->ts_off < y->ts_off ? -1 : 1;
    return x->val_off < y->val_off ? -1 : (x->val_off > y->val_off);
}

/* The VALUE block of e against the decoded TS block (ts, tsi). */
static void
vf_seg_value(struct vf_seg *s, const struct qt_seg_entry *e, const struct qt_block_info *tsi)
{
    qt_assert(tsi != NULL && tsi->n_rows <= QT_BLOCK_POINTS_MAX);
    const uint8_t *b = s->f->buf + e->value_block_off;
    struct qt_block_info vi;
    struct vf_buf *vb = s->b;
    int rc = qt_block_decode_values(b, e->value_block_len, vb->scratch, VF_SCRATCH, vb->ts,
                                    tsi->n_rows, vb->vals, vb->pres, QT_BLOCK_POINTS_MAX, &vi);
    if (rc == 0)
        rc = qt_block_check_stats(&vi, vb->vals);
    if (rc == 0)
        rc = qt_seg_entry_check_blocks(e, tsi, &vi);
    if (rc != 0) {
        vf_seg_lost(s, e, e->value_block_off, rc, "value block damaged: its points are lost");
        return;
    }
    s->blocks++;
    s->points += vi.n_values;
}

/* Every block, TS blocks decoded once for the VALUE blocks sharing them. */
static void
vf_seg_blocks(struct vf_seg *s)
{
    qt_assert(s->nents == 0 || s->ents != NULL);
    struct vf_key *k = qt_malloc((s->nents + 1u) * sizeof(*k));
    if (k == NULL) {
        s->oom = true;
        return;
    }
    for (uint32_t i = 0; i < s->nents; i++)
        k[i] = (struct vf_key){s->ents[i].ts_block_off, s->ents[i].value_block_off, i};
    qsort(k, s->nents, sizeof(*k), vf_key_cmp);
    for (uint32_t i = 0; i < s->nents;) {
        const struct qt_seg_entry *e = &s->ents[k[i].idx];
        uint32_t j = i + 1;
        while (j < s->nents && k[j].ts_off == e->ts_block_off)
            j++;
        struct qt_block_info tsi;
        int rc = qt_block_decode_ts(s->f->buf + e->ts_block_off, e->ts_block_len, s->b->scratch,
                                    VF_SCRATCH, s->b->ts, QT_BLOCK_POINTS_MAX, &tsi);
        if (rc == 0)
            rc = qt_block_check_ts(&tsi, s->b->ts);
        s->blocks += rc == 0;
        for (uint32_t x = i; x < j; x++) {
            if (rc != 0)
                vf_seg_lost(s, &s->ents[k[x].idx], e->ts_block_off, rc,
                            "timestamp block damaged: the points of its group are lost");
            else
                vf_seg_value(s, &s->ents[k[x].idx], &tsi);
        }
        i = j;
        if (qt_ops_cancelled(&s->v->o->ctl))
            break;
    }
    qt_free(k);
}

static void
vf_seg_free(struct vf_seg *s, struct qt_seg_chunk_ref *refs, struct vf_file *f)
{
    qt_free(refs);
    qt_free(s->keys);
    qt_free(s->ents);
    vf_unload(f);
    pthread_mutex_lock(&s->v->mu);
    s->v->r->blocks += s->blocks;
    s->v->r->points += s->points;
    pthread_mutex_unlock(&s->v->mu);
}

/* Check one segment file (m: its MANIFEST entry) with buffers b.  Returns
 * -1 when the file is damaged, 0 when clean, or an operational error. */
static int
vf_segment(struct vf *v, struct vf_buf *b, const char *rel, const struct qt_manifest_seg *m)
{
    qt_assert(m != NULL);
    qt_assert(b->scratch != NULL);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", v->dir, rel);
    struct vf_file f;
    int rc = vf_load(v, path, &f);
    struct vf_seg s = {.v = v, .b = b, .path = path, .f = &f, .m = m};
    if (rc == -ENOENT) {
        vf_bk_entry(v, rel);
        vf_seg_whole(&s, UINT64_MAX, rc, "segment file missing: all lost");
        return -1;
    }
    if (rc != 0)
        return rc;
    vf_bk_check(v, &s.fc, rel, path, &f);
    bool hash_bad = m->file_bytes != f.len || m->file_xxh3 != qt_hash64(f.buf, f.len);
    struct qt_seg_chunk_ref *refs = NULL;
    rc = vf_seg_meta(&s, &refs);
    if (rc == 0)
        rc = vf_seg_chunks(&s, refs);
    if (rc == 0)
        vf_seg_blocks(&s);
    rc = rc == 0 && s.oom ? QT_ENOMEM : rc;
    if (rc != QT_ENOMEM && hash_bad && !s.found)
        vf_seg_whole(&s,
                     m->file_bytes != f.len ? (f.len < m->file_bytes ? f.len : m->file_bytes)
                                            : UINT64_MAX,
                     m->file_bytes != f.len ? QT_ETRUNC : QT_ECHECKSUM,
                     "file differs from its MANIFEST size/XXH3 (damage outside any block)");
    vf_seg_free(&s, refs, &f);
    return rc == QT_ENOMEM ? rc : s.fc.damaged ? -1 : 0;
}

/* ---- MANIFEST, strays -------------------------------------------------------------- */

static int
vf_manifest(struct vf *v)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/MANIFEST", v->dir);
    struct vf_file f;
    v->fc.damaged = false;
    int rc = vf_load(v, path, &f);
    if (rc == -ENOENT)
        return 0; /* a database that never flushed */
    if (rc != 0)
        return rc;
    vf_bk_check(v, &v->fc, "MANIFEST", path, &f);
    rc = qt_manifest_decode_header(f.buf, f.len, &v->mh);
    if (rc == 0 && (v->ms = qt_calloc(v->mh.n_segments + 1u, sizeof(*v->ms))) == NULL)
        rc = QT_ENOMEM;
    if (rc == 0 && (v->bad = qt_calloc(v->mh.n_segments + 1u, 1)) == NULL)
        rc = QT_ENOMEM;
    if (rc == 0)
        rc = qt_manifest_decode(f.buf, f.len, &v->mh, v->ms, v->mh.n_segments);
    vf_unload(&f);
    if (rc == QT_ENOMEM)
        return rc;
    if (rc != 0) {
        vf_file_damage(v, &v->fc, QT_VERIFY_MANIFEST, path, UINT64_MAX, rc,
                       "MANIFEST damaged: the database cannot open; segments are unlisted");
        return 0;
    }
    v->have_manifest = true;
    return 0;
}

static bool
vf_listed(const struct vf *v, int64_t shard, uint64_t seq)
{
    for (uint32_t i = 0; v->have_manifest && i < v->mh.n_segments; i++) {
        if (v->ms[i].shard_start_ns == shard && v->ms[i].seq == seq)
            return true;
    }
    return false;
}

/* Segment files in shards/ the MANIFEST does not list (open deletes them). */
static void
vf_strays(struct vf *v)
{
    char sdir[PATH_MAX];
    snprintf(sdir, sizeof(sdir), "%s/shards", v->dir);
    DIR *d = opendir(sdir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char *end = NULL;
        long long shard = strtoll(e->d_name, &end, 10);
        if (e->d_name[0] == '.' || *end != '\0')
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/%s", sdir, e->d_name);
        DIR *sd = opendir(sub);
        struct dirent *f;
        while (sd != NULL && (f = readdir(sd)) != NULL) {
            unsigned long long seq = strtoull(f->d_name, &end, 10);
            if (f->d_name[0] == '.' ||
                (end == f->d_name + 20 && strcmp(end, ".qts") == 0 && vf_listed(v, shard, seq)))
                continue;
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", sub, f->d_name);
            vf_info(v, &v->fc, QT_VERIFY_SEGMENT, path, UINT64_MAX,
                    "file not listed in the MANIFEST (left by an interrupted flush or "
                    "compaction; open removes it)");
        }
        if (sd != NULL)
            closedir(sd);
    }
    if (d != NULL)
        closedir(d);
}

/* ---- catalog and WAL -------------------------------------------------------------------- */

static int
vf_catalog(struct vf *v)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/catalog.qtc", v->dir);
    struct vf_file f;
    v->fc.damaged = false;
    int rc = vf_load(v, path, &f);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    vf_bk_check(v, &v->fc, "catalog.qtc", path, &f);
    uint32_t version;
    rc = qt_catrec_header_decode(f.buf, f.len, &version);
    if (rc != 0) {
        vf_file_damage(v, &v->fc, QT_VERIFY_CATALOG, path, 0, rc,
                       "catalog header damaged: every series name is lost (open fails)");
        vf_unload(&f);
        return 0;
    }
    uint64_t durable = v->have_manifest ? v->mh.catalog_bytes : 0;
    for (size_t off = QT_CATREC_HEADER_SIZE; off < f.len;) {
        struct qt_catrec rec;
        size_t used = 0;
        rc = qt_catrec_decode(f.buf + off, f.len - off, &rec, &used);
        if (rc == 0) {
            off += used;
            continue;
        }
        if (rc == QT_ETRUNC || (durable > 0 && off >= durable))
            vf_info(v, &v->fc, QT_VERIFY_CATALOG, path, off,
                    "unsynced or torn tail (cut at open; its series come back from the WAL)");
        else
            vf_file_damage(v, &v->fc, QT_VERIFY_CATALOG, path, off, rc,
                           "catalog record damaged: series defined from here on are unknown "
                           "(open fails; salvage skips the record)");
        break;
    }
    vf_unload(&f);
    return 0;
}

static int
vf_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y);
}

/* Records of one WAL file; last: it is the newest file (a torn tail is normal). */
static void
vf_wal_file(struct vf *v, const char *path, const struct vf_file *f, bool last, uint64_t *prev_seq)
{
    qt_assert(f->buf != NULL || f->len == 0);
    for (size_t off = 0; off < f->len;) {
        struct qt_wal_record rec;
        int rc = qt_wal_record_read(f->buf, f->len, off, v->b.scratch, VF_SCRATCH, &rec);
        if (rc == 0 && rec.seq <= *prev_seq)
            rc = qt_fail(QT_ECORRUPT, "verify: WAL sequence numbers not ascending");
        if (rc == 0) {
            *prev_seq = rec.seq;
            off += rec.record_len;
            continue;
        }
        bool zeros = true;
        for (size_t k = off; k < f->len && zeros; k++)
            zeros = f->buf[k] == 0;
        if (last && (rc == QT_ETRUNC || zeros))
            vf_info(v, &v->fc, QT_VERIFY_WAL, path, off,
                    "torn tail of the newest WAL file (cut at open)");
        else
            vf_file_damage(v, &v->fc, QT_VERIFY_WAL, path, off, rc,
                           "WAL record damaged: replay skips the rest of this file (points "
                           "not yet flushed to segments from here are lost)");
        break;
    }
}

static int
vf_wal(struct vf *v)
{
    char wdir[PATH_MAX];
    snprintf(wdir, sizeof(wdir), "%s/wal", v->dir);
    DIR *d = opendir(wdir);
    if (d == NULL)
        return 0;
    uint64_t *firsts = qt_malloc(QT_BACKUP_WAL_FILES_MAX * sizeof(*firsts));
    uint32_t n = 0;
    struct dirent *e;
    while (firsts != NULL && n < QT_BACKUP_WAL_FILES_MAX && (e = readdir(d)) != NULL) {
        char *end = NULL;
        unsigned long long first = strtoull(e->d_name, &end, 10);
        if (end == e->d_name + 20 && strcmp(end, ".wal") == 0)
            firsts[n++] = first;
    }
    closedir(d);
    if (firsts == NULL)
        return QT_ENOMEM;
    qsort(firsts, n, sizeof(*firsts), vf_u64_cmp);
    int rc = 0;
    uint64_t prev = 0;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        char rel[64], path[PATH_MAX];
        snprintf(rel, sizeof(rel), "wal/%020" PRIu64 ".wal", firsts[i]);
        snprintf(path, sizeof(path), "%s/%s", v->dir, rel);
        struct vf_file f;
        v->fc.damaged = false;
        rc = vf_load(v, path, &f);
        if (rc == -ENOENT) { /* live: removed by a flush since the listing */
            rc = 0;
            continue;
        }
        if (rc != 0)
            break;
        vf_bk_check(v, &v->fc, rel, path, &f);
        if (firsts[i] > 0 && prev < firsts[i] - 1)
            prev = firsts[i] - 1; /* records of file i have seq >= its name */
        vf_wal_file(v, path, &f, i + 1 == n, &prev);
        vf_unload(&f);
    }
    qt_free(firsts);
    return rc;
}

/* ---- BACKUP ------------------------------------------------------------------------ */

/* Load and decode dir/BACKUP when present (sets r->is_backup). */
static int
vf_backup_open(struct vf *v)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", v->dir, QT_BKM_NAME);
    struct vf_file f;
    v->fc.damaged = false;
    int rc = vf_load(v, path, &f);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    v->r->is_backup = true;
    rc = qt_bkm_decode_header(f.buf, f.len, &v->bh);
    if (rc == 0 && (v->bf = qt_calloc(v->bh.n_files + 1u, sizeof(*v->bf))) == NULL)
        rc = QT_ENOMEM;
    if (rc == 0 && (v->bf_seen = qt_calloc(v->bh.n_files + 1u, 1)) == NULL)
        rc = QT_ENOMEM;
    if (rc == 0)
        rc = qt_bkm_decode(f.buf, f.len, &v->bh, v->bf, v->bh.n_files);
    if (rc == 0 && !f.mapped) {
        v->bkbuf = f.buf; /* the paths point into it */
        return 0;
    }
    vf_unload(&f);
    qt_free(v->bf);
    v->bf = NULL;
    if (rc == QT_ENOMEM)
        return rc;
    vf_file_damage(v, &v->fc, QT_VERIFY_BACKUP, path, UINT64_MAX, rc,
                   "BACKUP damaged: the backup cannot be restored");
    return 0;
}

/* Files BACKUP lists that the data checks did not visit. */
static int
vf_backup_rest(struct vf *v)
{
    for (uint32_t i = 0; v->bf != NULL && i < v->bh.n_files; i++) {
        if (v->bf_seen[i])
            continue;
        char rel[QT_BACKUP_PATH_MAX + 1], path[PATH_MAX];
        memcpy(rel, v->bf[i].path, v->bf[i].path_len);
        rel[v->bf[i].path_len] = '\0';
        snprintf(path, sizeof(path), "%s/%s", v->dir, rel);
        struct vf_file f;
        v->fc.damaged = false;
        int rc = vf_load(v, path, &f);
        if (rc == -ENOENT) {
            vf_file_damage(v, &v->fc, QT_VERIFY_BACKUP, path, UINT64_MAX, rc,
                           "file listed in BACKUP "
                           "is missing");
            continue;
        }
        if (rc != 0)
            return rc;
        vf_bk_check(v, &v->fc, rel, path, &f);
        vf_unload(&f);
    }
    return 0;
}

/* ---- driver ---------------------------------------------------------------------------- */

static int
vf_buf_init(struct vf_buf *b)
{
    b->scratch = qt_malloc(VF_SCRATCH);
    b->ts = qt_malloc(QT_BLOCK_POINTS_MAX * sizeof(*b->ts));
    b->vals = qt_malloc(QT_BLOCK_POINTS_MAX * sizeof(struct qt_str));
    b->pres = qt_malloc(QT_BLOCK_POINTS_MAX);
    return b->scratch == NULL || b->ts == NULL || b->vals == NULL || b->pres == NULL ? QT_ENOMEM
                                                                                     : 0;
}

static void
vf_buf_free(struct vf_buf *b)
{
    qt_free(b->scratch);
    qt_free(b->ts);
    qt_free(b->vals);
    qt_free(b->pres);
}

static int
vf_init(struct vf *v, const char *dir, const struct qt_verify_opts *o, struct qt_verify_result *r)
{
    memset(r, 0, sizeof(*r));
    v->o = o;
    v->r = r;
    v->inmem_max = o->inmem_max != 0 ? o->inmem_max : QT_VERIFY_INMEM_MAX;
    pthread_mutex_init(&v->mu, NULL);
    int n = snprintf(v->dir, sizeof(v->dir), "%s", dir);
    if (n < 0 || (size_t)n >= sizeof(v->dir) - 64)
        return qt_fail(-ENAMETOOLONG, "verify: path too long");
    return vf_buf_init(&v->b);
}

static void
vf_free(struct vf *v)
{
    qt_free(v->ms);
    qt_free(v->bad);
    qt_free(v->bkbuf);
    qt_free(v->bf);
    qt_free(v->bf_seen);
    vf_buf_free(&v->b);
    pthread_mutex_destroy(&v->mu);
}

static void
vf_rel(char *out, size_t cap, const struct qt_manifest_seg *m)
{
    snprintf(out, cap, "shards/%" PRId64 "/%020" PRIu64 ".qts", m->shard_start_ns, m->seq);
}

/* A segment worker: takes MANIFEST entries until none is left. */
static int
vf_worker_run(struct vf *v, struct vf_buf *b)
{
    for (;;) {
        uint32_t i = atomic_fetch_add(&v->next, 1);
        pthread_mutex_lock(&v->mu);
        bool stop = v->err != 0;
        pthread_mutex_unlock(&v->mu);
        if (stop || i >= v->mh.n_segments)
            return 0;
        if (qt_ops_cancelled(&v->o->ctl))
            return qt_fail(QT_ECLOSED, "verify: interrupted");
        char rel[QT_BACKUP_PATH_MAX + 1];
        vf_rel(rel, sizeof(rel), &v->ms[i]);
        int rc = vf_segment(v, b, rel, &v->ms[i]);
        v->bad[i] = rc == -1;
        pthread_mutex_lock(&v->mu);
        v->r->segments++;
        v->err = rc < -1 && v->err == 0 ? rc : v->err;
        pthread_mutex_unlock(&v->mu);
    }
}

static void *
vf_worker_main(void *arg)
{
    struct vf *v = arg;
    struct vf_buf b;
    int rc = vf_buf_init(&b);
    if (rc == 0)
        rc = vf_worker_run(v, &b);
    vf_buf_free(&b);
    pthread_mutex_lock(&v->mu);
    v->err = rc != 0 && v->err == 0 ? rc : v->err;
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

/* Every MANIFEST segment, QT_VERIFY_THREADS at a time (reading and decoding
 * overlap); bad[i] set for damaged or missing ones. */
static int
vf_segments(struct vf *v)
{
    if (!v->have_manifest)
        return 0;
    pthread_t thr[QT_VERIFY_THREADS];
    uint32_t n = 0;
    atomic_store(&v->next, 0);
    for (; n + 1 < QT_VERIFY_THREADS && n + 1 < v->mh.n_segments; n++) {
        if (pthread_create(&thr[n], NULL, vf_worker_main, v) != 0)
            break;
    }
    int rc = vf_worker_run(v, &v->b); /* this thread works too */
    for (uint32_t i = 0; i < n; i++)
        pthread_join(thr[i], NULL);
    return rc != 0 ? rc : v->err;
}

/* Move v->ms entries flagged bad to quarantine/ (files that exist). */
static int
vf_move_bad(struct vf *v, struct qt_io *io)
{
    qt_assert(v->bad != NULL);
    char qdir[PATH_MAX];
    snprintf(qdir, sizeof(qdir), "%s/quarantine", v->dir);
    int rc = qt_io_mkdir(io, qdir, 0755);
    rc = rc == -EEXIST ? 0 : rc == 0 ? qt_io_fsync_dir(io, v->dir) : rc;
    for (uint32_t i = 0; rc == 0 && i < v->mh.n_segments; i++) {
        if (!v->bad[i])
            continue;
        char rel[QT_BACKUP_PATH_MAX + 1], from[PATH_MAX], to[PATH_MAX], sdir[PATH_MAX];
        vf_rel(rel, sizeof(rel), &v->ms[i]);
        snprintf(from, sizeof(from), "%s/%s", v->dir, rel);
        snprintf(to, sizeof(to), "%s/%" PRId64 "-%020" PRIu64 ".qts", qdir, v->ms[i].shard_start_ns,
                 v->ms[i].seq);
        snprintf(sdir, sizeof(sdir), "%s/shards/%" PRId64, v->dir, v->ms[i].shard_start_ns);
        rc = qt_io_rename(io, from, to);
        if (rc == -ENOENT) {
            rc = 0; /* missing: only the MANIFEST entry goes */
            continue;
        }
        if (rc == 0)
            rc = qt_io_fsync_dir(io, sdir);
        if (rc == 0)
            qt_log(QT_LOG_WARN, "verify: quarantined %s as %s", from, to);
    }
    return rc == 0 ? qt_io_fsync_dir(io, qdir) : rc;
}

/* Offline: rewrite the MANIFEST without the bad entries. */
static int
vf_quarantine_dir(struct vf *v, struct qt_io *io)
{
    qt_assert(v->have_manifest);
    int rc = vf_move_bad(v, io);
    uint32_t k = 0;
    for (uint32_t i = 0; rc == 0 && i < v->mh.n_segments; i++) {
        if (!v->bad[i])
            v->ms[k++] = v->ms[i];
    }
    v->r->quarantined = v->mh.n_segments - k;
    struct qt_manifest_hdr h = v->mh;
    h.generation++;
    h.n_segments = k;
    size_t cap = qt_manifest_bound(k), len = 0;
    uint8_t *buf = rc == 0 ? qt_malloc(cap) : NULL;
    if (rc == 0 && buf == NULL)
        rc = QT_ENOMEM;
    if (rc == 0)
        rc = qt_manifest_encode(&h, v->ms, k, buf, cap, &len);
    if (rc == 0)
        rc = qt_io_write_file_atomic(io, v->dir, "MANIFEST", buf, len);
    qt_free(buf);
    return rc;
}

static bool
vf_any_bad(const struct vf *v)
{
    for (uint32_t i = 0; v->have_manifest && i < v->mh.n_segments; i++) {
        if (v->bad[i])
            return true;
    }
    return false;
}

/* Exclusive lock of a data directory (a running engine holds it). */
static int
vf_lock(const char *dir, int *fd)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/LOCK", dir);
    *fd = open(path, O_RDWR | O_CLOEXEC);
    if (*fd < 0)
        return errno == ENOENT || errno == EROFS || errno == EACCES ? 0 : -errno;
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0)
        return qt_fail(QT_EBUSY, "verify: the database is open in another process (stop it, or "
                                 "verify through the server)");
    return 0;
}

static int
vf_run_dir(struct vf *v, struct qt_io *io)
{
    int rc = vf_backup_open(v);
    if (rc == 0 && v->r->is_backup && v->o->quarantine)
        rc = qt_fail(QT_EINVAL, "verify: quarantine applies to a data directory, not a backup");
    if (rc == 0)
        rc = vf_manifest(v);
    if (rc == 0)
        rc = vf_segments(v);
    if (rc == 0)
        vf_strays(v);
    if (rc == 0)
        rc = vf_catalog(v);
    if (rc == 0)
        rc = vf_wal(v);
    if (rc == 0)
        rc = vf_backup_rest(v);
    if (rc == 0 && v->o->quarantine && vf_any_bad(v))
        rc = vf_quarantine_dir(v, io);
    return rc;
}

int
qt_verify_dir(const char *dir, const struct qt_verify_opts *o, struct qt_verify_result *r)
{
    qt_assert(dir != NULL);
    qt_assert(o != NULL);
    struct qt_verify_result res;
    struct vf v = {0};
    int64_t t0 = db_now_ms();
    int lock_fd = -1;
    int rc = vf_init(&v, dir, o, &res);
    if (rc == 0)
        rc = qt_io_create(QT_IO_AUTO, NULL, &v.io);
    if (rc == 0)
        rc = vf_lock(dir, &lock_fd);
    if (rc == 0)
        rc = vf_run_dir(&v, v.io);
    if (lock_fd >= 0)
        close(lock_fd);
    qt_io_destroy(v.io);
    vf_free(&v);
    res.ns = (uint64_t)(db_now_ms() - t0) * 1000000u;
    if (r != NULL)
        *r = res;
    return rc != 0 ? rc : res.damages > 0 ? qt_fail(QT_ECORRUPT, "verify: damage found") : 0;
}

/* ---- live database ------------------------------------------------------------------------ */

/* The MANIFEST file and the version, consistent (flush_mu held). */
static int
vf_live_snapshot(struct vf *v, struct qt_db *db, struct db_version **ver)
{
    pthread_mutex_lock(&db->flush_mu);
    int rc = vf_manifest(v);
    *ver = db_version_get(db);
    pthread_mutex_unlock(&db->flush_mu);
    if (rc != 0)
        return rc;
    struct db_version *x = *ver;
    qt_free(v->ms);
    qt_free(v->bad);
    v->ms = qt_calloc(x->nsegs + 1u, sizeof(*v->ms));
    v->bad = qt_calloc(x->nsegs + 1u, 1);
    if (v->ms == NULL || v->bad == NULL)
        return QT_ENOMEM;
    for (uint32_t i = 0; i < x->nsegs; i++)
        v->ms[i] = x->segs[i]->m;
    v->mh.n_segments = x->nsegs;
    v->have_manifest = true;
    return 0;
}

static int
vf_live_quarantine(struct vf *v, struct qt_db *db, struct db_version *ver)
{
    struct db_seg **rm = qt_calloc(ver->nsegs + 1u, sizeof(*rm));
    if (rm == NULL)
        return QT_ENOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < ver->nsegs; i++) {
        if (v->bad[i])
            rm[n++] = ver->segs[i];
    }
    int rc = vf_move_bad(v, db->io);
    if (rc == 0) {
        pthread_mutex_lock(&db->flush_mu);
        rc = db_ops_commit(db, rm, n, NULL, false);
        pthread_mutex_unlock(&db->flush_mu);
    }
    if (rc == 0) {
        v->r->quarantined = n;
        qt_lc_reset(db->lc);
    }
    qt_free(rm);
    return rc;
}

int
qt_db_verify(struct qt_db *db, const struct qt_verify_opts *o, struct qt_verify_result *r)
{
    qt_assert(db != NULL);
    qt_assert(o != NULL);
    struct qt_verify_result res;
    struct vf v = {.io = db->io};
    struct db_version *ver = NULL;
    int64_t t0 = db_now_ms();
    int rc = vf_init(&v, db->dir, o, &res);
    if (rc == 0 && o->quarantine && db_is_readonly(db))
        rc = qt_fail(QT_EREADONLY, db->ro_reason);
    if (rc == 0)
        rc = vf_live_snapshot(&v, db, &ver);
    if (rc == 0)
        rc = vf_segments(&v);
    if (rc == 0)
        rc = vf_catalog(&v);
    if (rc == 0)
        rc = vf_wal(&v);
    if (rc == 0 && o->quarantine && vf_any_bad(&v))
        rc = vf_live_quarantine(&v, db, ver);
    db_version_put(ver);
    vf_free(&v);
    res.ns = (uint64_t)(db_now_ms() - t0) * 1000000u;
    if (r != NULL)
        *r = res;
    return rc != 0 ? rc : res.damages > 0 ? qt_fail(QT_ECORRUPT, "verify: damage found") : 0;
}
