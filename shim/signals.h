/* The shim's signals: restart and stop in the process that owns the
 * listeners, and the wake signal that interrupts blocked accept() calls.
 * The app keeps its own view of their dispositions and is chained to. */
#ifndef HR_SIGNALS_H
#define HR_SIGNALS_H

#include <signal.h>

#pragma GCC visibility push(hidden)

/* Records dispositions at load time (the successor starts with them). */
void hr_signals_init(void);
extern sigset_t hr_initial_ignored;

/* Installs the shim's handler for the restart and stop signals. */
void hr_signals_take(void);
/* In a fork child (async-signal-safe): gives them back to the app. */
void hr_signals_release_child(void);
void hr_signals_install_wake(void);

/* The sigaction() hook: returns 1 when it answered for a shim signal. */
int hr_signals_sigaction(int sig, const struct sigaction *act, struct sigaction *old, int *ret);

/* Hands sig back to the app and delivers it to the process, so the app's
 * own stop path runs. Returns 0 when the app ignores sig. */
int hr_signals_deliver_to_app(int sig);

/* Set by the shim's handler in the thread it ran on when the signal was
 * the shim's alone (its wake, a restart or stop request for the agent):
 * clear it before a wait to tell, at EINTR, whether an app handler ran. */
extern __thread volatile sig_atomic_t hr_shim_signal_only
	__attribute__((tls_model("initial-exec")));

/* Whether a syscall interrupted by a signal would be restarted for the app
 * (every handler it installed has SA_RESTART). */
int hr_app_restarts_syscalls(void);

#pragma GCC visibility pop

#endif
