/*
 * catalog.c -- the persistent series catalog: series/group ids, dense sids
 * and gids, the inverted index, and the append-only log `catalog.qtc`
 * (contract in catalog.h, byte layout in format/catrec.h, design in
 * DESIGN.md "Series catalog").  Selection and listings: catalog_query.c.
 *
 * Creating a series (writer mutex held) is plan -> reserve -> log -> commit:
 *   plan     parse the key, find the group, choose the persisted ids;
 *   reserve  make every structure the commit touches big enough (the only
 *            step that allocates; on failure nothing visible changed);
 *   log      append the record to the write buffer (a failed write makes
 *            the catalog FAILED, and nothing was published);
 *   commit   fill in the series, index it, publish it; cannot fail.
 * Replay runs the same path with the ids from the record and no log step.
 * The reserve pass records its dictionary lookups (c->trace) so the commit
 * pass does not probe again, and a series of the same group as the previous
 * one (the other fields of a line) reuses that group's measurement and tag
 * ids (c->last).
 *
 * Ids: a series whose id is the unseeded hash of its key is found by id by
 * probing keytab with the id as the hash (its home slot); only collided ids
 * need an entry of their own (id_other).  Groups likewise (gkeytab,
 * gid_other).  This saves a table of 8-16 bytes per series.
 *
 * Thread model:
 *   - get_or_create / lookup of an existing key take no lock: they probe the
 *     published key table (keytab) with acquire loads; a slot is published
 *     (release) only after the series record, its key bytes and its group
 *     link are written.  Readers announce themselves in a per-thread reader
 *     slot (one cache line, no sharing between threads up to
 *     QT_CATALOG_READER_SLOTS), so a grown key table's old slot array is
 *     freed only once every slot was seen idle after the new array was
 *     published (seq_cst on both sides); until then it waits on a retired
 *     list (freed at close at the latest).
 *   - series/group info read vectors whose chunks never move, below counts
 *     published with release after the entries were written.
 *   - creation serialises on wlock; it holds idx_lock exclusively only for
 *     the reserve and commit steps (microseconds), not for log I/O.
 *   - select / listings / id and group-key lookups hold idx_lock shared.
 *
 * States: OPEN -> FAILED on any write/fdatasync error (sticky: creation and
 * sync return QT_EREADONLY; never retried, since after a failed fsync the
 * kernel may have dropped the dirty pages).  Reopen to recover: replay keeps
 * every complete record and cuts a torn tail.
 */
#include "catalog.h"

#include "catalog_int.h"
#include "format/catrec.h"
#include "format/qt_alloc.h"
#include "format/qt_bytes.h"
#include "format/qt_err.h"
#include "format/qt_hash.h"
#include "format/qt_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static_assert(sizeof(struct cat_series) == 32, "series entry size (memory budget)");
static_assert(sizeof(struct cat_group) == 32, "group entry size (memory budget)");
static_assert(sizeof(struct cat_rdslot) == 64, "reader slot is one cache line");
static_assert(QT_CATALOG_READ_BUF >= QT_CATREC_SIZE_MAX, "replay window holds a record");
static_assert(QT_CATALOG_WRITE_BUF >= QT_CATREC_SIZE_MAX, "write buffer holds a record");

/* ==== I/O seam: the only functions that touch the file system ============
 * Plain POSIX for now; the lead switches these to storage/io.h. */

static int
cat_io_open(struct qt_io *io, const char *path, int *fd, uint64_t *size)
{
    int f = -1;
    int rc = qt_io_open(io, path, O_RDWR | O_CREAT, 0644, &f);
    if (rc == 0)
        rc = qt_io_size(io, f, size);
    if (rc != 0) {
        if (f >= 0)
            qt_io_close(io, f);
        return rc;
    }
    *fd = f;
    return 0;
}

/* Read up to len bytes at off; *got < len only at end of file. */
static int
cat_io_read(struct qt_io *io, int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    int64_t n = qt_io_pread(io, fd, buf, len, off);
    *got = 0;
    if (n < 0)
        return (int)n;
    *got = (size_t)n;
    return 0;
}

static int
cat_io_write(struct qt_io *io, int fd, const void *buf, size_t len, uint64_t off)
{
    return qt_io_pwrite(io, fd, buf, len, off);
}

/* fdatasync the file (dir == NULL) or fsync directory dir.  Never retried. */
static int
cat_io_sync(struct qt_io *io, int fd, const char *dir)
{
    return dir == NULL ? qt_io_fdatasync(io, fd) : qt_io_fsync_dir(io, dir);
}

static int
cat_io_truncate(struct qt_io *io, int fd, uint64_t size)
{
    int rc = qt_io_ftruncate(io, fd, size);
    return rc != 0 ? rc : cat_io_sync(io, fd, NULL);
}

/* Replace path with tmp (rename), then make the rename durable. */
static int
cat_io_replace(struct qt_io *io, const char *tmp, const char *path, const char *dir)
{
    int rc = qt_io_rename(io, tmp, path);
    return rc != 0 ? rc : cat_io_sync(io, -1, dir);
}

/* ==== reader slots and the lock-free key table ========================== */

static _Thread_local uint32_t cat_rd_tls = UINT32_MAX;
static _Atomic uint32_t cat_rd_next;

static _Atomic uint64_t *
cat_rd_counter(const struct qt_catalog *c)
{
    uint32_t i = cat_rd_tls;
    if (i == UINT32_MAX) {
        i = atomic_fetch_add_explicit(&cat_rd_next, 1, memory_order_relaxed) %
            QT_CATALOG_READER_SLOTS;
        cat_rd_tls = i;
    }
    return &c->rd[i].active;
}

/* Announce a lock-free reader of keytab (seq_cst: see the reclaim protocol
 * in the opening comment); pair with cat_rd_exit. */
static _Atomic uint64_t *
cat_rd_enter(const struct qt_catalog *c)
{
    _Atomic uint64_t *ctr = cat_rd_counter(c);
    atomic_fetch_add(ctr, 1);
    return ctr;
}

static void
cat_rd_exit(_Atomic uint64_t *ctr)
{
    atomic_fetch_sub_explicit(ctr, 1, memory_order_release);
}

/* The sid of key[0..len) (hash h = qt_hash64 of it), or QT_CATMEM_NONE. */
static uint32_t
cat_find(const struct qt_catalog *c, const uint8_t *key, size_t len, uint64_t h)
{
    _Atomic uint64_t *ctr = cat_rd_enter(c);
    const struct qt_catmem_hslots *s = atomic_load(&c->keytab.cur);
    uint64_t frag = h & 0xffffffffull, i = frag & s->mask;
    uint32_t found = QT_CATMEM_NONE;
    for (uint64_t probes = 0; probes <= s->mask; probes++) {
        uint64_t v =
            atomic_load_explicit(&((struct qt_catmem_hslots *)s)->slot[i], memory_order_acquire);
        if (v == 0)
            break;
        if ((v >> 32) == frag) {
            const struct cat_series *e = cat_series_at(c, (uint32_t)v - 1);
            if (e->key_len == len && memcmp(e->key, key, len) == 0) {
                found = (uint32_t)v - 1;
                break;
            }
        }
        i = (i + 1) & s->mask;
    }
    cat_rd_exit(ctr);
    return found;
}

