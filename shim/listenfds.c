#include "listenfds.h"

#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

int hr_listen_env_parse(const char *fds, const char *pid, const char *names, pid_t self,
			long *count, char *err, size_t errlen)
{
	char why[128];
	long n, want_pid;
	if (!fds)
		return 0;
	if (!pid) {
		snprintf(err, errlen, "LISTEN_FDS is set without LISTEN_PID: ignored");
		return -1;
	}
	if (hr_parse_long(pid, 1, 0x7fffffffL, &want_pid, why, sizeof why)) {
		snprintf(err, errlen, "LISTEN_PID: %s: ignored", why);
		return -1;
	}
	if (want_pid != (long)self) {
		snprintf(err, errlen, "LISTEN_PID=%ld is not this process (%ld): ignored", want_pid,
			 (long)self);
		return -1;
	}
	if (hr_parse_long(fds, 0, HR_MAX_INHERITED, &n, why, sizeof why)) {
		snprintf(err, errlen, "LISTEN_FDS: %s: ignored", why);
		return -1;
	}
	if (names) {
		long parts = 1;
		for (const char *p = names; *p; p++)
			parts += *p == ':';
		if (parts != n) {
			snprintf(err, errlen,
				 "LISTEN_FDNAMES has %ld names for LISTEN_FDS=%ld: ignored", parts, n);
			return -1;
		}
	}
	*count = n;
	return 1;
}

void hr_listen_name(const char *names, long i, char *out, size_t outlen)
{
	const char *p = names;
	snprintf(out, outlen, "unknown");
	if (!p)
		return;
	for (long k = 0; k < i && p; k++) {
		p = strchr(p, ':');
		if (p)
			p++;
	}
	if (!p)
		return;
	size_t len = strcspn(p, ":");
	if (len == 0 || len >= outlen)
		return;
	memcpy(out, p, len);
	out[len] = '\0';
}

int hr_inherit_check_fd(int fd, char *err, size_t errlen)
{
	struct stat st;
	int v = 0;
	socklen_t len = sizeof v;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "fd %d is not open", fd);
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "fd %d is not a socket", fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != SOCK_STREAM) {
		snprintf(err, errlen, "fd %d is not a stream socket", fd);
		return -1;
	}
	len = sizeof v;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0 ||
	    (v != AF_INET && v != AF_INET6 && v != AF_UNIX)) {
		snprintf(err, errlen, "fd %d is not an IPv4, IPv6 or UNIX socket", fd);
		return -1;
	}
	len = sizeof v;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 || !v) {
		snprintf(err, errlen, "fd %d is not listening", fd);
		return -1;
	}
	return 0;
}
