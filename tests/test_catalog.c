/*
 * test_catalog.c -- the series catalog (storage/catalog.c, catalog_query.c):
 * create/lookup/reopen, value-type conflicts, forced id collisions, selection
 * with every matcher kind against brute force, listings, torn tails cut at
 * every byte of the last record, corrupt middle records (refused, then
 * salvaged), a failed write putting the catalog in FAILED, allocation
 * failures leaving no trace, and concurrent get_or_create from 4 threads.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "format/catrec.h"
#include "format/qt_alloc.h"
#include "format/qt_bytes.h"
#include "format/qt_hash.h"
#include "format/qt_log.h"
#include "format/serieskey.h"
#include "harness.h"
#include "storage/catalog.h"

#include <errno.h>
#include <pcre2.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

static struct qt_str
S(const char *s) {
    return (struct qt_str){s, (uint32_t)strlen(s)};
}

static int
goc(struct qt_catalog *c, const char *key, enum qt_vtype vt, uint32_t *sid)
{
    return qt_catalog_get_or_create(c, (const uint8_t *)key, strlen(key), vt, sid);
}

static int
lookup(struct qt_catalog *c, const char *key, uint32_t *sid)
{
    return qt_catalog_lookup(c, (const uint8_t *)key, strlen(key), sid);
}

static char *
cat_path(void)
{
    static char p[600];
    snprintf(p, sizeof(p), "%s/%s", qt_test_dir(), QT_CATALOG_FILE);
    return p;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void
write_file(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        abort();
    if (len > 0 && fwrite(b, 1, len, f) != len)
        abort();
    fclose(f);
}

/* Random canonical keys from a city-telemetry-like model: three
 * measurements, optional tags, values with specials to exercise escaping. */
#define GEN_KEY_MAX 256
static const char *const districts[] = {"xihu", "gongshu", "binjiang", "west lake", "a,b=c"};
static const char *const owners[] = {"epb", "water co", "grid\\x"};

static size_t
gen_key(uint64_t *rng, char *out, enum qt_vtype *vt)
{
    struct qt_serieskey k = {0};
    char sbuf[4][32];
    uint64_t r = qt_test_rand(rng);
    int m = (int)(r % 3);
    static const char *const meas[] = {"air", "grid", "water q"};
    static const char *const fields[3][3] = {
        {"pm25", "pm10", "no2"}, {"voltage", "current", "state"}, {"pressure", "flow", "ok"}};
    k.measurement = S(meas[m]);
    int f = (int)((r >> 8) % 3);
    k.field = S(fields[m][f]);
    *vt = f == 2 ? (m == 1 ? QT_VT_STRING : QT_VT_BOOL)
                 : (m == 1 && f == 1 ? QT_VT_INT : QT_VT_FLOAT);
    k.tags[k.ntags].key = S("district");
    k.tags[k.ntags++].value = S(districts[(r >> 16) % 5]);
    snprintf(sbuf[0], 32, "%c%03u", "asf"[m], (unsigned)((r >> 24) % 97));
    k.tags[k.ntags].key = S(m == 1 ? "feeder" : "station");
    k.tags[k.ntags++].value = S(sbuf[0]);
    if ((r >> 40) % 3 != 0) {
        k.tags[k.ntags].key = S("owner");
        k.tags[k.ntags++].value = S(owners[(r >> 44) % 3]);
    }
    if (m == 1) {
        snprintf(sbuf[1], 32, "s%02u", (unsigned)((r >> 48) % 13));
        k.tags[k.ntags].key = S("substation");
        k.tags[k.ntags++].value = S(sbuf[1]);
    }
    qt_serieskey_sort(&k);
    size_t n;
    if (qt_serieskey_build(&k, true, (uint8_t *)out, GEN_KEY_MAX - 1, &n) != 0)
        abort();
    out[n] = '\0';
    return n;
}

/* Create `want` distinct random series; returns how many (all, or stops at
 * the first failure). */
static uint32_t
populate(struct qt_catalog *c, uint64_t seed, uint32_t want)
{
    uint64_t rng = seed;
    char key[GEN_KEY_MAX];
    enum qt_vtype vt;
    uint32_t sid, guard = 0;
    while (qt_catalog_series_count(c) < want && guard++ < want * 50) {
        gen_key(&rng, key, &vt);
        if (goc(c, key, vt, &sid) != 0)
            break;
    }
    return qt_catalog_series_count(c);
}

/* Create the three fields of each of `groups` groups one after another, as
 * a multi-field line does (exercises the writer's same-group shortcut). */
static bool
populate_grouped(struct qt_catalog *c, uint32_t groups)
{
    static const char *const f[] = {"pm25", "pm10", "no2"};
    char key[GEN_KEY_MAX];
    uint32_t sid;
    for (uint32_t g = 0; g < groups; g++)
        for (int i = 0; i < 3; i++) {
            snprintf(key, sizeof(key), "air,district=%s,%sstation=g%03u %s",
                     g % 3 == 0 ? "xihu" : "west\\ lake", g % 2 ? "owner=epb," : "", g, f[i]);
            if (goc(c, key, QT_VT_FLOAT, &sid) != 0)
                return false;
        }
    return true;
}

/* ---- basic ---- */

