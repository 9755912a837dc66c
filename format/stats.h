/*
 * stats.h -- per-block value statistics (DESIGN.md "Block statistics").
 *
 * Every VALUE block header and every segment index entry carries the
 * statistics of the block's present values, so COUNT/MIN/MAX/SUM/FIRST/LAST
 * over whole blocks need neither the payload nor a decode.  The input is the
 * block's present values in row order; rows are sorted by strictly
 * ascending timestamp, so "first"/"last" (the values at the smallest and
 * largest timestamp) are simply values[0] and values[n-1].
 *
 * Semantics per vtype (count = n present values, always >= 1):
 *   FLOAT   min/max: smallest/largest non-NaN value by < and >; among equal
 *           values (-0.0 == 0.0) the earliest row wins.  If every value is
 *           NaN, min and max are the canonical quiet NaN
 *           (QT_STATS_NAN_BITS) -- a reader tests isnan(min) to learn that
 *           no ordered value exists.  sum: IEEE-754 double sum of *all*
 *           values left to right in row order, starting from values[0]
 *           (a NaN value makes it NaN, as in SQL/PromQL; +inf + -inf is
 *           NaN); sum / count is the mean.  first/last: bit exact.
 *   INT     min/max/first/last as int64; sum is the exact sum if it fits
 *           int64, else sum_overflow is set and sum is 0 (the query layer
 *           then decodes the block and sums in wider arithmetic).
 *   BOOL    min/max/first/last are 0 or 1; sum = number of true values.
 *   STRING  count only; the five value slots are 0.
 * On disk the five slots are 8 bytes each, little-endian: FLOAT as its
 * IEEE-754 bit pattern, the others as int64 (qt_stats_store / _load).
 */
#ifndef QT_STATS_H
#define QT_STATS_H

#include "codec.h"

#include <stdbool.h>
#include <stdint.h>

/* Bytes of the five stored slots: min, max, sum, first, last. */
#define QT_STATS_SIZE 40u
/* Canonical quiet NaN stored as min/max when no value is ordered. */
#define QT_STATS_NAN_BITS 0x7FF8000000000000ull

union qt_stat {
    double f;  /* QT_VT_FLOAT */
    int64_t i; /* QT_VT_INT, QT_VT_BOOL; 0 for QT_VT_STRING */
};

struct qt_stats {
    uint32_t count;    /* present values, >= 1 */
    bool sum_overflow; /* QT_VT_INT only: exact sum outside int64, sum == 0 */
    union qt_stat min, max, sum, first, last;
};

/*
 * Compute the statistics of values[0..n) (1 <= n <= QT_BLOCK_POINTS_MAX),
 * whose element type follows vtype: double, int64_t, uint8_t (0/1) or
 * struct qt_str.  Returns 0, or QT_EINVAL for a bool byte other than 0/1.
 */
int qt_stats_compute(enum qt_vtype vtype, const void *values, uint32_t n, struct qt_stats *out);

/*
 * Plausibility of stored statistics without the values: known vtype,
 * 1 <= count <= QT_BLOCK_POINTS_MAX, min <= first, last <= max, the
 * all-NaN convention, bools in 0/1 with sum consistent with min/max,
 * int sums within [count*min, count*max] (and sum_overflow only when that
 * range leaves int64), string slots zero.  Returns 0 or QT_ECORRUPT with a
 * detail.  Used on every decoded block header and index entry.
 */
int qt_stats_check(enum qt_vtype vtype, const struct qt_stats *s);

/* True when a and b are bit-identical (count, overflow flag, five slots). */
bool qt_stats_equal(const struct qt_stats *a, const struct qt_stats *b);

/* Store the five slots at out[0..40) / load them from in[0..40); count and
 * sum_overflow travel in the enclosing header (n_values and a flag bit). */
void qt_stats_store(const struct qt_stats *s, uint8_t *out);
void qt_stats_load(const uint8_t *in, uint32_t count, bool sum_overflow, struct qt_stats *s);

#endif