/* Free retired key-table arrays if no lookup can still hold one (wlock). */
static void
cat_reclaim(struct qt_catalog *c)
{
    if (c->keytab.nretired == 0)
        return;
    for (uint32_t i = 0; i < QT_CATALOG_READER_SLOTS; i++)
        if (atomic_load(&c->rd[i].active) != 0)
            return;
    qt_catmem_htab_reclaim(&c->keytab);
}

/* ==== id tables ========================================================= */

struct id_probe {
    const struct qt_catalog *c;
    uint64_t id;
};

static bool
series_id_eq(const void *ctx, uint32_t sid)
{
    const struct id_probe *p = ctx;
    return cat_series_at(p->c, sid)->id == p->id;
}

static bool
group_id_eq(const void *ctx, uint32_t gid)
{
    const struct id_probe *p = ctx;
    return cat_group_at(p->c, gid)->id == p->id;
}

/* The sid (group: gid) owning persisted id `id`, or QT_CATMEM_NONE.  The
 * writer calls it directly; readers inside cat_rd_enter/exit and idx_lock. */
static uint32_t
cat_id_owner(const struct qt_catalog *c, bool group, uint64_t id)
{
    struct id_probe p = {c, id};
    bool (*eq)(const void *, uint32_t) = group ? group_id_eq : series_id_eq;
    const struct qt_catmem_htab *home = group ? &c->gkeytab : &c->keytab;
    const struct qt_catmem_htab *other = group ? &c->gid_other : &c->id_other;
    uint32_t x = qt_catmem_htab_find(atomic_load(&home->cur), id, eq, &p);
    if (x == QT_CATMEM_NONE)
        x = qt_catmem_htab_find(atomic_load(&other->cur), qt_catmem_mix64(id), eq, &p);
    return x;
}

struct gkey_probe {
    const struct qt_catalog *c;
    const uint8_t *key;
    size_t len;
};

static bool
gkey_eq(const void *ctx, uint32_t gid)
{
    const struct gkey_probe *p = ctx;
    const struct cat_group *g = cat_group_at(p->c, gid);
    return g->key_len == p->len && memcmp(g->key, p->key, p->len) == 0;
}

static uint32_t
cat_group_find(const struct qt_catalog *c, const uint8_t *gkey, size_t len, uint64_t g0)
{
    struct gkey_probe p = {c, gkey, len};
    const struct qt_catmem_hslots *s = atomic_load_explicit(&c->gkeytab.cur, memory_order_acquire);
    return qt_catmem_htab_find(s, g0, gkey_eq, &p);
}

/* Choose a free persisted id for key: XXH3-64 (h0 when unseeded), then seeds
 * 1, 2, ... while another key owns the candidate. */
static int
cat_assign_id(struct qt_catalog *c, bool group, const uint8_t *key, size_t len, uint64_t h0,
              uint64_t *id)
{
    for (uint64_t seed = 0; seed < QT_CATALOG_REHASH_MAX; seed++) {
        uint64_t cand;
        if (c->opts.hash_override != NULL)
            cand = c->opts.hash_override(c->opts.hash_arg, key, len, seed);
        else
            cand = seed == 0 ? h0 : qt_hash64_seed(key, len, seed);
        if (cat_id_owner(c, group, cand) != QT_CATMEM_NONE)
            continue;
        if (seed > 0)
            qt_log(QT_LOG_WARN, "catalog: %s id collision for \"%.*s\"; assigned seed %llu id",
                   group ? "group" : "series", (int)len, (const char *)key,
                   (unsigned long long)seed);
        *id = cand;
        return 0;
    }
    return qt_fail(QT_ECOLLISION, "catalog: no free id after QT_CATALOG_REHASH_MAX seeds");
}

/* ==== index: one pass in reserve mode, then one in commit mode =========== */

/* Id of key in d, existing or new.  Reserve: a new key gets the id commit
 * will give it (d->n + pending) and room is made for it.  Commit: inserted. */
static int
ix_intern(struct qt_catalog *c, struct qt_catmem_dict *d, const void *key, uint32_t len,
          struct cat_pass *ps, uint32_t *id, bool *is_new)
{
    qt_assert(ps->ntrace < CAT_TRACE_MAX);
    struct cat_trace *t = &c->trace[ps->ntrace++];
    if (ps->commit) { /* replay the reserve pass's lookup */
        *is_new = t->fresh;
        if (t->fresh) {
            uint8_t *p = qt_catmem_arena_take(&c->arena, len);
            memcpy(p, key, len);
            uint32_t got = qt_catmem_dict_insert(d, p, len, t->hash);
            qt_assert(got == t->id);
        }
        *id = t->id;
        return 0;
    }
    t->hash = qt_hash64(key, len);
    t->id = qt_catmem_dict_find(d, key, len, t->hash);
    t->fresh = *is_new = t->id == QT_CATMEM_NONE;
    if (!t->fresh) {
        *id = t->id;
        return 0;
    }
    *id = t->id = d->n + d->pending++;
    ps->arena_bytes += len;
    return qt_catmem_dict_reserve(d, d->pending);
}

/* Add x to list l (reserve: room for `room` pushes in this pass). */
static int
ix_list_add(struct qt_catalog *c, struct qt_catmem_list *l, uint32_t x, uint32_t room,
            const struct cat_pass *ps)
{
    if (ps->commit) {
        qt_catmem_list_push(l, x);
        return 0;
    }
    uint32_t old = l->cap;
    int rc = qt_catmem_list_reserve(l, room);
    c->list_bytes += (size_t)(l->cap - old) * sizeof(uint32_t);
    return rc;
}

/* Append the pass's sid to posting list `id` of vector v. */
static int
ix_post(struct qt_catalog *c, struct qt_catmem_vec *v, uint32_t id, const struct cat_pass *ps)
{
    if (!ps->commit) {
        int rc = qt_catmem_vec_reserve(v, id);
        if (rc != 0)
            return rc;
    }
    return ix_list_add(c, qt_catmem_vec_at(v, id), ps->sid, 1, ps);
}

static uint8_t *
ix_pair(struct qt_catalog *c, uint32_t a, const void *b, uint32_t blen)
{
    qt_assert(blen <= sizeof(c->pairbuf) - 4);
    qt_store_le32(c->pairbuf, a);
    memcpy(c->pairbuf + 4, b, blen);
    return c->pairbuf;
}

