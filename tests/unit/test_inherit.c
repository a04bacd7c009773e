/* Unit tests for shim/inherit.c: the LISTEN_FDS protocol parser, fd and
 * address checks, and adoption/claiming of inherited listeners. */
#include <criterion/criterion.h>

#include "fdtable.h"
#include "helpers.h"
#include "inherit.h"
#include "libc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ======== hr_listen_env_parse ======== */

/* Parses with self = 4242 and returns the result; err and count filled. */
static int parse(const char *fds, const char *pid, const char *names, long *count, char *err,
		 size_t errlen)
{
	*count = -99;
	err[0] = '\0';
	return hr_listen_env_parse(fds, pid, names, 4242, count, err, errlen);
}

Test(listen_env, absent_means_nothing_inherited)
{
	long n;
	char err[256];
	cr_assert_eq(parse(NULL, NULL, NULL, &n, err, sizeof err), 0);
	cr_assert_eq(parse(NULL, "4242", "a:b", &n, err, sizeof err), 0);
	cr_assert_eq(n, -99, "count touched");
	cr_assert_str_empty(err);
}

Test(listen_env, valid)
{
	long n;
	char err[256];
	cr_assert_eq(parse("2", "4242", NULL, &n, err, sizeof err), 1, "%s", err);
	cr_assert_eq(n, 2);
	cr_assert_eq(parse("3", "4242", "web:admin:metrics", &n, err, sizeof err), 1, "%s", err);
	cr_assert_eq(n, 3);
	cr_assert_eq(parse("1", "4242", "", &n, err, sizeof err), 1, "one empty name: %s", err);
	cr_assert_eq(n, 1);
	cr_assert_eq(parse("0", "4242", NULL, &n, err, sizeof err), 1, "%s", err);
	cr_assert_eq(n, 0);
	cr_assert_eq(parse("1024", "4242", NULL, &n, err, sizeof err), 1, "%s", err);
	cr_assert_eq(n, HR_MAX_INHERITED);
}

Test(listen_env, pid_of_another_process)
{
	long n;
	char err[256];
	cr_assert_eq(parse("2", "4243", NULL, &n, err, sizeof err), -1);
	cr_assert_not_null(strstr(err, "LISTEN_PID"), "%s", err);
	cr_assert_not_null(strstr(err, "4243"), "%s", err);
	cr_assert_eq(n, -99);
}

Test(listen_env, pid_missing)
{
	long n;
	char err[256];
	cr_assert_eq(parse("2", NULL, NULL, &n, err, sizeof err), -1);
	cr_assert_not_null(strstr(err, "LISTEN_PID"), "%s", err);
	cr_assert_eq(n, -99);
}

Test(listen_env, malformed_pid)
{
	static const char *const bad[] = { "", "abc", "-4242", "0", "99999999999", "4242x",
					   " 4242" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		long n;
		char err[256];
		cr_assert_eq(parse("1", bad[i], NULL, &n, err, sizeof err), -1,
			     "LISTEN_PID='%s' accepted", bad[i]);
		cr_assert_not_null(strstr(err, "LISTEN_PID"), "'%s': %s", bad[i], err);
		cr_assert_eq(n, -99);
	}
}

Test(listen_env, malformed_fds)
{
	static const char *const bad[] = { "", "abc", "-1", "1025", "99999999999",
					   "99999999999999999999", "2x", "+2" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		long n;
		char err[256];
		cr_assert_eq(parse(bad[i], "4242", NULL, &n, err, sizeof err), -1,
			     "LISTEN_FDS='%s' accepted", bad[i]);
		cr_assert_not_null(strstr(err, "LISTEN_FDS"), "'%s': %s", bad[i], err);
		cr_assert_eq(n, -99);
	}
}

Test(listen_env, names_count_must_match)
{
	long n;
	char err[256];
	cr_assert_eq(parse("2", "4242", "a:b:c", &n, err, sizeof err), -1, "too many names");
	cr_assert_not_null(strstr(err, "LISTEN_FDNAMES"), "%s", err);
	cr_assert_eq(parse("3", "4242", "a:b", &n, err, sizeof err), -1, "too few names");
	cr_assert_not_null(strstr(err, "LISTEN_FDNAMES"), "%s", err);
	cr_assert_eq(parse("2", "4242", "a", &n, err, sizeof err), -1, "one name for two");
	cr_assert_eq(parse("1", "4242", "a:", &n, err, sizeof err), -1, "trailing colon");
	cr_assert_eq(n, -99);
	/* Empty names still count. */
	cr_assert_eq(parse("3", "4242", "::", &n, err, sizeof err), 1, "%s", err);
	cr_assert_eq(n, 3);
}

Test(listen_env, message_fits_a_small_buffer)
{
	long n;
	char err[10];
	memset(err, 'x', sizeof err);
	cr_assert_eq(hr_listen_env_parse("2", "1", NULL, 2, &n, err, sizeof err), -1);
	cr_assert_eq(strnlen(err, sizeof err), sizeof err - 1);
}

/* ======== hr_listen_name ======== */

static const char *name_of(const char *names, long i)
{
	static char out[HR_NAME_MAX];
	memset(out, '#', sizeof out);
	hr_listen_name(names, i, out, sizeof out);
	return out;
}

Test(listen_name, picks_the_ith_name)
{
	cr_assert_str_eq(name_of("web:admin:metrics", 0), "web");
	cr_assert_str_eq(name_of("web:admin:metrics", 1), "admin");
	cr_assert_str_eq(name_of("web:admin:metrics", 2), "metrics");
	cr_assert_str_eq(name_of("solo", 0), "solo");
}

Test(listen_name, unknown_when_absent_or_empty)
{
	cr_assert_str_eq(name_of(NULL, 0), "unknown");
	cr_assert_str_eq(name_of(NULL, 5), "unknown");
	cr_assert_str_eq(name_of("", 0), "unknown");
	cr_assert_str_eq(name_of("a::c", 1), "unknown");
	cr_assert_str_eq(name_of("a::c", 2), "c");
	cr_assert_str_eq(name_of(":b", 0), "unknown");
	cr_assert_str_eq(name_of("a:", 1), "unknown");
	cr_assert_str_eq(name_of("a:b", 2), "unknown", "past the last name");
	cr_assert_str_eq(name_of("a:b", 9), "unknown");
}

