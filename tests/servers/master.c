/* nginx-like master/worker server. The master binds a non-blocking listener
 * (FIONBIO, as nginx does), forks workers that each run an epoll loop on it,
 * and otherwise sleeps in sigsuspend() with its signals blocked. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t *workers;
static int nworkers;
static volatile sig_atomic_t child_exited;

static void on_sigchld(int sig)
{
    (void)sig;
    child_exited = 1;
}

static void spawn(int slot, int lfd)
{
    pid_t pid = srv_fork_worker();
    if (pid == 0) {
        struct conn_table t = {0};
        srv_epoll_lt_run(&lfd, 1, &t);
        ctab_close_all(&t);
        exit(0);
    }
    workers[slot] = pid;
    srv_log("spawned worker %d", (int)pid);
}

static void reap(int lfd)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < nworkers; i++) {
            if (workers[i] != pid)
                continue;
            workers[i] = 0;
            srv_log_exit(pid, status);
            if (!srv_stop)
                spawn(i, lfd);
        }
    }
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    sigset_t block, none;
    int one = 1;

    srv_init(&o, argc, argv, "master", SRV_ONE_LISTENER, 2);
    int lfd = srv_listen(&o, 0);
    if (ioctl(lfd, FIONBIO, &one) < 0)
        srv_die("FIONBIO");

    /* handled only inside sigsuspend(), so the flags below cannot be missed */
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, NULL);
    struct sigaction sa = {.sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    srv_catch_sigterm();
    srv_app_signals(&o);

    nworkers = o.workers;
    workers = calloc((size_t)nworkers, sizeof *workers);
    if (!workers)
        srv_die("calloc");
    for (int i = 0; i < nworkers; i++)
        spawn(i, lfd);

    sigemptyset(&none);
    while (!srv_stop) {
        sigsuspend(&none);
        if (child_exited) {
            child_exited = 0;
            reap(lfd);
        }
    }

    for (int i = 0; i < nworkers; i++)
        if (workers[i] > 0)
            kill(workers[i], SIGTERM);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    close(lfd);
    return 0;
}
