/* Answers the bind() and listen() calls a supervised generation makes
 * (seccomp.c sends them here), as the library's hooks do for servers it
 * can see:
 * - bind() to an address the keeper holds a listener for: that listener is
 *   put on the caller's fd number (ADDFD with SETFD) and bind reports
 *   success without binding, so the accept queue is the very same;
 * - listen() on such a socket succeeds; on any other stream socket the
 *   keeper listens on its own copy (the same socket) and keeps it, as it
 *   keeps every listener a generation makes.
 * Anything the keeper cannot handle continues as the caller asked: a
 * server is never left waiting, and never sees an error of ours. */
#include "keeper.h"

#include "../addrmatch.h"
#include "../log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define HK_NOTIFY_BATCH 16 /* per poll wake-up, so the loop stays responsive */

bool hk_supervise_claimed(const struct hk_gen *g, unsigned long ino)
{
	for (int i = 0; i < g->n_claimed; i++)
		if (g->claimed[i] == ino)
			return true;
	return false;
}

static void hk_claim(struct hk_gen *g, unsigned long ino)
{
	if (hk_supervise_claimed(g, ino) || g->n_claimed == HK_MAX_LISTENERS)
		return;
	g->claimed[g->n_claimed++] = ino;
	g->last_claim_ms = hk_now_ms();
}

static const struct hk_listener *hk_held_by_inode(unsigned long ino)
{
	for (int i = 0; i < K.n_listeners; i++)
		if (K.listeners[i].ino == ino)
			return &K.listeners[i];
	return NULL;
}

static bool hk_still_valid(int nfd, __u64 id)
{
	return ioctl(nfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* The held listener, not yet claimed by g, that best matches addr for a
 * stream socket of family `family`. */
static const struct hk_listener *hk_match(const struct hk_gen *g, int family,
					  const struct sockaddr *addr, socklen_t len)
{
	const struct hk_listener *best = NULL;
	int best_score = 0;
	for (int i = 0; i < K.n_listeners; i++) {
		const struct hk_listener *l = &K.listeners[i];
		struct sockaddr_storage have;
		socklen_t hlen = sizeof have;
		if (hk_supervise_claimed(g, l->ino) ||
		    getsockname(l->fd, (struct sockaddr *)&have, &hlen) < 0 || have.ss_family != family)
			continue;
		int score = hr_addr_match(addr, len, (struct sockaddr *)&have, hlen);
		if (score > best_score) {
			best = l;
			best_score = score;
		}
	}
	return best;
}

/* The port of an IP address; 1 for other families (they have none). */
static unsigned hk_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 1;
}

static void hk_answer_bind(struct hk_gen *g, const struct seccomp_notif *req,
			   struct seccomp_notif_resp *resp)
{
	int fd = (int)req->data.args[0];
	socklen_t len = (socklen_t)req->data.args[2];
	struct sockaddr_storage addr;
	if (len < sizeof(sa_family_t) || len > sizeof addr || !K.n_listeners)
		return;
	struct iovec local = { .iov_base = &addr, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)req->data.args[1], .iov_len = len };
	if (process_vm_readv(req->pid, &local, 1, &remote, 1, 0) != (ssize_t)len ||
	    !hk_still_valid(g->notify_fd, req->id))
		return;
	pid_t tgid = hk_proc_tgid(req->pid);
	int copy = tgid > 0 ? hk_outside_fd(tgid, fd) : -1;
	if (copy < 0)
		return;
	int type = 0, domain = 0;
	socklen_t olen = sizeof type;
	bool stream = getsockopt(copy, SOL_SOCKET, SO_TYPE, &type, &olen) == 0 && type == SOCK_STREAM;
	olen = sizeof domain;
	stream = stream && getsockopt(copy, SOL_SOCKET, SO_DOMAIN, &domain, &olen) == 0 &&
		 domain == addr.ss_family;
	int flflags = fcntl(copy, F_GETFL);
	bool given = hk_held_by_inode(hk_fd_inode(copy)) != NULL;
	close(copy);
	if (given) {
		/* The same bind again, restarted by a signal after we answered. */
		resp->flags = 0;
		resp->val = 0;
		return;
	}
	/* Port 0 is not a listener's address here: Go's start-up binds
	 * [::ffff:127.0.0.1]:0 and [::1]:0 to probe the IP stack. */
	const struct hk_listener *l =
		stream && hk_port(&addr) ? hk_match(g, domain, (struct sockaddr *)&addr, len) : NULL;
	if (!l || flflags < 0)
		return;
	/* O_NONBLOCK lives on the shared open file: the caller's choice wins
	 * (the previous generation is being told to stop anyway). */
	int held_fl = fcntl(l->fd, F_GETFL);
	if (held_fl >= 0 && (held_fl & O_NONBLOCK) != (flflags & O_NONBLOCK))
		fcntl(l->fd, F_SETFL, (held_fl & ~O_NONBLOCK) | (flflags & O_NONBLOCK));
	struct seccomp_notif_addfd addfd = {
		.id = req->id,
		.flags = SECCOMP_ADDFD_FLAG_SETFD,
		.srcfd = (__u32)l->fd,
		.newfd = (__u32)fd,
		.newfd_flags = hk_outside_cloexec(tgid, fd) ? O_CLOEXEC : 0,
	};
	if (ioctl(g->notify_fd, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) < 0) {
		hr_warn("generation %ld: cannot put listener %s on fd %d of pid %d: %s", g->number,
			l->address, fd, (int)tgid, strerror(errno));
		return;
	}
	hk_claim(g, l->ino);
	resp->flags = 0;
	resp->val = 0;
	hr_debug("generation %ld: bind on fd %d of pid %d gets listener %s", g->number, fd,
		 (int)tgid, l->address);
}

