/*
 * test_io.c -- storage/io.h on a real backend: QT_TEST_IO=posix or uring
 * (tests/run.sh runs both).  With "uring" the handle must really be io_uring:
 * creation failing is a test failure, never a silent fallback.
 */
#include "format/qt_alloc.h"
#include "format/qt_limits.h"
#include "harness.h"
#include "storage/io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static enum qt_io_kind
env_kind(void)
{
    const char *s = getenv("QT_TEST_IO");
    return s != NULL && strcmp(s, "uring") == 0 ? QT_IO_URING : QT_IO_POSIX;
}

/* Create the backend under test; 0 or the error. */
static int
make_io(const struct qt_io_opts *opts, struct qt_io **io)
{
    int rc = qt_io_create(env_kind(), opts, io);
    if (rc == 0 && qt_io_kind(*io) != env_kind()) {
        qt_io_destroy(*io);
        return QT_EINVAL;
    }
    return rc;
}

static void
fill_random(uint8_t *p, size_t n, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)qt_test_rand(rng);
}

static void
path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", qt_test_dir(), name);
}

/* Open dir/name read-write, created empty. */
static int
open_new(struct qt_io *io, const char *name, int *fd)
{
    char p[512];
    path_in(p, sizeof(p), name);
    return qt_io_open(io, p, O_RDWR | O_CREAT | O_TRUNC, 0644, fd);
}

TEST(backend_is_the_one_asked_for)
{
    struct qt_io *io;
    CHECK_OK(qt_io_create(env_kind(), NULL, &io));
    CHECK_EQ(qt_io_kind(io), env_kind());
    CHECK(strcmp(qt_io_name(io), env_kind() == QT_IO_URING ? "uring" : "posix") == 0);
    CHECK(strcmp(qt_io_fallback_reason(io), "") == 0);
    int fd;
    CHECK_OK(open_new(io, "f", &fd));
    uint8_t b[16] = {1, 2, 3};
    CHECK_OK(qt_io_pwrite(io, fd, b, sizeof(b), 0));
    CHECK_EQ(qt_io_pread(io, fd, b, sizeof(b), 0), 16);
    struct qt_io_stats st;
    qt_io_stats(io, &st);
    CHECK_EQ(st.reads, 1);
    CHECK_EQ(st.writes, 1);
    if (env_kind() == QT_IO_URING)
        CHECK(st.ring_submits >= 2); /* the requests went through a ring */
    else
        CHECK_EQ(st.ring_submits, 0);
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
}

TEST(kind_parse_and_names)
{
    enum qt_io_kind k;
    CHECK_OK(qt_io_kind_parse("auto", &k));
    CHECK_EQ(k, QT_IO_AUTO);
    CHECK_OK(qt_io_kind_parse("uring", &k));
    CHECK_EQ(k, QT_IO_URING);
    CHECK_OK(qt_io_kind_parse("posix", &k));
    CHECK_EQ(k, QT_IO_POSIX);
    CHECK_RC(qt_io_kind_parse("fault", &k), QT_EINVAL);
    CHECK_RC(qt_io_kind_parse("Posix", &k), QT_EINVAL);
    CHECK_RC(qt_io_kind_parse("", &k), QT_EINVAL);
    CHECK_RC(qt_io_kind_parse(NULL, &k), QT_EINVAL);
    CHECK(strcmp(qt_io_kind_name(QT_IO_FAULT), "fault") == 0);
    CHECK(strcmp(qt_io_kind_name(QT_IO_AUTO), "auto") == 0);
}

TEST(create_rejects_bad_options)
{
    struct qt_io *io = NULL;
    struct qt_io_opts o = {.queue_depth = QT_IO_QUEUE_DEPTH_MAX + 1};
    CHECK_RC(qt_io_create(QT_IO_POSIX, &o, &io), QT_EINVAL);
    o = (struct qt_io_opts){.rings = QT_IO_URING_RINGS_MAX + 1};
    CHECK_RC(qt_io_create(QT_IO_POSIX, &o, &io), QT_EINVAL);
    o = (struct qt_io_opts){.xfer_max_bytes = QT_IO_REQ_BYTES_MAX + 1u};
    CHECK_RC(qt_io_create(QT_IO_POSIX, &o, &io), QT_EINVAL);
    o = (struct qt_io_opts){.probe_fail_errno = -1};
    CHECK_RC(qt_io_create(QT_IO_AUTO, &o, &io), QT_EINVAL);
    CHECK_RC(qt_io_create((enum qt_io_kind)9, NULL, &io), QT_EINVAL);
    CHECK(io == NULL);
}

