/* The keeper: one long-lived parent per service (docs/keeper.md). It holds
 * the service's PID, its listeners and control, and starts every
 * generation; the library inside the server does the rest. Single
 * threaded: one poll loop, signals through a signalfd. */
#ifndef HK_KEEPER_H
#define HK_KEEPER_H

#include "../gen.h"

#include <stdbool.h>
#include <sys/types.h>

#define HK_MAX_GENS 16
#define HK_MAX_LISTENERS 256
#define HK_MAX_CLIENTS 16
#define HK_NAME_MAX 64
#define HK_ADDR_MAX 128
#define HK_CONTROL_PREFIX "hotrestart-keeper."

struct hk_listener {
	int fd;
	unsigned long ino;
	char name[HK_NAME_MAX];
	char address[HK_ADDR_MAX];
	bool inherited; /* came from the keeper's own LISTEN_FDS */
};

enum hk_state {
	HK_STARTING, /* spawned, not ready yet */
	HK_LIVE,     /* serves */
	HK_DRAINING, /* not accepting; finishing its connections */
	HK_ENDING,   /* stop signal sent; SIGKILL at the grace deadline */
	HK_GONE,
};

struct hk_gen {
	long number;
	enum hk_state state;
	pid_t root; /* the process the keeper forked */
	int root_pidfd;
	bool root_reaped;
	int root_status; /* wait status */
	pid_t main;	 /* main process: the reported owner, else root */
	pid_t failed_member; /* a process of it, not the root, that failed while starting */
	int failed_member_status;
	int main_status;
	bool main_reaped;
	int chan; /* keeper's end of the channel */
	bool chan_hup;
	unsigned long chan_ino; /* inode of the generation's end */
	int chan_fdno;		/* the fd number it has in the generation */
	struct hr_gen *region;
	int wake;
	long long err_offset; /* size of a regular-file stderr at spawn, or -1 */
	long long spawned_ms, ready_ms, deadline_ms, next_tick_ms;
	double started_unix;
	bool ready;
	bool stopping;	/* drained for a stop of the service, not a handover */
	bool killed;	/* SIGKILL was needed */
	bool crashed;	/* died or lost its main process unasked */
	char ending_why[96]; /* drained (or timed out): ended at the next tick */
	char why[512];	/* a failure, for the restart client */
	/* Without the library's hooks (seccomp.c, supervise.c, readiness.c) */
	bool supervised; /* started under the seccomp filter; notify_fd is its listener */
	int notify_fd;	 /* -1 once every process under the filter is gone */
	unsigned long claimed[HK_MAX_LISTENERS]; /* listener inodes it took by bind/listen */
	int n_claimed;
	long long last_claim_ms, next_look_ms;
};

struct hk_client {
	int fd;
	int len;
	bool waits_restart;
	bool waits_stop; /* told "stopped" as the keeper exits */
	long long deadline_ms;
	char buf[64];
};

enum hk_seccomp_mode {
	HK_SECCOMP_AUTO, /* static binaries, and servers whose listeners the library never saw */
	HK_SECCOMP_ON,	 /* every generation (run --seccomp) */
	HK_SECCOMP_OFF,	 /* never (run --no-seccomp) */
};

struct hk_keeper {
	/* how to start a generation */
	const char *exe;
	char **argv;
	char **base_env; /* the keeper's environment, less what each generation gets anew */
	const char *library;
	char *preload_rest; /* LD_PRELOAD entries besides the library */
	sigset_t ignored;   /* dispositions the keeper was started with */
	/* state */
	pid_t self;
	double started_unix;
	struct hk_listener listeners[HK_MAX_LISTENERS];
	int n_listeners;
	struct hk_gen gens[HK_MAX_GENS];
	struct hk_gen *live; /* the generation that serves (or starts, at first) */
	struct hk_gen *next; /* a successor being started */
	long last_number;
	bool stopping;
	int exit_status;
	bool status_final; /* exit_status decided, whatever ends the generations */
	bool pidfile_written;
	char unseen[400]; /* why restarts are impossible (listeners never seen) */
	bool unseen_checked;
	enum hk_seccomp_mode seccomp_mode;
	bool adopted_outside; /* a generation's listeners were taken from outside it */
	/* crash recovery */
	long long respawn_at; /* 0: none due */
	int backoff_ms;
	/* control */
	int ctl;
	struct hk_client clients[HK_MAX_CLIENTS];
	int sigfd;
};

extern struct hk_keeper K;

