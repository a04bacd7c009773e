#include "inherit.h"

#include "config.h"
#include "fdtable.h"
#include "keeperlink.h"
#include "libc.h"
#include "listeners.h"
#include "log.h"
#include "shimfds.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* fd and claimed change under hr_inh_lock but are read without it: the
 * unlink() and epoll_wait() hooks may run in a signal handler or while the
 * same thread holds the lock. */
struct hr_inherited {
	_Atomic int fd; /* LISTEN_FDS number until claimed, then the app's fd */
	_Atomic int claimed;
	int family;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned long ino;
	char name[HR_NAME_MAX];
};

static struct hr_inherited *hr_inh;
static int hr_ninh;
static pthread_mutex_t hr_inh_lock = PTHREAD_MUTEX_INITIALIZER;

void hr_inherit_lock(void)
{
	pthread_mutex_lock(&hr_inh_lock);
}

void hr_inherit_unlock(void)
{
	pthread_mutex_unlock(&hr_inh_lock);
}

int hr_inherit_load(void)
{
	char err[256];
	long n;
	const char *names = getenv("LISTEN_FDNAMES");
	int r = hr_listen_env_parse(getenv("LISTEN_FDS"), getenv("LISTEN_PID"), names, getpid(),
				    &n, err, sizeof err);
	if (r < 0)
		hr_error("%s", err);
	if (r <= 0 || n <= 0 || n > HR_MAX_INHERITED)
		return 0;
	for (long i = 0; i < n; i++)
		if (hr_inherit_check_fd(HR_LISTEN_FDS_START + (int)i, err, sizeof err)) {
			hr_error("LISTEN_FDS: %s: inherited sockets ignored", err);
			return 0;
		}
	hr_inh = calloc((size_t)n, sizeof *hr_inh);
	if (!hr_inh) {
		hr_error("LISTEN_FDS: out of memory: inherited sockets ignored");
		return 0;
	}
	for (long i = 0; i < n; i++) {
		struct hr_inherited *h = &hr_inh[i];
		struct stat st;
		h->fd = HR_LISTEN_FDS_START + (int)i;
		h->addrlen = sizeof h->addr;
		getsockname(h->fd, (struct sockaddr *)&h->addr, &h->addrlen);
		h->family = h->addr.ss_family;
		h->ino = fstat(h->fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
		hr_listen_name(names, i, h->name, sizeof h->name);
		/* Shim-owned until the app claims it: closefrom() loops and
		 * close() of unknown fds must not take it away. */
		hr_fd_set(h->fd, HR_FD_SHIM);
		hr_shimfd_ref((int *)&h->fd); /* same layout as int */
	}
	hr_ninh = (int)n;
	return hr_ninh;
}

/* Moves inherited listener h onto the app's fd number, keeping the app's
 * close-on-exec and O_NONBLOCK choices. Called with the lock held. */
static int hr_inherit_take(struct hr_inherited *h, int app_fd)
{
	int fdflags = hr_real.fcntl(app_fd, F_GETFD);
	int flflags = hr_real.fcntl(app_fd, F_GETFL);
	if (fdflags < 0 || flflags < 0)
		return -1;
	if (hr_real.dup3(h->fd, app_fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		hr_warn("cannot hand inherited listener fd %d to fd %d: %s", h->fd, app_fd,
			strerror(errno));
		return -1;
	}
	hr_fd_set(h->fd, HR_FD_NONE);
	hr_real.close(h->fd);
	h->fd = app_fd;
	h->claimed = 1;
	hr_listener_adopt(app_fd, (flflags & O_NONBLOCK) != 0, 1);
	return 0;
}

int hr_inherit_bind(int app_fd, const struct sockaddr *addr, socklen_t len)
{
	if (!hr_ninh || !addr || len < sizeof(sa_family_t))
		return 0;
	int type = 0, domain = 0;
	socklen_t optlen = sizeof type;
	if (getsockopt(app_fd, SOL_SOCKET, SO_TYPE, &type, &optlen) < 0 || type != SOCK_STREAM)
		return 0;
	optlen = sizeof domain;
	if (getsockopt(app_fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen) < 0 ||
	    domain != addr->sa_family)
		return 0;
	int claimed = 0;
	hr_inherit_lock();
	struct hr_inherited *best = NULL;
	int best_score = 0;
	for (int i = 0; i < hr_ninh; i++) {
		struct hr_inherited *h = &hr_inh[i];
		if (h->claimed || h->fd < 0)
			continue;
		int score = hr_addr_match(addr, len, (struct sockaddr *)&h->addr, h->addrlen);
		if (score > best_score) {
			best = &hr_inh[i];
			best_score = score;
		}
	}
	if (best && hr_inherit_take(best, app_fd) == 0)
		claimed = 1;
	hr_inherit_unlock();
	if (claimed)
		hr_debug("bind on fd %d gets inherited listener '%s'", app_fd, best->name);
	return claimed;
}

void hr_inherit_claim_in_place(int fd)
{
	int found = 0;
	hr_inherit_lock();
	for (int i = 0; i < hr_ninh; i++)
		if (!hr_inh[i].claimed && hr_inh[i].fd == fd) {
			hr_inh[i].claimed = 1;
			found = 1;
		}
	hr_inherit_unlock();
	if (found) {
		int fl = hr_real.fcntl(fd, F_GETFL);
		hr_listener_adopt(fd, fl >= 0 && (fl & O_NONBLOCK), 1);
	}
}

int hr_inherit_unclaimed(void)
{
	int n = 0;
	for (int i = 0; i < hr_ninh; i++)
		n += !hr_inh[i].claimed && hr_inh[i].fd >= 0;
	return n;
}

void hr_inherit_close_unclaimed(void)
{
	hr_inherit_lock();
	for (int i = 0; i < hr_ninh; i++) {
		struct hr_inherited *h = &hr_inh[i];
		if (h->claimed || h->fd < 0)
			continue;
		hr_info("closing inherited listener '%s' (fd %d): the new version does not use it",
			h->name, h->fd);
		hr_keeper_send_drop(h->ino);
		hr_fd_set(h->fd, HR_FD_NONE);
		hr_real.close(h->fd);
		h->fd = -1;
	}
	hr_inherit_unlock();
}

const char *hr_inherit_name(unsigned long ino)
{
	for (int i = 0; i < hr_ninh; i++)
		if (hr_inh[i].ino == ino && ino)
			return hr_inh[i].name;
	return NULL;
}

int hr_inherit_holds_path(const char *path)
{
	int held = 0;
	if (!hr_ninh || !path)
		return 0;
	for (int i = 0; i < hr_ninh; i++) {
		struct hr_inherited *h = &hr_inh[i];
		const struct sockaddr_un *un = (const void *)&h->addr;
		if (!h->claimed && h->fd >= 0 && h->family == AF_UNIX && un->sun_path[0] &&
		    strcmp(un->sun_path, path) == 0)
			held = 1;
	}
	return held;
}
