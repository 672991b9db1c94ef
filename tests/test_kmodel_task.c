/*
 * Tests of kmodel's tasks and threads through the public API alone: create
 * and destroy, UTCB placement, per-type kernel-page accounting, limits,
 * teardown of derived mappings, and frames going home when everything is
 * gone.  Written from kmodel.h, not the code.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmodel.h"
#include "kmtest.h"

/* What a refused call must not change (statistics kfaults, ufaults and
 * denied may move; the header allows it). */
struct gsnap {
	uint32_t tasks, threads, kernel_frames, kpool_free, sigma0_free;
};

static struct gsnap gsnap_take(const struct km *km)
{
	struct km_stats s;
	struct gsnap g;

	km_stats(km, &s);
	g.tasks = s.tasks;
	g.threads = s.threads;
	g.kernel_frames = s.kernel_frames;
	g.kpool_free = s.kpool_free;
	g.sigma0_free = s.sigma0_free;
	return g;
}

static void gsnap_assert_same(struct gsnap b, struct gsnap a)
{
	if (b.tasks != a.tasks || b.threads != a.threads ||
	    b.kernel_frames != a.kernel_frames ||
	    b.kpool_free != a.kpool_free || b.sigma0_free != a.sigma0_free)
		fail_msg("km_stats changed: tasks %u->%u threads %u->%u "
		         "kernel_frames %u->%u kpool_free %u->%u "
		         "sigma0_free %u->%u", b.tasks, a.tasks, b.threads,
		         a.threads, b.kernel_frames, a.kernel_frames,
		         b.kpool_free, a.kpool_free, b.sigma0_free,
		         a.sigma0_free);
}

static void tstats_assert_same(km_task_t t, const struct km_task_stats *x,
                               const struct km_task_stats *y)
{
	for (int k = 0; k < KM_KT_COUNT; k++)
		if (x->pages[k] != y->pages[k])
			fail_msg("task %u: %s pages %u -> %u", t,
			         km_ktype_name((enum km_ktype)k), x->pages[k],
			         y->pages[k]);
	for (int g = 0; g < KM_KG_COUNT; g++)
		if (x->group[g] != y->group[g])
			fail_msg("task %u: group %d %u -> %u", t, g, x->group[g],
			         y->group[g]);
	if (x->mappings != y->mappings || x->threads != y->threads)
		fail_msg("task %u: mappings %u -> %u, threads %u -> %u", t,
		         x->mappings, y->mappings, x->threads, y->threads);
}

static struct km_task_stats tstats(const struct km *km, km_task_t t)
{
	struct km_task_stats s;

	memset(&s, 0, sizeof s);
	OK(km_task_stats(km, t, &s));
	return s;
}

/* The call fails with exactly `want`; the global counts and the stats of
 * task `t` (when it exists) are unchanged. */
#define REFUSED(km, t, expr, want)                                      \
	do {                                                            \
		struct gsnap gb_ = gsnap_take(km), ga_;                 \
		struct km_task_stats tb_, ta_;                          \
		int rb_ = km_task_stats((km), (t), &tb_), ra_;          \
		ERR((expr), (want));                                    \
		ga_ = gsnap_take(km);                                   \
		gsnap_assert_same(gb_, ga_);                            \
		ra_ = km_task_stats((km), (t), &ta_);                   \
		assert_int_equal(rb_, ra_);                             \
		if (rb_ == KM_OK)                                       \
			tstats_assert_same((t), &tb_, &ta_);            \
		CHECK(km);                                              \
	} while (0)

/* Per-type counts agree with the Figure 2 groups. */
static void assert_groups(const struct km_task_stats *s)
{
	assert_int_equal(s->group[KM_KG_P],
	                 s->pages[KM_KT_PD] + s->pages[KM_KT_PT]);
	assert_int_equal(s->group[KM_KG_N],
	                 s->pages[KM_KT_ND] + s->pages[KM_KT_NT]);
	assert_int_equal(s->group[KM_KG_M], s->pages[KM_KT_MDB]);
	assert_int_equal(s->group[KM_KG_U], s->pages[KM_KT_UTCB]);
	assert_int_equal(s->group[KM_KG_K], s->pages[KM_KT_KTCB]);
}

/* ---------------------------------------------------------------------- */
/* Fixture: a fresh model per test; tests build their own tasks.           */

#define VA_A 0x10000000u
#define VA_B 0x20000000u
#define VA_C 0x30000000u
#define PG KM_PAGE_SIZE
#define NO_SUCH_TASK ((km_task_t)12345)
#define NO_SUCH_THREAD ((km_thread_t)12345)

struct fx {
	struct km *km;
	struct km_config cfg;
	km_task_t dp;
};

