/*
 * ops_cli.h -- the operations subcommands of the qtdb binary, offline
 * (--data DIR) or against a running server (--server URL, its
 * /api/v1/ endpoints; DESIGN.md section 15):
 *
 *   qtdb shards  (--data DIR | --server URL)
 *   qtdb compact (--data DIR [--retention SPEC] | --server URL) (--shard ID | --all) [--force]
 *   qtdb rollup  (--data DIR --rollups SPEC | --server URL)    (server: its own rules)
 *   qtdb backup  (--data DIR | --server URL) --to DIR [--incremental] [--copy]
 *   qtdb restore --from DIR --data NEWDIR [--force]            (offline only)
 *   qtdb verify  (--data DIR | --backup DIR | --server URL) [--quarantine]
 *   qtdb export  'MEASUREMENT[,tag=value...]' [--from T] [--to T]
 *                --format lp|csv (--data DIR | --server URL)
 *
 * --server modes take --timeout S (seconds between bytes of the answer).
 * Each returns the process exit code (0 ok, 1 failure or damage found,
 * 2 usage).  Long operations draw a progress bar on stderr when it is a
 * terminal and print a summary at the end; SIGINT stops them between steps,
 * leaving the database consistent (exit 1, "interrupted").
 */
#ifndef QT_OPS_CLI_H
#define QT_OPS_CLI_H

int qt_cli_shards(int argc, char **argv);
int qt_cli_compact(int argc, char **argv);
int qt_cli_rollup(int argc, char **argv);
int qt_cli_backup(int argc, char **argv);
int qt_cli_restore(int argc, char **argv);
int qt_cli_verify(int argc, char **argv);
int qt_cli_export(int argc, char **argv);

#endif
