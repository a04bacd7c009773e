/* "Already running" guards across generations. A successor starts while
 * the older generations of its service still serve; the spawner names their
 * processes in HOTRESTART_OLD_PIDS (pid:starttime,...). For those processes
 * only, the successor is told they are gone (kill(pid, 0), /proc/PID,
 * pidfd_open), takes over their exclusively created pid files, and gets
 * the locks they hold on their pid files as soon as they exit. Locks on
 * anything else are never faked: the data they protect cannot be shared. */
#ifndef HR_GUARDS_H
#define HR_GUARDS_H

#include <fcntl.h>
#include <stddef.h>
#include <sys/types.h>
#include <unistd.h>

#pragma GCC visibility push(hidden)

/* A process of an older generation: its PID and its start time (field 22
 * of /proc/PID/stat, clock ticks after boot), so a reused PID never
 * matches. */
struct hr_old_proc {
	pid_t pid;
	unsigned long long start;
};

#define HR_GUARDS_MAX 2048

/* Entries of the list; 0 outside a successor. Written once at load,
 * before the app runs: the hooks' fast path reads only this. */
extern int hr_guards_count;

/* Parses "pid:start,pid:start,..." (may be empty) into out. Returns the
 * number of entries, or -1 with a reason in err. */
int hr_guards_parse(const char *text, struct hr_old_proc *out, int max, char *err, size_t errlen);
/* Replaces the list with text; malformed text: one warning, empty list. */
void hr_guards_load(const char *text);

/* Stores the start time of pid and returns 0, or -1 when it does not exist. */
int hr_proc_start_time(pid_t pid, unsigned long long *start);
/* Whether pid is a listed process of an older generation, still the same
 * process (its start time matches). */
int hr_guards_is_old(pid_t pid);

/* kill()-like call from this process to pid: 1 when it must fail with
 * ESRCH. Signal 0 asks whether the old generation is alive; a real signal
 * is not sent either (it would end the old generation mid-drain, which is
 * hotrestart's to end). */
int hr_guards_hides_pid(pid_t pid, int sig);

/* In a generation that handed over while its successor shares its process
 * group (the in-process spawner keeps it there): a signal to the whole
 * group, as apache's shutdown sends, goes to this generation's own
 * processes only. Returns what kill() returns. */
int hr_guards_group_kill(pid_t pgrp, int sig);
static inline int hr_guards_is_own_group(pid_t pgrp)
{
	return pgrp == 0 || pgrp == getpgrp();
}

/* Whether path is /proc/PID or below for an older generation's PID. The
 * inline part is all that other paths cost. */
int hr_guards_hides_proc_path(const char *path);
static inline int hr_guards_hides_path(const char *path)
{
	return hr_guards_count && path && path[0] == '/' && path[1] == 'p' && path[2] == 'r' &&
	       path[3] == 'o' && path[4] == 'c' && path[5] == '/' && hr_guards_hides_proc_path(path);
}

/* openat() with the guards: a hidden /proc path fails with ENOENT; an
 * exclusive create (O_CREAT|O_EXCL) that meets an older generation's pid
 * file replaces it with a fresh file. */
int hr_guards_openat(int dirfd, const char *path, int flags, mode_t mode);

/* The lock calls with the guards. A lock that conflicts with one an older
 * generation holds on its pid file succeeds at once; a thread then waits
 * for the lock in the kernel's queue and holds it from the moment the old
 * generation is gone. Everything else behaves as libc does. */
int hr_guards_fcntl_lock(int fd, int cmd, struct flock *fl);
int hr_guards_flock(int fd, int op);
int hr_guards_lockf(int fd, int cmd, off_t len);
static inline int hr_guards_is_lock_cmd(int cmd)
{
	return cmd == F_SETLK || cmd == F_SETLKW || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
}

/* "HOTRESTART_OLD_PIDS=..." for a successor this process spawns: itself,
 * the live processes of its generation and the older ones still alive.
 * A heap string for the caller to free, or NULL. */
char *hr_guards_old_pids_var(void);

#pragma GCC visibility pop

#endif
