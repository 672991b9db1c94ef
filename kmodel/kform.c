/*
 * External forms of kernel pages: what a page becomes when its kpager
 * revokes it, and how the kernel turns a form back into a kernel page.
 *
 *   type      form                       on return
 *   PD, ND    vacant (all zero)          rebuilt: PDEs of present page
 *                                        tables; live counts of node tables
 *   PT        vacant                     rebuilt: UTCB entries now, every
 *                                        mapping's PTE on its next touch
 *   NT        localised: its entries     accepted if it translates back to
 *             are the client's own       the page exported (keyed digest
 *             mapping slots already      kept pinned); else lost: rebuilt
 *                                        from the mapping database
 *   MDB       localised: the parts with  translated back with the pinned
 *             references to the other    receipts, accepted as for node
 *             party's part and frames    tables; else lost: its mappings
 *             left out (kept pinned as   are undone, as unmap would
 *             receipts)
 *   UTCB      the page as it is          taken as it is
 *   KTCB      per thread a continuation  MAC and fields checked; a refused
 *             sealed with a MAC          one stops its thread
 *
 * A page whose form was discarded comes back as the kernel can make it:
 * redundant pages rebuilt, UTCBs zeroed, KTCBs as stopped threads, node
 * tables rebuilt from the mapping database, and an MDB page's mappings
 * undone (repair.c), which lands on that kpager's clients only: every
 * mapping with a part in the page goes, with what was derived from it.
 *
 * Why node tables and MDB pages take back only what was exported: while
 * such a page is out, no map, grant or unmap can touch the mappings in it
 * (each one brings it back first), so the one state the client could
 * have built is the one the kernel exported.  Anything else is refused.
 */
#include "internal.h"

#include <sodium.h>

#define KM_UTCB_PER_PAGE (KM_PAGE_SIZE / KM_UTCB_SIZE)
#define KM_KTCB_PER_PAGE (KM_PAGE_SIZE / KM_KTCB_SIZE)
#define KM_CONT_MAGIC 0x636f6e74u       /* "cont" */
#define KM_SAFE_POINTS 4u               /* safe points a thread can be at */

/*
 * A continuation: the digest of a thread's kernel state at a safe point,
 * as exported in its 1 KiB KTCB slot.  Everything in it is the thread's
 * own (registers, message registers, its own scheduling parameters); the
 * MAC binds it to the thread, the page, the slot and the export
 * generation, so a kpager can read it but neither forge, move nor replay
 * it.
 */
struct km_cont {
	uint32_t magic;
	uint32_t thread;
	uint32_t state;
	uint32_t safe_point;
	uint32_t regs[10];
	uint32_t ipc_partner;
	uint32_t timeslice;
	uint32_t priority;
	uint32_t pager;
	uint32_t mr[64];
	uint8_t mac[crypto_auth_BYTES];
};
_Static_assert(sizeof(struct km_cont) <= KM_KTCB_SIZE, "continuation fits");

/* What the MAC covers besides the continuation: where it belongs. */
struct km_cont_binding {
	uint32_t task, index, slot, pad;
	uint64_t gen;
};

bool km_ktype_is_revocable(enum km_ktype type)
{
	return (unsigned)type < KM_KT_COUNT;
}

/* The keyed digest of a node table or MDB page as the kernel holds it,
 * bound to the page and its export generation. */
static void page_digest(const struct km *km, struct km_kpage kp, uint64_t gen,
                        const void *page, uint8_t out[KM_DIGEST_BYTES])
{
	crypto_generichash_state st;
	uint64_t b[3] = { kp.task, ((uint64_t)kp.type << 32) | kp.index, gen };

	crypto_generichash_init(&st, km->key, sizeof km->key, KM_DIGEST_BYTES);
	crypto_generichash_update(&st, (const void *)b, sizeof b);
	crypto_generichash_update(&st, page, KM_PAGE_SIZE);
	crypto_generichash_final(&st, out, KM_DIGEST_BYTES);
}

void km_outmeta_free(struct km_pages *p, uint32_t index)
{
	if (p->meta == NULL || index >= p->cap)
		return;
	free(p->meta[index]);
	p->meta[index] = NULL;
}

