/* squid-like: the master never touches the listener; the worker it forks
 * creates, binds and listens, and serves with an epoll loop. The master
 * respawns a worker that dies and stops it on SIGTERM. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct srv_opts opts;

static pid_t spawn_worker(void)
{
    pid_t pid = srv_fork_worker();
    if (pid == 0) {
        int lfd = srv_listen(&opts, SOCK_NONBLOCK);
        struct conn_table t = {0};
        srv_epoll_lt_run(&lfd, 1, &t);
        ctab_close_all(&t);
        _exit(0);
    }
    srv_log("spawned worker %d", (int)pid);
    return pid;
}

int main(int argc, char **argv)
{
    srv_init(&opts, argc, argv, "worker_listen", SRV_ONE_LISTENER, 1);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t worker = spawn_worker();
    for (;;) {
        int sig, status;
        sigwait(&set, &sig);
        if (sig == SIGTERM) {
            kill(worker, SIGTERM);
            while (waitpid(worker, &status, 0) < 0 && errno == EINTR)
                ;
            srv_log_exit(worker, status);
            return 0;
        }
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            if (pid == worker) {
                srv_log_exit(pid, status);
                worker = spawn_worker();
            }
    }
}
