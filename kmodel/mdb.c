/*
 * The mapping database: the derivation tree of every user mapping, rooted
 * at sigma0's frames, kept in mapping-database pages (see internal.h for
 * the split of a node into a sender part and a receiver part).  map, grant
 * and unmap with L4 semantics on flexpages, all tree walks iterative (trees
 * may be a million nodes deep), all mutators validate, then commit.
 */
#include "internal.h"

/* A node of the tree: a receiver part (task, slot), or a root, which is
 * sigma0's frame `slot`. */
struct node {
	km_task_t task;
	uint32_t slot;
};

static bool is_root(struct node n)
{
	return n.task == KM_SIGMA0;
}

static bool same(struct node a, struct node b)
{
	return a.task == b.task && a.slot == b.slot;
}

static struct km_recv *recv_of(const struct km *km, struct node n)
{
	struct km_recv *r = &km_part(km, n.task, n.slot)->r;

	KM_ASSERT(r->tag == KM_PART_RECV);
	return r;
}

static struct km_send *send_of(const struct km *km, km_task_t t,
                               uint32_t slot)
{
	struct km_send *s = &km_part(km, t, slot)->s;

	KM_ASSERT(s->tag == KM_PART_SEND);
	return s;
}

/* ---------------------------------------------------------------------- */
/* Parts: allocation inside a task's MDB pages.                              */

/* Takes a free part of task t; the caller has made sure there is one. */
static uint32_t part_alloc(struct km *km, km_task_t t)
{
	struct km_task *tk = &km->task[t];
	uint32_t page = tk->mdb_hint;
	struct km_mdb_page *mp = NULL;
	uint32_t i;

	KM_ASSERT(tk->mdb_free > 0);
	if (page < tk->page[KM_KT_MDB].len &&
	    km_present(tk->page[KM_KT_MDB].pfn[page]))
		mp = (void *)km_fp(km, tk->page[KM_KT_MDB].pfn[page]);
	if (mp == NULL || mp->used == KM_MDB_PARTS) {
		mp = NULL;
		for (page = 0; page < tk->page[KM_KT_MDB].len; page++) {
			if (!km_present(tk->page[KM_KT_MDB].pfn[page]))
				continue;
			mp = (void *)km_fp(km, tk->page[KM_KT_MDB].pfn[page]);
			if (mp->used < KM_MDB_PARTS)
				break;
		}
		KM_ASSERT(page < tk->page[KM_KT_MDB].len);
		tk->mdb_hint = page;
	}
	i = mp->free_head;
	KM_ASSERT(i < KM_MDB_PARTS && mp->part[i].f.tag == KM_PART_FREE);
	mp->free_head = (uint16_t)mp->part[i].f.next_free;
	mp->used++;
	tk->mdb_free--;
	return KM_SLOT(page, i);
}

/* Notes an MDB page that may be empty when the operation ends: one whose
 * last part was freed, or one just obtained that the commit may not use. */
void km_mdb_trim_note(struct km *km, struct km_kpage kp)
{
	if (km->ntrim == km->trim_cap) {
		uint32_t cap = km->trim_cap ? 2 * km->trim_cap : 64;
		struct km_kpage *n = realloc(km->trim, cap * sizeof *n);

		if (n == NULL)
			return;
		km->trim = n;
		km->trim_cap = cap;
	}
	km->trim[km->ntrim++] = kp;
}

/* Frees a part.  A page left empty is freed when the operation ends
 * (mdb_trim), so that parts freed and taken in one operation never make
 * its kernel-page count wrong. */
void km_part_free(struct km *km, km_task_t t, uint32_t slot)
{
	struct km_task *tk = &km->task[t];
	uint32_t page = KM_SLOT_PAGE(slot);
	struct km_mdb_page *mp = (void *)km_fp(km, tk->page[KM_KT_MDB].pfn[page]);
	union km_part *p = &mp->part[KM_SLOT_IDX(slot)];

	memset(p, 0, sizeof *p);
	p->f.next_free = mp->free_head;
	mp->free_head = (uint16_t)KM_SLOT_IDX(slot);
	mp->used--;
	tk->mdb_free++;
	tk->mdb_hint = page;
	if (mp->used == 0)
		km_mdb_trim_note(km, (struct km_kpage){ t, KM_KT_MDB, page });
}

/* Frees the MDB pages that operations left empty.  (If the host refused
 * memory for the list, an empty page stays until its task dies: harmless,
 * and still counted.) */
void km_mdb_trim(struct km *km)
{
	for (uint32_t i = 0; i < km->ntrim; i++) {
		struct km_kpage kp = km->trim[i];
		km_pfn_t pfn = km_kpage_pfn(km, kp);

		if (pfn != KM_NO_PFN &&
		    ((struct km_mdb_page *)(void *)km_fp(km, pfn))->used == 0)
			km_kpage_free(km, kp);
	}
	km->ntrim = 0;
}

/*
 * Lists the MDB pages task t needs so that `parts` parts are free.  One
 * call per task and operation: a second call would not see the first's
 * pages and would ask for the same ones.
 */
int km_mdb_need_parts(struct km *km, km_task_t t, uint32_t parts)
{
	struct km_task *tk = &km->task[t];
	uint32_t missing, pages, index;
	int err;

	/* (A lost MDB page, entered vacant, would count as free.) */
	if (tk->lost_pending > 0)
		km->op_meets_lost = true;
	if (parts <= tk->mdb_free)
		return KM_OK;
	missing = parts - tk->mdb_free;
	pages = (missing + KM_MDB_PARTS - 1) / KM_MDB_PARTS;
	for (index = 0; pages > 0; index++) {
		struct km_kpage kp = { t, KM_KT_MDB, index };

		if (index >= (1u << 24))
			return KM_ELIMIT;
		/* Present pages are counted; revoked ones are not new. */
		if (km_kpage_pfn(km, kp) != KM_NO_PFN || km_kpage_is_out(km, kp))
			continue;
		err = km_pages_reserve(&tk->page[KM_KT_MDB], index + 1);
		if (err == KM_OK)
			err = km_op_need(km, t, KM_KT_MDB, index);
		if (err != KM_OK)
			return err;
		pages--;
	}
	return KM_OK;
}

/* ---------------------------------------------------------------------- */
/* Walking the tree.                                                         */

static uint32_t *child_head(struct km *km, struct node n)
{
	if (is_root(n))
		return &km->frame[n.slot].first_child;
	return &recv_of(km, n)->first_child;
}

static bool first_child(struct km *km, struct node n, struct node *c)
{
	uint32_t h = *child_head(km, n);
	const struct km_send *s;

	if (h == KM_NONE)
		return false;
	s = send_of(km, n.task, h);
	c->task = s->recv_task;
	c->slot = s->recv_slot;
	return true;
}

static bool next_sibling(struct km *km, struct node n, struct node *out)
{
	const struct km_recv *r = recv_of(km, n);
	const struct km_send *s = send_of(km, r->send_task, r->send_slot);

	if (s->next == KM_NONE)
		return false;
	s = send_of(km, r->send_task, s->next);
	out->task = s->recv_task;
	out->slot = s->recv_slot;
	return true;
}

