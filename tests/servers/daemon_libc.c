/* A daemon made with glibc's daemon(): the fork happens inside libc. By
 * default it daemonizes first and then listens; with --listen-first it
 * listens, then daemonizes (the listener changes process with the fork).
 * Serves with a thread per connection. */
#define _GNU_SOURCE
#include "common.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    bool listen_first = false;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--listen-first") == 0) {
            listen_first = true;
            memmove(argv + i, argv + i + 1, (size_t)(argc - i) * sizeof *argv);
            argc--;
            break;
        }
    struct srv_opts o;
    srv_init(&o, argc, argv, "daemon_libc", SRV_ONE_LISTENER, 1);
    int lfd = listen_first ? srv_listen(&o, 0) : -1;
    /* nochdir keeps relative paths working; noclose keeps the log on stderr */
    if (daemon(1, 1) < 0)
        srv_die("daemon");
    if (lfd < 0)
        lfd = srv_listen(&o, 0);
    srv_catch_sigterm();
    srv_accept_threads(lfd);
    close(lfd);
    return 0;
}
