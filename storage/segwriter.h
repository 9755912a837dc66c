/*
 * segwriter.h -- writes one immutable segment file (format/segment.h).
 *
 * Used by flush (one writer per shard touched by the memtable) and by
 * compaction.  The file is written under a temporary name; qt_segw_finish()
 * writes key table, index and footer, fsyncs and closes it, and the caller
 * renames it into place, fsyncs the directory and lists it in the MANIFEST.
 * Nothing before that is visible to readers.
 *
 * Rows are added per column group, already sorted by timestamp with one row
 * per timestamp (qt_mem_collect_group output); the writer cuts them into
 * blocks of at most QT_BLOCK_POINTS_MAX rows: one TS block and one VALUE
 * block per column that has a value in that block.
 *
 * Not thread-safe: one writer per thread.  On any error the writer is
 * unusable; qt_segw_abort() closes and removes the temporary file.
 */
#ifndef QT_SEGWRITER_H
#define QT_SEGWRITER_H

#include "format/codec.h"
#include "storage/io.h"
#include "storage/memtable.h"

#include <stdint.h>

struct qt_segw;

/* One value column of a group being added. */
struct qt_segw_col {
    uint64_t series_id;
    enum qt_vtype vtype;
    const char *key; /* canonical series key "<group key> <field>" */
    uint32_t key_len;
    uint32_t group_len;         /* key[0..group_len) is the group key */
    const union qt_value *vals; /* nrows entries */
    const uint8_t *present;     /* nrows bytes 0/1 */
    const char *arena;          /* string bytes for QT_VT_STRING */
};

struct qt_segw_result {
    uint64_t file_bytes;
    uint64_t file_xxh3; /* XXH3-64 of the whole file */
    int64_t ts_min;
    int64_t ts_max;
    uint64_t points;
    uint32_t series;
    uint32_t blocks;
};

int qt_segw_create(struct qt_io *io, const char *tmp_path, int64_t shard_start_ns,
                   int64_t shard_duration_ns, uint64_t seq, struct qt_segw **out);

/*
 * Add rows [0, nrows) of one group: ts strictly ascending, all inside the
 * writer's shard.  Copies what it keeps (keys); the arrays may be freed
 * after the call.  A group may be added once per writer, or in several
 * consecutive calls with ascending, non-overlapping time ranges (compaction
 * streams a group in windows of QT_BLOCK_POINTS_MAX rows); a call may carry
 * a subset of the group's columns.
 */
int qt_segw_add_group(struct qt_segw *w, uint64_t group_id, const char *group_key,
                      uint32_t group_key_len, const int64_t *ts, uint32_t nrows,
                      const struct qt_segw_col *cols, uint32_t ncols);

/* Points added so far (to skip creating empty segments). */
uint64_t qt_segw_points(const struct qt_segw *w);

/* Write key table, index and footer, fsync, close and free the writer.
 * The file stays at tmp_path.  On error the writer is freed and the file
 * removed. */
int qt_segw_finish(struct qt_segw *w, struct qt_segw_result *res);

/* Close, remove the temporary file and free.  NULL is fine. */
void qt_segw_abort(struct qt_segw *w);

#endif
