/* The interposed libc functions. Each is a few lines: it forwards to libc
 * through hr_real and tells the core what happened. Hooks can run before
 * the constructor (hr_active is then 0) and from any thread; they keep the
 * app's errno. */
#include "agent.h"
#include "children.h"
#include "closefrom.h"
#include "drain.h"
#include "fdtable.h"
#include "gen.h"
#include "idle.h"
#include "guards.h"
#include "inherit.h"
#include "libc.h"
#include "listeners.h"
#include "log.h"
#include "ready.h"
#include "shimfds.h"
#include "signals.h"
#include "waits.h"
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HR_EXPORT __attribute__((visibility("default")))

/* A number we did not see closed (close_range, raw syscalls) comes back
 * from a call that creates fds: forget what we knew about it. */
static void hr_fd_fresh(int fd)
{
	if (hr_fd_get(fd))
		hr_fd_set(fd, HR_FD_NONE);
}

/* An inherited listener the app found through LISTEN_FDS on its own. */
static uint32_t hr_claim_if_inherited(int fd, uint32_t st)
{
	if (hr_fd_kind(st) != HR_FD_SHIM)
		return st;
	hr_inherit_claim_in_place(fd);
	return hr_fd_get(fd);
}

/* The fd newfd now refers to what oldfd does. */
static void hr_fd_copy(int oldfd, int newfd)
{
	uint32_t st = hr_claim_if_inherited(oldfd, hr_fd_get(oldfd));
	hr_fd_set(newfd, hr_fd_kind(st) == HR_FD_SHIM ? HR_FD_NONE
						      : st & ~(HR_FD_SHUT_READ | HR_FD_READ_WAIT |
							     HR_FD_INTERIM));
}

HR_EXPORT int socket(int domain, int type, int protocol)
{
	hr_libc_init();
	int fd = hr_real.socket(domain, type, protocol);
	if (fd >= 0 && hr_active)
		hr_fd_fresh(fd);
	return fd;
}

HR_EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	hr_libc_init();
	if (hr_active && hr_inherit_bind(fd, addr, len))
		return 0;
	return hr_real.bind(fd, addr, len);
}

HR_EXPORT int listen(int fd, int backlog)
{
	hr_libc_init();
	int r = hr_real.listen(fd, backlog);
	if (r == 0 && hr_active) {
		int saved = errno;
		hr_listener_on_listen(fd);
		errno = saved;
	}
	return r;
}

static __attribute__((noinline)) int hr_accept4_hooked(int fd, struct sockaddr *addr,
						       socklen_t *len, int flags)
{
	hr_libc_init();
	uint32_t st = hr_fd_get(fd);
	if (hr_active && st) {
		st = hr_claim_if_inherited(fd, st);
		if (hr_fd_kind(st) == HR_FD_LISTENER)
			return hr_listener_accept(fd, st, addr, len, flags);
	}
	int r = hr_real.accept4(fd, addr, len, flags);
	if (r >= 0 && hr_active)
		hr_fd_fresh(r);
	return r;
}

HR_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	/* Steady: a listener the app made non-blocking, the short way. */
	if (hr_steady_accepting() && (hr_fd_peek(fd) & (HR_FD_KIND_MASK | HR_FD_NONBLOCK)) ==
					     (HR_FD_LISTENER | HR_FD_NONBLOCK))
		return hr_listener_accept_steady(fd, addr, len, flags);
	return hr_accept4_hooked(fd, addr, len, flags);
}

/* accept4() reached directly, not through the PLT entry of an export. */
extern __typeof__(accept4) hr_accept4 __attribute__((alias("accept4"), visibility("hidden")));

HR_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return hr_accept4(fd, addr, len, 0);
}

static __attribute__((noinline)) int hr_close_hooked(int fd)
{
	hr_libc_init();
	uint32_t st = hr_fd_get(fd);
	if (st && hr_active) {
		if (hr_fd_kind(st) == HR_FD_SHIM) {
			errno = EBADF; /* never the app's to close */
			return -1;
		}
		hr_fd_set(fd, HR_FD_NONE);
		if (hr_fd_kind(st) == HR_FD_LISTENER)
			hr_listener_closed(fd);
	}
	return hr_real.close(fd);
}

HR_EXPORT int close(int fd)
{
	/* Steady: an fd the shim does not track, or a connection, the short way. */
	if (hr_steady_accepting()) {
		uint32_t st = hr_fd_peek(fd);
		if (hr_fd_kind(st) == HR_FD_NONE)
			return hr_real.close(fd);
		if (hr_fd_kind(st) == HR_FD_CONN) {
			hr_fd_forget_conn(fd);
			return hr_real.close(fd);
		}
	}
	return hr_close_hooked(fd);
}

/* A vfork() child runs on its parent's memory until it execs or exits,
 * and vfork() is not hooked (it must stay a vfork): the hooks such a child
 * may reach (_exit, closefrom, close_range) must leave the parent's state
 * alone. The child has its own fd table, so plain libc calls are right. */
static int hr_in_vfork_child(void)
{
	return getpid() != hr_self;
}

/* Closes [first, last] but the shim's own fds, range by range. */
static int hr_close_range_keeping(unsigned first, unsigned last, int flags)
{
	int hiwater = atomic_load(&hr_fds_hiwater);
	unsigned top = hiwater < 0 ? 0 : (unsigned)hiwater;
	unsigned start = first;
	int ret = 0;
	for (unsigned fd = first; hiwater >= 0 && fd <= last && fd <= top; fd++) {
		uint32_t st = hr_fd_get((int)fd);
		if (hr_fd_kind(st) == HR_FD_SHIM) {
			if (fd > start &&
			    hr_real.syscall(SYS_close_range, start, fd - 1, flags) < 0)
				ret = -1;
			start = fd + 1;
		} else if (st && !(flags & CLOSE_RANGE_CLOEXEC)) {
			hr_fd_set((int)fd, HR_FD_NONE);
		}
	}
	if (start <= last && hr_real.syscall(SYS_close_range, start, last, flags) < 0)
		ret = -1;
	return ret;
}

