/*
 * agg.h -- time-bucketed, grouped aggregation with bounded memory.
 *
 * State is one *cell* per (group, bucket) that received a point: count,
 * an exact integer sum and a Neumaier-compensated float sum, min/max,
 * first/last, Welford mean/M2 for stddev and, only for percentile, the
 * bucket's values.  So memory grows with groups x buckets (and percentile
 * values), never with the points scanned; every byte is charged to the
 * query's context (QT_ELIMIT past mem_bytes_max).
 *
 * Feeding: the executor registers each series' group (qt_agg_group), then
 * offers its scan's chunks in time order, series after series in series
 * key order.  A block's statistics are taken whole (qt_agg_stats returns
 * 1) when the block lies inside one bucket and the functions can be
 * answered from count/sum/min/max/first/last; otherwise the caller expands
 * the block and feeds points (qt_agg_points).
 *
 * Semantics (design/exec.md): groups by the `by` tags (a missing tag is
 * ""), buckets [k*d, (k+1)*d) from the epoch or local days of a zone
 * (tz.h), first/last by timestamp with ties going to the series whose key
 * sorts first, NaN skipped by min/max/percentile and propagated by
 * sum/avg/stddev, percentile by linear interpolation between closest
 * ranks, stddev the population one.  Result: groups in bytewise order of
 * their tag values, buckets in time order, fill per qparse.h.
 *
 * Not thread-safe: one per query.
 */
#ifndef QT_AGG_H
#define QT_AGG_H

#include "format/codec.h"
#include "format/serieskey.h"
#include "query/qctx.h"
#include "query/qparse.h"
#include "query/result.h"
#include "storage/memtable.h"
#include "storage/scan.h"

#include <stdbool.h>
#include <stdint.h>

struct qt_agg;

/* Create the aggregation of q (which has an aggregation stage).  0 or
 * QT_ENOMEM / QT_ELIMIT with the message in ctx. */
int qt_agg_create(struct qt_qctx *ctx, const struct qt_qry *q, struct qt_agg **out);

/* Free everything and give the memory back to ctx; accepts NULL. */
void qt_agg_destroy(struct qt_agg *a);

/* NULL when every function is defined for value type vt, else the name
 * of the first that is not (strings: count/first/last; booleans also
 * sum = number of trues; numbers: everything). */
const char *qt_agg_unsupported(const struct qt_qry_stage_agg *spec, enum qt_vtype vt);

/* True when some function needs every value (stddev, percentile), so
 * block statistics never suffice. */
bool qt_agg_needs_points(const struct qt_agg *a);

/* The group of a series with tags k (its values of the `by` tags),
 * created on first sight: *g is its index. */
int qt_agg_group(struct qt_agg *a, const struct qt_serieskey *k, uint32_t *g);

/* True when [t0, t1] (inclusive) lies inside one bucket. */
bool qt_agg_one_bucket(const struct qt_agg *a, int64_t t0, int64_t t1);

/* Offer a STATS chunk of a series of type vt in group g: 1 when taken, 0
 * when the caller must expand it and feed its points, <0 on error. */
int qt_agg_stats(struct qt_agg *a, uint32_t g, enum qt_vtype vt, const struct qt_chunk *c);

/* Feed points ts/v[0..n) (ascending, one series of type vt, strings as
 * (off, len) into arena) to group g. */
int qt_agg_points(struct qt_agg *a, uint32_t g, enum qt_vtype vt, const int64_t *ts,
                  const union qt_value *v, uint32_t n, const char *arena);

/* Write the result: columns time, the `by` tags, one per function; then
 * the rows (with fill), stopping early when w is full (limit).  0 or an
 * error with its message in ctx. */
int qt_agg_emit(struct qt_agg *a, struct qt_res *w);

#endif
