/*
 * Tasks and threads.  A task is an address space and the resource
 * principal: every kernel page is charged to one.  A thread's control
 * block is split as in the paper: the UTCB (512 bytes, user visible, in a
 * UTCB page the kernel maps into the task's UTCB area), the pageable KTCB
 * part (a 1 KiB slot of a KTCB page), and a small pinned part (struct
 * km_thread; KM_KTCB_PINNED bytes in a real kernel).
 */
#include "internal.h"

#define KM_UTCB_SLOTS (KM_UTCB_AREA_SIZE / KM_UTCB_SIZE)   /* per task */
#define KM_UTCB_PER_PAGE (KM_PAGE_SIZE / KM_UTCB_SIZE)
#define KM_KTCB_PER_PAGE (KM_PAGE_SIZE / KM_KTCB_SIZE)

static bool kpager_live(const struct km *km, km_kpager_t k)
{
	return k < km->nkpagers && km->kpager[k].live;
}

static int task_create_op(struct km *km, km_kpager_t kpager, km_task_t *id)
{
	struct km_task *tk;
	km_task_t t;
	int err;

	/* Is the kpager the in-kernel pool or a live kpager? */
	if (kpager != KM_ROOT_KPAGER && !kpager_live(km, kpager))
		return KM_ENOKPAGER;
	/* Is there a free task id? */
	for (t = 1; t < km->cfg.max_tasks && km->task[t].live; t++)
		;
	if (t == km->cfg.max_tasks)
		return KM_ELIMIT;

	tk = &km->task[t];
	memset(tk, 0, sizeof *tk);
	if (km_task_alloc_pages(tk) != KM_OK)
		return KM_EIO;
	tk->kpager = kpager;
	tk->live = true;

	/* (A page lost meanwhile, the kpager's own, is undone; then again.) */
	do {
		km_op_begin(km);
		if ((err = km_op_need(km, t, KM_KT_PD, 0)) == KM_OK &&
		    (err = km_op_need(km, t, KM_KT_ND, 0)) == KM_OK)
			err = km_op_acquire(km);
	} while (err == KM_ERETRY && (err = km_repair(km)) == KM_OK);
	if (err != KM_OK) {
		km_op_rollback(km);
		km_task_free_pages(tk);
		memset(tk, 0, sizeof *tk);
		return err;
	}
	km_charge(km, KM_C_TASK_CREATE);
	if (kpager != KM_ROOT_KPAGER)
		km->kpager[kpager].clients++;
	km->ntasks++;
	*id = t;
	return KM_OK;
}

int km_task_create(struct km *km, km_kpager_t kpager, km_task_t *id)
{
	struct km_behalf was = km_enter(km, KM_NO_THREAD);
	int err = task_create_op(km, kpager, id);

	km_leave(km, was);
	return err;
}

/* Is any slot of page `page` (of `per` slots) still used? */
static bool slots_used(const km_thread_t *tab, uint32_t page, uint32_t per)
{
	for (uint32_t i = 0; i < per; i++)
		if (tab[page * per + i] != 0)
			return true;
	return false;
}

/* Ends the kernel's use of a UTCB or KTCB page left without threads: a
 * present one is freed, a revoked one forgotten (its form is just bytes
 * of its kpager's now). */
static void slot_page_done(struct km *km, struct km_kpage kp)
{
	if (km_kpage_pfn(km, kp) != KM_NO_PFN)
		km_kpage_free(km, kp);
	else if (km_kpage_is_out(km, kp))
		km_kpage_forget(km, kp);
}

/* Frees a thread's slots, and the UTCB and KTCB pages left empty. */
static void thread_free(struct km *km, km_thread_t id)
{
	struct km_thread *th = &km->thread[id];
	km_task_t t = th->task;
	struct km_task *tk = &km->task[t];
	uint32_t up = th->utcb / KM_UTCB_PER_PAGE;
	uint32_t kp = th->ktcb / KM_KTCB_PER_PAGE;
	km_pfn_t kpfn = tk->page[KM_KT_KTCB].pfn[kp];

	tk->utcb_slot[th->utcb] = 0;
	tk->ktcb_slot[th->ktcb] = 0;
	if (km_present(kpfn))
		memset(km_fp(km, kpfn) + (th->ktcb % KM_KTCB_PER_PAGE) *
		       KM_KTCB_SIZE, 0, KM_KTCB_SIZE);
	if (!slots_used(tk->utcb_slot, up, KM_UTCB_PER_PAGE))
		slot_page_done(km, (struct km_kpage){ t, KM_KT_UTCB, up });
	if (!slots_used(tk->ktcb_slot, kp, KM_KTCB_PER_PAGE))
		slot_page_done(km, (struct km_kpage){ t, KM_KT_KTCB, kp });
	if (th->pager != t)
		km->task[th->pager].pagees--;
	memset(th, 0, sizeof *th);
	tk->nthreads--;
	km->nthreads--;
	km_charge(km, KM_C_THREAD_DELETE);
}