HR_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	hr_libc_init();
	if (!hr_active || first > last || hr_in_vfork_child())
		return (int)hr_real.syscall(SYS_close_range, first, last, flags);
	return hr_close_range_keeping(first, last, flags);
}

HR_EXPORT void closefrom(int lowfd)
{
	hr_libc_init();
	if (lowfd < 0)
		lowfd = 0;
	if (!hr_active || hr_in_vfork_child()) {
		hr_real.closefrom(lowfd);
		return;
	}
	if (hr_close_range_keeping((unsigned)lowfd, ~0U, 0) < 0)
		hr_closefrom_fallback(lowfd); /* no close_range (old kernel, seccomp) */
}

HR_EXPORT int shutdown(int fd, int how)
{
	hr_libc_init();
	/* An old generation's listener is the successor's too. */
	if (hr_active && hr_fd_kind(hr_fd_get(fd)) == HR_FD_LISTENER && hr_listener_shutdown(fd))
		return 0;
	return hr_real.shutdown(fd, how);
}

HR_EXPORT int dup(int fd)
{
	hr_libc_init();
	int r = hr_real.dup(fd);
	if (r >= 0 && hr_active)
		hr_fd_copy(fd, r);
	return r;
}

/* The app replaces newfd, which holds one of the library's fds: that one
 * moves away first (a valid oldfd only: a failing call must change nothing).
 * Not from a vfork() child: its fds are its own, but the places that store
 * the library's numbers (and the lock) are its parent's. */
static void hr_dup_onto(int oldfd, int newfd)
{
	if (hr_active && oldfd != newfd && hr_fd_kind(hr_fd_get(newfd)) == HR_FD_SHIM &&
	    !hr_in_vfork_child() && hr_real.fcntl(oldfd, F_GETFD) >= 0)
		hr_shimfd_evict(newfd);
}

HR_EXPORT int dup2(int oldfd, int newfd)
{
	hr_libc_init();
	hr_dup_onto(oldfd, newfd);
	int r = hr_real.dup2(oldfd, newfd);
	if (r >= 0 && hr_active && oldfd != newfd)
		hr_fd_copy(oldfd, newfd);
	return r;
}

HR_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	hr_libc_init();
	hr_dup_onto(oldfd, newfd);
	int r = hr_real.dup3(oldfd, newfd, flags);
	if (r >= 0 && hr_active)
		hr_fd_copy(oldfd, newfd);
	return r;
}

/* The app's view of a listener's file status flags (listeners.h). */
static __attribute__((noinline)) int hr_fcntl_listener(int fd, int cmd, void *arg)
{
	if (cmd == F_SETFL)
		return hr_real.fcntl(fd, F_SETFL, hr_listener_setfl(fd, (int)(intptr_t)arg));
	return hr_listener_getfl(fd, hr_real.fcntl(fd, F_GETFL));
}

static __attribute__((noinline)) int hr_fcntl_dupfd(int fd, int cmd, void *arg)
{
	int r = hr_real.fcntl(fd, cmd, arg);
	if (r >= 0)
		hr_fd_copy(fd, r);
	return r;
}

/* Straight to libc but for what the shim tracks: listeners' flags, a
 * connection's O_NONBLOCK, duplicates, and locks a guard may concern. */
static int hr_fcntl_slow(int fd, int cmd, void *arg)
{
	hr_libc_init();
	if (!hr_active)
		return hr_real.fcntl(fd, cmd, arg);
	if (cmd == F_SETFL || cmd == F_GETFL) {
		uint32_t st = hr_fd_get(fd);
		if (hr_fd_kind(st) == HR_FD_LISTENER)
			return hr_fcntl_listener(fd, cmd, arg);
		/* Noted first, so the call itself can be the last thing done: on
		 * a connection F_SETFL fails only when fd is no longer open. */
		if (cmd == F_SETFL)
			hr_idle_note_nonblock(fd, st, ((int)(intptr_t)arg & O_NONBLOCK) != 0);
		return hr_real.fcntl(fd, cmd, arg);
	}
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		return hr_fcntl_dupfd(fd, cmd, arg);
	if (hr_guards_count && hr_guards_is_lock_cmd(cmd))
		return hr_guards_fcntl_lock(fd, cmd, arg);
	return hr_real.fcntl(fd, cmd, arg);
}

/* fcntl() and fcntl64() are variadic in <fcntl.h>, but every command takes
 * at most one argument, passed as an int or a pointer: on the Linux ABIs
 * this library builds for, a third argument of pointer width in the third
 * argument register. Defined with that argument, under the libc names, the
 * hooks skip the register save area that va_start would build. */
HR_EXPORT int hr_fcntl_hook(int fd, int cmd, void *arg) __asm__("fcntl");

HR_EXPORT int hr_fcntl_hook(int fd, int cmd, void *arg)
{
	/* Steady: file status flags but a listener's (F_GETFL on a number
	 * above every listener's without a look at the table), and the fd
	 * flags, the short way. */
	if (hr_steady_accepting()) {
		if (cmd == F_SETFL) {
			uint32_t st = hr_fd_peek(fd);
			if (hr_fd_kind(st) == HR_FD_CONN) {
				hr_idle_note_nonblock(fd, st, ((int)(intptr_t)arg & O_NONBLOCK) != 0);
				return hr_real.fcntl(fd, cmd, arg);
			}
			if (!(st & HR_FD_GUARDED))
				return hr_real.fcntl(fd, cmd, arg);
		} else if (cmd == F_GETFL) {
			if (fd > atomic_load_explicit(&hr_listener_fd_top, memory_order_relaxed) ||
			    !(hr_fd_peek(fd) & HR_FD_GUARDED))
				return hr_real.fcntl(fd, cmd);
		} else if (cmd == F_GETFD || cmd == F_SETFD) {
			return hr_real.fcntl(fd, cmd, arg);
		}
	}
	return hr_fcntl_slow(fd, cmd, arg);
}

/* What <fcntl.h> calls with _FILE_OFFSET_BITS=64: the same function. */
HR_EXPORT extern __typeof__(hr_fcntl_hook) hr_fcntl64_hook __asm__("fcntl64")
	__attribute__((alias("fcntl")));

