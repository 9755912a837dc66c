/*
 * fltcodec.h -- float64 column codec: decimal-aware (ALP-style) with a
 * lossless fallback.  Contract: codec.h (bit-exact round trip for every
 * value, including -0.0, NaN payloads, +-inf, subnormals).
 * Layout: DESIGN.md "Float codec".
 */
#ifndef QT_FLTCODEC_H
#define QT_FLTCODEC_H

#include <stddef.h>
#include <stdint.h>

size_t qt_flt_bound(uint32_t n);
int qt_flt_encode(const double *v, uint32_t n, uint8_t *out, size_t cap, size_t *out_len);
int qt_flt_decode(const uint8_t *buf, size_t len, double *out, uint32_t cap, uint32_t *n);

#endif
