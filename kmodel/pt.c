/*
 * Page tables and node tables: the IA-32 two-level structures the MMU
 * walks (a directory of 1024 PDEs, tables of 1024 PTEs), the node table
 * beside each page table (per PTE, the receiver part of its mapping), and
 * the node directory (per PDE, how many entries of that table are in use).
 * All of them live in kernel pages; see kmem.c for how those are obtained.
 */
#include "internal.h"

void km_set_pte_observer(struct km *km, km_pte_observer fn, void *ctx)
{
	km->pte_obs = fn;
	km->pte_obs_ctx = ctx;
}

/* Tells the PTE observer that entries of `tk` changed (see kmodel.h):
 * from the page holding `va` (a faulting address, maybe), `pages` of them. */
void km_pte_notify(struct km *km, const struct km_task *tk, km_vaddr_t va,
                   uint32_t pages, enum km_pte_change change)
{
	if (km->pte_obs != NULL)
		km->pte_obs(km->pte_obs_ctx, (km_task_t)(tk - km->task),
		            va & ~(KM_PAGE_SIZE - 1), pages, change);
}

static uint32_t pte_bits(unsigned rights)
{
	return KM_PTE_P | KM_PTE_US | ((rights & KM_W) ? KM_PTE_RW : 0);
}

/* Adds to the node directory's live count for a PDE, if the node
 * directory is in (a revoked one recounts when it comes back). */
static void nd_add(struct km *km, struct km_task *tk, km_vaddr_t va, int d)
{
	uint32_t *nde;

	if (!km_present(KM_ND(tk)))
		return;
	nde = &km_words(km, KM_ND(tk))[KM_PDX(va)];
	KM_ASSERT(d > 0 || *nde > 0);
	*nde += (uint32_t)d;
}

/* Enters a page: PTE, node-table entry, and the node directory's count.
 * The page table and node table are present; the slot is empty. */
void km_pt_set(struct km *km, struct km_task *tk, km_vaddr_t va,
               km_pfn_t pfn, unsigned rights, uint32_t nte)
{
	uint32_t *pte = km_pte_slot(km, tk, va);
	uint32_t *nt = km_nte_slot(km, tk, va);

	KM_ASSERT(pte != NULL && nt != NULL);
	KM_ASSERT(*nt == KM_NTE_NONE && *pte == 0);
	*pte = km_phys(km, pfn) | pte_bits(rights);
	*nt = nte;
	nd_add(km, tk, va, 1);
	km_pte_notify(km, tk, va, 1, KM_PTE_ADDED);
}

/* Takes the PTE of a page leaving the task, if its table is in.  A
 * mapping whose PTE awaited its refill (or was hidden while lent) needs
 * none now; a UTCB page never awaits one. */
static void pte_drop(struct km *km, struct km_task *tk, km_vaddr_t va,
                     bool utcb)
{
	uint32_t *pte = km_pte_slot(km, tk, va);

	if (pte == NULL)
		return;
	if (*pte == 0 && !utcb) {
		KM_ASSERT(tk->pt_missing[KM_PDX(va)] > 0);
		tk->pt_missing[KM_PDX(va)]--;
	}
	if (*pte != 0) {
		*pte = 0;
		km_pte_notify(km, tk, va, 1, KM_PTE_REMOVED);
	}
}

/* Removes a page entered with km_pt_set.  Its page table may be out (the
 * PTE went with it) or back but not yet refilled. */
void km_pt_clear(struct km *km, struct km_task *tk, km_vaddr_t va)
{
	uint32_t *nt = km_nte_slot(km, tk, va);

	KM_ASSERT(nt != NULL && *nt != KM_NTE_NONE);
	pte_drop(km, tk, va, *nt == KM_NTE_UTCB);
	*nt = KM_NTE_NONE;
	nd_add(km, tk, va, -1);
}

/*
 * km_pt_clear for a mapping whose node table is revoked: its PTE, and its
 * count in the node directory and in what the kernel kept of the table,
 * go.  The table's form still names the mapping, so it may not come back
 * as it is: it is marked discarded, to be rebuilt from the mapping
 * database when it is next brought in.
 */
