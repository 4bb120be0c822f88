/* qeval run: evaluate one model on an OpenAI-compatible server (the
 * replacement for `lm_eval --model local-chat-completions/vllm`). Parses
 * lm-eval-style flags, reads the API key from an environment variable,
 * installs SIGINT/SIGTERM handlers that stop sending, and prints what
 * qe_runner_run did. See docs/run.md. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "opt.h"
#include "runner.h"
#include "task.h"

static volatile sig_atomic_t g_stop; /* set by the signal handler only */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qeval run --base-url URL --model NAME --tasks T1,T2 --output-path DIR [options]\n"
            "\n"
            "Evaluates one model served by vLLM or any OpenAI-compatible server. Every answer\n"
            "is stored in DIR/qeval.sqlite as it arrives; rerunning the same command resumes\n"
            "and asks only what is missing. Results and samples are written in lm-eval's layout:\n"
            "DIR/<model with / -> __>/results_<date>.json and samples_<task>_<date>.jsonl.\n"
            "\n"
            "options (lm-eval's underscore spellings work too, e.g. --gen_kwargs):\n"
            "  --base-url URL            server root, e.g. http://127.0.0.1:8000 (a trailing\n"
            "                            /v1, /v1/chat/completions or /v1/completions is fine);\n"
            "                            repeat it for several servers of the same model: they\n"
            "                            share the work (--num-concurrent is per server)\n"
            "  --model NAME              the served model name (sent as \"model\")\n"
            "  --tasks LIST              comma-separated built-in tasks (qeval tasks)\n"
            "  --limit N                 first N docs per task (N < 1.0: that fraction)\n"
            "  --apply-chat-template     use /v1/chat/completions (the server's template)\n"
            "  --no-chat                 raw prompt to /v1/completions (the default when\n"
            "                            --apply-chat-template is absent, as in lm-eval)\n"
            "  --system-instruction TEXT system message (chat) or prompt prefix (raw)\n"
            "  --think on|off|default    chat_template_kwargs.enable_thinking (Qwen3)\n"
            "  --scorer lmeval|math      lmeval (default): lm-eval's verdicts only; math: also\n"
            "                            qeval's math verifier, as filter \"math-verify\" in\n"
            "                            the results and samples files (docs/run.md)\n"
            "  --gen-kwargs K=V,...      over the task's generation kwargs, e.g.\n"
            "                            max_gen_toks=1024,temperature=0 (or a JSON object)\n"
            "  --num-concurrent N        requests in flight (default 1)\n"
            "  --repeats K               answers per doc (default 1); repeat r uses seed+r\n"
            "  --seed S                  request seed (default 1234, lm-eval's)\n"
            "  --output-path DIR         where the store and the files go (required)\n"
            "  --log-samples             write samples_<task>_<date>.jsonl\n"
            "  --api-key-env VAR         read the API key from $VAR (never printed or stored)\n"
            "  --timeout SECONDS         per attempt (default 600)\n"
            "  --max-attempts N          per request, retries included (default 5)\n"
            "  --server-wait SECONDS     when the server stops answering, wait this long for\n"
            "                            its /health before giving up (default 60; 0 = no wait)\n"
            "  --help                    this text\n"
            "\n"
            "environment: QEVAL_COMMITTER=auto|loop|thread  who commits answers to the store:\n"
            "the event loop while commits are cheap, then a thread of its own (auto, the\n"
            "default), or always one of the two (docs/run.md, \"Who commits\").\n"
            "\n"
            "exit status: 0 all answered; 1 some requests failed (stored, listed, retried on\n"
            "the next run); 2 usage; 4 output not writable; 5 server unreachable or refusing;\n"
            "6 store refused; 130 interrupted (everything answered is kept).\n");
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Strips an lm-eval style endpoint suffix; returns a malloc'd root URL. */
static char *base_root(const char *url)
{
    char *u = strdup(url);
    if (!u)
        return NULL;
    size_t n = strlen(u);
    while (n > 0 && u[n - 1] == '/')
        u[--n] = 0;
    const char *suffixes[] = {"/chat/completions", "/completions"};
    for (size_t i = 0; i < 2; i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && !strcmp(u + n - k, suffixes[i])) {
            u[n - k] = 0;
            break;
        }
    }
    return u;
}

