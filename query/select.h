/*
 * select.h -- from a query selector to the list of series it names.
 *
 * Equality, inequality and `in` matchers go to the catalog's inverted
 * index as they are.  Regex matchers keep the query's semantics (PCRE2,
 * whole value, UTF-8, compiled by the parser): the executor matches the
 * query's compiled pattern against every distinct value of the tag within
 * the measurement and hands the catalog the values that pass as an `in`
 * list, so the index still does the work.  When more than
 * QT_CATALOG_IN_VALUES_MAX values pass, the matcher is applied instead to
 * each candidate series' own tag value.  A series lacking the tag matches
 * as if its value were "" (qparse.h).
 *
 * Results are sorted by series key (bytewise, qt_serieskey_cmp) so every
 * output that lists series is deterministic.
 */
#ifndef QT_SELECT_H
#define QT_SELECT_H

#include <stdbool.h>
#include <stdint.h>

#include "format/serieskey.h"
#include "query/qctx.h"
#include "query/qparse.h"
#include "storage/catalog.h"

struct qt_sel_series {
    uint32_t sid;
    enum qt_vtype vtype;
    const uint8_t *key; /* canonical series key (catalog-owned, valid until close) */
    uint32_t key_len;
    uint32_t group_len; /* key[0..group_len) is the group key */
};

struct qt_sel {
    struct qt_sel_series *v; /* sorted by key */
    uint32_t n;
    size_t charged; /* bytes charged to the query */
};

/*
 * The series named by sel.  Data queries name a measurement and a field;
 * catalog targets may leave either empty (every measurement / every
 * field).  At most ctx->series_max series (else QT_ELIMIT).  On success
 * *out holds the sorted list (qt_sel_free); on error a message is in ctx.
 */
int qt_sel_run(struct qt_qctx *ctx, struct qt_catalog *cat, const struct qt_qry_selector *sel,
               struct qt_sel *out);

void qt_sel_free(struct qt_qctx *ctx, struct qt_sel *s);

/* Parse the tags of s (its group key) into *k, with scratch of at least
 * QT_SERIES_KEY_MAX bytes.  0 or a qt_serieskey_parse error (a catalog key
 * is canonical, so an error means corruption). */
int qt_sel_tags(const struct qt_sel_series *s, uint8_t *scratch, struct qt_serieskey *k);

/* The value of tag `key` in k, or an empty string when k lacks it. */
struct qt_str qt_sel_tag_value(const struct qt_serieskey *k, struct qt_str key);

#endif
