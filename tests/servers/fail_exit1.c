/* Replacement binary that fails at once: exit status 1. */
#define _GNU_SOURCE
#include "common.h"

int main(int argc, char **argv)
{
    struct srv_opts o;
    srv_init(&o, argc, argv, "fail_exit1", SRV_STUB, 1);
    srv_log("refusing to start (exit 1)");
    return 1;
}
