/*
 * traces/replay.c: the replayer.  Each event becomes the model call the
 * emulated machine makes for it (sim/machine.c, sim/syscall.c), in the
 * same order and with the same charges, so that a recording replays to the
 * same fault records and cycles.  The trace's ids are mapped to the
 * kernel's as tasks and threads are created.
 *
 * A task whose thread takes a fault nobody can resolve ends as the machine
 * ends it: its threads in the kernel's id order, then the task; its later
 * events are skipped (a recording made under the same configuration holds
 * exactly those ends, which are then skipped too).  A fault denied for
 * lack of kernel memory blocks its thread for good instead, as on the
 * machine: the thread waits in the fault, its task keeping what it holds,
 * and the fault is retried, longest waiting first, whenever memory may
 * have come free: after a thread or task ended, an unmap, a timer
 * interrupt (the machine does the same; retries are not in traces).  The
 * waiting thread's own events are held back meanwhile and replayed once
 * its fault is resolved: it runs late, as it would have.  Its end and its
 * task's come when the trace says.
 */
#include "replay.h"
#include "pagers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rthread {
	km_thread_t km;         /* 0: not live in the kernel */
	uint32_t task;          /* the trace's task id */
	bool in_call;           /* between a replayed syscall and sysret */
	bool waiting;           /* in a fault denied for lack of memory */
	uint8_t wait_access;
	uint32_t wait_va;
	struct tr_event *q;     /* its events while it waits, in order */
	size_t qhead, qlen, qcap;
};

struct rtask {
	km_task_t km;           /* 0: not live in the kernel */
	uint32_t res;           /* index in results + 1, or 0 */
};

/* Events a waiting thread may hold back before later ones are dropped. */
#define QUEUE_MAX (1u << 20)

struct tr_replay {
	struct tr_replay_config cfg;
	struct km *km;
	km_task_t kpager_task;
	km_kpager_t kpager;
	uint32_t max_tasks, max_threads;
	struct rthread *th;             /* [TR_ID_MAX + 1], by trace id */
	struct rtask *tk;               /* [TR_ID_MAX + 1], by trace id */
	uint32_t *trace_thread;         /* [max_threads], by kernel id */
	uint32_t *task_res;             /* [max_tasks]: results index + 1 */
	struct tr_task_result *res;
	size_t nres, res_cap;
	struct tr_marker *mark;
	size_t nmark, mark_cap;
	uint64_t last_seq, next_sample;
	/* Tasks whose kernel memory changed during the event (their peaks
	 * are taken after it); overflow: all of them. */
	km_task_t changed[8];
	uint32_t nchanged;
	struct tr_replay_stats st;
	uint32_t *waitq;                /* waiting threads, longest first */
	size_t nwait, waitcap;
	bool retrying;                  /* no retries from inside retries */
	uint64_t diverted;              /* cycles of retries, charged to the
	                                 * waiting threads' tasks instead of
	                                 * the event that triggered them */
	bool finished, oom;
};

struct tr_replay_config tr_replay_config_default(uint32_t frames)
{
	struct tr_replay_config c;

	memset(&c, 0, sizeof c);
	c.frames = frames;
	c.kmem = KM_KMEM_POOL;
	c.kpager = &kp_fcfs_ops;
	return c;
}

static bool grow_array(void **v, size_t *cap, size_t n, size_t size)
{
	void *p;
	size_t c;

	if (n < *cap)
		return true;
	c = *cap ? 2 * *cap : 16;
	if ((p = realloc(*v, c * size)) == NULL)
		return false;
	*v = p;
	*cap = c;
	return true;
}

/* ---- Accounting ------------------------------------------------------------ */

static struct tr_task_result *result_of_km(struct tr_replay *r, km_task_t t)
{
	return t < r->max_tasks && r->task_res[t] ? &r->res[r->task_res[t] - 1]
	                                          : NULL;
}

