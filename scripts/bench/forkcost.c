/*
 * Benchmark tooling: what a plain fork()+exec() costs a process holding N MiB
 * of touched memory, for contrast with hotrestart's vfork-style spawn.
 *
 *   forkcost --mib N [--iterations K] [--mode fork|vfork|both]
 *
 * Allocates N MiB with malloc() and writes one byte per page (as the test
 * servers' --touch-mib does), then K times: creates a CLOEXEC pipe, takes the
 * time, forks (or vforks) a child that execs /bin/true, and takes the time
 * again when the parent reads end-of-file on the pipe, i.e. when the exec
 * closed the child's copy of the write end. Prints "fork X" or "vfork X"
 * (milliseconds) per spawn; --mode both does a fork and a vfork per
 * iteration, so the memory is touched once for both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *volatile mem;

/* Starts /bin/true; a function of its own so that nothing live in main()
 * is shared with a vfork child. */
static __attribute__((noinline)) pid_t spawn_true(int use_vfork)
{
    static char *const args[] = { "/bin/true", NULL };
    pid_t pid = use_vfork ? vfork() : fork();
    if (pid == 0) {
        execv(args[0], args);
        _exit(127);
    }
    return pid;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "mib", required_argument, NULL, 'm' },
        { "iterations", required_argument, NULL, 'i' },
        { "mode", required_argument, NULL, 'M' },
        { 0 },
    };
    long mib = -1, iters = 5;
    int modes = 1, opt; /* bit 0: fork, bit 1: vfork */
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'm': mib = atol(optarg); break;
        case 'i': iters = atol(optarg); break;
        case 'M':
            if (!strcmp(optarg, "fork"))
                modes = 1;
            else if (!strcmp(optarg, "vfork"))
                modes = 2;
            else if (!strcmp(optarg, "both"))
                modes = 3;
            else
                goto usage;
            break;
        default:
            goto usage;
        }
    }
    if (mib < 0 || iters < 1)
        goto usage;

    size_t len = (size_t)mib << 20, page = (size_t)sysconf(_SC_PAGESIZE);
    if (len) {
        char *p = malloc(len);
        if (!p) {
            perror("forkcost: malloc");
            return 1;
        }
        for (size_t i = 0; i < len; i += page)
            p[i] = 1;
        mem = p;
    }
    for (long k = 0; k < 2 * iters; k++) {
        int use_vfork = (int)(k & 1);
        if (!(modes & (1 << use_vfork)))
            continue;
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0) {
            perror("forkcost: pipe2");
            return 1;
        }
        double t0 = now_ms();
        pid_t pid = spawn_true(use_vfork);
        if (pid < 0) {
            perror("forkcost: fork");
            return 1;
        }
        close(pfd[1]);
        char c;
        while (read(pfd[0], &c, 1) < 0 && errno == EINTR)
            ;
        double t1 = now_ms();
        close(pfd[0]);
        int st;
        waitpid(pid, &st, 0);
        printf("%s %.3f\n", use_vfork ? "vfork" : "fork", t1 - t0);
    }
    return 0;
usage:
    fprintf(stderr, "usage: forkcost --mib N [--iterations K] [--mode fork|vfork|both]\n");
    return 2;
}
