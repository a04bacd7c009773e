#include "closefrom.h"

#include "fdtable.h"
#include "libc.h"

#include <dirent.h>
#include <fcntl.h>
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

/* Lists the open fds in /proc/self/fd, as glibc's own fallback does.
 * Returns -1 when /proc cannot be read. */
static int hr_closefrom_proc(int lowfd)
{
	int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	char buf[4096];
	for (;;) {
		ssize_t n = getdents64(dir, buf, sizeof buf);
		if (n <= 0) {
			hr_real.close(dir);
			return n < 0 ? -1 : 0;
		}
		int closed = 0;
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *e = (struct dirent64 *)(buf + off);
			off += e->d_reclen;
			int fd = 0, digits = 0;
			for (const char *c = e->d_name; *c >= '0' && *c <= '9'; c++, digits++)
				fd = fd * 10 + (*c - '0');
			if (digits && fd >= lowfd && fd != dir)
				closed |= hr_close_unless_shim(fd);
		}
		/* Closing changes the listing under the read position: start over
		 * until a pass finds nothing left to close. */
		if (closed && lseek(dir, 0, SEEK_SET) < 0) {
			hr_real.close(dir);
			return -1;
		}
	}
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