/* A new, empty MDB page: every part on the free list. */
void km_mdb_page_init(struct km *km, struct km_kpage kp, km_pfn_t pfn)
{
	struct km_mdb_page *mp = (struct km_mdb_page *)(void *)km_fp(km, pfn);

	memset(mp, 0, KM_PAGE_SIZE);
	mp->magic = KM_MDB_MAGIC;
	mp->task = kp.task;
	mp->index = kp.index;
	for (uint32_t i = 0; i < KM_MDB_PARTS; i++)
		mp->part[i].f.next_free = i + 1 < KM_MDB_PARTS ? i + 1 : 0xffffu;
	km->task[kp.task].mdb_free += KM_MDB_PARTS;
}

/*
 * Exports a node table or MDB page in place.  What stays pinned (digest,
 * count, receipts) is allocated first, so that nothing changes if the host
 * refuses the memory.
 */
static int nt_mdb_export(struct km *km, struct km_kpage kp, km_pfn_t pfn)
{
	struct km_task *tk = &km->task[kp.task];
	struct km_pages *arr = &tk->page[kp.type];
	struct km_outmeta *m;
	uint32_t used = 0;

	if (kp.type == KM_KT_MDB)
		used = ((const struct km_mdb_page *)(const void *)
		        km_fp(km, pfn))->used;
	m = malloc(sizeof *m + used * sizeof m->rc[0]);
	if (m == NULL)
		return KM_EIO;
	page_digest(km, kp, km_pages_gen(arr, kp.index), km_fp(km, pfn),
	            m->digest);
	km_charge(km, KM_C_DIGEST);
	m->nrc = 0;
	m->count = used;
	if (kp.type == KM_KT_NT) {
		const uint32_t *nt = km_words(km, pfn);

		for (uint32_t i = 0; i < 1024; i++)
			m->count += nt[i] != KM_NTE_NONE;
	} else {
		struct km_mdb_page *mp = (void *)km_fp(km, pfn);

		/* Keep each part's references out of the client's reach,
		 * and take them out of the form. */
		for (uint32_t i = 0; i < KM_MDB_PARTS; i++) {
			union km_part *p = &mp->part[i];
			struct km_receipt *r = &m->rc[m->nrc];

			if (p->f.tag == KM_PART_FREE)
				continue;
			r->idx = (uint8_t)i;
			r->tag = p->f.tag;
			r->flags = 0;
			if (p->f.tag == KM_PART_RECV) {
				r->task = p->r.send_task;
				r->slot = p->r.send_slot;
				r->pfn = p->r.pfn;
				r->vpn = p->r.vpn;
				p->r.send_slot = 0;
				p->r.pfn = 0;
			} else {
				r->task = p->s.recv_task;
				r->slot = p->s.recv_slot;
				r->pfn = 0;
				r->vpn = 0;
				p->s.recv_slot = 0;
			}
			m->nrc++;
			km_charge(km, KM_C_LOCALISE);
		}
		KM_ASSERT(m->nrc == used);
		tk->mdb_free -= KM_MDB_PARTS - used;
	}
	/* (revoke_page gave the array its metadata before the export.) */
	KM_ASSERT(arr->meta != NULL && arr->meta[kp.index] == NULL);
	arr->meta[kp.index] = m;
	return KM_OK;
}

/*
 * Imports a node table or MDB page from the form in its frame: an MDB page
 * gets its receipts back first; then the page must be, bit for bit, the
 * page the kernel exported.  Returns the decision; a lost page is entered
 * vacant and noted for km_repair, its pinned part kept for that.
 */