int km_task_set_kpager(struct km *km, km_task_t t, km_kpager_t kpager)
{
	struct km_task *tk = km_task_get(km, t);

	if (tk == NULL || t == KM_SIGMA0)
		return tk == NULL ? KM_ENOTASK : KM_EPERM;
	if (kpager != KM_ROOT_KPAGER && !kpager_live(km, kpager))
		return KM_ENOKPAGER;
	/* Nothing of the task may be out on loan from the old kpager. */
	for (int ty = 0; ty < KM_KT_COUNT; ty++) {
		if (tk->nout[ty] > 0)
			return KM_EBUSY;
		for (uint32_t i = 0; i < tk->page[ty].len; i++)
			if (km_present(tk->page[ty].pfn[i]) &&
			    !km->frame[tk->page[ty].pfn[i]].pool)
				return KM_EBUSY;
	}
	if (tk->kpager != KM_ROOT_KPAGER)
		km->kpager[tk->kpager].clients--;
	if (kpager != KM_ROOT_KPAGER) {
		km->kpager[kpager].clients++;
		/* Its node tables, all from the pool, are a client's now
		 * (see km_pool_reclaim). */
		if (km->cfg.kmem == KM_KMEM_KPAGER)
			km->kpool_nts = km->cfg.kpool_frames;
	}
	tk->kpager = kpager;
	return KM_OK;
}

static int id_cmp(const void *a, const void *b)
{
	km_thread_t x = *(const km_thread_t *)a, y = *(const km_thread_t *)b;

	return (x > y) - (x < y);
}

uint32_t km_task_threads(const struct km *km, km_task_t t, km_thread_t *out,
                         uint32_t cap)
{
	const struct km_task *tk = km_task_get(km, t);
	uint32_t n = 0;

	if (tk == NULL)
		return 0;
	if (cap >= tk->nthreads) {
		/* The KTCB slots name every thread: no scan of all ids. */
		for (uint32_t i = 0; i < tk->ktcb_cap; i++)
			if (tk->ktcb_slot[i] != 0)
				out[n++] = tk->ktcb_slot[i];
		KM_ASSERT(n == tk->nthreads);
		qsort(out, n, sizeof *out, id_cmp);
		return n;
	}
	for (km_thread_t i = 1; i < km->cfg.max_threads; i++)
		if (km->thread[i].live && km->thread[i].task == t && n++ < cap)
			out[n - 1] = i;
	return n;
}

/* Frees task t's threads in ascending id order, the order a run's results
 * were always made in. */
static void free_threads(struct km *km, km_task_t t)
{
	uint32_t n = km->task[t].nthreads;
	km_thread_t one, *ids = n <= 1 ? &one : malloc(n * sizeof *ids);

	if (n == 0)
		return;
	if (ids == NULL) {
		/* No host memory for the list: every id, in order. */
		for (km_thread_t i = 1; i < km->cfg.max_threads; i++)
			if (km->thread[i].live && km->thread[i].task == t)
				thread_free(km, i);
		return;
	}
	n = km_task_threads(km, t, ids, n);
	for (uint32_t i = 0; i < n; i++)
		thread_free(km, ids[i]);
	if (ids != &one)
		free(ids);
}

