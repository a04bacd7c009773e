/* Unit tests for the generation (shim/gen.c). Process slots: a slot names
 * its process by PID and start time, so a PID reused by another process
 * after the slot's process died is neither counted nor signalled. The
 * phase view: the hooks' short paths run only in a steady process, and
 * stop the moment the keeper changes the phase. */
#include <criterion/criterion.h>

#include "fdtable.h"
#include "gen.h"
#include "helpers.h"
#include "libc.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t bystander = -1;

/* A process outside the generation: it only waits to be signalled. */
static void setup(void)
{
	hr_libc_init();
	hr_fdtable_init();
	cr_assert_eq(hr_gen_init(-1, -1), 0);
	bystander = fork();
	cr_assert_geq(bystander, 0);
	if (bystander == 0) {
		for (;;)
			pause();
	}
}

static void teardown(void)
{
	if (bystander > 0) { /* kill(-1) would reach every process */
		kill(bystander, SIGKILL);
		waitpid(bystander, NULL, 0);
	}
}

TestSuite(gen, .init = setup, .fini = teardown, .timeout = 20);

/* A free slot made to name pid, as its process would have claimed it,
 * with its start time given. */
static struct hr_gen_slot *slot_for(pid_t pid, unsigned long long start, long conns)
{
	for (int i = 0; i < HR_GEN_SLOTS; i++) {
		struct hr_gen_slot *s = &hr_gen->slots[i];
		if (atomic_load(&s->pid) == 0) {
			atomic_store(&s->start, start);
			atomic_store(&s->conns, conns);
			atomic_store(&s->pid, pid);
			return s;
		}
	}
	cr_assert_fail("no free slot");
	return NULL;
}

/* The start time the kernel reports for pid (field 22 of its stat). */
static unsigned long long start_of(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	char buf[1024];
	cr_assert_not_null(fgets(buf, sizeof buf, f));
	fclose(f);
	char *p = strrchr(buf, ')') + 2;
	unsigned long long v = 0;
	for (int field = 3; field < 22; field++)
		p = strchr(p, ' ') + 1;
	sscanf(p, "%llu", &v);
	return v;
}

/* Whether the bystander is still alive after the signals had time to land:
 * waitpid with a bound, no sleep. */
static int bystander_killed(void)
{
	for (int i = 0; i < 2000; i++) {
		if (waitpid(bystander, NULL, WNOHANG) == bystander) {
			bystander = -1;
			return 1;
		}
		usleep(1000);
	}
	return 0;
}

Test(gen, own_slot_names_this_process)
{
	cr_assert(hr_gen_slot_live(hr_slot));
	cr_assert_eq(atomic_load(&hr_slot->start), start_of(getpid()));
}

Test(gen, reused_pid_is_not_counted)
{
	struct hr_gen_slot *s = slot_for(bystander, start_of(bystander) + 1, 3);
	cr_assert_not(hr_gen_slot_live(s));
	cr_assert_eq(hr_gen_count(1), 0, "a stale slot's count held the drain");
}

Test(gen, reused_pid_is_not_signalled)
{
	slot_for(bystander, start_of(bystander) + 1, 1);
	hr_gen_kill_others(SIGKILL);
	cr_assert_not(bystander_killed(), "a process outside the generation was killed");
}

Test(gen, member_is_counted_and_signalled)
{
	struct hr_gen_slot *s = slot_for(bystander, start_of(bystander), 2);
	cr_assert(hr_gen_slot_live(s));
	cr_assert_eq(hr_gen_count(1), 2);
	hr_gen_kill_others(SIGKILL);
	cr_assert(bystander_killed(), "the generation's own process was not signalled");
}

/* ======== the phase view the hooks test first ======== */

static void setup_view(void)
{
	hr_libc_init();
	hr_fdtable_init();
	cr_assert_eq(ut_gen_init_region(), 0);
}

TestSuite(gen_view, .init = setup_view, .timeout = 20);

Test(gen_view, general_paths_until_the_process_is_steady)
{
	cr_assert_eq(atomic_load(&hr_gen->phase), HR_PHASE_RUNNING);
	cr_assert_not(hr_steady_accepting(), "short paths before readiness was finished");
	cr_assert_eq(hr_gen_view_live(), 0);
	cr_assert(hr_steady_accepting());
}

Test(gen_view, reads_the_phase_the_keeper_sets)
{
	cr_assert_eq(hr_gen_view_live(), 0);
	atomic_store(&hr_gen->phase, HR_PHASE_DRAINING);
	cr_assert_not(hr_steady_accepting(), "short paths while the generation drains");
	cr_assert_not(hr_view_accepting());
	atomic_store(&hr_gen->phase, HR_PHASE_RUNNING);
	cr_assert(hr_view_accepting());
}

Test(gen_view, fork_child_shares_the_live_view)
{
	cr_assert_eq(hr_gen_view_live(), 0);
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		/* Exits 0 once it sees the parent's store, 1 after 5 s. */
		for (int ms = 0; ms < 5000; ms++) {
			if (!hr_steady_accepting())
				_exit(0);
			poll(NULL, 0, 1);
		}
		_exit(1);
	}
	atomic_store(&hr_gen->phase, HR_PHASE_STOPPING);
	int status;
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the child kept its short paths after the phase changed");
}