Test(listen_name, too_long_for_the_buffer)
{
	char names[400], out[8];
	memset(names, 'n', sizeof names - 1);
	names[sizeof names - 1] = '\0';
	cr_assert_str_eq(name_of(names, 0), "unknown");
	hr_listen_name("abcdefgh", 0, out, sizeof out);
	cr_assert_eq(strnlen(out, sizeof out), strlen("unknown"), "overflowed: %.8s", out);
	hr_listen_name("abcdefg", 0, out, sizeof out);
	cr_assert_str_eq(out, "abcdefg");
}

/* ======== hr_inherit_check_fd ======== */

static void init_libc(void)
{
	hr_libc_init();
}

TestSuite(check_fd, .init = init_libc);

/* Checks that hr_inherit_check_fd(fd) fails and says so about fd. */
static void assert_rejected(int fd, const char *why)
{
	char err[256] = "", fdtext[32];
	snprintf(fdtext, sizeof fdtext, "fd %d ", fd);
	cr_assert_eq(hr_inherit_check_fd(fd, err, sizeof err), -1, "fd %d accepted (%s)", fd, why);
	cr_assert_not_null(strstr(err, fdtext), "message does not name fd %d: %s", fd, err);
	cr_assert_not_null(strstr(err, why), "message for fd %d lacks '%s': %s", fd, why, err);
}

Test(check_fd, listening_tcp_socket_is_accepted)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256] = "";
	int fd = ut_tcp_listener(AF_INET, &ss, &len);
	cr_assert_geq(fd, 0);
	cr_assert_eq(hr_inherit_check_fd(fd, err, sizeof err), 0, "%s", err);
	close(fd);
}

Test(check_fd, listening_unix_socket_is_accepted)
{
	char *dir = ut_mkdtemp(), path[256], err[256] = "";
	struct sockaddr_storage ss;
	socklen_t len;
	cr_assert_not_null(dir);
	snprintf(path, sizeof path, "%s/s", dir);
	int fd = ut_unix_listener(path, &ss, &len);
	cr_assert_geq(fd, 0);
	int r = hr_inherit_check_fd(fd, err, sizeof err);
	close(fd);
	ut_rmtree(dir);
	free(dir);
	cr_assert_eq(r, 0, "%s", err);
}

Test(check_fd, bound_but_not_listening)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&in, sizeof in), 0);
	assert_rejected(fd, "not listening");
	close(fd);
}

Test(check_fd, udp_socket)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	assert_rejected(fd, "not a stream socket");
	close(fd);
}

Test(check_fd, connected_stream_socket)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_rejected(sv[0], "not listening");
	close(sv[0]);
	close(sv[1]);
}

Test(check_fd, pipe)
{
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	assert_rejected(p[0], "not a socket");
	assert_rejected(p[1], "not a socket");
	close(p[0]);
	close(p[1]);
}

Test(check_fd, regular_file)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	assert_rejected(fd, "not a socket");
	close(fd);
}

Test(check_fd, closed_fd_number)
{
	assert_rejected(ut_closed_fd(), "not open");
	assert_rejected(-1, "not open");
}

/* ======== hr_addr_match ======== */

static socklen_t v4(struct sockaddr_storage *ss, const char *ip, int port)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof *ss);
	in->sin_family = AF_INET;
	in->sin_port = htons((in_port_t)port);
	if (inet_pton(AF_INET, ip, &in->sin_addr) != 1)
		abort(); /* a typo in a test; also used in forked children */
	return sizeof *in;
}

static socklen_t v6(struct sockaddr_storage *ss, const char *ip, int port)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons((in_port_t)port);
	if (inet_pton(AF_INET6, ip, &in6->sin6_addr) != 1)
		abort();
	return sizeof *in6;
}

/* A path name; with_nul: count the terminating NUL in the length, as
 * getsockname() does. */
static socklen_t unix_path(struct sockaddr_storage *ss, const char *path, int with_nul)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	memset(ss, 0, sizeof *ss);
	un->sun_family = AF_UNIX;
	strcpy(un->sun_path, path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + !!with_nul);
}

/* An abstract name: a NUL, then name, no terminator. */
static socklen_t unix_abstract(struct sockaddr_storage *ss, const char *name)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	memset(ss, 0, sizeof *ss);
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path + 1, name, strlen(name));
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
}

static int match(const struct sockaddr_storage *want, socklen_t wl,
		 const struct sockaddr_storage *have, socklen_t hl)
{
	return hr_addr_match((const struct sockaddr *)want, wl, (const struct sockaddr *)have, hl);
}

Test(addr_match, ipv4)
{
	struct sockaddr_storage a, b;
	socklen_t al, bl;
	al = v4(&a, "127.0.0.1", 8080);
	bl = v4(&b, "127.0.0.1", 8080);
	cr_assert_eq(match(&a, al, &b, bl), 2, "exact");
	bl = v4(&b, "127.0.0.1", 8081);
	cr_assert_eq(match(&a, al, &b, bl), 0, "different port");
	al = v4(&a, "127.0.0.1", 0);
	cr_assert_eq(match(&a, al, &b, bl), 0, "port 0 asks for a fresh ephemeral port");
	al = v4(&a, "127.0.0.2", 0);
	cr_assert_eq(match(&a, al, &b, bl), 0, "port 0 does not cover another address");
	al = v4(&a, "127.0.0.1", 8081);
	bl = v4(&b, "127.0.0.1", 0);
	cr_assert_eq(match(&a, al, &b, bl), 0, "a specific port is not an unbound one");
	al = v4(&a, "10.0.0.1", 80);
	bl = v4(&b, "10.0.0.2", 80);
	cr_assert_eq(match(&a, al, &b, bl), 0, "different specific addresses");
}

