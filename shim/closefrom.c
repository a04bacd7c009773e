#include "closefrom.h"

#include "fdtable.h"
#include "libc.h"
#include "procfd.h"

#include <sys/resource.h>
#include <unistd.h>

/* Closes fd unless the shim owns it; returns 1 when it closed something. */
static int hr_close_unless_shim(int fd)
{
	uint32_t st = hr_fd_get(fd);
	if (hr_fd_kind(st) == HR_FD_SHIM)
		return 0;
	if (st)
		hr_fd_set(fd, HR_FD_NONE);
	return hr_real.close(fd) == 0;
}

static int hr_close_listed(void *lowfd, int dir, int fd, const char *name)
{
	(void)dir, (void)name;
	return fd >= *(const int *)lowfd && hr_close_unless_shim(fd);
}

/* The open fds /proc lists, as glibc's own fallback does. Closing changes
 * the listing under the read position: listed again until a pass finds
 * nothing left to close. Returns -1 when /proc cannot be read. */
static int hr_closefrom_proc(int lowfd)
{
	int closed;
	while ((closed = hr_procfd_each(hr_close_listed, &lowfd)) > 0)
		;
	return closed;
}

void hr_closefrom_fallback(int lowfd)
{
	if (hr_closefrom_proc(lowfd) == 0)
		return;
	/* No /proc: every number an fd can have, tracked ones included (an fd
	 * opened before the limit was lowered can lie above it). */
	struct rlimit rl;
	long top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
			   ? (long)rl.rlim_cur - 1 : 65535;
	long tracked = atomic_load(&hr_fds_hiwater);
	if (tracked > top)
		top = tracked;
	for (long fd = lowfd; fd <= top; fd++)
		hr_close_unless_shim((int)fd);
}
