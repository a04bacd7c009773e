/* One thread, level-triggered epoll, listener made non-blocking with fcntl()
 * after listen(). The loop itself is srv_epoll_lt_run() in common.c, shared
 * with dual, master, unix and shutdown_exit. */
#define _GNU_SOURCE
#include "common.h"

#include <unistd.h>

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "epoll_lt", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
    if (!srv_set_nonblock(lfd))
        srv_die("O_NONBLOCK");
    srv_app_signals(&o);

    struct conn_table t = {0};
    srv_epoll_lt_run(&lfd, 1, &t);
    ctab_close_all(&t);
    close(lfd);
    return 0;
}
