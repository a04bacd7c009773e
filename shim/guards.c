#include "guards.h"

#include "config.h"
#include "gen.h"
#include "libc.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int hr_guards_count;
static struct hr_old_proc hr_old[HR_GUARDS_MAX];

/* Reads an unsigned decimal number; returns the character after it, or
 * NULL when there is none or it exceeds max. */
static const char *hr_scan_number(const char *p, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;
	const char *start = p;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned digit = (unsigned)(*p - '0');
		if (v > (max - digit) / 10)
			return NULL;
		v = v * 10 + digit;
	}
	*out = v;
	return p == start ? NULL : p;
}

int hr_guards_parse(const char *text, struct hr_old_proc *out, int max, char *err, size_t errlen)
{
	int n = 0;
	const char *p = text;
	while (*p) {
		unsigned long long pid, start;
		const char *entry = p;
		p = hr_scan_number(p, INT_MAX, &pid);
		if (p && *p == ':')
			p = hr_scan_number(p + 1, ULLONG_MAX, &start);
		else
			p = NULL;
		if (!p || pid == 0 || (*p != ',' && *p != '\0') || (*p == ',' && p[1] == '\0')) {
			snprintf(err, errlen, "expected pid:starttime at \"%.40s\"", entry);
			return -1;
		}
		if (n == max) {
			snprintf(err, errlen, "more than %d processes", max);
			return -1;
		}
		out[n].pid = (pid_t)pid;
		out[n].start = start;
		n++;
		p += *p == ',';
	}
	return n;
}

void hr_guards_load(const char *text)
{
	char err[128];
	int n = hr_guards_parse(text, hr_old, HR_GUARDS_MAX, err, sizeof err);
	if (n < 0)
		hr_warn("%s: %s; ignored", HR_ENV_OLD_PIDS, err);
	hr_guards_count = n < 0 ? 0 : n;
}

/* Before the app and before the shim's constructor (priority 101): the
 * variable is gone from the environment the app and its children see. */
__attribute__((constructor(101))) static void hr_guards_init(void)
{
	const char *text = getenv(HR_ENV_OLD_PIDS);
	if (!text)
		return;
	hr_guards_load(text);
	unsetenv(HR_ENV_OLD_PIDS);
}

/* Reads a small /proc or pid file through libc itself (never the hooks,
 * which call in here). Returns the length read, NUL-terminated, or -1. */
static ssize_t hr_read_small(int dirfd, const char *path, char *buf, size_t size)
{
	hr_libc_init();
	int fd = hr_real.openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, buf, size - 1, 0);
	hr_real.close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

int hr_proc_start_time(pid_t pid, unsigned long long *start)
{
	char path[32], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (hr_read_small(AT_FDCWD, path, buf, sizeof buf) <= 0)
		return -1;
	/* Fields follow the last ')' (the command name may hold one); the
	 * state is field 3, the start time field 22. */
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	return p && hr_scan_number(p + 1, ULLONG_MAX, start) ? 0 : -1;
}

int hr_guards_is_old(pid_t pid)
{
	for (int i = 0; i < hr_guards_count; i++) {
		if (hr_old[i].pid != pid)
			continue;
		unsigned long long start;
		return hr_proc_start_time(pid, &start) == 0 && start == hr_old[i].start;
	}
	return 0;
}

int hr_guards_hides_pid(pid_t pid, int sig)
{
	if (pid <= 0 || !hr_guards_is_old(pid))
		return 0;
	if (sig)
		hr_info("signal %d to pid %d not sent: that process belongs to the previous "
			"generation, which hotrestart drains and stops", sig, (int)pid);
	else
		hr_debug("pid %d reported gone: it belongs to the previous generation", (int)pid);
	return 1;
}

int hr_guards_hides_proc_path(const char *path)
{
	unsigned long long pid;
	const char *end = hr_scan_number(path + 6, INT_MAX, &pid);
	if (!end || path[6] == '0' || (*end != '\0' && *end != '/'))
		return 0;
	return hr_guards_is_old((pid_t)pid);
}

int hr_guards_group_kill(pid_t pgrp, int sig)
{
	int sent = 0;
	for (int i = 0; i < HR_GEN_SLOTS; i++) {
		pid_t pid = atomic_load(&hr_gen->slots[i].pid);
		if (pid && hr_gen_slot_live(&hr_gen->slots[i]) && getpgid(pid) == pgrp &&
		    hr_real.kill(pid, sig) == 0)
			sent++;
	}
	hr_info("signal %d to process group %d sent to this generation's %d process%s only: "
		"the successor shares the group", sig, (int)pgrp, sent, sent == 1 ? "" : "es");
	if (!sent) {
		errno = ESRCH;
		return -1;
	}
	return 0;
}

