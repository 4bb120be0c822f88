/* plan: YAML plan file → typed qe_plan (see plan.h and docs/plan.md).
 *
 * Two passes over the text with libyaml: an event pass that enforces the
 * nesting-depth bound and rejects anchors/aliases (they would let a small
 * file describe a huge tree), then the document loader whose node tree we
 * walk with a fixed schema. Every node keeps its start mark, so each error
 * names FILE:LINE:COL of the offending key or value. */
#include "plan.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct {
    const char *file;
    yaml_document_t *doc;
    qe_err *err;
    qe_plan_task_exists_fn task_exists;
} ctx;

static int fail_at(ctx *c, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail_at(ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *m = msg; *m; m++) /* values echoed from the file stay on one line */
        if ((unsigned char)*m < 0x20 || *m == 0x7f)
            *m = '?';
    size_t line = n ? n->start_mark.line + 1 : 1, col = n ? n->start_mark.column + 1 : 1;
    return qe_err_set(c->err, QE_EINVAL, "%s:%zu:%zu: %s", c->file, line, col, msg);
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool is_null(const yaml_node_t *n)
{
    if (!is_plain(n))
        return false;
    const char *s = scalar(n);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static const char *type_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_SCALAR_NODE:
        if (is_null(n))
            return "null";
        return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? "a scalar" : "a quoted string";
    default: return "nothing";
    }
}

/* ---- scalar conversions ------------------------------------------------ */

static int get_str(ctx *c, const yaml_node_t *n, const char *key, char **out)
{
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return fail_at(c, n, "%s: expected a string, got %s", key, type_name(n));
    if (n->data.scalar.length > QE_PLAN_MAX_STR)
        return fail_at(c, n, "%s: value longer than %u bytes", key, QE_PLAN_MAX_STR);
    if (strlen(scalar(n)) != n->data.scalar.length)
        return fail_at(c, n, "%s: value contains a NUL byte", key);
    free(*out);
    *out = strdup(scalar(n));
    return *out ? 0 : qe_err_set(c->err, QE_ENOMEM, "out of memory");
}

/* A non-empty string. */
static int get_nonempty(ctx *c, const yaml_node_t *n, const char *key, char **out)
{
    int rc = get_str(c, n, key, out);
    if (!rc && !**out)
        return fail_at(c, n, "%s: must not be empty", key);
    return rc;
}

/* A path: nothing expands it, so "$HOME/x", "${HF_HOME}" or "~/x" would
 * name a directory literally called "$HOME" or "~" here. */
static int get_path(ctx *c, const yaml_node_t *n, const char *key, char **out)
{
    int rc = get_nonempty(c, n, key, out);
    if (rc)
        return rc;
    const char *s = *out, *d = strchr(s, '$');
    if (s[0] == '~' || (d && (d[1] == '{' || d[1] == '_' || isalpha((unsigned char)d[1]))))
        return fail_at(c, n, "%s: '%s': environment variables and '~' are not expanded in a plan; "
                       "write the path out (e.g. /home/me/...)", key, s);
    return 0;
}

/* An environment variable's name: [A-Za-z_][A-Za-z0-9_]*. */
static bool is_env_name(const char *s)
{
    if (!*s || !(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static int get_int(ctx *c, const yaml_node_t *n, const char *key, long lo, long hi, long *out)
{
    if (!is_plain(n) || is_null(n))
        return fail_at(c, n, "%s: expected an integer, got %s", key, type_name(n));
    const char *s = scalar(n);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || isspace((unsigned char)*s))
        return fail_at(c, n, "%s: expected an integer, got '%s'", key, s);
    if (v < lo || v > hi)
        return fail_at(c, n, "%s: %ld is out of range [%ld, %ld]", key, v, lo, hi);
    *out = v;
    return 0;
}

static int get_num(ctx *c, const yaml_node_t *n, const char *key, double lo, double hi, double *out)
{
    if (!is_plain(n) || is_null(n))
        return fail_at(c, n, "%s: expected a number, got %s", key, type_name(n));
    const char *s = scalar(n);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || isspace((unsigned char)*s))
        return fail_at(c, n, "%s: expected a number, got '%s'", key, s);
    if (v < lo || v > hi)
        return fail_at(c, n, "%s: %g is out of range [%g, %g]", key, v, lo, hi);
    *out = v;
    return 0;
}

static int get_bool(ctx *c, const yaml_node_t *n, const char *key, bool *out)
{
    if (is_plain(n)) {
        const char *s = scalar(n);
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
            *out = true;
            return 0;
        }
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
            *out = false;
            return 0;
        }
    }
    return fail_at(c, n, "%s: expected true or false, got %s%s%s%s", key, type_name(n),
                   n->type == YAML_SCALAR_NODE ? " '" : "", n->type == YAML_SCALAR_NODE ? scalar(n) : "",
                   n->type == YAML_SCALAR_NODE ? "'" : "");
}

