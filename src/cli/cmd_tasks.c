/* qeval tasks: list the built-in tasks, or show one prompt exactly as the
 * model receives it (raw, rendered with the built-in ChatML template, or as
 * JSON chat messages). */
#include "cli.h"

#include "chat.h"
#include "opt.h"
#include "task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: qeval tasks [--help]\n"
    "       qeval tasks show NAME [--doc N] [--chat | --json] [--system-instruction S]\n"
    "                             [--think on|off] [--num-fewshot K] [--fewshot-as-multiturn]\n"
    "\n"
    "Lists the built-in tasks (lm-eval v0.4.9.2 settings), or prints the prompt of\n"
    "document N (default 0) of task NAME: raw as sent to /v1/completions, with\n"
    "--chat rendered with the built-in ChatML/Qwen3 template (display only; the\n"
    "server renders the real one), with --json as the chat messages.\n";

/* The cells of task t's row: max_gen_toks and "filters / metric". */
static void list_cells(const qe_task *t, char mgt[32], char filt[96])
{
    if (qe_task_max_gen_toks(t))
        snprintf(mgt, 32, "%d", qe_task_max_gen_toks(t));
    else
        snprintf(mgt, 32, "256 (default)");
    filt[0] = '\0';
    for (size_t f = 0; f < qe_task_filter_count(t); f++) {
        strncat(filt, f ? "," : "", 96 - strlen(filt) - 1);
        strncat(filt, qe_task_filter(t, f), 96 - strlen(filt) - 1);
    }
    strncat(filt, " / exact_match", 96 - strlen(filt) - 1);
}

static void print_list(void)
{
    /* columns as wide as their widest cell */
    int wn = 4, wm = 12, wf = 16;
    for (size_t i = 0; i < qe_task_count(); i++) {
        char mgt[32], filt[96];
        list_cells(qe_task_at(i), mgt, filt);
        int l = (int)strlen(qe_task_name(qe_task_at(i)));
        wn = l > wn ? l : wn;
        wm = (int)strlen(mgt) > wm ? (int)strlen(mgt) : wm;
        wf = (int)strlen(filt) > wf ? (int)strlen(filt) : wf;
    }
    printf("%-*s %5s %4s %-7s %-*s %-*s  %s\n", wn, "task", "size", "shot", "version", wm,
           "max_gen_toks", wf, "filters / metric", "stop sequences");
    for (size_t i = 0; i < qe_task_count(); i++) {
        const qe_task *t = qe_task_at(i);
        size_t n = 0;
        qe_err e = {0};
        if (qe_task_size(t, &n, &e))
            n = 0;
        char mgt[32], filt[96];
        list_cells(t, mgt, filt);
        printf("%-*s %5zu %4d %-7s %-*s %-*s  ", wn, qe_task_name(t), n, qe_task_num_fewshot(t),
               qe_task_version(t), wm, mgt, wf, filt);
        for (size_t u = 0; u < qe_task_until_count(t); u++)
            printf("%s\"%s\"", u ? " " : "", qe_task_until(t, u));
        printf("\n%-*s source: %s%s%s (%s)\n", wn, "", qe_task_dataset_path(t),
               qe_task_dataset_name(t) ? "/" : "",
               qe_task_dataset_name(t) ? qe_task_dataset_name(t) : "", qe_task_data_file(t));
    }
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = (size_t)v;
    return 0;
}

enum { O_DOC, O_CHAT, O_JSON, O_FEWSHOT_AS_MULTITURN, O_SYSTEM_INSTRUCTION, O_NUM_FEWSHOT, O_THINK };

static const qe_opt_spec show_options[] = {
    {"doc", O_DOC, QE_OPT_VALUE},
    {"chat", O_CHAT, QE_OPT_FLAG},
    {"json", O_JSON, QE_OPT_FLAG},
    {"fewshot-as-multiturn", O_FEWSHOT_AS_MULTITURN, QE_OPT_FLAG},
    {"system-instruction", O_SYSTEM_INSTRUCTION, QE_OPT_VALUE},
    {"num-fewshot", O_NUM_FEWSHOT, QE_OPT_VALUE},
    {"think", O_THINK, QE_OPT_VALUE},
};
static const qe_opt_cmd show_cli = {"tasks", show_options,
                                    sizeof show_options / sizeof *show_options, 0, NULL, 0};

