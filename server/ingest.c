/*
 * ingest.c -- parsed points to storage batches, and byte streams to points
 * (ingest.h).
 *
 * Batch invariants: lines[0..n) and fields[0..nf) point only into arena;
 * lines[i].fields are consecutive slices of fields in line order; points ==
 * sum of lines[i].n_fields.  An empty builder always has room for one
 * maximal line (checked at init), so QT_INGEST_FULL always makes progress
 * after a commit.
 *
 * Stream invariants: carry_len <= QT_ILP_BATCH_BUF_MIN; the carry holds
 * bytes of exactly one unfinished line (no '\n'), already counted in
 * `bytes` but not yet consumed by the splitter; the splitter is never in
 * its "discarding" state while carry_len > 0.
 */
#include "server/ingest.h"

#include "format/qt_alloc.h"
#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"

#include <stdio.h>
#include <string.h>

/* Arena one maximal line needs: its canonical key plus unescaped field names
 * and string values, which are never longer than the line itself. */
#define INGEST_LINE_ARENA_MAX ((size_t)QT_SERIES_KEY_MAX + QT_LINE_MAX + QT_SERIES_KEY_MAX)

int
qt_ingest_batch_init(struct qt_ingest_batch *b, uint32_t lines_cap, size_t arena_bytes)
{
    qt_assert(b != NULL);
    qt_assert(lines_cap >= 1 && lines_cap <= QT_SRV_BATCH_LINES_CEIL);
    memset(b, 0, sizeof(*b));
    b->cap = lines_cap;
    b->fcap = lines_cap * 8u > QT_FIELDS_MAX ? lines_cap * 8u : QT_FIELDS_MAX;
    b->arena_cap = arena_bytes > INGEST_LINE_ARENA_MAX ? arena_bytes : INGEST_LINE_ARENA_MAX;
    b->lines = qt_malloc(sizeof(*b->lines) * b->cap);
    b->origin = qt_malloc(sizeof(*b->origin) * b->cap);
    b->fields = qt_malloc(sizeof(*b->fields) * b->fcap);
    b->arena = qt_malloc(b->arena_cap);
    if (b->lines == NULL || b->origin == NULL || b->fields == NULL || b->arena == NULL) {
        qt_ingest_batch_deinit(b);
        return QT_ENOMEM;
    }
    return 0;
}

void
qt_ingest_batch_deinit(struct qt_ingest_batch *b)
{
    if (b == NULL)
        return;
    qt_free(b->lines);
    qt_free(b->origin);
    qt_free(b->fields);
    qt_free(b->arena);
    memset(b, 0, sizeof(*b));
}

void
qt_ingest_batch_reset(struct qt_ingest_batch *b)
{
    qt_assert(b != NULL);
    b->n = 0;
    b->nf = 0;
    b->used = 0;
    b->points = 0;
}

/* Arena bytes pt needs: key, field names, string values. */
static size_t
point_arena_bytes(const struct qt_ilp_point *pt)
{
    size_t need = pt->key_len;
    for (uint32_t i = 0; i < pt->fields_count; i++) {
        need += pt->fields[i].key.len;
        if (pt->fields[i].type == QT_ILP_STRING)
            need += pt->fields[i].v.s.len;
    }
    return need;
}

static char *
arena_copy(struct qt_ingest_batch *b, const char *p, size_t n)
{
    qt_assert(b->used + n <= b->arena_cap);
    char *dst = b->arena + b->used;
    if (n > 0)
        memcpy(dst, p, n);
    b->used += n;
    return dst;
}

static void
convert_field(struct qt_ingest_batch *b, const struct qt_ilp_field *in, struct qt_batch_field *out)
{
    out->name = arena_copy(b, in->key.ptr, in->key.len);
    out->name_len = in->key.len;
    switch (in->type) {
    case QT_ILP_FLOAT: out->vtype = QT_VT_FLOAT, out->v.f = in->v.f; break;
    case QT_ILP_INT: out->vtype = QT_VT_INT, out->v.i = in->v.i; break;
    case QT_ILP_BOOL: out->vtype = QT_VT_BOOL, out->v.b = in->v.b ? 1 : 0; break;
    default:
        qt_assert(in->type == QT_ILP_STRING);
        out->vtype = QT_VT_STRING;
        out->v.s.p = arena_copy(b, in->v.s.ptr, in->v.s.len);
        out->v.s.len = in->v.s.len;
    }
}

