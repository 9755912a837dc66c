/*
 * main.c -- the qtdb binary: subcommand dispatch.
 *
 * Exit codes (documented in README.md):
 *   0 success, 1 runtime failure (I/O, server error, damage found by verify),
 *   2 usage error (bad flags or query syntax), 3 subcommand not available.
 */
#include "format/qt_limits.h"
#include "server/cli.h"
#include "server/ops_cli.h"
#include "server/serve.h"

#include <stdio.h>
#include <string.h>

struct subcommand {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

static const struct subcommand subcommands[] = {
    {"serve", "run the server (line protocol over TCP, HTTP API, Graphite)", qt_cmd_serve},
    {"query", "run a query against a server and print the result", qt_cmd_query},
    {"load", "bulk-load line protocol from a file over TCP", qt_cmd_load},
    {"shards", "list shards with their sizes and state", qt_cli_shards},
    {"compact", "merge a shard's segments", qt_cli_compact},
    {"rollup", "compute per-bucket rollups of ended shards", qt_cli_rollup},
    {"backup", "take an online, consistent backup", qt_cli_backup},
    {"restore", "restore a backup into an empty data directory", qt_cli_restore},
    {"verify", "check every checksum of a data directory or backup", qt_cli_verify},
    {"export", "stream raw points as line protocol or CSV", qt_cli_export},
};

static void
usage(FILE *out)
{
    fprintf(out, "usage: qtdb <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(out, "  %-9s %s%s\n", subcommands[i].name, subcommands[i].summary,
                subcommands[i].run == NULL ? " (not yet available)" : "");
    fprintf(out, "\n'qtdb <command> --help' describes a command's options.\n"
                 "exit codes: 0 ok, 1 failure, 2 usage error, 3 command not available\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("qtdb %s (format version %u)\n", QT_VERSION_STRING, QT_FORMAT_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (strcmp(argv[1], subcommands[i].name) != 0)
            continue;
        if (subcommands[i].run == NULL) {
            fprintf(stderr, "qtdb: '%s' is not available in this build yet\n", argv[1]);
            return 3;
        }
        return subcommands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "qtdb: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
