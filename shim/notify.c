#include "notify.h"

#include "libc.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static struct sockaddr_un hr_notify_addr;
static socklen_t hr_notify_len;

void hr_notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;
	if (!path || !*path)
		return;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof hr_notify_addr.sun_path) {
		hr_warn("NOTIFY_SOCKET=%s: not an absolute or abstract socket path: ignored", path);
		return;
	}
	hr_notify_addr.sun_family = AF_UNIX;
	memcpy(hr_notify_addr.sun_path, path, len);
	if (path[0] == '@')
		hr_notify_addr.sun_path[0] = '\0';
	hr_notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

void hr_notify(const char *fmt, ...)
{
	if (!hr_notify_len)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof msg)
		return;
	int fd = hr_real.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&hr_notify_addr,
		   hr_notify_len) < 0)
		hr_debug("sd_notify: %s", strerror(errno));
	hr_real.close(fd);
}
