/*
 * Tests of kmodel's user-fault path through the public API alone: km_touch
 * with the default pager, A and D bits, refusals, fault records (order,
 * numbering, parent links) and the page-table accounting of a first touch,
 * all in the in-kernel pool mode.  Written from kmodel.h, not the code.
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


/* ---------------------------------------------------------------------- */
/* Fixture: a fresh model, task a with one thread t served by the default
 * pager, and a fault sink that records everything after setup.            */

#define VA1 0x10000000u
#define VA2 0x20000000u
#define PG KM_PAGE_SIZE
#define PDX(va) ((va) >> 22)
#define NO_SUCH_THREAD ((km_thread_t)12345)

struct fx {
	struct km *km;
	struct km_config cfg;
	km_task_t dp, a;
	km_thread_t t;
	struct rec_log log;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);
	char why[256] = "";

	if (fx == NULL)
		return -1;
	fx->cfg = km_config_default(4096);
	if (km_create(&fx->cfg, &fx->km, why, sizeof why) != KM_OK ||
	    km_task_create(fx->km, KM_ROOT_KPAGER, &fx->a) != KM_OK ||
	    km_thread_create(fx->km, fx->a, 0, &fx->t) != KM_OK) {
		print_error("setup failed: %s\n", why);
		km_destroy(fx->km);
		free(fx);
		return -1;
	}
	fx->dp = km_default_pager(fx->km);
	km_set_fault_sink(fx->km, rec_sink, &fx->log);
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

static const km_vaddr_t snap_vas[] = {
	VA1, VA1 + PG, VA2, VA2 + PG, KM_UTCB_AREA,
	KM_UTCB_AREA + KM_UTCB_AREA_SIZE - PG, KM_USER_TOP - PG,
};

/* A snapshot of what a refused call must not change.  `global` also
 * compares the model-wide counts; a refused user fault may legitimately
 * have let the default pager draw frames from sigma0 first, so those
 * tests compare only the faulting task. */
static void fx_snap(const struct fx *fx, bool global, struct kmt_snap *s)
{
	km_task_t all[] = { KM_SIGMA0, fx->dp, fx->a };
	size_t nvas = sizeof snap_vas / sizeof snap_vas[0];

	if (global)
		kmt_snap_take(fx->km, KM_ROOT_KPAGER, all, 3, snap_vas, nvas, s);
	else
		kmt_snap_take(fx->km, KM_ROOT_KPAGER, &fx->a, 1, snap_vas, nvas,
		              s);
}

#define REFUSED(fx, global, expr, want)                                 \
	do {                                                            \
		struct kmt_snap before_, after_;                        \
		fx_snap((fx), (global), &before_);                      \
		ERR((expr), (want));                                    \
		fx_snap((fx), (global), &after_);                       \
		kmt_snap_assert_same(&before_, &after_, (global));      \
		CHECK((fx)->km);                                        \
	} while (0)

static struct km_mapping lookup(const struct km *km, km_task_t t,
                                km_vaddr_t va)
{
	struct km_mapping m;

	memset(&m, 0, sizeof m);
	OK(km_lookup(km, t, va, &m));
	return m;
}

static struct km_task_stats tstats(const struct km *km, km_task_t t)
{
	struct km_task_stats s;

	memset(&s, 0, sizeof s);
	OK(km_task_stats(km, t, &s));
	return s;
}

static void touch(struct fx *fx, km_thread_t t, km_vaddr_t va, unsigned acc)
{
	OK(km_touch(fx->km, t, va, acc));
	CHECK(fx->km);
}

static size_t user_records(const struct rec_log *l, size_t from)
{
	size_t n = 0;

	for (size_t i = from; i < l->n && i < LOG_CAP; i++)
		n += l->v[i].kind == KM_FK_USER;
	return n;
}

/*
 * Fills the lowest `max` frames sigma0 has free with 0xa5 (by mapping them
 * to a scratch task, writing them, and unmapping them again), so that a
 * frame the default pager later takes from sigma0 is zero only if someone
 * zeroed it.
 */
