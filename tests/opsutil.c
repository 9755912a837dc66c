/*
 * opsutil.c -- reference model and helpers for the operations tests (see
 * opsutil.h).
 */
#include "opsutil.h"

#include "format/qt_err.h"
#include "harness.h"
#include "storage/scan.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const ops_group_keys[OPS_GROUPS] = {
    "air,district=xihu,station=a0001", "air,district=binjiang,station=a0002",
    "water,district=xihu,site=w0001",  "water,district=xihu,site=w0002",
    "grid,feeder=f01,substation=s001", "grid,feeder=f02,substation=s001"};
const char *const ops_field_names[OPS_FIELDS] = {"pm25", "count", "status note", "ok"};
static const enum qt_vtype field_types[OPS_FIELDS] = {QT_VT_FLOAT, QT_VT_INT, QT_VT_STRING,
                                                      QT_VT_BOOL};

struct qt_db *
ops_open_opts(struct qt_db_opts *o)
{
    if (o->io_kind == QT_IO_AUTO && o->io == NULL)
        o->io_kind = qt_test_io_kind();
    if (o->shard_duration_ns == 0)
        o->shard_duration_ns = OPS_HOUR;
    struct qt_db *db = NULL;
    int rc = qt_db_open(o, &db);
    if (rc != 0)
        printf("open %s: %s (%s)\n", o->dir, qt_strerror(rc), qt_err_detail());
    return db;
}

struct qt_db *
ops_open(const char *dir, struct qt_io *io)
{
    struct qt_db_opts o = {.dir = dir, .io = io, .no_background = true};
    return ops_open_opts(&o);
}

/* Value of field f for code: the string lives in buf. */
static void
ops_value(uint32_t f, int64_t code, struct qt_batch_field *out, char *buf, size_t cap)
{
    *out = (struct qt_batch_field){.name = ops_field_names[f],
                                   .name_len = (uint32_t)strlen(ops_field_names[f]),
                                   .vtype = field_types[f]};
    switch (field_types[f]) {
    case QT_VT_FLOAT: out->v.f = (double)code / 100.0; break;
    case QT_VT_INT: out->v.i = code * 7 - 1000; break;
    case QT_VT_BOOL: out->v.b = (uint8_t)(code & 1); break;
    default: {
        int n = snprintf(buf, cap, "note %lld%s", (long long)code, code % 5 == 0 ? " \"q\"," : "");
        out->v.s = (struct qt_str){.p = buf, .len = (uint32_t)n};
    }
    }
}

static int
ops_write_batch(struct qt_db *db, struct qt_batch_line *lines, uint32_t k)
{
    struct qt_write_result res;
    int rc = qt_db_write(db, lines, k, NULL, NULL, &res);
    if (rc == 0 && res.lines_ok != k)
        rc = -1;
    return rc;
}

int
ops_write_random(struct qt_db *db, struct ops_model *m, uint64_t *rng, uint32_t n, uint32_t lo,
                 uint32_t hi)
{
    struct qt_batch_line lines[64];
    struct qt_batch_field fields[64][OPS_FIELDS];
    char strs[64][32];
    for (uint32_t done = 0; done < n;) {
        uint32_t k = n - done < 64 ? n - done : 64;
        for (uint32_t i = 0; i < k; i++) {
            uint32_t g = (uint32_t)(qt_test_rand(rng) % OPS_GROUPS);
            uint32_t span = hi - lo;
            uint32_t slot = lo + (qt_test_rand(rng) % 100 < 10
                                      ? (uint32_t)(qt_test_rand(rng) % span)
                                      : (uint32_t)((uint64_t)(done + i) * span / (n + 1)));
            uint32_t nf = 0;
            for (uint32_t f = 0; f < OPS_FIELDS; f++) {
                if (f > 0 && qt_test_rand(rng) % 3 == 0)
                    continue;
                int64_t code = (int64_t)(qt_test_rand(rng) % 1000000);
                ops_value(f, code, &fields[i][nf++], strs[i], sizeof(strs[i]));
                if (field_types[f] == QT_VT_STRING)
                    fields[i][nf - 1].v.s.p = strs[i];
                m->code[g][f][slot] = code;
                m->set[g][f][slot] = 1;
            }
            lines[i] = (struct qt_batch_line){.key = ops_group_keys[g],
                                              .key_len = (uint32_t)strlen(ops_group_keys[g]),
                                              .ts = OPS_T0 + (int64_t)slot * OPS_STEP,
                                              .n_fields = nf,
                                              .fields = fields[i]};
        }
        int rc = ops_write_batch(db, lines, k);
        if (rc != 0)
            return rc;
        done += k;
    }
    return 0;
}

int
ops_write_line(struct qt_db *db, struct ops_model *m, uint32_t g, uint32_t slot, int64_t code)
{
    struct qt_batch_field fields[OPS_FIELDS];
    char str[32];
    for (uint32_t f = 0; f < OPS_FIELDS; f++) {
        ops_value(f, code, &fields[f], str, sizeof(str));
        if (m != NULL) {
            m->code[g][f][slot] = code;
            m->set[g][f][slot] = 1;
        }
    }
    struct qt_batch_line l = {.key = ops_group_keys[g],
                              .key_len = (uint32_t)strlen(ops_group_keys[g]),
                              .ts = OPS_T0 + (int64_t)slot * OPS_STEP,
                              .n_fields = OPS_FIELDS,
                              .fields = fields};
    return ops_write_batch(db, &l, 1);
}

