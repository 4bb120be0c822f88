/* chat: ChatML rendering (see chat.h). Qwen3's template also drops earlier
 * assistant reasoning; the messages qeval builds never contain any. */
#include "chat.h"

int qe_chat_render(const json_t *messages, enum qe_chat_think think, qe_buf *out, qe_err *e)
{
    if (!json_is_array(messages))
        return qe_err_set(e, QE_EINVAL, "chat: messages is not an array");
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *content = json_string_value(json_object_get(m, "content"));
        if (!role || !content)
            return qe_err_set(e, QE_EINVAL, "chat: message %zu lacks a string role/content", i);
        if (qe_buf_printf(out, "<|im_start|>%s\n%s<|im_end|>\n", role, content))
            return qe_err_set(e, QE_ENOMEM, "out of memory");
    }
    if (qe_buf_puts(out, "<|im_start|>assistant\n") ||
        (think == QE_THINK_OFF && qe_buf_puts(out, "<think>\n\n</think>\n\n")))
        return qe_err_set(e, QE_ENOMEM, "out of memory");
    return 0;
}
