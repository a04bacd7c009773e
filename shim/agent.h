/* The agent: a thread of the shim's own in each process of a generation
 * that needs one. In the owner it takes the restart and stop signals,
 * serves the control socket, starts and judges the successor, and drains;
 * in other processes (workers) it stops accepting and closes idle
 * connections when the generation stops accepting. */
#ifndef HR_AGENT_H
#define HR_AGENT_H

#include "gen.h"
#include "keeperlink.h"

#include <sys/types.h>

#pragma GCC visibility push(hidden)

void hr_agent_start_owner(void);
void hr_agent_ensure_worker_slow(void);

extern pid_t hr_agent_pid; /* the process whose agent thread runs */

/* A worker's agent, started on first need; never under a keeper (no
 * thread of the library runs in the app's processes then). */
static inline void hr_agent_ensure_worker(void)
{
	if (!hr_under_keeper() && __builtin_expect(hr_agent_pid != hr_self, 0))
		hr_agent_ensure_worker_slow();
}

/* From a signal handler: forwards sig to this process's agent. Returns 0
 * when no agent runs here. Async-signal-safe. */
int hr_agent_signal(int sig);

/* Wakes the owner's agent (from any process of the generation). */
void hr_agent_poke(void);

/* Whether this process holds listeners (set by adoption, kept by fork). */
extern int hr_holds_listeners;

void hr_agent_after_fork_child(void);

#pragma GCC visibility pop

#endif
