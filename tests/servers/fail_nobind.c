/* Replacement binary that starts but never binds; it waits until a signal
 * with the default disposition ends it. */
#define _GNU_SOURCE
#include "common.h"

#include <signal.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "fail_nobind", SRV_STUB, 1);
    /* an inherited SIG_IGN or blocked mask would make SIGTERM ineffective */
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &term, NULL);
    signal(SIGTERM, SIG_DFL);
    srv_log("pid %d running without a listener", (int)getpid());
    for (;;)
        pause();
}