TEST(create_lookup_reopen)
{
    struct qt_catalog *c;
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    CHECK_EQ(qt_catalog_series_count(c), 0);
    uint32_t n = populate(c, qt_test_seed(), 2000);
    CHECK_EQ(n, 2000);
    struct qt_catalog_series si;
    struct qt_catalog_group gi;
    for (uint32_t sid = 0; sid < n; sid++) {
        uint32_t s2;
        CHECK_OK(qt_catalog_series_info(c, sid, &si));
        CHECK_OK(qt_catalog_lookup(c, si.key, si.key_len, &s2));
        CHECK_EQ(s2, sid);
        CHECK(si.id == qt_hash64(si.key, si.key_len)); /* no collisions here */
        CHECK_OK(qt_catalog_sid_by_id(c, si.id, &s2));
        CHECK_EQ(s2, sid);
        CHECK_OK(qt_catalog_group_info(c, si.gid, &gi));
        CHECK(gi.key_len == si.group_len && memcmp(gi.key, si.key, gi.key_len) == 0);
        CHECK(gi.id == qt_hash64(gi.key, gi.key_len));
        CHECK(si.key[si.group_len] == ' ');
        uint32_t g2;
        CHECK_OK(qt_catalog_group_lookup(c, gi.key, gi.key_len, &g2));
        CHECK_EQ(g2, si.gid);
        bool member = false; /* sid is on its group's list */
        for (uint32_t s = gi.first_sid; s != QT_CATALOG_NONE; s = qt_catalog_group_next(c, s))
            member |= s == sid;
        CHECK(member);
    }
    CHECK_OK(goc(c, "air,district=xihu,station=zz pm25", QT_VT_FLOAT, &n));
    CHECK_OK(qt_catalog_series_info(c, n, &si));
    CHECK(si.field.len == 4 && memcmp(si.field.p, "pm25", 4) == 0);
    CHECK_OK(qt_catalog_group_info(c, si.gid, &gi));
    CHECK(gi.measurement.len == 3 && memcmp(gi.measurement.p, "air", 3) == 0);
    CHECK_RC(qt_catalog_series_info(c, n + 1, &si), QT_ENOTFOUND);
    CHECK_RC(qt_catalog_group_info(c, qt_catalog_group_count(c), &gi), QT_ENOTFOUND);
    CHECK_RC(lookup(c, "air,district=xihu,station=zz pm10", &n), QT_ENOTFOUND);
    CHECK_RC(qt_catalog_sid_by_id(c, 12345, &n), QT_ENOTFOUND);
    uint32_t count = qt_catalog_series_count(c), groups = qt_catalog_group_count(c);
    uint64_t *ids = malloc(count * sizeof(uint64_t));
    for (uint32_t sid = 0; sid < count; sid++) {
        CHECK_OK(qt_catalog_series_info(c, sid, &si));
        ids[sid] = si.id;
    }
    CHECK_OK(qt_catalog_sync(c));
    CHECK_OK(qt_catalog_close(c));

    struct qt_catalog_report rep;
    struct qt_catalog_opts o = {.report = &rep};
    CHECK_OK(qt_catalog_open(qt_test_dir(), &o, &c));
    CHECK_EQ(rep.records, count);
    CHECK_EQ(rep.tail_bytes, 0);
    CHECK_EQ(qt_catalog_series_count(c), count);
    CHECK_EQ(qt_catalog_group_count(c), groups);
    /* Same keys -> same sids (log order), same ids and types. */
    uint64_t rng = qt_test_seed();
    char key[GEN_KEY_MAX];
    enum qt_vtype vt;
    for (uint32_t seen = 0; seen < count - 2;) { /* the last sid is the "zz" key */
        gen_key(&rng, key, &vt);
        uint32_t sid;
        CHECK_OK(lookup(c, key, &sid));
        CHECK_OK(qt_catalog_series_info(c, sid, &si));
        CHECK(si.vtype == vt && si.id == qt_hash64(key, strlen(key)) && si.id == ids[sid]);
        CHECK_OK(goc(c, key, vt, &n));
        CHECK_EQ(n, sid);
        seen = sid > seen ? sid : seen;
    }
    free(ids);
    CHECK_EQ(qt_catalog_series_count(c), count); /* nothing new */
    CHECK(qt_catalog_memory_bytes(c) > count * 32u);
    CHECK_OK(qt_catalog_close(c));
}

TEST(type_conflict_is_refused)
{
    struct qt_catalog *c;
    uint32_t sid, s2;
    const char *k = "air,district=xihu,station=a1 pm25";
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    CHECK_OK(goc(c, k, QT_VT_FLOAT, &sid));
    qt_err_clear();
    CHECK_RC(goc(c, k, QT_VT_INT, &s2), QT_EINVAL);
    CHECK(strstr(qt_err_detail(), "field type conflict: series is float, got integer") != NULL);
    CHECK_RC(goc(c, k, QT_VT_STRING, &s2), QT_EINVAL);
    CHECK(strstr(qt_err_detail(), "float, got string") != NULL);
    CHECK_RC(goc(c, k, (enum qt_vtype)9, &s2), QT_EINVAL);
    CHECK_OK(qt_catalog_close(c));
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    CHECK_RC(goc(c, k, QT_VT_BOOL, &s2), QT_EINVAL);
    CHECK(strstr(qt_err_detail(), "float, got boolean") != NULL);
    CHECK_OK(goc(c, k, QT_VT_FLOAT, &s2));
    CHECK_EQ(s2, sid);
    CHECK_EQ(qt_catalog_series_count(c), 1);
    CHECK_OK(qt_catalog_close(c));
}

