#include "listeners.h"

#include "agent.h"
#include "drain.h"
#include "fdtable.h"
#include "gen.h"
#include "inherit.h"
#include "keeperlink.h"
#include "libc.h"
#include "log.h"
#include "procfd.h"
#include "ready.h"
#include "signals.h"
#include "sockaddr.h"
#include "waits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

/* The local address of every listener this process adopted, kept after
 * the app closes it: a connection accepted from it has the same one. An
 * entry is written once, its length last (release). */
static struct {
	struct sockaddr_storage addr;
	_Atomic socklen_t len;
} hr_listen_addrs[HR_MAX_LISTENERS];
static _Atomic int hr_listen_addrs_used;

static void hr_listener_remember_addr(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || len > sizeof ss)
		return;
	int used = atomic_load(&hr_listen_addrs_used);
	for (int i = 0; i < used && i < HR_MAX_LISTENERS; i++)
		if (atomic_load(&hr_listen_addrs[i].len) == len &&
		    memcmp(&hr_listen_addrs[i].addr, &ss, len) == 0)
			return;
	int i = atomic_fetch_add(&hr_listen_addrs_used, 1);
	if (i >= HR_MAX_LISTENERS)
		return;
	memcpy(&hr_listen_addrs[i].addr, &ss, len);
	atomic_store_explicit(&hr_listen_addrs[i].len, len, memory_order_release);
}

/* Whether a socket with local address c (clen bytes) was accepted from a
 * listener bound to l: same family and port, and the same address unless
 * the listener's is the wildcard; AF_UNIX: the same name. */
static int hr_accepted_at(const struct sockaddr_storage *l, socklen_t llen,
			  const struct sockaddr_storage *c, socklen_t clen)
{
	if (l->ss_family != c->ss_family)
		return 0;
	if (l->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)l, *b = (const void *)c;
		return a->sin_port == b->sin_port && (a->sin_addr.s_addr == htonl(INADDR_ANY) ||
						      a->sin_addr.s_addr == b->sin_addr.s_addr);
	}
	if (l->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)l, *b = (const void *)c;
		return a->sin6_port == b->sin6_port &&
		       (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr) ||
			IN6_ARE_ADDR_EQUAL(&a->sin6_addr, &b->sin6_addr));
	}
	/* An unnamed AF_UNIX socket (any client's) matches no listener. */
	return l->ss_family == AF_UNIX && llen > sizeof(sa_family_t) && llen == clen &&
	       memcmp(l, c, llen) == 0;
}

int hr_listeners_accepted_from(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || len > sizeof ss)
		return 0;
	int used = atomic_load(&hr_listen_addrs_used);
	for (int i = 0; i < used && i < HR_MAX_LISTENERS; i++) {
		socklen_t llen = atomic_load_explicit(&hr_listen_addrs[i].len, memory_order_acquire);
		if (llen && hr_accepted_at(&hr_listen_addrs[i].addr, llen, &ss, len))
			return 1;
	}
	return 0;
}

void hr_listener_adopt(int fd, int app_nonblock, int inherited)
{
	hr_listener_remember_addr(fd);
	hr_fd_set(fd, HR_FD_LISTENER | (app_nonblock ? HR_FD_NONBLOCK : 0));
	/* Programs the app execs must not hold the accept queue open; only
	 * the shim's own exec of the successor passes listeners on. */
	int fdflags = hr_real.fcntl(fd, F_GETFD);
	if (fdflags >= 0 && !(fdflags & FD_CLOEXEC))
		hr_real.fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC);
	hr_holds_listeners = 1;
	/* The first process of the generation to hold a listener owns it: it
	 * takes the restart signal and answers the control socket. */
	pid_t none = 0;
	if (hr_gen && atomic_compare_exchange_strong(&hr_gen->owner, &none, hr_self))
		hr_debug("process %d owns the listeners", (int)hr_self);
	if (hr_is_owner())
		hr_agent_start_owner();
	if (inherited)
		hr_ready_note_claim();
	else
		hr_keeper_send_listener(fd);
}

/* A stream socket of a family the library hands over, in listen state. */
static int hr_is_listening_stream(int fd)
{
	int type = 0, domain = 0, acceptconn = 0;
	socklen_t len = sizeof type;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return 0;
	len = sizeof domain;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
	    (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX))
		return 0;
	len = sizeof acceptconn;
	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acceptconn, &len) == 0 && acceptconn;
}

