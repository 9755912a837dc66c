/*
 * opsutil.h -- a reference model and helpers for the operations tests
 * (test_engine_ops*.c): compaction, retention, backup, restore, verify.
 *
 * The model holds, per (group, field, slot), whether a point was written
 * and a value code; ts = OPS_T0 + slot * OPS_STEP.  Fields have different
 * types (float, integer, string, boolean) so every value path is compared.
 * Groups belong to three measurements so retention can treat them apart.
 */
#ifndef QT_TEST_OPSUTIL_H
#define QT_TEST_OPSUTIL_H

#include "storage/db.h"
#include "storage/io.h"

#include <stdbool.h>
#include <stdint.h>

#define OPS_DAY    86400000000000ll
#define OPS_T0     (20770ll * OPS_DAY) /* 2026-11-13T00:00:00Z */
#define OPS_STEP   10000000000ll       /* 10 s */
#define OPS_HOUR   3600000000000ll
#define OPS_GROUPS 6
#define OPS_FIELDS 4
#define OPS_SLOTS  3000 /* 8h20m: 9 one-hour shards */

struct ops_model {
    int64_t code[OPS_GROUPS][OPS_FIELDS][OPS_SLOTS];
    uint8_t set[OPS_GROUPS][OPS_FIELDS][OPS_SLOTS];
};

extern const char *const ops_group_keys[OPS_GROUPS];
extern const char *const ops_field_names[OPS_FIELDS];

/* Open dir with the test's real backend (or io when not NULL), no
 * background threads, one-hour shards.  NULL on failure (printed). */
struct qt_db *ops_open(const char *dir, struct qt_io *io);
struct qt_db *ops_open_opts(struct qt_db_opts *o);

/* Write n random lines into slots [lo, hi): mostly ascending, 10% late
 * anywhere in the range, re-sends overwrite.  Records them in m. */
int ops_write_random(struct qt_db *db, struct ops_model *m, uint64_t *rng, uint32_t n, uint32_t lo,
                     uint32_t hi);

/* Write one line of group g at slot with every field, value codes `code`. */
int ops_write_line(struct qt_db *db, struct ops_model *m, uint32_t g, uint32_t slot, int64_t code);

/* Compare every series of db over all slots with m; with drop_before[g]
 * (NULL = none), slots below it must be absent for group g.  Prints the
 * first difference.  0 or -1. */
int ops_check(struct qt_db *db, const struct ops_model *m, const uint32_t *drop_before);

/* Points set in m (after drop_before like ops_check). */
uint64_t ops_model_points(const struct ops_model *m, const uint32_t *drop_before);

/* Copy directory tree src to dst (dst must not exist).  0 or -errno. */
int ops_copy_tree(const char *src, const char *dst);
/* Remove a directory tree (best effort). */
void ops_rm_tree(const char *path);
/* Number of regular files under dir whose name ends in suffix. */
uint32_t ops_count_files(const char *dir, const char *suffix);

#endif