TEST(rejects_bad_keys_without_logging)
{
    struct qt_catalog *c;
    uint32_t sid;
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    CHECK_RC(goc(c, "air,b=1,a=2 pm25", QT_VT_FLOAT, &sid), QT_ESYNTAX);
    CHECK_RC(goc(c, "air", QT_VT_FLOAT, &sid), QT_ESYNTAX);
    CHECK_RC(goc(c, "", QT_VT_FLOAT, &sid), QT_ESYNTAX);
    static char big[QT_SERIES_KEY_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[5] = ' ';
    CHECK_RC(goc(c, big, QT_VT_FLOAT, &sid), QT_ELIMIT);
    CHECK_EQ(qt_catalog_series_count(c), 0);
    CHECK_OK(qt_catalog_close(c));
    size_t len;
    uint8_t *b = read_file(cat_path(), &len);
    CHECK(b != NULL);
    free(b);
    CHECK_EQ(len, QT_CATREC_HEADER_SIZE);
}

TEST(series_limit)
{
    struct qt_catalog *c;
    struct qt_catalog_opts o = {.series_max = 10};
    CHECK_OK(qt_catalog_open(qt_test_dir(), &o, &c));
    CHECK_EQ(populate(c, 7, 100), 10);
    char key[GEN_KEY_MAX];
    uint64_t rng = 99;
    enum qt_vtype vt;
    uint32_t sid;
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++) {
        gen_key(&rng, key, &vt);
        if (lookup(c, key, &sid) != 0)
            rc = goc(c, key, vt, &sid);
    }
    CHECK_RC(rc, QT_ELIMIT);
    CHECK_OK(qt_catalog_close(c));
}

/* ---- collisions ---- */

struct hook_state {
    uint64_t seed0; /* what every key hashes to unseeded */
    bool always;    /* collide for every seed */
};

static uint64_t
collide_hook(void *arg, const uint8_t *key, size_t len, uint64_t seed)
{
    struct hook_state *h = arg;
    if (seed == 0 || h->always)
        return h->seed0;
    return qt_hash64_seed(key, len, seed);
}

TEST(collisions_get_distinct_ids_that_survive_reopen)
{
    struct hook_state hs = {.seed0 = 42};
    struct qt_catalog_opts o = {.hash_override = collide_hook, .hash_arg = &hs};
    struct qt_catalog *c;
    const char *keys[] = {"m,a=1 f", "m,a=2 f", "m,a=1 g", "n f", "m,a=3 f"};
    uint32_t sid[5];
    uint64_t id[5], gid_id[5];
    CHECK_OK(qt_catalog_open(qt_test_dir(), &o, &c));
    for (int i = 0; i < 5; i++) {
        struct qt_catalog_series si;
        struct qt_catalog_group gi;
        CHECK_OK(goc(c, keys[i], QT_VT_FLOAT, &sid[i]));
        CHECK_OK(qt_catalog_series_info(c, sid[i], &si));
        CHECK_OK(qt_catalog_group_info(c, si.gid, &gi));
        id[i] = si.id;
        gid_id[i] = gi.id;
    }
    /* Series ids: 42, then seeds 1.. of the later keys. */
    CHECK(id[0] == 42);
    for (int i = 1; i < 5; i++) {
        CHECK(id[i] == qt_hash64_seed(keys[i], strlen(keys[i]), 1));
        for (int j = 0; j < i; j++)
            CHECK(id[i] != id[j]);
    }
    /* Groups: "m,a=1" got 42; "m,a=2", "n", "m,a=3" collided into seed 1. */
    CHECK(gid_id[0] == 42 && gid_id[2] == 42);
    CHECK(gid_id[1] == qt_hash64_seed("m,a=2", 5, 1));
    CHECK(gid_id[3] == qt_hash64_seed("n", 1, 1));
    CHECK_OK(qt_catalog_close(c));

    /* Reopen without the hook: the persisted ids stay. */
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    for (int i = 0; i < 5; i++) {
        uint32_t s;
        struct qt_catalog_series si;
        CHECK_OK(lookup(c, keys[i], &s));
        CHECK_EQ(s, sid[i]);
        CHECK_OK(qt_catalog_series_info(c, s, &si));
        CHECK(si.id == id[i]);
        CHECK_OK(qt_catalog_sid_by_id(c, id[i], &s));
        CHECK_EQ(s, sid[i]);
    }
    /* A new key whose real hash is free gets it. */
    uint32_t s;
    struct qt_catalog_series si;
    CHECK_OK(goc(c, "x f", QT_VT_INT, &s));
    CHECK_OK(qt_catalog_series_info(c, s, &si));
    CHECK(si.id == qt_hash64("x f", 3));
    CHECK_OK(qt_catalog_close(c));

    /* A hash that collides for every seed ends in QT_ECOLLISION. */
    hs.always = true;
    CHECK_OK(qt_catalog_open(qt_test_dir(), &o, &c));
    CHECK_RC(goc(c, "y f", QT_VT_INT, &s), QT_ECOLLISION);
    CHECK_OK(qt_catalog_close(c));
}

/* ---- selection against brute force ---- */

struct parsed {
    struct qt_serieskey k;
    uint8_t scratch[GEN_KEY_MAX];
};

static struct qt_str
value_of(const struct qt_serieskey *k, struct qt_str key)
{
    for (uint32_t i = 0; i < k->ntags; i++)
        if (qt_serieskey_cmp(k->tags[i].key, key) == 0)
            return k->tags[i].value;
    return S("");
}

static bool
brute_pred(const struct qt_tag_matcher *m, struct qt_str v)
{
    switch (m->op) {
    case QT_MATCH_EQ: return qt_serieskey_cmp(v, m->value) == 0;
    case QT_MATCH_NE: return qt_serieskey_cmp(v, m->value) != 0;
    case QT_MATCH_IN:
        for (uint32_t i = 0; i < m->nvalues; i++)
            if (qt_serieskey_cmp(v, m->values[i]) == 0)
                return true;
        return false;
    case QT_MATCH_RE:
    case QT_MATCH_NRE: {
        int err;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)m->value.p, m->value.len, 0, &err, &off, NULL);
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        bool hit = pcre2_match(re, (PCRE2_SPTR)(v.len ? v.p : ""), v.len, 0, 0, md, NULL) >= 0;
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        return m->op == QT_MATCH_RE ? hit : !hit;
    }
    }
    abort();
}

