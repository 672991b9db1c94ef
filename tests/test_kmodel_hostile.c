/*
 * A hostile kpager, as a property test.  Subsystem A's kpager revokes
 * random kernel pages of its clients between operations, keeps their
 * external forms and tampers with them: random bytes, whole random pages,
 * zeroed forms, another page's form, forms replayed from an earlier
 * export, continuations rewritten to name other subsystems' threads and
 * pagers or huge values.  It answers restores with the wrong page, claims
 * discards, or denies.  Node tables and mapping-database pages get their
 * own plausible lies: links turned into cycles, references to other
 * tasks (B's among them), huge slot numbers, entries swapped.  Meanwhile
 * A's clients keep working: touching pages, writing registers, and
 * mapping, granting and unmapping pages between each other.
 *
 * After every step: km_check holds; subsystem B (an honest FCFS kpager and
 * its clients, idle meanwhile) hashes exactly as before; every thread of A
 * either has the registers it last wrote or was stopped, with a reason.
 *
 * KPSIM_SEED=N replays a run.  KPSIM_HOSTILE_MUTATIONS=N sets how many
 * tampered forms to feed back (default 20,000; the long mode, ctest -L
 * long, runs 1,000,000).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "kmodel.h"
#include "kmtest.h"
#include "pagers.h"

#define PG KM_PAGE_SIZE
#define POOL 0x10000000u
#define NPOOL 96u
#define NHIST 8u                /* old forms kept for replays */
#define NTHREADS 6u             /* per client task of A */

static uint64_t rng_state;

static uint64_t rng(void)
{
	return kmt_rng(&rng_state);
}

static uint32_t pick(uint32_t n)
{
	return (uint32_t)(rng() % n);
}


/* ---------------------------------------------------------------------- */
/* The hostile kpager.                                                      */

enum hk_state { HK_FREE = 0, HK_LENT, HK_HELD };

struct hk {
	struct km *km;
	km_task_t task;
	enum hk_state state[NPOOL];
	uint64_t kva[NPOOL];
	/* Old forms, for replays: bytes and the page they were of. */
	uint8_t hist[NHIST][PG];
	uint64_t hist_kva[NHIST];
	uint32_t nhist;
	uint64_t restores, denials, wrong_pages, false_discards, evictions;
};

static int hk_init(struct km *km, km_task_t task, const char *args,
                   void **state, char *why, size_t why_len)
{
	struct hk *hk;

	(void)why;
	(void)why_len;
	if (sscanf(args, "ctx=%p", (void **)&hk) != 1)
		return KM_EINVAL;
	hk->km = km;
	hk->task = task;
	*state = hk;
	return km_sigma0_map(km, task, POOL, NPOOL, KM_R | KM_W);
}

static int hk_free_page(struct hk *hk)
{
	for (uint32_t i = 0; i < NPOOL; i++)
		if (hk->state[i] == HK_FREE)
			return (int)i;
	return -1;
}

static void hk_fault(void *state, const struct kp_fault *f,
                     struct kp_decision *d)
{
	struct hk *hk = state;
	int i;

	d->action = KP_DENY;
	d->discarded = false;
	if (pick(30) == 0) {    /* evict one of its pages first (or lie) */
		d->action = KP_REVOKE;
		d->vaddr = POOL + pick(NPOOL) * PG;
		d->discarded = pick(4) == 0;
		hk->evictions++;
		return;
	}
	if (f->restore) {
		uint32_t how = pick(20);

		hk->restores++;
		if (how == 0) {         /* deny: the operation fails */
			hk->denials++;
			return;
		}
		if (how == 1) {         /* another held page's form */
			for (uint32_t k = 0; k < NPOOL; k++) {
				uint32_t j = (k + pick(NPOOL)) % NPOOL;

				if (hk->state[j] == HK_HELD && hk->kva[j] != f->kva) {
					uint8_t *p;
					struct km_mapping m;
					uint32_t self = NPOOL;

					for (uint32_t s = 0; s < NPOOL; s++)
						if (hk->state[s] == HK_HELD &&
						    hk->kva[s] == f->kva)
							self = s;
					if (self == NPOOL)
						break;
					/* Copy the wrong form into the right page. */
					if (km_lookup(hk->km, hk->task, POOL + j * PG,
					              &m) != KM_OK)
						break;
					p = km_frame_ptr(hk->km, m.pfn);
					if (km_lookup(hk->km, hk->task,
					              POOL + self * PG, &m) != KM_OK)
						break;
					memcpy(km_frame_ptr(hk->km, m.pfn), p, PG);
					hk->wrong_pages++;
					break;
				}
			}
		}
		for (uint32_t k = 0; k < NPOOL; k++) {
			if (hk->state[k] == HK_HELD && hk->kva[k] == f->kva) {
				hk->state[k] = HK_LENT;
				d->action = KP_MAP;
				d->vaddr = POOL + k * PG;
				if (how == 2) {
					d->discarded = true;
					hk->false_discards++;
				}
				return;
			}
		}
		d->discarded = true;    /* never kept it: a fresh frame */
	}
	i = hk_free_page(hk);
	if (i < 0)
		return;
	hk->state[i] = HK_LENT;
	hk->kva[i] = f->kva;
	d->action = KP_MAP;
	d->vaddr = POOL + (uint32_t)i * PG;
}

