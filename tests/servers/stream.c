/* Streams a response in two halves and watches the client in between, as
 * proxies waiting for their upstream and streaming endpoints do: headers
 * and 1,000 of 2,000 body bytes, then 2 s in select() on the client socket
 * (readable means the client left: the response is aborted), then the rest.
 * The request is read with blocking reads, or with STREAM_READ=nonblock
 * until EAGAIN on a non-blocking socket. Blocking accept(), a thread per
 * connection. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#define HALF 1000

static bool nonblocking_reads;

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd out = {.fd = fd, .events = POLLOUT};
            poll(&out, 1, 1000);
            continue;
        }
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads until the end of the request head; false when the client left. */
static bool read_request(int fd)
{
    char buf[4096];
    size_t len = 0;
    while (!memmem(buf, len, "\r\n\r\n", 4)) {
        if (len == sizeof buf)
            return false;
        if (nonblocking_reads) {
            struct pollfd in = {.fd = fd, .events = POLLIN};
            poll(&in, 1, 5000);
        }
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r == 0)
            return false;
        if (r < 0 && errno != EINTR && errno != EAGAIN)
            return false;
        if (r > 0)
            len += (size_t)r;
    }
    /* A non-blocking reader drains the socket before it answers. */
    while (nonblocking_reads && read(fd, buf, sizeof buf) > 0)
        ;
    return true;
}

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    if (nonblocking_reads)
        srv_set_nonblock(fd);
    if (!read_request(fd)) {
        close(fd);
        return NULL;
    }
    char head[256], body[HALF];
    memset(body, 'x', sizeof body);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Pid: %d\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n",
                     (int)getpid(), 2 * HALF);
    if (!write_all(fd, head, (size_t)n) || !write_all(fd, body, HALF)) {
        close(fd);
        return NULL;
    }
    fd_set rfds;
    FD_ZERO(&rfds);
    FD_SET(fd, &rfds);
    struct timeval tv = {.tv_sec = 2};
    if (select(fd + 1, &rfds, NULL, NULL, &tv) > 0) {
        srv_log("pid %d: client went away; response aborted", (int)getpid());
        close(fd);
        return NULL;
    }
    write_all(fd, body, HALF);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "stream", SRV_ONE_LISTENER, 1);
    const char *mode = getenv("STREAM_READ");
    nonblocking_reads = mode && strcmp(mode, "nonblock") == 0;
    int lfd = srv_listen(&o, 0);
    srv_catch_sigterm();

    while (!srv_stop) {
        int fd = srv_accept(lfd, 0);
        if (fd < 0)
            continue;
        int err = srv_spawn_thread(serve, (void *)(intptr_t)fd);
        if (err) {
            srv_log("pthread_create: %s", strerror(err));
            close(fd);
        }
    }
    close(lfd);
    return 0;
}