static uint32_t
brute_select(const struct parsed *ps, uint32_t n, const char *meas, const char *field,
             const struct qt_tag_matcher *m, uint32_t nm, uint32_t *out)
{
    uint32_t cnt = 0;
    for (uint32_t sid = 0; sid < n; sid++) {
        const struct qt_serieskey *k = &ps[sid].k;
        bool ok = qt_serieskey_cmp(k->measurement, S(meas)) == 0 &&
                  (field == NULL || qt_serieskey_cmp(k->field, S(field)) == 0);
        for (uint32_t i = 0; ok && i < nm; i++)
            ok = brute_pred(&m[i], value_of(k, m[i].key));
        if (ok)
            out[cnt++] = sid;
    }
    return cnt;
}

static struct parsed *
parse_all(struct qt_catalog *c, uint32_t n)
{
    struct parsed *ps = calloc(n, sizeof(*ps));
    for (uint32_t sid = 0; sid < n; sid++) {
        struct qt_catalog_series si;
        if (qt_catalog_series_info(c, sid, &si) != 0 ||
            qt_serieskey_parse(si.key, si.key_len, true, ps[sid].scratch, GEN_KEY_MAX,
                               &ps[sid].k) != 0)
            abort();
    }
    return ps;
}

static const char *const mvals[] = {"xihu",    "west lake", "a,b=c", "nope", "",        "epb",
                                    "grid\\x", "a001",      "f050",  "s03",  "water co"};
static const char *const mkeys[] = {"district", "station",    "owner",
                                    "feeder",   "substation", "missing"};
static const char *const regexes[] = {"^x",   "e", "^$",        ".*", "^(a0|f0)[0-4]",
                                      "\\\\", ",", "^s0[0-9]$", "o"};

static void
random_matcher(uint64_t *rng, struct qt_tag_matcher *m, struct qt_str *inbuf)
{
    uint64_t r = qt_test_rand(rng);
    memset(m, 0, sizeof(*m));
    m->op = (enum qt_match_op)(1 + r % 5);
    m->key = S(mkeys[(r >> 8) % 6]);
    if (m->op == QT_MATCH_RE || m->op == QT_MATCH_NRE) {
        m->value = S(regexes[(r >> 16) % 9]);
    } else if (m->op == QT_MATCH_IN) {
        m->nvalues = 1 + (uint32_t)((r >> 16) % 4);
        for (uint32_t i = 0; i < m->nvalues; i++)
            inbuf[i] = S(mvals[qt_test_rand(rng) % 11]);
        m->values = inbuf;
    } else {
        m->value = S(mvals[(r >> 16) % 11]);
    }
}

static bool
select_matches_brute(struct qt_catalog *c, const struct parsed *ps, uint32_t n, uint64_t *rng,
                     uint32_t *want, int iters)
{
    static const char *const meas[] = {"air", "grid", "water q", "none"};
    static const char *const fields[] = {"pm25", "voltage", "ok", "flow", "zzz"};
    for (int it = 0; it < iters; it++) {
        struct qt_tag_matcher m[4];
        struct qt_str inbuf[4][4];
        uint32_t nm = (uint32_t)(qt_test_rand(rng) % 4);
        for (uint32_t i = 0; i < nm; i++)
            random_matcher(rng, &m[i], inbuf[i]);
        const char *me = meas[qt_test_rand(rng) % 4];
        uint64_t fr = qt_test_rand(rng) % 7;
        const char *fi = fr < 5 ? fields[fr] : NULL;
        struct qt_str fs = fi != NULL ? S(fi) : S("");
        uint32_t *got, ngot;
        uint32_t nwant = brute_select(ps, n, me, fi, m, nm, want);
        if (qt_catalog_select(c, S(me), fi != NULL ? &fs : NULL, m, nm, n, &got, &ngot) != 0)
            return false;
        bool same = ngot == nwant && (ngot == 0 || memcmp(got, want, ngot * 4) == 0);
        qt_free(got);
        if (!same) {
            printf("mismatch: %s field %s nm %u got %u want %u\n", me, fi ? fi : "*", nm, ngot,
                   nwant);
            for (uint32_t i = 0; i < nm; i++)
                printf("  op %d %.*s %.*s\n", m[i].op, (int)m[i].key.len, m[i].key.p,
                       (int)m[i].value.len, m[i].value.p);
            return false;
        }
        if (nwant > 0) { /* the cap: one less than the result is refused */
            if (qt_catalog_select(c, S(me), fi != NULL ? &fs : NULL, m, nm, nwant - 1, &got,
                                  &ngot) != QT_ELIMIT ||
                got != NULL)
                return false;
        }
    }
    return true;
}

TEST(select_every_matcher_vs_brute_force)
{
    struct qt_catalog *c;
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    uint32_t n = populate(c, qt_test_seed() ^ 0x5e1, 2400);
    CHECK_EQ(n, 2400);
    CHECK(populate_grouped(c, 200));
    n = qt_catalog_series_count(c);
    CHECK_EQ(n, 3000);
    struct parsed *ps = parse_all(c, n);
    uint32_t *want = malloc(n * sizeof(uint32_t));
    uint64_t rng = qt_test_seed() ^ 0xabc;
    bool ok = select_matches_brute(c, ps, n, &rng, want, 3000);
    CHECK_OK(qt_catalog_close(c));
    /* The index rebuilt by replay answers the same. */
    if (ok) {
        CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
        ok = select_matches_brute(c, ps, n, &rng, want, 500);
        CHECK_OK(qt_catalog_close(c));
    }
    free(ps);
    free(want);
    CHECK(ok);
}

