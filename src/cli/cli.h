/* cli: shared declarations of the qeval command line.
 *
 * One file per command (cmd_<name>.c), each exporting cmd_<name>(argc, argv)
 * with argv[0] being the command name. Commands print; the library does not.
 * Exit codes are part of the interface (docs/cli.md): */
#ifndef QE_CLI_H
#define QE_CLI_H

enum qe_exit {
    QE_EXIT_OK = 0,       /* everything asked for was done */
    QE_EXIT_PARTIAL = 1,  /* done, but some inputs/requests failed (listed) */
    QE_EXIT_USAGE = 2,    /* bad flags or arguments; nothing was done */
    QE_EXIT_INPUT = 3,    /* no usable input: unreadable/malformed files, plan */
    QE_EXIT_IO = 4,       /* could not write output (disk full, read-only) */
    QE_EXIT_SERVER = 5,   /* server/engine failed to start or kept failing */
    QE_EXIT_STATE = 6,    /* stored state refuses the operation (corrupt db) */
    QE_EXIT_INTR = 130,   /* interrupted by the user; everything kept */
};

int cmd_run(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_summarize(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_rescore(int argc, char **argv);
int cmd_grade(int argc, char **argv);
int cmd_tasks(int argc, char **argv);

/* Maps a library qe_status (err.h) to an exit code. */
int qe_cli_exit_for(int status);

#endif
