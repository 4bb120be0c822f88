/* Tests for src/buf.c: growth, formatting, detach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"

static void test_append_grows_and_terminates(void **state)
{
    (void)state;
    qe_buf b = QE_BUF_INIT;
    assert_string_equal(qe_buf_str(&b), "");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(qe_buf_putc(&b, (char)('a' + i % 26)), 0);
    assert_int_equal(b.len, 1000);
    assert_int_equal(b.data[1000], '\0');
    assert_int_equal(b.data[27], 'b');
    qe_buf_free(&b);
    assert_null(b.data);
}

static void test_printf_and_detach(void **state)
{
    (void)state;
    qe_buf b = QE_BUF_INIT;
    assert_int_equal(qe_buf_printf(&b, "%s=%d", "x", 42), 0);
    assert_int_equal(qe_buf_puts(&b, ";"), 0);
    assert_string_equal(qe_buf_str(&b), "x=42;");
    char *s = qe_buf_detach(&b);
    assert_string_equal(s, "x=42;");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
}

static void test_err_prefix(void **state)
{
    (void)state;
    qe_err e = {0};
    assert_int_equal(qe_err_set(&e, QE_EINVAL, "line %d: bad", 3), QE_EINVAL);
    qe_err_prefix(&e, "%s", "f.json");
    assert_string_equal(e.msg, "f.json: line 3: bad");
    assert_int_equal(e.code, QE_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows_and_terminates),
        cmocka_unit_test(test_printf_and_detach),
        cmocka_unit_test(test_err_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