Test(addr_match, ipv4_wildcard_both_directions)
{
	struct sockaddr_storage a, b;
	socklen_t al = v4(&a, "0.0.0.0", 8080), bl = v4(&b, "127.0.0.1", 8080);
	cr_assert_eq(match(&a, al, &b, bl), 1, "app wildcard, inherited specific");
	cr_assert_eq(match(&b, bl, &a, al), 0, "app specific, inherited wildcard: interface kept");
	cr_assert_eq(match(&a, al, &a, al), 2, "wildcard exact");
	bl = v4(&b, "127.0.0.1", 9090);
	cr_assert_eq(match(&a, al, &b, bl), 0, "wildcard, different port");
	cr_assert_eq(match(&b, bl, &a, al), 0, "wildcard, different port (reversed)");
	al = v4(&a, "0.0.0.0", 0);
	cr_assert_eq(match(&a, al, &b, bl), 0, "wildcard port 0");
}

Test(addr_match, ipv6)
{
	struct sockaddr_storage a, b;
	socklen_t al, bl;
	al = v6(&a, "::1", 443);
	bl = v6(&b, "::1", 443);
	cr_assert_eq(match(&a, al, &b, bl), 2, "exact");
	bl = v6(&b, "::1", 444);
	cr_assert_eq(match(&a, al, &b, bl), 0, "different port");
	al = v6(&a, "::ffff:127.0.0.1", 443);
	bl = v6(&b, "::ffff:127.0.0.1", 443);
	cr_assert_eq(match(&a, al, &b, bl), 2, "v4-mapped exact");
	bl = v6(&b, "::1", 443);
	cr_assert_eq(match(&a, al, &b, bl), 0, "v4-mapped vs ::1");
	al = v6(&a, "::", 443);
	cr_assert_eq(match(&a, al, &b, bl), 1, ":: vs ::1");
	cr_assert_eq(match(&b, bl, &a, al), 0, "::1 vs ::");
	al = v6(&a, "::1", 0);
	cr_assert_eq(match(&a, al, &b, bl), 0, "port 0");
	al = v6(&a, "2001:db8::1", 443);
	bl = v6(&b, "2001:db8::2", 443);
	cr_assert_eq(match(&a, al, &b, bl), 0, "different specific addresses");
}

Test(addr_match, family_mismatch)
{
	struct sockaddr_storage a, b;
	socklen_t al = v4(&a, "127.0.0.1", 80), bl = v6(&b, "::ffff:127.0.0.1", 80);
	cr_assert_eq(match(&a, al, &b, bl), 0);
	cr_assert_eq(match(&b, bl, &a, al), 0);
	al = v4(&a, "0.0.0.0", 80);
	bl = v6(&b, "::", 80);
	cr_assert_eq(match(&a, al, &b, bl), 0, "wildcards of different families");
	bl = unix_path(&b, "/tmp/x", 1);
	cr_assert_eq(match(&a, al, &b, bl), 0);
	cr_assert_eq(match(&b, bl, &a, al), 0);
}

Test(addr_match, truncated_lengths)
{
	struct sockaddr_storage a, b;
	socklen_t al = v4(&a, "127.0.0.1", 80), bl = v4(&b, "127.0.0.1", 80);
	cr_assert_eq(match(&a, al - 1, &b, bl), 0);
	cr_assert_eq(match(&a, al, &b, bl - 1), 0);
	al = v6(&a, "::1", 80);
	bl = v6(&b, "::1", 80);
	cr_assert_eq(match(&a, al - 1, &b, bl), 0);
	al = unix_path(&a, "/tmp/x", 1);
	cr_assert_eq(match(&a, sizeof(sa_family_t), &a, al), 0, "unnamed unix socket");
	cr_assert_eq(match(&a, al, &a, sizeof(sa_family_t)), 0, "unnamed unix socket");
}

Test(addr_match, unix_paths)
{
	struct sockaddr_storage a, b;
	socklen_t al = unix_path(&a, "/run/app.sock", 1), bl = unix_path(&b, "/run/app.sock", 1);
	cr_assert_eq(match(&a, al, &b, bl), 2, "equal");
	al = unix_path(&a, "/run/app.sock", 0);
	cr_assert_eq(match(&a, al, &b, bl), 2, "equal, app length without the NUL");
	cr_assert_eq(match(&a, sizeof(struct sockaddr_un), &b, bl), 2,
		     "equal, app passes the whole struct");
	bl = unix_path(&b, "/run/other.sock", 1);
	cr_assert_eq(match(&a, al, &b, bl), 0, "different");
	bl = unix_path(&b, "/run/app.sock.old", 1);
	cr_assert_eq(match(&a, al, &b, bl), 0, "prefix only");
}

Test(addr_match, unix_abstract_names)
{
	struct sockaddr_storage a, b;
	socklen_t al = unix_abstract(&a, "app"), bl = unix_abstract(&b, "app");
	cr_assert_eq(match(&a, al, &b, bl), 2, "equal");
	bl = unix_abstract(&b, "apq");
	cr_assert_eq(match(&a, al, &b, bl), 0, "different");
	bl = unix_abstract(&b, "app2");
	cr_assert_eq(match(&a, al, &b, bl), 0, "longer");
	/* Abstract names are byte strings: trailing NULs are significant. */
	bl = unix_abstract(&b, "app");
	cr_assert_eq(match(&a, al, &b, bl + 1), 0, "trailing NUL");
}

Test(addr_match, unix_path_vs_abstract)
{
	struct sockaddr_storage a, b;
	/* Same bytes after the first, and the same lengths. */
	socklen_t al = unix_path(&a, "app", 1), bl = unix_abstract(&b, "app");
	cr_assert_eq(al, bl);
	cr_assert_eq(match(&a, al, &b, bl), 0);
	cr_assert_eq(match(&b, bl, &a, al), 0);
	al = unix_path(&a, "/tmp/x", 1);
	bl = unix_abstract(&b, "/tmp/x");
	cr_assert_eq(match(&a, al, &b, bl), 0);
	cr_assert_eq(match(&b, bl, &a, al), 0);
}