static void dirty_free_frames(struct fx *fx, uint32_t max)
{
	struct km_stats st;
	km_task_t scratch;
	uint32_t n, pages = 0, free0;

	km_stats(fx->km, &st);
	free0 = st.sigma0_free;
	n = st.sigma0_free < max ? st.sigma0_free : max;
	assert_true(n > 0 && n <= 64);
	OK(km_task_create(fx->km, KM_ROOT_KPAGER, &scratch));
	OK(km_sigma0_map(fx->km, scratch, 0x40000000u, n, KM_R | KM_W));
	CHECK(fx->km);
	for (uint32_t i = 0; i < n; i++) {
		struct km_mapping m = lookup(fx->km, scratch,
		                             0x40000000u + i * PG);
		uint8_t *p = km_frame_ptr(fx->km, m.pfn);

		assert_non_null(p);
		memset(p, 0xa5, PG);
	}
	OK(km_unmap(fx->km, scratch, km_fpage(0x40000000u, 18, KM_RWX),
	            KM_UNMAP_SELF, &pages));
	assert_int_equal(pages, n);
	OK(km_task_destroy(fx->km, scratch));
	CHECK(fx->km);
	km_stats(fx->km, &st);
	assert_int_equal(st.sigma0_free, free0);
}

/* ---------------------------------------------------------------------- */
/* The default pager                                                        */

static void test_touch_first_touch_maps_zeroed_frame(void **state)
{
	struct fx *fx = *state;
	struct km_task_stats s0, s1;
	struct km_mapping m;
	const uint8_t *p;

	dirty_free_frames(fx, 64);
	s0 = tstats(fx->km, fx->a);
	touch(fx, fx->t, VA1, KM_ACC_READ);
	s1 = tstats(fx->km, fx->a);
	assert_int_equal(s1.ufaults, s0.ufaults + 1);
	assert_int_equal(s1.mappings, s0.mappings + 1);

	m = lookup(fx->km, fx->a, VA1);
	assert_int_equal(m.from, fx->dp);
	assert_true(m.pfn < km_frame_count(fx->km));
	assert_true((m.rights & KM_R) != 0);
	p = km_frame_ptr(fx->km, m.pfn);
	assert_non_null(p);
	for (uint32_t i = 0; i < PG; i++)
		if (p[i] != 0)
			fail_msg("byte %u of the new frame is %#x", i, p[i]);
}

static void test_touch_second_touch_takes_no_fault(void **state)
{
	struct fx *fx = *state;
	struct km_task_stats s0, s1;
	struct km_stats g0, g1;
	km_pfn_t pfn;
	size_t n;

	touch(fx, fx->t, VA1, KM_ACC_READ);
	pfn = lookup(fx->km, fx->a, VA1).pfn;
	s0 = tstats(fx->km, fx->a);
	km_stats(fx->km, &g0);
	n = fx->log.n;

	touch(fx, fx->t, VA1, KM_ACC_READ);
	touch(fx, fx->t, VA1 + 0x800, KM_ACC_READ);
	s1 = tstats(fx->km, fx->a);
	km_stats(fx->km, &g1);
	assert_int_equal(s1.ufaults, s0.ufaults);
	assert_int_equal(g1.ufaults, g0.ufaults);
	assert_int_equal(fx->log.n, n);
	assert_int_equal(lookup(fx->km, fx->a, VA1).pfn, pfn);
}

static void test_touch_threads_of_a_task_share_pages(void **state)
{
	struct fx *fx = *state;
	km_thread_t t2;
	size_t n;

	OK(km_thread_create(fx->km, fx->a, 0, &t2));
	CHECK(fx->km);
	touch(fx, fx->t, VA1, KM_ACC_READ);
	n = fx->log.n;
	touch(fx, t2, VA1, KM_ACC_READ);
	assert_int_equal(fx->log.n, n);
	assert_int_equal(tstats(fx->km, fx->a).ufaults, 1);
}

