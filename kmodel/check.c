/*
 * km_check: every invariant of the model, checked from the bytes in the
 * frames and the pinned tables.  It reads only, never trusts a reference
 * before checking it, and bounds every walk, so a broken model makes it
 * return false, not crash.  Local checks (each part, each entry) come
 * first; the whole-tree walk runs only once they hold.
 */
#include "internal.h"

#define FAIL(...)                                                       \
	do {                                                            \
		snprintf(why, why_len, __VA_ARGS__);                    \
		return false;                                           \
	} while (0)

/* The part at (t, slot) if the reference is valid and of kind `tag`. */
static const union km_part *part_ok(const struct km *km, km_task_t t,
                                    uint32_t slot, int tag)
{
	const struct km_task *tk;
	uint32_t page = KM_SLOT_PAGE(slot), i = KM_SLOT_IDX(slot);
	const union km_part *p;

	if (t >= km->cfg.max_tasks || !km->task[t].live)
		return NULL;
	tk = &km->task[t];
	if (page >= tk->page[KM_KT_MDB].len || i >= KM_MDB_PARTS ||
	    !km_present(tk->page[KM_KT_MDB].pfn[page]))
		return NULL;
	p = &((const struct km_mdb_page *)(const void *)
	      km_fp(km, tk->page[KM_KT_MDB].pfn[page]))->part[i];
	return p->f.tag == tag ? p : NULL;
}

/* Is the MDB page holding (t, slot) revoked?  Its parts are then checked
 * through the receipts the kernel kept. */
static bool part_out(const struct km *km, km_task_t t, uint32_t slot)
{
	const struct km_pages *p;

	if (t >= km->cfg.max_tasks || !km->task[t].live)
		return false;
	p = &km->task[t].page[KM_KT_MDB];
	return KM_SLOT_PAGE(slot) < p->len &&
	       p->pfn[KM_SLOT_PAGE(slot)] == KM_OUT_PFN;
}

/* Is the MDB page holding (t, slot) lost, its repair not done yet (a
 * repair that found no frame for a page it needed)?  Links into it stand
 * until the repair cuts them. */
static bool part_lost(const struct km *km, km_task_t t, uint32_t slot)
{
	const struct km_pages *p;

	if (t >= km->cfg.max_tasks || !km->task[t].live)
		return false;
	p = &km->task[t].page[KM_KT_MDB];
	return KM_SLOT_PAGE(slot) < p->len &&
	       km_pages_lost(p, KM_SLOT_PAGE(slot)) == KM_LOST_PENDING;
}

/* Is task t's node table for PDE `pde` lost, its rebuild not done yet?
 * It is vacant meanwhile. */
static bool nt_lost(const struct km *km, km_task_t t, uint32_t pde)
{
	const struct km_pages *p = &km->task[t].page[KM_KT_NT];

	return pde < p->len && km_pages_lost(p, pde) == KM_LOST_PENDING;
}

/* The receipt of part (t, slot) in its revoked page, if it has one. */
static const struct km_receipt *receipt_of(const struct km *km, km_task_t t,
                                           uint32_t slot)
{
	const struct km_outmeta *m =
		km_pages_meta(&km->task[t].page[KM_KT_MDB], KM_SLOT_PAGE(slot));

	for (uint32_t i = 0; m != NULL && i < m->nrc; i++)
		if (m->rc[i].idx == KM_SLOT_IDX(slot))
			return &m->rc[i];
	return NULL;
}

/* Does part (t, slot), of kind `tag`, name (pt, pslot) as its other
 * party?  Answered from the part, or from its receipt when it is out. */
static bool peer_is(const struct km *km, km_task_t t, uint32_t slot, int tag,
                    km_task_t pt, uint32_t pslot)
{
	const union km_part *p;
	const struct km_receipt *r;

	if (part_lost(km, t, slot))
		return true;
	if (part_out(km, t, slot)) {
		r = receipt_of(km, t, slot);
		return r != NULL && r->tag == tag && r->task == pt &&
		       r->slot == pslot;
	}
	p = part_ok(km, t, slot, tag);
	if (p == NULL)
		return false;
	return tag == KM_PART_SEND ?
	       p->s.recv_task == pt && p->s.recv_slot == pslot :
	       p->r.send_task == pt && p->r.send_slot == pslot;
}

/* The receiver slot task t's node table names at vpn; false if the node
 * table is revoked (unknown). */
static bool nt_lookup(const struct km *km, km_task_t t, uint32_t vpn,
                      uint32_t *slot)
{
	if (KM_NT(&km->task[t], vpn >> 10) == KM_OUT_PFN ||
	    nt_lost(km, t, vpn >> 10))
		return false;
	*slot = km_recv_at(km, t, vpn);
	return true;
}