static void on_fault(void *ctx, const struct km_fault_rec *rec)
{
	struct tr_replay *r = ctx;
	struct tr_task_result *res;

	if (rec->seq > r->last_seq)
		r->last_seq = rec->seq;
	if (rec->kind != KM_FK_USER && (res = result_of_km(r, rec->task))) {
		res->kcycles += rec->cycles;
		if (r->nchanged <= 8) {
			uint32_t i = 0;

			while (i < r->nchanged && r->changed[i] != rec->task)
				i++;
			if (i == r->nchanged && r->nchanged++ < 8)
				r->changed[i] = rec->task;
		}
	}
	if (r->cfg.sink != NULL)
		r->cfg.sink(r->cfg.sink_ctx, rec);
}

/* Folds the task's kernel memory now into its peak (as the machine does
 * when a thread ends, and when it reports). */
static void note_peak(struct tr_replay *r, struct tr_task_result *res)
{
	struct km_task_stats now;
	struct km_task_stats *p = &res->peak;

	if (km_task_stats(r->km, res->km_id, &now) != KM_OK)
		return;
	for (int i = 0; i < KM_KT_COUNT; i++)
		if (now.pages[i] > p->pages[i])
			p->pages[i] = now.pages[i];
	for (int i = 0; i < KM_KG_COUNT; i++)
		if (now.group[i] > p->group[i])
			p->group[i] = now.group[i];
	if (now.mappings > p->mappings)
		p->mappings = now.mappings;
	if (now.threads > p->threads)
		p->threads = now.threads;
	p->kfaults = now.kfaults;
	p->ufaults = now.ufaults;
}

static uint32_t kernel_frames(struct tr_replay *r, km_task_t t)
{
	struct km_task_stats s;
	uint32_t n = 0;

	if (km_task_stats(r->km, t, &s) != KM_OK)
		return 0;
	for (int i = 0; i < KM_KT_COUNT; i++)
		n += s.pages[i];
	return n;
}

/* Takes the samples whose time has come: `times` sample points passed
 * since the last (a long event may pass several). */
static void sample(struct tr_replay *r, uint64_t times)
{
	uint64_t at = r->next_sample + (times - 1) * r->cfg.sample_every;

	for (size_t i = 0; i < r->nres; i++) {
		struct tr_task_result *res = &r->res[i];
		uint32_t k;

		if (res->ended)
			continue;
		k = kernel_frames(r, res->km_id);
		res->kframes_sum += (uint64_t)k * times;
		res->samples += times;
		if (k > res->kframes_peak)
			res->kframes_peak = k;
		note_peak(r, res);
		if (r->cfg.sample != NULL)
			r->cfg.sample(r->cfg.sample_ctx, at, i, k);
	}
	r->next_sample = at + r->cfg.sample_every;
}

/* After an event with kernel faults: the kernel frames of the tasks they
 * were for, at their most. */
static void peak_of(struct tr_replay *r, struct tr_task_result *res)
{
	uint32_t k;

	if (res != NULL && !res->ended &&
	    (k = kernel_frames(r, res->km_id)) > res->kframes_peak)
		res->kframes_peak = k;
}

static void take_peaks(struct tr_replay *r)
{
	if (r->nchanged <= 8) {
		for (uint32_t i = 0; i < r->nchanged; i++)
			peak_of(r, result_of_km(r, r->changed[i]));
	} else {
		for (size_t i = 0; i < r->nres; i++)
			peak_of(r, &r->res[i]);
	}
	r->nchanged = 0;
}

static void charge(struct tr_replay *r, enum km_cost c)
{
	km_advance(r->km, km_cost_cycles(r->km, c));
}

/* ---- Creation ---------------------------------------------------------------- */

static int create_kpager(struct tr_replay *r, char *why, size_t why_len)
{
	int err;

	if (r->cfg.kmem != KM_KMEM_KPAGER)
		return 0;
	err = kp_start(r->km, r->cfg.kpager, r->cfg.kpager_args,
	               &r->kpager_task, &r->kpager, why, why_len);
	return err == KM_OK ? 0 : -1;
}

