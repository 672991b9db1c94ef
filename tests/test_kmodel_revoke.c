/*
 * Revocation: a kpager takes back kernel pages it lent, keeps (or
 * discards) their external forms, and hands them back when the kernel
 * faults on them.  Round trips per data type, continuations that are
 * forged, stale or moved, discards, refusals, costs in the records, and a
 * secrecy scan of every exported page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kmodel.h"
#include "kmtest.h"
#include "pagers.h"

#define PG KM_PAGE_SIZE
#define POOL 0x10000000u
#define NPOOL 64u
#define VA 0x08048000u
#define KM_PDX_OF(va) ((uint32_t)(va) >> 22)


/* ---------------------------------------------------------------------- */
/* A kpager that remembers which of its pages holds which kernel page.     */

enum rk_state { RK_FREE = 0, RK_LENT, RK_HELD };

struct rk {
	struct km *km;
	km_task_t task;
	enum rk_state state[NPOOL];
	uint64_t kva[NPOOL];            /* what a lent or held page holds */
	bool deny_restore;
	unsigned restores, fresh_restores;
	int evict;                      /* >= 0: answer faults with KP_REVOKE
	                                 * of this pool page */
	unsigned revoked_calls;
	/* give_one_take_one: before it gives back a form, it names the page
	 * it gave back last (while lent) as a victim, up to RK_MAX_VICTIMS
	 * times; the kernel needing both at once must still get on. */
	bool give_one_take_one;
	int last_restored;
	unsigned victims;
	/* restore_lifo: a form is copied into the page freed last, and that
	 * page is lent for the restore (as the policies' shared pool does,
	 * whose free pages are a stack). */
	bool restore_lifo;
	int last_freed;
	unsigned lifo_moves;
	/* lookup_va: each fault callback looks that page of its own task
	 * up, as the policies' LRU does, and keeps the result. */
	km_vaddr_t lookup_va;
	int lookup_err[8];
	unsigned lookups;
	km_pfn_t pfn[NPOOL];
};
#define RK_MAX_VICTIMS 1000u
#define MDB_PARTS 170u         /* mapping-node parts per MDB page */

static int rk_init(struct km *km, km_task_t task, const char *args,
                   void **state, char *why, size_t why_len)
{
	struct rk *rk;

	(void)why;
	(void)why_len;
	if (sscanf(args, "ctx=%p", (void **)&rk) != 1)
		return KM_EINVAL;
	memset(rk, 0, sizeof *rk);
	rk->evict = -1;
	rk->last_restored = -1;
	rk->last_freed = -1;
	rk->km = km;
	rk->task = task;
	*state = rk;
	if (km_sigma0_map(km, task, POOL, NPOOL, KM_R | KM_W) != KM_OK)
		return KM_ENOMEM;
	for (uint32_t i = 0; i < NPOOL; i++) {
		struct km_mapping m;

		if (km_lookup(km, task, POOL + i * PG, &m) != KM_OK)
			return KM_EINVAL;
		rk->pfn[i] = m.pfn;
	}
	return KM_OK;
}

/* Is the page freed last free, and not page i? */
static bool last_freed_free(const struct rk *rk, uint32_t i)
{
	return rk->last_freed >= 0 && (uint32_t)rk->last_freed != i &&
	       rk->state[rk->last_freed] == RK_FREE;
}

static void rk_fault(void *state, const struct kp_fault *f,
                     struct kp_decision *d)
{
	struct rk *rk = state;

	d->action = KP_DENY;
	d->discarded = false;
	if (rk->lookup_va != 0 && rk->lookups < 8) {
		struct km_mapping m;

		rk->lookup_err[rk->lookups++] = km_lookup(rk->km, rk->task,
		                                          rk->lookup_va, &m);
	}
	if (rk->evict >= 0 && !f->restore) {
		d->action = KP_REVOKE;
		d->vaddr = POOL + (uint32_t)rk->evict * PG;
		rk->evict = -1;
		return;
	}
	if (f->restore) {
		rk->restores++;
		if (rk->deny_restore)
			return;
		for (uint32_t i = 0; i < NPOOL; i++) {
			int last = rk->last_restored;

			if (rk->state[i] != RK_HELD || rk->kva[i] != f->kva)
				continue;
			if (rk->give_one_take_one &&
			    rk->victims < RK_MAX_VICTIMS && last >= 0 &&
			    (uint32_t)last != i && rk->state[last] == RK_LENT) {
				rk->victims++;
				d->action = KP_REVOKE;
				d->vaddr = POOL + (uint32_t)last * PG;
				return;
			}
			if (rk->restore_lifo && last_freed_free(rk, i)) {
				uint32_t to = (uint32_t)rk->last_freed;

				memcpy(km_frame_ptr(rk->km, rk->pfn[to]),
				       km_frame_ptr(rk->km, rk->pfn[i]), PG);
				rk->state[i] = RK_FREE;
				rk->kva[to] = rk->kva[i];
				rk->last_freed = -1;
				rk->lifo_moves++;
				i = to;
			}
			rk->last_restored = (int)i;
			rk->state[i] = RK_LENT;
			d->action = KP_MAP;
			d->vaddr = POOL + i * PG;
			return;
		}
		rk->fresh_restores++;
		d->discarded = true;    /* no form kept: a fresh frame */
	}
	for (uint32_t i = 0; i < NPOOL; i++) {
		if (rk->state[i] == RK_FREE) {
			rk->state[i] = RK_LENT;
			rk->kva[i] = f->kva;
			d->action = KP_MAP;
			d->vaddr = POOL + i * PG;
			return;
		}
	}
}

static void rk_released(void *state, km_vaddr_t vaddr, struct km_kpage kp)
{
	struct rk *rk = state;

	(void)kp;
	rk->state[(vaddr - POOL) / PG] = RK_FREE;
	rk->last_freed = (int)((vaddr - POOL) / PG);
}

/* The kernel took a page back on its own: the frame holds the form. */
static void rk_revoked(void *state, km_vaddr_t vaddr, struct km_kpage kp,
                       bool discarded)
{
	struct rk *rk = state;

	(void)kp;
	rk->revoked_calls++;
	rk->state[(vaddr - POOL) / PG] = discarded ? RK_FREE : RK_HELD;
}

static const struct kp_ops rk_ops = {
	.name = "rk", .init = rk_init, .fault = rk_fault,
	.released = rk_released, .revoked = rk_revoked,
};

/* ---------------------------------------------------------------------- */

struct fx {
	struct km *km;
	struct rk rk;
	km_kpager_t kp;
	km_task_t kt, t;
	km_thread_t th[3];
	struct rec_log log;
};

static int setup(void **state)
{
	static struct fx fx;
	struct km_config c = km_config_default(2048);
	char args[64], why[128];

	memset(&fx, 0, sizeof fx);
	c.kmem = KM_KMEM_KPAGER;
	c.key_seed = 42;
	snprintf(args, sizeof args, "ctx=%p", (void *)&fx.rk);
	if (km_create(&c, &fx.km, why, sizeof why) != KM_OK ||
	    km_task_create(fx.km, KM_ROOT_KPAGER, &fx.kt) != KM_OK ||
	    km_kpager_create(fx.km, &rk_ops, fx.kt, args, &fx.kp, why,
	                     sizeof why) != KM_OK ||
	    km_task_create(fx.km, fx.kp, &fx.t) != KM_OK)
		return -1;
	for (int i = 0; i < 3; i++)
		if (km_thread_create(fx.km, fx.t, 0, &fx.th[i]) != KM_OK)
			return -1;
	if (km_touch(fx.km, fx.th[0], VA, KM_ACC_WRITE) != KM_OK)
		return -1;
	km_set_fault_sink(fx.km, rec_sink, &fx.log);
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	km_destroy(fx->km);
	return 0;
}

/* The kpager's page that holds (or held) kernel page `kp`. */
static km_vaddr_t page_of(struct fx *fx, enum km_ktype type, uint32_t index)
{
	struct km_kpage kp = { fx->t, type, index };
	uint64_t kva = km_kpage_kva(kp);

	for (uint32_t i = 0; i < NPOOL; i++)
		if (fx->rk.state[i] != RK_FREE && fx->rk.kva[i] == kva)
			return POOL + i * PG;
	fail_msg("no page holds %s/%u", km_ktype_name(type), index);
	return 0;
}

/* Revokes kernel page (t, type, index), keeping the form; returns the
 * form's bytes (the kpager's frame). */