/* The PID a pid file holds ("1234", blanks around it), or 0. */
static pid_t hr_pid_in_text(const char *text)
{
	unsigned long long pid;
	text += strspn(text, " \t\n");
	const char *end = hr_scan_number(text, INT_MAX, &pid);
	if (!end || end[strspn(end, " \t\n")] != '\0')
		return 0;
	return (pid_t)pid;
}

/* The older generation's PID that the file open at fd holds, or 0. An fd
 * opened write-only is read through /proc/self/fd. */
static pid_t hr_old_pid_in_fd(int fd)
{
	char buf[32], path[40];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n < 0) {
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		hr_libc_init();
		int rd = hr_real.openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (rd < 0)
			return 0;
		n = pread(rd, buf, sizeof buf - 1, 0);
		hr_real.close(rd);
	}
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid_t pid = hr_pid_in_text(buf);
	return pid > 0 && hr_guards_is_old(pid) ? pid : 0;
}

/* After O_CREAT|O_EXCL met an existing file: if it is a regular file that
 * holds an older generation's PID, unlinks it and creates the file again.
 * The old file stays open until then, so the new one cannot get its inode
 * number back: the old generation's later unlink sees a file that is no
 * longer its own and leaves it alone (drain.c). */
static int hr_take_over_pid_file(int dirfd, const char *path, int flags, mode_t mode)
{
	int fd = -1, old = hr_real.openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat at_fd, at_path;
	pid_t owner = old < 0 ? 0 : hr_old_pid_in_fd(old);
	if (owner && fstat(old, &at_fd) == 0 && S_ISREG(at_fd.st_mode) &&
	    fstatat(dirfd, path, &at_path, AT_SYMLINK_NOFOLLOW) == 0 &&
	    at_fd.st_dev == at_path.st_dev && at_fd.st_ino == at_path.st_ino &&
	    hr_real.unlinkat(dirfd, path, 0) == 0) {
		fd = hr_real.openat(dirfd, path, flags, mode);
		if (fd >= 0)
			hr_info("took over pid file %s from the previous generation (pid %d)", path,
				(int)owner);
	} else {
		errno = EEXIST;
	}
	if (old >= 0) {
		int saved = errno;
		hr_real.close(old);
		errno = saved;
	}
	return fd;
}