int tr_replay_create(const struct tr_replay_config *cfg,
                     struct tr_replay **out, char *why, size_t why_len)
{
	struct tr_replay *r = calloc(1, sizeof *r);
	struct km_config kc = km_config_default(cfg->frames);

	*out = NULL;
	why[0] = '\0';
	if (r == NULL) {
		snprintf(why, why_len, "out of host memory");
		return -1;
	}
	r->cfg = *cfg;
	/* As the machine configures it (sim/machine.c, create_model). */
	kc.kmem = cfg->kmem;
	kc.costs = cfg->costs;
	if (cfg->kpool_frames != 0)
		kc.kpool_frames = cfg->kpool_frames;
	kc.key_seed = 1;
	kc.phys_base = 0xC0000000u;     /* SIM_PHYS_BASE_DEFAULT */
	kc.no_user_data = true;         /* no program runs: nobody reads */
	if (km_create(&kc, &r->km, why, why_len) != KM_OK) {
		if (why[0] == '\0')
			snprintf(why, why_len, "the kernel model cannot be "
			         "created");
		free(r);
		return -1;
	}
	r->max_tasks = kc.max_tasks;
	r->max_threads = kc.max_threads;
	r->th = calloc(TR_ID_MAX + 1, sizeof *r->th);
	r->tk = calloc(TR_ID_MAX + 1, sizeof *r->tk);
	r->trace_thread = calloc(r->max_threads, sizeof *r->trace_thread);
	r->task_res = calloc(r->max_tasks, sizeof *r->task_res);
	if (!r->th || !r->tk || !r->trace_thread || !r->task_res) {
		snprintf(why, why_len, "out of host memory");
		tr_replay_destroy(r);
		return -1;
	}
	km_set_fault_sink(r->km, on_fault, r);
	if (create_kpager(r, why, why_len) != 0) {
		tr_replay_destroy(r);
		return -1;
	}
	r->next_sample = cfg->sample_every;
	*out = r;
	return 0;
}

void tr_replay_destroy(struct tr_replay *r)
{
	if (r == NULL)
		return;
	km_destroy(r->km);
	for (uint32_t i = 0; r->th != NULL && i <= TR_ID_MAX; i++)
		free(r->th[i].q);
	free(r->th);
	free(r->tk);
	free(r->trace_thread);
	free(r->task_res);
	free(r->waitq);
	free(r->res);
	free(r->mark);
	free(r);
}

struct km *tr_replay_model(struct tr_replay *r)
{
	return r->km;
}

void tr_replay_stats(const struct tr_replay *r, struct tr_replay_stats *out)
{
	*out = r->st;
	out->cycles = km_now(r->km);
}

const struct tr_task_result *tr_replay_task(const struct tr_replay *r,
                                            size_t i)
{
	return i < r->nres ? &r->res[i] : NULL;
}

const struct tr_marker *tr_replay_markers(const struct tr_replay *r,
                                          size_t *n)
{
	*n = r->nmark;
	return r->mark;
}

/* ---- Tasks and threads ---------------------------------------------------------- */

static struct tr_task_result *new_result(struct tr_replay *r,
                                         const struct tr_event *ev)
{
	struct tr_task_result *res;

	if (r->nres == r->res_cap) {
		size_t cap = r->res_cap ? 2 * r->res_cap : 64;
		struct tr_task_result *n = realloc(r->res, cap * sizeof *n);

		if (n == NULL)
			return NULL;
		r->res = n;
		r->res_cap = cap;
	}
	res = &r->res[r->nres++];
	memset(res, 0, sizeof *res);
	res->trace_id = ev->a;
	snprintf(res->name, sizeof res->name, "%s", ev->name);
	res->first = km_now(r->km);
	r->tk[ev->a].res = (uint32_t)r->nres;
	r->st.tasks++;
	return res;
}

static struct tr_task_result *result_of(struct tr_replay *r, uint32_t task)
{
	return r->tk[task].res ? &r->res[r->tk[task].res - 1] : NULL;
}

/* ---- Threads waiting for kernel memory --------------------------------------------- */

