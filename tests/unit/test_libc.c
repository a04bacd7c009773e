/* Unit tests for shim/libc.c: a libc symbol that cannot be bound ends the
 * process with one line on stderr and status 127, without deadlocking. */
#include <criterion/criterion.h>

#include "libc.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Stands in for the shim's _exit() hook, which binds libc before it
 * forwards: a failure path that calls _exit() by name comes back here,
 * inside the pthread_once that is still binding, and waits for itself. */
void _exit(int status)
{
	hr_libc_init();
	syscall(SYS_exit_group, status);
	__builtin_unreachable();
}

static const char *broken_name;
static void *broken_value;

static void *lookup_with_one_broken(const char *name)
{
	return strcmp(name, broken_name) == 0 ? broken_value : dlsym(RTLD_NEXT, name);
}

/* Binds libc in a child whose lookup of name yields value; returns the
 * child's wait status (-1 if it did not end within 5 s) and its stderr. */
static int bind_in_child(const char *name, void *value, char *err, size_t errlen)
{
	cr_assert_null(hr_real.socket, "libc already bound in this process: the test is void");
	int pipefd[2];
	cr_assert_eq(pipe(pipefd), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(pipefd[1], 2);
		broken_name = name;
		broken_value = value;
		hr_libc_lookup = lookup_with_one_broken;
		hr_libc_init();
		syscall(SYS_exit_group, 0); /* the failure went unnoticed */
	}
	close(pipefd[1]);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	cr_assert_geq(pidfd, 0, "pidfd_open: %s", strerror(errno));
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int status = -1;
	if (poll(&p, 1, 5000) == 1)
		waitpid(pid, &status, 0);
	else {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	close(pidfd);
	ssize_t n = read(pipefd[0], err, errlen - 1);
	err[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	return status;
}

Test(libc, missing_symbol_exits_with_one_line)
{
	char err[512];
	int status = bind_in_child("listen", NULL, err, sizeof err);
	cr_assert_neq(status, -1, "the process deadlocked instead of exiting");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 127, "wait status %#x", status);
	cr_assert_str_eq(err, "hotrestart: cannot bind libc symbol listen: missing\n");
}

Test(libc, symbol_resolving_to_the_shim_exits_with_one_line)
{
	char err[512];
	int status = bind_in_child("socket", (void *)hr_libc_bind, err, sizeof err);
	cr_assert_neq(status, -1, "the process deadlocked instead of exiting");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 127, "wait status %#x", status);
	cr_assert_str_eq(err,
			 "hotrestart: cannot bind libc symbol socket: RTLD_NEXT resolved to the shim itself\n");
}

Test(libc, missing_optional_symbol_is_tolerated)
{
	char err[512];
	int status = bind_in_child("close_range", NULL, err, sizeof err);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wait status %#x", status);
	cr_assert_str_empty(err);
}