static int show(int argc, char **argv)
{
    const char *name = NULL;
    size_t doc = 0, k;
    int chat = 0, json = 0, id;
    enum qe_chat_think think = QE_THINK_DEFAULT;
    qe_prompt_opts o = QE_PROMPT_OPTS_INIT;
    qe_opt p;
    qe_opt_init(&p, &show_cli, argc, argv, 0);
    while ((id = qe_opt_next(&p)) != QE_OPT_END) {
        const char *v = p.val;
        switch (id) {
        case QE_OPT_HELP:
            fputs(usage, stdout);
            return QE_EXIT_OK;
        case O_DOC:
            if (parse_size(v, &doc)) {
                fprintf(stderr, "qeval tasks: --doc %s: not a document index\n", v);
                return QE_EXIT_USAGE;
            }
            break;
        case O_CHAT:
            chat = 1;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_FEWSHOT_AS_MULTITURN:
            o.fewshot_as_multiturn = true;
            break;
        case O_SYSTEM_INSTRUCTION:
            o.system_instruction = v;
            break;
        case O_NUM_FEWSHOT:
            if (parse_size(v, &k) || k > 64) {
                fprintf(stderr, "qeval tasks: --num-fewshot %s: want 0..64\n", v);
                return QE_EXIT_USAGE;
            }
            o.num_fewshot = (int)k;
            break;
        case O_THINK: {
            static const char *const names[] = {"on", "off", "default", NULL};
            static const int values[] = {QE_THINK_ON, QE_THINK_OFF, QE_THINK_DEFAULT};
            int t;
            if (qe_opt_pick(v, names, values, &t)) {
                fprintf(stderr, "qeval tasks: --think %s: want on, off or default\n", v);
                return QE_EXIT_USAGE;
            }
            think = (enum qe_chat_think)t;
            break;
        }
        case QE_OPT_MISSING: /* reported */
            return QE_EXIT_USAGE;
        case QE_OPT_POS:
            if (!name && p.arg[0] != '-') {
                name = p.arg;
                break;
            }
            /* fall through */
        default:
            fprintf(stderr, "qeval tasks show: unexpected argument '%s' (see --help)\n", p.arg);
            return QE_EXIT_USAGE;
        }
    }
    if (!name) {
        fprintf(stderr, "qeval tasks show: missing task NAME (see --help)\n");
        return QE_EXIT_USAGE;
    }
    const qe_task *t = qe_task_find(name);
    if (!t) {
        fprintf(stderr, "qeval tasks: unknown task '%s' (known:", name);
        for (size_t i = 0; i < qe_task_count(); i++)
            fprintf(stderr, " %s", qe_task_name(qe_task_at(i)));
        fprintf(stderr, ")\n");
        return QE_EXIT_USAGE;
    }
    qe_err e = {0};
    size_t n = 0;
    int rc = qe_task_size(t, &n, &e);
    if (!rc && doc >= n) {
        fprintf(stderr, "qeval tasks: %s: --doc %zu out of range (0..%zu)\n", name, doc, n - 1);
        return QE_EXIT_USAGE;
    }
    qe_buf b = QE_BUF_INIT;
    if (!rc && (chat || json)) {
        json_t *msgs = NULL;
        rc = qe_task_messages(t, doc, &o, &msgs, &e);
        if (!rc && json) {
            char *s = json_dumps(msgs, JSON_PRESERVE_ORDER | JSON_INDENT(2));
            if (s)
                qe_buf_puts(&b, s);
            free(s);
            qe_buf_putc(&b, '\n');
        } else if (!rc) {
            rc = qe_chat_render(msgs, think, &b, &e);
        }
        json_decref(msgs);
    } else if (!rc) {
        rc = qe_task_context(t, doc, &o, &b, &e);
    }
    if (rc) {
        fprintf(stderr, "qeval tasks: %s\n", e.msg);
        qe_buf_free(&b);
        return rc == QE_EINVAL ? QE_EXIT_USAGE : qe_cli_exit_for(rc);
    }
    fwrite(b.data ? b.data : "", 1, b.len, stdout);
    qe_buf_free(&b);
    return fflush(stdout) ? QE_EXIT_IO : QE_EXIT_OK;
}

int cmd_tasks(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return QE_EXIT_OK;
    }
    if (argc >= 2 && !strcmp(argv[1], "show"))
        return show(argc - 2, argv + 2);
    if (argc >= 2) {
        fprintf(stderr, "qeval tasks: unknown argument '%s' (see --help)\n", argv[1]);
        return QE_EXIT_USAGE;
    }
    print_list();
    return QE_EXIT_OK;
}
