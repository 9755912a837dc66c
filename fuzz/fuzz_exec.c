/*
 * fuzz_exec.c -- the query executor on arbitrary query text, over a small
 * fixed database (created once per process in a temporary directory:
 * float, int, bool and string series, one without a tag the others have,
 * half of the points in segments and half in the memtable).
 *
 * Oracle: running never crashes, leaks or trips a sanitizer; the three
 * encodings agree on success or failure and on the row count; JSON is one
 * document with a row per line, CSV has a header line plus one line per
 * row, the table ends with "(N rows)"; a failure leaves a printable,
 * NUL-terminated message; running the JSON twice gives the same bytes.
 */
#include "format/qt_err.h"
#include "format/qt_limits.h"
#include "query/exec.h"
#include "storage/db.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW_NS 1794787200000000000ll /* 2026-11-16T00:00:00Z */
#define FUZZ_STEP   (90ll * 1000000000ll)

static struct qt_db *db;
static char dir[64];

struct out {
    char *p;
    size_t len, cap;
};

static int
out_cb(void *arg, const char *buf, size_t len)
{
    struct out *o = arg;
    if (o->len + len + 1 > o->cap) {
        size_t cap = (o->len + len + 1) * 2;
        char *p = realloc(o->p, cap);
        if (p == NULL)
            abort();
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, buf, len);
    o->len += len;
    o->p[o->len] = '\0';
    return 0;
}

static void
die(const char *why, const char *text, size_t len)
{
    fprintf(stderr, "fuzz_exec: %s\ninput: %.*s\n", why, (int)len, text);
    abort();
}

static int
rm_entry(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb, (void)f, (void)ftw;
    return remove(p);
}

static void
teardown(void)
{
    qt_db_close(db);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void
put(const char *key, const char *field, int64_t ts, struct qt_batch_field f)
{
    f.name = field;
    f.name_len = (uint32_t)strlen(field);
    struct qt_batch_line l = {.key = key, .key_len = (uint32_t)strlen(key), .ts = ts,
                              .n_fields = 1, .fields = &f};
    if (qt_db_write(db, &l, 1, NULL, NULL, NULL) != 0)
        abort();
}

static void
setup(void)
{
    static const char *const keys[] = {"air,district=xihu,station=a1", "air,district=xihu,station=a2",
                                       "air,district=binjiang,station=a3", "air,station=a4",
                                       "water,district=xihu,site=w1"};
    static const char *const states[] = {"ok", "maint", "fault"};
    snprintf(dir, sizeof(dir), "/tmp/qtdb-fuzz-exec-XXXXXX");
    struct qt_db_opts o = {.io_kind = QT_IO_POSIX, .no_background = true, .fsync = QT_FSYNC_NONE,
                           .shard_duration_ns = 3600ll * 1000000000ll};
    if (mkdtemp(dir) == NULL)
        abort();
    o.dir = dir;
    if (qt_db_open(&o, &db) != 0)
        abort();
    atexit(teardown);
    for (int i = 0; i < 240; i++) {
        int64_t ts = FUZZ_NOW_NS - 6 * 3600ll * 1000000000ll + i * FUZZ_STEP;
        for (int k = 0; k < 5; k++) {
            int64_t t = ts + k * 7000000000ll;
            double v = (double)((i * 37 + k * 11) % 400) / 2;
            put(keys[k], k == 4 ? "level" : "pm25", t,
                (struct qt_batch_field){.vtype = QT_VT_FLOAT, .v.f = i % 97 == 5 ? -0.0 : v});
            put(keys[k], "n", t, (struct qt_batch_field){.vtype = QT_VT_INT, .v.i = i * k - 300});
            put(keys[k], "ok", t, (struct qt_batch_field){.vtype = QT_VT_BOOL, .v.b = i % 3 == 0});
            const char *s = states[(i / 10 + k) % 3];
            put(keys[k], "state", t,
                (struct qt_batch_field){.vtype = QT_VT_STRING,
                                        .v.s = {s, (uint32_t)strlen(s)}});
        }
        if (i == 120 && qt_db_flush(db) != 0)
            abort();
    }
}

static size_t
count_char_lines(const char *p, size_t len, char first)
{
    size_t n = 0;
    for (size_t i = 0; i + 1 < len; i++)
        n += p[i] == '\n' && p[i + 1] == first;
    return n;
}

static void
check_error(const struct qt_qry_error *e, int rc, const char *text, size_t len)
{
    if (e->code != rc)
        die("error code differs from the return value", text, len);
    if (memchr(e->message, '\0', sizeof(e->message)) == NULL || e->message[0] == '\0')
        die("error message not terminated or empty", text, len);
    for (const char *p = e->message; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            die("error message not printable ASCII", text, len);
    if (e->position < -1 || e->position > (int32_t)len)
        die("error position outside the text", text, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (db == NULL)
        setup();
    if (size > QT_QUERY_TEXT_MAX)
        return 0;
    const char *text = (const char *)data;
    struct qt_qry_limits lim = {.rows_max = 20000, .series_max = 1000, .mem_bytes_max = 8u << 20,
                                .deadline_ms = 5000};
    struct out o[3] = {{0}};
    struct qt_qry_stats st[3];
    int rc[3];
    for (int f = 0; f < 3; f++) {
        struct qt_qry_error e;
        rc[f] = qt_qry_run(db, text, size, FUZZ_NOW_NS, &lim, (enum qt_out_format)f, out_cb, &o[f],
                           &st[f], &e);
        if (rc[f] != 0)
            check_error(&e, rc[f], text, size);
    }
    if (rc[0] != rc[1] || rc[1] != rc[2])
        die("encodings disagree on success", text, size);
    if (rc[0] == 0) {
        char foot[48];
        snprintf(foot, sizeof(foot), "(%llu row%s)\n", (unsigned long long)st[0].rows,
                 st[0].rows == 1 ? "" : "s");
        size_t fl = strlen(foot);
        if (st[0].rows != st[1].rows || st[1].rows != st[2].rows)
            die("encodings disagree on rows", text, size);
        if (o[0].len < fl || strcmp(o[0].p + o[0].len - fl, foot) != 0)
            die("table footer wrong", text, size);
        if (count_char_lines(o[2].p, o[2].len, '[') != st[2].rows ||
            strncmp(o[2].p, "{\"columns\":[", 12) != 0 ||
            strcmp(o[2].p + o[2].len - 3, "]}\n") != 0)
            die("json shape wrong", text, size);
        size_t nl = 0;
        for (size_t i = 0; i < o[1].len; i++)
            nl += o[1].p[i] == '\n';
        if (nl != st[1].rows + 1)
            die("csv line count wrong", text, size);
        struct out again = {0};
        struct qt_qry_error e;
        if (qt_qry_run(db, text, size, FUZZ_NOW_NS, &lim, QT_OUT_JSON, out_cb, &again, NULL, &e) !=
                0 ||
            again.len != o[2].len || memcmp(again.p, o[2].p, again.len) != 0)
            die("json not deterministic", text, size);
        free(again.p);
    }
    for (int f = 0; f < 3; f++)
        free(o[f].p);
    return 0;
}
