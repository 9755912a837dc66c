/*
 * catalog_query.c -- selection (measurement, field, tag matchers -> sorted
 * sids) and listings over the catalog's inverted index (contract in
 * catalog.h; structures in catalog_int.h).  Everything here runs under the
 * shared idx_lock, except regex compilation, which happens before it.
 *
 * Selection model: a series lacking tag k has the value "" for k.  A matcher
 * is a predicate pred(v) on the values of its key; since a series has one
 * value per key, the series of key k are partitioned by the value postings.
 * If pred("") is false the matcher keeps exactly the series in the postings
 * of matching values (an *include* term); if pred("") is true it drops
 * exactly the series in the postings of non-matching values (an *exclude*
 * term).  The result starts from the smallest include term (when smaller
 * than the measurement/field posting) or from that posting, and each other
 * term filters it by marking candidates with binary searches or merges.
 */
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include "catalog.h"
#include "catalog_int.h"
#include "format/qt_alloc.h"
#include "format/qt_bytes.h"
#include "format/qt_err.h"
#include "format/qt_hash.h"

#include <pcre2.h>

/* PCRE2 backtracking budget per value tested: a pathological pattern fails
 * with QT_ELIMIT instead of pinning a core (PCRE2's default is 10M). */
#define SEL_REGEX_MATCH_LIMIT 1000000u

struct sel_re {
    pcre2_code *code;
    pcre2_match_data *md;
};

struct sel_term {
    bool include;    /* keep the series in the postings below (else drop them) */
    bool keep_all;   /* no series is affected */
    bool drop_all;   /* every series is dropped */
    uint32_t *tvids; /* posting ids (sorted, distinct) */
    uint32_t n, cap;
    uint64_t total; /* sum of the postings' sizes */
};

static void *
sel_re_malloc(PCRE2_SIZE n, void *arg)
{
    (void)arg;
    return qt_malloc(n);
}

static void
sel_re_free(void *p, void *arg)
{
    (void)arg;
    qt_free(p);
}