enum {
    O_BASE_URL, O_MODEL, O_TASKS, O_LIMIT, O_APPLY_CHAT_TEMPLATE, O_NO_CHAT, O_SYSTEM_INSTRUCTION, O_THINK, O_SCORER, O_GEN_KWARGS, O_NUM_CONCURRENT, O_REPEATS, O_SEED, O_LOG_SAMPLES, O_API_KEY_ENV, O_TIMEOUT, O_SERVER_WAIT, O_MAX_ATTEMPTS, O_OUTPUT_PATH,
};

static const qe_opt_spec options[] = {
    {"base-url", O_BASE_URL, QE_OPT_VALUE},
    {"model", O_MODEL, QE_OPT_VALUE},
    {"tasks", O_TASKS, QE_OPT_VALUE},
    {"limit", O_LIMIT, QE_OPT_VALUE},
    {"apply-chat-template", O_APPLY_CHAT_TEMPLATE, QE_OPT_INLINE},
    {"no-chat", O_NO_CHAT, QE_OPT_INLINE},
    {"system-instruction", O_SYSTEM_INSTRUCTION, QE_OPT_VALUE},
    {"think", O_THINK, QE_OPT_VALUE},
    {"scorer", O_SCORER, QE_OPT_VALUE},
    {"gen-kwargs", O_GEN_KWARGS, QE_OPT_VALUE},
    {"num-concurrent", O_NUM_CONCURRENT, QE_OPT_VALUE},
    {"repeats", O_REPEATS, QE_OPT_VALUE},
    {"seed", O_SEED, QE_OPT_VALUE},
    {"log-samples", O_LOG_SAMPLES, QE_OPT_INLINE},
    {"api-key-env", O_API_KEY_ENV, QE_OPT_VALUE},
    {"timeout", O_TIMEOUT, QE_OPT_VALUE},
    {"server-wait", O_SERVER_WAIT, QE_OPT_VALUE},
    {"max-attempts", O_MAX_ATTEMPTS, QE_OPT_VALUE},
    {"output-path", O_OUTPUT_PATH, QE_OPT_VALUE},
    {"-o", O_OUTPUT_PATH, QE_OPT_VALUE},
};
static const char *const thinks[] = {"on", "off", "default", NULL};
static const qe_opt_cmd cli = {"run", options, sizeof options / sizeof *options, 0, NULL, 0};

