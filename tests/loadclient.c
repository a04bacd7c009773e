/*
 * loadclient: keeps N connections busy against an HTTP/1.1 server for a
 * bounded time and counts every client-visible outcome by category, so tests
 * can assert that restarting a server under hotrestart loses no request.
 *
 * Prints one line on stdout:
 *   ok=N refused=N reset=N timeout=N bad=N other=N retried=N errors=N
 *   max_gap_ms=N duration_s=F rps=F pids=P1,P2,...
 * Exit status: 0 when errors == 0, 1 when errors > 0, 2 on usage or setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_SEC 1000000000LL
#define NS_PER_MS 1000000LL
#define BUF_SIZE 65536          /* response head limit and body read chunk */
#define MAX_PIDS 64
#define PID_LEN 32
#define MAX_REPORTS 5           /* stderr lines per kind of diagnostic */
#define MAX_BUCKETS 10000000
#define STACK_SIZE (256 * 1024) /* buffers live on the heap; keeps many threads cheap */

/* Outcome categories; C_RETRY is internal and never counted as an outcome. */
enum cat { C_OK, C_REFUSED, C_RESET, C_TIMEOUT, C_BAD, C_OTHER, NCAT, C_RETRY = NCAT };
static const char *const cat_names[NCAT] = {
    "ok", "refused", "reset", "timeout", "bad", "other",
};

static struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *req;
    size_t req_len;
    long connections;
    int64_t duration_ns, timeout_ns, interval_ns, bucket_ns;
    bool keepalive;
    FILE *timeline, *json;
} cfg;

struct worker {
    pthread_t tid;
    int fd;                     /* open only while it may be reused */
    char *buf;
    unsigned long long count[NCAT], retried;
    char last_pid[PID_LEN];     /* lets the common case skip the shared pid lock */
};

static int64_t t_start, t_end;
static atomic_bool stop_flag;
static int stop_fd;             /* eventfd made readable at stop: wakes paced sleepers */
static pthread_barrier_t start_barrier;

static pthread_mutex_t gap_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ok, max_gap;

static pthread_mutex_t pid_lock = PTHREAD_MUTEX_INITIALIZER;
static char pids[MAX_PIDS][PID_LEN];
static int npids;

static _Atomic unsigned long *tl_ok, *tl_err;
static size_t tl_n;

static atomic_int other_reports, bad_reports;