static int hr_adopt_if_listener(void *unused, int dir, int fd, const char *name)
{
	(void)unused, (void)dir, (void)name;
	if (hr_fd_get(fd) || !hr_is_listening_stream(fd))
		return 0;
	/* The app passed it on on purpose: it stays inheritable. */
	int fdflags = hr_real.fcntl(fd, F_GETFD);
	int fl = hr_real.fcntl(fd, F_GETFL);
	hr_listener_adopt(fd, fl >= 0 && (fl & O_NONBLOCK), 0);
	if (fdflags >= 0)
		hr_real.fcntl(fd, F_SETFD, fdflags);
	hr_debug("fd %d: a listener inherited across exec", fd);
	return 1;
}

void hr_listeners_adopt_exec_inherited(void)
{
	if (hr_under_keeper())
		hr_procfd_each(hr_adopt_if_listener, NULL);
}

void hr_listener_on_listen(int fd)
{
	uint32_t st = hr_fd_get(fd);
	if (hr_fd_kind(st) == HR_FD_LISTENER)
		return; /* inherited and already claimed at bind() */
	if (hr_fd_kind(st) == HR_FD_SHIM) {
		hr_inherit_claim_in_place(fd);
		return;
	}
	if (!hr_is_listening_stream(fd))
		return;
	int fl = hr_real.fcntl(fd, F_GETFL);
	hr_listener_adopt(fd, fl >= 0 && (fl & O_NONBLOCK), 0);
}

/* What accept() gives the app once it closed or shut down a listener its
 * threads wait on: 0 while the listener is intact. */
static int hr_listener_gone(int fd)
{
	uint32_t st = hr_fd_get(fd);
	if (hr_fd_kind(st) != HR_FD_LISTENER)
		return EBADF;
	return (st & HR_FD_APP_SHUT) ? EINVAL : 0;
}

/* Milliseconds left of the app's receive timeout (SO_RCVTIMEO) on fd, -1
 * when it has none. *deadline is 0 before the first wait of a call, then
 * the moment the timeout ends. */
static int hr_timeout_left(int fd, long long *deadline)
{
	long long now = hr_now_ms();
	if (!*deadline) {
		struct timeval tv;
		socklen_t len = sizeof tv;
		if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) < 0 ||
		    (tv.tv_sec == 0 && tv.tv_usec == 0))
			return -1;
		*deadline = now + (long long)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
	}
	long long left = *deadline - now;
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* Undoes the accounting of an accept() the app's thread was cancelled in. */
static void hr_accept_cancelled(void *blocking)
{
	if (blocking)
		hr_accept_leave();
	hr_gen_accepting_add(-1);
}

/* One accept() while the generation accepts. The thread publishes itself
 * before it checks the phase again, so a drain that starts meanwhile
 * either is seen here or sees the thread (and interrupts its accept()). */
static int hr_accept_once(int fd, struct sockaddr *addr, socklen_t *len, int flags, int nonblock)
{
	int r;
	/* Counted from before the call until the connection is tracked, so a
	 * drain never ends between the two. */
	hr_gen_accepting_add(1);
	if (!nonblock) {
		hr_accept_enter(HR_IN_ACCEPT);
		if (atomic_load(&hr_gen->phase) != HR_PHASE_RUNNING) {
			hr_accept_leave();
			hr_gen_accepting_add(-1);
			errno = EINTR;
			return -1;
		}
	}
	pthread_cleanup_push(hr_accept_cancelled, (void *)(long)!nonblock);
	r = hr_real.accept4(fd, addr, len, flags);
	pthread_cleanup_pop(0);
	if (!nonblock)
		hr_accept_leave(); /* keeps errno */
	if (r >= 0)
		hr_fd_set(r, HR_FD_CONN | ((flags & SOCK_NONBLOCK) ? HR_FD_NONBLOCK : 0));
	hr_gen_accepting_add(-1);
	return r;
}

static void hr_accept_steady_cancelled(void *unused)
{
	(void)unused;
	hr_gen_conn_add(-1);
}

/* A steady accept that got no connection: the count goes back, the app
 * sees err. Out of line, so the usual path saves no register for it. */
static __attribute__((noinline)) int hr_accept_steady_none(int err)
{
	hr_gen_conn_add(-1);
	errno = err;
	return -1;
}

/* The connection is counted before the call, as the count a drain waits
 * for (so it is never short of it), and the count is given back when no
 * connection came: one atomic add per connection. */
int hr_listener_accept_steady(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	hr_gen_conn_reserve();
	if (!hr_view_accepting())
		return hr_accept_steady_none(EAGAIN); /* as hr_listener_accept tells a
						       * non-blocking caller */
	uint32_t state = HR_FD_CONN | ((flags & SOCK_NONBLOCK) ? HR_FD_NONBLOCK : 0);
	int r;
	pthread_cleanup_push(hr_accept_steady_cancelled, NULL);
	r = hr_real.accept4(fd, addr, len, flags);
	pthread_cleanup_pop(0);
	if (__builtin_expect(r < 0, 0))
		return hr_accept_steady_none(hr_view_accepting() ? errno
								       : EAGAIN); /* the drain ended it */
	if (__builtin_expect(!hr_fd_set_accepted(r, state), 0))
		return hr_fd_set_accepted_high(r, state);
	return r;
}

