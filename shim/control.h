/* The control socket: an abstract AF_UNIX stream socket named
 * "hotrestart-ctl.<pid namespace inode>.<pid>" served by the owner's agent. One line in
 * ("restart", "stop", "status"), one line out. */
#ifndef HR_CONTROL_H
#define HR_CONTROL_H

#include <stddef.h>
#include <sys/types.h>

#define HR_CONTROL_PREFIX "hotrestart-ctl."

/* Opens the listening control socket for this process, or -1. */
int hr_control_open(void);

/* Accepts a client whose uid matches ours (or is root); -1 otherwise. */
int hr_control_accept(int ctl);

struct hr_status {
	long generation;
	double started_unix;
	int upgrading;
	pid_t successor;
};

/* One line of JSON describing this process (no trailing newline). */
void hr_control_status_json(const struct hr_status *st, char *out, size_t outlen);

/* Writes a whole short line to a client and closes it. */
void hr_control_reply(int fd, const char *line);

#endif
