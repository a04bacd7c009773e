#include "idle.h"

#include "drain.h"
#include "gen.h"
#include "libc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

/* How long the rest of a request may take to come before the
 * connection counts as idle anyway. */
#define HR_IDLE_REST_MS 1000

static uint32_t hr_coarse_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

uint32_t hr_idle_mark_waiting(int fd, uint32_t state)
{
	/* The stamp first: whoever sees the bit sees its stamp. */
	atomic_store_explicit(&hr_fd_stamps[fd], hr_coarse_ms(), memory_order_relaxed);
	hr_fd_or(fd, HR_FD_READ_WAIT);
	/* A blocking server's threads wait in reads like this one; a busy
	 * keep-alive client keeps them there only for a moment, so a drain
	 * looks at the connection as the app asks for the next request. */
	if (__builtin_expect(hr_gen_phase() != HR_PHASE_RUNNING, 0))
		hr_drain_at_read(fd);
	return state | HR_FD_READ_WAIT;
}

void hr_idle_read_done(int fd, ssize_t r, int dontwait)
{
	int saved = errno;
	if (r >= 0) {
		hr_fd_clear(fd, HR_FD_READ_WAIT); /* input came: a request is being served */
	} else if (saved == EAGAIN || saved == EWOULDBLOCK) {
		/* Nothing there. On a descriptor we took for blocking, without
		 * MSG_DONTWAIT, this was O_NONBLOCK set behind our back or
		 * SO_RCVTIMEO: asked (once, or at each timeout), so that only a
		 * descriptor that never sleeps takes the reads' short path (which
		 * does not absorb the keeper's wake). */
		uint32_t bits = HR_FD_READ_WAIT;
		if (!dontwait && !(hr_fd_get(fd) & HR_FD_NONBLOCK)) {
			int flags = hr_real.fcntl(fd, F_GETFL);
			if (flags >= 0 && (flags & O_NONBLOCK))
				bits |= HR_FD_NONBLOCK;
		}
		atomic_store_explicit(&hr_fd_stamps[fd], hr_coarse_ms(), memory_order_relaxed);
		hr_fd_or(fd, bits);
	}
	errno = saved;
}

/* Copies len bytes of the app's buffer at src: a buffer the kernel would
 * refuse with EFAULT makes this fail instead of crashing the app. */
static int hr_idle_peek_own(const void *src, char *dst, size_t len)
{
	int saved = errno;
	struct iovec local = { dst, len }, remote = { (void *)src, len };
	int ok = process_vm_readv(hr_self, &local, 1, &remote, 1, 0) == (ssize_t)len;
	errno = saved;
	return ok;
}

void hr_idle_send_draining(int fd, const void *head, size_t n)
{
	uint32_t st = hr_fd_get(fd);
	if (hr_fd_kind(st) != HR_FD_CONN)
		return;
	/* "HTTP/1.1 100 Continue": the client sends the rest of its request
	 * (the body) only now, so the app's next read is no request boundary. */
	char p[10];
	int interim = head && n >= sizeof p && hr_idle_peek_own(head, p, sizeof p) &&
		      memcmp(p, "HTTP/1.", 7) == 0 && p[8] == ' ' && p[9] == '1';
	if (interim && !(st & HR_FD_INTERIM))
		hr_fd_or(fd, HR_FD_INTERIM);
	else if (!interim && (st & HR_FD_INTERIM))
		hr_fd_clear(fd, HR_FD_INTERIM);
}

/* Half a tick of the coarse clock (which is also the granularity of the
 * kernel's tcpi_last_data_sent): two instants within it are taken as one. */
static uint32_t hr_same_instant_ms(void)
{
	static uint32_t half_tick_ms = UINT32_MAX;
	if (half_tick_ms == UINT32_MAX) {
		struct timespec res;
		half_tick_ms = clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0
				       ? (uint32_t)(res.tv_nsec / 2000000)
				       : 2;
	}
	return half_tick_ms;
}

/* Past the drain timeout, when the alternative is the stop signal cutting
 * whatever is under way: the app answered after it last received, and
 * nothing is left to read or to send. A server that never reads to EAGAIN
 * (libuv stops at a short read) is caught by this one only. */
static int hr_idle_conn_overdue(int fd, const struct tcp_info *ti)
{
	int unread = 0, unsent = 0;
	return ti->tcpi_last_data_recv >= ti->tcpi_last_data_sent &&
	       hr_real.ioctl(fd, FIONREAD, &unread) == 0 && unread == 0 &&
	       hr_real.ioctl(fd, SIOCOUTQNSD, &unsent) == 0 && unsent == 0;
}

/* Used (something was exchanged both ways) and still established. */
static int hr_idle_tcp_info(int fd, struct tcp_info *ti)
{
	socklen_t len = sizeof *ti;
	memset(ti, 0, sizeof *ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) < 0) {
		if (errno == EBADF || errno == ENOTSOCK)
			hr_fd_set(fd, HR_FD_NONE); /* closed behind our back */
		return 0;
	}
	return ti->tcpi_state == 1 /* TCP_ESTABLISHED */ && ti->tcpi_bytes_received != 0 &&
	       ti->tcpi_bytes_acked != 0;
}

int hr_idle_conn_answered(int fd)
{
	struct tcp_info ti;
	if (!hr_idle_tcp_info(fd, &ti))
		return 0;
	/* Strictly: a reply in the same tick as the last input may be a
	 * request read in pieces, the app waiting for the rest. */
	int unread = 0, unsent = 0;
	return ti.tcpi_last_data_recv > ti.tcpi_last_data_sent &&
	       hr_real.ioctl(fd, FIONREAD, &unread) == 0 && unread == 0 &&
	       hr_real.ioctl(fd, SIOCOUTQNSD, &unsent) == 0 && unsent == 0;
}

int hr_idle_conn(int fd, int overdue)
{
	uint32_t st = hr_fd_get(fd);
	if (!(st & HR_FD_READ_WAIT) && !overdue)
		return 0;
	uint32_t waiting_ms = hr_coarse_ms() - atomic_load_explicit(&hr_fd_stamps[fd],
								    memory_order_relaxed);
	struct tcp_info ti;
	if (!hr_idle_tcp_info(fd, &ti))
		return 0;
	if (!(st & HR_FD_READ_WAIT))
		return hr_idle_conn_overdue(fd, &ti);
	/* No byte sent since the app began to wait: the send hooks clear the
	 * bit, this catches sends they do not see (sendfile through splice,
	 * io_uring). */
	if (ti.tcpi_last_data_sent + hr_same_instant_ms() < waiting_ms)
		return 0;
	/* Nothing received since the app last answered, or nothing for a
	 * while: a read that found nothing after the first part of a request
	 * (an upload in pieces on a kept-alive connection) waits for the rest
	 * as long as it keeps coming. Input that needs no answer (an HTTP/2
	 * window update, a WebSocket pong) leaves the connection idle once it
	 * is that old. The same tick counts as answered: an answer is usually
	 * sent in the tick its request came in. */
	if (ti.tcpi_last_data_recv < ti.tcpi_last_data_sent &&
	    ti.tcpi_last_data_recv < HR_IDLE_REST_MS)
		return 0;
	/* Nothing unread, nothing unsent. Sent but unacknowledged bytes do not
	 * count (SIOCOUTQ would): a busy client acknowledges an answer with
	 * its next request, so they are there between any two requests. */
	int unread = 0, unsent = 0;
	return hr_real.ioctl(fd, FIONREAD, &unread) == 0 && unread == 0 &&
	       hr_real.ioctl(fd, SIOCOUTQNSD, &unsent) == 0 && unsent == 0;
}
