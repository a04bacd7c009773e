/* One datagram or stream message carrying an fd (SCM_RIGHTS): how the
 * library hands listeners to the keeper and the seccomp child its listener
 * fd. Shared by the library and the keeper. */
#ifndef HR_SCMRIGHTS_H
#define HR_SCMRIGHTS_H

#include <stddef.h>
#include <sys/types.h>

/* sendmsg() of len bytes of buf on sock, with fd attached when fd >= 0
 * (MSG_NOSIGNAL). Async-signal-safe (the keeper calls it between fork and
 * exec). Returns what sendmsg() returns. */
ssize_t hr_send_with_fd(int sock, const void *buf, size_t len, int fd);

#endif