static int process(struct tr_replay *r, const struct tr_event *ev,
                   char *why, size_t why_len);
static void retry_waiting(struct tr_replay *r);
static void end_task(struct tr_replay *r, uint32_t task, int32_t status,
                     bool killed, const char *why);

static void start_waiting(struct tr_replay *r, uint32_t th, uint32_t va,
                          uint8_t access)
{
	struct rthread *t = &r->th[th];
	struct tr_task_result *res = result_of(r, t->task);

	if (!grow_array((void **)&r->waitq, &r->waitcap, r->nwait,
	                sizeof *r->waitq)) {
		r->oom = true;
		return;
	}
	t->waiting = true;
	t->wait_va = va;
	t->wait_access = access;
	r->waitq[r->nwait++] = th;
	r->st.waits++;
	if (res != NULL)
		res->waits++;
}

static void stop_waiting(struct tr_replay *r, uint32_t th)
{
	size_t i = 0;

	while (i < r->nwait && r->waitq[i] != th)
		i++;
	if (i < r->nwait) {
		memmove(&r->waitq[i], &r->waitq[i + 1],
		        (r->nwait - i - 1) * sizeof *r->waitq);
		r->nwait--;
	}
	r->th[th].waiting = false;
}

/* Holds back an event of a waiting thread. */
static void hold(struct tr_replay *r, struct rthread *t,
                 const struct tr_event *ev)
{
	if (t->qhead == t->qlen)
		t->qhead = t->qlen = 0;
	if (t->qlen - t->qhead >= QUEUE_MAX) {
		r->st.skipped++;
		return;
	}
	if (!grow_array((void **)&t->q, &t->qcap, t->qlen, sizeof *t->q)) {
		r->oom = true;
		return;
	}
	t->q[t->qlen++] = *ev;
}

/* Replays what a thread held back while it waited, until it waits again. */
static void release(struct tr_replay *r, uint32_t th)
{
	struct rthread *t = &r->th[th];
	char why[64];

	while (!t->waiting && t->km != 0 && t->qhead < t->qlen) {
		struct tr_event ev = t->q[t->qhead++];

		if (process(r, &ev, why, sizeof why) != 0)
			r->oom = true;
	}
}

/* As the machine's sim_m_retry_waiting: each waiting thread's fault once,
 * longest waiting first; not from inside a retry. */
static void retry_waiting(struct tr_replay *r)
{
	size_t n = r->nwait;
	uint32_t *snap;

	if (r->retrying || n == 0)
		return;
	if ((snap = malloc(n * sizeof *snap)) == NULL) {
		r->oom = true;
		return;
	}
	memcpy(snap, r->waitq, n * sizeof *snap);
	r->retrying = true;
	for (size_t i = 0; i < n; i++) {
		struct rthread *t = &r->th[snap[i]];
		char why[140];
		int err;

		uint64_t d0 = km_now(r->km);
		struct tr_task_result *res;

		if (!t->waiting)
			continue;
		err = km_touch(r->km, t->km, t->wait_va, t->wait_access);
		/* The retry is the waiting task's work, not the trigger's. */
		if ((res = result_of(r, t->task)) != NULL)
			res->cycles += km_now(r->km) - d0;
		if (err == KM_OK) {
			stop_waiting(r, snap[i]);
			release(r, snap[i]);
		} else if (err != KM_ENOMEM && err != KM_EDENIED) {
			snprintf(why, sizeof why, "retried fault at 0x%08x: %s",
			         t->wait_va, km_strerror(err));
			end_task(r, t->task, -1, true, why);
		}
		r->diverted += km_now(r->km) - d0;
	}
	r->retrying = false;
	free(snap);
}

static void end_thread(struct tr_replay *r, uint32_t th)
{
	struct rthread *t = &r->th[th];
	struct tr_task_result *res = result_of(r, t->task);

	if (t->km == 0)
		return;
	if (t->waiting)
		stop_waiting(r, th);
	r->st.skipped += t->qlen - t->qhead;    /* never replayed */
	t->qhead = t->qlen = 0;
	if (res != NULL)
		note_peak(r, res);
	km_thread_destroy(r->km, t->km);
	r->trace_thread[t->km] = 0;
	t->km = 0;
	retry_waiting(r);
}