static struct node parent_of(struct km *km, struct node n)
{
	const struct km_recv *r = recv_of(km, n);
	struct node p = { r->send_task,
	                  send_of(km, r->send_task, r->send_slot)->parent };

	return p;
}

/*
 * The next node of a pre-order walk of the subtree under `top` after `n`,
 * not descending below n when `skip_children`.  Returns false at the end.
 */
static bool walk_next(struct km *km, struct node top, struct node *n,
                      bool skip_children)
{
	struct node c;

	if (!skip_children && first_child(km, *n, &c)) {
		*n = c;
		return true;
	}
	while (!same(*n, top)) {
		if (next_sibling(km, *n, &c)) {
			*n = c;
			return true;
		}
		*n = parent_of(km, *n);
	}
	return false;
}

/*
 * Brings back every revoked page that a change of mapping n reads or
 * writes: its receiver part and node-table entry, its sender part with
 * that part's siblings and parent, and its first child's sender part.
 * Returns KM_ERETRY if one of them was lost (see km_repair).
 */
static int node_bring(struct km *km, struct node n)
{
	const struct km_recv *r;
	const struct km_send *s;
	uint32_t around[3];
	int err;

	if (is_root(n))
		return KM_OK;   /* sigma0's pages come from the pool */
	if ((err = km_part_bring(km, n.task, n.slot)) != KM_OK)
		return err;
	r = recv_of(km, n);
	err = km_bring(km, (struct km_kpage){ n.task, KM_KT_NT, r->vpn >> 10 });
	if (err == KM_OK)
		err = km_part_bring(km, n.task, r->first_child);
	if (err != KM_OK || r->send_task == KM_NONE)
		return err;     /* (a detached mapping has no sender part) */
	if ((err = km_part_bring(km, r->send_task, r->send_slot)) != KM_OK)
		return err;
	s = send_of(km, r->send_task, r->send_slot);
	around[0] = s->next;
	around[1] = s->prev;
	around[2] = r->send_task == KM_SIGMA0 ? KM_NONE : s->parent;
	/* (r and s stay valid: pages that are in do not move.) */
	for (int i = 0; i < 3; i++)
		if ((err = km_part_bring(km, r->send_task, around[i])) != KM_OK)
			return err;
	return KM_OK;
}

/* Is mapping n lent to the kernel for a page that a change taking the
 * mapping away cannot do without: a node table or MDB page (the change
 * reads and writes those), or the directory or a page table of `keep`
 * (the task it maps into)? */
static bool lent_needed(const struct km *km, struct node n, km_task_t keep)
{
	const struct km_frame *f;

	if (is_root(n) || !km_lent(km, n.task, recv_of(km, n)))
		return false;
	f = &km->frame[recv_of(km, n)->pfn];
	return f->ktype == KM_KT_NT || f->ktype == KM_KT_MDB ||
	       (keep != KM_SIGMA0 && f->ktask == keep &&
	        (f->ktype == KM_KT_PD || f->ktype == KM_KT_PT));
}

/* Does the subtree under top hold such a mapping (see
 * km_subtree_prepare)?  Reads only: every part is in. */
static bool subtree_lends_needed(struct km *km, struct node top, bool self,
                                 km_task_t keep)
{
	struct node n = top;

	do {
		if ((self || !same(n, top)) && lent_needed(km, n, keep))
			return true;
	} while (walk_next(km, top, &n, false));
	return false;
}

/*
 * Validates a change of the subtree under (t, slot), and of that mapping
 * itself if `self`: brings back every page the change will touch.  A page
 * lent to the kernel whose frame the change takes away is revoked when
 * the change is made, except two kinds:
 * - a node table or MDB page (the change's own walk may read it) moves
 *   now to a frame of the kernel's pool, content and all, and its lender
 *   gets its frame back; with the pool empty it is revoked, its form
 *   discarded, and the caller starts over (KM_ERETRY) once km_repair has
 *   undone what it held;
 * - a page table or directory of task `keep`, which the operation is about
 *   to use, makes it refuse (KM_EBUSY; KM_SIGMA0 for no such task).
 * KM_ERETRY too if a page met was lost.
 */
int km_subtree_prepare(struct km *km, km_task_t t, uint32_t slot, bool self,
                       km_task_t keep)
{
	struct node top = { t, slot }, n = top;
	int err;

	for (;;) {
		if ((err = node_bring(km, n)) != KM_OK)
			return err;
		if ((self || !same(n, top)) && lent_needed(km, n, keep)) {
			km_pfn_t pfn = recv_of(km, n)->pfn;
			const struct km_frame *f = &km->frame[pfn];

			/* keep's directory or a page table of it. */
			if (f->ktype != KM_KT_NT && f->ktype != KM_KT_MDB)
				return KM_EBUSY;
			if (km_kpage_to_pool(km, pfn) != KM_OK) {
				/* No pool frame to move it to: it goes, its
				 * form discarded, unless it awaits its repair
				 * (then the change is busy).  (A kpager that
				 * keeps lending such pages from the very range
				 * changed would make that go on for ever: after
				 * a few, the change is busy.) */
				if (km_kpage_awaits_repair(km, pfn) ||
				    km->op_evictions++ >= KM_OP_EVICTIONS)
					return KM_EBUSY;
				err = km_kpage_revoke(km, pfn, true);
				return err == KM_OK ? KM_ERETRY : err;
			}
		}
		if (!walk_next(km, top, &n, false))
			return KM_OK;
	}
}

/* Is `anc` an ancestor of n?  Brings back the pages on the way up. */
static int ancestor_check(struct km *km, struct node anc, struct node n,
                          bool *is)
{
	int err;

	*is = false;
	while (!is_root(n)) {
		if ((err = node_bring(km, n)) != KM_OK)
			return err;
		n = parent_of(km, n);
		if (same(n, anc)) {
			*is = true;
			break;
		}
	}
	return KM_OK;
}

/* ---------------------------------------------------------------------- */
/* Changing the tree.                                                        */

/* Enters a new mapping of `pfn` at (to, vpn), derived from `parent`. */
static void mdb_link(struct km *km, struct node parent, km_task_t to,
                     uint32_t vpn, km_pfn_t pfn, unsigned rights)
{
	km_task_t s_task = parent.task;
	uint32_t s = part_alloc(km, s_task);
	uint32_t r = part_alloc(km, to);
	uint32_t *head = child_head(km, parent);
	struct km_send *sp = &km_part(km, s_task, s)->s;
	struct km_recv *rp = &km_part(km, to, r)->r;

	if (is_root(parent) && *head == KM_NONE)
		km->s0_free--;
	sp->tag = KM_PART_SEND;
	sp->parent = parent.slot;
	sp->next = *head;
	sp->prev = KM_NONE;
	if (*head != KM_NONE)
		send_of(km, s_task, *head)->prev = s;
	*head = s;
	sp->recv_task = to;
	sp->recv_slot = r;

	rp->tag = KM_PART_RECV;
	rp->rights = (uint8_t)rights;
	rp->flags = 0;
	rp->vpn = vpn;
	rp->pfn = pfn;
	rp->send_task = s_task;
	rp->send_slot = s;
	rp->first_child = KM_NONE;
	km_pt_set(km, &km->task[to], vpn << KM_PAGE_SHIFT, pfn, rights, r + 1);
	km->task[to].nmappings++;
	km_charge(km, KM_C_MDB_INSERT);
	km_charge(km, KM_C_MAP_PAGE);
}

