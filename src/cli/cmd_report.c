/* qeval report: placeholder until its issue lands; says so and fails. */
#include "cli.h"

#include <stdio.h>

int cmd_report(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "qeval: '%s' is not implemented yet\n", argv[0]);
    return QE_EXIT_USAGE;
}
