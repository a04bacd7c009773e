/* Unit tests for shim/closefrom.c: the closefrom() fallback used when
 * close_range() fails closes every fd above the bound, tracked or not, and
 * keeps the shim's own. */
#include <criterion/criterion.h>

#include "closefrom.h"
#include "fdtable.h"
#include "helpers.h"
#include "libc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

static void child_closes_past_the_tracked_fds(struct ut_child *ch, void *arg)
{
	(void)arg;
	hr_libc_init();
	hr_fdtable_init();
	struct rlimit rl;
	UT_CHECK(ch, getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 900,
		 "RLIMIT_NOFILE too low for the test");
	int base = open("/dev/null", O_RDONLY);
	UT_CHECK(ch, base >= 0, "open: %s", strerror(errno));
	int conn = 40, shim = 41, untracked[] = { 300, 900 };
	UT_CHECK(ch, dup2(base, conn) == conn && dup2(base, shim) == shim, "dup2");
	for (int i = 0; i < 2; i++)
		UT_CHECK(ch, dup2(base, untracked[i]) == untracked[i], "dup2 %d", untracked[i]);
	hr_fd_set(conn, HR_FD_CONN);
	hr_fd_set(shim, HR_FD_SHIM);

	hr_closefrom_fallback(conn);

	UT_CHECK(ch, !is_open(conn) && hr_fd_get(conn) == 0, "tracked fd %d left", conn);
	UT_CHECK(ch, is_open(shim) && hr_fd_kind(hr_fd_get(shim)) == HR_FD_SHIM,
		 "the shim's fd %d was closed", shim);
	for (int i = 0; i < 2; i++)
		UT_CHECK(ch, !is_open(untracked[i]), "untracked fd %d above the tracked ones left open",
			 untracked[i]);
	UT_CHECK(ch, is_open(base) && is_open(2), "fds below the bound were closed");
}

Test(closefrom, fallback_closes_past_the_tracked_fds)
{
	char why[700];
	cr_assert_eq(ut_run_child(child_closes_past_the_tracked_fds, NULL, why, sizeof why), 0,
		     "%s", why);
}
