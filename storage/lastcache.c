/*
 * lastcache.c -- latest point per series (see lastcache.h).
 *
 * Entries live in a two-level table indexed by sid (chunks of 64K entries
 * allocated on first touch and never moved).  A stripe of mutexes, chosen by
 * sid, guards entries; a string value is a heap copy owned by its entry.
 * Invariant: state != EMPTY implies ts/vtype/value are set; a string entry
 * owns exactly one allocation of v.s.len bytes (or none when len == 0).
 */
#include "lastcache.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define LC_CHUNK_BITS  16u
#define LC_CHUNK_SLOTS (1u << LC_CHUNK_BITS)
#define LC_TOP_SLOTS   (1u << (32u - LC_CHUNK_BITS))
#define LC_STRIPES     256u

/* 24 bytes: it is paid by every series (DESIGN.md "Memory per series").
 * A string value's heap copy is held in `str` (its length in str_len);
 * other types use `v`. */
struct lc_entry {
    int64_t ts;
    union {
        union qt_value v;
        char *str;
    } u;
    uint32_t str_len;
    uint8_t vtype;
    uint8_t state;
};
static_assert(sizeof(struct lc_entry) == 24, "last-value cache entry stays at 24 bytes");

struct qt_lastcache {
    _Atomic(struct lc_entry *) top[LC_TOP_SLOTS];
    pthread_mutex_t stripe[LC_STRIPES];
};

int
qt_lc_create(struct qt_lastcache **out)
{
    qt_assert(out != NULL);
    struct qt_lastcache *lc = qt_calloc(1, sizeof(*lc));
    if (lc == NULL)
        return QT_ENOMEM;
    for (uint32_t i = 0; i < LC_STRIPES; i++)
        pthread_mutex_init(&lc->stripe[i], NULL);
    *out = lc;
    return 0;
}

static void
lc_clear_chunks(struct qt_lastcache *lc, bool release)
{
    for (uint32_t t = 0; t < LC_TOP_SLOTS; t++) {
        struct lc_entry *chunk = atomic_load(&lc->top[t]);
        if (chunk == NULL)
            continue;
        for (uint32_t i = 0; i < LC_CHUNK_SLOTS; i++) {
            if (chunk[i].vtype == QT_VT_STRING)
                qt_free(chunk[i].u.str);
            memset(&chunk[i], 0, sizeof(chunk[i]));
        }
        if (release) {
            qt_free(chunk);
            atomic_store(&lc->top[t], NULL);
        }
    }
}

void
qt_lc_destroy(struct qt_lastcache *lc)
{
    if (lc == NULL)
        return;
    lc_clear_chunks(lc, true);
    for (uint32_t i = 0; i < LC_STRIPES; i++)
        pthread_mutex_destroy(&lc->stripe[i]);
    qt_free(lc);
}

void
qt_lc_reset(struct qt_lastcache *lc)
{
    for (uint32_t i = 0; i < LC_STRIPES; i++)
        pthread_mutex_lock(&lc->stripe[i]);
    lc_clear_chunks(lc, false);
    for (uint32_t i = LC_STRIPES; i > 0; i--)
        pthread_mutex_unlock(&lc->stripe[i - 1]);
}

static struct lc_entry *
lc_entry(struct qt_lastcache *lc, uint32_t sid, bool create)
{
    uint32_t t = sid >> LC_CHUNK_BITS;
    struct lc_entry *chunk = atomic_load_explicit(&lc->top[t], memory_order_acquire);
    if (chunk == NULL) {
        if (!create)
            return NULL;
        struct lc_entry *fresh = qt_calloc(LC_CHUNK_SLOTS, sizeof(*fresh));
        if (fresh == NULL)
            return NULL;
        struct lc_entry *expected = NULL;
        if (atomic_compare_exchange_strong(&lc->top[t], &expected, fresh)) {
            chunk = fresh;
        } else {
            qt_free(fresh);
            chunk = expected;
        }
    }
    return &chunk[sid & (LC_CHUNK_SLOTS - 1)];
}

