/* inetd-like: blocking accept() in the parent, one forked child per
 * connection. Children are reaped from a SIGCHLD handler. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_sigchld(int sig)
{
    int saved = errno;
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "forkconn", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
    struct sigaction sa = {.sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    srv_app_signals(&o);

    while (!srv_stop) {
        int fd = srv_accept(lfd, 0);
        if (fd < 0)
            continue;
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            signal(SIGCHLD, SIG_DFL);
            srv_serve_blocking(fd);
            _exit(0);
        }
        if (pid < 0)
            srv_log("fork: %s", strerror(errno));
        close(fd);
    }
    close(lfd);
    return 0;
}