static int fx_start(struct fx *fx)
{
	char why[256] = "";

	if (km_create(&fx->cfg, &fx->km, why, sizeof why) != KM_OK) {
		print_error("km_create: %s\n", why);
		return -1;
	}
	fx->dp = km_default_pager(fx->km);
	return 0;
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);

	if (fx == NULL)
		return -1;
	fx->cfg = km_config_default(4096);
	if (fx_start(fx) != 0) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	km_destroy(fx->km);
	free(fx);
	return 0;
}

/* Replaces the fixture's model by one built from fx->cfg. */
static void fx_restart(struct fx *fx)
{
	km_destroy(fx->km);
	fx->km = NULL;
	assert_int_equal(fx_start(fx), 0);
	CHECK(fx->km);
}

static km_task_t new_task(struct fx *fx)
{
	km_task_t t = KM_SIGMA0;

	OK(km_task_create(fx->km, KM_ROOT_KPAGER, &t));
	CHECK(fx->km);
	assert_int_not_equal(t, KM_SIGMA0);
	return t;
}

static km_thread_t new_thread(struct fx *fx, km_task_t task)
{
	km_thread_t t = KM_NO_THREAD;

	OK(km_thread_create(fx->km, task, 0, &t));
	CHECK(fx->km);
	assert_int_not_equal(t, KM_NO_THREAD);
	return t;
}

static void assert_unmapped(const struct km *km, km_task_t t, km_vaddr_t va)
{
	struct km_mapping m;

	ERR(km_lookup(km, t, va, &m), KM_ENOMAP);
}

/* ---------------------------------------------------------------------- */
/* Tasks                                                                    */

static void test_task_create_faults_in_pd_and_nd(void **state)
{
	struct fx *fx = *state;
	struct km_stats s0, s1;
	struct km_task_stats ts;
	km_task_t t;
	uint32_t cr3;

	km_stats(fx->km, &s0);
	t = new_task(fx);
	km_stats(fx->km, &s1);
	assert_true(km_task_exists(fx->km, t));
	assert_int_not_equal(t, fx->dp);
	assert_int_equal(s1.tasks, s0.tasks + 1);
	/* One page directory and one node directory, from the pool. */
	assert_int_equal(s1.kernel_frames, s0.kernel_frames + 2);
	assert_int_equal(s1.kpool_free, s0.kpool_free - 2);
	assert_int_equal(s1.sigma0_free, s0.sigma0_free);

	ts = tstats(fx->km, t);
	assert_int_equal(ts.pages[KM_KT_PD], 1);
	assert_int_equal(ts.pages[KM_KT_ND], 1);
	for (int k = KM_KT_PT; k < KM_KT_COUNT; k++)
		assert_int_equal(ts.pages[k], 0);
	assert_groups(&ts);
	assert_int_equal(ts.mappings, 0);
	assert_int_equal(ts.threads, 0);

	cr3 = km_task_cr3(fx->km, t);
	assert_int_not_equal(cr3, 0);
	assert_int_equal(cr3 & (PG - 1), 0);
	assert_true(cr3 >= fx->cfg.phys_base);
	assert_true((cr3 - fx->cfg.phys_base) / PG < km_frame_count(fx->km));
}

static void test_task_ids_are_distinct_and_iterable(void **state)
{
	struct fx *fx = *state;
	km_task_t t[3], it, prev = 0;
	bool seen[3] = { false, false, false };
	unsigned steps = 0;

	for (int i = 0; i < 3; i++)
		t[i] = new_task(fx);
	assert_int_not_equal(t[0], t[1]);
	assert_int_not_equal(t[1], t[2]);
	assert_int_not_equal(t[0], t[2]);
	assert_int_not_equal(km_task_cr3(fx->km, t[0]),
	                     km_task_cr3(fx->km, t[1]));

	for (it = km_task_next(fx->km, 0); it != 0;
	     it = km_task_next(fx->km, it)) {
		assert_true(it > prev);
		assert_true(km_task_exists(fx->km, it));
		for (int i = 0; i < 3; i++)
			if (it == t[i])
				seen[i] = true;
		prev = it;
		assert_true(++steps < 1000);
	}
	assert_true(seen[0] && seen[1] && seen[2]);

	OK(km_task_destroy(fx->km, t[1]));
	CHECK(fx->km);
	for (it = km_task_next(fx->km, 0); it != 0;
	     it = km_task_next(fx->km, it))
		assert_int_not_equal(it, t[1]);
}

static void test_task_destroy_restores_everything(void **state)
{
	struct fx *fx = *state;
	struct gsnap g0 = gsnap_take(fx->km);
	struct km_task_stats ts;
	km_task_t t = new_task(fx);

	OK(km_task_destroy(fx->km, t));
	CHECK(fx->km);
	gsnap_assert_same(g0, gsnap_take(fx->km));
	assert_false(km_task_exists(fx->km, t));
	ERR(km_task_stats(fx->km, t, &ts), KM_ENOTASK);
	assert_int_equal(km_task_cr3(fx->km, t), 0);
}