/* The head of the child list of a parent named by a sender part. */
static bool head_of(const struct km *km, km_task_t t, uint32_t parent,
                    uint32_t *head)
{
	const union km_part *p;

	if (t == KM_SIGMA0) {
		if (parent >= km->cfg.frames)
			return false;
		*head = km->frame[parent].first_child;
		return true;
	}
	p = part_ok(km, t, parent, KM_PART_RECV);
	if (p == NULL)
		return false;
	*head = p->r.first_child;
	return true;
}

static bool check_frames(const struct km *km, char *why, size_t why_len)
{
	uint32_t kernel = 0, pool_free = 0, s0_free = 0, lent = 0, pool_nts = 0;

	for (km_pfn_t f = 0; f < km->cfg.frames; f++) {
		const struct km_frame *fr = &km->frame[f];

		if (fr->pool && fr->first_child != KM_NONE)
			FAIL("frame %u: pool frame has mappings", f);
		if (fr->pool && fr->kuse == KM_KU_NONE)
			FAIL("frame %u: pool frame neither free nor used", f);
		if (!fr->pool && fr->kuse == KM_KU_POOL)
			FAIL("frame %u: marked free in the pool, not a pool frame", f);
		if (fr->flags & KM_FR_HELD)
			FAIL("frame %u: still held by a repair that ended", f);
		if (fr->kuse == KM_KU_POOL)
			pool_free++;
		if (!fr->pool && fr->first_child == KM_NONE) {
			if (fr->kuse != KM_KU_NONE)
				FAIL("frame %u: free at sigma0 but used by the kernel", f);
			s0_free++;
		}
		if (fr->kuse != KM_KU_KERNEL)
			continue;
		kernel++;
		{
			struct km_kpage kp = { fr->ktask, (enum km_ktype)fr->ktype,
			                       fr->kindex };

			if (fr->ktype >= KM_KT_COUNT || !km_task_get(km, fr->ktask) ||
			    km_kpage_pfn(km, kp) != f)
				FAIL("frame %u: kernel page %s/%u/%u does not "
				     "name it", f, km_ktype_name(kp.type),
				     kp.task, kp.index);
		}
		pool_nts += fr->pool && fr->ktype == KM_KT_NT &&
		            km->cfg.kmem == KM_KMEM_KPAGER &&
		            km->task[fr->ktask].kpager != KM_ROOT_KPAGER;
		if (!fr->pool) {
			uint32_t slot;
			const union km_part *p;
			const struct km_kpager *k;

			lent++;
			if (fr->lender == KM_ROOT_KPAGER ||
			    fr->lender >= km->nkpagers ||
			    !km->kpager[fr->lender].live)
				FAIL("frame %u: lent by no live kpager", f);
			k = &km->kpager[fr->lender];
			if (!nt_lookup(km, k->task, fr->lender_vpn, &slot) ||
			    (slot != KM_NONE && part_out(km, k->task, slot)))
				continue;       /* revoked: unknown */
			p = slot == KM_NONE ? NULL :
			    part_ok(km, k->task, slot, KM_PART_RECV);
			if (p == NULL || p->r.pfn != f || p->r.vpn != fr->lender_vpn)
				FAIL("frame %u: the kpager's mapping at 0x%x is "
				     "not marked lent", f,
				     fr->lender_vpn << KM_PAGE_SHIFT);
		}
	}
	if (kernel != km->kernel_frames)
		FAIL("%u frames hold kernel pages, the count says %u",
		     kernel, km->kernel_frames);
	if (pool_nts > km->kpool_nts)
		FAIL("%u pool frames hold kpagers' clients' node tables, the "
		     "count says at most %u", pool_nts, km->kpool_nts);
	if (pool_free != km->kpool_len)
		FAIL("%u pool frames are free, the pool stack holds %u",
		     pool_free, km->kpool_len);
	for (uint32_t i = 0; i < km->kpool_len; i++)
		if (km->kpool[i] >= km->cfg.frames ||
		    km->frame[km->kpool[i]].kuse != KM_KU_POOL)
			FAIL("pool stack entry %u is not a free pool frame", i);
	if (s0_free != km->s0_free)
		FAIL("%u frames are free at sigma0, the count says %u",
		     s0_free, km->s0_free);
	for (km_pfn_t f = 0; f < km->s0_cursor && f < km->cfg.frames; f++)
		if (!km->frame[f].pool && km->frame[f].first_child == KM_NONE)
			FAIL("frame %u is free below sigma0's cursor %u", f,
			     km->s0_cursor);
	if (lent != km->lent)
		FAIL("%u frames are lent, the count says %u", lent, km->lent);
	return true;
}

/* One receiver part: its sender part points back, its parent holds the
 * same frame with at least its rights. */
