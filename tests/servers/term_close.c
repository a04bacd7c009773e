/* Blocking accept() in the main thread, a thread per connection, and the
 * classic way out: a SIGTERM handler installed with signal() (so with
 * SA_RESTART) closes the listener, or shuts it down with CLOSE_HOW=shutdown,
 * so that accept() fails and main() cleans up. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int lfd = -1;
static int use_shutdown;

static void on_term(int sig)
{
    int saved = errno;
    (void)sig;
    if (use_shutdown)
        shutdown(lfd, SHUT_RDWR);
    else
        close(lfd);
    errno = saved;
}

static void *serve(void *arg)
{
    srv_serve_blocking((int)(intptr_t)arg);
    return NULL;
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "term_close", SRV_ONE_LISTENER, 1);
    const char *how = getenv("CLOSE_HOW");
    use_shutdown = how && strcmp(how, "shutdown") == 0;
    lfd = srv_listen(&o, 0);
    signal(SIGTERM, on_term);

    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            srv_log("pid %d: accept: %s; cleaning up", (int)getpid(), strerror(errno));
            break;
        }
        int err = srv_spawn_thread(serve, (void *)(intptr_t)fd);
        if (err) {
            srv_log("pthread_create: %s", strerror(err));
            close(fd);
        }
    }
    if (use_shutdown)
        close(lfd);
    srv_log("pid %d: clean exit", (int)getpid());
    return 0;
}
