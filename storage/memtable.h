/*
 * memtable.h -- the in-memory, columnar write buffer.
 *
 * Rows are appended per *column group* (one measurement + tag set, dense
 * catalog gid): one timestamp column shared by the group's value columns
 * (one per field = series, dense catalog sid), each with a presence bit per
 * row because a line may carry only some of the group's fields.
 *
 * Every row carries the WAL sequence number of the record it came from.  A
 * point re-sent with the same series and timestamp replaces the earlier one
 * (last write wins): "earlier" is decided by seq, not by insertion order, so
 * concurrent writers that append in a different order than the WAL still
 * resolve exactly as recovery (which replays in WAL order) will.
 *
 * Thread model: qt_mem_append() and the collect functions may run
 * concurrently from any threads; groups are spread over QT_MEM_PARTITIONS
 * mutexes by gid, so writers to different groups rarely contend.
 * qt_mem_destroy() requires that no other thread uses the memtable.
 *
 * Memory: qt_mem_bytes() is the resident estimate the engine compares with
 * its budget; it counts column capacity, not just used rows.
 */
#ifndef QT_MEMTABLE_H
#define QT_MEMTABLE_H

#include "format/codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One value as stored in a column: floats and integers in place; bools as
 * 0/1 in i; strings as a copy in the group's arena (offset, length). */
union qt_value {
    double f;
    int64_t i;
    struct {
        uint32_t off;
        uint32_t len;
    } s;
};

/* One field of an appended row.  For QT_VT_STRING, str points at caller
 * bytes that qt_mem_append copies; for other types `v` holds the value. */
struct qt_mem_cell {
    uint32_t sid;
    uint8_t vtype;
    union qt_value v;
    struct qt_str str;
};

struct qt_memtable;

int qt_mem_create(struct qt_memtable **out);
void qt_mem_destroy(struct qt_memtable *m);

/*
 * Append one row to group `gid`: timestamp, WAL seq and n cells.  A sid not
 * yet seen in the group adds a column (earlier rows read as absent).  A sid
 * whose vtype differs from its column's is QT_EINVAL (the catalog prevents
 * it; this is the memtable's own guard).  Returns QT_ENOMEM on allocation
 * failure, leaving the memtable unchanged.  Copies everything it keeps.
 */
int qt_mem_append(struct qt_memtable *m, uint32_t gid, uint64_t seq, int64_t ts,
                  const struct qt_mem_cell *cells, uint32_t n);

size_t qt_mem_bytes(const struct qt_memtable *m);
uint64_t qt_mem_rows(const struct qt_memtable *m);
uint64_t qt_mem_points(const struct qt_memtable *m);
/* Smallest and largest WAL seq appended (0, 0 when empty). */
void qt_mem_seq_range(const struct qt_memtable *m, uint64_t *seq_min, uint64_t *seq_max);

/*
 * A sorted, deduplicated copy of part of one group: rows with ts in
 * [t0, t1), ascending, one row per timestamp (fields merged: each column
 * takes the value of the highest-seq row that had it).  Owned by the caller,
 * released with qt_mem_rows_free().  String values point into `arena`.
 */
struct qt_mem_col {
    uint32_t sid;
    uint8_t vtype;
    union qt_value *vals; /* nrows entries; meaningful where present */
    uint8_t *present;     /* nrows bytes, 0 or 1 */
    uint32_t npresent;
};

struct qt_mem_group_rows {
    uint32_t gid;
    uint32_t nrows;
    int64_t *ts;
    uint32_t ncols;
    struct qt_mem_col *cols;
    char *arena;
    size_t arena_len;
};

/* Collect group gid over [t0, t1); a group with no rows there yields
 * nrows == 0 (not an error).  QT_ENOTFOUND if the group has never been
 * appended to this memtable. */
int qt_mem_collect_group(struct qt_memtable *m, uint32_t gid, int64_t t0, int64_t t1,
                         struct qt_mem_group_rows *out);
void qt_mem_rows_free(struct qt_mem_group_rows *rows);

/* The time range of group gid's rows (false if the group has no rows). */
bool qt_mem_group_range(struct qt_memtable *m, uint32_t gid, int64_t *ts_min, int64_t *ts_max);

/* The time range of series sid (in group gid); false if it has no points. */
bool qt_mem_series_range(struct qt_memtable *m, uint32_t gid, uint32_t sid, int64_t *ts_min,
                         int64_t *ts_max);

/*
 * Call fn for every group with rows, in ascending gid order.  For flushing
 * an immutable memtable: no concurrent appends allowed.  Stops and returns
 * the first non-zero value fn returns.
 */
int qt_mem_foreach_group(struct qt_memtable *m, int (*fn)(void *arg, uint32_t gid), void *arg);

#endif
