/* Replacement binary that creates a socket and dies of SIGSEGV before bind(). */
#define _GNU_SOURCE
#include "common.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "fail_crash", SRV_STUB, 1);
    /* no core files in test directories */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    /* an inherited SIG_IGN or blocked mask would make raise() return */
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    sigprocmask(SIG_UNBLOCK, &segv, NULL);
    signal(SIGSEGV, SIG_DFL);
    if (socket(AF_INET, SOCK_STREAM, 0) < 0)
        srv_die("socket");
    srv_log("crashing before bind");
    raise(SIGSEGV);
    return 1;
}
