/*
 * replay.c -- plain main() for fuzz targets, used by `make test`.
 *
 * Links with one fuzz/fuzz_<name>.c and feeds it every file named on the
 * command line (directories are walked one level).  A crash or sanitizer
 * report fails the run; otherwise it prints "replay: N passed, 0 failed"
 * counting each corpus file as one passed case.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Corpus files above this are not fuzz inputs; refuse rather than OOM. */
#define REPLAY_FILE_MAX (64u << 20)

static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    uint8_t *buf = malloc(REPLAY_FILE_MAX);
    if (buf == NULL) {
        fclose(f);
        return -1;
    }
    size_t n = fread(buf, 1, REPLAY_FILE_MAX, f);
    fclose(f);
    /* Copy into an exact-size allocation so ASan catches reads past n. */
    uint8_t *exact = malloc(n > 0 ? n : 1);
    if (exact == NULL) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

int
main(int argc, char **argv)
{
    int files = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            errors++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            errors += replay_file(argv[i]) != 0;
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            errors += replay_file(path) != 0;
            files++;
        }
        if (d != NULL)
            closedir(d);
    }
    printf("replay: %d passed, %d failed\n", files - errors, errors);
    return errors == 0 ? 0 : 1;
}
