/* Unit tests for shim/pidfile.c: atomic write, symlink safety, removal. */
#include <criterion/criterion.h>

#include "config.h"
#include "helpers.h"
#include "libc.h"
#include "pidfile.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;

static void setup(void)
{
	hr_libc_init();
	dir = ut_mkdtemp();
	cr_assert_not_null(dir, "cannot create a scratch directory");
	snprintf(hr_cfg.pidfile, sizeof hr_cfg.pidfile, "%s/app.pid", dir);
}

static void teardown(void)
{
	ut_rmtree(dir);
	free(dir);
	dir = NULL;
}

TestSuite(pidfile, .init = setup, .fini = teardown);

/* The temp name hr_pidfile_write uses in this process. */
static void temp_name(char *out, size_t outlen)
{
	snprintf(out, outlen, "%s.tmp.%d", hr_cfg.pidfile, (int)getpid());
}

static void in_dir(char *out, size_t outlen, const char *name)
{
	snprintf(out, outlen, "%s/%s", dir, name);
}

/* Number of entries in the scratch directory, and the first one's name. */
static int dir_entries(char *first, size_t firstlen)
{
	int n = 0;
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	struct dirent *e;
	if (first)
		first[0] = '\0';
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n++ == 0 && first)
			snprintf(first, firstlen, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

static void assert_file(const char *path, const char *want)
{
	char buf[256];
	cr_assert_geq(ut_read_file(path, buf, sizeof buf), 0, "cannot read %s: %s", path,
		      strerror(errno));
	cr_assert_str_eq(buf, want, "contents of %s", path);
}

Test(pidfile, writes_pid_and_newline)
{
	char first[256];
	cr_assert_eq(hr_pidfile_write(4321), 0);
	assert_file(hr_cfg.pidfile, "4321\n");
	cr_assert_eq(dir_entries(first, sizeof first), 1, "temp file left behind");
	cr_assert_str_eq(first, "app.pid");
	struct stat st;
	cr_assert_eq(lstat(hr_cfg.pidfile, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
}

Test(pidfile, replaces_by_rename_not_in_place)
{
	char link_path[PATH_MAX];
	in_dir(link_path, sizeof link_path, "old.link");
	cr_assert_eq(ut_write_file(hr_cfg.pidfile, "old contents that are longer\n"), 0);
	cr_assert_eq(link(hr_cfg.pidfile, link_path), 0);
	cr_assert_eq(hr_pidfile_write(77), 0);
	assert_file(hr_cfg.pidfile, "77\n");
	/* A reader holding the old file never sees a half-written one. */
	assert_file(link_path, "old contents that are longer\n");
	cr_assert_eq(hr_pidfile_write(78), 0);
	assert_file(hr_cfg.pidfile, "78\n");
}

Test(pidfile, planted_symlink_is_not_followed)
{
	char tmp[PATH_MAX + 32], target[PATH_MAX];
	in_dir(target, sizeof target, "precious");
	cr_assert_eq(ut_write_file(target, "precious data\n"), 0);
	temp_name(tmp, sizeof tmp);
	cr_assert_eq(symlink(target, tmp), 0);

	cr_assert_eq(hr_pidfile_write(55), 0);
	assert_file(target, "precious data\n");
	assert_file(hr_cfg.pidfile, "55\n");
	struct stat st;
	cr_assert_eq(lstat(hr_cfg.pidfile, &st), 0);
	cr_assert(S_ISREG(st.st_mode), "pid file is not a regular file");
	cr_assert_eq(lstat(tmp, &st), -1, "temp name still exists");
	cr_assert_eq(lstat(target, &st), 0);
	cr_assert_eq(st.st_nlink, 1, "the target gained a link");
}

Test(pidfile, planted_dangling_symlink_creates_nothing)
{
	char tmp[PATH_MAX + 32], target[PATH_MAX];
	in_dir(target, sizeof target, "created-through-link");
	temp_name(tmp, sizeof tmp);
	cr_assert_eq(symlink(target, tmp), 0);

	cr_assert_eq(hr_pidfile_write(56), 0);
	cr_assert_eq(access(target, F_OK), -1, "the link was followed");
	assert_file(hr_cfg.pidfile, "56\n");
}

Test(pidfile, leftover_temp_file_is_replaced)
{
	char tmp[PATH_MAX + 32];
	temp_name(tmp, sizeof tmp);
	cr_assert_eq(ut_write_file(tmp, "stale leftover\n"), 0);
	cr_assert_eq(hr_pidfile_write(57), 0);
	assert_file(hr_cfg.pidfile, "57\n");
	cr_assert_eq(access(tmp, F_OK), -1);
}

Test(pidfile, noop_without_a_configured_path)
{
	hr_cfg.pidfile[0] = '\0';
	cr_assert_eq(hr_pidfile_write(58), 0);
	cr_assert_eq(dir_entries(NULL, 0), 0);
}

Test(pidfile, write_into_missing_directory_fails_and_logs)
{
	snprintf(hr_cfg.pidfile, sizeof hr_cfg.pidfile, "%s/missing/app.pid", dir);
	struct ut_capture cap;
	ut_capture_begin(&cap);
	int r = hr_pidfile_write(59);
	char *out = ut_capture_end(&cap);
	cr_assert_eq(r, -1);
	cr_assert_not_null(strstr(out, "missing/app.pid"), "log: %s", out);
	cr_assert_eq(dir_entries(NULL, 0), 0);
	free(out);
}

Test(pidfile, failed_rename_leaves_no_temp_file)
{
	char first[256];
	/* A directory in the way: rename(file, dir) fails with EISDIR. */
	cr_assert_eq(mkdir(hr_cfg.pidfile, 0755), 0);
	struct ut_capture cap;
	ut_capture_begin(&cap);
	int r = hr_pidfile_write(60);
	char *out = ut_capture_end(&cap);
	cr_assert_eq(r, -1);
	cr_assert_neq(out[0], '\0', "failure not logged");
	cr_assert_eq(dir_entries(first, sizeof first), 1, "temp file left behind");
	cr_assert_str_eq(first, "app.pid");
	free(out);
}

Test(pidfile, remove_only_when_the_file_names_the_pid)
{
	cr_assert_eq(hr_pidfile_write(1234), 0);
	hr_pidfile_remove(999);
	cr_assert_eq(access(hr_cfg.pidfile, F_OK), 0, "removed for another pid");
	hr_pidfile_remove(123);
	cr_assert_eq(access(hr_cfg.pidfile, F_OK), 0, "removed for a prefix of the pid");
	hr_pidfile_remove(12345);
	cr_assert_eq(access(hr_cfg.pidfile, F_OK), 0, "removed for a longer pid");
	hr_pidfile_remove(1234);
	cr_assert_eq(access(hr_cfg.pidfile, F_OK), -1, "not removed for its own pid");
}

Test(pidfile, remove_keeps_a_successors_file)
{
	/* The successor rewrote it: the predecessor's exit must not remove it. */
	cr_assert_eq(hr_pidfile_write(100), 0);
	cr_assert_eq(hr_pidfile_write(200), 0);
	hr_pidfile_remove(100);
	assert_file(hr_cfg.pidfile, "200\n");
}

Test(pidfile, remove_tolerates_missing_or_empty_files)
{
	hr_pidfile_remove(1); /* nothing there */
	cr_assert_eq(dir_entries(NULL, 0), 0);
	cr_assert_eq(ut_write_file(hr_cfg.pidfile, ""), 0);
	hr_pidfile_remove(0);
	cr_assert_eq(access(hr_cfg.pidfile, F_OK), 0, "empty file removed");
}

Test(pidfile, remove_noop_without_a_configured_path)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s", hr_cfg.pidfile);
	cr_assert_eq(hr_pidfile_write(61), 0);
	hr_cfg.pidfile[0] = '\0';
	hr_pidfile_remove(61);
	cr_assert_eq(access(path, F_OK), 0);
}

Test(pidfile, remove_does_not_follow_a_symlink)
{
	char target[PATH_MAX];
	in_dir(target, sizeof target, "elsewhere.pid");
	cr_assert_eq(ut_write_file(target, "62\n"), 0);
	cr_assert_eq(symlink(target, hr_cfg.pidfile), 0);
	hr_pidfile_remove(62);
	assert_file(target, "62\n");
}
