/* One thread, level-triggered epoll, stopping the way production event
 * loops do at SIGTERM: it closes its listener, finishes the requests under
 * way (a /slow one included), closes keep-alive connections as soon as
 * they are idle between requests, then exits 0. Built static too, as a
 * server LD_PRELOAD cannot see. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define STOP_POLL_MS 50 /* how often idle connections are looked for once stopping */

static bool answered[65536]; /* by fd: the connection has been served a request */

static void drop(int ep, struct conn_table *t, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    answered[c->fd] = false;
    ctab_close(t, c);
}

static void step(int ep, struct conn_table *t, struct conn *c)
{
    size_t had = c->in_len;
    enum conn_status st = conn_drive(c);
    if (st == CONN_DONE) {
        drop(ep, t, c);
        return;
    }
    if (had && !c->in_len)
        answered[c->fd] = true;
    if (srv_stop && answered[c->fd] && st == CONN_WANT_READ && !c->in_len) {
        /* Stopping: a keep-alive connection closes after its response (a
         * client retries a reused connection closed before any byte). */
        drop(ep, t, c);
        return;
    }
    struct epoll_event ev = {.events = st == CONN_WANT_WRITE ? EPOLLOUT : EPOLLIN, .data.fd = c->fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "epoll_graceful", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, SOCK_NONBLOCK);
    srv_catch_sigterm();
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        srv_die("epoll");
    struct conn_table t = {0};
    struct epoll_event evs[64];
    for (;;) {
        int open_conns = 0;
        for (int fd = 0; fd < t.cap; fd++) {
            struct conn *c = t.by_fd[fd];
            if (!c)
                continue;
            if (srv_stop && answered[fd] && c->wait == CONN_WANT_READ && !c->in_len)
                drop(ep, &t, c);
            else
                open_conns++;
        }
        if (srv_stop && lfd >= 0) {
            epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
            close(lfd);
            lfd = -1;
        }
        if (srv_stop && !open_conns)
            break;
        int timeout = ctab_timeout(&t);
        if (srv_stop && (timeout < 0 || timeout > STOP_POLL_MS))
            timeout = STOP_POLL_MS;
        int n = epoll_wait(ep, evs, 64, timeout);
        if (n < 0 && errno != EINTR)
            srv_die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int cfd = srv_accept(lfd, SOCK_NONBLOCK);
                struct conn *c = cfd >= 0 ? ctab_open(&t, cfd) : NULL;
                struct epoll_event ev = {.events = EPOLLIN, .data.fd = cfd};
                if (c && epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0)
                    drop(ep, &t, c);
                continue;
            }
            struct conn *c = ctab_get(&t, fd);
            if (c && (evs[i].events & (EPOLLERR | EPOLLHUP)))
                drop(ep, &t, c);
            else if (c)
                step(ep, &t, c);
        }
        int64_t now = srv_now_ms();
        for (int fd = 0; fd < t.cap; fd++)
            if (t.by_fd[fd] && conn_due(t.by_fd[fd], now))
                step(ep, &t, t.by_fd[fd]);
    }
    close(ep);
    srv_log("pid %d stopped", (int)getpid());
    return 0;
}
