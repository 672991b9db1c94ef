/*
 * The kpager policies: through their ops tables with synthetic faults, and
 * end to end on a model in kpager mode, with km_check() after every step.
 * FCFS denies at exhaustion, quota never exceeds a budget nor touches
 * another client, ws keeps exactly the pages referenced in its window,
 * clock-typed takes page tables before KTCB and mapping-database pages,
 * pinned never revokes, and revoked forms come back intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kmodel.h"
#include "kmtest.h"
#include "pagers.h"

#define PG KM_PAGE_SIZE
#define BASE 0x10000000u        /* where every policy puts its pool */
#define MAXREV 4096

/* What the fault sink saw: revocations, denials, and which kernel page
 * each frame received last. */
struct seen {
	uint32_t nrev;
	struct km_fault_rec rev[MAXREV];        /* KM_FK_REVOKE records */
	uint32_t denied;
	uint32_t restored;                      /* KM_D_RESTORED */
	struct km_kpage in_frame[8192];         /* by pfn */
};

struct fx {
	struct km *km;
	km_task_t kt;           /* the kpager's task */
	km_kpager_t kp;
	struct kp_policy pol;
	struct seen seen;
};

static void sink(void *ctx, const struct km_fault_rec *r)
{
	struct seen *s = ctx;

	if (r->kind == KM_FK_REVOKE && s->nrev < MAXREV)
		s->rev[s->nrev++] = *r;
	if (r->kind == KM_FK_KERNEL && r->decision == KM_D_DENIED)
		s->denied++;
	if (r->kind == KM_FK_KERNEL && r->decision == KM_D_RESTORED)
		s->restored++;
	if (r->kind == KM_FK_KERNEL && r->pfn != KM_NO_PFN && r->pfn < 8192)
		s->in_frame[r->pfn] = r->kpage;
}

static int setup(void **state)
{
	static struct fx fx;
	struct km_config c = km_config_default(4096);

	memset(&fx, 0, sizeof fx);
	c.kmem = KM_KMEM_KPAGER;
	c.key_seed = 7;
	if (km_create(&c, &fx.km, NULL, 0) != KM_OK ||
	    km_task_create(fx.km, KM_ROOT_KPAGER, &fx.kt) != KM_OK)
		return -1;
	km_set_fault_sink(fx.km, sink, &fx.seen);
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	km_destroy(fx->km);
	kp_policy_close(&fx->pol);
	return 0;
}

/* Starts the kpager a spec names, in the fixture's kpager task. */
static void start(struct fx *fx, const char *spec)
{
	char why[256] = "";

	if (kp_policy_open(spec, &fx->pol, why, sizeof why) != KM_OK ||
	    km_kpager_create(fx->km, fx->pol.ops, fx->kt, fx->pol.args,
	                     &fx->kp, why, sizeof why) != KM_OK)
		fail_msg("%s: %s", spec, why);
	CHECK(fx->km);
}

/* A client task of the kpager with one thread; KM_OK or the error. */
static int client(struct fx *fx, km_task_t *t, km_thread_t *th)
{
	int err = km_task_create(fx->km, fx->kp, t);

	if (err == KM_OK && th != NULL &&
	    (err = km_thread_create(fx->km, *t, 0, th)) != KM_OK) {
		OK(km_task_destroy(fx->km, *t));
		*t = 0;
	}
	CHECK(fx->km);
	return err;
}

static uint32_t kpages_of(struct fx *fx, km_task_t t)
{
	struct km_task_stats ts;
	uint32_t n = 0;

	OK(km_task_stats(fx->km, t, &ts));
	for (int i = 0; i < KM_KT_COUNT; i++)
		n += ts.pages[i];
	return n;
}

static struct kp_fault synthetic(uint32_t seq, km_task_t task,
                                 enum km_ktype type, uint32_t index)
{
	struct kp_fault f;

	memset(&f, 0, sizeof f);
	f.seq = seq;
	f.now = seq * 1000u;
	f.kpage.task = task;
	f.kpage.type = type;
	f.kpage.index = index;
	f.kva = km_kpage_kva(f.kpage);
	return f;
}

/* ---------------------------------------------------------------------- */
/* Through the ops tables.                                                  */

/* A policy's state, set up in the fixture's kpager task without a kpager
 * (the kernel never calls it: the test does). */
static void *ops_init(struct fx *fx, const struct kp_ops *ops, const char *a)
{
	void *st = NULL;
	char why[200] = "";

	if (ops->init(fx->km, fx->kt, a, &st, why, sizeof why) != KM_OK)
		fail_msg("%s:%s: %s", ops->name, a, why);
	return st;
}

/* FCFS never revokes: a page the kernel took back on its own keeps its
 * form in its frame and comes back from there; one it never saw comes
 * back `discarded`; an empty pool denies. */