TEST(select_edge_cases)
{
    struct qt_catalog *c;
    uint32_t *got, n, sid;
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    CHECK_OK(goc(c, "m,a=1 f", QT_VT_FLOAT, &sid));
    CHECK_OK(goc(c, "m,b=2 f", QT_VT_FLOAT, &sid));
    CHECK_OK(goc(c, "m f", QT_VT_FLOAT, &sid));
    struct qt_tag_matcher m = {.op = QT_MATCH_RE, .key = S("a"), .value = S("(")};
    CHECK_RC(qt_catalog_select(c, S("m"), NULL, &m, 1, 10, &got, &n), QT_ESYNTAX);
    m.op = (enum qt_match_op)0;
    CHECK_RC(qt_catalog_select(c, S("m"), NULL, &m, 1, 10, &got, &n), QT_EINVAL);
    /* Absent = "": a = "" selects the series without a. */
    m = (struct qt_tag_matcher){.op = QT_MATCH_EQ, .key = S("a"), .value = S("")};
    CHECK_OK(qt_catalog_select(c, S("m"), NULL, &m, 1, 10, &got, &n));
    CHECK(n == 2 && got[0] == 1 && got[1] == 2);
    qt_free(got);
    m.op = QT_MATCH_NE;
    CHECK_OK(qt_catalog_select(c, S("m"), NULL, &m, 1, 10, &got, &n));
    CHECK(n == 1 && got[0] == 0);
    qt_free(got);
    /* An unknown tag key: every series has "" there. */
    m = (struct qt_tag_matcher){.op = QT_MATCH_NE, .key = S("zz"), .value = S("1")};
    CHECK_OK(qt_catalog_select(c, S("m"), NULL, &m, 1, 10, &got, &n));
    CHECK_EQ(n, 3);
    qt_free(got);
    m.op = QT_MATCH_EQ;
    CHECK_OK(qt_catalog_select(c, S("m"), NULL, &m, 1, 10, &got, &n));
    CHECK(n == 0 && got == NULL);
    /* No matchers: the whole measurement; max 2 of 3 -> QT_ELIMIT. */
    CHECK_RC(qt_catalog_select(c, S("m"), NULL, NULL, 0, 2, &got, &n), QT_ELIMIT);
    CHECK_OK(qt_catalog_select(c, S("q"), NULL, NULL, 0, 2, &got, &n));
    CHECK_EQ(n, 0);
    struct qt_tag_matcher many[QT_CATALOG_MATCHERS_MAX + 1];
    memset(many, 0, sizeof(many));
    CHECK_RC(qt_catalog_select(c, S("m"), NULL, many, QT_CATALOG_MATCHERS_MAX + 1, 10, &got, &n),
             QT_ELIMIT);
    CHECK_OK(qt_catalog_close(c));
}

/* ---- listings ---- */

static bool
list_is(struct qt_strlist *l, const char *const *want, uint32_t n)
{
    bool ok = l != NULL && l->n == n;
    for (uint32_t i = 0; ok && i < n; i++)
        ok = qt_serieskey_cmp(l->items[i], S(want[i])) == 0;
    qt_catalog_strlist_free(l);
    return ok;
}

TEST(listings)
{
    struct qt_catalog *c;
    struct qt_strlist *l;
    uint32_t sid;
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    CHECK_OK(qt_catalog_list_measurements(c, &l));
    CHECK(list_is(l, NULL, 0));
    const char *keys[] = {"water,site=w2 flow",
                          "air,district=xihu,station=a2 pm25",
                          "air,district=binjiang,station=a1 pm10",
                          "air,district=xihu,station=a1 pm25",
                          "grid,district=xihu,feeder=f1 v",
                          "air\\ q,k\\=x=a\\ b f\\,g"};
    for (int i = 0; i < 6; i++)
        CHECK_OK(goc(c, keys[i], QT_VT_FLOAT, &sid));
    for (int round = 0; round < 2; round++) {
        CHECK_OK(qt_catalog_list_measurements(c, &l));
        CHECK(list_is(l, (const char *[]){"air", "air q", "grid", "water"}, 4));
        CHECK_OK(qt_catalog_list_fields(c, S("air"), &l));
        CHECK(list_is(l, (const char *[]){"pm10", "pm25"}, 2));
        CHECK_OK(qt_catalog_list_fields(c, S("air q"), &l));
        CHECK(list_is(l, (const char *[]){"f,g"}, 1));
        CHECK_OK(qt_catalog_list_fields(c, S("nope"), &l));
        CHECK(list_is(l, NULL, 0));
        CHECK_OK(qt_catalog_list_tag_keys(c, NULL, &l));
        CHECK(list_is(l, (const char *[]){"district", "feeder", "k=x", "site", "station"}, 5));
        struct qt_str grid = S("grid");
        CHECK_OK(qt_catalog_list_tag_keys(c, &grid, &l));
        CHECK(list_is(l, (const char *[]){"district", "feeder"}, 2));
        CHECK_OK(qt_catalog_list_tag_values(c, S("district"), NULL, &l));
        CHECK(list_is(l, (const char *[]){"binjiang", "xihu"}, 2));
        CHECK_OK(qt_catalog_list_tag_values(c, S("district"), &grid, &l));
        CHECK(list_is(l, (const char *[]){"xihu"}, 1));
        struct qt_str air = S("air");
        CHECK_OK(qt_catalog_list_tag_values(c, S("station"), &air, &l));
        CHECK(list_is(l, (const char *[]){"a1", "a2"}, 2));
        CHECK_OK(qt_catalog_list_tag_values(c, S("k=x"), NULL, &l));
        CHECK(list_is(l, (const char *[]){"a b"}, 1));
        CHECK_OK(qt_catalog_list_tag_values(c, S("station"), &grid, &l));
        CHECK(list_is(l, NULL, 0));
        CHECK_OK(qt_catalog_list_tag_values(c, S("nokey"), NULL, &l));
        CHECK(list_is(l, NULL, 0));
        CHECK_OK(qt_catalog_close(c)); /* second round: after replay */
        CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    }
    CHECK_OK(qt_catalog_close(c));
}

