/* Facts about processes read from /proc. The keeper signals a process only
 * after these prove it belongs to the service (a descendant of the keeper,
 * holding a generation's channel or named in its region). */
#include "keeper.h"

#include "../sockaddr.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The fields after the command name of /proc/PID/stat, which may itself
 * hold spaces and parentheses. */
static int hk_proc_stat(pid_t pid, char *buf, size_t len, char **fields)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *paren = strrchr(buf, ')');
	if (!paren || paren[1] != ' ')
		return -1;
	*fields = paren + 2;
	return 0;
}

/* Field k (3 = state) of /proc/PID/stat as a string, counted as in proc(5). */
static const char *hk_stat_field(char *fields, int k)
{
	char *p = fields;
	for (int i = 3; i < k && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p;
}

unsigned long long hk_proc_starttime(pid_t pid)
{
	char buf[1024], *f;
	if (hk_proc_stat(pid, buf, sizeof buf, &f) < 0)
		return 0;
	const char *v = hk_stat_field(f, 22);
	return v ? strtoull(v, NULL, 10) : 0;
}

bool hk_proc_alive(pid_t pid)
{
	char buf[1024], *f;
	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return false;
	if (hk_proc_stat(pid, buf, sizeof buf, &f) < 0)
		return false;
	return f[0] != 'Z' && f[0] != 'X';
}

pid_t hk_proc_ppid(pid_t pid)
{
	char buf[1024], *f;
	if (hk_proc_stat(pid, buf, sizeof buf, &f) < 0)
		return 0;
	const char *v = hk_stat_field(f, 4);
	return v ? (pid_t)atoi(v) : 0;
}

bool hk_proc_descends_from(pid_t pid, pid_t ancestor)
{
	/* Bounded: a parent chain is short, and a loop would need pid reuse. */
	for (int depth = 0; depth < 64 && pid > 1; depth++) {
		pid = hk_proc_ppid(pid);
		if (pid == ancestor)
			return true;
	}
	return false;
}

bool hk_proc_each_socket(pid_t pid, bool (*fn)(void *ctx, int fd, unsigned long ino), void *ctx)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return false;
	bool stopped = false;
	struct dirent *e;
	while (!stopped && (e = readdir(d))) {
		char fdpath[320], link[64];
		unsigned long ino;
		if (e->d_name[0] == '.')
			continue;
		snprintf(fdpath, sizeof fdpath, "%s/%s", path, e->d_name);
		ssize_t len = readlink(fdpath, link, sizeof link - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) == 1)
			stopped = fn(ctx, atoi(e->d_name), ino);
	}
	closedir(d);
	return stopped;
}

bool hk_proc_holds_inode(pid_t pid, unsigned long ino)
{
	return hk_proc_holds_any(pid, &ino, 1);
}

bool hk_proc_fd_is_socket(pid_t pid, int fd, unsigned long ino)
{
	char path[64], link[64], want[48];
	snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
	snprintf(want, sizeof want, "socket:[%lu]", ino);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n <= 0)
		return false;
	link[n] = '\0';
	return strcmp(link, want) == 0;
}

unsigned long hk_fd_inode(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

/* Whether socket inode ino is in LISTEN state in one of /proc/PID/net's
 * TCP tables; formats its local address. */
static bool hk_tcp_listening(pid_t pid, const char *table, int family, unsigned long ino,
			     char *out, size_t outlen)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, table);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		char local[64];
		unsigned state;
		unsigned long inode;
		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, " %*s %63s %*s %x %*s %*s %*s %*s %*s %lu", local, &state, &inode) != 3 ||
		    inode != ino || state != 0x0A)
			continue;
		char *colon = strchr(local, ':');
		if (!colon)
			continue;
		unsigned port = (unsigned)strtoul(colon + 1, NULL, 16);
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof ss);
		socklen_t len;
		if (family == AF_INET) {
			struct sockaddr_in *in = (void *)&ss;
			in->sin_family = AF_INET;
			in->sin_addr.s_addr = (uint32_t)strtoul(local, NULL, 16);
			in->sin_port = htons((uint16_t)port);
			len = sizeof *in;
		} else {
			struct sockaddr_in6 *in6 = (void *)&ss;
			in6->sin6_family = AF_INET6;
			for (int w = 0; w < 4; w++) {
				char word[9];
				memcpy(word, local + 8 * w, 8);
				word[8] = '\0';
				uint32_t v = (uint32_t)strtoul(word, NULL, 16);
				memcpy(&in6->sin6_addr.s6_addr[4 * w], &v, 4);
			}
			in6->sin6_port = htons((uint16_t)port);
			len = sizeof *in6;
		}
		hr_format_sockaddr((struct sockaddr *)&ss, len, out, outlen);
		found = true;
	}
	fclose(f);
	return found;
}

