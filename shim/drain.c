#include "drain.h"

#include "config.h"
#include "fdtable.h"
#include "gen.h"
#include "idle.h"
#include "libc.h"
#include "listeners.h"
#include "log.h"
#include "signals.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "inherit.h"

/* Threads in accept() or parked in it, by kernel tid. Sized from the
 * system's thread limit at first use, so no thread of the process can miss
 * a slot; MAP_NORESERVE leaves the pages of unused slots unallocated. */
struct hr_accept_slot {
	_Atomic pid_t tid;
	_Atomic int where; /* enum hr_accept_where */
};

static struct hr_accept_slot *hr_accept_slots;
static int hr_accept_cap;
static _Atomic int hr_accept_used; /* slots ever handed out: bounds the scans */

static __thread int hr_my_slot __attribute__((tls_model("initial-exec"))) = -1;
static pthread_key_t hr_slot_key;
static pthread_once_t hr_slot_once = PTHREAD_ONCE_INIT;

/* The waker repeats its signal to threads still in accept(): one that
 * checked the phase just before it changed may take the first signal
 * before it enters the kernel, and then blocks. It gives up once no thread
 * left accept() for a while (a thread that blocks the wake signal). */
#define HR_REWAKE_EVERY_MS 1
#define HR_REWAKE_STALL_MS 200

static void hr_slot_release(void *slot)
{
	atomic_store(&hr_accept_slots[(long)slot - 1].tid, 0);
}

