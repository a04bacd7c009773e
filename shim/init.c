#include "agent.h"
#include "config.h"
#include "drain.h"
#include "fdtable.h"
#include "gen.h"
#include "inherit.h"
#include "keeperlink.h"
#include "libc.h"
#include "listeners.h"
#include "log.h"
#include "notify.h"
#include "ready.h"
#include "shim.h"
#include "shimfds.h"
#include "signals.h"
#include "spawn.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int hr_active;

static const char *hr_getenv(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

static void hr_atfork_prepare(void)
{
	hr_inherit_lock();
}

static void hr_atfork_parent(void)
{
	hr_inherit_unlock();
}

/* Async-signal-safe work only: the child of a multithreaded fork. */
static void hr_atfork_child(void)
{
	hr_inherit_unlock();
	hr_shimfd_after_fork_child();
	hr_gen_after_fork_child();
	hr_drain_after_fork_child();
	hr_signals_release_child();
	hr_agent_after_fork_child();
}

/* The readiness channel is ours only when the inherited variables are
 * meant for this very process. */
static void hr_adopt_ready_fd(void)
{
	const char *pid = getenv("LISTEN_PID");
	struct stat st;
	if (hr_cfg.ready_fd < 0)
		return;
	if (!pid || atol(pid) != (long)getpid() || fstat(hr_cfg.ready_fd, &st) < 0 ||
	    !S_ISSOCK(st.st_mode)) {
		hr_warn("%s=%d is not a readiness socket for this process: ignored",
			HR_ENV_READY_FD, hr_cfg.ready_fd);
		hr_cfg.ready_fd = -1;
		return;
	}
	hr_fd_set(hr_cfg.ready_fd, HR_FD_SHIM);
	hr_shimfd_ref(&hr_cfg.ready_fd);
}

__attribute__((constructor)) static void hr_init(int argc, char **argv, char **envp)
{
	char err[512];
	hr_libc_init();
	if (hr_config_load(&hr_cfg, hr_getenv, NULL, err, sizeof err) < 0) {
		hr_error("%s; hotrestart disabled", err);
		return;
	}
	hr_log_level = hr_cfg.log_level;
	hr_fdtable_init();
	int region_fd = -1, wake_fd = -1;
	if (hr_fds && hr_keeper_load(&region_fd, &wake_fd, err, sizeof err) < 0) {
		hr_error("%s; hotrestart disabled", err);
		return;
	}
	if (!hr_fds || hr_gen_init(region_fd, wake_fd) < 0) {
		hr_error("out of memory for the shim's tables; hotrestart disabled");
		return;
	}
	if (hr_spawn_capture(argc, argv, envp) < 0) {
		hr_error("cannot record the command line; hotrestart disabled");
		return;
	}
	hr_signals_init();
	hr_notify_init();
	hr_adopt_ready_fd();
	int inherited = hr_inherit_load();
	if (hr_under_keeper()) {
		if (inherited)
			atomic_store(&hr_gen->n_inherited, inherited);
		hr_listeners_adopt_exec_inherited();
		/* The keeper wakes this process's waits when it must drain. */
		hr_signals_install_wake();
	}
	atomic_store(&hr_ready_pending, 1);
	pthread_atfork(hr_atfork_prepare, hr_atfork_parent, hr_atfork_child);
	hr_active = 1;
	hr_debug("loaded: generation %ld, %d inherited listener%s, executable %s", hr_cfg.generation,
		 inherited, inherited == 1 ? "" : "s", hr_spawn_exe());
}
