/* The app's waits (epoll, poll, select, a parked accept) under a keeper:
 * where an old generation's drain work happens, in the app's own threads,
 * so that no thread of the library runs in its processes. The keeper sets
 * the phase in the shared region and interrupts the threads it sees
 * waiting with the wake signal; the hooks absorb that EINTR, stop this
 * process accepting, close its idle connections, and wait again. */
#ifndef HR_WAITS_H
#define HR_WAITS_H

#include "gen.h"
#include "keeperlink.h"
#include "signals.h"

void hr_waits_drain_step(void);

/* On entry to every hooked wait: one load and a branch while the
 * generation accepts. */
static inline void hr_waits_enter(void)
{
	if (__builtin_expect(hr_gen_phase() != HR_PHASE_RUNNING, 0) && hr_under_keeper()) {
		hr_shim_signal_only = 0;
		hr_waits_drain_step();
	}
}

/* After a wait failed with EINTR: 1 when only the keeper's wake signal
 * interrupted it (the drain step is done; the caller waits again), 0 when
 * the app must see the EINTR. */
static inline int hr_waits_absorb(void)
{
	if (!hr_shim_signal_only || !hr_under_keeper())
		return 0;
	hr_shim_signal_only = 0;
	hr_waits_drain_step();
	return 1;
}

#endif