static uint8_t *revoke(struct fx *fx, enum km_ktype type, uint32_t index,
                       bool discard)
{
	km_vaddr_t va = page_of(fx, type, index);
	struct km_mapping m;

	OK(km_kpager_revoke(fx->km, fx->kp, va, discard));
	fx->rk.state[(va - POOL) / PG] = discard ? RK_FREE : RK_HELD;
	CHECK(fx->km);
	OK(km_lookup(fx->km, fx->kt, va, &m));
	assert_false(m.lent);
	return km_frame_ptr(fx->km, m.pfn);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static const struct km_fault_rec *last_of(struct fx *fx,
                                          enum km_fault_kind kind)
{
	for (size_t i = fx->log.n; i-- > 0;)
		if (fx->log.v[i].kind == kind)
			return &fx->log.v[i];
	fail_msg("no %s record", km_fault_kind_name(kind));
	return NULL;
}

/* The task's structure: kernel pages in and out, mappings, threads. */
static void assert_same_shape(const struct km_task_stats *a,
                              const struct km_task_stats *b)
{
	for (int i = 0; i < KM_KT_COUNT; i++) {
		assert_int_equal(a->pages[i], b->pages[i]);
		assert_int_equal(a->out[i], b->out[i]);
	}
	assert_int_equal(a->mappings, b->mappings);
	assert_int_equal(a->threads, b->threads);
}

static struct km_task_stats tstats(struct fx *fx)
{
	struct km_task_stats ts;

	OK(km_task_stats(fx->km, fx->t, &ts));
	return ts;
}

/* ---------------------------------------------------------------------- */

static void test_revoke_pt_round_trip(void **state)
{
	struct fx *fx = *state;
	struct km_mapping before, after;
	const struct km_fault_rec *u, *k;
	uint8_t *form;

	OK(km_touch(fx->km, fx->th[0], VA + PG, KM_ACC_WRITE));
	OK(km_lookup(fx->km, fx->t, VA + PG, &before));
	memset(km_frame_ptr(fx->km, before.pfn), 0x5a, PG);

	form = revoke(fx, KM_KT_PT, VA >> 22, false);
	assert_true(all_zero(form, PG));        /* exported vacant */
	assert_int_equal(tstats(fx).out[KM_KT_PT], 1);
	assert_int_equal(km_pte(fx->km, fx->t, VA + PG), 0);
	/* The mapping itself is still in the mapping database. */
	OK(km_lookup(fx->km, fx->t, VA + PG, &after));
	assert_int_equal(after.pfn, before.pfn);

	fx->log.n = 0;
	OK(km_touch(fx->km, fx->th[0], VA + PG, KM_ACC_READ));
	CHECK(fx->km);
	k = last_of(fx, KM_FK_KERNEL);
	assert_int_equal(k->kpage.type, KM_KT_PT);
	assert_int_equal(k->decision, KM_D_REBUILT);
	u = last_of(fx, KM_FK_USER);
	assert_int_equal(u->decision, KM_D_REFILLED);
	assert_int_equal(u->count[KM_C_FAULT_IPC], 0);  /* no pager asked */
	assert_int_equal(u->count[KM_C_PT_REFILL], 1);
	assert_int_equal(k->parent, u->seq);
	assert_int_equal(fx->rk.restores, 1);
	assert_int_equal(km_pte(fx->km, fx->t, VA + PG) & ~0xfffu,
	                 0xC0000000u + (before.pfn << 12));
	assert_int_equal(km_frame_ptr(fx->km, before.pfn)[100], 0x5a);
	/* The other page of that table needs its own refill. */
	assert_int_equal(km_pte(fx->km, fx->t, VA), 0);
	OK(km_touch(fx->km, fx->th[0], VA, KM_ACC_WRITE));
	assert_int_equal(last_of(fx, KM_FK_USER)->decision, KM_D_REFILLED);
	CHECK(fx->km);
}

static void test_revoke_pd_keeps_its_tables(void **state)
{
	struct fx *fx = *state;
	struct km_task_stats ts;

	revoke(fx, KM_KT_PD, 0, false);
	assert_int_equal(km_task_cr3(fx->km, fx->t), 0);
	ts = tstats(fx);
	assert_int_equal(ts.out[KM_KT_PD], 1);
	assert_int_equal(ts.pages[KM_KT_PT], 2);        /* text and UTCB */
	fx->log.n = 0;
	OK(km_touch(fx->km, fx->th[0], VA, KM_ACC_READ));
	CHECK(fx->km);
	assert_int_not_equal(km_task_cr3(fx->km, fx->t), 0);
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->decision, KM_D_REBUILT);
	/* The tables were entered again: the page needed no refill. */
	assert_int_equal(last_of(fx, KM_FK_USER)->decision, KM_D_PRESENT);
	assert_int_not_equal(km_pte(fx->km, fx->t, VA), 0);
}

static void test_revoke_nd_comes_back_counted(void **state)
{
	struct fx *fx = *state;

	revoke(fx, KM_KT_ND, 0, false);
	/* Nothing needs it to use existing tables... */
	OK(km_touch(fx->km, fx->th[0], VA + PG, KM_ACC_WRITE));
	assert_int_equal(tstats(fx).out[KM_KT_ND], 1);
	CHECK(fx->km);
	/* ...a new node table is entered into it. */
	fx->log.n = 0;
	OK(km_touch(fx->km, fx->th[0], 0x40000000u, KM_ACC_WRITE));
	assert_int_equal(tstats(fx).out[KM_KT_ND], 0);
	assert_int_equal(fx->log.v[0].kpage.type, KM_KT_ND);
	assert_int_equal(fx->log.v[0].decision, KM_D_REBUILT);
	CHECK(fx->km);  /* the counts were rebuilt from the node tables */
}

static void test_revoke_utcb_goes_as_it_is(void **state)
{
	struct fx *fx = *state;
	km_vaddr_t utcb;
	uint8_t *form, *page;

	OK(km_thread_utcb(fx->km, fx->th[1], &utcb));
	page = km_frame_ptr(fx->km, (km_pte(fx->km, fx->t, utcb) -
	                             0xC0000000u) >> 12);
	memset(page + (utcb & 0xfff), 0x77, KM_UTCB_SIZE);
	form = revoke(fx, KM_KT_UTCB, 0, false);
	assert_int_equal(form[utcb & 0xfff], 0x77);
	assert_int_equal(km_pte(fx->km, fx->t, utcb), 0);
	form[(utcb & 0xfff) + 1] = 0x78;        /* the owner's data anyway */
	fx->log.n = 0;
	OK(km_touch(fx->km, fx->th[1], utcb, KM_ACC_WRITE));
	CHECK(fx->km);
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->decision, KM_D_RESTORED);
	page = km_frame_ptr(fx->km, (km_pte(fx->km, fx->t, utcb) -
	                             0xC0000000u) >> 12);
	assert_int_equal(page[utcb & 0xfff], 0x77);
	assert_int_equal(page[(utcb & 0xfff) + 1], 0x78);
}

static void set_regs(struct fx *fx, int i, uint32_t base)
{
	uint32_t r[10];

	for (int k = 0; k < 10; k++)
		r[k] = base + (uint32_t)k;
	OK(km_thread_regs(fx->km, fx->th[i], r, true));
}

static void assert_regs(struct fx *fx, int i, uint32_t base)
{
	uint32_t r[10];
	enum km_thread_state st;

	OK(km_thread_regs(fx->km, fx->th[i], r, false));
	OK(km_thread_state(fx->km, fx->th[i], &st, NULL));
	assert_int_equal(st, KM_TS_READY);
	for (int k = 0; k < 10; k++)
		assert_int_equal(r[k], base + (uint32_t)k);
}

/* Brings the thread's KTCB back (reading its registers) and checks that
 * the kernel stopped it, for `why`, with its registers gone. */
static void assert_stopped(struct fx *fx, int i, enum km_stop_reason why)
{
	enum km_thread_state st;
	enum km_stop_reason r;
	uint32_t regs[10] = { 1 };

	OK(km_thread_regs(fx->km, fx->th[i], regs, false));
	assert_true(all_zero((const uint8_t *)regs, sizeof regs));
	OK(km_thread_state(fx->km, fx->th[i], &st, &r));
	assert_int_equal(st, KM_TS_STOPPED);
	assert_int_equal(r, why);
	assert_int_equal(km_thread_regs(fx->km, fx->th[i], regs, true),
	                 KM_EPERM);
}

static void test_revoke_ktcb_round_trip(void **state)
{
	struct fx *fx = *state;
	uint8_t *form;

	for (int i = 0; i < 3; i++)
		set_regs(fx, i, 0x1000u * (uint32_t)(i + 1));
	form = revoke(fx, KM_KT_KTCB, 0, false);
	/* Three continuations, one per 1 KiB slot, readable by the kpager. */
	for (int i = 0; i < 3; i++) {
		uint32_t w[6];

		memcpy(w, form + i * 1024, sizeof w);
		assert_int_equal(w[0], 0x636f6e74u);
		assert_int_equal(w[1], fx->th[i]);
		assert_int_equal(w[4], 0x1000u * (uint32_t)(i + 1));
	}
	assert_true(all_zero(form + 3 * 1024, 1024));
	fx->log.n = 0;
	for (int i = 0; i < 3; i++)
		assert_regs(fx, i, 0x1000u * (uint32_t)(i + 1));
	CHECK(fx->km);
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->decision, KM_D_RESTORED);
	assert_int_equal(fx->rk.restores, 1);
}

