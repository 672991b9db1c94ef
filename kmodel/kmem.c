/*
 * Kernel memory: kernel pages named by (task, type, index), where each one
 * sits, and how the kernel obtains them.  An operation first lists the
 * pages it needs (km_op_need), then km_op_acquire sorts them into hierarchy
 * order and obtains each, from the in-kernel pool or through a kernel page
 * fault to the task's kpager; if any is refused, the pages obtained so far
 * are given back and the operation fails with nothing changed.
 */
#include "internal.h"

static const char *const ktype_names[KM_KT_COUNT] = {
	[KM_KT_PD] = "pd", [KM_KT_ND] = "nd", [KM_KT_PT] = "pt",
	[KM_KT_NT] = "nt", [KM_KT_MDB] = "mdb", [KM_KT_UTCB] = "utcb",
	[KM_KT_KTCB] = "ktcb",
};

const char *km_ktype_name(enum km_ktype type)
{
	return (unsigned)type < KM_KT_COUNT ? ktype_names[type] : "?";
}

enum km_kgroup km_ktype_group(enum km_ktype type)
{
	switch (type) {
	case KM_KT_PD: case KM_KT_PT: return KM_KG_P;
	case KM_KT_ND: case KM_KT_NT: return KM_KG_N;
	case KM_KT_MDB: return KM_KG_M;
	case KM_KT_UTCB: return KM_KG_U;
	default: return KM_KG_K;
	}
}

/* How many pages of each type one task can have: PT and NT pages are
 * indexed by PDE, the UTCB area holds 1024 pages (8192 threads), so does
 * the KTCB range; MDB pages are limited by the 24-bit page field of a slot. */
static uint32_t ktype_limit(enum km_ktype type)
{
	switch (type) {
	case KM_KT_PD: case KM_KT_ND: return 1;
	case KM_KT_PT: case KM_KT_NT: return KM_USER_PDES;
	case KM_KT_UTCB: return KM_UTCB_AREA_SIZE / KM_PAGE_SIZE;
	case KM_KT_KTCB: return KM_UTCB_AREA_SIZE / KM_UTCB_SIZE /
	                        (KM_PAGE_SIZE / KM_KTCB_SIZE);
	case KM_KT_MDB: return 1u << 24;
	default: return 0;
	}
}

uint64_t km_kpage_kva(struct km_kpage kp)
{
	return ((uint64_t)kp.type << 60) | ((uint64_t)(kp.task & 0x0fffffffu) << 32) |
	       ((uint64_t)kp.index << KM_PAGE_SHIFT);
}

int km_kva_decode(uint64_t kva, struct km_kpage *out)
{
	struct km_kpage kp;
	uint64_t index = (kva & 0xffffffffu) >> KM_PAGE_SHIFT;

	/* Is it page aligned, of a known type, and inside the type's range? */
	if ((kva & (KM_PAGE_SIZE - 1)) != 0 || (kva >> 60) >= KM_KT_COUNT)
		return KM_EINVAL;
	kp.type = (enum km_ktype)(kva >> 60);
	kp.task = (km_task_t)((kva >> 32) & 0x0fffffffu);
	kp.index = (uint32_t)index;
	if (kp.index >= ktype_limit(kp.type))
		return KM_EINVAL;
	*out = kp;
	return KM_OK;
}

int km_pages_reserve(struct km_pages *p, uint32_t len)
{
	uint32_t cap;
	km_pfn_t *n;

	if (len <= p->cap)
		return KM_OK;
	/* A first reservation is taken as asked (a task's 768 tables);
	 * growth doubles. */
	cap = p->cap ? p->cap : len > 8 ? len : 8;
	while (cap < len)
		cap *= 2;
	if (p->gen != NULL) {
		uint64_t *g = realloc(p->gen, (size_t)cap * sizeof *g);
		uint8_t *l;
		struct km_outmeta **m;

		if (g == NULL)
			return KM_EIO;
		p->gen = g;
		if ((l = realloc(p->lost, (size_t)cap * sizeof *l)) == NULL)
			return KM_EIO;
		p->lost = l;
		if ((m = realloc(p->meta, (size_t)cap * sizeof *m)) == NULL)
			return KM_EIO;
		p->meta = m;
		memset(g + p->cap, 0, (cap - p->cap) * sizeof *g);
		memset(l + p->cap, 0, (cap - p->cap) * sizeof *l);
		for (uint32_t i = p->cap; i < cap; i++)
			m[i] = NULL;
	}
	n = realloc(p->pfn, (size_t)cap * sizeof *n);
	if (n == NULL)
		return KM_EIO;
	p->pfn = n;
	for (uint32_t i = p->cap; i < cap; i++)
		n[i] = KM_NO_PFN;
	p->cap = cap;
	return KM_OK;
}

int km_pages_aux(struct km_pages *p)
{
	uint64_t *g;
	uint8_t *l;
	struct km_outmeta **m;

	if (p->gen != NULL)
		return KM_OK;
	g = calloc(p->cap, sizeof *g);
	l = calloc(p->cap, sizeof *l);
	m = calloc(p->cap, sizeof *m);
	if (g == NULL || l == NULL || m == NULL) {
		free(g);
		free(l);
		free(m);
		return KM_EIO;
	}
	p->gen = g;
	p->lost = l;
	p->meta = m;
	return KM_OK;
}

void km_pages_free(struct km_pages *p)
{
	/* Only a page that is out has its kept metadata, and an out page
	 * lies below len. */
	for (uint32_t i = 0; p->meta != NULL && i < p->len; i++)
		if (p->meta[i] != NULL)
			free(p->meta[i]);
	free(p->meta);
	free(p->pfn);
	free(p->gen);
	free(p->lost);
	memset(p, 0, sizeof *p);
}

/* The fixed-size page arrays every task has: one directory of each kind,
 * a page table and a node table per user PDE. */
int km_task_alloc_pages(struct km_task *tk)
{
	tk->pt_missing = calloc(KM_USER_PDES, sizeof *tk->pt_missing);
	if (tk->pt_missing == NULL ||
	    km_pages_reserve(&tk->page[KM_KT_PD], 1) != KM_OK ||
	    km_pages_reserve(&tk->page[KM_KT_ND], 1) != KM_OK ||
	    km_pages_reserve(&tk->page[KM_KT_PT], KM_USER_PDES) != KM_OK ||
	    km_pages_reserve(&tk->page[KM_KT_NT], KM_USER_PDES) != KM_OK) {
		km_task_free_pages(tk);
		return KM_EIO;
	}
	tk->page[KM_KT_PD].len = tk->page[KM_KT_ND].len = 1;
	tk->page[KM_KT_PT].len = tk->page[KM_KT_NT].len = KM_USER_PDES;
	return KM_OK;
}

void km_task_free_pages(struct km_task *tk)
{
	for (int t = 0; t < KM_KT_COUNT; t++)
		km_pages_free(&tk->page[t]);
	free(tk->pt_missing);
	tk->pt_missing = NULL;
}

