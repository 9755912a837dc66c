/*
 * test_engine_ops_cli.c -- the operations subcommands end to end
 * (server/ops_cli.c), called as main() would: exit codes, usage errors, a
 * compact / backup / restore / verify / export round on a real directory,
 * export output re-counted from the captured stdout.
 */
#include "format/qt_log.h"
#include "harness.h"
#include "opsutil.h"
#include "server/ops_cli.h"
#include "storage/backup.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN(fn, ...) run_cli(fn, (const char *[]){__VA_ARGS__, NULL})

static int
run_cli(int (*fn)(int, char **), const char **args)
{
    int argc = 0;
    while (args[argc] != NULL)
        argc++;
    fflush(stdout);
    int rc = fn(argc, (char **)args);
    fflush(stdout);
    qt_log_set_level(QT_LOG_INFO);
    return rc;
}

/* Run fn with stdout captured into path. */
static int
run_captured(const char *path, int (*fn)(int, char **), const char **args)
{
    fflush(stdout);
    int saved = dup(1);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0)
        return -1;
    dup2(fd, 1);
    close(fd);
    int rc = run_cli(fn, args);
    dup2(saved, 1);
    close(saved);
    return rc;
}

static uint64_t
count_lines(const char *path)
{
    size_t len = 0;
    uint8_t *buf = qt_test_read_file(path, &len);
    uint64_t n = 0;
    for (size_t i = 0; buf != NULL && i < len; i++)
        n += buf[i] == '\n';
    free(buf);
    return n;
}

TEST(cli_round_trip)
{
    char dir[4096], bk[4096], to[4096], out[4096], bid[4096];
    snprintf(dir, sizeof(dir), "%s/db", qt_test_dir());
    snprintf(bk, sizeof(bk), "%s/bk", qt_test_dir());
    snprintf(to, sizeof(to), "%s/restored", qt_test_dir());
    snprintf(out, sizeof(out), "%s/out.txt", qt_test_dir());
    struct ops_model *m = calloc(1, sizeof(*m));
    CHECK(m != NULL);
    struct qt_db *db = ops_open(dir, NULL);
    CHECK(db != NULL);
    uint64_t seed = qt_test_seed();
    for (int r = 0; r < 3; r++) {
        CHECK_OK(ops_write_random(db, m, &seed, 400, 0, OPS_SLOTS));
        CHECK_OK(qt_db_flush(db));
    }
    CHECK_OK(qt_db_close(db));
    CHECK_EQ(RUN(qt_cli_shards, "shards", "--data", dir), 0);
    CHECK_EQ(RUN(qt_cli_shards, "shards"), 2);
    CHECK_EQ(RUN(qt_cli_compact, "compact", "--data", dir), 2); /* --shard or --all */
    CHECK_EQ(RUN(qt_cli_compact, "compact", "--data", dir, "--bogus"), 2);
    CHECK_EQ(RUN(qt_cli_compact, "compact", "--data", dir, "--shard", "2026-11-13T01:00:00Z"), 0);
    CHECK_EQ(RUN(qt_cli_compact, "compact", "--data", dir, "--all"), 0);
    CHECK_EQ(RUN(qt_cli_backup, "backup", "--data", dir, "--to", bk), 0);
    CHECK_EQ(RUN(qt_cli_backup, "backup", "--data", dir, "--to", bk, "--incremental"), 0);
    CHECK_EQ(RUN(qt_cli_restore, "restore", "--from", bk, "--data", to), 0);
    CHECK_EQ(RUN(qt_cli_restore, "restore", "--from", bk, "--data", to), 1); /* not empty */
    CHECK_EQ(RUN(qt_cli_restore, "restore", "--from", bk, "--data", to, "--force"), 0);
    CHECK_EQ(RUN(qt_cli_verify, "verify", "--data", to), 0);
    char id[80];
    CHECK_OK(qt_backup_latest(bk, id, sizeof(id)));
    snprintf(bid, sizeof(bid), "%s/%s", bk, id);
    CHECK_EQ(RUN(qt_cli_verify, "verify", "--backup", bid), 0);
    CHECK_EQ(RUN(qt_cli_verify, "verify", "--data", to, "--backup", bid), 2);
    /* export: every point of air as line protocol, and a CSV slice */
    CHECK_EQ(run_captured(out, qt_cli_export,
                          (const char *[]){"export", "air", "--format", "lp", "--data", to, NULL}),
             0);
    uint64_t lines = count_lines(out);
    uint64_t want = 0;
    for (uint32_t g = 0; g < 2; g++)
        for (uint32_t s = 0; s < OPS_SLOTS; s++) {
            bool any = false;
            for (uint32_t f = 0; f < OPS_FIELDS; f++)
                any = any || m->set[g][f][s];
            want += any;
        }
    CHECK_EQ(lines, want);
    CHECK_EQ(run_captured(out, qt_cli_export,
                          (const char *[]){"export", "water,site=w0001", "--from",
                                           "2026-11-13T00:00:00Z", "--to", "1794531600000000000",
                                           "--format", "csv", "--data", to, NULL}),
             0);
    CHECK(count_lines(out) >= 1);
    CHECK_EQ(RUN(qt_cli_export, "export", "air", "--format", "xml", "--data", to), 2);
    /* damage: verify exits 1 and quarantine makes it clean again */
    char seg[4096], cmd[8300];
    snprintf(cmd, sizeof(cmd), "find '%s' -name '*.qts' | sort | head -n 1 > '%s'", to, out);
    CHECK(system(cmd) == 0);
    size_t len = 0;
    char *p = (char *)qt_test_read_file(out, &len);
    CHECK(p != NULL && len > 1);
    snprintf(seg, sizeof(seg), "%.*s", (int)len - 1, p);
    free(p);
    uint8_t junk = 0x5a;
    CHECK_OK(qt_test_write_at(seg, 300, &junk, 1));
    CHECK_EQ(RUN(qt_cli_verify, "verify", "--data", to), 1);
    CHECK_EQ(RUN(qt_cli_verify, "verify", "--data", to, "--quarantine"), 1);
    CHECK_EQ(RUN(qt_cli_verify, "verify", "--data", to), 0);
    free(m);
}
