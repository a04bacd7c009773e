/* Generations as the keeper sees them: starting one (fork, its own session,
 * the keeper's credentials and environment, listeners at 3..), reading its
 * channel, driving its drain through the shared region, and ending it. */
#include "keeper.h"

#include "../config.h"
#include "../listenfds.h"
#include "../log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HK_TICK_MS 50	     /* drain accounting */
#define HK_OVERDUE_MS 1000   /* after the drain timeout, before the stop signal */
#define HK_PRIVATE_FDS 3     /* channel, region, wake eventfd */
#define HK_PRIVATE_TOP 1024  /* the keeper's fds sit just below this */
#define HK_ENV_ADDED 12	     /* variables a generation gets besides the base */

static bool hk_slot_is_member(const struct hk_gen *g, pid_t pid);

/* The root while it lives; after it (a daemonizing server, a crashed
 * master), the oldest process of the generation that holds a listener.
 * A root that exited but is not reaped yet (its SIGCHLD still queued
 * behind the readiness that follows its exit) is gone already. */
pid_t hk_gen_main(struct hk_gen *g)
{
	if (!g->root_reaped && hk_proc_alive(g->root))
		return g->root;
	if (g->main > 0 && g->main != g->root && hk_proc_alive(g->main))
		return g->main;
	unsigned long inos[HK_MAX_LISTENERS];
	for (int i = 0; i < K.n_listeners; i++)
		inos[i] = K.listeners[i].ino;
	pid_t best = 0;
	unsigned long long best_start = ~0ULL;
	for (int i = 0; g->region && i < HR_GEN_SLOTS; i++) {
		pid_t pid = atomic_load(&g->region->slots[i].pid);
		if (pid <= 0 || !hk_slot_is_member(g, pid) || !hk_proc_holds_any(pid, inos, K.n_listeners))
			continue;
		unsigned long long start = hk_proc_starttime(pid);
		if (start && start < best_start) {
			best = pid;
			best_start = start;
		}
	}
	g->main = best ? best : g->root;
	return g->main;
}

/* Whether pid is a process of g: its root while unreaped, else a live
 * process holding g's channel at the number g was given (the library keeps
 * it open, across fork and exec). A slot of a process that died may name a
 * reused PID, even one of the next generation's: that one holds another
 * channel. */
static bool hk_slot_is_member(const struct hk_gen *g, pid_t pid)
{
	if (pid <= 0 || pid == K.self)
		return false;
	if (pid == g->root && !g->root_reaped)
		return true;
	return hk_proc_alive(pid) && hk_proc_fd_is_socket(pid, g->chan_fdno, g->chan_ino);
}

/* with_accepts: also accept() calls under way, so a drain never ends
 * between the kernel handing out a connection and the library counting it. */
long hk_gen_connections(const struct hk_gen *g, bool with_accepts)
{
	long total = 0;
	if (!g->region)
		return 0;
	for (int i = 0; i < HR_GEN_SLOTS; i++) {
		const struct hr_gen_slot *s = &g->region->slots[i];
		pid_t pid = atomic_load(&s->pid);
		/* accepting first: an accept() under way counts its connection
		 * before it stops counting itself, so one of the two is seen. */
		long n = with_accepts ? atomic_load(&s->accepting) : 0;
		n += atomic_load(&s->conns);
		if (pid && n > 0 && hk_slot_is_member(g, pid))
			total += n;
	}
	return total;
}

bool hk_gen_alive(const struct hk_gen *g)
{
	return !g->root_reaped || !g->chan_hup;
}

/* Every process proven to belong to g: its root, its region's slots, and
 * (scan) descendants of the keeper that hold its channel, which finds
 * processes without the library's slot (a static binary's children). */
static int hk_gen_members(const struct hk_gen *g, bool scan, pid_t *out, int max)
{
	int n = 0;
	if (!g->root_reaped && n < max)
		out[n++] = g->root;
	for (int i = 0; g->region && i < HR_GEN_SLOTS && n < max; i++) {
		pid_t pid = atomic_load(&g->region->slots[i].pid);
		bool seen = false;
		for (int k = 0; k < n; k++)
			seen |= out[k] == pid;
		if (!seen && hk_slot_is_member(g, pid))
			out[n++] = pid;
	}
	if (g->chan_hup || !scan)
		return n;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && n < max && (e = readdir(d))) {
		pid_t pid = (pid_t)atoi(e->d_name);
		bool seen = pid <= 0 || pid == K.self;
		for (int k = 0; k < n && !seen; k++)
			seen = out[k] == pid;
		if (!seen && hk_proc_descends_from(pid, K.self) && hk_proc_holds_inode(pid, g->chan_ino))
			out[n++] = pid;
	}
	if (d)
		closedir(d);
	return n;
}

