/* Blocking accept() in the main thread, one detached thread per connection. */
#define _GNU_SOURCE
#include "common.h"

#include <unistd.h>

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "threaded", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
    srv_app_signals(&o);

    srv_accept_threads(lfd);
    close(lfd);
    return 0;
}