/* Does the page array of this type grow with use (MDB, UTCB, KTCB)? */
static bool ktype_grows(enum km_ktype type)
{
	return type == KM_KT_MDB || type == KM_KT_UTCB || type == KM_KT_KTCB;
}

/* Where the frame number of a kernel page is kept; NULL if the index lies
 * beyond what is allocated so far (the page is then absent). */
static km_pfn_t *kpage_slot(const struct km *km, struct km_kpage kp)
{
	struct km_task *tk = km_task_get(km, kp.task);
	struct km_pages *p;

	if (tk == NULL || (unsigned)kp.type >= KM_KT_COUNT ||
	    kp.index >= ktype_limit(kp.type))
		return NULL;
	p = &tk->page[kp.type];
	return kp.index < p->cap ? &p->pfn[kp.index] : NULL;
}

/* Is the kernel page revoked, its content with the kpager? */
bool km_kpage_is_out(const struct km *km, struct km_kpage kp)
{
	km_pfn_t *s = kpage_slot(km, kp);

	return s != NULL && *s == KM_OUT_PFN;
}

static int lent_frame(struct km *km, km_kpager_t id, km_vaddr_t vaddr,
                      km_pfn_t *pfn);
static int deps_ready(struct km *km, struct km_kpage kp);

/* ---------------------------------------------------------------------- */
/* Installing, freeing and revoking kernel pages.                           */

/* Counts a kernel page of task tk going out (d = 1) or out no longer
 * (d = -1): per task and type, and node tables and MDB pages in all. */
static void nout_add(struct km *km, struct km_task *tk, enum km_ktype type,
                     int d)
{
	tk->nout[type] += (uint32_t)d;
	if (type == KM_KT_NT || type == KM_KT_MDB)
		km->nout_walked += (uint32_t)d;
}

/* Enters a frame into the kernel as the page `kp`, with its content made
 * as `how` says (see kform.c).  The pages it depends on are present. */
static enum km_decision kpage_install(struct km *km, struct km_kpage kp,
                                      km_pfn_t pfn, enum km_import how)
{
	struct km_task *tk = km_task_get(km, kp.task);
	struct km_frame *f = &km->frame[pfn];
	struct km_pages *arr = &tk->page[kp.type];
	km_pfn_t *slot = kpage_slot(km, kp);

	KM_ASSERT(f->kuse == KM_KU_NONE && slot != NULL);
	KM_ASSERT((*slot == KM_OUT_PFN) == (how != KM_IMPORT_NEW));
	if (*slot == KM_OUT_PFN)
		nout_add(km, tk, kp.type, -1);
	f->kuse = KM_KU_KERNEL;
	km_frame_used(km, pfn);
	f->ktype = (uint8_t)kp.type;
	f->ktask = kp.task;
	f->kindex = kp.index;
	if (kp.index >= arr->len)
		arr->len = kp.index + 1;
	*slot = pfn;
	if (arr->lost != NULL)
		arr->lost[kp.index] = 0;
	tk->npages[kp.type]++;
	km->kernel_frames++;
	return km_kform_import(km, kp, pfn, how);
}

/* Ends a lent frame's kernel use: the lender's mapping becomes accessible
 * again.  (Whether the policy hears of it depends on why.) */
static struct km_kpager *lend_end(struct km *km, km_pfn_t pfn, bool unhide)
{
	struct km_frame *f = &km->frame[pfn];
	struct km_kpager *k = &km->kpager[f->lender];

	/* The kpager's own table may be revoked (its kernel memory comes from
	 * a kpager too): then the PTE comes back with the table. */
	if (unhide)
		km_pt_unhide(km, &km->task[k->task],
		             f->lender_vpn << KM_PAGE_SHIFT, pfn);
	km->lent--;
	k->st.lent--;
	return k;
}

/* Takes a frame out of the kernel's bookkeeping for `kp`. */
static void frame_leave(struct km *km, struct km_kpage kp, km_pfn_t pfn)
{
	struct km_task *tk = &km->task[kp.task];

	tk->npages[kp.type]--;
	km->kernel_frames--;
	km->frame[pfn].kuse = KM_KU_NONE;
}

/*
 * Frees a present kernel page: takes it out of the task's tables and
 * returns the frame to the pool or to the kpager that lent it.  The caller
 * has emptied it (no live PTEs, parts or slots) where that matters.
 */
void km_kpage_free(struct km *km, struct km_kpage kp)
{
	struct km_task *tk = km_task_get(km, kp.task);
	km_pfn_t *slot = kpage_slot(km, kp);
	km_pfn_t pfn = slot ? *slot : KM_NO_PFN;
	struct km_frame *f;

	KM_ASSERT(km_present(pfn));
	f = &km->frame[pfn];
	KM_ASSERT(f->kuse == KM_KU_KERNEL && f->ktask == kp.task &&
	          f->ktype == kp.type && f->kindex == kp.index);
	switch (kp.type) {
	case KM_KT_PT:
		if (km_present(KM_PD(tk)))
			km_words(km, KM_PD(tk))[kp.index] = 0;
		tk->pt_missing[kp.index] = 0;
		km_pte_notify(km, tk, kp.index << 22, 1024, KM_PTE_REMOVED);
		break;
	case KM_KT_MDB: {
		struct km_mdb_page *mp = (void *)km_fp(km, pfn);

		KM_ASSERT(mp->used == 0);
		tk->mdb_free -= KM_MDB_PARTS;
		break;
	}
	case KM_KT_UTCB:
		km_pt_clear(km, tk, KM_UTCB_AREA + kp.index * KM_PAGE_SIZE);
		break;
	default:
		break;
	}
	*slot = KM_NO_PFN;
	frame_leave(km, kp, pfn);
	if (f->pool) {
		km_charge(km, KM_C_KPOOL_FREE);
		f->kuse = KM_KU_POOL;
		km->kpool[km->kpool_len++] = pfn;
	} else {
		struct km_kpager *k = lend_end(km, pfn, true);

		km_charge(km, KM_C_KUNMAP);
		k->st.released++;
		if (k->ops->released != NULL) {
			km->in_callback++;
			k->ops->released(k->state,
			                 f->lender_vpn << KM_PAGE_SHIFT, kp);
			km->in_callback--;
		}
	}
	/* Trim a growing array's length past absent pages at its end. */
	if (ktype_grows(kp.type)) {
		struct km_pages *arr = &tk->page[kp.type];

		while (arr->len > 0 && arr->pfn[arr->len - 1] == KM_NO_PFN)
			arr->len--;
	}
}

/* Forgets a revoked page whose content nobody needs any more: the kpager
 * holds its form, which is now just bytes of its own. */
