/* qeval: command dispatcher. Each command lives in its own cmd_<name>.c. */
#include "cli.h"
#include "err.h"

#include <stdio.h>
#include <string.h>

#ifndef QE_VERSION
#define QE_VERSION "0.1.0"
#endif

struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
};

static const struct command commands[] = {
    {"run", cmd_run, "evaluate one model on an OpenAI-compatible server"},
    {"sweep", cmd_sweep, "run a whole precision experiment from a plan file"},
    {"summarize", cmd_summarize, "main metric per model x task from results files"},
    {"compare", cmd_compare, "paired comparison of models on shared problems"},
    {"report", cmd_report, "write a self-contained HTML report"},
    {"rescore", cmd_rescore, "re-score lm-eval samples files"},
    {"grade", cmd_grade, "check answers against gold with the math verifier"},
    {"tasks", cmd_tasks, "list built-in tasks; show a rendered prompt"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: qeval <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'qeval <command> --help' describes each command.\n");
}

int qe_cli_exit_for(int status)
{
    switch (status) {
    case QE_OK: return QE_EXIT_OK;
    case QE_EINVAL: return QE_EXIT_INPUT;
    case QE_EIO: return QE_EXIT_IO;
    case QE_ENET:
    case QE_ESERVER: return QE_EXIT_SERVER;
    case QE_ESTATE: return QE_EXIT_STATE;
    case QE_EINTR: return QE_EXIT_INTR;
    default: return QE_EXIT_PARTIAL;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return QE_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return QE_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("qeval %s\n", QE_VERSION);
        return QE_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "qeval: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return QE_EXIT_USAGE;
}
