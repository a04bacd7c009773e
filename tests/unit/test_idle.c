/* Unit tests for the drain's look at a connection as the app reads from it
 * (hr_drain_at_read through the read hooks' hr_idle_read_begin): a blocking
 * server that asks for the next request while its generation drains sees
 * end-of-input, and only then; and what a read that found nothing notes. */
#include <criterion/criterion.h>

#include "config.h"
#include "drain.h"
#include "fdtable.h"
#include "gen.h"
#include "helpers.h"
#include "idle.h"
#include "libc.h"
#include "listeners.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

static int lfd = -1, client = -1, conn = -1;

/* A connection accepted from a listener the shim knows, in a running
 * generation. */
static void setup(void)
{
	hr_libc_init();
	hr_fdtable_init();
	cr_assert_eq(hr_gen_init(-1, -1), 0);
	struct sockaddr_storage addr;
	socklen_t len;
	lfd = ut_tcp_listener(AF_INET, &addr, &len);
	cr_assert_geq(lfd, 0);
	hr_listener_adopt(lfd, 0, 0);
	client = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(client, 0);
	cr_assert_eq(connect(client, (struct sockaddr *)&addr, len), 0, "%s", strerror(errno));
	conn = hr_real.accept4(lfd, NULL, NULL, 0);
	cr_assert_geq(conn, 0);
	hr_fd_set(conn, HR_FD_CONN);
}

static void teardown(void)
{
	hr_fd_set(lfd, HR_FD_NONE);
	hr_fd_set(conn, HR_FD_NONE);
	close(conn);
	close(client);
	close(lfd);
}

TestSuite(idle, .init = setup, .fini = teardown, .timeout = 20);

static struct tcp_info info_of(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	memset(&ti, 0, sizeof ti);
	cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	return ti;
}

static void server_reads(const char *what)
{
	char buf[64];
	size_t n = strlen(what);
	cr_assert_eq(write(client, what, n), (ssize_t)n);
	cr_assert(WAIT_UNTIL(({
				     int q = 0;
				     ioctl(conn, FIONREAD, &q) == 0 && q == (int)n;
			     }),
			     5000));
	cr_assert_eq(hr_real.read(conn, buf, sizeof buf), (ssize_t)n);
}

/* The server sends what (through the send hooks' note) in a later tick of
 * the kernel's clock than it received (the rule is strict), and the client
 * reads and acknowledges it. */
static void server_sends(const char *what)
{
	char buf[64];
	size_t n = strlen(what);
	uint64_t acked = info_of(conn).tcpi_bytes_acked;
	cr_assert(WAIT_UNTIL(info_of(conn).tcpi_last_data_recv > 0, 5000));
	if (hr_idle_send(conn))
		hr_idle_send_draining(conn, what, n);
	cr_assert_eq(write(conn, what, n), (ssize_t)n);
	cr_assert_eq(read(client, buf, sizeof buf), (ssize_t)n);
	cr_assert(WAIT_UNTIL(info_of(conn).tcpi_bytes_acked >= acked + n, 5000));
}

