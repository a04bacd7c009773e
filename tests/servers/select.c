/* One thread, select() over the non-blocking listener and the connections.
 * Connections whose fd does not fit in an fd_set are refused (closed). */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <string.h>
#include <sys/select.h>
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
    if (fd >= FD_SETSIZE) {
        srv_log("fd %d does not fit FD_SETSIZE, closing the connection", fd);
        close(fd);
        return;
    }
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

    srv_init(&o, argc, argv, "select", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
    if (lfd >= FD_SETSIZE) {
        srv_log("listener fd %d does not fit FD_SETSIZE", lfd);
        return 1;
    }
    if (!srv_set_nonblock(lfd))
        srv_die("O_NONBLOCK");
    srv_app_signals(&o);

    while (!srv_stop) {
        fd_set rd, wr;
        int maxfd = lfd;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_SET(lfd, &rd);
        for (int fd = 0; fd < t.cap; fd++) {
            const struct conn *c = t.by_fd[fd];
            if (!c)
                continue;
            if (c->wait == CONN_WANT_READ)
                FD_SET(fd, &rd);
            else if (c->wait == CONN_WANT_WRITE)
                FD_SET(fd, &wr);
            if (fd > maxfd)
                maxfd = fd;
        }
        int ms = ctab_timeout(&t);
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        if (select(maxfd + 1, &rd, &wr, NULL, ms < 0 ? NULL : &tv) < 0) {
            if (errno == EINTR && srv_eintr_fatal)
                srv_die("select interrupted: EINTR is fatal here");
            if (errno == EINTR)
                continue;
            srv_die("select");
        }
        for (int fd = 0; fd < t.cap; fd++) {
            struct conn *c = t.by_fd[fd];
            if (c && (FD_ISSET(fd, &rd) || FD_ISSET(fd, &wr)))
                step(&t, c);
        }
        if (FD_ISSET(lfd, &rd))
            accept_one(&t, lfd);
        int64_t now = srv_now_ms();
        for (int fd = 0; fd < t.cap; fd++)
            if (t.by_fd[fd] && conn_due(t.by_fd[fd], now))
                step(&t, t.by_fd[fd]);
    }
    ctab_close_all(&t);
    close(lfd);
    return 0;
}
