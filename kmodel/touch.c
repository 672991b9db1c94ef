/*
 * The user-fault path and the default pager.  km_touch is what the MMU and
 * the kernel's page-fault entry do for one access: a PTE that allows it
 * only gets its A and D bits; anything else is a user page fault, which the
 * kernel turns into a fault IPC to the thread's pager.  The default pager is
 * an ordinary task whose pool comes from sigma0 by map; it answers with a
 * map of one of its own zeroed pages, which may make the kernel fault in a
 * page table, a node table and mapping-database pages first.
 */
#include "internal.h"

/* The default pager keeps its pool from 4 MiB up, below the UTCB area, and
 * asks sigma0 for this many frames at a time. */
#define DP_BASE 0x00400000u
#define DP_CHUNK 256u

km_task_t km_default_pager(const struct km *km)
{
	return km->defpager;
}

/* Gives back a pager page that has no mapping derived from it. */
static void dp_push(struct km *km, uint32_t vpn)
{
	if (km->dp_nfree == km->dp_cap) {
		uint32_t cap = km->dp_cap ? 2 * km->dp_cap : 256;
		uint32_t *n = realloc(km->dp_free, cap * sizeof *n);

		if (n == NULL) {
			km->dp_lost = true;     /* found again by a scan */
			return;
		}
		km->dp_free = n;
		km->dp_cap = cap;
	}
	km->dp_free[km->dp_nfree++] = vpn;
}

/* Is the pager's page `vpn` mapped to it and not mapped onwards? */
static bool dp_page_free(const struct km *km, uint32_t vpn)
{
	uint32_t slot = km_recv_at(km, km->defpager, vpn);
	const struct km_recv *r;

	if (slot == KM_NONE)
		return false;
	r = &km_part(km, km->defpager, slot)->r;
	return r->first_child == KM_NONE && !km_lent(km, km->defpager, r);
}

/*
 * Picks a page of the default pager's pool to map: a page given back, a
 * page never used, or, after a scan finds none, a new chunk from sigma0.
 */
static int dp_alloc(struct km *km, uint32_t *vpn)
{
	uint32_t base = DP_BASE >> KM_PAGE_SHIFT;
	uint32_t chunk;
	int err;

	while (km->dp_nfree > 0) {
		uint32_t v = km->dp_free[--km->dp_nfree];

		if (dp_page_free(km, v)) {
			*vpn = v;
			return KM_OK;
		}
	}
	while (km->dp_next < km->dp_top) {
		uint32_t v = km->dp_next++;

		if (dp_page_free(km, v)) {
			*vpn = v;
			return KM_OK;
		}
	}
	/* A page whose return could not be recorded is found by a scan. */
	if (km->dp_lost) {
		km->dp_lost = false;
		for (uint32_t v = base; v < km->dp_top; v++)
			if (dp_page_free(km, v))
				dp_push(km, v);
		if (km->dp_nfree > 0)
			return dp_alloc(km, vpn);
	}

	chunk = km->s0_free < DP_CHUNK ? km->s0_free : DP_CHUNK;
	if (chunk == 0 || km->dp_top + chunk > (KM_UTCB_AREA >> KM_PAGE_SHIFT))
		return KM_ENOMEM;
	/* Growing the pool is the pager's own provisioning, not part of the
	 * fault being served: it takes simulated time, but its costs and
	 * kernel allocations are not charged to the fault's record. */
	{
		struct km_fault_rec *rec = km->cur_rec;
		uint64_t parent = km->op_parent, t0 = km->now;

		km->cur_rec = NULL;
		km->op_parent = 0;
		err = km_sigma0_map(km, km->defpager,
		                    km->dp_top << KM_PAGE_SHIFT, chunk, KM_RWX);
		km->cur_rec = rec;
		km->op_parent = parent;
		km->pager_cycles += km->now - t0;
	}
	if (err != KM_OK)
		return err;
	km->dp_top += chunk;
	*vpn = km->dp_next++;
	return KM_OK;
}

/* Called by the mapping database when a page of the default pager loses
 * its last derived mapping: the pager may hand it out again.  (A real
 * pager would learn this from its own bookkeeping; the in-model pager
 * takes the shortcut.) */
void km_dp_page_freed(struct km *km, uint32_t vpn)
{
	dp_push(km, vpn);
}

static void set_accessed(uint32_t *pte, unsigned access)
{
	*pte |= KM_PTE_A | ((access & KM_ACC_WRITE) ? KM_PTE_D : 0);
}