static int get_strlist(ctx *c, const yaml_node_t *n, const char *key, char ***out, size_t *nout)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail_at(c, n, "%s: expected a list of strings, got %s", key, type_name(n));
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt > QE_PLAN_MAX_LIST)
        return fail_at(c, n, "%s: more than %u items", key, QE_PLAN_MAX_LIST);
    char **v = calloc(cnt + 1, sizeof *v);
    if (!v)
        return qe_err_set(c->err, QE_ENOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_t *it = yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
        int rc = get_str(c, it, key, &v[i]);
        if (rc) {
            for (size_t k = 0; k < i; k++)
                free(v[k]);
            free(v);
            return rc;
        }
    }
    for (size_t k = 0; k < *nout; k++)
        free((*out)[k]);
    free(*out);
    *out = v;
    *nout = cnt;
    return 0;
}

/* ---- mapping walk ------------------------------------------------------ */

typedef int (*pair_fn)(ctx *c, const char *key, const yaml_node_t *knode, const yaml_node_t *val, void *obj);

/* Calls fn for each key of mapping n, after checking it is a mapping with
 * scalar, unique keys. what names the mapping in messages. */
static int walk_map(ctx *c, const yaml_node_t *n, const char *what, pair_fn fn, void *obj)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail_at(c, n, "%s: expected a mapping, got %s", what, type_name(n));
    yaml_node_pair_t *b = n->data.mapping.pairs.start, *e = n->data.mapping.pairs.top;
    for (yaml_node_pair_t *p = b; p < e; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return fail_at(c, k, "%s: keys must be plain strings", what);
        for (yaml_node_pair_t *q = b; q < p; q++) {
            const yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
            if (k2->type == YAML_SCALAR_NODE && !strcmp(scalar(k2), scalar(k)))
                return fail_at(c, k, "%s: duplicate key '%s' (first at line %zu)", what, scalar(k),
                               k2->start_mark.line + 1);
        }
        int rc = fn(c, scalar(k), k, v, obj);
        if (rc)
            return rc;
    }
    return 0;
}

static int unknown_key(ctx *c, const yaml_node_t *k, const char *what, const char *key, const char *allowed)
{
    return fail_at(c, k, "%s: unknown key '%s' (allowed: %s)", what, key, allowed);
}

/* Engine args are shared by `engine:` and each model entry. Returns 1 when
 * key is not an engine arg. */
static int engine_arg(ctx *c, const char *key, const yaml_node_t *v, qe_plan_engine_args *a)
{
    long l;
    int rc;
    if (!strcmp(key, "tensor_parallel_size")) {
        if ((rc = get_int(c, v, key, 1, 1024, &l)))
            return rc;
        a->tensor_parallel_size = (int)l;
    } else if (!strcmp(key, "gpu_memory_utilization")) {
        if ((rc = get_num(c, v, key, 0, 1, &a->gpu_memory_utilization)))
            return rc;
        if (a->gpu_memory_utilization <= 0)
            return fail_at(c, v, "%s: must be greater than 0", key);
    } else if (!strcmp(key, "max_model_len")) {
        if ((rc = get_int(c, v, key, 1, 1L << 24, &l)))
            return rc;
        a->max_model_len = (int)l;
    } else if (!strcmp(key, "max_num_seqs")) {
        if ((rc = get_int(c, v, key, 1, 1L << 20, &l)))
            return rc;
        a->max_num_seqs = (int)l;
    } else if (!strcmp(key, "download_dir")) {
        return get_path(c, v, key, &a->download_dir);
    } else if (!strcmp(key, "port")) {
        if ((rc = get_int(c, v, key, 1, 65535, &l)))
            return rc;
        a->port = (int)l;
    } else if (!strcmp(key, "startup_timeout")) {
        if (v->type == YAML_SCALAR_NODE && !is_null(v)) {
            if (qe_plan_parse_duration(scalar(v), &a->startup_timeout))
                return fail_at(c, v, "startup_timeout: bad duration '%s' (use e.g. 900, 15m, 1h)", scalar(v));
        } else {
            return fail_at(c, v, "startup_timeout: expected a duration, got %s", type_name(v));
        }
    } else if (!strcmp(key, "extra_args")) {
        return get_strlist(c, v, key, &a->extra_args, &a->n_extra_args);
    } else {
        return 1;
    }
    return 0;
}

#define ENGINE_ARG_KEYS                                                                                \
    "tensor_parallel_size, gpu_memory_utilization, max_model_len, max_num_seqs, download_dir, port, " \
    "startup_timeout, extra_args"

