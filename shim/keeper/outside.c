/* Another process's fds, seen and copied from outside it: pidfd_getfd
 * gives the keeper the very same open file (a copied listener is the same
 * socket, with the same accept queue), /proc tells which sockets listen.
 * Callers pass only processes proven to be the service's. */
#include "keeper.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HK_SOCKETS_LOOKED_AT 512 /* per process and look: bounded work */

/* The process (thread group) of thread tid: seccomp names the thread. */
pid_t hk_proc_tgid(pid_t tid)
{
	char path[64], line[128];
	snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	pid_t tgid = 0;
	while (!tgid && fgets(line, sizeof line, f))
		if (strncmp(line, "Tgid:", 5) == 0)
			tgid = (pid_t)atoi(line + 5);
	fclose(f);
	return tgid;
}

/* A close-on-exec copy of fd of process pid, or -1. */
int hk_outside_fd(pid_t pid, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -1;
	int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	return copy;
}

/* Whether fd of pid is close-on-exec (the "flags:" of its fdinfo, octal). */
bool hk_outside_cloexec(pid_t pid, int fd)
{
	char path[64], line[128];
	snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)pid, fd);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	unsigned long flags = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "flags: %lo", &flags) == 1)
			break;
	fclose(f);
	return (flags & O_CLOEXEC) != 0;
}

static bool hk_held_inode(unsigned long ino)
{
	for (int i = 0; i < K.n_listeners; i++)
		if (K.listeners[i].ino == ino)
			return true;
	return false;
}

/* Whether socket fd of pid listens: a listener the keeper holds does;
 * another socket is asked on a copy (SO_ACCEPTCONN), which costs a few
 * system calls per socket, not a read of the namespace's whole TCP table
 * (tens of thousands of TIME_WAIT lines under connection-per-request load). */
static bool hk_listens(pid_t pid, int fd, unsigned long ino)
{
	if (hk_held_inode(ino))
		return true;
	int copy = hk_outside_fd(pid, fd);
	if (copy < 0)
		return false;
	int on = 0;
	socklen_t len = sizeof on;
	bool listening = getsockopt(copy, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
	close(copy);
	return listening;
}

struct hk_socket_list {
	int *fds;
	unsigned long *inos;
	int n, max;
};

static bool hk_add_socket(void *ctx, int fd, unsigned long ino)
{
	struct hk_socket_list *l = ctx;
	l->fds[l->n] = fd;
	l->inos[l->n++] = ino;
	return l->n >= l->max;
}

int hk_outside_sockets(pid_t pid, int *fds, unsigned long *inos, int max)
{
	struct hk_socket_list l = { fds, inos, 0, max };
	if (max > 0)
		hk_proc_each_socket(pid, hk_add_socket, &l);
	return l.n;
}

int hk_outside_listeners(pid_t pid, int *fds, unsigned long *inos, int max)
{
	int all_fds[HK_SOCKETS_LOOKED_AT];
	unsigned long all_inos[HK_SOCKETS_LOOKED_AT];
	int total = hk_outside_sockets(pid, all_fds, all_inos, HK_SOCKETS_LOOKED_AT);
	int n = 0;
	for (int i = 0; i < total && n < max; i++)
		if (hk_listens(pid, all_fds[i], all_inos[i])) {
			fds[n] = all_fds[i];
			inos[n++] = all_inos[i];
		}
	return n;
}