static void test_task_destroy_refuses_sigma0(void **state)
{
	struct fx *fx = *state;

	REFUSED(fx->km, KM_SIGMA0, km_task_destroy(fx->km, KM_SIGMA0), KM_EPERM);
}

static void test_task_destroy_refuses_unknown_ids(void **state)
{
	struct fx *fx = *state;
	km_task_t t = new_task(fx);

	OK(km_task_destroy(fx->km, t));
	CHECK(fx->km);
	REFUSED(fx->km, fx->dp, km_task_destroy(fx->km, t), KM_ENOTASK);
	REFUSED(fx->km, fx->dp, km_task_destroy(fx->km, NO_SUCH_TASK),
	        KM_ENOTASK);
}

static void test_task_create_refuses_unknown_kpager(void **state)
{
	struct fx *fx = *state;
	km_task_t t = KM_SIGMA0;

	REFUSED(fx->km, fx->dp, km_task_create(fx->km, (km_kpager_t)12345, &t),
	        KM_ENOKPAGER);
}

static void test_task_stats_of_unknown_task_is_enotask(void **state)
{
	struct fx *fx = *state;
	struct km_task_stats ts;

	ERR(km_task_stats(fx->km, NO_SUCH_TASK, &ts), KM_ENOTASK);
	assert_false(km_task_exists(fx->km, NO_SUCH_TASK));
	assert_int_equal(km_task_cr3(fx->km, NO_SUCH_TASK), 0);
	CHECK(fx->km);
}

static void test_task_create_respects_max_tasks(void **state)
{
	struct fx *fx = *state;
	km_task_t t[16], extra;
	int n = 0, rc = KM_OK;

	fx->cfg.max_tasks = 6;
	fx_restart(fx);
	while (n < 16) {
		struct gsnap g = gsnap_take(fx->km);

		rc = km_task_create(fx->km, KM_ROOT_KPAGER, &t[n]);
		CHECK(fx->km);
		if (rc != KM_OK) {
			gsnap_assert_same(g, gsnap_take(fx->km));
			break;
		}
		n++;
	}
	ERR(rc, KM_ELIMIT);
	assert_true(n >= 1 && n <= 6);
	/* A freed slot can be used again. */
	OK(km_task_destroy(fx->km, t[0]));
	CHECK(fx->km);
	OK(km_task_create(fx->km, KM_ROOT_KPAGER, &extra));
	CHECK(fx->km);
}

/* With only a few pool frames, creation stops with KM_ENOMEM and the
 * failed attempt takes no frame, even when one would still be free. */
static void test_task_create_pool_exhaustion_changes_nothing(void **state)
{
	struct fx *fx = *state;
	int n = 0, rc = KM_OK;
	km_task_t t;

	fx->cfg.kpool_frames = 33;
	fx->cfg.max_tasks = 64;
	fx_restart(fx);
	while (n < 40) {
		struct gsnap g = gsnap_take(fx->km);

		rc = km_task_create(fx->km, KM_ROOT_KPAGER, &t);
		CHECK(fx->km);
		if (rc != KM_OK) {
			gsnap_assert_same(g, gsnap_take(fx->km));
			break;
		}
		n++;
	}
	ERR(rc, KM_ENOMEM);
	assert_true(n >= 1);
}

/* ---------------------------------------------------------------------- */
/* Threads                                                                  */

static void test_thread_create_places_utcb_and_ktcb(void **state)
{
	struct fx *fx = *state;
	struct km_stats s0, s1;
	struct km_task_stats ts;
	km_task_t a = new_task(fx), owner = KM_SIGMA0;
	km_thread_t t;
	km_vaddr_t u = 0;
	uint32_t pte;

	km_stats(fx->km, &s0);
	t = new_thread(fx, a);
	km_stats(fx->km, &s1);
	assert_int_equal(s1.threads, s0.threads + 1);

	OK(km_thread_task(fx->km, t, &owner));
	assert_int_equal(owner, a);
	OK(km_thread_utcb(fx->km, t, &u));
	assert_true(u >= KM_UTCB_AREA);
	assert_true(u < KM_UTCB_AREA + KM_UTCB_AREA_SIZE);
	assert_int_equal(u % KM_UTCB_SIZE, 0);

	ts = tstats(fx->km, a);
	assert_int_equal(ts.threads, 1);
	assert_int_equal(ts.pages[KM_KT_UTCB], 1);
	assert_int_equal(ts.pages[KM_KT_KTCB], 1);
	assert_groups(&ts);
	/* The UTCB page is mapped into the task, user-writable. */
	pte = km_pte(fx->km, a, u);
	assert_int_equal(pte & (KM_PTE_P | KM_PTE_RW | KM_PTE_US),
	                 KM_PTE_P | KM_PTE_RW | KM_PTE_US);
}

