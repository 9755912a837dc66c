/*
 * codec_check.c -- shared codec checks for the codec tests (see
 * codec_check.h).
 */
#include "codec_check.h"

#include "format/codec.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
codec_decode_copy(codec_decode_fn dec, const uint8_t *buf, size_t len, uint32_t cap, uint32_t *n)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL) {
        fprintf(stdout, "codec_check: out of memory\n");
        exit(2);
    }
    if (len > 0)
        memcpy(copy, buf, len);
    int rc = dec(len > 0 ? copy : NULL, len, cap, n);
    free(copy);
    return rc;
}

static bool
codec_rc_is_qt(int rc)
{
    return rc == 0 || (rc <= QT_EBASE && rc > QT_ELAST);
}

bool
codec_check_prefixes(codec_decode_fn dec, const uint8_t *buf, size_t len, uint32_t cap)
{
    for (size_t cut = 0; cut < len; cut++) {
        uint32_t n = 0;
        int rc = codec_decode_copy(dec, buf, cut, cap, &n);
        if (rc != QT_ETRUNC) {
            printf("     prefix of %zu/%zu bytes: rc %d (%s: %s), want QT_ETRUNC\n", cut, len, rc,
                   qt_strerror(rc), qt_err_detail());
            return false;
        }
    }
    return true;
}

bool
codec_check_trailing(codec_decode_fn dec, const uint8_t *buf, size_t len, uint32_t cap)
{
    uint8_t *longer = malloc(len + 1);
    if (longer == NULL)
        return false;
    memcpy(longer, buf, len);
    longer[len] = 0;
    uint32_t n = 0;
    int rc = codec_decode_copy(dec, longer, len + 1, cap, &n);
    free(longer);
    if (rc != QT_ECORRUPT)
        printf("     trailing byte: rc %d (%s), want QT_ECORRUPT\n", rc, qt_strerror(rc));
    return rc == QT_ECORRUPT;
}

static bool
codec_flip_one(codec_decode_fn dec, uint8_t *copy, size_t len, uint32_t cap, size_t bit,
               uint32_t *decoded)
{
    copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    uint32_t n = 0;
    int rc = codec_decode_copy(dec, copy, len, cap, &n);
    copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    if (!codec_rc_is_qt(rc)) {
        printf("     bit %zu flipped: rc %d is not a QT_E code\n", bit, rc);
        return false;
    }
    if (rc == 0 && n > cap) {
        printf("     bit %zu flipped: decoded %u values into capacity %u\n", bit, n, cap);
        return false;
    }
    *decoded += rc == 0;
    return true;
}

bool
codec_check_bitflips(codec_decode_fn dec, const uint8_t *buf, size_t len, uint32_t cap,
                     uint64_t *rng, size_t all_max, uint32_t flips, uint32_t *decoded)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return false;
    memcpy(copy, buf, len);
    bool ok = true;
    *decoded = 0;
    if (len <= all_max) {
        for (size_t bit = 0; ok && bit < len * 8; bit++)
            ok = codec_flip_one(dec, copy, len, cap, bit, decoded);
    } else {
        for (uint32_t f = 0; ok && f < flips; f++)
            ok = codec_flip_one(dec, copy, len, cap, qt_test_rand(rng) % (len * 8), decoded);
    }
    free(copy);
    return ok;
}

static bool
codec_expect(codec_decode_fn dec, const uint8_t *buf, size_t len, uint32_t cap, int want,
             const char *what)
{
    uint32_t n = 0;
    int rc = codec_decode_copy(dec, buf, len, cap, &n);
    if (rc != want)
        printf("     %s: rc %d (%s), want %d (%s)\n", what, rc, qt_strerror(rc), want,
               qt_strerror(want));
    return rc == want;
}

bool
codec_check_heads(codec_decode_fn dec, uint8_t valid_id)
{
    /* n = QT_BLOCK_POINTS_MAX + 1 = 8193 = varint 0x81 0x40 */
    static_assert(QT_BLOCK_POINTS_MAX + 1 == (0x40u << 7 | 0x01u), "varint below");
    const uint8_t too_many[] = {0x81, 0x40, valid_id, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, valid_id};
    const uint8_t overflow[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    const uint8_t above_cap[] = {5, valid_id, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t no_id[] = {5};
    bool ok = codec_expect(dec, too_many, sizeof(too_many), 1u << 20, QT_ELIMIT, "n > max");
    ok = ok && codec_expect(dec, huge, sizeof(huge), 1u << 20, QT_ELIMIT, "n = 2^64 - 1");
    ok = ok && codec_expect(dec, overflow, sizeof(overflow), 100, QT_ECORRUPT, "varint overflow");
    ok = ok && codec_expect(dec, above_cap, sizeof(above_cap), 4, QT_ELIMIT, "n > cap");
    ok = ok && codec_expect(dec, no_id, sizeof(no_id), 100, QT_ETRUNC, "missing id");
    ok = ok && codec_expect(dec, NULL, 0, 100, QT_ETRUNC, "empty");
    for (unsigned id = 0; ok && id < 256; id++) {
        uint8_t head[] = {0, (uint8_t)id};
        uint32_t n = 0;
        int rc = codec_decode_copy(dec, head, sizeof(head), 100, &n);
        /* Known ids may accept or refuse an empty body, unknown ones must
         * be QT_EINVAL; either way never a crash. */
        ok = codec_rc_is_qt(rc);
        if (rc == QT_EINVAL && id == valid_id)
            ok = false;
    }
    return ok;
}
