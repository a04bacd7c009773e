/* Classic double-fork daemon. The grandchild binds, writes --pidfile and
 * serves with a thread per connection. stdio is left alone on purpose. */
#define _GNU_SOURCE
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void write_pidfile(const char *path)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp) {
        srv_log("pidfile path too long");
        exit(1);
    }
    FILE *f = fopen(tmp, "w");
    if (!f)
        srv_die("open %s", tmp);
    fprintf(f, "%d\n", (int)getpid());
    if (fclose(f) != 0)
        srv_die("write %s", tmp);
    /* rename so readers never see a partly written file */
    if (rename(tmp, path) < 0)
        srv_die("rename %s", tmp);
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "daemon", SRV_ONE_LISTENER, 1);

    pid_t pid = fork();
    if (pid < 0)
        srv_die("fork");
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        srv_die("setsid");
    /* the session leader exits so the daemon can never reacquire a terminal */
    pid = fork();
    if (pid < 0)
        srv_die("fork");
    if (pid > 0)
        _exit(0);

    int lfd = srv_listen(&o, 0);
    if (o.pidfile)
        write_pidfile(o.pidfile);
    srv_app_signals(&o);

    srv_accept_threads(lfd);
    close(lfd);
    return 0;
}
