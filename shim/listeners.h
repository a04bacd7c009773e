/* Listening sockets the app uses: adoption at listen()/claim, the app's
 * private view of O_NONBLOCK, accept(), and stopping accepting. */
#ifndef HR_LISTENERS_H
#define HR_LISTENERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HR_MAX_LISTENERS 1024

/* Marks fd as a listener of this process. inherited: it came from the
 * predecessor (or systemd). */
void hr_listener_adopt(int fd, int app_nonblock, int inherited);

/* Under a keeper, from the constructor once LISTEN_FDS is taken: listening
 * sockets this image received across exec without LISTEN_FDS (a worker the
 * server execs with the listener's fd, a master re-executing itself) are
 * the generation's listeners, as if this image had made them. */
void hr_listeners_adopt_exec_inherited(void);

/* Whether fd is a socket accepted from one of the listeners this process
 * adopted (its local address is theirs): how the drain tells a connection
 * it tracks from another socket that reused the number unseen (an
 * upstream or client socket never has a listener's address). */
int hr_listeners_accepted_from(int fd);

/* After the app's successful listen() on fd. */
void hr_listener_on_listen(int fd);

/* accept()/accept4() on a listener: blocks (in the app's view) by the app's
 * own O_NONBLOCK setting, and never hands out a connection once the
 * generation stopped accepting. */
int hr_listener_accept(int fd, uint32_t state, struct sockaddr *addr, socklen_t *len, int flags);
/* The same for a listener the app made non-blocking, in the steady state
 * (ready.h): one accept4() between the counts a drain waits for. */
int hr_listener_accept_steady(int fd, struct sockaddr *addr, socklen_t *len, int flags);

/* After the app closed listener fd (its state already cleared): parked
 * accept() calls on it return EBADF. Async-signal-safe. */
void hr_listener_closed(int fd);
/* The app's shutdown() of listener fd: once the generation stopped
 * accepting, parked accept() calls on it return EINVAL. Returns 1 when the
 * real shutdown must be skipped (the successor serves that listener).
 * Async-signal-safe. */
int hr_listener_shutdown(int fd);

/* F_SETFL / FIONBIO on a listener: records the app's view and returns the
 * flags to apply to the shared open file description, which keeps
 * O_NONBLOCK once any process needs it. */
int hr_listener_setfl(int fd, int flags);
void hr_listener_set_nonblock_view(int fd, int nonblock);
int hr_listener_getfl(int fd, int real_flags);

struct hr_listener_info {
	int fd;
	unsigned long ino;
	char address[128];
	const char *name;
	int inherited; /* came from the predecessor or systemd */
};

/* Distinct listening sockets of this process, for the successor and status. */
int hr_listeners_collect(struct hr_listener_info *out, int max);

/* Stops this process accepting: removes listeners from its epoll sets
 * (those the table knows, and those /proc shows: in the steady state the
 * epoll_ctl() hook notes none) and wakes threads blocked in accept().
 * Allocates nothing. */
void hr_listeners_stop_local(void);
/* Removes listeners from the epoll sets the table knows again: a
 * registration the app made as accepting stopped may land after the stop. */
void hr_listeners_drop_from_epolls(void);

/* Refuses new connections on every listener (graceful stop, no successor). */
void hr_listeners_shut(void);

#endif
