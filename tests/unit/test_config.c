/* Unit tests for shim/config.c: the value parsers and hr_config_load. */
#include <criterion/criterion.h>

#include "config.h"
#include "log.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---- */

/* Whether err contains text wrapped in single quotes. */
static int quotes(const char *err, const char *text)
{
	char want[512];
	snprintf(want, sizeof want, "'%s'", text);
	return strstr(err, want) != NULL;
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The environment for hr_config_load: a NULL-terminated name/value table. */
struct env {
	const char *name;
	const char *value;
};

static const char *table_lookup(const char *name, void *ctx)
{
	for (const struct env *e = ctx; e && e->name; e++)
		if (strcmp(e->name, name) == 0)
			return e->value;
	return NULL;
}

/* Loads a configuration from one variable. */
static int load1(struct hr_config *cfg, const char *name, const char *value, char *err,
		 size_t errlen)
{
	struct env env[] = { { name, value }, { NULL, NULL } };
	return hr_config_load(cfg, table_lookup, env, err, errlen);
}

/* ---- hr_parse_seconds ---- */

Test(parse_seconds, accepts_plain_decimals)
{
	static const struct {
		const char *text;
		double value;
	} ok[] = {
		{ "30", 30.0 },	  { "0.5", 0.5 },	    { "86400", 86400.0 },
		{ "1", 1.0 },	  { ".25", 0.25 },	    { "007", 7.0 },
		{ "86400.0", 86400.0 }, { "0.001", 0.001 },
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		double v = -42.0;
		char err[128] = "untouched";
		cr_assert_eq(hr_parse_seconds(ok[i].text, &v, err, sizeof err), 0,
			     "'%s' rejected: %s", ok[i].text, err);
		cr_assert_float_eq(v, ok[i].value, 1e-12, "'%s' parsed as %g", ok[i].text, v);
	}
}

Test(parse_seconds, rejects_malformed_with_quoted_input)
{
	static const char *const bad[] = {
		"",     "abc",	 "-1",	    "0",    "0.0",   "1e3",	   "inf",	  "nan",
		"12s",  "99999999999", "1.2.3", ".",	    "86400.5", "86401", " 5",	  "5 ",
		"0x10", "+5",	 "1,5",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		double v = -42.0;
		char err[128] = "";
		cr_assert_eq(hr_parse_seconds(bad[i], &v, err, sizeof err), -1, "'%s' accepted as %g",
			     bad[i], v);
		cr_assert_neq(err[0], '\0', "no message for '%s'", bad[i]);
		cr_assert(quotes(err, bad[i]), "message for '%s' does not quote it: %s", bad[i], err);
		cr_assert_float_eq(v, -42.0, 0.0, "'%s' stored %g despite failing", bad[i], v);
	}
}

Test(parse_seconds, rejects_null)
{
	double v = -42.0;
	char err[128] = "";
	cr_assert_eq(hr_parse_seconds(NULL, &v, err, sizeof err), -1);
	cr_assert_neq(err[0], '\0');
	cr_assert_float_eq(v, -42.0, 0.0);
}

Test(parse_seconds, truncates_message_to_buffer)
{
	double v;
	char err[8];
	memset(err, 'x', sizeof err);
	cr_assert_eq(hr_parse_seconds("abcdefghijklmnop", &v, err, sizeof err), -1);
	cr_assert_eq(strnlen(err, sizeof err), sizeof err - 1, "message not NUL-terminated");
}

/* ---- hr_parse_long ---- */

Test(parse_long, accepts_values_in_range)
{
	long v = -1;
	char err[128];
	cr_assert_eq(hr_parse_long("12", 1, 100, &v, err, sizeof err), 0);
	cr_assert_eq(v, 12);
	cr_assert_eq(hr_parse_long("1", 1, 100, &v, err, sizeof err), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(hr_parse_long("100", 1, 100, &v, err, sizeof err), 0);
	cr_assert_eq(v, 100);
	cr_assert_eq(hr_parse_long("0", 0, 0, &v, err, sizeof err), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(hr_parse_long("0010", 0, 100, &v, err, sizeof err), 0);
	cr_assert_eq(v, 10, "leading zeros are decimal, not octal: got %ld", v);
	cr_assert_eq(hr_parse_long("9223372036854775807", 0, LONG_MAX, &v, err, sizeof err), 0);
	cr_assert_eq(v, LONG_MAX);
}

Test(parse_long, rejects_out_of_range_with_bounds)
{
	long v = -7;
	char err[128] = "";
	cr_assert_eq(hr_parse_long("0", 1, 100, &v, err, sizeof err), -1);
	cr_assert(quotes(err, "0"), "%s", err);
	cr_assert(strstr(err, "[1, 100]"), "range missing: %s", err);
	cr_assert_eq(hr_parse_long("101", 1, 100, &v, err, sizeof err), -1);
	cr_assert(quotes(err, "101"), "%s", err);
	cr_assert_eq(hr_parse_long("99999999999999999999", 0, LONG_MAX, &v, err, sizeof err), -1,
		     "overflow accepted");
	cr_assert(quotes(err, "99999999999999999999"), "%s", err);
	cr_assert_eq(v, -7, "value stored despite failing");
}

Test(parse_long, rejects_non_digits)
{
	static const char *const bad[] = { "", "-5", "+5", " 5", "5 ", "abc", "1.5", "0x10", "12a" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		long v = -7;
		char err[128] = "";
		cr_assert_eq(hr_parse_long(bad[i], -100, 100, &v, err, sizeof err), -1,
			     "'%s' accepted as %ld", bad[i], v);
		cr_assert(quotes(err, bad[i]), "message for '%s': %s", bad[i], err);
		cr_assert_eq(v, -7);
	}
	long v = -7;
	char err[128] = "";
	cr_assert_eq(hr_parse_long(NULL, 0, 10, &v, err, sizeof err), -1);
	cr_assert_neq(err[0], '\0');
}

/* ---- hr_parse_signal ---- */

Test(parse_signal, accepts_names_numbers_and_realtime)
{
	const struct {
		const char *text;
		int sig;
	} ok[] = {
		{ "USR2", SIGUSR2 },	      { "SIGUSR2", SIGUSR2 },	   { "usr1", SIGUSR1 },
		{ "sigterm", SIGTERM },	      { "HUP", SIGHUP },	   { "INT", SIGINT },
		{ "QUIT", SIGQUIT },	      { "WINCH", SIGWINCH },	   { "URG", SIGURG },
		{ "PWR", SIGPWR },	      { "12", 12 },		   { "SIG15", 15 },
		{ "RTMIN", SIGRTMIN },	      { "RTMIN+2", SIGRTMIN + 2 }, { "RTMAX-2", SIGRTMAX - 2 },
		{ "SIGRTMAX", SIGRTMAX },     { "rtmin+0", SIGRTMIN },
		{ "RTMAX-0", SIGRTMAX },
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int sig = -1;
		char err[128] = "";
		cr_assert_eq(hr_parse_signal(ok[i].text, &sig, err, sizeof err), 0,
			     "'%s' rejected: %s", ok[i].text, err);
		cr_assert_eq(sig, ok[i].sig, "'%s' gave %d, want %d", ok[i].text, sig, ok[i].sig);
	}
}

Test(parse_signal, accepts_the_realtime_range_edges)
{
	int sig = -1;
	char err[128], text[32];
	int span = SIGRTMAX - SIGRTMIN;
	snprintf(text, sizeof text, "RTMIN+%d", span);
	cr_assert_eq(hr_parse_signal(text, &sig, err, sizeof err), 0, "%s: %s", text, err);
	cr_assert_eq(sig, SIGRTMAX);
	snprintf(text, sizeof text, "RTMAX-%d", span);
	cr_assert_eq(hr_parse_signal(text, &sig, err, sizeof err), 0, "%s: %s", text, err);
	cr_assert_eq(sig, SIGRTMIN);
	snprintf(text, sizeof text, "%d", SIGRTMAX);
	cr_assert_eq(hr_parse_signal(text, &sig, err, sizeof err), 0, "%s: %s", text, err);
	cr_assert_eq(sig, SIGRTMAX);
}

Test(parse_signal, rejects_unusable_and_unknown_signals)
{
	char num[8][16];
	snprintf(num[0], sizeof num[0], "%d", SIGKILL);
	snprintf(num[1], sizeof num[1], "%d", SIGSTOP);
	snprintf(num[2], sizeof num[2], "%d", SIGSEGV);
	snprintf(num[3], sizeof num[3], "%d", SIGCHLD);
	snprintf(num[4], sizeof num[4], "%d", SIGPIPE);
	snprintf(num[5], sizeof num[5], "%d", SIGABRT);
	snprintf(num[6], sizeof num[6], "%d", SIGRTMAX + 1);
	snprintf(num[7], sizeof num[7], "RTMAX+1");
	const char *bad[] = {
		"KILL", "STOP",	   "SEGV",    "CHLD",	"SIGKILL", "BUS",      "ILL",	  "FPE",
		"PIPE", "ABRT",	   "0",	      "999",	"FOO",	   "RTMIN+99", "RTMIN-1", "RTMIN+",
		"SIG",	"",	   "-1",      "USR2 ",	"12x",	   "RTMINX",   num[0],	  num[1],
		num[2], num[3],	   num[4],    num[5],	num[6],	   num[7],
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int sig = -1;
		char err[128] = "";
		cr_assert_eq(hr_parse_signal(bad[i], &sig, err, sizeof err), -1, "'%s' accepted as %d",
			     bad[i], sig);
		cr_assert(quotes(err, bad[i]), "message for '%s' does not quote it: %s", bad[i], err);
		cr_assert_eq(sig, -1, "'%s' stored %d despite failing", bad[i], sig);
	}
	int sig = -1;
	char err[128] = "";
	cr_assert_eq(hr_parse_signal(NULL, &sig, err, sizeof err), -1);
	cr_assert_neq(err[0], '\0');
}

/* ---- hr_parse_log_level ---- */

Test(parse_log_level, accepts_the_four_levels_in_any_case)
{
	const struct {
		const char *text;
		int level;
	} ok[] = {
		{ "error", HR_LOG_ERROR }, { "warn", HR_LOG_WARN },   { "info", HR_LOG_INFO },
		{ "debug", HR_LOG_DEBUG }, { "DEBUG", HR_LOG_DEBUG }, { "Warn", HR_LOG_WARN },
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int level = -1;
		char err[128] = "";
		cr_assert_eq(hr_parse_log_level(ok[i].text, &level, err, sizeof err), 0, "'%s': %s",
			     ok[i].text, err);
		cr_assert_eq(level, ok[i].level, "'%s' gave %d", ok[i].text, level);
	}
}

Test(parse_log_level, rejects_other_words)
{
	static const char *const bad[] = { "", "verbose", "warning", "3", "info ", "err" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int level = -1;
		char err[128] = "";
		cr_assert_eq(hr_parse_log_level(bad[i], &level, err, sizeof err), -1, "'%s' accepted",
			     bad[i]);
		cr_assert(quotes(err, bad[i]), "%s", err);
		cr_assert_eq(level, -1);
	}
	int level = -1;
	char err[128] = "";
	cr_assert_eq(hr_parse_log_level(NULL, &level, err, sizeof err), -1);
	cr_assert_neq(err[0], '\0');
}

/* ---- hr_config_load ---- */

Test(config_load, defaults_when_nothing_is_set)
{
	struct hr_config cfg;
	char err[256] = "";
	memset(&cfg, 0xa5, sizeof cfg);
	struct env empty[] = { { NULL, NULL } };
	cr_assert_eq(hr_config_load(&cfg, table_lookup, empty, err, sizeof err), 0, "%s", err);
	cr_assert_float_eq(cfg.drain_timeout, 30.0, 0.0);
	cr_assert_float_eq(cfg.ready_timeout, 30.0, 0.0);
	cr_assert_float_eq(cfg.stop_grace, 5.0, 0.0);
	cr_assert_eq(cfg.restart_signal, SIGUSR2);
	cr_assert_eq(cfg.stop_signal, SIGTERM);
	cr_assert_eq(cfg.wake_signal, SIGRTMAX - 2);
	cr_assert_eq(cfg.log_level, HR_LOG_INFO);
	cr_assert_eq(cfg.generation, 1);
	cr_assert_eq(cfg.ready_fd, -1);
	cr_assert_str_empty(cfg.pidfile);
}

Test(config_load, every_variable_valid)
{
	struct env env[] = {
		{ HR_ENV_DRAIN_TIMEOUT, "12.5" }, { HR_ENV_READY_TIMEOUT, "7" },
		{ HR_ENV_STOP_GRACE, "0.25" },	  { HR_ENV_SIGNAL, "HUP" },
		{ HR_ENV_STOP_SIGNAL, "SIGINT" }, { HR_ENV_WAKE_SIGNAL, "RTMIN+1" },
		{ HR_ENV_LOG, "debug" },	  { HR_ENV_GENERATION, "42" },
		{ HR_ENV_READY_FD, "9" },	  { HR_ENV_PIDFILE, "/run/app.pid" },
		{ NULL, NULL },
	};
	struct hr_config cfg;
	char err[256] = "";
	cr_assert_eq(hr_config_load(&cfg, table_lookup, env, err, sizeof err), 0, "%s", err);
	cr_assert_float_eq(cfg.drain_timeout, 12.5, 0.0);
	cr_assert_float_eq(cfg.ready_timeout, 7.0, 0.0);
	cr_assert_float_eq(cfg.stop_grace, 0.25, 0.0);
	cr_assert_eq(cfg.restart_signal, SIGHUP);
	cr_assert_eq(cfg.stop_signal, SIGINT);
	cr_assert_eq(cfg.wake_signal, SIGRTMIN + 1);
	cr_assert_eq(cfg.log_level, HR_LOG_DEBUG);
	cr_assert_eq(cfg.generation, 42);
	cr_assert_eq(cfg.ready_fd, 9);
	cr_assert_str_eq(cfg.pidfile, "/run/app.pid");
}

Test(config_load, variable_bounds_are_inclusive)
{
	struct env env[] = {
		{ HR_ENV_DRAIN_TIMEOUT, "86400" }, { HR_ENV_GENERATION, "1000000000" },
		{ HR_ENV_READY_FD, "65535" },	   { NULL, NULL },
	};
	struct hr_config cfg;
	char err[256] = "";
	cr_assert_eq(hr_config_load(&cfg, table_lookup, env, err, sizeof err), 0, "%s", err);
	cr_assert_float_eq(cfg.drain_timeout, 86400.0, 0.0);
	cr_assert_eq(cfg.generation, 1000000000L);
	cr_assert_eq(cfg.ready_fd, 65535);
	cr_assert_eq(load1(&cfg, HR_ENV_READY_FD, "3", err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.ready_fd, 3);
}

Test(config_load, malformed_values_name_the_variable)
{
	const struct {
		const char *name;
		const char *value;
	} bad[] = {
		{ HR_ENV_DRAIN_TIMEOUT, "abc" },      { HR_ENV_DRAIN_TIMEOUT, "0" },
		{ HR_ENV_DRAIN_TIMEOUT, "" },	      { HR_ENV_DRAIN_TIMEOUT, "86401" },
		{ HR_ENV_READY_TIMEOUT, "-3" },	      { HR_ENV_READY_TIMEOUT, "1e2" },
		{ HR_ENV_STOP_GRACE, "nan" },	      { HR_ENV_STOP_GRACE, "5s" },
		{ HR_ENV_SIGNAL, "KILL" },	      { HR_ENV_SIGNAL, "FOO" },
		{ HR_ENV_STOP_SIGNAL, "STOP" },	      { HR_ENV_STOP_SIGNAL, "0" },
		{ HR_ENV_WAKE_SIGNAL, "RTMIN+99" },   { HR_ENV_WAKE_SIGNAL, "CHLD" },
		{ HR_ENV_LOG, "loud" },		      { HR_ENV_GENERATION, "0" },
		{ HR_ENV_GENERATION, "abc" },	      { HR_ENV_GENERATION, "1000000001" },
		{ HR_ENV_GENERATION, "-1" },	      { HR_ENV_READY_FD, "2" },
		{ HR_ENV_READY_FD, "65536" },	      { HR_ENV_READY_FD, "x" },
		{ HR_ENV_READY_FD, "" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct hr_config cfg;
		char err[256] = "";
		char prefix[64];
		snprintf(prefix, sizeof prefix, "%s: ", bad[i].name);
		cr_assert_eq(load1(&cfg, bad[i].name, bad[i].value, err, sizeof err), -1,
			     "%s='%s' accepted", bad[i].name, bad[i].value);
		cr_assert(starts_with(err, prefix), "%s='%s': message does not start with %s: %s",
			  bad[i].name, bad[i].value, prefix, err);
		cr_assert(quotes(err, bad[i].value), "%s='%s': value not quoted: %s", bad[i].name,
			  bad[i].value, err);
	}
}

Test(config_load, empty_log_and_pidfile_mean_default)
{
	struct env env[] = { { HR_ENV_LOG, "" }, { HR_ENV_PIDFILE, "" }, { NULL, NULL } };
	struct hr_config cfg;
	char err[256] = "";
	cr_assert_eq(hr_config_load(&cfg, table_lookup, env, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.log_level, HR_LOG_INFO);
	cr_assert_str_empty(cfg.pidfile);
}

Test(config_load, first_bad_variable_wins_and_later_ones_are_not_needed)
{
	struct env env[] = {
		{ HR_ENV_LOG, "warn" },
		{ HR_ENV_DRAIN_TIMEOUT, "soon" },
		{ HR_ENV_GENERATION, "never" },
		{ NULL, NULL },
	};
	struct hr_config cfg;
	char err[256] = "";
	cr_assert_eq(hr_config_load(&cfg, table_lookup, env, err, sizeof err), -1);
	cr_assert(starts_with(err, HR_ENV_DRAIN_TIMEOUT ": "), "%s", err);
	cr_assert_null(strstr(err, HR_ENV_GENERATION), "%s", err);
}

Test(config_load, restart_and_stop_signal_must_differ)
{
	struct env env[] = { { HR_ENV_SIGNAL, "TERM" }, { NULL, NULL } };
	struct hr_config cfg;
	char err[256] = "";
	cr_assert_eq(hr_config_load(&cfg, table_lookup, env, err, sizeof err), -1,
		     "restart signal equal to the default stop signal accepted");
	cr_assert(starts_with(err, HR_ENV_SIGNAL ": "), "%s", err);
	cr_assert(strstr(err, "differ"), "%s", err);

	struct env same[] = { { HR_ENV_SIGNAL, "USR1" }, { HR_ENV_STOP_SIGNAL, "SIGUSR1" },
			      { NULL, NULL } };
	err[0] = '\0';
	cr_assert_eq(hr_config_load(&cfg, table_lookup, same, err, sizeof err), -1);
	cr_assert(starts_with(err, "HOTRESTART_"), "%s", err);
	cr_assert(strstr(err, "differ"), "%s", err);
}

Test(config_load, wake_signal_must_differ_from_the_others)
{
	struct hr_config cfg;
	char err[256] = "";
	cr_assert_eq(load1(&cfg, HR_ENV_WAKE_SIGNAL, "USR2", err, sizeof err), -1,
		     "wake signal equal to the default restart signal accepted");
	cr_assert(strstr(err, "differ"), "%s", err);
	err[0] = '\0';
	cr_assert_eq(load1(&cfg, HR_ENV_WAKE_SIGNAL, "TERM", err, sizeof err), -1,
		     "wake signal equal to the default stop signal accepted");
	cr_assert(strstr(err, "differ"), "%s", err);
	err[0] = '\0';
	cr_assert_eq(load1(&cfg, HR_ENV_SIGNAL, "RTMAX-2", err, sizeof err), -1,
		     "restart signal equal to the default wake signal accepted");
	cr_assert(starts_with(err, HR_ENV_SIGNAL ": "), "%s", err);
	/* Moving the wake signal out of the way makes the same choice valid. */
	struct env env[] = { { HR_ENV_SIGNAL, "RTMAX-2" }, { HR_ENV_WAKE_SIGNAL, "RTMAX-3" },
			     { NULL, NULL } };
	cr_assert_eq(hr_config_load(&cfg, table_lookup, env, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.restart_signal, SIGRTMAX - 2);
	cr_assert_eq(cfg.wake_signal, SIGRTMAX - 3);
}

Test(config_load, relative_pidfile_is_made_absolute)
{
	char cwd[PATH_MAX], want[PATH_MAX + 64];
	cr_assert_not_null(getcwd(cwd, sizeof cwd));
	snprintf(want, sizeof want, "%s/run/app.pid", cwd);
	struct hr_config cfg;
	char err[256] = "";
	cr_assert_eq(load1(&cfg, HR_ENV_PIDFILE, "run/app.pid", err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(cfg.pidfile, want);
	cr_assert_eq(cfg.pidfile[0], '/');
}

Test(config_load, relative_pidfile_follows_the_current_directory)
{
	struct hr_config cfg;
	char err[256] = "", cwd[PATH_MAX], want[PATH_MAX + 16];
	cr_assert_eq(chdir("/tmp"), 0);
	cr_assert_not_null(getcwd(cwd, sizeof cwd));
	cr_assert_str_neq(cwd, "/");
	snprintf(want, sizeof want, "%s/x.pid", cwd);
	cr_assert_eq(load1(&cfg, HR_ENV_PIDFILE, "x.pid", err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(cfg.pidfile, want);
}

Test(config_load, too_long_pidfile_is_rejected)
{
	/* Room must stay for the ".tmp.PID" suffix of the atomic write. */
	static char path[PATH_MAX + 16];
	struct hr_config cfg;
	char err[256] = "";
	size_t limit = sizeof cfg.pidfile - 32;

	memset(path, 'a', sizeof path - 1);
	path[0] = '/';
	path[limit] = '\0';
	cr_assert_eq(load1(&cfg, HR_ENV_PIDFILE, path, err, sizeof err), -1,
		     "%zu-byte path accepted", limit);
	cr_assert(starts_with(err, HR_ENV_PIDFILE ": "), "%s", err);

	path[limit - 1] = '\0';
	cr_assert_eq(load1(&cfg, HR_ENV_PIDFILE, path, err, sizeof err), 0,
		     "%zu-byte path rejected: %s", limit - 1, err);
	cr_assert_eq(strlen(cfg.pidfile), limit - 1);

	memset(path, 'b', sizeof path - 1);
	path[sizeof path - 1] = '\0';
	err[0] = '\0';
	cr_assert_eq(load1(&cfg, HR_ENV_PIDFILE, path, err, sizeof err), -1,
		     "over-long relative path accepted");
	cr_assert(starts_with(err, HR_ENV_PIDFILE ": "), "%s", err);
}

Test(config_load, error_message_fits_a_small_buffer)
{
	struct hr_config cfg;
	char err[16];
	memset(err, 'x', sizeof err);
	cr_assert_eq(load1(&cfg, HR_ENV_DRAIN_TIMEOUT, "abc", err, sizeof err), -1);
	cr_assert_eq(strnlen(err, sizeof err), sizeof err - 1);
	cr_assert(starts_with(err, "HOTRESTART_DRAI"), "%s", err);
}

/* glibc reserves the signals between 32 and SIGRTMIN for itself: its
 * sigaction() refuses them with EINVAL, so hr_signals_take() would fail
 * silently and the restart signal would never be caught. The parser accepts
 * them as numbers today (see the report); enable once that is fixed. */
Test(parse_signal, rejects_glibc_reserved_numbers)
{
	for (int sig = 32; sig < SIGRTMIN; sig++) {
		char text[16], err[128] = "";
		int out = -1;
		snprintf(text, sizeof text, "%d", sig);
		cr_assert_eq(hr_parse_signal(text, &out, err, sizeof err), -1,
			     "reserved signal %d accepted", sig);
	}
}
