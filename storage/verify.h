/*
 * verify.h -- check every checksum and structure of a data directory or a
 * backup, report what is damaged and what that loses, and optionally
 * quarantine damaged segments (design/ops.md "Verify").
 *
 * Checked: the MANIFEST (checksum, entries); every listed segment (size and
 * whole-file XXH3 against the MANIFEST, header, footer, metaindex, key
 * table, every index chunk, every TS and VALUE block: checksum, decode,
 * strict time order, statistics recomputed with qt_block_check_stats, the
 * index entry against the block headers); segment files the MANIFEST does
 * not list (reported, not damage: open removes them); the catalog log
 * (header, every record); every WAL file (every record, sequence order).
 * For a backup (a directory holding BACKUP): the BACKUP file, every file it
 * lists (present, size, XXH3), and all of the above on its contents.
 *
 * A finding names the file and the byte offset of the damage and what is
 * lost: for a damaged block its series key, time range and points; for a
 * segment that cannot be read at all its shard, time range and points.
 */
#ifndef QT_VERIFY_H
#define QT_VERIFY_H

#include "storage/ops.h"

#include <stdbool.h>
#include <stdint.h>

struct qt_db;

enum qt_verify_kind {
    QT_VERIFY_MANIFEST = 0,
    QT_VERIFY_SEGMENT = 1,
    QT_VERIFY_CATALOG = 2,
    QT_VERIFY_WAL = 3,
    QT_VERIFY_BACKUP = 4, /* the BACKUP file or a file it lists */
};

/* "manifest", "segment", "catalog", "wal", "backup". */
const char *qt_verify_kind_name(enum qt_verify_kind k);

struct qt_verify_finding {
    bool damage; /* false: for information (torn WAL tail, stray file, ...) */
    enum qt_verify_kind kind;
    const char *path;   /* the file (valid during the callback) */
    uint64_t offset;    /* of the damage; UINT64_MAX: the whole file / unknown */
    int code;           /* QT_E* or -errno */
    const char *what;   /* static description */
    const char *series; /* series key of what is lost, or NULL; series_len bytes */
    uint32_t series_len;
    uint64_t series_id;     /* of what is lost, 0 when not a single series */
    int64_t ts_min, ts_max; /* time range lost (when points > 0) */
    uint64_t points;        /* points lost (0 when unknown or none) */
};

typedef void (*qt_verify_fn)(void *arg, const struct qt_verify_finding *f);

struct qt_verify_opts {
    /* Move damaged (or missing) segments out of the MANIFEST, the files to
     * DIR/quarantine/<shard>-<seq>.qts, so the rest of the database serves.
     * Data directories only (QT_EINVAL for a backup). */
    bool quarantine;
    qt_verify_fn report; /* called for every finding; may be NULL */
    void *arg;
    struct qt_ops_ctl ctl; /* progress in bytes read */
    /* Files above this are mapped instead of read into memory; 0 = default
     * (QT_VERIFY_INMEM_MAX).  Tests set it low to run both paths. */
    uint64_t inmem_max;
};

struct qt_verify_result {
    bool is_backup;
    uint32_t files;         /* files checked */
    uint32_t segments;      /* segments checked */
    uint32_t damaged_files; /* files with at least one damage finding */
    uint32_t quarantined;   /* segments moved out of the MANIFEST */
    uint64_t blocks;        /* blocks decoded and checked */
    uint64_t points;        /* points in them */
    uint64_t bytes;         /* bytes read */
    uint64_t findings, damages;
    uint64_t ns;
};

/*
 * Verify the data directory or backup `dir` offline (no process may have a
 * data directory open when quarantining: QT_EBUSY).  Returns 0 when nothing
 * is damaged, QT_ECORRUPT when something is (after reporting it and, with
 * quarantine, moving damaged segments aside), QT_ECLOSED when cancelled, or
 * another error that stopped it (-errno, QT_ENOMEM).  r may be NULL.
 */
int qt_verify_dir(const char *dir, const struct qt_verify_opts *o, struct qt_verify_result *r);

/* The same on a live database (segments of the current version; WAL and
 * catalog up to their current size, a partial last record being normal).
 * Quarantine commits a MANIFEST without the damaged segments. */
int qt_db_verify(struct qt_db *db, const struct qt_verify_opts *o, struct qt_verify_result *r);

#endif
