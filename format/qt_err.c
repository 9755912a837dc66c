/*
 * qt_err.c -- error names and the thread-local error detail (see qt_err.h).
 */
#include "qt_err.h"

#include <string.h>

static _Thread_local const char *err_detail;

const char *
qt_strerror(int code)
{
    switch (code) {
    case QT_OK: return "success";
    case QT_ETRUNC: return "truncated input";
    case QT_ECORRUPT: return "corrupt data";
    case QT_ECHECKSUM: return "checksum mismatch";
    case QT_EMAGIC: return "bad magic number";
    case QT_EVERSION: return "unsupported format version";
    case QT_ENOSPACE: return "output buffer too small";
    case QT_ELIMIT: return "limit exceeded";
    case QT_EINVAL: return "invalid argument";
    case QT_ESYNTAX: return "syntax error";
    case QT_ENOTFOUND: return "not found";
    case QT_EREADONLY: return "database is read-only after a storage fault";
    case QT_ECOLLISION: return "series key hash collision";
    case QT_ECLOSED: return "closed";
    case QT_EBUSY: return "busy";
    case QT_ETIMEOUT: return "deadline exceeded";
    case QT_ENOMEM: return "out of memory";
    default: break;
    }
    if (code < 0 && code > -4096)
        return strerror(-code);
    return "unknown error";
}

int
qt_fail(int code, const char *why)
{
    err_detail = why;
    return code;
}

const char *
qt_err_detail(void)
{
    return err_detail != NULL ? err_detail : "";
}

void
qt_err_clear(void)
{
    err_detail = NULL;
}
