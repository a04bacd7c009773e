/* Unit tests for shim/guards.c: the HOTRESTART_OLD_PIDS parser, which PIDs
 * count as older generations, pid-file take-over and lock hand-over. */
#include <criterion/criterion.h>

#include "config.h"
#include "guards.h"
#include "helpers.h"
#include "libc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *dir;

static void setup(void)
{
	hr_libc_init();
	dir = ut_mkdtemp();
	cr_assert_not_null(dir);
}

static void teardown(void)
{
	hr_guards_load("");
	ut_rmtree(dir);
	free(dir);
}

TestSuite(guards, .init = setup, .fini = teardown);

static int parse(const char *text, struct hr_old_proc *out, int max)
{
	char err[128];
	return hr_guards_parse(text, out, max, err, sizeof err);
}

Test(guards, parses_entries)
{
	struct hr_old_proc p[4];
	cr_assert_eq(parse("123:456,7:8", p, 4), 2);
	cr_assert_eq(p[0].pid, 123);
	cr_assert_eq(p[0].start, 456ULL);
	cr_assert_eq(p[1].pid, 7);
	cr_assert_eq(p[1].start, 8ULL);
	cr_assert_eq(parse("", p, 4), 0);
	cr_assert_eq(parse("1:18446744073709551615", p, 4), 1);
	cr_assert_eq(p[0].start, 18446744073709551615ULL);
}

Test(guards, rejects_malformed)
{
	static const char *const bad[] = {
		"abc", "12", "12:", ":5", "0:5", "1:2,", "1:2,,3:4", " 1:2", "1:2 ", "1;2",
		"-1:2", "2147483648:1", "1:18446744073709551616", "1:2:3",
	};
	struct hr_old_proc p[4];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect_eq(parse(bad[i], p, 4), -1, "accepted \"%s\"", bad[i]);
	cr_expect_eq(parse("1:1,2:2,3:3", p, 2), -1, "more entries than room");
}

Test(guards, malformed_variable_warns_once_and_is_ignored)
{
	struct ut_capture c;
	ut_capture_begin(&c);
	hr_guards_load("1:2,bogus");
	char *out = ut_capture_end(&c);
	cr_assert_eq(hr_guards_count, 0);
	cr_assert(strstr(out, HR_ENV_OLD_PIDS) && strstr(out, "bogus"), "got: %s", out);
	cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
	free(out);
}

/* Lists pid with the given start time as the only older-generation process. */
static void list_one(pid_t pid, unsigned long long start)
{
	char text[64];
	snprintf(text, sizeof text, "%d:%llu", (int)pid, start);
	hr_guards_load(text);
	cr_assert_eq(hr_guards_count, 1);
}

static unsigned long long start_of(pid_t pid)
{
	unsigned long long start = 0;
	cr_assert_eq(hr_proc_start_time(pid, &start), 0, "no start time for %d", (int)pid);
	return start;
}

Test(guards, old_pid_needs_matching_start_time)
{
	pid_t self = getpid();
	list_one(self, start_of(self));
	cr_assert(hr_guards_is_old(self));
	cr_assert(hr_guards_hides_pid(self, 0));
	cr_assert_not(hr_guards_is_old(getppid()), "an unlisted pid");
	/* A reused PID: same number, another start time. */
	list_one(self, start_of(self) + 1);
	cr_assert_not(hr_guards_is_old(self));
	cr_assert_not(hr_guards_hides_pid(self, 0));
}

Test(guards, exited_process_is_not_old)
{
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	list_one(child, start_of(child));
	cr_assert(hr_guards_is_old(child));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	cr_assert_not(hr_guards_is_old(child));
}

Test(guards, proc_paths)
{
	pid_t self = getpid();
	list_one(self, start_of(self));
	char path[64];
	snprintf(path, sizeof path, "/proc/%d", (int)self);
	cr_assert(hr_guards_hides_path(path));
	snprintf(path, sizeof path, "/proc/%d/stat", (int)self);
	cr_assert(hr_guards_hides_path(path));
	snprintf(path, sizeof path, "/proc/%dx", (int)self);
	cr_assert_not(hr_guards_hides_path(path));
	snprintf(path, sizeof path, "/proc/0%d", (int)self);
	cr_assert_not(hr_guards_hides_path(path));
	snprintf(path, sizeof path, "/procs/%d", (int)self);
	cr_assert_not(hr_guards_hides_path(path));
	cr_assert_not(hr_guards_hides_path("/proc/self"));
	cr_assert_not(hr_guards_hides_path("/proc/"));
	cr_assert_not(hr_guards_hides_path(NULL));
	hr_guards_load("");
	snprintf(path, sizeof path, "/proc/%d", (int)self);
	cr_assert_not(hr_guards_hides_path(path), "not a successor");
}

static void write_text(const char *path, const char *text)
{
	cr_assert_eq(ut_write_file(path, text), 0);
}