HR_EXPORT int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	hr_libc_init();
	if (hr_active && request == FIONBIO && arg &&
	    hr_fd_kind(hr_fd_get(fd)) == HR_FD_LISTENER) {
		int on = *(int *)arg;
		hr_listener_set_nonblock_view(fd, on);
		if (!on)
			return 0; /* the shared description keeps O_NONBLOCK */
	}
	if (hr_active && request == FIONBIO && arg)
		hr_idle_note_nonblock(fd, hr_fd_get(fd), *(int *)arg);
	return hr_real.ioctl(fd, request, arg);
}

HR_EXPORT int epoll_create(int size)
{
	hr_libc_init();
	int r = hr_real.epoll_create(size);
	if (r >= 0 && hr_active)
		hr_fd_set(r, HR_FD_EPOLL);
	return r;
}

HR_EXPORT int epoll_create1(int flags)
{
	hr_libc_init();
	int r = hr_real.epoll_create1(flags);
	if (r >= 0 && hr_active)
		hr_fd_set(r, HR_FD_EPOLL);
	return r;
}

/* Whether the state is that of a listener, claimed or not yet (an
 * inherited one is the shim's until claimed). */
static inline int hr_fd_maybe_listener(uint32_t st)
{
	return (st & HR_FD_GUARDED) != 0;
}

static __attribute__((noinline)) int hr_epoll_ctl_listener(int epfd, int op, int fd,
							   struct epoll_event *ev, uint32_t st)
{
	if (hr_fd_kind(hr_claim_if_inherited(fd, st)) == HR_FD_LISTENER) {
		if (op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) {
			/* A set we did not see created (raw syscall) still counts. */
			uint32_t ep = hr_fd_get(epfd);
			hr_fd_set(epfd, (hr_fd_kind(ep) == HR_FD_EPOLL ? ep : HR_FD_EPOLL) |
						HR_FD_HAS_LISTENER);
			hr_agent_ensure_worker();
			if (!hr_gen_accepting())
				return 0; /* this generation no longer accepts */
		} else if (op == EPOLL_CTL_DEL && !hr_gen_accepting()) {
			int r = hr_real.epoll_ctl(epfd, op, fd, ev);
			return r < 0 && errno == ENOENT ? 0 : r;
		}
	}
	return hr_real.epoll_ctl(epfd, op, fd, ev);
}

static __attribute__((noinline)) int hr_epoll_ctl_hooked(int epfd, int op, int fd,
							 struct epoll_event *ev)
{
	hr_libc_init();
	uint32_t st = hr_fd_get(fd);
	if (hr_active && hr_fd_maybe_listener(st))
		return hr_epoll_ctl_listener(epfd, op, fd, ev, st);
	return hr_real.epoll_ctl(epfd, op, fd, ev);
}

/* Steady and accepting, a listener's registration needs nothing either:
 * readiness is past, and the drain finds the sets it must take listeners
 * out of itself, those created behind the hooks too (listeners.h). */
HR_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	if (hr_steady_accepting())
		return hr_real.epoll_ctl(epfd, op, fd, ev);
	return hr_epoll_ctl_hooked(epfd, op, fd, ev);
}

/* Until the generation is ready: whether this wait is the app waiting for
 * connections; once it is, the first wait finishes readiness here. */
static __attribute__((noinline)) void hr_epoll_waiting_ready(int epfd)
{
	uint32_t st = hr_fd_get(epfd);
	if (atomic_load(&hr_gen->ready_done) ||
	    (hr_holds_listeners && ((st & HR_FD_HAS_LISTENER) || !hr_inherit_unclaimed())))
		hr_ready_waiting_slow();
}

/* Before the app waits on an epoll set: one load and a branch each for
 * the phase, the agent and readiness once the generation is ready. */
static inline void hr_epoll_waiting(int epfd)
{
	hr_waits_enter();
	if (!hr_under_keeper() && (hr_fd_get(epfd) & HR_FD_HAS_LISTENER))
		hr_agent_ensure_worker();
	if (__builtin_expect(atomic_load_explicit(&hr_ready_pending, memory_order_relaxed), 0))
		hr_epoll_waiting_ready(epfd);
}

/* After a failed wait: 1 to wait again. A wait that only the keeper's wake signal
 * interrupted waits again when it has no deadline, and ends as a timeout
 * would when it has one (the app rechecks its timers). */
static int hr_rewait(int *r, int infinite)
{
	if (*r >= 0 || errno != EINTR || !hr_waits_absorb())
		return 0;
	if (infinite)
		return 1;
	*r = 0;
	return 0;
}

/* An epoll_wait() call: what a wait the keeper's wake interrupted needs to
 * wait again. */
struct hr_epoll_call {
	int epfd, max, timeout;
	struct epoll_event *ev;
};

/* The rest of an epoll_wait() that failed: absorbs the keeper's wake. */
static __attribute__((noinline)) int hr_epoll_wait_failed(const struct hr_epoll_call *call)
{
	int r = -1;
	while (r < 0 && hr_rewait(&r, call->timeout < 0)) {
		hr_epoll_waiting(call->epfd);
		r = hr_real.epoll_wait(call->epfd, call->ev, call->max, call->timeout);
	}
	return r;
}

static __attribute__((noinline)) int hr_epoll_wait_hooked(int epfd, struct epoll_event *ev,
							  int max, int timeout)
{
	hr_libc_init();
	if (hr_active)
		hr_epoll_waiting(epfd);
	int r = hr_real.epoll_wait(epfd, ev, max, timeout);
	if (r < 0)
		return hr_epoll_wait_failed(&(struct hr_epoll_call){epfd, max, timeout, ev});
	return r;
}

