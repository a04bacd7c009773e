#include "pidfile.h"

#include "config.h"
#include "libc.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int hr_pidfile_write(pid_t pid)
{
	if (!hr_cfg.pidfile[0])
		return 0;
	char tmp[PATH_MAX + 32], text[24];
	snprintf(tmp, sizeof tmp, "%s.tmp.%d", hr_cfg.pidfile, (int)getpid());
	int len = snprintf(text, sizeof text, "%d\n", (int)pid);
	int fd = -1;
	for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0 && errno == EEXIST)
			hr_real.unlink(tmp); /* a leftover (or a planted link): drop it */
	}
	if (fd < 0) {
		hr_error("cannot write pid file %s: %s", tmp, strerror(errno));
		return -1;
	}
	int ok = write(fd, text, (size_t)len) == len;
	if (hr_real.close(fd) < 0)
		ok = 0;
	if (!ok || rename(tmp, hr_cfg.pidfile) < 0) {
		hr_error("cannot write pid file %s: %s", hr_cfg.pidfile, strerror(errno));
		hr_real.unlink(tmp);
		return -1;
	}
	return 0;
}

void hr_pidfile_remove(pid_t pid)
{
	if (!hr_cfg.pidfile[0])
		return;
	char text[24] = { 0 };
	int fd = open(hr_cfg.pidfile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	ssize_t n = read(fd, text, sizeof text - 1);
	hr_real.close(fd);
	if (n > 0 && atol(text) == (long)pid)
		hr_real.unlink(hr_cfg.pidfile);
}
