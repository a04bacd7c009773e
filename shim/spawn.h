/* Starting the successor: the same command line and executable path as
 * captured at load, with the listeners inherited systemd-style. */
#ifndef HR_SPAWN_H
#define HR_SPAWN_H

#include "listeners.h"

#include <stddef.h>
#include <sys/types.h>

/* Copies argv, the environment, the executable path and the working
 * directory at load time: daemons later overwrite argv and chdir. */
int hr_spawn_capture(int argc, char **argv, char **envp);
const char *hr_spawn_exe(void);

struct hr_spawned {
	pid_t pid;
	int pidfd; /* becomes readable when the successor exits */
	int sock;  /* readiness channel to the successor */
};

/* Starts the successor with vfork semantics (no page-table copy). Returns 0,
 * or -1 with a reason (exec errors included). */
int hr_spawn(const struct hr_listener_info *ls, int n, long generation, struct hr_spawned *out,
	     char *err, size_t errlen);

/* Collects the exit of a successor started by hr_spawn: 1 with a reason
 * once it exited (reaped), 0 while it runs. */
int hr_spawn_exited(pid_t pid, int pidfd, int wait, int *status_ok, char *why, size_t whylen);

#endif
