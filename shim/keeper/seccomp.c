/* Servers LD_PRELOAD cannot see (static binaries, Go's raw system calls)
 * start under a seccomp filter that sends their bind() and listen() to the
 * keeper as user notifications (supervise.c answers them). Only those two
 * rare calls are filtered: a request never pays a round trip, only the
 * filter's few BPF instructions per system call.
 *
 * Which generations get it: every one with run --seccomp, none with
 * --no-seccomp; otherwise a static executable (no PT_INTERP), and every
 * generation after one whose listeners were taken from outside it. */
#include "keeper.h"

#include "../log.h"
#include "../scmrights.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "the seccomp filter is written for x86_64"
#endif

/* x86_64 only; calls of other ABIs (i386 through int 0x80, x32) pass
 * untouched, and so does everything that is not bind or listen. */
static const struct sock_filter hk_filter_code[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_bind, 2, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_listen, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
};

static const struct sock_fprog hk_filter = {
	.len = sizeof hk_filter_code / sizeof *hk_filter_code,
	.filter = (struct sock_filter *)hk_filter_code,
};

/* Async-signal-safe. Returns the notification fd, or -1 with errno.
 * WAIT_KILLABLE_RECV (5.19): once the keeper has received a call, a signal
 * to the caller (Go preempts threads with SIGURG) no longer restarts it
 * half answered; older kernels do without. */
static int hk_filter_install(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			      SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
			      &hk_filter);
	if (fd < 0 && errno == EINVAL)
		fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
				  SECCOMP_FILTER_FLAG_NEW_LISTENER, &hk_filter);
	return fd;
}

/* 0 once a child could install the filter, else the errno it got; probed
 * once, in a throw-away child, since a filter can never be removed. */
static int hk_probe_errno = -1;

static int hk_probe(void)
{
	if (hk_probe_errno >= 0)
		return hk_probe_errno;
	pid_t pid = fork();
	if (pid == 0)
		_exit(hk_filter_install() < 0 ? (errno & 0xff ? errno & 0xff : 255) : 0);
	int status = 0;
	if (pid < 0)
		hk_probe_errno = errno;
	else if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		hk_probe_errno = ECHILD;
	else
		hk_probe_errno = WEXITSTATUS(status);
	if (hk_probe_errno)
		hr_warn("seccomp user notification is unavailable (%s; kernel 5.9 or later, and a "
			"container profile that allows seccomp(2), are needed): servers the library "
			"cannot see cannot be restarted",
			strerror(hk_probe_errno));
	return hk_probe_errno;
}

/* Whether the executable has no program interpreter: a static binary (or
 * static PIE) that LD_PRELOAD never reaches. */
static bool hk_exe_is_static(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	Elf64_Ehdr eh;
	bool is_static = false;
	if (pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh &&
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64 &&
	    eh.e_phentsize == sizeof(Elf64_Phdr)) {
		is_static = true;
		for (int i = 0; i < eh.e_phnum; i++) {
			Elf64_Phdr ph;
			off_t at = (off_t)eh.e_phoff + (off_t)i * (off_t)sizeof ph;
			if (pread(fd, &ph, sizeof ph, at) != (ssize_t)sizeof ph || ph.p_type == PT_INTERP) {
				is_static = false;
				break;
			}
		}
	}
	close(fd);
	return is_static;
}

static bool hk_needs_filter(void)
{
	if (K.seccomp_mode == HK_SECCOMP_OFF)
		return false;
	return K.seccomp_mode == HK_SECCOMP_ON || K.adopted_outside || hk_exe_is_static(K.exe);
}

bool hk_seccomp_wanted(void)
{
	return hk_needs_filter() && hk_probe() == 0;
}

const char *hk_seccomp_refusal(void)
{
	static char why[200];
	if (!hk_needs_filter() || hk_probe() == 0)
		return NULL;
	snprintf(why, sizeof why,
		 "the server needs seccomp user notification for a restart, and it is unavailable "
		 "(%s)",
		 strerror(hk_probe_errno));
	return why;
}

/* In the child, last before execve: installs the filter and sends its
 * notification fd to the keeper as the channel's first datagram (the
 * errno as payload, the fd by SCM_RIGHTS when there is one). */
void hk_seccomp_child_install(int chan)
{
	int nfd = hk_filter_install();
	int err = nfd < 0 ? errno : 0;
	hr_send_with_fd(chan, &err, sizeof err, nfd);
	if (nfd >= 0)
		close(nfd);
}

/* In the keeper, once the child has exec'd: its first datagram is there. */
void hk_seccomp_receive(struct hk_gen *g, int chan)
{
	int err = 0, fd = -1;
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = &err, .iov_len = sizeof err };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = &ctl,
			      .msg_controllen = sizeof ctl };
	ssize_t n = recvmsg(chan, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof fd);
	if (fd >= 0) {
		g->supervised = true;
		g->notify_fd = fd;
		hr_debug("generation %ld starts under the seccomp filter", g->number);
		return;
	}
	hk_probe_errno = n == (ssize_t)sizeof err && err > 0 ? err : EPROTO;
	hr_warn("generation %ld runs without the seccomp filter: %s", g->number,
		strerror(hk_probe_errno));
}
