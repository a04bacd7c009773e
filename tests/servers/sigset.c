/* Blocking server that installs its signal handlers the System V way, as
 * old daemons do: sigset() for USR2, HUP and TERM after binding, then
 * siginterrupt(SIGTERM, 1) and sigignore(SIGUSR1). Every handler logs
 * "app: got signal N"; TERM also stops the accept loop. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

static void on_signal(int sig)
{
    int saved = errno;
    char msg[24] = "app: got signal ";
    size_t n = sizeof "app: got signal " - 1;
    if (sig >= 10)
        msg[n++] = (char)('0' + sig / 10);
    msg[n++] = (char)('0' + sig % 10);
    msg[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, msg, n);
    (void)w;
    if (sig == SIGTERM)
        srv_stop = 1;
    errno = saved;
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "sigset", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
/* These calls are obsolescent, which is the point: old code uses them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    int sigs[] = {SIGUSR2, SIGHUP, SIGTERM};
    for (int i = 0; i < 3; i++)
        if (sigset(sigs[i], on_signal) == SIG_ERR)
            srv_die("sigset %d", sigs[i]);
    if (siginterrupt(SIGTERM, 1) < 0 || sigignore(SIGUSR1) < 0)
        srv_die("siginterrupt/sigignore");
#pragma GCC diagnostic pop

    while (!srv_stop) {
        int fd = srv_accept(lfd, 0);
        if (fd >= 0)
            srv_serve_blocking(fd);
    }
    close(lfd);
    return 0;
}