static void test_touch_tasks_get_distinct_frames(void **state)
{
	struct fx *fx = *state;
	km_task_t b;
	km_thread_t tb;
	km_pfn_t pa, pb;

	OK(km_task_create(fx->km, KM_ROOT_KPAGER, &b));
	OK(km_thread_create(fx->km, b, 0, &tb));
	CHECK(fx->km);
	touch(fx, fx->t, VA1, KM_ACC_WRITE);
	touch(fx, tb, VA1, KM_ACC_WRITE);
	pa = lookup(fx->km, fx->a, VA1).pfn;
	pb = lookup(fx->km, b, VA1).pfn;
	assert_int_not_equal(pa, pb);
	assert_int_equal(tstats(fx->km, b).ufaults, 1);
}

/* ---------------------------------------------------------------------- */
/* A and D                                                                  */

static void test_touch_read_sets_accessed_not_dirty(void **state)
{
	struct fx *fx = *state;
	uint32_t pte;

	touch(fx, fx->t, VA1, KM_ACC_READ);
	pte = km_pte(fx->km, fx->a, VA1);
	assert_int_equal(pte & (KM_PTE_P | KM_PTE_US | KM_PTE_A),
	                 KM_PTE_P | KM_PTE_US | KM_PTE_A);
	assert_int_equal(pte & KM_PTE_D, 0);
}

static void test_touch_write_sets_dirty(void **state)
{
	struct fx *fx = *state;
	uint32_t want = KM_PTE_P | KM_PTE_RW | KM_PTE_US | KM_PTE_A | KM_PTE_D;

	touch(fx, fx->t, VA1, KM_ACC_WRITE);
	assert_int_equal(km_pte(fx->km, fx->a, VA1) & want, want);
}

static void test_touch_write_after_read_sets_dirty(void **state)
{
	struct fx *fx = *state;
	uint32_t want = KM_PTE_P | KM_PTE_RW | KM_PTE_A | KM_PTE_D;

	touch(fx, fx->t, VA1, KM_ACC_READ);
	assert_int_equal(km_pte(fx->km, fx->a, VA1) & KM_PTE_D, 0);
	touch(fx, fx->t, VA1, KM_ACC_WRITE);
	assert_int_equal(km_pte(fx->km, fx->a, VA1) & want, want);
	assert_int_equal(lookup(fx->km, fx->a, VA1).rights & KM_W, KM_W);
}

/* A page the task already has needs no pager: the MMU path sets A, D. */
static void test_touch_present_page_sets_bits_without_fault(void **state)
{
	struct fx *fx = *state;
	size_t n;

	OK(km_sigma0_map(fx->km, fx->a, VA2, 1, KM_R | KM_W));
	CHECK(fx->km);
	assert_int_equal(km_pte(fx->km, fx->a, VA2) & (KM_PTE_A | KM_PTE_D), 0);
	n = fx->log.n;
	touch(fx, fx->t, VA2, KM_ACC_READ);
	assert_int_equal(km_pte(fx->km, fx->a, VA2) & (KM_PTE_A | KM_PTE_D),
	                 KM_PTE_A);
	touch(fx, fx->t, VA2, KM_ACC_WRITE);
	assert_int_equal(km_pte(fx->km, fx->a, VA2) & (KM_PTE_A | KM_PTE_D),
	                 KM_PTE_A | KM_PTE_D);
	assert_int_equal(fx->log.n, n);
	assert_int_equal(tstats(fx->km, fx->a).ufaults, 0);
	assert_int_equal(lookup(fx->km, fx->a, VA2).from, KM_SIGMA0);
}

/* ---------------------------------------------------------------------- */
/* Refusals                                                                 */

