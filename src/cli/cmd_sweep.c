/* qeval sweep PLAN: the whole precision experiment from one plan file.
 *
 * Parses and validates the plan (task names through the task registry)
 * before anything starts, then either prints the dry run or runs the sweep
 * (src/sweep.h) with the runner (src/runner.h) evaluating each model x task.
 * SIGINT/SIGTERM stop it cleanly: the server is stopped, everything answered
 * is kept, exit 130, and the next run resumes. docs/sweep.md. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opt.h"
#include "plan.h"
#include "runner.h"
#include "sweep.h"
#include "task.h"

static volatile sig_atomic_t g_stop; /* the one global: signal handlers need it */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static bool task_exists(const char *name)
{
    return qe_task_find(name) != NULL;
}

static void print_note(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "qeval sweep: %s\n", line);
}

static int runner_eval(void *ud, const qe_run_opts *o, qe_run_summary *s, qe_err *e)
{
    (void)ud;
    return qe_runner_run(o, s, e);
}

/* The `qeval summarize` table over every results file the sweep has. */
static void summarize_results(const qe_plan *plan, const qe_sweep_report *rep)
{
    size_t np = rep->n_models * rep->n_tasks, n = 0;
    char **av = calloc(np + 2, sizeof *av);
    if (!av)
        return;
    av[n++] = (char *)"summarize";
    for (size_t i = 0; i < np; i++)
        if (rep->pairs[i].status == QE_SWEEP_DONE && rep->pairs[i].results_path &&
            access(rep->pairs[i].results_path, R_OK) == 0)
            av[n++] = rep->pairs[i].results_path;
    if (n > 1) {
        printf("\n");
        fflush(stdout);
        cmd_summarize((int)n, av);
        fflush(stdout);
    }
    (void)plan;
    free(av);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qeval sweep PLAN [--dry-run] [--force] [--only-model NAME]\n"
            "                        [--assume-rate REQ_PER_S] [--assume-startup SECONDS]\n"
            "\n"
            "Runs the plan's models x tasks (docs/plan.md, docs/sweep.md): per model, start its\n"
            "server, evaluate its tasks in plan order, stop it; under the plan's budget,\n"
            "high-priority tasks of every model first when everything would not fit.\n"
            "Rerunning the same plan resumes; finished model x task pairs are not redone.\n"
            "\n"
            "  --dry-run                 print commands, env, order, request counts and budget plan\n"
            "  --force                   redo finished model x task pairs (earlier files are kept)\n"
            "  --only-model NAME         run only the model with this models[].name\n"
            "  --assume-rate REQ_PER_S   requests/s assumed before any task was measured (default %.2f)\n"
            "  --assume-startup SECONDS  seconds per server start assumed before one was measured\n"
            "                            (default %.0f)\n"
            "  -h, --help                this text\n"
            "\n"
            "Exit: 0 all done, 1 some pairs failed or skipped, 2 usage, 3 invalid plan,\n"
            "5 servers failed to start, 6 state refused, 130 interrupted (rerun resumes).\n",
            QE_SWEEP_DEFAULT_RATE, QE_SWEEP_DEFAULT_STARTUP);
}

static int parse_positive(const char *flag, const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno || !(d > 0)) {
        fprintf(stderr, "qeval sweep: --%s needs a positive number\n", flag);
        return -1;
    }
    *out = d;
    return 0;
}

enum { O_DRY_RUN, O_FORCE, O_ONLY_MODEL, O_ASSUME_RATE, O_ASSUME_STARTUP };

static const qe_opt_spec options[] = {
    {"dry-run", O_DRY_RUN, QE_OPT_FLAG},
    {"force", O_FORCE, QE_OPT_FLAG},
    {"only-model", O_ONLY_MODEL, QE_OPT_VALUE},
    {"assume-rate", O_ASSUME_RATE, QE_OPT_VALUE},
    {"assume-startup", O_ASSUME_STARTUP, QE_OPT_VALUE},
};
static const qe_opt_cmd cli = {"sweep", options, sizeof options / sizeof *options, QE_OPT_COLLECT, usage, 1};