/* ======== adoption and claiming (in a forked child) ======== */

static char *scratch;

static void inherit_setup(void)
{
	hr_libc_init();
	/* The fd table only: hr_gen stays NULL so that claiming a listener
	 * does not start the owner's agent thread in the test process. */
	hr_fdtable_init();
	cr_assert_not_null(hr_fds);
	scratch = ut_mkdtemp();
	cr_assert_not_null(scratch);
}

static void inherit_teardown(void)
{
	ut_rmtree(scratch);
	free(scratch);
	scratch = NULL;
}

TestSuite(inherit, .init = inherit_setup, .fini = inherit_teardown, .timeout = 20);

#define RUN_CHILD(fn)                                                           \
	do {                                                                    \
		char why_[700];                                                 \
		cr_assert_eq(ut_run_child((fn), NULL, why_, sizeof why_), 0, "%s", \
			     why_);                                             \
	} while (0)

/* A TCP listener on ip:port (port 0: any), optionally with SO_REUSEPORT. */
static int tcp_listen(struct ut_child *ch, int family, const char *ip, int port, int reuseport,
		      struct sockaddr_storage *ss, socklen_t *len)
{
	*len = family == AF_INET ? v4(ss, ip, port) : v6(ss, ip, port);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_CHECK(ch, fd >= 0, "socket: %s", strerror(errno));
	int one = 1;
	if (reuseport)
		UT_CHECK(ch, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0,
			 "SO_REUSEPORT: %s", strerror(errno));
	if (family == AF_INET6)
		UT_CHECK(ch, setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0,
			 "IPV6_V6ONLY: %s", strerror(errno));
	UT_CHECK(ch, bind(fd, (struct sockaddr *)ss, *len) == 0, "bind %s:%d: %s", ip, port,
		 strerror(errno));
	UT_CHECK(ch, listen(fd, 16) == 0, "listen: %s", strerror(errno));
	*len = sizeof *ss;
	UT_CHECK(ch, getsockname(fd, (struct sockaddr *)ss, len) == 0, "getsockname");
	return fd;
}

static int port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* Places fds[0..n-1] at 3..3+n-1 and sets LISTEN_* for this process. The
 * child's copies of Criterion's descriptors there are simply replaced. */
static void inherit_fds(struct ut_child *ch, const int *fds, int n, const char *names)
{
	int high[16];
	char text[32];
	UT_CHECK(ch, n <= 16, "too many fds");
	for (int i = 0; i < n; i++) {
		high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 500);
		UT_CHECK(ch, high[i] >= 500, "F_DUPFD: %s", strerror(errno));
	}
	for (int i = 0; i < n; i++)
		if (fds[i] != HR_LISTEN_FDS_START + i)
			close(fds[i]);
	for (int i = 0; i < n; i++) {
		UT_CHECK(ch, dup2(high[i], HR_LISTEN_FDS_START + i) == HR_LISTEN_FDS_START + i,
			 "dup2: %s", strerror(errno));
		close(high[i]);
	}
	snprintf(text, sizeof text, "%d", n);
	setenv("LISTEN_FDS", text, 1);
	snprintf(text, sizeof text, "%d", (int)getpid());
	setenv("LISTEN_PID", text, 1);
	if (names)
		setenv("LISTEN_FDNAMES", names, 1);
	else
		unsetenv("LISTEN_FDNAMES");
}

static unsigned long ino_of(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

static int is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(a, b, sizeof(struct sockaddr_in)) == 0;
	if (a->ss_family == AF_INET6)
		return memcmp(a, b, sizeof(struct sockaddr_in6)) == 0;
	return strcmp(((const struct sockaddr_un *)a)->sun_path,
		      ((const struct sockaddr_un *)b)->sun_path) == 0;
}

/* Connects a client to addr and accepts it on listener; returns 1 on success. */
static int accepts_on(struct ut_child *ch, int listener, const struct sockaddr_storage *addr,
		      socklen_t len)
{
	int c = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_CHECK(ch, c >= 0, "client socket: %s", strerror(errno));
	UT_CHECK(ch, connect(c, (const struct sockaddr *)addr, len) == 0, "connect: %s",
		 strerror(errno));
	struct pollfd p = { .fd = listener, .events = POLLIN };
	UT_CHECK(ch, poll(&p, 1, 2000) == 1, "no connection pending on fd %d", listener);
	int a = accept(listener, NULL, NULL);
	UT_CHECK(ch, a >= 0, "accept on fd %d: %s", listener, strerror(errno));
	UT_CHECK(ch, write(c, "x", 1) == 1, "write");
	char byte = 0;
	UT_CHECK(ch, read(a, &byte, 1) == 1 && byte == 'x', "the accepted socket is not the peer");
	close(a);
	close(c);
	return 1;
}

static void child_adopts_every_listener(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a1, a2, a3;
	socklen_t l1, l2, l3;
	char path[256];
	snprintf(path, sizeof path, "%s/inherited.sock", scratch);
	int fds[3] = {
		tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a1, &l1),
		tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a2, &l2),
		ut_unix_listener(path, &a3, &l3),
	};
	UT_CHECK(ch, fds[2] >= 0, "unix listener: %s", strerror(errno));
	inherit_fds(ch, fds, 3, "web:admin:sock");

	int n = hr_inherit_load();
	UT_CHECK(ch, n == 3, "hr_inherit_load() = %d", n);
	UT_CHECK(ch, hr_inherit_unclaimed() == 3, "unclaimed %d", hr_inherit_unclaimed());
	for (int fd = 3; fd < 6; fd++) {
		UT_CHECK(ch, hr_fd_kind(hr_fd_get(fd)) == HR_FD_SHIM, "fd %d state %#x", fd,
			 hr_fd_get(fd));
		UT_CHECK(ch, is_open(fd), "fd %d closed", fd);
	}
	UT_CHECK(ch, !strcmp(hr_inherit_name(ino_of(3)), "web"), "%s", hr_inherit_name(ino_of(3)));
	UT_CHECK(ch, !strcmp(hr_inherit_name(ino_of(4)), "admin"), "%s",
		 hr_inherit_name(ino_of(4)));
	UT_CHECK(ch, !strcmp(hr_inherit_name(ino_of(5)), "sock"), "%s", hr_inherit_name(ino_of(5)));
	UT_CHECK(ch, hr_inherit_name(0) == NULL, "ino 0");
	UT_CHECK(ch, hr_inherit_name(ino_of(0)) == NULL, "stdin's inode");

	UT_CHECK(ch, hr_inherit_holds_path(path) == 1, "unix path not held");
	UT_CHECK(ch, hr_inherit_holds_path("/nonexistent/inherited.sock") == 0, "other path held");
	UT_CHECK(ch, hr_inherit_holds_path("") == 0, "empty path held");
	UT_CHECK(ch, hr_inherit_holds_path(NULL) == 0, "NULL path held");
}

