/*
 * sim/machine_int.h: the machine's private state, shared by machine.c
 * (tasks, the alias shadow, the scheduler, page faults) and syscall.c (the
 * system calls and IPC).  Nothing outside sim/ includes it.
 */
#ifndef KPSIM_SIM_MACHINE_INT_H
#define KPSIM_SIM_MACHINE_INT_H

#include "engine.h"
#include "machine.h"

#define USER_PDES 768u          /* page tables below KM_USER_TOP */
#define EV_CAP 64u              /* PTE changes queued per task before a
                                 * full resync is cheaper */
#define LIVE_TASKS_MAX 128u     /* engines at once: each costs the host
                                 * about 3.5 MB and 5 GiB of address space
                                 * (UNICORN-NOTES), so a task-creating
                                 * guest cannot exhaust the host */

/* Alias shadow entry of one user page: what the engine's host alias is. */
#define SH_ALIASED 0x1u         /* an alias exists */
#define SH_WRITE 0x2u           /* it is writable */
#define SH_EVER 0x4u            /* the page was aliased once: code may be
                                 * translated for it */
#define SH_PFN_SHIFT 3

/* A range of PTEs the model changed, not yet applied to the engine. */
struct pte_event {
	uint32_t va;
	uint32_t pages;
	bool removed;
};

struct mtask {
	bool live;                      /* has an engine and threads */
	bool done;                      /* ended: status is valid */
	bool kept;                      /* ended, but km_task_destroy refused:
	                                 * the model still holds it */
	int status;
	char name[32];
	const struct sim_elf *img;      /* borrowed; NULL: no image */
	struct sim_engine *e;
	uint32_t cr3;                   /* what the engine has loaded */
	uint32_t *shadow[USER_PDES];    /* per PDE, 1024 entries, or NULL */
	struct pte_event ev[EV_CAP];
	uint32_t nev;
	bool resync;                    /* too many events: check everything */
	uint32_t nthreads;
	struct km_task_stats final;     /* its most kernel memory (by type and
	                                 * group), threads and mappings, and its
	                                 * faults when last looked at */
	size_t spawn_seq;               /* its entry in sim_machine.spawned */
};

enum mthread_state {
	MT_FREE = 0,
	MT_READY,                       /* runnable (queued or running) */
	MT_SENDING,                     /* blocked in a send phase */
	MT_RECEIVING,                   /* blocked in a receive phase */
	MT_WAITMEM                      /* in a page fault denied for lack
	                                 * of kernel memory: it is retried
	                                 * when memory may have come free */
};

struct mthread {
	enum mthread_state st;
	km_task_t task;
	struct sim_regs regs;
	bool queued;                    /* in the run queue */
	/* A pending IPC (its send phase is blocked, or it waits to receive). */
	uint32_t to, from;              /* partner thread, KPS_ANY, or 0 */
	uint32_t w0, w1, item, window;  /* words, item fpage, receive window */
	uint64_t since;                 /* when it blocked: FIFO among senders */
	/* Guards against a fault the model resolved that the engine repeats. */
	uint32_t fault_eip, fault_cr2, fault_repeat;
	uint32_t wait_va, wait_access;  /* MT_WAITMEM: the fault */
};

struct sim_machine {
	struct sim_machine_config cfg;
	struct km *km;
	km_task_t kpager_task;
	km_kpager_t kpager;
	struct sim_engine_config ecfg;
	uint32_t max_tasks, max_threads;
	uint32_t live_tasks;            /* tasks with an engine now */
	struct mtask *task;             /* [max_tasks], by km task id */
	/* Every task spawned, in spawn order: the model reuses ended tasks'
	 * ids, so a task whose slot in `task` went to a later one keeps here
	 * what the report needs of it; the others are read from `task`. */
	struct mtask_seen {
		km_task_t id;
		bool archived;          /* its slot was cleared or went to a
		                         * later task: the rest is the task
		                         * as it ended (id 0: never created) */
		bool done, kept;
		int status;
		char name[32];
		struct km_task_stats final;
	} *spawned;
	size_t nspawned, spawned_cap;
	struct mthread *thread;         /* [max_threads], by km thread id */
	km_thread_t *rq;                /* run queue: a ring of max_threads */
	uint32_t rq_head, rq_len;
	struct sim_marker *mark;
	size_t nmark, mark_cap;
	uint64_t last_seq;              /* the last fault record's seq */
	km_task_t fresh_task;           /* the last user fault the pager */
	uint32_t fresh_va;              /* resolved with a fresh frame */
	uint64_t block_seq;             /* orders blocked senders */
	bool yielded;                   /* the running thread gave up its slice */
	bool retrying;                  /* in sim_m_retry_waiting */
	uint32_t waiting;               /* threads in MT_WAITMEM */
	km_thread_t current;            /* the running thread, or 0 */
	struct sim_machine_stats st;
	/* User work not yet recorded: it goes with the next event. */
	km_thread_t rec_th;
	uint64_t rec_insns, rec_cycles;
	int fatal;                      /* an engine or host failure: stop */
	char why[320];                  /* the first reason a run went wrong */
};

/* machine.c */
void sim_m_note(struct sim_machine *m, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void sim_m_wake(struct sim_machine *m, km_thread_t th);
void sim_m_kill_task(struct sim_machine *m, km_task_t task, int status);
void sim_m_exit_thread(struct sim_machine *m, km_thread_t th);
void sim_m_charge(struct sim_machine *m, enum km_cost c);
int sim_m_resolve(struct sim_machine *m, km_thread_t th, uint32_t va,
                  unsigned access);
void sim_m_retry_waiting(struct sim_machine *m);
int sim_m_read_guest(struct sim_machine *m, km_thread_t th, uint32_t va,
                     void *buf, uint32_t len);
int sim_m_thread_create(struct sim_machine *m, km_thread_t parent,
                        uint32_t eip, uint32_t esp, uint32_t arg,
                        km_thread_t *th);
void sim_m_record(struct sim_machine *m, const struct tr_event *ev);
void sim_m_record_ids(struct sim_machine *m, enum tr_kind kind, uint32_t a,
                      uint32_t b, uint32_t id);
void sim_m_record_user(struct sim_machine *m, km_thread_t th,
                       uint64_t insns, uint64_t cycles);
int sim_m_spawn_args(struct sim_machine *m, const char *cmdline,
                     km_thread_t *thread, char *why, size_t why_len);

/* syscall.c */
void sim_m_syscall(struct sim_machine *m, km_thread_t th);
void sim_m_ipc_gone(struct sim_machine *m, km_thread_t dead);

#endif /* KPSIM_SIM_MACHINE_INT_H */