/* Measurement and field of the series: postings and per-measurement lists. */
static int
ix_meas_field(struct qt_catalog *c, const struct qt_serieskey *k, struct cat_pass *ps,
              uint32_t *mid, uint32_t *fid)
{
    bool fresh;
    uint32_t mfid;
    uint8_t fidle[4];
    int rc = 0;
    if (ps->same_group)
        *mid = c->last.mid;
    else
        rc = ix_intern(c, &c->meas, k->measurement.p, k->measurement.len, ps, mid, &fresh);
    ps->mid = *mid;
    if (rc == 0 && !ps->commit)
        rc = qt_catmem_vec_reserve(&c->meas_data, *mid);
    if (rc != 0)
        return rc;
    struct cat_meas *md = qt_catmem_vec_at(&c->meas_data, *mid);
    if ((rc = ix_list_add(c, &md->sids, ps->sid, 1, ps)) != 0)
        return rc;
    if ((rc = ix_intern(c, &c->fields, k->field.p, k->field.len, ps, fid, &fresh)) != 0)
        return rc;
    qt_store_le32(fidle, *fid);
    uint8_t *pair = ix_pair(c, *mid, fidle, 4);
    if ((rc = ix_intern(c, &c->mfpairs, pair, 8, ps, &mfid, &fresh)) != 0)
        return rc;
    if (fresh && (rc = ix_list_add(c, &md->fids, *fid, 1, ps)) != 0)
        return rc;
    return ix_post(c, &c->mf_post, mfid, ps);
}

/* One tag of the series: tag key, (key, value) posting, (measurement, key). */
static int
ix_tag(struct qt_catalog *c, const struct qt_serieskey_tag *t, uint32_t i, uint32_t mid,
       struct cat_pass *ps)
{
    bool fresh;
    uint32_t kid, tvid, mkid;
    uint8_t kidle[4];
    if (ps->same_group) /* key, value and (measurement, key) all exist */
        return ix_post(c, &c->tv_post, ps->tvid[i] = c->last.tvid[i], ps);
    int rc = ix_intern(c, &c->tkeys, t->key.p, t->key.len, ps, &kid, &fresh);
    if (rc == 0 && !ps->commit)
        rc = qt_catmem_vec_reserve(&c->tkey_data, kid);
    if (rc != 0)
        return rc;
    uint8_t *pair = ix_pair(c, kid, t->value.p, t->value.len);
    if ((rc = ix_intern(c, &c->tpairs, pair, 4 + t->value.len, ps, &tvid, &fresh)) != 0)
        return rc;
    ps->tvid[i] = tvid;
    struct cat_tkey *td = qt_catmem_vec_at(&c->tkey_data, kid);
    if (fresh && (rc = ix_list_add(c, &td->tvids, tvid, 1, ps)) != 0)
        return rc;
    if ((rc = ix_post(c, &c->tv_post, tvid, ps)) != 0)
        return rc;
    qt_store_le32(kidle, kid);
    pair = ix_pair(c, mid, kidle, 4);
    if ((rc = ix_intern(c, &c->mkpairs, pair, 8, ps, &mkid, &fresh)) != 0 || !fresh)
        return rc;
    struct cat_meas *md = qt_catmem_vec_at(&c->meas_data, mid);
    return ix_list_add(c, &md->kids, kid, ++ps->mk_new, ps);
}

static int
ix_apply(struct qt_catalog *c, const struct qt_serieskey *k, struct cat_pass *ps, uint32_t *mid,
         uint32_t *fid)
{
    int rc = ix_meas_field(c, k, ps, mid, fid);
    for (uint32_t i = 0; rc == 0 && i < k->ntags; i++)
        rc = ix_tag(c, &k->tags[i], i, *mid, ps);
    qt_assert(!ps->commit || rc == 0);
    return rc;
}

/* ==== creation: reserve and commit ======================================= */

static int
cat_reserve(struct qt_catalog *c, const struct cat_plan *p, size_t key_len)
{
    uint32_t sid = atomic_load_explicit(&c->nseries, memory_order_relaxed);
    uint32_t ng = atomic_load_explicit(&c->ngroups, memory_order_relaxed);
    int rc = qt_catmem_vec_reserve(&c->series, sid);
    if (rc == 0)
        rc = qt_catmem_htab_reserve(&c->keytab, 1);
    if (rc == 0 && p->series_id != p->h0)
        rc = qt_catmem_htab_reserve(&c->id_other, 1);
    if (rc == 0 && p->gid == QT_CATMEM_NONE) {
        if ((rc = qt_catmem_vec_reserve(&c->groups, ng)) == 0 &&
            (rc = qt_catmem_htab_reserve(&c->gkeytab, 1)) == 0 && p->group_id != p->g0)
            rc = qt_catmem_htab_reserve(&c->gid_other, 1);
    }
    if (rc != 0)
        return rc;
    struct qt_catmem_dict *dicts[] = {&c->meas,   &c->fields,  &c->tkeys,
                                      &c->tpairs, &c->mfpairs, &c->mkpairs};
    for (size_t i = 0; i < sizeof(dicts) / sizeof(dicts[0]); i++)
        dicts[i]->pending = 0;
    struct cat_pass ps = {.commit = false, .sid = sid};
    ps.same_group = p->gid != QT_CATMEM_NONE && p->gid == c->last.gid;
    uint32_t mid, fid;
    if ((rc = ix_apply(c, &p->k, &ps, &mid, &fid)) != 0)
        return rc;
    return qt_catmem_arena_reserve(&c->arena, ps.arena_bytes + key_len);
}

/* Fill in and publish the new series (idx_lock held exclusively). */
static uint32_t
cat_commit(struct qt_catalog *c, const struct cat_plan *p, const uint8_t *key, size_t len)
{
    uint32_t sid = atomic_load_explicit(&c->nseries, memory_order_relaxed);
    uint32_t gid = p->gid, mid, fid;
    uint8_t *kp = qt_catmem_arena_take(&c->arena, len);
    memcpy(kp, key, len);
    struct cat_pass ps = {.commit = true, .sid = sid};
    ps.same_group = p->gid != QT_CATMEM_NONE && p->gid == c->last.gid;
    ix_apply(c, &p->k, &ps, &mid, &fid);
    struct cat_series *s = cat_series_at(c, sid);
    *s = (struct cat_series){.id = p->series_id,
                             .key = kp,
                             .gid = gid,
                             .fid = fid,
                             .key_len = (uint16_t)len,
                             .vtype = p->vtype};
    atomic_init(&s->next, QT_CATMEM_NONE);
    bool new_group = gid == QT_CATMEM_NONE;
    uint32_t prev = QT_CATMEM_NONE;
    if (new_group) {
        gid = atomic_load_explicit(&c->ngroups, memory_order_relaxed);
        s->gid = gid;
        *cat_group_at(c, gid) = (struct cat_group){.id = p->group_id,
                                                   .key = kp,
                                                   .first_sid = sid,
                                                   .last_sid = sid,
                                                   .mid = mid,
                                                   .key_len = (uint16_t)p->k.group_len};
    } else {
        struct cat_group *g = cat_group_at(c, gid);
        qt_assert(g->mid == mid);
        prev = g->last_sid;
        g->last_sid = sid;
    }
    atomic_store_explicit(&c->nseries, sid + 1, memory_order_release);
    if (new_group) {
        atomic_store_explicit(&c->ngroups, gid + 1, memory_order_release);
        qt_catmem_htab_insert(&c->gkeytab, p->g0, gid);
        if (p->group_id != p->g0)
            qt_catmem_htab_insert(&c->gid_other, qt_catmem_mix64(p->group_id), gid);
    } else {
        atomic_store_explicit(&cat_series_at(c, prev)->next, sid, memory_order_release);
    }
    if (p->series_id != p->h0)
        qt_catmem_htab_insert(&c->id_other, qt_catmem_mix64(p->series_id), sid);
    qt_catmem_htab_insert(&c->keytab, p->h0, sid); /* publishes to lock-free lookups */
    c->last.gid = gid;
    c->last.mid = mid;
    memcpy(c->last.tvid, ps.tvid, p->k.ntags * sizeof(uint32_t));
    return sid;
}

