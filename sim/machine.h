/*
 * sim/machine.h: the simulated machine.  It joins the Unicorn engines (one
 * per task, sim/engine.h) to the kernel model (kmodel.h): guests run at
 * CPL 3 on the model's own page tables, their page faults go to the
 * model's user-fault path, their `int 0x30` system calls (workloads/abi.h)
 * to the machine's small L4-flavoured kernel, and a deterministic
 * round-robin scheduler with a time slice in simulated cycles picks the
 * next thread.  Guest instructions are counted exactly and charged by
 * class from a P6 table (sim_p6_insn_cycles, sim/p6cost.c); kernel paths
 * are charged from the model's cost table.  Same inputs, same cycles, bit
 * for bit.
 */
#ifndef KPSIM_SIM_MACHINE_H
#define KPSIM_SIM_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine.h"      /* enum sim_err: the results below */
#include "kmodel.h"
#include "sim.h"
#include "trace.h"

/* The default time slice, in cycles: 250 us at 400 MHz.  A choice, not a
 * measurement: L4 gave threads 10 ms, but the workloads are short, and a
 * shorter slice makes tasks that run together interleave within them. */
#define SIM_SLICE_DEFAULT 100000u

struct sim_machine;

/* Finds a bundled program by name for KPS_SYS_TASK_CREATE, or NULL. */
typedef const struct sim_elf *(*sim_program_finder)(void *ctx,
                                                    const char *name);

/* A measurement marker (KPS_SYS_MARKER), as it is recorded. */
struct sim_marker {
	uint32_t id;            /* the guest's marker number */
	uint64_t cycle;         /* simulated clock when it was made */
	uint64_t fault_seq;     /* fault records so far (their last seq) */
	km_task_t task;
	km_thread_t thread;
};

struct sim_machine_config {
	uint32_t frames;        /* simulated RAM in 4 KiB frames, 64 ..
	                         * SIM_MAX_FRAMES - 2 (two are the engines') */
	enum km_kmem kmem;      /* in-kernel pool or kpagers */
	const struct kp_ops *kpager; /* KM_KMEM_KPAGER: the policy */
	const char *kpager_args;     /* its "key=value,..." or NULL */
	const char *costs;      /* cost table text; NULL: the default */
	uint64_t slice;         /* time slice in cycles; 0: the default */
	uint64_t max_cycles;    /* stop a run past this clock; 0: no limit */
	FILE *out;              /* guest output (KPS_SYS_WRITE); NULL: none */
	sim_program_finder find; /* for KPS_SYS_TASK_CREATE; NULL: none */
	void *find_ctx;
	km_fault_sink sink;     /* fault records; NULL: none */
	void *sink_ctx;
	/* The trace of the run (traces/FORMAT.md), event by event, for
	 * kpsim run --record; NULL: none.  The events are checked. */
	void (*record)(void *ctx, const struct tr_event *ev);
	void *record_ctx;
	bool raw_engine;        /* benchmarks only: engines without their
	                         * block hook, so no instruction count, no
	                         * guest cycles and no time slices (a guest
	                         * runs until it traps) */
};

/* A configuration with defaults for `frames` frames. */
struct sim_machine_config sim_machine_config_default(uint32_t frames);

/*
 * Creates a machine: runs the engine self-test (and refuses, with its
 * sentence in why, an engine that does not behave as Unicorn 2.0.1 does),
 * creates the kernel model, and with KM_KMEM_KPAGER the kpager task and
 * its policy.  Returns SIM_OK and *out, or an error (SIM_EARG for a bad
 * configuration, SIM_EQUIRK, SIM_EHOST) with the reason in why and *out
 * NULL.
 */
int sim_machine_create(const struct sim_machine_config *cfg,
                       struct sim_machine **out, char *why, size_t why_len);
/* Destroys the machine and everything in it; accepts NULL. */
void sim_machine_destroy(struct sim_machine *m);

/*
 * Creates a task from a loaded image (borrowed: it must outlive the
 * machine), named `name`, with one thread that starts at the image's entry
 * with argc/argv on its stack below KPS_STACK_TOP.  Nothing is mapped yet:
 * the task's pager backs the image's pages as the task touches them.
 * Returns SIM_OK and *thread (may be NULL), or an error with the reason in
 * why: SIM_EARG for bad arguments, SIM_ESTATE when the kernel or the
 * machine is out of room for the task, an engine's error.  Nothing is left
 * behind on error.
 */
