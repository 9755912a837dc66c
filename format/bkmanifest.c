/*
 * bkmanifest.c -- encode and decode the BACKUP file (bkmanifest.h).
 *
 * The decoder is a strict line reader over buf[0..len): a cursor that
 * never reads past len, every token checked for its exact canonical form,
 * so decode -> encode reproduces the input byte for byte (the fuzz
 * target's oracle).  The checksum line is checked first: a damaged file is
 * QT_ECHECKSUM before anything else is believed.
 */
#include "bkmanifest.h"

#include "qt_assert.h"
#include "qt_err.h"
#include "qt_hash.h"

#include <string.h>

#define BKM_MAGIC   "qtdb-backup 1\n"
#define BKM_SUM_LEN 21u /* "sum " + 16 hex + "\n" */

static bool
bkm_name_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
           c == '_' || c == '-';
}

bool
qt_bkm_id_ok(const char *id, size_t len)
{
    if (len == 0 || len > QT_BACKUP_ID_MAX || id[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!bkm_name_char(id[i]))
            return false;
    }
    return true;
}

bool
qt_bkm_path_ok(const char *p, size_t len)
{
    if (len == 0 || len > QT_BACKUP_PATH_MAX)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '/') {
            if (!bkm_name_char(p[i]))
                return false;
            continue;
        }
        size_t n = i - start;
        if (n == 0 || (n == 1 && p[start] == '.') ||
            (n == 2 && p[start] == '.' && p[start + 1] == '.'))
            return false;
        start = i + 1;
    }
    return true;
}

/* ---- encode ------------------------------------------------------------ */

struct bkm_out {
    uint8_t *p;
    size_t cap, len;
    bool full;
};

static void
out_bytes(struct bkm_out *o, const void *s, size_t n)
{
    if (o->full || o->cap - o->len < n) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void
out_str(struct bkm_out *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}

static void
out_u64(struct bkm_out *o, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    out_bytes(o, tmp + sizeof(tmp) - n, n);
}

static void
out_i64(struct bkm_out *o, int64_t v)
{
    if (v < 0) {
        out_str(o, "-");
        out_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        out_u64(o, (uint64_t)v);
    }
}

static void
out_hex(struct bkm_out *o, uint64_t v)
{
    char tmp[16];
    for (int i = 15; i >= 0; i--, v >>= 4)
        tmp[i] = "0123456789abcdef"[v & 15];
    out_bytes(o, tmp, 16);
}

size_t
qt_bkm_bound(const struct qt_bkm_file *files, uint32_t n)
{
    /* header lines: magic + 2 ids + 3 integers + count, generously */
    size_t size = 64u + 2u * (QT_BACKUP_ID_MAX + 16u) + 3u * 40u + 32u + BKM_SUM_LEN;
    for (uint32_t i = 0; i < n; i++)
        size += 2u + 21u + 17u + 2u + files[i].path_len + 1u;
    return size;
}

static int
bkm_check_files(const struct qt_bkm_file *files, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (!qt_bkm_path_ok(files[i].path, files[i].path_len))
            return qt_fail(QT_EINVAL, "backup manifest: invalid path");
        if (i == 0)
            continue;
        const struct qt_bkm_file *a = &files[i - 1], *b = &files[i];
        size_t m = a->path_len < b->path_len ? a->path_len : b->path_len;
        int c = memcmp(a->path, b->path, m);
        if (c > 0 || (c == 0 && a->path_len >= b->path_len))
            return qt_fail(QT_EINVAL, "backup manifest: paths not strictly ascending");
    }
    return 0;
}

int
qt_bkm_encode(const struct qt_bkm_hdr *h, const struct qt_bkm_file *files, uint32_t n, uint8_t *out,
              size_t cap, size_t *out_len)
{
    qt_assert(h != NULL);
    qt_assert(out_len != NULL);
    if (h->n_files != n || n > QT_BACKUP_FILES_MAX)
        return qt_fail(QT_EINVAL, "backup manifest: file count");
    if (!qt_bkm_id_ok(h->id, strnlen(h->id, sizeof(h->id))) ||
        (h->parent[0] != '\0' && !qt_bkm_id_ok(h->parent, strnlen(h->parent, sizeof(h->parent)))))
        return qt_fail(QT_EINVAL, "backup manifest: invalid backup id");
    int rc = bkm_check_files(files, n);
    if (rc != 0)
        return rc;
    struct bkm_out o = {.p = out, .cap = cap};
    out_str(&o, BKM_MAGIC "id ");
    out_str(&o, h->id);
    out_str(&o, "\nparent ");
    out_str(&o, h->parent[0] != '\0' ? h->parent : "-");
    out_str(&o, "\ncreated_ns ");
    out_i64(&o, h->created_ns);
    out_str(&o, "\ngeneration ");
    out_u64(&o, h->generation);
    out_str(&o, "\nwal_checkpoint ");
    out_u64(&o, h->wal_checkpoint);
    out_str(&o, "\nfiles ");
    out_u64(&o, n);
    out_str(&o, "\n");
    for (uint32_t i = 0; i < n; i++) {
        out_str(&o, "f ");
        out_u64(&o, files[i].size);
        out_str(&o, " ");
        out_hex(&o, files[i].xxh3);
        out_str(&o, files[i].linked ? " l " : " n ");
        out_bytes(&o, files[i].path, files[i].path_len);
        out_str(&o, "\n");
    }
    if (o.full)
        return qt_fail(QT_ENOSPACE, "backup manifest: output buffer too small");
    uint64_t sum = qt_hash64(out, o.len);
    out_str(&o, "sum ");
    out_hex(&o, sum);
    out_str(&o, "\n");
    if (o.full)
        return qt_fail(QT_ENOSPACE, "backup manifest: output buffer too small");
    *out_len = o.len;
    return 0;
}

