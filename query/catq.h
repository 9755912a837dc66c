/*
 * catq.h -- catalog queries: measurements, fields, tags, values, series.
 *
 *   measurements [{m}]        column "name": measurements (with a series
 *                             matching the matchers, when given)
 *   fields [meas[{m}]]        column "name": field names
 *   tags [target]             column "name": tag keys
 *   values k [in target]      column "name": values of tag k
 *   series [target]           column "series": canonical series keys
 *
 * A target narrows to a measurement, a field and matchers (select.h
 * semantics); without one the listing covers everything.  Rows are sorted
 * bytewise and `limit N` applies.  Listings touch only the catalog (no
 * data is read); selections count against series_max.
 */
#ifndef QT_CATQ_H
#define QT_CATQ_H

#include "query/qctx.h"
#include "query/qparse.h"
#include "query/result.h"
#include "storage/catalog.h"

/* Run catalog query q (kind != QT_QRY_DATA), writing its rows to w.
 * *series gets the number of series selected (0 when answered from the
 * listings alone). */
int qt_catq_run(struct qt_qctx *ctx, struct qt_catalog *cat, const struct qt_qry *q,
                struct qt_res *w, uint64_t *series);

#endif