static bool check_recv(const struct km *km, km_task_t t, uint32_t slot,
                       const struct km_recv *r, char *why, size_t why_len)
{
	const union km_part *s, *p;

	/* Detached (its sender part was lost): the repair removes it. */
	if (r->send_task == KM_NONE && r->send_slot == KM_NONE &&
	    km->ndetached > 0)
		return true;
	if (!peer_is(km, r->send_task, r->send_slot, KM_PART_SEND, t, slot))
		FAIL("task %u mapping 0x%x: its sender part does not point "
		     "back", t, r->vpn << KM_PAGE_SHIFT);
	if (r->rights == 0 || (r->rights & ~KM_RWX))
		FAIL("task %u mapping 0x%x: rights %u", t,
		     r->vpn << KM_PAGE_SHIFT, r->rights);
	if (r->flags != 0)
		FAIL("task %u mapping 0x%x: flags %#x", t,
		     r->vpn << KM_PAGE_SHIFT, r->flags);
	if (r->pfn >= km->cfg.frames || km->frame[r->pfn].pool)
		FAIL("task %u mapping 0x%x: frame %u is not sigma0's", t,
		     r->vpn << KM_PAGE_SHIFT, r->pfn);
	if (part_out(km, r->send_task, r->send_slot) ||
	    part_lost(km, r->send_task, r->send_slot))
		return true;    /* the parent is named in the revoked part */
	s = part_ok(km, r->send_task, r->send_slot, KM_PART_SEND);
	if (r->send_task == KM_SIGMA0) {
		if (s->s.parent != r->pfn)
			FAIL("task %u mapping 0x%x: derived from frame %u, "
			     "maps frame %u", t, r->vpn << KM_PAGE_SHIFT,
			     s->s.parent, r->pfn);
		return true;
	}
	if (part_out(km, r->send_task, s->s.parent) ||
	    part_lost(km, r->send_task, s->s.parent))
		return true;
	p = part_ok(km, r->send_task, s->s.parent, KM_PART_RECV);
	if (p == NULL)
		FAIL("task %u mapping 0x%x: parent is not a mapping", t,
		     r->vpn << KM_PAGE_SHIFT);
	if (p->r.pfn != r->pfn || (r->rights & ~p->r.rights))
		FAIL("task %u mapping 0x%x: frame or rights exceed its "
		     "parent's", t, r->vpn << KM_PAGE_SHIFT);
	if (km_lent(km, r->send_task, &p->r))
		FAIL("task %u mapping 0x%x: derived from a lent page", t,
		     r->vpn << KM_PAGE_SHIFT);
	return true;
}

/* One sender part: its receiver part points back, its siblings agree. */
static bool check_send(const struct km *km, km_task_t t, uint32_t slot,
                       const struct km_send *s, char *why, size_t why_len)
{
	const union km_part *o;
	uint32_t head;

	if (!peer_is(km, s->recv_task, s->recv_slot, KM_PART_RECV, t, slot))
		FAIL("task %u sender part %#x: its receiver part does not "
		     "point back", t, slot);
	if (t != KM_SIGMA0 &&
	    (part_out(km, t, s->parent) || part_lost(km, t, s->parent)))
		return true;    /* parent and list checked when it is back */
	if (!head_of(km, t, s->parent, &head))
		FAIL("task %u sender part %#x: parent %#x is not a mapping",
		     t, slot, s->parent);
	if (s->prev == KM_NONE) {
		if (head != slot)
			FAIL("task %u sender part %#x: first child, but its "
			     "parent's list starts elsewhere", t, slot);
	} else if (!part_out(km, t, s->prev) && !part_lost(km, t, s->prev)) {
		o = part_ok(km, t, s->prev, KM_PART_SEND);
		if (o == NULL || o->s.next != slot || o->s.parent != s->parent)
			FAIL("task %u sender part %#x: bad previous sibling",
			     t, slot);
	}
	if (s->next != KM_NONE && !part_out(km, t, s->next) &&
	    !part_lost(km, t, s->next)) {
		o = part_ok(km, t, s->next, KM_PART_SEND);
		if (o == NULL || o->s.prev != slot || o->s.parent != s->parent)
			FAIL("task %u sender part %#x: bad next sibling",
			     t, slot);
	}
	return true;
}

/* A revoked MDB page: what the kernel kept of it agrees with the other
 * parties, which still point at its parts. */
