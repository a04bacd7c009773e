/* Socket addresses as people read them: 127.0.0.1:8080, [::1]:8080,
 * /run/app.sock, @abstract. Shared by the library and the keeper. */
#ifndef HR_SOCKADDR_H
#define HR_SOCKADDR_H

#include <stddef.h>
#include <sys/socket.h>

void hr_format_sockaddr(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen);

#endif
