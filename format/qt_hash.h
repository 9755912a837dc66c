/*
 * qt_hash.h -- the checksum and series-id hash: XXH3-64.
 *
 * Stored checksums use xxHash's canonical byte order (big-endian,
 * XXH64_canonicalFromHash), so `xxhsum -H3` style tools agree byte for byte.
 * qt_hash_skip_verify is a fuzzing hook: fuzz targets set it so that mutated
 * inputs reach the decoders behind the checksum; nothing else may set it.
 */
#ifndef QT_HASH_H
#define QT_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

extern bool qt_hash_skip_verify;

static inline uint64_t
qt_hash64(const void *p, size_t len)
{
    return (uint64_t)XXH3_64bits(p, len);
}

static inline uint64_t
qt_hash64_seed(const void *p, size_t len, uint64_t seed)
{
    return (uint64_t)XXH3_64bits_withSeed(p, len, seed);
}

/* Store h at p[0..8) in canonical (big-endian) order. */
static inline void
qt_hash_store(uint8_t *p, uint64_t h)
{
    XXH64_canonical_t c;
    XXH64_canonicalFromHash(&c, (XXH64_hash_t)h);
    for (int i = 0; i < 8; i++)
        p[i] = c.digest[i];
}

static inline uint64_t
qt_hash_load(const uint8_t *p)
{
    XXH64_canonical_t c;
    for (int i = 0; i < 8; i++)
        c.digest[i] = p[i];
    return (uint64_t)XXH64_hashFromCanonical(&c);
}

/* True when the canonical checksum at p matches XXH3-64 of data[0..len). */
static inline bool
qt_hash_check(const uint8_t *data, size_t len, const uint8_t *p)
{
    if (qt_hash_skip_verify)
        return true;
    return qt_hash_load(p) == qt_hash64(data, len);
}

#endif
