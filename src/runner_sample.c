/* runner_sample: a sample line streamed into a buffer (see runner_sample.h).
 *
 * The bytes are those of qe_pyjson_dump(QE_PYJSON_COMPACT) over the tree
 * the runner built: keys in the tree's insertion order, ", " and ": "
 * separators, strings through qe_pyjson_string, integers bare, reals
 * through qe_pyjson_float. jansson's json_string refuses text that is not
 * valid UTF-8, which made the tree path fail; such a line is refused here
 * (1) so the caller takes the tree path and fails the same way. */
#include "runner_sample.h"

#include <math.h>
#include <string.h>

#include "pyjson.h"
#include "runner_body.h"

struct w {
    qe_buf *out;
    int bad; /* QE_ENOMEM, or 1: not valid UTF-8 */
};

static void raw(struct w *w, const char *s)
{
    if (!w->bad && qe_buf_puts(w->out, s))
        w->bad = QE_ENOMEM;
}

static void str(struct w *w, const char *s)
{
    if (w->bad)
        return;
    size_t n = strlen(s);
    if (!qe_runner_body_utf8_valid(s, n))
        w->bad = 1;
    else if (qe_pyjson_string(w->out, s, n, 0))
        w->bad = QE_ENOMEM;
}

/* ", \"key\": " for a key that is an ASCII literal needing no escape. */
static void key(struct w *w, const char *k)
{
    if (w->bad)
        return;
    size_t n = strlen(k);
    if (qe_buf_reserve(w->out, n + 6)) {
        w->bad = QE_ENOMEM;
        return;
    }
    char *p = w->out->data + w->out->len;
    memcpy(p, ", \"", 3);
    memcpy(p + 3, k, n);
    memcpy(p + 3 + n, "\": ", 3);
    w->out->len += n + 6;
    w->out->data[w->out->len] = '\0';
}

static void num(struct w *w, long long v)
{
    if (!w->bad && qe_buf_printf(w->out, "%lld", v))
        w->bad = QE_ENOMEM;
}

static void count_or_null(struct w *w, long long v)
{
    if (v >= 0)
        num(w, v);
    else
        raw(w, "null");
}

static void str_or_null(struct w *w, const char *s)
{
    if (s)
        str(w, s);
    else
        raw(w, "null");
}

int qe_runner_sample_write(qe_buf *out, const qe_runner_sample *s)
{
    size_t start = out->len;
    struct w w = {out, 0};
    const char *resp0 = s->n_resps && s->resps[0] ? s->resps[0] : "";
    if (qe_buf_printf(out, "{\"doc_id\": %lld, \"doc\": ", s->doc_id))
        w.bad = QE_ENOMEM;
    raw(&w, s->doc_json);
    key(&w, "target");
    str(&w, s->target ? s->target : "");
    raw(&w, ", \"arguments\": {\"gen_args_0\": {\"arg_0\": ");
    str(&w, s->prompt ? s->prompt : "");
    raw(&w, ", \"arg_1\": ");
    raw(&w, s->gen_kwargs_json);
    raw(&w, "}}, \"resps\": [[");
    for (size_t i = 0; i < s->n_resps; i++) {
        if (i)
            raw(&w, ", ");
        str(&w, s->resps[i] ? s->resps[i] : "");
    }
    raw(&w, "]], \"filtered_resps\": [");
    str(&w, s->filtered ? s->filtered : resp0);
    raw(&w, "]");
    key(&w, "filter");
    str(&w, s->filter ? s->filter : "none");
    raw(&w, ", \"metrics\": [");
    str(&w, s->metric);
    raw(&w, "]");
    key(&w, "doc_hash");
    str(&w, s->doc_hash);
    key(&w, "prompt_hash");
    str(&w, s->prompt_hash);
    key(&w, "target_hash");
    str(&w, s->target_hash);
    raw(&w, ", ");
    str(&w, s->metric);
    raw(&w, ": ");
    num(&w, s->value);
    key(&w, "finish_reason");
    str_or_null(&w, s->finish_reason);
    key(&w, "prompt_tokens");
    count_or_null(&w, s->prompt_tokens);
    key(&w, "completion_tokens");
    count_or_null(&w, s->completion_tokens);
    key(&w, "latency_ms");
    if (s->latency_ms >= 0) {
        double v = round(s->latency_ms * 1000) / 1000;
        if (!isfinite(v))
            w.bad = w.bad ? w.bad : 1; /* json_real refuses it: the tree path's error */
        else if (!w.bad && qe_pyjson_float(out, v))
            w.bad = QE_ENOMEM;
    } else {
        raw(&w, "null");
    }
    key(&w, "attempts");
    num(&w, s->attempts);
    key(&w, "truncated");
    raw(&w, s->truncated ? "true" : "false");
    if (s->reasoning && *s->reasoning) {
        key(&w, "reasoning");
        str(&w, s->reasoning);
    }
    if (s->n_repeats > 1) {
        raw(&w, ", \"qeval_repeats\": [");
        for (size_t r = 0; r < s->n_repeats; r++) {
            raw(&w, r ? ", {\"exact_match\": " : "{\"exact_match\": ");
            num(&w, s->rep_value[r]);
            key(&w, "finish_reason");
            str_or_null(&w, s->rep_finish[r]);
            key(&w, "completion_tokens");
            count_or_null(&w, s->rep_ctok[r]);
            raw(&w, "}");
        }
        raw(&w, "]");
    }
    raw(&w, "}\n");
    if (w.bad) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return w.bad;
}