static int engine_pair(ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *obj)
{
    qe_plan_engine *e = obj;
    int rc = engine_arg(c, key, v, &e->args);
    if (rc <= 0)
        return rc;
    if (!strcmp(key, "kind")) {
        if (v->type != YAML_SCALAR_NODE)
            return fail_at(c, v, "engine.kind: expected vllm, endpoint or lm-eval, got %s", type_name(v));
        const char *s = scalar(v);
        if (!strcmp(s, "vllm"))
            e->kind = QE_PLAN_ENGINE_VLLM;
        else if (!strcmp(s, "endpoint"))
            e->kind = QE_PLAN_ENGINE_ENDPOINT;
        else if (!strcmp(s, "lm-eval") || !strcmp(s, "lm_eval"))
            e->kind = QE_PLAN_ENGINE_LMEVAL;
        else
            return fail_at(c, v, "engine.kind: unknown engine kind '%s' (expected vllm, endpoint or lm-eval)", s);
        return 0;
    }
    if (!strcmp(key, "binary"))
        return get_str(c, v, "engine.binary", &e->binary);
    if (!strcmp(key, "stop_grace")) {
        if (v->type != YAML_SCALAR_NODE || is_null(v) || qe_plan_parse_duration(scalar(v), &e->stop_grace))
            return fail_at(c, v, "engine.stop_grace: expected a duration (e.g. 30, 30s)");
        return 0;
    }
    if (!strcmp(key, "base_urls"))
        return get_strlist(c, v, "engine.base_urls", &e->base_urls, &e->n_base_urls);
    if (!strcmp(key, "api_key_env")) {
        int krc = get_str(c, v, "engine.api_key_env", &e->api_key_env);
        if (!krc && !is_env_name(e->api_key_env))
            /* not echoed: it may be a pasted key */
            return fail_at(c, v, "engine.api_key_env: not an environment variable name (letters, "
                           "digits, '_'); name the variable that holds the key, never the key "
                           "itself: a plan is not a secret");
        return krc;
    }
    return unknown_key(c, k, "engine", key, "kind, binary, stop_grace, base_urls, api_key_env, " ENGINE_ARG_KEYS);
}

/* A model's own engine args are parsed into `own` with a set mask so they
 * can be overlaid on the engine defaults after the whole file is read. */
typedef struct {
    qe_plan_model *m;
    qe_plan_engine_args own;
    unsigned set;
} model_parse;

enum {
    SET_TP = 1, SET_GMU = 2, SET_MML = 4, SET_MNS = 8, SET_DL = 16, SET_PORT = 32, SET_ST = 64, SET_EXTRA = 128,
};

static unsigned arg_bit(const char *key)
{
    static const char *const names[] = {"tensor_parallel_size", "gpu_memory_utilization", "max_model_len",
                                        "max_num_seqs", "download_dir", "port", "startup_timeout", "extra_args"};
    for (unsigned i = 0; i < 8; i++)
        if (!strcmp(key, names[i]))
            return 1u << i;
    return 0;
}

static int model_pair(ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *obj)
{
    model_parse *mp = obj;
    int rc = engine_arg(c, key, v, &mp->own);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        mp->set |= arg_bit(key);
        return 0;
    }
    if (!strcmp(key, "name")) {
        if ((rc = get_str(c, v, "models[].name", &mp->m->name)))
            return rc;
        const char *s = mp->m->name;
        if (!*s || s[0] == '.' || strlen(s) > 64)
            return fail_at(c, v, "models[].name: '%s' must be 1-64 characters, not starting with '.'", s);
        for (; *s; s++)
            if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
                return fail_at(c, v, "models[].name: '%s' may only contain letters, digits, '.', '_' and '-' "
                               "(it names the output directory)", mp->m->name);
        return 0;
    }
    if (!strcmp(key, "model"))
        return get_nonempty(c, v, "models[].model", &mp->m->model);
    if (!strcmp(key, "served_model_name"))
        return get_str(c, v, "models[].served_model_name", &mp->m->served_model_name);
    return unknown_key(c, k, "models[]", key, "name, model, served_model_name, " ENGINE_ARG_KEYS);
}

