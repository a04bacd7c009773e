/* Blocking server that, when told to stop, writes a spool file in
 * --spool DIR (as a server finishing an upload or a queue would), then
 * unlinks it and exits. A file that stays means its unlink() was lost. */
#define _GNU_SOURCE
#include "common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *spool = srv_take_option(&argc, argv, "--spool");
    if (!spool) {
        srv_log("--spool DIR is required");
        exit(2);
    }
    struct srv_opts o;
    srv_init(&o, argc, argv, "tempfile", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
    srv_catch_sigterm();

    while (!srv_stop) {
        int fd = srv_accept(lfd, 0);
        if (fd >= 0)
            srv_serve_blocking(fd);
    }
    close(lfd);

    char path[4096];
    snprintf(path, sizeof path, "%s/spool.%d", spool, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, "queued work\n", 12) != 12 || close(fd) < 0)
        srv_die("write %s", path);
    if (unlink(path) < 0)
        srv_die("unlink %s", path);
    srv_log("removed %s", path);
    return 0;
}
