/*
 * catalog_int.h -- the catalog's internal structures, shared by catalog.c
 * (creation, lookup, log, replay) and catalog_query.c (selection,
 * listings).  Not for use outside storage/catalog*.c.
 *
 * Which lock guards what (details in catalog.c's opening comment):
 *   lock-free  series/groups vectors (below the published counts), keytab,
 *              arena bytes, dictionary entries of ids already published;
 *   idx_lock   (rwlock) every dictionary's hash table, postings and the
 *              per-measurement / per-tag-key lists, id_other, gkeytab,
 *              gid_other;
 *   wlock      (mutex) the writer: plan scratch, log buffer and file state.
 */
#ifndef QT_CATALOG_INT_H
#define QT_CATALOG_INT_H

#include "catalog.h"
#include "catmem.h"
#include "format/qt_limits.h"
#include "format/serieskey.h"
#include "storage/io.h"

#include <pthread.h>
#include <stdatomic.h>

/* One series (32 bytes; 10M of them is 320 MB). */
struct cat_series {
    uint64_t id;        /* persisted series id */
    const uint8_t *key; /* canonical series key in the arena */
    uint32_t gid;
    _Atomic uint32_t next; /* next sid of the same group, QT_CATMEM_NONE at the end */
    uint32_t fid;          /* field name: c->fields id */
    uint16_t key_len;
    uint8_t vtype;
    uint8_t pad;
};

/* One group (32 bytes).  Its key is the prefix of its first series' key. */
struct cat_group {
    uint64_t id;        /* persisted group id */
    const uint8_t *key; /* = first series' key; key_len bytes */
    uint32_t first_sid;
    uint32_t last_sid; /* writer only */
    uint32_t mid;      /* measurement: c->meas id */
    uint16_t key_len;
    uint16_t pad;
};

/* Per measurement: its sids, its field ids and tag key ids (each once). */
struct cat_meas {
    struct qt_catmem_list sids;
    struct qt_catmem_list fids;
    struct qt_catmem_list kids;
};

/* Per tag key: the ids of its (key, value) pairs, i.e. its distinct values. */
struct cat_tkey {
    struct qt_catmem_list tvids;
};

/* A reader slot: lock-free lookups count themselves in here. */
struct cat_rdslot {
    _Atomic uint64_t active;
    uint8_t pad[56];
};

/* The writer's plan for one new series (scratch under wlock). */
struct cat_plan {
    struct qt_serieskey k;
    uint64_t h0;        /* qt_hash64 of the series key */
    uint64_t g0;        /* qt_hash64 of the group key */
    uint64_t series_id; /* persisted ids */
    uint64_t group_id;
    uint32_t gid; /* existing group or QT_CATMEM_NONE */
    uint8_t vtype;
};

/* Dictionary lookups a series makes: measurement, field, (measurement,
 * field), and per tag: key, (key, value), (measurement, key). */
#define CAT_TRACE_MAX (3u + 3u * QT_TAGS_MAX)

/* One dictionary lookup of the reserve pass, replayed by the commit pass so
 * that it does not probe again. */
struct cat_trace {
    uint64_t hash;
    uint32_t id;
    bool fresh;
};

/* State of one reserve or commit pass over the index (catalog.c ix_*). */
struct cat_pass {
    bool commit;
    uint32_t sid;       /* commit: the series being added */
    size_t arena_bytes; /* reserve: bytes of new dictionary keys */
    uint32_t mk_new;    /* reserve: new (measurement, tag key) pairs so far */
    uint32_t ntrace;    /* lookups made (reserve) or replayed (commit) */
    bool same_group;    /* the group is c->last: reuse its measurement and tag ids */
    uint32_t mid;       /* resolved ids, kept in c->last after the commit */
    uint32_t tvid[QT_TAGS_MAX];
};

/* The group of the last series created: the next series is usually another
 * field of it (one line protocol line, several fields), whose measurement
 * and tag lookups can then be skipped. */
struct cat_last {
    uint32_t gid; /* QT_CATMEM_NONE when unset */
    uint32_t mid;
    uint32_t tvid[QT_TAGS_MAX];
};

struct qt_catalog {
    /* ---- lock-free readable ---- */
    _Atomic uint32_t nseries;
    _Atomic uint32_t ngroups;
    struct qt_catmem_vec series;  /* struct cat_series */
    struct qt_catmem_vec groups;  /* struct cat_group */
    struct qt_catmem_htab keytab; /* series key -> sid; deferred free */
    struct cat_rdslot *rd;        /* QT_CATALOG_READER_SLOTS, cache-line aligned */
    void *rd_raw;
    struct qt_catmem_dict fields; /* field names (unescaped) -> fid */
    struct qt_catmem_dict meas;   /* measurement names (unescaped) -> mid */

    /* ---- idx_lock ---- */
    pthread_rwlock_t idx_lock;
    /* Id lookups probe keytab (gkeytab) with the id as the hash: a series
     * whose id is the unseeded hash of its key sits exactly there.  Only the
     * others (collisions, test hooks) need an entry of their own. */
    struct qt_catmem_htab id_other;  /* mix(series id) -> sid, id != hash(key) */
    struct qt_catmem_htab gkeytab;   /* group key -> gid */
    struct qt_catmem_htab gid_other; /* mix(group id) -> gid, id != hash(group key) */
    struct qt_catmem_vec meas_data;  /* struct cat_meas by mid */
    struct qt_catmem_dict tkeys;     /* tag keys (unescaped) -> kid */
    struct qt_catmem_vec tkey_data;  /* struct cat_tkey by kid */
    struct qt_catmem_dict tpairs;    /* le32(kid) + value -> tvid */
    struct qt_catmem_vec tv_post;    /* struct qt_catmem_list (sids) by tvid */
    struct qt_catmem_dict mfpairs;   /* le32(mid) le32(fid) -> mfid */
    struct qt_catmem_vec mf_post;    /* struct qt_catmem_list (sids) by mfid */
    struct qt_catmem_dict mkpairs;   /* le32(mid) le32(kid) -> exists */
    size_t list_bytes;               /* capacity of every posting/list, bytes */

    /* ---- wlock (writer) ---- */
    pthread_mutex_t wlock;
    struct qt_catmem_arena arena; /* keys of series and dictionaries */
    struct cat_plan plan;
    struct cat_trace trace[CAT_TRACE_MAX];
    struct cat_last last;
    bool replaying; /* inside open: one thread, no locks needed */
    uint8_t scratch[QT_SERIES_KEY_MAX];
    uint8_t pairbuf[8 + QT_SERIES_KEY_MAX];
    uint32_t series_max;
    struct qt_catalog_opts opts;

    /* log file */
    char *dir;
    char *path;
    struct qt_io *io; /* not owned unless own_io */
    bool own_io;
    int fd;
    uint64_t end;    /* file offset where the write buffer starts */
    uint64_t synced; /* bytes known durable */
    uint8_t *wbuf;   /* QT_CATALOG_WRITE_BUF */
    size_t wlen;
    _Atomic int failed; /* 0, or the I/O error that made the catalog FAILED */
};

static inline struct cat_series *
cat_series_at(const struct qt_catalog *c, uint32_t sid)
{
    return (struct cat_series *)qt_catmem_vec_at(&c->series, sid);
}

static inline struct cat_group *
cat_group_at(const struct qt_catalog *c, uint32_t gid)
{
    return (struct cat_group *)qt_catmem_vec_at(&c->groups, gid);
}

#endif