static int task_pair(ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *obj)
{
    qe_plan_task *t = obj;
    long l;
    int rc;
    if (!strcmp(key, "task"))
        return get_str(c, v, "tasks[].task", &t->task);
    if (!strcmp(key, "limit")) {
        if (is_plain(v) && !is_null(v)) { /* lm-eval's --limit 0.5 means half the problems */
            char *end;
            double f = strtod(scalar(v), &end);
            if (end != scalar(v) && !*end && f > 0 && f < 1)
                return fail_at(c, v, "tasks[].limit: %s is a fraction; a plan's limit counts problems "
                               "(qeval run --limit takes a fraction, as lm-eval does)", scalar(v));
        }
        if ((rc = get_int(c, v, "tasks[].limit", 1, 100000000, &l)))
            return rc;
        t->limit = (int)l;
        return 0;
    }
    if (!strcmp(key, "priority")) {
        if (v->type == YAML_SCALAR_NODE && !strcmp(scalar(v), "high"))
            t->priority = QE_PLAN_PRIO_HIGH;
        else if (v->type == YAML_SCALAR_NODE && !strcmp(scalar(v), "normal"))
            t->priority = QE_PLAN_PRIO_NORMAL;
        else
            return fail_at(c, v, "tasks[].priority: expected high or normal, got %s%s%s%s", type_name(v),
                           v->type == YAML_SCALAR_NODE ? " '" : "", v->type == YAML_SCALAR_NODE ? scalar(v) : "",
                           v->type == YAML_SCALAR_NODE ? "'" : "");
        return 0;
    }
    return unknown_key(c, k, "tasks[]", key, "task, limit, priority");
}

static int gen_pair(ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *obj)
{
    qe_plan_generation *g = obj;
    long l;
    int rc;
    if (!strcmp(key, "apply_chat_template"))
        return get_bool(c, v, "generation.apply_chat_template", &g->apply_chat_template);
    if (!strcmp(key, "max_gen_toks")) {
        if ((rc = get_int(c, v, "generation.max_gen_toks", 1, 1L << 24, &l)))
            return rc;
        g->max_gen_toks = (int)l;
        return 0;
    }
    if (!strcmp(key, "temperature")) {
        g->has_temperature = true;
        return get_num(c, v, "generation.temperature", 0, 100, &g->temperature);
    }
    if (!strcmp(key, "top_p")) {
        g->has_top_p = true;
        if ((rc = get_num(c, v, "generation.top_p", 0, 1, &g->top_p)))
            return rc;
        if (g->top_p <= 0)
            return fail_at(c, v, "generation.top_p: must be greater than 0");
        return 0;
    }
    if (!strcmp(key, "seed")) {
        g->has_seed = true;
        return get_int(c, v, "generation.seed", -2147483648L, 2147483647L, &g->seed);
    }
    if (!strcmp(key, "think")) {
        const char *s = v->type == YAML_SCALAR_NODE ? scalar(v) : "";
        if (!strcmp(s, "on"))
            g->think = QE_PLAN_THINK_ON;
        else if (!strcmp(s, "off"))
            g->think = QE_PLAN_THINK_OFF;
        else if (!strcmp(s, "default"))
            g->think = QE_PLAN_THINK_DEFAULT;
        else
            return fail_at(c, v, "generation.think: expected on, off or default, got %s '%s'", type_name(v), s);
        return 0;
    }
    if (!strcmp(key, "system_instruction"))
        return get_str(c, v, "generation.system_instruction", &g->system_instruction);
    if (!strcmp(key, "num_concurrent")) {
        if ((rc = get_int(c, v, "generation.num_concurrent", 1, 4096, &l)))
            return rc;
        g->num_concurrent = (int)l;
        return 0;
    }
    if (!strcmp(key, "repeats")) {
        if ((rc = get_int(c, v, "generation.repeats", 1, 1024, &l)))
            return rc;
        g->repeats = (int)l;
        return 0;
    }
    return unknown_key(c, k, "generation", key,
                       "apply_chat_template, max_gen_toks, temperature, top_p, seed, think, system_instruction, "
                       "num_concurrent, repeats");
}

