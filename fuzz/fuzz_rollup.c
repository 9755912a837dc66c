/*
 * fuzz_rollup.c -- the rollup rule parser (storage/rollup.h).
 *
 * Input: the spec text (cut at the first NUL).  Oracle: whatever the parser
 * accepts, printed back as a spec, parses again to the same rules (names,
 * prefix flags, intervals and their names).
 */
#include "format/qt_limits.h"
#include "storage/rollup.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_RULES 16

static char buf[4096], buf2[8192];
static struct qt_rollup_rule r1[FZ_RULES], r2[FZ_RULES];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= sizeof(buf))
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    uint32_t n1 = 0, n2 = 0;
    if (qt_rollup_parse(buf, r1, FZ_RULES, &n1) != 0)
        return 0;
    if (n1 > FZ_RULES)
        abort();
    if (n1 == 0) /* "" or only separators: no rules */
        return 0;
    size_t off = 0;
    for (uint32_t i = 0; i < n1; i++) {
        if (r1[i].n_intervals < 1 || r1[i].n_intervals > QT_ROLLUP_INTERVALS_MAX)
            abort();
        off += (size_t)snprintf(buf2 + off, sizeof(buf2) - off, "%s%s%s=", i ? ";" : "",
                                r1[i].measurement, r1[i].prefix ? "*" : "");
        for (uint32_t k = 0; k < r1[i].n_intervals; k++) {
            if (r1[i].interval_ns[k] <= 0 ||
                (k > 0 && r1[i].interval_ns[k] <= r1[i].interval_ns[k - 1]))
                abort();
            off += (size_t)snprintf(buf2 + off, sizeof(buf2) - off, "%s%s", k ? "," : "",
                                    r1[i].interval_name[k]);
        }
        if (off >= sizeof(buf2))
            abort();
    }
    if (qt_rollup_parse(buf2, r2, FZ_RULES, &n2) != 0 || n2 != n1)
        abort();
    for (uint32_t i = 0; i < n1; i++) {
        if (strcmp(r1[i].measurement, r2[i].measurement) != 0 || r1[i].prefix != r2[i].prefix ||
            r1[i].n_intervals != r2[i].n_intervals)
            abort();
        for (uint32_t k = 0; k < r1[i].n_intervals; k++)
            if (r1[i].interval_ns[k] != r2[i].interval_ns[k] ||
                strcmp(r1[i].interval_name[k], r2[i].interval_name[k]) != 0)
                abort();
    }
    return 0;
}