static void test_revoke_ktcb_forged_stops_one_thread(void **state)
{
	struct fx *fx = *state;
	uint8_t *form;

	for (int i = 0; i < 3; i++)
		set_regs(fx, i, 0x2000u * (uint32_t)(i + 1));
	form = revoke(fx, KM_KT_KTCB, 0, false);
	form[1024 + 16] ^= 1;           /* thread 1's eax */
	fx->log.n = 0;
	assert_regs(fx, 0, 0x2000u);
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->decision, KM_D_STOPPED);
	assert_stopped(fx, 1, KM_STOP_FORGED);
	assert_regs(fx, 2, 0x6000u);
	CHECK(fx->km);
}

static void test_revoke_ktcb_stale_or_moved_is_refused(void **state)
{
	struct fx *fx = *state;
	uint8_t old[PG], *form;

	set_regs(fx, 0, 0x100u);
	set_regs(fx, 2, 0x300u);
	form = revoke(fx, KM_KT_KTCB, 0, false);
	memcpy(old, form, PG);
	assert_regs(fx, 0, 0x100u);     /* back in */
	set_regs(fx, 0, 0x900u);
	form = revoke(fx, KM_KT_KTCB, 0, false);
	/* Replay the first export for thread 0 (stale generation), and move
	 * thread 2's continuation into thread 1's slot. */
	memcpy(form, old, 1024);
	memcpy(form + 1024, form + 2048, 1024);
	assert_stopped(fx, 0, KM_STOP_FORGED);
	assert_stopped(fx, 1, KM_STOP_FORGED);
	assert_regs(fx, 2, 0x300u);
	CHECK(fx->km);
}

static void test_revoke_discard(void **state)
{
	struct fx *fx = *state;
	km_vaddr_t utcb;
	uint8_t *page;

	set_regs(fx, 0, 0x40u);
	OK(km_thread_utcb(fx->km, fx->th[0], &utcb));
	page = km_frame_ptr(fx->km, (km_pte(fx->km, fx->t, utcb) -
	                             0xC0000000u) >> 12);
	memset(page, 0x33, PG);
	revoke(fx, KM_KT_PT, VA >> 22, true);
	revoke(fx, KM_KT_UTCB, 0, true);
	revoke(fx, KM_KT_KTCB, 0, true);
	fx->log.n = 0;
	/* Redundant: rebuilt, and the mapping refilled. */
	OK(km_touch(fx->km, fx->th[0], VA, KM_ACC_READ));
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->decision, KM_D_REBUILT);
	assert_int_equal(last_of(fx, KM_FK_USER)->decision, KM_D_REFILLED);
	/* Lost: the UTCB page comes back zeroed... */
	OK(km_touch(fx->km, fx->th[0], utcb, KM_ACC_READ));
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->decision, KM_D_LOST);
	page = km_frame_ptr(fx->km, (km_pte(fx->km, fx->t, utcb) -
	                             0xC0000000u) >> 12);
	assert_true(all_zero(page, PG));
	/* ...and the threads of the KTCB page come back stopped. */
	for (int i = 0; i < 3; i++)
		assert_stopped(fx, i, KM_STOP_DISCARDED);
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->decision, KM_D_LOST);
	assert_int_equal(fx->rk.fresh_restores, 3);
	CHECK(fx->km);
}

static void test_revoke_refusals_change_nothing(void **state)
{
	struct fx *fx = *state;
	struct km_task_stats a, b;
	struct km_stats g0, g1;

	a = tstats(fx);
	km_stats(fx->km, &g0);
	/* Not lent, not a kpager, not a page at all. */
	assert_int_equal(km_kpager_revoke(fx->km, fx->kp, POOL + 60 * PG,
	                                  false), KM_EINVAL);
	assert_int_equal(km_kpager_revoke(fx->km, 77, POOL, false),
	                 KM_ENOKPAGER);
	assert_int_equal(km_kpager_revoke(fx->km, fx->kp, POOL + 1, false),
	                 KM_EINVAL);
	b = tstats(fx);
	km_stats(fx->km, &g1);
	assert_same_shape(&a, &b);
	assert_int_equal(g0.kernel_frames, g1.kernel_frames);
	assert_int_equal(g0.sigma0_free, g1.sigma0_free);
	assert_int_equal(g0.kpool_free, g1.kpool_free);
	CHECK(fx->km);
}

/* Revocation and restore charge their named costs, in their records. */
static void test_revoke_costs_in_records(void **state)
{
	struct fx *fx = *state;
	const struct km_fault_rec *r;

	set_regs(fx, 0, 0);
	fx->log.n = 0;
	revoke(fx, KM_KT_KTCB, 0, false);
	r = last_of(fx, KM_FK_REVOKE);
	assert_int_equal(r->kpage.type, KM_KT_KTCB);
	assert_int_equal(r->decision, KM_D_EXPORTED);
	assert_int_equal(r->count[KM_C_REVOKE], 1);
	assert_int_equal(r->count[KM_C_EXPORT], 1);
	assert_int_equal(r->count[KM_C_SEAL], 3);       /* three threads */
	assert_true(r->cycles > 0);
	assert_regs(fx, 0, 0);
	r = last_of(fx, KM_FK_KERNEL);
	assert_int_equal(r->decision, KM_D_RESTORED);
	assert_int_equal(r->count[KM_C_IMPORT], 1);
	assert_int_equal(r->count[KM_C_SEAL], 3);
	assert_int_equal(r->count[KM_C_VALIDATE], 3);
	assert_int_equal(r->count[KM_C_ZERO_FRAME], 0);
}

/* A denied restore fails the operation and leaves the page out. */
static void test_revoke_denied_restore_changes_nothing(void **state)
{
	struct fx *fx = *state;
	struct km_task_stats a, b;
	uint32_t regs[10];

	set_regs(fx, 0, 0);
	revoke(fx, KM_KT_KTCB, 0, false);
	revoke(fx, KM_KT_PT, VA >> 22, false);
	fx->rk.deny_restore = true;
	a = tstats(fx);
	assert_int_equal(km_thread_regs(fx->km, fx->th[0], regs, false),
	                 KM_EDENIED);
	assert_int_equal(km_touch(fx->km, fx->th[0], VA, KM_ACC_READ),
	                 KM_EDENIED);
	b = tstats(fx);
	assert_same_shape(&a, &b);
	CHECK(fx->km);
	fx->rk.deny_restore = false;
	assert_regs(fx, 0, 0);
	OK(km_touch(fx->km, fx->th[0], VA, KM_ACC_READ));
	CHECK(fx->km);
}

/* An operation that brings a revoked page back and then fails keeps the
 * page (its content is unchanged); the new pages it obtained go back. */
static void test_revoke_failed_operation_keeps_restored_pages(void **state)
{
	struct fx *fx = *state;
	struct km_task_stats a, b;

	revoke(fx, KM_KT_PD, 0, false);
	/* Exhaust the kpager's pool: a new region's page table is refused
	 * after the directory came back. */
	for (uint32_t i = 0; i < NPOOL; i++)
		if (fx->rk.state[i] == RK_FREE)
			fx->rk.state[i] = RK_LENT;
	a = tstats(fx);
	assert_int_equal(km_map(fx->km, KM_SIGMA0, km_fpage(0, 12, KM_RWX),
	                        fx->t, 0x50000000u, KM_MAP, NULL), KM_EDENIED);
	b = tstats(fx);
	assert_int_equal(b.out[KM_KT_PD], 0);
	assert_int_equal(b.pages[KM_KT_PD], 1);
	assert_int_equal(b.pages[KM_KT_PT], a.pages[KM_KT_PT]);
	assert_int_equal(b.mappings, a.mappings);
	assert_int_not_equal(km_task_cr3(fx->km, fx->t), 0);
	CHECK(fx->km);
}

/* A kpager whose own kernel memory comes from a kpager: the upper one
 * revokes the page table that maps the lower one's pool, and the lower one
 * still lends and takes back pages (the lent page's PTE is simply not
 * there while the table is out). */
