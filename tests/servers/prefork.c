/* Pre-forking server: the parent binds and listens, then only supervises;
 * every worker runs a blocking accept() loop on the inherited listener. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t *workers;
static int nworkers;

static void spawn(int slot, int lfd)
{
    pid_t pid = fork();
    if (pid < 0)
        srv_die("fork");
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        /* srv_stop covers a SIGTERM caught before the line above */
        while (!srv_stop) {
            int fd = srv_accept(lfd, 0);
            if (fd >= 0)
                srv_serve_blocking(fd);
        }
        _exit(0);
    }
    workers[slot] = pid;
    srv_log("spawned worker %d", (int)pid);
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "prefork", SRV_ONE_LISTENER, 2);
    int lfd = srv_listen(&o, 0);
    srv_catch_sigterm();
    srv_app_signals(&o);

    nworkers = o.workers;
    workers = calloc((size_t)nworkers, sizeof *workers);
    if (!workers)
        srv_die("calloc");
    for (int i = 0; i < nworkers; i++)
        spawn(i, lfd);

    while (!srv_stop) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            srv_die("waitpid");
        }
        for (int i = 0; i < nworkers; i++) {
            if (workers[i] == pid) {
                srv_log_exit(pid, status);
                spawn(i, lfd);
            }
        }
    }

    for (int i = 0; i < nworkers; i++)
        kill(workers[i], SIGTERM);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    close(lfd);
    return 0;
}
