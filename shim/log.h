/* One line per event on stderr, prefixed "hotrestart[PID]: ". */
#ifndef HR_LOG_H
#define HR_LOG_H

#pragma GCC visibility push(hidden)

enum hr_log_level { HR_LOG_ERROR = 0, HR_LOG_WARN, HR_LOG_INFO, HR_LOG_DEBUG };

extern int hr_log_level;

/* Formats into a stack buffer and writes it with one write(2). Not
 * async-signal-safe (vsnprintf): never call from a handler or after clone. */
void hr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define hr_error(...) hr_log(HR_LOG_ERROR, __VA_ARGS__)
#define hr_warn(...) hr_log(HR_LOG_WARN, __VA_ARGS__)
#define hr_info(...) hr_log(HR_LOG_INFO, __VA_ARGS__)
#define hr_debug(...) hr_log(HR_LOG_DEBUG, __VA_ARGS__)

/* Async-signal-safe decimal formatting; returns the length written. */
int hr_fmt_long(char *buf, long value);

#pragma GCC visibility pop

#endif