/* Store (ts, value) into e, replacing any string it owned. */
static int
lc_store(struct lc_entry *e, int64_t ts, uint8_t vtype, const union qt_value *v,
         const struct qt_str *str)
{
    char *copy = NULL;
    uint32_t len = 0;
    if (vtype == QT_VT_STRING) {
        qt_assert(str != NULL);
        if (str->len > QT_STRING_VALUE_MAX)
            return qt_fail(QT_ELIMIT, "lastcache: string value too long");
        len = str->len;
        if (len > 0) {
            copy = qt_malloc(len);
            if (copy == NULL)
                return QT_ENOMEM;
            memcpy(copy, str->p, len);
        }
    }
    if (e->vtype == QT_VT_STRING)
        qt_free(e->u.str);
    if (vtype == QT_VT_STRING)
        e->u.str = copy;
    else
        e->u.v = *v;
    e->str_len = len;
    e->ts = ts;
    e->vtype = vtype;
    return 0;
}

int
qt_lc_observe(struct qt_lastcache *lc, uint32_t sid, int64_t ts, uint8_t vtype,
              const union qt_value *v, const struct qt_str *str)
{
    qt_assert(lc != NULL);
    qt_assert(v != NULL);
    struct lc_entry *e = lc_entry(lc, sid, true);
    if (e == NULL)
        return QT_ENOMEM;
    int rc = 0;
    pthread_mutex_t *m = &lc->stripe[sid % LC_STRIPES];
    pthread_mutex_lock(m);
    if (e->state == QT_LC_EMPTY || ts >= e->ts) {
        rc = lc_store(e, ts, vtype, v, str);
        if (rc == 0 && e->state == QT_LC_EMPTY)
            e->state = QT_LC_CANDIDATE;
    }
    pthread_mutex_unlock(m);
    return rc;
}

int
qt_lc_seed(struct qt_lastcache *lc, uint32_t sid, bool found, int64_t ts, uint8_t vtype,
           const union qt_value *v, const struct qt_str *str)
{
    qt_assert(lc != NULL);
    qt_assert(!found || v != NULL);
    struct lc_entry *e = lc_entry(lc, sid, true);
    if (e == NULL)
        return QT_ENOMEM;
    int rc = 0;
    pthread_mutex_t *m = &lc->stripe[sid % LC_STRIPES];
    pthread_mutex_lock(m);
    /* Disk wins only when strictly newer: an equal-ts candidate came from a
     * write after the data on disk (WAL replay or live), so it is later. */
    if (found && (e->state == QT_LC_EMPTY || ts > e->ts))
        rc = lc_store(e, ts, vtype, v, str);
    if (rc == 0 && (found || e->state != QT_LC_EMPTY))
        e->state = QT_LC_KNOWN;
    pthread_mutex_unlock(m);
    return rc;
}

enum qt_lc_state
qt_lc_get(struct qt_lastcache *lc, uint32_t sid, struct qt_lc_point *out)
{
    qt_assert(lc != NULL);
    qt_assert(out != NULL);
    struct lc_entry *e = lc_entry(lc, sid, false);
    if (e == NULL)
        return QT_LC_EMPTY;
    pthread_mutex_t *m = &lc->stripe[sid % LC_STRIPES];
    pthread_mutex_lock(m);
    enum qt_lc_state st = (enum qt_lc_state)e->state;
    if (st != QT_LC_EMPTY) {
        out->ts = e->ts;
        out->vtype = e->vtype;
        if (e->vtype == QT_VT_STRING) {
            out->v.s.off = 0;
            out->v.s.len = e->str_len;
            if (e->str_len > 0)
                memcpy(out->strbuf, e->u.str, e->str_len);
        } else {
            out->v = e->u.v;
        }
    }
    pthread_mutex_unlock(m);
    return st;
}
