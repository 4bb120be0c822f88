/* genkw: lm-eval --gen_kwargs parsing (simple_parse_args_string typing),
 * shallow merge over task defaults, and mapping to request fields.
 * Contract and lm-eval references in genkw.h and docs/run.md. */
#include "genkw.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

/* Python str.isnumeric() restricted to ASCII: non-empty, all digits. */
static bool ascii_numeric(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* digitpart: digit (["_"] digit)*; copies digits to out, advances *p. */
static bool digitpart(const char **p, qe_buf *out)
{
    const char *s = *p;
    if (!isdigit((unsigned char)*s))
        return false;
    while (isdigit((unsigned char)*s) || (*s == '_' && isdigit((unsigned char)s[1]))) {
        if (*s != '_' && qe_buf_putc(out, *s))
            return false;
        s++;
    }
    *p = s;
    return true;
}

/* Python float(str) for ASCII input: 0 and *out, or -1 (ValueError). */
static int py_float(const char *in, double *out)
{
    const char *s = in;
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    const char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r')))
        end--;
    size_t n = (size_t)(end - s);
    if (n == 0 || n > 400)
        return -1;
    char tmp[402];
    memcpy(tmp, s, n);
    tmp[n] = 0;
    const char *p = tmp;
    double sign = 1.0;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1.0 : 1.0;
    if (!strcasecmp(p, "inf") || !strcasecmp(p, "infinity")) {
        *out = sign * INFINITY;
        return 0;
    }
    if (!strcasecmp(p, "nan")) {
        *out = NAN;
        return 0;
    }
    qe_buf num = QE_BUF_INIT;
    int rc = -1;
    if (qe_buf_putc(&num, sign < 0 ? '-' : '+'))
        goto out;
    bool intpart = digitpart(&p, &num);
    bool frac = false;
    if (*p == '.') {
        p++;
        if (qe_buf_putc(&num, '.'))
            goto out;
        frac = digitpart(&p, &num);
    }
    if (!intpart && !frac)
        goto out;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (qe_buf_putc(&num, 'e'))
            goto out;
        if ((*p == '+' || *p == '-') && qe_buf_putc(&num, *p++))
            goto out;
        if (!digitpart(&p, &num))
            goto out;
    }
    if (*p)
        goto out;
    *out = strtod(qe_buf_str(&num), NULL);
    rc = 0;
out:
    qe_buf_free(&num);
    return rc;
}

json_t *qe_genkw_typed_value(const char *v)
{
    if (!strcasecmp(v, "true"))
        return json_true();
    if (!strcasecmp(v, "false"))
        return json_false();
    if (ascii_numeric(v)) {
        errno = 0;
        char *endp;
        long long x = strtoll(v, &endp, 10);
        if (errno == 0 && !*endp)
            return json_integer((json_int_t)x);
        /* beyond 64 bits: Python keeps an exact int; a float is the closest
         * JSON-representable value jansson offers */
        return json_real(strtod(v, NULL));
    }
    double d;
    if (py_float(v, &d) == 0 && isfinite(d))
        return json_real(d);
    /* inf/nan have no JSON form in jansson: keep the text */
    return json_string(v);
}

int qe_genkw_parse(const char *text, json_t **out, qe_err *e)
{
    *out = NULL;
    if (!text)
        text = "";
    size_t len = strlen(text);
    if (len > QE_GENKW_MAX_TEXT)
        return qe_err_set(e, QE_EINVAL, "--gen_kwargs: longer than %u bytes", QE_GENKW_MAX_TEXT);
    const char *s = text;
    while (*s && isspace((unsigned char)*s))
        s++;
    if (*s == '{') {
        json_error_t je;
        json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &je);
        if (!j)
            return qe_err_set(e, QE_EINVAL, "--gen_kwargs: invalid JSON at column %d: %s",
                              je.column, je.text);
        if (!json_is_object(j)) {
            json_decref(j);
            return qe_err_set(e, QE_EINVAL, "--gen_kwargs: JSON must be an object");
        }
        *out = j;
        return 0;
    }
    /* Python: args_string.strip() then split(","), empty items dropped */
    char *copy = strdup(s);
    if (!copy)
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    size_t n = strlen(copy);
    while (n > 0 && isspace((unsigned char)copy[n - 1]))
        copy[--n] = 0;
    json_t *o = json_object();
    int rc = o ? 0 : qe_err_set(e, QE_ENOMEM, "out of memory");
    char *item = copy;
    while (!rc && item) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = 0;
        if (*item) {
            char *eq = strchr(item, '=');
            const char *val = "";
            if (eq) {
                *eq = 0;
                val = eq + 1; /* "=".join(kv[1:]) = everything after the first '=' */
            }
            json_t *v = qe_genkw_typed_value(val);
            if (!v || json_object_set_new(o, item, v))
                rc = qe_err_set(e, QE_EINVAL, "--gen_kwargs: bad item '%s' (not UTF-8?)", item);
        }
        item = comma ? comma + 1 : NULL;
    }
    free(copy);
    if (rc) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