pid_t hk_gen_unseen_listener(struct hk_gen *g, char *out, size_t outlen)
{
	pid_t members[512];
	int n = hk_gen_members(g, true, members, 512);
	for (int i = 0; i < n; i++)
		if (hk_proc_listening(members[i], out, outlen) > 0)
			return members[i];
	return 0;
}

void hk_gen_kill_all(struct hk_gen *g, int sig)
{
	pid_t members[512];
	int n = hk_gen_members(g, true, members, 512);
	for (int i = 0; i < n; i++) {
		if (members[i] == g->root && !g->root_reaped && g->root_pidfd >= 0)
			syscall(SYS_pidfd_send_signal, g->root_pidfd, sig, NULL, 0);
		else
			kill(members[i], sig);
	}
}

/* ---- spawning ---- */

static int hk_set_var(char **env, int *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int hk_set_var(char **env, int *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&env[*n], fmt, ap);
	va_end(ap);
	if (r < 0) {
		env[*n] = NULL;
		return -1;
	}
	(*n)++;
	return 0;
}

/* pid:starttime of every live process of the existing generations, so the
 * successor's "already running?" checks can tell them from strangers. */
static char *hk_old_pids(void)
{
	size_t cap = 64, len = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	out[0] = '\0';
	for (int i = 0; i < HK_MAX_GENS; i++) {
		struct hk_gen *g = &K.gens[i];
		if (!g->number || g->state == HK_GONE)
			continue;
		pid_t members[512];
		int n = hk_gen_members(g, false, members, 512);
		for (int k = 0; k < n; k++) {
			unsigned long long st = hk_proc_starttime(members[k]);
			if (!st)
				continue;
			if (len + 48 > cap) {
				char *bigger = realloc(out, cap *= 2);
				if (!bigger)
					return out;
				out = bigger;
			}
			len += (size_t)snprintf(out + len, cap - len, "%s%d:%llu", len ? "," : "",
						(int)members[k], st);
		}
	}
	return out;
}

/* The environment of generation g: the base, then what it gets anew. The
 * LISTEN_PID value is left as digits to fill in the child. */
static char **hk_gen_env(long number, int first_private, char **pid_digits)
{
	int base = 0;
	while (K.base_env[base])
		base++;
	char **env = calloc((size_t)base + HK_ENV_ADDED + 1, sizeof *env);
	if (!env)
		return NULL;
	int n = 0;
	for (; n < base; n++)
		env[n] = K.base_env[n];
	int fail = 0;
	fail |= hk_set_var(env, &n, "LD_PRELOAD=%s%s%s", K.library, *K.preload_rest ? ":" : "",
			   K.preload_rest);
	fail |= hk_set_var(env, &n, "%s=%ld", HR_ENV_GENERATION, number);
	fail |= hk_set_var(env, &n, "%s=%d", HR_ENV_KEEPER_FD, first_private);
	fail |= hk_set_var(env, &n, "%s=%d", HR_ENV_GEN_FD, first_private + 1);
	fail |= hk_set_var(env, &n, "%s=%d", HR_ENV_WAKE_FD, first_private + 2);
	char *old = hk_old_pids();
	if (old && *old)
		fail |= hk_set_var(env, &n, "%s=%s", HR_ENV_OLD_PIDS, old);
	free(old);
	if (K.n_listeners) {
		size_t names = 1;
		for (int i = 0; i < K.n_listeners; i++)
			names += strlen(K.listeners[i].name) + 1;
		char *joined = calloc(1, names);
		for (int i = 0; joined && i < K.n_listeners; i++) {
			if (i)
				strcat(joined, ":");
			strcat(joined, K.listeners[i].name);
		}
		fail |= !joined;
		fail |= hk_set_var(env, &n, "LISTEN_FDS=%d", K.n_listeners);
		fail |= hk_set_var(env, &n, "LISTEN_FDNAMES=%s", joined ? joined : "");
		free(joined);
		/* Room for any pid: filled in by the child. */
		fail |= hk_set_var(env, &n, "LISTEN_PID=%s", "0000000000");
		if (!fail)
			*pid_digits = env[n - 1] + strlen("LISTEN_PID=");
	}
	env[n] = NULL;
	if (fail) {
		for (int i = base; i < n; i++)
			free(env[i]);
		free(env);
		return NULL;
	}
	return env;
}

