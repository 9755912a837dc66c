/*
 * qt_err.h -- error codes shared by every layer.
 *
 * Contract: a function that can fail returns int: 0 on success, -errno for an
 * operating-system error (as liburing does), or one of the QT_E* codes below,
 * which live in a private negative range (-10000 .. -10999) that cannot
 * collide with -errno (Linux errno values stay below 4096).
 *
 * A code says *what class* of failure happened; qt_err_detail() says *why*:
 * the failing function stores a pointer to a static string literal in a
 * thread-local slot (qt_fail()).  No allocation, no I/O, so format/ decoders
 * can use it and stay pure.  The detail is only meaningful right after a
 * non-zero return, on the same thread.
 */
#ifndef QT_ERR_H
#define QT_ERR_H

enum {
    QT_OK = 0,
    QT_EBASE = -10000,
    QT_ETRUNC = -10001,     /* input ends before the structure does */
    QT_ECORRUPT = -10002,   /* structure is internally inconsistent */
    QT_ECHECKSUM = -10003,  /* stored checksum does not match the bytes */
    QT_EMAGIC = -10004,     /* not a qtdb file/record of the expected kind */
    QT_EVERSION = -10005,   /* format version newer than this build knows */
    QT_ENOSPACE = -10006,   /* caller's output buffer too small */
    QT_ELIMIT = -10007,     /* a named limit (qt_limits.h) would be exceeded */
    QT_EINVAL = -10008,     /* invalid argument or unsupported encoding id */
    QT_ESYNTAX = -10009,    /* malformed text input (query, line protocol) */
    QT_ENOTFOUND = -10010,  /* no such series/shard/file */
    QT_EREADONLY = -10011,  /* engine is read-only after a storage fault */
    QT_ECOLLISION = -10012, /* hash collision on a series key */
    QT_ECLOSED = -10013,    /* object was closed or is shutting down */
    QT_EBUSY = -10014,      /* resource is in use (another process, lock) */
    QT_ETIMEOUT = -10015,   /* a deadline passed */
    QT_ENOMEM = -10016,     /* allocation failed or memory budget exceeded */
    QT_ELAST = -10017
};

/* Return a static, human-readable name for any code (QT_E* or -errno). */
const char *qt_strerror(int code);

/* Store `why` (a string literal or other static string) as this thread's
 * error detail and return `code`.  Use as `return qt_fail(QT_ETRUNC, "...")`. */
int qt_fail(int code, const char *why);

/* The detail stored by the last qt_fail() on this thread, or "" if none. */
const char *qt_err_detail(void);

/* Clear this thread's detail (tests use it to check a fresh failure). */
void qt_err_clear(void);

#endif
