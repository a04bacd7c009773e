/* AF_UNIX stream server. Like many real servers it removes a stale socket
 * file right before bind() and removes its socket file again on exit. */
#define _GNU_SOURCE
#include "common.h"

#include <stdlib.h>
#include <unistd.h>

static const char *sock_path;

static void remove_socket(void)
{
    unlink(sock_path);
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "unix", SRV_UNIX_ONLY, 1);
    int lfd = srv_listen_unix(o.unix_path, 0, true);
    if (!srv_set_nonblock(lfd))
        srv_die("O_NONBLOCK");
    if (o.unix_path[0] != '@') { /* abstract names have no file */
        sock_path = o.unix_path;
        atexit(remove_socket);
    }
    srv_catch_sigterm();
    srv_app_signals(&o);

    struct conn_table t = {0};
    srv_epoll_lt_run(&lfd, 1, &t);
    ctab_close_all(&t);
    close(lfd);
    return 0;
}
