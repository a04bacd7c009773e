/* One thread, edge-triggered epoll: listener created non-blocking by socket(),
 * accept4() until EAGAIN, connections read/written until EAGAIN. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static int ep;
static struct conn_table conns;

static void drop(struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    ctab_close(&conns, c);
}

/* Registered for both directions once, so any edge just resumes the machine. */
static void step(struct conn *c)
{
    if (conn_drive(c) == CONN_DONE)
        drop(c);
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = srv_accept(lfd, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct conn *c = ctab_open(&conns, fd);
        if (!c)
            continue;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            srv_log("epoll_ctl ADD: %s", strerror(errno));
            ctab_close(&conns, c);
        }
    }
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    struct epoll_event evs[64];

    srv_init(&o, argc, argv, "epoll_et", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, SOCK_NONBLOCK | SOCK_CLOEXEC);
    srv_app_signals(&o);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        srv_die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.fd = lfd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        srv_die("epoll_ctl ADD listener");

    while (!srv_stop) {
        int n = epoll_wait(ep, evs, 64, ctab_timeout(&conns));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            srv_die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                accept_all(lfd);
                continue;
            }
            struct conn *c = ctab_get(&conns, fd);
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                drop(c);
            else
                step(c);
        }
        int64_t now = srv_now_ms();
        for (int fd = 0; fd < conns.cap; fd++)
            if (conns.by_fd[fd] && conn_due(conns.by_fd[fd], now))
                step(conns.by_fd[fd]);
    }
    ctab_close_all(&conns);
    close(ep);
    close(lfd);
    return 0;
}