static int env_pair(ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *obj)
{
    qe_plan *p = obj;
    if (p->n_env >= QE_PLAN_MAX_ENV)
        return fail_at(c, k, "env: more than %u variables", QE_PLAN_MAX_ENV);
    if (!*key || strchr(key, '=') || isdigit((unsigned char)key[0]))
        return fail_at(c, k, "env: '%s' is not a valid environment variable name", key);
    for (const char *s = key; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return fail_at(c, k, "env: '%s' is not a valid environment variable name", key);
    char *val = NULL;
    char ekey[96];
    snprintf(ekey, sizeof ekey, "env.%.80s", key);
    int rc = get_str(c, v, ekey, &val);
    if (rc)
        return rc;
    qe_plan_kv *kv = &p->env[p->n_env];
    kv->key = strdup(key);
    kv->value = val;
    p->n_env++;
    return kv->key ? 0 : qe_err_set(c->err, QE_ENOMEM, "out of memory");
}

/* Checks the naming template: only known placeholders, balanced braces. */
static int check_naming(ctx *c, const yaml_node_t *v, const char *t)
{
    static const char *const known[] = {"model", "task", "limit", "tp", "plan", "served"};
    for (const char *s = t; *s; s++) {
        if (*s == '}')
            return fail_at(c, v, "naming: unmatched '}'");
        if (*s != '{')
            continue;
        const char *e = strchr(s, '}');
        if (!e)
            return fail_at(c, v, "naming: unmatched '{'");
        size_t n = (size_t)(e - s - 1);
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            if (strlen(known[i]) == n && !strncmp(known[i], s + 1, n))
                ok = true;
        if (!ok)
            return fail_at(c, v, "naming: unknown placeholder '{%.*s}' (known: {model} {task} {limit} {tp} "
                           "{plan} {served})", (int)(n > 40 ? 40 : n), s + 1);
        s = e;
    }
    if (strchr(t, '/'))
        return fail_at(c, v, "naming: must be a file name, without '/'");
    return 0;
}

typedef struct {
    qe_plan *p;
    const yaml_node_t *models, *tasks, *engine, *name;
} top_parse;

static int top_pair(ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *obj)
{
    top_parse *tp = obj;
    qe_plan *p = tp->p;
    if (!strcmp(key, "name")) {
        tp->name = v;
        return get_str(c, v, "name", &p->name);
    }
    if (!strcmp(key, "budget")) {
        if (v->type != YAML_SCALAR_NODE || is_null(v) || qe_plan_parse_duration(scalar(v), &p->budget))
            return fail_at(c, v, "budget: bad duration %s%s%s (use e.g. 3h, 90m, 45s, 1h30m or seconds)",
                           v->type == YAML_SCALAR_NODE ? "'" : "", v->type == YAML_SCALAR_NODE ? scalar(v) : type_name(v),
                           v->type == YAML_SCALAR_NODE ? "'" : "");
        return 0;
    }
    if (!strcmp(key, "output"))
        return get_path(c, v, "output", &p->output);
    if (!strcmp(key, "naming")) {
        int rc = get_str(c, v, "naming", &p->naming);
        return rc ? rc : check_naming(c, v, p->naming);
    }
    if (!strcmp(key, "env")) {
        if (v->type != YAML_MAPPING_NODE)
            return fail_at(c, v, "env: expected a mapping, got %s", type_name(v));
        size_t cnt = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        if (cnt > QE_PLAN_MAX_ENV)
            return fail_at(c, v, "env: more than %u variables", QE_PLAN_MAX_ENV);
        p->env = calloc(cnt + 1, sizeof *p->env);
        if (!p->env)
            return qe_err_set(c->err, QE_ENOMEM, "out of memory");
        return walk_map(c, v, "env", env_pair, p);
    }
    if (!strcmp(key, "engine")) {
        tp->engine = v;
        return walk_map(c, v, "engine", engine_pair, &p->engine);
    }
    if (!strcmp(key, "models")) {
        tp->models = v;
        return 0; /* parsed after engine, which may come later */
    }
    if (!strcmp(key, "tasks")) {
        tp->tasks = v;
        return 0;
    }
    if (!strcmp(key, "generation"))
        return walk_map(c, v, "generation", gen_pair, &p->generation);
    return unknown_key(c, k, "plan", key, "name, budget, output, naming, env, engine, models, tasks, generation");
}

static int dup_args(const qe_plan_engine_args *src, qe_plan_engine_args *dst)
{
    *dst = *src;
    dst->download_dir = NULL;
    dst->extra_args = NULL;
    dst->n_extra_args = 0;
    if (src->download_dir && !(dst->download_dir = strdup(src->download_dir)))
        return -1;
    if (src->n_extra_args) {
        dst->extra_args = calloc(src->n_extra_args + 1, sizeof *dst->extra_args);
        if (!dst->extra_args)
            return -1;
        for (size_t i = 0; i < src->n_extra_args; i++) {
            if (!(dst->extra_args[i] = strdup(src->extra_args[i])))
                return -1;
            dst->n_extra_args = i + 1;
        }
    }
    return 0;
}

static void free_args(qe_plan_engine_args *a)
{
    free(a->download_dir);
    for (size_t i = 0; i < a->n_extra_args; i++)
        free(a->extra_args[i]);
    free(a->extra_args);
    memset(a, 0, sizeof *a);
}

/* Effective args of a model: copy of the engine's, then each key the model
 * set replaces the engine's value (extra_args replaces the whole list). */
static int overlay_args(const qe_plan_engine_args *base, model_parse *mp)
{
    qe_plan_engine_args *d = &mp->m->args;
    if (dup_args(base, d))
        return -1;
    const qe_plan_engine_args *o = &mp->own;
    if (mp->set & SET_TP) d->tensor_parallel_size = o->tensor_parallel_size;
    if (mp->set & SET_GMU) d->gpu_memory_utilization = o->gpu_memory_utilization;
    if (mp->set & SET_MML) d->max_model_len = o->max_model_len;
    if (mp->set & SET_MNS) d->max_num_seqs = o->max_num_seqs;
    if (mp->set & SET_PORT) d->port = o->port;
    if (mp->set & SET_ST) d->startup_timeout = o->startup_timeout;
    if (mp->set & SET_DL) {
        free(d->download_dir);
        d->download_dir = strdup(o->download_dir);
        if (!d->download_dir)
            return -1;
    }
    if (mp->set & SET_EXTRA) {
        for (size_t i = 0; i < d->n_extra_args; i++)
            free(d->extra_args[i]);
        free(d->extra_args);
        d->extra_args = NULL;
        d->n_extra_args = 0;
        qe_plan_engine_args tmp;
        if (dup_args(o, &tmp))
            return -1;
        d->extra_args = tmp.extra_args;
        d->n_extra_args = tmp.n_extra_args;
        free(tmp.download_dir);
    }
    return 0;
}

static int parse_models(ctx *c, qe_plan *p, const yaml_node_t *v)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fail_at(c, v, "models: expected a list, got %s", type_name(v));
    size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (cnt == 0)
        return fail_at(c, v, "models: the list is empty; give at least one model");
    if (cnt > QE_PLAN_MAX_MODELS)
        return fail_at(c, v, "models: more than %u models", QE_PLAN_MAX_MODELS);
    p->models = calloc(cnt, sizeof *p->models);
    if (!p->models)
        return qe_err_set(c->err, QE_ENOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_t *it = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        model_parse mp = {.m = &p->models[i]};
        p->n_models = i + 1;
        mp.m->line = (int)it->start_mark.line + 1;
        int rc = walk_map(c, it, "models[]", model_pair, &mp);
        if (!rc && !mp.m->name)
            rc = fail_at(c, it, "models[%zu]: missing required key 'name'", i);
        if (!rc && !mp.m->model)
            rc = fail_at(c, it, "models[%zu]: missing required key 'model'", i);
        if (!rc && !mp.m->served_model_name && !(mp.m->served_model_name = strdup(mp.m->model)))
            rc = qe_err_set(c->err, QE_ENOMEM, "out of memory");
        if (!rc && overlay_args(&p->engine.args, &mp))
            rc = qe_err_set(c->err, QE_ENOMEM, "out of memory");
        free_args(&mp.own);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->models[j].name, mp.m->name))
                return fail_at(c, it, "models[%zu]: duplicate model name '%s' (first at line %d)", i, mp.m->name,
                               p->models[j].line);
    }
    return 0;
}

