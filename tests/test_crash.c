/*
 * test_crash.c -- kill -9 at random moments (issue: durability promise).
 *
 * Each iteration forks a writer child that opens the database (recovering
 * whatever the previous child left), writes batches and reports each batch
 * number on a pipe after qt_db_write() returned 0 (= acknowledged), and now
 * and then flushes.  The parent waits for a seeded random number of
 * acknowledgements (0 = kill during recovery), kills the child with SIGKILL
 * after a further random delay, then opens the database and checks:
 *   - every acknowledged batch is present, every point with its exact value;
 *   - every point present belongs to some batch that was attempted, with the
 *     value that batch wrote (nothing unacknowledged appears as garbage);
 *   - a batch is all or nothing (it is one WAL record).
 * QT_CRASH_ITERS overrides the iteration count (default 120).
 */
#include "format/qt_err.h"
#include "format/qt_log.h"
#include "harness.h"
#include "storage/db.h"
#include "storage/scan.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GROUPS      8
#define FIELDS      4
#define PER_BATCH   24
#define BATCHES_MAX 100000
#define TBASE       (20770ll * 86400000000000ll)

/* Batch b writes point j at this timestamp and value. */
static int64_t
pt_ts(uint32_t b, uint32_t j)
{
    return TBASE + ((int64_t)b * PER_BATCH + j) * 1000000ll;
}

static double
pt_val(uint32_t b, uint32_t j)
{
    return (double)((b * 7919u + j * 104729u) % 1000003u) / 100.0;
}

static void
key_of(uint32_t b, uint32_t j, char *gkey, size_t cap, uint32_t *f)
{
    snprintf(gkey, cap, "crash,g=%u", (b + j) % GROUPS);
    *f = (b * 3 + j) % FIELDS;
}

static const char *fnames[FIELDS] = {"a", "b", "c", "d"};

static int
child_write_batch(struct qt_db *db, uint32_t b)
{
    struct qt_batch_line lines[PER_BATCH];
    struct qt_batch_field fields[PER_BATCH];
    char keys[PER_BATCH][32];
    for (uint32_t j = 0; j < PER_BATCH; j++) {
        uint32_t f;
        key_of(b, j, keys[j], sizeof(keys[j]), &f);
        fields[j] = (struct qt_batch_field){
            .name = fnames[f], .name_len = 1, .vtype = QT_VT_FLOAT, .v.f = pt_val(b, j)};
        lines[j] = (struct qt_batch_line){.key = keys[j],
                                          .key_len = (uint32_t)strlen(keys[j]),
                                          .ts = pt_ts(b, j),
                                          .n_fields = 1,
                                          .fields = &fields[j]};
    }
    return qt_db_write(db, lines, PER_BATCH, NULL, NULL, NULL);
}

static void
child_main(const char *dir, uint32_t first_batch, int ack_fd, uint64_t seed)
{
    qt_log_set_level(QT_LOG_ERROR);
    struct qt_db_opts o = {.dir = dir,
                           .io_kind = qt_test_io_kind(),
                           .no_background = true,
                           .mem_budget_bytes = 1u << 20};
    struct qt_db *db = NULL;
    if (qt_db_open(&o, &db) != 0)
        _exit(3);
    for (uint32_t b = first_batch; b < BATCHES_MAX; b++) {
        if (child_write_batch(db, b) != 0)
            _exit(4);
        if (write(ack_fd, &b, sizeof(b)) != sizeof(b))
            _exit(5);
        if ((b + seed) % 13 == 0)
            qt_db_flush(db); /* so kills land inside flushes too */
    }
    _exit(0);
}

