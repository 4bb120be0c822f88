/* Tests for src/chat.c: ChatML/Qwen3 rendering used by `qeval tasks show`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "chat.h"

static void test_render_system_user_think_off(void **state)
{
    (void)state;
    json_t *m = json_loads("[{\"role\":\"system\",\"content\":\"S\"},"
                           "{\"role\":\"user\",\"content\":\"Q: 1+1?\\nAnswer:\"}]", 0, NULL);
    qe_buf b = QE_BUF_INIT;
    qe_err e = {0};
    assert_int_equal(qe_chat_render(m, QE_THINK_OFF, &b, &e), 0);
    assert_string_equal(qe_buf_str(&b), "<|im_start|>system\nS<|im_end|>\n"
                                        "<|im_start|>user\nQ: 1+1?\nAnswer:<|im_end|>\n"
                                        "<|im_start|>assistant\n<think>\n\n</think>\n\n");
    qe_buf_reset(&b);
    assert_int_equal(qe_chat_render(m, QE_THINK_ON, &b, &e), 0);
    assert_null(strstr(qe_buf_str(&b), "<think>"));
    assert_string_equal(qe_buf_str(&b) + b.len - 22, "<|im_start|>assistant\n");
    qe_buf_free(&b);
    json_decref(m);
}

static void test_render_rejects_bad_message(void **state)
{
    (void)state;
    json_t *m = json_loads("[{\"role\":\"user\"}]", 0, NULL);
    qe_buf b = QE_BUF_INIT;
    qe_err e = {0};
    assert_int_equal(qe_chat_render(m, QE_THINK_DEFAULT, &b, &e), QE_EINVAL);
    assert_non_null(strstr(e.msg, "message 0"));
    qe_buf_free(&b);
    json_decref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_system_user_think_off),
        cmocka_unit_test(test_render_rejects_bad_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
