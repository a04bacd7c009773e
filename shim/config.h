/* Configuration: HOTRESTART_* environment variables, read once at load into
 * an immutable struct. Every variable name lives here. */
#ifndef HR_CONFIG_H
#define HR_CONFIG_H

#include <limits.h>
#include <stddef.h>

#pragma GCC visibility push(hidden)

#define HR_ENV_PIDFILE "HOTRESTART_PIDFILE"
#define HR_ENV_LOG "HOTRESTART_LOG"
#define HR_ENV_DRAIN_TIMEOUT "HOTRESTART_DRAIN_TIMEOUT"
#define HR_ENV_READY_TIMEOUT "HOTRESTART_READY_TIMEOUT"
#define HR_ENV_STOP_GRACE "HOTRESTART_STOP_GRACE"
#define HR_ENV_SIGNAL "HOTRESTART_SIGNAL"
#define HR_ENV_STOP_SIGNAL "HOTRESTART_STOP_SIGNAL"
#define HR_ENV_WAKE_SIGNAL "HOTRESTART_WAKE_SIGNAL"
/* Set by the shim for a successor; not meant for operators. */
#define HR_ENV_GENERATION "HOTRESTART_GENERATION"
#define HR_ENV_READY_FD "HOTRESTART_READY_FD"
/* Set by the keeper for each generation (docs/keeper.md). */
#define HR_ENV_KEEPER_FD "HOTRESTART_KEEPER_FD"
#define HR_ENV_GEN_FD "HOTRESTART_GEN_FD"
#define HR_ENV_WAKE_FD "HOTRESTART_WAKE_FD"
/* Set by the spawner for a successor: older generations' processes. */
#define HR_ENV_OLD_PIDS "HOTRESTART_OLD_PIDS"

#define HR_DEFAULT_DRAIN_TIMEOUT 30.0
#define HR_DEFAULT_READY_TIMEOUT 30.0
#define HR_DEFAULT_STOP_GRACE 5.0
#define HR_MAX_SECONDS 86400.0

struct hr_config {
	char pidfile[PATH_MAX]; /* empty: no pid file */
	int log_level;
	double drain_timeout;
	double ready_timeout;
	double stop_grace;
	int restart_signal;
	int stop_signal;
	int wake_signal;
	long generation;
	int ready_fd; /* -1: first generation */
};

/* Returns the value of a variable or NULL; lets unit tests feed values. */
typedef const char *(*hr_env_lookup)(const char *name, void *ctx);

/* Each parser returns 0 and stores the value, or -1 and writes a reason. */
int hr_parse_seconds(const char *text, double *out, char *err, size_t errlen);
int hr_parse_signal(const char *text, int *out, char *err, size_t errlen);
int hr_parse_log_level(const char *text, int *out, char *err, size_t errlen);
int hr_parse_long(const char *text, long min, long max, long *out, char *err, size_t errlen);

/* Fills cfg from the environment. On error returns -1 with a one-line
 * message naming the variable; the caller then disables the shim. */
int hr_config_load(struct hr_config *cfg, hr_env_lookup lookup, void *ctx, char *err, size_t errlen);

extern struct hr_config hr_cfg;

#pragma GCC visibility pop

#endif
