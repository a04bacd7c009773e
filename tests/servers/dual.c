/* Two listeners, IPv4 (--host/--port) and IPv6 (--host6/--port6), served by
 * one level-triggered epoll loop. */
#define _GNU_SOURCE
#include "common.h"

#include <unistd.h>

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "dual", SRV_DUAL, 1);
    int lfds[2] = {srv_listen_tcp(o.host, o.port, 0), srv_listen_tcp(o.host6, o.port6, 0)};
    for (int i = 0; i < 2; i++)
        if (!srv_set_nonblock(lfds[i]))
            srv_die("O_NONBLOCK");
    srv_app_signals(&o);

    struct conn_table t = {0};
    srv_epoll_lt_run(lfds, 2, &t);
    ctab_close_all(&t);
    close(lfds[0]);
    close(lfds[1]);
    return 0;
}
