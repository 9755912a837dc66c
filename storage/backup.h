/*
 * backup.h -- online, consistent backups and restore (design/ops.md
 * "Backups").
 *
 * Layout of a backup target directory (a plain directory: rsync -aH or an
 * object-store tool ships it to a second site):
 *
 *   TARGET/LOCK                   flock'ed while a backup writes into TARGET
 *   TARGET/<id>/BACKUP            the file list with sizes and XXH3-64
 *                                 (format/bkmanifest.h), written last
 *   TARGET/<id>/MANIFEST          a data directory's files, as captured
 *   TARGET/<id>/catalog.qtc
 *   TARGET/<id>/wal/<seq>.wal     the WAL files after the checkpoint
 *   TARGET/<id>/shards/<start>/<seq>.qts
 *   TARGET/.<id>.partial/         a backup being written (renamed to <id>
 *                                 when complete; removed by the next backup
 *                                 if a crash left it)
 *
 * Every backup directory is complete on its own: files unchanged since the
 * previous backup (same path, size and XXH3) are hard links to that
 * backup's copy, so an incremental backup writes only new segments and the
 * changed WAL/catalog tail, and any backup can be deleted without breaking
 * another.  Ids are UTC timestamps (YYYYMMDDTHHMMSSmmmZ, "-N" appended if
 * taken), so they sort by time.
 */
#ifndef QT_BACKUP_H
#define QT_BACKUP_H

#include "format/qt_limits.h"
#include "storage/io.h"
#include "storage/ops.h"

#include <stdbool.h>
#include <stdint.h>

struct qt_db;

struct qt_backup_opts {
    const char *target;
    /* Link files unchanged since the newest complete backup in target
     * instead of copying them.  Without it every file is written anew. */
    bool incremental;
    /* Never hard-link segments from the data directory (use when target is
     * on the same file system but must survive the loss of the data
     * files' blocks, e.g. a different directory quota or snapshot policy).
     * Across file systems segments are copied anyway. */
    bool copy;
    struct qt_ops_ctl ctl; /* progress in bytes */
};

struct qt_backup_result {
    char id[QT_BACKUP_ID_MAX + 1];
    char parent[QT_BACKUP_ID_MAX + 1]; /* "" for a full backup */
    uint32_t files;
    uint32_t files_copied;      /* bytes written into the backup */
    uint32_t files_linked_data; /* hard links to the data directory's segments */
    uint32_t files_linked_prev; /* hard links to the previous backup's copy */
    uint64_t bytes;             /* sum of the files' sizes */
    uint64_t bytes_written;
    uint64_t bytes_read; /* read to copy or checksum */
    uint64_t ns;
};

/*
 * Take a backup of the live database db into o->target (created if
 * absent).  Writes may continue; the backup holds exactly the state at the
 * moment it was captured: the segments of the version current then, the
 * MANIFEST that lists them, the catalog and the WAL files after the
 * checkpoint up to their sizes then (a record cut at the end is a torn tail
 * that replay drops; qt_db_sync() runs first, so every write acknowledged
 * before the call is inside).  Every segment is read and checked against
 * its MANIFEST checksum on the way (linked from a previous backup: trusted;
 * `qtdb verify --backup` checks those).  Errors: QT_ECORRUPT (a segment is
 * damaged: the backup is refused), QT_EBUSY (another backup holds the
 * target), QT_ECLOSED (cancelled), -errno.  On any error the target holds
 * no new backup (at most a .partial directory).  res may be NULL.
 */
int qt_db_backup(struct qt_db *db, const struct qt_backup_opts *o, struct qt_backup_result *res);

struct qt_restore_opts {
    const char *from; /* a backup directory (holding BACKUP), or a target: its newest backup */
    const char *to;   /* new data directory: absent or empty unless force */
    bool force;       /* replace the engine files of a non-empty `to` */
    struct qt_io *io; /* optional, not owned (tests: fault backend); NULL = auto */
    struct qt_ops_ctl ctl;
};

struct qt_restore_result {
    char id[QT_BACKUP_ID_MAX + 1];
    uint32_t files;
    uint64_t bytes;
    uint64_t ns;
};

/*
 * Restore a backup into o->to.  First reads every file of the backup and
 * checks its size and XXH3-64 against BACKUP; nothing is written unless all
 * match (QT_ECHECKSUM / QT_ETRUNC / -ENOENT with the file in the log).
 * Then copies into a sibling staging directory, fsyncs every file and
 * directory, and renames it to o->to, so o->to either does not change or
 * holds the complete restore.  QT_EBUSY when o->to is not empty and not
 * force, or holds files that are not the engine's.  Opening the restored
 * directory replays the captured WAL tail.
 */
int qt_backup_restore(const struct qt_restore_opts *o, struct qt_restore_result *res);

/* The newest complete backup in target into id (""/QT_ENOTFOUND if none). */
int qt_backup_latest(const char *target, char *id, size_t cap);

#endif