static void hk_released(void *state, km_vaddr_t vaddr, struct km_kpage kp)
{
	struct hk *hk = state;

	(void)kp;
	hk->state[(vaddr - POOL) / PG] = HK_FREE;
}

static void hk_forgotten(void *state, struct km_kpage kp)
{
	struct hk *hk = state;
	uint64_t kva = km_kpage_kva(kp);

	for (uint32_t i = 0; i < NPOOL; i++)
		if (hk->state[i] == HK_HELD && hk->kva[i] == kva)
			hk->state[i] = HK_FREE;
}

/* Its answer was voided: the page it named is its own again, holding a
 * form still if the fault was a restore. */
static void hk_aborted(void *state, const struct kp_fault *f)
{
	struct hk *hk = state;

	for (uint32_t i = 0; i < NPOOL; i++)
		if (hk->state[i] == HK_LENT && hk->kva[i] == f->kva)
			hk->state[i] = f->restore ? HK_HELD : HK_FREE;
}

static void hk_revoked(void *state, km_vaddr_t vaddr, struct km_kpage kp,
                       bool discarded)
{
	struct hk *hk = state;

	(void)kp;
	hk->state[(vaddr - POOL) / PG] = discarded ? HK_FREE : HK_HELD;
}

static const struct kp_ops hk_ops = {
	.name = "hostile", .init = hk_init, .fault = hk_fault,
	.released = hk_released, .forgotten = hk_forgotten,
	.revoked = hk_revoked, .aborted = hk_aborted,
};

/* ---------------------------------------------------------------------- */
/* The world: A (hostile), B (honest, idle).                               */

struct world {
	struct km *km;
	struct hk hk;
	km_kpager_t ka, kb;
	km_task_t a[2], b[2];
	km_thread_t ath[2][NTHREADS], bth[2][2];
	uint32_t aregs[2][NTHREADS][10];        /* what each last wrote */
	uint64_t mutations, stopped_seen, maps, replaced;
	/* Node tables and MDB pages back from A's kpager, by decision. */
	uint64_t nm_restored, nm_rejected, nm_lost;
};

