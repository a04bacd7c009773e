/* Blocking server that, once listening, runs a helper the way CGI-style
 * servers do: vfork(), then in the child closefrom(3) and _exit(). The
 * child writes a variable its parent then reads: only a real vfork (shared
 * memory, parent suspended until the child leaves) shows the parent the
 * write. Exits 1 when it was not a real vfork. */
#define _GNU_SOURCE
#include "common.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int child_wrote;

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "vfork", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
    srv_catch_sigterm();

    pid_t pid = vfork();
    if (pid < 0)
        srv_die("vfork");
    if (pid == 0) {
        child_wrote = 1;
        closefrom(3);
        _exit(0);
    }
    if (waitpid(pid, NULL, 0) != pid)
        srv_die("waitpid");
    if (!child_wrote) {
        srv_log("vfork() did not share memory with the child: not a vfork");
        exit(1);
    }
    srv_log("vfork() child shared memory");

    while (!srv_stop) {
        int fd = srv_accept(lfd, 0);
        if (fd >= 0)
            srv_serve_blocking(fd);
    }
    close(lfd);
    return 0;
}