/* Scan everything; check each point against its batch; mark batches seen. */
static int
verify(struct qt_db *db, uint32_t batches, uint8_t *seen_count)
{
    memset(seen_count, 0, batches);
    for (uint32_t g = 0; g < GROUPS; g++) {
        for (uint32_t f = 0; f < FIELDS; f++) {
            char key[64];
            int n = snprintf(key, sizeof(key), "crash,g=%u %s", g, fnames[f]);
            uint32_t sid;
            if (qt_catalog_lookup(qt_db_catalog(db), (const uint8_t *)key, (size_t)n, &sid) != 0)
                continue;
            struct qt_scan_opts so = {.t0 = INT64_MIN, .t1 = INT64_MAX};
            struct qt_scan *s;
            if (qt_scan_open(db, sid, &so, &s) != 0)
                return -1;
            struct qt_chunk c;
            int rc;
            while ((rc = qt_scan_next(s, &c)) == 1) {
                for (uint32_t i = 0; i < c.n; i++) {
                    int64_t k = (c.ts[i] - TBASE) / 1000000ll;
                    uint32_t b = (uint32_t)(k / PER_BATCH), j = (uint32_t)(k % PER_BATCH);
                    uint32_t wf;
                    char gk[32];
                    key_of(b, j, gk, sizeof(gk), &wf);
                    if (b >= batches || c.vals[i].f != pt_val(b, j) || wf != f ||
                        strncmp(gk, key, strlen(gk)) != 0) {
                        printf("garbage point: series %s ts %lld\n", key, (long long)c.ts[i]);
                        qt_scan_close(s);
                        return -1;
                    }
                    seen_count[b]++;
                }
            }
            qt_scan_close(s);
            if (rc != 0)
                return -1;
        }
    }
    return 0;
}

TEST(kill9_at_random_points)
{
    const char *env = getenv("QT_CRASH_ITERS");
    uint32_t iters = env != NULL ? (uint32_t)atoi(env) : 120;
    uint64_t rng = qt_test_seed();
    const char *dir = qt_test_dir();
    uint8_t *seen = calloc(BATCHES_MAX, 1);
    uint8_t *acked = calloc(BATCHES_MAX, 1);
    CHECK(seen != NULL && acked != NULL);
    uint32_t next_batch = 0, total_acked = 0, min_acked = 0;
    qt_log_set_level(QT_LOG_ERROR);
    for (uint32_t it = 0; it < iters; it++) {
        int fds[2];
        CHECK(pipe(fds) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(dir, next_batch, fds[1], qt_test_rand(&rng));
        }
        close(fds[1]);
        /* Let the child acknowledge 0..7 batches (0: die during open and
         * recovery), then kill it 0..5 ms later, wherever it is. */
        uint32_t want = (uint32_t)(qt_test_rand(&rng) % 8), b;
        uint32_t attempted = next_batch;
        for (uint32_t k = 0; k < want && read(fds[0], &b, sizeof(b)) == sizeof(b); k++) {
            CHECK(b < BATCHES_MAX);
            acked[b] = 1;
            total_acked++;
            attempted = b + 2;
        }
        min_acked += want;
        struct timespec d = {.tv_nsec = (long)(qt_test_rand(&rng) % 5000000u)};
        nanosleep(&d, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) || WEXITSTATUS(status) == 0);
        while (read(fds[0], &b, sizeof(b)) == sizeof(b)) {
            CHECK(b < BATCHES_MAX);
            acked[b] = 1;
            total_acked++;
            attempted = b + 2; /* the one after may be half-written */
        }
        close(fds[0]);
        if (attempted <= next_batch)
            attempted = next_batch + 1;
        /* Recover in the parent and check the invariant. */
        struct qt_db_opts o = {.dir = dir, .io_kind = qt_test_io_kind(), .no_background = true};
        struct qt_db *db = NULL;
        CHECK_OK(qt_db_open(&o, &db));
        int vr = verify(db, attempted, seen);
        CHECK_OK(qt_db_close(db));
        CHECK_EQ(vr, 0);
        for (uint32_t k = 0; k < attempted; k++) {
            if (acked[k])
                CHECK_EQ(seen[k], PER_BATCH); /* acknowledged: all there */
            else
                CHECK(seen[k] == 0 || seen[k] == PER_BATCH); /* all or nothing */
        }
        next_batch = attempted;
    }
    printf("kill9: %u iterations, %u acknowledged batches verified\n", iters, total_acked);
    CHECK(total_acked >= min_acked); /* every child got its batches done */
    free(seen);
    free(acked);
}