/*
 * Takes sender part (t, slot) out of its parent's child list and frees it.
 * A parent left without children is free again at its holder: sigma0's
 * frame, or a page of the default pager's pool.
 */
void km_send_unlink(struct km *km, km_task_t t, uint32_t slot)
{
	struct km_send *s = send_of(km, t, slot);
	struct node parent = { t, s->parent };

	if (s->prev != KM_NONE)
		send_of(km, t, s->prev)->next = s->next;
	else
		*child_head(km, parent) = s->next;
	if (s->next != KM_NONE)
		send_of(km, t, s->next)->prev = s->prev;
	if (*child_head(km, parent) == KM_NONE) {
		if (is_root(parent)) {
			km->s0_free++;
			if (parent.slot < km->s0_cursor)
				km->s0_cursor = parent.slot;
		} else if (parent.task == km->defpager) {
			km_dp_page_freed(km, recv_of(km, parent)->vpn);
		}
	}
	km_part_free(km, t, slot);
}

/* Removes a mapping without children.  If it was lent to the kernel, the
 * frame leaves its kpager: the kernel page is revoked and its form
 * discarded first.  A detached mapping (its sender part lost with a
 * page, see repair.c) has no list to leave. */
static void remove_leaf(struct km *km, struct node n)
{
	const struct km_recv *rp = recv_of(km, n);
	struct km_recv r;

	if (km_lent(km, n.task, rp)) {
		km_kpage_revoke(km, rp->pfn, true);
		rp = recv_of(km, n);
	}
	r = *rp;
	KM_ASSERT(r.tag == KM_PART_RECV && r.first_child == KM_NONE &&
	          !km_lent(km, n.task, &r));
	if (r.send_task != KM_NONE)
		km_send_unlink(km, r.send_task, r.send_slot);
	else
		km->ndetached--;
	km_part_free(km, n.task, n.slot);
	km_pt_clear(km, &km->task[n.task], r.vpn << KM_PAGE_SHIFT);
	km->task[n.task].nmappings--;
	km_charge(km, KM_C_MDB_REMOVE);
	km_charge(km, KM_C_UNMAP_PAGE);
}

static uint32_t remove_subtree(struct km *km, struct node x, bool self);

/* Removes mapping (t, slot) and everything derived from it. */
void km_remove_tree(struct km *km, km_task_t t, uint32_t slot)
{
	remove_subtree(km, (struct node){ t, slot }, true);
}

/* Removes every mapping derived from x, and x itself if `self`, leaves
 * first.  Returns how many mappings went. */
static uint32_t remove_subtree(struct km *km, struct node x, bool self)
{
	struct node cur = x, c;
	uint32_t n = 0;

	for (;;) {
		if (first_child(km, cur, &c)) {
			cur = c;
			continue;
		}
		if (same(cur, x))
			break;
		c = parent_of(km, cur);
		remove_leaf(km, cur);
		n++;
		cur = c;
	}
	if (self && !is_root(x)) {
		remove_leaf(km, x);
		n++;
	}
	return n;
}

/* Sets a mapping's rights, in its receiver part and its PTE.  A page lent
 * to the kernel is revoked first (its kpager keeps the form: the frame
 * stays with it, with fewer rights). */
static void set_rights(struct km *km, struct node n, unsigned rights)
{
	struct km_recv *r = recv_of(km, n);

	if (km_lent(km, n.task, r))
		km_kpage_revoke(km, r->pfn, false);

	r->rights = (uint8_t)rights;
	km_pt_protect(km, &km->task[n.task], r->vpn << KM_PAGE_SHIFT, rights);
	km_charge(km, KM_C_UNMAP_PAGE);
}

/*
 * L4 unmap of one page: revokes `mask` from every mapping derived from x
 * (and from x itself if `self`); a mapping left without rights goes, with
 * everything derived from it.  Returns how many mappings changed.
 */
static uint32_t revoke(struct km *km, struct node x, unsigned mask, bool self)
{
	struct node cur = x;
	uint32_t n = 0;
	bool more;

	if (self && !is_root(x)) {
		unsigned left = recv_of(km, x)->rights & ~mask;

		if ((left & KM_RWX) == 0)
			return remove_subtree(km, x, true);
		if (left != recv_of(km, x)->rights) {
			set_rights(km, x, left);
			n++;
		}
	} else if (!is_root(x) && km_lent(km, x.task, recv_of(km, x))) {
		/* A kpager unmapping a page it lent: the kernel's use of it
		 * is derived from its mapping, so this revokes it, and the
		 * kpager keeps the form. */
		km_kpage_revoke(km, recv_of(km, x)->pfn, false);
		n++;
	}
	more = walk_next(km, x, &cur, false);
	while (more) {
		unsigned rights = recv_of(km, cur)->rights;
		unsigned left = rights & ~mask;

		if ((left & KM_RWX) == 0) {
			/* Step past cur's subtree before it goes. */
			struct node gone = cur;

			more = walk_next(km, x, &cur, true);
			n += remove_subtree(km, gone, true);
			continue;
		}
		if (left != rights) {
			set_rights(km, cur, left);
			n++;
		}
		more = walk_next(km, x, &cur, false);
	}
	return n;
}

/* Moves the mapping x (not a root) to (to, vpn) with `rights`: a new
 * receiver part in `to`, the sender parts of x's children moved to `to`,
 * x's old parts freed.  The caller has reserved the parts. */