static void hk_answer_listen(struct hk_gen *g, const struct seccomp_notif *req,
			     struct seccomp_notif_resp *resp)
{
	int fd = (int)req->data.args[0];
	int backlog = (int)req->data.args[1];
	pid_t tgid = hk_proc_tgid(req->pid);
	int copy = tgid > 0 ? hk_outside_fd(tgid, fd) : -1;
	if (copy < 0)
		return;
	unsigned long ino = hk_fd_inode(copy);
	int type = 0;
	socklen_t olen = sizeof type;
	if (!hk_still_valid(g->notify_fd, req->id) ||
	    getsockopt(copy, SOL_SOCKET, SO_TYPE, &type, &olen) < 0 || type != SOCK_STREAM) {
		close(copy);
		return;
	}
	resp->flags = 0;
	if (hk_held_by_inode(ino)) {
		/* A listener it was given at bind: listening already. */
		close(copy);
		hk_claim(g, ino);
		resp->val = 0;
		return;
	}
	if (listen(copy, backlog) < 0) {
		resp->error = -errno;
		close(copy);
		return;
	}
	resp->val = 0;
	hk_claim(g, ino);
	if (hk_held_add(copy, "unknown", false) > 0)
		hr_info("generation %ld listens on %s", g->number,
			K.listeners[K.n_listeners - 1].address);
}

void hk_supervise_close(struct hk_gen *g)
{
	if (g->supervised && g->notify_fd >= 0)
		close(g->notify_fd);
	g->notify_fd = -1;
}

void hk_supervise_on_notify(struct hk_gen *g)
{
	for (int i = 0; i < HK_NOTIFY_BATCH && g->notify_fd >= 0; i++) {
		/* RECV would block with nothing pending: ask poll first, each time. */
		struct pollfd pf = { .fd = g->notify_fd, .events = POLLIN };
		if (poll(&pf, 1, 0) <= 0)
			return;
		if (!(pf.revents & POLLIN)) {
			/* POLLHUP: no process runs under this filter any more. */
			hk_supervise_close(g);
			return;
		}
		struct seccomp_notif req;
		memset(&req, 0, sizeof req); /* the kernel wants it zeroed */
		if (ioctl(g->notify_fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
			continue; /* ENOENT: the caller died meanwhile */
		struct seccomp_notif_resp resp = { .id = req.id,
						   .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };
		if (req.data.nr == __NR_bind)
			hk_answer_bind(g, &req, &resp);
		else if (req.data.nr == __NR_listen)
			hk_answer_listen(g, &req, &resp);
		/* ENOENT here too: the caller died or was interrupted. */
		ioctl(g->notify_fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
}
