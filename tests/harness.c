/*
 * harness.c -- runner for TEST() functions (see harness.h).
 */
#include "harness.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TESTS_MAX 1024

static struct {
    const char *name;
    qt_test_fn fn;
} tests[TESTS_MAX];
static int tests_count;
static bool current_failed;
static const char *current_name;
static char current_dir[512];
static const char *prog_name = "test";

void
qt_test_register(const char *name, qt_test_fn fn)
{
    if (tests_count >= TESTS_MAX) {
        fprintf(stderr, "harness: more than %d tests in one binary\n", TESTS_MAX);
        exit(2);
    }
    tests[tests_count].name = name;
    tests[tests_count].fn = fn;
    tests_count++;
}

void
qt_test_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    current_failed = true;
    fprintf(stdout, "FAIL %s: %s:%d: ", current_name, file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

uint64_t
qt_test_seed(void)
{
    const char *s = getenv("QT_TEST_SEED");
    return s != NULL ? strtoull(s, NULL, 0) : 0x5eed2026ull;
}

uint64_t
qt_test_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

const char *
qt_test_dir(void)
{
    if (current_dir[0] != '\0')
        return current_dir;
    const char *base = getenv("TMPDIR");
    snprintf(current_dir, sizeof(current_dir), "%s/qtdb-%s-%s-XXXXXX", base != NULL ? base : "/tmp",
             prog_name, current_name);
    if (mkdtemp(current_dir) == NULL) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", current_dir, strerror(errno));
        exit(2);
    }
    return current_dir;
}

int
main(int argc, char **argv)
{
    (void)argc;
    const char *slash = strrchr(argv[0], '/');
    prog_name = slash != NULL ? slash + 1 : argv[0];
    const char *filter = getenv("QT_TEST_FILTER");
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < tests_count; i++) {
        if (filter != NULL && strstr(tests[i].name, filter) == NULL)
            continue;
        current_name = tests[i].name;
        current_failed = false;
        current_dir[0] = '\0';
        tests[i].fn();
        if (current_failed) {
            failed++;
            if (current_dir[0] != '\0')
                fprintf(stdout, "     (kept %s)\n", current_dir);
        } else {
            passed++;
            if (current_dir[0] != '\0')
                nftw(current_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
    }
    printf("%s: %d passed, %d failed\n", prog_name, passed, failed);
    return failed == 0 ? 0 : 1;
}
