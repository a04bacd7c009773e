/* Shared pieces of the test servers: options, listeners, a minimal HTTP/1.1
 * connection state machine and the loops more than one server uses.
 * The servers know nothing about hotrestart; they model ordinary servers. */
#ifndef TEST_SERVERS_COMMON_H
#define TEST_SERVERS_COMMON_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Which listener options a server requires. */
enum srv_mode {
    SRV_ONE_LISTENER, /* --port or --unix */
    SRV_UNIX_ONLY,    /* --unix */
    SRV_DUAL,         /* --port and --port6 */
    SRV_STUB,         /* failure stand-ins: flags are accepted and ignored */
};

struct srv_opts {
    const char *host, *host6, *unix_path, *pidfile;
    int port, port6; /* 0 = not given */
    int workers;
    long touch_mib;
    bool app_signals;
};

/* --eintr-fatal: the epoll loop dies on EINTR, as apps that install no
 * signal handler may (they never expect one). */
extern bool srv_eintr_fatal;

/* Set by the SIGTERM handlers; loops check it whenever a call fails with EINTR. */
extern volatile sig_atomic_t srv_stop;

/* Parses the command line (exit 2 on errors) and, except for stubs, ignores
 * SIGPIPE and performs --touch-mib. */
void srv_init(struct srv_opts *o, int argc, char **argv, const char *name,
              enum srv_mode mode, int default_workers);
/* Takes "NAME VALUE" out of argv before srv_init() sees it (an option of
 * one server only); returns VALUE, or NULL when NAME is not there. */
const char *srv_take_option(int *argc, char **argv, const char *name);

void srv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs the message with strerror(errno) appended and exits 1. */
void srv_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void srv_log_exit(pid_t pid, int status);

/* Listeners; sock_flags is or-ed into socket()'s type (SOCK_NONBLOCK...). */
int srv_listen_tcp(const char *host, int port, int sock_flags);
int srv_listen_unix(const char *path, int sock_flags, bool unlink_first);
int srv_listen(const struct srv_opts *o, int sock_flags);
bool srv_set_nonblock(int fd);

/* Accepts one connection (accept4() when flags != 0, else accept()).
 * Returns -1 when none was accepted: errno EAGAIN on an empty non-blocking
 * listener, EINTR once srv_stop is set, otherwise a logged resource shortage. */
int srv_accept(int lfd, int flags);

/* SIGTERM handler (no SA_RESTART) that sets srv_stop. */
void srv_catch_sigterm(void);
/* fork() for a worker (dies if it fails): the child gets the SIGTERM
 * handler, SIGCHLD's default and every signal unblocked (a SIGTERM that
 * arrived since the fork is delivered then and sets srv_stop). */
pid_t srv_fork_worker(void);
/* With --app-signals: the application's own SIGHUP/SIGUSR2/SIGTERM handlers. */
void srv_app_signals(const struct srv_opts *o);

int64_t srv_now_ms(void);

/* Starts a detached thread with all signals blocked, so signals reach the
 * main thread. Returns 0 or an error number. */
int srv_spawn_thread(void *(*fn)(void *), void *arg);

#define CONN_IN_MAX 16384

enum conn_status { CONN_DONE, CONN_WANT_READ, CONN_WANT_WRITE, CONN_WAIT_TIMER };

struct conn {
    int fd;
    enum conn_status wait; /* last result of conn_drive(); starts as CONN_WANT_READ */
    bool eof, closing, slow_keep_alive;
    bool answered; /* served a request already: a keep-alive connection */
    int64_t slow_until; /* srv_now_ms() when the held /slow answer is due; 0 = none */
    const char *body;   /* out-of-line body (/big), sent after out[] */
    size_t in_len, out_len, body_len, sent;
    char out[512];
    char in[CONN_IN_MAX];
};

/* Reads, answers and writes as far as possible without blocking.
 * CONN_DONE means the connection must be closed. */
enum conn_status conn_drive(struct conn *c);

static inline bool conn_due(const struct conn *c, int64_t now)
{
    return c->slow_until && c->slow_until <= now;
}

/* Serves a blocking connection until the peer closes it, then closes fd. */
void srv_serve_blocking(int fd);
/* Blocking accept loop with a detached thread per connection; returns on stop. */
void srv_accept_threads(int lfd);

/* Connections of an event loop, indexed by fd. */
struct conn_table {
    struct conn **by_fd;
    int cap;
};

/* Returns the new connection, or NULL after closing fd. */
struct conn *ctab_open(struct conn_table *t, int fd);
struct conn *ctab_get(const struct conn_table *t, int fd);
void ctab_close(struct conn_table *t, struct conn *c);
void ctab_close_all(struct conn_table *t);
/* Milliseconds until the earliest /slow deadline, -1 when none. */
int ctab_timeout(const struct conn_table *t);

/* Level-triggered epoll loop over non-blocking listeners and their
 * connections, one accept() per listener event; returns once srv_stop is set,
 * leaving the connections in t. */
void srv_epoll_lt_run(const int *lfds, int nl, struct conn_table *t);

#endif