/* ---- decode ------------------------------------------------------------ */

struct bkm_in {
    const uint8_t *p;
    size_t len, pos;
};

static int
in_lit(struct bkm_in *c, const char *s)
{
    size_t n = strlen(s);
    if (c->len - c->pos < n || memcmp(c->p + c->pos, s, n) != 0)
        return qt_fail(QT_ECORRUPT, "backup manifest: unexpected token");
    c->pos += n;
    return 0;
}

/* Canonical unsigned decimal (no leading zero unless "0"). */
static int
in_u64(struct bkm_in *c, uint64_t *v)
{
    size_t s = c->pos;
    uint64_t x = 0;
    while (c->pos < c->len && c->p[c->pos] >= '0' && c->p[c->pos] <= '9') {
        uint64_t d = (uint64_t)(c->p[c->pos] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return qt_fail(QT_ECORRUPT, "backup manifest: number too large");
        x = x * 10 + d;
        c->pos++;
    }
    size_t n = c->pos - s;
    if (n == 0 || (n > 1 && c->p[s] == '0'))
        return qt_fail(QT_ECORRUPT, "backup manifest: malformed number");
    *v = x;
    return 0;
}

static int
in_i64(struct bkm_in *c, int64_t *v)
{
    bool neg = c->pos < c->len && c->p[c->pos] == '-';
    c->pos += neg;
    uint64_t x = 0;
    int rc = in_u64(c, &x);
    if (rc != 0)
        return rc;
    if ((!neg && x > (uint64_t)INT64_MAX) || (neg && (x == 0 || x > (uint64_t)INT64_MAX + 1)))
        return qt_fail(QT_ECORRUPT, "backup manifest: integer out of range");
    *v = neg ? (int64_t)(0 - x) : (int64_t)x;
    return 0;
}

static int
in_hex(struct bkm_in *c, uint64_t *v)
{
    if (c->len - c->pos < 16)
        return qt_fail(QT_ETRUNC, "backup manifest: truncated checksum");
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        uint8_t ch = c->p[c->pos++];
        uint64_t d = ch >= '0' && ch <= '9'   ? (uint64_t)(ch - '0')
                     : ch >= 'a' && ch <= 'f' ? (uint64_t)(ch - 'a' + 10)
                                              : 16u;
        if (d == 16u)
            return qt_fail(QT_ECORRUPT, "backup manifest: checksum is not lower-case hex");
        x = x << 4 | d;
    }
    *v = x;
    return 0;
}

/* A token up to '\n' or ' ' (not included), 1..max bytes. */
static int
in_token(struct bkm_in *c, const char **s, size_t *n, size_t max)
{
    size_t start = c->pos;
    while (c->pos < c->len && c->p[c->pos] != '\n' && c->p[c->pos] != ' ')
        c->pos++;
    *s = (const char *)c->p + start;
    *n = c->pos - start;
    return *n == 0 || *n > max ? qt_fail(QT_ECORRUPT, "backup manifest: bad token length") : 0;
}