void km_kpage_forget(struct km *km, struct km_kpage kp)
{
	struct km_task *tk = &km->task[kp.task];
	km_pfn_t *slot = kpage_slot(km, kp);

	KM_ASSERT(slot != NULL && *slot == KM_OUT_PFN);
	if (tk->kpager != KM_ROOT_KPAGER) {
		struct km_kpager *k = &km->kpager[tk->kpager];

		if (k->ops->forgotten != NULL) {
			km->in_callback++;
			k->ops->forgotten(k->state, kp);
			km->in_callback--;
		}
	}
	/* A UTCB page leaves its mark in the UTCB area's node table. */
	if (kp.type == KM_KT_UTCB)
		km_pt_clear(km, tk, KM_UTCB_AREA + kp.index * KM_PAGE_SIZE);
	*slot = KM_NO_PFN;
	nout_add(km, tk, kp.type, -1);
	if (tk->page[kp.type].lost != NULL)
		tk->page[kp.type].lost[kp.index] = 0;
	km_outmeta_free(&tk->page[kp.type], kp.index);
	if (ktype_grows(kp.type)) {
		struct km_pages *arr = &tk->page[kp.type];

		while (arr->len > 0 && arr->pfn[arr->len - 1] == KM_NO_PFN)
			arr->len--;
	}
}

/* Does kernel page kp, entered from the pool, belong to a client of a
 * kpager, which is asked for it if it goes out? */
static bool pool_lent_to_client(const struct km *km, struct km_kpage kp)
{
	return km->cfg.kmem == KM_KMEM_KPAGER &&
	       km->task[kp.task].kpager != KM_ROOT_KPAGER;
}

/* Counts kp, just entered in a pool frame, for km_pool_reclaim if it is
 * a kpager's client's node table.  (The count is a bound, kept below the
 * pool's size.) */
static void pool_nt_note(struct km *km, struct km_kpage kp)
{
	if (kp.type == KM_KT_NT && pool_lent_to_client(km, kp) &&
	    km->kpool_nts < km->cfg.kpool_frames)
		km->kpool_nts++;
}

/*
 * Takes kernel page kp, in frame pfn, out of the kernel: converts it to
 * its external form in the frame (zeroed if `discard`) and marks it out.
 * The frame is the caller's to give back.  KM_EIO, the page still in,
 * if the host refuses memory for what stays pinned.
 */
static int page_out(struct km *km, struct km_kpage kp, km_pfn_t pfn,
                    bool discard)
{
	struct km_task *tk = &km->task[kp.task];

	km_charge(km, KM_C_REVOKE);
	/* A new generation first: the form binds to it, so an older form of
	 * the same page (or of a page of the same name in a task that died)
	 * no longer passes. */
	if (km_pages_aux(&tk->page[kp.type]) != KM_OK)
		return KM_EIO;
	tk->page[kp.type].gen[kp.index] = ++km->exports;
	if (km_kform_export(km, kp, pfn, discard) != KM_OK)
		return KM_EIO;
	*kpage_slot(km, kp) = KM_OUT_PFN;
	nout_add(km, tk, kp.type, 1);
	tk->page[kp.type].lost[kp.index] = discard;
	frame_leave(km, kp, pfn);
	return KM_OK;
}

/*
 * Revokes the kernel page held in a lent frame: converts it to its
 * external form, takes it out of the kernel and gives the frame back to
 * its kpager.  The type is revocable (the caller checked).
 */
static int revoke_page(struct km *km, km_pfn_t pfn, bool discard,
                       bool unhide)
{
	struct km_frame *f = &km->frame[pfn];
	struct km_kpage kp = { f->ktask, (enum km_ktype)f->ktype, f->kindex };
	struct km_fault_rec rec, *outer;
	struct km_kpager *k;

	KM_ASSERT(f->kuse == KM_KU_KERNEL && !f->pool);
	KM_ASSERT(km_ktype_is_revocable(kp.type));
	outer = km_rec_begin(km, &rec, KM_FK_REVOKE, kp.task);
	rec.kpage = kp;
	rec.pfn = pfn;
	if (page_out(km, kp, pfn, discard) != KM_OK) {
		rec.decision = KM_D_FAILED;
		km_rec_end(km, &rec, outer);
		return KM_EIO;
	}
	k = lend_end(km, pfn, unhide);
	k->st.revoked++;
	rec.decision = discard ? KM_D_DISCARDED : KM_D_EXPORTED;
	km_rec_end(km, &rec, outer);
	if (k->ops->revoked != NULL) {
		km->in_callback++;
		k->ops->revoked(k->state, f->lender_vpn << KM_PAGE_SHIFT, kp,
		                discard);
		km->in_callback--;
	}
	return KM_OK;
}

int km_kpage_revoke(struct km *km, km_pfn_t pfn, bool discard)
{
	return revoke_page(km, pfn, discard, true);
}

/*
 * Moves the kernel page in lent frame `pfn` into a frame of the in-kernel
 * pool, content and all, and ends the loan: for a node table or MDB page
 * whose lender's mapping is going away while the kernel still needs the
 * page (nothing points at those pages but the task's own table).
 * KM_ENOMEM if the pool is down to its reserve (KM_KPOOL_RESERVE);
 * nothing changes then.
 */
int km_kpage_to_pool(struct km *km, km_pfn_t pfn)
{
	struct km_frame *f = &km->frame[pfn], *nf;
	struct km_kpage kp = { f->ktask, (enum km_ktype)f->ktype, f->kindex };
	struct km_kpager *k;
	km_pfn_t np;

	KM_ASSERT(f->kuse == KM_KU_KERNEL && !f->pool &&
	          (kp.type == KM_KT_NT || kp.type == KM_KT_MDB));
	if (km->kpool_len <= KM_KPOOL_RESERVE)
		return KM_ENOMEM;
	np = km->kpool[--km->kpool_len];
	km_charge(km, KM_C_KPOOL_ALLOC);
	memcpy(km_fp(km, np), km_fp(km, pfn), KM_PAGE_SIZE);
	km_charge(km, KM_C_ZERO_FRAME);         /* a 4 KiB copy, as a clear */
	nf = &km->frame[np];
	nf->kuse = KM_KU_KERNEL;
	nf->ktype = f->ktype;
	nf->ktask = f->ktask;
	nf->kindex = f->kindex;
	nf->lender = KM_ROOT_KPAGER;
	nf->last_use = f->last_use;
	*kpage_slot(km, kp) = np;
	pool_nt_note(km, kp);
	f->kuse = KM_KU_NONE;
	k = lend_end(km, pfn, true);
	k->st.released++;
	km->in_callback++;
	if (k->ops->released != NULL)
		k->ops->released(k->state, f->lender_vpn << KM_PAGE_SHIFT, kp);
	km->in_callback--;
	return KM_OK;
}

/* Revokes, discarding it, the kernel page in a frame whose lending
 * mapping was lost (repair.c): no PTE comes back to the kpager. */
int km_kpage_revoke_orphan(struct km *km, km_pfn_t pfn)
{
	return revoke_page(km, pfn, true, false);
}

/*
 * The frame kpager `id` lent to the kernel at `vaddr` of its task, in
 * *pfn (KM_NO_PFN if that page is not lent).  The kpager's own node table
 * and mapping node may be revoked: they come back from its own kpager
 * (KM_ERETRY if one was lost, for the caller's km_repair).
 */
