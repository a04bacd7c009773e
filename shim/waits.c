#include "waits.h"

#include "drain.h"
#include "listeners.h"
#include "ready.h"

#define HR_IDLE_SCAN_MS 50 /* idle connections are looked at this often */

void hr_waits_drain_step(void)
{
	/* Once per process (a fork child has its own epoll sets and threads). */
	static _Atomic pid_t stopped_in;
	static _Atomic long long next_scan_ms;
	if (atomic_exchange(&stopped_in, hr_self) != hr_self)
		hr_listeners_stop_local();
	long long now = hr_now_ms(), due = atomic_load(&next_scan_ms);
	if (now >= due && atomic_compare_exchange_strong(&next_scan_ms, &due, now + HR_IDLE_SCAN_MS)) {
		hr_listeners_drop_from_epolls();
		hr_drain_close_idle();
	}
}
