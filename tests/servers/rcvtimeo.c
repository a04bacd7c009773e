/* Blocking accept() with a 200 ms SO_RCVTIMEO on the listener, as servers
 * do to look at a flag between connections: each timeout (EAGAIN) is
 * counted and logged. A thread per connection; SIGTERM stops the loop. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void *serve(void *arg)
{
    srv_serve_blocking((int)(intptr_t)arg);
    return NULL;
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "rcvtimeo", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
    struct timeval tv = {.tv_usec = 200 * 1000};
    if (setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
        srv_die("SO_RCVTIMEO");
    srv_catch_sigterm();

    long timeouts = 0;
    while (!srv_stop) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                srv_log("pid %d timeouts %ld", (int)getpid(), ++timeouts);
            else if (errno != EINTR && errno != ECONNABORTED)
                srv_die("accept");
            continue;
        }
        /* Accepted sockets inherit the timeout; requests are read without. */
        struct timeval none = {0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
        int err = srv_spawn_thread(serve, (void *)(intptr_t)fd);
        if (err) {
            srv_log("pthread_create: %s", strerror(err));
            close(fd);
        }
    }
    close(lfd);
    srv_log("pid %d: clean exit", (int)getpid());
    return 0;
}
