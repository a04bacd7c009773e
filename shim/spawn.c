#include "spawn.h"

#include "children.h"
#include "config.h"
#include "fdtable.h"
#include "guards.h"
#include "inherit.h"
#include "libc.h"
#include "log.h"
#include "shimfds.h"
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static char **hr_argv;
static char **hr_envp;
static size_t hr_envc;
static char hr_exe[PATH_MAX];
static char hr_cwd[PATH_MAX];

static const char *const hr_private_vars[] = {
	"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=", HR_ENV_READY_FD "=", HR_ENV_GENERATION "=",
};

static int hr_is_private(const char *var)
{
	for (size_t i = 0; i < sizeof hr_private_vars / sizeof hr_private_vars[0]; i++)
		if (strncmp(var, hr_private_vars[i], strlen(hr_private_vars[i])) == 0)
			return 1;
	return 0;
}

/* The path the operator started, not /proc/self/exe: a new binary (or a
 * retargeted symlink) at that path is what the upgrade must run. */
static int hr_join(char *out, const char *dir, const char *name)
{
	if (strlen(dir) + strlen(name) + 2 > PATH_MAX)
		return -1;
	strcpy(out, dir);
	strcat(out, "/");
	strcat(out, name);
	return 0;
}

static int hr_resolve_exe(const char *argv0, char **envp)
{
	if (strchr(argv0, '/')) {
		if (argv0[0] == '/')
			return strlen(argv0) < sizeof hr_exe ? (strcpy(hr_exe, argv0), 0) : -1;
		return hr_join(hr_exe, hr_cwd, argv0);
	}
	const char *path = "/usr/local/bin:/usr/bin:/bin";
	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	while (*path) {
		size_t len = strcspn(path, ":");
		char dir[PATH_MAX];
		if (len == 0 || len >= sizeof dir) {
			strcpy(dir, hr_cwd);
		} else {
			memcpy(dir, path, len);
			dir[len] = '\0';
		}
		if (hr_join(hr_exe, dir, argv0) == 0 && access(hr_exe, X_OK) == 0) {
			if (hr_exe[0] != '/') {
				char rel[PATH_MAX];
				strcpy(rel, hr_exe);
				return hr_join(hr_exe, hr_cwd, rel);
			}
			return 0;
		}
		path += len + (path[len] == ':');
	}
	return -1;
}

int hr_spawn_capture(int argc, char **argv, char **envp)
{
	if (!getcwd(hr_cwd, sizeof hr_cwd) || argc < 1 || !argv || !argv[0])
		return -1;
	hr_argv = calloc((size_t)argc + 1, sizeof *hr_argv);
	for (size_t n = 0; envp && envp[n]; n++)
		hr_envc = n + 1;
	/* Room for the variables hr_spawn adds. */
	hr_envp = calloc(hr_envc + 8, sizeof *hr_envp);
	if (!hr_argv || !hr_envp)
		return -1;
	for (int i = 0; i < argc; i++)
		if (!(hr_argv[i] = strdup(argv[i])))
			return -1;
	size_t kept = 0;
	for (size_t i = 0; i < hr_envc; i++)
		if (!hr_is_private(envp[i]) && !(hr_envp[kept++] = strdup(envp[i])))
			return -1;
	hr_envc = kept;
	if (hr_resolve_exe(argv[0], envp) < 0) {
		ssize_t n = readlink("/proc/self/exe", hr_exe, sizeof hr_exe - 1);
		if (n <= 0)
			return -1;
		hr_exe[n] = '\0';
	}
	return 0;
}

const char *hr_spawn_exe(void)
{
	return hr_exe;
}

struct hr_spawn_args {
	const int *fds; /* listeners, then the readiness socket */
	int nfds;
	char *pid_digits; /* inside the LISTEN_PID= string */
	char **envp;
	volatile int exec_errno;
};

/* Runs in the child, sharing the parent's memory until execve: only
 * async-signal-safe calls, only writes to args. */
static int hr_spawn_child(void *p)
{
	struct hr_spawn_args *a = p;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	for (int sig = 1; sig < _NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		sa.sa_handler = sigismember(&hr_initial_ignored, sig) ? SIG_IGN : SIG_DFL;
		hr_real.sigaction(sig, &sa, NULL);
	}
	int tmp[HR_MAX_LISTENERS + 1];
	int first_free = 3 + a->nfds;
	for (int i = 0; i < a->nfds; i++) {
		tmp[i] = hr_real.fcntl(a->fds[i], F_DUPFD, first_free);
		if (tmp[i] < 0)
			goto fail;
	}
	for (int i = 0; i < a->nfds; i++)
		if (hr_real.dup2(tmp[i], 3 + i) < 0)
			goto fail;
	if (hr_real.syscall(SYS_close_range, first_free, ~0U, 0) < 0)
		for (int fd = first_free; fd < hr_fds_size; fd++)
			hr_real.syscall(SYS_close, fd);
	hr_fmt_long(a->pid_digits, (long)hr_real.syscall(SYS_getpid));
	if (chdir(hr_cwd) < 0)
		goto fail;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(hr_exe, hr_argv, a->envp);
fail:
	a->exec_errno = errno ? errno : EINVAL;
	hr_real._exit(127);
	return 127;
}