/* Counts what came of node tables and MDB pages brought back. */
static void hk_sink(void *ctx, const struct km_fault_rec *rec)
{
	struct world *w = ctx;

	if (rec->kind != KM_FK_KERNEL && rec->kind != KM_FK_KPOOL)
		return;
	if (rec->kpage.type != KM_KT_NT && rec->kpage.type != KM_KT_MDB)
		return;
	w->nm_restored += rec->decision == KM_D_RESTORED;
	w->nm_rejected += rec->decision == KM_D_REJECTED;
	w->nm_lost += rec->decision == KM_D_LOST;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* B's whole observable state: kernel pages in and out, mappings with
 * their frames, rights, origins and PTEs, threads and their registers. */
static uint64_t hash_b(struct world *w)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (int t = 0; t < 2; t++) {
		struct km_task_stats ts;

		assert_int_equal(km_task_stats(w->km, w->b[t], &ts), KM_OK);
		h = fnv(h, ts.pages, sizeof ts.pages);
		h = fnv(h, ts.out, sizeof ts.out);
		h = fnv(h, &ts.mappings, sizeof ts.mappings);
		h = fnv(h, &ts.threads, sizeof ts.threads);
		for (uint32_t i = 0; i < 8; i++) {
			km_vaddr_t va = 0x08048000u + i * 0x00401000u;
			struct km_mapping m;
			uint32_t pte = km_pte(w->km, w->b[t], va);

			memset(&m, 0, sizeof m);
			(void)km_lookup(w->km, w->b[t], va, &m);
			h = fnv(h, &m.pfn, sizeof m.pfn);
			h = fnv(h, &m.rights, sizeof m.rights);
			h = fnv(h, &m.from, sizeof m.from);
			h = fnv(h, &m.from_vaddr, sizeof m.from_vaddr);
			h = fnv(h, &pte, sizeof pte);
		}
		for (int i = 0; i < 2; i++) {
			uint32_t r[10];
			enum km_thread_state st;

			assert_int_equal(km_thread_regs(w->km, w->bth[t][i], r,
			                                false), KM_OK);
			assert_int_equal(km_thread_state(w->km, w->bth[t][i],
			                                 &st, NULL), KM_OK);
			h = fnv(h, r, sizeof r);
			h = fnv(h, &st, sizeof st);
		}
	}
	return h;
}

/* A used part of an MDB page's form, or -1.  Parts are 24 bytes after a
 * 16-byte header; byte 0 of a part is its tag (0 free). */
static int used_part(const uint8_t *form)
{
	uint32_t start = pick(170);

	for (uint32_t k = 0; k < 170; k++) {
		uint32_t i = (start + k) % 170;

		if (form[16 + 24 * i] != 0)
			return (int)i;
	}
	return -1;
}

/* Plausible lies in a mapping-database page: a link into a cycle (to
 * the part itself or another part), a reference to another task, a huge
 * slot number, two parts swapped, a tag flipped. */
static void tamper_mdb(struct world *w, uint8_t *form)
{
	int i = used_part(form), j = used_part(form);
	uint32_t v, field = 4 * (1 + pick(5));  /* a 32-bit field, not the tag */
	uint8_t tmp[24];

	if (i < 0)
		return;
	switch (pick(5)) {
	case 0:         /* a cycle: a link to itself or a sibling */
		v = (uint32_t)(j >= 0 && pick(2) ? j : i);
		memcpy(form + 16 + 24 * i + field, &v, 4);
		break;
	case 1:         /* another task: one of B's, or the other client */
		v = pick(2) ? w->b[pick(2)] : w->a[pick(2)];
		memcpy(form + 16 + 24 * i + (pick(2) ? 12 : 16), &v, 4);
		break;
	case 2:         /* a huge slot number */
		v = 0xffffff00u | pick(256);
		memcpy(form + 16 + 24 * i + field, &v, 4);
		break;
	case 3:         /* two parts swapped */
		if (j < 0 || j == i)
			break;
		memcpy(tmp, form + 16 + 24 * i, 24);
		memcpy(form + 16 + 24 * i, form + 16 + 24 * j, 24);
		memcpy(form + 16 + 24 * j, tmp, 24);
		break;
	default:        /* a receiver part made a sender part or freed */
		form[16 + 24 * i] = (uint8_t)pick(3);
		break;
	}
}

/* Plausible lies in a node table: an entry moved, swapped with another,
 * pointed at another slot or made a UTCB mark. */
static void tamper_nt(struct world *w, uint8_t *form)
{
	uint32_t a = pick(1024), b = pick(1024), va, vb;

	(void)w;
	memcpy(&va, form + 4 * a, 4);
	memcpy(&vb, form + 4 * b, 4);
	switch (pick(4)) {
	case 0:
		memcpy(form + 4 * a, &vb, 4);
		memcpy(form + 4 * b, &va, 4);
		break;
	case 1:
		va += 1 + pick(3);
		memcpy(form + 4 * a, &va, 4);
		break;
	case 2:
		va = 0xffffffffu;
		memcpy(form + 4 * a, &va, 4);
		break;
	default:
		memcpy(form + 4 * b, &va, 4);
		break;
	}
}

