/*
 * Repair: undoing what a lost node table or mapping-database page held.
 *
 * A node table or MDB page is lost when its kpager discards its form,
 * hands back a form the kernel refuses, or will not hand it back at all.
 * The kernel has then entered the page empty (kmem.c, kform.c) and must
 * make the model whole before anything walks the mapping database again:
 *
 * - a lost node table is redundant given the mapping database: it is
 *   rebuilt from the task's receiver parts (and the UTCB area's marks);
 * - a lost MDB page is not: its mappings are gone.  With the receipts the
 *   kernel kept at export (for each part, the other party's part, the
 *   frame, the page), it undoes them as unmap would have: each receiver
 *   part's mapping leaves its task's tables and its mapper's list; each
 *   sender part's receiver, and each mapping the task derived from a lost
 *   one, goes with everything derived from it.
 *
 * That lands on the kpager's own clients and on what they passed on,
 * which they could have unmapped themselves; every other mapping stays.
 *
 * A round first brings back every page it will change (a page that
 * comes back lost, or not at all, joins the next round; a node table that
 * is out stays out, see undo_recv), then cuts every
 * link into the lost pages, frees them, and last removes the mappings cut
 * loose ("detached": receiver parts whose sender part was lost).  Every
 * step checks before it acts, so a round that starts over repeats none.
 */
#include "internal.h"

static bool mdb_page_lost(const struct km *km, km_task_t t, uint32_t page)
{
	const struct km_pages *p;

	if (t >= km->cfg.max_tasks || !km->task[t].live)
		return false;
	p = &km->task[t].page[KM_KT_MDB];
	return page < p->len && km_present(p->pfn[page]) &&
	       km_pages_lost(p, page) == KM_LOST_PENDING;
}

static bool slot_dead(const struct km *km, km_task_t t, uint32_t slot)
{
	return slot != KM_NONE && mdb_page_lost(km, t, KM_SLOT_PAGE(slot));
}

/* Has task t a node table or MDB page lost and not yet repaired?  (Its
 * count, which km_check checks against the pages, says: a repair visits
 * every task, and most have lost nothing.) */
static bool task_has_lost(const struct km *km, km_task_t t)
{
	return km->task[t].lost_pending > 0;
}

/* The part at (t, slot) in a present MDB page that is not lost, or NULL. */
static union km_part *live_part(const struct km *km, km_task_t t,
                                uint32_t slot)
{
	const struct km_pages *p;

	if (slot == KM_NONE || t >= km->cfg.max_tasks || !km->task[t].live)
		return NULL;
	p = &km->task[t].page[KM_KT_MDB];
	if (KM_SLOT_PAGE(slot) >= p->len || KM_SLOT_IDX(slot) >= KM_MDB_PARTS ||
	    !km_present(p->pfn[KM_SLOT_PAGE(slot)]) ||
	    slot_dead(km, t, slot))
		return NULL;
	return km_part(km, t, slot);
}

/* Keeps kernel page kp, if present, in until the repair ends. */
static int hold(struct km *km, struct km_kpage kp)
{
	km_pfn_t pfn = km_kpage_pfn(km, kp);

	if (pfn == KM_NO_PFN || (km->frame[pfn].flags & KM_FR_HELD))
		return KM_OK;
	if (km->nheld == km->held_cap) {
		uint32_t cap = km->held_cap ? km->held_cap * 2 : 64;
		km_pfn_t *h = realloc(km->held, cap * sizeof *h);

		if (h == NULL)
			return KM_EIO;
		km->held = h;
		km->held_cap = cap;
	}
	km->frame[pfn].flags |= KM_FR_HELD;
	km->held[km->nheld++] = pfn;
	return KM_OK;
}

/* Ends the hold on the pages held since there were `base` (a repair
 * nested in a kpager's callback leaves the outer one's). */
static void release_held(struct km *km, uint32_t base)
{
	for (uint32_t i = base; i < km->nheld; i++)
		km->frame[km->held[i]].flags &= (uint8_t)~KM_FR_HELD;
	km->nheld = base;
}

/* Brings back a node table or MDB page and holds it in; KM_ERETRY (a
 * victim named, or a new loss) is remembered in *again, other errors
 * returned. */
