/*
 * Benchmark tooling: stamps each line read on stdin with the CLOCK_MONOTONIC
 * time at which it arrived and copies it to stdout as "SECONDS.NANOS LINE".
 *
 * The benchmark pipes servers' stderr (the shim's log lines) through this
 * small process, run at a high priority, rather than stamping the lines in a
 * Python thread, which may wait for the interpreter lock or a loaded CPU.
 * Exits at end of input.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void stamp_now(char *buf, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(buf, cap, "%lld.%09ld ", (long long)ts.tv_sec, ts.tv_nsec);
}

int main(void)
{
    static char in[65536];
    char stamp[40], line_stamp[40]; /* this read's time; when the pending line began */
    size_t have = 0;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, in + have, sizeof in - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        stamp_now(stamp, sizeof stamp);
        if (!have)
            memcpy(line_stamp, stamp, sizeof stamp);
        have += (size_t)n;
        size_t start = 0;
        for (;;) {
            char *nl = memchr(in + start, '\n', have - start);
            /* a line that fills the whole buffer goes out as it is */
            size_t end = nl ? (size_t)(nl - in) + 1 : (start == 0 && have == sizeof in ? have : 0);
            if (!end)
                break;
            if (write_all(line_stamp, strlen(line_stamp)) < 0 ||
                write_all(in + start, end - start) < 0 || (!nl && write_all("\n", 1) < 0))
                return 1;
            memcpy(line_stamp, stamp, sizeof stamp); /* the next line began in this read */
            start = end;
        }
        memmove(in, in + start, have - start);
        have -= start;
    }
    if (have && (write_all(line_stamp, strlen(line_stamp)) < 0 || write_all(in, have) < 0 ||
                 write_all("\n", 1) < 0))
        return 1;
    return 0;
}