static void test_revoke_kpager_of_a_kpager(void **state)
{
	struct fx *fx = *state;
	km_task_t low, c;
	km_kpager_t kp2;
	km_thread_t th;
	char why[128];
	uint64_t kva;

	OK(km_task_create(fx->km, fx->kp, &low));
	OK(km_kpager_create(fx->km, &kp_fcfs_ops, low, "frames=16", &kp2, why,
	                    sizeof why));
	CHECK(fx->km);
	/* The upper kpager revokes the lower one's pool table. */
	kva = km_kpage_kva((struct km_kpage){ low, KM_KT_PT, 0x10000000u >> 22 });
	for (uint32_t i = 0; i < NPOOL; i++) {
		if (fx->rk.state[i] == RK_LENT && fx->rk.kva[i] == kva) {
			OK(km_kpager_revoke(fx->km, fx->kp, POOL + i * PG, false));
			fx->rk.state[i] = RK_HELD;
		}
	}
	assert_int_equal(km_pte(fx->km, low, 0x10000000u), 0);
	CHECK(fx->km);
	/* The lower one lends pages of that pool to a client of its own... */
	OK(km_task_create(fx->km, kp2, &c));
	OK(km_thread_create(fx->km, c, 0, &th));
	OK(km_touch(fx->km, th, VA, KM_ACC_WRITE));
	CHECK(fx->km);
	/* ...gets them back when the client dies, and its table returns
	 * when its own pool page is touched. */
	OK(km_task_destroy(fx->km, c));
	CHECK(fx->km);
	assert_true(fx->rk.restores == 0);
	OK(km_map(fx->km, low, km_fpage(0x10000000u, 12, KM_R), fx->t,
	          0x30000000u, KM_MAP, NULL));
	CHECK(fx->km);
}

/* A kpager out of frames names a victim of its own (KP_REVOKE): the
 * kernel revokes it between attempts, tells the kpager, and the operation
 * goes through on the retry, with the victim out. */
static void test_revoke_evict_victim_and_retry(void **state)
{
	struct fx *fx = *state;
	struct km_kpager_stats ks;
	km_vaddr_t victim = page_of(fx, KM_KT_PT, VA >> 22);
	struct km_mapping m;
	bool used;
	uint64_t when;

	fx->rk.evict = (int)((victim - POOL) / PG);
	fx->log.n = 0;
	/* A new region: a page table and a node table to fault in. */
	OK(km_touch(fx->km, fx->th[0], 0x50000000u, KM_ACC_WRITE));
	CHECK(fx->km);
	OK(km_kpager_stats(fx->km, fx->kp, &ks));
	assert_int_equal(ks.evicted, 1);
	assert_int_equal(fx->rk.revoked_calls, 1);
	assert_int_equal(tstats(fx).out[KM_KT_PT], 1);
	assert_int_equal(fx->log.v[0].decision, KM_D_EVICT);
	OK(km_lookup(fx->km, fx->kt, victim, &m));
	assert_false(m.lent);
	/* The victim comes back when its region is touched again. */
	OK(km_touch(fx->km, fx->th[0], VA, KM_ACC_READ));
	assert_int_equal(tstats(fx).out[KM_KT_PT], 0);
	CHECK(fx->km);
	/* A victim it did not lend is refused, and the operation fails. */
	fx->rk.evict = NPOOL - 1;
	assert_int_equal(km_touch(fx->km, fx->th[0], 0x54000000u,
	                          KM_ACC_WRITE), KM_EKPAGER);
	CHECK(fx->km);
	/* The kernel's use of a page, for policies. */
	victim = page_of(fx, KM_KT_PT, 0x50000000u >> 22);
	OK(km_kpager_page_use(fx->km, fx->kp, victim, true, &used, &when));
	OK(km_kpager_page_use(fx->km, fx->kp, victim, false, &used, &when));
	assert_false(used);
	OK(km_touch(fx->km, fx->th[0], 0x50001000u, KM_ACC_WRITE));
	OK(km_kpager_page_use(fx->km, fx->kp, victim, true, &used, &when));
	assert_true(used);
	assert_int_equal(km_kpager_page_use(fx->km, fx->kp, POOL + 63 * PG,
	                                    false, &used, &when), KM_EINVAL);
}

/* ---------------------------------------------------------------------- */
/* Node tables and mapping-database pages.                                  */

/* A second task of the same kpager maps one of its pages to the fixture's
 * task at 0x30000000, and the fixture's task passes it on to a third task
 * (of the root kpager) at 0x31000000: mapping nodes across three tasks. */
static void three_tasks(struct fx *fx, km_task_t *other, km_task_t *third)
{
	km_thread_t th;

	OK(km_task_create(fx->km, fx->kp, other));
	OK(km_thread_create(fx->km, *other, 0, &th));
	OK(km_touch(fx->km, th, VA, KM_ACC_WRITE));
	OK(km_map(fx->km, *other, km_fpage(VA, 12, KM_RWX), fx->t,
	          0x30000000u, KM_MAP, NULL));
	OK(km_task_create(fx->km, KM_ROOT_KPAGER, third));
	OK(km_map(fx->km, fx->t, km_fpage(0x30000000u, 12, KM_R), *third,
	          0x31000000u, KM_MAP, NULL));
	CHECK(fx->km);
}

static void test_revoke_nt_round_trip(void **state)
{
	struct fx *fx = *state;
	struct km_mapping before, after;
	const uint32_t *form;
	uint32_t entries = 0;

	OK(km_touch(fx->km, fx->th[0], VA + PG, KM_ACC_WRITE));
	OK(km_lookup(fx->km, fx->t, VA + PG, &before));
	form = (const uint32_t *)(const void *)revoke(fx, KM_KT_NT, VA >> 22,
	                                              false);
	/* Localised: entries name the client's own mapping slots. */
	for (uint32_t i = 0; i < 1024; i++) {
		entries += form[i] != 0;
		assert_true(form[i] < 1024);
	}
	assert_int_equal(entries, 2);
	assert_int_equal(tstats(fx).out[KM_KT_NT], 1);
	/* The MMU needs no node table: the page table still maps. */
	OK(km_touch(fx->km, fx->th[0], VA, KM_ACC_READ));
	assert_int_equal(fx->rk.restores, 0);
	/* Unmap needs it back. */
	fx->log.n = 0;
	OK(km_unmap(fx->km, fx->t, km_fpage(VA, 12, KM_RWX), KM_UNMAP_SELF,
	            NULL));
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->kpage.type, KM_KT_NT);
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->decision, KM_D_RESTORED);
	assert_true(last_of(fx, KM_FK_KERNEL)->count[KM_C_DIGEST] == 1);
	assert_int_equal(km_lookup(fx->km, fx->t, VA, &after), KM_ENOMAP);
	OK(km_lookup(fx->km, fx->t, VA + PG, &after));
	assert_int_equal(after.pfn, before.pfn);
	CHECK(fx->km);
}

static void test_revoke_mdb_round_trip(void **state)
{
	struct fx *fx = *state;
	struct km_mapping before, after;
	km_task_t other, third;
	const uint8_t *form;
	uint32_t used = 0;

	three_tasks(fx, &other, &third);
	OK(km_lookup(fx->km, fx->t, 0x30000000u, &before));
	form = revoke(fx, KM_KT_MDB, 0, false);
	/* Localised: no frame, no slot of another task's parts; the other
	 * party's task id stays readable. */
	for (uint32_t i = 0; i < 170; i++) {
		const uint8_t *p = form + 16 + 24 * i;
		uint32_t w[6];

		memcpy(w, p, sizeof w);
		if (p[0] == 0)
			continue;
		used++;
		if (p[0] == 2) {        /* receiver part */
			assert_int_equal(w[2], 0);      /* frame */
			assert_int_equal(w[4], 0);      /* sender's slot */
			assert_true(w[3] == other ||
			            w[3] == km_default_pager(fx->km));
		} else {                /* sender part */
			assert_int_equal(w[5], 0);      /* receiver's slot */
			assert_int_equal(w[4], third);
		}
	}
	assert_true(used >= 3);
	assert_int_equal(tstats(fx).out[KM_KT_MDB], 1);
	CHECK(fx->km);
	/* The mapper unmaps: the walk crosses the revoked page, which comes
	 * back, and the third task loses its derived mapping too. */
	fx->log.n = 0;
	OK(km_lookup(fx->km, fx->t, 0x30000000u, &after));
	assert_int_equal(after.pfn, before.pfn);
	assert_int_equal(after.from, other);
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->decision, KM_D_RESTORED);
	revoke(fx, KM_KT_MDB, 0, false);
	OK(km_unmap(fx->km, other, km_fpage(VA, 12, KM_RWX), 0, NULL));
	assert_int_equal(km_lookup(fx->km, fx->t, 0x30000000u, &after),
	                 KM_ENOMAP);
	assert_int_equal(km_lookup(fx->km, third, 0x31000000u, &after),
	                 KM_ENOMAP);
	OK(km_lookup(fx->km, other, VA, &after));
	CHECK(fx->km);
}

/* A tampered MDB page is refused and lost: the mappings with a part in
 * it go, as unmap would take them, with what was derived from them; the
 * mapper keeps its own page and can map it again. */