static int bring(struct km *km, struct km_kpage kp, bool *again)
{
	int err = km_bring(km, kp);

	if (err == KM_ERETRY) {
		*again = true;
		err = KM_OK;
	}
	return err == KM_OK ? hold(km, kp) : err;
}

static int bring_task_mdb(struct km *km, km_task_t t, bool *again)
{
	struct km_pages *p = &km->task[t].page[KM_KT_MDB];
	int err = KM_OK;

	for (uint32_t i = 0; i < p->len && err == KM_OK; i++)
		err = bring(km, (struct km_kpage){ t, KM_KT_MDB, i }, again);
	return err;
}

/* Brings back the receiver parts of task t's mappings derived from its
 * lost ones (undo_local_links detaches them). */
static int bring_orphans(struct km *km, km_task_t t, bool *again)
{
	struct km_pages *p = &km->task[t].page[KM_KT_MDB];
	int err = KM_OK;

	for (uint32_t pg = 0; pg < p->len && err == KM_OK; pg++) {
		const struct km_mdb_page *mp;

		if (!km_present(p->pfn[pg]) || mdb_page_lost(km, t, pg))
			continue;
		mp = (const void *)km_fp(km, p->pfn[pg]);
		for (uint32_t i = 0; i < KM_MDB_PARTS && err == KM_OK; i++) {
			const struct km_send *s = &mp->part[i].s;

			if (s->tag == KM_PART_SEND && slot_dead(km, t, s->parent))
				err = bring(km, (struct km_kpage){ s->recv_task,
				            KM_KT_MDB, KM_SLOT_PAGE(s->recv_slot) },
				            again);
		}
	}
	return err;
}

/*
 * Phase A: brings back every page the round will change: all MDB pages of
 * the tasks that lost a page and of the mappers of their lost receiver
 * parts (whose child lists are relinked), and the node tables of the
 * lost mappings that are in (to hold them in).  Returns KM_ERETRY if one
 * could not be had yet (its kpager named a victim first) or a new page
 * was lost meanwhile.
 *
 * These pages must all be in at once, and they can be more than a kpager
 * lets one client hold (ws makes its largest client pay for its own
 * faults).  So each page stays in once brought (hold): a victim named
 * among them is refused, and the page asked for is entered from the
 * kernel's pool, lost, as for any kpager that will not give a page back.
 * Without the hold, such a kpager traded one held page for the next,
 * round after round, for ever.
 */
static int repair_bring(struct km *km)
{
	bool again = false;
	int err = KM_OK;

	for (km_task_t t = 1; t < km->cfg.max_tasks && err == KM_OK; t++) {
		struct km_pages *p = &km->task[t].page[KM_KT_MDB];

		if (!km->task[t].live || !task_has_lost(km, t))
			continue;
		err = bring_task_mdb(km, t, &again);
		if (err == KM_OK)
			err = bring_orphans(km, t, &again);
		for (uint32_t i = 0; i < p->len && err == KM_OK; i++) {
			const struct km_outmeta *m = km_pages_meta(p, i);

			if (!mdb_page_lost(km, t, i) || m == NULL)
				continue;
			for (uint32_t k = 0; k < m->nrc && err == KM_OK; k++) {
				const struct km_receipt *r = &m->rc[k];

				if (r->tag == KM_PART_SEND) {
					err = bring(km, (struct km_kpage){ r->task,
					            KM_KT_MDB, KM_SLOT_PAGE(r->slot) },
					            &again);
					continue;
				}
				/* (A revoked node table stays out: see
				 * undo_recv.) */
				if (KM_NT(&km->task[t], r->vpn >> 10) != KM_OUT_PFN)
					err = bring(km, (struct km_kpage){ t,
					            KM_KT_NT, r->vpn >> 10 },
					            &again);
				if (err == KM_OK && r->task != KM_SIGMA0)
					err = bring_task_mdb(km, r->task, &again);
			}
		}
	}
	if (err == KM_OK && again)
		err = KM_ERETRY;
	return err;
}

/* Rebuilds a lost node table from the task's receiver parts and UTCB
 * pages, then makes its page table and the node directory agree. */
