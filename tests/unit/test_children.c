/* Unit tests for shim/children.c: the app's waits on any child never see
 * the successor, and see every child of their own, also after the shim
 * reaped a failed successor itself. */
#include <criterion/criterion.h>

#include "children.h"
#include "gen.h"
#include "helpers.h"
#include "libc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the wait() hook does. */
static pid_t app_wait(int *status)
{
	if (hr_children_concerns(P_ALL, 0))
		return hr_children_wait_any(P_ALL, 0, status, NULL, 0, NULL, 0);
	return waitpid(-1, status, 0);
}

static pid_t child_exiting(int status)
{
	pid_t pid = fork();
	if (pid == 0)
		syscall(SYS_exit_group, status);
	return pid;
}

/* A child with the given pid, made by asking the kernel for it
 * (ns_last_pid, root only). Returns -1 when others took it first. */
static pid_t child_with_pid(pid_t want, int status)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		char text[24];
		int len = snprintf(text, sizeof text, "%d", (int)want - 1);
		ssize_t w = write(fd, text, (size_t)len);
		close(fd);
		if (w != len)
			return -1;
		pid_t pid = child_exiting(status);
		if (pid == want)
			return pid;
		waitpid(pid, NULL, 0);
	}
	return -1;
}

static void child_sees_own_children_after_failed_upgrade(struct ut_child *ch, void *arg)
{
	(void)arg;
	hr_libc_init();
	hr_self = getpid();
	pid_t successor = child_exiting(1);
	UT_CHECK(ch, successor > 0, "fork: %s", strerror(errno));
	hr_children_adopt(successor);
	/* The agent reaps the failed successor through its pidfd. */
	int pidfd = (int)syscall(SYS_pidfd_open, successor, 0);
	UT_CHECK(ch, pidfd >= 0, "pidfd_open: %s", strerror(errno));
	siginfo_t si;
	UT_CHECK(ch, waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED) == 0, "waitid: %s",
		 strerror(errno));
	close(pidfd);

	UT_CHECK(ch, !hr_children_concerns(P_ALL, 0),
		 "waits still filtered for a successor that is gone");
	/* An app child that reuses the successor's pid is the app's. */
	pid_t reuse = child_with_pid(successor, 7);
	if (reuse < 0)
		reuse = child_exiting(7); /* pid taken: the plain case at least */
	int status = 0;
	pid_t got = app_wait(&status);
	UT_CHECK(ch, got == reuse, "wait() = %d (%s), want the app's child %d", (int)got,
		 got < 0 ? strerror(errno) : "", (int)reuse);
	UT_CHECK(ch, WIFEXITED(status) && WEXITSTATUS(status) == 7, "status %#x", status);
}

Test(children, app_sees_own_children_after_failed_upgrade)
{
	char why[700];
	cr_assert_eq(ut_run_child(child_sees_own_children_after_failed_upgrade, NULL, why,
				  sizeof why), 0, "%s", why);
}

static void child_successor_hidden_from_app_waits(struct ut_child *ch, void *arg)
{
	(void)arg;
	hr_libc_init();
	hr_self = getpid();
	pid_t successor = child_exiting(1);
	hr_children_adopt(successor);
	siginfo_t si;
	UT_CHECK(ch, waitid(P_PID, (id_t)successor, &si, WEXITED | WNOWAIT) == 0,
		 "the successor did not exit");
	pid_t mine = child_exiting(3);
	int status = 0;
	UT_CHECK(ch, hr_children_concerns(P_ALL, 0), "the live successor is not filtered");
	pid_t got = app_wait(&status);
	UT_CHECK(ch, got == mine && WEXITSTATUS(status) == 3, "wait() = %d, status %#x", (int)got,
		 status);
	errno = 0;
	got = app_wait(&status);
	UT_CHECK(ch, got == -1 && errno == ECHILD, "wait() = %d (%s): the successor leaked",
		 (int)got, strerror(errno));
	/* Its exit is the agent's: kept by the hook, or still to be reaped. */
	memset(&si, 0, sizeof si);
	UT_CHECK(ch, hr_children_collected(successor, &si) ||
			     (waitid(P_PID, (id_t)successor, &si, WEXITED | WNOHANG) == 0 &&
			      si.si_pid == successor),
		 "the successor's exit was lost");
	UT_CHECK(ch, si.si_status == 1, "successor status %d", si.si_status);
}

Test(children, successor_hidden_from_app_waits)
{
	char why[700];
	cr_assert_eq(ut_run_child(child_successor_hidden_from_app_waits, NULL, why, sizeof why), 0,
		     "%s", why);
}