static int
in_id(struct bkm_in *c, char *out, bool allow_none)
{
    const char *s;
    size_t n;
    int rc = in_token(c, &s, &n, QT_BACKUP_ID_MAX);
    if (rc != 0)
        return rc;
    if (allow_none && n == 1 && s[0] == '-') {
        out[0] = '\0';
        return 0;
    }
    if (!qt_bkm_id_ok(s, n))
        return qt_fail(QT_ECORRUPT, "backup manifest: invalid backup id");
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* Verify the trailing checksum line; returns the length before it. */
static int
bkm_check_sum(const uint8_t *buf, size_t len, size_t *body)
{
    if (len < sizeof(BKM_MAGIC) - 1 + BKM_SUM_LEN)
        return qt_fail(QT_ETRUNC, "backup manifest: file too short");
    if (memcmp(buf, "qtdb-backup ", 12) != 0)
        return qt_fail(QT_EMAGIC, "backup manifest: not a qtdb BACKUP file");
    if (memcmp(buf, BKM_MAGIC, sizeof(BKM_MAGIC) - 1) != 0)
        return qt_fail(QT_EVERSION, "backup manifest: unknown version");
    struct bkm_in c = {.p = buf, .len = len, .pos = len - BKM_SUM_LEN};
    uint64_t sum = 0;
    int rc = in_lit(&c, "sum ");
    if (rc == 0)
        rc = in_hex(&c, &sum);
    if (rc == 0)
        rc = in_lit(&c, "\n");
    if (rc != 0)
        return rc;
    if (!qt_hash_skip_verify && sum != qt_hash64(buf, len - BKM_SUM_LEN))
        return qt_fail(QT_ECHECKSUM, "backup manifest: checksum mismatch");
    *body = len - BKM_SUM_LEN;
    return 0;
}

static int
bkm_header(struct bkm_in *c, struct qt_bkm_hdr *h)
{
    uint64_t n = 0;
    memset(h, 0, sizeof(*h));
    int rc = in_lit(c, BKM_MAGIC "id ");
    if (rc == 0)
        rc = in_id(c, h->id, false);
    if (rc == 0)
        rc = in_lit(c, "\nparent ");
    if (rc == 0)
        rc = in_id(c, h->parent, true);
    if (rc == 0)
        rc = in_lit(c, "\ncreated_ns ");
    if (rc == 0)
        rc = in_i64(c, &h->created_ns);
    if (rc == 0)
        rc = in_lit(c, "\ngeneration ");
    if (rc == 0)
        rc = in_u64(c, &h->generation);
    if (rc == 0)
        rc = in_lit(c, "\nwal_checkpoint ");
    if (rc == 0)
        rc = in_u64(c, &h->wal_checkpoint);
    if (rc == 0)
        rc = in_lit(c, "\nfiles ");
    if (rc == 0)
        rc = in_u64(c, &n);
    if (rc == 0)
        rc = in_lit(c, "\n");
    if (rc == 0 && n > QT_BACKUP_FILES_MAX)
        rc = qt_fail(QT_ELIMIT, "backup manifest: more files than QT_BACKUP_FILES_MAX");
    /* each file line takes at least 23 bytes: a cheap bound against the length */
    if (rc == 0 && n > (c->len - c->pos) / 23u)
        rc = qt_fail(QT_ECORRUPT, "backup manifest: file count exceeds the file");
    h->n_files = (uint32_t)n;
    return rc;
}

int
qt_bkm_decode_header(const uint8_t *buf, size_t len, struct qt_bkm_hdr *h)
{
    qt_assert(buf != NULL || len == 0);
    qt_assert(h != NULL);
    size_t body = 0;
    int rc = bkm_check_sum(buf, len, &body);
    if (rc != 0)
        return rc;
    struct bkm_in c = {.p = buf, .len = body};
    return bkm_header(&c, h);
}

static int
bkm_file(struct bkm_in *c, struct qt_bkm_file *f)
{
    int rc = in_lit(c, "f ");
    if (rc == 0)
        rc = in_u64(c, &f->size);
    if (rc == 0)
        rc = in_lit(c, " ");
    if (rc == 0)
        rc = in_hex(c, &f->xxh3);
    if (rc == 0 && c->len - c->pos >= 3 && c->p[c->pos] == ' ' && c->p[c->pos + 2] == ' ' &&
        (c->p[c->pos + 1] == 'n' || c->p[c->pos + 1] == 'l')) {
        f->linked = c->p[c->pos + 1] == 'l';
        c->pos += 3;
    } else if (rc == 0) {
        rc = qt_fail(QT_ECORRUPT, "backup manifest: expected ' n ' or ' l '");
    }
    size_t n = 0;
    if (rc == 0)
        rc = in_token(c, &f->path, &n, QT_BACKUP_PATH_MAX);
    if (rc == 0 && !qt_bkm_path_ok(f->path, n))
        rc = qt_fail(QT_ECORRUPT, "backup manifest: invalid path");
    f->path_len = (uint32_t)n;
    if (rc == 0)
        rc = in_lit(c, "\n");
    return rc;
}

int
qt_bkm_decode(const uint8_t *buf, size_t len, struct qt_bkm_hdr *h, struct qt_bkm_file *files,
              uint32_t cap)
{
    qt_assert(h != NULL);
    qt_assert(files != NULL || cap == 0);
    size_t body = 0;
    int rc = bkm_check_sum(buf, len, &body);
    struct bkm_in c = {.p = buf, .len = body};
    if (rc == 0)
        rc = bkm_header(&c, h);
    if (rc == 0 && h->n_files > cap)
        return qt_fail(QT_ENOSPACE, "backup manifest: file array too small");
    for (uint32_t i = 0; rc == 0 && i < h->n_files; i++)
        rc = bkm_file(&c, &files[i]);
    if (rc == 0)
        rc = bkm_check_files(files, h->n_files) != 0
                 ? qt_fail(QT_ECORRUPT, "backup manifest: paths not strictly ascending")
                 : 0;
    if (rc == 0 && c.pos != body)
        rc = qt_fail(QT_ECORRUPT, "backup manifest: bytes after the last file line");
    return rc;
}
