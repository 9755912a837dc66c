/*
 * ilp_int.h -- internals shared by the ingest parsers (ilp.c, graphite.c).
 * Not a public contract: only server/ parsers include it.
 */
#ifndef QT_ILP_INT_H
#define QT_ILP_INT_H

#include "server/ilp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Byte classes (qt_ilp_cls). */
#define QT_CL_SP    0x01u /* ' ' */
#define QT_CL_COMMA 0x02u /* ',' */
#define QT_CL_EQ    0x04u /* '=' */
#define QT_CL_BSL   0x08u /* '\\' */
#define QT_CL_CTL   0x10u /* 0x00..0x1f and 0x7f */
#define QT_CL_HI    0x20u /* 0x80..0xff: part of a UTF-8 sequence */
#define QT_CL_QUOTE 0x40u /* '"' */
#define QT_CL_DIGIT 0x80u /* '0'..'9' */

/* Escapable characters (each also ends an unescaped name). */
#define QT_ESC_MEAS (QT_CL_SP | QT_CL_COMMA)
#define QT_ESC_KEY  (QT_CL_SP | QT_CL_COMMA | QT_CL_EQ)

extern const uint8_t qt_ilp_cls[256];

/* Length (1..4) of the valid UTF-8 sequence starting at p (< end) whose
 * first byte is >= 0x80, or 0 if it is invalid (overlong, surrogate, above
 * U+10FFFF, truncated, stray continuation byte). */
size_t qt_ilp_utf8_len(const uint8_t *p, const uint8_t *end);

/* Store a reason naming a key: pre + key (sanitised: printable ASCII kept,
 * other bytes as \xNN, cut at 48 bytes) + post, in a thread-local buffer;
 * returns code.  pre and post are static strings. */
int qt_ilp_fail_key(int code, const char *pre, const char *key, size_t len, const char *post);

/* A decimal number as scanned: value = (neg ? -1 : 1) * mant * 10^exp10
 * exactly unless `inexact` (digits were dropped past 19 significant). */
struct qt_ilp_dec {
    uint64_t mant;
    int32_t exp10;
    bool neg;
    bool inexact;
    bool integral; /* no '.' and no exponent */
};

/* Scan [sign] (digits [. [digits]] | . digits) [(e|E) [sign] digits] at p.
 * The sign may be '-', or also '+' when allow_plus.  Returns the end of the
 * number, or NULL if p does not start a valid number (the caller then
 * reports the token).  Does not look at what follows the number. */
const uint8_t *qt_ilp_scan_decimal(const uint8_t *p, const uint8_t *end, bool allow_plus,
                                   struct qt_ilp_dec *d);

/* Convert a scanned decimal (text[0 .. len) is its source) to the nearest
 * double.  Exact fast path when the value is mant * or / a power of ten up
 * to 1e22 with mant <= 2^53 (Clinger); otherwise strtod_l in the "C"
 * locale.  QT_ESYNTAX if the result overflows to infinity, QT_ELIMIT if the
 * text is longer than QT_NUMBER_TEXT_MAX; no detail is stored. */
int qt_ilp_dec_to_double(const struct qt_ilp_dec *d, const uint8_t *text, size_t len, double *out);

/* Which protocol's words the shared checks use in their reasons. */
enum qt_ilp_proto { QT_PROTO_ILP = 0, QT_PROTO_GRAPHITE = 1 };

/* Finish a point filled by a parser: reject names ending in a backslash or
 * a measurement starting with '#', sort tags and reject duplicate keys,
 * drop earlier duplicates of a field key, compute key_len and enforce
 * QT_SERIES_KEY_MAX.  Returns 0 or a QT_E* code with a reason. */
int qt_ilp_point_finish(struct qt_ilp_point *pt, enum qt_ilp_proto proto);

/* now_ns rounded down to a multiple of unit_ns (> 0). */
int64_t qt_ilp_floor_ts(int64_t now_ns, int64_t unit_ns);

#endif
