/* The library's side of the keeper (docs/keeper.md): under `hotrestart run`
 * a keeper process owns the service's identity, control, pid file and
 * spawning. The library then only tells it what happens inside the server:
 * new listeners (with the fd) and unclaimed inherited listeners. The
 * keeper reads readiness and connection counts from the shared region
 * (gen.h), and drives draining through it. No thread of the library runs
 * in the app's processes then: the drain work happens in the app's own
 * waits (waits.h). */
#ifndef HR_KEEPERLINK_H
#define HR_KEEPERLINK_H

#include <sys/types.h>

#pragma GCC visibility push(hidden)

/* The channel to the keeper, or -1 when the library runs on its own. */
extern int hr_keeper_fd;

static inline int hr_under_keeper(void)
{
	return hr_keeper_fd >= 0;
}

/* From the constructor: adopts the keeper's fds named in the environment
 * and removes the variables. Returns 1 under a keeper (with the region's
 * memfd and the wake eventfd), 0 without, -1 with a reason when the
 * variables are there but unusable. */
int hr_keeper_load(int *gen_fd, int *wake_fd, char *err, size_t errlen);

/* A listening socket this process made (not inherited): the keeper keeps a
 * copy for every later generation. */
void hr_keeper_send_listener(int fd);
void hr_keeper_send_drop(unsigned long ino);

#pragma GCC visibility pop

#endif
