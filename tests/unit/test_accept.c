/* Unit tests for accept() under the shim (shim/listeners.c and the accept
 * waits of shim/drain.c): threads in a blocking accept() when the
 * generation stops accepting, cancellation, many threads, and the steady
 * path of a non-blocking listener. */
#include <criterion/criterion.h>

#include "config.h"
#include "drain.h"
#include "fdtable.h"
#include "gen.h"
#include "helpers.h"
#include "libc.h"
#include "listeners.h"

#include <errno.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int lfd = -1;

/* A blocking listener known to the shim, in a process whose generation is
 * running. The agent thread that accept() starts stays asleep: without a
 * wake eventfd it never sees the phase change, so only the test stops
 * accepting (as the agent would: phase first, then the local stop). */
static void setup_listener(int keeper_region)
{
	hr_libc_init();
	hr_cfg.wake_signal = SIGRTMAX - 2;
	hr_fdtable_init();
	cr_assert_eq(keeper_region ? ut_gen_init_region() : hr_gen_init(-1, -1), 0);
	atomic_store(&hr_gen->wake_fd, -1);
	struct sockaddr_storage addr;
	socklen_t len;
	lfd = ut_tcp_listener(AF_INET, &addr, &len);
	cr_assert_geq(lfd, 0);
	hr_fd_set(lfd, HR_FD_LISTENER);
}

static void setup(void)
{
	setup_listener(0);
}

/* The same in a steady process under a keeper: the phase view is live, so
 * the steady accept reads the region's phase as the hooks do. */
static void setup_steady(void)
{
	setup_listener(1);
	cr_assert_eq(hr_gen_view_live(), 0);
}

static void stop_accepting(void)
{
	atomic_store(&hr_gen->phase, HR_PHASE_DRAINING);
	hr_listeners_stop_local();
}

struct acceptor {
	pthread_t thread;
	int result, err;
	_Atomic int done;
};

/* Under ASan, frames a cancellation unwinds keep their poisoned shadow and
 * the sanitizer's own thread exit trips on it: clear it at the outermost
 * frame (the sanitizer's documented call for stacks left without return). */
static void unpoison_unwound_frames(void *unused)
{
	(void)unused;
#if defined(__SANITIZE_ADDRESS__)
	__asan_handle_no_return();
#endif
}

static void *acceptor_main(void *arg)
{
	struct acceptor *a = arg;
	pthread_cleanup_push(unpoison_unwound_frames, NULL);
	a->result = hr_listener_accept(lfd, hr_fd_get(lfd), NULL, NULL, 0);
	a->err = errno;
	atomic_store(&a->done, 1);
	pthread_cleanup_pop(0);
	return NULL;
}

static void start_acceptor(struct acceptor *a, size_t stack)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (stack)
		pthread_attr_setstacksize(&attr, stack);
	memset(a, 0, sizeof *a);
	cr_assert_eq(pthread_create(&a->thread, &attr, acceptor_main, a), 0);
	pthread_attr_destroy(&attr);
}

static long accepts_under_way(void)
{
	return atomic_load(&hr_slot->accepting);
}

/* The app closes the listener: parked accept() calls return EBADF. */
static void close_listener(void)
{
	hr_fd_set(lfd, HR_FD_NONE);
	hr_listener_closed(lfd);
}

static void join_within(struct acceptor *a, int ms)
{
	cr_assert(WAIT_UNTIL(atomic_load(&a->done), ms), "accept() did not return");
	pthread_join(a->thread, NULL);
}

/* ======== the window between the phase check and the accept() call ======== */

static sem_t in_window;
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);

/* Stands in for libc's accept4: the calling thread has passed every check
 * and is about to enter the kernel. The wake signal arrives right here
 * (the poll returns EINTR once a handler ran), then the call blocks. */
static int accept4_after_window(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	sem_post(&in_window);
	poll(NULL, 0, 5000);
	return real_accept4(fd, addr, len, flags);
}

Test(accept_race, wake_landing_before_the_call_is_repeated, .init = setup)
{
	struct acceptor a;
	sem_init(&in_window, 0, 0);
	real_accept4 = hr_real.accept4;
	hr_real.accept4 = accept4_after_window;
	start_acceptor(&a, 0);
	struct timespec limit;
	clock_gettime(CLOCK_REALTIME, &limit);
	limit.tv_sec += 5;
	cr_assert_eq(sem_timedwait(&in_window, &limit), 0, "accept() never started");
	stop_accepting();
	cr_assert(WAIT_UNTIL(accepts_under_way() == 0, 2000),
		  "a thread stays blocked in accept() after the generation stopped accepting");
	cr_assert_not(atomic_load(&a.done), "the parked accept() returned on its own");
	close_listener();
	join_within(&a, 2000);
	cr_assert_eq(a.result, -1);
	cr_assert_eq(a.err, EBADF, "parked accept() after close: %s", strerror(a.err));
}

/* ======== cancellation ======== */