static void test_pagers_policies_fcfs_restores_and_denies(void **state)
{
	struct fx *fx = *state;
	void *st = ops_init(fx, &kp_fcfs_ops, "frames=2");
	struct kp_fault a = synthetic(1, 5, KM_KT_KTCB, 0);
	struct kp_fault b = synthetic(2, 5, KM_KT_UTCB, 0);
	struct kp_fault c = synthetic(3, 5, KM_KT_PT, 1);
	struct kp_decision d;

	kp_fcfs_ops.fault(st, &a, &d);
	assert_int_equal(d.action, KP_MAP);
	assert_int_equal(d.vaddr, BASE);
	kp_fcfs_ops.fault(st, &b, &d);
	assert_int_equal(d.vaddr, BASE + PG);
	kp_fcfs_ops.fault(st, &c, &d);
	assert_int_equal(d.action, KP_DENY);
	/* The kernel takes a's page back; its form stays in the frame. */
	kp_fcfs_ops.revoked(st, BASE, a.kpage, false);
	kp_fcfs_ops.fault(st, &c, &d);
	assert_int_equal(d.action, KP_DENY);
	a.restore = true;
	kp_fcfs_ops.fault(st, &a, &d);
	assert_int_equal(d.action, KP_MAP);
	assert_int_equal(d.vaddr, BASE);
	assert_false(d.discarded);
	/* A restore of a form it never held, with a frame free. */
	kp_fcfs_ops.released(st, BASE + PG, b.kpage);
	c.restore = true;
	kp_fcfs_ops.fault(st, &c, &d);
	assert_int_equal(d.action, KP_MAP);
	assert_true(d.discarded);
	kp_fcfs_ops.fini(st);
}

/* An answer the kernel could not carry out (aborted): a new page's frame
 * is free again; a restored page's form stays in its frame and comes
 * back from there, intact, the next time. */
static void test_pagers_policies_aborted_answers(void **state)
{
	struct fx *fx = *state;
	void *st = ops_init(fx, &kp_quota_ops, "frames=4,pool=2");
	struct kp_fault a = synthetic(1, 5, KM_KT_KTCB, 0);
	struct kp_fault b = synthetic(2, 5, KM_KT_PT, 3);
	struct kp_decision d;
	struct km_mapping m;

	kp_quota_ops.fault(st, &a, &d);
	assert_int_equal(d.action, KP_MAP);
	assert_int_equal(d.vaddr, BASE);
	kp_quota_ops.aborted(st, &a);
	kp_quota_ops.fault(st, &b, &d);
	assert_int_equal(d.vaddr, BASE);        /* free again */
	kp_quota_ops.fault(st, &a, &d);
	assert_int_equal(d.vaddr, BASE + PG);
	/* a goes out, its form (these bytes) saved, and is asked back. */
	OK(km_lookup(fx->km, fx->kt, BASE + PG, &m));
	memset(km_frame_ptr(fx->km, m.pfn), 0xa5, PG);
	kp_quota_ops.revoked(st, BASE + PG, a.kpage, false);
	memset(km_frame_ptr(fx->km, m.pfn), 0, PG);
	a.restore = true;
	kp_quota_ops.fault(st, &a, &d);
	assert_int_equal(d.action, KP_MAP);
	assert_false(d.discarded);
	assert_int_equal(d.vaddr, BASE + PG);
	assert_int_equal(km_frame_ptr(fx->km, m.pfn)[PG - 1], 0xa5);
	kp_quota_ops.aborted(st, &a);
	kp_quota_ops.fault(st, &a, &d);
	assert_int_equal(d.action, KP_MAP);
	assert_false(d.discarded);
	assert_int_equal(d.vaddr, BASE + PG);
	assert_int_equal(km_frame_ptr(fx->km, m.pfn)[0], 0xa5);
	kp_quota_ops.fini(st);
}

/* Lends `n` page tables of `task` through `ops`, one fault each, `now`
 * 1000 cycles apart from `seq` on, and checks each is mapped. */
static void lend_pts(const struct kp_ops *ops, void *st, km_task_t task,
                     uint32_t n, uint32_t seq)
{
	struct kp_decision d;

	for (uint32_t i = 0; i < n; i++) {
		struct kp_fault f = synthetic(seq + i, task, KM_KT_PT, i);

		ops->fault(st, &f, &d);
		assert_int_equal(d.action, KP_MAP);
	}
}

/* ws load control, with every page in its working set (a window longer
 * than the run): load=deny denies; load=shrink takes the least recently
 * used page of the client with the most, even for another client. */
static void test_pagers_policies_ws_load_control(void **state)
{
	struct fx *fx = *state;
	void *deny = ops_init(fx, &kp_ws_ops, "window=1000000000,pool=4");
	void *shrink = ops_init(fx, &kp_ws_ops, "window=1000000000,pool=4,"
	                        "load=shrink,base=0x20000000");
	struct kp_fault f = synthetic(50, 7, KM_KT_KTCB, 0);
	struct kp_decision d;

	lend_pts(&kp_ws_ops, deny, 5, 3, 1);
	lend_pts(&kp_ws_ops, deny, 6, 1, 4);
	kp_ws_ops.fault(deny, &f, &d);
	assert_int_equal(d.action, KP_DENY);
	lend_pts(&kp_ws_ops, shrink, 6, 1, 1);  /* 6's page is the oldest */
	lend_pts(&kp_ws_ops, shrink, 5, 3, 2);
	kp_ws_ops.fault(shrink, &f, &d);
	assert_int_equal(d.action, KP_REVOKE);
	assert_int_equal(d.vaddr, 0x20000000u + PG);    /* 5's oldest */
	assert_true(d.discarded);                       /* a page table */
	kp_ws_ops.fini(deny);
	kp_ws_ops.fini(shrink);
}

/* quota per=subsystem: one budget for all clients, so a client at the
 * subsystem's budget pays with the subsystem's least recently used page,
 * whosever it is; per task, the same fault is under budget. */
