/* multiprocessing-spawn-like: the master binds and listens, then forks
 * workers that each exec this binary again as `--worker FD`, the listener
 * passed by fd inheritance. Workers serve with an epoll loop; the master
 * respawns them and stops them on SIGTERM. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t spawn_worker(const char *self, int lfd)
{
    pid_t pid = fork();
    if (pid < 0)
        srv_die("fork");
    if (pid == 0) {
        char fdarg[16];
        snprintf(fdarg, sizeof fdarg, "%d", lfd);
        /* the listener must survive exec; nothing else is passed on */
        int fl = fcntl(lfd, F_GETFD);
        if (fl < 0 || fcntl(lfd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
            srv_die("fcntl");
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execl(self, self, "--worker", fdarg, (char *)NULL);
        srv_die("exec %s", self);
    }
    srv_log("spawned worker %d", (int)pid);
    return pid;
}

static int run_worker(const char *fdarg)
{
    int lfd = atoi(fdarg);
    srv_catch_sigterm();
    signal(SIGPIPE, SIG_IGN);
    if (!srv_set_nonblock(lfd))
        srv_die("worker: fd %d", lfd);
    srv_log("worker %d serves fd %d", (int)getpid(), lfd);
    struct conn_table t = {0};
    srv_epoll_lt_run(&lfd, 1, &t);
    ctab_close_all(&t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--worker") == 0)
        return run_worker(argv[2]);
    struct srv_opts o;
    srv_init(&o, argc, argv, "exec_workers", SRV_ONE_LISTENER, 2);
    int lfd = srv_listen(&o, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t *workers = calloc((size_t)o.workers, sizeof *workers);
    if (!workers)
        srv_die("calloc");
    for (int i = 0; i < o.workers; i++)
        workers[i] = spawn_worker(argv[0], lfd);
    for (;;) {
        int sig, status;
        sigwait(&set, &sig);
        if (sig == SIGTERM) {
            for (int i = 0; i < o.workers; i++)
                kill(workers[i], SIGTERM);
            for (int i = 0; i < o.workers; i++)
                while (waitpid(workers[i], &status, 0) < 0 && errno == EINTR)
                    ;
            return 0;
        }
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            for (int i = 0; i < o.workers; i++)
                if (workers[i] == pid) {
                    srv_log_exit(pid, status);
                    workers[i] = spawn_worker(argv[0], lfd);
                }
    }
}