static int lent_frame(struct km *km, km_kpager_t id, km_vaddr_t vaddr,
                      km_pfn_t *pfn)
{
	km_task_t kt = km->kpager[id].task;
	const struct km_recv *r;
	uint32_t slot;
	int err;

	*pfn = KM_NO_PFN;
	if ((vaddr & (KM_PAGE_SIZE - 1)) != 0 || vaddr >= KM_USER_TOP)
		return KM_OK;
	err = km_recv_find(km, kt, vaddr >> KM_PAGE_SHIFT, &slot);
	if (err == KM_OK && slot != KM_NONE)
		err = km_part_bring(km, kt, slot);
	if (err != KM_OK || slot == KM_NONE)
		return err;
	r = &km_part(km, kt, slot)->r;
	if (r->tag == KM_PART_RECV && km_lent(km, kt, r))
		*pfn = r->pfn;
	return KM_OK;
}

/* lent_frame between operations: what a loss on the way held is undone
 * first.  KM_EINVAL if the page is not lent by the kpager. */
static int lent_frame_now(struct km *km, km_kpager_t id, km_vaddr_t vaddr,
                          km_pfn_t *pfn)
{
	int err;

	if ((err = km_settle(km)) != KM_OK)
		return err;
	km_op_begin(km);
	while ((err = lent_frame(km, id, vaddr, pfn)) == KM_ERETRY)
		if ((err = km_repair(km)) != KM_OK)
			return err;
	return err == KM_OK && *pfn == KM_NO_PFN ? KM_EINVAL : err;
}

/* Does lent frame pfn hold a page lost and not yet repaired?  It cannot
 * go out: what the kernel kept of its form is for the repair. */
bool km_kpage_awaits_repair(const struct km *km, km_pfn_t pfn)
{
	const struct km_frame *f = &km->frame[pfn];

	return km_kpage_lost_pending(km, (struct km_kpage){ f->ktask, f->ktype,
	                                                    f->kindex });
}

static bool kpager_live(const struct km *km, km_kpager_t id)
{
	return id != KM_ROOT_KPAGER && id < km->nkpagers && km->kpager[id].live;
}

static int kpager_revoke_op(struct km *km, km_kpager_t id, km_vaddr_t vaddr,
                            bool discard)
{
	km_pfn_t pfn;
	int err;

	/* Is it a live kpager, and did it lend the page at vaddr? */
	if (!kpager_live(km, id))
		return KM_ENOKPAGER;
	if ((vaddr & (KM_PAGE_SIZE - 1)) != 0 || vaddr >= KM_USER_TOP)
		return KM_EINVAL;
	/* Revocation happens between operations: not from inside a kernel
	 * page fault or a release notice, while an operation is under way. */
	if (km->in_callback > 0)
		return KM_EBUSY;
	if ((err = lent_frame_now(km, id, vaddr, &pfn)) != KM_OK)
		return err;
	/* A page awaiting its repair stays until the repair is done. */
	if (km_kpage_awaits_repair(km, pfn))
		return KM_EBUSY;
	return revoke_page(km, pfn, discard, true);
}

int km_kpager_revoke(struct km *km, km_kpager_t id, km_vaddr_t vaddr,
                     bool discard)
{
	struct km_behalf was = km_enter(km, KM_NO_THREAD);
	int err = kpager_revoke_op(km, id, vaddr, discard);

	km_leave(km, was);
	return err;
}

static int kpager_page_use_op(struct km *km, km_kpager_t id, km_vaddr_t vaddr,
                              bool clear, bool *referenced, uint64_t *last_use)
{
	km_pfn_t pfn;
	int err;

	if (!kpager_live(km, id))
		return KM_ENOKPAGER;
	/* From a callback, only what is in can be read. */
	if (km->in_callback > 0) {
		struct km_mapping m;

		err = km_lookup(km, km->kpager[id].task, vaddr, &m);
		if (err != KM_OK || !m.lent)
			return err != KM_OK && err != KM_ENOMAP ? err : KM_EINVAL;
		pfn = m.pfn;
	} else if ((err = lent_frame_now(km, id, vaddr, &pfn)) != KM_OK) {
		return err;
	}
	*referenced = (km->frame[pfn].flags & KM_FR_USED) != 0;
	*last_use = km->frame[pfn].last_use;
	if (clear)
		km->frame[pfn].flags &= (uint8_t)~KM_FR_USED;
	return KM_OK;
}

int km_kpager_page_use(struct km *km, km_kpager_t id, km_vaddr_t vaddr,
                       bool clear, bool *referenced, uint64_t *last_use)
{
	struct km_behalf was = km_enter(km, KM_NO_THREAD);
	int err = kpager_page_use_op(km, id, vaddr, clear, referenced, last_use);

	km_leave(km, was);
	return err;
}

/* Revokes the victim a kpager named with KP_REVOKE, now that the
 * operation that asked has let go of everything.  (It may have stopped
 * being lent meanwhile: then there is nothing to do.) */
int km_victim_revoke(struct km *km)
{
	km_pfn_t pfn;
	int err;

	if (!km->victim.pending)
		return KM_OK;
	km->victim.pending = false;
	if (!kpager_live(km, km->victim.kpager))
		return KM_OK;
	err = lent_frame(km, km->victim.kpager, km->victim.vaddr, &pfn);
	if (err != KM_OK || pfn == KM_NO_PFN)
		return err == KM_ERETRY ? KM_OK : err;
	/* A page lost and not yet repaired cannot go out, nor one a repair
	 * holds in (it was named before the repair brought it in): the
	 * kpager will be asked again, and may name another. */
	if (km_kpage_awaits_repair(km, pfn) ||
	    (km->frame[pfn].flags & KM_FR_HELD))
		return KM_OK;
	km->kpager[km->victim.kpager].st.evicted++;
	return revoke_page(km, pfn, km->victim.discard, true);
}

/* Frees every kernel page of a task whose objects are all gone, in reverse
 * hierarchy order; revoked pages are forgotten. */
void km_task_free_kpages(struct km *km, km_task_t t)
{
	struct km_task *tk = &km->task[t];

	for (int type = KM_KT_COUNT - 1; type >= 0; type--) {
		/* Most of a task's 768 table slots are empty: the array is
		 * read directly, sixteen slots at a time, and only a page
		 * that is there is visited (from the top down, read afresh). */
		for (uint32_t hi = tk->page[type].len, lo; hi > 0; hi = lo) {
			lo = hi >= 16 ? hi - 16 : 0;
			if (hi - lo == 16 &&
			    km_words16_all(&tk->page[type].pfn[lo], KM_NO_PFN))
				continue;
			for (uint32_t i = hi; i-- > lo;) {
				km_pfn_t p = tk->page[type].pfn[i];
				struct km_kpage kp = { t, (enum km_ktype)type, i };

				if (p == KM_NO_PFN)
					continue;
				if (km_present(p))
					km_kpage_free(km, kp);
				else
					km_kpage_forget(km, kp);
			}
		}
	}
}

