/* The control socket: abstract "@hotrestart-keeper.<pid namespace inode>.
 * <pid>", so services with the same PID in different PID namespaces of one
 * network namespace never share a name. One line in ("restart", "stop",
 * "status"), one line out. Clients must be root or the keeper's user; the
 * client checks in turn that the peer is the keeper (SO_PEERCRED). */
#include "keeper.h"

#include "../config.h"
#include "../listenfds.h"
#include "../log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define HK_CLIENT_TIMEOUT_MS 5000 /* to send a whole request line */
#define HK_FAREWELL_MS 1000

int hk_control_open(void)
{
	struct stat ns;
	if (stat("/proc/self/ns/pid", &ns) < 0) {
		hr_warn("cannot read /proc/self/ns/pid: %s; no control socket", strerror(errno));
		return -1;
	}
	struct sockaddr_un addr;
	memset(&addr, 0, sizeof addr);
	addr.sun_family = AF_UNIX;
	int len = snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "%s%lu.%d",
			   HK_CONTROL_PREFIX, (unsigned long)ns.st_ino, (int)K.self);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
	if (bind(fd, (struct sockaddr *)&addr, alen) < 0 || listen(fd, 16) < 0) {
		hr_error("control socket @%s unavailable: %s (another process holds the name?); "
			 "signals still work",
			 addr.sun_path + 1, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

void hk_control_reply(struct hk_client *c, const char *line)
{
	size_t len = strlen(line);
	char buf[70000];
	if (len + 2 > sizeof buf)
		len = sizeof buf - 2;
	memcpy(buf, line, len);
	buf[len++] = '\n';
	/* A reply fits the socket buffer; a client that stopped reading loses it. */
	ssize_t ignored = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)ignored;
	close(c->fd);
	c->fd = -1;
	c->waits_restart = false;
}

void hk_control_accept(void)
{
	for (;;) {
		int fd = accept4(K.ctl, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct ucred cred;
		socklen_t len = sizeof cred;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    (cred.uid != 0 && cred.uid != geteuid())) {
			close(fd);
			continue;
		}
		struct hk_client *slot = NULL;
		for (int i = 0; i < HK_MAX_CLIENTS && !slot; i++)
			if (K.clients[i].fd < 0)
				slot = &K.clients[i];
		if (!slot) {
			/* Full: the oldest client that is only talking, not waiting
			 * for a restart, gives way to the new one. */
			for (int i = 0; i < HK_MAX_CLIENTS && !slot; i++)
				if (!K.clients[i].waits_restart && !K.clients[i].waits_stop) {
					close(K.clients[i].fd);
					slot = &K.clients[i];
				}
		}
		if (!slot) {
			const char busy[] = "fail too many control clients\n";
			ssize_t ignored = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)ignored;
			close(fd);
			continue;
		}
		*slot = (struct hk_client){ .fd = fd,
					    .deadline_ms = hk_now_ms() + HK_CLIENT_TIMEOUT_MS };
	}
}

