#include "libc.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct hr_libc hr_real;
static pthread_once_t hr_libc_once = PTHREAD_ONCE_INIT;

static void *hr_next_symbol(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

void *(*hr_libc_lookup)(const char *name) = hr_next_symbol;

/* Report with write(2) only: stdio may not be usable this early. */
static void hr_libc_fail(const char *name, const char *why)
{
	const char *parts[] = { "hotrestart: cannot bind libc symbol ", name, ": ", why, "\n" };
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		ssize_t ignored = write(2, parts[i], strlen(parts[i]));
		(void)ignored;
	}
}

/* Ends the process from inside the pthread_once: through libc's own _exit,
 * never our _exit() hook, which would wait for this very once. */
static void hr_libc_die(void)
{
	if (hr_real._exit)
		hr_real._exit(127);
	abort();
}

/* Optional symbols (close_range, closefrom, epoll_pwait2, statx) may be missing in
 * older glibc; mandatory ones missing means we cannot forward calls at all. */
static void *hr_bind(const char *name, int mandatory)
{
	void *p = hr_libc_lookup(name);
	Dl_info found, self;
	if (p && dladdr(p, &found) && dladdr((void *)hr_libc_bind, &self) &&
	    found.dli_fbase == self.dli_fbase) {
		hr_libc_fail(name, "RTLD_NEXT resolved to the shim itself");
		hr_libc_die();
	}
	if (!p && mandatory) {
		hr_libc_fail(name, "missing");
		hr_libc_die();
	}
	return p;
}

#define BIND(field, mandatory) (*(void **)&hr_real.field = hr_bind(#field, (mandatory)))

static void hr_libc_bind_all(void)
{
	BIND(_exit, 1); /* first: the way out when another one is missing */
	BIND(socket, 1);
	BIND(bind, 1);
	BIND(listen, 1);
	BIND(accept, 1);
	BIND(accept4, 1);
	BIND(close, 1);
	BIND(read, 1);
	BIND(readv, 1);
	BIND(recv, 1);
	BIND(recvfrom, 1);
	BIND(recvmsg, 1);
	BIND(__read_chk, 1);
	BIND(__recv_chk, 1);
	BIND(__recvfrom_chk, 1);
	BIND(write, 1);
	BIND(writev, 1);
	BIND(send, 1);
	BIND(sendto, 1);
	BIND(sendmsg, 1);
	BIND(sendfile, 1);
	BIND(sendfile64, 1);
	BIND(close_range, 0);
	BIND(closefrom, 0);
	BIND(shutdown, 1);
	BIND(dup, 1);
	BIND(dup2, 1);
	BIND(dup3, 1);
	BIND(fcntl, 1);
	BIND(ioctl, 1);
	BIND(epoll_create, 1);
	BIND(epoll_create1, 1);
	BIND(epoll_ctl, 1);
	BIND(epoll_wait, 1);
	BIND(epoll_pwait, 1);
	BIND(epoll_pwait2, 0);
	BIND(poll, 1);
	BIND(ppoll, 1);
	BIND(select, 1);
	BIND(pselect, 1);
	BIND(sigaction, 1);
	BIND(unlink, 1);
	BIND(unlinkat, 1);
	BIND(remove, 1);
	BIND(syscall, 1);
	BIND(fork, 1);
	BIND(waitpid, 1);
	BIND(wait4, 1);
	BIND(waitid, 1);
	BIND(openat, 1);
	BIND(fopen, 1);
	BIND(fopen64, 1);
	BIND(opendir, 1);
	BIND(fstatat, 1);
	BIND(fstatat64, 1);
	BIND(statx, 0);
	BIND(faccessat, 1);
	BIND(kill, 1);
	BIND(sigqueue, 1);
	BIND(flock, 1);
	BIND(lockf, 1);
}

_Atomic int hr_libc_bound;

void hr_libc_bind(void)
{
	pthread_once(&hr_libc_once, hr_libc_bind_all);
	atomic_store_explicit(&hr_libc_bound, 1, memory_order_release);
}