static void test_pagers_policies_quota_per_subsystem(void **state)
{
	struct fx *fx = *state;
	void *sub = ops_init(fx, &kp_quota_ops, "frames=3,per=subsystem,"
	                     "pool=8");
	void *task = ops_init(fx, &kp_quota_ops, "frames=3,pool=8,"
	                      "base=0x20000000");
	struct kp_fault f = synthetic(50, 6, KM_KT_PT, 9);
	struct kp_decision d;

	lend_pts(&kp_quota_ops, sub, 5, 2, 1);
	lend_pts(&kp_quota_ops, sub, 6, 1, 3);
	kp_quota_ops.fault(sub, &f, &d);
	assert_int_equal(d.action, KP_REVOKE);
	assert_int_equal(d.vaddr, BASE);                /* 5's, the oldest */
	lend_pts(&kp_quota_ops, task, 5, 2, 1);
	lend_pts(&kp_quota_ops, task, 6, 1, 3);
	kp_quota_ops.fault(task, &f, &d);
	assert_int_equal(d.action, KP_MAP);
	kp_quota_ops.fini(sub);
	kp_quota_ops.fini(task);
}

static int cost_class(enum km_ktype t)
{
	return t == KM_KT_PT || t == KM_KT_ND ? 0 :
	       t == KM_KT_NT || t == KM_KT_UTCB ? 1 : 2;
}

/* Clock-typed, without reference marks (no kpager: every page reads as
 * unreferenced since it was lent): each fault on a full pool names a
 * victim, and the retry gets its frame.  The original pages go cheapest
 * type first: page tables and node directories, then UTCB pages and node
 * tables, then page directories, KTCB and MDB pages, each before any page
 * lent later. */
static void test_pagers_policies_clock_typed_type_order(void **state)
{
	struct fx *fx = *state;
	static const enum km_ktype lent[] = {
		KM_KT_KTCB, KM_KT_MDB, KM_KT_PD, KM_KT_UTCB, KM_KT_PT,
		KM_KT_NT, KM_KT_ND, KM_KT_PT,
	};
	enum { N = sizeof lent / sizeof lent[0] };
	void *st = ops_init(fx, &kp_clock_typed_ops, "pool=8");
	bool gone[N] = { false };
	struct kp_decision d;
	int cls_seen = 0;

	for (uint32_t i = 0; i < N; i++) {
		struct kp_fault f = synthetic(i + 1, 5, lent[i], i);

		kp_clock_typed_ops.fault(st, &f, &d);
		assert_int_equal(d.action, KP_MAP);
		assert_int_equal(d.vaddr, BASE + i * PG);
	}
	for (uint32_t k = 0; k < N; k++) {
		struct kp_fault f = synthetic(100 + k, 6 + k, KM_KT_PD, 0);
		uint32_t i;

		kp_clock_typed_ops.fault(st, &f, &d);
		assert_int_equal(d.action, KP_REVOKE);
		i = (d.vaddr - BASE) / PG;
		assert_true(i < N);
		assert_false(gone[i]);
		gone[i] = true;
		assert_true(cost_class(lent[i]) >= cls_seen);
		cls_seen = cost_class(lent[i]);
		/* Vacant forms are discarded, the others kept. */
		assert_int_equal(d.discarded, lent[i] == KM_KT_PT ||
		                 lent[i] == KM_KT_ND || lent[i] == KM_KT_PD);
		kp_clock_typed_ops.revoked(st, d.vaddr,
		                           synthetic(0, 5, lent[i], i).kpage,
		                           d.discarded);
		/* The retry: the victim's frame holds the new page. */
		kp_clock_typed_ops.fault(st, &f, &d);
		assert_int_equal(d.action, KP_MAP);
		assert_int_equal(d.vaddr, BASE + i * PG);
	}
	kp_clock_typed_ops.fini(st);
}

/* ---------------------------------------------------------------------- */
/* End to end.                                                              */

/* FCFS on the model: clients take frames until the pool is empty, then
 * every fault is denied and nothing is ever revoked. */
static void test_pagers_policies_fcfs_denies_at_exhaustion(void **state)
{
	struct fx *fx = *state;
	struct km_kpager_stats ks;
	km_task_t t = 0;
	int err = KM_OK;
	uint32_t clients = 0;

	start(fx, "fcfs:frames=9");
	while ((err = client(fx, &t, NULL)) == KM_OK)
		clients++;
	assert_int_equal(err, KM_EDENIED);
	assert_int_equal(clients, 4);           /* PD and ND each */
	OK(km_kpager_stats(fx->km, fx->kp, &ks));
	assert_int_equal(ks.lent, 8);
	assert_int_equal(ks.revoked, 0);
	assert_int_equal(fx->seen.nrev, 0);
	assert_true(fx->seen.denied >= 1);
}

/*
 * Quota, randomized: two clients under a budget of 12 frames each, from a
 * pool of 16 that cannot hold both budgets; A works through six regions,
 * B through two (each region keeps a node table in, which is never
 * evicted, so a budget must cover them).  After every step no client holds more than its
 * budget, and every page revoked in the step belongs to the client that
 * ran it, whether it hit its budget or the pool ran dry.  Operations are
 * 1,000 cycles apart (guest time); the policy knows a retry from the
 * operation each fault is for (kp_fault.op), not from the time between.
 */
