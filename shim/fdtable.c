#include "fdtable.h"

#include <stddef.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

_Atomic uint32_t *hr_fds;
_Atomic uint64_t *hr_fd_ids;
int hr_fds_size;
_Atomic int hr_fds_hiwater = -1;
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

void hr_fd_remember_id(int fd)
{
	struct stat st;
	atomic_store_explicit(&hr_fd_ids[fd], fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0,
			      memory_order_relaxed);
}

void hr_fd_raise_hiwater(int fd)
{
	int seen = atomic_load_explicit(&hr_fds_hiwater, memory_order_relaxed);
	while (fd > seen &&
	       !atomic_compare_exchange_weak_explicit(&hr_fds_hiwater, &seen, fd,
						      memory_order_relaxed, memory_order_relaxed))
		;
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