/* ==== log ================================================================ */

static void
cat_set_failed(struct qt_catalog *c, int rc, const char *what)
{
    qt_assert(rc != 0);
    if (atomic_load(&c->failed) == 0)
        atomic_store(&c->failed, rc);
    qt_log(QT_LOG_ERROR, "catalog: %s %s: %s; catalog FAILED (read-only until reopened)", what,
           c->path, qt_strerror(rc));
}

static int
cat_failed_error(void)
{
    return qt_fail(QT_EREADONLY, "catalog: FAILED after an I/O error; reopen to recover");
}

static int
log_flush(struct qt_catalog *c)
{
    if (c->wlen == 0)
        return 0;
    int rc = cat_io_write(c->io, c->fd, c->wbuf, c->wlen, c->end);
    if (rc != 0) {
        cat_set_failed(c, rc, "write");
        return rc;
    }
    c->end += c->wlen;
    c->wlen = 0;
    return 0;
}

static int
log_append(struct qt_catalog *c, const struct cat_plan *p, const uint8_t *key, size_t len)
{
    struct qt_catrec r = {.series_id = p->series_id,
                          .group_id = p->group_id,
                          .vtype = p->vtype,
                          .key_len = (uint16_t)len,
                          .key = key};
    size_t need = qt_catrec_size(len), n;
    if (c->wlen + need > QT_CATALOG_WRITE_BUF) {
        int rc = log_flush(c);
        if (rc != 0)
            return rc;
    }
    int rc = qt_catrec_encode(&r, c->wbuf + c->wlen, QT_CATALOG_WRITE_BUF - c->wlen, &n);
    qt_assert(rc == 0 && n == need); /* key and vtype were validated */
    c->wlen += n;
    return 0;
}

/* ==== insert (create and replay) ========================================= */

static const char *const conflict_reason[5][5] = {
    [QT_VT_FLOAT][QT_VT_INT] = "field type conflict: series is float, got integer",
    [QT_VT_FLOAT][QT_VT_BOOL] = "field type conflict: series is float, got boolean",
    [QT_VT_FLOAT][QT_VT_STRING] = "field type conflict: series is float, got string",
    [QT_VT_INT][QT_VT_FLOAT] = "field type conflict: series is integer, got float",
    [QT_VT_INT][QT_VT_BOOL] = "field type conflict: series is integer, got boolean",
    [QT_VT_INT][QT_VT_STRING] = "field type conflict: series is integer, got string",
    [QT_VT_BOOL][QT_VT_FLOAT] = "field type conflict: series is boolean, got float",
    [QT_VT_BOOL][QT_VT_INT] = "field type conflict: series is boolean, got integer",
    [QT_VT_BOOL][QT_VT_STRING] = "field type conflict: series is boolean, got string",
    [QT_VT_STRING][QT_VT_FLOAT] = "field type conflict: series is string, got float",
    [QT_VT_STRING][QT_VT_INT] = "field type conflict: series is string, got integer",
    [QT_VT_STRING][QT_VT_BOOL] = "field type conflict: series is string, got boolean",
};

static bool
cat_vtype_ok(int vt)
{
    return vt >= QT_VT_FLOAT && vt <= QT_VT_STRING;
}

static int
cat_check_vtype(const struct qt_catalog *c, uint32_t sid, enum qt_vtype vt)
{
    uint8_t have = cat_series_at(c, sid)->vtype;
    if (have == (uint8_t)vt)
        return 0;
    qt_assert(cat_vtype_ok(have) && cat_vtype_ok((int)vt));
    return qt_fail(QT_EINVAL, conflict_reason[have][vt]);
}

/* Plan a new series: parse, group, ids (rec != NULL: replay, ids given and
 * checked for consistency). */
static int
cat_plan(struct qt_catalog *c, const uint8_t *key, size_t len, uint8_t vt,
         const struct qt_catrec *rec)
{
    struct cat_plan *p = &c->plan;
    int rc = qt_serieskey_parse(key, len, true, c->scratch, sizeof(c->scratch), &p->k);
    if (rc != 0)
        return rec != NULL ? qt_fail(QT_ECORRUPT, "catalog: record key is not canonical") : rc;
    if (atomic_load_explicit(&c->nseries, memory_order_relaxed) >= c->series_max)
        return qt_fail(QT_ELIMIT, "catalog: series limit reached (QT_CATALOG_SERIES_MAX)");
    p->vtype = vt;
    p->g0 = qt_hash64(key, p->k.group_len);
    p->gid = cat_group_find(c, key, p->k.group_len, p->g0);
    if (rec == NULL) {
        rc = cat_assign_id(c, false, key, len, p->h0, &p->series_id);
        if (rc == 0 && p->gid == QT_CATMEM_NONE)
            rc = cat_assign_id(c, true, key, p->k.group_len, p->g0, &p->group_id);
        if (rc == 0 && p->gid != QT_CATMEM_NONE)
            p->group_id = cat_group_at(c, p->gid)->id;
        return rc;
    }
    p->series_id = rec->series_id;
    p->group_id = rec->group_id;
    if (cat_id_owner(c, false, rec->series_id) != QT_CATMEM_NONE)
        return qt_fail(QT_ECORRUPT, "catalog: series id owned by another key");
    if (p->gid != QT_CATMEM_NONE && cat_group_at(c, p->gid)->id != rec->group_id)
        return qt_fail(QT_ECORRUPT, "catalog: group id differs from the group's earlier record");
    if (p->gid == QT_CATMEM_NONE && cat_id_owner(c, true, rec->group_id) != QT_CATMEM_NONE)
        return qt_fail(QT_ECORRUPT, "catalog: group id owned by another group key");
    return 0;
}