/* Random positional writes and reads against an in-memory model of the
 * file, including reads across and past EOF and writes leaving holes. */
static void
model_workload(const struct qt_io_opts *opts, uint64_t seed_mix, bool want_resubmits)
{
    enum { CAP = 1 << 20, OPS = 400, MAXLEN = 40000 };
    uint64_t rng = qt_test_seed() ^ seed_mix;
    uint8_t *model = qt_calloc(1, CAP), *buf = qt_malloc(MAXLEN), *got = qt_malloc(MAXLEN);
    CHECK(model != NULL && buf != NULL && got != NULL);
    struct qt_io *io;
    int fd;
    CHECK_OK(make_io(opts, &io));
    CHECK_OK(open_new(io, "model", &fd));
    size_t size = 0;
    for (int op = 0; op < OPS; op++) {
        size_t len = 1 + qt_test_rand(&rng) % MAXLEN;
        size_t off = qt_test_rand(&rng) % (CAP - len);
        if (qt_test_rand(&rng) % 2 == 0) {
            fill_random(buf, len, &rng);
            CHECK_OK(qt_io_pwrite(io, fd, buf, len, off));
            memcpy(model + off, buf, len);
            size = off + len > size ? off + len : size;
        } else {
            size_t want = off >= size ? 0 : (size - off < len ? size - off : len);
            CHECK_EQ(qt_io_pread(io, fd, got, len, off), (int64_t)want);
            CHECK(memcmp(got, model + off, want) == 0);
        }
    }
    uint64_t fsize;
    CHECK_OK(qt_io_size(io, fd, &fsize));
    CHECK_EQ(fsize, size);
    struct qt_io_stats st;
    qt_io_stats(io, &st);
    if (want_resubmits)
        CHECK(st.resubmits > 100); /* the short-transfer path really ran */
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    qt_free(model);
    qt_free(buf);
    qt_free(got);
}

TEST(random_roundtrips_against_model)
{
    model_workload(NULL, 1, false);
}

TEST(random_roundtrips_in_small_pieces)
{
    /* 777-byte transfers: every request goes through the resubmit path. */
    struct qt_io_opts o = {.xfer_max_bytes = 777};
    model_workload(&o, 2, true);
}

TEST(large_unaligned_roundtrip)
{
    size_t len = (8u << 20) + 123;
    uint64_t rng = qt_test_seed() ^ 3;
    uint8_t *a = qt_malloc(len), *b = qt_malloc(len);
    CHECK(a != NULL && b != NULL);
    fill_random(a, len, &rng);
    struct qt_io *io;
    int fd;
    CHECK_OK(make_io(NULL, &io));
    CHECK_OK(open_new(io, "large", &fd));
    CHECK_OK(qt_io_pwrite(io, fd, a, len, 4095));
    CHECK_OK(qt_io_fsync(io, fd));
    CHECK_EQ(qt_io_pread(io, fd, b, len, 4095), (int64_t)len);
    CHECK(memcmp(a, b, len) == 0);
    CHECK_EQ(qt_io_pread(io, fd, b, 4095, 0), 4095); /* the hole reads as zeros */
    for (size_t i = 0; i < 4095; i++)
        CHECK_EQ(b[i], 0);
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    qt_free(a);
    qt_free(b);
}

/* A 1 MiB file of random bytes, open read-write; *content owns a copy. */
static int
random_file(struct qt_io *io, const char *name, size_t len, uint64_t seed, int *fd,
            uint8_t **content)
{
    uint64_t rng = seed;
    *content = qt_malloc(len);
    if (*content == NULL)
        return QT_ENOMEM;
    fill_random(*content, len, &rng);
    int rc = open_new(io, name, fd);
    if (rc == 0)
        rc = qt_io_pwrite(io, *fd, *content, len, 0);
    return rc;
}