static int task_destroy_op(struct km *km, km_task_t t)
{
	struct km_task *tk = km_task_get(km, t);
	uint64_t marks_at;
	bool simple;
	int err;

	/* Does the task exist, and is it not sigma0? */
	if (t == KM_SIGMA0)
		return KM_EPERM;
	if (tk == NULL)
		return KM_ENOTASK;
	/* Does it run a kpager that still lends pages or has clients? */
	for (km_kpager_t k = 1; k < km->nkpagers; k++)
		if (km->kpager[k].live && km->kpager[k].task == t &&
		    (km->kpager[k].clients > 0 || km->kpager[k].st.lent > 0))
			return KM_EBUSY;
	/* Is it the pager of a thread of another task? */
	if (tk->pagees > 0)
		return KM_EBUSY;
	/* Can every mapping it holds, and every one derived from them, go
	 * (bringing back what was revoked)?  Its node tables are all back
	 * then, the UTCB area's too. */
	if ((err = km_settle(km)) != KM_OK)
		return err;
	km->op_evictions = 0;
	/* (In the simple case the walk would only mark pages used, at this
	 * time: km_unmap_all marks them as it goes.) */
	marks_at = km->now;
	if (!(simple = km_unmap_all_simple(km, t))) {
		while ((err = km_unmap_all_prepare(km, t)) == KM_ERETRY)
			if ((err = km_repair(km)) != KM_OK)
				return err;
		if (err != KM_OK)
			return err;
	} else {
		km->fast_destroys++;
	}

	/* The mappings go first, then the threads, then the MDB pages left
	 * empty.  Taking the mappings away frees no kernel page, and calls a
	 * kpager only to revoke a page lent from what goes (never in the
	 * simple case): so the threads' pages go back to their kpager with
	 * every mark made, fast path or not, as a kpager may read them. */
	km_unmap_all(km, t, simple ? &marks_at : NULL);
	free_threads(km, t);
	km_mdb_trim(km);
	for (km_kpager_t k = 1; k < km->nkpagers; k++) {
		struct km_kpager *kp = &km->kpager[k];

		if (kp->live && kp->task == t) {
			if (kp->ops->fini != NULL)
				kp->ops->fini(kp->state);
			memset(kp, 0, sizeof *kp);
		}
	}
	km_task_free_kpages(km, t);
	if (tk->kpager != KM_ROOT_KPAGER)
		km->kpager[tk->kpager].clients--;
	km_task_free_pages(tk);
	free(tk->utcb_slot);
	free(tk->ktcb_slot);
	memset(tk, 0, sizeof *tk);
	if (t == km->defpager)
		km->defpager = KM_SIGMA0;
	km->ntasks--;
	km_charge(km, KM_C_TASK_DELETE);
	return KM_OK;
}

int km_task_destroy(struct km *km, km_task_t t)
{
	struct km_behalf was = km_enter(km, KM_NO_THREAD);
	int err = task_destroy_op(km, t);

	km_leave(km, was);
	return err;
}

/* The lowest free slot of a per-task slot table, growing it up to `max`;
 * KM_NONE if all `max` are used or the host refuses memory. */
static uint32_t slot_find(km_thread_t **tab, uint32_t *cap, uint32_t max)
{
	uint32_t i, ncap;
	km_thread_t *n;

	for (i = 0; i < *cap; i++)
		if ((*tab)[i] == 0)
			return i;
	if (*cap >= max)
		return KM_NONE;
	ncap = *cap ? *cap * 2 : 16;
	if (ncap > max)
		ncap = max;
	n = realloc(*tab, ncap * sizeof *n);
	if (n == NULL)
		return KM_NONE;
	memset(n + *cap, 0, (ncap - *cap) * sizeof *n);
	*tab = n;
	*cap = ncap;
	return i;
}