static void test_touch_write_to_read_only_page_is_eacces(void **state)
{
	struct fx *fx = *state;
	struct km_mapping m;

	OK(km_sigma0_map(fx->km, fx->a, VA2, 1, KM_R));
	CHECK(fx->km);
	m = lookup(fx->km, fx->a, VA2);
	REFUSED(fx, false, km_touch(fx->km, fx->t, VA2, KM_ACC_WRITE),
	        KM_EACCES);
	assert_int_equal(lookup(fx->km, fx->a, VA2).pfn, m.pfn);
	assert_int_equal(lookup(fx->km, fx->a, VA2).rights, KM_R);
	assert_int_equal(km_pte(fx->km, fx->a, VA2) & (KM_PTE_RW | KM_PTE_D), 0);
}

static void test_touch_kernel_address_is_einval(void **state)
{
	struct fx *fx = *state;

	REFUSED(fx, true, km_touch(fx->km, fx->t, KM_USER_TOP, KM_ACC_READ),
	        KM_EINVAL);
	REFUSED(fx, true, km_touch(fx->km, fx->t, 0xfffffffcu, KM_ACC_WRITE),
	        KM_EINVAL);
	assert_int_equal(user_records(&fx->log, 0), 0);
}

static void test_touch_unknown_thread_is_enothread(void **state)
{
	struct fx *fx = *state;
	km_thread_t gone;

	OK(km_thread_create(fx->km, fx->a, 0, &gone));
	OK(km_thread_destroy(fx->km, gone));
	CHECK(fx->km);
	REFUSED(fx, true, km_touch(fx->km, KM_NO_THREAD, VA1, KM_ACC_READ),
	        KM_ENOTHREAD);
	REFUSED(fx, true, km_touch(fx->km, NO_SUCH_THREAD, VA1, KM_ACC_READ),
	        KM_ENOTHREAD);
	REFUSED(fx, true, km_touch(fx->km, gone, VA1, KM_ACC_READ),
	        KM_ENOTHREAD);
}

/* A page of the UTCB area that holds no UTCB cannot be faulted in. */
static void test_touch_unmapped_utcb_area_is_reserved(void **state)
{
	struct fx *fx = *state;
	km_vaddr_t u, upage, other;

	OK(km_thread_utcb(fx->km, fx->t, &u));
	upage = u & ~(PG - 1);
	other = KM_UTCB_AREA + KM_UTCB_AREA_SIZE - PG;
	if (other == upage)
		other = KM_UTCB_AREA;
	REFUSED(fx, false, km_touch(fx->km, fx->t, other, KM_ACC_READ),
	        KM_ERESERVED);
	REFUSED(fx, false, km_touch(fx->km, fx->t, other, KM_ACC_WRITE),
	        KM_ERESERVED);
	assert_int_equal(km_pte(fx->km, fx->a, other) & KM_PTE_P, 0);
}

static void test_touch_own_utcb_page_needs_no_fault(void **state)
{
	struct fx *fx = *state;
	km_vaddr_t u;
	size_t n = fx->log.n;

	OK(km_thread_utcb(fx->km, fx->t, &u));
	touch(fx, fx->t, u, KM_ACC_READ);
	touch(fx, fx->t, u + KM_UTCB_SIZE - 4, KM_ACC_WRITE);
	assert_int_equal(km_pte(fx->km, fx->a, u) & (KM_PTE_A | KM_PTE_D),
	                 KM_PTE_A | KM_PTE_D);
	assert_int_equal(user_records(&fx->log, n), 0);
	assert_int_equal(tstats(fx->km, fx->a).ufaults, 0);
}

/* ---------------------------------------------------------------------- */
/* Fault records                                                            */

/* Records arrive as faults complete (nested kernel faults before the user
 * fault that raised them); their seqs, in the order faults were raised,
 * leave no gap. */
static void assert_consecutive_seqs(const struct rec_log *log)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	for (size_t i = 0; i < log->n; i++) {
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(log->v[i].seq, log->v[j].seq);
		lo = log->v[i].seq < lo ? log->v[i].seq : lo;
		hi = log->v[i].seq > hi ? log->v[i].seq : hi;
	}
	if (log->n > 0)
		assert_int_equal(hi - lo + 1, log->n);
}