HR_EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	/* Steady and accepting, hr_epoll_waiting has nothing to do. The
	 * arguments go to the stack before the wait, where a failure finds
	 * them: cheaper than registers saved and restored on every call. */
	if (!hr_steady_accepting())
		return hr_epoll_wait_hooked(epfd, ev, max, timeout);
	struct hr_epoll_call call = {epfd, max, timeout, ev};
	__asm__("" : : "m"(call));
	int r = hr_real.epoll_wait(epfd, ev, max, timeout);
	if (__builtin_expect(r < 0, 0))
		return hr_epoll_wait_failed(&call);
	return r;
}

/* The other waits' short paths, steady and accepting: the call itself,
 * and when the keeper's wake interrupted a wait with no deadline, the
 * general path, which then has drain work to do before it waits again. */
static __attribute__((noinline)) int hr_epoll_pwait_hooked(int epfd, struct epoll_event *ev,
							   int max, int timeout,
							   const sigset_t *mask)
{
	hr_libc_init();
	int r;
	do {
		if (hr_active)
			hr_epoll_waiting(epfd);
		r = hr_real.epoll_pwait(epfd, ev, max, timeout, mask);
	} while (r < 0 && hr_rewait(&r, timeout < 0));
	return r;
}

HR_EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
			  const sigset_t *mask)
{
	if (hr_steady_accepting()) {
		int r = hr_real.epoll_pwait(epfd, ev, max, timeout, mask);
		if (__builtin_expect(r >= 0, 1) || !hr_rewait(&r, timeout < 0))
			return r;
	}
	return hr_epoll_pwait_hooked(epfd, ev, max, timeout, mask);
}

static __attribute__((noinline)) int hr_epoll_pwait2_hooked(int epfd, struct epoll_event *ev,
							    int max, const struct timespec *ts,
							    const sigset_t *mask)
{
	hr_libc_init();
	if (!hr_real.epoll_pwait2) {
		errno = ENOSYS;
		return -1;
	}
	int r;
	do {
		if (hr_active)
			hr_epoll_waiting(epfd);
		r = hr_real.epoll_pwait2(epfd, ev, max, ts, mask);
	} while (r < 0 && hr_rewait(&r, ts == NULL));
	return r;
}

HR_EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *ts,
			   const sigset_t *mask)
{
	if (hr_steady_accepting() && hr_real.epoll_pwait2) {
		int r = hr_real.epoll_pwait2(epfd, ev, max, ts, mask);
		if (__builtin_expect(r >= 0, 1) || !hr_rewait(&r, ts == NULL))
			return r;
	}
	return hr_epoll_pwait2_hooked(epfd, ev, max, ts, mask);
}

/* poll()-family: a generation that stopped accepting must not see its
 * listeners become readable; they are hidden for the call (a negative fd is
 * ignored by poll and gets revents 0). */
static __attribute__((noinline)) int hr_poll_hooked(struct pollfd *fds, nfds_t n,
						    const struct timespec *ts, int timeout,
						    const sigset_t *mask, int is_ppoll)
{
	hr_libc_init();
	/* Past 4096 entries the listeners stay visible (the stack copy below
	 * would be too big); accept() then still refuses to hand out work. */
	int listeners = 0;
	if (hr_active && n <= 4096)
		for (nfds_t i = 0; i < n; i++)
			listeners += hr_fd_kind(hr_fd_get(fds[i].fd)) == HR_FD_LISTENER;
	hr_waits_enter();
	if (!listeners || hr_gen_accepting()) {
		if (listeners) {
			hr_ready_note_waiting();
			hr_agent_ensure_worker();
		}
		int r;
		do
			r = is_ppoll ? hr_real.ppoll(fds, n, ts, mask) : hr_real.poll(fds, n, timeout);
		while (r < 0 && hr_rewait(&r, is_ppoll ? ts == NULL : timeout < 0));
		return r;
	}
	unsigned char hidden[n];
	for (nfds_t i = 0; i < n; i++) {
		hidden[i] = hr_fd_kind(hr_fd_get(fds[i].fd)) == HR_FD_LISTENER;
		if (hidden[i])
			fds[i].fd = ~fds[i].fd;
	}
	int r;
	do
		r = is_ppoll ? hr_real.ppoll(fds, n, ts, mask) : hr_real.poll(fds, n, timeout);
	while (r < 0 && hr_rewait(&r, is_ppoll ? ts == NULL : timeout < 0));
	for (nfds_t i = 0; i < n; i++)
		if (hidden[i])
			fds[i].fd = ~fds[i].fd;
	return r;
}

/* Steady and accepting, no listener is to be hidden (nor looked for). */
static int hr_poll_common(struct pollfd *fds, nfds_t n, const struct timespec *ts, int timeout,
			  const sigset_t *mask, int is_ppoll)
{
	if (hr_steady_accepting()) {
		int r = is_ppoll ? hr_real.ppoll(fds, n, ts, mask) : hr_real.poll(fds, n, timeout);
		if (__builtin_expect(r >= 0, 1) || !hr_rewait(&r, is_ppoll ? ts == NULL : timeout < 0))
			return r;
	}
	return hr_poll_hooked(fds, n, ts, timeout, mask, is_ppoll);
}

HR_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	return hr_poll_common(fds, n, NULL, timeout, NULL, 0);
}

HR_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	(void)fdslen;
	return hr_poll_common(fds, n, NULL, timeout, NULL, 0);
}

HR_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
	return hr_poll_common(fds, n, ts, 0, mask, 1);
}

HR_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts,
			  const sigset_t *mask, size_t fdslen)
{
	(void)fdslen;
	return hr_poll_common(fds, n, ts, 0, mask, 1);
}

/* select()-family: listener bits are cleared from the read set when the
 * generation stopped accepting (the result then says "not ready"). */
static void hr_select_prepare(int nfds, fd_set *rfds)
{
	hr_waits_enter();
	if (!hr_active || !rfds)
		return;
	int listeners = 0, accepting = hr_gen_accepting();
	for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if (FD_ISSET(fd, rfds) && hr_fd_kind(hr_fd_get(fd)) == HR_FD_LISTENER) {
			listeners++;
			if (!accepting)
				FD_CLR(fd, rfds);
		}
	if (listeners && accepting) {
		hr_ready_note_waiting();
		hr_agent_ensure_worker();
	}
}