static void nt_rebuild(struct km *km, km_task_t t, uint32_t pde)
{
	struct km_task *tk = &km->task[t];
	struct km_pages *mdb = &tk->page[KM_KT_MDB];
	uint32_t *nt = km_words(km, KM_NT(tk, pde));
	uint32_t live = 0, missing = 0;

	memset(nt, 0, KM_PAGE_SIZE);
	for (uint32_t pg = 0; pg < mdb->len; pg++) {
		const struct km_mdb_page *mp;

		if (!km_present(mdb->pfn[pg]) || mdb_page_lost(km, t, pg))
			continue;
		mp = (const void *)km_fp(km, mdb->pfn[pg]);
		for (uint32_t i = 0; i < KM_MDB_PARTS; i++)
			if (mp->part[i].f.tag == KM_PART_RECV &&
			    mp->part[i].r.vpn >> 10 == pde)
				nt[mp->part[i].r.vpn & 0x3ffu] = KM_SLOT(pg, i) + 1;
	}
	if (pde == KM_UTCB_PDE)
		for (uint32_t i = 0; i < tk->page[KM_KT_UTCB].len && i < 1024; i++)
			if (tk->page[KM_KT_UTCB].pfn[i] != KM_NO_PFN)
				nt[i] = KM_NTE_UTCB;
	for (uint32_t i = 0; i < 1024; i++) {
		uint32_t *pte = km_present(KM_PT(tk, pde)) ?
		                &km_words(km, KM_PT(tk, pde))[i] : NULL;

		live += nt[i] != KM_NTE_NONE;
		if (pte == NULL)
			continue;
		if (nt[i] == KM_NTE_NONE && *pte != 0) {
			*pte = 0;       /* the mapping went with a lost page */
			km_pte_notify(km, tk, (pde << 22) | (i << 12), 1,
			              KM_PTE_REMOVED);
		} else if (nt[i] != KM_NTE_NONE && nt[i] != KM_NTE_UTCB &&
		           *pte == 0) {
			missing++;
		}
	}
	if (km_present(KM_PT(tk, pde)))
		tk->pt_missing[pde] = (uint16_t)missing;
	if (km_present(KM_ND(tk)))
		km_words(km, KM_ND(tk))[pde] = live;
	km_charge(km, KM_C_KPAGE_INIT);
}

/* Phase B: node tables. */
static void repair_nts(struct km *km)
{
	for (km_task_t t = 1; t < km->cfg.max_tasks; t++) {
		struct km_pages *p = &km->task[t].page[KM_KT_NT];

		if (!km->task[t].live || !task_has_lost(km, t))
			continue;
		for (uint32_t i = 0; i < p->len; i++) {
			if (!km_present(p->pfn[i]) ||
			    km_pages_lost(p, i) != KM_LOST_PENDING)
				continue;
			nt_rebuild(km, t, i);
			p->lost[i] = 0;
			km_outmeta_free(p, i);
			km->task[t].lost_pending--;
			km->nlost--;
		}
	}
}

/* Marks the parent named by sender part s of task t for relinking. */
static void mark_relink(struct km *km, km_task_t t, const struct km_send *s)
{
	union km_part *p;

	if (t == KM_SIGMA0) {
		km->frame[s->parent].flags |= KM_FR_RELINK;
		return;
	}
	p = live_part(km, t, s->parent);
	if (p != NULL && p->f.tag == KM_PART_RECV)
		p->r.flags |= KM_RECV_RELINK;
}

/* Frees a sender part whose receiver is lost; its list is relinked. */
static void drop_send(struct km *km, km_task_t t, uint32_t slot)
{
	mark_relink(km, t, &km_part(km, t, slot)->s);
	km_part_free(km, t, slot);
}

/* Cuts a receiver part loose from a sender part that is lost. */
static void detach(struct km *km, struct km_recv *r)
{
	r->send_task = KM_NONE;
	r->send_slot = KM_NONE;
	km->ndetached++;
}

/* The mapping a lost receiver part held: out of the lender's use, out of
 * the task's tables, out of its mapper's list.  Its node table may be
 * revoked: the repair does not bring it back (its kpager may not give it,
 * and the kernel's pool is not to be spent on it); the mapping's count
 * goes, and the table comes back rebuilt when it is next needed. */
static int undo_recv(struct km *km, km_task_t t, uint32_t slot,
                     struct km_receipt *rc)
{
	struct km_task *tk = &km->task[t];
	const struct km_frame *f = &km->frame[rc->pfn];
	uint32_t *nte = km_nte_slot(km, tk, rc->vpn << KM_PAGE_SHIFT);
	union km_part *s;
	int err;