Test(inherit, load_adopts_every_listener)
{
	RUN_CHILD(child_adopts_every_listener);
}

static void child_names_default_to_unknown(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a;
	socklen_t l;
	int fd = tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a, &l);
	inherit_fds(ch, &fd, 1, NULL);
	UT_CHECK(ch, hr_inherit_load() == 1, "not loaded");
	UT_CHECK(ch, hr_inherit_name(ino_of(3)) && !strcmp(hr_inherit_name(ino_of(3)), "unknown"),
		 "unnamed inherited listener");
}

Test(inherit, names_default_to_unknown)
{
	RUN_CHILD(child_names_default_to_unknown);
}

static void child_bind_claims_a_listener(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a1, a2, got;
	socklen_t l1, l2, gl;
	int fds[2] = {
		tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a1, &l1),
		tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a2, &l2),
	};
	inherit_fds(ch, fds, 2, "web:admin");
	unsigned long web_ino = ino_of(3);
	UT_CHECK(ch, hr_inherit_load() == 2, "not loaded");

	/* The app's own socket: non-blocking and close-on-exec. */
	int app = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	UT_CHECK(ch, app >= 0, "socket");
	int r = hr_inherit_bind(app, (struct sockaddr *)&a1, l1);
	UT_CHECK(ch, r == 1, "hr_inherit_bind = %d", r);
	gl = sizeof got;
	UT_CHECK(ch, getsockname(app, (struct sockaddr *)&got, &gl) == 0, "getsockname");
	UT_CHECK(ch, same_addr(&got, &a1), "app fd has port %d, listener %d", port_of(&got),
		 port_of(&a1));
	UT_CHECK(ch, ino_of(app) == web_ino, "app fd is not the inherited socket");
	int acc = 0;
	socklen_t al = sizeof acc;
	UT_CHECK(ch, getsockopt(app, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc,
		 "app fd is not listening");
	UT_CHECK(ch, !is_open(3), "inherited fd 3 left open");
	UT_CHECK(ch, hr_fd_get(3) == 0, "fd 3 still tracked: %#x", hr_fd_get(3));
	UT_CHECK(ch, hr_fd_kind(hr_fd_get(app)) == HR_FD_LISTENER, "app fd state %#x",
		 hr_fd_get(app));
	UT_CHECK(ch, hr_fd_get(app) & HR_FD_NONBLOCK, "the app's O_NONBLOCK view was lost");
	UT_CHECK(ch, fcntl(app, F_GETFD) & FD_CLOEXEC, "close-on-exec lost");
	UT_CHECK(ch, hr_inherit_unclaimed() == 1, "unclaimed %d", hr_inherit_unclaimed());
	UT_CHECK(ch, !strcmp(hr_inherit_name(web_ino), "web"), "name after claim");
	accepts_on(ch, app, &a1, l1);

	/* The same address again: already claimed. */
	int again = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_CHECK(ch, hr_inherit_bind(again, (struct sockaddr *)&a1, l1) == 0, "claimed twice");
	/* An address nobody inherited. */
	struct sockaddr_storage other;
	socklen_t ol = v4(&other, "127.0.0.1", port_of(&a1) == 1 ? 2 : 1);
	UT_CHECK(ch, hr_inherit_bind(again, (struct sockaddr *)&other, ol) == 0, "wrong port");
	ol = v4(&other, "127.0.0.2", port_of(&a2));
	UT_CHECK(ch, hr_inherit_bind(again, (struct sockaddr *)&other, ol) == 0, "wrong address");
	UT_CHECK(ch, hr_inherit_unclaimed() == 1, "unclaimed %d", hr_inherit_unclaimed());
	UT_CHECK(ch, is_open(4), "unmatched binds disturbed fd 4");

	/* A blocking app socket keeps that view; like every listener it is
	 * made close-on-exec (only the successor's exec passes listeners on). */
	int app2 = socket(AF_INET, SOCK_STREAM, 0);
	UT_CHECK(ch, hr_inherit_bind(app2, (struct sockaddr *)&a2, l2) == 1, "second claim");
	UT_CHECK(ch, fcntl(app2, F_GETFD) & FD_CLOEXEC, "listener left inheritable by exec");
	UT_CHECK(ch, hr_fd_kind(hr_fd_get(app2)) == HR_FD_LISTENER, "app2 state");
	UT_CHECK(ch, !(hr_fd_get(app2) & HR_FD_NONBLOCK), "app2 marked non-blocking");
	UT_CHECK(ch, hr_inherit_unclaimed() == 0, "unclaimed %d", hr_inherit_unclaimed());
	UT_CHECK(ch, !is_open(4), "inherited fd 4 left open");
	accepts_on(ch, app2, &a2, l2);
	accepts_on(ch, app, &a1, l1);
}

Test(inherit, bind_claims_a_listener)
{
	RUN_CHILD(child_bind_claims_a_listener);
}