static void hk_free_env(char **env)
{
	if (!env)
		return;
	int base = 0;
	while (K.base_env[base])
		base++;
	for (int i = base; env[i]; i++)
		free(env[i]);
	free(env);
}

/* In the forked child: only async-signal-safe calls until execve. */
static void hk_child(char **env, char *pid_digits, const int *private_fds, int first_private,
		     int errfd, bool supervise)
{
	int n = K.n_listeners;
	setsid();
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	for (int sig = 1; sig < _NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		sa.sa_handler = sigismember(&K.ignored, sig) ? SIG_IGN : SIG_DFL;
		sigaction(sig, &sa, NULL);
	}
	/* Everything the child keeps goes above every target number first, so
	 * no dup2 below overwrites a source still needed. */
	int top = first_private + HK_PRIVATE_FDS;
	int tmp[HK_MAX_LISTENERS + HK_PRIVATE_FDS];
	for (int i = 0; i < n; i++)
		if ((tmp[i] = fcntl(K.listeners[i].fd, F_DUPFD, top)) < 0)
			goto fail;
	for (int i = 0; i < HK_PRIVATE_FDS; i++)
		if ((tmp[n + i] = fcntl(private_fds[i], F_DUPFD, top)) < 0)
			goto fail;
	for (int i = 0; i < n; i++)
		if (dup2(tmp[i], HR_LISTEN_FDS_START + i) < 0)
			goto fail;
	for (int i = 0; i < HK_PRIVATE_FDS; i++)
		if (dup2(tmp[n + i], first_private + i) < 0)
			goto fail;
	/* The error pipe is close-on-exec: keep it above, close the rest. */
	int err_hi = fcntl(errfd, F_DUPFD_CLOEXEC, top);
	if (err_hi < 0)
		goto fail;
	errfd = err_hi;
	if (HR_LISTEN_FDS_START + n < first_private)
		syscall(SYS_close_range, HR_LISTEN_FDS_START + n, first_private - 1, 0);
	syscall(SYS_close_range, top, errfd - 1, 0);
	syscall(SYS_close_range, errfd + 1, ~0U, 0);
	if (pid_digits) {
		char digits[16];
		int len = hr_fmt_long(digits, (long)getpid());
		memset(pid_digits, 0, 10);
		memcpy(pid_digits, digits, (size_t)len);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (supervise)
		hk_seccomp_child_install(first_private);
	execve(K.exe, K.argv, env);
fail:;
	int e = errno;
	ssize_t ignored = write(errfd, &e, sizeof e);
	(void)ignored;
	_exit(127);
}

static struct hk_gen *hk_gen_slot(void)
{
	for (int i = 0; i < HK_MAX_GENS; i++)
		if (!K.gens[i].number || (K.gens[i].state == HK_GONE && &K.gens[i] != K.live)) {
			if (K.gens[i].number)
				hk_gen_release(&K.gens[i]);
			return &K.gens[i];
		}
	return NULL;
}

/* The lowest of the generation's private fd numbers: just below 1024 (or
 * the soft fd limit), out of the way of the app's own numbers. */
static int hk_first_private(void)
{
	struct rlimit rl;
	long top = HK_PRIVATE_TOP;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)top)
		top = (long)rl.rlim_cur;
	long first = top - HK_PRIVATE_FDS;
	if (first < HR_LISTEN_FDS_START + K.n_listeners)
		first = HR_LISTEN_FDS_START + K.n_listeners;
	return (int)first;
}