static void grant_move(struct km *km, struct node x, km_task_t to,
                       uint32_t vpn, unsigned rights)
{
	struct km_recv old = *recv_of(km, x);
	uint32_t r2 = part_alloc(km, to);
	struct km_recv *rp = &km_part(km, to, r2)->r;
	uint32_t prev = KM_NONE, c = old.first_child;

	rp->tag = KM_PART_RECV;
	rp->rights = old.rights;
	rp->flags = 0;
	rp->vpn = vpn;
	rp->pfn = old.pfn;
	rp->send_task = old.send_task;
	rp->send_slot = old.send_slot;
	rp->first_child = KM_NONE;
	send_of(km, old.send_task, old.send_slot)->recv_task = to;
	send_of(km, old.send_task, old.send_slot)->recv_slot = r2;

	/* The children's sender parts belong to whoever holds the mapping. */
	while (c != KM_NONE) {
		struct km_send cs = *send_of(km, x.task, c);
		uint32_t c2 = part_alloc(km, to);
		struct km_send *ns = &km_part(km, to, c2)->s;
		struct km_recv *child = &km_part(km, cs.recv_task,
		                                 cs.recv_slot)->r;

		*ns = cs;
		ns->parent = r2;
		ns->prev = prev;
		ns->next = KM_NONE;
		if (prev != KM_NONE)
			send_of(km, to, prev)->next = c2;
		else
			rp->first_child = c2;
		child->send_task = to;
		child->send_slot = c2;
		prev = c2;
		km_part_free(km, x.task, c);
		c = cs.next;
	}
	km_pt_clear(km, &km->task[x.task], old.vpn << KM_PAGE_SHIFT);
	km->task[x.task].nmappings--;
	km_part_free(km, x.task, x.slot);

	km_pt_set(km, &km->task[to], vpn << KM_PAGE_SHIFT, old.pfn, old.rights,
	          r2 + 1);
	km->task[to].nmappings++;
	km_charge(km, KM_C_MDB_INSERT);
	km_charge(km, KM_C_MAP_PAGE);
	if (rights != old.rights) {
		struct node moved = { to, r2 };

		revoke(km, moved, old.rights & ~rights, true);
	}
}

/* ---------------------------------------------------------------------- */
/* map and grant.                                                            */

struct plan {
	km_task_t from, to;
	const uint32_t *src;    /* source pages, or NULL: src_vpn + i */
	uint32_t src_vpn;
	uint32_t dst_vpn;
	uint32_t n;
	unsigned rights;
	enum km_map_mode mode;
};

/* The source of page i of a plan, if something movable is mapped there:
 * sigma0's frames that no kernel use claims, or a task's mappings that are
 * not lent to the kernel (a lent page is out of its holder's reach). */
static bool plan_source(struct km *km, const struct plan *p, uint32_t i,
                        struct node *src, unsigned *rights, km_pfn_t *pfn)
{
	uint32_t vpn = p->src ? p->src[i] : p->src_vpn + i;

	if (p->from == KM_SIGMA0) {
		const struct km_frame *f;

		if (vpn >= km->cfg.frames)
			return false;
		f = &km->frame[vpn];
		if (f->pool || f->kuse != KM_KU_NONE)
			return false;
		src->task = KM_SIGMA0;
		src->slot = vpn;
		*rights = KM_RWX;
		*pfn = vpn;
	} else {
		uint32_t slot = km_recv_at(km, p->from, vpn);
		const struct km_recv *r;

		if (slot == KM_NONE)
			return false;
		src->task = p->from;
		src->slot = slot;
		r = recv_of(km, *src);
		if (km_lent(km, p->from, r))
			return false;
		*rights = r->rights;
		*pfn = r->pfn;
	}
	/* Mapping a page onto itself changes nothing. */
	if (p->from == p->to && vpn == p->dst_vpn + i)
		return false;
	*rights &= p->rights;
	return *rights != 0;
}

/* Brings back what plan_source reads for page i: the source's node-table
 * entry and receiver part. */
static int plan_bring(struct km *km, const struct plan *p, uint32_t i)
{
	uint32_t vpn = p->src ? p->src[i] : p->src_vpn + i, slot;
	int err;

	if (p->from == KM_SIGMA0)
		return KM_OK;
	err = km_recv_find(km, p->from, vpn, &slot);
	if (err == KM_OK)
		err = km_part_bring(km, p->from, slot);
	return err;
}

static uint32_t count_children(struct km *km, struct node n)
{
	uint32_t k = 0;
	struct node c;

	if (!first_child(km, n, &c))
		return 0;
	do
		k++;
	while (next_sibling(km, c, &c));
	return k;
}

/* The pages a fast map marks used: the kernel pages map_plan_once would
 * bring (each present) and need (each present) for it. */
struct fast_marks {
	km_pfn_t pfn[12];
	uint32_t n;
};

/* Notes kernel page kp for marking if it is in; false if it is not. */
static bool fast_in(const struct km *km, struct fast_marks *m,
                    km_task_t task, enum km_ktype type, uint32_t index)
{
	km_pfn_t pfn = km_kpage_pfn(km, (struct km_kpage){ task, type, index });

	if (pfn == KM_NO_PFN)
		return false;
	KM_ASSERT(m->n < sizeof m->pfn / sizeof m->pfn[0]);
	m->pfn[m->n++] = pfn;
	return true;
}

static bool fast_part_in(const struct km *km, struct fast_marks *m,
                         km_task_t task, uint32_t slot)
{
	return slot == KM_NONE ||
	       fast_in(km, m, task, KM_KT_MDB, KM_SLOT_PAGE(slot));
}

/*
 * The fast path of a one-page map, the reply to nearly every user fault:
 * when every page the change reads or writes is in, no page is lost, the
 * source is not lent, the destination is empty and both tasks have a free
 * part, validation has nothing to bring back, nothing to take away and
 * nothing to obtain.  This does then what map_plan_once does, in its
 * order: the same charge, the same pages marked used at the same simulated
 * time, the same link.  It reads only until it commits: false, nothing
 * changed, sends the map down the general path.  (Like L4's IPC fast path
 * beside the full one; test_kmodel_stress compares the two.)
 */
static bool map_fast(struct km *km, const struct plan *p, uint32_t *moved)
{
	uint32_t vpn = p->src ? p->src[0] : p->src_vpn, dvpn = p->dst_vpn;
	uint32_t pde = dvpn >> 10;
	struct fast_marks m = { .n = 0 };
	struct node src;
	unsigned rights;
	km_pfn_t pfn;

	/* (With no page lost, no task has one awaiting repair.) */
	if (!km->fast_paths || p->n != 1 || p->mode != KM_MAP ||
	    p->from == p->to || km->nlost > 0 ||
	    km->task[p->from].mdb_free == 0 || km->task[p->to].mdb_free == 0)
		return false;
	/* The source (its node table and part, which plan_source reads),
	 * and what node_bring reads around it. */
	if (p->from != KM_SIGMA0) {
		if (vpn >= (KM_USER_TOP >> KM_PAGE_SHIFT) ||
		    !fast_in(km, &m, p->from, KM_KT_NT, vpn >> 10) ||
		    !fast_part_in(km, &m, p->from,
		                  km_recv_at(km, p->from, vpn)))
			return false;
	}
	if (!plan_source(km, p, 0, &src, &rights, &pfn))
		return false;
	if (!is_root(src)) {
		const struct km_recv *r = recv_of(km, src);
		const struct km_send *s;

		if (!fast_part_in(km, &m, src.task, r->first_child))
			return false;
		if (r->send_task != KM_NONE) {
			if (!fast_part_in(km, &m, r->send_task, r->send_slot))
				return false;
			s = send_of(km, r->send_task, r->send_slot);
			if (!fast_part_in(km, &m, r->send_task, s->next) ||
			    !fast_part_in(km, &m, r->send_task, s->prev) ||
			    (r->send_task != KM_SIGMA0 &&
			     !fast_part_in(km, &m, r->send_task, s->parent)))
				return false;
		}
	}
	/* The destination: empty, its tables and directory in. */
	if (!fast_in(km, &m, p->to, KM_KT_NT, pde) ||
	    km_recv_at(km, p->to, dvpn) != KM_NONE ||
	    !fast_in(km, &m, p->to, KM_KT_PT, pde) ||
	    !fast_in(km, &m, p->to, KM_KT_PD, 0))
		return false;

	km_op_begin(km);
	km->op_caller = p->from;
	km_charge(km, KM_C_MAP_ITEM);
	for (uint32_t i = 0; i < m.n; i++)
		km_frame_used(km, m.pfn[i]);
	mdb_link(km, src, p->to, dvpn, pfn, rights);
	km_mdb_trim(km);
	km->fast_maps++;
	*moved = 1;
	return true;
}