static void hr_park_cancelled(void *unused)
{
	(void)unused;
	hr_accept_leave();
}

/* Blocks the calling thread while the generation no longer accepts, as a
 * blocking accept() that never gets a connection. Returns -1 with what
 * that accept() would return: EBADF or EINVAL once the app closed or shut
 * down fd, EINTR when an app handler without SA_RESTART ran, EAGAIN when
 * the app's receive timeout passed. */
static int hr_park(int fd, long long *deadline)
{
	int err = 0;
	hr_accept_enter(HR_IN_PARK);
	pthread_cleanup_push(hr_park_cancelled, NULL);
	while (!(err = hr_listener_gone(fd))) {
		hr_shim_signal_only = 0;
		if (hr_real.poll(NULL, 0, hr_timeout_left(fd, deadline)) == 0)
			err = EAGAIN;
		else if (errno == EINTR && !hr_shim_signal_only && !hr_app_restarts_syscalls())
			err = EINTR;
		else if (errno == EINTR && hr_shim_signal_only && hr_under_keeper())
			hr_waits_drain_step(); /* a parked thread works for the drain */
		if (err)
			break;
	}
	pthread_cleanup_pop(1);
	errno = err;
	return -1;
}

/* Waits until fd is readable or the generation stops accepting, for an app
 * that believes the listener blocks while another process made the shared
 * description non-blocking. Returns -1 with EINTR when the app must see it,
 * with EAGAIN when the app's receive timeout passed. */
static int hr_wait_acceptable(int fd, long long *deadline)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
			       { .fd = hr_gen ? __atomic_load_n(&hr_wake_fd, __ATOMIC_ACQUIRE) : -1,
				 .events = POLLIN } };
	for (;;) {
		int r = hr_real.poll(p, p[1].fd >= 0 ? 2 : 1, hr_timeout_left(fd, deadline));
		if (r > 0)
			return 0;
		if (r == 0) {
			errno = EAGAIN;
			return -1;
		}
		if (errno != EINTR)
			return -1;
		if (!hr_gen_accepting())
			return 0; /* the caller parks */
		if (!hr_app_restarts_syscalls())
			return -1;
	}
}

int hr_listener_accept(int fd, uint32_t state, struct sockaddr *addr, socklen_t *len, int flags)
{
	int nonblock = (state & HR_FD_NONBLOCK) != 0;
	long long deadline = 0;
	hr_ready_note_waiting();
	hr_agent_ensure_worker();
	for (;;) {
		if (!hr_gen_accepting()) {
			if (nonblock) {
				errno = EAGAIN;
				return -1;
			}
			return hr_park(fd, &deadline);
		}
		int r = hr_accept_once(fd, addr, len, flags, nonblock);
		if (r >= 0)
			return r;
		int err = errno;
		/* Stopped accepting while this call was under way: our wake signal
		 * (EINTR) or a graceful stop's shutdown (EINVAL) ended it. The app
		 * sees no error; the loop parks or reports EAGAIN. */
		if (!hr_gen_accepting())
			continue;
		if (!nonblock && (err == EAGAIN || err == EWOULDBLOCK)) {
			/* On a blocking description only the app's SO_RCVTIMEO ends
			 * accept() with EAGAIN; otherwise another process made it
			 * non-blocking and the wait is ours, within that timeout. */
			int real = hr_real.fcntl(fd, F_GETFL);
			if (real >= 0 && !(real & O_NONBLOCK)) {
				errno = err;
				return -1;
			}
			if (hr_wait_acceptable(fd, &deadline) < 0)
				return -1;
			continue;
		}
		errno = err;
		return -1;
	}
}

void hr_listener_closed(int fd)
{
	(void)fd; /* the state of fd already says so */
	if (!hr_gen_accepting())
		hr_accept_wake_parked();
}

int hr_listener_shutdown(int fd)
{
	if (hr_gen_accepting())
		return 0;
	hr_fd_or(fd, HR_FD_APP_SHUT);
	hr_accept_wake_parked();
	return hr_gen_phase() == HR_PHASE_DRAINING;
}

int hr_listener_setfl(int fd, int flags)
{
	hr_listener_set_nonblock_view(fd, (flags & O_NONBLOCK) != 0);
	int real = hr_real.fcntl(fd, F_GETFL);
	if (real >= 0 && (real & O_NONBLOCK))
		flags |= O_NONBLOCK;
	return flags;
}

