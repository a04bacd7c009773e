/* The pid file names the process that owns the listeners. */
#ifndef HR_PIDFILE_H
#define HR_PIDFILE_H

#include <sys/types.h>

/* Atomically replaces the pid file (temp file + rename; the temp name is
 * created with O_EXCL|O_NOFOLLOW so a planted symlink is never followed).
 * No-op without HOTRESTART_PIDFILE. Returns 0 or -1 (logged). */
int hr_pidfile_write(pid_t pid);
/* Removes it if it still names pid. */
void hr_pidfile_remove(pid_t pid);

#endif
