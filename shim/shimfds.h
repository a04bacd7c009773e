/* The library's own fds (pipes, eventfds, control sockets, pidfds,
 * inherited listeners not yet claimed): kept out of the app's way. New ones
 * go to high numbers; one the app takes anyway with dup2()/dup3() is moved
 * to another number first, and every place that stores it follows. */
#ifndef HR_SHIMFDS_H
#define HR_SHIMFDS_H

#include <pthread.h>

#pragma GCC visibility push(hidden)

/* Moves fd, just made by the library, to a high free number (close on
 * exec); returns the number it now has (fd itself when none is free). */
int hr_shimfd_high(int fd);

/* Registers where the library stores one of its fds (-1 when none); the
 * variable must live as long as the process. Idempotent. */
void hr_shimfd_ref(int *where);

/* From dup2()/dup3() onto fd, which the library owns: moves it away and
 * updates every registered place. */
void hr_shimfd_evict(int fd);

/* Held by the agent while it uses its fds (not while it waits), so an
 * eviction never lands between reading a number and using it. */
extern pthread_mutex_t hr_shimfd_lock;

void hr_shimfd_after_fork_child(void);

#pragma GCC visibility pop

#endif
