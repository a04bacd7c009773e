/* systemd's socket-passing protocol: LISTEN_FDS, LISTEN_PID and
 * LISTEN_FDNAMES, and the checks an inherited fd must pass. Shared by the
 * library and the keeper. */
#ifndef HR_LISTENFDS_H
#define HR_LISTENFDS_H

#include <stddef.h>
#include <sys/types.h>

#define HR_LISTEN_FDS_START 3
#define HR_MAX_INHERITED 1024
#define HR_NAME_MAX 256

/* Parses LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES (any may be NULL).
 * Returns 1 with *count set when they are meant for pid self, 0 when absent,
 * -1 with a reason when present but unusable. */
int hr_listen_env_parse(const char *fds, const char *pid, const char *names, pid_t self,
			long *count, char *err, size_t errlen);

/* Copies the i-th colon-separated name (or "unknown" when names is NULL). */
void hr_listen_name(const char *names, long i, char *out, size_t outlen);

/* Checks that fd is a listening stream socket we can hand over. */
int hr_inherit_check_fd(int fd, char *err, size_t errlen);

#endif