/* Brings back the revoked pages a touch needs before it can look at the
 * mapping: the directory, and for a mapping or UTCB page the table (the
 * need for a UTCB page brings its table along). */
static int touch_restore(struct km *km, struct km_task *tk, km_task_t t,
                         km_vaddr_t va, uint32_t nte)
{
	int err = KM_OK;

	km_op_begin(km);
	if (!km_present(KM_PD(tk)))
		err = km_op_need(km, t, KM_KT_PD, 0);
	if (err == KM_OK && nte == KM_NTE_UTCB)
		err = km_op_need(km, t, KM_KT_UTCB,
		                 (va - KM_UTCB_AREA) >> KM_PAGE_SHIFT);
	else if (err == KM_OK && nte != KM_NTE_NONE)
		err = km_op_need(km, t, KM_KT_PT, KM_PDX(va));
	if (err == KM_OK)
		err = km_op_acquire(km);
	else
		km_op_rollback(km);
	return err;
}

/* Brings back the node table covering va and the mapping node it names,
 * undoing first what a lost one held. */
static int touch_bring(struct km *km, km_task_t t, km_vaddr_t va)
{
	uint32_t slot;
	int err;

	km_op_begin(km);
	for (;;) {
		err = km_recv_find(km, t, va >> KM_PAGE_SHIFT, &slot);
		if (err == KM_OK)
			err = km_part_bring(km, t, slot);
		if (err != KM_ERETRY)
			return err;
		if ((err = km_repair(km)) != KM_OK)
			return err;
	}
}

/*
 * Fault ordering across the user-fault IPC: before a fault goes to a user
 * pager, the kernel obtains the kernel pages the pager's map will need
 * (the faulting task's page table and node table, a receiver part, the
 * pager's sender part), while nobody waits on them.  Otherwise the map
 * would fault to the task's kpager in the middle of it, and a kpager that
 * is also the task's pager would wait on itself: the paper's deadlock.
 */
static int pager_prefault(struct km *km, const struct km_thread *th,
                          km_vaddr_t va)
{
	int err;

	do {
		km_op_begin(km);
		err = km_op_need(km, th->task, KM_KT_PT, KM_PDX(va));
		if (err == KM_OK)
			err = km_op_need(km, th->task, KM_KT_NT, KM_PDX(va));
		if (err == KM_OK)
			err = km_mdb_need_parts(km, th->task,
			                        th->pager == th->task ? 2 : 1);
		if (err == KM_OK && th->pager != th->task &&
		    th->pager != KM_SIGMA0)
			err = km_mdb_need_parts(km, th->pager, 1);
		if (err == KM_OK)
			err = km_op_acquire(km);
		else
			km_op_rollback(km);
	} while (err == KM_ERETRY && (err = km_repair(km)) == KM_OK);
	return err;
}

/* A touch the MMU did not allow: the page fault, served for `thread`
 * (a live thread of task tk; pte is va's PTE slot if the directory is in). */
