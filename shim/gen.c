#include "gen.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "fdtable.h"
#include <unistd.h>

#include "libc.h"
#include "shimfds.h"

struct hr_gen *hr_gen;
pid_t hr_self;
pid_t hr_parent_at_fork;
/* Where a process counts that found no free slot (more than HR_GEN_SLOTS
 * in one generation, or no region): nobody reads it, and hr_slot is never
 * NULL, so the hooks' counts need no test. */
static struct hr_gen_slot hr_no_slot;
struct hr_gen_slot *hr_slot = &hr_no_slot;
int hr_wake_fd = -1;
struct hr_gen_view hr_view __attribute__((aligned(4096))) = {.phase = HR_PHASE_STOPPING};
/* The region's first page mapped once more, to be moved over hr_view. */
static void *hr_view_page;

/* Reads /proc/PID/stat into buf; returns what follows the command name
 * (its last ')': the name may hold one), or NULL. Async-signal-safe. */
static const char *hr_proc_stat_fields(pid_t pid, char *buf, size_t len)
{
	char path[40] = "/proc/", digits[16];
	int o = 6, nd = 0;
	for (unsigned v = (unsigned)pid; v || !nd; v /= 10)
		digits[nd++] = (char)('0' + v % 10);
	while (nd)
		path[o++] = digits[--nd];
	memcpy(path + o, "/stat", 6);
	/* libc's own calls: the hooks (a successor's guards) are not for this. */
	int fd = hr_real.openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = hr_real.read(fd, buf, len - 1);
	hr_real.close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	const char *paren = strrchr(buf, ')');
	return paren ? paren + 1 : NULL;
}

/* Field 22 of /proc/PID/stat, the start time; 0 when unreadable.
 * Async-signal-safe. */
static unsigned long long hr_proc_start(pid_t pid)
{
	char buf[512];
	const char *p = hr_proc_stat_fields(pid, buf, sizeof buf);
	if (!p)
		return 0;
	for (int field = 2; field < 22 && *p; p++) /* the state is field 3 */
		if (*p == ' ')
			field++;
	unsigned long long v = 0;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (unsigned long long)(*p++ - '0');
	return v;
}

int hr_gen_slot_live(const struct hr_gen_slot *slot)
{
	pid_t pid = atomic_load(&slot->pid);
	if (pid <= 0)
		return 0;
	if (pid == hr_self)
		return 1;
	unsigned long long start = atomic_load(&slot->start);
	return hr_pid_alive(pid) && (!start || hr_proc_start(pid) == start);
}

/* Claims a slot whose process is gone. Async-signal-safe (fork child). */
static struct hr_gen_slot *hr_gen_claim_slot(pid_t pid)
{
	/* A process that exec'd itself (same PID, same region) keeps its slot. */
	unsigned long long start = hr_proc_start(pid);
	for (int i = 0; i < HR_GEN_SLOTS; i++) {
		struct hr_gen_slot *s = &hr_gen->slots[i];
		if (atomic_load(&s->pid) == pid) {
			atomic_store(&s->start, start); /* an exec'd image or a reused PID */
			return s;
		}
	}
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < HR_GEN_SLOTS; i++) {
			struct hr_gen_slot *s = &hr_gen->slots[i];
			pid_t cur = atomic_load(&s->pid);
			if (cur == 0 || (pass == 1 && !hr_gen_slot_live(s))) {
				if (atomic_compare_exchange_strong(&s->pid, &cur, pid)) {
					atomic_store(&s->start, start);
					return s;
				}
			}
		}
	return NULL;
}

