/*
 * Benchmark tooling, not part of hotrestart: an LD_PRELOAD helper that lets
 * unmodified servers take part in the "SO_REUSEPORT overlap" restart method,
 * and tells the benchmark when a process starts listening.
 *
 *   BENCH_REUSEPORT=1      set SO_REUSEPORT on every TCP socket, at socket()
 *                          and again just before bind()
 *   BENCH_LISTEN_MARK=DIR  after each successful listen() create DIR/<pid>
 *
 * Built by scripts/bench/run.py into build/bench/reuseport.so.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int (*next_socket)(int, int, int);
static int (*next_bind)(int, const struct sockaddr *, socklen_t);
static int (*next_listen)(int, int);

static void *next_sym(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        static const char msg[] = "reuseport.so: dlsym failed\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    return p;
}

static int reuse_wanted(void)
{
    const char *v = getenv("BENCH_REUSEPORT");
    return v && *v == '1';
}

static void set_reuseport(int fd)
{
    int one = 1;
    int saved = errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    errno = saved;
}

static int is_tcp(int fd)
{
    int type = 0, domain = 0;
    socklen_t len = sizeof type;
    int saved = errno;
    int ok = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
    len = sizeof domain;
    ok = ok && getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
         (domain == AF_INET || domain == AF_INET6);
    errno = saved;
    return ok;
}

int socket(int domain, int type, int protocol)
{
    if (!next_socket)
        next_socket = next_sym("socket");
    int fd = next_socket(domain, type, protocol);
    if (fd >= 0 && reuse_wanted() && (domain == AF_INET || domain == AF_INET6) &&
        (type & 0xf) == SOCK_STREAM)
        set_reuseport(fd);
    return fd;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (!next_bind)
        next_bind = next_sym("bind");
    if (reuse_wanted() && is_tcp(fd))
        set_reuseport(fd);
    return next_bind(fd, addr, len);
}

int listen(int fd, int backlog)
{
    if (!next_listen)
        next_listen = next_sym("listen");
    int r = next_listen(fd, backlog);
    const char *dir = getenv("BENCH_LISTEN_MARK");
    if (r == 0 && dir && *dir) {
        int saved = errno;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%d", dir, (int)getpid()) < (int)sizeof path) {
            int m = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (m >= 0)
                close(m);
        }
        errno = saved;
    }
    return r;
}