/* A select() ended as a timeout reports no fd ready in any set. */
static int hr_select_rewait(int *r, int infinite, int nfds, fd_set *rs, fd_set *ws, fd_set *es)
{
	if (hr_rewait(r, infinite))
		return 1;
	if (*r == 0)
		for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
			if (rs)
				FD_CLR(fd, rs);
			if (ws)
				FD_CLR(fd, ws);
			if (es)
				FD_CLR(fd, es);
		}
	return 0;
}

static __attribute__((noinline)) int hr_select_hooked(int nfds, fd_set *r, fd_set *w,
						      fd_set *e, struct timeval *tv)
{
	hr_libc_init();
	int ret;
	do {
		hr_select_prepare(nfds, r);
		ret = hr_real.select(nfds, r, w, e, tv);
	} while (hr_select_rewait(&ret, tv == NULL, nfds, r, w, e));
	return ret;
}

/* Steady and accepting, no listener bit is to be cleared (nor looked for). */
HR_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	if (hr_steady_accepting()) {
		int ret = hr_real.select(nfds, r, w, e, tv);
		if (__builtin_expect(ret >= 0, 1) ||
		    !hr_select_rewait(&ret, tv == NULL, nfds, r, w, e))
			return ret;
	}
	return hr_select_hooked(nfds, r, w, e, tv);
}

static __attribute__((noinline)) int hr_pselect_hooked(int nfds, fd_set *r, fd_set *w,
						       fd_set *e, const struct timespec *ts,
						       const sigset_t *mask)
{
	hr_libc_init();
	int ret;
	do {
		hr_select_prepare(nfds, r);
		ret = hr_real.pselect(nfds, r, w, e, ts, mask);
	} while (hr_select_rewait(&ret, ts == NULL, nfds, r, w, e));
	return ret;
}

HR_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
		      const sigset_t *mask)
{
	if (hr_steady_accepting()) {
		int ret = hr_real.pselect(nfds, r, w, e, ts, mask);
		if (__builtin_expect(ret >= 0, 1) ||
		    !hr_select_rewait(&ret, ts == NULL, nfds, r, w, e))
			return ret;
	}
	return hr_pselect_hooked(nfds, r, w, e, ts, mask);
}

HR_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	hr_libc_init();
	int r;
	if (hr_active && hr_signals_sigaction(sig, act, old, &r))
		return r;
	return hr_real.sigaction(sig, act, old);
}

/* signal() and friends are sigaction() with fixed flags; glibc implements
 * them with an internal call we would not see. */
static sighandler_t hr_signal_with(int sig, sighandler_t handler, int flags)
{
	struct sigaction act, old;
	memset(&act, 0, sizeof act);
	act.sa_handler = handler;
	act.sa_flags = flags;
	sigemptyset(&act.sa_mask);
	if (!(flags & SA_NODEFER) && sig > 0 && sig < _NSIG)
		sigaddset(&act.sa_mask, sig);
	return sigaction(sig, &act, &old) < 0 ? SIG_ERR : old.sa_handler;
}

/* Signals siginterrupt() made interrupting: BSD signal() installs their
 * handlers without SA_RESTART, as glibc's does. */
static sigset_t hr_sigintr;

HR_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	return hr_signal_with(sig, handler, sigismember(&hr_sigintr, sig) == 1 ? 0 : SA_RESTART);
}

HR_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler)
{
	return signal(sig, handler);
}

HR_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler)
{
	return hr_signal_with(sig, handler, SA_RESETHAND | SA_NODEFER);
}

/* The System V calls, rebuilt on the sigaction() hook for the same reason:
 * glibc's would replace the shim's handler behind its back. */
HR_EXPORT sighandler_t sigset(int sig, sighandler_t disp)
{
	if (disp == SIG_ERR || sig <= 0 || sig >= _NSIG) {
		errno = EINVAL;
		return SIG_ERR;
	}
	sigset_t one, before;
	sigemptyset(&one);
	sigaddset(&one, sig);
	struct sigaction act, old;
	if (disp == SIG_HOLD) {
		if (sigprocmask(SIG_BLOCK, &one, &before) < 0)
			return SIG_ERR;
		if (sigismember(&before, sig))
			return SIG_HOLD;
		return sigaction(sig, NULL, &old) < 0 ? SIG_ERR : old.sa_handler;
	}
	memset(&act, 0, sizeof act);
	act.sa_handler = disp;
	sigemptyset(&act.sa_mask);
	if (sigaction(sig, &act, &old) < 0 || sigprocmask(SIG_UNBLOCK, &one, &before) < 0)
		return SIG_ERR;
	return sigismember(&before, sig) ? SIG_HOLD : old.sa_handler;
}

HR_EXPORT int sigignore(int sig)
{
	struct sigaction act;
	memset(&act, 0, sizeof act);
	act.sa_handler = SIG_IGN;
	sigemptyset(&act.sa_mask);
	return sigaction(sig, &act, NULL);
}

HR_EXPORT int siginterrupt(int sig, int interrupt)
{
	struct sigaction act;
	if (sigaction(sig, NULL, &act) < 0)
		return -1;
	if (interrupt) {
		sigaddset(&hr_sigintr, sig);
		act.sa_flags &= ~SA_RESTART;
	} else {
		sigdelset(&hr_sigintr, sig);
		act.sa_flags |= SA_RESTART;
	}
	return sigaction(sig, &act, NULL);
}

HR_EXPORT int unlink(const char *path)
{
	hr_libc_init();
	if (hr_active && hr_drain_keeps_path(AT_FDCWD, path))
		return 0;
	return hr_real.unlink(path);
}

HR_EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
	hr_libc_init();
	if (hr_active && !(flags & AT_REMOVEDIR) && hr_drain_keeps_path(dirfd, path))
		return 0;
	return hr_real.unlinkat(dirfd, path, flags);
}

HR_EXPORT int remove(const char *path)
{
	hr_libc_init();
	if (hr_active && hr_drain_keeps_path(AT_FDCWD, path))
		return 0;
	return hr_real.remove(path);
}