static void test_revoke_mdb_tampered_is_undone(void **state)
{
	struct fx *fx = *state;
	struct km_mapping m;
	km_task_t other, third;
	uint8_t *form;
	uint32_t slot;

	three_tasks(fx, &other, &third);
	form = revoke(fx, KM_KT_MDB, 0, false);
	/* A cycle: every part's first link points at itself. */
	for (slot = 0; slot < 170; slot++)
		if (form[16 + 24 * slot] != 0)
			memcpy(form + 16 + 24 * slot + 4 * (form[16 + 24 * slot]
			       == 2 ? 5 : 2), &slot, 4);
	fx->log.n = 0;
	assert_int_equal(km_lookup(fx->km, fx->t, 0x30000000u, &m), KM_ENOMAP);
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->kpage.type, KM_KT_MDB);
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->decision, KM_D_REJECTED);
	CHECK(fx->km);
	assert_int_equal(km_lookup(fx->km, fx->t, VA, &m), KM_ENOMAP);
	assert_int_equal(km_lookup(fx->km, third, 0x31000000u, &m), KM_ENOMAP);
	assert_int_equal(km_pte(fx->km, fx->t, 0x30000000u), 0);
	assert_int_equal(km_pte(fx->km, third, 0x31000000u), 0);
	/* The mapper is untouched and can map again; the task works on. */
	OK(km_lookup(fx->km, other, VA, &m));
	OK(km_map(fx->km, other, km_fpage(VA, 12, KM_RWX), fx->t,
	          0x30000000u, KM_MAP, NULL));
	OK(km_touch(fx->km, fx->th[0], VA, KM_ACC_WRITE));
	CHECK(fx->km);
}

/* A kpager that flushes its own page while the kernel keeps a node table
 * or MDB page in it: the kernel moves the page into its pool, content and
 * all, and the client's mappings stay. */
static void test_revoke_flush_under_mdb_moves_to_pool(void **state)
{
	struct fx *fx = *state;
	km_vaddr_t page = page_of(fx, KM_KT_MDB, 0);
	struct km_mapping before, after;
	struct km_task_stats a, b;
	struct km_stats s0, s1;

	OK(km_lookup(fx->km, fx->t, VA, &before));
	a = tstats(fx);
	km_stats(fx->km, &s0);
	OK(km_unmap(fx->km, fx->kt, km_fpage(page, 12, KM_RWX), KM_UNMAP_SELF,
	            NULL));
	CHECK(fx->km);
	assert_int_equal(km_lookup(fx->km, fx->kt, page, &after), KM_ENOMAP);
	OK(km_lookup(fx->km, fx->t, VA, &after));
	assert_int_equal(after.pfn, before.pfn);
	b = tstats(fx);
	assert_same_shape(&a, &b);
	km_stats(fx->km, &s1);
	assert_int_equal(s1.kpool_free, s0.kpool_free - 1);
	/* It lives on: unmapping the client's page walks it. */
	OK(km_unmap(fx->km, fx->t, km_fpage(VA, 12, KM_RWX), KM_UNMAP_SELF,
	            NULL));
	CHECK(fx->km);
}

/* A discarded node table comes back rebuilt from the mapping database. */
static void test_revoke_nt_discard_is_rebuilt(void **state)
{
	struct fx *fx = *state;
	struct km_mapping before, after;

	OK(km_touch(fx->km, fx->th[0], VA + 5 * PG, KM_ACC_WRITE));
	OK(km_lookup(fx->km, fx->t, VA + 5 * PG, &before));
	revoke(fx, KM_KT_NT, VA >> 22, true);
	fx->log.n = 0;
	OK(km_lookup(fx->km, fx->t, VA + 5 * PG, &after));
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->decision, KM_D_LOST);
	assert_int_equal(after.pfn, before.pfn);
	OK(km_lookup(fx->km, fx->t, VA, &after));
	assert_int_equal(tstats(fx).mappings, 2);
	CHECK(fx->km);
}

/*
 * A repair leaves a revoked node table out.  MDB page 0 holds the
 * mappings at VA and at VA2, in another node table's range; the node
 * table of VA goes out with its form kept, then MDB page 0 with its form
 * discarded.  A lookup at VA2 brings the page back lost, and the repair
 * undoes both mappings without asking for VA's node table (a kpager may
 * not give it, and the kernel's pool is not to be spent on it): the PTE
 * goes at once, the count the kernel kept of the table drops, and the
 * table, asked for later, comes back rebuilt without the mapping, its
 * form (which still names it) set aside.
 */
static void test_revoke_repair_leaves_node_table_out(void **state)
{
	struct fx *fx = *state;
	const km_vaddr_t va2 = VA + (1u << 22);
	struct km_mapping m;
	unsigned restores;

	OK(km_touch(fx->km, fx->th[0], va2, KM_ACC_WRITE));
	assert_int_equal(tstats(fx).mappings, 2);
	assert_int_equal(tstats(fx).pages[KM_KT_MDB], 1);
	assert_int_not_equal(km_pte(fx->km, fx->t, VA), 0);
	revoke(fx, KM_KT_NT, VA >> 22, false);
	revoke(fx, KM_KT_MDB, 0, true);
	restores = fx->rk.restores;
	ERR(km_lookup(fx->km, fx->t, va2, &m), KM_ENOMAP);
	CHECK(fx->km);
	assert_int_equal(fx->rk.restores, restores + 1);    /* MDB page 0 */
	assert_int_equal(tstats(fx).out[KM_KT_NT], 1);
	assert_int_equal(tstats(fx).mappings, 0);
	assert_int_equal(km_pte(fx->km, fx->t, VA), 0);
	fx->log.n = 0;
	ERR(km_lookup(fx->km, fx->t, VA, &m), KM_ENOMAP);
	assert_int_equal(fx->rk.restores, restores + 2);
	assert_int_equal(last_of(fx, KM_FK_KERNEL)->decision, KM_D_LOST);
	assert_int_equal(tstats(fx).out[KM_KT_NT], 0);
	CHECK(fx->km);
	OK(km_touch(fx->km, fx->th[0], VA, KM_ACC_WRITE));
	assert_int_equal(tstats(fx).mappings, 1);
	CHECK(fx->km);
}

/*
 * A repair needs every MDB page of the task that lost one in at once.  A
 * kpager that gives one back only after taking the last one back (a
 * policy that caps a client, as ws caps its largest) used to make the
 * repair trade one page for the other for ever.  The kernel now keeps in
 * what the repair brought back and refuses such a victim; the page asked
 * for is entered from the kernel's pool, lost, and the repair ends.
 */
static void test_revoke_repair_holds_what_it_brought(void **state)
{
	struct fx *fx = *state;
	const km_vaddr_t base = 0x20000000u;
	const uint32_t n = 400;         /* receiver parts over MDB pages 0-2 */
	struct km_kpager_stats ks;
	struct km_task_stats ts;
	struct km_mapping m;
	uint32_t kept[3] = { 0, 0, 0 };

	for (uint32_t i = 0; i < n; i++)
		OK(km_touch(fx->km, fx->th[0], base + i * PG, KM_ACC_WRITE));
	assert_int_equal(tstats(fx).pages[KM_KT_MDB], 3);
	/* Page 0's form is discarded (it will come back lost); pages 1 and
	 * 2 go out with their forms kept. */
	revoke(fx, KM_KT_MDB, 0, true);
	revoke(fx, KM_KT_MDB, 1, false);
	revoke(fx, KM_KT_MDB, 2, false);
	fx->rk.give_one_take_one = true;
	/* The lookup crosses page 0, lost: the repair needs 1 and 2 too. */
	(void)km_lookup(fx->km, fx->t, base, &m);
	CHECK(fx->km);
	OK(km_kpager_stats(fx->km, fx->kp, &ks));
	print_message("victims named %u, answers refused %llu\n",
	              fx->rk.victims, (unsigned long long)ks.refused);
	assert_true(fx->rk.victims >= 1);
	assert_true(fx->rk.victims <= 4);
	assert_true(ks.refused >= 1);
	assert_int_equal(ks.evicted, 0);
	/* The page the repair held in keeps its mappings; the lost ones'
	 * went.  (Parts fill the pages in order: the setup's page first.) */
	for (uint32_t i = 0; i < n; i++) {
		int err = km_lookup(fx->km, fx->t, base + i * PG, &m);

		assert_true(err == KM_OK || err == KM_ENOMAP);
		kept[(i + 1) / MDB_PARTS] += err == KM_OK;
	}
	assert_int_equal(kept[0], 0);
	assert_int_equal(kept[1], MDB_PARTS);
	assert_int_equal(kept[2], 0);
	OK(km_task_stats(fx->km, fx->t, &ts));
	assert_int_equal(ts.out[KM_KT_MDB], 0);
	CHECK(fx->km);
	/* The task works on. */
	OK(km_touch(fx->km, fx->th[0], base, KM_ACC_WRITE));
	CHECK(fx->km);
}