/* ---- recovery ---- */

/* Build a catalog of n series; return the file bytes and each record's
 * start offset (offs[n] = file size). */
static uint8_t *
make_log(uint32_t n, uint64_t *offs, size_t *len)
{
    struct qt_catalog *c;
    if (qt_catalog_open(qt_test_dir(), NULL, &c) != 0 || populate(c, 1234, n) != n ||
        qt_catalog_close(c) != 0)
        return NULL;
    uint8_t *b = read_file(cat_path(), len);
    uint64_t off = QT_CATREC_HEADER_SIZE;
    for (uint32_t i = 0; i < n; i++) {
        offs[i] = off;
        off += qt_catrec_size(qt_load_le16(b + off + 17));
    }
    offs[n] = off;
    return off == *len ? b : NULL;
}

TEST(torn_tail_cut_at_every_byte_of_the_last_record)
{
    uint64_t offs[41];
    size_t len;
    uint8_t *b = make_log(40, offs, &len);
    CHECK(b != NULL);
    qt_log_set_level(QT_LOG_ERROR); /* one warning per cut otherwise */
    for (uint64_t cut = offs[39]; cut < len; cut++) {
        write_file(cat_path(), b, cut);
        struct qt_catalog *c;
        struct qt_catalog_report rep;
        struct qt_catalog_opts o = {.report = &rep};
        CHECK_OK(qt_catalog_open(qt_test_dir(), &o, &c));
        CHECK_EQ(qt_catalog_series_count(c), 39);
        CHECK_EQ(rep.records, 39);
        CHECK_EQ(rep.tail_bytes, cut - offs[39]);
        CHECK_EQ(rep.tail_offset, cut > offs[39] ? offs[39] : 0);
        /* Appending after the cut yields a clean log again. */
        CHECK_EQ(populate(c, 1234, 40), 40);
        CHECK_OK(qt_catalog_close(c));
        size_t l2;
        uint8_t *b2 = read_file(cat_path(), &l2);
        bool same = l2 == len && memcmp(b, b2, len) == 0;
        free(b2);
        CHECK(same);
    }
    /* Zeros after the last record (a preallocated or half-extended file). */
    uint8_t *z = calloc(1, len + 5000);
    memcpy(z, b, len);
    write_file(cat_path(), z, len + 5000);
    free(z);
    struct qt_catalog *c;
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    CHECK_EQ(qt_catalog_series_count(c), 40);
    CHECK_OK(qt_catalog_close(c));
    qt_log_set_level(QT_LOG_INFO);
    free(b);
}

TEST(corrupt_middle_record_refused_then_salvaged)
{
    uint64_t offs[31];
    size_t len;
    uint8_t *b = make_log(30, offs, &len);
    CHECK(b != NULL);
    b[offs[12] + 20] ^= 0x40; /* a key byte of record 12 */
    write_file(cat_path(), b, len);
    struct qt_catalog *c = NULL;
    struct qt_catalog_report rep;
    struct qt_catalog_opts o = {.report = &rep};
    CHECK_RC(qt_catalog_open(qt_test_dir(), &o, &c), QT_ECHECKSUM);
    CHECK(c == NULL);
    CHECK_EQ(rep.bad_offset, offs[12]);
    /* Past the durable size recorded elsewhere, the damage and everything
     * after it is an unsynced tail: cut without salvage. */
    o.durable_size = offs[12];
    CHECK_OK(qt_catalog_open(qt_test_dir(), &o, &c));
    CHECK_EQ(qt_catalog_series_count(c), 12);
    CHECK_EQ(rep.tail_offset, offs[12]);
    CHECK_EQ(rep.tail_bytes, len - offs[12]);
    CHECK_EQ(qt_catalog_durable_size(c), offs[12]);
    CHECK_OK(qt_catalog_close(c));
    write_file(cat_path(), b, len);
    o.durable_size = offs[13]; /* damage in synced bytes: refused */
    CHECK_RC(qt_catalog_open(qt_test_dir(), &o, &c), QT_ECHECKSUM);
    o.durable_size = len + 1; /* synced bytes missing */
    CHECK_RC(qt_catalog_open(qt_test_dir(), &o, &c), QT_ETRUNC);
    o.durable_size = 0;
    o.flags = QT_CATALOG_SALVAGE;
    CHECK_OK(qt_catalog_open(qt_test_dir(), &o, &c));
    CHECK_EQ(qt_catalog_series_count(c), 29);
    CHECK_EQ(rep.records, 29);
    CHECK_EQ(rep.bad_offset, offs[12]);
    CHECK_EQ(rep.skipped_bytes, offs[13] - offs[12]);
    CHECK_OK(qt_catalog_close(c));
    /* Salvage rewrote the log: a plain open now succeeds. */
    o.flags = 0;
    CHECK_OK(qt_catalog_open(qt_test_dir(), &o, &c));
    CHECK_EQ(qt_catalog_series_count(c), 29);
    CHECK_EQ(rep.bad_offset, 0);
    CHECK_OK(qt_catalog_close(c));
    free(b);
}