/* Validates a plan, obtains the kernel pages it needs, then carries it out.
 * Returns KM_OK and the number of pages moved in *moved, or KM_ERETRY if
 * a page it met was lost. */
static int map_plan_once(struct km *km, const struct plan *p,
                         uint32_t *moved)
{
	uint32_t pages = 0, children = 0, last_pde = KM_NONE, done = 0;
	uint64_t loans = km->loans;
	struct node src, dst;
	unsigned rights;
	km_pfn_t pfn;
	bool cycle;
	int err;

	if (map_fast(km, p, moved))
		return KM_OK;
	km_op_begin(km);
	km->op_caller = p->from;        /* the mapper waits on the map */
	km_charge(km, KM_C_MAP_ITEM);
	for (uint32_t i = 0; i < p->n; i++) {
		uint32_t dvpn = p->dst_vpn + i, pde = dvpn >> 10;

		if ((err = plan_bring(km, p, i)) != KM_OK)
			return err;
		if (!plan_source(km, p, i, &src, &rights, &pfn))
			continue;
		pages++;
		/* The source's child list and siblings change. */
		if ((err = node_bring(km, src)) != KM_OK)
			return err;
		dst.task = p->to;
		if ((err = km_recv_find(km, p->to, dvpn, &dst.slot)) != KM_OK)
			return err;
		/* Can the mapping already at the destination go? */
		if (dst.slot != KM_NONE) {
			err = km_subtree_prepare(km, dst.task, dst.slot, true,
			                         p->to);
			if (err == KM_OK)
				err = ancestor_check(km, dst, src, &cycle);
			if (err != KM_OK)
				return err;
			if (cycle)
				return KM_ECYCLE;
		}
		if (p->mode == KM_GRANT) {
			err = km_subtree_prepare(km, src.task, src.slot, false,
			                         p->to);
			if (err != KM_OK)
				return err;
			children += count_children(km, src);
		}
		if (pde != last_pde) {
			last_pde = pde;
			if ((err = km_op_need(km, p->to, KM_KT_PT, pde)) != KM_OK ||
			    (err = km_op_need(km, p->to, KM_KT_NT, pde)) != KM_OK)
				return err;
		}
	}
	if (pages == 0) {
		*moved = 0;
		return KM_OK;
	}
	/* Parts: map adds a sender part to the mapper and a receiver part to
	 * the receiver; grant moves the receiver part and the sender parts of
	 * the children. */
	if (p->mode == KM_MAP && p->from != p->to) {
		err = km_mdb_need_parts(km, p->from, pages);
		if (err == KM_OK)
			err = km_mdb_need_parts(km, p->to, pages);
	} else if (p->mode == KM_MAP) {
		err = km_mdb_need_parts(km, p->to, 2 * pages);
	} else {
		err = km_mdb_need_parts(km, p->to, pages + children);
	}
	if (err != KM_OK || (err = km_op_acquire(km)) != KM_OK) {
		km_op_rollback(km);
		return err;
	}
	/* A kpager may have lent, for a page obtained or brought back since
	 * the walk began, the very frame prepare moved out of a subtree this
	 * change takes away (it was free again).  The pages stay; the
	 * operation starts over, and prepare deals with that frame as with
	 * any lent one.  (With nothing lent since, as in most faults, there
	 * is nothing to look for.) */
	for (uint32_t i = 0; km->loans != loans && i < p->n; i++) {
		if (!plan_source(km, p, i, &src, &rights, &pfn))
			continue;
		dst.task = p->to;
		dst.slot = km_recv_at(km, p->to, p->dst_vpn + i);
		if ((dst.slot != KM_NONE &&
		     subtree_lends_needed(km, dst, true, p->to)) ||
		    (p->mode == KM_GRANT &&
		     subtree_lends_needed(km, src, false, p->to)))
			return KM_ERETRY;
	}

	/* Commit.  Sources are looked up again: replacing one destination
	 * may have removed a later page's source, which is then skipped. */
	for (uint32_t i = 0; i < p->n; i++) {
		uint32_t dvpn = p->dst_vpn + i, old;

		if (!plan_source(km, p, i, &src, &rights, &pfn))
			continue;
		old = km_recv_at(km, p->to, dvpn);
		if (old != KM_NONE) {
			dst.task = p->to;
			dst.slot = old;
			remove_subtree(km, dst, true);
		}
		if (p->mode == KM_MAP)
			mdb_link(km, src, p->to, dvpn, pfn, rights);
		else
			grant_move(km, src, p->to, dvpn, rights);
		done++;
	}
	km_mdb_trim(km);
	*moved = done;
	return KM_OK;
}

static int map_plan(struct km *km, const struct plan *p, uint32_t *moved)
{
	int err;

	if ((err = km_settle(km)) != KM_OK)
		return err;
	km->op_evictions = 0;
	while ((err = map_plan_once(km, p, moved)) == KM_ERETRY)
		if ((err = km_repair(km)) != KM_OK)
			return err;
	return err;
}

/* Is a flexpage well formed: size 2^12..2^32, base aligned, rights valid? */
static bool fpage_ok(struct km_fpage f)
{
	uint64_t size;

	if (f.log2 < KM_PAGE_SHIFT || f.log2 > 32 || (f.rights & ~KM_RWX))
		return false;
	size = 1ull << f.log2;
	return (f.base & (size - 1)) == 0;
}

/* Does [va, va + size) stay inside user space, outside the UTCB area?
 * Returns KM_OK, KM_EINVAL or KM_ERESERVED. */
static int user_range(uint64_t va, uint64_t size)
{
	if (va + size > KM_USER_TOP)
		return KM_EINVAL;
	if (va < (uint64_t)KM_UTCB_AREA + KM_UTCB_AREA_SIZE &&
	    va + size > KM_UTCB_AREA)
		return KM_ERESERVED;
	return KM_OK;
}