long long hk_now_ms(void);

/* gen.c: generations */
struct hk_gen *hk_gen_spawn(char *err, size_t errlen);
/* Reads what the generation's library sent, 64 messages at most (the
 * loop's other events wait meanwhile); true when more may be waiting. */
bool hk_gen_on_channel(struct hk_gen *g);
void hk_gen_stderr_tail(const struct hk_gen *g, char *out, size_t outlen);
void hk_gen_begin_drain(struct hk_gen *g, int phase);
void hk_gen_tick(struct hk_gen *g, long long now);
bool hk_gen_ready_now(struct hk_gen *g, long long now);
void hk_gen_kill_all(struct hk_gen *g, int sig);
/* The first process of g that listens on TCP (its addresses in out), found
 * when the library reported no listener; 0 when none does. */
pid_t hk_gen_unseen_listener(struct hk_gen *g, char *out, size_t outlen);
void hk_gen_reaped(pid_t pid, int status);
void hk_gen_release(struct hk_gen *g);
pid_t hk_gen_main(struct hk_gen *g);
long hk_gen_connections(const struct hk_gen *g, bool with_accepts);
bool hk_gen_alive(const struct hk_gen *g);

/* service.c: what the operator asks for, and what follows from events */
void hk_restart(void);
void hk_stop(void);
void hk_on_ready(struct hk_gen *g);
void hk_on_failed_start(struct hk_gen *g, const char *why);
void hk_on_gen_lost(struct hk_gen *g);
void hk_service_tick(long long now, int *timeout);
void hk_reply_restart_waiters(const char *line);

/* held.c: the keeper's copies of the listeners */
int hk_held_add(int fd, const char *name, bool inherited);
void hk_held_drop(unsigned long ino);
int hk_held_adopt_listen_fds(void);

/* control.c */
int hk_control_open(void);
void hk_control_accept(void);
void hk_control_on_client(struct hk_client *c);
void hk_control_reply(struct hk_client *c, const char *line);
void hk_control_farewell(void);

/* procfs.c: facts about processes, from /proc */
unsigned long long hk_proc_starttime(pid_t pid);
bool hk_proc_alive(pid_t pid);
pid_t hk_proc_ppid(pid_t pid);
bool hk_proc_descends_from(pid_t pid, pid_t ancestor);
/* Calls fn for each socket fd of pid (its number, its inode) until fn
 * returns true; returns whether one did. */
bool hk_proc_each_socket(pid_t pid, bool (*fn)(void *ctx, int fd, unsigned long ino), void *ctx);
bool hk_proc_holds_inode(pid_t pid, unsigned long ino);
/* Whether fd of pid is socket inode ino (one readlink). */
bool hk_proc_fd_is_socket(pid_t pid, int fd, unsigned long ino);
int hk_proc_listening(pid_t pid, char *out, size_t outlen);
/* Whether pid has the file at path mapped (a preloaded library). */
bool hk_proc_maps(pid_t pid, const char *path);
bool hk_proc_holds_any(pid_t pid, const unsigned long *inos, int n);
/* Sends sig with value magic to the threads of pid blocked in a wait the
 * library's hooks absorb it in, when pid catches sig. Returns how many. */
int hk_proc_wake_waiters(pid_t pid, int sig, int magic);
unsigned long hk_fd_inode(int fd);

/* seccomp.c: which generations start under the seccomp filter, installing
 * it, and whether the kernel lets us */
bool hk_seccomp_wanted(void);
void hk_seccomp_child_install(int chan); /* async-signal-safe: between fork and exec */
void hk_seccomp_receive(struct hk_gen *g, int chan);
const char *hk_seccomp_refusal(void);

/* supervise.c: answering a supervised generation's bind() and listen() */
void hk_supervise_on_notify(struct hk_gen *g);
void hk_supervise_close(struct hk_gen *g);
bool hk_supervise_claimed(const struct hk_gen *g, unsigned long ino);

/* outside.c: another process's fds, from outside it */
pid_t hk_proc_tgid(pid_t tid);
int hk_outside_fd(pid_t pid, int fd);
bool hk_outside_cloexec(pid_t pid, int fd);
int hk_outside_sockets(pid_t pid, int *fds, unsigned long *inos, int max);
int hk_outside_listeners(pid_t pid, int *fds, unsigned long *inos, int max);

/* readiness.c: a generation without hooks, judged from /proc */
void hk_readiness_tick(struct hk_gen *g, long long now, int *timeout);

#endif
