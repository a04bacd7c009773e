#include "agent.h"

#include "config.h"
#include "control.h"
#include "drain.h"
#include "fdtable.h"
#include "gen.h"
#include "inherit.h"
#include "keeperlink.h"
#include "libc.h"
#include "listeners.h"
#include "log.h"
#include "notify.h"
#include "pidfile.h"
#include "ready.h"
#include "shimfds.h"
#include "signals.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HR_TICK_MS 50	       /* drain: idle scan and connection count */
#define HR_SETTLE_MS 300       /* wait for further claims before ready */
#define HR_FORKED_WAIT_MS 150  /* a wait seen in another process: let an owner
				* that forked it and is daemonizing exit first */
#define HR_ACK_TIMEOUT_MS 5000 /* predecessor's answer to "ready" */
#define HR_MAX_CLIENTS 16
#define HR_CLIENT_LINE_MS 2000 /* a control client sends its command within this */
#define HR_CTL_BACKOFF_MS 100  /* no fd for a control client: look again after this */
#define HR_READY_POLL_MS 10    /* other processes' waits are polled for */

int hr_holds_listeners;

pid_t hr_agent_pid;	    /* process whose agent thread runs */
static int hr_agent_owner;  /* that agent has its owner duties set up */
static int hr_pipe[2] = { -1, -1 };
static pthread_mutex_t hr_agent_lock = PTHREAD_MUTEX_INITIALIZER;

struct hr_client {
	int fd;
	int len;
	int waits_restart;
	long long deadline; /* for its command line */
	char buf[64];
};

static struct {
	int ctl;
	long long ctl_paused_until; /* accept() found no free fd */
	struct hr_client clients[HR_MAX_CLIENTS];
	double started_unix;
	/* upgrade in progress */
	int upgrading;
	struct hr_spawned child;
	int child_exited;
	int child_ok;
	char child_why[160];
	long long upgrade_start, upgrade_deadline;
	char rbuf[64];
	int rlen;
	/* our own readiness, reported to the predecessor */
	int pred;
	int awaiting_ack;
	long long ack_deadline;
	/* drain */
	int draining;
	long long drain_deadline, next_tick, grace_deadline;
	int exiting;
	/* take-over watch, in a direct child of the owner */
	int owner_pidfd;
	pid_t watched_owner;
} A = { .ctl = -1,
	 .clients = { [0 ... HR_MAX_CLIENTS - 1] = { .fd = -1 } },
	 .pred = -1,
	 .owner_pidfd = -1 };

/* Forgets the number before closing it: a fork in between must not make
 * the child close a number reused by the app. */
static void hr_close_shim(int *fd)
{
	int old = *fd;
	if (old >= 0) {
		*fd = -1;
		hr_fd_set(old, HR_FD_NONE);
		hr_real.close(old);
	}
}

/* The readiness channel, done with: its number is stale everywhere. */
static void hr_close_pred(void)
{
	if (hr_cfg.ready_fd == A.pred)
		hr_cfg.ready_fd = -1;
	hr_close_shim(&A.pred);
}

int hr_agent_signal(int sig)
{
	/* The real pid: a signal may reach a fork child before its atfork
	 * handler refreshed hr_self. */
	int out = __atomic_load_n(&hr_pipe[1], __ATOMIC_ACQUIRE); /* it may move */
	if (hr_agent_pid != (pid_t)hr_real.syscall(SYS_getpid) || !hr_agent_owner || out < 0)
		return 0;
	char c = sig == hr_cfg.stop_signal ? 'T' : 'R';
	ssize_t ignored = write(out, &c, 1);
	(void)ignored;
	return 1;
}

void hr_agent_poke(void)
{
	/* Only within the agent's own process: an fd number means nothing in
	 * another process's table. Others are seen by the agent's polling. */
	int out = __atomic_load_n(&hr_pipe[1], __ATOMIC_ACQUIRE);
	if (hr_agent_pid == hr_self && hr_agent_owner && out >= 0) {
		char c = 'p';
		ssize_t ignored = write(out, &c, 1);
		(void)ignored;
	}
}