static int map_op(struct km *km, km_task_t from, struct km_fpage src,
                  km_task_t to, km_vaddr_t dst_base, enum km_map_mode mode,
                  uint32_t *pages)
{
	struct plan p;
	uint64_t size;
	uint32_t moved = 0;
	int err;

	/* Do both tasks exist, and may they take part? */
	if (km_task_get(km, from) == NULL || km_task_get(km, to) == NULL)
		return KM_ENOTASK;
	if (to == KM_SIGMA0 || (from == KM_SIGMA0 && mode == KM_GRANT))
		return KM_EPERM;
	if (mode != KM_MAP && mode != KM_GRANT)
		return KM_EINVAL;
	/* Is the flexpage well formed, with some rights? */
	if (!fpage_ok(src) || src.rights == 0)
		return KM_EINVAL;
	size = 1ull << src.log2;
	/* Is the source inside the sender's space (sigma0: physical memory)? */
	if (from == KM_SIGMA0) {
		if (src.base + size > (uint64_t)km->cfg.frames * KM_PAGE_SIZE)
			return KM_EINVAL;
	} else if ((err = user_range(src.base, size)) != KM_OK) {
		return err;
	}
	/* Is the destination aligned like the flexpage, in user space? */
	if ((dst_base & (size - 1)) != 0)
		return KM_EINVAL;
	if ((err = user_range(dst_base, size)) != KM_OK)
		return err;

	p.from = from;
	p.to = to;
	p.src = NULL;
	p.src_vpn = src.base >> KM_PAGE_SHIFT;
	p.dst_vpn = dst_base >> KM_PAGE_SHIFT;
	p.n = (uint32_t)(size >> KM_PAGE_SHIFT);
	p.rights = src.rights;
	p.mode = mode;
	err = map_plan(km, &p, &moved);
	if (pages != NULL)
		*pages = err == KM_OK ? moved : 0;
	return err;
}

int km_map(struct km *km, km_task_t from, struct km_fpage src, km_task_t to,
           km_vaddr_t dst_base, enum km_map_mode mode, uint32_t *pages)
{
	struct km_behalf was = km_enter(km, KM_NO_THREAD);
	int err = map_op(km, from, src, to, dst_base, mode, pages);

	km_leave(km, was);
	return err;
}

int km_map_one(struct km *km, km_task_t from, uint32_t src_vpn,
               km_task_t to, uint32_t dst_vpn, unsigned rights)
{
	struct plan p = { from, to, NULL, src_vpn, dst_vpn, 1, rights, KM_MAP };
	uint32_t moved;
	int err = map_plan(km, &p, &moved);

	return err == KM_OK && moved == 0 ? KM_ENOMAP : err;
}

static int sigma0_map_op(struct km *km, km_task_t to, km_vaddr_t dst,
                         uint32_t count, unsigned rights)
{
	struct plan p;
	uint32_t *frames, n = 0, moved;
	int err;

	/* Does the receiver exist and is it not sigma0? */
	if (to == KM_SIGMA0)
		return KM_EPERM;
	if (km_task_get(km, to) == NULL)
		return KM_ENOTASK;
	/* Are the rights and the destination range valid? */
	if (rights == 0 || (rights & ~KM_RWX) || (dst & (KM_PAGE_SIZE - 1)))
		return KM_EINVAL;
	if (count == 0)
		return KM_OK;
	if ((err = user_range(dst, (uint64_t)count * KM_PAGE_SIZE)) != KM_OK)
		return err;
	/* Has sigma0 enough frames it has not mapped? */
	if (count > km->s0_free)
		return KM_ENOMEM;
	frames = malloc((size_t)count * sizeof *frames);
	if (frames == NULL)
		return KM_EIO;
	for (km_pfn_t f = km->s0_cursor; f < km->cfg.frames && n < count; f++) {
		const struct km_frame *fr = &km->frame[f];

		if (fr->pool || fr->kuse != KM_KU_NONE ||
		    fr->first_child != KM_NONE)
			continue;
		if (n == 0)
			km->s0_cursor = f;
		frames[n++] = f;
	}
	KM_ASSERT(n == count);
	p.from = KM_SIGMA0;
	p.to = to;
	p.src = frames;
	p.src_vpn = 0;
	p.dst_vpn = dst >> KM_PAGE_SHIFT;
	p.n = count;
	p.rights = rights;
	p.mode = KM_MAP;
	err = map_plan(km, &p, &moved);
	free(frames);
	return err;
}

int km_sigma0_map(struct km *km, km_task_t to, km_vaddr_t dst, uint32_t count,
                  unsigned rights)
{
	struct km_behalf was = km_enter(km, KM_NO_THREAD);
	int err = sigma0_map_op(km, to, dst, count, rights);

	km_leave(km, was);
	return err;
}

/* ---------------------------------------------------------------------- */
/* unmap.                                                                    */

/* The node that unmap of `vpn` in `task` starts from, if any. */
static bool unmap_node(struct km *km, km_task_t task, uint32_t vpn,
                       struct node *n)
{
	n->task = task;
	if (task == KM_SIGMA0) {
		n->slot = vpn;
		return !km->frame[vpn].pool;
	}
	n->slot = km_recv_at(km, task, vpn);
	return n->slot != KM_NONE;
}

/* The next page to look at after vpn: past a whole absent node table. */
static uint32_t unmap_step(const struct km *km, km_task_t task, uint32_t vpn)
{
	if (task != KM_SIGMA0 && KM_NT(&km->task[task], vpn >> 10) == KM_NO_PFN)
		return (vpn | 0x3ffu) + 1;
	return vpn + 1;
}

/* The entries of task t's node table for directory slot pde, if it is in;
 * read afresh after anything that may move or change it. */
static const uint32_t *nt_words(const struct km *km, km_task_t t,
                                uint32_t pde)
{
	km_pfn_t nt = KM_NT(&km->task[t], pde);

	return km_present(nt) ? km_words(km, nt) : NULL;
}

/* The receiver slot a node-table entry names, or KM_NONE. */
static uint32_t nte_recv(uint32_t nte)
{
	return nte == KM_NTE_NONE || nte == KM_NTE_UTCB ? KM_NONE : nte - 1;
}

/* The first index in [i, end) of a node table's words w naming a mapping,
 * or end.  Most entries are empty: sixteen at a time are skipped. */
static uint32_t nt_next(const uint32_t *w, uint32_t i, uint32_t end)
{
	for (;;) {
		while (i < end && (i & 15u) != 0) {
			if (nte_recv(w[i]) != KM_NONE)
				return i;
			i++;
		}
		while (i + 16 <= end && km_words16_all(&w[i], KM_NTE_NONE))
			i += 16;
		if (i >= end)
			return end;
		if (nte_recv(w[i]) != KM_NONE)
			return i;
		i++;
	}
}

/* The first directory slot in [pde, end) where task t has a node table
 * (in or out), or end.  Most of the 768 have none: sixteen absent ones at
 * a time are skipped. */
static uint32_t nt_next_table(const struct km *km, km_task_t t, uint32_t pde,
                              uint32_t end)
{
	const km_pfn_t *a = km->task[t].page[KM_KT_NT].pfn;

	for (; pde < end; pde++) {
		if ((pde & 15u) == 0 && pde + 16 <= end &&
		    km_words16_all(&a[pde], KM_NO_PFN)) {
			pde += 15;
			continue;
		}
		if (a[pde] != KM_NO_PFN)
			return pde;
	}
	return end;
}