/* ---------------------------------------------------------------------- */
/* Obtaining a frame: the in-kernel pool or a kernel page fault.            */

/*
 * Checks a kpager's answer: the page at `va` of the kpager's task must be
 * mapped writable there, straight from sigma0 and nowhere else, not
 * mapped onwards, not lent already, and its frame must not hold kernel
 * data.  Returns the receiver slot or KM_NONE.
 */
static uint32_t lend_check(struct km *km, km_task_t kt, km_vaddr_t va,
                           int *err)
{
	uint32_t slot;
	const struct km_recv *r;
	const struct km_send *s;

	*err = KM_OK;
	if ((va & (KM_PAGE_SIZE - 1)) != 0 || va >= KM_USER_TOP)
		return KM_NONE;
	/* The kpager's own node table and mapping may be revoked: they come
	 * back from its own kpager first (a lost one makes the answer void;
	 * one that waits on this kpager is a deadlock, in *err). */
	*err = km_recv_find(km, kt, va >> KM_PAGE_SHIFT, &slot);
	if (*err == KM_OK && slot != KM_NONE)
		*err = km_part_bring(km, kt, slot);
	if (*err != KM_OK || slot == KM_NONE)
		return KM_NONE;
	r = &km_part(km, kt, slot)->r;
	if (r->tag != KM_PART_RECV || !(r->rights & KM_W) ||
	    r->first_child != KM_NONE ||
	    km->frame[r->pfn].kuse != KM_KU_NONE)
		return KM_NONE;
	/* In-use kernel memory is out of every user's reach, and the kernel
	 * takes away the lender's PTE alone: the frame may have no other
	 * mapping.  A task that mapped the page on to the kpager, or another
	 * that sigma0 mapped the same frame to, would keep its own, and
	 * could read and write the kernel's page through it.  So the mapping
	 * must be sigma0's only child. */
	if (r->send_task != KM_SIGMA0)
		return KM_NONE;
	if ((*err = km_part_bring(km, KM_SIGMA0, r->send_slot)) != KM_OK)
		return KM_NONE;
	r = &km_part(km, kt, slot)->r;  /* (bringing may have moved pages) */
	s = &km_part(km, KM_SIGMA0, r->send_slot)->s;
	if (s->prev != KM_NONE || s->next != KM_NONE)
		return KM_NONE;
	return slot;
}

/*
 * Would a kernel page fault to kpager `kid` wait on itself?  It would if
 * the kpager (its task) is what the operation waits for: the faulting
 * thread's task, or the mapper whose map needs the page; or if the kernel
 * is carrying out that kpager's answer to an enclosing fault.  (kpagers
 * are single-threaded: a kpager's task blocked in a fault or a map cannot
 * answer another.)
 */
static bool waits_on_itself(const struct km *km, km_kpager_t kid)
{
	km_task_t kt = km->kpager[kid].task;
	const struct km_thread *th = km_thread_get(km, km->op_thread);

	if ((th != NULL && th->task == kt) || km->op_caller == kt)
		return true;
	for (uint32_t i = 0; i < km->nreply; i++)
		if (km->reply[i] == kid)
			return true;
	return km->nreply == KM_REPLY_DEPTH;
}

/* Tells a kpager its answer `va` to `f` was not carried out: by its
 * `aborted` callback, or else (a page that held nothing) as a release. */
static void answer_void(struct km *km, struct km_kpager *k,
                        const struct kp_fault *f, km_vaddr_t va)
{
	km->in_callback++;
	if (k->ops->aborted != NULL)
		k->ops->aborted(k->state, f);
	else if (!f->restore && k->ops->released != NULL)
		k->ops->released(k->state, va, f->kpage);
	km->in_callback--;
}

/*
 * Checks a kpager's answer and obtains what entering the page relies on,
 * while the kpager waits for its answer to be carried out (so a nested
 * fault that needs it is a deadlock).  KM_OK with *slot the lent page's
 * receiver slot; an error with *slot KM_NONE if the answer is refused, or
 * the lent slot if a page it relies on could not be had.
 */
static int carry_out(struct km *km, km_kpager_t kid, struct km_kpage kp,
                     km_vaddr_t va, uint32_t *slot, bool *refused)
{
	int err;

	km->reply[km->nreply++] = kid;
	*slot = lend_check(km, km->kpager[kid].task, va, &err);
	*refused = err != KM_EDEADLK && *slot == KM_NONE;
	if (!*refused && err == KM_OK)
		err = deps_ready(km, kp);
	km->nreply--;
	return *refused ? KM_EKPAGER : err;
}

/* Was kp named as a victim in the current row of KP_REVOKE answers?
 * (Then its coming back is no progress.) */
static bool streak_victim(const struct km *km, struct km_kpage kp)
{
	for (uint32_t i = 0; i < km->evict_streak; i++)
		if (km->streak_victim[i].task == kp.task &&
		    km->streak_victim[i].type == kp.type &&
		    km->streak_victim[i].index == kp.index)
			return true;
	return false;
}

/* Raises a kernel page fault for `kp` to kpager `kid` (with `restore`
 * when the page is out).  On success the frame is lent (the kpager's own
 * access to it is revoked) and the page installed. */