/*
 * A kpager's callback may look up its own task's pages (the policies'
 * LRU asks how each was used).  During a repair, the MDB page holding the
 * sender part of such a page's mapping may be lost: present but vacant,
 * its parts not yet undone.  The lookup is busy then; it read the vacant
 * part as a sender part, and the model stopped on a broken invariant
 * (test_kmodel_stress, quota beside, seed 26).
 */
static void test_revoke_callback_lookup_during_repair(void **state)
{
	struct fx *fx = *state;
	const km_vaddr_t base = 0x20000000u, mine = POOL + NPOOL * PG;
	struct km_mapping m;

	/* The client maps a page to its kpager's task: the sender part goes
	 * into the client's MDB page 0, then 200 mappings fill pages 0, 1. */
	OK(km_map(fx->km, fx->t, km_fpage(VA, 12, KM_R), fx->kt, mine,
	          KM_MAP, NULL));
	for (uint32_t i = 0; i < 200; i++)
		OK(km_touch(fx->km, fx->th[0], base + i * PG, KM_ACC_WRITE));
	assert_int_equal(tstats(fx).pages[KM_KT_MDB], 2);
	revoke(fx, KM_KT_MDB, 0, true);
	revoke(fx, KM_KT_MDB, 1, false);
	/* A lookup crosses page 0, which comes back lost; the repair brings
	 * page 1 back, and the kpager's callback looks `mine` up meanwhile. */
	fx->rk.lookup_va = mine;
	(void)km_lookup(fx->km, fx->t, base, &m);
	fx->rk.lookup_va = 0;
	assert_int_equal(fx->rk.lookups, 2);
	ERR(fx->rk.lookup_err[0], KM_EBUSY);    /* page 0 out */
	ERR(fx->rk.lookup_err[1], KM_EBUSY);    /* page 0 lost */
	CHECK(fx->km);
	/* The repair took the mapping away with its lost sender part. */
	ERR(km_lookup(fx->km, fx->kt, mine, &m), KM_ENOMAP);
	OK(km_lookup(fx->km, fx->t, base + 199 * PG, &m));
	CHECK(fx->km);
}

/* The same kpager against an operation: unmapping a range needs every
 * MDB page of the range in at once.  Its victims are followed up to
 * KM_EVICT_STREAK in a row (giving back a victim does not end the row);
 * then its answer counts as a denial and the unmap goes through. */
static void test_revoke_give_one_take_one_op_ends(void **state)
{
	struct fx *fx = *state;
	const km_vaddr_t base = 0x20000000u;
	const uint32_t n = 400;
	struct km_mapping m;

	for (uint32_t i = 0; i < n; i++)
		OK(km_touch(fx->km, fx->th[0], base + i * PG, KM_ACC_WRITE));
	revoke(fx, KM_KT_MDB, 1, false);
	revoke(fx, KM_KT_MDB, 2, false);
	fx->rk.give_one_take_one = true;
	OK(km_unmap(fx->km, fx->t, km_fpage(base, 24, KM_RWX), KM_UNMAP_SELF,
	            NULL));
	print_message("victims named %u\n", fx->rk.victims);
	assert_true(fx->rk.victims >= 1);
	assert_true(fx->rk.victims <= KM_EVICT_STREAK + 1);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(km_lookup(fx->km, fx->t, base + i * PG, &m),
		                 KM_ENOMAP);
	OK(km_lookup(fx->km, fx->t, VA, &m));
	CHECK(fx->km);
}

/*
 * Node tables of a kpager's client that the kernel salvaged from its pool
 * (the kpager would not give them back) go out again, forms discarded,
 * once the pool runs low: an operation finds the pool as it was before
 * all but the latest salvage, and a table comes back, rebuilt in a frame
 * of the kpager, when it is needed.  (Left in the pool, such tables
 * drained it: a hostile kpager's clients then stalled every subsystem's
 * operations.)
 */
static void test_revoke_pool_takes_back_salvaged_tables(void **state)
{
	struct fx *fx = *state;
	km_task_t hog[8] = { 0 }, spare[2];
	struct km_task_stats ts;
	struct km_mapping m;
	const uint32_t left = KM_KPOOL_RESERVE + 6;

	for (uint32_t r = 1; r <= 4; r++)
		OK(km_touch(fx->km, fx->th[0], VA + (r << 22), KM_ACC_WRITE));
	kmt_kernel_pool_exactly(fx->km, left, hog, spare);
	fx->rk.deny_restore = true;
	for (uint32_t r = 1; r <= 4; r++) {
		fx->log.n = 0;
		revoke(fx, KM_KT_NT, (VA >> 22) + r, true);
		OK(km_lookup(fx->km, fx->t, VA + (r << 22), &m));
		CHECK(fx->km);
		/* The one before went out first (the revocation's own
		 * operation began with it), recorded as the kernel's. */
		if (r > 1) {
			const struct km_fault_rec *rv = &fx->log.v[0];

			assert_int_equal(rv->kind, KM_FK_REVOKE);
			assert_int_equal(rv->kpage.type, KM_KT_NT);
			assert_int_equal(rv->kpage.index, (VA >> 22) + r - 1);
			assert_int_equal(rv->decision, KM_D_DISCARDED);
			assert_int_equal(rv->thread, KM_NO_THREAD);
			assert_int_equal(rv->parent, 0);
		}
		/* The latest table is in a pool frame, the ones before are
		 * out again. */
		assert_int_equal(kmt_kpool_free(fx->km), left - 1);
		OK(km_task_stats(fx->km, fx->t, &ts));
		assert_int_equal(ts.out[KM_KT_NT], r - 1);
	}
	/* The kpager, asked again, has no form: each table is rebuilt in
	 * its fresh frame, mappings and all, and the pool is whole. */
	fx->rk.deny_restore = false;
	fx->rk.fresh_restores = 0;
	for (uint32_t r = 1; r <= 4; r++) {
		OK(km_lookup(fx->km, fx->t, VA + (r << 22), &m));
		CHECK(fx->km);
	}
	assert_int_equal(fx->rk.fresh_restores, 4);
	OK(km_task_stats(fx->km, fx->t, &ts));
	assert_int_equal(ts.out[KM_KT_NT], 0);
	assert_int_equal(kmt_kpool_free(fx->km), left);
}

/*
 * An unmap may bring a page back into the very frame it has just moved a
 * page out of.  The kpager takes away its whole pool (unmap with the
 * mappings themselves): the walk moves each node table and MDB page lent
 * from it into the kernel's pool, and the frames come free.  Further on,
 * a page of the pool mapped to the client leads to the client's MDB page
 * 0, revoked; the kpager restores it into the frame it got back last,
 * inside the range going away.  The unmap must notice that loan and walk
 * again, moving that page too: taking the frame away with the page in it
 * would lose it, and the removal of the mapping under it would then read
 * the lost page (it did: an assertion in km_part).
 */
static void test_revoke_unmap_restore_into_freed_frame(void **state)
{
	struct fx *fx = *state;
	const uint32_t g = NPOOL - 1;   /* the pool page mapped to the client */
	const km_vaddr_t vb = VA + 16 * PG;  /* (tables in: no fault to the
	                                      * kpager, which waits on its map) */
	struct km_task_stats ts;
	struct km_mapping m;
	uint32_t pages;

	/* Page g stays the kpager's: marked held, for no kernel page. */
	assert_int_equal(fx->rk.state[g], RK_FREE);
	fx->rk.state[g] = RK_HELD;
	fx->rk.kva[g] = UINT64_MAX;
	OK(km_map(fx->km, fx->kt, km_fpage(POOL + g * PG, 12, KM_R | KM_W),
	          fx->t, vb, KM_MAP, &pages));
	assert_int_equal(pages, 1);
	revoke(fx, KM_KT_MDB, 0, false);
	CHECK(fx->km);

	fx->rk.restore_lifo = true;
	fx->log.n = 0;
	OK(km_unmap(fx->km, fx->kt, km_fpage(POOL, 18, KM_RWX), KM_UNMAP_SELF,
	            &pages));
	CHECK(fx->km);
	/* The restore went into a frame the walk had freed. */
	assert_int_equal(fx->rk.restores, 1);
	assert_int_equal(fx->rk.lifo_moves, 1);
	/* Nothing was lost: the MDB page is in the kernel's pool, and the
	 * client's mappings are all there but the one from the pool. */
	OK(km_task_stats(fx->km, fx->t, &ts));
	assert_int_equal(ts.out[KM_KT_MDB], 0);
	assert_int_equal(ts.pages[KM_KT_MDB], 1);
	ERR(km_lookup(fx->km, fx->t, vb, &m), KM_ENOMAP);
	OK(km_lookup(fx->km, fx->t, VA, &m));
	CHECK(fx->km);
}