int
qt_ingest_batch_add(struct qt_ingest_batch *b, const struct qt_ilp_point *pt, uint64_t origin)
{
    qt_assert(b != NULL && pt != NULL);
    qt_assert(pt->fields_count >= 1 && pt->fields_count <= QT_FIELDS_MAX);
    size_t need = point_arena_bytes(pt);
    if (need > INGEST_LINE_ARENA_MAX)
        return qt_fail(QT_ELIMIT, "ingest: line needs more memory than one batch holds");
    if (b->n == b->cap || b->nf + pt->fields_count > b->fcap || b->used + need > b->arena_cap) {
        qt_assert(b->n > 0); /* an empty builder always has room */
        return QT_INGEST_FULL;
    }
    size_t key_len = 0;
    char *key = b->arena + b->used;
    int rc = qt_ilp_group_key(pt, key, b->arena_cap - b->used, &key_len);
    qt_assert(rc == 0 && key_len == pt->key_len);
    b->used += key_len;
    struct qt_batch_field *f = b->fields + b->nf;
    for (uint32_t i = 0; i < pt->fields_count; i++)
        convert_field(b, &pt->fields[i], &f[i]);
    b->lines[b->n] = (struct qt_batch_line){.key = key,
                                            .key_len = (uint32_t)key_len,
                                            .ts = pt->timestamp_ns,
                                            .n_fields = pt->fields_count,
                                            .fields = f};
    b->origin[b->n] = origin;
    b->n++;
    b->nf += pt->fields_count;
    b->points += pt->fields_count;
    return 0;
}

struct commit_ctx {
    const struct qt_ingest_batch *b;
    qt_ingest_reject_fn fn;
    void *arg;
};

static void
commit_reject(void *arg, uint32_t line, int code, const char *reason)
{
    struct commit_ctx *x = arg;
    qt_assert(line < x->b->n);
    if (x->fn != NULL)
        x->fn(x->arg, x->b->origin[line], &x->b->lines[line], code, reason);
}

int
qt_ingest_batch_commit(struct qt_ingest_batch *b, struct qt_db *db, qt_ingest_reject_fn reject,
                       void *arg, struct qt_write_result *res)
{
    qt_assert(b != NULL && db != NULL);
    struct qt_write_result r = {0};
    int rc = 0;
    if (b->n > 0) {
        struct commit_ctx x = {.b = b, .fn = reject, .arg = arg};
        rc = qt_db_write(db, b->lines, b->n, commit_reject, &x, &r);
    }
    qt_ingest_batch_reset(b);
    if (res != NULL)
        *res = r;
    return rc;
}

/* ---- streams ------------------------------------------------------------------ */

/* The splitter's parse hook: enforce line_max, then the protocol parser. */
static int
stream_parse(const void *arg, const struct qt_ilp_opts *opts, const uint8_t *line, size_t len,
             char *scratch, size_t scratch_cap, struct qt_ilp_point *pt)
{
    const struct qt_ingest_stream *s = arg;
    size_t n = len > 0 && line[len - 1] == '\r' ? len - 1 : len;
    if (n > s->o.line_max) {
        static _Thread_local char why[80];
        snprintf(why, sizeof(why), "ingest: line exceeds line-max (%u bytes)", s->o.line_max);
        pt->error_offset = s->o.line_max;
        return qt_fail(QT_ELIMIT, why);
    }
    if (s->o.proto == QT_INGEST_GRAPHITE)
        return qt_graphite_parse_line(s->o.gcfg, opts, line, len, scratch, scratch_cap, pt);
    return qt_ilp_parse_line(opts, line, len, scratch, scratch_cap, pt);
}

static int
stream_point(void *ctx, const struct qt_ilp_point *pt)
{
    struct qt_ingest_stream *s = ctx;
    uint64_t origin = s->o.origin_is_line ? s->split.line_no : s->o.origin;
    int rc = qt_ingest_batch_add(s->dst, pt, origin);
    if (rc != QT_ELIMIT)
        return rc;
    /* Cannot happen for lines within QT_LINE_MAX; reported as a bad line. */
    if (s->o.on_error != NULL) {
        struct qt_ilp_line_error e = {.line_no = s->split.line_no,
                                      .offset = s->split.offset,
                                      .column = 1,
                                      .code = QT_ELIMIT,
                                      .reason = qt_err_detail()};
        s->o.on_error(s->o.err_arg, &e);
    }
    s->split.lines_bad++;
    return 0;
}

static int
stream_error(void *ctx, const struct qt_ilp_line_error *err)
{
    struct qt_ingest_stream *s = ctx;
    if (s->o.on_error != NULL)
        s->o.on_error(s->o.err_arg, err);
    return 0;
}

void
qt_ingest_stream_init(struct qt_ingest_stream *s, const struct qt_ingest_stream_opts *o,
                      struct qt_ilp_point *point, char *scratch, size_t scratch_cap)
{
    qt_assert(s != NULL && o != NULL && o->on_full != NULL);
    qt_assert(o->line_max >= 1 && o->line_max <= QT_LINE_MAX);
    memset(s, 0, sizeof(*s));
    s->o = *o;
    struct qt_ilp_opts io = {.precision = o->precision, .now_ns = 0};
    qt_ilp_batch_init(&s->split, &io, point, scratch, scratch_cap, stream_point, stream_error, s);
    s->split.parse = stream_parse;
    s->split.parse_arg = s;
}