static int kernel_fault(struct km *km, km_kpager_t kid, struct km_kpage kp,
                        bool restore, km_pfn_t *pfn)
{
	struct km_kpager *k = &km->kpager[kid];
	struct km_task *kt = &km->task[k->task];
	struct km_fault_rec rec, *outer;
	struct kp_fault f;
	struct kp_decision d = { KP_DENY, 0, false };
	uint32_t slot;
	struct km_recv *r;
	bool refused;
	int err;

	outer = km_rec_begin(km, &rec, KM_FK_KERNEL, kp.task);
	rec.kpage = kp;
	km->kfaults++;
	km->task[kp.task].kfaults++;
	k->st.faults++;
	/* A cycle in the wait-for graph: the kpager would never answer. */
	if (waits_on_itself(km, kid)) {
		k->st.aborted++;
		km->aborts++;
		rec.decision = KM_D_ABORTED;
		km_rec_end(km, &rec, outer);
		return KM_EDEADLK;
	}
	/* The fault IPC leaves the kernel for the kpager and comes back. */
	km_charge(km, KM_C_TRAP_EXIT);
	km_charge(km, KM_C_FAULT_IPC);
	km_charge(km, KM_C_KPAGER_HANDLER);
	f.seq = rec.seq;
	f.kpager = kid;
	f.now = km->now;
	f.thread = km->op_thread;
	f.op = km->op_id;
	f.kpage = kp;
	f.kva = km_kpage_kva(kp);
	f.restore = restore;
	km->in_callback++;
	k->ops->fault(k->state, &f, &d);
	km->in_callback--;
	km_charge(km, KM_C_TRAP_ENTRY);
	km_charge(km, KM_C_MAP_ITEM);

	if (d.action == KP_REVOKE && km->evict_streak < KM_EVICT_STREAK) {
		km_pfn_t victim = KM_NO_PFN;

		/* The victim must be a page it lent, and not one a repair
		 * under way holds in (repair.c); the kernel takes it back
		 * once this attempt has let go of everything (km_repair), and
		 * the operation starts over. */
		if (lent_frame(km, kid, d.vaddr, &victim) != KM_OK ||
		    victim == KM_NO_PFN ||
		    (km->frame[victim].flags & KM_FR_HELD)) {
			k->st.refused++;
			rec.decision = KM_D_REFUSED;
			err = KM_EKPAGER;
		} else {
			km->victim.pending = true;
			km->victim.named++;
			km->victim.discard = d.discarded;
			km->victim.kpager = kid;
			km->victim.vaddr = d.vaddr;
			km->streak_victim[km->evict_streak++] = (struct km_kpage){
				km->frame[victim].ktask,
				(enum km_ktype)km->frame[victim].ktype,
				km->frame[victim].kindex };
			rec.decision = KM_D_EVICT;
			err = KM_ERETRY;
		}
	} else if (d.action == KP_DENY || d.action == KP_REVOKE) {
		k->st.denied++;
		km->denied++;
		rec.decision = KM_D_DENIED;
		err = KM_EDENIED;
	} else if (d.action != KP_MAP ||
	           (err = carry_out(km, kid, kp, d.vaddr, &slot,
	                            &refused)) == KM_EKPAGER) {
		k->st.refused++;
		rec.decision = KM_D_REFUSED;
		err = KM_EKPAGER;
	} else if (err != KM_OK) {
		/* Its answer stands but cannot be carried out: a deadlock,
		 * or a page entering this one relies on was not had. */
		if (err == KM_EDEADLK) {
			k->st.aborted++;
			km->aborts++;
			rec.decision = KM_D_ABORTED;
		} else {
			rec.decision = KM_D_FAILED;
		}
		answer_void(km, k, &f, d.vaddr);
	} else {
		enum km_import how = KM_IMPORT_NEW;

		if (!streak_victim(km, kp))
			km->evict_streak = 0;
		km_charge(km, KM_C_KMAP);
		r = &km_part(km, k->task, slot)->r;
		/* In-use kernel memory is out of the kpager's reach. */
		km_pt_hide(km, kt, d.vaddr);
		km->frame[r->pfn].lender = kid;
		km->frame[r->pfn].lender_vpn = d.vaddr >> KM_PAGE_SHIFT;
		k->st.mapped++;
		k->st.lent++;
		km->lent++;
		km->loans++;
		rec.pfn = r->pfn;
		*pfn = r->pfn;
		if (restore)
			how = d.discarded ||
			      km_pages_lost(&km->task[kp.task].page[kp.type],
			                    kp.index) ? KM_IMPORT_REBUILD :
			      KM_IMPORT_RESTORE;
		rec.decision = kpage_install(km, kp, *pfn, how);
		err = KM_OK;
	}
	km_rec_end(km, &rec, outer);
	return err;
}

/* Takes a frame from the in-kernel pool for `kp`, entered as `how` says,
 * leaving at least `keep` frames (KM_KPOOL_RESERVE for a page a kpager
 * lends, 0 for the kernel's own tasks'). */
static int pool_alloc(struct km *km, struct km_kpage kp, enum km_import how,
                      uint32_t keep, km_pfn_t *pfn)
{
	struct km_fault_rec rec, *outer;
	int err = KM_OK;

	/* (Out of hierarchy order, what it relies on comes first.) */
	if ((err = deps_ready(km, kp)) != KM_OK)
		return err;
	outer = km_rec_begin(km, &rec, KM_FK_KPOOL, kp.task);
	rec.kpage = kp;
	km_charge(km, KM_C_KPOOL_ALLOC);
	if (km->kpool_len <= keep) {
		km->denied++;
		rec.decision = KM_D_DENIED;
		err = KM_ENOMEM;
	} else {
		*pfn = km->kpool[--km->kpool_len];
		km->frame[*pfn].kuse = KM_KU_NONE;
		km->frame[*pfn].lender = KM_ROOT_KPAGER;
		rec.pfn = *pfn;
		rec.decision = kpage_install(km, kp, *pfn, how);
		pool_nt_note(km, kp);
	}
	km_rec_end(km, &rec, outer);
	return err;
}

/*
 * Takes back the pool's frames that hold node tables of kpagers' clients:
 * salvaged (their kpager would not give them back, and an operation,
 * perhaps another subsystem's, needed them) or moved there when their
 * lender's mapping went.  Left there, a kpager that keeps refusing would
 * drain the pool that kpagers' own tasks and repairs draw on, and stall
 * every subsystem's operations.  A node table is redundant given the
 * mapping database: it goes out with its form discarded, as a kpager's
 * revocation with discard would send it.  The next operation that needs
 * it asks the client's kpager, which has no form and lends a fresh frame,
 * and the kernel rebuilds it there.
 *
 * Between operations only (km_settle): a walk relies on the pages it has
 * brought in staying.  A node table awaiting repair, or held by one,
 * stays until the next time.
 */
void km_pool_reclaim(struct km *km)
{
	uint32_t left = 0;

	for (km_pfn_t pfn = km->cfg.frames - km->cfg.kpool_frames;
	     pfn < km->cfg.frames; pfn++) {
		struct km_frame *f = &km->frame[pfn];
		struct km_kpage kp = { f->ktask, (enum km_ktype)f->ktype,
		                       f->kindex };
		struct km_fault_rec rec, *outer;

		if (!f->pool || f->kuse != KM_KU_KERNEL ||
		    kp.type != KM_KT_NT || !pool_lent_to_client(km, kp))
			continue;
		if ((f->flags & KM_FR_HELD) ||
		    km_pages_lost(&km->task[kp.task].page[KM_KT_NT],
		                  kp.index) != 0) {
			left++;
			continue;
		}
		outer = km_rec_begin(km, &rec, KM_FK_REVOKE, kp.task);
		rec.thread = KM_NO_THREAD;      /* (no operation under way) */
		rec.parent = 0;
		rec.kpage = kp;
		rec.pfn = pfn;
		if (page_out(km, kp, pfn, true) == KM_OK) {
			km_charge(km, KM_C_KPOOL_FREE);
			f->kuse = KM_KU_POOL;
			km->kpool[km->kpool_len++] = pfn;
			rec.decision = KM_D_DISCARDED;
		} else {
			left++;         /* the host refused memory: next time */
		}
		km_rec_end(km, &rec, outer);
	}
	km->kpool_nts = left;
}

/*
 * A node table or MDB page whose kpager will not give it back: the kernel
 * enters it from its own pool, empty (lost), and tells the kpager the form
 * it may still hold will not be asked for again.  Not from the pool's
 * reserve, which is its own tasks' (KM_KPOOL_RESERVE).
 */
static int salvage(struct km *km, struct km_kpage kp, km_pfn_t *pfn)
{
	km_kpager_t kid = km->task[kp.task].kpager;
	int err = pool_alloc(km, kp, KM_IMPORT_REBUILD, KM_KPOOL_RESERVE, pfn);

	if (err == KM_OK && km->kpager[kid].ops->forgotten != NULL) {
		km->in_callback++;
		km->kpager[kid].ops->forgotten(km->kpager[kid].state, kp);
		km->in_callback--;
	}
	return err;
}