static int
sel_re_compile(const struct qt_tag_matcher *m, pcre2_general_context *gc, struct sel_re *re)
{
    int err;
    PCRE2_SIZE erroff;
    if (m->value.len > QT_CATALOG_REGEX_MAX)
        return qt_fail(QT_ELIMIT, "catalog: regex longer than QT_CATALOG_REGEX_MAX");
    pcre2_compile_context *cc = pcre2_compile_context_create(gc);
    if (cc == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (regex)");
    const char *pat = m->value.len > 0 ? m->value.p : "";
    re->code = pcre2_compile((PCRE2_SPTR)pat, m->value.len, 0, &err, &erroff, cc);
    pcre2_compile_context_free(cc);
    if (re->code == NULL)
        return err == PCRE2_ERROR_NOMEMORY ? qt_fail(QT_ENOMEM, "catalog: out of memory (regex)")
                                           : qt_fail(QT_ESYNTAX, "catalog: invalid regex");
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* optional speed-up */
    re->md = pcre2_match_data_create_from_pattern(re->code, gc);
    if (re->md == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (regex)");
    return 0;
}

/* 1 match, 0 no match, or QT_ELIMIT. */
static int
sel_re_match(const struct sel_re *re, pcre2_match_context *mc, const uint8_t *s, size_t len)
{
    static const uint8_t empty[1];
    int rc = pcre2_match(re->code, len > 0 ? s : empty, len, 0, 0, re->md, mc);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    return qt_fail(QT_ELIMIT, "catalog: regex match limit exceeded");
}

static int
sel_term_add(struct sel_term *t, uint32_t tvid)
{
    if (t->n == t->cap) {
        uint32_t ncap = t->cap == 0 ? 16 : t->cap * 2;
        uint32_t *nv = qt_realloc(t->tvids, (size_t)ncap * sizeof(uint32_t));
        if (nv == NULL)
            return qt_fail(QT_ENOMEM, "catalog: out of memory (selection)");
        t->tvids = nv;
        t->cap = ncap;
    }
    t->tvids[t->n++] = tvid;
    return 0;
}

static int
sel_u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort and deduplicate v[0..*n). */
static void
sel_sort_unique(uint32_t *v, uint32_t *n)
{
    if (*n < 2)
        return;
    qsort(v, *n, sizeof(uint32_t), sel_u32_cmp);
    uint32_t w = 1;
    for (uint32_t i = 1; i < *n; i++)
        if (v[i] != v[w - 1])
            v[w++] = v[i];
    *n = w;
}

static uint32_t
sel_tvid_find(struct qt_catalog *c, uint32_t kid, struct qt_str v)
{
    uint8_t buf[4 + QT_SERIES_KEY_MAX];
    if (v.len > QT_SERIES_KEY_MAX) /* no value is longer than a key */
        return QT_CATMEM_NONE;
    qt_store_le32(buf, kid);
    if (v.len > 0)
        memcpy(buf + 4, v.p, v.len);
    return qt_catmem_dict_find(&c->tpairs, buf, 4 + v.len, qt_hash64(buf, 4 + v.len));
}

/* pred("") for matcher m (the value a series lacking the key has). */
static int
sel_absent_matches(const struct qt_tag_matcher *m, const struct sel_re *re, pcre2_match_context *mc)
{
    switch (m->op) {
    case QT_MATCH_EQ: return m->value.len == 0;
    case QT_MATCH_NE: return m->value.len != 0;
    case QT_MATCH_IN:
        for (uint32_t i = 0; i < m->nvalues; i++)
            if (m->values[i].len == 0)
                return 1;
        return 0;
    case QT_MATCH_RE: return sel_re_match(re, mc, NULL, 0);
    case QT_MATCH_NRE: {
        int r = sel_re_match(re, mc, NULL, 0);
        return r < 0 ? r : !r;
    }
    }
    qt_unreachable();
}

/* pred(v) for a value of the key (tvid), given the IN list's own tvids. */
static int
sel_pred(struct qt_catalog *c, const struct qt_tag_matcher *m, const struct sel_re *re,
         pcre2_match_context *mc, uint32_t tvid, const struct sel_term *inset)
{
    const struct qt_catmem_dent *e = qt_catmem_dict_at(&c->tpairs, tvid);
    const uint8_t *v = e->p + 4;
    size_t len = e->len - 4;
    switch (m->op) {
    case QT_MATCH_EQ: return len == m->value.len && memcmp(v, m->value.p, len) == 0;
    case QT_MATCH_NE: return !(len == m->value.len && memcmp(v, m->value.p, len) == 0);
    case QT_MATCH_IN:
        return inset->n > 0 &&
               bsearch(&tvid, inset->tvids, inset->n, sizeof(uint32_t), sel_u32_cmp) != NULL;
    case QT_MATCH_RE: return sel_re_match(re, mc, v, len);
    case QT_MATCH_NRE: {
        int r = sel_re_match(re, mc, v, len);
        return r < 0 ? r : !r;
    }
    }
    qt_unreachable();
}

/* The tvids of the listed values (IN) or of one value (EQ/NE). */
static int
sel_listed(struct qt_catalog *c, const struct qt_tag_matcher *m, uint32_t kid, struct sel_term *t)
{
    uint32_t n = m->op == QT_MATCH_IN ? m->nvalues : 1;
    for (uint32_t i = 0; i < n; i++) {
        struct qt_str v = m->op == QT_MATCH_IN ? m->values[i] : m->value;
        if (v.len == 0)
            continue;
        uint32_t id = sel_tvid_find(c, kid, v);
        int rc = id == QT_CATMEM_NONE ? 0 : sel_term_add(t, id);
        if (rc != 0)
            return rc;
    }
    sel_sort_unique(t->tvids, &t->n);
    return 0;
}

/* Turn matcher m into term t (see the opening comment). */
static int
sel_resolve(struct qt_catalog *c, const struct qt_tag_matcher *m, const struct sel_re *re,
            pcre2_match_context *mc, struct sel_term *t)
{
    int absent = sel_absent_matches(m, re, mc);
    if (absent < 0)
        return absent;
    t->include = !absent;
    uint32_t kid =
        qt_catmem_dict_find(&c->tkeys, m->key.p, m->key.len, qt_hash64(m->key.p, m->key.len));
    if (kid == QT_CATMEM_NONE) { /* every series lacks the key */
        t->keep_all = absent;
        t->drop_all = !absent;
        return 0;
    }
    bool direct = (m->op == QT_MATCH_EQ || m->op == QT_MATCH_NE) && m->value.len > 0;
    if (direct || (m->op == QT_MATCH_IN && !absent))
        return sel_listed(c, m, kid, t);
    struct sel_term inset = {0};
    int rc = m->op == QT_MATCH_IN ? sel_listed(c, m, kid, &inset) : 0;
    const struct cat_tkey *td = qt_catmem_vec_at(&c->tkey_data, kid);
    for (uint32_t i = 0; rc == 0 && i < td->tvids.n; i++) {
        int pred = sel_pred(c, m, re, mc, td->tvids.v[i], &inset);
        if (pred < 0)
            rc = pred;
        else if (pred != absent)
            rc = sel_term_add(t, td->tvids.v[i]);
    }
    qt_free(inset.tvids);
    if (rc == 0)
        sel_sort_unique(t->tvids, &t->n);
    return rc;
}

static const struct qt_catmem_list *
sel_posting(const struct qt_catalog *c, uint32_t tvid)
{
    return qt_catmem_vec_at(&c->tv_post, tvid);
}

/* Set flag[i] for every cand[i] that is in p (both sorted), by whichever is
 * cheapest: binary searches of p's elements in cand, of cand's elements in
 * p, or a merge. */
static void
sel_mark(const uint32_t *cand, uint32_t nc, const uint32_t *p, uint32_t np, uint8_t *flag)
{
    if (nc == 0 || np == 0)
        return;
    uint64_t lgc = 32u - (uint32_t)__builtin_clz(nc), lgp = 32u - (uint32_t)__builtin_clz(np);
    uint64_t merge = (uint64_t)nc + np, by_p = np * lgc, by_c = nc * lgp;
    if (by_p < merge && by_p <= by_c) {
        for (uint32_t j = 0; j < np; j++) {
            const uint32_t *hit = bsearch(&p[j], cand, nc, sizeof(uint32_t), sel_u32_cmp);
            if (hit != NULL)
                flag[hit - cand] = 1;
        }
        return;
    }
    if (by_c < merge) {
        for (uint32_t i = 0; i < nc; i++)
            if (bsearch(&cand[i], p, np, sizeof(uint32_t), sel_u32_cmp) != NULL)
                flag[i] = 1;
        return;
    }
    uint32_t i = 0, j = 0;
    while (i < nc && j < np) {
        if (cand[i] < p[j]) {
            i++;
        } else if (cand[i] > p[j]) {
            j++;
        } else {
            flag[i++] = 1;
            j++;
        }
    }
}

/* Keep cand[i] where flag[i] == want; returns the new count. */
static uint32_t
sel_compact(uint32_t *cand, uint32_t nc, const uint8_t *flag, uint8_t want)
{
    uint32_t w = 0;
    for (uint32_t i = 0; i < nc; i++)
        if (flag[i] == want)
            cand[w++] = cand[i];
    return w;
}

/* Filter cand[0..*nc) by term t. */
static int
sel_apply(const struct qt_catalog *c, const struct sel_term *t, uint32_t *cand, uint32_t *nc)
{
    qt_assert(!t->keep_all && !t->drop_all);
    if (!t->include && t->total == 0)
        return 0;
    uint8_t *flag = qt_calloc(*nc + 1, 1);
    if (flag == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (selection)");
    for (uint32_t k = 0; k < t->n; k++) {
        const struct qt_catmem_list *p = sel_posting(c, t->tvids[k]);
        sel_mark(cand, *nc, p->v, p->n, flag);
    }
    *nc = sel_compact(cand, *nc, flag, (uint8_t)t->include);
    qt_free(flag);
    return 0;
}

/* The candidates to start from: the smallest include term's postings
 * intersected with the base posting when that term is smaller than the base,
 * else a copy of the base.  *pivot = the term used (or nt). */
static int
sel_start(const struct qt_catalog *c, const struct qt_catmem_list *base, const struct sel_term *t,
          uint32_t nt, uint32_t **out, uint32_t *nout, uint32_t *pivot)
{
    *pivot = nt;
    uint64_t best = base->n;
    for (uint32_t i = 0; i < nt; i++)
        if (t[i].include && t[i].total < best) {
            best = t[i].total;
            *pivot = i;
        }
    uint32_t *v = qt_malloc((best + 1) * sizeof(uint32_t));
    uint8_t *flag = *pivot < nt ? qt_calloc(best + 1, 1) : NULL;
    if (v == NULL || (*pivot < nt && flag == NULL)) {
        qt_free(v);
        return qt_fail(QT_ENOMEM, "catalog: out of memory (selection)");
    }
    uint32_t n = 0;
    if (*pivot == nt) {
        if (base->n > 0)
            memcpy(v, base->v, (size_t)base->n * sizeof(uint32_t));
        n = base->n;
    } else {
        for (uint32_t k = 0; k < t[*pivot].n; k++) {
            const struct qt_catmem_list *p = sel_posting(c, t[*pivot].tvids[k]);
            memcpy(v + n, p->v, (size_t)p->n * sizeof(uint32_t));
            n += p->n;
        }
        if (t[*pivot].n > 1) /* postings of one key's values are disjoint */
            qsort(v, n, sizeof(uint32_t), sel_u32_cmp);
        sel_mark(v, n, base->v, base->n, flag);
        n = sel_compact(v, n, flag, 1);
        qt_free(flag);
    }
    *out = v;
    *nout = n;
    return 0;
}

static int
sel_validate(const struct qt_tag_matcher *m, uint32_t nm)
{
    if (nm > QT_CATALOG_MATCHERS_MAX)
        return qt_fail(QT_ELIMIT, "catalog: more than QT_CATALOG_MATCHERS_MAX matchers");
    for (uint32_t i = 0; i < nm; i++) {
        if (m[i].op < QT_MATCH_EQ || m[i].op > QT_MATCH_IN)
            return qt_fail(QT_EINVAL, "catalog: unknown matcher op");
        if (m[i].op == QT_MATCH_IN && m[i].nvalues > QT_CATALOG_IN_VALUES_MAX)
            return qt_fail(QT_ELIMIT, "catalog: IN list longer than QT_CATALOG_IN_VALUES_MAX");
        if (m[i].op == QT_MATCH_IN && m[i].nvalues > 0 && m[i].values == NULL)
            return qt_fail(QT_EINVAL, "catalog: IN list without values");
    }
    return 0;
}

/* The base posting: the measurement's, or the (measurement, field) one. */
static const struct qt_catmem_list *
sel_base(struct qt_catalog *c, struct qt_str meas, const struct qt_str *field, uint32_t *mid,
         uint32_t *fid)
{
    *fid = QT_CATMEM_NONE;
    *mid = qt_catmem_dict_find(&c->meas, meas.p, meas.len, qt_hash64(meas.p, meas.len));
    if (*mid == QT_CATMEM_NONE)
        return NULL;
    if (field == NULL)
        return &((const struct cat_meas *)qt_catmem_vec_at(&c->meas_data, *mid))->sids;
    *fid = qt_catmem_dict_find(&c->fields, field->p, field->len, qt_hash64(field->p, field->len));
    if (*fid == QT_CATMEM_NONE)
        return NULL;
    uint8_t pair[8];
    qt_store_le32(pair, *mid);
    qt_store_le32(pair + 4, *fid);
    uint32_t mfid = qt_catmem_dict_find(&c->mfpairs, pair, 8, qt_hash64(pair, 8));
    return mfid == QT_CATMEM_NONE ? NULL : qt_catmem_vec_at(&c->mf_post, mfid);
}

/* Resolve terms and compute the result (idx_lock held shared). */
static int
sel_run(struct qt_catalog *c, struct qt_str meas, const struct qt_str *field,
        const struct qt_tag_matcher *m, uint32_t nm, const struct sel_re *re,
        pcre2_match_context *mc, struct sel_term *t, uint32_t **out, uint32_t *nout)
{
    uint32_t mid, fid, pivot, *cand = NULL, nc = 0;
    const struct qt_catmem_list *base = sel_base(c, meas, field, &mid, &fid);
    if (base == NULL || base->n == 0)
        return 0;
    for (uint32_t i = 0; i < nm; i++) {
        int rc = sel_resolve(c, &m[i], &re[i], mc, &t[i]);
        if (rc != 0)
            return rc;
        if (t[i].drop_all || (t[i].include && t[i].n == 0))
            return 0;
        for (uint32_t k = 0; k < t[i].n; k++)
            t[i].total += sel_posting(c, t[i].tvids[k])->n;
    }
    int rc = sel_start(c, base, t, nm, &cand, &nc, &pivot);
    for (uint32_t i = 0; rc == 0 && i < nm && nc > 0; i++)
        if (i != pivot && !t[i].keep_all)
            rc = sel_apply(c, &t[i], cand, &nc);
    if (rc != 0 || nc == 0) {
        qt_free(cand);
        return rc;
    }
    *out = cand;
    *nout = nc;
    return 0;
}

int
qt_catalog_select(struct qt_catalog *c, struct qt_str measurement, const struct qt_str *field,
                  const struct qt_tag_matcher *m, uint32_t nm, uint32_t max_series, uint32_t **sids,
                  uint32_t *n)
{
    qt_assert(c != NULL && sids != NULL && n != NULL);
    qt_assert(m != NULL || nm == 0);
    *sids = NULL;
    *n = 0;
    int rc = sel_validate(m, nm);
    if (rc != 0)
        return rc;
    struct sel_re re[QT_CATALOG_MATCHERS_MAX];
    struct sel_term t[QT_CATALOG_MATCHERS_MAX];
    memset(re, 0, sizeof(re));
    memset(t, 0, sizeof(t));
    pcre2_general_context *gc = pcre2_general_context_create(sel_re_malloc, sel_re_free, NULL);
    pcre2_match_context *mc = gc != NULL ? pcre2_match_context_create(gc) : NULL;
    if (mc == NULL)
        rc = qt_fail(QT_ENOMEM, "catalog: out of memory (regex)");
    else
        pcre2_set_match_limit(mc, SEL_REGEX_MATCH_LIMIT);
    for (uint32_t i = 0; rc == 0 && i < nm; i++)
        if (m[i].op == QT_MATCH_RE || m[i].op == QT_MATCH_NRE)
            rc = sel_re_compile(&m[i], gc, &re[i]);
    if (rc == 0) {
        pthread_rwlock_rdlock(&c->idx_lock);
        rc = sel_run(c, measurement, field, m, nm, re, mc, t, sids, n);
        pthread_rwlock_unlock(&c->idx_lock);
    }
    if (rc == 0 && *n > max_series) {
        qt_free(*sids);
        *sids = NULL;
        *n = 0;
        rc = qt_fail(QT_ELIMIT, "catalog: selection matches more series than allowed");
    }
    for (uint32_t i = 0; i < nm; i++) {
        pcre2_match_data_free(re[i].md);
        pcre2_code_free(re[i].code);
        qt_free(t[i].tvids);
    }
    pcre2_match_context_free(mc);
    pcre2_general_context_free(gc);
    return rc;
}

/* ==== listings =========================================================== */

void
qt_catalog_strlist_free(struct qt_strlist *l)
{
    qt_free(l);
}

static int
strlist_cmp(const void *a, const void *b)
{
    return qt_serieskey_cmp(*(const struct qt_str *)a, *(const struct qt_str *)b);
}

/* Sort items[0..n) and copy them into one allocation. */
static int
strlist_build(struct qt_str *items, uint32_t n, struct qt_strlist **out)
{
    qsort(items, n, sizeof(*items), strlist_cmp);
    size_t bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        bytes += items[i].len;
    size_t head = sizeof(struct qt_strlist) + (size_t)n * sizeof(struct qt_str);
    struct qt_strlist *l = qt_malloc(head + bytes + 1);
    if (l == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (listing)");
    l->n = n;
    l->items = (struct qt_str *)(l + 1);
    char *p = (char *)l + head;
    for (uint32_t i = 0; i < n; i++) {
        if (items[i].len > 0)
            memcpy(p, items[i].p, items[i].len);
        l->items[i] = (struct qt_str){p, items[i].len};
        p += items[i].len;
    }
    *out = l;
    return 0;
}

/* Names of ids ids[0..n) in dictionary d (skip bytes of prefix), listed. */
static int
list_names(const struct qt_catmem_dict *d, const uint32_t *ids, uint32_t n, uint32_t skip,
           struct qt_strlist **out)
{
    struct qt_str *items = qt_malloc(((size_t)n + 1) * sizeof(*items));
    if (items == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (listing)");
    for (uint32_t i = 0; i < n; i++) {
        const struct qt_catmem_dent *e = qt_catmem_dict_at(d, ids != NULL ? ids[i] : i);
        qt_assert(e->len >= skip);
        items[i] = (struct qt_str){(const char *)e->p + skip, e->len - skip};
    }
    int rc = strlist_build(items, n, out);
    qt_free(items);
    return rc;
}

static uint32_t
list_mid(struct qt_catalog *c, struct qt_str meas)
{
    return qt_catmem_dict_find(&c->meas, meas.p, meas.len, qt_hash64(meas.p, meas.len));
}

int
qt_catalog_list_measurements(struct qt_catalog *c, struct qt_strlist **out)
{
    qt_assert(c != NULL && out != NULL);
    pthread_rwlock_rdlock(&c->idx_lock);
    int rc = list_names(&c->meas, NULL, c->meas.n, 0, out);
    pthread_rwlock_unlock(&c->idx_lock);
    return rc;
}

int
qt_catalog_list_fields(struct qt_catalog *c, struct qt_str measurement, struct qt_strlist **out)
{
    qt_assert(c != NULL && out != NULL);
    pthread_rwlock_rdlock(&c->idx_lock);
    uint32_t mid = list_mid(c, measurement);
    const struct cat_meas *md = mid == QT_CATMEM_NONE ? NULL : qt_catmem_vec_at(&c->meas_data, mid);
    int rc =
        list_names(&c->fields, md != NULL ? md->fids.v : NULL, md != NULL ? md->fids.n : 0, 0, out);
    pthread_rwlock_unlock(&c->idx_lock);
    return rc;
}

int
qt_catalog_list_tag_keys(struct qt_catalog *c, const struct qt_str *measurement,
                         struct qt_strlist **out)
{
    qt_assert(c != NULL && out != NULL);
    pthread_rwlock_rdlock(&c->idx_lock);
    int rc;
    if (measurement == NULL) {
        rc = list_names(&c->tkeys, NULL, c->tkeys.n, 0, out);
    } else {
        uint32_t mid = list_mid(c, *measurement);
        const struct cat_meas *md =
            mid == QT_CATMEM_NONE ? NULL : qt_catmem_vec_at(&c->meas_data, mid);
        rc = list_names(&c->tkeys, md != NULL ? md->kids.v : NULL, md != NULL ? md->kids.n : 0, 0,
                        out);
    }
    pthread_rwlock_unlock(&c->idx_lock);
    return rc;
}

/* True when posting p holds a series of measurement mid. */
static bool
list_posting_has_meas(const struct qt_catalog *c, const struct qt_catmem_list *p, uint32_t mid)
{
    for (uint32_t j = 0; j < p->n; j++)
        if (cat_group_at(c, cat_series_at(c, p->v[j])->gid)->mid == mid)
            return true;
    return false;
}

static int
list_values_locked(struct qt_catalog *c, struct qt_str key, const struct qt_str *meas,
                   struct qt_strlist **out)
{
    uint32_t kid = qt_catmem_dict_find(&c->tkeys, key.p, key.len, qt_hash64(key.p, key.len));
    uint32_t mid = meas != NULL ? list_mid(c, *meas) : QT_CATMEM_NONE;
    if (kid == QT_CATMEM_NONE || (meas != NULL && mid == QT_CATMEM_NONE))
        return list_names(&c->tpairs, NULL, 0, 4, out);
    const struct cat_tkey *td = qt_catmem_vec_at(&c->tkey_data, kid);
    uint32_t *ids = qt_malloc(((size_t)td->tvids.n + 1) * sizeof(uint32_t));
    if (ids == NULL)
        return qt_fail(QT_ENOMEM, "catalog: out of memory (listing)");
    uint32_t n = 0;
    for (uint32_t i = 0; i < td->tvids.n; i++)
        if (meas == NULL || list_posting_has_meas(c, sel_posting(c, td->tvids.v[i]), mid))
            ids[n++] = td->tvids.v[i];
    int rc = list_names(&c->tpairs, ids, n, 4, out);
    qt_free(ids);
    return rc;
}

int
qt_catalog_list_tag_values(struct qt_catalog *c, struct qt_str key,
                           const struct qt_str *measurement, struct qt_strlist **out)
{
    qt_assert(c != NULL && out != NULL);
    pthread_rwlock_rdlock(&c->idx_lock);
    int rc = list_values_locked(c, key, measurement, out);
    pthread_rwlock_unlock(&c->idx_lock);
    return rc;
}

size_t
qt_catalog_memory_bytes(struct qt_catalog *c)
{
    qt_assert(c != NULL);
    pthread_mutex_lock(&c->wlock); /* keytab's retired arrays change under it */
    pthread_rwlock_rdlock(&c->idx_lock);
    const struct qt_catmem_dict *d[] = {&c->fields, &c->meas,    &c->tkeys,
                                        &c->tpairs, &c->mfpairs, &c->mkpairs};
    const struct qt_catmem_vec *v[] = {&c->series,    &c->groups,  &c->meas_data,
                                       &c->tkey_data, &c->tv_post, &c->mf_post};
    const struct qt_catmem_htab *h[] = {&c->keytab, &c->id_other, &c->gkeytab, &c->gid_other};
    size_t sum = sizeof(*c) + QT_CATALOG_WRITE_BUF + c->arena.bytes_total + c->list_bytes +
                 (size_t)QT_CATALOG_READER_SLOTS * sizeof(struct cat_rdslot);
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
        sum += d[i]->tab.bytes_total + d[i]->ents.bytes_total;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        sum += v[i]->bytes_total;
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
        sum += h[i]->bytes_total;
    pthread_rwlock_unlock(&c->idx_lock);
    pthread_mutex_unlock(&c->wlock);
    return sum;
}