static bool check_receipts(const struct km *km, km_task_t t, uint32_t pg,
                           uint64_t *recvs, char *why, size_t why_len)
{
	const struct km_outmeta *m =
		km_pages_meta(&km->task[t].page[KM_KT_MDB], pg);

	if (m == NULL || m->nrc != m->count)
		FAIL("task %u MDB page %u: revoked without receipts", t, pg);
	for (uint32_t i = 0; i < m->nrc; i++) {
		const struct km_receipt *r = &m->rc[i];
		uint32_t slot = KM_SLOT(pg, r->idx), nte;

		if (r->idx >= KM_MDB_PARTS ||
		    (i > 0 && r->idx <= m->rc[i - 1].idx))
			FAIL("task %u MDB page %u: receipts out of order", t, pg);
		if (r->tag == KM_PART_RECV) {
			(*recvs)++;
			if (!peer_is(km, r->task, r->slot, KM_PART_SEND, t, slot))
				FAIL("task %u revoked mapping 0x%x: its sender "
				     "part does not point back", t,
				     r->vpn << KM_PAGE_SHIFT);
			if (nt_lookup(km, t, r->vpn, &nte) && nte != slot)
				FAIL("task %u revoked mapping 0x%x: node table "
				     "does not locate it", t,
				     r->vpn << KM_PAGE_SHIFT);
		} else if (r->tag != KM_PART_SEND ||
		           !peer_is(km, r->task, r->slot, KM_PART_RECV, t,
		                    slot)) {
			FAIL("task %u MDB page %u part %u: revoked sender part "
			     "not pointed back at", t, pg, r->idx);
		}
	}
	return true;
}

static bool check_mdb(const struct km *km, km_task_t t, uint64_t *recvs,
                      uint64_t *detached, char *why, size_t why_len)
{
	const struct km_task *tk = &km->task[t];
	uint32_t free_parts = 0;

	for (uint32_t pg = 0; pg < tk->page[KM_KT_MDB].len; pg++) {
		const struct km_mdb_page *mp;
		uint32_t used = 0, nfree = 0, f;

		if (tk->page[KM_KT_MDB].pfn[pg] == KM_OUT_PFN) {
			if (!check_receipts(km, t, pg, recvs, why, why_len))
				return false;
			continue;
		}
		if (!km_present(tk->page[KM_KT_MDB].pfn[pg]))
			continue;
		mp = (const void *)km_fp(km, tk->page[KM_KT_MDB].pfn[pg]);
		if (mp->magic != KM_MDB_MAGIC || mp->task != t || mp->index != pg)
			FAIL("task %u MDB page %u: bad header", t, pg);
		for (uint32_t i = 0; i < KM_MDB_PARTS; i++) {
			const union km_part *p = &mp->part[i];
			uint32_t slot = KM_SLOT(pg, i);

			if (p->f.tag == KM_PART_FREE)
				continue;
			used++;
			if (p->f.tag == KM_PART_RECV) {
				uint32_t nte;

				if (t == KM_SIGMA0)
					FAIL("sigma0 holds a receiver part");
				*detached += p->r.send_task == KM_NONE;
				if (!check_recv(km, t, slot, &p->r, why, why_len))
					return false;
				if (nt_lookup(km, t, p->r.vpn, &nte) && nte != slot)
					FAIL("task %u mapping 0x%x: node table "
					     "does not locate it", t,
					     p->r.vpn << KM_PAGE_SHIFT);
				(*recvs)++;
			} else if (p->f.tag == KM_PART_SEND) {
				if (!check_send(km, t, slot, &p->s, why, why_len))
					return false;
			} else {
				FAIL("task %u MDB page %u part %u: tag %u", t,
				     pg, i, p->f.tag);
			}
		}
		if (used != mp->used)
			FAIL("task %u MDB page %u: %u parts used, header says %u",
			     t, pg, used, mp->used);
		for (f = mp->free_head; f != 0xffffu && nfree <= KM_MDB_PARTS;
		     f = mp->part[f].f.next_free, nfree++)
			if (f >= KM_MDB_PARTS || mp->part[f].f.tag != KM_PART_FREE)
				FAIL("task %u MDB page %u: free list is broken",
				     t, pg);
		if (nfree != KM_MDB_PARTS - used)
			FAIL("task %u MDB page %u: %u free parts, list has %u",
			     t, pg, KM_MDB_PARTS - used, nfree);
		free_parts += KM_MDB_PARTS - used;
	}
	if (free_parts != tk->mdb_free)
		FAIL("task %u: %u free parts, the count says %u", t,
		     free_parts, tk->mdb_free);
	return true;
}

/* A revoked node table: its kept count agrees with the node directory
 * and with the page table beside it (each mapping has a PTE or awaits
 * its refill). */
static bool check_nt_out(const struct km *km, km_task_t t, uint32_t pde,
                         const uint32_t *pd, const uint32_t *nd,
                         uint32_t *mappings, char *why, size_t why_len)
{
	const struct km_task *tk = &km->task[t];
	const struct km_outmeta *m = km_pages_meta(&tk->page[KM_KT_NT], pde);
	uint32_t ptes = 0;

	if (m == NULL)
		FAIL("task %u PDE %u: node table revoked without its count",
		     t, pde);
	if (nd != NULL && nd[pde] != m->count)
		FAIL("task %u PDE %u: %u entries in the revoked node table, "
		     "node directory says %u", t, pde, m->count, nd[pde]);
	if (pde != KM_UTCB_PDE)
		*mappings += m->count;
	if (!km_present(KM_PT(tk, pde))) {
		if ((pd != NULL && pd[pde] != 0) || tk->pt_missing[pde])
			FAIL("task %u PDE %u: entry for a revoked table", t, pde);
		return true;
	}
	for (uint32_t j = 0; j < 1024; j++)
		ptes += km_words(km, KM_PT(tk, pde))[j] != 0;
	if (pde != KM_UTCB_PDE && ptes + tk->pt_missing[pde] != m->count)
		FAIL("task %u PDE %u: %u PTEs and %u awaiting refills, but %u "
		     "mappings", t, pde, ptes, tk->pt_missing[pde], m->count);
	return true;
}