/* Reads and sends: on connections they tell whether the app waits for the
 * next request (idle.h); on anything else they only forward. A read the
 * keeper's wake interrupted (an old generation drains) does the drain work
 * and reads again: its own connection may just have been found idle. */
/* One read-family call r = CALL on fd, the whole hook body. */
#define HR_READ_HOOK(fd, dontwait, CALL)                                         \
	do {                                                                     \
		hr_libc_init();                                                  \
		uint32_t st_ = hr_idle_read_begin((fd), (dontwait));             \
		ssize_t r_;                                                      \
		do                                                               \
			r_ = (CALL);                                             \
		while (r_ < 0 && errno == EINTR && hr_waits_absorb());           \
		hr_idle_read_end((fd), st_, r_, (dontwait));                     \
		return r_;                                                       \
	} while (0)

/* Steady, on a non-blocking connection that waits for nothing yet: the
 * call never sleeps, so nothing interrupts it; only a failure is noted.
 * Anything else goes to HOOKED, the whole hook body in a function of its
 * own (the registers it saves are not saved on this path). */
#define HR_READ_STEADY(fd, CALL, HOOKED)                                         \
	do {                                                                     \
		if (hr_steady_accepting() && hr_idle_read_nonblocking(fd)) {      \
			/* Read back only when the call failed. */               \
			volatile int fd_ = (fd);                                 \
			ssize_t r_ = (CALL);                                     \
			if (__builtin_expect(r_ < 0, 0))                         \
				hr_idle_read_done(fd_, r_, 0);                   \
			return r_;                                               \
		}                                                                \
		return HOOKED;                                                   \
	} while (0)

static __attribute__((noinline)) ssize_t hr_read_hooked(int fd, void *buf, size_t n)
{
	HR_READ_HOOK(fd, 0, hr_real.read(fd, buf, n));
}

HR_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	HR_READ_STEADY(fd, hr_real.read(fd, buf, n), hr_read_hooked(fd, buf, n));
}

HR_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	HR_READ_HOOK(fd, 0, hr_real.__read_chk(fd, buf, n, buflen));
}

static __attribute__((noinline)) ssize_t hr_readv_hooked(int fd, const struct iovec *iov,
							   int iovcnt)
{
	HR_READ_HOOK(fd, 0, hr_real.readv(fd, iov, iovcnt));
}

HR_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	HR_READ_STEADY(fd, hr_real.readv(fd, iov, iovcnt), hr_readv_hooked(fd, iov, iovcnt));
}

static __attribute__((noinline)) ssize_t hr_recv_hooked(int fd, void *buf, size_t n, int flags)
{
	HR_READ_HOOK(fd, flags & MSG_DONTWAIT, hr_real.recv(fd, buf, n, flags));
}

HR_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	HR_READ_STEADY(fd, hr_real.recv(fd, buf, n, flags), hr_recv_hooked(fd, buf, n, flags));
}

HR_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	HR_READ_HOOK(fd, flags & MSG_DONTWAIT, hr_real.__recv_chk(fd, buf, n, buflen, flags));
}

HR_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
			   socklen_t *len)
{
	HR_READ_HOOK(fd, flags & MSG_DONTWAIT, hr_real.recvfrom(fd, buf, n, flags, addr, len));
}

HR_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
				 struct sockaddr *addr, socklen_t *len)
{
	HR_READ_HOOK(fd, flags & MSG_DONTWAIT,
		     hr_real.__recvfrom_chk(fd, buf, n, buflen, flags, addr, len));
}

/* fds that arrived with SCM_RIGHTS are new numbers here: forget what we
 * knew about them. */
static void hr_fd_fresh_received(struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
			hr_fd_fresh(fd);
		}
	}
}

HR_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	hr_libc_init();
	uint32_t st = hr_idle_read_begin(fd, flags & MSG_DONTWAIT);
	ssize_t r;
	do
		r = hr_real.recvmsg(fd, msg, flags);
	while (r < 0 && errno == EINTR && hr_waits_absorb());
	if (r >= 0 && msg->msg_controllen && hr_active)
		hr_fd_fresh_received(msg);
	hr_idle_read_end(fd, st, r, flags & MSG_DONTWAIT);
	return r;
}

/* One send-family call r = CALL on fd, the whole hook body. What it sends
 * is looked at only while the generation drains, on a path of its own
 * (DRAINING: a function that notes HEAD, LEN and makes the call), so the
 * usual one saves no register and ends in a jump to libc. */
#define HR_SEND_HOOK(fd, DRAINING, CALL)                                         \
	do {                                                                     \
		if (hr_steady_accepting()) {                                     \
			hr_idle_note_send(fd);                                   \
			return CALL;                                             \
		}                                                                \
		hr_libc_init();                                                  \
		if (__builtin_expect(hr_idle_send(fd), 0))                       \
			return DRAINING;                                         \
		return CALL;                                                     \
	} while (0)

static __attribute__((noinline)) ssize_t hr_write_draining(int fd, const void *buf, size_t n)
{
	hr_idle_send_draining(fd, buf, n);
	return hr_real.write(fd, buf, n);
}

HR_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	HR_SEND_HOOK(fd, hr_write_draining(fd, buf, n), hr_real.write(fd, buf, n));
}

static __attribute__((noinline)) ssize_t hr_writev_draining(int fd, const struct iovec *iov,
							     int iovcnt)
{
	hr_idle_send_draining(fd, iovcnt > 0 ? iov[0].iov_base : NULL,
			      iovcnt > 0 ? iov[0].iov_len : 0);
	return hr_real.writev(fd, iov, iovcnt);
}

HR_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	HR_SEND_HOOK(fd, hr_writev_draining(fd, iov, iovcnt), hr_real.writev(fd, iov, iovcnt));
}

static __attribute__((noinline)) ssize_t hr_send_draining(int fd, const void *buf, size_t n,
							   int flags)
{
	hr_idle_send_draining(fd, buf, n);
	return hr_real.send(fd, buf, n, flags);
}

HR_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	HR_SEND_HOOK(fd, hr_send_draining(fd, buf, n, flags), hr_real.send(fd, buf, n, flags));
}