TEST(batch_of_64_reads)
{
    enum { N = 64, BS = 4096, FILE_BYTES = 1 << 20 };
    struct qt_io *io;
    int fd;
    uint8_t *content;
    CHECK_OK(make_io(NULL, &io));
    CHECK_OK(random_file(io, "b64", FILE_BYTES, qt_test_seed(), &fd, &content));
    uint8_t *bufs = qt_malloc(N * BS);
    struct qt_io_rreq r[N];
    uint64_t rng = qt_test_seed() ^ 4;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i++) {
            uint64_t off = (qt_test_rand(&rng) % (FILE_BYTES / BS)) * BS;
            if (i % 8 == 7)
                off += qt_test_rand(&rng) % 100; /* some unaligned */
            r[i] = (struct qt_io_rreq){.fd = fd, .buf = bufs + i * BS, .len = BS, .off = off};
        }
        CHECK_OK(qt_io_pread_batch(io, r, N));
        for (int i = 0; i < N; i++) {
            size_t want = r[i].off + BS <= FILE_BYTES ? BS : FILE_BYTES - r[i].off;
            CHECK_EQ(r[i].res, (int64_t)want);
            CHECK(memcmp(bufs + i * BS, content + r[i].off, want) == 0);
        }
    }
    struct qt_io_stats st;
    qt_io_stats(io, &st);
    CHECK_EQ(st.reads, 20 * N);
    if (env_kind() == QT_IO_URING)
        CHECK(st.ring_submits < 20 * N / 4); /* batched, not one enter per read */
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    qt_free(bufs);
    qt_free(content);
}

TEST(batch_reports_each_result)
{
    struct qt_io *io;
    int fd, dead;
    uint8_t *content;
    CHECK_OK(make_io(NULL, &io));
    CHECK_OK(random_file(io, "mixed", 10000, qt_test_seed(), &fd, &content));
    CHECK_OK(open_new(io, "dead", &dead));
    CHECK_OK(qt_io_close(io, dead)); /* a closed descriptor */
    uint8_t a[100], b[100], c[100], d[1];
    struct qt_io_rreq r[4] = {
        {.fd = fd, .buf = a, .len = 100, .off = 0},
        {.fd = fd, .buf = b, .len = 100, .off = 9950}, /* crosses EOF */
        {.fd = dead, .buf = c, .len = 100, .off = 0},
        {.fd = fd, .buf = d, .len = 0, .off = 5},
    };
    CHECK_RC(qt_io_pread_batch(io, r, 4), -EBADF);
    CHECK_EQ(r[0].res, 100);
    CHECK(memcmp(a, content, 100) == 0);
    CHECK_EQ(r[1].res, 50);
    CHECK(memcmp(b, content + 9950, 50) == 0);
    CHECK_EQ(r[2].res, -EBADF);
    CHECK_EQ(r[3].res, 0);
    struct qt_io_wreq w[2] = {
        {.fd = fd, .buf = a, .len = 100, .off = 20000},
        {.fd = dead, .buf = a, .len = 100, .off = 0},
    };
    CHECK_RC(qt_io_pwrite_batch(io, w, 2), -EBADF);
    CHECK_EQ(w[0].res, 0);
    CHECK_EQ(w[1].res, -EBADF);
    CHECK_OK(qt_io_pread_batch(io, r, 0));
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    qt_free(content);
}