/* Tampers with the form in `form` (a page of kernel type `type`). */
static void tamper(struct world *w, uint8_t *form, enum km_ktype type,
                   uint64_t kva)
{
	struct hk *hk = &w->hk;
	uint32_t how = pick(8);

	switch (how) {
	case 0:         /* a few random bytes */
		for (uint32_t n = 1 + pick(16); n-- > 0;)
			form[pick(PG)] = (uint8_t)rng();
		break;
	case 1:         /* a whole random page */
		for (uint32_t i = 0; i < PG; i += 8) {
			uint64_t v = rng();

			memcpy(form + i, &v, 8);
		}
		break;
	case 2:         /* zeroed */
		memset(form, 0, PG);
		break;
	case 3: {       /* replay an older form (stale generation) */
		for (uint32_t i = 0; i < hk->nhist && i < NHIST; i++)
			if (hk->hist_kva[i] == kva) {
				memcpy(form, hk->hist[i], PG);
				break;
			}
		break;
	}
	case 4:         /* another page's older form */
		if (hk->nhist > 0)
			memcpy(form, hk->hist[pick(hk->nhist < NHIST ?
			                           hk->nhist : NHIST)], PG);
		break;
	case 5: {       /* plausible values: other threads, other pagers */
		uint32_t slot = pick(4) * 1024;
		uint32_t v[4] = { w->bth[pick(2)][pick(2)],
		                  w->ath[pick(2)][pick(NTHREADS)],
		                  w->b[pick(2)], 0xffffffffu };

		memcpy(form + slot + 4 * (1 + pick(3)), &v[pick(4)], 4);
		memcpy(form + slot + 4 * (14 + pick(4)), &v[pick(4)], 4);
		break;
	}
	case 6: {       /* huge values in every field of one slot */
		uint32_t slot = pick(4) * 1024;

		for (uint32_t i = 0; i < 18; i++) {
			uint32_t v = 0x80000000u | (uint32_t)rng();

			memcpy(form + slot + 4 * i, &v, 4);
		}
		break;
	}
	default:        /* honest, or lies only a node table or MDB page
	                 * can tell */
		if (type == KM_KT_MDB && pick(2))
			tamper_mdb(w, form);
		else if (type == KM_KT_NT && pick(2))
			tamper_nt(w, form);
		else
			how = 7;
		break;
	}
	w->mutations += how != 7;
}

/* Revokes one random lent page of A, keeps (or discards) its form, and
 * tampers with it. */
static void hostile_revoke(struct world *w)
{
	struct hk *hk = &w->hk;
	uint32_t start = pick(NPOOL);

	for (uint32_t k = 0; k < NPOOL; k++) {
		uint32_t i = (start + k) % NPOOL;
		struct km_kpage kp;
		struct km_mapping m;
		bool discard = pick(10) == 0;
		uint8_t *form;
		int err;

		if (hk->state[i] != HK_LENT ||
		    km_kva_decode(hk->kva[i], &kp) != KM_OK ||
		    !km_ktype_is_revocable(kp.type))
			continue;
		err = km_kpager_revoke(w->km, w->ka, POOL + i * PG, discard);
		assert_int_equal(err, KM_OK);
		hk->state[i] = discard ? HK_FREE : HK_HELD;
		if (discard)
			return;
		assert_int_equal(km_lookup(w->km, hk->task, POOL + i * PG, &m),
		                 KM_OK);
		form = km_frame_ptr(w->km, m.pfn);
		/* Keep a copy of the honest form for later replays. */
		memcpy(hk->hist[hk->nhist % NHIST], form, PG);
		hk->hist_kva[hk->nhist % NHIST] = hk->kva[i];
		hk->nhist++;
		tamper(w, form, kp.type, hk->kva[i]);
		return;
	}
}

/* Creates client t of A with its threads (registers all zero). */
/* The hostile kpager's books, for a failure message. */
static void hk_books(const struct hk *hk)
{
	uint32_t n[3] = { 0 };

	for (uint32_t i = 0; i < NPOOL; i++)
		n[hk->state[i]]++;
	print_message("hostile kpager: %u free, %u lent, %u holding forms\n",
	              n[HK_FREE], n[HK_LENT], n[HK_HELD]);
}

/* Creates client t of A with its threads (registers all zero).  The
 * hostile kpager's answers may make a creation fail: it is tried again. */
