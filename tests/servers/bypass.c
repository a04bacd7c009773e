/* An epoll server that reaches the kernel around the obvious calls, the way
 * real programs do (--mode, default "dup"):
 *   closefrom    closefrom(3) at start-up before binding (OpenSSH-style)
 *   close-range  close_range(3, ~0U, 0) at start-up; connections are closed
 *                with close_range(fd, fd, 0)
 *   dup          the listener moved with fcntl(F_DUPFD_CLOEXEC) then dup3();
 *                every connection dup()ed and the original closed; closing
 *                is dup2() of /dev/null over the connection
 *   syscall      accept4, epoll_ctl, epoll_wait and close through
 *                syscall(), as libuv does
 *   late         the epoll set made through syscall(); the listener goes
 *                into it only once the file --late-flag names exists (as
 *                servers that register it once they are up, or toggle it,
 *                do)
 * Otherwise a level-triggered epoll loop like epoll_lt. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

enum mode { M_CLOSEFROM, M_CLOSE_RANGE, M_DUP, M_SYSCALL, M_LATE };
static enum mode mode = M_DUP;
static int devnull = -1;
static const char *late_flag = "";

static int do_accept(int lfd)
{
    int fd;
    if (mode == M_SYSCALL)
        fd = (int)syscall(SYS_accept4, lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    else
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 || mode != M_DUP)
        return fd;
    int copy = dup(fd);
    close(fd);
    return copy;
}

static int do_ctl(int ep, int op, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (mode == M_SYSCALL)
        return (int)syscall(SYS_epoll_ctl, ep, op, fd, &ev);
    return epoll_ctl(ep, op, fd, &ev);
}

static void do_close(int ep, struct conn_table *t, struct conn *c)
{
    int fd = c->fd;
    do_ctl(ep, EPOLL_CTL_DEL, fd, 0);
    if (mode == M_CLOSE_RANGE)
        close_range((unsigned)fd, (unsigned)fd, 0);
    else if (mode == M_SYSCALL)
        syscall(SYS_close, fd);
    else if (mode == M_DUP)
        dup2(devnull, fd);
    /* Closes what is left at fd (the /dev/null copy, or nothing: EBADF). */
    ctab_close(t, c);
}

static uint32_t events_for(enum conn_status st)
{
    return st == CONN_WANT_READ ? EPOLLIN : st == CONN_WANT_WRITE ? EPOLLOUT : 0;
}

int main(int argc, char **argv)
{
    const char *flag = srv_take_option(&argc, argv, "--late-flag");
    if (flag)
        late_flag = flag;
    const char *m = srv_take_option(&argc, argv, "--mode");
    if (m)
        mode = !strcmp(m, "closefrom")     ? M_CLOSEFROM
               : !strcmp(m, "close-range") ? M_CLOSE_RANGE
               : !strcmp(m, "syscall")     ? M_SYSCALL
               : !strcmp(m, "late")        ? M_LATE
               : !strcmp(m, "dup")         ? M_DUP
                                           : (srv_log("unknown mode %s", m), exit(2), M_DUP);
    if (mode == M_CLOSEFROM)
        closefrom(3);
    else if (mode == M_CLOSE_RANGE)
        close_range(3, ~0U, 0);

    struct srv_opts o;
    srv_init(&o, argc, argv, "bypass", SRV_ONE_LISTENER, 1);
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    int lfd = srv_listen(&o, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (mode == M_DUP) {
        int moved = fcntl(lfd, F_DUPFD_CLOEXEC, 100);
        close(lfd);
        lfd = dup3(moved, moved + 1, O_CLOEXEC);
        close(moved);
    }
    int ep = mode == M_LATE ? (int)syscall(SYS_epoll_create1, EPOLL_CLOEXEC)
                            : epoll_create1(EPOLL_CLOEXEC);
    if (lfd < 0 || ep < 0 || (mode != M_LATE && do_ctl(ep, EPOLL_CTL_ADD, lfd, EPOLLIN) < 0))
        srv_die("set-up");
    int listening = mode != M_LATE;

    struct conn_table t = {0};
    struct epoll_event evs[64];
    while (!srv_stop) {
        if (!listening && access(late_flag, F_OK) == 0) {
            if (do_ctl(ep, EPOLL_CTL_ADD, lfd, EPOLLIN) < 0)
                srv_die("epoll_ctl ADD listener");
            listening = 1;
            srv_log("late: the listener is in the epoll set");
        }
        int timeout = ctab_timeout(&t);
        if (!listening && (timeout < 0 || timeout > 50))
            timeout = 50; /* looks for the flag this often */
        int n = mode == M_SYSCALL ? (int)syscall(SYS_epoll_wait, ep, evs, 64, timeout)
                                  : epoll_wait(ep, evs, 64, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            srv_die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c = do_accept(lfd);
                if (c < 0)
                    continue;
                struct conn *conn = ctab_open(&t, c);
                if (conn && do_ctl(ep, EPOLL_CTL_ADD, c, EPOLLIN) < 0)
                    do_close(ep, &t, conn);
                continue;
            }
            struct conn *c = ctab_get(&t, fd);
            if (!c)
                continue;
            enum conn_status before = c->wait, st;
            if ((evs[i].events & (EPOLLERR | EPOLLHUP)) || (st = conn_drive(c)) == CONN_DONE) {
                do_close(ep, &t, c);
                continue;
            }
            if (events_for(st) != events_for(before) &&
                do_ctl(ep, EPOLL_CTL_MOD, fd, events_for(st)) < 0)
                do_close(ep, &t, c);
        }
    }
    ctab_close_all(&t);
    return 0;
}