TEST(batches_larger_than_queue_depth)
{
    enum { N = 300, BS = 1000 };
    struct qt_io_opts o = {.queue_depth = 8};
    struct qt_io *io;
    int fd;
    CHECK_OK(make_io(&o, &io));
    CHECK_OK(open_new(io, "deep", &fd));
    uint8_t *src = qt_malloc(N * BS), *dst = qt_calloc(N, BS);
    uint64_t rng = qt_test_seed() ^ 5;
    fill_random(src, N * BS, &rng);
    struct qt_io_wreq *w = qt_calloc(N, sizeof(*w));
    struct qt_io_rreq *r = qt_calloc(N, sizeof(*r));
    for (int i = 0; i < N; i++) {
        /* reverse order on disk, so the batch is not one sequential run */
        w[i] =
            (struct qt_io_wreq){.fd = fd, .buf = src + i * BS, .len = BS, .off = (N - 1 - i) * BS};
        r[i] =
            (struct qt_io_rreq){.fd = fd, .buf = dst + i * BS, .len = BS, .off = (N - 1 - i) * BS};
    }
    CHECK_OK(qt_io_pwrite_batch(io, w, N));
    CHECK_OK(qt_io_pread_batch(io, r, N));
    for (int i = 0; i < N; i++)
        CHECK_EQ(r[i].res, BS);
    CHECK(memcmp(src, dst, N * BS) == 0);
    CHECK_RC(qt_io_pread_batch(io, r, QT_IO_BATCH_MAX + 1), QT_ELIMIT);
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    qt_free(src);
    qt_free(dst);
    qt_free(w);
    qt_free(r);
}

TEST(write_batch_of_64_buffers)
{
    enum { N = 64 };
    struct qt_io *io;
    int fd;
    CHECK_OK(make_io(NULL, &io));
    CHECK_OK(open_new(io, "wb", &fd));
    uint64_t rng = qt_test_seed() ^ 6;
    uint8_t *src = qt_malloc(N * 5000), *dst = qt_malloc(N * 5000);
    fill_random(src, N * 5000, &rng);
    struct qt_io_wreq w[N];
    uint64_t off = 0;
    for (int i = 0; i < N; i++) {
        size_t len = 1 + qt_test_rand(&rng) % 5000; /* odd sizes, packed back to back */
        w[i] = (struct qt_io_wreq){.fd = fd, .buf = src + off, .len = len, .off = off};
        off += len;
    }
    CHECK_OK(qt_io_pwrite_batch(io, w, N));
    CHECK_OK(qt_io_fdatasync(io, fd));
    CHECK_EQ(qt_io_pread(io, fd, dst, N * 5000, 0), (int64_t)off);
    CHECK(memcmp(src, dst, off) == 0);
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    qt_free(src);
    qt_free(dst);
}

/* ---- concurrency ---------------------------------------------------------- */

struct worker {
    struct qt_io *io;
    int shared_fd;
    const uint8_t *shared;
    int id;
    int failures;
};

enum { SHARED_BYTES = 1 << 18, OWN_BYTES = 1 << 17 };

/* One thread: own file with a model, appends with append_sync, and batched
 * reads of the shared file.  Counts failures instead of CHECKing (CHECK
 * only works on the test's own thread). */
static void *
worker_run(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = qt_test_seed() ^ (uint64_t)(w->id * 7919);
    char name[32];
    snprintf(name, sizeof(name), "own%d", w->id);
    int fd;
    uint8_t *model = qt_calloc(1, OWN_BYTES), *buf = qt_malloc(16 * 4096);
    if (model == NULL || buf == NULL || open_new(w->io, name, &fd) != 0) {
        w->failures++;
        return NULL;
    }
    uint64_t tail = OWN_BYTES;
    for (int op = 0; op < 300; op++) {
        size_t len = 1 + qt_test_rand(&rng) % 4096;
        size_t off = qt_test_rand(&rng) % (OWN_BYTES - len);
        switch (op % 4) {
        case 0:
            fill_random(model + off, len, &rng);
            w->failures += qt_io_pwrite(w->io, fd, model + off, len, off) != 0;
            break;
        case 1:
            w->failures += qt_io_pread(w->io, fd, buf, len, off) != (int64_t)len;
            w->failures += memcmp(buf, model + off, len) != 0;
            break;
        case 2: {
            struct iovec iov[2] = {{.iov_base = model, .iov_len = len},
                                   {.iov_base = model + len, .iov_len = 100}};
            w->failures += qt_io_append_sync(w->io, fd, iov, 2, tail) != 0;
            tail += len + 100;
            break;
        }
        default: {
            struct qt_io_rreq r[16];
            for (int i = 0; i < 16; i++)
                r[i] = (struct qt_io_rreq){.fd = w->shared_fd,
                                           .buf = buf + i * 4096,
                                           .len = 4096,
                                           .off = qt_test_rand(&rng) % (SHARED_BYTES - 4096)};
            w->failures += qt_io_pread_batch(w->io, r, 16) != 0;
            for (int i = 0; i < 16; i++)
                w->failures += memcmp(buf + i * 4096, w->shared + r[i].off, 4096) != 0;
        }
        }
    }
    w->failures += qt_io_close(w->io, fd) != 0;
    qt_free(model);
    qt_free(buf);
    return NULL;
}

