/* Shared helpers for the unit tests: stderr capture, scratch directories,
 * and a forked child for tests that must own specific fd numbers. */
#ifndef HR_UNIT_HELPERS_H
#define HR_UNIT_HELPERS_H

#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* ---- stderr capture ---- */

struct ut_capture {
	int saved; /* the original fd 2 */
	int file;  /* where fd 2 points meanwhile */
};

/* Points fd 2 at an anonymous file until ut_capture_end(). */
void ut_capture_begin(struct ut_capture *c);
/* Restores fd 2 and returns what was written (malloc'd, NUL-terminated). */
char *ut_capture_end(struct ut_capture *c);

/* ---- bounded waits ---- */

/* Polls cond every millisecond for up to ms; returns its last value. */
#define WAIT_UNTIL(cond, ms)                                              \
	({                                                                \
		int waited_ = 0;                                          \
		while (!(cond) && waited_++ < (ms))                       \
			poll(NULL, 0, 1);                                 \
		(cond);                                                   \
	})

/* ---- scratch directories ---- */

/* Creates a fresh directory under /tmp; returns a malloc'd path. */
char *ut_mkdtemp(void);
/* Removes a directory tree (best effort; never follows symlinks). */
void ut_rmtree(const char *path);
/* Writes text to path (created or truncated); returns 0 or -1. */
int ut_write_file(const char *path, const char *text);
/* Reads up to size-1 bytes of path into buf; returns the length or -1. */
ssize_t ut_read_file(const char *path, char *buf, size_t size);

/* ---- sockets ---- */

/* A listening TCP socket on 127.0.0.1 (family AF_INET) or ::1 (AF_INET6)
 * with a kernel-chosen port; its address is stored in addr and len. */
int ut_tcp_listener(int family, struct sockaddr_storage *addr, socklen_t *len);
/* A listening AF_UNIX stream socket bound to path. */
int ut_unix_listener(const char *path, struct sockaddr_storage *addr, socklen_t *len);
/* An fd number that is certainly not open right now. */
int ut_closed_fd(void);

/* ---- generation ---- */

/* hr_gen_init() on a region made as the keeper makes it (a memfd), so that
 * the hooks' phase view can go live (hr_gen_view_live); returns its result. */
int ut_gen_init_region(void);

/* ---- forked child ----
 * Criterion's worker process keeps its own descriptors at 3 and up, and a
 * helper thread uses them. Tests that must place listeners at fds 3.. run
 * the body in a forked child (which has no other threads) and report the
 * first failed check back through shared memory. */

struct ut_child {
	int line;
	char what[512];
};

typedef void (*ut_child_fn)(struct ut_child *ch, void *arg);

/* Runs fn in a child; returns 0 when it finished without a failed check,
 * otherwise -1 with a description of the failure in out (always filled). */
int ut_run_child(ut_child_fn fn, void *arg, char *out, size_t outlen);

void ut_child_fail(struct ut_child *ch, int line, const char *expr, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));

/* Child-side assertion: records the first failure and exits the child.
 * The message (a printf format and its arguments) is required. */
#define UT_CHECK(ch, cond, ...)                                          \
	do {                                                             \
		if (!(cond))                                             \
			ut_child_fail((ch), __LINE__, #cond, __VA_ARGS__); \
	} while (0)

#endif
