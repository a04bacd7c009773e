/* Readiness of a generation the library cannot speak for, judged from
 * /proc while it starts (every 10 ms, until the ready timeout): it is ready
 * once it waits on its listeners, that is a thread blocked in accept() on
 * one, or the listener in an epoll set a thread waits on (the epoll fd's
 * fdinfo lists its targets' inodes), or once it holds a connection
 * accepted from one (too busy to be seen waiting).
 * - A supervised generation is judged on the listeners it took by bind()
 *   and listen().
 * - Any other generation is looked at for listeners the library never
 *   reported (Go makes its own system calls): those are copied out of it
 *   (pidfd_getfd) and held like every listener, and every later generation
 *   starts supervised. */
#include "keeper.h"

#include "../log.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HK_LOOK_MS 10
#define HK_CLAIM_GRACE_MS 300 /* for held listeners it has not taken (yet) */
#define HK_MAX_WATCH 64
#define HK_CHANNEL_READS 64 /* of up to 64 messages each: more than any listener count */

/* The socket inode behind fd of pid, or 0 (also for an epoll fd). */
static unsigned long hk_fd_socket(pid_t pid, long fd)
{
	char path[64], link[64];
	unsigned long ino;
	snprintf(path, sizeof path, "/proc/%d/fd/%ld", (int)pid, fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n <= 0)
		return 0;
	link[n] = '\0';
	return sscanf(link, "socket:[%lu]", &ino) == 1 ? ino : 0;
}

static void hk_mark(unsigned long ino, const unsigned long *inos, int n, bool *waited)
{
	for (int i = 0; i < n; i++)
		if (inos[i] == ino)
			waited[i] = true;
}

/* Marks the inodes in epoll fd epfd's interest list. */
static void hk_mark_epoll(pid_t pid, long epfd, const unsigned long *inos, int n, bool *waited)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/fdinfo/%ld", (int)pid, epfd);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		const char *at = strstr(line, " ino:");
		if (strncmp(line, "tfd:", 4) == 0 && at)
			hk_mark(strtoul(at + 5, NULL, 16), inos, n, waited);
	}
	fclose(f);
}

/* Local ports of the TCP listeners inos[] (0 for others), from the keeper's
 * own copies. */
static void hk_listener_ports(const unsigned long *inos, int n, unsigned *ports)
{
	for (int i = 0; i < n; i++) {
		ports[i] = 0;
		for (int k = 0; k < K.n_listeners; k++) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof ss;
			if (K.listeners[k].ino != inos[i] ||
			    getsockname(K.listeners[k].fd, (struct sockaddr *)&ss, &len) < 0)
				continue;
			if (ss.ss_family == AF_INET)
				ports[i] = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			else if (ss.ss_family == AF_INET6)
				ports[i] = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
}

/* Marks listeners pid has accepted connections from: a server too busy to
 * be seen waiting (a blocking accept() loop under load) serves already.
 * An accepted TCP socket has the listener's local port. */
static void hk_proc_serves(pid_t pid, const unsigned long *inos, int n, bool *waited)
{
	unsigned ports[HK_MAX_LISTENERS];
	hk_listener_ports(inos, n, ports);
	int fds[HK_MAX_WATCH];
	unsigned long sock[HK_MAX_WATCH];
	int ns = hk_outside_sockets(pid, fds, sock, HK_MAX_WATCH);
	for (int s = 0; s < ns; s++) {
		bool listener = false;
		for (int i = 0; i < n; i++)
			listener |= inos[i] == sock[s];
		int copy = listener ? -1 : hk_outside_fd(pid, fds[s]);
		if (copy < 0)
			continue;
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		unsigned port = 0;
		if (getsockname(copy, (struct sockaddr *)&ss, &len) < 0)
			ss.ss_family = AF_UNSPEC;
		if (ss.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		close(copy);
		for (int i = 0; i < n; i++)
			if (port && ports[i] == port)
				waited[i] = true;
	}
}

/* Sets waited[i] for each inos[i] some thread of pid waits on. */
static void hk_proc_waits(pid_t pid, const unsigned long *inos, int n, bool *waited)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char sys[sizeof path + sizeof e->d_name + 16], buf[256];
		snprintf(sys, sizeof sys, "%s/%s/syscall", path, e->d_name);
		int fd = open(sys, O_RDONLY | O_CLOEXEC);
		ssize_t len = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		/* "NR ARG0 ..." while blocked in a call; "running" otherwise. */
		long nr;
		unsigned long arg0;
		if (sscanf(buf, "%ld %lx", &nr, &arg0) != 2)
			continue;
		if (nr == SYS_accept || nr == SYS_accept4)
			hk_mark(hk_fd_socket(pid, (long)arg0), inos, n, waited);
		else if (nr == SYS_epoll_wait || nr == SYS_epoll_pwait || nr == SYS_epoll_pwait2)
			hk_mark_epoll(pid, (long)arg0, inos, n, waited);
	}
	if (d)
		closedir(d);
}