static int
ops_sid(struct qt_db *db, uint32_t g, uint32_t f, uint32_t *sid)
{
    char key[256];
    char esc[64];
    size_t e = 0;
    for (const char *p = ops_field_names[f]; *p; p++) {
        if (*p == ' ' || *p == ',' || *p == '=')
            esc[e++] = '\\';
        esc[e++] = *p;
    }
    esc[e] = '\0';
    int n = snprintf(key, sizeof(key), "%s %s", ops_group_keys[g], esc);
    return qt_catalog_lookup(qt_db_catalog(db), (const uint8_t *)key, (size_t)n, sid);
}

static bool
ops_same(uint32_t f, int64_t code, const struct qt_chunk *c, uint32_t i)
{
    struct qt_batch_field want;
    char buf[32];
    ops_value(f, code, &want, buf, sizeof(buf));
    switch (field_types[f]) {
    case QT_VT_FLOAT: return c->vals[i].f == want.v.f;
    case QT_VT_INT: return c->vals[i].i == want.v.i;
    case QT_VT_BOOL: return c->vals[i].i == want.v.b;
    default:
        return c->vals[i].s.len == want.v.s.len &&
               memcmp(c->arena + c->vals[i].s.off, buf, want.v.s.len) == 0;
    }
}

static int
ops_check_series(struct qt_db *db, const struct ops_model *m, uint32_t g, uint32_t f, uint32_t from)
{
    uint32_t sid;
    if (ops_sid(db, g, f, &sid) != 0) {
        for (uint32_t s = from; s < OPS_SLOTS; s++) {
            if (m->set[g][f][s]) {
                printf("series g%u f%u unknown, slot %u expected\n", g, f, s);
                return -1;
            }
        }
        return 0;
    }
    struct qt_scan_opts o = {.t0 = INT64_MIN, .t1 = INT64_MAX};
    struct qt_scan *s;
    int rc = qt_scan_open(db, sid, &o, &s);
    if (rc != 0)
        return rc;
    uint32_t slot = from;
    struct qt_chunk c;
    while (rc == 0 && (rc = qt_scan_next(s, &c)) == 1) {
        for (uint32_t i = 0; i < c.n && rc == 1; i++) {
            int64_t d = c.ts[i] - OPS_T0;
            uint32_t at = (uint32_t)(d / OPS_STEP);
            while (slot < at && slot < OPS_SLOTS && !m->set[g][f][slot])
                slot++;
            if (d < 0 || d % OPS_STEP != 0 || at >= OPS_SLOTS || slot != at || !m->set[g][f][at] ||
                !ops_same(f, m->code[g][f][at], &c, i)) {
                printf("mismatch g%u f%u: ts slot %u (expected next slot %u, set %d)\n", g, f, at,
                       slot, at < OPS_SLOTS ? m->set[g][f][at] : -1);
                rc = -1;
            }
            slot++;
        }
        rc = rc == 1 ? 0 : rc;
    }
    qt_scan_close(s);
    if (rc < 0)
        return rc;
    while (slot < OPS_SLOTS && !m->set[g][f][slot])
        slot++;
    if (slot < OPS_SLOTS) {
        printf("missing g%u f%u slot %u\n", g, f, slot);
        return -1;
    }
    return 0;
}

int
ops_check(struct qt_db *db, const struct ops_model *m, const uint32_t *drop_before)
{
    for (uint32_t g = 0; g < OPS_GROUPS; g++) {
        for (uint32_t f = 0; f < OPS_FIELDS; f++) {
            int rc = ops_check_series(db, m, g, f, drop_before != NULL ? drop_before[g] : 0);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

uint64_t
ops_model_points(const struct ops_model *m, const uint32_t *drop_before)
{
    uint64_t n = 0;
    for (uint32_t g = 0; g < OPS_GROUPS; g++)
        for (uint32_t f = 0; f < OPS_FIELDS; f++)
            for (uint32_t s = drop_before != NULL ? drop_before[g] : 0; s < OPS_SLOTS; s++)
                n += m->set[g][f][s];
    return n;
}

static int
ops_copy_file(const char *src, const char *dst, mode_t mode)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777);
    if (out < 0) {
        int rc = -errno;
        close(in);
        return rc;
    }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        if (write(out, buf, (size_t)n) != n) {
            rc = -EIO;
            break;
        }
    }
    if (n < 0)
        rc = -errno;
    close(in);
    close(out);
    return rc;
}

int
ops_copy_tree(const char *src, const char *dst)
{
    struct stat st;
    if (stat(src, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return ops_copy_file(src, dst, st.st_mode);
    if (mkdir(dst, 0755) != 0)
        return -errno;
    DIR *d = opendir(src);
    if (d == NULL)
        return -errno;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, "LOCK") == 0)
            continue;
        char a[4096], b[4096];
        snprintf(a, sizeof(a), "%s/%s", src, e->d_name);
        snprintf(b, sizeof(b), "%s/%s", dst, e->d_name);
        rc = ops_copy_tree(a, b);
    }
    closedir(d);
    return rc;
}

static int
ops_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void
ops_rm_tree(const char *path)
{
    nftw(path, ops_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint32_t ops_count_n;
static const char *ops_count_suffix;

static int
ops_count_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    size_t n = strlen(path), k = strlen(ops_count_suffix);
    if (flag == FTW_F && S_ISREG(st->st_mode) && n >= k &&
        strcmp(path + n - k, ops_count_suffix) == 0)
        ops_count_n++;
    return 0;
}

uint32_t
ops_count_files(const char *dir, const char *suffix)
{
    ops_count_n = 0;
    ops_count_suffix = suffix;
    nftw(dir, ops_count_one, 16, FTW_PHYS);
    return ops_count_n;
}