static void test_pagers_policies_quota_budget_and_isolation(void **state)
{
	struct fx *fx = *state;
	uint64_t seed = kmt_env_u64("KPSIM_SEED", 0x9e3779b9u);
	uint64_t rng = seed;
	km_task_t a, b;
	km_thread_t ta, tb;
	uint32_t ops = (uint32_t)kmt_env_u64("KPSIM_POLICY_OPS", 2000);
	uint32_t ok = 0;
	struct km_kpager_stats ks;

	print_message("quota: seed %llu (KPSIM_SEED replays)\n",
	              (unsigned long long)seed);
	start(fx, "quota:frames=12,pool=16");
	OK(client(fx, &a, &ta));
	OK(client(fx, &b, &tb));
	for (uint32_t i = 0; i < ops; i++) {
		bool on_a = kmt_rng(&rng) % 4 != 0;
		km_thread_t th = on_a ? ta : tb;
		uint32_t regions = on_a ? 6 : 2;
		uint32_t rev0 = fx->seen.nrev;
		km_vaddr_t va = 0x08000000u +
		                (uint32_t)(kmt_rng(&rng) % regions) *
		                0x00400000u +
		                (uint32_t)(kmt_rng(&rng) % 16) * PG;
		int err = km_touch(fx->km, th, va, KM_ACC_WRITE);

		if (err != KM_OK && err != KM_EDENIED)
			fail_msg("seed %llu step %u: touch 0x%x: %s",
			         (unsigned long long)seed, i, va,
			         km_strerror(err));
		ok += err == KM_OK;
		km_advance(fx->km, 1000);
		CHECK(fx->km);
		if (kpages_of(fx, a) > 12 || kpages_of(fx, b) > 12)
			fail_msg("seed %llu step %u: over budget: A %u, B %u",
			         (unsigned long long)seed, i, kpages_of(fx, a),
			         kpages_of(fx, b));
		for (uint32_t r = rev0; r < fx->seen.nrev; r++)
			if (fx->seen.rev[r].kpage.task != (on_a ? a : b))
				fail_msg("seed %llu step %u: a page of task %u "
				         "was revoked for task %u",
				         (unsigned long long)seed, i,
				         fx->seen.rev[r].kpage.task,
				         on_a ? a : b);
		fx->seen.nrev = 0;
	}
	OK(km_kpager_stats(fx->km, fx->kp, &ks));
	assert_true(ks.evicted > 0);            /* A was pressed */
	print_message("quota: %u of %u touches went through, %llu "
	              "evictions\n", ok, ops, (unsigned long long)ks.evicted);
	assert_true(ok > ops / 4);              /* and made progress */
}

/* Quota with over=deny: at its budget a client is denied, and nothing is
 * revoked. */
static void test_pagers_policies_quota_over_deny(void **state)
{
	struct fx *fx = *state;
	km_task_t a;
	km_thread_t ta;
	km_vaddr_t va = 0x08000000u;
	int err = KM_OK;

	start(fx, "quota:frames=8,over=deny,pool=32");
	OK(client(fx, &a, &ta));
	for (int i = 0; i < 16 && err == KM_OK; i++, va += 0x00400000u)
		err = km_touch(fx->km, ta, va, KM_ACC_WRITE);
	CHECK(fx->km);
	assert_int_equal(err, KM_EDENIED);
	assert_true(kpages_of(fx, a) <= 8);
	assert_int_equal(fx->seen.nrev, 0);
}

/* A thread's registers survive its KTCB page going out under quota and
 * coming back from the policy's backing store. */
static void test_pagers_policies_quota_restores_forms(void **state)
{
	struct fx *fx = *state;
	uint32_t regs[10], back[10];
	enum km_thread_state ts;
	enum km_stop_reason why;
	km_task_t a;
	km_thread_t ta;
	bool ktcb_out = false;

	start(fx, "quota:frames=8,pool=32");
	OK(client(fx, &a, &ta));
	for (int i = 0; i < 10; i++)
		regs[i] = 0x1000u * (uint32_t)i + 7u;
	OK(km_thread_regs(fx->km, ta, regs, true));
	/* New regions push the KTCB page out at last. */
	for (uint32_t i = 0; i < 12 && !ktcb_out; i++) {
		struct km_task_stats st;

		km_advance(fx->km, 10000);
		OK(km_touch(fx->km, ta, 0x08000000u + i * 0x00400000u,
		            KM_ACC_WRITE));
		CHECK(fx->km);
		OK(km_task_stats(fx->km, a, &st));
		ktcb_out = st.out[KM_KT_KTCB] > 0;
	}
	assert_true(ktcb_out);
	OK(km_thread_regs(fx->km, ta, back, false));
	CHECK(fx->km);
	assert_memory_equal(regs, back, sizeof regs);
	OK(km_thread_state(fx->km, ta, &ts, &why));
	assert_int_equal(ts, KM_TS_READY);
	assert_true(fx->seen.restored >= 1);
}

/*
 * A pool page the kpager's task no longer holds.  quota keeps the form of
 * a revoked page in its backing store; its task then unmaps the page, and
 * sigma0 maps the frame that was behind it to another task, which fills
 * it.  When the page is faulted back, the kpager can put the form only
 * where its own mapping reaches, which is nowhere: the page does not come
 * back from it, and the other task's frame keeps its bytes.  (Stress seed
 * 434 beside quota: the pool copied a form into the frame it had been
 * given at the start, by then another task's page directory.)
 */