static int hr_thread_limit(void)
{
	char buf[32];
	int fd = open("/proc/sys/kernel/threads-max", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		hr_real.close(fd);
	buf[n > 0 ? n : 0] = '\0';
	long limit = strtol(buf, NULL, 10);
	return limit < 4096 ? 4096 : limit > (1L << 22) ? 1 << 22 : (int)limit;
}

static void hr_slots_init(void)
{
	pthread_key_create(&hr_slot_key, hr_slot_release);
	int cap = hr_thread_limit();
	void *p = mmap(NULL, (size_t)cap * sizeof *hr_accept_slots, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return; /* threads then go unwoken, as without the shim */
	hr_accept_slots = p;
	hr_accept_cap = cap;
}

/* A free slot for tid: one a finished thread released, else a fresh one
 * (which a concurrent search may take first: then look again). */
static int hr_slot_claim(pid_t tid)
{
	for (;;) {
		int used = atomic_load(&hr_accept_used);
		for (int i = 0; i < used; i++) {
			pid_t none = 0;
			if (atomic_compare_exchange_strong(&hr_accept_slots[i].tid, &none, tid))
				return i;
		}
		if (used >= hr_accept_cap)
			return -1;
		atomic_compare_exchange_strong(&hr_accept_used, &used, used + 1);
	}
}

void hr_accept_enter(enum hr_accept_where where)
{
	if (hr_my_slot < 0) {
		pthread_once(&hr_slot_once, hr_slots_init);
		hr_signals_install_wake();
		if (!hr_accept_slots)
			return;
		hr_my_slot = hr_slot_claim((pid_t)hr_real.syscall(SYS_gettid));
		if (hr_my_slot < 0)
			return;
		pthread_setspecific(hr_slot_key, (void *)(long)(hr_my_slot + 1));
	}
	/* Sequentially consistent, as the waker's phase store: either the
	 * caller's next phase check sees the change, or the waker sees us. */
	atomic_store(&hr_accept_slots[hr_my_slot].where, where);
}

void hr_accept_leave(void)
{
	if (hr_my_slot >= 0)
		atomic_store(&hr_accept_slots[hr_my_slot].where, HR_IN_NOTHING);
}

/* Signals the threads of this process that are where; returns how many.
 * Async-signal-safe. */
static int hr_accept_signal(enum hr_accept_where where)
{
	int n = 0, used = atomic_load(&hr_accept_used);
	for (int i = 0; i < used; i++) {
		pid_t tid = atomic_load(&hr_accept_slots[i].tid);
		if (!tid || atomic_load(&hr_accept_slots[i].where) != (int)where)
			continue;
		siginfo_t si;
		memset(&si, 0, sizeof si);
		si.si_signo = hr_cfg.wake_signal;
		si.si_code = SI_QUEUE;
		si.si_pid = hr_self;
		si.si_uid = getuid();
		si.si_value.sival_int = HR_WAKE_MAGIC;
		hr_real.syscall(SYS_rt_tgsigqueueinfo, hr_self, tid, hr_cfg.wake_signal, &si);
		n++;
	}
	return n;
}

void hr_accept_wake_all(void)
{
	int left, before = INT_MAX, stalled_ms = 0;
	while ((left = hr_accept_signal(HR_IN_ACCEPT)) && stalled_ms < HR_REWAKE_STALL_MS) {
		stalled_ms = left < before ? 0 : stalled_ms + HR_REWAKE_EVERY_MS;
		before = left;
		hr_real.poll(NULL, 0, HR_REWAKE_EVERY_MS);
	}
}

void hr_accept_wake_parked(void)
{
	hr_accept_signal(HR_IN_PARK);
}

int hr_drain_close_idle(void)
{
	int closed = 0;
	int top = atomic_load(&hr_fds_hiwater);
	int overdue = hr_gen && atomic_load_explicit(&hr_gen->drain_overdue, memory_order_relaxed);
	for (int fd = 0; fd <= top; fd++) {
		uint32_t st = hr_fd_get(fd);
		if (hr_fd_kind(st) != HR_FD_CONN || (st & HR_FD_SHUT_READ) ||
		    ((st & HR_FD_INTERIM) && !overdue))
			continue;
		if (!hr_listeners_accepted_from(fd)) { /* closed unseen, maybe reused */
			hr_fd_set(fd, HR_FD_NONE);
			continue;
		}
		if (hr_idle_conn(fd, overdue) && hr_real.shutdown(fd, SHUT_RD) == 0) {
			hr_fd_or(fd, HR_FD_SHUT_READ);
			closed++;
		}
	}
	return closed;
}

void hr_drain_at_read(int fd)
{
	int saved = errno;
	uint32_t st = hr_fd_get(fd);
	if (hr_fd_kind(st) == HR_FD_CONN && !(st & (HR_FD_SHUT_READ | HR_FD_INTERIM)) &&
	    hr_listeners_accepted_from(fd) && hr_idle_conn_answered(fd) &&
	    hr_real.shutdown(fd, SHUT_RD) == 0)
		hr_fd_or(fd, HR_FD_SHUT_READ);
	errno = saved;
}

void hr_drain_after_fork_child(void)
{
	/* Only the forking thread exists in the child; it keeps its slot. */
	int used = atomic_load(&hr_accept_used);
	for (int i = 0; i < used; i++) {
		atomic_store(&hr_accept_slots[i].where, HR_IN_NOTHING);
		if (i != hr_my_slot)
			atomic_store(&hr_accept_slots[i].tid, 0);
	}
	if (hr_my_slot >= 0)
		atomic_store(&hr_accept_slots[hr_my_slot].tid, (pid_t)hr_real.syscall(SYS_gettid));
}

void hr_drain_remember_paths(void)
{
	int top = atomic_load(&hr_fds_hiwater);
	int n = 0;
	for (int fd = 0; fd <= top && n < HR_GEN_PATHS; fd++) {
		if (hr_fd_kind(hr_fd_get(fd)) != HR_FD_LISTENER)
			continue;
		struct sockaddr_un un;
		socklen_t len = sizeof un;
		memset(&un, 0, sizeof un);
		if (getsockname(fd, (struct sockaddr *)&un, &len) == 0 && un.sun_family == AF_UNIX &&
		    un.sun_path[0])
			memcpy(hr_gen->unix_paths[n++], un.sun_path, sizeof un.sun_path);
	}
	atomic_store(&hr_gen->n_unix_paths, n);
}

static int hr_is_listener_path(const char *path)
{
	int n = atomic_load(&hr_gen->n_unix_paths);
	for (int i = 0; i < n; i++)
		if (strcmp(hr_gen->unix_paths[i], path) == 0)
			return 1;
	return 0;
}

/* Whether pid is a process of this generation. */
static int hr_gen_member(long pid)
{
	for (int i = 0; i < HR_GEN_SLOTS; i++)
		if (atomic_load(&hr_gen->slots[i].pid) == pid && hr_gen_slot_live(&hr_gen->slots[i]))
			return 1;
	return pid == hr_self;
}

/* Whether the file holds nothing but the PID of a live process outside
 * this generation: a pid file the successor rewrote, which the old master
 * unlinks at exit (nginx). Temp files, uploads and queues do not look so. */
static int hr_names_successor(int dirfd, const char *path, const struct stat *st)
{
	char text[24];
	if (st->st_size <= 0 || st->st_size >= (off_t)sizeof text)
		return 0;
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, text, sizeof text - 1);
	hr_real.close(fd);
	if (n <= 0 || text[0] < '0' || text[0] > '9')
		return 0;
	text[n] = '\0';
	char *end;
	long pid = strtol(text, &end, 10);
	if (*end == '\n')
		end++;
	return *end == '\0' && pid > 0 && !hr_gen_member(pid) && hr_pid_alive((pid_t)pid);
}

int hr_drain_keeps_path(int dirfd, const char *path)
{
	if (!path)
		return 0;
	if (hr_inherit_holds_path(path)) {
		hr_info("kept %s: it is the inherited listener's socket", path);
		return 1;
	}
	if (hr_gen_phase() != HR_PHASE_DRAINING)
		return 0;
	struct stat st;
	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (S_ISSOCK(st.st_mode) && hr_is_listener_path(path)) {
		hr_info("kept %s: the successor listens there", path);
		return 1;
	}
	long long changed = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	if (S_ISREG(st.st_mode) && changed >= atomic_load(&hr_gen->upgrade_wall_ns) &&
	    hr_names_successor(dirfd, path, &st)) {
		hr_info("kept %s: the successor's pid file", path);
		return 1;
	}
	return 0;
}
