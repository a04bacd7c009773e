#include "config.h"

#include "log.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct hr_config hr_cfg;

int hr_parse_seconds(const char *text, double *out, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	/* Plain decimal only: strtod would also take hex, "inf" and "nan". */
	if (!text || !*text || strspn(text, "0123456789.") != strlen(text)) {
		snprintf(err, errlen, "'%s' is not a positive number of seconds", text ? text : "");
		return -1;
	}
	double v = strtod(text, &end);
	if (errno || *end || !isfinite(v) || v <= 0.0 || v > HR_MAX_SECONDS) {
		snprintf(err, errlen, "'%s' is not a number of seconds in (0, %.0f]", text,
			 HR_MAX_SECONDS);
		return -1;
	}
	*out = v;
	return 0;
}

int hr_parse_long(const char *text, long min, long max, long *out, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	if (!text || !*text || strspn(text, "0123456789") != strlen(text)) {
		snprintf(err, errlen, "'%s' is not a non-negative integer", text ? text : "");
		return -1;
	}
	long v = strtol(text, &end, 10);
	if (errno || *end || v < min || v > max) {
		snprintf(err, errlen, "'%s' is out of range [%ld, %ld]", text, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static const struct {
	const char *name;
	int number;
} hr_signal_names[] = {
	{ "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 }, { "TERM", SIGTERM }, { "WINCH", SIGWINCH }, { "URG", SIGURG },
	{ "PWR", SIGPWR },
};

/* Accepts "USR2", "SIGUSR2", "12", "RTMIN+3", "RTMAX-2". Signals that cannot
 * be caught, or whose default action matters to the shim, are refused. */
int hr_parse_signal(const char *text, int *out, char *err, size_t errlen)
{
	const char *name = text ? text : "";
	if (strncasecmp(name, "SIG", 3) == 0)
		name += 3;
	int sig = 0;
	long v;
	char tmp[16];
	if (*name >= '0' && *name <= '9') {
		if (hr_parse_long(name, 1, SIGRTMAX, &v, tmp, sizeof tmp) == 0)
			sig = (int)v;
	} else if (strncasecmp(name, "RTMIN", 5) == 0 || strncasecmp(name, "RTMAX", 5) == 0) {
		int base = strncasecmp(name, "RTMIN", 5) == 0 ? SIGRTMIN : SIGRTMAX;
		const char *rest = name + 5;
		if (!*rest)
			sig = base;
		else if ((*rest == '+' || *rest == '-') &&
			 hr_parse_long(rest + 1, 0, SIGRTMAX - SIGRTMIN, &v, tmp, sizeof tmp) == 0)
			sig = *rest == '+' ? base + (int)v : base - (int)v;
		if (sig < SIGRTMIN || sig > SIGRTMAX)
			sig = 0;
	} else {
		for (size_t i = 0; i < sizeof hr_signal_names / sizeof hr_signal_names[0]; i++)
			if (strcasecmp(name, hr_signal_names[i].name) == 0)
				sig = hr_signal_names[i].number;
	}
	/* Between SIGSYS and SIGRTMIN are glibc's own (threads, setxid). */
	if (sig <= 0 || (sig > SIGSYS && sig < SIGRTMIN) || sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS ||
	    sig == SIGILL || sig == SIGFPE || sig == SIGCHLD || sig == SIGPIPE || sig == SIGABRT) {
		snprintf(err, errlen, "'%s' is not a usable signal (a name like USR2 or a number)",
			 text ? text : "");
		return -1;
	}
	*out = sig;
	return 0;
}

int hr_parse_log_level(const char *text, int *out, char *err, size_t errlen)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++)
		if (text && strcasecmp(text, names[i]) == 0) {
			*out = i;
			return 0;
		}
	snprintf(err, errlen, "'%s' is not one of error, warn, info, debug", text ? text : "");
	return -1;
}

/* Reports "VAR=value: reason" for the first bad variable. */
static int hr_config_fail(char *err, size_t errlen, const char *var, const char *why)
{
	snprintf(err, errlen, "%s: %s", var, why);
	return -1;
}

int hr_config_load(struct hr_config *cfg, hr_env_lookup lookup, void *ctx, char *err, size_t errlen)
{
	char why[160];
	const char *v;
	memset(cfg, 0, sizeof *cfg);
	cfg->log_level = HR_LOG_INFO;
	cfg->drain_timeout = HR_DEFAULT_DRAIN_TIMEOUT;
	cfg->ready_timeout = HR_DEFAULT_READY_TIMEOUT;
	cfg->stop_grace = HR_DEFAULT_STOP_GRACE;
	cfg->restart_signal = SIGUSR2;
	cfg->stop_signal = SIGTERM;
	cfg->wake_signal = SIGRTMAX - 2;
	cfg->generation = 1;
	cfg->ready_fd = -1;

	if ((v = lookup(HR_ENV_LOG, ctx)) && *v &&
	    hr_parse_log_level(v, &cfg->log_level, why, sizeof why))
		return hr_config_fail(err, errlen, HR_ENV_LOG, why);
	if ((v = lookup(HR_ENV_PIDFILE, ctx)) && *v) {
		if (v[0] == '/') {
			if (strlen(v) >= sizeof cfg->pidfile - 32)
				return hr_config_fail(err, errlen, HR_ENV_PIDFILE, "path too long");
			strcpy(cfg->pidfile, v);
		} else {
			/* Resolve now: daemons chdir("/") before we write it. */
			char cwd[PATH_MAX];
			if (!getcwd(cwd, sizeof cwd) ||
			    strlen(cwd) + strlen(v) + 2 >= sizeof cfg->pidfile - 32)
				return hr_config_fail(err, errlen, HR_ENV_PIDFILE,
						      "cannot make the path absolute");
			strcpy(cfg->pidfile, cwd);
			strcat(cfg->pidfile, "/");
			strcat(cfg->pidfile, v);
		}
	}
	if ((v = lookup(HR_ENV_DRAIN_TIMEOUT, ctx)) &&
	    hr_parse_seconds(v, &cfg->drain_timeout, why, sizeof why))
		return hr_config_fail(err, errlen, HR_ENV_DRAIN_TIMEOUT, why);
	if ((v = lookup(HR_ENV_READY_TIMEOUT, ctx)) &&
	    hr_parse_seconds(v, &cfg->ready_timeout, why, sizeof why))
		return hr_config_fail(err, errlen, HR_ENV_READY_TIMEOUT, why);
	if ((v = lookup(HR_ENV_STOP_GRACE, ctx)) &&
	    hr_parse_seconds(v, &cfg->stop_grace, why, sizeof why))
		return hr_config_fail(err, errlen, HR_ENV_STOP_GRACE, why);
	if ((v = lookup(HR_ENV_SIGNAL, ctx)) &&
	    hr_parse_signal(v, &cfg->restart_signal, why, sizeof why))
		return hr_config_fail(err, errlen, HR_ENV_SIGNAL, why);
	if ((v = lookup(HR_ENV_STOP_SIGNAL, ctx)) &&
	    hr_parse_signal(v, &cfg->stop_signal, why, sizeof why))
		return hr_config_fail(err, errlen, HR_ENV_STOP_SIGNAL, why);
	if ((v = lookup(HR_ENV_WAKE_SIGNAL, ctx)) &&
	    hr_parse_signal(v, &cfg->wake_signal, why, sizeof why))
		return hr_config_fail(err, errlen, HR_ENV_WAKE_SIGNAL, why);
	if (cfg->restart_signal == cfg->stop_signal || cfg->wake_signal == cfg->stop_signal ||
	    cfg->wake_signal == cfg->restart_signal)
		return hr_config_fail(err, errlen, HR_ENV_SIGNAL,
				      "restart, stop and wake signals must differ");
	if ((v = lookup(HR_ENV_GENERATION, ctx)) &&
	    hr_parse_long(v, 1, 1000000000L, &cfg->generation, why, sizeof why))
		return hr_config_fail(err, errlen, HR_ENV_GENERATION, why);
	long fd;
	if ((v = lookup(HR_ENV_READY_FD, ctx))) {
		if (hr_parse_long(v, 3, 65535, &fd, why, sizeof why))
			return hr_config_fail(err, errlen, HR_ENV_READY_FD, why);
		cfg->ready_fd = (int)fd;
	}
	return 0;
}
