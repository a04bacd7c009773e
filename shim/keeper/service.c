/* The service over time: restarts, stops, a successor's readiness or
 * failure, a live generation lost unasked (replaced from the listeners the
 * keeper holds, with a bounded backoff). */
#include "keeper.h"

#include "../config.h"
#include "../log.h"
#include "../notify.h"
#include "../pidfile.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define HK_BACKOFF_MIN_MS 100
#define HK_BACKOFF_MAX_MS 10000
#define HK_STABLE_MS 30000 /* a generation live this long resets the backoff */
#define HK_READY_POLL_MS 10

void hk_reply_restart_waiters(const char *line)
{
	for (int i = 0; i < HK_MAX_CLIENTS; i++)
		if (K.clients[i].fd >= 0 && K.clients[i].waits_restart)
			hk_control_reply(&K.clients[i], line);
}

static void hk_describe_status(int status, char *out, size_t outlen)
{
	if (WIFEXITED(status))
		snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, outlen, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(out, outlen, "ended (status 0x%x)", status);
}

static void hk_write_pidfile_once(void)
{
	if (!K.pidfile_written && hr_pidfile_write(K.self) == 0)
		K.pidfile_written = true;
}

void hk_on_ready(struct hk_gen *g)
{
	long long now = hk_now_ms();
	g->ready = true;
	g->ready_ms = now;
	g->state = HK_LIVE;
	pid_t main = hk_gen_main(g);
	if (g->region)
		atomic_store(&g->region->ready_done, 1);
	struct hk_gen *old = K.live != g ? K.live : NULL;
	K.live = g;
	if (K.next == g)
		K.next = NULL;
	if (!old) {
		hk_write_pidfile_once();
		hr_info("ready: generation %ld, pid %d, %d listener%s", g->number, (int)main,
			K.n_listeners, K.n_listeners == 1 ? "" : "s");
		hr_notify("READY=1\nSTATUS=Serving (generation %ld, pid %d)", g->number, (int)main);
		return;
	}
	long long ms = now - g->spawned_ms;
	hk_gen_begin_drain(old, HR_PHASE_DRAINING); /* no-op for one already gone */
	hr_info("handover to generation %ld (pid %d) after %lld ms; generation %ld drains %ld "
		"connection%s",
		g->number, (int)main, ms, old->number, hk_gen_connections(old, false),
		hk_gen_connections(old, false) == 1 ? "" : "s");
	hr_notify("READY=1\nSTATUS=Serving (generation %ld, pid %d)", g->number, (int)main);
	char line[96];
	snprintf(line, sizeof line, "ok pid=%d ms=%lld", (int)main, ms);
	hk_reply_restart_waiters(line);
}

/* The exit status of the service: what its live generation's main process
 * ended with; ending by the stop signal we sent is a graceful 0. */
static int hk_service_status(const struct hk_gen *g)
{
	int st = g->main_reaped ? g->main_status : g->root_status;
	if (g->killed)
		return 128 + SIGKILL;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return WTERMSIG(st) == hr_cfg.stop_signal && g->state == HK_ENDING ? 0
										  : 128 + WTERMSIG(st);
	return 1;
}

/* The next attempt after a live generation was lost, with a bounded,
 * growing delay (reset once a generation stayed up for a while). */
static void hk_schedule_respawn(void)
{
	long long now = hk_now_ms();
	if (K.live && K.live->ready && now - K.live->ready_ms >= HK_STABLE_MS)
		K.backoff_ms = 0;
	K.backoff_ms = K.backoff_ms ? K.backoff_ms * 2 : HK_BACKOFF_MIN_MS;
	if (K.backoff_ms > HK_BACKOFF_MAX_MS)
		K.backoff_ms = HK_BACKOFF_MAX_MS;
	K.respawn_at = now + K.backoff_ms;
}

void hk_on_failed_start(struct hk_gen *g, const char *why)
{
	char tail[400];
	hk_gen_stderr_tail(g, tail, sizeof tail);
	snprintf(g->why, sizeof g->why, "%s%s%s", why, tail[0] ? ": " : "", tail);
	int status = hk_service_status(g);
	hk_gen_kill_all(g, SIGKILL);
	g->state = HK_ENDING;
	g->killed = true;
	g->deadline_ms = hk_now_ms() + 1000;
	if (K.next == g)
		K.next = NULL;
	if (K.live == g) {
		/* The very first generation: the service cannot start. */
		hr_error("generation %ld failed to start: %s", g->number, g->why);
		K.exit_status = status ? status : 1;
		K.status_final = true;
		K.stopping = true;
		return;
	}
	if (K.live && K.live->crashed && !K.stopping) {
		hk_schedule_respawn();
		hr_error("generation %ld failed to start: %s; next attempt in %d ms", g->number,
			 g->why, K.backoff_ms);
		return;
	}
	hr_error("upgrade failed: %s; generation %ld still serving", g->why,
		 K.live ? K.live->number : 0);
	hr_notify("READY=1\nSTATUS=Upgrade failed (%s); still serving", g->why);
	char line[600];
	snprintf(line, sizeof line, "fail %s", g->why);
	hk_reply_restart_waiters(line);
}