static void test_touch_user_record_follows_its_kernel_faults(void **state)
{
	struct fx *fx = *state;
	const struct km_fault_rec *u;
	size_t n;

	fx->log.n = 0;
	touch(fx, fx->t, VA1, KM_ACC_READ);
	n = fx->log.n;
	/* At least the page table and node table, then the user fault. */
	assert_true(n >= 3 && n <= LOG_CAP);
	assert_int_equal(user_records(&fx->log, 0), 1);
	u = &fx->log.v[n - 1];
	assert_int_equal(u->kind, KM_FK_USER);
	assert_int_equal(u->parent, 0);
	assert_int_equal(u->task, fx->a);
	assert_int_equal(u->thread, fx->t);
	assert_int_equal(u->addr, VA1);
	assert_int_equal(u->access, KM_ACC_READ);
	assert_int_equal(u->decision, KM_D_MAPPED);
	assert_int_equal(u->pfn, lookup(fx->km, fx->a, VA1).pfn);
	assert_true(u->cycles > 0);
	assert_true(u->cycle <= km_now(fx->km));

	for (size_t i = 0; i + 1 < n; i++) {
		const struct km_fault_rec *k = &fx->log.v[i];

		assert_int_equal(k->kind, KM_FK_KPOOL);
		/* The default pager growing its pool from sigma0 is its own
		 * request, not part of the fault: no parent. */
		if (k->parent == 0) {
			assert_true(k->task == fx->dp || k->task == KM_SIGMA0);
			continue;
		}
		assert_int_equal(k->parent, u->seq);
		assert_int_equal(k->decision, KM_D_MAPPED);
		assert_int_not_equal(k->pfn, KM_NO_PFN);
		assert_true(k->pfn < km_frame_count(fx->km));
		/* The faulting task, or the default pager (and sigma0)
		 * while it draws its frame. */
		assert_true(k->task == fx->a || k->task == fx->dp ||
		            k->task == KM_SIGMA0);
	}
	assert_consecutive_seqs(&fx->log);
}

static void test_touch_kernel_records_follow_the_hierarchy(void **state)
{
	struct fx *fx = *state;
	size_t n, i_pt = SIZE_MAX, i_nt = SIZE_MAX;
	int last = -1;

	fx->log.n = 0;
	touch(fx, fx->t, VA1, KM_ACC_WRITE);
	n = fx->log.n;
	assert_true(n <= LOG_CAP);
	for (size_t i = 0; i < n; i++) {
		const struct km_fault_rec *k = &fx->log.v[i];

		if (k->kind != KM_FK_KPOOL || k->task != fx->a)
			continue;
		/* The task's own pages come in hierarchy order. */
		assert_true((int)k->kpage.type >= last);
		last = (int)k->kpage.type;
		assert_int_equal(k->kpage.task, fx->a);
		if (k->kpage.type == KM_KT_PT) {
			assert_int_equal(k->kpage.index, PDX(VA1));
			i_pt = i;
		}
		if (k->kpage.type == KM_KT_NT) {
			assert_int_equal(k->kpage.index, PDX(VA1));
			i_nt = i;
		}
	}
	assert_true(i_pt != SIZE_MAX);
	assert_true(i_nt != SIZE_MAX);
	assert_true(i_pt < i_nt);
}

