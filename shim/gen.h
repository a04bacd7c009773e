/* The generation: every process forked from one exec'd server shares this
 * region (MAP_SHARED, inherited by fork, not by exec). It holds the phase
 * all of them act on and each process's connection count. */
#ifndef HR_GEN_H
#define HR_GEN_H

#include <stdatomic.h>
#include <sys/types.h>

#pragma GCC visibility push(hidden)

enum hr_phase {
	HR_PHASE_RUNNING = 0, /* accepting */
	HR_PHASE_DRAINING,    /* handed over to a successor: not accepting */
	HR_PHASE_STOPPING,    /* graceful stop: not accepting */
};

#define HR_GEN_SLOTS 1024

/* The value the wake signal carries when the library or the keeper sends it
 * (the handler tells it from the app's own signals). */
#define HR_WAKE_MAGIC 0x48527761

#define HR_GEN_PATHS 16

struct hr_gen_slot {
	_Atomic pid_t pid;
	/* The process's start time (/proc/PID/stat, clock ticks since boot),
	 * written before pid: a PID reused by another process does not match.
	 * 0: unknown (no /proc), the PID alone then. */
	_Atomic unsigned long long start;
	_Atomic long conns;
	_Atomic long accepting; /* accept() calls under way (not yet counted) */
};

struct hr_gen {
	_Atomic int phase;
	_Atomic pid_t owner;	      /* process that owns the listeners */
	_Atomic int owner_leaving;    /* owner exits on purpose (daemonizing) */
	_Atomic int ready_done;	      /* the generation reported readiness */
	_Atomic int app_waiting;      /* the app waits for connections */
	_Atomic pid_t waiter;	      /* the process that first waited */
	_Atomic long long waited_ms;  /* when, on CLOCK_MONOTONIC */
	_Atomic int wake_fd;	      /* eventfd written once when accepting stops;
				       * made at load, so every fork has it */
	_Atomic long long upgrade_wall_ns; /* CLOCK_REALTIME when the successor started */
	/* Under a keeper, which decides readiness from these: */
	_Atomic int n_inherited;	    /* listeners passed with LISTEN_FDS */
	_Atomic int n_claimed;		    /* of those, claimed by the app */
	_Atomic long long last_claim_ms;    /* CLOCK_MONOTONIC of the last claim */
	_Atomic int drain_overdue;	    /* the drain timeout passed: idle is judged
					     * by the looser rule (idle.h) */
	/* AF_UNIX listener paths at handover: the successor's, never to unlink. */
	char unix_paths[HR_GEN_PATHS][108];
	_Atomic int n_unix_paths;
	struct hr_gen_slot slots[HR_GEN_SLOTS];
};

extern struct hr_gen *hr_gen;
extern pid_t hr_self;		     /* cached getpid(), refreshed at fork */
extern pid_t hr_parent_at_fork;	     /* the process we were forked from */
extern struct hr_gen_slot *hr_slot;  /* this process's slot, never NULL */
/* This process's number for the region's wake eventfd (it may have moved
 * out of the app's way since the region recorded it). */
extern int hr_wake_fd;

/* Maps the region: the keeper's memfd and eventfd when given (>= 0), else
 * fresh ones. */
int hr_gen_init(int region_fd, int wake_fd);
/* After fork, in the child: async-signal-safe. */
void hr_gen_after_fork_child(void);

static inline int hr_gen_phase(void)
{
	return hr_gen ? atomic_load_explicit(&hr_gen->phase, memory_order_acquire) : 0;
}

static inline int hr_gen_accepting(void)
{
	return hr_gen_phase() == HR_PHASE_RUNNING;
}

/* The phase the hooks test first, at a fixed place in the library's data
 * so that reading it is one rip-relative load. It reads HR_PHASE_STOPPING
 * until this process is steady: past readiness under a keeper (constructor
 * done, libc bound, no readiness note left, no thread of the library).
 * Then the region's first page, which holds the phase, is moved over it
 * (hr_gen_view_live), and it reads the live phase. Page-sized and
 * page-aligned: nothing else shares it. */
struct hr_gen_view {
	_Atomic int phase;
	char page_rest[4096 - sizeof(int)];
};
extern struct hr_gen_view hr_view;

/* Maps the region's first page over hr_view; 0 when done (fork children
 * inherit it). Until it is, the hooks take their general paths. */
int hr_gen_view_live(void);

/* Steady and accepting: the hooks' short paths. One compare with memory
 * and a branch on x86-64 (a compiler loads an atomic into a register
 * first); elsewhere a relaxed load. The short paths act on the phase they
 * saw; whatever must be ordered with the keeper's store reads it again
 * (hr_view_accepting). */
static inline int hr_steady_accepting(void)
{
	_Static_assert(HR_PHASE_RUNNING == 0, "the compare below is with 0");
#if defined(__x86_64__)
	__asm__ goto("cmpl $0, %0\n\tjne %l[not_steady]"
		     : /* asm goto: no outputs */
		     : "m"(hr_view.phase)
		     : "cc"
		     : not_steady);
	return 1;
not_steady:
	return 0;
#else
	return __builtin_expect(atomic_load_explicit(&hr_view.phase, memory_order_relaxed) ==
					HR_PHASE_RUNNING, 1);
#endif
}

/* The phase again, sequentially consistent (as the keeper's store), for
 * a check that must not be ordered before an atomic it follows. */
static inline int hr_view_accepting(void)
{
	return __builtin_expect(atomic_load_explicit(&hr_view.phase, memory_order_seq_cst) ==
					HR_PHASE_RUNNING, 1);
}

static inline int hr_is_owner(void)
{
	return hr_gen && atomic_load(&hr_gen->owner) == hr_self;
}

/* Inline: on every accept and close. */
static inline void hr_gen_conn_add(long delta)
{
	atomic_fetch_add_explicit(&hr_slot->conns, delta, memory_order_relaxed);
}
/* Counts a connection about to be accepted, before the phase is checked:
 * sequentially consistent, as the keeper's phase store, so either the
 * check sees the drain or the drain sees the count. */
static inline void hr_gen_conn_reserve(void)
{
	atomic_fetch_add_explicit(&hr_slot->conns, 1, memory_order_seq_cst);
}
static inline void hr_gen_accepting_add(long delta)
{
	atomic_fetch_add_explicit(&hr_slot->accepting, delta, memory_order_acq_rel);
}
/* Connections held by live processes of the generation; with_accepts adds
 * the accept() calls under way, so a drain never ends between the kernel
 * handing out a connection and the shim counting it. */
long hr_gen_count(int with_accepts);
#define hr_gen_conns() hr_gen_count(0)
/* Whether slot names a live process that is the one that claimed it. */
int hr_gen_slot_live(const struct hr_gen_slot *slot);
/* Signals every other live process of the generation (by pidfd, once its
 * start time proved it is the slot's process). */
void hr_gen_kill_others(int sig);
/* From exit(): an owner leaving while running hands its listeners to a
 * forked child (daemonizing). */
void hr_gen_note_exit(void);
/* Whether pid is alive and not a zombie. */
int hr_pid_alive(pid_t pid);

#pragma GCC visibility pop

#endif