TEST(inconsistent_records_are_corrupt)
{
    uint64_t offs[11];
    size_t len;
    uint8_t *b = make_log(10, offs, &len);
    CHECK(b != NULL);
    /* A duplicated record (valid checksum) is QT_ECORRUPT at its offset. */
    size_t rl = offs[4] - offs[3];
    uint8_t *d = malloc(len + rl);
    memcpy(d, b, offs[6]);
    memcpy(d + offs[6], b + offs[3], rl);
    memcpy(d + offs[6] + rl, b + offs[6], len - offs[6]);
    write_file(cat_path(), d, len + rl);
    struct qt_catalog *c = NULL;
    struct qt_catalog_report rep;
    struct qt_catalog_opts o = {.report = &rep};
    CHECK_RC(qt_catalog_open(qt_test_dir(), &o, &c), QT_ECORRUPT);
    CHECK_EQ(rep.bad_offset, offs[6]);
    o.flags = QT_CATALOG_SALVAGE;
    CHECK_OK(qt_catalog_open(qt_test_dir(), &o, &c));
    CHECK_EQ(qt_catalog_series_count(c), 10);
    CHECK_EQ(rep.skipped_records, 1);
    CHECK_OK(qt_catalog_close(c));
    /* Another key claiming record 2's series id (checksum recomputed). */
    memcpy(d, b, len);
    memcpy(d + offs[7], b + offs[2], 8);
    size_t kl = qt_load_le16(d + offs[7] + 17);
    qt_hash_store(d + offs[7] + 19 + kl, qt_hash64(d + offs[7], 19 + kl));
    write_file(cat_path(), d, len);
    o.flags = 0;
    CHECK_RC(qt_catalog_open(qt_test_dir(), &o, &c), QT_ECORRUPT);
    CHECK(strstr(qt_err_detail(), "series id") != NULL);
    CHECK_EQ(rep.bad_offset, offs[7]);
    free(d);
    free(b);
}

TEST(header_checks)
{
    struct qt_catalog *c;
    uint8_t h[QT_CATREC_HEADER_SIZE];
    CHECK_OK(qt_catrec_header_encode(h, sizeof(h)));
    /* A torn header (crash during creation) is rewritten. */
    write_file(cat_path(), h, 10);
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    CHECK_OK(qt_catalog_close(c));
    size_t len;
    uint8_t *b = read_file(cat_path(), &len);
    CHECK(b != NULL && len == sizeof(h) && memcmp(b, h, len) == 0);
    free(b);
    /* Short garbage is not taken for a torn header. */
    write_file(cat_path(), (const uint8_t *)"garbage", 7);
    CHECK_RC(qt_catalog_open(qt_test_dir(), NULL, &c), QT_EMAGIC);
    h[0] ^= 1;
    write_file(cat_path(), h, sizeof(h));
    CHECK_RC(qt_catalog_open(qt_test_dir(), NULL, &c), QT_EMAGIC);
    h[0] ^= 1;
    qt_store_le32(h + 8, QT_FORMAT_VERSION + 1);
    qt_hash_store(h + 16, qt_hash64(h, 16));
    write_file(cat_path(), h, sizeof(h));
    CHECK_RC(qt_catalog_open(qt_test_dir(), NULL, &c), QT_EVERSION);
    h[20] ^= 1;
    write_file(cat_path(), h, sizeof(h));
    CHECK_RC(qt_catalog_open(qt_test_dir(), NULL, &c), QT_ECHECKSUM);
}

/* ---- failure injection ---- */

TEST(failed_write_makes_catalog_failed)
{
    struct qt_catalog *c;
    uint32_t sid;
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    CHECK_OK(goc(c, "m,a=1 f", QT_VT_FLOAT, &sid));
    CHECK_OK(qt_catalog_sync(c));
    CHECK_OK(qt_catalog_sync(c)); /* nothing new: no-op */
    struct stat st;
    CHECK(stat(cat_path(), &st) == 0);
    CHECK_EQ(qt_catalog_durable_size(c), st.st_size);
    /* The file may grow by 50 more bytes: the next flush fails mid-record. */
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size + 50;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    CHECK_OK(goc(c, "m,a=2 f", QT_VT_FLOAT, &sid));
    CHECK_OK(goc(c, "m,a=3 f", QT_VT_FLOAT, &sid)); /* buffered */
    int rc = qt_catalog_sync(c);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK_RC(rc, -EFBIG);
    CHECK(qt_catalog_failed(c));
    CHECK_RC(qt_catalog_sync(c), QT_EREADONLY);
    CHECK_RC(goc(c, "m,a=4 f", QT_VT_FLOAT, &sid), QT_EREADONLY);
    CHECK_OK(goc(c, "m,a=2 f", QT_VT_FLOAT, &sid)); /* lookups still work */
    CHECK_EQ(sid, 1);
    CHECK_RC(qt_catalog_close(c), -EFBIG);
    /* Reopen: the synced record survives, the partial one is cut. */
    struct qt_catalog_report rep;
    struct qt_catalog_opts o = {.report = &rep};
    CHECK_OK(qt_catalog_open(qt_test_dir(), &o, &c));
    CHECK(qt_catalog_series_count(c) >= 1);
    CHECK_EQ(rep.tail_offset + rep.tail_bytes, (uint64_t)st.st_size + 50);
    CHECK_OK(lookup(c, "m,a=1 f", &sid));
    CHECK_OK(qt_catalog_close(c));
}