static __attribute__((noinline)) ssize_t hr_sendto_draining(int fd, const void *buf, size_t n,
							     int flags,
							     const struct sockaddr *addr,
							     socklen_t len)
{
	hr_idle_send_draining(fd, buf, n);
	return hr_real.sendto(fd, buf, n, flags, addr, len);
}

HR_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
			 socklen_t len)
{
	HR_SEND_HOOK(fd, hr_sendto_draining(fd, buf, n, flags, addr, len),
		     hr_real.sendto(fd, buf, n, flags, addr, len));
}

static __attribute__((noinline)) ssize_t hr_sendmsg_draining(int fd, const struct msghdr *msg,
							      int flags)
{
	int parts = msg && msg->msg_iov && msg->msg_iovlen > 0;
	hr_idle_send_draining(fd, parts ? msg->msg_iov[0].iov_base : NULL,
			      parts ? msg->msg_iov[0].iov_len : 0);
	return hr_real.sendmsg(fd, msg, flags);
}

HR_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	HR_SEND_HOOK(fd, hr_sendmsg_draining(fd, msg, flags), hr_real.sendmsg(fd, msg, flags));
}

HR_EXPORT ssize_t sendfile(int out, int in, off_t *offset, size_t n)
{
	hr_libc_init();
	if (hr_idle_send(out))
		hr_idle_send_draining(out, NULL, 0);
	return hr_real.sendfile(out, in, offset, n);
}

HR_EXPORT ssize_t sendfile64(int out, int in, off_t *offset, size_t n)
{
	hr_libc_init();
	if (hr_idle_send(out))
		hr_idle_send_draining(out, NULL, 0);
	return hr_real.sendfile64(out, in, offset, n);
}

/* What a successor sees of older generations (guards.h). Other paths and
 * PIDs cost a couple of loads and a branch. */
static int hr_guarded_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	hr_libc_init();
	if (hr_active && hr_guards_count)
		return hr_guards_openat(dirfd, path, flags, mode);
	return hr_real.openat(dirfd, path, flags, mode);
}

/* The mode argument is there only when the call may create a file. */
#define HR_OPEN_MODE(flags)                                                    \
	({                                                                     \
		mode_t mode_ = 0;                                              \
		if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) { \
			va_list ap_;                                           \
			va_start(ap_, flags);                                  \
			mode_ = va_arg(ap_, mode_t);                           \
			va_end(ap_);                                           \
		}                                                              \
		mode_;                                                         \
	})

HR_EXPORT int open(const char *path, int flags, ...)
{
	return hr_guarded_openat(AT_FDCWD, path, flags, HR_OPEN_MODE(flags));
}

HR_EXPORT int open64(const char *path, int flags, ...)
{
	return hr_guarded_openat(AT_FDCWD, path, flags | O_LARGEFILE, HR_OPEN_MODE(flags));
}

HR_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	return hr_guarded_openat(dirfd, path, flags, HR_OPEN_MODE(flags));
}

HR_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	return hr_guarded_openat(dirfd, path, flags | O_LARGEFILE, HR_OPEN_MODE(flags));
}

/* _FORTIFY_SOURCE's variants, for calls that pass no mode. */
HR_EXPORT int __open_2(const char *path, int flags)
{
	return hr_guarded_openat(AT_FDCWD, path, flags, 0);
}

HR_EXPORT int __open64_2(const char *path, int flags)
{
	return hr_guarded_openat(AT_FDCWD, path, flags | O_LARGEFILE, 0);
}

HR_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return hr_guarded_openat(dirfd, path, flags, 0);
}

HR_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	return hr_guarded_openat(dirfd, path, flags | O_LARGEFILE, 0);
}

/* 1 (errno ENOENT) when path is /proc/PID of an older generation. */
static int hr_hidden_path(const char *path)
{
	hr_libc_init();
	if (hr_active && hr_guards_hides_path(path)) {
		errno = ENOENT;
		return 1;
	}
	return 0;
}

HR_EXPORT FILE *fopen(const char *path, const char *mode)
{
	return hr_hidden_path(path) ? NULL : hr_real.fopen(path, mode);
}

HR_EXPORT FILE *fopen64(const char *path, const char *mode)
{
	return hr_hidden_path(path) ? NULL : hr_real.fopen64(path, mode);
}

HR_EXPORT DIR *opendir(const char *path)
{
	return hr_hidden_path(path) ? NULL : hr_real.opendir(path);
}

HR_EXPORT int stat(const char *path, struct stat *st)
{
	return hr_hidden_path(path) ? -1 : hr_real.fstatat(AT_FDCWD, path, st, 0);
}

HR_EXPORT int lstat(const char *path, struct stat *st)
{
	return hr_hidden_path(path) ? -1 : hr_real.fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

HR_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	return hr_hidden_path(path) ? -1 : hr_real.fstatat(dirfd, path, st, flags);
}

HR_EXPORT int stat64(const char *path, struct stat64 *st)
{
	return hr_hidden_path(path) ? -1 : hr_real.fstatat64(AT_FDCWD, path, st, 0);
}

HR_EXPORT int lstat64(const char *path, struct stat64 *st)
{
	return hr_hidden_path(path) ? -1
				    : hr_real.fstatat64(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

HR_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	return hr_hidden_path(path) ? -1 : hr_real.fstatat64(dirfd, path, st, flags);
}

HR_EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *st)
{
	if (hr_hidden_path(path))
		return -1;
	if (!hr_real.statx) {
		errno = ENOSYS;
		return -1;
	}
	return hr_real.statx(dirfd, path, flags, mask, st);
}

HR_EXPORT int access(const char *path, int mode)
{
	return hr_hidden_path(path) ? -1 : hr_real.faccessat(AT_FDCWD, path, mode, 0);
}

HR_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
	return hr_hidden_path(path) ? -1 : hr_real.faccessat(dirfd, path, mode, flags);
}

