/*
 * canary: a process outside the service that the soak (tests/integration/
 * soak.py) forces onto a PID the service used a moment ago. It catches every
 * catchable signal and appends one line per delivery to LOG:
 *   signal=N code=C from=PID uid=U
 * so a library or keeper that signals a PID it has not proven is its own
 * leaves a trace. SIGKILL and SIGSTOP cannot be caught: the soak detects
 * them by the canary dying or stopping.
 *
 *   canary READY_FD LOG
 * Writes "ready PID\n" on READY_FD once every handler is installed, closes
 * it, then waits for signals forever.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int log_fd = -1;

/* Async-signal-safe decimal formatting into buf; returns the end. */
static char *put_num(char *p, long long v)
{
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *p++ = '-';
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *put_str(char *p, const char *s)
{
    while (*s)
        *p++ = *s++;
    return p;
}

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    int saved = errno;
    char line[128], *p = line;
    p = put_str(p, "signal=");
    p = put_num(p, sig);
    p = put_str(p, " code=");
    p = put_num(p, si->si_code);
    p = put_str(p, " from=");
    p = put_num(p, si->si_pid);
    p = put_str(p, " uid=");
    p = put_num(p, si->si_uid);
    *p++ = '\n';
    /* One write of an O_APPEND file: lines never interleave. */
    ssize_t ignored = write(log_fd, line, (size_t)(p - line));
    (void)ignored;
    errno = saved;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: canary READY_FD LOG\n");
        return 2;
    }
    int ready_fd = atoi(argv[1]);
    log_fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        fprintf(stderr, "canary: open %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int caught = 0;
    for (int sig = 1; sig <= SIGRTMAX; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        /* glibc refuses the two real-time signals it keeps for itself
         * (EINVAL): they stay at their default action, termination, so a
         * canary that gets one is seen as dead. */
        if (sigaction(sig, &sa, NULL) == 0)
            caught++;
    }
    char msg[64];
    int n = snprintf(msg, sizeof msg, "ready %d %d\n", (int)getpid(), caught);
    if (write(ready_fd, msg, (size_t)n) != n)
        return 1;
    close(ready_fd);
    for (;;)
        pause();
}