void km_pt_clear_out(struct km *km, struct km_task *tk, km_vaddr_t va)
{
	struct km_pages *nts = &tk->page[KM_KT_NT];
	struct km_outmeta *m = km_pages_meta(nts, KM_PDX(va));

	KM_ASSERT(KM_NT(tk, KM_PDX(va)) == KM_OUT_PFN && m != NULL &&
	          m->count > 0);
	pte_drop(km, tk, va, false);
	m->count--;
	nts->lost[KM_PDX(va)] = 1;
	nd_add(km, tk, va, -1);
}

/* Changes the rights of an entered page, keeping its A and D bits.  A
 * missing PTE gets the new rights at its refill. */
void km_pt_protect(struct km *km, struct km_task *tk, km_vaddr_t va,
                   unsigned rights)
{
	uint32_t *pte = km_pte_slot(km, tk, va);

	if (pte != NULL && (*pte & KM_PTE_P)) {
		uint32_t old = *pte;

		*pte = (old & ~KM_PTE_RW) | ((rights & KM_W) ? KM_PTE_RW : 0);
		if (*pte != old)
			km_pte_notify(km, tk, va, 1, (*pte & KM_PTE_RW) ?
			              KM_PTE_ADDED : KM_PTE_REMOVED);
	}
}

/* Takes a mapping's PTE away while the kernel uses its frame.  The
 * table may be out (nothing to clear) or back but not yet refilled.  A
 * hidden PTE counts as missing, like any mapping's PTE that is 0. */
void km_pt_hide(struct km *km, struct km_task *tk, km_vaddr_t va)
{
	uint32_t *pte = km_pte_slot(km, tk, va);

	if (pte == NULL || *pte == 0)
		return;
	*pte = 0;
	tk->pt_missing[KM_PDX(va)]++;
	km_pte_notify(km, tk, va, 1, KM_PTE_REMOVED);
}

/* Gives a mapping whose lending ended its PTE back (writable: only
 * writable pages are lent), if its table is in. */
void km_pt_unhide(struct km *km, struct km_task *tk, km_vaddr_t va,
                  km_pfn_t pfn)
{
	uint32_t *pte = km_pte_slot(km, tk, va);

	if (pte == NULL)
		return;
	KM_ASSERT(*pte == 0 && tk->pt_missing[KM_PDX(va)] > 0);
	*pte = km_phys(km, pfn) | pte_bits(KM_R | KM_W);
	tk->pt_missing[KM_PDX(va)]--;
	km_pte_notify(km, tk, va, 1, KM_PTE_ADDED);
}

/* Re-enters the PTE of a mapping whose page table came back vacant. */
void km_pt_refill(struct km *km, struct km_task *tk, km_vaddr_t va,
                  km_pfn_t pfn, unsigned rights)
{
	uint32_t *pte = km_pte_slot(km, tk, va);

	KM_ASSERT(pte != NULL && *pte == 0 && tk->pt_missing[KM_PDX(va)] > 0);
	*pte = km_phys(km, pfn) | pte_bits(rights);
	tk->pt_missing[KM_PDX(va)]--;
	km_charge(km, KM_C_PT_REFILL);
	km_pte_notify(km, tk, va, 1, KM_PTE_ADDED);
}

/* Does a present PTE allow `access` from user mode? */
unsigned km_pte_rights_ok(uint32_t pte, unsigned access)
{
	if (!(pte & KM_PTE_P) || !(pte & KM_PTE_US))
		return 0;
	if ((access & KM_ACC_WRITE) && !(pte & KM_PTE_RW))
		return 0;
	return 1;
}

uint32_t km_task_cr3(const struct km *km, km_task_t task)
{
	const struct km_task *tk = km_task_get(km, task);

	return tk && km_present(KM_PD(tk)) ? km_phys(km, KM_PD(tk)) : 0;
}

uint32_t km_pte(const struct km *km, km_task_t task, km_vaddr_t va)
{
	const struct km_task *tk = km_task_get(km, task);
	const uint32_t *pte = tk ? km_pte_slot(km, tk, va) : NULL;

	return pte ? *pte : 0;
}

void km_set_kernel_pdes(struct km *km, const uint32_t pdes[256])
{
	memcpy(km->kernel_pde, pdes, sizeof km->kernel_pde);
	for (km_task_t t = 0; t < km->cfg.max_tasks; t++) {
		const struct km_task *tk = &km->task[t];

		if (tk->live && km_present(KM_PD(tk)))
			memcpy(&km_words(km, KM_PD(tk))[KM_USER_PDES], pdes,
			       sizeof km->kernel_pde);
	}
}
