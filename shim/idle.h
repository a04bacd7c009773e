/* Idle connections: the app provably waits for the next request. Its most
 * recent read on the connection found nothing (EAGAIN) or is blocked right
 * now, it sent nothing since, and nothing is left to read or to send. The read
 * and send hooks keep the first two facts per fd (HR_FD_READ_WAIT and its
 * stamp); the drain checks the rest. Steady state: one table load and a
 * branch per call; an atomic and a coarse clock read (vDSO) only when the
 * fact changes. */
#ifndef HR_IDLE_H
#define HR_IDLE_H

#include "fdtable.h"
#include "gen.h"

#include <sys/types.h>

/* Out of line: the rare transitions. */
uint32_t hr_idle_mark_waiting(int fd, uint32_t state);
void hr_idle_read_done(int fd, ssize_t r, int dontwait);
void hr_idle_send_draining(int fd, const void *head, size_t n);

/* Before a read-family call on fd: a read that may block counts as waiting
 * while it is under way. Returns what hr_idle_read_end needs. */
static inline uint32_t hr_idle_read_begin(int fd, int dontwait)
{
	uint32_t st = hr_fd_get(fd);
	if (hr_fd_kind(st) == HR_FD_CONN && !(st & HR_FD_NONBLOCK) && !dontwait)
		st = hr_idle_mark_waiting(fd, st);
	return st;
}

/* Whether fd is a connection the app made non-blocking and that waits for
 * nothing yet: its read needs no note before, and one after only when it
 * fails. */
static inline int hr_idle_read_nonblocking(int fd)
{
	return (hr_fd_peek(fd) & (HR_FD_KIND_MASK | HR_FD_NONBLOCK | HR_FD_READ_WAIT)) ==
	       (HR_FD_CONN | HR_FD_NONBLOCK);
}

/* After it returned r (errno set by it); keeps errno. */
static inline void hr_idle_read_end(int fd, uint32_t state, ssize_t r, int dontwait)
{
	if (hr_fd_kind(state) == HR_FD_CONN && (r < 0 || (state & HR_FD_READ_WAIT)))
		hr_idle_read_done(fd, r, dontwait);
}

/* Before a send-family call on fd: the app answers, so it no longer waits. */
static inline void hr_idle_note_send(int fd)
{
	if (hr_fd_peek(fd) & HR_FD_READ_WAIT)
		atomic_fetch_and_explicit(hr_fd_entry(fd), ~HR_FD_READ_WAIT, memory_order_acq_rel);
}

/* The same, and whether the generation drains: the caller then passes what
 * it sends to hr_idle_send_draining (head: its first n bytes; NULL: unseen). */
static inline int hr_idle_send(int fd)
{
	hr_idle_note_send(fd);
	return __builtin_expect(hr_gen_phase() != HR_PHASE_RUNNING, 0);
}

/* The app set or cleared O_NONBLOCK of fd, whose state is st (F_SETFL,
 * FIONBIO): a connection's entry says so. */
static inline void hr_idle_note_nonblock(int fd, uint32_t st, int nonblock)
{
	if (hr_fd_kind(st) != HR_FD_CONN)
		return;
	if (nonblock)
		atomic_fetch_or_explicit(hr_fd_entry(fd), HR_FD_NONBLOCK, memory_order_acq_rel);
	else
		atomic_fetch_and_explicit(hr_fd_entry(fd), ~HR_FD_NONBLOCK, memory_order_acq_rel);
}

/* Whether connection fd is idle by the rule above (TCP only); overdue: the
 * drain timeout passed, and a connection whose app answered after it last
 * received, with nothing queued, counts too. */
int hr_idle_conn(int fd, int overdue);
/* Whether the app, about to read from connection fd, answered everything it
 * received: it asks for the next request (TCP only). */
int hr_idle_conn_answered(int fd);

#endif
