/* Per-process state of every fd the shim cares about, indexed by fd number.
 * Lock-free: one atomic word per fd. fds past the table pass through. */
#ifndef HR_FDTABLE_H
#define HR_FDTABLE_H

#include "gen.h"

#include <stdatomic.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

enum hr_fd_kind {
	HR_FD_NONE = 0,
	HR_FD_LISTENER = 1, /* a listening socket the app uses */
	HR_FD_CONN = 2,	    /* a connection accepted from a listener */
	HR_FD_EPOLL = 3,    /* an epoll instance */
	HR_FD_SHIM = 4,	    /* the shim's own fd, invisible to the app */
};

#define HR_FD_KIND_MASK 0x7u
#define HR_FD_NONBLOCK 0x8u	  /* listener: the app's view of O_NONBLOCK;
				   * connection: O_NONBLOCK as last seen */
#define HR_FD_HAS_LISTENER 0x10u /* epoll: the app registered a listener */
#define HR_FD_SHUT_READ 0x20u    /* connection: drain shut its read side */
#define HR_FD_APP_SHUT 0x40u     /* listener: the app shut it down after accepting stopped */
#define HR_FD_READ_WAIT 0x80u    /* connection: the app's last read found nothing or
				  * blocks, and it sent nothing since (idle.h) */
#define HR_FD_INTERIM 0x100u     /* connection: while draining, the app's last send
				  * was an HTTP interim (1xx) answer (idle.h) */

extern _Atomic uint32_t *hr_fds;
/* The socket inode of each listener, recorded when it was tracked: a
 * number closed behind the hooks (fclose, SCM_RIGHTS juggling, raw
 * syscalls) and reused is told apart by it. 0: unknown. Connections have
 * none (an fstat per accept would cost a system call per request): the
 * drain tells them by their local address (listeners.h). */
extern _Atomic uint64_t *hr_fd_ids;
extern int hr_fds_size;
extern _Atomic int hr_fds_hiwater; /* highest fd ever tracked, bounds scans */
/* Per fd, CLOCK_MONOTONIC_COARSE in ms when HR_FD_READ_WAIT was last set. */
extern _Atomic uint32_t *hr_fd_stamps;

void hr_fdtable_init(void);

static inline uint32_t hr_fd_get(int fd)
{
	if ((unsigned)fd >= (unsigned)hr_fds_size) /* fd < 0 too */
		return 0;
	return atomic_load_explicit(&hr_fds[fd], memory_order_acquire);
}

static inline unsigned hr_fd_kind(uint32_t state)
{
	return state & HR_FD_KIND_MASK;
}

void hr_fd_raise_hiwater(int fd);
void hr_fd_remember_id(int fd);

/* Replaces the state of fd, keeping the generation's connection count in
 * step, and records a listener's identity (one fstat); returns the
 * previous state. Inline: it is on every accept and close. */
static inline uint32_t hr_fd_set(int fd, uint32_t state)
{
	if ((unsigned)fd >= (unsigned)hr_fds_size) /* fd < 0 too */
		return 0;
	if (state && fd > atomic_load_explicit(&hr_fds_hiwater, memory_order_relaxed))
		hr_fd_raise_hiwater(fd);
	/* Stored before the state, so whoever sees the kind sees its identity. */
	if (hr_fd_kind(state) == HR_FD_LISTENER)
		hr_fd_remember_id(fd);
	uint32_t old = atomic_exchange_explicit(&hr_fds[fd], state, memory_order_acq_rel);
	int delta = (hr_fd_kind(state) == HR_FD_CONN) - (hr_fd_kind(old) == HR_FD_CONN);
	if (delta)
		hr_gen_conn_add(delta);
	return old;
}

/* Marks fd, just accepted, as the connection whose count the caller took
 * beforehand (hr_gen_conn_reserve): only a count the entry already held
 * (a number closed unseen) or a number past the table gives one back. */
static inline void hr_fd_set_accepted(int fd, uint32_t state)
{
	if ((unsigned)fd >= (unsigned)hr_fds_size) {
		hr_gen_conn_add(-1); /* untracked: never uncounted at close */
		return;
	}
	if (fd > atomic_load_explicit(&hr_fds_hiwater, memory_order_relaxed))
		hr_fd_raise_hiwater(fd);
	uint32_t old = atomic_exchange_explicit(&hr_fds[fd], state, memory_order_acq_rel);
	if (hr_fd_kind(old) == HR_FD_CONN)
		hr_gen_conn_add(-1);
}

/* Adds or removes flag bits of a tracked fd without changing its kind. */
static inline void hr_fd_or(int fd, uint32_t bits)
{
	if ((unsigned)fd < (unsigned)hr_fds_size)
		atomic_fetch_or_explicit(&hr_fds[fd], bits, memory_order_acq_rel);
}

static inline void hr_fd_clear(int fd, uint32_t bits)
{
	if ((unsigned)fd < (unsigned)hr_fds_size)
		atomic_fetch_and_explicit(&hr_fds[fd], ~bits, memory_order_acq_rel);
}

/* Whether listener fd still refers to the socket recorded for it. When it
 * does not, the caller forgets the entry instead of acting on it. */
int hr_fd_same(int fd);

#pragma GCC visibility pop

#endif
