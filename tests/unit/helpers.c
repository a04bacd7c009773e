#include "helpers.h"

#include "gen.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- stderr capture ---- */

void ut_capture_begin(struct ut_capture *c)
{
	fflush(stderr);
	/* High fd numbers: tests that arrange fds 3.. must not see these. */
	int mem = memfd_create("ut-stderr", MFD_CLOEXEC);
	c->file = mem >= 0 ? fcntl(mem, F_DUPFD_CLOEXEC, 900) : -1;
	if (mem >= 0)
		close(mem);
	c->saved = fcntl(2, F_DUPFD_CLOEXEC, 900);
	if (c->file >= 0 && c->saved >= 0)
		dup2(c->file, 2);
}

char *ut_capture_end(struct ut_capture *c)
{
	size_t cap = 4096, len = 0;
	char *text = calloc(1, cap);
	fflush(stderr);
	if (c->saved >= 0) {
		dup2(c->saved, 2);
		close(c->saved);
	}
	if (c->file < 0 || !text)
		return text;
	lseek(c->file, 0, SEEK_SET);
	for (;;) {
		if (len + 1 >= cap) {
			char *bigger = realloc(text, cap * 2);
			if (!bigger)
				break;
			text = bigger;
			cap *= 2;
		}
		ssize_t n = read(c->file, text + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	text[len] = '\0';
	close(c->file);
	return text;
}

/* ---- scratch directories ---- */

char *ut_mkdtemp(void)
{
	char tmpl[] = "/tmp/hr-unit-XXXXXX";
	if (!mkdtemp(tmpl))
		return NULL;
	return strdup(tmpl);
}

static int ut_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void ut_rmtree(const char *path)
{
	if (path)
		nftw(path, ut_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int ut_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	size_t len = strlen(text);
	int ok = write(fd, text, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -1;
}

ssize_t ut_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

/* ---- sockets ---- */

int ut_tcp_listener(int family, struct sockaddr_storage *addr, socklen_t *len)
{
	memset(addr, 0, sizeof *addr);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)addr;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		*len = sizeof *in6;
	}
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)addr, *len) < 0 || listen(fd, 16) < 0) {
		close(fd);
		return -1;
	}
	*len = sizeof *addr;
	if (getsockname(fd, (struct sockaddr *)addr, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int ut_unix_listener(const char *path, struct sockaddr_storage *addr, socklen_t *len)
{
	struct sockaddr_un *un = (struct sockaddr_un *)addr;
	memset(addr, 0, sizeof *addr);
	if (strlen(path) >= sizeof un->sun_path)
		return -1;
	un->sun_family = AF_UNIX;
	strcpy(un->sun_path, path);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)addr, *len) < 0 || listen(fd, 16) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int ut_closed_fd(void)
{
	for (int fd = 1000;; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			return fd;
}

/* ---- generation ---- */

int ut_gen_init_region(void)
{
	int fd = memfd_create("ut-generation", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, sizeof(struct hr_gen)) < 0)
		return -1;
	return hr_gen_init(fd, -1);
}

/* ---- forked child ---- */

void ut_child_fail(struct ut_child *ch, int line, const char *expr, const char *fmt, ...)
{
	char msg[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ch->line = line;
	snprintf(ch->what, sizeof ch->what, "check (%s) failed: %s", expr, msg);
	_exit(1);
}

int ut_run_child(ut_child_fn fn, void *arg, char *out, size_t outlen)
{
	struct ut_child *ch = mmap(NULL, sizeof *ch, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ch == MAP_FAILED) {
		snprintf(out, outlen, "mmap: %s", strerror(errno));
		return -1;
	}
	memset(ch, 0, sizeof *ch);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(out, outlen, "fork: %s", strerror(errno));
		munmap(ch, sizeof *ch);
		return -1;
	}
	if (pid == 0) {
		alarm(10); /* a hung child fails the test instead of stalling it */
		fn(ch, arg);
		/* _exit: Criterion's exit handlers belong to the parent. */
		_exit(0);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int rc = -1;
	if (ch->line)
		snprintf(out, outlen, "child, line %d: %s", ch->line, ch->what);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		rc = 0;
		snprintf(out, outlen, "ok");
	} else if (WIFEXITED(status))
		snprintf(out, outlen, "child exited with status %d (see stderr)",
			 WEXITSTATUS(status));
	else
		snprintf(out, outlen, "child killed by signal %d", WTERMSIG(status));
	munmap(ch, sizeof *ch);
	return rc;
}