/* Add a series that is not in the catalog (wlock held). */
static int
cat_insert(struct qt_catalog *c, const uint8_t *key, size_t len, uint8_t vt, uint64_t h0,
           const struct qt_catrec *rec, uint32_t *sid)
{
    c->plan.h0 = h0;
    int rc = cat_plan(c, key, len, vt, rec);
    if (rc != 0)
        return rc;
    if (!c->replaying)
        pthread_rwlock_wrlock(&c->idx_lock);
    rc = cat_reserve(c, &c->plan, len);
    if (!c->replaying)
        pthread_rwlock_unlock(&c->idx_lock);
    if (rc != 0)
        return rc;
    if (rec == NULL && (rc = log_append(c, &c->plan, key, len)) != 0)
        return rc;
    if (!c->replaying)
        pthread_rwlock_wrlock(&c->idx_lock);
    *sid = cat_commit(c, &c->plan, key, len);
    if (!c->replaying)
        pthread_rwlock_unlock(&c->idx_lock);
    cat_reclaim(c);
    return 0;
}

int
qt_catalog_get_or_create(struct qt_catalog *c, const uint8_t *key, size_t len, enum qt_vtype vt,
                         uint32_t *sid)
{
    qt_assert(c != NULL && sid != NULL);
    qt_assert(key != NULL || len == 0);
    if (len > QT_SERIES_KEY_MAX)
        return qt_fail(QT_ELIMIT, "catalog: series key longer than QT_SERIES_KEY_MAX");
    if (!cat_vtype_ok((int)vt))
        return qt_fail(QT_EINVAL, "catalog: unknown value type");
    uint64_t h0 = qt_hash64(key, len);
    uint32_t s = cat_find(c, key, len, h0);
    if (s == QT_CATMEM_NONE) {
        pthread_mutex_lock(&c->wlock);
        s = cat_find(c, key, len, h0); /* another writer may have won */
        int rc = 0;
        if (s == QT_CATMEM_NONE) {
            rc = atomic_load(&c->failed) != 0 ? cat_failed_error()
                                              : cat_insert(c, key, len, (uint8_t)vt, h0, NULL, &s);
            cat_reclaim(c);
        }
        pthread_mutex_unlock(&c->wlock);
        if (rc != 0)
            return rc;
    }
    int rc = cat_check_vtype(c, s, vt);
    if (rc == 0)
        *sid = s;
    return rc;
}

int
qt_catalog_lookup(struct qt_catalog *c, const uint8_t *key, size_t len, uint32_t *sid)
{
    qt_assert(c != NULL && sid != NULL);
    qt_assert(key != NULL || len == 0);
    uint32_t s = cat_find(c, key, len, qt_hash64(key, len));
    if (s == QT_CATMEM_NONE)
        return qt_fail(QT_ENOTFOUND, "catalog: no such series");
    *sid = s;
    return 0;
}

int
qt_catalog_sync(struct qt_catalog *c)
{
    qt_assert(c != NULL);
    pthread_mutex_lock(&c->wlock);
    int rc = 0;
    if (atomic_load(&c->failed) != 0) {
        rc = cat_failed_error();
    } else if ((rc = log_flush(c)) == 0 && c->synced != c->end) {
        rc = cat_io_sync(c->io, c->fd, NULL);
        if (rc != 0)
            cat_set_failed(c, rc, "fdatasync");
        else
            c->synced = c->end;
    }
    cat_reclaim(c);
    pthread_mutex_unlock(&c->wlock);
    return rc;
}

uint64_t
qt_catalog_durable_size(struct qt_catalog *c)
{
    qt_assert(c != NULL);
    pthread_mutex_lock(&c->wlock);
    uint64_t n = c->synced;
    pthread_mutex_unlock(&c->wlock);
    return n;
}

bool
qt_catalog_failed(const struct qt_catalog *c)
{
    qt_assert(c != NULL);
    return atomic_load(&((struct qt_catalog *)c)->failed) != 0;
}

/* ==== replay ============================================================= */

struct cat_reader {
    struct qt_io *io;
    int fd;
    uint8_t *buf;  /* QT_CATALOG_READ_BUF */
    uint64_t base; /* file offset of buf[0] */
    size_t len;    /* valid bytes in buf */
    uint64_t size; /* file size (shrinks when a tail is cut) */
};

/* Point *p at file bytes [off, off + *avail), *avail = min(need, size - off). */
static int
rd_window(struct cat_reader *r, uint64_t off, size_t need, const uint8_t **p, size_t *avail)
{
    qt_assert(off <= r->size);
    qt_assert(need <= QT_CATALOG_READ_BUF);
    size_t want = r->size - off < need ? (size_t)(r->size - off) : need;
    if (off < r->base || off + want > r->base + r->len) {
        size_t n =
            r->size - off < QT_CATALOG_READ_BUF ? (size_t)(r->size - off) : QT_CATALOG_READ_BUF;
        size_t got;
        int rc = cat_io_read(r->io, r->fd, r->buf, n, off, &got);
        if (rc != 0)
            return rc;
        if (got < want)
            return qt_fail(QT_ETRUNC, "catalog: file shrank during replay");
        r->base = off;
        r->len = got;
    }
    *p = r->buf + (off - r->base);
    *avail = want;
    return 0;
}

/* First offset >= from where a whole valid record starts, or r->size. */
static int
cat_resync(struct cat_reader *r, uint64_t from, uint64_t *next)
{
    for (uint64_t off = from; off + QT_CATREC_FIXED_SIZE <= r->size; off++) {
        const uint8_t *p;
        size_t avail, n;
        int rc = rd_window(r, off, QT_CATREC_SIZE_MAX, &p, &avail);
        if (rc != 0)
            return rc;
        uint16_t klen = qt_load_le16(p + 17); /* cheap filter before the checksum */
        if (klen == 0 || klen > QT_SERIES_KEY_MAX || qt_catrec_size(klen) > avail ||
            !cat_vtype_ok(p[16]))
            continue;
        struct qt_catrec rec;
        if (qt_catrec_decode(p, avail, &rec, &n) == 0) {
            *next = off;
            return 0;
        }
    }
    *next = r->size;
    return 0;
}

/* Apply one decoded record: QT_ECORRUPT when it contradicts earlier ones. */
static int
cat_replay_record(struct qt_catalog *c, const struct qt_catrec *rec)
{
    uint64_t h0 = qt_hash64(rec->key, rec->key_len);
    if (cat_find(c, rec->key, rec->key_len, h0) != QT_CATMEM_NONE)
        return qt_fail(QT_ECORRUPT, "catalog: duplicate series key in log");
    uint32_t sid;
    return cat_insert(c, rec->key, rec->key_len, rec->vtype, h0, rec, &sid);
}

