/*
 * serve.h -- `qtdb serve`: the server process (engine + TCP ingest loops +
 * HTTP API), its startup and its graceful shutdown.
 *
 * Startup: settings (flags, --config), listeners bound (so a port clash
 * fails before recovery starts), the engine opened and recovered, then the
 * ingest loops and the HTTP server started, then one log line a script can
 * read:
 *
 *   serve: ready ilp=127.0.0.1:8089 http=127.0.0.1:8086 graphite=off ...
 *
 * (bound addresses: a port given as 0 shows the port the kernel chose).
 * SIGTERM / SIGINT: stop accepting, store what was received, sync, close
 * the engine (which flushes), exit 0.
 */
#ifndef QT_SERVE_H
#define QT_SERVE_H

/* Version of the qtdb program (the on-disk format has its own number). */
#define QT_VERSION_STRING "0.1.0"

/* `qtdb serve ARGS` (argv[0] is "serve").  Exit code: 0 after a clean
 * shutdown, 1 on a runtime failure, 2 on a usage error. */
int qt_cmd_serve(int argc, char **argv);

#endif
