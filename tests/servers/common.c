#define _GNU_SOURCE
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BIG_LEN (1u << 20)
#define SLOW_MS 2000

volatile sig_atomic_t srv_stop;

static const char *srv_name = "server";
static volatile sig_atomic_t log_sigterm;
static char big_body[BIG_LEN + 1];
/* volatile so the compiler keeps the --touch-mib allocation and its page writes */
static char *volatile touched_mem;

/* ---- logging ---- */

static void vlog(const char *fmt, va_list ap, const char *suffix)
{
    char msg[768], line[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int n = snprintf(line, sizeof line, "%s: %s%s%s\n", srv_name, msg, suffix ? ": " : "",
                     suffix ? suffix : "");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    /* one write() so lines from several processes do not interleave */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void srv_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap, NULL);
    va_end(ap);
}

void srv_die(const char *fmt, ...)
{
    const char *err = strerror(errno);
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap, err);
    va_end(ap);
    exit(1);
}

void srv_log_exit(pid_t pid, int status)
{
    if (WIFSIGNALED(status))
        srv_log("worker %d killed by signal %d", (int)pid, WTERMSIG(status));
    else
        srv_log("worker %d exited with status %d", (int)pid, WEXITSTATUS(status));
}

bool srv_eintr_fatal;

/* ---- options ---- */

static void __attribute__((noreturn)) usage(void)
{
    srv_log("usage: %s [--host ADDR] [--port N] [--unix PATH] [--host6 ADDR] [--port6 N]"
            " [--workers N] [--touch-mib N] [--pidfile PATH] [--app-signals] [--eintr-fatal]",
            srv_name);
    exit(2);
}

static long parse_num(const char *s, const char *flag, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        srv_log("%s: expected a number in [%ld, %ld], got '%s'", flag, min, max, s);
        exit(2);
    }
    return v;
}

static void touch_memory(long mib)
{
    size_t len = (size_t)mib << 20;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *p = malloc(len);
    if (!p)
        srv_die("malloc %ld MiB", mib);
    for (size_t i = 0; i < len; i += page)
        p[i] = 1;
    touched_mem = p;
}

const char *srv_take_option(int *argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < *argc; i++)
        if (strcmp(argv[i], name) == 0) {
            const char *value = argv[i + 1];
            memmove(argv + i, argv + i + 2, (size_t)(*argc - i - 1) * sizeof *argv);
            *argc -= 2;
            return value;
        }
    return NULL;
}

void srv_init(struct srv_opts *o, int argc, char **argv, const char *name,
              enum srv_mode mode, int default_workers)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"unix", required_argument, NULL, 'u'},
        {"host6", required_argument, NULL, 'H'},
        {"port6", required_argument, NULL, 'P'},
        {"workers", required_argument, NULL, 'w'},
        {"touch-mib", required_argument, NULL, 'm'},
        {"pidfile", required_argument, NULL, 'f'},
        {"app-signals", no_argument, NULL, 'a'},
        {"eintr-fatal", no_argument, NULL, 'e'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    srv_name = name;
    *o = (struct srv_opts){.host = "127.0.0.1", .host6 = "::1", .workers = default_workers};
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h': o->host = optarg; break;
        case 'p': o->port = (int)parse_num(optarg, "--port", 1, 65535); break;
        case 'u': o->unix_path = optarg; break;
        case 'H': o->host6 = optarg; break;
        case 'P': o->port6 = (int)parse_num(optarg, "--port6", 1, 65535); break;
        case 'w': o->workers = (int)parse_num(optarg, "--workers", 1, 1024); break;
        case 'm': o->touch_mib = parse_num(optarg, "--touch-mib", 0, 1L << 20); break;
        case 'f': o->pidfile = optarg; break;
        case 'a': o->app_signals = true; break;
        case 'e': srv_eintr_fatal = true; break;
        default: usage();
        }
    }
    if (optind < argc) {
        srv_log("unexpected argument '%s'", argv[optind]);
        usage();
    }

    switch (mode) {
    case SRV_ONE_LISTENER:
        if (!o->port == !o->unix_path) {
            srv_log("give exactly one of --port and --unix");
            usage();
        }
        break;
    case SRV_UNIX_ONLY:
        if (!o->unix_path) {
            srv_log("--unix is required");
            usage();
        }
        break;
    case SRV_DUAL:
        if (!o->port || !o->port6 || o->unix_path) {
            srv_log("--port and --port6 are required, --unix is not supported");
            usage();
        }
        break;
    case SRV_STUB:
        return;
    }

    signal(SIGPIPE, SIG_IGN);
    memset(big_body, 'x', BIG_LEN);
    big_body[BIG_LEN] = '\n';
    if (o->touch_mib)
        touch_memory(o->touch_mib);
}