void hr_listener_set_nonblock_view(int fd, int nonblock)
{
	uint32_t st = hr_fd_get(fd);
	if (hr_fd_kind(st) != HR_FD_LISTENER)
		return;
	hr_fd_set(fd, nonblock ? (st | HR_FD_NONBLOCK) : (st & ~HR_FD_NONBLOCK));
}

int hr_listener_getfl(int fd, int real_flags)
{
	if (real_flags < 0)
		return real_flags;
	return (hr_fd_get(fd) & HR_FD_NONBLOCK) ? (real_flags | O_NONBLOCK)
						: (real_flags & ~O_NONBLOCK);
}

int hr_listeners_collect(struct hr_listener_info *out, int max)
{
	int n = 0;
	int top = atomic_load(&hr_fds_hiwater);
	for (int fd = 0; fd <= top && n < max; fd++) {
		if (hr_fd_kind(hr_fd_get(fd)) != HR_FD_LISTENER)
			continue;
		if (!hr_fd_same(fd)) {
			hr_fd_set(fd, HR_FD_NONE);
			continue;
		}
		struct stat st;
		if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
			continue;
		int dup = 0;
		for (int i = 0; i < n; i++)
			dup |= out[i].ino == (unsigned long)st.st_ino;
		if (dup)
			continue; /* a dup() of a listener we already have */
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
			continue;
		out[n].fd = fd;
		out[n].ino = (unsigned long)st.st_ino;
		out[n].name = hr_inherit_name(out[n].ino);
		out[n].inherited = out[n].name != NULL;
		if (!out[n].name)
			out[n].name = "unknown"; /* systemd's name for an unnamed socket */
		hr_format_sockaddr((struct sockaddr *)&ss, len, out[n].address,
				   sizeof out[n].address);
		n++;
	}
	return n;
}

/* Drops listener entries whose number no longer refers to the recorded
 * socket (closed behind the hooks and reused): acting on them would hit
 * some other socket of the app. */
static void hr_listeners_forget_stale(int top)
{
	for (int fd = 0; fd <= top; fd++)
		if (hr_fd_kind(hr_fd_get(fd)) == HR_FD_LISTENER && !hr_fd_same(fd))
			hr_fd_set(fd, HR_FD_NONE);
}

static void hr_epoll_drop_listeners(int ep, int top)
{
	for (int fd = 0; fd <= top; fd++)
		if (hr_fd_kind(hr_fd_get(fd)) == HR_FD_LISTENER)
			hr_real.epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
}

void hr_listeners_drop_from_epolls(void)
{
	int top = atomic_load(&hr_fds_hiwater);
	for (int ep = 0; ep <= top; ep++)
		if (hr_fd_kind(hr_fd_get(ep)) == HR_FD_EPOLL)
			hr_epoll_drop_listeners(ep, top);
}

/* Whether the entry name of directory dir (a /proc fd listing) is a link
 * to an epoll instance. */
static int hr_links_to_epoll(int dir, const char *name)
{
	static const char epoll_link[] = "anon_inode:[eventpoll]";
	char target[sizeof epoll_link];
	ssize_t n = readlinkat(dir, name, target, sizeof target);
	return n == (ssize_t)sizeof epoll_link - 1 && memcmp(target, epoll_link, (size_t)n) == 0;
}

/* An epoll set the table does not know: made behind the hooks (a raw
 * system call, before the constructor ran, at a number closed unseen and
 * reused), or by the app in the steady state. */
static int hr_drop_if_unseen_epoll(void *top, int dir, int fd, const char *name)
{
	if (hr_fd_kind(hr_fd_get(fd)) != HR_FD_EPOLL && hr_links_to_epoll(dir, name))
		hr_epoll_drop_listeners(fd, *(const int *)top);
	return 0;
}

void hr_listeners_stop_local(void)
{
	int top = atomic_load(&hr_fds_hiwater);
	hr_listeners_forget_stale(top);
	hr_listeners_drop_from_epolls();
	/* No /proc, or out of fds: the table's sets only. */
	hr_procfd_each(hr_drop_if_unseen_epoll, &top);
	hr_accept_wake_all();
}

void hr_listeners_shut(void)
{
	int top = atomic_load(&hr_fds_hiwater);
	hr_listeners_forget_stale(top);
	for (int fd = 0; fd <= top; fd++)
		if (hr_fd_kind(hr_fd_get(fd)) == HR_FD_LISTENER)
			hr_real.shutdown(fd, SHUT_RDWR);
}