static void test_pagers_policies_pool_page_taken_away(void **state)
{
	struct fx *fx = *state;
	struct km_mapping m;
	km_task_t a, y;
	km_thread_t ta;
	uint32_t regs[10], i, pages, restored;
	const uint8_t *bytes;
	km_vaddr_t va;

	start(fx, "quota:frames=8,pool=32");
	OK(client(fx, &a, &ta));
	for (i = 0; i < 10; i++)
		regs[i] = 0x1000u * i + 7u;
	OK(km_thread_regs(fx->km, ta, regs, true));
	for (i = 0; i < 32; i++) {
		struct km_kpage k;

		if (km_lookup(fx->km, fx->kt, BASE + i * PG, &m) != KM_OK ||
		    !m.lent)
			continue;
		k = fx->seen.in_frame[m.pfn];
		if (k.task == a && k.type == KM_KT_KTCB && k.index == 0)
			break;	/* the page that holds a's thread */
	}
	assert_true(i < 32);
	va = BASE + i * PG;
	OK(km_kpager_revoke(fx->km, fx->kp, va, false));
	CHECK(fx->km);

	OK(km_lookup(fx->km, fx->kt, va, &m));
	OK(km_unmap(fx->km, fx->kt, km_fpage(va, 12, KM_RWX), KM_UNMAP_SELF,
	            &pages));
	OK(km_task_create(fx->km, KM_ROOT_KPAGER, &y));
	OK(km_map(fx->km, KM_SIGMA0, km_fpage(m.from_vaddr, 12, KM_R | KM_W),
	          y, 0x20000000u, KM_MAP, &pages));
	assert_int_equal(pages, 1);
	memset(km_frame_ptr(fx->km, m.pfn), 0x5a, PG);
	bytes = km_frame_ptr(fx->km, m.pfn);
	CHECK(fx->km);

	restored = fx->seen.restored;
	(void)km_thread_regs(fx->km, ta, regs, false);
	CHECK(fx->km);
	for (i = 0; i < PG; i++)
		if (bytes[i] != 0x5a)
			fail_msg("byte %u of the other task's frame is %#x", i,
			         bytes[i]);
	assert_int_equal(fx->seen.restored, restored);
}

/* The kernel's record of pool frame i: lent?, and its last use. */
static bool frame_use(struct fx *fx, uint32_t i, uint64_t *last)
{
	bool ref;

	return km_kpager_page_use(fx->km, fx->kp, BASE + i * PG, false, &ref,
	                          last) == KM_OK;
}

static bool same_kpage(struct km_kpage x, struct km_kpage y)
{
	return x.task == y.task && x.type == y.type && x.index == y.index;
}

/*
 * ws: with the pool full, the clock moves past the window and two of four
 * clients run (their threads' registers are read and written).  New
 * clients then press for frames.  Every page revoked is one the kernel
 * had not used in the window, no page used in the window is revoked, and
 * when the pool holds only working sets the next fault is denied (load
 * control) with every page outside them gone.
 */
static void test_pagers_policies_ws_keeps_the_window(void **state)
{
	enum { POOL = 24, W = 1000000 };
	struct fx *fx = *state;
	km_task_t t[4], extra;
	km_thread_t th[4];
	struct km_kpage in[POOL], out[POOL];
	uint32_t nin = 0, nout = 0, rev0;
	uint32_t regs[10] = { 1, 2, 3 };
	struct km_mapping m;
	int err;

	start(fx, "ws:window=1000000,pool=24");
	for (int i = 0; i < 4; i++)
		OK(client(fx, &t[i], &th[i]));
	/* Fill the pool with clients of no threads (PD and ND). */
	while ((err = client(fx, &extra, NULL)) == KM_OK)
		;
	assert_int_equal(err, KM_EDENIED);
	km_advance(fx->km, 3 * W);
	for (int i = 0; i < 2; i++)
		OK(km_thread_regs(fx->km, th[i], regs, true));
	CHECK(fx->km);
	/* What the kernel says is in and out of the window right now. */
	for (uint32_t i = 0; i < POOL; i++) {
		uint64_t last;

		OK(km_lookup(fx->km, fx->kt, BASE + i * PG, &m));
		if (!frame_use(fx, i, &last))
			continue;               /* the one frame left free */
		if (km_now(fx->km) - last < W)
			in[nin++] = fx->seen.in_frame[m.pfn];
		else
			out[nout++] = fx->seen.in_frame[m.pfn];
	}
	assert_true(nin >= 2);                  /* at least the KTCB pages */
	assert_true(nin + nout >= POOL - 1);
	/* Press until load control denies. */
	rev0 = fx->seen.nrev;
	while ((err = client(fx, &extra, NULL)) == KM_OK)
		;
	assert_int_equal(err, KM_EDENIED);
	for (uint32_t r = rev0; r < fx->seen.nrev; r++) {
		bool was_out = false;

		for (uint32_t j = 0; j < nin; j++)
			assert_false(same_kpage(fx->seen.rev[r].kpage, in[j]));
		for (uint32_t j = 0; j < nout; j++)
			was_out |= same_kpage(fx->seen.rev[r].kpage, out[j]);
		assert_true(was_out);
	}
	assert_int_equal(fx->seen.nrev - rev0, nout);
	/* Everything lent now is in some working set. */
	for (uint32_t i = 0; i < POOL; i++) {
		uint64_t last;

		OK(km_lookup(fx->km, fx->kt, BASE + i * PG, &m));
		if (frame_use(fx, i, &last))
			assert_true(km_now(fx->km) - last < W);
	}
}

/*
 * clock-typed on the model: a client with a thread and a few touched
 * regions (page tables, node tables, an MDB page) nearly fills the pool;
 * new clients then press for frames while the first client rests.  Its
 * pages go cheapest type first: no node table or UTCB page before its
 * last page table, no KTCB, MDB page or directory before those.
 */
