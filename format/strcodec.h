/*
 * strcodec.h -- short-string column codec: dictionary for status/event
 * fields, plain length-prefixed fallback.  Contract: codec.h; decoded
 * qt_str.p point into buf (zero copy).  Each string <= QT_STRING_VALUE_MAX.
 * Layout: DESIGN.md "String codec".
 */
#ifndef QT_STRCODEC_H
#define QT_STRCODEC_H

#include "codec.h"

#include <stddef.h>
#include <stdint.h>

size_t qt_str_bound(const struct qt_str *v, uint32_t n);
int qt_str_encode(const struct qt_str *v, uint32_t n, uint8_t *out, size_t cap, size_t *out_len);
int qt_str_decode(const uint8_t *buf, size_t len, struct qt_str *out, uint32_t cap, uint32_t *n);

#endif
