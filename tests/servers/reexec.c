/* haproxy -W-like master: it re-executes itself with the same PID once at
 * start-up (before it binds) and again on SIGHUP (reload), keeping its
 * listener across the exec (`--fd N`). A forked worker serves with a
 * thread per connection; after a reload the new master starts a new worker
 * and soft-stops the old one (SIGTERM: it stops accepting, lets its
 * in-flight requests end, exits). */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64

static pid_t spawn_worker(int lfd)
{
    pid_t pid = srv_fork_worker();
    if (pid == 0) {
        srv_accept_threads(lfd);
        close(lfd);
        struct timespec grace = {.tv_nsec = 300 * 1000 * 1000};
        nanosleep(&grace, NULL); /* in-flight requests finish */
        _exit(0);
    }
    srv_log("master %d spawned worker %d", (int)getpid(), (int)pid);
    return pid;
}

/* Execs this binary again (same PID) with the operator's arguments plus
 * the internal ones. */
static void reexec(char **user_args, int nuser, int lfd, pid_t worker)
{
    char fdarg[16], workerarg[16];
    char *args[MAX_ARGS + 8];
    int n = 0;
    for (int i = 0; i < nuser; i++)
        args[n++] = user_args[i];
    args[n++] = "--reexeced";
    if (lfd >= 0) {
        int fl = fcntl(lfd, F_GETFD);
        if (fl < 0 || fcntl(lfd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
            srv_die("fcntl");
        snprintf(fdarg, sizeof fdarg, "%d", lfd);
        snprintf(workerarg, sizeof workerarg, "%d", (int)worker);
        args[n++] = "--fd";
        args[n++] = fdarg;
        args[n++] = "--old-worker";
        args[n++] = workerarg;
    }
    args[n] = NULL;
    srv_log("master %d re-executes itself", (int)getpid());
    execv(args[0], args);
    srv_die("execv %s", args[0]);
}

int main(int argc, char **argv)
{
    bool reexeced = false;
    int lfd = -1;
    pid_t old_worker = 0;
    char *user_args[MAX_ARGS + 1];
    int nuser = 0;
    for (int i = 0; i < argc && nuser < MAX_ARGS; i++) {
        if (strcmp(argv[i], "--reexeced") == 0)
            reexeced = true;
        else if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc)
            lfd = atoi(argv[++i]);
        else if (strcmp(argv[i], "--old-worker") == 0 && i + 1 < argc)
            old_worker = (pid_t)atoi(argv[++i]);
        else
            user_args[nuser++] = argv[i];
    }
    user_args[nuser] = NULL;
    if (!reexeced)
        reexec(user_args, nuser, -1, 0);

    struct srv_opts o;
    srv_init(&o, nuser, user_args, "reexec", SRV_ONE_LISTENER, 1);
    if (lfd < 0)
        lfd = srv_listen(&o, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t worker = spawn_worker(lfd);
    if (old_worker > 0)
        kill(old_worker, SIGTERM);
    for (;;) {
        int sig, status;
        sigwait(&set, &sig);
        if (sig == SIGHUP)
            reexec(user_args, nuser, lfd, worker);
        if (sig == SIGTERM) {
            kill(worker, SIGTERM);
            while (waitpid(-1, &status, 0) > 0 || errno == EINTR)
                ;
            return 0;
        }
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            srv_log_exit(pid, status);
            if (pid == worker)
                worker = spawn_worker(lfd);
        }
    }
}