static int touch_fault(struct km *km, km_thread_t thread,
                       const struct km_thread *th, struct km_task *tk,
                       km_vaddr_t va, unsigned access, uint32_t *pte)
{
	struct km_fault_rec rec, *outer;
	uint64_t saved_parent = km->op_parent;
	uint32_t *ntp, nte, vpn = 0;
	int err;

	/* The node table, and the mapping node it names, may be revoked:
	 * the kernel needs them back to know what is mapped here (and any
	 * repair left over done, to read them). */
	if ((err = km_settle(km)) != KM_OK ||
	    (err = touch_bring(km, th->task, va)) != KM_OK)
		return err;
	ntp = km_nte_slot(km, tk, va);
	nte = ntp != NULL ? *ntp : KM_NTE_NONE;
	/* Nothing but the kernel maps the UTCB area. */
	if (nte == KM_NTE_NONE && va >= KM_UTCB_AREA &&
	    va < KM_UTCB_AREA + KM_UTCB_AREA_SIZE)
		return KM_ERESERVED;
	/* Only the default pager runs inside the model; a thread whose pager
	 * is a user task needs that task to map the page (by IPC, in the
	 * simulator).  The kernel pages that map will need come first. */
	if (nte == KM_NTE_NONE && th->pager != km->defpager) {
		if (!km->cfg.unordered &&
		    (err = pager_prefault(km, th, va)) != KM_OK)
			return err;
		return KM_ENOMAP;
	}

	outer = km_rec_begin(km, &rec, KM_FK_USER, th->task);
	rec.thread = thread;
	rec.addr = va;
	rec.access = access;
	km->op_parent = rec.seq;
	km->ufaults++;
	tk->ufaults++;
	km_charge(km, KM_C_TRAP_ENTRY);
	km_charge(km, KM_C_PF_DECODE);
	km_charge(km, KM_C_PT_WALK);

	/* A lost node table met on the way is undone, and the page looked
	 * up again. */
	while ((err = touch_restore(km, tk, th->task, va, nte)) == KM_ERETRY) {
		if ((err = km_repair(km)) != KM_OK ||
		    (err = touch_bring(km, th->task, va)) != KM_OK)
			break;
		ntp = km_nte_slot(km, tk, va);
		nte = ntp != NULL ? *ntp : KM_NTE_NONE;
		if (nte == KM_NTE_NONE && th->pager != km->defpager) {
			err = KM_ENOMAP;
			break;
		}
	}
	if (err != KM_OK) {
		rec.decision = KM_D_FAILED;
	} else if (nte != KM_NTE_NONE) {
		/* The page is mapped: the kernel knows it from the mapping
		 * database, and no pager needs asking. */
		const struct km_recv *r = nte == KM_NTE_UTCB ? NULL :
			&km_part(km, th->task, nte - 1)->r;

		pte = km_pte_slot(km, tk, va);
		rec.decision = KM_D_PRESENT;
		if (r != NULL && km_lent(km, th->task, r)) {
			rec.decision = KM_D_DENIED;     /* in the kernel's use */
			err = KM_EACCES;
		} else if (r != NULL && *pte == 0) {
			km_pt_refill(km, tk, va, r->pfn, r->rights);
			rec.decision = KM_D_REFILLED;
			rec.pfn = r->pfn;
		}
		if (err == KM_OK && !km_pte_rights_ok(*pte, access)) {
			rec.decision = KM_D_DENIED;
			err = KM_EACCES;
		}
	} else if (pte != NULL && (*pte & KM_PTE_P)) {
		/* A write to a read-only mapping: the default pager did not
		 * make it, so it cannot widen it. */
		rec.decision = KM_D_DENIED;
		err = KM_EACCES;
	} else {
		km_charge(km, KM_C_FAULT_IPC);
		km_charge(km, KM_C_PAGER_HANDLER);
		err = dp_alloc(km, &vpn);
		if (err != KM_OK) {
			rec.decision = KM_D_FAILED;
		} else {
			uint32_t slot = km_recv_at(km, km->defpager, vpn);
			km_pfn_t pfn = km_part(km, km->defpager, slot)->r.pfn;

			/* The pager hands out zeroed memory. */
			if (!km->cfg.no_user_data)
				memset(km_fp(km, pfn), 0, KM_PAGE_SIZE);
			km_charge(km, KM_C_ZERO_FRAME);
			km_charge(km, KM_C_REPLY_IPC);
			err = km_map_one(km, km->defpager, vpn, th->task,
			                 va >> KM_PAGE_SHIFT, KM_RWX);
			if (err == KM_OK) {
				rec.decision = KM_D_MAPPED;
				rec.pfn = pfn;
			} else {
				rec.decision = KM_D_FAILED;
				dp_push(km, vpn);
			}
		}
		pte = km_pte_slot(km, tk, va);
	}
	if (err == KM_OK)
		set_accessed(pte, access);
	km_charge(km, KM_C_TRAP_EXIT);
	km_rec_end(km, &rec, outer);
	km->op_parent = saved_parent;
	return err;
}

int km_touch(struct km *km, km_thread_t thread, km_vaddr_t va,
             unsigned access)
{
	const struct km_thread *th = km_thread_get(km, thread);
	struct km_task *tk;
	struct km_behalf was;
	uint32_t *pte;
	int err;

	/* Is the thread live, the access kind valid, the address user space? */
	if (th == NULL)
		return KM_ENOTHREAD;
	if (access == 0 || (access & ~(KM_ACC_READ | KM_ACC_WRITE | KM_ACC_EXEC)))
		return KM_EINVAL;
	if (va >= KM_USER_TOP)
		return KM_EINVAL;
	tk = &km->task[th->task];

	/* What the MMU does when the directory and the PTE allow it. */
	pte = km_present(KM_PD(tk)) ? km_pte_slot(km, tk, va) : NULL;
	if (pte != NULL && km_pte_rights_ok(*pte, access)) {
		set_accessed(pte, access);
		return KM_OK;
	}
	was = km_enter(km, thread);
	err = touch_fault(km, thread, th, tk, va, access, pte);
	km_leave(km, was);
	return err;
}