static enum km_decision nt_mdb_import(struct km *km, struct km_kpage kp,
                                      km_pfn_t pfn, bool discarded)
{
	struct km_task *tk = &km->task[kp.task];
	struct km_pages *arr = &tk->page[kp.type];
	struct km_outmeta *m = km_pages_meta(arr, kp.index);
	uint8_t d[KM_DIGEST_BYTES];

	KM_ASSERT(m != NULL);
	if (!discarded) {
		if (kp.type == KM_KT_MDB) {
			struct km_mdb_page *mp = (void *)km_fp(km, pfn);

			for (uint32_t i = 0; i < m->nrc; i++) {
				const struct km_receipt *r = &m->rc[i];
				union km_part *p = &mp->part[r->idx];

				if (r->tag == KM_PART_RECV) {
					p->r.send_slot = r->slot;
					p->r.pfn = r->pfn;
				} else {
					p->s.recv_slot = r->slot;
				}
				km_charge(km, KM_C_LOCALISE);
			}
		}
		km_charge(km, KM_C_DIGEST);
		page_digest(km, kp, km_pages_gen(arr, kp.index),
		            km_fp(km, pfn), d);
		if (sodium_memcmp(d, m->digest, sizeof d) == 0) {
			if (kp.type == KM_KT_MDB)
				tk->mdb_free += KM_MDB_PARTS - m->count;
			km_outmeta_free(arr, kp.index);
			return KM_D_RESTORED;
		}
	}
	/* Lost: enter the page empty; km_repair undoes what it held. */
	if (kp.type == KM_KT_MDB)
		km_mdb_page_init(km, kp, pfn);
	else
		memset(km_fp(km, pfn), 0, KM_PAGE_SIZE);
	km_lost_note(km, kp);
	return discarded ? KM_D_LOST : KM_D_REJECTED;
}

const char *km_stop_reason_name(enum km_stop_reason r)
{
	static const char *const n[] = { "none", "continuation forged",
	                                 "continuation invalid",
	                                 "continuation discarded" };

	return (unsigned)r < 4 ? n[r] : "?";
}

static void cont_mac(const struct km *km, const struct km_cont *c,
                     struct km_cont_binding b, uint8_t mac[crypto_auth_BYTES])
{
	crypto_auth_hmacsha512256_state st;

	crypto_auth_hmacsha512256_init(&st, km->key, sizeof km->key);
	crypto_auth_hmacsha512256_update(&st, (const void *)&b, sizeof b);
	crypto_auth_hmacsha512256_update(&st, (const void *)c,
	                                 offsetof(struct km_cont, mac));
	crypto_auth_hmacsha512256_final(&st, mac);
}

static struct km_ktcb *ktcb_at(struct km *km, km_pfn_t pfn, uint32_t i)
{
	return (struct km_ktcb *)(void *)(km_fp(km, pfn) + i * KM_KTCB_SIZE);
}

/* A fresh KTCB for a thread the kernel has stopped. */
static void ktcb_stopped(struct km *km, km_pfn_t pfn, uint32_t i,
                         km_thread_t th, enum km_stop_reason why)
{
	struct km_ktcb *k = ktcb_at(km, pfn, i);

	memset(k, 0, sizeof *k);
	k->magic = KM_KTCB_MAGIC;
	k->thread = th;
	k->state = KM_TS_STOPPED;
	k->pager = km->thread[th].pager;
	km->thread[th].state = KM_TS_STOPPED;
	km->thread[th].stop_reason = (uint8_t)why;
}

/* Exports a KTCB page in place: one continuation per live slot. */
static void ktcb_export(struct km *km, struct km_kpage kp, km_pfn_t pfn)
{
	struct km_task *tk = &km->task[kp.task];
	struct km_cont c[KM_KTCB_PER_PAGE];
	bool live[KM_KTCB_PER_PAGE];

	for (uint32_t i = 0; i < KM_KTCB_PER_PAGE; i++) {
		uint32_t slot = kp.index * KM_KTCB_PER_PAGE + i;
		const struct km_ktcb *k = ktcb_at(km, pfn, i);
		struct km_cont_binding b = { kp.task, kp.index, i, 0,
		                             km_pages_gen(&tk->page[KM_KT_KTCB],
		                                          kp.index) };

		live[i] = slot < tk->ktcb_cap && tk->ktcb_slot[slot] != 0;
		if (!live[i])
			continue;
		memset(&c[i], 0, sizeof c[i]);
		c[i].magic = KM_CONT_MAGIC;
		c[i].thread = k->thread;
		c[i].state = k->state;
		c[i].safe_point = k->safe_point;
		memcpy(c[i].regs, k->regs, sizeof c[i].regs);
		c[i].ipc_partner = k->ipc_partner;
		c[i].timeslice = k->timeslice;
		c[i].priority = k->priority;
		c[i].pager = k->pager;
		memcpy(c[i].mr, k->mr, sizeof c[i].mr);
		cont_mac(km, &c[i], b, c[i].mac);
		km_charge(km, KM_C_SEAL);
	}
	memset(km_fp(km, pfn), 0, KM_PAGE_SIZE);
	for (uint32_t i = 0; i < KM_KTCB_PER_PAGE; i++)
		if (live[i])
			memcpy(km_fp(km, pfn) + i * KM_KTCB_SIZE, &c[i],
			       sizeof c[i]);
}