/* Undecodable bytes at off: cut a torn tail, or skip to the next valid
 * record (salvage), or fail. */
static int
cat_replay_bad(struct qt_catalog *c, struct cat_reader *r, uint64_t *off,
               struct qt_catalog_report *rep)
{
    uint64_t next = r->size;
    int rc = cat_resync(r, *off + 1, &next);
    if (rc != 0)
        return rc;
    bool unsynced = c->opts.durable_size != 0 && *off >= c->opts.durable_size;
    if (next == r->size || unsynced) {
        qt_log(QT_LOG_WARN, "catalog: %s: cutting torn tail at offset %llu (%llu bytes%s)", c->path,
               (unsigned long long)*off, (unsigned long long)(r->size - *off),
               next == r->size ? "" : ", with valid but unsynced records");
        rep->tail_offset = *off;
        rep->tail_bytes = r->size - *off;
        if ((rc = cat_io_truncate(r->io, r->fd, *off)) != 0)
            return rc;
        r->size = *off;
        return 0;
    }
    if (rep->bad_offset == 0)
        rep->bad_offset = *off;
    if (!(c->opts.flags & QT_CATALOG_SALVAGE)) {
        qt_log(QT_LOG_ERROR,
               "catalog: %s: corrupt record at offset %llu, valid records resume at %llu; "
               "refusing to open (open with salvage to skip it)",
               c->path, (unsigned long long)*off, (unsigned long long)next);
        return qt_fail(QT_ECHECKSUM, "catalog: corrupt record followed by valid records");
    }
    qt_log(QT_LOG_WARN, "catalog: %s: salvage: skipping %llu corrupt bytes at offset %llu", c->path,
           (unsigned long long)(next - *off), (unsigned long long)*off);
    rep->skipped_bytes += next - *off;
    *off = next;
    return 0;
}

static int
cat_replay(struct qt_catalog *c, struct cat_reader *r, struct qt_catalog_report *rep)
{
    uint64_t off = QT_CATREC_HEADER_SIZE;
    while (off < r->size) {
        const uint8_t *p;
        size_t avail, n;
        struct qt_catrec rec;
        int rc = rd_window(r, off, QT_CATREC_SIZE_MAX, &p, &avail);
        if (rc != 0)
            return rc;
        if (qt_catrec_decode(p, avail, &rec, &n) != 0) {
            if ((rc = cat_replay_bad(c, r, &off, rep)) != 0)
                return rc;
            continue;
        }
        rc = cat_replay_record(c, &rec);
        if (rc == QT_ECORRUPT && (c->opts.flags & QT_CATALOG_SALVAGE)) {
            qt_log(QT_LOG_WARN, "catalog: %s: salvage: skipping record at offset %llu: %s", c->path,
                   (unsigned long long)off, qt_err_detail());
            rep->skipped_records++;
            if (rep->bad_offset == 0)
                rep->bad_offset = off;
        } else if (rc != 0) {
            if (rc == QT_ECORRUPT) {
                rep->bad_offset = off;
                qt_log(QT_LOG_ERROR, "catalog: %s: record at offset %llu: %s", c->path,
                       (unsigned long long)off, qt_err_detail());
            }
            return rc;
        } else {
            rep->records++;
        }
        off += n;
    }
    c->end = c->synced = r->size;
    return 0;
}

/* ==== rewrite (after salvage) ============================================ */

/* Write every series to path.tmp, sync, rename over the log, sync the
 * directory: the log then holds only what replay accepted. */
