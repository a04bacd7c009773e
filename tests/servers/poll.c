/* One thread, poll() over the non-blocking listener and all connections;
 * the pollfd array is rebuilt from the connection table on every pass. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void step(struct conn_table *t, struct conn *c)
{
    if (conn_drive(c) == CONN_DONE)
        ctab_close(t, c);
}

static void accept_one(struct conn_table *t, int lfd)
{
    int fd = srv_accept(lfd, 0);
    if (fd < 0)
        return;
    if (!srv_set_nonblock(fd)) {
        srv_log("O_NONBLOCK: %s", strerror(errno));
        close(fd);
        return;
    }
    ctab_open(t, fd);
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    struct conn_table t = {0};
    struct pollfd *pfds = NULL;
    size_t pcap = 0;

    srv_init(&o, argc, argv, "poll", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
    if (!srv_set_nonblock(lfd))
        srv_die("O_NONBLOCK");
    srv_app_signals(&o);

    while (!srv_stop) {
        if (pcap < 1 + (size_t)t.cap) {
            pcap = 1 + (size_t)t.cap;
            pfds = realloc(pfds, pcap * sizeof *pfds);
            if (!pfds)
                srv_die("realloc");
        }
        nfds_t n = 0;
        pfds[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int fd = 0; fd < t.cap; fd++) {
            const struct conn *c = t.by_fd[fd];
            if (c)
                pfds[n++] = (struct pollfd){
                    .fd = fd,
                    .events = c->wait == CONN_WANT_READ ? POLLIN
                              : c->wait == CONN_WANT_WRITE ? POLLOUT : 0,
                };
        }
        if (poll(pfds, n, ctab_timeout(&t)) < 0) {
            if (errno == EINTR && srv_eintr_fatal)
                srv_die("poll interrupted: EINTR is fatal here");
            if (errno == EINTR)
                continue;
            srv_die("poll");
        }
        for (nfds_t i = 1; i < n; i++) {
            short re = pfds[i].revents;
            if (!re)
                continue;
            struct conn *c = t.by_fd[pfds[i].fd];
            if (re & (POLLERR | POLLHUP | POLLNVAL))
                ctab_close(&t, c);
            else
                step(&t, c);
        }
        /* any revents: a broken listener must surface as an accept() error */
        if (pfds[0].revents)
            accept_one(&t, lfd);
        int64_t now = srv_now_ms();
        for (int fd = 0; fd < t.cap; fd++)
            if (t.by_fd[fd] && conn_due(t.by_fd[fd], now))
                step(&t, t.by_fd[fd]);
    }
    free(pfds);
    ctab_close_all(&t);
    close(lfd);
    return 0;
}