/* ---------------------------------------------------------------------- */
/* The operation protocol.                                                  */

void km_op_begin(struct km *km)
{
	km->nneed = 0;
	km->op_caller = KM_NONE;
	km->op_losses = km->losses;
	km->op_meets_lost = false;
}

/*
 * Must the operation wait for the repair of lost pages before it changes
 * the mapping database?  If a page was lost since it began: its walk may
 * have read the page before it was entered vacant.  Or if it takes parts
 * from a task with lost pages: a lost MDB page reads as free parts.  Lost
 * pages it crosses make its walk start over (km_bring).  Any other loss,
 * whose repair found no frame yet, is no concern of its: another
 * subsystem's kpager may keep it from ever finishing.
 */
static bool op_waits_for_repair(const struct km *km)
{
	return km->losses != km->op_losses || km->op_meets_lost;
}

static int need_one(struct km *km, km_task_t task, enum km_ktype type,
                    uint32_t index)
{
	struct km_kpage kp = { task, type, index };
	km_pfn_t pfn = km_kpage_pfn(km, kp);

	if (pfn != KM_NO_PFN) {
		km_frame_used(km, pfn);
		return KM_OK;
	}
	for (uint32_t i = 0; i < km->nneed; i++)
		if (km->need[i].kp.task == task && km->need[i].kp.type == type &&
		    km->need[i].kp.index == index)
			return KM_OK;
	if (km->nneed == km->need_cap) {
		uint32_t cap = km->need_cap ? km->need_cap * 2 : 16;
		struct km_need *n = realloc(km->need, cap * sizeof *n);

		if (n == NULL)
			return KM_EIO;
		km->need = n;
		km->need_cap = cap;
	}
	km->need[km->nneed].kp = kp;
	km->need[km->nneed].pfn = KM_NO_PFN;
	km->need[km->nneed].restore = km_kpage_is_out(km, kp);
	km->nneed++;
	return KM_OK;
}

/*
 * Adds a page the operation needs, unless it is present or listed, with
 * the pages its content depends on: a page table is entered into its
 * directory, a node table into the node directory, a UTCB page into the
 * UTCB area's page table.  (Hierarchy order, enum km_ktype, puts those
 * first.)
 */
int km_op_need(struct km *km, km_task_t task, enum km_ktype type,
               uint32_t index)
{
	int err = need_one(km, task, type, index);

	if (err == KM_OK && type == KM_KT_PT)
		err = need_one(km, task, KM_KT_PD, 0);
	if (err == KM_OK && type == KM_KT_NT &&
	    km_kpage_pfn(km, (struct km_kpage){ task, type, index }) == KM_NO_PFN)
		err = need_one(km, task, KM_KT_ND, 0);
	if (err == KM_OK && type == KM_KT_UTCB) {
		err = km_op_need(km, task, KM_KT_PT, KM_UTCB_PDE);
		if (err == KM_OK)
			err = km_op_need(km, task, KM_KT_NT, KM_UTCB_PDE);
	}
	return err;
}

/* Hierarchy order: by type first (enum km_ktype is that order), then by
 * task and index so that the order is deterministic. */
static bool need_before(const struct km_kpage *x, const struct km_kpage *y)
{
	if (x->type != y->type)
		return x->type < y->type;
	if (x->task != y->task)
		return x->task < y->task;
	return x->index < y->index;
}

/* Sorts the operation's list into hierarchy order.  It holds a few
 * pages, each once (need_one): an insertion sort, without qsort's call
 * per comparison, which a fault paid several times over. */
static void need_sort(struct km *km)
{
	for (uint32_t i = 1; i < km->nneed; i++) {
		struct km_need x = km->need[i];
		uint32_t j = i;

		for (; j > 0 && need_before(&x.kp, &km->need[j - 1].kp); j--)
			km->need[j] = km->need[j - 1];
		km->need[j] = x;
	}
}

/* Gives back, in reverse order, every new page this operation obtained.
 * Pages it brought back from revocation stay: their content is the same
 * as before, and sending them out again behind their kpager's back would
 * leave its bookkeeping wrong. */
void km_op_rollback(struct km *km)
{
	for (uint32_t i = km->nneed; i-- > 0;) {
		if (km->need[i].pfn != KM_NO_PFN && !km->need[i].restore)
			km_kpage_free(km, km->need[i].kp);
		km->need[i].pfn = KM_NO_PFN;
	}
	km->nneed = 0;
}

/*
 * Obtains every listed page in hierarchy order: new pages from the pool or
 * the task's kpager, revoked pages back from their kpager.  Returns KM_OK
 * with all of them present, or the first refusal's error with all of them
 * given back.
 */
/* Obtains listed page i (unless obtained already, as another's
 * dependency). */
static int need_acquire(struct km *km, uint32_t i)
{
	struct km_kpage kp = km->need[i].kp;
	km_kpager_t kid = km->task[kp.task].kpager;
	km_pfn_t pfn = KM_NO_PFN;
	int err;

	if (km->need[i].pfn != KM_NO_PFN)
		return KM_OK;
	/* Only kpagers revoke, so a revoked page goes back to one.  (A node
	 * table or MDB page it will not give back is entered empty from the
	 * pool: see km_bring.) */
	if (km->need[i].restore) {
		uint64_t named = km->victim.named;

		err = kernel_fault(km, kid, kp, true, &pfn);
		if ((err == KM_EDENIED || err == KM_EKPAGER) &&
		    km->victim.named == named &&
		    (kp.type == KM_KT_NT || kp.type == KM_KT_MDB))
			err = salvage(km, kp, &pfn);
	} else if (km->cfg.kmem == KM_KMEM_POOL || kid == KM_ROOT_KPAGER) {
		err = pool_alloc(km, kp, KM_IMPORT_NEW, 0, &pfn);
	} else {
		err = kernel_fault(km, kid, kp, false, &pfn);
	}
	if (err == KM_OK)
		km->need[i].pfn = pfn;
	return err;
}

/* The pages whose presence entering `kp` relies on: a page table is
 * entered into its directory, a UTCB page into the UTCB area's tables. */
static uint32_t deps_of(struct km_kpage kp, struct km_kpage dep[2])
{
	switch (kp.type) {
	case KM_KT_PT:
		dep[0] = (struct km_kpage){ kp.task, KM_KT_PD, 0 };
		return 1;
	case KM_KT_UTCB:
		dep[0] = (struct km_kpage){ kp.task, KM_KT_PT, KM_UTCB_PDE };
		dep[1] = (struct km_kpage){ kp.task, KM_KT_NT, KM_UTCB_PDE };
		return 2;
	default:
		return 0;
	}
}

/*
 * Makes sure the pages `kp` relies on are in before it is entered.  In
 * hierarchy order they always are; in any other order the kernel must
 * obtain them now, nested, while the kpager that answered for `kp` waits
 * for its answer to be carried out: the deadlock the ordering prevents.
 */