int hr_gen_init(int region_fd, int wake_fd)
{
	hr_self = getpid();
	/* Under a keeper the region is its memfd, so it reads the counts and
	 * sets the phase; otherwise an anonymous mapping forks share. */
	void *p = region_fd >= 0 ? mmap(NULL, sizeof(struct hr_gen), PROT_READ | PROT_WRITE,
					MAP_SHARED, region_fd, 0)
				 : mmap(NULL, sizeof(struct hr_gen), PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (region_fd >= 0)
		hr_fd_set(region_fd, HR_FD_SHIM); /* kept for exec'd workers */
	if (p == MAP_FAILED)
		return -1;
	if (region_fd >= 0 && sysconf(_SC_PAGESIZE) == (long)sizeof hr_view) {
		void *view = mmap(NULL, sizeof hr_view, PROT_READ, MAP_SHARED, region_fd, 0);
		hr_view_page = view == MAP_FAILED ? NULL : view;
	}
	hr_gen = p;
	int wake = wake_fd >= 0 ? wake_fd : hr_shimfd_high(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	atomic_store(&hr_gen->wake_fd, wake);
	hr_wake_fd = wake;
	hr_shimfd_ref(&hr_wake_fd);
	if (wake >= 0)
		hr_fd_set(wake, HR_FD_SHIM);
	struct hr_gen_slot *slot = hr_gen_claim_slot(hr_self);
	hr_slot = slot ? slot : &hr_no_slot;
	/* A fresh image: whatever a previous one counted is gone. */
	atomic_store(&hr_slot->conns, 0);
	atomic_store(&hr_slot->accepting, 0);
	return 0;
}

int hr_gen_view_live(void)
{
	if (!hr_view_page)
		return -1;
	if (mremap(hr_view_page, sizeof hr_view, sizeof hr_view, MREMAP_MAYMOVE | MREMAP_FIXED,
		   &hr_view) == MAP_FAILED)
		return -1;
	hr_view_page = NULL;
	return 0;
}

void hr_gen_after_fork_child(void)
{
	hr_parent_at_fork = hr_self;
	hr_self = getpid();
	if (!hr_gen)
		return;
	/* The child holds copies of the connection fds its table says it has
	 * (not the parent's count, which the parent keeps changing). */
	long inherited = 0;
	int top = atomic_load(&hr_fds_hiwater);
	for (int fd = 0; fd <= top && fd < hr_fds_size; fd++)
		inherited += hr_fd_kind(hr_fd_get(fd)) == HR_FD_CONN;
	struct hr_gen_slot *slot = hr_gen_claim_slot(hr_self);
	hr_slot = slot ? slot : &hr_no_slot;
	atomic_store(&hr_slot->conns, inherited);
	atomic_store(&hr_slot->accepting, 0);
}

int hr_pid_alive(pid_t pid)
{
	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return 0;
	char buf[512];
	const char *state = hr_proc_stat_fields(pid, buf, sizeof buf);
	return !(state && state[0] == ' ' && (state[1] == 'Z' || state[1] == 'X'));
}

long hr_gen_count(int with_accepts)
{
	long total = 0;
	for (int i = 0; i < HR_GEN_SLOTS; i++) {
		struct hr_gen_slot *s = &hr_gen->slots[i];
		/* accepting first: an accept() under way counts its connection
		 * before it stops counting itself, so one of the two is seen. */
		long n = with_accepts ? atomic_load(&s->accepting) : 0;
		n += atomic_load(&s->conns);
		if (n > 0 && hr_gen_slot_live(s))
			total += n;
	}
	return total;
}

void hr_gen_kill_others(int sig)
{
	for (int i = 0; i < HR_GEN_SLOTS; i++) {
		const struct hr_gen_slot *s = &hr_gen->slots[i];
		pid_t pid = atomic_load(&s->pid);
		if (pid <= 0 || pid == hr_self)
			continue;
		/* The pidfd first, the proof after: a PID reused in between
		 * fails the proof, and the signal goes to what was proven. */
		int pidfd = (int)hr_real.syscall(SYS_pidfd_open, pid, 0);
		if (pidfd < 0)
			continue;
		if (hr_gen_slot_live(s))
			hr_real.syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
		hr_real.close(pidfd);
	}
}

void hr_gen_note_exit(void)
{
	if (hr_is_owner() && hr_gen_accepting())
		atomic_store(&hr_gen->owner_leaving, 1);
}
