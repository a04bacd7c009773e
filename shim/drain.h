/* Lame duck: threads parked instead of accepting, and idle connections
 * closed so keep-alive clients do not pin an old generation. */
#ifndef HR_DRAIN_H
#define HR_DRAIN_H

#include "gen.h" /* HR_WAKE_MAGIC */

/* Where a thread stands in a blocking accept(), so the drain can reach it. */
enum hr_accept_where {
	HR_IN_NOTHING = 0,
	HR_IN_ACCEPT, /* in (or about to enter) the kernel's accept() */
	HR_IN_PARK,   /* parked: the generation stopped accepting */
};
/* Publishes where the calling thread is (sequentially consistent: check the
 * phase after it), and HR_IN_NOTHING again when it leaves. */
void hr_accept_enter(enum hr_accept_where where);
void hr_accept_leave(void);
/* After the phase stopped accepting: interrupts every thread of this
 * process in accept(), repeating until none is left there (bounded). */
void hr_accept_wake_all(void);
/* Makes parked threads look again at their listener. Async-signal-safe. */
void hr_accept_wake_parked(void);

/* Makes the app see end-of-input on connections that are between requests.
 * Returns how many it closed. */
int hr_drain_close_idle(void);
/* The app is about to block reading connection fd while its generation
 * drains: end its input if it answered all it received. */
void hr_drain_at_read(int fd);

void hr_drain_after_fork_child(void);

/* Whether unlink(path) must be skipped: in a successor, path is the live
 * inherited socket; in a generation that handed over, path is a listener's
 * socket or a pid file the successor rewrote (changed since the upgrade
 * started, holding only the PID of a live process of another generation). */
int hr_drain_keeps_path(int dirfd, const char *path);
/* At handover: records the AF_UNIX listener paths the successor now owns. */
void hr_drain_remember_paths(void);
#endif
