/*
 * catalog.h -- the persistent series catalog and its inverted index.
 *
 * A *group* is measurement + tag set, named by its canonical group key; a
 * *series* is group + field, named by its canonical series key
 * "<group key> <field>" (format/serieskey.h).  The catalog gives every series
 * a persisted 64-bit series id (XXH3-64 of the key; on a collision with
 * another key, XXH3-64 seeded 1, 2, ...) and a dense in-memory sid
 * (0..n-1, this process only), every group a persisted group id and a dense
 * gid, and keeps an inverted index (measurement, field, tag key=value ->
 * sorted sids) for selection.  Series are never deleted.  Each series has
 * one value type for life.
 *
 * Persistence: an append-only log `catalog.qtc` in the data directory
 * (format/catrec.h).  Creating a series appends a record to a buffer;
 * qt_catalog_sync() makes every appended record durable.  The engine must
 * sync before it commits anything (a manifest) that references new series.
 * An I/O failure puts the catalog in a FAILED state: lookups keep working,
 * creating series and syncing fail with QT_EREADONLY until it is reopened.
 *
 * Threads: any number of threads may call any function concurrently except
 * qt_catalog_close().  Lookups of existing series (get_or_create, lookup,
 * series/group info) take no lock; creating a series serialises on a writer
 * mutex; selection and listings take a shared lock that creation takes
 * exclusively for a few microseconds.  Pointers returned into the catalog
 * (keys, names) stay valid until qt_catalog_close().
 */
#ifndef QT_CATALOG_H
#define QT_CATALOG_H

#include "format/codec.h"
#include "storage/io.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QT_CATALOG_FILE "catalog.qtc"

/* No such sid/gid (end of a group's series list). */
#define QT_CATALOG_NONE UINT32_MAX

/* Open flags. */
enum {
    /* Skip corrupt records followed by valid ones (logged with offsets)
     * instead of refusing to open with QT_ECHECKSUM / QT_ECORRUPT. */
    QT_CATALOG_SALVAGE = 1u << 0,
};

struct qt_catalog;

/* What open found in the log (optional; see qt_catalog_opts.report). */
struct qt_catalog_report {
    uint64_t records;         /* records replayed */
    uint64_t tail_offset;     /* offset where a torn tail was cut, or 0 */
    uint64_t tail_bytes;      /* bytes cut there */
    uint64_t bad_offset;      /* first corrupt record followed by valid ones, or 0 */
    uint64_t skipped_bytes;   /* bytes skipped by salvage */
    uint64_t skipped_records; /* decodable records rejected by salvage (inconsistent) */
};

struct qt_catalog_opts {
    unsigned flags; /* QT_CATALOG_SALVAGE */
    /* I/O handle for the log (not owned); NULL = a private posix handle. */
    struct qt_io *io;
    /* Series limit; 0 = QT_CATALOG_SERIES_MAX. */
    uint32_t series_max;
    /* Test hook: when set, series and group ids are hash_override(arg, key,
     * len, seed) instead of XXH3-64 seeded `seed` (seed 0 = unseeded), so a
     * test can force collisions.  NULL in production. */
    uint64_t (*hash_override)(void *arg, const uint8_t *key, size_t len, uint64_t seed);
    void *hash_arg;
    /* Log bytes known durable from a record kept elsewhere (the engine's
     * manifest stores qt_catalog_durable_size() after each sync); 0 =
     * unknown.  Damage at or past this offset is an unsynced tail and is cut
     * even when valid records follow it: pages of an unsynced write may
     * reach the disk in any order, and none of those records was promised.
     * A file shorter than this lost synced records: QT_ETRUNC (salvage
     * opens it anyway). */
    uint64_t durable_size;
    /* Filled by open when not NULL (also when open fails). */
    struct qt_catalog_report *report;
};

/* Open (creating if absent) dir/catalog.qtc and replay it.  opts may be NULL.
 * A torn tail is cut off (logged); a corrupt record followed by valid ones
 * fails with QT_ECHECKSUM (or QT_ECORRUPT for a decodable but inconsistent
 * record: duplicate key, id owned by another key, group id mismatch) unless
 * QT_CATALOG_SALVAGE.  Other errors: QT_EMAGIC / QT_EVERSION / QT_ECHECKSUM
 * (header), -errno, QT_ENOMEM.  *out is owned by the caller (close it). */
int qt_catalog_open(const char *dir, const struct qt_catalog_opts *opts, struct qt_catalog **out);

/* Flush and sync what is buffered, free everything.  Returns the first error
 * of that final sync (or of an earlier failure); NULL is accepted.  No other
 * call may run concurrently or later on c. */
int qt_catalog_close(struct qt_catalog *c);

/* The sid of the series with canonical key key[0..len), creating it with
 * value type vt if absent (then appending a log record).  Existing series:
 * no lock, no allocation.  Errors: QT_EINVAL "field type conflict: series is
 * float, got integer" (the series exists with another type), QT_ESYNTAX /
 * QT_ELIMIT (key not canonical / too long / too many tags), QT_ELIMIT (series
 * limit), QT_ECOLLISION (no free id after QT_CATALOG_REHASH_MAX seeds),
 * QT_EREADONLY (FAILED state), -errno (the append hit an I/O error: the
 * catalog is now FAILED), QT_ENOMEM (nothing changed). */
int qt_catalog_get_or_create(struct qt_catalog *c, const uint8_t *key, size_t len, enum qt_vtype vt,
                             uint32_t *sid);

/* The sid of an existing series: 0 or QT_ENOTFOUND.  No lock. */
int qt_catalog_lookup(struct qt_catalog *c, const uint8_t *key, size_t len, uint32_t *sid);

