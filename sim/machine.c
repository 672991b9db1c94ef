/*
 * sim/machine.c: the machine: the kernel model and one Unicorn engine per
 * task on one memfd, the host aliases kept in step with the model's PTEs,
 * the round-robin scheduler, and page faults.
 *
 * Frames.  The model's memfd holds its RAM; the machine grows it by two
 * frames past the model's end for the engines' system frames (kernel page
 * table, GDT and ring-0 stubs), so the model never sees or hands them out,
 * and every engine's physical window covers both.  The model's PTEs hold
 * window addresses (phys_base + pfn * 4096), so the engine's MMU walks the
 * model's own tables and sets A and D in them.
 *
 * Aliases.  Unicorn 2.0.1 accesses guest-physical == virtual after its
 * walk, so each present user PTE needs a host alias of its frame at its VA
 * (engine.h, ORDER RULES).  The model reports every PTE change through its
 * observer; the machine queues the ranges per task and applies them before
 * that task's engine runs again: a TLB flush first if any entry lost bits
 * (rule 3), then each page's alias is made to match its PTE, as recorded
 * in a shadow.  No guest runs while the model changes PTEs, so writing the
 * PTE before its alias exists (against rule 1's order) is never visible;
 * if an alias cannot be made the machine stops rather than run the task.
 * A page aliased again after it had an alias may hold other code: its
 * translated code is dropped (rule 4).
 */
#include "machine_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi.h"
#include "pagers.h"

struct sim_machine_config sim_machine_config_default(uint32_t frames)
{
	struct sim_machine_config c;

	memset(&c, 0, sizeof c);
	c.frames = frames;
	c.kmem = KM_KMEM_POOL;
	c.kpager = &kp_fcfs_ops;
	c.slice = SIM_SLICE_DEFAULT;
	return c;
}

/* Keeps the first reason a run went wrong; an engine or host failure also
 * stops the run. */
