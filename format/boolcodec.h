/*
 * boolcodec.h -- boolean column codec (values are bytes 0 or 1; encode
 * rejects anything else with QT_EINVAL).  Also used for presence bitmaps.
 * Contract: codec.h.  Layout: DESIGN.md "Boolean codec".
 */
#ifndef QT_BOOLCODEC_H
#define QT_BOOLCODEC_H

#include <stddef.h>
#include <stdint.h>

size_t qt_bool_bound(uint32_t n);
int qt_bool_encode(const uint8_t *v, uint32_t n, uint8_t *out, size_t cap, size_t *out_len);
int qt_bool_decode(const uint8_t *buf, size_t len, uint8_t *out, uint32_t cap, uint32_t *n);

#endif
