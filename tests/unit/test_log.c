/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/log.c's formatting: numbers at their limits, the
 * timestamp's shape (it is cached per second), and one record per write
 * in both formats. Records are written into a pipe and read back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

/* Log one record made by fill() into a pipe and return its text. */
static void record(enum psup_log_format format, void (*fill)(struct psup_log *),
                   char *out, size_t size)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    psup_log_setup(p[1], format, PSUP_LOG_DEBUG);
    struct psup_log l;
    psup_log_begin(&l, PSUP_LOG_INFO, "test");
    fill(&l);
    psup_log_end(&l);
    ssize_t n = read(p[0], out, size - 1);
    assert_true(n > 0);
    out[n] = '\0';
    close(p[0]);
    close(p[1]);
}

static void numbers(struct psup_log *l)
{
    psup_log_uint(l, "zero", 0);
    psup_log_uint(l, "umax", ULLONG_MAX);
    psup_log_int(l, "neg", -42);
    psup_log_int(l, "min", LLONG_MIN);
    psup_log_int(l, "max", LLONG_MAX);
}

static void numbers_are_exact_at_their_limits(void **state)
{
    char text[1024];
    (void)state;

    record(PSUP_LOG_TEXT, numbers, text, sizeof(text));
    assert_non_null(strstr(text, " zero=0 "));
    assert_non_null(strstr(text, " umax=18446744073709551615 "));
    assert_non_null(strstr(text, " neg=-42 "));
    assert_non_null(strstr(text, " min=-9223372036854775808 "));
    assert_non_null(strstr(text, " max=9223372036854775807\n"));
    record(PSUP_LOG_JSON, numbers, text, sizeof(text));
    assert_non_null(strstr(text, "\"min\":-9223372036854775808,"));
}

static void nothing(struct psup_log *l)
{
    (void)l;
}

static void the_timestamp_is_utc_with_milliseconds(void **state)
{
    char text[256];
    regex_t re;
    (void)state;

    assert_int_equal(regcomp(&re, "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                                  "[0-9]{2}\\.[0-9]{3}Z level=info event=test\n$",
                             REG_EXTENDED | REG_NOSUB), 0);
    /* Twice: the second record takes the cached seconds. */
    for (int i = 0; i < 2; i++) {
        record(PSUP_LOG_TEXT, nothing, text, sizeof(text));
        assert_int_equal(regexec(&re, text, 0, NULL, 0), 0);
    }
    regfree(&re);
}

static void bytes(struct psup_log *l)
{
    static const char line[] = "caf\xc3\xa9 \xff\xfe\xc3 \x01 end";

    psup_log_bytes(l, "line", line, sizeof(line) - 1);
}

/* Invalid UTF-8: \xNN in text (as psup(1) says), U+FFFD in JSON (which has
 * no escape for a byte); valid sequences pass unchanged in both. */
static void invalid_utf8_is_escaped_per_format(void **state)
{
    char text[256];
    (void)state;

    record(PSUP_LOG_TEXT, bytes, text, sizeof(text));
    assert_non_null(strstr(text, " line=\"caf\xc3\xa9 \\xff\\xfe\\xc3 \\x01 end\"\n"));
    record(PSUP_LOG_JSON, bytes, text, sizeof(text));
    assert_non_null(strstr(text, "\"line\":\"caf\xc3\xa9 \\ufffd\\ufffd\\ufffd \\u0001 end\"}"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_are_exact_at_their_limits),
        cmocka_unit_test(the_timestamp_is_utc_with_milliseconds),
        cmocka_unit_test(invalid_utf8_is_escaped_per_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
