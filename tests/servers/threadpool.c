/* --workers threads all blocked in accept() on the same blocking listener;
 * the main thread only waits for a stop request. */
#define _GNU_SOURCE
#include "common.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* never returns: the process ends when main() does */
static _Noreturn void *worker(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = srv_accept(lfd, 0);
        if (fd >= 0)
            srv_serve_blocking(fd);
    }
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "threadpool", SRV_ONE_LISTENER, 4);
    int lfd = srv_listen(&o, 0);
    srv_app_signals(&o);

    for (int i = 0; i < o.workers; i++) {
        int err = srv_spawn_thread(worker, (void *)(intptr_t)lfd);
        if (err) {
            srv_log("pthread_create: %s", strerror(err));
            return 1;
        }
    }
    /* workers block all signals, so they arrive here */
    while (!srv_stop)
        pause();
    /* lfd stays open: workers may be inside accept(lfd) until the process exits */
    return 0;
}