static void test_thread_utcbs_are_distinct_slots(void **state)
{
	struct fx *fx = *state;
	km_task_t a = new_task(fx);
	km_vaddr_t u[9], pages[9];
	unsigned npages = 0;

	for (int i = 0; i < 9; i++) {
		km_thread_t t = new_thread(fx, a);

		OK(km_thread_utcb(fx->km, t, &u[i]));
		assert_true(u[i] >= KM_UTCB_AREA);
		assert_true(u[i] + KM_UTCB_SIZE <=
		            KM_UTCB_AREA + KM_UTCB_AREA_SIZE);
		assert_int_equal(u[i] % KM_UTCB_SIZE, 0);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(u[i], u[j]);
	}
	for (int i = 0; i < 9; i++) {
		bool seen = false;

		for (unsigned j = 0; j < npages; j++)
			seen = seen || pages[j] == (u[i] & ~(PG - 1));
		if (!seen)
			pages[npages++] = u[i] & ~(PG - 1);
	}
	/* Eight 512-byte slots per page: nine UTCBs on exactly two pages. */
	assert_int_equal(npages, 2);
}

static void test_thread_nine_threads_need_two_utcb_three_ktcb(void **state)
{
	struct fx *fx = *state;
	km_task_t a = new_task(fx);
	struct km_task_stats ts;

	for (int i = 0; i < 9; i++)
		new_thread(fx, a);
	ts = tstats(fx->km, a);
	assert_int_equal(ts.threads, 9);
	assert_int_equal(ts.pages[KM_KT_UTCB], 2);
	assert_int_equal(ts.pages[KM_KT_KTCB], 3);
	assert_int_equal(ts.group[KM_KG_U], 2);
	assert_int_equal(ts.group[KM_KG_K], 3);
	assert_groups(&ts);
}

static void test_thread_slot_pages_fill_exactly(void **state)
{
	struct fx *fx = *state;
	km_task_t a = new_task(fx);
	struct km_task_stats ts;

	for (int i = 0; i < 4; i++)
		new_thread(fx, a);
	ts = tstats(fx->km, a);
	assert_int_equal(ts.pages[KM_KT_UTCB], 1);
	assert_int_equal(ts.pages[KM_KT_KTCB], 1);
	new_thread(fx, a);
	ts = tstats(fx->km, a);
	assert_int_equal(ts.pages[KM_KT_KTCB], 2);
	for (int i = 5; i < 8; i++)
		new_thread(fx, a);
	ts = tstats(fx->km, a);
	assert_int_equal(ts.pages[KM_KT_UTCB], 1);
	assert_int_equal(ts.pages[KM_KT_KTCB], 2);
	/* Threads of another task never share its pages. */
	{
		km_task_t b = new_task(fx);

		new_thread(fx, b);
		assert_int_equal(tstats(fx->km, b).pages[KM_KT_UTCB], 1);
		assert_int_equal(tstats(fx->km, b).pages[KM_KT_KTCB], 1);
		assert_int_equal(tstats(fx->km, a).pages[KM_KT_UTCB], 1);
	}
}

static void test_thread_destroy_frees_its_slots(void **state)
{
	struct fx *fx = *state;
	km_task_t a = new_task(fx), owner;
	km_thread_t t[8];
	struct km_task_stats ts;
	struct km_stats s0, s1;
	km_vaddr_t u;

	for (int i = 0; i < 8; i++)
		t[i] = new_thread(fx, a);
	km_stats(fx->km, &s0);
	OK(km_thread_destroy(fx->km, t[3]));
	CHECK(fx->km);
	km_stats(fx->km, &s1);
	assert_int_equal(s1.threads, s0.threads - 1);
	assert_int_equal(tstats(fx->km, a).threads, 7);
	ERR(km_thread_task(fx->km, t[3], &owner), KM_ENOTHREAD);
	ERR(km_thread_utcb(fx->km, t[3], &u), KM_ENOTHREAD);

	/* The freed slots take the next thread: no new slot page. */
	new_thread(fx, a);
	ts = tstats(fx->km, a);
	assert_int_equal(ts.threads, 8);
	assert_int_equal(ts.pages[KM_KT_UTCB], 1);
	assert_int_equal(ts.pages[KM_KT_KTCB], 2);
}