json_t *qe_genkw_merge(const json_t *task_defaults, const json_t *cli)
{
    json_t *m = json_is_object(task_defaults) ? json_deep_copy(task_defaults) : json_object();
    if (!m)
        return NULL;
    const char *k;
    json_t *v;
    if (json_is_object(cli)) {
        json_object_foreach((json_t *)cli, k, v) {
            if (json_object_set_new(m, k, json_deep_copy(v))) {
                json_decref(m);
                return NULL;
            }
        }
    }
    return m;
}

/* Integer value of a JSON int, or of a real with no fraction. */
static int as_count(const json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9e15) {
            *out = (long long)d;
            return 0;
        }
    }
    if (json_is_string(v)) { /* "1024" given as a JSON string */
        char *endp;
        errno = 0;
        long long x = strtoll(json_string_value(v), &endp, 10);
        if (!errno && *json_string_value(v) && !*endp) {
            *out = x;
            return 0;
        }
    }
    return -1;
}

int qe_genkw_request(const json_t *merged, long long seed, json_t *body, qe_err *e)
{
    long long max_tokens = QE_GENKW_DEFAULT_MAX_TOKENS;
    const json_t *mt = json_object_get(merged, "max_tokens");
    const char *mt_name = "max_tokens";
    if (!mt || json_is_null(mt)) {
        mt = json_object_get(merged, "max_gen_toks");
        mt_name = "max_gen_toks";
    }
    if (mt && !json_is_null(mt)) {
        if (as_count(mt, &max_tokens) || max_tokens < 1)
            return qe_err_set(e, QE_EINVAL, "gen_kwargs: %s must be a positive integer", mt_name);
    }
    int rc = 0;
    rc |= json_object_set_new(body, "max_tokens", json_integer((json_int_t)max_tokens));
    const json_t *t = json_object_get(merged, "temperature");
    rc |= json_object_set_new(body, "temperature",
                              t && !json_is_null(t) ? json_deep_copy(t) : json_integer(0));
    const json_t *until = json_object_get(merged, "until");
    if (until && !json_is_null(until)) {
        json_t *stop = NULL;
        if (json_is_string(until)) {
            stop = json_pack("[O]", until);
        } else if (json_is_array(until)) {
            size_t i;
            json_t *x;
            json_array_foreach(until, i, x) {
                if (!json_is_string(x))
                    return qe_err_set(e, QE_EINVAL, "gen_kwargs: until[%zu] is not a string", i);
            }
            stop = json_deep_copy(until);
        } else {
            return qe_err_set(e, QE_EINVAL, "gen_kwargs: until must be a string or a list");
        }
        rc |= json_object_set_new(body, "stop", stop);
    }
    rc |= json_object_set_new(body, "seed", json_integer((json_int_t)seed));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)merged, k, v) {
        if (!strcmp(k, "max_tokens") || !strcmp(k, "max_gen_toks") || !strcmp(k, "until") ||
            !strcmp(k, "do_sample") || !strcmp(k, "temperature") || !strcmp(k, "seed"))
            continue;
        rc |= json_object_set_new(body, k, json_deep_copy(v));
    }
    return rc ? qe_err_set(e, QE_ENOMEM, "out of memory building the request") : 0;
}

long long qe_genkw_seed(const json_t *merged, long long dflt)
{
    long long s;
    const json_t *v = json_object_get(merged, "seed");
    if (v && !json_is_string(v) && as_count(v, &s) == 0)
        return s;
    return dflt;
}