static int parse_tasks(ctx *c, qe_plan *p, const yaml_node_t *v)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fail_at(c, v, "tasks: expected a list, got %s", type_name(v));
    size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (cnt == 0)
        return fail_at(c, v, "tasks: the list is empty; give at least one task");
    if (cnt > QE_PLAN_MAX_TASKS)
        return fail_at(c, v, "tasks: more than %u tasks", QE_PLAN_MAX_TASKS);
    p->tasks = calloc(cnt, sizeof *p->tasks);
    if (!p->tasks)
        return qe_err_set(c->err, QE_ENOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_t *it = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        qe_plan_task *t = &p->tasks[i];
        p->n_tasks = i + 1;
        t->line = (int)it->start_mark.line + 1;
        int rc = walk_map(c, it, "tasks[]", task_pair, t);
        if (rc)
            return rc;
        if (!t->task)
            return fail_at(c, it, "tasks[%zu]: missing required key 'task'", i);
        if (c->task_exists && !c->task_exists(t->task))
            return fail_at(c, it, "tasks[%zu]: unknown task '%s' (see `qeval tasks`)", i, t->task);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->tasks[j].task, t->task))
                return fail_at(c, it, "tasks[%zu]: task '%s' listed twice (first at line %d)", i, t->task,
                               p->tasks[j].line);
    }
    return 0;
}

/* Event pass: depth bound, no anchors/aliases, exactly one document. */
static int prescan(ctx *c, const char *text, size_t len)
{
    yaml_parser_t ps;
    if (!yaml_parser_initialize(&ps))
        return qe_err_set(c->err, QE_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
    int depth = 0, docs = 0, rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&ps, &ev)) {
            rc = qe_err_set(c->err, QE_EINVAL, "%s:%zu:%zu: YAML syntax error: %s%s%s", c->file,
                            ps.problem_mark.line + 1, ps.problem_mark.column + 1,
                            ps.problem ? ps.problem : "malformed", ps.context ? " " : "",
                            ps.context ? ps.context : "");
            break;
        }
        size_t line = ev.start_mark.line + 1, col = ev.start_mark.column + 1;
        yaml_event_type_t t = ev.type;
        bool anchored = (t == YAML_SCALAR_EVENT && ev.data.scalar.anchor) ||
                        (t == YAML_SEQUENCE_START_EVENT && ev.data.sequence_start.anchor) ||
                        (t == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor);
        yaml_event_delete(&ev);
        if (t == YAML_ALIAS_EVENT || anchored) {
            rc = qe_err_set(c->err, QE_EINVAL, "%s:%zu:%zu: YAML anchors and aliases are not supported in plans",
                            c->file, line, col);
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            rc = qe_err_set(c->err, QE_EINVAL, "%s:%zu:%zu: a plan file holds exactly one YAML document", c->file,
                            line, col);
            break;
        }
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (++depth > QE_PLAN_MAX_DEPTH) {
                rc = qe_err_set(c->err, QE_ELIMIT, "%s:%zu:%zu: nesting deeper than %d levels", c->file, line, col,
                                QE_PLAN_MAX_DEPTH);
                break;
            }
        } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
            depth--;
        } else if (t == YAML_STREAM_END_EVENT) {
            break;
        }
    }
    yaml_parser_delete(&ps);
    return rc;
}