int cmd_run(int argc, char **argv)
{
    qe_run_opts o;
    memset(&o, 0, sizeof o);
    o.think = -1;
    o.num_concurrent = 1;
    o.repeats = 1;
    o.seed = 1234;
    o.max_attempts = 5;
    o.timeout_s = 600;
    const char *base_url = NULL, *tasks_arg = NULL, *key_env = NULL;
    bool chat = false, no_chat = false;
    int ret = QE_EXIT_USAGE;
    char *tasks_copy = NULL, *root = NULL;
    const char **tasks = NULL;
    const char *urls_in[64];
    char *roots[64] = {0};
    size_t n_urls = 0;

    qe_opt p;
    qe_opt_init(&p, &cli, argc, argv, 1);
    int id;
    while ((id = qe_opt_next(&p)) != QE_OPT_END) {
        const char *v = p.val;
        long n;
        if (id == QE_OPT_HELP) {
            usage(stdout);
            ret = QE_EXIT_OK;
            goto out;
        } else if (id == O_BASE_URL) {
            if (n_urls >= 64) {
                fprintf(stderr, "qeval run: at most 64 --base-url\n");
                goto out;
            }
            urls_in[n_urls++] = v;
            base_url = v;
        } else if (id == O_MODEL) {
            o.model = v;
        } else if (id == O_TASKS) {
            tasks_arg = v;
        } else if (id == O_LIMIT) {
            char *end;
            errno = 0;
            o.limit = strtod(v, &end);
            if (errno || end == v || *end || !(o.limit > 0) || isinf(o.limit)) {
                fprintf(stderr, "qeval run: --limit must be a positive number, not '%s'\n", v);
                goto out;
            }
        } else if (id == O_APPLY_CHAT_TEMPLATE) {
            if (v && strcmp(v, "true") && strcmp(v, "1")) {
                fprintf(stderr, "qeval run: named chat templates are not supported ('%s')\n", v);
                goto out;
            }
            chat = true;
        } else if (id == O_NO_CHAT) {
            no_chat = true;
        } else if (id == O_SYSTEM_INSTRUCTION) {
            o.system_instruction = v;
        } else if (id == O_THINK) {
            if (qe_opt_pick(v, thinks, (const int[]){1, 0, -1}, &o.think)) {
                fprintf(stderr, "qeval run: --think takes on, off or default, not '%s'\n", v);
                goto out;
            }
        } else if (id == O_SCORER) {
            int k;
            if (qe_opt_pick(v, qe_opt_scorers, NULL, &k)) {
                fprintf(stderr, "qeval run: --scorer takes lmeval or math, not '%s'\n", v);
                goto out;
            }
            o.scorer = k ? QE_RUN_SCORER_MATH : QE_RUN_SCORER_LMEVAL;
        } else if (id == O_GEN_KWARGS) {
            o.gen_kwargs = v;
        } else if (id == O_NUM_CONCURRENT) {
            if (parse_int(v, 1, 4096, &n)) {
                fprintf(stderr, "qeval run: --num-concurrent must be 1..4096\n");
                goto out;
            }
            o.num_concurrent = (int)n;
        } else if (id == O_REPEATS) {
            if (parse_int(v, 1, 1000, &n)) {
                fprintf(stderr, "qeval run: --repeats must be 1..1000\n");
                goto out;
            }
            o.repeats = (int)n;
        } else if (id == O_SEED) {
            if (parse_int(v, 0, 2147483647L, &n)) {
                fprintf(stderr, "qeval run: --seed must be 0..2147483647\n");
                goto out;
            }
            o.seed = (uint64_t)n;
        } else if (id == O_OUTPUT_PATH) {
            o.output_path = v;
        } else if (id == O_LOG_SAMPLES) {
            o.log_samples = true;
        } else if (id == O_API_KEY_ENV) {
            key_env = v;
        } else if (id == O_TIMEOUT) {
            char *end;
            o.timeout_s = strtod(v, &end);
            if (end == v || *end || !(o.timeout_s > 0) || o.timeout_s > 86400) {
                fprintf(stderr, "qeval run: --timeout must be 0 < seconds <= 86400\n");
                goto out;
            }
        } else if (id == O_SERVER_WAIT) {
            char *end;
            o.server_wait_s = strtod(v, &end);
            if (end == v || *end || o.server_wait_s > 86400) {
                fprintf(stderr, "qeval run: --server-wait takes seconds (0 = no wait)\n");
                goto out;
            }
            if (o.server_wait_s == 0)
                o.server_wait_s = -1;
        } else if (id == O_MAX_ATTEMPTS) {
            if (parse_int(v, 1, 100, &n)) {
                fprintf(stderr, "qeval run: --max-attempts must be 1..100\n");
                goto out;
            }
            o.max_attempts = (int)n;
        } else if (id == QE_OPT_MISSING) { /* reported */
            goto out;
        } else {
            fprintf(stderr, "qeval run: unknown argument '%s' (see qeval run --help)\n", p.arg);
            goto out;
        }
    }
    if (!base_url || !o.model || !tasks_arg || !o.output_path) {
        fprintf(stderr, "qeval run: --base-url, --model, --tasks and --output-path are required "
                        "(see qeval run --help)\n");
        goto out;
    }
    if (chat && no_chat) {
        fprintf(stderr, "qeval run: --apply-chat-template and --no-chat contradict each other\n");
        goto out;
    }
    o.apply_chat_template = chat;
    if (o.think >= 0 && !chat) {
        fprintf(stderr, "qeval run: --think needs --apply-chat-template\n");
        goto out;
    }
    if (key_env) {
        o.api_key = getenv(key_env);
        if (!o.api_key || !*o.api_key) {
            fprintf(stderr, "qeval run: --api-key-env %s: that variable is not set\n", key_env);
            goto out;
        }
    }
    tasks_copy = strdup(tasks_arg);
    tasks = calloc(strlen(tasks_arg) + 1, sizeof *tasks);
    if (!tasks_copy || !tasks) {
        ret = QE_EXIT_IO;
        goto out;
    }
    for (char *save = NULL, *t = strtok_r(tasks_copy, ",", &save); t;
         t = strtok_r(NULL, ",", &save))
        if (*t)
            tasks[o.n_tasks++] = t;
    if (!o.n_tasks) {
        fprintf(stderr, "qeval run: --tasks is empty\n");
        goto out;
    }
    o.tasks = tasks;
    const char *urls[64];
    for (size_t i = 0; i < n_urls; i++) {
        roots[i] = base_root(urls_in[i]);
        urls[i] = roots[i] ? roots[i] : urls_in[i];
    }
    o.base_urls = urls;
    o.n_base_urls = n_urls;
    o.stop = &g_stop;
    o.progress = isatty(STDERR_FILENO);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    qe_run_summary s;
    qe_err e = {0, ""};
    int rc = qe_runner_run(&o, &s, &e);

    if (s.notices)
        fprintf(stderr, "qeval run: %s", s.notices);
    for (size_t i = 0; i < s.n_tasks; i++) {
        const qe_run_task_summary *t = &s.tasks[i];
        if (!t->requested)
            continue;
        if (t->limit_clamped_from)
            printf("%s: --limit %zu is above the dataset size; all %zu docs used\n", t->task,
                   t->limit_clamped_from, t->requested / (size_t)o.repeats);
        printf("%s: %zu/%zu answered (%zu from the store, %zu sent this time", t->task, t->ok,
               t->requested, t->from_store, t->sent);
        if (t->failed)
            printf(", %zu missing or failed", t->failed);
        printf(")");
        if (!isnan(t->accuracy)) {
            /* the first filter's, lm-eval's main one; named when there are two */
            const qe_task *tk = qe_task_find(t->task);
            if (tk && qe_task_filter_count(tk) > 1)
                printf(", exact_match (%s) %.4f", qe_task_filter(tk, 0), t->accuracy);
            else
                printf(", exact_match %.4f", t->accuracy);
        }
        if (t->truncated)
            printf(", %zu truncated (cut at max_tokens or inside <think>)", t->truncated);
        if (o.scorer == QE_RUN_SCORER_MATH && !isnan(t->math_accuracy)) {
            printf(", math-verify %.4f", t->math_accuracy);
            if (t->math_undecided)
                printf(" (%zu undecided, counted wrong)", t->math_undecided);
        }
        printf("\n");
        qe_buf diag = QE_BUF_INIT;
        if (qe_run_task_diagnose(t, &diag) == 0 && diag.len)
            fputs(qe_buf_str(&diag), stdout);
        qe_buf_free(&diag);
        if (t->results_path)
            printf("  results: %s%s\n", t->results_path,
                   t->results_reused ? " (unchanged, not rewritten)" : "");
        if (t->samples_path)
            printf("  samples: %s\n", t->samples_path);
    }
    if (rc == 0 && s.all_from_store)
        printf("all answers came from the store; nothing was sent\n");
    if (s.n_failures) {
        fprintf(stderr, "qeval run: failed requests (stored; asked again on the next run):\n");
        for (size_t i = 0; i < s.n_failures; i++)
            fprintf(stderr, "  %s\n", s.failures[i]);
    }
    size_t n_failed = 0;
    for (size_t i = 0; i < s.n_tasks; i++)
        n_failed += s.tasks[i].failed;
    if (rc == QE_ESERVER && s.n_failures && n_failed >= s.n_failures) {
        /* the list above says which and why */
        if (n_failed > s.n_failures)
            fprintf(stderr, "  ... and %zu more\n", n_failed - s.n_failures);
        fprintf(stderr,
                "qeval run: %zu request%s failed; rerun the same command to ask %s again\n",
                n_failed, n_failed == 1 ? "" : "s", n_failed == 1 ? "it" : "them");
        ret = QE_EXIT_PARTIAL;
    } else if (rc) {
        fprintf(stderr, "qeval run: %s\n", e.msg[0] ? e.msg : qe_status_name(rc));
        if (rc == QE_ESERVER && s.n_failures)
            ret = QE_EXIT_PARTIAL;
        else if (s.bad_options)
            ret = QE_EXIT_USAGE;
        else
            ret = qe_cli_exit_for(rc);
    } else {
        ret = QE_EXIT_OK;
    }
    qe_run_summary_free(&s);
out:
    free(tasks_copy);
    free(tasks);
    free(root);
    for (size_t i = 0; i < n_urls; i++)
        free(roots[i]);
    return ret;
}
