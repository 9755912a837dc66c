/*
 * cli.h -- client subcommands of the qtdb binary.
 *
 *   qtdb query [--server URL] [--format table|csv|json] [--timeout S] 'QUERY'
 *       GET /query on a running server; prints the result.  A bad query
 *       prints the server's caret message.
 *   qtdb load [--server HOST:PORT] [--precision ns|us|ms|s]
 *             [--connections N] FILE|-
 *       streams a line-protocol file over TCP (the ILP port), with a
 *       progress line on a terminal and a summary at the end.
 *
 * Exit codes (as server/main.c documents): 0 ok; 1 runtime failure
 * (cannot connect, server error); 2 usage error or bad query; 3 the server
 * lacks the query executor.
 */
#ifndef QT_CLI_H
#define QT_CLI_H

int qt_cmd_query(int argc, char **argv);
int qt_cmd_load(int argc, char **argv);

#endif
