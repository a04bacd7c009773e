#include "children.h"

#include "fdtable.h"
#include "gen.h"
#include "libc.h"
#include "shimfds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static _Atomic pid_t hr_successor;
static _Atomic int hr_successor_done;
static siginfo_t hr_successor_exit;
/* Our own handle on the successor: tells, without a PID-reuse race, when
 * the agent reaped it (a failed upgrade) rather than a wait hook. */
static _Atomic int hr_successor_pidfd = -1;

static void hr_successor_forget(void)
{
	atomic_store(&hr_successor_done, 1);
	int fd = atomic_exchange(&hr_successor_pidfd, -1);
	if (fd >= 0) {
		hr_fd_set(fd, HR_FD_NONE);
		hr_real.close(fd);
	}
}

void hr_children_adopt(pid_t pid)
{
	hr_successor_forget();
	int fd = hr_shimfd_high((int)hr_real.syscall(SYS_pidfd_open, pid, 0));
	if (fd >= 0)
		hr_fd_set(fd, HR_FD_SHIM);
	atomic_store(&hr_successor_pidfd, fd);
	hr_shimfd_ref((int *)&hr_successor_pidfd); /* same layout as int */
	atomic_store(&hr_successor, pid);
	atomic_store(&hr_successor_done, 0);
}

/* Whether the successor is gone from our children: reaped elsewhere. */
static int hr_successor_reaped(void)
{
	int fd = atomic_load(&hr_successor_pidfd);
	siginfo_t si;
	if (fd < 0 || hr_real.waitid((idtype_t)P_PIDFD, (id_t)fd, &si,
				     WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) == 0 ||
	    errno != ECHILD)
		return 0;
	hr_successor_forget();
	return 1;
}

int hr_children_collected(pid_t pid, siginfo_t *si)
{
	if (!atomic_load(&hr_successor_done) || atomic_load(&hr_successor) != pid)
		return 0;
	*si = hr_successor_exit;
	return 1;
}

int hr_children_concerns(idtype_t idtype, id_t id)
{
	pid_t s = atomic_load(&hr_successor);
	if (!s || atomic_load(&hr_successor_done) || hr_self != getpid())
		return 0;
	if (!(idtype == P_ALL || (idtype == P_PGID && (id == 0 || (pid_t)id == getpgrp()))))
		return 0;
	int saved = errno;
	int reaped = hr_successor_reaped();
	errno = saved;
	return !reaped;
}

/* Whether this process has a child other than the successor. No malloc:
 * wait() is often called from the app's SIGCHLD handler. */
static int hr_has_app_children(pid_t successor)
{
	char path[64], buf[4096];
	long dirbuf[1024];
	int dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int found = 0;
	if (dir < 0)
		return 1; /* cannot tell: let the real wait decide */
	for (;;) {
		long n = hr_real.syscall(SYS_getdents64, dir, dirbuf, sizeof dirbuf);
		if (n <= 0 || found)
			break;
		for (long off = 0; off < n && !found;) {
			struct linux_dirent64_view {
				unsigned long long ino;
				long long off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *e = (void *)((char *)dirbuf + off);
			off += e->reclen;
			if (e->name[0] == '.' || strlen(e->name) > 20)
				continue;
			strcpy(path, "/proc/self/task/");
			strcat(path, e->name);
			strcat(path, "/children");
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				found = 1;
				break;
			}
			ssize_t len = read(fd, buf, sizeof buf - 1);
			hr_real.close(fd);
			if (len <= 0)
				continue;
			buf[len] = '\0';
			for (char *p = buf; *p;) {
				char *end;
				long pid = strtol(p, &end, 10);
				if (end == p)
					break;
				if (pid != successor)
					found = 1;
				p = end;
				while (*p == ' ')
					p++;
			}
		}
	}
	hr_real.close(dir);
	return found;
}

pid_t hr_children_wait_any(idtype_t idtype, id_t id, int *status, siginfo_t *info, int options,
			   struct rusage *ru, int use_waitid)
{
	pid_t successor = atomic_load(&hr_successor);
	/* waitpid()-style options: WUNTRACED is WSTOPPED; WEXITED is implied. */
	int events = use_waitid ? options & (WEXITED | WSTOPPED | WCONTINUED)
				: WEXITED | (options & (WUNTRACED | WCONTINUED));
	int extra = options & (__WALL | __WCLONE | __WNOTHREAD);
	for (;;) {
		siginfo_t peek;
		memset(&peek, 0, sizeof peek);
		/* Look without reaping. A blocking wait with no child of the
		 * app's own left gets ECHILD, as if the successor were not ours. */
		int block = !(options & WNOHANG);
		if (block && !hr_has_app_children(successor)) {
			errno = ECHILD;
			return -1;
		}
		int r = hr_real.waitid(idtype, id, &peek,
				       events | extra | WNOWAIT | (block ? 0 : WNOHANG));
		if (r < 0)
			return -1;
		if (peek.si_pid == 0) { /* WNOHANG and nothing ready */
			if (info)
				memset(info, 0, sizeof *info);
			return 0;
		}
		if (peek.si_pid == successor && (peek.si_code == CLD_EXITED ||
						 peek.si_code == CLD_KILLED ||
						 peek.si_code == CLD_DUMPED)) {
			/* Ours: collect it for the agent and look again. */
			hr_real.waitid(P_PID, (id_t)successor, &hr_successor_exit, WEXITED | __WALL);
			hr_successor_forget();
			continue;
		}
		if (peek.si_pid == successor) {
			/* A stop or continue event of ours is not the app's either. */
			hr_real.waitid(P_PID, (id_t)successor, &peek, events | __WALL | WNOHANG);
			continue;
		}
		/* The app's child: reap exactly that one, as the app asked. */
		if (use_waitid)
			return hr_real.waitid(P_PID, (id_t)peek.si_pid, info, options | WNOHANG);
		pid_t got = hr_real.wait4(peek.si_pid, status, options | WNOHANG, ru);
		if (got != 0)
			return got;
	}
}
