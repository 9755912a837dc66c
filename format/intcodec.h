/*
 * intcodec.h -- int64 column codec.  Contract: codec.h.
 * Layout: DESIGN.md "Integer codec".
 */
#ifndef QT_INTCODEC_H
#define QT_INTCODEC_H

#include <stddef.h>
#include <stdint.h>

size_t qt_int_bound(uint32_t n);
int qt_int_encode(const int64_t *v, uint32_t n, uint8_t *out, size_t cap, size_t *out_len);
int qt_int_decode(const uint8_t *buf, size_t len, int64_t *out, uint32_t cap, uint32_t *n);

#endif