/* ---- listeners ---- */

int srv_listen_tcp(const char *host, int port, int sock_flags)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } addr;
    socklen_t alen;
    int one = 1;

    memset(&addr, 0, sizeof addr);
    if (inet_pton(AF_INET, host, &addr.in.sin_addr) == 1) {
        addr.in.sin_family = AF_INET;
        addr.in.sin_port = htons((uint16_t)port);
        alen = sizeof addr.in;
    } else if (inet_pton(AF_INET6, host, &addr.in6.sin6_addr) == 1) {
        addr.in6.sin6_family = AF_INET6;
        addr.in6.sin6_port = htons((uint16_t)port);
        alen = sizeof addr.in6;
    } else {
        srv_log("not a numeric IPv4/IPv6 address: '%s'", host);
        exit(2);
    }
    bool v6 = addr.sa.sa_family == AF_INET6;

    int fd = socket(addr.sa.sa_family, SOCK_STREAM | sock_flags, 0);
    if (fd < 0)
        srv_die("socket");
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        srv_die("SO_REUSEADDR");
    /* "::" keeps the system default (dual-stack); a specific v6 address is v6-only */
    if (v6 && !IN6_IS_ADDR_UNSPECIFIED(&addr.in6.sin6_addr) &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
        srv_die("IPV6_V6ONLY");
    if (bind(fd, &addr.sa, alen) < 0)
        srv_die("bind %s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
    if (listen(fd, 511) < 0)
        srv_die("listen");
    srv_log("pid %d listening on %s%s%s:%d", (int)getpid(), v6 ? "[" : "", host, v6 ? "]" : "",
            port);
    return fd;
}

int srv_listen_unix(const char *path, int sock_flags, bool unlink_first)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    bool abstract = path[0] == '@';

    if (len == 0 || len >= sizeof sun.sun_path) {
        srv_log("bad unix socket path '%s'", path);
        exit(2);
    }
    memcpy(sun.sun_path, path, len);
    if (abstract)
        sun.sun_path[0] = '\0';
    /* an abstract name is exactly len bytes; a path includes its NUL */
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + !abstract);

    int fd = socket(AF_UNIX, SOCK_STREAM | sock_flags, 0);
    if (fd < 0)
        srv_die("socket");
    if (unlink_first && !abstract && unlink(path) < 0 && errno != ENOENT)
        srv_die("unlink %s", path);
    if (bind(fd, (struct sockaddr *)&sun, alen) < 0)
        srv_die("bind %s", path);
    if (listen(fd, 511) < 0)
        srv_die("listen");
    srv_log("pid %d listening on unix:%s", (int)getpid(), path);
    return fd;
}

int srv_listen(const struct srv_opts *o, int sock_flags)
{
    if (o->unix_path)
        return srv_listen_unix(o->unix_path, sock_flags, false);
    return srv_listen_tcp(o->host, o->port, sock_flags);
}

bool srv_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