static void test_pagers_policies_clock_typed_tables_first(void **state)
{
	struct fx *fx = *state;
	km_task_t a, extra;
	km_thread_t ta;
	struct km_kpager_stats ks;
	struct km_task_stats st;
	int cls_seen = 0;

	start(fx, "clock-typed:pool=32");
	OK(client(fx, &a, &ta));
	for (uint32_t i = 0; ; i++) {
		OK(km_touch(fx->km, ta, 0x08000000u + i * 0x00400000u,
		            KM_ACC_WRITE));
		OK(km_kpager_stats(fx->km, fx->kp, &ks));
		if (ks.lent >= 24)
			break;
	}
	CHECK(fx->km);
	assert_int_equal(fx->seen.nrev, 0);
	OK(km_task_stats(fx->km, a, &st));
	assert_true(st.pages[KM_KT_PT] >= 4);
	for (int i = 0; i < 24; i++) {
		int err = client(fx, &extra, NULL);

		assert_true(err == KM_OK || err == KM_EDENIED);
	}
	for (uint32_t r = 0; r < fx->seen.nrev; r++) {
		if (fx->seen.rev[r].kpage.task != a)
			continue;
		assert_true(cost_class(fx->seen.rev[r].kpage.type) >=
		            cls_seen);
		cls_seen = cost_class(fx->seen.rev[r].kpage.type);
	}
	OK(km_task_stats(fx->km, a, &st));
	assert_int_equal(st.pages[KM_KT_PT], 0);
	assert_true(cls_seen >= 1);
}

/* pinned: a client is capped even with frames free, no page is ever
 * revoked, and the pool's other frames stay for the other client. */
static void test_pagers_policies_pinned_never_revokes(void **state)
{
	struct fx *fx = *state;
	struct km_kpager_stats ks;
	km_task_t a, b;
	km_thread_t ta, tb;
	int err = KM_OK;

	start(fx, "pinned:frames=24,cap=12");
	OK(client(fx, &a, &ta));
	for (uint32_t i = 0; err == KM_OK && i < 32; i++)
		err = km_touch(fx->km, ta, 0x08000000u + i * 0x00400000u,
		               KM_ACC_WRITE);
	assert_int_equal(err, KM_EDENIED);
	CHECK(fx->km);
	assert_true(kpages_of(fx, a) <= 12);
	OK(client(fx, &b, &tb));
	OK(km_touch(fx->km, tb, 0x08000000u, KM_ACC_WRITE));
	CHECK(fx->km);
	OK(km_kpager_stats(fx->km, fx->kp, &ks));
	assert_int_equal(ks.revoked, 0);
	assert_int_equal(fx->seen.nrev, 0);
	assert_true(kpages_of(fx, b) <= 12);
}

/* Every policy refuses bad arguments, naming the key or value, and
 * obtains nothing from sigma0 when it does. */
static void test_pagers_policies_refuse_bad_arguments(void **state)
{
	struct fx *fx = *state;
	static const struct { const char *spec, *says; } bad[] = {
		{ "quota:frames=0", "frames=0" },
		{ "quota:over=maybe", "over=maybe" },
		{ "quota:per=thread", "per=thread" },
		{ "quota:budget=3", "unknown argument 'budget'" },
		{ "quota:frames=2,frames=3", "'frames' given twice" },
		{ "ws:window=0", "window=0" },
		{ "ws:window=1e6", "window=1e6" },
		{ "ws:load=suspend", "load=suspend" },
		{ "ws:pool=0", "pool=0" },
		{ "quota:pool=2000000", "pool=2000000" },
		{ "clock-typed:frames=8", "unknown argument 'frames'" },
		{ "clock-typed:base=0x10000001", "base=0x10000001" },
		{ "pinned:cap=0", "cap=0" },
		{ "pinned:frames=0", "frames=0" },
		{ "pinned:frames=4,cap=5", "cap=5" },
		{ "fcfs:frames=8,base=0xbf000000", "base=0xbf000000" },
	};
	struct km_stats before, after;

	km_stats(fx->km, &before);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct kp_policy pol;
		km_kpager_t id;
		char why[256] = "";

		OK(kp_policy_open(bad[i].spec, &pol, why, sizeof why));
		assert_int_not_equal(km_kpager_create(fx->km, pol.ops, fx->kt,
		                                      pol.args, &id, why,
		                                      sizeof why), KM_OK);
		if (strstr(why, bad[i].says) == NULL)
			fail_msg("%s: said '%s'", bad[i].spec, why);
		km_stats(fx->km, &after);
		assert_int_equal(after.sigma0_free, before.sigma0_free);
	}
	CHECK(fx->km);
}

/*
 * Every policy, randomized: clients are created and destroyed, threads
 * too, pages touched, registers read and written, the clock advanced; a
 * small pool forces denials and revocations.  km_check after every step;
 * a thread's registers read back as written, and no thread is stopped.
 */
/* Writes a thread's registers, or reads them back and compares them with
 * what was written last.  No policy here discards a KTCB form, so no
 * thread is ever stopped. */
static int regs_step(struct fx *fx, km_thread_t th, uint32_t regs[10],
                     bool *known, bool write, uint32_t step)
{
	uint32_t now[10];
	enum km_thread_state ts;
	enum km_stop_reason why;
	int err;

	if (write) {
		for (int r = 0; r < 10; r++)
			now[r] = step * 16u + (uint32_t)r;
		err = km_thread_regs(fx->km, th, now, true);
		if (err == KM_OK) {
			memcpy(regs, now, sizeof now);
			*known = true;
		}
		return err;
	}
	err = km_thread_regs(fx->km, th, now, false);
	OK(km_thread_state(fx->km, th, &ts, &why));
	if (ts != KM_TS_READY)
		fail_msg("step %u: thread %u stopped: %s", step, th,
		         km_stop_reason_name(why));
	if (err == KM_OK && *known)
		assert_memory_equal(now, regs, sizeof now);
	return err;
}