static int parse_doc(ctx *c, qe_plan *p)
{
    const yaml_node_t *root = yaml_document_get_root_node(c->doc);
    if (!root)
        return qe_err_set(c->err, QE_EINVAL, "%s:1:1: the plan file is empty", c->file);
    top_parse tp = {.p = p};
    int rc = walk_map(c, root, "plan", top_pair, &tp);
    if (rc)
        return rc;
    if (!tp.name)
        return fail_at(c, root, "plan: missing required key 'name'");
    if (!tp.engine)
        return fail_at(c, root, "plan: missing required key 'engine'");
    if (!tp.models)
        return fail_at(c, root, "plan: missing required key 'models'");
    if (!tp.tasks)
        return fail_at(c, root, "plan: missing required key 'tasks'");
    bool has_kind = false;
    for (yaml_node_pair_t *q = tp.engine->data.mapping.pairs.start; q < tp.engine->data.mapping.pairs.top; q++)
        if (!strcmp(scalar(yaml_document_get_node(c->doc, q->key)), "kind"))
            has_kind = true;
    if (!has_kind)
        return fail_at(c, tp.engine, "engine: missing required key 'kind' (vllm, endpoint or lm-eval)");
    if (p->engine.kind == QE_PLAN_ENGINE_ENDPOINT && p->engine.n_base_urls == 0)
        return fail_at(c, tp.engine, "engine: kind endpoint needs base_urls (a non-empty list)");
    if (p->engine.kind != QE_PLAN_ENGINE_ENDPOINT && (p->engine.n_base_urls || p->engine.api_key_env))
        return fail_at(c, tp.engine, "engine: base_urls/api_key_env only apply to kind endpoint");
    if ((rc = parse_models(c, p, tp.models)))
        return rc;
    if ((rc = parse_tasks(c, p, tp.tasks)))
        return rc;
    if (!p->output && !(p->output = strdup("results/")))
        return qe_err_set(c->err, QE_ENOMEM, "out of memory");
    if (!p->naming && !(p->naming = strdup(QE_PLAN_DEFAULT_NAMING)))
        return qe_err_set(c->err, QE_ENOMEM, "out of memory");
    return 0;
}

int qe_plan_parse(const char *text, size_t len, const char *name, qe_plan_task_exists_fn task_exists,
                  qe_plan **out, qe_err *err)
{
    *out = NULL;
    ctx c = {.file = name ? name : "<plan>", .err = err, .task_exists = task_exists};
    if (len > QE_PLAN_MAX_BYTES)
        return qe_err_set(err, QE_ELIMIT, "%s: plan file larger than %u bytes", c.file, QE_PLAN_MAX_BYTES);
    if (memchr(text, '\0', len))
        return qe_err_set(err, QE_EINVAL, "%s: plan file contains a NUL byte", c.file);
    int rc = prescan(&c, text, len);
    if (rc)
        return rc;
    yaml_parser_t ps;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&ps))
        return qe_err_set(err, QE_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
    if (!yaml_parser_load(&ps, &doc)) {
        rc = qe_err_set(err, QE_EINVAL, "%s:%zu:%zu: YAML error: %s", c.file, ps.problem_mark.line + 1,
                        ps.problem_mark.column + 1, ps.problem ? ps.problem : "malformed");
        yaml_parser_delete(&ps);
        return rc;
    }
    c.doc = &doc;
    qe_plan *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(c.file))) {
        rc = qe_err_set(err, QE_ENOMEM, "out of memory");
    } else {
        rc = parse_doc(&c, p);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&ps);
    if (rc) {
        qe_plan_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int qe_plan_load(const char *path, qe_plan_task_exists_fn task_exists, qe_plan **out, qe_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return qe_err_set(err, QE_EIO, "%s: cannot open: %s", path, strerror(errno));
    qe_buf b = QE_BUF_INIT;
    char chunk[8192];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > QE_PLAN_MAX_BYTES) {
            rc = qe_err_set(err, QE_ELIMIT, "%s: plan file larger than %u bytes", path, QE_PLAN_MAX_BYTES);
            break;
        }
        if (qe_buf_append(&b, chunk, n)) {
            rc = qe_err_set(err, QE_ENOMEM, "out of memory");
            break;
        }
    }
    if (!rc && ferror(f))
        rc = qe_err_set(err, QE_EIO, "%s: read error", path);
    fclose(f);
    if (!rc)
        rc = qe_plan_parse(qe_buf_str(&b), b.len, path, task_exists, out, err);
    qe_buf_free(&b);
    return rc;
}

