#include "control.h"

#include "fdtable.h"
#include "gen.h"
#include "libc.h"
#include "listeners.h"
#include "log.h"
#include "shimfds.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int hr_control_open(void)
{
	/* Named after the PID namespace too: services with the same PID in
	 * different namespaces of one network namespace must not collide. */
	struct stat ns;
	if (stat("/proc/self/ns/pid", &ns) < 0)
		ns.st_ino = 0;
	struct sockaddr_un addr;
	memset(&addr, 0, sizeof addr);
	addr.sun_family = AF_UNIX;
	int len = snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "%s%lu.%d", HR_CONTROL_PREFIX,
			   (unsigned long)ns.st_ino, (int)hr_self);
	int fd = hr_real.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
	if (hr_real.bind(fd, (struct sockaddr *)&addr, alen) < 0 || hr_real.listen(fd, 16) < 0) {
		hr_warn("control socket @%s unavailable: %s", addr.sun_path + 1, strerror(errno));
		hr_real.close(fd);
		return -1;
	}
	fd = hr_shimfd_high(fd);
	hr_fd_set(fd, HR_FD_SHIM);
	return fd;
}

int hr_control_accept(int ctl)
{
	int fd = hr_real.accept4(ctl, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return -1;
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		hr_real.close(fd);
		return -1;
	}
	fd = hr_shimfd_high(fd);
	hr_fd_set(fd, HR_FD_SHIM);
	return fd;
}

static void hr_json_string(char *out, size_t outlen, const char *s)
{
	size_t o = 0;
	if (outlen < 3)
		return;
	out[o++] = '"';
	for (; *s && o + 8 < outlen; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
}

void hr_control_status_json(const struct hr_status *st, char *out, size_t outlen)
{
	struct hr_listener_info *ls = calloc(HR_MAX_LISTENERS, sizeof *ls);
	int n = ls ? hr_listeners_collect(ls, HR_MAX_LISTENERS) : 0;
	int phase = hr_gen_phase();
	size_t o = (size_t)snprintf(out, outlen,
				    "{\"pid\":%d,\"generation\":%ld,\"started_unix\":%.3f,"
				    "\"listeners\":[",
				    (int)hr_self, st->generation, st->started_unix);
	/* Room is kept for the closing fields: the line stays valid JSON. */
	int shown = 0;
	for (; shown < n && o + 1200 < outlen; shown++) {
		char addr[300], name[600];
		hr_json_string(addr, sizeof addr, ls[shown].address);
		hr_json_string(name, sizeof name, ls[shown].name);
		o += (size_t)snprintf(out + o, outlen - o,
				      "%s{\"fd\":%d,\"address\":%s,\"name\":%s,\"inherited\":%s}",
				      shown ? "," : "", ls[shown].fd, addr, name,
				      ls[shown].inherited ? "true" : "false");
	}
	free(ls);
	if (o < outlen)
		snprintf(out + o, outlen - o, "],\"listeners_total\":%d", n);
	o = strlen(out);
	if (o < outlen)
		snprintf(out + o, outlen - o,
			 ",\"connections\":%ld,\"upgrading\":%s,\"successor\":%d,"
			 "\"draining\":%s,\"stopping\":%s}",
			 hr_gen_conns(), st->upgrading ? "true" : "false", (int)st->successor,
			 phase == HR_PHASE_DRAINING ? "true" : "false",
			 phase == HR_PHASE_STOPPING ? "true" : "false");
}

void hr_control_reply(int fd, const char *line)
{
	size_t len = strlen(line);
	/* A short blocking wait: the client is waiting for this very line. */
	int fl = hr_real.fcntl(fd, F_GETFL);
	hr_real.fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	struct timeval tv = { .tv_sec = 1 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	struct iovec iov[2] = { { (void *)line, len }, { "\n", 1 } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t ignored = sendmsg(fd, &msg, MSG_NOSIGNAL);
	(void)ignored;
	hr_fd_set(fd, HR_FD_NONE);
	hr_real.close(fd);
}
