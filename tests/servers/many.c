/* One level-triggered epoll loop over many listeners: --port BASE
 * --listeners N listens on BASE .. BASE+N-1 (as servers with a port per
 * virtual host or per tenant do). */
#define _GNU_SOURCE
#include "common.h"

#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *count = srv_take_option(&argc, argv, "--listeners");
    int n = count ? atoi(count) : 1;
    if (n < 1 || n > 1000) {
        srv_log("--listeners: 1 to 1000");
        exit(2);
    }
    struct srv_opts o;
    srv_init(&o, argc, argv, "many", SRV_ONE_LISTENER, 1);
    int *lfds = calloc((size_t)n, sizeof *lfds);
    if (!lfds)
        srv_die("calloc");
    for (int i = 0; i < n; i++)
        if ((lfds[i] = srv_listen_tcp(o.host, o.port + i, 0)) < 0 || !srv_set_nonblock(lfds[i]))
            srv_die("listen");
    srv_app_signals(&o);

    struct conn_table t = {0};
    srv_epoll_lt_run(lfds, n, &t);
    ctab_close_all(&t);
    for (int i = 0; i < n; i++)
        close(lfds[i]);
    free(lfds);
    return 0;
}
