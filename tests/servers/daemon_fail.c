/* A daemonizing server whose failure comes after its fork: the parent
 * exits 0 at once; the daemon child starts a helper process (a logger
 * that lives as long as it is not stopped), then reads its configuration.
 * When the file named by --broken-flag exists (a broken configuration was
 * deployed) the daemon exits 1 and its helper stays behind, as real
 * daemons' helpers do; otherwise it listens and serves with a thread per
 * connection, and stops the helper on SIGTERM. */
#define _GNU_SOURCE
#include "common.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *flag = srv_take_option(&argc, argv, "--broken-flag");
    struct srv_opts o;
    srv_init(&o, argc, argv, "daemon_fail", SRV_ONE_LISTENER, 1);
    pid_t pid = fork();
    if (pid < 0)
        srv_die("fork");
    if (pid > 0)
        _exit(0);
    setsid();
    pid_t helper = fork();
    if (helper < 0)
        srv_die("fork");
    if (helper == 0) {
        for (;;)
            pause();
    }
    if (flag && access(flag, F_OK) == 0) {
        srv_log("daemon %d: configuration %s is broken", (int)getpid(), flag);
        exit(1);
    }
    int lfd = srv_listen(&o, 0);
    srv_catch_sigterm();
    srv_accept_threads(lfd);
    close(lfd);
    kill(helper, SIGTERM);
    return 0;
}