/*
 * Imports a KTCB page from its form: each live slot's continuation must
 * carry a valid MAC for this thread, page, slot and generation, and fields
 * a kernel could have written; otherwise that thread is stopped.  Returns
 * how many threads were stopped.
 */
static uint32_t ktcb_import(struct km *km, struct km_kpage kp, km_pfn_t pfn,
                            bool lost)
{
	struct km_task *tk = &km->task[kp.task];
	struct km_cont c[KM_KTCB_PER_PAGE];
	uint32_t stopped = 0;

	/* Each continuation sits at the start of its thread's slot. */
	for (uint32_t i = 0; i < KM_KTCB_PER_PAGE; i++)
		memcpy(&c[i], km_fp(km, pfn) + i * KM_KTCB_SIZE, sizeof c[i]);
	memset(km_fp(km, pfn), 0, KM_PAGE_SIZE);
	for (uint32_t i = 0; i < KM_KTCB_PER_PAGE; i++) {
		uint32_t slot = kp.index * KM_KTCB_PER_PAGE + i;
		km_thread_t th = slot < tk->ktcb_cap ? tk->ktcb_slot[slot] : 0;
		struct km_cont_binding b = { kp.task, kp.index, i, 0,
		                             km_pages_gen(&tk->page[KM_KT_KTCB],
		                                          kp.index) };
		uint8_t mac[crypto_auth_BYTES];
		struct km_ktcb *k;

		if (th == 0)
			continue;
		if (lost) {
			ktcb_stopped(km, pfn, i, th, KM_STOP_DISCARDED);
			stopped++;
			continue;
		}
		/* Did the kernel seal this, for this slot, this time? */
		km_charge(km, KM_C_SEAL);
		cont_mac(km, &c[i], b, mac);
		if (sodium_memcmp(mac, c[i].mac, sizeof mac) != 0) {
			ktcb_stopped(km, pfn, i, th, KM_STOP_FORGED);
			stopped++;
			continue;
		}
		/* Are its fields still ones the kernel could have written? */
		km_charge(km, KM_C_VALIDATE);
		if (c[i].magic != KM_CONT_MAGIC || c[i].thread != th ||
		    (c[i].state != KM_TS_READY && c[i].state != KM_TS_STOPPED) ||
		    c[i].safe_point >= KM_SAFE_POINTS ||
		    c[i].pager != km->thread[th].pager ||
		    c[i].priority > 255) {
			ktcb_stopped(km, pfn, i, th, KM_STOP_INVALID);
			stopped++;
			continue;
		}
		k = ktcb_at(km, pfn, i);
		k->magic = KM_KTCB_MAGIC;
		k->thread = th;
		k->state = c[i].state;
		k->safe_point = c[i].safe_point;
		memcpy(k->regs, c[i].regs, sizeof k->regs);
		/* An IPC partner that died meanwhile is forgotten, not trusted. */
		k->ipc_partner = c[i].ipc_partner < km->cfg.max_threads &&
		                 km->thread[c[i].ipc_partner].live ?
		                 c[i].ipc_partner : 0;
		k->timeslice = c[i].timeslice;
		k->priority = c[i].priority;
		k->pager = c[i].pager;
		memcpy(k->mr, c[i].mr, sizeof k->mr);
	}
	return stopped;
}

/*
 * Turns a present kernel page into its external form, in place, and takes
 * it out of the task's tables.  With `discard` the frame is left zeroed:
 * the kpager keeps nothing.
 */