static void random_run(struct fx *fx, const char *spec, uint64_t seed,
                       uint32_t ops)
{
	enum { NC = 4 };
	km_task_t t[NC] = { 0 };
	km_thread_t th[NC] = { 0 };
	uint32_t regs[NC][10];
	bool known[NC] = { false };     /* regs[c] holds what was written */
	uint64_t rng = seed;

	start(fx, spec);
	for (uint32_t i = 0; i < ops; i++) {
		uint32_t c = (uint32_t)(kmt_rng(&rng) % NC);
		uint32_t what = (uint32_t)(kmt_rng(&rng) % 16);
		int err = KM_OK;

		if (t[c] == 0) {
			err = client(fx, &t[c], &th[c]);
			known[c] = false;
		} else if (what == 0) {
			err = km_task_destroy(fx->km, t[c]);
			t[c] = 0;
		} else if (what < 4) {
			err = regs_step(fx, th[c], regs[c], &known[c], what & 1,
			                i);
		} else {
			km_vaddr_t va = 0x08000000u +
			    (uint32_t)(kmt_rng(&rng) % 12) * 0x00400000u;

			err = km_touch(fx->km, th[c], va, KM_ACC_WRITE);
		}
		if (err != KM_OK && err != KM_EDENIED)
			fail_msg("%s seed %llu step %u: %s", spec,
			         (unsigned long long)seed, i, km_strerror(err));
		km_advance(fx->km, kmt_rng(&rng) % 50000);
		CHECK(fx->km);
	}
	for (int c = 0; c < NC; c++)
		if (t[c] != 0)
			OK(km_task_destroy(fx->km, t[c]));
	CHECK(fx->km);
}

static void test_pagers_policies_random(void **state)
{
	static const char *const specs[] = {
		"fcfs:frames=20", "quota:frames=10,pool=20",
		"quota:frames=16,per=subsystem,pool=20",
		"ws:window=200000,pool=20", "ws:window=200000,load=shrink,pool=20",
		"clock-typed:pool=20", "pinned:frames=20,cap=8",
	};
	struct fx *fx = *state;
	uint64_t seed = kmt_env_u64("KPSIM_SEED", 12345);
	uint32_t ops = (uint32_t)kmt_env_u64("KPSIM_POLICY_OPS", 1500);

	print_message("policies: seed %llu (KPSIM_SEED replays)\n",
	              (unsigned long long)seed);
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		/* Each policy in a kpager task of its own. */
		OK(km_task_create(fx->km, KM_ROOT_KPAGER, &fx->kt));
		random_run(fx, specs[i], seed + i, ops);
	}
}

/* ---------------------------------------------------------------------- */
/* Subsystems side by side.                                                 */

/*
 * Five subsystems on one model, each a kpager of its own policy (one of
 * them two levels deep: its kpager's task is paged by another kpager)
 * with three clients.  Random operations: touches, registers, threads,
 * maps and unmaps between a subsystem's clients, clients dying and
 * replaced, and random revocations of lent pages of any type.  After every
 * step km_check holds, and the subsystems that did not act have the same
 * kpager statistics as before: one policy never changes another's
 * behaviour.
 */
enum { NSUB = 5, NCLI = 3 };

struct sub {
	struct kp_policy pol;
	km_task_t kt;
	km_kpager_t kp;
	km_task_t cli[NCLI];
	km_thread_t th[NCLI];
	uint32_t frames;
};

static void sub_client(struct km *km, struct sub *s, uint32_t c)
{
	s->cli[c] = s->th[c] = 0;
	if (km_task_create(km, s->kp, &s->cli[c]) != KM_OK) {
		s->cli[c] = 0;
		return;
	}
	if (km_thread_create(km, s->cli[c], 0, &s->th[c]) != KM_OK)
		s->th[c] = 0;
}

static void sub_start(struct km *km, struct sub *s, const char *spec,
                      km_kpager_t above)
{
	char why[256] = "";

	OK(km_task_create(km, above, &s->kt));
	if (kp_policy_open(spec, &s->pol, why, sizeof why) != KM_OK ||
	    km_kpager_create(km, s->pol.ops, s->kt, s->pol.args, &s->kp, why,
	                     sizeof why) != KM_OK)
		fail_msg("%s: %s", spec, why);
	OK(kp_arg_u32(s->pol.args, strstr(s->pol.args, "pool=") ? "pool" :
	              "frames", 0, &s->frames, why, sizeof why));
	for (uint32_t c = 0; c < NCLI; c++)
		sub_client(km, s, c);
}

/* One random step of subsystem s. */
static int sub_step(struct km *km, struct sub *s, uint64_t *rng)
{
	uint32_t c = (uint32_t)(kmt_rng(rng) % NCLI), r = (uint32_t)(kmt_rng(rng) % 20);
	km_vaddr_t va = 0x08000000u + (uint32_t)(kmt_rng(rng) % 8) * 0x00400000u +
	                (uint32_t)(kmt_rng(rng) % 4) * PG;
	uint32_t regs[10];
	km_thread_t th;

	if (s->cli[c] == 0 || r == 0) {
		if (s->cli[c] != 0 && km_task_destroy(km, s->cli[c]) != KM_OK)
			return KM_EBUSY;
		sub_client(km, s, c);
		return KM_OK;
	}
	if (s->th[c] == 0)
		return km_thread_create(km, s->cli[c], 0, &s->th[c]);
	if (r < 9)
		return km_touch(km, s->th[c], va, KM_ACC_WRITE);
	if (r < 12) {
		for (int k = 0; k < 10; k++)
			regs[k] = (uint32_t)kmt_rng(rng);
		return km_thread_regs(km, s->th[c], regs, r & 1);
	}
	if (r < 13)
		return km_thread_create(km, s->cli[c], 0, &th);
	if (r < 17) {
		uint32_t d = (uint32_t)(kmt_rng(rng) % NCLI);

		if (s->cli[d] == 0)
			return KM_OK;
		return km_map(km, s->cli[c], km_fpage(va & ~(PG - 1), 12,
		              KM_RWX), s->cli[d], 0x30000000u +
		              (uint32_t)(kmt_rng(rng) % 16) * PG,
		              r == 16 ? KM_GRANT : KM_MAP, NULL);
	}
	if (r < 18)
		return km_unmap(km, s->cli[c], km_fpage(va & ~(PG - 1), 12,
		                KM_RWX), KM_UNMAP_SELF, NULL);
	/* A revocation of one of its kpager's lent pages, any type. */
	return km_kpager_revoke(km, s->kp, BASE + (uint32_t)(kmt_rng(rng) %
	                        s->frames) * PG, kmt_rng(rng) % 8 == 0);
}