void hk_restart(void)
{
	const char *refuse = NULL;
	if (K.stopping)
		refuse = "the service is stopping";
	else if (K.next) {
		hr_info("restart already in progress (generation %ld)", K.next->number);
		return;
	} else if (K.n_listeners == 0)
		refuse = K.unseen[0] ? K.unseen : "no listening socket to hand over";
	else if (hk_seccomp_refusal())
		refuse = hk_seccomp_refusal();
	else if (K.respawn_at || (K.live && K.live->crashed))
		refuse = "the service is being restarted after a crash";
	else if (!K.live || !K.live->ready)
		refuse = "the service is not ready yet";
	if (refuse) {
		char line[420];
		hr_warn("restart refused: %s", refuse);
		snprintf(line, sizeof line, "fail %s", refuse);
		hk_reply_restart_waiters(line);
		return;
	}
	char err[300];
	hr_notify("RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=Upgrading: starting %s",
		  hk_now_ms() * 1000, K.exe);
	/* Files the successor writes from now on are its (the old generation's
	 * unlink of its rewritten pid file is skipped). */
	if (K.live && K.live->region) {
		struct timespec wall;
		clock_gettime(CLOCK_REALTIME, &wall);
		atomic_store(&K.live->region->upgrade_wall_ns,
			     (long long)wall.tv_sec * 1000000000LL + wall.tv_nsec);
	}
	struct hk_gen *g = hk_gen_spawn(err, sizeof err);
	if (!g) {
		char line[320];
		hr_error("upgrade failed: %s", err);
		hr_notify("READY=1\nSTATUS=Upgrade failed (%s); still serving", err);
		snprintf(line, sizeof line, "fail %s", err);
		hk_reply_restart_waiters(line);
		return;
	}
	K.next = g;
	hr_info("upgrade: started generation %ld as pid %d with %d listener%s", g->number,
		(int)g->root, K.n_listeners, K.n_listeners == 1 ? "" : "s");
}

void hk_stop(void)
{
	if (K.stopping) {
		hr_info("stop: already stopping");
		return;
	}
	K.stopping = true;
	K.respawn_at = 0;
	if (K.next)
		hk_on_failed_start(K.next, "stopped by request");
	long conns = K.live ? hk_gen_connections(K.live, false) : 0;
	hr_info("stop: draining %ld connection%s", conns, conns == 1 ? "" : "s");
	hr_notify("STOPPING=1\nSTATUS=Stopping: draining %ld connections", conns);
	for (int i = 0; i < HK_MAX_GENS; i++) {
		struct hk_gen *g = &K.gens[i];
		if (g->number && (g->state == HK_LIVE || g->state == HK_STARTING))
			hk_gen_begin_drain(g, HR_PHASE_STOPPING);
	}
}

void hk_on_gen_lost(struct hk_gen *g)
{
	char how[96];
	int st = g->main_reaped ? g->main_status : g->root_status;
	hk_describe_status(st, how, sizeof how);
	g->crashed = true;
	if (!g->ready && K.live == g && K.last_number == g->number && g->number == 1) {
		/* Never served: a broken command or configuration. */
		hr_error("generation 1 (pid %d) %s before it was ready", (int)g->root, how);
		K.exit_status = hk_service_status(g);
		K.stopping = true;
		hk_gen_kill_all(g, SIGKILL);
		return;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && !hk_gen_alive(g)) {
		hr_info("generation %ld (pid %d) exited with status 0: the service ends", g->number,
			(int)hk_gen_main(g));
		K.exit_status = 0;
		K.stopping = true;
		return;
	}
	hk_schedule_respawn();
	hr_error("generation %ld (pid %d) %s; starting a new generation in %d ms (connections "
		 "queue meanwhile)",
		 g->number, (int)hk_gen_main(g), how, K.backoff_ms);
}

/* Per generation: a successor that failed, a live one lost, one that is
 * gone for good. */