/* Page tables, node tables and the node directory of one task.  A revoked
 * directory or table (out) has no bytes to check; a table that came back
 * vacant may lack PTEs of mappings, exactly as many as it counts. */
static bool check_tables(const struct km *km, km_task_t t, char *why,
                         size_t why_len)
{
	const struct km_task *tk = &km->task[t];
	const uint32_t *pd = NULL, *nd = NULL;
	uint32_t mappings = 0;
	bool counted = true;    /* every node table could be read */

	if (KM_PD(tk) == KM_NO_PFN || KM_ND(tk) == KM_NO_PFN)
		FAIL("task %u has no page or node directory", t);
	if (km_present(KM_PD(tk)))
		pd = km_words(km, KM_PD(tk));
	if (km_present(KM_ND(tk)))
		nd = km_words(km, KM_ND(tk));
	if (pd != NULL &&
	    memcmp(&pd[KM_USER_PDES], km->kernel_pde, sizeof km->kernel_pde))
		FAIL("task %u: kernel half of the page directory differs", t);
	for (uint32_t i = 0; i < KM_USER_PDES; i++) {
		const uint32_t *pt = NULL, *nt;
		uint32_t live = 0, missing = 0;

		if ((KM_PT(tk, i) == KM_NO_PFN) != (KM_NT(tk, i) == KM_NO_PFN))
			FAIL("task %u PDE %u: page table without node table "
			     "or the reverse", t, i);
		if (KM_NT(tk, i) == KM_NO_PFN) {
			if ((pd != NULL && pd[i] != 0) || (nd != NULL && nd[i]))
				FAIL("task %u PDE %u: entry without a table", t, i);
			continue;
		}
		if (KM_NT(tk, i) == KM_OUT_PFN) {
			if (!check_nt_out(km, t, i, pd, nd, &mappings, why,
			                  why_len))
				return false;
			continue;
		}
		if (km_present(KM_PT(tk, i))) {
			pt = km_words(km, KM_PT(tk, i));
			/* The MMU's walk sets A in the PDE it uses. */
			if (pd != NULL &&
			    (pd[i] & ~KM_PTE_A) != (km_phys(km, KM_PT(tk, i)) |
			                            KM_PTE_P | KM_PTE_RW | KM_PTE_US))
				FAIL("task %u PDE %u: does not point at its "
				     "table", t, i);
		} else if ((pd != NULL && pd[i] != 0) || tk->pt_missing[i]) {
			FAIL("task %u PDE %u: entry for a revoked table", t, i);
		}
		/* Lost and not yet rebuilt: vacant, its page table and the
		 * node directory as they were before the loss. */
		if (nt_lost(km, t, i)) {
			counted = false;
			continue;
		}
		nt = km_words(km, KM_NT(tk, i));
		for (uint32_t j = 0; j < 1024; j++) {
			km_vaddr_t va = (i << 22) | (j << 12);
			uint32_t pte = pt != NULL ? pt[j] : 0, nte = nt[j];
			const union km_part *p;

			if (nte == KM_NTE_NONE) {
				if (pte != 0)
					FAIL("task %u 0x%x: PTE without a mapping "
					     "node", t, va);
				continue;
			}
			live++;
			if (nte == KM_NTE_UTCB) {
				uint32_t up = (va - KM_UTCB_AREA) >> KM_PAGE_SHIFT;
				const struct km_pages *u = &tk->page[KM_KT_UTCB];

				if (va < KM_UTCB_AREA || up >= u->len ||
				    u->pfn[up] == KM_NO_PFN)
					FAIL("task %u 0x%x: UTCB mark without a "
					     "UTCB page", t, va);
				if (pt == NULL)
					continue;
				if (km_present(u->pfn[up]) ?
				    (pte & ~0x60u) != (km_phys(km, u->pfn[up]) |
				                      KM_PTE_P | KM_PTE_RW |
				                      KM_PTE_US) : pte != 0)
					FAIL("task %u 0x%x: bad UTCB entry", t, va);
				continue;
			}
			if (part_lost(km, t, nte - 1)) {
				/* Lost: the repair undoes it. */
				mappings++;
				missing += pt != NULL && pte == 0;
				continue;
			}
			if (part_out(km, t, nte - 1)) {
				/* Revoked: its receipt keeps frame and page. */
				const struct km_receipt *rc =
					receipt_of(km, t, nte - 1);

				if (rc == NULL || rc->tag != KM_PART_RECV ||
				    rc->vpn != va >> KM_PAGE_SHIFT)
					FAIL("task %u 0x%x: node-table entry names "
					     "no revoked mapping of this page", t,
					     va);
				mappings++;
				if (pte == 0)
					missing++;
				else if (km_pte_pfn(km, pte) != rc->pfn)
					FAIL("task %u 0x%x: PTE %#x is not the "
					     "revoked mapping's frame", t, va, pte);
				continue;
			}
			p = part_ok(km, t, nte - 1, KM_PART_RECV);
			if (p == NULL || p->r.vpn != va >> KM_PAGE_SHIFT)
				FAIL("task %u 0x%x: node-table entry names no "
				     "mapping of this page", t, va);
			mappings++;
			if (km_lent(km, t, &p->r) && pte != 0)
				FAIL("task %u 0x%x: page lent to the kernel "
				     "is still accessible", t, va);
			if (pt == NULL)
				continue;
			if (pte == 0) {
				missing++;
				continue;
			}
			if (!(pte & KM_PTE_P) || !(pte & KM_PTE_US) ||
			    km_pte_pfn(km, pte) != p->r.pfn ||
			    (pte & 0xfe0u & ~0x60u) != 0 || (pte & 0x18u) ||
			    !!(pte & KM_PTE_RW) != !!(p->r.rights & KM_W))
				FAIL("task %u 0x%x: PTE %#x disagrees with its "
				     "mapping (frame %u, rights %u)", t, va, pte,
				     p->r.pfn, p->r.rights);
		}
		if (nd != NULL && nd[i] != live)
			FAIL("task %u PDE %u: %u entries live, node directory "
			     "says %u", t, i, live, nd[i]);
		if (pt != NULL && missing != tk->pt_missing[i])
			FAIL("task %u PDE %u: %u PTEs await a refill, the count "
			     "says %u", t, i, missing, tk->pt_missing[i]);
	}
	if (counted && mappings != tk->nmappings)
		FAIL("task %u: %u mappings, the count says %u", t, mappings,
		     tk->nmappings);
	return true;
}