int sim_machine_spawn(struct sim_machine *m, const struct sim_elf *img,
                      const char *name, int argc, char *const argv[],
                      km_thread_t *thread, char *why, size_t why_len);

/*
 * Runs until every thread has ended.  Returns SIM_OK; SIM_ESTATE when the
 * run stopped early (every live thread blocked for good: in IPC, or in a
 * page fault for lack of kernel memory; or past max_cycles)
 * or a guest was killed (a fault its pager could not resolve, an
 * exception), with the reason in why; SIM_EUC/SIM_EHOST/SIM_EQUIRK when an
 * engine failed.  Guests killed do not stop the others: the first reason
 * is kept, and the run goes on.
 */
int sim_machine_run(struct sim_machine *m, char *why, size_t why_len);

/* Changes max_cycles (0: no limit).  A run stopped at the limit goes on
 * where it stopped when sim_machine_run is called again: between the two,
 * a test or tool may change the model (revoke kernel pages, unmap). */
void sim_machine_set_limit(struct sim_machine *m, uint64_t max_cycles);

/* Does host address p lie in one of the machine's engine reservations?
 * For a SIGSEGV handler: a fault there means an alias outlived its PTE
 * and TLB entry (engine.h, rule 3), a bug of the machine.  Reads only. */
bool sim_machine_owns(const struct sim_machine *m, const void *p);

/* The kernel model inside (for statistics, checks and tests). */
struct km *sim_machine_model(struct sim_machine *m);

/* The kpager, or KM_ROOT_KPAGER with the in-kernel pool. */
km_kpager_t sim_machine_kpager(const struct sim_machine *m);

struct sim_machine_stats {
	uint64_t cycles;        /* the simulated clock */
	uint64_t guest_insns;   /* guest instructions retired */
	uint64_t guest_cycles;  /* cycles charged for them */
	uint64_t syscalls;
	uint64_t ipcs;          /* messages delivered */
	uint64_t switches;      /* thread switches */
	uint64_t engine_runs;
	uint32_t tasks_spawned, threads_created;
	uint32_t killed;        /* threads killed by a fault or exception */
};
void sim_machine_stats(const struct sim_machine *m,
                       struct sim_machine_stats *out);

/* Markers made so far, in every run; the array is valid until the next
 * run. */
const struct sim_marker *sim_machine_markers(const struct sim_machine *m,
                                             size_t *n);

/* A task's exit status (KPS_SYS_EXIT, 0 after its last thread ended, -1
 * if killed, and false if the task never existed here or still runs). */
bool sim_machine_exit_status(const struct sim_machine *m, km_task_t task,
                             int *status);
/* The task of the thread sim_machine_spawn returned. */
km_task_t sim_machine_thread_task(const struct sim_machine *m,
                                  km_thread_t thread);
/* A task's kernel memory and faults (km_task_stats): per type and group,
 * the most pages it has held while a thread ended or this was asked
 * (threads end one by one, so the end says little); its faults as they
 * are, or were when it ended.  False for a task not spawned here. */
bool sim_machine_task_stats(const struct sim_machine *m, km_task_t task,
                            struct km_task_stats *out);

/* The i-th task spawned (0 first), as a report lists it: false past the
 * last.  Every spawn is there, in order, as in the replay of the run's
 * recording: one that failed (id 0, or its task abandoned) has ended
 * with status -1, and an id the model gave again to a later task appears
 * once for each.  name is valid until the next spawn. */
struct sim_task_info {
	km_task_t id;                   /* 0: the model created none */
	const char *name;
	bool done;                      /* ended; status is valid */
	bool kept;                      /* ended, but the model kept it */
	int status;
	struct km_task_stats st;        /* as sim_machine_task_stats */
};
bool sim_machine_task_info(const struct sim_machine *m, size_t i,
                           struct sim_task_info *out);

/* Reads (write false) or writes `len` bytes of a task's memory at `va`
 * without faulting: only pages the task has mapped (writes need them
 * writable).  For tests and tools.  SIM_OK or SIM_EARG. */
int sim_machine_access(struct sim_machine *m, km_task_t task, uint32_t va,
                       void *buf, uint32_t len, bool write);

#endif /* KPSIM_SIM_MACHINE_H */
