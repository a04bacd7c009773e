/* Listeners inherited through systemd's LISTEN_FDS protocol, and how the
 * app's own socket()+bind() gets one of them instead of a new socket. */
#ifndef HR_INHERIT_H
#define HR_INHERIT_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "addrmatch.h"
#include "listenfds.h"

/* Reads the environment and adopts valid inherited listeners; on any
 * problem logs one line and adopts none. Returns the number adopted. */
int hr_inherit_load(void);

/* Gives the app's socket app_fd the inherited listener its bind() asks for.
 * Returns 1 when bind must report success without binding, 0 when no
 * inherited listener matches. */
int hr_inherit_bind(int app_fd, const struct sockaddr *addr, socklen_t len);

/* The app uses an inherited fd directly (it read LISTEN_FDS itself). */
void hr_inherit_claim_in_place(int fd);

int hr_inherit_unclaimed(void);
void hr_inherit_close_unclaimed(void);
/* Name of the inherited listener with this socket inode, or NULL. */
const char *hr_inherit_name(unsigned long ino);
/* Whether path names an inherited AF_UNIX listener the app has not yet
 * claimed: its start-up unlink(path) must not delete the live socket. */
int hr_inherit_holds_path(const char *path);

/* Lock for fork safety (pthread_atfork). */
void hr_inherit_lock(void);
void hr_inherit_unlock(void);

#endif
