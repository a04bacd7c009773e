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
#include <sys/syscall.h>
#include <unistd.h>

#define HK_LISTEN_INODES 1024

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

/* Adds the inodes of listening sockets in one of /proc/PID/net's tables. */
static int hk_listen_inodes(pid_t pid, const char *table, unsigned long *inos, int n)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, table);
	FILE *f = fopen(path, "re");
	if (!f)
		return n;
	bool unix_table = strcmp(table, "unix") == 0;
	while (n < HK_LISTEN_INODES && fgets(line, sizeof line, f)) {
		unsigned long ino, flags;
		unsigned state, type;
		if (unix_table) {
			/* Num RefCount Protocol Flags Type St Inode Path; __SO_ACCEPTCON */
			if (sscanf(line, "%*s %*s %*s %lx %x %*s %lu", &flags, &type, &ino) == 3 &&
			    (flags & 0x10000) && type == 1)
				inos[n++] = ino;
		} else if (sscanf(line, " %*s %*s %*s %x %*s %*s %*s %*s %*s %lu", &state, &ino) == 2 &&
			   state == 0x0A) {
			inos[n++] = ino;
		}
	}
	fclose(f);
	return n;
}

int hk_outside_listeners(pid_t pid, int *fds, unsigned long *inos, int max)
{
	static unsigned long listening[HK_LISTEN_INODES];
	int nl = 0;
	nl = hk_listen_inodes(pid, "tcp", listening, nl);
	nl = hk_listen_inodes(pid, "tcp6", listening, nl);
	nl = hk_listen_inodes(pid, "unix", listening, nl);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = nl ? opendir(path) : NULL;
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while (n < max && (e = readdir(d))) {
		char fdpath[320], link[64];
		unsigned long ino;
		snprintf(fdpath, sizeof fdpath, "%s/%s", path, e->d_name);
		ssize_t len = readlink(fdpath, link, sizeof link - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) != 1)
			continue;
		for (int i = 0; i < nl; i++)
			if (listening[i] == ino) {
				fds[n] = atoi(e->d_name);
				inos[n++] = ino;
				break;
			}
	}
	closedir(d);
	return n;
}