static void test_touch_seq_increases_across_faults(void **state)
{
	struct fx *fx = *state;
	uint64_t first_user = 0, second_user = 0;
	size_t n;

	fx->log.n = 0;
	touch(fx, fx->t, VA1, KM_ACC_READ);
	touch(fx, fx->t, VA2, KM_ACC_WRITE);
	touch(fx, fx->t, VA2 + PG, KM_ACC_READ);
	n = fx->log.n;
	assert_true(n <= LOG_CAP);
	assert_int_equal(user_records(&fx->log, 0), 3);
	assert_consecutive_seqs(&fx->log);
	for (size_t i = 0; i < n; i++) {
		const struct km_fault_rec *r = &fx->log.v[i];

		if (r->kind != KM_FK_USER)
			continue;
		if (first_user == 0)
			first_user = r->seq;
		else if (second_user == 0)
			second_user = r->seq;
	}
	/* seq counts faults as they are raised, so the kernel records
	 * numbered between two user faults were raised by the first (or,
	 * with no parent, by the default pager growing its pool). */
	for (size_t i = 0; i < n; i++) {
		const struct km_fault_rec *r = &fx->log.v[i];

		if (r->kind != KM_FK_USER && r->seq > first_user &&
		    r->seq < second_user && r->parent != 0)
			assert_int_equal(r->parent, first_user);
	}
	assert_true(first_user > 0 && second_user > first_user);
	assert_int_equal(fx->log.v[n - 1].kind, KM_FK_USER);
	assert_int_equal(fx->log.v[n - 1].addr, VA2 + PG);
}

static void test_touch_records_exact_faulting_address(void **state)
{
	struct fx *fx = *state;
	const km_vaddr_t va = VA1 + 0xabcu;
	size_t n;

	fx->log.n = 0;
	touch(fx, fx->t, va, KM_ACC_WRITE);
	n = fx->log.n;
	assert_true(n >= 1 && n <= LOG_CAP);
	assert_int_equal(fx->log.v[n - 1].kind, KM_FK_USER);
	assert_int_equal(fx->log.v[n - 1].addr, va);
	assert_int_equal(fx->log.v[n - 1].access, KM_ACC_WRITE);
	/* The page that holds it is mapped; the next one is not. */
	lookup(fx->km, fx->a, VA1);
	assert_int_equal(km_pte(fx->km, fx->a, VA1 + PG) & KM_PTE_P, 0);
}

static void test_touch_without_sink_records_nothing(void **state)
{
	struct fx *fx = *state;

	km_set_fault_sink(fx->km, NULL, NULL);
	fx->log.n = 0;
	touch(fx, fx->t, VA1, KM_ACC_READ);
	assert_int_equal(fx->log.n, 0);
	assert_int_equal(tstats(fx->km, fx->a).ufaults, 1);
	km_set_fault_sink(fx->km, rec_sink, &fx->log);
	touch(fx, fx->t, VA2, KM_ACC_READ);
	assert_int_equal(user_records(&fx->log, 0), 1);
}

/* ---------------------------------------------------------------------- */
/* Page tables and node tables                                              */

static void test_touch_fresh_region_adds_one_pt_one_nt(void **state)
{
	struct fx *fx = *state;
	struct km_task_stats s0, s1;
	struct km_stats g0, g1;

	s0 = tstats(fx->km, fx->a);
	km_stats(fx->km, &g0);
	touch(fx, fx->t, VA1, KM_ACC_READ);
	s1 = tstats(fx->km, fx->a);
	km_stats(fx->km, &g1);
	assert_int_equal(s1.pages[KM_KT_PT], s0.pages[KM_KT_PT] + 1);
	assert_int_equal(s1.pages[KM_KT_NT], s0.pages[KM_KT_NT] + 1);
	assert_int_equal(s1.pages[KM_KT_PD], s0.pages[KM_KT_PD]);
	assert_int_equal(s1.pages[KM_KT_ND], s0.pages[KM_KT_ND]);
	assert_int_equal(s1.pages[KM_KT_UTCB], s0.pages[KM_KT_UTCB]);
	assert_int_equal(s1.pages[KM_KT_KTCB], s0.pages[KM_KT_KTCB]);
	assert_int_equal(s1.group[KM_KG_P], s0.group[KM_KG_P] + 1);
	assert_int_equal(s1.group[KM_KG_N], s0.group[KM_KG_N] + 1);
	assert_int_equal(s1.mappings, s0.mappings + 1);
	/* In pool mode every new kernel frame comes out of the pool. */
	assert_true(g1.kernel_frames >= g0.kernel_frames + 2);
	assert_int_equal(g1.kernel_frames - g0.kernel_frames,
	                 g0.kpool_free - g1.kpool_free);
}