/* Kernel pages present per type add up; thread slots agree both ways. */
static bool check_task_pages(const struct km *km, km_task_t t,
                             uint64_t *pages, char *why, size_t why_len)
{
	const struct km_task *tk = &km->task[t];
	uint32_t n[KM_KT_COUNT] = { 0 };

	uint32_t out[KM_KT_COUNT] = { 0 };

	for (int ty = 0; ty < KM_KT_COUNT; ty++) {
		for (uint32_t i = 0; i < tk->page[ty].len; i++) {
			n[ty] += km_present(tk->page[ty].pfn[i]);
			out[ty] += tk->page[ty].pfn[i] == KM_OUT_PFN;
		}
		if (out[ty] != tk->nout[ty])
			FAIL("task %u: %u %s pages revoked, accounting says %u",
			     t, out[ty], km_ktype_name((enum km_ktype)ty),
			     tk->nout[ty]);
		if (out[ty] > 0 && !km_ktype_is_revocable((enum km_ktype)ty))
			FAIL("task %u: a %s page is out", t,
			     km_ktype_name((enum km_ktype)ty));
	}
	for (int ty = 0; ty < KM_KT_COUNT; ty++) {
		if (n[ty] != tk->npages[ty])
			FAIL("task %u: %u %s pages present, accounting says %u",
			     t, n[ty], km_ktype_name((enum km_ktype)ty),
			     tk->npages[ty]);
		*pages += n[ty];
	}
	for (uint32_t s = 0; s < tk->utcb_cap; s++) {
		km_thread_t th = tk->utcb_slot[s];
		uint32_t pg = s / (KM_PAGE_SIZE / KM_UTCB_SIZE);

		if (th != 0 && (th >= km->cfg.max_threads ||
		                !km->thread[th].live || km->thread[th].task != t ||
		                km->thread[th].utcb != s))
			FAIL("task %u UTCB slot %u: names thread %u wrongly",
			     t, s, th);
		if (th != 0 && (pg >= tk->page[KM_KT_UTCB].len ||
		                tk->page[KM_KT_UTCB].pfn[pg] == KM_NO_PFN))
			FAIL("task %u UTCB slot %u: page absent", t, s);
		if (th == 0 && pg < tk->page[KM_KT_UTCB].len &&
		    tk->page[KM_KT_UTCB].pfn[pg] != KM_NO_PFN &&
		    s % (KM_PAGE_SIZE / KM_UTCB_SIZE) == 0) {
			bool used = false;

			for (uint32_t i = 0; i < KM_PAGE_SIZE / KM_UTCB_SIZE &&
			     s + i < tk->utcb_cap; i++)
				used |= tk->utcb_slot[s + i] != 0;
			if (!used)
				FAIL("task %u UTCB page %u: kept without threads",
				     t, pg);
		}
	}
	for (uint32_t s = 0; s < tk->ktcb_cap; s++) {
		km_thread_t th = tk->ktcb_slot[s];
		uint32_t pg = s / (KM_PAGE_SIZE / KM_KTCB_SIZE);
		const struct km_ktcb *kt;

		if (th == 0)
			continue;
		if (th >= km->cfg.max_threads || !km->thread[th].live ||
		    km->thread[th].task != t || km->thread[th].ktcb != s ||
		    pg >= tk->page[KM_KT_KTCB].len ||
		    tk->page[KM_KT_KTCB].pfn[pg] == KM_NO_PFN)
			FAIL("task %u KTCB slot %u: names thread %u wrongly",
			     t, s, th);
		if (km->thread[th].state != KM_TS_READY &&
		    km->thread[th].state != KM_TS_STOPPED)
			FAIL("thread %u: state %u", th, km->thread[th].state);
		if (!km_present(tk->page[KM_KT_KTCB].pfn[pg]))
			continue;
		kt = (const void *)(km_fp(km, tk->page[KM_KT_KTCB].pfn[pg]) +
		                    (s % (KM_PAGE_SIZE / KM_KTCB_SIZE)) *
		                    KM_KTCB_SIZE);
		if (kt->magic != KM_KTCB_MAGIC || kt->thread != th ||
		    kt->state != km->thread[th].state)
			FAIL("task %u KTCB slot %u: content is not thread %u's",
			     t, s, th);
	}
	return true;
}