static void test_thread_destroy_refuses_unknown_ids(void **state)
{
	struct fx *fx = *state;
	km_task_t a = new_task(fx);
	km_thread_t t = new_thread(fx, a);

	OK(km_thread_destroy(fx->km, t));
	CHECK(fx->km);
	REFUSED(fx->km, a, km_thread_destroy(fx->km, t), KM_ENOTHREAD);
	REFUSED(fx->km, a, km_thread_destroy(fx->km, KM_NO_THREAD),
	        KM_ENOTHREAD);
	REFUSED(fx->km, a, km_thread_destroy(fx->km, NO_SUCH_THREAD),
	        KM_ENOTHREAD);
}

static void test_thread_queries_refuse_unknown_ids(void **state)
{
	struct fx *fx = *state;
	km_task_t owner;
	km_vaddr_t u;

	ERR(km_thread_task(fx->km, KM_NO_THREAD, &owner), KM_ENOTHREAD);
	ERR(km_thread_task(fx->km, NO_SUCH_THREAD, &owner), KM_ENOTHREAD);
	ERR(km_thread_utcb(fx->km, KM_NO_THREAD, &u), KM_ENOTHREAD);
	ERR(km_thread_utcb(fx->km, NO_SUCH_THREAD, &u), KM_ENOTHREAD);
	CHECK(fx->km);
}

static void test_thread_create_refuses_unknown_task_or_pager(void **state)
{
	struct fx *fx = *state;
	km_task_t a = new_task(fx), gone = new_task(fx);
	km_thread_t t;

	OK(km_task_destroy(fx->km, gone));
	CHECK(fx->km);
	REFUSED(fx->km, a, km_thread_create(fx->km, NO_SUCH_TASK, 0, &t),
	        KM_ENOTASK);
	REFUSED(fx->km, a, km_thread_create(fx->km, gone, 0, &t), KM_ENOTASK);
	REFUSED(fx->km, a, km_thread_create(fx->km, a, NO_SUCH_TASK, &t),
	        KM_ENOTASK);
	REFUSED(fx->km, a, km_thread_create(fx->km, a, gone, &t), KM_ENOTASK);
}

/* The header promises only "an error with nothing changed" here. */
static void test_thread_create_in_sigma0_is_refused(void **state)
{
	struct fx *fx = *state;
	struct gsnap g = gsnap_take(fx->km);
	km_thread_t t;

	assert_int_not_equal(km_thread_create(fx->km, KM_SIGMA0, 0, &t), KM_OK);
	gsnap_assert_same(g, gsnap_take(fx->km));
	CHECK(fx->km);
}

static void test_thread_create_respects_max_threads(void **state)
{
	struct fx *fx = *state;
	km_thread_t t[16], extra;
	km_task_t a;
	int n = 0, rc = KM_OK;

	fx->cfg.max_threads = 5;
	fx_restart(fx);
	a = new_task(fx);
	while (n < 16) {
		struct gsnap g = gsnap_take(fx->km);

		rc = km_thread_create(fx->km, a, 0, &t[n]);
		CHECK(fx->km);
		if (rc != KM_OK) {
			gsnap_assert_same(g, gsnap_take(fx->km));
			break;
		}
		n++;
	}
	ERR(rc, KM_ELIMIT);
	assert_true(n >= 1 && n <= 5);
	assert_int_equal(tstats(fx->km, a).threads, (uint32_t)n);
	OK(km_thread_destroy(fx->km, t[0]));
	CHECK(fx->km);
	OK(km_thread_create(fx->km, a, 0, &extra));
	CHECK(fx->km);
}

/* ---------------------------------------------------------------------- */
/* Destroying tasks: threads, mappings, kernel pages.                       */

static void test_task_destroy_removes_its_threads(void **state)
{
	struct fx *fx = *state;
	struct gsnap g0 = gsnap_take(fx->km);
	km_task_t a = new_task(fx), owner;
	km_thread_t t[3];

	for (int i = 0; i < 3; i++)
		t[i] = new_thread(fx, a);
	OK(km_task_destroy(fx->km, a));
	CHECK(fx->km);
	for (int i = 0; i < 3; i++)
		ERR(km_thread_task(fx->km, t[i], &owner), KM_ENOTHREAD);
	gsnap_assert_same(g0, gsnap_take(fx->km));
}

/* km_task_threads lists a task's own threads, in id order, whether the
 * buffer holds them all or not. */