static int deps_ready(struct km *km, struct km_kpage kp)
{
	struct km_kpage dep[2];
	uint32_t n = deps_of(kp, dep);
	int err;

	for (uint32_t d = 0; d < n; d++) {
		if (km_kpage_pfn(km, dep[d]) != KM_NO_PFN)
			continue;
		for (uint32_t i = 0; i < km->nneed; i++) {
			if (km->need[i].kp.task != dep[d].task ||
			    km->need[i].kp.type != dep[d].type ||
			    km->need[i].kp.index != dep[d].index)
				continue;
			if ((err = need_acquire(km, i)) != KM_OK)
				return err;
		}
	}
	return KM_OK;
}

/* Applies a one-shot order set by km_set_request_order. */
static void apply_order(struct km *km)
{
	struct km_need tmp[8];

	if (!km->cfg.unordered || km->norder == 0 || km->norder != km->nneed)
		return;
	for (uint32_t i = 0; i < km->nneed; i++)
		tmp[i] = km->need[km->order[i]];
	memcpy(km->need, tmp, km->nneed * sizeof tmp[0]);
	km->norder = 0;
}

int km_set_request_order(struct km *km, const uint8_t *perm, uint32_t n)
{
	uint8_t seen[8] = { 0 };

	if (n > 8)
		return KM_EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (perm[i] >= n || seen[perm[i]]++)
			return KM_EINVAL;
		km->order[i] = perm[i];
	}
	km->norder = n;
	return KM_OK;
}

void km_set_fault_ordering(struct km *km, bool ordered)
{
	km->cfg.unordered = !ordered;
}

int km_op_acquire(struct km *km)
{
	/* Hierarchy order, unless switched off (then as listed). */
	if (!km->cfg.unordered)
		need_sort(km);
	uint64_t named = km->victim.named;

	apply_order(km);
	for (uint32_t i = 0; i < km->nneed; i++) {
		int err = need_acquire(km, i);

		if (err != KM_OK) {
			km_op_rollback(km);
			/* A kpager, maybe one asked on the way, named a victim,
			 * or a page was lost on the way (a kpager's own, say):
			 * the operation starts over once that is dealt with. */
			return km->victim.named != named ||
			       op_waits_for_repair(km) ? KM_ERETRY : err;
		}
	}
	/* A lost node table or MDB page leaves references to undo before
	 * the operation may rely on the mapping database: start over. */
	if (op_waits_for_repair(km)) {
		km_op_rollback(km);
		return KM_ERETRY;
	}
	km->nneed = 0;
	return KM_OK;
}

/*
 * Makes a revoked node table or MDB page present again, outside the
 * operation's list: for walks that find out only as they go which pages
 * they cross.  Restored pages stay, whatever the operation then does.
 * A form that is refused or was discarded leaves the page lost (km->nlost);
 * the caller starts over after km_repair.  (km_bring, in internal.h, deals
 * with a page that is in; this function with the rest.)
 */
int km_bring_out(struct km *km, struct km_kpage kp)
{
	uint64_t named, losses;
	const km_pfn_t *slot = kpage_slot(km, kp);
	km_pfn_t pfn;
	int err;

	KM_ASSERT(kp.type == KM_KT_NT || kp.type == KM_KT_MDB);
	if (slot == NULL || *slot != KM_OUT_PFN) {
		if (slot != NULL && km_present(*slot))
			km_frame_used(km, *slot);
		return KM_OK;
	}
	named = km->victim.named;
	losses = km->losses;
	err = kernel_fault(km, km->task[kp.task].kpager, kp, true, &pfn);
	/* A victim to revoke first, or a page lost on the way (the kpager's
	 * own, maybe): the caller deals with it and starts over. */
	if (err != KM_OK && (km->victim.named != named || km->losses != losses))
		return KM_ERETRY;
	/* A kpager that will not give the page back loses what it held,
	 * rather than block whoever needs it (another subsystem, perhaps,
	 * unmapping what it mapped to this kpager's client): the kernel
	 * enters it from its own pool, empty. */
	if (err == KM_EDENIED || err == KM_EKPAGER)
		err = salvage(km, kp, &pfn);
	if (err == KM_OK && km->losses != losses)
		err = KM_ERETRY;
	return err;
}

/* Marks a node table or MDB page, just entered vacant, as lost: what its
 * form held must be undone (km_repair) before the next walk. */
void km_lost_note(struct km *km, struct km_kpage kp)
{
	/* Only a page that was out can be lost: its array has the
	 * metadata. */
	KM_ASSERT(km->task[kp.task].page[kp.type].lost != NULL);
	km->task[kp.task].page[kp.type].lost[kp.index] = KM_LOST_PENDING;
	km->task[kp.task].lost_pending++;
	km->nlost++;
	km->losses++;
}

/* ---------------------------------------------------------------------- */
/* kpagers.                                                                  */

int km_kpager_create(struct km *km, const struct kp_ops *ops,
                     km_task_t task, const char *args, km_kpager_t *id,
                     char *why, size_t why_len)
{
	struct km_kpager *k;
	void *state = NULL;
	uint32_t n;
	int err;

	/* Is there a policy with the calls the kernel makes? */
	if (ops == NULL || ops->init == NULL || ops->fault == NULL) {
		snprintf(why, why_len, "kpager policy lacks init or fault");
		return KM_EINVAL;
	}
	/* Does the kpager's task exist, and is it not sigma0? */
	if (task == KM_SIGMA0) {
		snprintf(why, why_len, "sigma0 cannot run a kpager");
		return KM_EINVAL;
	}
	if (km_task_get(km, task) == NULL) {
		snprintf(why, why_len, "no task %u", task);
		return KM_ENOTASK;
	}
	for (n = 1; n < km->nkpagers && km->kpager[n].live; n++)
		;
	if (n == km->kpager_cap) {
		uint32_t cap = km->kpager_cap * 2;
		struct km_kpager *nk = realloc(km->kpager, cap * sizeof *nk);

		if (nk == NULL)
			return KM_EIO;
		memset(nk + km->kpager_cap, 0,
		       (cap - km->kpager_cap) * sizeof *nk);
		km->kpager = nk;
		km->kpager_cap = cap;
	}
	err = ops->init(km, task, args ? args : "", &state, why, why_len);
	if (err != KM_OK)
		return err;
	k = &km->kpager[n];
	memset(k, 0, sizeof *k);
	k->live = true;
	k->ops = ops;
	k->state = state;
	k->task = task;
	km->task[task].kpagers++;
	if (n == km->nkpagers)
		km->nkpagers++;
	*id = n;
	return KM_OK;
}

int km_kpager_stats(const struct km *km, km_kpager_t id,
                    struct km_kpager_stats *out)
{
	if (id == KM_ROOT_KPAGER || id >= km->nkpagers || !km->kpager[id].live)
		return KM_ENOKPAGER;
	*out = km->kpager[id].st;
	return KM_OK;
}