/* Ends task `task` in the kernel: its threads in the kernel's id order
 * (as the machine does), then the task. */
static void end_task(struct tr_replay *r, uint32_t task, int32_t status,
                     bool killed, const char *why)
{
	struct rtask *k = &r->tk[task];
	struct tr_task_result *res = result_of(r, task);
	km_thread_t few[16], *ids = few;
	uint32_t n;
	int err;

	if (k->km == 0)
		return;
	/* The list is the call's own: ending a thread retries waiting ones,
	 * which may end another task meanwhile. */
	n = km_task_threads(r->km, k->km, few, 16);
	if (n > 16) {
		if ((ids = malloc(n * sizeof *ids)) == NULL) {
			r->oom = true;
			return;
		}
		n = km_task_threads(r->km, k->km, ids, n);
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t th = r->trace_thread[ids[i]];

		if (th != 0 && r->th[th].task == task)
			end_thread(r, th);
	}
	if (ids != few)
		free(ids);
	if (res != NULL) {
		note_peak(r, res);
		res->ended = true;
		res->killed = killed;
		res->status = status;
		if (why != NULL)
			snprintf(res->why, sizeof res->why, "%s", why);
	}
	/* The kernel may refuse (a kpager that will not give back what the
	 * deletion needs, a task still paging others' threads): it keeps
	 * the task, as the machine does, and the result says so. */
	if ((err = km_task_destroy(r->km, k->km)) != KM_OK) {
		r->st.kept++;
		if (res != NULL) {
			res->kept = true;
			if (res->why[0] == '\0')
				snprintf(res->why, sizeof res->why, "ended, but "
				         "the kernel kept it: %s",
				         km_strerror(err));
		}
	}
	r->task_res[k->km] = 0;
	k->km = 0;
	if (killed)
		r->st.killed++;
	retry_waiting(r);
}

static int ev_task(struct tr_replay *r, const struct tr_event *ev)
{
	struct tr_task_result *res = new_result(r, ev);
	km_task_t id;
	int err;

	if (res == NULL)
		return -1;
	err = km_task_create(r->km, r->kpager, &id);
	if (err != KM_OK) {
		res->ended = res->killed = true;
		res->status = -1;
		snprintf(res->why, sizeof res->why, "not created: %s",
		         km_strerror(err));
		r->st.killed++;
		return 0;
	}
	res->km_id = id;
	r->tk[ev->a].km = id;
	r->task_res[id] = r->tk[ev->a].res;
	return 0;
}

static void ev_thread(struct tr_replay *r, const struct tr_event *ev)
{
	struct rthread *t = &r->th[ev->a];
	km_thread_t id;

	t->task = ev->b;
	t->in_call = false;
	t->km = 0;
	if (r->tk[ev->b].km == 0 ||
	    km_thread_create(r->km, r->tk[ev->b].km, 0, &id) != KM_OK)
		return;         /* its events are skipped */
	t->km = id;
	r->trace_thread[id] = ev->a;
}

/* Does the PTE already allow the access (so the MMU would not fault)? */
static bool pte_allows(struct tr_replay *r, km_task_t task, uint32_t va,
                       unsigned access)
{
	uint32_t pte = km_pte(r->km, task, va);

	return (pte & KM_PTE_P) && (access != TR_ACC_WRITE ||
	                            (pte & KM_PTE_RW));
}