	/* Was it lent to the kernel?  Then that kernel page goes, its form
	 * with the mapping. */
	if (f->kuse == KM_KU_KERNEL && !f->pool &&
	    km->kpager[f->lender].task == t && f->lender_vpn == rc->vpn &&
	    (err = km_kpage_revoke_orphan(km, rc->pfn)) != KM_OK)
		return err;
	if (nte != NULL && *nte == slot + 1) {
		km_pt_clear(km, tk, rc->vpn << KM_PAGE_SHIFT);
		tk->nmappings--;
	} else if (KM_NT(tk, rc->vpn >> 10) == KM_OUT_PFN &&
	           !(rc->flags & KM_RC_UNDONE)) {
		km_pt_clear_out(km, tk, rc->vpn << KM_PAGE_SHIFT);
		rc->flags |= KM_RC_UNDONE;      /* (a round may start over) */
		tk->nmappings--;
	}
	s = live_part(km, rc->task, rc->slot);
	if (s != NULL && s->f.tag == KM_PART_SEND && s->s.recv_task == t &&
	    s->s.recv_slot == slot)
		drop_send(km, rc->task, rc->slot);
	km_charge(km, KM_C_MDB_REMOVE);
	return KM_OK;
}

/* Phase C, first half: the links the lost parts themselves held. */
static int undo_lost_parts(struct km *km)
{
	int err;

	for (km_task_t t = 1; t < km->cfg.max_tasks; t++) {
		struct km_pages *p = &km->task[t].page[KM_KT_MDB];

		if (!km->task[t].live)
			continue;
		for (uint32_t pg = 0; pg < p->len; pg++) {
			struct km_outmeta *m = km_pages_meta(p, pg);

			if (!mdb_page_lost(km, t, pg) || m == NULL)
				continue;
			for (uint32_t k = 0; k < m->nrc; k++) {
				struct km_receipt *rc = &m->rc[k];
				uint32_t slot = KM_SLOT(pg, rc->idx);
				union km_part *r;

				if (rc->tag == KM_PART_RECV) {
					if ((err = undo_recv(km, t, slot, rc)) != KM_OK)
						return err;
					continue;
				}
				r = live_part(km, rc->task, rc->slot);
				if (r != NULL && r->f.tag == KM_PART_RECV &&
				    r->r.send_task == t && r->r.send_slot == slot)
					detach(km, &r->r);
			}
		}
	}
	return KM_OK;
}

/* Phase C, second half: the task's own parts that point into its lost
 * pages: children of a lost mapping go (their receivers detached); lists
 * with a lost member are relinked. */
static void undo_local_links(struct km *km, km_task_t t)
{
	struct km_pages *p = &km->task[t].page[KM_KT_MDB];

	for (uint32_t pg = 0; pg < p->len; pg++) {
		struct km_mdb_page *mp;

		if (!km_present(p->pfn[pg]) || mdb_page_lost(km, t, pg))
			continue;
		mp = (void *)km_fp(km, p->pfn[pg]);
		for (uint32_t i = 0; i < KM_MDB_PARTS; i++) {
			union km_part *x = &mp->part[i];
			uint32_t slot = KM_SLOT(pg, i);

			if (x->f.tag == KM_PART_RECV &&
			    slot_dead(km, t, x->r.first_child)) {
				x->r.flags |= KM_RECV_RELINK;
			} else if (x->f.tag == KM_PART_SEND &&
			           slot_dead(km, t, x->s.parent)) {
				union km_part *r = live_part(km, x->s.recv_task,
				                             x->s.recv_slot);

				if (r != NULL && r->f.tag == KM_PART_RECV &&
				    r->r.send_task == t && r->r.send_slot == slot)
					detach(km, &r->r);
				km_part_free(km, t, slot);
			} else if (x->f.tag == KM_PART_SEND &&
			           (slot_dead(km, t, x->s.next) ||
			            slot_dead(km, t, x->s.prev))) {
				mark_relink(km, t, &x->s);
			}
		}
	}
}

/* The head of the child list of parent `slot` of task t (a frame for
 * sigma0), and whether it is marked for relinking. */