static void server_answers(void)
{
	server_sends("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

/* What the app's next read would see, without blocking: 0 is end-of-input. */
static ssize_t peek_input(void)
{
	char c;
	return hr_real.recv(conn, &c, 1, MSG_DONTWAIT | MSG_PEEK);
}

static void app_reads_next(void)
{
	hr_idle_read_begin(conn, 0);
}

Test(idle, answered_connection_ends_when_the_app_reads_while_draining)
{
	server_reads("request");
	server_answers();
	atomic_store(&hr_gen->phase, HR_PHASE_DRAINING);
	app_reads_next();
	cr_assert(hr_fd_get(conn) & HR_FD_SHUT_READ);
	cr_assert_eq(peek_input(), 0, "the app's read must see end-of-input");
}

Test(idle, running_generation_leaves_it_open)
{
	server_reads("request");
	server_answers();
	app_reads_next();
	cr_assert_not(hr_fd_get(conn) & HR_FD_SHUT_READ);
	cr_assert_eq(peek_input(), -1);
	cr_assert_eq(errno, EAGAIN);
}

/* The app answered a request; then it reads what, which came in a later
 * tick than the answer. */
static void answered_then_reads(const char *what)
{
	server_reads("request");
	server_answers();
	cr_assert(WAIT_UNTIL(info_of(conn).tcpi_last_data_sent > 0, 5000));
	server_reads(what);
}

/* The app made the connection non-blocking, and its read found nothing
 * (what the read hooks then note). */
static void nonblocking_read_finds_nothing(void)
{
	hr_fd_or(conn, HR_FD_NONBLOCK);
	errno = EAGAIN;
	hr_idle_read_done(conn, -1, 0);
}

Test(idle, request_read_in_pieces_is_not_cut)
{
	answered_then_reads("GET /"); /* the next request's first part */
	atomic_store(&hr_gen->phase, HR_PHASE_DRAINING);
	app_reads_next();
	cr_assert_not(hr_fd_get(conn) & HR_FD_SHUT_READ);
	cr_assert_eq(peek_input(), -1);
}

/* A non-blocking server that read the next request's first part and then
 * found nothing more: the drain's look at its connections leaves it be. */
Test(idle, request_half_received_is_not_idle)
{
	answered_then_reads("POST /upload HTTP/1.1\r\n");
	nonblocking_read_finds_nothing();
	cr_assert(hr_fd_get(conn) & HR_FD_READ_WAIT);
	atomic_store(&hr_gen->phase, HR_PHASE_DRAINING);
	cr_assert_eq(hr_drain_close_idle(), 0, "the rest of the request would be cut");
	cr_assert_not(hr_fd_get(conn) & HR_FD_SHUT_READ);
	cr_assert_eq(peek_input(), -1);
}

/* Input that came after the last answer and was followed by nothing for
 * a second needed no answer (an HTTP/2 window update): idle after all. */
Test(idle, input_without_answer_is_idle_once_quiet)
{
	answered_then_reads("ack");
	nonblocking_read_finds_nothing();
	atomic_store(&hr_gen->phase, HR_PHASE_DRAINING);
	cr_assert(WAIT_UNTIL(info_of(conn).tcpi_last_data_recv >= 1000, 5000));
	cr_assert_eq(hr_drain_close_idle(), 1, "the connection would be held to the drain timeout");
	cr_assert_eq(peek_input(), 0);
}

/* The same connection between requests is idle. */
Test(idle, answered_connection_is_idle_to_the_drain)
{
	server_reads("request");
	server_answers();
	nonblocking_read_finds_nothing();
	atomic_store(&hr_gen->phase, HR_PHASE_DRAINING);
	cr_assert_eq(hr_drain_close_idle(), 1);
	cr_assert(hr_fd_get(conn) & HR_FD_SHUT_READ);
	cr_assert_eq(peek_input(), 0);
}

Test(idle, unread_request_is_not_cut)
{
	server_reads("request");
	server_answers();
	cr_assert_eq(write(client, "next", 4), 4);
	cr_assert(WAIT_UNTIL(({
				     int q = 0;
				     ioctl(conn, FIONREAD, &q) == 0 && q == 4;
			     }),
			     5000));
	atomic_store(&hr_gen->phase, HR_PHASE_DRAINING);
	app_reads_next();
	cr_assert_not(hr_fd_get(conn) & HR_FD_SHUT_READ);
	cr_assert_eq(peek_input(), 1);
}

Test(idle, body_after_interim_answer_is_awaited)
{
	atomic_store(&hr_gen->phase, HR_PHASE_DRAINING);
	server_reads("POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
	server_sends("HTTP/1.1 100 Continue\r\n\r\n");
	app_reads_next();
	cr_assert_not(hr_fd_get(conn) & HR_FD_SHUT_READ, "the body is still to come");
	cr_assert_eq(peek_input(), -1);
	/* The body, the final answer: then the app asks for the next request. */
	server_reads("body");
	server_answers();
	app_reads_next();
	cr_assert(hr_fd_get(conn) & HR_FD_SHUT_READ);
	cr_assert_eq(peek_input(), 0);
}

Test(idle, fresh_connection_waits_for_its_first_request)
{
	atomic_store(&hr_gen->phase, HR_PHASE_DRAINING);
	app_reads_next();
	cr_assert_not(hr_fd_get(conn) & HR_FD_SHUT_READ);
	cr_assert_eq(peek_input(), -1);
}

Test(idle, nonblocking_read_is_left_to_the_waits)
{
	server_reads("request");
	server_answers();
	hr_fd_or(conn, HR_FD_NONBLOCK);
	atomic_store(&hr_gen->phase, HR_PHASE_DRAINING);
	app_reads_next();
	cr_assert_not(hr_fd_get(conn) & HR_FD_SHUT_READ);
}

/* A read that found nothing notes the wait; it takes the connection for
 * non-blocking (the reads' short path, which leaves the keeper's wake to
 * the app) only when it is: SO_RCVTIMEO ends a blocking read with EAGAIN
 * too, and that read can be interrupted. */
static void read_finds_nothing(void)
{
	char buf[8];
	errno = 0;
	ssize_t r = hr_real.read(conn, buf, sizeof buf);
	cr_assert_eq(r, -1);
	cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "%s", strerror(errno));
	hr_idle_read_done(conn, r, 0);
}

Test(idle, receive_timeout_leaves_a_blocking_connection_blocking)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 20000 };
	cr_assert_eq(setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	read_finds_nothing();
	cr_assert(hr_fd_get(conn) & HR_FD_READ_WAIT);
	cr_assert_not(hr_fd_get(conn) & HR_FD_NONBLOCK,
		      "a read that can sleep would take the path that does not absorb the wake");
	cr_assert_not(hr_idle_read_nonblocking(conn));
}

Test(idle, nonblocking_set_unseen_is_learnt_from_eagain)
{
	int flags = hr_real.fcntl(conn, F_GETFL);
	cr_assert_eq(hr_real.fcntl(conn, F_SETFL, flags | O_NONBLOCK), 0);
	read_finds_nothing();
	cr_assert_eq(hr_fd_get(conn) & (HR_FD_READ_WAIT | HR_FD_NONBLOCK),
		     HR_FD_READ_WAIT | HR_FD_NONBLOCK);
}

static int fcntl_calls;
static int (*real_fcntl)(int, int, ...);

static int counting_fcntl(int fd, int cmd, ...)
{
	fcntl_calls++;
	return real_fcntl(fd, cmd, 0);
}

Test(idle, dontwait_read_on_a_blocking_connection_asks_nothing)
{
	char buf[8];
	real_fcntl = hr_real.fcntl;
	hr_real.fcntl = counting_fcntl;
	for (int i = 0; i < 3; i++) {
		ssize_t r = hr_real.recv(conn, buf, sizeof buf, MSG_DONTWAIT);
		cr_assert_eq(r, -1);
		hr_idle_read_done(conn, r, 1);
	}
	cr_assert_eq(fcntl_calls, 0, "a system call added to every MSG_DONTWAIT read that finds nothing");
	cr_assert(hr_fd_get(conn) & HR_FD_READ_WAIT);
	cr_assert_not(hr_fd_get(conn) & HR_FD_NONBLOCK);
}