/* The sid owning persisted series id `id`: 0 or QT_ENOTFOUND. */
int qt_catalog_sid_by_id(struct qt_catalog *c, uint64_t id, uint32_t *sid);

/* The gid of canonical group key gkey[0..len): 0 or QT_ENOTFOUND. */
int qt_catalog_group_lookup(struct qt_catalog *c, const uint8_t *gkey, size_t len, uint32_t *gid);

/* Number of series / groups (sids and gids are 0..count-1).  No lock. */
uint32_t qt_catalog_series_count(const struct qt_catalog *c);
uint32_t qt_catalog_group_count(const struct qt_catalog *c);

struct qt_catalog_series {
    const uint8_t *key; /* canonical series key, key_len bytes */
    uint32_t key_len;
    uint32_t group_len; /* key[0..group_len) is the group key */
    uint64_t id;        /* persisted series id */
    uint32_t gid;
    enum qt_vtype vtype;
    struct qt_str field; /* unescaped field name */
};

struct qt_catalog_group {
    const uint8_t *key; /* canonical group key, key_len bytes */
    uint32_t key_len;
    uint64_t id;               /* persisted group id */
    struct qt_str measurement; /* unescaped */
    uint32_t first_sid;        /* its series in creation order: see group_next */
};

/* Describe sid / gid: 0 or QT_ENOTFOUND (not below the count).  No lock;
 * the pointers stay valid until close. */
int qt_catalog_series_info(const struct qt_catalog *c, uint32_t sid, struct qt_catalog_series *out);
int qt_catalog_group_info(const struct qt_catalog *c, uint32_t gid, struct qt_catalog_group *out);

/* The series after sid in its group, or QT_CATALOG_NONE.  Iterate a group's
 * series (its fields) with first_sid and this.  No lock. */
uint32_t qt_catalog_group_next(const struct qt_catalog *c, uint32_t sid);

/* Make every record appended so far durable (write + fdatasync).  0, or the
 * I/O error (the catalog is then FAILED; never retried), or QT_EREADONLY when
 * already FAILED. */
int qt_catalog_sync(struct qt_catalog *c);

/* Bytes of the log made durable by the last successful sync (or found at
 * open).  Record it with whatever commits after the sync (the manifest) and
 * pass it back as qt_catalog_opts.durable_size. */
uint64_t qt_catalog_durable_size(struct qt_catalog *c);

/* True once an I/O error put the catalog in the FAILED state. */
bool qt_catalog_failed(const struct qt_catalog *c);

/* Bytes of memory the catalog holds (arenas, vectors, tables, postings),
 * from its own accounting (allocator rounding excluded); for stats.  Waits
 * for a series being created. */
size_t qt_catalog_memory_bytes(struct qt_catalog *c);

/* ---- selection --------------------------------------------------------- */

/* A tag that a series lacks counts as the empty value "" (tag values are
 * never empty): k = "" selects series without k, k != "" those with it, and
 * a regex that matches "" also selects series without k (as InfluxDB). */
enum qt_match_op {
    QT_MATCH_EQ = 1,  /* k = value */
    QT_MATCH_NE = 2,  /* k != value */
    QT_MATCH_RE = 3,  /* k =~ value (PCRE2 pattern, unanchored; anchor with ^...$) */
    QT_MATCH_NRE = 4, /* k !~ value */
    QT_MATCH_IN = 5,  /* k in (values[0..nvalues)) */
};

struct qt_tag_matcher {
    enum qt_match_op op;
    struct qt_str key;           /* unescaped tag key */
    struct qt_str value;         /* EQ, NE: unescaped value; RE, NRE: the pattern */
    const struct qt_str *values; /* IN */
    uint32_t nvalues;
};

/* The sorted sids of measurement `measurement` (unescaped), restricted to
 * field *field when field != NULL, that satisfy every matcher.  On success
 * *sids is an array from qt_malloc owned by the caller (qt_free; NULL when
 * *n == 0).  Errors: QT_ELIMIT when more than max_series series match (or
 * more than QT_CATALOG_MATCHERS_MAX matchers / QT_CATALOG_IN_VALUES_MAX
 * values), QT_ESYNTAX for a bad regex, QT_EINVAL for a bad op, QT_ENOMEM.
 * An unknown measurement, field or tag key is not an error (no match). */
int qt_catalog_select(struct qt_catalog *c, struct qt_str measurement, const struct qt_str *field,
                      const struct qt_tag_matcher *m, uint32_t nm, uint32_t max_series,
                      uint32_t **sids, uint32_t *n);

/* ---- listings ---------------------------------------------------------- */

/* A list of unescaped names sorted by bytes (memcmp, shorter prefix first),
 * in one allocation: free with qt_catalog_strlist_free. */
struct qt_strlist {
    uint32_t n;
    struct qt_str *items;
};

void qt_catalog_strlist_free(struct qt_strlist *l);

/* Every measurement. */
int qt_catalog_list_measurements(struct qt_catalog *c, struct qt_strlist **out);
/* The fields of a measurement (empty list if unknown). */
int qt_catalog_list_fields(struct qt_catalog *c, struct qt_str measurement,
                           struct qt_strlist **out);
/* The tag keys of a measurement, or of all measurements when measurement is
 * NULL. */
int qt_catalog_list_tag_keys(struct qt_catalog *c, const struct qt_str *measurement,
                             struct qt_strlist **out);
/* The values of tag key `key`, restricted to series of `measurement` when
 * it is not NULL. */
int qt_catalog_list_tag_values(struct qt_catalog *c, struct qt_str key,
                               const struct qt_str *measurement, struct qt_strlist **out);

/* "float", "integer", "boolean", "string" or "unknown". */
const char *qt_catalog_vtype_name(enum qt_vtype vt);

#endif
