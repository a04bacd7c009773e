/*
 * Benchmark tooling: keeps N idle keep-alive HTTP connections open.
 *
 *   idleclient --port BASE [--listeners L] --connections N --duration SECS
 *              [--host ADDR] [--concurrency K]
 *
 * Connection i goes to port BASE + i % L. Each connection sends one
 * keep-alive request, reads the response, then stays idle. When the server
 * closes an idle connection, it is counted and replaced by a new one (at most
 * K connects or requests in flight at once). While anything changes it
 * prints, at most every 5 ms,
 *   st T_NS idle=I pending=P closed=C failed=F
 * (T_NS on CLOCK_MONOTONIC; closed: idle connections the server closed;
 * failed: connects or requests that did not end in a response) and at the end
 *   done idle=I closed=C failed=F
 * Runs for --duration seconds or until SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { S_QUEUED, S_CONNECTING, S_WAITING, S_IDLE };

struct conn {
    int fd;
    enum state st;
    int len;
    char buf[512];
};

static volatile sig_atomic_t stop;
static struct conn *cs;
static long ncs;
static int *queue; /* ring of connection indices waiting to (re)connect */
static long qhead, qlen;
static long idle, pending, closed_n, failed_n;
static int ep, base, nl;
static struct in_addr addr;
static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n";

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_sig(int sig)
{
    (void)sig;
    stop = 1;
}

static void enqueue(long i)
{
    cs[i].st = S_QUEUED;
    queue[(qhead + qlen) % ncs] = (int)i;
    qlen++;
}

static void drop(long i, int was_idle)
{
    struct conn *c = &cs[i];
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (was_idle) {
        idle--;
        closed_n++;
    } else {
        pending--;
        failed_n++;
    }
    enqueue(i);
}

static void start(long i)
{
    struct conn *c = &cs[i];
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr = addr,
                             .sin_port = htons((uint16_t)(base + i % nl)) };
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    pending++;
    if (c->fd < 0) {
        pending--;
        failed_n++;
        enqueue(i);
        return;
    }
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        pending--;
        failed_n++;
        enqueue(i);
        return;
    }
    c->st = S_CONNECTING;
    struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = (uint64_t)i };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        close(c->fd);
        c->fd = -1;
        pending--;
        failed_n++;
        enqueue(i);
    }
}

static void on_event(long i, uint32_t events)
{
    struct conn *c = &cs[i];
    if (c->st == S_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err ||
            send(c->fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1)) {
            drop(i, 0);
            return;
        }
        c->st = S_WAITING;
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)i };
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    (void)events;
    for (;;) {
        char *dst = c->buf + c->len;
        size_t room = sizeof c->buf - 1 - (size_t)c->len;
        char scratch[512];
        if (c->st == S_IDLE) { /* unexpected bytes on an idle connection: discard */
            dst = scratch;
            room = sizeof scratch;
        }
        ssize_t n = recv(c->fd, dst, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            drop(i, c->st == S_IDLE);
            return;
        }
        if (c->st == S_IDLE)
            continue;
        c->len += (int)n;
        c->buf[c->len] = '\0';
        char *end = strstr(c->buf, "\r\n\r\n");
        if (!end) {
            if ((size_t)c->len >= sizeof c->buf - 1) {
                drop(i, 0);
                return;
            }
            continue;
        }
        long clen = 0;
        char *h = strcasestr(c->buf, "\r\nContent-Length:");
        if (h)
            clen = atol(h + 17);
        if (c->len < (int)(end + 4 - c->buf) + clen)
            continue;
        if (strncmp(c->buf, "HTTP/1.1 200", 12)) {
            drop(i, 0);
            return;
        }
        c->st = S_IDLE;
        pending--;
        idle++;
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "host", required_argument, NULL, 'h' },
        { "port", required_argument, NULL, 'p' },
        { "listeners", required_argument, NULL, 'l' },
        { "connections", required_argument, NULL, 'c' },
        { "duration", required_argument, NULL, 'd' },
        { "concurrency", required_argument, NULL, 'k' },
        { 0 },
    };
    const char *host = "127.0.0.1";
    double duration = 0;
    long conc = 256;
    int opt;
    nl = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': base = atoi(optarg); break;
        case 'l': nl = atoi(optarg); break;
        case 'c': ncs = atol(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'k': conc = atol(optarg); break;
        default: goto usage;
        }
    }
    if (base <= 0 || nl < 1 || ncs < 1 || duration <= 0 || conc < 1 ||
        inet_pton(AF_INET, host, &addr) != 1)
        goto usage;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = { .sa_handler = on_sig };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    cs = calloc((size_t)ncs, sizeof *cs);
    queue = calloc((size_t)ncs, sizeof *queue);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!cs || !queue || ep < 0) {
        perror("idleclient: setup");
        return 2;
    }
    for (long i = 0; i < ncs; i++) {
        cs[i].fd = -1;
        enqueue(i);
    }

    int64_t end = now_ns() + (int64_t)(duration * 1e9), last_print = 0;
    long p_idle = -1, p_pending = -1, p_closed = -1, p_failed = -1;
    struct epoll_event evs[512];
    while (!stop && now_ns() < end) {
        while (qlen && pending < conc) {
            long i = queue[qhead];
            qhead = (qhead + 1) % ncs;
            qlen--;
            start(i);
        }
        int n = epoll_wait(ep, evs, 512, 5);
        for (int k = 0; k < n; k++)
            on_event((long)evs[k].data.u64, evs[k].events);
        int64_t t = now_ns();
        if ((idle != p_idle || pending != p_pending || closed_n != p_closed ||
             failed_n != p_failed) && t - last_print >= 5000000) {
            printf("st %lld idle=%ld pending=%ld closed=%ld failed=%ld\n", (long long)t, idle,
                   pending, closed_n, failed_n);
            last_print = t;
            p_idle = idle;
            p_pending = pending;
            p_closed = closed_n;
            p_failed = failed_n;
        }
    }
    printf("done idle=%ld closed=%ld failed=%ld\n", idle, closed_n, failed_n);
    return 0;
usage:
    fprintf(stderr, "usage: idleclient --port BASE [--listeners L] --connections N "
                    "--duration SECS [--host ADDR] [--concurrency K]\n");
    return 2;
}