static int thread_create_op(struct km *km, km_task_t t, km_task_t pager,
                            km_thread_t *id)
{
	struct km_task *tk = km_task_get(km, t);
	struct km_ktcb *kt;
	km_thread_t th;
	uint32_t us, ks;
	int err;

	/* Does the task exist, with an address space? */
	if (tk == NULL)
		return KM_ENOTASK;
	if (t == KM_SIGMA0)
		return KM_EPERM;
	/* Does the pager exist?  (0 is the default pager.) */
	if (pager == 0 ? km_task_get(km, km->defpager) == NULL ||
	                 km->defpager == KM_SIGMA0
	               : km_task_get(km, pager) == NULL || pager == KM_SIGMA0)
		return KM_ENOTASK;
	/* Is there a thread id, a UTCB slot and a KTCB slot? */
	for (th = 1; th < km->cfg.max_threads && km->thread[th].live; th++)
		;
	if (th == km->cfg.max_threads)
		return KM_ELIMIT;
	us = slot_find(&tk->utcb_slot, &tk->utcb_cap, KM_UTCB_SLOTS);
	ks = slot_find(&tk->ktcb_slot, &tk->ktcb_cap, KM_UTCB_SLOTS);
	if (us == KM_NONE || ks == KM_NONE)
		return KM_ELIMIT;
	if (km_pages_reserve(&tk->page[KM_KT_UTCB], us / KM_UTCB_PER_PAGE + 1) ||
	    km_pages_reserve(&tk->page[KM_KT_KTCB], ks / KM_KTCB_PER_PAGE + 1))
		return KM_EIO;

	/* The slots' pages, new or back from their kpager (and with a UTCB
	 * page, what it is entered into). */
	do {
		km_op_begin(km);
		err = km_op_need(km, t, KM_KT_UTCB, us / KM_UTCB_PER_PAGE);
		if (err == KM_OK)
			err = km_op_need(km, t, KM_KT_KTCB,
			                 ks / KM_KTCB_PER_PAGE);
		if (err == KM_OK)
			err = km_op_acquire(km);
	} while (err == KM_ERETRY && (err = km_repair(km)) == KM_OK);
	if (err != KM_OK) {
		km_op_rollback(km);
		return err;
	}

	km->thread[th].live = true;
	km->thread[th].state = KM_TS_READY;
	km->thread[th].stop_reason = KM_STOP_NONE;
	km->thread[th].task = t;
	km->thread[th].pager = pager == 0 ? km->defpager : pager;
	if (km->thread[th].pager != t)
		km->task[km->thread[th].pager].pagees++;
	km->thread[th].utcb = us;
	km->thread[th].ktcb = ks;
	tk->utcb_slot[us] = th;
	tk->ktcb_slot[ks] = th;
	memset(km_fp(km, tk->page[KM_KT_UTCB].pfn[us / KM_UTCB_PER_PAGE]) +
	       (us % KM_UTCB_PER_PAGE) * KM_UTCB_SIZE, 0, KM_UTCB_SIZE);
	kt = (struct km_ktcb *)(void *)(km_fp(km, tk->page[KM_KT_KTCB].pfn[ks / KM_KTCB_PER_PAGE]) +
	                                (ks % KM_KTCB_PER_PAGE) * KM_KTCB_SIZE);
	memset(kt, 0, sizeof *kt);
	kt->magic = KM_KTCB_MAGIC;
	kt->thread = th;
	kt->state = KM_TS_READY;
	kt->pager = km->thread[th].pager;
	tk->nthreads++;
	km->nthreads++;
	km_charge(km, KM_C_THREAD_CREATE);
	*id = th;
	return KM_OK;
}

int km_thread_create(struct km *km, km_task_t t, km_task_t pager,
                     km_thread_t *id)
{
	struct km_behalf was = km_enter(km, KM_NO_THREAD);
	int err = thread_create_op(km, t, pager, id);

	km_leave(km, was);
	return err;
}

static struct km_thread *thread_get(const struct km *km, km_thread_t th)
{
	if (th == KM_NO_THREAD || th >= km->cfg.max_threads ||
	    !km->thread[th].live)
		return NULL;
	return &km->thread[th];
}

/* Does UTCB slot `utcb` hold the last thread of its page (so that its
 * end frees the page)? */
static bool utcb_page_goes(const struct km_task *tk, uint32_t utcb)
{
	uint32_t first = utcb / KM_UTCB_PER_PAGE * KM_UTCB_PER_PAGE;

	for (uint32_t i = first; i < first + KM_UTCB_PER_PAGE; i++)
		if (i != utcb && tk->utcb_slot[i] != 0)
			return false;
	return true;
}

static int thread_destroy_op(struct km *km, km_thread_t th)
{
	const struct km_thread *t;
	struct km_kpage nt;
	int err;

	if ((t = thread_get(km, th)) == NULL)
		return KM_ENOTHREAD;
	/* Freeing its UTCB page clears the page's mark in the UTCB area's
	 * node table, which must be in.  While that table cannot come back
	 * (a repair waits for a frame), a thread whose UTCB page stays, with
	 * another thread's UTCB in it, does not write the table and may
	 * still go. */
	nt = (struct km_kpage){ t->task, KM_KT_NT, KM_UTCB_PDE };
	km_op_begin(km);
	while ((err = km_bring(km, nt)) == KM_ERETRY)
		if ((err = km_repair(km)) != KM_OK)
			break;
	if (err != KM_OK && utcb_page_goes(&km->task[t->task], t->utcb))
		return err;
	thread_free(km, th);
	return KM_OK;
}