Test(guards, exclusive_create_takes_over_old_pid_file)
{
	pid_t self = getpid();
	list_one(self, start_of(self));
	char path[4096], text[32];
	snprintf(path, sizeof path, "%s/app.pid", dir);
	snprintf(text, sizeof text, "%d\n", (int)self);
	write_text(path, text);
	struct stat before, after;
	cr_assert_eq(stat(path, &before), 0);
	int fd = hr_guards_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open: %s", strerror(errno));
	cr_assert_eq(fstat(fd, &after), 0);
	cr_assert_eq(after.st_size, 0, "a fresh file");
	cr_assert_neq(after.st_ino, before.st_ino, "a new inode");
	close(fd);
}

Test(guards, exclusive_create_keeps_other_files)
{
	pid_t self = getpid();
	list_one(self, start_of(self));
	char path[4096], text[32];
	snprintf(path, sizeof path, "%s/app.pid", dir);
	snprintf(text, sizeof text, "%d\n", (int)getppid());
	write_text(path, text);
	errno = 0;
	cr_assert_eq(hr_guards_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL, 0644), -1);
	cr_assert_eq(errno, EEXIST);
	write_text(path, "data\n");
	cr_assert_eq(hr_guards_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL, 0644), -1);
	cr_assert_eq(errno, EEXIST);
}

/* A child that writes its PID into path (when pidfile), holds a lock of the
 * given kind on it and waits for *release to be closed. */
static pid_t lock_holder(const char *path, const char *kind, int pidfile, int *release)
{
	int ready[2], hold[2];
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(hold), 0);
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		close(ready[0]);
		close(hold[1]);
		int fd = open(path, O_RDWR | O_CREAT, 0644);
		char text[32];
		int n = snprintf(text, sizeof text, "%d\n", (int)getpid());
		if (fd < 0 || (pidfile && pwrite(fd, text, (size_t)n, 0) != n))
			_exit(1);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int r = strcmp(kind, "flock") == 0 ? flock(fd, LOCK_EX)
			: fcntl(fd, strcmp(kind, "ofd") == 0 ? F_OFD_SETLK : F_SETLK, &fl);
		if (r < 0 || write(ready[1], "x", 1) != 1)
			_exit(1);
		char c;
		while (read(hold[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	char c;
	cr_assert_eq(read(ready[0], &c, 1), 1, "lock holder failed");
	close(ready[0]);
	*release = hold[1];
	return child;
}

/* Whether a fresh process finds the file locked (F_SETLK meets process and
 * OFD locks; flock locks are separate on Linux and are tried with flock). */
static int locked_elsewhere(const char *path, const char *kind)
{
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		int fd = open(path, O_RDWR);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int r = strcmp(kind, "flock") == 0 ? flock(fd, LOCK_EX | LOCK_NB)
						   : fcntl(fd, F_SETLK, &fl);
		_exit(fd >= 0 && r < 0 ? 0 : 1);
	}
	int status;
	cr_assert_eq(waitpid(child, &status, 0), child);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void lock_handover(const char *kind)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/app.pid", dir);
	int release;
	pid_t old = lock_holder(path, kind, 1, &release);
	list_one(old, start_of(old));
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int r = strcmp(kind, "flock") == 0 ? hr_guards_flock(fd, LOCK_EX | LOCK_NB)
		: hr_guards_fcntl_lock(fd, strcmp(kind, "ofd") == 0 ? F_OFD_SETLK : F_SETLK, &fl);
	cr_assert_eq(r, 0, "%s lock not granted: %s", kind, strerror(errno));
	close(release);
	waitpid(old, NULL, 0);
	/* The waiter takes the lock once the holder is gone. */
	int held = 0;
	for (int i = 0; i < 200 && !held; i++) {
		held = locked_elsewhere(path, kind);
		if (!held)
			nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	cr_assert(held, "%s lock never taken over", kind);
	close(fd);
}

Test(guards, fcntl_lock_handed_over)
{
	lock_handover("fcntl");
}

Test(guards, ofd_lock_handed_over)
{
	lock_handover("ofd");
}

Test(guards, flock_handed_over)
{
	lock_handover("flock");
}

Test(guards, lock_on_data_is_never_granted)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/data.db", dir);
	int release;
	pid_t old = lock_holder(path, "fcntl", 0, &release);
	list_one(old, start_of(old));
	int fd = open(path, O_RDWR);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	errno = 0;
	cr_assert_eq(hr_guards_fcntl_lock(fd, F_SETLK, &fl), -1);
	cr_assert(errno == EAGAIN || errno == EACCES, "errno %d", errno);
	close(release);
	waitpid(old, NULL, 0);
	close(fd);
}

Test(guards, old_pids_variable_for_a_successor)
{
	char *var = hr_guards_old_pids_var();
	cr_assert_not_null(var);
	const char *prefix = HR_ENV_OLD_PIDS "=";
	cr_assert_eq(strncmp(var, prefix, strlen(prefix)), 0, "%s", var);
	struct hr_old_proc p[8];
	int n = parse(var + strlen(prefix), p, 8);
	cr_assert_geq(n, 1, "%s", var);
	cr_assert_eq(p[0].pid, getpid());
	cr_assert_eq(p[0].start, start_of(getpid()));
	free(var);
}
