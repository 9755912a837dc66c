/*
 * result.h -- the result writer: typed rows in, one of three encodings out
 * through the caller's sink (exec.h qt_out_fn).
 *
 *   table  aligned columns for people: a header, a rule of dashes, the rows,
 *          "(N rows)".  Times as RFC 3339 UTC, durations as 1h30m, numbers
 *          right-aligned.  Widths come from the first
 *          QT_QRY_TABLE_SAMPLE_ROWS rows (held back until then).
 *   csv    RFC 4180 with a header row and "\n" line ends; times RFC 3339,
 *          durations integer ns, null as an empty field.
 *   json   {"columns":[...],"rows":[\n[...],\n[...]\n]}\n with times and
 *          durations as integer ns, NaN and infinities as null.
 * Floats everywhere print as the shortest decimal that reads back exactly.
 * Byte-exact examples: design/exec.md.
 *
 * Rows are encoded into a QT_QRY_OUT_BUF_BYTES buffer handed to the sink
 * when full and at qt_res_end().  The writer enforces the per-query row cap
 * (QT_ELIMIT) and the query's `limit N` (qt_res_full() turns true; further
 * rows are a programmer error).
 *
 * Not thread-safe: one writer per query.
 */
#ifndef QT_RESULT_H
#define QT_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/codec.h"
#include "query/exec.h"
#include "query/qctx.h"

/* How a column's cells are rendered. */
enum qt_res_col_kind {
    QT_RES_COL_TIME = 1,     /* INT ns since the epoch (or NULL) */
    QT_RES_COL_DURATION = 2, /* INT ns >= 0 */
    QT_RES_COL_TEXT = 3,     /* STR: tag values, names, series keys */
    QT_RES_COL_VALUE = 4,    /* any cell kind */
};

enum qt_cell_kind {
    QT_CELL_NULL = 0,
    QT_CELL_INT = 1,
    QT_CELL_FLOAT = 2,
    QT_CELL_BOOL = 3,
    QT_CELL_STR = 4,
};

/* One cell; STR bytes are borrowed for the duration of qt_res_row(). */
struct qt_cell {
    enum qt_cell_kind kind;
    union {
        int64_t i;
        double f;
        bool b;
        struct qt_str s;
    } u;
};

struct qt_res_col {
    struct qt_str name; /* copied by qt_res_begin */
    enum qt_res_col_kind kind;
};

/* A held-back table cell: text at sample[off..off+len), display width. */
struct qt_res_scell {
    uint32_t off, len, width;
    bool right;
};

/* The writer.  Fields are private to result.c. */
struct qt_res {
    struct qt_qctx *ctx;
    enum qt_out_format fmt;
    qt_out_fn out;
    void *arg;
    uint64_t limit; /* 0: none */
    uint64_t rows;
    struct qt_res_col *cols;
    uint32_t ncols;
    char *names; /* column name bytes */
    char *buf;   /* output buffer */
    size_t len;
    char *cell; /* scratch for one rendered cell */
    size_t cell_cap;
    /* table: held-back sample (row 0 is the header) and column widths */
    bool streaming;
    char *sample; /* rendered cell text */
    size_t sample_len, sample_cap;
    struct qt_res_scell *scells; /* ncols per sampled row */
    uint32_t sample_rows, scells_cap;
    uint32_t *width;
    uint32_t pending; /* table: spaces not yet written (no trailing blanks) */
    int error; /* sticky: the sink failed */
};

/* Set up a writer; nothing is written yet.  limit 0 = no `limit N`. */
int qt_res_init(struct qt_res *w, struct qt_qctx *ctx, enum qt_out_format fmt, qt_out_fn out,
                void *arg, uint64_t limit);

/* Declare the columns (names copied) and write the header (table: held
 * back with the sample).  Called once, before any row. */
int qt_res_begin(struct qt_res *w, const struct qt_res_col *cols, uint32_t ncols);

/* Append one row of ncols cells.  0; QT_ELIMIT when the row would pass
 * ctx->rows_max; QT_ECLOSED when the sink failed (messages set in ctx).
 * Must not be called once qt_res_full(). */
int qt_res_row(struct qt_res *w, const struct qt_cell *cells);

/* True once `limit N` rows have been written: stop producing rows. */
bool qt_res_full(const struct qt_res *w);

/* Finish the encoding (table: flush the sample, footer; json: close the
 * document) and hand everything to the sink.  0 or QT_ECLOSED. */
int qt_res_end(struct qt_res *w);

/* Free the writer's buffers (accepts a writer never begun). */
void qt_res_deinit(struct qt_res *w);

/* Shortest decimal text of a finite v that reads back exactly, identical
 * to qprint.h qt_qry_number_format but without snprintf for the decimal
 * values sensors produce.  Writes at most cap bytes with a NUL (cap >= 32
 * always suffices); returns the length. */
size_t qt_res_format_double(double v, char *buf, size_t cap);

#endif
