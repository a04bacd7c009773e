/* Single thread, blocking accept(); each connection is served to the end
 * before the next accept(). SIGTERM stops the accept loop. */
#define _GNU_SOURCE
#include "common.h"

#include <unistd.h>

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "blocking", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
    srv_catch_sigterm();
    srv_app_signals(&o);

    while (!srv_stop) {
        int fd = srv_accept(lfd, 0);
        if (fd >= 0)
            srv_serve_blocking(fd);
    }
    close(lfd);
    return 0;
}