void sim_m_note(struct sim_machine *m, int err, const char *fmt, ...)
{
	va_list ap;

	if (err != SIM_OK && err != SIM_ESTATE && m->fatal == SIM_OK)
		m->fatal = err;
	if (m->why[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(m->why, sizeof m->why, fmt, ap);
	va_end(ap);
}

void sim_m_charge(struct sim_machine *m, enum km_cost c)
{
	km_advance(m->km, km_cost_cycles(m->km, c));
}

/* ---- The trace of the run ---------------------------------------------- */

/*
 * Recording: each model call and charge the machine makes is one event
 * (traces/FORMAT.md), written before the call, so that a replay that makes
 * the same calls in the same order gets the same faults and cycles.  User
 * work is kept until the next event: a touch by the same thread carries
 * it, anything else is preceded by a `user` event.
 */
static void flush_user(struct sim_machine *m)
{
	struct tr_event ev;

	if (m->rec_th == KM_NO_THREAD)
		return;
	memset(&ev, 0, sizeof ev);
	ev.kind = TR_USER;
	ev.a = m->rec_th;
	ev.insns = m->rec_insns;
	ev.cycles = m->rec_cycles;
	m->rec_th = KM_NO_THREAD;
	m->rec_insns = m->rec_cycles = 0;
	m->cfg.record(m->cfg.record_ctx, &ev);
}

void sim_m_record(struct sim_machine *m, const struct tr_event *ev)
{
	struct tr_event t;

	if (m->cfg.record == NULL)
		return;
	if (ev->kind == TR_TOUCH && m->rec_th == ev->a) {
		t = *ev;
		t.insns = m->rec_insns;
		t.cycles = m->rec_cycles;
		m->rec_th = KM_NO_THREAD;
		m->rec_insns = m->rec_cycles = 0;
		m->cfg.record(m->cfg.record_ctx, &t);
		return;
	}
	flush_user(m);
	m->cfg.record(m->cfg.record_ctx, ev);
}

void sim_m_record_user(struct sim_machine *m, km_thread_t th,
                       uint64_t insns, uint64_t cycles)
{
	if (m->cfg.record == NULL || (insns == 0 && cycles == 0))
		return;
	if (m->rec_th != th)
		flush_user(m);
	m->rec_th = th;
	m->rec_insns += insns;
	m->rec_cycles += cycles;
}

/* Records an event of ids and a number (marker, system call). */
void sim_m_record_ids(struct sim_machine *m, enum tr_kind kind, uint32_t a,
                      uint32_t b, uint32_t id)
{
	struct tr_event ev;

	if (m->cfg.record == NULL)
		return;
	memset(&ev, 0, sizeof ev);
	ev.kind = kind;
	ev.a = a;
	ev.b = b;
	ev.id = id;
	sim_m_record(m, &ev);
}

static void record_ids(struct sim_machine *m, enum tr_kind kind, uint32_t a,
                       uint32_t b)
{
	sim_m_record_ids(m, kind, a, b, 0);
}

static void record_endtask(struct sim_machine *m, km_task_t id, int status)
{
	struct tr_event ev;

	if (m->cfg.record == NULL)
		return;
	memset(&ev, 0, sizeof ev);
	ev.kind = TR_ENDTASK;
	ev.a = id;
	ev.status = status;
	sim_m_record(m, &ev);
}

/*
 * A task or thread whose creation failed: the kernel page faults of the
 * attempt are in the fault records, so a replay must attempt it too.  It
 * has no id; the trace calls it TR_ID_MAX (the model's ids are smaller)
 * and ends it at once.
 */
static void record_failed(struct sim_machine *m, enum tr_kind kind,
                          const char *name, km_task_t task)
{
	struct tr_event ev;

	if (m->cfg.record == NULL)
		return;
	memset(&ev, 0, sizeof ev);
	ev.kind = kind;
	ev.a = TR_ID_MAX;
	ev.b = task;
	if (name != NULL)
		tr_name_sanitize(ev.name, name);
	sim_m_record(m, &ev);
	if (kind == TR_TASK)
		record_endtask(m, TR_ID_MAX, -1);
	else
		record_ids(m, TR_ENDTHREAD, TR_ID_MAX, 0);
}

/* ---- Aliases in step with the model's PTEs ------------------------------ */

static void on_pte_change(void *ctx, km_task_t task, km_vaddr_t va,
                          uint32_t pages, enum km_pte_change change)
{
	struct sim_machine *m = ctx;
	struct mtask *t;

	if (task >= m->max_tasks || !(t = &m->task[task])->live)
		return;         /* the default pager, kpagers: no engine */
	if (t->nev == EV_CAP) {
		t->resync = true;
		return;
	}
	t->ev[t->nev++] = (struct pte_event){ va, pages,
	                                      change == KM_PTE_REMOVED };
}

static uint32_t *shadow_slot(struct mtask *t, uint32_t va, bool create)
{
	uint32_t pde = va >> 22;

	if (t->shadow[pde] == NULL && create)
		t->shadow[pde] = calloc(1024, sizeof(uint32_t));
	return t->shadow[pde] ? &t->shadow[pde][(va >> 12) & 1023] : NULL;
}

/* Makes the alias of page va match its PTE.  Returns SIM_OK or an engine
 * error (the alias is then absent or PROT_NONE). */
static int sync_page(struct sim_machine *m, km_task_t id, uint32_t va)
{
	struct mtask *t = &m->task[id];
	uint32_t pte = km_pte(m->km, id, va);
	uint32_t want = 0, *sh;
	bool stale;
	int err;

	if (pte & KM_PTE_P) {
		uint32_t pfn = ((pte & ~0xfffu) - SIM_PHYS_BASE_DEFAULT) >> 12;

		want = SH_ALIASED | ((pte & KM_PTE_RW) ? SH_WRITE : 0) |
		       pfn << SH_PFN_SHIFT;
	}
	sh = shadow_slot(t, va, want != 0);
	if (sh == NULL) {
		if (want == 0)
			return SIM_OK;
		sim_m_note(m, SIM_EHOST, "task %u (%s): out of host memory for "
		           "its alias shadow", id, t->name);
		return SIM_EHOST;
	}
	if ((*sh & ~SH_EVER) == want)
		return SIM_OK;
	if (want == 0) {
		err = sim_engine_unalias(t->e, va);
		*sh &= SH_EVER;
		return err;
	}
	/* Code translated for this page stays right only while the same
	 * frame stayed behind it (a change of rights alone keeps it). */
	stale = (*sh & SH_EVER) && (!(*sh & SH_ALIASED) ||
	        (*sh >> SH_PFN_SHIFT) != (want >> SH_PFN_SHIFT));
	err = sim_engine_alias(t->e, va, want >> SH_PFN_SHIFT,
	                       (want & SH_WRITE) != 0);
	if (err != SIM_OK) {
		*sh &= SH_EVER;
		return err;
	}
	if (stale &&
	    (err = sim_engine_forget_code(t->e, va, SIM_PAGE_SIZE)) != SIM_OK)
		return err;
	*sh = want | SH_EVER;
	return SIM_OK;
}

static int sync_range(struct sim_machine *m, km_task_t id, uint32_t va,
                      uint32_t pages)
{
	uint64_t end = (uint64_t)va + (uint64_t)pages * SIM_PAGE_SIZE;
	int err;

	if (end > KM_USER_TOP)
		end = KM_USER_TOP;
	for (uint64_t a = va; a < end; a += SIM_PAGE_SIZE)
		if ((err = sync_page(m, id, (uint32_t)a)) != SIM_OK)
			return err;
	return SIM_OK;
}

/*
 * Applies the queued PTE changes of task id to its engine: flushes what
 * lost bits (or the whole TLB, also when the model moved the directory),
 * then aliases.  The directory must be present.  Returns SIM_OK or an
 * engine error.
 */
static int sync_task(struct sim_machine *m, km_task_t id)
{
	struct mtask *t = &m->task[id];
	uint32_t cr3 = km_task_cr3(m->km, id);
	bool full = t->resync || cr3 != t->cr3;
	int err = SIM_OK;

	for (uint32_t i = 0; i < t->nev && !full; i++)
		full = t->ev[i].removed && t->ev[i].pages > 1;
	if (full) {
		err = sim_engine_set_cr3(t->e, cr3);
		if (err == SIM_OK)
			t->cr3 = cr3;
	} else {
		for (uint32_t i = 0; i < t->nev && err == SIM_OK; i++)
			if (t->ev[i].removed)
				err = sim_engine_invlpg(t->e, t->ev[i].va);
	}
	if (err != SIM_OK)
		return err;
	if (t->resync)
		err = sync_range(m, id, 0, KM_USER_TOP >> 12);
	for (uint32_t i = 0; i < t->nev && err == SIM_OK && !t->resync; i++)
		err = sync_range(m, id, t->ev[i].va, t->ev[i].pages);
	t->nev = 0;
	t->resync = false;
	return err;
}

/* ---- Creation ------------------------------------------------------------ */

static int create_kpager(struct sim_machine *m, char *why, size_t why_len)
{
	int err;

	if (m->cfg.kmem != KM_KMEM_KPAGER)
		return SIM_OK;
	err = kp_start(m->km, m->cfg.kpager, m->cfg.kpager_args,
	               &m->kpager_task, &m->kpager, why, why_len);
	return err == KM_OK ? SIM_OK : SIM_EARG;
}

/* Forwards fault records and remembers the last sequence number, which
 * markers carry so that faults can be placed between them. */
static void on_fault(void *ctx, const struct km_fault_rec *rec)
{
	struct sim_machine *m = ctx;

	if (rec->seq > m->last_seq)
		m->last_seq = rec->seq;
	if (rec->kind == KM_FK_USER && rec->decision == KM_D_MAPPED) {
		m->fresh_task = rec->task;
		m->fresh_va = rec->addr & ~0xfffu;
	}
	if (m->cfg.sink != NULL)
		m->cfg.sink(m->cfg.sink_ctx, rec);
}

/* The model and the engines' shared frames: the model's memfd, grown by
 * the two system frames. */
static int create_model(struct sim_machine *m, char *why, size_t why_len)
{
	struct km_config kc = km_config_default(m->cfg.frames);
	uint32_t pdes[SIM_KERNEL_PDES];
	int err;

	kc.kmem = m->cfg.kmem;
	kc.costs = m->cfg.costs;
	kc.key_seed = 1;        /* reproducible continuations */
	kc.phys_base = SIM_PHYS_BASE_DEFAULT;
	err = km_create(&kc, &m->km, why, why_len);
	if (err != KM_OK) {
		if (why[0] == '\0')
			snprintf(why, why_len, "kernel model: %s",
			         km_strerror(err));
		return err == KM_EIO ? SIM_EHOST : SIM_EARG;
	}
	m->max_tasks = kc.max_tasks;
	m->max_threads = kc.max_threads;
	if (ftruncate(km_frames_fd(m->km), (off_t)(m->cfg.frames + 2) *
	              SIM_PAGE_SIZE) != 0) {
		snprintf(why, why_len, "growing the frames' memfd by the "
		         "engines' two system frames failed");
		return SIM_EHOST;
	}
	m->ecfg = (struct sim_engine_config){
		.memfd = km_frames_fd(m->km), .nframes = m->cfg.frames + 2,
		.phys_base = SIM_PHYS_BASE_DEFAULT,
		.sys_pfn = { m->cfg.frames, m->cfg.frames + 1 }, .nsys = 2,
		.no_icount = m->cfg.raw_engine };
	if ((err = sim_kernel_pdes(&m->ecfg, pdes, why, why_len)) != SIM_OK)
		return err;
	/* With A already set, the MMU's walk through the stubs' PDE never
	 * writes it: the model's copy in every directory stays the same
	 * bytes (km_check compares them; the engine ignores A). */
	for (uint32_t i = 0; i < SIM_KERNEL_PDES; i++)
		if (pdes[i] & SIM_PTE_P)
			pdes[i] |= SIM_PTE_A;
	km_set_kernel_pdes(m->km, pdes);
	km_set_pte_observer(m->km, on_pte_change, m);
	km_set_fault_sink(m->km, on_fault, m);
	return SIM_OK;
}

int sim_machine_create(const struct sim_machine_config *cfg,
                       struct sim_machine **out, char *why, size_t why_len)
{
	struct sim_machine *m;
	char dummy[8];
	int err;

	if (why == NULL) {
		why = dummy;
		why_len = sizeof dummy;
	}
	why[0] = '\0';
	*out = NULL;
	/* Does the RAM fit the model and the engines' window? */
	if (cfg->frames < 64 || cfg->frames > SIM_MAX_FRAMES - 2) {
		snprintf(why, why_len, "simulated RAM must be 64 .. %u frames "
		         "(256 KiB .. 1 GiB - 8 KiB), not %u", SIM_MAX_FRAMES - 2,
		         cfg->frames);
		return SIM_EARG;
	}
	/* Does this Unicorn behave as the mechanism needs? */
	if (!sim_engine_selftest(why, why_len))
		return SIM_EQUIRK;
	m = calloc(1, sizeof *m);
	if (m == NULL) {
		snprintf(why, why_len, "out of host memory");
		return SIM_EHOST;
	}
	m->cfg = *cfg;
	if (m->cfg.slice == 0)
		m->cfg.slice = SIM_SLICE_DEFAULT;
	err = create_model(m, why, why_len);
	if (err == SIM_OK) {
		m->task = calloc(m->max_tasks, sizeof *m->task);
		m->thread = calloc(m->max_threads, sizeof *m->thread);
		m->rq = calloc(m->max_threads, sizeof *m->rq);
		if (!m->task || !m->thread || !m->rq) {
			snprintf(why, why_len, "out of host memory");
			err = SIM_EHOST;
		}
	}
	if (err == SIM_OK)
		err = create_kpager(m, why, why_len);
	if (err != SIM_OK) {
		sim_machine_destroy(m);
		return err;
	}
	*out = m;
	return SIM_OK;
}

static void task_release(struct sim_machine *m, struct mtask *t)
{
	if (t->live)
		m->live_tasks--;
	sim_engine_destroy(t->e);
	t->e = NULL;
	for (uint32_t i = 0; i < USER_PDES; i++) {
		free(t->shadow[i]);
		t->shadow[i] = NULL;
	}
	t->live = false;
}

void sim_machine_destroy(struct sim_machine *m)
{
	if (m == NULL)
		return;
	for (uint32_t i = 0; m->task != NULL && i < m->max_tasks; i++)
		task_release(m, &m->task[i]);
	km_destroy(m->km);
	free(m->task);
	free(m->spawned);
	free(m->thread);
	free(m->rq);
	free(m->mark);
	free(m);
}

bool sim_machine_owns(const struct sim_machine *m, const void *p)
{
	for (uint32_t i = 0; i < m->max_tasks; i++)
		if (m->task[i].live && sim_engine_owns(m->task[i].e, p))
			return true;
	return false;
}

void sim_machine_set_limit(struct sim_machine *m, uint64_t max_cycles)
{
	m->cfg.max_cycles = max_cycles;
}

struct km *sim_machine_model(struct sim_machine *m)
{
	return m->km;
}

km_kpager_t sim_machine_kpager(const struct sim_machine *m)
{
	return m->kpager;
}

void sim_machine_stats(const struct sim_machine *m,
                       struct sim_machine_stats *out)
{
	*out = m->st;
	out->cycles = km_now(m->km);
}

const struct sim_marker *sim_machine_markers(const struct sim_machine *m,
                                             size_t *n)
{
	*n = m->nmark;
	return m->mark;
}

bool sim_machine_exit_status(const struct sim_machine *m, km_task_t task,
                             int *status)
{
	if (task >= m->max_tasks || !m->task[task].done)
		return false;
	*status = m->task[task].status;
	return true;
}

km_task_t sim_machine_thread_task(const struct sim_machine *m,
                                  km_thread_t thread)
{
	km_task_t t = 0;

	return km_thread_task(m->km, thread, &t) == KM_OK ? t :
	       thread < m->max_threads ? m->thread[thread].task : 0;
}

/* Folds `now` into the task's record: the most kernel memory it has held
 * (by type and group), threads and mappings, and its fault counts.
 * Threads leave one by one, so what is left at the end says little about
 * the pressure a workload made. */
static void merge_peak(struct km_task_stats *peak,
                       const struct km_task_stats *now)
{
	for (int i = 0; i < KM_KT_COUNT; i++)
		if (now->pages[i] > peak->pages[i])
			peak->pages[i] = now->pages[i];
	for (int i = 0; i < KM_KG_COUNT; i++)
		if (now->group[i] > peak->group[i])
			peak->group[i] = now->group[i];
	if (now->mappings > peak->mappings)
		peak->mappings = now->mappings;
	if (now->threads > peak->threads)
		peak->threads = now->threads;
	peak->kfaults = now->kfaults;
	peak->ufaults = now->ufaults;
}

static void note_peak(struct sim_machine *m, km_task_t id)
{
	struct km_task_stats now;

	if (km_task_stats(m->km, id, &now) == KM_OK)
		merge_peak(&m->task[id].final, &now);
}

bool sim_machine_task_stats(const struct sim_machine *m, km_task_t task,
                            struct km_task_stats *out)
{
	struct km_task_stats now;

	if (task >= m->max_tasks || m->task[task].name[0] == '\0')
		return false;
	*out = m->task[task].final;
	if (m->task[task].live && km_task_stats(m->km, task, &now) == KM_OK)
		merge_peak(out, &now);
	return true;
}

bool sim_machine_task_info(const struct sim_machine *m, size_t i,
                           struct sim_task_info *out)
{
	const struct mtask_seen *s;

	if (i >= m->nspawned)
		return false;
	s = &m->spawned[i];
	memset(out, 0, sizeof *out);
	out->id = s->id;
	if (s->archived) {
		out->name = s->name;
		out->done = s->done;
		out->kept = s->kept;
		out->status = s->status;
		out->st = s->final;
		return true;
	}
	out->name = m->task[s->id].name;
	out->done = m->task[s->id].done;
	out->kept = m->task[s->id].kept;
	out->status = m->task[s->id].status;
	sim_machine_task_stats(m, s->id, &out->st);
	return true;
}

/* ---- The run queue ------------------------------------------------------ */

void sim_m_wake(struct sim_machine *m, km_thread_t th)
{
	struct mthread *t = &m->thread[th];

	t->st = MT_READY;
	/* The running thread goes back to the queue when its slice ends. */
	if (t->queued || th == m->current)
		return;
	t->queued = true;
	m->rq[(m->rq_head + m->rq_len++) % m->max_threads] = th;
}

static km_thread_t rq_pop(struct sim_machine *m)
{
	while (m->rq_len > 0) {
		km_thread_t th = m->rq[m->rq_head];

		m->rq_head = (m->rq_head + 1) % m->max_threads;
		m->rq_len--;
		m->thread[th].queued = false;
		if (m->thread[th].st == MT_READY)
			return th;
	}
	return KM_NO_THREAD;
}

/* ---- Guest memory through the model ------------------------------------- */

/*
 * Resolves thread th's access to va as the MMU and the kernel would: a
 * page the PTE allows needs nothing, anything else is a user page fault
 * for the model.  A page the pager has just mapped (a fresh, zeroed
 * frame: its fault record says KM_D_MAPPED) gets the image's bytes if it
 * lies in one of its segments: the task's pager backs the image on
 * demand.  The machine learns that from the record, not by looking the
 * mapping up: a lookup is a kernel operation (it brings revoked pages back
 * and counts as their use), which a replay of the run would not make.
 * Returns a KM_* code.
 */
static int resolve(struct sim_machine *m, km_thread_t th, uint32_t va,
                   unsigned access, bool record)
{
	km_task_t id = m->thread[th].task;
	struct mtask *t = &m->task[id];
	uint32_t pte;
	int err;

	if (record && m->cfg.record != NULL) {
		struct tr_event ev;

		memset(&ev, 0, sizeof ev);
		ev.kind = TR_TOUCH;
		ev.a = th;
		ev.va = va;
		ev.access = (uint8_t)access;
		sim_m_record(m, &ev);
	}
	m->fresh_task = 0;
	err = km_touch(m->km, th, va, access);
	if (err == KM_OK && t->img != NULL && m->fresh_task == id &&
	    m->fresh_va == (va & ~0xfffu) &&
	    ((pte = km_pte(m->km, id, va)) & KM_PTE_P))
		sim_elf_page(t->img, va, km_frame_ptr(m->km,
		             ((pte & ~0xfffu) - SIM_PHYS_BASE_DEFAULT) >> 12));
	return err;
}

int sim_m_resolve(struct sim_machine *m, km_thread_t th, uint32_t va,
                  unsigned access)
{
	return resolve(m, th, va, access, true);
}

/* Copies guest bytes [va, va + len) as thread th sees them, faulting
 * pages in as the kernel does for a system call's buffer.  KM_* code. */
int sim_m_read_guest(struct sim_machine *m, km_thread_t th, uint32_t va,
                     void *buf, uint32_t len)
{
	km_task_t id = m->thread[th].task;
	uint8_t *dst = buf;

	while (len > 0) {
		uint32_t off = va & 0xfffu;
		uint32_t n = SIM_PAGE_SIZE - off < len ? SIM_PAGE_SIZE - off : len;
		uint32_t pte;
		int err;

		if (va >= KM_USER_TOP)
			return KM_EINVAL;
		pte = km_pte(m->km, id, va);
		if (!(pte & KM_PTE_P)) {
			if ((err = sim_m_resolve(m, th, va, KM_ACC_READ)) != KM_OK)
				return err;
			pte = km_pte(m->km, id, va);
		}
		memcpy(dst, km_frame_ptr(m->km, ((pte & ~0xfffu) -
		       SIM_PHYS_BASE_DEFAULT) >> 12) + off, n);
		dst += n;
		va += n;
		len -= n;
	}
	return KM_OK;
}

int sim_machine_access(struct sim_machine *m, km_task_t task, uint32_t va,
                       void *buf, uint32_t len, bool write)
{
	uint8_t *p = buf;

	while (len > 0) {
		uint32_t off = va & 0xfffu;
		uint32_t n = SIM_PAGE_SIZE - off < len ? SIM_PAGE_SIZE - off : len;
		uint32_t pte = va < KM_USER_TOP ? km_pte(m->km, task, va) : 0;
		uint8_t *f;

		if (!(pte & KM_PTE_P) || (write && !(pte & KM_PTE_RW)))
			return SIM_EARG;
		f = km_frame_ptr(m->km, ((pte & ~0xfffu) -
		                 SIM_PHYS_BASE_DEFAULT) >> 12) + off;
		if (write)
			memcpy(f, p, n);
		else
			memcpy(p, f, n);
		p += n;
		va += n;
		len -= n;
	}
	return SIM_OK;
}

/* ---- Tasks and threads --------------------------------------------------- */

/* Ends thread th: its IPC partners learn it is gone, the model frees it. */
void sim_m_exit_thread(struct sim_machine *m, km_thread_t th)
{
	struct mthread *t = &m->thread[th];
	struct mtask *k = &m->task[t->task];
	km_task_t id = t->task;
	int err;

	note_peak(m, id);
	if (t->st == MT_WAITMEM)
		m->waiting--;
	t->st = MT_FREE;
	sim_m_ipc_gone(m, th);
	record_ids(m, TR_ENDTHREAD, th, 0);
	km_thread_destroy(m->km, th);
	sim_m_retry_waiting(m);
	if (--k->nthreads == 0 && k->live) {
		/* The last thread ends the task with status 0, unless an
		 * exit or a kill set one. */
		if (!k->done) {
			k->done = true;
			k->status = 0;
		}
		task_release(m, k);
		/* Ending its threads may have brought revoked pages back. */
		note_peak(m, id);
		record_endtask(m, id, k->status);
		if ((err = km_task_destroy(m->km, id)) != KM_OK) {
			k->kept = true;
			sim_m_note(m, SIM_ESTATE, "task %u (%s) ended, but the "
			           "kernel kept it: %s", id, k->name,
			           km_strerror(err));
		}
		sim_m_retry_waiting(m);
	}
}

/* Ends a whole task with `status`. */
void sim_m_kill_task(struct sim_machine *m, km_task_t id, int status)
{
	struct mtask *k = &m->task[id];

	if (!k->live)
		return;
	k->done = true;
	k->status = status;
	for (km_thread_t th = 1; th < m->max_threads && k->live; th++)
		if (m->thread[th].st != MT_FREE && m->thread[th].task == id)
			sim_m_exit_thread(m, th);
}

/* Writes argc, argv and the strings at the top of the first thread's
 * stack; the page comes from the pager like any other. */
static int build_stack(struct sim_machine *m, km_thread_t th, int argc,
                       char *const argv[], uint32_t *esp, char *why,
                       size_t why_len)
{
	uint8_t page[SIM_PAGE_SIZE];
	uint32_t base = KPS_STACK_TOP - SIM_PAGE_SIZE, str = SIM_PAGE_SIZE;
	uint32_t ptrs[64], sp;
	int err;

	if (argc < 0 || argc >= 64) {
		snprintf(why, why_len, "at most 63 arguments, not %d", argc);
		return SIM_EARG;
	}
	for (int i = argc; i-- > 0;) {
		size_t n = strlen(argv[i]) + 1;

		if (n > str || str - n < (uint32_t)(argc + 3) * 4 + 64) {
			snprintf(why, why_len, "arguments do not fit in one "
			         "page of stack");
			return SIM_EARG;
		}
		str -= (uint32_t)n;
		memcpy(page + str, argv[i], n);
		ptrs[i] = base + str;
	}
	sp = (str & ~15u) - (uint32_t)(argc + 2) * 4;
	memcpy(page + sp, &argc, 4);
	memcpy(page + sp + 4, ptrs, (size_t)argc * 4);
	memset(page + sp + 4 + (uint32_t)argc * 4, 0, 4);
	err = sim_m_resolve(m, th, base, KM_ACC_WRITE);
	if (err != KM_OK) {
		snprintf(why, why_len, "the first stack page: %s",
		         km_strerror(err));
		return SIM_ESTATE;
	}
	sim_machine_access(m, m->thread[th].task, base + sp, page + sp,
	                   SIM_PAGE_SIZE - sp, true);
	*esp = base + sp;
	return SIM_OK;
}

/* Is there room for one more entry in m->spawned? */
static bool spawned_room(struct sim_machine *m)
{
	struct mtask_seen *n;
	size_t cap;

	if (m->nspawned < m->spawned_cap)
		return true;
	cap = m->spawned_cap ? 2 * m->spawned_cap : 64;
	n = realloc(m->spawned, cap * sizeof *n);
	if (n == NULL)
		return false;
	m->spawned = n;
	m->spawned_cap = cap;
	return true;
}

/* Keeps what the report needs of task t, whose slot is about to be
 * cleared or given to a later task. */
static void archive_task(struct sim_machine *m, const struct mtask *t)
{
	struct mtask_seen *s = &m->spawned[t->spawn_seq];

	s->archived = true;
	s->done = t->done;
	s->kept = t->kept;
	s->status = t->status;
	snprintf(s->name, sizeof s->name, "%s", t->name);
	s->final = t->final;
}

/* Undoes a spawn that failed half way: its slot is cleared.  The
 * recording has the task, created and ended (-1), and so has the list
 * sim_machine_task_info gives. */
static void abandon_task(struct sim_machine *m, km_task_t id)
{
	note_peak(m, id);       /* what it held, as the replay counts it */
	m->task[id].done = true;
	m->task[id].status = -1;
	archive_task(m, &m->task[id]);
	task_release(m, &m->task[id]);
	m->task[id].name[0] = '\0';
	record_endtask(m, id, -1);
	km_task_destroy(m->km, id);
	sim_m_retry_waiting(m);
}

static int spawn_task(struct sim_machine *m, const char *name,
                      km_task_t *id, char *why, size_t why_len)
{
	struct mtask *t;
	int err;

	if (m->live_tasks == LIVE_TASKS_MAX) {
		snprintf(why, why_len, "creating task %s: %u tasks run "
		         "already, the most one machine runs at once", name,
		         LIVE_TASKS_MAX);
		return SIM_ESTATE;
	}
	if (!spawned_room(m)) {
		snprintf(why, why_len, "creating task %s: out of host memory",
		         name);
		return SIM_EHOST;
	}
	/* The model's task ids are below its max_tasks, m->task's size. */
	err = km_task_create(m->km, m->kpager, id);
	if (err != KM_OK) {
		struct mtask_seen *s = &m->spawned[m->nspawned++];

		/* A spawn that failed is a task in the report, as in the
		 * replay of the recording: never created, exit -1. */
		memset(s, 0, sizeof *s);
		s->archived = s->done = true;
		s->status = -1;
		snprintf(s->name, sizeof s->name, "%s", name);
		record_failed(m, TR_TASK, name, 0);
		snprintf(why, why_len, "creating task %s: %s", name,
		         km_strerror(err));
		return err == KM_ELIMIT ? SIM_EARG : SIM_ESTATE;
	}
	t = &m->task[*id];
	if (t->name[0] != '\0')
		archive_task(m, t);     /* an ended task had this id */
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->spawn_seq = m->nspawned;
	m->spawned[m->nspawned++] = (struct mtask_seen){ .id = *id };
	if (m->cfg.record != NULL) {
		struct tr_event ev;

		memset(&ev, 0, sizeof ev);
		ev.kind = TR_TASK;
		ev.a = *id;
		tr_name_sanitize(ev.name, name);
		sim_m_record(m, &ev);
	}
	err = sim_engine_create(&m->ecfg, &t->e, why, why_len);
	if (err == SIM_OK) {
		t->live = true;
		m->live_tasks++;
		t->cr3 = km_task_cr3(m->km, *id);
		if ((err = sim_engine_set_cr3(t->e, t->cr3)) != SIM_OK)
			snprintf(why, why_len, "%s", sim_engine_errmsg(t->e));
	}
	if (err != SIM_OK)
		abandon_task(m, *id);
	return err;
}

/* A new thread of task id starting at eip with esp, EAX = eax. */
static int new_thread(struct sim_machine *m, km_task_t id, uint32_t eip,
                      uint32_t esp, uint32_t eax, km_thread_t *th)
{
	struct mthread *t;
	/* The model's thread ids are below its max_threads, the size of
	 * m->thread. */
	int err = km_thread_create(m->km, id, 0, th);

	if (err != KM_OK) {
		record_failed(m, TR_THREAD, NULL, id);
		return err;
	}
	record_ids(m, TR_THREAD, *th, id);
	t = &m->thread[*th];
	{
		/* An ended thread with this id may still sit in the run
		 * queue: keep its mark, so the id is queued once at most and
		 * the ring never holds more entries than threads. */
		bool queued = t->queued;

		memset(t, 0, sizeof *t);
		t->queued = queued;
	}
	t->task = id;
	t->regs.eip = eip;
	t->regs.esp = esp;
	t->regs.eax = eax;
	m->task[id].nthreads++;
	m->st.threads_created++;
	sim_m_wake(m, *th);
	return KM_OK;
}

int sim_machine_spawn(struct sim_machine *m, const struct sim_elf *img,
                      const char *name, int argc, char *const argv[],
                      km_thread_t *thread, char *why, size_t why_len)
{
	km_task_t id;
	km_thread_t th;
	uint32_t esp = 0;
	char dummy[8];
	int err;

	if (why == NULL) {
		why = dummy;
		why_len = sizeof dummy;
	}
	if (img == NULL || name == NULL) {
		snprintf(why, why_len, "spawn needs an image and a name");
		return SIM_EARG;
	}
	if ((err = spawn_task(m, name, &id, why, why_len)) != SIM_OK)
		return err;
	m->task[id].img = img;
	err = new_thread(m, id, sim_elf_entry(img), 0, 0, &th);
	if (err != KM_OK) {
		snprintf(why, why_len, "first thread of %s: %s", name,
		         km_strerror(err));
		abandon_task(m, id);
		return SIM_ESTATE;
	}
	err = build_stack(m, th, argc, argv, &esp, why, why_len);
	if (err != SIM_OK) {
		m->thread[th].st = MT_FREE;
		note_peak(m, id);       /* its thread's pages count, too */
		record_ids(m, TR_ENDTHREAD, th, 0);
		km_thread_destroy(m->km, th);
		sim_m_retry_waiting(m);
		abandon_task(m, id);
		return err;
	}
	m->thread[th].regs.esp = esp;
	m->st.tasks_spawned++;
	if (thread != NULL)
		*thread = th;
	return SIM_OK;
}

/* Starts another bundled program from a command line ("name arg ..."). */
int sim_m_spawn_args(struct sim_machine *m, const char *cmdline,
                     km_thread_t *thread, char *why, size_t why_len)
{
	char buf[256], *argv[64], *save = NULL, *w;
	const struct sim_elf *img;
	int argc = 0;

	snprintf(buf, sizeof buf, "%s", cmdline);
	for (w = strtok_r(buf, " ", &save); w != NULL && argc < 63;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	if (argc == 0 || m->cfg.find == NULL ||
	    (img = m->cfg.find(m->cfg.find_ctx, argv[0])) == NULL) {
		snprintf(why, why_len, "no bundled program '%s'",
		         argc ? argv[0] : "");
		return SIM_EARG;
	}
	return sim_machine_spawn(m, img, argv[0], argc, argv, thread, why,
	                         why_len);
}

int sim_m_thread_create(struct sim_machine *m, km_thread_t parent,
                        uint32_t eip, uint32_t esp, uint32_t arg,
                        km_thread_t *th)
{
	return new_thread(m, m->thread[parent].task, eip, esp, arg, th);
}

/* ---- Running ---------------------------------------------------------------- */

/* Kills the task of th for a reason the guest caused. */
__attribute__((format(printf, 3, 4)))
static void kill_for(struct sim_machine *m, km_thread_t th, const char *fmt,
                     ...)
{
	km_task_t id = m->thread[th].task;
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	sim_m_note(m, SIM_ESTATE, "task %u (%s) thread %u killed: %s", id,
	           m->task[id].name, th, what);
	m->st.killed++;
	sim_m_kill_task(m, id, -1);
}

/*
 * A page fault the kernel could not resolve.  For lack of kernel memory
 * (the kpager denied it, or its pool is empty) the thread waits in the
 * fault, its task keeping all it holds, and the fault is retried whenever
 * memory may have come free (sim_m_retry_waiting): a denial-of-service
 * attacker waits for memory as patiently as its victims.  Any other
 * failure kills the task.
 */
static void fault_failed(struct sim_machine *m, km_thread_t th, int err,
                         unsigned access, uint32_t va, uint32_t eip)
{
	const char *what = access == KM_ACC_WRITE ? "write" :
	                   access == KM_ACC_EXEC ? "fetch" : "read";
	struct mthread *t = &m->thread[th];

	if (err == KM_ENOMEM || err == KM_EDENIED) {
		if (t->st != MT_WAITMEM)
			m->waiting++;
		t->st = MT_WAITMEM;
		t->wait_va = va;
		t->wait_access = access;
		t->since = ++m->block_seq;
		return;
	}
	kill_for(m, th, "%s of %#x at eip %#x: %s", what, va, eip,
	         km_strerror(err));
}

/*
 * Retries the faults of the threads waiting for kernel memory, longest
 * waiting first, once each: after a thread or task ended, an unmap, and a
 * timer interrupt (traces/FORMAT.md says the same, so that a replay makes
 * the same retries).  The retries are not recorded: a replay derives
 * them.  Not nested: what a retry ends triggers no retry of its own.
 */
void sim_m_retry_waiting(struct sim_machine *m)
{
	uint64_t after = 0;

	if (m->retrying || m->waiting == 0)
		return;
	m->retrying = true;
	for (;;) {
		km_thread_t next = KM_NO_THREAD;
		struct mthread *t;
		int err;

		for (km_thread_t th = 1; th < m->max_threads; th++)
			if (m->thread[th].st == MT_WAITMEM &&
			    m->thread[th].since > after &&
			    (next == KM_NO_THREAD ||
			     m->thread[th].since < m->thread[next].since))
				next = th;
		if (next == KM_NO_THREAD)
			break;
		t = &m->thread[next];
		after = t->since;
		err = resolve(m, next, t->wait_va, t->wait_access, false);
		if (err == KM_OK) {
			t->fault_repeat = 0;
			m->waiting--;
			sim_m_wake(m, next);
		} else if (err != KM_ENOMEM && err != KM_EDENIED) {
			fault_failed(m, next, err, t->wait_access, t->wait_va,
			             t->regs.eip);
		}
	}
	m->retrying = false;
}

static void page_fault(struct sim_machine *m, km_thread_t th,
                       const struct sim_event *ev)
{
	struct mthread *t = &m->thread[th];
	unsigned access = KM_ACC_READ;
	int err;

	/* No NX without PAE: a fetch is a read whose address is the
	 * instruction's own (within its 15 bytes). */
	if (ev->error_code & SIM_PF_W)
		access = KM_ACC_WRITE;
	else if (ev->cr2 - ev->eip < 15)
		access = KM_ACC_EXEC;
	if (ev->eip == t->fault_eip && ev->cr2 == t->fault_cr2) {
		if (++t->fault_repeat >= 3) {
			kill_for(m, th, "page fault at %#x (eip %#x) repeats "
			         "after the model resolved it: engine and model "
			         "disagree", ev->cr2, ev->eip);
			return;
		}
	} else {
		t->fault_eip = ev->eip;
		t->fault_cr2 = ev->cr2;
		t->fault_repeat = 0;
	}
	err = sim_m_resolve(m, th, ev->cr2, access);
	if (err != KM_OK)
		fault_failed(m, th, err, access, ev->cr2, ev->eip);
}

/* The directory of a task can be revoked by its kpager; it must come back
 * (a kernel page fault) before the task can run. */
static int ensure_directory(struct sim_machine *m, km_thread_t th)
{
	int err;

	if (km_task_cr3(m->km, m->thread[th].task) != 0)
		return KM_OK;
	err = sim_m_resolve(m, th, m->thread[th].regs.eip, KM_ACC_EXEC);
	if (err == KM_OK && km_task_cr3(m->km, m->thread[th].task) == 0)
		err = KM_ENOMAP;
	return err;
}

/* Runs th until its slice ends, it blocks, yields or ends. */
static void run_slice(struct sim_machine *m, km_thread_t th)
{
	struct mthread *t = &m->thread[th];
	uint64_t end = km_now(m->km) + m->cfg.slice;
	struct sim_event ev;
	int err;

	if (m->cfg.max_cycles && end > m->cfg.max_cycles)
		end = m->cfg.max_cycles;
	m->st.switches++;
	m->yielded = false;
	m->current = th;
	while (t->st == MT_READY && !m->yielded && m->fatal == SIM_OK) {
		struct mtask *k = &m->task[t->task];
		uint64_t now = km_now(m->km), budget;

		if (now >= end) {
			/* The timer interrupt ends the slice. */
			record_ids(m, TR_TIMER, th, 0);
			sim_m_charge(m, KM_C_TRAP_ENTRY);
			sim_m_charge(m, KM_C_TRAP_EXIT);
			sim_m_retry_waiting(m);
			break;
		}
		if ((err = ensure_directory(m, th)) != KM_OK) {
			fault_failed(m, th, err, KM_ACC_EXEC, t->regs.eip,
			             t->regs.eip);
			break;
		}
		if ((err = sync_task(m, t->task)) != SIM_OK) {
			sim_m_note(m, err, "task %u (%s): engine: %s", t->task,
			           k->name, sim_engine_errmsg(k->e));
			break;
		}
		/* Every instruction but int n costs at least a cycle: the
		 * slice's cycles bound its instructions. */
		budget = end - now;
		err = sim_engine_run(k->e, &t->regs, budget, &ev);
		if (err != SIM_OK) {
			sim_m_note(m, err, "task %u (%s): engine: %s", t->task,
			           k->name, sim_engine_errmsg(k->e));
			break;
		}
		m->st.engine_runs++;
		m->st.guest_insns += ev.icount;
		m->st.guest_cycles += ev.cycles;
		km_advance(m->km, ev.cycles);
		sim_m_record_user(m, th, ev.icount, ev.cycles);
		switch (ev.kind) {
		case SIM_EV_PAGE_FAULT:
			page_fault(m, th, &ev);
			break;
		case SIM_EV_SYSCALL:
			t->fault_repeat = 0;
			km_syscall_begin(m->km, th);
			sim_m_syscall(m, th);
			km_syscall_end(m->km);
			break;
		case SIM_EV_BUDGET:
			break;
		case SIM_EV_HLT:
			kill_for(m, th, "hlt at eip %#x", ev.eip);
			break;
		default:
			kill_for(m, th, "exception %u at eip %#x (error code "
			         "%#x)", ev.vector, ev.eip, ev.error_code);
			break;
		}
	}
	m->current = KM_NO_THREAD;
	if (t->st == MT_READY)
		sim_m_wake(m, th);
}

/* How many threads are alive, and a sentence about the blocked ones. */
static uint32_t blocked_threads(const struct sim_machine *m, char *buf,
                                size_t len)
{
	uint32_t n = 0;
	size_t used = 0;

	buf[0] = '\0';
	for (km_thread_t th = 1; th < m->max_threads; th++) {
		const struct mthread *t = &m->thread[th];

		if (t->st == MT_FREE)
			continue;
		if (n++ >= 4 || used >= len)
			continue;
		if (t->st == MT_WAITMEM)
			used += (size_t)snprintf(buf + used, len - used,
			        "%s thread %u (%s) waiting for kernel memory for "
			        "a fault at %#x", n > 1 ? ";" : "", th,
			        m->task[t->task].name, t->wait_va);
		else
			used += (size_t)snprintf(buf + used, len - used,
			        "%s thread %u (%s) %s %u", n > 1 ? ";" : "", th,
			        m->task[t->task].name, t->st == MT_SENDING ?
			        "sending to" : "receiving from",
			        t->st == MT_SENDING ? t->to : t->from);
	}
	return n;
}

int sim_machine_run(struct sim_machine *m, char *why, size_t why_len)
{
	km_thread_t th;
	char blocked[200];
	uint32_t n;

	m->why[0] = '\0';
	while (m->fatal == SIM_OK) {
		if (m->cfg.max_cycles && km_now(m->km) >= m->cfg.max_cycles &&
		    m->rq_len > 0) {
			sim_m_note(m, SIM_ESTATE, "stopped at cycle %llu: the "
			           "limit is %llu cycles",
			           (unsigned long long)km_now(m->km),
			           (unsigned long long)m->cfg.max_cycles);
			break;
		}
		th = rq_pop(m);
		if (th == KM_NO_THREAD)
			break;
		run_slice(m, th);
	}
	if (m->cfg.record != NULL)
		flush_user(m);
	if (m->fatal == SIM_OK && m->why[0] == '\0' &&
	    (n = blocked_threads(m, blocked, sizeof blocked)) > 0 &&
	    m->rq_len == 0)
		sim_m_note(m, SIM_ESTATE, "deadlock: %u threads blocked "
		           "for good:%s", n, blocked);
	if (why != NULL && why_len > 0)
		snprintf(why, why_len, "%s", m->why);
	if (m->fatal != SIM_OK)
		return m->fatal;
	return m->why[0] != '\0' ? SIM_ESTATE : SIM_OK;
}