struct hk_gen *hk_gen_spawn(char *err, size_t errlen)
{
	struct hk_gen *g = hk_gen_slot();
	if (!g) {
		snprintf(err, errlen, "too many generations alive at once");
		return NULL;
	}
	memset(g, 0, sizeof *g);
	g->chan = g->wake = g->root_pidfd = -1;
	int sv[2] = { -1, -1 }, memfd = -1, errpipe[2] = { -1, -1 };
	char **env = NULL;
	char *pid_digits = NULL;
	long number = K.last_number + 1;
	int first_private = hk_first_private();

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
	    (memfd = memfd_create("hotrestart-generation", MFD_CLOEXEC)) < 0 ||
	    ftruncate(memfd, sizeof(struct hr_gen)) < 0 ||
	    (g->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 || pipe2(errpipe, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot set up generation %ld: %s", number, strerror(errno));
		goto fail;
	}
	g->region = mmap(NULL, sizeof(struct hr_gen), PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (g->region == MAP_FAILED) {
		g->region = NULL;
		snprintf(err, errlen, "cannot map generation %ld's region: %s", number, strerror(errno));
		goto fail;
	}
	atomic_store(&g->region->wake_fd, -1);
	env = hk_gen_env(number, first_private, &pid_digits);
	if (!env) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	struct stat st;
	g->err_offset = fstat(2, &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
	int private_fds[HK_PRIVATE_FDS] = { sv[1], memfd, g->wake };
	bool supervise = hk_seccomp_wanted();
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		hk_child(env, pid_digits, private_fds, first_private, errpipe[1], supervise);
	close(errpipe[1]);
	errpipe[1] = -1;
	int exec_errno = 0;
	ssize_t got;
	do
		got = read(errpipe[0], &exec_errno, sizeof exec_errno);
	while (got < 0 && errno == EINTR);
	g->number = number;
	g->root = pid;
	g->root_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (got == (ssize_t)sizeof exec_errno) {
		snprintf(err, errlen, "cannot execute %s: %s", K.exe, strerror(exec_errno));
		/* Reaped by the SIGCHLD loop; the generation is gone already. */
		g->state = HK_GONE;
		g->chan_hup = true;
		g->why[0] = '\0';
		close(sv[1]);
		sv[1] = -1;
		goto fail_spawned;
	}
	K.last_number = number;
	if (supervise)
		hk_seccomp_receive(g, sv[0]);
	g->chan = sv[0];
	fcntl(g->chan, F_SETFL, O_NONBLOCK);
	g->chan_ino = hk_fd_inode(sv[1]);
	g->chan_fdno = first_private;
	g->state = HK_STARTING;
	g->spawned_ms = hk_now_ms();
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	g->started_unix = (double)wall.tv_sec + wall.tv_nsec / 1e9;
	g->deadline_ms = g->spawned_ms + (long long)(hr_cfg.ready_timeout * 1000);
	close(sv[1]);
	close(memfd);
	close(errpipe[0]);
	hk_free_env(env);
	return g;
fail:
	if (g->region)
		munmap(g->region, sizeof(struct hr_gen));
	g->region = NULL;
	if (g->wake >= 0)
		close(g->wake);
	g->wake = -1;
fail_spawned:
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (errpipe[i] >= 0)
			close(errpipe[i]);
	}
	if (memfd >= 0)
		close(memfd);
	hk_free_env(env);
	if (g->state != HK_GONE)
		memset(g, 0, sizeof *g);
	return NULL;
}

void hk_gen_release(struct hk_gen *g)
{
	if (g->chan >= 0)
		close(g->chan);
	if (g->wake >= 0)
		close(g->wake);
	if (g->root_pidfd >= 0)
		close(g->root_pidfd);
	if (g->region)
		munmap(g->region, sizeof(struct hr_gen));
	hk_supervise_close(g);
	memset(g, 0, sizeof *g);
	g->chan = g->wake = g->root_pidfd = -1;
}

/* ---- the channel ---- */

bool hk_gen_on_channel(struct hk_gen *g)
{
	for (int rounds = 0; rounds < 64; rounds++) {
		char buf[256];
		union {
			struct cmsghdr h;
			char space[CMSG_SPACE(sizeof(int))];
		} ctl;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf - 1 };
		struct msghdr msg = { .msg_iov = &iov,
				      .msg_iovlen = 1,
				      .msg_control = &ctl,
				      .msg_controllen = sizeof ctl };
		ssize_t n = recvmsg(g->chan, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return false;
		if (n <= 0) {
			g->chan_hup = true;
			return false;
		}
		buf[n] = '\0';
		int fd = -1;
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof fd);
		long value;
		if (strncmp(buf, "listen ", 7) == 0 && fd >= 0) {
			if (hk_held_add(fd, buf + 7, false) > 0)
				hr_info("generation %ld listens on %s", g->number,
					K.listeners[K.n_listeners - 1].address);
			fd = -1;
		} else if (sscanf(buf, "drop %ld", &value) == 1) {
			hk_held_drop((unsigned long)value);
		} else {
			hr_debug("generation %ld: unknown message '%.40s'", g->number, buf);
		}
		if (fd >= 0)
			close(fd);
	}
	return true;
}

void hk_gen_stderr_tail(const struct hk_gen *g, char *out, size_t outlen)
{
	out[0] = '\0';
	if (g->err_offset < 0)
		return;
	struct stat st;
	if (fstat(2, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= g->err_offset)
		return;
	char buf[4096];
	off_t from = st.st_size - g->err_offset > (off_t)sizeof buf - 1
			     ? st.st_size - (off_t)sizeof buf + 1
			     : (off_t)g->err_offset;
	/* Our stderr is open for writing only: read the same file anew. */
	int fd = open("/proc/self/fd/2", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? pread(fd, buf, sizeof buf - 1, from) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* The last lines that are the server's own, not ours. */
	const char *lines[3] = { 0 };
	int count = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "hotrestart[", 11) == 0 || !line[strspn(line, " \t\r")])
			continue;
		if (count == 3)
			memmove(lines, lines + 1, 2 * sizeof *lines), count = 2;
		lines[count++] = line;
	}
	size_t used = 0;
	for (int i = 0; i < count && used + 4 < outlen; i++) {
		int w = snprintf(out + used, outlen - used, "%s\"%s\"", i ? " " : "", lines[i]);
		if (w < 0)
			break;
		used = used + (size_t)w < outlen ? used + (size_t)w : outlen - 1;
	}
}