/*
 * A repair that finds no frame: the node table at VA and MDB page 0 are
 * lost (forms dropped), the kpager denies restores, and the kernel's
 * pool has one frame above its reserve (KM_KPOOL_RESERVE), which the node
 * table takes.  The repair needs MDB page 0 too and stops.  The loss
 * stands between operations: km_check accepts it, and every operation on
 * the mapping database fails with the repair's error (no unmap that
 * misses a mapping it cannot read), until frames come free and the next
 * one finishes the repair.  Another subsystem's operations go on
 * meanwhile, and the kernel's own tasks take frames of the reserve.
 */
static void test_revoke_repair_without_frames_waits(void **state)
{
	struct fx *fx = *state;
	km_task_t hog[8] = { 0 }, spare[2], bkt, b[2], own;
	km_thread_t own_th;
	static struct rk rk_b;          /* subsystem B's kpager */
	km_kpager_t bkp;
	struct km_mapping m;
	char why[256], args[64];
	uint32_t pages;

	OK(km_touch(fx->km, fx->th[0], VA + PG, KM_ACC_WRITE));
	/* Subsystem B: another kpager, two clients, a page in the first. */
	snprintf(args, sizeof args, "ctx=%p", (void *)&rk_b);
	OK(km_task_create(fx->km, KM_ROOT_KPAGER, &bkt));
	OK(km_kpager_create(fx->km, &rk_ops, bkt, args, &bkp, why,
	                    sizeof why));
	for (int i = 0; i < 2; i++)
		OK(km_task_create(fx->km, bkp, &b[i]));
	OK(km_sigma0_map(fx->km, b[0], VA, 1, KM_RWX));
	/* A task of the kernel's own, and a thread in it. */
	OK(km_task_create(fx->km, KM_ROOT_KPAGER, &own));
	OK(km_thread_create(fx->km, own, 0, &own_th));
	/* The kernel's own tasks take all but one frame above its pool's
	 * reserve, which no kpager's client may take. */
	kmt_kernel_pool_exactly(fx->km, KM_KPOOL_RESERVE + 1, hog, spare);
	fx->rk.deny_restore = true;
	revoke(fx, KM_KT_NT, VA >> 22, true);
	revoke(fx, KM_KT_MDB, 0, true);

	assert_int_equal(km_lookup(fx->km, fx->t, VA, &m), KM_ENOMEM);
	assert_int_equal(kmt_kpool_free(fx->km), KM_KPOOL_RESERVE);
	if (!km_check(fx->km, why, sizeof why))
		fail_msg("km_check with the repair pending: %s", why);
	assert_int_equal(km_unmap(fx->km, fx->t, km_fpage(VA, 12, KM_RWX),
	                          KM_UNMAP_SELF, NULL), KM_ENOMEM);
	assert_int_equal(km_map(fx->km, fx->t, km_fpage(VA, 12, KM_R), hog[0],
	                        0x40000000u, KM_MAP, NULL), KM_ENOMEM);
	assert_int_equal(km_touch(fx->km, fx->th[0], VA + 2 * PG,
	                          KM_ACC_WRITE), KM_ENOMEM);
	assert_int_equal(km_task_destroy(fx->km, fx->t), KM_ENOMEM);
	CHECK(fx->km);
	/* B is not held up: a map between its clients, which takes new
	 * kernel pages (B's kpager lends them), goes through. */
	OK(km_map(fx->km, b[0], km_fpage(VA, 12, KM_RWX), b[1], 0x30000000u,
	          KM_MAP, &pages));
	assert_int_equal(pages, 1);
	CHECK(fx->km);
	/* Nor are the kernel's own tasks: the reserve is theirs.  (Its
	 * fifth thread needs a KTCB page, four threads to a page.) */
	for (int i = 0; i < 4; i++)
		OK(km_thread_create(fx->km, own, 0, &own_th));
	assert_true(kmt_kpool_free(fx->km) < KM_KPOOL_RESERVE);
	CHECK(fx->km);
	assert_int_equal(km_lookup(fx->km, fx->t, VA, &m), KM_ENOMEM);

	/* Frames come free: the next operation finishes the repair.  MDB
	 * page 0 held the mappings at VA and VA + PG: they are gone. */
	for (int n = 0; n < 8; n++)
		if (hog[n] != 0)
			OK(km_task_destroy(fx->km, hog[n]));
	assert_int_equal(km_lookup(fx->km, fx->t, VA, &m), KM_ENOMAP);
	assert_int_equal(km_lookup(fx->km, fx->t, VA + PG, &m), KM_ENOMAP);
	CHECK(fx->km);
	OK(km_touch(fx->km, fx->th[0], VA, KM_ACC_WRITE));
	OK(km_lookup(fx->km, fx->t, VA, &m));
	CHECK(fx->km);
}

/*
 * A thread may end while a repair of the UTCB area's node table waits for
 * a frame, unless its UTCB page goes with it: only then does deleting it
 * write that table (the page's mark).  The last thread of the page waits
 * for the repair like any operation that needs the table.
 */
static void test_revoke_thread_ends_while_repair_stopped(void **state)
{
	struct fx *fx = *state;
	const uint32_t utcb_pde = KM_UTCB_AREA >> 22;
	km_task_t hog[8] = { 0 };
	enum km_thread_state st;

	kmt_drain_kernel_pool(fx->km, 0, hog);
	assert_int_equal(kmt_kpool_free(fx->km), 0);
	fx->rk.deny_restore = true;
	revoke(fx, KM_KT_NT, utcb_pde, true);

	/* th[1] and th[2] share their UTCB page with th[0]. */
	OK(km_thread_destroy(fx->km, fx->th[1]));
	CHECK(fx->km);
	OK(km_thread_destroy(fx->km, fx->th[2]));
	CHECK(fx->km);
	assert_int_equal(km_thread_state(fx->km, fx->th[1], &st, NULL),
	                 KM_ENOTHREAD);
	/* th[0]'s goes with it, and its mark needs the table. */
	assert_int_equal(km_thread_destroy(fx->km, fx->th[0]), KM_ENOMEM);
	OK(km_thread_state(fx->km, fx->th[0], &st, NULL));
	CHECK(fx->km);

	for (int n = 0; n < 8; n++)
		if (hog[n] != 0)
			OK(km_task_destroy(fx->km, hog[n]));
	OK(km_thread_destroy(fx->km, fx->th[0]));
	CHECK(fx->km);
	OK(km_task_destroy(fx->km, fx->t));
	CHECK(fx->km);
}

/* ---------------------------------------------------------------------- */
/* Secrecy: nothing in an exported page but the client's own data.         */

static bool contains(const uint8_t *p, size_t n, const void *v, size_t len)
{
	for (size_t i = 0; i + len <= n; i++)
		if (memcmp(p + i, v, len) == 0)
			return true;
	return false;
}