/* Every mapping is reached from sigma0's frames, once: the tree has no
 * cycle and no orphan.  Runs after the local checks, so links are sound. */
static bool check_reach(const struct km *km, uint64_t recvs, char *why,
                        size_t why_len)
{
	uint64_t reached = 0;

	for (km_pfn_t f = 0; f < km->cfg.frames; f++) {
		uint32_t h = km->frame[f].first_child;
		km_task_t pt = KM_SIGMA0;   /* where the current list lives */
		uint32_t cur = h;
		/* Explicit pre-order walk over (task, sender slot) lists. */
		while (cur != KM_NONE) {
			const union km_part *s = part_ok(km, pt, cur, KM_PART_SEND);
			const union km_part *r;

			if (s == NULL)
				FAIL("walk: broken sender reference");
			r = part_ok(km, s->s.recv_task, s->s.recv_slot,
			            KM_PART_RECV);
			if (r == NULL || r->r.pfn != f)
				FAIL("walk: mapping of the wrong frame under "
				     "frame %u", f);
			if (++reached > recvs)
				FAIL("walk: more mappings reached than exist: "
				     "a cycle");
			if (r->r.first_child != KM_NONE) {
				pt = s->s.recv_task;
				cur = r->r.first_child;
				continue;
			}
			/* Next sibling, or climb. */
			for (;;) {
				if (s->s.next != KM_NONE) {
					cur = s->s.next;
					break;
				}
				if (pt == KM_SIGMA0) {
					cur = KM_NONE;
					break;
				}
				/* s's parent is a receiver part in pt; climb
				 * to that mapping's own sender part. */
				r = part_ok(km, pt, s->s.parent, KM_PART_RECV);
				if (r == NULL)
					FAIL("walk: broken parent reference");
				s = part_ok(km, r->r.send_task, r->r.send_slot,
				            KM_PART_SEND);
				if (s == NULL)
					FAIL("walk: broken sender reference");
				pt = r->r.send_task;
			}
		}
	}
	if (reached != recvs)
		FAIL("%llu mappings exist, %llu are reachable from sigma0",
		     (unsigned long long)recvs, (unsigned long long)reached);
	return true;
}

/* Does task t's count of its lost, unrepaired pages hold?  Adds them to
 * *lost.  (Such a page is present: it was entered vacant.) */
static bool check_lost(const struct km *km, km_task_t t, uint64_t *lost,
                       char *why, size_t why_len)
{
	const struct km_task *tk = &km->task[t];
	uint32_t n = 0;

	for (int ty = KM_KT_NT; ty <= KM_KT_MDB; ty++) {
		for (uint32_t i = 0; i < tk->page[ty].len; i++) {
			if (km_pages_lost(&tk->page[ty], i) != KM_LOST_PENDING)
				continue;
			if (!km_present(tk->page[ty].pfn[i]))
				FAIL("task %u: %s %u is lost but not present", t,
				     ty == KM_KT_NT ? "node table" : "MDB page",
				     i);
			n++;
		}
	}
	if (n != tk->lost_pending)
		FAIL("task %u: %u pages lost and not repaired, the count says "
		     "%u", t, n, tk->lost_pending);
	*lost += n;
	return true;
}

