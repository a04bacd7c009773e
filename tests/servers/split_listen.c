/* varnish-like split: the parent (the manager) creates and binds the
 * listener; its forked child calls listen() and serves with a thread per
 * connection. The parent respawns the child and stops it on SIGTERM. */
#define _GNU_SOURCE
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t spawn_child(int lfd)
{
    pid_t pid = srv_fork_worker();
    if (pid == 0) {
        if (listen(lfd, 511) < 0)
            srv_die("listen");
        srv_log("child %d listens", (int)getpid());
        srv_accept_threads(lfd);
        _exit(0);
    }
    srv_log("spawned child %d", (int)pid);
    return pid;
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "split_listen", SRV_ONE_LISTENER, 1);
    if (!o.port)
        srv_die("--port is required");
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    inet_pton(AF_INET, o.host, &in.sin_addr);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, (struct sockaddr *)&in, sizeof in) < 0)
        srv_die("bind");

    /* SIGTERM and SIGCHLD are taken only in sigwait() */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t child = spawn_child(lfd);
    for (;;) {
        int sig;
        sigwait(&set, &sig);
        if (sig == SIGTERM) {
            kill(child, SIGTERM);
            int status;
            while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                ;
            srv_log_exit(child, status);
            return 0;
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            if (pid == child) {
                srv_log_exit(pid, status);
                child = spawn_child(lfd);
            }
    }
}