/* How many entries of task t's node table for pde are in use, as its
 * node directory counts them: a walk that has met that many may stop.
 * UINT32_MAX (no early stop) if the directory is out, and for the UTCB
 * area's table, whose UTCB marks nt_next passes over uncounted. */
static uint32_t nt_live(const struct km *km, km_task_t t, uint32_t pde)
{
	km_pfn_t nd = KM_ND(&km->task[t]);

	if (!km_present(nd) || pde == KM_UTCB_PDE)
		return UINT32_MAX;
	return km_words(km, nd)[pde];
}

/*
 * Walks the mappings of pages [first, end) of `task` for an unmap: with
 * `check` false, prepares the change of each subtree (km_subtree_prepare);
 * with it true, reads only, and says KM_ERETRY if a subtree holds a page
 * lent to the kernel that the change cannot do without (every page is in
 * after a walk that prepared).
 */
static int unmap_walk(struct km *km, km_task_t task, uint64_t first,
                      uint64_t end, bool check)
{
	int err;

	if (task == KM_SIGMA0) {
		for (uint64_t v = first; v < end; v++) {
			struct node n = { KM_SIGMA0, (uint32_t)v };

			if (km->frame[v].pool)
				continue;
			if (check && subtree_lends_needed(km, n, true, KM_SIGMA0))
				return KM_ERETRY;
			if (!check &&
			    (err = km_subtree_prepare(km, KM_SIGMA0, (uint32_t)v,
			                              true, KM_SIGMA0)) != KM_OK)
				return err;
		}
		return KM_OK;
	}
	/* One node table at a time, its entries read in place: a task's
	 * walk covers 768 tables' worth of pages, most of them empty. */
	for (uint64_t v = first, stop; v < end; v = stop) {
		uint32_t pde = (uint32_t)(v >> 10), slot, left;

		if (KM_NT(&km->task[task], pde) == KM_NO_PFN) {
			stop = (uint64_t)nt_next_table(km, task, pde,
			                               (uint32_t)((end + 1023) >> 10))
			       << 10;
			continue;
		}
		stop = ((uint64_t)pde + 1) << 10;
		if (stop > end)
			stop = end;
		/* A node table is brought back (and marked used) once, before
		 * its first entry: nothing in the walk sends it out again,
		 * and a loss ends the walk (KM_ERETRY). */
		if (check && !km_present(KM_NT(&km->task[task], pde)))
			return KM_ERETRY;
		if (!check &&
		    (err = km_recv_find(km, task, (uint32_t)v, &slot)) != KM_OK)
			return err;
		/* (Preparing changes no entry of this table.) */
		left = nt_live(km, task, pde);
		for (uint32_t i = (uint32_t)(v & 0x3ffu),
		     e = (uint32_t)(stop - ((uint64_t)pde << 10));
		     left > 0; i++, left--) {
			const uint32_t *w = nt_words(km, task, pde);
			struct node n = { task, KM_NONE };

			KM_ASSERT(w != NULL);
			if ((i = nt_next(w, i, e)) == e)
				break;
			n.slot = nte_recv(w[i]);
			if (check && subtree_lends_needed(km, n, true, KM_SIGMA0))
				return KM_ERETRY;
			if (!check &&
			    (err = km_subtree_prepare(km, task, n.slot, true,
			                              KM_SIGMA0)) != KM_OK)
				return err;
		}
	}
	return KM_OK;
}

/*
 * Validates an unmap of pages [first, end) of `task`: brings back every
 * revoked page it will touch, and refuses (KM_EBUSY) if it would take away
 * a lent page the change needs.  KM_ERETRY if a page it met was lost, or
 * if a kpager lent, for a page brought back on the way, a frame the walk
 * had moved out of a subtree the change takes away: the walk starts over
 * and deals with it as with any lent page.
 */
static int unmap_prepare(struct km *km, km_task_t task, uint64_t first,
                         uint64_t end)
{
	uint64_t loans = km->loans;
	int err = unmap_walk(km, task, first, end, false);

	if (err == KM_OK && km->loans != loans)
		err = unmap_walk(km, task, first, end, true);
	return err;
}

static int unmap_op(struct km *km, km_task_t task, struct km_fpage fp,
                    unsigned flags, uint32_t *pages)
{
	uint64_t size, first, end;
	uint32_t n = 0;
	bool self = (flags & KM_UNMAP_SELF) != 0;
	struct node x;
	int err;

	if (pages != NULL)
		*pages = 0;
	/* Does the task exist; are the flexpage and flags well formed? */
	if (km_task_get(km, task) == NULL)
		return KM_ENOTASK;
	if (!fpage_ok(fp) || (flags & ~KM_UNMAP_SELF))
		return KM_EINVAL;
	size = 1ull << fp.log2;
	if (task == KM_SIGMA0) {
		if (fp.base + size > (uint64_t)km->cfg.frames * KM_PAGE_SIZE)
			return KM_EINVAL;
	} else if (fp.base + size > KM_USER_TOP) {
		return KM_EINVAL;
	}
	if (fp.rights == 0)
		return KM_OK;
	first = fp.base >> KM_PAGE_SHIFT;
	end = first + (size >> KM_PAGE_SHIFT);
	/* May every affected mapping change, and is everything it touches
	 * in the kernel? */
	if ((err = km_settle(km)) != KM_OK)
		return err;
	km->op_evictions = 0;
	while ((err = unmap_prepare(km, task, first, end)) == KM_ERETRY)
		if ((err = km_repair(km)) != KM_OK)
			return err;
	if (err != KM_OK)
		return err;
	for (uint64_t v = first; v < end; v = unmap_step(km, task, (uint32_t)v))
		if (unmap_node(km, task, (uint32_t)v, &x))
			n += revoke(km, x, fp.rights, self);
	km_mdb_trim(km);
	if (pages != NULL)
		*pages = n;
	return KM_OK;
}

int km_unmap(struct km *km, km_task_t task, struct km_fpage fp, unsigned flags,
             uint32_t *pages)
{
	struct km_behalf was = km_enter(km, KM_NO_THREAD);
	int err = unmap_op(km, task, fp, flags, pages);

	km_leave(km, was);
	return err;
}

/* Validates the removal of every mapping of task t (see unmap_prepare). */
int km_unmap_all_prepare(struct km *km, km_task_t t)
{
	return unmap_prepare(km, t, 0, KM_USER_TOP >> KM_PAGE_SHIFT);
}

/*
 * Can every mapping of task t go without km_unmap_all_prepare's walk?
 * That walk brings back pages that are out or lost, and deals with pages
 * lent to the kernel.  With no node table or MDB page out or lost
 * anywhere, no kpager in t (none of its pages is lent) and no mapping
 * derived from t's (no sender part among t's parts), it would only mark
 * used the pages it reads: km_unmap_all does that on its way (the fast
 * path of a task's deletion).  Reads only.
 */