int cmd_sweep(int argc, char **argv)
{
    qe_sweep_opts o;
    memset(&o, 0, sizeof o);
    bool dry = false;
    qe_opt op;
    if (qe_opt_init(&op, &cli, argc, argv, 1))
        return QE_EXIT_IO;
    for (int id; (id = qe_opt_next(&op)) != QE_OPT_END;) {
        if (id == O_DRY_RUN) {
            dry = true;
        } else if (id == O_FORCE) {
            o.force = true;
        } else if (id == O_ONLY_MODEL) {
            o.only_model = op.val;
        } else if (id == O_ASSUME_RATE) {
            if (parse_positive("assume-rate", op.val, &o.default_rate))
                qe_opt_fail(&op);
        } else if (id == O_ASSUME_STARTUP) {
            if (parse_positive("assume-startup", op.val, &o.default_startup))
                qe_opt_fail(&op);
        }
    }
    if (op.exit < 0 && op.n_pos > 1) {
        fprintf(stderr, "qeval sweep: one plan file only ('%s' and '%s')\n", op.pos[0], op.pos[1]);
        op.exit = QE_EXIT_USAGE;
    }
    const char *plan_path = op.exit < 0 ? op.pos[0] : NULL;
    int exit_code = op.exit;
    qe_opt_free(&op);
    if (exit_code >= 0)
        return exit_code;

    qe_err err = {0};
    qe_plan *plan = NULL;
    int rc = qe_plan_load(plan_path, task_exists, &plan, &err);
    if (rc) {
        fprintf(stderr, "qeval: %s\n", err.msg);
        return rc == QE_EIO ? QE_EXIT_INPUT : qe_cli_exit_for(rc);
    }
    if (o.only_model) {
        bool found = false;
        for (size_t i = 0; i < plan->n_models; i++)
            found |= !strcmp(plan->models[i].name, o.only_model);
        if (!found) {
            fprintf(stderr, "qeval sweep: --only-model %s: %s has no model of that name\n", o.only_model, plan_path);
            qe_plan_free(plan);
            return QE_EXIT_USAGE;
        }
    }
    o.note = print_note;
    o.progress = isatty(2);
    /* like the runner's progress line, the "still waiting" notes are for a
     * person at a terminal; a log gets the line saying what is waited for */
    o.wait_report_s = o.progress ? 10 : 0;

    if (dry) {
        qe_buf out = QE_BUF_INIT;
        rc = qe_sweep_dry_run(plan, &o, &out, &err);
        if (!rc)
            fputs(qe_buf_str(&out), stdout);
        else
            fprintf(stderr, "qeval: %s\n", err.msg);
        qe_buf_free(&out);
        qe_plan_free(plan);
        return rc ? qe_cli_exit_for(rc) : QE_EXIT_OK;
    }

    if (plan->engine.kind != QE_PLAN_ENGINE_LMEVAL) {
        o.eval = runner_eval;
        o.free_summary = qe_run_summary_free;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    o.stop = &g_stop;

    qe_sweep_report rep;
    memset(&rep, 0, sizeof rep);
    rc = qe_sweep_run(plan, &o, &rep, &err);
    if (rep.pairs) {
        qe_buf t = QE_BUF_INIT;
        qe_sweep_format_table(plan, &rep, &t);
        fputs(qe_buf_str(&t), stdout);
        qe_buf_free(&t);
        for (size_t mi = 0; mi < rep.n_models; mi++)
            if (rep.quant_label[mi])
                printf("# %s: %s\n", plan->models[mi].name, rep.quant_label[mi]);
        fflush(stdout);
        summarize_results(plan, &rep);
    }
    int code = QE_EXIT_OK;
    if (rc == QE_EINTR) {
        fprintf(stderr, "qeval sweep: %s\n", err.msg);
        code = QE_EXIT_INTR;
    } else if (rc == QE_ESERVER) {
        fprintf(stderr, "qeval sweep: %s\n", err.msg);
        code = rep.any_start_failed && rep.n_done == 0 ? QE_EXIT_SERVER : QE_EXIT_PARTIAL;
    } else if (rc) {
        fprintf(stderr, "qeval: %s\n", err.msg);
        code = qe_cli_exit_for(rc);
    }
    qe_sweep_report_free(&rep);
    qe_plan_free(plan);
    return code;
}
