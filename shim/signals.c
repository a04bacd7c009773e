#include "signals.h"

#include "agent.h"
#include "config.h"
#include "drain.h"
#include "gen.h"
#include "libc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

sigset_t hr_initial_ignored;

/* held: the real disposition is the shim's handler; app: what the app
 * believes it installed. */
static struct {
	_Atomic int held;
	struct sigaction app;
} hr_sig[_NSIG];

__thread volatile sig_atomic_t hr_shim_signal_only __attribute__((tls_model("initial-exec")));

/* Signals whose app handler lacks SA_RESTART, as bits. */
static _Atomic unsigned long long hr_norestart;

void hr_signals_init(void)
{
	sigemptyset(&hr_initial_ignored);
	for (int sig = 1; sig < _NSIG; sig++) {
		struct sigaction sa;
		if (hr_real.sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			sigaddset(&hr_initial_ignored, sig);
	}
}

static void hr_track_restart(int sig, const struct sigaction *act)
{
	unsigned long long bit = 1ULL << (sig - 1);
	int catches = act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN;
	if (catches && !(act->sa_flags & SA_RESTART))
		atomic_fetch_or(&hr_norestart, bit);
	else
		atomic_fetch_and(&hr_norestart, ~bit);
}

int hr_app_restarts_syscalls(void)
{
	return atomic_load(&hr_norestart) == 0;
}

static int hr_default_ignores(int sig)
{
	return sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH;
}

/* Runs the app's disposition for a signal the shim caught. */
static void hr_chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction app = hr_sig[sig].app;
	if (app.sa_handler == SIG_IGN)
		return;
	if (app.sa_handler == SIG_DFL) {
		if (hr_default_ignores(sig))
			return;
		/* Let the default action happen once this handler returns. */
		atomic_store(&hr_sig[sig].held, 0);
		hr_real.sigaction(sig, &app, NULL);
		hr_real.syscall(SYS_tgkill, getpid(), hr_real.syscall(SYS_gettid), sig);
		return;
	}
	if (app.sa_flags & SA_RESETHAND)
		hr_sig[sig].app.sa_handler = SIG_DFL;
	/* The mask the app asked for while its handler runs. */
	sigset_t mask = app.sa_mask, old;
	if (!(app.sa_flags & SA_NODEFER))
		sigaddset(&mask, sig);
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	if (app.sa_flags & SA_SIGINFO)
		app.sa_sigaction(sig, si, uc);
	else
		app.sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Async-signal-safe: only atomics, write(2) and the app's own handler. */
static void hr_on_signal(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	if (sig == hr_cfg.wake_signal && si && si->si_code == SI_QUEUE &&
	    si->si_value.sival_int == HR_WAKE_MAGIC) {
		hr_shim_signal_only = 1;
		errno = saved;
		return;
	}
	if ((sig == hr_cfg.restart_signal || sig == hr_cfg.stop_signal) && hr_is_owner() &&
	    hr_agent_signal(sig)) {
		hr_shim_signal_only = 1;
		errno = saved;
		return;
	}
	hr_chain(sig, si, uc);
	errno = saved;
}

static void hr_hold(int sig, int flags)
{
	if (atomic_load(&hr_sig[sig].held))
		return;
	struct sigaction ours;
	memset(&ours, 0, sizeof ours);
	ours.sa_sigaction = hr_on_signal;
	ours.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&ours.sa_mask);
	if (hr_real.sigaction(sig, &ours, &hr_sig[sig].app) == 0)
		atomic_store(&hr_sig[sig].held, 1);
}

void hr_signals_take(void)
{
	/* SA_RESTART: an operator's signal must not surface as EINTR in app
	 * code that never installed a handler. */
	hr_hold(hr_cfg.restart_signal, SA_RESTART);
	hr_hold(hr_cfg.stop_signal, SA_RESTART);
}

void hr_signals_install_wake(void)
{
	/* No SA_RESTART: interrupting a blocked accept() is the point. */
	hr_hold(hr_cfg.wake_signal, 0);
}

void hr_signals_release_child(void)
{
	int sigs[2] = { hr_cfg.restart_signal, hr_cfg.stop_signal };
	for (int i = 0; i < 2; i++)
		if (atomic_exchange(&hr_sig[sigs[i]].held, 0))
			hr_real.sigaction(sigs[i], &hr_sig[sigs[i]].app, NULL);
}

int hr_signals_sigaction(int sig, const struct sigaction *act, struct sigaction *old, int *ret)
{
	if (sig <= 0 || sig >= _NSIG)
		return 0;
	if (!atomic_load(&hr_sig[sig].held)) {
		*ret = hr_real.sigaction(sig, act, old);
		if (*ret == 0 && act)
			hr_track_restart(sig, act);
		return 1;
	}
	if (old)
		*old = hr_sig[sig].app;
	if (act) {
		hr_sig[sig].app = *act;
		hr_track_restart(sig, act);
	}
	*ret = 0;
	return 1;
}

int hr_signals_deliver_to_app(int sig)
{
	struct sigaction app = hr_sig[sig].app;
	atomic_store(&hr_sig[sig].held, 0);
	hr_real.sigaction(sig, &app, NULL);
	if (app.sa_handler == SIG_IGN)
		return 0;
	/* The agent thread must not be the one to take it. */
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	pthread_sigmask(SIG_BLOCK, &one, NULL);
	kill(getpid(), sig);
	return 1;
}