static void a_client(struct world *w, uint32_t t)
{
	int err, tries = 0;

	while ((err = km_task_create(w->km, w->ka, &w->a[t])) != KM_OK) {
		assert_true(err == KM_EKPAGER || err == KM_EDENIED);
		if (++tries == 1000)
			hk_books(&w->hk);
		assert_true(tries < 1000);
	}
	for (uint32_t i = 0; i < NTHREADS; i++) {
		while ((err = km_thread_create(w->km, w->a[t], 0,
		                               &w->ath[t][i])) != KM_OK) {
			assert_true(err == KM_EKPAGER || err == KM_EDENIED);
			if (++tries == 1000)
				hk_books(&w->hk);
			assert_true(tries < 1000);
		}
	}
	memset(w->aregs[t], 0, sizeof w->aregs[t]);
}

/* One operation by A's clients; some bring revoked pages back. */
static void a_op(struct world *w)
{
	uint32_t t = pick(2), i = pick(NTHREADS), r = pick(10);
	km_thread_t th = w->ath[t][i];
	uint32_t regs[10];
	enum km_thread_state st;
	int err;

	if (pick(500) == 0) {   /* a client dies and another takes its place */
		err = km_task_destroy(w->km, w->a[t]);
		assert_true(err == KM_OK || err == KM_ENOMEM ||
		            err == KM_EKPAGER || err == KM_EDENIED);
		if (err == KM_OK) {
			a_client(w, t);
			w->replaced++;
		}
		return;
	}

	if (r == 9) {           /* map, grant or unmap between the clients */
		static const uint32_t base[] = { 0x08048000u, 0x40000000u,
		                                 0x20000000u, 0x30000000u };
		struct km_fpage fp = { base[pick(4)] + pick(8) * PG, 12,
		                       pick(2) ? KM_RWX : KM_R };
		km_vaddr_t dst = base[pick(4)] + pick(8) * PG;
		uint32_t how = pick(4);

		if (how == 3)
			err = km_unmap(w->km, w->a[t], fp, pick(2) ?
			               KM_UNMAP_SELF : 0, NULL);
		else
			err = km_map(w->km, w->a[t], fp, w->a[pick(2)], dst,
			             how == 2 ? KM_GRANT : KM_MAP, NULL);
		assert_true(err == KM_OK || err == KM_EDENIED ||
		            err == KM_EBUSY || err == KM_ECYCLE ||
		            err == KM_ENOMEM || err == KM_EKPAGER);
		w->maps += err == KM_OK;
		return;
	}
	if (r < 5) {
		static const uint32_t base[] = { 0x08048000u, 0x40000000u,
		                                 0xbfff0000u, 0x20000000u };
		km_vaddr_t va = base[pick(4)] + pick(8) * PG;

		if (pick(4) == 0) {     /* its own UTCB */
			assert_int_equal(km_thread_utcb(w->km, th, &va), KM_OK);
		}
		err = km_touch(w->km, th, va, pick(2) ? KM_ACC_READ :
		               KM_ACC_WRITE);
		/* (A page mapped read-only by the other client refuses a
		 * write.) */
		assert_true(err == KM_OK || err == KM_EDENIED ||
		            err == KM_EACCES || err == KM_EKPAGER);
		return;
	}
	if (r < 8) {            /* write registers, remember them */
		for (int k = 0; k < 10; k++)
			regs[k] = (uint32_t)rng();
		err = km_thread_regs(w->km, th, regs, true);
		if (err == KM_OK)
			memcpy(w->aregs[t][i], regs, sizeof regs);
		else
			assert_true(err == KM_EPERM || err == KM_EDENIED ||
			            err == KM_EKPAGER);
		return;
	}
	/* Read registers: the last written, unless the thread was stopped. */
	err = km_thread_regs(w->km, th, regs, false);
	if (err == KM_EDENIED || err == KM_EKPAGER)
		return;
	assert_int_equal(err, KM_OK);
	assert_int_equal(km_thread_state(w->km, th, &st, NULL), KM_OK);
	if (st == KM_TS_READY)
		assert_memory_equal(regs, w->aregs[t][i], sizeof regs);
	else
		w->stopped_seen++;
}