int hr_spawn(const struct hr_listener_info *ls, int n, long generation, struct hr_spawned *out,
	     char *err, size_t errlen)
{
	char fds_var[32], gen_var[48], ready_var[48], pid_var[40];
	size_t names_len = sizeof "LISTEN_FDNAMES=";
	for (int i = 0; i < n; i++)
		names_len += strlen(ls[i].name) + 1;
	char *names_var = malloc(names_len);
	char *old_pids_var = hr_guards_old_pids_var();
	int sv[2] = { -1, -1 };
	int fds[HR_MAX_LISTENERS + 1];
	size_t stack_size = 256 * 1024;
	void *stack = MAP_FAILED;
	int ret = -1;
	if (!names_var || n > HR_MAX_LISTENERS) {
		snprintf(err, errlen, "too many listeners");
		goto out;
	}
	strcpy(names_var, "LISTEN_FDNAMES=");
	for (int i = 0; i < n; i++) {
		if (i)
			strcat(names_var, ":");
		strcat(names_var, ls[i].name);
		fds[i] = ls[i].fd;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		goto out;
	}
	sv[0] = hr_shimfd_high(sv[0]);
	hr_fd_set(sv[0], HR_FD_SHIM);
	fds[n] = sv[1];
	snprintf(fds_var, sizeof fds_var, "LISTEN_FDS=%d", n);
	snprintf(gen_var, sizeof gen_var, "%s=%ld", HR_ENV_GENERATION, generation);
	snprintf(ready_var, sizeof ready_var, "%s=%d", HR_ENV_READY_FD, 3 + n);
	memset(pid_var, 0, sizeof pid_var);
	strcpy(pid_var, "LISTEN_PID=");
	size_t e = hr_envc;
	hr_envp[e++] = fds_var;
	hr_envp[e++] = pid_var;
	hr_envp[e++] = names_var;
	hr_envp[e++] = ready_var;
	hr_envp[e++] = gen_var;
	if (old_pids_var)
		hr_envp[e++] = old_pids_var;
	hr_envp[e] = NULL;

	struct hr_spawn_args args = { .fds = fds,
				      .nfds = n + 1,
				      .pid_digits = pid_var + strlen("LISTEN_PID="),
				      .envp = hr_envp,
				      .exec_errno = 0 };
	stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
		     -1, 0);
	if (stack == MAP_FAILED) {
		snprintf(err, errlen, "mmap: %s", strerror(errno));
		goto out;
	}
	/* No handler may run in the child while it shares our memory. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int pidfd = -1;
	pid_t pid = clone(hr_spawn_child, (char *)stack + stack_size,
			  CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &args, &pidfd);
	int clone_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		snprintf(err, errlen, "clone: %s", strerror(clone_errno));
		goto out;
	}
	if (args.exec_errno) {
		int ok;
		char why[64];
		hr_spawn_exited(pid, pidfd, 1, &ok, why, sizeof why);
		hr_real.close(pidfd);
		snprintf(err, errlen, "cannot execute %s: %s", hr_exe, strerror(args.exec_errno));
		goto out;
	}
	pidfd = hr_shimfd_high(pidfd);
	hr_fd_set(pidfd, HR_FD_SHIM);
	hr_children_adopt(pid);
	out->pid = pid;
	out->pidfd = pidfd;
	out->sock = sv[0];
	sv[0] = -1;
	ret = 0;
out:
	hr_envp[hr_envc] = NULL;
	if (sv[0] >= 0) {
		hr_fd_set(sv[0], HR_FD_NONE);
		hr_real.close(sv[0]);
	}
	if (sv[1] >= 0)
		hr_real.close(sv[1]);
	if (stack != MAP_FAILED)
		munmap(stack, stack_size);
	free(names_var);
	free(old_pids_var);
	return ret;
}

int hr_spawn_exited(pid_t pid, int pidfd, int wait, int *status_ok, char *why, size_t whylen)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	int r = hr_real.waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si,
			       WEXITED | __WALL | (wait ? 0 : WNOHANG));
	*status_ok = 0;
	if (r < 0 && (errno != ECHILD || !hr_children_collected(pid, &si)))
		return 0;
	if (si.si_pid == 0)
		return 0;
	if (si.si_code == CLD_EXITED) {
		*status_ok = si.si_status == 0;
		snprintf(why, whylen, "successor exited with status %d", si.si_status);
	} else {
		snprintf(why, whylen, "successor killed by signal %d (%s)", si.si_status,
			 strsignal(si.si_status));
	}
	return 1;
}