static uint32_t *relink_head(struct km *km, km_task_t t, uint32_t parent,
                             bool *marked)
{
	union km_part *p;

	if (t == KM_SIGMA0) {
		*marked = (km->frame[parent].flags & KM_FR_RELINK) != 0;
		return &km->frame[parent].first_child;
	}
	p = live_part(km, t, parent);
	*marked = p != NULL && p->f.tag == KM_PART_RECV &&
	          (p->r.flags & KM_RECV_RELINK);
	return *marked ? &p->r.first_child : NULL;
}

/* Relinks every marked child list of task t from its sender parts, in
 * slot order, and notes parents left without children. */
static void relink_task(struct km *km, km_task_t t)
{
	struct km_pages *p = &km->task[t].page[KM_KT_MDB];
	bool marked;

	/* Empty the marked lists, then put each sender part back at the
	 * head of its parent's list (walking slots backwards keeps slot
	 * order). */
	if (t == KM_SIGMA0) {
		for (km_pfn_t f = 0; f < km->cfg.frames; f++)
			if (km->frame[f].flags & KM_FR_RELINK)
				km->frame[f].first_child = KM_NONE;
	} else {
		for (uint32_t pg = 0; pg < p->len; pg++) {
			struct km_mdb_page *mp;

			if (!km_present(p->pfn[pg]) || mdb_page_lost(km, t, pg))
				continue;
			mp = (void *)km_fp(km, p->pfn[pg]);
			for (uint32_t i = 0; i < KM_MDB_PARTS; i++)
				if (mp->part[i].f.tag == KM_PART_RECV &&
				    (mp->part[i].r.flags & KM_RECV_RELINK))
					mp->part[i].r.first_child = KM_NONE;
		}
	}
	for (uint32_t pg = p->len; pg-- > 0;) {
		struct km_mdb_page *mp;

		if (!km_present(p->pfn[pg]) || mdb_page_lost(km, t, pg))
			continue;
		mp = (void *)km_fp(km, p->pfn[pg]);
		for (uint32_t i = KM_MDB_PARTS; i-- > 0;) {
			struct km_send *s = &mp->part[i].s;
			uint32_t slot = KM_SLOT(pg, i), *head;

			if (s->tag != KM_PART_SEND)
				continue;
			head = relink_head(km, t, s->parent, &marked);
			if (!marked)
				continue;
			s->prev = KM_NONE;
			s->next = *head;
			if (*head != KM_NONE)
				km_part(km, t, *head)->s.prev = slot;
			*head = slot;
		}
	}
}

/* Clears the marks of task t's parents; a parent left childless is free
 * at its holder again. */
static void relink_finish(struct km *km, km_task_t t)
{
	struct km_pages *p = &km->task[t].page[KM_KT_MDB];

	if (t == KM_SIGMA0) {
		for (km_pfn_t f = 0; f < km->cfg.frames; f++) {
			if (!(km->frame[f].flags & KM_FR_RELINK))
				continue;
			km->frame[f].flags &= (uint8_t)~KM_FR_RELINK;
			if (km->frame[f].first_child == KM_NONE) {
				km->s0_free++;
				if (f < km->s0_cursor)
					km->s0_cursor = f;
			}
		}
		return;
	}
	for (uint32_t pg = 0; pg < p->len; pg++) {
		struct km_mdb_page *mp;

		if (!km_present(p->pfn[pg]) || mdb_page_lost(km, t, pg))
			continue;
		mp = (void *)km_fp(km, p->pfn[pg]);
		for (uint32_t i = 0; i < KM_MDB_PARTS; i++) {
			struct km_recv *r = &mp->part[i].r;

			if (r->tag != KM_PART_RECV || !(r->flags & KM_RECV_RELINK))
				continue;
			r->flags &= (uint16_t)~KM_RECV_RELINK;
			if (r->first_child == KM_NONE && t == km->defpager)
				km_dp_page_freed(km, r->vpn);
		}
	}
}

/* Phase D: the lost MDB pages, all links into them cut, are freed. */
static void free_lost_pages(struct km *km)
{
	for (km_task_t t = 1; t < km->cfg.max_tasks; t++) {
		struct km_pages *p = &km->task[t].page[KM_KT_MDB];

		if (!km->task[t].live || !task_has_lost(km, t))
			continue;
		for (uint32_t pg = 0; pg < p->len; pg++) {
			if (!mdb_page_lost(km, t, pg))
				continue;
			p->lost[pg] = 0;
			km_outmeta_free(p, pg);
			km->task[t].lost_pending--;
			km->nlost--;
			/* Entered empty: nothing was taken from it since. */
			km_mdb_trim_note(km, (struct km_kpage){ t, KM_KT_MDB, pg });
		}
	}
	km_mdb_trim(km);
}

