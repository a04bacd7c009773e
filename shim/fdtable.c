#include "fdtable.h"

#include "gen.h"

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

static uint64_t hr_fd_inode(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static void hr_fd_raise_hiwater(int fd)
{
	int seen = atomic_load_explicit(&hr_fds_hiwater, memory_order_relaxed);
	while (fd > seen &&
	       !atomic_compare_exchange_weak_explicit(&hr_fds_hiwater, &seen, fd,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

uint32_t hr_fd_set(int fd, uint32_t state)
{
	if (fd < 0 || fd >= hr_fds_size)
		return 0;
	if (state)
		hr_fd_raise_hiwater(fd);
	/* Stored before the state, so whoever sees the kind sees its identity. */
	unsigned kind = hr_fd_kind(state);
	if (kind == HR_FD_CONN || kind == HR_FD_LISTENER)
		atomic_store_explicit(&hr_fd_ids[fd], hr_fd_inode(fd), memory_order_relaxed);
	uint32_t old = atomic_exchange_explicit(&hr_fds[fd], state, memory_order_acq_rel);
	int delta = (hr_fd_kind(state) == HR_FD_CONN) - (hr_fd_kind(old) == HR_FD_CONN);
	if (delta)
		hr_gen_conn_add(delta);
	return old;
}

void hr_fd_or(int fd, uint32_t bits)
{
	if (fd >= 0 && fd < hr_fds_size)
		atomic_fetch_or_explicit(&hr_fds[fd], bits, memory_order_acq_rel);
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

void hr_fd_clear(int fd, uint32_t bits)
{
	if (fd >= 0 && fd < hr_fds_size)
		atomic_fetch_and_explicit(&hr_fds[fd], ~bits, memory_order_acq_rel);
}