static void ev_touch(struct tr_replay *r, const struct tr_event *ev)
{
	struct rthread *t = &r->th[ev->a];
	km_task_t task = r->tk[t->task].km;
	char why[140];
	int err;

	km_advance(r->km, ev->cycles);
	r->st.guest_insns += ev->insns;
	r->st.guest_cycles += ev->cycles;
	if (pte_allows(r, task, ev->va, ev->access))
		return;
	err = km_touch(r->km, t->km, ev->va, ev->access);
	if (err == KM_OK || t->in_call)
		return;         /* in its own system call, only the call fails */
	snprintf(why, sizeof why, "%s of 0x%08x: %s", ev->access ==
	         TR_ACC_WRITE ? "write" : ev->access == TR_ACC_EXEC ?
	         "fetch" : "read", ev->va, km_strerror(err));
	if (err == KM_ENOMEM || err == KM_EDENIED) {
		start_waiting(r, ev->a, ev->va, ev->access);
		return;
	}
	end_task(r, t->task, -1, true, why);
}

static int ev_marker(struct tr_replay *r, const struct tr_event *ev)
{
	struct rthread *t = &r->th[ev->a];

	if (r->nmark == r->mark_cap) {
		size_t cap = r->mark_cap ? 2 * r->mark_cap : 16;
		struct tr_marker *n = realloc(r->mark, cap * sizeof *n);

		if (n == NULL)
			return -1;
		r->mark = n;
		r->mark_cap = cap;
	}
	r->mark[r->nmark++] = (struct tr_marker){
		.id = ev->id, .cycle = km_now(r->km), .fault_seq = r->last_seq,
		.task = r->tk[t->task].km, .thread = t->km };
	return 0;
}

/* ---- Events -------------------------------------------------------------------- */

/* Is the event's subject gone from the kernel (its task ended by a fault,
 * or never created)?  Those events are skipped. */
static bool gone(const struct tr_replay *r, const struct tr_event *ev)
{
	switch (ev->kind) {
	case TR_TASK: case TR_THREAD:
		return false;
	case TR_ENDTASK: case TR_UNMAP:
		return r->tk[ev->a].km == 0;
	case TR_ENDTHREAD:      /* waiting threads end when the trace says */
		return r->th[ev->a].km == 0;
	case TR_MAP: case TR_GRANT:
		return r->tk[ev->a].km == 0 || r->tk[ev->b].km == 0;
	case TR_IPC:
		return r->th[ev->a].km == 0 || r->th[ev->b].km == 0;
	case TR_SYSRET:         /* charged even if the call ended the thread */
		return !r->th[ev->a].in_call;
	default:
		return r->th[ev->a].km == 0;
	}
}

/* The default pager's provisioning so far: its time, not the faulting
 * task's, though it happens inside that task's fault. */
static uint64_t pager_cycles(const struct tr_replay *r)
{
	return km_pager_cycles(r->km);
}

/* The trace task an event is charged to. */
static uint32_t owner(const struct tr_replay *r, const struct tr_event *ev)
{
	switch (ev->kind) {
	case TR_TASK: case TR_ENDTASK: case TR_MAP: case TR_GRANT:
	case TR_UNMAP:
		return ev->a;
	case TR_THREAD:
		return ev->b;
	default:
		return r->th[ev->a].task;
	}
}

/* The waiting thread an event belongs to, if it must be held back. */
static struct rthread *held_by(struct tr_replay *r, const struct tr_event *ev)
{
	switch (ev->kind) {
	case TR_USER: case TR_TOUCH: case TR_SYSCALL: case TR_SYSRET:
	case TR_TIMER: case TR_MARKER:
		return r->th[ev->a].waiting ? &r->th[ev->a] : NULL;
	case TR_IPC:
		return r->th[ev->a].waiting ? &r->th[ev->a] :
		       r->th[ev->b].waiting ? &r->th[ev->b] : NULL;
	default:
		return NULL;
	}
}

int tr_replay_event(struct tr_replay *r, const struct tr_event *ev,
                    char *why, size_t why_len)
{
	struct rthread *t;

	if (r->finished) {
		snprintf(why, why_len, "the replay has finished");
		return -1;
	}
	r->st.events++;
	/* The events from a syscall to its sysret are what the call did (a
	 * run records them in one go, sim/machine.c): the model's work for
	 * them is for the calling thread, in the trace's order, whether an
	 * event is held or skipped. */
	if (ev->kind == TR_SYSCALL)
		km_syscall_begin(r->km, r->th[ev->a].km);
	if ((t = held_by(r, ev)) != NULL)
		hold(r, t, ev);
	else if (process(r, ev, why, why_len) != 0)
		return -1;
	if (ev->kind == TR_SYSRET)
		km_syscall_end(r->km);
	if (r->oom) {
		snprintf(why, why_len, "out of host memory");
		return -1;
	}
	return 0;
}

