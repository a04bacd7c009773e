#include "keeperlink.h"

#include "config.h"
#include "fdtable.h"
#include "gen.h"
#include "libc.h"
#include "log.h"
#include "scmrights.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

int hr_keeper_fd = -1;

/* One fd number from the environment, checked to be open. */
static int hr_keeper_var(const char *name, int *out, char *err, size_t errlen)
{
	char why[128];
	long v;
	if (hr_parse_long(getenv(name), 0, 0x7fffffffL, &v, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", name, why);
		return -1;
	}
	if (hr_real.fcntl((int)v, F_GETFD) < 0) {
		snprintf(err, errlen, "%s=%ld is not an open fd", name, v);
		return -1;
	}
	*out = (int)v;
	return 0;
}

int hr_keeper_load(int *gen_fd, int *wake_fd, char *err, size_t errlen)
{
	int chan, region, wake;
	if (!getenv(HR_ENV_KEEPER_FD))
		return 0;
	if (hr_keeper_var(HR_ENV_KEEPER_FD, &chan, err, errlen) < 0 ||
	    hr_keeper_var(HR_ENV_GEN_FD, &region, err, errlen) < 0 ||
	    hr_keeper_var(HR_ENV_WAKE_FD, &wake, err, errlen) < 0)
		return -1;
	struct stat st;
	int type = 0;
	socklen_t len = sizeof type;
	if (fstat(chan, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(chan, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET) {
		snprintf(err, errlen, "%s: not the keeper's channel", HR_ENV_KEEPER_FD);
		return -1;
	}
	if (fstat(region, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size < (off_t)sizeof(struct hr_gen)) {
		snprintf(err, errlen, "%s: not a generation region", HR_ENV_GEN_FD);
		return -1;
	}
	/* Left open across exec, with the variables: a program the server
	 * execs as its worker (multiprocessing spawn, a master re-executing
	 * itself) is the same generation, not a new service. */
	hr_keeper_fd = chan;
	hr_fd_set(chan, HR_FD_SHIM);
	*gen_fd = region;
	*wake_fd = wake;
	return 1;
}

static void hr_keeper_send(const char *text, int fd)
{
	int saved = errno;
	if (hr_send_with_fd(hr_keeper_fd, text, strlen(text), fd) < 0)
		hr_warn("cannot tell the keeper '%s': %s", text, strerror(errno));
	errno = saved;
}

void hr_keeper_send_listener(int fd)
{
	if (hr_under_keeper())
		hr_keeper_send("listen unknown", fd);
}

void hr_keeper_send_drop(unsigned long ino)
{
	if (!hr_under_keeper())
		return;
	char text[40];
	snprintf(text, sizeof text, "drop %lu", ino);
	hr_keeper_send(text, -1);
}
