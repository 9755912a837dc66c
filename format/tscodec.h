/*
 * tscodec.h -- timestamp column codec (int64 nanoseconds since the epoch).
 * Contract: codec.h.  Optimised for ascending, near-regular series; any
 * int64 sequence round-trips exactly.  Layout: DESIGN.md "Timestamp codec".
 */
#ifndef QT_TSCODEC_H
#define QT_TSCODEC_H

#include <stddef.h>
#include <stdint.h>

size_t qt_ts_bound(uint32_t n);
int qt_ts_encode(const int64_t *ts, uint32_t n, uint8_t *out, size_t cap, size_t *out_len);
int qt_ts_decode(const uint8_t *buf, size_t len, int64_t *out, uint32_t cap, uint32_t *n);

#endif