/* The processes looked at: the one the keeper started, and the main one
 * the library may have named. */
static int hk_watched(struct hk_gen *g, pid_t *pids)
{
	int n = 0;
	if (!g->root_reaped)
		pids[n++] = g->root;
	pid_t main = hk_gen_main(g);
	if (main != g->root && hk_proc_alive(main) && hk_proc_descends_from(main, K.self))
		pids[n++] = main;
	return n;
}

static bool hk_all_waited(struct hk_gen *g, const unsigned long *inos, int n)
{
	bool waited[HK_MAX_LISTENERS] = { false };
	pid_t pids[2];
	int np = hk_watched(g, pids);
	for (int i = 0; i < np; i++)
		hk_proc_waits(pids[i], inos, n, waited);
	bool all = true;
	for (int i = 0; i < n; i++)
		all &= waited[i];
	for (int i = 0; i < np && !all; i++) {
		hk_proc_serves(pids[i], inos, n, waited);
		all = true;
		for (int k = 0; k < n; k++)
			all &= waited[k];
	}
	return all && n > 0;
}

static void hk_supervised_look(struct hk_gen *g, long long now)
{
	if (!g->n_claimed || !hk_all_waited(g, g->claimed, g->n_claimed))
		return;
	bool all_taken = true;
	for (int i = 0; i < K.n_listeners; i++)
		all_taken &= hk_supervise_claimed(g, K.listeners[i].ino);
	if (!all_taken && now - g->last_claim_ms < HK_CLAIM_GRACE_MS)
		return;
	/* Listeners the new version no longer binds: their queued connections
	 * would wait forever. */
	for (int i = K.n_listeners - 1; i >= 0; i--)
		if (!hk_supervise_claimed(g, K.listeners[i].ino))
			hk_held_drop(K.listeners[i].ino);
	hk_on_ready(g);
}

/* Listeners of g the library never reported, once g waits on them. */
static void hk_unseen_look(struct hk_gen *g)
{
	/* The library reports a listener before listen() returns: what is on
	 * the channel now is every listener it saw, read to the end (a server
	 * with more listeners than one read takes has more waiting). */
	for (int reads = 0; reads < HK_CHANNEL_READS && g->chan >= 0 && !g->chan_hup; reads++)
		if (!hk_gen_on_channel(g))
			break;
	if (g->state != HK_STARTING)
		return;
	pid_t pids[2];
	int np = hk_watched(g, pids);
	int fds[HK_MAX_WATCH];
	unsigned long inos[HK_MAX_WATCH];
	pid_t owner[HK_MAX_WATCH];
	int n = 0, seen = 0;
	for (int p = 0; p < np; p++) {
		int got = hk_outside_listeners(pids[p], fds + n, inos + n, HK_MAX_WATCH - n);
		for (int i = n; i < n + got; i++)
			owner[i] = pids[p];
		n += got;
	}
	int unseen = 0;
	for (int i = 0; i < n; i++) {
		bool held = false;
		for (int k = 0; k < K.n_listeners && !held; k++)
			held = K.listeners[k].ino == inos[i];
		seen += held;
		if (!held) {
			fds[unseen] = fds[i];
			owner[unseen] = owner[i];
			inos[unseen++] = inos[i];
		}
	}
	if (!unseen || !hk_all_waited(g, inos, unseen))
		return;
	for (int i = 0; i < unseen; i++) {
		int copy = hk_outside_fd(owner[i], fds[i]);
		if (copy < 0 || hk_held_add(copy, "unknown", false) <= 0)
			continue;
		hr_info("generation %ld listens on %s, which the library never saw (a static binary or "
			"raw system calls, as Go makes): the keeper holds it from outside, and later "
			"generations start under a seccomp filter",
			g->number, K.listeners[K.n_listeners - 1].address);
		K.adopted_outside = true;
	}
	/* Ready now unless the library speaks for some of its listeners. */
	if (!seen && K.adopted_outside)
		hk_on_ready(g);
}

void hk_readiness_tick(struct hk_gen *g, long long now, int *timeout)
{
	if (g->state != HK_STARTING || now >= g->deadline_ms || g->root_reaped)
		return;
	if (!g->supervised && K.seccomp_mode == HK_SECCOMP_OFF)
		return;
	if (now >= g->next_look_ms) {
		g->next_look_ms = now + HK_LOOK_MS;
		if (g->supervised)
			hk_supervised_look(g, now);
		else
			hk_unseen_look(g);
		if (g->state != HK_STARTING)
			return;
	}
	int left = (int)(g->next_look_ms - now);
	if (*timeout < 0 || left < *timeout)
		*timeout = left;
}