TEST(allocation_failures_change_nothing)
{
    struct qt_catalog *c;
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    CHECK_EQ(populate(c, 77, 300), 300);
    char key[GEN_KEY_MAX];
    uint32_t failures = 0;
    for (uint32_t i = 0; i < 400; i++) {
        /* New measurement, field and tags each time: every structure grows. */
        snprintf(key, sizeof(key), "m%u,k%u=v%u,x=y%u f%u", i % 37, i % 11, i, i % 5, i % 3);
        uint32_t before = qt_catalog_series_count(c), sid;
        qt_alloc_fail_after(1 + i % 9);
        int rc = goc(c, key, QT_VT_FLOAT, &sid);
        qt_alloc_fail_after(0);
        if (rc != 0) {
            CHECK_RC(rc, QT_ENOMEM);
            failures++;
            CHECK_EQ(qt_catalog_series_count(c), before);
            CHECK_RC(lookup(c, key, &sid), QT_ENOTFOUND);
            CHECK_OK(goc(c, key, QT_VT_FLOAT, &sid));
        }
        CHECK_EQ(sid, before);
    }
    CHECK(failures > 0);
    uint32_t n = qt_catalog_series_count(c);
    struct parsed *ps = parse_all(c, n);
    uint32_t *want = malloc(n * sizeof(uint32_t));
    uint64_t rng = 5;
    bool ok = select_matches_brute(c, ps, n, &rng, want, 300);
    CHECK_OK(qt_catalog_close(c));
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    CHECK_EQ(qt_catalog_series_count(c), n);
    ok = ok && select_matches_brute(c, ps, n, &rng, want, 100);
    CHECK_OK(qt_catalog_close(c));
    free(ps);
    free(want);
    CHECK(ok);
}

/* ---- concurrency ---- */

#define CONC_THREADS 4
#define CONC_KEYS    6000

struct conc_arg {
    struct qt_catalog *c;
    int t;
    uint32_t sids[CONC_KEYS];
    int errors;
};

static void
conc_key(uint32_t i, char *out)
{
    uint32_t g = i / 3; /* three fields per group */
    snprintf(out, GEN_KEY_MAX, "grid,district=d%u,feeder=f%u,substation=s%05u %s", g % 10, g % 97,
             g, (const char *[]){"voltage", "current", "power"}[i % 3]);
}

static void *
conc_main(void *p)
{
    struct conc_arg *a = p;
    char key[GEN_KEY_MAX];
    for (uint32_t j = 0; j < CONC_KEYS; j++) {
        /* Each thread walks the keys in its own order: heavy overlap. */
        static const uint32_t mul[CONC_THREADS] = {1, 7, 11, 13}; /* coprime to CONC_KEYS */
        uint32_t i = (j * mul[a->t] + (uint32_t)a->t * 1117) % CONC_KEYS;
        conc_key(i, key);
        if (goc(a->c, key, QT_VT_FLOAT, &a->sids[i]) != 0)
            a->errors++;
        if (j % 64 == 0) { /* queries run alongside the writers */
            struct qt_tag_matcher m = {.op = QT_MATCH_EQ, .key = S("district"), .value = S("d3")};
            uint32_t *got, n;
            if (qt_catalog_select(a->c, S("grid"), NULL, &m, 1, CONC_KEYS, &got, &n) != 0)
                a->errors++;
            for (uint32_t k = 1; k < n; k++)
                a->errors += got[k - 1] >= got[k];
            qt_free(got);
        }
    }
    return NULL;
}

TEST(concurrent_get_or_create_one_sid_per_key)
{
    struct qt_catalog *c;
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    static struct conc_arg args[CONC_THREADS];
    pthread_t th[CONC_THREADS];
    for (int t = 0; t < CONC_THREADS; t++) {
        args[t].c = c;
        args[t].t = t;
        args[t].errors = 0;
        CHECK(pthread_create(&th[t], NULL, conc_main, &args[t]) == 0);
    }
    for (int t = 0; t < CONC_THREADS; t++)
        pthread_join(th[t], NULL);
    CHECK_EQ(qt_catalog_series_count(c), CONC_KEYS);
    static uint8_t seen[CONC_KEYS];
    memset(seen, 0, sizeof(seen));
    char key[GEN_KEY_MAX];
    for (uint32_t i = 0; i < CONC_KEYS; i++) {
        for (int t = 0; t < CONC_THREADS; t++) {
            CHECK_EQ(args[t].errors, 0);
            CHECK_EQ(args[t].sids[i], args[0].sids[i]);
        }
        CHECK(args[0].sids[i] < CONC_KEYS && !seen[args[0].sids[i]]);
        seen[args[0].sids[i]] = 1;
        struct qt_catalog_series si;
        CHECK_OK(qt_catalog_series_info(c, args[0].sids[i], &si));
        conc_key(i, key);
        CHECK(si.key_len == strlen(key) && memcmp(si.key, key, si.key_len) == 0);
    }
    CHECK_OK(qt_catalog_close(c));
    CHECK_OK(qt_catalog_open(qt_test_dir(), NULL, &c));
    CHECK_EQ(qt_catalog_series_count(c), CONC_KEYS);
    for (uint32_t i = 0; i < CONC_KEYS; i++) {
        uint32_t sid;
        conc_key(i, key);
        CHECK_OK(lookup(c, key, &sid));
        CHECK_EQ(sid, args[0].sids[i]);
    }
    CHECK_OK(qt_catalog_close(c));
}
