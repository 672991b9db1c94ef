/*
 * traces/replay.h: drives the kernel model with a trace's events, without
 * emulation.  For each event it makes the model call the emulated machine
 * made for it (traces/FORMAT.md, "How a replay treats events"), so that a
 * recording replays to the same fault records and cycles as its run.
 *
 * Events must come checked (tr_next, or tr_state_apply for events a
 * program makes): the replayer trusts their ids and ranges.
 */
#ifndef KPSIM_REPLAY_H
#define KPSIM_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "kmodel.h"
#include "trace.h"

struct tr_replay;

/* Called every sample_every cycles with each live task's kernel frames;
 * the task is its index for tr_replay_task. */
typedef void (*tr_sample_fn)(void *ctx, uint64_t cycle, size_t task,
                             uint32_t kframes);

struct tr_replay_config {
	uint32_t frames;                /* simulated RAM in 4 KiB frames */
	enum km_kmem kmem;              /* in-kernel pool or kpagers */
	const struct kp_ops *kpager;    /* KM_KMEM_KPAGER: the policy */
	const char *kpager_args;        /* its "key=value,..." or NULL */
	const char *costs;              /* cost table text; NULL: default */
	uint32_t kpool_frames;          /* the in-kernel pool; 0: default */
	km_fault_sink sink;             /* fault records; NULL: none */
	void *sink_ctx;
	uint64_t sample_every;          /* 0: no samples */
	tr_sample_fn sample;
	void *sample_ctx;
};

/* The defaults for `frames` frames: the pool, no sink, no samples. */
struct tr_replay_config tr_replay_config_default(uint32_t frames);

/*
 * Creates the model as the emulated machine creates it (the same
 * configuration, the kpager task first), so that the kernel's ids and
 * cycles match a recording's.  Returns 0 and *out, or -1 with the reason
 * in why (a bad configuration, a kpager that refused its arguments).
 */
int tr_replay_create(const struct tr_replay_config *cfg,
                     struct tr_replay **out, char *why, size_t why_len);
/* Accepts NULL. */
void tr_replay_destroy(struct tr_replay *r);

/*
 * Replays one event.  Returns 0 (also when the event failed as a guest's
 * request fails, or was skipped because its task had been ended); -1 when
 * the model cannot go on (it ran out of host memory, or an invariant
 * broke), with the reason in why.
 */
int tr_replay_event(struct tr_replay *r, const struct tr_event *ev,
                    char *why, size_t why_len);

/* Ends the replay: takes each live task's last kernel-memory sample and
 * peak.  Events after this are refused. */
void tr_replay_finish(struct tr_replay *r);

struct km *tr_replay_model(struct tr_replay *r);

struct tr_replay_stats {
	uint64_t events;                /* replayed, skipped included */
	uint64_t skipped;               /* of tasks ended by a failed touch,
	                                 * and held back by a thread that
	                                 * ended waiting */
	uint64_t cycles;                /* the clock */
	uint64_t guest_insns, guest_cycles;
	uint64_t syscalls, ipcs;
	uint64_t maps_failed;           /* map, grant, unmap that failed */
	uint32_t tasks, killed;         /* tasks created; ended by a fault */
	uint32_t kept;                  /* ended, but the kernel could not
	                                 * delete them (as the machine, it
	                                 * keeps them: see their why) */
	uint64_t waits;                 /* faults denied for lack of kernel
	                                 * memory, whose threads then waited
	                                 * for it */
	uint32_t waiting;               /* threads still waiting at the end
	                                 * (tr_replay_finish) */
};
void tr_replay_stats(const struct tr_replay *r, struct tr_replay_stats *out);

/* What the replay knows about one task of the trace, live or ended. */
struct tr_task_result {
	uint32_t trace_id;              /* the trace's id */
	km_task_t km_id;                /* the kernel's */
	char name[TR_NAME_MAX + 1];
	bool ended;                     /* endtask, or killed */
	bool killed;                    /* ended by a fault it could not
	                                 * survive; why says which */
	bool kept;                      /* ended, but the kernel could not
	                                 * delete it; why says why */
	uint64_t waits;                 /* its threads' waits for memory */
	int32_t status;
	char why[160];                  /* why it was killed, or kept */
	struct km_task_stats peak;      /* most kernel pages by type and
	                                 * group, threads, mappings; faults */
	uint64_t cycles;                /* clock spent on its events */
	uint64_t kcycles;               /* of which in its kernel faults */
	uint64_t first, last;           /* the clock at its first and last
	                                 * event */
	uint32_t kframes_peak;          /* kernel frames at most (exact) */
	uint64_t kframes_sum;           /* sum over samples (mean: / samples) */
	uint64_t samples;               /* samples taken while it lived */
};

/* Tasks in the order the trace created them; NULL past the end. */
const struct tr_task_result *tr_replay_task(const struct tr_replay *r,
                                            size_t i);

/* A marker, as kpsim run reports it. */
struct tr_marker {
	uint32_t id;
	uint64_t cycle;
	uint64_t fault_seq;             /* fault records before it */
	km_task_t task;                 /* the kernel's ids */
	km_thread_t thread;
};
const struct tr_marker *tr_replay_markers(const struct tr_replay *r,
                                          size_t *n);

#endif /* KPSIM_REPLAY_H */