static void hk_json_string(char *out, size_t outlen, const char *s)
{
	size_t o = 0;
	out[o++] = '"';
	for (; *s && o + 8 < outlen; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
}

static void hk_status_json(char *out, size_t outlen)
{
	struct hk_gen *g = K.live;
	bool draining = false;
	for (int i = 0; i < HK_MAX_GENS; i++)
		draining |= K.gens[i].number && K.gens[i].state != HK_GONE && &K.gens[i] != K.live &&
			    &K.gens[i] != K.next;
	char warning[600], failure[1100];
	hk_json_string(warning, sizeof warning, K.unseen);
	hk_json_string(failure, sizeof failure, "");
	for (int i = 0; i < HK_MAX_GENS; i++)
		if (K.gens[i].number && K.gens[i].why[0])
			hk_json_string(failure, sizeof failure, K.gens[i].why);
	size_t o = (size_t)snprintf(
		out, outlen,
		"{\"pid\":%d,\"keeper_pid\":%d,\"generation\":%ld,\"main_pid\":%d,"
		"\"started_unix\":%.3f,\"generation_started_unix\":%.3f,\"ready\":%s,"
		"\"connections\":%ld,\"upgrading\":%s,\"successor\":%d,\"draining\":%s,"
		"\"stopping\":%s,\"warning\":%s,\"last_failure\":%s,\"listeners\":[",
		(int)K.self, (int)K.self, g ? g->number : 0L, g ? (int)hk_gen_main(g) : 0,
		K.started_unix, g ? g->started_unix : 0.0, g && g->ready ? "true" : "false",
		g ? hk_gen_connections(g, false) : 0L, K.next ? "true" : "false",
		K.next ? (int)K.next->root : 0, draining ? "true" : "false",
		K.stopping ? "true" : "false", warning, failure);
	for (int i = 0; i < K.n_listeners && o + 400 < outlen; i++) {
		char name[2 * HK_NAME_MAX], addr[2 * HK_ADDR_MAX];
		hk_json_string(name, sizeof name, K.listeners[i].name);
		hk_json_string(addr, sizeof addr, K.listeners[i].address);
		o += (size_t)snprintf(out + o, outlen - o,
				      "%s{\"fd\":%d,\"address\":%s,\"name\":%s,\"inherited\":%s}",
				      i ? "," : "", HR_LISTEN_FDS_START + i, addr, name,
				      K.listeners[i].inherited ? "true" : "false");
	}
	snprintf(out + o, outlen - o, "]}");
}

void hk_control_farewell(void)
{
	struct pollfd pf[HK_MAX_CLIENTS];
	int n = 0;
	for (int i = 0; i < HK_MAX_CLIENTS; i++) {
		struct hk_client *c = &K.clients[i];
		if (c->fd < 0 || !c->waits_stop)
			continue;
		ssize_t ignored = send(c->fd, "stopped\n", 8, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)ignored;
		pf[n++] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
	}
	/* As PID 1 our exit kills every process of the namespace, the client
	 * too: give it a moment to print its answer and leave first. */
	long long deadline = hk_now_ms() + HK_FAREWELL_MS;
	while (K.self == 1 && n > 0 && hk_now_ms() < deadline) {
		if (poll(pf, (nfds_t)n, (int)(deadline - hk_now_ms())) <= 0)
			break;
		for (int i = 0; i < n; i++) {
			char buf[16];
			if (pf[i].revents && recv(pf[i].fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) {
				pf[i] = pf[--n];
				i--;
			}
		}
	}
}

void hk_control_on_client(struct hk_client *c)
{
	if (c->waits_stop) {
		char buf[16];
		if (recv(c->fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) {
			close(c->fd); /* the client left before the end */
			c->fd = -1;
			c->waits_stop = false;
		}
		return;
	}
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - (size_t)c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || (c->len += (int)n) >= (int)sizeof c->buf - 1 ||
	    memchr(c->buf, '\0', (size_t)c->len)) {
		hk_control_reply(c, "fail malformed request");
		return;
	}
	c->buf[c->len] = '\0';
	if (!strchr(c->buf, '\n'))
		return;
	c->buf[strcspn(c->buf, "\r\n")] = '\0';
	if (strcmp(c->buf, "status") == 0) {
		static char json[65536];
		hk_status_json(json, sizeof json);
		hk_control_reply(c, json);
	} else if (strcmp(c->buf, "restart") == 0) {
		c->waits_restart = true;
		hr_info("restart requested on the control socket");
		hk_restart();
	} else if (strcmp(c->buf, "stop") == 0) {
		hr_info("stop requested on the control socket");
		hk_stop();
		/* Kept open: "stopped" follows as the keeper exits. */
		ssize_t ignored = send(c->fd, "ok\n", 3, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)ignored;
		c->waits_stop = true;
	} else {
		hk_control_reply(c, "fail unknown command");
	}
}