TEST(four_threads_share_one_handle)
{
    /* 2 rings for 4 threads: threads must wait for and share rings. */
    struct qt_io_opts o = {.rings = 2};
    struct qt_io *io;
    int fd;
    uint8_t *shared;
    CHECK_OK(make_io(&o, &io));
    CHECK_OK(random_file(io, "shared", SHARED_BYTES, qt_test_seed(), &fd, &shared));
    struct worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.io = io, .shared_fd = fd, .shared = shared, .id = i};
        CHECK_EQ(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
    }
    CHECK_EQ(failures, 0);
    struct qt_io_stats st;
    qt_io_stats(io, &st);
    CHECK_EQ(st.syncs, 4 * 75);
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    qt_free(shared);
}

/* ---- append_sync ----------------------------------------------------------- */

static void
append_sequence(const struct qt_io_opts *opts)
{
    enum { ROUNDS = 40 };
    struct qt_io *io;
    int fd;
    CHECK_OK(make_io(opts, &io));
    CHECK_OK(open_new(io, "wal", &fd));
    uint64_t rng = qt_test_seed() ^ 8;
    uint8_t *expect = qt_malloc(ROUNDS * 5 * 3000), *got = qt_malloc(ROUNDS * 5 * 3000);
    uint8_t chunk[5][3000];
    uint64_t tail = 0;
    for (int r = 0; r < ROUNDS; r++) {
        int cnt = 1 + (int)(qt_test_rand(&rng) % 5);
        struct iovec iov[5];
        for (int i = 0; i < cnt; i++) {
            size_t len = qt_test_rand(&rng) % 3000; /* zero-length buffers too */
            fill_random(chunk[i], len, &rng);
            iov[i] = (struct iovec){.iov_base = chunk[i], .iov_len = len};
            memcpy(expect + tail, chunk[i], len);
            tail += len;
        }
        uint64_t before;
        CHECK_OK(qt_io_size(io, fd, &before));
        CHECK_OK(qt_io_append_sync(io, fd, iov, cnt, before));
    }
    uint64_t size;
    CHECK_OK(qt_io_size(io, fd, &size));
    CHECK_EQ(size, tail);
    CHECK_EQ(qt_io_pread(io, fd, got, tail, 0), (int64_t)tail);
    CHECK(memcmp(expect, got, tail) == 0);
    CHECK_OK(qt_io_append_sync(io, fd, NULL, 0, tail)); /* a bare fdatasync */
    struct iovec too_many[QT_IO_IOV_MAX + 1];
    memset(too_many, 0, sizeof(too_many));
    CHECK_RC(qt_io_append_sync(io, fd, too_many, QT_IO_IOV_MAX + 1, 0), QT_ELIMIT);
    struct qt_io_stats st;
    qt_io_stats(io, &st);
    CHECK_EQ(st.syncs, ROUNDS + 1);
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    qt_free(expect);
    qt_free(got);
}

TEST(append_sync_builds_the_log)
{
    append_sequence(NULL);
}

TEST(append_sync_in_small_pieces)
{
    struct qt_io_opts o = {.xfer_max_bytes = 1000}; /* only the last piece is linked */
    append_sequence(&o);
}

/* ---- files and names -------------------------------------------------------- */

static int
read_whole(struct qt_io *io, const char *path, char *buf, size_t cap, int64_t *len)
{
    int fd, rc = qt_io_open(io, path, O_RDONLY, 0, &fd);
    if (rc != 0)
        return rc;
    *len = qt_io_pread(io, fd, buf, cap, 0);
    rc = qt_io_close(io, fd);
    return *len < 0 ? (int)*len : rc;
}