int km_kform_export(struct km *km, struct km_kpage kp, km_pfn_t pfn,
                    bool discard)
{
	struct km_task *tk = &km->task[kp.task];
	int err;

	KM_ASSERT(km_ktype_is_revocable(kp.type));
	switch (kp.type) {
	case KM_KT_NT:
	case KM_KT_MDB:
		if ((err = nt_mdb_export(km, kp, pfn)) != KM_OK)
			return err;
		break;
	case KM_KT_PT:
		/* The mappings stay in the mapping database and the node
		 * table; only their cache in the MMU's format goes. */
		if (km_present(KM_PD(tk)))
			km_words(km, KM_PD(tk))[kp.index] = 0;
		tk->pt_missing[kp.index] = 0;
		memset(km_fp(km, pfn), 0, KM_PAGE_SIZE);
		km_pte_notify(km, tk, kp.index << 22, 1024, KM_PTE_REMOVED);
		break;
	case KM_KT_PD:
		memset(km_fp(km, pfn), 0, KM_PAGE_SIZE);
		km_pte_notify(km, tk, 0, KM_USER_PDES * 1024, KM_PTE_REMOVED);
		break;
	case KM_KT_ND:
		memset(km_fp(km, pfn), 0, KM_PAGE_SIZE);
		break;
	case KM_KT_UTCB: {
		uint32_t *pte = km_pte_slot(km, tk, KM_UTCB_AREA +
		                            kp.index * KM_PAGE_SIZE);

		/* The node table keeps its UTCB mark; the PTE goes. */
		if (pte != NULL && *pte != 0) {
			*pte = 0;
			km_pte_notify(km, tk, KM_UTCB_AREA +
			              kp.index * KM_PAGE_SIZE, 1, KM_PTE_REMOVED);
		}
		break;
	}
	case KM_KT_KTCB:
		ktcb_export(km, kp, pfn);
		break;
	default:
		break;
	}
	km_charge(km, KM_C_EXPORT);
	if (discard)
		memset(km_fp(km, pfn), 0, KM_PAGE_SIZE);
	return KM_OK;
}

/* Live entries of a node table: counted if present, as kept when out (a
 * lost one, vacant until km_repair, has none yet). */
static uint32_t nt_live(const struct km *km, const struct km_task *tk,
                        uint32_t pde)
{
	km_pfn_t nt = KM_NT(tk, pde);
	uint32_t n = 0;

	if (nt == KM_OUT_PFN)
		return km_pages_meta(&tk->page[KM_KT_NT], pde)->count;
	if (!km_present(nt))
		return 0;
	for (uint32_t i = 0; i < 1024; i++)
		n += km_words(km, nt)[i] != KM_NTE_NONE;
	return n;
}

/* Re-enters the PTEs a page table can have without asking anyone: the
 * UTCB pages of the task.  Every mapping's PTE awaits a refill.  (Only
 * the pinned tables are read: the node table may be out.) */
static void pt_rebuild(struct km *km, struct km_task *tk, uint32_t pde,
                       km_pfn_t pfn)
{
	uint32_t *pt = km_words(km, pfn);

	if (pde == KM_UTCB_PDE) {
		const struct km_pages *u = &tk->page[KM_KT_UTCB];

		for (uint32_t i = 0; i < u->len && i < 1024; i++)
			if (km_present(u->pfn[i]))
				pt[i] = km_phys(km, u->pfn[i]) | KM_PTE_P |
				        KM_PTE_RW | KM_PTE_US;
		tk->pt_missing[pde] = 0;
		return;
	}
	tk->pt_missing[pde] = (uint16_t)nt_live(km, tk, pde);
}

/* The node directory's counts, from the node tables present. */
static void nd_rebuild(struct km *km, struct km_task *tk, km_pfn_t pfn)
{
	uint32_t *nd = km_words(km, pfn);

	for (uint32_t pde = 0; pde < KM_USER_PDES; pde++)
		nd[pde] = nt_live(km, tk, pde);
}