static void child_bind_wildcard_and_port0(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a1, a2, want, got;
	socklen_t l1, l2, wl, gl;
	int fds[2] = {
		tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a1, &l1),
		tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a2, &l2),
	};
	inherit_fds(ch, fds, 2, "one:two");
	UT_CHECK(ch, hr_inherit_load() == 2, "not loaded");

	int app = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	wl = v4(&want, "0.0.0.0", port_of(&a2));
	UT_CHECK(ch, hr_inherit_bind(app, (struct sockaddr *)&want, wl) == 1, "wildcard bind");
	gl = sizeof got;
	getsockname(app, (struct sockaddr *)&got, &gl);
	UT_CHECK(ch, same_addr(&got, &a2), "wildcard got port %d, want %d", port_of(&got),
		 port_of(&a2));

	/* A port-0 bind (an internal listener, a client choosing its source
	 * address) wants a fresh ephemeral socket, never a public listener. */
	int app0 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	wl = v4(&want, "127.0.0.1", 0);
	UT_CHECK(ch, hr_inherit_bind(app0, (struct sockaddr *)&want, wl) == 0, "port 0 bind");
	wl = v4(&want, "0.0.0.0", 0);
	UT_CHECK(ch, hr_inherit_bind(app0, (struct sockaddr *)&want, wl) == 0, "wildcard port 0");
	UT_CHECK(ch, hr_inherit_unclaimed() == 1, "unclaimed %d", hr_inherit_unclaimed());
	UT_CHECK(ch, is_open(3), "inherited listener taken by a port 0 bind");
}

Test(inherit, bind_wildcard_and_port0)
{
	RUN_CHILD(child_bind_wildcard_and_port0);
}

static void child_exact_beats_wildcard(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage any, lo, got;
	socklen_t anyl, lol, gl;
	int fds[2];
	/* Both on one port: SO_REUSEPORT lets them coexist. */
	fds[0] = tcp_listen(ch, AF_INET, "0.0.0.0", 0, 1, &any, &anyl);
	fds[1] = tcp_listen(ch, AF_INET, "127.0.0.1", port_of(&any), 1, &lo, &lol);
	inherit_fds(ch, fds, 2, "any:lo");
	UT_CHECK(ch, hr_inherit_load() == 2, "not loaded");

	int app = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_CHECK(ch, hr_inherit_bind(app, (struct sockaddr *)&lo, lol) == 1, "bind");
	gl = sizeof got;
	getsockname(app, (struct sockaddr *)&got, &gl);
	UT_CHECK(ch, same_addr(&got, &lo), "took the wildcard listener instead of the exact one");
	UT_CHECK(ch, is_open(3) && !is_open(4), "wrong inherited fd consumed");

	/* A specific address binds for real rather than widen to the wildcard. */
	int app2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_CHECK(ch, hr_inherit_bind(app2, (struct sockaddr *)&lo, lol) == 0,
		 "a 127.0.0.1 bind took the wildcard listener");
	UT_CHECK(ch, hr_inherit_bind(app2, (struct sockaddr *)&any, anyl) == 1, "wildcard bind");
	gl = sizeof got;
	getsockname(app2, (struct sockaddr *)&got, &gl);
	UT_CHECK(ch, same_addr(&got, &any), "second claim");
}

static void child_specific_bind_keeps_its_interface(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage any, want;
	socklen_t anyl, wl;
	int fd = tcp_listen(ch, AF_INET, "0.0.0.0", 0, 0, &any, &anyl);
	inherit_fds(ch, &fd, 1, "public");
	UT_CHECK(ch, hr_inherit_load() == 1, "not loaded");
	int app = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	wl = v4(&want, "127.0.0.1", port_of(&any));
	UT_CHECK(ch, hr_inherit_bind(app, (struct sockaddr *)&want, wl) == 0,
		 "a 127.0.0.1 bind was given the 0.0.0.0 listener");
	UT_CHECK(ch, hr_inherit_unclaimed() == 1, "unclaimed %d", hr_inherit_unclaimed());
}

Test(inherit, specific_bind_keeps_its_interface)
{
	RUN_CHILD(child_specific_bind_keeps_its_interface);
}

Test(inherit, exact_match_beats_wildcard)
{
	RUN_CHILD(child_exact_beats_wildcard);
}

static void child_ipv6(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a, want, got;
	socklen_t l, wl, gl;
	int fd = tcp_listen(ch, AF_INET6, "::1", 0, 0, &a, &l);
	inherit_fds(ch, &fd, 1, "v6");
	UT_CHECK(ch, hr_inherit_load() == 1, "not loaded");
	int v4app = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	wl = v4(&want, "0.0.0.0", port_of(&a));
	UT_CHECK(ch, hr_inherit_bind(v4app, (struct sockaddr *)&want, wl) == 0,
		 "an IPv4 bind took an IPv6 listener");
	int app = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	wl = v6(&want, "::", port_of(&a));
	UT_CHECK(ch, hr_inherit_bind(app, (struct sockaddr *)&want, wl) == 1, "bind [::]");
	gl = sizeof got;
	getsockname(app, (struct sockaddr *)&got, &gl);
	UT_CHECK(ch, same_addr(&got, &a), "address");
	accepts_on(ch, app, &a, l);
}

Test(inherit, ipv6_listener)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int probe = ut_tcp_listener(AF_INET6, &ss, &len);
	if (probe < 0)
		cr_skip_test("no IPv6 loopback here");
	close(probe);
	RUN_CHILD(child_ipv6);
}

static void child_unix_listener(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a, want;
	socklen_t l;
	char path[256];
	snprintf(path, sizeof path, "%s/app.sock", scratch);
	int fd = ut_unix_listener(path, &a, &l);
	UT_CHECK(ch, fd >= 0, "unix listener");
	inherit_fds(ch, &fd, 1, "sock");
	UT_CHECK(ch, hr_inherit_load() == 1, "not loaded");
	UT_CHECK(ch, hr_inherit_holds_path(path) == 1, "path not held before the claim");

	/* The app passes the whole struct, as many do. */
	memset(&want, 0, sizeof want);
	((struct sockaddr_un *)&want)->sun_family = AF_UNIX;
	strcpy(((struct sockaddr_un *)&want)->sun_path, path);
	int inet = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_CHECK(ch, hr_inherit_bind(inet, (struct sockaddr *)&want, sizeof(struct sockaddr_un)) == 0,
		 "an AF_INET socket took a unix listener");
	int app = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_CHECK(ch, hr_inherit_bind(app, (struct sockaddr *)&want, sizeof(struct sockaddr_un)) == 1,
		 "unix bind");
	UT_CHECK(ch, hr_inherit_holds_path(path) == 0, "path still held after the claim");
	UT_CHECK(ch, hr_inherit_unclaimed() == 0, "unclaimed");
	accepts_on(ch, app, &a, l);
}

