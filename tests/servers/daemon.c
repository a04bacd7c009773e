/* Classic double-fork daemon. The grandchild binds, writes --pidfile and
 * serves with a thread per connection. stdio is left alone on purpose.
 * --listen-first: daemonize as nginx does: listen, fork once, and the
 * parent leaves by returning from main() instead of calling _exit(). */
#define _GNU_SOURCE
#include "common.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    bool listen_first = false;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--listen-first") == 0) {
            listen_first = true;
            memmove(argv + i, argv + i + 1, (size_t)(argc - i) * sizeof *argv);
            argc--;
            break;
        }
    struct srv_opts o;
    srv_init(&o, argc, argv, "daemon", SRV_ONE_LISTENER, 1);
    int lfd = listen_first ? srv_listen(&o, 0) : -1;

    pid_t pid = fork();
    if (pid < 0)
        srv_die("fork");
    if (pid > 0) {
        if (listen_first)
            return 0;
        _exit(0);
    }
    if (setsid() < 0)
        srv_die("setsid");
    if (!listen_first) {
        /* the session leader exits so the daemon can never reacquire a terminal */
        pid = fork();
        if (pid < 0)
            srv_die("fork");
        if (pid > 0)
            _exit(0);
        lfd = srv_listen(&o, 0);
    }
    if (o.pidfile)
        write_pidfile(o.pidfile);
    srv_app_signals(&o);

    srv_accept_threads(lfd);
    close(lfd);
    return 0;
}
