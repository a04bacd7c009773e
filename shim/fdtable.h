/* Per-process state of every fd the shim cares about, indexed by fd number.
 * Lock-free: one atomic word per fd. fds past the table pass through. */
#ifndef HR_FDTABLE_H
#define HR_FDTABLE_H

#include "gen.h"

#include <stdatomic.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

/* The kinds whose fd calls the hooks must look at on every path (a
 * listener, or the shim's own fd) are the odd ones: one bit tells them. */
enum hr_fd_kind {
	HR_FD_NONE = 0,
	HR_FD_LISTENER = 1, /* a listening socket the app uses */
	HR_FD_CONN = 2,	    /* a connection accepted from a listener */
	HR_FD_SHIM = 3,	    /* the shim's own fd, invisible to the app */
	HR_FD_EPOLL = 4,    /* an epoll instance */
};
#define HR_FD_GUARDED 0x1u /* set in HR_FD_LISTENER and HR_FD_SHIM */

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
/* The highest number that was ever a listener's in this process (-1: none):
 * a number above it needs no look at the table where only listeners
 * matter (F_GETFL). */
extern _Atomic int hr_listener_fd_top;
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

/* The same, relaxed: for the hooks' short paths, which act on the kind and
 * flags only (a listener's identity is read with hr_fd_get). */
static inline uint32_t hr_fd_peek(int fd)
{
	if ((unsigned)fd >= (unsigned)hr_fds_size)
		return 0;
	return atomic_load_explicit(&hr_fds[fd], memory_order_relaxed);
}

/* The entry of fd, when a nonzero state was read for it (so it is in
 * the table): the hooks' short paths update it without a second check. */
static inline _Atomic uint32_t *hr_fd_entry(int fd)
{
	return &hr_fds[fd];
}

static inline unsigned hr_fd_kind(uint32_t state)
{
	return state & HR_FD_KIND_MASK;
}

void hr_fd_raise_hiwater(int fd);
/* Records the socket inode of fd, about to be a listener, and raises
 * hr_listener_fd_top. */
void hr_fd_note_listener(int fd);

/* Replaces the state of fd, keeping the generation's connection count in
 * step, and records a listener's identity (one fstat); returns the
 * previous state. Inline: it is on every accept and close. */
static inline uint32_t hr_fd_set(int fd, uint32_t state)
{
	if ((unsigned)fd >= (unsigned)hr_fds_size) /* fd < 0 too */
		return 0;
	if (state && fd > atomic_load_explicit(&hr_fds_hiwater, memory_order_relaxed))
		hr_fd_raise_hiwater(fd);
	/* Noted before the state, so whoever sees the kind sees its identity. */
	if (hr_fd_kind(state) == HR_FD_LISTENER)
		hr_fd_note_listener(fd);
	uint32_t old = atomic_exchange_explicit(&hr_fds[fd], state, memory_order_acq_rel);
	int delta = (hr_fd_kind(state) == HR_FD_CONN) - (hr_fd_kind(old) == HR_FD_CONN);
	if (delta)
		hr_gen_conn_add(delta);
	return old;
}

/* Marks fd (>= 0), just accepted, as the connection whose count the
 * caller took beforehand (hr_gen_conn_reserve): only a count the entry
 * already held (a number closed unseen) gives one back. Returns 0, having
 * done nothing, for a number past the high-water mark: then
 * hr_fd_set_accepted_high does it. */
static inline int hr_fd_set_accepted(int fd, uint32_t state)
{
	/* At or below the mark, fd is in the table. */
	if (fd > atomic_load_explicit(&hr_fds_hiwater, memory_order_relaxed))
		return 0;
	uint32_t old = atomic_exchange_explicit(hr_fd_entry(fd), state, memory_order_acq_rel);
	if (hr_fd_kind(old) == HR_FD_CONN)
		hr_gen_conn_add(-1);
	return 1;
}
int hr_fd_set_accepted_high(int fd, uint32_t state); /* returns fd */

/* Forgets connection fd, closed by the app: its entry, read nonzero, goes
 * to HR_FD_NONE, and its count with it (unless it changed meanwhile). */
static inline void hr_fd_forget_conn(int fd)
{
	uint32_t old = atomic_exchange_explicit(hr_fd_entry(fd), HR_FD_NONE, memory_order_acq_rel);
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
