/* hotrestart-keeper --library LIB --exe PATH -- ARGV...
 *
 * Started (exec'd) by `hotrestart run`, so it keeps the PID supervisors,
 * containers and systemd know. Reaps every orphan of the service
 * (PR_SET_CHILD_SUBREAPER; as PID 1 it must), turns operator signals into
 * restarts and stops, forwards the others to the live generation. */
#include "keeper.h"

#include "../config.h"
#include "../libc.h"
#include "../log.h"
#include "../notify.h"
#include "../pidfile.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HK_IDLE_TICK_MS 1000 /* a slow look at live generations, never a spin */

struct hk_keeper K;

long long hk_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *const hk_private_prefixes[] = {
	"LISTEN_FDS=",	    "LISTEN_PID=",	    "LISTEN_FDNAMES=",	  "NOTIFY_SOCKET=",
	"LD_PRELOAD=",	    HR_ENV_PIDFILE "=",	    HR_ENV_GENERATION "=", HR_ENV_READY_FD "=",
	HR_ENV_KEEPER_FD "=", HR_ENV_GEN_FD "=",    HR_ENV_WAKE_FD "=",	  HR_ENV_OLD_PIDS "=",
};

static bool hk_is_private(const char *var)
{
	for (size_t i = 0; i < sizeof hk_private_prefixes / sizeof *hk_private_prefixes; i++)
		if (strncmp(var, hk_private_prefixes[i], strlen(hk_private_prefixes[i])) == 0)
			return true;
	return false;
}

/* LD_PRELOAD entries other than the library (sanitizer runtimes, say):
 * each generation gets the library first, then these. */
static char *hk_preload_rest(const char *library)
{
	const char *current = getenv("LD_PRELOAD");
	char *rest = calloc(1, current ? strlen(current) + 1 : 1);
	if (!rest || !current)
		return rest;
	char *copy = strdup(current), *save = NULL;
	for (char *tok = copy ? strtok_r(copy, " :", &save) : NULL; tok;
	     tok = strtok_r(NULL, " :", &save)) {
		if (strcmp(tok, library) == 0)
			continue;
		if (*rest)
			strcat(rest, ":");
		strcat(rest, tok);
	}
	free(copy);
	return rest;
}

static int hk_usage(void)
{
	fprintf(stderr, "usage: hotrestart-keeper --library LIB --exe PATH [--seccomp | --no-seccomp] "
			"-- COMMAND [ARGS...] "
			"(started by 'hotrestart run')\n");
	return 2;
}

static int hk_setup(int argc, char **argv)
{
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (i + 1 < argc && strcmp(argv[i], "--library") == 0)
			K.library = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--exe") == 0)
			K.exe = argv[++i];
		else if (strcmp(argv[i], "--seccomp") == 0)
			K.seccomp_mode = HK_SECCOMP_ON;
		else if (strcmp(argv[i], "--no-seccomp") == 0)
			K.seccomp_mode = HK_SECCOMP_OFF;
		else
			return -1;
	}
	if (!K.library || !K.exe || i >= argc)
		return -1;
	K.argv = argv + i;
	return 0;
}

static int hk_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGQUIT,
			    SIGCHLD, SIGTTIN, SIGTTOU, SIGALRM, SIGPWR, SIGCONT };

static int hk_signals_open(void)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof hk_signals / sizeof *hk_signals; i++)
		sigaddset(&set, hk_signals[i]);
	sigaddset(&set, hr_cfg.restart_signal);
	sigaddset(&set, hr_cfg.stop_signal);
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void hk_reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
		if (pid <= 0)
			return;
		hk_gen_reaped(pid, status);
	}
}

