/*
 * util.c -- helpers shared by storage tests (see util.h).
 */
#include "util.h"

#include "format/qt_err.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum qt_io_kind
qt_test_io_kind(void)
{
    const char *s = getenv("QT_TEST_IO");
    if (s != NULL && strcmp(s, "uring") == 0)
        return QT_IO_URING;
    return QT_IO_POSIX;
}

struct qt_io *
qt_test_io(void)
{
    struct qt_io *io = NULL;
    int rc = qt_io_create(qt_test_io_kind(), NULL, &io);
    if (rc != 0) {
        fprintf(stderr, "test: cannot create io backend %s: %s (%s)\n",
                qt_io_kind_name(qt_test_io_kind()), qt_strerror(rc), qt_err_detail());
        abort();
    }
    return io;
}

int64_t
qt_test_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

uint8_t *
qt_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf != NULL && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n > 0 ? (size_t)n : 0;
    return buf;
}

int
qt_test_write_at(const char *path, uint64_t off, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t w = pwrite(fd, buf, len, (off_t)off);
    close(fd);
    return w == (ssize_t)len ? 0 : -1;
}