TEST(write_file_atomic_replaces)
{
    struct qt_io *io;
    CHECK_OK(make_io(NULL, &io));
    const char *dir = qt_test_dir();
    char path[512], tmp[512], buf[64];
    int64_t len;
    path_in(path, sizeof(path), "MANIFEST");
    path_in(tmp, sizeof(tmp), "MANIFEST" QT_IO_TMP_SUFFIX);
    CHECK_OK(qt_io_write_file_atomic(io, dir, "MANIFEST", "version one", 11));
    CHECK_OK(read_whole(io, path, buf, sizeof(buf), &len));
    CHECK_EQ(len, 11);
    CHECK(memcmp(buf, "version one", 11) == 0);
    CHECK_OK(qt_io_write_file_atomic(io, dir, "MANIFEST", "v2", 2));
    CHECK_OK(read_whole(io, path, buf, sizeof(buf), &len));
    CHECK_EQ(len, 2);
    CHECK(memcmp(buf, "v2", 2) == 0);
    CHECK(access(tmp, F_OK) != 0); /* the temp name is gone */
    CHECK_OK(qt_io_write_file_atomic(io, dir, "EMPTY", "", 0));
    char missing[512];
    path_in(missing, sizeof(missing), "no/such/dir");
    CHECK_RC(qt_io_write_file_atomic(io, missing, "M", "x", 1), -ENOENT);
    CHECK_RC(qt_io_write_file_atomic(io, dir, "a/b", "x", 1), QT_EINVAL);
    CHECK_RC(qt_io_write_file_atomic(io, dir, "", "x", 1), QT_EINVAL);
    char longname[300];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK_RC(qt_io_write_file_atomic(io, dir, longname, "x", 1), -ENAMETOOLONG);
    char longdir[PATH_MAX + 8];
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[sizeof(longdir) - 1] = '\0';
    CHECK_RC(qt_io_write_file_atomic(io, longdir, "M", "x", 1), -ENAMETOOLONG);
    qt_io_destroy(io);
}

TEST(eof_behaviour)
{
    struct qt_io *io;
    int fd;
    uint8_t *content, buf[2000];
    CHECK_OK(make_io(NULL, &io));
    CHECK_OK(random_file(io, "eof", 1000, qt_test_seed(), &fd, &content));
    CHECK_EQ(qt_io_pread(io, fd, buf, 1000, 0), 1000);
    CHECK_EQ(qt_io_pread(io, fd, buf, 2000, 0), 1000);
    CHECK_EQ(qt_io_pread(io, fd, buf, 200, 900), 100);
    CHECK(memcmp(buf, content + 900, 100) == 0);
    CHECK_EQ(qt_io_pread(io, fd, buf, 10, 1000), 0);
    CHECK_EQ(qt_io_pread(io, fd, buf, 10, 5000), 0);
    CHECK_EQ(qt_io_pread(io, fd, buf, 0, 10), 0);
    CHECK_EQ(qt_io_pread(io, fd, buf, 10, (uint64_t)INT64_MAX - 10), 0);
    CHECK_OK(qt_io_ftruncate(io, fd, 10));
    CHECK_EQ(qt_io_pread(io, fd, buf, 100, 0), 10);
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    qt_free(content);
}