Test(inherit, unix_listener_by_path)
{
	RUN_CHILD(child_unix_listener);
}

static void child_bind_refuses_unsuitable_sockets(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a;
	socklen_t l;
	int fd = tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a, &l);
	inherit_fds(ch, &fd, 1, NULL);
	UT_CHECK(ch, hr_inherit_load() == 1, "not loaded");
	int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	UT_CHECK(ch, hr_inherit_bind(udp, (struct sockaddr *)&a, l) == 0, "UDP socket");
	int v6app = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (v6app >= 0)
		UT_CHECK(ch, hr_inherit_bind(v6app, (struct sockaddr *)&a, l) == 0,
			 "domain differs from the address family");
	int app = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_CHECK(ch, hr_inherit_bind(app, NULL, l) == 0, "NULL address");
	UT_CHECK(ch, hr_inherit_bind(app, (struct sockaddr *)&a, 1) == 0, "1-byte address");
	UT_CHECK(ch, hr_inherit_bind(ut_closed_fd(), (struct sockaddr *)&a, l) == 0, "closed fd");
	int p[2];
	UT_CHECK(ch, pipe(p) == 0, "pipe");
	UT_CHECK(ch, hr_inherit_bind(p[0], (struct sockaddr *)&a, l) == 0, "pipe");
	UT_CHECK(ch, hr_inherit_unclaimed() == 1, "a refused bind claimed the listener");
	UT_CHECK(ch, hr_inherit_bind(app, (struct sockaddr *)&a, l) == 1, "the valid bind");
}

Test(inherit, bind_refuses_unsuitable_sockets)
{
	RUN_CHILD(child_bind_refuses_unsuitable_sockets);
}

static void child_one_pipe_rejects_all(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a;
	socklen_t l;
	int p[2];
	UT_CHECK(ch, pipe2(p, O_CLOEXEC) == 0, "pipe");
	int fds[3] = { tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a, &l), p[0], -1 };
	struct sockaddr_storage b;
	socklen_t bl;
	fds[2] = tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &b, &bl);
	inherit_fds(ch, fds, 3, "a:b:c");

	struct ut_capture cap;
	ut_capture_begin(&cap);
	int n = hr_inherit_load();
	char *log = ut_capture_end(&cap);
	UT_CHECK(ch, n == 0, "hr_inherit_load() = %d with a pipe among the fds", n);
	UT_CHECK(ch, strstr(log, "fd 4 is not a socket") != NULL, "log: %s", log);
	UT_CHECK(ch, strchr(log, '\n') == log + strlen(log) - 1, "not one line: %s", log);
	free(log);
	UT_CHECK(ch, hr_inherit_unclaimed() == 0, "unclaimed %d", hr_inherit_unclaimed());
	for (int fd = 3; fd < 6; fd++) {
		UT_CHECK(ch, hr_fd_get(fd) == 0, "fd %d tracked", fd);
		UT_CHECK(ch, is_open(fd), "fd %d closed", fd);
	}
	int app = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_CHECK(ch, hr_inherit_bind(app, (struct sockaddr *)&a, l) == 0, "claimed from nothing");
	UT_CHECK(ch, hr_inherit_name(ino_of(3)) == NULL, "name kept");
}

Test(inherit, one_bad_fd_adopts_none)
{
	RUN_CHILD(child_one_pipe_rejects_all);
}

static void child_missing_fd_adopts_none(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a;
	socklen_t l;
	int fd = tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a, &l);
	inherit_fds(ch, &fd, 1, NULL);
	/* Claim two, but fd 4 is not open. */
	close(4);
	setenv("LISTEN_FDS", "2", 1);
	struct ut_capture cap;
	ut_capture_begin(&cap);
	int n = hr_inherit_load();
	char *log = ut_capture_end(&cap);
	UT_CHECK(ch, n == 0, "hr_inherit_load() = %d", n);
	UT_CHECK(ch, strstr(log, "fd 4 is not open") != NULL, "log: %s", log);
	free(log);
}

Test(inherit, missing_fd_adopts_none)
{
	RUN_CHILD(child_missing_fd_adopts_none);
}

static void child_environment_problems(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a;
	socklen_t l;
	int fd = tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a, &l);
	inherit_fds(ch, &fd, 1, NULL);
	struct ut_capture cap;
	char *log;
	char other[32];

	/* Meant for another process. */
	snprintf(other, sizeof other, "%d", (int)getppid());
	setenv("LISTEN_PID", other, 1);
	ut_capture_begin(&cap);
	UT_CHECK(ch, hr_inherit_load() == 0, "LISTEN_PID of the parent accepted");
	log = ut_capture_end(&cap);
	UT_CHECK(ch, strstr(log, "LISTEN_PID") != NULL, "log: %s", log);
	free(log);

	/* Names do not match the count. */
	snprintf(other, sizeof other, "%d", (int)getpid());
	setenv("LISTEN_PID", other, 1);
	setenv("LISTEN_FDNAMES", "a:b", 1);
	ut_capture_begin(&cap);
	UT_CHECK(ch, hr_inherit_load() == 0, "two names for one fd accepted");
	log = ut_capture_end(&cap);
	UT_CHECK(ch, strstr(log, "LISTEN_FDNAMES") != NULL, "log: %s", log);
	free(log);

	/* Zero fds: nothing to do, nothing to complain about. */
	unsetenv("LISTEN_FDNAMES");
	setenv("LISTEN_FDS", "0", 1);
	ut_capture_begin(&cap);
	UT_CHECK(ch, hr_inherit_load() == 0, "LISTEN_FDS=0");
	log = ut_capture_end(&cap);
	UT_CHECK(ch, log[0] == '\0', "log: %s", log);
	free(log);

	/* Absent: silent. */
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	ut_capture_begin(&cap);
	UT_CHECK(ch, hr_inherit_load() == 0, "no LISTEN_FDS");
	log = ut_capture_end(&cap);
	UT_CHECK(ch, log[0] == '\0', "log: %s", log);
	free(log);
	UT_CHECK(ch, hr_inherit_unclaimed() == 0, "unclaimed");
	UT_CHECK(ch, hr_fd_get(3) == 0, "fd 3 tracked");
	UT_CHECK(ch, hr_inherit_holds_path("/x") == 0, "holds a path");

	/* The valid environment still works afterwards. */
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_PID", other, 1);
	UT_CHECK(ch, hr_inherit_load() == 1, "valid environment");
}