bool km_unmap_all_simple(const struct km *km, km_task_t t)
{
	const struct km_task *tk = &km->task[t];
	uint64_t used;

	if (!km->fast_paths || km->nout_walked > 0 || km->nlost > 0 ||
	    km->ndetached > 0 || tk->kpagers > 0)
		return false;
	used = (uint64_t)tk->npages[KM_KT_MDB] * KM_MDB_PARTS - tk->mdb_free;
	return used == tk->nmappings;   /* receiver parts alone */
}

/* Marks used, at `at`, the MDB page holding part `slot` of task t. */
static void part_mark(struct km *km, km_task_t t, uint32_t slot, uint64_t at)
{
	if (slot != KM_NONE)
		km_frame_used_at(km, km->task[t].page[KM_KT_MDB].
		                 pfn[KM_SLOT_PAGE(slot)], at);
}

/*
 * Marks used, at `at`, what node_bring marks for mapping x, a leaf about
 * to go, but for its node table: its part, its sender part, that part's
 * parent and its siblings as they are now.  A sibling x had when the walk
 * would have run and has no longer went first and was marked then, and so
 * was the neighbour that took its place: over all the mappings that go,
 * the pages are those the walk would have marked.
 */
static void leaf_marks(struct km *km, struct node x, uint64_t at)
{
	const struct km_recv *r = recv_of(km, x);
	const struct km_send *s;

	KM_ASSERT(r->first_child == KM_NONE);
	part_mark(km, x.task, x.slot, at);
	if (r->send_task == KM_NONE)
		return;
	s = send_of(km, r->send_task, r->send_slot);
	part_mark(km, r->send_task, r->send_slot, at);
	part_mark(km, r->send_task, s->next, at);
	part_mark(km, r->send_task, s->prev, at);
	if (r->send_task != KM_SIGMA0)
		part_mark(km, r->send_task, s->parent, at);
}

/*
 * Removes every mapping of task t and everything derived from them: after
 * km_unmap_all_prepare (marks_at NULL), or when km_unmap_all_simple says
 * the walk can be done without, marking the pages it would have marked
 * at *marks_at, the time it would have run.  The caller trims the MDB
 * pages this leaves empty (km_mdb_trim).
 */
void km_unmap_all(struct km *km, km_task_t t, const uint64_t *marks_at)
{
	struct km_task *tk = &km->task[t];

	for (uint32_t pde = nt_next_table(km, t, 0, KM_USER_PDES);
	     pde < KM_USER_PDES;
	     pde = nt_next_table(km, t, pde + 1, KM_USER_PDES)) {
		uint32_t left;

		if (!km_present(KM_NT(tk, pde)))
			continue;
		if (marks_at != NULL)
			km_frame_used_at(km, KM_NT(tk, pde), *marks_at);
		/* Removing a subtree removes no entry after the one it starts
		 * from unless the task mapped a page to itself: then the
		 * count is not met, and the walk goes to the end. */
		left = nt_live(km, t, pde);
		for (uint32_t i = 0; left > 0; i++, left--) {
			const uint32_t *w = nt_words(km, t, pde);
			struct node x;

			KM_ASSERT(w != NULL);
			if ((i = nt_next(w, i, 1024)) == 1024)
				break;
			x.task = t;
			x.slot = nte_recv(w[i]);
			if (marks_at != NULL)
				leaf_marks(km, x, *marks_at);
			remove_subtree(km, x, true);
		}
	}
}

/* May a kpager's callback read kernel page kp: is it in, and not lost
 * and awaiting its repair (present then, but vacant)? */
static bool callback_readable(const struct km *km, struct km_kpage kp)
{
	return !km_kpage_is_out(km, kp) && !km_kpage_lost_pending(km, kp);
}

/* May a callback read the pages km_lookup reads for mapping n? */
static bool lookup_in(const struct km *km, struct node n)
{
	const struct km_recv *r;
	const struct km_send *s;

	if (!callback_readable(km, (struct km_kpage){ n.task, KM_KT_MDB,
	                                              KM_SLOT_PAGE(n.slot) }))
		return false;
	r = recv_of(km, n);
	if (r->send_task == KM_NONE)
		return false;   /* detached: the repair is to remove it */
	if (r->send_task == KM_SIGMA0)
		return true;
	if (!callback_readable(km, (struct km_kpage){ r->send_task, KM_KT_MDB,
	                                              KM_SLOT_PAGE(r->send_slot) }))
		return false;
	s = send_of(km, r->send_task, r->send_slot);
	return callback_readable(km, (struct km_kpage){ r->send_task, KM_KT_MDB,
	                                                KM_SLOT_PAGE(s->parent) });
}

/* Reads, but may bring revoked pages back, as the kernel would. */
static int lookup_op(struct km *km, km_task_t task, km_vaddr_t va,
                     struct km_mapping *out)
{
	struct node n;
	const struct km_recv *r;
	int err;

	if (km_task_get(km, task) == NULL)
		return KM_ENOTASK;
	if (task == KM_SIGMA0 || va >= KM_USER_TOP)
		return KM_EINVAL;
	n.task = task;
	if (km->in_callback > 0) {
		/* Inside a kpager's callback an operation is under way: only
		 * what is in may be read (a repair, perhaps, that has yet to
		 * undo what lost pages held). */
		if (!callback_readable(km, (struct km_kpage){ task, KM_KT_NT,
		                                              va >> 22 }))
			return KM_EBUSY;
		n.slot = km_recv_at(km, task, va >> KM_PAGE_SHIFT);
		if (n.slot != KM_NONE && !lookup_in(km, n))
			return KM_EBUSY;
	} else {
		if ((err = km_settle(km)) != KM_OK)
			return err;
		km_op_begin(km);
		for (;;) {
			err = km_recv_find(km, task, va >> KM_PAGE_SHIFT,
			                   &n.slot);
			if (err == KM_OK && n.slot != KM_NONE)
				err = node_bring(km, n);
			if (err != KM_ERETRY)
				break;
			if ((err = km_repair(km)) != KM_OK)
				break;
		}
		if (err != KM_OK)
			return err;
	}
	if (n.slot == KM_NONE)
		return KM_ENOMAP;
	r = recv_of(km, n);
	out->pfn = r->pfn;
	out->rights = r->rights;
	out->from = r->send_task;
	if (r->send_task == KM_SIGMA0) {
		out->from_vaddr = r->pfn << KM_PAGE_SHIFT;
	} else {
		struct node p = parent_of(km, n);

		out->from_vaddr = recv_of(km, p)->vpn << KM_PAGE_SHIFT;
	}
	out->lent = km_lent(km, task, r);
	return KM_OK;
}

int km_lookup(const struct km *kmc, km_task_t task, km_vaddr_t va,
              struct km_mapping *out)
{
	struct km *km = (struct km *)kmc;
	struct km_behalf was = km_enter(km, KM_NO_THREAD);
	int err = lookup_op(km, task, va, out);

	km_leave(km, was);
	return err;
}