static void test_touch_same_region_adds_no_table(void **state)
{
	struct fx *fx = *state;
	struct km_task_stats s0, s1;

	touch(fx, fx->t, VA1, KM_ACC_READ);
	s0 = tstats(fx->km, fx->a);
	touch(fx, fx->t, VA1 + PG, KM_ACC_READ);
	touch(fx, fx->t, VA1 + 0x3ff000u, KM_ACC_WRITE);
	s1 = tstats(fx->km, fx->a);
	assert_int_equal(s1.pages[KM_KT_PT], s0.pages[KM_KT_PT]);
	assert_int_equal(s1.pages[KM_KT_NT], s0.pages[KM_KT_NT]);
	assert_int_equal(s1.mappings, s0.mappings + 2);
	assert_int_equal(s1.ufaults, s0.ufaults + 2);
}

/* The last page of one 4 MiB region and the first of the next need one
 * table each. */
static void test_touch_adjacent_regions_each_get_tables(void **state)
{
	struct fx *fx = *state;
	struct km_task_stats s0, s1;

	s0 = tstats(fx->km, fx->a);
	touch(fx, fx->t, 0x103ff000u, KM_ACC_READ);
	touch(fx, fx->t, 0x10400000u, KM_ACC_READ);
	s1 = tstats(fx->km, fx->a);
	assert_int_equal(s1.pages[KM_KT_PT], s0.pages[KM_KT_PT] + 2);
	assert_int_equal(s1.pages[KM_KT_NT], s0.pages[KM_KT_NT] + 2);
	assert_int_not_equal(km_pte(fx->km, fx->a, 0x103ff000u) & KM_PTE_P, 0);
	assert_int_not_equal(km_pte(fx->km, fx->a, 0x10400000u) & KM_PTE_P, 0);
	assert_int_equal(km_pte(fx->km, fx->a, 0x103fe000u) & KM_PTE_P, 0);
	assert_int_equal(km_pte(fx->km, fx->a, 0x10401000u) & KM_PTE_P, 0);
}

static void test_touch_pte_points_at_mapped_frame(void **state)
{
	struct fx *fx = *state;
	km_pfn_t pfn;
	uint32_t pte;

	touch(fx, fx->t, VA1, KM_ACC_WRITE);
	pfn = lookup(fx->km, fx->a, VA1).pfn;
	pte = km_pte(fx->km, fx->a, VA1);
	assert_int_equal(pte & 0xfffff000u, fx->cfg.phys_base + pfn * PG);
	assert_int_equal(pte & (KM_PTE_P | KM_PTE_US), KM_PTE_P | KM_PTE_US);
	/* An untouched page under the same page table has no PTE. */
	assert_int_equal(km_pte(fx->km, fx->a, VA1 + 0x100000u), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_touch_first_touch_maps_zeroed_frame),
		T(test_touch_second_touch_takes_no_fault),
		T(test_touch_threads_of_a_task_share_pages),
		T(test_touch_tasks_get_distinct_frames),
		T(test_touch_read_sets_accessed_not_dirty),
		T(test_touch_write_sets_dirty),
		T(test_touch_write_after_read_sets_dirty),
		T(test_touch_present_page_sets_bits_without_fault),
		T(test_touch_write_to_read_only_page_is_eacces),
		T(test_touch_kernel_address_is_einval),
		T(test_touch_unknown_thread_is_enothread),
		T(test_touch_unmapped_utcb_area_is_reserved),
		T(test_touch_own_utcb_page_needs_no_fault),
		T(test_touch_user_record_follows_its_kernel_faults),
		T(test_touch_kernel_records_follow_the_hierarchy),
		T(test_touch_seq_increases_across_faults),
		T(test_touch_records_exact_faulting_address),
		T(test_touch_without_sink_records_nothing),
		T(test_touch_fresh_region_adds_one_pt_one_nt),
		T(test_touch_same_region_adds_no_table),
		T(test_touch_adjacent_regions_each_get_tables),
		T(test_touch_pte_points_at_mapped_frame),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