/* ---- replies to control clients ---- */

static void hr_reply_restart_waiters(const char *line)
{
	for (int i = 0; i < HR_MAX_CLIENTS; i++)
		if (A.clients[i].fd >= 0 && A.clients[i].waits_restart) {
			hr_control_reply(A.clients[i].fd, line);
			A.clients[i].fd = -1;
		}
}

/* ---- readiness of this generation ---- */

static void hr_become_ready_done(int acked)
{
	if (!acked)
		hr_pidfile_write(hr_self);
	struct hr_listener_info ls[8];
	int n = hr_listeners_collect(ls, 8);
	hr_notify("READY=1\nSTATUS=Serving (generation %ld, pid %d)", hr_cfg.generation,
		  (int)hr_self);
	hr_info("ready: pid %d serves %d listener%s%s%s (generation %ld)", (int)hr_self, n,
		n == 1 ? "" : "s", n ? ", first " : "", n ? ls[0].address : "", hr_cfg.generation);
}

static void hr_report_ready(void)
{
	atomic_store(&hr_gen->ready_done, 1);
	atomic_store(&hr_ready_pending, 0);
	hr_inherit_close_unclaimed();
	/* Nothing left for a same-pid exec or the app's children to misread. */
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	unsetenv(HR_ENV_READY_FD);
	if (A.pred >= 0) {
		char msg[48];
		int len = snprintf(msg, sizeof msg, "ready %d\n", (int)hr_self);
		if (send(A.pred, msg, (size_t)len, MSG_NOSIGNAL) == len) {
			A.awaiting_ack = 1;
			A.ack_deadline = hr_now_ms() + HR_ACK_TIMEOUT_MS;
			return;
		}
		hr_close_pred();
	}
	hr_become_ready_done(0);
}

static void hr_check_ready(long long now, int *timeout)
{
	/* An owner on its way out (daemonizing) leaves readiness to the child
	 * that takes over. */
	if (atomic_load(&hr_gen->ready_done) || !atomic_load(&hr_gen->app_waiting) ||
	    atomic_load(&hr_gen->owner_leaving))
		return;
	long long claims_due =
		hr_inherit_unclaimed() == 0 ? 0 : hr_ready_last_claim_ms() + HR_SETTLE_MS;
	long long forked_due = atomic_load(&hr_gen->waiter) == hr_self
				       ? 0
				       : atomic_load(&hr_gen->waited_ms) + HR_FORKED_WAIT_MS;
	long long due = claims_due > forked_due ? claims_due : forked_due;
	if (now >= due) {
		hr_report_ready();
		return;
	}
	int left = (int)(due - now);
	if (*timeout < 0 || left < *timeout)
		*timeout = left;
}

/* Until ready, waits in workers show up only in the shared region. */
static void hr_ready_poll_timeout(int *timeout)
{
	if (!atomic_load(&hr_gen->ready_done) && (*timeout < 0 || *timeout > HR_READY_POLL_MS))
		*timeout = HR_READY_POLL_MS;
}

/* The predecessor's answer, or its absence once the deadline passed. */
static void hr_on_pred_readable(int deadline_passed)
{
	char buf[16];
	ssize_t n = recv(A.pred, buf, sizeof buf, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR) && !deadline_passed)
		return;
	int acked = n > 0 && strncmp(buf, "ack", 3) == 0;
	if (!acked)
		hr_warn("predecessor did not confirm the handover; taking over");
	hr_close_pred();
	A.awaiting_ack = 0;
	hr_become_ready_done(acked);
}

/* ---- draining ---- */

static void hr_begin_drain(int phase)
{
	if (phase == HR_PHASE_DRAINING)
		hr_drain_remember_paths();
	atomic_store(&hr_gen->phase, phase);
	int wake = hr_wake_fd;
	if (wake >= 0)
		eventfd_write(wake, 1);
	hr_listeners_stop_local();
	A.draining = 1;
	A.drain_deadline = hr_now_ms() + (long long)(hr_cfg.drain_timeout * 1000);
	A.next_tick = hr_now_ms();
}

