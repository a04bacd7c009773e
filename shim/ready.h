/* Readiness of a generation: it has taken its listeners and the app waits
 * for connections. Hooks report the app's waits here. */
#ifndef HR_READY_H
#define HR_READY_H

#include <stdatomic.h>

#pragma GCC visibility push(hidden)

/* Set until this process finished readiness (ready.c); the general paths
 * test it, the short paths (gen.h) run only once it is done. */
extern _Atomic int hr_ready_pending;

void hr_ready_waiting_slow(void);

static inline void hr_ready_note_waiting(void)
{
	if (atomic_load_explicit(&hr_ready_pending, memory_order_relaxed))
		hr_ready_waiting_slow();
}

/* An inherited listener was claimed (restarts the settle delay). */
void hr_ready_note_claim(void);

/* CLOCK_MONOTONIC in milliseconds: comparable across the generation's
 * processes (the readiness times in the shared region use it). */
long long hr_now_ms(void);

/* Milliseconds on CLOCK_MONOTONIC of the last claim, 0 if none. */
long long hr_ready_last_claim_ms(void);

#pragma GCC visibility pop

#endif
