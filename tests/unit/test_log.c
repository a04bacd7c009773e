/* Unit tests for shim/log.c: hr_fmt_long and the line format of hr_log. */
#include <criterion/criterion.h>

#include "helpers.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Formats value with hr_fmt_long and checks it against snprintf. */
static void check_fmt(long value)
{
	char got[32], want[32];
	memset(got, 'x', sizeof got);
	int len = hr_fmt_long(got, value);
	snprintf(want, sizeof want, "%ld", value);
	cr_assert_str_eq(got, want, "hr_fmt_long(%ld)", value);
	cr_assert_eq(len, (int)strlen(want), "length for %ld: %d", value, len);
}

Test(fmt_long, zero)
{
	char buf[8];
	memset(buf, 'x', sizeof buf);
	cr_assert_eq(hr_fmt_long(buf, 0), 1);
	cr_assert_str_eq(buf, "0");
}

Test(fmt_long, negative)
{
	char buf[16];
	cr_assert_eq(hr_fmt_long(buf, -42), 3);
	cr_assert_str_eq(buf, "-42");
	check_fmt(-1);
	check_fmt(-10);
}

Test(fmt_long, extremes)
{
	char buf[32];
	cr_assert_eq(hr_fmt_long(buf, LONG_MAX), 19);
	cr_assert_str_eq(buf, "9223372036854775807");
	cr_assert_eq(hr_fmt_long(buf, LONG_MIN), 20);
	cr_assert_str_eq(buf, "-9223372036854775808");
}

Test(fmt_long, matches_printf_across_magnitudes)
{
	long v = 1;
	for (int i = 0; i < 18; i++, v *= 10) {
		check_fmt(v);
		check_fmt(v - 1);
		check_fmt(-v);
		check_fmt(-v + 1);
	}
	check_fmt(LONG_MAX - 1);
	check_fmt(LONG_MIN + 1);
}

Test(log, prefix_and_single_line)
{
	char want[64];
	snprintf(want, sizeof want, "hotrestart[%d]: hello 7 world\n", (int)getpid());
	hr_log_level = HR_LOG_INFO;
	struct ut_capture cap;
	ut_capture_begin(&cap);
	hr_error("hello %d %s", 7, "world");
	char *out = ut_capture_end(&cap);
	cr_assert_str_eq(out, want);
	free(out);
}

Test(log, level_filters_messages)
{
	struct ut_capture cap;
	hr_log_level = HR_LOG_WARN;
	ut_capture_begin(&cap);
	hr_debug("debug line");
	hr_info("info line");
	hr_warn("warn line");
	hr_error("error line");
	char *out = ut_capture_end(&cap);
	cr_assert_null(strstr(out, "debug line"), "%s", out);
	cr_assert_null(strstr(out, "info line"), "%s", out);
	cr_assert_not_null(strstr(out, "warn line"), "%s", out);
	cr_assert_not_null(strstr(out, "error line"), "%s", out);
	free(out);

	hr_log_level = HR_LOG_DEBUG;
	ut_capture_begin(&cap);
	hr_debug("debug line");
	out = ut_capture_end(&cap);
	cr_assert_not_null(strstr(out, "debug line"), "%s", out);
	free(out);
}

Test(log, keeps_errno)
{
	struct ut_capture cap;
	hr_log_level = HR_LOG_INFO;
	ut_capture_begin(&cap);
	errno = ERANGE;
	hr_error("x");
	int after_log = errno;
	free(ut_capture_end(&cap));
	cr_assert_eq(after_log, ERANGE);
}

Test(log, long_message_is_truncated_to_one_line)
{
	static char big[4000];
	memset(big, 'm', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	hr_log_level = HR_LOG_INFO;
	struct ut_capture cap;
	ut_capture_begin(&cap);
	hr_error("%s", big);
	char *out = ut_capture_end(&cap);
	size_t len = strlen(out);
	cr_assert(len > 900 && len < 1024, "line of %zu bytes", len);
	cr_assert_eq(out[len - 1], '\n');
	cr_assert_eq(strchr(out, '\n'), out + len - 1, "more than one line");
	cr_assert_eq(out[len - 2], 'm');
	free(out);
}