static void test_task_threads_lists_in_id_order(void **state)
{
	struct fx *fx = *state;
	km_task_t a = new_task(fx), b = new_task(fx);
	km_thread_t ta[4], tb[3], got[8];
	uint32_t n;

	for (int i = 0; i < 4; i++) {
		ta[i] = new_thread(fx, a);
		if (i < 3)
			tb[i] = new_thread(fx, b);
	}
	/* A freed id is taken again: a's threads are no longer in the
	 * order of their KTCB slots. */
	OK(km_thread_destroy(fx->km, ta[0]));
	OK(km_thread_destroy(fx->km, tb[1]));
	ta[0] = new_thread(fx, a);
	assert_true(ta[0] < ta[3]);
	n = km_task_threads(fx->km, a, got, 8);
	assert_int_equal(n, 4);
	for (uint32_t i = 1; i < n; i++)
		assert_true(got[i - 1] < got[i]);
	for (int i = 0; i < 4; i++) {
		bool found = false;

		for (uint32_t j = 0; j < n; j++)
			found = found || got[j] == ta[i];
		assert_true(found);
	}
	/* Too small a buffer: the count, and the lowest ids. */
	memset(got, 0, sizeof got);
	assert_int_equal(km_task_threads(fx->km, a, got, 2), 4);
	assert_true(got[0] < got[1] && got[2] == 0);
	assert_int_equal(km_task_threads(fx->km, b, got, 8), 2);
	assert_true(got[0] == tb[0] && got[1] == tb[2]);
	assert_int_equal(km_task_threads(fx->km, 9999, got, 8), 0);
	CHECK(fx->km);
}

/* A task that pages another task's thread cannot go before the thread;
 * its own threads' pager it may be. */
static void test_task_destroy_refuses_pager_of_others(void **state)
{
	struct fx *fx = *state;
	km_task_t p = new_task(fx), c = new_task(fx);
	km_thread_t own, other;

	OK(km_thread_create(fx->km, p, p, &own));
	OK(km_thread_create(fx->km, c, p, &other));
	CHECK(fx->km);
	ERR(km_task_destroy(fx->km, p), KM_EBUSY);
	CHECK(fx->km);
	OK(km_thread_destroy(fx->km, other));
	CHECK(fx->km);
	OK(km_task_destroy(fx->km, p));
	CHECK(fx->km);
	OK(km_task_destroy(fx->km, c));
	CHECK(fx->km);
}

