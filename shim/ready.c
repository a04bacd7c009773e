#include "ready.h"

#include "agent.h"
#include "gen.h"
#include "inherit.h"
#include "keeperlink.h"
#include "log.h"

#include <stdlib.h>
#include <time.h>

_Atomic int hr_ready_pending;
static _Atomic long long hr_last_claim_ms;

long long hr_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Under a keeper, what readiness means inside each process, done by the
 * first wait that sees the keeper declared it: nothing left for the app's
 * children to misread, inherited listeners the app did not take closed.
 * Then the hooks' short paths go live (gen.h). */
static void hr_ready_finish_local(void)
{
	if (!hr_under_keeper())
		return;
	hr_inherit_close_unclaimed();
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (hr_gen_view_live() < 0)
		hr_debug("the hooks keep their general paths (the phase view is not mapped)");
}

void hr_ready_waiting_slow(void)
{
	if (!hr_gen || atomic_load(&hr_gen->ready_done)) {
		if (atomic_exchange(&hr_ready_pending, 0))
			hr_ready_finish_local();
		return;
	}
	if (!atomic_load(&hr_gen->app_waiting)) {
		pid_t none = 0;
		if (atomic_compare_exchange_strong(&hr_gen->waiter, &none, hr_self)) {
			atomic_store(&hr_gen->waited_ms, hr_now_ms());
			atomic_store(&hr_gen->app_waiting, 1);
			hr_debug("the app waits for connections");
			hr_agent_poke();
		}
	}
}

void hr_ready_note_claim(void)
{
	long long now = hr_now_ms();
	atomic_store(&hr_last_claim_ms, now);
	if (hr_gen) {
		atomic_fetch_add(&hr_gen->n_claimed, 1);
		atomic_store(&hr_gen->last_claim_ms, now);
	}
	hr_agent_poke();
}

long long hr_ready_last_claim_ms(void)
{
	return atomic_load(&hr_last_claim_ms);
}