static void hr_finish(void)
{
	if (hr_gen_phase() == HR_PHASE_STOPPING)
		hr_pidfile_remove(hr_self);
	A.exiting = 1;
	A.grace_deadline = hr_now_ms() + (long long)(hr_cfg.stop_grace * 1000);
	if (!hr_signals_deliver_to_app(hr_cfg.stop_signal)) {
		hr_info("the app ignores signal %d: exiting", hr_cfg.stop_signal);
		hr_real._exit(0);
	}
}

static void hr_drain_tick(long long now)
{
	if (A.exiting) {
		if (now >= A.grace_deadline) {
			hr_error("the app did not exit within %.1f s of signal %d: killing the "
				 "old generation",
				 hr_cfg.stop_grace, hr_cfg.stop_signal);
			hr_gen_kill_others(SIGKILL);
			kill(hr_self, SIGKILL);
		}
		return;
	}
	hr_drain_close_idle();
	long conns = hr_gen_count(1);
	if (conns == 0) {
		hr_info("drained: no connection left; stopping the app with signal %d",
			hr_cfg.stop_signal);
		hr_finish();
	} else if (now >= A.drain_deadline) {
		hr_warn("drain timeout (%.1f s): %ld connection%s still open; stopping the app",
			hr_cfg.drain_timeout, conns, conns == 1 ? "" : "s");
		hr_finish();
	}
}

/* ---- upgrade ---- */

static void hr_upgrade_end(const char *failure, pid_t new_owner)
{
	long long ms = hr_now_ms() - A.upgrade_start;
	if (failure) {
		if (!A.child_exited) {
			/* By pidfd: the pid may have been reaped and reused. */
			hr_real.syscall(SYS_pidfd_send_signal, A.child.pidfd, SIGKILL, NULL, 0);
			int ok;
			hr_spawn_exited(A.child.pid, A.child.pidfd, 1, &ok, A.child_why, sizeof A.child_why);
		}
		hr_error("upgrade failed: %s; still serving as pid %d", failure, (int)hr_self);
		hr_notify("READY=1\nSTATUS=Upgrade failed (%s); still serving", failure);
		char line[256];
		snprintf(line, sizeof line, "fail %s", failure);
		hr_reply_restart_waiters(line);
	} else {
		char line[96];
		hr_begin_drain(HR_PHASE_DRAINING);
		hr_pidfile_write(new_owner);
		hr_notify("MAINPID=%d\nSTATUS=Handed over to pid %d; draining", (int)new_owner,
			  (int)new_owner);
		ssize_t ignored = send(A.child.sock, "ack\n", 4, MSG_NOSIGNAL);
		(void)ignored;
		hr_info("handover to pid %d after %lld ms; draining %ld connection%s", (int)new_owner,
			ms, hr_gen_conns(), hr_gen_conns() == 1 ? "" : "s");
		snprintf(line, sizeof line, "ok pid=%d ms=%lld", (int)new_owner, ms);
		hr_reply_restart_waiters(line);
	}
	hr_close_shim(&A.child.sock);
	hr_close_shim(&A.child.pidfd);
	A.upgrading = 0;
}

