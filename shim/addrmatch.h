/* Whether an address a program binds names a listener already held: the
 * rules the library's bind() hook and the keeper's seccomp supervisor share.
 * Pure: no state, no libc table. */
#ifndef HR_ADDRMATCH_H
#define HR_ADDRMATCH_H

#include <sys/socket.h>

/* 2 exact, 1 the app's wildcard bind on the port of a specific listener,
 * 0 no match (port 0 never: a port-0 bind is a fresh ephemeral socket). */
int hr_addr_match(const struct sockaddr *want, socklen_t wantlen, const struct sockaddr *have,
		  socklen_t havelen);

#endif
