/*
 * bkmanifest.h -- the BACKUP file: what one backup holds and the checksum
 * of every file in it (design/ops.md "Backups").
 *
 * Text, one record per line, so an operator can read it with cat and a
 * script with awk; every byte is covered by the final checksum:
 *
 *   qtdb-backup 1\n
 *   id <ID>\n                 this backup: 1..QT_BACKUP_ID_MAX of [0-9A-Za-z._-]
 *   parent <ID>|-\n           the backup unchanged files were linked from
 *   created_ns <int64>\n      wall clock at capture
 *   generation <u64>\n        MANIFEST generation captured (0: none yet)
 *   wal_checkpoint <u64>\n    WAL records above it are in the copied WAL files
 *   files <n>\n               0..QT_BACKUP_FILES_MAX
 *   f <size> <xxh3> <n|l> <path>\n     n times, paths strictly ascending
 *   sum <xxh3>\n              XXH3-64 of every byte before this line
 *
 * Integers are decimal without sign (created_ns may carry '-') or leading
 * zeros; <xxh3> is 16 lower-case hex digits of the XXH3-64 of the file's
 * whole content; n = copied into this backup, l = hard-linked (from the data
 * directory or from the parent backup: same bytes).  A path is relative:
 * components of [0-9A-Za-z._-] separated by single '/', none empty, "." or
 * "..", at most QT_BACKUP_PATH_MAX bytes, so a hostile BACKUP cannot name a
 * file outside its directory.  The encoding is canonical: decode then
 * encode gives the same bytes.
 *
 * Pure functions: no I/O, no allocation.  Decoded paths point into the
 * caller's buffer.
 */
#ifndef QT_BKMANIFEST_H
#define QT_BKMANIFEST_H

#include "qt_limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QT_BKM_NAME "BACKUP"

struct qt_bkm_hdr {
    char id[QT_BACKUP_ID_MAX + 1];     /* NUL-terminated */
    char parent[QT_BACKUP_ID_MAX + 1]; /* "" when none ("-" on disk) */
    int64_t created_ns;
    uint64_t generation;
    uint64_t wal_checkpoint;
    uint32_t n_files;
};

struct qt_bkm_file {
    uint64_t size;
    uint64_t xxh3;
    bool linked;
    const char *path; /* not NUL-terminated */
    uint32_t path_len;
};

/* True when p[0..len) is a valid relative path (rules above). */
bool qt_bkm_path_ok(const char *p, size_t len);

/* True when id is a valid backup id (1..QT_BACKUP_ID_MAX of [0-9A-Za-z._-],
 * not starting with '.'). */
bool qt_bkm_id_ok(const char *id, size_t len);

/* Bytes qt_bkm_encode writes at most for these files. */
size_t qt_bkm_bound(const struct qt_bkm_file *files, uint32_t n);

/* Encode h (h->n_files must equal n) and files[0..n) (valid paths, strictly
 * ascending) into out[0..cap).  0, QT_EINVAL with a reason, QT_ENOSPACE. */
int qt_bkm_encode(const struct qt_bkm_hdr *h, const struct qt_bkm_file *files, uint32_t n,
                  uint8_t *out, size_t cap, size_t *out_len);

/* Check the checksum and decode the header lines of buf[0..len) (so the
 * caller can size the file array from h->n_files).  0, QT_ETRUNC,
 * QT_EMAGIC, QT_EVERSION, QT_ECHECKSUM, QT_ECORRUPT / QT_ESYNTAX with a
 * reason, QT_ELIMIT. */
int qt_bkm_decode_header(const uint8_t *buf, size_t len, struct qt_bkm_hdr *h);

/* Decode everything into h and files[0..cap) (cap >= h->n_files): the
 * header as above, every file line, strictly ascending paths, the end. */
int qt_bkm_decode(const uint8_t *buf, size_t len, struct qt_bkm_hdr *h, struct qt_bkm_file *files,
                  uint32_t cap);

#endif