TEST(bad_descriptors_and_arguments)
{
    struct qt_io *io;
    int fd, ro, dirfd;
    char path[512];
    uint8_t buf[64] = {0};
    CHECK_OK(make_io(NULL, &io));
    CHECK_OK(open_new(io, "x", &fd));
    path_in(path, sizeof(path), "x");
    CHECK_OK(qt_io_open(io, path, O_RDONLY, 0, &ro));
    CHECK_OK(qt_io_open(io, qt_test_dir(), O_RDONLY | O_DIRECTORY, 0, &dirfd));
    CHECK_OK(qt_io_close(io, fd)); /* fd is now a closed number */
    CHECK_RC(qt_io_pread(io, fd, buf, 10, 0), -EBADF);
    CHECK_RC(qt_io_pwrite(io, fd, buf, 10, 0), -EBADF);
    CHECK_RC(qt_io_fsync(io, fd), -EBADF);
    CHECK_RC(qt_io_fdatasync(io, -1), -EBADF);
    CHECK_RC(qt_io_pwrite(io, ro, buf, 10, 0), -EBADF);
    struct iovec iov = {.iov_base = buf, .iov_len = 10};
    CHECK_RC(qt_io_append_sync(io, ro, &iov, 1, 0), -EBADF);
    CHECK_RC(qt_io_pread(io, dirfd, buf, 10, 0), -EISDIR);
    uint64_t size;
    CHECK_RC(qt_io_size(io, fd, &size), -EBADF);
    CHECK_RC(qt_io_close(io, -1), -EBADF);
    CHECK_RC(qt_io_pread(io, ro, buf, QT_IO_REQ_BYTES_MAX + 1ull, 0), QT_EINVAL);
    CHECK_RC(qt_io_pread(io, ro, buf, 10, (uint64_t)INT64_MAX - 5), QT_EINVAL);
    CHECK_RC(qt_io_pwrite(io, ro, buf, 10, UINT64_MAX), QT_EINVAL);
    CHECK_RC(qt_io_ftruncate(io, ro, (uint64_t)INT64_MAX + 1), QT_EINVAL);
    int nfd;
    path_in(path, sizeof(path), "missing");
    CHECK_RC(qt_io_open(io, path, O_RDONLY, 0, &nfd), -ENOENT);
    CHECK_RC(qt_io_open(io, path, O_WRONLY | O_CREAT | O_APPEND, 0644, &nfd), QT_EINVAL);
    CHECK_RC(qt_io_open(io, "", O_RDONLY, 0, &nfd), -ENOENT);
    CHECK_RC(qt_io_fsync_dir(io, path), -ENOENT);
    struct qt_io_fault fl = {.op = QT_IO_OP_WRITE, .nth = 1, .err = -EIO};
    CHECK_RC(qt_io_fault_arm(io, &fl), QT_EINVAL); /* not a fault handle */
    CHECK_RC(qt_io_fault_crash(io, QT_IO_CRASH_DROP, 0), QT_EINVAL);
    CHECK_OK(qt_io_close(io, ro));
    CHECK_OK(qt_io_close(io, dirfd));
    qt_io_destroy(io);
}

TEST(names_truncate_and_dirs)
{
    struct qt_io *io;
    int fd;
    char a[512], b[512], d[512], f[600];
    CHECK_OK(make_io(NULL, &io));
    path_in(a, sizeof(a), "a");
    path_in(b, sizeof(b), "b");
    path_in(d, sizeof(d), "sub");
    snprintf(f, sizeof(f), "%s/f", d);
    CHECK_OK(qt_io_open(io, a, O_RDWR | O_CREAT | O_EXCL, 0600, &fd));
    CHECK_OK(qt_io_ftruncate(io, fd, 12345));
    uint64_t size;
    CHECK_OK(qt_io_size(io, fd, &size));
    CHECK_EQ(size, 12345);
    CHECK_OK(qt_io_fsync(io, fd));
    CHECK_OK(qt_io_close(io, fd));
    CHECK_RC(qt_io_open(io, a, O_RDWR | O_CREAT | O_EXCL, 0600, &fd), -EEXIST);
    CHECK_OK(qt_io_rename(io, a, b));
    CHECK(access(a, F_OK) != 0 && access(b, F_OK) == 0);
    CHECK_RC(qt_io_rename(io, a, b), -ENOENT);
    CHECK_OK(qt_io_mkdir(io, d, 0755));
    CHECK_RC(qt_io_mkdir(io, d, 0755), -EEXIST);
    CHECK_OK(qt_io_open(io, f, O_RDWR | O_CREAT, 0644, &fd));
    CHECK_OK(qt_io_close(io, fd));
    CHECK_OK(qt_io_fsync_dir(io, d));
    CHECK_OK(qt_io_fsync_dir(io, qt_test_dir()));
    CHECK_RC(qt_io_rmdir(io, d), -ENOTEMPTY);
    CHECK_OK(qt_io_unlink(io, f));
    CHECK_OK(qt_io_rmdir(io, d));
    CHECK_OK(qt_io_unlink(io, b));
    CHECK_RC(qt_io_unlink(io, b), -ENOENT);
    qt_io_destroy(io);
}

/* RLIMIT_FSIZE makes the kernel return a genuinely short write and then
 * EFBIG: the short-write path of pwrite and of the linked append_sync. */