void
qt_ingest_stream_deinit(struct qt_ingest_stream *s)
{
    if (s == NULL)
        return;
    qt_free(s->carry);
    s->carry = NULL;
    s->carry_len = 0;
    s->carry_cap = 0;
}

/* Feed buf through the splitter, committing through on_full whenever the
 * batch fills, until every complete line is consumed. */
static int
feed_all(struct qt_ingest_stream *s, const uint8_t *buf, size_t len, bool final, size_t *consumed)
{
    size_t off = 0;
    for (;;) {
        size_t c = 0;
        int rc = qt_ilp_batch_feed(&s->split, buf + off, len - off, final, &c);
        off += c;
        if (rc == QT_INGEST_FULL) {
            rc = s->o.on_full(s->o.full_arg, s->dst);
            qt_assert(rc != 0 || s->dst->n == 0);
            if (rc == 0)
                continue;
        }
        *consumed = off;
        return rc;
    }
}

/* Make room for `need` carry bytes (need <= QT_ILP_BATCH_BUF_MIN). */
static int
carry_reserve(struct qt_ingest_stream *s, size_t need)
{
    qt_assert(need <= QT_ILP_BATCH_BUF_MIN);
    if (need <= s->carry_cap)
        return 0;
    size_t cap = s->carry_cap > 0 ? s->carry_cap : 1024;
    while (cap < need)
        cap *= 2;
    if (cap > QT_ILP_BATCH_BUF_MIN)
        cap = QT_ILP_BATCH_BUF_MIN;
    uint8_t *p = qt_realloc(s->carry, cap);
    if (p == NULL)
        return QT_ENOMEM;
    s->carry = p;
    s->carry_cap = (uint32_t)cap;
    return 0;
}

/* No memory to keep a partial line: drop it and the rest of it. */
static int
carry_lost(struct qt_ingest_stream *s)
{
    s->carry_len = 0;
    s->split.discarding = true;
    s->split.lines_bad++;
    if (s->o.on_error != NULL) {
        struct qt_ilp_line_error e = {.line_no = s->split.line_no,
                                      .offset = s->split.offset,
                                      .column = 1,
                                      .code = QT_ENOMEM,
                                      .reason = "ingest: no memory for a partial line"};
        s->o.on_error(s->o.err_arg, &e);
    }
    return QT_ENOMEM;
}

/* Complete the carried partial line with the head of data.  On return
 * *skip bytes of data are consumed (or all of it now sits in the carry). */
static int
feed_carry(struct qt_ingest_stream *s, const uint8_t *data, size_t len, bool final, size_t *skip)
{
    size_t old = s->carry_len;
    size_t take = len < QT_ILP_BATCH_BUF_MIN - old ? len : QT_ILP_BATCH_BUF_MIN - old;
    if (carry_reserve(s, old + take) != 0)
        return carry_lost(s);
    if (take > 0)
        memcpy(s->carry + old, data, take);
    s->carry_len = (uint32_t)(old + take);
    size_t c = 0;
    int rc = feed_all(s, s->carry, s->carry_len, final && take == len, &c);
    if (rc != 0) { /* storage failed: the stream is abandoned */
        s->carry_len = 0;
        *skip = len;
        return rc;
    }
    if (c >= old) { /* the old partial line is done; continue from data */
        s->carry_len = 0;
        *skip = c - old;
        return rc;
    }
    /* Still no newline: every new byte went into the carry (a full carry
     * would have been reported as over-long and consumed). */
    qt_assert(take == len && !final);
    memmove(s->carry, s->carry + c, s->carry_len - c);
    s->carry_len -= (uint32_t)c;
    *skip = len;
    return rc;
}

int
qt_ingest_stream_feed(struct qt_ingest_stream *s, struct qt_ingest_batch *b, const uint8_t *data,
                      size_t len, bool final, int64_t now_ns)
{
    qt_assert(s != NULL && b != NULL);
    qt_assert(data != NULL || len == 0);
    static const uint8_t none[1];
    if (data == NULL)
        data = none; /* no arithmetic on a null pointer below */
    s->dst = b;
    s->split.opts.now_ns = now_ns;
    s->bytes += len;
    int rc = 0;
    if (s->carry_len > 0) {
        size_t skip = 0;
        rc = feed_carry(s, data, len, final, &skip);
        data += skip;
        len -= skip;
        if (rc != 0 || len == 0)
            goto out;
    }
    size_t c = 0;
    rc = feed_all(s, data, len, final, &c);
    if (rc == 0 && c < len) {
        size_t rest = len - c;
        qt_assert(!final && rest <= QT_LINE_MAX + 1);
        if (carry_reserve(s, rest) != 0) {
            rc = carry_lost(s);
            goto out;
        }
        memcpy(s->carry, data + c, rest);
        s->carry_len = (uint32_t)rest;
    }
out:
    s->dst = NULL;
    return rc;
}