static void test_pagers_policies_subsystems(void **state)
{
	static const char *const specs[NSUB] = {
		"fcfs:frames=40", "quota:frames=12,pool=40",
		"ws:window=400000,load=shrink,pool=40", "clock-typed:pool=40",
		"pinned:frames=40,cap=14",
	};
	struct fx *fx = *state;
	uint64_t seed = kmt_env_u64("KPSIM_SEED", 4242), rng = seed;
	uint32_t ops = (uint32_t)kmt_env_u64("KPSIM_SUBSYSTEM_OPS", 100000);
	static struct sub sub[NSUB];
	uint64_t fails[KM_ERR_COUNT] = { 0 };

	print_message("subsystems: seed %llu, %u operations (KPSIM_SEED "
	              "replays, KPSIM_SUBSYSTEM_OPS sets the length)\n",
	              (unsigned long long)seed, ops);
	memset(sub, 0, sizeof sub);
	for (int i = 0; i < NSUB; i++)
		sub_start(fx->km, &sub[i], specs[i],
		          i == 3 ? sub[0].kp : KM_ROOT_KPAGER);
	CHECK(fx->km);
	for (uint32_t step = 0; step < ops; step++) {
		struct km_kpager_stats before[NSUB], after;
		uint32_t s = (uint32_t)(kmt_rng(&rng) % NSUB);
		int err;
		char why[256];

		for (int i = 0; i < NSUB; i++)
			OK(km_kpager_stats(fx->km, sub[i].kp, &before[i]));
		err = sub_step(fx->km, &sub[s], &rng);
		fails[err]++;
		km_advance(fx->km, kmt_rng(&rng) % 20000);
		if (!km_check(fx->km, why, sizeof why))
			fail_msg("seed %llu step %u (%s): %s",
			         (unsigned long long)seed, step, specs[s], why);
		for (int i = 0; i < NSUB; i++) {
			/* The depth-2 kpager's pages come from the first. */
			if (i == (int)s || (s == 3 && i == 0))
				continue;
			OK(km_kpager_stats(fx->km, sub[i].kp, &after));
			if (memcmp(&before[i], &after, sizeof after) != 0)
				fail_msg("seed %llu step %u: %s acted, %s changed",
				         (unsigned long long)seed, step, specs[s],
				         specs[i]);
		}
	}
	print_message("subsystems: ok %llu, denied %llu, refused %llu, busy "
	              "%llu, invalid %llu, no mapping %llu, access %llu, "
	              "deadlock %llu\n", (unsigned long long)fails[KM_OK],
	              (unsigned long long)fails[KM_EDENIED],
	              (unsigned long long)fails[KM_EKPAGER],
	              (unsigned long long)fails[KM_EBUSY],
	              (unsigned long long)fails[KM_EINVAL],
	              (unsigned long long)fails[KM_ENOMAP],
	              (unsigned long long)fails[KM_EACCES],
	              (unsigned long long)fails[KM_EDEADLK]);
	for (int i = 0; i < NSUB; i++) {
		struct km_kpager_stats ks;

		OK(km_kpager_stats(fx->km, sub[i].kp, &ks));
		print_message("  %-40s faults %6llu revoked %5llu denied %5llu\n",
		              specs[i], (unsigned long long)ks.faults,
		              (unsigned long long)ks.revoked,
		              (unsigned long long)ks.denied);
		assert_true(ks.faults > 0);
	}
	assert_true(fails[KM_OK] > ops / 2);
	km_destroy(fx->km);
	fx->km = NULL;
	for (int i = 0; i < NSUB; i++)
		kp_policy_close(&sub[i].pol);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_pagers_policies_fcfs_restores_and_denies),
		T(test_pagers_policies_clock_typed_type_order),
		T(test_pagers_policies_aborted_answers),
		T(test_pagers_policies_ws_load_control),
		T(test_pagers_policies_quota_per_subsystem),
		T(test_pagers_policies_fcfs_denies_at_exhaustion),
		T(test_pagers_policies_quota_budget_and_isolation),
		T(test_pagers_policies_quota_over_deny),
		T(test_pagers_policies_quota_restores_forms),
		T(test_pagers_policies_pool_page_taken_away),
		T(test_pagers_policies_ws_keeps_the_window),
		T(test_pagers_policies_clock_typed_tables_first),
		T(test_pagers_policies_pinned_never_revokes),
		T(test_pagers_policies_refuse_bad_arguments),
		T(test_pagers_policies_random),
		T(test_pagers_policies_subsystems),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
