/*
 * serieskey.h -- the canonical text form of group and series keys: a strict
 * parser (untrusted bytes -> measurement, tags, field) and the builder that
 * is its exact inverse.  Layout and rationale: DESIGN.md "Series catalog".
 *
 *   group key  = measurement *( "," tagkey "=" tagvalue )
 *   series key = group key " " field
 *
 * Escaping is InfluxDB line protocol's: a backslash before a byte of the
 * component's special set stands for that byte.  The sets are
 *   measurement              ","  " "
 *   tag key, tag value, field ","  "="  " "
 * A backslash before any other byte is a literal backslash.  The canonical
 * form (the only one the parser accepts) additionally requires:
 *   - every component non-empty, every special byte escaped;
 *   - tags strictly ascending by their unescaped key bytes (memcmp order, a
 *     proper prefix sorts first), so no key repeats;
 *   - no component whose unescaped bytes end in a backslash (the escape would
 *     swallow the separator that follows: "k=a\\,j=b" is ambiguous);
 *   - no NUL, CR or LF byte anywhere (line protocol cannot carry them);
 *   - at most QT_TAGS_MAX tags and QT_SERIES_KEY_MAX bytes in total.
 * Under these rules parse and build are inverse bijections:
 * build(parse(s)) == s byte for byte, for every accepted s.
 *
 * Contract: pure (no I/O, no allocation, no logging), thread-safe.  The
 * parser reads only buf[0..len) and writes unescaped bytes only into the
 * caller's scratch buffer; the returned qt_str slices point into scratch
 * and stay valid as long as it does.
 */
#ifndef QT_SERIESKEY_H
#define QT_SERIESKEY_H

#include "codec.h"
#include "qt_limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qt_serieskey_tag {
    struct qt_str key;   /* unescaped */
    struct qt_str value; /* unescaped */
};

/* A parsed key.  All strings are unescaped (raw) bytes, not NUL-terminated. */
struct qt_serieskey {
    struct qt_str measurement;
    struct qt_str field; /* {NULL, 0} for a group key */
    uint32_t ntags;
    /* Bytes of the escaped input that form the group key: for a series key
     * the offset of the space before the field, for a group key its length. */
    uint32_t group_len;
    struct qt_serieskey_tag tags[QT_TAGS_MAX];
};

/* Parse a canonical series key (with_field = true) or group key (false) from
 * buf[0..len).  scratch must hold at least len bytes (unescaping never
 * grows).  Returns 0, QT_ESYNTAX (malformed or not canonical), QT_ELIMIT (too
 * long, too many tags) or QT_ENOSPACE (scratch too small), with a reason. */
int qt_serieskey_parse(const uint8_t *buf, size_t len, bool with_field, uint8_t *scratch,
                       size_t scratch_cap, struct qt_serieskey *out);

/* Upper bound of the bytes qt_serieskey_build writes for k. */
size_t qt_serieskey_bound(const struct qt_serieskey *k, bool with_field);

/* Write the canonical key of k (series key when with_field, else group key)
 * to out[0..cap), setting *out_len.  k's tags must already be sorted (see
 * qt_serieskey_sort).  Returns 0, QT_EINVAL with a reason when k breaks a rule
 * of the canonical form, QT_ELIMIT above the limits, QT_ENOSPACE when cap is
 * too small.  Nothing written past out[cap). */
int qt_serieskey_build(const struct qt_serieskey *k, bool with_field, uint8_t *out, size_t cap,
                       size_t *out_len);

/* Sort k->tags by unescaped key bytes (insertion sort: ntags <= QT_TAGS_MAX).
 * Duplicate keys stay adjacent; qt_serieskey_build rejects them. */
void qt_serieskey_sort(struct qt_serieskey *k);

/* memcmp order with a proper prefix first: <0, 0, >0. */
int qt_serieskey_cmp(struct qt_str a, struct qt_str b);

#endif