void qe_plan_free(qe_plan *p)
{
    if (!p)
        return;
    free(p->path);
    free(p->name);
    free(p->output);
    free(p->naming);
    for (size_t i = 0; i < p->n_env; i++) {
        free(p->env[i].key);
        free(p->env[i].value);
    }
    free(p->env);
    free_args(&p->engine.args);
    free(p->engine.binary);
    for (size_t i = 0; i < p->engine.n_base_urls; i++)
        free(p->engine.base_urls[i]);
    free(p->engine.base_urls);
    free(p->engine.api_key_env);
    for (size_t i = 0; i < p->n_models; i++) {
        free(p->models[i].name);
        free(p->models[i].model);
        free(p->models[i].served_model_name);
        free_args(&p->models[i].args);
    }
    free(p->models);
    for (size_t i = 0; i < p->n_tasks; i++)
        free(p->tasks[i].task);
    free(p->tasks);
    free(p->generation.system_instruction);
    free(p);
}

int qe_plan_parse_duration(const char *s, double *seconds)
{
    if (!s)
        return QE_EINVAL;
    while (*s == ' ')
        s++;
    double total = 0;
    int parts = 0;
    const char *last_unit = NULL;
    static const char units[] = "hms";
    while (*s) {
        if (!isdigit((unsigned char)*s) && *s != '.')
            return QE_EINVAL;
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno || !isfinite(v) || v < 0)
            return QE_EINVAL;
        s = end;
        double mul;
        if (*s == 'h' || *s == 'm' || *s == 's') {
            const char *u = strchr(units, *s);
            if (last_unit && u <= last_unit) /* units must descend: 1h30m, not 30m1h */
                return QE_EINVAL;
            last_unit = u;
            mul = *s == 'h' ? 3600 : *s == 'm' ? 60 : 1;
            s++;
        } else if (!*s && parts == 0) {
            mul = 1; /* plain seconds */
        } else {
            return QE_EINVAL;
        }
        total += v * mul;
        parts++;
    }
    if (parts == 0 || !(total > 0) || total > 366.0 * 86400)
        return QE_EINVAL;
    *seconds = total;
    return 0;
}

int qe_plan_output_name(const qe_plan *p, size_t mi, size_t ti, qe_buf *out)
{
    if (mi >= p->n_models || ti >= p->n_tasks)
        return QE_EINVAL;
    const qe_plan_model *m = &p->models[mi];
    const qe_plan_task *t = &p->tasks[ti];
    const char *tmpl = p->naming ? p->naming : QE_PLAN_DEFAULT_NAMING;
    for (const char *s = tmpl; *s; s++) {
        int rc = 0;
        if (*s != '{') {
            rc = qe_buf_putc(out, *s);
        } else {
            const char *e = strchr(s, '}');
            if (!e)
                return QE_EINVAL;
            size_t n = (size_t)(e - s - 1);
#define IS(k) (n == strlen(k) && !strncmp(s + 1, k, n))
            if (IS("model"))
                rc = qe_buf_puts(out, m->name);
            else if (IS("task"))
                rc = qe_buf_puts(out, t->task);
            else if (IS("limit"))
                rc = t->limit ? qe_buf_printf(out, "%d", t->limit) : qe_buf_puts(out, "all");
            else if (IS("tp"))
                rc = qe_buf_printf(out, "%d", m->args.tensor_parallel_size ? m->args.tensor_parallel_size : 1);
            else if (IS("plan"))
                rc = qe_buf_puts(out, p->name);
            else if (IS("served"))
                rc = qe_buf_puts(out, m->served_model_name);
            else
                return QE_EINVAL;
#undef IS
            s = e;
        }
        if (rc)
            return QE_ENOMEM;
    }
    return 0;
}

const char *qe_plan_engine_kind_name(enum qe_plan_engine_kind k)
{
    switch (k) {
    case QE_PLAN_ENGINE_VLLM: return "vllm";
    case QE_PLAN_ENGINE_ENDPOINT: return "endpoint";
    case QE_PLAN_ENGINE_LMEVAL: return "lm-eval";
    }
    return "?";
}
