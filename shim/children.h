/* The successor is a child of the old process, but never the app's: the
 * app's wait()/waitpid(-1) must neither reap it nor block because of it
 * (a master that waits for all its children before exiting). */
#ifndef HR_CHILDREN_H
#define HR_CHILDREN_H

#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>

/* Records the successor just spawned. */
void hr_children_adopt(pid_t pid);

/* The successor's exit when a wait hook had to collect it: 1 and *si. */
int hr_children_collected(pid_t pid, siginfo_t *si);

/* The wait-family hooks' logic, for waits on any child (pid -1 or the
 * process group). Returns the app's result. */
pid_t hr_children_wait_any(idtype_t idtype, id_t id, int *status, siginfo_t *info, int options,
			   struct rusage *ru, int use_waitid);

/* Whether waits on (idtype, id) could return the successor. */
int hr_children_concerns(idtype_t idtype, id_t id);

#endif