int srv_accept(int lfd, int flags)
{
    for (;;) {
        int fd = flags ? accept4(lfd, NULL, NULL, flags) : accept(lfd, NULL, NULL);
        if (fd >= 0)
            return fd;
        switch (errno) {
        case EINTR:
            if (srv_stop)
                return -1;
            continue;
        case EAGAIN:
            return -1;
        /* the pending connection died or was refused; take the next one */
        case ECONNABORTED:
        case EPROTO:
        case EPERM:
        case ENETDOWN:
        case ENETUNREACH:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case EHOSTUNREACH:
        case ENONET:
        case EOPNOTSUPP:
            continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM: {
            int err = errno;
            srv_log("accept: %s", strerror(err));
            /* pause so a full fd table does not turn into a busy loop */
            struct timespec ts = {.tv_nsec = 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            errno = err;
            return -1;
        }
        default:
            srv_die("accept");
        }
    }
}

/* ---- signals ---- */

static void on_sigterm(int sig)
{
    int saved = errno;
    (void)sig;
    if (log_sigterm) {
        static const char msg[] = "app: got SIGTERM\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
    }
    srv_stop = 1;
    errno = saved;
}

static void on_app_signal(int sig)
{
    int saved = errno;
    char msg[40] = "app: got signal ";
    size_t n = sizeof "app: got signal " - 1;
    char digits[12];
    int d = 0;
    unsigned v = (unsigned)sig;

    /* snprintf is not async-signal-safe; format by hand */
    do
        digits[d++] = (char)('0' + v % 10);
    while (v /= 10);
    while (d)
        msg[n++] = digits[--d];
    msg[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, msg, n);
    (void)w;
    errno = saved;
}

void srv_catch_sigterm(void)
{
    /* no SA_RESTART: blocking calls must fail with EINTR so loops see srv_stop */
    struct sigaction sa = {.sa_handler = on_sigterm};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
}

pid_t srv_fork_worker(void)
{
    pid_t pid = fork();
    if (pid < 0)
        srv_die("fork");
    if (pid == 0) {
        signal(SIGCHLD, SIG_DFL);
        srv_catch_sigterm();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    }
    return pid;
}

void srv_app_signals(const struct srv_opts *o)
{
    if (!o->app_signals)
        return;
    log_sigterm = 1;
    srv_catch_sigterm();
    struct sigaction sa = {.sa_handler = on_app_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
}

/* ---- time and threads ---- */

int64_t srv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_until(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

int srv_spawn_thread(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits this mask */
    int err = pthread_create(&tid, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return err;
}

/* ---- HTTP ---- */

enum http_target { HTTP_PLAIN, HTTP_SLOW, HTTP_BIG, HTTP_BAD };

/* Scans a Connection header value for the close / keep-alive tokens. */
static void connection_tokens(const char *p, const char *end, bool *close, bool *keep)
{
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *tok = p;
        while (p < end && *p != ' ' && *p != '\t' && *p != ',')
            p++;
        size_t n = (size_t)(p - tok);
        if (n == 5 && !strncasecmp(tok, "close", 5))
            *close = true;
        else if (n == 10 && !strncasecmp(tok, "keep-alive", 10))
            *keep = true;
    }
}

/* Parses one request head. Returns the bytes it occupies, 0 when it is not
 * complete yet, -1 when it is malformed. */
static long http_parse(const char *buf, size_t len, enum http_target *target, bool *keep_alive)
{
    size_t skip = 0;
    /* tolerate stray CRLFs between pipelined requests */
    while (len - skip >= 2 && buf[skip] == '\r' && buf[skip + 1] == '\n')
        skip += 2;
    const char *head = buf + skip;
    const char *end = memmem(head, len - skip, "\r\n\r\n", 4);
    if (!end)
        return 0;
    const char *hdr_end = end + 2; /* just past the last header line's CRLF */
    const char *line_end = memmem(head, (size_t)(hdr_end - head), "\r\n", 2);

    /* METHOD SP TARGET SP HTTP/1.x */
    const char *sp1 = memchr(head, ' ', (size_t)(line_end - head));
    if (!sp1 || sp1 == head)
        return -1;
    const char *tgt = sp1 + 1;
    const char *sp2 = memchr(tgt, ' ', (size_t)(line_end - tgt));
    if (!sp2 || sp2 == tgt)
        return -1;
    const char *ver = sp2 + 1;
    if (line_end - ver != 8 || memcmp(ver, "HTTP/1.", 7) || (ver[7] != '0' && ver[7] != '1'))
        return -1;
    const char *query = memchr(tgt, '?', (size_t)(sp2 - tgt));
    size_t plen = (size_t)((query ? query : sp2) - tgt);
    if (plen == 5 && !memcmp(tgt, "/slow", 5))
        *target = HTTP_SLOW;
    else if (plen == 4 && !memcmp(tgt, "/big", 4))
        *target = HTTP_BIG;
    else
        *target = HTTP_PLAIN;

    bool conn_close = false, conn_keep = false;
    for (const char *p = line_end + 2; p < hdr_end;) {
        const char *eol = memmem(p, (size_t)(hdr_end - p), "\r\n", 2);
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return -1;
        if (colon - p == 10 && !strncasecmp(p, "connection", 10))
            connection_tokens(colon + 1, eol, &conn_close, &conn_keep);
        p = eol + 2;
    }
    /* HTTP/1.1 defaults to keep-alive, HTTP/1.0 to close */
    *keep_alive = !conn_close && (conn_keep || ver[7] == '1');
    return (long)(end + 4 - buf);
}

static void conn_respond(struct conn *c, enum http_target target, bool keep_alive)
{
    c->answered = true;
    char small[128];
    const char *status = "200 OK";
    const char *body = small;
    size_t blen;
    int pid = (int)getpid();

    c->body = NULL;
    c->body_len = 0;
    if (target == HTTP_BAD) {
        status = "400 Bad Request";
        body = "bad request\n";
        blen = strlen(body);
        keep_alive = false;
    } else if (target == HTTP_BIG) {
        c->body = big_body;
        c->body_len = blen = sizeof big_body;
        body = "";
    } else {
        blen = (size_t)snprintf(small, sizeof small, "pid %d %s\n", pid, srv_name);
    }
    c->out_len = (size_t)snprintf(c->out, sizeof c->out,
                                  "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nX-Pid: %d\r\n"
                                  "Content-Length: %zu\r\nConnection: %s\r\n\r\n%s",
                                  status, pid, blen, keep_alive ? "keep-alive" : "close", body);
    c->sent = 0;
    c->closing = !keep_alive;
}

enum conn_status conn_drive(struct conn *c)
{
    enum conn_status st;

    for (;;) {
        if (c->sent < c->out_len + c->body_len) {
            struct iovec iov[2];
            int n = 0;
            if (c->sent < c->out_len)
                iov[n++] = (struct iovec){c->out + c->sent, c->out_len - c->sent};
            size_t boff = c->sent > c->out_len ? c->sent - c->out_len : 0;
            if (c->body_len > boff)
                iov[n++] = (struct iovec){(char *)c->body + boff, c->body_len - boff};
            ssize_t w = writev(c->fd, iov, n);
            if (w >= 0) {
                c->sent += (size_t)w;
                continue;
            }
            if (errno == EINTR)
                continue;
            st = errno == EAGAIN ? CONN_WANT_WRITE : CONN_DONE;
            break;
        }
        if (c->closing) {
            st = CONN_DONE;
            break;
        }
        if (c->slow_until) {
            if (srv_now_ms() < c->slow_until) {
                st = CONN_WAIT_TIMER;
                break;
            }
            c->slow_until = 0;
            conn_respond(c, HTTP_PLAIN, c->slow_keep_alive);
            continue;
        }

        enum http_target target;
        bool keep;
        long used = http_parse(c->in, c->in_len, &target, &keep);
        if (used > 0) {
            c->in_len -= (size_t)used;
            memmove(c->in, c->in + used, c->in_len);
            if (target == HTTP_SLOW) {
                c->slow_until = srv_now_ms() + SLOW_MS;
                c->slow_keep_alive = keep;
            } else {
                conn_respond(c, target, keep);
            }
            continue;
        }
        if (used < 0 || c->in_len == CONN_IN_MAX) {
            conn_respond(c, HTTP_BAD, false);
            continue;
        }
        if (c->eof) {
            st = CONN_DONE;
            break;
        }

        ssize_t r = read(c->fd, c->in + c->in_len, CONN_IN_MAX - c->in_len);
        if (r > 0) {
            c->in_len += (size_t)r;
            continue;
        }
        if (r == 0) {
            c->eof = true;
            continue;
        }
        if (errno == EINTR) {
            /* on stop, drop idle keep-alive connections instead of waiting for
             * the client; a fresh one waits for its first request */
            if (srv_stop && c->in_len == 0 && c->answered) {
                st = CONN_DONE;
                break;
            }
            continue;
        }
        st = errno == EAGAIN ? CONN_WANT_READ : CONN_DONE;
        break;
    }
    c->wait = st;
    return st;
}

static struct conn *conn_new(int fd)
{
    struct conn *c = malloc(sizeof *c);
    if (!c) {
        srv_log("out of memory for a connection");
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->wait = CONN_WANT_READ;
    c->eof = c->closing = c->slow_keep_alive = c->answered = false;
    c->slow_until = 0;
    c->body = NULL;
    c->in_len = c->out_len = c->body_len = c->sent = 0;
    return c;
}

static void conn_free(struct conn *c)
{
    close(c->fd);
    free(c);
}

void srv_serve_blocking(int fd)
{
    struct conn *c = conn_new(fd);
    if (!c)
        return;
    while (conn_drive(c) == CONN_WAIT_TIMER)
        sleep_until(c->slow_until);
    conn_free(c);
}

static void *serve_thread(void *arg)
{
    srv_serve_blocking((int)(intptr_t)arg);
    return NULL;
}

void srv_accept_threads(int lfd)
{
    while (!srv_stop) {
        int fd = srv_accept(lfd, 0);
        if (fd < 0)
            continue;
        int err = srv_spawn_thread(serve_thread, (void *)(intptr_t)fd);
        if (err) {
            srv_log("pthread_create: %s", strerror(err));
            close(fd);
        }
    }
}

/* ---- connection table ---- */

struct conn *ctab_open(struct conn_table *t, int fd)
{
    if (fd >= t->cap) {
        int cap = t->cap ? t->cap : 64;
        while (cap <= fd)
            cap *= 2;
        struct conn **v = realloc(t->by_fd, (size_t)cap * sizeof *v);
        if (!v) {
            srv_log("out of memory for the connection table");
            close(fd);
            return NULL;
        }
        memset(v + t->cap, 0, (size_t)(cap - t->cap) * sizeof *v);
        t->by_fd = v;
        t->cap = cap;
    }
    struct conn *c = conn_new(fd);
    t->by_fd[fd] = c;
    return c;
}

struct conn *ctab_get(const struct conn_table *t, int fd)
{
    return fd < t->cap ? t->by_fd[fd] : NULL;
}

void ctab_close(struct conn_table *t, struct conn *c)
{
    t->by_fd[c->fd] = NULL;
    conn_free(c);
}

void ctab_close_all(struct conn_table *t)
{
    for (int fd = 0; fd < t->cap; fd++)
        if (t->by_fd[fd])
            conn_free(t->by_fd[fd]);
    free(t->by_fd);
    t->by_fd = NULL;
    t->cap = 0;
}

int ctab_timeout(const struct conn_table *t)
{
    int64_t next = 0;
    for (int fd = 0; fd < t->cap; fd++) {
        const struct conn *c = t->by_fd[fd];
        if (c && c->slow_until && (!next || c->slow_until < next))
            next = c->slow_until;
    }
    if (!next)
        return -1;
    int64_t left = next - srv_now_ms();
    return left > 0 ? (int)left : 0;
}

/* ---- level-triggered epoll loop ---- */

static uint32_t lt_events(enum conn_status st)
{
    return st == CONN_WANT_READ ? EPOLLIN : st == CONN_WANT_WRITE ? EPOLLOUT : 0;
}

static void lt_close(int ep, struct conn_table *t, struct conn *c)
{
    /* explicit removal: a forked copy of the fd would keep it registered */
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    ctab_close(t, c);
}

static void lt_step(int ep, struct conn_table *t, struct conn *c)
{
    enum conn_status before = c->wait;
    enum conn_status st = conn_drive(c);

    if (st == CONN_DONE) {
        lt_close(ep, t, c);
        return;
    }
    if (lt_events(st) != lt_events(before)) {
        struct epoll_event ev = {.events = lt_events(st), .data.fd = c->fd};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
            srv_log("epoll_ctl MOD: %s", strerror(errno));
            lt_close(ep, t, c);
        }
    }
}

static void lt_accept(int ep, struct conn_table *t, int lfd)
{
    int fd = srv_accept(lfd, 0);
    if (fd < 0)
        return;
    if (!srv_set_nonblock(fd)) {
        srv_log("O_NONBLOCK: %s", strerror(errno));
        close(fd);
        return;
    }
    struct conn *c = ctab_open(t, fd);
    if (!c)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        srv_log("epoll_ctl ADD: %s", strerror(errno));
        ctab_close(t, c);
    }
}

void srv_epoll_lt_run(const int *lfds, int nl, struct conn_table *t)
{
    struct epoll_event evs[64];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        srv_die("epoll_create1");
    for (int i = 0; i < nl; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfds[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, lfds[i], &ev) < 0)
            srv_die("epoll_ctl ADD listener");
    }

    while (!srv_stop) {
        int n = epoll_wait(ep, evs, 64, ctab_timeout(t));
        if (n < 0) {
            if (errno == EINTR && srv_eintr_fatal)
                srv_die("epoll_wait interrupted: EINTR is fatal here");
            if (errno == EINTR)
                continue;
            srv_die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            int j = 0;
            while (j < nl && lfds[j] != fd)
                j++;
            if (j < nl) {
                lt_accept(ep, t, fd);
                continue;
            }
            struct conn *c = ctab_get(t, fd);
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                lt_close(ep, t, c);
            else
                lt_step(ep, t, c);
        }
        int64_t now = srv_now_ms();
        for (int fd = 0; fd < t->cap; fd++)
            if (t->by_fd[fd] && conn_due(t->by_fd[fd], now))
                lt_step(ep, t, t->by_fd[fd]);
    }
    close(ep);
}