/* ---- readiness ---- */

#define HK_SETTLE_MS 300     /* inherited listeners not yet claimed get this long */
#define HK_FORKED_WAIT_MS 150 /* a wait seen outside the root: let a daemonizing
			       * root exit first */

bool hk_gen_ready_now(struct hk_gen *g, long long now)
{
	struct hr_gen *r = g->region;
	if (!r || !atomic_load(&r->app_waiting))
		return false;
	long long waited = atomic_load(&r->waited_ms);
	long long settle = atomic_load(&r->last_claim_ms);
	if (atomic_load(&r->n_claimed) < atomic_load(&r->n_inherited) &&
	    now < (settle ? settle : waited) + HK_SETTLE_MS)
		return false;
	/* A wait seen outside the root: the root may be a daemonizing parent
	 * on its way out; the main process is known once it left or stays. */
	if (atomic_load(&r->waiter) != g->root && !g->root_reaped &&
	    (now < waited + HK_FORKED_WAIT_MS || !hk_proc_alive(g->root)))
		return false;
	return true;
}

/* ---- draining ---- */

void hk_gen_begin_drain(struct hk_gen *g, int phase)
{
	if (g->state == HK_DRAINING || g->state == HK_ENDING || g->state == HK_GONE)
		return;
	long long now = hk_now_ms();
	g->state = HK_DRAINING;
	g->stopping = phase == HR_PHASE_STOPPING;
	if (g->region) {
		/* AF_UNIX paths the successor listens on: the old generation's
		 * exit must not unlink them. */
		int n = 0;
		for (int i = 0; i < K.n_listeners && n < HR_GEN_PATHS; i++) {
			struct sockaddr_un un;
			socklen_t len = sizeof un;
			memset(&un, 0, sizeof un);
			if (getsockname(K.listeners[i].fd, (struct sockaddr *)&un, &len) == 0 &&
			    un.sun_family == AF_UNIX && un.sun_path[0])
				memcpy(g->region->unix_paths[n++], un.sun_path, sizeof un.sun_path);
		}
		atomic_store(&g->region->n_unix_paths, n);
		atomic_store(&g->region->phase, phase);
		eventfd_write(g->wake, 1);
	}
	g->deadline_ms = now + (long long)(hr_cfg.drain_timeout * 1000);
	g->next_tick_ms = now;
}

