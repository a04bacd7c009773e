/* Pre-forking server whose parent ends by signalling its whole process group,
 * as some masters do: kill(-getpgrp(), SIGTERM) instead of signalling each
 * worker. Anything else in that group (a successor spawned from it) dies too.
 * Otherwise like prefork.c: the parent binds and supervises, workers accept. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
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
    srv_init(&o, argc, argv, "pgkill", SRV_ONE_LISTENER, 2);
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

    /* the parent's own handler only sets srv_stop: it survives this */
    pid_t pgrp = getpgrp();
    srv_log("pid %d signalling process group %d", (int)getpid(), (int)pgrp);
    if (kill(-pgrp, SIGTERM) < 0)
        srv_log("kill(-%d): %s", (int)pgrp, strerror(errno));
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    close(lfd);
    return 0;
}
