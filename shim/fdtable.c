#include "fdtable.h"

#include <stddef.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

_Atomic uint32_t *hr_fds;
_Atomic uint64_t *hr_fd_ids;
int hr_fds_size;
_Atomic int hr_fds_hiwater = -1;
_Atomic int hr_listener_fd_top = -1;
_Atomic uint32_t *hr_fd_stamps;

/* Sized from the hard fd limit so an app that raises its soft limit stays
 * covered; MAP_NORESERVE keeps untouched pages free. */
void hr_fdtable_init(void)
{
	struct rlimit rl;
	rlim_t size = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    rl.rlim_max > size)
		size = rl.rlim_max;
	if (size > (1u << 20))
		size = 1u << 20;
	void *p = mmap(NULL, size * sizeof(uint32_t), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *ids = mmap(NULL, size * sizeof(uint64_t), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *stamps = mmap(NULL, size * sizeof(uint32_t), PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED || ids == MAP_FAILED || stamps == MAP_FAILED) {
		if (p != MAP_FAILED)
			munmap(p, size * sizeof(uint32_t));
		if (ids != MAP_FAILED)
			munmap(ids, size * sizeof(uint64_t));
		if (stamps != MAP_FAILED)
			munmap(stamps, size * sizeof(uint32_t));
		return; /* every fd then passes through untracked */
	}
	hr_fds = p;
	hr_fd_ids = ids;
	hr_fd_stamps = stamps;
	hr_fds_size = (int)size;
}

static void hr_fd_raise(_Atomic int *mark, int fd)
{
	int seen = atomic_load_explicit(mark, memory_order_relaxed);
	while (fd > seen && !atomic_compare_exchange_weak_explicit(mark, &seen, fd, memory_order_relaxed,
								   memory_order_relaxed))
		;
}

void hr_fd_note_listener(int fd)
{
	hr_fd_raise(&hr_listener_fd_top, fd);
	struct stat st;
	atomic_store_explicit(&hr_fd_ids[fd], fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0,
			      memory_order_relaxed);
}

void hr_fd_raise_hiwater(int fd)
{
	hr_fd_raise(&hr_fds_hiwater, fd);
}

int hr_fd_set_accepted_high(int fd, uint32_t state)
{
	if (fd >= hr_fds_size) {
		hr_gen_conn_add(-1); /* untracked: never uncounted at close */
		return fd;
	}
	/* Raised first: a drain's scan up to the mark sees the entry. */
	hr_fd_raise_hiwater(fd);
	hr_fd_set_accepted(fd, state);
	return fd;
}

int hr_fd_same(int fd)
{
	if (fd < 0 || fd >= hr_fds_size)
		return 0;
	uint64_t id = atomic_load_explicit(&hr_fd_ids[fd], memory_order_relaxed);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return 0;
	return !id || (uint64_t)st.st_ino == id;
}