int hr_guards_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	if (hr_guards_hides_path(path)) {
		errno = ENOENT;
		return -1;
	}
	int fd = hr_real.openat(dirfd, path, flags, mode);
	if (fd < 0 && errno == EEXIST && (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		fd = hr_take_over_pid_file(dirfd, path, flags, mode);
	return fd;
}

/* A lock the successor was told it holds, taken for real in the background. */
struct hr_lock_waiter {
	int fd;
	int cmd;	  /* F_SETLKW or F_OFD_SETLKW; 0 for flock() */
	int op;		  /* flock(): LOCK_SH or LOCK_EX, blocking */
	struct flock fl;  /* fcntl(): the range, from the start of the file */
	pid_t owner;	  /* the older generation's PID the file holds */
};

/* Waits in the kernel's queue for the lock, on the app's own fd (for
 * process locks the kernel drops the lock and says EBADF when the app
 * closed the fd meanwhile; for flock and OFD locks the open file
 * description holds it). Exits once the wait is over. */
static void *hr_lock_waiter_run(void *arg)
{
	struct hr_lock_waiter *w = arg;
	int r;
	do
		r = w->cmd ? hr_real.fcntl(w->fd, w->cmd, &w->fl) : hr_real.flock(w->fd, w->op);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		hr_info("fd %d: now holds the lock the previous generation (pid %d) held", w->fd,
			(int)w->owner);
	else
		hr_info("fd %d: stopped waiting for the previous generation's lock: %s", w->fd,
			strerror(errno));
	free(w);
	return NULL;
}

/* Starts a detached waiter with every signal blocked (the app's signals
 * are for its own threads). Returns 0 or -1. */
static int hr_lock_waiter_start(const struct hr_lock_waiter *tmpl)
{
	struct hr_lock_waiter *w = malloc(sizeof *w);
	if (!w)
		return -1;
	*w = *tmpl;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 128 * 1024);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t thread;
	int e = pthread_create(&thread, &attr, hr_lock_waiter_run, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (e) {
		free(w);
		return -1;
	}
	return 0;
}

/* The waiter asks later, when the file offset may have moved. */
static int hr_lock_range_absolute(int fd, struct flock *fl)
{
	off_t base = 0;
	struct stat st;
	if (fl->l_whence == SEEK_CUR)
		base = lseek(fd, 0, SEEK_CUR);
	else if (fl->l_whence == SEEK_END)
		base = fstat(fd, &st) == 0 ? st.st_size : -1;
	if (base < 0)
		return -1;
	fl->l_start += base;
	fl->l_whence = SEEK_SET;
	fl->l_pid = 0;
	return 0;
}

int hr_guards_fcntl_lock(int fd, int cmd, struct flock *fl)
{
	if (!fl || fl->l_type == F_UNLCK)
		return hr_real.fcntl(fd, cmd, fl);
	int ofd = cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
	int blocking = cmd == F_SETLKW || cmd == F_OFD_SETLKW;
	int r = hr_real.fcntl(fd, ofd ? F_OFD_SETLK : F_SETLK, fl);
	if (r == 0 || (errno != EAGAIN && errno != EACCES))
		return r;
	int busy = errno;
	struct hr_lock_waiter w = { .fd = fd, .cmd = ofd ? F_OFD_SETLKW : F_SETLKW, .fl = *fl };
	if (hr_lock_range_absolute(fd, &w.fl) == 0 && (w.owner = hr_old_pid_in_fd(fd))) {
		/* A process lock names its holder: it must be of an older
		 * generation too (OFD locks name none). */
		struct flock holder = w.fl;
		if (!ofd && hr_real.fcntl(fd, F_GETLK, &holder) == 0) {
			if (holder.l_type == F_UNLCK) /* released meanwhile */
				return hr_real.fcntl(fd, cmd, fl);
			if (!hr_guards_is_old(holder.l_pid))
				w.owner = 0;
		}
		if (w.owner && hr_lock_waiter_start(&w) == 0) {
			hr_info("fd %d: lock held by the previous generation (pid %d) granted; "
				"taken for real when it exits", fd, (int)w.owner);
			return 0;
		}
	}
	if (blocking)
		return hr_real.fcntl(fd, cmd, fl);
	errno = busy;
	return -1;
}

int hr_guards_flock(int fd, int op)
{
	if (!(op & (LOCK_SH | LOCK_EX)))
		return hr_real.flock(fd, op);
	int r = hr_real.flock(fd, op | LOCK_NB);
	if (r == 0 || errno != EWOULDBLOCK)
		return r;
	struct hr_lock_waiter w = { .fd = fd, .op = op & ~LOCK_NB };
	if ((w.owner = hr_old_pid_in_fd(fd)) && hr_lock_waiter_start(&w) == 0) {
		hr_info("fd %d: flock held by the previous generation (pid %d) granted; "
			"taken for real when it exits", fd, (int)w.owner);
		return 0;
	}
	if (!(op & LOCK_NB))
		return hr_real.flock(fd, op);
	errno = EWOULDBLOCK;
	return -1;
}

int hr_guards_lockf(int fd, int cmd, off_t len)
{
	if (cmd != F_LOCK && cmd != F_TLOCK)
		return hr_real.lockf(fd, cmd, len);
	/* What glibc's lockf() asks of fcntl(). */
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_CUR, .l_start = 0, .l_len = len };
	return hr_guards_fcntl_lock(fd, cmd == F_LOCK ? F_SETLKW : F_SETLK, &fl);
}

/* Appends ",pid:start" (no comma first) when pid is alive. */
static size_t hr_append_proc(char *buf, size_t len, size_t cap, int first, pid_t pid)
{
	unsigned long long start;
	if (pid <= 0 || hr_proc_start_time(pid, &start) < 0)
		return len;
	int n = snprintf(buf + len, cap - len, "%s%d:%llu", first ? "" : ",", (int)pid, start);
	return n > 0 && (size_t)n < cap - len ? len + (size_t)n : len;
}

char *hr_guards_old_pids_var(void)
{
	static const char name[] = HR_ENV_OLD_PIDS "=";
	size_t cap = sizeof name + (size_t)(1 + HR_GEN_SLOTS + hr_guards_count) * 32;
	char *var = malloc(cap);
	if (!var)
		return NULL;
	memcpy(var, name, sizeof name);
	size_t head = sizeof name - 1, len = head;
	pid_t self = getpid();
	len = hr_append_proc(var, len, cap, 1, self);
	for (int i = 0; hr_gen && i < HR_GEN_SLOTS; i++) {
		pid_t pid = atomic_load(&hr_gen->slots[i].pid);
		if (pid != self)
			len = hr_append_proc(var, len, cap, len == head, pid);
	}
	for (int i = 0; i < hr_guards_count; i++)
		if (hr_guards_is_old(hr_old[i].pid))
			len = hr_append_proc(var, len, cap, len == head, hr_old[i].pid);
	return var;
}
