/*
 * Benchmark tooling: a paced single-connection HTTP prober that records when
 * responses start coming from a different process (X-Pid header).
 *
 *   probe --port N [--host 127.0.0.1] --duration SECS [--interval-us N]
 *
 * Every --interval-us it opens a connection, sends "GET / HTTP/1.1" with
 * Connection: close and reads the response. Each time the X-Pid value differs
 * from the previous response it prints "pid T_NS PID", where T_NS is the
 * CLOCK_MONOTONIC time (ns) at which the first response byte arrived, so the
 * process that answered had accepted the connection no later than T_NS.
 * Ends with "probe ok=N err=N".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = { .tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* One request; returns 0 with pid (possibly "") and *t_first, -1 on error. */
static int one(const struct sockaddr_storage *sa, socklen_t salen, char *pid, size_t pidcap,
               int64_t *t_first)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[8192];
    size_t len = 0;
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { .tv_sec = 2 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (const struct sockaddr *)sa, salen) < 0 ||
        send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return -1;
    }
    *t_first = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        if (!*t_first)
            *t_first = now_ns();
        len += (size_t)n;
        if (len == sizeof buf - 1)
            break;
    }
    close(fd);
    buf[len] = '\0';
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) || strncmp(buf + 9, "200", 3))
        return -1;
    pid[0] = '\0';
    char *h = strcasestr(buf, "\r\nX-Pid:");
    if (h) {
        h += 8;
        while (*h == ' ')
            h++;
        size_t i = 0;
        while (i + 1 < pidcap && h[i] >= '0' && h[i] <= '9') {
            pid[i] = h[i];
            i++;
        }
        pid[i] = '\0';
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        { "duration", required_argument, NULL, 'd' },
        { "interval-us", required_argument, NULL, 'i' },
        { 0 },
    };
    const char *host = "127.0.0.1";
    int port = 0, opt;
    double duration = 0;
    long interval_us = 500;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'i': interval_us = atol(optarg); break;
        default:
            fprintf(stderr, "usage: probe --port N [--host A] --duration S [--interval-us N]\n");
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || duration <= 0 || interval_us < 0) {
        fprintf(stderr, "probe: --port and --duration are required\n");
        return 2;
    }
    struct sockaddr_storage sa;
    socklen_t salen;
    memset(&sa, 0, sizeof sa);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        salen = sizeof *in4;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        salen = sizeof *in6;
    } else {
        fprintf(stderr, "probe: bad --host %s\n", host);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    int64_t end = now_ns() + (int64_t)(duration * 1e9);
    unsigned long ok = 0, err = 0;
    char last[32] = "", pid[32];
    int64_t slot = now_ns();
    while (now_ns() < end) {
        int64_t t;
        if (one(&sa, salen, pid, sizeof pid, &t) == 0) {
            ok++;
            if (strcmp(pid, last)) {
                printf("pid %lld %s\n", (long long)t, pid[0] ? pid : "-");
                memcpy(last, pid, sizeof last);
            }
        } else {
            err++;
        }
        slot += interval_us * 1000LL;
        int64_t now = now_ns();
        if (slot < now)
            slot = now;
        sleep_ns(slot - now);
    }
    printf("probe ok=%lu err=%lu\n", ok, err);
    return 0;
}
