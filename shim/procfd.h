/* The process's open fds as /proc lists them: the one view that also shows
 * fds made behind the hooks. No malloc: it runs in fork children (closefrom)
 * and in the app's own waits (a drain step). */
#ifndef HR_PROCFD_H
#define HR_PROCFD_H

#pragma GCC visibility push(hidden)

/* Calls each(ctx, dir, fd, name) for every fd /proc/thread-self/fd (or,
 * before Linux 3.17, /proc/self/fd) lists but the listing's own, dir;
 * name is fd's entry in it, for readlinkat(). Returns the sum of what each
 * returned, or -1 when the listing cannot be opened or read. */
int hr_procfd_each(int (*each)(void *ctx, int dir, int fd, const char *name), void *ctx);

#pragma GCC visibility pop

#endif
