/* The real libc functions behind our hooks, bound once with dlsym(RTLD_NEXT). */
#ifndef HR_LIBC_H
#define HR_LIBC_H

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>

/* Each shim header declares its names hidden: the hooks then reach the
 * shim's data directly, not with an extra load through the GOT. */
#pragma GCC visibility push(hidden)

struct hr_libc {
	int (*socket)(int, int, int);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*close)(int);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*__read_chk)(int, void *, size_t, size_t);
	ssize_t (*__recv_chk)(int, void *, size_t, size_t, int);
	ssize_t (*__recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	ssize_t (*sendfile64)(int, int, off_t *, size_t);
	int (*close_range)(unsigned int, unsigned int, int);
	void (*closefrom)(int);
	int (*shutdown)(int, int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*ioctl)(int, unsigned long, ...);
	int (*epoll_create)(int);
	int (*epoll_create1)(int);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	int (*unlink)(const char *);
	int (*unlinkat)(int, const char *, int);
	int (*remove)(const char *);
	long (*syscall)(long, ...);
	pid_t (*fork)(void);
	pid_t (*waitpid)(pid_t, int *, int);
	pid_t (*wait4)(pid_t, int *, int, struct rusage *);
	int (*waitid)(idtype_t, id_t, siginfo_t *, int);
	void (*_exit)(int) __attribute__((noreturn));
	/* Behind the guards (guards.h). */
	int (*openat)(int, const char *, int, ...);
	FILE *(*fopen)(const char *, const char *);
	FILE *(*fopen64)(const char *, const char *);
	DIR *(*opendir)(const char *);
	int (*fstatat)(int, const char *, struct stat *, int);
	int (*fstatat64)(int, const char *, struct stat64 *, int);
	int (*statx)(int, const char *, int, unsigned int, struct statx *);
	int (*faccessat)(int, const char *, int, int);
	int (*kill)(pid_t, int);
	int (*sigqueue)(pid_t, int, const union sigval);
	int (*flock)(int, int);
	int (*lockf)(int, int, off_t);
};

/* Filled on first use, from any thread, before or after the constructor.
 * A mandatory symbol that cannot be bound prints one line and ends the
 * process with status 127. */
extern struct hr_libc hr_real;
void hr_libc_bind(void);

/* Set (release) once every entry of hr_real is bound. */
extern _Atomic int hr_libc_bound;

/* At the top of every hook. The constructor binds, so after it this is one
 * load and a branch; a hook that runs earlier (another library's
 * constructor, any thread) takes the slow path. */
static inline void hr_libc_init(void)
{
	if (__builtin_expect(!atomic_load_explicit(&hr_libc_bound, memory_order_acquire), 0))
		hr_libc_bind();
}

/* Where the symbols come from: dlsym(RTLD_NEXT). Replaced only by unit
 * tests, to make a lookup fail. */
extern void *(*hr_libc_lookup)(const char *name);

#pragma GCC visibility pop

#endif
