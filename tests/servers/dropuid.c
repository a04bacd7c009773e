/* A server that must start as root and drops to nobody once it listens, as
 * daemons that bind privileged ports or write root-owned files do. It exits 1
 * when started by any other user (a successor cloned from the unprivileged
 * process cannot start). Logs "started as uid U" on stderr, and once it has
 * dropped, every answer's body reads "pid P dropuid uid=U euid=E started-uid=S". */
#define _GNU_SOURCE
#include "common.h"

#include <grp.h>
#include <stdio.h>
#include <unistd.h>

#define NOBODY 65534

/* srv_init keeps this pointer as the name used in log lines and bodies */
static char name[128] = "dropuid";

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, name, SRV_ONE_LISTENER, 1);
    uid_t started = getuid();
    srv_log("pid %d started as uid %d euid %d", (int)getpid(), (int)started, (int)geteuid());
    if (started != 0 || geteuid() != 0) {
        srv_log("must be started as root (uid %d); exiting", (int)started);
        return 1;
    }
    int lfd = srv_listen(&o, 0);
    if (!srv_set_nonblock(lfd))
        srv_die("O_NONBLOCK");
    /* a root-only action after bind, as daemons write their pid file */
    if (o.pidfile) {
        FILE *f = fopen(o.pidfile, "w");
        if (!f)
            srv_die("open %s", o.pidfile);
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
    if (setgroups(0, NULL) < 0)
        srv_die("setgroups");
    if (setgid(NOBODY) < 0)
        srv_die("setgid %d", NOBODY);
    if (setuid(NOBODY) < 0)
        srv_die("setuid %d", NOBODY);
    if (setuid(0) == 0) {
        srv_log("could regain root after dropping it");
        return 1;
    }
    snprintf(name, sizeof name, "dropuid uid=%d euid=%d started-uid=%d", (int)getuid(),
             (int)geteuid(), (int)started);
    srv_log("pid %d dropped to uid %d", (int)getpid(), (int)getuid());
    srv_app_signals(&o);

    struct conn_table t = {0};
    srv_epoll_lt_run(&lfd, 1, &t);
    ctab_close_all(&t);
    close(lfd);
    return 0;
}