TEST(short_write_at_file_size_limit)
{
    enum { LIMIT = 65536 + 100 };
    struct qt_io *io;
    int fd;
    CHECK_OK(make_io(NULL, &io));
    CHECK_OK(open_new(io, "fsize", &fd));
    uint8_t *buf = qt_malloc(1 << 17), *got = qt_malloc(1 << 17);
    uint64_t rng = qt_test_seed() ^ 9;
    fill_random(buf, 1 << 17, &rng);
    struct rlimit old, lim = {.rlim_cur = LIMIT, .rlim_max = RLIM_INFINITY};
    CHECK_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim.rlim_max = old.rlim_max;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
    struct qt_io_stats st0, st1;
    qt_io_stats(io, &st0);
    int wrc = qt_io_pwrite(io, fd, buf, 1 << 17, 0);
    struct iovec iov[2] = {{.iov_base = buf, .iov_len = 100},
                           {.iov_base = buf + 100, .iov_len = 100}};
    int arc = qt_io_append_sync(io, fd, iov, 2, LIMIT - 50);
    qt_io_stats(io, &st1);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    CHECK_EQ(wrc, -EFBIG);
    CHECK_EQ(arc, -EFBIG);
    CHECK(st1.resubmits >= st0.resubmits + 2); /* both continued after a short write */
    uint64_t size;
    CHECK_OK(qt_io_size(io, fd, &size));
    CHECK_EQ(size, LIMIT);
    CHECK_EQ(qt_io_pread(io, fd, got, 1 << 17, 0), LIMIT);
    CHECK(memcmp(got, buf, LIMIT - 50) == 0);
    CHECK(memcmp(got + LIMIT - 50, buf, 50) == 0);
    CHECK_OK(qt_io_close(io, fd));
    qt_io_destroy(io);
    qt_free(buf);
    qt_free(got);
}

/* ---- probe and fallback ------------------------------------------------------ */

TEST(auto_falls_back_on_every_probe_failure)
{
    static const struct {
        int err;
        const char *mention;
    } cases[] = {
        {ENOSYS, "seccomp"},        {EPERM, "EPERM"},    {EINVAL, "EINVAL"},
        {EOPNOTSUPP, "EOPNOTSUPP"}, {ENOMEM, "MEMLOCK"}, {EFAULT, "io_uring_setup"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct qt_io_opts o = {.probe_fail_errno = cases[i].err};
        struct qt_io *io = NULL;
        CHECK_OK(qt_io_create(QT_IO_AUTO, &o, &io));
        CHECK_EQ(qt_io_kind(io), QT_IO_POSIX);
        CHECK(strcmp(qt_io_name(io), "posix") == 0);
        CHECK(strstr(qt_io_fallback_reason(io), cases[i].mention) != NULL);
        int fd;
        uint8_t b[3] = {7, 8, 9}, c[3];
        CHECK_OK(open_new(io, "fallback", &fd)); /* the fallback really works */
        CHECK_OK(qt_io_append_sync(io, fd, &(struct iovec){.iov_base = b, .iov_len = 3}, 1, 0));
        CHECK_EQ(qt_io_pread(io, fd, c, 3, 0), 3);
        CHECK(memcmp(b, c, 3) == 0);
        CHECK_OK(qt_io_close(io, fd));
        qt_io_destroy(io);
        /* Forced uring fails cleanly with the reason. */
        struct qt_io *u = NULL;
        qt_err_clear();
        CHECK_RC(qt_io_create(QT_IO_URING, &o, &u), -cases[i].err);
        CHECK(u == NULL);
        CHECK(strstr(qt_err_detail(), cases[i].mention) != NULL);
    }
}

TEST(auto_picks_uring_when_it_works)
{
    struct qt_io *io;
    CHECK_OK(qt_io_create(QT_IO_AUTO, NULL, &io));
    if (env_kind() == QT_IO_URING) /* this machine must have a working io_uring */
        CHECK_EQ(qt_io_kind(io), QT_IO_URING);
    else
        CHECK(qt_io_kind(io) == QT_IO_URING || strlen(qt_io_fallback_reason(io)) > 0);
    qt_io_destroy(io);
}