static void hk_on_signal(void)
{
	struct signalfd_siginfo si;
	while (read(K.sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		int sig = (int)si.ssi_signo;
		if (sig == SIGCHLD) {
			hk_reap();
		} else if (sig == hr_cfg.restart_signal) {
			hr_info("restart signal received");
			hk_restart();
		} else if (sig == SIGTERM || sig == SIGINT || sig == hr_cfg.stop_signal) {
			hr_info("stop signal received (%s)", strsignal(sig));
			hk_stop();
		} else if (K.live && sig != SIGCONT) {
			/* The app's own signals (log reopen, reload, ...) go to the
			 * generation that serves. */
			pid_t main = hk_gen_main(K.live);
			if (main > 0) {
				hr_debug("forwarding signal %d to pid %d", sig, (int)main);
				kill(main, sig);
			}
		}
	}
	/* Children may also have ended while the signal was coalesced. */
	hk_reap();
}

static bool hk_all_gone(void)
{
	for (int i = 0; i < HK_MAX_GENS; i++)
		if (K.gens[i].number && K.gens[i].state != HK_GONE)
			return false;
	return true;
}

static void hk_loop(void)
{
	for (;;) {
		long long now = hk_now_ms();
		int timeout = HK_IDLE_TICK_MS;
		hk_service_tick(now, &timeout);
		if (K.stopping && hk_all_gone()) {
			hr_pidfile_remove(K.self);
			hr_info("stopped");
			hk_control_farewell();
			exit(K.exit_status);
		}
		struct pollfd pf[2 + 2 * HK_MAX_GENS + HK_MAX_CLIENTS];
		struct hk_gen *chan_of[HK_MAX_GENS], *notify_of[HK_MAX_GENS];
		int n = 0;
		pf[n++] = (struct pollfd){ .fd = K.sigfd, .events = POLLIN };
		pf[n++] = (struct pollfd){ .fd = K.ctl, .events = POLLIN };
		int first_chan = n, nchan = 0;
		for (int i = 0; i < HK_MAX_GENS; i++)
			if (K.gens[i].number && K.gens[i].chan >= 0 && !K.gens[i].chan_hup) {
				chan_of[nchan++] = &K.gens[i];
				pf[n++] = (struct pollfd){ .fd = K.gens[i].chan, .events = POLLIN };
			}
		int first_notify = n, nnotify = 0;
		for (int i = 0; i < HK_MAX_GENS; i++)
			if (K.gens[i].number && K.gens[i].supervised && K.gens[i].notify_fd >= 0) {
				notify_of[nnotify++] = &K.gens[i];
				pf[n++] = (struct pollfd){ .fd = K.gens[i].notify_fd, .events = POLLIN };
			}
		int first_client = n;
		for (int i = 0; i < HK_MAX_CLIENTS; i++) {
			struct hk_client *c = &K.clients[i];
			pf[n++] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
			if (c->fd >= 0 && !c->waits_restart && !c->waits_stop) {
				if (now >= c->deadline_ms) {
					hk_control_reply(c, "fail request not received in time");
					pf[n - 1].fd = -1;
				} else if (c->deadline_ms - now < timeout) {
					timeout = (int)(c->deadline_ms - now);
				}
			}
		}
		if (timeout < 0)
			timeout = 0;
		if (poll(pf, (nfds_t)n, timeout) <= 0)
			continue;
		if (pf[0].revents)
			hk_on_signal();
		if (pf[1].revents)
			hk_control_accept();
		for (int i = 0; i < nchan; i++)
			if (pf[first_chan + i].revents)
				hk_gen_on_channel(chan_of[i]);
		for (int i = 0; i < nnotify; i++)
			if (pf[first_notify + i].revents)
				hk_supervise_on_notify(notify_of[i]);
		for (int i = 0; i < HK_MAX_CLIENTS; i++)
			if (pf[first_client + i].revents && K.clients[i].fd >= 0 &&
			    !K.clients[i].waits_restart)
				hk_control_on_client(&K.clients[i]);
	}
}

static const char *hk_getenv(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

int main(int argc, char **argv)
{
	char err[512];
	hr_libc_init();
	if (hk_setup(argc, argv) < 0)
		return hk_usage();
	if (hr_config_load(&hr_cfg, hk_getenv, NULL, err, sizeof err) < 0) {
		/* Bad configuration: the server runs as if hotrestart were absent. */
		fprintf(stderr, "hotrestart: %s; running %s without hot restart\n", err, K.exe);
		execv(K.exe, K.argv);
		fprintf(stderr, "hotrestart: cannot execute %s: %s\n", K.exe, strerror(errno));
		return errno == ENOENT ? 127 : 126;
	}
	hr_log_level = hr_cfg.log_level;
	K.self = getpid();
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	K.started_unix = (double)wall.tv_sec + wall.tv_nsec / 1e9;
	K.ctl = K.sigfd = -1;
	for (int i = 0; i < HK_MAX_CLIENTS; i++)
		K.clients[i].fd = -1;
	for (int i = 0; i < HK_MAX_GENS; i++)
		K.gens[i].chan = K.gens[i].wake = K.gens[i].root_pidfd = -1;
	sigemptyset(&K.ignored);
	for (int sig = 1; sig < _NSIG; sig++) {
		struct sigaction sa;
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			sigaddset(&K.ignored, sig);
	}
	hr_notify_init();
	hk_held_adopt_listen_fds();
	K.preload_rest = hk_preload_rest(K.library);
	extern char **environ;
	int envc = 0;
	while (environ[envc])
		envc++;
	K.base_env = calloc((size_t)envc + 1, sizeof *K.base_env);
	if (!K.preload_rest || !K.base_env) {
		fprintf(stderr, "hotrestart: out of memory\n");
		return 1;
	}
	for (int i = 0, k = 0; i < envc; i++)
		if (!hk_is_private(environ[i]))
			K.base_env[k++] = environ[i];
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		hr_warn("cannot become a subreaper: %s; daemonizing servers may escape",
			strerror(errno));
	K.sigfd = hk_signals_open();
	if (K.sigfd < 0) {
		fprintf(stderr, "hotrestart: signalfd: %s\n", strerror(errno));
		return 1;
	}
	K.ctl = hk_control_open();
	struct hk_gen *first = hk_gen_spawn(err, sizeof err);
	if (!first) {
		fprintf(stderr, "hotrestart: %s\n", err);
		return strstr(err, "No such file") ? 127 : 126;
	}
	K.live = first;
	hr_debug("keeper %d started generation 1 as pid %d", (int)K.self, (int)first->root);
	hk_loop();
	return 0;
}