static int process(struct tr_replay *r, const struct tr_event *ev,
                   char *why, size_t why_len)
{
	uint64_t t0 = km_now(r->km), div0 = r->diverted + pager_cycles(r), now;
	struct tr_task_result *res;
	uint32_t pages = 0;
	int err = 0;

	if (gone(r, ev)) {
		r->st.skipped++;
		if (ev->kind == TR_ENDTHREAD)
			r->th[ev->a].in_call = false;
		return 0;
	}
	switch (ev->kind) {
	case TR_TASK:
		err = ev_task(r, ev);
		break;
	case TR_ENDTASK:
		end_task(r, ev->a, ev->status, false, NULL);
		break;
	case TR_THREAD:
		ev_thread(r, ev);
		break;
	case TR_ENDTHREAD:
		end_thread(r, ev->a);
		break;
	case TR_USER:
		km_advance(r->km, ev->cycles);
		r->st.guest_insns += ev->insns;
		r->st.guest_cycles += ev->cycles;
		break;
	case TR_TOUCH:
		ev_touch(r, ev);
		break;
	case TR_SYSCALL:
		r->th[ev->a].in_call = true;
		r->st.syscalls++;
		charge(r, KM_C_TRAP_ENTRY);
		break;
	case TR_SYSRET:
		r->th[ev->a].in_call = false;
		charge(r, KM_C_TRAP_EXIT);
		break;
	case TR_TIMER:
		charge(r, KM_C_TRAP_ENTRY);
		charge(r, KM_C_TRAP_EXIT);
		retry_waiting(r);
		break;
	case TR_IPC:
		r->st.ipcs++;
		charge(r, KM_C_FAULT_IPC);
		break;
	case TR_MAP: case TR_GRANT:
		if (km_map(r->km, r->tk[ev->a].km,
		           km_fpage(ev->base, ev->log2, ev->rights),
		           r->tk[ev->b].km, ev->va, ev->kind == TR_GRANT ?
		           KM_GRANT : KM_MAP, &pages) != KM_OK)
			r->st.maps_failed++;
		break;
	case TR_UNMAP:
		if (km_unmap(r->km, r->tk[ev->a].km,
		             km_fpage(ev->base, ev->log2, ev->rights),
		             ev->self ? KM_UNMAP_SELF : 0, &pages) != KM_OK)
			r->st.maps_failed++;
		retry_waiting(r);
		break;
	case TR_MARKER:
		err = ev_marker(r, ev);
		break;
	default:
		break;
	}
	if (err != 0) {
		snprintf(why, why_len, "out of host memory");
		return -1;
	}
	now = km_now(r->km);
	if (r->nchanged > 0)
		take_peaks(r);
	if ((res = result_of(r, owner(r, ev))) != NULL) {
		res->cycles += now - t0 - (r->diverted + pager_cycles(r) - div0);
		res->last = now;
	}
	if (r->cfg.sample_every != 0 && now >= r->next_sample)
		sample(r, (now - r->next_sample) / r->cfg.sample_every + 1);
	return 0;
}

void tr_replay_finish(struct tr_replay *r)
{
	if (r->finished)
		return;
	r->st.waiting = (uint32_t)r->nwait;
	for (size_t i = 0; i < r->nwait; i++) {
		struct rthread *t = &r->th[r->waitq[i]];

		r->st.skipped += t->qlen - t->qhead;
		t->qhead = t->qlen = 0;
	}
	for (size_t i = 0; i < r->nres; i++)
		if (!r->res[i].ended)
			note_peak(r, &r->res[i]);
	r->finished = true;
}
