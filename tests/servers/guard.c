/* A server that refuses to run twice, the way daemons guard against it:
 *   --guard kill      reads --pidfile, exits if kill(pid, 0) says it lives
 *   --guard proc      the same through stat("/proc/PID")
 *   --guard excl      creates --pidfile with O_CREAT|O_EXCL
 *   --guard fcntl     F_SETLK write lock on --pidfile (also ofd, flock, lockf)
 *   --guard datalock  F_SETLK on --data PATH: a lock on data, never shared
 * then writes its PID to --pidfile, serves (level-triggered epoll) and
 * unlinks --pidfile when it stops, as daemons do. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static pid_t read_pid(const char *path)
{
    char buf[32] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? (pid_t)atoi(buf) : 0;
}

static void write_pid(int fd)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        srv_die("write pid file");
}

/* Takes the lock the mode names on fd; returns false when it is busy. */
static bool lock_fd(const char *mode, int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (strcmp(mode, "flock") == 0)
        return flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (strcmp(mode, "lockf") == 0)
        return lockf(fd, F_TLOCK, 0) == 0;
    return fcntl(fd, strcmp(mode, "ofd") == 0 ? F_OFD_SETLK : F_SETLK, &fl) == 0;
}

/* Runs the guard; exits 1 with the daemon's own message when it trips. */
static void guard(const char *mode, const char *pidfile, const char *data)
{
    if (strcmp(mode, "datalock") == 0) {
        int fd = open(data, O_RDWR | O_CREAT, 0644);
        if (fd < 0 || !lock_fd("fcntl", fd))
            srv_die("cannot lock data file %s", data);
        /* fd stays open: the lock lives as long as the process */
    }
    if (strcmp(mode, "kill") == 0 || strcmp(mode, "proc") == 0) {
        pid_t pid = read_pid(pidfile);
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/%d", (int)pid);
        struct stat st;
        if (pid > 0 && (strcmp(mode, "kill") == 0 ? kill(pid, 0) == 0 : stat(proc, &st) == 0)) {
            srv_log("already running (pid %d)", (int)pid);
            exit(1);
        }
    }
    int fd;
    if (strcmp(mode, "excl") == 0) {
        fd = open(pidfile, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0)
            srv_die("open %s", pidfile);
    } else {
        fd = open(pidfile, O_RDWR | O_CREAT, 0644);
        if (fd < 0)
            srv_die("open %s", pidfile);
        bool locking = strcmp(mode, "fcntl") == 0 || strcmp(mode, "ofd") == 0 ||
                       strcmp(mode, "flock") == 0 || strcmp(mode, "lockf") == 0;
        if (locking && !lock_fd(mode, fd)) {
            srv_log("already running: %s is locked (pid %d)", pidfile, (int)read_pid(pidfile));
            exit(1);
        }
    }
    write_pid(fd);
    /* a lock on the pid file lives as long as its fd */
}

int main(int argc, char **argv)
{
    const char *mode = NULL, *data = NULL;
    int kept = 1;
    /* Our own options; the rest go to srv_init. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--guard") == 0 && i + 1 < argc)
            mode = argv[++i];
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else
            argv[kept++] = argv[i];
    }
    argv[kept] = NULL;
    struct srv_opts o;
    srv_init(&o, kept, argv, "guard", SRV_ONE_LISTENER, 1);
    if (!mode || !o.pidfile || (strcmp(mode, "datalock") == 0 && !data)) {
        srv_log("usage: guard --guard kill|proc|excl|fcntl|ofd|flock|lockf|datalock "
                "--pidfile PATH [--data PATH] --port N");
        return 2;
    }
    guard(mode, o.pidfile, data);
    int lfd = srv_listen(&o, 0);
    if (!srv_set_nonblock(lfd))
        srv_die("O_NONBLOCK");
    srv_catch_sigterm(); /* so the pid file is unlinked at the end */
    srv_app_signals(&o);

    struct conn_table t = {0};
    srv_epoll_lt_run(&lfd, 1, &t);
    ctab_close_all(&t);
    close(lfd);
    unlink(o.pidfile);
    return 0;
}