static void test_kmodel_hostile_kpager(void **state)
{
	uint64_t seed = kmt_env_u64("KPSIM_SEED", (uint64_t)time(NULL));
	uint64_t target = kmt_env_u64("KPSIM_HOSTILE_MUTATIONS", 20000);
	struct km_config c = km_config_default(2048);
	static struct world w;
	char args[64], why[256];
	km_task_t kta, ktb;
	uint64_t hb, steps = 0;

	(void)state;
	print_message("kmodel hostile: seed %llu, %llu mutations "
	              "(KPSIM_SEED=%llu replays)\n", (unsigned long long)seed,
	              (unsigned long long)target, (unsigned long long)seed);
	rng_state = seed * 2654435761u + 7;
	memset(&w, 0, sizeof w);
	c.kmem = KM_KMEM_KPAGER;
	c.key_seed = seed | 1;
	assert_int_equal(km_create(&c, &w.km, why, sizeof why), KM_OK);

	/* B: honest, set up once and left idle. */
	assert_int_equal(km_task_create(w.km, KM_ROOT_KPAGER, &ktb), KM_OK);
	assert_int_equal(km_kpager_create(w.km, &kp_fcfs_ops, ktb, "frames=48",
	                                  &w.kb, why, sizeof why), KM_OK);
	for (int t = 0; t < 2; t++) {
		assert_int_equal(km_task_create(w.km, w.kb, &w.b[t]), KM_OK);
		for (int i = 0; i < 2; i++) {
			uint32_t r[10];

			assert_int_equal(km_thread_create(w.km, w.b[t], 0,
			                                  &w.bth[t][i]), KM_OK);
			for (int k = 0; k < 10; k++)
				r[k] = 0xb0000000u + (uint32_t)(t * 100 + i * 10 + k);
			assert_int_equal(km_thread_regs(w.km, w.bth[t][i], r,
			                                true), KM_OK);
		}
		for (uint32_t i = 0; i < 8; i++)
			assert_int_equal(km_touch(w.km, w.bth[t][0],
			                          0x08048000u + i * 0x00401000u,
			                          KM_ACC_WRITE), KM_OK);
	}

	/* A: the hostile kpager and two clients. */
	assert_int_equal(km_task_create(w.km, KM_ROOT_KPAGER, &kta), KM_OK);
	snprintf(args, sizeof args, "ctx=%p", (void *)&w.hk);
	assert_int_equal(km_kpager_create(w.km, &hk_ops, kta, args, &w.ka, why,
	                                  sizeof why), KM_OK);
	for (uint32_t t = 0; t < 2; t++)
		a_client(&w, t);
	hb = hash_b(&w);
	km_set_fault_sink(w.km, hk_sink, &w);

	while (w.mutations < target) {
		if (pick(3) == 0)
			hostile_revoke(&w);
		else
			a_op(&w);
		steps++;
		if (!km_check(w.km, why, sizeof why))
			fail_msg("seed %llu step %llu: %s",
			         (unsigned long long)seed,
			         (unsigned long long)steps, why);
		if (hash_b(&w) != hb)
			fail_msg("seed %llu step %llu: subsystem B changed",
			         (unsigned long long)seed,
			         (unsigned long long)steps);
	}
	print_message("kmodel hostile: %llu steps, %llu restores (%llu denied, "
	              "%llu wrong pages, %llu false discards), %llu reads of "
	              "stopped threads, %llu maps, %llu clients replaced\n",
	              (unsigned long long)steps,
	              (unsigned long long)w.hk.restores,
	              (unsigned long long)w.hk.denials,
	              (unsigned long long)w.hk.wrong_pages,
	              (unsigned long long)w.hk.false_discards,
	              (unsigned long long)w.stopped_seen,
	              (unsigned long long)w.maps,
	              (unsigned long long)w.replaced);
	print_message("kmodel hostile: %llu evictions named; node tables and "
	              "MDB pages back: %llu restored, %llu rejected, %llu lost\n",
	              (unsigned long long)w.hk.evictions,
	              (unsigned long long)w.nm_restored,
	              (unsigned long long)w.nm_rejected,
	              (unsigned long long)w.nm_lost);
	/* The run did what it claims: forms came back and were refused. */
	assert_true(w.hk.restores > target / 10);
	assert_true(w.stopped_seen > 0);
	assert_true(w.maps > 0 && w.replaced > 0);
	assert_true(w.nm_restored > 0 && w.nm_rejected > 0 && w.nm_lost > 0);
	km_destroy(w.km);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kmodel_hostile_kpager),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