Test(accept_cancel, cancelled_accept_is_not_counted, .init = setup)
{
	struct acceptor a;
	start_acceptor(&a, 0);
	cr_assert(WAIT_UNTIL(accepts_under_way() == 1, 2000), "accept() never started");
	poll(NULL, 0, 20); /* let it reach the kernel; either way it is cancelled */
	cr_assert_eq(pthread_cancel(a.thread), 0);
	pthread_join(a.thread, NULL);
	cr_assert_eq(accepts_under_way(), 0, "a cancelled accept() is still counted");
}

Test(accept_cancel, cancelled_while_parked, .init = setup)
{
	struct acceptor a;
	stop_accepting();
	start_acceptor(&a, 0);
	poll(NULL, 0, 20);
	cr_assert_eq(pthread_cancel(a.thread), 0);
	pthread_join(a.thread, NULL);
	cr_assert_eq(accepts_under_way(), 0);
	/* The slot is free again: a new parked thread still returns on close. */
	start_acceptor(&a, 0);
	poll(NULL, 0, 20);
	close_listener();
	join_within(&a, 2000);
	cr_assert_eq(a.err, EBADF);
}

/* ======== more threads than a fixed table would hold ======== */

#define MANY_THREADS 4200

Test(accept_many, every_thread_is_woken, .init = setup, .timeout = 120)
{
	static struct acceptor a[MANY_THREADS];
	for (int i = 0; i < MANY_THREADS; i++)
		start_acceptor(&a[i], 256 * 1024);
	cr_assert(WAIT_UNTIL(accepts_under_way() == MANY_THREADS, 30000),
		  "only %ld of %d threads reached accept()", accepts_under_way(), MANY_THREADS);
	stop_accepting();
	cr_assert(WAIT_UNTIL(accepts_under_way() == 0, 10000),
		  "%ld threads stay in accept() after the generation stopped accepting",
		  accepts_under_way());
	close_listener();
	for (int i = 0; i < MANY_THREADS; i++)
		join_within(&a[i], 10000);
}

/* ======== the steady path (a non-blocking listener, past readiness) ======== */

static int connected_client(void)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof addr;
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&addr, &len), 0);
	int c = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(c, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&addr, len), 0);
	return c;
}

Test(accept_steady, connection_is_counted_before_the_call_returns, .init = setup_steady)
{
	int c = connected_client();
	int fd = hr_listener_accept_steady(lfd, NULL, NULL, SOCK_NONBLOCK);
	cr_assert_geq(fd, 0, "accept: %s", strerror(errno));
	cr_assert_eq(hr_fd_get(fd), HR_FD_CONN | HR_FD_NONBLOCK);
	cr_assert_eq(hr_gen_conns(), 1, "the drain would not wait for this connection");
	cr_assert_eq(accepts_under_way(), 0);
	hr_fd_set(fd, HR_FD_NONE);
	close(fd);
	close(c);
}

Test(accept_steady, no_connection_once_the_generation_drains, .init = setup_steady)
{
	int c = connected_client();
	atomic_store(&hr_gen->phase, HR_PHASE_DRAINING);
	errno = 0;
	cr_assert_eq(hr_listener_accept_steady(lfd, NULL, NULL, 0), -1);
	cr_assert_eq(errno, EAGAIN, "%s", strerror(errno));
	cr_assert_eq(accepts_under_way(), 0);
	/* The connection stays queued for the successor. */
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
	cr_assert_geq(fd, 0, "the refused connection left the queue: %s", strerror(errno));
	close(fd);
	close(c);
}

/* Stands in for libc's accept4: the drain starts while the call is under
 * way and ends it (a graceful stop's shutdown makes it EINVAL). */
static int accept4_ended_by_drain(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	(void)fd, (void)addr, (void)len, (void)flags;
	atomic_store(&hr_gen->phase, HR_PHASE_STOPPING);
	errno = EINVAL;
	return -1;
}

Test(accept_steady, call_the_drain_ended_reports_no_connection_yet, .init = setup_steady)
{
	hr_real.accept4 = accept4_ended_by_drain;
	errno = 0;
	cr_assert_eq(hr_listener_accept_steady(lfd, NULL, NULL, 0), -1);
	cr_assert_eq(errno, EAGAIN, "the app would see %s", strerror(errno));
	cr_assert_eq(accepts_under_way(), 0);
}

/* Stands in for libc's accept4: what a drain counting the generation's
 * connections sees while the call is in the kernel. */
static long counted_during_call = -1;

static int accept4_counted(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	counted_during_call = hr_gen_count(1);
	return real_accept4(fd, addr, len, flags);
}

Test(accept_steady, drain_counts_the_connection_while_the_call_is_under_way, .init = setup_steady)
{
	int c = connected_client();
	real_accept4 = hr_real.accept4;
	hr_real.accept4 = accept4_counted;
	int fd = hr_listener_accept_steady(lfd, NULL, NULL, 0);
	cr_assert_geq(fd, 0, "accept: %s", strerror(errno));
	cr_assert_geq(counted_during_call, 1,
		      "a drain checking now would end with the connection uncounted");
	cr_assert_eq(hr_gen_count(1), 1);
	hr_fd_set(fd, HR_FD_NONE);
	cr_assert_eq(hr_gen_count(1), 0, "closing it must give the count back");
	close(fd);
	close(c);
}
