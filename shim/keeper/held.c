/* The keeper's own copy of every listener, as systemd keeps a socket unit's:
 * while the service lives no listening socket closes, and connections
 * queue in the kernel when no generation accepts. */
#include "keeper.h"

#include "../listenfds.h"
#include "../log.h"
#include "../sockaddr.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Above the numbers a generation's listeners get (3..) in the keeper too,
 * so LISTEN_FDS from systemd never collides with them. */
#define HK_HELD_FD_MIN 64

int hk_held_add(int fd, const char *name, bool inherited)
{
	unsigned long ino = hk_fd_inode(fd);
	for (int i = 0; i < K.n_listeners; i++)
		if (K.listeners[i].ino == ino) {
			close(fd);
			return 0; /* a copy of one we hold */
		}
	if (K.n_listeners == HK_MAX_LISTENERS) {
		hr_warn("more than %d listeners: %s not kept", HK_MAX_LISTENERS, name);
		close(fd);
		return -1;
	}
	int kept = fcntl(fd, F_DUPFD_CLOEXEC, HK_HELD_FD_MIN);
	close(fd);
	if (kept < 0)
		return -1;
	struct hk_listener *l = &K.listeners[K.n_listeners++];
	memset(l, 0, sizeof *l);
	l->fd = kept;
	l->ino = ino;
	l->inherited = inherited;
	snprintf(l->name, sizeof l->name, "%s", name && *name ? name : "unknown");
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(kept, (struct sockaddr *)&ss, &len) == 0)
		hr_format_sockaddr((struct sockaddr *)&ss, len, l->address, sizeof l->address);
	hr_debug("keeping listener %s (%s)", l->address, l->name);
	return 1;
}

void hk_held_drop(unsigned long ino)
{
	for (int i = 0; i < K.n_listeners; i++) {
		if (K.listeners[i].ino != ino)
			continue;
		hr_info("closing listener %s: the new generation does not use it",
			K.listeners[i].address);
		close(K.listeners[i].fd);
		K.listeners[i] = K.listeners[--K.n_listeners];
		return;
	}
}

int hk_held_adopt_listen_fds(void)
{
	char err[256];
	long n;
	const char *names = getenv("LISTEN_FDNAMES");
	int r = hr_listen_env_parse(getenv("LISTEN_FDS"), getenv("LISTEN_PID"), names, getpid(),
				    &n, err, sizeof err);
	if (r < 0)
		hr_error("%s", err);
	if (r > 0) {
		for (long i = 0; i < n; i++)
			if (hr_inherit_check_fd(HR_LISTEN_FDS_START + (int)i, err, sizeof err)) {
				hr_error("LISTEN_FDS: %s: inherited sockets ignored", err);
				n = 0;
			}
		for (long i = 0; i < n; i++) {
			char name[HK_NAME_MAX];
			hr_listen_name(names, i, name, sizeof name);
			hk_held_add(HR_LISTEN_FDS_START + (int)i, name, true);
		}
	}
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	return K.n_listeners;
}