static void hk_gen_end(struct hk_gen *g, const char *why)
{
	pid_t main = hk_gen_main(g);
	hr_info("generation %ld %s: stopping it with signal %d", g->number, why,
		hr_cfg.stop_signal);
	g->state = HK_ENDING;
	g->deadline_ms = hk_now_ms() + (long long)(hr_cfg.stop_grace * 1000);
	if (hk_proc_alive(main) && hk_slot_is_member(g, main))
		kill(main, hr_cfg.stop_signal);
	else
		hk_gen_kill_all(g, hr_cfg.stop_signal); /* headless: every member */
}

/* The library's hooks do the drain work in the app's own waits: the
 * threads blocked in one are interrupted (and the hooks wait again). */
static void hk_gen_wake_waiters(struct hk_gen *g)
{
	for (int i = 0; g->region && i < HR_GEN_SLOTS; i++) {
		pid_t pid = atomic_load(&g->region->slots[i].pid);
		if (pid > 0 && hk_slot_is_member(g, pid))
			hk_proc_wake_waiters(pid, hr_cfg.wake_signal, HR_WAKE_MAGIC);
	}
}

void hk_gen_tick(struct hk_gen *g, long long now)
{
	if (g->state == HK_DRAINING && now >= g->next_tick_ms) {
		g->next_tick_ms = now + HK_TICK_MS;
		/* The stop signal comes a tick after the last wake: a wake landing
		 * with it would make the hooks absorb the EINTR the app's own
		 * handler expects. */
		if (g->ending_why[0]) {
			hk_gen_end(g, g->ending_why);
			return;
		}
		long conns = hk_gen_connections(g, true);
		if (conns == 0) {
			snprintf(g->ending_why, sizeof g->ending_why, "drained");
		} else if (now >= g->deadline_ms && g->region &&
			   !atomic_load(&g->region->drain_overdue)) {
			/* Before the stop signal cuts what is under way, a last
			 * chance for connections between requests (idle.h). */
			atomic_store(&g->region->drain_overdue, 1);
			g->deadline_ms = now + HK_OVERDUE_MS;
			hk_gen_wake_waiters(g);
		} else if (now >= g->deadline_ms) {
			snprintf(g->ending_why, sizeof g->ending_why,
				 "reached the drain timeout with %ld connection%s", conns,
				 conns == 1 ? "" : "s");
		} else {
			hk_gen_wake_waiters(g);
		}
	} else if (g->state == HK_ENDING && now >= g->deadline_ms && !g->killed) {
		hr_error("generation %ld did not exit within %.1f s of signal %d: killing it",
			 g->number, hr_cfg.stop_grace, hr_cfg.stop_signal);
		g->killed = true;
		hk_gen_kill_all(g, SIGKILL);
		g->deadline_ms = now + 1000;
	} else if (g->state == HK_ENDING && g->killed && now >= g->deadline_ms) {
		/* Once more for members forked meanwhile; then only the reaping. */
		hk_gen_kill_all(g, SIGKILL);
		g->deadline_ms = now + 1000;
	}
}

static bool hk_region_names(const struct hk_gen *g, pid_t pid)
{
	for (int i = 0; g->region && i < HR_GEN_SLOTS; i++)
		if (atomic_load(&g->region->slots[i].pid) == pid)
			return true;
	return false;
}

void hk_gen_reaped(pid_t pid, int status)
{
	for (int i = 0; i < HK_MAX_GENS; i++) {
		struct hk_gen *g = &K.gens[i];
		if (!g->number || g->state == HK_GONE)
			continue;
		if (pid == g->root) {
			g->root_reaped = true;
			g->root_status = status;
			if (g->root_pidfd >= 0)
				close(g->root_pidfd);
			g->root_pidfd = -1;
		}
		if (pid == (g->main > 0 ? g->main : g->root)) {
			g->main_reaped = true;
			g->main_status = status;
		}
		/* A daemon child that fails after its parent left: the start
		 * failed, however long its other processes linger. */
		bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
		if (g->state == HK_STARTING && failed && pid != g->root && !g->failed_member &&
		    hk_region_names(g, pid)) {
			g->failed_member = pid;
			g->failed_member_status = status;
		}
	}
}