static void hk_judge(struct hk_gen *g, long long now)
{
	pid_t main = hk_gen_main(g);
	bool main_gone = main == g->root ? g->root_reaped : !hk_proc_alive(main);
	bool leaving = g->region && atomic_load(&g->region->owner_leaving);
	if (g->state == HK_STARTING) {
		char why[160];
		if (hk_gen_ready_now(g, now)) {
			hk_on_ready(g);
			return;
		}
		if (K.live == g && g->root_reaped && g->chan_hup && WIFEXITED(g->root_status) &&
		    WEXITSTATUS(g->root_status) == 0) {
			/* A command that ran and ended well before serving: done. */
			hr_info("generation %ld (pid %d) exited with status 0: the service ends",
				g->number, (int)g->root);
			K.exit_status = 0;
			K.status_final = true;
			K.stopping = true;
			g->state = HK_GONE;
			return;
		}
		bool root_left = g->root_reaped && WIFEXITED(g->root_status) &&
				 WEXITSTATUS(g->root_status) == 0;
		if (root_left && g->failed_member) {
			char how[96], full[300];
			hk_describe_status(g->failed_member_status, how, sizeof how);
			snprintf(full, sizeof full,
				 "successor pid %d exited with status 0 (daemonized); its process pid %d "
				 "then %s before it was ready",
				 (int)g->root, (int)g->failed_member, how);
			hk_on_failed_start(g, full);
		} else if (g->root_reaped && (!root_left || g->chan_hup)) {
			hk_describe_status(g->root_status, why, sizeof why);
			char full[200];
			snprintf(full, sizeof full, "successor %s", why);
			hk_on_failed_start(g, full);
		} else if (now >= g->deadline_ms) {
			if (K.live == g && g->number == 1 && !K.unseen_checked) {
				/* The first generation is the service: never killed for
				 * being slow; said once why restarts will not work. */
				K.unseen_checked = true;
				char addrs[160];
				pid_t who = K.n_listeners ? 0
							  : hk_gen_unseen_listener(g, addrs, sizeof addrs);
				if (who && !hk_proc_maps(who, K.library))
					snprintf(K.unseen, sizeof K.unseen,
						 "pid %d listens on %s without the library loaded: a "
						 "static binary, or a program its parent exec'd in "
						 "secure-execution mode (real and effective uid differ), "
						 "where the loader ignores LD_PRELOAD",
						 (int)who, addrs);
				else if (who)
					snprintf(K.unseen, sizeof K.unseen,
						 "pid %d listens on %s but the library never saw it: a "
						 "static binary or raw system calls (Go)?",
						 (int)who, addrs);
				else if (!K.n_listeners)
					snprintf(K.unseen, sizeof K.unseen,
						 "no listening socket seen within %.1f s",
						 hr_cfg.ready_timeout);
				if (K.unseen[0])
					hr_warn("%s; hot restarts are not possible", K.unseen);
				else
					hr_warn("generation 1 not ready within %.1f s", hr_cfg.ready_timeout);
				hk_write_pidfile_once();
			} else if (K.live != g) {
				snprintf(why, sizeof why, "successor not ready within %.1f s",
					 hr_cfg.ready_timeout);
				hk_on_failed_start(g, why);
			}
		}
		if (K.live == g && g->state == HK_STARTING && !hk_gen_alive(g))
			hk_on_gen_lost(g);
		return;
	}
	if (g->state == HK_LIVE && !g->crashed && ((main_gone && !leaving) || !hk_gen_alive(g)))
		hk_on_gen_lost(g);
	/* An old generation whose main process died mid-drain (kill -9 of a
	 * master) drains on: its workers finish their requests, and then all
	 * of them get the stop signal (hk_gen_tick). */
	if (g->state != HK_GONE && !hk_gen_alive(g)) {
		if (K.live == g && !K.stopping && !g->crashed)
			hk_on_gen_lost(g);
		if (K.live == g && !K.status_final)
			K.exit_status = hk_service_status(g);
		g->state = HK_GONE;
		hr_debug("generation %ld is gone", g->number);
		if (K.live == g && K.stopping)
			K.live = NULL;
	}
}

void hk_service_tick(long long now, int *timeout)
{
	for (int i = 0; i < HK_MAX_GENS; i++) {
		struct hk_gen *g = &K.gens[i];
		if (!g->number || g->state == HK_GONE)
			continue;
		hk_judge(g, now);
		hk_readiness_tick(g, now, timeout);
		hk_gen_tick(g, now);
		long long due = g->state == HK_DRAINING ? g->next_tick_ms : g->deadline_ms;
		bool timed = g->state == HK_DRAINING || g->state == HK_ENDING ||
			     g->state == HK_STARTING;
		if (timed) {
			long long left = due > now ? due - now : 0;
			if (g->state == HK_STARTING)
				left = HK_READY_POLL_MS; /* readiness is read from the region */
			if (*timeout < 0 || left < *timeout)
				*timeout = (int)left;
		}
	}
	if (K.respawn_at && !K.stopping) {
		if (now >= K.respawn_at) {
			K.respawn_at = 0;
			char err[300];
			struct hk_gen *g = hk_gen_spawn(err, sizeof err);
			if (!g) {
				hr_error("cannot start a new generation: %s", err);
				K.respawn_at = now + HK_BACKOFF_MAX_MS;
			} else {
				hr_info("started generation %ld as pid %d", g->number, (int)g->root);
				K.next = g;
			}
		} else {
			int left = (int)(K.respawn_at - now);
			if (*timeout < 0 || left < *timeout)
				*timeout = left;
		}
	}
}