Test(inherit, environment_problems_adopt_none)
{
	RUN_CHILD(child_environment_problems);
}

static void child_claim_in_place(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a1, a2;
	socklen_t l1, l2;
	int fds[2] = {
		tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a1, &l1),
		tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a2, &l2),
	};
	inherit_fds(ch, fds, 2, NULL);
	UT_CHECK(ch, hr_inherit_load() == 2, "not loaded");
	hr_inherit_claim_in_place(3);
	UT_CHECK(ch, hr_inherit_unclaimed() == 1, "unclaimed %d", hr_inherit_unclaimed());
	UT_CHECK(ch, hr_fd_kind(hr_fd_get(3)) == HR_FD_LISTENER, "fd 3 state %#x", hr_fd_get(3));
	UT_CHECK(ch, is_open(3), "fd 3 closed");
	hr_inherit_claim_in_place(3);
	hr_inherit_claim_in_place(77);
	UT_CHECK(ch, hr_inherit_unclaimed() == 1, "unclaimed %d", hr_inherit_unclaimed());
	UT_CHECK(ch, hr_fd_kind(hr_fd_get(4)) == HR_FD_SHIM, "fd 4 state %#x", hr_fd_get(4));
	int app = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_CHECK(ch, hr_inherit_bind(app, (struct sockaddr *)&a1, l1) == 0,
		 "a listener claimed in place was handed out again");
	accepts_on(ch, 3, &a1, l1);
}

Test(inherit, claim_in_place)
{
	RUN_CHILD(child_claim_in_place);
}

static void child_close_unclaimed(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a1, a2, a3;
	socklen_t l1, l2, l3;
	char path[256];
	snprintf(path, sizeof path, "%s/unused.sock", scratch);
	int fds[3] = {
		tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a1, &l1),
		tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a2, &l2),
		ut_unix_listener(path, &a3, &l3),
	};
	inherit_fds(ch, fds, 3, "used:spare:unused");
	UT_CHECK(ch, hr_inherit_load() == 3, "not loaded");
	int app = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_CHECK(ch, hr_inherit_bind(app, (struct sockaddr *)&a1, l1) == 1, "claim");

	struct ut_capture cap;
	ut_capture_begin(&cap);
	hr_inherit_close_unclaimed();
	char *log = ut_capture_end(&cap);
	UT_CHECK(ch, strstr(log, "'spare'") && strstr(log, "'unused'"), "log: %s", log);
	UT_CHECK(ch, strstr(log, "'used'") == NULL, "the claimed listener was closed: %s", log);
	free(log);
	UT_CHECK(ch, !is_open(4) && !is_open(5), "unclaimed fds left open");
	UT_CHECK(ch, hr_fd_get(4) == 0 && hr_fd_get(5) == 0, "closed fds still tracked");
	UT_CHECK(ch, is_open(app), "the claimed listener was closed");
	UT_CHECK(ch, hr_inherit_unclaimed() == 0, "unclaimed %d", hr_inherit_unclaimed());
	UT_CHECK(ch, hr_inherit_holds_path(path) == 0, "a closed listener still holds its path");

	/* Closed listeners can no longer be claimed. */
	int late = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ut_capture_begin(&cap); /* see late_bind_after_close_is_silent */
	int r = hr_inherit_bind(late, (struct sockaddr *)&a2, l2);
	free(ut_capture_end(&cap));
	UT_CHECK(ch, r == 0, "a closed listener was handed out");
	UT_CHECK(ch, is_open(late), "the app's socket was closed");
	ut_capture_begin(&cap);
	hr_inherit_close_unclaimed();
	log = ut_capture_end(&cap);
	UT_CHECK(ch, log[0] == '\0', "closed twice: %s", log);
	free(log);
	accepts_on(ch, app, &a1, l1);
}

Test(inherit, close_unclaimed)
{
	RUN_CHILD(child_close_unclaimed);
}

static void child_late_bind_after_close(struct ut_child *ch, void *arg)
{
	(void)arg;
	struct sockaddr_storage a;
	socklen_t l;
	int fd = tcp_listen(ch, AF_INET, "127.0.0.1", 0, 0, &a, &l);
	inherit_fds(ch, &fd, 1, "late");
	UT_CHECK(ch, hr_inherit_load() == 1, "not loaded");
	struct ut_capture cap;
	ut_capture_begin(&cap);
	hr_inherit_close_unclaimed();
	free(ut_capture_end(&cap));

	int app = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ut_capture_begin(&cap);
	int r = hr_inherit_bind(app, (struct sockaddr *)&a, l);
	char *log = ut_capture_end(&cap);
	UT_CHECK(ch, r == 0, "a closed listener was handed out");
	UT_CHECK(ch, log[0] == '\0', "a bind after close logged: %s", log);
	free(log);
}

/* hr_inherit_bind() does not skip entries closed by
 * hr_inherit_close_unclaimed() (fd -1): a later bind() to that address tries
 * dup3(-1, app_fd) and logs "cannot hand inherited listener fd -1 ...".
 * The result (0) is right; the warning is not. Enable once fixed. */
Test(inherit, late_bind_after_close_is_silent)
{
	RUN_CHILD(child_late_bind_after_close);
}
