/*
 * codec_check.h -- checks every column codec test runs on its payloads:
 * truncation at every byte, a trailing byte, bit flips, hostile heads.
 *
 * A test wraps its codec's decoder as a codec_decode_fn that decodes into
 * the test's own output array with capacity `cap`.  Every check copies the
 * bytes into an exact-size heap buffer first, so ASan reports any read past
 * the end.  Functions return true when the check holds; on failure they
 * print what broke (the calling test then fails its CHECK).
 */
#ifndef QT_TEST_CODEC_CHECK_H
#define QT_TEST_CODEC_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int (*codec_decode_fn)(const uint8_t *buf, size_t len, uint32_t cap, uint32_t *n);

/* Decode an exact-size heap copy of buf[0..len). */
int codec_decode_copy(codec_decode_fn dec, const uint8_t *buf, size_t len, uint32_t cap,
                      uint32_t *n);

/* Every strict prefix of the valid payload buf[0..len) fails with QT_ETRUNC. */
bool codec_check_prefixes(codec_decode_fn dec, const uint8_t *buf, size_t len, uint32_t cap);

/* The payload plus one extra byte fails with QT_ECORRUPT. */
bool codec_check_trailing(codec_decode_fn dec, const uint8_t *buf, size_t len, uint32_t cap);

/* Flip every bit (payloads up to `all_max` bytes) or `flips` random bits,
 * one at a time: decode returns 0 or a QT_E* code and never crashes.
 * *decoded counts flips that still decoded. */
bool codec_check_bitflips(codec_decode_fn dec, const uint8_t *buf, size_t len, uint32_t cap,
                          uint64_t *rng, size_t all_max, uint32_t flips, uint32_t *decoded);

/* Heads that must be refused: n above QT_BLOCK_POINTS_MAX and above cap
 * (QT_ELIMIT), an unknown encoding id (QT_EINVAL), an empty buffer and a
 * head without its id (QT_ETRUNC).  `valid_id` is one id the codec knows. */
bool codec_check_heads(codec_decode_fn dec, uint8_t valid_id);

#endif
