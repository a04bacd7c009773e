/* Lame duck: threads parked instead of accepting, and idle connections
 * closed so keep-alive clients do not pin an old generation. */
#ifndef HR_DRAIN_H
#define HR_DRAIN_H

/* Around a blocking accept(): lets the drain interrupt it. */
void hr_accept_enter(void);
void hr_accept_leave(void);
/* Interrupts every thread of this process blocked in accept(). */
void hr_accept_wake_all(void);
/* Whether si came from hr_accept_wake_all (for the signal handler). */
#define HR_WAKE_MAGIC 0x48527761

/* Blocks the calling thread for good: returns -1 with EINTR only when the
 * app's signal handling expects accept() to be interrupted. */
int hr_park(void);

/* Makes the app see end-of-input on connections that are between requests.
 * Returns how many it closed. */
int hr_drain_close_idle(void);

void hr_drain_after_fork_child(void);



/* Whether unlink(path) must be skipped: in a successor, path is the live
 * inherited socket; in a generation that handed over, path is a listener's
 * socket or a pid file the successor rewrote (changed since the upgrade
 * started, holding only the PID of a live process of another generation). */
int hr_drain_keeps_path(int dirfd, const char *path);
/* At handover: records the AF_UNIX listener paths the successor now owns. */
void hr_drain_remember_paths(void);
#endif
