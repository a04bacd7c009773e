#include "drain.h"

#include "config.h"
#include "fdtable.h"
#include "gen.h"
#include "libc.h"
#include "log.h"
#include "signals.h"

#include <errno.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "inherit.h"

#define HR_ACCEPT_SLOTS 4096

/* Threads that may sit in a blocking accept(), by kernel tid. */
static struct {
	_Atomic pid_t tid;
	_Atomic int inside;
} hr_accept_slots[HR_ACCEPT_SLOTS];

static __thread int hr_my_slot __attribute__((tls_model("initial-exec"))) = -1;
static pthread_key_t hr_slot_key;
static pthread_once_t hr_slot_once = PTHREAD_ONCE_INIT;

static void hr_slot_release(void *slot)
{
	atomic_store(&hr_accept_slots[(long)slot - 1].tid, 0);
}

static void hr_slot_key_init(void)
{
	pthread_key_create(&hr_slot_key, hr_slot_release);
}

void hr_accept_enter(void)
{
	if (hr_my_slot < 0) {
		pthread_once(&hr_slot_once, hr_slot_key_init);
		hr_signals_install_wake();
		pid_t tid = (pid_t)hr_real.syscall(SYS_gettid);
		for (int i = 0; i < HR_ACCEPT_SLOTS && hr_my_slot < 0; i++) {
			pid_t none = 0;
			if (atomic_compare_exchange_strong(&hr_accept_slots[i].tid, &none, tid)) {
				hr_my_slot = i;
				pthread_setspecific(hr_slot_key, (void *)(long)(i + 1));
			}
		}
		if (hr_my_slot < 0)
			return;
	}
	atomic_store(&hr_accept_slots[hr_my_slot].inside, 1);
}

void hr_accept_leave(void)
{
	if (hr_my_slot >= 0)
		atomic_store(&hr_accept_slots[hr_my_slot].inside, 0);
}

void hr_accept_wake_all(void)
{
	for (int i = 0; i < HR_ACCEPT_SLOTS; i++) {
		pid_t tid = atomic_load(&hr_accept_slots[i].tid);
		if (!tid || !atomic_load(&hr_accept_slots[i].inside))
			continue;
		siginfo_t si;
		memset(&si, 0, sizeof si);
		si.si_signo = hr_cfg.wake_signal;
		si.si_code = SI_QUEUE;
		si.si_pid = hr_self;
		si.si_uid = getuid();
		si.si_value.sival_int = HR_WAKE_MAGIC;
		hr_real.syscall(SYS_rt_tgsigqueueinfo, hr_self, tid, hr_cfg.wake_signal, &si);
	}
}

int hr_park(void)
{
	for (;;) {
		if (hr_real.poll(NULL, 0, -1) < 0 && errno == EINTR && !hr_app_restarts_syscalls())
			return -1;
	}
}

/* Idle: something was exchanged, the app wrote after it last received
 * (it answered), and no new input is queued. Shutting down the read side
 * then only turns the app's next wait for input into end of file: input
 * that arrives is still read, answers are still written in full. A request
 * that races the shutdown meets a closed connection before any byte of its
 * answer, which HTTP clients retry on a reused connection. */
static int hr_conn_idle(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	memset(&ti, 0, sizeof ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) {
		if (errno == EBADF || errno == ENOTSOCK)
			hr_fd_set(fd, HR_FD_NONE); /* closed behind our back */
		return 0;
	}
	if (ti.tcpi_state != 1 /* TCP_ESTABLISHED */ || ti.tcpi_bytes_received == 0 ||
	    ti.tcpi_bytes_acked == 0 || ti.tcpi_last_data_recv < ti.tcpi_last_data_sent)
		return 0;
	int queued = 0;
	return hr_real.ioctl(fd, FIONREAD, &queued) == 0 && queued == 0;
}

int hr_drain_close_idle(void)
{
	int closed = 0;
	int top = atomic_load(&hr_fds_hiwater);
	for (int fd = 0; fd <= top; fd++) {
		uint32_t st = hr_fd_get(fd);
		if (hr_fd_kind(st) != HR_FD_CONN || (st & HR_FD_SHUT_READ))
			continue;
		if (!hr_fd_same(fd)) { /* closed unseen, maybe reused: not ours */
			hr_fd_set(fd, HR_FD_NONE);
			continue;
		}
		if (hr_conn_idle(fd) && hr_real.shutdown(fd, SHUT_RD) == 0) {
			hr_fd_or(fd, HR_FD_SHUT_READ);
			closed++;
		}
	}
	return closed;
}

void hr_drain_after_fork_child(void)
{
	/* Only the forking thread exists in the child; it keeps its slot. */
	for (int i = 0; i < HR_ACCEPT_SLOTS; i++) {
		atomic_store(&hr_accept_slots[i].inside, 0);
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
		if (atomic_load(&hr_gen->slots[i].pid) == pid)
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