static int
cat_rewrite(struct qt_catalog *c)
{
    size_t tlen = strlen(c->path) + 5;
    char *tmp = qt_malloc(tlen);
    if (tmp == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (rewrite path)");
    snprintf(tmp, tlen, "%s.tmp", c->path);
    int fd = -1;
    uint64_t size, off = QT_CATREC_HEADER_SIZE;
    int rc = cat_io_open(c->io, tmp, &fd, &size);
    if (rc == 0)
        rc = cat_io_truncate(c->io, fd, 0);
    if (rc == 0 && (rc = qt_catrec_header_encode(c->wbuf, QT_CATALOG_WRITE_BUF)) == 0)
        rc = cat_io_write(c->io, fd, c->wbuf, QT_CATREC_HEADER_SIZE, 0);
    uint32_t n = atomic_load(&c->nseries);
    for (uint32_t sid = 0; rc == 0 && sid < n; sid++) {
        const struct cat_series *s = cat_series_at(c, sid);
        struct qt_catrec r = {.series_id = s->id,
                              .group_id = cat_group_at(c, s->gid)->id,
                              .vtype = s->vtype,
                              .key_len = s->key_len,
                              .key = s->key};
        size_t len;
        if (c->wlen + qt_catrec_size(s->key_len) > QT_CATALOG_WRITE_BUF) {
            rc = cat_io_write(c->io, fd, c->wbuf, c->wlen, off);
            off += c->wlen;
            c->wlen = 0;
        }
        if (rc == 0 && (rc = qt_catrec_encode(&r, c->wbuf + c->wlen, QT_CATALOG_WRITE_BUF - c->wlen,
                                              &len)) == 0)
            c->wlen += len;
    }
    if (rc == 0 && (rc = cat_io_write(c->io, fd, c->wbuf, c->wlen, off)) == 0)
        off += c->wlen;
    c->wlen = 0;
    if (rc == 0 && (rc = cat_io_sync(c->io, fd, NULL)) == 0 &&
        (rc = cat_io_replace(c->io, tmp, c->path, c->dir)) == 0) {
        qt_io_close(c->io, c->fd);
        c->fd = fd;
        fd = -1;
        c->end = c->synced = off;
    }
    if (fd >= 0) {
        qt_io_close(c->io, fd);
        unlink(tmp);
    }
    qt_free(tmp);
    return rc;
}

/* ==== open / close ======================================================= */

static void
cat_list_fini(void *e)
{
    qt_catmem_list_free(e);
}

static void
cat_meas_fini(void *e)
{
    struct cat_meas *m = e;
    qt_catmem_list_free(&m->sids);
    qt_catmem_list_free(&m->fids);
    qt_catmem_list_free(&m->kids);
}

static void
cat_destroy(struct qt_catalog *c)
{
    qt_catmem_vec_deinit(&c->series, NULL);
    qt_catmem_vec_deinit(&c->groups, NULL);
    qt_catmem_htab_deinit(&c->keytab);
    qt_catmem_htab_deinit(&c->id_other);
    qt_catmem_htab_deinit(&c->gkeytab);
    qt_catmem_htab_deinit(&c->gid_other);
    qt_catmem_dict_deinit(&c->fields);
    qt_catmem_dict_deinit(&c->meas);
    qt_catmem_dict_deinit(&c->tkeys);
    qt_catmem_dict_deinit(&c->tpairs);
    qt_catmem_dict_deinit(&c->mfpairs);
    qt_catmem_dict_deinit(&c->mkpairs);
    qt_catmem_vec_deinit(&c->meas_data, cat_meas_fini);
    qt_catmem_vec_deinit(&c->tkey_data, cat_list_fini);
    qt_catmem_vec_deinit(&c->tv_post, cat_list_fini);
    qt_catmem_vec_deinit(&c->mf_post, cat_list_fini);
    qt_catmem_arena_deinit(&c->arena);
    pthread_rwlock_destroy(&c->idx_lock);
    pthread_mutex_destroy(&c->wlock);
    if (c->fd >= 0)
        qt_io_close(c->io, c->fd);
    if (c->own_io)
        qt_io_destroy(c->io);
    qt_free(c->wbuf);
    qt_free(c->rd_raw);
    qt_free(c->path);
    qt_free(c->dir);
    qt_free(c);
}

static int
cat_init_mem(struct qt_catalog *c)
{
    uint32_t max = c->series_max;
    int rc = 0;
    /* Pair dictionaries can exceed the series count (tags per series). */
    uint32_t pmax = max > UINT32_MAX / QT_TAGS_MAX ? UINT32_MAX - 1 : max * QT_TAGS_MAX;
    if (rc == 0)
        rc = qt_catmem_vec_init(&c->series, sizeof(struct cat_series), max);
    if (rc == 0)
        rc = qt_catmem_vec_init(&c->groups, sizeof(struct cat_group), max);
    if (rc == 0)
        rc = qt_catmem_htab_init(&c->keytab, true);
    if (rc == 0)
        rc = qt_catmem_htab_init(&c->id_other, false);
    if (rc == 0)
        rc = qt_catmem_htab_init(&c->gkeytab, false);
    if (rc == 0)
        rc = qt_catmem_htab_init(&c->gid_other, false);
    if (rc == 0)
        rc = qt_catmem_dict_init(&c->fields, max);
    if (rc == 0)
        rc = qt_catmem_dict_init(&c->meas, max);
    if (rc == 0)
        rc = qt_catmem_dict_init(&c->tkeys, max);
    if (rc == 0)
        rc = qt_catmem_dict_init(&c->tpairs, pmax);
    if (rc == 0)
        rc = qt_catmem_dict_init(&c->mfpairs, max);
    if (rc == 0)
        rc = qt_catmem_dict_init(&c->mkpairs, pmax);
    if (rc == 0)
        rc = qt_catmem_vec_init(&c->meas_data, sizeof(struct cat_meas), max);
    if (rc == 0)
        rc = qt_catmem_vec_init(&c->tkey_data, sizeof(struct cat_tkey), max);
    if (rc == 0)
        rc = qt_catmem_vec_init(&c->tv_post, sizeof(struct qt_catmem_list), pmax);
    if (rc == 0)
        rc = qt_catmem_vec_init(&c->mf_post, sizeof(struct qt_catmem_list), max);
    return rc;
}

static int
cat_alloc(const char *dir, const struct qt_catalog_opts *opts, struct qt_catalog **out)
{
    struct qt_catalog *c = qt_calloc(1, sizeof(*c));
    if (c == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory");
    c->fd = -1;
    /* All file I/O goes through storage/io.h, so the engine's backend (and the
     * fault backend in tests) covers the catalog too; standalone users get a
     * private posix handle. */
    if (opts != NULL && opts->io != NULL) {
        c->io = opts->io;
    } else {
        int iorc = qt_io_create(QT_IO_POSIX, NULL, &c->io);
        if (iorc != 0) {
            qt_free(c);
            return iorc;
        }
        c->own_io = true;
    }
    c->last.gid = QT_CATMEM_NONE;
    pthread_mutex_init(&c->wlock, NULL);
    pthread_rwlock_init(&c->idx_lock, NULL);
    qt_catmem_arena_init(&c->arena);
    if (opts != NULL)
        c->opts = *opts;
    c->series_max = c->opts.series_max != 0 && c->opts.series_max < QT_CATALOG_SERIES_MAX
                        ? c->opts.series_max
                        : QT_CATALOG_SERIES_MAX;
    *out = c;
    size_t plen = strlen(dir) + sizeof(QT_CATALOG_FILE) + 1;
    c->dir = qt_strndup(dir, strlen(dir));
    c->path = qt_malloc(plen);
    c->wbuf = qt_malloc(QT_CATALOG_WRITE_BUF);
    c->rd_raw = qt_calloc(1, (size_t)QT_CATALOG_READER_SLOTS * sizeof(struct cat_rdslot) + 63);
    if (c->dir == NULL || c->path == NULL || c->wbuf == NULL || c->rd_raw == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory");
    snprintf(c->path, plen, "%s/%s", dir, QT_CATALOG_FILE);
    c->rd = (struct cat_rdslot *)(((uintptr_t)c->rd_raw + 63) & ~(uintptr_t)63);
    return cat_init_mem(c);
}

/* A new or torn-at-creation file (size < header): write the header. */
static int
cat_create_file(struct qt_catalog *c, uint64_t size)
{
    uint8_t hdr[QT_CATREC_HEADER_SIZE], old[QT_CATREC_HEADER_SIZE];
    size_t got;
    int rc = qt_catrec_header_encode(hdr, sizeof(hdr));
    qt_assert(rc == 0);
    if (size > 0) {
        if ((rc = cat_io_read(c->io, c->fd, old, (size_t)size, 0, &got)) != 0)
            return rc;
        if (got != size || memcmp(old, hdr, (size_t)size) != 0)
            return qt_fail(QT_EMAGIC, "catalog: file shorter than a header and not a torn one");
        qt_log(QT_LOG_WARN, "catalog: %s: rewriting torn header (%llu bytes)", c->path,
               (unsigned long long)size);
    }
    if ((rc = cat_io_truncate(c->io, c->fd, 0)) != 0 ||
        (rc = cat_io_write(c->io, c->fd, hdr, sizeof(hdr), 0)) != 0 ||
        (rc = cat_io_sync(c->io, c->fd, NULL)) != 0 || (rc = cat_io_sync(c->io, -1, c->dir)) != 0)
        return rc;
    c->end = c->synced = QT_CATREC_HEADER_SIZE;
    return 0;
}

static int
cat_load(struct qt_catalog *c, uint64_t size, struct qt_catalog_report *rep)
{
    struct cat_reader r = {.io = c->io, .fd = c->fd, .size = size};
    r.buf = qt_malloc(QT_CATALOG_READ_BUF);
    if (r.buf == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (replay buffer)");
    const uint8_t *p;
    size_t avail;
    uint32_t version;
    if (c->opts.durable_size > size) {
        qt_log(QT_LOG_ERROR, "catalog: %s: %llu bytes, shorter than its durable size %llu%s",
               c->path, (unsigned long long)size, (unsigned long long)c->opts.durable_size,
               (c->opts.flags & QT_CATALOG_SALVAGE) ? "; salvage: opening anyway" : "");
        if (!(c->opts.flags & QT_CATALOG_SALVAGE)) {
            qt_free(r.buf);
            return qt_fail(QT_ETRUNC, "catalog: log shorter than its recorded durable size");
        }
    }
    int rc = rd_window(&r, 0, QT_CATREC_HEADER_SIZE, &p, &avail);
    if (rc == 0)
        rc = qt_catrec_header_decode(p, avail, &version);
    c->replaying = true;
    if (rc == 0)
        rc = cat_replay(c, &r, rep);
    c->replaying = false;
    qt_free(r.buf);
    if (rc == 0 && (rep->skipped_bytes > 0 || rep->skipped_records > 0)) {
        qt_log(QT_LOG_WARN, "catalog: %s: salvage: rewriting the log without skipped data",
               c->path);
        rc = cat_rewrite(c);
    }
    return rc;
}

int
qt_catalog_open(const char *dir, const struct qt_catalog_opts *opts, struct qt_catalog **out)
{
    qt_assert(dir != NULL && out != NULL);
    struct qt_catalog_report local, *rep = opts != NULL && opts->report ? opts->report : &local;
    memset(rep, 0, sizeof(*rep));
    struct qt_catalog *c = NULL;
    uint64_t size = 0;
    int rc = cat_alloc(dir, opts, &c);
    if (rc == 0)
        rc = cat_io_open(c->io, c->path, &c->fd, &size);
    if (rc == 0 && size < QT_CATREC_HEADER_SIZE)
        rc = cat_create_file(c, size);
    else if (rc == 0)
        rc = cat_load(c, size, rep);
    if (rc != 0) {
        bool qt_code = rc < QT_EBASE && rc > QT_ELAST;
        const char *why = qt_code ? qt_err_detail() : "";
        qt_log(QT_LOG_ERROR, "catalog: open %s: %s%s%s",
               c != NULL && c->path != NULL ? c->path : dir, qt_strerror(rc), qt_code ? ": " : "",
               why);
        if (c != NULL)
            cat_destroy(c);
        if (qt_code)
            qt_fail(rc, why); /* keep the reason across the cleanup */
        return rc;
    }
    qt_log(QT_LOG_INFO, "catalog: %s: %u series, %u groups", c->path, atomic_load(&c->nseries),
           atomic_load(&c->ngroups));
    *out = c;
    return 0;
}

int
qt_catalog_close(struct qt_catalog *c)
{
    if (c == NULL)
        return 0;
    int rc = atomic_load(&c->failed);
    if (rc == 0 && (rc = log_flush(c)) == 0 && c->synced != c->end) {
        rc = cat_io_sync(c->io, c->fd, NULL);
        if (rc != 0)
            qt_log(QT_LOG_ERROR, "catalog: fdatasync %s at close: %s", c->path, qt_strerror(rc));
    }
    cat_destroy(c);
    return rc;
}

/* ==== accessors ========================================================== */

uint32_t
qt_catalog_series_count(const struct qt_catalog *c)
{
    return atomic_load_explicit(&((struct qt_catalog *)c)->nseries, memory_order_acquire);
}

uint32_t
qt_catalog_group_count(const struct qt_catalog *c)
{
    return atomic_load_explicit(&((struct qt_catalog *)c)->ngroups, memory_order_acquire);
}

int
qt_catalog_series_info(const struct qt_catalog *c, uint32_t sid, struct qt_catalog_series *out)
{
    qt_assert(c != NULL && out != NULL);
    if (sid >= qt_catalog_series_count(c))
        return qt_fail(QT_ENOTFOUND, "catalog: no such sid");
    const struct cat_series *s = cat_series_at(c, sid);
    const struct qt_catmem_dent *f = qt_catmem_dict_at(&c->fields, s->fid);
    out->key = s->key;
    out->key_len = s->key_len;
    out->group_len = cat_group_at(c, s->gid)->key_len;
    out->id = s->id;
    out->gid = s->gid;
    out->vtype = (enum qt_vtype)s->vtype;
    out->field = (struct qt_str){(const char *)f->p, f->len};
    qt_assert(out->group_len < out->key_len);
    return 0;
}

int
qt_catalog_group_info(const struct qt_catalog *c, uint32_t gid, struct qt_catalog_group *out)
{
    qt_assert(c != NULL && out != NULL);
    if (gid >= qt_catalog_group_count(c))
        return qt_fail(QT_ENOTFOUND, "catalog: no such gid");
    const struct cat_group *g = cat_group_at(c, gid);
    const struct qt_catmem_dent *m = qt_catmem_dict_at(&c->meas, g->mid);
    out->key = g->key;
    out->key_len = g->key_len;
    out->id = g->id;
    out->measurement = (struct qt_str){(const char *)m->p, m->len};
    out->first_sid = g->first_sid;
    return 0;
}

uint32_t
qt_catalog_group_next(const struct qt_catalog *c, uint32_t sid)
{
    qt_assert(c != NULL);
    qt_assert(sid < qt_catalog_series_count(c));
    uint32_t next = atomic_load_explicit(&cat_series_at(c, sid)->next, memory_order_acquire);
    return next == QT_CATMEM_NONE ? QT_CATALOG_NONE : next;
}

int
qt_catalog_sid_by_id(struct qt_catalog *c, uint64_t id, uint32_t *sid)
{
    qt_assert(c != NULL && sid != NULL);
    pthread_rwlock_rdlock(&c->idx_lock);
    _Atomic uint64_t *ctr = cat_rd_enter(c);
    uint32_t s = cat_id_owner(c, false, id);
    cat_rd_exit(ctr);
    pthread_rwlock_unlock(&c->idx_lock);
    if (s == QT_CATMEM_NONE)
        return qt_fail(QT_ENOTFOUND, "catalog: no series with that id");
    *sid = s;
    return 0;
}

int
qt_catalog_group_lookup(struct qt_catalog *c, const uint8_t *gkey, size_t len, uint32_t *gid)
{
    qt_assert(c != NULL && gid != NULL);
    qt_assert(gkey != NULL || len == 0);
    pthread_rwlock_rdlock(&c->idx_lock);
    uint32_t g = cat_group_find(c, gkey, len, qt_hash64(gkey, len));
    pthread_rwlock_unlock(&c->idx_lock);
    if (g == QT_CATMEM_NONE)
        return qt_fail(QT_ENOTFOUND, "catalog: no such group");
    *gid = g;
    return 0;
}

const char *
qt_catalog_vtype_name(enum qt_vtype vt)
{
    switch (vt) {
    case QT_VT_FLOAT: return "float";
    case QT_VT_INT: return "integer";
    case QT_VT_BOOL: return "boolean";
    case QT_VT_STRING: return "string";
    }
    return "unknown";
}
