/* Blocking server that, after a SIGHUP, points every fd above 2 it did not
 * open itself at /dev/null with dup2(): the shape of a daemon that resets
 * "stray" descriptors it finds in /proc/self/fd. A library keeping its own
 * fds there sees them replaced. The next accepted connection triggers it;
 * it logs "dup-over: N fds" once done. */
#define _GNU_SOURCE
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t dup_over_due;

static void on_hup(int sig)
{
    (void)sig;
    dup_over_due = 1;
}

static void dup_over(int keep1, int keep2)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    DIR *d = opendir("/proc/self/fd");
    if (null < 0 || !d)
        srv_die("dup-over: cannot open /dev/null or /proc/self/fd");
    int targets[1024], n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 1024) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd > 2 && fd != keep1 && fd != keep2 && fd != null &&
            fd != dirfd(d))
            targets[n++] = fd;
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        if (dup2(null, targets[i]) < 0)
            srv_die("dup-over: dup2 onto %d failed", targets[i]);
    close(null);
    srv_log("dup-over: %d fds", n);
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "dupover", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
    srv_catch_sigterm();
    struct sigaction sa = { .sa_handler = on_hup, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);

    while (!srv_stop) {
        int fd = srv_accept(lfd, 0);
        if (fd < 0)
            continue;
        if (dup_over_due) {
            dup_over_due = 0;
            dup_over(lfd, fd);
        }
        srv_serve_blocking(fd);
    }
    close(lfd);
    return 0;
}