static void hr_upgrade_start(void)
{
	char err[256];
	const char *refuse = NULL;
	if (A.upgrading) {
		hr_info("upgrade already in progress (successor pid %d)", (int)A.child.pid);
		return;
	}
	if (hr_gen_phase() == HR_PHASE_DRAINING)
		refuse = "this process already handed over";
	else if (hr_gen_phase() == HR_PHASE_STOPPING)
		refuse = "this process is stopping";
	else if (!atomic_load(&hr_gen->ready_done))
		refuse = "this process is not ready yet";
	/* On the heap: the agent's stack is small. */
	struct hr_listener_info *ls = refuse ? NULL : calloc(HR_MAX_LISTENERS, sizeof *ls);
	int n = ls ? hr_listeners_collect(ls, HR_MAX_LISTENERS) : 0;
	if (!refuse && !ls)
		refuse = "out of memory";
	else if (!refuse && n == 0)
		refuse = "no listening socket to hand over";
	if (refuse) {
		free(ls);
		char line[160];
		hr_warn("restart refused: %s", refuse);
		snprintf(line, sizeof line, "fail %s", refuse);
		hr_reply_restart_waiters(line);
		return;
	}
	A.upgrade_start = hr_now_ms();
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	atomic_store(&hr_gen->upgrade_wall_ns, (long long)wall.tv_sec * 1000000000LL + wall.tv_nsec);
	hr_notify("RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=Upgrading: starting %s",
		  A.upgrade_start * 1000, hr_spawn_exe());
	memset(&A.child, 0, sizeof A.child);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int spawned = hr_spawn(ls, n, hr_cfg.generation + 1, &A.child, err, sizeof err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(ls);
	if (spawned < 0) {
		A.child.pidfd = A.child.sock = -1;
		A.child_exited = 1;
		A.upgrading = 1;
		hr_upgrade_end(err, 0);
		return;
	}
	A.upgrading = 1;
	A.child_exited = 0;
	A.rlen = 0;
	A.upgrade_deadline = A.upgrade_start + (long long)(hr_cfg.ready_timeout * 1000);
	/* With vfork semantics hr_spawn returns once the child has exec'd. */
	hr_info("upgrade: started %s as pid %d with %d listener%s (exec after %.3f ms)",
		hr_spawn_exe(), (int)A.child.pid, n, n == 1 ? "" : "s",
		(double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
}

static void hr_on_child_sock(void)
{
	ssize_t n = recv(A.child.sock, A.rbuf + A.rlen, sizeof A.rbuf - 1 - (size_t)A.rlen,
			 MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The channel closes as the child exits, a moment before the kernel
		 * lets us collect its status: give it that moment. */
		struct pollfd exited = { .fd = A.child.pidfd, .events = POLLIN };
		if (!A.child_exited && hr_real.poll(&exited, 1, 1000) > 0)
			A.child_exited = hr_spawn_exited(A.child.pid, A.child.pidfd, 0, &A.child_ok,
							 A.child_why, sizeof A.child_why);
		hr_upgrade_end(A.child_why[0] ? A.child_why
					      : "successor closed the readiness channel "
						"before becoming ready",
			       0);
		return;
	}
	A.rlen += (int)n;
	A.rbuf[A.rlen] = '\0';
	if (!strchr(A.rbuf, '\n'))
		return;
	long pid = 0;
	if (sscanf(A.rbuf, "ready %ld", &pid) == 1 && pid > 0) {
		hr_upgrade_end(NULL, (pid_t)pid);
	} else if (strncmp(A.rbuf, "fail ", 5) == 0) {
		A.rbuf[strcspn(A.rbuf, "\n")] = '\0';
		hr_upgrade_end(A.rbuf + 5, 0);
	} else
		hr_upgrade_end("successor sent a malformed readiness message", 0);
}

static void hr_on_child_exit(void)
{
	A.child_why[0] = '\0';
	if (!hr_spawn_exited(A.child.pid, A.child.pidfd, 0, &A.child_ok, A.child_why, sizeof A.child_why))
		return;
	A.child_exited = 1;
	/* A successor that daemonizes exits 0 while its daemon carries on with
	 * the readiness channel; anything else is a failure now. */
	if (!A.child_ok)
		hr_upgrade_end(A.child_why, 0);
}

/* ---- stop ---- */

static void hr_stop(void)
{
	if (hr_gen_phase() != HR_PHASE_RUNNING) {
		hr_info("stop: already not accepting");
		return;
	}
	if (A.upgrading)
		hr_upgrade_end("stopped by request", 0);
	hr_info("stop: no longer accepting; draining %ld connection%s", hr_gen_conns(),
		hr_gen_conns() == 1 ? "" : "s");
	hr_notify("STOPPING=1\nSTATUS=Stopping: draining %ld connections", hr_gen_conns());
	hr_begin_drain(HR_PHASE_STOPPING);
	hr_listeners_shut();
}

/* ---- control clients ---- */

static void hr_on_client(struct hr_client *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - (size_t)c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || (c->len += (int)n) >= (int)sizeof c->buf - 1) {
		hr_close_shim(&c->fd);
		return;
	}
	c->buf[c->len] = '\0';
	char *end = memchr(c->buf, '\n', (size_t)c->len);
	if (!end)
		return;
	*end = '\0';
	c->buf[strcspn(c->buf, "\r")] = '\0';
	/* A client that gave up (its timeout passed while we could not take
	 * it) has its request dropped, not run late. Closed, that is: a client
	 * that only shut down its sending side (socat) still waits. */
	struct pollfd gone = { .fd = c->fd };
	if (hr_real.poll(&gone, 1, 0) > 0 && (gone.revents & (POLLHUP | POLLERR))) {
		hr_warn("control request \"%.16s\" dropped: its client left before it was read",
			c->buf);
		hr_close_shim(&c->fd);
		return;
	}
	if (strcmp(c->buf, "status") == 0) {
		static char json[65536]; /* only the agent thread writes it */
		struct hr_status st = { .generation = hr_cfg.generation,
					.started_unix = A.started_unix,
					.upgrading = A.upgrading,
					.successor = A.upgrading ? A.child.pid : 0 };
		hr_control_status_json(&st, json, sizeof json);
		hr_control_reply(c->fd, json);
		c->fd = -1;
	} else if (strcmp(c->buf, "restart") == 0) {
		c->waits_restart = 1;
		hr_info("restart requested on the control socket");
		hr_upgrade_start();
	} else if (strcmp(c->buf, "stop") == 0) {
		hr_info("stop requested on the control socket");
		hr_stop();
		hr_control_reply(c->fd, "ok");
		c->fd = -1;
	} else {
		hr_control_reply(c->fd, "fail unknown command");
		c->fd = -1;
	}
}

static void hr_on_ctl(void)
{
	int fd = hr_control_accept(A.ctl);
	if (fd < 0) {
		/* The connection stays queued; polling for it now would spin. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			A.ctl_paused_until = hr_now_ms() + HR_CTL_BACKOFF_MS;
		return;
	}
	/* A free slot, else the one that waited longest for its line (a
	 * silent client must not lock operators out). */
	struct hr_client *slot = NULL;
	for (int i = 0; i < HR_MAX_CLIENTS && !slot; i++)
		if (A.clients[i].fd < 0)
			slot = &A.clients[i];
	for (int i = 0; i < HR_MAX_CLIENTS && !slot; i++)
		if (!A.clients[i].waits_restart &&
		    (!slot || A.clients[i].deadline < slot->deadline))
			slot = &A.clients[i];
	if (!slot) {
		hr_control_reply(fd, "fail too many control clients");
		return;
	}
	hr_close_shim(&slot->fd);
	*slot = (struct hr_client){ .fd = fd, .deadline = hr_now_ms() + HR_CLIENT_LINE_MS };
}

/* Clients past the deadline for their line are closed; the poll timeout
 * is lowered to the next deadline. */
static void hr_expire_clients(long long now, int *timeout)
{
	for (int i = 0; i < HR_MAX_CLIENTS; i++) {
		struct hr_client *c = &A.clients[i];
		if (c->fd < 0 || c->waits_restart)
			continue;
		if (now >= c->deadline) {
			hr_close_shim(&c->fd);
			continue;
		}
		int left = (int)(c->deadline - now);
		if (*timeout < 0 || left < *timeout)
			*timeout = left;
	}
}

static void hr_on_pipe(void)
{
	char buf[64];
	ssize_t n = read(hr_pipe[0], buf, sizeof buf);
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == 'R') {
			hr_info("restart signal received");
			hr_upgrade_start();
		} else if (buf[i] == 'T') {
			hr_info("stop signal received");
			hr_stop();
		}
	}
}

/* ---- roles ---- */

/* Sets up what the owner needs; called with hr_agent_lock held or from the
 * agent thread itself (take-over). */
static void hr_setup_owner(void)
{
	if (hr_agent_owner)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	A.started_unix = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	hr_agent_owner = 1;
	/* Under a keeper, signals, control, pid file and spawning are its. */
	if (hr_under_keeper())
		return;
	hr_signals_take();
	if (hr_pipe[0] < 0 && pipe2(hr_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
		hr_pipe[0] = hr_shimfd_high(hr_pipe[0]);
		hr_pipe[1] = hr_shimfd_high(hr_pipe[1]);
		hr_fd_set(hr_pipe[0], HR_FD_SHIM);
		hr_fd_set(hr_pipe[1], HR_FD_SHIM);
	}
	A.ctl = hr_control_open();
	if (hr_cfg.ready_fd >= 0 && hr_fd_kind(hr_fd_get(hr_cfg.ready_fd)) == HR_FD_SHIM)
		A.pred = hr_cfg.ready_fd;
}

/* Whether this non-owner process should take the listeners over: its
 * parent owned them and exited on purpose (a daemonizing server). */
static void hr_watch_owner(struct pollfd *pf, int *n, int *slot)
{
	pid_t owner = atomic_load(&hr_gen->owner);
	*slot = -1;
	if (owner <= 0 || owner != hr_parent_at_fork || hr_gen_phase() != HR_PHASE_RUNNING)
		return;
	if (A.watched_owner != owner) {
		hr_close_shim(&A.owner_pidfd);
		A.watched_owner = owner;
		A.owner_pidfd = hr_shimfd_high((int)hr_real.syscall(SYS_pidfd_open, owner, 0));
		if (A.owner_pidfd < 0) {
			pf[*n] = (struct pollfd){ .fd = -1 };
			*slot = (*n)++; /* gone already: judged below, once */
			return;
		}
		hr_fd_set(A.owner_pidfd, HR_FD_SHIM);
	}
	/* Judged: it died without handing its listeners on (SIGKILL), so
	 * there is nothing left to watch for; looking again would spin. */
	if (A.owner_pidfd < 0)
		return;
	pf[*n] = (struct pollfd){ .fd = A.owner_pidfd, .events = POLLIN };
	*slot = (*n)++;
}

static void hr_maybe_take_over(void)
{
	pid_t owner = A.watched_owner;
	if (hr_pid_alive(owner))
		return;
	hr_close_shim(&A.owner_pidfd);
	if (!atomic_load(&hr_gen->owner_leaving) ||
	    !atomic_compare_exchange_strong(&hr_gen->owner, &owner, hr_self))
		return;
	atomic_store(&hr_gen->owner_leaving, 0);
	hr_info("pid %d exited after forking us: taking over its listeners", (int)owner);
	hr_setup_owner();
	hr_pidfile_write(hr_self);
}

static void *hr_agent_main(void *unused)
{
	(void)unused;
	int stopped_local = 0;
	/* Closed when an earlier start failed (hr_start_thread). */
	if (hr_agent_owner && A.ctl < 0 && !hr_under_keeper())
		A.ctl = hr_control_open();
	pthread_mutex_lock(&hr_shimfd_lock);
	for (;; pthread_mutex_unlock(&hr_shimfd_lock), pthread_mutex_lock(&hr_shimfd_lock)) {
		long long now = hr_now_ms();
		int timeout = -1;
		struct pollfd pf[8 + HR_MAX_CLIENTS];
		int n = 0, i_pipe = -1, i_ctl = -1, i_sock = -1, i_pidfd = -1, i_pred = -1,
		    i_wake = -1, i_owner = -1, i_clients = -1;
		int owner = hr_agent_owner && hr_is_owner();

		if (owner) {
			hr_check_ready(now, &timeout);
			hr_ready_poll_timeout(&timeout);
			pf[i_pipe = n++] = (struct pollfd){ .fd = hr_pipe[0], .events = POLLIN };
			int ctl_paused = now < A.ctl_paused_until;
			pf[i_ctl = n++] = (struct pollfd){ .fd = ctl_paused ? -1 : A.ctl,
							   .events = POLLIN };
			if (ctl_paused && (timeout < 0 || A.ctl_paused_until - now < timeout))
				timeout = (int)(A.ctl_paused_until - now);
			hr_expire_clients(now, &timeout);
			if (A.upgrading) {
				pf[i_sock = n++] =
					(struct pollfd){ .fd = A.child.sock, .events = POLLIN };
				pf[i_pidfd = n++] = (struct pollfd){
					.fd = A.child_exited ? -1 : A.child.pidfd, .events = POLLIN
				};
				int left = (int)(A.upgrade_deadline - now);
				if (left <= 0) {
					char why[96];
					snprintf(why, sizeof why, "successor not ready within %.1f s",
						 hr_cfg.ready_timeout);
					hr_upgrade_end(why, 0);
					continue;
				}
				if (timeout < 0 || left < timeout)
					timeout = left;
			}
			if (A.awaiting_ack) {
				pf[i_pred = n++] = (struct pollfd){ .fd = A.pred, .events = POLLIN };
				int left = (int)(A.ack_deadline - now);
				if (left <= 0) {
					hr_on_pred_readable(1);
					continue;
				}
				if (timeout < 0 || left < timeout)
					timeout = left;
			}
			i_clients = n;
			for (int i = 0; i < HR_MAX_CLIENTS; i++)
				pf[n++] = (struct pollfd){ .fd = A.clients[i].fd, .events = POLLIN };
		} else {
			hr_watch_owner(pf, &n, &i_owner);
			if (i_owner >= 0 && pf[i_owner].fd < 0) {
				hr_maybe_take_over();
				continue;
			}
		}
		if (hr_gen_accepting()) {
			int wake = hr_wake_fd;
			pf[i_wake = n++] = (struct pollfd){ .fd = wake, .events = POLLIN };
		} else {
			/* Under a keeper the owner drains like every other process:
			 * the keeper counts and ends the generation. */
			if (!stopped_local && (!owner || hr_under_keeper())) {
				hr_listeners_stop_local();
				A.next_tick = now;
			}
			stopped_local = 1;
			if (now >= A.next_tick) {
				if (owner && A.draining)
					hr_drain_tick(now);
				else
					hr_drain_close_idle();
				A.next_tick = now + HR_TICK_MS;
			}
			int left = (int)(A.next_tick - now);
			if (timeout < 0 || left < timeout)
				timeout = left;
		}

		/* An fd moved meanwhile (hr_shimfd_evict) reports on its old
		 * number; the handlers use the new one, non-blocking. */
		pthread_mutex_unlock(&hr_shimfd_lock);
		int ready = hr_real.poll(pf, (nfds_t)n, timeout);
		pthread_mutex_lock(&hr_shimfd_lock);
		if (ready <= 0)
			continue;
		if (i_pipe >= 0 && pf[i_pipe].revents)
			hr_on_pipe();
		if (i_ctl >= 0 && pf[i_ctl].revents)
			hr_on_ctl();
		if (i_pidfd >= 0 && pf[i_pidfd].revents && A.upgrading)
			hr_on_child_exit();
		if (i_sock >= 0 && pf[i_sock].revents && A.upgrading)
			hr_on_child_sock();
		if (i_pred >= 0 && pf[i_pred].revents && A.awaiting_ack)
			hr_on_pred_readable(0);
		if (i_owner >= 0 && pf[i_owner].revents)
			hr_maybe_take_over();
		for (int i = 0; i_clients >= 0 && i < HR_MAX_CLIENTS; i++)
			if (pf[i_clients + i].revents && A.clients[i].fd >= 0)
				hr_on_client(&A.clients[i]);
	}
	return NULL;
}

/* When the agent thread could not be made (RLIMIT_NPROC, memory): the next
 * attempt, so the hooks that ask for it do not try (and log) on every call. */
static long long hr_agent_retry_ms;

/* The successor's own agent cannot run: its predecessor learns why now,
 * not from its ready timeout. */
static void hr_report_start_failure(const char *why)
{
	if (hr_cfg.ready_fd < 0 || hr_fd_kind(hr_fd_get(hr_cfg.ready_fd)) != HR_FD_SHIM)
		return;
	char msg[160];
	int len = snprintf(msg, sizeof msg, "fail cannot start the agent thread: %s\n", why);
	ssize_t ignored = send(hr_cfg.ready_fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)ignored;
}

/* Where the agent keeps its fds: they follow an app's dup2() onto them. */
static void hr_agent_register_fds(void)
{
	hr_shimfd_ref(&hr_pipe[0]);
	hr_shimfd_ref(&hr_pipe[1]);
	hr_shimfd_ref(&A.ctl);
	hr_shimfd_ref(&A.pred);
	hr_shimfd_ref(&A.owner_pidfd);
	hr_shimfd_ref(&A.child.sock);
	hr_shimfd_ref(&A.child.pidfd);
	for (int i = 0; i < HR_MAX_CLIENTS; i++)
		hr_shimfd_ref(&A.clients[i].fd);
}

static void hr_start_thread(int owner)
{
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t mask, old;
	/* The owner's agent may take the shim's signals even when the app
	 * blocks them everywhere (nginx waits in sigsuspend); nothing else. */
	sigfillset(&mask);
	if (owner) {
		sigdelset(&mask, hr_cfg.restart_signal);
		sigdelset(&mask, hr_cfg.stop_signal);
	}
	hr_agent_register_fds();
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_sigmask(SIG_SETMASK, &mask, &old);
	int err = pthread_create(&tid, &attr, hr_agent_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err) {
		if (!hr_agent_retry_ms) {
			hr_error("cannot start the agent thread: %s; restarts disabled until it "
				 "can (retried each second)",
				 strerror(err));
			/* A first generation still names its process; a successor
			 * fails its upgrade (its predecessor keeps the file). */
			if (owner && hr_cfg.ready_fd < 0)
				hr_pidfile_write(hr_self);
			else if (owner)
				hr_report_start_failure(strerror(err));
		}
		/* Nobody would answer: the operator is told at once instead. */
		hr_close_shim(&A.ctl);
		hr_agent_retry_ms = hr_now_ms() + 1000;
		return;
	}
	if (hr_agent_retry_ms)
		hr_info("agent thread started; restarts enabled");
	hr_agent_retry_ms = 0;
	hr_agent_pid = hr_self;
}

/* Whether a failed start is too recent to try again. */
static int hr_agent_backing_off(void)
{
	return hr_agent_retry_ms && hr_now_ms() < hr_agent_retry_ms;
}

void hr_agent_start_owner(void)
{
	if (hr_under_keeper()) {
		hr_holds_listeners = 1; /* the keeper does the owner's work */
		return;
	}
	if (!hr_gen || (hr_agent_pid == hr_self && hr_agent_owner))
		return;
	if (hr_agent_backing_off())
		return;
	pthread_mutex_lock(&hr_agent_lock);
	hr_holds_listeners = 1;
	if (!hr_agent_owner)
		hr_setup_owner();
	if (hr_agent_pid != hr_self)
		hr_start_thread(1);
	pthread_mutex_unlock(&hr_agent_lock);
}

void hr_agent_ensure_worker_slow(void)
{
	if (!hr_gen || hr_agent_backing_off())
		return;
	pthread_mutex_lock(&hr_agent_lock);
	if (hr_agent_pid != hr_self)
		hr_start_thread(hr_agent_owner);
	pthread_mutex_unlock(&hr_agent_lock);
}

void hr_agent_after_fork_child(void)
{
	/* The agent thread did not survive the fork; its fds belong to the
	 * parent's duties. The pipe's write end stays: it pokes the owner. So
	 * does the readiness channel: a daemonizing successor's child reports
	 * readiness on it after its parent exits. */
	pthread_mutex_init(&hr_agent_lock, NULL);
	hr_agent_owner = 0;
	hr_agent_retry_ms = 0;
	hr_close_shim(&hr_pipe[0]);
	hr_close_shim(&hr_pipe[1]);
	hr_close_shim(&A.ctl);
	hr_close_shim(&A.owner_pidfd);
	A.watched_owner = 0;
	A.awaiting_ack = 0;
	if (A.upgrading) {
		hr_close_shim(&A.child.sock);
		hr_close_shim(&A.child.pidfd);
		A.upgrading = 0;
	}
	for (int i = 0; i < HR_MAX_CLIENTS; i++)
		hr_close_shim(&A.clients[i].fd);
	A.draining = 0;
	A.exiting = 0;
}
