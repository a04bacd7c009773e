/* Level-triggered epoll server that, on SIGTERM, calls shutdown() on its
 * listener before closing it, as some servers do to stop accepting. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "shutdown_exit", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
    if (!srv_set_nonblock(lfd))
        srv_die("O_NONBLOCK");
    srv_catch_sigterm();
    srv_app_signals(&o);

    struct conn_table t = {0};
    srv_epoll_lt_run(&lfd, 1, &t);
    if (shutdown(lfd, SHUT_RDWR) < 0)
        srv_log("shutdown listener: %s", strerror(errno));
    close(lfd);
    ctab_close_all(&t);
    return 0;
}