__attribute__((format(printf, 1, 2), noreturn))
static void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadclient: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static struct timespec ns_to_ts(int64_t ns)
{
    return (struct timespec){ .tv_sec = ns / NS_PER_SEC, .tv_nsec = ns % NS_PER_SEC };
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Wait until fd reports one of events or the deadline passes: 0 when ready,
 * -1 with errno (ETIMEDOUT at the deadline) otherwise. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ns();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct timespec ts = ns_to_ts(left);
        struct pollfd p = { .fd = fd, .events = events };
        int r = ppoll(&p, 1, &ts, NULL);
        if (r > 0)
            return 0;   /* POLLERR/POLLHUP too: the next call reports them */
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static enum cat errno_cat(int err)
{
    switch (err) {
    case ECONNREFUSED:
    case ENOENT:        /* only connect() to a missing unix socket gives this */
        return C_REFUSED;
    case ECONNRESET:
    case EPIPE:
        return C_RESET;
    case ETIMEDOUT:
        return C_TIMEOUT;
    default:
        return C_OTHER;
    }
}

/* Categorise a failed call; may_retry is set while a reused connection has
 * not yet produced any byte of the response, when a reset means the server
 * closed it idle and the request never reached it. */
static enum cat fail(const char *what, int err, bool may_retry)
{
    if (may_retry && (err == ECONNRESET || err == EPIPE))
        return C_RETRY;
    enum cat c = errno_cat(err);
    if (c == C_OTHER && atomic_fetch_add(&other_reports, 1) < MAX_REPORTS) {
        char eb[128];
        fprintf(stderr, "loadclient: %s: %s\n", what, strerror_r(err, eb, sizeof eb));
    }
    return c;
}

/* Report the first few malformed responses: a bare count is hard to debug. */
__attribute__((format(printf, 1, 2)))
static enum cat bad(const char *fmt, ...)
{
    if (atomic_fetch_add(&bad_reports, 1) < MAX_REPORTS) {
        va_list ap;
        va_start(ap, fmt);
        fputs("loadclient: bad response: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    return C_BAD;
}

/* Connect to the target; returns a non-blocking fd, or -1 with *c set. */
static int open_conn(int64_t deadline, enum cat *c)
{
    bool is_unix = cfg.addr.ss_family == AF_UNIX;
    int fd = socket(cfg.addr.ss_family,
                    SOCK_STREAM | SOCK_CLOEXEC | (is_unix ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0) {
        *c = fail("socket", errno, false);
        return -1;
    }
    int err = 0;
    if (is_unix) {
        /* A non-blocking AF_UNIX connect fails with EAGAIN when the listen
         * backlog is full instead of waiting for room, so connect blocking
         * with a send timeout (which bounds that wait, then gives EAGAIN). */
        int64_t left_us = (deadline - now_ns()) / 1000 + 1;
        if (left_us < 1)
            left_us = 1;
        struct timeval tv = { .tv_sec = left_us / 1000000, .tv_usec = left_us % 1000000 };
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
            connect(fd, (struct sockaddr *)&cfg.addr, cfg.addrlen) < 0)
            err = errno == EAGAIN ? ETIMEDOUT : errno;
        else if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
            err = errno;
    } else if (connect(fd, (struct sockaddr *)&cfg.addr, cfg.addrlen) < 0) {
        if (errno != EINPROGRESS) {
            err = errno;
        } else if (wait_fd(fd, POLLOUT, deadline) < 0) {
            err = errno;
        } else {
            socklen_t len = sizeof err;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        }
    }
    if (err) {
        close(fd);
        *c = fail("connect", err, false);
        return -1;
    }
    return fd;
}

static enum cat send_req(int fd, int64_t deadline, bool reused)
{
    for (size_t off = 0; off < cfg.req_len;) {
        ssize_t n = send(fd, cfg.req + off, cfg.req_len - off, MSG_NOSIGNAL);
        if (n >= 0)
            off += (size_t)n;
        else if (errno != EAGAIN && errno != EINTR)
            return fail("send", errno, reused);
        else if (wait_fd(fd, POLLOUT, deadline) < 0)
            return fail("send", errno, false);
    }
    return C_OK;
}

/* recv() that waits for data up to the deadline; -1 with ETIMEDOUT past it. */
static ssize_t recv_wait(int fd, char *buf, size_t cap, int64_t deadline)
{
    for (;;) {
        ssize_t n = recv(fd, buf, cap, 0);
        if (n >= 0)
            return n;
        if (errno != EAGAIN && errno != EINTR)
            return -1;
        if (wait_fd(fd, POLLIN, deadline) < 0)
            return -1;
    }
}

struct head {
    int minor, status;
    long long clen;             /* -1 when absent */
    bool conn_close, conn_keepalive;
    const char *pid;
    size_t pid_len;
};

static bool name_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && !strncasecmp(p, name, n);
}

static void trim(const char **a, const char **b)
{
    while (*a < *b && (**a == ' ' || **a == '\t'))
        (*a)++;
    while (*b > *a && ((*b)[-1] == ' ' || (*b)[-1] == '\t'))
        (*b)--;
}

static long long parse_clen(const char *p, size_t n)
{
    if (n == 0 || n > 15)
        return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* Parse the status line and headers in [buf, end), where end is just past
 * the CRLFCRLF; returns NULL, or why the head is malformed. */
static const char *parse_head(const char *buf, const char *end, struct head *h)
{
    *h = (struct head){ .clen = -1 };
    if (end - buf < 16 || memcmp(buf, "HTTP/1.", 7) || !is_digit(buf[7]) || buf[8] != ' ' ||
        !is_digit(buf[9]) || !is_digit(buf[10]) || !is_digit(buf[11]) ||
        (buf[12] != ' ' && buf[12] != '\r'))
        return "malformed status line";
    h->minor = buf[7] - '0';
    h->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');

    const char *eol = memmem(buf, (size_t)(end - buf), "\r\n", 2);
    for (const char *line = eol + 2; line < end - 2; line = eol + 2) {
        eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon || colon == line)
            return "malformed header line";
        const char *v = colon + 1, *ve = eol;
        trim(&v, &ve);
        size_t nlen = (size_t)(colon - line), vlen = (size_t)(ve - v);
        if (name_is(line, nlen, "content-length")) {
            long long n = parse_clen(v, vlen);
            if (n < 0 || (h->clen >= 0 && h->clen != n))
                return "invalid or conflicting Content-Length";
            h->clen = n;
        } else if (name_is(line, nlen, "connection")) {
            for (const char *t = v; t < ve;) {
                const char *te = memchr(t, ',', (size_t)(ve - t));
                if (!te)
                    te = ve;
                const char *a = t, *b = te;
                trim(&a, &b);
                if (name_is(a, (size_t)(b - a), "close"))
                    h->conn_close = true;
                else if (name_is(a, (size_t)(b - a), "keep-alive"))
                    h->conn_keepalive = true;
                t = te + 1;
            }
        } else if (name_is(line, nlen, "x-pid")) {
            h->pid = v;
            h->pid_len = vlen;
        }
    }
    return NULL;
}

/* Remember a distinct X-Pid value, in the order first seen. */
static void note_pid(struct worker *w, const char *v, size_t n)
{
    char pid[PID_LEN];
    if (n >= PID_LEN)
        n = PID_LEN - 1;
    /* Keep the summary line and the JSON parseable whatever the server sends. */
    for (size_t i = 0; i < n; i++)
        pid[i] = v[i] > ' ' && v[i] <= '~' && v[i] != ',' && v[i] != '"' && v[i] != '\\'
                 ? v[i] : '_';
    pid[n] = '\0';
    if (!strcmp(pid, w->last_pid))
        return;
    memcpy(w->last_pid, pid, n + 1);
    pthread_mutex_lock(&pid_lock);
    int i = 0;
    while (i < npids && strcmp(pids[i], pid))
        i++;
    if (i == npids && npids < MAX_PIDS)
        memcpy(pids[npids++], pid, n + 1);
    pthread_mutex_unlock(&pid_lock);
}

/* Read one response on w->fd; *keep tells whether the connection may carry
 * the next request. */
static enum cat read_resp(struct worker *w, bool reused, int64_t deadline, bool *keep)
{
    char *buf = w->buf, *hend = NULL;
    size_t len = 0;
    ssize_t n;
    while (!hend) {
        if (len == BUF_SIZE)
            return bad("response head exceeds %d bytes", BUF_SIZE);
        n = recv_wait(w->fd, buf + len, BUF_SIZE - len, deadline);
        if (n < 0)
            return fail("recv", errno, reused && len == 0);
        if (n == 0)
            return reused && len == 0
                   ? C_RETRY : bad("EOF after %zu bytes of response head", len);
        size_t from = len > 3 ? len - 3 : 0;
        len += (size_t)n;
        hend = memmem(buf + from, len - from, "\r\n\r\n", 4);
    }
    hend += 4;

    struct head h;
    const char *why = parse_head(buf, hend, &h);
    if (why)
        return bad("%s", why);
    if (h.pid_len)
        note_pid(w, h.pid, h.pid_len);
    if (h.status != 200)
        return bad("status %d", h.status);
    /* HTTP/1.0 closes unless it opts in to keep-alive. */
    bool server_closes = h.conn_close || (h.minor == 0 && !h.conn_keepalive);
    unsigned long long have = len - (size_t)(hend - buf);

    if (h.clen < 0) {
        if (!server_closes)
            return bad("no Content-Length");
        while ((n = recv_wait(w->fd, buf, BUF_SIZE, deadline)) > 0)
            ;
        return n < 0 ? fail("recv", errno, false) : C_OK;
    }
    for (unsigned long long left = (unsigned long long)h.clen;;) {
        /* Never pipelined, so surplus bytes mean a corrupted stream. */
        if (have > left)
            return bad("%llu bytes beyond Content-Length", have - left);
        left -= have;
        if (!left)
            break;
        n = recv_wait(w->fd, buf, BUF_SIZE, deadline);
        if (n < 0)
            return fail("recv", errno, false);
        if (n == 0)
            return bad("EOF with %llu body bytes missing", left);
        have = (unsigned long long)n;
    }
    *keep = cfg.keepalive && !server_closes;
    return C_OK;
}

/* One request on the worker's connection, opening one if it has none. */
static enum cat attempt(struct worker *w)
{
    int64_t deadline = now_ns() + cfg.timeout_ns;
    bool reused = w->fd >= 0;
    enum cat c;
    if (!reused && (w->fd = open_conn(deadline, &c)) < 0)
        return c;
    bool keep = false;
    c = send_req(w->fd, deadline, reused);
    if (c == C_OK)
        c = read_resp(w, reused, deadline, &keep);
    if (!keep) {
        close(w->fd);
        w->fd = -1;
    }
    return c;
}

static enum cat request(struct worker *w)
{
    enum cat c = attempt(w);
    /* Like HTTP clients with idempotent requests: a reused connection that
     * the server closed while idle gets one retry on a fresh connection
     * (attempt() closed it, so the retry cannot itself ask for another). */
    if (c == C_RETRY) {
        w->retried++;
        c = attempt(w);
    }
    return c;
}

static void record(struct worker *w, enum cat c)
{
    int64_t t;
    w->count[c]++;
    if (c == C_OK) {
        /* Timestamp under the lock so completions are seen in time order and
         * each gap is measured between neighbours. */
        pthread_mutex_lock(&gap_lock);
        t = now_ns();
        if (t - last_ok > max_gap)
            max_gap = t - last_ok;
        last_ok = t;
        pthread_mutex_unlock(&gap_lock);
    } else {
        t = now_ns();
    }
    if (tl_n) {
        size_t i = (size_t)((t - t_start) / cfg.bucket_ns);
        if (i >= tl_n)
            i = tl_n - 1;
        atomic_fetch_add_explicit(c == C_OK ? &tl_ok[i] : &tl_err[i], 1, memory_order_relaxed);
    }
}

static bool stopping(void)
{
    return atomic_load_explicit(&stop_flag, memory_order_relaxed) || now_ns() >= t_end;
}

/* Sleep until t, or less if the run is stopped meanwhile. */
static void sleep_until(int64_t t)
{
    int64_t left = t - now_ns();
    if (left <= 0)
        return;
    struct timespec ts = ns_to_ts(left);
    struct pollfd p = { .fd = stop_fd, .events = POLLIN };
    ppoll(&p, 1, &ts, NULL);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(&start_barrier);
    int64_t slot = t_start;
    while (!stopping()) {
        if (cfg.interval_ns) {
            /* Slots at fixed multiples of the interval, so pacing does not
             * drift; after falling behind by more than one interval restart
             * from now rather than bursting to catch up. */
            int64_t now = now_ns();
            if (slot > now) {
                sleep_until(slot < t_end ? slot : t_end);
                continue;
            }
            if (now - slot > cfg.interval_ns)
                slot = now;
            slot += cfg.interval_ns;
        }
        record(w, request(w));
    }
    if (w->fd >= 0)
        close(w->fd);
    free(w->buf);
    return NULL;
}

static long parse_long(const char *opt, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        fatal("%s: expected an integer in [%ld, %ld], got '%s'", opt, min, max, s);
    return v;
}

static double parse_double(const char *opt, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* The negated test also rejects NaN. */
    if (errno || end == s || *end || !(v >= min && v <= max))
        fatal("%s: expected a number in [%g, %g], got '%s'", opt, min, max, s);
    return v;
}

static FILE *open_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fatal("%s: %s", path, strerror(errno));
    return f;
}

static void parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        { "unix", required_argument, NULL, 'u' },
        { "connections", required_argument, NULL, 'c' },
        { "duration", required_argument, NULL, 'd' },
        { "keepalive", no_argument, NULL, 'k' },
        { "path", required_argument, NULL, 'P' },
        { "timeout-ms", required_argument, NULL, 't' },
        { "rate", required_argument, NULL, 'r' },
        { "timeline", required_argument, NULL, 'T' },
        { "bucket-ms", required_argument, NULL, 'b' },
        { "json", required_argument, NULL, 'j' },
        { 0 },
    };
    const char *host = NULL, *unix_path = NULL, *path = "/";
    long port = 0, timeout_ms = 5000, bucket_ms = 100;
    double duration = 0, rate = 0;
    int opt;

    cfg.connections = 8;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'p': port = parse_long("--port", optarg, 1, 65535); break;
        case 'u': unix_path = optarg; break;
        case 'c': cfg.connections = parse_long("--connections", optarg, 1, 100000); break;
        case 'd': duration = parse_double("--duration", optarg, 1e-9, 1e6); break;
        case 'k': cfg.keepalive = true; break;
        case 'P': path = optarg; break;
        case 't': timeout_ms = parse_long("--timeout-ms", optarg, 1, 3600000); break;
        case 'r': rate = parse_double("--rate", optarg, 0, 1e9); break;
        case 'T': cfg.timeline = open_out(optarg); break;
        case 'b': bucket_ms = parse_long("--bucket-ms", optarg, 1, 3600000); break;
        case 'j': cfg.json = open_out(optarg); break;
        case ':': fatal("option %s requires a value", argv[optind - 1]);
        default: fatal("unknown or malformed option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        fatal("unexpected argument %s", argv[optind]);
    if (duration <= 0)
        fatal("--duration SECS is required");
    if (rate > 0 && rate < 0.001)
        fatal("--rate: expected 0 (unlimited) or at least 0.001");
    if (!*path || strpbrk(path, " \t\r\n\x7f"))
        fatal("--path: must be non-empty without spaces or line breaks");
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < ' ')
            fatal("--path: control characters not allowed");

    const char *host_hdr;
    bool bracket = false;
    if (unix_path) {
        if (host || port)
            fatal("--unix excludes --host and --port");
        struct sockaddr_un *sun = (struct sockaddr_un *)&cfg.addr;
        size_t n = strlen(unix_path);
        if (n == 0 || n >= sizeof sun->sun_path)
            fatal("--unix: path empty or longer than %zu bytes", sizeof sun->sun_path - 1);
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, unix_path, n);
        if (unix_path[0] == '@') {
            /* Abstract name: NUL first, length given by addrlen, no terminator. */
            sun->sun_path[0] = '\0';
            cfg.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        } else {
            cfg.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        }
        host_hdr = "localhost";
    } else {
        if (!port)
            fatal("--port or --unix is required");
        if (!host)
            host = "127.0.0.1";
        struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                                  .ai_socktype = SOCK_STREAM }, *ai;
        char portstr[8];
        snprintf(portstr, sizeof portstr, "%ld", port);
        if (getaddrinfo(host, portstr, &hints, &ai))
            fatal("--host: expected a numeric IPv4 or IPv6 address, got '%s'", host);
        memcpy(&cfg.addr, ai->ai_addr, ai->ai_addrlen);
        cfg.addrlen = ai->ai_addrlen;
        freeaddrinfo(ai);
        host_hdr = host;
        bracket = strchr(host, ':') != NULL;    /* IPv6 literals need [] in Host */
    }

    int len = asprintf(&cfg.req, "GET %s HTTP/1.1\r\nHost: %s%s%s\r\nConnection: %s\r\n\r\n",
                       path, bracket ? "[" : "", host_hdr, bracket ? "]" : "",
                       cfg.keepalive ? "keep-alive" : "close");
    if (len < 0)
        fatal("out of memory");
    cfg.req_len = (size_t)len;
    cfg.duration_ns = (int64_t)(duration * NS_PER_SEC);
    cfg.timeout_ns = timeout_ms * NS_PER_MS;
    cfg.interval_ns = rate > 0 ? (int64_t)(NS_PER_SEC / rate) : 0;
    if (rate > 0 && cfg.interval_ns < 1)
        cfg.interval_ns = 1;
    cfg.bucket_ns = bucket_ms * NS_PER_MS;

    if (cfg.timeline) {
        /* Room for the drain after the run: a request and its one retry. */
        tl_n = (size_t)((cfg.duration_ns + 2 * cfg.timeout_ns) / cfg.bucket_ns) + 2;
        if (tl_n > MAX_BUCKETS)
            fatal("--bucket-ms too small for this --duration (over %d buckets)", MAX_BUCKETS);
        tl_ok = calloc(tl_n, sizeof *tl_ok);
        tl_err = calloc(tl_n, sizeof *tl_err);
        if (!tl_ok || !tl_err)
            fatal("out of memory");
    }
}

