/* Blocking server whose first connection is served through stdio: fdopen()
 * and fclose(), which closes the fd inside glibc, behind the hooks. The
 * same fd number is then reused, again behind the hooks
 * (syscall(SYS_socket)), for a connection to an upstream at
 * --upstream PORT. The server answers the upstream's "ping" with "pong",
 * and logs "upstream: end of input" if reading it ever ends although the
 * upstream did not close. */
#define _GNU_SOURCE
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *serve_upstream(void *arg)
{
    int fd = (int)(long)arg;
    char buf[64];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0) {
            srv_log("upstream: end of input");
            break;
        }
        if (n < 0) {
            srv_log("upstream: read failed");
            break;
        }
        if (write(fd, "pong\n", 5) != 5)
            break;
    }
    close(fd);
    return NULL;
}

/* Serves one request through stdio, then closes it with fclose(). */
static void serve_with_stdio(int fd)
{
    FILE *f = fdopen(fd, "r+");
    if (!f)
        srv_die("fdopen");
    char line[1024];
    while (fgets(line, sizeof line, f) && strcmp(line, "\r\n") != 0)
        ;
    fputs("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n", f);
    fclose(f);
}

int main(int argc, char **argv)
{
    const char *upstream = srv_take_option(&argc, argv, "--upstream");
    int upstream_port = upstream ? atoi(upstream) : 0;
    if (upstream_port <= 0) {
        srv_log("--upstream PORT is required");
        exit(2);
    }
    struct srv_opts o;
    srv_init(&o, argc, argv, "fdreuse", SRV_ONE_LISTENER, 1);
    int lfd = srv_listen(&o, 0);
    srv_catch_sigterm();

    int first = srv_accept(lfd, 0);
    if (first < 0)
        exit(0);
    serve_with_stdio(first);
    int up = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (up != first) {
        srv_log("upstream socket got fd %d, not the freed fd %d", up, first);
        exit(1);
    }
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)upstream_port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(up, (struct sockaddr *)&sin, sizeof sin) < 0)
        srv_die("connect upstream");
    srv_log("upstream connected on fd %d", up);
    if (srv_spawn_thread(serve_upstream, (void *)(long)up) != 0)
        srv_die("thread");

    srv_accept_threads(lfd);
    close(lfd);
    return 0;
}