/* 1 (errno ESRCH) when pid is a process of an older generation. */
static int hr_hidden_pid(pid_t pid, int sig)
{
	hr_libc_init();
	if (hr_active && hr_guards_count && hr_guards_hides_pid(pid, sig)) {
		errno = ESRCH;
		return 1;
	}
	return 0;
}

HR_EXPORT int killpg(pid_t pgrp, int sig)
{
	hr_libc_init();
	if (pgrp < 0) {
		errno = EINVAL;
		return -1;
	}
	if (hr_active && hr_gen_phase() == HR_PHASE_DRAINING && hr_guards_is_own_group(pgrp))
		return hr_guards_group_kill(getpgrp(), sig);
	return hr_real.kill(-pgrp, sig);
}

HR_EXPORT int kill(pid_t pid, int sig)
{
	if (pid <= 0 && pid != -1)
		return killpg(-pid, sig);
	return hr_hidden_pid(pid, sig) ? -1 : hr_real.kill(pid, sig);
}

HR_EXPORT int sigqueue(pid_t pid, int sig, const union sigval value)
{
	return hr_hidden_pid(pid, sig) ? -1 : hr_real.sigqueue(pid, sig, value);
}

HR_EXPORT int tgkill(pid_t tgid, pid_t tid, int sig)
{
	return hr_hidden_pid(tgid, sig) ? -1 : (int)hr_real.syscall(SYS_tgkill, tgid, tid, sig);
}

HR_EXPORT int pidfd_open(pid_t pid, unsigned int flags)
{
	return hr_hidden_pid(pid, 0) ? -1 : (int)hr_real.syscall(SYS_pidfd_open, pid, flags);
}

HR_EXPORT int flock(int fd, int op)
{
	hr_libc_init();
	if (hr_active && hr_guards_count)
		return hr_guards_flock(fd, op);
	return hr_real.flock(fd, op);
}

HR_EXPORT int lockf(int fd, int cmd, off_t len)
{
	hr_libc_init();
	if (hr_active && hr_guards_count)
		return hr_guards_lockf(fd, cmd, len);
	return hr_real.lockf(fd, cmd, len);
}

HR_EXPORT int lockf64(int fd, int cmd, off64_t len)
{
	return lockf(fd, cmd, (off_t)len);
}

/* Runtimes (libuv) issue some calls through syscall(): route those to the
 * hooks above so the fd state stays true. */
HR_EXPORT long syscall(long number, ...)
{
	va_list ap;
	va_start(ap, number);
	long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
	long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
	va_end(ap);
	hr_libc_init();
	if (hr_active) {
		switch (number) {
		case SYS_close:
			return close((int)a1);
		case SYS_accept:
			return accept((int)a1, (struct sockaddr *)a2, (socklen_t *)a3);
		case SYS_accept4:
			return accept4((int)a1, (struct sockaddr *)a2, (socklen_t *)a3, (int)a4);
		case SYS_epoll_ctl:
			return epoll_ctl((int)a1, (int)a2, (int)a3, (struct epoll_event *)a4);
		case SYS_epoll_wait:
			return epoll_wait((int)a1, (struct epoll_event *)a2, (int)a3, (int)a4);
		case SYS_epoll_pwait:
			return epoll_pwait((int)a1, (struct epoll_event *)a2, (int)a3, (int)a4,
					   (const sigset_t *)a5);
		case SYS_close_range:
			return close_range((unsigned)a1, (unsigned)a2, (int)a3);
		case SYS_dup:
			return dup((int)a1);
		case SYS_dup2:
			return dup2((int)a1, (int)a2);
		case SYS_dup3:
			return dup3((int)a1, (int)a2, (int)a3);
		case SYS_shutdown:
			return shutdown((int)a1, (int)a2);
		case SYS_listen:
			return listen((int)a1, (int)a2);
		case SYS_bind:
			return bind((int)a1, (const struct sockaddr *)a2, (socklen_t)a3);
		case SYS_kill:
			return kill((pid_t)a1, (int)a2);
		case SYS_tgkill:
			return tgkill((pid_t)a1, (pid_t)a2, (int)a3);
		case SYS_pidfd_open:
			return pidfd_open((pid_t)a1, (unsigned)a2);
		default:
			break;
		}
	}
	return hr_real.syscall(number, a1, a2, a3, a4, a5, a6);
}

/* Waits on any child must not see the successor (children.h). */
HR_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	hr_libc_init();
	idtype_t type = pid == -1 ? P_ALL : P_PGID;
	id_t id = pid < -1 ? (id_t)-pid : 0;
	if (hr_active && pid <= 0 && hr_children_concerns(type, id))
		return hr_children_wait_any(type, id, status, NULL, options, ru, 0);
	return hr_real.wait4(pid, status, options, ru);
}

HR_EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
	return wait4(pid, status, options, NULL);
}

HR_EXPORT pid_t wait(int *status)
{
	return wait4(-1, status, 0, NULL);
}

HR_EXPORT pid_t wait3(int *status, int options, struct rusage *ru)
{
	return wait4(-1, status, options, ru);
}

HR_EXPORT int waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
	hr_libc_init();
	if (hr_active && hr_children_concerns(type, id))
		return hr_children_wait_any(type, id, NULL, info, options, NULL, 1) < 0 ? -1 : 0;
	return hr_real.waitid(type, id, info, options);
}

HR_EXPORT pid_t fork(void)
{
	hr_libc_init();
	/* A process that holds listeners and forks may be a daemonizing
	 * server's future owner: its agent watches for the hand-off. */
	if (hr_active && hr_holds_listeners && !hr_is_owner())
		hr_agent_ensure_worker();
	return hr_real.fork();
}

/* exit(), and a return from main() (glibc's internal exit, which no hook
 * sees), both run the destructors. */
__attribute__((destructor)) static void hr_at_exit(void)
{
	if (hr_active && !hr_in_vfork_child())
		hr_gen_note_exit();
}

HR_EXPORT void _exit(int status)
{
	hr_libc_init();
	if (hr_active && !hr_in_vfork_child())
		hr_gen_note_exit();
	hr_real._exit(status);
}

HR_EXPORT void _Exit(int status)
{
	_exit(status);
}