/* a holds a root at VA_A, mapped to b at VA_B, mapped on to c at VA_C. */
static void build_chain(struct fx *fx, km_task_t a, km_task_t b, km_task_t c)
{
	uint32_t pages = 0;

	OK(km_sigma0_map(fx->km, a, VA_A, 1, KM_RWX));
	CHECK(fx->km);
	OK(km_map(fx->km, a, km_fpage(VA_A, 12, KM_RWX), b, VA_B, KM_MAP,
	          &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
	OK(km_map(fx->km, b, km_fpage(VA_B, 12, KM_RWX), c, VA_C, KM_MAP,
	          &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
}

static void test_task_destroy_removes_derived_mappings(void **state)
{
	struct fx *fx = *state;
	km_task_t a = new_task(fx), b = new_task(fx), c = new_task(fx);
	struct gsnap g0 = gsnap_take(fx->km);

	build_chain(fx, a, b, c);
	OK(km_task_destroy(fx->km, a));
	CHECK(fx->km);
	assert_unmapped(fx->km, b, VA_B);
	assert_unmapped(fx->km, c, VA_C);
	assert_int_equal(km_pte(fx->km, b, VA_B) & KM_PTE_P, 0);
	assert_int_equal(km_pte(fx->km, c, VA_C) & KM_PTE_P, 0);
	assert_int_equal(tstats(fx->km, b).mappings, 0);
	assert_int_equal(tstats(fx->km, c).mappings, 0);
	/* The root's frame is sigma0's again. */
	assert_int_equal(gsnap_take(fx->km).sigma0_free, g0.sigma0_free);
}

static void test_task_destroy_in_the_middle_keeps_the_mapper(void **state)
{
	struct fx *fx = *state;
	km_task_t a = new_task(fx), b = new_task(fx), c = new_task(fx);
	struct km_mapping m;

	build_chain(fx, a, b, c);
	OK(km_task_destroy(fx->km, b));
	CHECK(fx->km);
	assert_unmapped(fx->km, c, VA_C);
	OK(km_lookup(fx->km, a, VA_A, &m));
	assert_int_equal(m.from, KM_SIGMA0);
	assert_int_equal(tstats(fx->km, a).mappings, 1);

	/* Destroying the last receiver leaves the rest alone. */
	OK(km_task_destroy(fx->km, c));
	CHECK(fx->km);
	OK(km_lookup(fx->km, a, VA_A, &m));
}

static void test_task_destroy_everything_returns_all_frames(void **state)
{
	struct fx *fx = *state;
	struct gsnap g0 = gsnap_take(fx->km);
	struct km_task_stats s0_sigma0, s0_dp, s1;
	int rc_sigma0 = km_task_stats(fx->km, KM_SIGMA0, &s0_sigma0);
	km_task_t a, b, c;
	uint32_t pages = 0;

	s0_dp = tstats(fx->km, fx->dp);
	a = new_task(fx);
	b = new_task(fx);
	c = new_task(fx);
	for (int i = 0; i < 9; i++)
		new_thread(fx, a);
	new_thread(fx, b);
	new_thread(fx, b);
	OK(km_sigma0_map(fx->km, a, VA_A, 20, KM_RWX));
	OK(km_sigma0_map(fx->km, b, 0x50000000u, 3, KM_R));
	CHECK(fx->km);
	OK(km_map(fx->km, a, km_fpage(VA_A, 16, KM_RWX), b, VA_B, KM_MAP,
	          &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 16);
	OK(km_map(fx->km, b, km_fpage(VA_B, 14, KM_R), c, VA_C, KM_MAP, &pages));
	CHECK(fx->km);
	OK(km_map(fx->km, a, km_fpage(VA_A + 0x10000u, 14, KM_RWX), c,
	          0x70000000u, KM_GRANT, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 4);
	OK(km_map(fx->km, b, km_fpage(0x50000000u, 14, KM_R), a, 0x60000000u,
	          KM_MAP, &pages));
	CHECK(fx->km);

	OK(km_task_destroy(fx->km, b));
	CHECK(fx->km);
	OK(km_task_destroy(fx->km, a));
	CHECK(fx->km);
	OK(km_task_destroy(fx->km, c));
	CHECK(fx->km);

	gsnap_assert_same(g0, gsnap_take(fx->km));
	s1 = tstats(fx->km, fx->dp);
	tstats_assert_same(fx->dp, &s0_dp, &s1);
	if (rc_sigma0 == KM_OK) {
		OK(km_task_stats(fx->km, KM_SIGMA0, &s1));
		tstats_assert_same(KM_SIGMA0, &s0_sigma0, &s1);
	}
}

/*
 * A task whose mappings derive from one another inside one node table:
 * removing one removes another further on, so a walk that counts the
 * entries it meets against the node directory never reaches the count
 * and must go on to the table's end.  Entries sit at both ends of the
 * table, and one is mapped onwards to another task.
 */
static void test_task_destroy_with_mappings_derived_inside_a_table(
	void **state)
{
	struct fx *fx = *state;
	struct gsnap g0 = gsnap_take(fx->km);
	km_vaddr_t first = VA_A, last = VA_A + 1023 * PG;
	km_task_t a = new_task(fx), b = new_task(fx);
	uint32_t pages = 0;

	OK(km_sigma0_map(fx->km, a, first, 1, KM_RWX));
	OK(km_sigma0_map(fx->km, a, last, 1, KM_RWX));
	OK(km_sigma0_map(fx->km, a, VA_A + 512 * PG, 1, KM_RWX));
	/* first -> first + 5 pages (later in the walk), last -> 3 pages in
	 * (earlier), and first + 5 onwards to b. */
	OK(km_map(fx->km, a, km_fpage(first, 12, KM_RWX), a, first + 5 * PG,
	          KM_MAP, &pages));
	assert_int_equal(pages, 1);
	OK(km_map(fx->km, a, km_fpage(last, 12, KM_RWX), a, VA_A + 3 * PG,
	          KM_MAP, &pages));
	assert_int_equal(pages, 1);
	OK(km_map(fx->km, a, km_fpage(first + 5 * PG, 12, KM_R), b, VA_B,
	          KM_MAP, &pages));
	assert_int_equal(pages, 1);
	CHECK(fx->km);
	assert_int_equal(tstats(fx->km, a).mappings, 5);

	OK(km_task_destroy(fx->km, a));
	CHECK(fx->km);
	assert_unmapped(fx->km, b, VA_B);
	assert_int_equal(tstats(fx->km, b).mappings, 0);
	OK(km_task_destroy(fx->km, b));
	CHECK(fx->km);
	gsnap_assert_same(g0, gsnap_take(fx->km));
}

/*
 * Maps page P of task a to b, d and e in turn, with 200 other pages of a
 * mapped to c before d and before e, so that P's receiver part in a and
 * the three sender parts are each in an MDB page of a of their own.  Then
 * deletes d (siblings e and b on either side) and gives the use marks'
 * digest and the clock after it, and how many deletions took the fast
 * path.
 */
static void delete_between_siblings(struct fx *fx, bool fast, uint64_t *marks,
                                    uint64_t *now, uint64_t *fast_destroys)
{
	const km_vaddr_t p = 0x10000000u, fill = 0x20000000u;
	km_task_t a, b, c, d, e;
	struct km_stats st;
	uint32_t to_c = 0;

	km_set_fast_paths(fx->km, fast);
	a = new_task(fx);
	b = new_task(fx);
	c = new_task(fx);
	d = new_task(fx);
	e = new_task(fx);
	OK(km_sigma0_map(fx->km, a, p, 1, KM_RWX));
	OK(km_sigma0_map(fx->km, a, fill, 400, KM_RWX));
	OK(km_map(fx->km, a, km_fpage(p, 12, KM_RWX), b, p, KM_MAP, NULL));
	for (int k = 0; k < 2; k++) {
		for (uint32_t i = 0; i < 200; i++, to_c++)
			OK(km_map(fx->km, a, km_fpage(fill + to_c * 4096u, 12,
			                              KM_RWX),
			          c, fill + to_c * 4096u, KM_MAP, NULL));
		OK(km_map(fx->km, a, km_fpage(p, 12, KM_RWX), k ? e : d, p,
		          KM_MAP, NULL));
	}
	/* P's receiver part in page 0, 400 more: the sender parts to b, d
	 * and e are in pages 2, 3 and 4. */
	assert_int_equal(tstats(fx->km, a).pages[KM_KT_MDB], 5);
	OK(km_task_destroy(fx->km, d));
	CHECK(fx->km);
	*marks = km_use_marks_digest(fx->km);
	*now = km_now(fx->km);
	km_stats(fx->km, &st);
	*fast_destroys = st.fast_destroys;
}

/*
 * A task's deletion has a fast path (km_unmap_all_simple): with nothing
 * out, lost or lent, and no mapping derived from the task's, it skips the
 * validating walk and marks, as it takes each mapping away, the pages the
 * walk would have marked: among them the sender part's siblings and its
 * parent.  Here each of those is in an MDB page of its own, so that a
 * mark left out, or made at another time, shows in the use marks.
 */
static void test_task_destroy_fast_marks_what_the_walk_marks(void **state)
{
	struct fx *fx = *state;
	uint64_t marks[2], now[2], fast[2];

	delete_between_siblings(fx, false, &marks[0], &now[0], &fast[0]);
	fx_restart(fx);
	delete_between_siblings(fx, true, &marks[1], &now[1], &fast[1]);
	assert_int_equal(fast[0], 0);
	assert_int_equal(fast[1], 1);
	assert_int_equal(now[1], now[0]);
	assert_true(marks[1] == marks[0]);
}

/* Every kernel page is charged to exactly one task. */
static void test_task_stats_sum_to_kernel_frames(void **state)
{
	struct fx *fx = *state;
	km_task_t a = new_task(fx), b = new_task(fx), c = new_task(fx), it;
	struct km_task_stats ts;
	struct km_stats st;
	uint32_t sum = 0;

	for (int i = 0; i < 5; i++)
		new_thread(fx, a);
	new_thread(fx, c);
	build_chain(fx, a, b, c);
	km_stats(fx->km, &st);
	if (km_task_stats(fx->km, KM_SIGMA0, &ts) == KM_OK) {
		assert_groups(&ts);
		for (int k = 0; k < KM_KT_COUNT; k++)
			sum += ts.pages[k];
	}
	for (it = km_task_next(fx->km, 0); it != 0;
	     it = km_task_next(fx->km, it)) {
		ts = tstats(fx->km, it);
		assert_groups(&ts);
		for (int k = 0; k < KM_KT_COUNT; k++)
			sum += ts.pages[k];
	}
	assert_int_equal(sum, st.kernel_frames);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_task_create_faults_in_pd_and_nd),
		T(test_task_ids_are_distinct_and_iterable),
		T(test_task_destroy_restores_everything),
		T(test_task_destroy_refuses_sigma0),
		T(test_task_destroy_refuses_unknown_ids),
		T(test_task_create_refuses_unknown_kpager),
		T(test_task_stats_of_unknown_task_is_enotask),
		T(test_task_create_respects_max_tasks),
		T(test_task_create_pool_exhaustion_changes_nothing),
		T(test_thread_create_places_utcb_and_ktcb),
		T(test_thread_utcbs_are_distinct_slots),
		T(test_thread_nine_threads_need_two_utcb_three_ktcb),
		T(test_thread_slot_pages_fill_exactly),
		T(test_thread_destroy_frees_its_slots),
		T(test_thread_destroy_refuses_unknown_ids),
		T(test_thread_queries_refuse_unknown_ids),
		T(test_thread_create_refuses_unknown_task_or_pager),
		T(test_thread_create_in_sigma0_is_refused),
		T(test_thread_create_respects_max_threads),
		T(test_task_destroy_removes_its_threads),
		T(test_task_threads_lists_in_id_order),
		T(test_task_destroy_refuses_pager_of_others),
		T(test_task_destroy_removes_derived_mappings),
		T(test_task_destroy_in_the_middle_keeps_the_mapper),
		T(test_task_destroy_everything_returns_all_frames),
		T(test_task_destroy_with_mappings_derived_inside_a_table),
		T(test_task_destroy_fast_marks_what_the_walk_marks),
		T(test_task_stats_sum_to_kernel_frames),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
