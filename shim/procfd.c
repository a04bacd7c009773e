#include "procfd.h"

#include "libc.h"

#include <dirent.h>
#include <fcntl.h>

int hr_procfd_each(int (*each)(void *ctx, int dir, int fd, const char *name), void *ctx)
{
	/* The thread's view: the process's table even once its main thread
	 * has exited (/proc/self then lists nothing). */
	int dir = hr_real.openat(AT_FDCWD, "/proc/thread-self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		dir = hr_real.openat(AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	char buf[4096];
	int sum = 0;
	ssize_t n;
	while ((n = getdents64(dir, buf, sizeof buf)) > 0)
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *e = (struct dirent64 *)(buf + off);
			off += e->d_reclen;
			int fd = 0, digits = 0;
			for (const char *c = e->d_name; *c >= '0' && *c <= '9' && digits < 10;
			     c++, digits++)
				fd = fd * 10 + (*c - '0');
			if (digits && fd != dir)
				sum += each(ctx, dir, fd, e->d_name);
		}
	hr_real.close(dir);
	return n < 0 ? -1 : sum;
}