static void finish_file(FILE *f, const char *what)
{
    if (ferror(f) | fclose(f))
        fatal("writing %s failed", what);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);

    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    /* Blocked before the workers exist, so only main's sigtimedwait sees them. */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    stop_fd = eventfd(0, EFD_CLOEXEC);
    if (stop_fd < 0)
        fatal("eventfd: %s", strerror(errno));

    size_t nw = (size_t)cfg.connections;
    struct worker *ws = calloc(nw, sizeof *ws);
    if (!ws)
        fatal("out of memory");
    pthread_barrier_init(&start_barrier, NULL, (unsigned)nw + 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, STACK_SIZE);
    for (size_t i = 0; i < nw; i++) {
        ws[i].fd = -1;
        ws[i].buf = malloc(BUF_SIZE);
        if (!ws[i].buf)
            fatal("out of memory");
        int err = pthread_create(&ws[i].tid, &attr, worker_main, &ws[i]);
        if (err)
            fatal("pthread_create: %s", strerror(err));
    }
    pthread_attr_destroy(&attr);

    /* Start the clock only once every worker exists; the barrier publishes it. */
    t_start = now_ns();
    t_end = t_start + cfg.duration_ns;
    last_ok = t_start;
    pthread_barrier_wait(&start_barrier);

    for (int64_t left; (left = t_end - now_ns()) > 0;) {
        struct timespec ts = ns_to_ts(left);
        if (sigtimedwait(&sigs, NULL, &ts) > 0)
            break;
    }
    atomic_store(&stop_flag, true);
    if (eventfd_write(stop_fd, 1) < 0)
        fatal("eventfd_write: %s", strerror(errno));
    for (size_t i = 0; i < nw; i++)
        pthread_join(ws[i].tid, NULL);
    int64_t t_fin = now_ns();

    unsigned long long tot[NCAT] = { 0 }, retried = 0, errors = 0;
    for (size_t i = 0; i < nw; i++) {
        for (int c = 0; c < NCAT; c++)
            tot[c] += ws[i].count[c];
        retried += ws[i].retried;
    }
    free(ws);
    for (int c = C_OK + 1; c < NCAT; c++)
        errors += tot[c];
    int64_t gap = t_fin - last_ok > max_gap ? t_fin - last_ok : max_gap;
    long long gap_ms = gap / NS_PER_MS;
    double dur = (double)(t_fin - t_start) / NS_PER_SEC;
    double rps = tot[C_OK] / dur;

    for (int c = 0; c < NCAT; c++)
        printf("%s=%llu ", cat_names[c], tot[c]);
    printf("retried=%llu errors=%llu max_gap_ms=%lld duration_s=%.3f rps=%.1f pids=",
           retried, errors, gap_ms, dur, rps);
    for (int i = 0; i < npids; i++)
        printf("%s%s", i ? "," : "", pids[i]);
    putchar('\n');
    fflush(stdout);

    if (cfg.json) {
        fputc('{', cfg.json);
        for (int c = 0; c < NCAT; c++)
            fprintf(cfg.json, "\"%s\":%llu,", cat_names[c], tot[c]);
        fprintf(cfg.json, "\"retried\":%llu,\"errors\":%llu,\"max_gap_ms\":%lld,"
                "\"duration_s\":%.3f,\"rps\":%.1f,\"pids\":[",
                retried, errors, gap_ms, dur, rps);
        for (int i = 0; i < npids; i++)
            fprintf(cfg.json, "%s\"%s\"", i ? "," : "", pids[i]);
        fputs("]}\n", cfg.json);
        finish_file(cfg.json, "--json");
    }
    if (cfg.timeline) {
        size_t last = (size_t)((t_fin - t_start) / cfg.bucket_ns);
        if (last >= tl_n)
            last = tl_n - 1;
        fputs("t_ms,ok,errors\n", cfg.timeline);
        for (size_t i = 0; i <= last; i++)
            fprintf(cfg.timeline, "%lld,%lu,%lu\n", (long long)i * (cfg.bucket_ns / NS_PER_MS),
                    tl_ok[i], tl_err[i]);
        finish_file(cfg.timeline, "--timeline");
    }
    return errors ? 1 : 0;
}