struct hk_listening_list {
	pid_t pid;
	char *out;
	size_t outlen, used;
	int n;
};

static bool hk_add_if_listening(void *ctx, int fd, unsigned long ino)
{
	struct hk_listening_list *l = ctx;
	char addr[HK_ADDR_MAX];
	(void)fd;
	if (!hk_tcp_listening(l->pid, "tcp", AF_INET, ino, addr, sizeof addr) &&
	    !hk_tcp_listening(l->pid, "tcp6", AF_INET6, ino, addr, sizeof addr))
		return false;
	int w = snprintf(l->out + l->used, l->outlen - l->used, "%s%s", l->n ? ", " : "", addr);
	if (w > 0 && (size_t)w < l->outlen - l->used)
		l->used += (size_t)w;
	l->n++;
	return false;
}

int hk_proc_listening(pid_t pid, char *out, size_t outlen)
{
	struct hk_listening_list l = { .pid = pid, .out = out, .outlen = outlen };
	out[0] = '\0';
	hk_proc_each_socket(pid, hk_add_if_listening, &l);
	return l.n;
}

bool hk_proc_maps(pid_t pid, const char *path)
{
	char maps[64], line[4096];
	snprintf(maps, sizeof maps, "/proc/%d/maps", (int)pid);
	FILE *f = fopen(maps, "re");
	if (!f)
		return false;
	bool found = false;
	size_t len = strlen(path);
	while (!found && fgets(line, sizeof line, f)) {
		char *name = strchr(line, '/');
		found = name && strncmp(name, path, len) == 0 && (name[len] == '\n' || !name[len]);
	}
	fclose(f);
	return found;
}

struct hk_inode_set {
	const unsigned long *inos;
	int n;
};

static bool hk_in_set(void *ctx, int fd, unsigned long ino)
{
	const struct hk_inode_set *set = ctx;
	(void)fd;
	for (int i = 0; i < set->n; i++)
		if (set->inos[i] == ino)
			return true;
	return false;
}

bool hk_proc_holds_any(pid_t pid, const unsigned long *inos, int n)
{
	struct hk_inode_set set = { inos, n };
	return hk_proc_each_socket(pid, hk_in_set, &set);
}

/* Whether pid has a handler for sig (SigCgt in /proc/PID/status). */
static bool hk_proc_catches(pid_t pid, int sig)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool caught = false;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "SigCgt:", 7) == 0) {
			unsigned long long mask = strtoull(line + 7, NULL, 16);
			caught = sig > 0 && sig <= 64 && (mask >> (sig - 1)) & 1;
			break;
		}
	fclose(f);
	return caught;
}

/* The system calls in which the library's hooks absorb its wake signal:
 * waits, and reads (a thread per connection waits in read()). */
static bool hk_is_hooked_wait(long nr)
{
	switch (nr) {
	case SYS_accept:
	case SYS_accept4:
	case SYS_epoll_wait:
	case SYS_epoll_pwait:
	case SYS_epoll_pwait2:
	case SYS_poll:
	case SYS_ppoll:
	case SYS_select:
	case SYS_pselect6:
	case SYS_read:
	case SYS_readv:
	case SYS_recvfrom:
	case SYS_recvmsg:
		return true;
	default:
		return false;
	}
}

int hk_proc_wake_waiters(pid_t pid, int sig, int magic)
{
	if (!hk_proc_catches(pid, sig))
		return 0; /* no library handler here: the signal would kill it */
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	int woken = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);
		if (tid <= 0)
			continue;
		char sys[400], buf[64];
		snprintf(sys, sizeof sys, "%s/%s/syscall", path, e->d_name);
		int fd = open(sys, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		char *end;
		long nr = strtol(buf, &end, 10);
		if (end == buf || !hk_is_hooked_wait(nr))
			continue;
		siginfo_t si;
		memset(&si, 0, sizeof si);
		si.si_signo = sig;
		si.si_code = SI_QUEUE;
		si.si_pid = getpid();
		si.si_uid = getuid();
		si.si_value.sival_int = magic;
		if (syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, &si) == 0)
			woken++;
	}
	closedir(d);
	return woken;
}
