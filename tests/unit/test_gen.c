/* Unit tests for the generation's process slots (shim/gen.c): a slot names
 * its process by PID and start time, so a PID reused by another process
 * after the slot's process died is neither counted nor signalled. */
#include <criterion/criterion.h>

#include "fdtable.h"
#include "gen.h"
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
	cr_assert(hr_slot);
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
