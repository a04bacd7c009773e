#include "shimfds.h"

#include "fdtable.h"
#include "libc.h"
#include "log.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <unistd.h>

#define HR_SHIMFD_REFS 512
#define HR_SHIMFD_ROOM 64 /* numbers at the top of the range kept for the library */

pthread_mutex_t hr_shimfd_lock = PTHREAD_MUTEX_INITIALIZER;
static int *hr_refs[HR_SHIMFD_REFS];
static _Atomic int hr_nrefs;

/* The lowest number the library moves its fds to: near the soft limit, but
 * within the fd table and below 1024 (select()'s reach is the app's, and a
 * kernel fd table grown to a huge limit costs memory). 0: no room. */
static int hr_shimfd_floor(void)
{
	struct rlimit rl;
	long top = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (long)rl.rlim_cur < top)
		top = (long)rl.rlim_cur;
	if (top > hr_fds_size)
		top = hr_fds_size;
	return top > 4 * HR_SHIMFD_ROOM ? (int)(top - HR_SHIMFD_ROOM) : 0;
}

int hr_shimfd_high(int fd)
{
	int floor = hr_shimfd_floor();
	if (fd < 0 || fd >= floor)
		return fd;
	int moved = hr_real.fcntl(fd, F_DUPFD_CLOEXEC, floor);
	if (moved < 0)
		return fd;
	hr_real.close(fd);
	return moved;
}

/* Registration has its own lock: the agent registers while it holds
 * hr_shimfd_lock (a successor's pidfd). */
static pthread_mutex_t hr_refs_lock = PTHREAD_MUTEX_INITIALIZER;

void hr_shimfd_ref(int *where)
{
	pthread_mutex_lock(&hr_refs_lock);
	int n = atomic_load(&hr_nrefs), known = 0;
	for (int i = 0; i < n && !known; i++)
		known = hr_refs[i] == where;
	if (!known && n < HR_SHIMFD_REFS) {
		hr_refs[n] = where;
		atomic_store(&hr_nrefs, n + 1);
	}
	pthread_mutex_unlock(&hr_refs_lock);
}

void hr_shimfd_evict(int fd)
{
	pthread_mutex_lock(&hr_shimfd_lock);
	uint32_t st = hr_fd_get(fd);
	if (hr_fd_kind(st) == HR_FD_SHIM) {
		int floor = hr_shimfd_floor();
		int moved = hr_real.fcntl(fd, F_DUPFD_CLOEXEC, floor > fd ? floor : 0);
		if (moved < 0)
			hr_warn("the app took fd %d, one of the library's, and no other number is "
				"free: it is lost",
				fd);
		int n = atomic_load(&hr_nrefs);
		for (int i = 0; i < n; i++)
			if (__atomic_load_n(hr_refs[i], __ATOMIC_ACQUIRE) == fd)
				__atomic_store_n(hr_refs[i], moved, __ATOMIC_RELEASE);
		if (moved >= 0) {
			atomic_store_explicit(&hr_fd_ids[moved],
					      atomic_load_explicit(&hr_fd_ids[fd], memory_order_relaxed),
					      memory_order_relaxed);
			hr_fd_set(moved, st);
		}
		hr_fd_set(fd, HR_FD_NONE);
	}
	pthread_mutex_unlock(&hr_shimfd_lock);
}

void hr_shimfd_after_fork_child(void)
{
	/* Only the forking thread exists now: the lock may be held by none. */
	pthread_mutex_init(&hr_shimfd_lock, NULL);
	pthread_mutex_init(&hr_refs_lock, NULL);
}