/*
 * Gives a frame entering the kernel its content for `kp`: new (zeroed and
 * initialised), restored from the external form the frame holds, or
 * rebuilt because the form was discarded.  The pages it depends on are
 * present.  Returns the decision to record.
 */
enum km_decision km_kform_import(struct km *km, struct km_kpage kp,
                                 km_pfn_t pfn, enum km_import how)
{
	struct km_task *tk = &km->task[kp.task];
	uint32_t *w = km_words(km, pfn);
	enum km_decision d = how == KM_IMPORT_NEW ? KM_D_MAPPED : KM_D_REBUILT;

	if (how == KM_IMPORT_NEW) {
		km_charge(km, KM_C_ZERO_FRAME);
	} else {
		km_charge(km, KM_C_IMPORT);
		if (kp.type == KM_KT_NT || kp.type == KM_KT_MDB)
			return nt_mdb_import(km, kp, pfn,
			                     how == KM_IMPORT_REBUILD);
	}
	/* Everything but a restored UTCB or KTCB page starts from zero; a
	 * KTCB page is zeroed once its continuations are read. */
	if (!(how == KM_IMPORT_RESTORE &&
	      (kp.type == KM_KT_UTCB || kp.type == KM_KT_KTCB)))
		memset(w, 0, KM_PAGE_SIZE);
	km_charge(km, KM_C_KPAGE_INIT);

	switch (kp.type) {
	case KM_KT_PD:
		memcpy(&w[KM_USER_PDES], km->kernel_pde, sizeof km->kernel_pde);
		/* Tables that outlived their directory are entered again
		 * (a new task has none to look for). */
		if (tk->npages[KM_KT_PT] > 0)
			for (uint32_t i = 0; i < KM_USER_PDES; i++)
				if (km_present(KM_PT(tk, i)))
					w[i] = km_phys(km, KM_PT(tk, i)) |
					       KM_PTE_P | KM_PTE_RW | KM_PTE_US;
		km_pte_notify(km, tk, 0, KM_USER_PDES * 1024, KM_PTE_ADDED);
		break;
	case KM_KT_ND:
		if (how != KM_IMPORT_NEW)
			nd_rebuild(km, tk, pfn);
		break;
	case KM_KT_PT:
		KM_ASSERT(km_present(KM_PD(tk)));
		km_words(km, KM_PD(tk))[kp.index] =
			km_phys(km, pfn) | KM_PTE_P | KM_PTE_RW | KM_PTE_US;
		tk->pt_missing[kp.index] = 0;
		if (how != KM_IMPORT_NEW) {
			pt_rebuild(km, tk, kp.index, pfn);
			km_pte_notify(km, tk, kp.index << 22, 1024,
			              KM_PTE_ADDED);
		}
		break;
	case KM_KT_MDB:
		km_mdb_page_init(km, kp, pfn);
		km_mdb_trim_note(km, kp);
		break;
	case KM_KT_UTCB: {
		km_vaddr_t va = KM_UTCB_AREA + kp.index * KM_PAGE_SIZE;

		/* The UTCB page is user visible: the kernel maps it into the
		 * task's UTCB area itself, without a mapping node. */
		if (how == KM_IMPORT_NEW)
			km_pt_set(km, tk, va, pfn, KM_R | KM_W, KM_NTE_UTCB);
		else {
			*km_pte_slot(km, tk, va) = km_phys(km, pfn) | KM_PTE_P |
			                           KM_PTE_RW | KM_PTE_US;
			km_pte_notify(km, tk, va, 1, KM_PTE_ADDED);
		}
		if (how == KM_IMPORT_REBUILD)
			d = KM_D_LOST;
		else if (how == KM_IMPORT_RESTORE)
			d = KM_D_RESTORED;
		break;
	}
	case KM_KT_KTCB:
		if (how != KM_IMPORT_NEW) {
			uint32_t stopped = ktcb_import(km, kp, pfn,
			                               how == KM_IMPORT_REBUILD);

			d = how == KM_IMPORT_REBUILD ? KM_D_LOST :
			    stopped ? KM_D_STOPPED : KM_D_RESTORED;
		}
		break;
	default:
		break;
	}
	return d;
}