static void test_revoke_secrecy_scan(void **state)
{
	struct fx *fx = *state;
	km_task_t other;
	km_thread_t oth;
	km_vaddr_t outcb;
	uint32_t marker[10], opfn;
	enum km_ktype types[] = { KM_KT_PD, KM_KT_ND, KM_KT_PT, KM_KT_UTCB,
	                          KM_KT_KTCB, KM_KT_NT, KM_KT_MDB };
	uint8_t *forms[7];
	struct km_stats st;
	struct km_mapping m;
	km_task_t filler;
	size_t checked = 0;

	/* Push the other task's memory to the top frames, so that its frame
	 * numbers cannot be mistaken for small local values. */
	km_stats(fx->km, &st);
	OK(km_task_create(fx->km, KM_ROOT_KPAGER, &filler));
	OK(km_sigma0_map(fx->km, filler, 0x40000000u, st.sigma0_free - 300,
	                 KM_R));

	/* Another task of the same kpager, full of recognisable data. */
	OK(km_task_create(fx->km, fx->kp, &other));
	OK(km_thread_create(fx->km, other, 0, &oth));
	OK(km_touch(fx->km, oth, VA, KM_ACC_WRITE));
	/* It shares a page (one of the top frames) with the client: mapping
	 * nodes on both sides. */
	OK(km_sigma0_map(fx->km, other, 0x50000000u, 1, KM_RWX));
	OK(km_map(fx->km, other, km_fpage(0x50000000u, 12, KM_RWX), fx->t,
	          0x30000000u, KM_MAP, NULL));
	OK(km_lookup(fx->km, other, 0x50000000u, &m));
	opfn = m.pfn;
	assert_true(opfn >= 1024);
	for (int k = 0; k < 10; k++)
		marker[k] = 0xfeed0000u + (uint32_t)k;
	OK(km_thread_regs(fx->km, oth, marker, true));
	OK(km_thread_utcb(fx->km, oth, &outcb));
	memset(km_frame_ptr(fx->km, (km_pte(fx->km, other, outcb) -
	                             0xC0000000u) >> 12) + (outcb & 0xfff),
	       0xab, KM_UTCB_SIZE);
	set_regs(fx, 0, 0x10u);

	for (size_t i = 0; i < 7; i++)
		forms[i] = revoke(fx, types[i], types[i] == KM_KT_PT ||
		                  types[i] == KM_KT_NT ? VA >> 22 : 0, false);
	for (size_t i = 0; i < 7; i++) {
		const uint8_t *f = forms[i];
		const uint8_t *base = km_frame_ptr(fx->km, 0);
		uintptr_t host[2] = { (uintptr_t)fx->km, (uintptr_t)base };
		uint8_t ab[8];

		/* Host pointers: the model, and any address inside the
		 * frames' mapping (checked on every 8-byte window). */
		for (size_t j = 0; j + 8 <= PG; j++) {
			uintptr_t v;

			memcpy(&v, f + j, sizeof v);
			assert_false(v == host[0]);
			assert_false(v >= host[1] &&
			             v < host[1] + (uintptr_t)2048 * PG);
		}
		/* Physical addresses of any frame, as PTEs hold them. */
		for (size_t j = 0; j + 4 <= PG; j += 4) {
			uint32_t w;

			memcpy(&w, f + j, 4);
			assert_false(w >= 0xC0000000u &&
			             w < 0xC0000000u + 2048u * PG);
		}
		/* The other task's memory: its frame number. */
		assert_false(contains(f, PG, &opfn, 4));
		/* The other task's data: its registers, its UTCB bytes. */
		for (int k = 0; k < 10; k++)
			assert_false(contains(f, PG, &marker[k], 4));
		memset(ab, 0xab, sizeof ab);
		assert_false(contains(f, PG, ab, sizeof ab));
		checked++;
	}
	assert_int_equal(checked, 7);
	/* The vacant forms are vacant. */
	assert_true(all_zero(forms[0], PG));
	assert_true(all_zero(forms[1], PG));
	assert_true(all_zero(forms[2], PG));
}

/* ---------------------------------------------------------------------- */
/* The PTE observer: a shadow of every user PTE's P and RW bits, kept only
 * from the observer's reports, must match the page tables after every
 * operation, and every lost bit must come as KM_PTE_REMOVED.              */

#define OBS_PAGES (KM_USER_TOP >> 12)

struct obs {
	struct km *km;
	km_task_t task;
	uint8_t *shadow;                /* [OBS_PAGES]: P | RW as reported */
	unsigned added, removed, wrong_kind;
};

static uint8_t obs_bits(struct obs *o, uint32_t vpn)
{
	return (uint8_t)(km_pte(o->km, o->task, vpn << 12) &
	                 (KM_PTE_P | KM_PTE_RW));
}

static void obs_note(void *ctx, km_task_t task, km_vaddr_t va,
                     uint32_t pages, enum km_pte_change change)
{
	struct obs *o = ctx;

	if (task != o->task)
		return;
	assert_true((va & 0xfff) == 0 && (va >> 12) + pages <= OBS_PAGES);
	if (change == KM_PTE_ADDED)
		o->added++;
	else
		o->removed++;
	for (uint32_t v = va >> 12; v < (va >> 12) + pages; v++) {
		uint8_t now = obs_bits(o, v);

		/* Bits lost under an ADDED report would leave a stale TLB. */
		if ((o->shadow[v] & ~now) != 0 && change != KM_PTE_REMOVED)
			o->wrong_kind++;
		o->shadow[v] = now;
	}
}

static void obs_compare(struct obs *o, const char *step)
{
	for (uint32_t v = 0; v < OBS_PAGES; v++)
		if (o->shadow[v] != obs_bits(o, v))
			fail_msg("%s: PTE of 0x%08x changed unreported (%#x, "
			         "shadow %#x)", step, v << 12, obs_bits(o, v),
			         o->shadow[v]);
	assert_int_equal(o->wrong_kind, 0);
}

static void test_revoke_pte_observer_sees_every_change(void **state)
{
	struct fx *fx = *state;
	struct obs o = { fx->km, fx->t, calloc(OBS_PAGES, 1), 0, 0, 0 };
	km_vaddr_t utcb;

	assert_non_null(o.shadow);
	for (uint32_t v = 0; v < OBS_PAGES; v++)
		o.shadow[v] = obs_bits(&o, v);
	km_set_pte_observer(fx->km, obs_note, &o);

	OK(km_touch(fx->km, fx->th[0], VA + PG, KM_ACC_WRITE));
	obs_compare(&o, "touch");
	assert_true(o.added > 0);
	OK(km_unmap(fx->km, fx->t, km_fpage(VA + PG, 12, KM_W),
	            KM_UNMAP_SELF, NULL));
	obs_compare(&o, "downgrade");
	assert_true(o.removed > 0);
	OK(km_unmap(fx->km, fx->t, km_fpage(VA, 13, KM_RWX), KM_UNMAP_SELF,
	            NULL));
	obs_compare(&o, "unmap");
	OK(km_touch(fx->km, fx->th[0], VA, KM_ACC_WRITE));
	OK(km_touch(fx->km, fx->th[0], 0x40000000u, KM_ACC_WRITE));
	obs_compare(&o, "touch again");
	revoke(fx, KM_KT_PT, KM_PDX_OF(VA), false);
	obs_compare(&o, "revoke pt");
	/* (A faulting address is rarely page aligned; its report is.) */
	OK(km_touch(fx->km, fx->th[0], VA + 0x123, KM_ACC_READ));
	obs_compare(&o, "refill");
	revoke(fx, KM_KT_PD, 0, false);
	obs_compare(&o, "revoke pd");
	OK(km_touch(fx->km, fx->th[0], 0x40000000u, KM_ACC_READ));
	obs_compare(&o, "pd back");
	OK(km_thread_utcb(fx->km, fx->th[1], &utcb));
	revoke(fx, KM_KT_UTCB, 0, false);
	obs_compare(&o, "revoke utcb");
	OK(km_touch(fx->km, fx->th[1], utcb, KM_ACC_WRITE));
	obs_compare(&o, "utcb back");
	OK(km_touch(fx->km, fx->th[0], VA + 5 * PG, KM_ACC_WRITE));
	obs_compare(&o, "touch another");
	revoke(fx, KM_KT_NT, VA >> 22, true);
	obs_compare(&o, "revoke nt, discarded");
	OK(km_touch(fx->km, fx->th[0], VA + 5 * PG, KM_ACC_READ));
	obs_compare(&o, "nt back");
	revoke(fx, KM_KT_MDB, 0, true);
	obs_compare(&o, "revoke mdb, discarded");
	km_touch(fx->km, fx->th[0], VA, KM_ACC_READ);
	obs_compare(&o, "mdb back, mappings lost");
	OK(km_thread_destroy(fx->km, fx->th[2]));
	OK(km_unmap(fx->km, fx->t, km_fpage(0, 31, KM_RWX), KM_UNMAP_SELF,
	            NULL));
	obs_compare(&o, "unmap all");
	CHECK(fx->km);
	km_set_pte_observer(fx->km, NULL, NULL);
	free(o.shadow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_revoke_pt_round_trip),
		T(test_revoke_pd_keeps_its_tables),
		T(test_revoke_nd_comes_back_counted),
		T(test_revoke_utcb_goes_as_it_is),
		T(test_revoke_ktcb_round_trip),
		T(test_revoke_ktcb_forged_stops_one_thread),
		T(test_revoke_ktcb_stale_or_moved_is_refused),
		T(test_revoke_discard),
		T(test_revoke_refusals_change_nothing),
		T(test_revoke_costs_in_records),
		T(test_revoke_denied_restore_changes_nothing),
		T(test_revoke_failed_operation_keeps_restored_pages),
		T(test_revoke_kpager_of_a_kpager),
		T(test_revoke_evict_victim_and_retry),
		T(test_revoke_nt_round_trip),
		T(test_revoke_mdb_round_trip),
		T(test_revoke_mdb_tampered_is_undone),
		T(test_revoke_nt_discard_is_rebuilt),
		T(test_revoke_repair_leaves_node_table_out),
		T(test_revoke_repair_holds_what_it_brought),
		T(test_revoke_callback_lookup_during_repair),
		T(test_revoke_give_one_take_one_op_ends),
		T(test_revoke_pool_takes_back_salvaged_tables),
		T(test_revoke_unmap_restore_into_freed_frame),
		T(test_revoke_repair_without_frames_waits),
		T(test_revoke_thread_ends_while_repair_stopped),
		T(test_revoke_flush_under_mdb_moves_to_pool),
		T(test_revoke_secrecy_scan),
		T(test_revoke_pte_observer_sees_every_change),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
