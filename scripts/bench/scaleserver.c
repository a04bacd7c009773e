/*
 * Benchmark tooling: a single-threaded epoll HTTP/1.1 server with many
 * listeners, for the "10,000 idle connections and 64 listeners" handover
 * measurement. Like the test servers it knows nothing about hotrestart.
 *
 *   scaleserver --port BASE [--listeners N] [--host ADDR]
 *
 * Listens on BASE .. BASE+N-1. Every request gets a small 200 response with
 * an X-Pid header; connections stay open (keep-alive) unless the request says
 * "Connection: close". A connection whose peer closes (or that reads end of
 * input) is closed. SIGTERM ends the loop and closes everything.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_MAX 2048
#define MAX_LISTENERS 1024

struct conn {
    size_t len;
    char in[IN_MAX];
};

static volatile sig_atomic_t stop;
static struct conn **conns;
static unsigned char *is_listener;
static int cap;
static char resp_keep[256], resp_close[256];
static int resp_keep_len, resp_close_len;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(const char *what)
{
    fprintf(stderr, "scaleserver: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void conn_close(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    free(conns[fd]);
    conns[fd] = NULL;
    close(fd);
}

/* Answers every complete request in the buffer; returns 0 to close. */
static int serve(struct conn *c, int fd)
{
    for (;;) {
        char *end = memmem(c->in, c->len, "\r\n\r\n", 4);
        if (!end)
            return c->len < IN_MAX;
        size_t used = (size_t)(end + 4 - c->in);
        *end = '\0';
        int close_it = strcasestr(c->in, "\r\nConnection: close") != NULL;
        const char *r = close_it ? resp_close : resp_keep;
        int rlen = close_it ? resp_close_len : resp_keep_len;
        if (write(fd, r, (size_t)rlen) != rlen || close_it)
            return 0;
        memmove(c->in, c->in + used, c->len - used);
        c->len -= used;
    }
}

static void on_readable(int ep, int fd)
{
    struct conn *c = conns[fd];
    for (;;) {
        ssize_t n = read(fd, c->in + c->len, IN_MAX - c->len);
        if (n > 0) {
            c->len += (size_t)n;
            if (!serve(c, fd)) {
                conn_close(ep, fd);
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        conn_close(ep, fd);
        return;
    }
}

static void on_listener(int ep, int lfd)
{
    for (int i = 0; i < 256; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                fprintf(stderr, "scaleserver: accept: %s\n", strerror(errno));
                struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
                nanosleep(&ts, NULL);
            }
            return;
        }
        if (fd >= cap || !(conns[fd] = calloc(1, sizeof(struct conn)))) {
            close(fd);
            continue;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(conns[fd]);
            conns[fd] = NULL;
            close(fd);
        }
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "host", required_argument, NULL, 'h' },
        { "port", required_argument, NULL, 'p' },
        { "listeners", required_argument, NULL, 'n' },
        { 0 },
    };
    const char *host = "127.0.0.1";
    int base = 0, nl = 64, opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': base = atoi(optarg); break;
        case 'n': nl = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: scaleserver --port BASE [--listeners N] [--host ADDR]\n");
            return 2;
        }
    }
    if (base <= 0 || nl < 1 || nl > MAX_LISTENERS || base + nl - 1 > 65535) {
        fprintf(stderr, "scaleserver: bad --port/--listeners\n");
        return 2;
    }
    struct in_addr ia;
    if (inet_pton(AF_INET, host, &ia) != 1) {
        fprintf(stderr, "scaleserver: --host must be an IPv4 address\n");
        return 2;
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("getrlimit");
    cap = rl.rlim_cur > 1000000 ? 1000000 : (int)rl.rlim_cur;
    conns = calloc((size_t)cap, sizeof *conns);
    is_listener = calloc((size_t)cap, 1);
    if (!conns || !is_listener)
        die("calloc");

    int pid = (int)getpid();
    resp_keep_len = snprintf(resp_keep, sizeof resp_keep,
                             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Pid: %d\r\n"
                             "Content-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n", pid);
    resp_close_len = snprintf(resp_close, sizeof resp_close,
                              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Pid: %d\r\n"
                              "Content-Length: 3\r\nConnection: close\r\n\r\nok\n", pid);

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = { .sa_handler = on_term };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    for (int i = 0; i < nl; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
        if (fd < 0)
            die("socket");
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)(base + i)),
                                 .sin_addr = ia };
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
            die("bind");
        if (listen(fd, 4096) < 0)
            die("listen");
        if (fd >= cap)
            die("listener fd above RLIMIT_NOFILE");
        is_listener[fd] = 1;
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            die("epoll_ctl");
    }
    fprintf(stderr, "scaleserver: pid %d listening on %s:%d..%d\n", pid, host, base, base + nl - 1);

    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (is_listener[fd])
                on_listener(ep, fd);
            else if (conns[fd])
                on_readable(ep, fd);
        }
    }
    for (int fd = 0; fd < cap; fd++)
        if (conns[fd])
            conn_close(ep, fd);
    return 0;
}