/* Does each task's count of the other tasks' threads it pages hold? */
static bool check_pagees(const struct km *km, char *why, size_t why_len)
{
	uint32_t *n = calloc(km->cfg.max_tasks, sizeof *n);

	if (n == NULL)
		FAIL("out of host memory for the check");
	for (km_thread_t i = 1; i < km->cfg.max_threads; i++) {
		const struct km_thread *th = &km->thread[i];

		if (th->live && th->pager != th->task &&
		    th->pager < km->cfg.max_tasks)
			n[th->pager]++;
	}
	for (km_task_t t = 0; t < km->cfg.max_tasks; t++) {
		if (km->task[t].live && n[t] != km->task[t].pagees) {
			snprintf(why, why_len, "task %u: pager of %u threads of "
			         "other tasks, the count says %u", t, n[t],
			         km->task[t].pagees);
			free(n);
			return false;
		}
	}
	free(n);
	return true;
}

bool km_check(const struct km *km, char *why, size_t why_len)
{
	uint64_t pages = 0, recvs = 0, lost = 0, detached = 0, walked = 0;
	uint32_t nthreads = 0, ntasks = 0;
	char dummy[8];

	if (why == NULL) {
		why = dummy;
		why_len = sizeof dummy;
	}
	if (!check_frames(km, why, why_len))
		return false;
	for (km_task_t t = 0; t < km->cfg.max_tasks; t++) {
		const struct km_task *tk = &km->task[t];

		if (!tk->live)
			continue;
		if (t != KM_SIGMA0) {
			ntasks++;
			if (!check_tables(km, t, why, why_len) ||
			    !check_lost(km, t, &lost, why, why_len))
				return false;
		}
		if (!check_mdb(km, t, &recvs, &detached, why, why_len) ||
		    !check_task_pages(km, t, &pages, why, why_len))
			return false;
		walked += tk->nout[KM_KT_NT] + tk->nout[KM_KT_MDB];
		if (tk->kpager != KM_ROOT_KPAGER &&
		    (tk->kpager >= km->nkpagers || !km->kpager[tk->kpager].live))
			FAIL("task %u: its kpager %u is gone", t, tk->kpager);
	}
	if (ntasks != km->ntasks)
		FAIL("%u tasks live, the count says %u", ntasks, km->ntasks);
	if (detached != km->ndetached)
		FAIL("%llu mappings detached from a lost sender part, the "
		     "count says %u", (unsigned long long)detached,
		     km->ndetached);
	if (lost != km->nlost)
		FAIL("tasks have %llu pages lost and not repaired, the count "
		     "says %u", (unsigned long long)lost, km->nlost);
	if (walked != km->nout_walked)
		FAIL("tasks have %llu node tables and MDB pages out, the "
		     "count says %u", (unsigned long long)walked,
		     km->nout_walked);
	if (pages != km->kernel_frames)
		FAIL("tasks account for %llu kernel pages, %u frames hold them",
		     (unsigned long long)pages, km->kernel_frames);
	for (km_thread_t i = 1; i < km->cfg.max_threads; i++) {
		const struct km_thread *th = &km->thread[i];

		if (!th->live)
			continue;
		nthreads++;
		if (!km_task_get(km, th->task) ||
		    th->utcb >= km->task[th->task].utcb_cap ||
		    km->task[th->task].utcb_slot[th->utcb] != i)
			FAIL("thread %u: its task does not hold it", i);
		if (th->pager != th->task && !km_task_get(km, th->pager))
			FAIL("thread %u: its pager %u is gone", i, th->pager);
	}
	if (nthreads != km->nthreads)
		FAIL("%u threads live, the count says %u", nthreads,
		     km->nthreads);
	if (!check_pagees(km, why, why_len))
		return false;
	for (km_kpager_t k = 1; k < km->nkpagers; k++) {
		const struct km_kpager *kp = &km->kpager[k];
		uint32_t clients = 0, lent = 0;

		if (!kp->live)
			continue;
		for (km_task_t t = 1; t < km->cfg.max_tasks; t++)
			clients += km->task[t].live && km->task[t].kpager == k;
		for (km_pfn_t f = 0; f < km->cfg.frames; f++)
			lent += km->frame[f].kuse == KM_KU_KERNEL &&
			        !km->frame[f].pool && km->frame[f].lender == k;
		if (clients != kp->clients || lent != kp->st.lent)
			FAIL("kpager %u: %u clients and %u pages lent, counts "
			     "say %u and %u", k, clients, lent, kp->clients,
			     kp->st.lent);
	}
	/* The whole-tree walk needs every MDB page in, and none lost. */
	if (km->nlost > 0 || km->ndetached > 0)
		return true;
	for (km_task_t t = 0; t < km->cfg.max_tasks; t++)
		if (km->task[t].live && km->task[t].nout[KM_KT_MDB] > 0)
			return true;
	return check_reach(km, recvs, why, why_len);
}