/* Phase E: removes every detached mapping with what was derived from it.
 * (A lent node table or MDB page among them goes out first, discarded:
 * KM_ERETRY then, as for a page found lost.) */
static int remove_detached(struct km *km)
{
	for (km_task_t t = 1; t < km->cfg.max_tasks && km->ndetached > 0; t++) {
		struct km_pages *p = &km->task[t].page[KM_KT_MDB];

		if (!km->task[t].live)
			continue;
		for (uint32_t pg = 0; pg < p->len; pg++) {
			if (!km_present(p->pfn[pg]))
				continue;
			for (uint32_t i = 0; i < KM_MDB_PARTS; i++) {
				uint32_t slot = KM_SLOT(pg, i);
				const struct km_recv *r;
				int err;

				r = &km_part(km, t, slot)->r;
				if (r->tag != KM_PART_RECV ||
				    r->send_task != KM_NONE)
					continue;
				err = km_subtree_prepare(km, t, slot, true,
				                         KM_SIGMA0);
				if (err != KM_OK)
					return err;
				km_remove_tree(km, t, slot);
			}
		}
	}
	km_mdb_trim(km);
	return KM_OK;
}

/* The mappings each task holds, counted again after a repair. */
static void recount_mappings(struct km *km)
{
	for (km_task_t t = 1; t < km->cfg.max_tasks; t++) {
		struct km_task *tk = &km->task[t];
		uint32_t n = 0;

		if (!tk->live)
			continue;
		for (uint32_t pde = 0; pde < KM_USER_PDES; pde++) {
			km_pfn_t nt = KM_NT(tk, pde);

			if (pde == KM_UTCB_PDE)
				continue;
			if (nt == KM_OUT_PFN) {
				n += km_pages_meta(&tk->page[KM_KT_NT],
				                   pde)->count;
			} else if (km_present(nt)) {
				for (uint32_t i = 0; i < 1024; i++)
					n += km_words(km, nt)[i] != KM_NTE_NONE;
			}
		}
		tk->nmappings = n;
	}
}

static int repair_round(struct km *km)
{
	int err;

	if ((err = repair_bring(km)) != KM_OK)
		return err;
	repair_nts(km);
	if ((err = undo_lost_parts(km)) != KM_OK)
		return err;
	for (km_task_t t = 1; t < km->cfg.max_tasks; t++)
		if (km->task[t].live && task_has_lost(km, t))
			undo_local_links(km, t);
	for (km_task_t t = 0; t < km->cfg.max_tasks; t++) {
		if (!km->task[t].live)
			continue;
		relink_task(km, t);
		relink_finish(km, t);
	}
	free_lost_pages(km);
	return remove_detached(km);
}

/* Undoes what lost pages held, round after round. */
static int repair_losses(struct km *km)
{
	int err = KM_OK;
	bool ran = false, outer = km->repairing;
	uint32_t held = km->nheld;

	/* Repair reads lost pages (as empty); walks outside it may not. */
	km->repairing = true;
	while (km->nlost > 0 || km->ndetached > 0) {
		ran = true;
		/* A kpager asked during the last round may have named a
		 * victim: it goes before the next round asks again. */
		if ((err = km_victim_revoke(km)) != KM_OK)
			break;
		err = repair_round(km);
		if (err != KM_OK && err != KM_ERETRY)
			break;
		err = KM_OK;
	}
	km->repairing = outer;
	release_held(km, held);
	/* (With no round, the counts are as the operations kept them.) */
	if (ran)
		recount_mappings(km);
	return err;
}

/*
 * What the kernel does between two attempts of an operation: undoes what
 * lost pages held, then revokes the victim a kpager named (KP_REVOKE; it
 * may be a page that was lost, which must be whole before it goes out),
 * then undoes any loss that brought.
 */
int km_repair(struct km *km)
{
	int err = repair_losses(km);

	if (err == KM_OK)
		err = km_victim_revoke(km);
	if (err == KM_OK)
		err = repair_losses(km);
	return err;
}