int km_thread_destroy(struct km *km, km_thread_t th)
{
	struct km_behalf was = km_enter(km, th);
	int err = thread_destroy_op(km, th);

	km_leave(km, was);
	return err;
}

int km_thread_state(const struct km *km, km_thread_t th,
                    enum km_thread_state *state, enum km_stop_reason *why)
{
	const struct km_thread *t = thread_get(km, th);

	if (t == NULL)
		return KM_ENOTHREAD;
	*state = (enum km_thread_state)t->state;
	if (why != NULL)
		*why = (enum km_stop_reason)t->stop_reason;
	return KM_OK;
}

static int thread_regs_op(struct km *km, km_thread_t th, uint32_t regs[10],
                          bool write)
{
	struct km_thread *t = thread_get(km, th);
	struct km_kpage kp;
	struct km_ktcb *k;
	km_pfn_t pfn;
	int err;

	if (t == NULL)
		return KM_ENOTHREAD;
	kp.task = t->task;
	kp.type = KM_KT_KTCB;
	kp.index = t->ktcb / KM_KTCB_PER_PAGE;
	/* Is its KTCB in the kernel?  If revoked, bring it back. */
	do {
		km_op_begin(km);
		err = km_op_need(km, kp.task, kp.type, kp.index);
		if (err == KM_OK)
			err = km_op_acquire(km);
	} while (err == KM_ERETRY && (err = km_repair(km)) == KM_OK);
	if (err != KM_OK) {
		km_op_rollback(km);
		return err;
	}
	pfn = km_kpage_pfn(km, kp);
	k = (struct km_ktcb *)(void *)(km_fp(km, pfn) +
	                               (t->ktcb % KM_KTCB_PER_PAGE) * KM_KTCB_SIZE);
	if (t->state == KM_TS_STOPPED) {
		if (!write)
			memset(regs, 0, 10 * sizeof regs[0]);
		return write ? KM_EPERM : KM_OK;
	}
	if (write)
		memcpy(k->regs, regs, sizeof k->regs);
	else
		memcpy(regs, k->regs, sizeof k->regs);
	return KM_OK;
}

int km_thread_regs(struct km *km, km_thread_t th, uint32_t regs[10], bool write)
{
	struct km_behalf was = km_enter(km, th);
	int err = thread_regs_op(km, th, regs, write);

	km_leave(km, was);
	return err;
}

int km_thread_task(const struct km *km, km_thread_t th, km_task_t *task)
{
	const struct km_thread *t = thread_get(km, th);

	if (t == NULL)
		return KM_ENOTHREAD;
	*task = t->task;
	return KM_OK;
}

int km_thread_utcb(const struct km *km, km_thread_t th, km_vaddr_t *va)
{
	const struct km_thread *t = thread_get(km, th);

	if (t == NULL)
		return KM_ENOTHREAD;
	*va = KM_UTCB_AREA + t->utcb * KM_UTCB_SIZE;
	return KM_OK;
}

/* For km_touch: the thread's task and pager, or NULL. */
const struct km_thread *km_thread_get(const struct km *km, km_thread_t th)
{
	return thread_get(km, th);
}

bool km_task_exists(const struct km *km, km_task_t task)
{
	return km_task_get(km, task) != NULL;
}

km_task_t km_task_next(const struct km *km, km_task_t after)
{
	for (km_task_t t = after + 1; t < km->cfg.max_tasks; t++)
		if (km->task[t].live)
			return t;
	return 0;
}

int km_task_stats(const struct km *km, km_task_t task,
                  struct km_task_stats *out)
{
	const struct km_task *tk = km_task_get(km, task);

	if (tk == NULL)
		return KM_ENOTASK;
	memset(out, 0, sizeof *out);
	for (int i = 0; i < KM_KT_COUNT; i++) {
		out->pages[i] = tk->npages[i];
		out->out[i] = tk->nout[i];
		out->group[km_ktype_group((enum km_ktype)i)] += tk->npages[i];
	}
	out->mappings = tk->nmappings;
	out->threads = tk->nthreads;
	out->kfaults = tk->kfaults;
	out->ufaults = tk->ufaults;
	return KM_OK;
}
